"""What ``repr(ds.gamma)`` shows: a dataset summarised as an astronomer reads one.

:func:`dataset_summary` computes the numbers, :func:`dataset_text` and :func:`dataset_html`
lay them out (text for terminals, an HTML table for notebooks).

A summary is a documented compute boundary (DESIGN.md, "Rules for laziness"): a repr needs
numbers. It is kept cheap: every total is a scalar reduction, and all of them are computed in
one ``dask.compute`` call (:func:`gammaxr.progress.compute`: one pass over the chunks);
nothing else is loaded. Totals are taken inside ``mask_safe`` (where the dataset has it):

- ``counts``, ``background`` (for on/off data ``sum(alpha * counts_off)``), ``excess =
  counts - background``;
- ``significance``: of the summed counts against the summed background, Cash statistics for a
  known background (:func:`gammaxr.stats.cash_sqrt_ts`), WStat for on/off data with the
  effective ``alpha = sum(alpha * counts_off) / sum(counts_off)``
  (:func:`gammaxr.stats.wstat_sqrt_ts`);
- ``exposure`` range: smallest and largest non-zero value [m2 s];
- fit bins: bins inside ``mask_safe`` and ``mask_fit``, of all bins.

A dataset with an ``obs_id`` dim (runs on one grid) is summed over its runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from gammaxr.progress import compute
from gammaxr.stats import alpha_on_off, cash_sqrt_ts, wstat_sqrt_ts
from gammaxr.summary.layout import html_block, text_block

__all__ = ["dataset_html", "dataset_summary", "dataset_text"]

_ON_OFF = ("counts_off", "acceptance", "acceptance_off")


def _kind(ds: xr.Dataset) -> str:
    on_off = all(n in ds for n in _ON_OFF)
    spatial = "lat" in ds.dims and "lon" in ds.dims
    kind = ("on/off " if on_off else "") + ("map dataset" if spatial else "spectrum dataset")
    if "obs_id" in ds.dims:
        kind += f", {ds.sizes['obs_id']} runs along obs_id"
    return kind


def _mask(ds: xr.Dataset, name: str) -> xr.DataArray | None:
    mask = None
    for key in ("mask_safe", "mask_fit") if name == "fit" else ("mask_safe",):
        if key in ds:
            mask = ds[key] if mask is None else mask & ds[key]
    return mask


def _masked_sum(var: xr.DataArray, mask: xr.DataArray | None) -> xr.DataArray:
    if mask is not None and set(mask.dims) <= set(var.dims):
        var = var.where(mask, 0)
    return var.sum()


def _lazy_totals(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """Scalar reductions, still lazy for dask-backed data (computed together later)."""
    safe = _mask(ds, "safe")
    out: dict[str, xr.DataArray] = {}
    if "counts" in ds:
        out["counts"] = _masked_sum(ds["counts"], safe)
    if all(n in ds for n in _ON_OFF):
        alpha = alpha_on_off(ds["acceptance"], ds["acceptance_off"])
        out["counts_off"] = _masked_sum(ds["counts_off"], safe)
        out["background"] = _masked_sum(alpha * ds["counts_off"], safe)
    elif "background" in ds:
        out["background"] = _masked_sum(ds["background"], safe)
    if "exposure" in ds:
        exposure = ds["exposure"]
        positive = exposure.where(exposure > 0)
        out["exposure_min"], out["exposure_max"] = positive.min(), positive.max()
    fit = _mask(ds, "fit")
    if fit is not None:
        out["fit_bins"] = fit.sum()
    if safe is not None and "energy" in safe.dims:
        out["safe_energy_bins"] = safe.any([d for d in safe.dims if d != "energy"])
    return out


def _energy_range(
    ds: xr.Dataset, dim: str, keep: np.ndarray | None = None
) -> tuple[float, float, int] | None:
    """(lo, hi [TeV], n bins) of the axis, or of its bins where ``keep``; None if none."""
    from gammaxr.geom.axes import axis_edges, bounds_name

    if dim not in ds.dims or not (bounds_name(dim) in ds.coords or f"{dim}_lo" in ds.coords):
        return None
    edges = axis_edges(ds, dim)
    idx = np.arange(edges.size - 1) if keep is None else np.flatnonzero(keep)
    if idx.size == 0:
        return None
    return float(edges[idx[0]]), float(edges[idx[-1] + 1]), int(idx.size)


def _livetime(ds: xr.Dataset) -> float | None:
    if "livetime_total" in ds.attrs:
        return float(ds.attrs["livetime_total"])
    if "livetime_total" in ds.coords:  # a lazy total (stack of a lazily opened store)
        return float(ds.coords["livetime_total"])
    if "livetime" in ds.coords and "obs_id" in ds["livetime"].dims:
        return float(np.nansum(ds["livetime"].values))  # a coordinate: in memory
    if "livetime" in ds.attrs:
        return float(ds.attrs["livetime"])
    return None


def _runs(ds: xr.Dataset) -> list[int]:
    if "obs_id" in ds.dims:
        return [int(i) for i in ds["obs_id"].values]
    ids = ds.attrs.get("stacked_obs_ids", ds.attrs.get("obs_ids", []))
    return [int(i) for i in np.atleast_1d(ids)]


def dataset_summary(ds: xr.Dataset) -> dict[str, Any]:
    """The numbers an astronomer reads first, computed in one pass (module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        A gammaxr map or spectrum dataset (stacked, per run along ``obs_id``, or on/off);
        numpy- or dask-backed. Missing variables leave their entries out.

    Returns
    -------
    dict
        ``kind``, ``name``, ``runs`` (obs_ids), ``livetime`` [s], ``energy``,
        ``energy_safe`` (bins safe somewhere) and ``energy_true`` (lo, hi [TeV], number of
        bins), ``grid`` (text), ``counts``,
        ``background``, ``excess``, ``significance`` [sigma], ``alpha`` (on/off, effective),
        ``exposure_min`` / ``exposure_max`` [m2 s], ``fit_bins`` and ``bins``,
        ``variables``. Numbers are Python floats.
    """
    totals = _lazy_totals(ds)
    values = dict(zip(totals, compute(*totals.values(), progress=False), strict=True))
    out: dict[str, Any] = {"kind": _kind(ds), "name": ds.attrs.get("name")}
    safe_bins = values.pop("safe_energy_bins", None)
    out.update({k: float(v) for k, v in values.items()})
    out["runs"] = _runs(ds)
    out["livetime"] = _livetime(ds)
    out["energy"] = _energy_range(ds, "energy")
    out["energy_true"] = _energy_range(ds, "energy_true")
    if safe_bins is not None:
        out["energy_safe"] = _energy_range(ds, "energy", np.asarray(safe_bins, bool))
    if "lat" in ds.dims and "lon" in ds.dims:
        from gammaxr.geom.grid import SkyGrid

        try:
            grid = SkyGrid.from_xarray(ds)
            lat_step = float(np.diff(grid.lat[:2])[0]) if grid.shape[0] > 1 else float("nan")
            out["grid"] = (
                f"{grid.shape[1]} x {grid.shape[0]} pixels of {lat_step:.3g} deg ({grid.frame}), "
                f"centre ({float(np.mean(grid.lon)):.3f}, {float(np.mean(grid.lat)):.3f})"
            )
        except (KeyError, ValueError) as exc:  # a repr never fails: say what is wrong
            out["grid"] = f"not a gammaxr grid ({exc})"
    if "counts" in ds:
        out["bins"] = int(ds["counts"].size)
    if "counts" in out and "background" in out:
        n_on, bkg = out["counts"], out["background"]
        out["excess"] = n_on - bkg
        if "counts_off" in out:
            n_off = out["counts_off"]
            alpha = bkg / n_off if n_off > 0 else float("nan")
            out["alpha"] = alpha
            sig = wstat_sqrt_ts(n_on, n_off, alpha) if n_off > 0 else float("nan")
        else:
            sig = cash_sqrt_ts(n_on, bkg) if bkg > 0 else float("nan")
        out["significance"] = float(sig)
    out["variables"] = sorted(str(v) for v in ds.data_vars)
    return out


def _num(value: float, digits: int = 1) -> str:
    if value is None or not np.isfinite(value):
        return "nan"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-2):
        return f"{value:.3e}"
    return f"{value:.{digits}f}"


def _rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, text) rows shared by the text and the HTML layouts."""
    rows: list[tuple[str, str]] = []
    if "grid" in s:
        rows.append(("grid", s["grid"]))
    for key, label in (
        ("energy", "energy"),
        ("energy_safe", "safe energy"),
        ("energy_true", "energy true"),
    ):
        if s.get(key):
            lo, hi, n = s[key]
            rows.append((label, f"{lo:.3g} - {hi:.3g} TeV, {n} bins"))
    runs = s.get("runs") or []
    if runs or s.get("livetime") is not None:
        shown = ", ".join(str(r) for r in runs[:8]) + (", ..." if len(runs) > 8 else "")
        text = f"{len(runs)} [{shown}]" if runs else "-"
        if s.get("livetime") is not None:
            text += f", livetime {s['livetime'] / 3600:.2f} h"
        rows.append(("runs", text))
    safe = " (safe)" if "counts" in s else ""
    for key in ("counts", "counts_off", "background", "excess"):
        if key in s:
            digits = 0 if key in ("counts", "counts_off") else 1
            rows.append((key.replace("_", " ") + safe, _num(s[key], digits)))
    if "alpha" in s:
        rows.append(("alpha (on/off)", _num(s["alpha"], 4)))
    if "significance" in s:
        rows.append(("significance", f"{_num(s['significance'], 1)} sigma"))
    if "exposure_min" in s:
        rows.append(
            ("exposure", f"{_num(s['exposure_min'])} - {_num(s['exposure_max'])} m2 s (non-zero)")
        )
    if "fit_bins" in s:
        rows.append(("fit bins", f"{int(s['fit_bins'])} of {s.get('bins', '?')} (safe, fit)"))
    rows.append(("variables", ", ".join(s["variables"])))
    return rows


def _title(s: dict[str, Any]) -> str:
    name = f" {s['name']!r}" if s.get("name") else ""
    return f"gammaxr {s['kind']}{name}"


def dataset_text(ds: xr.Dataset) -> str:
    """The summary as aligned text lines (what ``repr(ds.gamma)`` returns)."""
    s = dataset_summary(ds)
    return text_block(_title(s), _rows(s))


def dataset_html(ds: xr.Dataset) -> str:
    """The summary as an HTML table (what notebooks show for ``ds.gamma``)."""
    s = dataset_summary(ds)
    return html_block(_title(s), _rows(s))
