"""The per-stage profile of ``benchmarks/reduce_all_runs.py --profile`` stays in step with
the reduction: every function it times exists and is called when runs are reduced."""

from __future__ import annotations

import sys
from pathlib import Path

import dask
import numpy as np
import pytest

from gammaxr.data import open_datastore
from gammaxr.reduce.dataset import ReductionSpec
from gammaxr.reduce.runs import reduce_runs_tree

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def stage_profile():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import stage_profile
    finally:
        sys.path.remove(str(BENCHMARKS))
    yield stage_profile
    stage_profile.uninstall()  # run after the test, passed or failed


def test_every_stage_is_timed_when_runs_are_reduced(stage_profile, simulated_store_dir):
    stage_profile.install()  # before the graph: its tasks hold the functions they call
    spec = ReductionSpec(
        energy_edges=np.geomspace(0.5, 20, 4),
        energy_true_edges=np.geomspace(0.3, 50, 6),
        width=2.0,
        binsz=0.1,
        frame="icrs",
        maps=("counts", "exposure", "background", "psf", "edisp"),
        safe_mask=("aeff-default", "offset-max"),
        offset_max=2.0,
    )
    store = open_datastore(simulated_store_dir)
    tree = reduce_runs_tree(store.observations(), spec)
    with dask.config.set(scheduler="sync"):
        dask.compute(*(node.dataset["counts"].data for node in tree.children.values()))
    profile = stage_profile.collect()
    labels = {stage for stage, _, _ in stage_profile.STAGES}
    assert set(profile["stages"]) == labels
    assert all(calls > 0 for calls, _, _ in profile["stages"].values())
    assert profile["run_tasks"] > 0
