"""Ready-made simulation scenarios.

The default scenario: a Crab-like point source and an extended Gaussian source seen by the
toy instrument in 4 runs of 30 min livetime at 0.5 deg wobble offsets around the point
source (2 h in all; about 5000 events per run, most of them background, simulated in well
under a second per run). ``examples/simulate_default.yaml`` is the same description as a file;
``gammaxr simulate --default DIR`` writes it.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from gammaxr.simulate.config import SimulationConfig, parse_config
from gammaxr.simulate.store import SimulationReport, simulate_datastore

__all__ = [
    "DEFAULT_POINT_SOURCE",
    "DEFAULT_EXTENDED_SOURCE",
    "default_description",
    "default_scenario",
    "simulate_default",
]

#: Position (icrs, deg), index and amplitude (cm-2 s-1 TeV-1 at 1 TeV) of the point source.
DEFAULT_POINT_SOURCE = {"ra": 83.633, "dec": 22.014, "index": 2.6, "amplitude": 4.5e-11}
#: Position (icrs, deg), Gaussian sigma (deg), index and amplitude of the extended source.
DEFAULT_EXTENDED_SOURCE = {
    "ra": 83.2,
    "dec": 22.45,
    "sigma": 0.2,
    "index": 2.3,
    "amplitude": 2.0e-11,
}


def _power_law(index: float, amplitude: float) -> dict[str, Any]:
    return {
        "type": "PowerLawSpectralModel",
        "parameters": [
            {"name": "index", "value": index},
            {"name": "amplitude", "value": amplitude, "unit": "cm-2 s-1 TeV-1"},
            {"name": "reference", "value": 1.0, "unit": "TeV"},
        ],
    }


def _position(ra: float, dec: float) -> list[dict[str, Any]]:
    return [
        {"name": "lon_0", "value": ra, "unit": "deg"},
        {"name": "lat_0", "value": dec, "unit": "deg"},
    ]


_DESCRIPTION: dict[str, Any] = {
    "name": "default",
    "description": "Crab-like point source and an extended source, 4 wobble runs (toy IRFs)",
    "seed": 0,
    "instruments": {"toy": {"type": "toy"}},
    "schedule": {"start": "2024-01-01T20:00:00", "gap": 300},
    "defaults": {"instrument": "toy", "livetime": 1800, "deadc": 0.95, "zenith": 20},
    "observations": [
        {
            "wobble": {
                "center": {"ra": DEFAULT_POINT_SOURCE["ra"], "dec": DEFAULT_POINT_SOURCE["dec"]},
                "offset": 0.5,
                "angles": [0, 90, 180, 270],
                "first_obs_id": 1,
            },
            "target": "Crab-like",
        }
    ],
    "models": {
        "components": [
            {
                "name": "point",
                "type": "SkyModel",
                "spectral": _power_law(
                    DEFAULT_POINT_SOURCE["index"], DEFAULT_POINT_SOURCE["amplitude"]
                ),
                "spatial": {
                    "type": "PointSpatialModel",
                    "frame": "icrs",
                    "parameters": _position(
                        DEFAULT_POINT_SOURCE["ra"], DEFAULT_POINT_SOURCE["dec"]
                    ),
                },
            },
            {
                "name": "extended",
                "type": "SkyModel",
                "spectral": _power_law(
                    DEFAULT_EXTENDED_SOURCE["index"], DEFAULT_EXTENDED_SOURCE["amplitude"]
                ),
                "spatial": {
                    "type": "GaussianSpatialModel",
                    "frame": "icrs",
                    "parameters": [
                        *_position(DEFAULT_EXTENDED_SOURCE["ra"], DEFAULT_EXTENDED_SOURCE["dec"]),
                        {"name": "sigma", "value": DEFAULT_EXTENDED_SOURCE["sigma"], "unit": "deg"},
                        {"name": "e", "value": 0.0},
                        {"name": "phi", "value": 0.0, "unit": "deg"},
                    ],
                },
            },
        ]
    },
}


def default_description() -> dict[str, Any]:
    """The default scenario as a description mapping (what the YAML file holds); a copy."""
    return copy.deepcopy(_DESCRIPTION)


def default_scenario(
    livetime: float | None = None, seed: int | None = None, **instrument: Any
) -> SimulationConfig:
    """The default scenario as a validated :class:`SimulationConfig`.

    Parameters
    ----------
    livetime : float, optional
        Livetime per run in s (default 1800; tests use less).
    seed : int, optional
        Master seed (default 0).
    **instrument
        :class:`~gammaxr.simulate.instrument.ToyInstrument` parameters to change (e.g.
        ``psf_format="3gauss"``, ``bkg_format="3d"``).

    Returns
    -------
    SimulationConfig
    """
    data = default_description()
    if livetime is not None:
        data["defaults"]["livetime"] = livetime
    if seed is not None:
        data["seed"] = seed
    data["instruments"]["toy"].update(instrument)
    return parse_config(data, source="default scenario")


def simulate_default(
    directory: str | os.PathLike,
    *,
    seed: int | None = None,
    overwrite: bool = False,
    livetime: float | None = None,
) -> SimulationReport:
    """Simulate the default scenario into a GADF data store.

    Parameters
    ----------
    directory : str or os.PathLike
        Output directory.
    seed : int, optional
        Master seed (default 0: the same store every time).
    overwrite : bool
        Replace an existing store.
    livetime : float, optional
        Livetime per run in s (default 1800).

    Returns
    -------
    SimulationReport
        ``report.open()`` gives the :class:`gammaxr.data.DataStore`.
    """
    config = default_scenario(livetime=livetime, seed=seed)
    return simulate_datastore(config, directory, overwrite=overwrite)
