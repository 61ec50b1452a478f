"""Quick looks: ``obs.peek()`` and ``ds.gamma.peek()`` in one figure each.

- :func:`peek_observation`: effective area, energy dispersion, PSF containment, background
  rate (the IRFs the run declares), the event counts map and the event energies;
- :func:`peek_dataset`: counts, excess (counts - background, or - ``alpha * counts_off``) and
  exposure maps summed over energy inside the safe mask, and the counts and background
  spectra summed over the safe pixels.

Both read what they draw (a plotting compute boundary).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_lo_hi
from gammaxr.plot import irf as irf_plots
from gammaxr.plot.labels import energy_range, energy_range_text
from gammaxr.plot.maps import _default_npred, display_wcs, plot_map

__all__ = ["peek_dataset", "peek_observation"]


def _missing(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def peek_observation(obs: Any, fig: Any = None):
    """Six panels of one observation: its IRFs and its events.

    Parameters
    ----------
    obs : gammaxr.data.Observation
        A lazy or loaded observation; the IRFs and events are read here (each once).
    fig : matplotlib Figure, optional
        Figure to draw in (default a new 15 x 9 inch one).

    Returns
    -------
    matplotlib Figure
        Panels: effective area, energy dispersion (at 0.5 deg or the table's middle offset),
        PSF containment radius, background rate, events map around the pointing, event
        energies. An IRF the run lacks shows as an empty panel saying so.
    """
    import matplotlib.pyplot as plt

    obs = obs.read()  # every HDU once, in one pass over the files
    fig = fig if fig is not None else plt.figure(figsize=(15, 9), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    hdus = obs.hdus
    panels = (
        ("aeff", lambda ax: irf_plots.plot_aeff(obs.aeff, ax)),
        ("edisp", lambda ax: irf_plots.plot_edisp(obs.edisp, ax, offset=_middle_offset(obs.edisp))),
        ("psf", lambda ax: irf_plots.plot_psf_containment(obs.psf, ax)),
        ("bkg", lambda ax: irf_plots.plot_background_rate(obs.bkg, ax)),
    )
    for ax, (hdu, draw) in zip(axes, panels, strict=False):
        if hdu in hdus:
            draw(ax)
        else:
            _missing(ax, hdu)
    if "events" in hdus:
        irf_plots.plot_event_map(obs.events, axes[4], center=obs.pointing)
        irf_plots.plot_event_energies(obs.events, axes[5])
    else:
        _missing(axes[4], "events")
        _missing(axes[5], "events")
    fig.suptitle(f"observation {obs.obs_id}")
    return fig


def _middle_offset(edisp: xr.DataArray) -> float:
    lo, hi = axis_lo_hi(edisp, "offset")
    top = float(np.max(hi))
    return 0.5 if top >= 0.5 else 0.5 * (float(np.min(lo)) + top)


def _safe(ds: xr.Dataset, var: xr.DataArray) -> xr.DataArray:
    if "mask_safe" in ds and set(ds["mask_safe"].dims) <= set(var.dims):
        return var.where(ds["mask_safe"], 0)
    return var


def peek_dataset(ds: xr.Dataset, fig: Any = None):
    """Counts, excess and exposure maps and the counts / background spectrum of a dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        A stacked map dataset (``counts``, ``background`` or on/off variables,
        ``exposure``, ``mask_safe``; a gammaxr grid with a ``frame`` attr). Runs along
        ``obs_id`` are summed. numpy- or dask-backed.
    fig : matplotlib Figure, optional
        Figure to draw in (default a new 14 x 9 inch one).

    Returns
    -------
    matplotlib Figure
        Top: counts, excess and exposure (summed over ``energy_true``) maps, east left;
        bottom: counts and background summed over the safe pixels per energy bin.
    """
    import matplotlib.pyplot as plt

    from gammaxr.geom.grid import SkyGrid

    if "obs_id" in ds.dims:
        from gammaxr.reduce.stack import stack_runs

        ds = stack_runs(ds)
    frame = ds.attrs.get("frame", "icrs")
    wcs = display_wcs(SkyGrid.from_xarray(ds))
    fig = fig if fig is not None else plt.figure(figsize=(14, 9), layout="constrained")
    grid = fig.add_gridspec(2, 3)
    erange = energy_range_text(energy_range(ds))
    counts = _safe(ds, ds["counts"]).sum("energy")
    plot_map(
        counts.assign_attrs(frame=frame, units=""), fig.add_subplot(grid[0, 0], projection=wcs),
        label="counts", title=f"counts, {erange}",
    )  # fmt: skip
    background = _safe(ds, _default_npred(ds))
    excess = counts - background.sum("energy")
    plot_map(
        excess.assign_attrs(frame=frame, units=""), fig.add_subplot(grid[0, 1], projection=wcs),
        cmap="RdBu_r", symmetric=True, label="excess (counts - background)",
        title=f"excess, {erange}",
    )  # fmt: skip
    ax = fig.add_subplot(grid[0, 2], projection=wcs)
    if "exposure" in ds:
        exposure = ds["exposure"].sum("energy_true").assign_attrs(frame=frame)
        etrue = energy_range_text(energy_range(ds, "energy_true", safe=False))
        plot_map(
            exposure, ax, label=f"exposure summed over energy_true [{ds['exposure'].attrs.get('units', 'm2 s')}]",
            title=f"exposure, {etrue} (true)",
        )  # fmt: skip
    else:
        _missing(ax, "exposure")
    _plot_spectra(ds, background, fig.add_subplot(grid[1, :]))
    fig.suptitle(f"dataset {ds.attrs.get('name', '')}".strip())
    return fig


def _plot_spectra(ds: xr.Dataset, background: xr.DataArray, ax: Any) -> None:
    """Counts (points with Poisson errors) and background (steps) per energy bin."""
    from gammaxr.progress import compute

    spatial = [d for d in ds["counts"].dims if d != "energy"]
    counts, bkg = compute(
        _safe(ds, ds["counts"]).sum(spatial), background.sum(spatial), progress=False
    )
    lo, hi = (np.asarray(a, float) for a in axis_lo_hi(ds, "energy"))
    centre = np.sqrt(lo * hi)
    c, b = np.asarray(counts.values, float), np.asarray(bkg.values, float)
    ax.errorbar(
        centre, c, yerr=np.sqrt(c), xerr=[centre - lo, hi - centre], fmt="o", color="k",
        ms=4, label="counts",
    )  # fmt: skip
    ax.stairs(b, np.append(lo, hi[-1]), color="C1", lw=1.5, label="background")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("Counts per bin (safe pixels)")
    ax.set_title("counts and background spectrum")
    ax.legend(fontsize="small")
