"""An observation's row of the observation table: the same Dataset as ``sel`` gives, held
compactly, sent to workers small, and made without an xarray selection per run."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import xarray as xr

from gammaxr.data import open_datastore
from gammaxr.data.obs_row import ObsTableRow, ObsTableRows
from gammaxr.data.observation import Observation
from gammaxr.io.errors import ObsIdNotFoundError


def _assert_rows_as_selected(store) -> None:
    table = store.obs_table
    for observation in store.observations():
        selected = table.sel(obs_id=observation.obs_id)
        info = observation.obs_info
        xr.testing.assert_identical(info, selected)
        for name, var in selected.variables.items():
            assert info[name].dtype == var.dtype, name
            assert not info[name].values.flags.writeable, name
            value = observation.obs_table_value(name)  # no Dataset built
            assert np.ndim(value) == var.ndim, name
            np.testing.assert_array_equal(value, var.values, err_msg=name)  # NaN == NaN here
            if var.ndim == 0:
                assert type(value) is type(var.item()), name
        assert observation.obs_table_value("no_such_column", default=-1) == -1


def test_obs_info_is_the_selected_row_simulated(simulated_store_dir):
    _assert_rows_as_selected(open_datastore(simulated_store_dir))


def test_obs_info_is_the_selected_row_hess(hess_dir):
    # 47 columns of floats, ints and text, header keywords in attrs
    store = open_datastore(hess_dir)
    _assert_rows_as_selected(store)
    observation = store.observation(store.obs_ids[0])
    row = store.obs_table.sel(obs_id=observation.obs_id)
    # metadata that falls back to the table reads the row's values
    assert observation._value("NOT_IN_HEADER_OR_TABLE") is None
    for name in ("ZEN_PNT", "LIVETIME", "ONTIME", "RA_PNT"):
        column = name.lower()
        assert observation._info.value(column) == row[column].item()


def test_rows_of_a_selection_follow_the_selection(simulated_store_dir):
    store = open_datastore(simulated_store_dir)
    ids = store.obs_ids
    subset = store.select_obs_ids(ids[::-1][:2])
    for obs_id in ids[::-1][:2]:
        xr.testing.assert_identical(
            subset.observation(obs_id).obs_info, store.obs_table.sel(obs_id=obs_id)
        )
    with pytest.raises(ObsIdNotFoundError, match=str(ids[-3])):
        subset.observation(ids[-3])


def test_row_pickles_to_the_same_row(simulated_store_dir):
    observations = open_datastore(simulated_store_dir).observations()
    copies = pickle.loads(pickle.dumps(observations))
    for copy, observation in zip(copies, observations, strict=True):
        xr.testing.assert_identical(copy.obs_info, observation.obs_info)
        assert copy.livetime == observation.livetime
        assert copy.time_attrs == observation.time_attrs
    # the rows of one task share their columns: sent once per task, not once per run
    assert copies[0]._info._columns is copies[-1]._info._columns


def test_many_rows_pickle_small(simulated_store_dir, tmp_path):
    # a 400-run store (the 4 simulated runs' rows, repeated): what a batched run task sends
    store = open_datastore(simulated_store_dir)
    table = store.obs_table
    many = xr.concat([table] * 100, dim="obs_id")
    many = many.assign_coords(obs_id=np.arange(1, many.sizes["obs_id"] + 1))
    rows = ObsTableRows(many)
    batch = [rows.row(i) for i in range(1, 401)]
    per_row = len(pickle.dumps(batch)) / len(batch)
    one_dataset = len(pickle.dumps(table.sel(obs_id=table["obs_id"].values[0])))
    # each row: its values only (the shared columns once); a Dataset per row was ~4 kB
    assert per_row < one_dataset / 5
    xr.testing.assert_identical(batch[-1].to_dataset(), many.sel(obs_id=400))


def test_observation_from_a_dataset_row(simulated_store_dir):
    store = open_datastore(simulated_store_dir)
    lazy = store.observations()[0]
    row = store.obs_table.sel(obs_id=lazy.obs_id)
    made = Observation(lazy.obs_id, row, lazy.hdus)
    xr.testing.assert_identical(made.obs_info, row)
    assert made.livetime == lazy.livetime
    empty = Observation(7, xr.Dataset(), {})
    xr.testing.assert_identical(empty.obs_info, xr.Dataset())
    with pytest.raises(ValueError, match="0-d variables; 'obs_id' has dims"):
        ObsTableRow.from_dataset(store.obs_table)


def test_table_listing_a_run_twice_is_refused(simulated_store_dir):
    table = open_datastore(simulated_store_dir).obs_table
    twice = xr.concat([table, table.isel(obs_id=[0])], dim="obs_id")
    with pytest.raises(ValueError, match=r"obs_id\(s\) \[" + str(int(table.obs_id[0]))):
        ObsTableRows(twice)
    with pytest.raises(ValueError, match="needs an obs_id dim"):
        ObsTableRows(table.isel(obs_id=0))


def test_row_value_of_a_missing_column_raises(simulated_store_dir):
    observation = open_datastore(simulated_store_dir).observations()[0]
    assert "livetime" in observation._info
    assert "no_such_column" not in observation._info
    with pytest.raises(KeyError):
        observation._info.value("no_such_column")


def test_a_file_named_by_many_hdus_is_one_string(hess_dir):
    # each H.E.S.S. run keeps its events, GTI and IRFs in one file: one path object per run,
    # held once and pickled once per run task
    observations = open_datastore(hess_dir).observations()
    for observation in observations[:5]:
        paths = {id(location.path) for location in observation.hdus.values()}
        assert len(observation.hdus) == 6
        assert len(paths) == 1
    copies = pickle.loads(pickle.dumps(observations[:5]))
    for copy, observation in zip(copies, observations[:5], strict=True):
        assert copy.hdus == observation.hdus
        assert len({id(location.path) for location in copy.hdus.values()}) == 1


def test_row_with_a_column_of_dims_and_a_constant():
    # a table variable with a second dim gives each row an array; one without obs_id is the
    # same in every row; datetimes and text keep their dtypes through a pickle
    table = xr.Dataset(
        {
            "livetime": ("obs_id", np.array([10.0, 20.0], dtype=np.float32), {"units": "s"}),
            "tels": (("obs_id", "tel"), np.array([[1, 2, 3], [4, 5, 6]])),
            "start": ("obs_id", np.array(["2024-01-01T00:00", "NaT"], dtype="datetime64[ns]")),
            "target": ("obs_id", np.array(["Crab", "PKS 2155-304"])),
            "instrument": ((), "toy"),
        },
        coords={"obs_id": [7, 9]},
        attrs={"MJDREFI": 51910},
    )
    rows = ObsTableRows(table)
    for obs_id in (7, 9):
        row = rows.row(obs_id)
        assert sorted(row) == ["instrument", "livetime", "obs_id", "start", "target", "tels"]
        copy = pickle.loads(pickle.dumps(row))
        for each in (row, copy):
            xr.testing.assert_identical(each.to_dataset(), table.sel(obs_id=obs_id))
            assert each.value("instrument") == "toy"
            each.to_dataset()["instrument"].attrs["changed"] = True  # a copy, not the table's
            assert "changed" not in each.to_dataset()["instrument"].attrs
            assert each.attrs == {"MJDREFI": 51910}
    np.testing.assert_array_equal(rows.row(9).value("tels"), [4, 5, 6])
    assert rows.row(9).value("target") == "PKS 2155-304"
    assert np.isnat(pickle.loads(pickle.dumps(rows.row(9))).to_dataset()["start"].values)
    with pytest.raises(KeyError):
        rows.row(8)
