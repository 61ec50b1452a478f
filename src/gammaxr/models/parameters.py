"""Model parameters as plain immutable data, and the immutable base class of all models.

A :class:`Parameter` is a frozen record (name, value, unit, bounds, frozen flag, error,
optional link label). Every model class declares the canonical unit of each of its
parameters; values given in another compatible unit (an astropy ``Quantity``, a string such
as ``"2e-11 m-2 s-1 TeV-1"`` or a :class:`Parameter` with another unit) are converted to the
canonical unit on construction, so the numbers a model holds can be passed straight to its
vectorised ``evaluate`` static method without any unit handling.

Models never change in place: ``with_values``, ``with_parameter``, ``freeze`` and ``unfreeze``
return new models, so a fit can return fitted copies and never touch the user's objects.
"""

from __future__ import annotations

import copy as _copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any, ClassVar

import astropy.units as u
import numpy as np

from .priors import Prior

__all__ = ["Model", "Parameter", "ParameterUnitError", "to_canonical"]


class ParameterUnitError(u.UnitConversionError):
    """A parameter was given in a unit that cannot be read or converted to its canonical unit.

    An :class:`astropy.units.UnitConversionError` (hence also a ``ValueError``) whose message
    names the parameter.
    """


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@dataclass(frozen=True, eq=False)
class Parameter:
    """One model parameter.

    Parameters
    ----------
    name : str
        Parameter name, unique within its model (``"index"``, ``"lon_0"``, ...).
    value : float
        Value in ``unit``.
    unit : str
        Astropy unit string; ``""`` for dimensionless parameters.
    min, max : float
        Bounds in ``unit``; NaN means unbounded on that side.
    frozen : bool
        Whether a fit keeps the parameter fixed.
    error : float
        One-sigma error in ``unit`` (0 when unknown).
    link : str or None
        Link label: parameters with the same label in one :class:`~gammaxr.models.Models`
        collection share one fit parameter (e.g. a background norm shared by datasets).
    prior : Prior or None
        A prior (:mod:`gammaxr.models.priors`, values in ``unit``) added to the fit
        statistic; a uniform prior also narrows the fit bounds to its support.
    """

    name: str
    value: float
    unit: str = ""
    min: float = math.nan
    max: float = math.nan
    frozen: bool = False
    error: float = 0.0
    link: str | None = field(default=None)
    prior: Prior | None = field(default=None)

    def __post_init__(self) -> None:
        for attr in ("value", "min", "max", "error"):
            raw = getattr(self, attr)
            try:
                object.__setattr__(self, attr, float(raw))
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"parameter {self.name!r}: {attr} must be a number, got {raw!r}"
                ) from exc
        object.__setattr__(self, "frozen", bool(self.frozen))
        if self.prior is not None and not isinstance(self.prior, Prior):
            raise TypeError(
                f"parameter {self.name!r}: prior must be a gammaxr.models.priors.Prior "
                f"(GaussianPrior, UniformPrior), got {type(self.prior).__name__}"
            )
        text = str(self.unit or "").strip()
        _parse_unit(self.name, text)
        object.__setattr__(self, "unit", "" if _is_dimensionless(text) else text)

    def __eq__(self, other: object) -> bool:
        """Field-wise equality; NaN bounds compare equal, units compare as units."""
        if not isinstance(other, Parameter):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "unit":
                if not _same_unit(a, b):
                    return False
            elif isinstance(a, float):
                if not _same_float(a, b):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    @property
    def quantity(self) -> u.Quantity:
        """The value as an astropy ``Quantity``."""
        return u.Quantity(self.value, self.unit)

    @property
    def bounds(self) -> tuple[float, float]:
        """``(min, max)`` with NaN replaced by -inf / +inf, narrowed to the support of a
        uniform prior."""
        lo = -math.inf if math.isnan(self.min) else self.min
        hi = math.inf if math.isnan(self.max) else self.max
        if self.prior is not None:
            p_lo, p_hi = self.prior.bounds()
            lo, hi = max(lo, p_lo), min(hi, p_hi)
        return lo, hi

    def prior_stat(self, value: float | None = None) -> float:
        """The prior's statistic at ``value`` (default the parameter's value); 0 without a
        prior (:mod:`gammaxr.models.priors`)."""
        if self.prior is None:
            return 0.0
        return self.prior.stat(self.value if value is None else value)

    def replace(self, **changes: Any) -> Parameter:
        """A copy with some fields changed (``p.replace(value=2.0, frozen=True)``)."""
        return replace(self, **changes)

    def to_unit(self, unit: str) -> Parameter:
        """The same parameter expressed in ``unit`` (value, bounds and error scaled).

        Raises
        ------
        ParameterUnitError
            If ``unit`` is not equivalent to the parameter's unit.
        """
        target = _parse_unit(self.name, unit)
        if _same_unit(self.unit, unit):
            return self if self.unit == unit else self.replace(unit=unit)
        try:
            scale = _unit(self.unit).to(target)
        except u.UnitConversionError as exc:
            raise ParameterUnitError(
                f"parameter {self.name!r}: unit {self.unit or 'dimensionless'!r} cannot be "
                f"converted to {unit or 'dimensionless'!r}"
            ) from exc
        return self.replace(
            value=self.value * scale,
            min=self.min * scale,
            max=self.max * scale,
            error=abs(self.error * scale),
            unit=unit,
            prior=None if self.prior is None else self.prior.scaled(scale),
        )


