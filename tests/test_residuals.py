"""Residual maps: arithmetic of each method, masked smoothing, Poisson sqrt_ts against the
excess map, known truth, energy sums, laziness and errors."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

from gammaxr.estimators.excess_map import excess_map
from gammaxr.estimators.residuals import dataset_residuals, residual_map
from gammaxr.geom import SkyGrid, energy_axis
from gammaxr.stats import cash_sqrt_ts

DIMS = ("energy", "lat", "lon")


def make_dataset(n_pix=60, n_e=2, level=5.0, seed=0):
    rng = np.random.default_rng(seed)
    grid = SkyGrid.from_center((83.6, 22.0), n_pix * 0.02, 0.02)
    ds = grid.to_dataset(energy_axis(1.0, 10.0, n_e))
    shape = (n_e, *grid.shape)
    npred = rng.uniform(0.5, 1.5, shape) * level
    return ds.assign(
        counts=(DIMS, rng.poisson(npred).astype(np.float32), {"units": ""}),
        background=(DIMS, npred.astype(np.float32), {"units": ""}),
        mask_safe=(DIMS, np.ones(shape, bool)),
    )


def test_methods_without_smoothing():
    ds = make_dataset()
    c, n = ds["counts"].astype(float), ds["background"].astype(float)
    xr.testing.assert_allclose(residual_map(c, n, "diff"), c - n, check_dim_order=True)
    xr.testing.assert_allclose(residual_map(c, n, "diff/model"), (c - n) / n)
    xr.testing.assert_allclose(residual_map(c, n, "diff/sqrt(model)"), (c - n) / np.sqrt(n))
    np.testing.assert_allclose(
        residual_map(c, n, "sqrt_ts").values, cash_sqrt_ts(c.values, n.values)
    )
    assert residual_map(c, n, "diff").attrs["method"] == "diff"
    with pytest.raises(ValueError, match="method"):
        residual_map(c, n, "chi")
    with pytest.raises(ValueError, match="tophat"):
        residual_map(c, n, "sqrt_ts", smooth_kernel="gauss")
    with pytest.raises(ValueError, match="smooth_kernel"):
        residual_map(c.assign_attrs(frame="icrs"), n, smooth_kernel="airy")


@pytest.mark.parametrize("kernel", ["gauss", "box", "tophat"])
def test_masked_smoothing_averages_only_used_pixels(kernel):
    ds = make_dataset(n_e=1)
    mask = xr.ones_like(ds["counts"], dtype=bool)
    mask[:, 20:30, 20:40] = False
    flat = xr.full_like(ds["counts"], 4.0, dtype=float).where(mask, 1e6)  # garbage masked out
    model = xr.full_like(ds["counts"], 3.0, dtype=float)
    res = residual_map(
        flat.assign_attrs(frame="icrs"), model, "diff", mask=mask, smooth_kernel=kernel
    )
    used = mask.values
    np.testing.assert_allclose(res.values[used], 1.0, rtol=1e-9)  # mean counts 4, npred 3
    assert np.isnan(res.values[~used]).all()
    assert res.attrs["smooth_kernel"] == kernel and res.attrs["smooth_radius_deg"] == 0.1


def test_tophat_sqrt_ts_residuals_equal_the_excess_map_significance():
    ds = make_dataset(seed=3)
    res = ds.gamma.residuals(method="sqrt_ts", smooth_kernel="tophat", smooth_radius=0.06)
    sig = excess_map(ds, 0.06)["significance"]
    np.testing.assert_allclose(res.values, sig.values, rtol=1e-6, atol=1e-9)


def test_poisson_truth_gives_unit_residuals():
    ds = make_dataset(n_pix=120, n_e=1, level=30.0, seed=5)
    for method in ("diff/sqrt(model)", "sqrt_ts"):
        r = ds.gamma.residuals(method=method).values
        assert abs(r.mean()) < 0.03 and r.std() == pytest.approx(1.0, abs=0.03)
    # a model that is 10 % too low shows up as positive residuals
    low = dataset_residuals(ds, 0.9 * ds["background"], "diff/model").values
    assert low.mean() == pytest.approx(1 / 0.9 - 1, abs=0.01)


def test_sum_over_energy_and_masks_from_the_dataset():
    ds = make_dataset(n_e=3, seed=7)
    safe = ds["mask_safe"].values.copy()
    safe[0] = False  # first energy bin unsafe everywhere
    safe[:, :, :5] = False  # first columns unsafe in every bin
    ds["mask_safe"] = ds["mask_safe"].copy(data=safe)
    ds["mask_fit"] = (("lat", "lon"), np.ones((60, 60), bool))
    res = ds.gamma.residuals(method="diff", sum_energy=True)
    assert res.dims == ("lat", "lon")
    expected = (ds["counts"] - ds["background"]).isel(energy=slice(1, None)).sum("energy")
    np.testing.assert_allclose(res.values[:, 5:], expected.values[:, 5:], rtol=1e-5)
    assert np.isnan(res.values[:, :5]).all()


def test_on_off_dataset_uses_the_off_background():
    ds = make_dataset(n_e=1)
    on_off = ds.drop_vars("background").assign(
        counts_off=ds["counts"] * 0 + 40.0,
        acceptance=xr.full_like(ds["counts"], 1.0),
        acceptance_off=xr.full_like(ds["counts"], 8.0),
    )
    res = on_off.gamma.residuals()
    np.testing.assert_allclose(res.values, ds["counts"].values - 5.0)
    with pytest.raises(ValueError, match="npred"):
        dataset_residuals(ds.drop_vars("background"))


def test_lazy_inputs(raise_on_compute):
    ds = make_dataset()
    lazy = ds.chunk({"energy": 1}).assign_coords({c: ds[c] for c in ds.coords})
    res = lazy.gamma.residuals(method="diff/sqrt(model)", smooth_kernel="gauss")
    assert res.chunks is not None
    with dask.config.set(scheduler="sync"):
        expected = ds.gamma.residuals(method="diff/sqrt(model)", smooth_kernel="gauss")
        xr.testing.assert_allclose(res.compute(), expected)


# Gammapy 2.1's MapDataset.residuals(method, kernel=..., width=...) of the stacked Crab
# dataset of the reference files (safe mask, no models: the background predicts the counts;
# benchmarks/gammapy_residuals.py, run with the separate Gammapy environment, its output
# copied here): the sum and maximum of the residual cube and five pixels of its first energy
# bin (the corners and the centre, (lat, lon) with lon increasing).
PIXELS = ((0, 0), (0, -1), (-1, 0), (-1, -1), (50, 50))
# Gammapy's kernel and width -> gammaxr's smooth_kernel and smooth_radius (deg): a Gaussian
# of 1.875 pixels (cut at 8 pixels, as scipy), a box of half side 0.05 deg, a disk
GAMMAPY_KERNELS = {"gauss": ("gauss", 0.0375), "box": ("box", 0.05), "disk": ("tophat", 0.1)}
GAMMAPY_RESIDUALS = {
    ("diff", "gauss"): (
        366.098154165621,
        2.80208759563859,
        (
            -0.083523778509794,
            0.000841350676852121,
            -0.090538966733122,
            -0.0239323783771895,
            2.44006771560338,
        ),
    ),
    ("diff", "box"): (
        366.042270676337,
        3.1947696569562,
        (
            -0.0837156126896541,
            0.0332291498780251,
            -0.0929717164900569,
            0.0247647447718514,
            2.91501301139593,
        ),
    ),
    ("diff", "disk"): (
        365.212859945107,
        1.82569772750139,
        (
            -0.0845560259543932,
            -0.00167263528475396,
            -0.0939123753744822,
            -0.048610334786085,
            1.78866231432299,
        ),
    ),
    ("diff/sqrt(model)", "gauss"): (
        1594.93782769323,
        7.91523745328693,
        (
            -0.288381511206432,
            0.00301207360425893,
            -0.296637805466245,
            -0.0813784459265199,
            6.90265338018754,
        ),
    ),
    ("diff/sqrt(model)", "box"): (
        1597.13809932171,
        9.02785896546698,
        (
            -0.28933650424662,
            0.119069571542738,
            -0.304912637471878,
            0.0842775347610641,
            8.24533101465381,
        ),
    ),
    ("diff/sqrt(model)", "disk"): (
        1587.43583057997,
        5.16551537114586,
        (
            -0.290785188677816,
            -0.00596625521871347,
            -0.306451261009777,
            -0.164736436837001,
            5.06076257430486,
        ),
    ),
}


@pytest.mark.parametrize("case", list(GAMMAPY_RESIDUALS))
def test_smoothed_residuals_of_the_crab_dataset_as_gammapy(case, crab_stacked):
    """Counts and background averaged over the kernel inside the safe mask, as Gammapy's
    MapDataset.residuals with a kernel; its Gaussian cut at int(4 sigma + 0.5) pixels."""
    method, kernel = case
    total, peak, pixels = GAMMAPY_RESIDUALS[case]
    smooth_kernel, radius = GAMMAPY_KERNELS[kernel]
    residuals = crab_stacked.gamma.residuals(
        method=method, smooth_kernel=smooth_kernel, smooth_radius=radius
    )
    cube = residuals.transpose("energy", "lat", "lon").values
    assert np.nansum(cube) == pytest.approx(total, rel=1e-12)
    assert np.nanmax(cube) == pytest.approx(peak, rel=1e-12)
    np.testing.assert_allclose([cube[0][p] for p in PIXELS], pixels, rtol=1e-10, atol=1e-14)
