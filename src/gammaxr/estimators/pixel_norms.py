"""Many independent one-parameter Cash fits at once: ``mu = b + norm * m`` per row.

The core of TS maps (:mod:`gammaxr.estimators.ts_map`): every row (a pixel of the map) has
its own bins (the kernel footprint around it) and its own ``norm``. Bins without counts add
``2 (b + norm * m)`` to the statistic, so per row only their sums ``B = sum b`` and ``M =
sum m`` are kept; the bins with counts are stored as flat *entries* ``(row, n, b, m)``.
Derivatives are then ``dstat/dnorm = 2 (M - sum n m / mu)`` and ``d2stat/dnorm2 = 2 sum n
m**2 / mu**2`` (sums over the row's entries, :func:`numpy.bincount`), so an iteration costs
a few passes over the entries, for all rows together.

The norm may be negative, down to ``lower``: the smallest value keeping every expected
count of the row >= 0 (bins without counts included; the caller provides it, or an
approximation from below where the exact value is not needed, see :func:`solve_norms`).

:func:`solve_norms` finds the best norm by Newton steps on the derivative, guarded by a
bracket (the statistic is convex); :func:`profile_crossings` finds where the statistic has
risen by a given amount on either side (profile errors and upper limits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PixelLikelihood", "profile_crossings", "solve_norms"]

#: Expected counts are floored at this value in logarithms (as :func:`gammaxr.stats.cash`).
TRUNCATION = 1e-25


@dataclass(frozen=True, eq=False)
class PixelLikelihood:
    """Cash statistics of ``n_rows`` independent norms (see the module docstring).

    Attributes
    ----------
    row : numpy.ndarray of int, shape (k,)
        Row of each entry (bin with counts).
    n, b, m : numpy.ndarray, shape (k,)
        Counts, fixed expectation and test-source counts per unit norm of each entry.
    B, M, N : numpy.ndarray, shape (n_rows,)
        Sums of ``b``, ``m`` and the counts over all bins of each row (with or without
        counts).
    """

    row: np.ndarray
    n: np.ndarray
    b: np.ndarray
    m: np.ndarray
    B: np.ndarray
    M: np.ndarray
    N: np.ndarray

    @property
    def n_rows(self) -> int:
        """Number of rows (independent norms)."""
        return self.B.size

    @classmethod
    def from_dense(cls, n: np.ndarray, b: np.ndarray, m: np.ndarray) -> PixelLikelihood:
        """From dense arrays of shape (n_rows, bins) (zero-padded rows)."""
        row, col = np.nonzero(n > 0)
        return cls(
            row=row,
            n=n[row, col].astype(float),
            b=b[row, col].astype(float),
            m=m[row, col].astype(float),
            B=b.sum(axis=1).astype(float),
            M=m.sum(axis=1).astype(float),
            N=n.sum(axis=1).astype(float),
        )

    def subset(self, keep: np.ndarray) -> PixelLikelihood:
        """The rows where ``keep`` (bool, shape (n_rows,)) is True, renumbered."""
        new_index = np.cumsum(keep) - 1
        sel = keep[self.row]
        return PixelLikelihood(
            row=new_index[self.row[sel]],
            n=self.n[sel],
            b=self.b[sel],
            m=self.m[sel],
            B=self.B[keep],
            M=self.M[keep],
            N=self.N[keep],
        )

    def _sum(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.row, weights=values, minlength=self.n_rows)

    def stat(self, norm: np.ndarray) -> np.ndarray:
        """``-2 log L`` (up to a constant in the counts) of every row at ``norm``."""
        mu = np.maximum(self.b + norm[self.row] * self.m, TRUNCATION)
        return 2.0 * (self.B + norm * self.M - self._sum(self.n * np.log(mu)))

    def stat_slope(self, norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Statistic and its derivative in the norm, per row."""
        mu = np.maximum(self.b + norm[self.row] * self.m, TRUNCATION)
        stat = 2.0 * (self.B + norm * self.M - self._sum(self.n * np.log(mu)))
        slope = 2.0 * (self.M - self._sum(self.n * self.m / mu))
        return stat, slope

    def derivatives(self, norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Half the first and second derivatives of the statistic (``g``, ``h``)."""
        mu = self.b + norm[self.row] * self.m
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = self.n * self.m / mu
            g = self.M - self._sum(ratio)
            h = self._sum(ratio * self.m / mu)
        return g, h

    def entry_lower(self) -> np.ndarray:
        """Smallest norm keeping the expectation of every entry (bin with counts) > 0;
        -inf for rows without entries."""
        out = np.full(self.n_rows, -np.inf)
        pos = self.m > 0
        np.maximum.at(out, self.row[pos], -self.b[pos] / self.m[pos])
        return out


def solve_norms(
    like: PixelLikelihood,
    lower: np.ndarray,
    guess: np.ndarray | None = None,
    *,
    rtol: float = 1e-4,
    max_iter: int = 100,
) -> dict[str, np.ndarray]:
    """Best norm of every row: Newton steps on the derivative inside a bracket.

    Parameters
    ----------
    like : PixelLikelihood
        The rows.
    lower : numpy.ndarray, shape (n_rows,)
        Domain edge of each row (exact where it can bind, see the module docstring).
    guess : numpy.ndarray, shape (n_rows,), optional
        Start values (clipped into the bracket).
    rtol : float
        Stop when a step is below ``rtol`` times the norm's 1-sigma error.
    max_iter : int
        Iteration limit.

    Returns
    -------
    dict of numpy.ndarray, shape (n_rows,)
        ``norm`` (NaN where the row has no test-source counts, ``M = 0``), ``err`` (1 sigma
        from the curvature), ``stat``, ``stat_null``, ``niter``, ``success``.
    """
    rows = like.n_rows
    has_model = like.M > 0
    edge = np.maximum(like.entry_lower(), lower)
    with np.errstate(divide="ignore", invalid="ignore"):
        hi = like.N / like.M  # g(x) >= M - N / x for b >= 0: the root lies below N / M
    lo = edge.copy()
    no_counts = like.N <= 0
    x = np.where(np.isfinite(guess), guess, 0.0) if guess is not None else np.zeros(rows)
    x = np.where(no_counts, lower, np.clip(x, lo, hi))
    niter = np.zeros(rows, dtype=int)
    active = has_model & ~no_counts
    # where the edge is set by bins without counts the statistic is finite there; if it
    # rises from the edge on, the minimum is at the edge
    at_edge = active & np.isfinite(lower) & (lower > like.entry_lower())
    if at_edge.any():
        g_edge, _ = like.derivatives(np.where(at_edge, lower, 0.0))
        at_edge &= g_edge >= 0
        x = np.where(at_edge, lower, x)
        active &= ~at_edge
    success = has_model.copy()
    todo = np.flatnonzero(active)
    sub = like.subset(active)
    finished = np.zeros(rows, dtype=bool)
    for it in range(1, max_iter + 1):
        if todo.size == 0:
            break
        xx = x[todo]
        g, h = sub.derivatives(xx)
        lo_t = np.where(g < 0, xx, lo[todo])
        hi_t = np.where(g >= 0, xx, hi[todo])
        lo[todo], hi[todo] = lo_t, hi_t
        with np.errstate(divide="ignore", invalid="ignore"):
            new = xx - g / h
            tol = rtol / np.sqrt(h)
        outside = ~np.isfinite(new) | (new <= lo_t) | (new >= hi_t)
        new = np.where(outside, 0.5 * (lo_t + hi_t), new)
        done = (np.abs(new - xx) <= tol) | (hi_t - lo_t <= tol)
        running = ~finished[todo]
        x[todo[running]] = new[running]
        niter[todo[running]] = it
        finished[todo[done]] = True
        if finished[todo].all():
            todo = todo[:0]
            break
        if finished[todo].mean() > 0.25:  # drop finished rows (copying entries costs a pass)
            keep = ~finished[todo]
            sub, todo = sub.subset(keep), todo[keep]
    success[todo] = False
    x = np.where(has_model, np.maximum(x, lower), np.nan)
    finite = np.nan_to_num(x)
    _, h = like.derivatives(finite)
    with np.errstate(divide="ignore"):
        err = np.where(has_model, 1.0 / np.sqrt(h), np.nan)
    return {
        "norm": x,
        "err": err,
        "stat": like.stat(finite),
        "stat_null": like.stat(np.zeros(rows)),
        "niter": niter,
        "success": success,
    }


def profile_crossings(
    like: PixelLikelihood,
    best: np.ndarray,
    stat_best: np.ndarray,
    err: np.ndarray,
    lower: np.ndarray,
    level: float,
    side: int,
    max_iter: int = 50,
) -> np.ndarray:
    """Norm where each row's statistic has risen by ``level`` above its minimum.

    Parameters
    ----------
    like : PixelLikelihood
        The rows.
    best, stat_best, err : numpy.ndarray, shape (n_rows,)
        Best norm, statistic there and 1-sigma error (:func:`solve_norms`).
    lower : numpy.ndarray, shape (n_rows,)
        Domain edge of each row.
    level : float
        Rise of the statistic (``n_sigma**2``).
    side : {+1, -1}
        Above or below the best norm.
    max_iter : int
        Newton iteration limit.

    Returns
    -------
    numpy.ndarray, shape (n_rows,)
        The crossing; NaN where there is none inside the domain. Newton iterations start
        beyond the crossing and approach it monotonically (the statistic is convex).
    """
    out = np.full(best.size, np.nan)
    scale = np.where(np.isfinite(err) & (err > 0), err, 1.0)
    edge = np.maximum(like.entry_lower(), lower)
    target = stat_best + level
    keep = np.isfinite(best)
    if side < 0:  # no crossing if the statistic stays below the target up to the domain edge
        finite = keep & np.isfinite(edge)
        at_edge = like.stat(np.where(finite, edge, 0.0))
        keep &= ~(finite & (at_edge < target))
    rows = np.flatnonzero(keep)
    sub = like.subset(keep)
    x = best[rows] + side * 2.0 * np.sqrt(level) * scale[rows]
    if side < 0:
        x = np.where(x <= edge[rows], 0.5 * (best[rows] + edge[rows]), x)
    for _ in range(60):  # move out until beyond the crossing
        stat = sub.stat(x)
        short = stat < target[rows]
        if not short.any():
            break
        further = 2.0 * x - best[rows]
        if side < 0:  # never leave the domain: approach its edge instead
            close = further <= edge[rows] + 1e-6 * (x - edge[rows])
            further = np.where(close, 0.5 * (x + edge[rows]), further)
        x = np.where(short, further, x)
    for _ in range(max_iter):
        if rows.size == 0:
            break
        stat, slope = sub.stat_slope(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = x - (stat - target[rows]) / slope
        new = np.where(np.isfinite(new), new, x)
        # converged in the statistic (steps can be tiny far from the crossing near the edge)
        done = (np.abs(stat - target[rows]) <= 1e-9 * level) | (
            np.abs(new - x) <= 1e-13 * scale[rows]
        )
        out[rows[done]] = new[done]
        if done.all():
            break
        rows, x = rows[~done], new[~done]
        sub = sub.subset(~done)
    return out
