"""Benchmark: does the cost per run stay flat from 10 to 10,000 simulated runs?

Usage::

    python benchmarks/scaling.py [--runs 10,100,1000] [--schedulers threads,distributed]
        [--workers 2] [--phases reduce,stack,mosaic] [--livetime 100] [--workdir DIR]
        [--repeat-small 5]

The default scenario of :mod:`gammaxr.simulate` (toy instrument, 4 wobble runs around a
Crab-like source) is simulated once with ``--livetime`` s per run (100 s: about 300 events a
run). Simulating and writing 10,000 runs would take longer than reducing them, so each size
N is a data store whose indexes hold N runs (obs_id 1..N) pointing at those 4 event files
and the shared IRF file, cycling: every run is read, validated and reduced in full, only
the files repeat (they stay in the page cache, as a survey's recent runs would).

Each (N, scheduler) is measured in a fresh process (``threads``: dask's threaded scheduler
with ``--workers`` threads; ``distributed``: a ``LocalCluster`` of ``--workers`` processes of
one thread, its scheduler in the client's process; ``cluster``: the same workers with the
scheduler in a process of its own, as on a real cluster, so that the client figures are the
user's process alone). Sizes below 1,000 runs are measured in ``--repeat-small`` fresh
processes (5 by default) and the medians printed, with the range of the wall figures: their
phases last a second or two, and single figures that short vary by 20-30 % from one
process to the next on a shared machine. Three phases, on a 3 x 3 deg grid at 0.05 deg, 6 reco / 8 true energy bins,
counts, exposure and background, safe mask offset-max 2 deg:

- ``reduce``: ``reduce_runs`` (one dask task per run) computed down to the safe counts and
  background per run;
- ``stack``: ``stack_runs`` of the same lazy dataset, computed;
- ``mosaic``: ``create_mosaic_store`` + ``add_runs_to_mosaic`` on the same grid (one task
  per run, or per batch of runs beyond 64 runs, writing into the zarr mosaic), timed until
  the store is on disk (``os.sync()``: the kernel writes dirty pages back after up to 30 s,
  so a phase of a few seconds would leave its writing out of the timing and a phase of
  minutes would not). The store is made in the system's temporary folder, or in
  ``--mosaic-dir`` (a tmpfs such as ``/dev/shm`` leaves the disk and its file system out).

Printed per phase: the runs per dask task (``reduce_runs``' and ``add_runs_to_mosaic``'s
``runs_per_task``: one task per run up to 64 runs, batches beyond; ``--runs-per-task``
overrides), wall time per run (ms),
CPU time per run of the whole process tree (client and workers: what the work costs whatever
else loads the machine) and of the client process alone (under ``distributed`` the client
process also runs the scheduler, so this is the scheduler's and client's overhead; on
threads it is everything), graph construction per run (ms: building the lazy dataset,
reading only metadata; wall, and the client's CPU in the reduce phase), the time outside the
run tasks per run (``workers x wall - time inside the run tasks``, from
``stage_profile.py``: scheduling, the final sums, idle workers; reduce phase only), and the
peak resident memory of the whole process tree during the phase (client and workers,
sampled every 0.1 s) and of the client alone. A few runs are reduced and stacked once
before the timed phases (imports and first calls, in every worker). The totals (safe counts
of the reduction, of the stack and of the mosaic) are printed and must
agree. The 1-minute load average is printed with each row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

DISTINCT_RUNS = 4  # the default scenario's wobble runs
HERE = Path(__file__).resolve().parent


class PeakMemory:
    """Peak RSS (GB) of this process and of it plus its children, sampled in a thread; and
    the CPU seconds both spent while it ran (``client_cpu``, ``tree_cpu``).

    Sampling every 0.1 s and listing the child processes once a second keeps the sampler's
    own CPU near 1 % of a core (every 20 ms with a fresh process list it took 7-10 %, which
    the client CPU figures counted and the workers lost).
    """

    def __init__(self, interval: float = 0.1, list_children_every: float = 1.0):
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._list_every = list_children_every
        self._children: list = []
        self._listed = -float("inf")
        self._stop = threading.Event()
        self.client_gb = self.tree_gb = 0.0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> tuple[float, float]:
        own = self._process.memory_info().rss
        total = own
        if time.perf_counter() - self._listed > self._list_every:
            self._children = self._process.children(recursive=True)
            self._listed = time.perf_counter()
        for child in self._children:
            try:
                total += child.memory_info().rss
            except Exception:  # a child that just ended
                pass
        return own / 1e9, total / 1e9

    def _cpu(self) -> tuple[float, float]:
        own = sum(self._process.cpu_times()[:2])
        total = own
        for child in self._process.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except Exception:  # a child that just ended
                pass
        return own, total

    def _sample(self) -> None:
        while not self._stop.is_set():
            own, total = self._rss()
            self.client_gb, self.tree_gb = max(self.client_gb, own), max(self.tree_gb, total)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakMemory:
        self._cpu0 = self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        own, total = self._rss()
        self.client_gb, self.tree_gb = max(self.client_gb, own), max(self.tree_gb, total)
        own, total = self._cpu()
        self.client_cpu, self.tree_cpu = own - self._cpu0[0], total - self._cpu0[1]


def simulate_base(directory: Path, livetime: float) -> Path:
    """The default scenario's 4 runs with ``livetime`` s each, simulated once."""
    from gammaxr.simulate import default_scenario, simulate_datastore

    if not (directory / "obs-index.fits.gz").exists():
        simulate_datastore(default_scenario(livetime=livetime, seed=1), directory)
    return directory


