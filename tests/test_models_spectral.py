"""Spectral models: formulas, analytic vs numerical integrals, sampling, laziness."""

from __future__ import annotations

import astropy.units as u
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy import integrate, stats

from gammaxr.models import (
    BrokenPowerLaw,
    ExpCutoffPowerLaw,
    LogParabola,
    PowerLaw,
    PowerLaw2,
    PowerLawNorm,
    TemplateSpectral,
)

MODELS = {
    "pl": PowerLaw(index=2.3, amplitude=3e-12, reference=1.5),
    "pl_index1": PowerLaw(index=1.0),
    "pl_index2": PowerLaw(index=2.0),
    "pl2": PowerLaw2(index=2.5, amplitude=2e-11, emin=0.5, emax=50),
    "lp": LogParabola(alpha=2.1, beta=0.3, reference=2.0),
    "ecpl": ExpCutoffPowerLaw(index=2.0, lambda_=0.2),
    "ecpl_super": ExpCutoffPowerLaw(index=1.6, lambda_=0.1, alpha=1.7),
    "bpl": BrokenPowerLaw(index1=1.5, index2=3.0, ebreak=2.5),
    "norm": PowerLawNorm(norm=1.2, tilt=0.3),
    "template": TemplateSpectral([0.5, 1, 3, 10], [1e-11, 2e-12, 3e-13, 5e-15]),
}
KINKS = [1.0, 2.5, 3.0, 10.0]


def _quad(f, lo, hi):
    pts = [k for k in KINKS if lo < k < hi]
    return integrate.quad(f, lo, hi, points=pts or None, limit=200, epsrel=1e-12)[0]


@pytest.mark.parametrize("key", MODELS)
def test_integral_matches_quadrature(key):
    m = MODELS[key]
    lo = np.array([0.3, 0.7, 1.0, 2.0, 4.0])
    hi = np.array([100.0, 4.0, 1.3, 2.9, 8.0])
    got = m.integral(lo, hi)
    want = np.array([_quad(m, a, b) for a, b in zip(lo, hi, strict=True)])
    np.testing.assert_allclose(got, want, rtol=1e-8)
    got_e = m.energy_flux(lo, hi)
    want_e = np.array([_quad(lambda e: e * m(e), a, b) for a, b in zip(lo, hi, strict=True)])
    np.testing.assert_allclose(got_e, want_e, rtol=1e-8)


def test_power_law_integral_stable_through_index_one():
    lo, hi = 1.0, 10.0
    near = [PowerLaw(index=1.0 + d).integral(lo, hi) for d in (-1e-10, 0.0, 1e-10)]
    np.testing.assert_allclose(near, 1e-12 * np.log(10.0), rtol=1e-8)


def test_power_law_2_amplitude_is_integral_flux():
    m = MODELS["pl2"]
    assert m.integral(0.5, 50.0) == pytest.approx(2e-11, rel=1e-12)
    # same shape as a power law
    ratio = m(np.array([1.0, 3.0, 7.0])) / PowerLaw(index=2.5)(np.array([1.0, 3.0, 7.0]))
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)
    with pytest.raises(ValueError, match="emin < emax"):
        PowerLaw2(emin=10, emax=1)


def test_log_parabola_uses_natural_log():
    m = LogParabola(amplitude=1e-12, reference=1.0, alpha=2.0, beta=0.5)
    e = 10.0
    assert m(e) == pytest.approx(1e-12 * e ** (-2.0 - 0.5 * np.log(e)))
    m10 = LogParabola.from_log10(amplitude=1e-12, reference=1.0, alpha=2.0, beta=0.5)
    assert m10(e) == pytest.approx(1e-12 * e ** (-2.0 - 0.5 * np.log10(e)))


