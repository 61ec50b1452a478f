"""Per-stage timers for the per-run reduction (used by ``reduce_all_runs.py`` and ``scaling.py``).

:func:`install` wraps the per-run task (:func:`gammaxr.reduce.runs.run_task`) and the
stage functions that :func:`gammaxr.reduce.dataset.reduce_observation_arrays` calls (looked
up in their modules' globals at call time, so wrapping the module attribute is enough) with
timers that add up, per stage, the wall and thread CPU seconds spent inside them,
*exclusive* of nested timed stages (``safe masks`` does not count the exposure it computes
on the IRF grid, which counts as ``exposure``). With several threads the sums are
worker-seconds: compare them with ``workers x compute wall``; what is left is time outside
the run tasks (scheduling, the final sums, idle workers).

Install before building the graph (its tasks hold the function they call, ``run_task``) and
again just before computing (that zeroes the totals, e.g. of the headers read while
building the graph). Under ``distributed`` the tasks are pickled by name and resolved in
the workers: install there with ``client.run(install)``, read back with
``client.run(collect)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import wraps

__all__ = ["STAGES", "collect", "format_profile", "install", "merge", "uninstall"]

# (stage label, module, function name): the calls of one run's reduction
STAGES = (
    ("read (FITS -> xarray)", "gammaxr.data.observation", "read_observations"),
    ("validate", "gammaxr.reduce.dataset", "validate_observation"),
    ("counts", "gammaxr.reduce.dataset", "run_events"),
    ("counts", "gammaxr.reduce.dataset", "counts_cube"),
    ("exposure", "gammaxr.reduce.dataset", "exposure_cube"),
    ("background", "gammaxr.reduce.dataset", "fill_missing_along_energy"),
    ("background", "gammaxr.reduce.dataset", "background_cube"),
    ("psf map", "gammaxr.reduce.dataset", "psf_cube"),
    ("edisp map", "gammaxr.reduce.dataset", "edisp_kernel_cube"),
    ("safe masks", "gammaxr.reduce.dataset", "safe_energy_inputs"),
    ("safe masks", "gammaxr.reduce.dataset", "safe_energy_range"),
    ("safe masks", "gammaxr.reduce.dataset", "safe_mask"),
    ("rest of the run task", "gammaxr.reduce.dataset", "irf_maps"),
    ("rest of the run task", "gammaxr.reduce.runs", "run_task"),
)
TASK_STAGE = "rest of the run task"

_lock = threading.Lock()
_local = threading.local()
_totals: dict[str, list[float]] = {}  # stage -> [calls, wall s, cpu s] (exclusive)
_originals: dict[tuple[str, str], Callable] = {}
_run_tasks = [0.0]  # inclusive wall seconds of the run tasks (run_task)


def _timed(stage: str, func: Callable, outermost: bool) -> Callable:
    @wraps(func)
    def timed(*args, **kwargs):
        stack = getattr(_local, "stack", None)
        if stack is None:
            stack = _local.stack = []
        stack.append([0.0, 0.0])  # wall, cpu spent in nested timed stages
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
            nested_wall, nested_cpu = stack.pop()
            if stack:
                stack[-1][0] += wall
                stack[-1][1] += cpu
            with _lock:
                row = _totals.setdefault(stage, [0, 0.0, 0.0])
                row[0] += 1
                row[1] += wall - nested_wall
                row[2] += cpu - nested_cpu
                if outermost:
                    _run_tasks[0] += wall

    return timed


def install() -> None:
    """Wrap the stage functions with timers (idempotent) and zero the totals."""
    import importlib

    with _lock:
        _totals.clear()
        _run_tasks[0] = 0.0
    for stage, module_name, name in STAGES:
        module = importlib.import_module(module_name)
        if (module_name, name) in _originals:
            continue
        func = getattr(module, name)
        _originals[module_name, name] = func
        setattr(module, name, _timed(stage, func, name == "run_task"))


def uninstall() -> None:
    """Put the original functions back."""
    import importlib

    for (module_name, name), func in _originals.items():
        setattr(importlib.import_module(module_name), name, func)
    _originals.clear()


def collect() -> dict:
    """The totals so far: ``{"stages": {stage: [calls, wall s, cpu s]}, "run_tasks": s}``."""
    with _lock:
        return {"stages": {k: list(v) for k, v in _totals.items()}, "run_tasks": _run_tasks[0]}


def merge(profiles: list[dict]) -> dict:
    """Sum the :func:`collect` results of several processes."""
    out: dict = {"stages": {}, "run_tasks": 0.0}
    for profile in profiles:
        out["run_tasks"] += profile["run_tasks"]
        for stage, row in profile["stages"].items():
            total = out["stages"].setdefault(stage, [0, 0.0, 0.0])
            for i, value in enumerate(row):
                total[i] += value
    return out


def format_profile(profile: dict, compute_wall: float, workers: int, n_runs: int) -> list[str]:
    """Lines of the stage table: worker-seconds, share, ms per run, CPU share per stage.

    ``compute_wall`` (s) times ``workers`` is the worker time available; what the run tasks
    did not use of it is printed as ``outside run tasks`` (scheduler, the final sums, idle).
    """
    available = compute_wall * workers
    order = list(dict.fromkeys(stage for stage, _, _ in STAGES))
    lines = [
        f"per-stage profile ({workers} workers x {compute_wall:.2f} s = {available:.2f} "
        "worker-s; exclusive times; cpu = thread CPU / wall)",
        f"  {'stage':<24}{'worker-s':>10}{'share':>8}{'ms/run':>9}{'cpu':>7}",
    ]
    for stage in order:
        calls, wall, cpu = profile["stages"].get(stage, [0, 0.0, 0.0])
        if not calls and not wall:
            continue
        lines.append(
            f"  {stage:<24}{wall:>10.2f}{100 * wall / available:>7.1f}%"
            f"{1e3 * wall / n_runs:>9.1f}{100 * cpu / wall if wall else 0:>6.0f}%"
        )
    outside = available - profile["run_tasks"]
    lines.append(
        f"  {'outside run tasks':<24}{outside:>10.2f}{100 * outside / available:>7.1f}%"
        f"{1e3 * outside / n_runs:>9.1f}"
    )
    return lines
