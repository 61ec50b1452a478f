"""MSH 15-52: ring background, excess and significance maps
===========================================================

The pulsar wind nebula MSH 15-52 seen by H.E.S.S. (DL3 DR1): the 20 runs within 2.5 deg
are reduced lazily (one dask task per run) to counts, exposure and background maps, each
run is summed over energy and gets a ring background (inner radius 0.5 deg, width 0.3 deg,
the source excluded within 0.4 deg), the on/off maps are stacked, and Li & Ma excess and
significance maps are made with a 0.04 deg top-hat. The significance distribution of the
pixels outside the exclusion region should be a standard normal.

Gammapy counterpart: ``RingBackgroundMaker`` + ``ExcessMapEstimator``.

Run: ``python examples/msh1552_ring_background.py [output-folder]``.
"""

import matplotlib.pyplot as plt
import numpy as np
from _example_setup import data_folder, output_folder, save_figure

import gammaxr
from gammaxr.geom import SkyGrid, exclusion_mask
from gammaxr.plot import (
    plot_map,
    plot_significance_distribution,
    plot_significance_map,
    significance_distribution,
)
from gammaxr.reduce import ReductionSpec, reduce_runs

out = output_folder("msh1552_ring_background", __doc__)
store = gammaxr.open_datastore(data_folder("hess-dl3-dr1"))

# %%
# Select the runs within 2.5 deg of the source
source = (228.32, -59.08)  # ra, dec in deg
msh = store.select_cone(source, radius=2.5)
print(f"{len(msh.obs_ids)} runs: {[int(i) for i in msh.obs_ids]}")
table = msh.obs_table
print(f"livetime {float(table['livetime'].sum()) / 3600:.2f} h")

# %%
# Reduce each run on a 3 x 3 deg grid centred on the source (true energy = reco energy
# axis: nothing but counts, exposure and background is needed here)
edges = np.geomspace(0.5, 10, 11)  # TeV
spec = ReductionSpec(
    energy_edges=edges,
    energy_true_edges=edges,
    grid=SkyGrid.from_center(source, width=3, binsz=0.02, frame="icrs"),
    maps=("counts", "exposure", "background"),
    safe_mask=("aeff-default",),
)
runs = reduce_runs(msh.observations(), spec)  # lazy: dim obs_id, one task per run

# %%
# Ring background per run (energy summed inside the safe mask), then stack the on/off maps
exclusion = "icrs; circle(228.32, -59.08, 0.4)"
on_off = runs.gamma.ring_background(r_in=0.5, width=0.3, exclusion=exclusion)
stacked = on_off.gamma.stack().compute()
print(stacked.gamma)  # counts, off counts, alpha, excess, significance, exposure, ...

# %%
# Correlated excess and significance (Li & Ma); the ring off counts are already sums over
# a ring, so they are not correlated again
maps = stacked.gamma.excess_map(0.04, correlate_off=False).isel(energy=0)
significance, excess = maps["significance"], maps["excess"]
print(f"max significance {float(significance.max()):.2f} sigma")

ax = plot_significance_map(
    significance.assign_attrs(frame="icrs"), title="MSH 15-52: significance, r = 0.04 deg"
)
save_figure(ax.figure, out, "significance_map.png")
ax = plot_map(
    excess.assign_attrs(frame="icrs"),
    cmap="viridis",
    label="excess [counts]",
    title="MSH 15-52: excess, r = 0.04 deg",
)
save_figure(ax.figure, out, "excess_map.png")

# %%
# Significance distribution: all pixels, and the pixels outside the exclusion region
outside = exclusion_mask(SkyGrid.from_xarray(stacked), exclusion)
off = significance_distribution(significance, outside)
print(
    f"off-source pixels: mean {off['mean']:+.3f} +- {off['mean_err']:.3f}, "
    f"width {off['sigma']:.3f} +- {off['sigma_err']:.3f} ({off['n']} pixels)"
)
fig, (ax_all, ax_off) = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
plot_significance_distribution(significance, ax=ax_all, label="all pixels")
ax_all.set_title("MSH 15-52: all pixels")
plot_significance_distribution(significance, outside, ax=ax_off, label="off pixels")
ax_off.set_title("outside the exclusion circle (r = 0.4 deg)")
save_figure(fig, out, "significance_distribution.png")
