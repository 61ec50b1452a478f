"""IRF and event plots: effective area, energy dispersion, PSF containment, background rate,
event sky map and energy distribution.

Each function takes the ``xarray`` object the readers return (:mod:`gammaxr.io.irf_fits`,
:attr:`gammaxr.data.Observation.events`), evaluates it with :mod:`gammaxr.irf` (so a plot shows
what the reduction uses) and draws on ``ax`` (default a new figure). Plotting is a compute
boundary: the values drawn are computed. Energies are in TeV, angles in deg.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_lo_hi
from gammaxr.geom.sky import to_skycoord
from gammaxr.irf import (
    evaluate_aeff,
    evaluate_bkg_2d,
    evaluate_bkg_3d,
    evaluate_edisp,
    psf_3gauss_to_table,
    psf_containment_radius,
)

__all__ = [
    "plot_aeff",
    "plot_background_rate",
    "plot_edisp",
    "plot_event_energies",
    "plot_event_map",
    "plot_psf_containment",
]

#: Offsets (deg) drawn by default: those of the table's range among these.
DEFAULT_OFFSETS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)


def _new_axes(ax: Any, **subplot: Any):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    fig = plt.figure(figsize=(6.4, 4.8), layout="constrained")
    return fig.add_subplot(**subplot)


def _edges(irf: xr.DataArray | xr.Dataset, dim: str) -> np.ndarray:
    lo, hi = axis_lo_hi(irf, dim)
    return np.append(np.asarray(lo, float), float(np.asarray(hi)[-1]))


def _offsets(irf: xr.DataArray | xr.Dataset, offsets: Sequence[float] | None) -> np.ndarray:
    """Requested offsets, or the default ones inside the table's offset range."""
    if offsets is not None:
        return np.atleast_1d(np.asarray(offsets, float))
    lo, hi = axis_lo_hi(irf, "offset")
    top = float(np.max(hi))
    chosen = [o for o in DEFAULT_OFFSETS if o <= top + 1e-9]
    return np.asarray(chosen or [0.5 * (float(np.min(lo)) + top)], float)


def _energies(irf: xr.DataArray | xr.Dataset, dim: str, n: int = 100) -> np.ndarray:
    edges = _edges(irf, dim)
    return np.geomspace(edges[0], edges[-1], n)


def plot_aeff(aeff: xr.DataArray, ax: Any = None, *, offsets: Sequence[float] | None = None):
    """Effective area against true energy at several offsets (log-log).

    Parameters
    ----------
    aeff : xarray.DataArray
        ``aeff_2d`` table, dims ``(energy_true, offset)`` [m2].
    ax : matplotlib Axes, optional
    offsets : sequence of float, optional
        Offsets in deg (default 0, 0.5, ... up to the table's range).

    Returns
    -------
    matplotlib Axes
    """
    ax = _new_axes(ax)
    energy = _energies(aeff, "energy_true")
    for offset in _offsets(aeff, offsets):
        ax.plot(energy, evaluate_aeff(aeff, energy, offset), label=f"offset {offset:g} deg")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("True energy [TeV]")
    ax.set_ylabel(f"Effective area [{aeff.attrs.get('units', 'm2')}]")
    ax.set_title("effective area")
    ax.legend(fontsize="small")
    return ax


