"""Sphinx extension: autosummary finds modules shadowed by a function of the same name.

Several gammaxr packages re-export a module's main function under the module's own name
(``gammaxr.estimators.excess_map`` is both a module and, as an attribute of the package,
the function ``excess_map``). autosummary resolves a dotted name as ``package.attribute``
first, so it would document the function twice and never the module. This extension makes
a name that is an imported module resolve to the module; everything else is resolved as
before.
"""

from __future__ import annotations

import sys
from types import ModuleType

from sphinx.application import Sphinx


def setup(app: Sphinx) -> dict:
    import sphinx.ext.autosummary as autosummary

    original = autosummary._import_by_name

    def import_modules_first(name: str, grouped_exception: bool = True):
        module = sys.modules.get(name)
        if isinstance(module, ModuleType) and name.startswith("gammaxr."):
            return module, None, name
        return original(name, grouped_exception)

    autosummary._import_by_name = import_modules_first
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


def package_modules(package: str) -> dict[str, list[str]]:
    """``{package: [public submodule names]}`` for ``package`` and every subpackage.

    autosummary leaves out a submodule whose name the package re-uses for a function; the
    API template lists these instead.
    """
    import importlib
    import pkgutil

    root = importlib.import_module(package)
    out = {package: []}
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        parent, _, leaf = info.name.rpartition(".")
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        out.setdefault(parent, []).append(leaf)
        if info.ispkg:
            out.setdefault(info.name, [])
    return out
