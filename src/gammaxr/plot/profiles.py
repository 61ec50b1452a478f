"""Likelihood profiles and contours (outputs of :mod:`gammaxr.fit.profile`).

A profile is drawn as ``stat - total_stat`` (the rise of -2 log L above the best fit) against
the scanned values, with the 1-sigma level ``delta = 1`` marked; a contour as the closed
curve of its points, with the best fit marked when a fit result is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["plot_stat_contour", "plot_stat_profile"]


def _label(name: str, units: str) -> str:
    return f"{name} [{units}]" if units else name


def _axes(ax: Any):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.4, 4.8))
    return ax


def plot_stat_profile(profile: xr.Dataset, ax: Any = None, **kwargs: Any):
    """Draw a likelihood profile: ``stat - total_stat`` against the scanned values.

    Parameters
    ----------
    profile : xarray.Dataset
        Output of :func:`gammaxr.fit.stat_profile` (dim ``value``, ``stat``, attrs
        ``parameter`` and ``total_stat``).
    ax : matplotlib Axes, optional
        Default a new figure.
    **kwargs
        Passed to ``ax.plot``.

    Returns
    -------
    matplotlib Axes
    """
    if "stat" not in profile:
        raise ValueError("the profile has no 'stat' variable (see gammaxr.fit.stat_profile)")
    ax = _axes(ax)
    values = np.asarray(profile["value"].values, dtype=float)
    delta = np.asarray(profile["stat"].values, dtype=float) - profile.attrs.get("total_stat", 0.0)
    label = "re-optimised" if profile.attrs.get("reoptimize") else "others fixed"
    ax.plot(values, delta, **{"marker": "o", "label": label, **kwargs})
    ax.axhline(1.0, color="0.5", ls=":", lw=1)
    if "best_value" in profile.attrs:
        ax.axvline(profile.attrs["best_value"], color="0.5", ls="--", lw=1)
    ax.set_xlabel(
        _label(profile.attrs.get("parameter", "value"), profile["value"].attrs.get("units", ""))
    )
    ax.set_ylabel("stat - total_stat (-2 Δlog L)")
    return ax


def plot_stat_contour(contour: xr.Dataset, ax: Any = None, result: Any = None, **kwargs: Any):
    """Draw a Minos contour as a closed curve.

    Parameters
    ----------
    contour : xarray.Dataset
        Output of :func:`gammaxr.fit.stat_contour` (dim ``point``, attrs ``x`` and ``y``
        naming its two variables).
    ax : matplotlib Axes, optional
        Default a new figure.
    result : FitResult, optional
        The fit; its best-fit point is marked.
    **kwargs
        Passed to ``ax.plot``.

    Returns
    -------
    matplotlib Axes
    """
    x, y = contour.attrs.get("x"), contour.attrs.get("y")
    if x not in contour or y not in contour:
        raise ValueError("the contour needs attrs 'x' and 'y' naming two of its variables")
    ax = _axes(ax)
    xs = np.append(contour[x].values, contour[x].values[:1])
    ys = np.append(contour[y].values, contour[y].values[:1])
    n_sigma = contour.attrs.get("n_sigma")
    label = f"{n_sigma:g} sigma" if n_sigma is not None else None
    ax.plot(xs, ys, **{"label": label, **kwargs})
    if result is not None:
        ax.plot(result.value(x), result.value(y), "k+", ms=10)
    ax.set_xlabel(_label(x, contour[x].attrs.get("units", "")))
    ax.set_ylabel(_label(y, contour[y].attrs.get("units", "")))
    return ax
