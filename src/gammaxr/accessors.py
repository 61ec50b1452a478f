"""The ``.gamma`` accessor on xarray Datasets.

The accessor holds only the dataset it wraps; every method is one call into a plain function
of the modules below (DESIGN.md, "Layers and modules").
"""

from __future__ import annotations

import os

import xarray as xr

__all__ = ["GammaDatasetAccessor"]


@xr.register_dataset_accessor("gamma")
class GammaDatasetAccessor:
    """gammaxr methods on an ``xarray.Dataset`` (``ds.gamma.<method>``)."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def __repr__(self) -> str:
        """Summary of the dataset (computes totals); see :func:`gammaxr.summary.dataset_text`."""
        from gammaxr.summary import dataset_text

        return dataset_text(self._ds)

    def _repr_html_(self) -> str:
        """Notebook summary; see :func:`gammaxr.summary.dataset_html`."""
        from gammaxr.summary import dataset_html

        return dataset_html(self._ds)

    def summary(self) -> dict:
        """Counts, background, excess, significance, ... as numbers; see
        :func:`gammaxr.summary.dataset_summary`."""
        from gammaxr.summary import dataset_summary

        return dataset_summary(self._ds)

    @property
    def grid(self):
        """The :class:`gammaxr.geom.SkyGrid` of the dataset (from ``lon``/``lat`` and ``frame``)."""
        from gammaxr.geom.grid import SkyGrid

        return SkyGrid.from_xarray(self._ds)

    @property
    def wcs(self):
        """The equivalent ``astropy.wcs.WCS`` of the sky grid (CAR, pixel centres exact)."""
        return self.grid.wcs

    def stack(self, dim: str = "obs_id") -> xr.Dataset:
        """Stack runs: masked sum over ``dim``; see :func:`gammaxr.reduce.stack.stack_runs`."""
        from gammaxr.reduce.stack import stack_runs

        return stack_runs(self._ds, dim=dim)

    def to_zarr(self, path: str | os.PathLike, **kwargs):
        """Write to a chunked zarr store; see :func:`gammaxr.io.zarr_store.to_zarr`."""
        from gammaxr.io.zarr_store import to_zarr

        return to_zarr(self._ds, path, **kwargs)

    def to_image(self) -> xr.Dataset:
        """Sum over reco energy inside the safe mask (one energy bin); see
        :func:`gammaxr.reduce.ring.to_image`."""
        from gammaxr.reduce.ring import to_image

        return to_image(self._ds)

    def to_gammapy(self, path: str | os.PathLike, overwrite: bool = False, **kwargs):
        """Write in Gammapy 2.1's format of the dataset's kind (map dataset FITS, OGIP,
        gadf-sed); see :func:`gammaxr.io.gammapy_files.write_gammapy`."""
        from gammaxr.io.gammapy_files import write_gammapy

        return write_gammapy(self._ds, path, overwrite=overwrite, **kwargs)

    # ---- background estimation: FoV and ring (gammaxr.reduce.fov_background / .ring) ----

    def fov_background(self, exclusion=None, **kwargs) -> xr.Dataset:
        """Rescale each run's background to its counts outside ``exclusion``; see
        :func:`gammaxr.reduce.fov_background.fov_background`."""
        from gammaxr.reduce.fov_background import fov_background

        return fov_background(self._ds, exclusion, **kwargs)

    def ring_background(self, r_in: float, width: float, exclusion=None, **kwargs) -> xr.Dataset:
        """On/off dataset from a ring around each pixel; see
        :func:`gammaxr.reduce.ring.ring_background`."""
        from gammaxr.reduce.ring import ring_background

        return ring_background(self._ds, r_in, width, exclusion, **kwargs)

    # ---- 1D spectrum datasets (gammaxr.reduce.spectrum) ----

    def spectrum_regions(self, obs_id: int | None = None) -> dict:
        """On region and off regions (``regions`` objects) of a spectrum dataset; see
        :func:`gammaxr.reduce.spectrum.spectrum_regions`."""
        from gammaxr.reduce.spectrum import spectrum_regions

        return spectrum_regions(self._ds, obs_id)

    # ---- model fitting and predicted counts (gammaxr.fit) ----

    def fit(self, models, **kwargs):
        """Fit models by maximum likelihood (iminuit); see :func:`gammaxr.fit.fit`."""
        from gammaxr.fit import fit

        return fit(self._ds, models, **kwargs)

    def npred(self, models, **kwargs) -> xr.DataArray:
        """Predicted counts of models on this dataset; see :func:`gammaxr.fit.npred`."""
        from gammaxr.fit import npred

        return npred(self._ds, models, **kwargs)

    def stat_profile(self, result, parameter: str, values=None, reoptimize=False, **kwargs):
        """Statistic along values of one parameter; see :func:`gammaxr.fit.stat_profile`."""
        from gammaxr.fit import stat_profile

        return stat_profile(self._ds, result, parameter, values, reoptimize, **kwargs)

    def stat_contour(self, result, x: str, y: str, n_sigma: float = 1.0, **kwargs):
        """Minos contour of two parameters; see :func:`gammaxr.fit.stat_contour`."""
        from gammaxr.fit import stat_contour

        return stat_contour(self._ds, result, x, y, n_sigma, **kwargs)

    # ---- estimators: excess / significance maps and residuals (gammaxr.estimators) ----

    def excess_map(self, correlation_radius: float = 0.1, **kwargs) -> xr.Dataset:
        """Correlated excess and significance maps; see
        :func:`gammaxr.estimators.excess_map.excess_map`."""
        from gammaxr.estimators.excess_map import excess_map

        return excess_map(self._ds, correlation_radius, **kwargs)

    def smooth(self, width: float, kernel: str = "gauss", **kwargs) -> xr.Dataset:
        """Maps smoothed with a Gaussian, disk or box (Gammapy's ``Map.smooth``); see
        :func:`gammaxr.estimators.smoothing.smooth`."""
        from gammaxr.estimators.smoothing import smooth

        return smooth(self._ds, width, kernel, **kwargs)

    def residuals(self, npred=None, method: str = "diff", **kwargs) -> xr.DataArray:
        """Residual map of the counts against ``npred`` (default the background); see
        :func:`gammaxr.estimators.residuals.dataset_residuals`."""
        from gammaxr.estimators.residuals import dataset_residuals

        return dataset_residuals(self._ds, npred, method, **kwargs)

    # ---- estimators: flux points, TS maps, light curves (gammaxr.estimators) ----

    def flux_points(self, models, energy_edges=None, **kwargs) -> xr.Dataset:
        """Flux points of a source (norm fitted per energy bin); see
        :func:`gammaxr.estimators.flux_points.flux_points`."""
        from gammaxr.estimators.flux_points import flux_points

        return flux_points(self._ds, models, energy_edges, **kwargs)

    def ts_map(self, models=None, **kwargs) -> xr.Dataset:
        """TS, significance and flux maps of a test source; see
        :func:`gammaxr.estimators.ts_map.ts_map`."""
        from gammaxr.estimators.ts_map import ts_map

        return ts_map(self._ds, models, **kwargs)

    def light_curve(self, models, time_intervals=None, **kwargs) -> xr.Dataset:
        """Light curve of a source from a dataset with an ``obs_id`` dim (runs); see
        :func:`gammaxr.estimators.light_curve.light_curve`."""
        from gammaxr.estimators.light_curve import light_curve

        return light_curve(self._ds, models, time_intervals, **kwargs)

    def sensitivity(self, spectral_model=None, **kwargs) -> xr.Dataset:
        """Differential sensitivity per energy bin of a spectrum dataset; see
        :func:`gammaxr.estimators.sensitivity.sensitivity`."""
        from gammaxr.estimators.sensitivity import sensitivity

        return sensitivity(self._ds, spectral_model, **kwargs)

    # ---- plotting (gammaxr.plot; a compute boundary: the pixels drawn are computed) ----

    def plot_map(self, var: str, ax=None, **kwargs):
        """Draw variable ``var`` as a sky map (east left, other dims summed); see
        :func:`gammaxr.plot.maps.plot_dataset_map`."""
        from gammaxr.plot.maps import plot_dataset_map

        return plot_dataset_map(self._ds, var, ax, **kwargs)

    def peek(self, **kwargs):
        """Counts, excess and exposure maps and the counts / background spectrum; see
        :func:`gammaxr.plot.peek.peek_dataset`."""
        from gammaxr.plot.peek import peek_dataset

        return peek_dataset(self._ds, **kwargs)

    def plot_residuals(self, npred=None, **kwargs):
        """Residual map and spectral residuals against ``npred`` (predicted counts or
        models; default the background); see :func:`gammaxr.plot.maps.plot_residuals`."""
        from gammaxr.plot.maps import plot_residuals

        return plot_residuals(self._ds, npred, **kwargs)
