"""Run a numpy elementwise kernel on numpy, dask or xarray inputs without computing anything.

Every statistic in :mod:`gammaxr.stats` is written once as a numpy kernel (free to use
``np.where``, boolean indexing or vectorised root finding) and applied through
:func:`elementwise`:

- numpy arrays and Python scalars: the kernel is called directly (0-d results become
  numpy scalars);
- dask arrays: :func:`dask.array.apply_gufunc` with a scalar core signature, one kernel call
  per block (lazy; inputs broadcast against each other as numpy does);
- xarray ``DataArray``/``Dataset``: :func:`xarray.apply_ufunc` (``dask="parallelized"``), so
  dims are aligned and broadcast by name and dask-backed data stays lazy.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.array import Array as DaskArray

__all__ = ["as_float", "elementwise"]


def as_float(x: Any) -> np.ndarray:
    """``x`` as a float64 numpy array (inside a kernel: inputs are numpy there)."""
    return np.asarray(x, dtype=np.float64)


def elementwise(kernel: Callable[..., np.ndarray], *arrays: Any, **kwargs: Any) -> Any:
    """Apply an elementwise numpy ``kernel`` to ``arrays`` of any supported kind.

    Parameters
    ----------
    kernel : callable
        ``kernel(*numpy_arrays, **kwargs) -> numpy.ndarray`` (float64, broadcast shape).
    *arrays : scalar, numpy.ndarray, dask.array.Array, xarray.DataArray or xarray.Dataset
        Inputs, broadcast against each other.
    **kwargs
        Scalar options passed to the kernel unchanged.

    Returns
    -------
    numpy scalar, numpy.ndarray, dask.array.Array or xarray object
        Same kind as the richest input (xarray > dask > numpy); lazy for dask inputs.
    """
    if any(isinstance(a, (xr.DataArray, xr.Dataset, xr.Variable)) for a in arrays):
        return xr.apply_ufunc(
            kernel,
            *arrays,
            kwargs=kwargs,
            dask="parallelized",
            output_dtypes=[np.float64],
        )
    if any(isinstance(a, DaskArray) for a in arrays):
        # broadcast first: inputs may differ in shape and chunks (one task per output chunk)
        blocks = da.broadcast_arrays(*(da.asarray(a) for a in arrays))
        return da.map_blocks(partial(kernel, **kwargs), *blocks, dtype=np.float64)
    out = kernel(*arrays, **kwargs)
    return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out
