"""Counts statistics: excess, significance, errors and upper limits per bin.

Two cases, as functions with the prefix of the likelihood they use:

- known background (``cash_*``): ``n_on`` counts on top of a known expectation ``mu_bkg``;
- on/off measurement (``wstat_*``): ``n_on`` and ``n_off`` counts, on/off acceptance ratio
  ``alpha``, background profiled out (:func:`gammaxr.stats.wstat`), optionally a known
  signal ``mu_sig`` already accounted for (e.g. model counts).

The excess is ``n_on - mu_bkg`` (``n_on - alpha n_off - mu_sig``); ``ts`` is the likelihood
ratio statistic of "no (extra) excess" against the best excess, clipped at 0; ``sqrt_ts`` is
its square root with the sign of the excess (for on/off with ``mu_sig = 0`` this is Li & Ma
1983 eq. 17, :func:`li_ma_significance`). Asymmetric errors ``errn``/``errp`` are the
distances from the best excess to where the statistic has risen by ``n_sigma**2`` (profile
likelihood), and the upper limit is the excess above the best one where it has risen by
``n_sigma**2``: ``excess + errp(n_sigma)`` (for ``n_on = 0`` with known background that is
``n_sigma**2 / 2 - mu_bkg``, where Gammapy returns ``n_sigma**2 / 2``).

All functions are elementwise, array in / array out, on Python scalars, numpy arrays,
dask arrays (lazy, one kernel call per block) and xarray objects (broadcast by dim name,
lazy if dask-backed). Known background solves the closed-form (Lambert W) equations by
Newton steps that are exact to float precision; on/off uses a vectorised bisection on the convex profile likelihood (no Python loop over bins).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gammaxr.stats._elementwise import as_float, elementwise
from gammaxr.stats.fit_statistics import TRUNCATION_VALUE, _wstat_kernel

__all__ = [
    "alpha_on_off",
    "cash_error",
    "cash_errn",
    "cash_errp",
    "cash_excess",
    "cash_n_sig_matching_significance",
    "cash_sqrt_ts",
    "cash_ts",
    "cash_upper_limit",
    "li_ma_significance",
    "wstat_error",
    "wstat_errn",
    "wstat_errp",
    "wstat_excess",
    "wstat_n_sig_matching_significance",
    "wstat_sqrt_ts",
    "wstat_ts",
    "wstat_upper_limit",
]

#: Relative precision of the on/off root finding (of the bracket width).
ROOT_RTOL = 1e-12
_MAX_EXPAND = 80
_MAX_BISECT = 200
_MAX_NEWTON = 100


# ------------------------------------------------------------------ vectorised roots


def _bisect(g: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray):
    """Root of ``g`` in each ``[lo, hi]`` where ``g(lo)`` and ``g(hi)`` differ in sign."""
    lo, hi = lo.copy(), hi.copy()
    g_lo = g(lo)
    for _ in range(_MAX_BISECT):
        # each element stops on its own, so results do not depend on the other elements
        # (a dask chunking gives the same numbers as one numpy array)
        active = np.abs(hi - lo) > ROOT_RTOL * (1.0 + np.abs(lo))
        if not active.any():
            break
        mid = 0.5 * (lo + hi)
        g_mid = g(mid)
        same = (np.signbit(g_mid) == np.signbit(g_lo)) & (g_lo != 0)  # g(lo) = 0: lo is it
        lo = np.where(active & same, mid, lo)
        g_lo = np.where(active & same, g_mid, g_lo)
        hi = np.where(active & ~same, mid, hi)
    return np.where(g_lo == 0, lo, 0.5 * (lo + hi))


def _expand(g: Callable[[np.ndarray], np.ndarray], start: np.ndarray, step: np.ndarray):
    """End ``start + k step`` (doubling ``k``) where ``g`` becomes >= 0; NaN if never."""
    end = start + step
    reached = g(end) >= 0
    for _ in range(_MAX_EXPAND):
        if reached.all():
            break
        step = np.where(reached, step, 2.0 * step)
        end = np.where(reached, end, start + step)
        reached = reached | (g(end) >= 0)
    return np.where(reached, end, np.nan)


def _convex_newton(f, df, start):
    """Newton iterations on a convex ``f`` from a ``start`` where ``f(start) >= 0``.

    On the monotone side of a convex function, Newton steps from such a start approach the
    root from outside without overshooting; iterations stop at float precision.
    """
    t = start
    active = np.ones(np.shape(t), dtype=bool)
    for _ in range(_MAX_NEWTON):
        with np.errstate(divide="ignore", invalid="ignore"):
            step = f(t) / df(t)
        step = np.where(np.isfinite(step) & active, step, 0.0)
        t = t - step
        active = active & (np.abs(step) > 4e-16 * np.abs(t))
        if not active.any():
            break
    return t


# ------------------------------------------------------------------ known background


def _cash_ts_kernel(n_on, mu_bkg):
    # cash(n, b) - cash(n, n) = 2 (b - n + n log(n / b)), grouped to avoid cancellation
    n_on = as_float(n_on)
    mu_bkg = np.maximum(as_float(mu_bkg), TRUNCATION_VALUE)  # a new array (or scalar)
    # 2 ((b - n) + n log(n / b)) in place; n log(n / b) is 0 at n = 0 (as scipy's xlogy,
    # with numpy's vectorised log: 5x faster)
    ts = np.asarray(n_on / mu_bkg)
    with np.errstate(invalid="ignore"):
        np.log(ts, out=ts, where=np.asarray(n_on != 0))
    ts *= n_on
    if isinstance(mu_bkg, np.ndarray) and mu_bkg.shape == ts.shape:  # ours: b - n in place
        ts += np.subtract(mu_bkg, n_on, out=mu_bkg)
    else:
        ts += mu_bkg - n_on
    ts *= 2.0
    return np.clip(ts, 0.0, None, out=ts)


def _cash_sqrt_ts_kernel(n_on, mu_bkg):
    return np.sign(as_float(n_on) - as_float(mu_bkg)) * np.sqrt(_cash_ts_kernel(n_on, mu_bkg))


def _cash_delta_roots(n_on, n_sigma, side):
    """Offsets ``x - n`` of the total counts ``x`` where ``cash(n, x) - cash(n, n) = n_sigma**2``.

    With ``x = n (1 + t)`` the condition is ``h(t) = t - log(1 + t) = c / n``
    (``c = n_sigma**2 / 2``; the Lambert W equation), solved per side with
    :func:`_convex_newton`: ``h`` is convex with its minimum 0 at ``t = 0``. Returns
    ``x - n``; for ``n = 0`` the upper root is ``x = c`` and the lower one the boundary
    ``x = 0``.
    """
    n = as_float(n_on)
    c = 0.5 * float(n_sigma) ** 2
    pos = n > 0
    eps = c / np.where(pos, n, 1.0)
    root = np.sqrt(2.0 * eps)
    if side > 0:
        start = root + 2.0 * eps  # h(start) >= eps (checked on the series and for large eps)
    else:
        # h(t) >= t^2 / 2 for t < 0, and h(exp(-1 - eps) - 1) = exp(-1 - eps) > 0
        start = np.maximum(-root - eps, np.expm1(-1.0 - eps))

    def h(t):
        return t - np.log1p(t) - eps

    def dh(t):
        return t / (1.0 + t)

    t = _convex_newton(h, dh, start)
    return np.where(pos, n * t, 0.0 if side < 0 else c)


def _cash_errn_kernel(n_on, mu_bkg, n_sigma):
    n_on = np.broadcast_arrays(as_float(n_on), as_float(mu_bkg))[0]
    return -_cash_delta_roots(n_on, n_sigma, -1)


def _cash_errp_kernel(n_on, mu_bkg, n_sigma):
    n_on = np.broadcast_arrays(as_float(n_on), as_float(mu_bkg))[0]
    return _cash_delta_roots(n_on, n_sigma, 1)


def _cash_ul_kernel(n_on, mu_bkg, n_sigma):
    return as_float(n_on) - as_float(mu_bkg) + _cash_errp_kernel(n_on, mu_bkg, n_sigma)


def _cash_matching_kernel(mu_bkg, significance):
    # excess s = b t with ts = 2 b g(t), g(t) = (1 + t) log(1 + t) - t = c / b (c = S^2 / 2);
    # g is convex with its minimum 0 at t = 0 and g(-1) = 1: t > 0 for S > 0, -1 <= t < 0
    # for S < 0 (reachable only if c <= b)
    b, sig = np.broadcast_arrays(as_float(mu_bkg), as_float(significance))
    eps = 0.5 * sig**2 / np.where(b > 0, b, 1.0)
    valid = (b > 0) & ((sig >= 0) | (eps <= 1.0))
    eps = np.where(valid, eps, 0.0)
    root = np.sqrt(2.0 * eps)
    # g(start) >= eps: above, g(t) >= t^2 / 2 - t^3 / 6 is beaten by root + 2 eps; below,
    # g(t) >= t^2 / 2, and g(-1 + d) is within 30 d of 1
    start = np.where(sig >= 0, root + 2.0 * eps, np.maximum(-root, -1.0 + 1e-12))

    def g(t):
        return (1.0 + t) * np.log1p(t) - t - eps

    def dg(t):
        return np.log1p(t)

    t = np.where(eps > 0, _convex_newton(g, dg, np.where(eps > 0, start, 1.0)), 0.0)
    t = np.where(sig < 0, np.maximum(t, -1.0), t)
    return np.where(valid, b * t, np.nan)


def cash_excess(n_on: Any, mu_bkg: Any) -> Any:
    """Excess ``n_on - mu_bkg`` over a known background (counts)."""
    return elementwise(lambda n, b: as_float(n) - as_float(b), n_on, mu_bkg)


def cash_error(n_on: Any) -> Any:
    """Symmetric error of the excess with known background, ``sqrt(n_on)`` (counts)."""
    return elementwise(lambda n: np.sqrt(as_float(n)), n_on)


def cash_ts(n_on: Any, mu_bkg: Any) -> Any:
    """Test statistic ``cash(n_on, mu_bkg) - cash(n_on, n_on)`` (>= 0) for a known background.

    Parameters
    ----------
    n_on : array_like
        Observed counts.
    mu_bkg : array_like
        Known expected background counts.

    Returns
    -------
    array_like of float64
    """
    return elementwise(_cash_ts_kernel, n_on, mu_bkg)


def cash_sqrt_ts(n_on: Any, mu_bkg: Any) -> Any:
    """Signed significance ``sign(n_on - mu_bkg) sqrt(ts)`` in Gaussian sigma (float64).

    The parameters are those of :func:`cash_ts`.
    """
    return elementwise(_cash_sqrt_ts_kernel, n_on, mu_bkg)


def cash_errn(n_on: Any, mu_bkg: Any, n_sigma: float = 1.0) -> Any:
    """Downward error of the excess with known background (Lambert W equation).

    Parameters
    ----------
    n_on, mu_bkg : array_like
        Observed and known background counts.
    n_sigma : float
        Confidence level in sigma: the statistic rises by ``n_sigma**2``.

    Returns
    -------
    array_like of float64
        Positive distance (counts) below the excess; 0 where ``n_on = 0``.
    """
    return elementwise(_cash_errn_kernel, n_on, mu_bkg, n_sigma=float(n_sigma))


def cash_errp(n_on: Any, mu_bkg: Any, n_sigma: float = 1.0) -> Any:
    """Upward error of the excess with known background (Lambert W equation).

    The mirror of :func:`cash_errn`, with the same parameters: the positive distance
    (counts, float64) above the excess; ``n_sigma**2 / 2`` where ``n_on = 0``.
    """
    return elementwise(_cash_errp_kernel, n_on, mu_bkg, n_sigma=float(n_sigma))


def cash_upper_limit(n_on: Any, mu_bkg: Any, n_sigma: float = 3.0) -> Any:
    """Upper limit on the excess with known background (counts, float64).

    ``excess + errp(n_sigma)`` with the parameters of :func:`cash_errp`; ``n_sigma``
    defaults to 3 here.
    """
    return elementwise(_cash_ul_kernel, n_on, mu_bkg, n_sigma=float(n_sigma))


def cash_n_sig_matching_significance(mu_bkg: Any, significance: Any) -> Any:
    """Excess that gives the significance ``significance`` over a known background.

    The inverse of :func:`cash_sqrt_ts` in ``n_on - mu_bkg`` (Lambert W equation).

    Parameters
    ----------
    mu_bkg : array_like
        Known background counts (> 0).
    significance : array_like
        Target signed significance in sigma.

    Returns
    -------
    array_like of float64
        Excess counts; NaN where ``mu_bkg <= 0`` or the negative significance is out of
        reach (``significance**2 > 2 mu_bkg``).
    """
    return elementwise(_cash_matching_kernel, mu_bkg, significance)


# ------------------------------------------------------------------ on / off


def _alpha_kernel(acceptance, acceptance_off):
    a, a_off = as_float(acceptance), as_float(acceptance_off)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = a / a_off
    return np.where(a_off > 0, alpha, 0.0)


def _wstat_profile(n_on, n_off, alpha, mu_sig):
    """Profile statistic as a function of the excess ``mu`` (on top of ``mu_sig``)."""

    def stat(mu):
        return _wstat_kernel(
            n_on, n_off, alpha, mu_sig + mu, extra_terms=True, truncation_value=TRUNCATION_VALUE
        )

    return stat


def _onoff_inputs(n_on, n_off, alpha, mu_sig):
    arrays = np.broadcast_arrays(*(as_float(x) for x in (n_on, n_off, alpha, mu_sig)))
    return tuple(np.array(a) for a in arrays)


def _wstat_ts_kernel(n_on, n_off, alpha, mu_sig):
    n_on, n_off, alpha, mu_sig = _onoff_inputs(n_on, n_off, alpha, mu_sig)
    stat = _wstat_profile(n_on, n_off, alpha, mu_sig)
    excess = n_on - alpha * n_off - mu_sig
    return np.clip(stat(0.0) - stat(excess), 0.0, None)


def _wstat_sqrt_ts_kernel(n_on, n_off, alpha, mu_sig):
    excess = as_float(n_on) - as_float(alpha) * as_float(n_off) - as_float(mu_sig)
    return np.sign(excess) * np.sqrt(_wstat_ts_kernel(n_on, n_off, alpha, mu_sig))


def _wstat_err_kernel(n_on, n_off, alpha, mu_sig, *, n_sigma, side):
    n_on, n_off, alpha, mu_sig = _onoff_inputs(n_on, n_off, alpha, mu_sig)
    stat = _wstat_profile(n_on, n_off, alpha, mu_sig)
    excess = n_on - alpha * n_off - mu_sig
    target = stat(excess) + float(n_sigma) ** 2
    step = 2.0 * float(n_sigma) * (np.sqrt(n_on + alpha**2 * n_off) + 1.0)
    sign = 1.0 if side > 0 else -1.0

    def g(mu):
        return stat(mu) - target

    end = _expand(g, excess, sign * step)
    found = np.isfinite(end)
    end = np.where(found, end, excess + sign * step)
    lo, hi = (excess, end) if side > 0 else (end, excess)
    root = _bisect(g, lo, hi)
    dist = sign * (root - excess)
    if side > 0:
        return np.where(found, dist, np.nan)
    # no rise below the excess (alpha = 0 and n_on = 0: the excess sits on the boundary)
    return np.where(found, dist, n_on)


def _wstat_ul_kernel(n_on, n_off, alpha, mu_sig, *, n_sigma):
    excess = as_float(n_on) - as_float(alpha) * as_float(n_off) - as_float(mu_sig)
    errp = _wstat_err_kernel(n_on, n_off, alpha, mu_sig, n_sigma=n_sigma, side=1)
    return excess + errp


def _wstat_matching_kernel(n_off, alpha, significance):
    n_off, alpha, sig = (
        np.array(a) for a in np.broadcast_arrays(*map(as_float, (n_off, alpha, significance)))
    )
    bkg = alpha * n_off
    zero = np.zeros_like(bkg)

    def g(s):
        return _wstat_sqrt_ts_kernel(s + bkg, n_off, alpha, zero) - sig

    step = np.maximum(np.abs(sig) * np.sqrt(np.maximum(bkg, 1.0)), 1.0)
    up = _expand(g, zero, step)
    # negative significance: the excess lies in [-alpha n_off, 0], out of reach if even
    # n_on = 0 is not negative enough
    low_end = -bkg
    reachable = g(low_end) <= 0
    lo = np.where(sig >= 0, zero, low_end)
    hi = np.where(sig >= 0, np.where(np.isfinite(up), up, zero), zero)
    root = _bisect(g, lo, hi)
    ok = np.where(sig >= 0, np.isfinite(up), reachable)
    return np.where(ok, root, np.nan)


def _li_ma_kernel(n_on, n_off, alpha):
    n_on, n_off, alpha = as_float(n_on), as_float(n_off), as_float(alpha)
    total = n_on + n_off
    safe_total = np.where(total > 0, total, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_on = np.where(n_on > 0, n_on * np.log((1 + alpha) / alpha * n_on / safe_total), 0.0)
        t_off = np.where(n_off > 0, n_off * np.log((1 + alpha) * n_off / safe_total), 0.0)
    excess = n_on - alpha * n_off
    return np.sign(excess) * np.sqrt(2.0 * np.clip(t_on + t_off, 0.0, None))


def alpha_on_off(acceptance: Any, acceptance_off: Any) -> Any:
    """On/off ratio ``acceptance / acceptance_off``, 0 where ``acceptance_off <= 0``.

    Parameters
    ----------
    acceptance, acceptance_off : array_like
        On and off acceptances (background counts from the model, or exposures).

    Returns
    -------
    array_like of float64
        ``alpha`` (finite, >= 0 for non-negative inputs), as Gammapy's on/off datasets.
    """
    return elementwise(_alpha_kernel, acceptance, acceptance_off)


def wstat_excess(n_on: Any, n_off: Any, alpha: Any, mu_sig: Any = 0.0) -> Any:
    """Excess ``n_on - alpha n_off - mu_sig`` of an on/off measurement (counts)."""
    return elementwise(
        lambda n, f, a, m: as_float(n) - as_float(a) * as_float(f) - as_float(m),
        n_on,
        n_off,
        alpha,
        mu_sig,
    )


def wstat_error(n_on: Any, n_off: Any, alpha: Any) -> Any:
    """Symmetric error of the on/off excess, ``sqrt(n_on + alpha**2 n_off)`` (counts)."""
    return elementwise(
        lambda n, f, a: np.sqrt(as_float(n) + as_float(a) ** 2 * as_float(f)), n_on, n_off, alpha
    )


def wstat_ts(n_on: Any, n_off: Any, alpha: Any, mu_sig: Any = 0.0) -> Any:
    """Test statistic of an on/off measurement (>= 0).

    ``wstat(n_on, n_off, alpha, mu_sig) - wstat(n_on, n_off, alpha, n_on - alpha n_off)``:
    "signal ``mu_sig`` only" against the best excess, background profiled.

    Parameters
    ----------
    n_on, n_off : array_like
        On and off counts.
    alpha : array_like
        On/off acceptance ratio (finite, >= 0).
    mu_sig : array_like
        Known signal counts in the on region (null hypothesis), default 0.

    Returns
    -------
    array_like of float64
    """
    return elementwise(_wstat_ts_kernel, n_on, n_off, alpha, mu_sig)


def wstat_sqrt_ts(n_on: Any, n_off: Any, alpha: Any, mu_sig: Any = 0.0) -> Any:
    """Signed on/off significance ``sign(excess) sqrt(ts)`` (Li & Ma eq. 17 for ``mu_sig=0``).

    Parameters
    ----------
    n_on, n_off, alpha, mu_sig : array_like
        As :func:`wstat_ts`.

    Returns
    -------
    array_like of float64
        Significance in sigma; finite for all counts >= 0 and finite ``alpha >= 0``.
    """
    return elementwise(_wstat_sqrt_ts_kernel, n_on, n_off, alpha, mu_sig)


def wstat_errn(n_on: Any, n_off: Any, alpha: Any, mu_sig: Any = 0.0, n_sigma: float = 1.0) -> Any:
    """Downward error of the on/off excess from the profile likelihood (counts, >= 0).

    The distance below the best excess where wstat has risen by ``n_sigma**2``; ``n_on``
    where it never does (``alpha = 0`` and ``n_on = 0``).

    Parameters
    ----------
    n_on, n_off, alpha, mu_sig : array_like
        As :func:`wstat_ts`.
    n_sigma : float
        Confidence level in sigma.

    Returns
    -------
    array_like of float64
    """
    return elementwise(
        _wstat_err_kernel, n_on, n_off, alpha, mu_sig, n_sigma=float(n_sigma), side=-1
    )


def wstat_errp(n_on: Any, n_off: Any, alpha: Any, mu_sig: Any = 0.0, n_sigma: float = 1.0) -> Any:
    """Upward error of the on/off excess from the profile likelihood (counts, >= 0).

    The mirror of :func:`wstat_errn`, with the same parameters; float64.
    """
    return elementwise(
        _wstat_err_kernel, n_on, n_off, alpha, mu_sig, n_sigma=float(n_sigma), side=1
    )


def wstat_upper_limit(
    n_on: Any, n_off: Any, alpha: Any, mu_sig: Any = 0.0, n_sigma: float = 3.0
) -> Any:
    """Upper limit on the on/off excess: ``excess + errp(n_sigma)`` (counts, float64).

    The parameters are those of :func:`wstat_errp`; ``n_sigma`` defaults to 3 here.
    """
    return elementwise(_wstat_ul_kernel, n_on, n_off, alpha, mu_sig, n_sigma=float(n_sigma))


def wstat_n_sig_matching_significance(n_off: Any, alpha: Any, significance: Any) -> Any:
    """Excess that gives the on/off significance ``significance`` (inverse of sqrt_ts).

    Solves ``wstat_sqrt_ts(s + alpha n_off, n_off, alpha) = significance`` for ``s``.

    Parameters
    ----------
    n_off : array_like
        Off counts.
    alpha : array_like
        On/off acceptance ratio (> 0).
    significance : array_like
        Target signed significance in sigma.

    Returns
    -------
    array_like of float64
        Excess counts; NaN where a negative significance is out of reach (even
        ``n_on = 0`` is not that significant).
    """
    return elementwise(_wstat_matching_kernel, n_off, alpha, significance)


def li_ma_significance(n_on: Any, n_off: Any, alpha: Any) -> Any:
    """Li & Ma (1983) eq. 17 significance, signed with the excess ``n_on - alpha n_off``.

    ``sqrt(2) sqrt(n_on ln[(1 + a) / a n_on / (n_on + n_off)]
    + n_off ln[(1 + a) n_off / (n_on + n_off)])`` with zero-count terms dropped.

    Parameters
    ----------
    n_on, n_off : array_like
        On and off counts.
    alpha : array_like
        On/off acceptance ratio (> 0; ``alpha = 0`` with ``n_on > 0`` gives inf).

    Returns
    -------
    array_like of float64
        Significance in sigma; equals :func:`wstat_sqrt_ts` with ``mu_sig = 0``.
    """
    return elementwise(_li_ma_kernel, n_on, n_off, alpha)
