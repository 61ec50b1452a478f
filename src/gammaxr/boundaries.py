"""The documented compute boundaries of the public API (DESIGN.md, "Rules for laziness").

Every other public operation of :mod:`gammaxr.reduce`, :mod:`gammaxr.estimators`,
:mod:`gammaxr.stats` and the ``ds.gamma`` accessor builds a dask graph from dask inputs without
computing anything; the operations listed here compute (or read/write files) on purpose, each
for the reason given. ``tests/test_laziness_matrix.py`` checks both halves: the lazy operations
under a scheduler that raises on compute, the others against this table.
"""

from __future__ import annotations

__all__ = ["COMPUTE_BOUNDARIES", "is_compute_boundary"]

_FIT = "fit: the data are loaded once into numpy (gammaxr.fit.load_datasets), then minimised"
_PLOT = "plot: the pixels or points drawn are computed"
_SUMMARY = "summary: numbers for a repr / table are computed (one compute)"

COMPUTE_BOUNDARIES: dict[str, str] = {
    # fitting and the estimators built on it
    "gammaxr.fit.fit": _FIT,
    "gammaxr.fit.npred": _FIT,
    "gammaxr.fit.stat_profile": _FIT,
    "gammaxr.fit.stat_contour": _FIT,
    "gammaxr.estimators.flux_points": "flux points: a norm fit per energy bin (" + _FIT + ")",
    "gammaxr.estimators.ts_map": "TS map: a norm fit per pixel on the loaded dataset",
    "gammaxr.estimators.light_curve": "light curve: a norm fit per time bin",
    "gammaxr.estimators.sensitivity": "sensitivity: the small 1D dataset is loaded once",
    "gammaxr.estimators.minimum_excess": "numpy helper of the sensitivity (1D per-bin arrays)",
    "gammaxr.estimators.butterfly": "model-only: evaluates a fitted model and its covariance",
    "gammaxr.stats.cash_sum": "numpy total of the fit statistic (the inner loop of fits)",
    # reduction: per-run eager readers, reports, file writers
    "gammaxr.reduce.reduce_observation": "one run reduced eagerly (reduce_runs is the lazy form)",
    "gammaxr.reduce.spectrum_dataset": "one run reduced eagerly (spectrum_runs is the lazy form)",
    "gammaxr.reduce.find_off_regions": "geometry of one run's off regions (reads its header)",
    "gammaxr.reduce.reflected_regions": "region geometry (no data arrays)",
    "gammaxr.reduce.failed_runs": "report: the per-run error strings are computed",
    "gammaxr.reduce.add_runs_to_mosaic": "writes: each run is reduced and added to a zarr store",
    "gammaxr.reduce.create_mosaic_store": "writes: creates an empty zarr store (no data computed)",
    # the accessor
    "ds.gamma.summary": _SUMMARY,
    "ds.gamma.__repr__": _SUMMARY,
    "ds.gamma._repr_html_": _SUMMARY,
    "ds.gamma.spectrum_regions": "region geometry from the dataset's attrs (no data arrays)",
    "ds.gamma.to_gammapy": "writes: Gammapy FITS files of the computed dataset",
    "ds.gamma.fit": _FIT,
    "ds.gamma.npred": _FIT,
    "ds.gamma.stat_profile": _FIT,
    "ds.gamma.stat_contour": _FIT,
    "ds.gamma.flux_points": "flux points: a norm fit per energy bin",
    "ds.gamma.ts_map": "TS map: a norm fit per pixel on the loaded dataset",
    "ds.gamma.light_curve": "light curve: a norm fit per time bin",
    "ds.gamma.sensitivity": "sensitivity: the small 1D dataset is loaded once",
    "ds.gamma.plot_map": _PLOT,
    "ds.gamma.peek": _PLOT,
    "ds.gamma.plot_residuals": _PLOT,
}


def is_compute_boundary(name: str) -> bool:
    """Whether the public operation ``name`` (e.g. ``"gammaxr.fit.fit"``) computes on purpose."""
    return name in COMPUTE_BOUNDARIES
