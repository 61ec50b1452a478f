"""Fitting: predicted counts, likelihoods, the iminuit driver and fit results.

::

    from gammaxr.fit import fit, npred
    result = fit(ds, models)                 # or ds.gamma.fit(models)
    result.success, result.total_stat
    result.parameters["value"].sel(param="crab.spectral.index")
    fitted_models = result.models            # the input models are unchanged
    counts = npred(ds, fitted_models)        # or ds.gamma.npred(models)
    profile = stat_profile(ds, result, "crab.spectral.index", reoptimize=True)
    contour = stat_contour(ds, result, "crab.spectral.index", "crab.spectral.amplitude")

Modules: :mod:`~gammaxr.fit.data` (loading: the compute boundary),
:mod:`~gammaxr.fit.kernels` (PSF/edisp kernels at a source), :mod:`~gammaxr.fit.evaluators`
(predicted counts with caches), :mod:`~gammaxr.fit.likelihood` (cash/wstat terms, the
per-fit context), :mod:`~gammaxr.fit.minimizer` (iminuit), :mod:`~gammaxr.fit.result`,
:mod:`~gammaxr.fit.profile` (likelihood profiles and Minos contours).
"""

from .data import MapData, SpectrumData, load_datasets
from .fitting import fit, fit_data, npred
from .likelihood import FitContext
from .minimizer import MinimizeResult, minimize
from .profile import profile_values, stat_contour, stat_profile
from .result import FitResult

__all__ = [
    "FitContext",
    "FitResult",
    "MapData",
    "MinimizeResult",
    "SpectrumData",
    "fit",
    "fit_data",
    "load_datasets",
    "minimize",
    "npred",
    "profile_values",
    "stat_contour",
    "stat_profile",
]
