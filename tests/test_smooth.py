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
def test_gauss_wider_than_the_map_is_scipys(mode):
    """A 5 x 7 map under a Gaussian reaching 12 pixels: the mirror repeats, as scipy's."""
    ds = make_maps(n_lat=5, n_lon=7, n_e=1)
    out = smooth(ds, 3.0 * pixel(ds), names="counts", mode=mode, metric="pixel")
    expected = ndimage.gaussian_filter(ds["counts"].values[0].astype(float), 3.0, mode=mode)
    np.testing.assert_allclose(out["counts"].values[0], expected, rtol=1e-12, atol=1e-12)


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
@pytest.mark.parametrize("side_pixels", [2, 3, 4, 4.5, 7, 8])
def test_box_is_scipys_uniform_filter(mode, side_pixels):
    """Odd and even boxes, as scipy on Gammapy's pixels (lon decreasing with the column:
    an even window is not centred and reaches one pixel further towards the lower index);
    a side that is not a whole number of pixels is cut to one (4.5 px: 4)."""
    ds = make_maps()
    width = side_pixels * pixel(ds)
    out = smooth(ds, width, "box", names="background", mode=mode, metric="pixel")
    gammapy_pixels = ds["background"].values[..., ::-1]
    expected = per_image(
        gammapy_pixels, lambda im: ndimage.uniform_filter(im, side_pixels, mode=mode)
    )[..., ::-1]
    np.testing.assert_allclose(out["background"].values, expected, rtol=1e-12, atol=1e-12)


def test_even_box_kernel_reaches_lower_lat_and_higher_lon():
    """4 pixels: weights 1/16 on lat offsets -2 .. 1 and lon offsets -1 .. 2 (a convolution:
    the kernel's first row and last column are zero)."""
    ds = make_maps()
    kernel = smoothing_kernel(SkyGrid.from_xarray(ds), 4 * pixel(ds), "box", metric="pixel")
    assert kernel.shape == (5, 5)
    np.testing.assert_allclose(kernel.sum(), 1.0, rtol=1e-14)
    assert np.all(kernel[0] == 0) and np.all(kernel[:, -1] == 0)
    np.testing.assert_allclose(kernel[1:, :-1], 1 / 16, rtol=1e-14)


@pytest.mark.parametrize("side_pixels", [0.5, 1.0, 1.9])
def test_box_narrower_than_two_pixels_leaves_the_map(side_pixels):
    """scipy's uniform_filter of size int(side) < 2 returns its input; so does the box."""
    ds = make_maps()
    out = smooth(ds, side_pixels * pixel(ds), "box", names="background", metric="pixel")
    np.testing.assert_allclose(out["background"].values, ds["background"].values, rtol=1e-15)


def test_box_counts_whole_pixels_despite_float_noise():
    """0.06 deg on a 0.02 deg grid is 3 pixels (0.06 / 0.02 is 2.9999999999999996)."""
    ds = make_maps()
    step = pixel(ds)
    kernel = smoothing_kernel(
        SkyGrid.from_xarray(ds), 3 * step * (1 - 1e-15), "box", metric="pixel"
    )
    assert kernel.shape == (3, 3)


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
@pytest.mark.parametrize("kernel", ["gauss", "box"])
def test_lazy_maps_stay_lazy_and_equal_the_eager_ones(mode, chunks, kernel, raise_on_compute):
    """The Gaussian, and an even box (4 pixels: a kernel not symmetric about its centre)."""
    import dask

    ds = make_maps()
    width = 0.05 if kernel == "gauss" else 4 * pixel(ds)
    eager = smooth(ds, width, kernel, mode=mode)
    chunked = ds.chunk(chunks)
    lazy = smooth(chunked, width, kernel, mode=mode)  # under a raise-on-compute scheduler
    for name in lazy.data_vars:
        assert dask.is_dask_collection(lazy[name].data)
        if "lat" not in chunks:  # whole planes stay whole (the mirrored strips joined to them)
            assert lazy[name].chunks == chunked[name].chunks
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


