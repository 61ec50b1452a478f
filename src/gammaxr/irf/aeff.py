"""Effective area evaluation."""

from __future__ import annotations

import numpy as np
import xarray as xr
from astropy import units as u

from gammaxr.irf.interpolate import interpolate_irf

__all__ = ["evaluate_aeff"]


def evaluate_aeff(
    aeff: xr.DataArray,
    energy_true: np.typing.ArrayLike | xr.DataArray,
    offset: np.typing.ArrayLike | xr.DataArray,
) -> np.ndarray | xr.DataArray:
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
    factor = u.Unit(aeff.attrs.get("units") or "m2").to("m2")
    if factor != 1.0:
        values = values * factor
    if isinstance(values, xr.DataArray):
        values.attrs["units"] = "m2"
    return values
