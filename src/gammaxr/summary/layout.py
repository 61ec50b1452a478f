"""Laying out summaries: label/value blocks and tables, as text and as HTML."""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["html_block", "html_table", "text_block", "text_table"]


def text_block(title: str, rows: Sequence[tuple[str, str]]) -> str:
    """``<title>`` then one ``label : value`` line per row, labels aligned."""
    width = max((len(label) for label, _ in rows), default=0)
    return "\n".join([f"<{title}>", *(f"  {label:<{width}} : {text}" for label, text in rows)])


def html_block(title: str, rows: Sequence[tuple[str, str]]) -> str:
    """A bold title over a two-column HTML table (label, value); text is escaped."""
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
        f"<td style='text-align:left'>{html.escape(text)}</td></tr>"
        for label, text in rows
    )
    return f"<div><strong>{html.escape(title)}</strong><table>{body}</table></div>"


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned on their widest cell: the first left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [f"{cells[0]!s:<{widths[0]}}"]
        parts += [f"{c!s:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  " + "  ".join(parts).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table with a header row; text is escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
