"""Neighbourhood operations on ``(lat, lon)`` planes, chunk by chunk with a bounded halo.

A convolution with a kernel of half size ``(h_lat, h_lon)`` pixels needs, for each output
chunk, only the input chunk plus ``h`` pixels around it. :func:`map_planes_with_halo` applies
such an operation with :func:`dask.array.map_overlap` (zeros beyond the map edges, as an FFT
convolution in ``"same"`` mode), so an excess or ring-background map of a chunked all-sky
store computes any region from the chunks around it, never a whole sky plane. Numpy-backed
data is processed in one piece.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

__all__ = ["map_planes_with_halo"]

_PLANE = ("lat", "lon")


def map_planes_with_halo(
    var: xr.DataArray,
    func: Callable[..., np.ndarray],
    halo: tuple[int, int],
    dtype: Any,
    **kwargs: Any,
) -> xr.DataArray:
    """Apply ``func`` to the ``(lat, lon)`` planes of ``var`` with a halo of zeros.

    Parameters
    ----------
    var : xarray.DataArray
        Map(s) with dims ``lat`` and ``lon`` (any others are carried along); numpy- or
        dask-backed.
    func : callable
        ``func(block, **kwargs)`` with ``block`` of shape ``(..., n_lat, n_lon)`` (the plane
        dims last) returning an array of that shape; an output pixel may depend on input
        pixels up to ``halo`` away (e.g. an FFT convolution in ``"same"`` mode).
    halo : tuple of int
        Half sizes ``(h_lat, h_lon)`` in pixels of the neighbourhood ``func`` needs.
    dtype : numpy dtype
        Output dtype.
    **kwargs
        Passed to ``func``.

    Returns
    -------
    xarray.DataArray
        Same dims and coordinates as ``var`` (no attrs; chunks as ``var``, except chunks
        smaller than the halo, merged with a neighbour); lazy if ``var`` is, each
        output chunk computed from its input chunk and the neighbours within the halo.
    """
    order = [d for d in var.dims if d not in _PLANE] + list(_PLANE)
    if not isinstance(var.data, da.Array):  # numpy: one call, no DataArray built in between
        planes = np.asarray(var.variable.transpose(*order).data)
        out = np.asarray(func(planes, **kwargs), dtype=dtype)
        result = var.copy(data=out.transpose([order.index(d) for d in var.dims]), deep=False)
        result.attrs, result.name = {}, None
        return result
    planes = var.transpose(*order)
    data = planes.data
    if max(len(c) for c in data.chunks[-2:]) == 1:
        # whole planes in each chunk: no halo needed (and the same numbers as numpy)
        out = da.map_blocks(func, data, dtype=dtype, **kwargs)
    else:
        n = data.ndim
        depth = {n - 2: int(halo[0]), n - 1: int(halo[1])}
        out = da.map_overlap(func, data, depth=depth, boundary=0, trim=True, dtype=dtype, **kwargs)
    result = xr.DataArray(out, dims=planes.dims, coords=planes.coords)
    return result.transpose(*var.dims)
