"""TS maps on simulated data: source position, agreement with direct fits, pure-background
significance distribution, per-pixel solver vs brute force, options, dask."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import minimize_scalar

import gammaxr.accessors  # noqa: F401
from gammaxr.estimators.pixel_norms import PixelLikelihood, profile_crossings, solve_norms
from gammaxr.estimators.ts_map import default_kernel_model, ts_map
from gammaxr.fit import FitContext, fit, load_datasets
from gammaxr.models import (
    FoVBackgroundModel,
    GaussianSpatialModel,
    Models,
    PointSpatialModel,
    PowerLaw,
    SkyModel,
)
from gammaxr.stats import cash
from gammaxr.testing import simulate_counts, toy_map_dataset

IY, IX = 20, 27  # pixel of the injected source (on the kernel's row: same pixel shapes)


@pytest.fixture(scope="module")
def toy():
    return toy_map_dataset()


def _source(toy, amplitude="5e-12 cm-2 s-1 TeV-1", spatial=None) -> SkyModel:
    lon, lat = float(toy["lon"][IX]), float(toy["lat"][IY])
    spatial = spatial or PointSpatialModel(lon_0=lon, lat_0=lat)
    return SkyModel(PowerLaw(index=2.0, amplitude=amplitude), spatial, name="src")


@pytest.fixture(scope="module")
def with_source(toy):
    truth = Models([_source(toy), FoVBackgroundModel("toy")])
    return simulate_counts(toy, truth, 1), truth


def _direct_ts(ds, toy) -> tuple[float, float, float]:
    """Norm, error and TS of the test source fitted at the injected pixel by the fitter."""
    model = Models([_source(toy, "1e-12 cm-2 s-1 TeV-1")])
    for name in ("src.spatial.lon_0", "src.spatial.lat_0", "src.spectral.index"):
        model = model.with_parameter(name, frozen=True)
    result = fit(ds, model)
    null = FitContext(load_datasets(ds), model.with_values({"src.spectral.amplitude": 0.0}))
    amp = result.value("src.spectral.amplitude") / 1e-12
    return amp, result.error("src.spectral.amplitude") / 1e-12, null.stat() - result.total_stat


def test_source_found_at_injected_pixel(with_source):
    sim, _ = with_source
    maps = ts_map(sim)
    assert maps["sqrt_ts"].dims == ("energy", "lat", "lon") and maps.sizes["energy"] == 1
    sqrt_ts = maps["sqrt_ts"][0].values
    iy, ix = np.unravel_index(np.nanargmax(sqrt_ts), sqrt_ts.shape)
    assert abs(iy - IY) <= 1 and abs(ix - IX) <= 1
    assert sqrt_ts[IY, IX] > 8
    assert maps["success"].all()
    # the norm is in units of the test spectrum (amplitude 1e-12): the truth is 5
    assert maps["norm"][0, IY, IX] == pytest.approx(5.0, abs=4 * float(maps["norm_err"][0, IY, IX]))


def test_per_energy_likelihood_matches_direct_fit(toy, with_source):
    """sum_over_energy=False is the 3D likelihood of the test source at that pixel."""
    sim, _ = with_source
    maps = ts_map(sim, sum_over_energy=False)
    norm, err, ts = _direct_ts(sim, toy)
    assert maps["ts"][0, IY, IX] == pytest.approx(ts, rel=1e-4)
    assert maps["norm"][0, IY, IX] == pytest.approx(norm, abs=0.05 * err)  # Migrad's tolerance
    assert maps["norm_err"][0, IY, IX] == pytest.approx(err, rel=0.01)


def test_summed_likelihood_matches_direct_fit_on_summed_dataset(toy, with_source):
    """Default mode: counts and background summed over energy, as a one-bin dataset."""
    sim, _ = with_source
    maps = ts_map(sim)
    one = toy_map_dataset(energy_edges=(1.0, 10.0))
    one = one.assign(
        counts=(("energy", "lat", "lon"), sim["counts"].sum("energy").values[None]),
        background=(("energy", "lat", "lon"), sim["background"].sum("energy").values[None]),
    )
    norm, err, ts = _direct_ts(one, toy)
    assert maps["ts"][0, IY, IX] == pytest.approx(ts, rel=1e-4)
    assert maps["norm"][0, IY, IX] == pytest.approx(norm, abs=0.05 * err)  # Migrad's tolerance
    signal = one.gamma.npred(Models([_source(toy, "1e-12 cm-2 s-1 TeV-1")]), kind="signal")
    at = maps.isel(energy=0, lat=IY, lon=IX)
    assert at["npred_excess"] == pytest.approx(float(at["norm"] * signal.sum()), rel=1e-6)


def test_pure_background_is_standard_normal(toy):
    values = []
    for seed in range(6):
        sim = simulate_counts(toy, Models([FoVBackgroundModel("toy")]), 100 + seed)
        maps = ts_map(sim)
        assert np.all(maps["ts"] >= 0)
        signs = np.sign(maps["sqrt_ts"]) == np.sign(maps["norm"])
        assert bool(signs.all())
        values.append(maps["sqrt_ts"].values.ravel())
    values = np.concatenate(values)
    assert abs(values.mean()) < 0.2
    assert values.std() == pytest.approx(1.0, abs=0.2)
    assert np.mean(np.abs(values) > 4) < 1e-3


def test_known_source_in_models_leaves_no_excess(with_source):
    sim, truth = with_source
    maps = ts_map(sim, truth)
    assert abs(float(maps["sqrt_ts"][0, IY, IX])) < 3
    assert float(np.nanmax(maps["sqrt_ts"])) < 5


def test_profile_errors_and_upper_limits(with_source):
    sim, _ = with_source
    maps = ts_map(sim, selection="all", n_sigma=1.0, n_sigma_ul=2.0)
    for key in ("norm_errn", "norm_errp", "norm_ul", "flux_ul"):
        assert key in maps
    at = maps.isel(energy=0, lat=IY, lon=IX)
    assert at["norm_errp"] > at["norm_errn"] > 0
    assert at["norm_ul"] > at["norm"] + at["norm_errp"]
    np.testing.assert_allclose(maps["flux"], maps["norm"] * maps["ref_flux"])
    np.testing.assert_allclose(maps["flux_ul"], maps["norm_ul"] * maps["ref_flux"])
    # errors near the source are close to the curvature error
    assert 0.5 * (at["norm_errn"] + at["norm_errp"]) == pytest.approx(
        float(at["norm_err"]), rel=0.1
    )


def test_energy_groups(with_source):
    sim, _ = with_source
    maps = ts_map(sim, energy_edges=[1.0, 2.0, 10.0])
    assert maps.sizes["energy"] == 2
    np.testing.assert_allclose(maps["energy_bounds"], [[1.0, 2.0], [2.0, 10.0]])
    first = ts_map(sim.isel(energy=[0]).assign_coords(energy_bounds=sim["energy_bounds"][[0]]))
    np.testing.assert_allclose(maps["ts"][0], first["ts"][0], rtol=1e-9, atol=1e-9)


def test_gaussian_kernel_prefers_extended_source(toy):
    gauss = GaussianSpatialModel(
        lon_0=float(toy["lon"][IX]), lat_0=float(toy["lat"][IY]), sigma=0.2
    )
    truth = Models([_source(toy, "8e-12 cm-2 s-1 TeV-1", gauss), FoVBackgroundModel("toy")])
    sim = simulate_counts(toy, truth, 4)
    point = ts_map(sim)
    kernel = SkyModel(PowerLaw(index=2.0), GaussianSpatialModel(sigma=0.2), name="k")
    extended = ts_map(sim, kernel_model=kernel)
    assert extended["ts"][0, IY, IX] > point["ts"][0, IY, IX]
    assert "GaussianSpatialModel" in extended.attrs["kernel_model"]


def test_numpy_and_dask_agree(with_source):
    sim, _ = with_source
    eager = ts_map(sim)
    lazy = ts_map(sim.chunk({"lat": 10, "lon": 10}))
    xr.testing.assert_allclose(eager, lazy)
    xr.testing.assert_allclose(sim.gamma.ts_map(), eager)


def test_masked_pixels_are_nan(with_source):
    sim, _ = with_source
    mask = sim["mask_safe"].copy(data=sim["mask_safe"].values.copy())
    mask[:, :5, :] = False
    maps = ts_map(sim.assign(mask_safe=mask))
    assert np.isnan(maps["ts"][0, :5]).all()
    assert np.isfinite(maps["ts"][0, 5:]).all()


def test_bad_inputs(with_source):
    sim, _ = with_source
    runs = xr.concat([sim, sim], dim="obs_id").assign_coords(obs_id=[1, 2])
    with pytest.raises(ValueError, match="stack"):
        ts_map(runs)
    with pytest.raises(ValueError, match="unknown selection"):
        ts_map(sim, selection="scan")
    with pytest.raises(ValueError, match="exposure"):
        ts_map(sim.drop_vars("exposure"))
    with pytest.raises(ValueError, match="do not overlap"):
        ts_map(sim, energy_edges=[20.0, 30.0])


# -- the per-pixel solver ------------------------------------------------------------------
def _random_rows(rng, rows=40, bins=30):
    b = rng.uniform(0.05, 2.0, (rows, bins))
    m = rng.uniform(0.0, 1.0, (rows, bins)) * (rng.random((rows, bins)) < 0.7)
    true = rng.normal(0.0, 1.0, rows)[:, None]
    n = rng.poisson(np.clip(b + true * m, 0, None)).astype(float)
    n[0] = 0.0  # a row without counts: best norm at the domain edge
    return n, b, m


def _brute(n, b, m, lower):
    out = []
    for i in range(n.shape[0]):

        def f(x, i=i):
            return float(np.sum(cash(n[i], b[i] + x * m[i])))

        res = minimize_scalar(
            f, bounds=(lower[i], 50.0), method="bounded", options={"xatol": 1e-10}
        )
        out.append(res.x)
    return np.array(out)


def test_solve_norms_matches_brute_force():
    n, b, m = _random_rows(np.random.default_rng(0))
    like = PixelLikelihood.from_dense(n, b, m)
    lower = np.max(np.where(m > 0, -b / np.where(m > 0, m, 1), -np.inf), axis=1)
    res = solve_norms(like, lower, rtol=1e-9)
    assert res["success"].all()
    np.testing.assert_allclose(res["norm"], _brute(n, b, m, lower), atol=1e-7)
    loose = solve_norms(like, lower)  # default: steps below 1e-4 of the error
    assert np.all(np.abs(loose["norm"] - res["norm"]) <= 1e-3 * res["err"])
    assert res["norm"][0] == pytest.approx(lower[0])
    # statistic: the per-bin cash sum
    direct = [float(np.sum(cash(n[i], b[i] + res["norm"][i] * m[i]))) for i in range(len(n))]
    np.testing.assert_allclose(res["stat"], direct, rtol=1e-12)
    # curvature error
    mu = b + res["norm"][:, None] * m
    curvature = np.sum(np.where(n > 0, n * m**2 / np.where(n > 0, mu, 1) ** 2, 0), axis=1)
    with np.errstate(divide="ignore"):  # row 0 has no counts: infinite error
        np.testing.assert_allclose(res["err"], 1 / np.sqrt(curvature))


def test_profile_crossings_reach_the_level():
    n, b, m = _random_rows(np.random.default_rng(1))
    like = PixelLikelihood.from_dense(n, b, m)
    lower = np.max(np.where(m > 0, -b / np.where(m > 0, m, 1), -np.inf), axis=1)
    res = solve_norms(like, lower)
    for side in (+1, -1):
        x = profile_crossings(like, res["norm"], res["stat"], res["err"], lower, 4.0, side)
        ok = np.isfinite(x)
        if side > 0:
            assert ok.all()
        assert ok.mean() > 0.3
        np.testing.assert_allclose(
            like.stat(np.nan_to_num(x))[ok] - res["stat"][ok], 4.0, atol=1e-6
        )
        assert np.all(side * (x[ok] - res["norm"][ok]) > 0)
        if side < 0:  # missing left crossings: the statistic stays below the level to the edge
            miss = ~ok & np.isfinite(res["norm"])
            at_edge = like.stat(np.where(miss, lower, 0.0))
            assert np.all(at_edge[miss] - res["stat"][miss] < 4.0)


def test_default_kernel_model():
    model = default_kernel_model()
    assert model.spectral.index.value == 2.0
    assert model.spatial.is_point


@pytest.mark.hess
def test_crab_ts_map(crab_reference_case):
    """Stacked Crab (4 runs): the TS map peaks at the fitted position; with the fitted source
    in the models nothing significant is left."""
    _, stacked, _, _ = crab_reference_case
    crab = SkyModel(
        PowerLaw(index=2.6, amplitude="4.5e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=83.63, lat_0=22.01),
        name="crab",
    )
    result = stacked.gamma.fit(Models([crab, FoVBackgroundModel("stacked")]))
    maps = stacked.gamma.ts_map()
    sqrt_ts = maps["sqrt_ts"][0]
    iy, ix = np.unravel_index(int(np.nanargmax(sqrt_ts.values)), sqrt_ts.shape)
    assert abs(float(sqrt_ts["lon"][ix]) - result.value("crab.spatial.lon_0")) < 0.02
    assert abs(float(sqrt_ts["lat"][iy]) - result.value("crab.spatial.lat_0")) < 0.02
    assert float(sqrt_ts[iy, ix]) > 30
    residual = stacked.gamma.ts_map(result.models)
    assert float(np.nanmax(np.abs(residual["sqrt_ts"]))) < 5
    assert abs(float(np.nanmean(residual["sqrt_ts"]))) < 0.3
