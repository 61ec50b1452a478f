"""Likelihood profiles and contours around a best fit.

::

    from gammaxr.fit import fit, stat_contour, stat_profile
    result = fit(ds, models)
    profile = stat_profile(ds, result, "crab.spectral.index")                  # others fixed
    profile = stat_profile(ds, result, "crab.spectral.index", reoptimize=True)  # others re-fitted
    contour = stat_contour(ds, result, "crab.spectral.index", "crab.spectral.amplitude")

A profile is the statistic (-2 log L) along a grid of values of one parameter, with the other
free parameters either fixed at their best fit or re-fitted at every value (the profile
likelihood; one fit per value, run as dask tasks). A contour is Minuit's ``mncontour``: points
of the curve where the statistic, minimised over all other free parameters, is
``total_stat + n_sigma**2``. For ``n_sigma=1`` its projection on either axis is that
parameter's Minos interval (Gammapy's ``Fit.stat_contour`` convention: ``sigma`` counts
1D standard deviations, not a 2D confidence level).

Both read the data once (:func:`gammaxr.fit.data.load_datasets`, the compute boundary of
fitting) and never modify the datasets, the result or its models.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask
import numpy as np
import xarray as xr
from scipy.stats import chi2

from gammaxr.units import to_unit

from .data import load_datasets
from .fitting import model_scales
from .likelihood import FitContext
from .minimizer import minimize, scaled_minuit
from .result import FitResult

__all__ = ["profile_values", "stat_contour", "stat_profile"]


def _check_parameter(result: FitResult, parameter: str) -> None:
    known = [ref.full_name for ref, _ in result.models.parameters]
    if parameter not in known:
        raise KeyError(f"no parameter {parameter!r} in the fitted models; they have {known}")


def profile_values(
    result: FitResult, parameter: str, n_sigma: float = 2.0, n_values: int = 11
) -> np.ndarray:
    """Default profile grid: ``n_values`` values evenly spaced over best fit +- ``n_sigma``
    errors (Gammapy's ``scan_n_sigma`` and ``scan_n_values``).

    Parameters
    ----------
    result : FitResult
        The fit.
    parameter : str
        Full parameter name ``model.component.name``.
    n_sigma : float
        Half-width of the grid in units of the parameter's fit error.
    n_values : int
        Number of values (at least 2).

    Returns
    -------
    numpy.ndarray, shape (n_values,)
        Values in the parameter's unit.

    Raises
    ------
    ValueError
        If the fit gave the parameter no positive finite error.
    """
    _check_parameter(result, parameter)
    if n_values < 2:
        raise ValueError(f"n_values must be at least 2, got {n_values}")
    p = result.models.parameter(parameter)
    if not (np.isfinite(p.error) and p.error > 0):
        raise ValueError(
            f"parameter {parameter!r} has no fit error ({p.error}); pass values= explicitly"
        )
    return np.linspace(p.value - n_sigma * p.error, p.value + n_sigma * p.error, n_values)


def _refit(data, models, convention: str, tol: float, strategy: int) -> tuple[float, list, bool]:
    """Migrad (no Hesse) of the free parameters of ``models``: (stat, vector, success)."""
    context = FitContext(data, models, convention=convention)
    res = minimize(
        context,
        models.get_vector(),
        bounds=models.get_bounds(),
        scales=model_scales(models),
        names=models.free_parameter_names,
        tol=tol,
        strategy=strategy,
        hesse=False,
    )
    return res.fun, list(res.x), res.success


def stat_profile(
    datasets: xr.Dataset | Sequence[xr.Dataset],
    result: FitResult,
    parameter: str,
    values: Sequence[float] | np.ndarray | None = None,
    reoptimize: bool = False,
    *,
    n_sigma: float = 2.0,
    n_values: int = 11,
    name: str | Sequence[str] | None = None,
    convention: str = "gammaxr",
    tol: float = 0.1,
    strategy: int = 1,
    scheduler: str | None = None,
) -> xr.Dataset:
    """The statistic along a grid of values of one parameter.

    Parameters
    ----------
    datasets : xarray.Dataset or sequence of xarray.Dataset
        The datasets that were fitted (as for :func:`gammaxr.fit.fit`).
    result : FitResult
        The fit; its fitted models are the starting point.
    parameter : str
        Full name ``model.component.name`` of the parameter to scan (may be frozen in the
        fit when ``reoptimize`` is False).
    values : array_like or astropy.units.Quantity, optional
        Values in the parameter's (canonical) unit, or a quantity (array) converted to it;
        default :func:`profile_values` with ``n_sigma`` and ``n_values``.
    reoptimize : bool
        Re-fit all other free parameters at each value (one Migrad fit per value, run as
        dask tasks on ``scheduler``) instead of keeping them at the best fit.
    n_sigma, n_values : float, int
        Default grid (see :func:`profile_values`).
    name, convention, tol, strategy
        As for :func:`gammaxr.fit.fit`.
    scheduler : str, optional
        Dask scheduler for the re-fits (``"threads"``, ``"processes"``, ``"sync"``; default
        dask's current one).

    Returns
    -------
    xarray.Dataset
        Dim ``value`` (the scanned values, ``units`` of the parameter): ``stat`` (-2 log L);
        with ``reoptimize``, also one variable per other free parameter (named by its full
        name, its re-fitted values) and ``success`` (bool). Attrs: ``parameter``,
        ``best_value``, ``total_stat`` (the fit's), ``reoptimize``.
    """
    _check_parameter(result, parameter)
    if values is None:
        values = profile_values(result, parameter, n_sigma, n_values)
    unit = result.models.parameter(parameter).unit
    values = np.atleast_1d(np.asarray(to_unit(values, unit, "values"), dtype=float))
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty 1D sequence, got shape {values.shape}")
    data = load_datasets(datasets, name)
    best = result.models
    scanned = best.parameter(parameter)
    out = xr.Dataset(coords={"value": ("value", values, {"units": scanned.unit})})
    if not reoptimize:
        free = best.with_parameter(parameter, frozen=False)
        context = FitContext(data, free, convention=convention)
        stats = [context.stat(free.with_values({parameter: v}).get_vector()) for v in values]
        out["stat"] = ("value", np.asarray(stats), {"units": ""})
    else:
        fixed = best.with_parameter(parameter, frozen=True)
        others = fixed.free_parameter_names
        if not others:
            raise ValueError(f"no free parameter besides {parameter!r} to re-optimise")
        data_task = dask.delayed(data, traverse=False)
        tasks = [
            dask.delayed(_refit)(
                data_task, fixed.with_values({parameter: v}), convention, tol, strategy
            )
            for v in values
        ]
        fits = dask.compute(*tasks, scheduler=scheduler)
        out["stat"] = ("value", np.array([f[0] for f in fits]), {"units": ""})
        vectors = np.array([f[1] for f in fits]).reshape(values.size, len(others))
        for i, (full, (_, p)) in enumerate(zip(others, fixed.free_parameters, strict=True)):
            out[full] = ("value", vectors[:, i], {"units": p.unit})
        out["success"] = ("value", np.array([f[2] for f in fits], dtype=bool))
    return out.assign_attrs(
        parameter=parameter,
        best_value=float(scanned.value),
        total_stat=float(result.total_stat),
        reoptimize=int(bool(reoptimize)),
    )


def stat_contour(
    datasets: xr.Dataset | Sequence[xr.Dataset],
    result: FitResult,
    x: str,
    y: str,
    n_sigma: float = 1.0,
    n_points: int = 20,
    *,
    name: str | Sequence[str] | None = None,
    convention: str = "gammaxr",
    tol: float = 0.1,
    strategy: int = 1,
) -> xr.Dataset:
    """Minos contour of two parameters: where the profile likelihood rises by ``n_sigma**2``.

    Parameters
    ----------
    datasets : xarray.Dataset or sequence of xarray.Dataset
        The datasets that were fitted.
    result : FitResult
        The fit (its models and errors start Minuit at the minimum).
    x, y : str
        Full names of two free parameters.
    n_sigma : float
        Level: ``stat = total_stat + n_sigma**2``, all other free parameters re-fitted at
        every point (1 gives the 1D 1-sigma Minos interval as the contour's extent).
    n_points : int
        Number of points on the contour.
    name, convention, tol, strategy
        As for :func:`gammaxr.fit.fit`.

    Returns
    -------
    xarray.Dataset
        Dim ``point``: variables ``x`` and ``y`` named after the parameters' full names
        (their units in ``units``), the closed curve's points in order (the last point is not
        repeated). Attrs: ``x``, ``y``, ``n_sigma``, ``delta_stat``, ``total_stat``.

    Raises
    ------
    ValueError
        If ``x`` or ``y`` is not a free parameter, or Minuit finds no valid minimum.
    """
    models = result.models
    names = models.free_parameter_names
    for par in (x, y):
        if par not in names:
            raise ValueError(f"contour parameter {par!r} is not free; free are {names}")
    if x == y:
        raise ValueError(f"a contour needs two different parameters, got {x!r} twice")
    if n_points < 4:
        raise ValueError(f"n_points must be at least 4, got {n_points}")
    context = FitContext(load_datasets(datasets, name), models, convention=convention)
    x0 = models.get_vector()
    free = [p for _, p in models.free_parameters]
    scales = model_scales(models)
    m = scaled_minuit(
        context, x0, scales, bounds=models.get_bounds(), names=names, tol=tol, strategy=strategy
    )
    m.migrad()
    if not m.valid:
        raise ValueError(f"no valid minimum for the contour of {x!r} and {y!r}: {m.fmin}")
    ix, iy = names.index(x), names.index(y)
    cl = float(chi2.cdf(n_sigma**2, 2))  # Minuit's 2-dof level giving delta stat n_sigma**2
    points = np.asarray(m.mncontour(x, y, cl=cl, size=n_points), dtype=float)
    if len(points) > 1 and np.array_equal(points[0], points[-1]):
        points = points[:-1]  # Minuit closes the curve by repeating the first point
    px, py = free[ix], free[iy]
    return xr.Dataset(
        {
            x: ("point", points[:, 0] * scales[ix], {"units": px.unit}),
            y: ("point", points[:, 1] * scales[iy], {"units": py.unit}),
        },
        attrs={
            "x": x,
            "y": y,
            "n_sigma": float(n_sigma),
            "delta_stat": float(n_sigma**2),
            "total_stat": float(m.fval),
        },
    )
