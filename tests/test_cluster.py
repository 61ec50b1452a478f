"""The cluster path on every CI machine: a ``distributed.LocalCluster`` with worker processes,
reached by its address (API, analysis YAML, CLI), on simulated data; workers killed mid-way.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys

import pytest
import xarray as xr

import gammaxr
from gammaxr.analysis import AnalysisConfigError, parse_analysis_config, run_analysis
from gammaxr.analysis.pipeline import reduction_spec, select_observations
from gammaxr.cli import main
from gammaxr.data import open_datastore
from gammaxr.io.run_status import settle_run_status
from gammaxr.reduce.cluster import (
    WORKER_PRELOAD,
    local_cluster,
    scheduler_context,
    worker_kept_result_bytes,
)
from gammaxr.reduce.mosaic import add_runs_to_mosaic, create_mosaic_store
from gammaxr.reduce.runs import reduce_runs
from gammaxr.reduce.stack import stack_runs
from test_run_status import _config
from test_store_faults import _patch_replacements, assert_same, fault_spec

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each; the address is what users pass around."""
    with local_cluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def runs(simulated_store_dir):
    return open_datastore(simulated_store_dir).observations()


@pytest.fixture(scope="module")
def reference(runs):
    """The stacked runs on the fault-test grid, computed in this process."""
    return settle_run_status(
        reduce_runs(runs, fault_spec()).gamma.stack().compute(scheduler="sync")
    )


def _worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def _die_at_read(obs_id: int) -> None:
    """Installed on one worker: SIGKILL that worker process when it reads run ``obs_id``."""
    from gammaxr.data.observation import Observation

    original = Observation.read

    def read(self, *args, **kwargs):
        if int(self.obs_id) == obs_id:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)

    Observation.read = read


def _die_at_replacement(n: int) -> None:
    """Installed on one worker: SIGKILL it at its n-th file replacement (mid-mosaic)."""
    _patch_replacements(kill_at=n)


def test_killed_worker_loses_and_doubles_no_run(cluster, runs, reference):
    """The address from the API; a worker dies mid-reduction; each run counted once."""
    with scheduler_context(cluster.scheduler_address) as kwargs:
        client = kwargs["scheduler"]
        victim = sorted(_worker_pids(client))[0]
        client.run(_die_at_read, 2, workers=[victim])
        # every run may land on the victim: it dies when it reads run 2, the run is redone
        lazy = reduce_runs(runs, fault_spec()).gamma.stack()
        stacked = settle_run_status(client.compute(lazy).result())
    assert stacked.attrs["stacked_obs_ids"] == [1, 2, 3, 4]
    xr.testing.assert_allclose(stacked, reference)
    assert stacked.attrs == reference.attrs


@pytest.mark.parametrize("batch", [1, 2])
def test_mosaic_on_the_cluster_with_a_killed_worker(cluster, runs, reference, tmp_path, batch):
    """A worker dies mid-mosaic (at its 40th file replacement), adding one run or a batch of
    two; the scheduler reruns its task elsewhere, which finishes the runs it held."""
    path = tmp_path / "mosaic.zarr"
    create_mosaic_store(path, fault_spec(), chunks=16)
    with scheduler_context(cluster.scheduler_address) as kwargs:
        client = kwargs["scheduler"]
        victims = sorted(_worker_pids(client))
        client.run(_die_at_replacement, 40, workers=victims[:1])
    result = add_runs_to_mosaic(
        path, runs, scheduler=cluster.scheduler_address, runs_per_task=batch
    )
    with scheduler_context(cluster.scheduler_address) as kwargs:
        assert victims[0] not in _worker_pids(kwargs["scheduler"])  # it did die
    assert sorted(result.added + result.present) == [1, 2, 3, 4]
    mosaic = gammaxr.open_dataset(path).compute()
    for name in ("counts", "background", "exposure", "mask_safe"):
        xr.testing.assert_allclose(mosaic[name], reference[name], rtol=1e-5)
    assert mosaic.attrs["livetime_total"] == pytest.approx(reference.attrs["livetime_total"])
    # the same call again adds nothing
    again = add_runs_to_mosaic(path, runs, scheduler=cluster.scheduler_address)
    assert again.added == () and sorted(again.present) == [1, 2, 3, 4]
    assert_same(path, mosaic)


