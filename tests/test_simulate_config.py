"""Simulation descriptions: the YAML format, defaults, schedules, and clear errors."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from gammaxr.models import Models, PowerLaw, SkyModel
from gammaxr.models.sphere import position_angle, separation, transform_lonlat
from gammaxr.simulate import (
    InstrumentSpec,
    ObservationSpec,
    SimulationConfig,
    SimulationConfigError,
    default_scenario,
    parse_config,
    read_config,
    simulate_datastore,
)
from gammaxr.simulate.scenarios import default_description
from gammaxr.simulate.specs import TIME_REFERENCE

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "simulate_default.yaml"


def test_example_file_is_the_default_scenario():
    config = read_config(EXAMPLE)
    assert config == default_scenario()
    assert str(EXAMPLE) in config.source


def test_default_scenario_layout():
    config = default_scenario()
    assert config.obs_ids == [1, 2, 3, 4]
    assert config.models.names == ["point", "extended"]
    assert sum(o.livetime for o in config.observations) == pytest.approx(7200.0)
    ra0, dec0 = 83.633, 22.014
    pa = [position_angle(ra0, dec0, o.ra, o.dec) % 360 for o in config.observations]
    np.testing.assert_allclose(pa, [0, 90, 180, 270], atol=1e-6)
    for obs in config.observations:
        assert separation(ra0, dec0, obs.ra, obs.dec) == pytest.approx(0.5)
        assert (obs.target_name, obs.target_ra, obs.target_dec) == ("Crab-like", ra0, dec0)
    # consecutive runs, 300 s apart
    starts = np.array([o.tstart for o in config.observations])
    stops = np.array([o.tstop for o in config.observations])
    np.testing.assert_allclose(starts[1:] - stops[:-1], 300.0)
    changed = default_scenario(livetime=60.0, seed=3, psf_format="3gauss")
    assert changed.seed == 3 and changed.observations[0].livetime == 60.0
    assert dict(changed.instruments["toy"].parameters) == {"psf_format": "3gauss"}


def test_quantities_frames_and_schedules():
    data = {
        "instruments": {"a": {"type": "toy", "aeff_max": "2e5", "energy_threshold": "100 GeV"}},
        "schedule": {"start": "2024-03-01T00:00:00", "gap": "2 min"},
        "defaults": {"instrument": "a", "livetime": "30 min"},
        "observations": [
            {"pointing": {"lon": 0.0, "lat": 0.0, "frame": "galactic"}},
            {"pointing": [10.0, -20.0], "livetime": "0.1 h", "deadc": 0.9},
            {"obs_id": 50, "pointing": {"ra": "15 deg", "dec": -20}, "start": 1.0e8},
        ],
        "energy_true": ["50 GeV", 50],
    }
    config = parse_config(data)
    assert config.obs_ids == [1, 2, 50]
    first, second, third = config.observations
    (ra, dec), _ = transform_lonlat(np.array([0.0]), np.array([0.0]), "galactic", "icrs"), None
    assert first.ra == pytest.approx(ra[0]) and first.dec == pytest.approx(dec[0])
    assert first.livetime == 1800.0 and second.livetime == pytest.approx(360.0)
    assert second.ontime == pytest.approx(400.0)
    assert second.tstart == pytest.approx(first.tstop + 120.0)
    assert third.tstart == 1.0e8 and third.ra == 15.0
    assert config.energy_true == (0.05, 50.0)
    toy = config.instruments["a"].toy()
    assert toy.aeff_max == 2e5 and toy.energy_threshold == pytest.approx(0.1)
    assert TIME_REFERENCE["MJDREFI"] == 51910


def test_models_from_file(tmp_path):
    models = Models([default_scenario().models["point"]])
    models.write(tmp_path / "models.yaml")
    data = default_description()
    data["models"] = "models.yaml"
    (tmp_path / "sim.yaml").write_text(yaml.safe_dump(data))
    config = read_config(tmp_path / "sim.yaml")
    assert config.models.names == ["point"]


def _with(changes):
    """The default description with some entries changed (path -> value; None deletes)."""
    data = copy.deepcopy(default_description())
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is None:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


UNKNOWN_MODEL = {"components": [{"name": "x", "type": "SkyModel", "spectral": {"type": "Foo"}}]}
BKG_MODEL = {"components": [{"type": "FoVBackgroundModel", "datasets_names": ["a"]}]}
NO_SPATIAL = {
    "components": [{"name": "x", "type": "SkyModel", "spectral": {"type": "PowerLawSpectralModel"}}]
}
RUN = {"obs_id": 9, "pointing": {"ra": 1.0, "dec": 2.0}, "livetime": 10}


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"observatons": []}, "observatons: unknown key \\(did you mean 'observations'\\?\\)"),
        ({"models": UNKNOWN_MODEL}, "unknown spectral model type 'Foo'|'Foo'"),
        ({"models": BKG_MODEL}, "only SkyModel components can be simulated"),
        ({"models": NO_SPATIAL}, "has no spatial model"),
        ({"defaults.livetime": -10}, "livetime must be positive, got -10.0 s"),
        (
            {"defaults.livetime": "30 parsec"},
            "defaults.livetime: expected a number in s, got '30 parsec'",
        ),
        ({"defaults.deadc": 1.5}, "deadc must be in \\(0, 1\\]"),
        ({"instruments": None}, "pointing without IRF: instrument 'toy' is not defined"),
        ({"defaults.instrument": None}, "pointing without IRF: no 'instrument' given"),
        ({"defaults.instrument": "cta"}, "instrument 'cta' is not defined \\(.*: toy\\)"),
        (
            {"instruments.toy": {"type": "magic"}},
            "instruments.toy.type: must be one of \\['toy', 'gadf', 'datastore'\\], got 'magic'",
        ),
        ({"instruments.toy": {"aef_max": 1}}, "did you mean 'aeff_max'"),
        ({"instruments.toy": {"aeff_max": -1}}, "aeff_max must be positive"),
        (
            {"instruments.toy": {"type": "gadf", "file": "nope.fits"}},
            "IRF file .*nope.fits not found",
        ),
        ({"instruments.toy": {"type": "gadf"}}, "instruments.toy: type 'gadf' needs 'file'"),
        ({"instruments.toy": {"type": "datastore", "path": "."}}, "needs 'obs_id'"),
        ({"observations": [RUN, RUN]}, "obs_id\\(s\\) \\[9\\] appear more than once"),
        ({"observations": [{"obs_id": 1, "livetime": 5}]}, "missing 'pointing'"),
        ({"observations": []}, "non-empty list of observations"),
        ({"observations.0.wobble.center": {"ra": 1, "dec": 95}}, "latitude must be in"),
        ({"observations.0.wobble.center": {"ra": 1}}, "missing dec"),
        ({"observations.0.wobble.offset": "2 parsec"}, "wobble.offset"),
        ({"observations.0.pointing": [1, 2]}, "unknown key 'pointing'"),
        ({"energy_true": [10, 1]}, "energy_true: needs 0 < min < max"),
        ({"seed": -1}, "seed: expected a non-negative integer"),
        ({"schedule.start": "yesterday"}, "cannot read 'yesterday' as a UTC time"),
        ({"models": "missing.yaml"}, "model file .*missing.yaml not found"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*not given, using defaults")
def test_bad_descriptions(changes, match):
    with pytest.raises(SimulationConfigError, match=match):
        parse_config(_with(changes), source="sim.yaml")


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with({"defaults.livetime": 0})))
    with pytest.raises(SimulationConfigError) as info:
        read_config(path)
    message = str(info.value)
    assert str(path) in message and "obs_id 1" in message and "livetime must be positive" in message
    with pytest.raises(SimulationConfigError, match="not found"):
        read_config(tmp_path / "missing.yaml")
    path.write_text("observations: [unclosed")
    with pytest.raises(SimulationConfigError, match="not valid YAML"):
        read_config(path)
    path.write_text("- a list")
    with pytest.raises(SimulationConfigError, match="expected a mapping"):
        read_config(path)


def test_dataclasses_validate_directly():
    with pytest.raises(ValueError, match="livetime must be positive"):
        ObservationSpec(1, 0.0, 0.0, livetime=-1.0, instrument="toy")
    with pytest.raises(ValueError, match="pointing without IRF"):
        ObservationSpec(1, 0.0, 0.0, livetime=1.0, instrument="")
    with pytest.raises(ValueError, match="dec must be in"):
        ObservationSpec(1, 0.0, 91.0, livetime=1.0, instrument="toy")
    run = ObservationSpec(1, 0.0, 0.0, livetime=1.0, instrument="toy")
    with pytest.raises(SimulationConfigError, match="pointing without IRF"):
        SimulationConfig(observations=[run], instruments={})
    with pytest.raises(SimulationConfigError, match="no spatial model"):
        SimulationConfig(
            [run], {"toy": InstrumentSpec("toy")}, models=Models([SkyModel(PowerLaw(), None)])
        )
    with pytest.raises(SimulationConfigError, match="no observations"):
        SimulationConfig([], {"toy": InstrumentSpec("toy")})


def test_datastore_and_gadf_instruments(tmp_path):
    simulate_datastore(default_scenario(livetime=30.0), tmp_path / "first", seed=1)
    data = _with({"instruments": {"again": {"type": "datastore", "path": "first", "obs_id": 2}}})
    data["defaults"].update(instrument="again", livetime=30.0)
    (tmp_path / "sim.yaml").write_text(yaml.safe_dump(data))
    config = read_config(tmp_path / "sim.yaml")
    irfs = config.instruments["again"].load()
    toy = default_scenario().instruments["toy"].load()
    np.testing.assert_array_equal(irfs.edisp.values, toy.edisp.values)
    assert irfs.name == "again"
    with pytest.raises(SimulationConfigError, match=r"data store .* not found"):
        parse_config(_with({"instruments.toy": {"type": "datastore", "path": "x", "obs_id": 1}}))


@pytest.mark.cta
def test_prod5_instrument(tmp_path, prod5_file):
    data = _with({"instruments": {"south": {"type": "gadf", "file": str(prod5_file)}}})
    data["defaults"].update(instrument="south", livetime=5.0)
    data["observations"][0]["wobble"]["angles"] = [0]
    report = simulate_datastore(parse_config(data), tmp_path, seed=2)
    obs = report.open().observation(1)
    assert obs.psf_class == "psf_3gauss" and obs.hdu_classes["bkg"] == "bkg_3d"
    assert report.counts[1]["background"] > 100 and report.counts[1]["point"] > 10


@pytest.mark.hess
def test_hess_run_instrument(tmp_path, hess_dir):
    data = _with(
        {"instruments": {"hess": {"type": "datastore", "path": str(hess_dir), "obs_id": 23523}}}
    )
    data["defaults"].update(instrument="hess", livetime=120.0)
    data["observations"][0]["wobble"]["angles"] = [0]
    config = parse_config(data)
    irfs = config.instruments["hess"].load()
    assert irfs.bkg.attrs["fov_alignment"] == "REVERSE_LON_RADEC"
    report = simulate_datastore(config, tmp_path, seed=4)
    bkg = report.open().observation(1).bkg
    # written as the equivalent RADEC table (FoV longitude negated)
    assert bkg.attrs["fov_alignment"] == "RADEC"
    np.testing.assert_allclose(bkg.values[:, ::-1, :], irfs.bkg.values, rtol=1e-6)
