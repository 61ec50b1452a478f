"""3D analysis of the Crab: reduction, stacking, fit, residuals, butterfly, flux points
=====================================================================================

The four H.E.S.S. DL3 DR1 Crab runs are reduced lazily on a 2 x 2 deg grid (1-10 TeV in 4
bins, true energy 0.5-20 TeV in 10 bins, safe mask offset-max 2.5 deg + aeff-max 10 %),
each run's background is fitted outside a circle around the Crab (FoV background), the runs
are stacked and written to zarr; a point source with a power law plus a background norm is
fitted to the re-opened stack; then the residuals, the spectrum with its error band
(butterfly) and flux points in 1-2, 2-4 and 4-10 TeV.

Gammapy counterpart: the "low level API" tutorial (``MapDatasetMaker``, ``SafeMaskMaker``,
``FoVBackgroundMaker``, ``Fit``, ``FluxPointsEstimator``). Gammapy 2.1 finds index
2.602 +- 0.101, amplitude (4.59 +- 0.37)e-11 cm-2 s-1 TeV-1, position (83.619, 22.024),
background norm 0.935.

Run: ``python examples/crab_3d_analysis.py [output-folder]``.
"""

import numpy as np
from _example_setup import data_folder, output_folder, save_figure
from astropy.coordinates import SkyCoord

import gammaxr
from gammaxr.geom import SkyGrid
from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.plot import plot_spectrum
from gammaxr.reduce import ReductionSpec, reduce_runs

out = output_folder("crab_3d_analysis", __doc__)
store = gammaxr.open_datastore(data_folder("hess-dl3-dr1"))

# %%
# The runs within 5 deg of the Crab
crab = store.select_cone(SkyCoord(83.633, 22.014, unit="deg"), radius=5)
crab.info()
first = crab.observation(23523)
print(first)
save_figure(first.peek(), out, "observation_23523.png")  # IRFs and events of one run

# %%
# Lazy reduction (one dask task per run) and FoV background fitted per run
spec = ReductionSpec(
    energy_edges=np.geomspace(1, 10, 5),  # TeV
    energy_true_edges=np.geomspace(0.5, 20, 11),  # TeV
    grid=SkyGrid.from_center((83.633, 22.014), width=2, binsz=0.02, frame="icrs"),
    maps=("counts", "exposure", "background", "psf", "edisp"),
    safe_mask=("offset-max", "aeff-max"),
    offset_max=2.5,
)
exclusion = "icrs; circle(83.63, 22.14, 0.2)"
runs = reduce_runs(crab.observations(), spec).gamma.fov_background(exclusion, method="fit")
stacked = runs.gamma.stack().assign_attrs(name="crab-stacked")  # lazy: nothing read yet

# %%
# Compute once (the runs are kept in memory for their background norms), write the stack to
# zarr and re-open it lazily
runs = runs.persist()
stacked = runs.gamma.stack().assign_attrs(name="crab-stacked")
stacked.gamma.to_zarr(out / "crab-stacked.zarr", mode="w")
stacked = gammaxr.open_dataset(out / "crab-stacked.zarr")
for obs_id, norm in zip(stacked.attrs["stacked_obs_ids"], runs["fov_norm"].values, strict=True):
    print(f"background norm obs {obs_id}: {norm:.2f}")
print(stacked.gamma)
save_figure(stacked.gamma.peek(), out, "stacked_peek.png")  # maps and spectrum

ax = stacked.gamma.plot_map("counts", title="Crab: counts 1-10 TeV (4 runs)")
save_figure(ax.figure, out, "counts.png")

# The counts summed over energy in the safe mask, smoothed with a 0.05 deg Gaussian (Gammapy's
# Map.smooth: mirrored beyond the map's edges by default)
image = stacked.gamma.to_image().gamma.smooth(0.05, "gauss", names="counts")
ax = image.gamma.plot_map("counts", title="Crab: counts 1-10 TeV, Gaussian 0.05 deg")
save_figure(ax.figure, out, "counts_smoothed.png")

# %%
# The model: a point source with a power law, and the background norm of the stacked dataset
crab_model = SkyModel(
    PowerLaw(index=2.702, amplitude="4.712e-11 cm-2 s-1 TeV-1", reference=1.0),
    PointSpatialModel(lon_0=83.63308, lat_0=22.01450, frame="icrs"),
    name="crab",
)
models = Models([crab_model, FoVBackgroundModel("crab-stacked")])
result = stacked.gamma.fit(models)
print(result)  # fit status and parameter table
result.models.write(out / "crab-models.yaml", overwrite=True)

# %%
# Residuals against the fitted models: map (smoothed) and spectrum
fig = stacked.gamma.plot_residuals(result.models)
save_figure(fig, out, "residuals.png")

# %%
# Butterfly (1-sigma band from the covariance) and flux points
points = stacked.gamma.flux_points(result.models, [1, 2, 4, 10], source="crab")
print(points[["e2dnde", "e2dnde_err", "ts", "sqrt_ts"]].to_dataframe().to_string())
ax = plot_spectrum(result.models["crab"], result, energy_range=(1, 10))
ax.set_title("Crab: power law with 1-sigma band")
save_figure(ax.figure, out, "butterfly.png")
ax = plot_spectrum(result.models["crab"], result, points, energy_range=(1, 10))
ax.set_title("Crab: power law and flux points")
save_figure(ax.figure, out, "flux_points.png")
