"""Priors on model parameters, added to the fit statistic (Gammapy's ``GaussianPrior`` and
``UniformPrior``).

A prior contributes ``weight * (-2 log p(value))`` to the total statistic, with ``p`` its
probability density in the parameter's unit (Gammapy's definition, constant terms included,
so that ``total_stat`` values agree):

- :class:`GaussianPrior`: ``((value - mu) / sigma)**2 + log(2 pi sigma**2)``;
- :class:`UniformPrior`: ``2 log(max - min)`` inside ``[min, max]``, ``+inf`` outside; the
  parameter's fit bounds are also narrowed to ``[min, max]`` (as Gammapy does), so a fit never
  leaves the support.

Priors are immutable and attached to a :class:`~gammaxr.models.Parameter`
(``model.with_parameter("index", prior=GaussianPrior(mu=2.3, sigma=0.1))``). In model YAML a
prior is the parameter's ``prior`` entry::

    -   name: index
        value: 2.0
        prior:
            type: GaussianPrior
            parameters:
            -   {name: mu, value: 2.3, unit: ''}
            -   {name: sigma, value: 0.1, unit: ''}
            weight: 1

Prior parameter values are in the unit of the parameter as written in the file (``unit: ''``);
a prior parameter with its own unit is converted to that unit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import astropy.units as u

__all__ = [
    "PRIOR_TYPES",
    "GaussianPrior",
    "Prior",
    "PriorFormatError",
    "UniformPrior",
    "prior_from_dict",
]


class PriorFormatError(ValueError):
    """A prior entry of a model file or dictionary is malformed."""


class Prior:
    """Base of the priors (frozen dataclasses whose last field is ``weight``): the YAML
    layout and unit scaling; subclasses define ``stat``."""

    tag: ClassVar[str] = ""
    weight: float

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, float(getattr(self, f.name)))
        if not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f"{self.tag}: weight must be finite and >= 0, got {self.weight}")
        needs = self._needs()
        if needs:
            raise ValueError(f"{self.tag} needs {needs}, got {self}")

    def _needs(self) -> str:
        """What the prior's own values lack to be valid ("" when they are valid)."""
        return ""

    @property
    def _shape(self) -> tuple[str, ...]:
        """Names of the prior's own parameters (all fields but ``weight``)."""
        return tuple(f.name for f in fields(self) if f.name != "weight")

    def stat(self, value: float) -> float:  # pragma: no cover - abstract
        """``weight * (-2 log p(value))``."""
        raise NotImplementedError

    def scaled(self, factor: float) -> Prior:
        """The same prior for the parameter expressed in a unit ``factor`` times smaller
        (values multiplied by ``factor > 0``; the density's normalisation follows)."""
        return replace(self, **{name: getattr(self, name) * factor for name in self._shape})

    def bounds(self) -> tuple[float, float]:
        """Range outside which the prior is zero (``(-inf, inf)`` if none)."""
        return -math.inf, math.inf

    def to_dict(self) -> dict[str, Any]:
        """The YAML entry (module docstring)."""
        params = [{"name": n, "value": getattr(self, n), "unit": ""} for n in self._shape]
        weight = int(self.weight) if self.weight.is_integer() else self.weight
        return {"type": self.tag, "parameters": params, "weight": weight}


@dataclass(frozen=True)
class GaussianPrior(Prior):
    """Normal prior: ``weight * (((value - mu) / sigma)**2 + log(2 pi sigma**2))``.

    Parameters
    ----------
    mu, sigma : float
        Mean and standard deviation, in the parameter's unit (``sigma > 0``).
    weight : float
        Factor on the prior's statistic.
    """

    tag: ClassVar[str] = "GaussianPrior"
    mu: float = 0.0
    sigma: float = 1.0
    weight: float = 1.0

    def _needs(self) -> str:
        ok = math.isfinite(self.sigma) and self.sigma > 0 and math.isfinite(self.mu)
        return "" if ok else "finite mu and sigma > 0"

    def stat(self, value: float) -> float:
        """``weight * (-2 log N(value; mu, sigma))``."""
        z = (value - self.mu) / self.sigma
        return self.weight * (z * z + math.log(2.0 * math.pi * self.sigma**2))


@dataclass(frozen=True)
class UniformPrior(Prior):
    """Flat prior on ``[min, max]``: ``weight * 2 log(max - min)`` inside, ``+inf`` outside.

    Parameters
    ----------
    min, max : float
        Support, in the parameter's unit (finite, ``min < max``).
    weight : float
        As in :class:`GaussianPrior`.
    """

    tag: ClassVar[str] = "UniformPrior"
    min: float = 0.0
    max: float = 1.0
    weight: float = 1.0

    def _needs(self) -> str:
        ok = math.isfinite(self.min) and math.isfinite(self.max) and self.min < self.max
        return "" if ok else "finite min < max"

    def stat(self, value: float) -> float:
        """``weight * (-2 log(1 / (max - min)))`` inside the support, ``+inf`` outside."""
        if not self.min <= value <= self.max:
            return math.inf
        return self.weight * 2.0 * math.log(self.max - self.min)

    def bounds(self) -> tuple[float, float]:
        """``(min, max)``."""
        return self.min, self.max


#: Prior classes by YAML type name.
PRIOR_TYPES: dict[str, type[Prior]] = {cls.tag: cls for cls in (GaussianPrior, UniformPrior)}


def prior_from_dict(data: Any, unit: str = "", where: str = "prior") -> Prior:
    """Read a prior entry (module docstring).

    Parameters
    ----------
    data : dict
        ``{"type": ..., "parameters": [{"name", "value", "unit"}, ...], "weight": ...}``.
    unit : str
        Unit of the parameter as written in the file (prior values without a unit are in it).
    where : str
        Location for error messages.

    Returns
    -------
    Prior

    Raises
    ------
    PriorFormatError
        If the type is unknown, a prior parameter is missing or unknown, or a unit does not
        convert.
    """
    if not isinstance(data, Mapping) or data.get("type") not in PRIOR_TYPES:
        kind = data.get("type") if isinstance(data, Mapping) else data
        raise PriorFormatError(
            f"{where}: unknown prior type {kind!r}; supported are {sorted(PRIOR_TYPES)}"
        )
    cls = PRIOR_TYPES[data["type"]]
    names = [f.name for f in fields(cls) if f.name != "weight"]
    values: dict[str, float] = {}
    for entry in data.get("parameters") or []:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if name not in names or "value" not in entry:
            raise PriorFormatError(
                f"{where}: prior {cls.tag} has parameters {names}, got {entry!r}"
            )
        try:
            q = u.Quantity(float(entry["value"]), entry.get("unit") or unit or "")
            values[name] = float(q.to_value(unit or ""))
        except (TypeError, ValueError, u.UnitsError) as exc:
            raise PriorFormatError(f"{where}: {cls.tag} parameter {name!r}: {exc}") from exc
    missing = set(names) - set(values)
    if missing:
        raise PriorFormatError(f"{where}: prior {cls.tag} needs parameters {sorted(missing)}")
    try:
        return cls(weight=float(data.get("weight", 1.0)), **values)
    except ValueError as exc:
        raise PriorFormatError(f"{where}: {exc}") from exc
