"""Plotting: matplotlib and WCSAxes figures as plain functions (a compute boundary).

::

    from gammaxr.plot import plot_map, plot_residuals, plot_spectrum
    ax = plot_map(ds["counts"], sum_over="energy")           # or ds.gamma.plot_map("counts")
    fig = plot_residuals(ds, result.models)                   # or ds.gamma.plot_residuals(...)
    ax = plot_significance_distribution(emap["significance"], mask=exclusion)
    ax = plot_spectrum(result.models["src"], result, flux_points)
    ax = plot_stat_profile(stat_profile(ds, result, "src.spectral.index"))

Maps are drawn with longitude increasing to the left (east left), as astronomers read them,
though gammaxr arrays hold longitude increasing along ``lon`` (:func:`display_wcs`). Every
function computes only the pixels or numbers it draws; dask-backed inputs are fine.

Modules: :mod:`~gammaxr.plot.maps` (maps, residuals, significance distributions),
:mod:`~gammaxr.plot.spectra` (spectral models with error bands, flux points),
:mod:`~gammaxr.plot.profiles` (likelihood profiles and contours),
:mod:`~gammaxr.plot.sensitivity` (differential sensitivity curves).
"""

from gammaxr.plot.maps import (
    display_wcs,
    map_image,
    plot_dataset_map,
    plot_map,
    plot_residuals,
    plot_significance_distribution,
    plot_significance_map,
    significance_distribution,
)
from gammaxr.plot.profiles import plot_stat_contour, plot_stat_profile
from gammaxr.plot.sensitivity import plot_sensitivity
from gammaxr.plot.spectra import (
    SED_LABELS,
    plot_flux_points,
    plot_spectrum,
    spectrum_butterfly,
)

__all__ = [
    "SED_LABELS",
    "display_wcs",
    "map_image",
    "plot_dataset_map",
    "plot_flux_points",
    "plot_map",
    "plot_residuals",
    "plot_sensitivity",
    "plot_significance_distribution",
    "plot_significance_map",
    "plot_spectrum",
    "plot_stat_contour",
    "plot_stat_profile",
    "significance_distribution",
    "spectrum_butterfly",
]
