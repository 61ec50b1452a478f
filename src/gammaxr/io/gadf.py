"""Low-level GADF DL3 readers: index tables, events, GTIs and IRF HDU dispatch.

Everything here turns FITS tables into ``xarray.Dataset`` objects and knows nothing
about data stores or observations (see :mod:`gammaxr.data` for those).

Naming convention (used by every reader here and by :mod:`gammaxr.data`):

- table columns become variables with **lower-case** names, ``-`` replaced by ``_``
  (``OBS_ID`` -> ``obs_id``, ``DATE-OBS`` -> ``date_obs``); the original FITS name is kept in
  the variable attr ``fits_name``; see :func:`column_name`;
- every variable has a ``units`` attr (astropy unit string, ``""`` when dimensionless or absent);
- text columns are numpy ``str`` arrays with trailing blanks removed;
- header keywords are kept **verbatim** (upper-case FITS names) in the Dataset attrs, except
  the table-structure keywords (``NAXIS*``, ``TTYPE*``, ``TFORM*`` ...); time variables also
  carry ``MJDREFI``, ``MJDREFF``, ``TIMESYS`` and ``TIMEREF`` in their own attrs.

Files are read whole into memory and, when they start with the gzip magic bytes,
decompressed in one go (a corrupt gzip fails at once with
:class:`~gammaxr.io.errors.CorruptFileError`), whatever their name ends with. Tables are then
parsed with numpy, handing what it does not read to fitsio or astropy (see
:mod:`gammaxr.io.fits_backend`: ``GAMMAXR_FITS_BACKEND=astropy`` or the ``backend="astropy"``
argument of the readers force astropy); all give the same Datasets. The readers below take a
:class:`~gammaxr.io.fits_backend.FitsTable` or an astropy ``BinTableHDU``.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from astropy import units as u
from astropy.time import Time, TimeDelta

from gammaxr.io.errors import CorruptFileError, DL3Error, HDUNotFoundError, MissingFileError
from gammaxr.io.fits_backend import (
    FitsFile,
    FitsHeader,
    FitsTable,
    as_table,
    header_cards,
    open_fits_file,
    unit_string,
)
from gammaxr.io.fits_structure import BLOCK as _BLOCK
from gammaxr.io.fits_structure import data_size, padded_size, parse_header
from gammaxr.io.irf_fits import IRF_CLASSES, read_irf_hdu
from gammaxr.units import unit_factor

__all__ = [
    "HDU_INDEX_NAMES",
    "OBS_INDEX_NAMES",
    "READABLE_CLASSES",
    "column_name",
    "find_index_files",
    "header_attrs",
    "met_to_time",
    "open_fits",
    "read_events_hdu",
    "read_file_hdus",
    "read_gti_hdu",
    "read_hdu",
    "read_hdu_index",
    "read_header",
    "read_obs_index",
    "table_to_dataset",
    "time_reference",
    "time_to_met",
    "unit_string",
]

#: File names looked for in a data store directory, in order of preference.
HDU_INDEX_NAMES = ("hdu-index.fits.gz", "hdu-index.fits")
OBS_INDEX_NAMES = ("obs-index.fits.gz", "obs-index.fits")

#: HDU classes :func:`read_hdu` converts (events, GTIs and the IRF classes).
READABLE_CLASSES = ("events", "gti", *IRF_CLASSES)

#: Columns an event list must have.
EVENT_REQUIRED = ("time", "ra", "dec", "energy")

_STRUCTURAL = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|EXTNAME|EXTVER|COMMENT|HISTORY|"
    r"T(TYPE|FORM|UNIT|ZERO|SCAL|NULL|DIM|DISP|UCD|COMM)\d+|)$"
)
_TIME_KEYS = ("MJDREFI", "MJDREFF", "TIMESYS", "TIMEREF", "TIMEUNIT")


# --------------------------------------------------------------------------- helpers


def column_name(name: str) -> str:
    """gammaxr variable name of a FITS column or keyword: lower-case, ``-`` -> ``_``."""
    return name.strip().lower().replace("-", "_")


def header_attrs(header: Mapping[str, Any]) -> dict[str, Any]:
    """Header keywords as a plain dict (FITS names), without the table-structure keywords.

    Parameters
    ----------
    header : FitsHeader, astropy.io.fits.Header or mapping
        Header of a table HDU (:attr:`gammaxr.io.fits_backend.FitsTable.header`).

    Returns
    -------
    dict
        Keyword -> value (str, int, float or bool); undefined values are left out.
    """
    out: dict[str, Any] = {}
    for key, value in header_cards(header):
        if _STRUCTURAL.match(key) or key in out:
            continue
        if isinstance(value, (bool, np.bool_)):
            out[key] = bool(value)
        elif isinstance(value, (int, float, str, np.integer, np.floating)):
            out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def _time_attrs(header: Mapping[str, Any]) -> dict[str, Any]:
    return {k: header[k] for k in _TIME_KEYS if k in header}


def time_reference(attrs: Mapping[str, Any]) -> Time:
    """Reference epoch of mission elapsed time (MET) from ``MJDREFI``/``MJDREFF``/``TIMESYS``.

    Parameters
    ----------
    attrs : mapping
        Header keywords or the attrs of a table/time variable (``MJDREFI``, ``MJDREFF`` and
        optionally ``TIMESYS``, default ``tt``; ``MJDREF`` alone is accepted too).

    Returns
    -------
    astropy.time.Time
        The MET zero point.
    """
    scale = str(attrs.get("TIMESYS", "tt")).strip().lower() or "tt"
    if "MJDREFI" in attrs:
        mjd_int, mjd_frac = float(attrs["MJDREFI"]), float(attrs.get("MJDREFF", 0.0))
    elif "MJDREF" in attrs:
        mjd_int, mjd_frac = float(attrs["MJDREF"]), 0.0
    else:
        raise DL3Error("no MJDREFI/MJDREFF (or MJDREF) keywords: cannot convert MET to time")
    return Time(mjd_int, mjd_frac, format="mjd", scale=scale)


def met_to_time(met: Any, attrs: Mapping[str, Any]) -> Time:
    """Convert mission elapsed time in seconds to :class:`astropy.time.Time`.

    Parameters
    ----------
    met : float or array_like
        Seconds since the reference epoch (any shape).
    attrs : mapping
        Keywords defining the reference, see :func:`time_reference`.
    """
    return time_reference(attrs) + TimeDelta(np.asarray(met, dtype=float), format="sec")


def time_to_met(time: Time, attrs: Mapping[str, Any]) -> np.ndarray:
    """Convert :class:`astropy.time.Time` to mission elapsed time in seconds (float array)."""
    ref = time_reference(attrs)
    return np.asarray((time - ref).to_value("s"), dtype=float)


# --------------------------------------------------------------------------- files


def open_fits(path: str | os.PathLike, backend: str | None = None) -> FitsFile:
    """Open a FITS file for reading: :func:`~gammaxr.io.fits_backend.open_fits_file`.

    Every reader in gammaxr opens files through this function, once per file and read,
    with the ``backend`` it was given (see :mod:`gammaxr.io.fits_backend`).
    """
    return open_fits_file(path, backend)


def _get_hdu(hdul: FitsFile, hdu_name: str, path: str | os.PathLike) -> FitsTable:
    try:
        return hdul[hdu_name]
    except KeyError:
        pass
    except (OSError, ValueError, IndexError) as exc:
        raise CorruptFileError(
            f"{path}: cannot parse HDUs while looking for {hdu_name!r}: {exc}"
        ) from exc
    try:
        names = hdul.hdu_names()
    except (OSError, ValueError, IndexError):
        names = ["<unreadable>"]
    raise HDUNotFoundError(f"{path}: no HDU named {hdu_name!r} in the file (it has {names})")


def _stream_header(stream) -> list[tuple[str, Any]] | None:
    """The (keyword, value) cards of the next HDU header of a FITS byte stream
    (:func:`~gammaxr.io.fits_structure.parse_header`), or None at the end of the stream."""
    raw = b""
    for _ in range(1000):
        block = stream.read(_BLOCK)
        if len(block) < _BLOCK:
            return None
        raw += block
        if any(block[i : i + 8] == b"END     " for i in range(0, _BLOCK, 80)):
            return parse_header(raw, 0)[0]  # Unsupported (a ValueError) if it cannot
    return None


def read_leading_header(path: str | os.PathLike, hdu_name: str, max_hdus: int = 4):
    """Keywords of an HDU near the start of a file, decompressing only up to its header.

    The events header of a DL3 run file sits right after the primary header, so run metadata
    can be read without inflating the whole file. Returns None when the HDU is not among the
    first ``max_hdus`` or anything about the file is unusual; callers then read the file the
    regular way (:func:`read_file_hdus`), which also reports errors properly.

    Parameters
    ----------
    path : str or os.PathLike
        FITS file, gzipped or not.
    hdu_name : str
        EXTNAME of the HDU (case-insensitive).
    max_hdus : int
        How many HDUs to look through.

    Returns
    -------
    dict or None
        As :func:`header_attrs`, or None.
    """
    try:
        with open(path, "rb") as raw:
            magic = raw.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as stream:
            for index in range(max_hdus):
                cards = _stream_header(stream)
                if cards is None:
                    return None
                header = FitsHeader(cards)
                name = str(header.get("EXTNAME", "PRIMARY" if index == 0 else "")).strip()
                if name.upper() == hdu_name.upper():
                    return header_attrs(header)
                size = padded_size(data_size(header))
                if size and len(stream.read(size)) < size:
                    return None
    except (OSError, EOFError, ValueError, KeyError, zlib.error):
        return None
    return None


def read_header(
    path: str | os.PathLike, hdu_name: str, backend: str | None = None
) -> dict[str, Any]:
    """Keywords of one HDU of a FITS file (see :func:`header_attrs`), read with ``backend``."""
    with open_fits(path, backend) as hdul:
        return header_attrs(_get_hdu(hdul, hdu_name, path).header)


def read_file_hdus(
    path: str | os.PathLike, requests: Iterable[tuple[str, str]], backend: str | None = None
) -> dict[tuple[str, str], Any]:
    """Open one file once and read several of its HDUs.

    Parameters
    ----------
    path : str or os.PathLike
        FITS file (gzipped or not).
    requests : iterable of (hdu_name, hdu_class)
        HDUs to read and how to read them; ``hdu_class`` is one of :data:`READABLE_CLASSES`
        or ``"header"`` (only the keywords, as a dict).
    backend : {"numpy", "fitsio", "astropy", "auto"}, optional
        FITS library (see :mod:`gammaxr.io.fits_backend`); default the environment's.

    Returns
    -------
    dict
        ``(hdu_name, hdu_class) -> value`` for every request, where the value is what
        :func:`read_hdu` returns, or the exception (a :class:`DL3Error`) raised reading that
        HDU, so that one bad HDU does not hide the others. Errors concerning the whole file
        (missing, corrupt) are raised.
    """
    requests = list(dict.fromkeys(requests))
    out: dict[tuple[str, str], Any] = {}
    with open_fits(path, backend) as hdul:
        for hdu_name, hdu_class in requests:
            try:
                hdu = _get_hdu(hdul, hdu_name, path)
                source = f"{path}[{hdu_name}]"
                if hdu_class == "header":
                    out[hdu_name, hdu_class] = header_attrs(hdu.header)
                else:
                    out[hdu_name, hdu_class] = read_hdu(hdu, hdu_class, source)
            except DL3Error as exc:
                out[hdu_name, hdu_class] = exc
    return out


# --------------------------------------------------------------------------- tables


def table_to_dataset(
    hdu: FitsTable, dim: str, *, source: str = "", index: str | None = None
) -> xr.Dataset:
    """Convert a FITS binary table into an ``xarray.Dataset`` along ``dim``.

    Parameters
    ----------
    hdu : FitsTable or astropy.io.fits.BinTableHDU
        The table (may have zero rows).
    dim : str
        Name of the row dimension (``"event"``, ``"gti"``, ``"obs_id"``, ``"hdu"``).
    source : str
        File/HDU name for error messages.
    index : str, optional
        Variable name (after :func:`column_name`) to make the coordinate of ``dim``.

    Returns
    -------
    xarray.Dataset
        One variable per column (lower-case names, native byte order, ``units`` and
        ``fits_name`` attrs; vector columns get extra dims ``{name}_dim_{i}``), header
        keywords in attrs.
    """
    table = _as_binary_table(hdu, source)
    ds = xr.Dataset(_table_variables(table, dim, source), attrs=header_attrs(table.header))
    if index is not None:
        if index not in ds:
            raise DL3Error(f"{source}: table has no column {index.upper()!r}")
        ds = ds.set_coords(index)
        if index != dim:
            ds = ds.swap_dims({dim: index})
    return ds


def _table_variables(table: FitsTable, dim: str, source: str) -> dict[str, xr.Variable]:
    """One variable per column, see :func:`table_to_dataset`."""
    variables: dict[str, xr.Variable] = {}
    for col in table.columns:
        name = column_name(col.name)
        try:
            arr = table.column(col.name)
        except (ValueError, TypeError, KeyError, OSError) as exc:
            raise DL3Error(f"{source}: cannot read column {col.name!r}: {exc}") from exc
        dims = (dim, *(f"{name}_dim_{i}" for i in range(1, arr.ndim)))
        attrs = {"units": unit_string(col.unit), "fits_name": col.name}
        variables[name] = xr.Variable(dims, arr, attrs)
    return variables


def _as_binary_table(hdu: Any, source: str) -> FitsTable:
    table = as_table(hdu)
    if not table.is_table:
        raise DL3Error(f"{source}: HDU {table.name!r} is not a binary table")
    return table


def _require_columns(
    variables: Mapping[str, Any], names: Iterable[str], source: str, what: str
) -> None:
    missing = [n.upper() for n in names if n not in variables]
    if missing:
        raise DL3Error(f"{source}: {what} table lacks column(s) {missing}")


def _convert(
    variables: dict[str, xr.Variable],
    name: str,
    unit: str,
    default: str,
    source: str,
    extra_attrs: Mapping[str, Any] | None = None,
) -> None:
    """Convert ``variables[name]`` in place to ``unit`` (from its ``units`` attr or ``default``)."""
    var = variables[name]
    have = var.attrs.get("units") or default
    attrs = {**var.attrs, "units": unit, **(extra_attrs or {})}
    data = var.data
    if have != unit:
        try:
            factor = unit_factor(have, unit)
        except (ValueError, u.UnitConversionError) as exc:
            raise DL3Error(f"{source}: column {name!r} has unit {have!r}, need {unit!r}") from exc
        data = data * factor
    variables[name] = xr.Variable(var.dims, data, attrs)


# --------------------------------------------------------------------------- HDU readers


def read_events_hdu(hdu: FitsTable, source: str = "") -> xr.Dataset:
    """Read a GADF ``EVENTS`` table.

    Parameters
    ----------
    hdu : FitsTable or astropy.io.fits.BinTableHDU
        The events HDU (zero rows allowed).
    source : str
        File/HDU name for error messages and the ``source`` attr.

    Returns
    -------
    xarray.Dataset
        Dim ``event``; variables ``energy`` (TeV), ``ra``, ``dec`` (deg, icrs), ``time``
        (s of mission elapsed time, attrs ``MJDREFI``, ``MJDREFF``, ``TIMESYS``, ``TIMEREF``)
        and every other column under its lower-case name; header keywords in attrs.
    """
    header, variables, tunit = _time_table(hdu, source, "event", EVENT_REQUIRED, "events")
    eunit = str(header.get("EUNIT", "TeV")).strip() or "TeV"
    _convert(variables, "energy", "TeV", eunit, source)
    _convert(variables, "ra", "deg", "deg", source)
    _convert(variables, "dec", "deg", "deg", source)
    _convert(variables, "time", "s", tunit, source, _time_attrs(header))
    return xr.Dataset(variables, attrs={**header_attrs(header), "source": source})


def _time_table(hdu, source: str, dim: str, required: Sequence[str], what: str):
    """Header, variables (``required`` columns checked) and time unit of a table with times."""
    table = _as_binary_table(hdu, source)
    variables = _table_variables(table, dim, source)
    _require_columns(variables, required, source, what)
    return table.header, variables, str(table.header.get("TIMEUNIT", "s")).strip() or "s"


def read_gti_hdu(hdu: FitsTable, source: str = "") -> xr.Dataset:
    """Read a GADF ``GTI`` table (``hdu`` and ``source`` as in :func:`read_events_hdu`).

    Returns a Dataset with dim ``gti``: ``start`` and ``stop`` in s of mission elapsed time
    (attrs as the event ``time``); header keywords in attrs.
    """
    header, variables, tunit = _time_table(hdu, source, "gti", ("start", "stop"), "GTI")
    for name in ("start", "stop"):
        _convert(variables, name, "s", tunit, source, _time_attrs(header))
    return xr.Dataset(variables, attrs={**header_attrs(header), "source": source})


def read_hdu(hdu: FitsTable, hdu_class: str, source: str = "") -> xr.Dataset | xr.DataArray:
    """Read one HDU according to its GADF class.

    Parameters
    ----------
    hdu : FitsTable or astropy.io.fits.BinTableHDU
        The HDU.
    hdu_class : str
        ``"events"``, ``"gti"`` or an IRF class (see :data:`gammaxr.io.irf_fits.IRF_CLASSES`).
    source : str
        File/HDU name for messages.

    Raises
    ------
    UnknownHDUClassError
        If ``hdu_class`` is none of :data:`READABLE_CLASSES`.
    """
    if hdu_class == "events":
        return read_events_hdu(hdu, source)
    if hdu_class == "gti":
        return read_gti_hdu(hdu, source)
    return read_irf_hdu(hdu, hdu_class, source)


# --------------------------------------------------------------------------- index tables


def _first_table(
    path: str | os.PathLike, dim: str, index: str | None = None, backend: str | None = None
) -> xr.Dataset:
    """The first binary table of a file as a Dataset (see :func:`table_to_dataset`)."""
    with open_fits(path, backend) as hdul:
        try:
            table = next(hdul.tables(), None)
        except (OSError, ValueError, IndexError) as exc:
            raise CorruptFileError(f"{path}: cannot parse HDUs: {exc}") from exc
        if table is None:
            raise DL3Error(f"{path}: no binary table HDU in the file")
        return table_to_dataset(table, dim, source=str(path), index=index)


def read_obs_index(path: str | os.PathLike, backend: str | None = None) -> xr.Dataset:
    """Read a GADF observation index into a Dataset indexed by ``obs_id``.

    Parameters
    ----------
    path : str or os.PathLike
        ``obs-index.fits[.gz]``.
    backend : {"numpy", "fitsio", "astropy", "auto"}, optional
        FITS library (see :mod:`gammaxr.io.fits_backend`); default the environment's.

    Returns
    -------
    xarray.Dataset
        Dim and coordinate ``obs_id``; one variable per column (lower-case names, ``-`` ->
        ``_``, ``units`` attrs, text as ``str``); header keywords (``MJDREFI``, ``MJDREFF``,
        ``TIMESYS``, ``GEOLON`` ...) in attrs, plus ``source`` (the file).
    """
    source = str(path)
    ds = _first_table(path, "obs_id", index="obs_id", backend=backend)
    uniq, counts = np.unique(ds["obs_id"].values, return_counts=True)
    if np.any(counts > 1):
        dup = [int(i) for i in uniq[counts > 1][:10]]
        raise DL3Error(f"{source}: obs index lists obs_id(s) {dup} more than once")
    ds.attrs["source"] = source
    return ds


def read_hdu_index(path: str | os.PathLike, backend: str | None = None) -> xr.Dataset:
    """Read a GADF HDU index and resolve the file of every HDU.

    ``FILE_DIR`` is relative to the header keyword ``BASE_DIR`` when given (itself relative
    to the index file's directory unless absolute), else to the index file's directory.

    Parameters
    ----------
    path : str or os.PathLike
        ``hdu-index.fits[.gz]``.
    backend : {"numpy", "fitsio", "astropy", "auto"}, optional
        As in :func:`read_obs_index`.

    Returns
    -------
    xarray.Dataset
        Dim ``hdu``; variables ``obs_id``, ``hdu_type``, ``hdu_class``, ``file_dir``,
        ``file_name``, ``hdu_name`` (and any other column) plus ``path``, the resolved file
        path (str); attrs: header keywords, ``source`` and ``base_dir``.
    """
    source = str(path)
    ds = _first_table(path, "hdu", backend=backend)
    _require_columns(
        ds,
        ("obs_id", "hdu_type", "hdu_class", "file_dir", "file_name", "hdu_name"),
        source,
        "HDU index",
    )
    base = Path(path).resolve().parent
    if ds.attrs.get("BASE_DIR"):
        base = base / str(ds.attrs["BASE_DIR"]).strip()
    for name in ("hdu_type", "hdu_class"):
        ds[name] = ds[name].copy(data=np.char.lower(ds[name].values.astype(str)))
    dirs = ds["file_dir"].values.astype(str)
    names = ds["file_name"].values.astype(str)
    paths = [os.path.normpath(base / d / n) for d, n in zip(dirs, names, strict=True)]
    ds["path"] = xr.Variable("hdu", np.array(paths, dtype=str), {"units": ""})
    ds.attrs.update(source=source, base_dir=str(base))
    return ds


def find_index_files(
    path: str | os.PathLike, obs_index: str | os.PathLike | None = None
) -> tuple[Path, Path]:
    """Locate the HDU index and observation index of a data store.

    Parameters
    ----------
    path : str or os.PathLike
        A data store directory holding ``hdu-index.fits[.gz]`` (and ``obs-index.fits[.gz]``),
        or the HDU index file itself.
    obs_index : str or os.PathLike, optional
        Explicit observation index file; by default looked for beside the HDU index.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        HDU index file, observation index file.

    Raises
    ------
    MissingFileError
        If either index cannot be found (the message lists the names tried).
    """
    path = Path(path)
    if path.is_dir():
        hdu_index = _first_existing(path, HDU_INDEX_NAMES, "HDU index")
        directory = path
    elif path.is_file():
        hdu_index, directory = path, path.parent
    else:
        raise MissingFileError(f"{path}: no such data store directory or HDU index file")
    if obs_index is None:
        obs_path = _first_existing(directory, OBS_INDEX_NAMES, "observation index")
    else:
        obs_path = Path(obs_index)
        if not obs_path.is_file():
            raise MissingFileError(f"{obs_path}: observation index file not found")
    return hdu_index, obs_path


def _first_existing(directory: Path, names: Iterable[str], what: str) -> Path:
    names = list(names)
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise MissingFileError(f"{directory}: no {what} file found (looked for {', '.join(names)})")
