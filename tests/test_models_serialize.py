"""Gammapy model YAML: round trips, a hand-written Gammapy file, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
import yaml

from gammaxr.models import (
    BrokenPowerLaw,
    DiskSpatialModel,
    ExpCutoffPowerLaw,
    FoVBackgroundModel,
    GaussianSpatialModel,
    LogParabola,
    ModelFormatError,
    Models,
    PointSpatialModel,
    PowerLaw,
    PowerLaw2,
    ShellSpatialModel,
    SkyModel,
    TemplateSpatialModel,
    TemplateSpectral,
    UnknownModelTypeError,
    models_from_yaml,
    models_to_dict,
    read_models,
    write_models,
)


@pytest.fixture
def all_models():
    lon = np.arange(-1.0, 1.0 + 1e-9, 0.1)
    lat = np.arange(-0.5, 0.5 + 1e-9, 0.1)
    data = np.exp(-(lon[None, :] ** 2 + lat[:, None] ** 2) / 0.2)
    template = xr.DataArray(
        data, coords={"lat": lat, "lon": lon}, dims=("lat", "lon"), attrs={"frame": "galactic"}
    )
    models = Models(
        [
            SkyModel(
                PowerLaw(index=2.6, amplitude=4.5e-11).with_parameter("index", error=0.1),
                PointSpatialModel(lon_0=83.63, lat_0=22.01),
                name="crab",
            ),
            SkyModel(
                LogParabola(alpha=2.3, beta=0.2),
                GaussianSpatialModel(sigma=0.2, e=0.5, phi=30, frame="galactic").with_parameter(
                    "sigma", min=0.01, max=2.0
                ),
                name="gauss",
                datasets_names=["run1", "run2"],
            ),
            SkyModel(
                ExpCutoffPowerLaw(index=2.1, lambda_=0.05),
                DiskSpatialModel(r_0=0.4, e=0.3, edge_width=0.1).with_free("e"),
                name="disk",
            ),
            SkyModel(
                BrokenPowerLaw(index1=1.8, index2=3.0, ebreak=3.0).with_frozen("ebreak"),
                ShellSpatialModel(radius=0.6, width=0.1),
                name="shell",
            ),
            SkyModel(PowerLaw2(index=2.2, amplitude=3e-11), None, name="spectrum_only"),
            SkyModel(
                TemplateSpectral([1.0, 2.0, 3.0], [1e-12, 2e-13, 1e-13], norm=1.5),
                TemplateSpatialModel(template),
                name="tmpl",
            ),
            FoVBackgroundModel("run1", tilt=0.1),
            FoVBackgroundModel("run2"),
        ]
    )
    return models.link("shared", "run1-bkg.spectral.norm", "run2-bkg.spectral.norm")


def _same(a: Models, b: Models) -> None:
    assert a.names == b.names
    for ma, mb in zip(a, b, strict=True):
        if isinstance(ma, SkyModel) and isinstance(ma.spatial, TemplateSpatialModel):
            assert ma.spectral == mb.spectral
            assert ma.spatial.parameters == mb.spatial.parameters
            np.testing.assert_allclose(ma.spatial.map.values, mb.spatial.map.values, rtol=1e-9)
            np.testing.assert_allclose(ma.spatial.map.lon, mb.spatial.map.lon, atol=1e-9)
        else:
            assert ma == mb, ma.name


@pytest.mark.parametrize("full_output", [False, True])
def test_round_trip_through_files(all_models, tmp_path, full_output):
    path = tmp_path / "models.yaml"
    write_models(all_models, path, full_output=full_output)
    assert (tmp_path / "models_tmpl.fits").exists()
    back = read_models(path)
    _same(all_models, back)
    assert back.free_parameter_names == all_models.free_parameter_names
    with pytest.raises(FileExistsError):
        write_models(all_models, path)
    all_models.write(path, overwrite=True)
    _same(all_models, Models.read(path))


def test_round_trip_through_text(all_models):
    models = all_models[:-3] + all_models[-2:]  # the spatial template needs a file
    text = models.to_yaml()
    assert Models.from_yaml(text) == models
    with pytest.raises(ModelFormatError, match="filename"):
        all_models.to_yaml()
    named = all_models.replace(
        all_models["tmpl"].replace(spatial=all_models["tmpl"].spatial.with_filename("t.fits"))
    )
    assert "filename: t.fits" in named.to_yaml()


def test_compact_output_omits_defaults(all_models):
    data = models_to_dict(all_models, template_filenames={"tmpl": "t.fits"})
    crab = data["components"][0]
    assert crab["type"] == "SkyModel" and crab["spectral"]["type"] == "PowerLawSpectralModel"
    index, amplitude, reference = crab["spectral"]["parameters"]
    assert index == {"name": "index", "value": 2.6, "error": 0.1}
    assert amplitude == {"name": "amplitude", "value": 4.5e-11, "unit": "cm-2 s-1 TeV-1"}
    assert reference == {"name": "reference", "value": 1.0, "unit": "TeV"}
    gauss = data["components"][1]
    assert gauss["datasets_names"] == ["run1", "run2"]
    assert gauss["spatial"]["frame"] == "galactic"
    sigma = gauss["spatial"]["parameters"][2]
    assert (sigma["min"], sigma["max"]) == (0.01, 2.0)
    ebreak = data["components"][3]["spectral"]["parameters"][3]
    assert ebreak["frozen"] is True
    bkg = data["components"][-1]
    assert bkg == {
        "type": "FoVBackgroundModel",
        "datasets_names": ["run2"],
        "spectral": {
            "type": "PowerLawNormSpectralModel",
            "parameters": [
                {"name": "tilt", "value": 0.0},
                {"name": "norm", "value": 1.0, "link": "shared"},
                {"name": "reference", "value": 1.0, "unit": "TeV"},
            ],
        },
    }
    full = models_to_dict(all_models[:1], full_output=True)["components"][0]["spectral"][
        "parameters"
    ]
    assert set(full[2]) == {"name", "value", "unit", "error", "min", "max", "frozen"}
    assert math.isnan(full[2]["min"]) and full[2]["frozen"] is True


# A file typed from Gammapy's format description: FITS-style unit strings, short tags,
# omitted fields (class defaults apply), extra Gammapy keys, links, covariance, metadata.
GAMMAPY_YAML = """
components:
-   name: crab
    type: SkyModel
    spectral:
        type: pl
        parameters:
        -   name: index
            value: 2.6
            error: 0.1
            interp: lin
            scale_method: scale10
        -   name: amplitude
            value: 4.5e-7
            unit: m-2 s-1 TeV-1
        -   name: reference
            value: 1000.0
            unit: GeV
    spatial:
        type: PointSpatialModel
        frame: icrs
        parameters:
        -   {name: lon_0, value: 83.63, unit: deg}
        -   {name: lat_0, value: 0.38414, unit: rad}
