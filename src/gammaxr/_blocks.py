"""A numpy function applied block by block: to dask arrays aligned chunk for chunk, or to
numpy arrays cut into contiguous blocks.

Used where one task per block should run several numpy steps that produce several outputs
(the convolution of every map of a block in :mod:`gammaxr.estimators.smoothing`, the
statistics of :func:`gammaxr.estimators.excess_map`), instead of a task per operation; and
where numpy code runs block by block on every core with block-sized temporaries (the
statistics of large numpy maps, :func:`contiguous_blocks`, :func:`block_view`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np

__all__ = ["aligned_blocks", "block_view", "contiguous_blocks", "map_aligned_blocks"]


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


def contiguous_blocks(shape: tuple[int, ...], pixels: int) -> list[tuple[int | slice, ...]]:
    """Index tuples cutting an array of ``shape`` into blocks of about ``pixels`` elements,
    each contiguous in C order.

    Parameters
    ----------
    shape : tuple of int
        The array's shape.
    pixels : int
        Elements per block, at most (a single last-axis row holding more is one block).

    Returns
    -------
    list of tuple
        In order, each an index (integers, then one slice) selecting a block: a range along
        the first axis whose trailing axes hold at most ``pixels`` elements, whole trailing
        axes, one index along every axis before it. Together they cover every element once.
    """
    if not shape:  # a 0-d array: one block
        return [()]
    for axis in range(len(shape)):
        trailing = math.prod(shape[axis + 1 :])
        if trailing <= pixels:
            break
    step = max(1, pixels // max(trailing, 1))
    return [
        (*index, slice(start, start + step))
        for index in np.ndindex(*shape[:axis])
        for start in range(0, shape[axis], step)
    ]


def block_view(array: Any, ndim: int, where: tuple[int | slice, ...]) -> Any:
    """The part of ``array`` that falls in the block ``where`` of the broadcast arrays.

    Parameters
    ----------
    array : numpy.ndarray or scalar
        Broadcastable to an array of ``ndim`` dims (trailing axes aligned, as numpy does).
    ndim : int
        The dims of the broadcast arrays.
    where : tuple
        A block of them, from :func:`contiguous_blocks`.

    Returns
    -------
    numpy.ndarray
        A view; axes of length 1 (broadcast) are kept whole, so the parts of several arrays
        in one block broadcast against each other as the whole arrays do.
    """
    array = np.asarray(array)
    offset = ndim - array.ndim  # numpy broadcasting aligns the trailing axes
    index = []
    for axis, item in enumerate(where):
        if axis < offset:
            continue
        if array.shape[axis - offset] == 1:
            item = slice(None) if isinstance(item, slice) else 0
        index.append(item)
    return array[tuple(index)]
