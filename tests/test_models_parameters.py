"""Parameters and the immutable model base: units, copies, freezing, errors."""

from __future__ import annotations

import math
import pickle

import astropy.units as u
import numpy as np
import pytest

from gammaxr.models import (
    GaussianSpatialModel,
    Parameter,
    ParameterUnitError,
    PowerLaw,
    TemplateSpectral,
)


def test_parameter_defaults_and_bounds():
    p = Parameter("sigma", 0.5, "deg", min=0.0)
    assert p.bounds == (0.0, math.inf)
    assert p.quantity == 0.5 * u.deg
    assert Parameter("x", "2.5").value == 2.5  # YAML "1e-12"-like strings become floats
    with pytest.raises(TypeError, match="value must be a number"):
        Parameter("x", "abc")
    with pytest.raises(ParameterUnitError, match="cannot parse unit"):
        Parameter("x", 1.0, "not-a-unit")


def test_parameter_equality_treats_nan_and_unit_spelling_alike():
    a = Parameter("amplitude", 1e-12, "cm-2 s-1 TeV-1")
    b = Parameter("amplitude", 1e-12, "TeV-1 s-1 cm-2")
    assert a == b
    assert a != a.replace(min=0.0)
    assert a != a.replace(unit="m-2 s-1 TeV-1")


def test_to_unit_scales_value_bounds_and_error():
    p = Parameter("amplitude", 2e-7, "m-2 s-1 TeV-1", min=0.0, max=1e-5, error=1e-8)
    q = p.to_unit("cm-2 s-1 TeV-1")
    assert q.value == pytest.approx(2e-11)
    assert q.max == pytest.approx(1e-9)
    assert q.error == pytest.approx(1e-12)
    assert q.min == 0.0
    with pytest.raises(ParameterUnitError, match="cannot be converted"):
        p.to_unit("deg")


def test_model_converts_quantities_to_canonical_units():
    m = PowerLaw(amplitude="1e-7 m-2 s-1 TeV-1", reference=1000 * u.GeV, index=2.2)
    assert m.amplitude.value == pytest.approx(1e-11)
    assert m.amplitude.unit == "cm-2 s-1 TeV-1"
    assert m.reference.value == pytest.approx(1.0)
    assert m.reference.frozen  # class default kept
    g = GaussianSpatialModel(sigma=Parameter("sigma", 0.01, "rad"))
    assert g.sigma.value == pytest.approx(np.rad2deg(0.01))
    with pytest.raises(ParameterUnitError, match="amplitude"):
        PowerLaw(amplitude=1e-12 * u.erg)
    with pytest.raises(TypeError, match="unknown parameter"):
        PowerLaw(gamma=2)


def test_models_are_immutable_and_copies_leave_originals_alone():
    m = PowerLaw(index=2.0)
    with pytest.raises(AttributeError, match="immutable"):
        m.index = 3.0
    m2 = m.with_values(index=3.0, amplitude=2e-12)
    m3 = m2.with_frozen("index").with_parameter("amplitude", min=0.0, error=1e-13)
    assert m.index.value == 2.0 and not m.index.frozen and math.isnan(m.amplitude.min)
    assert m2.index.value == 3.0 and not m2.index.frozen
    assert m3.index.frozen and m3.amplitude.min == 0.0 and m3.amplitude.error == 1e-13
    assert m3.with_free().index.frozen is False
    assert m3.with_free().reference.frozen is False
    assert m.copy() == m and m.copy() is not m
    assert pickle.loads(pickle.dumps(m3)) == m3
    with pytest.raises(KeyError, match="unknown parameter"):
        m.with_values(foo=1.0)
    # Gammapy's in-place calls would silently do nothing on an immutable model: they raise
    with pytest.raises(TypeError, match=r"Use model = model.with_frozen\('index'\)"):
        m.freeze("index")
    with pytest.raises(TypeError, match=r"PowerLaw.unfreeze\(\) would change nothing"):
        m3.unfreeze()
    assert not m.index.frozen and m3.index.frozen


def test_values_feed_evaluate_directly():
    m = PowerLaw(index=2.5, amplitude=3e-12, reference=2.0)
    e = np.array([1.0, 2.0, 4.0])
    assert np.allclose(m(e), PowerLaw.evaluate(e, **m.values))
    assert np.allclose(m(e), 3e-12 * (e / 2.0) ** -2.5)


def test_template_copies_share_read_only_tables():
    t = TemplateSpectral([1.0, 2.0], [1e-12, 1e-13])
    t2 = t.with_values(norm=2.0)
    assert t2.energy is t.energy
    assert not t.table_values.flags.writeable
    assert t2(1.0) == pytest.approx(2 * t(1.0))
    assert t != t2 and t == t2.with_values(norm=1.0)
