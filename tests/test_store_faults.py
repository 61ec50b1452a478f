"""Persistence under faults: processes killed (SIGKILL) while writing, concurrent writers, bad paths.

Every scenario runs on a simulated DL3 store (no external data). Each writer is a child
process of the test (``fork``; the parent's imports are inherited, so a child costs
milliseconds) that the test or the child itself kills with SIGKILL at a chosen moment: at the
N-th file replacement (``os.replace``/``os.rename``, through which every zarr chunk and
metadata write, ledger record, journal commit and store publication goes), or after a random
delay. Then the same call runs again and the result must equal the uninterrupted one.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import threading
import time

import dask
import numpy as np
import pytest
import xarray as xr

import gammaxr
from gammaxr.data import open_datastore
from gammaxr.geom import SkyGrid
from gammaxr.io.zarr_store import IncompleteStoreError
from gammaxr.reduce.dataset import ReductionSpec
from gammaxr.reduce.mosaic import add_runs_to_mosaic, create_mosaic_store
from gammaxr.reduce.runs import reduce_runs

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork (POSIX)"
)
MAPS = ("counts", "exposure", "background", "psf", "edisp")
RTOL = 1e-6


def fault_spec() -> ReductionSpec:
    """A 4 x 4 deg grid around the simulated runs, with PSF and edisp maps."""
    return ReductionSpec(
        np.geomspace(0.5, 20, 4),
        np.geomspace(0.3, 50, 6),
        grid=SkyGrid.from_center((83.63, 22.01), (4.0, 4.0), 0.05),
        maps=MAPS,
        safe_mask=("offset-max",),
        offset_max=1.5,
        irf_binsz=0.25,
    )


# ----------------------------------------------------------------------------------------------
# writers and how they die
# ----------------------------------------------------------------------------------------------


def _patch_replacements(kill_at: int | None = None, after: bool = False) -> list[int]:
    """Count os.replace/os.rename calls (in this process); SIGKILL this process at call
    ``kill_at``, just before it or just after it."""
    count, lock = [0], threading.Lock()

    def wrap(func):
        def replaced(*args, **kwargs):
            with lock:
                count[0] += 1
                hit = count[0] == kill_at
            if hit and not after:
                os.kill(os.getpid(), signal.SIGKILL)
            out = func(*args, **kwargs)
            if hit and after:
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        return replaced

    os.replace, os.rename = wrap(os.replace), wrap(os.rename)
    return count


def _write(operation: str, datastore, target, obs_ids) -> None:
    runs = open_datastore(datastore).observations(list(obs_ids))
    if operation == "mosaic":
        add_runs_to_mosaic(target, runs, scheduler="sync")
    elif operation == "mosaic-batched":  # the 4 runs in a batch of 3 and a batch of 1
        add_runs_to_mosaic(target, runs, scheduler="sync", runs_per_task=3)
    else:
        with dask.config.set(scheduler="sync"):
            reduce_runs(runs, fault_spec()).gamma.stack().gamma.to_zarr(target)


def _child_main(operation, datastore, target, obs_ids, kill_at, after) -> None:
    _patch_replacements(kill_at, after)
    _write(operation, datastore, target, obs_ids)


def start_writer(operation, datastore, target, obs_ids, *, kill_at=None, after=False):
    """A child process doing one write (killed at replacement ``kill_at`` if given)."""
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(
        target=_child_main, args=(operation, datastore, target, obs_ids, kill_at, after)
    )
    proc.start()
    return proc


def wait(proc, timeout: float = 120) -> int:
    proc.join(timeout)
    if proc.is_alive():
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        pytest.fail(f"writer {proc.pid} did not finish in {timeout} s")
    return proc.exitcode


def count_replacements(operation, datastore, target, obs_ids) -> int:
    """Replacements of an uninterrupted write, counted in a child process."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.SimpleQueue()

    def run():
        count = _patch_replacements()
        _write(operation, datastore, target, obs_ids)
        queue.put(count[0])

    proc = ctx.Process(target=run)
    proc.start()
    assert wait(proc) == 0
    return queue.get()


def assert_same(path, expected: xr.Dataset) -> None:
    got = gammaxr.open_dataset(path).compute()
    assert set(got.data_vars) == set(expected.data_vars)
    for name in expected.data_vars:
        xr.testing.assert_allclose(got[name], expected[name], rtol=RTOL, atol=0)
    for name in ("stacked_obs_ids", "skipped_obs_ids"):
        assert list(got.attrs.get(name, [])) == list(expected.attrs.get(name, []))
    for name in ("livetime_total", "ontime_total"):
        assert got.attrs[name] == pytest.approx(expected.attrs[name], rel=1e-12)


