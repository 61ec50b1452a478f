"""Flux points: per-bin norm fits against the full fitter, SED quantities, edge snapping,
on/off datasets, runs, dask, and the stacked Crab against Gammapy 2.1."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr

import gammaxr.accessors  # noqa: F401
from gammaxr.estimators.flux_points import (
    NormLikelihood,
    flux_points,
    norm_terms,
    snap_energy_edges,
)
from gammaxr.fit import FitContext, fit, load_datasets
from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.stats import cash
from gammaxr.testing import simulate_counts, toy_map_dataset, toy_spectrum_dataset

EDGES = [1.0, 2.0, 4.0, 10.0]


def _truth(amplitude: str = "5e-11 cm-2 s-1 TeV-1") -> Models:
    source = SkyModel(
        PowerLaw(index=2.5, amplitude=amplitude),
        PointSpatialModel(lon_0=83.65, lat_0=22.0),
        name="src",
    )
    return Models([source, FoVBackgroundModel("toy")])


@pytest.fixture(scope="module")
def fitted():
    sim = simulate_counts(toy_map_dataset(), _truth(), 7)
    result = fit(sim, _truth())
    assert result.success, result.message
    return sim, result.models


@pytest.fixture(scope="module")
def points(fitted):
    sim, models = fitted
    return flux_points(sim, models, EDGES, source="src")


def _amplitude_only(models: Models) -> Models:
    """All parameters frozen except the source amplitude."""
    for ref, p in models.parameters:
        if not p.frozen and ref.full_name != "src.spectral.amplitude":
            models = models.with_parameter(ref.full_name, frozen=True)
    return models


def test_norm_matches_full_fit_in_each_bin(fitted, points):
    """The fast 1D fit equals a Migrad fit of the amplitude alone on the bin's energies."""
    sim, models = fitted
    amp = models["src"].spectral.amplitude.value
    frozen = _amplitude_only(models)
    for i, (lo, hi) in enumerate(itertools.pairwise(EDGES)):
        in_bin = (sim["energy"] > lo) & (sim["energy"] < hi)
        ds = sim.assign(mask_fit=in_bin.broadcast_like(sim["mask_safe"]))
        full = fit(ds, frozen)
        assert full.success
        norm = full.value("src.spectral.amplitude") / amp
        err = full.error("src.spectral.amplitude") / amp
        assert points["norm"][i] == pytest.approx(norm, rel=1e-4)
        assert points["norm_err"][i] == pytest.approx(err, rel=0.02)
        null = FitContext(load_datasets(ds), frozen.with_values({"src.spectral.amplitude": 0}))
        assert points["stat"][i] == pytest.approx(full.total_stat, abs=1e-3)
        assert points["ts"][i] == pytest.approx(null.stat() - full.total_stat, rel=1e-5)


def test_sed_quantities(fitted, points):
    _, models = fitted
    spectral = models["src"].spectral
    bounds = points["energy_bounds"].values
    np.testing.assert_allclose(bounds[:, 0], EDGES[:-1])
    np.testing.assert_allclose(bounds[:, 1], EDGES[1:])
    np.testing.assert_allclose(points["e_ref"], np.sqrt(bounds[:, 0] * bounds[:, 1]))
    e_ref = points["e_ref"].values
    np.testing.assert_allclose(points["ref_dnde"], spectral(e_ref))
    np.testing.assert_allclose(points["dnde"], points["norm"] * spectral(e_ref))
    np.testing.assert_allclose(points["e2dnde"], points["dnde"] * e_ref**2)
    np.testing.assert_allclose(points["flux"], points["norm"] * spectral.integral(*bounds.T))
    np.testing.assert_allclose(points["eflux_ul"], points["norm_ul"] * points["ref_eflux"])
    assert points["e2dnde"].attrs["units"] == "TeV cm-2 s-1"
    assert points["flux_err"].attrs["units"] == "cm-2 s-1"
    np.testing.assert_allclose(points["sqrt_ts"], np.sqrt(points["ts"]))
    assert not points["is_ul"].any()  # bright source
    assert points["success"].dtype == bool and points["success"].all()
    assert "src" in points.attrs["reference_model"]


