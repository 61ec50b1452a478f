"""Background rate evaluation and integration over reconstructed-energy bins."""

from __future__ import annotations

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_coords
from gammaxr.irf._typing import Coordinate, Evaluated
from gammaxr.irf.interpolate import (
    AXIS_UNITS,
    CornerWeights,
    apply_irf,
    convert_units,
    grid_axis,
    interpolate_irf,
    interpolate_on_points,
    node_values,
    outside_valid_range,
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
    energy_lo: np.ndarray,
    energy_hi: np.ndarray,
    log_lo: np.ndarray,
    log_hi: np.ndarray,
    *,
    out: np.ndarray | None = None,
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
    out : numpy.ndarray, optional
        Float64 array of the inputs' broadcast shape to write the result into.

    Returns
    -------
    numpy.ndarray
        Integral in ``value unit * energy unit``.
    """
    width = np.log(np.divide(energy_hi, energy_lo, dtype=float))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        d = np.asarray(np.subtract(log_hi, log_lo, dtype=float))
        d += width
        out = np.expm1(d, out=np.empty_like(d) if out is None else out)
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


def _points_outside(axes, spatial_values) -> np.ndarray | None:
    """Which points lie outside the valid range of the spatial ``axes`` (flat bool array),
    or None if none does."""
    outside = np.zeros(spatial_values[0].size, dtype=bool)
    for axis, values in zip(axes, spatial_values, strict=True):
        outside |= outside_valid_range(axis, values).ravel()
    return outside if outside.any() else None


def _log_rate_rows(table, axes, energy, spatial_values, outside=None):
    """The log of the rate at each of ``energy`` over the spatial points, one row at a time.

    Yields, energy by energy, the log rate at every point, shape (points,) (NaN for an
    energy outside the table's valid range, ``-inf`` for rates that underflow, see
    :mod:`gammaxr.irf.interpolate`; 0 at the ``outside`` points, a flat bool mask of those
    outside the valid spatial range: a placeholder, the caller zeroes what they give), and
    whether the row is clean (all of it finite and below overflow). Rows are written into
    two work arrays used in turn: a row stays valid while the next one is used.
    """
    n_points = spatial_values[0].size
    energy_coords = [energy, *(None for _ in spatial_values)]
    point_axes = list(range(1, len(axes)))
    if not np.all(np.isfinite(table)):  # a non-finite node: point by point, all at once
        log_rate = interpolate_on_points(
            table,
            axes,
            energy_coords,
            point_axes,
            spatial_values,
            values_scale="log",
            fill_value=np.nan,
            as_log=True,
        ).reshape(energy.size, n_points)
        for row in log_rate:
            if outside is not None:
                np.copyto(row, 0.0, where=outside)
            yield row, _clean_log_rates(row)
        return
    raw = node_values(table, axes, energy_coords, point_axes, values_scale="log")
    energy_outside = outside_valid_range(axes[0], energy)
    corners = CornerWeights.of(axes[1:], [np.ravel(v) for v in spatial_values])
    buffers, work = (np.empty(n_points), np.empty(n_points)), np.empty(n_points)
    for k, values in enumerate(raw):
        row = buffers[k % 2]
        if energy_outside[k]:
            row.fill(np.nan)
            yield row, False
            continue
        corners.row(values, row, work)
        if outside is not None:
            np.copyto(row, 0.0, where=outside)
        yield row, _clean_log_rates(row)


def _clean_log_rates(row: np.ndarray) -> bool:
    """Whether every log rate in ``row`` is finite and below overflow; rates that underflow
    are set to ``-inf`` in place (they are zero, see :mod:`gammaxr.irf.interpolate`)."""
    lowest, highest = np.min(row, initial=np.inf), np.max(row, initial=-np.inf)
    if lowest < _LOG_ZERO_RATE:
        np.copyto(row, -np.inf, where=row < _LOG_ZERO_RATE)
    return bool(lowest >= _LOG_ZERO_RATE and highest < _LOG_MAX_RATE)


class _EdgeValues:
    """``E * rate`` at the last two energy edges over all points, for bin integrals by
    :meth:`integral`.

    With ``a = E_lo * rate_lo``, ``b = E_hi * rate_hi`` and ``d = ln(b / a)``, the power-law
    integral of :func:`loglog_integral_from_logs` is ``(b - a) / d * ln(E_hi / E_lo)``: one
    exponential per edge instead of an ``exp`` and an ``expm1`` per bin, and fewer passes.
    Its rounding error grows as ``1 / |d|``: the points with ``|d|`` below :attr:`SMALL` (a
    rate close to ``E**-1``, as where ``d`` changes sign across the field of view) get
    :func:`loglog_integral_from_logs` instead; bins with an edge row that is not clean
    (NaN, zero or overflowing rates) are left to it whole.
    """

    #: Smallest ``|d|`` integrated here (relative rounding error below ~1e-12: a few
    #: units of rounding of the logs over ``|d|``).
    SMALL = 1e-3

    def __init__(self, n_points: int) -> None:
        self._log = [np.empty(n_points), np.empty(n_points)]  # ln(E * rate)
        self._value = [np.empty(n_points), np.empty(n_points)]  # E * rate
        self._clean = [False, False]
        self._work = np.empty(n_points)
        self._last = 1

    def push(self, log_rate: np.ndarray, energy: float, clean: bool) -> None:
        """The next edge: its log rates over the points and whether they are clean."""
        self._last = 1 - self._last
        self._clean[self._last] = clean
        if clean:
            log = np.add(log_rate, np.log(energy), out=self._log[self._last])
            np.exp(log, out=self._value[self._last])

    def integral(self, energy_lo: float, energy_hi: float, out: np.ndarray) -> bool:
        """The bin between the last two edges (``energy_lo``, ``energy_hi``: those pushed)
        into ``out``; False (``out`` untouched) if the bin is left to
        :func:`loglog_integral_from_logs`."""
        hi, lo = self._last, 1 - self._last
        if not (self._clean[lo] and self._clean[hi]):
            return False
        d = np.subtract(self._log[hi], self._log[lo], out=self._work)
        with np.errstate(divide="ignore", invalid="ignore"):  # d = 0: replaced below
            np.subtract(self._value[hi], self._value[lo], out=out)
            out /= d
        out *= np.log(energy_hi / energy_lo)
        # d may come near 0 (where the rate's slope crosses E**-1, within most bins)
        small = np.flatnonzero(np.abs(d, out=d) < self.SMALL)
        if small.size:
            log_lo = self._log[lo][small] - np.log(energy_lo)  # the rates'
            log_hi = self._log[hi][small] - np.log(energy_hi)
            out[small] = loglog_integral_from_logs(energy_lo, energy_hi, log_lo, log_hi)
        return True


def _output_rows(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``out`` (or a new float64 array) of ``shape`` seen as (bins, points), without a copy."""
    if out is None:
        return np.empty((shape[0], int(np.prod(shape[1:]))))
    if out.shape != shape or not out.flags.c_contiguous:
        raise ValueError(
            f"integrate_bkg_energy: out must be a C-contiguous array of shape {shape} "
            f"(energy, spatial...), got shape {out.shape}"
        )
    return out.reshape(shape[0], -1)


def integrate_bkg_energy(
    bkg: xr.DataArray,
    energy_edges: np.typing.ArrayLike,
    *,
    offset: Coordinate | None = None,
    fov_lon: Coordinate | None = None,
    fov_lat: Coordinate | None = None,
    oversampling: int = 1,
    weights: np.typing.ArrayLike | None = None,
    out: np.ndarray | None = None,
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
    weights : array_like, optional
        numpy coordinates only: factors broadcast to the spatial shape that multiply the
        result (pixel solid angle times on-time, say, for counts).
    out : numpy.ndarray, optional
        numpy coordinates only: C-contiguous array of shape ``(n,) + spatial_shape``, any
        float dtype, that receives the result energy-first (converted as it is written, so
        no float64 copy of the whole result is made).

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Rate per bin in s-1 sr-1 (times ``weights``). numpy: shape
        ``spatial_shape + (n,)``, or ``out`` itself if given; DataArray: the spatial dims
        followed by ``energy`` (with log-centre ``energy`` coordinate and
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
    if (weights is not None or out is not None) and any(isinstance(a, xr.DataArray) for a in args):
        raise TypeError("integrate_bkg_energy: weights and out are for numpy coordinates only")
    dims = ("energy", *spatial)
    axes = [grid_axis(bkg, d) for d in dims]
    args = [convert_units(a, AXIS_UNITS[d], d) for a, d in zip(args, spatial, strict=True)]
    sub = _oversampled_edges(edges, oversampling)
    factor = _rate_factor(bkg, "s-1 sr-1 TeV-1")
    nbin = edges.size - 1

    def core(table, *spatial_values):
        spatial_values = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in spatial_values))
        shape = spatial_values[0].shape
        n_points = int(np.prod(shape))
        result = _output_rows(out, (nbin, *shape))
        scale = None if weights is None else np.broadcast_to(weights, shape).ravel()
        # bin by bin over all points: the rows of the log rate and of the integrals are
        # work arrays that stay in the core's cache; only the result is new memory
        bin_sum = np.empty(n_points)
        sub_integral = np.empty(n_points) if oversampling > 1 else bin_sum
        edges = _EdgeValues(n_points)
        # points outside the table's spatial range contribute zero to every bin: a
        # placeholder rate in the rows (so that the rows can be clean: the quick integral),
        # the bins zeroed there
        outside = _points_outside(axes[1:], spatial_values)
        rows = _log_rate_rows(table, axes, sub, spatial_values, outside)
        lower, lower_clean = next(rows)
        edges.push(lower, sub[0], lower_clean)
        for k, (upper, upper_clean) in enumerate(rows):
            edges.push(upper, sub[k + 1], upper_clean)
            if not edges.integral(sub[k], sub[k + 1], out=sub_integral):
                loglog_integral_from_logs(sub[k], sub[k + 1], lower, upper, out=sub_integral)
                if not (lower_clean and upper_clean and np.isfinite(sub_integral).all()):
                    # NaN (an energy outside the table), zero or overflowing ends: zero
                    bad = ~np.isfinite(lower)
                    bad |= ~np.isfinite(upper)
                    bad |= ~np.isfinite(sub_integral)
                    np.copyto(sub_integral, 0.0, where=bad)
            if outside is not None:
                np.copyto(sub_integral, 0.0, where=outside)
            lower, lower_clean = upper, upper_clean
            if sub_integral is not bin_sum:  # the sub-bins of one bin summed in order
                if k % oversampling:
                    bin_sum += sub_integral
                else:
                    bin_sum[:] = sub_integral
            if (k + 1) % oversampling == 0:
                bin_sum *= factor
                row = result[k // oversampling]
                if scale is None:
                    row[:] = bin_sum
                else:
                    np.multiply(bin_sum, scale, out=row)
        if out is not None:
            return out
        return np.moveaxis(result.reshape(nbin, *shape), 0, -1)

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
