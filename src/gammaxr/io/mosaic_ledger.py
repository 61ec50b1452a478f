"""The ledger of a mosaic store: which runs it holds, per run and per chunk, crash-safely.

A survey mosaic (:mod:`gammaxr.reduce.mosaic`) adds each run into the zarr chunks its cutout
overlaps. For every run to count exactly once after any interruption, and with several
processes adding runs at the same time, the store keeps, under ``<store>/.gammaxr``:

- ``runs/<obs_id>.json``: the run's record, ``{"state": "adding" | "complete" | "skipped",
  "livetime", "ontime", "reason"}``. A run is in the mosaic when its record is complete.
- ``blocks/<block>.json``: for each spatial block (one zarr chunk of every variable on the
  fine or the IRF grid, e.g. ``fine-3-7``), the sorted obs_ids whose contribution it holds.
- ``journal/<block>.npz``: a block transaction in flight (see :meth:`MosaicLedger.transact`).
- ``locks/``: ``flock`` files, one per run and per block.

A run is added under its run lock; each block it touches is updated under the block lock in
one transaction: the block's new values and new obs_id list are first written to the block's
journal (an atomic rename: the commit point), then into the zarr chunks and the block ledger,
and the journal is deleted. Whoever takes a block lock first replays a journal left there (the
writes are absolute values, so replaying is idempotent), so a block is always either before or
after a run's contribution, and the block ledger says which. The run record turns complete
only when all its blocks hold it; a record left ``"adding"`` marks the store incomplete until
the run is added again (which then only touches the blocks that miss it).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import zarr

from gammaxr.io.atomic import FileLock, read_json, write_atomic, write_json

__all__ = ["BlockWrite", "MosaicLedger"]

_STATE_DIR = ".gammaxr"
_FOLDERS = ("runs", "blocks", "journal", "locks")

#: One region write of a block transaction: (variable, (row start, row stop, column start,
#: column stop) in the variable's last two dims, new values).
BlockWrite = tuple[str, tuple[int, int, int, int], np.ndarray]


def _region(ndim: int, bounds: Sequence[int]) -> tuple:
    r0, r1, c0, c1 = (int(b) for b in bounds)
    return (*(slice(None),) * (ndim - 2), slice(r0, r1), slice(c0, c1))


class MosaicLedger:
    """The records of one mosaic store (a local directory).

    Parameters
    ----------
    path : str or path-like
        Directory of the mosaic's zarr store.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.root = self.path / _STATE_DIR
        self._group = None

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

    # -- blocks ---------------------------------------------------------------------------

    def block_runs(self, block: str) -> list[int]:
        """The obs_ids whose contribution block ``block`` holds."""
        return read_json(self.root / "blocks" / f"{block}.json", [])

    def _zarr_group(self):
        if self._group is None:
            self._group = zarr.open_group(self.path, mode="r+")
        return self._group

    def read(self, name: str, bounds: Sequence[int]) -> np.ndarray:
        """Values of variable ``name`` in ``bounds`` (rows, columns of its last two dims)."""
        arr = self._zarr_group()[name]
        return arr[_region(arr.ndim, bounds)]

    @contextlib.contextmanager
    def block(self, block: str) -> Iterator[list[int]]:
        """Hold block ``block``'s lock (after replaying a journal left there); yields the
        obs_ids it holds. Call :meth:`transact` inside to change it."""
        with self._block_lock(block):
            self._replay(block)
            yield self.block_runs(block)

    def transact(self, block: str, obs_id: int, writes: Sequence[BlockWrite]) -> None:
        """Add run ``obs_id`` to block ``block``: write ``writes`` and the new block ledger,
        crash-safely (journal first). Call within :meth:`block`."""
        runs = sorted({*self.block_runs(block), int(obs_id)})
        meta = {"runs": runs, "writes": [[name, list(map(int, b))] for name, b, _ in writes]}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.array(json.dumps(meta)), **{
            f"v{k}": values for k, (_, _, values) in enumerate(writes)
        })  # fmt: skip
        journal = self.root / "journal" / f"{block}.npz"
        write_atomic(journal, buffer.getvalue())  # the commit point
        self._apply(block, journal)

    def _replay(self, block: str) -> None:
        journal = self.root / "journal" / f"{block}.npz"
        if journal.exists():
            self._apply(block, journal)

    def _apply(self, block: str, journal: Path) -> None:
        with np.load(journal) as data:
            meta = json.loads(str(data["meta"]))
            group = self._zarr_group()
            for k, (name, bounds) in enumerate(meta["writes"]):
                arr = group[name]
                arr[_region(arr.ndim, bounds)] = data[f"v{k}"]
        write_json(self.root / "blocks" / f"{block}.json", meta["runs"])
        journal.unlink()
