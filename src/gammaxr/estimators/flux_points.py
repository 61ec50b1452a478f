"""Flux points: the norm of a fitted source's spectrum, re-fitted in each energy bin.

For each requested energy bin the best-fit spectral model of one source (the *reference
model*) is scaled by a free factor ``norm`` and fitted to the counts of the reco-energy bins
inside the bin, everything else held at its current value (Gammapy's ``FluxPointsEstimator``
with ``reoptimize=False``). With ``mu = other + norm * signal`` per bin, where ``signal`` is
the source's predicted counts at ``norm = 1`` and ``other`` the background (scaled by its
model) plus all other sources, the likelihood is one-dimensional and cheap: the predicted
counts are computed once (:func:`norm_terms`) and each bin's norm is a scalar fit
(:class:`NormLikelihood`, :func:`estimate_norm`). On/off datasets use wstat with
``mu_sig = other_sources + norm * signal``.

Per bin: ``norm`` and ``norm_err`` (curvature of the likelihood, as Hesse, times
``n_sigma``), ``ts = stat(norm=0) - stat(best)``, ``sqrt_ts`` (signed by the norm),
``norm_errn``/``norm_errp`` (profile likelihood, ``Delta stat = n_sigma**2``), ``norm_ul``
(``Delta stat = n_sigma_ul**2`` above the best norm), ``npred``, ``npred_excess``,
``counts``, ``stat``, ``stat_null``, ``success`` and ``is_ul`` (``sqrt_ts <
sqrt_ts_threshold_ul``); fluxes ``dnde``, ``e2dnde``, ``flux``, ``eflux`` (and their
errors and limits) are the norm quantities times the reference model's values
``ref_dnde``, ``ref_e2dnde`` at ``e_ref`` (the geometric bin centre) and ``ref_flux``,
``ref_eflux`` integrated over the bin.

Requested edges snap to the nearest dataset edges in log energy (as Gammapy); a bin's
``energy_bounds`` are the edges of the reco bins that lie inside it and inside the masks.
Bins with no data get NaN and ``success = False``.

The datasets are loaded once (:func:`gammaxr.fit.load_datasets`, the compute boundary of
fitting), so numpy- and dask-backed datasets give the same result.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import brentq, minimize_scalar

from gammaxr.fit import FitContext, load_datasets
from gammaxr.geom.axes import axis_coords
from gammaxr.models import FoVBackgroundModel, Models, SkyModel, SpectralModel, models_to_yaml
from gammaxr.stats import cash, wstat

__all__ = [
    "SED_UNITS",
    "NormLikelihood",
    "NormTerm",
    "estimate_norm",
    "flux_points",
    "norm_terms",
    "sed_dataset",
    "snap_energy_edges",
    "source_model",
]

#: Units of the SED quantities (``dnde``, ``e2dnde``, ``flux``, ``eflux``).
SED_UNITS = {
    "dnde": "cm-2 s-1 TeV-1",
    "e2dnde": "TeV cm-2 s-1",
    "flux": "cm-2 s-1",
    "eflux": "TeV cm-2 s-1",
}
#: Optional outputs (``selection``): profile-likelihood errors and upper limits.
OPTIONAL = ("errn-errp", "ul")
_MAX_EXPAND = 60


# -- models and energy bins -----------------------------------------------------------------
def _as_models(models: Any) -> Models:
    if isinstance(models, Models):
        return models
    if isinstance(models, (SkyModel, FoVBackgroundModel)):
        return Models([models])
    return Models(models)


def source_model(models: Models | SkyModel | Sequence, source: str | None = None) -> SkyModel:
    """The sky model called ``source`` (default: the first sky model).

    Raises
    ------
    KeyError
        If there is no such sky model (the message lists the sky models).
    """
    sky = _as_models(models).sky_models
    if not sky:
        raise KeyError("the models hold no SkyModel to estimate a flux for")
    if source is None:
        return sky[0]
    for m in sky:
        if m.name == source:
            return m
    raise KeyError(f"no sky model named {source!r}; sky models are {[m.name for m in sky]}")


def snap_energy_edges(
    dataset_edges: np.ndarray, requested: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Requested bins as ranges of dataset bins (edges snapped to the nearest in log E).

    Parameters
    ----------
    dataset_edges : numpy.ndarray, shape (n + 1,)
        Reco-energy edges of the dataset, TeV.
    requested : sequence of float, shape (m + 1,)
        Requested bin edges, TeV (increasing).

    Returns
    -------
    start, stop : numpy.ndarray of int, shape (m,)
        Requested bin ``i`` covers dataset bins ``start[i]:stop[i]`` (empty when both
        edges snap to the same dataset edge, e.g. outside the dataset's range).
    """
    edges = np.asarray(dataset_edges, dtype=float)
    req = np.asarray(requested, dtype=float)
    if req.ndim != 1 or req.size < 2 or np.any(np.diff(req) <= 0) or np.any(req <= 0):
        raise ValueError(f"energy_edges must be >= 2 positive increasing values, got {req}")
    position = np.interp(np.log(req), np.log(edges), np.arange(edges.size))
    index = np.floor(position + 0.5).astype(int)  # nearest edge; exact halves round up
    return index[:-1], index[1:]