def test_analysis_yaml_and_cli_scheduler_address(cluster, simulated_store_dir, tmp_path):
    import yaml

    description = _config(simulated_store_dir)
    description["compute"] = {"scheduler": cluster.scheduler_address}
    config = parse_analysis_config(description)
    assert config.scheduler == cluster.scheduler_address
    on_cluster = run_analysis(config, tmp_path / "yaml")
    local = stack_runs(reduce_runs(select_observations(config), reduction_spec(config)))
    local = local.compute(scheduler="sync")
    expected = float(local["counts"].where(local["mask_safe"]).sum())
    assert on_cluster.attrs["counts_total"] == expected > 0
    assert on_cluster.attrs["obs_ids"] == [1, 2, 3, 4]
    description["compute"] = {"scheduler": "synchronous"}
    path = tmp_path / "analysis.yaml"
    path.write_text(yaml.safe_dump(description))
    code = main(["run", str(path), "-o", str(tmp_path / "cli"), "--scheduler", cluster.scheduler_address, "-q"])  # fmt: skip
    assert code == 0
    cli = gammaxr.open_dataset(tmp_path / "cli" / "stacked.zarr")
    assert float(cli["counts"].where(cli["mask_safe"]).sum()) == on_cluster.attrs["counts_total"]


@pytest.mark.parametrize(
    ("scheduler", "ok"),
    [("tcp://10.0.0.1:8786", True), ("tls://node-3:8786", True), ("thread", False),
     ("tcp://host", False)],
)  # fmt: skip
def test_scheduler_key_validation(simulated_store_dir, scheduler, ok):
    description = _config(simulated_store_dir)
    description["compute"] = {"scheduler": scheduler}
    if ok:
        assert parse_analysis_config(description).scheduler == scheduler
    else:
        with pytest.raises(AnalysisConfigError, match=r"compute\.scheduler.*tcp://host:8786"):
            parse_analysis_config(description)


def test_unreachable_scheduler_named():
    with pytest.raises(OSError, match=r"no dask scheduler reachable at tcp://127\.0\.0\.1:9"):
        with scheduler_context("tcp://127.0.0.1:9", timeout=1.0):
            pass


def _reduction_loaded() -> bool:
    import sys

    return all(name in sys.modules for name in WORKER_PRELOAD)


def test_workers_start_with_the_reduction_imported(cluster):
    # the first run a worker reduces does not pay for importing gammaxr and astropy
    with distributed.Client(cluster) as client:
        assert set(client.run(_reduction_loaded).values()) == {True}


def _kept_result_bytes() -> int:
    from gammaxr import memory

    return memory.KEPT_RESULT_BYTES


@pytest.mark.skipif(
    "GAMMAXR_KEPT_RESULT_BYTES" in os.environ, reason="the environment sets the workers' bound"
)
def test_workers_keep_result_buffers_within_an_eighth_of_their_memory(cluster):
    expected = worker_kept_result_bytes("auto", 2)
    with distributed.Client(cluster) as client:
        assert set(client.run(_kept_result_bytes).values()) == {expected}


