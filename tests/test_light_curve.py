"""Light curves from per-run datasets: constant source, an injected flare, time intervals
(MET, MJD, astropy Time), agreement with flux points, dask, and the Crab runs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from astropy.time import Time, TimeDelta

import gammaxr.accessors  # noqa: F401
from gammaxr.estimators.flux_points import flux_points
from gammaxr.estimators.light_curve import light_curve, met_reference
from gammaxr.models import Models, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.testing import simulate_counts, toy_map_dataset

MJDREF = {"MJDREFI": 51910, "MJDREFF": 7.428703703703703e-4, "TIMESYS": "TT"}
N_RUNS = 6
FLARE = 3  # index of the run with a flare
T0 = 1000.0 + 3600.0 * np.arange(N_RUNS)  # run starts, MET s; each run lasts 1800 s
OBS_IDS = np.arange(100, 100 + N_RUNS)


def _source(factor: float = 1.0) -> SkyModel:
    return SkyModel(
        PowerLaw(index=2.5, amplitude=5e-11 * factor),
        PointSpatialModel(lon_0=83.63, lat_0=22.01),
        name="src",
    )


def _runs(flare_factor: float, seed: int = 0) -> xr.Dataset:
    toy = toy_map_dataset(exposure=1e9, width=1.2)
    runs = [
        simulate_counts(toy, _source(flare_factor if i == FLARE else 1.0), seed + i)
        for i in range(N_RUNS)
    ]
    ds = xr.concat(runs, dim="obs_id").assign_coords(
        obs_id=OBS_IDS, tstart=("obs_id", T0), tstop=("obs_id", T0 + 1800.0)
    )
    ds["tstart"].attrs.update(units="s", **MJDREF)
    ds["tstop"].attrs.update(units="s")
    return ds


@pytest.fixture(scope="module")
def constant():
    return _runs(1.0, seed=10)


@pytest.fixture(scope="module")
def flaring():
    return _runs(3.0, seed=20)


def test_constant_source_norms_consistent_with_one(constant):
    lc = light_curve(constant, _source())
    assert lc.sizes == {"time_bin": N_RUNS, "energy": 1, "bnds": 2}
    np.testing.assert_allclose(lc["energy_bounds"][0], [1.0, 10.0])
    pulls = ((lc["norm"] - 1.0) / lc["norm_err"]).values
    assert np.all(np.abs(pulls) < 4)
    assert np.sum(pulls**2) / N_RUNS < 3
    assert lc["success"].all()
    np.testing.assert_array_equal(lc["obs_ids"], [str(i) for i in OBS_IDS])
    np.testing.assert_array_equal(lc["n_runs"], 1)


def test_flare_is_detected(flaring):
    lc = light_curve(flaring, _source())
    norm, err = lc["norm"][:, 0].values, lc["norm_err"][:, 0].values
    assert np.argmax(norm) == FLARE
    assert abs(norm[FLARE] - 3.0) < 4 * err[FLARE]
    assert (norm[FLARE] - 1.0) / err[FLARE] > 5
    others = np.delete(np.arange(N_RUNS), FLARE)
    assert np.all(np.abs(norm[others] - 1.0) < 4 * err[others])
    np.testing.assert_allclose(lc["flux"], lc["norm"] * lc["ref_flux"])


def test_intervals_group_runs_like_joint_flux_points(flaring):
    intervals = [[T0[0], T0[2] + 1800.0], [T0[3], T0[5] + 1800.0]]
    lc = light_curve(flaring, _source(), intervals, time_format="met", energy_edges=[1, 2, 10])
    assert lc.sizes["time_bin"] == 2 and lc.sizes["energy"] == 2
    np.testing.assert_array_equal(lc["n_runs"], [3, 3])
    first = flux_points(flaring.isel(obs_id=[0, 1, 2]), _source(), [1, 2, 10])
    np.testing.assert_allclose(lc["norm"][0], first["norm"], rtol=1e-10)
    np.testing.assert_allclose(lc["ts"][0], first["ts"], rtol=1e-10)
    np.testing.assert_allclose(lc["norm_ul"][0], first["norm_ul"], rtol=1e-8)


def test_runs_must_lie_inside_intervals(constant):
    intervals = [
        [T0[0] - 10.0, T0[0] + 900.0],  # cuts run 0: no run inside, dropped
        [T0[1] - 10.0, T0[2] + 1800.0],  # runs 1 and 2
        [1e8, 2e8],  # nothing
    ]
    lc = light_curve(constant, _source(), intervals, time_format="met")
    assert lc.sizes["time_bin"] == 1
    assert str(lc["obs_ids"].values[0]) == "101,102"
    with pytest.raises(ValueError, match="no run"):
        light_curve(constant, _source(), [[1e8, 2e8]], time_format="met")


def test_times_in_mjd_and_astropy(constant):
    ref = met_reference(constant)
    assert ref.scale == "tt"
    assert ref.mjd == pytest.approx(51910 + 7.428703703703703e-4, abs=1e-12)
    lc = light_curve(constant, _source())
    np.testing.assert_allclose(lc["time_min"], ref.mjd + T0 / 86400.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lc["time_max"], ref.mjd + (T0 + 1800.0) / 86400.0, atol=1e-9)
    assert lc["time_min"].attrs["format"] == "mjd"
    mjd = [[ref.mjd + T0[1] / 86400 - 1e-4, ref.mjd + T0[2] / 86400 + 0.03]]
    by_mjd = light_curve(constant, _source(), mjd)
    by_time = light_curve(
        constant,
        _source(),
        [(Time(a, format="mjd", scale="tt"), Time(b, format="mjd", scale="tt")) for a, b in mjd],
    )
    assert str(by_mjd["obs_ids"].values[0]) == "101,102"
    xr.testing.assert_allclose(by_mjd, by_time)


def test_without_time_reference(constant):
    plain = constant.assign_coords(tstart=("obs_id", T0))  # no MJDREF attrs
    lc = light_curve(plain, _source())
    assert "time_min" not in lc.coords and "tstart" in lc.coords
    with pytest.raises(ValueError, match="reference"):
        light_curve(plain, _source(), [[50000.0, 60000.0]])
    given = light_curve(plain, _source(), time_reference=51910.0)
    assert given["time_min"][0] == pytest.approx(51910.0 + T0[0] / 86400.0)


def test_numpy_and_dask_agree(flaring):
    eager = light_curve(flaring, _source())
    lazy = light_curve(flaring.chunk({"obs_id": 1}), _source())
    xr.testing.assert_allclose(eager, lazy)
    xr.testing.assert_allclose(flaring.gamma.light_curve(_source()), eager)


def test_bad_inputs(constant):
    with pytest.raises(ValueError, match="obs_id"):
        light_curve(constant.isel(obs_id=0), _source())
    with pytest.raises(ValueError, match="tstop"):
        light_curve(constant.drop_vars("tstop"), _source())
    with pytest.raises(ValueError, match="shape"):
        light_curve(constant, _source(), [1.0, 2.0, 3.0], time_format="met")
    with pytest.raises(ValueError, match="time_format"):
        light_curve(constant, _source(), [[1.0, 2.0]], time_format="jd")


@pytest.mark.hess
def test_crab_runs_constant(hess_dir):
    """Four Crab runs, one time bin each: norms of the stacked best fit agree within errors."""
    from gammaxr.data import open_datastore
    from gammaxr.geom import SkyGrid
    from gammaxr.models import FoVBackgroundModel
    from gammaxr.reduce.dataset import ReductionSpec
    from gammaxr.reduce.runs import reduce_runs

    spec = ReductionSpec(
        energy_edges=np.geomspace(1, 10, 5),
        energy_true_edges=np.geomspace(0.5, 20, 11),
        grid=SkyGrid.from_center((83.63, 22.01), 2.0, 0.04),
        maps=("counts", "exposure", "background", "psf", "edisp"),
        safe_mask=("offset-max", "aeff-max"),
        offset_max=2.5,
    )
    ids = [23523, 23526, 23559, 23592]
    observations = open_datastore(hess_dir).observations(ids)
    runs = reduce_runs(observations, spec)
    first = observations[0]
    epoch = first.time_start - TimeDelta(first.tstart, format="sec")  # MET zero point
    runs = runs.gamma.fov_background("icrs; circle(83.63, 22.14, 0.2)", method="fit").compute()
    crab = SkyModel(
        PowerLaw(index=2.6, amplitude=4.5e-11),
        PointSpatialModel(lon_0=83.62, lat_0=22.02),
        name="crab",
    )
    result = runs.gamma.stack().gamma.fit(Models([crab, FoVBackgroundModel("stacked")]))
    lc = runs.gamma.light_curve([result.models["crab"]], time_reference=epoch)
    assert lc.sizes["time_bin"] == 4
    assert np.all(np.diff(lc["time_min"].values) > 0)
    assert lc["time_min"][0] > 53000  # 2004
    pulls = ((lc["norm"] - 1.0) / lc["norm_err"]).values
    assert np.all(np.abs(pulls) < 4)
    assert np.all(lc["sqrt_ts"] > 10)
