"""Estimators: excess and significance maps, residual maps (and, in other modules, flux
points, TS maps, light curves)."""

from gammaxr.estimators.excess_map import OPTIONAL_OUTPUTS, excess_map, reco_exposure
from gammaxr.estimators.residuals import RESIDUAL_METHODS, dataset_residuals, residual_map
from gammaxr.estimators.smoothing import (
    box_kernel,
    convolve_sky,
    gauss_kernel,
    kernel_steps,
    tophat_kernel,
)

__all__ = [
    "OPTIONAL_OUTPUTS",
    "RESIDUAL_METHODS",
    "box_kernel",
    "convolve_sky",
    "dataset_residuals",
    "excess_map",
    "gauss_kernel",
    "kernel_steps",
    "reco_exposure",
    "residual_map",
    "tophat_kernel",
]