def test_worker_kept_result_bytes_follow_the_memory_limit():
    from gammaxr.memory import KEPT_RESULT_BYTES, physical_memory_bytes

    assert worker_kept_result_bytes("800MB", 2) == min(KEPT_RESULT_BYTES, 100_000_000)
    assert worker_kept_result_bytes("4 GiB", 1) == min(KEPT_RESULT_BYTES, 2**29)
    assert worker_kept_result_bytes(2**20, 1) == 2**17
    assert worker_kept_result_bytes(None, 4) == KEPT_RESULT_BYTES  # no limit
    assert worker_kept_result_bytes(0, 4) == KEPT_RESULT_BYTES
    machine = physical_memory_bytes()
    if machine is not None:
        assert worker_kept_result_bytes("auto", 64) == min(KEPT_RESULT_BYTES, machine // 64 // 8)
        assert worker_kept_result_bytes(0.5, 1) == min(KEPT_RESULT_BYTES, int(machine * 0.5) // 8)


_FREE_AND_REALLOCATE = """
import resource, sys
import numpy as np
from gammaxr.reduce.cluster import keep_freed_memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

applied = keep_freed_memory() if sys.argv[1] == "keep" else None
big = np.ones(40 * 2**20 // 8)  # 40 MiB, above glibc's default mmap threshold
before = rss_mb()
del big
after = rss_mb()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
again = np.ones(40 * 2**20 // 8)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(applied, before - after, faults)
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_keep_freed_memory_keeps_and_reuses_the_heap():
    """In a process of its own (the setting is for the whole process, for good): by default a
    freed 40 MiB array goes back to the system and the next one faults in fresh pages (huge
    ones where the kernel gives them); after keep_freed_memory() the heap keeps it and the
    next array reuses it."""
    out = {}
    # glibc's own defaults (a LocalCluster started in this process may have set MALLOC_*)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    for mode in ("default", "keep"):
        result = subprocess.run(
            [sys.executable, "-c", _FREE_AND_REALLOCATE, mode],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        applied, released_mb, faults = result.stdout.split()
        out[mode] = (applied, float(released_mb), int(faults))
    assert out["default"][0] == "None" and out["keep"][0] == "True"
    assert out["default"][1] > 30 and out["default"][2] > 10  # returned, faulted in again
    assert out["keep"][1] < 5 and out["keep"][2] < min(10, out["default"][2])  # kept, reused


def test_local_scheduler_names_become_dask_functions_without_importing_distributed():
    """A local scheduler name gives dask's function for it (any case), so that computing
    does not import distributed (dask would, to look for a client, for every name); other
    names, and schedulers that are not names, are passed on for dask to judge."""
    import dask.local
    import dask.threaded

    with scheduler_context("Threads") as kwargs:
        assert kwargs == {"scheduler": dask.threaded.get}
    with scheduler_context("synchronous") as kwargs:
        assert kwargs == {"scheduler": dask.local.get_sync}
    with scheduler_context("no-such-scheduler") as kwargs:
        assert kwargs == {"scheduler": "no-such-scheduler"}
    with scheduler_context(dask.threaded.get) as kwargs:  # not a name: passed on as well
        assert kwargs == {"scheduler": dask.threaded.get}
    code = (
        "import sys, dask, dask.array as da\n"
        "from gammaxr.reduce.cluster import scheduler_context\n"
        "for name in ('threads', 'sync'):\n"
        "    with scheduler_context(name) as kw, dask.config.set(kw):\n"
        "        assert int(da.ones(10, chunks=5).sum().compute()) == 10\n"
        "print('distributed' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_objects_made_before_a_computation_are_left_out_of_garbage_collection_during_it():
    """Within scheduler_context (and gc_frozen) the objects that existed are frozen, new ones
    are collected as usual; the freeze ends with the outermost context, and one made by the
    application is left as it was."""
    import gc

    from gammaxr.reduce.cluster import gc_frozen

    assert gc.get_freeze_count() == 0
    before = [object() for _ in range(10)]
    with scheduler_context("threads") as chosen:
        assert gc.get_freeze_count() >= len(before)
        with gc_frozen():  # nested: nothing thawed at its end (the count only drops as
            pass  # frozen objects are freed)
        assert gc.get_freeze_count() >= len(before)
        cycle = []
        cycle.append(cycle)  # garbage made during the computation is still collected
        del cycle
        assert gc.collect() >= 1
        assert chosen["scheduler"] is not None
    assert gc.get_freeze_count() == 0
    gc.freeze()  # the application's own freeze
    try:
        with gc_frozen():
            pass
        assert gc.get_freeze_count() >= len(before)
    finally:
        gc.unfreeze()
    del before
