"""The schema of the simulation description: pydantic :class:`Section` models.

:class:`SimulationDescription` is the top level; :func:`gammaxr.simulate.config.parse_config`
validates a description with it, expands the wobble blocks and builds the
:class:`~gammaxr.simulate.specs.SimulationConfig`. The toy instrument's keys are the
:class:`~gammaxr.simulate.instrument.ToyInstrument` parameters (generated from it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BeforeValidator,
    Field,
    StrictInt,
    create_model,
    field_validator,
    model_validator,
)

from gammaxr.io.config_schema import Section, unit_float
from gammaxr.models.sphere import transform_lonlat
from gammaxr.simulate.instrument import ToyInstrument

__all__ = [
    "Defaults",
    "Instrument",
    "ObservationEntry",
    "Observatory",
    "Pointing",
    "Schedule",
    "SimulationDescription",
    "Target",
    "Wobble",
]

Deg = unit_float("deg")
Seconds = unit_float("s")
Number = unit_float("")

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


class _Position(Section):
    ra: Deg | None = None
    dec: Deg | None = None
    lon: Deg | None = None
    lat: Deg | None = None
    frame: Literal["icrs", "galactic"] = "icrs"

    def _check(self, required: bool) -> None:
        keys = ("ra", "dec") if self.ra is not None or self.dec is not None else ("lon", "lat")
        if keys == ("ra", "dec") and self.frame != "icrs":
            raise ValueError("ra/dec are icrs; give lon/lat with frame galactic")
        missing = [k for k in keys if getattr(self, k) is None]
        if missing and (required or len(missing) == 1):
            raise ValueError(f"missing {' and '.join(missing)}")
        lat = getattr(self, keys[1])
        if lat is not None and not -90 <= lat <= 90:
            raise ValueError(f"latitude must be in [-90, 90] deg, got {lat}")

    def icrs(self) -> tuple[float, float] | None:
        """(ra, dec) in deg icrs, or None without a position."""
        lon = self.ra if self.ra is not None else self.lon
        lat = self.dec if self.dec is not None else self.lat
        if lon is None or lat is None:
            return None
        if self.frame != "icrs":
            (lon,), (lat,) = transform_lonlat(np.array([lon]), np.array([lat]), self.frame, "icrs")
        return float(np.mod(lon, 360.0)), float(lat)


def _pair_to_radec(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return {"ra": value[0], "dec": value[1]}
    return value


class Pointing(_Position):
    """A sky position: ``{ra, dec}``, ``{lon, lat, frame}`` or ``[ra, dec]`` (deg)."""

    @model_validator(mode="after")
    def _complete(self) -> Pointing:
        self._check(required=True)
        return self


PointingField = Annotated[Pointing, BeforeValidator(_pair_to_radec)]


class Target(_Position):
    """The target: a name, and optionally its position."""

    name: str = ""

    @model_validator(mode="after")
    def _complete(self) -> Target:
        self._check(required=False)
        return self


class Defaults(Section):
    """Run settings shared by the observations (each may override them)."""

    livetime: Seconds | None = None
    deadc: Number | None = None
    instrument: str | None = None
    start: str | float | None = None
    zenith: Deg | None = None
    azimuth: Deg | None = None
    target: str | Target | None = None
    background_norm: Number | None = None


def _wobble_offset(value: float) -> float:
    if not 0 <= value < 10:
        raise ValueError(f"must be in [0, 10) deg, got {value}")
    return value


class Wobble(Section):
    """Runs at ``offset`` (deg) from ``center``, one per position angle (deg)."""

    center: PointingField
    offset: Deg = 0.5
    angles: list[Deg] = Field(default_factory=lambda: [0.0, 90.0, 180.0, 270.0])
    first_obs_id: StrictInt | None = None

    @field_validator("offset")
    @classmethod
    def _offset_range(cls, value: float) -> float:
        return _wobble_offset(value)

    @field_validator("angles")
    @classmethod
    def _some_angles(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("expected a list of position angles (deg)")
        return value


class ObservationEntry(Defaults):
    """One run (``obs_id``, ``pointing``) or a ``wobble`` block of runs, plus run settings."""

    obs_id: StrictInt | None = None
    pointing: PointingField | None = None
    wobble: Wobble | None = None

    @model_validator(mode="after")
    def _run_or_wobble(self) -> ObservationEntry:
        if self.wobble is not None:
            for key in ("obs_id", "pointing"):
                if getattr(self, key) is not None:
                    raise ValueError(
                        f"unknown key {key!r} beside 'wobble' (the wobble block sets obs_ids "
                        "and pointings)"
                    )
        return self


class Schedule(Section):
    """UTC start of the first run (ISO text, or MET seconds) and the gap between runs (s)."""

    start: str | float = "2024-01-01T20:00:00"
    gap: unit_float("s", minimum=0, strict=False) = 300.0


class Observatory(Section):
    """Site and telescope keywords of the headers."""

    telescope: str | None = None
    instrument: str | None = None
    geolon: Deg | None = None
    geolat: Deg | None = None
    altitude: unit_float("m") | None = None
    n_tels: StrictInt | None = None

    @field_validator("n_tels")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("expected a positive integer")
        return value


def _toy_field(field: dataclasses.Field) -> tuple[Any, Any]:
    if field.name in _TOY_UNITS or field.type == "float":
        return unit_float(_TOY_UNITS.get(field.name, "")) | None, None
    if field.type == "int":
        return StrictInt | None, None
    return str | None, None


_InstrumentBase = create_model(
    "_InstrumentBase",
    __base__=Section,
    **{f.name: _toy_field(f) for f in dataclasses.fields(ToyInstrument) if f.name != "name"},
)


class Instrument(_InstrumentBase):  # type: ignore[misc, valid-type]
    """An IRF set: ``toy`` (any ToyInstrument parameter), ``gadf`` (``file``) or
    ``datastore`` (``path`` and ``obs_id``)."""

    type: Literal["toy", "gadf", "datastore"] = "toy"
    file: str | None = None
    path: str | None = None
    obs_id: StrictInt | None = None

    @model_validator(mode="after")
    def _keys_of_type(self) -> Instrument:
        own = {"toy": set(), "gadf": {"file"}, "datastore": {"path", "obs_id"}}[self.type]
        toy = set(self.toy_parameters())
        wrong = sorted(
            (self.model_fields_set - {"type"}) - own - (toy if self.type == "toy" else set())
        )
        if wrong:
            raise ValueError(f"key(s) {wrong} do not apply to instrument type {self.type!r}")
        return self

    def toy_parameters(self) -> dict[str, Any]:
        """The toy parameters given (in the toy's units)."""
        names = set(_InstrumentBase.model_fields)
        return {k: getattr(self, k) for k in self.model_fields_set if k in names}


def _seed(value: Any) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _energy_range(value: Any) -> Any:
    if value is not None and (not isinstance(value, (list, tuple)) or len(value) != 2):
        raise ValueError(f"expected [min, max] in TeV, got {value!r}")
    return value


EnergyRange = Annotated[tuple[unit_float("TeV"), unit_float("TeV")], BeforeValidator(_energy_range)]


class SimulationDescription(Section):
    """A whole simulation description (``examples/simulate_default.yaml``)."""

    name: str | None = None
    description: str | None = None
    seed: Annotated[int | None, BeforeValidator(_seed)] = None
    instruments: dict[str, Instrument] | None = None
    models: str | dict[str, Any] | None = None
    observations: list[ObservationEntry]
    defaults: Defaults = Defaults()
    schedule: Schedule = Schedule()
    energy_true: EnergyRange | None = None
    energy: EnergyRange | None = None
    observatory: Observatory = Observatory()

    @field_validator("defaults", "schedule", "observatory", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("observations", mode="before")
    @classmethod
    def _non_empty(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise ValueError("expected a non-empty list of observations")
        return value

    @field_validator("energy_true", "energy")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 < value[0] < value[1]:
            raise ValueError(f"needs 0 < min < max, got [{value[0]}, {value[1]}] TeV")
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _models_shape(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (str, Mapping)):
            raise ValueError(f"expected a model file name or a mapping, got {value!r}")
        return value
