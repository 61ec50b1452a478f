"""A simulated flare with intra-run variability, to check sub-run light curves against truth.

:func:`flare_scenario` describes runs of the toy instrument on a point source whose flux
follows a light-curve template (a baseline and a flare that rises and decays inside the
runs), simulates them once, writes them to a GADF store and reduces them per run (exposure,
background, PSF and edisp maps: the IRFs are used once). :func:`light_curve_pulls` then
simulates new event lists of the same runs (only events: the reduction is reused, as in a
real analysis) and measures the light curve in fixed time bins; the pull of each bin is
``(norm - true mean norm in the bin's good time) / norm_err``.

Used by ``benchmarks/light_curve_pulls.py`` (50 realisations) and by the test suite (a few).
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from gammaxr.data import open_datastore
from gammaxr.estimators.light_curve import light_curve
from gammaxr.geom import SkyGrid
from gammaxr.io.gadf import time_reference
from gammaxr.models import (
    LightCurveTemplateTemporalModel,
    Models,
    PointSpatialModel,
    PowerLaw,
    SkyModel,
    met_to_mjd,
)
from gammaxr.reduce.dataset import ReductionSpec
from gammaxr.reduce.runs import reduce_runs
from gammaxr.simulate import ObservationSpec, ToyInstrument, run_generator, simulate_observation
from gammaxr.simulate.specs import TIME_REFERENCE
from gammaxr.simulate.store import write_datastore

__all__ = ["FlareScenario", "flare_scenario", "light_curve_pulls"]

TARGET = (83.63, 22.01)
_MET_REFERENCE = time_reference(TIME_REFERENCE)


@dataclass(frozen=True)
class FlareScenario:
    """Runs, source and per-run reduction of a simulated flare.

    Attributes
    ----------
    specs : list of ObservationSpec
        The runs.
    irfs : IRFSet
        Toy-instrument IRFs of every run.
    source : SkyModel
        The source, with its temporal model (MJD in UTC).
    runs : xarray.Dataset
        The per-run reduction (dim ``obs_id``), computed.
    bins : numpy.ndarray, shape (n, 2)
        Light-curve time bins, MET s.
    sims : list of SimulatedObservation
        The realisation the reduction was made from.
    energy_range : (float, float)
        Reco-energy range of the light curve, TeV.
    """

    specs: list
    irfs: object
    source: SkyModel
    runs: xr.Dataset
    bins: np.ndarray
    sims: list
    energy_range: tuple[float, float] = field(default=(1.0, 10.0))

    def true_norms(self) -> np.ndarray:
        """Mean temporal norm in each bin's good time (the injected light curve / model)."""
        temporal = self.source.temporal
        out = np.full(len(self.bins), np.nan)
        for k, (t0, t1) in enumerate(self.bins):
            parts = [(max(t0, s.tstart), min(t1, s.tstop)) for s in self.specs if s.tstop > t0]
            parts = np.array([p for p in parts if p[1] > p[0]])
            if parts.size:
                mjd = met_to_mjd(parts, _MET_REFERENCE, temporal.scale)
                out[k] = temporal.mean_norm(mjd[:, 0], mjd[:, 1])
        return out


