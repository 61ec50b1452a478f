"""Gammapy 2.1 on the work of ``reduce_all_runs.py``: all 105 H.E.S.S. runs, each on its own grid.

Run in the separate Gammapy environment (never from the test suite; Gammapy is not a
dependency of gammaxr)::

    /work/gpvenv/bin/python benchmarks/reduce_all_runs_gammapy.py [DATA_DIR] [--processes N]
        [--runs N]

The same set-up as ``reduce_all_runs.py``: per run a 5 x 5 deg grid at 0.02 deg centred on
the pointing (icrs, Gammapy's default CAR projection), reco energy 0.5-50 TeV in 10 log bins,
true energy 0.3-100 TeV in 20, ``MapDatasetMaker`` with counts, exposure, background, PSF and
energy dispersion (kernel) maps on Gammapy's default 0.2 deg IRF grid, ``SafeMaskMaker``
aeff-default + offset-max 2.5 deg; each run's dataset made in full and reduced to its sums
of counts and background inside the safe mask. ``--processes N`` spreads the runs over N
processes (a ``multiprocessing`` pool, each process opening the data store once), as a user
of Gammapy would use the cores. Prints the wall seconds (data store opened, runs listed and
reduced), the peak resident memory of the main process and the totals; the last line is
one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

import astropy.units as u
import numpy as np
from gammapy.data import DataStore
from gammapy.datasets import MapDataset
from gammapy.makers import MapDatasetMaker, SafeMaskMaker
from gammapy.maps import MapAxis, WcsGeom

warnings.simplefilter("ignore")

HERE = Path(__file__).resolve().parent
MAPS = ["counts", "exposure", "background", "psf", "edisp"]
_STORE: DataStore | None = None


def default_data_dir() -> Path:
    env = os.environ.get("GAMMAXR_DATA")
    return Path(env) if env else HERE.parents[1] / "shared" / "data"


def _open(store_dir: str) -> None:
    global _STORE
    _STORE = DataStore.from_dir(store_dir)


def reduce_run(obs_id: int) -> tuple[float, float]:
    """One run's dataset on its own grid, summed inside its safe mask: (counts, background)."""
    observation = _STORE.obs(obs_id)
    energy = MapAxis.from_energy_bounds(0.5, 50, 10, unit="TeV", name="energy")
    energy_true = MapAxis.from_energy_bounds(0.3, 100, 20, unit="TeV", name="energy_true")
    geom = WcsGeom.create(
        skydir=observation.get_pointing_icrs(observation.tmid),
        width=5.0,
        binsz=0.02,
        frame="icrs",
        axes=[energy],
    )
    empty = MapDataset.create(geom, energy_axis_true=energy_true, name=f"run-{obs_id}")
    dataset = MapDatasetMaker(selection=MAPS).run(empty, observation)
    dataset = SafeMaskMaker(methods=["aeff-default", "offset-max"], offset_max=2.5 * u.deg).run(
        dataset, observation
    )
    mask = dataset.mask_safe.data
    counts = float(dataset.counts.data[mask].sum())
    background = float(dataset.background.data[mask].sum())
    return counts, background


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=default_data_dir())
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--runs", type=int, default=None, help="only the first N runs (a check)")
    args = parser.parse_args()
    store_dir = str(args.data_dir / "hess-dl3-dr1")

    start = time.perf_counter()
    _open(store_dir)
    obs_ids = [int(i) for i in _STORE.obs_table["OBS_ID"]][: args.runs]
    if args.processes > 1:
        with Pool(args.processes, initializer=_open, initargs=(store_dir,)) as pool:
            sums = pool.map(reduce_run, obs_ids, chunksize=1)
    else:
        sums = [reduce_run(i) for i in obs_ids]
    wall = time.perf_counter() - start
    counts, background = (float(np.sum(v)) for v in zip(*sums, strict=True))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"Gammapy 2.1, {len(obs_ids)} runs, {args.processes} process(es)")
    print(f"wall                    : {wall:.1f} s ({1e3 * wall / len(obs_ids):.0f} ms per run)")
    print(f"peak memory (main)      : {peak_gb:.2f} GB")
    print(f"safe counts             : {counts:.0f}")
    print(f"safe background         : {background:.1f}")
    print(f"load average (1 min)    : {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    figures = {
        "runs": len(obs_ids),
        "processes": args.processes,
        "wall_s": wall,
        "counts": counts,
        "background": background,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
