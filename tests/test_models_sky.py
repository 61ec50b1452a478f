"""SkyModel, FoVBackgroundModel and the Models collection: vectors, links, copies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gammaxr.models import (
    FoVBackgroundModel,
    GaussianSpatialModel,
    Models,
    PointSpatialModel,
    PowerLaw,
    PowerLawNorm,
    SkyModel,
)


@pytest.fixture
def models():
    crab = SkyModel(
        PowerLaw(index=2.6, amplitude=4.5e-11),
        PointSpatialModel(lon_0=83.63, lat_0=22.01),
        name="crab",
    )
    ext = SkyModel(
        PowerLaw(index=2.2, amplitude=1e-12),
        GaussianSpatialModel(lon_0=83.0, lat_0=22.5, sigma=0.2).with_parameter("sigma", min=0.01),
        name="ext",
        datasets_names=["run1"],
    )
    return Models([crab, ext, FoVBackgroundModel("run1"), FoVBackgroundModel("run2")])


def test_collection_access(models):
    assert len(models) == 4
    assert models.names == ["crab", "ext", "run1-bkg", "run2-bkg"]
    assert models["crab"] is models[0]
    assert "ext" in models
    assert isinstance(models[1:], Models) and len(models[1:]) == 3
    assert [m.name for m in models.select("run2")] == ["crab", "run2-bkg"]
    assert len(models.sky_models) == 2 and len(models.background_models) == 2
    with pytest.raises(KeyError, match="no model named"):
        models["nope"]
    with pytest.raises(ValueError, match="unique"):
        Models([models[0], models[0]])
    with pytest.raises(ValueError, match=r"without '\.'"):
        SkyModel(PowerLaw(), name="a.b")


def test_free_parameter_vector(models):
    names = models.free_parameter_names
    assert names == [
        "crab.spectral.index",
        "crab.spectral.amplitude",
        "crab.spatial.lon_0",
        "crab.spatial.lat_0",
        "ext.spectral.index",
        "ext.spectral.amplitude",
        "ext.spatial.lon_0",
        "ext.spatial.lat_0",
        "ext.spatial.sigma",
        "run1-bkg.spectral.norm",
        "run2-bkg.spectral.norm",
    ]
    x = models.get_vector()
    assert x[0] == 2.6 and x[-1] == 1.0
    lo, hi = models.get_bounds()
    assert lo[names.index("ext.spatial.sigma")] == 0.01
    assert lo[names.index("crab.spatial.lat_0")] == -90 and hi[0] == math.inf


def test_with_vector_returns_new_models(models):
    x = models.get_vector()
    new = models.with_vector(x * 1.1, errors=np.full(x.size, 0.01))
    assert new.get_vector() == pytest.approx(x * 1.1)
    assert models.get_vector() == pytest.approx(x)  # original untouched
    assert new["crab"].spectral.index.error == 0.01
    assert new["crab"].spectral.reference == models["crab"].spectral.reference
    assert new["ext"].datasets_names == ("run1",)
    with pytest.raises(ValueError, match="expected 11 values"):
        models.with_vector(x[:3])


def test_component_values_for_fitters(models):
    x = models.get_vector()
    x[0] = 3.0
    values = models.component_values(x)
    assert values[("crab", "spectral")] == {"index": 3.0, "amplitude": 4.5e-11, "reference": 1.0}
    e = np.array([1.0, 2.0])
    np.testing.assert_allclose(
        models["crab"].spectral.evaluate(e, **values[("crab", "spectral")]),
        models.with_vector(x)["crab"].spectral(e),
    )


def test_links_share_one_slot(models):
    linked = models.link("bkg", "run1-bkg.spectral.norm", "run2-bkg.spectral.norm")
    assert linked.free_parameter_names[-1] == "run1-bkg.spectral.norm"
    assert len(linked.free_parameter_names) == len(models.free_parameter_names) - 1
    x = linked.get_vector()
    x[-1] = 0.9
    fitted = linked.with_vector(x)
    assert fitted["run1-bkg"].spectral.norm.value == 0.9
    assert fitted["run2-bkg"].spectral.norm.value == 0.9
    assert fitted["run2-bkg"].spectral.norm.link == "bkg"
    assert (
        fitted.with_values({"run2-bkg.spectral.norm": 1.2})["run1-bkg"].spectral.norm.value == 1.2
    )
    with pytest.raises(ValueError, match="already used"):
        linked.link("bkg", "crab.spectral.index")
    frozen = linked.with_parameter("run2-bkg.spectral.norm", frozen=True)
    assert frozen["run1-bkg"].spectral.norm.frozen  # partners follow
    bkg1 = linked["run1-bkg"]
    bkg2 = linked["run2-bkg"]
    with pytest.raises(ValueError, match="all be frozen or all free"):
        Models([bkg1, bkg2.replace(spectral=bkg2.spectral.with_frozen("norm"))])


def test_parameters_dataset(models):
    ds = models.parameters_dataset()
    assert ds.sizes["param"] == len(models.parameters) == 19
    assert ds["value"].sel(param="crab.spectral.index") == 2.6
    assert bool(ds["frozen"].sel(param="crab.spectral.reference"))
    assert str(ds["unit"].sel(param="crab.spectral.amplitude").values) == "cm-2 s-1 TeV-1"


def test_sky_model_evaluation_and_sampling():
    m = SkyModel(
        PowerLaw(index=2.0, amplitude=1e-12),
        GaussianSpatialModel(lon_0=10, lat_0=0, sigma=0.5),
        name="src",
    )
    v = m(np.array([10.0, 10.5]), np.array([0.0, 0.0]), np.array([1.0, 2.0]))
    np.testing.assert_allclose(v, m.spectral(np.array([1.0, 2.0])) * m.spatial([10.0, 10.5], 0.0))
    photons = m.sample(500, 1.0, 10.0, rng=4)
    assert set(photons) == {"energy", "lon", "lat"} and photons["energy"].shape == (500,)
    again = m.sample(500, 1.0, 10.0, rng=4)
    np.testing.assert_array_equal(photons["lon"], again["lon"])
    with pytest.raises(TypeError, match="no spatial model"):
        SkyModel(PowerLaw(), name="s")(0.0, 0.0, 1.0)
    with pytest.raises(TypeError, match="temporal must be a TemporalModel"):
        SkyModel(PowerLaw(), name="s", temporal=object())


def test_fov_background_model():
    bkg = FoVBackgroundModel("run1", norm=1.1, tilt=0.2)
    assert bkg.name == "run1-bkg"
    assert bkg.factor(2.0) == pytest.approx(1.1 * 2.0**-0.2)
    assert bkg.spectral.tilt.frozen
    assert bkg.applies_to("run1") and not bkg.applies_to("run2")
    with pytest.raises(TypeError, match="PowerLawNorm"):
        FoVBackgroundModel("run1", spectral=PowerLaw())
    assert FoVBackgroundModel("run1", spectral=PowerLawNorm(norm=1.1, tilt=0.2)) == bkg
