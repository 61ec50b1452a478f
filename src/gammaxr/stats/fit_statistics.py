"""Poisson fit statistics: cash, cstat and wstat (per bin, -2 log likelihood).

All functions are elementwise, array in / array out: they accept Python scalars, numpy
arrays, dask arrays (result lazy, one kernel call per block) and xarray objects (dims
broadcast by name, dask-backed data stays lazy); see :mod:`gammaxr.stats._elementwise`.
Computations are in float64.

Definitions (the same as Gammapy 2.1 where Gammapy's value is finite):

- ``cash(n, mu) = 2 (mu - n log mu)`` with ``mu`` floored at ``truncation_value`` (1e-25),
  so ``mu <= 0`` gives a large but finite value when ``n > 0``, and ``n = 0`` gives ``2 mu``.
- ``cstat(n, mu) = 2 (mu - n + n log(n / mu))``, both ``n`` and ``mu`` floored at the
  truncation value (the goodness-of-fit form of cash: zero where ``mu = n``).
- ``wstat(n_on, n_off, alpha, mu_sig)``: on/off Poisson likelihood with expected counts
  ``mu_sig + alpha * mu_bkg`` in the on and ``mu_bkg`` in the off measurement; ``mu_bkg`` is
  profiled out (:func:`wstat_mu_bkg`, the positive root of the score equation) unless given.
  With ``extra_terms`` the saturated-model terms are added, so the statistic is a
  goodness of fit: 0 at ``mu_sig = n_on - alpha * n_off``.

Edge cases of wstat, all finite: ``n_on = 0`` and ``n_off = 0`` drop their log terms;
``alpha = 0`` (no background acceptance in the on region) profiles ``mu_bkg = n_off``;
the on-region expectation is floored at the truncation value, as in cash, so a signal
driving it to zero or below costs a large finite amount instead of NaN. ``alpha`` must be
finite and >= 0: bins whose off acceptance is zero should use
:func:`gammaxr.stats.alpha_on_off` (alpha = 0 there) or be masked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import xlogy

from gammaxr.stats._elementwise import as_float, elementwise

__all__ = [
    "TRUNCATION_VALUE",
    "cash",
    "cash_sum",
    "cstat",
    "wstat",
    "wstat_gof_terms",
    "wstat_mu_bkg",
]

#: Expected counts below this value are set to it in the log terms (as Gammapy).
TRUNCATION_VALUE = 1e-25


def _check_truncation(truncation_value: float) -> float:
    value = float(truncation_value)
    if not value > 0:
        raise ValueError(f"truncation_value must be positive, got {truncation_value}")
    return value


def _cash_kernel(n_on, mu_on, truncation_value):
    mu = np.maximum(as_float(mu_on), truncation_value)
    return 2.0 * (mu - as_float(n_on) * np.log(mu))


def _cstat_kernel(n_on, mu_on, truncation_value):
    n = np.maximum(as_float(n_on), truncation_value)
    mu = np.maximum(as_float(mu_on), truncation_value)
    return 2.0 * (mu - n + n * (np.log(n) - np.log(mu)))


def _mu_bkg_kernel(n_on, n_off, alpha, mu_sig):
    n_on, n_off, alpha, mu_sig = (as_float(x) for x in (n_on, n_off, alpha, mu_sig))
    # mu_bkg solves alpha (alpha + 1) b^2 - c b - n_off mu_sig = 0 (score equation in b)
    c = alpha * (n_on + n_off) - (1.0 + alpha) * mu_sig
    d = np.sqrt(np.maximum(c**2 + 4.0 * alpha * (alpha + 1.0) * n_off * mu_sig, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        # the two algebraically equal forms of the positive root, each stable on its side
        plus = (c + d) / (2.0 * alpha * (alpha + 1.0))
        minus = 2.0 * n_off * mu_sig / (d - c)
    root = np.where(c > 0, plus, minus)
    # alpha = 0: the on measurement carries no background, the off alone fixes it; the 0/0
    # cases (c = d = 0) have the root n_off as well
    return np.where((alpha == 0) | ~np.isfinite(root), n_off, root)


def _gof_kernel(n_on, n_off):
    n_on, n_off = as_float(n_on), as_float(n_off)
    return 2.0 * (xlogy(n_on, n_on) - n_on + xlogy(n_off, n_off) - n_off)


def _wstat_kernel(n_on, n_off, alpha, mu_sig, mu_bkg=None, *, extra_terms, truncation_value):
    n_on, n_off, alpha, mu_sig = (as_float(x) for x in (n_on, n_off, alpha, mu_sig))
    if mu_bkg is None:
        mu_bkg = _mu_bkg_kernel(n_on, n_off, alpha, mu_sig)
    mu_bkg = np.maximum(as_float(mu_bkg), 0.0)
    mu_on = np.maximum(mu_sig + alpha * mu_bkg, truncation_value)
    mu_off = np.maximum(mu_bkg, truncation_value)
    if extra_terms:
        # deviance form: the saturated terms grouped with the model terms, which keeps
        # precision where the statistic is small next to n log n
        return 2.0 * (
            (mu_on - n_on)
            + (mu_bkg - n_off)
            + xlogy(n_on, n_on / mu_on)
            + xlogy(n_off, n_off / mu_off)
        )
    return 2.0 * (mu_on + mu_bkg - xlogy(n_on, mu_on) - xlogy(n_off, mu_off))


def cash(n_on: Any, mu_on: Any, truncation_value: float = TRUNCATION_VALUE) -> Any:
    """Cash statistic ``2 (mu - n log mu)`` per bin.

    Parameters
    ----------
    n_on : array_like
        Observed counts (any shape, dims or chunks; broadcast with ``mu_on``).
    mu_on : array_like
        Expected counts; values below ``truncation_value`` are set to it.
    truncation_value : float
        Positive floor of ``mu_on`` (default 1e-25, as Gammapy).

    Returns
    -------
    array_like of float64
        Statistic per bin, same kind as the inputs (numpy, dask or xarray).
    """
    return elementwise(
        _cash_kernel, n_on, mu_on, truncation_value=_check_truncation(truncation_value)
    )


def cash_sum(n_on: Any, mu_on: Any, mask: Any = None) -> float:
    """Summed cash statistic over the bins where ``mask`` is true (numpy boundary).

    Parameters
    ----------
    n_on, mu_on : numpy.ndarray
        Observed and expected counts (same shape). This is a fit's inner loop: the inputs
        are converted with ``np.asarray`` (dask inputs would be computed).
    mask : numpy.ndarray of bool, optional
        Bins to include; all if None.

    Returns
    -------
    float
        ``sum(cash(n_on, mu_on)[mask])``.
    """
    n = np.asarray(n_on, dtype=np.float64)
    mu = np.asarray(mu_on, dtype=np.float64)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        n, mu = n[mask], mu[mask]
    return float(np.sum(_cash_kernel(n, mu, TRUNCATION_VALUE)))


def cstat(n_on: Any, mu_on: Any, truncation_value: float = TRUNCATION_VALUE) -> Any:
    """C statistic ``2 (mu - n + n log(n / mu))`` per bin (cash minus its saturated value).

    Parameters
    ----------
    n_on : array_like
        Observed counts; values below ``truncation_value`` are set to it.
    mu_on : array_like
        Expected counts; values below ``truncation_value`` are set to it.
    truncation_value : float
        Positive floor (default 1e-25).

    Returns
    -------
    array_like of float64
        Statistic per bin (>= 0, zero where ``mu_on == n_on``).
    """
    return elementwise(
        _cstat_kernel, n_on, mu_on, truncation_value=_check_truncation(truncation_value)
    )


def wstat_mu_bkg(n_on: Any, n_off: Any, alpha: Any, mu_sig: Any) -> Any:
    """Profile-likelihood background ``mu_bkg`` of wstat (expected counts in the off region).

    The value of ``mu_bkg >= 0`` that maximises the on/off Poisson likelihood for a given
    signal ``mu_sig``: the positive root of
    ``alpha (alpha + 1) b^2 - (alpha (n_on + n_off) - (1 + alpha) mu_sig) b - n_off mu_sig = 0``,
    computed in the cancellation-free form; ``n_off`` where ``alpha == 0``.

    Parameters
    ----------
    n_on, n_off : array_like
        On and off counts (>= 0).
    alpha : array_like
        On/off acceptance ratio (finite, >= 0).
    mu_sig : array_like
        Expected signal counts in the on region.

    Returns
    -------
    array_like of float64
        ``mu_bkg`` per bin; ``alpha * mu_bkg`` is the background in the on region.
    """
    return elementwise(_mu_bkg_kernel, n_on, n_off, alpha, mu_sig)


def wstat_gof_terms(n_on: Any, n_off: Any) -> Any:
    """Saturated-model terms ``2 (n_on log n_on - n_on + n_off log n_off - n_off)`` of wstat.

    Parameters
    ----------
    n_on, n_off : array_like
        On and off counts; zero counts contribute zero.

    Returns
    -------
    array_like of float64
    """
    return elementwise(_gof_kernel, n_on, n_off)


def wstat(
    n_on: Any,
    n_off: Any,
    alpha: Any,
    mu_sig: Any,
    mu_bkg: Any = None,
    extra_terms: bool = True,
    truncation_value: float = TRUNCATION_VALUE,
) -> Any:
    """W statistic (on/off Poisson likelihood, background profiled) per bin.

    ``2 (mu_on + mu_bkg - n_on log mu_on - n_off log mu_bkg)`` with
    ``mu_on = mu_sig + alpha * mu_bkg``, plus :func:`wstat_gof_terms` if ``extra_terms``.

    Parameters
    ----------
    n_on, n_off, alpha : array_like
        On and off counts (>= 0) and the on/off acceptance ratio (finite, >= 0).
    mu_sig : array_like
        Expected signal counts in the on region (may be negative during a fit).
    mu_bkg : array_like, optional
        Expected off counts; profiled (:func:`wstat_mu_bkg`) if None.
    extra_terms : bool
        Add the saturated-model terms (goodness-of-fit form; default True, as Gammapy).
    truncation_value : float
        Floor of the expected counts in the log terms (default 1e-25).

    Returns
    -------
    array_like of float64
        Statistic per bin, finite for all finite inputs with ``alpha >= 0``.
    """
    arrays = (n_on, n_off, alpha, mu_sig) + (() if mu_bkg is None else (mu_bkg,))
    return elementwise(
        _wstat_kernel,
        *arrays,
        extra_terms=bool(extra_terms),
        truncation_value=_check_truncation(truncation_value),
    )
