"""Priors on parameters: statistic, effect on fits, YAML in Gammapy's layout."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from gammaxr.fit import FitContext, fit, load_datasets
from gammaxr.models import (
    GaussianPrior,
    ModelFormatError,
    Models,
    Parameter,
    PowerLaw,
    SkyModel,
    UniformPrior,
    models_from_yaml,
)
from gammaxr.testing import simulate_counts, toy_spectrum_dataset

INDEX = "src.spectral.index"

# written by Gammapy 2.1 (PowerLawSpectralModel with index.prior = GaussianPrior(mu=2.3,
# sigma=0.1), amplitude.prior = UniformPrior(min=1e-13, max=1e-10)); its prior_stat_sum()
# gave 6.232706880421243 for the index (value 2.0) and -46.05370286054808 for the amplitude
GAMMAPY_YAML = """
components:
-   name: src
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.0
            prior:
                type: GaussianPrior
                parameters:
                -   {name: mu, value: 2.3, unit: ''}
                -   {name: sigma, value: 0.1, unit: ''}
                weight: 1
        -   name: amplitude
            value: 1.0e-12
            unit: TeV-1 s-1 cm-2
            min: 1.0e-13
            max: 1.0e-10
            prior:
                type: UniformPrior
                parameters:
                -   {name: min, value: 1.0e-13, unit: ''}
                -   {name: max, value: 1.0e-10, unit: ''}
                weight: 1
        -   name: reference
            value: 1.0
            unit: TeV
