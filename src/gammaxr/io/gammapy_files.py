"""One entry point for Gammapy's files: :func:`read_gammapy` and :func:`write_gammapy`.

The kind of a file is detected from its content (or given as ``kind=``):

- ``"map"``: a ``MapDataset`` / ``MapDatasetOnOff`` FITS file (image HDUs such as
  ``COUNTS``, ``EXPOSURE``...), :mod:`gammaxr.io.gammapy_maps`;
- ``"ogip"``: an OGIP PHA file (``SPECTRUM`` table) with its ARF, RMF and BKG,
  :mod:`gammaxr.io.ogip`;
- ``"flux_points"``: a gadf-sed table (flux points or a light curve, ECSV or FITS
  ``FLUXPOINTS``), :mod:`gammaxr.io.gadf_sed`.

Writing picks the kind from the dataset: ``lat``/``lon`` dims -> map dataset; an SED
(``e_ref`` coordinate or ``norm`` variable) -> gadf-sed; ``counts(energy)`` without a sky
grid -> OGIP.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import xarray as xr
from astropy.io import fits

from gammaxr.io.gadf_sed import read_flux_points, write_flux_points
from gammaxr.io.gammapy_maps import MAP_HDUS, read_map_dataset, write_map_dataset
from gammaxr.io.ogip import read_ogip, write_ogip

__all__ = ["GAMMAPY_KINDS", "gammapy_file_kind", "read_gammapy", "write_gammapy"]

#: File kinds :func:`read_gammapy` knows.
GAMMAPY_KINDS = ("map", "ogip", "flux_points")


def gammapy_file_kind(path: str | os.PathLike) -> str:
    """The kind of a Gammapy file (module docstring), from its content.

    Raises
    ------
    ValueError
        If the file is none of :data:`GAMMAPY_KINDS`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.name.endswith(".ecsv"):
        return "flux_points"
    try:
        with fits.open(path, memmap=False) as hdul:
            names = {hdu.name for hdu in hdul}
    except OSError as exc:
        raise ValueError(f"{path}: neither a FITS file nor ECSV ({exc})") from exc
    if names & set(MAP_HDUS):
        return "map"
    if "SPECTRUM" in names:
        return "ogip"
    if "FLUXPOINTS" in names:
        return "flux_points"
    raise ValueError(
        f"{path}: not a Gammapy map dataset, OGIP spectrum or gadf-sed table (HDUs {sorted(names)})"
    )


def read_gammapy(path: str | os.PathLike, kind: str | None = None, **kwargs: Any) -> xr.Dataset:
    """Read a file written by Gammapy (or by :func:`write_gammapy`) into a gammaxr dataset.

    Parameters
    ----------
    path : str or path-like
        The file: a ``MapDataset`` / ``MapDatasetOnOff`` FITS file, an OGIP PHA file (its
        ARF, RMF and BKG are found from its header) or gadf-sed flux points / light curve.
    kind : {"map", "ogip", "flux_points"}, optional
        The kind of file; detected from the content when None.
    **kwargs
        Passed to the reader: ``geometry=`` for maps
        (:func:`gammaxr.io.gammapy_maps.read_map_dataset`), ``sed_type=`` and
        ``reference_model=`` for flux points (:func:`gammaxr.io.gadf_sed.read_flux_points`).

    Returns
    -------
    xarray.Dataset
        numpy-backed dataset following DESIGN.md.

    Examples
    --------
    >>> ds = gammaxr.read_gammapy("crab_stacked_mapdataset.fits.gz")  # doctest: +SKIP
    >>> result = ds.gamma.fit(models)  # doctest: +SKIP
    """
    kind = kind or gammapy_file_kind(path)
    if kind == "map":
        return read_map_dataset(path, **kwargs)
    if kind == "ogip":
        return read_ogip(path, **kwargs)
    if kind == "flux_points":
        return read_flux_points(path, **kwargs)
    raise ValueError(f"kind must be one of {GAMMAPY_KINDS}, got {kind!r}")


def write_gammapy(
    ds: xr.Dataset, path: str | os.PathLike, overwrite: bool = False, **kwargs: Any
) -> Any:
    """Write a gammaxr dataset in the Gammapy 2.1 format of its kind (module docstring).

    Parameters
    ----------
    ds : xarray.Dataset
        A map dataset, a 1D spectrum dataset or an SED (flux points, light curve); computed
        here (the file needs the numbers).
    path : str or path-like
        Output file (the PHA file for spectra; ``.ecsv`` or FITS for flux points).
    overwrite : bool
        Replace existing files.
    **kwargs
        ``sed_type=`` for flux points.

    Returns
    -------
    pathlib.Path or list of pathlib.Path
        What was written.
    """
    if "e_ref" in ds.coords or "norm" in ds:
        return write_flux_points(ds, path, overwrite=overwrite, **kwargs)
    if "lat" in ds.dims and "lon" in ds.dims:
        return write_map_dataset(ds, path, overwrite=overwrite)
    if "counts" in ds and "energy" in ds["counts"].dims:
        return write_ogip(ds, path, overwrite=overwrite)
    raise ValueError(
        "cannot tell what to write: not a map dataset (lat/lon), a spectrum (counts(energy)) "
        "or flux points (e_ref, norm)"
    )
