"""How each stage of the per-run reduction scales from one thread to two, stage by stage.

    python benchmarks/stage_threads.py [DATA_DIR] [--every 7] [--rounds 3] [--calls 3]
        [--default-allocator]

On every ``--every``-th H.E.S.S. run, in the set-up of ``reduce_all_runs.py``, each stage is
timed on its own: first one thread goes through the runs (``--calls`` times), then two
threads go through them at the same time, each on its own copy of the work; the best of
``--rounds`` is kept. Printed per stage: ms of wall time per run with one thread, with two
(the wall time of both threads over the runs both did), and the speed-up (2.0 would be
perfect). A stage that holds the GIL (Python, small numpy calls) stays near 1.0; a stage of
large numpy passes is bound by the memory and the cache the two cores share.

``numpy passes`` gives the machine's side for comparison: multiplies over arrays of
0.5 MB (kept in a core's cache; 64 per "run") and of 32 MB (streamed from memory; one per
"run"), with one thread and with two.
"""

from __future__ import annotations

import argparse
import threading
import time
import warnings
from collections.abc import Callable

import numpy as np
from reduce_all_runs import benchmark_spec, default_data_dir

from gammaxr.data import open_datastore
from gammaxr.data.observation import read_observations
from gammaxr.data.validation import validate_observation
from gammaxr.reduce.cluster import keep_freed_memory
from gammaxr.reduce.dataset import irf_maps, pointing_radec, reduce_observation_arrays, run_grid
from gammaxr.reduce.maps import background_cube, exposure_cube, fill_missing_along_energy


def per_run_ms(work: Callable[..., object], n_runs: int, threads: int, rounds: int, calls: int):
    """Best wall ms per run of ``threads`` threads each calling ``work(i, thread)`` for every
    run ``i`` (``thread``: 0, 1, ...)."""

    def one_thread(thread: int) -> None:
        for _ in range(calls):
            for i in range(n_runs):
                work(i, thread)

    best = np.inf
    for _ in range(rounds):
        pool = [threading.Thread(target=one_thread, args=(t,)) for t in range(threads)]
        start = time.perf_counter()
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        best = min(best, time.perf_counter() - start)
    return 1e3 * best / (n_runs * calls * threads)


def numpy_passes(size: int, passes: int) -> Callable[..., object]:
    """``passes`` multiplies over ``size`` float64 values per call, each thread on its own
    arrays (made beforehand)."""
    arrays = [(np.random.default_rng(t).random(size), np.empty(size)) for t in range(2)]

    def work(_: int, thread: int) -> None:
        a, b = arrays[thread]
        for _ in range(passes):
            np.multiply(a, 1.0001, out=b)

    return work


def per_run(stage: Callable[[int], object]) -> Callable[..., object]:
    """``stage(i)``, whichever thread calls it."""
    return lambda i, thread: stage(i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=default_data_dir())
    parser.add_argument("--every", type=int, default=7, help="take every N-th run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3, help="passes over the runs per round")
    parser.add_argument("--default-allocator", action="store_true")
    args = parser.parse_args()
    kept = False if args.default_allocator else keep_freed_memory()
    warnings.simplefilter("ignore")  # the runs' validation warnings, printed by the reduction

    spec = benchmark_spec()
    lazy = open_datastore(args.data_dir).observations()[:: args.every]
    runs = read_observations(lazy)
    grids = [run_grid(spec, run) for run in runs]
    offsets = [
        grid.separation_values(pointing_radec(run), "icrs")
        for run, grid in zip(runs, grids, strict=True)
    ]
    rates = [fill_missing_along_energy(run.bkg) for run in runs]
    e_true = np.sqrt(spec.energy_true[:-1] * spec.energy_true[1:])
    irf_grids = [spec.irf_grid(grid) for grid in grids]
    stages = {
        "read (FITS -> xarray)": lambda i: read_observations([lazy[i]]),
        "validate": lambda i: validate_observation(runs[i], spec.hdus()),
        "pixel offsets": lambda i: grids[i].separation_values(pointing_radec(runs[i]), "icrs"),
        "exposure": lambda i: exposure_cube(
            runs[i].aeff, offsets[i], runs[i].livetime, e_true, dtype=np.float32
        ),
        "background": lambda i: background_cube(
            rates[i],
            grids[i],
            pointing_radec(runs[i]),
            runs[i].ontime,
            spec.energy,
            offset=offsets[i],
            dtype=np.float32,
        ),
        "PSF and edisp maps": lambda i: irf_maps(runs[i], spec, irf_grids[i]),
        "whole run, read": lambda i: reduce_observation_arrays(runs[i], spec, grids[i]),
        "whole run, from the files": lambda i: reduce_observation_arrays(lazy[i], spec, grids[i]),
    }
    stages = {name: per_run(stage) for name, stage in stages.items()}
    stages["numpy passes, 0.5 MB arrays"] = numpy_passes(62_500, 64)
    stages["numpy passes, 32 MB arrays"] = numpy_passes(4_000_000, 1)
    print(f"{len(runs)} runs (every {args.every}-th); allocator keeps freed memory: {kept}")
    print(f"{'stage':30s} {'1 thread':>10s} {'2 threads':>10s} {'speed-up':>9s}   (ms per run)")
    for name, work in stages.items():
        one = per_run_ms(work, len(runs), 1, args.rounds, args.calls)
        two = per_run_ms(work, len(runs), 2, args.rounds, args.calls)
        print(f"{name:30s} {one:10.2f} {two:10.2f} {one / two:8.2f}x")


if __name__ == "__main__":
    main()
