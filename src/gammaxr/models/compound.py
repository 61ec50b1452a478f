"""Compound spectral models: two spectral models combined by ``+``, ``-``, ``*`` or ``/``.

A :class:`CompoundSpectral` holds its two members and an operator name (Gammapy's
``operator`` module names: ``add``, ``sub``, ``mul``, ``truediv``). Its parameters are the
members' parameters with the prefixes ``model1.`` and ``model2.`` (Gammapy's names in
covariance files: ``crab.spectral.model1.index``), so a fitter sees one flat list. Members
may themselves be compound. ``pl * PiecewiseNorm(...)`` and ``pl * ebl`` are built with the
Python operators on any two spectral models.

Integrals: a sum or difference integrates each member (analytically where it can);
products and ratios use log-energy quadrature split at the members' ``breakpoints``
(nodes of tabulated members), so kinks never fall inside a quadrature interval.
"""

from __future__ import annotations

import itertools
import operator
from typing import Any

import astropy.units as u
import numpy as np

from .spectral import SpectralModel, log_quadrature

__all__ = ["OPERATORS", "CompoundSpectral"]

#: Supported operator names and their functions.
OPERATORS = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
}
_PREFIXES = ("model1.", "model2.")


class CompoundSpectral(SpectralModel):
    """Two spectral models combined by an arithmetic operator.

    Parameters
    ----------
    model1, model2 : SpectralModel
        The members (their current parameter values and flags are taken).
    operator : {"add", "sub", "mul", "truediv"}
        How they combine.
    **params
        Parameter overrides by prefixed name (``"model1.index"``); mainly for copies.
    """

    tag = "CompoundSpectralModel"
    short_tag = "compound"
    default_parameters = ()

    def __init__(
        self, model1: SpectralModel, model2: SpectralModel, operator: str = "add", **params: Any
    ) -> None:
        for k, m in enumerate((model1, model2), start=1):
            if not isinstance(m, SpectralModel):
                raise TypeError(f"CompoundSpectral: model{k} must be a SpectralModel, got {m!r}")
        if operator not in OPERATORS:
            raise ValueError(
                f"CompoundSpectral: operator must be one of {list(OPERATORS)}, got {operator!r}"
            )
        unit1, unit2 = u.Unit(model1.unit), u.Unit(model2.unit)
        if operator in ("add", "sub") and not unit1.is_equivalent(unit2):
            raise ValueError(f"CompoundSpectral: cannot {operator} models in {unit1} and {unit2}")
        unit = unit1 if operator in ("add", "sub") else OPERATORS[operator](unit1, unit2)
        object.__setattr__(self, "_members", (model1, model2))
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "unit", unit.to_string())
        object.__setattr__(
            self,
            "default_parameters",
            tuple(
                p.replace(name=prefix + p.name)
                for prefix, m in zip(_PREFIXES, (model1, model2), strict=True)
                for p in m.parameters
            ),
        )
        super().__init__(**params)

    # -- members with the current parameters ----------------------------------------------
    def _split(self, values: dict) -> tuple[dict, dict]:
        first = {k[7:]: v for k, v in values.items() if k.startswith("model1.")}
        second = {k[7:]: v for k, v in values.items() if k.startswith("model2.")}
        return first, second

    def _member(self, k: int) -> SpectralModel:
        prefix, template = _PREFIXES[k], self._members[k]
        return template.with_parameters(
            {
                name: self.parameter(prefix + name).replace(name=name)
                for name in template.parameter_names
            }
        )

    @property
    def model1(self) -> SpectralModel:
        """First member with the compound's current parameters."""
        return self._member(0)

    @property
    def model2(self) -> SpectralModel:
        """Second member with the compound's current parameters."""
        return self._member(1)

    @property
    def breakpoints(self) -> np.ndarray:
        """Energies (TeV) where a member has kinks."""
        points = [getattr(m, "breakpoints", np.empty(0)) for m in self._members]
        return np.unique(np.concatenate(points))

    def _extra_state(self) -> tuple:
        members = tuple(x for m in self._members for x in (type(m), *m._extra_state()))
        return (self.operator, *members)

    def _repr_extra(self) -> str:
        names = ", ".join(type(m).__name__ for m in self._members)
        return f"operator={self.operator!r}, members=({names})"

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, energy, **values):
        """Combined value at ``energy`` (TeV), in :attr:`unit`."""
        first, second = self._split(values)
        a = self._members[0].evaluate(energy, **first)
        b = self._members[1].evaluate(energy, **second)
        return OPERATORS[self.operator](a, b)

    def evaluate_integral(self, energy_min, energy_max, **values):
        """Integral over ``[energy_min, energy_max]`` (TeV), in unit x TeV."""
        if self.operator in ("add", "sub"):
            first, second = self._split(values)
            a = self._members[0].evaluate_integral(energy_min, energy_max, **first)
            b = self._members[1].evaluate_integral(energy_min, energy_max, **second)
            return OPERATORS[self.operator](a, b)
        return _split_quadrature(
            lambda e: self.evaluate(e, **values), energy_min, energy_max, self.breakpoints
        )

    def evaluate_energy_flux(self, energy_min, energy_max, **values):
        """Integral of ``E * value`` over the range (TeV), in unit x TeV2."""
        return _split_quadrature(
            lambda e: e * self.evaluate(e, **values), energy_min, energy_max, self.breakpoints
        )


def _split_quadrature(func, energy_min, energy_max, breakpoints):
    """:func:`log_quadrature` over ``[emin, emax]`` split at ``breakpoints`` (TeV)."""
    edges = np.concatenate([[0.0], np.asarray(breakpoints, float), [np.inf]])
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        a = np.clip(energy_min, lo, hi) if lo > 0 else np.minimum(energy_min, hi)
        b = np.clip(energy_max, lo, hi) if lo > 0 else np.minimum(energy_max, hi)
        b = np.maximum(a, b)
        # empty pieces (a == b) integrate to zero; keep the bounds positive for the log
        total = total + log_quadrature(func, a, b)
    return total
