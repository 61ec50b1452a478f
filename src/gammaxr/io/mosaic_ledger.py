"""The ledger of a mosaic store: which runs it holds, per run and per chunk piece, crash-safely.

A survey mosaic (:mod:`gammaxr.reduce.mosaic`) adds each run into the zarr chunks its cutout
overlaps. For every run to count exactly once after any interruption, and with several
processes adding runs at the same time, the store keeps, under ``<store>/.gammaxr``:

- ``runs/<obs_id>.json``: the run's record, ``{"state": "adding" | "complete" | "skipped",
  "livetime", "ontime", "reason"}``. A run is in the mosaic when its record is complete.
- ``held/<obs_id>``: the pieces ("parts") of the run's cutout already added into their
  chunks, one name a line (``part`` names the chunk and the pixels, e.g.
  ``fine-3-7.0.219.768.1024``), appended by each transaction in one write; only lines ending
  in a newline count. Only needed while the run is being added: the file is removed once the
  run's record is complete. (Stores written before held a folder ``held/<obs_id>/`` of empty
  files, one per part; those still read.)
- ``journal/<block>.npz``: a block transaction in flight, the new values of the parts it
  adds (see :meth:`MosaicLedger.commit`); a block is one zarr chunk of every variable on the
  fine or the IRF grid, e.g. ``fine-3-7``.
- ``locks/``: ``flock`` files, one per run and per block.

A run is added under its run lock; its parts in a block (with the parts of the other runs of
its batch there) under the block's lock in one transaction: the new values of the parts are
first written to the block's journal (an atomic rename: the commit point), then into the
zarr chunks, then the parts' names are appended to their runs' ``held`` markers and the
journal deleted. Whoever takes a block lock first replays a journal left there (the writes
are absolute values, so replaying is idempotent), so a chunk is always either before or
after a part, and the marker says which. Every step costs the same whatever the number of
runs the chunk already holds (no per-chunk run list is read or rewritten). The run record
turns complete only when all its parts hold it; a record left ``"adding"`` marks the store
incomplete until the run is added again (which then only touches the parts that miss it).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import zarr

from gammaxr.io.atomic import FileLock, read_json, write_atomic, write_json
from gammaxr.io.chunk_files import ChunkFiles, supports

__all__ = ["MosaicLedger", "PartWrite", "region_index"]

_STATE_DIR = ".gammaxr"
_FOLDERS = ("runs", "held", "journal", "locks")


class PartWrite(NamedTuple):
    """One part of a block transaction (:meth:`MosaicLedger.commit`)."""

    obs_id: int
    """The run the part adds."""
    block: str
    """The block (zarr chunk) the part lies in, e.g. ``fine-3-7``."""
    part: str
    """The part's name, unique in the store, e.g. ``fine-3-7.0.219.768.1024``."""
    bounds: tuple[int, int, int, int]
    """(row start, row stop, column start, column stop) of the part in the variables' last
    two dims."""
    names: tuple[str, ...]
    """The variables it changes."""


def _region(ndim: int, bounds: Sequence[int]) -> tuple:
    r0, r1, c0, c1 = (int(b) for b in bounds)
    return (*(slice(None),) * (ndim - 2), slice(r0, r1), slice(c0, c1))


def region_index(bounds: Sequence[int], chunk: Sequence[int]) -> tuple:
    """Index of the pixels ``bounds`` in an array of the pixels ``chunk`` (both as (row start,
    row stop, column start, column stop) in the parent)."""
    r0, r1, c0, c1 = bounds
    return (..., slice(r0 - chunk[0], r1 - chunk[0]), slice(c0 - chunk[2], c1 - chunk[2]))


