"""The one-parameter likelihood behind flux points and light curves.

A source's spectrum at its best fit is scaled by ``norm``; with everything else fixed, the
expected counts in every bin are ``mu = other + norm * signal``, where ``signal`` is the
source's predicted counts at ``norm = 1`` and ``other`` the background (scaled by its model)
plus all other sources (:func:`norm_terms`, evaluated once). On/off datasets use wstat with
``mu_sig = other_sources + norm * signal`` (background profiled). :class:`NormLikelihood`
sums the statistic over some datasets (runs) and a range of reco-energy bins, and
:func:`estimate_norm` fits it: best norm (bounded Brent), curvature error, TS against
``norm = 0``, profile errors and upper limit (root finding on the statistic).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import brentq, minimize_scalar

from gammaxr.fit import FitContext, load_datasets
from gammaxr.models import FoVBackgroundModel, Models, SkyModel
from gammaxr.stats import cash, wstat

__all__ = [
    "OPTIONAL",
    "NormLikelihood",
    "NormTerm",
    "check_selection",
    "estimate_norm",
    "norm_terms",
    "source_model",
]

#: Optional outputs (``selection``): profile-likelihood errors and upper limits.
OPTIONAL = ("errn-errp", "ul")


def check_selection(selection: str | Sequence[str] | None) -> tuple[str, ...]:
    """The optional outputs asked for: ``None`` -> none, ``"all"`` -> :data:`OPTIONAL`.

    Raises
    ------
    ValueError
        For a name not in :data:`OPTIONAL`.
    """
    if selection is None:
        return ()
    if isinstance(selection, str):
        selection = OPTIONAL if selection == "all" else (selection,)
    unknown = set(selection) - set(OPTIONAL)
    if unknown:
        raise ValueError(f"unknown selection {sorted(unknown)}; choose from {OPTIONAL}")
    return tuple(selection)


_MAX_EXPAND = 60


# -- models -----------------------------------------------------------------------------
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
    bins : numpy.ndarray of int, shape (k,), or None
        Flat index of each masked bin in the dataset's counts array (to re-bin events).
    """

    name: str
    energy_index: np.ndarray
    energy_edges: np.ndarray
    counts: np.ndarray
    signal: np.ndarray
    other: np.ndarray
    counts_off: np.ndarray | None = None
    alpha: np.ndarray | None = None
    bins: np.ndarray | None = None

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
                bins=idx,
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
