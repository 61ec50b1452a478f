"""Excess and significance maps: counts correlated with a top-hat, against a background.

For each energy band and pixel, the counts of the pixels within ``correlation_radius`` are
summed (FFT convolution with a 0/1 disk, :mod:`gammaxr.estimators.smoothing`) and compared
with a background estimate summed the same way:

- dataset with a known ``background`` (a MapDataset): ``mu_bkg`` = correlated
  ``background`` (plus correlated ``npred_signal`` when model counts are given); cash
  statistics (:mod:`gammaxr.stats`);
- on/off dataset (``counts_off``, ``acceptance``, ``acceptance_off``, e.g. from
  :func:`gammaxr.reduce.ring.ring_background`): wstat statistics with
  ``correlate_off=True``: ``n_off`` = correlated ``counts_off`` and
  ``alpha`` = correlated ``alpha * counts_off`` / ``n_off``;
  ``correlate_off=False`` (ring background, whose off counts are already sums over a
  ring): ``n_off`` = ``counts_off`` of the pixel and ``alpha`` = correlated ``acceptance``
  / ``acceptance_off`` of the pixel. ``npred_signal`` (model counts) is correlated and
  taken as known signal.

Only pixels inside the mask enter the sums (``mask_safe`` and ``mask_fit`` where present,
and an optional extra mask or exclusion regions); all outputs are NaN outside it. These are
the definitions of Gammapy's ``ExcessMapEstimator``, so the maps agree with it.

Fluxes: with an ``exposure(energy_true, lat, lon)`` [m2 s] the predicted counts of a
reference spectral model (default a power law of index 2 and amplitude 1e-12
cm-2 s-1 TeV-1 at 1 TeV) in each reco-energy band are computed neglecting energy dispersion
(true-energy bins are assigned to the reco band they overlap), averaged over the masked
top-hat; ``norm = excess / that`` and ``flux = norm * integral flux of the reference model
in the band`` [cm-2 s-1], with errors and upper limits alike.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from dask import is_dask_collection

from gammaxr.estimators.excess_statistics import (
    prepare_output_buffers,
    products_by_block,
    products_in_blocks,
)
from gammaxr.estimators.smoothing import (
    EAGER_WORKERS,
    FFT_ZERO_RTOL,
    convolve_sky_maps,
    tophat_kernel,
)
from gammaxr.geom.axes import axis_coords, axis_edges, axis_lo_hi, band_slices, bounds_name
from gammaxr.geom.convolve import convolve_plane_sources, sums_on_one_thread
from gammaxr.geom.grid import SkyGrid
from gammaxr.memory import result_array
from gammaxr.reduce.ring import dataset_on_bands, group_bands, resample_energy
from gammaxr.reduce.stack import acceptance_off_keeping_alpha
from gammaxr.stats import alpha_on_off
from gammaxr.units import to_edges, to_positive

__all__ = ["OPTIONAL_OUTPUTS", "excess_map", "reco_exposure"]

#: Optional outputs (``selection``): asymmetric errors, upper limits, the excess of a
#: ``n_sigma_sensitivity`` detection, and for on/off datasets alpha and the acceptances.
OPTIONAL_OUTPUTS = ("errn-errp", "ul", "sensitivity", "alpha", "acceptance_on", "acceptance_off")
_ON_OFF = ("counts_off", "acceptance", "acceptance_off")
_CM2_PER_M2 = 1e4


def _selection(selection: str | Sequence[str] | None, on_off: bool) -> set[str]:
    if selection is None:
        return set()
    if isinstance(selection, str):
        selection = list(OPTIONAL_OUTPUTS) if selection == "all" else [selection]
    chosen = set(selection)
    unknown = chosen - set(OPTIONAL_OUTPUTS)
    if unknown:
        raise ValueError(
            f"unknown excess map outputs {sorted(unknown)}; choose from {OPTIONAL_OUTPUTS}"
        )
    if not on_off:
        chosen -= {"alpha", "acceptance_on", "acceptance_off"}
    return chosen


def reco_exposure(ds: xr.Dataset, spectral_model: Any = None) -> xr.DataArray:
    """Predicted counts of a reference spectrum per reco-energy bin, per unit norm.

    Energy dispersion is neglected: each true-energy bin contributes the integral of the
    spectrum over its overlap with the reco bin, times its exposure.

    Parameters
    ----------
    ds : xarray.Dataset
        With ``exposure(energy_true, lat, lon)`` [m2 s] and both energy axes with bounds.
    spectral_model : gammaxr.models.SpectralModel, optional
        Reference spectrum (``integral(emin, emax)`` in cm-2 s-1 for TeV edges); default
        a power law of index 2, 1e-12 cm-2 s-1 TeV-1 at 1 TeV.

    Returns
    -------
    xarray.DataArray, dims (energy, lat, lon)
        Counts, in the exposure's dim order (``energy`` where ``energy_true`` was, other
        dims such as ``obs_id`` kept); lazy if the exposure is (one task per chunk when
        ``energy_true`` is in one chunk).
    """
    model = _reference_model(spectral_model)
    lo_t, hi_t = axis_lo_hi(ds, "energy_true")
    edges = axis_edges(ds, "energy")
    lo = np.maximum(edges[:-1, None], lo_t[None, :])
    hi = np.minimum(edges[1:, None], hi_t[None, :])
    overlap = hi > lo
    flux = np.where(
        overlap, model.integral(np.where(overlap, lo, 1.0), np.where(overlap, hi, 2.0)), 0.0
    )
    weights = flux * _CM2_PER_M2  # (energy, energy_true)
    exposure = ds["exposure"]
    # energy where energy_true was: the exposure's dim order, as the counts' (no copy to
    # reorder it for the convolution)
    dims = tuple("energy" if d == "energy_true" else d for d in exposure.dims)
    axis = exposure.dims.index("energy_true")
    coords = {k: v for k, v in exposure.coords.variables.items() if "energy_true" not in v.dims}
    coords.update(ds["energy"].coords.variables)
    data = exposure.data
    if isinstance(data, np.ndarray):
        data = _weighted_along_axis(data, weights, axis)
    elif len(data.chunks[axis]) == 1:  # dask, energy_true in one chunk: the same per block
        chunks = (*data.chunks[:axis], (weights.shape[0],), *data.chunks[axis + 1 :])
        data = data.map_blocks(_weighted_along_axis, weights, axis, chunks=chunks, dtype=np.float64)
    else:  # energy_true split between chunks: a dask reduction
        weights = xr.DataArray(
            weights, dims=("energy", "energy_true"), coords={"energy": ds["energy"]}
        )
        out = xr.dot(weights, exposure.fillna(0), dim="energy_true")
        return out.transpose(*dims).assign_attrs(units="")
    return xr.DataArray(data, dims=dims, coords=coords, attrs={"units": ""})


def _weighted_along_axis(values: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """``weights @ values`` along ``axis`` (NaN counted as 0), one ``(energy_true, lat,
    lon)`` map at a time: float64 copies of one map, never of the whole input.

    Parameters
    ----------
    values : numpy.ndarray
        Exposure [m2 s], ``energy_true`` at ``axis`` (any dtype, any other dims).
    weights : numpy.ndarray, shape (n_energy, n_energy_true)
        Reference counts per unit exposure of each true bin in each reco bin.
    axis : int
        The ``energy_true`` axis.

    Returns
    -------
    numpy.ndarray of float64
        ``values``' shape with ``n_energy`` at ``axis``.
    """
    out = result_array((*values.shape[:axis], weights.shape[0], *values.shape[axis + 1 :]))
    first_in, first_out = np.moveaxis(values, axis, 0), np.moveaxis(out, axis, 0)  # views
    for index in np.ndindex(*first_in.shape[1:-2]):  # each run (or other entry)
        where = (slice(None), *index)
        flat = first_in[where].reshape(first_in.shape[0], -1).astype(np.float64)  # NaN -> 0
        nan = np.isnan(flat)
        if nan.any():
            flat[nan] = 0.0
        first_out[where] = np.matmul(weights, flat).reshape(first_out[where].shape)
    return out


def _reference_model(spectral_model: Any) -> Any:
    if spectral_model is not None:
        return spectral_model
    from gammaxr.models.spectral import PowerLaw

    return PowerLaw(index=2.0, amplitude=1e-12, reference=1.0)


def _resample(
    ds: xr.Dataset, energy_edges: Sequence[float] | None, extra: dict[str, xr.DataArray]
) -> tuple[xr.Dataset, dict[str, xr.DataArray]]:
    """Group reco-energy bins (summed where safe); on/off keeps alpha * n_off summed."""
    if energy_edges is None:
        return ds, extra
    new = np.asarray(energy_edges, dtype=float)
    slices = band_slices(axis_edges(ds, "energy"), new)
    safe = ds["mask_safe"]

    def group(var: xr.DataArray, how: str = "sum") -> xr.DataArray:
        return group_bands(var, slices, safe, how)

    # a DataArray cannot carry the (energy, bnds) bounds: give it the lo/hi form
    da_coords = axis_coords("energy", new, ds["energy"].attrs.get("units", "TeV"), lohi=True)
    grouped_extra = {k: group(v).assign_coords(da_coords) for k, v in extra.items()}
    if not any(n in ds for n in _ON_OFF):
        return resample_energy(ds, new), grouped_extra
    out = {}
    for name in ("counts", "counts_off", "acceptance"):
        out[name] = group(ds[name])
    alpha = alpha_on_off(ds["acceptance"], ds["acceptance_off"])
    out["acceptance_off"] = acceptance_off_keeping_alpha(
        out["acceptance"],
        out["counts_off"],
        group(alpha * ds["counts_off"]),
        group(ds["acceptance_off"]),
    )
    out["mask_safe"] = group(safe, "any")
    if "mask_fit" in ds:
        out["mask_fit"] = (
            group(ds["mask_fit"], "any") if "energy" in ds["mask_fit"].dims else ds["mask_fit"]
        )
    return dataset_on_bands(ds, out, new), grouped_extra


def _estimator_mask(ds: xr.Dataset, mask: Any) -> xr.DataArray:
    """Pixels used: mask_safe & mask_fit (where present) & the extra mask or exclusion."""
    if mask is False:
        return xr.ones_like(ds["counts"], dtype=bool)
    out = ds["mask_safe"] if "mask_safe" in ds else xr.ones_like(ds["counts"], dtype=bool)
    if "mask_fit" in ds:
        out = out & ds["mask_fit"]
    if mask is not None and mask is not True:
        if isinstance(mask, xr.DataArray) and "energy" in mask.dims:
            extra = mask.astype(bool)
        else:  # sky regions (imports regions)
            from gammaxr.reduce.fov_background import exclusion_on_grid

            extra = exclusion_on_grid(ds, mask)
        out = out & extra
    return out.transpose(*ds["counts"].dims)


def _maps_to_correlate(
    ds: xr.Dataset,
    extra: dict[str, xr.DataArray],
    use: xr.DataArray,
    on_off: bool,
    correlate_off: bool,
) -> dict[str, xr.DataArray]:
    """The maps summed over the top-hat (all in one convolution), by role."""
    maps = {"counts": ds["counts"]}
    if on_off:
        maps["acceptance_on"] = ds["acceptance"]
        if correlate_off:
            alpha = alpha_on_off(ds["acceptance"], ds["acceptance_off"])
            maps["background"] = alpha * ds["counts_off"]
            maps["counts_off"] = ds["counts_off"]
            maps["acceptance_off"] = ds["acceptance_off"]
    else:
        maps["background"] = ds["background"]
    if "npred_signal" in extra:
        maps["npred_signal"] = extra["npred_signal"]
    if "reco_exposure" in extra:
        maps["reco_exposure"] = extra["reco_exposure"]
        maps["mask"] = use  # 1 where used (masked like the others)
    return maps


def _distinct_planes(use: xr.DataArray) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct ``(lat, lon)`` planes of a numpy mask with other dims, when there are at
    most half as many as planes (a safe mask of energy thresholds has two or three: all
    pixels, none, or within an offset), else None (dask masks are not inspected: that
    would compute them).

    Returns
    -------
    planes : numpy.ndarray of bool, shape (n_distinct, n_lat, n_lon)
        Each distinct plane once, in order of first appearance.
    index : numpy.ndarray of int, shape of ``use``'s other dims (in order, lat and lon last)
        The number of each plane among ``planes``.
    """
    if use.chunks is not None or set(use.dims) == {"lat", "lon"}:
        return None
    values = use.transpose(..., "lat", "lon").values
    flat = values.reshape(-1, *values.shape[-2:])
    number: dict[bytes, int] = {}
    index = np.empty(len(flat), dtype=np.intp)
    for i, plane in enumerate(flat):
        index[i] = number.setdefault(plane.tobytes(), len(number))
    if 2 * len(number) > len(flat):
        return None
    first = np.unique(index, return_index=True)[1]
    return flat[first], index.reshape(values.shape[:-2])


