"""Fits on simulated datasets with known truth: recovery, pulls, results, failures, joint fits."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import gammaxr.accessors  # noqa: F401
from gammaxr.fit import FitResult, fit
from gammaxr.models import (
    FoVBackgroundModel,
    GaussianSpatialModel,
    Models,
    PointSpatialModel,
    PowerLaw,
    SkyModel,
)
from gammaxr.testing import simulate_counts, toy_map_dataset, toy_spectrum_dataset

CENTER = (83.63, 22.01)


def _models(spatial, bkg_name="toy", **bkg) -> Models:
    source = SkyModel(PowerLaw(index=2.5, amplitude="5e-11 cm-2 s-1 TeV-1"), spatial, name="src")
    return Models([source, FoVBackgroundModel(bkg_name, **bkg)])


POINT = PointSpatialModel(lon_0=83.65, lat_0=22.0)
GAUSS = GaussianSpatialModel(lon_0=83.65, lat_0=22.0, sigma=0.15)


@pytest.fixture(scope="module")
def toy() -> xr.Dataset:
    return toy_map_dataset(center=CENTER)


@pytest.fixture(scope="module")
def point_fit(toy):
    truth = _models(POINT)
    sim = simulate_counts(toy, truth, 42)
    return sim, truth, fit(sim, truth)


def test_point_source_recovers_truth(point_fit):
    _, truth, result = point_fit
    assert isinstance(result, FitResult)
    assert result.success, result.message
    for name, x in zip(truth.free_parameter_names, truth.get_vector(), strict=True):
        assert abs(result.value(name) - x) < 4 * result.error(name), name
        assert result.error(name) > 0


def test_result_table(point_fit):
    _, truth, result = point_fit
    table, fitted = result  # unpacks as (parameters, models)
    names = [ref.full_name for ref, _ in truth.parameters]
    assert list(table["param"].values) == names
    for var in ("value", "error", "min", "max", "frozen", "unit", "covariance"):
        assert var in table
    assert table["covariance"].dims == ("param", "param2")
    cov = table["covariance"].values
    np.testing.assert_allclose(cov, cov.T)
    free = ~table["frozen"].values
    np.testing.assert_allclose(np.sqrt(np.diag(cov))[free], table["error"].values[free])
    assert not cov[~free].any() and not cov[:, ~free].any()
    sub = cov[np.ix_(free, free)]
    corr = sub / np.sqrt(np.outer(np.diag(sub), np.diag(sub)))
    assert np.all(np.linalg.eigvalsh(corr) > 0) and np.all(np.abs(corr) <= 1 + 1e-12)
    assert table["unit"].sel(param="src.spectral.amplitude") == "cm-2 s-1 TeV-1"
    assert bool(table["frozen"].sel(param="src.spectral.reference"))
    assert set(table.attrs) >= {"success", "message", "total_stat", "nfev"}
    assert table.attrs["nfev"] > 10 and np.isfinite(table.attrs["total_stat"])
    # fitted copies carry values and errors; the input models are untouched
    assert fitted["src"].spectral.index.value == result.value("src.spectral.index")
    assert fitted["src"].spectral.index.error == result.error("src.spectral.index")
    assert truth == _models(POINT)
    assert truth["src"].spectral.index.error == 0


def test_total_stat_is_the_minimum(point_fit):
    sim, _, result = point_fit
    again = fit(sim, result.models)  # from the best fit: nothing left to gain
    assert again.total_stat == pytest.approx(result.total_stat, abs=0.01)
    worse = fit(sim, result.models.with_parameter("src.spectral.index", value=2.0, frozen=True))
    assert worse.total_stat > result.total_stat + 1


def _pulls(toy, spatial, n, seed):
    truth = _models(spatial)
    names, x = truth.free_parameter_names, truth.get_vector()
    rng = np.random.default_rng(seed)
    pulls = []
    for _ in range(n):
        result = fit(simulate_counts(toy, truth, rng), truth)
        assert result.success, result.message
        pulls.append(
            [(result.value(p) - v) / result.error(p) for p, v in zip(names, x, strict=True)]
        )
    return np.array(pulls)


@pytest.mark.parametrize("spatial", [POINT, GAUSS], ids=["point", "gaussian"])
def test_pulls_few_realisations(toy, spatial):
    """A few realisations (benchmarks/fit_pulls.py runs >= 20 and prints mean/width)."""
    pulls = _pulls(toy, spatial, 5, seed=11)
    assert np.all(np.abs(pulls) < 4)
    all_pulls = pulls.ravel()
    assert abs(all_pulls.mean()) < 0.6
    assert 0.6 < all_pulls.std() < 1.5


def test_failed_fit_is_reported(point_fit):
    sim, truth, _ = point_fit
    with pytest.warns(RuntimeWarning, match="did not converge"):
        result = fit(sim, truth, ncall=5)
    assert not result.success
    assert "call limit" in result.message
    assert np.all(np.isfinite(result.parameters["value"]))


def test_non_finite_start_is_reported(point_fit):
    sim, truth, _ = point_fit
    bad = truth.with_values({"src.spectral.amplitude": np.nan})
    with pytest.warns(RuntimeWarning):
        result = fit(sim, bad)
    assert not result.success and "not finite" in result.message


def test_minos(point_fit):
    sim, truth, _ = point_fit
    out = fit(sim, truth, minos=["src.spectral.index"])
    lo = float(out.parameters["error_lo"].sel(param="src.spectral.index"))
    hi = float(out.parameters["error_hi"].sel(param="src.spectral.index"))
    hesse = out.error("src.spectral.index")
    assert lo < 0 < hi
    assert -lo == pytest.approx(hesse, rel=0.2) and hi == pytest.approx(hesse, rel=0.2)
    assert np.isnan(out.parameters["error_lo"].sel(param="src.spatial.lon_0"))
    with pytest.raises(KeyError, match="minos"):
        fit(sim, truth, minos=["src.spectral.reference"])


def test_frozen_and_bounded_parameters(point_fit):
    sim, truth, _ = point_fit
    frozen = truth.with_parameter("src.spatial.lon_0", frozen=True, value=83.66)
    out = fit(sim, frozen)
    assert out.value("src.spatial.lon_0") == 83.66 and out.error("src.spatial.lon_0") == 0
    bounded = truth.with_parameter("src.spectral.index", max=2.3)
    out = fit(sim, bounded)
    assert out.value("src.spectral.index") <= 2.3 + 1e-9


def test_scales_and_bad_arguments(point_fit):
    sim, truth, result = point_fit
    out = fit(sim, truth, scales={"src.spectral.amplitude": 1e-12})
    assert out.value("src.spectral.index") == pytest.approx(
        result.value("src.spectral.index"), abs=0.1 * result.error("src.spectral.index")
    )
    with pytest.raises(KeyError, match="scales"):
        fit(sim, truth, scales={"src.spectral.reference": 1.0})
    frozen = truth
    for name in truth.free_parameter_names:
        frozen = frozen.with_parameter(name, frozen=True)
    with pytest.raises(ValueError, match="no free parameter"):
        fit(sim, frozen)


def test_accessor_and_dask_give_the_same_fit(point_fit):
    sim, truth, result = point_fit
    lazy = sim.assign({v: sim[v].chunk() for v in sim.data_vars})
    out = lazy.gamma.fit(truth)
    xr.testing.assert_allclose(out.parameters, result.parameters, rtol=1e-6)


@pytest.fixture(scope="module")
def runs(toy):
    truths = [_models(POINT, norm=n) for n in (0.8, 1.3)]
    sims = [simulate_counts(toy, m, 100 + i) for i, m in enumerate(truths)]
    return xr.concat(sims, dim=xr.DataArray([11, 12], dims="obs_id", name="obs_id"))


def test_joint_fit_per_run_background_norms(runs):
    source = _models(POINT)["src"]
    models = Models([source, FoVBackgroundModel("11"), FoVBackgroundModel("12")])
    result = fit(runs, models)
    assert result.success, result.message
    for name, truth in (("11-bkg.spectral.norm", 0.8), ("12-bkg.spectral.norm", 1.3)):
        assert abs(result.value(name) - truth) < 4 * result.error(name)
    assert abs(result.value("src.spectral.index") - 2.5) < 4 * result.error("src.spectral.index")
    shared = fit(runs, Models([source, FoVBackgroundModel("toy")]))
    assert 0.8 < shared.value("toy-bkg.spectral.norm") < 1.3
    assert shared.total_stat > result.total_stat + 10  # one norm cannot fit both runs


def test_linked_background_norms(runs):
    source = _models(POINT)["src"]
    models = Models([source, FoVBackgroundModel("11"), FoVBackgroundModel("12")]).link(
        "norm", "11-bkg.spectral.norm", "12-bkg.spectral.norm"
    )
    assert len(models.free_parameter_names) == 5
    result = fit(runs, models)
    a, b = "11-bkg.spectral.norm", "12-bkg.spectral.norm"
    assert result.value(a) == result.value(b) and result.error(a) == result.error(b) > 0
    cov = result.parameters["covariance"]
    np.testing.assert_allclose(cov.sel(param=a).values, cov.sel(param=b).values)
    shared = fit(runs, Models([source, FoVBackgroundModel("toy")]))
    assert result.value(a) == pytest.approx(shared.value("toy-bkg.spectral.norm"), rel=1e-3)


def test_spectrum_on_off_fit():
    ds = toy_spectrum_dataset()
    truth = Models([SkyModel(PowerLaw(index=2.5, amplitude="5e-11 cm-2 s-1 TeV-1"), name="src")])
    rng = np.random.default_rng(5)
    pulls = []
    for _ in range(4):
        result = fit(simulate_counts(ds, truth, rng), truth)
        assert result.success, result.message
        pulls.append(
            (result.value("src.spectral.index") - 2.5) / result.error("src.spectral.index")
        )
    assert np.all(np.abs(pulls) < 4)


def test_joint_fit_of_two_datasets(toy):
    """A map and a spectrum dataset sharing one spectral model."""
    truth = _models(POINT)
    maps = simulate_counts(toy, truth, 3)
    spec = simulate_counts(toy_spectrum_dataset(), Models([truth["src"]]), 4)
    both = fit([maps, spec], truth)
    alone = fit(maps, truth)
    assert both.success
    assert both.error("src.spectral.index") < alone.error("src.spectral.index")
    with pytest.raises(ValueError, match="unique"):
        fit([maps, maps], truth)
