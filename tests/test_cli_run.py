"""The gammaxr command line: gammaxr demo and gammaxr run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import gammaxr
from gammaxr.cli import build_parser, main
from gammaxr.models import Models

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"
LIVETIME = "600"  # s per run (the default is 1800)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """``gammaxr demo`` on a short simulation; its printed output."""
    out = tmp_path_factory.mktemp("cli") / "demo-output"
    code = main(["demo", str(out), "--livetime", LIVETIME, "-q"])
    assert code == 0
    return out


def test_commands_registered():
    parser = build_parser()
    for command in ("simulate", "run", "demo"):
        args = parser.parse_args(
            [command, "x.yaml", "out"] if command == "simulate" else [command, "x"]
        )
        assert args.command == command and callable(args.func)


def test_demo_writes_everything(demo_dir):
    for name in ("stacked.zarr", "models_fitted.yaml", "flux_points.ecsv", "significance.png"):
        assert (demo_dir / name).exists(), name
    summary = (demo_dir / "summary.txt").read_text()
    assert "pull" in summary and "fit: success True" in summary
    table = pd.read_csv(demo_dir / "fit_parameters.csv", index_col=0)
    free = table[~table["frozen"]]
    assert len(free) == 10 and (free["pull"].abs() < 4).all()


def test_run_example_reproduces_the_demo(demo_dir, tmp_path, capsys):
    """`gammaxr run examples/demo.yaml` on the demo's store gives the demo's fit."""
    out = tmp_path / "run"
    args = ["run", str(EXAMPLE), "--datastore", str(demo_dir / "store"), "--output", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert printed.startswith("reduce: 4 runs")
    assert "100% Completed" in captured.err  # progress bars by default, on stderr
    assert "fit: success True" in printed and "timings:" in printed
    ours = Models.read(out / "models_fitted.yaml")
    demo = Models.read(demo_dir / "models_fitted.yaml")
    for ref, p in demo.parameters:
        assert ours.parameter(ref).value == pytest.approx(p.value, rel=1e-6, abs=1e-9)
    stacked = gammaxr.open_dataset(out / "stacked.zarr")
    again = gammaxr.open_dataset(demo_dir / "stacked.zarr")
    assert float(stacked["counts"].sum()) == float(again["counts"].sum())
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written == yaml.safe_load(EXAMPLE.read_text())
    # a second run into the same directory needs --overwrite
    assert main([*args, "-q"]) == 2
    assert "already holds analysis outputs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "grid: {center: [1, 2], width: 3}\n",
            "3 problems:\n  datastore: missing\n  grid.binsz: missing\n  axes: missing",
        ),
        (
            "datastore: s\ngrid: {center: [1, 2], width: 3, binz: 0.1}\n"
            "axes: {energy: {edges: [1, 10]}, energy_true: {edges: [1, 10]}}\n",
            "grid.binz: unknown key (did you mean 'binsz'?)",
        ),
        (
            "datastore: nowhere\noutput: out\ngrid: {center: [1, 2], width: 3, binsz: 0.1}\n"
            "axes: {energy: {edges: [1, 10]}, energy_true: {edges: [1, 10]}}\n",
            "no such data store",
        ),
        (
            "datastore: s\ngrid: {center: [1, 2], width: 3, binsz: 0.1}\n"
            "axes: {energy: {edges: [1, 10]}, energy_true: {edges: [1, 10]}}\n",
            "no output directory",
        ),
    ],
)
def test_run_bad_config(tmp_path, monkeypatch, capsys, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text(text)
    assert main(["run", "bad.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gammaxr run: error: ")
    assert message in err
    assert "Traceback" not in err


def test_run_missing_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.yaml"), "-o", str(tmp_path / "o")]) == 2
    assert "no such configuration file" in capsys.readouterr().err


def test_demo_existing_output(demo_dir, capsys):
    assert main(["demo", str(demo_dir), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gammaxr demo: error:") and "--overwrite" in err


def test_console_script_help():
    proc = subprocess.run(
        [sys.executable, "-m", "gammaxr.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "OUTPUT_DIR" in proc.stdout and "--livetime" in proc.stdout


def test_run_quiet_prints_nothing(demo_dir, tmp_path, capsys):
    args = ["run", str(EXAMPLE), "--datastore", str(demo_dir / "store"), "-o", str(tmp_path)]
    assert main([*args, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert (tmp_path / "summary.txt").exists()


@pytest.mark.parametrize("quiet", [False, True])
def test_demo_shows_progress_unless_quiet(tmp_path, monkeypatch, quiet):
    import gammaxr.analysis

    seen = {}

    def fake_run_demo(output, **kwargs):
        seen.update(kwargs)
        raise gammaxr.analysis.AnalysisError("stop here")

    monkeypatch.setattr(gammaxr.analysis, "run_demo", fake_run_demo)
    assert main(["demo", str(tmp_path), *(["-q"] if quiet else [])]) == 2
    assert seen["progress"] is (not quiet)
