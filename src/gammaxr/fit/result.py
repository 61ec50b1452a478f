"""Fit results: the parameter table as an ``xr.Dataset`` plus the fitted models.

The table follows DESIGN.md: dim ``param`` (full names ``model.component.name``, every
parameter of the models, frozen ones included) with variables ``value``, ``error``, ``min``,
``max``, ``frozen``, ``unit``, ``link``, optional Minos errors ``error_lo`` / ``error_hi``
(signed: ``error_lo <= 0``), and ``covariance(param, param2)`` (zero rows and columns for
frozen parameters; linked parameters share their entries). Attrs: ``success``, ``message``,
``total_stat`` (-2 log L at the best fit), ``nfev``, ``optimizer``, ``tol``, ``strategy``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import xarray as xr

from gammaxr.models import Models

from .minimizer import MinimizeResult

__all__ = ["FitResult", "result_dataset"]


class FitResult(NamedTuple):
    """What :func:`gammaxr.fit.fit` returns: ``parameters, models = fit(...)`` also works.

    Attributes
    ----------
    parameters : xarray.Dataset
        The result table (module docstring).
    models : Models
        Fitted copies of the models (values and errors set); the input models are unchanged.
    """

    parameters: xr.Dataset
    models: Models

    @property
    def success(self) -> bool:
        """Whether the fit converged and the covariance is valid."""
        return bool(self.parameters.attrs["success"])

    @property
    def message(self) -> str:
        """What the minimiser said."""
        return str(self.parameters.attrs["message"])

    @property
    def total_stat(self) -> float:
        """-2 log likelihood at the best fit."""
        return float(self.parameters.attrs["total_stat"])

    @property
    def nfev(self) -> int:
        """Number of likelihood evaluations."""
        return int(self.parameters.attrs["nfev"])

    def __repr__(self) -> str:
        """Fit status and parameter table; see :func:`gammaxr.summary.fit.fit_text`."""
        from gammaxr.summary.fit import fit_text

        return fit_text(self)

    def _repr_html_(self) -> str:
        from gammaxr.summary.fit import fit_html

        return fit_html(self)

    def value(self, name: str) -> float:
        """Fitted value of parameter ``name`` (full name ``model.component.name``)."""
        return float(self.parameters["value"].sel(param=name))

    def error(self, name: str) -> float:
        """1-sigma error of parameter ``name``."""
        return float(self.parameters["error"].sel(param=name))


def _slots(models: Models) -> np.ndarray:
    """For each parameter row of :meth:`Models.parameters_dataset`, its index in the free
    vector (linked parameters share one), or -1 if frozen."""
    free = models.free_parameter_names
    index = {name: i for i, name in enumerate(free)}
    link_index = {}
    for ref, p in models.parameters:
        if ref.full_name in index and p.link is not None:
            link_index[p.link] = index[ref.full_name]
    out = []
    for ref, p in models.parameters:
        if p.frozen:
            out.append(-1)
        elif ref.full_name in index:
            out.append(index[ref.full_name])
        else:
            out.append(link_index.get(p.link, -1))
    return np.asarray(out, dtype=int)


def result_dataset(
    models: Models,
    fitted: Models,
    res: MinimizeResult,
    *,
    tol: float,
    strategy: int,
) -> xr.Dataset:
    """Build the result table (module docstring) of a fit.

    Parameters
    ----------
    models : Models
        The models as given (defines the free vector).
    fitted : Models
        The models with fitted values and errors.
    res : MinimizeResult
        The minimiser's output.
    tol, strategy : float, int
        Migrad settings, recorded in attrs.

    Returns
    -------
    xarray.Dataset
    """
    table = fitted.parameters_dataset()
    slots = _slots(models)
    n = slots.size
    cov = np.zeros((n, n))
    free = slots >= 0
    cov[np.ix_(free, free)] = res.covariance[np.ix_(slots[free], slots[free])]
    names = table["param"].values
    table["covariance"] = xr.DataArray(
        cov, dims=("param", "param2"), coords={"param": names, "param2": names}
    )
    if res.minos:
        lo, hi = np.full(n, np.nan), np.full(n, np.nan)
        for row, slot in enumerate(slots):
            if slot in res.minos:
                lo[row], hi[row] = res.minos[slot][:2]
        table["error_lo"] = ("param", lo)
        table["error_hi"] = ("param", hi)
    table.attrs.update(
        success=bool(res.success),
        message=str(res.message),
        total_stat=float(res.fun),
        nfev=int(res.nfev),
        optimizer="iminuit migrad + hesse" + (" + minos" if res.minos else ""),
        tol=float(tol),
        strategy=int(strategy),
    )
    return table
