"""DL3 data access: data stores, observation selection and lazy observations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gammaxr._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from gammaxr.data.datastore import DataStore, open_datastore
    from gammaxr.data.observation import (
        HDU_TYPES,
        HDULocation,
        Observation,
        event_offsets,
        events_in_gti,
        gti_mask,
        read_observations,
        select_events_time,
    )

__all__ = [
    "HDU_TYPES",
    "DataStore",
    "HDULocation",
    "Observation",
    "event_offsets",
    "events_in_gti",
    "gti_mask",
    "open_datastore",
    "read_observations",
    "select_events_time",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
