"""Gammapy 2.1 half of ``side_by_side.py``: the same workloads and stages, timed stage by stage.

Run in the separate Gammapy environment (never from the test suite)::

    /work/gpvenv/bin/python benchmarks/side_by_side_gammapy.py DATA_DIR [--repeat N] [--calls K]

Prints one JSON object (``{workload: {"seconds": {stage: s}, "totals": {name: value}}}``)
on its last line; ``side_by_side.py`` runs it as a subprocess and reads that line. The
workloads, stages and totals are listed in ``side_by_side.py``; the grids are the regular
lon/lat grids of ``../shared/reference`` (a CAR projection with reference latitude 0, built
here from the reference lon/lat arrays), so both libraries bin the same pixels.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from gammapy.data import DataStore
from gammapy.datasets import MapDataset, MapDatasetOnOff
from gammapy.estimators import ExcessMapEstimator
from gammapy.makers import (
    FoVBackgroundMaker,
    MapDatasetMaker,
    RingBackgroundMaker,
    SafeMaskMaker,
)
from gammapy.maps import MapAxis, WcsGeom
from regions import CircleSkyRegion
from stage_timer import Stages

warnings.simplefilter("ignore")

CRAB_RUNS = [23523, 23526, 23559, 23592]
CRAB_EXCLUSION = ((83.63, 22.14), 0.2)
MSH_EXCLUSION = ((228.32, -59.08), 0.4)
GAUSS_SIGMA_DEG = 0.05
TOPHAT_BANDS_DEG = 0.1


def regular_geom(lon: np.ndarray, lat: np.ndarray, frame: str, axes) -> WcsGeom:
    """A WcsGeom whose pixel centres are exactly ``(lon[i], lat[j])`` (CAR, CRVAL lat 0)."""
    # the steps as written (0.02), not their float noise: Gammapy's ring radius in pixels
    # must not fall a hair short of 40
    step_lon, step_lat = (round(float(a[1] - a[0]), 9) for a in (lon, lat))
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---CAR", "DEC--CAR"] if frame == "icrs" else ["GLON-CAR", "GLAT-CAR"]
    wcs.wcs.crval = [lon[0], 0.0]
    wcs.wcs.crpix = [1.0, 1.0 - lat[0] / step_lat]
    wcs.wcs.cdelt = [step_lon, step_lat]
    return WcsGeom(wcs, npix=(lon.size, lat.size), axes=axes)


def exclusion_of(geom: WcsGeom, centre, radius: float):
    region = CircleSkyRegion(SkyCoord(*centre, unit="deg", frame="icrs"), radius * u.deg)
    return ~geom.region_mask([region])


def crab(data_dir: Path, reference: Path, calls: int = 1) -> dict:
    ref = np.load(reference / "crab_runs.npz")
    energy = MapAxis.from_edges(ref["energy_edges"], unit="TeV", name="energy", interp="log")
    true = MapAxis.from_edges(
        ref["energy_true_edges"], unit="TeV", name="energy_true", interp="log"
    )
    geom = regular_geom(ref["lon"], ref["lat"], "icrs", [energy])
    stages = Stages()
    t0 = stages.restart()
    observations = DataStore.from_dir(data_dir / "hess-dl3-dr1").get_observations(CRAB_RUNS)
    empty = MapDataset.create(geom, energy_axis_true=true, name="empty")
    stacked = MapDataset.create(geom, energy_axis_true=true, name="stacked")
    maker = MapDatasetMaker(selection=["counts", "exposure", "background", "psf", "edisp"])
    safe = SafeMaskMaker(methods=["offset-max", "aeff-max"], offset_max="2.5 deg")
    fov = FoVBackgroundMaker(method="fit", exclusion_mask=exclusion_of(geom, *CRAB_EXCLUSION))
    t0 = stages.add("reduction", t0)
    for obs in observations:
        ds = safe.run(maker.run(empty.copy(name=str(obs.obs_id)), obs), obs)
        t0 = stages.add("reduction", t0)
        ds = fov.run(ds)
        t0 = stages.add("FoV background", t0)
        stacked.stack(ds)
        t0 = stages.add("stack", t0)
    totals = {
        "counts": float(stacked.counts.data.sum()),
        "background": float(stacked.background.data.sum()),
    }
    return stages.result(totals)


def msh(data_dir: Path, reference: Path, calls: int = 1) -> dict:
    ref = np.load(reference / "msh1552_ring.npz")
    meta = json.loads((reference / "reference.json").read_text())["msh1552_ring"]
    energy = MapAxis.from_energy_bounds(0.5, 10, 10, unit="TeV", name="energy")
    geom = regular_geom(ref["lon"], ref["lat"], "galactic", [energy])
    stages = Stages()
    t0 = stages.restart()
    observations = DataStore.from_dir(data_dir / "hess-dl3-dr1").get_observations(meta["obs_ids"])
    empty = MapDataset.create(geom, energy_axis_true=energy.copy(name="energy_true"))
    maker = MapDatasetMaker(selection=["counts", "exposure", "background"])
    safe = SafeMaskMaker(methods=["aeff-default"])
    runs = [safe.run(maker.run(empty.copy(name=str(obs.obs_id)), obs), obs) for obs in observations]
    t0 = stages.add("reduction", t0)

    geom_image = geom.to_image().to_cube([energy.squash()])
    ring = RingBackgroundMaker(
        r_in="0.5 deg", width="0.3 deg", exclusion_mask=exclusion_of(geom_image, *MSH_EXCLUSION)
    )
    stacked_on_off = MapDatasetOnOff.create(
        geom=geom_image, energy_axis_true=energy.copy(name="energy_true"), name="stacked"
    )
    for ds in runs:
        stacked_on_off.stack(ring.run(ds.to_image()))
    t0 = stages.add("ring (to_image + ring + stack)", t0)
    lima = ExcessMapEstimator(0.04 * u.deg, correlate_off=False).run(stacked_on_off)
    t0 = stages.add("Li&Ma 0.04 deg", t0)
    totals = {
        "counts": float(stacked_on_off.counts.data.sum()),
        "counts_off": float(stacked_on_off.counts_off.data.sum()),
        "acceptance_off": float(stacked_on_off.acceptance_off.data.sum()),
        "max significance": float(np.nanmax(lima["sqrt_ts"].data)),
    }

    # the 10-band stack of the same runs: correlations in every energy band
    stacked = MapDataset.create(geom, energy_axis_true=energy.copy(name="energy_true"))
    for ds in runs:
        stacked.stack(ds)
    estimator = ExcessMapEstimator(TOPHAT_BANDS_DEG * u.deg, energy_edges=energy.edges)
    bands = stages.best("top-hat 0.1 deg, 10 bands", calls, lambda: estimator.run(stacked))
    smoothed = stages.best("Gaussian 0.05 deg, 10 bands", calls, lambda: smooth(stacked))
    totals["10-band counts"] = float(stacked.counts.data[stacked.mask_safe.data].sum())
    totals["10-band max significance"] = float(np.nanmax(bands["sqrt_ts"].data))
    totals["smoothed counts sum"] = float(smoothed[0].data.sum())
    totals["smoothed background max"] = float(smoothed[1].data.max())

    # the same correlations on every run's dataset
    per_run = stages.best(
        "top-hat 0.1 deg, 10 bands x 20 runs", calls, lambda: [estimator.run(ds) for ds in runs]
    )
    run_smoothed = stages.best(
        "Gaussian 0.05 deg, 10 bands x 20 runs", calls, lambda: [smooth(ds) for ds in runs]
    )
    peaks = [np.nanmax(m["sqrt_ts"].data) for m in per_run]
    totals["per-run max significance sum"] = float(np.sum(peaks))
    totals["per-run smoothed counts sum"] = float(sum(m[0].data.sum() for m in run_smoothed))
    totals["per-run smoothed background sum"] = float(sum(m[1].data.sum() for m in run_smoothed))
    return stages.result(totals)


def smooth(dataset) -> list:
    """Counts and background of ``dataset`` smoothed with the Gaussian."""
    return [
        getattr(dataset, name).smooth(GAUSS_SIGMA_DEG * u.deg, kernel="gauss", mode="constant")
        for name in ("counts", "background")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, nargs="?", default=Path("../shared/data"))
    parser.add_argument("--reference", type=Path, default=Path("../shared/reference"))
    parser.add_argument("--repeat", type=int, default=1, help="best of N per stage")
    parser.add_argument("--calls", type=int, default=1, help="best of K calls in a row")
    parser.add_argument("--workloads", default="crab,msh")
    args = parser.parse_args()
    work = {"crab": crab, "msh": msh}
    result: dict = {}
    for name in args.workloads.split(","):
        for _ in range(args.repeat):
            one = work[name](args.data, args.reference, args.calls)
            best = result.setdefault(name, one)
            for key in ("seconds", "cpu"):
                for stage, seconds in one[key].items():
                    best[key][stage] = min(best[key][stage], seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
