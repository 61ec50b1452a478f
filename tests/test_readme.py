"""README's tour runs as written: its python blocks are executed in order, in one namespace.

Blocks that read the H.E.S.S. data (every block of the tour after the first one needs the
store it opens) are skipped, with the reason, where the data is absent. Paths in the blocks
are relative to the repository's parent (``../shared/data``); they are pointed at the data
directory the tests use, and files the tour writes go to a temporary directory.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a Markdown text, in order."""
    return [m.group(1) for m in _BLOCK.finditer(text)]


def test_readme_has_a_python_tour():
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 3
    assert all(compile(b, f"README block {i}", "exec") for i, b in enumerate(blocks))


@pytest.mark.hess
@pytest.mark.slow
def test_readme_tour_runs(hess_dir, tmp_path, monkeypatch):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(python_blocks(README.read_text())):
        code = block.replace("../shared/data", str(hess_dir.parent))
        exec(compile(code, f"README.md python block {i}", "exec"), namespace)
    plt.close("all")
    # the tour's comments state these
    assert namespace["result"].success
    assert set(namespace["sig"].data_vars) >= {"counts", "background", "excess", "significance"}
    assert (tmp_path / "crab.zarr").is_dir() and (tmp_path / "crab.yaml").is_file()
