"""Survey mosaics: many runs added into one large zarr-backed grid, a few chunks at a time.

For a grid much larger than one run's field of view (a survey, the whole sky), stacking with
:func:`gammaxr.reduce.stack.stack_runs` would hold every run on the whole grid. Here instead:

1. :func:`create_mosaic_store` writes an empty zarr store for the parent grid: the variables,
   coordinates and attrs of a stacked dataset, spatially chunked, zero by the zarr
   ``fill_value`` (only metadata is written; chunks appear as runs land in them).
2. :func:`add_runs_to_mosaic` reduces each run on its own cutout of the parent grid
   (:func:`gammaxr.geom.placement.place_cutout`: radius ``offset_max`` plus one pixel, an
   exact sub-grid), one band of chunk columns at a time (:mod:`gammaxr.reduce.mosaic_run`),
   applies the stacking rules of :func:`~gammaxr.reduce.stack.stack_runs` and adds the
   result into the zarr chunks it overlaps (read the chunk, add, write it whole; exactly once,
   below). One dask task per run, or per batch of runs beyond 64 runs (each chunk is then
   read and written once per batch, for all its runs that reach it); memory stays bounded by
   a batch of cutouts and one chunk per task, whatever the size of the parent grid.

The store then equals ``stack_runs(reduce_runs(runs, spec))`` on the parent grid (up to
float32 rounding of the order of additions) and opens lazily with
:func:`gammaxr.open_dataset`.

Exactly once, crash-safe, concurrent
------------------------------------
Each run is added under its own lock, one piece of its cutout per zarr chunk (a "part"),
with the parts of the other runs of its batch in that chunk, under the chunk's ("block's")
lock, through the store's ledger (:mod:`gammaxr.io.mosaic_ledger`): a part's new values
reach zarr through the block's journal and a marker records that the part holds the run, so
a chunk is always either before or after a part, never half-way, and the cost of a part does
not grow with the runs the chunk already holds. A run is in the mosaic once all its parts
hold it and its record says complete; ``gammaxr.open_dataset`` reads ``stacked_obs_ids``,
``livetime_total``, ``ontime_total`` and ``skipped_obs_ids``/``skipped_reasons`` from those
records, and refuses a store with a run half added. Calling :func:`add_runs_to_mosaic` again
with the same runs after any interruption finishes what is missing and skips what is
complete; calls running at the same time in several processes or dask workers (with the same
or overlapping runs) count every run once. Locks are POSIX ``flock`` files inside the store:
they serialise threads and processes of one machine (and of machines sharing a file system
whose ``flock`` works), and a killed process releases them. The zarr side (empty store,
chunking, recorded spec) is in :mod:`gammaxr.io.mosaic_store`.

Conventions and limits
----------------------
- The spec must use the ``"offset-max"`` safe mask: it bounds each run's footprint, hence its
  cutout.
- On a parent that covers the full 360 deg of longitude, a run across the lon seam is reduced
  on one continuous cutout and written into both ends of the grid.
- A run whose cutout misses the parent grid is skipped (whatever ``on_error``) and recorded
  as skipped with the reason, as are failed runs with ``on_error="skip"``. A run already in
  the store is not added again (reported in :attr:`MosaicResult.present`).
- PSF and energy-dispersion maps are kept as the running exposure-weighted average, with
  ``exposure_irf`` the sum of the weights, as :func:`~gammaxr.reduce.stack.stack_runs` makes
  them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import NamedTuple

import dask
import dask.array as da
import numpy as np
import xarray as xr

from gammaxr.geom.grid import SkyGrid
from gammaxr.geom.placement import ChunkPart, chunk_parts
from gammaxr.io.atomic import writable
from gammaxr.io.chunk_files import ChunkFiles
from gammaxr.io.mosaic_ledger import MosaicLedger, PartWrite, region_index
from gammaxr.io.mosaic_store import (
    SPEC_ATTR,
    mosaic_record,
    open_mosaic_group,
    spatial_chunks,
    write_empty_mosaic,
)
from gammaxr.io.zarr_store import open_dataset
from gammaxr.progress import compute
from gammaxr.reduce.cluster import scheduler_context
from gammaxr.reduce.dataset import ReductionSpec, layout_bytes, variable_layout
from gammaxr.reduce.mosaic_run import IRF_MAPS, OutsideGridError, RunCutout
from gammaxr.reduce.runs import RunReductionError
from gammaxr.reduce.runs import runs_per_task as default_runs_per_task

__all__ = [
    "MosaicResult",
    "add_runs_to_mosaic",
    "create_mosaic_store",
    "mosaic_skipped_runs",
    "mosaic_spec",
]

#: Default spatial chunk edge (pixels) of the parent grid.
DEFAULT_CHUNK = 256

#: Most runs one task adds by default: a task holds each run's lock (an open file) until its
#: batch is added, so a worker of 32 threads holds at most 512 of them, below the usual limit
#: of 1,024 open files a process. 16 runs already share each chunk write 16 ways (32 measured
#: no faster on 10,000 toy runs).
MAX_RUNS_PER_TASK = 16

_FINE = ("lat", "lon")
_IRF = ("lat_irf", "lon_irf")


class MosaicResult(NamedTuple):
    """What one :func:`add_runs_to_mosaic` call did."""

    added: tuple[int, ...]
    """obs_ids added into the store (by this call)."""
    skipped: dict[int, str]
    """obs_id -> reason, for runs outside the grid or failed (``on_error="skip"``)."""
    present: tuple[int, ...] = ()
    """obs_ids the store already held completely (not added again)."""
    seconds: Mapping[int, float] = MappingProxyType({})
    """obs_id -> wall time in s spent on each added run: reading, reducing and adding it,
    waits for chunk locks included; in a batch, its reading and reducing plus an equal
    share of the batch's additions."""
    sums: Mapping[int, Mapping[str, float]] = MappingProxyType({})
    """obs_id -> ``{"counts": ..., "background": ...}``: what each added run put into the
    store, summed (its safe counts and background on its cutout)."""
    runs_per_task: int = 1
    """Runs added by one dask task (the batch size used)."""


