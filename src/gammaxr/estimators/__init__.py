"""Estimators: excess and significance maps, residual maps, flux points, TS maps, light
curves, model error bands (butterflies), differential sensitivity and smoothed maps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gammaxr._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from gammaxr.estimators.butterfly import butterfly
    from gammaxr.estimators.excess_map import OPTIONAL_OUTPUTS, excess_map, reco_exposure
    from gammaxr.estimators.flux_points import flux_points
    from gammaxr.estimators.light_curve import light_curve
    from gammaxr.estimators.residuals import RESIDUAL_METHODS, dataset_residuals, residual_map
    from gammaxr.estimators.sensitivity import minimum_excess, sensitivity
    from gammaxr.estimators.smoothing import (
        box_kernel,
        convolve_sky,
        convolve_sky_maps,
        gauss_kernel,
        kernel_steps,
        smooth,
        smoothing_kernel,
        tophat_kernel,
        uniform_box_kernel,
    )
    from gammaxr.estimators.ts_map import ts_map

__all__ = [
    "OPTIONAL_OUTPUTS",
    "RESIDUAL_METHODS",
    "box_kernel",
    "butterfly",
    "convolve_sky",
    "convolve_sky_maps",
    "dataset_residuals",
    "excess_map",
    "flux_points",
    "gauss_kernel",
    "kernel_steps",
    "light_curve",
    "minimum_excess",
    "reco_exposure",
    "residual_map",
    "sensitivity",
    "smooth",
    "smoothing_kernel",
    "tophat_kernel",
    "uniform_box_kernel",
    "ts_map",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
