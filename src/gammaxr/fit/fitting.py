"""Public entry points: :func:`fit` models to datasets, :func:`npred` predicted counts.

Both read the numbers they need once (:func:`gammaxr.fit.data.load_datasets`, the documented
compute boundary of fitting), build a :class:`~gammaxr.fit.likelihood.FitContext` holding all
caches of this call, and never modify the datasets or the models given.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_lo_hi
from gammaxr.models import FoVBackgroundModel, Models, SkyModel

from .data import MapData, SpectrumData, load_datasets
from .likelihood import FitContext
from .minimizer import default_scales, gammapy_scales, minimize
from .result import FitResult, result_dataset

__all__ = ["fit", "fit_data", "model_scales", "npred"]

NPRED_KINDS = ("total", "signal", "background")


def _as_models(models) -> Models:
    if isinstance(models, Models):
        return models
    if isinstance(models, (SkyModel, FoVBackgroundModel)):
        return Models([models])
    return Models(models)


def model_scales(models: Models) -> np.ndarray:
    """Conditioning scales of the free parameters of ``models`` (their errors where known;
    :func:`gammaxr.fit.minimizer.default_scales`), in the order of ``get_vector()``."""
    free = [p for _, p in models.free_parameters]
    return default_scales(models.get_vector(), [p.unit for p in free], [p.error for p in free])


def fit(
    datasets: xr.Dataset | Sequence[xr.Dataset],
    models: Models | SkyModel | Sequence,
    *,
    name: str | Sequence[str] | None = None,
    minos: bool | Sequence[str] = False,
    tol: float = 0.1,
    strategy: int = 1,
    ncall: int | None = None,
    scales: Mapping[str, float] | None = None,
    convention: str = "gammaxr",
) -> FitResult:
    """Fit models to datasets by maximum likelihood (iminuit Migrad, then Hesse).

    Parameters
    ----------
    datasets : xarray.Dataset or sequence of xarray.Dataset
        Map datasets (``counts(energy, lat, lon)``, ``exposure(energy_true, lat, lon)`` [m2 s],
        ``background``, ``mask_safe``, optional ``mask_fit``, ``psf``/``edisp`` on the IRF
        grid; on/off: ``counts_off``, ``acceptance``, ``acceptance_off``) or 1D spectrum
        datasets (dims ``energy``/``energy_true`` only), numpy- or dask-backed. A dataset with
        an ``obs_id`` dim gives one likelihood term per run (joint fit). The arrays are
        loaded once here (compute boundary).
    models : Models, SkyModel or sequence of models
        Sky models (shared by all datasets unless their ``datasets_names`` say otherwise) and
        FoV background models (by dataset name; see :mod:`gammaxr.fit.data`). Free,
        frozen, bounded and linked parameters are taken from the models.
    name : str or sequence of str, optional
        Dataset names (default ``ds.attrs["name"]``, else ``"stacked"``); runs are named by
        ``str(obs_id)``.
    minos : bool or sequence of str
        Run Minos for all free parameters (True) or for these full names.
    tol : float
        Migrad tolerance (Gammapy's default 0.1).
    strategy : int
        Minuit strategy (0, 1, 2).
    ncall : int, optional
        Call limit of Migrad.
    scales : mapping of str to float, optional
        Conditioning scales by full parameter name (default: error, 0.01 deg for angles or
        10 % of the value; see :func:`gammaxr.fit.minimizer.default_scales`).
    convention : {"gammaxr", "gammapy"}
        How sources are rendered on map datasets: PSF kernels on the grid's own pixels and
        point sources shifted smoothly (default), or Gammapy's square kernel pixels and
        bilinear point weights, to reproduce its numbers (:mod:`gammaxr.fit.kernels`).
        ``"gammapy"`` also follows Gammapy's rule for recomputing a source's IRFs during
        the fit (``irf_update="gammapy"`` of :class:`~gammaxr.fit.likelihood.FitContext`)
        and its Minuit conditioning (:func:`gammaxr.fit.minimizer.gammapy_scales`), so
        that Migrad visits the positions Gammapy's does: its result then depends on the
        start values, as Gammapy's does (docs/conventions.md).

    Returns
    -------
    FitResult
        ``(parameters, models)``: the result table (xr.Dataset with dim ``param``:
        ``value``, ``error``, ``min``, ``max``, ``frozen``, ``unit``, ``covariance(param,
        param2)``; attrs ``success``, ``message``, ``total_stat``, ``nfev``) and fitted
        copies of the models.

    Warns
    -----
    RuntimeWarning
        If the fit did not converge (``success`` False, the reason in ``message``).
    """
    models = _as_models(models)
    if not models.free_parameter_names:
        raise ValueError("the models have no free parameter to fit")
    return fit_data(
        load_datasets(datasets, name),
        models,
        minos=minos,
        tol=tol,
        strategy=strategy,
        ncall=ncall,
        scales=scales,
        convention=convention,
    )


def fit_data(
    data: Sequence[MapData | SpectrumData],
    models: Models,
    *,
    minos: bool | Sequence[str] = False,
    tol: float = 0.1,
    strategy: int = 1,
    ncall: int | None = None,
    scales: Mapping[str, float] | None = None,
    convention: str = "gammaxr",
) -> FitResult:
    """:func:`fit` on datasets already loaded by :func:`gammaxr.fit.data.load_datasets`
    (for callers fitting the same data many times, e.g. likelihood profiles).

    Parameters are those of :func:`fit`; ``data`` replaces ``datasets`` and ``name``.

    Returns
    -------
    FitResult
    """
    names = models.free_parameter_names
    if not names:
        raise ValueError("the models have no free parameter to fit")
    context = FitContext(data, models, convention=convention)
    x0 = models.get_vector()
    steps = None
    if convention == "gammapy":
        scale, steps = gammapy_scales(x0, [p.error for _, p in models.free_parameters])
    else:
        scale = model_scales(models)
    for key, value in (scales or {}).items():
        if key not in names:
            raise KeyError(f"scales: {key!r} is not a free parameter; free are {names}")
        i = names.index(key)
        if steps is not None:  # keep the initial step in the parameter's units
            steps[i] *= scale[i] / float(value)
        scale[i] = float(value)
    if minos is True or minos is False:
        minos_index = minos
    else:
        unknown = [k for k in minos if k not in names]
        if unknown:
            raise KeyError(f"minos: {unknown} are not free parameters; free are {names}")
        minos_index = [names.index(k) for k in minos]
    res = minimize(
        context,
        x0,
        bounds=models.get_bounds(),
        scales=scale,
        names=names,
        minos=minos_index,
        tol=tol,
        strategy=strategy,
        ncall=ncall,
        steps=steps,
    )
    errors = np.where(np.isfinite(res.errors), res.errors, 0.0)
    fitted = models.with_vector(res.x, errors=errors)
    table = result_dataset(models, fitted, res, tol=tol, strategy=strategy)
    if not res.success:
        warnings.warn(f"fit did not converge: {res.message}", RuntimeWarning, stacklevel=3)
    return FitResult(table, fitted.with_covariance(table["covariance"]))


def _to_xarray(ds: xr.Dataset, data, arrays: list[np.ndarray], kind: str) -> xr.DataArray:
    dims = ("energy", "lat", "lon") if isinstance(data[0], MapData) else ("energy",)
    if "obs_id" in ds.dims:
        values = np.stack(arrays)
        dims = ("obs_id", *dims)
    else:
        (values,) = arrays
    coords = {d: ds[d] for d in dims}
    lo, hi = axis_lo_hi(ds, "energy")  # DataArrays carry edges as energy_lo / energy_hi
    unit = ds["energy"].attrs.get("units", "TeV")
    coords["energy_lo"] = ("energy", lo, {"units": unit})
    coords["energy_hi"] = ("energy", hi, {"units": unit})
    return xr.DataArray(
        values,
        dims=dims,
        coords=coords,
        name="npred" if kind == "total" else f"npred_{kind}",
        attrs={"units": "", "frame": ds.attrs.get("frame", "")},
    )


def npred(
    ds: xr.Dataset,
    models: Models | SkyModel | Sequence,
    *,
    kind: str = "total",
    name: str | None = None,
    convention: str = "gammaxr",
) -> xr.DataArray:
    """Predicted counts of models on a dataset (compute boundary: the dataset is loaded).

    Parameters
    ----------
    ds : xarray.Dataset
        A map or spectrum dataset (see :func:`fit`), optionally with an ``obs_id`` dim.
    models : Models, SkyModel or sequence of models
        The models at their current values.
    kind : {"total", "signal", "background"}
        Sources plus background, sources only, or background only (scaled by the FoV
        background model; for on/off datasets ``alpha * mu_bkg`` profiled by wstat).
    name : str, optional
        Dataset name (see :func:`fit`).
    convention : {"gammaxr", "gammapy"}
        Source rendering convention (see :func:`fit`).

    Returns
    -------
    xarray.DataArray
        Dims ``(energy, lat, lon)`` (or ``(energy,)``), with ``obs_id`` first for per-run
        datasets; numpy-backed.
    """
    if kind not in NPRED_KINDS:
        raise ValueError(f"kind must be one of {NPRED_KINDS}, got {kind!r}")
    data = load_datasets(ds, name, skip_empty=False)
    context = FitContext(data, _as_models(models), convention=convention, require_sources=False)
    arrays = [out[kind] for out in context.npred()]
    return _to_xarray(ds, data, arrays, kind)
