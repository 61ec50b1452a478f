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


def cube_summary(data: np.ndarray) -> str:
    """``(sum, max, (pixels))`` of a Gammapy cube (NaN left out), its pixels indexed with
    lon increasing as gammaxr's (Gammapy's column index runs to lower lon)."""
    data = data[..., ::-1]
    pixels = ", ".join(f"{data[0][p]:.15g}" for p in PIXELS)
    return f"({np.nansum(data):.15g}, {np.nanmax(data):.15g}, ({pixels}))"
