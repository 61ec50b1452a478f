"""Excess and significance maps: kernels, sums against direct loops, the correlate_off
switch, masks, energy bands, fluxes, Poisson truth, laziness, and MSH 15-52 against
Gammapy 2.1."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr
from scipy.ndimage import convolve
from scipy.optimize import curve_fit
from scipy.stats import norm

from gammaxr._blocks import contiguous_blocks
from gammaxr.estimators.excess_map import excess_map, reco_exposure
from gammaxr.estimators.smoothing import convolve_sky, gauss_kernel, tophat_kernel
from gammaxr.geom import SkyGrid, axis_edges, energy_axis, exclusion_mask
from gammaxr.models.spectral import PowerLaw
from gammaxr.stats import (
    cash_errn,
    cash_errp,
    cash_sqrt_ts,
    cash_ts,
    cash_upper_limit,
    wstat_errn,
    wstat_sqrt_ts,
    wstat_upper_limit,
)

CENTRE = (150.0, 30.0)
BINSZ = 0.02


def make_dataset(n_pix=40, n_e=2, level=3.0, seed=0, on_off=False, alpha=0.1, exposure=False):
    """Flat background ``level`` counts per pixel (split over energy), Poisson counts; on/off
    adds off counts of a region ``1 / alpha`` times larger than the pixel."""
    rng = np.random.default_rng(seed)
    grid = SkyGrid.from_center(CENTRE, n_pix * BINSZ, BINSZ)
    ds = grid.to_dataset(energy_axis(1.0, 10.0, n_e))
    shape = (n_e, *grid.shape)
    dims = ("energy", "lat", "lon")
    bkg = np.full(shape, level / n_e)
    ds = ds.assign(
        counts=(dims, rng.poisson(bkg).astype(np.float32), {"units": ""}),
        mask_safe=(dims, np.ones(shape, bool)),
    )
    if on_off:
        ds = ds.assign(
            counts_off=(dims, rng.poisson(bkg / alpha).astype(np.float32), {"units": ""}),
            acceptance=(dims, bkg.astype(np.float32), {"units": ""}),
            acceptance_off=(dims, (bkg / alpha).astype(np.float32), {"units": ""}),
        )
    else:
        ds = ds.assign(background=(dims, bkg.astype(np.float32), {"units": ""}))
    if exposure:
        ds = ds.assign_coords(energy_axis(1.0, 10.0, 2 * n_e, name="energy_true"))
        ds = ds.assign(
            exposure=(
                ("energy_true", "lat", "lon"),
                np.full((2 * n_e, *grid.shape), 1e9, np.float32),
                {"units": "m2 s"},
            )
        )
    return ds


def disk_sum(image, mask, j, i, radius_pix):
    """Sum of ``image`` over the masked pixels within ``radius_pix`` of pixel (j, i)."""
    jj, ii = np.indices(image.shape)
    inside = (jj - j) ** 2 + (ii - i) ** 2 <= radius_pix**2 + 1e-9
    return float(np.sum(np.where(inside & mask, image, 0)))


PIXELS = [(0, 0), (5, 7), (20, 20), (39, 13), (17, 39)]


# ------------------------------------------------------------------------------ kernels


def test_tophat_kernel_is_gammapys_disk():
    grid = SkyGrid.from_coords(np.arange(50) * BINSZ, np.arange(50) * BINSZ, "galactic")
    k = tophat_kernel(grid, 0.04, metric="pixel")
    # Tophat2DKernel(2): the 13 pixels with x^2 + y^2 <= 4
    y, x = np.indices((5, 5)) - 2
    np.testing.assert_array_equal(k, (x**2 + y**2 <= 4).astype(float))
    assert k.sum() == 13
    # r = 5 pixels: the 81 lattice points of the disk; the sky metric agrees near lat 0
    assert tophat_kernel(grid, 0.1, metric="pixel").sum() == 81
    np.testing.assert_array_equal(tophat_kernel(grid, 0.04), k)
    # on the sky at lat 60 a lon step is half as long: the disk spans twice the lon pixels
    high = SkyGrid.from_coords(np.arange(50) * BINSZ, 60 + np.arange(50) * BINSZ, "icrs")
    assert tophat_kernel(high, 0.04).shape == (5, 9)
    with pytest.raises(ValueError, match="radius"):
        tophat_kernel(grid, 0.0)
    with pytest.raises(ValueError, match="metric"):
        tophat_kernel(grid, 0.1, metric="wcs")
    g = gauss_kernel(grid, 0.05)
    assert g.sum() == pytest.approx(1.0) and g.shape == (21, 21)
    # each call its own array (the kernels of a grid's steps are remembered, not shared)
    from gammaxr.estimators.smoothing import kernel_steps

    dx, dy = kernel_steps(grid)
    x, y = np.arange(-10, 11) * dx, np.arange(-10, 11) * dy
    direct = np.exp(-0.5 * (x[None, :] ** 2 + y[:, None] ** 2) / 0.05**2)
    np.testing.assert_allclose(g, direct / direct.sum(), rtol=1e-14)
    g[...] = 0.0
    again = gauss_kernel(grid, 0.05)
    assert again.sum() == pytest.approx(1.0) and again is not g
    assert gauss_kernel(grid, 0.05, n_sigma=2).shape == (11, 11)
    assert gauss_kernel(high, 0.05).shape == (21, 41)  # lon steps half as long on the sky


def test_fft_convolution_equals_direct_sum(raise_on_compute):
    rng = np.random.default_rng(2)
    image = rng.poisson(2.0, (3, 37, 41)).astype(float)
    grid = SkyGrid.from_center(CENTRE, (41 * BINSZ, 37 * BINSZ), BINSZ)
    da_image = xr.DataArray(image, dims=("energy", "lat", "lon"), coords=grid.coords)
    k = tophat_kernel(grid, 0.07)
    direct = np.stack([convolve(im, k, mode="constant") for im in image])
    lazy = convolve_sky(da_image.chunk({"energy": 1}), k, integer=True)
    assert lazy.chunks is not None
    with dask.config.set(scheduler="sync"):
        np.testing.assert_array_equal(lazy.values, direct)
    smooth = convolve_sky(da_image, gauss_kernel(grid, 0.03))
    assert float(smooth.sum()) < float(da_image.sum())  # flux leaks out at the edges only
    with pytest.raises(ValueError, match="odd"):
        convolve_sky(da_image, np.ones((2, 3)))


# ----------------------------------------------------------------------- maps vs loops


def test_known_background_maps_equal_direct_sums():
    ds = make_dataset(seed=1)
    mask_fit = np.ones((40, 40), bool)
    mask_fit[10:14, 3:30] = False
    ds["mask_fit"] = (("lat", "lon"), mask_fit)
    radius = 0.06  # 3 pixels
    m = excess_map(ds, radius, selection="all")
    assert m.attrs["statistic"] == "cash"
    for e in range(2):
        counts, bkg = ds["counts"].values[e], ds["background"].values[e]
        for j, i in PIXELS:
            n = disk_sum(counts, mask_fit, j, i, 3)
            b = disk_sum(bkg, mask_fit, j, i, 3)
            px = m.isel(energy=e, lat=j, lon=i)
            assert float(px["counts"]) == n
            assert float(px["background"]) == pytest.approx(b, rel=1e-6)
            assert float(px["excess"]) == pytest.approx(n - b, rel=1e-6, abs=1e-6)
            assert float(px["significance"]) == pytest.approx(
                cash_sqrt_ts(n, b), rel=1e-6, abs=1e-9
            )
            assert float(px["ts"]) == pytest.approx(cash_ts(n, b), rel=1e-6, abs=1e-9)
            assert float(px["excess_err"]) == pytest.approx(np.sqrt(n))
            assert float(px["excess_errn"]) == pytest.approx(cash_errn(n, b), rel=1e-6)
            assert float(px["excess_errp"]) == pytest.approx(cash_errp(n, b), rel=1e-6)
            ul = cash_upper_limit(n, b, n_sigma=2)
            assert float(px["excess_ul"]) == pytest.approx(ul, rel=1e-6, abs=1e-6)
    # outside the mask everything is NaN; the mask is reported
    assert np.isnan(m["significance"].values[:, 10:14, 3:30]).all()
    assert not np.isnan(m["significance"].values[:, mask_fit]).any()
    np.testing.assert_array_equal(m["mask"].values[0], mask_fit)
    # sensitivity: the excess that would give 5 sigma on this background
    px = m.isel(energy=0, lat=20, lon=20)
    s = float(px["excess_sensitivity"])
    b = float(px["background"])
    assert cash_sqrt_ts(s + b, b) == pytest.approx(5.0, abs=1e-6)


@pytest.mark.parametrize("on_off", [False, True])
def test_only_the_products_are_returned(on_off):
    ds = make_dataset(n_e=2, on_off=on_off, exposure=True, seed=4)
    m = excess_map(ds, 0.04)
    products = {"counts", "background", "excess", "excess_err", "significance", "ts", "mask"}
    assert set(m.data_vars) == products | {"norm", "norm_err", "flux", "flux_err"}
    assert not {"energy_true", "exposure", "mask_safe"} & set(m.variables)
    no_exposure = excess_map(ds.drop_vars("exposure"), 0.04)
    assert set(no_exposure.data_vars) == products


@pytest.mark.parametrize("correlate_off", [True, False])
def test_on_off_maps_follow_the_correlate_off_switch(correlate_off):
    ds = make_dataset(seed=2, on_off=True, n_e=1)
    rng = np.random.default_rng(3)
    acc_off = ds["acceptance_off"].values * rng.uniform(0.5, 2.0, ds["acceptance_off"].shape)
    ds["acceptance_off"] = ds["acceptance_off"].copy(data=acc_off.astype(np.float32))
    safe = np.ones((1, 40, 40), bool)
    safe[0, :, 30:] = False
    ds["mask_safe"] = ds["mask_safe"].copy(data=safe)
    m = excess_map(ds, 0.04, correlate_off=correlate_off, selection=["ul", "alpha"])
    assert m.attrs["statistic"] == "wstat" and m.attrs["correlate_off"] is correlate_off
    counts, off = ds["counts"].values[0], ds["counts_off"].values[0]
    acc = ds["acceptance"].values[0]
    alpha_pix = acc / acc_off[0]
    mask = safe[0]
    for j, i in [(0, 0), (20, 20), (39, 29), (7, 28)]:
        n_on = disk_sum(counts, mask, j, i, 2)
        if correlate_off:
            n_off = disk_sum(off, mask, j, i, 2)
            alpha = disk_sum(alpha_pix * off, mask, j, i, 2) / n_off
        else:
            n_off = float(off[j, i])
            alpha = disk_sum(acc, mask, j, i, 2) / float(acc_off[0, j, i])
        px = m.isel(energy=0, lat=j, lon=i)
        assert float(px["alpha"]) == pytest.approx(alpha, rel=1e-5)
        assert float(px["background"]) == pytest.approx(alpha * n_off, rel=1e-5)
        expected = wstat_sqrt_ts(n_on, n_off, alpha)
        assert float(px["significance"]) == pytest.approx(expected, rel=1e-4, abs=1e-6)
        ul = wstat_upper_limit(n_on, n_off, alpha, n_sigma=2)
        assert float(px["excess_ul"]) == pytest.approx(ul, rel=1e-4)
    assert np.isnan(m["significance"].values[0, :, 30:]).all()


def test_model_counts_are_taken_out_of_the_excess():
    ds = make_dataset(seed=4, n_e=1)
    model = xr.full_like(ds["background"], 0.5)
    with_model = excess_map(ds, 0.04, npred_signal=model)
    without = excess_map(ds, 0.04)
    inner = {"lat": slice(2, -2), "lon": slice(2, -2)}  # the whole disk inside the map
    np.testing.assert_allclose(
        with_model["excess"].isel(inner),
        without["excess"].isel(inner) - 0.5 * 13,
        rtol=1e-6,
        atol=1e-6,
    )
    onoff = make_dataset(seed=4, n_e=1, on_off=True)
    a = excess_map(onoff, 0.04, npred_signal=model, selection="errn-errp")
    px = a.isel(energy=0, lat=20, lon=20)
    n_on, n_off = float(px["counts"]), float(px["background"]) / 0.1
    expected = wstat_errn(n_on, n_off, 0.1, 6.5)
    assert float(px["excess_errn"]) == pytest.approx(expected, rel=1e-4)


def test_without_any_mask_uses_every_pixel():
    ds = make_dataset(seed=5, n_e=1)
    ds["mask_safe"] = ds["mask_safe"] & (ds["lon"] > ds["lon"][5])
    masked = excess_map(ds, 0.04)
    unmasked = excess_map(ds, 0.04, mask=False)
    assert np.isnan(masked["significance"].values[0, :, :6]).all()
    assert not np.isnan(unmasked["significance"]).any()


# ------------------------------------------------------------------------- exclusions


def test_exclusion_regions_leave_source_pixels_out():
    ds = make_dataset(seed=6, n_e=1, n_pix=50)
    region = "icrs; circle(150.0, 30.0, 0.1)"
    inside = ~exclusion_mask(SkyGrid.from_xarray(ds), region).values
    bright = ds.assign(counts=ds["counts"] + 50.0 * inside)
    a = excess_map(bright, 0.04, mask=region)
    b = excess_map(ds, 0.04, mask=region)
    xr.testing.assert_allclose(a["significance"], b["significance"])  # the source never enters
    assert np.isnan(a["significance"].values[0][inside]).all()
    # the same through mask_fit
    c = excess_map(bright.assign(mask_fit=(("lat", "lon"), ~inside)), 0.04)
    xr.testing.assert_allclose(a["significance"], c["significance"])
    # and without the exclusion the source shows up
    assert float(excess_map(bright, 0.04)["significance"].max()) > 10


# ------------------------------------------------------------------------ energy bands


def test_energy_bands_sum_bins_inside_the_safe_mask():
    ds = make_dataset(seed=7, n_e=3)
    safe = ds["mask_safe"].values.copy()
    safe[0, :, :20] = False
    ds["mask_safe"] = ds["mask_safe"].copy(data=safe)
    edges = axis_edges(ds, "energy")
    band = excess_map(ds, 0.04, energy_edges=edges[[0, 3]])
    assert band.sizes["energy"] == 1
    np.testing.assert_allclose(axis_edges(band, "energy"), edges[[0, 3]])
    summed = ds.where(ds["mask_safe"], 0).sum("energy").expand_dims(energy=1)
    summed = summed.assign(mask_safe=ds["mask_safe"].any("energy").expand_dims(energy=1))
    direct = excess_map(summed, 0.04)
    np.testing.assert_allclose(
        band["significance"].values, direct["significance"].values, rtol=1e-6
    )
    per_bin = excess_map(ds, 0.04)
    assert per_bin.sizes["energy"] == 3
    with pytest.raises(ValueError, match="not an edge"):
        excess_map(ds, 0.04, energy_edges=[1.0, 5.0])


def test_on_off_energy_bands_keep_the_background_estimate():
    ds = make_dataset(seed=8, n_e=2, on_off=True)
    acc_off = ds["acceptance_off"].values.copy()
    acc_off[1] *= 3.0  # a different alpha per bin
    ds["acceptance_off"] = ds["acceptance_off"].copy(data=acc_off)
    edges = axis_edges(ds, "energy")
    band = excess_map(ds, 0.04, energy_edges=edges[[0, 2]], correlate_off=False)
    per_bin = excess_map(ds, 0.04, correlate_off=False)
    # alpha n_off is additive over the bins; the counts too
    np.testing.assert_allclose(
        band["background"].values[0],
        per_bin["background"].sum("energy").values,
        rtol=1e-5,
    )
    np.testing.assert_array_equal(band["counts"].values[0], per_bin["counts"].sum("energy"))


# ---------------------------------------------------------------------------- fluxes


def test_reco_exposure_and_flux_of_an_injected_source():
    ds = make_dataset(seed=9, n_e=2, level=4.0, exposure=True)  # 2 counts per bin: exact
    model = PowerLaw(index=2.0, amplitude=1e-12, reference=1.0)
    reco = reco_exposure(ds)
    edges = axis_edges(ds, "energy")
    expected = 1e9 * 1e4 * model.integral(edges[:-1], edges[1:])
    np.testing.assert_allclose(reco.values[:, 0, 0], expected, rtol=1e-6)
    # a source 300 times the reference flux in the central pixel, background exact
    k = 300.0
    counts = ds["background"].values.copy()
    counts[:, 20, 20] += k * expected
    ds["counts"] = ds["counts"].copy(data=np.rint(counts).astype(np.float32))
    m = excess_map(ds, 0.06, selection="ul")
    px = m.isel(lat=20, lon=20)
    np.testing.assert_allclose(px["norm"], k, rtol=2e-3)
    np.testing.assert_allclose(px["flux"], k * model.integral(edges[:-1], edges[1:]), rtol=2e-3)
    assert m["flux"].attrs["units"] == "cm-2 s-1"
    ratio = px["flux_err"] / px["norm_err"]
    np.testing.assert_allclose(ratio, model.integral(edges[:-1], edges[1:]), rtol=1e-6)
    assert (px["flux_ul"] > px["flux"]).all()
    # with an exposure flat in energy the band flux does not depend on the reference
    # spectrum (only the norm does)
    soft = excess_map(ds, 0.06, spectral_model=PowerLaw(index=3.0, amplitude=1e-12))
    np.testing.assert_allclose(soft["flux"], m["flux"], rtol=1e-6)
    assert not np.allclose(soft["norm"].values[0], m["norm"].values[0], rtol=0.01)
    # one band over both bins: the band flux is the sum of the bin fluxes
    band = excess_map(ds, 0.06, energy_edges=edges[[0, -1]]).isel(lat=20, lon=20)
    np.testing.assert_allclose(band["flux"].values[0], px["flux"].sum(), rtol=2e-3)


def test_reco_exposure_of_runs_keeps_their_dim_order_and_equals_the_lazy_one():
    runs = xr.concat(
        [make_dataset(seed=s, n_e=3, exposure=True) for s in (1, 2, 3)], dim="obs_id"
    ).assign_coords(obs_id=[10, 11, 12])
    exposure = runs["exposure"].transpose("obs_id", "energy_true", "lat", "lon")
    values = exposure.values.copy()
    values[1, 0, 3, 4] = np.nan  # counts as 0
    values[2] = 2.0 * values[0]
    runs["exposure"] = exposure.copy(data=values)
    eager = reco_exposure(runs)
    assert eager.dims == ("obs_id", "energy", "lat", "lon")  # no copy to reorder it later
    assert eager.values.flags.c_contiguous
    lazy = reco_exposure(runs.chunk({"obs_id": 1}))
    xr.testing.assert_allclose(eager, lazy.transpose(*eager.dims).compute(), rtol=1e-12)
    np.testing.assert_allclose(eager.isel(obs_id=2), 2.0 * eager.isel(obs_id=0), rtol=1e-12)
    assert np.isfinite(eager.values).all()


# ----------------------------------------------------------------------- known truth


@pytest.mark.parametrize(
    "kind", ["cash", "wstat-correlated-off", "wstat-uncorrelated-off"], ids=str
)
def test_pure_poisson_background_gives_standard_normal_significance(kind):
    on_off = kind != "cash"
    ds = make_dataset(n_pix=160, n_e=1, level=4.0, seed=11, on_off=on_off, alpha=0.05)
    correlate_off = kind == "wstat-correlated-off"
    m = excess_map(ds, 0.03, correlate_off=correlate_off)  # 9-pixel disk, 36 counts
    # drop the map edge, where the disk is cut
    sig = m["significance"].values[0, 2:-2, 2:-2]
    assert abs(sig.mean()) < 0.05
    assert sig.std() == pytest.approx(1.0, abs=0.05)
    assert np.mean(sig > 3) < 0.004


# --------------------------------------------------------------------------- laziness


@pytest.mark.parametrize("on_off", [False, True])
def test_lazy_dataset_builds_a_graph_and_matches_numpy(on_off, raise_on_compute):
    ds = make_dataset(n_e=2, on_off=on_off, exposure=True, seed=12)
    lazy = ds.chunk({"energy": 1}).assign_coords({c: ds[c] for c in ds.coords})
    m = lazy.gamma.excess_map(0.04, selection="all", correlate_off=False)
    assert m["significance"].chunks is not None and m["flux_ul"].chunks is not None
    with dask.config.set(scheduler="sync"):
        xr.testing.assert_allclose(
            m.compute(), excess_map(ds, 0.04, selection="all", correlate_off=False)
        )


def test_errors_name_the_problem():
    ds = make_dataset(n_e=1)
    with pytest.raises(ValueError, match="background"):
        excess_map(ds.drop_vars("background"), 0.1)
    with pytest.raises(ValueError, match="unknown excess map outputs"):
        excess_map(ds, 0.1, selection=["flux_points"])


# --------------------------------------------------------------------------- real data

SOURCE_MSH = "icrs; circle(228.32, -59.08, 0.4)"


@pytest.fixture(scope="module")
def msh(msh_reference_runs):
    from gammaxr.reduce.stack import stack_runs

    runs, ref, meta = msh_reference_runs
    on_off = stack_runs(runs.gamma.ring_background(0.5, 0.3, SOURCE_MSH, metric="pixel"))
    return on_off.compute(), ref, meta


def _by_coordinate(array):
    return array[..., ::-1]  # reference lon decreases along the last axis


@pytest.mark.hess
def test_msh1552_estimator_on_gammapys_inputs_matches_exactly(msh):
    on_off, ref, _ = msh
    ds = on_off.copy()
    for name in ("counts", "counts_off", "acceptance", "acceptance_off"):
        ds[name] = (("energy", "lat", "lon"), _by_coordinate(ref[name])[None].astype(np.float32))
    ds["mask_safe"] = ds["acceptance_off"] > 0
    m = excess_map(ds, 0.04, correlate_off=False, metric="pixel")
    np.testing.assert_allclose(
        m["significance"].values[0], _by_coordinate(ref["sqrt_ts"]), atol=1e-4
    )
    np.testing.assert_allclose(
        m["excess"].values[0], _by_coordinate(ref["npred_excess"]), rtol=1e-4, atol=1e-3
    )


@pytest.mark.hess
def test_msh1552_significance_map_matches_gammapy(msh):
    on_off, ref, meta = msh
    m = on_off.gamma.excess_map(0.04, correlate_off=False, metric="pixel")
    ours = m["significance"].values[0]
    theirs = _by_coordinate(ref["sqrt_ts"])
    assert np.isfinite(ours).all()
    assert ours.max() == pytest.approx(meta["sqrt_ts_max"], abs=0.01)
    # our reduction puts a few events on pixel edges into the neighbouring pixel; pixels
    # whose top-hat holds none of those match Gammapy within 0.1 sigma ...
    moved = on_off["counts"].values[0] != _by_coordinate(ref["counts"])
    assert moved.sum() <= 1e-3 * meta["counts"]
    kernel = tophat_kernel(SkyGrid.from_xarray(on_off), 0.04, metric="pixel")
    touched = convolve(moved.astype(float), kernel, mode="constant") > 0
    diff = np.abs(ours - theirs)
    assert diff[~touched].max() < 0.1
    assert np.median(diff) < 1e-3
    # ... and the others by about the significance of one count
    assert diff[touched].max() < 0.5
    # the sky metric draws the same disk on this grid near lat 0
    sky = on_off.gamma.excess_map(0.04, correlate_off=False)
    np.testing.assert_allclose(sky["significance"], m["significance"])


@pytest.mark.hess
def test_msh1552_significance_outside_the_exclusion_is_standard_normal(msh):
    on_off, _, _ = msh
    # as the Gammapy tutorial: the exclusion as mask_fit, then the finite pixels
    m = on_off.gamma.excess_map(0.04, correlate_off=False, metric="pixel", mask=SOURCE_MSH)
    sig = m["significance"].values.ravel()
    sig = sig[np.isfinite(sig)]
    assert sig.size > 20000
    assert abs(sig.mean()) < 0.05
    assert sig.std() == pytest.approx(1.0, abs=0.05)
    density, bins = np.histogram(sig, bins=51, density=True)
    centres = 0.5 * (bins[1:] + bins[:-1])
    (mu, sigma), _ = curve_fit(lambda x, m_, s_: norm.pdf(x, m_, s_), centres, density)
    assert abs(mu) < 0.05 and sigma == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("same_mask", [True, False])
@pytest.mark.parametrize("on_off", [False, True])
def test_numpy_maps_equal_lazy_ones_and_leave_the_input_alone(same_mask, on_off):
    # the numpy path convolves a mask that is the same at every energy once, and writes the
    # NaN outside the mask into the arrays it made: neither may change the results or the
    # caller's dataset
    ds = make_dataset(n_e=3, on_off=on_off, exposure=True, seed=21)
    if not same_mask:
        mask = ds["mask_safe"].values.copy()
        mask[0, :, :10] = False
        ds["mask_safe"] = ds["mask_safe"].copy(data=mask)
    before = ds.copy(deep=True)
    for correlate_off in (True, False):
        eager = excess_map(ds, 0.06, selection="all", correlate_off=correlate_off)
        lazy = excess_map(
            ds.chunk({"energy": 1}), 0.06, selection="all", correlate_off=correlate_off
        )
        with dask.config.set(scheduler="sync"):
            xr.testing.assert_allclose(eager, lazy.compute())
        xr.testing.assert_identical(ds, before)
    assert np.isnan(eager["significance"].values[0, :, :10]).all() != same_mask


def test_lazy_statistics_run_once_per_block_and_nothing_at_graph_time(monkeypatch):
    import sys

    module = sys.modules["gammaxr.estimators.excess_statistics"]
    calls = []
    products = module._products

    def counted(arrays, **kwargs):
        calls.append(arrays["use"].shape)
        return products(arrays, **kwargs)

    monkeypatch.setattr(module, "_products", counted)
    ds = make_dataset(n_e=3, exposure=True, seed=5)
    lazy = excess_map(ds.chunk({"energy": 1}), 0.06, selection="all")
    assert calls == [(1, 1, 1)]  # the names of the outputs, from one-pixel stand-ins
    calls.clear()
    with dask.config.set(scheduler="sync"):
        computed = lazy.compute()
    assert len(calls) == 3  # one call per energy block for every output
    assert all(shape[0] == 1 for shape in calls)
    eager = excess_map(ds, 0.06, selection="all")
    xr.testing.assert_allclose(computed, eager)


def _runs_dataset(on_off: bool, seed: int) -> xr.Dataset:
    """Three runs of ``make_dataset`` along ``obs_id``, the mask differing per run and band."""
    runs = [make_dataset(n_e=3, on_off=on_off, exposure=True, seed=seed + i) for i in range(3)]
    ds = xr.concat(runs, dim="obs_id").assign_coords(obs_id=[1, 2, 3])
    mask = ds["mask_safe"].values.copy()
    mask[1, 0, :, :7] = False
    mask[2, :, 30:, :] = False
    return ds.assign(mask_safe=ds["mask_safe"].copy(data=mask))


@pytest.mark.parametrize("block_pixels", [700, 1600, 5000])
@pytest.mark.parametrize("on_off", [False, True])
def test_statistics_in_blocks_on_every_core_equal_one_call_bit_for_bit(
    on_off, block_pixels, monkeypatch
):
    # blocks that cut planes in the middle, hold several planes, or a whole run; broadcast
    # inputs (the reference flux per band, a mask the same in every plane) cut alike
    import sys

    module = sys.modules["gammaxr.estimators.excess_statistics"]
    ds = _runs_dataset(on_off, seed=31)
    npred = xr.full_like(ds["counts"], 0.05, dtype=np.float64)
    before = ds.copy(deep=True)
    options = [{"selection": "all"}, {"npred_signal": npred}]
    if on_off:
        options += [{"correlate_off": False, "selection": "all"}]
    whole = [excess_map(ds, 0.06, **kwargs) for kwargs in options]
    monkeypatch.setattr(module, "BLOCKED_PRODUCTS_MIN_PIXELS", 1)
    monkeypatch.setattr(module, "PRODUCTS_BLOCK_PIXELS", block_pixels)
    calls = []
    products = module._products

    def spy(arrays, **kw):  # a block of the maps, or a one-pixel run naming the outputs
        calls.append(max(np.size(a) for a in arrays.values()) > 1)
        return products(arrays, **kw)

    monkeypatch.setattr(module, "_products", spy)
    for kwargs, expected in zip(options, whole, strict=True):
        calls.clear()
        blocked = excess_map(ds, 0.06, **kwargs)
        xr.testing.assert_identical(blocked, expected)
        n_blocks = len(contiguous_blocks(ds["counts"].shape, block_pixels))
        assert sum(calls) == n_blocks
        # one-pixel runs: the outputs named, and their memory planned before the sums
        assert len(calls) - n_blocks in (1, 2)
        xr.testing.assert_identical(ds, before)  # the caller's arrays are never written


def test_distinct_mask_planes_rebuild_the_mask_and_are_found_only_where_few():
    import sys

    module = sys.modules["gammaxr.estimators.excess_map"]
    ds = _runs_dataset(False, seed=61)
    use = ds["mask_safe"]
    planes, index = module._distinct_planes(use)
    assert len(planes) == 3  # every pixel; run 2 band 1 less 7 columns; run 3 half the map
    np.testing.assert_array_equal(planes[index], use.transpose(..., "lat", "lon").values)
    assert index.shape == (3, 3) and index[0].tolist() == [0, 0, 0]
    varied = use.copy(data=np.random.default_rng(1).random(use.shape) > 0.5)
    assert module._distinct_planes(varied) is None  # nine different planes
    assert module._distinct_planes(use.chunk({"energy": 1})) is None  # never computed
    assert module._distinct_planes(use.isel(obs_id=0, energy=0)) is None  # one plane


@pytest.mark.parametrize("on_off", [False, True])
def test_mask_sums_of_distinct_planes_equal_every_plane_convolved(on_off, monkeypatch):
    import sys

    module = sys.modules["gammaxr.estimators.excess_map"]
    ds = _runs_dataset(on_off, seed=71)
    once = excess_map(ds, 0.06, selection="all")
    monkeypatch.setattr(module, "_distinct_planes", lambda use: None)
    every = excess_map(ds, 0.06, selection="all")
    xr.testing.assert_identical(once, every)


def test_mask_sums_gathered_without_a_temporary_of_their_size():
    """The mask sums are gathered straight into their array: numpy's ``take`` in its default
    mode would first fill a temporary of the output's size (fresh memory, up to 80 ms for
    the 20-run top-hat's 36 MB)."""
    import sys
    import tracemalloc

    module = sys.modules["gammaxr.estimators.excess_map"]
    use = np.ones((4, 10, 200, 200), dtype=bool)
    use[1, :, :, :50] = False  # two distinct planes
    use = xr.DataArray(use, dims=("obs_id", "energy", "lat", "lon"))
    distinct = module._distinct_planes(use)
    kernel = np.ones((5, 5))
    expected = convolve_sky(use.astype(float), kernel).transpose(..., "lat", "lon").values
    tracemalloc.start()
    try:
        sums = module._mask_sums(use, distinct, kernel).values
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(sums, expected)
    assert peak < sums.nbytes / 4, f"{peak / 1e6:.1f} MB traced for a {sums.nbytes / 1e6} MB result"


