"""Stack per-run datasets: a masked sum over ``obs_id`` (map-reduce, never in place).

Rules (the same as Gammapy's so that stacked results agree):

- ``counts``, ``background``, ``counts_off``: summed where ``mask_safe`` is true.
- ``exposure`` (``energy_true``): summed where the run's safe mask is true in any reco-energy
  bin of that pixel (the spatial footprint of the safe mask).
- ``mask_safe``: true where any run is safe.
- ``psf``, ``edisp``: averaged with weights ``exposure_irf`` (the exposure on the coarse IRF
  grid) times the run's spatial safe footprint on that grid; ``exposure_irf`` summed. With
  ``edisp_energy_mask`` (on by default for datasets whose ``edisp_energy_mask`` attr is
  set, e.g. spectrum datasets) the ``edisp`` numerator also drops each run's unsafe
  reco-energy bins (its ``mask_safe`` on the IRF grid), so that the stacked kernel predicts
  the sum of the runs' safe counts (Gammapy's ``EDispKernelMap`` stacking with
  ``mask_safe_edisp``).
- on/off variables (``acceptance``, ``acceptance_off``): see :func:`stack_on_off`.
- per-run coordinates along ``obs_id`` are dropped. Attrs ``stacked_obs_ids`` and the
  ``livetime_total``/``ontime_total`` [s] list only the runs that contribute (any safe pixel);
  the others go to ``skipped_obs_ids``/``skipped_reasons`` (the run's ``reduce_error`` or
  ``fov_background_error``, else "no safe pixel"). For a lazy input this is known only once
  the runs are computed: the result then carries small lazy status variables along dim
  ``run`` instead, turned into those attrs by ``to_zarr`` or
  :func:`gammaxr.io.run_status.settle_run_status` (see :mod:`gammaxr.io.run_status`).

Works on numpy- and dask-backed datasets alike and stays lazy.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from gammaxr.io.run_status import run_status_attrs, run_status_variables

__all__ = ["NoOverlapError", "masked_sum", "stack_runs"]


class NoOverlapError(ValueError):
    """No run contributes to the stacked dataset: each is outside the grid, masked, or failed."""


_SUMMED_MASKED = ("counts", "background", "counts_off")
_WEIGHTED_IRFS = ("psf", "edisp")


def _zero_outside_kernel(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    keep = mask & (values == values) if values.dtype.kind in "fc" else mask  # NaN counts as 0
    return np.where(keep, values, values.dtype.type(0))


def _masked_sum_kernel(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sum over the last axis where ``mask``, NaN as 0, adding the slices in order (as numpy
    reduces a C-contiguous array over a leading axis)."""
    shape = np.broadcast_shapes(values.shape, mask.shape)[:-1]
    out = np.zeros(shape, np.add.reduce(np.zeros(1, values.dtype)).dtype)
    zero = values.dtype.type(0)
    for i in range(values.shape[-1]):
        np.add(out, np.where(mask[..., i], values[..., i], zero), out=out)
    if out.dtype.kind in "fc" and np.isnan(out).any():  # a NaN inside the mask: skip it
        out[...] = 0
        for i in range(values.shape[-1]):
            term = np.where(mask[..., i], values[..., i], zero)
            np.add(out, term, out=out, where=term == term)
    return out


def masked_sum(var: xr.DataArray, mask: xr.DataArray, dim: str) -> xr.DataArray:
    """Sum of ``var`` over ``dim`` where ``mask`` is true, NaN counted as zero.

    The same numbers as ``var.where(mask, 0).sum(dim)``, added in the same order (bit for
    bit), without its temporaries: when ``dim`` is in one chunk (numpy data, or a dask
    ``energy`` axis) a loop over ``dim`` adds the masked slices, else (runs in separate dask
    chunks) one fused masking pass precedes dask's tree sum.

    Parameters
    ----------
    var : xarray.DataArray
        Values, any dims including ``dim``; numpy- or dask-backed.
    mask : xarray.DataArray of bool
        Broadcast against ``var`` by dim name.
    dim : str
        The dim to sum over.

    Returns
    -------
    xarray.DataArray
        The sum (``var``'s dtype for floats, int64 for integers), ``var``'s attrs; lazy if
        an input is.
    """
    one_chunk = all(
        x.chunks is None or dim not in x.dims or len(x.chunksizes[dim]) == 1 for x in (var, mask)
    )
    if one_chunk and dim in mask.dims and dim in var.dims:
        return xr.apply_ufunc(
            _masked_sum_kernel,
            var,
            mask,
            input_core_dims=[[dim], [dim]],
            dask="parallelized",
            output_dtypes=[np.add.reduce(np.zeros(1, var.dtype)).dtype],
            keep_attrs=True,
        )
    kept = xr.apply_ufunc(
        _zero_outside_kernel,
        var,
        mask,
        dask="parallelized",
        output_dtypes=[var.dtype],
        keep_attrs=True,
    )
    return kept.sum(dim, skipna=False, keep_attrs=True)