def test_truth_recovered_and_counts(fitted, points):
    sim, models = fitted
    assert np.all(np.abs(points["norm"] - 1) < 4 * points["norm_err"])
    counts = [
        float(sim["counts"].sel(energy=slice(lo, hi)).sum()) for lo, hi in [(1, 2), (2, 4), (4, 10)]
    ]
    np.testing.assert_allclose(points["counts"], counts)
    signal = sim.gamma.npred(models, kind="signal").sum(("lat", "lon")).values
    background = sim.gamma.npred(models, kind="background").sum(("lat", "lon")).values
    np.testing.assert_allclose(points["npred_excess"], points["norm"] * signal, rtol=1e-9)
    np.testing.assert_allclose(points["npred"], background + points["norm"] * signal, rtol=1e-9)


def test_profile_errors_and_upper_limit(fitted):
    """errn/errp and ul are where the statistic rises by n_sigma**2 (checked directly)."""
    sim, models = fitted
    fp = flux_points(sim, models, EDGES, n_sigma=1.5, n_sigma_ul=3.0)
    terms = norm_terms(sim, models)
    for i, (a, b) in enumerate([(0, 1), (1, 2), (2, 3)]):
        like = NormLikelihood(terms, a, b)
        best = float(fp["stat"][i])
        norm = float(fp["norm"][i])
        assert like.stat(norm + float(fp["norm_errp"][i])) - best == pytest.approx(2.25, abs=1e-6)
        assert like.stat(norm - float(fp["norm_errn"][i])) - best == pytest.approx(2.25, abs=1e-6)
        assert like.stat(float(fp["norm_ul"][i])) - best == pytest.approx(9.0, abs=1e-6)
        # Poisson: the upper side is longer
        assert fp["norm_errp"][i] > fp["norm_errn"][i]
    # norm_err scales with n_sigma (Gammapy's convention)
    base = flux_points(sim, models, EDGES, selection=None)
    np.testing.assert_allclose(fp["norm_err"], 1.5 * base["norm_err"])
    assert "norm_ul" not in base and "is_ul" not in base


def test_faint_bin_is_an_upper_limit():
    truth = _truth("3e-13 cm-2 s-1 TeV-1")
    sim = simulate_counts(toy_map_dataset(), truth, 3)
    fp = flux_points(sim, truth, EDGES)
    assert fp["is_ul"].any()
    assert np.all(fp["norm_ul"] > fp["norm"])
    # negative norms are allowed (background fluctuations), but never below npred = 0
    like = NormLikelihood(norm_terms(sim, truth), 2, 3)
    assert fp["norm"][2] >= like.lower


def test_energy_edges_snap_like_gammapy():
    crab_edges = np.geomspace(1.0, 10.0, 5)  # 1, 1.78, 3.16, 5.62, 10
    start, stop = snap_energy_edges(crab_edges, EDGES)
    np.testing.assert_array_equal(start, [0, 1, 2])
    np.testing.assert_array_equal(stop, [1, 2, 4])
    start, stop = snap_energy_edges(crab_edges, [0.1, 0.5, 20.0])
    np.testing.assert_array_equal(start, [0, 0])
    np.testing.assert_array_equal(stop, [0, 4])
    with pytest.raises(ValueError, match="increasing"):
        snap_energy_edges(crab_edges, [2.0, 1.0])


def test_default_bins_and_empty_bins(fitted):
    sim, models = fitted
    every = flux_points(sim, models)
    assert every.sizes["energy"] == sim.sizes["energy"]
    np.testing.assert_allclose(every["energy"], sim["energy"])
    out = flux_points(sim, models, [0.2, 0.5, 1.0, 10.0])
    assert not out["success"][:2].any() and out["success"][2]
    assert np.isnan(out["norm"][:2]).all()
    np.testing.assert_allclose(out["energy_bounds"][0], [0.2, 0.5])


def test_safe_mask_narrows_bin_edges(fitted):
    sim, models = fitted
    mask = sim["mask_safe"] & (sim["energy"] > 1.5)
    out = flux_points(sim.assign(mask_safe=mask), models, [1.0, 4.0, 10.0])
    np.testing.assert_allclose(out["energy_bounds"][0], [2.0, 4.0])


def test_numpy_and_dask_agree(fitted, points):
    sim, models = fitted
    lazy = flux_points(sim.chunk({"energy": 1}), models, EDGES, source="src")
    xr.testing.assert_allclose(lazy, points)
    via_accessor = sim.gamma.flux_points(models, EDGES)
    xr.testing.assert_allclose(via_accessor, points)


def test_models_not_modified(fitted):
    sim, models = fitted
    before = models.copy()
    flux_points(sim, models, EDGES)
    assert models == before