@pytest.mark.parametrize(
    ("on_off", "kwargs"),
    [
        (False, {}),
        (False, {"selection": "all"}),
        (True, {"selection": "all"}),
        (True, {"correlate_off": False}),
    ],
)
def test_buffers_prepared_before_the_top_hat_sums_are_those_the_call_uses(
    on_off, kwargs, monkeypatch
):
    """A large eager top-hat has the memory of its results made on the idle core while it
    sums on one thread: exactly as many buffers as it then takes (none left over, none
    missing), and the same maps as without."""
    import sys

    from gammaxr import memory

    module = sys.modules["gammaxr.estimators.excess_statistics"]
    ds = _runs_dataset(on_off, seed=81)
    expected = excess_map(ds, 0.06, **kwargs)
    for name in ("KEPT_BUFFER_MIN_BYTES", "RESULT_BUFFER_MIN_BYTES", "BACKGROUND_FAULT_MIN_BYTES"):
        monkeypatch.setattr(memory, name, 1)  # the small test maps count as large
    monkeypatch.setattr(module, "BLOCKED_PRODUCTS_MIN_PIXELS", 1)
    monkeypatch.setattr(module, "PRODUCTS_BLOCK_PIXELS", 1600)
    made, fresh = [], []
    prepare, take = module.prepare_result_buffers, memory._take_kept
    monkeypatch.setattr(
        module, "prepare_result_buffers", lambda *a: made.append(prepare(*a)) or made[-1]
    )

    def take_kept(nbytes):  # a result made after the buffers were prepared
        buffer = take(nbytes)
        if buffer is None and made:
            fresh.append(nbytes)
        return buffer

    monkeypatch.setattr(memory, "_take_kept", take_kept)
    drop_kept = memory.drop_kept_buffers
    drop_kept()
    try:
        result = excess_map(ds, 0.06, **kwargs)
        if memory._libc_madvise() is None:
            assert made == [0]  # nothing prepared where the kernel cannot fault in
        else:
            assert made and made[0] > 0
            size = ds["counts"].size * 8
            left = [len(b) for b in memory._kept if size <= len(b) <= 2 * size]
            assert left == []  # every prepared buffer was taken
            assert size not in fresh  # and no result of that size needed a fresh one
        xr.testing.assert_identical(result, expected)
    finally:
        drop_kept()


