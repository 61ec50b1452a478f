"""Gammapy 2.1's safe energy thresholds on the H.E.S.S. Crab runs (hand cross-check).

Run with the separate Gammapy environment, never from the test suite::

    /work/gpvenv/bin/python benchmarks/gammapy_safe_thresholds.py [DATA_DIR]

It prints, per run, the thresholds (TeV) of ``aeff-max``, ``edisp-bias`` and ``bkg-peak``
with ``irfs="DL4"`` (Gammapy's default) and ``irfs="DL3"``, for

- a map dataset: 2 x 2 deg at 0.02 deg centred on (83.633, 22.014), reco 0.3-30 TeV in 40
  log bins, true 0.2-50 TeV in 40 log bins, position the map centre;
- a reflected-region spectrum: on circle r 0.2 deg at (83.63, 22.01), same energy axes,
  exclusion of the on circle on a 5 deg grid at 0.05 deg, with and without containment
  correction.

``benchmarks/safe_thresholds.py`` prints the same figures from gammaxr.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.data import DataStore
from gammapy.datasets import MapDataset, SpectrumDataset
from gammapy.makers import (
    MapDatasetMaker,
    ReflectedRegionsBackgroundMaker,
    SafeMaskMaker,
    SpectrumDatasetMaker,
)
from gammapy.maps import MapAxis, RegionGeom, WcsGeom
from gammapy.modeling.models import TemplateSpectralModel
from regions import CircleSkyRegion

warnings.simplefilter("ignore")
RUNS = [23523, 23526, 23559, 23592]
E_RECO = MapAxis.from_energy_bounds(0.3, 30, 40, unit="TeV", name="energy")
E_TRUE = MapAxis.from_energy_bounds(0.2, 50, 40, unit="TeV", name="energy_true")


def aeff_max_threshold(dataset, maker, observation):
    """The continuous threshold of Gammapy's aeff-max (before rounding to a bin edge)."""
    if maker.irfs == "DL3":
        offset = maker._get_offset(observation)
        edges = observation.aeff.axes["energy_true"].edges
        values = observation.aeff.evaluate(offset=offset, energy_true=edges)
        return float(edges[values > 0.1 * values.max()].min().to_value("TeV"))
    position = maker._get_position(observation, dataset._geom)
    aeff = dataset.exposure.get_spectrum(position) / dataset.exposure.meta["livetime"]
    model = TemplateSpectralModel.from_region_map(aeff)
    energy = model.energy
    emin = energy[np.nonzero(model.values > 0)[0][0]]
    root = model.inverse(0.1 * aeff.quantity.max(), energy_min=emin, energy_max=energy[-1])
    return float((emin if np.isnan(root[0]) else root[0]).to_value("TeV"))


def edisp_bias_threshold(dataset, maker, observation):
    if maker.irfs == "DL3":
        kernel = observation.edisp.to_edisp_kernel(maker._get_offset(observation))
    else:
        kwargs = {"position": maker._get_position(observation, dataset._geom)}
        kernel = dataset.edisp.get_edisp_kernel(**kwargs)
    return float(kernel.get_bias_energy(0.1)[0].to_value("TeV"))


def bkg_peak_threshold(dataset, maker, observation):
    mask = maker.make_mask_energy_bkg_peak(dataset, observation)
    if maker.irfs == "DL3":
        bkg = observation.bkg.to_2d()
        spectrum = np.ravel(bkg.integral(axis_name="offset", offset=bkg.axes["offset"].bounds[1]))
        return float(bkg.axes["energy"].edges[np.argmax(spectrum)].to_value("TeV"))
    spectrum = dataset.npred_background().get_spectrum().data.ravel()
    assert mask is not None
    return float(dataset._geom.axes["energy"].edges[np.argmax(spectrum)].to_value("TeV"))


def thresholds(dataset, observation):
    out = {}
    for irfs in ("DL4", "DL3"):
        maker = SafeMaskMaker(methods=["aeff-max"], irfs=irfs)
        out[f"aeff-max {irfs}"] = aeff_max_threshold(dataset, maker, observation)
        out[f"edisp-bias {irfs}"] = edisp_bias_threshold(dataset, maker, observation)
        out[f"bkg-peak {irfs}"] = bkg_peak_threshold(dataset, maker, observation)
        mask = SafeMaskMaker(methods=["aeff-max"], irfs=irfs).run(dataset.copy(), observation)
        safe = mask.mask_safe.data.reshape(E_RECO.nbin, -1).any(axis=1)
        out[f"first safe bin {irfs}"] = float(E_RECO.edges[np.argmax(safe)].to_value("TeV"))
    return out


def main(data_dir: Path) -> None:
    store = DataStore.from_dir(data_dir)
    observations = store.get_observations(RUNS)
    geom = WcsGeom.create(
        skydir=(83.633, 22.014), binsz=0.02, width=2, frame="icrs", proj="CAR", axes=[E_RECO]
    )
    empty = MapDataset.create(geom, energy_axis_true=E_TRUE)
    maker = MapDatasetMaker(selection=["counts", "exposure", "background", "edisp"])
    centre = SkyCoord(83.63, 22.01, unit="deg")
    on = CircleSkyRegion(centre, 0.2 * u.deg)
    excl_geom = WcsGeom.create(skydir=centre, width=5, binsz=0.05, frame="icrs")
    exclusion = excl_geom.region_mask([on], inside=False)
    reflected = ReflectedRegionsBackgroundMaker(exclusion_mask=exclusion)
    region_geom = RegionGeom.create(region=on, axes=[E_RECO])
    empty_1d = SpectrumDataset.create(geom=region_geom, energy_axis_true=E_TRUE)
    print("run  case        " + "  ".join(f"{k:>16s}" for k in thresholds_keys()))
    for obs in observations:
        ds = maker.run(empty.copy(name=f"map-{obs.obs_id}"), obs)
        print(_row(obs.obs_id, "map", thresholds(ds, obs)))
        print(f"{obs.obs_id}  map background total {ds.background.data.sum():.3f}")
        for containment in (False, True):
            sm = SpectrumDatasetMaker(
                containment_correction=containment, selection=["counts", "exposure", "edisp"]
            )
            ds1 = reflected.run(sm.run(empty_1d.copy(name=f"s-{obs.obs_id}"), obs), obs)
            case = "spec-cc" if containment else "spectrum"
            print(_row(obs.obs_id, case, thresholds(ds1, obs)))


def thresholds_keys():
    keys = []
    for irfs in ("DL4", "DL3"):
        keys += [f"aeff-max {irfs}", f"edisp-bias {irfs}", f"bkg-peak {irfs}"]
        keys += [f"first safe bin {irfs}"]
    return keys


def _row(obs_id, case, values):
    return f"{obs_id}  {case:10s}  " + "  ".join(f"{values[k]:16.4f}" for k in thresholds_keys())


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/hess-dl3-dr1"))