# ----------------------------------------------------------------------------------------------
# the store
# ----------------------------------------------------------------------------------------------


def _spec_record(spec: ReductionSpec) -> str:
    """The spec without its grid, as a JSON string (the grid is in the store's coordinates)."""
    record = {f.name: getattr(spec, f.name) for f in fields(spec) if f.name != "grid"}
    return json.dumps(record, sort_keys=True)


def _check_spec(spec: ReductionSpec) -> SkyGrid:
    if spec.grid is None:
        raise ValueError("a mosaic needs the parent grid in spec.grid")
    if "offset-max" not in spec.safe_mask:
        raise ValueError(
            "a mosaic needs the 'offset-max' safe mask: each run is reduced on a cutout of "
            "radius offset_max around its pointing"
        )
    return spec.grid


def _chunk_sizes(spec: ReductionSpec, chunks: int | dict[str, int]) -> dict[str, int]:
    sizes = dict(chunks) if isinstance(chunks, dict) else {"lat": chunks, "lon": chunks}
    for dim in _FINE:
        sizes.setdefault(dim, DEFAULT_CHUNK)
    # IRF-grid chunks cover about the sky area of a fine chunk
    ratio = spec.grid.lat_step / spec.irf_binsz
    for fine, irf in zip(_FINE, _IRF, strict=True):
        sizes.setdefault(irf, max(8, round(sizes[fine] * ratio)))
    bad = {k: v for k, v in sizes.items() if int(v) != v or v < 1}
    if bad:
        raise ValueError(f"chunk sizes must be positive integers, got {bad}")
    return {k: int(v) for k, v in sizes.items()}


