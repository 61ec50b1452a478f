"""Write GADF DL3 FITS: IRF tables, event lists, GTIs, HDU and observation indexes.

This is the inverse of :mod:`gammaxr.io.gadf` and :mod:`gammaxr.io.irf_fits`: whatever
those readers return, the functions here turn back into ``astropy.io.fits`` HDUs that the
readers (and Gammapy) read back to the same values.

- :func:`irf_to_hdu`: any IRF of :data:`gammaxr.io.irf_fits.IRF_CLASSES` (aeff_2d, edisp_2d,
  psf_table, psf_3gauss, bkg_2d, bkg_3d) -> one-row binary table with ``X_LO``/``X_HI`` axis
  columns, the data column with its ``TDIM`` and unit, and the GADF ``HDUCLAS*`` keywords;
- :func:`table_to_hdu`: any table-like ``xarray.Dataset`` (one row per element of a dim) ->
  binary table; :func:`events_to_hdu`, :func:`gti_to_hdu`, :func:`hdu_index_to_hdu` and
  :func:`obs_index_to_hdu` add the keywords of each GADF table;
- :func:`relocate_hdu_index` rewrites ``FILE_DIR`` so an HDU index can live in a new
  directory, :func:`replace_hdus` points one HDU type of some runs elsewhere (e.g. new
  background models), :func:`write_index_files` writes ``hdu-index.fits.gz`` and
  ``obs-index.fits.gz`` of a data store; :func:`write_fits` writes HDUs to a (gzipped) file.

Axis order of the data column
-----------------------------
GADF stores the data array of an IRF with its numpy axes in the reverse order of the axis
columns (``ENERG, THETA`` -> numpy ``(theta, energ)``, FITS ``TDIM = (n_energ, n_theta)``);
:func:`irf_to_hdu` writes aeff_2d, edisp_2d, psf_table, psf_3gauss and bkg_2d that way. The
exception is ``bkg_3d``, which :func:`gammaxr.io.irf_fits.read_irf_hdu` reads with its numpy
axes as ``(energy, fov_lon, fov_lat)`` whatever the column order, as the public H.E.S.S. DR1
and CTA 1DC files are laid out (``TDIM = (n_lat, n_lon, n_energy)``). :func:`irf_to_hdu`
follows that reader: it writes the bkg_3d array as numpy ``(energy, fov_lon, fov_lat)`` with
the axis columns ``ENERG, DETX, DETY``. Gammapy reads such tables correctly too (it transposes
a background array whose shape does not match its axes), except when ``n_energy == n_fov_lat``
where the shape is ambiguous; avoid that binning if the files are for Gammapy as well.

Column names and units: variables carry their FITS name in the ``fits_name`` attr (as the
readers set it) or are written upper-case; ``units`` attrs become ``TUNIT``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from astropy import units as u
from astropy.io import fits

from gammaxr.geom.axes import axis_coords, axis_lo_hi
from gammaxr.io.irf_fits import IRF_CLASSES

__all__ = [
    "GADF_HEADER",
    "events_to_hdu",
    "gti_to_hdu",
    "hdu_index_to_hdu",
    "irf_to_hdu",
    "obs_index_to_hdu",
    "relocate_hdu_index",
    "replace_hdus",
    "table_to_hdu",
    "write_fits",
    "write_index_files",
]

#: Keywords every GADF HDU written here carries.
GADF_HEADER = {
    "HDUCLASS": "GADF",
    "HDUDOC": "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats",
    "HDUVERS": "0.3",
}

#: Value of the ``CREATOR`` keyword written by default.
CREATOR = "gammaxr"

# dim -> axis column prefix
_AXIS_COLUMNS = {
    "energy": "ENERG",
    "energy_true": "ENERG",
    "offset": "THETA",
    "migra": "MIGRA",
    "rad": "RAD",
    "fov_lon": "DETX",
    "fov_lat": "DETY",
}

# class -> (axis dims in column order, data column, HDUCLAS2, default EXTNAME)
_IRF_LAYOUT = {
    "aeff_2d": (("energy_true", "offset"), "EFFAREA", "EFF_AREA", "EFFECTIVE AREA"),
    "edisp_2d": (("energy_true", "migra", "offset"), "MATRIX", "EDISP", "ENERGY DISPERSION"),
    "psf_table": (("energy_true", "offset", "rad"), "RPSF", "RPSF", "POINT SPREAD FUNCTION"),
    "psf_3gauss": (("energy_true", "offset"), None, "RPSF", "POINT SPREAD FUNCTION"),
    "bkg_2d": (("energy", "offset"), "BKG", "BKG", "BACKGROUND"),
    "bkg_3d": (("energy", "fov_lon", "fov_lat"), "BKG", "BKG", "BACKGROUND"),
}
_PSF_3GAUSS_PARAMS = ("scale", "sigma_1", "ampl_2", "sigma_2", "ampl_3", "sigma_3")

_FITS_KEY = re.compile(r"^[A-Z0-9_-]{1,8}$")
_FORMAT_CODES = {"b": "L", "u1": "B", "i2": "I", "i4": "J", "i8": "K", "f4": "E", "f8": "D"}


# --------------------------------------------------------------------------- helpers


def _header(*parts: Mapping[str, Any] | None) -> fits.Header:
    """A header from mappings (later ones win); keys that are not FITS keywords are skipped."""
    header = fits.Header()
    for part in parts:
        for key, value in (part or {}).items():
            key = str(key).upper()
            if not _FITS_KEY.match(key) or key in ("EXTNAME",):
                continue
            if isinstance(value, (np.generic,)):
                value = value.item()
            if isinstance(value, (bool, int, float, str)):
                header[key] = value
    return header


def _fits_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attrs that are FITS keywords as the readers keep them (upper-case names)."""
    return {k: v for k, v in attrs.items() if isinstance(k, str) and _FITS_KEY.match(k)}