class MosaicLedger:
    """The records of one mosaic store (a local directory).

    Parameters
    ----------
    path : str or path-like
        Directory of the mosaic's zarr store.
    chunk_files : mapping of str to ChunkFiles or None, optional
        The direct chunk I/O of the store's variables (None where their layout is not
        handled), as :meth:`chunk_files` gives them: a ledger made for every run task is then
        spared opening the zarr group and its arrays (a fifth of a small store's cost per run).
        By default each is made when first needed.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        chunk_files: Mapping[str, ChunkFiles | None] | None = None,
    ):
        self.path = Path(path)
        self.root = self.path / _STATE_DIR
        self._group = None
        self._arrays: dict = {}
        self._chunk_files: dict = dict(chunk_files or {})

    # -- layout ---------------------------------------------------------------------------

    @classmethod
    def initialise(cls, path: str | os.PathLike) -> None:
        """Create the empty ledger folders in a new store."""
        root = Path(path) / _STATE_DIR
        for folder in _FOLDERS:
            (root / folder).mkdir(parents=True, exist_ok=True)

    def exists(self) -> bool:
        """True if the store has a mosaic ledger."""
        return (self.root / "runs").is_dir()

    def run_lock(self, obs_id: int, *, blocking: bool = True) -> FileLock:
        """The lock held while run ``obs_id`` is added."""
        return FileLock(self.root / "locks" / f"run-{int(obs_id)}.lock", blocking=blocking)

    def _block_lock(self, block: str) -> FileLock:
        return FileLock(self.root / "locks" / f"{block}.lock")

    # -- run records ----------------------------------------------------------------------

    def run_record(self, obs_id: int) -> dict | None:
        """The record of run ``obs_id``, or None if the mosaic has never seen it."""
        return read_json(self.root / "runs" / f"{int(obs_id)}.json")

    def write_run(self, obs_id: int, state: str, **fields) -> None:
        """Write run ``obs_id``'s record (atomically); hold its run lock."""
        write_json(self.root / "runs" / f"{int(obs_id)}.json", {"state": state, **fields})

    def records(self) -> dict[int, dict]:
        """Every run record, by obs_id (sorted)."""
        out = {}
        for file in (self.root / "runs").glob("*.json"):
            record = read_json(file)
            if record is not None:
                out[int(file.stem)] = record
        return dict(sorted(out.items()))

    def summary(self) -> dict:
        """The mosaic's attrs from the records: ``stacked_obs_ids``, ``livetime_total``,
        ``ontime_total`` [s] of the complete runs, ``skipped_obs_ids``/``skipped_reasons``.

        Raises
        ------
        IncompleteStoreError
            If a run is half added (a process stopped, or is adding it now).
        """
        records = self.records()
        unfinished = [i for i, r in records.items() if r["state"] == "adding"]
        if unfinished:
            from gammaxr.io.zarr_store import IncompleteStoreError

            busy = [i for i in unfinished if self._is_busy(i)]
            stopped = [i for i in unfinished if i not in busy]
            parts = []
            if stopped:
                parts.append(f"runs {stopped} were being added when their process stopped")
            if busy:
                parts.append(f"runs {busy} are being added now by another process")
            raise IncompleteStoreError(
                f"mosaic {self.path} is incomplete: {'; '.join(parts)}. Finish with "
                f"add_runs_to_mosaic({str(self.path)!r}, <the runs>) (runs already complete "
                "are skipped), or wait for the running call"
            )
        done = {i: r for i, r in records.items() if r["state"] == "complete"}
        skipped = {i: r for i, r in records.items() if r["state"] == "skipped"}
        return {
            "stacked_obs_ids": list(done),
            "livetime_total": float(sum(r["livetime"] for r in done.values())),
            "ontime_total": float(sum(r["ontime"] for r in done.values())),
            "skipped_obs_ids": list(skipped),
            "skipped_reasons": [r["reason"] for r in skipped.values()],
        }

    def _is_busy(self, obs_id: int) -> bool:
        """True if another process holds run ``obs_id``'s lock now."""
        try:
            with self.run_lock(obs_id, blocking=False):
                return False
        except BlockingIOError:
            return True
        except OSError:  # read-only store: cannot tell
            return False

    # -- parts and blocks -----------------------------------------------------------------

    def _held(self, obs_id: int) -> Path:
        return self.root / "held" / str(int(obs_id))

    def holds(self, obs_id: int, part: str) -> bool:
        """True if part ``part`` of run ``obs_id`` is in the store (call within :meth:`blocks`)."""
        held = self._held(obs_id)
        try:
            text = held.read_text()
        except FileNotFoundError:
            return False
        except IsADirectoryError:  # the layout of stores written before: a file per part
            return (held / part).exists()
        return part in text.split("\n")[:-1]  # whole lines only

    def forget_parts(self, obs_id: int) -> None:
        """Drop run ``obs_id``'s part markers (once its record is complete: never read again)."""
        held = self._held(obs_id)
        if held.is_dir():
            shutil.rmtree(held, ignore_errors=True)
        else:
            held.unlink(missing_ok=True)

    def _array(self, name: str):
        if name not in self._arrays:
            self._open_group()
            self._arrays[name] = self._group[name]
        return self._arrays[name]

    def chunk_files(self) -> dict[str, ChunkFiles | None]:
        """The direct chunk I/O of the store's maps (every array of two dims or more; None
        for a layout it does not handle, see :mod:`gammaxr.io.chunk_files`), to give to the
        ledgers of many tasks.

        Returns
        -------
        dict of str to ChunkFiles or None
            By variable name. Small and picklable (plain layout values, no open zarr array).
        """
        self._open_group()
        out = {}
        for name, array in self._group.arrays():
            if array.ndim >= 2:
                self._arrays.setdefault(name, array)  # opened once: _files reads its layout
                out[name] = self._files(name)
        return out

    def _open_group(self) -> None:
        if self._group is None:
            self._group = zarr.open_group(self.path, mode="r+")

    def _files(self, name: str) -> ChunkFiles | None:
        """Direct whole-chunk I/O of variable ``name``, if its layout allows (else None)."""
        if name not in self._chunk_files:
            arr = self._array(name)
            self._chunk_files[name] = ChunkFiles(self.path, name, arr) if supports(arr) else None
        return self._chunk_files[name]

    def read(self, name: str, bounds: Sequence[int]) -> np.ndarray:
        """Values of variable ``name`` in ``bounds`` (rows, columns of its last two dims;
        whole chunks are read directly, see :mod:`gammaxr.io.chunk_files`)."""
        files = self._files(name)
        if files is not None and files.whole_chunks(bounds):
            return files.read(bounds)
        arr = self._array(name)
        return arr[_region(arr.ndim, bounds)]

    def _write(self, name: str, bounds: Sequence[int], values: np.ndarray) -> None:
        files = self._files(name)
        if files is not None and files.whole_chunks(bounds):
            files.write(bounds, values)
        else:
            arr = self._array(name)
            arr[_region(arr.ndim, bounds)] = values

    @contextlib.contextmanager
    def blocks(self, blocks: Iterable[str]) -> Iterator[None]:
        """Hold the locks of ``blocks`` (taken in sorted order, so that writers holding
        several never deadlock), each after replaying a journal left there. Call
        :meth:`holds` and :meth:`commit` inside."""
        with contextlib.ExitStack() as stack:
            for block in sorted(set(blocks)):
                stack.enter_context(self._block_lock(block))
                journal = self.root / "journal" / f"{block}.npz"
                if journal.exists():
                    self._replay(journal)
            yield

    def commit(
        self,
        parts: Sequence[PartWrite],
        region: Sequence[int],
        values: Mapping[str, np.ndarray],
    ) -> None:
        """Add parts (of one run or several) into their blocks crash-safely. Call within
        :meth:`blocks`, holding every block that ``region`` covers.

        First the new values of each block's parts go to that block's journal (an atomic
        rename: the commit point of those parts; one journal per block, as a block can hold
        two parts of one run where a cutout reaches it on both sides of a full-circle seam,
        and parts of several runs of a batch), then ``values`` (the new values of every
        variable over ``region``, whole chunks: no read-modify-write of chunk files) into
        zarr in one write per variable, then the parts' names are appended to their runs'
        markers and each block's journal deleted.

        Parameters
        ----------
        parts : sequence of PartWrite
            The parts added, each with its run.
        region : (int, int, int, int)
            Rows and columns (start, stop) of the written region, in the last two dims.
        values : mapping of str to numpy.ndarray
            New values over ``region`` of each variable written.
        """
        by_block: dict[str, list[PartWrite]] = {}
        for write in parts:
            by_block.setdefault(write.block, []).append(write)
        journals = []
        for block, block_parts in by_block.items():
            meta = {"parts": [], "writes": []}
            arrays = {}
            for write in block_parts:
                meta["parts"].append([int(write.obs_id), write.part])
                at = region_index(write.bounds, region)
                for name in write.names:
                    arrays[f"v{len(meta['writes'])}"] = values[name][at]
                    meta["writes"].append([name, list(write.bounds)])
            buffer = io.BytesIO()
            np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
            journal = self.root / "journal" / f"{block}.npz"
            write_atomic(journal, buffer.getvalue())  # the commit point of these parts
            journals.append((journal, meta["parts"]))
        for name, new in values.items():
            self._write(name, region, new)
        for journal, held in journals:
            self._mark(held)
            journal.unlink()

    def _mark(self, held: Sequence[tuple[int, str]]) -> None:
        """Record that the parts (obs_id, part) hold their runs: each run's names appended
        to its marker file in one write."""
        by_run: dict[int, list[str]] = {}
        for obs_id, part in held:
            by_run.setdefault(int(obs_id), []).append(part)
        for obs_id, parts in by_run.items():
            marker = self._held(obs_id)
            if marker.is_dir():  # the layout of stores written before
                for part in parts:
                    (marker / part).touch()
                continue
            with open(marker, "a") as f:
                f.write("".join(f"{part}\n" for part in parts))

    def _replay(self, journal: Path) -> None:
        with np.load(journal) as data:
            meta = json.loads(str(data["meta"]))
            for k, (name, bounds) in enumerate(meta["writes"]):
                arr = self._array(name)
                arr[_region(arr.ndim, bounds)] = data[f"v{k}"]
        held = meta["parts"]
        if "obs_id" in meta:  # written by gammaxr before batches: parts of one run
            held = [[meta["obs_id"], part] for part in held]
        self._mark(held)
        journal.unlink()