def tiled_store(base: Path, directory: Path, n_runs: int) -> Path:
    """A data store of ``n_runs`` runs (obs_id 1..N) whose files are the base store's, cycled."""
    from gammaxr.data import open_datastore
    from gammaxr.io.gadf_write import write_index_files

    if (directory / "obs-index.fits.gz").exists():
        return directory
    store = open_datastore(base)
    obs, hdus = store.obs_table, store.hdu_table
    base_ids = obs.obs_id.values
    new_ids = np.arange(1, n_runs + 1)
    source = base_ids[(new_ids - 1) % len(base_ids)]
    obs_table = obs.sel(obs_id=source).assign_coords(obs_id=new_ids)
    rows, owners = [], []
    hdu_obs = hdus["obs_id"].values
    for new, old in zip(new_ids, source, strict=True):
        index = np.flatnonzero(hdu_obs == old)
        rows.append(index)
        owners.append(np.full(index.size, new))
    hdu_table = hdus.isel(hdu=np.concatenate(rows))
    hdu_table["obs_id"] = ("hdu", np.concatenate(owners))
    write_index_files(directory, hdu_table, obs_table)
    return directory


def _spec():
    from gammaxr.geom import SkyGrid
    from gammaxr.reduce.dataset import ReductionSpec

    return ReductionSpec(
        energy_edges=np.geomspace(0.5, 20, 7),
        energy_true_edges=np.geomspace(0.3, 50, 9),
        grid=SkyGrid.from_center((83.633, 22.014), 3.0, 0.05, frame="icrs"),
        maps=("counts", "exposure", "background"),
        safe_mask=("offset-max",),
        offset_max=2.0,
    )


def warm_up(observations, spec, workers: int) -> None:
    """Reduce and stack a few runs once: imports, first-call and first-graph costs (in each
    worker process under ``distributed``) are paid before the timed phases."""
    import dask

    from gammaxr.reduce.runs import reduce_runs
    from gammaxr.reduce.stack import stack_runs

    ds = reduce_runs(observations[: 2 * workers], spec, runs_per_task=1)
    dask.compute(ds["counts"].data.sum(), stack_runs(ds)["counts"].data.sum())


