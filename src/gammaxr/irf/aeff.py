"""Effective area evaluation."""

from __future__ import annotations

import numpy as np
import xarray as xr

from gammaxr.irf._typing import Coordinate, Evaluated
from gammaxr.irf.interpolate import (
    grid_axis,
    interpolate_irf,
    interpolate_on_points,
    table_values,
)
from gammaxr.units import unit_factor

__all__ = ["evaluate_aeff", "evaluate_aeff_on_offsets"]

_DIMS = ("energy_true", "offset")


def _area_factor(aeff: xr.DataArray) -> float:
    """m2 per unit of the table."""
    return unit_factor(aeff.attrs.get("units") or "m2", "m2")


def evaluate_aeff(aeff: xr.DataArray, energy_true: Coordinate, offset: Coordinate) -> Evaluated:
    """Effective area at given true energies and field-of-view offsets.

    Linear interpolation in ``(log energy_true, offset)`` between the table nodes, linear
    extrapolation up to the outer bin edges (for node axes such as the HESS DR1 offsets,
    half a node spacing beyond the last node), zero beyond; never negative. This is
    Gammapy's ``EffectiveAreaTable2D.evaluate`` policy.

    Parameters
    ----------
    aeff : xarray.DataArray
        ``aeff_2d`` table, dims ``(energy_true, offset)``, ``units`` attr an area.
    energy_true : array_like or xarray.DataArray
        True energy in TeV.
    offset : array_like or xarray.DataArray
        Offset from the pointing position in deg. Broadcast against ``energy_true``.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Effective area in m2, broadcast shape (or dims) of the inputs.
    """
    values = interpolate_irf(aeff, {"energy_true": energy_true, "offset": offset})
    factor = _area_factor(aeff)
    if factor != 1.0:
        values = values * factor
    if isinstance(values, xr.DataArray):
        values.attrs["units"] = "m2"
    return values


def evaluate_aeff_on_offsets(
    aeff: xr.DataArray, energy_true: np.typing.ArrayLike, offset: np.typing.ArrayLike
) -> np.ndarray:
    """Effective area at every true energy and every offset of a map (numpy).

    The same values as ``evaluate_aeff(aeff, energy_true[:, None, ...], offset[None])``
    (up to rounding), computed as one small matrix product: the table is interpolated in
    energy at its offset nodes, then combined across the nodes for every offset
    (:func:`gammaxr.irf.interpolate.interpolate_on_points`).

    Parameters
    ----------
    aeff : xarray.DataArray
        ``aeff_2d`` table, dims ``(energy_true, offset)`` (read with ``np.asarray``).
    energy_true : array_like, shape (n,)
        True energies in TeV.
    offset : array_like
        Offsets from the pointing in deg, any shape (e.g. one per pixel).

    Returns
    -------
    numpy.ndarray, shape ``(n,) + offset.shape``
        Effective area in m2.
    """
    if set(aeff.dims) != set(_DIMS):
        raise ValueError(
            f"{aeff.attrs.get('source', '')}: aeff table has dims {aeff.dims}, expected {_DIMS}"
        )
    axes = [grid_axis(aeff, d) for d in _DIMS]
    table = table_values(aeff, _DIMS)
    energy_true = np.ravel(np.asarray(energy_true, dtype=float))
    area = interpolate_on_points(table, axes, [energy_true, None], [1], [offset])
    factor = _area_factor(aeff)
    if factor != 1.0:
        area *= factor
    return area
