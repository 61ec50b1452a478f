"""Background model from off runs, in zenith bins, written as a data store and used
==================================================================================

A radially symmetric background model (rate in s-1 MeV-1 sr-1 as a function of
reconstructed energy and offset from the pointing) is estimated from the 45 H.E.S.S. DL3 DR1
runs without gamma-ray sources in the field of view: events are histogrammed per run (one
dask task each) and divided by observation time, solid angle and energy width. The rate
depends on zenith angle, so one model is made per zenith bin (0-20, 20-40, 40-90 deg). The
models are written as GADF ``bkg_2d`` HDUs with an HDU index pointing every run of the data
store to the model of its zenith bin; the new store is opened and used to reduce the Crab
runs, whose background prediction is compared with their counts.

Gammapy counterpart: the "make template background model" notebook (``Background2D``, HDU
index tables written by hand).

Run: ``python examples/background_model.py [output-folder]``.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from _example_setup import data_folder, output_folder, save_figure
from astropy.coordinates import SkyCoord
from matplotlib.colors import LogNorm

import gammaxr
from gammaxr.geom import SkyGrid, axis_edges, exclusion_mask
from gammaxr.irf.background_model import background_irf, make_background_model
from gammaxr.irf.background_store import write_background_store
from gammaxr.plot import plot_background_rate
from gammaxr.reduce import ReductionSpec, reduce_runs

out = output_folder("background_model", __doc__)
store = gammaxr.open_datastore(data_folder("hess-dl3-dr1"))

# %%
# The off runs
off = store.select_target("Off data")
table = off.obs_table
print(f"number of off runs: {len(off.obs_ids)}, {int(table['event_count'].sum())} events")

energy_edges = np.geomspace(0.1, 100, 20)  # TeV
offset_edges = np.sqrt(np.linspace(0, 9, 10))  # deg, bins of equal solid angle


def plot_rate(bkg, ax, title):
    """Draw a bkg_2d table (energy, offset) as an image in the (energy, offset) plane."""
    mesh = ax.pcolormesh(
        axis_edges(bkg, "energy"),
        axis_edges(bkg, "offset"),
        bkg.transpose("offset", "energy").where(bkg.T > 0).values,
        norm=LogNorm(),
    )
    ax.set_xscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("Offset [deg]")
    ax.set_title(title)
    ax.figure.colorbar(mesh, ax=ax, label=f"background rate [{bkg.attrs['units']}]")


# %%
# One model from all off runs
everything = make_background_model(
    off.observations(), energy_edges, offset_edges=offset_edges
)  # fmt: skip
print(f"counts histogrammed: {int(everything['counts'].sum())}")
print(f"observation time: {float(everything['obs_time']) / 3600:.2f} h")
fig, ax = plt.subplots(figsize=(6.4, 4.8))
plot_rate(background_irf(everything), ax, "background rate, all 45 off runs")
save_figure(fig, out, "background_rate_all_runs.png")

# %%
# Zenith dependence: the energy threshold rises with zenith angle, the total rate does not
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
ax1.plot(table["zen_pnt"], table["safe_energy_lo"], "o")
ax1.set_xlabel("Zenith [deg]")
ax1.set_ylabel("Energy threshold [TeV]")
ax1.set_title("safe energy threshold of the off runs")
ax2.plot(table["zen_pnt"], table["event_count"] / table["ontime"], "o")
ax2.set_xlabel("Zenith [deg]")
ax2.set_ylabel("Rate [events / s]")
ax2.set_ylim(0, 10)
ax2.set_title("event rate of the off runs")
save_figure(fig, out, "zenith_dependence.png")

# %%
# One model per zenith bin (a reduction over runs grouped by the ZEN_PNT column)
zenith_edges = [0, 20, 40, 90]  # deg
models = make_background_model(
    off.observations(), energy_edges, offset_edges=offset_edges, group_by={"ZEN_PNT": zenith_edges}
)
for i in range(models.sizes["zen_pnt"]):
    lo, hi = zenith_edges[i], zenith_edges[i + 1]
    print(
        f"zenith {lo:2d}-{hi:2d} deg: {int(models['n_runs'][i]):2d} runs, "
        f"{int(models['counts'][i].sum()):6d} counts, {float(models['obs_time'][i]) / 3600:.2f} h"
    )

fig, axes = plt.subplots(1, 3, figsize=(18, 4.4), layout="constrained")
for i, ax in enumerate(axes):
    title = f"zenith {zenith_edges[i]}-{zenith_edges[i + 1]} deg"
    plot_rate(background_irf(models, zen_pnt=i), ax, title)
save_figure(fig, out, "background_rate_zenith_bins.png")

# the rate per energy bin in the first offset bin (0-1 deg) (empty bins left out; the log
# interpolation used to evaluate a table falls steeply next to them)
fig, ax = plt.subplots(figsize=(6.4, 4.8))
for i in range(models.sizes["zen_pnt"]):
    rate = background_irf(models, zen_pnt=i).sel(offset=0.5, method="nearest")
    label = f"{zenith_edges[i]} < zen < {zenith_edges[i + 1]}"
    ax.plot(rate["energy"], rate.where(rate > 0), "o-", ms=3, label=label)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("Energy [TeV]")
ax.set_ylabel("background rate, offset 0-1 deg [s-1 MeV-1 sr-1]")
ax.set_title("background rate per zenith bin")
ax.legend()
save_figure(fig, out, "background_rate_vs_energy.png")

# %%
# Write the models and an HDU index pointing every run of the store to its zenith bin's model
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    new_dir = write_background_store(store, models, out / "store", overwrite=True)
for w in caught:
    print(f"warning: {w.message}")
new_store = gammaxr.open_datastore(new_dir)
print(f"new data store {new_dir}: {len(new_store.obs_ids)} runs")
bkg_rows = new_store.hdu_table.where(new_store.hdu_table["hdu_type"] == "bkg", drop=True)
print(f"bkg HDUs now used: {sorted(set(np.asarray(bkg_rows['hdu_name'].values).tolist()))}")
obs_id = 23523  # a Crab run, at 47 deg zenith
zenith = float(new_store.obs_table["zen_pnt"].sel(obs_id=obs_id))
obs = new_store.observation(obs_id)
print(f"run {obs_id} (zenith {zenith:.1f} deg): bkg {obs.bkg.dims} in {obs.bkg.attrs['units']}")
ax = plot_background_rate(obs.bkg)
ax.set_title(f"run {obs_id}: background read from the new store")
fig = ax.figure
save_figure(fig, out, "background_rate_run_23523.png")

# %%
# Use it: the Crab runs reduced with the original and with the new background models; the
# background predicted outside the Crab should match the counts there
crab = SkyCoord(83.633, 22.014, unit="deg")
spec = ReductionSpec(
    energy_edges=np.geomspace(1, 10, 5),
    energy_true_edges=np.geomspace(0.5, 20, 11),
    grid=SkyGrid.from_center((83.633, 22.014), width=4, binsz=0.02),
    safe_mask=("aeff-default", "offset-max"),
)
outside = exclusion_mask(spec.grid, "icrs; circle(83.633, 22.014, 0.3)")
for name, data_store in (("original", store), ("off-run model", new_store)):
    runs = reduce_runs(data_store.select_cone(crab, radius=3).observations(), spec)
    use = runs["mask_safe"] & outside
    counts = float(runs["counts"].where(use).sum())
    background = float(runs["background"].where(use).sum())
    print(
        f"{name:14s} background: counts {counts:.0f}, predicted {background:.1f}, ratio {counts / background:.3f}"
    )