def _memory_held(arrays: list[np.ndarray]) -> int:
    """Bytes of the distinct buffers under ``arrays`` (each followed to its first owner)."""
    held = {}
    for array in arrays:
        while isinstance(array.base, np.ndarray):
            array = array.base
        owner = array if array.base is None else array.base
        held[id(owner)] = array.nbytes if array.base is None else len(memoryview(owner))
    return sum(held.values())


@pytest.mark.parametrize("on_off", [False, True])
def test_statistics_in_blocks_hold_no_memory_but_their_outputs(on_off, monkeypatch):
    """The convolved exposure and mask, used up block by block, take two of the outputs:
    no output overlaps another, and the result holds no memory it does not show (its
    outputs' bytes and the mask's)."""
    import sys

    module = sys.modules["gammaxr.estimators.excess_statistics"]
    monkeypatch.setattr(module, "BLOCKED_PRODUCTS_MIN_PIXELS", 1)
    monkeypatch.setattr(module, "PRODUCTS_BLOCK_PIXELS", 1600)
    ds = _runs_dataset(on_off, seed=51)
    result = excess_map(ds, 0.06, selection="all")
    arrays = [v.values for v in result.data_vars.values()]
    for i, first in enumerate(arrays):
        for second in arrays[i + 1 :]:
            assert not np.shares_memory(first, second)
    assert _memory_held(arrays) == sum(a.nbytes for a in arrays)