def create_mosaic_store(
    path: str | os.PathLike,
    spec: ReductionSpec,
    *,
    chunks: int | dict[str, int] = DEFAULT_CHUNK,
    mode: str = "w-",
) -> xr.Dataset:
    """Write an empty (all-zero) mosaic store for the parent grid ``spec.grid``.

    Only metadata and coordinates are written: the data chunks are absent and read as zero
    (``False`` for ``mask_safe``) through the zarr ``fill_value``, so a whole-sky store costs
    nothing until runs are added.

    Parameters
    ----------
    path : str or path-like
        Directory of the zarr store (local file system).
    spec : ReductionSpec
        Energy axes, maps and safe masks; ``spec.grid`` is the parent grid and
        ``spec.safe_mask`` must include ``"offset-max"``.
    chunks : int or dict of str to int
        Spatial chunk edge in pixels of the parent grid (``lat``, ``lon``), or a mapping that
        may also set ``lat_irf``/``lon_irf`` (default: about the same sky area as a fine
        chunk). Other dims are whole.
    mode : {"w-", "w"}
        ``"w-"`` fails if the store exists, ``"w"`` overwrites it.

    Returns
    -------
    xarray.Dataset
        The store opened lazily: dims ``energy``, ``energy_true``, ``lat``, ``lon`` (and
        ``lat_irf``, ``lon_irf``, ``rad``); variables ``counts``, ``background`` (energy,
        lat, lon), ``exposure`` (energy_true, lat, lon) [m2 s], ``mask_safe`` (and
        ``exposure_irf``, ``psf``, ``edisp``) as :func:`~gammaxr.reduce.stack.stack_runs`
        makes them; attrs ``stacked_obs_ids`` (empty), ``livetime_total``,
        ``ontime_total``, ``skipped_obs_ids``, ``skipped_reasons`` and ``mosaic_spec``.
    """
    parent = _check_spec(spec)
    if mode not in ("w-", "w"):
        raise ValueError(f"mode must be 'w-' or 'w', got {mode!r}")
    data_vars = {
        # one (never computed) dask chunk per variable keeps the graph tiny for any grid
        name: (dims, da.zeros(shape, dtype=dtype, chunks=shape), attrs)
        for name, (dims, shape, dtype, attrs) in variable_layout(spec, parent).items()
    }
    attrs = {**spec.attrs(parent), SPEC_ATTR: _spec_record(spec)}
    ds = xr.Dataset(data_vars, coords=spec.coords(parent), attrs=attrs)
    write_empty_mosaic(ds, path, _chunk_sizes(spec, chunks), mode=mode)
    return open_dataset(path)


def mosaic_spec(path: str | os.PathLike) -> ReductionSpec:
    """The reduction spec a mosaic store was made with (parent grid included).

    Parameters
    ----------
    path : str or path-like
        A store made by :func:`create_mosaic_store`.

    Returns
    -------
    ReductionSpec
    """
    record, lon, lat, frame = mosaic_record(path)
    values = json.loads(record)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return ReductionSpec(grid=SkyGrid(lon, lat, frame), **values)


def mosaic_skipped_runs(store: str | os.PathLike | xr.Dataset) -> dict[int, str]:
    """Runs a mosaic skipped and why (from its ledger, or the opened dataset's attrs).

    Parameters
    ----------
    store : str, path-like or xarray.Dataset
        A mosaic store, or the dataset opened from it.

    Returns
    -------
    dict of int to str
        obs_id -> reason.
    """
    if isinstance(store, xr.Dataset):
        attrs = store.attrs
    else:
        open_mosaic_group(store)
        attrs = MosaicLedger(store).summary()
    ids, reasons = attrs.get("skipped_obs_ids", []), attrs.get("skipped_reasons", [])
    return {int(i): str(r) for i, r in zip(ids, reasons, strict=True)}


# ----------------------------------------------------------------------------------------------
# adding one run into the store, part by part (see gammaxr.io.mosaic_ledger)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """What every task needs to know about the store (small, pickled into each task)."""

    path: str
    irf_parent: SkyGrid | None
    radius: float
    chunks: tuple[int, int]
    irf_chunks: tuple[int, int] | None
    chunk_files: Mapping[str, ChunkFiles | None]
    """The direct chunk I/O of every variable (see :meth:`MosaicLedger.chunk_files`)."""


def _chunk_bounds(chunk: tuple[int, int], chunks: tuple[int, int], shape: tuple[int, int]):
    """Parent pixels (row start, row stop, column start, column stop) of chunk ``chunk``
    (row, column index) of a grid of ``shape`` pixels cut in ``chunks``."""
    (i, j), (ch_r, ch_c) = chunk, chunks
    return (i * ch_r, min((i + 1) * ch_r, shape[0]), j * ch_c, min((j + 1) * ch_c, shape[1]))


def _sum_fine(values: dict, region: tuple, parts: list) -> None:
    """Add each part's summed maps (and OR its ``mask_safe``) into ``values`` (the store's
    fine maps over ``region``)."""
    for part, run in parts:
        at = region_index(part.bounds, region)
        for name, add in run.items():
            old = values[name][at]
            values[name][at] = (old | add) if name == "mask_safe" else old + add


