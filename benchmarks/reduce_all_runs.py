"""Reduce all 105 H.E.S.S. DL3 DR1 runs, each onto its own 5 x 5 deg grid, and print the figures.

Grid per run: 5 x 5 deg at 0.02 deg centred on the pointing (icrs), reco energy 0.5-50 TeV in
10 log bins, true energy 0.3-100 TeV in 20 log bins, maps counts, exposure, background, PSF
and energy dispersion, safe mask aeff-default + offset-max 2.5 deg (the issue's set-up;
Gammapy 2.1 took 97.6 s in one process and 48.6 s in a pool of two, 88.2 s and 44.2 s with
its processes keeping freed memory, and sums to 257457 counts and 256232 background inside
the safe masks: ``reduce_all_runs_gammapy.py``, 2026-12-05 21:23-21:41 UTC, back to back with
this script; between 79.8 and 100.0 s in one process in the sets of 2026-12-04 and -05, as
the machine's speed drifted; in session 8, in a slow phase, 109.3 s and 52.3 s).

Each run's dataset is made in full on a worker and reduced there to its safe sums (as a
pipeline that stacks or writes results would); ``--output PATH`` also writes every run to a
zarr store (one group per run). ``--profile`` adds a table of where the worker time goes
(read, counts, exposure, background, PSF map, edisp map, safe masks, the rest of the run
task, and what is spent outside the run tasks: scheduling, the final sums, idle workers);
see ``stage_profile.py``. The timers add a few microseconds per call, the totals are the same.

Like the ``gammaxr`` command, the script first lets its process keep the memory it frees
(:func:`gammaxr.reduce.cluster.keep_freed_memory`, glibc): each run's ~15 MB of output maps
then reuse the last run's pages instead of fresh ones (on this virtual machine ~3 us a page
fault, 0.3-0.6 s of the threaded compute). ``--default-allocator`` leaves glibc as it is.
Either way the ratios printed are against Gammapy run with the same allocator setting.

Usage: python benchmarks/reduce_all_runs.py [DATA_DIR] [--scheduler threads|distributed|sync]
          [--workers N] [--maps counts,exposure,background,psf,edisp] [--output PATH.zarr]
          [--profile] [--default-allocator]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import stage_profile

from gammaxr.data import open_datastore
from gammaxr.reduce.cluster import keep_freed_memory, scheduler_context
from gammaxr.reduce.dataset import ReductionSpec
from gammaxr.reduce.runs import reduce_runs_tree

# reduce_all_runs_gammapy.py (Gammapy 2.1) on this work, 2026-12-05 21:23-21:41 UTC, taken
# back to back with this script's runs (the machine's speed drifts by 20 % or more within an hour:
# compare only figures taken together): totals, wall seconds in one process and in a pool
# of two, with glibc's default allocator and with the processes keeping freed memory as
# keep_freed_memory() does (MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ = 268435456)
GAMMAPY_COUNTS, GAMMAPY_BACKGROUND = 257457.0, 256232.1
GAMMAPY_SECONDS = {"default": (97.6, 48.6), "keep": (88.2, 44.2)}


def default_data_dir() -> Path:
    env = os.environ.get("GAMMAXR_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return root / "hess-dl3-dr1"


def benchmark_spec(maps: str = "counts,exposure,background,psf,edisp") -> ReductionSpec:
    """The issue's set-up: each run on its own 5 x 5 deg grid (see the module docstring)."""
    return ReductionSpec(
        energy_edges=np.geomspace(0.5, 50, 11),
        energy_true_edges=np.geomspace(0.3, 100, 21),
        width=5.0,
        binsz=0.02,
        frame="icrs",
        maps=tuple(maps.split(",")),
        safe_mask=("aeff-default", "offset-max"),
        offset_max=2.5,
    )


