"""Background rate evaluation and integration over reconstructed-energy bins."""

from __future__ import annotations

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_coords
from gammaxr.irf._typing import Coordinate, Evaluated
from gammaxr.irf.interpolate import (
    AXIS_UNITS,
    apply_irf,
    convert_units,
    grid_axis,
    interpolate_irf,
    interpolate_on_points,
)
from gammaxr.units import unit_factor

__all__ = [
    "BKG_RATE_UNIT",
    "evaluate_bkg_2d",
    "evaluate_bkg_3d",
    "integrate_bkg_energy",
    "loglog_bin_integral",
    "loglog_integral_from_logs",
]

#: Unit of the evaluated background rate.
BKG_RATE_UNIT = "s-1 MeV-1 sr-1"

# log of the largest rate that counts as zero (as interpolate_table: 2 x float64 tiny), and
# of rates beyond which exp overflows
_LOG_ZERO_RATE = float(np.log(2 * np.finfo(np.float64).tiny))
_LOG_MAX_RATE = 700.0


def _rate_factor(bkg: xr.DataArray, target: str) -> float:
    return unit_factor(bkg.attrs.get("units") or BKG_RATE_UNIT, target)


def _check_dims(bkg: xr.DataArray, dims: tuple[str, ...], func: str) -> None:
    if set(bkg.dims) != set(dims):
        source = bkg.attrs.get("source", "")
        raise ValueError(f"{func}: {source} background has dims {bkg.dims}, expected {dims}")


def evaluate_bkg_2d(bkg: xr.DataArray, energy: Coordinate, offset: Coordinate) -> Evaluated:
    """Background rate of a ``bkg_2d`` table at reconstructed energies and offsets.

    Interpolation is linear in ``(log energy, offset)`` on the logarithm of the rate
    (geometric between nodes), extrapolated up to the outer bin edges, zero beyond
    (Gammapy's ``Background2D`` default).

    Parameters
    ----------
    bkg : xarray.DataArray
        Table with dims ``(energy, offset)`` and a rate ``units`` attr.
    energy : array_like or xarray.DataArray
        Reconstructed energy in TeV.
    offset : array_like or xarray.DataArray
        Offset from the pointing in deg; broadcast against ``energy``.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Rate in s-1 MeV-1 sr-1 (per unit on-time, not dead-time corrected).
    """
    _check_dims(bkg, ("energy", "offset"), "evaluate_bkg_2d")
    values = interpolate_irf(bkg, {"energy": energy, "offset": offset}, values_scale="log")
    return _finish(values, _rate_factor(bkg, BKG_RATE_UNIT), BKG_RATE_UNIT)


def evaluate_bkg_3d(
    bkg: xr.DataArray, energy: Coordinate, fov_lon: Coordinate, fov_lat: Coordinate
) -> Evaluated:
    """Background rate of a ``bkg_3d`` table at energies and field-of-view coordinates.

    Same policy as :func:`evaluate_bkg_2d` (log of the rate interpolated linearly in
    ``(log energy, fov_lon, fov_lat)``, zero outside the table's edges).

    Parameters
    ----------
    bkg : xarray.DataArray
        Table with dims ``(energy, fov_lon, fov_lat)``.
    energy : array_like or xarray.DataArray
        Reconstructed energy in TeV.
    fov_lon, fov_lat : array_like or xarray.DataArray
        Field-of-view coordinates in deg, in the frame the table declares
        (``fov_alignment`` attr, RADEC or ALTAZ); converting sky positions to them is
        the caller's job.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Rate in s-1 MeV-1 sr-1.
    """
    _check_dims(bkg, ("energy", "fov_lon", "fov_lat"), "evaluate_bkg_3d")
    values = interpolate_irf(
        bkg, {"energy": energy, "fov_lon": fov_lon, "fov_lat": fov_lat}, values_scale="log"
    )
    return _finish(values, _rate_factor(bkg, BKG_RATE_UNIT), BKG_RATE_UNIT)


def _finish(values, factor: float, unit: str):
    if factor != 1.0:
        values = values * factor
    if isinstance(values, xr.DataArray):
        values.attrs["units"] = unit
    return values