-   name: snr
    type: SkyModel
    datasets_names: [stacked]
    spectral:
        type: ExpCutoffPowerLawSpectralModel
        parameters:
        -   {name: index, value: 2.0, link: index@abcd}
        -   {name: amplitude, value: 1e-12, unit: TeV-1 s-1 cm-2}
        -   {name: reference, value: 1.0, unit: TeV}
        -   {name: lambda_, value: 0.05, unit: TeV-1}
        -   {name: alpha, value: 1.0}
    spatial:
        type: disk
        frame: galactic
        parameters:
        -   {name: lon_0, value: 347.3, unit: deg}
        -   {name: lat_0, value: -0.5, unit: deg}
        -   {name: r_0, value: 0.6, unit: deg, min: 0.0, max: 2.0}
-   name: other
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   {name: index, value: 2.0, link: index@abcd}
        -   {name: amplitude, value: 2.0e-12, unit: TeV-1 s-1 cm-2}
        -   {name: reference, value: 1.0, unit: TeV}
-   name: tab
    type: SkyModel
    spectral:
        type: TemplateSpectralModel
        parameters: []
        energy:
            data: [1.0, 2.0, 3.0]
            unit: TeV
        values:
            data: [1.0e-12, 2.0e-13, 1.0e-13]
            unit: 1 / (TeV s cm2)
-   type: FoVBackgroundModel
    datasets_names:
    - stacked
    spectral:
        type: PowerLawNormSpectralModel
        parameters:
        -   {name: tilt, value: 0.0}
        -   {name: norm, value: 0.95}
        -   {name: reference, value: 1.0, unit: TeV}
covariance: results_covariance.dat
metadata:
    creator: Gammapy 2.1
