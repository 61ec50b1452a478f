"""Persist gammaxr datasets to chunked zarr stores, crash-safely, and open them lazily.

Everything a dataset carries survives the round trip: data variables, coordinates (bin
centres, CF bounds, per-run metadata along ``obs_id``), ``units`` attrs, masks and the grid
definition (``lon``/``lat`` coordinates plus the ``frame`` attr).

Crash safety
------------
A store at ``path`` is complete or recognisably incomplete, whatever process is killed when:

- :func:`to_zarr` (modes ``"w"``/``"w-"``) writes into a hidden temporary sibling
  ``.<name>.writing-<host>-<pid>-<id>`` in the same directory, marks it complete in its write
  record ``.gammaxr/state.json``, and only then renames it to ``path`` (an atomic ``rename``;
  an old store is first renamed aside and deleted afterwards). A killed write leaves at most a
  hidden temporary (removed by the next write once its process is gone), never a partial
  store at ``path``.
- Two writers of one path serialise their renames on a lock file ``.<name>.lock`` next to the
  store: with ``"w"`` the last one wins whole, with ``"w-"`` the second is refused.
- Mode ``"a"`` (appending variables in place) records ``"writing"`` before it starts and
  ``"complete"`` when done; :func:`open_dataset` refuses a store whose record is not complete,
  saying which write did not finish and how to redo it.
- Mosaic stores (:mod:`gammaxr.reduce.mosaic`) keep a ledger of runs under ``.gammaxr``
  (:mod:`gammaxr.io.mosaic_ledger`); :func:`open_dataset` refuses one with runs half added and
  fills the ``stacked_obs_ids``/``livetime_total``/``ontime_total``/``skipped_*`` attrs from
  the ledger.

The zarr chunk and metadata files themselves are replaced atomically by zarr-python's local
store. Stores on object storage (no rename, no ``flock``) are not supported by this scheme.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import dask
import xarray as xr

from gammaxr.io.atomic import (
    FileLock,
    process_tag,
    read_json,
    tag_is_dead,
    writable,
    write_json,
)
from gammaxr.io.run_status import pending_run_status, settle_store_run_status
from gammaxr.progress import compute as progress_compute

__all__ = [
    "IncompleteStoreError",
    "check_complete",
    "open_dataset",
    "quiet_zarr_warnings",
    "to_zarr",
    "write_store",
]

#: Spatial chunk edge (pixels) used for numpy-backed data written to zarr.
SPATIAL_CHUNK = 512
#: Folder of gammaxr's own records inside a store (ignored by zarr).
STATE_DIR = ".gammaxr"
_STATE_FILE = "state.json"


class IncompleteStoreError(RuntimeError):
    """A zarr store was not completely written; the message says what is missing and how to
    finish or redo it."""


def _default_chunks(var: xr.Variable) -> dict[str, int]:
    chunks = {}
    for dim, size in var.sizes.items():
        if dim == "obs_id":
            chunks[dim] = 1
        elif dim in ("lat", "lon"):
            chunks[dim] = min(size, SPATIAL_CHUNK)
        else:
            chunks[dim] = size
    return chunks


@contextlib.contextmanager
def quiet_zarr_warnings() -> Iterator[None]:
    """Fixed-width strings (run error messages) and consolidated metadata are not yet in the
    zarr v3 spec; zarr-python reads them back faithfully; gammaxr's ``.gammaxr`` records are
    not zarr nodes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        warnings.filterwarnings("ignore", message=".*not recognized as a component.*")
        yield


