"""The further spectral, spatial and temporal models: values, integrals, sampling, YAML."""

from __future__ import annotations

import itertools

import dask.array as da
import numpy as np
import pytest
from scipy.integrate import quad

from gammaxr.fit import fit
from gammaxr.models import (
    CompoundSpectral,
    ConstantSpectral,
    ConstantTemporalModel,
    EBLAbsorptionNorm,
    ExpCutoffPowerLaw3FGL,
    ExpDecayTemporalModel,
    FoVBackgroundModel,
    GaussianSpatialModel,
    GaussianTemporalModel,
    GeneralizedGaussianSpatialModel,
    LightCurveTemplateTemporalModel,
    LogParabola,
    ModelFormatError,
    Models,
    PiecewiseNorm,
    PowerLaw,
    Shell2SpatialModel,
    ShellSpatialModel,
    SkyModel,
    SmoothBrokenPowerLaw,
    SuperExpCutoffPowerLaw4FGLDR3,
    models_from_yaml,
    read_ebl_table,
    write_ebl_table,
)
from gammaxr.models.sphere import separation
from gammaxr.testing import simulate_counts, toy_map_dataset

SPECTRA = {
    "ecpl3fgl": ExpCutoffPowerLaw3FGL(index=1.9, ecut=5.0),
    "secpl4": SuperExpCutoffPowerLaw4FGLDR3(expfactor=0.3, index_1=1.7, index_2=0.6),
    "sbpl": SmoothBrokenPowerLaw(index1=1.8, index2=3.1, ebreak=2.0, beta=0.7),
    "const": ConstantSpectral(const=3e-13),
    "pl_x_piecewise_log": PowerLaw(index=2.4)
    * PiecewiseNorm([0.5, 1.0, 4.0], norms=[1.0, 2.0, 0.5]),
    "pl_x_piecewise_lin": PowerLaw(index=2.4)
    * PiecewiseNorm([0.5, 1.0, 4.0], norms=[1.0, 2.0, 0.5], interp="lin"),
    "pl_plus_lp": PowerLaw(index=2.0) + LogParabola(amplitude=1e-12, alpha=2.0, beta=0.3),
}


def _quad(func, a, b):
    """Reference integral in log energy, split at decades."""
    edges = np.geomspace(a, b, 9)
    return sum(
        quad(lambda x: func(np.exp(x)) * np.exp(x), np.log(lo), np.log(hi), epsabs=0)[0]
        for lo, hi in itertools.pairwise(edges)
    )


@pytest.mark.parametrize("name", sorted(SPECTRA))
def test_spectral_integrals_match_quadrature(name):
    model = SPECTRA[name]
    for a, b in [(0.3, 0.8), (0.7, 3.0), (1.0, 30.0)]:
        expected = _quad(lambda e: model(np.array(e)), a, b)
        np.testing.assert_allclose(model.integral(a, b), expected, rtol=1e-7, err_msg=name)
        eflux = _quad(lambda e: e * model(np.array(e)), a, b)
        np.testing.assert_allclose(model.energy_flux(a, b), eflux, rtol=1e-7)


def test_spectral_models_are_lazy_and_quantity_aware(raise_on_compute):
    energy = da.from_array(np.geomspace(0.5, 50, 8), chunks=4)
    for model in SPECTRA.values():
        lazy = model.evaluate_integral(energy[:-1], energy[1:], **model.values)
        assert isinstance(lazy, da.Array)
    import astropy.units as u

    value = SPECTRA["sbpl"](1000 * u.GeV)
    assert value.unit == u.Unit("cm-2 s-1 TeV-1")


def test_4fgl_dr3_is_smooth_through_the_reference_energy():
    model = SuperExpCutoffPowerLaw4FGLDR3(expfactor=0.5, index_1=1.5, index_2=0.7)
    e = 1.0 + np.array([-1e-6, -1e-9, 0.0, 1e-9, 1e-6])
    x, d, b = e, 0.5, 0.7
    direct = 1e-12 * x ** (d / b - 1.5) * np.exp(d / b**2 * (1 - x**b))
    np.testing.assert_allclose(model(e), direct, rtol=1e-12)


