"""gammaxr: gamma-ray astronomy with Cherenkov telescopes on xarray, dask and zarr."""

from gammaxr import accessors as _accessors  # noqa: F401  (registers ds.gamma)
from gammaxr.data import DataStore, open_datastore
from gammaxr.io.gammapy_files import read_gammapy
from gammaxr.io.zarr_store import open_dataset

__version__ = "0.1.0.dev0"

__all__ = ["DataStore", "__version__", "open_dataset", "open_datastore", "read_gammapy"]