# ----------------------------------------------------------------------------------------------
# references: the uninterrupted writes
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def datastore(simulated_store_dir):
    return simulated_store_dir


@pytest.fixture(scope="module")
def obs_ids(datastore):
    return tuple(int(i) for i in open_datastore(datastore).obs_ids)


@pytest.fixture(scope="module")
def mosaic_reference(tmp_path_factory, datastore, obs_ids):
    """The mosaic of all runs written without interruption, and its count of replacements."""
    path = tmp_path_factory.mktemp("reference") / "mosaic.zarr"
    create_mosaic_store(path, fault_spec(), chunks=16)
    n = count_replacements("mosaic", datastore, path, obs_ids)
    return gammaxr.open_dataset(path).compute(), n


@pytest.fixture(scope="module")
def batched_reference(tmp_path_factory, datastore, obs_ids, mosaic_reference):
    """The mosaic of all runs added in batches without interruption, and its count of
    replacements."""
    path = tmp_path_factory.mktemp("reference") / "mosaic.zarr"
    create_mosaic_store(path, fault_spec(), chunks=16)
    n = count_replacements("mosaic-batched", datastore, path, obs_ids)
    return gammaxr.open_dataset(path).compute(), n


@pytest.fixture
def mosaic_writes(request, mosaic_reference, batched_reference):
    """(operation, expected store, replacements of the uninterrupted write) of the mosaic
    written one run per task or in batches."""
    operation = request.param
    reference = mosaic_reference if operation == "mosaic" else batched_reference
    return operation, *reference


MOSAIC_WRITES = pytest.mark.parametrize(
    "mosaic_writes", ["mosaic", "mosaic-batched"], indirect=True
)


@pytest.fixture(scope="module")
def zarr_reference(tmp_path_factory, datastore, obs_ids):
    """The stacked dataset of all runs (``new``) and of the first two (``old``), written
    without interruption, and the replacements of writing ``new``."""
    folder = tmp_path_factory.mktemp("reference")
    n = count_replacements("to_zarr", datastore, folder / "new.zarr", obs_ids)
    _write("to_zarr", datastore, folder / "old.zarr", obs_ids[:2])
    new = gammaxr.open_dataset(folder / "new.zarr").compute()
    old = gammaxr.open_dataset(folder / "old.zarr").compute()
    return new, old, n


def test_references_are_meaningful(mosaic_reference, batched_reference, zarr_reference, obs_ids):
    mosaic, n_mosaic = mosaic_reference
    batched, n_batched = batched_reference
    # batches give the same store, with fewer replacements (a chunk written once per batch)
    assert batched.attrs["stacked_obs_ids"] == mosaic.attrs["stacked_obs_ids"]
    for name in mosaic.data_vars:
        xr.testing.assert_allclose(batched[name], mosaic[name], rtol=1e-5)
    assert 50 < n_batched < 0.7 * n_mosaic
    new, old, n_zarr = zarr_reference
    assert mosaic.attrs["stacked_obs_ids"] == list(obs_ids) == new.attrs["stacked_obs_ids"]
    assert float(mosaic["counts"].sum()) > 100 and float(mosaic["psf"].max()) > 0
    # the mosaic equals the plain stack on the same grid
    for name in ("counts", "background", "exposure"):
        xr.testing.assert_allclose(mosaic[name], new[name], rtol=1e-5)
    assert float(old["counts"].sum()) < float(new["counts"].sum())
    assert n_mosaic > 100 and n_zarr > 10


# ----------------------------------------------------------------------------------------------
# kill -9, then the same call again
# ----------------------------------------------------------------------------------------------

#: Kill points: a fraction of the uninterrupted write's replacements, before/after that one.
KILL_POINTS = [(0.0, False), (0.25, True), (0.5, False), (0.8, True), (1.0, True)]


