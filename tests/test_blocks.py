"""A numpy function block by block: dask arrays aligned chunk for chunk, numpy arrays cut
into contiguous blocks."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

from gammaxr._blocks import aligned_blocks, block_view, contiguous_blocks, map_aligned_blocks


def test_inputs_are_broadcast_and_rechunked_alike():
    a = da.from_array(np.arange(24.0).reshape(2, 3, 4), chunks=(1, 3, 4))
    b = np.arange(4.0)  # numpy, broadcast over the first two dims
    c = da.from_array(np.ones((2, 3, 4)), chunks=(2, 1, 4))
    blocks = aligned_blocks([a, b, c])
    assert all(x.shape == (2, 3, 4) for x in blocks)
    assert len({x.chunks for x in blocks}) == 1
    np.testing.assert_array_equal(blocks[1].compute(), np.broadcast_to(b, (2, 3, 4)))


def test_one_call_per_block_for_several_outputs_and_for_one():
    calls = []

    def two(x, y):
        calls.append(x.shape)
        return x + y, x * y

    x = da.from_array(np.arange(12.0).reshape(3, 4), chunks=(1, 4))
    y = np.full((3, 4), 2.0)
    blocks = aligned_blocks([x, y])
    total, product = map_aligned_blocks(two, blocks, 2)
    calls.clear()
    with dask.config.set(scheduler="sync"):
        total, product = dask.compute(total, product)
    assert calls == [(1, 4)] * 3  # one call per block gives both outputs
    np.testing.assert_array_equal(total, np.arange(12.0).reshape(3, 4) + 2.0)
    np.testing.assert_array_equal(product, 2.0 * np.arange(12.0).reshape(3, 4))
    (alone,) = map_aligned_blocks(lambda x, y: x - y, blocks, 1)
    np.testing.assert_array_equal(alone.compute(), np.arange(12.0).reshape(3, 4) - 2.0)


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (7, 11), (1, 1, 9), (2, 1, 3, 1), (), (4, 0, 2)])
@pytest.mark.parametrize("pixels", [1, 5, 24, 1000])
def test_blocks_of_cover_every_element_once(shape, pixels):
    seen = np.zeros(shape, dtype=int)
    for where in contiguous_blocks(shape, pixels):
        block = seen[where]
        assert block.size <= max(pixels, shape[-1] if shape else 1)
        seen[where] += 1
    assert (seen == 1).all()


def test_block_views_broadcast_as_the_whole_arrays():
    full = np.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    per_band = np.arange(3.0).reshape(1, 3, 1, 1)
    plane = np.arange(20.0).reshape(4, 5)
    for where in contiguous_blocks(full.shape, 7):
        parts = [block_view(a, 4, where) for a in (full, per_band, plane, 2.0)]
        assert all(
            np.shares_memory(p, a) for p, a in zip(parts[:3], (full, per_band, plane), strict=True)
        )
        expected = (full + per_band * plane * 2.0)[where]
        np.testing.assert_array_equal(parts[0] + parts[1] * parts[2] * parts[3], expected)
