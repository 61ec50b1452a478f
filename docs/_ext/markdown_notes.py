"""Sphinx extension: a toctree of every Markdown note in ``docs/`` (``.. markdown-notes::``).

The repository keeps design notes as Markdown files in ``docs/`` (``architecture.md``,
``conventions.md``, ...), edited by many people and read on their own as well. The user
guide lists them all through this directive, so that a new note is part of the site (and
``-W`` builds keep passing) without editing the toctree. ``index.md``, the repository's
plain landing page, is left out.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: Notes listed first, in this order; the others follow alphabetically.
FIRST = ("conventions", "validation", "architecture")


class MarkdownNotes(SphinxDirective):
    """``.. markdown-notes::``: a toctree of the ``*.md`` files next to ``conf.py``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        srcdir = Path(self.env.srcdir)
        names = sorted(p.stem for p in srcdir.glob("*.md") if p.stem != "index")
        names = [n for n in FIRST if n in names] + [n for n in names if n not in FIRST]
        docdir = Path(self.env.docname).parent
        prefix = "../" * len(docdir.parts)
        lines = [".. toctree::", "   :maxdepth: 2", ""] + [f"   {prefix}{n}" for n in names]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="markdown-notes"), 0, container)
        return container.children


def setup(app: Sphinx) -> dict:
    app.add_directive("markdown-notes", MarkdownNotes)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
