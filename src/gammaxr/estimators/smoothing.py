"""Sky kernels (top-hat, Gaussian, box) and their convolution over ``(lat, lon)``.

Kernels are small numpy arrays on the pixel grid of a :class:`gammaxr.geom.SkyGrid`,
odd-sized and centred on the middle element, axes ``(lat, lon)``. Distances are measured
either on the sky at the grid centre (``metric="sky"``: a lon step counts
``lon_step * cos(lat_centre)`` deg; on grids with pixels square on the sky this is a circle
in pixels) or in pixels of the mean step (``metric="pixel"``). Gammapy converts an angle to
pixels with the mean of its WCS steps (``cdelt``): on a CAR grid with its reference on the
equator (a regular lon/lat grid, as survey maps) that is ``metric="pixel"``; on a CAR grid
centred on the target away from the equator (``WcsGeom.create(skydir=...)``, whose lon
coordinate step is ``cdelt / cos(lat)``) it is ``metric="sky"``. Radii are inclusive (with a
relative tolerance of 1e-9 against float noise in the steps).

:func:`convolve_sky` applies a kernel to every ``(lat, lon)`` plane of a DataArray and
:func:`convolve_sky_maps` to several maps at once (zero outside the map; all planes of a
block in one call of :func:`gammaxr.geom.convolve.convolve_plane_sources`: two 1D passes of
banded matrix products for the separable Gaussian and box kernels, FFTs for the others, the
kernel's spectrum computed once). On numpy data one eager call uses all cores; dask-backed
data stays lazy, chunk by chunk with a halo. :func:`smooth` (``ds.gamma.smooth``) is
Gammapy's ``Map.smooth`` on a dataset's maps: a normalised Gaussian, disk or box
(:func:`smoothing_kernel`), the map mirrored or zero beyond its edges.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache

import numpy as np
import xarray as xr
from dask import is_dask_collection

from gammaxr._blocks import aligned_blocks, map_aligned_blocks
from gammaxr.geom.convolve import convolve_plane_sources, convolve_planes
from gammaxr.geom.grid import SkyGrid
from gammaxr.geom.halo import map_planes_with_halo
from gammaxr.units import to_positive, to_unit

__all__ = [
    "GAUSS_TRUNCATE",
    "SMOOTH_KERNELS",
    "SMOOTH_MODES",
    "box_kernel",
    "convolve_sky",
    "convolve_sky_maps",
    "gauss_kernel",
    "kernel_steps",
    "smooth",
    "smoothing_kernel",
    "tophat_kernel",
    "uniform_box_kernel",
]

#: Relative tolerance on kernel radii (float noise in pixel steps).
RADIUS_RTOL = 1e-9
#: FFT results below this fraction of a plane's absolute total are set to exactly zero.
FFT_ZERO_RTOL = 1e-12


def kernel_steps(grid: SkyGrid, metric: str = "sky") -> tuple[float, float]:
    """Pixel size in deg along lon and lat used to draw kernels on ``grid``.

    Parameters
    ----------
    grid : SkyGrid
        The sky grid.
    metric : {"sky", "pixel"}
        ``"sky"``: ``(lon_step * cos(lat_centre), lat_step)``; ``"pixel"``: both equal to the
        mean of the two steps. Which one is Gammapy's pixel scale depends on its grid (see
        the module docstring).

    Returns
    -------
    tuple of float
        ``(dx, dy)`` in deg.
    """
    if metric == "sky":
        lat_c = 0.5 * (grid.lat_edges[0] + grid.lat_edges[-1])
        return grid.lon_step * np.cos(np.radians(lat_c)), grid.lat_step
    if metric == "pixel":
        step = 0.5 * (abs(grid.lon_step) + abs(grid.lat_step))
        return step, step
    raise ValueError(f"kernel metric must be 'sky' or 'pixel', got {metric!r}")


def _offsets(grid: SkyGrid, half_size: float, metric: str) -> tuple[np.ndarray, np.ndarray]:
    return _step_offsets(*kernel_steps(grid, metric), half_size)


def _whole_pixels(length: float, step: float) -> int:
    """Whole pixels of ``step`` deg in ``length`` deg (within :data:`RADIUS_RTOL`)."""
    return int(np.floor(length / step * (1 + RADIUS_RTOL)))


def _step_offsets(dx: float, dy: float, half_size: float) -> tuple[np.ndarray, np.ndarray]:
    nx, ny = _whole_pixels(half_size, dx), _whole_pixels(half_size, dy)
    return np.arange(-nx, nx + 1) * dx, np.arange(-ny, ny + 1) * dy


def tophat_kernel(grid: SkyGrid, radius: float, metric: str = "sky") -> np.ndarray:
    """A disk of ``radius`` deg as a 0/1 kernel (pixel centres within the radius).

    Parameters
    ----------
    grid : SkyGrid
        The sky grid.
    radius : float, str or astropy.units.Quantity
        Radius in deg (inclusive), > 0.
    metric : {"sky", "pixel"}
        See :func:`kernel_steps`.

    Returns
    -------
    numpy.ndarray of float, shape (2 * ny + 1, 2 * nx + 1)
        1 inside the disk, 0 outside; axes (lat, lon). For 0.04 deg on 0.02 deg pixels this
        is the 13-pixel disk of Gammapy's ``Tophat2DKernel(2)``.
    """
    radius = to_unit(radius, "deg", "radius")
    if not radius > 0:
        raise ValueError(f"top-hat radius must be positive, got {radius} deg")
    x, y = _offsets(grid, radius, metric)
    d2 = x[None, :] ** 2 + y[:, None] ** 2
    return (d2 <= radius**2 * (1 + RADIUS_RTOL)).astype(float)


def gauss_kernel(
    grid: SkyGrid, sigma: float, metric: str = "sky", n_sigma: float = 4.0
) -> np.ndarray:
    """A 2D Gaussian of width ``sigma`` deg, sampled at pixel centres, normalised to sum 1.

    Parameters
    ----------
    grid : SkyGrid
        The sky grid.
    sigma : float, str or astropy.units.Quantity
        Gaussian sigma in deg, > 0.
    metric : {"sky", "pixel"}
        See :func:`kernel_steps`.
    n_sigma : float
        Half size of the kernel in units of ``sigma`` (default 4, as astropy).

    Returns
    -------
    numpy.ndarray of float, axes (lat, lon)
    """
    sigma = to_positive(sigma, "deg", "Gaussian sigma")
    dx, dy = kernel_steps(grid, metric)
    return _remembered_gauss(float(dx), float(dy), sigma, float(n_sigma)).copy()


@lru_cache(maxsize=64)
def _remembered_gauss(dx: float, dy: float, sigma: float, n_sigma: float) -> np.ndarray:
    """:func:`gauss_kernel` for pixel steps ``(dx, dy)`` deg (a small memo of a pure
    function: each call gets a copy)."""
    x, y = _step_offsets(dx, dy, n_sigma * sigma)
    kernel = np.exp(-0.5 * (x[None, :] ** 2 + y[:, None] ** 2) / sigma**2)
    return kernel / kernel.sum()


def box_kernel(grid: SkyGrid, width: float, metric: str = "sky") -> np.ndarray:
    """A square box of full ``width`` deg (pixels whose centres are within ``width / 2``),
    normalised to sum 1.

    Parameters
    ----------
    grid, metric
        As in :func:`gauss_kernel`.
    width : float, str or astropy.units.Quantity
        Full width in deg, > 0.

    Returns
    -------
    numpy.ndarray of float, axes (lat, lon)
    """
    width = to_positive(width, "deg", "box width")
    x, y = _offsets(grid, 0.5 * width, metric)
    kernel = np.ones((y.size, x.size))
    return kernel / kernel.sum()


def uniform_box_kernel(grid: SkyGrid, width: float, metric: str = "sky") -> np.ndarray:
    """The box of Gammapy's ``Map.smooth(kernel="box")`` (scipy's ``uniform_filter`` on
    Gammapy's pixels): ``n`` pixels along each axis, ``n`` the whole number of pixels in
    ``width``, normalised to sum 1.

    scipy averages a window of ``n`` pixels that starts ``n // 2`` pixels before each
    pixel: for an odd ``n`` the centred box; for an even ``n`` a window that reaches one
    pixel further towards the lower pixel index. Gammapy's column index runs to lower
    longitude (its CAR grids), gammaxr's lon to higher, so an even box covers lat offsets
    ``-n/2 .. n/2 - 1`` and lon offsets ``-n/2 + 1 .. n/2`` (tested against Gammapy 2.1),
    drawn as an odd kernel of ``n + 1`` pixels with a zero first row and last column. A side
    of less than two pixels leaves the axis as it is (``n = 1``), as scipy.

    Parameters
    ----------
    grid, metric
        As in :func:`gauss_kernel`.
    width : float, str or astropy.units.Quantity
        Side of the box in deg, > 0. Pixels are counted with a relative tolerance of
        :data:`RADIUS_RTOL` (0.06 deg is 3 pixels of 0.02 deg, where Gammapy's float
        division gives 2.9999999999999996 and scipy 2).

    Returns
    -------
    numpy.ndarray of float, axes (lat, lon)
        Odd-sized, summing to 1.
    """
    width = to_positive(width, "deg", "box width")
    dx, dy = kernel_steps(grid, metric)
    factors = []
    for step, zero_at in ((dy, 0), (dx, -1)):  # lat, lon
        n = max(1, _whole_pixels(width, abs(step)))
        box = np.full(n + 1 - n % 2, 1.0 / n)
        if n % 2 == 0:
            box[zero_at] = 0.0  # the side the even window does not reach
        factors.append(box)
    return np.outer(*factors)


#: FFT threads of one eager convolution of numpy data (all cores; dask tasks use 1 each).
EAGER_WORKERS = -1


def _convolve_planes(
    image: np.ndarray, kernel: np.ndarray, integer: bool, workers: int = 1
) -> np.ndarray:
    if integer:
        out = convolve_planes(image, kernel, workers=workers)
        return np.rint(out, out=out)
    return convolve_planes(image, kernel, zero_rtol=FFT_ZERO_RTOL, workers=workers)


def convolve_sky(var: xr.DataArray, kernel: np.ndarray, *, integer: bool = False) -> xr.DataArray:
    """Convolve every ``(lat, lon)`` plane of ``var`` with ``kernel`` (zero outside the map).

    Parameters
    ----------
    var : xarray.DataArray
        Map(s) with dims ``lat`` and ``lon`` (any others are looped over); NaN counts as 0.
    kernel : numpy.ndarray
        Odd-sized kernel, axes (lat, lon), e.g. :func:`tophat_kernel`.
    integer : bool
        Round the result to the nearest integer (sums of counts with a 0/1 kernel; removes
        the FFT noise, as Gammapy does).

    Returns
    -------
    xarray.DataArray of float64
        Same dims and coordinates as ``var`` (no attrs); lazy if ``var`` is, chunk by chunk
        with a halo of half the kernel (:func:`gammaxr.geom.halo.map_planes_with_halo`).
        Values within float noise of zero are exactly zero.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel must be 2D with odd sizes, got shape {kernel.shape}")
    halo = (kernel.shape[0] // 2, kernel.shape[1] // 2)
    workers = 1 if is_dask_collection(var.data) else EAGER_WORKERS
    return map_planes_with_halo(
        var, _convolve_planes, halo, np.float64, kernel=kernel, integer=integer, workers=workers
    )


_MAPS = "sky_map"  # temporary dim: the maps convolved together
_PLANE = ("lat", "lon")


def _stack_masked(*arrays: np.ndarray, n_maps: int) -> np.ndarray:
    """The first ``n_maps`` arrays (broadcast) where the last one (a mask, if given) is
    true, 0 elsewhere, stacked along a new last axis (float64)."""
    maps, mask = arrays[:n_maps], arrays[n_maps:]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    out = np.empty((n_maps, *shape))
    for i, values in enumerate(maps):
        if mask:  # a product (NaN outside the mask stays NaN: the convolution zeroes it)
            np.multiply(values, mask[0], out=out[i], casting="unsafe")
        else:
            out[i] = values
    return np.moveaxis(out, 0, -1)


def _convolve_block_maps(
    *blocks: np.ndarray,
    n_maps: int,
    kernel: np.ndarray,
    integer: tuple[int, ...],
    workers: int = 1,
) -> tuple[np.ndarray, ...] | np.ndarray:
    """Every map of a block (and the mask, last if given), ``(..., n_lat, n_lon)``,
    convolved together: the ``n_maps`` convolved maps (views of one array, not copied
    apart; one array if ``n_maps`` is 1), those at the indices ``integer`` rounded."""
    maps, mask = blocks[:n_maps], blocks[n_maps:]
    out = convolve_plane_sources(
        maps, kernel, mask=mask[0] if mask else None, zero_rtol=FFT_ZERO_RTOL, workers=workers
    )
    for i in integer:
        np.rint(out[i], out=out[i])
    return tuple(out) if n_maps > 1 else out[0]


def _convolve_in_memory(
    arrays: list[np.ndarray], n_maps: int, kernel: np.ndarray, integer: tuple[int, ...] = ()
) -> list[np.ndarray]:
    """The eager call of :func:`_convolve_block_maps` on numpy maps (and the mask, last if
    given), lat and lon last, on all cores: the ``n_maps`` convolved maps as a list."""
    out = _convolve_block_maps(
        *arrays, n_maps=n_maps, kernel=kernel, integer=integer, workers=EAGER_WORKERS
    )
    return list(out) if n_maps > 1 else [out]


def _convolve_whole_planes(
    first_map: xr.DataArray,
    names: list[str],
    variables: list[xr.Variable],
    dims: tuple,
    coords: dict,
    kernel: np.ndarray,
    integer: Collection[str],
) -> dict[str, xr.DataArray] | None:
    """:func:`convolve_sky_maps` with whole ``(lat, lon)`` planes in each block: numpy data
    in one eager call on all cores; dask data whose chunks hold whole planes (as the per-run
    chunks of a reduction) in one task per block. Every map of a block in one call of
    :func:`gammaxr.geom.convolve.convolve_plane_sources`, which reads them batch by batch
    (no stacked copy). None for dask data with planes split between chunks (the halo
    path)."""
    order = tuple(d for d in dims if d not in _PLANE) + _PLANE
    arrays = [v.data if v.dims == order else v.transpose(*order).data for v in variables]
    n_maps = len(names)
    options = {
        "n_maps": n_maps,
        "kernel": kernel,
        "integer": tuple(i for i, name in enumerate(names) if name in integer),
    }
    coords = {k: v for k, v in coords.items() if set(v.dims) <= set(dims)}
    if not any(is_dask_collection(a) for a in arrays):
        out = _convolve_in_memory(arrays, n_maps, kernel, options["integer"])
        reuse = first_map.dims == dims and set(first_map.coords) == set(coords)
        if not reuse:  # coordinates built once, shared by every map
            first_map = xr.DataArray(out[0], dims=order, coords=coords).transpose(*dims)
        axes = [order.index(d) for d in dims]
        return _on_the_grid_of(first_map, names, [data.transpose(axes) for data in out])
    blocks = aligned_blocks(arrays)
    if any(len(c) > 1 for c in blocks[0].chunks[-2:]):
        return None
    out = map_aligned_blocks(_convolve_block_maps, blocks, n_maps, **options)
    return {
        name: xr.DataArray(data, dims=order, coords=coords).transpose(*dims)
        for name, data in zip(names, out, strict=True)
    }


def _on_the_grid_of(
    first_map: xr.DataArray, names: list[str], data: list[np.ndarray]
) -> dict[str, xr.DataArray]:
    """The numpy ``data`` (in the dims of ``first_map``) as DataArrays with the coordinates
    and indexes of ``first_map``, shared as ``ds[name]`` shares a Dataset's (the public
    constructor would check and copy them again: 40 us a map)."""
    variables, indexes = first_map.coords.variables, first_map.xindexes
    return {
        name: xr.DataArray(
            xr.Variable(first_map.dims, values, fastpath=True),
            coords=dict(variables),
            indexes=dict(indexes),
            fastpath=True,
        )
        for name, values in zip(names, data, strict=True)
    }


def _one_grid_in_memory(arrays: list[xr.DataArray]) -> bool:
    """Whether the maps (and the mask) are numpy arrays of the same dims and shape, lat and
    lon last, with the very same coordinates (as ``ds[name]`` of one Dataset): convolved as
    they are, without broadcasting."""
    first = arrays[0]
    if first.dims[-2:] != _PLANE:
        return False
    coords = first.coords.variables
    for array in arrays:
        if array.dims != first.dims or array.shape != first.shape:
            return False
        if is_dask_collection(array.data):
            return False
        if array is not first:
            others = array.coords.variables
            if others.keys() != coords.keys() or any(others[k] is not v for k, v in coords.items()):
                return False
    return True


def convolve_sky_maps(
    maps: Mapping[str, xr.DataArray],
    kernel: np.ndarray,
    *,
    mask: xr.DataArray | None = None,
    integer: Collection[str] = (),
) -> dict[str, xr.DataArray]:
    """Convolve several maps with one kernel in a single pass (:func:`convolve_sky` of each).

    The maps are broadcast against each other (and ``mask``) and zeroed outside ``mask``,
    and every plane of every map goes through one call of
    :func:`gammaxr.geom.convolve.convolve_plane_sources` per block: one kernel (spectrum or
    banded matrices) for all, one batch of planes after another (counts, background and
    exposure ratios of all energy bands at once). Numpy maps are one call; dask maps whose
    chunks hold whole ``(lat, lon)`` planes (per-run or per-band chunks) one task per
    block, the maps read as they are; dask maps with planes split between chunks are
    stacked and convolved chunk by chunk with a halo
    (:func:`gammaxr.geom.halo.map_planes_with_halo`).

    Parameters
    ----------
    maps : mapping of str to xarray.DataArray
        Maps with dims ``lat`` and ``lon`` (broadcast against each other by name); NaN
        counts as 0.
    kernel : numpy.ndarray
        Odd-sized kernel, axes (lat, lon).
    mask : xarray.DataArray of bool, optional
        Pixels that enter the sums (others count as 0).
    integer : collection of str
        Names of the maps rounded to the nearest integer (sums of counts with a 0/1 kernel).

    Returns
    -------
    dict of str to xarray.DataArray of float64
        The convolved maps, all with the broadcast dims and coordinates (no attrs); lazy if an
        input is.
    """
    names = list(maps)
    arrays = [*maps.values(), *([] if mask is None else [mask])]
    if _one_grid_in_memory(arrays):  # the usual eager call: no broadcasting, one grid
        rounded = tuple(i for i, name in enumerate(names) if name in integer)
        out = _convolve_in_memory([a.data for a in arrays], len(names), kernel, rounded)
        return _on_the_grid_of(arrays[0], names, out)
    sizes: dict = {}  # the broadcast dims, in order of first appearance (mask first)
    for array in arrays[::-1] if mask is not None else arrays:
        sizes.update({d: n for d, n in array.sizes.items() if d not in sizes})
    dims = tuple(sizes)
    coords: dict = {}
    for array in arrays:
        coords.update({k: v for k, v in array.coords.variables.items() if k not in coords})

    def aligned(array: xr.DataArray) -> xr.Variable:  # a broadcast view, no alignment
        if array.dims == dims:  # as it is (set_dims and transpose cost 40 us a map)
            return array.variable
        return array.variable.set_dims(sizes).transpose(*dims)

    whole = _convolve_whole_planes(
        arrays[0], names, [aligned(a) for a in arrays], dims, coords, kernel, integer
    )
    if whole is not None:
        return whole
    # planes split between chunks: the masked maps stacked, convolved with a halo
    stacked = xr.apply_ufunc(  # one float64 array of the masked maps, one pass per map
        _stack_masked,
        *[aligned(a) for a in arrays],
        kwargs={"n_maps": len(names)},
        output_core_dims=[[_MAPS]],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {_MAPS: len(names)}},
    )
    stacked = xr.DataArray(
        stacked, coords={k: v for k, v in coords.items() if set(v.dims) <= set(dims)}
    )
    out = convolve_sky(stacked, kernel)
    result = {}
    for i, name in enumerate(names):
        one = out.isel({_MAPS: i})
        result[name] = np.rint(one) if name in integer else one
    return result


