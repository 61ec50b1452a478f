"""Light curves: a source's flux norm fitted in time intervals, from per-run datasets.

The input is a dataset with an ``obs_id`` dim (one run per entry, as made by
:func:`gammaxr.reduce.runs.reduce_runs` or :func:`gammaxr.reduce.spectrum.spectrum_runs`)
with the per-run coordinates ``tstart`` and ``tstop`` (s of mission elapsed time, MET). In
each time interval the runs lying entirely inside it (to ``atol``) form a joint likelihood,
and the source's spectrum, at its best fit, is scaled by a free ``norm`` in each energy bin
with everything else held at its value: the flux-point estimate of
:mod:`gammaxr.estimators.flux_points` restricted to those runs (Gammapy's
``LightCurveEstimator`` with ``reoptimize=False``). Intervals without any run are dropped.

Bins shorter than a run: with ``observations`` (the runs' events and GTIs), every run is cut
at the interval limits instead (:func:`gammaxr.estimators.time_slices.slice_terms`): the
counts of a part are its events inside the interval and the GTIs, its exposure and
background the run's scaled by the fraction of good time inside the interval; the IRFs are
not read again. The norm is relative to the source's spectral model alone (a temporal
model on the source is not applied), so ``flux`` is the mean flux in each bin.

Times: intervals may be given as MJD (floats, ``time_format="mjd"``, the default), as MET
seconds (``time_format="met"``) or as :class:`astropy.time.Time`. MJD needs the MET
reference epoch: ``time_reference`` (a :class:`~astropy.time.Time` or an MJD), else the
``MJDREFI``/``MJDREFF``/``TIMESYS`` attrs of ``tstart`` or of the dataset. Without any
reference, results carry MET only.

The output has dims ``(time_bin, energy)``: the flux-point variables (``norm``,
``norm_err``, ``norm_errn``/``norm_errp``, ``norm_ul``, ``ts``, ``sqrt_ts``, ``is_ul``,
``dnde``/``e2dnde``/``flux``/``eflux`` with errors and limits, ``npred``, ``counts``...) and
the coordinates ``time_min``/``time_max`` (MJD, where known), ``tstart``/``tstop`` (MET
s), ``n_runs`` and ``obs_ids`` (comma-separated run numbers) along ``time_bin``; and, along
``energy``, the variability tests of the flux (:func:`~gammaxr.estimators.time_slices.
variability`): ``variability_chi2``, ``variability_dof``, ``variability_pvalue``,
``fvar`` and ``fvar_err``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from astropy.time import Time

from gammaxr.models import Models, SkyModel
from gammaxr.progress import track

from .flux_points import bin_ranges, sed_dataset, stack_rows
from .norm_fit import (
    OPTIONAL,
    NormLikelihood,
    _as_models,
    check_selection,
    estimate_norm,
    norm_terms,
    source_model,
)
from .time_slices import slice_terms, variability

__all__ = ["light_curve", "met_reference"]

SECONDS_PER_DAY = 86400.0
TIME_FORMATS = ("mjd", "met")


def met_reference(runs: xr.Dataset, time_reference: Any = None) -> Time | None:
    """The MET zero point of the runs: ``time_reference``, else the ``MJDREFI``/``MJDREFF``
    (or ``MJDREF``) and ``TIMESYS`` attrs of ``tstart`` or of the dataset, else None.

    Parameters
    ----------
    runs : xarray.Dataset
        Dataset with ``tstart``.
    time_reference : astropy.time.Time or float, optional
        The epoch of MET 0 (a float is an MJD in TT).

    Returns
    -------
    astropy.time.Time or None
    """
    if time_reference is not None:
        if isinstance(time_reference, Time):
            return time_reference
        return Time(float(time_reference), format="mjd", scale="tt")
    for attrs in (runs["tstart"].attrs if "tstart" in runs.coords else {}, runs.attrs):
        if "MJDREFI" in attrs or "MJDREF" in attrs:
            from gammaxr.io.gadf import time_reference as from_keywords

            return from_keywords(attrs)
    return None


def _intervals_met(time_intervals: Any, reference: Time | None, time_format: str) -> np.ndarray:
    """Time intervals as MET seconds, shape (n, 2)."""
    if time_format not in TIME_FORMATS:
        raise ValueError(f"time_format must be one of {TIME_FORMATS}, got {time_format!r}")
    if isinstance(time_intervals, Time) or (
        isinstance(time_intervals, Sequence)
        and time_intervals
        and isinstance(np.ravel(np.asarray(time_intervals, dtype=object))[0], Time)
    ):
        if reference is None:
            raise ValueError(
                "time intervals given as astropy Time need the MET reference: pass "
                "time_reference= or set MJDREFI/MJDREFF attrs on 'tstart'"
            )
        pairs = [(Time(a), Time(b)) for a, b in time_intervals]
        return np.array([[(t - reference).to_value("s") for t in pair] for pair in pairs])
    values = np.asarray(time_intervals, dtype=float)
    if values.ndim != 2 or values.shape[1] != 2:
        raise ValueError(f"time_intervals must have shape (n, 2), got {values.shape}")
    if np.any(values[:, 1] <= values[:, 0]):
        raise ValueError("every time interval needs start < stop")
    if time_format == "met":
        return values
    if reference is None:
        raise ValueError(
            "time intervals in MJD need the MET reference of the runs: pass time_reference= "
            "(or time_format='met'), or set MJDREFI/MJDREFF attrs on 'tstart'"
        )
    return (values - reference.tt.mjd) * SECONDS_PER_DAY


def light_curve(
    runs: xr.Dataset,
    models: Models | SkyModel | Sequence,
    time_intervals: Any = None,
    *,
    energy_edges: Sequence[float] | None = None,
    source: str | None = None,
    time_format: str = "mjd",
    time_reference: Any = None,
    atol: float = 1e-6,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    sqrt_ts_threshold_ul: float = 2.0,
    selection: str | Sequence[str] | None = OPTIONAL,
    name: str | None = None,
    convention: str = "gammaxr",
    observations: Sequence | Mapping | None = None,
    gti_tolerance: float = 0.0,
    progress: bool | None = None,
) -> xr.Dataset:
    """Light curve of a source: its flux norm fitted per time interval (and energy bin).

    Parameters
    ----------
    runs : xarray.Dataset
        Map or spectrum dataset with an ``obs_id`` dim and the coordinates ``tstart``,
        ``tstop`` (MET s) along it; numpy- or dask-backed (loaded once here).
    models : Models, SkyModel or sequence of models
        The models at their best fit; background models apply by run name (``str(obs_id)``)
        or by the dataset's name, as in a fit.
    time_intervals : array_like of shape (n, 2), or sequence of astropy Time pairs, optional
        Start and stop of each interval (see ``time_format``); default one interval per run.
    energy_edges : sequence of float, optional
        Reco-energy bin edges, TeV (snapped to the dataset edges); default one bin over the
        whole range.
    source : str, optional
        The sky model whose norm is fitted (default: the first).
    time_format : {"mjd", "met"}
        Unit of numeric ``time_intervals``: MJD or MET seconds.
    time_reference : astropy.time.Time or float, optional
        MET epoch (MJD if a float); default from the ``MJDREFI``/``MJDREFF`` attrs.
    atol : float
        Tolerance in s when testing whether a run lies inside an interval.
    n_sigma, n_sigma_ul, sqrt_ts_threshold_ul : float
        As for :func:`gammaxr.estimators.flux_points.flux_points`.
    selection : {"errn-errp", "ul"}, "all", sequence or None
        Optional outputs (default both).
    name : str, optional
        Name of the dataset (background models may refer to it).
    convention : {"gammaxr", "gammapy"}
        Source rendering convention (see :func:`gammaxr.fit.fit`).
    observations : sequence or mapping, optional
        The runs' events and GTIs (:class:`gammaxr.data.Observation`, the simulator's
        outputs, or ``{obs_id: observation}``): runs are then cut at the interval limits,
        for bins shorter than a run (map datasets only).
    gti_tolerance : float
        Seconds by which GTIs are widened when selecting events of a run part.
    progress : bool or None
        Show a progress bar over the time intervals (None: the
        :func:`gammaxr.progress.show_progress` context).

    Returns
    -------
    xarray.Dataset
        Dims ``(time_bin, energy)``; see the module docstring.

    Raises
    ------
    ValueError
        If the dataset has no ``obs_id`` dim or no ``tstart``/``tstop``, or no run falls
        in any interval.
    """
    if "obs_id" not in runs.dims:
        raise ValueError("light_curve needs a dataset with an 'obs_id' dim (one entry per run)")
    for coord in ("tstart", "tstop"):
        if coord not in runs.coords:
            raise ValueError(f"light_curve needs the per-run coordinate {coord!r} (MET s)")
    chosen = check_selection(selection)
    src = source_model(models, source)
    if src.temporal is not None:  # the norm is measured against the spectral model alone
        models = _as_models(models).replace(src.replace(temporal=None))
        src = source_model(models, src.name)
    reference = met_reference(runs, time_reference)
    obs_ids = np.asarray(runs["obs_id"].values)
    tstart = np.asarray(runs["tstart"].values, dtype=float)
    tstop = np.asarray(runs["tstop"].values, dtype=float)
    if time_intervals is None:
        order = np.argsort(tstart, kind="stable")
        intervals = np.stack([tstart[order], tstop[order]], axis=1)
    else:
        intervals = _intervals_met(time_intervals, reference, time_format)
    terms = norm_terms(runs, models, source, name=name, convention=convention)
    by_name = {t.name: t for t in terms}  # runs without bins in their masks are left out
    if energy_edges is None:  # one bin over the whole range
        energy_edges = terms[0].energy_edges[[0, -1]]
    start, stop, e_min, e_max = bin_ranges(terms, energy_edges)
    if observations is None:
        groups = []
        for t0, t1 in intervals:
            inside = (tstart >= t0 - atol) & (tstop <= t1 + atol)
            ids = [str(i) for i in obs_ids[inside] if str(i) in by_name]
            groups.append(([by_name[i] for i in ids], ids))
    else:
        groups = slice_terms(terms, runs, observations, intervals, gti_tolerance)
    rows, kept, members = [], [], []
    pairs = zip(intervals, groups, strict=True)
    for (t0, t1), (group, chosen_ids) in track(
        pairs, progress, desc="light curve", total=len(groups)
    ):
        if not chosen_ids:
            continue
        rows.append(
            stack_rows(
                [
                    estimate_norm(
                        NormLikelihood(group, int(a), int(b)),
                        n_sigma=n_sigma,
                        n_sigma_ul=n_sigma_ul,
                        selection=chosen,
                    )
                    for a, b in zip(start, stop, strict=True)
                ]
            )
        )
        kept.append((t0, t1))
        members.append(chosen_ids)
    if not rows:
        raise ValueError("no run lies inside any of the time intervals")
    table = {key: np.stack([r[key] for r in rows]) for key in rows[0]}
    coords = _time_coords(np.array(kept), members, reference)
    out = sed_dataset(
        table,
        e_min,
        e_max,
        src,
        dims=("time_bin", "energy"),
        coords=coords,
        n_sigma=n_sigma,
        n_sigma_ul=n_sigma_ul,
        sqrt_ts_threshold_ul=sqrt_ts_threshold_ul,
    )
    tests = variability(out, "flux")
    for key in ("chi2", "dof", "pvalue"):
        out[f"variability_{key}"] = tests[key]
    out["fvar"], out["fvar_err"] = tests["fvar"], tests["fvar_err"]
    return out


def _time_coords(kept: np.ndarray, members: list[list[str]], reference: Time | None) -> Mapping:
    coords: dict[str, Any] = {
        "time_bin": ("time_bin", np.arange(kept.shape[0])),
        "tstart": ("time_bin", kept[:, 0], {"units": "s", "description": "MET"}),
        "tstop": ("time_bin", kept[:, 1], {"units": "s", "description": "MET"}),
        "n_runs": ("time_bin", np.array([len(m) for m in members])),
        "obs_ids": ("time_bin", np.array([",".join(m) for m in members])),
    }
    if reference is not None:
        mjd0 = reference.tt.mjd
        attrs = {"units": "d", "format": "mjd", "scale": "tt"}
        coords["time_min"] = ("time_bin", mjd0 + kept[:, 0] / SECONDS_PER_DAY, attrs)
        coords["time_max"] = ("time_bin", mjd0 + kept[:, 1] / SECONDS_PER_DAY, dict(attrs))
    return coords