# -- per-dataset arrays ---------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class NormTerm:
    """The masked bins of one dataset (or run) for fitting a source's norm.

    Attributes
    ----------
    name : str
        Dataset (run) name.
    energy_index : numpy.ndarray of int, shape (k,)
        Reco-energy bin of each masked bin.
    energy_edges : numpy.ndarray, shape (n_e + 1,)
        Reco-energy edges of the dataset, TeV.
    counts : numpy.ndarray, shape (k,)
        Observed (on) counts.
    signal : numpy.ndarray, shape (k,)
        Predicted counts of the source at ``norm = 1``.
    other : numpy.ndarray, shape (k,)
        Background plus other sources (cash), or other sources only (on/off: wstat
        profiles the background).
    counts_off, alpha : numpy.ndarray, shape (k,), or None
        Off counts and acceptance ratio of an on/off dataset.
    """

    name: str
    energy_index: np.ndarray
    energy_edges: np.ndarray
    counts: np.ndarray
    signal: np.ndarray
    other: np.ndarray
    counts_off: np.ndarray | None = None
    alpha: np.ndarray | None = None

    @property
    def is_on_off(self) -> bool:
        """Whether the term uses wstat."""
        return self.counts_off is not None


def norm_terms(
    datasets: xr.Dataset | Sequence[xr.Dataset],
    models: Models | SkyModel | Sequence,
    source: str | None = None,
    *,
    name: str | Sequence[str] | None = None,
    convention: str = "gammaxr",
) -> list[NormTerm]:
    """Predicted counts of a source and of everything else, on every dataset (or run).

    Loads the datasets (:func:`gammaxr.fit.load_datasets`, the compute boundary) and
    evaluates the models once at their current values.

    Parameters
    ----------
    datasets : xarray.Dataset or sequence of xarray.Dataset
        Map or spectrum datasets as for :func:`gammaxr.fit.fit` (an ``obs_id`` dim gives
        one term per run).
    models : Models, SkyModel or sequence of models
        The models, usually fitted (``result.models``).
    source : str, optional
        Name of the source whose norm is estimated (default: the first sky model).
    name : str or sequence of str, optional
        Dataset names (see :func:`gammaxr.fit.fit`).
    convention : {"gammaxr", "gammapy"}
        Source rendering convention (see :func:`gammaxr.fit.fit`).

    Returns
    -------
    list of NormTerm
        One per dataset, or per run with bins inside its mask.
    """
    models = _as_models(models)
    src = source_model(models, source)
    data = load_datasets(datasets, name)
    alone = FitContext(data, Models([src]), convention=convention, require_sources=False)
    everything = FitContext(data, models, convention=convention, require_sources=False)
    terms = []
    for d, mine, all_ in zip(data, alone.npred(), everything.npred(), strict=True):
        idx = np.flatnonzero(d.mask)
        signal = mine["signal"].ravel()[idx]
        others = all_["signal"].ravel()[idx] - signal
        off = alpha = None
        if d.is_on_off:
            off, alpha = d.counts_off.ravel()[idx], d.alpha.ravel()[idx]
        else:
            others = others + all_["background"].ravel()[idx]
        terms.append(
            NormTerm(
                name=d.name,
                energy_index=np.unravel_index(idx, d.mask.shape)[0],
                energy_edges=d.energy_edges,
                counts=d.counts.ravel()[idx],
                signal=signal,
                other=others,
                counts_off=off,
                alpha=alpha,
            )
        )
    return terms


