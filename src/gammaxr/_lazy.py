"""Lazy exports for package ``__init__`` modules.

A package lists the names it re-exports as ordinary ``from ... import ...`` statements inside
an ``if TYPE_CHECKING:`` block (so readers, linters and type checkers see them) and ends with::

    __getattr__, __dir__ = lazy_exports(__name__, __file__)

Each name is then imported from its module on first access and cached in the package, so
importing the package costs nothing beyond its own file.

A package may re-export a function under the name of one of its submodules (``fov_background``
from the module ``fov_background``). When that submodule is imported, Python binds the package
attribute to the module, and ``__getattr__`` would never be asked again; the package's module
class therefore turns such a binding into the exported object, as an eager
``from .fov_background import fov_background`` would have left it
(``tests/test_lazy_imports.py`` checks both cases).
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

__all__ = ["DEFERRED_LIBRARIES", "lazy_exports", "type_checking_imports"]

#: Libraries that ``import gammaxr`` must not load (each is imported by the function that
#: needs it; ``tests/test_lazy_imports.py`` checks, ``benchmarks/import_time.py`` reports).
DEFERRED_LIBRARIES = (
    "astropy",
    "dask",
    "distributed",
    "fitsio",
    "iminuit",
    "matplotlib",
    "regions",
    "scipy",
    "zarr",
)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def type_checking_imports(package: str, source: str) -> dict[str, tuple[str, str]]:
    """Names imported inside the ``if TYPE_CHECKING:`` blocks of a package's source.

    Parameters
    ----------
    package : str
        Dotted name of the package (resolves relative imports such as ``from .data import x``).
    source : str
        Python source of the package's ``__init__``.

    Returns
    -------
    dict
        ``{exported name: (absolute module name, attribute in that module)}``.
    """
    exports: dict[str, tuple[str, str]] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.If) and _is_type_checking(node.test)):
            continue
        for statement in node.body:
            if not isinstance(statement, ast.ImportFrom):
                continue
            module = statement.module or ""
            if statement.level:
                base = package.rsplit(".", statement.level - 1)[0]
                module = f"{base}.{module}" if module else base
            for alias in statement.names:
                exports[alias.asname or alias.name] = (module, alias.name)
    return exports


def _resolve(exports: dict[str, tuple[str, str]], name: str) -> object:
    module_name, attribute = exports[name]
    return getattr(importlib.import_module(module_name), attribute)


class _LazyPackage(ModuleType):
    """Module class of a package with lazy exports (keeps shadowing exports bound)."""

    def __setattr__(self, name: str, value: object) -> None:
        exports = self.__dict__.get("_lazy_export_table", {})
        if (
            isinstance(value, ModuleType)
            and name in exports
            and value.__name__ == f"{self.__name__}.{name}"
        ):
            value = _resolve(exports, name)
        super().__setattr__(name, value)


def lazy_exports(
    package: str, init_file: str
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` importing a package's exports on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    init_file : str
        The package's ``__file__`` (its ``if TYPE_CHECKING:`` imports are the exports).

    Returns
    -------
    (__getattr__, __dir__)
        Functions to assign to the package's module-level ``__getattr__`` and ``__dir__``.
    """
    exports = type_checking_imports(package, Path(init_file).read_text(encoding="utf-8"))
    module = sys.modules[package]
    module._lazy_export_table = exports
    module.__class__ = _LazyPackage

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = _resolve(exports, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        public = (name for name in vars(sys.modules[package]) if not name.startswith("_"))
        return sorted({*public, *exports})

    return __getattr__, __dir__
