"""Simulation: a toy instrument and an event sampler that write GADF DL3 data stores.

>>> from gammaxr.simulate import simulate_default, read_config, simulate_datastore
>>> report = simulate_default("sim-default")                 # doctest: +SKIP
>>> store = report.open()                                     # a gammaxr DataStore
>>> report = simulate_datastore(read_config("my.yaml"), "sim", seed=3)   # doctest: +SKIP

- :mod:`~gammaxr.simulate.instrument`: :class:`ToyInstrument` (analytic IRFs tabulated in the
  GADF layout), :class:`IRFSet`, :func:`read_irfs` (any GADF IRF file, e.g. CTA prod5),
  :func:`irfs_from_observation` (a run of a data store);
- :mod:`~gammaxr.simulate.sampling`: exact sampling of source photons through aeff, edisp
  and PSF and of background events from the background IRF;
- :mod:`~gammaxr.simulate.events`: the event list of a run (:func:`simulate_observation`);
- :mod:`~gammaxr.simulate.store`: :func:`write_datastore`, :func:`simulate_datastore`;
- :mod:`~gammaxr.simulate.config`: YAML descriptions (:func:`read_config`,
  :func:`parse_config`) filling the dataclasses of :mod:`~gammaxr.simulate.specs`
  (:class:`SimulationConfig`, :class:`ObservationSpec`, :class:`InstrumentSpec`);
- :mod:`~gammaxr.simulate.scenarios`: :func:`default_scenario`, :func:`simulate_default`.
"""

from gammaxr.simulate.config import parse_config, read_config
from gammaxr.simulate.events import (
    SimulatedObservation,
    run_generator,
    sample_background,
    sample_source,
    simulate_observation,
    simulate_observations,
)
from gammaxr.simulate.instrument import IRFSet, ToyInstrument, irfs_from_observation, read_irfs
from gammaxr.simulate.scenarios import default_description, default_scenario, simulate_default
from gammaxr.simulate.specs import (
    InstrumentSpec,
    ObservationSpec,
    Observatory,
    SimulationConfig,
    SimulationConfigError,
)
from gammaxr.simulate.store import SimulationReport, simulate_datastore, write_datastore

__all__ = [
    "IRFSet",
    "InstrumentSpec",
    "ObservationSpec",
    "Observatory",
    "SimulatedObservation",
    "SimulationConfig",
    "SimulationConfigError",
    "SimulationReport",
    "ToyInstrument",
    "default_description",
    "default_scenario",
    "irfs_from_observation",
    "parse_config",
    "read_config",
    "read_irfs",
    "run_generator",
    "sample_background",
    "sample_source",
    "simulate_datastore",
    "simulate_default",
    "simulate_observation",
    "simulate_observations",
    "write_datastore",
]
