"""Lazy reduction over runs: numpy vs dask, threads vs distributed, zarr round trip, bad runs."""

from __future__ import annotations

import dataclasses
import shutil

import dask
import numpy as np
import pytest
import xarray as xr

import gammaxr
from gammaxr.data import open_datastore
from gammaxr.geom import SkyGrid
from gammaxr.reduce.dataset import ReductionSpec, reduce_observation
from gammaxr.reduce.runs import RunReductionError, failed_runs, reduce_runs, reduce_runs_tree

pytestmark = pytest.mark.hess

RUNS = (23523, 23526)


@pytest.fixture(scope="module")
def spec():
    return ReductionSpec(
        energy_edges=np.geomspace(0.5, 10, 5),
        energy_true_edges=np.geomspace(0.3, 30, 7),
        grid=SkyGrid.from_center((83.633, 22.014), 1.5, 0.05, frame="icrs"),
        maps=("counts", "exposure", "background", "psf", "edisp"),
        safe_mask=("aeff-default", "offset-max"),
    )


@pytest.fixture(scope="module")
def store(hess_dir):
    return open_datastore(hess_dir)


@pytest.fixture(scope="module")
def computed(store, spec):
    return reduce_runs(store.observations(RUNS), spec).compute(scheduler="threads")


def test_graph_construction_computes_nothing(store, spec, raise_on_compute, tmp_path):
    ds = reduce_runs(store.observations(RUNS), spec)
    stacked = ds.gamma.stack()
    assert ds["counts"].chunks[0] == (1, 1)  # one chunk per run
    assert isinstance(stacked["counts"].data, dask.array.Array)
    ds.gamma.to_zarr(tmp_path / "lazy.zarr", compute=False)
    with pytest.raises(RuntimeError, match="must stay lazy"):
        ds["counts"].sum().compute()


def test_lazy_equals_eager_per_run(store, spec, computed):
    for obs_id in RUNS:
        eager = reduce_observation(store.observation(obs_id), spec)
        run = computed.sel(obs_id=obs_id)
        for name in ("counts", "background", "exposure", "mask_safe", "psf", "edisp"):
            np.testing.assert_array_equal(run[name].values, eager[name].values)
    assert failed_runs(computed) == {}
    assert computed["livetime"].attrs["units"] == "s"
    assert computed["tstart"].attrs["MJDREFI"] == 51910  # MET reference kept
    assert computed["tstop"].attrs["TIMESYS"] == "TT"
    np.testing.assert_allclose(
        computed["livetime"].values, [store.observation(i).livetime for i in RUNS]
    )


def test_stack_numpy_equals_stack_dask(store, spec, computed):
    from gammaxr.io.run_status import settle_run_status

    # a lazy stack learns which runs contributed when computed (status -> attrs)
    lazy = settle_run_status(reduce_runs(store.observations(RUNS), spec).gamma.stack().compute())
    eager = computed.gamma.stack()
    xr.testing.assert_allclose(lazy, eager)
    assert lazy.attrs == eager.attrs and eager.attrs["stacked_obs_ids"] == list(RUNS)
    for name in ("energy_bounds", "energy_true_bounds", "rad_bounds", "lat_irf"):
        xr.testing.assert_identical(eager[name], computed[name])
    assert "obs_id" not in eager.dims and "livetime" not in eager.coords
    mask = computed["mask_safe"]
    assert float(eager["counts"].sum()) == float(computed["counts"].where(mask, 0).sum())


def test_distributed_local_cluster_matches_threads(store, spec, computed):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = client.compute(reduce_runs(store.observations(RUNS), spec)).result()
    xr.testing.assert_identical(result, computed)


def test_processes_scheduler_matches_threads(store, spec, computed):
    result = reduce_runs(store.observations(RUNS), spec).compute(scheduler="processes")
    xr.testing.assert_identical(result, computed)


def test_zarr_round_trip_identical(computed, tmp_path):
    path = tmp_path / "runs.zarr"
    computed.gamma.to_zarr(path)
    reopened = gammaxr.open_dataset(path)
    assert isinstance(reopened["counts"].data, dask.array.Array)
    xr.testing.assert_identical(reopened.compute(), computed)
    stacked = computed.gamma.stack()
    stacked.gamma.to_zarr(tmp_path / "stacked.zarr")
    xr.testing.assert_identical(gammaxr.open_dataset(tmp_path / "stacked.zarr").compute(), stacked)


def test_lazy_dataset_to_zarr_writes_runs(store, spec, computed, tmp_path):
    path = tmp_path / "lazy.zarr"
    reduce_runs(store.observations(RUNS), spec).gamma.to_zarr(path)
    xr.testing.assert_identical(gammaxr.open_dataset(path).compute(), computed)


def test_per_run_grids_tree(store):
    spec = ReductionSpec(
        energy_edges=np.geomspace(0.5, 50, 4),
        energy_true_edges=np.geomspace(0.3, 100, 5),
        width=2.0,
        binsz=0.1,
        safe_mask=("offset-max",),
        offset_max=0.8,
    )
    tree = reduce_runs_tree(store.observations(RUNS), spec)
    assert set(tree.children) == {f"obs_{i}" for i in RUNS}
    node = tree[f"obs_{RUNS[0]}"].to_dataset()
    obs = store.observation(RUNS[0])
    assert node["counts"].shape == (3, 20, 20)
    centre = node.gamma.grid.center
    assert centre.separation(obs.pointing).deg < 1e-6
    eager = reduce_observation(obs, spec)
    np.testing.assert_array_equal(node["counts"].values, eager["counts"].values)
    assert node.attrs["livetime"] == pytest.approx(obs.livetime)