def _spatial_safe(mask_safe: xr.DataArray) -> xr.DataArray:
    return mask_safe.any("energy") if "energy" in mask_safe.dims else mask_safe


def stack_runs(
    ds: xr.Dataset, dim: str = "obs_id", *, edisp_energy_mask: bool | None = None
) -> xr.Dataset:
    """Stack a dataset with an ``obs_id`` dim into one dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        Per-run dataset with dim ``obs_id`` (see DESIGN.md): ``counts(obs_id, energy, lat,
        lon)``, ``background``, ``exposure(obs_id, energy_true, lat, lon)`` [m2 s],
        ``mask_safe(obs_id, energy, lat, lon)`` and optionally ``psf``/``edisp`` with
        ``exposure_irf`` on the IRF grid, ``counts_off``, ``acceptance``, ``acceptance_off``.
    dim : str
        The dimension to stack over.
    edisp_energy_mask : bool, optional
        Weight each run's ``edisp`` kernel by its reco-energy safe mask as well (see the
        module docstring); default the dataset's ``edisp_energy_mask`` attr, else False.

    Returns
    -------
    xarray.Dataset
        A new dataset without ``dim``; lazy if the input is.

    Raises
    ------
    ValueError
        If ``dim`` or ``mask_safe`` is missing.
    NoOverlapError
        When no run contributes (``mask_safe`` false everywhere): at once for numpy data, on
        computing ``mask_safe`` (or anything derived from it) for dask data.
    """
    if dim not in ds.dims:
        raise ValueError(f"dataset has no {dim!r} dimension to stack over")
    if "mask_safe" not in ds:
        raise ValueError("stacking needs a 'mask_safe' variable")
    mask = ds["mask_safe"]
    spatial = _spatial_safe(mask)
    out = {}
    for name in _SUMMED_MASKED:
        if name in ds:
            out[name] = masked_sum(ds[name], mask, dim)
    if "acceptance" in ds:
        out.update(_stack_acceptances(ds, mask, dim))
    if "exposure" in ds:
        out["exposure"] = masked_sum(ds["exposure"], spatial, dim)
    if "exposure_irf" in ds:
        weights = ds["exposure_irf"].where(_irf_footprint(ds, spatial), 0)
        total = weights.sum(dim)
        out["exposure_irf"] = total.assign_attrs(ds["exposure_irf"].attrs)
        if edisp_energy_mask is None:
            edisp_energy_mask = bool(ds.attrs.get("edisp_energy_mask", False))
        for name in _WEIGHTED_IRFS:
            if name in ds:
                w = weights
                if edisp_energy_mask and "energy" in ds[name].dims and "energy" in mask.dims:
                    w = weights * _irf_footprint(ds, mask)  # unsafe reco bins drop out
                num = (ds[name] * w).sum(dim)
                out[name] = (num / total.where(total > 0)).fillna(0).assign_attrs(ds[name].attrs)
    obs_ids = [int(i) for i in ds[dim].values]
    out["mask_safe"] = _require_contribution(mask.any(dim), obs_ids).assign_attrs(mask.attrs)
    for name in ds.data_vars:
        if name not in out and dim not in ds[name].dims:
            out[name] = ds[name]
    per_run = [c for c in ds.coords if dim in ds.coords[c].dims]
    result = xr.Dataset(out, attrs=dict(ds.attrs)).drop_vars(per_run, errors="ignore")
    # coordinates no variable carries (the CF bounds with their bnds dim) are kept too
    kept = {c: ds.coords[c] for c in ds.coords if c not in per_run and c not in result.coords}
    result = result.assign_coords(kept)
    status = run_status_variables(ds, mask, dim)
    if all(v.chunks is None for v in status.variables.values()):
        return result.assign_attrs(run_status_attrs(status))
    # which runs contribute is known once they are computed (a lazy mask or lazy per-run
    # times, e.g. of a plainly opened zarr store): see gammaxr.io.run_status
    return result.assign(status.data_vars).assign_coords(status.coords)


