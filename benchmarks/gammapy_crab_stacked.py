"""The stacked Crab dataset of the reference files read by Gammapy 2.1, and the one-line
summary of a cube that the cross-check scripts ``gammapy_smooth.py`` and
``gammapy_residuals.py`` print (run with the separate Gammapy environment only)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from gammapy.datasets import MapDataset

HERE = Path(__file__).resolve().parent
#: Pixels of the first energy bin printed: the four corners and the centre, (lat, lon).
PIXELS = ((0, 0), (0, -1), (-1, 0), (-1, -1), (50, 50))


def read_crab_stacked() -> MapDataset:
    """``gammapy-files/crab_stacked_mapdataset.fits.gz`` of the reference directory given as
    the first command-line argument (default ``../shared/reference`` beside the checkout)."""
    reference = Path(sys.argv[1]) if sys.argv[1:] else HERE.parents[1] / "shared" / "reference"
    return MapDataset.read(reference / "gammapy-files" / "crab_stacked_mapdataset.fits.gz")


def lon_increasing(data: np.ndarray) -> np.ndarray:
    """A Gammapy cube seen with lon increasing along its last axis, as gammaxr's (Gammapy's
    column index runs to lower lon)."""
    return data[..., ::-1]


def pixel_values(data: np.ndarray, pixels=PIXELS) -> str:
    """The ``(lat, lon)`` pixels of the first energy bin of ``data`` (lon increasing)."""
    return ", ".join(f"{data[0][p]:.15g}" for p in pixels)


def cube_summary(data: np.ndarray) -> str:
    """``(sum, max, (pixels))`` of a Gammapy cube (NaN left out), its :data:`PIXELS` indexed
    with lon increasing."""
    data = lon_increasing(data)
    return f"({np.nansum(data):.15g}, {np.nanmax(data):.15g}, ({pixel_values(data)}))"
