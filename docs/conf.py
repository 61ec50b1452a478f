"""Sphinx configuration of the gammaxr documentation.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (``pip install -e .[docs]``).

Environment switches
--------------------
``GAMMAXR_EXAMPLES_OUTPUT``
    Folder where ``python examples/run_examples.py FOLDER`` already ran the workflow examples
    (CI does this, timed, before building the docs). The workflow pages show the figures and
    printed output found there; the examples are not run again.
``GAMMAXR_DOCS_RUN_EXAMPLES``
    Without ``GAMMAXR_EXAMPLES_OUTPUT`` the build runs the examples itself, once, into
    ``docs/_examples_output`` (re-run only when a script is newer than its output), so a
    plain build from a fresh install shows the figures. ``0`` turns this off: the workflow
    pages then say that the example was not run.
``GAMMAXR_DOCS_OFFLINE``
    ``1``: do not try to download the intersphinx inventories of xarray, dask, astropy, ...
    (CI and the build machines have no network besides the package index).

Intersphinx without network
---------------------------
Every intersphinx project lists two inventory locations: the project's own ``objects.inv``
on the web, then a small local inventory written by this file (``_ext/local_inventories.py``)
with the handful of objects our pages and signatures name. Sphinx only warns when *every*
location of a project fails, so an offline build falls back to the local inventory (links
still point to the projects' documentation) and ``-W`` keeps passing; an online build uses
the full inventories. ``GAMMAXR_DOCS_OFFLINE=1`` skips the remote attempt altogether.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPOSITORY = DOCS.parent
sys.path.insert(0, str(REPOSITORY / "src"))
sys.path.insert(0, str(DOCS / "_ext"))

from local_inventories import intersphinx_mapping_with_fallback  # noqa: E402
from shadowed_modules import package_modules  # noqa: E402

import gammaxr  # noqa: E402

project = "gammaxr"
author = "gammaxr developers"
copyright = "2026, gammaxr developers"
version = release = gammaxr.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "example_pages",
    "shadowed_modules",
    "markdown_notes",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# index.md is the repository's plain-Markdown landing page; index.rst is the site's
exclude_patterns = ["_build", "_examples_output", "index.md", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# ---- API reference: one page per module, generated from the docstrings (autosummary)
autosummary_generate = True
autosummary_ignore_module_all = False  # a module's public functions are its __all__
autodoc_typehints = "none"  # numpydoc docstrings give types with units and dims
autodoc_default_options = {"member-order": "bysource"}
# type aliases (``X = tuple[...]``) break autodoc's signature formatting; the module template
# leaves them out (they are argument types, described where they are used)
autosummary_context = {
    "type_aliases": ["gammaxr.io.mosaic_ledger.PartWrite"],
    # submodules per package, including those a package shadows with a function of the
    # same name (gammaxr.estimators.excess_map), which autosummary would leave out
    "submodules": package_modules("gammaxr"),
}
numpydoc_show_class_members = False  # members are listed by the module template
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# ---- Markdown pages (architecture.md, conventions.md are shared with the repository)
myst_heading_anchors = 3
suppress_warnings = [
    # architecture.md / conventions.md link to repository files that are not doc pages
    "myst.xref_missing",
]

# ---- intersphinx (see the module docstring)
intersphinx_mapping = intersphinx_mapping_with_fallback(
    DOCS / "_build" / "local-inventories",
    offline=os.environ.get("GAMMAXR_DOCS_OFFLINE", "0") == "1",
)
intersphinx_timeout = 10

# ---- workflow examples (_ext/example_pages.py)
example_pages_examples_dir = str(REPOSITORY / "examples")
example_pages_output = os.environ.get("GAMMAXR_EXAMPLES_OUTPUT") or ""
example_pages_run = os.environ.get("GAMMAXR_DOCS_RUN_EXAMPLES", "1") != "0"
example_pages_cache = str(DOCS / "_examples_output")

# ---- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"gammaxr {release}"
html_theme_options = {
    "navigation_depth": 3,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
