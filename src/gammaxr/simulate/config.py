"""Simulation descriptions: validated dataclasses and the YAML format that fills them.

A description says which instruments (IRF sets) exist, which sky models shine, and which
runs are taken (pointing, livetime, instrument ...)::

    seed: 1                               # optional; --seed on the command line wins
    energy_true: [0.05, 100]              # TeV, optional (default: the aeff table's range)
    instruments:
      toy: {type: toy, psf_format: table, bkg_format: 2d}     # any ToyInstrument parameter
      south: {type: gadf, file: Prod5-South-20deg-AverageAz-14MSTs37SSTs.180000s-v0.1.fits.gz}
      hess: {type: datastore, path: ../hess-dl3-dr1, obs_id: 23523}
    schedule: {start: "2024-01-01T20:00:00", gap: 300 s}     # UTC start, pause between runs
    defaults: {instrument: toy, livetime: 30 min, deadc: 0.95, zenith: 20}
    observations:
      - wobble: {center: {ra: 83.633, dec: 22.014}, offset: 0.5 deg, angles: [0, 90, 180, 270]}
        first_obs_id: 1
        target: Crab
      - {obs_id: 10, pointing: {lon: 184.56, lat: -5.78, frame: galactic}, livetime: 600}
    models:                               # Gammapy model YAML, inline or a file name
      components: [...]

Numbers take the default unit (s, deg, TeV); strings with units (``"30 min"``, ``"50 GeV"``)
are converted. Relative file names are relative to the description file. Every problem is
reported as a :class:`SimulationConfigError` naming the file and the entry at fault; every
problem of a file is listed at once. The schema is
:class:`gammaxr.simulate.schema.SimulationDescription` (pydantic); :func:`simulation_json_schema`
(or ``gammaxr schema simulation``) exports it for editors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gammaxr.io.config_schema import description_json_schema, raise_problems, validate_description
from gammaxr.io.yaml_files import read_yaml_mapping
from gammaxr.models import ModelFormatError, Models, models_from_dict, read_models
from gammaxr.models.sphere import offset_by
from gammaxr.simulate.schema import Defaults, SimulationDescription, Target
from gammaxr.simulate.specs import (
    InstrumentSpec,
    ObservationSpec,
    Observatory,
    SimulationConfig,
    SimulationConfigError,
    met,
)

__all__ = ["parse_config", "read_config", "simulation_json_schema"]

_DEFAULT_GAP = 300.0  # s between runs


def _start(value: str | float, where: str, problems: list[str]) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)  # MET seconds
    try:
        return met(str(value))
    except ValueError:
        problems.append(f"{where}: cannot read {value!r} as a UTC time (ISO format)")
        return None


def _instruments(
    desc: SimulationDescription, base: Path | None, problems: list[str]
) -> dict[str, InstrumentSpec]:
    out = {}
    for name, spec in (desc.instruments or {}).items():
        where = f"instruments.{name}"
        try:
            if spec.type == "toy":
                params = tuple(sorted(spec.toy_parameters().items()))
                out[name] = InstrumentSpec(name, "toy", params)
            elif spec.type == "gadf":
                path = _path(spec.file, base)
                if path is not None and not Path(path).is_file():
                    raise ValueError(f"IRF file {path} not found")
                out[name] = InstrumentSpec(name, "gadf", path=path)
            else:
                path = _path(spec.path, base)
                if path is not None and not Path(path).exists():
                    raise ValueError(f"data store {path} not found")
                out[name] = InstrumentSpec(name, "datastore", path=path, obs_id=spec.obs_id)
        except ValueError as exc:
            problems.append(f"{where}: {str(exc).removeprefix(f'instrument {name!r}: ')}")
    return out


def _path(value: str | None, base: Path | None) -> str | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return str(path)


def _models(value: Any, base: Path | None, problems: list[str]) -> Models:
    if value is None:
        return Models()
    try:
        if isinstance(value, str):
            path = Path(_path(value, base))
            if not path.is_file():
                raise ValueError(f"model file {path} not found")
            return read_models(path)
        return models_from_dict(dict(value), base_path=base)
    except (ModelFormatError, TypeError, ValueError) as exc:
        problems.append(f"models: {exc}")
        return Models()


def _settings(entry: Defaults) -> dict[str, Any]:
    """The run settings given in a defaults block or an observation entry."""
    return {k: getattr(entry, k) for k in Defaults.model_fields if k in entry.model_fields_set}


def _expand(desc: SimulationDescription) -> list[tuple[str, dict[str, Any]]]:
    """Observation entries (wobble blocks expanded) merged with the defaults."""
    defaults = _settings(desc.defaults)
    runs = []
    next_id = 1
    for k, entry in enumerate(desc.observations):
        where = f"observations[{k}]"
        data = {**defaults, **_settings(entry)}
        if entry.wobble is None:
            obs_id = next_id if entry.obs_id is None else entry.obs_id
            pointing = None if entry.pointing is None else entry.pointing.icrs()
            runs.append((where, {**data, "obs_id": obs_id, "pointing": pointing}))
            next_id = obs_id + 1
            continue
        wobble = entry.wobble
        ra0, dec0 = wobble.center.icrs()
        first = next_id if wobble.first_obs_id is None else wobble.first_obs_id
        target = data.get("target")
        if target is None or isinstance(target, str):
            data["target"] = Target(name=target or "", ra=ra0, dec=dec0)
        for j, angle in enumerate(wobble.angles):
            ra, dec = offset_by(ra0, dec0, angle, wobble.offset)
            run = {**data, "obs_id": first + j, "pointing": (ra, dec)}
            runs.append((f"{where} (wobble {j})", run))
        next_id = first + len(wobble.angles)
    return runs


def _observations(desc: SimulationDescription, problems: list[str]) -> list[ObservationSpec]:
    t_next = _start(desc.schedule.start, "schedule.start", problems)
    out = []
    for where, data in _expand(desc):
        obs_id = data["obs_id"]
        where = f"{where} (obs_id {obs_id})"
        missing = [k for k in ("pointing", "livetime") if data.get(k) is None]
        if missing:
            problems.append(f"{where}: missing {' and '.join(repr(k) for k in missing)}")
            continue
        if data.get("instrument") is None:
            problems.append(
                f"{where}: pointing without IRF: no 'instrument' given (set it here or under "
                "'defaults', and define it under 'instruments')"
            )
            continue
        ra, dec = data["pointing"]
        kwargs: dict[str, Any] = {"obs_id": obs_id, "ra": ra, "dec": dec}
        for key in ("livetime", "deadc", "zenith", "azimuth", "background_norm", "instrument"):
            if data.get(key) is not None:
                kwargs[key] = data[key]
        target = data.get("target")
        if isinstance(target, str):
            kwargs["target_name"] = target
        elif target is not None:
            kwargs["target_name"] = target.name
            position = target.icrs()
            if position is not None:
                kwargs["target_ra"], kwargs["target_dec"] = position
        if data.get("start") is not None:
            t_next = _start(data["start"], f"{where}.start", problems)
        if t_next is None:
            continue
        kwargs["tstart"] = t_next
        try:
            spec = ObservationSpec(**kwargs)
        except ValueError as exc:
            problems.append(f"{where}: {str(exc).removeprefix(f'obs_id {obs_id}: ')}")
            continue
        out.append(spec)
        t_next = spec.tstop + desc.schedule.gap
    return out


def _observatory(desc: SimulationDescription) -> Observatory:
    given = desc.observatory.model_fields_set
    return Observatory(**{k: getattr(desc.observatory, k) for k in given})


def parse_config(
    data: Mapping[str, Any], base_path: str | os.PathLike | None = None, source: str = ""
) -> SimulationConfig:
    """Validate a simulation description (the YAML content, see the module docstring).

    The :class:`~gammaxr.simulate.specs.SimulationConfig` it describes, resolved and
    checked; every problem found is reported at once.

    Parameters
    ----------
    data : mapping
        The description (schema :class:`~gammaxr.simulate.schema.SimulationDescription`).
    base_path, source : str or os.PathLike, optional
        Directory against which relative file names are resolved (default: the working
        directory), and the name of the description (file name) for error messages.

    Returns
    -------
    SimulationConfig

    Raises
    ------
    SimulationConfigError
        Listing every problem, each with its entry: unknown keys (with a suggestion), unknown
        model types, non-positive livetimes, pointings without an instrument (IRF), missing IRF
        files, duplicate obs_ids, invalid ranges ...
    """
    if not data:
        raise SimulationConfigError(
            f"{source + ': ' if source else ''}empty simulation description"
        )
    base = None if base_path is None else Path(base_path)
    desc = validate_description(SimulationDescription, data, source, SimulationConfigError)
    problems: list[str] = []
    instruments = _instruments(desc, base, problems)
    models = _models(desc.models, base, problems)
    observations = _observations(desc, problems)
    raise_problems(problems, source, SimulationConfigError)
    return SimulationConfig(
        observations=tuple(observations),
        instruments=instruments,
        models=models,
        seed=desc.seed,
        observatory=_observatory(desc),
        source=source,
        energy_true=desc.energy_true,
        energy=desc.energy,
    )


def read_config(path: str | os.PathLike) -> SimulationConfig:
    """Read and validate a YAML simulation description (see :func:`parse_config`).

    Raises
    ------
    SimulationConfigError
        The file is missing, is not YAML, or the description is invalid.
    """
    data, path = read_yaml_mapping(path, SimulationConfigError, "simulation description not found")
    return parse_config(data, base_path=path.parent, source=str(path))


def simulation_json_schema() -> str:
    """The JSON schema of the simulation description (for editors' YAML completion)."""
    return description_json_schema(SimulationDescription)
