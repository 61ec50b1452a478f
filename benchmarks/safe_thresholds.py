"""gammaxr's safe energy thresholds on the H.E.S.S. Crab runs, DL4 (default) and DL3.

    python benchmarks/safe_thresholds.py [DATA_DIR]

Prints the same table as ``benchmarks/gammapy_safe_thresholds.py`` (run that one with the
Gammapy 2.1 environment to compare): per run, the thresholds in TeV of ``aeff-max``,
``edisp-bias`` and ``bkg-peak`` with ``safe_mask_irfs="DL4"`` and ``"DL3"``, and the lower
edge of the first safe bin of ``aeff-max``, for a map dataset (2 x 2 deg at 0.02 deg on
(83.633, 22.014), position the map centre) and a reflected-region spectrum (circle r 0.2
deg at (83.63, 22.01), without and with containment correction); reco 0.3-30 TeV in 40 log
bins, true 0.2-50 TeV in 40 log bins. Also the map background totals.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from gammaxr.data import open_datastore
from gammaxr.geom import SkyGrid, exclusion_mask
from gammaxr.reduce.dataset import ReductionSpec, reduce_observation, safe_energy_inputs
from gammaxr.reduce.safe_mask import energy_thresholds
from gammaxr.reduce.spectrum import SpectrumSpec, spectrum_dataset, spectrum_safe_energy_inputs

RUNS = [23523, 23526, 23559, 23592]
E_RECO = np.geomspace(0.3, 30, 41)
E_TRUE = np.geomspace(0.2, 50, 41)
METHODS = ("aeff-max", "edisp-bias", "bkg-peak")
ON = "icrs; circle(83.63, 22.01, 0.2)"


def _keys() -> list[str]:
    keys = []
    for irfs in ("DL4", "DL3"):
        keys += [f"{m} {irfs}" for m in METHODS] + [f"first safe bin {irfs}"]
    return keys


def _first_safe(mask: np.ndarray) -> float:
    safe = mask.reshape(len(E_RECO) - 1, -1).any(axis=1)
    return float(E_RECO[np.argmax(safe)])


def map_row(obs, grid) -> tuple[dict, float]:
    out, total = {}, None
    for irfs in ("DL4", "DL3"):
        spec = ReductionSpec(
            E_RECO,
            E_TRUE,
            grid=grid,
            maps=("counts", "exposure", "background"),
            safe_mask=METHODS,
            safe_mask_irfs=irfs,
        )
        ds = reduce_observation(obs, spec)
        arrays = {"background": ds["background"].values}
        inputs = safe_energy_inputs(obs.read(spec.hdus()), spec, grid, arrays)
        for method, (lo, _) in energy_thresholds(METHODS, inputs).items():
            out[f"{method} {irfs}"] = lo
        aeff_only = ReductionSpec(
            E_RECO,
            E_TRUE,
            grid=grid,
            maps=("exposure",),
            safe_mask=("aeff-max",),
            safe_mask_irfs=irfs,
        )
        out[f"first safe bin {irfs}"] = _first_safe(
            reduce_observation(obs, aeff_only)["mask_safe"].values
        )
        total = float(ds["background"].sum())
    return out, total


def spectrum_row(obs, exclusion, containment: bool) -> dict:
    out = {}
    for irfs in ("DL4", "DL3"):
        spec = SpectrumSpec(
            ON,
            E_RECO,
            E_TRUE,
            exclusion=exclusion,
            containment_correction=containment,
            safe_mask=METHODS,
            safe_mask_irfs=irfs,
        )
        ds = spectrum_dataset(obs, spec)
        arrays = {name: ds[name].values for name in ds.data_vars}
        inputs = spectrum_safe_energy_inputs(obs.read(spec.hdus()), spec, arrays)
        for method, (lo, _) in energy_thresholds(METHODS, inputs).items():
            out[f"{method} {irfs}"] = lo
        aeff_only = SpectrumSpec(
            ON,
            E_RECO,
            E_TRUE,
            exclusion=exclusion,
            containment_correction=containment,
            safe_mask=("aeff-max",),
            safe_mask_irfs=irfs,
        )
        out[f"first safe bin {irfs}"] = _first_safe(
            spectrum_dataset(obs, aeff_only)["mask_safe"].values
        )
    return out


def _row(obs_id, case, values) -> str:
    return f"{obs_id}  {case:10s}  " + "  ".join(f"{values[k]:16.4f}" for k in _keys())


def main(data_dir: Path) -> None:
    store = open_datastore(data_dir)
    grid = SkyGrid.from_center((83.633, 22.014), 2.0, 0.02, frame="icrs")
    exclusion = exclusion_mask(SkyGrid.from_center((83.63, 22.01), 5, 0.05), ON)
    print("run  case        " + "  ".join(f"{k:>16s}" for k in _keys()))
    for obs in store.observations(RUNS):
        values, total = map_row(obs, grid)
        print(_row(obs.obs_id, "map", values))
        print(f"{obs.obs_id}  map background total {total:.3f}")
        for containment in (False, True):
            case = "spec-cc" if containment else "spectrum"
            print(_row(obs.obs_id, case, spectrum_row(obs, exclusion, containment)))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/hess-dl3-dr1"))