# -- the one-parameter likelihood -----------------------------------------------------------
class NormLikelihood:
    """``-2 log L`` of ``norm`` over some terms, restricted to a range of reco bins.

    Parameters
    ----------
    terms : sequence of NormTerm
        Datasets (runs) entering the likelihood.
    start, stop : int
        Reco-energy bins ``start:stop`` are used.

    Notes
    -----
    Cash bins without counts contribute ``2 (other + norm * signal)``, kept as two sums;
    only bins with counts are evaluated one by one. The norm is restricted to values
    where the cash expectation is >= 0 in every bin (:attr:`lower`).
    """

    def __init__(self, terms: Sequence[NormTerm], start: int, stop: int) -> None:
        n, s, o, on, off, alpha, s_w, o_w = ([] for _ in range(8))
        self.s_zero = self.o_zero = 0.0
        lower = -math.inf
        self.counts = 0.0
        self.n_bins = 0
        for t in terms:
            sel = (t.energy_index >= start) & (t.energy_index < stop)
            self.n_bins += int(sel.sum())
            self.counts += float(t.counts[sel].sum())
            if t.is_on_off:
                on.append(t.counts[sel])
                off.append(t.counts_off[sel])
                alpha.append(t.alpha[sel])
                s_w.append(t.signal[sel])
                o_w.append(t.other[sel])
                continue
            ts, to, tn = t.signal[sel], t.other[sel], t.counts[sel]
            pos = ts > 0
            if np.any(pos):
                lower = max(lower, float(np.max(-to[pos] / ts[pos])))
            has = tn > 0
            n.append(tn[has])
            s.append(ts[has])
            o.append(to[has])
            self.s_zero += float(ts[~has].sum())
            self.o_zero += float(to[~has].sum())

        def cat(parts):
            return np.concatenate(parts) if parts else np.zeros(0)

        self.n, self.s, self.o = cat(n), cat(s), cat(o)
        self.on, self.off, self.alpha = cat(on), cat(off), cat(alpha)
        self.s_w, self.o_w = cat(s_w), cat(o_w)
        self.lower = lower
        self.signal_total = self.s_zero + float(self.s.sum() + self.s_w.sum())

    def stat(self, norm: float) -> float:
        """Total statistic at ``norm``."""
        out = 2.0 * (self.o_zero + norm * self.s_zero)
        if self.n.size:
            out += float(np.sum(cash(self.n, self.o + norm * self.s)))
        if self.on.size:
            out += float(np.sum(wstat(self.on, self.off, self.alpha, self.o_w + norm * self.s_w)))
        return out

    def curvature(self, norm: float, step: float) -> float:
        """Second derivative of the statistic at ``norm`` (analytic for cash, a central
        difference with ``step`` for wstat)."""
        out = 0.0
        if self.n.size:
            mu = self.o + norm * self.s
            out += 2.0 * float(np.sum(self.n * self.s**2 / mu**2))
        if self.on.size:

            def w(x):
                return float(np.sum(wstat(self.on, self.off, self.alpha, self.o_w + x * self.s_w)))

            out += (w(norm + step) - 2.0 * w(norm) + w(norm - step)) / step**2
        return out

    def scale(self) -> float:
        """A rough 1-sigma width of ``norm`` (Fisher information at ``norm = 1``)."""
        info = 0.0
        if self.n.size or self.s_zero:
            mu = np.maximum(self.o + self.s, 1e-10)
            info += float(np.sum(self.s**2 / mu))
            info += self.s_zero**2 / max(self.o_zero + self.s_zero, 1e-10)
        if self.on.size:
            mu = np.maximum(self.o_w + self.s_w + self.alpha * self.off, 1e-10)
            info += float(np.sum(self.s_w**2 / mu))
        return 1.0 / math.sqrt(info) if info > 0 else 1.0


def _minimise(f: Callable[[float], float], scale: float, lower: float) -> tuple[float, bool]:
    """Minimum of a convex ``f`` on ``[lower, inf)``: bounded Brent in a growing window."""
    centre = 1.0 if 1.0 > lower + scale else lower + scale
    width = 5.0 * scale
    x = centre
    for _ in range(_MAX_EXPAND):
        lo, hi = max(centre - width, lower), centre + width
        res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-7 * scale})
        x = float(res.x)
        at_lo = lo > lower and x - lo < 1e-3 * width
        if not (at_lo or hi - x < 1e-3 * width):
            return x, bool(res.success)
        centre, width = x, 4.0 * width
    return x, False


