"""Units at the public entries: one converter from Quantity, string or number to a plain value.

Every public function and spec takes its energies, angles, times and fluxes either as plain
numbers in the documented unit (TeV, deg, s, ...) or as astropy quantities / strings with a
unit (``100 * u.GeV``, ``"6 arcmin"``), which :func:`to_unit` converts. A quantity of the wrong
kind raises :class:`astropy.units.UnitConversionError` naming the argument.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from astropy import units as u

__all__ = ["to_edges", "to_positive", "to_unit", "to_unit_or_none", "unit_factor"]


@functools.lru_cache(maxsize=256)
def unit_factor(unit: str, target: str) -> float:
    """How many ``target`` one ``unit`` is (e.g. ``unit_factor("cm2", "m2") == 1e-4``).

    Cached: parsing a unit string is ~0.1 ms of Python (holding the GIL), and IRF and
    column units repeat from run to run.

    Raises
    ------
    ValueError, astropy.units.UnitConversionError
        If a string is not a unit or the two are not convertible.
    """
    return float(u.Unit(unit).to(u.Unit(target)))


def to_unit(value: Any, unit: str | u.UnitBase, name: str) -> Any:
    """``value`` as plain numbers in ``unit``.

    Parameters
    ----------
    value : float, array-like, str or astropy.units.Quantity
        Numbers are taken to be in ``unit`` already and returned unchanged (arrays as given,
        lists as float arrays). A string is parsed as a quantity (``"100 GeV"``); a bare number
        in a string (``"1e5"``) is taken in ``unit``.
    unit : str or astropy.units.UnitBase
        The documented unit (``""`` for dimensionless values).
    name : str
        The argument's name, used in error messages.

    Returns
    -------
    float or numpy.ndarray or the value unchanged
        A float for a scalar quantity or string, a float array for an array quantity or list.

    Raises
    ------
    astropy.units.UnitConversionError
        A quantity (or string) whose unit cannot be converted to ``unit``.
    ValueError
        A string that is not a quantity.
    """
    if isinstance(value, str):
        try:
            value = u.Quantity(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: cannot read {value!r} as a quantity in {unit!r}") from exc
        if value.unit == u.dimensionless_unscaled:
            return float(value.value)
    if isinstance(value, u.Quantity):
        try:
            out = value.to_value(unit or u.dimensionless_unscaled)
        except u.UnitConversionError as exc:
            raise u.UnitConversionError(
                f"{name}: {value} cannot be converted to {str(unit) or 'dimensionless'!r}"
            ) from exc
        return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=float)
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, (u.Quantity, str)) for v in value):
            return np.array([to_unit(v, unit, f"{name}[{i}]") for i, v in enumerate(value)])
        return np.asarray(value, dtype=float)
    return value


def to_unit_or_none(value: Any, unit: str | u.UnitBase, name: str) -> Any:
    """:func:`to_unit`, passing ``None`` through."""
    return None if value is None else to_unit(value, unit, name)


def to_positive(
    value: Any, unit: str | u.UnitBase, name: str, *, allow_zero: bool = False
) -> float:
    """:func:`to_unit` of a scalar that must be finite and positive (or zero if allowed).

    Raises
    ------
    ValueError
        Naming ``name``, for a non-finite, negative (or zero) value.
    """
    number = to_unit(value, unit, name)
    if np.ndim(number) != 0:
        raise ValueError(f"{name} must be a single value, got {value!r}")
    number = float(number)
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        what = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be {what} (in {str(unit) or 'no unit'}), got {value!r}")
    return number


def to_edges(value: Any, unit: str | u.UnitBase, name: str) -> np.ndarray:
    """:func:`to_unit` of bin edges: at least two, finite, positive and increasing.

    Raises
    ------
    ValueError
        Naming ``name``, for edges that are not a 1D increasing sequence of positive values.
    """
    edges = np.asarray(to_unit(value, unit, name), dtype=float)
    if edges.ndim != 1 or edges.size < 2:
        raise ValueError(f"{name} must be a 1D sequence of at least 2 edges, got {value!r}")
    if not np.all(np.isfinite(edges)) or edges[0] <= 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(
            f"{name} must be positive increasing edges in {str(unit) or 'no unit'}, got {edges}"
        )
    return edges
