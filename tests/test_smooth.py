"""``smooth`` / ``ds.gamma.smooth``: Gammapy's ``Map.smooth``, which calls scipy.ndimage on
each image (``gaussian_filter``, ``convolve`` with astropy's normalised ``Tophat2DKernel``,
``uniform_filter``), so scipy and astropy are the reference here."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from astropy.convolution import Tophat2DKernel
from scipy import ndimage

from gammaxr.estimators.smoothing import kernel_steps, smooth, smoothing_kernel
from gammaxr.geom import SkyGrid, energy_axis

BINSZ = 0.02


def make_maps(n_lat=31, n_lon=44, n_e=3, seed=1) -> xr.Dataset:
    """Poisson counts and a smooth background on a small galactic grid, with a mask and an
    exposure in true energy."""
    rng = np.random.default_rng(seed)
    grid = SkyGrid.from_center((320.0, -1.0), (n_lon * BINSZ, n_lat * BINSZ), BINSZ, "galactic")
    ds = grid.to_dataset(energy_axis(1.0, 10.0, n_e))
    ds = ds.assign_coords(energy_axis(0.5, 20.0, 2 * n_e, name="energy_true"))
    dims = ("energy", "lat", "lon")
    shape = (n_e, n_lat, n_lon)
    y, x = np.mgrid[:n_lat, :n_lon]
    background = (1.0 + 0.1 * x + 0.05 * y) * np.array([3.0, 2.0, 1.0][:n_e])[:, None, None]
    return ds.assign(
        counts=(dims, rng.poisson(background).astype(np.float32), {"units": ""}),
        background=(dims, background.astype(np.float32), {"units": ""}),
        mask_safe=(dims, np.ones(shape, bool)),
        exposure=(
            ("energy_true", "lat", "lon"),
            rng.uniform(1e9, 2e9, (2 * n_e, n_lat, n_lon)),
            {"units": "m2 s"},
        ),
    )


def pixel(ds: xr.Dataset) -> float:
    """The pixel size (deg) Gammapy converts widths with: the mean step."""
    return kernel_steps(SkyGrid.from_xarray(ds), "pixel")[0]


def per_image(data: np.ndarray, filter_image) -> np.ndarray:
    return np.stack([filter_image(image.astype(float)) for image in data])


@pytest.mark.parametrize("mode", ["reflect", "constant"])
@pytest.mark.parametrize("sigma_pixels", [0.9, 2.5, 2.65])
def test_gauss_is_scipys_gaussian_filter(mode, sigma_pixels):
    """Including the cut at 4 sigma rounded to the nearest pixel (11 px for 2.65 px)."""
    ds = make_maps()
    out = smooth(ds, sigma_pixels * pixel(ds), "gauss", mode=mode, metric="pixel")
    for name in ("counts", "background"):
        expected = per_image(
            ds[name].values, lambda im: ndimage.gaussian_filter(im, sigma_pixels, mode=mode)
        )
        np.testing.assert_allclose(out[name].values, expected, rtol=1e-12, atol=1e-12)
    kernel = smoothing_kernel(SkyGrid.from_xarray(ds), sigma_pixels * pixel(ds), metric="pixel")
    assert kernel.shape[0] == 2 * int(4 * sigma_pixels + 0.5) + 1
    assert kernel.sum() == pytest.approx(1.0, abs=1e-14)


@pytest.mark.parametrize("mode", ["reflect", "constant"])
@pytest.mark.parametrize("radius_pixels", [2.0, 4.5])
def test_disk_is_gammapys_normalised_tophat(mode, radius_pixels):
    ds = make_maps()
    out = smooth(ds, radius_pixels * pixel(ds), "disk", mode=mode, metric="pixel")
    disk = Tophat2DKernel(radius_pixels)
    disk.normalize("integral")
    expected = per_image(
        ds["counts"].values, lambda im: ndimage.convolve(im, disk.array, mode=mode)
    )
    np.testing.assert_allclose(out["counts"].values, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "constant"])
@pytest.mark.parametrize("side_pixels", [3, 7])
def test_box_is_scipys_uniform_filter(mode, side_pixels):
    ds = make_maps()
    width = side_pixels * pixel(ds)
    out = smooth(ds, width, "box", names="background", mode=mode, metric="pixel")
    expected = per_image(
        ds["background"].values, lambda im: ndimage.uniform_filter(im, side_pixels, mode=mode)
    )
    np.testing.assert_allclose(out["background"].values, expected, rtol=1e-12, atol=1e-12)


def test_maps_keep_their_dims_coords_and_attrs():
    """Every numeric map (not the boolean mask), each in its own dims; the dataset's attrs
    and the smoothing's."""
    ds = make_maps()
    out = ds.gamma.smooth("0.05 deg")
    assert list(out.data_vars) == ["counts", "background", "exposure"]
    for name in out.data_vars:
        assert out[name].dims == ds[name].dims
        assert out[name].dtype == np.float64
        xr.testing.assert_identical(out[name].coords.to_dataset(), ds[name].coords.to_dataset())
        assert out[name].attrs == ds[name].attrs
    assert out.attrs["smooth_kernel"] == "gauss"
    assert out.attrs["smooth_width_deg"] == pytest.approx(0.05)
    assert out.attrs["smooth_mode"] == "reflect"
    assert "smooth_kernel" not in ds.attrs
    # a smoothing with a normalised kernel mirrored at the edges keeps a flat map flat
    flat = ds.assign(background=ds["background"] * 0 + 2.5)
    np.testing.assert_allclose(flat.gamma.smooth(0.05)["background"], 2.5, rtol=1e-12)