def test_compound_parameters_members_and_operators():
    pl, lp = PowerLaw(index=2.1), LogParabola(alpha=2.5)
    compound = pl + lp
    assert isinstance(compound, CompoundSpectral) and compound.operator == "add"
    assert compound.parameter_names[:3] == ("model1.index", "model1.amplitude", "model1.reference")
    changed = compound.with_values(**{"model2.alpha": 3.0})
    assert changed.model2.alpha.value == 3.0 and changed.model1 == pl
    e = np.array([2.0])
    np.testing.assert_allclose(changed(e), pl(e) + lp.with_values(alpha=3.0)(e))
    ratio = pl / lp
    assert ratio.unit == ""
    with pytest.raises(ValueError, match="operator"):
        CompoundSpectral(pl, lp, "pow")
    with pytest.raises(ValueError, match="cannot add"):
        CompoundSpectral(pl, PiecewiseNorm([1, 2]), "add")
    nested = (pl + lp) * PiecewiseNorm([1.0, 10.0], norms=[1.0, 0.5])
    again = models_from_yaml(Models([SkyModel(nested, name="n")]).to_yaml())
    assert again["n"].spectral == nested
    assert "n.spectral.model1.model2.beta" in [r.full_name for r, _ in again.parameters]


def test_piecewise_norm_is_constant_outside_its_nodes():
    norm = PiecewiseNorm([1.0, 10.0], norms=[2.0, 0.5])
    e = np.array([0.1, 1.0, np.sqrt(10), 10.0, 100.0])
    np.testing.assert_allclose(norm(e), [2, 2, 1, 0.5, 0.5])
    with pytest.raises(ValueError, match="increasing"):
        PiecewiseNorm([2.0, 1.0])


def _synthetic_ebl(tmp_path):
    """A small optical-depth table tau = z * (E / 1 TeV) ** 0.8 on 3 redshifts."""
    edges = np.geomspace(0.05, 50.0, 31)
    centres = np.sqrt(edges[1:] * edges[:-1])
    z = np.array([0.0, 0.1, 0.2, 0.2])  # duplicated last row, as in some published tables
    values = np.exp(-np.outer(z, centres**0.8) * 5.0)
    path = tmp_path / "ebl.fits"
    write_ebl_table(path, edges, z, values)
    return path, centres


def test_ebl_table_read_evaluate_and_yaml(tmp_path):
    path, centres = _synthetic_ebl(tmp_path)
    energy, param, values = read_ebl_table(path)
    assert values.shape == (3, centres.size)
    np.testing.assert_allclose(energy, centres)
    np.testing.assert_array_equal(param, [0.0, 0.1, 0.2])
    ebl = EBLAbsorptionNorm.read(path, redshift=0.15, alpha_norm=1.0)
    e = centres[[3, 12, 25]]
    # at the energy nodes: log values are linear in z, so interpolation in z is exact
    np.testing.assert_allclose(ebl(e), np.exp(-0.15 * 5.0 * e**0.8), rtol=1e-12)
    between = np.sqrt(centres[12] * centres[13])
    assert ebl(centres[13]) < ebl(np.array([between])) < ebl(centres[12])
    half = ebl.with_values(alpha_norm=0.5)
    np.testing.assert_allclose(half(e), ebl(e) ** 0.5)
    absorbed = PowerLaw(index=2.0) * ebl
    assert absorbed.integral(1.0, 10.0) < PowerLaw(index=2.0).integral(1.0, 10.0)
    models = Models([SkyModel(absorbed, name="blazar")])
    yaml_path = tmp_path / "m.yaml"
    models.write(yaml_path)
    assert "filename" in yaml_path.read_text()
    assert Models.read(yaml_path) == models
    inline = Models([SkyModel(PowerLaw() * ebl.with_filename(None), name="b")])
    text = inline.to_yaml()
    assert "param:" in text and "filename" not in text
    assert models_from_yaml(text) == inline
    missing = models.to_dict()
    missing["components"][0]["spectral"]["model2"]["filename"] = "missing.fits"
    with pytest.raises(ModelFormatError, match=r"missing\.fits not found"):
        Models.from_dict(missing)


def test_shell2_is_the_shell_with_inner_radius_from_eta():
    shell2 = Shell2SpatialModel(lon_0=10, lat_0=40, r_0=0.5, eta=0.3)
    shell = ShellSpatialModel(lon_0=10, lat_0=40, radius=0.35, width=0.15)
    lon, lat = np.array([10.0, 10.2, 10.5, 10.7]), np.array([40.0, 40.1, 40.2, 40.0])
    np.testing.assert_allclose(shell2(lon, lat), shell(lon, lat), rtol=1e-12)
    with pytest.raises(ValueError, match="eta"):
        Shell2SpatialModel(eta=0.0)