def flare_scenario(
    n_runs: int = 4,
    run_minutes: float = 30.0,
    gap_minutes: float = 10.0,
    bin_minutes: float = 10.0,
    amplitude: float = 2e-10,
    binsz: float = 0.05,
    width: float = 1.0,
    seed: int = 0,
    directory: str | Path | None = None,
) -> FlareScenario:
    """Simulate and reduce once the runs of a flare observed with the toy instrument.

    Parameters
    ----------
    n_runs : int
        Number of runs, pointing 0.5 deg from the source in four wobble directions.
    run_minutes, gap_minutes : float
        On time of each run and the gap between runs, minutes.
    bin_minutes : float
        Light-curve bin width, minutes (bins tile each run from its start).
    amplitude : float
        Baseline differential flux at 1 TeV, cm-2 s-1 TeV-1 (power law, index 2.5).
    binsz, width : float
        Pixel size and width of the per-run grid centred on the source, deg.
    seed : int
        Seed of the simulation the reduction is made from.
    directory : str or Path, optional
        Where the GADF store is written (default a temporary directory, removed).

    Returns
    -------
    FlareScenario
    """
    run_s, gap_s = 60.0 * run_minutes, 60.0 * gap_minutes
    deadc = 0.95
    t_first = 0.0
    specs = []
    offsets = [(0.0, 0.5), (0.5, 0.0), (0.0, -0.5), (-0.5, 0.0)]
    for i in range(n_runs):
        d_lon, d_lat = offsets[i % 4]
        specs.append(
            ObservationSpec(
                obs_id=1 + i,
                ra=TARGET[0] + d_lon / np.cos(np.deg2rad(TARGET[1])),
                dec=TARGET[1] + d_lat,
                livetime=run_s * deadc,
                deadc=deadc,
                instrument="toy",
                tstart=t_first + i * (run_s + gap_s),
            )
        )
    t_end = specs[-1].tstop
    # baseline 1; a flare rising to 4 in the second run, decaying over the third
    knots_met = np.array([0.0, 0.35, 0.45, 0.5, 0.75, 1.0]) * t_end
    knots_norm = np.array([1.0, 1.0, 4.0, 3.0, 1.5, 1.0])
    knots_mjd = met_to_mjd(knots_met, _MET_REFERENCE, "utc")
    t_ref = float(knots_mjd[0])
    temporal = LightCurveTemplateTemporalModel(
        knots_mjd - t_ref + np.array([-1.0, 0, 0, 0, 0, 1.0]), knots_norm, t_ref=t_ref
    )
    source = SkyModel(
        PowerLaw(index=2.5, amplitude=amplitude),
        PointSpatialModel(lon_0=TARGET[0], lat_0=TARGET[1]),
        name="flare",
        temporal=temporal,
    )
    irfs = ToyInstrument().irfs()
    bins = []
    step = 60.0 * bin_minutes
    for s in specs:
        edges = np.arange(s.tstart, s.tstop + 1e-6, step)
        edges = edges if np.isclose(edges[-1], s.tstop) else np.append(edges, s.tstop)
        bins.extend(itertools.pairwise(edges))
    sims = [simulate_observation(s, irfs, [source], run_generator(seed, s.obs_id)) for s in specs]
    grid = SkyGrid.from_center(TARGET, width=width, binsz=binsz, frame="icrs")
    spec = ReductionSpec(
        energy_edges=np.geomspace(1.0, 10.0, 4),
        energy_true_edges=np.geomspace(0.3, 30.0, 41),
        grid=grid,
        maps=("counts", "exposure", "background", "psf", "edisp"),
        safe_mask=("offset-max",),
        irf_binsz=0.5,
    )
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(directory) if directory is not None else Path(tmp) / "store"
        write_datastore(store_dir, sims, overwrite=True)
        store = open_datastore(store_dir)
        runs = reduce_runs(store.observations(), spec).compute()
    return FlareScenario(specs, irfs, source, runs, np.array(bins), sims)


def light_curve_pulls(scenario: FlareScenario, n_realisations: int, seed: int = 1) -> xr.Dataset:
    """Light curves of new realisations of the scenario's events, and their pulls.

    Parameters
    ----------
    scenario : FlareScenario
        From :func:`flare_scenario`.
    n_realisations : int
        Number of event-list realisations.
    seed : int
        Master seed (realisation ``r``, run ``i`` uses ``run_generator(seed + r, i)``).

    Returns
    -------
    xarray.Dataset
        Dims ``(realisation, time_bin)``: ``norm``, ``norm_err``, ``pull``, ``ts`` and
        ``true_norm`` (along ``time_bin``), and along ``realisation`` the variability
        ``pvalue`` and ``fvar``.
    """
    truth = scenario.true_norms()
    source = scenario.source.replace(temporal=None)
    norm, err, ts, pvalue, fvar = [], [], [], [], []
    for r in range(n_realisations):
        sims = [
            simulate_observation(
                s, scenario.irfs, [scenario.source], run_generator(seed + r, s.obs_id)
            )
            for s in scenario.specs
        ]
        lc = light_curve(
            scenario.runs,
            Models([source]),
            scenario.bins,
            time_format="met",
            energy_edges=list(scenario.energy_range),
            observations=sims,
            selection=None,
        )
        norm.append(lc["norm"].values[:, 0])
        err.append(lc["norm_err"].values[:, 0])
        ts.append(lc["ts"].values[:, 0])
        pvalue.append(float(lc["variability_pvalue"].values[0]))
        fvar.append(float(lc["fvar"].values[0]))
    norm, err = np.array(norm), np.array(err)
    dims = ("realisation", "time_bin")
    return xr.Dataset(
        {
            "norm": (dims, norm),
            "norm_err": (dims, err),
            "pull": (dims, (norm - truth) / err),
            "ts": (dims, np.array(ts)),
            "true_norm": ("time_bin", truth),
            "variability_pvalue": ("realisation", np.array(pvalue)),
            "fvar": ("realisation", np.array(fvar)),
        },
        coords={
            "tstart": ("time_bin", scenario.bins[:, 0], {"units": "s"}),
            "tstop": ("time_bin", scenario.bins[:, 1], {"units": "s"}),
        },
    )
