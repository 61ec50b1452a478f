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
reported as a :class:`SimulationConfigError` naming the file and the entry at fault.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u

from gammaxr.io.yaml_files import read_yaml_mapping, suggest
from gammaxr.models import ModelFormatError, Models, models_from_dict, read_models
from gammaxr.models.sphere import offset_by, transform_lonlat
from gammaxr.simulate.instrument import ToyInstrument
from gammaxr.simulate.specs import (
    DEFAULT_START,
    INSTRUMENT_TYPES,
    TIME_REFERENCE,
    InstrumentSpec,
    ObservationSpec,
    Observatory,
    SimulationConfig,
    SimulationConfigError,
    met,
)

__all__ = [
    "DEFAULT_START",
    "TIME_REFERENCE",
    "InstrumentSpec",
    "ObservationSpec",
    "Observatory",
    "SimulationConfig",
    "SimulationConfigError",
    "parse_config",
    "read_config",
]

_DEFAULT_GAP = 300.0  # s between runs


# --------------------------------------------------------------------------- parsing


class _Parser:
    """Parse helpers that prefix every error with the file and the entry."""

    def __init__(self, source: str, base_path: Path | None) -> None:
        self.prefix = f"{source}: " if source else ""
        self.base = base_path

    def error(self, where: str, message: str) -> SimulationConfigError:
        return SimulationConfigError(f"{self.prefix}{where}: {message}")

    def mapping(self, value: Any, where: str, allowed: Sequence[str]) -> dict:
        if not isinstance(value, Mapping):
            raise self.error(where, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.error(
                    where,
                    f"unknown key {key!r}{suggest(key, allowed)}; allowed: {', '.join(allowed)}",
                )
        return dict(value)

    def quantity(self, value: Any, unit: str, where: str) -> float:
        if isinstance(value, bool):
            raise self.error(where, f"expected a number (in {unit or 'no unit'}), got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                q = u.Quantity(value)
                return float(q.to_value(unit) if q.unit != u.dimensionless_unscaled else q.value)
            except (TypeError, ValueError, u.UnitsError) as exc:
                raise self.error(
                    where, f"cannot read {value!r} as a quantity in {unit or 'no unit'}"
                ) from exc
        raise self.error(where, f"expected a number (in {unit or 'no unit'}), got {value!r}")

    def range(self, value: Any, where: str) -> tuple[float, float]:
        if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
            raise self.error(where, f"expected [min, max] in TeV, got {value!r}")
        lo, hi = (self.quantity(v, "TeV", where) for v in value)
        if not 0 < lo < hi:
            raise self.error(where, f"needs 0 < min < max, got [{lo}, {hi}] TeV")
        return lo, hi

    def path(self, value: Any, where: str) -> str:
        if not isinstance(value, (str, os.PathLike)):
            raise self.error(where, f"expected a path, got {value!r}")
        path = Path(value).expanduser()
        if not path.is_absolute() and self.base is not None:
            path = self.base / path
        return str(path)

    def pointing(self, value: Any, where: str) -> tuple[float, float]:
        """(ra, dec) in deg icrs from {ra, dec}, {lon, lat, frame} or [ra, dec]."""
        if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
            value = {"ra": value[0], "dec": value[1]}
        data = self.mapping(value, where, ("ra", "dec", "lon", "lat", "frame"))
        frame = str(data.get("frame", "icrs")).lower()
        if frame not in ("icrs", "galactic"):
            raise self.error(where, f"frame must be icrs or galactic, got {frame!r}")
        keys = ("ra", "dec") if "ra" in data or "dec" in data else ("lon", "lat")
        if keys == ("ra", "dec") and frame != "icrs":
            raise self.error(where, "ra/dec are icrs; give lon/lat with frame galactic")
        missing = [k for k in keys if k not in data]
        if missing:
            raise self.error(where, f"missing {' and '.join(missing)}")
        lon = self.quantity(data[keys[0]], "deg", f"{where}.{keys[0]}")
        lat = self.quantity(data[keys[1]], "deg", f"{where}.{keys[1]}")
        if not -90 <= lat <= 90:
            raise self.error(where, f"latitude must be in [-90, 90] deg, got {lat}")
        if frame != "icrs":
            (lon,), (lat,) = transform_lonlat(np.array([lon]), np.array([lat]), frame, "icrs")
        return float(np.mod(lon, 360.0)), float(lat)

    def start(self, value: Any, where: str) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)  # MET seconds
        try:
            return met(str(value))
        except ValueError as exc:
            raise self.error(where, f"cannot read {value!r} as a UTC time (ISO format)") from exc


_TOP_KEYS = (
    "name", "description", "seed", "instruments", "models", "observations", "defaults",
    "schedule", "energy_true", "energy", "observatory",
)  # fmt: skip
_RUN_KEYS = (
    "obs_id", "pointing", "livetime", "deadc", "instrument", "start", "zenith", "azimuth",
    "target", "background_norm",
)  # fmt: skip
_WOBBLE_KEYS = ("center", "offset", "angles", "first_obs_id")


# units of the ToyInstrument parameters given as strings with units ("0.1 TeV", "2 deg")
_TOY_UNITS = {
    "aeff_max": "m2",
    "bkg_rate": "s-1 MeV-1 sr-1",
    **dict.fromkeys(("energy_threshold", "energy_min", "energy_max"), "TeV"),
    **dict.fromkeys(
        ("aeff_offset_sigma", "psf_sigma", "psf_sigma_low", "bkg_offset_sigma", "offset_max",
         "offset_bin", "fov_bin", "rad_max", "rad_bin"),
        "deg",
    ),
}  # fmt: skip
_TOY_TEXT = ("name", "psf_format", "bkg_format")


def _toy_value(p: _Parser, key: str, value: Any, where: str) -> Any:
    """A toy parameter as a number in its unit (YAML reads ``1e5`` as text)."""
    if key in _TOY_TEXT or key not in ToyInstrument.parameter_names():
        return value
    if key == "bins_per_decade":
        if not _is_int(value):
            raise p.error(where, f"expected an integer, got {value!r}")
        return int(value)
    return p.quantity(value, _TOY_UNITS.get(key, ""), where)


def _instruments(p: _Parser, data: Any) -> dict[str, InstrumentSpec]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise p.error("instruments", "expected a mapping of name -> instrument")
    out = {}
    for name, spec in data.items():
        where = f"instruments.{name}"
        if not isinstance(spec, Mapping):
            raise p.error(where, f"expected a mapping with a 'type', got {spec!r}")
        spec = dict(spec)
        kind = spec.pop("type", "toy")
        try:
            if kind == "toy":
                params = {k: _toy_value(p, k, v, f"{where}.{k}") for k, v in spec.items()}
                out[str(name)] = InstrumentSpec(str(name), "toy", tuple(sorted(params.items())))
            elif kind == "gadf":
                p.mapping(spec, where, ("file",))
                path = p.path(spec.get("file"), f"{where}.file")
                if not Path(path).is_file():
                    raise p.error(where, f"IRF file {path} not found")
                out[str(name)] = InstrumentSpec(str(name), "gadf", path=path)
            elif kind == "datastore":
                p.mapping(spec, where, ("path", "obs_id"))
                path = p.path(spec.get("path"), f"{where}.path")
                if not Path(path).exists():
                    raise p.error(where, f"data store {path} not found")
                obs_id = spec.get("obs_id")
                out[str(name)] = InstrumentSpec(
                    str(name), "datastore", path=path, obs_id=None if obs_id is None else obs_id
                )
            else:
                raise p.error(
                    where,
                    f"unknown instrument type {kind!r}; use one of {', '.join(INSTRUMENT_TYPES)}",
                )
        except ValueError as exc:
            if isinstance(exc, SimulationConfigError):
                raise
            raise p.error(where, str(exc)) from exc
    return out


def _models(p: _Parser, data: Any) -> Models:
    if data is None:
        return Models()
    try:
        if isinstance(data, (str, os.PathLike)):
            path = Path(p.path(data, "models"))
            if not path.is_file():
                raise p.error("models", f"model file {path} not found")
            return read_models(path)
        return models_from_dict(data, base_path=p.base, source="models")
    except ModelFormatError as exc:
        raise SimulationConfigError(f"{p.prefix}{exc}") from exc
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SimulationConfigError):
            raise
        raise p.error("models", str(exc)) from exc


