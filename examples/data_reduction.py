"""Data reduction: map datasets, safe masks, FoV, ring and reflected-region backgrounds
=====================================================================================

From DL3 runs to binned datasets with the H.E.S.S. DL3 DR1 Crab runs:

1. one run reduced to counts, exposure, background, PSF and energy-dispersion maps;
2. safe masks (``aeff-default`` and ``offset-max``);
3. the FoV background: each run's background model rescaled to its counts outside an
   exclusion region;
4. the reduction of four runs (lazy, one dask task per run) and their stack;
5. the ring background: on/off maps and a significance map;
6. reflected regions: 1D on/off spectra per run, the joint spectral fit (wstat) and the
   spectrum with its error band and flux points.

Gammapy counterparts: ``MapDatasetMaker``, ``SafeMaskMaker``, ``FoVBackgroundMaker``,
``RingBackgroundMaker``, ``SpectrumDatasetMaker`` + ``ReflectedRegionsBackgroundMaker``,
``DatasetsMaker``.

Run: ``python examples/data_reduction.py [output-folder]``.
"""

import numpy as np
from _example_setup import data_folder, output_folder, save_figure
from matplotlib.colors import PowerNorm

import gammaxr
from gammaxr.geom import SkyGrid, exclusion_mask
from gammaxr.models import PowerLaw, SkyModel
from gammaxr.plot import plot_map, plot_significance_map, plot_spectrum
from gammaxr.reduce import (
    ReductionSpec,
    SpectrumSpec,
    reduce_observation,
    reduce_runs,
    spectrum_runs,
)

out = output_folder("data_reduction", __doc__)
store = gammaxr.open_datastore(data_folder("hess-dl3-dr1"))
crab = (83.63, 22.01)  # ra, dec in deg

# %%
# One run on a 5 x 5 deg grid with 0.05 deg pixels, 1-10 TeV in 11 bins
energy = np.geomspace(1, 10, 12)  # reco-energy edges, TeV
energy_true = np.geomspace(0.3, 10, 32)  # true-energy edges, TeV
spec = ReductionSpec(
    energy_edges=energy,
    energy_true_edges=energy_true,
    grid=SkyGrid.from_center(crab, width=5, binsz=0.05, frame="icrs"),
    maps=("counts", "exposure", "background", "psf", "edisp"),
)
run = reduce_observation(store.observation(23592), spec)
print(run.gamma)
ax = run.gamma.plot_map("counts", title="run 23592: counts, 1-10 TeV", norm=PowerNorm(0.5))
save_figure(ax.figure, out, "counts_run_23592.png")

# %%
# Safe masks: the energy range given in the IRF files and 3 deg around the pointing
spec_safe = ReductionSpec(
    energy_edges=energy,
    energy_true_edges=energy_true,
    grid=spec.grid,
    maps=("counts", "exposure", "background"),
    safe_mask=("aeff-default", "offset-max"),
    offset_max=3.0,
)
run = reduce_observation(store.observation(23592), spec_safe)
safe_bins = run["mask_safe"].sum("energy").assign_attrs(units="", frame="icrs")
print(f"safe bins: {int(run['mask_safe'].sum())} of {run['mask_safe'].size}")
ax = plot_map(safe_bins, label="safe energy bins", title="run 23592: safe mask")
save_figure(ax.figure, out, "mask_safe_run_23592.png")

# %%
# The reduction of four Crab runs on a 5 x 5 deg grid with 0.02 deg pixels (lazy),
# each run's background rescaled outside a 0.2 deg circle around the Crab, then stacked
exclusion = "icrs; circle(83.63, 22.01, 0.2)"
obs_ids = [23523, 23592, 23526, 23559]
spec_runs = ReductionSpec(
    energy_edges=energy,
    energy_true_edges=energy_true,
    grid=SkyGrid.from_center(crab, width=5, binsz=0.02, frame="icrs"),
    maps=("counts", "exposure", "background"),
    safe_mask=("aeff-default", "offset-max"),
    offset_max=3.0,
)
runs = reduce_runs(store.observations(obs_ids), spec_runs)  # lazy: dim obs_id
runs = runs.gamma.fov_background(exclusion, method="scale").persist()
for obs_id in obs_ids:
    print(f"background norm obs {obs_id}: {float(runs['fov_norm'].sel(obs_id=obs_id)):.2f}")
stacked = runs.gamma.stack()
print(stacked.gamma)

# %%
# Ring background on the same runs (no source model needed): on/off maps and significance
ring = runs.drop_vars(["exposure"]).gamma.ring_background(0.5, 0.3, exclusion=exclusion)
ring_stacked = ring.gamma.stack()
significance = ring_stacked.gamma.excess_map(0.1, correlate_off=False)["significance"]
significance = significance.isel(energy=0).assign_attrs(frame="icrs")
print(f"ring background: max significance {float(significance.max()):.1f} sigma")
ax = plot_significance_map(
    significance, title="Crab, 4 runs: ring background significance, r = 0.1 deg"
)
save_figure(ax.figure, out, "ring_significance.png")

# %%
# Reflected regions: an on circle of 0.2 deg, off regions at the same offset from each
# pointing avoiding the exclusion mask; safe mask aeff-max (10 % of the maximum)
on_region = "icrs; circle(83.63, 22.01, 0.2)"
spectrum_spec = SpectrumSpec(
    on_region,
    energy,
    energy_true,
    exclusion=exclusion_mask(SkyGrid.from_center(crab, 5, 0.05), on_region),
    safe_mask=("aeff-max",),
)
spectra = spectrum_runs(store.observations(obs_ids), spectrum_spec).compute()
for obs_id in obs_ids:
    r = spectra.sel(obs_id=obs_id)
    print(
        f"obs {obs_id}: n_on {int(r['counts'].sum()):4d}, n_off {int(r['counts_off'].sum()):4d}, "
        f"{int(r['n_off_regions'])} off regions (alpha 1/{int(r['n_off_regions'])})"
    )

# the counts of run 23592 on a grid centred on its pointing (``grid=None``) with its regions
around_pointing = ReductionSpec(energy, energy_true, width=5, binsz=0.02, maps=("counts",))
counts = reduce_observation(store.observation(23592), around_pointing)
ax = counts.gamma.plot_map("counts", title="run 23592: on region (white), off regions (red)")
regions = spectra.gamma.spectrum_regions(23592)
regions["on"].to_pixel(ax.wcs).plot(ax=ax, edgecolor="white", lw=1.5)
for off in regions["off"]:
    off.to_pixel(ax.wcs).plot(ax=ax, edgecolor="red", lw=1.0)
save_figure(ax.figure, out, "reflected_regions_run_23592.png")

# %%
# The 1D spectrum: a power law fitted jointly to the four on/off spectra (wstat)
model = SkyModel(PowerLaw(index=2.0, amplitude="1e-11 cm-2 s-1 TeV-1"), name="crab")
result = spectra.gamma.fit(model)
print(result)  # wstat, joint over the four runs
stacked_spectrum = spectra.gamma.stack()
points = stacked_spectrum.gamma.flux_points(result.models, [1, 2, 4, 10], source="crab")
print(points[["e2dnde", "e2dnde_err", "sqrt_ts"]].to_dataframe().to_string())
ax = plot_spectrum(result.models["crab"], result, points, energy_range=(1, 10))
ax.set_title("Crab, reflected regions (4 runs): power law and flux points")
save_figure(ax.figure, out, "spectrum.png")
