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
:mod:`~gammaxr.plot.sensitivity` (differential sensitivity curves),
:mod:`~gammaxr.plot.irf` (effective area, energy dispersion, PSF containment, background rate,
events), :mod:`~gammaxr.plot.peek` (``obs.peek()``, ``ds.gamma.peek()``),
:mod:`~gammaxr.plot.labels` (energy ranges and labels shared by titles and colour bars).
"""

from gammaxr.plot.irf import (
    plot_aeff,
    plot_background_rate,
    plot_edisp,
    plot_event_energies,
    plot_event_map,
    plot_psf_containment,
)
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
from gammaxr.plot.peek import peek_dataset, peek_observation
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
    "peek_dataset",
    "peek_observation",
    "plot_aeff",
    "plot_background_rate",
    "plot_dataset_map",
    "plot_edisp",
    "plot_event_energies",
    "plot_event_map",
    "plot_flux_points",
    "plot_map",
    "plot_psf_containment",
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
