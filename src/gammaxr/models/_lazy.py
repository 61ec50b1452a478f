"""Apply numpy-only functions element-wise to numpy, dask or xarray inputs, lazily."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from dask.base import is_dask_collection

__all__ = ["apply_elementwise", "is_lazy_or_labelled"]


def is_lazy_or_labelled(*arrays: Any) -> bool:
    """Whether any input is a dask collection or an xarray object."""
    return any(isinstance(a, xr.DataArray) or is_dask_collection(a) for a in arrays)


def apply_elementwise(func, *arrays: Any):
    """``func(*arrays)`` for a numpy function of broadcastable float arrays.

    xarray inputs go through ``xr.apply_ufunc`` (``dask="parallelized"``), dask arrays through
    ``map_blocks`` (one task per chunk), numpy-like inputs are converted to float arrays.
    Nothing is computed.
    """
    if any(isinstance(a, xr.DataArray) for a in arrays):
        return xr.apply_ufunc(func, *arrays, dask="parallelized", output_dtypes=[float])
    if any(is_dask_collection(a) for a in arrays):
        import dask.array as da

        blocks = da.broadcast_arrays(*(da.asarray(a) for a in arrays))
        return da.map_blocks(func, *blocks, dtype=float)
    return func(*(np.asarray(a, dtype=float) for a in arrays))
