"""Direct whole-chunk I/O (gammaxr.io.chunk_files) reads and writes what zarr-python does."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from gammaxr.io.chunk_files import ChunkFiles, supports
from gammaxr.io.mosaic_store import CHUNK_CODEC


@pytest.mark.parametrize("dtype", ["float32", "bool"])
def test_round_trip_with_zarr_including_edge_chunks(tmp_path, dtype):
    rng = np.random.default_rng(3)
    # 3 x 2 chunks of 8 x 10 pixels; the last row and column of chunks are partial
    arr = zarr.create_array(
        tmp_path / "a", shape=(3, 21, 17), chunks=(3, 8, 10), dtype=dtype,
        compressors=[CHUNK_CODEC], fill_value=False if dtype == "bool" else 0.0,
    )  # fmt: skip
    assert supports(arr)
    files = ChunkFiles(tmp_path, "a", arr)
    values = rng.random((3, 13, 17)) > 0.5 if dtype == "bool" else rng.random((3, 13, 17))
    files.write((8, 21, 0, 17), values)  # the last two rows of chunks, edges included
    np.testing.assert_array_equal(arr[:, 8:, :], values.astype(dtype))
    assert not arr[:, :8, :].any()  # never written: the fill value
    # zarr writes, the direct reader reads (absent chunks as the fill value)
    arr[:, :8, :10] = values[:, :8, :10]
    got = files.read((0, 21, 0, 17))
    np.testing.assert_array_equal(got[:, :8, :10], values[:, :8, :10].astype(dtype))
    np.testing.assert_array_equal(got[:, 8:], values.astype(dtype))
    assert not got[:, :8, 10:].any()
    assert files.whole_chunks((8, 21, 10, 17)) and not files.whole_chunks((0, 5, 0, 10))
    with pytest.raises(ValueError, match="not made of whole chunks"):
        files.read((0, 5, 0, 10))


def test_other_layouts_are_left_to_zarr(tmp_path):
    zstd = zarr.create_array(
        tmp_path / "z", shape=(4, 4), chunks=(2, 2), dtype="f4", compressors=[ZstdCodec()]
    )
    split = zarr.create_array(
        tmp_path / "s", shape=(4, 4, 4), chunks=(2, 2, 2), dtype="f4",
        compressors=[BloscCodec(cname="lz4")],
    )  # fmt: skip
    assert not supports(zstd) and not supports(split)  # other codec; chunked leading dim
    with pytest.raises(ValueError, match="not handled"):
        ChunkFiles(tmp_path, "z", zstd)


def test_pickled_chunk_files_write_the_same_chunks(tmp_path):
    """A ChunkFiles made once (in a mosaic's plan) and pickled into tasks holds no open
    array and writes what the original does."""
    import pickle

    arr = zarr.create_array(
        tmp_path / "a", shape=(2, 16, 16), chunks=(2, 8, 8), dtype="float32",
        compressors=[CHUNK_CODEC], fill_value=0.0,
    )  # fmt: skip
    files = ChunkFiles(tmp_path, "a", arr)
    blob = pickle.dumps(files)
    assert len(blob) < 1000 and b"ArrayV3Metadata" not in blob
    copy = pickle.loads(blob)
    values = np.arange(2 * 8 * 16, dtype="float32").reshape(2, 8, 16)
    copy.write((8, 16, 0, 16), values)
    np.testing.assert_array_equal(arr[:, 8:, :], values)
    np.testing.assert_array_equal(files.read((8, 16, 0, 16)), values)
