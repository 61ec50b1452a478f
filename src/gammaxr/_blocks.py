"""A numpy function applied block by block to dask arrays aligned chunk for chunk.

Used where one task per block should run several numpy steps that produce several outputs
(the convolution of every map of a block in :mod:`gammaxr.estimators.smoothing`, the
statistics of :func:`gammaxr.estimators.excess_map`), instead of a task per operation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np

__all__ = ["aligned_blocks", "map_aligned_blocks"]


def aligned_blocks(arrays: Sequence[Any]) -> list[da.Array]:
    """``arrays`` (numpy or dask) as dask arrays of one broadcast shape and the same chunks.

    Parameters
    ----------
    arrays : sequence of array_like
        Broadcastable against each other.

    Returns
    -------
    list of dask.array.Array
        In order, each of the broadcast shape, rechunked where their chunks differed.
    """
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    blocks = [da.broadcast_to(da.asarray(a), shape) for a in arrays]
    index = tuple(range(len(shape)))
    _, blocks = da.core.unify_chunks(*[x for b in blocks for x in (b, index)])
    return list(blocks)


def map_aligned_blocks(
    func: Callable[..., Any], blocks: Sequence[da.Array], n_outputs: int, **kwargs: Any
) -> tuple[da.Array, ...]:
    """``func`` on every block of ``blocks`` (from :func:`aligned_blocks`): one task per block.

    Parameters
    ----------
    func : callable
        ``func(*numpy_blocks, **kwargs)``: a tuple of ``n_outputs`` float64 arrays of the
        blocks' shape (a single array if ``n_outputs`` is 1).
    blocks : sequence of dask.array.Array
        One shape, the same chunks.
    n_outputs : int
        Number of outputs of ``func``.
    **kwargs
        Passed to ``func``.

    Returns
    -------
    tuple of dask.array.Array
        The ``n_outputs`` outputs, float64, chunked as the blocks; each taken from the
        task's tuple without a copy.
    """
    signature = ",".join(["()"] * len(blocks)) + "->" + ",".join(["()"] * n_outputs)
    out = da.apply_gufunc(
        func,
        signature,
        *blocks,
        output_dtypes=[np.float64] * n_outputs if n_outputs > 1 else np.float64,
        **kwargs,
    )
    return tuple(out) if n_outputs > 1 else (out,)
