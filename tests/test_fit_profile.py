"""Likelihood profiles and Minos contours: toy spectra (fast) and the stacked Crab."""

from __future__ import annotations

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
import pytest

import gammaxr.accessors  # noqa: F401
from gammaxr.fit import FitContext, fit, load_datasets, profile_values, stat_contour, stat_profile
from gammaxr.models import FoVBackgroundModel, Models, PowerLaw, SkyModel
from gammaxr.plot import plot_stat_contour, plot_stat_profile
from gammaxr.testing import simulate_counts, toy_spectrum_dataset

INDEX, AMPLITUDE = "src.spectral.index", "src.spectral.amplitude"


@pytest.fixture(scope="module")
def spectrum_fit():
    truth = Models([SkyModel(PowerLaw(index=2.5, amplitude="5e-11 cm-2 s-1 TeV-1"), name="src")])
    ds = simulate_counts(toy_spectrum_dataset(), truth, 11)
    result = fit(ds, truth, minos=[INDEX])
    assert result.success, result.message
    return ds, result


def test_profile_with_others_fixed_is_the_likelihood_at_those_values(spectrum_fit):
    ds, result = spectrum_fit
    values = profile_values(result, INDEX, n_sigma=1.5, n_values=5)
    best, err = result.value(INDEX), result.error(INDEX)
    np.testing.assert_allclose(values, best + err * np.linspace(-1.5, 1.5, 5))
    profile = stat_profile(ds, result, INDEX, values)
    assert profile["stat"].dims == ("value",)
    assert profile.attrs["parameter"] == INDEX and profile.attrs["best_value"] == best
    data = load_datasets(ds)
    for v, stat in zip(values, profile["stat"].values, strict=True):
        expected = FitContext(data, result.models.with_values({INDEX: v})).stat()
        assert stat == pytest.approx(expected, rel=1e-12)
    assert profile["stat"].sel(value=best, method="nearest") == pytest.approx(result.total_stat)
    amp = result.value(AMPLITUDE)
    in_m2 = stat_profile(ds, result, AMPLITUDE, [amp * 1e4, amp * 1.1e4] * u.Unit("m-2 s-1 TeV-1"))
    np.testing.assert_allclose(in_m2["value"], [amp, 1.1 * amp], rtol=1e-12)
    assert in_m2["value"].attrs["units"] == "cm-2 s-1 TeV-1"


def test_reoptimised_profile_is_below_the_fixed_one_and_rises_by_one_at_minos(spectrum_fit):
    ds, result = spectrum_fit
    lo, hi = (float(result.parameters[k].sel(param=INDEX)) for k in ("error_lo", "error_hi"))
    best = result.value(INDEX)
    values = [best + lo, best, best + hi]
    fixed = stat_profile(ds, result, INDEX, values)
    refit = stat_profile(ds, result, INDEX, values, reoptimize=True, scheduler="sync")
    assert bool(refit["success"].all())
    assert AMPLITUDE in refit and refit[AMPLITUDE].attrs["units"] == "cm-2 s-1 TeV-1"
    assert np.all(refit["stat"].values <= fixed["stat"].values + 1e-6)
    # the Minos interval is where the profile likelihood rises by exactly 1
    np.testing.assert_allclose(refit["stat"].values - result.total_stat, [1, 0, 1], atol=0.01)
    threads = stat_profile(ds, result, INDEX, values, reoptimize=True, scheduler="threads")
    np.testing.assert_allclose(threads["stat"].values, refit["stat"].values, rtol=1e-12)


def test_contour_points_lie_on_the_profile_likelihood_level(spectrum_fit):
    ds, result = spectrum_fit
    contour = stat_contour(ds, result, INDEX, AMPLITUDE, n_sigma=2, n_points=8)
    assert contour[INDEX].dims == ("point",) and contour.sizes["point"] == 8
    assert contour.attrs["delta_stat"] == 4.0
    assert contour[AMPLITUDE].attrs["units"] == "cm-2 s-1 TeV-1"
    # with only two free parameters the contour is the level set of the likelihood itself
    data = load_datasets(ds)
    for x, y in zip(contour[INDEX].values, contour[AMPLITUDE].values, strict=True):
        stat = FitContext(data, result.models.with_values({INDEX: x, AMPLITUDE: y})).stat()
        assert stat - result.total_stat == pytest.approx(4.0, abs=0.05)


def test_profile_and_contour_bad_input(spectrum_fit):
    ds, result = spectrum_fit
    with pytest.raises(KeyError, match=r"no parameter 'src\.spectral\.gamma'"):
        stat_profile(ds, result, "src.spectral.gamma")
    with pytest.raises(ValueError, match=r"reference.*no fit error"):
        stat_profile(ds, result, "src.spectral.reference")  # frozen: no error, no grid
    with pytest.raises(ValueError, match="besides"):
        stat_profile(
            ds,
            fit(ds, result.models.with_parameter(AMPLITUDE, frozen=True)),
            INDEX,
            reoptimize=True,
        )
    with pytest.raises(ValueError, match="not free"):
        stat_contour(ds, result, INDEX, "src.spectral.reference")
    with pytest.raises(ValueError, match="two different"):
        stat_contour(ds, result, INDEX, INDEX)


def test_accessors_and_plots(spectrum_fit):
    ds, result = spectrum_fit
    profile = ds.gamma.stat_profile(result, INDEX, n_values=5)
    assert profile.sizes["value"] == 5
    ax = plot_stat_profile(profile)
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, profile["value"].values)
    np.testing.assert_allclose(y, profile["stat"].values - result.total_stat)
    assert INDEX in ax.get_xlabel()
    contour = ds.gamma.stat_contour(result, INDEX, AMPLITUDE, n_points=6)
    ax = plot_stat_contour(contour, result=result)
    x, y = ax.lines[0].get_data()
    assert x.size == 7 and x[0] == x[-1] and y[0] == y[-1]  # closed curve
    assert "cm-2 s-1 TeV-1" in ax.get_ylabel()
    plt.close("all")


@pytest.mark.hess
def test_crab_profiles_and_contour(crab_reference_case):
    """Done-when checks of issue 12 on the stacked Crab."""
    _, stacked, source, _ = crab_reference_case
    index, amplitude = "crab.spectral.index", "crab.spectral.amplitude"
    result = stacked.gamma.fit(Models([source, FoVBackgroundModel("stacked")]), minos=[index])
    assert result.success, result.message
    best, err = result.value(index), result.error(index)
    values = [best - err, best + err]
    fixed = stacked.gamma.stat_profile(result, index, values)
    assert np.all(fixed["stat"].values - result.total_stat >= 1.0)
    refit = stacked.gamma.stat_profile(result, index, values, reoptimize=True)
    np.testing.assert_allclose(refit["stat"].values - result.total_stat, 1.0, rtol=0.15)
    contour = stacked.gamma.stat_contour(result, index, amplitude, n_points=12)
    lo, hi = (float(result.parameters[k].sel(param=index)) for k in ("error_lo", "error_hi"))
    assert float(contour[index].min()) - best == pytest.approx(lo, rel=0.15)
    assert float(contour[index].max()) - best == pytest.approx(hi, rel=0.15)
