"""Survey mosaics: many runs added into one large zarr-backed grid, a few chunks at a time.

For a grid much larger than one run's field of view (a survey, the whole sky), stacking with
:func:`gammaxr.reduce.stack.stack_runs` would hold every run on the whole grid. Here instead:

1. :func:`create_mosaic_store` writes an empty zarr store for the parent grid: the variables,
   coordinates and attrs of a stacked dataset, spatially chunked, zero by the zarr
   ``fill_value`` (only metadata is written; chunks appear as runs land in them).
2. :func:`add_runs_to_mosaic` reduces each run on its own cutout of the parent grid
   (:meth:`gammaxr.geom.SkyGrid.cutout` with radius ``offset_max`` plus one pixel, an exact
   sub-grid) with :func:`gammaxr.reduce.dataset.reduce_observation_arrays`, applies the
   stacking rules of :func:`~gammaxr.reduce.stack.stack_runs` and adds the result into the
   zarr chunks it overlaps (read, add, write; exactly once, below). One dask task per run; memory stays bounded by a
   few cutouts and the chunks they touch, whatever the size of the parent grid.

The store then equals ``stack_runs(reduce_runs(runs, spec))`` on the parent grid (up to
float32 rounding of the order of additions) and opens lazily with
:func:`gammaxr.open_dataset`.

Exactly once, crash-safe, concurrent
------------------------------------
Each run is added under its own lock, one zarr chunk ("block") at a time under the block's
lock, through the store's ledger (:mod:`gammaxr.io.mosaic_ledger`): each block records which
runs it holds, and a block's new values reach zarr through a journal, so a block is always
either before or after a run, never half-way. A run is in the mosaic once all its blocks hold
it and its record says complete; ``gammaxr.open_dataset`` reads ``stacked_obs_ids``,
``livetime_total``, ``ontime_total`` and ``skipped_obs_ids``/``skipped_reasons`` from those
records, and refuses a store with a run half added. Calling :func:`add_runs_to_mosaic` again
with the same runs after any interruption finishes what is missing and skips what is complete;
calls running at the same time in several processes or dask workers (with the same or
overlapping runs) count every run once. Locks are POSIX ``flock`` files inside the store:
they serialise threads and processes of one machine (and of machines sharing a file system
whose ``flock`` works), and a killed process releases them.

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

import itertools
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from gammaxr.geom.grid import SkyGrid
from gammaxr.io.atomic import writable
from gammaxr.io.mosaic_ledger import MosaicLedger
from gammaxr.io.zarr_store import open_dataset, write_store
from gammaxr.progress import compute
from gammaxr.reduce.cluster import scheduler_context
from gammaxr.reduce.dataset import (
    ReductionSpec,
    irf_maps,
    reduce_observation_arrays,
    variable_layout,
)
from gammaxr.reduce.runs import RunReductionError

__all__ = [
    "MosaicResult",
    "add_runs_to_mosaic",
    "create_mosaic_store",
    "mosaic_skipped_runs",
    "mosaic_spec",
]

#: Default spatial chunk edge (pixels) of the parent grid.
DEFAULT_CHUNK = 256

_FINE = ("lat", "lon")
_IRF = ("lat_irf", "lon_irf")
_SUMMED = ("counts", "background", "exposure")
_WEIGHTED = ("psf", "edisp")
_IRF_MAPS = ("psf", "edisp")


class MosaicResult(NamedTuple):
    """What one :func:`add_runs_to_mosaic` call did."""

    added: tuple[int, ...]
    """obs_ids added into the store (by this call)."""
    skipped: dict[int, str]
    """obs_id -> reason, for runs outside the grid or failed (``on_error="skip"``)."""
    present: tuple[int, ...] = ()
    """obs_ids the store already held completely (not added again)."""


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
    sizes = _chunk_sizes(spec, chunks)
    data_vars, encoding = {}, {}
    for name, (dims, shape, dtype, attrs) in variable_layout(spec, parent).items():
        chunk = tuple(min(sizes.get(d, n), n) for d, n in zip(dims, shape, strict=True))
        # one (never computed) dask chunk per variable keeps the graph tiny for any grid
        data_vars[name] = (dims, da.zeros(shape, dtype=dtype, chunks=shape), attrs)
        fill = np.zeros((), dtype).item()
        encoding[name] = {"chunks": chunk, "_FillValue": None, "fill_value": fill}
    attrs = {
        **spec.attrs(parent),
        "mosaic_spec": _spec_record(spec),
    }
    ds = xr.Dataset(data_vars, coords=spec.coords(parent), attrs=attrs)
    # metadata, coordinates and the empty ledger only (chunks stay absent = fill_value),
    # published at ``path`` in one rename
    write_store(ds, path, mode=mode, encoding=encoding, prepare=MosaicLedger.initialise, data=False)
    return open_dataset(path)


def _open_group(path: str, mode: str = "r"):
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{path} is a file, not a mosaic store directory")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no mosaic store at {path}")
    return zarr.open_group(path, mode=mode)


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
    path = os.fspath(path)
    group = _open_group(path)
    record = group.attrs.get("mosaic_spec")
    if record is None:
        raise ValueError(f"{path} is not a mosaic store (no 'mosaic_spec' attr)")
    lon, lat = group["lon"][:], group["lat"][:]
    grid = SkyGrid(lon, lat, group.attrs["frame"])
    values = json.loads(record)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return ReductionSpec(grid=grid, **values)


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
        _open_group(os.fspath(store))
        attrs = MosaicLedger(store).summary()
    ids, reasons = attrs.get("skipped_obs_ids", []), attrs.get("skipped_reasons", [])
    return {int(i): str(r) for i, r in zip(ids, reasons, strict=True)}


# ----------------------------------------------------------------------------------------------
# where a run's cutout lands in the parent grid
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placement:
    """A cutout grid and the parent pixels it covers: rows ``rows``; cutout column ``k`` is
    parent column ``cols[k]`` (contiguous, or two runs across a full-circle parent's seam)."""

    grid: SkyGrid
    rows: slice
    cols: np.ndarray

    def pieces(self) -> list[tuple[slice, slice]]:
        """(cutout column slice, parent column slice) of each contiguous run of columns."""
        breaks = np.flatnonzero(np.diff(self.cols) != 1) + 1
        bounds = [0, *breaks.tolist(), self.cols.size]
        return [
            (slice(a, b), slice(int(self.cols[a]), int(self.cols[b - 1]) + 1))
            for a, b in itertools.pairwise(bounds)
        ]


def _rolled(parent: SkyGrid, shift: int) -> SkyGrid:
    """The same full-circle grid with its lon seam moved by ``shift`` columns."""
    lon = np.concatenate([parent.lon[shift:], parent.lon[:shift] + 360.0])
    return SkyGrid(lon, parent.lat, parent.frame, parent.lon_step, parent.lat_step)


def place_cutout(parent: SkyGrid, center, radius: float) -> _Placement:
    """Cutout of ``parent`` holding every pixel within ``radius`` deg of ``center``.

    Raises ValueError if it misses the parent. On a full-circle parent a cutout across the lon
    seam is made continuous (on the grid with the seam moved to the opposite side).
    """
    cut = parent.cutout(center, radius=radius)
    sl = cut.slices_in(parent)
    n = parent.lon.size
    cols = np.arange(sl["lon"].start, sl["lon"].stop)
    if parent.is_full_circle and cols.size < n and (cols[0] == 0 or cols[-1] == n - 1):
        shift = n // 2
        rolled = _rolled(parent, shift)
        cut = rolled.cutout(center, radius=radius)
        sl = cut.slices_in(rolled)
        cols = (np.arange(sl["lon"].start, sl["lon"].stop) + shift) % n
    return _Placement(cut, sl["lat"], cols)


# ----------------------------------------------------------------------------------------------
# one run's contribution (numpy, on its cutout)
# ----------------------------------------------------------------------------------------------


def _footprint_on_irf(
    spatial: np.ndarray, fine: _Placement, irf: _Placement, plan: _Plan
) -> np.ndarray:
    """The run's spatial safe footprint on its IRF cutout: the value at the nearest parent
    pixel (as :func:`gammaxr.reduce.stack.stack_runs` does on the whole grid); False where
    that pixel is outside the fine cutout (beyond ``offset_max``)."""
    parent, irf_parent = plan.parent, plan.irf_parent
    lat_near = pd.Index(parent.lat).get_indexer(irf_parent.lat[irf.rows], method="nearest")
    lon_near = pd.Index(parent.lon).get_indexer(irf_parent.lon[irf.cols], method="nearest")
    row_map = np.full(parent.lat.size, -1)
    row_map[fine.rows] = np.arange(fine.rows.stop - fine.rows.start)
    col_map = np.full(parent.lon.size, -1)
    col_map[fine.cols] = np.arange(fine.cols.size)
    r, c = row_map[lat_near], col_map[lon_near]
    inside = (r >= 0)[:, None] & (c >= 0)[None, :]
    return inside & spatial[np.maximum(r, 0)[:, None], np.maximum(c, 0)[None, :]]


def _run_contribution(observation, spec: ReductionSpec, plan: _Plan):
    """Reduce one run on its cutout and apply the stacking masks.

    Returns ``(fine placement, IRF placement or None, arrays)``; arrays are what the run adds
    to the store: ``counts``/``background`` where ``mask_safe``, ``exposure`` where the
    spatial safe footprint, ``mask_safe``, and for IRF maps ``exposure_irf`` times the
    footprint plus the run's ``psf``/``edisp``. Raises ``_Outside`` if the run misses the grid.
    """
    pointing = observation.pointing
    try:
        fine = place_cutout(plan.parent, pointing, plan.radius)
    except ValueError as exc:
        raise _Outside(f"outside the parent grid: {exc}") from None
    obs = observation.read(spec.hdus())
    fine_maps = tuple(m for m in spec.maps if m not in _IRF_MAPS)
    cut_spec = replace(spec, grid=fine.grid, maps=fine_maps)
    arrays = reduce_observation_arrays(obs, cut_spec, fine.grid)
    mask = arrays["mask_safe"]
    spatial = mask.any(axis=0)
    out = {"mask_safe": mask}
    for name in _SUMMED:
        if name in arrays:
            where = spatial[None] if name == "exposure" else mask
            out[name] = np.where(where, arrays[name], 0).astype(arrays[name].dtype)
    irf = None
    if spec.irf_maps:
        irf = place_cutout(plan.irf_parent, pointing, plan.radius)
        maps = irf_maps(obs, spec, irf.grid)
        foot = _footprint_on_irf(spatial, fine, irf, plan)
        out["exposure_irf"] = np.where(foot[None], maps.pop("exposure_irf"), 0)
        out.update(maps)
    return fine, irf, out


class _Outside(Exception):
    """The run's cutout does not overlap the parent grid."""


# ----------------------------------------------------------------------------------------------
# adding into the store, block by block (see gammaxr.io.mosaic_ledger)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """What every task needs to know about the store (small, pickled into each task)."""

    path: str
    parent: SkyGrid
    irf_parent: SkyGrid | None
    radius: float
    chunks: tuple[int, int]
    irf_chunks: tuple[int, int] | None


class _Part(NamedTuple):
    """Where a piece of a run's cutout lands in one block: parent bounds
    ``(row0, row1, col0, col1)`` and the matching cutout slices."""

    bounds: tuple[int, int, int, int]
    cut_rows: slice
    cut_cols: slice


def _blocks(prefix: str, place: _Placement, chunks: tuple[int, int]) -> dict[str, list[_Part]]:
    """The zarr chunks (blocks ``{prefix}-{i}-{j}``) a placement covers, with its parts."""
    out: dict[str, list[_Part]] = {}
    rows, (ch_r, ch_c) = place.rows, chunks
    for cut_cols, cols in place.pieces():
        for i in range(rows.start // ch_r, (rows.stop - 1) // ch_r + 1):
            r0, r1 = max(rows.start, i * ch_r), min(rows.stop, (i + 1) * ch_r)
            for j in range(cols.start // ch_c, (cols.stop - 1) // ch_c + 1):
                c0, c1 = max(cols.start, j * ch_c), min(cols.stop, (j + 1) * ch_c)
                k0 = cut_cols.start + c0 - cols.start
                part = _Part(
                    (r0, r1, c0, c1),
                    slice(r0 - rows.start, r1 - rows.start),
                    slice(k0, k0 + c1 - c0),
                )
                out.setdefault(f"{prefix}-{i}-{j}", []).append(part)
    return out


def _fine_writes(ledger: MosaicLedger, parts: list[_Part], arrays: dict) -> list:
    """New values of the summed maps and ``mask_safe`` in a fine block (old + run)."""
    writes = []
    for part in parts:
        for name, values in arrays.items():
            if name not in _SUMMED and name != "mask_safe":
                continue
            run = values[..., part.cut_rows, part.cut_cols]
            if not run.any():
                continue
            old = ledger.read(name, part.bounds)
            writes.append((name, part.bounds, (old | run) if name == "mask_safe" else old + run))
    return writes


def _irf_writes(ledger: MosaicLedger, parts: list[_Part], arrays: dict) -> list:
    """New ``exposure_irf`` (summed) and ``psf``/``edisp`` (exposure-weighted averages) in an
    IRF block."""
    writes = []
    for part in parts:
        w_run = np.asarray(arrays["exposure_irf"][..., part.cut_rows, part.cut_cols], float)
        if not w_run.any():
            continue
        w_old = np.asarray(ledger.read("exposure_irf", part.bounds), dtype=float)
        w_new = w_old + w_run
        for name in _WEIGHTED:
            if name not in arrays:
                continue
            # psf (energy_true, rad, ...) and edisp (energy_true, energy, ...): weights on axis 0
            old = ledger.read(name, part.bounds)
            run = arrays[name][..., part.cut_rows, part.cut_cols]
            num = old * w_old[:, None] + run * w_run[:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                avg = np.where(w_new[:, None] > 0, num / w_new[:, None], 0)
            writes.append((name, part.bounds, avg.astype(old.dtype)))
        writes.append(("exposure_irf", part.bounds, w_new.astype(np.float32)))
    return writes


def _add_run_task(observation, spec: ReductionSpec, plan: _Plan, on_error: str) -> dict:
    """The per-run dask task: under the run's lock, reduce it on its cutout and add it into
    every block that does not hold it yet, then mark it complete (exactly once)."""
    obs_id = int(observation.obs_id)
    ledger = MosaicLedger(plan.path)
    with ledger.run_lock(obs_id):
        record = ledger.run_record(obs_id)
        if record is not None and record["state"] == "complete":
            return {"obs_id": obs_id, "status": "present", "reason": ""}
        try:
            fine, irf, arrays = _run_contribution(observation, spec, plan)
            times = {"livetime": float(observation.livetime), "ontime": float(observation.ontime)}
        except _Outside as exc:
            ledger.write_run(obs_id, "skipped", reason=str(exc))
            return {"obs_id": obs_id, "status": "skipped", "reason": str(exc)}
        except Exception as exc:
            return _failed(ledger, obs_id, f"{type(exc).__name__}: {exc}", on_error)
        blocks = [(b, p, _fine_writes) for b, p in _blocks("fine", fine, plan.chunks).items()]
        if irf is not None:
            blocks += [(b, p, _irf_writes) for b, p in _blocks("irf", irf, plan.irf_chunks).items()]
        ledger.write_run(obs_id, "adding", **times)
        try:
            for block, parts, writes_of in blocks:
                with ledger.block(block) as holders:
                    if obs_id not in holders:
                        ledger.transact(block, obs_id, writes_of(ledger, parts, arrays))
        except Exception as exc:
            reason = (
                f"writing into the store failed ({type(exc).__name__}: {exc}); the store holds "
                "part of this run: add it again to finish"
            )
            return {"obs_id": obs_id, "status": "failed", "reason": reason}
        ledger.write_run(obs_id, "complete", **times)
    return {"obs_id": obs_id, "status": "added", "reason": ""}


def _failed(ledger: MosaicLedger, obs_id: int, reason: str, on_error: str) -> dict:
    if on_error == "skip":
        ledger.write_run(obs_id, "skipped", reason=reason)
        return {"obs_id": obs_id, "status": "skipped", "reason": reason}
    return {"obs_id": obs_id, "status": "failed", "reason": reason}


def _make_plan(path: str, spec: ReductionSpec) -> _Plan:
    group = _open_group(path)
    parent = spec.grid
    margin = float(np.hypot(parent.lon_step, parent.lat_step))
    chunks = tuple(group["mask_safe"].chunks[-2:])
    irf_parent = spec.irf_grid(parent) if spec.irf_maps else None
    irf_chunks = tuple(group["exposure_irf"].chunks[-2:]) if spec.irf_maps else None
    return _Plan(path, parent, irf_parent, spec.offset_max + margin, chunks, irf_chunks)


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
) -> MosaicResult:
    """Reduce runs on cutouts of the parent grid and add them into a mosaic store.

    One dask task per run: read the run, reduce it on the cutout of radius ``offset_max``
    (plus one pixel) around its pointing, mask it as :func:`~gammaxr.reduce.stack.stack_runs`
    does, then add it into the zarr chunks it overlaps, exactly once (see the module
    docstring). Peak memory is a few cutouts and chunks per worker, independent of the grid.

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

    Returns
    -------
    MosaicResult
        The obs_ids added, the skipped runs with reasons, and the runs already present.

    Raises
    ------
    ValueError
        If the spec differs from the store's or an obs_id is given twice.
    PermissionError
        If the store is not writable.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    path = os.fspath(path)
    stored = mosaic_spec(path)
    if spec is None:
        spec = stored
    else:
        _check_same_spec(spec, stored, path)
    obs_ids = [int(o.obs_id) for o in observations]
    if len(set(obs_ids)) != len(obs_ids):
        raise ValueError("each run may appear only once (duplicate obs_id)")
    if not all(writable(MosaicLedger(path).root / f) for f in ("runs", "blocks", "locks")):
        raise PermissionError(f"cannot add runs to the mosaic {path}: it is not writable")
    if not observations:
        return MosaicResult((), {}, ())
    plan = _make_plan(path, spec)
    tasks = [
        dask.delayed(_add_run_task, pure=False)(
            obs, spec, plan, on_error, dask_key_name=f"mosaic-add-{int(obs.obs_id)}"
        )
        for obs in observations
    ]
    with scheduler_context(scheduler) as kwargs:
        records = compute(*tasks, progress=progress, **kwargs)
    skipped = {r["obs_id"]: r["reason"] for r in records if r["status"] == "skipped"}
    for obs_id, reason in skipped.items():
        warnings.warn(f"obs_id {obs_id} skipped: {reason}", RuntimeWarning, stacklevel=2)
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        raise RunReductionError(failed[0]["obs_id"], failed[0]["reason"])
    added = tuple(r["obs_id"] for r in records if r["status"] == "added")
    present = tuple(r["obs_id"] for r in records if r["status"] == "present")
    return MosaicResult(added, skipped, present)