def loglog_bin_integral(
    energy_lo: np.ndarray, energy_hi: np.ndarray, value_lo: np.ndarray, value_hi: np.ndarray
) -> np.ndarray:
    """Integral over ``[energy_lo, energy_hi]`` of the power law through both end values.

    The function is taken as ``value_lo * (E / energy_lo) ** -g`` with ``g`` fixed by
    ``value_hi``; the integral is ``L(a, b) * ln(energy_hi / energy_lo)`` with
    ``a = value_lo * energy_lo``, ``b = value_hi * energy_hi`` and ``L`` their logarithmic
    mean (Gammapy's ``trapz_loglog``). Where either end value is zero (or negative) the bin
    contributes zero.

    Parameters
    ----------
    energy_lo, energy_hi : array_like
        Bin edges (> 0), any unit.
    value_lo, value_hi : array_like
        Function values at the edges (per unit of energy); broadcast together.

    Returns
    -------
    numpy.ndarray
        Integral in ``value unit * energy unit``.
    """
    a = np.multiply(value_lo, energy_lo, dtype=float)
    b = np.multiply(value_hi, energy_hi, dtype=float)
    positive = a > 0
    positive &= b > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = loglog_integral_from_logs(
            energy_lo, energy_hi, np.log(value_lo, dtype=float), np.log(value_hi, dtype=float)
        )
    np.copyto(out, 0.0, where=~positive)
    return out


def loglog_integral_from_logs(
    energy_lo: np.ndarray, energy_hi: np.ndarray, log_lo: np.ndarray, log_hi: np.ndarray
) -> np.ndarray:
    """:func:`loglog_bin_integral` from the natural logarithms of the end values.

    With ``d = ln(b / a) = log_hi - log_lo + ln(energy_hi / energy_lo)`` the integral is
    ``a * expm1(d) / d * ln(energy_hi / energy_lo)``, ``a = exp(log_lo) * energy_lo``
    (``expm1(d) / d`` taken as 1 at ``d = 0``): no logarithm is taken, and a bin whose end
    values are equal or nearly so needs no special case. A value of ``-inf`` (a zero end
    value) gives 0 or NaN, a NaN gives NaN: the caller decides what those bins are.

    Parameters
    ----------
    energy_lo, energy_hi : array_like
        Bin edges (> 0), any unit.
    log_lo, log_hi : array_like
        Natural logarithms of the function values at the edges; broadcast together.

    Returns
    -------
    numpy.ndarray
        Integral in ``value unit * energy unit``.
    """
    width = np.log(np.divide(energy_hi, energy_lo, dtype=float))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        d = np.asarray(np.subtract(log_hi, log_lo, dtype=float))
        d += width
        out = np.expm1(d, out=np.empty_like(d))
        out /= d
        if np.count_nonzero(d) < d.size:  # expm1(d) / d is 1 at d = 0
            out[d == 0] = 1.0
        np.exp(log_lo, out=d)
        out *= d
    out *= np.multiply(energy_lo, width)
    return out


def _oversampled_edges(edges: np.ndarray, oversampling: int) -> np.ndarray:
    """Each log bin split into ``oversampling`` log-equal sub-bins."""
    if oversampling == 1:
        return edges
    log_edges = np.log(edges)
    steps = np.linspace(0.0, 1.0, oversampling + 1)[:-1]
    sub = log_edges[:-1, None] + np.diff(log_edges)[:, None] * steps
    return np.exp(np.append(sub.ravel(), log_edges[-1]))


