"""The workflow examples: each is listed for CI and the docs, and skips cleanly without data.

CI runs every example on the real data (``examples/run_examples.py`` in ``.ci/run``); these
tests check what must hold on any machine.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLES = REPOSITORY / "examples"


def _runner():
    spec = importlib.util.spec_from_file_location("run_examples", EXAMPLES / "run_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_run_by_ci_and_has_a_docs_page():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    names = set(_runner().EXAMPLE_NAMES)
    assert scripts - {"run_examples"} == names
    pages = REPOSITORY / "docs" / "workflows"
    index = (pages / "index.rst").read_text()
    for name in names:
        assert f".. example-output:: {name}" in (pages / f"{name}.rst").read_text()
        assert f"\n   {name}\n" in index


@pytest.mark.parametrize("name", _runner().EXAMPLE_NAMES)
def test_example_skips_with_a_message_without_data(name, tmp_path):
    env = {**os.environ, "GAMMAXR_DATA": str(tmp_path / "no-data")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY / "src"), env.get("PYTHONPATH", "")])
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), str(out)],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("SKIPPED: ")
    assert str(tmp_path / "no-data") in proc.stdout
    assert out.is_dir() and not any(out.iterdir())  # nothing written