#: The kernels of :func:`smooth`, as Gammapy's ``Map.smooth``: a Gaussian of standard
#: deviation ``width``, a disk of radius ``width``, a square box of side ``width``.
SMOOTH_KERNELS = ("gauss", "disk", "box")
#: What :func:`smooth` assumes outside the map: ``"reflect"`` mirrors the map about its edge
#: (scipy's ``mode="reflect"``, Gammapy's default), ``"constant"`` takes zeros (Gammapy's
#: ``mode="constant"``, and the excess maps' convention).
SMOOTH_MODES = ("reflect", "constant")
#: Gaussians of :func:`smooth` reach ``int(GAUSS_TRUNCATE * sigma + 0.5)`` pixels from their
#: centre, ``sigma`` in pixels of the mean step (scipy's ``gaussian_filter``, as Gammapy).
GAUSS_TRUNCATE = 4.0


def smoothing_kernel(
    grid: SkyGrid, width: float, kernel: str = "gauss", metric: str = "sky"
) -> np.ndarray:
    """The normalised kernel of :func:`smooth` on ``grid``.

    Parameters
    ----------
    grid : SkyGrid
        The sky grid.
    width : float, str or astropy.units.Quantity
        In deg, > 0: the Gaussian's sigma, the disk's radius or the box's side.
    kernel : {"gauss", "disk", "box"}
        The shape (:data:`SMOOTH_KERNELS`).
    metric : {"sky", "pixel"}
        See :func:`kernel_steps` and :func:`smooth`.

    Returns
    -------
    numpy.ndarray of float, axes (lat, lon)
        Odd-sized, summing to 1. The Gaussian is cut at :data:`GAUSS_TRUNCATE` sigma rounded
        to the nearest pixel (scipy's ``gaussian_filter``); the disk holds the pixels whose
        centres are within the radius (astropy's ``Tophat2DKernel``); the box that of
        scipy's ``uniform_filter`` (:func:`uniform_box_kernel`).
    """
    if kernel not in SMOOTH_KERNELS:
        raise ValueError(f"kernel must be one of {SMOOTH_KERNELS}, got {kernel!r}")
    if kernel == "gauss":
        sigma = to_positive(width, "deg", "Gaussian sigma")
        dx, dy = kernel_steps(grid, metric)
        sigma_pixels = 2.0 * sigma / (dx + dy)
        reach = int(GAUSS_TRUNCATE * sigma_pixels + 0.5)  # pixels, as scipy
        return gauss_kernel(grid, sigma, metric, n_sigma=reach / sigma_pixels)
    if kernel == "disk":
        disk = tophat_kernel(grid, width, metric)
        return disk / disk.sum()
    return uniform_box_kernel(grid, width, metric)


