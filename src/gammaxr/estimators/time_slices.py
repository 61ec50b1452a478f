"""Runs cut into time slices for light curves in bins shorter than a run, and the
variability of a light curve.

A light curve bin that covers part of a run uses the run's own reduction (exposure,
background, PSF and energy dispersion were computed once per run): the source and
background predictions of the run are scaled by the fraction of the run's good time that
falls in the bin, ``f = |bin & GTIs| / |GTIs|`` (the dead-time fraction is constant within
a run, so live time scales the same way), and the counts are the run's events whose time
lies in the bin and in the GTIs, binned on the run's grid. No IRF is read again.

:func:`variability` tests a light curve for a constant flux (chi-square and its p-value)
and gives the fractional variance ``F_var`` (Vaughan et al. 2003, MNRAS 345, 1271) with its
error, per energy bin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from gammaxr.data.observation import gti_mask
from gammaxr.geom.grid import SkyGrid
from gammaxr.reduce.maps import counts_cube

from .norm_fit import NormTerm

__all__ = ["gti_overlap", "slice_terms", "variability"]


def gti_overlap(start: np.ndarray, stop: np.ndarray, t_min: float, t_max: float) -> float:
    """Time (s) of ``[t_min, t_max)`` inside the intervals ``[start[i], stop[i])``.

    The intervals are assumed disjoint (GTIs of one run).
    """
    return float(np.sum(np.clip(np.minimum(stop, t_max) - np.maximum(start, t_min), 0.0, None)))


def _into_gtis(time: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Times moved onto their nearest GTI: events accepted within the GTI tolerance (just
    outside a GTI) fall in the bin at that GTI's edge, as the reduction counts them."""
    order = np.argsort(start)
    start, stop = start[order], stop[order]
    i = np.clip(np.searchsorted(start, time, side="right") - 1, 0, start.size - 1)
    after = np.minimum(i + 1, start.size - 1)
    closer_next = (time > stop[i]) & (start[after] - time < time - stop[i])
    i = np.where(closer_next, after, i)
    return np.clip(time, start[i], np.nextafter(stop[i], start[i]))


def _observation_map(observations: Any) -> dict[str, Any]:
    if isinstance(observations, Mapping):
        return {str(k): v for k, v in observations.items()}
    out = {}
    for obs in observations:
        if not hasattr(obs, "obs_id") or not hasattr(obs, "events") or not hasattr(obs, "gti"):
            raise TypeError(
                "observations must have obs_id, events and gti (gammaxr Observation or "
                f"SimulatedObservation), got {type(obs).__name__}"
            )
        out[str(obs.obs_id)] = obs
    return out


def _event_columns(obs: Any, name: str) -> tuple[dict[str, np.ndarray], xr.Dataset]:
    """The event columns a slice needs, loaded once (compute boundary), and the GTIs."""
    events, gti = obs.events, obs.gti
    for column in ("time", "energy", "ra", "dec"):
        if column not in events:
            raise ValueError(f"run {name}: the events have no {column!r} column")
    for column in ("start", "stop"):
        if column not in gti:
            raise ValueError(f"run {name}: the GTI table has no {column!r} column")
    columns = {c: np.asarray(events[c].values, dtype=float) for c in ("energy", "ra", "dec")}
    columns["time"] = np.asarray(events["time"].values, dtype=float)
    return columns, gti


