"""Point-source positions across an exposure gradient: known truth, no noise.

The expected counts of a point source at ``s`` are ``exposure(s) * PSF(pixel - s)`` (the
photons' exposure is that of the place they come from). Here they are computed analytically
(a Gaussian PSF integrated over each pixel with erf) on a toy dataset whose exposure grows
exponentially with latitude, for a source off the pixel centres; the expectation itself is
fitted (an Asimov dataset). ``convention="gammaxr"`` finds the true position;
``convention="gammapy"`` (Gammapy's order: PSF first, then the exposure of the pixel where the
photons land) is pulled by ``-sigma_psf**2 * d ln(exposure) / d lat`` (benchmarks/
position_bias.py measures the same with simulated events).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import erf

from gammaxr.fit import fit
from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.testing import toy_map_dataset

SIGMA = 0.08  # deg, Gaussian PSF
SLOPE = 3.0  # d ln(exposure) / d lat, per deg
TRUE = (0.0113, -0.0071)  # deg (galactic), off the 0.02 deg pixel centres


def _pixel_fraction(edges: np.ndarray, centre: float) -> np.ndarray:
    z = (edges - centre) / (np.sqrt(2) * SIGMA)
    return 0.5 * np.diff(erf(z))


def _asimov_dataset():
    ds = toy_map_dataset(
        center=(0.0, 0.0),
        width=1.0,
        binsz=0.02,
        frame="galactic",
        energy_edges=(1.0, 10.0),
        energy_true_edges=(1.0, 10.0),
        psf_sigma=SIGMA,
        background=0.2,
        irf_binsz=0.5,
    )
    gradient = np.exp(SLOPE * ds["lat"])
    ds["exposure"] = ds["exposure"] * gradient
    flux = 3e-11  # cm-2 s-1 in 1-10 TeV (power law index 2)
    lon_edges = np.append(ds["lon"].values - 0.01, ds["lon"].values[-1] + 0.01)
    lat_edges = np.append(ds["lat"].values - 0.01, ds["lat"].values[-1] + 0.01)
    exposure_at_source = 3e9 * np.exp(SLOPE * TRUE[1]) * 1e4  # cm2 s
    image = np.outer(_pixel_fraction(lat_edges, TRUE[1]), _pixel_fraction(lon_edges, TRUE[0]))
    counts = ds["background"].values + flux * exposure_at_source * image[None]
    return ds.assign(counts=(("energy", "lat", "lon"), counts))


def _fit_position(ds, convention: str) -> tuple[np.ndarray, np.ndarray]:
    source = SkyModel(
        PowerLaw(index=2.0, amplitude="3e-11 cm-2 s-1 TeV-1").with_frozen("index"),
        PointSpatialModel(lon_0=0.01, lat_0=-0.01, frame="galactic"),
        name="src",
    )
    models = Models([source, FoVBackgroundModel("toy")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = fit(ds, models, convention=convention)
    assert result.success
    names = ("src.spatial.lon_0", "src.spatial.lat_0")
    return (
        np.array([result.value(n) for n in names]),
        np.array([result.error(n) for n in names]),
    )


@pytest.fixture(scope="module")
def asimov():
    return _asimov_dataset()


def test_default_convention_puts_the_source_where_it_is(asimov):
    value, error = _fit_position(asimov, "gammaxr")
    shift = SIGMA**2 * SLOPE  # 0.019 deg, what the exposure-after-PSF order would give
    assert error.max() < shift / 3  # the test can see a shift of that size
    np.testing.assert_allclose(value, TRUE, atol=0.05 * shift)
    assert np.all(np.abs(value - TRUE) < 0.1 * error)  # unbiased in units of the error


def test_gammapy_convention_is_pulled_down_the_exposure_gradient(asimov):
    value, _ = _fit_position(asimov, "gammapy")
    shift = SIGMA**2 * SLOPE
    assert value[1] - TRUE[1] == pytest.approx(-shift, rel=0.15)
    assert abs(value[0] - TRUE[0]) < 0.1 * shift
