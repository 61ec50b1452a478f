"""Fit statistics: closed forms, the wstat profile against a numerical minimisation,
edge cases (zero counts, zero alpha) and numpy / dask / xarray parity."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from gammaxr.stats import (
    TRUNCATION_VALUE,
    cash,
    cash_sum,
    cstat,
    wstat,
    wstat_gof_terms,
    wstat_mu_bkg,
)

counts = st.integers(min_value=0, max_value=200).map(float)
alphas = st.floats(min_value=1e-3, max_value=20.0)
signals = st.floats(min_value=0.0, max_value=100.0)


def _log_like(n_on, n_off, alpha, mu_sig, b):
    """-2 log L of the on/off Poisson model, without constant terms (written out here)."""
    mu_on = mu_sig + alpha * b
    stat = 2 * (mu_on + b)
    if n_on > 0:
        stat -= 2 * n_on * np.log(mu_on)
    if n_off > 0:
        stat -= 2 * n_off * np.log(b)
    return stat


# ----------------------------------------------------------------------------- cash / cstat


def test_cash_closed_form_and_truncation():
    rng = np.random.default_rng(0)
    n = rng.integers(0, 50, 200).astype(float)
    mu = rng.uniform(0.01, 60, 200)
    np.testing.assert_allclose(cash(n, mu), 2 * (mu - n * np.log(mu)), rtol=1e-13)
    # mu <= truncation: the floor is used; n = 0 leaves 2 mu
    for bad in (0.0, -3.0, 1e-30):
        expected = 2 * (TRUNCATION_VALUE - 4 * np.log(TRUNCATION_VALUE))
        assert cash(4, bad) == pytest.approx(expected)
    np.testing.assert_allclose(cash(0, mu), 2 * mu)
    assert cash(0, 0.0) == pytest.approx(2 * TRUNCATION_VALUE)
    assert cash(2, 1.0, truncation_value=2.0) == pytest.approx(2 * (2 - 2 * np.log(2)))
    with pytest.raises(ValueError, match="truncation"):
        cash(1, 1, truncation_value=0)
    assert cash_sum(n, mu) == pytest.approx(float(np.sum(cash(n, mu))))
    mask = n > 10
    assert cash_sum(n, mu, mask) == pytest.approx(float(np.sum(cash(n, mu)[mask])))


@settings(max_examples=200, deadline=None)
@given(n=counts, mu=st.floats(min_value=1e-6, max_value=500.0))
def test_cstat_is_cash_minus_saturated(n, mu):
    c = cstat(n, mu)
    assert c >= -1e-9
    if n > 0:
        assert c == pytest.approx(cash(n, mu) - cash(n, n), abs=1e-8, rel=1e-10)
    else:
        assert c == pytest.approx(2 * mu, abs=1e-20, rel=1e-12)
    assert cstat(n, n) == pytest.approx(0, abs=1e-20 + 1e-12 * n)


# --------------------------------------------------------------------------------- wstat


@settings(max_examples=300, deadline=None)
@given(n_on=counts, n_off=counts, alpha=alphas, mu_sig=signals)
def test_wstat_equals_numerically_profiled_likelihood(n_on, n_off, alpha, mu_sig):
    ours = wstat(n_on, n_off, alpha, mu_sig, extra_terms=False)
    b_hat = wstat_mu_bkg(n_on, n_off, alpha, mu_sig)
    assert np.isfinite(ours) and b_hat >= 0
    hi = 10 * (n_on + n_off + mu_sig + 10) / min(alpha, 1.0)
    res = minimize_scalar(
        lambda b: _log_like(n_on, n_off, alpha, mu_sig, b),
        bounds=(1e-12, hi),
        method="bounded",
        options={"xatol": 1e-10},
    )
    # the closed-form profile is the minimum: no b does better, the optimiser reaches it
    assert ours <= res.fun + 1e-6 * (1 + abs(res.fun))
    assert ours == pytest.approx(res.fun, rel=1e-6, abs=1e-6)
    if b_hat > 0:
        assert ours == pytest.approx(_log_like(n_on, n_off, alpha, mu_sig, b_hat), rel=1e-10)


@settings(max_examples=200, deadline=None)
@given(n_on=counts, n_off=counts, alpha=alphas, mu_sig=signals)
def test_wstat_mu_bkg_solves_the_score_equation(n_on, n_off, alpha, mu_sig):
    b = wstat_mu_bkg(n_on, n_off, alpha, mu_sig)
    c = alpha * (n_on + n_off) - (1 + alpha) * mu_sig
    residual = alpha * (alpha + 1) * b**2 - c * b - n_off * mu_sig
    scale = alpha * (alpha + 1) * b**2 + abs(c * b) + n_off * mu_sig + 1e-12
    assert abs(residual) <= 1e-9 * scale
    assert b >= 0


@settings(max_examples=200, deadline=None)
@given(n_on=counts, n_off=counts, alpha=alphas)
def test_wstat_is_zero_at_the_best_signal(n_on, n_off, alpha):
    best = n_on - alpha * n_off
    assert wstat(n_on, n_off, alpha, best) == pytest.approx(0, abs=1e-7 * (1 + n_on + n_off))
    # and positive elsewhere (goodness-of-fit form)
    assert wstat(n_on, n_off, alpha, best + 1.0) > 0
    assert wstat_mu_bkg(n_on, n_off, alpha, best) == pytest.approx(n_off, abs=1e-7 * (1 + n_off))


def test_wstat_given_background_and_gof_terms():
    n_on, n_off, alpha, mu_sig, mu_bkg = 7.0, 12.0, 0.3, 2.5, 9.0
    mu_on = mu_sig + alpha * mu_bkg
    expected = 2 * (mu_on + mu_bkg - n_on * np.log(mu_on) - n_off * np.log(mu_bkg))
    assert wstat(n_on, n_off, alpha, mu_sig, mu_bkg, extra_terms=False) == pytest.approx(expected)
    gof = 2 * (n_on * np.log(n_on) - n_on + n_off * np.log(n_off) - n_off)
    assert wstat_gof_terms(n_on, n_off) == pytest.approx(gof)
    assert wstat(n_on, n_off, alpha, mu_sig, mu_bkg) == pytest.approx(expected + gof)
    assert wstat_gof_terms(0.0, 0.0) == 0


def test_wstat_matches_gammapy_values():
    # Gammapy 2.1 gammapy.stats.wstat for these inputs (computed once, kept as a regression)
    n_on = np.array([13.0, 5, 0, 1000])
    n_off = np.array([11.0, 20, 7, 1900])
    alpha = np.array([0.5, 0.1, 0.3, 0.5])
    mu_sig = np.array([3.0, 1, 0.5, 10])
    gammapy = [1.470660464248, 1.025023387721, 4.673099702545, 1.094788904273]
    np.testing.assert_allclose(wstat(n_on, n_off, alpha, mu_sig), gammapy, rtol=1e-10)


@pytest.mark.parametrize("n_on", [0.0, 4.0])
@pytest.mark.parametrize("n_off", [0.0, 9.0])
@pytest.mark.parametrize("alpha", [0.0, 1e-12, 0.2])
@pytest.mark.parametrize("mu_sig", [0.0, 1e-30, 3.0, -2.0])
def test_wstat_edge_cases_are_finite(n_on, n_off, alpha, mu_sig):
    stat = wstat(n_on, n_off, alpha, mu_sig)
    b = wstat_mu_bkg(n_on, n_off, alpha, mu_sig)
    assert np.isfinite(stat) and np.isfinite(b) and b >= 0
    assert stat >= -1e-9
    if n_on == 0 and n_off == 0 and mu_sig == 0:
        assert stat == pytest.approx(0, abs=1e-20)


def test_wstat_zero_alpha_is_the_limit_and_the_off_only_background():
    n_on, n_off, mu_sig = 6.0, 15.0, 4.0
    # no background in the on region: the on counts follow the signal alone
    at_zero = wstat(n_on, n_off, 0.0, mu_sig)
    assert wstat_mu_bkg(n_on, n_off, 0.0, mu_sig) == n_off
    assert at_zero == pytest.approx(cstat(n_on, mu_sig), rel=1e-12)
    assert wstat(n_on, n_off, 1e-9, mu_sig) == pytest.approx(at_zero, rel=1e-6)
    # zero off counts: mu_bkg = max(C, 0) / (alpha (1 + alpha))
    alpha = 0.25
    c = alpha * n_on - (1 + alpha) * mu_sig
    assert wstat_mu_bkg(n_on, 0.0, alpha, mu_sig) == pytest.approx(max(c, 0) / (alpha * 1.25))
    assert wstat_mu_bkg(n_on, 0.0, alpha, 10.0) == 0


@settings(max_examples=100, deadline=None)
@given(n_on=counts, n_off=counts, alpha=alphas)
def test_wstat_null_hypothesis_is_li_ma_squared(n_on, n_off, alpha):
    total = n_on + n_off
    ts = 0.0
    if n_on > 0:
        ts += 2 * n_on * np.log((1 + alpha) / alpha * n_on / total)
    if n_off > 0:
        ts += 2 * n_off * np.log((1 + alpha) * n_off / total)
    assert wstat(n_on, n_off, alpha, 0.0) == pytest.approx(ts, rel=1e-9, abs=1e-9)


# ------------------------------------------------------------------ numpy / dask / xarray


def _inputs():
    rng = np.random.default_rng(5)
    shape = (3, 40)
    return (
        rng.poisson(5, shape).astype(float),
        rng.poisson(20, shape).astype(float),
        rng.uniform(0, 1, shape),
        rng.uniform(0, 4, shape),
    )


def test_dask_and_xarray_inputs_stay_lazy_and_agree(raise_on_compute):
    n_on, n_off, alpha, mu_sig = _inputs()
    expected_w = wstat(n_on, n_off, alpha, mu_sig)
    expected_c = cash(n_on, mu_sig)
    lazy = [da.from_array(x, chunks=(1, 20)) for x in (n_on, n_off, alpha, mu_sig)]
    w = wstat(*lazy)
    assert isinstance(w, da.Array) and w.chunks == ((1, 1, 1), (20, 20))
    dims = ("energy", "lon")
    arrays = [xr.DataArray(x, dims=dims) for x in lazy]
    # scalar and numpy alpha broadcast against xarray by dims
    w_xr = wstat(arrays[0], arrays[1], xr.DataArray(alpha[0], dims="lon"), arrays[3])
    c_xr = cash(arrays[0], arrays[3])
    b_xr = wstat_mu_bkg(arrays[0], arrays[1], 0.5, arrays[3])
    for lazy_result in (w_xr, c_xr, b_xr):
        assert lazy_result.dims == dims and lazy_result.chunks is not None
    with pytest.raises(RuntimeError, match="lazy"):
        w.compute()
    import dask

    with dask.config.set(scheduler="sync"):
        np.testing.assert_allclose(w.compute(), expected_w, rtol=1e-13)
        np.testing.assert_allclose(c_xr.values, expected_c, rtol=1e-13)
        np.testing.assert_allclose(
            w_xr.values, wstat(n_on, n_off, alpha[0][None, :], mu_sig), rtol=1e-13
        )
        np.testing.assert_allclose(b_xr.values, wstat_mu_bkg(n_on, n_off, 0.5, mu_sig), rtol=1e-13)


def test_scalar_in_scalar_out():
    assert isinstance(cash(3, 2.0), np.floating)
    assert isinstance(wstat(3, 4, 0.2, 1.0), np.floating)
    assert np.shape(wstat([1.0, 2.0], 3, 0.1, 0.5)) == (2,)
