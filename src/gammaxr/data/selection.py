"""Observation selection as boolean masks over an observation table.

Every function takes the observation table (an ``xr.Dataset`` indexed by ``obs_id``, as
:func:`gammaxr.io.gadf.read_obs_index` makes it) and returns a boolean ``xr.DataArray``
along ``obs_id``; :class:`gammaxr.data.DataStore` turns masks into new stores. Intervals are
half-open, ``lo <= x < hi``, throughout; rows with a NaN in the tested column never pass.
Column names may be given as in the FITS file (``ZEN_PNT``) or as gammaxr names
(``zen_pnt``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord
from astropy.time import Time

from gammaxr.geom.sky import to_skycoord
from gammaxr.io.errors import DL3Error
from gammaxr.io.gadf import column_name, time_to_met
from gammaxr.units import to_positive, to_unit_or_none

__all__ = [
    "cone_mask",
    "hdu_mask",
    "range_mask",
    "target_mask",
    "time_mask",
]


def _column(table: xr.Dataset, column: str) -> xr.DataArray:
    name = column_name(column)
    if name not in table.variables:
        raise KeyError(
            f"observation table has no column {column!r}; it has "
            f"{sorted(str(k) for k in table.variables)}"
        )
    return table[name]


def _mask(table: xr.Dataset, ok: np.ndarray) -> xr.DataArray:
    return xr.DataArray(ok, dims="obs_id", coords={"obs_id": table["obs_id"].values}, name="mask")


def cone_mask(
    table: xr.Dataset,
    center: SkyCoord | Sequence[Any],
    radius: float | u.Quantity,
    frame: str = "icrs",
) -> xr.DataArray:
    """Runs whose pointing lies less than ``radius`` from ``center``.

    Parameters
    ----------
    table : xarray.Dataset
        Observation table with ``ra_pnt``/``dec_pnt`` (icrs, deg), or else
        ``glon_pnt``/``glat_pnt`` (galactic).
    center : SkyCoord or (float, float)
        Cone centre: a SkyCoord in any frame or ``(lon, lat)`` in deg in ``frame``.
    radius : float, str or astropy.units.Quantity
        Cone radius (positive); a float is in deg.
    frame : str
        Frame of a ``(lon, lat)`` centre (default ``"icrs"``).

    Returns
    -------
    xarray.DataArray of bool, dim obs_id
        ``separation < radius``.
    """
    center = to_skycoord(center, frame)
    radius = Angle(to_positive(radius, "deg", "radius"), u.deg)
    if "ra_pnt" in table and "dec_pnt" in table:
        lon, lat, frame = table["ra_pnt"], table["dec_pnt"], "icrs"
    elif "glon_pnt" in table and "glat_pnt" in table:
        lon, lat, frame = table["glon_pnt"], table["glat_pnt"], "galactic"
    else:
        raise KeyError("observation table has no pointing columns (RA_PNT/DEC_PNT, GLON/GLAT_PNT)")
    pointings = SkyCoord(
        np.asarray(lon.values, dtype=float),
        np.asarray(lat.values, dtype=float),
        unit="deg",
        frame=frame,
    )
    sep = pointings.separation(center).deg
    return _mask(table, sep < radius.deg)


def target_mask(
    table: xr.Dataset,
    name: str | Iterable[str],
    *,
    match: str = "exact",
    column: str | None = None,
    case_sensitive: bool = True,
) -> xr.DataArray:
    """Runs whose target name matches.

    Parameters
    ----------
    table : xarray.Dataset
        Observation table.
    name : str or iterable of str
        Name(s) or pattern(s); a run passes if it matches any.
    match : {"exact", "glob", "regex"}
        Exact string equality (after stripping blanks), shell-style glob
        (``"PKS 2155*"``) or a regular expression that must match the whole name.
    column : str, optional
        Column to test; default ``TARGET_NAME`` if present, else ``OBJECT``.
    case_sensitive : bool
        Compare case-sensitively (default).

    Returns
    -------
    xarray.DataArray of bool, dim obs_id
    """
    if column is None:
        column = "target_name" if "target_name" in table else "object"
    values = np.char.strip(np.asarray(_column(table, column).values, dtype=str))
    names = [name] if isinstance(name, str) else list(name)
    flags = 0 if case_sensitive else re.IGNORECASE
    if match == "exact":
        patterns = [re.escape(n.strip()) for n in names]
    elif match == "glob":
        patterns = [fnmatch.translate(n) for n in names]
    elif match == "regex":
        patterns = list(names)
    else:
        raise ValueError(f"match must be 'exact', 'glob' or 'regex', got {match!r}")
    regex = re.compile("|".join(f"(?:{p})" for p in patterns), flags)
    ok = np.array([regex.fullmatch(v) is not None for v in values], dtype=bool)
    return _mask(table, ok)


def _in_units(value: Any, unit: str, column: str) -> float:
    if isinstance(value, u.Quantity):
        try:
            return float(value.to_value(unit or u.dimensionless_unscaled))
        except u.UnitConversionError as exc:
            raise u.UnitConversionError(
                f"column {column!r} is in {unit!r}; cannot compare with {value}"
            ) from exc
    return float(value)


def range_mask(
    table: xr.Dataset,
    column: str,
    lo: float | u.Quantity | None = None,
    hi: float | u.Quantity | None = None,
) -> xr.DataArray:
    """Runs with ``lo <= column < hi`` (half-open; ``None`` leaves a side open).

    Parameters
    ----------
    table : xarray.Dataset
        Observation table.
    column : str
        Numeric column, e.g. ``"ZEN_PNT"`` (deg), ``"LIVETIME"`` (s), ``"N_TELS"``.
    lo, hi : float or astropy.units.Quantity, optional
        Bounds; floats are in the column's unit, Quantities are converted to it.

    Returns
    -------
    xarray.DataArray of bool, dim obs_id
    """
    var = _column(table, column)
    if var.dtype.kind not in "iufb":
        raise TypeError(f"column {column!r} is not numeric (dtype {var.dtype})")
    unit = var.attrs.get("units", "")
    values = np.asarray(var.values, dtype=float)
    ok = ~np.isnan(values)
    if lo is not None:
        ok &= values >= _in_units(lo, unit, column)
    if hi is not None:
        ok &= values < _in_units(hi, unit, column)
    return _mask(table, ok)


def time_mask(
    table: xr.Dataset,
    start: float | Time | None = None,
    stop: float | Time | None = None,
    *,
    how: str = "overlap",
) -> xr.DataArray:
    """Runs by their time span ``[TSTART, TSTOP)`` against ``[start, stop)``.

    Parameters
    ----------
    table : xarray.Dataset
        Observation table with ``tstart``/``tstop`` in s MET and ``MJDREFI``/``MJDREFF``/
        ``TIMESYS`` attrs (needed only when a bound is an astropy Time).
    start, stop : float, astropy.units.Quantity or astropy.time.Time, optional
        Interval bounds, as MET seconds (a float or a time quantity) or absolute times;
        ``None`` for open.
    how : {"overlap", "within"}
        ``"overlap"``: the run overlaps the interval (``tstart < stop and tstop > start``);
        ``"within"``: the run lies entirely inside it (``tstart >= start and tstop <= stop``).

    Returns
    -------
    xarray.DataArray of bool, dim obs_id
    """
    if how not in ("overlap", "within"):
        raise ValueError(f"how must be 'overlap' or 'within', got {how!r}")

    def met(value, name):
        if value is None or not isinstance(value, Time):
            return to_unit_or_none(value, "s", name)
        try:
            return float(time_to_met(value, table.attrs))
        except DL3Error as exc:
            raise DL3Error(f"{table.attrs.get('source', 'observation table')}: {exc}") from exc

    start, stop = met(start, "start"), met(stop, "stop")
    t0 = np.asarray(_column(table, "tstart").values, dtype=float)
    t1 = np.asarray(_column(table, "tstop").values, dtype=float)
    ok = np.ones(t0.shape, dtype=bool)
    if how == "overlap":
        if stop is not None:
            ok &= t0 < stop
        if start is not None:
            ok &= t1 > start
    else:
        if start is not None:
            ok &= t0 >= start
        if stop is not None:
            ok &= t1 <= stop
    return _mask(table, ok)


def hdu_mask(obs_ids: np.ndarray, hdu_index: xr.Dataset, required: Iterable[str]) -> xr.DataArray:
    """Runs whose HDU index lists every required HDU type or class.

    Parameters
    ----------
    obs_ids : numpy.ndarray of int, shape (n,)
        Runs to test.
    hdu_index : xarray.Dataset
        HDU index (dim ``hdu``; ``obs_id``, ``hdu_type``, ``hdu_class``).
    required : iterable of str
        Each an HDU type (``"aeff"``, ``"edisp"``, ``"psf"``, ``"bkg"``, ``"events"`` ...) or
        an HDU class (``"psf_table"``, ``"bkg_3d"`` ...); a row matches on either.

    Returns
    -------
    xarray.DataArray of bool, dim obs_id
    """
    obs_ids = np.asarray(obs_ids)
    ok = np.ones(obs_ids.shape, dtype=bool)
    ids = hdu_index["obs_id"].values
    types = hdu_index["hdu_type"].values
    classes = hdu_index["hdu_class"].values
    for req in required:
        req = req.strip().lower()
        has = ids[(types == req) | (classes == req)]
        ok &= np.isin(obs_ids, has)
    return xr.DataArray(ok, dims="obs_id", coords={"obs_id": obs_ids})
