"""Ring background: off counts and off acceptance from a ring around every pixel.

For each run, each energy band and each pixel, the off region is a ring of inner radius
``r_in`` and outer radius ``r_in + width`` centred on the pixel, minus the excluded pixels
(bright sources) and the pixels outside the run's safe mask:

- ``counts_off`` = sum of the counts over the ring pixels,
- ``acceptance_off`` = sum of the background model over the same ring pixels,
- ``acceptance`` = the background model at the pixel,

so that ``alpha = acceptance / acceptance_off`` and ``alpha * counts_off`` is the background
estimate at the pixel (as Gammapy's ``RingBackgroundMaker``). The ring sums are one FFT
convolution (:func:`gammaxr.geom.convolve.convolve_planes`) of the masked counts and
background maps of all runs and bands together with a ring kernel.

The ring is measured on the sky at the grid centre (``metric="sky"``): a pixel ``(di, dj)``
away lies at ``hypot(dj * lon_step * cos(lat_centre), di * lat_step)`` deg; both radii are
inclusive. On grids with pixels square on the sky (the default
:meth:`gammaxr.geom.SkyGrid.from_center`) this is a circle in pixels. ``metric="pixel"``
reproduces Gammapy, which draws a circle in pixels of its longitude step (right on the sky only
near latitude 0), on grids whose longitude step is Gammapy's ``cdelt`` (CAR referenced on the
equator; on a grid read from a target-centred Gammapy geometry the longitude step is
``cdelt / cos(lat)``); the two differ by the few pixels that sit on the ring's edges.

The result is an on/off dataset (``counts``, ``counts_off``, ``acceptance``,
``acceptance_off``) that :func:`gammaxr.reduce.stack.stack_runs` stacks keeping alpha right.
Runs are usually summed over energy first (:func:`to_image`, as Gammapy's
``MapDataset.to_image``), or grouped into a few bands (``energy_edges``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_coords, axis_edges, band_slices, bounds_name
from gammaxr.geom.convolve import convolve_planes
from gammaxr.geom.grid import SkyGrid
from gammaxr.geom.halo import map_planes_with_halo
from gammaxr.irf.edisp import diagonal_response
from gammaxr.reduce.fov_background import exclusion_on_grid
from gammaxr.reduce.stack import masked_sum
from gammaxr.units import to_unit

__all__ = ["resample_energy", "ring_background", "ring_convolve", "ring_kernel", "to_image"]

#: Relative tolerance on the ring radii (float noise in pixel steps).
RADIUS_RTOL = 1e-9
#: FFT results below this fraction of a plane's total are set to exactly zero.
FFT_ZERO_RTOL = 1e-10
_SUMMED = ("counts", "background")
_ANY = ("mask_safe", "mask_fit")
_ON_OFF = ("counts_off", "acceptance", "acceptance_off")
_MAPS = "ring_map"  # temporary dim: the maps convolved together


def ring_kernel(grid: SkyGrid, r_in: float, width: float, metric: str = "sky") -> np.ndarray:
    """The ring as a 0/1 pixel kernel on ``grid``.

    Parameters
    ----------
    grid : SkyGrid
        The sky grid; its steps and centre latitude set the pixel size on the sky.
    r_in : float, str or astropy.units.Quantity
        Inner radius in deg (inclusive).
    width : float, str or astropy.units.Quantity
        Ring width in deg; the outer radius ``r_in + width`` is inclusive.
    metric : {"sky", "pixel"}
        ``"sky"``: distances on the sky at the grid centre; ``"pixel"``: a circle in pixels of
        the longitude step (Gammapy's ``RingBackgroundMaker``).

    Returns
    -------
    numpy.ndarray of float, shape (2 * n_lat + 1, 2 * n_lon + 1)
        1 on the ring pixels, 0 elsewhere; centred on the middle element, axes (lat, lon).
    """
    r_in, width = to_unit(r_in, "deg", "r_in"), to_unit(width, "deg", "width")
    if r_in < 0 or width <= 0:
        raise ValueError(f"ring needs r_in >= 0 and width > 0 deg, got {r_in}, {width}")
    r_out = r_in + width
    if metric == "sky":
        lat_c = 0.5 * (grid.lat_edges[0] + grid.lat_edges[-1])
        dx, dy = grid.lon_step * np.cos(np.radians(lat_c)), grid.lat_step
    elif metric == "pixel":
        dx = dy = grid.lon_step
    else:
        raise ValueError(f"ring metric must be 'sky' or 'pixel', got {metric!r}")
    nx = int(np.floor(r_out / dx * (1 + RADIUS_RTOL)))
    ny = int(np.floor(r_out / dy * (1 + RADIUS_RTOL)))
    x = np.arange(-nx, nx + 1) * dx
    y = np.arange(-ny, ny + 1) * dy
    d2 = x[None, :] ** 2 + y[:, None] ** 2
    inside = (d2 >= r_in**2 * (1 - RADIUS_RTOL)) & (d2 <= r_out**2 * (1 + RADIUS_RTOL))
    if not inside.any():
        raise ValueError(f"ring r_in={r_in} width={width} deg holds no pixel of the grid")
    return inside.astype(float)


def ring_convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Sum of ``image`` over the kernel around every pixel (zero outside the map).

    Parameters
    ----------
    image : numpy.ndarray, shape (..., n_lat, n_lon)
        Maps to convolve (each 2D plane separately).
    kernel : numpy.ndarray, shape (k_lat, k_lon)
        Odd-sized kernel (e.g. :func:`ring_kernel`).

    Returns
    -------
    numpy.ndarray of float32, same shape as ``image``
        FFT convolution; values within float noise of zero are exactly zero.
    """
    image = np.asarray(image, dtype=float)
    return convolve_planes(image, kernel, zero_rtol=FFT_ZERO_RTOL).astype(np.float32)


def resample_response(ds: xr.Dataset, slices: Sequence[slice]) -> xr.DataArray | None:
    """The energy response of a dataset whose reco bins are grouped into bands.

    Counts are summed over the safe reco bins of each band, so the response must predict
    just those: the kernel of each band is the sum of the ``edisp`` kernel over the band's
    reco bins weighted by ``mask_safe`` (at the fine pixel nearest each IRF pixel, as
    Gammapy's ``mask_safe_edisp``). Without ``edisp``, a dataset with an exposure gets the
    perfect-resolution response (:func:`gammaxr.irf.diagonal_response`) weighted by the reco
    bins safe anywhere on the map, dims ``(energy_true, energy)``.

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset with ``mask_safe(energy, lat, lon)`` and ``edisp`` or ``exposure``.
    slices : sequence of slice
        Reco-bin slices of the bands (:func:`gammaxr.geom.axes.band_slices`).

    Returns
    -------
    xarray.DataArray or None
        The band kernels (``energy`` of length ``len(slices)``); None for a dataset with
        neither ``edisp`` nor ``energy_true``.
    """
    safe = ds["mask_safe"]
    spatial = [d for d in ("lat", "lon") if d in safe.dims]
    if "edisp" in ds:
        kernel = ds["edisp"]
        irf_dims = [d for d in ("lat_irf", "lon_irf") if d in kernel.dims]
        if irf_dims and spatial:
            nearest = {"lat": ds["lat_irf"], "lon": ds["lon_irf"]}
            weights = safe.sel(nearest, method="nearest").drop_vars(spatial, errors="ignore")
        else:
            weights = safe.any(spatial) if spatial else safe
    elif "energy_true" in ds.dims:
        true_edges, edges = axis_edges(ds, "energy_true"), axis_edges(ds, "energy")
        kernel = xr.DataArray(
            diagonal_response(true_edges, edges),
            dims=("energy_true", "energy"),
            attrs={"units": ""},
        )
        weights = safe.any(spatial) if spatial else safe
    else:
        return None
    parts = [
        (kernel.isel(energy=sl) * weights.isel(energy=sl).astype(kernel.dtype)).sum("energy")
        for sl in slices
    ]
    out = xr.concat(parts, dim="energy").transpose(..., *kernel.dims)
    return out.drop_vars(
        [c for c in out.coords if c not in out.dims], errors="ignore"
    ).assign_attrs(kernel.attrs)


def resample_energy(ds: xr.Dataset, energy_edges: Sequence[float]) -> xr.Dataset:
    """Group reco-energy bins into wider bands, inside the safe mask.

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset with an ``energy`` axis (and ``energy_bounds``): ``counts``, ``background``
        (summed where ``mask_safe``), ``mask_safe``, ``mask_fit`` (true where any bin is);
        the energy response (see :func:`resample_response`); other variables without
        ``energy`` are kept.
    energy_edges : sequence of float
        TeV; a subset of the dataset's energy edges. Bins outside them are dropped.

    Returns
    -------
    xarray.Dataset
        A new dataset on the coarser ``energy`` axis; lazy if the input is.

    Raises
    ------
    ValueError
        If an edge is not on the axis, or the dataset already holds on/off variables.
    """
    on_off = [n for n in _ON_OFF if n in ds]
    if on_off:
        raise ValueError(f"resampling on/off variables {on_off} is not supported")
    if "mask_safe" not in ds:
        raise ValueError("resampling in energy needs a 'mask_safe' variable")
    new = np.asarray(energy_edges, dtype=float)
    slices = band_slices(axis_edges(ds, "energy"), new)
    safe = ds["mask_safe"]
    out = {}
    for name in (*_SUMMED, *_ANY):
        if name in ds:
            how = "sum" if name in _SUMMED else "any"
            grouped = group_bands(ds[name], slices, safe, how)
            out[name] = grouped.astype(ds[name].dtype).assign_attrs(ds[name].attrs)
    response = resample_response(ds, slices)
    if response is not None:
        out["edisp"] = response
    return dataset_on_bands(ds, out, new)


def group_bands(
    var: xr.DataArray, slices: Sequence[slice], safe: xr.DataArray, how: str = "sum"
) -> xr.DataArray:
    """Group the reco-energy bins of ``var`` into bands.

    Parameters
    ----------
    var : xarray.DataArray
        A variable with an ``energy`` dim.
    slices : sequence of slice
        Reco-bin slices of the bands (:func:`gammaxr.geom.axes.band_slices`).
    safe : xarray.DataArray of bool
        ``mask_safe``: ``how="sum"`` sums only the safe bins of each band.
    how : {"sum", "any"}
        Sum inside the safe mask (counts, background) or logical any (masks).

    Returns
    -------
    xarray.DataArray
        ``energy`` of length ``len(slices)``, other dims as ``var``; lazy if the input is.
    """
    parts = []
    for sl in slices:
        band = var.isel(energy=sl)
        if how == "any":
            parts.append(band.any("energy"))
        else:
            parts.append(masked_sum(band, safe.isel(energy=sl), "energy"))
    return xr.concat(parts, dim="energy").transpose(*var.dims)


def dataset_on_bands(
    ds: xr.Dataset, grouped: dict[str, xr.DataArray], energy_edges: np.ndarray
) -> xr.Dataset:
    """The dataset of the ``grouped`` variables on the band axis ``energy_edges`` (TeV).

    Variables and coordinates of ``ds`` without ``energy`` are kept; attrs are copied.
    """
    coords = axis_coords("energy", energy_edges, ds["energy"].attrs.get("units", "TeV"))
    out = dict(grouped)
    for name, var in ds.data_vars.items():
        if name not in out and "energy" not in var.dims:
            out[name] = var
    keep = {
        k: v
        for k, v in ds.coords.items()
        if "energy" not in v.dims and k not in ("energy", bounds_name("energy"))
    }
    return xr.Dataset(out, coords={**keep, **coords}, attrs=dict(ds.attrs))


def to_image(ds: xr.Dataset) -> xr.Dataset:
    """Sum a dataset over reco energy inside the safe mask (one energy bin left).

    Parameters
    ----------
    ds : xarray.Dataset
        See :func:`resample_energy`.

    Returns
    -------
    xarray.Dataset
        ``energy`` of length 1 spanning the whole axis; lazy if the input is.
    """
    edges = axis_edges(ds, "energy")
    return resample_energy(ds, [edges[0], edges[-1]])


def ring_background(
    ds: xr.Dataset,
    r_in: float,
    width: float,
    exclusion: Any = None,
    *,
    energy_edges: Sequence[float] | str | None = None,
    metric: str = "sky",
) -> xr.Dataset:
    """Ring background of each run: an on/off dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        Per-run datasets ``counts``, ``background`` [counts] and ``mask_safe``, dims
        ``(obs_id, energy, lat, lon)`` (or without ``obs_id``); numpy- or dask-backed. The
        ``background`` is used as it is (apply :func:`gammaxr.reduce.fov_background` first
        if wanted).
    r_in : float, str or astropy.units.Quantity
        Inner ring radius in deg.
    width : float, str or astropy.units.Quantity
        Ring width in deg.
    exclusion : xarray.DataArray, regions, str or None
        Usable pixels (bool ``(lat, lon)``, True = usable) or sky regions to exclude; see
        :func:`gammaxr.reduce.fov_background.exclusion_on_grid`.
    energy_edges : sequence of float, "native" or None
        None: sum over the whole energy axis first (:func:`to_image`); edges in TeV: one ring
        per band of :func:`resample_energy`; ``"native"``: one ring per energy bin as given.
    metric : {"sky", "pixel"}
        How ring radii are measured, see :func:`ring_kernel`.

    Returns
    -------
    xarray.Dataset
        ``counts``, ``counts_off``, ``acceptance`` (the background), ``acceptance_off``
        (float32), ``mask_safe`` (also False where ``acceptance_off`` is not positive),
        the other variables of ``ds`` except ``background``; attrs ``ring_r_in_deg``,
        ``ring_width_deg``. Lazy if the input is.
    """
    missing = [n for n in ("counts", "background", "mask_safe") if n not in ds]
    if missing:
        raise ValueError(f"ring background needs variables {missing} in the dataset")
    if energy_edges is None:
        ds = to_image(ds)
    elif not (isinstance(energy_edges, str) and energy_edges == "native"):
        ds = resample_energy(ds, energy_edges)
    r_in, width = to_unit(r_in, "deg", "r_in"), to_unit(width, "deg", "width")
    kernel = ring_kernel(SkyGrid.from_xarray(ds), r_in, width, metric)
    weight = ds["mask_safe"]
    excl = exclusion_on_grid(ds, exclusion)
    if excl is not None:
        weight = weight & excl

    # counts and background share the kernel: one convolution of both (per block)
    maps = xr.concat([ds["counts"], ds["background"]], dim=_MAPS).where(weight, 0)
    if maps.chunks is not None:
        maps = maps.chunk({_MAPS: -1})
    halo = (kernel.shape[0] // 2, kernel.shape[1] // 2)
    off = map_planes_with_halo(maps, ring_convolve, halo, np.float32, kernel=kernel)
    counts_off = off.isel({_MAPS: 0}).assign_attrs(units="")
    acceptance_off = off.isel({_MAPS: 1}).assign_attrs(units="")
    acceptance = ds["background"].astype(np.float32).assign_attrs(units="")
    mask_safe = (ds["mask_safe"] & (acceptance_off > 0)).assign_attrs(ds["mask_safe"].attrs)
    out = ds.drop_vars("background").assign(
        counts_off=counts_off,
        acceptance=acceptance,
        acceptance_off=acceptance_off,
        mask_safe=mask_safe,
    )
    attrs = {"ring_r_in_deg": float(r_in), "ring_width_deg": float(width), "ring_metric": metric}
    if isinstance(exclusion, str):
        attrs["exclusion_regions"] = exclusion
    return out.assign_attrs(attrs)