# Gammapy 2.1's Map.smooth of the stacked Crab dataset of the reference files
# (benchmarks/gammapy_smooth.py, run with the separate Gammapy environment; its output copied
# here): per kernel, mode and map, the sum and maximum of the smoothed cube and five pixels
# of its first energy bin (the corners and the centre, (lat, lon) with lon increasing).
PIXELS = ((0, 0), (0, -1), (-1, 0), (-1, -1), (50, 50))
WIDTHS = {"gauss": 0.05, "disk": 0.1, "box": 0.1}
GAMMAPY_SMOOTHED = {
    ("gauss", "reflect", "counts"): (
        2479,
        2.27329055035265,
        (
            0.00204971020297313,
            0.0783798093546306,
            0.0112620011924787,
            0.0580230657452051,
            2.13091618160143,
        ),
    ),
    ("gauss", "reflect", "background"): (
        2112.97151710745,
        0.126014741469709,
        (
            0.0841878329482111,
            0.0782798822054789,
            0.0934948726184505,
            0.0867490035009596,
            0.124918716832277,
        ),
    ),
    ("gauss", "constant", "counts"): (
        2411.44760318286,
        2.27329055035265,
        (
            0.000977339600198892,
            0.0262871214937033,
            0.00492032019411361,
            0.0200832300960578,
            2.13091618160143,
        ),
    ),
    ("gauss", "constant", "background"): (
        2039.78489224535,
        0.126014741469709,
        (
            0.0283452531607312,
            0.0263525576923723,
            0.0314790808590421,
            0.0292003930954675,
            0.124918716832277,
        ),
    ),
    ("disk", "reflect", "counts"): (
        2479,
        1.95061728395062,
        (0, 0.0740740740740741, 0, 0.0493827160493827, 1.91358024691358),
    ),
    ("disk", "reflect", "background"): (
        2112.97151710745,
        0.126007127909013,
        (
            0.0843439805838797,
            0.0784171102223573,
            0.0936778850945426,
            0.0868915342438368,
            0.124917932590585,
        ),
    ),
    ("disk", "constant", "counts"): (
        2405.01234567901,
        1.95061728395062,
        (0, 0.0246913580246914, 0, 0.0123456790123457, 1.91358024691358),
    ),
    ("disk", "constant", "background"): (
        2033.09991478829,
        0.126007127909013,
        (
            0.0271414404298052,
            0.0252282533012791,
            0.0301447130831671,
            0.027948996351089,
            0.124917932590585,
        ),
    ),
    ("box", "reflect", "counts"): (
        2479,
        3.32,
        (1.11022302462516e-17, 0.08, -4.44089209850063e-17, 0.08, 3.04),
    ),
    ("box", "reflect", "background"): (
        2112.97151710745,
        0.126088948845863,
        (
            0.0835272514820099,
            0.0777164155244827,
            0.0927525007724762,
            0.0861738717556,
            0.124986988604069,
        ),
    ),
    ("box", "constant", "counts"): (
        2437.8,
        3.32,
        (1.11022302462516e-17, 0.04, 1.11022302462516e-17, 0.04, 3.04),
    ),
    ("box", "constant", "background"): (
        2068.57202049345,
        0.126088948845863,
        (
            0.0301376205682755,
            0.028037506043911,
            0.0334698179364205,
            0.0310846918821335,
            0.124986988604069,
        ),
    ),
}


def smoothed_cube(ds: xr.Dataset, width: float, kernel: str, name: str, mode: str) -> np.ndarray:
    """The map ``name`` of ``ds`` smoothed by ``ds.gamma.smooth``, as (energy, lat, lon)."""
    out = ds.gamma.smooth(width, kernel, names=[name], mode=mode)[name]
    return out.transpose("energy", "lat", "lon").values


@pytest.mark.parametrize("case", list(GAMMAPY_SMOOTHED))
def test_crab_maps_smoothed_as_gammapy(case, crab_stacked):
    """The default sky metric draws the kernels on Gammapy's pixel scale of this grid (its
    CAR pixels are 0.02 deg on the sky; the lon coordinate step is 0.0216 deg of RA)."""
    kernel, mode, name = case
    total, peak, pixels = GAMMAPY_SMOOTHED[case]
    cube = smoothed_cube(crab_stacked, WIDTHS[kernel], kernel, name, mode)
    assert cube.sum() == pytest.approx(total, rel=1e-12)
    assert cube.max() == pytest.approx(peak, rel=1e-12)
    np.testing.assert_allclose([cube[0][p] for p in PIXELS], pixels, rtol=1e-12, atol=1e-15)


# Gammapy 2.1's Map.smooth("0.08 deg", kernel="box") of the same dataset (4 pixels: an even
# box; benchmarks/gammapy_smooth.py): per mode and map the sum, the lat and lon centroids
# (pixels, lon increasing) and five pixels around the centre of the first energy bin.
NEIGHBOURS = ((50, 50), (49, 50), (51, 50), (50, 49), (50, 51))
GAMMAPY_EVEN_BOX = {
    ("reflect", "counts"): (
        2478.25,
        50.2690910925048,
        48.6886916170685,
        (2.6875, 2.375, 3, 2.9375, 1.875),
    ),
    ("reflect", "background"): (
        2111.70109613222,
        50.0064453551523,
        48.7998570929218,
        (
            0.124858396593481,
            0.124728647060692,
            0.124986515846103,
            0.124986152630299,
            0.124710294883698,
        ),
    ),
    ("constant", "counts"): (
        2444.75,
        50.4512731363125,
        48.5418243174149,
        (2.6875, 2.375, 3, 2.9375, 1.875),
    ),
    ("constant", "background"): (
        2075.352476548,
        50.2201711028849,
        48.5971525714603,
        (
            0.124858396593481,
            0.124728647060692,
            0.124986515846103,
            0.124986152630299,
            0.124710294883698,
        ),
    ),
}


@pytest.mark.parametrize("case", list(GAMMAPY_EVEN_BOX))
def test_crab_maps_smoothed_with_an_even_box_as_gammapy(case, crab_stacked):
    """The centroids move by half a pixel with the side an even window reaches further."""
    mode, name = case
    total, lat, lon, pixels = GAMMAPY_EVEN_BOX[case]
    cube = smoothed_cube(crab_stacked, 0.08, "box", name, mode)
    assert cube.sum() == pytest.approx(total, rel=1e-12)
    profile_lat, profile_lon = cube.sum(axis=(0, 2)), cube.sum(axis=(0, 1))
    assert (profile_lat * np.arange(cube.shape[1])).sum() / total == pytest.approx(lat, rel=1e-12)
    assert (profile_lon * np.arange(cube.shape[2])).sum() / total == pytest.approx(lon, rel=1e-12)
    np.testing.assert_allclose([cube[0][p] for p in NEIGHBOURS], pixels, rtol=1e-12)