def peak_memory_gb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024**2


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process and of its child processes (workers)."""
    import psutil

    me = psutil.Process()
    children = 0.0
    for child in me.children(recursive=True):
        try:
            children += sum(child.cpu_times()[:2])
        except psutil.Error:  # a child that just ended
            pass
    return sum(me.cpu_times()[:2]), children


def _masked_sums(counts, background, mask):
    """Counts and background summed inside the safe mask of one run (float32 sums), shaped
    (1, 1, 2): same number of dims as the maps, so dask fuses the task with the run's picks.
    The maps are finite, so multiplying by the mask gives the very sums ``np.where(mask, map,
    0)`` gives, 5x faster (0.5 against 2.5 ms a run)."""
    if not (np.isfinite(counts).all() and np.isfinite(background).all()):
        counts, background = np.where(mask, counts, 0), np.where(mask, background, 0)
    sums = [np.multiply(counts, mask).sum(), np.multiply(background, mask).sum()]
    return np.array(sums).reshape(1, 1, 2)


def safe_sums(tree):
    """Lazy sums of counts and background inside the safe masks: one small task per run
    (the picks of the three maps out of the run's results fused into it)."""
    sums = []
    for node in tree.children.values():
        ds = node.dataset
        arrays = (ds["counts"].data, ds["background"].data, ds["mask_safe"].data)
        sums.append(  # da.blockwise: map_blocks would inspect the function for every run
            da.blockwise(
                _masked_sums,
                "ijk",
                *(part for array in arrays for part in (array, "ijk")),
                adjust_chunks={"i": 1, "j": 1, "k": 2},
                dtype=float,
                meta=np.empty((0, 0, 0)),
                concatenate=True,
            )
        )
    return sums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=default_data_dir())
    parser.add_argument("--scheduler", default="threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--maps", default="counts,exposure,background,psf,edisp")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--profile", action="store_true", help="print the per-stage profile")
    parser.add_argument(
        "--default-allocator",
        action="store_true",
        help="do not call keep_freed_memory() (glibc returns freed arrays to the system)",
    )
    args = parser.parse_args()
    kept = False if args.default_allocator else keep_freed_memory()
    if args.profile and args.scheduler != "distributed":
        stage_profile.install()  # before the graph: its tasks hold the wrapped functions

    start = time.perf_counter()
    store = open_datastore(args.data_dir)
    spec = benchmark_spec(args.maps)
    tree = reduce_runs_tree(store.observations(), spec)
    # part of the graph: the per-run sums inside the safe masks, one array of a chunk per run
    # (computing 105 arrays would add a finalize task per array, i.e. per run; to_delayed
    # would optimise each run's graph on its own, 0.8 ms a run)
    lazy_sums = da.concatenate(safe_sums(tree), axis=0)
    graph_seconds = time.perf_counter() - start

    client = None
    cluster_start = time.perf_counter()
    if args.scheduler == "distributed":
        from distributed import Client

        from gammaxr.reduce.cluster import local_cluster

        cluster = local_cluster(n_workers=args.workers)
        client = Client(cluster)
    cluster_seconds = time.perf_counter() - cluster_start
    if args.profile and client is not None:
        client.run(stage_profile.install)
    elif args.profile:
        stage_profile.install()  # zero what graph construction read on the client
    cpu_start = cpu_seconds()
    compute_start = time.perf_counter()
    # a local scheduler chosen as the gammaxr command chooses it (scheduler_context: dask's
    # function for the name, so that dask does not import distributed to look for a client)
    with (
        scheduler_context(None if client else args.scheduler) as chosen,
        dask.config.set({**chosen, "num_workers": args.workers} if chosen else {}),
    ):
        if args.output is not None:
            tree.to_zarr(args.output, mode="w")
        (sums,) = dask.compute(lazy_sums)
    wall = time.perf_counter() - start
    compute_seconds = time.perf_counter() - compute_start
    client_cpu, workers_cpu = np.subtract(cpu_seconds(), cpu_start)
    if args.profile:
        profiles = list(client.run(stage_profile.collect).values()) if client else []
        profile = stage_profile.merge(profiles or [stage_profile.collect()])
    if client is not None:
        client.close()
        cluster.close()

    counts, background = np.array(sums, dtype=float).reshape(-1, 2).sum(axis=0)
    print(f"runs reduced            : {len(sums)}")
    print(f"maps                    : {', '.join(spec.maps)}")
    print(f"scheduler / workers     : {args.scheduler} / {args.workers}")
    allocator = "keeps freed memory (keep_freed_memory)" if kept else "glibc default"
    print(f"allocator (this process): {allocator}")
    print(f"graph construction      : {graph_seconds:.2f} s")
    print(f"cluster start-up        : {cluster_seconds:.2f} s")
    print(f"reduction (compute)     : {compute_seconds:.2f} s")
    print(
        f"CPU during the compute  : client {client_cpu:.2f} s (with the scheduler under "
        f"distributed), worker processes {workers_cpu:.2f} s"
    )
    one, two = GAMMAPY_SECONDS["keep" if kept else "default"]
    print(
        f"wall time (total)       : {wall:.2f} s  (Gammapy 2.1 with the same allocator: {one} s "
        f"in one process, x{one / wall:.1f}; {two} s in two, x{two / wall:.1f})"
    )
    print(f"peak memory (max proc)  : {peak_memory_gb():.2f} GB")
    print(
        f"safe counts, all runs   : {counts:.0f}  (Gammapy 2.1: {GAMMAPY_COUNTS:.0f}, diff {counts - GAMMAPY_COUNTS:+.0f})"
    )
    print(
        f"safe background, all    : {background:.1f}  (Gammapy 2.1: {GAMMAPY_BACKGROUND:.1f}, "
        f"{100 * (background / GAMMAPY_BACKGROUND - 1):+.2f} %)"
    )
    print(f"load average (1 min)    : {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.profile:
        workers = 1 if args.scheduler in ("sync", "synchronous") else args.workers
        print("\n".join(stage_profile.format_profile(profile, compute_seconds, workers, len(sums))))


if __name__ == "__main__":
    # run as the importable module, not as __main__: distributed then pickles _masked_sums by
    # reference (the workers import this module; they share the script's sys.path) instead of
    # by value into every sums task (about 0.5 s of scheduler CPU for the 105 runs)
    import reduce_all_runs

    reduce_all_runs.main()
