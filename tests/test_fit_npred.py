"""Predicted counts and likelihood terms on synthetic datasets with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback

import gammaxr.accessors  # noqa: F401
from gammaxr.fit import FitContext, load_datasets, npred
from gammaxr.models import (
    FoVBackgroundModel,
    GaussianSpatialModel,
    Models,
    PointSpatialModel,
    PowerLaw,
    SkyModel,
)
from gammaxr.models.sphere import transform_lonlat
from gammaxr.stats import cash, wstat, wstat_mu_bkg
from gammaxr.testing import (
    gaussian_psf_profile,
    simulate_counts,
    toy_map_dataset,
    toy_spectrum_dataset,
)

CENTER = (83.63, 22.01)


@pytest.fixture(scope="module")
def toy() -> xr.Dataset:
    return toy_map_dataset(center=CENTER)


def _source(spatial, index=2.5, amplitude=5e-11, name="src") -> SkyModel:
    return SkyModel(PowerLaw(index=index, amplitude=amplitude), spatial, name=name)


def _expected_total(ds: xr.Dataset, model: SkyModel) -> np.ndarray:
    """Expected counts per reco bin for a source fully inside the grid (diagonal edisp)."""
    et = np.append(ds["energy_true_bounds"].values[:, 0], ds["energy_true_bounds"].values[-1, 1])
    flux = model.spectral.integral(et[:-1], et[1:])
    expo = float(ds["exposure"].max()) * 1e4
    return flux * expo @ ds["edisp"].isel(lat_irf=0, lon_irf=0).values


def _pixel_position(ds, lon, lat):
    return (lat - ds["lat"].values[0]) / (ds["lat"].values[1] - ds["lat"].values[0]), (
        lon - ds["lon"].values[0]
    ) / (ds["lon"].values[1] - ds["lon"].values[0])


@pytest.mark.parametrize("convention", ["gammaxr", "gammapy"])
@pytest.mark.parametrize("offset", [(0.0, 0.0), (0.013, -0.027)])
def test_point_source_counts_and_centroid(toy, convention, offset):
    lon, lat = CENTER[0] + offset[0], CENTER[1] + offset[1]
    model = _source(PointSpatialModel(lon_0=lon, lat_0=lat))
    image = npred(toy, model, kind="signal", convention=convention)
    assert image.dims == ("energy", "lat", "lon")
    rtol = 5e-4 if convention == "gammaxr" else 1e-9  # spline rim clipped at zero
    np.testing.assert_allclose(image.sum(["lat", "lon"]), _expected_total(toy, model), rtol=rtol)
    fy, fx = _pixel_position(toy, lon, lat)
    y, x = np.arange(toy.sizes["lat"]), np.arange(toy.sizes["lon"])
    for plane in image.values:
        assert plane.sum(1) @ y / plane.sum() == pytest.approx(fy, abs=0.01)
        assert plane.sum(0) @ x / plane.sum() == pytest.approx(fx, abs=0.01)


def test_point_source_psf_width(toy):
    model = _source(PointSpatialModel(lon_0=float(toy.lon[20]), lat_0=float(toy.lat[20])))
    plane = npred(toy, model, kind="signal").isel(energy=0).values
    binsz = 0.04  # on the sky, both axes
    y = (np.arange(plane.shape[0]) - 20) * binsz
    var = plane.sum(1) @ y**2 / plane.sum()
    assert var == pytest.approx(0.08**2 + binsz**2 / 12, rel=0.03)


@pytest.mark.parametrize("sigma", [0.03, 0.12])
def test_gaussian_source_counts_and_width(toy, sigma):
    model = _source(GaussianSpatialModel(lon_0=CENTER[0], lat_0=CENTER[1], sigma=sigma))
    image = npred(toy, model, kind="signal")
    np.testing.assert_allclose(image.sum(["lat", "lon"]), _expected_total(toy, model), rtol=2e-3)
    plane = image.isel(energy=1).values
    y = toy["lat"].values - CENTER[1]
    var = plane.sum(1) @ y**2 / plane.sum() - (plane.sum(1) @ y / plane.sum()) ** 2
    assert var == pytest.approx(sigma**2 + 0.08**2 + 0.04**2 / 12, rel=0.05)


def test_energy_dependent_psf_on_extended_source():
    """Each true-energy bin is convolved with its own PSF (FFT path of extended sources)."""
    et = np.array([1.0, 2.0, 4.0, 10.0])
    psf = (0.12, 0.07, 0.04)
    ds = toy_map_dataset(center=CENTER, energy_true_edges=et, psf_sigma=psf)
    model = _source(GaussianSpatialModel(lon_0=CENTER[0], lat_0=CENTER[1], sigma=0.05))
    image = npred(ds, model, kind="signal").values
    y = ds["lat"].values - CENTER[1]
    for plane, s in zip(image, psf, strict=True):
        var = plane.sum(1) @ y**2 / plane.sum() - (plane.sum(1) @ y / plane.sum()) ** 2
        assert var == pytest.approx(0.05**2 + s**2 + 0.04**2 / 12, rel=0.05)


def test_galactic_grid_icrs_model():
    lon_g, lat_g = transform_lonlat(np.array([83.6]), np.array([22.0]), "icrs", "galactic")
    ds = toy_map_dataset(center=(float(lon_g[0]), float(lat_g[0])), frame="galactic")
    model = _source(PointSpatialModel(lon_0=83.6, lat_0=22.0, frame="icrs"))
    plane = npred(ds, model, kind="signal").isel(energy=0).values
    fy, fx = _pixel_position(ds, float(lon_g[0]), float(lat_g[0]))
    assert plane.sum(1) @ np.arange(plane.shape[0]) / plane.sum() == pytest.approx(fy, abs=0.02)
    assert plane.sum(0) @ np.arange(plane.shape[1]) / plane.sum() == pytest.approx(fx, abs=0.02)


def test_background_model_norm_and_tilt(toy):
    bkg = FoVBackgroundModel("toy", norm=1.3, tilt=0.4, reference=2.0)
    out = npred(toy, Models([bkg]), kind="background")
    factor = 1.3 * (toy["energy"] / 2.0) ** -0.4
    expected = (toy["background"] * factor).transpose(*out.dims)
    np.testing.assert_allclose(out.values, expected.values, rtol=1e-12)
    np.testing.assert_array_equal(out["energy_lo"], [1.0, 2.0, 4.0])
    # without a background model the background is used as it is
    source = _source(PointSpatialModel(lon_0=CENTER[0], lat_0=CENTER[1]))
    total = toy.gamma.npred(source)
    np.testing.assert_allclose(
        total.values, toy["background"].values + npred(toy, source, kind="signal").values
    )


def test_energy_dispersion_is_folded(toy):
    """A kernel moving half of each true bin one reco bin up."""
    et = np.array([1.0, 2.0, 4.0, 10.0])
    ds = toy_map_dataset(center=CENTER, energy_true_edges=et)
    matrix = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 0.7]])
    ds["edisp"] = ds["edisp"].copy(data=np.broadcast_to(matrix[..., None, None], ds.edisp.shape))
    model = _source(PointSpatialModel(lon_0=CENTER[0], lat_0=CENTER[1]))
    flux = model.spectral.integral(et[:-1], et[1:]) * 3e9 * 1e4
    total = npred(ds, model, kind="signal").sum(["lat", "lon"]).values
    np.testing.assert_allclose(total, flux @ matrix, rtol=5e-4)


def test_spectrum_dataset_signal():
    ds = toy_spectrum_dataset()
    model = _source(None)
    e = np.append(ds["energy_bounds"].values[:, 0], ds["energy_bounds"].values[-1, 1])
    expected = model.spectral.integral(e[:-1], e[1:]) * 1e9 * 1e4
    np.testing.assert_allclose(npred(ds, model, kind="signal").values, expected, rtol=1e-12)
    assert npred(ds, model).dims == ("energy",)


@pytest.fixture(scope="module")
def simulated(toy):
    models = Models(
        [
            _source(PointSpatialModel(lon_0=83.65, lat_0=22.0)),
            _source(GaussianSpatialModel(lon_0=83.4, lat_0=22.2, sigma=0.1), name="ext"),
            FoVBackgroundModel("toy", norm=1.1),
        ]
    )
    return simulate_counts(toy, models, 7), models


def test_stat_is_cash_over_the_mask(simulated):
    ds, models = simulated
    mask = np.ones(ds["counts"].shape, bool)
    mask[:, :5] = False
    ds = ds.assign(mask_fit=(("energy", "lat", "lon"), mask))
    context = FitContext(load_datasets(ds), models)
    mu = npred(ds, models).values
    expected = float(np.sum(cash(ds["counts"].values, mu)[mask]))
    assert context.stat() == pytest.approx(expected, rel=1e-12)
    term = context.terms[0]
    values = context.values()
    assert term.stat(values) == pytest.approx(term.stat_per_bin(values), rel=1e-12)


def test_cached_evaluations_equal_fresh_ones(simulated):
    """The likelihood is a function of the parameters alone: any sequence of vectors gives
    exactly what a fresh context gives, however far the sources moved in between."""
    ds, models = simulated
    data = load_datasets(ds)
    context = FitContext(data, models)
    names = models.free_parameter_names
    x0 = models.get_vector()
    steps = {
        "src.spectral.index": 0.1,  # spectral only
        "src.spatial.lon_0": 0.01,  # spatial
        "ext.spatial.sigma": 0.02,
        "toy-bkg.spectral.norm": 0.1,
        "src.spatial.lat_0": 0.2,  # far: other kernel nodes
    }
    evaluator = context.terms[0].sources[0][1]
    assert context.stat(x0) > 0
    assert 1 <= evaluator.n_kernel_nodes <= 4  # kernels at the lattice nodes around the source
    x = x0.copy()
    for name, step in steps.items():
        x[names.index(name)] += step
        assert context.stat(x) == FitContext(data, models).stat(x)
    assert context.stat(x0) == FitContext(data, models).stat(x0)


def _varying_irfs(ds: xr.Dataset) -> xr.Dataset:
    """The toy dataset with a PSF width and an energy migration changing along lat_irf."""
    rad = np.append(ds["rad_bounds"].values[:, 0], ds["rad_bounds"].values[-1, 1])
    n_lat = ds.sizes["lat_irf"]
    grow = np.linspace(0.7, 1.3, n_lat)
    psf = np.stack([gaussian_psf_profile(np.full(5, 0.08 * g), rad) for g in grow], axis=-1)
    psf = np.broadcast_to(psf[..., None], (*psf.shape, ds.sizes["lon_irf"]))
    diagonal = ds["edisp"].values
    shifted = np.roll(diagonal, 1, axis=1)
    mix = np.linspace(0.0, 0.5, n_lat)[:, None]
    edisp = (1 - mix) * diagonal + mix * shifted
    return ds.assign(psf=(ds["psf"].dims, psf, ds["psf"].attrs), edisp=(ds["edisp"].dims, edisp))


def test_stat_is_continuous_in_the_position(simulated):
    """Across kernel-lattice nodes, IRF pixels and cutout re-centring the statistic changes
    smoothly (IRFs varying over the field)."""
    ds, models = simulated
    data = load_datasets(_varying_irfs(ds))
    context = FitContext(data, models)
    i = models.free_parameter_names.index("src.spatial.lat_0")
    x = models.get_vector()
    lats = x[i] + np.linspace(-0.5, 0.5, 1001)  # 0.001 deg steps over several IRF pixels
    stats = []
    for lat in lats:
        x[i] = lat
        stats.append(context.stat(x))
    second = np.abs(np.diff(stats, 2))
    assert context.terms[0].sources[0][1].n_kernel_nodes >= 4
    # no jumps: a jump d shows as a second difference of about d among smooth ones
    assert second.max() < 20 * np.median(second) + 1e-6
    assert context.stat(x) == FitContext(data, models).stat(x)


def test_negative_amplitude_falls_back_to_per_bin_cash(simulated):
    ds, models = simulated
    negative = models.with_values({"src.spectral.amplitude": -5e-11})
    context = FitContext(load_datasets(ds), negative)
    term, values = context.terms[0], context.values()
    assert np.isfinite(term.stat(values))
    assert term.stat(values) == pytest.approx(term.stat_per_bin(values), rel=1e-12)


class _CountComputes(Callback):
    def __init__(self):
        super().__init__()
        self.n = 0

    def _start(self, dsk):
        self.n += 1


def test_dask_backed_dataset_is_loaded_once(simulated):
    ds, models = simulated
    lazy = ds.assign({v: ds[v].chunk({"energy": 1}) for v in ("counts", "background")})
    lazy = lazy.assign({v: ds[v].chunk() for v in ds.data_vars if v not in lazy})
    assert lazy["counts"].chunks and not lazy["energy_bounds"].chunks
    counter = _CountComputes()
    with counter:
        out = npred(lazy, models)
    assert counter.n == 1
    np.testing.assert_allclose(out.values, npred(ds, models).values, rtol=1e-12)


def test_npred_keeps_the_user_models(simulated):
    ds, models = simulated
    before = models.copy()
    npred(ds, models)
    assert models == before


@pytest.fixture(scope="module")
def runs(toy):
    """Two runs along obs_id with different true background norms."""
    truth = [
        Models(
            [_source(PointSpatialModel(lon_0=83.65, lat_0=22.0)), FoVBackgroundModel("toy", norm=n)]
        )
        for n in (0.8, 1.3)
    ]
    sims = [simulate_counts(toy, m, i) for i, m in enumerate(truth)]
    return xr.concat(sims, dim=xr.DataArray([11, 12], dims="obs_id", name="obs_id")), truth


def test_runs_per_run_and_shared_background(runs):
    ds, truth = runs
    source = truth[0][0]
    per_run = Models(
        [source, FoVBackgroundModel("11", norm=0.8), FoVBackgroundModel("12", norm=1.3)]
    )
    out = npred(ds, per_run, kind="background")
    assert out.dims == ("obs_id", "energy", "lat", "lon")
    np.testing.assert_allclose(out.sel(obs_id=12).values, 1.3 * ds["background"].isel(obs_id=1))
    shared = Models([source, FoVBackgroundModel("toy", norm=0.9)])
    out = npred(ds, shared, kind="background")
    np.testing.assert_allclose(out.values, 0.9 * ds["background"].values)
    # a run's own model wins over the dataset's
    mixed = Models([source, FoVBackgroundModel("toy", norm=0.9), FoVBackgroundModel("12", norm=2)])
    out = npred(ds, mixed, kind="background")
    np.testing.assert_allclose(out.sel(obs_id=11).values, 0.9 * ds["background"].isel(obs_id=0))
    np.testing.assert_allclose(out.sel(obs_id=12).values, 2.0 * ds["background"].isel(obs_id=1))
    # the joint statistic is the sum over runs
    context = FitContext(load_datasets(ds), per_run)
    singles = [
        FitContext(
            load_datasets(ds.sel(obs_id=i).drop_vars("obs_id"), name=str(i)),
            Models([source, FoVBackgroundModel(str(i), norm=n)]),
        )
        for i, n in ((11, 0.8), (12, 1.3))
    ]
    for ctx in singles:
        assert len(ctx.terms) == 1
    assert context.stat() == pytest.approx(sum(c.stat() for c in singles), rel=1e-12)


def test_runs_with_empty_masks_are_skipped_in_fits(runs):
    ds, truth = runs
    ds = ds.assign(mask_safe=ds["mask_safe"] & (ds["obs_id"] == 11))
    assert [d.name for d in load_datasets(ds)] == ["11"]
    assert npred(ds, truth[0]).sizes["obs_id"] == 2


def test_on_off_map_dataset_uses_wstat(toy):
    model = _source(PointSpatialModel(lon_0=CENTER[0], lat_0=CENTER[1]))
    rng = np.random.default_rng(3)
    alpha = 0.25
    signal = npred(toy, model, kind="signal").values
    on = rng.poisson(signal + toy["background"].values).astype(float)
    off = rng.poisson(toy["background"].values / alpha).astype(float)
    reco = ("energy", "lat", "lon")
    ds = toy.drop_vars("background").assign(
        counts=(reco, on),
        counts_off=(reco, off),
        acceptance=(reco, np.ones_like(on)),
        acceptance_off=(reco, np.full_like(on, 1 / alpha)),
    )
    context = FitContext(load_datasets(ds), Models([model]))
    expected = float(np.sum(wstat(on, off, alpha, signal)))
    assert context.stat() == pytest.approx(expected, rel=1e-9)
    bkg = npred(ds, model, kind="background").values
    np.testing.assert_allclose(bkg, alpha * wstat_mu_bkg(on, off, alpha, signal), rtol=1e-12)
    with pytest.raises(ValueError, match="on/off"):
        FitContext(load_datasets(ds), Models([model, FoVBackgroundModel("toy")]))


def test_bad_inputs(toy):
    point = _source(PointSpatialModel(lon_0=CENTER[0], lat_0=CENTER[1]))
    with pytest.raises(ValueError, match="is for dataset 'other'"):
        npred(toy, Models([point, FoVBackgroundModel("other")]))
    with pytest.raises(ValueError, match="no spatial model"):
        npred(toy, _source(None))
    with pytest.raises(ValueError, match="kind"):
        npred(toy, point, kind="excess")
    with pytest.raises(KeyError, match="energy_true_bounds"):
        npred(toy.drop_vars("energy_true_bounds"), point)
    with pytest.raises(ValueError, match="no 'background'"):
        npred(toy.drop_vars("background"), Models([point, FoVBackgroundModel("toy")]))
    with pytest.raises(ValueError, match="no sky model applies"):
        FitContext(load_datasets(toy), Models([FoVBackgroundModel("toy")]))
    elsewhere = SkyModel(point.spectral, point.spatial, name="x", datasets_names=["other"])
    assert not npred(toy, elsewhere, kind="signal").values.any()


def test_source_far_outside_the_grid_contributes_nothing(toy):
    far = _source(PointSpatialModel(lon_0=CENTER[0] + 20, lat_0=CENTER[1]))
    assert not npred(toy, far, kind="signal").values.any()
