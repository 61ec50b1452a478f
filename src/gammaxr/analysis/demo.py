"""The main job: simulate the default scenario and run the whole analysis on it.

``gammaxr demo OUTPUT_DIR`` (:func:`run_demo`) needs no external data:

1. simulates the default scenario (:func:`gammaxr.simulate.simulate_default`: a Crab-like
   point source and a Gaussian source, 4 wobble runs with the toy instrument) into
   ``OUTPUT_DIR/store``;
2. runs :func:`gammaxr.analysis.pipeline.run_analysis` with :func:`demo_description` (the
   same description as ``examples/demo.yaml``): lazy reduction with dask on a 3 x 3 deg grid
   around the sources, FoV background per run, stacking to ``stacked.zarr``, a fit of the
   scenario's models (point + Gaussian + background norm) started from perturbed values,
   flux points of the point source, an excess / significance map, figures;
3. compares the fitted values with the simulated truth (pulls) in ``summary.txt``.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from gammaxr.analysis.config import parse_analysis_config
from gammaxr.analysis.pipeline import run_analysis
from gammaxr.models import FoVBackgroundModel, Models

__all__ = ["DEMO_START_VALUES", "demo_description", "demo_truth", "run_demo"]

#: Start values of the fit (the truth is in gammaxr.simulate.scenarios): off by several sigma.
DEMO_START_VALUES = {
    "point": {"index": 2.4, "amplitude": 3.0e-11, "lon_0": 83.60, "lat_0": 22.04},
    "extended": {"index": 2.5, "amplitude": 3.0e-11, "lon_0": 83.25, "lat_0": 22.40, "sigma": 0.3},
}


def _models(start: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    def power_law(v):
        return {
            "type": "PowerLawSpectralModel",
            "parameters": [
                {"name": "index", "value": v["index"]},
                {"name": "amplitude", "value": v["amplitude"], "unit": "cm-2 s-1 TeV-1"},
                {"name": "reference", "value": 1.0, "unit": "TeV", "frozen": True},
            ],
        }

    def position(v):
        return [
            {"name": "lon_0", "value": v["lon_0"], "unit": "deg"},
            {"name": "lat_0", "value": v["lat_0"], "unit": "deg"},
        ]

    point, ext = start["point"], start["extended"]
    return {
        "components": [
            {
                "name": "point",
                "type": "SkyModel",
                "spectral": power_law(point),
                "spatial": {
                    "type": "PointSpatialModel",
                    "frame": "icrs",
                    "parameters": position(point),
                },
            },
            {
                "name": "extended",
                "type": "SkyModel",
                "spectral": power_law(ext),
                "spatial": {
                    "type": "GaussianSpatialModel",
                    "frame": "icrs",
                    "parameters": [
                        *position(ext),
                        {"name": "sigma", "value": ext["sigma"], "unit": "deg"},
                        {"name": "e", "value": 0.0, "frozen": True},
                        {"name": "phi", "value": 0.0, "unit": "deg", "frozen": True},
                    ],
                },
            },
        ]
    }


_DESCRIPTION: dict[str, Any] = {
    "name": "stacked",
    "description": "default simulated scenario: point + Gaussian source, 4 wobble runs",
    "datastore": "store",
    "observations": {"target": "Crab-like"},
    "grid": {"center": [83.45, 22.2], "frame": "icrs", "width": 3.0, "binsz": 0.04},
    "axes": {
        "energy": {"min": 0.3, "max": 30.0, "nbins": 8},
        "energy_true": {"min": 0.1, "max": 100.0, "nbins": 20},
    },
    "reduction": {
        "maps": ["counts", "exposure", "background", "psf", "edisp"],
        "safe_mask": ["offset-max", "aeff-max"],
        "offset_max": 2.0,
        "aeff_percent": 10,
        "irf_binsz": 0.2,
    },
    "background": {
        "method": "fov",
        "exclusion": "icrs; circle(83.633, 22.014, 0.3); circle(83.2, 22.45, 0.6)",
        "fov": {"method": "scale"},
    },
    "fit": {"models": _models(DEMO_START_VALUES), "background_model": True},
    "estimators": {
        "excess_map": {"correlation_radius": 0.1},
        "flux_points": {"source": "point", "energy_edges": None},
    },
    "plots": True,
    "compute": {"scheduler": "threads", "num_workers": 2},
}


def demo_description(
    datastore: str | os.PathLike = "store", output: str | os.PathLike | None = None
) -> dict[str, Any]:
    """The demo's analysis description (what ``examples/demo.yaml`` holds); a copy.

    Parameters
    ----------
    datastore : str or os.PathLike
        The simulated data store.
    output : str or os.PathLike, optional
        Output directory.

    Returns
    -------
    dict
    """
    data = copy.deepcopy(_DESCRIPTION)
    data["datastore"] = str(datastore)
    if output is not None:
        data["output"] = str(output)
    return data


def demo_truth() -> Models:
    """The simulated truth: the default scenario's models and a background norm of 1."""
    from gammaxr.simulate.scenarios import default_scenario

    models = default_scenario().models
    return Models([*models, FoVBackgroundModel(_DESCRIPTION["name"])])


def run_demo(
    output_dir: str | os.PathLike,
    *,
    livetime: float | None = None,
    seed: int | None = None,
    overwrite: bool = False,
    changes: Mapping[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Simulate the default scenario and analyse it end to end (module docstring).

    Parameters
    ----------
    output_dir : str or os.PathLike
        Directory of the simulated store (``store/``) and of every output.
    livetime : float, optional
        Livetime per run in s (default the scenario's 1800 s; tests use less).
    seed : int, optional
        Simulation seed (default the scenario's, 0).
    overwrite : bool
        Replace the store and outputs of an earlier demo in ``output_dir``.
    changes : mapping, optional
        Top-level sections of the description to replace (e.g. ``{"plots": False}``).
    log, progress
        As in :func:`~gammaxr.analysis.pipeline.run_analysis`.

    Returns
    -------
    xarray.Dataset
        The results of :func:`~gammaxr.analysis.pipeline.run_analysis` with ``true_value``
        and ``pull`` per fitted parameter; attrs ``seconds_simulate`` and
        ``seconds_total`` include the simulation.
    """
    from gammaxr.simulate.scenarios import simulate_default

    say = log or (lambda _line: None)
    output_dir = Path(output_dir)
    t0 = time.perf_counter()
    report = simulate_default(
        output_dir / "store", seed=seed, overwrite=overwrite, livetime=livetime
    )
    seconds = time.perf_counter() - t0
    say(f"simulate: {len(report.counts)} runs, {report.n_events} events ({seconds:.1f} s)")
    description = demo_description("store", ".")
    description.update(copy.deepcopy(dict(changes or {})))
    config = parse_analysis_config(description, base_path=output_dir, source="demo")
    results = run_analysis(
        config, output_dir, overwrite=overwrite, truth=demo_truth(), log=say, progress=progress
    )
    total = time.perf_counter() - t0
    results.attrs.update(seconds_simulate=round(seconds, 3), seconds_total=round(total, 3))
    from gammaxr.analysis.outputs import analysis_summary

    (output_dir / "summary.txt").write_text(analysis_summary(results) + "\n")
    return results
