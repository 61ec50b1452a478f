"""Spectra: a fitted spectral model with its error band ("butterfly") and flux points.

The band is the linear propagation of the fit covariance of the model's spectral parameters,
``var(dN/dE) = J C J^T`` with ``J`` the numerical derivatives (central differences of
``1e-3`` sigma) of ``dN/dE`` with respect to the free spectral parameters. Energies in TeV,
``dnde`` in cm-2 s-1 TeV-1, ``e2dnde`` in TeV cm-2 s-1.

Plotting is a compute boundary: flux points (small) are loaded here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_lo_hi
from gammaxr.models import SkyModel, SpectralModel

__all__ = ["SED_LABELS", "plot_flux_points", "plot_spectrum", "spectrum_butterfly"]

#: Axis labels of the SED types.
SED_LABELS = {
    "dnde": "dN/dE [cm-2 s-1 TeV-1]",
    "e2dnde": "E² dN/dE [TeV cm-2 s-1]",
}


def _covariance(covariance: Any) -> xr.DataArray:
    """The ``covariance(param, param2)`` DataArray of a FitResult, result table or array."""
    if hasattr(covariance, "parameters") and isinstance(covariance.parameters, xr.Dataset):
        covariance = covariance.parameters  # a FitResult
    if isinstance(covariance, xr.Dataset):
        if "covariance" not in covariance:
            raise ValueError("the fit result table has no 'covariance' variable")
        covariance = covariance["covariance"]
    if not isinstance(covariance, xr.DataArray) or covariance.ndim != 2:
        raise TypeError(
            "covariance must be a FitResult, its parameters Dataset, or a 2D DataArray "
            f"(param, param2); got {type(covariance).__name__}"
        )
    return covariance


def spectrum_butterfly(
    model: SkyModel | SpectralModel,
    covariance: Any,
    energy: Sequence[float] | np.ndarray,
    *,
    prefix: str | None = None,
) -> xr.Dataset:
    """A spectral model and its 1-sigma band from the fit covariance.

    Parameters
    ----------
    model : SkyModel or SpectralModel
        The fitted model (``result.models["name"]``).
    covariance : FitResult, xarray.Dataset or xarray.DataArray
        The fit result, its parameter table (with ``covariance(param, param2)``), or the
        covariance DataArray itself; entries are looked up by full parameter name.
    energy : array_like, shape (n,)
        Energies, TeV.
    prefix : str, optional
        Prefix of the spectral parameters' full names (default ``"<model name>.spectral."``
        for a SkyModel, ``""`` for a SpectralModel).

    Returns
    -------
    xarray.Dataset
        Dim ``energy`` (TeV): ``dnde``, ``dnde_err`` [cm-2 s-1 TeV-1], ``e2dnde``,
        ``e2dnde_err`` [TeV cm-2 s-1].

    Raises
    ------
    KeyError
        If no spectral parameter of the model is in the covariance.
    """
    spectral = model.spectral if isinstance(model, SkyModel) else model
    if prefix is None:
        prefix = f"{model.name}.spectral." if isinstance(model, SkyModel) else ""
    cov = _covariance(covariance)
    energy = np.asarray(energy, dtype=float)
    values = spectral.values
    params = [p for p in spectral.parameters if not p.frozen]
    names = [prefix + p.name for p in params]
    index = list(cov.coords[cov.dims[0]].values)
    present = [n for n in names if n in index]
    if not present:
        raise KeyError(f"no parameter of {names} is in the covariance (it has {index})")
    sub = np.asarray(cov.sel({cov.dims[0]: present, cov.dims[1]: present}).values, dtype=float)
    jac = np.zeros((len(present), energy.size))
    for i, full in enumerate(present):
        pname = full[len(prefix) :]
        step = 1e-3 * np.sqrt(sub[i, i]) if sub[i, i] > 0 else 0.0
        if step == 0:
            continue
        hi = spectral.evaluate(energy, **{**values, pname: values[pname] + step})
        lo = spectral.evaluate(energy, **{**values, pname: values[pname] - step})
        jac[i] = (np.asarray(hi) - np.asarray(lo)) / (2 * step)
    dnde = np.asarray(spectral.evaluate(energy, **values), dtype=float)
    err = np.sqrt(np.clip(np.einsum("in,ij,jn->n", jac, sub, jac), 0, None))
    e2 = energy**2
    return xr.Dataset(
        {
            "dnde": ("energy", dnde, {"units": "cm-2 s-1 TeV-1"}),
            "dnde_err": ("energy", err, {"units": "cm-2 s-1 TeV-1"}),
            "e2dnde": ("energy", e2 * dnde, {"units": "TeV cm-2 s-1"}),
            "e2dnde_err": ("energy", e2 * err, {"units": "TeV cm-2 s-1"}),
        },
        coords={"energy": ("energy", energy, {"units": "TeV"})},
    )


def _check_sed(sed_type: str) -> None:
    if sed_type not in SED_LABELS:
        raise ValueError(f"sed_type must be one of {sorted(SED_LABELS)}, got {sed_type!r}")


def plot_flux_points(
    flux_points: xr.Dataset,
    ax: Any = None,
    *,
    sed_type: str = "e2dnde",
    color: str | None = "k",
    label: str | None = "flux points",
):
    """Flux points with energy-bin widths, errors and upper limits (arrows), log-log.

    Parameters
    ----------
    flux_points : xarray.Dataset
        Output of :func:`gammaxr.estimators.flux_points.flux_points`: dim ``energy`` with
        ``e_ref`` and bin bounds, ``<sed>``, ``<sed>_err`` (or ``_errn``/``_errp``),
        optional ``<sed>_ul`` with ``is_ul``. Loaded here.
    ax : matplotlib Axes, optional
        Default a new figure.
    sed_type : {"e2dnde", "dnde"}
        Quantity plotted.
    color, label : str, optional
        Marker colour and legend label.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    _check_sed(sed_type)
    if sed_type not in flux_points:
        raise KeyError(f"flux points have no {sed_type!r} variable")
    fp = flux_points.load()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    e_ref = np.asarray(fp["e_ref"].values, float)
    lo, hi = (np.asarray(a, float) for a in axis_lo_hi(fp, "energy"))
    value = np.asarray(fp[sed_type].values, float)
    if f"{sed_type}_errn" in fp and f"{sed_type}_errp" in fp:
        yerr = [fp[f"{sed_type}_errn"].values, fp[f"{sed_type}_errp"].values]
    else:
        err = fp[f"{sed_type}_err"].values if f"{sed_type}_err" in fp else np.zeros_like(value)
        yerr = [err, err]
    yerr = np.asarray(yerr, float)
    is_ul = np.asarray(fp["is_ul"].values, bool) if "is_ul" in fp else np.zeros(value.size, bool)
    has_ul = f"{sed_type}_ul" in fp
    if not has_ul:
        is_ul[:] = False
    xerr = np.array([e_ref - lo, hi - e_ref])
    ok = ~is_ul & np.isfinite(value) & (value > 0)
    ax.errorbar(
        e_ref[ok], value[ok], yerr=yerr[:, ok], xerr=xerr[:, ok], fmt="o", color=color,
        ms=4, label=label,
    )  # fmt: skip
    if has_ul:
        ul = np.asarray(fp[f"{sed_type}_ul"].values, float)
        sel = is_ul & np.isfinite(ul) & (ul > 0)
        if sel.any():
            ax.errorbar(
                e_ref[sel], ul[sel], yerr=0.3 * ul[sel], xerr=xerr[:, sel], uplims=True,
                fmt="none", color=color, label=None if ok.any() else label,
            )  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel(SED_LABELS[sed_type])
    return ax


