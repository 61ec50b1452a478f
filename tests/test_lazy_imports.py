"""``import gammaxr`` stays light: heavy libraries load only when a function needs them.

Each check runs in a fresh interpreter (``sys.modules`` of the test process already holds
everything). The import time itself is printed by ``benchmarks/import_time.py``.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gammaxr
from gammaxr._lazy import DEFERRED_LIBRARIES, type_checking_imports

SRC = Path(gammaxr.__file__).resolve().parent.parent


def _run(code: str) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def _lazy_packages() -> list[str]:
    names = ["gammaxr"]
    for info in pkgutil.walk_packages(gammaxr.__path__, "gammaxr."):
        if info.ispkg and "_lazy_exports(__name__" in Path(
            importlib.util.find_spec(info.name).origin
        ).read_text(encoding="utf-8"):
            names.append(info.name)
    return names


def test_import_gammaxr_loads_no_heavy_library_and_registers_the_accessor():
    loaded = _run(
        "import sys, json, gammaxr, xarray as xr\n"
        "accessor = type(xr.Dataset().gamma).__name__\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {DEFERRED_LIBRARIES!r})\n"
        "print(json.dumps({'accessor': accessor, 'heavy': heavy}))"
    )
    assert loaded["accessor"] == "GammaDatasetAccessor"
    assert loaded["heavy"] == []


def test_importing_one_function_does_not_import_its_package_siblings():
    # gammaxr.io.zarr_store alone must not pull the FITS readers, astropy or regions in
    loaded = _run(
        "import sys, json\n"
        "from gammaxr.geom.axes import energy_axis\n"
        "from gammaxr.io.zarr_store import open_dataset\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('astropy', 'regions', 'matplotlib', 'fitsio', 'scipy')"
        " or m in ('gammaxr.io.gadf', 'gammaxr.geom.regions', 'gammaxr.reduce.mosaic'))))"
    )
    assert loaded == []


def test_a_first_excess_map_loads_only_what_it_uses():
    # the accessor imports gammaxr.estimators.excess_map: not the fitting code, scipy.stats
    # (the butterflies), regions or scipy.optimize (the FoV fit): ~1 s a first call paid
    loaded = _run(
        "import sys, json\n"
        "import numpy as np, xarray as xr, gammaxr\n"
        "from gammaxr.geom import SkyGrid\n"
        "grid = SkyGrid.from_center((0.0, 0.0), width=1.0, binsz=0.1, frame='galactic')\n"
        "shape = grid.shape\n"
        "ds = xr.Dataset({'counts': (('lat', 'lon'), np.ones(shape)),\n"
        "                 'background': (('lat', 'lon'), np.ones(shape))},\n"
        "                coords=grid.coords, attrs={'frame': 'galactic'})\n"
        "ds.gamma.excess_map(0.2)\n"
        "print(json.dumps(sorted({m for m in sys.modules if m.split('.')[0] == 'regions' or m in "
        "('scipy.stats', 'scipy.optimize', 'iminuit', 'matplotlib', 'gammaxr.fit', "
        "'gammaxr.estimators.butterfly')})))"
    )
    assert loaded == []


def test_every_lazy_export_resolves_and_shadowing_functions_survive_submodule_imports():
    packages = _lazy_packages()
    assert {"gammaxr", "gammaxr.reduce", "gammaxr.io", "gammaxr.geom"} <= set(packages)
    # in a fresh interpreter: import each shadowed submodule first (Python then binds the
    # package attribute to the module), then ask the package for the exported name
    code = (
        "import importlib, inspect, json, pkgutil\n"
        f"packages = {packages!r}\n"
        "bad, shadowed = [], []\n"
        "for name in packages:\n"
        "    pkg = importlib.import_module(name)\n"
        "    subs = {i.name for i in pkgutil.iter_modules(pkg.__path__)}\n"
        "    for export in sorted(pkg._lazy_export_table):\n"
        "        if export in subs:\n"
        "            importlib.import_module(f'{name}.{export}')\n"
        "            shadowed.append(f'{name}.{export}')\n"
        "        value = getattr(pkg, export)\n"
        "        if inspect.ismodule(value) or export not in pkg.__all__:\n"
        "            bad.append(f'{name}.{export}')\n"
        "    missing = [n for n in pkg.__all__ if not hasattr(pkg, n)]\n"
        "    bad += [f'{name}.{n} (in __all__, not importable)' for n in missing]\n"
        "print(json.dumps({'bad': bad, 'shadowed': shadowed}))"
    )
    result = _run(code)
    assert result["bad"] == []
    assert "gammaxr.reduce.fov_background" in result["shadowed"]


def test_type_checking_imports_reads_absolute_relative_and_aliased_names():
    source = (
        "from typing import TYPE_CHECKING\n"
        "import typing\n"
        "from gammaxr.eager import not_lazy\n"
        "if TYPE_CHECKING:\n"
        "    from gammaxr.pkg.a import one, two as deux\n"
        "    from .b import three\n"
        "    from .. import four\n"
        "if typing.TYPE_CHECKING:\n"
        "    from gammaxr.c import five\n"
    )
    assert type_checking_imports("gammaxr.pkg", source) == {
        "one": ("gammaxr.pkg.a", "one"),
        "deux": ("gammaxr.pkg.a", "two"),
        "three": ("gammaxr.pkg.b", "three"),
        "four": ("gammaxr", "four"),
        "five": ("gammaxr.c", "five"),
    }


def test_unknown_name_is_an_attribute_error_naming_the_package():
    import gammaxr.reduce

    with pytest.raises(
        AttributeError, match=re.escape("'gammaxr.reduce' has no attribute 'reduce_al'")
    ):
        gammaxr.reduce.reduce_al  # noqa: B018
    assert "ReductionSpec" in dir(gammaxr.reduce)
