"""Differential sensitivity: the three conditions against Li & Ma, units, fluxes, plots."""

from __future__ import annotations

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np
import pytest
import regions as rg
from astropy.coordinates import SkyCoord

import gammaxr.accessors  # noqa: F401
from gammaxr.estimators import minimum_excess, sensitivity
from gammaxr.estimators.sensitivity import TEV_TO_ERG
from gammaxr.fit import npred
from gammaxr.geom.axes import axis_lo_hi
from gammaxr.models import LogParabola, PowerLaw, SkyModel
from gammaxr.plot import plot_sensitivity
from gammaxr.reduce.irf_spectrum import irf_spectrum_dataset
from gammaxr.reduce.spectrum import SpectrumSpec
from gammaxr.simulate import ToyInstrument, read_irfs
from gammaxr.stats import li_ma_significance
from gammaxr.testing import toy_map_dataset, toy_spectrum_dataset


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
    chunked = sensitivity(bkg_only.chunk({"energy": 3}), alpha=0.2)
    np.testing.assert_allclose(chunked["e2dnde"], a["e2dnde"], rtol=1e-12)
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


# -- expected datasets from IRFs ------------------------------------------------------------

# Gammapy 2.1, hand-run in a separate environment (never a test dependency):
# Observation.create(prod5 South, 50 h, pointing (0, 0)), SpectrumDatasetMaker(exposure, edisp,
# background, containment_correction=True) on circle((0, 0.5), 0.1 deg), reco 0.03-30 TeV in
# 20 bins, true 0.01-100 TeV in 100 bins, SpectrumDatasetOnOff.from_spectrum_dataset(
# acceptance=1, acceptance_off=5), SensitivityEstimator() -> e2dnde in 1e-13 erg cm-2 s-1
GAMMAPY_PROD5_50H = [
    763.3493, 86.1219, 19.6848, 12.0484, 8.7495, 6.2399, 4.2428, 3.3807, 2.5877, 2.1614,
    1.7594, 1.5602, 1.4641, 1.5256, 1.4898, 1.5294, 1.5417, 1.9386, 2.3545, 2.9603,
]  # fmt: skip


def _spec(radius: float, containment: bool, **kwargs) -> SpectrumSpec:
    on = rg.CircleSkyRegion(SkyCoord(0.0, 0.5, unit="deg"), radius * u.deg)
    return SpectrumSpec(
        on,
        kwargs.get("energy_edges", np.geomspace(0.5, 50, 9)),
        kwargs.get("energy_true_edges", np.geomspace(0.3, 80, 25)),
        maps=("exposure", "edisp", "background"),
        containment_correction=containment,
    )


def test_irf_spectrum_dataset_follows_the_analytic_toy_instrument():
    toy = ToyInstrument()
    irfs = toy.irfs()
    livetime = 3600.0
    ds = irf_spectrum_dataset(irfs, _spec(0.15, True), (0.0, 0.0), livetime)
    assert ds.attrs["offset_deg"] == pytest.approx(0.5)
    e_true = ds["energy_true"].values
    expected = toy.effective_area(e_true, 0.5) * livetime * toy.psf_containment(e_true, 0.5, 0.15)
    np.testing.assert_allclose(ds["exposure"], expected, rtol=0.03)
    lo, hi = (np.asarray(x) for x in axis_lo_hi(ds, "energy"))
    e = np.geomspace(lo, hi, 200)  # (200, n_e)
    rate = np.trapezoid(toy.background_rate(e, 0.5), e * 1e6, axis=0)  # s-1 sr-1
    area = 2 * np.pi * (1 - np.cos(np.deg2rad(0.15)))
    np.testing.assert_allclose(ds["background"], rate * area * livetime, rtol=0.05)
    longer = irf_spectrum_dataset(irfs, _spec(0.15, False), (0.0, 0.0), 2 * livetime)
    np.testing.assert_allclose(longer["background"], 2 * ds["background"], rtol=1e-12)
    assert np.all(longer["exposure"] > 2 * ds["exposure"])  # no containment cut
    np.testing.assert_allclose(ds["edisp"].sum("energy")[8:-6], 1.0, atol=0.02)
    with pytest.raises(ValueError, match="livetime"):
        irf_spectrum_dataset(irfs, _spec(0.15, True), (0.0, 0.0), 0.0)
    with pytest.raises(ValueError, match="no background"):
        irf_spectrum_dataset(irfs.replace(bkg=None), _spec(0.15, True), (0.0, 0.0), livetime)


@pytest.mark.cta
def test_prod5_sensitivity_at_50_hours_matches_gammapy(prod5_file):
    spec = _spec(
        0.1,
        True,
        energy_edges=np.geomspace(0.03, 30, 21),
        energy_true_edges=np.geomspace(0.01, 100, 101),
    )
    ds = irf_spectrum_dataset(read_irfs(prod5_file), spec, (0.0, 0.0), 50 * 3600.0)
    table = sensitivity(ds, alpha=0.2)
    np.testing.assert_allclose(table["e2dnde"] * 1e13, GAMMAPY_PROD5_50H, rtol=0.01)
    assert set(table["criterion"].values) == {"significance"}