@MOSAIC_WRITES
@pytest.mark.parametrize(("fraction", "after"), KILL_POINTS)
def test_mosaic_killed_then_added_again(
    tmp_path, datastore, obs_ids, mosaic_writes, fraction, after
):
    operation, expected, n = mosaic_writes
    path = tmp_path / "mosaic.zarr"
    create_mosaic_store(path, fault_spec(), chunks=16)
    kill_at = max(1, round(fraction * n))
    assert (
        wait(start_writer(operation, datastore, path, obs_ids, kill_at=kill_at, after=after)) == -9
    )
    try:  # what the killed call left: complete runs only, or recognisably incomplete
        partial = gammaxr.open_dataset(path)
        assert set(partial.attrs["stacked_obs_ids"]) <= set(obs_ids)
    except IncompleteStoreError as exc:
        assert "add_runs_to_mosaic" in str(exc) and "when their process stopped" in str(exc)
    result = add_runs_to_mosaic(path, open_datastore(datastore).observations(list(obs_ids)))
    assert sorted(result.added + result.present) == list(obs_ids)
    assert_same(path, expected)
    # and once more: nothing added twice
    again = add_runs_to_mosaic(path, open_datastore(datastore).observations(list(obs_ids)))
    assert again.added == () and sorted(again.present) == list(obs_ids)
    assert_same(path, expected)


@MOSAIC_WRITES
@pytest.mark.parametrize("seed", [1, 2])
def test_mosaic_killed_at_random_time_by_parent(tmp_path, datastore, obs_ids, mosaic_writes, seed):
    operation, expected, _ = mosaic_writes
    path = tmp_path / "mosaic.zarr"
    create_mosaic_store(path, fault_spec(), chunks=16)
    proc = start_writer(operation, datastore, path, obs_ids)
    time.sleep(random.Random(seed).uniform(0.2, 2.0))
    os.kill(proc.pid, signal.SIGKILL)
    assert wait(proc) in (-9, 0)
    add_runs_to_mosaic(path, open_datastore(datastore).observations(list(obs_ids)))
    assert_same(path, expected)


@pytest.mark.parametrize(("fraction", "after"), [(0.1, False), (0.5, True), (0.9, False)])
def test_to_zarr_killed_over_old_store(
    tmp_path, datastore, obs_ids, zarr_reference, fraction, after
):
    """Replacing a store: a kill leaves the old store whole or the new one whole, never a mix."""
    new, old, n = zarr_reference
    path = tmp_path / "stacked.zarr"
    _write("to_zarr", datastore, path, obs_ids[:2])
    kill_at = max(1, round(fraction * n))
    proc = start_writer("to_zarr", datastore, path, obs_ids, kill_at=kill_at, after=after)
    assert wait(proc) == -9
    if path.exists():
        left = gammaxr.open_dataset(path).compute()
        whole = new if left.attrs["stacked_obs_ids"] == list(obs_ids) else old
        assert_same(path, whole)
    else:  # killed between moving the old store aside and renaming the new one in
        with pytest.raises(FileNotFoundError, match="did not finish"):
            gammaxr.open_dataset(path)
    _write("to_zarr", datastore, path, obs_ids)
    assert_same(path, new)
    # temporaries of the killed writer were removed by the new write
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "stacked.zarr"
    ]


def test_killed_append_is_refused_then_redone(tmp_path, datastore, obs_ids, zarr_reference):
    new, _, _ = zarr_reference
    path = tmp_path / "stacked.zarr"
    new.drop_vars("psf").gamma.to_zarr(path)
    ctx = multiprocessing.get_context("fork")

    def append():
        _patch_replacements(kill_at=2)  # the first chunk of psf
        new[["psf"]].gamma.to_zarr(path, mode="a")

    proc = ctx.Process(target=append)
    proc.start()
    assert wait(proc) == -9
    with pytest.raises(IncompleteStoreError, match=r"mode 'a'.*\['psf'\].*did not finish.*redo"):
        gammaxr.open_dataset(path)
    new.gamma.to_zarr(path)
    assert_same(path, new)


# ----------------------------------------------------------------------------------------------
# concurrent writers
# ----------------------------------------------------------------------------------------------


@MOSAIC_WRITES
@pytest.mark.parametrize("lists", ["same", "overlapping"])
def test_concurrent_mosaic_writers_count_each_run_once(
    tmp_path, datastore, obs_ids, mosaic_writes, lists
):
    operation, expected, _ = mosaic_writes
    path = tmp_path / "mosaic.zarr"
    create_mosaic_store(path, fault_spec(), chunks=16)
    if lists == "same":
        first = second = obs_ids
    else:
        first, second = obs_ids[:3], obs_ids[1:]
    procs = [start_writer(operation, datastore, path, ids) for ids in (first, second)]
    assert [wait(p) for p in procs] == [0, 0]
    assert_same(path, expected)


