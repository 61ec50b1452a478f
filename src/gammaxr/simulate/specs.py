"""Validated descriptions of a simulation: instruments, runs, site, and the whole simulation.

Plain frozen dataclasses that check their values on construction (a non-positive livetime, a
declination beyond the pole, a run whose instrument is not defined ... raise at once with a
message naming the run). :mod:`gammaxr.simulate.config` fills them from YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.time import Time

from gammaxr.io.gadf import time_to_met
from gammaxr.io.yaml_files import suggest
from gammaxr.models import Models, SkyModel
from gammaxr.simulate.instrument import IRFSet, ToyInstrument, irfs_from_observation, read_irfs
from gammaxr.units import to_unit_or_none

__all__ = [
    "DEFAULT_START",
    "INSTRUMENT_TYPES",
    "TIME_REFERENCE",
    "InstrumentSpec",
    "ObservationSpec",
    "Observatory",
    "SimulationConfig",
    "SimulationConfigError",
    "met",
]

#: Time reference of simulated event lists (the H.E.S.S./CTA GADF convention).
TIME_REFERENCE = {
    "MJDREFI": 51910,
    "MJDREFF": 7.428703703703703e-4,
    "TIMESYS": "TT",
    "TIMEUNIT": "s",
    "TIMEREF": "LOCAL",
}
#: Start of the first run when the description gives none (UTC).
DEFAULT_START = "2024-01-01T20:00:00"
INSTRUMENT_TYPES = ("toy", "gadf", "datastore")


class SimulationConfigError(ValueError):
    """A simulation description is invalid; the message names the file and the entry."""


def met(start: str | Time) -> float:
    """Mission elapsed time (s, :data:`TIME_REFERENCE`) of a UTC ISO time or Time."""
    time = start if isinstance(start, Time) else Time(start, scale="utc")
    return float(time_to_met(time, TIME_REFERENCE))


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Observatory:
    """Where the toy array stands (header keywords ``TELESCOP``, ``GEOLON`` ...).

    Parameters
    ----------
    telescope, instrument : str
        ``TELESCOP`` and ``INSTRUME`` keywords.
    geolon, geolat : float
        Site longitude and latitude, deg.
    altitude : float
        Site altitude, m.
    n_tels : int
        Number of telescopes (``N_TELS``).
    """

    telescope: str = "TOY"
    instrument: str = "gammaxr toy array"
    geolon: float = 16.5002
    geolat: float = -23.2718
    altitude: float = 1835.0
    n_tels: int = 4


@dataclass(frozen=True)
class InstrumentSpec:
    """A named IRF set: the toy instrument, a GADF IRF file, or a run of a data store.

    Parameters
    ----------
    name : str
        Name the observations refer to.
    kind : {"toy", "gadf", "datastore"}
        Where the IRFs come from.
    parameters : tuple of (str, value) pairs
        :class:`~gammaxr.simulate.instrument.ToyInstrument` parameters (``kind="toy"``).
    path : str, optional
        IRF file (``gadf``) or data store directory (``datastore``).
    obs_id : int, optional
        Run whose IRFs are used (``datastore``).
    """

    name: str
    kind: str = "toy"
    parameters: tuple[tuple[str, Any], ...] = ()
    path: str | None = None
    obs_id: int | None = None

    def __post_init__(self) -> None:
        where = f"instrument {self.name!r}"
        if self.kind not in INSTRUMENT_TYPES:
            raise ValueError(
                f"{where}: unknown type {self.kind!r}; use one of {', '.join(INSTRUMENT_TYPES)}"
            )
        if self.kind == "toy":
            self.toy()  # validates the parameters
        elif self.parameters:
            raise ValueError(f"{where}: parameters are only for type 'toy'")
        if self.kind in ("gadf", "datastore") and not self.path:
            key = "file" if self.kind == "gadf" else "path"
            raise ValueError(f"{where}: type {self.kind!r} needs '{key}'")
        if self.kind == "datastore" and self.obs_id is None:
            raise ValueError(f"{where}: type 'datastore' needs 'obs_id' (the run whose IRFs)")

    def toy(self) -> ToyInstrument:
        """The :class:`ToyInstrument` of a ``toy`` spec."""
        params = dict(self.parameters)
        unknown = sorted(set(params) - set(ToyInstrument.parameter_names()))
        if unknown:
            raise ValueError(
                f"instrument {self.name!r}: unknown toy parameter(s) {unknown}"
                f"{suggest(unknown[0], ToyInstrument.parameter_names())}"
            )
        try:
            return ToyInstrument(**{"name": self.name, **params})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"instrument {self.name!r}: {exc}") from exc

    def load(self) -> IRFSet:
        """Build or read the IRFs.

        Returns
        -------
        IRFSet
            Named after this spec.
        """
        if self.kind == "toy":
            return self.toy().irfs()
        if self.kind == "gadf":
            return read_irfs(self.path, name=self.name)
        from gammaxr.data import open_datastore

        store = open_datastore(self.path)
        return irfs_from_observation(store.observation(int(self.obs_id)), name=self.name)


#: Documented unit of each ObservationSpec field that takes a quantity.
_OBSERVATION_UNITS = {
    "ra": "deg",
    "dec": "deg",
    "livetime": "s",
    "tstart": "s",
    "zenith": "deg",
    "azimuth": "deg",
    "target_ra": "deg",
    "target_dec": "deg",
}


@dataclass(frozen=True)
class ObservationSpec:
    """One run to simulate.

    Angles and times also take astropy quantities or strings (``"30 min"``), converted to
    the units below; ``tstart`` also takes an astropy Time.

    Parameters
    ----------
    obs_id : int
        Observation identifier (non-negative).
    ra, dec : float
        Pointing, deg (icrs).
    livetime : float
        Live time, s (> 0).
    instrument : str
        Name of the IRF set (:class:`InstrumentSpec`).
    deadc : float
        Dead-time correction ``livetime / ontime``, in (0, 1].
    tstart : float
        Run start, s of mission elapsed time (:data:`TIME_REFERENCE`).
    zenith, azimuth : float
        Nominal pointing zenith and azimuth written to the headers, deg (the toy IRFs do
        not depend on them).
    target_name : str
        ``OBJECT``/``TARGET_NAME``.
    target_ra, target_dec : float, optional
        Target position (``RA_OBJ``, ``DEC_OBJ``), deg.
    background_norm : float
        Factor on the background IRF rate (0: no background events).
    """

    obs_id: int
    ra: float
    dec: float
    livetime: float
    instrument: str
    deadc: float = 0.95
    tstart: float = field(default_factory=lambda: met(DEFAULT_START))
    zenith: float = 20.0
    azimuth: float = 0.0
    target_name: str = ""
    target_ra: float | None = None
    target_dec: float | None = None
    background_norm: float = 1.0

    def __post_init__(self) -> None:
        where = f"obs_id {self.obs_id}"
        if isinstance(self.tstart, Time):
            object.__setattr__(self, "tstart", met(self.tstart))
        for name, unit in _OBSERVATION_UNITS.items():
            value = to_unit_or_none(getattr(self, name), unit, f"{where}: {name}")
            object.__setattr__(self, name, value if value is None else float(value))
        if isinstance(self.obs_id, bool) or int(self.obs_id) != self.obs_id or self.obs_id < 0:
            raise ValueError(f"obs_id must be a non-negative integer, got {self.obs_id!r}")
        checks = [
            ("livetime", self.livetime > 0, "must be positive", "s"),
            ("deadc", 0 < self.deadc <= 1, "must be in (0, 1]", ""),
            ("dec", -90 <= self.dec <= 90, "must be in [-90, 90]", "deg"),
            ("zenith", 0 <= self.zenith <= 90, "must be in [0, 90]", "deg"),
            ("background_norm", self.background_norm >= 0, "must be >= 0", ""),
        ]
        for name in ("ra", "dec", "livetime", "deadc", "tstart", "zenith", "azimuth"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{where}: {name} must be finite, got {getattr(self, name)!r}")
        for name, ok, what, unit in checks:
            if not ok:
                raise ValueError(f"{where}: {name} {what}, got {getattr(self, name)!r} {unit}")
        if not self.instrument:
            raise ValueError(f"{where}: pointing without IRF: no instrument given")

    @property
    def ontime(self) -> float:
        """On time (GTI duration including dead time), s."""
        return self.livetime / self.deadc

    @property
    def tstop(self) -> float:
        """Run stop, s MET."""
        return self.tstart + self.ontime

    @property
    def gti(self) -> tuple[tuple[float, float]]:
        """Good time intervals ``((tstart, tstop),)``, s MET."""
        return ((self.tstart, self.tstop),)


@dataclass(frozen=True)
class SimulationConfig:
    """A validated simulation description.

    Parameters
    ----------
    observations : sequence of ObservationSpec
        Runs (unique obs_ids).
    instruments : mapping of str to InstrumentSpec
        IRF sets by name; every run's instrument must be one of them.
    models : Models
        Sky models (each a :class:`~gammaxr.models.SkyModel` with a spatial model); may be
        empty (background only).
    energy_true : (float, float), optional
        True-energy range of the source photons, TeV (default the aeff table's range).
    energy : (float, float), optional
        Reco-energy range of the background events, TeV (default the bkg table's range).
    seed : int, optional
        Master seed (per-run generators are derived from it and the obs_id).
    observatory : Observatory
        Site and telescope keywords.
    source : str
        Where the description came from (for messages; not compared).
    """

    observations: tuple[ObservationSpec, ...]
    instruments: Mapping[str, InstrumentSpec]
    models: Models = field(default_factory=Models)
    energy_true: tuple[float, float] | None = None
    energy: tuple[float, float] | None = None
    seed: int | None = None
    observatory: Observatory = field(default_factory=Observatory)
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        prefix = f"{self.source}: " if self.source else ""
        object.__setattr__(self, "observations", tuple(self.observations))
        object.__setattr__(self, "instruments", dict(self.instruments))
        if not self.observations:
            raise SimulationConfigError(f"{prefix}no observations to simulate")
        ids = [o.obs_id for o in self.observations]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise SimulationConfigError(f"{prefix}obs_id(s) {dup} appear more than once")
        for obs in self.observations:
            if obs.instrument not in self.instruments:
                defined = ", ".join(sorted(self.instruments)) or "none"
                raise SimulationConfigError(
                    f"{prefix}obs_id {obs.obs_id}: pointing without IRF: instrument "
                    f"{obs.instrument!r} is not defined (instruments defined: {defined})"
                )
        for model in self.models:
            if not isinstance(model, SkyModel):
                raise SimulationConfigError(
                    f"{prefix}model {model.name!r}: only SkyModel components can be simulated "
                    f"(got {type(model).__name__}; scale the background with background_norm)"
                )
            if model.spatial is None:
                raise SimulationConfigError(
                    f"{prefix}model {model.name!r} has no spatial model: cannot place its photons"
                )
        for name in ("energy_true", "energy"):
            rng = getattr(self, name)
            if rng is not None:
                lo, hi = (float(x) for x in rng)
                if not 0 < lo < hi:
                    raise SimulationConfigError(f"{prefix}{name} needs 0 < min < max, got {rng}")
                object.__setattr__(self, name, (lo, hi))
        if self.seed is not None and (isinstance(self.seed, bool) or int(self.seed) < 0):
            raise SimulationConfigError(f"{prefix}seed must be a non-negative integer")

    @property
    def obs_ids(self) -> list[int]:
        """obs_ids of the runs, in order."""
        return [o.obs_id for o in self.observations]

    def replace(self, **changes: Any) -> SimulationConfig:
        """A copy with some fields changed (validated again)."""
        from dataclasses import replace

        return replace(self, **changes)
