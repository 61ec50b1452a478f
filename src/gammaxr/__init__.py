"""gammaxr: gamma-ray astronomy with Cherenkov telescopes on xarray, dask and zarr.

``import gammaxr`` registers the ``ds.gamma`` accessor and nothing heavier: the names below
are imported on first use (module ``__getattr__``), so astropy, scipy, zarr and matplotlib
load only when a function that needs them is called (docs/performance.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gammaxr import accessors as _accessors  # noqa: F401  (registers ds.gamma)
from gammaxr._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from gammaxr.data import DataStore, open_datastore
    from gammaxr.io.gammapy_files import read_gammapy
    from gammaxr.io.zarr_store import open_dataset

__version__ = "0.1.0.dev0"

__all__ = ["DataStore", "__version__", "open_dataset", "open_datastore", "read_gammapy"]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
