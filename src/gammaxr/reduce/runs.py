"""Lazy reduction of many runs with dask: a task per run or batch, failures named by obs_id.

:func:`reduce_runs` builds a dataset with dim ``obs_id`` on one shared grid; every variable is
a dask array with one chunk per run (per batch of runs beyond 64 runs: :func:`runs_per_task`),
all chunks of a run coming from one task
(:func:`gammaxr.reduce.dataset.reduce_observation`). :func:`reduce_runs_tree` does the same for
runs that each have their own grid (centred on their pointing) and returns an
``xarray.DataTree`` with one node per run. Nothing is read or computed until asked.

With ``on_error="skip"`` a run that fails yields empty maps with ``mask_safe`` all false (so it
drops out of stacking) and its reason in the ``reduce_error`` variable; :func:`failed_runs`
lists them from the computed, persisted or stored result (never reducing the runs again). With ``on_error="raise"`` computing raises
:class:`RunReductionError` naming the run.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.blockwise import blockwise as blockwise_layer
from dask.highlevelgraph import HighLevelGraph

from gammaxr.reduce.dataset import (
    ReductionSpec,
    layout_bytes,
    reduce_observation_arrays,
    run_coords,
    run_grid,
    variable_layout,
)

__all__ = [
    "RunReductionError",
    "failed_runs",
    "lazy_run_variables",
    "stacked_run_variables",
    "reduce_runs",
    "reduce_runs_tree",
    "run_task",
    "runs_per_task",
]

ERROR_LENGTH = 300


class RunReductionError(RuntimeError):
    """Reducing one run failed; ``obs_id`` and ``reason`` say which and why."""

    def __init__(self, obs_id: int, reason: str):
        super().__init__(f"obs_id {obs_id}: reduction failed: {reason}")
        self.obs_id = obs_id
        self.reason = reason

    def __reduce__(self):
        # rebuilt from its two arguments when it crosses a process boundary (processes
        # scheduler, distributed workers), so the caller sees the run and reason, not a
        # TypeError from unpickling
        return (type(self), (self.obs_id, self.reason))


def run_task(compute: Callable[[Any], dict], observation, layout: dict, on_error: str) -> dict:
    """Run one run's computation with the failure policy of :func:`reduce_runs`.

    Parameters
    ----------
    compute : callable
        ``compute(observation) -> dict`` of numpy arrays laid out as ``layout``.
    observation : gammaxr.data.Observation
        The run.
    layout : dict
        name -> (dims, shape, dtype, attrs) of every variable ``compute`` returns.
    on_error : {"raise", "skip"}
        Raise :class:`RunReductionError` naming the run, or warn and return zeros (a
        ``mask_safe`` of zeros is all false) with the reason.

    Returns
    -------
    dict of str to numpy.ndarray
        The arrays plus ``reduce_error`` (shape (1,), empty string on success).
    """
    obs_id = int(observation.obs_id)
    try:
        arrays = compute(observation)
        arrays["reduce_error"] = np.array([""], dtype=f"<U{ERROR_LENGTH}")
        return arrays
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if on_error == "raise":
            raise RunReductionError(obs_id, reason) from exc
        warnings.warn(f"obs_id {obs_id} skipped: {reason}", RuntimeWarning, stacklevel=1)
        arrays = {n: np.zeros(shape, dtype) for n, (_, shape, dtype, _) in layout.items()}
        arrays["reduce_error"] = np.array([reason[:ERROR_LENGTH]], dtype=f"<U{ERROR_LENGTH}")
        return arrays


def _describe(compute: Callable) -> tuple:
    """What identifies a per-run computation for dask keys: the function and its arguments
    (hashing the arguments' values is much cheaper than pickling a ``functools.partial``)."""
    if isinstance(compute, partial):
        keywords = tuple(sorted(compute.keywords.items()))
        return (compute.func.__module__, compute.func.__qualname__, compute.args, keywords)
    return (compute,)


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def lazy_run_variables(
    observation,
    compute: Callable[[Any], dict],
    layout: dict,
    on_error: str,
    *,
    stacked: bool,
    task_name: str = "reduce-run",
    array_prefix: str = "",
) -> dict:
    """Lazy variables of one run, all computed by one dask task (:func:`run_task`).

    Parameters
    ----------
    observation : gammaxr.data.Observation
        The run.
    compute : callable
        ``compute(observation) -> dict`` of numpy arrays (must pickle for process schedulers).
    layout : dict
        name -> (dims, shape, dtype, attrs) of every variable ``compute`` returns.
    on_error : {"raise", "skip"}
        See :func:`run_task`.
    stacked : bool
        Prepend an ``obs_id`` dim of length one (for concatenation over runs).
    task_name, array_prefix : str
        Dask key of the task is ``{task_name}-{token}-{obs_id}``, of each array
        ``{array_prefix}{name}-{token}-{obs_id}``, where the token hashes ``compute``,
        ``layout``, ``on_error`` and the run's files.

    Returns
    -------
    dict
        name -> (dims, dask array, attrs), including the scalar ``reduce_error``.
    """
    obs_id = int(observation.obs_id)
    # keys carry a token of what is computed, so two specs of one run never clash
    token = dask.base.tokenize(
        _describe(compute), layout, on_error, getattr(observation, "files", None)
    )[:10]
    # a 0-d object "array" whose block is the run's dict of results, and one blockwise layer
    # per variable picking from it: dask fuses a pick with what consumes it (a masked sum,
    # a write), so a run costs the scheduler two or three tasks, not one per variable more.
    # The pick layers are made directly (dask.blockwise's layer, the graph, the array),
    # with names, metas and sizes given: dask.array.blockwise would normalise the chunks and
    # unify the indices again for every variable of every run (2x the time), map_blocks
    # would also inspect the function. The run task's arguments are bound in a partial
    # (blockwise would search the layout's nested tuples and dicts for dask collections).
    run = da.blockwise(
        partial(run_task, compute, observation, layout, on_error),
        (),
        dtype=object,
        meta=np.empty((), dtype=object),
        name=f"{task_name}-{token}-{obs_id}",
        concatenate=True,
    )
    layout = {**layout, "reduce_error": ((), (), np.dtype(f"<U{ERROR_LENGTH}"), {})}
    data_vars = {}
    for name, (dims, shape, dtype, attrs) in layout.items():
        shape = (1, *shape) if stacked else tuple(shape)
        key = f"{array_prefix}{name}-{token}-{obs_id}"
        layer = blockwise_layer(
            _pick_shaped,
            key,
            tuple(range(len(shape))),
            run.name,
            (),
            name,
            None,
            shape,
            None,
            numblocks={run.name: ()},
            new_axes=dict(enumerate(shape)),
            concatenate=True,
        )
        graph = HighLevelGraph.from_collections(key, layer, dependencies=[run])
        arr = da.Array(
            graph, key, tuple((n,) for n in shape), meta=np.empty((0,) * len(shape), dtype)
        )
        data_vars[name] = ((("obs_id",) if stacked else ()) + tuple(dims), arr, attrs)
    return data_vars


def _pick_shaped(results: dict, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One variable of one run's results, reshaped (``reduce_error`` is stored as (1,))."""
    return np.asarray(results[name]).reshape(shape)


#: :func:`runs_per_task` batches runs beyond this many tasks.
TARGET_TASKS = 64


def runs_per_task(n_runs: int, run_bytes: int, chunk_bytes: int | str | None = None) -> int:
    """How many runs one task reduces in :func:`stacked_run_variables` when not told.

    One run per task up to :data:`TARGET_TASKS` runs; beyond, runs are batched so there are
    about :data:`TARGET_TASKS` tasks (enough to keep a dozen workers busy and balanced; pass
    ``runs_per_task`` for more on a larger cluster), as long as a batch's arrays stay below
    ``chunk_bytes``. Every task costs about as much to schedule, whatever it does (a
    ``distributed`` scheduler and its workers 1-3 ms of CPU per task); a run of a few hundred
    events on a small grid takes 20-30 ms, so with one task per run, and the tasks that
    consume it, that overhead grows to a third of the work.

    Parameters
    ----------
    n_runs : int
        Number of runs.
    run_bytes : int
        Bytes of one run's arrays.
    chunk_bytes : int or str, optional
        Largest batch in bytes (``"128 MiB"`` ...); default dask's ``array.chunk-size``.

    Returns
    -------
    int
        Runs per task, at least 1.
    """
    if chunk_bytes is None:
        chunk_bytes = dask.config.get("array.chunk-size")
    if isinstance(chunk_bytes, str):
        chunk_bytes = dask.utils.parse_bytes(chunk_bytes)
    by_count = -(-n_runs // TARGET_TASKS)
    by_memory = max(1, int(chunk_bytes) // max(1, int(run_bytes)))
    return max(1, min(by_count, by_memory))


def _run_block(observations: np.ndarray, compute, layout: dict, on_error: str) -> dict:
    """The task of a batch of runs in :func:`stacked_run_variables`.

    Returns a dict name -> array with a leading run dim (the runs' results stacked), not an
    object array holding the results: ``distributed`` sizes a task's result with
    ``dask.sizeof``, which counts an object array as 8 bytes per element, so the scheduler
    took the results (about 0.3 MB a run in ``benchmarks/scaling.py``) for free to move and
    ran the tasks that pick variables out of them on either worker.
    """
    n = len(observations)
    out = {name: np.empty((n, *shape), dtype) for name, (_, shape, dtype, _) in layout.items()}
    out["reduce_error"] = np.empty((n, 1), dtype=f"<U{ERROR_LENGTH}")
    for index, observation in enumerate(observations):  # filled in place: one copy in memory
        for name, values in run_task(compute, observation, layout, on_error).items():
            out[name][index] = values
    return out


def _pick(results: dict, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One variable of a batch's results: shape ``(runs, *shape)``."""
    values = np.asarray(results[name])
    return values.reshape(values.shape[0], *shape)


def stacked_run_variables(
    observations: Sequence,
    compute: Callable[[Any], dict],
    layout: dict,
    on_error: str,
    *,
    task_name: str = "reduce-run",
    array_prefix: str = "",
    batch: int | None = None,
) -> dict:
    """Lazy variables of many runs (dim ``obs_id`` first), one dask task per batch of runs.

    Built with blockwise layers (``map_blocks``) instead of per-run Python objects, so
    building it costs a few microseconds per run whatever the number of runs: the runs are
    one object array chunked by batch, the batch tasks are one layer over it, and each
    variable is one more layer picking its array out of the batches' results (every variable
    of a batch comes from the same task, computed once).

    Parameters
    ----------
    observations : sequence of gammaxr.data.Observation
        The runs, in ``obs_id`` order of the result.
    compute : callable
        ``compute(observation) -> dict`` of numpy arrays, the same for every run (must
        pickle for process schedulers).
    layout : dict
        name -> (dims, shape, dtype, attrs) of every variable ``compute`` returns.
    on_error : {"raise", "skip"}
        See :func:`run_task` (applied run by run: a failed run does not fail its batch
        under ``"skip"``).
    task_name, array_prefix : str
        Name of the batch tasks' layer ``{task_name}-{token}``, of each variable
        ``{array_prefix}{name}-{token}``; the token hashes ``compute``, ``layout``,
        ``on_error``, the batching and the runs' files.
    batch : int, optional
        Runs per task (and per chunk along ``obs_id``); default :func:`runs_per_task`.

    Returns
    -------
    dict
        name -> ``(("obs_id", *dims), dask array with one chunk per batch, attrs)``,
        including ``reduce_error`` (dim ``obs_id``).
    """
    if batch is None:
        batch = runs_per_task(len(observations), layout_bytes(layout))
    if int(batch) < 1:
        raise ValueError(f"runs per task must be at least 1, got {batch!r}")
    batch = int(batch)
    files = [getattr(o, "files", None) for o in observations]
    token = dask.base.tokenize(_describe(compute), layout, on_error, batch, files)[:10]
    held = np.empty(len(observations), dtype=object)
    for index, observation in enumerate(observations):
        held[index] = observation
    runs = da.from_array(held, chunks=batch, name=f"runs-{token}", asarray=False)
    results = runs.map_blocks(
        _run_block,
        compute,
        layout,
        on_error,
        dtype=object,
        meta=np.empty(0, dtype=object),
        name=f"{task_name}-{token}",
    )
    layout = {**layout, "reduce_error": ((), (), np.dtype(f"<U{ERROR_LENGTH}"), {})}
    data_vars = {}
    for name, (dims, shape, dtype, attrs) in layout.items():
        arr = results.map_blocks(
            _pick,
            name,
            shape,
            dtype=dtype,
            chunks=(results.chunks[0], *((n,) for n in shape)),
            new_axis=list(range(1, 1 + len(shape))),
            meta=np.empty((0,) * (1 + len(shape)), dtype=dtype),
            name=f"{array_prefix}{name}-{token}",
        )
        data_vars[name] = (("obs_id", *dims), arr, attrs)
    return data_vars


def _lazy_run_dataset(observation, spec: ReductionSpec, grid, on_error: str, *, stacked: bool):
    """Lazy arrays of one run: a dict name -> (dims, dask array), plus coords."""
    return lazy_run_variables(
        observation,
        partial(reduce_observation_arrays, spec=spec, grid=grid),
        variable_layout(spec, grid),
        on_error,
        stacked=stacked,
    )


def reduce_runs(
    observations: Sequence,
    spec: ReductionSpec,
    *,
    on_error: str = "raise",
    runs_per_task: int | None = None,
) -> xr.Dataset:
    """Reduce many runs onto one shared grid, lazily.

    Parameters
    ----------
    observations : sequence of gammaxr.data.Observation
        The runs; only their metadata (obs_id, pointing, livetime, ...) is read now.
    spec : ReductionSpec
        Grid, energy axes, safe-mask methods and which maps to make; must have a fixed grid.
    on_error : {"raise", "skip"}
        What computing does with a run that fails: raise :class:`RunReductionError`, or keep
        going and record the reason in ``reduce_error(obs_id)``.
    runs_per_task : int, optional
        Runs reduced by one dask task (one chunk along ``obs_id``). Default
        :func:`runs_per_task`: one run per task up to 64 runs, batches beyond (about 64
        tasks, each below dask's ``array.chunk-size``), so the scheduler's cost per task
        stays small against the work when there are thousands of small runs. Pass 1 for a
        task per run, or more tasks on a large cluster.

    Returns
    -------
    xarray.Dataset
        Dims ``obs_id`` (one dask chunk per task: per run up to 64 runs), ``energy``, ``energy_true``, ``lat``,
        ``lon`` (and ``rad``, ``lat_irf``, ``lon_irf`` for PSF/edisp maps); per-run
        coordinates along ``obs_id`` (livetime, ontime, pointing, zenith, tstart, tstop).
    """
    _check_on_error(on_error)
    if spec.grid is None:
        raise ValueError("reduce_runs needs a shared grid (spec.grid); use reduce_runs_tree")
    if len(observations) == 0:
        raise ValueError("no observations to reduce")
    grid = spec.grid
    data_vars = stacked_run_variables(
        observations,
        partial(reduce_observation_arrays, spec=spec, grid=grid),
        variable_layout(spec, grid),
        on_error,
        batch=runs_per_task,
    )
    coords = run_coords(observations).coords
    ds = xr.Dataset(data_vars, coords={**spec.coords(grid), **coords})
    return ds.assign_attrs(spec.attrs(grid))


def reduce_runs_tree(observations: Sequence, spec: ReductionSpec, *, on_error: str = "raise"):
    """Reduce each run onto its own grid (centred on its pointing), lazily.

    Parameters
    ----------
    observations : sequence of gammaxr.data.Observation
        The runs.
    spec : ReductionSpec
        Energy axes, safe masks, and the per-run grid size (``width``, ``binsz``, ``frame``);
        ``spec.grid`` must be None.
    on_error : {"raise", "skip"}
        See :func:`reduce_runs`.

    Returns
    -------
    xarray.DataTree
        One child node per run, named ``obs_<obs_id>``, each a lazy dataset as in
        :func:`reduce_runs` without the ``obs_id`` dim (its metadata in attrs).
    """
    _check_on_error(on_error)
    metadata = {k: v.values for k, v in run_coords(observations).coords.items()}
    # the energy and rad axes are the same for every run: their indexes are made once and
    # shared (immutable), each run getting its own coordinate variables (0.86 against
    # 0.35 ms a run for its Dataset)
    axes = xr.Coordinates(spec.axes_coords())
    children = {}
    for index, obs in enumerate(observations):
        grid = run_grid(spec, obs)
        data_vars = _lazy_run_dataset(obs, spec, grid, on_error, stacked=False)
        attrs = {**spec.attrs(grid)}
        attrs.update({k: _attr_value(v[index]) for k, v in metadata.items()})
        own = xr.Coordinates(spec.grid_coords(grid))
        coords = xr.Coordinates(
            {
                **own.variables,
                **{name: variable.copy(deep=False) for name, variable in axes.variables.items()},
            },
            indexes={**own.xindexes, **axes.xindexes},
        )
        dataset = xr.Dataset(data_vars, coords=coords, attrs=attrs)
        children[f"obs_{int(obs.obs_id)}"] = xr.DataTree(dataset)
    # the same tree as DataTree.from_dict, which also parses paths and copies every node
    # once more (0.58 against 0.33 ms a run)
    tree = xr.DataTree()
    tree.children = children
    return tree


def _attr_value(value):
    value = value.item() if hasattr(value, "item") else value
    return value.decode() if isinstance(value, bytes) else value


def _materialised(arr) -> bool:
    """True if a dask array's chunks are all in memory (computed or persisted): no task left."""
    return not any(dask.core.istask(v) for v in dict(arr.__dask_graph__()).values())


def failed_runs(ds: xr.Dataset, *, compute: bool = False) -> dict[int, str]:
    """The runs that were skipped and why, read from a computed, persisted or stored result.

    Nothing is reduced again: the reasons come from the ``reduce_error`` variable of a
    computed or persisted per-run dataset (:func:`reduce_runs` with ``on_error="skip"``), or
    from the ``skipped_obs_ids``/``skipped_reasons`` attrs of a stacked dataset (e.g. one
    opened with :func:`gammaxr.open_dataset`; there they also list runs left out for other
    reasons, such as an empty safe mask or a failed background fit).

    Parameters
    ----------
    ds : xarray.Dataset
        A per-run result of :func:`reduce_runs` (computed or persisted), or a stacked dataset.
    compute : bool
        If the per-run ``reduce_error`` is still lazy: False (default) raises, True computes
        it, which **reduces every run** (in full) just to read the error strings.

    Returns
    -------
    dict of int to str
        obs_id -> reason, for each run whose reduction failed (or was left out of a stack).

    Raises
    ------
    ValueError
        If ``reduce_error`` is lazy and ``compute`` is False, or ``ds`` records no run status.
    """
    if "reduce_error" not in ds:
        if "skipped_obs_ids" in ds.attrs:
            ids, reasons = ds.attrs["skipped_obs_ids"], ds.attrs.get("skipped_reasons", [])
            return {int(i): str(r) for i, r in zip(ids, reasons, strict=True)}
        raise ValueError(
            "the dataset has neither a 'reduce_error' variable nor 'skipped_obs_ids' attrs "
            "(a lazy stack records them once computed or written: see gammaxr.io.run_status)"
        )
    errors = ds["reduce_error"]
    if errors.chunks is not None and not _materialised(errors.data) and not compute:
        raise ValueError(
            "reduce_error is still lazy: reading it would reduce every run in full. Call "
            "failed_runs on the computed or persisted dataset (ds.persist(), then use that "
            "for everything else too), on the stored stack, or pass compute=True"
        )
    values = errors.values
    return {int(i): str(e) for i, e in zip(ds["obs_id"].values, values, strict=True) if e}