def _crossing(g: Callable[[float], float], x0: float, step: float, limit: float) -> float:
    """Where ``g`` (negative at ``x0``, increasing away from it) crosses zero, searching
    from ``x0`` in the direction of ``step``; NaN if none before ``limit``."""
    x1 = x0 + step
    for _ in range(_MAX_EXPAND):
        if (step < 0 and x1 <= limit) or (step > 0 and x1 >= limit):
            x1 = limit
            if not g(x1) > 0:
                return math.nan
            break
        if g(x1) > 0:
            break
        x0, x1, step = x1, x1 + 2.0 * step, 2.0 * step
    else:
        return math.nan
    return float(brentq(g, min(x0, x1), max(x0, x1), xtol=1e-10 * abs(step) + 1e-300))


def estimate_norm(
    like: NormLikelihood,
    *,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    selection: Sequence[str] = OPTIONAL,
) -> dict[str, float]:
    """Best norm, error, TS and optional profile errors / upper limit of one likelihood.

    Parameters
    ----------
    like : NormLikelihood
        The likelihood of one bin (or time bin).
    n_sigma : float
        Errors are ``n_sigma`` sigma (``norm_err`` scaled, ``Delta stat = n_sigma**2``).
    n_sigma_ul : float
        Upper limit where the statistic has risen by ``n_sigma_ul**2`` above the best norm.
    selection : sequence of {"errn-errp", "ul"}
        Optional outputs.

    Returns
    -------
    dict of float
        ``norm``, ``norm_err``, ``ts``, ``stat``, ``stat_null``, ``npred``,
        ``npred_excess``, ``counts``, ``success`` (1.0 / 0.0), and ``norm_errn``,
        ``norm_errp``, ``norm_ul`` when selected; NaN where the bin has no data.
    """
    out = {
        "norm": math.nan,
        "norm_err": math.nan,
        "ts": math.nan,
        "stat": math.nan,
        "stat_null": math.nan,
        "npred": math.nan,
        "npred_excess": math.nan,
        "counts": like.counts,
        "success": 0.0,
    }
    if "errn-errp" in selection:
        out.update(norm_errn=math.nan, norm_errp=math.nan)
    if "ul" in selection:
        out["norm_ul"] = math.nan
    if like.n_bins == 0 or not like.signal_total > 0:
        return out
    scale = like.scale()
    with np.errstate(divide="ignore", invalid="ignore"):
        norm, success = _minimise(like.stat, scale, like.lower)
        stat = like.stat(norm)
        curv = like.curvature(norm, 1e-3 * scale)
    err = 1.0 / math.sqrt(0.5 * curv) if curv > 0 else math.nan
    stat_null = like.stat(0.0) if 0.0 >= like.lower else math.nan
    npred_other = like.o_zero + float(like.o.sum() + like.o_w.sum())
    out.update(
        norm=norm,
        norm_err=err * n_sigma,
        stat=stat,
        stat_null=stat_null,
        ts=stat_null - stat,
        npred=npred_other + norm * like.signal_total,
        npred_excess=norm * like.signal_total,
        success=float(success),
    )
    step = err if np.isfinite(err) else scale

    def rise(level: float) -> Callable[[float], float]:
        return lambda x: like.stat(x) - stat - level

    with np.errstate(divide="ignore", invalid="ignore"):
        if "errn-errp" in selection:
            g = rise(n_sigma**2)
            out["norm_errp"] = _crossing(g, norm, step, math.inf) - norm
            out["norm_errn"] = norm - _crossing(g, norm, -step, like.lower)
        if "ul" in selection:
            out["norm_ul"] = _crossing(rise(n_sigma_ul**2), norm, step, math.inf)
    return out


# -- output -----------------------------------------------------------------------------
def _reference_values(model: SpectralModel, e_min: np.ndarray, e_max: np.ndarray) -> dict:
    values = model.values
    e_ref = np.sqrt(e_min * e_max)
    dnde = np.asarray(model.evaluate(e_ref, **values), dtype=float)
    return {
        "e_ref": e_ref,
        "dnde": dnde,
        "e2dnde": dnde * e_ref**2,
        "flux": np.asarray(model.evaluate_integral(e_min, e_max, **values), dtype=float),
        "eflux": np.asarray(model.evaluate_energy_flux(e_min, e_max, **values), dtype=float),
    }