def test_concurrent_to_zarr_writers_one_wins_whole(tmp_path, datastore, obs_ids, zarr_reference):
    new, old, _ = zarr_reference
    path = tmp_path / "stacked.zarr"
    procs = [start_writer("to_zarr", datastore, path, ids) for ids in (obs_ids, obs_ids[:2])]
    assert [wait(p) for p in procs] == [0, 0]
    got = gammaxr.open_dataset(path)
    assert_same(path, new if got.attrs["stacked_obs_ids"] == list(obs_ids) else old)


def test_concurrent_create_only_refuses_the_second(tmp_path, zarr_reference):
    new, old, _ = zarr_reference
    path = tmp_path / "stacked.zarr"
    lazy = [ds.chunk().gamma.to_zarr(path, mode="w-", compute=False) for ds in (new, old)]
    lazy[0].compute()
    with pytest.raises(FileExistsError, match="another process"):
        lazy[1].compute()
    assert_same(path, new)


# ----------------------------------------------------------------------------------------------
# bad paths and specs
# ----------------------------------------------------------------------------------------------


def test_store_path_is_a_file(tmp_path, zarr_reference):
    new, _, _ = zarr_reference
    path = tmp_path / "not-a-store.zarr"
    path.write_text("x")
    with pytest.raises(NotADirectoryError, match=f"{path} is a file"):
        new.gamma.to_zarr(path)
    with pytest.raises(NotADirectoryError, match=f"{path} is a file"):
        gammaxr.open_dataset(path)
    with pytest.raises(NotADirectoryError, match=f"{path} is a file"):
        create_mosaic_store(path, fault_spec())
    with pytest.raises(NotADirectoryError, match=f"{path} is a file"):
        add_runs_to_mosaic(path, [])


def _set_read_only(folder, read_only: bool) -> None:
    """chmod the folders (and, for root, whom modes do not stop, chattr +i/-i them)."""
    for sub, _, _ in os.walk(folder):
        if os.geteuid() == 0 and not read_only:
            subprocess.run(["chattr", "-i", sub], capture_output=True)
        os.chmod(sub, 0o555 if read_only else 0o755)
        if os.geteuid() == 0 and read_only:
            if subprocess.run(["chattr", "+i", sub], capture_output=True).returncode:
                pytest.skip("running as root without chattr: cannot make a read-only folder")


def test_read_only_location(tmp_path, zarr_reference, datastore):
    new, _, _ = zarr_reference
    locked = tmp_path / "locked"
    locked.mkdir()
    create_mosaic_store(locked / "mosaic.zarr", fault_spec())
    _set_read_only(locked, True)
    try:
        with pytest.raises(PermissionError, match=f"{locked / 'stacked.zarr'}.*not writable"):
            new.gamma.to_zarr(locked / "stacked.zarr")
        with pytest.raises(PermissionError, match=f"{locked / 'other.zarr'}"):
            create_mosaic_store(locked / "other.zarr", fault_spec())
        runs = open_datastore(datastore).observations()
        with pytest.raises(PermissionError, match=f"{locked / 'mosaic.zarr'}: it is not writable"):
            add_runs_to_mosaic(locked / "mosaic.zarr", runs)
        assert gammaxr.open_dataset(locked / "mosaic.zarr").attrs["stacked_obs_ids"] == []
    finally:
        _set_read_only(locked, False)


def test_spec_not_matching_the_store(tmp_path, datastore):
    path = tmp_path / "mosaic.zarr"
    create_mosaic_store(path, fault_spec(), chunks=16)
    runs = open_datastore(datastore).observations()
    other = fault_spec()
    other = ReductionSpec(
        other.energy_edges, other.energy_true_edges, grid=other.grid, maps=MAPS,
        safe_mask=("offset-max",), offset_max=2.0, irf_binsz=0.25,
    )  # fmt: skip
    with pytest.raises(ValueError, match=rf"spec differs from the one {path} was made with"):
        add_runs_to_mosaic(path, runs, other)
    with pytest.raises(FileNotFoundError, match=f"no mosaic store at {tmp_path / 'none.zarr'}"):
        add_runs_to_mosaic(tmp_path / "none.zarr", runs)
    with pytest.raises(FileNotFoundError, match=f"no zarr store at {tmp_path / 'none.zarr'}"):
        gammaxr.open_dataset(tmp_path / "none.zarr")
