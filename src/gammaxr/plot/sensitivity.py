"""Differential sensitivity curves (output of :func:`gammaxr.estimators.sensitivity`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_lo_hi

__all__ = ["plot_sensitivity"]

_MARKERS = {"significance": "o", "gamma": "s", "bkg": "^"}


def plot_sensitivity(table: xr.Dataset, ax: Any = None, *, label: str | None = None, **kwargs):
    """Draw ``e2dnde`` per energy bin (horizontal bars: the bin), log-log.

    The marker says which condition sets each bin (circle: significance, square: minimum
    number of gammas, triangle: background systematics).

    Parameters
    ----------
    table : xarray.Dataset
        Output of :func:`gammaxr.estimators.sensitivity` (dim ``energy`` with bounds,
        ``e2dnde`` [erg cm-2 s-1], ``criterion``).
    ax : matplotlib Axes, optional
        Default a new figure.
    label : str, optional
        Legend label of the curve.
    **kwargs
        Passed to ``ax.errorbar`` (e.g. ``color``).

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt

    for var in ("e2dnde", "criterion"):
        if var not in table:
            raise ValueError(f"the sensitivity table has no {var!r} (see estimators.sensitivity)")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    energy = np.asarray(table["energy"].values, float)
    lo, hi = axis_lo_hi(table, "energy")
    value = np.asarray(table["e2dnde"].values, float)
    xerr = np.array([energy - np.asarray(lo), np.asarray(hi) - energy])
    line = ax.errorbar(energy, value, xerr=xerr, fmt="-", label=label, **kwargs)
    color = line[0].get_color()
    criterion = np.asarray(table["criterion"].values).astype(str)
    for name, marker in _MARKERS.items():
        sel = criterion == name
        if sel.any():
            ax.plot(energy[sel], value[sel], marker, color=color, ms=5, ls="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel(f"E² dN/dE [{table['e2dnde'].attrs.get('units', 'erg cm-2 s-1')}]")
    n_sigma = table.attrs.get("n_sigma")
    if n_sigma is not None:
        ax.set_title(f"differential sensitivity ({n_sigma:g} sigma per bin)")
    if label is not None:
        ax.legend(loc="best", fontsize="small")
    return ax