def test_nan_counts_as_zero():
    ds = make_maps()
    holed = ds["counts"].values.copy()
    holed[1, 10, 20] = np.nan
    with_nan = smooth(ds.assign(counts=(ds["counts"].dims, holed)), 0.04, names=["counts"])
    holed[1, 10, 20] = 0.0
    zeroed = smooth(ds.assign(counts=(ds["counts"].dims, holed)), 0.04, names=["counts"])
    np.testing.assert_array_equal(with_nan["counts"].values, zeroed["counts"].values)


@pytest.mark.parametrize("mode", ["reflect", "constant"])
@pytest.mark.parametrize("chunks", [{"energy": 1}, {"lat": 10, "lon": 16}])
def test_lazy_maps_stay_lazy_and_equal_the_eager_ones(mode, chunks, raise_on_compute):
    import dask

    ds = make_maps()
    eager = smooth(ds, 0.05, mode=mode)
    lazy = smooth(ds.chunk(chunks), 0.05, mode=mode)  # under a raise-on-compute scheduler
    assert all(dask.is_dask_collection(lazy[name].data) for name in lazy.data_vars)
    with dask.config.set(scheduler="sync"):
        for name in eager.data_vars:
            np.testing.assert_allclose(
                lazy[name].values, eager[name].values, rtol=1e-13, atol=1e-12
            )


def test_bad_arguments_are_named():
    ds = make_maps()
    with pytest.raises(ValueError, match="kernel must be one of"):
        smooth(ds, 0.05, "triangle")
    with pytest.raises(ValueError, match="mode must be one of"):
        smooth(ds, 0.05, mode="wrap")
    with pytest.raises(ValueError, match="smoothing width must be positive"):
        smooth(ds, -0.05)
    with pytest.raises(KeyError, match="no map \\['npred'\\]"):
        smooth(ds, 0.05, names=["counts", "npred"])
    with pytest.raises(ValueError, match="no 'lat' and 'lon'"):
        smooth(ds.assign(livetime=("energy", [1.0, 2.0, 3.0])), 0.05, names="livetime")
    with pytest.raises(ValueError, match="no numeric map"):
        smooth(ds[["mask_safe"]], 0.05)


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_maps_in_any_dim_order_give_the_same_maps(mode):
    """Numpy maps with lat and lon last are convolved as they are; others go through the
    DataArrays of convolve_sky_maps: the same numbers either way."""
    ds = make_maps()
    usual = smooth(ds, 0.05, names=["counts", "background"], mode=mode)
    turned = smooth(ds.transpose("lon", "energy", "lat", ...), 0.05, names=["counts"], mode=mode)
    assert turned["counts"].dims == ("lon", "energy", "lat")
    np.testing.assert_allclose(
        turned["counts"].transpose(*usual["counts"].dims).values,
        usual["counts"].values,
        rtol=1e-13,
        atol=1e-13,
    )
