"""Data reduction: DL3 runs to binned datasets, background makers and stacking.

Map datasets (:mod:`~gammaxr.reduce.dataset`, :mod:`~gammaxr.reduce.runs`): a
:class:`ReductionSpec` and :func:`reduce_runs` (one shared grid, dim ``obs_id``) or
:func:`reduce_runs_tree` (one grid per run); :func:`stack_runs` sums the runs.
1D spectra (:mod:`~gammaxr.reduce.spectrum`): :class:`SpectrumSpec` and :func:`spectrum_runs`.
Background makers: :func:`fov_background`, :func:`ring_background`,
:func:`reflected_regions` / :func:`find_off_regions`. Surveys:
:func:`create_mosaic_store` and :func:`add_runs_to_mosaic`. A tuned local
``dask.distributed`` cluster: :func:`gammaxr.reduce.cluster.local_cluster`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gammaxr._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from gammaxr.reduce.dataset import ReductionSpec, reduce_observation
    from gammaxr.reduce.fov_background import fov_background
    from gammaxr.reduce.mosaic import add_runs_to_mosaic, create_mosaic_store
    from gammaxr.reduce.reflected import ReflectedRegionsConfig, reflected_regions
    from gammaxr.reduce.ring import ring_background, to_image
    from gammaxr.reduce.runs import RunReductionError, failed_runs, reduce_runs, reduce_runs_tree
    from gammaxr.reduce.spectrum import (
        SpectrumSpec,
        find_off_regions,
        spectrum_dataset,
        spectrum_runs,
    )
    from gammaxr.reduce.stack import NoOverlapError, stack_runs

__all__ = [
    "NoOverlapError",
    "ReductionSpec",
    "ReflectedRegionsConfig",
    "RunReductionError",
    "SpectrumSpec",
    "add_runs_to_mosaic",
    "create_mosaic_store",
    "failed_runs",
    "find_off_regions",
    "fov_background",
    "reduce_observation",
    "reduce_runs",
    "reduce_runs_tree",
    "reflected_regions",
    "ring_background",
    "spectrum_dataset",
    "spectrum_runs",
    "stack_runs",
    "to_image",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