def _immutable_message(model: Any, call: str, instead: str, names: tuple) -> str:
    args = ", ".join(repr(n) for n in names)
    return (
        f"{type(model).__name__}.{call}() would change nothing: gammaxr models are immutable. "
        f"Use model = model.{instead}({args}), which returns the changed copy."
    )


@lru_cache(maxsize=512)
def _unit(text: str) -> u.UnitBase:
    """Parsed astropy unit of a unit string (parsing is slow; strings repeat)."""
    return u.Unit(text)


@lru_cache(maxsize=512)
def _same_unit(a: str, b: str) -> bool:
    return a == b or _unit(a) == _unit(b)


@lru_cache(maxsize=512)
def _is_dimensionless(text: str) -> bool:
    return _unit(text) == u.dimensionless_unscaled


def _parse_unit(name: str, text: Any) -> u.UnitBase:
    try:
        return _unit(str(text or "").strip())
    except (TypeError, ValueError) as exc:
        raise ParameterUnitError(f"parameter {name!r}: cannot parse unit {text!r}") from exc


def to_canonical(default: Parameter, given: Any) -> Parameter:
    """Build the parameter ``default.name`` from a user value, in the canonical unit.

    Parameters
    ----------
    default : Parameter
        The class default: name, canonical unit and default bounds / frozen state.
    given : float, str, astropy.units.Quantity or Parameter
        A number (taken in the canonical unit), a quantity or quantity string
        (``"1e-11 cm-2 s-1 TeV-1"``), or a full :class:`Parameter` (its unit is converted).

    Returns
    -------
    Parameter
        A parameter in ``default.unit``.
    """
    if isinstance(given, Parameter):
        if given.name != default.name:
            raise ValueError(f"parameter {given.name!r} passed where {default.name!r} was expected")
        return given.to_unit(default.unit)
    if isinstance(given, str):
        try:
            given = u.Quantity(given)
        except (TypeError, ValueError) as exc:
            raise ParameterUnitError(
                f"parameter {default.name!r}: cannot parse {given!r} as a quantity"
            ) from exc
    if isinstance(given, u.Quantity):
        if given.size != 1:
            raise ValueError(f"parameter {default.name!r} must be a scalar, got {given!r}")
        try:
            value = given.to_value(_unit(default.unit))
        except u.UnitConversionError as exc:
            raise ParameterUnitError(
                f"parameter {default.name!r}: {given} cannot be converted to "
                f"{default.unit or 'dimensionless'!r}"
            ) from exc
        return default.replace(value=float(value))
    if np.ndim(given) != 0:
        raise ValueError(f"parameter {default.name!r} must be a scalar, got {given!r}")
    return default.replace(value=float(given))