def _check_target(path: Path) -> None:
    """A clear error if ``path`` cannot become a store: a file there, an unwritable parent."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"{path} is a file, not a zarr store directory: remove it or choose another path"
        )
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermissionError(f"cannot write the zarr store {path}: {exc}") from exc
    if not writable(parent):
        raise PermissionError(
            f"cannot write the zarr store {path}: its directory {parent} is not writable"
        )


def _siblings(path: Path, kind: str) -> list[Path]:
    """Hidden siblings ``.<name>.<kind>-<tag>`` of a store (temporaries, replaced stores)."""
    return sorted(path.parent.glob(f".{path.name}.{kind}-*"))


def _remove_stale(path: Path) -> None:
    """Delete temporaries and replaced stores left by processes of this host that died."""
    for kind in ("writing", "replaced"):
        for sibling in _siblings(path, kind):
            if tag_is_dead(sibling.name.split(f".{kind}-", 1)[1]):
                shutil.rmtree(sibling, ignore_errors=True)


def _state_path(store: Path) -> Path:
    return store / STATE_DIR / _STATE_FILE


def _record(store: Path, state: str, **fields) -> None:
    (store / STATE_DIR).mkdir(exist_ok=True)
    previous = read_json(_state_path(store), {})
    write_json(_state_path(store), {**previous, **fields, "state": state})


def _publish(_written, tmp: Path, path: Path, mode: str, finalize=None) -> Path:
    """Mark the temporary store complete and rename it to ``path`` (under the path's lock)."""
    if finalize is not None:
        finalize(tmp)
    _record(tmp, "complete", finished=time.time())
    replaced = None
    with FileLock(path.parent / f".{path.name}.lock"):
        if path.exists():
            if mode == "w-":
                shutil.rmtree(tmp, ignore_errors=True)
                raise FileExistsError(
                    f"{path} was written by another process meanwhile (mode='w-'): this write "
                    "is dropped; use mode='w' to replace it"
                )
            if not path.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
                raise NotADirectoryError(f"{path} is a file, not a zarr store directory")
            replaced = path.with_name(f".{path.name}.replaced-{process_tag()}")
            os.rename(path, replaced)
        os.rename(tmp, path)
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    return path


def _finish_append(_written, path: Path) -> Path:
    _record(path, "complete", finished=time.time())
    return path


def write_store(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    mode: str = "w",
    compute: bool = True,
    encoding: Mapping[str, dict] | None = None,
    prepare: Callable[[Path], None] | None = None,
    data: bool = True,
    finalize: Callable[[Path], None] | None = None,
):
    """Write ``ds`` to a zarr store crash-safely (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        What to write (numpy- or dask-backed).
    path : str or path-like
        Directory of the store.
    mode : {"w", "w-", "a"}
        Replace, create only, or append variables in place.
    compute : bool
        If False, return a ``dask.delayed`` object that writes the data and publishes the
        store when computed (metadata is already written, in the temporary).
    encoding : mapping, optional
        Per-variable zarr encoding, as :meth:`xarray.Dataset.to_zarr` takes it.
    prepare : callable, optional
        Called with the temporary store directory after the metadata is written and before
        the data (e.g. to add gammaxr records under ``.gammaxr``); modes ``"w"``/``"w-"``.
    data : bool
        False: write metadata and coordinates only, leaving the data chunks absent (they read
        as the variables' ``fill_value``); the store is published at once.
    finalize : callable, optional
        Called with the temporary store directory once the data is written, before the store
        is marked complete and published (modes ``"w"``/``"w-"``).

    Returns
    -------
    pathlib.Path or dask.delayed.Delayed
        The store path once written, or the delayed write.
    """
    path = Path(path)
    if mode not in ("w", "w-", "a"):
        raise ValueError(f"mode must be 'w', 'w-' or 'a', got {mode!r}")
    _check_target(path)
    kwargs = {"encoding": dict(encoding or {}), "consolidated": True, "compute": False}
    if mode == "a":
        if not path.is_dir():
            raise FileNotFoundError(f"no zarr store at {path} to append to (mode='a')")
        _record(path, "writing", mode="a", variables=sorted(map(str, ds.data_vars)),
                writer=process_tag(), started=time.time())  # fmt: skip
        with quiet_zarr_warnings():
            written = ds.to_zarr(path, mode="a", **kwargs)
        finish = dask.delayed(_finish_append, pure=False)(written, path)
        return finish.compute() if compute else finish
    if mode == "w-" and path.exists():
        raise FileExistsError(f"{path} exists (mode='w-'); use mode='w' to replace it")
    _remove_stale(path)
    tag = process_tag()
    tmp = path.with_name(f".{path.name}.writing-{tag}")
    try:
        with quiet_zarr_warnings():
            written = ds.to_zarr(tmp, mode="w", **kwargs)
        _record(tmp, "writing", mode=mode, target=str(path), writer=tag, started=time.time(),
                variables=sorted(map(str, ds.data_vars)))  # fmt: skip
        if prepare is not None:
            prepare(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not data:
        return _publish(None, tmp, path, mode)
    publish = dask.delayed(_publish, pure=False)(written, tmp, path, mode, finalize)
    if not compute:
        return publish
    try:
        with quiet_zarr_warnings():
            return publish.compute()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def to_zarr(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    mode: str = "w",
    compute: bool = True,
    chunks: Mapping[str, int] | None = None,
    progress: bool | None = None,
):
    """Write a dataset to a zarr store, crash-safely (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        Any gammaxr dataset (map, on/off, spectrum; stacked or with ``obs_id``), numpy- or
        dask-backed.
    path : str or path-like
        Directory of the zarr store.
    mode : {"w", "w-", "a"}
        ``"w"`` replaces a store there (atomically, when the write is complete), ``"w-"``
        fails if the store exists, ``"a"`` appends/overwrites variables in place (the store
        reads as incomplete until the append finishes).
    compute : bool
        If False, return a ``dask.delayed`` object that writes when computed (the data
        stays lazy until then; the store appears at ``path`` only when it is complete).
    chunks : mapping of dim to int, optional
        Chunk sizes on disk for numpy-backed variables; the default is one run per chunk
        along ``obs_id``, spatial chunks of at most 512 x 512 and whole other axes.
        Dask-backed variables keep their dask chunks.
    progress : bool or None
        Show a progress bar while computing and writing (None: the
        :func:`gammaxr.progress.show_progress` context); see :func:`gammaxr.progress.compute`.

    Returns
    -------
    pathlib.Path or dask.delayed.Delayed
        The store's path once written, or the delayed write (``compute=False``).

    Raises
    ------
    NotADirectoryError
        If ``path`` is a file.
    PermissionError
        If the store's directory is not writable.
    FileExistsError
        With ``mode="w-"`` if the store exists (also when another writer created it during
        this write).
    """
    encoding = {}
    for name, var in ds.data_vars.items():
        if var.chunks is None:
            wanted = {**_default_chunks(var.variable), **(chunks or {})}
            encoding[name] = {"chunks": tuple(wanted.get(d, n) for d, n in var.sizes.items())}
    # a lazy stack learns which runs contributed when its runs are computed: its status
    # variables become attrs in the written store before it is published
    finalize = settle_store_run_status if pending_run_status(ds) else None
    write = write_store(ds, path, mode=mode, compute=False, encoding=encoding, finalize=finalize)
    if not compute:
        return write
    with quiet_zarr_warnings():
        return progress_compute(write, progress=progress)[0]


def _missing_store_message(path: Path) -> str:
    message = f"no zarr store at {path}"
    left = _siblings(path, "writing")
    if left:
        message += (
            f"; a write that did not finish (or is running) left {[p.name for p in left]} "
            f"in {path.parent}: redo the write (e.g. ds.gamma.to_zarr({str(path)!r}))"
        )
    return message


def check_complete(path: str | os.PathLike) -> dict:
    """Raise :class:`IncompleteStoreError` unless the store at ``path`` was completely written.

    Parameters
    ----------
    path : str or path-like
        Directory of a zarr store.

    Returns
    -------
    dict
        Attrs the gammaxr records add (mosaic stores: runs stacked and skipped); empty for
        plain stores.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file, not a zarr store directory")
    if not path.exists():
        raise FileNotFoundError(_missing_store_message(path))
    state = read_json(_state_path(path), {})
    if state and state.get("state") != "complete":
        what = f"variables {state.get('variables', [])}"
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.get("started", 0)))
        target = state.get("target")
        moved = target is not None and Path(target).resolve() != path.resolve()
        where = f" (the temporary of {target})" if moved else ""
        redo = target or str(path)
        raise IncompleteStoreError(
            f"{path}{where} is incomplete: a write (mode {state.get('mode', '?')!r}) of "
            f"{what} started {when} by {state.get('writer', '?')} did not finish; its data "
            f"cannot be trusted: redo it with ds.gamma.to_zarr({redo!r}, mode='w')"
        )
    if not any((path / name).exists() for name in ("zarr.json", ".zgroup")):
        raise ValueError(f"{path} is not a zarr store (no zarr.json or .zgroup)")
    from gammaxr.io.mosaic_ledger import MosaicLedger

    ledger = MosaicLedger(path)
    return ledger.summary() if ledger.exists() else {}


def open_dataset(path: str | os.PathLike, *, chunks: Mapping[str, int] | str | None = "auto"):
    """Open a gammaxr dataset written by :func:`to_zarr` (or a mosaic store), lazily.

    Parameters
    ----------
    path : str or path-like
        Directory of the zarr store.
    chunks : mapping, "auto" or None
        ``"auto"`` keeps the chunks on disk (data variables are dask arrays); ``None`` loads
        numpy arrays.

    Returns
    -------
    xarray.Dataset
        Data variables lazy (dask) as stored; coordinates (bin bounds, per-run metadata) are
        small and loaded into memory, so code may read them freely.

    Raises
    ------
    IncompleteStoreError
        If a write into the store did not finish (a killed process): the message says what is
        missing and how to finish or redo it.
    FileNotFoundError, NotADirectoryError
        If there is no store directory at ``path``.
    """
    extra_attrs = check_complete(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
        if chunks == "auto":
            ds = xr.open_zarr(path, consolidated=True)
        else:
            ds = xr.open_dataset(path, engine="zarr", chunks=chunks, consolidated=True)
    loaded = {name: ds.coords[name].load() for name in ds.coords if name not in ds.indexes}
    return ds.assign_coords(loaded).assign_attrs(extra_attrs)
