"""gammaxr and Gammapy 2.1 side by side: the same work, stage by stage, with the totals.

    python benchmarks/side_by_side.py [DATA_DIR] [--repeat N] [--calls K] [--workloads crab,msh]
        [--gammapy-python /work/gpvenv/bin/python] [--scheduler threads|sync]
        [--keep-freed-memory]

Workloads (the reference cases of ``../shared/reference``, on their grids):

``crab``
    4 H.E.S.S. Crab runs, 100 x 100 pixels of 0.02 deg, 1-10 TeV in 4 bins, true energy
    0.5-20 TeV in 10; counts, exposure, background, PSF and edisp maps, safe mask
    offset-max 2.5 deg + aeff-max 10 %. Stages: ``reduction`` (open the store, reduce the
    runs), ``FoV background`` (norm fitted per run outside a 0.2 deg circle), ``stack``.
    Totals: stacked counts and background.
``msh``
    20 H.E.S.S. runs around MSH 15-52, 150 x 150 galactic pixels of 0.02 deg, 0.5-10 TeV in
    10 bins (true = reco); counts, exposure, background, safe mask aeff-default. Stages:
    ``reduction``; ``ring`` (each run summed over energy, ring r_in 0.5 deg width 0.3 deg with
    a 0.4 deg exclusion circle, the on/off images stacked); ``Li&Ma`` (excess and significance
    with a 0.04 deg top-hat, off counts not correlated again); then on the 10-band stack of the
    runs ``top-hat`` (excess and significance maps with a 0.1 deg top-hat in each of the 10
    bands) and ``Gaussian`` (counts and background smoothed with a sigma 0.05 deg Gaussian in
    each band, zero outside the map: Gammapy's ``Map.smooth(..., mode="constant")`` of each
    map, gammaxr's ``ds.gamma.smooth`` of both); and the same two on every run (``x 20
    runs``: 200 planes per map, where the kernel's spectrum or banded matrices are reused
    across bands and runs; Gammapy runs its estimator and ``Map.smooth`` on each run's
    dataset, gammaxr one call on the runs' dataset). Totals: stacked counts, off counts and off acceptance, maximum significance,
    sums of the 10-band maps, and of the per-run maps.

Kernels are drawn with Gammapy's pixel metric (``metric="pixel"``) so that both libraries
sum the same pixels. The gammaxr stages run here (threaded dask scheduler by default, as a
user would); the Gammapy stages run in a subprocess of ``--gammapy-python`` (the script
``side_by_side_gammapy.py``; Gammapy is not a dependency of gammaxr): without it, Gammapy's
column is left out with a note. The two libraries run in turn, one round each, ``--repeat``
times (so both see the same load); each stage is the best of the rounds (wall seconds);
the 1-minute load average is printed, since the figures depend on what else the machine runs.
The correlation stages of ``msh`` take a few ms to a second: with ``--calls K`` each is called
K times in a row in every round (in both libraries) and the fastest call is kept, the figure
of a warm process (memory already mapped, caches and thread pools warm); the default 1 is
one cold call after the other stages, as a script that makes one map would see it (each
gammaxr round starts without the result buffers an earlier round left for reuse,
:func:`gammaxr.memory.drop_kept_buffers`).
CPU seconds (``time.process_time``, all threads of the process) are printed too: on a loaded
machine they are the steadier measure of the work done, while the wall seconds (on a quiet
machine) are what a user waits for.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import dask
import numpy as np
from stage_timer import Stages

from gammaxr.data import open_datastore
from gammaxr.geom import SkyGrid
from gammaxr.memory import drop_kept_buffers
from gammaxr.reduce.cluster import WORKER_MALLOC_ENV, keep_freed_memory
from gammaxr.reduce.dataset import ReductionSpec
from gammaxr.reduce.runs import reduce_runs
from gammaxr.testing.reference import crab_reference_spec

CRAB_RUNS = [23523, 23526, 23559, 23592]
CRAB_EXCLUSION = "icrs; circle(83.63, 22.14, 0.2)"
MSH_EXCLUSION = "icrs; circle(228.32, -59.08, 0.4)"
GAUSS_SIGMA_DEG = 0.05
TOPHAT_BANDS_DEG = 0.1
HERE = Path(__file__).resolve().parent


def default_data_dir() -> Path:
    env = os.environ.get("GAMMAXR_DATA")
    return Path(env) if env else HERE.parents[1] / "shared" / "data"


def crab(data_dir: Path, reference: Path, calls: int = 1) -> dict:
    ref = np.load(reference / "crab_runs.npz")
    stages = Stages()
    t0 = stages.restart()
    spec = crab_reference_spec(ref)
    observations = open_datastore(data_dir / "hess-dl3-dr1").observations(CRAB_RUNS)
    runs = reduce_runs(observations, spec).compute()
    t0 = stages.add("reduction", t0)
    runs = runs.gamma.fov_background(CRAB_EXCLUSION, method="fit").compute()
    t0 = stages.add("FoV background", t0)
    stacked = runs.gamma.stack().compute()
    t0 = stages.add("stack", t0)
    totals = {
        "counts": float(stacked["counts"].sum()),
        "background": float(stacked["background"].sum()),
    }
    return stages.result(totals)


def msh(data_dir: Path, reference: Path, calls: int = 1) -> dict:
    ref = np.load(reference / "msh1552_ring.npz")
    meta = json.loads((reference / "reference.json").read_text())["msh1552_ring"]
    stages = Stages()
    t0 = stages.restart()
    edges = np.geomspace(0.5, 10, 11)
    spec = ReductionSpec(
        energy_edges=edges,
        energy_true_edges=edges,
        grid=SkyGrid.from_coords(ref["lon"], ref["lat"], "galactic"),
        maps=("counts", "exposure", "background"),
        safe_mask=("aeff-default",),
    )
    observations = open_datastore(data_dir / "hess-dl3-dr1").observations(meta["obs_ids"])
    runs = reduce_runs(observations, spec).compute()
    t0 = stages.add("reduction", t0)

    on_off = runs.gamma.ring_background(0.5, 0.3, MSH_EXCLUSION, metric="pixel")
    stacked_on_off = on_off.gamma.stack().compute()
    t0 = stages.add("ring (to_image + ring + stack)", t0)
    lima = stacked_on_off.gamma.excess_map(0.04, correlate_off=False, metric="pixel").compute()
    t0 = stages.add("Li&Ma 0.04 deg", t0)
    totals = {
        "counts": float(stacked_on_off["counts"].sum()),
        "counts_off": float(stacked_on_off["counts_off"].sum()),
        "acceptance_off": float(stacked_on_off["acceptance_off"].sum()),
        "max significance": float(lima["significance"].max()),
    }

    stacked = runs.gamma.stack().compute()
    bands = stages.best(
        "top-hat 0.1 deg, 10 bands",
        calls,
        lambda: stacked.gamma.excess_map(TOPHAT_BANDS_DEG, metric="pixel").compute(),
    )
    smoothed = stages.best("Gaussian 0.05 deg, 10 bands", calls, lambda: smooth(stacked))
    totals["10-band counts"] = float(stacked["counts"].where(stacked["mask_safe"]).sum())
    totals["10-band max significance"] = float(bands["significance"].max())
    totals["smoothed counts sum"] = float(smoothed["counts"].sum())
    totals["smoothed background max"] = float(smoothed["background"].max())

    per_run = stages.best(
        "top-hat 0.1 deg, 10 bands x 20 runs",
        calls,
        lambda: runs.gamma.excess_map(TOPHAT_BANDS_DEG, metric="pixel").compute(),
    )
    run_smoothed = stages.best("Gaussian 0.05 deg, 10 bands x 20 runs", calls, lambda: smooth(runs))
    peaks = per_run["significance"].max(["energy", "lat", "lon"])
    totals["per-run max significance sum"] = float(peaks.sum())
    totals["per-run smoothed counts sum"] = float(run_smoothed["counts"].sum())
    totals["per-run smoothed background sum"] = float(run_smoothed["background"].sum())
    return stages.result(totals)


def smooth(ds):
    """Counts and background of ``ds`` smoothed with the Gaussian, zero outside the map (one
    call for both; in memory, as ``ds`` is)."""
    return ds.gamma.smooth(
        GAUSS_SIGMA_DEG, "gauss", names=["counts", "background"], mode="constant", metric="pixel"
    )


WORKLOADS = {"crab": crab, "msh": msh}


def keep_best(best: dict, new: dict | None) -> dict:
    """Per workload and stage, the smaller of the seconds in ``best`` and ``new``."""
    for name, one in (new or {}).items():
        kept = best.setdefault(name, one)
        for key in ("seconds", "cpu"):
            for stage, seconds in one[key].items():
                kept[key][stage] = min(kept[key][stage], seconds)
    return best


def run_gammaxr(data_dir: Path, reference: Path, workloads: list[str], calls: int) -> dict:
    """One round of gammaxr's workloads. The round starts without the buffers that the
    rounds before it left for reuse (:mod:`gammaxr.memory`): its first correlation of a
    size is cold, as in a new process."""
    drop_kept_buffers()
    return {name: WORKLOADS[name](data_dir, reference, calls) for name in workloads}


def run_gammapy(
    python: str,
    data_dir: Path,
    reference: Path,
    workloads: list[str],
    repeat: int,
    calls: int,
    env: dict | None = None,
) -> dict | None:
    if not Path(python).exists():
        print(f"note: no Gammapy environment at {python}: Gammapy's column is left out")
        return None
    command = [
        python,
        str(HERE / "side_by_side_gammapy.py"),
        str(data_dir),
        "--reference",
        str(reference),
        "--repeat",
        str(repeat),
        "--calls",
        str(calls),
        "--workloads",
        ",".join(workloads),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print(f"note: Gammapy's run failed, its column is left out:\n{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio(theirs: float | None, ours: float) -> str:
    return f"{theirs / ours:>7.1f}x" if theirs is not None and ours > 0 else f"{'-':>8}"


def _seconds(value: float | None, width: int = 10) -> str:
    """Seconds to the ms above 0.1 s, to the 10 us below (the correlations take a few ms)."""
    if value is None:
        return f"{'-':>{width}}"
    return f"{value:>{width}.{3 if value >= 0.1 else 5}f}"


def format_table(ours: dict, theirs: dict | None) -> list[str]:
    """The stage table (wall and CPU seconds, Gammapy / gammaxr ratios) and the totals."""
    lines = [
        f"{'':<39}{'--------- wall s ---------':>28}{'---------- cpu s ---------':>28}",
        f"{'workload':<6} {'stage':<32}{'Gammapy':>10}{'gammaxr':>10}{'ratio':>8}"
        f"{'Gammapy':>10}{'gammaxr':>10}{'ratio':>8}",
    ]
    for workload, result in ours.items():
        gp = (theirs or {}).get(workload, {})
        rows = [
            (stage, result["seconds"][stage], result["cpu"][stage]) for stage in result["seconds"]
        ]
        if workload == "crab":
            rows.append(("all stages", sum(r[1] for r in rows), sum(r[2] for r in rows)))
        for stage, wall, cpu in rows:
            if stage == "all stages":
                gp_wall = sum(gp["seconds"].values()) if gp else None
                gp_cpu = sum(gp["cpu"].values()) if gp else None
            else:
                gp_wall = gp.get("seconds", {}).get(stage)
                gp_cpu = gp.get("cpu", {}).get(stage)
            lines.append(
                f"{workload:<6} {stage:<32}{_seconds(gp_wall)}{_seconds(wall)}"
                f"{_ratio(gp_wall, wall)}{_seconds(gp_cpu)}{_seconds(cpu)}{_ratio(gp_cpu, cpu)}"
            )
    lines += ["", f"{'workload':<6} {'total':<32}{'Gammapy':>16}{'gammaxr':>16}"]
    for workload, result in ours.items():
        gp = (theirs or {}).get(workload, {"totals": {}})["totals"]
        for name, value in result["totals"].items():
            other = gp.get(name)
            gp_col = f"{other:>16.7g}" if other is not None else f"{'-':>16}"
            lines.append(f"{workload:<6} {name:<32}{gp_col}{value:>16.7g}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, nargs="?", default=default_data_dir())
    parser.add_argument("--reference", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="best of N per stage")
    parser.add_argument("--calls", type=int, default=1, help="best of K calls in a row")
    parser.add_argument("--workloads", default="crab,msh")
    parser.add_argument("--gammapy-python", default="/work/gpvenv/bin/python")
    parser.add_argument("--scheduler", default="threads", help="dask scheduler of gammaxr")
    parser.add_argument("--no-gammapy", action="store_true", help="gammaxr's column only")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="both processes keep freed memory: keep_freed_memory() here, the same glibc "
        "thresholds in the environment of Gammapy's",
    )
    args = parser.parse_args()
    env = None
    if args.keep_freed_memory:
        keep_freed_memory()
        env = {**os.environ, **{k: str(v) for k, v in WORKER_MALLOC_ENV.items()}}
    reference = args.reference or args.data.parent / "reference"
    workloads = args.workloads.split(",")
    load_before = os.getloadavg()[0]
    # one round of each in turn, so that both see the same load; the best of the rounds
    ours: dict = {}
    theirs: dict | None = None if args.no_gammapy else {}
    for _ in range(args.repeat):
        with dask.config.set(scheduler=args.scheduler):
            keep_best(ours, run_gammaxr(args.data, reference, workloads, args.calls))
        if theirs is not None:
            one = run_gammapy(
                args.gammapy_python, args.data, reference, workloads, 1, args.calls, env
            )
            theirs = keep_best(theirs, one) if one is not None else None
    load_after = os.getloadavg()[0]
    allocator = "both keeping freed memory" if args.keep_freed_memory else "default allocator"
    print(
        f"gammaxr ({args.scheduler} scheduler) vs Gammapy 2.1 (one process; {allocator}), best of "
        f"{args.repeat} rounds ({args.calls} call(s) in a row of each correlation), wall seconds; load average {load_before:.1f} before, "
        f"{load_after:.1f} after, {os.cpu_count()} cores"
    )
    print("\n".join(format_table(ours, theirs)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
