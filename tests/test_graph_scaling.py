"""The graph of ``reduce_runs`` grows by tasks, not by layers or Python objects, per run."""

from __future__ import annotations

import numpy as np
import pytest

from gammaxr.data import open_datastore
from gammaxr.geom import SkyGrid
from gammaxr.reduce.dataset import ReductionSpec
from gammaxr.reduce.runs import reduce_runs


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
