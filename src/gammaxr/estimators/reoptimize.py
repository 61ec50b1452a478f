"""Flux points with re-optimisation: other free parameters re-fitted in every energy bin.

With ``reoptimize=True`` (Gammapy's option of the same name) the source's shape stays
frozen at its best fit and its amplitude (the linear parameter ``amplitude``, or ``norm``
for tabulated spectra) is fitted together with all other free parameters (background norms,
other sources) on the reco bins of each energy bin, through :func:`gammaxr.fit.fit` with a
``mask_fit``. ``norm`` is the fitted amplitude over the reference one, ``ts`` compares with
the amplitude fixed at zero (others re-fitted), and profile errors and upper limits are
roots of the profile likelihood (a fit per evaluation), so this is much slower than the
default.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import xarray as xr
from scipy.optimize import brentq

from gammaxr.fit import FitContext, fit, load_datasets
from gammaxr.models import Models, SkyModel

from .norm_fit import NormLikelihood, norm_terms

__all__ = ["linear_parameter", "reoptimized_point"]

_LINEAR = ("amplitude", "norm")


def linear_parameter(model: SkyModel) -> str:
    """Name of the spectral parameter the flux is proportional to."""
    for name in _LINEAR:
        if name in model.spectral.parameter_names:
            return name
    raise ValueError(
        f"{type(model.spectral).__name__} of {model.name!r} has no 'amplitude' or 'norm' "
        "parameter to re-fit"
    )


def _restrict(ds: xr.Dataset, e_lo: float, e_hi: float) -> xr.Dataset:
    inside = (ds["energy"] > e_lo) & (ds["energy"] < e_hi)
    mask = inside.broadcast_like(ds["counts"])
    if "mask_fit" in ds:
        mask = mask & ds["mask_fit"].astype(bool)
    return ds.assign(mask_fit=mask)


def _stat(datasets, models: Models, name, convention: str, free: bool) -> float:
    if free and models.free_parameter_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return fit(datasets, models, name=name, convention=convention).total_stat
    return FitContext(load_datasets(datasets, name), models, convention=convention).stat()


def reoptimized_point(
    datasets: xr.Dataset | Sequence[xr.Dataset],
    models: Models,
    source: SkyModel,
    e_lo: float,
    e_hi: float,
    bins: tuple[int, int],
    *,
    n_sigma: float,
    n_sigma_ul: float,
    selection: Sequence[str],
    name=None,
    convention: str = "gammaxr",
) -> dict[str, float]:
    """One flux point with the other free parameters re-fitted (keys of
    :func:`gammaxr.estimators.norm_fit.estimate_norm`).

    Parameters
    ----------
    datasets : xarray.Dataset or sequence of xarray.Dataset
        The datasets.
    models : Models
        All models at their best fit.
    source : SkyModel
        The source (a member of ``models``).
    e_lo, e_hi : float
        Reco-energy range of the point, TeV (snapped edges).
    bins : (int, int)
        The reco bins ``start:stop`` of the point (for counts and npred).
    n_sigma, n_sigma_ul : float
        Error and upper-limit levels.
    selection : sequence of {"errn-errp", "ul"}
        Optional outputs.
    name, convention
        As for :func:`gammaxr.fit.fit`.
    """
    single = isinstance(datasets, xr.Dataset)
    parts = [datasets] if single else list(datasets)
    restricted = [_restrict(ds, e_lo, e_hi) for ds in parts]
    restricted = restricted[0] if single else restricted
    amp = linear_parameter(source)
    full = f"{source.name}.spectral.{amp}"
    reference = source.spectral.parameter(amp).value
    for comp, model in source.components.items():  # the source's shape stays as it is
        for pname in model.parameter_names:
            frozen = not (comp == "spectral" and pname == amp)
            models = models.with_parameter(f"{source.name}.{comp}.{pname}", frozen=frozen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        best = fit(restricted, models, name=name, convention=convention)
    norm = best.value(full) / reference
    err = best.error(full) / reference
    fixed = best.models.with_parameter(full, frozen=True)

    def profile(x: float) -> float:
        return _stat(restricted, fixed.with_values({full: x * reference}), name, convention, True)

    stat_null = profile(0.0)
    terms = norm_terms(restricted, best.models, source.name, name=name, convention=convention)
    like = NormLikelihood(terms, *bins)
    out = {
        "norm": norm,
        "norm_err": err * n_sigma,
        "ts": stat_null - best.total_stat,
        "stat": best.total_stat,
        "stat_null": stat_null,
        "npred": like.o_zero + float(like.o.sum() + like.o_w.sum()) + like.signal_total,
        "npred_excess": like.signal_total,
        "counts": like.counts,
        "success": float(best.success),
    }

    def crossing(level: float, side: int) -> float:
        target = best.total_stat + level
        step = side * max(err, 1e-3) * math.sqrt(level)
        x0, x1 = norm, norm + step
        for _ in range(30):
            if profile(x1) > target:
                return brentq(
                    lambda x: profile(x) - target, min(x0, x1), max(x0, x1), xtol=1e-4 * err
                )
            x0, x1 = x1, x1 + step
            step *= 2.0
        return math.nan

    if "errn-errp" in selection:
        out["norm_errp"] = crossing(n_sigma**2, +1) - norm
        out["norm_errn"] = norm - crossing(n_sigma**2, -1)
    if "ul" in selection:
        out["norm_ul"] = crossing(n_sigma_ul**2, +1)
    return {k: float(v) for k, v in out.items()}
