"""2D image fitting and ring significance of the CTA 1DC Galactic centre
=====================================================================

Three CTA first-data-challenge runs of the Galactic centre are reduced on a 10 x 8 deg
galactic grid (0.1-10 TeV in 10 bins, runs cut at 4 deg offset) and summed over energy into
images. A point source with an integral-flux power law (index frozen at 2) is fitted to the
counts image, the background being held fixed; the exposure is kept per true-energy bin, so
the source spectrum weights it exactly. Then the classical ring background (inner radius
0.3 deg, width 0.3 deg, the source excluded within 0.3 deg, runs cut at 3 deg): Li & Ma
significance and excess maps with a 0.1 deg top-hat and the significance distribution.

Gammapy counterpart: the "fitting 2D images" notebook (``MapMaker.run_images``,
``PowerLaw2SpectralModel``, ``RingBackgroundEstimator``, ``compute_lima_on_off_image``);
it finds the source at (-0.054, -0.051) deg and an off-pixel distribution of mean -0.03 and
width 1.00.

Run: ``python examples/cta_gc_image_fitting.py [output-folder]``.
"""

import matplotlib.pyplot as plt
import numpy as np
from _example_setup import data_folder, output_folder, save_figure

import gammaxr
from gammaxr.geom import SkyGrid, exclusion_mask
from gammaxr.models import PointSpatialModel, PowerLaw2, SkyModel
from gammaxr.plot import (
    display_wcs,
    plot_map,
    plot_significance_distribution,
    plot_significance_map,
    significance_distribution,
)
from gammaxr.reduce import ReductionSpec, reduce_runs

out = output_folder("cta_gc_image_fitting", __doc__)
store = gammaxr.open_datastore(data_folder("cta-1dc") / "index" / "gps")

# %%
# The data store and the runs
store.info()
obs_ids = [110380, 111140, 111159]

# %%
# Reduction in 10 energy bins, then summed over energy into images (counts, background);
# the exposure keeps its true-energy axis
energy = np.geomspace(0.1, 10, 11)  # TeV
grid = SkyGrid.from_center((0, 0), width=(10, 8), binsz=0.02, frame="galactic")
spec = ReductionSpec(
    energy_edges=energy,
    energy_true_edges=energy,
    grid=grid,
    maps=("counts", "exposure", "background", "psf"),
    safe_mask=("offset-max",),
    offset_max=4.0,
)
images = reduce_runs(store.observations(obs_ids), spec).gamma.stack().gamma.to_image().compute()
images = images.assign_attrs(name="gc-image")
print(images.gamma)
ax = images.gamma.plot_map("counts", title="Galactic centre: counts 0.1-10 TeV")
save_figure(ax.figure, out, "counts.png")

# %%
# Fit a point source (integral flux 0.1-10 TeV, index frozen) on the fixed background
spectral = PowerLaw2(index=2.0, amplitude="3e-12 cm-2 s-1", emin=0.1, emax=10).with_frozen("index")
source = SkyModel(spectral, PointSpatialModel(lon_0=0.01, lat_0=0.01, frame="galactic"), name="gc")
result = images.gamma.fit(source)
print(result)
free = ~result.parameters["frozen"]
print("covariance of the free parameters:")
print(result.parameters["covariance"].isel(param=free, param2=free.values).to_pandas().to_string())
fig = images.gamma.plot_residuals(result.models)
save_figure(fig, out, "residuals.png")

# %%
# Ring background: exclusion around the fitted source, runs cut at 3 deg offset
fitted = result.models["gc"].spatial
exclusion = f"galactic; circle({fitted.lon_0.value}, {fitted.lat_0.value}, 0.3)"
ring_spec = ReductionSpec(
    energy_edges=energy,
    energy_true_edges=energy,
    grid=grid,
    maps=("counts", "background"),
    safe_mask=("offset-max",),
    offset_max=3.0,
)
runs = reduce_runs(store.observations(obs_ids), ring_spec)
on_off = runs.gamma.ring_background(r_in=0.3, width=0.3, exclusion=exclusion).gamma.stack()
maps = on_off.gamma.excess_map(0.1, correlate_off=False).isel(energy=0).compute()
significance = maps["significance"].assign_attrs(frame="galactic")
excess = maps["excess"].assign_attrs(frame="galactic")
print(f"max significance {float(significance.max()):.1f} sigma")

fig = plt.figure(figsize=(14, 4.8), layout="constrained")
plot_significance_map(significance, fig.add_subplot(1, 2, 1, projection=display_wcs(grid)),
                      title="significance (ring, r = 0.1 deg)")  # fmt: skip
plot_map(excess, fig.add_subplot(1, 2, 2, projection=display_wcs(grid)),
         label="excess [counts]", title="excess (ring, r = 0.1 deg)")  # fmt: skip
save_figure(fig, out, "significance_excess.png")

# %%
# Significance distribution outside the exclusion region
outside = exclusion_mask(grid, exclusion)
off = significance_distribution(significance, outside)
print(f"fit results: mu = {off['mean']:.2f}, std = {off['sigma']:.2f} ({off['n']} pixels)")
fig, (ax_all, ax_off) = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
plot_significance_distribution(significance, ax=ax_all, label="all pixels")
ax_all.set_title("Galactic centre: all pixels")
plot_significance_distribution(significance, outside, ax=ax_off, label="off pixels")
ax_off.set_title("outside the exclusion circle (r = 0.3 deg)")
save_figure(fig, out, "significance_distribution.png")
