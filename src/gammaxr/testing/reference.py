"""The reduction settings of the Gammapy 2.1 Crab reference case (``crab_runs.npz``).

``../shared/reference/crab_runs.npz`` holds Gammapy's grid (lon/lat pixel centres, icrs) and
its energy edges; the reference was made with the offset-max 2.5 deg and aeff-max 10 % safe
masks. Tests and benchmarks that compare with it build their spec here, so that the case is
defined once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gammaxr.geom.grid import SkyGrid
from gammaxr.reduce.dataset import ReductionSpec

__all__ = ["CRAB_REFERENCE_MAPS", "crab_reference_spec"]

#: Every map the reference case has (counts, exposure, background, PSF and edisp maps).
CRAB_REFERENCE_MAPS = ("counts", "exposure", "background", "psf", "edisp")


def crab_reference_spec(reference: Mapping[str, np.ndarray], **overrides: Any) -> ReductionSpec:
    """The :class:`~gammaxr.reduce.dataset.ReductionSpec` of the Crab reference case.

    Parameters
    ----------
    reference : mapping of str to numpy.ndarray
        The contents of ``crab_runs.npz``: ``energy_edges`` and ``energy_true_edges`` (TeV),
        ``lon`` and ``lat`` (deg, icrs pixel centres).
    **overrides
        Fields that differ from the case (e.g. ``maps=("counts", "exposure")``).

    Returns
    -------
    ReductionSpec
        Gammapy's grid and energy edges, maps :data:`CRAB_REFERENCE_MAPS`, safe masks
        offset-max (2.5 deg) and aeff-max (10 %), updated by ``overrides``.
    """
    settings: dict[str, Any] = {
        "energy_edges": reference["energy_edges"],
        "energy_true_edges": reference["energy_true_edges"],
        "grid": SkyGrid.from_coords(reference["lon"], reference["lat"], "icrs"),
        "maps": CRAB_REFERENCE_MAPS,
        "safe_mask": ("offset-max", "aeff-max"),
        "offset_max": 2.5,
        "aeff_percent": 10,
    }
    settings.update(overrides)
    return ReductionSpec(**settings)
