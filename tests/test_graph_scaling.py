"""The graph of ``reduce_runs`` grows by tasks, not by layers or Python objects, per run;
runs batched into tasks (``runs_per_task``) give the same values and name their failures."""

from __future__ import annotations

import pickle

import dask
import numpy as np
import pytest
from dask.sizeof import sizeof

from gammaxr.data import open_datastore
from gammaxr.geom import SkyGrid
from gammaxr.reduce.dataset import ReductionSpec
from gammaxr.reduce.runs import (
    _run_block,
    failed_runs,
    reduce_runs,
    reduce_runs_tree,
    runs_per_task,
    stacked_run_variables,
)


@pytest.fixture(scope="module")
def spec():
    return ReductionSpec(
        energy_edges=np.geomspace(0.5, 20, 4),
        energy_true_edges=np.geomspace(0.3, 50, 6),
        grid=SkyGrid.from_center((83.633, 22.014), 2.0, 0.1, frame="icrs"),
        safe_mask=("offset-max",),
        offset_max=2.0,
    )


def test_reduce_runs_graph_is_blockwise_with_one_task_per_run(simulated_store_dir, spec):
    observations = open_datastore(simulated_store_dir).observations()
    graphs = {}
    for n in (1, len(observations)):
        ds = reduce_runs(observations[:n], spec)
        graph = ds["counts"].data.__dask_graph__()
        graphs[n] = graph
        assert ds["counts"].data.chunks[0] == (1,) * n
        # the runs, their tasks, the counts picked from them: three layers whatever n
        assert len(graph.layers) == 3
        assert len(dict(graph)) == 3 * n
    # every variable reads the same run tasks: computing two variables runs each run once
    ds = reduce_runs(observations, spec)
    keys = set(ds["counts"].data.__dask_graph__()) & set(ds["exposure"].data.__dask_graph__())
    assert len(keys) == 2 * len(observations)
    assert list(ds.obs_id.values) == [int(o.obs_id) for o in observations]


class _Run:
    """Stands for an observation: all a per-run computation of these tests needs."""

    def __init__(self, obs_id: int):
        self.obs_id = obs_id


def _compute(run: _Run) -> dict:
    if run.obs_id == 3:
        raise OSError("events HDU unreadable")
    return {"x": np.full((2, 3), float(run.obs_id)), "n": np.array([run.obs_id])}


LAYOUT = {
    "x": (("a", "b"), (2, 3), np.dtype(float), {"units": "m"}),
    "n": (("c",), (1,), np.dtype(int), {}),
}


def test_batched_reduction_equals_one_task_per_run(simulated_store_dir, spec, raise_on_compute):
    observations = open_datastore(simulated_store_dir).observations()
    batched = reduce_runs(observations, spec, runs_per_task=3)  # nothing computed here
    single = reduce_runs(observations, spec, runs_per_task=1)
    assert batched["counts"].chunks[0] == (3, 1)
    assert single["counts"].chunks[0] == (1, 1, 1, 1)
    with dask.config.set(scheduler="sync"):
        batched, single = dask.compute(batched, single)
    assert float(single["counts"].sum()) > 0
    for name in ("counts", "exposure", "background", "mask_safe", "reduce_error"):
        np.testing.assert_array_equal(batched[name].values, single[name].values)
    assert failed_runs(batched) == {}


def test_a_failed_run_does_not_fail_its_batch():
    runs = [_Run(i) for i in (1, 2, 3, 4, 5)]
    with pytest.warns(RuntimeWarning, match="obs_id 3 skipped"):
        data_vars = stacked_run_variables(runs, _compute, LAYOUT, "skip", batch=2)
        (x, n, errors) = dask.compute(*(data_vars[k][1] for k in ("x", "n", "reduce_error")))
    assert data_vars["x"][0] == ("obs_id", "a", "b")
    assert data_vars["x"][1].chunks[0] == (2, 2, 1)
    np.testing.assert_array_equal(x[:, 0, 0], [1, 2, 0, 4, 5])  # run 3: zeros
    np.testing.assert_array_equal(n[:, 0], [1, 2, 0, 4, 5])
    assert [bool(e) for e in errors] == [False, False, True, False, False]
    assert "OSError: events HDU unreadable" in errors[2]


