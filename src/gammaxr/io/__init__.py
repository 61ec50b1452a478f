"""Readers and writers: GADF DL3 FITS (events, GTIs, IRFs, index tables) and zarr stores.

zarr (:mod:`~gammaxr.io.zarr_store`): :func:`to_zarr` and :func:`open_dataset`.
GADF reading (:mod:`~gammaxr.io.gadf`, :mod:`~gammaxr.io.irf_fits`): :func:`read_obs_index`,
:func:`read_hdu_index`, :func:`read_events_hdu`, :func:`read_gti_hdu`, :func:`read_irf_hdu`,
:func:`read_hdu`, :func:`read_header`, :func:`open_fits`. GADF writing
(:mod:`~gammaxr.io.gadf_write`): :func:`irf_to_hdu`, :func:`events_to_hdu`,
:func:`gti_to_hdu`, :func:`obs_index_to_hdu`, :func:`hdu_index_to_hdu`, :func:`write_fits`,
:func:`write_index_files`, :func:`replace_hdus`. Errors: :mod:`~gammaxr.io.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gammaxr._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from gammaxr.io.errors import DL3Error
    from gammaxr.io.gadf import (
        open_fits,
        read_events_hdu,
        read_gti_hdu,
        read_hdu,
        read_hdu_index,
        read_header,
        read_obs_index,
    )
    from gammaxr.io.gadf_write import (
        events_to_hdu,
        gti_to_hdu,
        hdu_index_to_hdu,
        irf_to_hdu,
        obs_index_to_hdu,
        replace_hdus,
        write_fits,
        write_index_files,
    )
    from gammaxr.io.irf_fits import read_irf_hdu
    from gammaxr.io.zarr_store import open_dataset, to_zarr

__all__ = [
    "DL3Error",
    "events_to_hdu",
    "gti_to_hdu",
    "hdu_index_to_hdu",
    "irf_to_hdu",
    "obs_index_to_hdu",
    "open_dataset",
    "open_fits",
    "read_events_hdu",
    "read_gti_hdu",
    "read_hdu",
    "read_hdu_index",
    "read_header",
    "read_irf_hdu",
    "read_obs_index",
    "replace_hdus",
    "to_zarr",
    "write_fits",
    "write_index_files",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