def test_used_up_sums_host_outputs_only_where_their_memory_is_apart():
    import sys

    module = sys.modules["gammaxr.estimators.excess_statistics"]
    shape = (2, 3, 4, 5)
    options = {
        "on_off": False,
        "correlate_off": True,
        "chosen": set(),
        "n_sigma": 1.0,
        "n_sigma_ul": 2.0,
        "n_sigma_sensitivity": 5.0,
    }

    def arrays(exposure: np.ndarray, mask: np.ndarray) -> dict:
        return {
            "corr_counts": np.ones(shape),
            "corr_background": np.ones(shape),
            "corr_reco_exposure": exposure,
            "corr_mask": mask,
            "use": np.ones(shape, dtype=bool),
            "ref_flux": np.ones((1, 3, 1, 1)),
        }

    apart = arrays(np.ones(shape), np.ones(shape))
    in_place, hosts, names = module._output_memory(apart, shape, [], options)
    assert in_place == {"counts": "corr_counts", "background": "corr_background"}
    assert sorted(hosts.values()) == ["corr_mask", "corr_reco_exposure"]
    assert not set(hosts) & set(in_place) and set(hosts) <= set(names)
    interleaved = np.ones((*shape, 2))  # as the maps of a lat-major convolution output
    mixed = arrays(interleaved[..., 0], interleaved[..., 1])
    assert module._output_memory(mixed, shape, [], options)[1] == {}
    users = arrays(np.ones(shape), np.ones(shape))  # the caller's arrays: never written
    assert module._output_memory(users, shape, list(users.values()), options)[:2] == ({}, {})


def test_statistics_in_blocks_follow_the_callers_floating_point_settings(monkeypatch):
    # numpy's error settings are per thread: every block runs under the caller's
    import sys

    module = sys.modules["gammaxr.estimators.excess_statistics"]
    monkeypatch.setattr(module, "BLOCKED_PRODUCTS_MIN_PIXELS", 1)
    monkeypatch.setattr(module, "PRODUCTS_BLOCK_PIXELS", 400)
    seen = []
    products = module._products

    def spy(arrays, **kw):  # the blocks (not the one-pixel runs naming the outputs)
        if max(np.size(a) for a in arrays.values()) > 1:
            seen.append(np.geterr())
        return products(arrays, **kw)

    monkeypatch.setattr(module, "_products", spy)
    ds = _runs_dataset(False, seed=41)
    with np.errstate(divide="raise", over="warn", under="ignore", invalid="print"):
        caller = np.geterr()
        excess_map(ds, 0.06)
    blocks = seen
    assert len(blocks) == len(contiguous_blocks(ds["counts"].shape, 400)) > 2
    assert all(settings == caller for settings in blocks)