def integrate_bkg_energy(
    bkg: xr.DataArray,
    energy_edges: np.typing.ArrayLike,
    *,
    offset: Coordinate | None = None,
    fov_lon: Coordinate | None = None,
    fov_lat: Coordinate | None = None,
    oversampling: int = 1,
) -> Evaluated:
    """Background rate integrated over each reconstructed-energy bin (per solid angle).

    As Gammapy's map maker does: the rate is evaluated (see :func:`evaluate_bkg_2d` /
    :func:`evaluate_bkg_3d`) at the bin edges, each bin is integrated as a power law
    through its two edge values (:func:`loglog_bin_integral`, Gammapy's
    ``integrate_log_log``), optionally after splitting every bin into ``oversampling``
    log-equal sub-bins whose integrals are summed (Gammapy's ``background_oversampling``;
    its default, and ours, is no oversampling). Multiply by the pixel solid angle and the
    observation on-time to get counts. A bin with an edge outside the table's energy range
    contributes zero; next to a zero-valued node the rate is 1.2e-38 (see
    :mod:`gammaxr.irf.interpolate`) and the bin gets the small power-law integral that
    Gammapy gives it.

    Parameters
    ----------
    bkg : xarray.DataArray
        ``bkg_2d`` table (dims ``(energy, offset)``) or ``bkg_3d`` table (dims
        ``(energy, fov_lon, fov_lat)``).
    energy_edges : array_like, shape (n + 1,)
        Reconstructed-energy bin edges in TeV, increasing.
    offset : array_like or xarray.DataArray, optional
        Offsets in deg (required for ``bkg_2d``).
    fov_lon, fov_lat : array_like or xarray.DataArray, optional
        Field-of-view coordinates in deg (required for ``bkg_3d``), broadcast together.
    oversampling : int
        Number of log-equal sub-bins per energy bin.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Rate per bin in s-1 sr-1. numpy: shape ``spatial_shape + (n,)``; DataArray: the
        spatial dims followed by ``energy`` (with log-centre ``energy`` coordinate and
        ``energy_lo``/``energy_hi`` edges).
    """
    edges = np.asarray(energy_edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(edges <= 0) or np.any(np.diff(edges) <= 0):
        raise ValueError("integrate_bkg_energy: energy_edges must be increasing, positive, 1D")
    if int(oversampling) != oversampling or oversampling < 1:
        raise ValueError(
            f"integrate_bkg_energy: oversampling must be a positive integer, got {oversampling}"
        )
    oversampling = int(oversampling)
    if set(bkg.dims) == {"energy", "offset"}:
        if offset is None:
            raise ValueError("integrate_bkg_energy: a bkg_2d table needs offset")
        spatial = ("offset",)
        args = [offset]
    elif set(bkg.dims) == {"energy", "fov_lon", "fov_lat"}:
        if fov_lon is None or fov_lat is None:
            raise ValueError("integrate_bkg_energy: a bkg_3d table needs fov_lon and fov_lat")
        spatial = ("fov_lon", "fov_lat")
        args = [fov_lon, fov_lat]
    else:
        raise ValueError(
            f"integrate_bkg_energy: {bkg.attrs.get('source', '')} background has dims "
            f"{bkg.dims}, expected (energy, offset) or (energy, fov_lon, fov_lat)"
        )
    dims = ("energy", *spatial)
    axes = [grid_axis(bkg, d) for d in dims]
    args = [convert_units(a, AXIS_UNITS[d], d) for a, d in zip(args, spatial, strict=True)]
    sub = _oversampled_edges(edges, oversampling)
    factor = _rate_factor(bkg, "s-1 sr-1 TeV-1")
    nbin = edges.size - 1

    def core(table, *spatial_values):
        # every spatial point is a combination of the table's spatial nodes; energy first,
        # so that the edges below and above each bin are contiguous blocks
        # the log of the rate, NaN outside the table's valid range
        log_rate = interpolate_on_points(
            table,
            axes,
            [sub, *(None for _ in spatial)],
            range(1, len(dims)),
            spatial_values,
            values_scale="log",
            fill_value=np.nan,
            as_log=True,
        )
        shape = log_rate.shape[1:]
        log_rate = log_rate.reshape(sub.size, -1)
        lowest, highest = np.min(log_rate, initial=np.inf), np.max(log_rate, initial=-np.inf)
        if lowest < _LOG_ZERO_RATE:  # rates that underflow are zero (see interpolate)
            np.copyto(log_rate, -np.inf, where=log_rate < _LOG_ZERO_RATE)
        edges_lo, edges_hi = sub[:-1, None], sub[1:, None]
        integral = loglog_integral_from_logs(edges_lo, edges_hi, log_rate[:-1], log_rate[1:])
        if not (lowest >= _LOG_ZERO_RATE and highest < _LOG_MAX_RATE):
            # NaN (outside the table), zero or overflowing ends: the bin contributes zero
            bad = ~np.isfinite(log_rate)
            np.copyto(integral, 0.0, where=bad[:-1] | bad[1:] | ~np.isfinite(integral))
        if oversampling > 1:
            integral = integral.reshape(nbin, oversampling, -1).sum(1)
        integral *= factor
        return np.moveaxis(integral.reshape(nbin, *shape), 0, -1)

    coords = axis_coords("energy", edges, "TeV", lohi=True)
    return apply_irf(
        core,
        [bkg],
        [dims],
        args,
        output_core_dims=("energy",),
        output_sizes={"energy": nbin},
        coords=coords,
        name="bkg_rate",
        attrs={"units": "s-1 sr-1"},
    )
