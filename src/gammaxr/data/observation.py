"""One DL3 observation (run): lazy access to its events, GTIs, pointing and IRFs.

An :class:`Observation` is a light handle made by :class:`gammaxr.data.DataStore`: it knows
the run's row of the observation table and where each of its HDUs lives. Nothing is read
until asked:

- ``obs.events``, ``obs.gti``, ``obs.aeff``, ``obs.edisp``, ``obs.psf``, ``obs.bkg`` read the
  HDU from disk **at every access** (no hidden cache) ...
- ... unless the observation is a *loaded snapshot*: :meth:`Observation.read` (or
  :meth:`gammaxr.data.DataStore.load_observations` for many runs) returns a new
  ``Observation`` holding the data it read, opening each distinct file once. The arrays of a
  snapshot are marked read-only because IRFs read from one shared file (CTA) are shared by
  the snapshots of all runs using it; ``.copy(deep=True)`` gives a writable copy.
- run metadata (pointing, livetime, times ...) come from the events HDU header (float64,
  as written by the instrument) and fall back to the observation table where a keyword is
  absent; the header of a lazy observation is read once on first use and kept
  (:attr:`Observation.meta` is a documented ``functools.cached_property``).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, partial
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import xarray as xr
from astropy import units as u
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.time import Time

from gammaxr._dataarrays import with_attrs
from gammaxr.data.obs_row import ObsTableRow
from gammaxr.io.errors import DL3Error, HDUNotFoundError, UnknownHDUClassError
from gammaxr.io.gadf import (
    READABLE_CLASSES,
    met_to_time,
    read_file_hdus,
    read_leading_header,
    time_to_met,
)
from gammaxr.io.irf_fits import legacy_fov_alignment

__all__ = [
    "HDU_TYPES",
    "HDULocation",
    "Observation",
    "event_offsets",
    "events_in_gti",
    "gti_mask",
    "pointing_radec",
    "read_observations",
    "select_events_time",
    "times_in_gti",
]

#: HDU types an observation exposes as attributes, in reading order.
HDU_TYPES = ("events", "gti", "aeff", "edisp", "psf", "bkg")
_META = "meta"


class HDULocation(NamedTuple):
    """Where one HDU of a run lives, as given by the HDU index."""

    hdu_type: str
    hdu_class: str
    path: str
    hdu_name: str

    def describe(self) -> str:
        return f"{self.path}[{self.hdu_name}] ({self.hdu_type}/{self.hdu_class})"


def _hdu_property(hdu_type: str, doc: str) -> property:
    """A read-only property giving :meth:`Observation.get` of ``hdu_type``."""
    return property(lambda self: self.get(hdu_type), doc=doc)


class Observation:
    """Lazy handle on one DL3 observation; see the module docstring for the reading rules.

    Made by :meth:`gammaxr.data.DataStore.observation`; not meant to be built by hand.

    Parameters
    ----------
    obs_id : int
        Observation identifier.
    info : xarray.Dataset or gammaxr.data.obs_row.ObsTableRow
        The run's row of the observation table (a Dataset of 0-d variables with the
        ``obs_id`` scalar coordinate, held as an :class:`~gammaxr.data.obs_row.ObsTableRow`).
    hdus : mapping of str to HDULocation
        HDU type (``"events"``, ``"gti"``, ``"aeff"``, ``"edisp"``, ``"psf"``, ``"bkg"``, ...)
        -> location.
    data : mapping, optional
        Loaded snapshot: HDU type (and ``"meta"``) -> value already read.
    fits_backend : {"numpy", "fitsio", "astropy", "auto"}, optional
        FITS library its files are read with (None: the ``GAMMAXR_FITS_BACKEND`` environment
        variable, else ``auto``); travels with the observation to threads and dask workers.
    """

    def __init__(
        self,
        obs_id: int,
        info: xr.Dataset | ObsTableRow,
        hdus: Mapping[str, HDULocation],
        data: Mapping[str, Any] | None = None,
        *,
        fits_backend: str | None = None,
    ) -> None:
        self._fits_backend = fits_backend
        self._obs_id = int(obs_id)
        self._info = info if isinstance(info, ObsTableRow) else ObsTableRow.from_dataset(info)
        self._hdus = MappingProxyType(dict(hdus))
        self._data = MappingProxyType(dict(data or {}))

    def __getstate__(self) -> dict:
        # plain pickle can take it (read-only mappings as dicts): dask.distributed tries
        # pickle first and falls back to cloudpickle only after pickle failed part-way,
        # which made every run task cost the scheduler several milliseconds to send. The
        # header cached by ``meta`` stays behind (a loaded snapshot keeps its own in _data):
        # a run task reads it again with the events, and graphs of 10,000 runs are 40 %
        # smaller to send and to hold in the scheduler without it.
        own = {k: v for k, v in self.__dict__.items() if k != "meta"}
        proxies = [k for k, v in own.items() if isinstance(v, MappingProxyType)]
        state = {k: dict(v) if k in proxies else v for k, v in own.items()}
        return {**state, "_proxies": proxies}

    def __setstate__(self, state: dict) -> None:
        proxies = state.pop("_proxies", [])
        self.__dict__.update(
            {k: MappingProxyType(v) if k in proxies else v for k, v in state.items()}
        )

    # ------------------------------------------------------------------ identity
    @property
    def fits_backend(self) -> str | None:
        """FITS library the files are read with (``None``: the environment's choice)."""
        return self._fits_backend

    @property
    def obs_id(self) -> int:
        """Observation identifier."""
        return self._obs_id

    @property
    def obs_info(self) -> xr.Dataset:
        """This run's row of the observation table (a new Dataset of 0-d variables, with
        the scalar ``obs_id`` coordinate and the table's attrs; read-only arrays)."""
        return self._info.to_dataset()

    def obs_table_value(self, name: str, default: Any = None) -> Any:
        """One column of this run's observation-table row, without building :attr:`obs_info`.

        Parameters
        ----------
        name : str
            Column name as in :attr:`obs_info` (lower case, e.g. ``"livetime"``).
        default : object
            What to return if the table has no such column.

        Returns
        -------
        object
            A Python scalar for a column of one value per run, else a numpy array.
        """
        return self._info.value(name) if name in self._info else default

    def info(self, show: bool = True) -> str | None:
        """Summary of the run: target, pointing, start, livetime, zenith, events, IRFs.

        Header and observation table only (no events read); see
        :func:`gammaxr.summary.data.observation_text`. Prints it (``show=True``, as
        Gammapy's ``info()`` methods do) or returns it.
        """
        from gammaxr.summary.data import observation_text

        text = observation_text(self)
        if not show:
            return text
        print(text)
        return None

    @property
    def hdus(self) -> Mapping[str, HDULocation]:
        """HDU type -> :class:`HDULocation`, from the HDU index (read-only mapping)."""
        return self._hdus

    @property
    def hdu_classes(self) -> dict[str, str]:
        """HDU type -> GADF HDU class, e.g. ``{"psf": "psf_table", "bkg": "bkg_3d", ...}``."""
        return {k: v.hdu_class for k, v in self._hdus.items()}

    @property
    def psf_class(self) -> str | None:
        """HDU class of the PSF (``"psf_table"`` or ``"psf_3gauss"``), ``None`` if no PSF."""
        loc = self._hdus.get("psf")
        return None if loc is None else loc.hdu_class

    @property
    def loaded(self) -> tuple[str, ...]:
        """HDU types held in memory by this snapshot (empty for a lazy observation)."""
        return tuple(k for k in self._data if k != _META)

    @property
    def files(self) -> tuple[str, ...]:
        """Distinct files this run's HDUs live in."""
        return tuple(dict.fromkeys(loc.path for loc in self._hdus.values()))

    def __repr__(self) -> str:
        from gammaxr.summary.data import observation_text

        return observation_text(self)

    def _repr_html_(self) -> str:
        from gammaxr.summary.data import observation_html

        return observation_html(self)

    def peek(self, **kwargs):
        """IRFs and events in one figure; see :func:`gammaxr.plot.peek.peek_observation`."""
        from gammaxr.plot.peek import peek_observation

        return peek_observation(self, **kwargs)

    # ------------------------------------------------------------------ HDU access
    def location(self, hdu_type: str) -> HDULocation:
        """Location of HDU ``hdu_type``; raises :class:`HDUNotFoundError` if not indexed."""
        try:
            return self._hdus[hdu_type]
        except KeyError:
            raise HDUNotFoundError(
                f"obs_id {self._obs_id}: no {hdu_type!r} HDU in the HDU index "
                f"(it lists {sorted(self._hdus)})"
            ) from None

    def get(self, hdu_type: str) -> xr.Dataset | xr.DataArray:
        """Snapshot value of ``hdu_type`` if loaded, else read it from its file now.

        Parameters
        ----------
        hdu_type : str
            ``"events"``, ``"gti"``, ``"aeff"``, ``"edisp"``, ``"psf"`` or ``"bkg"``.
        """
        if hdu_type in self._data:
            return self._data[hdu_type]
        loc = self.location(hdu_type)
        _check_class(self._obs_id, loc)
        value = _read_locations([loc], 1, self.fits_backend)[loc]
        if isinstance(value, Exception):
            raise _with_obs_id(value, self._obs_id)
        return value

    events = _hdu_property(
        "events", "Event list, dim ``event`` (:func:`gammaxr.io.gadf.read_events_hdu`)."
    )
    gti = _hdu_property("gti", "Good time intervals, dim ``gti``: ``start``, ``stop`` in s MET.")
    aeff = _hdu_property("aeff", "Effective area (energy_true, offset) in m2.")
    edisp = _hdu_property(
        "edisp", "Energy dispersion (energy_true, migra, offset), density per unit migra."
    )
    psf = _hdu_property(
        "psf",
        "PSF: psf_table DataArray (energy_true, offset, rad) in sr-1, or psf_3gauss Dataset "
        "(:attr:`psf_class` tells which).",
    )

    @property
    def bkg(self) -> xr.DataArray:
        """Background rate, (energy, offset) or (energy, fov_lon, fov_lat) in s-1 MeV-1 sr-1.

        The ``fov_alignment`` attr of a ``bkg_3d`` allows for the H.E.S.S. DR1 convention
        (see :func:`gammaxr.io.irf_fits.legacy_fov_alignment`).
        """
        bkg = self.get("bkg")
        declared = bkg.attrs.get("fov_alignment")
        if "fov_lon" in bkg.dims and declared is not None:
            alignment = legacy_fov_alignment(self.meta, declared, bkg.attrs.get("creator", ""))
            if alignment != declared:
                bkg = with_attrs(bkg, fov_alignment=alignment)
        return bkg

    # ------------------------------------------------------------------ snapshot
    def read(self, hdus: Iterable[str] | None = None, *, max_workers: int = 1) -> Observation:
        """Read HDUs into a new, loaded snapshot, opening each distinct file once.

        Parameters
        ----------
        hdus : iterable of str, optional
            HDU types to read; default every type of :data:`HDU_TYPES` that the HDU index
            lists for this run. The events header (:attr:`meta`) is always read.
        max_workers : int
            Threads used when the HDUs live in several files.

        Returns
        -------
        Observation
            A new observation holding the data (this one is unchanged); this observation
            itself if it is a snapshot that already holds every HDU asked for.
        """
        wanted = set(HDU_TYPES if hdus is None else hdus) & set(self._hdus)
        if _META in self._data and wanted <= set(self.loaded):
            return self
        return read_observations([self], hdus, max_workers=max_workers)[0]

    def with_data(self, **values: Any) -> Observation:
        """A loaded snapshot like this one with some HDUs replaced (e.g. cleaned ``events``).

        Parameters
        ----------
        **values
            HDU type -> value (``events=...``); must be types this run has.
        """
        unknown = sorted(set(values) - set(self._hdus))
        if unknown:
            raise ValueError(f"obs_id {self._obs_id}: no HDU(s) {unknown} to replace")
        data = dict(self._data)
        data.setdefault(_META, self.meta)
        data.update(values)
        return Observation(
            self._obs_id, self._info, self._hdus, data, fits_backend=self.fits_backend
        )

    # ------------------------------------------------------------------ metadata
    @cached_property
    def meta(self) -> Mapping[str, Any]:
        """Keywords of the events HDU header (read-only mapping).

        Taken from the snapshot when loaded; otherwise read once on first access and kept
        (``functools.cached_property``). Empty if the run has no events HDU.
        """
        if _META in self._data:
            return self._data[_META]
        if "events" not in self._hdus:
            return MappingProxyType({})
        loc = self._hdus["events"]
        header = read_leading_header(loc.path, loc.hdu_name)
        if header is not None:
            return MappingProxyType(header)
        requests = [(loc.hdu_name, "header")]
        header = read_file_hdus(loc.path, requests, self.fits_backend)[loc.hdu_name, "header"]
        if isinstance(header, Exception):
            raise _with_obs_id(header, self._obs_id)
        return MappingProxyType(header)

    def _value(self, key: str, default: Any = None) -> Any:
        """Header keyword ``key``, else observation-table column ``key.lower()``, else default."""
        if key in self.meta:
            return self.meta[key]
        name = key.lower().replace("-", "_")
        if name in self._info:
            return self.obs_table_value(name)
        if key in self._info.attrs:
            return self._info.attrs[key]
        return default

    def _float(self, key: str) -> float:
        value = self._value(key)
        if value is None:
            raise DL3Error(f"obs_id {self._obs_id}: no {key} in the events header or obs table")
        return float(value)

    @property
    def pointing(self) -> SkyCoord:
        """Pointing direction (``RA_PNT``, ``DEC_PNT``) as an icrs SkyCoord.

        GADF FK5 J2000 coordinates are taken as icrs (they differ by < 0.03 arcsec).
        """
        return SkyCoord(*self.pointing_radec, unit="deg", frame="icrs")

    @property
    def pointing_radec(self) -> tuple[float, float]:
        """Pointing (``RA_PNT``, ``DEC_PNT``) in deg, icrs, as two floats.

        The same direction as :attr:`pointing` without building a SkyCoord (about 1 ms of
        Python each, which holds the GIL): what the per-run reduction uses.
        """
        return self._float("RA_PNT"), self._float("DEC_PNT")

    @property
    def location_earth(self) -> EarthLocation | None:
        """Observatory location (``GEOLON``, ``GEOLAT``, ``ALTITUDE``), ``None`` if unknown.

        ``ALTITUDE`` is in m per GADF; values below 10 are taken as km (CTA 1DC writes km).
        """
        lon, lat = self._value("GEOLON"), self._value("GEOLAT")
        if lon is None or lat is None:
            return None
        height = float(self._value("ALTITUDE", 0.0))
        height = height * 1000.0 if 0 < height < 10 else height
        return EarthLocation(lon=float(lon) * u.deg, lat=float(lat) * u.deg, height=height * u.m)

    @property
    def pointing_altaz(self) -> SkyCoord | None:
        """Mean pointing in horizontal coordinates (``ALT_PNT``, ``AZ_PNT``), ``None`` if absent.

        The frame carries the mid-run time and the observatory location where known.
        """
        alt, az = self._value("ALT_PNT"), self._value("AZ_PNT")
        if alt is None or az is None:
            return None
        try:
            obstime = self.time_start + 0.5 * (self.time_stop - self.time_start)
        except DL3Error:
            obstime = None
        frame = AltAz(obstime=obstime, location=self.location_earth)
        return SkyCoord(alt=float(alt) * u.deg, az=float(az) * u.deg, frame=frame)

    @property
    def zenith(self) -> float:
        """Zenith angle of the pointing in deg (``ZEN_PNT``, else 90 - ``ALT_PNT``)."""
        zen = self._value("ZEN_PNT")
        return float(zen) if zen is not None else 90.0 - self._float("ALT_PNT")

    @property
    def ontime(self) -> float:
        """Total good time including dead time, in s.

        ``ONTIME`` of the events header (or observation table), else the sum of the GTI
        durations, as Gammapy's observation time. It is the time by which background rates
        are multiplied; ``TSTOP - TSTART`` is not used because some headers store the times
        rounded to float32 (CTA 1DC: 1792 s for an 1800 s run).
        """
        value = self._value("ONTIME")
        if value is not None:
            return float(value)
        if "gti" not in self._data and "gti" not in self._hdus:
            raise DL3Error(
                f"obs_id {self._obs_id}: no ONTIME in the events header or obs table and no GTI HDU"
            )
        gti = self.gti
        return float(np.sum(gti["stop"].values - gti["start"].values))

    @property
    def livetime(self) -> float:
        """Live time in s (``LIVETIME``, else ``ONTIME * DEADC``)."""
        value = self._value("LIVETIME")
        return float(value) if value is not None else self.ontime * self.deadc

    @property
    def deadc(self) -> float:
        """Dead-time correction factor ``DEADC`` (live / on time); else LIVETIME / ONTIME."""
        value = self._value("DEADC")
        return float(value) if value is not None else self._float("LIVETIME") / self.ontime

    @property
    def deadtime_fraction(self) -> float:
        """Fraction of the on time lost to dead time, ``1 - DEADC``."""
        return 1.0 - self.deadc

    @property
    def tstart(self) -> float:
        """Run start in s of mission elapsed time (``TSTART``)."""
        return self._float("TSTART")

    @property
    def tstop(self) -> float:
        """Run stop in s of mission elapsed time (``TSTOP``)."""
        return self._float("TSTOP")

    @property
    def time_attrs(self) -> dict[str, Any]:
        """The MET reference keywords (``MJDREFI``, ``MJDREFF`` or ``MJDREF``, ``TIMESYS``)."""
        keys = ("MJDREFI", "MJDREFF", "MJDREF", "TIMESYS")
        attrs = {k: self._info.attrs[k] for k in keys if k in self._info.attrs}
        attrs.update({k: self.meta[k] for k in keys if k in self.meta})
        return attrs

    @property
    def time_start(self) -> Time:
        """Run start as an astropy Time."""
        return met_to_time(self.tstart, self.time_attrs)

    @property
    def time_stop(self) -> Time:
        """Run stop as an astropy Time."""
        return met_to_time(self.tstop, self.time_attrs)

    # ------------------------------------------------------------------ event helpers
    def event_offsets(self) -> xr.DataArray:
        """Angular distance of each event from the pointing, deg (dim ``event``)."""
        return event_offsets(self.events, self.pointing)

    def events_in_gti(self) -> xr.Dataset:
        """The events whose time lies in one of this run's GTIs (see :func:`events_in_gti`)."""
        return events_in_gti(self.events, self.gti)


# ---------------------------------------------------------------------- event functions


def pointing_radec(observation) -> tuple[float, float]:
    """(RA, Dec) of a run's pointing in deg, icrs.

    Parameters
    ----------
    observation : Observation or object with a ``pointing`` SkyCoord
        The run. An :class:`Observation` gives its header values directly
        (:attr:`Observation.pointing_radec`, no SkyCoord built).

    Returns
    -------
    (float, float)
        RA and Dec in deg.
    """
    if isinstance(observation, Observation):
        return observation.pointing_radec
    pointing = observation.pointing.icrs
    return float(pointing.ra.deg), float(pointing.dec.deg)


def event_offsets(events: xr.Dataset, pointing: SkyCoord) -> xr.DataArray:
    """Angular distance of events from a pointing direction.

    Parameters
    ----------
    events : xarray.Dataset
        With ``ra`` and ``dec`` in deg (icrs) along any dims (numpy or dask; stays lazy).
    pointing : astropy.coordinates.SkyCoord
        Scalar direction, any frame (converted to icrs).

    Returns
    -------
    xarray.DataArray
        ``offset`` in deg, same dims as ``events.ra`` (haversine formula, accurate at all
        distances).
    """
    centre = pointing.icrs
    ra0, dec0 = float(centre.ra.rad), float(centre.dec.rad)
    ra = np.deg2rad(events["ra"].astype(float))
    dec = np.deg2rad(events["dec"].astype(float))
    hav = np.sin((dec - dec0) / 2) ** 2 + np.cos(dec) * np.cos(dec0) * np.sin((ra - ra0) / 2) ** 2
    offset = np.rad2deg(2 * np.arcsin(np.sqrt(hav.clip(0, 1))))
    return offset.rename("offset").assign_attrs(units="deg")


def gti_mask(time: xr.DataArray, gti: xr.Dataset, tolerance: float = 0.0) -> xr.DataArray:
    """Whether each time lies in a good time interval ``[start, stop)``.

    Parameters
    ----------
    time : xarray.DataArray
        Times in s MET, any dims (numpy or dask; a dask input stays lazy).
    gti : xarray.Dataset
        ``start`` and ``stop`` along dim ``gti`` (in memory), in s MET, same reference.
    tolerance : float
        Seconds by which each interval is widened on both sides (DL3 writers such as the
        H.E.S.S. DR1 one round GTI limits to whole seconds; default 0).

    Returns
    -------
    xarray.DataArray of bool
        Same dims as ``time``.
    """
    inside = partial(times_in_gti, gti=gti, tolerance=tolerance)
    return xr.apply_ufunc(inside, time, dask="parallelized", output_dtypes=[bool]).rename("in_gti")


def times_in_gti(time: np.ndarray, gti: xr.Dataset, tolerance: float = 0.0) -> np.ndarray:
    """:func:`gti_mask` of a numpy array of times (no DataArray made: the per-run reduction
    selects its events with it).

    Parameters
    ----------
    time : numpy.ndarray
        Times in s MET, any shape.
    gti : xarray.Dataset
        ``start`` and ``stop`` along dim ``gti`` (in memory), in s MET, same reference.
    tolerance : float
        Seconds by which each interval is widened on both sides.

    Returns
    -------
    numpy.ndarray of bool
        Shape of ``time``.
    """
    time = np.asarray(time)
    start = np.asarray(gti["start"].values, dtype=float) - tolerance
    stop = np.asarray(gti["stop"].values, dtype=float) + tolerance
    if not stop.size:
        return np.zeros(time.shape, bool)
    order = np.argsort(start, kind="stable")
    start, stop = start[order], stop[order]
    # overlapping intervals: a time is inside if it is before the running max of the stops
    stop = np.maximum.accumulate(stop)
    idx = np.searchsorted(start, time, side="right") - 1
    ok = idx >= 0
    return ok & (time < stop[np.where(ok, idx, 0)])


def events_in_gti(events: xr.Dataset, gti: xr.Dataset, tolerance: float = 0.0) -> xr.Dataset:
    """Events whose ``time`` lies in one of the GTIs (half-open ``[start, stop)``).

    This is a computation boundary: the mask is evaluated to index the events.

    Parameters
    ----------
    events : xarray.Dataset
        Event list with ``time`` (s MET) along dim ``event``.
    gti : xarray.Dataset
        Good time intervals (dim ``gti``).
    tolerance : float
        Seconds by which each interval is widened (see :func:`gti_mask`).

    Returns
    -------
    xarray.Dataset
        The selected events (a new Dataset).
    """
    inside = times_in_gti(events["time"].values, gti, tolerance)
    if inside.all():  # as a whole run in its GTIs is: no copy of every column to make
        return events.copy(deep=False)
    return events.isel(event=inside)


def select_events_time(
    events: xr.Dataset, start: float | Time | None = None, stop: float | Time | None = None
) -> xr.Dataset:
    """Events with ``start <= time < stop``.

    Parameters
    ----------
    events : xarray.Dataset
        Event list with ``time`` (s MET, attrs ``MJDREFI``/``MJDREFF``/``TIMESYS``).
    start, stop : float or astropy.time.Time, optional
        Bounds as MET seconds or absolute times; ``None`` for open.

    Returns
    -------
    xarray.Dataset
        The selected events (computation boundary, as :func:`events_in_gti`).
    """
    bounds = [
        float(time_to_met(b, events["time"].attrs)) if isinstance(b, Time) else b
        for b in (start, stop)
    ]
    gti = xr.Dataset(
        {
            "start": ("gti", [-np.inf if bounds[0] is None else float(bounds[0])]),
            "stop": ("gti", [np.inf if bounds[1] is None else float(bounds[1])]),
        }
    )
    return events_in_gti(events, gti)


# ---------------------------------------------------------------------- reading


def _check_class(obs_id: int, loc: HDULocation) -> None:
    if loc.hdu_class not in READABLE_CLASSES:
        raise UnknownHDUClassError(
            f"obs_id {obs_id}: the HDU index gives {loc.hdu_type!r} HDU {loc.path}[{loc.hdu_name}]"
            f" the unknown HDU_CLASS {loc.hdu_class!r}; gammaxr reads {', '.join(READABLE_CLASSES)}"
        )


def _with_obs_id(exc: Exception, obs_id: int) -> Exception:
    """Same exception class with the obs_id prefixed to the message."""
    msg = str(exc)
    if f"obs_id {obs_id}" in msg:
        return exc
    try:
        new = type(exc)(f"obs_id {obs_id}: {msg}")
    except TypeError:
        new = DL3Error(f"obs_id {obs_id}: {msg}")
    new.__cause__ = exc
    return new


def _freeze(value: Any) -> Any:
    """Mark the numpy buffers of a Dataset/DataArray read-only (snapshots share them)."""
    if isinstance(value, (xr.Dataset, xr.DataArray)):
        variables = [value.variable] if isinstance(value, xr.DataArray) else []
        variables += [*value.variables.values()] if isinstance(value, xr.Dataset) else []
        variables += [*value.coords.variables.values()]  # Variables: no DataArray built
        for var in variables:
            if isinstance(var, xr.IndexVariable):  # values held by a pandas index, and
                continue  # ``.data`` would convert them to a new array each time
            data = var.data
            if isinstance(data, np.ndarray):
                data.flags.writeable = False
    return value


def _share(value: Any, shared: bool = True) -> Any:
    """A per-run view of a value read once: own attrs, shared (read-only) buffers where
    ``shared`` (several runs use it), else the xarray object itself; mappings read-only."""
    if isinstance(value, (xr.Dataset, xr.DataArray)):
        return value.copy(deep=False) if shared else value
    if isinstance(value, Mapping):
        return MappingProxyType(dict(value))
    return value


def _read_locations(
    locations: Iterable[HDULocation], max_workers: int | None, backend: str | None
) -> dict[HDULocation, Any]:
    """Read HDUs grouped by file (each file opened once, with FITS ``backend``).

    Returns the value, or the exception, per HDU.
    """
    by_file: dict[str, list[HDULocation]] = {}
    for loc in dict.fromkeys(locations):
        by_file.setdefault(loc.path, []).append(loc)

    def read_one(path: str) -> dict[HDULocation, Any]:
        locs = by_file[path]
        cls = {loc: ("header" if loc.hdu_type == _META else loc.hdu_class) for loc in locs}
        try:
            values = read_file_hdus(path, [(loc.hdu_name, cls[loc]) for loc in locs], backend)
        except DL3Error as exc:
            return dict.fromkeys(locs, exc)
        return {loc: _freeze(values[loc.hdu_name, cls[loc]]) for loc in locs}

    out: dict[HDULocation, Any] = {}
    if max_workers == 1 or len(by_file) <= 1:
        for path in by_file:
            out.update(read_one(path))
        return out
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        for result in pool.map(read_one, by_file):
            out.update(result)
    return out


def read_observations(
    observations: Sequence[Observation],
    hdus: Iterable[str] | None = None,
    *,
    max_workers: int | None = None,
    on_error: str = "raise",
) -> list[Observation]:
    """Load snapshots of many observations, reading each distinct file once (in threads).

    Parameters
    ----------
    observations : sequence of Observation
        Lazy (or loaded) observations.
    hdus : iterable of str, optional
        HDU types to read (default: all of :data:`HDU_TYPES` each run lists); the events
        header is always read. Asking for a type a run lacks raises :class:`HDUNotFoundError`.
    max_workers : int, optional
        Threads (default: Python's ``ThreadPoolExecutor`` default).
    on_error : {"raise", "skip"}
        ``"raise"``: the first failing run (in input order) raises its error, naming the
        obs_id and file; ``"skip"``: failing runs are left out with a warning naming each.

    Returns
    -------
    list of Observation
        Loaded snapshots, in input order.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    wanted = None if hdus is None else tuple(dict.fromkeys(hdus))
    plans: list[tuple[Observation, dict[str, HDULocation] | Exception]] = []
    for obs in observations:
        try:
            types = [t for t in HDU_TYPES if t in obs.hdus] if wanted is None else list(wanted)
            plan = {t: obs.location(t) for t in types}
            for loc in plan.values():
                _check_class(obs.obs_id, loc)
            if "events" in obs.hdus:
                ev = obs.hdus["events"]
                plan[_META] = HDULocation(_META, "header", ev.path, ev.hdu_name)
            plans.append((obs, plan))
        except DL3Error as exc:
            plans.append((obs, exc))
    todo: dict[str | None, list[HDULocation]] = {}
    for obs, plan in plans:
        if isinstance(plan, dict):
            todo.setdefault(obs.fits_backend, []).extend(plan.values())
    values = {}
    for backend, locations in todo.items():
        values.update(_read_locations(locations, max_workers, backend))

    # an HDU several runs use (shared IRF files) gets a view per run; one used once is the run's
    uses = Counter(loc for _, plan in plans if isinstance(plan, dict) for loc in plan.values())
    out = []
    for obs, plan in plans:
        error = plan if isinstance(plan, Exception) else None
        data: dict[str, Any] = {}
        if error is None:
            for key, loc in plan.items():
                value = values[loc]
                if isinstance(value, Exception):
                    error = _with_obs_id(value, obs.obs_id)
                    break
                data[key] = _share(value, shared=uses[loc] > 1)
        if error is not None:
            if on_error == "raise":
                raise error
            warnings.warn(f"skipping obs_id {obs.obs_id}: {error}", stacklevel=2)
            continue
        data = {**obs._data, **data}
        out.append(
            Observation(obs.obs_id, obs._info, obs.hdus, data, fits_backend=obs.fits_backend)
        )
    return out