def test_per_run_tree_coordinates_are_the_spec_coordinates_and_each_node_owns_them(store, spec):
    """Every node has the coordinates (and indexes) of ``spec.coords`` on its own grid; the
    axes shared by all runs are separate variables in each node (an attr set on one node's
    energy axis does not reach the other's)."""
    per_run = dataclasses.replace(spec, grid=None, width=1.0, binsz=0.05)
    tree = reduce_runs_tree(store.observations(RUNS), per_run)
    first, second = (tree[f"obs_{run}"].to_dataset() for run in RUNS)
    for node, run in ((first, RUNS[0]), (second, RUNS[1])):
        grid = gammaxr.reduce.dataset.run_grid(per_run, store.observation(run))
        plain = xr.Dataset(coords=per_run.coords(grid))
        assert xr.Dataset(coords=node.coords).identical(plain)
        assert set(node.xindexes) == set(plain.xindexes)
    first["energy"].attrs["note"] = "first only"
    assert first.coords["energy"].attrs["note"] == "first only"
    assert "note" not in second.coords["energy"].attrs
    assert "note" not in tree[f"obs_{RUNS[1]}"].to_dataset()["energy"].attrs


@pytest.fixture
def store_with_corrupt_run(tmp_path, hess_dir):
    from test_dl3_bad_input import RUN_FILE, make_store

    path = make_store(
        tmp_path, hess_dir, {1: {}, 2: {"events": ("events", "broken.fits.gz", "EVENTS")}, 3: {}}
    )
    data = (path / "data" / RUN_FILE).read_bytes()
    (path / "data" / "broken.fits.gz").write_bytes(data[: len(data) // 3])
    return open_datastore(path)


def test_corrupt_run_skipped_and_named(store_with_corrupt_run, spec):
    ds = reduce_runs(store_with_corrupt_run.observations(), spec, on_error="skip")
    with pytest.warns(RuntimeWarning, match="obs_id 2 skipped"):
        computed = ds.compute(scheduler="sync")
    failed = failed_runs(computed)
    assert list(failed) == [2]
    assert "broken.fits.gz" in failed[2]
    assert not computed["mask_safe"].sel(obs_id=2).any()
    good = computed.sel(obs_id=1)
    assert float(good["counts"].sum()) > 0
    np.testing.assert_array_equal(good["counts"].values, computed["counts"].sel(obs_id=3).values)
    stacked = computed.gamma.stack()
    assert float(stacked["counts"].sum()) == 2 * float(
        good["counts"].where(good["mask_safe"], 0).sum()
    )


def test_corrupt_run_raises_with_obs_id(store_with_corrupt_run, spec):
    ds = reduce_runs(store_with_corrupt_run.observations(), spec, on_error="raise")
    with pytest.raises(RunReductionError, match=r"obs_id 2: .*broken\.fits\.gz"):
        ds.compute(scheduler="sync")


def test_bad_arguments(store, spec):
    with pytest.raises(ValueError, match="on_error"):
        reduce_runs(store.observations(RUNS), spec, on_error="ignore")
    with pytest.raises(ValueError, match="no observations"):
        reduce_runs([], spec)
    with pytest.raises(ValueError, match="unknown maps"):
        ReductionSpec(energy_edges=[1, 2], energy_true_edges=[1, 2], maps=("countz",))
    with pytest.raises(ValueError, match="unknown safe-mask"):
        ReductionSpec(energy_edges=[1, 2], energy_true_edges=[1, 2], safe_mask=("aeff-min",))
    with pytest.raises(ValueError, match="increasing"):
        ReductionSpec(energy_edges=[2, 1], energy_true_edges=[1, 2])
    with pytest.raises(ValueError, match="duplicate obs_id"):
        reduce_runs(store.observations([RUNS[0], RUNS[0]]), spec)


def test_missing_dir_for_open_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="no zarr store"):
        gammaxr.open_dataset(tmp_path / "nothing.zarr")
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_run_reduction_error_survives_pickling():
    """The error crosses process boundaries (processes scheduler, workers) intact."""
    import pickle

    error = pickle.loads(pickle.dumps(RunReductionError(23523, "GTI stop before start")))
    assert isinstance(error, RunReductionError)
    assert (error.obs_id, error.reason) == (23523, "GTI stop before start")
    assert "obs_id 23523" in str(error)


def test_run_events_are_those_in_the_gtis():
    """The energies and positions a run bins are those of its events inside its GTIs
    (``[start, stop)`` widened by the spec's tolerance on both sides), when some events fall
    outside and when none does (then the columns themselves, not copies)."""
    from types import SimpleNamespace

    from gammaxr.reduce.dataset import run_events

    rng = np.random.default_rng(3)
    n = 500
    events = xr.Dataset(
        {name: ("event", rng.uniform(0, 10, n)) for name in ("energy", "ra", "dec", "time")}
    )
    time = events["time"].values
    for stops, tolerance in (([4.0, 9.0], 0.0), ([4.0, 9.0], 0.5), ([10.0, 10.0], 0.0)):
        gti = xr.Dataset({"start": ("gti", [0.0, 5.0]), "stop": ("gti", stops)})
        run = SimpleNamespace(events=events, gti=gti)
        got = run_events(run, SimpleNamespace(gti_tolerance=tolerance))  # what it reads
        inside = np.zeros(n, bool)
        for start, stop in zip([0.0, 5.0], stops, strict=True):
            inside |= (time >= start - tolerance) & (time < stop + tolerance)
        for column, name in zip(got, ("energy", "ra", "dec"), strict=True):
            np.testing.assert_array_equal(column, events[name].values[inside])
        assert (got[0].size < n) == (stops[0] < 5.0)
    assert np.shares_memory(got[0], events["energy"].values)  # all inside: no copy
