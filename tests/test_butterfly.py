"""Model error bands: linear propagation against the analytic power-law band, sampling,
fit results, covariance inputs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gammaxr.estimators.butterfly import butterfly, spectral_covariance
from gammaxr.fit import fit
from gammaxr.models import ExpCutoffPowerLaw, LogParabola, Models, PowerLaw, SkyModel
from gammaxr.testing import simulate_counts, toy_spectrum_dataset

AMP, INDEX = 4e-11, 2.5
COV = np.array(
    [
        [0.01, 1.2e-13, 0.0],  # index, amplitude, reference (frozen)
        [1.2e-13, (4e-12) ** 2, 0.0],
        [0.0, 0.0, 0.0],
    ]
)
ENERGY = np.geomspace(0.3, 30.0, 9)


def _analytic_error(energy: np.ndarray) -> np.ndarray:
    """sqrt(J C J^T) for dnde = A (E / 1 TeV) ** -G: dA -> dnde / A, dG -> -dnde ln E."""
    dnde = AMP * energy**-INDEX
    log_e = np.log(energy)
    var = dnde**2 * (COV[1, 1] / AMP**2 - 2.0 * log_e * COV[0, 1] / AMP + log_e**2 * COV[0, 0])
    return np.sqrt(var)


def test_propagation_matches_analytic_power_law():
    band = butterfly(PowerLaw(index=INDEX, amplitude=AMP), ENERGY, covariance=COV)
    np.testing.assert_allclose(band["dnde"], AMP * ENERGY**-INDEX)
    np.testing.assert_allclose(band["dnde_err"], _analytic_error(ENERGY), rtol=1e-6)
    np.testing.assert_allclose(band["dnde_hi"] - band["dnde"], band["dnde_err"])
    np.testing.assert_allclose(band["e2dnde_lo"], (band["dnde"] - band["dnde_err"]) * ENERGY**2)
    assert band["e2dnde"].attrs["units"] == "TeV cm-2 s-1"
    assert band.attrs["parameters"] == "index,amplitude"  # the frozen reference is left out
    two = butterfly(PowerLaw(index=INDEX, amplitude=AMP), ENERGY, covariance=COV, n_sigma=2)
    np.testing.assert_allclose(two["dnde_err"], 2 * band["dnde_err"])


def test_band_is_narrowest_at_the_decorrelation_energy():
    energy = np.geomspace(0.1, 100, 2001)
    band = butterfly(PowerLaw(index=INDEX, amplitude=AMP), energy, covariance=COV)
    relative = band["dnde_err"] / band["dnde"]
    e_dec = np.exp(COV[0, 1] / (AMP * COV[0, 0]))  # minimum of the relative variance
    assert float(energy[int(np.argmin(relative.values))]) == pytest.approx(e_dec, rel=0.01)


def test_sampling_agrees_with_propagation():
    model = PowerLaw(index=INDEX, amplitude=AMP)
    band = butterfly(model, ENERGY, covariance=COV, method="sampling", n_samples=40000, rng=1)
    truth = _analytic_error(ENERGY)
    np.testing.assert_allclose(band["dnde_err"], truth, rtol=0.05)
    # the power law is convex in the index: longer upper side away from the pivot
    assert band["dnde_errp"][-1] > band["dnde_errn"][-1]
    np.testing.assert_allclose(band["dnde_median"], band["dnde"], rtol=0.02)
    again = butterfly(model, ENERGY, covariance=COV, method="sampling", n_samples=40000, rng=1)
    xr.testing.assert_identical(band, again)  # reproducible with a seed


@pytest.mark.parametrize(
    "model",
    [
        LogParabola(amplitude=3e-11, reference=1.0, alpha=2.3, beta=0.1),
        ExpCutoffPowerLaw(index=2.0, amplitude=3e-11, lambda_=0.1),
    ],
)
def test_small_errors_sampling_equals_propagation(model):
    """In the linear regime both methods agree for any spectral shape."""
    sigma = np.array([0.001 * abs(p.value) if not p.frozen else 0.0 for p in model.parameters])
    corr = np.eye(sigma.size)
    free = np.flatnonzero(sigma > 0)
    corr[free[0], free[1]] = corr[free[1], free[0]] = -0.6
    cov = corr * np.outer(sigma, sigma)
    lin = butterfly(model, ENERGY, covariance=cov)
    smp = butterfly(model, ENERGY, covariance=cov, method="sampling", n_samples=40000, rng=2)
    np.testing.assert_allclose(smp["dnde_err"], lin["dnde_err"], rtol=0.04)


def test_from_fit_result():
    truth = SkyModel(PowerLaw(index=2.3, amplitude="2e-11 cm-2 s-1 TeV-1"), name="src")
    sim = simulate_counts(toy_spectrum_dataset(), truth, 3)
    result = fit(sim, truth)
    band = butterfly(result, [0.5, 1.0, 5.0])
    # at the reference energy (1 TeV) dnde is the amplitude: same error
    assert band["dnde_err"][1] == pytest.approx(result.error("src.spectral.amplitude"), rel=1e-6)
    assert band["dnde"][1] == pytest.approx(result.value("src.spectral.amplitude"))
    spectral, names, cov = spectral_covariance(result)
    assert names == ["index", "amplitude", "reference"]
    full = result.parameters["covariance"].sel(
        param="src.spectral.index", param2="src.spectral.amplitude"
    )
    assert cov[0, 1] == pytest.approx(float(full))
    # the same covariance given as a DataArray with bare names
    sub = result.parameters["covariance"].sel(
        param=[f"src.spectral.{n}" for n in names], param2=[f"src.spectral.{n}" for n in names]
    )
    bare = sub.assign_coords(param=names, param2=names)
    xr.testing.assert_allclose(butterfly(spectral, [0.5, 1.0, 5.0], covariance=bare), band)
    # models alone: errors without correlations
    diag = butterfly(Models(result.models), [0.5, 1.0, 5.0])
    assert float(diag["dnde_err"][1]) == pytest.approx(float(band["dnde_err"][1]), rel=1e-6)
    assert abs(float(diag["dnde_err"][2] / band["dnde_err"][2]) - 1) > 0.01


def test_default_energies_and_quantities():
    band = butterfly(PowerLaw(index=INDEX, amplitude=AMP), covariance=COV, n_points=50)
    assert band.sizes["energy"] == 50
    assert band["energy"][0] == pytest.approx(0.1) and band["energy"][-1] == pytest.approx(100)
    import astropy.units as u

    gev = butterfly(PowerLaw(index=INDEX, amplitude=AMP), [1000, 3000] * u.GeV, covariance=COV)
    np.testing.assert_allclose(gev["energy"], [1.0, 3.0])


def test_bad_inputs():
    model = PowerLaw(index=INDEX, amplitude=AMP)
    with pytest.raises(ValueError, match="shape"):
        butterfly(model, ENERGY, covariance=np.eye(2))
    with pytest.raises(ValueError, match="method"):
        butterfly(model, ENERGY, covariance=COV, method="bootstrap")
    with pytest.raises(ValueError, match="symmetric"):
        butterfly(model, ENERGY, covariance=COV + np.triu(np.ones((3, 3)), 1) * 1e-3)
    with pytest.raises(ValueError, match="positive"):
        butterfly(model, [-1.0, 1.0], covariance=COV)
    with pytest.raises(TypeError):
        butterfly("crab", ENERGY)
