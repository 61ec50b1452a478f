"""The mosaic ledger's block transactions: a crash between the journal and the zarr write is
replayed whole, also when one block takes two parts of a run in one transaction (a cutout that
reaches a chunk on both sides of a full-circle seam)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from gammaxr.io.mosaic_ledger import MosaicLedger, PartWrite
from gammaxr.reduce.mosaic import create_mosaic_store
from test_store_faults import fault_spec

CHUNK = 16
BLOCK = "fine-0-0"
REGION = (0, CHUNK, 0, CHUNK)
#: Two disjoint parts of run 7 in one chunk: columns 0-4 and 11-15.
PARTS = [
    PartWrite(7, BLOCK, "fine-0-0.0.16.0.5", (0, CHUNK, 0, 5), ("counts",)),
    PartWrite(7, BLOCK, "fine-0-0.0.16.11.16", (0, CHUNK, 11, CHUNK), ("counts",)),
]


class Crash(RuntimeError):
    """Stands for the process dying after the journals are written, before zarr is."""


def _chunk(path) -> np.ndarray:
    return zarr.open_group(path)["counts"][..., :CHUNK, :CHUNK]


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "mosaic.zarr"
    create_mosaic_store(path, fault_spec(), chunks=CHUNK)
    new = np.zeros_like(_chunk(path))
    new[..., :, :5] = 1.0
    new[..., :, 11:] = 2.0
    return path, new


def _assert_committed(path, new) -> None:
    np.testing.assert_array_equal(_chunk(path), new)
    ledger = MosaicLedger(path)
    with ledger.blocks([BLOCK]):
        assert [ledger.holds(7, write.part) for write in PARTS] == [True, True]
    assert not any((path / ".gammaxr" / "journal").iterdir())


def test_two_parts_of_one_block_in_one_commit(store):
    path, new = store
    ledger = MosaicLedger(path)
    with ledger.blocks([BLOCK]):
        ledger.commit(PARTS, REGION, {"counts": new})
    _assert_committed(path, new)


def test_two_parts_of_one_block_replayed_after_a_crash(store):
    path, new = store
    ledger = MosaicLedger(path)

    def die(*args, **kwargs):
        raise Crash

    ledger._write = die  # the journal is written, the zarr chunks are not
    with pytest.raises(Crash), ledger.blocks([BLOCK]):
        ledger.commit(PARTS, REGION, {"counts": new})
    assert not _chunk(path).any()
    with MosaicLedger(path).blocks([BLOCK]):  # the next writer replays the journal
        pass
    _assert_committed(path, new)


def test_parts_of_several_runs_in_one_commit(store):
    """A batch's transaction: parts of two runs in one block, each run's markers its own."""
    path, new = store
    parts = [PARTS[0], PARTS[1]._replace(obs_id=8)]
    ledger = MosaicLedger(path)
    with ledger.blocks([BLOCK]):
        ledger.commit(parts, REGION, {"counts": new})
    with ledger.blocks([BLOCK]):
        assert ledger.holds(7, PARTS[0].part) and ledger.holds(8, PARTS[1].part)
        assert not ledger.holds(7, PARTS[1].part) and not ledger.holds(8, PARTS[0].part)
    ledger.forget_parts(7)
    assert not ledger.holds(7, PARTS[0].part) and ledger.holds(8, PARTS[1].part)


def test_a_marker_line_cut_short_does_not_count(store):
    path, _ = store
    ledger = MosaicLedger(path)
    name = PARTS[0].part
    (path / ".gammaxr" / "held" / "7").write_text(f"{PARTS[1].part}\n{name[:-1]}")
    assert ledger.holds(7, PARTS[1].part)
    assert not ledger.holds(7, name) and not ledger.holds(7, name[:-1])


def test_journal_and_markers_of_the_earlier_layout_still_replay(store):
    """A store left by gammaxr before batches: a journal naming one run (``obs_id``) and a
    folder of empty marker files per run."""
    import io
    import json

    path, new = store
    root = path / ".gammaxr"
    (root / "held" / "7").mkdir()
    (root / "held" / "7" / PARTS[0].part).touch()  # part 0 was added before the crash
    meta = {"obs_id": 7, "parts": [PARTS[1].part], "writes": [["counts", list(PARTS[1].bounds)]]}
    buffer = io.BytesIO()
    at = (..., slice(0, CHUNK), slice(11, CHUNK))
    np.savez(buffer, meta=np.array(json.dumps(meta)), v0=new[at])
    (root / "journal" / f"{BLOCK}.npz").write_bytes(buffer.getvalue())
    ledger = MosaicLedger(path)
    with ledger.blocks([BLOCK]):  # replays the journal
        assert [ledger.holds(7, write.part) for write in PARTS] == [True, True]
    np.testing.assert_array_equal(_chunk(path)[at], new[at])
    assert not any((root / "journal").iterdir())
    ledger.forget_parts(7)
    assert not (root / "held" / "7").exists()
