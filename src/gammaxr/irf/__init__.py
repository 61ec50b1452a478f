"""IRF evaluation as pure functions: interpolation, PSF containment, energy-dispersion kernels.

All functions take the IRF ``xarray`` objects of :mod:`gammaxr.io.irf_fits` and coordinates
as numpy array-likes (numpy result, broadcast shape) or ``xarray.DataArray`` objects
(DataArray result, broadcast dims, lazy on dask). Energies are in TeV, angles in deg.
See :mod:`gammaxr.irf.interpolate` for the interpolation and out-of-range policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gammaxr._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from gammaxr.irf.aeff import evaluate_aeff, evaluate_aeff_on_offsets
    from gammaxr.irf.background import (
        evaluate_bkg_2d,
        evaluate_bkg_3d,
        integrate_bkg_energy,
        loglog_bin_integral,
        loglog_integral_from_logs,
    )
    from gammaxr.irf.edisp import diagonal_response, edisp_kernel, evaluate_edisp
    from gammaxr.irf.interpolate import GridAxis, grid_axis, interpolate_irf, interpolate_table
    from gammaxr.irf.psf import (
        RAD_EDGES_DEFAULT,
        evaluate_psf,
        evaluate_psf_3gauss,
        profile_containment,
        profile_containment_radius,
        psf_3gauss_containment,
        psf_3gauss_to_table,
        psf_containment,
        psf_containment_radius,
        psf_profile,
        psf_profile_map,
    )

__all__ = [
    "diagonal_response",
    "RAD_EDGES_DEFAULT",
    "GridAxis",
    "edisp_kernel",
    "evaluate_aeff",
    "evaluate_aeff_on_offsets",
    "evaluate_bkg_2d",
    "evaluate_bkg_3d",
    "evaluate_edisp",
    "evaluate_psf",
    "evaluate_psf_3gauss",
    "grid_axis",
    "integrate_bkg_energy",
    "interpolate_irf",
    "interpolate_table",
    "loglog_bin_integral",
    "loglog_integral_from_logs",
    "profile_containment",
    "profile_containment_radius",
    "psf_3gauss_containment",
    "psf_3gauss_to_table",
    "psf_containment",
    "psf_containment_radius",
    "psf_profile",
    "psf_profile_map",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
