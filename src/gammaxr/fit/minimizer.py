"""iminuit driver: minimise a statistic over a bounded parameter vector, then errors.

The statistic is -2 log likelihood, so ``errordef = 1``. Parameters are passed to Minuit as
``x / scale`` so that every internal variable is of order one and its initial step is 1
(the scale is the parameter's error when known, else 10 % of its value, 0.01 deg for angles,
0.1 for parameters at zero). :func:`gammapy_scales` gives Gammapy's conditioning instead
(``x / 10**floor(log10|x|)``, initial step the error in those units, else 1), which sets the
positions Migrad visits first, for fits that must follow Gammapy's path (its likelihood
depends on them: :mod:`gammaxr.fit.evaluators`). Migrad runs with ``tol`` and ``strategy`` (defaults 0.1 and 1,
as Gammapy), then Hesse for the covariance, then Minos on request.

The outcome is reported, never hidden: ``success`` is False when Migrad's minimum is not
valid, when the statistic is not finite at the start, or when Hesse fails, with a message
saying why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from iminuit import Minuit

__all__ = ["MinimizeResult", "default_scales", "gammapy_scales", "minimize", "scaled_minuit"]


@dataclass
class MinimizeResult:
    """What :func:`minimize` found.

    Attributes
    ----------
    x : numpy.ndarray, shape (n,)
        Best-fit values (the start values if the fit could not run).
    errors : numpy.ndarray, shape (n,)
        1-sigma errors from Hesse (NaN if unavailable).
    covariance : numpy.ndarray, shape (n, n)
        Covariance matrix (NaN if unavailable).
    fun : float
        Statistic at ``x``.
    success : bool
        Whether Migrad converged to a valid minimum and Hesse gave a covariance.
    message : str
        What happened.
    nfev : int
        Number of statistic evaluations.
    minos : dict
        ``{index: (lower, upper, valid)}`` signed Minos errors, for the parameters asked.
    """

    x: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    fun: float
    success: bool
    message: str
    nfev: int
    minos: dict = field(default_factory=dict)


def default_scales(x0: np.ndarray, units: Sequence[str], errors: Sequence[float]) -> np.ndarray:
    """Conditioning scales: the known error, else 0.01 for deg, 10 % of the value, or 0.1."""
    scales = np.empty(len(x0))
    for i, (x, unit, err) in enumerate(zip(x0, units, errors, strict=True)):
        if np.isfinite(err) and err > 0:
            scales[i] = err
        elif unit == "deg":
            scales[i] = 0.01
        elif x != 0 and np.isfinite(x):
            scales[i] = 0.1 * abs(x)
        else:
            scales[i] = 0.1
    return scales


def gammapy_scales(x0: np.ndarray, errors: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Gammapy 2.1's conditioning: scales and initial steps of its Minuit parameters.

    Gammapy's optimiser sees each parameter as ``x / scale`` with ``scale`` the power of ten
    at or below ``|x|`` (``scale_method="scale10"``; 1 for a parameter at zero), and starts
    Minuit with step ``error / scale``, or 1 where the error is unknown (zero or NaN).

    Parameters
    ----------
    x0 : numpy.ndarray, shape (n,)
        Start values (in the units Gammapy's parameters are in: gammaxr's canonical units
        are Gammapy's defaults).
    errors : sequence of float, shape (n,)
        Known errors (0 or NaN: unknown).

    Returns
    -------
    scales, steps : numpy.ndarray, shape (n,)
        For :func:`minimize`'s ``scales`` and ``steps``.
    """
    x0 = np.asarray(x0, dtype=float)
    errors = np.asarray(errors, dtype=float)
    finite = np.isfinite(x0) & (x0 != 0)
    exponent = np.floor(np.log10(np.abs(np.where(finite, x0, 1.0))))
    scales = np.where(finite, 10.0**exponent, 1.0)
    known = np.isfinite(errors) & (errors != 0)
    steps = np.where(known, errors / scales, 1.0)
    return scales, steps


def _limit(lo: float, hi: float, scale: float) -> tuple[float | None, float | None]:
    return (
        None if not math.isfinite(lo) else lo / scale,
        None if not math.isfinite(hi) else hi / scale,
    )


def _migrad_message(m: Minuit) -> str:
    fmin = m.fmin
    if fmin.is_valid:
        return "Optimization terminated successfully."
    reasons = []
    if fmin.has_reached_call_limit:
        reasons.append("call limit reached")
    if fmin.is_above_max_edm:
        reasons.append(f"EDM {fmin.edm:.3g} above goal {fmin.edm_goal:.3g}")
    if fmin.has_parameters_at_limit:
        reasons.append("parameters at limit")
    if not fmin.has_posdef_covar:
        reasons.append("covariance not positive definite")
    return "Optimization failed: " + (", ".join(reasons) or "invalid minimum")