"""


def test_hand_written_gammapy_file_parses():
    with pytest.warns(UserWarning, match=r"\['e', 'edge_width', 'phi'\] not given"):
        models = models_from_yaml(GAMMAPY_YAML)
    assert models.names == ["crab", "snr", "other", "tab", "stacked-bkg"]
    crab = models["crab"]
    assert isinstance(crab.spectral, PowerLaw)
    assert crab.spectral.amplitude.value == pytest.approx(4.5e-11)
    assert crab.spectral.amplitude.unit == "cm-2 s-1 TeV-1"
    assert crab.spectral.reference.value == pytest.approx(1.0)
    assert crab.spectral.reference.frozen  # omitted -> class default
    assert crab.spectral.index.error == 0.1
    assert crab.spatial.lat_0.value == pytest.approx(np.rad2deg(0.38414))
    assert crab.spatial.lat_0.bounds == (-90.0, 90.0)
    snr = models["snr"]
    assert isinstance(snr.spatial, DiskSpatialModel) and snr.spatial.frame == "galactic"
    assert snr.spatial.edge_width.value == 0.01 and snr.spatial.e.frozen  # missing -> defaults
    assert snr.spatial.r_0.bounds == (0.0, 2.0)
    assert snr.spectral.amplitude.value == 1e-12  # "1e-12" is a YAML string
    assert snr.spectral.alpha.frozen
    assert snr.datasets_names == ("stacked",)
    # the shared index is one fit parameter
    free = models.free_parameter_names
    assert "snr.spectral.index" in free and "other.spectral.index" not in free
    assert models["tab"].spectral(2.0) == pytest.approx(2e-13)
    assert models["stacked-bkg"].spectral.norm.value == 0.95


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (("type: pl", "type: SuperPowerLaw"), UnknownModelTypeError, "SuperPowerLaw"),
        (("type: disk", "type: Ring"), UnknownModelTypeError, "unknown spatial model type"),
        (
            ("type: SkyModel\n    datasets", "type: TemplateNPredModel\n    datasets"),
            UnknownModelTypeError,
            "TemplateNPredModel",
        ),
        (("unit: m-2 s-1 TeV-1", "unit: deg"), ModelFormatError, "component 'crab'.*amplitude"),
        (("unit: GeV", "unit: parsecs-ish"), ModelFormatError, "cannot parse unit"),
        (("name: lambda_", "name: lambda"), ModelFormatError, "no parameter 'lambda'"),
        (("frame: galactic", "frame: fk4"), ModelFormatError, "frame"),
        (("- stacked\n", "- stacked\n    - other\n"), ModelFormatError, "exactly one dataset"),
        (("components:", "models:"), ModelFormatError, "components"),
        (("error: 0.1", "prior: {type: GaussianPrior}"), ModelFormatError, "prior"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*not given, using defaults")
def test_bad_files_give_clear_errors(edit, error, match):
    old, new = edit
    assert old in GAMMAPY_YAML
    with pytest.raises(error, match=match):
        models_from_yaml(GAMMAPY_YAML.replace(old, new, 1), source="bad.yaml")


@pytest.mark.filterwarnings("ignore:.*not given, using defaults")
def test_unsupported_parts_are_refused():
    data = yaml.safe_load(GAMMAPY_YAML)
    data["components"][0]["temporal"] = {"type": "SineTemporalModel", "parameters": []}
    with pytest.raises(UnknownModelTypeError, match="unknown temporal model type 'Sine"):
        Models.from_dict(data)
    data = yaml.safe_load(GAMMAPY_YAML)
    data["components"][4]["spectral"] = data["components"][0]["spectral"]
    with pytest.raises(UnknownModelTypeError, match="only PowerLawNormSpectralModel"):
        Models.from_dict(data)


def test_missing_template_file_and_missing_parameters(tmp_path):
    text = """
components:
-   name: t
    type: SkyModel
    spectral: {type: PowerLawSpectralModel, parameters: [{name: index, value: 2.0}]}
    spatial: {type: TemplateSpatialModel, frame: icrs, parameters: [], filename: nope.fits}
"""
    with pytest.raises(ModelFormatError, match=r"nope\.fits"), pytest.warns(UserWarning):
        models_from_yaml(text, base_path=tmp_path)
    with pytest.warns(UserWarning, match="amplitude"):
        m = models_from_yaml(text.split("    spatial")[0])
    assert m["t"].spectral.amplitude.value == 1e-12