def slice_terms(
    terms: Sequence[NormTerm],
    runs: xr.Dataset,
    observations: Sequence | Mapping,
    intervals: np.ndarray,
    gti_tolerance: float = 0.0,
) -> list[tuple[list[NormTerm], list[str]]]:
    """Norm-fit terms of the parts of runs inside each time interval.

    Parameters
    ----------
    terms : sequence of NormTerm
        One per run, as :func:`~gammaxr.estimators.norm_fit.norm_terms` makes them from
        ``runs`` (named ``str(obs_id)``).
    runs : xarray.Dataset
        The per-run map dataset the terms come from (its grid bins the events).
    observations : sequence or mapping
        The runs' events and GTIs: objects with ``obs_id``, ``events`` (``time`` in MET s,
        ``energy`` TeV, ``ra``/``dec`` deg) and ``gti`` (``start``/``stop`` MET s), such as
        :class:`gammaxr.data.Observation` or the simulator's outputs, or a mapping
        ``{obs_id: observation}``.
    intervals : numpy.ndarray, shape (n, 2)
        Time intervals, MET s.
    gti_tolerance : float
        Seconds by which GTIs are widened when selecting events (as the reduction's
        ``gti_tolerance``; such events count in the bin at their GTI's edge); the live-time
        fractions use the GTIs as given.

    Returns
    -------
    list of (list of NormTerm, list of str)
        Per interval: the terms of the run parts inside it (counts from the events,
        predictions scaled by the good-time fraction) and the obs_ids contributing.

    Raises
    ------
    ValueError
        For spectrum (1D) datasets, or a run without events / GTIs.
    """
    if "lat" not in runs.dims or "lon" not in runs.dims:
        raise ValueError(
            "light curves in bins shorter than a run need map datasets (events are binned on "
            "the run's sky grid); this dataset has no lat/lon dims"
        )
    grid = SkyGrid.from_xarray(runs)
    shape = (runs.sizes["energy"], runs.sizes["lat"], runs.sizes["lon"])
    by_obs = _observation_map(observations)
    groups: list[tuple[list[NormTerm], list[str]]] = [([], []) for _ in range(len(intervals))]
    for term in terms:
        if term.bins is None or term.is_on_off:
            raise ValueError(
                f"run {term.name}: on/off datasets cannot be cut in time (their off counts "
                "come from the reduction)"
            )
        obs = by_obs.get(term.name)
        if obs is None:
            raise ValueError(f"run {term.name}: no events given for it (observations)")
        columns, gti = _event_columns(obs, term.name)
        start = np.asarray(gti["start"].values, dtype=float)
        stop = np.asarray(gti["stop"].values, dtype=float)
        total = float(np.sum(stop - start))
        if not total > 0:
            raise ValueError(f"run {term.name}: its GTIs have no duration")
        good = np.asarray(
            gti_mask(xr.DataArray(columns["time"], dims="event"), gti, gti_tolerance).values
        )
        time = _into_gtis(columns["time"], start, stop)
        for k, (t_min, t_max) in enumerate(intervals):
            fraction = gti_overlap(start, stop, t_min, t_max) / total
            if fraction <= 0:
                continue
            inside = good & (time >= t_min) & (time < t_max)
            cube = counts_cube(
                columns["energy"][inside],
                columns["ra"][inside],
                columns["dec"][inside],
                grid,
                term.energy_edges,
            )
            if cube.shape != shape:
                raise ValueError(f"run {term.name}: events binned to {cube.shape}, not {shape}")
            piece = replace(
                term,
                name=f"{term.name}@{k}",
                counts=cube.ravel()[term.bins].astype(float),
                signal=term.signal * fraction,
                other=term.other * fraction,
            )
            groups[k][0].append(piece)
            groups[k][1].append(term.name)
    return groups


def variability(lc: xr.Dataset, variable: str = "flux") -> xr.Dataset:
    """Tests of a light curve for variability, per energy bin.

    Parameters
    ----------
    lc : xarray.Dataset
        A light curve (dims ``time_bin``, ``energy``) with ``variable`` and
        ``{variable}_err`` (symmetric errors).
    variable : str
        The quantity tested (``flux``, ``norm``, ``eflux``...).

    Returns
    -------
    xarray.Dataset
        Along ``energy``: ``chi2`` (of the weighted-mean constant), ``dof``, ``pvalue``,
        ``mean`` (weighted mean, unit of ``variable``), ``fvar`` (fractional variance, NaN
        where the excess variance is negative) and ``fvar_err``. Bins with a non-finite
        value or error, or a zero error, are left out.
    """
    for name in (variable, f"{variable}_err"):
        if name not in lc:
            raise KeyError(f"the light curve has no {name!r}")
    value = lc[variable].transpose("time_bin", "energy").values.astype(float)
    error = lc[f"{variable}_err"].transpose("time_bin", "energy").values.astype(float)
    ok = np.isfinite(value) & np.isfinite(error) & (error > 0)
    n = ok.sum(axis=0)
    w = np.where(ok, 1.0 / np.where(ok, error, 1.0) ** 2, 0.0)
    x = np.where(ok, value, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_w = (w * x).sum(axis=0) / w.sum(axis=0)
        chi2 = (w * (x - mean_w) ** 2).sum(axis=0)
        dof = n - 1
        pvalue = np.where(dof > 0, stats.chi2.sf(chi2, np.maximum(dof, 1)), np.nan)
        mean = x.sum(axis=0) / n
        s2 = np.where(ok, (x - mean) ** 2, 0.0).sum(axis=0) / (n - 1)
        err2 = np.where(ok, error**2, 0.0).sum(axis=0) / n
        excess = s2 - err2
        fvar = np.where(excess > 0, np.sqrt(np.clip(excess, 0, None)) / np.abs(mean), np.nan)
        # Vaughan et al. (2003), eq. B2
        fvar_err = np.sqrt(
            (np.sqrt(err2 / (2 * n)) / (mean**2 * fvar)) ** 2
            + (np.sqrt(err2 / n) / np.abs(mean)) ** 2
        )
    unit = lc[variable].attrs.get("units", "")
    return xr.Dataset(
        {
            "chi2": ("energy", chi2, {"units": ""}),
            "dof": ("energy", dof, {"units": ""}),
            "pvalue": ("energy", pvalue, {"units": ""}),
            "mean": ("energy", mean_w, {"units": unit}),
            "fvar": ("energy", fvar, {"units": ""}),
            "fvar_err": ("energy", np.where(np.isfinite(fvar), fvar_err, np.nan), {"units": ""}),
        },
        coords={"energy": lc["energy"]},
        attrs={"variable": variable},
    )