def start_cluster(kind: str, workers: int):
    """A 2-worker cluster: ``distributed`` is gammaxr's ``local_cluster`` (the scheduler runs
    in this, the client's, process); ``cluster`` puts the scheduler and every worker in
    processes of their own (``distributed.deploy.subprocess.SubprocessCluster``), as on a
    real cluster, so the client's memory and CPU are the user's process alone."""
    if kind == "distributed":
        from gammaxr.reduce.cluster import local_cluster

        return local_cluster(n_workers=workers)
    from distributed.deploy.subprocess import SubprocessCluster

    from gammaxr.reduce.cluster import WORKER_PRELOAD

    # the worker processes import stage_profile (this folder) and gammaxr as this process does
    paths = [str(HERE), *sys.path[1:], os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return SubprocessCluster(
        n_workers=workers,
        threads_per_worker=1,
        dashboard_address=":0",
        worker_kwargs={"preload": list(WORKER_PRELOAD)},
    )


def measure(
    store_dir: Path,
    scheduler: str,
    workers: int,
    phases: list[str],
    batch: int | None = None,
    mosaic_dir: Path | None = None,
) -> dict:
    """Run the phases on one store in this process; returns the figures."""
    import dask
    import stage_profile

    from gammaxr.data import open_datastore
    from gammaxr.reduce.mosaic import add_runs_to_mosaic, create_mosaic_store
    from gammaxr.reduce.runs import reduce_runs
    from gammaxr.reduce.stack import stack_runs

    client = cluster = None
    if scheduler in ("distributed", "cluster"):
        from distributed import Client

        cluster = start_cluster(scheduler, workers)
        client = Client(cluster)
        client.run(stage_profile.install)
        config = {}
    else:
        stage_profile.install()
        config = {"scheduler": scheduler, "num_workers": workers}
    spec = _spec()
    out: dict = {"load": os.getloadavg()[0]}
    t0 = time.perf_counter()
    observations = open_datastore(store_dir).observations()
    n = len(observations)
    out["runs"], out["open_ms"] = n, 1e3 * (time.perf_counter() - t0) / n

    with dask.config.set(config):
        warm_up(observations, spec, workers)
        if client is not None:
            client.run(stage_profile.install)  # zero the warm-up's timers
        if "reduce" in phases or "stack" in phases:
            with PeakMemory() as memory:
                t0, c0 = time.perf_counter(), time.process_time()
                ds = reduce_runs(observations, spec, runs_per_task=batch)
                graph, graph_cpu = time.perf_counter() - t0, time.process_time() - c0
                if client is None:
                    stage_profile.install()  # zero the headers read for the graph
                mask = ds["mask_safe"]
                dims = [d for d in ds["counts"].dims if d != "obs_id"]
                # dask arrays, not DataArrays: dask.compute gives an xarray object a finalize
                # task holding the object, graph and all, which distributed pickles
                per_run = [ds[v].where(mask, 0).sum(dims).data for v in ("counts", "background")]
                tasks = len({k for v in per_run for k in v.__dask_graph__()})
                cpu0 = memory._cpu()
                t1 = time.perf_counter()
                counts, _ = dask.compute(*per_run)
                wall = time.perf_counter() - t1
                cpu1 = memory._cpu()
            profiles = list(client.run(stage_profile.collect).values()) if client else []
            profile = stage_profile.merge(profiles or [stage_profile.collect()])
            outside = wall * workers - profile["run_tasks"]
            out["reduce"] = {
                "graph_ms": 1e3 * graph / n,
                "graph_cpu_ms": 1e3 * graph_cpu / n,
                "wall_ms": 1e3 * wall / n,
                "outside_ms": 1e3 * outside / n,
                "peak_gb": memory.tree_gb,
                "client_gb": memory.client_gb,
                "counts": float(counts.sum()),
                "tasks": tasks,
                "runs_per_task": int(ds["counts"].chunks[0][0]),
                "cpu_ms": 1e3 * (cpu1[1] - cpu0[1]) / n,
                "client_cpu_ms": 1e3 * (cpu1[0] - cpu0[0]) / n,
            }
        if "stack" in phases:
            with PeakMemory() as memory:
                t0 = time.perf_counter()
                stacked = stack_runs(ds)
                graph = time.perf_counter() - t0
                t1 = time.perf_counter()
                total = float(stacked["counts"].data.sum().compute())
                wall = time.perf_counter() - t1
            out["stack"] = {
                "graph_ms": 1e3 * graph / n,
                "wall_ms": 1e3 * wall / n,
                "cpu_ms": 1e3 * memory.tree_cpu / n,
                "client_cpu_ms": 1e3 * memory.client_cpu / n,
                "peak_gb": memory.tree_gb,
                "client_gb": memory.client_gb,
                "counts": total,
            }
        if "mosaic" in phases:
            with tempfile.TemporaryDirectory(dir=mosaic_dir) as tmp, PeakMemory() as memory:
                path = Path(tmp) / "mosaic.zarr"
                os.sync()  # what was written before reaches the disk outside the timing
                t0 = time.perf_counter()
                create_mosaic_store(path, spec, chunks=30)
                result = add_runs_to_mosaic(path, observations, spec, runs_per_task=batch)
                # until the store is on disk: the kernel writes a few seconds' worth back
                # later, after a short phase but during a long one
                os.sync()
                wall = time.perf_counter() - t0
                import xarray as xr

                mosaic = xr.open_zarr(path)
                total = float(mosaic["counts"].sum().compute())
            out["mosaic"] = {
                "wall_ms": 1e3 * wall / n,
                "cpu_ms": 1e3 * memory.tree_cpu / n,
                "client_cpu_ms": 1e3 * memory.client_cpu / n,
                "peak_gb": memory.tree_gb,
                "client_gb": memory.client_gb,
                "counts": total,
                "added": len(result.added),
                "runs_per_task": result.runs_per_task,
            }
    if client is not None:
        client.close()
        cluster.close()
    return out


def _row(n: int, scheduler: str, figures: dict) -> list[str]:
    rows = []
    for phase in ("reduce", "stack", "mosaic"):
        f = figures.get(phase)
        if f is None:
            continue
        graph = f"{f['graph_ms']:.2f}" if "graph_ms" in f else "-"
        graph_cpu = f"{f['graph_cpu_ms']:.2f}" if "graph_cpu_ms" in f else "-"
        outside = f"{f['outside_ms']:.1f}" if "outside_ms" in f else "-"
        batch = f"{f['runs_per_task']}" if "runs_per_task" in f else "-"
        rows.append(
            f"| {n:>6} | {scheduler:<11} | {phase:<6} | {batch:>5} | {f['wall_ms']:>7.1f} | "
            f"{f['cpu_ms']:>7.1f} | {f['client_cpu_ms']:>7.1f} | {graph:>6} | {graph_cpu:>6} | "
            f"{outside:>7} | "
            f"{f['peak_gb']:>5.2f} | {f['client_gb']:>6.2f} | {f['counts']:>8.0f} | "
            f"{figures['load']:>4.1f} |"
        )
    return rows


#: Sizes below this many runs are measured ``--repeat-small`` times (each in a fresh process)
#: and their figures are the medians: a phase of 100 runs lasts 1-2 s, and on a shared
#: machine single figures that short vary by 20-30 % from one process to the next.
SMALL_RUNS = 1000


def median_figures(measured: list[dict]) -> dict:
    """Per phase and figure, the median of the ``measured`` processes' figures."""
    if len(measured) == 1:
        return measured[0]
    out: dict = {}
    for phase, keys in measured[0].items():
        if not isinstance(keys, dict):  # the load average and other single figures
            out[phase] = float(np.median([m[phase] for m in measured]))
            continue
        out[phase] = {
            key: float(np.median([m[phase][key] for m in measured]))
            if isinstance(keys[key], float)
            else keys[key]
            for key in keys
        }
    return out


HEADER = (
    "|   runs | scheduler   | phase  | batch | ms/run  | cpu ms  | client  | graph  | graph  "
    "| outside | peak  | client | counts   | load |\n"
    "|        |             |        |       | (wall)  | /run    | cpu ms  | ms/run | cpu ms "
    "| ms/run  | GB    | GB     |          |      |\n"
    "|-------:|-------------|--------|------:|--------:|--------:|--------:|-------:|-------:"
    "|--------:|------:|-------:|---------:|-----:|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="10,100,1000", help="comma-separated run counts")
    parser.add_argument("--schedulers", default="threads,distributed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--phases", default="reduce,stack,mosaic")
    parser.add_argument("--livetime", type=float, default=100.0, help="s per simulated run")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the stores here")
    parser.add_argument(
        "--mosaic-dir",
        type=Path,
        default=None,
        help="where the mosaic phase makes its store (default: the system's temporary folder)",
    )
    parser.add_argument(
        "--runs-per-task",
        type=int,
        default=None,
        help="runs per dask task of reduce_runs (default: its own rule, runs_per_task)",
    )
    parser.add_argument(
        "--repeat-small",
        type=int,
        default=5,
        help=f"processes per size below {SMALL_RUNS} runs, their figures' medians printed",
    )
    parser.add_argument(
        "--measure", nargs=2, metavar=("STORE", "SCHEDULER"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    phases = args.phases.split(",")

    if args.measure:  # the child process of one (N, scheduler)
        figures = measure(
            Path(args.measure[0]),
            args.measure[1],
            args.workers,
            phases,
            args.runs_per_task,
            args.mosaic_dir,
        )
        print(json.dumps(figures))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gammaxr-scaling-"))
    t0 = time.perf_counter()
    base = simulate_base(workdir / "base", args.livetime)
    from gammaxr.data import open_datastore

    events = open_datastore(base).obs_table["event_count"].values
    print(
        f"{DISTINCT_RUNS} distinct simulated runs ({args.livetime:.0f} s each, "
        f"{int(events.min())}-{int(events.max())} events) ready in {time.perf_counter() - t0:.1f} s; "
        f"stores under {workdir}"
    )
    print(HEADER)
    results = {}
    for n in (int(v) for v in args.runs.split(",")):
        store = tiled_store(base, workdir / f"runs-{n}", n)
        for scheduler in args.schedulers.split(","):
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--measure",
                str(store),
                scheduler,
                "--workers",
                str(args.workers),
                "--phases",
                args.phases,
            ]
            if args.runs_per_task is not None:
                command += ["--runs-per-task", str(args.runs_per_task)]
            if args.mosaic_dir is not None:
                command += ["--mosaic-dir", str(args.mosaic_dir)]
            repeats = args.repeat_small if n < SMALL_RUNS else 1
            measured, failure = [], None
            for _ in range(repeats):
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode:
                    failure = done.stderr.strip().splitlines()[-1]
                    break
                measured.append(json.loads(done.stdout.strip().splitlines()[-1]))
            if failure is not None:
                print(f"| {n:>6} | {scheduler:<11} | failed: {failure}")
                continue
            figures = median_figures(measured)
            results[n, scheduler] = figures
            print("\n".join(_row(n, scheduler, figures)), flush=True)
            if repeats > 1:
                spread = ", ".join(
                    f"{phase} {min(m[phase]['wall_ms'] for m in measured):.1f}-"
                    f"{max(m[phase]['wall_ms'] for m in measured):.1f}"
                    for phase in phases
                    if phase in figures
                )
                print(f"|        | (median of {repeats} processes; wall ms/run {spread})")
    sizes = sorted({n for n, _ in results})
    if len(sizes) > 1:
        print("per-run wall and CPU time, largest size / smallest size >= 100 runs:")
        for (n, scheduler), figures in sorted(results.items()):
            if n != sizes[-1]:
                continue
            ref_n = min(s for s in sizes if s >= min(100, sizes[-1]))
            ref = results.get((ref_n, scheduler))
            for phase in phases:
                if ref and phase in figures and phase in ref:
                    ratio = figures[phase]["wall_ms"] / ref[phase]["wall_ms"]
                    cpu = figures[phase]["cpu_ms"] / ref[phase]["cpu_ms"]
                    print(
                        f"  {scheduler:<11} {phase:<6} {ref_n} -> {n} runs: wall x{ratio:.2f}, "
                        f"CPU x{cpu:.2f}"
                    )


if __name__ == "__main__":
    main()