def _target(p: _Parser, value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"target_name": value}
    data = p.mapping(value, where, ("name", "ra", "dec", "lon", "lat", "frame"))
    out: dict[str, Any] = {"target_name": str(data.pop("name", ""))}
    if data:
        out["target_ra"], out["target_dec"] = p.pointing(data, where)
    return out


def _expand(p: _Parser, entries: Any, defaults: dict) -> list[tuple[str, dict]]:
    """Observation entries (wobble blocks expanded) merged with the defaults."""
    if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
        raise p.error("observations", "expected a non-empty list of observations")
    runs = []
    next_id = 1
    for k, entry in enumerate(entries):
        where = f"observations[{k}]"
        if not isinstance(entry, Mapping):
            raise p.error(where, f"expected a mapping, got {entry!r}")
        if "wobble" not in entry:
            data = {**defaults, **p.mapping(entry, where, _RUN_KEYS)}
            if "obs_id" not in data:
                data["obs_id"] = next_id
            runs.append((where, data))
            next_id = int(data["obs_id"]) + 1 if _is_int(data["obs_id"]) else next_id
            continue
        allowed = ("wobble", *(key for key in _RUN_KEYS if key not in ("obs_id", "pointing")))
        entry = p.mapping(entry, where, allowed)
        wobble = p.mapping(entry.pop("wobble"), f"{where}.wobble", _WOBBLE_KEYS)
        if "center" not in wobble:
            raise p.error(f"{where}.wobble", "missing 'center' (the target position)")
        ra0, dec0 = p.pointing(wobble["center"], f"{where}.wobble.center")
        offset = p.quantity(wobble.get("offset", 0.5), "deg", f"{where}.wobble.offset")
        if not 0 <= offset < 10:
            raise p.error(f"{where}.wobble.offset", f"must be in [0, 10) deg, got {offset}")
        angles = wobble.get("angles", [0, 90, 180, 270])
        if not isinstance(angles, Sequence) or isinstance(angles, str) or not angles:
            raise p.error(f"{where}.wobble.angles", "expected a list of position angles (deg)")
        first = wobble.get("first_obs_id", next_id)
        if not _is_int(first):
            raise p.error(f"{where}.wobble.first_obs_id", f"expected an integer, got {first!r}")
        data = {**defaults, **entry}
        target = data.get("target")
        if target is None or isinstance(target, str):
            data["target"] = {"name": target or "", "ra": ra0, "dec": dec0}
        for j, angle in enumerate(angles):
            pa = p.quantity(angle, "deg", f"{where}.wobble.angles[{j}]")
            ra, dec = offset_by(ra0, dec0, pa, offset)
            runs.append(
                (f"{where} (wobble {j})", {**data, "obs_id": int(first) + j, "pointing": [ra, dec]})
            )
        next_id = int(first) + len(angles)
    return runs


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _observations(p: _Parser, entries: Any, defaults: Any, schedule: Any) -> list[ObservationSpec]:
    defaults = {} if defaults is None else p.mapping(defaults, "defaults", _RUN_KEYS[2:])
    schedule = {} if schedule is None else p.mapping(schedule, "schedule", ("start", "gap"))
    t_next = p.start(schedule.get("start", DEFAULT_START), "schedule.start")
    gap = p.quantity(schedule.get("gap", _DEFAULT_GAP), "s", "schedule.gap")
    if gap < 0:
        raise p.error("schedule.gap", f"must be >= 0 s, got {gap}")
    out = []
    for where, data in _expand(p, entries, defaults):
        obs_id = data.get("obs_id")
        if not _is_int(obs_id):
            raise p.error(where, f"obs_id must be an integer, got {obs_id!r}")
        where = f"{where} (obs_id {obs_id})"
        if "pointing" not in data:
            raise p.error(where, "missing 'pointing'")
        if "livetime" not in data:
            raise p.error(where, "missing 'livetime'")
        ra, dec = p.pointing(data["pointing"], f"{where}.pointing")
        kwargs: dict[str, Any] = {"obs_id": int(obs_id), "ra": ra, "dec": dec}
        kwargs["livetime"] = p.quantity(data["livetime"], "s", f"{where}.livetime")
        for key, unit in (("deadc", ""), ("zenith", "deg"), ("azimuth", "deg")):
            if key in data:
                kwargs[key] = p.quantity(data[key], unit, f"{where}.{key}")
        if "background_norm" in data:
            kwargs["background_norm"] = p.quantity(data["background_norm"], "", where)
        kwargs.update(_target(p, data.get("target"), f"{where}.target"))
        kwargs["instrument"] = data.get("instrument")
        if "start" in data:
            t_next = p.start(data["start"], f"{where}.start")
        kwargs["tstart"] = t_next
        if kwargs["instrument"] is None:
            raise p.error(
                where,
                "pointing without IRF: no 'instrument' given (set it here or under 'defaults', "
                "and define it under 'instruments')",
            )
        kwargs["instrument"] = str(kwargs["instrument"])
        try:
            spec = ObservationSpec(**kwargs)
        except ValueError as exc:
            raise p.error(where, str(exc).removeprefix(f"obs_id {obs_id}: ")) from exc
        out.append(spec)
        t_next = spec.tstop + gap
    return out


