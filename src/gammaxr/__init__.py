"""gammaxr: gamma-ray astronomy with Cherenkov telescopes on xarray, dask and zarr."""

__version__ = "0.1.0.dev0"
