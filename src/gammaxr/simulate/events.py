"""Simulated runs: event lists with GADF headers, from a run description and its IRFs.

:func:`simulate_observation` draws the background events and, for each sky model, the
detected photons with their reconstructed energies and directions (the samplers of
:mod:`gammaxr.simulate.sampling`: exact thinning of Poisson processes through the tabulated
IRFs), assigns arrival times uniform in the GTIs (following the temporal model for sources
that have one, whose expected counts scale with its mean norm over the GTIs), and returns the event list as an
``xarray.Dataset`` with the ``EVENTS`` header keywords. :func:`simulate_observations` does
every run of a :class:`~gammaxr.simulate.config.SimulationConfig`.

Randomness comes from :class:`numpy.random.Generator`; :func:`run_generator` derives each
run's generator from a master seed and the obs_id, so a run's events do not depend on which
other runs are simulated.
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from gammaxr.io.gadf import met_to_time, time_reference
from gammaxr.models import Models, SkyModel, met_to_mjd, mjd_to_met
from gammaxr.models.sphere import transform_lonlat
from gammaxr.simulate.instrument import IRFSet
from gammaxr.simulate.sampling import (
    concat_columns,
    reconstruct_photons,
    sample_background,
    sample_gti_times,
    sample_migra,
    sample_psf_offsets,
    sample_source,
)
from gammaxr.simulate.specs import (
    TIME_REFERENCE,
    ObservationSpec,
    Observatory,
    SimulationConfig,
)

__all__ = [
    "BACKGROUND_MC_ID",
    "SimulatedObservation",
    "event_header",
    "reconstruct_photons",
    "run_generator",
    "sample_background",
    "sample_gti_times",
    "sample_migra",
    "sample_psf_offsets",
    "sample_source",
    "simulate_observation",
    "simulate_observations",
]

#: ``MC_ID`` of background events; source ``k`` of the models (0-based) gets ``k + 1``.
BACKGROUND_MC_ID = 0
_MET_REFERENCE = time_reference(TIME_REFERENCE)


def run_generator(seed: int | None, obs_id: int) -> np.random.Generator:
    """Random generator of one run, derived from a master seed and the obs_id.

    Parameters
    ----------
    seed : int or None
        Master seed (None: fresh entropy, not reproducible).
    obs_id : int
        Observation identifier.

    Returns
    -------
    numpy.random.Generator
    """
    entropy = np.random.SeedSequence().entropy if seed is None else int(seed)
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(int(obs_id),)))


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class SimulatedObservation:
    """One simulated run.

    Attributes
    ----------
    spec : ObservationSpec
        What was simulated.
    events : xarray.Dataset
        Dim ``event``, sorted by time: ``event_id``, ``time`` (s MET), ``ra``, ``dec`` (deg),
        ``energy`` (TeV), ``mc_id`` (0 background, k + 1 for source k) and the truth
        ``energy_true``, ``ra_true``, ``dec_true`` (NaN for background; not written to
        files); attrs: the GADF ``EVENTS`` header keywords.
    gti : xarray.Dataset
        Dim ``gti``: ``start``, ``stop`` (s MET).
    irfs : IRFSet
        The IRFs the events were drawn from.
    counts : dict of str to int
        Events per component: ``"background"`` and each source name.
    seconds : float
        Wall time of the simulation.
    """

    spec: ObservationSpec
    events: xr.Dataset
    gti: xr.Dataset
    irfs: IRFSet
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def obs_id(self) -> int:
        """Observation identifier."""
        return self.spec.obs_id


def _iso(met: float) -> tuple[str, str]:
    t = met_to_time(met, TIME_REFERENCE).utc.isot
    date, clock = t.split("T")
    return date, clock


def event_header(spec: ObservationSpec, observatory: Observatory, irf_name: str) -> dict[str, Any]:
    """GADF ``EVENTS`` header keywords of a simulated run.

    Parameters
    ----------
    spec : ObservationSpec
        The run (pointing, times, livetime, dead time, target, nominal zenith/azimuth).
    observatory : Observatory
        Site and telescope keywords.
    irf_name : str
        Name of the IRF set, written as ``EV_CLASS``.

    Returns
    -------
    dict
        ``OBS_ID``, ``RA_PNT``, ``DEC_PNT``, ``ALT_PNT``, ``AZ_PNT``, ``ZEN_PNT``, ``TSTART``,
        ``TSTOP``, ``ONTIME``, ``LIVETIME``, ``DEADC``, ``MJDREFI``/``MJDREFF``,
        ``TIMESYS``, ``DATE-OBS`` ..., ``OBJECT``, site keywords, ``OBS_MODE = POINTING``.
    """
    (glon,), (glat,) = transform_lonlat(
        np.array([spec.ra]), np.array([spec.dec]), "icrs", "galactic"
    )
    date_obs, time_obs = _iso(spec.tstart)
    date_end, time_end = _iso(spec.tstop)
    header: dict[str, Any] = {
        "HDUVERS": "0.3",
        "OBS_ID": int(spec.obs_id),
        "TELESCOP": observatory.telescope,
        "INSTRUME": observatory.instrument,
        "EV_CLASS": irf_name,
        "OBS_MODE": "POINTING",
        "TSTART": float(spec.tstart),
        "TSTOP": float(spec.tstop),
        "ONTIME": float(spec.ontime),
        "LIVETIME": float(spec.livetime),
        "DEADC": float(spec.deadc),
        "TELAPSE": float(spec.tstop - spec.tstart),
        **TIME_REFERENCE,
        "DATE-OBS": date_obs,
        "TIME-OBS": time_obs,
        "DATE-END": date_end,
        "TIME-END": time_end,
        "RA_PNT": float(spec.ra),
        "DEC_PNT": float(spec.dec),
        "GLON_PNT": float(glon),
        "GLAT_PNT": float(glat),
        "ALT_PNT": 90.0 - float(spec.zenith),
        "AZ_PNT": float(spec.azimuth),
        "ZEN_PNT": float(spec.zenith),
        "RADESYS": "ICRS",
        "EQUINOX": 2000.0,
        "OBJECT": spec.target_name,
        "N_TELS": int(observatory.n_tels),
        "GEOLON": float(observatory.geolon),
        "GEOLAT": float(observatory.geolat),
        "ALTITUDE": float(observatory.altitude),
        "EUNIT": "TeV",
        "CREATOR": "gammaxr.simulate",
    }
    if spec.target_ra is not None:
        header["RA_OBJ"], header["DEC_OBJ"] = float(spec.target_ra), float(spec.target_dec)
    return header


def simulate_observation(
    spec: ObservationSpec,
    irfs: IRFSet,
    models: Models | Sequence[SkyModel] = (),
    rng: np.random.Generator | int | None = None,
    *,
    energy_true: tuple[float, float] | None = None,
    energy: tuple[float, float] | None = None,
    observatory: Observatory | None = None,
) -> SimulatedObservation:
    """Simulate the event list of one run.

    Parameters
    ----------
    spec : ObservationSpec
        Pointing, livetime, dead time, start, background norm ... of the run.
    irfs : IRFSet
        The run's IRFs.
    models : Models or sequence of SkyModel
        Sources (each needs a spatial model).
    rng : numpy.random.Generator, int or None
        Generator or seed.
    energy_true : (float, float), optional
        True-energy range of source photons, TeV.
    energy : (float, float), optional
        Reco-energy range of background events, TeV.
    observatory : Observatory, optional
        Header keywords of the site.

    Returns
    -------
    SimulatedObservation
    """
    start = _time.perf_counter()
    rng = np.random.default_rng(rng)
    pointing = (spec.ra, spec.dec)
    columns = ("energy", "ra", "dec", "energy_true", "ra_true", "dec_true", "mc_id")
    parts, counts = [], {}
    if spec.background_norm > 0:
        if irfs.bkg is None:
            raise ValueError(
                f"obs_id {spec.obs_id}: IRF set {irfs.name!r} has no background IRF; set "
                "background_norm to 0 to simulate sources only"
            )
        bkg = sample_background(irfs, pointing, spec.ontime, rng, energy, spec.background_norm)
        n = bkg["energy"].size
        nan = np.full(n, np.nan)
        bkg.update(energy_true=nan, ra_true=nan, dec_true=nan)
        bkg["mc_id"] = np.full(n, BACKGROUND_MC_ID)
        parts.append(bkg)
        counts["background"] = n
    for k, model in enumerate(models):
        if not isinstance(model, SkyModel):
            raise TypeError(f"can only simulate SkyModels, got {type(model).__name__}")
        # a time-varying source emits its mean norm over the GTIs times the constant rate
        livetime = spec.livetime * _mean_temporal_norm(model, spec.gti)
        photons = sample_source(model, irfs, pointing, livetime, rng, energy_true)
        events = reconstruct_photons(photons, irfs, rng)
        events["mc_id"] = np.full(events["energy"].size, k + 1)
        parts.append(events)
        counts[model.name] = int(events["energy"].size)
    data = concat_columns(parts, columns)
    n = data["energy"].size
    times = sample_gti_times(spec.gti, n, rng)
    order = rng.permutation(n)  # shuffle components, then the sorted times give the order
    times = _temporal_times(models, data["mc_id"][order], times, spec.gti, rng)
    order = order[np.argsort(times, kind="stable")]
    times = np.sort(times, kind="stable")
    units = {"energy": "TeV", "energy_true": "TeV", "ra": "deg", "dec": "deg"}
    units.update(ra_true="deg", dec_true="deg", mc_id="")
    variables = {
        "event_id": ("event", np.arange(1, n + 1, dtype=np.int64), {"units": ""}),
        "time": ("event", times, {"units": "s", **TIME_REFERENCE}),
    }
    for name in columns:
        values = data[name][order]
        dtype = np.int32 if name == "mc_id" else np.float64
        variables[name] = ("event", values.astype(dtype), {"units": units[name]})
    header = event_header(spec, observatory or Observatory(), irfs.name)
    events = xr.Dataset(variables, attrs=header)
    gti = xr.Dataset(
        {
            "start": ("gti", np.array([g[0] for g in spec.gti]), {"units": "s"}),
            "stop": ("gti", np.array([g[1] for g in spec.gti]), {"units": "s"}),
        },
        attrs=dict(TIME_REFERENCE),
    )
    return SimulatedObservation(
        spec, events, gti, irfs, counts, seconds=_time.perf_counter() - start
    )


def _mean_temporal_norm(model: SkyModel, gti) -> float:
    """Mean norm of a source's temporal model over the GTIs (MET s), 1 without one."""
    if model.temporal is None:
        return 1.0
    t = met_to_mjd(np.asarray(gti, float), _MET_REFERENCE, model.temporal.scale)
    return model.temporal.mean_norm(t[:, 0], t[:, 1])