def sed_dataset(
    rows: dict[str, np.ndarray],
    e_min: np.ndarray,
    e_max: np.ndarray,
    reference: SkyModel,
    *,
    dims: tuple[str, ...] = ("energy",),
    coords: dict | None = None,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    sqrt_ts_threshold_ul: float = 2.0,
) -> xr.Dataset:
    """Assemble estimator results into an SED dataset with fluxes from a reference model.

    Parameters
    ----------
    rows : dict of numpy.ndarray
        Output of :func:`estimate_norm` stacked to arrays of shape ``dims`` (energy last).
    e_min, e_max : numpy.ndarray, shape (n_energy,)
        Bin edges, TeV.
    reference : SkyModel
        The source (its spectral model gives the reference fluxes).
    dims : tuple of str
        Dims of the arrays; the last must be ``"energy"``.
    coords : dict, optional
        Extra coordinates (for the leading dims).
    n_sigma, n_sigma_ul, sqrt_ts_threshold_ul : float
        Recorded in attrs; ``is_ul = sqrt_ts < sqrt_ts_threshold_ul`` when ``norm_ul`` is
        present.

    Returns
    -------
    xarray.Dataset
        See the module docstring.
    """

    ref = _reference_values(reference.spectral, e_min, e_max)
    edges_ok = np.concatenate([e_min, e_max[-1:]])
    contiguous = np.allclose(e_max[:-1], e_min[1:], rtol=1e-12)
    if contiguous:
        all_coords = dict(axis_coords("energy", edges_ok, "TeV"))
    else:
        all_coords = dict(axis_coords("energy", None, "TeV", lo=e_min, hi=e_max))
    all_coords.update(coords or {})
    all_coords["e_ref"] = ("energy", ref["e_ref"], {"units": "TeV"})
    data: dict[str, Any] = {}
    for key, values in rows.items():
        dtype = bool if key == "success" else float
        data[key] = (dims, np.asarray(values).astype(dtype), {"units": ""})
    norm = np.asarray(rows["norm"], dtype=float)
    ts = np.asarray(rows["ts"], dtype=float)
    with np.errstate(invalid="ignore"):
        sqrt_ts = np.sign(norm) * np.sqrt(np.clip(ts, 0, None))
        data["sqrt_ts"] = (dims, sqrt_ts, {"units": ""})
        if "norm_ul" in rows:
            data["is_ul"] = (dims, sqrt_ts < sqrt_ts_threshold_ul, {"units": ""})
    suffixes = [s for s in ("", "_err", "_errn", "_errp", "_ul") if f"norm{s}" in rows]
    for sed, unit in SED_UNITS.items():
        data[f"ref_{sed}"] = ("energy", ref[sed], {"units": unit})
        for suffix in suffixes:
            value = np.asarray(rows[f"norm{suffix}"], dtype=float) * ref[sed]
            data[f"{sed}{suffix}"] = (dims, value, {"units": unit})
    attrs = {
        "source": reference.name,
        "reference_model": models_to_yaml(Models([reference])),
        "n_sigma": float(n_sigma),
        "n_sigma_ul": float(n_sigma_ul),
        "sqrt_ts_threshold_ul": float(sqrt_ts_threshold_ul),
        "sed_type_init": "likelihood",
    }
    return xr.Dataset(data, coords=all_coords, attrs=attrs)


def bin_ranges(terms: Sequence[NormTerm], energy_edges: Sequence[float] | None):
    """Reco-bin ranges of the requested bins and their edges inside the masks.

    Parameters
    ----------
    terms : sequence of NormTerm
        All terms (their energy axes must agree).
    energy_edges : sequence of float or None
        Requested edges, TeV; None: every reco bin of the datasets.

    Returns
    -------
    start, stop : numpy.ndarray of int
        Reco-bin ranges.
    e_min, e_max : numpy.ndarray
        Edges of each bin: those of the masked-in reco bins it contains (the snapped
        requested edges where none is).
    """
    edges = terms[0].energy_edges
    for t in terms[1:]:
        if t.energy_edges.shape != edges.shape or not np.allclose(t.energy_edges, edges):
            raise ValueError(
                f"datasets {terms[0].name!r} and {t.name!r} have different reco-energy axes"
            )
    if energy_edges is None:
        start = np.arange(edges.size - 1)
        stop = start + 1
    else:
        start, stop = snap_energy_edges(edges, energy_edges)
    used = np.zeros(edges.size - 1, bool)
    for t in terms:
        used[np.unique(t.energy_index)] = True
    e_min, e_max = edges[start].astype(float), edges[stop].astype(float)
    for i, (a, b) in enumerate(zip(start, stop, strict=True)):
        inside = np.flatnonzero(used[a:b]) + a
        if inside.size:
            e_min[i], e_max[i] = edges[inside[0]], edges[inside[-1] + 1]
        elif a == b and energy_edges is not None:
            e_min[i], e_max[i] = energy_edges[i], energy_edges[i + 1]
    return start, stop, e_min, e_max