"""


def test_prior_statistics():
    g = GaussianPrior(mu=2.3, sigma=0.1, weight=2.0)
    assert g.stat(2.3) == pytest.approx(2.0 * math.log(2 * math.pi * 0.01))
    assert g.stat(2.5) - g.stat(2.3) == pytest.approx(2.0 * 4.0)  # weight * z**2
    flat = UniformPrior(min=1.0, max=3.0)
    assert flat.stat(1.0) == flat.stat(2.9) == pytest.approx(2 * math.log(2.0))
    assert flat.stat(3.1) == math.inf and flat.stat(0.9) == math.inf
    assert GaussianPrior(2.3, 0.1).scaled(10.0) == GaussianPrior(23.0, 1.0)
    for bad in (lambda: GaussianPrior(sigma=0), lambda: UniformPrior(min=2, max=1)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(TypeError, match="prior must be"):
        Parameter("index", 2.0, prior={"type": "GaussianPrior"})


def test_uniform_prior_narrows_bounds_and_units_follow():
    p = Parameter("x", 1.0, "TeV", min=0.5, prior=UniformPrior(min=0.0, max=2.0))
    assert p.bounds == (0.5, 2.0)
    q = p.to_unit("GeV")
    assert q.prior == UniformPrior(min=0.0, max=2000.0) and q.bounds == (500.0, 2000.0)
    assert q.prior_stat() == pytest.approx(2 * math.log(2000.0))


def test_gammapy_yaml_reads_with_its_prior_values_and_round_trips():
    models = models_from_yaml(GAMMAPY_YAML)
    spectral = models["src"].spectral
    assert spectral.index.prior == GaussianPrior(mu=2.3, sigma=0.1)
    assert spectral.index.prior_stat() == pytest.approx(6.232706880421243, rel=1e-12)
    assert spectral.amplitude.prior_stat() == pytest.approx(-46.05370286054808, rel=1e-12)
    again = models_from_yaml(models.to_yaml())
    assert again == models
    assert "GaussianPrior" in models.to_yaml() and "weight: 1" in models.to_yaml()


def test_prior_in_another_unit_is_converted_with_the_parameter():
    text = GAMMAPY_YAML.replace("unit: TeV-1 s-1 cm-2", "unit: TeV-1 s-1 m-2")
    amplitude = models_from_yaml(text)["src"].spectral.amplitude
    assert amplitude.unit == "cm-2 s-1 TeV-1"
    assert amplitude.value == pytest.approx(1e-16)
    assert isinstance(amplitude.prior, UniformPrior)
    assert (amplitude.prior.min, amplitude.prior.max) == pytest.approx((1e-17, 1e-14), rel=1e-12)


def test_bad_prior_entries_are_named():
    with pytest.raises(ModelFormatError, match=r"index.*unknown prior type 'Cauchy'"):
        models_from_yaml(GAMMAPY_YAML.replace("type: GaussianPrior", "type: Cauchy"))
    with pytest.raises(ModelFormatError, match=r"index.*needs parameters \['sigma'\]"):
        models_from_yaml(GAMMAPY_YAML.replace("name: sigma, value: 0.1", "name: mu, value: 0.1"))


@pytest.fixture(scope="module")
def spectrum():
    truth = Models([SkyModel(PowerLaw(index=2.5, amplitude="5e-11 cm-2 s-1 TeV-1"), name="src")])
    ds = simulate_counts(toy_spectrum_dataset(), truth, 3)
    free = fit(ds, truth)
    assert free.success
    return ds, truth, free


def _with_prior(models: Models, prior) -> Models:
    return models.with_parameter(INDEX, prior=prior)


def test_tight_prior_pulls_the_parameter_to_its_mean(spectrum):
    ds, truth, free = spectrum
    mu = free.value(INDEX) - 5 * free.error(INDEX)
    tight = fit(ds, _with_prior(truth, GaussianPrior(mu=mu, sigma=1e-3)))
    assert tight.success
    assert tight.value(INDEX) == pytest.approx(mu, abs=2e-3)
    assert tight.error(INDEX) < 1e-3


def test_wide_prior_changes_nothing_but_its_constant(spectrum):
    ds, truth, free = spectrum
    prior = GaussianPrior(mu=2.0, sigma=100.0)
    wide = fit(ds, _with_prior(truth, prior))
    assert wide.value(INDEX) == pytest.approx(free.value(INDEX), abs=1e-3 * free.error(INDEX))
    assert wide.error(INDEX) == pytest.approx(free.error(INDEX), rel=1e-3)
    expected = free.total_stat + prior.stat(wide.value(INDEX))
    assert wide.total_stat == pytest.approx(expected, abs=1e-3)
    assert wide.models.parameter(INDEX).prior == prior  # kept on the fitted models


def test_uniform_prior_confines_the_fit(spectrum):
    ds, truth, free = spectrum
    lo = free.value(INDEX) + 3 * free.error(INDEX)
    models = _with_prior(truth, UniformPrior(min=lo, max=lo + 1.0))
    with pytest.warns(RuntimeWarning, match="not finite at the start"):
        fit(ds, models)  # the start value 2.5 is outside the prior's support
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # Migrad: parameter at its limit
        confined = fit(ds, models.with_values({INDEX: lo + 0.5}))
    assert confined.value(INDEX) == pytest.approx(lo, abs=1e-3)
    assert confined.total_stat > free.total_stat + 2 * math.log(1.0) + 8.0  # 3 sigma away


def test_context_counts_each_prior_once_linked_ones_too(spectrum):
    ds = spectrum[0]
    a = SkyModel(PowerLaw(index=2.5, amplitude="5e-11 cm-2 s-1 TeV-1"), name="a")
    b = a.replace(name="b")
    prior = GaussianPrior(mu=2.4, sigma=0.2)
    models = Models([a, b]).link("idx", "a.spectral.index", "b.spectral.index")
    models = models.with_parameter("a.spectral.index", prior=prior)
    models = models.with_parameter("a.spectral.amplitude", frozen=True, prior=GaussianPrior())
    data = load_datasets(ds)
    with_priors = FitContext(data, models).stat()
    plain = Models([m.replace(spectral=PowerLaw(**m.spectral.values)) for m in models])
    expected = FitContext(data, plain).stat() + prior.stat(2.5) + GaussianPrior().stat(5e-11)
    assert np.isclose(with_priors, expected, rtol=1e-12)
