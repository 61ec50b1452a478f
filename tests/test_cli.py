"""The gammaxr command line: gammaxr simulate."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from gammaxr.cli import build_parser, main
from gammaxr.data import open_datastore
from gammaxr.simulate.scenarios import default_description


@pytest.fixture
def small_config(tmp_path):
    data = default_description()
    data["defaults"]["livetime"] = "1 min"
    data["observations"][0]["wobble"]["angles"] = [0, 180]
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_simulate_default(tmp_path, capsys):
    assert main(["simulate", "--default", str(tmp_path / "default")]) == 0
    out = capsys.readouterr().out
    assert "4 runs" in out and "point" in out and "extended" in out
    store = open_datastore(tmp_path / "default")
    assert list(store.obs_ids) == [1, 2, 3, 4]
    counts = store.obs_table["event_count"].values
    assert np.all((counts > 3000) & (counts < 10000))  # a few thousand events per run
    assert store.obs_table["livetime"].values.sum() == pytest.approx(7200.0)


def test_simulate_config_with_seed(small_config, tmp_path, capsys):
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    assert main(["simulate", str(small_config), str(out_a), "--seed", "5", "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["simulate", str(small_config), str(out_b), "--seed", "5", "-q"]) == 0
    a, b = open_datastore(out_a), open_datastore(out_b)
    assert list(a.obs_ids) == [1, 2]
    np.testing.assert_array_equal(a.observation(2).events["ra"], b.observation(2).events["ra"])
    # another seed, other events; --overwrite replaces the store
    assert main(["simulate", str(small_config), str(out_b), "--seed", "6", "--overwrite"]) == 0
    b = open_datastore(out_b)
    assert a.obs_table["event_count"].values.tolist() != b.obs_table["event_count"].values.tolist()


@pytest.mark.parametrize(
    "args, message",
    [
        (["simulate", "--default", "x.yaml", "out"], "either a CONFIG.yaml file or --default"),
        (["simulate", "out"], "either a CONFIG.yaml file or --default"),
        (["simulate", "missing.yaml", "out"], "missing.yaml: simulation description not found"),
    ],
)
def test_usage_errors(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("gammaxr simulate: error:") and message in err


def test_bad_description_and_existing_store(small_config, tmp_path, capsys):
    data = yaml.safe_load(small_config.read_text())
    data["defaults"]["livetime"] = -5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["simulate", str(bad), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "livetime must be positive" in err
    assert not (tmp_path / "out").exists()
    assert main(["simulate", str(small_config), str(tmp_path / "out"), "-q"]) == 0
    assert main(["simulate", str(small_config), str(tmp_path / "out")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_parser_structure():
    parser = build_parser()
    args = parser.parse_args(["simulate", "c.yaml", "out", "--seed", "3"])
    assert (args.command, args.config, args.output, args.seed) == ("simulate", "c.yaml", "out", 3)
    with pytest.raises(SystemExit):
        parser.parse_args([])  # a subcommand is required


def test_console_entry_point_help():
    result = subprocess.run(
        [sys.executable, "-m", "gammaxr.cli", "simulate", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "--default" in result.stdout and "OUTPUT_DIR" in result.stdout