def scaled_minuit(
    fcn: Callable[[np.ndarray], float],
    x0: Sequence[float],
    scales: Sequence[float],
    *,
    bounds: tuple[Sequence[float], Sequence[float]] | None = None,
    names: Sequence[str] | None = None,
    tol: float = 0.1,
    strategy: int = 1,
    steps: Sequence[float] | None = None,
) -> Minuit:
    """A Minuit object on ``x / scales`` (module docstring), ready for Migrad.

    Parameters
    ----------
    fcn : callable
        ``fcn(x) -> float``, the -2 log likelihood of the parameter vector ``x`` (non-finite
        values are passed to Minuit as 1e300).
    x0, scales : sequence of float, shape (n,)
        Start values and conditioning scales.
    bounds, names, tol, strategy, steps
        As for :func:`minimize`.

    Returns
    -------
    iminuit.Minuit
        Its values, errors and covariance are in units of ``scales``.
    """
    x0 = np.asarray(x0, dtype=float)
    scales = np.asarray(scales, dtype=float)
    names = [f"x{i}" for i in range(x0.size)] if names is None else list(names)

    def scaled(u: np.ndarray) -> float:
        value = fcn(np.asarray(u) * scales)
        return value if math.isfinite(value) else 1e300

    m = Minuit(scaled, x0 / scales, name=names)
    m.errordef = 1.0  # the statistic is -2 log L
    m.tol, m.strategy, m.print_level = tol, strategy, 0
    m.errors = np.ones(x0.size) if steps is None else np.asarray(steps, dtype=float)
    if bounds is not None:
        for i, (lo, hi) in enumerate(zip(*bounds, strict=True)):
            m.limits[i] = _limit(float(lo), float(hi), scales[i])
    return m


def minimize(
    fcn: Callable[[np.ndarray], float],
    x0: Sequence[float],
    *,
    bounds: tuple[Sequence[float], Sequence[float]] | None = None,
    scales: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
    minos: bool | Sequence[int] = False,
    tol: float = 0.1,
    strategy: int = 1,
    ncall: int | None = None,
    hesse: bool = True,
    steps: Sequence[float] | None = None,
) -> MinimizeResult:
    """Minimise ``fcn`` with Migrad, then Hesse (and Minos on request).

    Parameters
    ----------
    fcn : callable
        ``fcn(x) -> float``, the -2 log likelihood of the parameter vector ``x``.
    x0 : sequence of float, shape (n,)
        Start values.
    bounds : (lower, upper), optional
        Bounds (shape (n,) each; +-inf for none).
    scales : sequence of float, optional
        Conditioning scales (see :func:`default_scales`); default 1.
    names : sequence of str, optional
        Parameter names (for Minuit's messages).
    minos : bool or sequence of int
        Run Minos for all parameters (True) or for these indices.
    tol : float
        Migrad tolerance (EDM goal ``0.002 * tol``).
    strategy : int
        Minuit strategy (0 fast, 1 default, 2 careful).
    ncall : int, optional
        Call limit of Migrad (Minuit's default if None).
    hesse : bool
        Run Hesse after Migrad (False: errors and covariance are Migrad's estimates, for
        callers that need only the minimum, such as profile likelihoods).
    steps : sequence of float, optional
        Minuit's initial steps in units of ``scales`` (default 1; see
        :func:`gammapy_scales`).

    Returns
    -------
    MinimizeResult
    """
    x0 = np.asarray(x0, dtype=float)
    n = x0.size
    scales = np.ones(n) if scales is None else np.asarray(scales, dtype=float)
    names = [f"x{i}" for i in range(n)] if names is None else list(names)
    nan_cov = np.full((n, n), np.nan)
    calls = [0]

    def counted(x: np.ndarray) -> float:
        calls[0] += 1
        return fcn(x)

    # the start as Migrad's first call passes it (x0 / scales * scales, within rounding of
    # x0), so that this check is not a separate position for path-dependent statistics
    start = counted(x0 / scales * scales)
    if not math.isfinite(start):
        return MinimizeResult(
            x0, np.full(n, np.nan), nan_cov, start, False,
            f"statistic is not finite at the start values ({start})", calls[0],
        )  # fmt: skip
    m = scaled_minuit(
        counted, x0, scales, bounds=bounds, names=names, tol=tol, strategy=strategy, steps=steps
    )
    m.migrad(ncall=ncall)
    success, message = bool(m.valid), _migrad_message(m)
    if success and hesse:
        m.hesse()
        if not m.accurate or m.covariance is None:
            success, message = False, "Hesse failed: covariance not accurate"
    x = np.asarray(m.values) * scales
    cov = nan_cov
    if m.covariance is not None:
        cov = np.asarray(m.covariance) * np.outer(scales, scales)
    result = MinimizeResult(
        x=x,
        errors=np.sqrt(np.clip(np.diag(cov), 0, None)) if m.covariance is not None else cov[0],
        covariance=cov,
        fun=float(m.fval),
        success=success,
        message=message,
        nfev=calls[0],
    )
    todo = list(range(n)) if minos is True else list(minos or [])
    if todo and success:
        for i in todo:
            try:
                m.minos(i)
                me = m.merrors[names[i]]
                result.minos[i] = (me.lower * scales[i], me.upper * scales[i], bool(me.is_valid))
            except RuntimeError:
                result.minos[i] = (np.nan, np.nan, False)
        result.nfev = calls[0]
    return result