def _format(arr: np.ndarray, name: str) -> str:
    """FITS TFORM of one row of ``arr`` (shape ``(nrow, ...)``)."""
    repeat = int(np.prod(arr.shape[1:], dtype=int)) if arr.ndim > 1 else 1
    kind = arr.dtype.kind
    if kind in "SU":
        width = max(1, int(np.char.str_len(arr.astype(str)).max(initial=1)))
        return f"{width}A"
    code = _FORMAT_CODES.get("b" if kind == "b" else f"{kind}{arr.dtype.itemsize}")
    if code is None:
        if kind in "iu":
            code = "K"
        elif kind == "f":
            code = "D"
        else:
            raise TypeError(f"column {name!r}: cannot write dtype {arr.dtype} to FITS")
    return f"{repeat}{code}" if repeat != 1 else code


def _fits_unit(unit: str) -> str:
    """A unit in FITS syntax (``"1 / sr"`` -> ``"sr-1"``), as FITS readers (Gammapy) parse it.

    The readers keep units as astropy's generic strings; written verbatim, some of them
    (``"1 / sr"``, ``"1 / (MeV s sr)"``) are not valid FITS units. Valid FITS units and
    unparseable ones are kept as given.
    """
    if not unit:
        return ""
    try:
        u.Unit(unit, format="fits")
        return unit
    except (ValueError, u.UnitsError):
        pass
    try:
        return u.Unit(unit).to_string("fits")
    except (ValueError, u.UnitsError):
        return unit


def _column(name: str, arr: np.ndarray, unit: str = "") -> fits.Column:
    """A FITS column of ``nrow`` rows; extra numpy axes become a ``TDIM`` (reversed order)."""
    unit = _fits_unit(unit)
    arr = np.asarray(arr)
    if arr.dtype.kind == "U":
        arr = arr.astype("S")
    dim = None
    if arr.ndim > 2:
        dim = "(" + ",".join(str(n) for n in reversed(arr.shape[1:])) + ")"
    return fits.Column(name=name, format=_format(arr, name), unit=unit or None, dim=dim, array=arr)


