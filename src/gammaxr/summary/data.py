"""Summaries of DL3 data: an observation (header only) and a data store (index tables only).

Nothing here reads events or IRFs. An observation's summary takes its numbers from the events
header (read once, as :attr:`gammaxr.data.Observation.meta` does) and the observation table;
a data store's from its index tables, already in memory. A field that cannot be found shows
as ``?`` with the reason, so that a repr never raises.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from gammaxr.summary.layout import html_block, text_block

__all__ = [
    "datastore_rows",
    "datastore_text",
    "observation_html",
    "observation_rows",
    "observation_text",
]


def _safe(func: Any) -> str:
    """``func()`` as text, or ``? (reason)`` when the header or table lacks it."""
    try:
        return str(func())
    except Exception as exc:  # a repr must not fail: say why instead
        return f"? ({type(exc).__name__}: {exc})"


_TARGET_COLUMNS = ("target_name", "object")


def _target(obs: Any) -> str:
    table = obs.obs_info
    for column in _TARGET_COLUMNS:
        if column in table.variables:
            value = str(table[column].values).strip()
            if value:
                return value
    value = obs.meta.get("OBJECT")
    if value is None:
        raise KeyError("no OBJECT keyword or target column")
    return str(value)


def _pointing(obs: Any) -> str:
    pnt = obs.pointing
    gal = pnt.galactic
    return (
        f"RA {pnt.ra.deg:.3f}, Dec {pnt.dec.deg:.3f} deg (icrs); "
        f"l {gal.l.deg:.3f}, b {gal.b.deg:.3f} deg"
    )


def _time(obs: Any) -> str:
    start = obs.time_start
    minutes = (obs.tstop - obs.tstart) / 60.0
    return f"{start.utc.isot[:19]} UTC, {minutes:.1f} min"


def _event_count(obs: Any) -> str:
    table = obs.obs_info
    if "event_count" in table.variables:
        return str(int(table["event_count"].values))
    for key in ("EVENT_COUNT", "NAXIS2"):
        if key in obs.meta:
            return str(int(obs.meta[key]))
    if "events" in obs.loaded:
        return str(obs.events.sizes["event"])
    return "not in the index or header (events not read)"


def observation_rows(obs: Any) -> list[tuple[str, str]]:
    """(label, text) rows of an observation: target, pointing, time, livetime, zenith,
    event count and IRFs (header and observation table only)."""
    irfs = ", ".join(f"{t}: {c}" for t, c in obs.hdu_classes.items() if t not in ("events", "gti"))
    return [
        ("target", _safe(lambda: _target(obs))),
        ("pointing", _safe(lambda: _pointing(obs))),
        ("start", _safe(lambda: _time(obs))),
        ("livetime", _safe(lambda: f"{obs.livetime / 60:.1f} min ({obs.livetime:.0f} s)")),
        ("zenith", _safe(lambda: f"{obs.zenith:.1f} deg")),
        ("events", _safe(lambda: _event_count(obs))),
        ("IRFs", irfs or "none"),
        ("state", f"loaded {list(obs.loaded)}" if obs.loaded else "lazy (nothing read)"),
    ]


def observation_text(obs: Any) -> str:
    """Text summary of an observation (its ``repr``)."""
    return text_block(f"Observation {obs.obs_id}", observation_rows(obs))


def observation_html(obs: Any) -> str:
    """HTML summary of an observation (notebooks)."""
    return html_block(f"Observation {obs.obs_id}", observation_rows(obs))


def _column(table: Any, name: str) -> np.ndarray | None:
    return np.asarray(table[name].values) if name in table.variables else None


def _range(values: np.ndarray | None, fmt: str, unit: str) -> str:
    if values is None or values.size == 0:
        return "?"
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "?"
    return f"{values.min():{fmt}} - {values.max():{fmt}} {unit}"


def datastore_rows(store: Any) -> list[tuple[str, str]]:
    """(label, text) rows of a data store: runs, targets, livetime, zenith, time and HDU
    classes (from the index tables only)."""
    table = store.obs_table
    ids = store.obs_ids
    rows = [("source", str(table.attrs.get("source", "?")))]
    shown = f"{ids.min()} - {ids.max()}" if ids.size else "none"
    rows.append(("runs", f"{ids.size} (obs_id {shown})"))
    targets = None
    for column in _TARGET_COLUMNS:
        if column in table.variables:
            targets = [str(t).strip() or "?" for t in table[column].values]
            break
    if targets:
        counts = Counter(targets).most_common()
        text = ", ".join(f"{name} ({n})" for name, n in counts[:8])
        rows.append(
            ("targets", text + (f", ... {len(counts) - 8} more" if len(counts) > 8 else ""))
        )
    livetime = _column(table, "livetime")
    if livetime is not None:
        total = float(np.nansum(livetime.astype(float)))
        rows.append(("livetime", f"{total / 3600:.2f} h in all"))
    zenith = _column(table, "zen_pnt")
    if zenith is not None:
        rows.append(("zenith", _range(zenith.astype(float), ".1f", "deg")))
    dates = _column(table, "date_obs")
    if dates is not None and dates.size:
        rows.append(("dates", f"{min(dates)} - {max(dates)}"))
    events = _column(table, "event_count")
    if events is not None:
        rows.append(("events", f"{int(np.sum(events)):,} in all"))
    hdus = store.hdu_table
    classes = Counter(
        f"{t}: {c}" for t, c in zip(hdus["hdu_type"].values, hdus["hdu_class"].values, strict=True)
    )
    rows.append(("HDUs", ", ".join(f"{k} ({n})" for k, n in sorted(classes.items()))))
    return rows


def datastore_text(store: Any) -> str:
    """Text summary of a data store (:meth:`gammaxr.data.DataStore.info`)."""
    return text_block("DataStore", datastore_rows(store))
