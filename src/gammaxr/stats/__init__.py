"""Likelihood statistics for Poisson counts: array in, array out (numpy, dask, xarray).

- :mod:`gammaxr.stats.fit_statistics`: per-bin ``cash``, ``cstat``, ``wstat`` (profiled
  background ``wstat_mu_bkg``), ``cash_sum`` for fits.
- :mod:`gammaxr.stats.counts_statistics`: excess, ``ts``, signed ``sqrt_ts``, errors,
  asymmetric errors, upper limits and the excess matching a significance, for a known
  background (``cash_*``) and for on/off measurements (``wstat_*``, Li & Ma).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gammaxr._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from gammaxr.stats.counts_statistics import (
        alpha_on_off,
        cash_errn,
        cash_error,
        cash_errp,
        cash_excess,
        cash_n_sig_matching_significance,
        cash_sqrt_ts,
        cash_ts,
        cash_upper_limit,
        li_ma_significance,
        wstat_errn,
        wstat_error,
        wstat_errp,
        wstat_excess,
        wstat_n_sig_matching_significance,
        wstat_sqrt_ts,
        wstat_ts,
        wstat_upper_limit,
    )
    from gammaxr.stats.fit_statistics import (
        TRUNCATION_VALUE,
        cash,
        cash_sum,
        cstat,
        wstat,
        wstat_gof_terms,
        wstat_mu_bkg,
    )

__all__ = [
    "TRUNCATION_VALUE",
    "alpha_on_off",
    "cash",
    "cash_errn",
    "cash_errp",
    "cash_error",
    "cash_excess",
    "cash_n_sig_matching_significance",
    "cash_sqrt_ts",
    "cash_sum",
    "cash_ts",
    "cash_upper_limit",
    "cstat",
    "li_ma_significance",
    "wstat",
    "wstat_errn",
    "wstat_errp",
    "wstat_error",
    "wstat_excess",
    "wstat_gof_terms",
    "wstat_mu_bkg",
    "wstat_n_sig_matching_significance",
    "wstat_sqrt_ts",
    "wstat_ts",
    "wstat_upper_limit",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