def _irf_footprint(ds: xr.Dataset, spatial: xr.DataArray) -> xr.DataArray:
    """The spatial safe footprint on the coarse IRF grid (nearest pixel of the map grid)."""
    if "lat_irf" not in ds.dims:
        return spatial
    return spatial.sel(lat=ds["lat_irf"], lon=ds["lon_irf"], method="nearest").drop_vars(
        ["lat", "lon"], errors="ignore"
    )


def _stack_acceptances(ds: xr.Dataset, mask: xr.DataArray, dim: str) -> dict[str, xr.DataArray]:
    """On/off stacking that keeps alpha right: counts_off add, and the stacked off acceptance
    is chosen so that ``acceptance / acceptance_off`` equals the ratio of summed background
    estimates ``sum(alpha_i * n_off_i) / sum(n_off_i)``. Bins without off counts get the
    average alpha of the whole stacked dataset (as Gammapy's ``MapDatasetOnOff.stack``)."""
    acc = ds["acceptance"].where(mask, 0)
    acc_off = ds["acceptance_off"].where(mask, 0)
    n_off = ds["counts_off"].where(mask, 0)
    alpha = (acc / acc_off.where(acc_off > 0)).fillna(0)
    acc_sum = acc.sum(dim)
    bkg = (alpha * n_off).sum(dim)
    off_sum = n_off.sum(dim)
    # no background estimate in a bin: use the average alpha over all bins
    average_alpha = bkg.sum() / off_sum.sum()
    acc_off_empty = (acc_sum / average_alpha.where(average_alpha > 0)).fillna(0)
    acc_off_stacked = acceptance_off_keeping_alpha(acc_sum, off_sum, bkg, acc_off_empty)
    return {
        "acceptance": acc_sum.assign_attrs(ds["acceptance"].attrs),
        "acceptance_off": acc_off_stacked.assign_attrs(ds["acceptance_off"].attrs),
    }


def acceptance_off_keeping_alpha(
    acceptance: xr.DataArray,
    counts_off: xr.DataArray,
    background: xr.DataArray,
    fallback: xr.DataArray,
) -> xr.DataArray:
    """The off acceptance of summed on/off bins that keeps their background estimate.

    ``acceptance / acceptance_off`` equals ``background / counts_off``, i.e. the summed
    ``alpha_i * n_off_i`` over the summed ``n_off_i`` (the one rule of stacking runs and of
    grouping energy bins).

    Parameters
    ----------
    acceptance, counts_off : xarray.DataArray
        Summed on acceptance and summed off counts.
    background : xarray.DataArray
        Summed background estimates ``alpha_i * n_off_i``, counts.
    fallback : xarray.DataArray
        The off acceptance where ``background`` is zero.

    Returns
    -------
    xarray.DataArray
        Lazy if the inputs are.
    """
    ratio = acceptance * counts_off / background.where(background > 0)
    return ratio.where(background > 0, fallback)


def _check_block(block: np.ndarray, total: np.ndarray, message: str) -> np.ndarray:
    if not bool(total):
        raise NoOverlapError(message)
    return block


def _require_contribution(mask_any: xr.DataArray, obs_ids: list[int]) -> xr.DataArray:
    """``mask_any`` that raises :class:`NoOverlapError` (now, or when computed) if all false."""
    message = (
        f"none of the runs {obs_ids} contributes to the stacked dataset: each lies outside "
        "the grid, is masked everywhere by the safe mask, or failed (see the warnings and "
        "gammaxr.reduce.failed_runs)"
    )
    if not isinstance(mask_any.data, da.Array):
        if not bool(mask_any.any()):
            raise NoOverlapError(message)
        return mask_any
    index = tuple(range(mask_any.ndim))
    total = mask_any.data.any()
    data = da.blockwise(
        _check_block, index, mask_any.data, index, total, (), message=message, dtype=bool
    )
    return mask_any.copy(data=data)
