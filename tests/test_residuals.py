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
