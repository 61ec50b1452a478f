"""Stacked metadata tells the truth: only contributing runs in stacked_obs_ids and the totals.

Simulated runs (no external data); one run's event file is truncated so that its reduction
fails (``on_error="skip"``), another run is given an empty safe mask.
"""

from __future__ import annotations

import shutil
import warnings

import dask
import numpy as np
import pytest
import xarray as xr

import gammaxr
from gammaxr.analysis import demo_description, run_analysis
from gammaxr.data import open_datastore
from gammaxr.io.run_status import RUN_DIM, settle_run_status
from gammaxr.reduce.runs import failed_runs, reduce_runs
from gammaxr.reduce.stack import stack_runs
from test_store_faults import fault_spec

LIVETIME = 300.0  # of each simulated run (conftest's simulated_store_dir)


@pytest.fixture(scope="module")
def broken_store(simulated_store_dir, tmp_path_factory):
    """A copy of the simulated store whose run 3 has a truncated event file."""
    path = tmp_path_factory.mktemp("broken") / "store"
    shutil.copytree(simulated_store_dir, path)
    events = path / "data" / "obs_000003.fits.gz"
    events.write_bytes(events.read_bytes()[:2000])
    return path


def _config(datastore, obs_ids=None) -> dict:
    data = demo_description(datastore)
    for key in ("fit", "estimators"):
        data.pop(key)
    data["plots"] = False
    data["grid"]["width"] = 2.0
    data["reduction"]["on_error"] = "skip"
    data["reduction"]["maps"] = ["counts", "exposure", "background"]
    data["observations"] = {"obs_ids": obs_ids} if obs_ids else {}
    data["compute"] = {"scheduler": "synchronous"}
    return data


def test_analysis_lists_only_contributing_runs(broken_store, simulated_store_dir, tmp_path):
    with pytest.warns(RuntimeWarning, match="obs_id 3 skipped"):
        results = run_analysis(_config(broken_store), tmp_path / "out")
    assert results.attrs["obs_ids"] == [1, 2, 4]
    assert results.attrs["livetime_s"] == pytest.approx(3 * LIVETIME)
    assert results.attrs["skipped_obs_ids"] == [3]
    assert "obs_000003.fits.gz" in results.attrs["skipped_reasons"][0]
    stacked = gammaxr.open_dataset(tmp_path / "out" / "stacked.zarr")
    assert stacked.attrs["stacked_obs_ids"] == [1, 2, 4]
    assert stacked.attrs["livetime_total"] == pytest.approx(3 * LIVETIME)
    assert stacked.attrs["skipped_obs_ids"] == [3] and RUN_DIM not in stacked.dims
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "3 runs [1, 2, 4]" in summary and "livetime 0.25 h" in summary
    assert "skipped runs (1" in summary and "obs_id 3: " in summary
    # the data are those of the three good runs
    good = run_analysis(_config(simulated_store_dir, [1, 2, 4]), tmp_path / "good")
    assert results.attrs["counts_total"] == good.attrs["counts_total"] > 0
    # in memory (no output directory): the same record
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        in_memory = run_analysis(_config(broken_store))
    for name in ("obs_ids", "livetime_s", "skipped_obs_ids", "skipped_reasons"):
        assert in_memory.attrs[name] == results.attrs[name]


@pytest.fixture(scope="module")
def spec():
    return fault_spec()


def test_lazy_stack_carries_status_until_computed(broken_store, spec, raise_on_compute):
    runs = open_datastore(broken_store).observations()
    stacked = reduce_runs(runs, spec, on_error="skip").gamma.stack()
    # nothing known yet: no false statement in the attrs, lazy status variables instead
    assert "stacked_obs_ids" not in stacked.attrs and "livetime_total" not in stacked.attrs
    assert isinstance(stacked["run_contributes"].data, dask.array.Array)
    assert list(stacked[RUN_DIM].values) == [1, 2, 3, 4]
    np.testing.assert_allclose(stacked["run_livetime"].values, LIVETIME)


def test_settled_status_and_empty_safe_mask(broken_store, spec):
    runs = open_datastore(broken_store).observations()
    lazy = reduce_runs(runs, spec, on_error="skip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        computed = lazy.compute(scheduler="sync")
        settled = settle_run_status(lazy.gamma.stack().persist(scheduler="sync"))
    assert settled.attrs["stacked_obs_ids"] == [1, 2, 4]
    assert list(failed_runs(computed)) == [3]
    # run 2 with an empty safe mask does not contribute either
    mask = computed["mask_safe"].copy(data=computed["mask_safe"].values.copy())
    mask.loc[{"obs_id": 2}] = False
    stacked = stack_runs(computed.assign(mask_safe=mask))
    assert stacked.attrs["stacked_obs_ids"] == [1, 4]
    assert stacked.attrs["livetime_total"] == pytest.approx(2 * LIVETIME)
    assert stacked.attrs["skipped_obs_ids"] == [2, 3]
    reasons = stacked.attrs["skipped_reasons"]
    assert reasons[0] == "no safe pixel (empty safe mask)" and "obs_000003.fits.gz" in reasons[1]
    xr.testing.assert_allclose(
        settled["counts"], stack_runs(computed.sel(obs_id=[1, 2, 4]))["counts"]
    )


def test_failed_runs_never_reduces_again(broken_store, spec, tmp_path, monkeypatch):
    runs = open_datastore(broken_store).observations()
    reads = []
    original = type(runs[0]).read

    def counted_read(self, *args, **kwargs):
        reads.append(int(self.obs_id))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(runs[0]), "read", counted_read)
    lazy = reduce_runs(runs, spec, on_error="skip")
    with pytest.raises(ValueError, match="would reduce every run"):
        failed_runs(lazy)
    assert reads == []
    with pytest.warns(RuntimeWarning, match="obs_id 3 skipped"):
        persisted = lazy.persist(scheduler="sync")
    assert sorted(reads) == [1, 2, 3, 4]
    failed = failed_runs(persisted)  # persisted: read, nothing reduced again
    assert list(failed) == [3] and "obs_000003.fits.gz" in failed[3]
    with dask.config.set(scheduler="sync"):
        persisted.gamma.stack().gamma.to_zarr(tmp_path / "stacked.zarr")
    assert sorted(reads) == [1, 2, 3, 4]
    assert failed_runs(gammaxr.open_dataset(tmp_path / "stacked.zarr")) == failed
    with pytest.warns(RuntimeWarning, match="obs_id 3 skipped"):
        assert failed_runs(lazy, compute=True) == failed  # says it reduces: it does
    assert len(reads) == 8
