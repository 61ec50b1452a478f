"""Plane convolution (FFT with a reused kernel spectrum, separable kernels) and the masked sum
of stacking: equal to direct sums, on numpy and dask data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.ndimage import convolve

from gammaxr.estimators.smoothing import box_kernel, gauss_kernel, tophat_kernel
from gammaxr.geom import SkyGrid
from gammaxr.geom.convolve import (
    ROW_RUNS_MAX_ADDS,
    convolve_planes,
    kernel_spectrum,
    row_runs,
    separable_factors,
)
from gammaxr.reduce.ring import ring_kernel
from gammaxr.reduce.stack import masked_sum

GRID = SkyGrid.from_center((0.0, 0.0), 2.0, 0.02)
KERNELS = {
    "ring": ring_kernel(GRID, 0.3, 0.2),
    "tophat-small": tophat_kernel(GRID, 0.04),
    "tophat": tophat_kernel(GRID, 0.1),
    "tophat-large": tophat_kernel(GRID, 0.3),
    "runs-asymmetric": np.array([[0, 1.0, 0], [1.0, 1.0, 1.0], [0, 0, 0], [0, 1.0, 0], [0, 0, 0]]),
    "gauss": gauss_kernel(GRID, 0.05),
    "box": box_kernel(GRID, 0.1),
    "asymmetric": np.random.default_rng(5).random((7, 13)),
}


def _direct(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    planes = image.reshape(-1, *image.shape[-2:])
    out = [convolve(p, kernel, mode="constant", cval=0.0) for p in planes]
    return np.reshape(out, image.shape)


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("shape", [(2, 3, 60, 71), (1, 9, 6)])
def test_convolve_planes_equals_the_direct_sum(name, shape):
    kernel = KERNELS[name]
    image = np.random.default_rng(1).poisson(3.0, size=shape).astype(np.float32)
    image[..., :, :4] = 0  # an empty strip
    out = convolve_planes(image, kernel)
    assert out.dtype == np.float64 and out.shape == image.shape
    np.testing.assert_allclose(out, _direct(image.astype(float), kernel), rtol=1e-10, atol=1e-9)


def test_separable_kernels_are_recognised_and_give_exact_zeros():
    for name in ("gauss", "box"):
        column, row = separable_factors(KERNELS[name])
        np.testing.assert_allclose(np.outer(column, row), KERNELS[name], rtol=1e-12, atol=1e-18)
    for name in ("ring", "tophat", "asymmetric"):
        assert separable_factors(KERNELS[name]) is None
    image = np.zeros((40, 40))
    image[30:, 30:] = 1.0
    out = convolve_planes(image, KERNELS["gauss"])  # direct 1D sums: no FFT noise
    assert (out[:15, :15] == 0).all() and out[35, 35] > 0


def test_top_hats_are_summed_directly_exactly():
    import gammaxr.geom.convolve as module

    value, half_widths = row_runs(KERNELS["tophat"])
    assert value == 1.0 and half_widths == (0, 3, 4, 4, 4, 5, 4, 4, 4, 3, 0)
    assert row_runs(KERNELS["runs-asymmetric"]) == (1.0, (0, 1, -1, 0, -1))
    assert row_runs(KERNELS["tophat"] / KERNELS["tophat"].sum())[0] == pytest.approx(1 / 81)
    for name in ("ring", "gauss", "asymmetric"):  # two runs, unequal values, ...
        assert row_runs(KERNELS[name]) is None
    assert row_runs(np.array([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])) is None
    assert row_runs(np.zeros((3, 3))) is None
    small, large = (module._method(KERNELS[n], 50, 50, 0.0, 1) for n in ("tophat", "tophat-large"))
    assert isinstance(small, module._RowRunBatches) and isinstance(large, module._FFTBatches)
    radius_6 = tophat_kernel(GRID, 0.12)  # 2 x 6 + 13 - 1 = 24 additions: the largest
    assert 2 * 6 + 13 - 1 == ROW_RUNS_MAX_ADDS
    assert isinstance(module._method(radius_6, 50, 50, 0.0, 1), module._RowRunBatches)
    # integer counts give integers with no rounding, and exact zeros where nothing is seen
    counts = np.random.default_rng(2).poisson(40.0, size=(3, 50, 61)).astype(float)
    counts[:, 20:40, :] = 0.0
    out = convolve_planes(counts, KERNELS["tophat"])
    np.testing.assert_array_equal(out, _direct(counts, KERNELS["tophat"]))
    assert np.all(out[:, 25:35] == 0) and np.all(out[:, 24] > 0) and np.all(out[:, 35] > 0)


def test_kernel_spectrum_is_computed_once_and_read_only():
    kernel = KERNELS["ring"]
    first = kernel_spectrum(kernel, (64, 80))
    assert kernel_spectrum(kernel.copy(), (64, 80)) is first
    assert first.shape == (64, 41) and not first.flags.writeable
    big = kernel_spectrum(kernel, (1024, 1024))  # 8 MB: computed again, not kept
    assert kernel_spectrum(kernel, (1024, 1024)) is not big
    np.testing.assert_array_equal(kernel_spectrum(kernel, (1024, 1024)), big)
    with pytest.raises(ValueError, match="odd"):
        convolve_planes(np.ones((5, 5)), np.ones((2, 3)))


def _masked_inputs():
    rng = np.random.default_rng(2)
    values = rng.random((4, 5, 6, 7)).astype(np.float32)
    values[0, 1, 2, 3] = np.nan  # inside the mask: counts as 0
    values[1, 2, 3, 4] = np.nan
    mask = rng.random((4, 5, 6, 7)) > 0.3
    mask[1, 2, 3, 4] = False  # NaN outside the mask
    dims = ("obs_id", "energy", "lat", "lon")
    return xr.DataArray(values, dims=dims, attrs={"units": ""}), xr.DataArray(mask, dims=dims)


@pytest.mark.parametrize("dim", ["obs_id", "energy"])
@pytest.mark.parametrize("chunked", [False, True])
def test_masked_sum_equals_where_sum_bit_for_bit(dim, chunked):
    var, mask = _masked_inputs()
    expected = var.where(mask, 0).sum(dim)
    if chunked:  # one chunk per run: the tree-sum path over obs_id, the loop over energy
        var, mask = var.chunk({"obs_id": 1}), mask.chunk({"obs_id": 1})
    out = masked_sum(var, mask, dim)
    assert (out.chunks is not None) == chunked
    out = out.compute()
    np.testing.assert_array_equal(out.values, expected.values)
    assert out.dtype == np.float32 and out.attrs == {"units": ""}
    assert out.dims == expected.dims


def test_masked_sum_broadcasts_the_mask_and_keeps_integers():
    var, mask = _masked_inputs()
    counts = (var.fillna(0) * 10).astype(np.int32)
    spatial = mask.any("energy")
    out = masked_sum(counts, spatial, "obs_id")
    np.testing.assert_array_equal(out, counts.where(spatial, 0).sum("obs_id"))
    assert out.dtype == np.int64 and out.dims == ("energy", "lat", "lon")


@pytest.mark.parametrize("chunked", [False, True])
def test_convolve_sky_maps_equals_one_convolution_per_map(chunked):
    from gammaxr.estimators.smoothing import convolve_sky, convolve_sky_maps

    rng = np.random.default_rng(4)
    grid = SkyGrid.from_center((10.0, 5.0), (0.8, 0.6), 0.02)
    ds = grid.to_dataset()
    dims = ("energy", "lat", "lon")
    counts = xr.DataArray(rng.poisson(2.0, (3, *grid.shape)).astype(np.float32), dims=dims)
    counts[1, 3, 4] = np.nan  # NaN counts as 0
    image = xr.DataArray(rng.random(grid.shape), dims=("lat", "lon"))  # broadcast over energy
    mask = xr.DataArray(rng.random((3, *grid.shape)) > 0.2, dims=dims)
    counts, image, mask = (
        v.assign_coords(lat=ds["lat"], lon=ds["lon"]) for v in (counts, image, mask)
    )
    if chunked:  # spatial chunks: the halo path
        counts, image, mask = (v.chunk({"lat": 10, "lon": 12}) for v in (counts, image, mask))
    kernel = KERNELS["tophat"]
    out = convolve_sky_maps(
        {"counts": counts, "image": image}, kernel, mask=mask, integer=["counts"]
    )
    assert (out["counts"].chunks is not None) == chunked
    expected_counts = convolve_sky(counts.where(mask, 0), kernel, integer=True)
    expected_image = convolve_sky(image.where(mask, 0), kernel)
    xr.testing.assert_allclose(out["counts"].compute(), expected_counts.compute())
    xr.testing.assert_allclose(
        out["image"].transpose(*dims).compute(), expected_image.transpose(*dims).compute()
    )
    assert out["image"].sizes == {"energy": 3, **dict(zip(("lat", "lon"), grid.shape, strict=True))}
    np.testing.assert_array_equal(out["counts"].values, np.rint(out["counts"].values))


@pytest.mark.parametrize("kernel_name", ["tophat", "gauss", "ring"])
@pytest.mark.parametrize("n_maps", [1, 2])
def test_convolve_sky_maps_of_whole_plane_chunks_equal_the_numpy_maps(
    kernel_name, n_maps, monkeypatch
):
    """Chunks holding whole planes (per-run or per-band chunks): one call per block for all
    maps, the same numbers as numpy bit for bit, with chunks that differ between inputs."""
    import dask

    import gammaxr.estimators.smoothing as smoothing
    from gammaxr.estimators.smoothing import convolve_sky_maps

    calls = []
    block_maps = smoothing._convolve_block_maps

    def counted(*blocks, **kwargs):
        calls.append(blocks[0].shape)
        return block_maps(*blocks, **kwargs)

    monkeypatch.setattr(smoothing, "_convolve_block_maps", counted)

    rng = np.random.default_rng(12)
    grid = SkyGrid.from_center((10.0, 5.0), (0.8, 0.6), 0.02)
    ds = grid.to_dataset()
    dims = ("obs_id", "energy", "lat", "lon")
    counts = xr.DataArray(rng.poisson(2.0, (4, 3, *grid.shape)).astype(np.float32), dims=dims)
    counts[1, 2, 3, 4] = np.inf  # counts as 0
    background = xr.DataArray(rng.random((3, *grid.shape)), dims=dims[1:])  # no obs_id
    mask = xr.DataArray(rng.random((4, 3, *grid.shape)) > 0.2, dims=dims)
    counts, background, mask = (
        v.assign_coords(lat=ds["lat"], lon=ds["lon"]) for v in (counts, background, mask)
    )
    maps = {"counts": counts, "background": background}
    maps = dict(list(maps.items())[:n_maps])
    kernel = KERNELS[kernel_name]
    expected = convolve_sky_maps(maps, kernel, mask=mask, integer=["counts"])
    lazy_maps = {"counts": counts.chunk({"obs_id": 1}), "background": background}
    lazy_maps = dict(list(lazy_maps.items())[:n_maps])
    lazy_mask = mask.chunk({"obs_id": 2, "energy": 1})  # other chunks: unified
    with dask.config.set(scheduler="sync"):
        out = convolve_sky_maps(lazy_maps, kernel, mask=lazy_mask, integer=["counts"])
        assert all(out[name].chunks is not None for name in maps)
        calls.clear()  # (dask may call it on empty arrays to learn the output type)
        got = dict(zip(maps, dask.compute(*[out[name] for name in maps]), strict=True))
    assert len(calls) == 4 * 3  # one call per block of obs_id 1 x energy 1, for all maps
    assert set(calls) == {(1, 1, *grid.shape)}
    for name in maps:
        assert got[name].dims == expected[name].dims
        np.testing.assert_array_equal(got[name].values, expected[name].values)


def test_masked_sum_of_a_variable_without_the_dim_broadcasts_it():
    var, mask = _masked_inputs()
    image = var.isel(obs_id=0, drop=True).fillna(0)
    np.testing.assert_array_equal(
        masked_sum(image, mask, "obs_id"), image.where(mask, 0).sum("obs_id")
    )


def _direct_1d(lines: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    from scipy.ndimage import convolve1d

    return convolve1d(lines, weights, axis=axis, mode="constant", cval=0.0)


@pytest.mark.parametrize("n", [1, 7, 31, 32, 33, 100, 150, 151])
@pytest.mark.parametrize("half", [0, 3, 10, 15, 16, 20, 40])
@pytest.mark.parametrize("axis", [0, 1])
def test_banded_pass_equals_the_direct_1d_convolution(n, half, axis):
    """Every block: cut at either edge, whole inside (one stacked product), short at the end."""
    from gammaxr.geom.convolve import banded_pass

    rng = np.random.default_rng(n + half)
    weights = rng.random(2 * half + 1)  # not symmetric: the flip of a convolution shows
    lines = rng.random((n, 5) if axis == 0 else (5, n))
    out = banded_pass(lines, weights, axis=axis)
    np.testing.assert_allclose(out, _direct_1d(lines, weights, axis), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("half", [0, 3, 10, 15, 16, 20])
def test_banded_block_gives_the_rows_of_the_lat_pass(half):
    """Any rows ``start .. start + k`` of the lat pass; from a multiple of its block on (the
    fused passes' row blocks) the very products of the whole pass, bit for bit."""
    from gammaxr.geom.convolve import FUSED_ROWS, band_block, banded_block, banded_pass

    assert FUSED_ROWS % band_block(half, axis=0) == 0
    rng = np.random.default_rng(half)
    weights = rng.random(2 * half + 1)
    lines = rng.random((150, 13))
    whole = banded_pass(lines, weights, axis=0)
    for start, rows in [(0, 150), (0, FUSED_ROWS), (FUSED_ROWS, FUSED_ROWS), (144, 6), (5, 37)]:
        out = np.full((rows, 13), np.nan)
        banded_block(lines, weights, start, out)
        if start % band_block(half, axis=0) == 0:
            np.testing.assert_array_equal(out, whole[start : start + rows])
        else:
            np.testing.assert_allclose(out, whole[start : start + rows], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ["gauss", "tophat", "tophat-large", "separable-asymmetric"])
@pytest.mark.parametrize("batch_planes", [1, 2, 1000])
def test_plane_sources_equal_one_convolution_per_masked_source(name, batch_planes, monkeypatch):
    import gammaxr.geom.convolve as module

    rng = np.random.default_rng(3)
    kernel = (
        np.outer(rng.random(9), rng.random(15))  # separable, not symmetric
        if name == "separable-asymmetric"
        else KERNELS[name]
    )
    shape = (3, 5, 45, 70)
    monkeypatch.setattr(module, "PLANE_BATCH_BYTES", batch_planes * 8 * 45 * 70)
    counts = rng.poisson(2.0, size=shape).astype(np.float32)
    counts[1, 2, 3, 4] = np.nan  # counts as 0
    image = rng.random((45, 70))  # broadcast to every plane, never copied whole
    mask = rng.random(shape[1:]) > 0.2  # broadcast over the first dim
    out = module.convolve_plane_sources([counts, image], kernel, mask=mask)
    assert out.shape == (2, *shape) and out.dtype == np.float64
    lat_major = np.moveaxis(out, -2, 0).flags.c_contiguous
    assert out.flags.c_contiguous if name.startswith("tophat") else lat_major
    for got, source in zip(out, (counts, image), strict=True):
        masked = np.where(mask & np.isfinite(source), source, 0.0)
        expected = _direct(np.broadcast_to(masked, shape).astype(float), kernel)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("name", ["gauss", "tophat", "tophat-large"])
def test_non_finite_values_count_as_zero_and_huge_ones_are_kept(name, monkeypatch):
    import gammaxr.geom.convolve as module

    monkeypatch.setattr(module, "PLANE_BATCH_BYTES", 2 * 8 * 30 * 40)  # batches of 2 planes
    rng = np.random.default_rng(5)
    planes = rng.random((7, 30, 40))
    planes[0, 3, 4] = np.nan
    planes[2, 10, 20] = np.inf
    planes[3, 29, 39] = -np.inf
    planes[5, 15, 15] = 1e200  # finite: its square overflows the quick check, kept as it is
    out = module.convolve_plane_sources([planes], KERNELS[name])[0]
    expected = _direct(np.where(np.isfinite(planes), planes, 0.0), KERNELS[name])
    others = [0, 1, 2, 3, 4, 6]
    np.testing.assert_allclose(out[others], expected[others], rtol=1e-10, atol=1e-9)
    # the FFT's rounding is relative to the plane's largest value
    np.testing.assert_allclose(out[5], expected[5], rtol=1e-10, atol=1e200 * 1e-12)
    assert out[5].max() > 1e190


@pytest.mark.parametrize("name", ["gauss", "tophat", "ring"])
@pytest.mark.parametrize("source", ["float32", "masked", "broadcast", "int32"])
def test_non_finite_values_of_any_source_count_as_zero(name, source, monkeypatch):
    """Non-finite values are found on the sources (float32, masked, broadcast) or known
    absent (integers), in one batch and in several; the sums are the direct ones."""
    import gammaxr.geom.convolve as module

    rng = np.random.default_rng(12)
    planes = rng.random((6, 30, 40)).astype(np.float32)
    mask = None
    if source == "int32":
        planes = rng.poisson(3.0, planes.shape).astype(np.int32)
    else:
        planes[1, 3, 4] = np.nan
        planes[4, 29, 0] = -np.inf
    if source == "masked":
        mask = rng.random(planes.shape) > 0.3
        mask[4, 29, 0] = False  # an infinity outside the mask counts as 0 too
    other = planes[0] if source == "broadcast" else planes  # one plane broadcast to all
    finite = np.where(np.isfinite(planes), planes, 0).astype(np.float64)
    used = finite if mask is None else finite * mask
    second = np.broadcast_to(used[0], used.shape) if source == "broadcast" else used
    expected = [_direct(used, KERNELS[name]), _direct(second, KERNELS[name])]
    for batch_planes in (12, 2):
        monkeypatch.setattr(module, "PLANE_BATCH_BYTES", batch_planes * 8 * 30 * 40)
        out = module.convolve_plane_sources([planes, other], KERNELS[name], mask=mask)
        for got, want in zip(out, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("blas", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_all_finite_agrees_with_isfinite(dtype, blas):
    from gammaxr.geom.convolve import _all_finite

    values = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    assert _all_finite(values, blas) and _all_finite(values[:, ::2], blas)
    if dtype != np.int64:
        for bad in (np.nan, np.inf, -np.inf):
            broken = values.copy()
            broken[1, 2, 3] = bad
            assert not _all_finite(broken, blas) and not _all_finite(broken[:, ::2, 1:], blas)
        huge = np.full(4, np.finfo(dtype).max, dtype=dtype)  # squares overflow: still finite
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and the overflow of the check is not reported
            assert _all_finite(huge, blas)


def test_fft_zero_floor_for_signed_planes():
    image = np.zeros((2, 40, 40))
    image[0, 30:, 30:] = 1.0
    image[1, 30:, 30:] = -1.0  # signed plane: the floor from the sum of |values|
    out = convolve_planes(image, KERNELS["tophat"], zero_rtol=1e-12)
    assert (out[:, :15, :15] == 0).all()
    assert out[0, 35, 35] > 0 and out[1, 35, 35] < 0


def test_convolve_sky_maps_of_numpy_maps_in_any_dim_order():
    from gammaxr.estimators.smoothing import convolve_sky, convolve_sky_maps

    rng = np.random.default_rng(6)
    grid = SkyGrid.from_center((10.0, 5.0), (0.8, 0.6), 0.02)
    ds = grid.to_dataset()
    counts = xr.DataArray(
        rng.poisson(2.0, (*grid.shape, 3)).astype(np.float32), dims=("lat", "lon", "energy")
    ).assign_coords(lat=ds["lat"], lon=ds["lon"], energy=[1.0, 2.0, 3.0])
    image = xr.DataArray(rng.random(grid.shape), dims=("lat", "lon"))
    image = image.assign_coords(lat=ds["lat"], lon=ds["lon"])
    for kernel in (KERNELS["gauss"], KERNELS["tophat"]):
        out = convolve_sky_maps({"image": image, "counts": counts}, kernel, integer=["counts"])
        for name, var in (("image", image), ("counts", counts)):
            expected = convolve_sky(var, kernel, integer=name == "counts")
            got = out[name]  # broadcast against the other map
            xr.testing.assert_allclose(got, expected.broadcast_like(got).transpose(*got.dims))
            assert out[name].attrs == {}
        assert out["counts"].dims == ("lat", "lon", "energy")
        np.testing.assert_array_equal(out["counts"]["energy"], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("masked", [False, True])
def test_convolve_sky_maps_of_one_datasets_maps_as_they_are(masked, monkeypatch):
    """Maps of one Dataset (one grid, the same coordinates) are convolved as they are and
    share its coordinates; the results equal those of the general (broadcasting) path, which
    maps with a coordinate of their own still take."""
    import gammaxr.estimators.smoothing as smoothing

    rng = np.random.default_rng(8)
    grid = SkyGrid.from_center((10.0, 5.0), (0.8, 0.6), 0.02)
    shape = (3, *grid.shape)
    ds = grid.to_dataset({"energy": ("energy", [1.0, 2.0, 3.0])})
    ds["counts"] = (("energy", "lat", "lon"), rng.poisson(2.0, shape).astype(np.float32))
    ds["background"] = (("energy", "lat", "lon"), rng.random(shape))
    ds["mask_safe"] = (("energy", "lat", "lon"), rng.random(shape) > 0.2)
    maps = {"counts": ds["counts"], "background": ds["background"]}
    mask = ds["mask_safe"] if masked else None
    kernel = KERNELS["gauss"]
    assert smoothing._one_grid_in_memory([*maps.values(), *([mask] if masked else [])])
    direct = smoothing.convolve_sky_maps(maps, kernel, mask=mask, integer=["counts"])
    assert direct["counts"].variable.attrs == {} and direct["counts"].dims == ds["counts"].dims
    assert direct["background"]["lon"].variable is ds["lon"].variable  # shared, not copied
    monkeypatch.setattr(smoothing, "_one_grid_in_memory", lambda arrays: False)
    general = smoothing.convolve_sky_maps(maps, kernel, mask=mask, integer=["counts"])
    for name in maps:
        xr.testing.assert_identical(direct[name], general[name])
    # a map with a coordinate of its own: not one grid, the union of the coordinates
    monkeypatch.undo()
    run = ds["background"].assign_coords(run=("energy", [7, 8, 9]))
    assert not smoothing._one_grid_in_memory([ds["counts"], run])
    out = smoothing.convolve_sky_maps({"counts": ds["counts"], "background": run}, kernel)
    assert "run" in out["counts"].coords
    lazy = ds["background"].chunk({"energy": 1})
    assert not smoothing._one_grid_in_memory([ds["counts"], lazy])


def test_work_buffers_are_kept_per_role_and_thread_within_a_budget(monkeypatch):
    import threading

    import gammaxr.geom.convolve as module

    first = module.work_buffer("test-a", (3, 4))
    again = module.work_buffer("test-a", (2, 5))  # smaller: the same memory
    other = module.work_buffer("test-b", (3, 4))
    assert again.shape == (2, 5) and np.shares_memory(first, again)
    assert not np.shares_memory(first, other)
    seen = {}
    thread = threading.Thread(
        target=lambda: seen.setdefault("a", module.work_buffer("test-a", (3, 4)))
    )
    thread.start()
    thread.join()
    assert not np.shares_memory(seen["a"], first)  # each thread its own
    monkeypatch.setattr(module, "KEPT_WORK_BYTES", 1000)
    big = module.work_buffer("test-big", (200,))  # 1600 bytes: over the budget, not kept
    assert not np.shares_memory(big, module.work_buffer("test-big", (200,)))


@pytest.mark.parametrize("workers", [1, -1])
def test_convolutions_in_concurrent_threads_keep_their_own_work_memory(workers, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import gammaxr.geom.convolve as module
    from gammaxr.geom.convolve import convolve_plane_sources

    monkeypatch.setattr(module, "PLANE_BATCH_BYTES", 5 * 8 * 50 * 50)  # 10 planes of gauss
    rng = np.random.default_rng(8)
    images = [rng.random((3 + 20 * (k % 3), 40 + k, 50)) for k in range(8)]  # 1 to 5 batches
    kernels = [KERNELS["gauss"], KERNELS["tophat"]] * 4
    expected = [convolve_plane_sources([im], k)[0] for im, k in zip(images, kernels, strict=True)]
    with ThreadPoolExecutor(4) as pool:  # workers=-1: the calls share the batch threads
        for _ in range(5):  # threads reuse their buffers for other shapes and kernels
            got = list(
                pool.map(
                    lambda a: convolve_plane_sources([a[0]], a[1], workers=workers)[0],
                    zip(images, kernels, strict=True),
                )
            )
            for g, e in zip(got, expected, strict=True):  # a shared buffer would mix maps
                np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", ["gauss", "separable-asymmetric"])
def test_banded_batches_on_every_core_equal_the_batches_in_turn(name, monkeypatch):
    import gammaxr.geom.convolve as module

    rng = np.random.default_rng(9)
    kernel = (
        np.outer(rng.random(9), rng.random(15)) if name == "separable-asymmetric" else KERNELS[name]
    )
    shape = (4, 7, 45, 70)
    monkeypatch.setattr(module, "PLANE_BATCH_BYTES", 3 * 8 * 45 * 70)  # 6 planes a batch
    counts = rng.poisson(2.0, size=shape).astype(np.float32)
    counts[2, 3, 4, 5] = np.inf  # counts as 0
    background = rng.random(shape[1:])  # broadcast over the first dim
    mask = rng.random(shape) > 0.1
    in_turn = module.convolve_plane_sources([counts, background], kernel, mask=mask, workers=1)
    threads = set()
    batches = module._SeparableBatches.convolve

    def convolve(self, *args):
        import threading

        threads.add(threading.current_thread().name)
        return batches(self, *args)

    monkeypatch.setattr(module._SeparableBatches, "convolve", convolve)
    threaded = module.convolve_plane_sources([counts, background], kernel, mask=mask, workers=-1)
    np.testing.assert_array_equal(threaded, in_turn)  # the same sums, bit for bit
    assert np.isfinite(threaded).all()
    from gammaxr.geom.batch_threads import batch_threads, one_blas_thread

    with one_blas_thread() as single:  # False if another thread controls BLAS's limits
        pooled = single and batch_threads(-1) > 1
    if pooled:  # the batches ran on the kept pool (how they split between its threads varies)
        assert threads and all(t.startswith("gammaxr-batches") for t in threads)


@pytest.mark.parametrize("shape", [(7, 9, 11), (5, 40, 3), (4, 70, 33)])
def test_fused_banded_passes_on_small_and_tall_planes(shape, monkeypatch):
    """Several batches (the fused row blocks) on planes smaller than the kernel and taller
    than two row blocks: the direct sums."""
    import gammaxr.geom.convolve as module

    rng = np.random.default_rng(13)
    kernel = np.outer(rng.random(21), rng.random(9))  # separable, wider than some planes
    monkeypatch.setattr(module, "PLANE_BATCH_BYTES", 8 * shape[1] * shape[2])  # 2 planes
    image = rng.random(shape)
    for workers in (1, -1):
        out = module.convolve_plane_sources([image], kernel, workers=workers)[0]
        np.testing.assert_allclose(out, _direct(image, kernel), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", ["tophat", "gauss", "ring"])
def test_only_eager_top_hat_sums_fault_their_output_in_on_a_helper(name, monkeypatch):
    """The top-hat sums of an eager call run on one thread: a fresh output is faulted in by
    a helper (:func:`gammaxr.memory.result_array`) and the sums are those of a call inside
    a dask task (``workers=1``, no helper). The banded passes and the FFT keep every core
    busy and ask for none."""
    import gammaxr.geom.convolve as module
    from gammaxr import memory

    asked = []
    real = memory.result_array

    def result_array(shape, dtype=np.float64, *, fault_in_background=False):
        asked.append(fault_in_background)
        return real(shape, dtype, fault_in_background=fault_in_background)

    monkeypatch.setattr(module, "result_array", result_array)
    kernel = KERNELS[name]
    planes = np.random.default_rng(3).poisson(3.0, size=(60, 100, 120)).astype(np.float32)
    memory.drop_kept_buffers()
    eager = module.convolve_plane_sources([planes], kernel, workers=-1)
    in_task = module.convolve_plane_sources([planes], kernel, workers=1)
    np.testing.assert_array_equal(eager, in_task)
    assert asked == [name == "tophat", False]


def test_band_blocks_by_axis_and_kernel_width():
    """Along axis 0 (the lat pass) blocks of 4 pixels for every kernel; along axis 1 (the lon
    pass) blocks of 8 up to a half width of 15 pixels, of 16 beyond (measured fastest,
    docs/performance.md)."""
    from gammaxr.geom.convolve import WIDE_KERNEL_HALF, band_block

    assert band_block(0, axis=0) == band_block(40, axis=0) == 4
    assert band_block(0) == band_block(WIDE_KERNEL_HALF, axis=1) == 8
    assert band_block(WIDE_KERNEL_HALF + 1) == band_block(20, axis=1) == 16


@pytest.mark.parametrize("half", [2, 10, 20])
def test_lat_pass_blocks_agree_with_larger_blocks(half, monkeypatch):
    """The lat pass in blocks of 4 adds the same products as in blocks of 8 or 16 (on the
    development machine's OpenBLAS in the same order, to the last bit; the order inside
    BLAS's kernels may differ elsewhere, hence the float tolerance)."""
    import gammaxr.geom.convolve as module

    rng = np.random.default_rng(half)
    weights = rng.random(2 * half + 1)
    lines = rng.random((150, 301))
    small = module.banded_pass(lines, weights, axis=0)
    for block in (8, 16):
        monkeypatch.setattr(module, "COLUMN_BAND_BLOCK", block)
        larger = module.banded_pass(lines, weights, axis=0)
        np.testing.assert_allclose(larger, small, rtol=1e-14, atol=1e-15)