def plot_spectrum(
    model: SkyModel | SpectralModel,
    covariance: Any = None,
    flux_points: xr.Dataset | None = None,
    *,
    energy_range: tuple[float, float] | None = None,
    ax: Any = None,
    sed_type: str = "e2dnde",
    n_points: int = 100,
    color: str = "C0",
    label: str | None = None,
    prefix: str | None = None,
    title: str | None = None,
):
    """A fitted spectral model with its error band and flux points, log-log.

    Parameters
    ----------
    model : SkyModel or SpectralModel
        The fitted model.
    covariance : FitResult, xarray.Dataset or xarray.DataArray, optional
        Fit covariance (see :func:`spectrum_butterfly`); None: no band.
    flux_points : xarray.Dataset, optional
        Flux points to overlay (:func:`plot_flux_points`).
    energy_range : (float, float), optional
        TeV; default the flux points' range, else 0.1-100 TeV.
    ax : matplotlib Axes, optional
        Default a new figure.
    sed_type : {"e2dnde", "dnde"}
        Quantity plotted (``e2dnde`` in TeV cm-2 s-1, ``dnde`` in cm-2 s-1 TeV-1).
    n_points : int
        Energies of the curve (log-spaced).
    color : str
        Colour of the curve and band.
    label : str, optional
        Legend label (default the model name).
    prefix : str, optional
        Parameter-name prefix in the covariance (see :func:`spectrum_butterfly`).
    title : str, optional
        Axes title (default: the model name and the energy range drawn).

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    from gammaxr.plot.labels import energy_range_text

    _check_sed(sed_type)
    if energy_range is None:
        if flux_points is not None:
            lo, hi = axis_lo_hi(flux_points, "energy")
            energy_range = (float(np.nanmin(lo)), float(np.nanmax(hi)))
        else:
            energy_range = (0.1, 100.0)
    energy = np.geomspace(energy_range[0], energy_range[1], n_points)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    label = label if label is not None else getattr(model, "name", "model")
    if covariance is not None:
        band = spectrum_butterfly(model, covariance, energy, prefix=prefix)
        value, err = band[sed_type].values, band[f"{sed_type}_err"].values
        ax.fill_between(energy, value - err, value + err, color=color, alpha=0.3, lw=0)
    else:
        spectral = model.spectral if isinstance(model, SkyModel) else model
        value = np.asarray(spectral(energy), float) * (energy**2 if sed_type == "e2dnde" else 1)
    ax.plot(energy, value, color=color, label=label)
    if flux_points is not None:
        plot_flux_points(flux_points, ax, sed_type=sed_type)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel(SED_LABELS[sed_type])
    ax.legend(loc="best", fontsize="small")
    ax.set_title(title if title is not None else f"{label}, {energy_range_text(energy_range)}")
    return ax