class Model:
    """Immutable base of all models: an ordered tuple of :class:`Parameter`.

    Subclasses set ``tag`` (the Gammapy type name written to YAML), ``short_tag``
    (Gammapy's short alias) and ``default_parameters``. Parameters are read as attributes
    (``model.index.value``); changes make new models (``model.with_values(index=2.3)``).
    """

    tag: ClassVar[str] = ""
    short_tag: ClassVar[str] = ""
    default_parameters: ClassVar[tuple[Parameter, ...]] = ()
    #: The class's one non-parameter option (``"frame"``, ``"scale"``), if any: set by
    #: :meth:`_set_option`, compared by ``==`` and shown in the repr.
    option_name: ClassVar[str | None] = None
    _locked: bool = False

    def __init__(self, **params: Any) -> None:
        names = [p.name for p in self.default_parameters]
        unknown = set(params) - set(names)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown parameter(s) {sorted(unknown)}; "
                f"valid names are {names}"
            )
        parameters = tuple(
            to_canonical(p, params[p.name]) if p.name in params else p
            for p in self.default_parameters
        )
        object.__setattr__(self, "_parameters", parameters)
        self._validate()
        object.__setattr__(self, "_locked", True)

    def _validate(self) -> None:
        """Check parameter values (subclasses raise ValueError for impossible values)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if self._locked:
            raise AttributeError(
                f"{type(self).__name__} is immutable; use with_values(...) / "
                f"with_parameter(...) to make a changed copy"
            )
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Parameter:
        if name.startswith("_"):
            raise AttributeError(name)
        for p in self.__dict__.get("_parameters", ()):
            if p.name == name:
                return p
        raise AttributeError(f"{type(self).__name__} has no attribute or parameter {name!r}")

    # -- parameter access ------------------------------------------------------------
    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """All parameters, in the canonical order of the model class."""
        return self._parameters

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the parameters."""
        return tuple(p.name for p in self._parameters)

    @property
    def values(self) -> dict[str, float]:
        """``{name: value}`` in canonical units, ready for ``evaluate(..., **values)``."""
        return {p.name: p.value for p in self._parameters}

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name`` (KeyError naming the valid names if absent)."""
        for p in self._parameters:
            if p.name == name:
                return p
        raise KeyError(
            f"{type(self).__name__} has no parameter {name!r}; it has {self.parameter_names}"
        )

    # -- copies ----------------------------------------------------------------------
    def _with_parameters(self, parameters: tuple[Parameter, ...]) -> Model:
        new = _copy.copy(self)
        object.__setattr__(new, "_parameters", tuple(parameters))
        object.__setattr__(new, "_locked", False)
        new._validate()
        object.__setattr__(new, "_locked", True)
        return new

    def copy(self) -> Model:
        """A copy (models are immutable, so this is only for symmetry with other APIs)."""
        return self._with_parameters(self._parameters)

    def with_values(self, **values: Any) -> Model:
        """A copy with new parameter values (numbers in canonical units, or quantities)."""
        self._check_names(values)
        return self._with_parameters(
            tuple(
                p.replace(value=to_canonical(p, values[p.name]).value) if p.name in values else p
                for p in self._parameters
            )
        )

    def with_parameter(self, name: str, **changes: Any) -> Model:
        """A copy with fields of parameter ``name`` changed (``frozen=True``, ``min=0``...)."""
        self.parameter(name)
        return self._with_parameters(
            tuple(p.replace(**changes) if p.name == name else p for p in self._parameters)
        )

    def with_parameters(self, parameters: Any) -> Model:
        """A copy with whole parameters replaced (a sequence or ``{name: Parameter}``)."""
        if isinstance(parameters, Mapping):
            self._check_names(parameters)
            given = dict(parameters)
        else:
            given = {p.name: p for p in parameters}
            self._check_names(given)
        return self._with_parameters(
            tuple(
                to_canonical(p, given[p.name]) if p.name in given else p for p in self._parameters
            )
        )

    def with_frozen(self, *names: str) -> Model:
        """A copy with the named parameters (all if none named) frozen.

        Models are immutable: ``model = model.with_frozen("index")``.
        """
        names = names or self.parameter_names
        self._check_names(names)
        return self._with_parameters(
            tuple(p.replace(frozen=True) if p.name in names else p for p in self._parameters)
        )

    def with_free(self, *names: str) -> Model:
        """A copy with the named parameters (all if none named) free (``with_frozen``'s
        opposite)."""
        names = names or self.parameter_names
        self._check_names(names)
        return self._with_parameters(
            tuple(p.replace(frozen=False) if p.name in names else p for p in self._parameters)
        )

    def freeze(self, *names: str) -> None:
        """Not supported: models are immutable; raises with the call to use instead.

        Gammapy's ``model.freeze("index")`` changes the model in place; here a call on its
        own line would silently do nothing, so it is an error.
        """
        raise TypeError(_immutable_message(self, "freeze", "with_frozen", names))

    def unfreeze(self, *names: str) -> None:
        """Not supported: models are immutable; use ``model = model.with_free(...)``."""
        raise TypeError(_immutable_message(self, "unfreeze", "with_free", names))

    def _check_names(self, names: Any) -> None:
        unknown = set(names) - set(self.parameter_names)
        if unknown:
            raise KeyError(
                f"{type(self).__name__}: unknown parameter(s) {sorted(unknown)}; "
                f"valid names are {list(self.parameter_names)}"
            )

    def _set_option(self, value: str, allowed: Sequence[str]) -> None:
        """Set the option :attr:`option_name` (a frame, a time scale) if ``value`` is allowed."""
        name = self.option_name
        if value not in allowed:
            raise ValueError(
                f"{type(self).__name__}: {name} must be one of {allowed}, got {value!r}"
            )
        object.__setattr__(self, name, value)

    # -- comparison and display ------------------------------------------------------
    def _extra_state(self) -> tuple:
        """Non-parameter state compared by ``==`` (the option, template tables...)."""
        return () if self.option_name is None else (getattr(self, self.option_name),)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        if self._parameters != other._parameters:
            return False
        mine, theirs = self._extra_state(), other._extra_state()
        if len(mine) != len(theirs):
            return False
        for a, b in zip(mine, theirs, strict=True):
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not np.array_equal(a, b, equal_nan=True):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        pars = ", ".join(
            f"{p.name}={p.value:.6g}{' ' + p.unit if p.unit else ''}"
            + (" (frozen)" if p.frozen else "")
            for p in self._parameters
        )
        extra = self._repr_extra()
        return f"{type(self).__name__}({pars}{', ' + extra if extra else ''})"

    def _repr_extra(self) -> str:
        name = self.option_name
        return "" if name is None else f"{name}={getattr(self, name)!r}"