@pytest.mark.parametrize("e", [0.0, 0.6])
def test_generalized_gaussian_normalised_and_sampled(e):
    model = GeneralizedGaussianSpatialModel(lon_0=30, lat_0=-20, r_0=2.0, eta=0.7, e=e, phi=40)
    half = 30.0
    lon = np.arange(30 - half, 30 + half, 0.05) + 0.025
    lat = np.arange(-20 - half, -20 + half, 0.05) + 0.025
    total = model.integrate_pixels(lon, lat, "icrs").sum()
    assert abs(total - 1) < 2e-3  # the rest lies beyond the 30 deg box
    lon_s, lat_s = model.sample(20000, rng=1)
    sep = separation(lon_s, lat_s, 30.0, -20.0)
    grid_lon, grid_lat = np.meshgrid(lon, lat)
    weights = model(grid_lon, grid_lat) * np.cos(np.deg2rad(grid_lat))
    grid_sep = separation(grid_lon, grid_lat, 30.0, -20.0)
    for radius in (1.0, 3.0, 6.0):
        expected = weights[grid_sep < radius].sum() / weights.sum()
        assert abs(np.mean(sep < radius) - expected) < 0.012


def test_generalized_gaussian_eta_half_is_a_gaussian():
    gen = GeneralizedGaussianSpatialModel(lon_0=0, lat_0=0, r_0=0.3 * np.sqrt(2), eta=0.5)
    gauss = GaussianSpatialModel(lon_0=0, lat_0=0, sigma=0.3)
    lon = np.array([0.0, 0.2, 0.5, 1.0])
    # equal up to the Gaussian's versine profile on the sphere (1e-4 at 3 sigma)
    np.testing.assert_allclose(gen(lon, 0 * lon), gauss(lon, 0 * lon), rtol=3e-4)
    np.testing.assert_allclose(gen(lon[:2], 0 * lon[:2]), gauss(lon[:2], 0 * lon[:2]), rtol=1e-5)


TEMPORAL = {
    "const": ConstantTemporalModel(),
    "expdecay": ExpDecayTemporalModel(t0=0.3, t_ref=55000.0),
    "gauss": GaussianTemporalModel(t_ref=55000.2, sigma=0.1),
    "template": LightCurveTemplateTemporalModel(
        [0.0, 0.1, 0.4, 0.5], [0.5, 2.0, 1.0, 0.0], t_ref=55000.0
    ),
}


@pytest.mark.parametrize("name", sorted(TEMPORAL))
def test_temporal_integrals_means_and_sampling(name):
    model = TEMPORAL[name]
    t0, t1 = 55000.05, 55000.45
    expected = quad(lambda t: float(model(np.array(t))), t0, t1, points=[55000.1, 55000.4])[0]
    np.testing.assert_allclose(model.integral(t0, t1), expected, rtol=1e-9)
    parts = np.array([[t0, 55000.2], [55000.3, t1]])
    mean = sum(float(model.integral(a, b)) for a, b in parts) / np.diff(parts).sum()
    np.testing.assert_allclose(model.mean_norm(parts[:, 0], parts[:, 1]), mean, rtol=1e-9)
    times = model.sample_time(20000, parts[:, 0], parts[:, 1], rng=3)
    assert np.all(((times >= t0) & (times <= 55000.2)) | ((times >= 55000.3) & (times <= t1)))
    frac = np.mean(times < 55000.2)
    assert abs(frac - float(model.integral(t0, 55000.2)) / (mean * np.diff(parts).sum())) < 0.012


def test_light_curve_template_file_and_yaml_round_trip(tmp_path):
    template = TEMPORAL["template"]
    np.testing.assert_allclose(template(np.array([54999.0, 55000.05, 55001.0])), [0, 1.25, 0])
    models = Models([SkyModel(PowerLaw(), name="flare", temporal=template)])
    path = tmp_path / "models.yaml"
    models.write(path)
    assert (tmp_path / "models_flare_lc.fits").exists()
    again = Models.read(path)
    assert again["flare"].temporal == template
    assert again["flare"].temporal.filename == "models_flare_lc.fits"
    with pytest.raises(ModelFormatError, match="not found"):
        models_from_yaml(path.read_text().replace("models_flare_lc.fits", "nope.fits"))
    with pytest.raises(ValueError, match="scale"):
        ConstantTemporalModel(scale="martian")


def test_fit_recovers_new_spectral_and_spatial_models():
    toy = toy_map_dataset(center=(83.63, 22.01))
    source = SkyModel(
        ExpCutoffPowerLaw3FGL(index=2.0, amplitude="5e-11 cm-2 s-1 TeV-1", ecut=5.0),
        GeneralizedGaussianSpatialModel(lon_0=83.65, lat_0=22.0, r_0=0.15, eta=0.5),
        name="src",
    )
    truth = Models([source, FoVBackgroundModel("toy")])
    sim = simulate_counts(toy, truth, 7)
    start = truth.with_values({"src.spectral.index": 2.3, "src.spatial.r_0": 0.2})
    result = fit(sim, start)
    assert result.success, result.message
    for name in ("src.spectral.index", "src.spatial.r_0", "src.spatial.lon_0"):
        truth_value = truth.parameter(name).value
        assert abs(result.value(name) - truth_value) < 4 * result.error(name), name
