"""Residual maps: observed counts against predicted counts, optionally smoothed.

Methods (``method``):

- ``"diff"``: ``counts - npred``;
- ``"diff/model"``: ``(counts - npred) / npred``;
- ``"diff/sqrt(model)"``: ``(counts - npred) / sqrt(npred)``;
- ``"sqrt_ts"``: the signed Poisson significance of the counts against ``npred``
  (:func:`gammaxr.stats.cash_sqrt_ts`), which stays right for few counts.

Smoothing (``smooth_kernel`` with ``smooth_radius`` in deg) works as Gammapy's
``MapDataset.residuals(method, kernel=..., width=...)``: counts and predicted counts are
averaged over the kernel using only the masked-in pixels (``conv(x * mask) / conv(mask)``)
before the residuals are formed. On a dataset with a mask the numbers are Gammapy's (to
1e-12 on the Crab reference dataset) for Gammapy's ``kernel="gauss"`` (the same sigma, cut
at ``int(4 sigma + 0.5)`` pixels), ``"box"`` (``smooth_radius`` is half its side) and
``"disk"`` (``"tophat"`` here); without a mask Gammapy sums zeros beyond the map's edges
where gammaxr averages the pixels inside it. For ``"sqrt_ts"`` the kernel must be a
top-hat and the counts are summed over it (correlated counts, as in an excess map), so
that they stay Poisson.

Pixels outside the mask are NaN. Everything is elementwise or an FFT convolution through
xarray, so dask-backed inputs stay lazy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from gammaxr.estimators.smoothing import box_kernel, convolve_sky, smoothing_kernel, tophat_kernel
from gammaxr.geom.grid import SkyGrid
from gammaxr.stats import alpha_on_off, cash_sqrt_ts
from gammaxr.units import to_unit

__all__ = ["RESIDUAL_METHODS", "dataset_residuals", "residual_map"]

RESIDUAL_METHODS = ("diff", "diff/model", "diff/sqrt(model)", "sqrt_ts")
SMOOTH_KERNELS = ("gauss", "box", "tophat")


def _kernel(grid: SkyGrid, smooth_kernel: str, radius: float, metric: str) -> np.ndarray:
    if smooth_kernel == "gauss":  # Gammapy's (scipy's): cut at int(4 sigma + 0.5) pixels
        return smoothing_kernel(grid, radius, "gauss", metric)
    if smooth_kernel == "box":
        return box_kernel(grid, 2.0 * radius, metric)
    if smooth_kernel == "tophat":
        return tophat_kernel(grid, radius, metric)
    raise ValueError(f"smooth_kernel must be one of {SMOOTH_KERNELS}, got {smooth_kernel!r}")


def residual_map(
    counts: xr.DataArray,
    npred: xr.DataArray,
    method: str = "diff",
    *,
    mask: xr.DataArray | None = None,
    smooth_kernel: str | None = None,
    smooth_radius: float = 0.1,
    sum_energy: bool = False,
    metric: str = "sky",
) -> xr.DataArray:
    """Residuals of ``counts`` against ``npred`` per pixel (and energy bin).

    Parameters
    ----------
    counts : xarray.DataArray
        Observed counts, dims ``(..., lat, lon)`` (e.g. ``(energy, lat, lon)``), with the
        ``lon``/``lat`` coordinates and ``frame`` attr of a gammaxr grid when smoothing.
    npred : xarray.DataArray
        Predicted counts (background plus models), broadcastable against ``counts``.
    method : {"diff", "diff/model", "diff/sqrt(model)", "sqrt_ts"}
        See the module docstring.
    mask : xarray.DataArray of bool, optional
        Pixels to use (True); others are left out of the smoothing and NaN in the result.
    smooth_kernel : {"gauss", "box", "tophat"} or None
        Smoothing kernel; None: no smoothing. ``"sqrt_ts"`` allows only ``"tophat"``.
    smooth_radius : float, str or astropy.units.Quantity
        Kernel size in deg: Gaussian sigma, box half width or top-hat radius (default 0.1).
    sum_energy : bool
        Sum counts and npred over ``energy`` first (one spatial residual map).
    metric : {"sky", "pixel"}
        How the kernel size is measured, see :func:`gammaxr.estimators.smoothing.kernel_steps`.

    Returns
    -------
    xarray.DataArray of float64
        Residuals with the dims of ``counts`` (without ``energy`` if ``sum_energy``); attrs
        ``method``, ``smooth_kernel``, ``smooth_radius_deg``, ``units``. Lazy if the inputs
        are.
    """
    if method not in RESIDUAL_METHODS:
        raise ValueError(f"residual method must be one of {RESIDUAL_METHODS}, got {method!r}")
    if method == "sqrt_ts" and smooth_kernel not in (None, "tophat"):
        raise ValueError("the 'sqrt_ts' residuals need Poisson sums: smooth with 'tophat'")
    counts = counts.astype(np.float64)
    npred = npred.astype(np.float64)
    if mask is not None:
        mask = mask.astype(bool)
        counts = counts.where(mask, 0)
        npred = npred.where(mask, 0)
    if sum_energy and "energy" in counts.dims:
        counts = counts.sum("energy")
        npred = npred.sum("energy") if "energy" in npred.dims else npred
        if mask is not None and "energy" in mask.dims:
            mask = mask.any("energy")
    if smooth_kernel is not None:
        grid = SkyGrid.from_xarray(counts.assign_attrs(frame=_frame(counts, npred)))
        smooth_radius = to_unit(smooth_radius, "deg", "smooth_radius")
        kernel = _kernel(grid, smooth_kernel, smooth_radius, metric)
        counts_s = convolve_sky(counts, kernel, integer=smooth_kernel == "tophat")
        npred_s = convolve_sky(npred, kernel)
        if method != "sqrt_ts":
            weight = xr.ones_like(counts) if mask is None else mask.astype(np.float64)
            norm = convolve_sky(weight.broadcast_like(counts), kernel)
            norm = norm.where(norm > 0)
            counts_s, npred_s = counts_s / norm, npred_s / norm
        counts, npred = counts_s, npred_s
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "diff":
            out = counts - npred
        elif method == "diff/model":
            out = (counts - npred) / npred
        elif method == "diff/sqrt(model)":
            out = (counts - npred) / np.sqrt(npred)
        else:
            out = cash_sqrt_ts(counts, npred)
    if mask is not None:
        out = out.where(mask)
    units = {"diff": "", "diff/model": "", "diff/sqrt(model)": "", "sqrt_ts": ""}[method]
    return out.transpose(*counts.dims).assign_attrs(
        method=method,
        smooth_kernel=smooth_kernel or "none",
        smooth_radius_deg=float(smooth_radius) if smooth_kernel else 0.0,
        units=units,
    )


def _frame(*arrays: xr.DataArray) -> str:
    for a in arrays:
        if "frame" in a.attrs:
            return a.attrs["frame"]
    return "icrs"


def dataset_residuals(
    ds: xr.Dataset, npred: xr.DataArray | None = None, method: str = "diff", **kwargs: Any
) -> xr.DataArray:
    """Residual map of a dataset's counts (see :func:`residual_map`).

    Parameters
    ----------
    ds : xarray.Dataset
        With ``counts`` and, unless ``npred`` is given, ``background`` (or on/off
        ``counts_off``, ``acceptance``, ``acceptance_off``: ``alpha * counts_off``); the
        mask is ``mask_safe`` and ``mask_fit`` where present.
    npred : xarray.DataArray, optional
        Predicted counts (e.g. from the fit: background plus sources); default the
        dataset's background estimate.
    method : str
        See :func:`residual_map`.
    **kwargs
        ``smooth_kernel``, ``smooth_radius``, ``sum_energy``, ``metric`` of
        :func:`residual_map`.

    Returns
    -------
    xarray.DataArray
        Residuals, lazy if the dataset is.
    """
    if npred is None:
        if "background" in ds:
            npred = ds["background"]
        elif all(n in ds for n in ("counts_off", "acceptance", "acceptance_off")):
            npred = alpha_on_off(ds["acceptance"], ds["acceptance_off"]) * ds["counts_off"]
        else:
            raise ValueError(
                "residuals need predicted counts: pass npred or give the dataset a "
                "'background' (or on/off variables)"
            )
    mask = None
    for name in ("mask_safe", "mask_fit"):
        if name in ds:
            mask = ds[name] if mask is None else mask & ds[name]
    counts = ds["counts"].assign_attrs(frame=ds.attrs.get("frame", "icrs"))
    return residual_map(counts, npred, method, mask=mask, **kwargs)