def test_exp_cutoff_and_broken_power_law_formulas():
    m = ExpCutoffPowerLaw(index=2.0, amplitude=1e-12, reference=1.0, lambda_=0.1, alpha=1.0)
    assert m(10.0) == pytest.approx(1e-12 * 10.0**-2 * np.exp(-1.0))
    b = MODELS["bpl"]
    assert b(2.5) == pytest.approx(1e-12)
    assert b(1.0) == pytest.approx(1e-12 * (1 / 2.5) ** -1.5)
    assert b(5.0) == pytest.approx(1e-12 * 2.0**-3.0)


def test_template_log_log_interpolation_and_extrapolation():
    t = MODELS["template"]
    assert t(1.0) == pytest.approx(2e-12)
    slope = np.log(3e-13 / 2e-12) / np.log(3.0)
    assert t(2.0) == pytest.approx(2e-12 * 2.0**slope)
    # end segments extrapolated (as Gammapy)
    first = np.log(2e-12 / 1e-11) / np.log(2.0)
    assert t(0.25) == pytest.approx(1e-11 * 0.5**first)
    assert t.with_values(norm=3.0)(2.0) == pytest.approx(3 * t(2.0))
    with pytest.raises(ValueError, match="increasing"):
        TemplateSpectral([1.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="differential flux"):
        TemplateSpectral([1.0, 2.0], [1.0, 2.0] * u.m)


def test_quantity_in_quantity_out():
    m = PowerLaw(index=2.0, amplitude=1e-12)
    assert m(1 * u.TeV).unit.is_equivalent("cm-2 s-1 TeV-1")
    flux = m.integral(1000 * u.GeV, 10 * u.TeV)
    assert flux.to_value("cm-2 s-1") == pytest.approx(0.9e-12)
    assert m.energy_flux(1 * u.TeV, 10 * u.TeV).to_value("TeV cm-2 s-1") == pytest.approx(
        1e-12 * np.log(10)
    )


@pytest.mark.parametrize("key", ["pl", "lp", "ecpl", "bpl", "template", "pl2"])
def test_sample_energy_follows_spectrum(key):
    m = MODELS[key]
    emin, emax = 0.7, 30.0
    sample = m.sample_energy(20000, emin, emax, rng=42)
    assert sample.min() >= emin and sample.max() <= emax
    total = m.integral(emin, emax)

    def cdf(e):
        return m.integral(emin, np.asarray(e)) / total

    assert stats.kstest(sample, cdf).pvalue > 0.01
    # the test has power: a slightly different power law is rejected
    if key == "pl":
        other = PowerLaw(index=2.4)
        other_total = other.integral(emin, emax)
        assert stats.kstest(sample, lambda e: other.integral(emin, e) / other_total).pvalue < 1e-3


def test_sample_energy_is_reproducible_and_checks_range():
    m = MODELS["ecpl"]
    a = m.sample_energy(100, 1.0, 10.0, rng=3)
    b = m.sample_energy(100, 1.0, 10.0, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="emin < emax"):
        m.sample_energy(10, 10.0, 1.0)


LAZY_KEYS = ["pl", "lp", "ecpl", "bpl", "template"]


@pytest.mark.parametrize("key", LAZY_KEYS)
def test_stays_lazy_on_dask_and_xarray(key, raise_on_compute):
    m = MODELS[key]
    e = da.from_array(np.geomspace(0.5, 50, 12), chunks=4)
    assert isinstance(m(e), da.Array)
    assert isinstance(m.integral(e, e * 1.5), da.Array)
    assert isinstance(m(xr.DataArray(e, dims="energy_true")).data, da.Array)


@pytest.mark.parametrize("key", LAZY_KEYS)
def test_dask_results_equal_numpy(key):
    m = MODELS[key]
    e = np.geomspace(0.5, 50, 12)
    e_dask = da.from_array(e, chunks=4)
    np.testing.assert_allclose(m(e_dask).compute(), m(e), rtol=1e-12)
    np.testing.assert_allclose(
        m.integral(e_dask, 1.5 * e_dask).compute(), m.integral(e, 1.5 * e), rtol=1e-12
    )