def _check_selection(selection: str | Sequence[str] | None) -> tuple[str, ...]:
    if selection is None:
        return ()
    if isinstance(selection, str):
        selection = OPTIONAL if selection == "all" else (selection,)
    unknown = set(selection) - set(OPTIONAL)
    if unknown:
        raise ValueError(f"unknown selection {sorted(unknown)}; choose from {OPTIONAL}")
    return tuple(selection)


def stack_rows(results: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """``[{key: value}, ...]`` -> ``{key: array}`` (same keys in every dict)."""
    return {k: np.array([r[k] for r in results]) for k in results[0]}


def flux_points(
    datasets: xr.Dataset | Sequence[xr.Dataset],
    models: Models | SkyModel | Sequence,
    energy_edges: Sequence[float] | None = None,
    *,
    source: str | None = None,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    sqrt_ts_threshold_ul: float = 2.0,
    selection: str | Sequence[str] | None = OPTIONAL,
    reoptimize: bool = False,
    name: str | Sequence[str] | None = None,
    convention: str = "gammaxr",
) -> xr.Dataset:
    """Flux points of a source: its spectrum's norm fitted in each energy bin.

    Parameters
    ----------
    datasets : xarray.Dataset or sequence of xarray.Dataset
        Map or spectrum datasets (numpy- or dask-backed; an ``obs_id`` dim is a joint
        likelihood over runs), as for :func:`gammaxr.fit.fit`. Loaded once here.
    models : Models, SkyModel or sequence of models
        The models at their best fit (``result.models``); background models apply as in a
        fit and stay at their values.
    energy_edges : sequence of float, optional
        Bin edges in reco energy, TeV; snapped to the nearest dataset edges (log energy).
        Default: every reco bin of the datasets.
    source : str, optional
        Name of the sky model (default: the first).
    n_sigma : float
        Size of ``norm_err`` and of the profile errors ``norm_errn``/``norm_errp``.
    n_sigma_ul : float
        Upper limits at ``Delta stat = n_sigma_ul**2`` (2: Gammapy's default).
    sqrt_ts_threshold_ul : float
        ``is_ul`` where ``sqrt_ts`` is below this.
    selection : {"errn-errp", "ul"}, "all", sequence or None
        Optional outputs (default both).
    reoptimize : bool
        Only False (other parameters stay at their values, Gammapy's default) is
        implemented.
    name : str or sequence of str, optional
        Dataset names (background models are matched by them).
    convention : {"gammaxr", "gammapy"}
        Source rendering convention (see :func:`gammaxr.fit.fit`).

    Returns
    -------
    xarray.Dataset
        Dim ``energy`` (coordinate: log centres of ``energy_bounds``; ``e_ref``): the
        variables of the module docstring, each with a ``units`` attr; attrs ``source``,
        ``reference_model`` (Gammapy model YAML), ``n_sigma``, ``n_sigma_ul``.

    Examples
    --------
    >>> result = ds.gamma.fit(models)
    >>> fp = ds.gamma.flux_points(result.models, [1, 2, 4, 10], source="crab")
    >>> fp["e2dnde"], fp["e2dnde_err"], fp["ts"]
    """
    if reoptimize:
        raise NotImplementedError("flux points with reoptimize=True are not implemented")
    chosen = _check_selection(selection)
    src = source_model(models, source)
    terms = norm_terms(datasets, models, source, name=name, convention=convention)
    start, stop, e_min, e_max = bin_ranges(terms, energy_edges)
    results = []
    for a, b in zip(start, stop, strict=True):
        like = NormLikelihood(terms, int(a), int(b))
        results.append(
            estimate_norm(like, n_sigma=n_sigma, n_sigma_ul=n_sigma_ul, selection=chosen)
        )
    failed = [i for i, r in enumerate(results) if not r["success"]]
    if failed and any(np.isfinite(results[i]["ts"]) for i in failed):
        warnings.warn(
            f"flux points: the norm fit did not converge in bins {failed}", RuntimeWarning, 2
        )
    return sed_dataset(
        stack_rows(results),
        e_min,
        e_max,
        src,
        n_sigma=n_sigma,
        n_sigma_ul=n_sigma_ul,
        sqrt_ts_threshold_ul=sqrt_ts_threshold_ul,
    )
