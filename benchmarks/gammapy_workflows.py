"""Gammapy 2.1 on two seed workflows, for comparison with gammaxr's defaults (hand check).

Run with the separate Gammapy environment, never from the test suite::

    /work/gpvenv/bin/python benchmarks/gammapy_workflows.py [DATA_DIR]

``benchmarks/workflows_gammaxr.py`` prints the same figures from gammaxr.

1. H.E.S.S. Crab, 4 runs, reflected-region spectra (workflow 001): on circle r 0.2 deg at
   (83.63, 22.01); exclusion of the on circle; reco 0.3-30 TeV in 20 log bins, true
   0.2-50 TeV in 40; safe mask aeff-max 10 % (Gammapy's default irfs="DL4"); per run the
   first safe energy, n_on, n_off, alpha; joint WStat fit of a power law (reference 1 TeV).
2. CTA 1DC Galactic centre, runs 110380, 111140, 111159 (workflow 004): galactic CAR grid
   centred on (0, 0), 10 x 8 deg at 0.02 deg, reco 0.1-10 TeV in 10 log bins, true 0.08-12
   TeV in 12; safe mask offset-max 4 deg + aeff-max; per run the first safe energy and the
   background total; stacked, summed over energy (to_image), fitted with a point source
   (start (0.01, 0.01) deg) and PowerLaw2 (index 2 frozen, 0.1-10 TeV), background frozen.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.data import DataStore
from gammapy.datasets import Datasets, MapDataset, SpectrumDataset
from gammapy.makers import (
    MapDatasetMaker,
    ReflectedRegionsBackgroundMaker,
    SafeMaskMaker,
    SpectrumDatasetMaker,
)
from gammapy.maps import MapAxis, RegionGeom, WcsGeom
from gammapy.modeling import Fit
from gammapy.modeling.models import (
    FoVBackgroundModel,
    PointSpatialModel,
    PowerLaw2SpectralModel,
    PowerLawSpectralModel,
    SkyModel,
)
from regions import CircleSkyRegion

warnings.simplefilter("ignore")


def _first_safe(dataset) -> float:
    mask = dataset.mask_safe.data.reshape(dataset.mask_safe.data.shape[0], -1).any(axis=1)
    if not mask.any():
        return float("nan")
    return float(dataset._geom.axes["energy"].edges[np.argmax(mask)].to_value("TeV"))


def crab_spectra(data_dir: Path) -> None:
    store = DataStore.from_dir(data_dir / "hess-dl3-dr1")
    observations = store.get_observations([23523, 23526, 23559, 23592])
    e_reco = MapAxis.from_energy_bounds(0.3, 30, 20, unit="TeV", name="energy")
    e_true = MapAxis.from_energy_bounds(0.2, 50, 40, unit="TeV", name="energy_true")
    on = CircleSkyRegion(SkyCoord(83.63, 22.01, unit="deg"), 0.2 * u.deg)
    excl_geom = WcsGeom.create(skydir=on.center, width=5, binsz=0.05, frame="icrs")
    exclusion = excl_geom.region_mask([on], inside=False)
    empty = SpectrumDataset.create(RegionGeom.create(on, axes=[e_reco]), energy_axis_true=e_true)
    maker = SpectrumDatasetMaker(selection=["counts", "exposure", "edisp"])
    reflected = ReflectedRegionsBackgroundMaker(exclusion_mask=exclusion)
    safe = SafeMaskMaker(methods=["aeff-max"], aeff_percent=10)
    datasets = Datasets()
    print("\nH.E.S.S. Crab reflected regions (Gammapy 2.1)")
    print("run     first safe E (TeV)  n_on  n_off  alpha     n_on safe  n_off safe")
    for obs in observations:
        ds = safe.run(reflected.run(maker.run(empty.copy(name=str(obs.obs_id)), obs), obs), obs)
        mask = ds.mask_safe.data.ravel()
        n_on, n_off = ds.counts.data.ravel(), ds.counts_off.data.ravel()
        alpha = float(ds.alpha.data.ravel()[0])
        print(
            f"{obs.obs_id}  {_first_safe(ds):18.4f}  {n_on.sum():4.0f}  {n_off.sum():5.0f}"
            f"  {alpha:.4f}  {n_on[mask].sum():10.0f}  {n_off[mask].sum():10.0f}"
        )
        datasets.append(ds)
    model = SkyModel(
        PowerLawSpectralModel(index=2.6, amplitude="4e-11 cm-2 s-1 TeV-1"), name="crab"
    )
    datasets.models = [model]
    result = Fit().run(datasets)
    for name in ("index", "amplitude"):
        p = model.spectral_model.parameters[name]
        print(f"joint fit {name:9s} {p.value:.5g} +- {p.error:.3g}")
    print(f"joint fit success {result.success}, total stat {result.total_stat:.3f}")


def gc_image(data_dir: Path) -> None:
    store = DataStore.from_dir(data_dir / "cta-1dc" / "index" / "gps")
    observations = store.get_observations([110380, 111140, 111159])
    e_reco = MapAxis.from_energy_bounds(0.1, 10, 10, unit="TeV", name="energy")
    e_true = MapAxis.from_energy_bounds(0.08, 12, 12, unit="TeV", name="energy_true")
    geom = WcsGeom.create(
        skydir=(0, 0), binsz=0.02, width=(10, 8), frame="galactic", proj="CAR", axes=[e_reco]
    )
    stacked = MapDataset.create(geom, energy_axis_true=e_true, name="gc")
    maker = MapDatasetMaker(selection=["counts", "exposure", "background", "psf"])
    safe = SafeMaskMaker(methods=["offset-max", "aeff-max"], offset_max="4 deg")
    print("\nCTA 1DC Galactic centre (Gammapy 2.1)")
    print("run     first safe E (TeV)  background total  background safe  counts safe")
    for obs in observations:
        ds = safe.run(maker.run(stacked.copy(name=str(obs.obs_id)), obs), obs)
        mask = ds.mask_safe.data
        print(
            f"{obs.obs_id}  {_first_safe(ds):18.4f}  {ds.background.data.sum():16.2f}"
            f"  {ds.background.data[mask].sum():15.2f}  {ds.counts.data[mask].sum():11.0f}"
        )
        stacked.stack(ds)
    image = stacked.to_image()
    print(
        f"stacked image: counts {image.counts.data.sum():.0f}, "
        f"background {image.background.data.sum():.2f}"
    )
    spatial = PointSpatialModel(lon_0="0.01 deg", lat_0="0.01 deg", frame="galactic")
    spectral = PowerLaw2SpectralModel(
        emin=0.1 * u.TeV, emax=10 * u.TeV, index=2.0, amplitude="3e-12 cm-2 s-1"
    )
    spectral.index.frozen = True
    source = SkyModel(spectral, spatial, name="gc-source")
    background = FoVBackgroundModel(dataset_name=image.name)
    background.spectral_model.norm.frozen = True
    background.spectral_model.tilt.frozen = True
    image.models = [source, background]
    result = Fit().run([image])
    for p in (spatial.lon_0, spatial.lat_0, spectral.amplitude):
        value = p.value if p.name != "lon_0" else (p.value + 180) % 360 - 180
        print(f"fit {p.name:9s} {value:.6g} +- {p.error:.3g}")
    print(f"fit success {result.success}, total stat {result.total_stat:.3f}")


if __name__ == "__main__":
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    crab_spectra(data)
    gc_image(data)
