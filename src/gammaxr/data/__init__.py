"""DL3 data access: data stores, observation selection and lazy observations."""

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