def _observatory(p: _Parser, data: Any) -> Observatory:
    if data is None:
        return Observatory()
    names = ("telescope", "instrument", "geolon", "geolat", "altitude", "n_tels")
    data = p.mapping(data, "observatory", names)
    kwargs: dict[str, Any] = {}
    for key in ("telescope", "instrument"):
        if key in data:
            kwargs[key] = str(data[key])
    for key, unit in (("geolon", "deg"), ("geolat", "deg"), ("altitude", "m")):
        if key in data:
            kwargs[key] = p.quantity(data[key], unit, f"observatory.{key}")
    if "n_tels" in data:
        if not _is_int(data["n_tels"]) or data["n_tels"] < 1:
            raise p.error("observatory.n_tels", "expected a positive integer")
        kwargs["n_tels"] = int(data["n_tels"])
    return Observatory(**kwargs)


def parse_config(
    data: Mapping[str, Any], base_path: str | os.PathLike | None = None, source: str = ""
) -> SimulationConfig:
    """Validate a simulation description (the YAML content, see the module docstring).

    Parameters
    ----------
    data : mapping
        The description.
    base_path : str or os.PathLike, optional
        Directory against which relative file names are resolved (default: the working
        directory).
    source : str
        Name of the description (file name) for error messages.

    Returns
    -------
    SimulationConfig

    Raises
    ------
    SimulationConfigError
        Naming the entry at fault: unknown keys (with a suggestion), unknown model types,
        non-positive livetimes, pointings without an instrument (IRF), missing IRF files,
        duplicate obs_ids, invalid ranges ...
    """
    p = _Parser(source, None if base_path is None else Path(base_path))
    data = p.mapping(data, "description", _TOP_KEYS) if data is not None else None
    if not data:
        raise SimulationConfigError(f"{p.prefix}empty simulation description")
    seed = data.get("seed")
    if seed is not None and (not _is_int(seed) or seed < 0):
        raise p.error("seed", f"expected a non-negative integer, got {seed!r}")
    if "observations" not in data:
        raise p.error("description", "missing 'observations'")
    instruments = _instruments(p, data.get("instruments"))
    observations = _observations(
        p, data["observations"], data.get("defaults"), data.get("schedule")
    )
    kwargs = {
        "observations": tuple(observations),
        "instruments": instruments,
        "models": _models(p, data.get("models")),
        "seed": seed,
        "observatory": _observatory(p, data.get("observatory")),
        "source": source,
    }
    for key in ("energy_true", "energy"):
        if data.get(key) is not None:
            kwargs[key] = p.range(data[key], key)
    return SimulationConfig(**kwargs)


def read_config(path: str | os.PathLike) -> SimulationConfig:
    """Read and validate a YAML simulation description (see :func:`parse_config`).

    Raises
    ------
    SimulationConfigError
        The file is missing, is not YAML, or the description is invalid.
    """
    data, path = read_yaml_mapping(path, SimulationConfigError, "simulation description not found")
    return parse_config(data, base_path=path.parent, source=str(path))