def _smoothable(ds: xr.Dataset, names: Collection[str] | None) -> list[str]:
    """The maps :func:`smooth` convolves: ``names`` checked, or every numeric map of ``ds``
    with dims ``lat`` and ``lon``."""
    if names is None:
        names = [
            name
            for name, var in ds.data_vars.items()
            if set(_PLANE) <= set(var.dims) and var.dtype.kind in "iuf"
        ]
        if not names:
            raise ValueError("the dataset has no numeric map with dims 'lat' and 'lon' to smooth")
        return names
    names = [names] if isinstance(names, str) else list(names)
    missing = [name for name in names if name not in ds.data_vars]
    if missing:
        raise KeyError(f"no map {missing} in the dataset (it has {list(ds.data_vars)})")
    flat = [name for name in names if not set(_PLANE) <= set(ds.variables[name].dims)]
    if flat:
        raise ValueError(f"maps {flat} have no 'lat' and 'lon' dims to smooth over")
    return names


def _mirrored(data, dims: tuple, halo: tuple[int, int]):
    """``data`` (dims ``dims``, numpy or dask) mirrored ``halo`` pixels beyond its lat and
    lon edges (numpy's ``"symmetric"``, scipy's ``"reflect"``); lazy if ``data`` is."""
    widths = [(halo[_PLANE.index(d)],) * 2 if d in _PLANE else (0, 0) for d in dims]
    if not is_dask_collection(data):
        return np.pad(data, widths, mode="symmetric")
    import dask.array as da

    # the mirrored strips joined to the edge chunks: planes whole in a chunk stay whole
    chunks = [list(sizes) for sizes in data.chunks]
    for sizes, (low, high) in zip(chunks, widths, strict=True):
        sizes[0] += low
        sizes[-1] += high
    return da.pad(data, widths, mode="symmetric").rechunk(tuple(map(tuple, chunks)))