def test_a_failed_run_raises_naming_it_under_raise():
    data_vars = stacked_run_variables([_Run(2), _Run(3)], _compute, LAYOUT, "raise", batch=2)
    with pytest.raises(Exception, match="obs_id 3: reduction failed: OSError"):
        data_vars["x"][1].compute(scheduler="sync")


def test_batch_result_reports_its_true_size():
    # distributed places tasks by the sizes of their inputs: an object array holding the
    # results would count as 8 bytes and be moved between workers as if free
    result = _run_block(np.array([_Run(1), _Run(2)], dtype=object), _compute, LAYOUT, "raise")
    assert result["x"].shape == (2, 2, 3)
    assert sizeof(result) >= result["x"].nbytes + result["n"].nbytes


def test_runs_per_task_rule():
    assert runs_per_task(4, 10**6) == 1
    assert runs_per_task(64, 10**6) == 1
    assert runs_per_task(1000, 10**6) == 16  # about 64 tasks
    assert runs_per_task(10_000, 10**6, chunk_bytes="16 MB") == 16  # capped by memory
    assert runs_per_task(10_000, 10**9) == 1  # a run larger than a chunk: alone
    with pytest.raises(ValueError, match="at least 1"):
        stacked_run_variables([_Run(1)], _compute, LAYOUT, "raise", batch=0)


def test_tree_picks_fuse_with_their_consumer(simulated_store_dir, spec):
    # one task per run plus the sum's own two stages: picking counts out of the run's
    # results is fused into the sum, not two more tasks per run and variable
    observations = open_datastore(simulated_store_dir).observations()
    tree_spec = ReductionSpec(
        energy_edges=spec.energy_edges,
        energy_true_edges=spec.energy_true_edges,
        width=2.0,
        binsz=0.1,
        safe_mask=("offset-max",),
        offset_max=2.0,
    )
    tree = reduce_runs_tree(observations, tree_spec)
    sums = [node["counts"].data.sum() for node in tree.children.values()]
    graph = dask.base.collections_to_expr(sums).optimize().__dask_graph__()
    assert len(dict(graph)) <= 3 * len(observations)
    (values,) = dask.compute(sums, scheduler="sync")
    assert sum(float(v) for v in values) > 0


def test_observation_pickles_with_plain_pickle(simulated_store_dir):
    # distributed tries pickle before cloudpickle: a run task must not fail it part-way
    observation = open_datastore(simulated_store_dir).observations()[0]
    header = dict(observation.meta)  # read and cached before pickling
    copy = pickle.loads(pickle.dumps(observation))
    assert "meta" not in copy.__dict__  # the cached header is not sent: read again if asked
    assert copy.obs_id == observation.obs_id
    assert copy.files == observation.files
    assert dict(copy.meta) == header
    assert copy.livetime == observation.livetime
    with pytest.raises(TypeError):
        copy.meta["OBS_ID"] = 0  # still read-only
    with pytest.raises(TypeError):
        copy.hdus["events"] = None


def test_graph_construction_reads_only_the_events_headers(simulated_store_dir, spec, monkeypatch):
    # the boundary of docs/architecture.md: the indexes and one events header per run (the
    # per-run coordinates), no event, GTI or IRF data
    import builtins

    observations = open_datastore(simulated_store_dir).observations()
    events = {str(o.hdus["events"].path) for o in observations}
    irfs = {str(o.hdus[h].path) for o in observations for h in ("aeff", "bkg", "psf", "edisp")}
    assert irfs.isdisjoint(events)  # the simulated store keeps the IRFs in their own file
    opened = []
    real_open = builtins.open

    def recording_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    reduce_runs(observations, spec)
    monkeypatch.undo()
    assert set(opened) <= events
    assert events <= set(opened)
