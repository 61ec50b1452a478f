"""Threads, processes and a ``LocalCluster`` on the simulated store (no external data needed).

Every scheduler must give the same per-run reduction and the same mosaic as the synchronous
scheduler: tasks are pickled to worker processes, so this checks that observations, specs and
the zarr writes travel there intact on every CI machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import gammaxr
from gammaxr.data import open_datastore
from gammaxr.geom import SkyGrid
from gammaxr.reduce.dataset import ReductionSpec
from gammaxr.reduce.mosaic import add_runs_to_mosaic, create_mosaic_store
from gammaxr.reduce.runs import reduce_runs
from gammaxr.reduce.stack import stack_runs

RUNS = (1, 2)
MAPS = ("counts", "exposure", "background", "mask_safe")


@pytest.fixture(scope="module")
def store(simulated_store_dir):
    return open_datastore(simulated_store_dir)


@pytest.fixture(scope="module")
def spec():
    return ReductionSpec(
        energy_edges=np.geomspace(0.5, 20, 4),
        energy_true_edges=np.geomspace(0.3, 50, 6),
        grid=SkyGrid.from_center((83.633, 22.014), 2.0, 0.1, frame="icrs"),
        safe_mask=("offset-max",),
        offset_max=2.0,
    )


@pytest.fixture(scope="module")
def reference(store, spec):
    return reduce_runs(store.observations(RUNS), spec).compute(scheduler="sync")


def _assert_same(result: xr.Dataset, expected: xr.Dataset) -> None:
    assert float(expected["counts"].sum()) > 0  # the comparison is not of empty maps
    for name in MAPS:
        np.testing.assert_allclose(result[name].values, expected[name].values, rtol=1e-12)


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_reduce_runs_scheduler_matches_sync(store, spec, reference, scheduler):
    result = reduce_runs(store.observations(RUNS), spec).compute(scheduler=scheduler)
    _assert_same(result, reference)


def test_mosaic_with_processes_matches_stack(store, spec, reference, tmp_path):
    create_mosaic_store(tmp_path / "m.zarr", spec, chunks=8)
    result = add_runs_to_mosaic(
        tmp_path / "m.zarr", store.observations(RUNS), spec, scheduler="processes"
    )
    assert sorted(result.added) == list(RUNS)
    mosaic = gammaxr.open_dataset(tmp_path / "m.zarr")
    expected = stack_runs(reference).compute(scheduler="sync")
    for name in ("counts", "exposure", "background"):
        np.testing.assert_allclose(mosaic[name].values, expected[name].values, rtol=1e-6)


@pytest.mark.slow
def test_local_cluster_reduction_and_mosaic(store, spec, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    create_mosaic_store(tmp_path / "m.zarr", spec, chunks=8)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        result = reduce_runs(store.observations(RUNS), spec).compute()
        added = add_runs_to_mosaic(tmp_path / "m.zarr", store.observations(RUNS), spec)
    _assert_same(result, reference)
    assert sorted(added.added) == list(RUNS)
    mosaic = gammaxr.open_dataset(tmp_path / "m.zarr")
    expected = stack_runs(reference).compute(scheduler="sync")
    np.testing.assert_allclose(mosaic["counts"].values, expected["counts"].values)
