"""Units at the public entries: Quantities in other units give what floats in the documented
unit give; wrong kinds raise UnitConversionError naming the argument; bad values ValueError."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from hypothesis import given, settings
from hypothesis import strategies as st

from gammaxr.estimators.excess_map import excess_map
from gammaxr.irf import evaluate_aeff, evaluate_bkg_2d, evaluate_edisp, evaluate_psf
from gammaxr.models import PowerLaw
from gammaxr.reduce import ReductionSpec, SpectrumSpec
from gammaxr.simulate.instrument import ToyInstrument
from gammaxr.units import to_unit
from test_excess_map import make_dataset

ENERGY_UNITS = st.sampled_from(["GeV", "MeV", "TeV", "eV", "erg"])
ANGLE_UNITS = st.sampled_from(["arcmin", "arcsec", "rad", "deg"])
SETTINGS = settings(max_examples=25, deadline=None)


@pytest.fixture(scope="module")
def irfs():
    return ToyInstrument(bins_per_decade=4, migra_bin=0.05, rad_bin=0.02).irfs()


@SETTINGS
@given(
    st.lists(st.floats(0.02, 80.0), min_size=2, max_size=5, unique=True),
    ENERGY_UNITS,
    st.floats(0.1, 3.0),
    ANGLE_UNITS,
)
def test_reduction_spec_quantities(edges, e_unit, offset_max, a_unit):
    edges = np.sort(edges)
    if np.any(np.diff(edges) <= 1e-6 * edges[1:]):
        return
    floats = ReductionSpec(edges, edges, offset_max=offset_max, binsz=0.05, width=2.0)
    quantities = ReductionSpec(
        (edges * u.TeV).to(e_unit),
        [str((e * u.TeV).to(e_unit)) for e in edges],
        offset_max=(offset_max * u.deg).to(a_unit),
        binsz=(0.05 * u.deg).to(a_unit),
        width=(2.0 * u.deg).to(a_unit),
    )
    np.testing.assert_allclose(quantities.energy_edges, floats.energy_edges, rtol=1e-12)
    np.testing.assert_allclose(quantities.energy_true_edges, floats.energy_true_edges, rtol=1e-12)
    for name in ("offset_max", "binsz", "width"):
        assert getattr(quantities, name) == pytest.approx(getattr(floats, name), rel=1e-12)


@SETTINGS
@given(st.floats(0.06, 80.0), st.floats(0.0, 3.5), st.floats(0.3, 2.5), ENERGY_UNITS, ANGLE_UNITS)
def test_irf_evaluators_quantities(irfs, energy, offset, migra, e_unit, a_unit):
    e_q, o_q = (energy * u.TeV).to(e_unit), (offset * u.deg).to(a_unit)
    assert evaluate_aeff(irfs.aeff, e_q, o_q) == pytest.approx(
        evaluate_aeff(irfs.aeff, energy, offset), rel=1e-9
    )
    assert evaluate_edisp(irfs.edisp, e_q, migra, o_q) == pytest.approx(
        evaluate_edisp(irfs.edisp, energy, migra, offset), rel=1e-9
    )
    rad = 0.05
    assert evaluate_psf(irfs.psf, e_q, o_q, (rad * u.deg).to(a_unit)) == pytest.approx(
        evaluate_psf(irfs.psf, energy, offset, rad), rel=1e-9
    )
    assert evaluate_bkg_2d(irfs.bkg, e_q, o_q) == pytest.approx(
        evaluate_bkg_2d(irfs.bkg, energy, offset), rel=1e-9
    )


def test_issue_examples(irfs):
    spec = ReductionSpec([100, 1000, 10000] * u.GeV, [0.1, 1, 10])
    assert spec.energy_edges == pytest.approx((0.1, 1.0, 10.0))
    assert evaluate_aeff(irfs.aeff, 1000 * u.GeV, 0.5) == pytest.approx(
        evaluate_aeff(irfs.aeff, 1.0, 0.5)
    )
    assert evaluate_aeff(irfs.aeff, 1.0, 0.5) > 1e4
    with pytest.raises(u.UnitConversionError, match=r"energy_true: 1\.0 m cannot be converted"):
        evaluate_aeff(irfs.aeff, 1 * u.m, 0.5)
    with pytest.raises(u.UnitConversionError, match="offset_max"):
        ReductionSpec([1, 10], [1, 10], offset_max=2 * u.TeV)


@settings(max_examples=10, deadline=None)
@given(st.floats(0.05, 0.3), ANGLE_UNITS)
def test_excess_map_radius_quantity(radius, unit):
    ds = make_dataset(n_pix=20)
    floats = excess_map(ds, radius)
    quantity = excess_map(ds, (radius * u.deg).to(unit))
    np.testing.assert_allclose(
        quantity["significance"].values, floats["significance"].values, equal_nan=True
    )


def test_excess_map_arcmin_from_the_issue():
    ds = make_dataset(n_pix=20)
    np.testing.assert_allclose(
        excess_map(ds, 6 * u.arcmin)["excess"].values,
        excess_map(ds, 0.1)["excess"].values,
        equal_nan=True,
    )
    edges = excess_map(ds, 0.1, energy_edges=[1000, 10000] * u.GeV)
    assert edges.sizes["energy"] == 1
    with pytest.raises(ValueError, match="correlation_radius must be positive"):
        excess_map(ds, -0.1)
    with pytest.raises(u.UnitConversionError, match="correlation_radius"):
        excess_map(ds, 1 * u.s)


@SETTINGS
@given(st.floats(0.01, 100.0), ENERGY_UNITS, st.floats(1.5, 3.5))
def test_models_quantities(energy, e_unit, index):
    floats = PowerLaw(index=index, amplitude=2e-12, reference=1.0)
    quantities = PowerLaw(
        index=index,
        amplitude=(2e-12 * u.Unit("cm-2 s-1 TeV-1")).to(f"cm-2 s-1 {e_unit}-1"),
        reference=(1.0 * u.TeV).to(e_unit),
    )
    e_q = (energy * u.TeV).to(e_unit)
    assert quantities(e_q).to_value("cm-2 s-1 TeV-1") == pytest.approx(floats(energy), rel=1e-9)
    assert floats(str(e_q)).to_value("cm-2 s-1 TeV-1") == pytest.approx(floats(energy), rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"offset_max": -1}, "offset_max must be positive"),
        ({"binsz": 0}, "binsz must be positive"),
        ({"irf_binsz": -0.1}, "irf_binsz must be positive"),
        ({"width": (1, 2, 3)}, "width must be one value or"),
        ({"width": -2}, "width must be positive"),
        ({"aeff_percent": 120}, "aeff_percent must be a percentage"),
        ({"bias_percent": -5}, "bias_percent must be positive"),
        ({"energy_edges": []}, "energy_edges must be a 1D sequence of at least 2 edges"),
        ({"energy_true_edges": [1, 1]}, "energy_true_edges must be positive increasing"),
        ({"rad_edges": [0.1, 0.05]}, "rad_edges must be increasing"),
        ({"background_oversampling": 0}, "background_oversampling must be a positive integer"),
    ],
)
def test_reduction_spec_argument_checks(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReductionSpec(**{"energy_edges": [1, 10], "energy_true_edges": [1, 10], **kwargs})


def test_to_unit_contract():
    assert to_unit(2.0, "deg", "x") == 2.0  # floats keep meaning the documented unit
    assert to_unit("120 arcmin", "deg", "x") == pytest.approx(2.0)
    assert to_unit("1e5", "m2", "x") == 1e5
    np.testing.assert_allclose(to_unit([1, "500 GeV"], "TeV", "x"), [1.0, 0.5])
    with pytest.raises(ValueError, match="x: cannot read 'abc'"):
        to_unit("abc", "deg", "x")


def test_spectrum_spec_quantities():
    region = "icrs; circle(83.63, 22.01, 0.1)"
    floats = SpectrumSpec(region, [0.1, 1, 10], [0.05, 1, 20], offset_max=2.0)
    quantities = SpectrumSpec(
        region, [100, 1000, 10000] * u.GeV, ["50 GeV", 1, "2e7 MeV"], offset_max=120 * u.arcmin
    )
    np.testing.assert_allclose(quantities.energy_edges, floats.energy_edges)
    np.testing.assert_allclose(quantities.energy_true_edges, floats.energy_true_edges)
    assert quantities.offset_max == pytest.approx(floats.offset_max)
    with pytest.raises(ValueError, match="region_binsz must be positive"):
        SpectrumSpec(region, [0.1, 1], [0.1, 1], region_binsz=0)
