"""Model error bands ("butterflies"): the uncertainty of a fitted spectrum vs energy.

Given a spectral model and the covariance of its parameters (from a fit), the error of
``dN/dE`` at each energy is obtained either

- by linear propagation (``method="propagation"``, default): ``var(E) = J C J^T`` with
  ``J`` the derivatives of ``dN/dE(E)`` with respect to the parameters (central
  differences with steps of 1e-3 of each parameter's error), the band is ``dnde +-
  n_sigma * err``; or
- by sampling (``method="sampling"``, Gammapy 2.1's ``evaluate_error``): parameter vectors
  drawn from the multivariate normal of the best fit and covariance, the band between the
  quantiles at ``Phi(-n_sigma)`` and ``Phi(n_sigma)`` of the sampled ``dN/dE`` (asymmetric
  for non-linear models).

Parameters with zero variance (frozen) do not contribute. The covariance comes from a fit
result (:class:`gammaxr.fit.FitResult`: its ``covariance(param, param2)`` rows of the source's
spectral parameters), or is given with the model; without any, the parameter errors stored
on the model are used without correlations (which overestimates the band away from the
decorrelation energy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy.stats import norm as normal

from gammaxr.fit import FitResult
from gammaxr.models import Models, SkyModel, SpectralModel

from .flux_points import SED_UNITS
from .norm_fit import source_model

__all__ = ["METHODS", "butterfly", "spectral_covariance"]

METHODS = ("propagation", "sampling")
#: Step of the numerical derivatives, in units of each parameter's error.
STEP = 1e-3


def spectral_covariance(
    model: Any, covariance: Any = None, source: str | None = None
) -> tuple[SpectralModel, list[str], np.ndarray]:
    """The spectral model of a source and the covariance of its parameters.

    Parameters
    ----------
    model : FitResult, Models, SkyModel or SpectralModel
        A fit result (covariance included), models (the source's spectrum) or a model.
    covariance : xarray.DataArray or numpy.ndarray, optional
        Covariance of the spectral parameters: a DataArray with dims ``(param, param2)``
        whose labels are parameter names (``"index"``) or full names
        (``"crab.spectral.index"``), or an array in the order of the model's parameters.
        Default: from the fit result, else the parameters' errors squared on the diagonal.
    source : str, optional
        Sky model name (default: the first sky model).

    Returns
    -------
    spectral : SpectralModel
        The spectral model (best-fit values).
    names : list of str
        Its parameter names, in order.
    cov : numpy.ndarray, shape (n, n)
        Their covariance, canonical units.
    """
    table = None
    if isinstance(model, FitResult):
        table, model = model.parameters, model.models
    sky = None
    if isinstance(model, (Models, SkyModel, list, tuple)):
        sky = source_model(model, source)
        spectral = sky.spectral
    elif isinstance(model, SpectralModel):
        spectral = model
    else:
        raise TypeError(f"expected a FitResult, Models, SkyModel or SpectralModel, got {model!r}")
    names = list(spectral.parameter_names)
    if covariance is None and table is not None:
        full = [f"{sky.name}.spectral.{n}" for n in names]
        covariance = table["covariance"].sel(param=full, param2=full)
    if covariance is None:
        errors = np.array([p.error for p in spectral.parameters])
        return spectral, names, np.diag(errors**2)
    if isinstance(covariance, xr.DataArray):
        labels = [str(v).rsplit(".", 1)[-1] for v in covariance[covariance.dims[0]].values]
        labels2 = [str(v).rsplit(".", 1)[-1] for v in covariance[covariance.dims[1]].values]
        cov = np.zeros((len(names), len(names)))
        where = {n: i for i, n in enumerate(labels)}
        where2 = {n: i for i, n in enumerate(labels2)}
        values = np.asarray(covariance.values, dtype=float)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if a in where and b in where2:
                    cov[i, j] = values[where[a], where2[b]]
        return spectral, names, cov
    cov = np.asarray(covariance, dtype=float)
    if cov.shape != (len(names), len(names)):
        raise ValueError(
            f"covariance has shape {cov.shape}; {type(spectral).__name__} has "
            f"{len(names)} parameters {names}"
        )
    return spectral, names, cov


def _evaluate(spectral: SpectralModel, energy: np.ndarray, values: dict) -> np.ndarray:
    return np.asarray(spectral.evaluate(energy, **values), dtype=float)


def _propagate(spectral, names, cov, energy) -> np.ndarray:
    """Standard deviation of dN/dE at ``energy`` by linear error propagation."""
    values = spectral.values
    sigma = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    used = np.flatnonzero(sigma > 0)
    jac = np.zeros((used.size, energy.size))
    for row, i in enumerate(used):
        step = STEP * sigma[i]
        up = _evaluate(spectral, energy, {**values, names[i]: values[names[i]] + step})
        down = _evaluate(spectral, energy, {**values, names[i]: values[names[i]] - step})
        jac[row] = (up - down) / (2.0 * step)
    sub = cov[np.ix_(used, used)]
    return np.sqrt(np.clip(np.einsum("pe,pq,qe->e", jac, sub, jac), 0.0, None))


def _sample(spectral, names, cov, energy, n_samples, rng) -> np.ndarray:
    """dN/dE at ``energy`` for parameter vectors drawn from the covariance, (n, n_e)."""
    values = spectral.values
    sigma = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    used = np.flatnonzero(sigma > 0)
    mean = np.array([values[names[i]] for i in used])
    draws = rng.multivariate_normal(mean, cov[np.ix_(used, used)], size=n_samples, method="eigh")
    sampled = dict(values)
    for col, i in enumerate(used):
        sampled[names[i]] = draws[:, col : col + 1]
    return np.broadcast_to(_evaluate(spectral, energy[None, :], sampled), (n_samples, energy.size))


def butterfly(
    model: FitResult | Models | SkyModel | SpectralModel,
    energy: Sequence[float] | np.ndarray | None = None,
    *,
    covariance: Any = None,
    source: str | None = None,
    n_sigma: float = 1.0,
    method: str = "propagation",
    energy_bounds: tuple[float, float] = (0.1, 100.0),
    n_points: int = 100,
    n_samples: int = 10000,
    rng: np.random.Generator | int | None = 42,
) -> xr.Dataset:
    """Error band of a fitted spectrum: dN/dE and E^2 dN/dE with errors over energy.

    Parameters
    ----------
    model : FitResult, Models, SkyModel or SpectralModel
        The fitted model; a :class:`~gammaxr.fit.FitResult` brings its covariance.
    energy : array_like, optional
        Energies in TeV (or an astropy quantity); default ``n_points`` log-spaced values in
        ``energy_bounds``.
    covariance : xarray.DataArray or numpy.ndarray, optional
        Covariance of the spectral parameters (see :func:`spectral_covariance`).
    source : str, optional
        Sky model name (default: the first).
    n_sigma : float
        Width of the band in sigma.
    method : {"propagation", "sampling"}
        Linear error propagation, or quantiles of sampled spectra (module docstring).
    energy_bounds : (float, float)
        Energy range in TeV when ``energy`` is not given.
    n_points : int
        Number of energies when ``energy`` is not given.
    n_samples : int
        Number of parameter draws (``method="sampling"``).
    rng : numpy.random.Generator, int or None
        Random generator or seed for sampling (default 42: reproducible bands).

    Returns
    -------
    xarray.Dataset
        Dim ``energy`` (TeV): ``dnde`` (best fit), ``dnde_err``, ``dnde_errn``,
        ``dnde_errp``, ``dnde_lo``, ``dnde_hi`` in cm-2 s-1 TeV-1 and the same for
        ``e2dnde`` in TeV cm-2 s-1 (``dnde_median`` too when sampling); attrs ``method``,
        ``n_sigma``, ``parameters`` (those with non-zero variance).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    spectral, names, cov = spectral_covariance(model, covariance, source)
    if energy is None:
        energy = np.geomspace(*energy_bounds, n_points)
    elif hasattr(energy, "unit"):
        energy = energy.to_value("TeV")
    energy = np.atleast_1d(np.asarray(energy, dtype=float))
    if energy.ndim != 1 or np.any(energy <= 0):
        raise ValueError("energy must be a 1D array of positive energies in TeV")
    if not np.allclose(cov, cov.T, rtol=1e-8, atol=0):
        raise ValueError("the covariance matrix is not symmetric")
    dnde = _evaluate(spectral, energy, spectral.values)
    out: dict[str, np.ndarray] = {"dnde": dnde}
    if method == "propagation":
        err = n_sigma * _propagate(spectral, names, cov, energy)
        out.update(
            dnde_err=err, dnde_errn=err, dnde_errp=err, dnde_lo=dnde - err, dnde_hi=dnde + err
        )
    else:
        samples = _sample(spectral, names, cov, energy, int(n_samples), np.random.default_rng(rng))
        q = 100.0 * normal.cdf([-n_sigma, 0.0, n_sigma])
        lo, median, hi = np.percentile(samples, q, axis=0)
        out.update(
            dnde_lo=lo,
            dnde_hi=hi,
            dnde_errn=dnde - lo,
            dnde_errp=hi - dnde,
            dnde_err=0.5 * (hi - lo),
            dnde_median=median,
        )
    data = {key: ("energy", value, {"units": SED_UNITS["dnde"]}) for key, value in out.items()}
    for key, value in out.items():
        data["e2" + key] = ("energy", value * energy**2, {"units": SED_UNITS["e2dnde"]})
    coords = {"energy": ("energy", energy, {"units": "TeV"})}
    sigma = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    attrs = {
        "method": method,
        "n_sigma": float(n_sigma),
        "model": type(spectral).__name__,
        "parameters": ",".join(n for n, s in zip(names, sigma, strict=True) if s > 0),
    }
    if method == "sampling":
        attrs["n_samples"] = int(n_samples)
    return xr.Dataset(data, coords=coords, attrs=attrs)