# --------------------------------------------------------------------------- IRFs


def _irf_class(irf: xr.DataArray | xr.Dataset, irf_class: str | None) -> str:
    irf_class = irf_class or irf.attrs.get("irf_class")
    if irf_class is None:
        if isinstance(irf, xr.Dataset):
            irf_class = "psf_3gauss"
        else:
            matches = [k for k, v in _IRF_LAYOUT.items() if set(v[0]) == set(irf.dims)]
            irf_class = matches[0] if len(matches) == 1 else None
    if irf_class not in IRF_CLASSES:
        raise ValueError(
            f"cannot tell the GADF class of an IRF with dims {tuple(irf.dims)}; give irf_class "
            f"(one of {', '.join(IRF_CLASSES)})"
        )
    return irf_class


def _data_array(var: xr.DataArray, dims: Sequence[str], irf_class: str) -> np.ndarray:
    """numpy layout of the data column (see the module docstring)."""
    order = tuple(dims) if irf_class == "bkg_3d" else tuple(reversed(dims))
    return np.asarray(var.transpose(*order).values)


def irf_to_hdu(
    irf: xr.DataArray | xr.Dataset,
    irf_class: str | None = None,
    *,
    extname: str | None = None,
    header: Mapping[str, Any] | None = None,
    dtype: str = "float64",
) -> fits.BinTableHDU:
    """Convert an IRF in the layout of :func:`gammaxr.io.irf_fits.read_irf_hdu` to a GADF HDU.

    Parameters
    ----------
    irf : xarray.DataArray or xarray.Dataset
        aeff ``(energy_true, offset)`` m2; edisp ``(energy_true, migra, offset)``; psf
        ``(energy_true, offset, rad)`` sr-1; bkg ``(energy, offset)`` or
        ``(energy, fov_lon, fov_lat)`` s-1 MeV-1 sr-1; psf_3gauss: a Dataset of ``scale``,
        ``sigma_1``, ``ampl_2``, ``sigma_2``, ``ampl_3``, ``sigma_3`` over
        ``(energy_true, offset)``. Dims in any order; every axis needs bin edges
        (``{dim}_lo``/``{dim}_hi`` or ``{dim}_bounds`` coordinates; nodes where lo == hi are
        kept as such) and a ``units`` attr on its coordinate and on the data. In memory or
        dask (computed here: writing is a computation boundary).
    irf_class : str, optional
        GADF class; default the ``irf_class`` attr, else guessed from the dims.
    extname : str, optional
        HDU name; default the GADF one (``"BACKGROUND"``, ``"EFFECTIVE AREA"``, ...).
    header : mapping, optional
        Extra keywords (override the defaults). For backgrounds ``FOVALIGN`` is the
        ``fov_alignment`` attr (default ``RADEC``); a ``REVERSE_LON_RADEC`` table (H.E.S.S.
        DR1 as :attr:`gammaxr.data.Observation.bkg` gives it) is written as the equivalent
        ``RADEC`` table, FoV longitude negated. ``CREATOR`` is the ``creator`` attr of a table
        read from a file (kept, so that the legacy rule of
        :func:`gammaxr.io.irf_fits.legacy_fov_alignment` still applies to a copied H.E.S.S.
        table), else ``gammaxr``. For aeff ``LO_THRES``/``HI_THRES`` come from the
        ``lo_threshold``/``hi_threshold`` attrs (TeV).
    dtype : {"float64", "float32"}
        Type of the axis and data columns.

    Returns
    -------
    astropy.io.fits.BinTableHDU
        One row; axis columns in GADF order, data column with ``TDIM``.
    """
    irf_class = _irf_class(irf, irf_class)
    dims, data_column, hduclas2, default_name = _IRF_LAYOUT[irf_class]
    if set(irf.dims) != set(dims):
        raise ValueError(f"{irf_class}: IRF has dims {tuple(irf.dims)}, expected {dims}")
    alignment = str(irf.attrs.get("fov_alignment", "RADEC")).upper()
    creator = irf.attrs.get("creator", CREATOR)
    if irf_class == "bkg_3d" and alignment == "REVERSE_LON_RADEC":
        # written as the equivalent RADEC table: FoV longitude negated
        lo, hi = axis_lo_hi(irf, "fov_lon")
        irf = irf.isel(fov_lon=slice(None, None, -1)).drop_vars(
            ["fov_lon_lo", "fov_lon_hi", "fov_lon_bounds"], errors="ignore"
        )
        unit = irf.coords["fov_lon"].attrs.get("units", "deg")
        irf = irf.assign_coords(
            axis_coords("fov_lon", lo=-hi[::-1], hi=-lo[::-1], unit=unit, lohi=True)
        )
        alignment, creator = "RADEC", CREATOR
    columns = []
    for dim in dims:
        lo, hi = axis_lo_hi(irf, dim)
        unit = irf.coords[dim].attrs.get("units", "")
        prefix = _AXIS_COLUMNS[dim]
        columns.append(_column(f"{prefix}_LO", np.asarray(lo, dtype=dtype)[None], unit))
        columns.append(_column(f"{prefix}_HI", np.asarray(hi, dtype=dtype)[None], unit))
    if irf_class == "psf_3gauss":
        for param in _PSF_3GAUSS_PARAMS:
            if param not in irf:
                raise ValueError(f"psf_3gauss: parameter {param!r} missing")
            values = _data_array(irf[param], dims, irf_class).astype(dtype)
            columns.append(_column(param.upper(), values[None], irf[param].attrs.get("units", "")))
    else:
        values = _data_array(irf, dims, irf_class).astype(dtype)
        columns.append(_column(data_column, values[None], irf.attrs.get("units", "")))
    keywords: dict[str, Any] = {
        **GADF_HEADER,
        "HDUCLAS1": "RESPONSE",
        "HDUCLAS2": hduclas2,
        "HDUCLAS3": "FULL-ENCLOSURE",
        "HDUCLAS4": irf_class.upper(),
    }
    if creator:
        keywords["CREATOR"] = creator
    if irf_class.startswith("bkg"):
        keywords["FOVALIGN"] = alignment
    if irf_class == "aeff_2d":
        for attr, key in (("lo_threshold", "LO_THRES"), ("hi_threshold", "HI_THRES")):
            if attr in irf.attrs:
                keywords[key] = float(irf.attrs[attr])
    hdu = fits.BinTableHDU.from_columns(columns, header=_header(keywords, header))
    hdu.name = extname or default_name
    return hdu


