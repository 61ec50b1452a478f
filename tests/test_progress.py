"""Progress: bars on local schedulers, distributed and loops; the context stays per thread;
the dashboard of gammaxr's local cluster answers."""

from __future__ import annotations

import threading
import urllib.request

import dask.array as da
import numpy as np
import pytest

import gammaxr  # noqa: F401  (registers ds.gamma)
from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.progress import compute, progress_enabled, show_progress, track
from gammaxr.testing import toy_map_dataset


def _array():
    return da.arange(1000, chunks=100).sum()


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_compute_shows_a_dask_progress_bar_when_asked(scheduler, capsys):
    (value,) = compute(_array(), progress=True, scheduler=scheduler)
    assert value == 499500
    assert "100% Completed" in capsys.readouterr().err
    (value,) = compute(_array(), progress=False, scheduler=scheduler)
    assert value == 499500
    assert capsys.readouterr().err == ""


def test_the_bar_is_a_callback_of_one_compute_not_a_global():
    from dask.callbacks import Callback

    before = set(Callback.active)
    with show_progress():
        compute(_array())
        assert set(Callback.active) == before


def test_context_applies_to_this_thread_only(capsys):
    seen = {}

    def other_thread():
        seen["other"] = progress_enabled()
        compute(_array())

    assert not progress_enabled()
    with show_progress():
        assert progress_enabled() and not progress_enabled(False)
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert seen["other"] is False
        assert capsys.readouterr().err == ""  # the other thread's compute stayed quiet
        compute(_array())
        assert "Completed" in capsys.readouterr().err
    assert not progress_enabled()


def test_track_wraps_loops_in_tqdm(capsys):
    items = [1, 2, 3]
    assert track(items, False) is items
    assert list(track(items, True, desc="bins")) == items
    assert "bins" in capsys.readouterr().err


def test_flux_points_and_ts_map_report_progress(capsys):
    ds = toy_map_dataset(center=(83.63, 22.01), width=1.0)
    src = SkyModel(
        PowerLaw(index=2.5, amplitude="5e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=83.63, lat_0=22.01),
        name="src",
    )
    models = Models([src, FoVBackgroundModel("toy")])
    ds = ds.assign(
        counts=ds.gamma.npred(models)
        .transpose(*ds["counts"].dims)
        .drop_vars(["energy_lo", "energy_hi"])
    )
    with show_progress():
        points = ds.gamma.flux_points(models, source="src")
        ds.gamma.ts_map(Models([FoVBackgroundModel("toy")]))
    err = capsys.readouterr().err
    assert "flux points" in err and "TS map rows" in err
    quiet = ds.gamma.flux_points(models, source="src")
    assert capsys.readouterr().err == ""
    np.testing.assert_allclose(quiet["norm"], points["norm"])


def test_local_cluster_dashboard_answers_and_distributed_progress(capsys):
    from distributed import Client

    from gammaxr.reduce.cluster import local_cluster

    with local_cluster(n_workers=1) as cluster, Client(cluster) as client:
        link = cluster.dashboard_link
        with urllib.request.urlopen(link, timeout=30) as response:
            assert response.status == 200
        assert client.dashboard_link == link
        (value,) = compute(_array(), progress=True)  # the client is dask's scheduler here
        assert value == 499500
    captured = capsys.readouterr()
    assert "100% Completed" in captured.out + captured.err


@pytest.fixture
def dask_compute_calls(monkeypatch):
    """The collections given to ``dask.compute`` by :func:`gammaxr.progress.compute`."""
    import dask

    import gammaxr.progress as module

    calls = []
    real = dask.compute

    def recording(*collections, **kwargs):
        calls.extend(collections)
        return real(*collections, **kwargs)

    monkeypatch.setattr(module.dask, "compute", recording)
    return calls


@pytest.mark.parametrize("progress", [False, True])
def test_dataarrays_are_computed_as_their_dask_arrays(progress, dask_compute_calls):
    import xarray as xr

    values = np.arange(12.0).reshape(3, 4)
    lazy = xr.DataArray(
        da.from_array(values, chunks=2),
        dims=("y", "x"),
        coords={"y": [1, 2, 3], "label": ("x", list("abcd"))},
        attrs={"units": "m"},
    )
    total, same, plain = compute(lazy.sum(), lazy * 2, 7, progress=progress)
    # dask got the arrays, not the DataArrays (whose finalize would carry their graph)
    assert [type(g) for g in dask_compute_calls] == [da.Array, da.Array, int]
    assert isinstance(total, xr.DataArray) and float(total) == values.sum()
    xr.testing.assert_identical(same, (lazy * 2).compute())
    assert plain == 7


def test_datasets_are_computed_as_the_dask_arrays_of_their_variables(dask_compute_calls):
    import xarray as xr

    values = np.arange(12.0).reshape(3, 4)
    ds = xr.Dataset(
        {
            "lazy": (("y", "x"), da.from_array(values, chunks=2), {"units": "m"}),
            "eager": (("y", "x"), values + 1),
            "other": ("x", da.from_array(values[0], chunks=3)),
        },
        coords={"y": [1, 2, 3]},
        attrs={"name": "test"},
    )
    lazy_coords = ds.assign_coords(z=("x", da.from_array(values[1], chunks=2)))
    computed, numpy_only, with_lazy_coords, array = compute(
        ds, ds.compute(), lazy_coords, ds["lazy"] * 2
    )
    # the Dataset's two dask variables went to dask as arrays, in order, then the rest
    assert [type(g) for g in dask_compute_calls] == [
        da.Array,
        da.Array,
        xr.Dataset,
        xr.Dataset,
        da.Array,
    ]
    xr.testing.assert_identical(computed, ds.compute())
    assert all(v.chunks is None for v in computed.variables.values())
    assert computed["lazy"].attrs == {"units": "m"} and computed.attrs == {"name": "test"}
    xr.testing.assert_identical(numpy_only, ds.compute())
    xr.testing.assert_identical(with_lazy_coords, lazy_coords.compute())
    np.testing.assert_array_equal(array, values * 2)