def test_runs_joint_likelihood(fitted):
    """Two runs (obs_id dim): counts add up, norms agree with the truth."""
    _, models = fitted
    toy = toy_map_dataset(exposure=1.5e9, background=0.25)
    runs = xr.concat(
        [simulate_counts(toy, models, seed) for seed in (11, 12)], dim="obs_id"
    ).assign_coords(obs_id=[1, 2])
    fp = flux_points(runs, models, EDGES)
    np.testing.assert_allclose(
        fp["counts"], runs["counts"].sum(("obs_id", "lat", "lon")).values[[0, 1, 2]]
    )
    assert np.all(np.abs(fp["norm"] - 1) < 4 * fp["norm_err"])


def test_on_off_spectrum_matches_full_fit():
    truth = SkyModel(PowerLaw(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1"), name="src")
    sim = simulate_counts(toy_spectrum_dataset(), truth, 5)
    result = fit(sim, truth)
    fp = flux_points(sim, result.models, [0.7, 1.5, 3.3, 11.0])
    amp = result.models["src"].spectral.amplitude.value
    frozen = result.models.with_parameter("src.spectral.index", frozen=True)
    for i, (lo, hi) in enumerate([(0.7, 1.5), (1.5, 3.3), (3.3, 11.0)]):
        in_bin = (sim["energy"] > lo) & (sim["energy"] < hi)
        full = fit(sim.assign(mask_fit=in_bin), frozen)
        assert fp["norm"][i] == pytest.approx(full.value("src.spectral.amplitude") / amp, rel=1e-4)
        err = full.error("src.spectral.amplitude") / amp
        assert fp["norm_err"][i] == pytest.approx(err, rel=0.02)


def test_bad_arguments(fitted):
    sim, models = fitted
    with pytest.raises(KeyError, match="no sky model named"):
        flux_points(sim, models, EDGES, source="nope")
    with pytest.raises(ValueError, match="unknown selection"):
        flux_points(sim, models, EDGES, selection=["scan"])


def test_reoptimize(fitted, points):
    """Re-fitting the other parameters: identical when none is free; with a free background
    norm the background absorbs part of the source (lower TS), norms stay consistent."""
    sim, models = fitted
    frozen = models.with_parameter("toy-bkg.spectral.norm", frozen=True)
    same = flux_points(sim, frozen, EDGES, reoptimize=True)
    for key in ("norm", "norm_err", "ts", "norm_ul"):
        np.testing.assert_allclose(same[key], points[key], rtol=1e-3)
    np.testing.assert_allclose(same["norm_errp"], points["norm_errp"], rtol=1e-2)
    free = flux_points(sim, models, EDGES, reoptimize=True, selection=None)
    assert np.all(free["ts"] < points["ts"])
    assert np.all(np.abs(free["norm"] - points["norm"]) < 0.2 * points["norm_err"])
    np.testing.assert_allclose(free["counts"], points["counts"])


def test_stat_of_likelihood_matches_cash(fitted):
    """NormLikelihood's sum (zero-count bins aggregated) equals the plain per-bin sum."""
    sim, models = fitted
    terms = norm_terms(sim, models)
    like = NormLikelihood(terms, 0, 3)
    (t,) = terms
    for norm in (0.0, 0.7, 1.3):
        direct = float(np.sum(cash(t.counts, t.other + norm * t.signal)))
        assert like.stat(norm) == pytest.approx(direct, rel=1e-12)


@pytest.mark.hess
def test_crab_flux_points_match_gammapy(crab_reference_case, reference_dir):
    ref = np.load(reference_dir / "crab_runs.npz")
    _, stacked, crab, reference = crab_reference_case
    for convention, e2_tol in (("gammaxr", 0.03), ("gammapy", 0.01)):
        result = stacked.gamma.fit(
            Models([crab, FoVBackgroundModel("stacked")]), convention=convention
        )
        assert result.success
        fp = stacked.gamma.flux_points(result.models, EDGES, source="crab", convention=convention)
        np.testing.assert_allclose(fp["ts"], reference["flux_points_ts"], rtol=0.05)
        np.testing.assert_allclose(
            fp["e2dnde"], reference["flux_points_e2dnde_TeV_cm-2_s-1"], rtol=e2_tol
        )
        np.testing.assert_allclose(fp["energy_bounds"][:, 0], ref["energy_edges"][[0, 1, 2]])