def _mask_sums(use: xr.DataArray, distinct: tuple[np.ndarray, np.ndarray], kernel) -> Any:
    """The pixels of the mask ``use`` under the kernel, from its distinct planes
    (:func:`_distinct_planes`), each convolved once: when every plane is the same, one
    ``(lat, lon)`` plane rounded to integers, broadcast; else the sums of every plane as
    :func:`convolve_sky_maps` gives them, gathered into a new array of ``use``'s shape
    (lat and lon last), which the statistics may write an output into
    (:func:`gammaxr.estimators.excess_statistics._output_memory`)."""
    planes, index = distinct
    sums = convolve_plane_sources(
        [planes.astype(np.float64)], kernel, zero_rtol=FFT_ZERO_RTOL, workers=EAGER_WORKERS
    )[0]
    if len(planes) == 1:
        return xr.DataArray(np.rint(sums[0]), dims=("lat", "lon"))
    gathered = result_array((*index.shape, *planes.shape[1:]))
    # indices in range by construction; numpy's default mode ("raise") would write a
    # temporary of the output's size first, fresh memory that cost up to 80 ms here
    np.take(sums, index, axis=0, out=gathered, mode="clip")
    return xr.DataArray(gathered, dims=use.transpose(..., "lat", "lon").dims)


def excess_map(
    ds: xr.Dataset,
    correlation_radius: float = 0.1,
    *,
    correlate_off: bool = True,
    energy_edges: Sequence[float] | None = None,
    mask: Any = None,
    npred_signal: xr.DataArray | None = None,
    spectral_model: Any = None,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    n_sigma_sensitivity: float = 5.0,
    selection: str | Sequence[str] | None = None,
    metric: str = "sky",
) -> xr.Dataset:
    """Correlated counts, excess, significance (and flux) maps of a dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        A stacked dataset, dims ``(energy, lat, lon)`` (any other dim such as ``obs_id``
        gives one map per entry): ``counts`` with ``background`` [counts], or on/off
        ``counts_off``, ``acceptance``, ``acceptance_off``; optional ``mask_safe``,
        ``mask_fit`` (bool, same dims or ``(lat, lon)``) and ``exposure(energy_true, lat,
        lon)`` [m2 s]. numpy- or dask-backed.
    correlation_radius : float, str or astropy.units.Quantity
        Top-hat radius in deg (default 0.1), > 0; a Quantity (``6 * u.arcmin``) is converted.
    correlate_off : bool
        On/off only: correlate the off counts too (default, Gammapy's), or not (for ring
        background datasets, whose off counts are already ring sums).
    energy_edges : sequence of float or astropy.units.Quantity, optional
        Reco-energy band edges in TeV (a subset of the dataset's edges); bins are summed
        within the safe mask. None: one map per energy bin of the dataset.
    mask : xarray.DataArray, regions, str, bool or None
        Extra pixels to use (bool, True = use; ``(lat, lon)`` or with ``energy``) or sky
        regions to leave out (an exclusion, e.g. to get the significance distribution of
        source-free pixels), combined with ``mask_safe`` and ``mask_fit``. ``False``: use
        every pixel, ignoring the dataset's masks.
    npred_signal : xarray.DataArray, optional
        Predicted counts of models ``(energy, lat, lon)`` on the dataset's energy axis,
        added to the known background (cash) or taken as known signal (wstat); the excess
        and significance are then those beyond the models.
    spectral_model : gammaxr.models.SpectralModel, optional
        Reference spectrum of ``norm``/``flux`` (default power law, index 2).
    n_sigma : float
        Confidence level of ``norm_err`` and the asymmetric errors, in sigma.
    n_sigma_ul : float
        Confidence level of the upper limits, in sigma.
    n_sigma_sensitivity : float
        Significance of the ``sensitivity`` output.
    selection : "all", str or sequence of str, optional
        Optional outputs from :data:`OPTIONAL_OUTPUTS`.
    metric : {"sky", "pixel"}
        How the radius is measured (:func:`gammaxr.estimators.smoothing.kernel_steps`,
        which says which one is Gammapy's on which grid); the same on grids square on the
        sky near lat 0.

    Returns
    -------
    xarray.Dataset
        Only the products, dims as ``counts``, NaN outside the mask: ``counts``
        (correlated counts), ``background`` (correlated background, ``alpha * n_off`` for
        on/off data), ``excess`` [counts], ``excess_err`` (symmetric, ``n_sigma``),
        ``significance`` (signed sqrt(TS), [sigma]) and ``ts``; with ``errn-errp``:
        ``excess_errn``/``_errp``; with ``ul``: ``excess_ul``; with ``sensitivity``:
        ``excess_sensitivity``; with an exposure: ``norm``,
        ``norm_err`` (and ``_errn``, ``_errp``, ``_ul``, ``_sensitivity``), ``flux``,
        ``flux_err``, ... [cm-2 s-1]; on/off selections ``alpha``, ``acceptance_on``,
        ``acceptance_off``; ``mask`` (the pixels used). Attrs: ``correlation_radius_deg``,
        ``statistic`` (``cash``/``wstat``), ``correlate_off``, ``n_sigma``, ``n_sigma_ul``.
        Lazy if the input is.

    Raises
    ------
    ValueError
        If the dataset has neither a background nor on/off variables, or an option is wrong.
    """
    correlation_radius = to_positive(correlation_radius, "deg", "correlation_radius")
    if energy_edges is not None:
        energy_edges = to_edges(energy_edges, "TeV", "energy_edges")
    on_off = all(n in ds for n in _ON_OFF)
    if not on_off and "background" not in ds:
        raise ValueError(
            "excess map needs 'counts' with 'background' or on/off variables "
            f"{_ON_OFF}; dataset has {sorted(ds.data_vars)}"
        )
    if "counts" not in ds:
        raise ValueError("excess map needs a 'counts' variable")
    chosen = _selection(selection, on_off)
    extra = {}
    if npred_signal is not None:
        extra["npred_signal"] = npred_signal
    if "exposure" in ds:
        if bounds_name("energy_true") in ds.coords or "energy_true_lo" in ds.coords:
            extra["reco_exposure"] = reco_exposure(ds, spectral_model)
        else:
            warnings.warn(
                "excess map: the exposure has no energy_true bounds; no norm/flux maps",
                stacklevel=2,
            )
    if energy_edges is not None and "mask_safe" not in ds:
        raise ValueError("grouping energy bins needs a 'mask_safe' variable")
    ds, extra = _resample(ds, energy_edges, extra)
    use = _estimator_mask(ds, mask)
    kernel = tophat_kernel(SkyGrid.from_xarray(ds), correlation_radius, metric)
    # every sum over the top-hat in one convolution: one FFT of the kernel for all maps
    maps = _maps_to_correlate(ds, extra, use, on_off, correlate_off)
    # the pixel counts of each distinct mask plane serve every plane like it
    distinct = _distinct_planes(use) if "mask" in maps else None
    if distinct is not None:
        del maps["mask"]
    options = {
        "on_off": on_off,
        "correlate_off": correlate_off,
        "chosen": chosen,
        "n_sigma": n_sigma,
        "n_sigma_ul": n_sigma_ul,
        "n_sigma_sensitivity": n_sigma_sensitivity,
    }
    # from here on plain numpy (or dask) arrays aligned on the counts dims: no xarray
    # alignment per operation; the statistics in numpy, on dask data one task per block
    out_dims = ds["counts"].dims

    def raw(var: xr.DataArray) -> Any:
        return var.variable.set_dims(use.sizes).transpose(*out_dims).data

    # the statistics' inputs besides the sums over the top-hat
    others = {"use": raw(use)}
    if on_off and not correlate_off:
        others["off_counts_off"] = raw(ds["counts_off"])
        others["off_acceptance_off"] = raw(ds["acceptance_off"])
    if "reco_exposure" in maps:  # the reference flux of each band, broadcast on the counts
        shape = [1] * len(out_dims)
        shape[out_dims.index("energy")] = -1
        edges = axis_edges(ds, "energy")
        band_flux = _reference_model(spectral_model).integral(edges[:-1], edges[1:])
        others["ref_flux"] = np.asarray(band_flux, dtype=float).reshape(shape)
    sums = [*maps, *(["mask"] if distinct is not None else [])]
    if sums_on_one_thread(kernel) and not any(
        is_dask_collection(a) for a in (*(v.data for v in maps.values()), *others.values())
    ):  # the other core makes the results' memory meanwhile
        inputs = {f"corr_{name}": np.dtype(np.float64) for name in sums}
        inputs.update({name: array.dtype for name, array in others.items()})
        size = ds["counts"].size
        # the gathered mask sums need a buffer; the reference exposure, dropped once
        # convolved, leaves one
        more = int(distinct is not None and use.size == size)
        more -= int("reco_exposure" in maps and maps["reco_exposure"].size == size)
        prepare_output_buffers(ds["counts"].shape, inputs, more, options)
    corr = convolve_sky_maps(maps, kernel, mask=use, integer=("counts",))
    # the reference exposure is used up: dropped, its memory may serve the products
    # (gammaxr.memory keeps the buffer of a dropped result)
    del maps
    extra.pop("reco_exposure", None)
    if distinct is not None:
        corr["mask"] = _mask_sums(use, distinct, kernel)
    arrays = {f"corr_{name}": raw(var) for name, var in corr.items()} | others
    if any(is_dask_collection(a) for a in arrays.values()):
        products = products_by_block(arrays, options)
    else:  # the caller's arrays are never written in place
        inputs = [v.data for v in ds.variables.values()] + [v.data for v in extra.values()]
        products = products_in_blocks(arrays, inputs, options)
    units = {"ts": "", "significance": "", "alpha": "", "acceptance_on": "", "acceptance_off": ""}
    result = {}
    for name, data in products.items():
        unit = units.get(name, "cm-2 s-1" if name.startswith("flux") else "")
        result[name] = xr.Variable(out_dims, data, attrs={"units": unit})
    result["mask"] = use.variable.copy(deep=False)
    result["mask"].attrs = {"units": ""}
    # only the coordinates of the output dims (not those of energy_true, obs_id tables, ...)
    dims = set(ds["counts"].dims)
    coords = {  # Variables: the Dataset is built without aligning DataArrays
        k: v
        for k, v in ds.coords.variables.items()
        if k not in result and set(v.dims) <= dims | {"bnds"}
    }
    attrs = {
        "frame": ds.attrs.get("frame"),
        "correlation_radius_deg": float(correlation_radius),
        "statistic": "wstat" if on_off else "cash",
        "correlate_off": bool(correlate_off),
        "n_sigma": float(n_sigma),
        "n_sigma_ul": float(n_sigma_ul),
        "n_sigma_sensitivity": float(n_sigma_sensitivity),
        "kernel_metric": metric,
    }
    return xr.Dataset(
        result, coords=coords, attrs={k: v for k, v in attrs.items() if v is not None}
    )