def _temporal_times(models, mc_id: np.ndarray, times: np.ndarray, gti, rng) -> np.ndarray:
    """Event times with those of time-varying sources drawn from their temporal models."""
    times = times.copy()
    for k, model in enumerate(models):
        if model.temporal is None:
            continue
        mine = np.flatnonzero(mc_id == k + 1)
        if not mine.size:
            continue
        scale = model.temporal.scale
        t = met_to_mjd(np.asarray(gti, float), _MET_REFERENCE, scale)
        drawn = model.temporal.sample_time(mine.size, t[:, 0], t[:, 1], rng)
        # back to MET, kept inside the GTIs despite the round trip through MJD
        met = mjd_to_met(drawn, _MET_REFERENCE, scale)
        lo, hi = float(np.min(np.asarray(gti)[:, 0])), float(np.max(np.asarray(gti)[:, 1]))
        times[mine] = rng.permutation(np.clip(met, lo, np.nextafter(hi, lo)))
    return times


def simulate_observations(
    config: SimulationConfig, seed: int | None = None, irfs: dict[str, IRFSet] | None = None
) -> Iterator[SimulatedObservation]:
    """Simulate every run of a description, one at a time (a generator).

    Parameters
    ----------
    config : SimulationConfig
        The description.
    seed : int, optional
        Master seed; default ``config.seed``. Each run's generator is
        :func:`run_generator` ``(seed, obs_id)``.
    irfs : dict of str to IRFSet, optional
        IRF sets already loaded, by instrument name (the others are loaded here, once).

    Yields
    ------
    SimulatedObservation
        In the order of ``config.observations``.
    """
    seed = config.seed if seed is None else seed
    loaded = dict(irfs or {})
    for spec in config.observations:
        if spec.instrument not in loaded:
            loaded[spec.instrument] = config.instruments[spec.instrument].load()
        yield simulate_observation(
            spec,
            loaded[spec.instrument],
            config.models,
            run_generator(seed, spec.obs_id),
            energy_true=config.energy_true,
            energy=config.energy,
            observatory=config.observatory,
        )
