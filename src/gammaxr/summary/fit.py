"""Summary of a fit result: the status and a parameter table (value, error, unit, frozen)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from gammaxr.summary.layout import html_block, html_table, text_table

__all__ = ["fit_html", "fit_status_rows", "fit_table_rows", "fit_text"]

_HEADER = ("parameter", "value", "error", "unit", "frozen")


def _number(value: float) -> str:
    if not np.isfinite(value):
        return "nan"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.4e}"
    return f"{value:.5g}"


def fit_status_rows(parameters: xr.Dataset) -> list[tuple[str, str]]:
    """(label, text) rows of the fit status from the result table's attrs."""
    a = parameters.attrs
    free = int((~parameters["frozen"].values.astype(bool)).sum()) if "frozen" in parameters else 0
    return [
        ("success", str(a.get("success", "?"))),
        ("message", str(a.get("message", "?"))),
        ("total stat", _number(float(a.get("total_stat", np.nan))) + " (-2 log L)"),
        ("evaluations", str(a.get("nfev", "?"))),
        ("optimizer", str(a.get("optimizer", "?"))),
        ("parameters", f"{parameters.sizes.get('param', 0)} ({free} free)"),
    ]


def fit_table_rows(parameters: xr.Dataset) -> list[tuple[str, ...]]:
    """One row per parameter: full name, value, error (``-`` for frozen), unit, frozen."""
    rows = []
    for name in parameters["param"].values:
        row = parameters.sel(param=name)
        frozen = bool(row["frozen"])
        error = "-" if frozen else _number(float(row["error"]))
        unit = str(row["unit"].values) if "unit" in row else ""
        rows.append((str(name), _number(float(row["value"])), error, unit, "yes" if frozen else ""))
    return rows


def fit_text(result: Any) -> str:
    """Text summary of a :class:`gammaxr.fit.FitResult` (its ``repr``)."""
    status = fit_status_rows(result.parameters)
    width = max(len(label) for label, _ in status)
    lines = ["<FitResult>", *(f"  {label:<{width}} : {text}" for label, text in status), ""]
    lines.append(text_table(_HEADER, fit_table_rows(result.parameters)))
    return "\n".join(lines)


def fit_html(result: Any) -> str:
    """HTML summary of a :class:`gammaxr.fit.FitResult` (notebooks)."""
    status = html_block("FitResult", fit_status_rows(result.parameters))
    return status + html_table(_HEADER, fit_table_rows(result.parameters))
