"""The building blocks of the YAML description schemas (analysis and simulation).

Both descriptions are pydantic (v2) models made of :class:`Section` classes: a section forbids
unknown keys (reported with a did-you-mean suggestion), and its numbers with units are
:func:`unit_float` fields (a plain number in the documented unit, or a string with a unit that
astropy converts: ``"0.02 deg"``, ``"1.2 arcmin"``, ``"300 GeV"``). Adding a section to a
description is one small :class:`Section` subclass plus one field on the top-level model.

:func:`validate_description` runs a model on a parsed YAML mapping and raises the caller's
error class with **every** problem of the file at once, one line each, prefixed by its path in
the file (``grid.binsz: must be positive, got -1.0``). :func:`description_json_schema` exports
the schema for editors (``gammaxr schema analysis``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from gammaxr.io.yaml_files import suggest
from gammaxr.units import to_unit

__all__ = [
    "Section",
    "description_json_schema",
    "format_errors",
    "positive_int",
    "unit_float",
    "validate_description",
]

ModelT = TypeVar("ModelT", bound=BaseModel)


class Section(BaseModel):
    """A mapping of the description: known keys only, each unknown one named with a suggestion."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @model_validator(mode="wrap")
    @classmethod
    def _suggest_unknown_keys(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            allowed = [f.alias or name for name, f in cls.model_fields.items() if not f.exclude]
            details = []
            for err in exc.errors():
                msg = _friendly(err)
                if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
                    key = err["loc"][0]
                    msg = f"unknown key{suggest(str(key), allowed)}; known keys: {allowed}"
                details.append(
                    InitErrorDetails(
                        type=PydanticCustomError(err["type"], "{msg}", {"msg": msg}),
                        loc=err["loc"],
                        input=err.get("input"),
                    )
                )
            raise ValidationError.from_exception_data(cls.__name__, details) from None


_KINDS = {
    "int": "an integer",
    "bool": "true or false",
    "float": "a number",
    "string": "text",
    "dict": "a mapping",
    "model": "a mapping",
    "list": "a list",
    "tuple": "a list",
}


def _friendly(err: Mapping[str, Any]) -> str:
    """The message of one pydantic error in the words of the descriptions."""
    ctx = err.get("ctx") or {}
    if "msg" in ctx:  # already reworded by an inner section
        return str(ctx["msg"])
    kind, given = err["type"], err.get("input")
    if kind == "missing":
        return "missing"
    if kind == "literal_error":
        return f"must be one of [{ctx.get('expected', '').replace(' or ', ', ')}], got {given!r}"
    if kind == "invalid_key":
        return f"unknown key {given!r} (keys are text)"
    if kind in ("too_short", "too_long") and "actual_length" in ctx:
        return f"expected {ctx.get('min_length', ctx.get('max_length'))} values, got {given!r}"
    expected = _KINDS.get(kind.split("_")[0])
    if expected and kind.endswith(("_type", "_parsing", "_from_float", "attributes_type")):
        return f"expected {expected}, got {given!r}"
    return err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _number(unit: str, value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a number in {unit or 'no unit'}, got {value!r}")
    try:
        number = to_unit(value, unit, "value")
        return float(number)
    except (TypeError, ValueError) as exc:  # UnitConversionError is a ValueError
        raise ValueError(f"expected a number in {unit or 'no unit'}, got {value!r}") from exc


def unit_float(unit: str, *, minimum: float | None = None, strict: bool = True) -> Any:
    """An annotated float field in ``unit`` that accepts strings with units.

    Parameters
    ----------
    unit : str
        Documented unit (``""``: dimensionless).
    minimum : float, optional
        Lower bound: values must be ``> minimum`` (``strict``) or ``>= minimum``.
    strict : bool
        Whether ``minimum`` itself is excluded.

    Returns
    -------
    typing.Annotated
        A type to use on a :class:`Section` field; non-finite values are refused.
    """

    def check(value: float) -> float:
        if not np.isfinite(value):
            raise ValueError(f"must be finite, got {value!r}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            what = "positive" if minimum == 0 and strict else f"{'>' if strict else '>='} {minimum}"
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    schema = {
        "anyOf": [{"type": "number"}, {"type": "string"}],
        "description": f"a number in {unit or 'no unit'} or a string with a unit",
    }
    return Annotated[
        float,
        BeforeValidator(lambda v: _number(unit, v)),
        AfterValidator(check),
        WithJsonSchema(schema),
    ]


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return int(value)


#: A field holding an integer >= 1.
positive_int = Annotated[int, BeforeValidator(_positive_int)]


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def format_errors(exc: ValidationError) -> list[str]:
    """One ``"path: message"`` line per problem of a :class:`pydantic.ValidationError`."""
    lines = []
    for err in exc.errors():
        msg = _friendly(err)
        where = _path(err["loc"])
        lines.append(f"{where}: {msg}" if where else msg)
    return list(dict.fromkeys(lines))


def validate_description(
    model: type[ModelT], data: Any, source: str, error: type[Exception], context: Any = None
) -> ModelT:
    """Validate a parsed description with ``model``; all problems in one ``error``.

    Parameters
    ----------
    model : type of pydantic.BaseModel
        The top-level schema.
    data : mapping
        The description (parsed YAML).
    source : str
        File name (or label) prefixed to the message.
    error : type of Exception
        Raised with the message; ``error.problems`` holds the list of lines.
    context : any, optional
        Passed to the validators (``info.context``).

    Returns
    -------
    model
        The validated description.
    """
    prefix = f"{source}: " if source else ""
    if not isinstance(data, Mapping):
        raise error(f"{prefix}expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(dict(data), context=context)
    except ValidationError as exc:
        raise_problems(format_errors(exc), source, error)
    raise AssertionError("unreachable")


def raise_problems(problems: list[str], source: str, error: type[Exception]) -> None:
    """Raise ``error`` listing ``problems`` (one per line), if there are any."""
    if not problems:
        return
    prefix = f"{source}: " if source else ""
    if len(problems) == 1:
        exc = error(f"{prefix}{problems[0]}")
    else:
        lines = "\n".join(f"  {line}" for line in problems)
        exc = error(f"{prefix}{len(problems)} problems:\n{lines}")
    exc.problems = problems  # type: ignore[attr-defined]
    raise exc


def description_json_schema(model: type[BaseModel], indent: int | None = 2) -> str:
    """The JSON schema of a description model, as text (for editors' YAML support)."""
    schema = model.model_json_schema(mode="validation")
    return json.dumps(schema, indent=indent)
