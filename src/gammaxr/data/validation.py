"""Validation of one run before it is reduced: nothing wrong goes through silently.

:func:`validate_observation` checks a run's GTIs, times, event list, IRF tables and the
agreement of its events header with the observation index. A problem that makes the run's
result wrong raises :class:`RunValidationError` naming the obs_id, the file, the HDU and the
problem; a problem that leaves the run usable (a few events with non-finite values) drops the
rows concerned and warns (:class:`RunValidationWarning`) with how many. The reduction
(:func:`gammaxr.reduce.dataset.reduce_observation_arrays` and the spectrum maker) validates
every run it reads, so under ``on_error="skip"`` an invalid run is skipped and named like any
failed run. The table of checks, actions and messages is in ``docs/validation.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import xarray as xr

from gammaxr.data.observation import Observation, pointing_radec
from gammaxr.geom.axes import axis_lo_hi
from gammaxr.geom.sky import angular_separation, one_minus_cos_separation
from gammaxr.io.errors import DL3Error

__all__ = [
    "CHECKS",
    "RunValidationError",
    "RunValidationWarning",
    "validate_observation",
]

#: Names of the checks (``RunValidationError.check``), in the order they run.
CHECKS = ("times", "header_index", "gti", "irf", "events", "event_energy", "event_offset")

#: Relative tolerance of header / obs-index agreement (livetime, on time).
INDEX_RTOL = 1e-3
#: Largest pointing difference between header and obs index, deg.
POINTING_TOL = 0.01
#: GTIs may stick out of [TSTART, TSTOP] by this much (writers round to whole seconds), s ...
TIME_TOL = 1.0
#: ... or by this fraction of the run (CTA 1DC GTIs end 8 s after TSTOP in 1800 s runs).
TIME_RTOL = 0.01
#: Negative IRF values down to this fraction of the table's peak are interpolation noise and
#: accepted silently; larger ones warn (H.E.S.S. DR1 has a few) unless their total exceeds this
#: fraction of the positive values' total, which is refused.
NEGATIVE_RTOL = 0.01
#: Fraction of events outside the IRF energy or offset range above which the run is refused.
IMPLAUSIBLE_FRACTION = 0.5
#: Factor beyond the IRF energy axis still taken as plausible (reco energies spread).
ENERGY_MARGIN = 3.0
#: Factor beyond the IRF offset axis still taken as plausible.
OFFSET_MARGIN = 1.5


class RunValidationError(DL3Error, ValueError):
    """A run failed a validation check.

    Attributes
    ----------
    obs_id : int
    file : str
        The file at fault (``""`` for the observation index).
    hdu : str
        Its HDU (``"obs-index"`` for the observation table).
    problem : str
    check : str
        Which of :data:`CHECKS` failed.
    """

    def __init__(self, obs_id: int, file: str, hdu: str, problem: str, check: str) -> None:
        where = f"{file}[{hdu}]" if file else hdu
        super().__init__(f"obs_id {obs_id}: {where}: {problem}")
        self.obs_id, self.file, self.hdu, self.problem, self.check = (
            obs_id,
            file,
            hdu,
            problem,
            check,
        )


class RunValidationWarning(UserWarning):
    """A run had problems that were repaired (rows dropped), or contributes nothing."""


class _Checker:
    def __init__(self, obs: Observation) -> None:
        self.obs = obs

    def fail(self, hdu_type: str, problem: str, check: str) -> RunValidationError:
        loc = self.obs.hdus.get(hdu_type)
        file, hdu = (loc.path, loc.hdu_name) if loc is not None else ("", hdu_type)
        return RunValidationError(self.obs.obs_id, file, hdu, problem, check)

    def header(self, key: str) -> float | None:
        value = self.obs.meta.get(key)
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            raise self.fail("events", f"{key} = {value!r} is not a number", "times") from None

    def index(self, key: str) -> float | None:
        value = self.obs.obs_table_value(key.lower())
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            return None


def _times(c: _Checker) -> None:
    """LIVETIME / ONTIME positive and finite, LIVETIME <= ONTIME, DEADC in (0, 1], TSTART < TSTOP."""
    obs = c.obs
    try:
        livetime, ontime = obs.livetime, obs.ontime
    except (DL3Error, TypeError, ValueError, ZeroDivisionError) as exc:
        raise c.fail("events", f"no usable live time / on time: {exc}", "times") from None
    for name, value in (("LIVETIME", livetime), ("ONTIME", ontime)):
        if not np.isfinite(value) or value <= 0:
            raise c.fail(
                "events", f"{name} is {value} s: a run needs a positive, finite {name}", "times"
            )
    if livetime > ontime * (1 + 1e-6):
        raise c.fail(
            "events",
            f"LIVETIME {livetime} s exceeds ONTIME {ontime} s (negative dead time)",
            "times",
        )
    deadc = c.header("DEADC")
    if deadc is not None and not 0 < deadc <= 1:
        raise c.fail("events", f"DEADC is {deadc}: must be in (0, 1]", "times")
    tstart, tstop = c.header("TSTART"), c.header("TSTOP")
    if tstart is not None and tstop is not None:
        if not (np.isfinite(tstart) and np.isfinite(tstop)) or tstop <= tstart:
            raise c.fail("events", f"TSTOP {tstop} s is not after TSTART {tstart} s", "times")


def _header_index(c: _Checker, n_events: int | None) -> None:
    """The events header and the observation index agree (live time, on time, pointing, count)."""
    for key in ("LIVETIME", "ONTIME"):
        head, index = c.header(key), c.index(key)
        if head is not None and index is not None:
            if not np.isclose(head, index, rtol=INDEX_RTOL, atol=1e-6):
                raise c.fail(
                    "events",
                    f"{key} is {head} s in the header but {index} s in the obs index",
                    "header_index",
                )
    head = (c.header("RA_PNT"), c.header("DEC_PNT"))
    index = (c.index("RA_PNT"), c.index("DEC_PNT"))
    if None not in head and None not in index:
        distance = float(angular_separation(head[0], head[1], index[0], index[1]))
        if not distance <= POINTING_TOL:
            raise c.fail(
                "events",
                f"pointing (RA_PNT, DEC_PNT) = {head} deg in the header but {index} deg in the "
                f"obs index ({distance:.3g} deg apart)",
                "header_index",
            )
    count = c.index("EVENT_COUNT")
    if count is not None and n_events is not None and int(count) != n_events:
        raise c.fail(
            "events",
            f"{n_events} events in the file but EVENT_COUNT {int(count)} in the obs index "
            "(truncated or wrong file?)",
            "header_index",
        )


def _gti(c: _Checker) -> None:
    """GTIs non-empty, finite, start < stop, ordered without overlap, inside the run."""
    gti = c.obs.gti
    start, stop = np.asarray(gti["start"].values, float), np.asarray(gti["stop"].values, float)
    if start.size == 0:
        raise c.fail("gti", "no good time interval", "gti")
    if not (np.all(np.isfinite(start)) and np.all(np.isfinite(stop))):
        raise c.fail("gti", "non-finite GTI start or stop", "gti")
    bad = np.flatnonzero(stop <= start)
    if bad.size:
        k = int(bad[0])
        raise c.fail("gti", f"GTI row {k}: stop {stop[k]} s is not after start {start[k]} s", "gti")
    if np.any(start[1:] < stop[:-1] - TIME_TOL):
        raise c.fail("gti", "GTIs are not in time order or overlap", "gti")
    tstart, tstop = c.header("TSTART"), c.header("TSTOP")
    tol = max(TIME_TOL, TIME_RTOL * ((tstop or 0.0) - (tstart or 0.0)))
    if tstart is not None and (start[0] < tstart - tol or stop[-1] > tstop + tol):
        raise c.fail(
            "gti",
            f"GTIs [{start[0]}, {stop[-1]}] s reach outside the run [{tstart}, {tstop}] s",
            "gti",
        )


def _irf_arrays(irf: xr.DataArray | xr.Dataset) -> Iterable[tuple[str, xr.DataArray]]:
    if isinstance(irf, xr.Dataset):
        return irf.data_vars.items()
    return [(str(irf.name or "values"), irf)]


@lru_cache(maxsize=256)
def _increasing(values: bytes) -> bool:
    """Whether float64 axis values (their bytes) are finite and strictly increasing; memoised:
    the runs of a release share their IRF binnings, so each is checked once."""
    axis = np.frombuffer(values)
    return bool(np.all(np.isfinite(axis)) and np.all(np.diff(axis) > 0))


def _irf(c: _Checker, hdu_type: str) -> None:
    """IRF values finite and not negative (beyond noise), axes increasing, aeff not all zero."""
    irf = c.obs.get(hdu_type)
    coords = irf.coords.variables  # Variables: no DataArray built per access
    for dim in irf.dims:
        if dim in coords and coords[dim].size > 1:
            values = np.asarray(coords[dim].values, float)
            if not _increasing(values.tobytes()):
                raise c.fail(hdu_type, f"axis {dim!r} is not increasing: {values}", "irf")
    for name, arr in _irf_arrays(irf):
        values = np.asarray(arr.values)
        values = values if values.dtype.kind == "f" else values.astype(float)
        # the extremes first, in the table's own dtype (two passes, no copy): a NaN or an
        # infinity shows in them, and any value below the noise threshold in the lowest
        lowest = float(np.min(values, initial=np.inf))
        highest = float(np.max(values, initial=-np.inf))
        if values.size and not (np.isfinite(lowest) and np.isfinite(highest)):
            bad = ~np.isfinite(values)
            raise c.fail(
                hdu_type, f"{int(bad.sum())} of {values.size} {name} values are NaN or inf", "irf"
            )
        if not lowest < -NEGATIVE_RTOL * max(abs(lowest), abs(highest)):
            continue
        values = np.asarray(values, float)
        negative = values < -NEGATIVE_RTOL * np.max(np.abs(values), initial=0.0)
        what = (
            f"{int(negative.sum())} of {values.size} {name} values are negative "
            f"(min {values.min():.3g}, peak {values.max():.3g})"
        )
        if -values[values < 0].sum() > NEGATIVE_RTOL * values[values > 0].sum():
            raise c.fail(hdu_type, what, "irf")
        loc = c.obs.hdus[hdu_type]
        warnings.warn(
            f"obs_id {c.obs.obs_id}: {loc.path}[{loc.hdu_name}]: {what}; used as they are "
            "(their total is below 1 % of the positive values)",
            RunValidationWarning,
            stacklevel=4,
        )
    if hdu_type == "aeff" and not np.any(np.asarray(irf.values) > 0):
        raise c.fail(hdu_type, "the effective area is zero everywhere", "irf")


def _events(c: _Checker) -> xr.Dataset:
    """Events present; rows with non-finite or impossible values dropped (with a warning)."""
    events = c.obs.events
    n = events.sizes.get("event", 0)
    if n == 0:
        raise c.fail(
            "events", f"empty event list (0 events) in a run of {c.obs.livetime:.0f} s", "events"
        )
    energy = np.asarray(events["energy"].values, float)
    ra, dec = np.asarray(events["ra"].values, float), np.asarray(events["dec"].values, float)
    time = np.asarray(events["time"].values, float)
    reasons = {
        "ENERGY non-finite or <= 0": ~(np.isfinite(energy) & (energy > 0)),
        "RA/DEC non-finite or |DEC| > 90": ~(np.isfinite(ra) & np.isfinite(dec))
        | (np.abs(dec) > 90),
        "TIME non-finite": ~np.isfinite(time),
    }
    bad = np.logical_or.reduce(list(reasons.values()))
    if not bad.any():
        return events
    if bad.all():
        raise c.fail("events", f"none of the {n} events has valid values", "events")
    detail = ", ".join(f"{k} ({int(v.sum())})" for k, v in reasons.items() if v.any())
    loc = c.obs.hdus["events"]
    warnings.warn(
        f"obs_id {c.obs.obs_id}: {loc.path}[{loc.hdu_name}]: {int(bad.sum())} of {n} events "
        f"dropped: {detail}",
        RunValidationWarning,
        stacklevel=4,
    )
    return events.isel(event=np.flatnonzero(~bad))


def _axis_range(irf: xr.DataArray, dim: str) -> tuple[float, float]:
    try:
        lo, hi = axis_lo_hi(irf, dim)
    except KeyError:  # no bounds: the centres
        lo = hi = np.asarray(irf.coords.variables[dim].values)
    return float(np.min(lo)), float(np.max(hi))


def _plausible(c: _Checker, events: xr.Dataset) -> None:
    """Most event energies inside the IRF energy range, most offsets inside its offset range."""
    if "aeff" not in c.obs.hdus:
        return
    aeff = c.obs.aeff
    e_lo, e_hi = _axis_range(aeff, "energy_true")
    energy = np.asarray(events["energy"].values, float)
    outside = (energy < e_lo / ENERGY_MARGIN) | (energy > e_hi * ENERGY_MARGIN)
    if outside.mean() > IMPLAUSIBLE_FRACTION:
        unit = str(c.obs.meta.get("EUNIT", "")).strip() or "the column unit"
        raise c.fail(
            "events",
            f"{outside.mean():.0%} of the event energies (median {np.median(energy):.3g} TeV) lie "
            f"outside the IRF energy range {e_lo:.3g}-{e_hi:.3g} TeV: wrong ENERGY unit "
            f"(read as {unit})?",
            "event_energy",
        )
    if "offset" in aeff.dims:
        offset_max = _axis_range(aeff, "offset")[1]
        ra, dec = (np.asarray(events[k].values, float) for k in ("ra", "dec"))
        pointing = pointing_radec(c.obs)
        # beyond the limit where 1 - cos(offset) is: the haversine form, half the time of
        # the offsets themselves (which only the message needs)
        limit = np.radians(min(offset_max * OFFSET_MARGIN, 180.0))
        beyond = one_minus_cos_separation(ra, dec, *pointing) > 2.0 * np.sin(0.5 * limit) ** 2
        if beyond.mean() > IMPLAUSIBLE_FRACTION:
            offset = angular_separation(ra, dec, *pointing)
            raise c.fail(
                "events",
                f"{beyond.mean():.0%} of the events lie beyond the IRF offset range "
                f"({offset_max:.3g} deg; median offset {np.median(offset):.3g} deg): wrong "
                "pointing or event coordinates?",
                "event_offset",
            )


def validate_observation(
    observation: Observation, hdus: Iterable[str] | None = None
) -> Observation:
    """Check a run and return it ready to reduce (invalid event rows dropped).

    Parameters
    ----------
    observation : Observation
        The run (lazy or loaded).
    hdus : iterable of str, optional
        HDU types to check (default every one the run has); read once if not loaded.

    Returns
    -------
    Observation
        A loaded snapshot; its events without the rows that had non-finite or impossible
        values (a :class:`RunValidationWarning` says how many were dropped).

    Raises
    ------
    RunValidationError
        Naming the obs_id, the file, the HDU and the problem (``.check`` says which check).
    """
    obs = observation.read(hdus)
    if not isinstance(obs, Observation):  # a duck-typed run (tests): nothing to check against
        return obs
    c = _Checker(obs)
    has = set(obs.loaded)
    if "events" in obs.hdus:
        _times(c)
    n_events = obs.events.sizes.get("event", 0) if "events" in has else None
    _header_index(c, n_events)
    if "gti" in has:
        _gti(c)
    for hdu_type in ("aeff", "edisp", "psf", "bkg"):
        if hdu_type in has:
            _irf(c, hdu_type)
    if "events" not in has:
        return obs
    events = _events(c)
    _plausible(c, events)
    if events is obs.events:
        return obs
    return obs.with_data(events=events)