def _sum_irf(values: dict, region: tuple, parts: list) -> None:
    """Add each part's ``exposure_irf`` (summed) and ``psf``/``edisp`` (exposure-weighted
    averages, one run after the other) into ``values`` (the store's IRF maps over
    ``region``)."""
    for part, run in parts:
        at = region_index(part.bounds, region)
        w_run = np.asarray(run["exposure_irf"], dtype=float)
        w_old = np.asarray(values["exposure_irf"][at], dtype=float)
        w_new = w_old + w_run
        for name in IRF_MAPS:
            if name not in run:
                continue
            # psf (energy_true, rad, ...) and edisp (energy_true, energy, ...): weights on axis 0
            num = values[name][at] * w_old[:, None] + run[name] * w_run[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                values[name][at] = np.where(w_new[:, None] > 0, num / w_new[:, None], 0)
        values["exposure_irf"][at] = w_new


def _band_parts(bands, chunks: tuple[int, int]) -> Iterator[list[tuple[ChunkPart, dict]]]:
    """Per band, its pieces in the parent's chunks, each with what the run adds there: the
    variables where it adds something (fine maps), or all of them where the run has weight
    (IRF maps); pieces where it adds nothing are left out."""
    for band, arrays in bands:
        parts = []
        for part in chunk_parts(band, chunks):
            run = {n: v[..., part.cut_rows, part.cut_cols] for n, v in arrays.items()}
            if "exposure_irf" in run:  # IRF maps: only where the run has weight
                run = run if run["exposure_irf"].any() else {}
            else:  # fine maps: the variables where the run adds something
                run = {n: v for n, v in run.items() if v.any()}
            if run:
                parts.append((part, run))
        yield parts


def _add_parts(ledger, grid: str, parts: list, chunks, shape, sum_into) -> None:
    """Add the parts (obs_id, ChunkPart, arrays) of a batch's runs that the store does not
    hold yet: one transaction per chunk ("block"), under its lock (see
    :meth:`MosaicLedger.commit`), for all the runs that reach it."""
    by_chunk: dict[tuple[int, int], list] = {}
    for obs_id, part, run in parts:
        by_chunk.setdefault(part.chunk, []).append((obs_id, part, run))
    for chunk in sorted(by_chunk):
        block = f"{grid}-{chunk[0]}-{chunk[1]}"
        with ledger.blocks([block]):
            todo = [
                (obs_id, part, run)
                for obs_id, part, run in by_chunk[chunk]
                if not ledger.holds(obs_id, f"{grid}-{part.key}")
            ]
            if not todo:
                continue
            region = _chunk_bounds(chunk, chunks, shape)
            names = sorted({name for _, _, run in todo for name in run})
            values = {name: ledger.read(name, region) for name in names}
            sum_into(values, region, [(part, run) for _, part, run in todo])
            writes = [
                PartWrite(obs_id, block, f"{grid}-{part.key}", part.bounds, tuple(run))
                for obs_id, part, run in todo
            ]
            ledger.commit(writes, region, values)


@dataclass
class _ReducedRun:
    """A run of a batch reduced on its cutout, waiting to be added."""

    obs_id: int
    times: dict
    """``livetime`` and ``ontime`` [s]."""
    sums: dict
    """Its safe counts and background, summed (complete once its fine bands are made)."""
    bands: dict
    """``"fine"`` / ``"irf"`` -> its bands' (ChunkPart, arrays) pieces (see
    :func:`_band_parts`): a list when ``whole``, else made band by band as they are added."""
    whole: bool
    """Whether its bands were made before anything is added (a run of a batch), rather than
    as they are added (a run alone in its task)."""
    seconds: float
    """Wall time spent reading and reducing it [s]."""


def _status(obs_id: int, status: str, reason: str = "", seconds: float = 0.0, **more) -> dict:
    return {"obs_id": obs_id, "status": status, "reason": reason, "seconds": seconds, **more}


def _reduce_run(ledger, observation, spec: ReductionSpec, plan: _Plan, on_error: str, alone: bool):
    """Read run ``observation`` and reduce it on its cutout (call holding its run lock):
    a :class:`_ReducedRun`, or the status dict of a run present, skipped or failed (nothing
    of it written to the store but its record). A run ``alone`` in its batch is reduced band
    by band as it is added (its memory one band, whatever its cutout); the runs of a larger
    batch here, whole (their cutouts are small: :func:`_cutout_bytes`)."""
    start = time.perf_counter()
    obs_id = int(observation.obs_id)
    record = ledger.run_record(obs_id)
    if record is not None and record["state"] == "complete":
        return _status(obs_id, "present")
    try:
        cutout = RunCutout(observation, spec, plan.irf_parent, plan.radius)
        times = {"livetime": float(observation.livetime), "ontime": float(observation.ontime)}
    except OutsideGridError as exc:
        ledger.write_run(obs_id, "skipped", reason=str(exc))
        return _status(obs_id, "skipped", str(exc))
    except Exception as exc:
        return _failed(ledger, obs_id, f"{type(exc).__name__}: {exc}", on_error)
    sums = dict.fromkeys(("counts", "background"), 0.0)
    bands = {"fine": _band_parts(_tally(cutout.fine_bands(plan.chunks), sums), plan.chunks)}
    if cutout.irf is not None:  # made after the fine bands: they give the footprint
        bands["irf"] = _band_parts(cutout.irf_bands(plan.irf_chunks), plan.irf_chunks)
    if not alone:
        try:
            bands = {grid: list(made) for grid, made in bands.items()}
        except Exception as exc:
            return _failed(ledger, obs_id, f"{type(exc).__name__}: {exc}", on_error)
    return _ReducedRun(obs_id, times, sums, bands, not alone, time.perf_counter() - start)


def _add_reduced(ledger, runs: list[_ReducedRun], spec: ReductionSpec, plan: _Plan) -> list:
    """Add a batch's reduced runs into the store (holding their run locks), chunk by chunk
    (all the runs' pieces in a chunk at once; a run alone band by band), then mark each
    complete; their status dicts."""
    start = time.perf_counter()
    for run in runs:
        ledger.write_run(run.obs_id, "adding", **run.times)
    grids = [("fine", plan.chunks, spec.grid.shape, _sum_fine)]
    if plan.irf_parent is not None:
        grids.append(("irf", plan.irf_chunks, plan.irf_parent.shape, _sum_irf))
    try:
        for grid, chunks, shape, sum_into in grids:
            if not runs[0].whole:  # a run alone: band by band, as they are made
                (run,) = runs
                groups = (
                    [(run.obs_id, *part) for part in band] for band in run.bands.get(grid, ())
                )
            else:
                groups = [
                    [
                        (r.obs_id, *part)
                        for r in runs
                        for band in r.bands.get(grid, ())
                        for part in band
                    ]
                ]
            for group in groups:
                _add_parts(ledger, grid, group, chunks, shape, sum_into)
    except Exception as exc:
        reason = (
            f"adding into the store failed ({type(exc).__name__}: {exc}); the store holds "
            "part of this run: add it again to finish"
        )
        # the runs of a batch whose every part went in before the failure are complete
        done = [run for run in runs if run.whole and _holds_all(ledger, run)]
        failed = [_status(run.obs_id, "failed", reason) for run in runs if run not in done]
        return failed + _complete(ledger, done, start, len(runs))
    return _complete(ledger, runs, start, len(runs))


def _holds_all(ledger, run: _ReducedRun) -> bool:
    """Whether the store holds every part of ``run`` (made whole, in a batch)."""
    return all(
        ledger.holds(run.obs_id, f"{grid}-{part.key}")
        for grid, bands in run.bands.items()
        for band in bands
        for part, _ in band
    )


def _complete(ledger, runs: list[_ReducedRun], start: float, n_batch: int) -> list:
    """Mark ``runs`` complete (every part held) and forget their parts; their status dicts,
    each with an equal share of the batch's adding time since ``start``."""
    for run in runs:
        ledger.write_run(run.obs_id, "complete", **run.times)
        ledger.forget_parts(run.obs_id)
    share = (time.perf_counter() - start) / n_batch
    return [_status(r.obs_id, "added", seconds=r.seconds + share, sums=r.sums) for r in runs]


def _add_runs_task(observations, spec: ReductionSpec, plan: _Plan, on_error: str) -> list:
    """The dask task of a batch of runs: under their run locks (taken in obs_id order, so
    that overlapping batches never deadlock), reduce each on its cutout, then add them into
    the parts of the store that do not hold them yet, one chunk at a time for all of them,
    and mark each complete (exactly once). Returns each run's status and seconds."""
    ledger = MosaicLedger(plan.path, plan.chunk_files)
    statuses, reduced, alone = [], [], len(observations) == 1
    with contextlib.ExitStack() as run_locks:
        for observation in sorted(observations, key=lambda o: int(o.obs_id)):
            run_locks.enter_context(ledger.run_lock(int(observation.obs_id)))
            outcome = _reduce_run(ledger, observation, spec, plan, on_error, alone)
            (reduced if isinstance(outcome, _ReducedRun) else statuses).append(outcome)
        if reduced:
            statuses += _add_reduced(ledger, reduced, spec, plan)
    return statuses


def _tally(bands, sums: dict):
    """Pass the bands on, adding each map's total into ``sums`` (name -> float)."""
    for band, arrays in bands:
        for name in sums:
            if name in arrays:
                sums[name] += float(arrays[name].sum(dtype=float))
        yield band, arrays


def _failed(ledger: MosaicLedger, obs_id: int, reason: str, on_error: str) -> dict:
    if on_error == "skip":
        ledger.write_run(obs_id, "skipped", reason=reason)
        return _status(obs_id, "skipped", reason)
    return _status(obs_id, "failed", reason)


def _checked_batch(runs_per_task) -> int:
    """``runs_per_task`` as an int, if it is a positive whole number."""
    try:
        whole = int(runs_per_task) == runs_per_task and not isinstance(runs_per_task, bool)
    except (TypeError, ValueError):
        whole = False
    if not whole or runs_per_task < 1:
        raise ValueError(f"runs_per_task must be a positive integer, got {runs_per_task!r}")
    return int(runs_per_task)


def _task_name(batch: list) -> str:
    first = int(batch[0].obs_id)
    return f"mosaic-add-{first}" if len(batch) == 1 else f"mosaic-add-{first}-{len(batch)}-runs"


def _cutout_bytes(spec: ReductionSpec, plan: _Plan) -> int:
    """About the bytes of one run's maps on its cutout (what a batch holds per run until it
    is added): the parent's maps scaled to the cutout's pixels, the cutout's lon span taken
    at the parent's highest latitude."""
    parent = spec.grid
    rows = min(parent.shape[0], 2 * math.ceil(plan.radius / parent.lat_step) + 1)
    edge = math.radians(min(89.0, float(np.abs(parent.lat).max()) + plan.radius))
    lon_pixels = 2 * math.ceil(plan.radius / (parent.lon_step * math.cos(edge))) + 1
    share = rows * min(parent.shape[1], lon_pixels) / (parent.shape[0] * parent.shape[1])
    return max(1, int(layout_bytes(variable_layout(spec, parent)) * share))


def _make_plan(path: str, spec: ReductionSpec) -> _Plan:
    parent = spec.grid
    margin = float(np.hypot(parent.lon_step, parent.lat_step))
    chunks = spatial_chunks(path, "mask_safe")
    irf_parent = spec.irf_grid(parent) if spec.irf_maps else None
    irf_chunks = spatial_chunks(path, "exposure_irf") if spec.irf_maps else None
    chunk_files = MosaicLedger(path).chunk_files()
    return _Plan(path, irf_parent, spec.offset_max + margin, chunks, irf_chunks, chunk_files)


def _check_same_spec(spec: ReductionSpec, stored: ReductionSpec, path: str) -> None:
    if not spec.grid.is_same(stored.grid):
        raise ValueError(f"spec.grid {spec.grid!r} differs from the grid of {path}")
    if _spec_record(spec) != _spec_record(stored):
        raise ValueError(
            f"spec differs from the one {path} was made with:\n  given:  "
            f"{_spec_record(spec)}\n  stored: {_spec_record(stored)}"
        )


def add_runs_to_mosaic(
    path: str | os.PathLike,
    observations: Sequence,
    spec: ReductionSpec | None = None,
    *,
    on_error: str = "raise",
    scheduler: str | None = None,
    progress: bool | None = None,
    runs_per_task: int | None = None,
) -> MosaicResult:
    """Reduce runs on cutouts of the parent grid and add them into a mosaic store.

    One dask task per run, or per batch of runs beyond 64 runs: read each run, reduce it on
    the cutout of radius ``offset_max`` (plus one pixel) around its pointing, mask it as
    :func:`~gammaxr.reduce.stack.stack_runs` does, then add the batch's runs into the zarr
    chunks they overlap, exactly once (see the module docstring): each chunk is read and
    written once per batch, for all its runs that reach it. Peak memory is a few batches of
    cutouts and chunks per worker, independent of the grid.

    Idempotent: runs the store already holds completely are skipped and reported
    (``present``); a run half added by an interrupted call is finished (only the chunks that
    miss it are written). Several calls may run at once, from any processes of one machine
    (or of machines sharing a file system with working ``flock``), with the same or
    overlapping runs: each run is counted once.

    Parameters
    ----------
    path : str or path-like
        A store made by :func:`create_mosaic_store`.
    observations : sequence of gammaxr.data.Observation
        The runs (lazy handles are fine; each task reads its own run).
    spec : ReductionSpec, optional
        Must equal the store's spec (checked); default the store's
        (:func:`mosaic_spec`).
    on_error : {"raise", "skip"}
        A run that fails to reduce: ``"skip"`` records it as skipped (attrs
        ``skipped_obs_ids``, ``skipped_reasons`` of the opened store) with a warning;
        ``"raise"`` still adds every other run (each addition is complete and recorded) and
        then raises :class:`~gammaxr.reduce.runs.RunReductionError` naming the first failed
        run. Runs whose cutout misses the grid are skipped and recorded in either case.
    scheduler : str, optional
        Dask scheduler (``"threads"``, ``"processes"``, ``"sync"``) or the address of a
        ``dask.distributed`` scheduler (``"tcp://host:port"``); default dask's current one
        (threads, or the active ``distributed`` client).
    progress : bool or None
        Show the runs' progress (None: the :func:`gammaxr.progress.show_progress` context);
        see :func:`gammaxr.progress.compute`.
    runs_per_task : int, optional
        Runs added by one dask task. Default: one run per task up to 64 runs; beyond, about
        64 tasks, each holding at most dask's ``array.chunk-size`` of cutouts
        (:func:`~gammaxr.reduce.runs.runs_per_task`, with one run's maps on its cutout) and
        at most :data:`MAX_RUNS_PER_TASK` runs. Many small runs on the same chunks then cost
        one chunk write per batch instead of one per run. Pass 1 for a task per run.

    Returns
    -------
    MosaicResult
        The obs_ids added, the skipped runs with reasons, and the runs already present.

    Raises
    ------
    ValueError
        If the spec differs from the store's, an obs_id is given twice or
        ``runs_per_task`` is not a positive integer.
    PermissionError
        If the store is not writable.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if runs_per_task is not None:
        runs_per_task = _checked_batch(runs_per_task)
    path = os.fspath(path)
    stored = mosaic_spec(path)
    if spec is None:
        spec = stored
    else:
        _check_same_spec(spec, stored, path)
    obs_ids = [int(o.obs_id) for o in observations]
    if len(set(obs_ids)) != len(obs_ids):
        raise ValueError("each run may appear only once (duplicate obs_id)")
    if not all(writable(MosaicLedger(path).root / f) for f in ("runs", "journal", "locks")):
        raise PermissionError(f"cannot add runs to the mosaic {path}: it is not writable")
    if not observations:
        return MosaicResult((), {}, ())
    plan = _make_plan(path, spec)
    if runs_per_task is None:
        by_count_and_memory = default_runs_per_task(len(observations), _cutout_bytes(spec, plan))
        runs_per_task = min(by_count_and_memory, MAX_RUNS_PER_TASK)
    batches = [
        list(observations[i : i + runs_per_task])
        for i in range(0, len(observations), runs_per_task)
    ]
    tasks = [
        dask.delayed(_add_runs_task, pure=False)(
            batch, spec, plan, on_error, dask_key_name=_task_name(batch)
        )
        for batch in batches
    ]
    with scheduler_context(scheduler) as kwargs:
        by_obs_id = {
            r["obs_id"]: r for batch in compute(*tasks, progress=progress, **kwargs) for r in batch
        }
    records = [by_obs_id[obs_id] for obs_id in obs_ids]
    skipped = {r["obs_id"]: r["reason"] for r in records if r["status"] == "skipped"}
    for obs_id, reason in skipped.items():
        warnings.warn(f"obs_id {obs_id} skipped: {reason}", RuntimeWarning, stacklevel=2)
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        raise RunReductionError(failed[0]["obs_id"], failed[0]["reason"])
    added = tuple(r["obs_id"] for r in records if r["status"] == "added")
    present = tuple(r["obs_id"] for r in records if r["status"] == "present")
    seconds = {r["obs_id"]: r["seconds"] for r in records if r["status"] == "added"}
    sums = {r["obs_id"]: r["sums"] for r in records if r["status"] == "added"}
    return MosaicResult(added, skipped, present, seconds, sums, int(runs_per_task))
