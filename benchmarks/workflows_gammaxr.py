"""gammaxr's defaults on two seed workflows, the same steps as ``gammapy_workflows.py``.

    python benchmarks/workflows_gammaxr.py [DATA_DIR]

1. H.E.S.S. Crab, 4 runs, reflected-region spectra: per run the first safe energy, n_on,
   n_off, alpha, and a joint WStat power-law fit.
2. CTA 1DC Galactic centre, 3 runs, 10 x 8 deg galactic grid at 0.02 deg: per run the first
   safe energy and background totals; the stacked image fitted with a point source and
   PowerLaw2 (index 2 frozen), background frozen, with both conventions. Prints timings
   (measured on a shared machine).

See ``gammapy_workflows.py`` for the settings (the same here).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

from gammaxr.data import open_datastore
from gammaxr.fit import fit
from gammaxr.geom import SkyGrid, exclusion_mask
from gammaxr.models import (
    FoVBackgroundModel,
    Models,
    PointSpatialModel,
    PowerLaw,
    PowerLaw2,
    PowerLawNorm,
    SkyModel,
)
from gammaxr.reduce.dataset import ReductionSpec
from gammaxr.reduce.runs import reduce_runs
from gammaxr.reduce.spectrum import SpectrumSpec, spectrum_runs

ON = "icrs; circle(83.63, 22.01, 0.2)"


def _first_safe(mask: np.ndarray, edges: np.ndarray) -> float:
    safe = mask.reshape(mask.shape[0], -1).any(axis=1)
    return float(edges[np.argmax(safe)]) if safe.any() else float("nan")


def crab_spectra(data_dir: Path) -> None:
    store = open_datastore(data_dir / "hess-dl3-dr1")
    e_reco = np.geomspace(0.3, 30, 21)
    spec = SpectrumSpec(
        ON,
        e_reco,
        np.geomspace(0.2, 50, 41),
        exclusion=exclusion_mask(SkyGrid.from_center((83.63, 22.01), 5, 0.05), ON),
        safe_mask=("aeff-max",),
    )
    runs = spectrum_runs(store.observations([23523, 23526, 23559, 23592]), spec).compute()
    print("\nH.E.S.S. Crab reflected regions (gammaxr defaults)")
    print("run     first safe E (TeV)  n_on  n_off  alpha     n_on safe  n_off safe")
    for obs_id in runs.obs_id.values:
        run = runs.sel(obs_id=obs_id)
        mask = run.mask_safe.values
        alpha = float(run.acceptance[0] / run.acceptance_off[0])
        print(
            f"{obs_id}  {_first_safe(mask, e_reco):18.4f}  {float(run.counts.sum()):4.0f}"
            f"  {float(run.counts_off.sum()):5.0f}  {alpha:.4f}"
            f"  {float(run.counts.values[mask].sum()):10.0f}"
            f"  {float(run.counts_off.values[mask].sum()):10.0f}"
        )
    model = SkyModel(PowerLaw(index=2.6, amplitude="4e-11 cm-2 s-1 TeV-1"), name="crab")
    result = fit(runs, model)
    for name in ("index", "amplitude"):
        full = f"crab.spectral.{name}"
        print(f"joint fit {name:9s} {result.value(full):.5g} +- {result.error(full):.3g}")
    print(f"joint fit success {result.success}, total stat {result.total_stat:.3f}")


def gc_image(data_dir: Path) -> None:
    store = open_datastore(data_dir / "cta-1dc" / "index" / "gps")
    e_reco = np.geomspace(0.1, 10, 11)
    spec = ReductionSpec(
        e_reco,
        np.geomspace(0.08, 12, 13),
        grid=SkyGrid.from_center((0.0, 0.0), (10.0, 8.0), 0.02, frame="galactic"),
        maps=("counts", "exposure", "background", "psf"),
        safe_mask=("offset-max", "aeff-max"),
        offset_max=4.0,
    )
    t0 = time.perf_counter()
    runs = reduce_runs(store.observations([110380, 111140, 111159]), spec).compute()
    t_reduce = time.perf_counter() - t0
    print("\nCTA 1DC Galactic centre (gammaxr defaults)")
    print("run     first safe E (TeV)  background total  background safe  counts safe")
    for obs_id in runs.obs_id.values:
        run = runs.sel(obs_id=obs_id)
        mask = run.mask_safe.values
        print(
            f"{obs_id}  {_first_safe(mask, e_reco):18.4f}  {float(run.background.sum()):16.2f}"
            f"  {float(run.background.values[mask].sum()):15.2f}"
            f"  {float(run.counts.values[mask].sum()):11.0f}"
        )
    image = runs.gamma.stack().gamma.to_image()
    print(
        f"stacked image: counts {float(image.counts.where(image.mask_safe).sum()):.0f}, "
        f"background {float(image.background.where(image.mask_safe).sum()):.2f}"
        f" (reduction {t_reduce:.1f} s, shared machine)"
    )
    for convention in ("gammaxr", "gammapy"):
        spectral = PowerLaw2(index=2.0, amplitude="3e-12 cm-2 s-1", emin=0.1, emax=10.0)
        source = SkyModel(
            spectral.with_frozen("index"),
            PointSpatialModel(lon_0=0.01, lat_0=0.01, frame="galactic"),
            name="gc-source",
        )
        background = FoVBackgroundModel("gc", spectral=PowerLawNorm().with_frozen("norm"))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = fit(image, Models([source, background]), name="gc", convention=convention)
        seconds = time.perf_counter() - t0
        for p in ("spatial.lon_0", "spatial.lat_0", "spectral.amplitude"):
            value = result.value(f"gc-source.{p}")
            value = (value + 180) % 360 - 180 if p.endswith("lon_0") else value
            print(f"{convention} fit {p:18s} {value:.6g} +- {result.error(f'gc-source.{p}'):.3g}")
        print(f"{convention} fit success {result.success} ({seconds:.1f} s)")


if __name__ == "__main__":
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    crab_spectra(data)
    gc_image(data)
