"""Sphinx extension: the workflow pages show what each example printed and drew.

The examples in ``examples/`` are plain scripts that write their figures into an output
folder; ``examples/run_examples.py`` runs them all, keeping what each printed in
``<folder>/<name>/output.txt``. This extension

- at ``builder-inited``, gathers those folders into ``docs/_examples_output``: copied from
  ``example_pages_output`` (``$GAMMAXR_EXAMPLES_OUTPUT``, where CI already ran them), or
  produced by running the examples whose output is missing or older than the script
  (``example_pages_run``), so every example runs at most once per change;
- provides the directive ``.. example-output:: NAME``, which renders the example's
  docstring (minus its title), what it printed, its figures and its source.

An example that was not run, or that skipped because its data are absent, gets a note
instead of figures (not a warning: the build passes with ``-W`` without the data).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

LOGGER = logging.getLogger(__name__)
KEPT = ("output.txt", "*.png")


def _runner(examples_dir: Path):
    spec = importlib.util.spec_from_file_location("run_examples", examples_dir / "run_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stale(name: str, examples_dir: Path, folder: Path) -> bool:
    printed = folder / name / "output.txt"
    if not printed.exists() or printed.read_text().startswith("SKIPPED"):
        return True  # a skipped example is quick to try again (the data may be there now)
    sources = [examples_dir / f"{name}.py", examples_dir / "_example_setup.py"]
    return max(p.stat().st_mtime for p in sources) > printed.stat().st_mtime


def gather_outputs(app: Sphinx) -> None:
    """Fill ``example_pages_cache`` with each example's output.txt and figures."""
    config = app.config
    examples_dir = Path(config.example_pages_examples_dir)
    cache = Path(config.example_pages_cache)
    runner = _runner(examples_dir)
    given = config.example_pages_output
    for name in runner.EXAMPLE_NAMES:
        target = cache / name
        if given:
            source = Path(given) / name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            for pattern in KEPT:
                for path in source.glob(pattern):
                    shutil.copy2(path, target / path.name)
        elif config.example_pages_run and _stale(name, examples_dir, cache):
            if target.exists():
                shutil.rmtree(target)
            LOGGER.info(f"running example {name} ...")
            result = runner.run_example(name, cache)
            LOGGER.info(f"example {name}: exit {result['returncode']}, {result['seconds']} s")
            if result["returncode"]:
                # a broken example is a broken page: this fails -W builds
                LOGGER.warning(f"example {name} failed; see {target / 'output.txt'}")


def _docstring_body(source: str) -> list[str]:
    """The module docstring of an example without its title (first two lines)."""
    import ast

    doc = ast.get_docstring(ast.parse(source)) or ""
    lines = doc.splitlines()
    if len(lines) >= 2 and set(lines[1].strip()) <= set("=-~"):
        lines = lines[2:]
    return lines


class ExampleOutput(SphinxDirective):
    """``.. example-output:: NAME``: docstring, printed output, figures and source of an example."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        config = self.env.config
        script = Path(config.example_pages_examples_dir) / f"{name}.py"
        if not script.exists():
            raise self.error(f"no example script {script}")
        folder = Path(config.example_pages_cache) / name
        self.env.note_dependency(str(script))
        source = script.read_text()
        docdir = Path(self.env.doc2path(self.env.docname)).parent
        rel_script = os.path.relpath(script, docdir)
        lines = [*_docstring_body(source), ""]
        printed = folder / "output.txt"
        figures: list[str] = []
        if printed.exists():
            self.env.note_dependency(str(printed))
            text = printed.read_text()
            shown = []
            for line in text.splitlines():
                if line.startswith("figure: "):
                    figures.append(Path(line[len("figure: ") :].strip()).name)
                    line = f"figure: {figures[-1]}"
                shown.append(line)
            if text.startswith("SKIPPED"):
                lines += [
                    ".. note::",
                    "",
                    f"   The example skipped when the documentation was built: {text.splitlines()[0][9:]}",
                    "",
                ]
            lines += [".. rubric:: What it prints", "", ".. code-block:: text", ""]
            lines += [f"   {line}" for line in shown] + [""]
        else:
            lines += [
                ".. note::",
                "",
                "   The example was not run when this documentation was built, so its output and",
                f"   figures are missing: ``python examples/{name}.py`` makes them.",
                "",
            ]
        figures += sorted(p.name for p in folder.glob("*.png") if p.name not in figures)
        if figures:
            lines += [".. rubric:: Figures", ""]
        for fig in figures:
            if not (folder / fig).exists():
                continue
            lines += [
                f".. figure:: /_examples_output/{name}/{fig}",
                f"   :alt: {fig}",
                "",
                f"   ``{fig}``",
                "",
            ]
        lines += [
            ".. rubric:: The script",
            "",
            f"``examples/{name}.py``:",
            "",
            f".. literalinclude:: {rel_script}",
            "   :language: python",
            "",
        ]
        container = nodes.container()
        self.state.nested_parse(
            StringList(lines, source=str(script)), self.content_offset, container
        )
        return container.children


def setup(app: Sphinx) -> dict:
    app.add_config_value("example_pages_examples_dir", "", "env")
    app.add_config_value("example_pages_output", "", "env")
    app.add_config_value("example_pages_run", True, "env")
    app.add_config_value("example_pages_cache", "", "env")
    app.add_directive("example-output", ExampleOutput)
    app.connect("builder-inited", gather_outputs)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