def _smoothed_arrays(
    ds: xr.Dataset, group: list[str], weights: np.ndarray, mode: str
) -> dict[str, object]:
    """The data of the maps ``group`` of ``ds`` (of one dims) convolved with ``weights``:
    numpy maps with lat and lon last in one eager call of the arrays themselves (no
    DataArrays in between), others through :func:`convolve_sky_maps`."""
    halo = (weights.shape[0] // 2, weights.shape[1] // 2)
    variables = [ds.variables[name] for name in group]
    dims = variables[0].dims
    inside = {d: slice(h, h + ds.sizes[d]) for d, h in zip(_PLANE, halo, strict=True)}
    if dims[-2:] == _PLANE and all(type(v.data) is np.ndarray for v in variables):
        arrays = [v.data for v in variables]
        if mode == "reflect":
            arrays = [_mirrored(data, dims, halo) for data in arrays]
        out = _convolve_in_memory(arrays, len(group), weights)
        if mode == "reflect":
            out = [data[..., inside["lat"], inside["lon"]] for data in out]
        return dict(zip(group, out, strict=True))
    if mode == "reflect":
        mirrored = {
            name: xr.DataArray(_mirrored(var.data, var.dims, halo), dims=var.dims)
            for name, var in zip(group, variables, strict=True)
        }
        maps = convolve_sky_maps(mirrored, weights)
        return {name: maps[name].isel(inside).data for name in group}
    maps = convolve_sky_maps({name: ds[name] for name in group}, weights)
    return {name: maps[name].data for name in group}


def smooth(
    ds: xr.Dataset,
    width: float,
    kernel: str = "gauss",
    *,
    names: Collection[str] | None = None,
    mode: str = "reflect",
    metric: str = "sky",
) -> xr.Dataset:
    """Smooth maps of a dataset with a Gaussian, disk or box kernel (Gammapy's
    ``Map.smooth``).

    Every ``(lat, lon)`` plane of each map is convolved with the normalised kernel of
    :func:`smoothing_kernel`, the maps of the same dims in one call (as
    :func:`convolve_sky_maps`: separable banded passes for the Gaussian and the box).

    Parameters
    ----------
    ds : xarray.Dataset
        Maps with dims ``lat`` and ``lon`` (any others are looped over), on the grid of
        :meth:`gammaxr.geom.SkyGrid.from_xarray`.
    width : float, str or astropy.units.Quantity
        In deg, > 0: the Gaussian's sigma, the disk's radius or the box's side.
    kernel : {"gauss", "disk", "box"}
        The kernel's shape (:data:`SMOOTH_KERNELS`).
    names : str or collection of str, optional
        The maps to smooth; default every numeric (not boolean) map with dims ``lat`` and
        ``lon``.
    mode : {"reflect", "constant"}
        Outside the map: its values mirrored about the edge (scipy's ``"reflect"``,
        Gammapy's default) or zeros (:data:`SMOOTH_MODES`).
    metric : {"sky", "pixel"}
        See :func:`kernel_steps`. ``"sky"`` measures the width on the sky, as Gammapy's
        pixel scale does on its CAR grids (a grid read from Gammapy's files, whose lon
        coordinate step is ``cdelt / cos(lat)``, is smoothed as by Gammapy; tested on the
        Crab reference dataset); ``"pixel"`` in the mean of the two coordinate steps. On
        grids of equal coordinate steps near the equator the two agree.

    Returns
    -------
    xarray.Dataset
        The smoothed maps (float64), with the dims, coordinates and attrs of ``ds``'s, and
        ``smooth_kernel``, ``smooth_width_deg`` and ``smooth_mode`` among the attrs; lazy
        if ``ds`` is. NaN counts as 0 (Gammapy's NaN spread over the kernel instead).

    Raises
    ------
    ValueError
        For an unknown kernel or mode, a width that is not positive, or maps without
        ``lat`` and ``lon``.
    KeyError
        For a name not in ``ds``.
    """
    if mode not in SMOOTH_MODES:
        raise ValueError(f"mode must be one of {SMOOTH_MODES}, got {mode!r}")
    names = _smoothable(ds, names)
    width = to_positive(width, "deg", "smoothing width")
    weights = smoothing_kernel(SkyGrid.from_xarray(ds), width, kernel, metric)
    by_dims: dict[tuple, list[str]] = {}
    for name in names:
        by_dims.setdefault(ds.variables[name].dims, []).append(name)
    data = {}
    for group in by_dims.values():
        data.update(_smoothed_arrays(ds, group, weights, mode))
    out = ds[names].copy(data=data)
    out.attrs.update(smooth_kernel=kernel, smooth_width_deg=width, smooth_mode=mode)
    return out
