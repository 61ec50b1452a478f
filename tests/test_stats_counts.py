"""Counts statistics: Li & Ma, ts and significance, asymmetric errors and upper limits on the
TS + n_sigma^2 contour, the matching-excess inverse, zero-count cases, Poisson truth, and
numpy / dask / xarray parity."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gammaxr.stats import (
    alpha_on_off,
    cash,
    cash_errn,
    cash_error,
    cash_errp,
    cash_excess,
    cash_n_sig_matching_significance,
    cash_sqrt_ts,
    cash_ts,
    cash_upper_limit,
    li_ma_significance,
    wstat,
    wstat_errn,
    wstat_error,
    wstat_errp,
    wstat_excess,
    wstat_n_sig_matching_significance,
    wstat_sqrt_ts,
    wstat_ts,
    wstat_upper_limit,
)

counts = st.integers(min_value=0, max_value=300).map(float)
alphas = st.floats(min_value=1e-2, max_value=10.0)
backgrounds = st.floats(min_value=0.05, max_value=300.0)
sigmas = st.sampled_from([1.0, 2.0, 3.0])


def _li_ma(n_on, n_off, alpha):
    """Li & Ma (1983) eq. 17, written out independently (n_on, n_off > 0)."""
    total = n_on + n_off
    s2 = 2 * (
        n_on * np.log((1 + alpha) / alpha * n_on / total)
        + n_off * np.log((1 + alpha) * n_off / total)
    )
    return np.sign(n_on - alpha * n_off) * np.sqrt(s2)


# ----------------------------------------------------------------------------- Li & Ma


@settings(max_examples=200, deadline=None)
@given(n_on=st.integers(1, 500).map(float), n_off=st.integers(1, 500).map(float), alpha=alphas)
def test_li_ma_formula_and_wstat_significance(n_on, n_off, alpha):
    expected = _li_ma(n_on, n_off, alpha)
    assert li_ma_significance(n_on, n_off, alpha) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert wstat_sqrt_ts(n_on, n_off, alpha) == pytest.approx(expected, rel=1e-7, abs=1e-7)
    assert wstat_ts(n_on, n_off, alpha) == pytest.approx(expected**2, rel=1e-7, abs=1e-7)


def test_gammapy_counts_statistics_values():
    # Gammapy 2.1 WStatCountsStatistic / CashCountsStatistic on these inputs (regression)
    n_on = np.array([13.0, 5, 0, 1000])
    n_off = np.array([11.0, 20, 7, 1900])
    alpha = np.array([0.5, 0.1, 0.3, 0.5])
    np.testing.assert_allclose(
        wstat_sqrt_ts(n_on, n_off, alpha),
        [2.092832368493, 1.664703800454, -1.916533251093, 1.309381932922],
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        wstat_errn(n_on, n_off, alpha),
        [3.749521826862, 1.97893553317, 0.896720421774, 38.236821624891],
        rtol=1e-7,
    )
    np.testing.assert_allclose(
        wstat_errp(n_on, n_off, alpha),
        [4.236475091502, 2.614264056058, 0.763450148728, 38.581417028256],
        rtol=1e-7,
    )
    np.testing.assert_allclose(
        wstat_upper_limit(n_on, n_off, alpha, n_sigma=3),
        [22.107926984601, 13.053351034017, 2.663450148728, 166.857989519075],
        rtol=1e-7,
    )
    on, bkg = np.array([13.0, 5, 1000]), np.array([5.5, 2.0, 950.0])
    np.testing.assert_allclose(
        cash_sqrt_ts(on, bkg), [2.713896257376, 1.778456442745, 1.60828752874], rtol=1e-9
    )
    np.testing.assert_allclose(
        cash_errn(on, bkg), [3.280211558352, 1.915915841041, 31.290325389779], rtol=1e-9
    )
    np.testing.assert_allclose(
        cash_errp(on, bkg), [3.946309124623, 2.581105807125, 31.956984649155], rtol=1e-9
    )
    np.testing.assert_allclose(
        cash_upper_limit(on, bkg, n_sigma=3),
        [21.502965241566, 12.989590358164, 147.891748707409],
        rtol=1e-9,
    )


# ------------------------------------------------------------------------ known background


@settings(max_examples=200, deadline=None)
@given(n_on=counts, mu_bkg=backgrounds)
def test_cash_ts_closed_form(n_on, mu_bkg):
    expected = 2 * (mu_bkg - n_on) + (2 * n_on * np.log(n_on / mu_bkg) if n_on > 0 else 0)
    assert cash_ts(n_on, mu_bkg) == pytest.approx(max(expected, 0), rel=1e-8, abs=1e-8)
    sig = cash_sqrt_ts(n_on, mu_bkg)
    assert sig**2 == pytest.approx(cash_ts(n_on, mu_bkg), rel=1e-10, abs=1e-12)
    assert np.sign(sig) == np.sign(n_on - mu_bkg) or sig == 0
    assert cash_excess(n_on, mu_bkg) == n_on - mu_bkg
    assert cash_error(n_on) == pytest.approx(np.sqrt(n_on))


@settings(max_examples=200, deadline=None)
@given(n_on=counts, mu_bkg=backgrounds, n_sigma=sigmas)
def test_cash_errors_sit_on_the_ts_contour(n_on, mu_bkg, n_sigma):
    excess = n_on - mu_bkg
    errn = cash_errn(n_on, mu_bkg, n_sigma)
    errp = cash_errp(n_on, mu_bkg, n_sigma)
    assert np.isfinite(errn) and np.isfinite(errp) and errn >= 0 and errp > 0

    def stat(s):
        return cash(n_on, mu_bkg + s)

    target = stat(excess) + n_sigma**2
    assert stat(excess + errp) == pytest.approx(target, rel=1e-7, abs=1e-7)
    if n_on > 0:
        assert stat(excess - errn) == pytest.approx(target, rel=1e-7, abs=1e-7)
        assert stat(excess - 0.99 * errn) < target  # inside the interval: below the contour
    else:
        assert errn == 0  # the excess sits on the physical boundary (no counts at all)
    assert stat(excess + 0.99 * errp) < target
    ul = cash_upper_limit(n_on, mu_bkg, n_sigma)
    assert ul == pytest.approx(excess + errp, rel=1e-12, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(mu_bkg=backgrounds, significance=st.floats(min_value=-8, max_value=10))
def test_cash_matching_excess_inverts_the_significance(mu_bkg, significance):
    s = cash_n_sig_matching_significance(mu_bkg, significance)
    if significance < 0 and significance**2 > 2 * mu_bkg:
        assert np.isnan(s)  # even zero counts are not that deficient
        return
    assert cash_sqrt_ts(s + mu_bkg, mu_bkg) == pytest.approx(significance, abs=1e-6)


# ---------------------------------------------------------------------------- on / off


@settings(max_examples=150, deadline=None)
@given(n_on=counts, n_off=counts, alpha=alphas, n_sigma=sigmas)
def test_wstat_errors_bracket_ts_plus_n_sigma_squared(n_on, n_off, alpha, n_sigma):
    excess = n_on - alpha * n_off
    errn = wstat_errn(n_on, n_off, alpha, n_sigma=n_sigma)
    errp = wstat_errp(n_on, n_off, alpha, n_sigma=n_sigma)
    assert np.isfinite(errn) and np.isfinite(errp) and errn > 0 and errp > 0

    def stat(s):
        return wstat(n_on, n_off, alpha, s)

    target = stat(excess) + n_sigma**2
    for bound in (excess - errn, excess + errp):
        assert stat(bound) == pytest.approx(target, rel=1e-6, abs=1e-6)
        inner = excess + 0.98 * (bound - excess)
        assert stat(inner) < target
    assert wstat_upper_limit(n_on, n_off, alpha, n_sigma=n_sigma) == pytest.approx(
        excess + errp, rel=1e-9, abs=1e-9
    )


@settings(max_examples=150, deadline=None)
@given(n_on=counts, n_off=counts, alpha=alphas, mu_sig=st.floats(0, 50))
def test_wstat_ts_with_known_signal(n_on, n_off, alpha, mu_sig):
    ts = wstat_ts(n_on, n_off, alpha, mu_sig)
    best = n_on - alpha * n_off
    expected = wstat(n_on, n_off, alpha, mu_sig) - wstat(n_on, n_off, alpha, best)
    assert ts == pytest.approx(max(expected, 0), rel=1e-8, abs=1e-8)
    excess = wstat_excess(n_on, n_off, alpha, mu_sig)
    assert excess == pytest.approx(best - mu_sig)
    sig = wstat_sqrt_ts(n_on, n_off, alpha, mu_sig)
    assert sig == pytest.approx(np.sign(excess) * np.sqrt(ts), abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(n_off=counts, alpha=alphas, significance=st.floats(-6, 8))
@example(n_off=297.0, alpha=9.200827646357379, significance=9.021935008086163e-232)
def test_wstat_matching_excess_inverts_the_significance(n_off, alpha, significance):
    s = wstat_n_sig_matching_significance(n_off, alpha, significance)
    floor = wstat_sqrt_ts(0.0, n_off, alpha)  # the most negative reachable significance
    if significance < floor:
        assert np.isnan(s)
        return
    # the inverse is ill-conditioned where the significance grows like sqrt(excess) (n_off = 0,
    # significance -> 0): check that the root brackets the target within a tiny excess step
    n_on = s + alpha * n_off
    step = 1e-9 * (1.0 + abs(n_on))
    below = wstat_sqrt_ts(max(n_on - step, 0.0), n_off, alpha)
    above = wstat_sqrt_ts(n_on + step, n_off, alpha)
    # near TS = 0 the significance carries the rounding of TS, a difference of terms of order
    # n_on + n_off: sqrt(eps * (n_on + n_off)), 1e-6 at a few thousand counts (n_off 297,
    # alpha 9.2 gave 1.0008e-6 at a target of 0)
    noise = 1e-6 + 4 * np.sqrt(np.finfo(float).eps * (n_on + n_off))
    assert below - noise <= significance <= above + noise
    if n_off > 0 or abs(significance) > 0.1:  # well conditioned: the significance itself
        assert wstat_sqrt_ts(n_on, n_off, alpha) == pytest.approx(significance, abs=noise)


def test_wstat_errors_approach_cash_for_a_large_off_region():
    n_on = np.array([0.0, 3, 20, 150])
    mu_bkg = np.array([2.0, 1.5, 12, 140])
    alpha = 1e-6
    n_off = mu_bkg / alpha
    np.testing.assert_allclose(wstat_sqrt_ts(n_on, n_off, alpha), cash_sqrt_ts(n_on, mu_bkg), 2e-3)
    np.testing.assert_allclose(wstat_errp(n_on, n_off, alpha), cash_errp(n_on, mu_bkg), 2e-3)
    np.testing.assert_allclose(
        wstat_errn(n_on[1:], n_off[1:], alpha), cash_errn(n_on[1:], mu_bkg[1:]), 2e-3
    )
    assert wstat_error(n_on, n_off, alpha) == pytest.approx(np.sqrt(n_on + alpha * mu_bkg))


@pytest.mark.parametrize("n_on", [0.0, 5.0])
@pytest.mark.parametrize("n_off", [0.0, 8.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_zero_count_cases_are_finite(n_on, n_off, alpha):
    values = {
        "sqrt_ts": wstat_sqrt_ts(n_on, n_off, alpha),
        "ts": wstat_ts(n_on, n_off, alpha),
        "errn": wstat_errn(n_on, n_off, alpha),
        "errp": wstat_errp(n_on, n_off, alpha),
        "ul": wstat_upper_limit(n_on, n_off, alpha),
        "error": wstat_error(n_on, n_off, alpha),
        "cash_sqrt_ts": cash_sqrt_ts(n_on, n_off),
        "cash_errn": cash_errn(n_on, n_off),
        "cash_ul": cash_upper_limit(n_on, n_off),
    }
    for name, value in values.items():
        assert np.isfinite(value), name
    if n_on == 0 and n_off == 0:
        assert values["sqrt_ts"] == 0 and values["ts"] == 0
    if n_on == 0 and n_off > 0 and alpha > 0:
        assert values["sqrt_ts"] < 0
        expected = -np.sqrt(2 * n_off * np.log(1 + alpha))  # Li & Ma with n_on = 0
        assert values["sqrt_ts"] == pytest.approx(expected)


@settings(max_examples=150, deadline=None)
@given(
    n_on=counts,
    n_off=counts,
    alpha=st.one_of(st.just(0.0), alphas),
    mu_bkg=st.one_of(st.just(0.0), backgrounds),
)
def test_every_output_is_finite_for_any_counts(n_on, n_off, alpha, mu_bkg):
    values = [
        wstat_sqrt_ts(n_on, n_off, alpha),
        wstat_errn(n_on, n_off, alpha),
        wstat_errp(n_on, n_off, alpha),
        wstat_upper_limit(n_on, n_off, alpha),
        wstat_excess(n_on, n_off, alpha),
        cash_sqrt_ts(n_on, mu_bkg),
        cash_errn(n_on, mu_bkg),
        cash_errp(n_on, mu_bkg),
        cash_upper_limit(n_on, mu_bkg),
    ]
    assert np.all(np.isfinite(values)), values
    assert values[1] >= 0 and values[2] > 0 and values[6] >= 0 and values[7] > 0


def test_alpha_on_off_is_zero_without_off_acceptance():
    alpha = alpha_on_off(np.array([1.0, 2.0, 0.0]), np.array([4.0, 0.0, 0.0]))
    np.testing.assert_array_equal(alpha, [0.25, 0.0, 0.0])


# -------------------------------------------------------------------------- known truth


def test_pure_background_significance_is_standard_normal():
    rng = np.random.default_rng(42)
    size = 20000
    mu_bkg, alpha = 40.0, 0.1
    n_on = rng.poisson(mu_bkg, size).astype(float)
    n_off = rng.poisson(mu_bkg / alpha, size).astype(float)
    for sig in (cash_sqrt_ts(n_on, mu_bkg), wstat_sqrt_ts(n_on, n_off, alpha)):
        assert abs(sig.mean()) < 0.05
        assert sig.std() == pytest.approx(1.0, abs=0.04)
        # tail: the fraction above 2 sigma is the Gaussian 2.3 %
        assert np.mean(sig > 2) == pytest.approx(0.0228, abs=0.006)
    # the 1 sigma interval covers the true (zero) excess 68 % of the time
    excess = n_on - alpha * n_off
    errn, errp = wstat_errn(n_on, n_off, alpha), wstat_errp(n_on, n_off, alpha)
    covered = (excess - errn <= 0) & (0 <= excess + errp)
    assert covered.mean() == pytest.approx(0.683, abs=0.02)


# ------------------------------------------------------------------ numpy / dask / xarray


def test_lazy_inputs_agree_with_numpy(raise_on_compute):
    rng = np.random.default_rng(1)
    n_on = rng.poisson(6, (4, 30)).astype(float)
    n_off = rng.poisson(30, (4, 30)).astype(float)
    alpha = rng.uniform(0.05, 0.5, (4, 30))
    funcs = {
        "sqrt_ts": (wstat_sqrt_ts, {}),
        "errn": (wstat_errn, {"n_sigma": 2.0}),
        "ul": (wstat_upper_limit, {}),
    }
    lazy = [da.from_array(x, chunks=(2, 15)) for x in (n_on, n_off, alpha)]
    dims = ("energy", "lon")
    arrays = [xr.DataArray(x, dims=dims) for x in lazy]
    results = {}
    for name, (func, kw) in funcs.items():
        results[name] = (func(*lazy, **kw), func(*arrays, **kw), func(n_on, n_off, alpha, **kw))
        assert isinstance(results[name][0], da.Array)
        assert results[name][1].chunks == ((2, 2), (15, 15))
    cash_lazy = cash_sqrt_ts(arrays[0], xr.DataArray(6.0))
    assert cash_lazy.chunks is not None
    with dask.config.set(scheduler="sync"):
        for on_dask, on_xr, on_numpy in results.values():
            np.testing.assert_allclose(on_dask.compute(), on_numpy, rtol=1e-12)
            np.testing.assert_allclose(on_xr.values, on_numpy, rtol=1e-12)
        np.testing.assert_allclose(cash_lazy.values, cash_sqrt_ts(n_on, 6.0))