def plot_edisp(edisp: xr.DataArray, ax: Any = None, *, offset: float = 0.5):
    """Energy migration density ``P(migra | E_true)`` at one offset, as an image.

    Parameters
    ----------
    edisp : xarray.DataArray
        ``edisp_2d`` table, dims ``(energy_true, migra, offset)``.
    ax : matplotlib Axes, optional
    offset : float
        Offset in deg.

    Returns
    -------
    matplotlib Axes
        True energy (log) along x, ``migra = E_reco / E_true`` along y, with the colour bar.
    """
    ax = _new_axes(ax)
    e_edges = np.geomspace(*_edges(edisp, "energy_true")[[0, -1]], 101)
    m_edges = _edges(edisp, "migra")
    m_edges = np.linspace(m_edges[0], m_edges[-1], 101)
    energy = np.sqrt(e_edges[:-1] * e_edges[1:])
    migra = 0.5 * (m_edges[:-1] + m_edges[1:])
    density = evaluate_edisp(edisp, energy[None, :], migra[:, None], offset)
    mesh = ax.pcolormesh(e_edges, m_edges, np.asarray(density, float), shading="flat")
    ax.figure.colorbar(mesh, ax=ax, label="probability density per unit migra")
    ax.axhline(1.0, color="w", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("True energy [TeV]")
    ax.set_ylabel("migra = E_reco / E_true")
    ax.set_title(f"energy dispersion, offset {offset:g} deg")
    return ax


def plot_psf_containment(
    psf: xr.DataArray | xr.Dataset,
    ax: Any = None,
    *,
    fractions: Sequence[float] = (0.68, 0.95),
    offsets: Sequence[float] | None = None,
):
    """PSF containment radius against true energy, per containment fraction and offset.

    Parameters
    ----------
    psf : xarray.DataArray or xarray.Dataset
        ``psf_table`` density, dims ``(energy_true, offset, rad)``, or ``psf_3gauss``
        parameters (tabulated first with :func:`gammaxr.irf.psf_3gauss_to_table`).
    ax : matplotlib Axes, optional
    fractions : sequence of float
        Containment fractions (solid line for the first, dashed, dotted for the next).
    offsets : sequence of float, optional
        Offsets in deg (default 0, 1, 2 inside the table's range).

    Returns
    -------
    matplotlib Axes
    """
    if offsets is None:
        offsets = _offsets(psf, None)[::2]
    if isinstance(psf, xr.Dataset):
        psf = psf_3gauss_to_table(psf)
    ax = _new_axes(ax)
    energy = _energies(psf, "energy_true", 50)
    styles = ("-", "--", ":", "-.")
    for j, offset in enumerate(_offsets(psf, offsets)):
        for i, fraction in enumerate(fractions):
            radius = psf_containment_radius(psf, energy, offset, fraction)
            ax.plot(
                energy, radius, styles[i % len(styles)], color=f"C{j}",
                label=f"{100 * fraction:g} %, offset {offset:g} deg",
            )  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("True energy [TeV]")
    ax.set_ylabel("Containment radius [deg]")
    ax.set_title("PSF containment radius")
    ax.legend(fontsize="x-small", ncols=2)
    return ax


def plot_background_rate(
    bkg: xr.DataArray, ax: Any = None, *, offsets: Sequence[float] | None = None
):
    """Background rate against reconstructed energy at several offsets (log-log).

    Parameters
    ----------
    bkg : xarray.DataArray
        ``bkg_2d`` ``(energy, offset)`` or ``bkg_3d`` ``(energy, fov_lon, fov_lat)`` table;
        a 3D table is drawn along ``fov_lon`` at ``fov_lat = 0``.
    ax : matplotlib Axes, optional
    offsets : sequence of float, optional
        Offsets in deg (default 0, 0.5, ... inside the table).

    Returns
    -------
    matplotlib Axes
    """
    ax = _new_axes(ax)
    energy = _energies(bkg, "energy")
    if "offset" in bkg.dims:
        offsets = _offsets(bkg, offsets)
        rates = [evaluate_bkg_2d(bkg, energy, o) for o in offsets]
    else:
        top = float(np.max(np.abs(_edges(bkg, "fov_lon"))))
        if offsets is None:
            offsets = np.asarray([o for o in DEFAULT_OFFSETS if o < top] or [0.0])
        rates = [evaluate_bkg_3d(bkg, energy, o, 0.0) for o in offsets]
    top = 0.0
    for offset, rate in zip(offsets, rates, strict=True):
        rate = np.asarray(rate, float)
        top = max(top, float(np.nanmax(rate, initial=0.0)))
        ax.plot(energy, np.where(rate > 0, rate, np.nan), label=f"offset {offset:g} deg")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if top > 0:  # the extrapolated edges fall by many decades: show 8 below the peak
        ax.set_ylim(top * 1e-8, top * 3)
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("Background rate [s-1 MeV-1 sr-1]")
    ax.set_title("background rate" + (" (fov_lat = 0)" if "offset" not in bkg.dims else ""))
    ax.legend(fontsize="small")
    return ax


def plot_event_map(
    events: xr.Dataset,
    ax: Any = None,
    *,
    center: Any = None,
    width: float = 6.0,
    binsz: float = 0.05,
):
    """Counts map of an event list (RA/Dec histogram), RA increasing to the left.

    Parameters
    ----------
    events : xarray.Dataset
        Events with ``ra``, ``dec`` [deg] (dim ``event``); computed here.
    ax : matplotlib Axes, optional
        Plain axes (plate carrée, RA axis inverted).
    center : SkyCoord or (float, float), optional
        Map centre: a SkyCoord or (RA, Dec) in deg (icrs); default the median event
        position.
    width : float
        Map width in deg (on the sky, at the centre).
    binsz : float
        Bin size in deg.

    Returns
    -------
    matplotlib Axes
    """
    ax = _new_axes(ax)
    ra = np.asarray(events["ra"].values, float)
    dec = np.asarray(events["dec"].values, float)
    if center is None:
        center = (float(np.median(ra)), float(np.median(dec))) if ra.size else (0.0, 0.0)
    icrs = to_skycoord(center, "icrs").icrs
    center = (float(icrs.ra.deg), float(icrs.dec.deg))
    half_lat = width / 2
    half_lon = half_lat / max(np.cos(np.radians(center[1])), 1e-3)
    n = max(1, round(width / binsz))
    ra_edges = np.linspace(center[0] - half_lon, center[0] + half_lon, n + 1)
    dec_edges = np.linspace(center[1] - half_lat, center[1] + half_lat, n + 1)
    ra = (ra - center[0] + 180.0) % 360.0 - 180.0 + center[0]  # continuous across 0/360
    counts, _, _ = np.histogram2d(dec, ra, bins=(dec_edges, ra_edges))
    mesh = ax.pcolormesh(ra_edges, dec_edges, counts, shading="flat", cmap="viridis")
    ax.figure.colorbar(mesh, ax=ax, label=f"counts per {binsz:g} deg bin")
    ax.set_xlim(ra_edges[-1], ra_edges[0])
    ax.set_aspect(1.0 / np.cos(np.radians(center[1])))
    ax.set_xlabel("Right Ascension [deg]")
    ax.set_ylabel("Declination [deg]")
    ax.set_title(f"events ({ra.size})")
    return ax


def plot_event_energies(events: xr.Dataset, ax: Any = None, *, bins: int = 40):
    """Histogram of event energies, log-spaced bins (log-log).

    Parameters
    ----------
    events : xarray.Dataset
        Events with ``energy`` [TeV] (dim ``event``); computed here.
    ax : matplotlib Axes, optional
    bins : int
        Number of log-spaced bins between the smallest and the largest energy.

    Returns
    -------
    matplotlib Axes
    """
    ax = _new_axes(ax)
    energy = np.asarray(events["energy"].values, float)
    energy = energy[np.isfinite(energy) & (energy > 0)]
    if energy.size:
        edges = np.geomspace(energy.min(), energy.max() * (1 + 1e-9), bins + 1)
        ax.hist(energy, bins=edges, histtype="step", color="k")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("Events per bin")
    ax.set_title("event energies")
    return ax
