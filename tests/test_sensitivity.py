"""Differential sensitivity: the three conditions against Li & Ma, units, fluxes, plots."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import gammaxr.accessors  # noqa: F401
from gammaxr.estimators import minimum_excess, sensitivity
from gammaxr.estimators.sensitivity import TEV_TO_ERG
from gammaxr.fit import npred
from gammaxr.fit.toy import toy_map_dataset, toy_spectrum_dataset
from gammaxr.models import LogParabola, PowerLaw, SkyModel
from gammaxr.plot import plot_sensitivity
from gammaxr.stats import li_ma_significance


def test_minimum_excess_meets_each_condition():
    n_off = np.array([0.5, 20.0, 500.0, 2e5])
    alpha = np.array([0.2, 0.2, 0.2, 0.2])
    excess, criterion = minimum_excess(n_off, alpha, 5.0, 10.0, 0.05)
    bkg = alpha * n_off
    significance = li_ma_significance(bkg + excess, n_off, alpha)
    assert criterion.tolist() == ["gamma", "significance", "significance", "bkg"]
    np.testing.assert_allclose(significance[1:3], 5.0, rtol=1e-6)  # Li & Ma binds
    assert excess[0] == 10.0 and significance[0] > 5.0  # few gammas would already be 5 sigma
    assert excess[3] == pytest.approx(0.05 * bkg[3]) and significance[3] > 5.0
    loose, why = minimum_excess(n_off, alpha, 3.0, 0.0, 0.0)
    assert set(why) == {"significance"} and np.all(loose < excess)
    np.testing.assert_allclose(li_ma_significance(bkg + loose, n_off, alpha), 3.0, rtol=1e-6)


@pytest.fixture(scope="module")
def spectrum():
    ds = toy_spectrum_dataset(energy_edges=np.geomspace(0.1, 100, 10), background=1e5)
    bkg = ds["background_true"]
    return ds.assign(counts_off=bkg / 0.2, acceptance_off=ds["acceptance"] / 0.2)


def test_sensitivity_flux_gives_the_minimum_excess(spectrum):
    table = sensitivity(spectrum)
    assert set(table["criterion"].values) == {"significance", "gamma", "bkg"}
    energy = table["energy"].values
    np.testing.assert_allclose(table["e2dnde"], table["dnde"] * energy**2 * TEV_TO_ERG)
    np.testing.assert_allclose(table["background"], spectrum["background_true"], rtol=1e-12)
    assert table["e2dnde"].attrs["units"] == "erg cm-2 s-1"
    assert "energy_bounds" in table.coords
    # a source with the sensitivity flux at the centre of a bin (index-2 shape) gives the
    # minimum excess there: exactly n_sigma where the significance binds
    signal = spectrum.drop_vars(["counts_off", "acceptance", "acceptance_off"]).assign(
        background=spectrum["background_true"] * 0
    )
    for i, e in enumerate(energy):
        source = SkyModel(PowerLaw(index=2, amplitude=float(table["dnde"][i]), reference=e))
        counts = float(npred(signal, source, kind="signal")[i])
        assert counts == pytest.approx(float(table["excess"][i]), rel=1e-9)
    sig = table["criterion"] == "significance"
    n_off = spectrum["counts_off"].values[sig]
    on = 0.2 * n_off + table["excess"].values[sig]
    np.testing.assert_allclose(li_ma_significance(on, n_off, 0.2), 5.0, rtol=1e-6)


def test_spectral_shape_only_matters_within_bins(spectrum):
    """A different assumed shape changes the flux only through the bin-averaged shape."""
    pl = sensitivity(spectrum)
    curved = sensitivity(spectrum, LogParabola(alpha=2.0, beta=0.3, amplitude=1e-12))
    ratio = curved["dnde"] / pl["dnde"]
    assert np.all(np.abs(ratio - 1) < 0.1) and not np.allclose(ratio, 1)
    np.testing.assert_array_equal(curved["excess"], pl["excess"])


def test_background_only_dataset_equals_on_off(spectrum):
    bkg_only = spectrum.drop_vars(["counts_off", "acceptance", "acceptance_off"]).assign(
        background=spectrum["background_true"]
    )
    a = sensitivity(spectrum)
    b = bkg_only.gamma.sensitivity(alpha=0.2)
    np.testing.assert_allclose(b["e2dnde"], a["e2dnde"], rtol=1e-12)
    with pytest.raises(ValueError, match="alpha > 0"):
        sensitivity(bkg_only, alpha=None)


def test_unsafe_bins_are_nan_and_bad_input(spectrum):
    mask = np.ones(spectrum.sizes["energy"], bool)
    mask[0] = False
    table = sensitivity(spectrum.assign(mask_safe=("energy", mask)))
    assert np.isnan(table["e2dnde"][0]) and np.all(np.isfinite(table["e2dnde"][1:]))
    with pytest.raises(ValueError, match="1D spectrum dataset"):
        sensitivity(toy_map_dataset())
    with pytest.raises(ValueError, match=r"counts_off.*or a 'background'"):
        sensitivity(spectrum.drop_vars(["counts_off"]))


def test_plot_sensitivity(spectrum):
    table = sensitivity(spectrum)
    ax = plot_sensitivity(table, label="toy")
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, table["energy"].values)
    np.testing.assert_allclose(y, table["e2dnde"].values)
    assert ax.get_xscale() == "log" and "erg cm-2 s-1" in ax.get_ylabel()
    assert len(ax.lines) == 1 + 3  # curve, then one marker set per criterion
    plt.close("all")
