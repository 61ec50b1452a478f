"""The description schemas (pydantic): all errors at once, paths, units, JSON schema."""

from __future__ import annotations

import copy
import json

import pytest

from gammaxr.analysis import AnalysisConfigError, parse_analysis_config
from gammaxr.analysis.config import analysis_json_schema
from gammaxr.analysis.demo import demo_description
from gammaxr.cli import main
from gammaxr.simulate import SimulationConfigError, parse_config
from gammaxr.simulate.config import simulation_json_schema
from gammaxr.simulate.scenarios import default_description


def _analysis(**sections):
    data = copy.deepcopy(demo_description("store"))
    data.update(sections)
    return data


def test_every_error_of_a_file_at_once_with_its_path():
    data = _analysis(
        grid={"center": [83, 22], "width": "3 parsec", "binsz": -0.1, "fram": "icrs"},
        reduction={"offset_max": 0, "on_error": "ignore"},
        estimator={},
    )
    with pytest.raises(AnalysisConfigError) as info:
        parse_analysis_config(data, source="bad.yaml")
    problems = info.value.problems
    message = str(info.value)
    assert message.startswith(f"bad.yaml: {len(problems)} problems:")
    expected = [
        "grid.width[0]: expected a number in deg, got '3 parsec'",
        "grid.binsz: must be positive, got -0.1",
        "grid.fram: unknown key (did you mean 'frame'?)",
        "reduction.offset_max: must be positive, got 0.0",
        "reduction.on_error: must be one of ['raise', 'skip'], got 'ignore'",
        # a misspelt top-level key is named as itself, not under another section
        "estimator: unknown key (did you mean 'estimators'?)",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)
        assert text in message


def test_units_parsed_with_astropy():
    data = _analysis(
        grid={"center": ["83.45 deg", "1332 arcmin"], "width": "180 arcmin", "binsz": "1.2 arcmin"},
        axes={
            "energy": {"min": "300 GeV", "max": "30 TeV", "nbins": 2},
            "energy_true": {"edges": ["0.1 TeV", "1e6 MeV", 100]},
        },
        reduction={"offset_max": "7200 arcsec", "irf_binsz": "0.2 deg"},
    )
    config = parse_analysis_config(data)
    assert config.binsz == pytest.approx(0.02)
    assert config.center == pytest.approx((83.45, 22.2))
    assert config.width == pytest.approx((3.0, 3.0))
    assert config.energy_edges == pytest.approx((0.3, 3.0, 30.0))
    assert config.energy_true_edges == pytest.approx((0.1, 1.0, 100.0))
    assert config.offset_max == pytest.approx(2.0)
    assert config.sections.grid.binsz == pytest.approx(0.02)


def test_model_errors_have_one_prefix():
    bad = {"components": [{"type": "Nope", "name": "x"}]}
    with pytest.raises(AnalysisConfigError) as info:
        parse_analysis_config(_analysis(fit={"models": bad}), source="a.yaml")
    message = str(info.value)
    assert message.startswith("a.yaml: fit.models: ") and message.count("fit.models") == 1
    assert "unknown component type 'Nope'" in message


def test_simulation_errors_at_once():
    data = copy.deepcopy(default_description())
    data["defaults"]["livetime"] = "30 parsec"
    data["defaults"]["deadc"] = "x"
    data["schedule"]["gapp"] = 1
    data["instruments"]["toy"]["psf_sigmaa"] = "1 deg"
    with pytest.raises(SimulationConfigError) as info:
        parse_config(data, source="sim.yaml")
    problems = info.value.problems
    assert "defaults.livetime: expected a number in s, got '30 parsec'" in problems
    assert "defaults.deadc: expected a number in no unit, got 'x'" in problems
    assert any(p.startswith("schedule.gapp: unknown key (did you mean 'gap'?)") for p in problems)
    assert any(
        p.startswith("instruments.toy.psf_sigmaa: unknown key (did you mean 'psf_sigma'?)")
        for p in problems
    )
    # problems found after the structure is valid are also listed together
    data = copy.deepcopy(default_description())
    data["defaults"]["livetime"] = -1
    data["instruments"]["toy"]["aeff_max"] = -5
    with pytest.raises(SimulationConfigError) as info:
        parse_config(data, source="sim.yaml")
    text = str(info.value)
    assert "instruments.toy: ToyInstrument.aeff_max must be positive, got -5.0" in text
    assert "obs_id 1): livetime must be positive" in text and "obs_id 4)" in text


@pytest.mark.parametrize(
    ("schema", "keys"),
    [
        (analysis_json_schema, {"grid", "axes", "reduction", "compute"}),
        (simulation_json_schema, {"observations", "instruments", "schedule"}),
    ],
)
def test_json_schema_export(schema, keys, tmp_path, capsys):
    data = json.loads(schema())
    assert keys <= set(data["properties"])
    assert data.get("additionalProperties") is False
    kind = "analysis" if schema is analysis_json_schema else "simulation"
    assert main(["schema", kind]) == 0
    assert json.loads(capsys.readouterr().out) == data
    assert main(["schema", kind, "-o", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text()) == data


def test_grid_units_in_json_schema():
    grid = json.loads(analysis_json_schema())["$defs"]["Grid"]["properties"]["binsz"]
    assert {"type": "string"} in grid["anyOf"] and "deg" in grid["description"]