# --------------------------------------------------------------------------- tables


def table_to_hdu(
    ds: xr.Dataset,
    dim: str,
    *,
    extname: str,
    header: Mapping[str, Any] | None = None,
    columns: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> fits.BinTableHDU:
    """Convert a table-like Dataset (one row per element of ``dim``) to a binary table.

    The inverse of :func:`gammaxr.io.gadf.table_to_dataset`: every variable or coordinate
    whose first dim is ``dim`` becomes a column named by its ``fits_name`` attr (else its
    name upper-cased), with its ``units`` attr as ``TUNIT``; extra dims make vector columns.
    Dataset attrs that are valid FITS keywords with scalar values become header keywords.

    Parameters
    ----------
    ds : xarray.Dataset
        The table (numpy or dask; computed here).
    dim : str
        Row dimension.
    extname : str
        HDU name.
    header : mapping, optional
        Extra keywords, overriding the Dataset attrs.
    columns : iterable of str, optional
        Variables to write, in this order; default all along ``dim`` (the coordinate of
        ``dim`` first, if any).
    exclude : iterable of str
        Variables not to write.
    defaults : mapping, optional
        Keywords used where neither the attrs nor ``header`` give them.

    Returns
    -------
    astropy.io.fits.BinTableHDU
    """
    exclude = set(exclude)
    if columns is None:
        names = [dim] if dim in ds.variables else []
        names += [n for n, v in ds.variables.items() if v.dims[:1] == (dim,) and n != dim]
    else:
        names = list(columns)
    cols = []
    for name in names:
        if name in exclude:
            continue
        var = ds.variables[name]
        if var.dims[:1] != (dim,):
            raise ValueError(f"{extname}: variable {name!r} has dims {var.dims}, not along {dim}")
        fits_name = var.attrs.get("fits_name") or str(name).upper()
        cols.append(_column(fits_name, np.asarray(var.values), var.attrs.get("units", "")))
    hdu = fits.BinTableHDU.from_columns(
        cols, header=_header(defaults, _fits_attrs(ds.attrs), header)
    )
    hdu.name = extname
    return hdu


def events_to_hdu(events: xr.Dataset, header: Mapping[str, Any] | None = None) -> fits.BinTableHDU:
    """GADF ``EVENTS`` table from an event Dataset (dim ``event``).

    Parameters
    ----------
    events : xarray.Dataset
        ``ra``, ``dec`` (deg, icrs), ``energy`` (TeV), ``time`` (s MET) and any other columns
        along ``event``; attrs become keywords (give at least ``OBS_ID``, ``RA_PNT``,
        ``DEC_PNT``, ``TSTART``, ``TSTOP``, ``ONTIME``, ``LIVETIME``, ``DEADC``, ``MJDREFI``,
        ``MJDREFF``, ``TIMESYS``).
    header : mapping, optional
        Extra keywords.

    Returns
    -------
    astropy.io.fits.BinTableHDU
        Named ``EVENTS`` with ``HDUCLAS1 = EVENTS``.
    """
    keywords = {**GADF_HEADER, "HDUCLAS1": "EVENTS", "CREATOR": CREATOR}
    return table_to_hdu(events, "event", extname="EVENTS", header=header, defaults=keywords)


def gti_to_hdu(gti: xr.Dataset, header: Mapping[str, Any] | None = None) -> fits.BinTableHDU:
    """GADF ``GTI`` table (``start``, ``stop`` in s MET along dim ``gti``)."""
    keywords = {**GADF_HEADER, "HDUCLAS1": "GTI"}
    return table_to_hdu(gti, "gti", extname="GTI", header=header, defaults=keywords)


def obs_index_to_hdu(
    obs_table: xr.Dataset, header: Mapping[str, Any] | None = None
) -> fits.BinTableHDU:
    """GADF observation index from an observation table (dim ``obs_id``).

    Parameters
    ----------
    obs_table : xarray.Dataset
        As :func:`gammaxr.io.gadf.read_obs_index` returns it (or
        :attr:`gammaxr.data.DataStore.obs_table`); column names from the ``fits_name`` attrs.
    header : mapping, optional
        Extra keywords (``MJDREFI``, ``MJDREFF``, ``TIMESYS`` ... are taken from the attrs).
    """
    keywords = {**GADF_HEADER, "HDUCLAS1": "INDEX", "HDUCLAS2": "OBS"}
    return table_to_hdu(obs_table, "obs_id", extname="OBS_INDEX", header=header, defaults=keywords)


_HDU_INDEX_COLUMNS = ("obs_id", "hdu_type", "hdu_class", "file_dir", "file_name", "hdu_name")


def hdu_index_to_hdu(
    hdu_index: xr.Dataset, header: Mapping[str, Any] | None = None
) -> fits.BinTableHDU:
    """GADF HDU index from an index Dataset (dim ``hdu``).

    ``hdu_index`` has ``obs_id``, ``hdu_type``, ``hdu_class``, ``file_dir``, ``file_name`` and
    ``hdu_name`` along ``hdu``; other columns are written too, except ``path`` (the resolved
    path :func:`gammaxr.io.gadf.read_hdu_index` adds). Make ``file_dir`` right for the place
    the index is written to first (:func:`relocate_hdu_index`). ``header``: extra keywords;
    ``BASE_DIR`` is not written unless given here.
    """
    missing = [c for c in _HDU_INDEX_COLUMNS if c not in hdu_index.variables]
    if missing:
        raise ValueError(f"HDU index lacks column(s) {[c.upper() for c in missing]}")
    others = [
        n
        for n, v in hdu_index.variables.items()
        if v.dims[:1] == ("hdu",) and n not in _HDU_INDEX_COLUMNS and n != "path"
    ]
    attrs = {k: v for k, v in hdu_index.attrs.items() if k != "BASE_DIR"}
    keywords = {**GADF_HEADER, "HDUCLAS1": "INDEX", "HDUCLAS2": "HDU"}
    return table_to_hdu(
        hdu_index.drop_attrs(deep=False).assign_attrs(attrs),
        "hdu",
        extname="HDU_INDEX",
        header=header,
        defaults=keywords,
        columns=[*_HDU_INDEX_COLUMNS, *others],
    )


def relocate_hdu_index(hdu_index: xr.Dataset, index_dir: str | os.PathLike) -> xr.Dataset:
    """Rewrite ``file_dir``/``file_name`` so that the index works from ``index_dir``.

    Parameters
    ----------
    hdu_index : xarray.Dataset
        HDU index with the resolved ``path`` of every HDU (as
        :func:`gammaxr.io.gadf.read_hdu_index` and :attr:`gammaxr.data.DataStore.hdu_table`
        give it; rows added by hand need a ``path`` too).
    index_dir : str or os.PathLike
        Directory the new index file will be written to.

    Returns
    -------
    xarray.Dataset
        A new Dataset: ``file_dir`` relative to ``index_dir`` (POSIX separators; ``"."`` for
        the same directory), ``file_name`` the base name, ``path`` unchanged, no ``BASE_DIR``.
    """
    if "path" not in hdu_index:
        raise ValueError("HDU index has no resolved 'path' column; cannot relocate it")
    index_dir = Path(index_dir).resolve()
    paths = [Path(p).resolve() for p in hdu_index["path"].values.astype(str)]
    dirs = [Path(os.path.relpath(p.parent, index_dir)).as_posix() for p in paths]
    names = [p.name for p in paths]
    out = hdu_index.copy()
    for key, values in (("file_dir", dirs), ("file_name", names)):
        out[key] = xr.Variable("hdu", np.array(values, dtype=str), hdu_index[key].attrs)
    out.attrs = {k: v for k, v in hdu_index.attrs.items() if k not in ("BASE_DIR", "base_dir")}
    return out


def write_fits(
    path: str | os.PathLike,
    hdus: Sequence[fits.BinTableHDU],
    *,
    overwrite: bool = False,
    primary_header: Mapping[str, Any] | None = None,
) -> Path:
    """Write table HDUs after an empty primary HDU (gzipped if the name ends with ``.gz``).

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its directory is created if needed.
    hdus : sequence of astropy.io.fits.BinTableHDU
        Extensions, in order; their names must be unique.
    overwrite : bool
        Replace an existing file.
    primary_header : mapping, optional
        Keywords of the primary HDU (``CREATOR`` defaults to gammaxr).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    names = [h.name for h in hdus]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: HDU names must be unique, got {names}")
    path.parent.mkdir(parents=True, exist_ok=True)
    primary = fits.PrimaryHDU(header=_header({"CREATOR": CREATOR}, primary_header))
    fits.HDUList([primary, *hdus]).writeto(path, overwrite=overwrite)
    return path


def replace_hdus(
    hdu_index: xr.Dataset,
    hdu_type: str,
    hdu_class: str,
    path: str | os.PathLike,
    hdu_names: Mapping[int, str],
) -> xr.Dataset:
    """HDU index in which the ``hdu_type`` HDU of some runs lives in another file.

    Parameters
    ----------
    hdu_index : xarray.Dataset
        HDU index with resolved ``path`` (:attr:`gammaxr.data.DataStore.hdu_table`).
    hdu_type, hdu_class : str
        HDU type and GADF class of the new HDUs, e.g. ``"bkg"``, ``"bkg_2d"``.
    path : str or os.PathLike
        File holding the new HDUs.
    hdu_names : mapping of int to str
        obs_id -> name of its HDU in ``path``.

    Returns
    -------
    xarray.Dataset
        Every row of ``hdu_index`` except the ``hdu_type`` rows of the runs in ``hdu_names``,
        plus one new row per run (other columns, e.g. ``SIZE``, zero or empty), sorted by
        ``obs_id`` (stable). ``file_dir`` of the new rows is provisional: relocate the index
        (:func:`relocate_hdu_index`, done by :func:`write_index_files`) before writing it.
    """
    path = Path(path).resolve()
    ids = np.array(sorted(int(i) for i in hdu_names), dtype=np.int64)
    drop = np.isin(hdu_index["obs_id"].values, ids) & (hdu_index["hdu_type"].values == hdu_type)
    kept = hdu_index.isel(hdu=np.flatnonzero(~drop))
    values = {
        "obs_id": ids,
        "hdu_type": np.full(ids.size, hdu_type),
        "hdu_class": np.full(ids.size, hdu_class),
        "file_dir": np.full(ids.size, path.parent.as_posix()),
        "file_name": np.full(ids.size, path.name),
        "hdu_name": np.array([hdu_names[i] for i in ids.tolist()], dtype=str),
        "path": np.full(ids.size, str(path)),
    }
    data = {}
    for name, var in kept.variables.items():
        if var.dims != ("hdu",):
            continue
        text = var.dtype.kind in "SU"
        if name in values:
            arr = values[name]
        else:  # other columns (e.g. SIZE): empty value of their type
            arr = np.full(ids.size, "") if text else np.zeros(ids.size, var.dtype)
        data[name] = xr.Variable(
            "hdu", arr.astype(str) if text else arr.astype(var.dtype), var.attrs
        )
    if ids.size:
        kept = xr.concat([kept, xr.Dataset(data)], dim="hdu", data_vars="all")
    return kept.isel(hdu=np.argsort(kept["obs_id"].values, kind="stable"))


def write_index_files(
    directory: str | os.PathLike,
    hdu_index: xr.Dataset,
    obs_table: xr.Dataset,
    *,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write ``hdu-index.fits.gz`` and ``obs-index.fits.gz`` of a data store.

    Parameters
    ----------
    directory : str or os.PathLike
        Data store directory (created if needed).
    hdu_index : xarray.Dataset
        HDU index (dim ``hdu``). With a resolved ``path`` column it is first relocated to
        ``directory`` (:func:`relocate_hdu_index`); without, ``file_dir`` must already be
        relative to ``directory``.
    obs_table : xarray.Dataset
        Observation table (dim ``obs_id``).
    overwrite : bool
        Replace existing files.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The HDU index and observation index files;
        ``gammaxr.data.open_datastore(directory)`` opens them.
    """
    directory = Path(directory)
    if "path" in hdu_index:
        hdu_index = relocate_hdu_index(hdu_index, directory)
    hdu_path = write_fits(
        directory / "hdu-index.fits.gz", [hdu_index_to_hdu(hdu_index)], overwrite=overwrite
    )
    obs_path = write_fits(
        directory / "obs-index.fits.gz", [obs_index_to_hdu(obs_table)], overwrite=overwrite
    )
    return hdu_path, obs_path
