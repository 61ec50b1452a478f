"""Convolutions chunk by chunk with a bounded halo: same maps, only the chunks a region needs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.signal import fftconvolve

import gammaxr
from gammaxr.estimators.excess_map import excess_map
from gammaxr.geom.halo import map_planes_with_halo
from gammaxr.reduce.ring import ring_background
from test_excess_map import make_dataset


def _same(block, kernel):
    return fftconvolve(block, kernel[None], mode="same", axes=(-2, -1))


def test_halo_equals_whole_plane_convolution():
    rng = np.random.default_rng(3)
    var = xr.DataArray(rng.random((2, 50, 70)), dims=("energy", "lat", "lon"))
    kernel = rng.random((9, 13))
    whole = map_planes_with_halo(var, _same, (4, 6), float, kernel=kernel)
    chunked = map_planes_with_halo(var.chunk({"lat": 16, "lon": 11}), _same, (4, 6), float, kernel=kernel)  # fmt: skip
    assert len(chunked.chunks[-1]) > 1 and len(chunked.chunks[-2]) > 1
    np.testing.assert_allclose(chunked.values, whole.values, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(whole.values, _same(var.values, kernel), rtol=1e-12)
    # a too-small halo would be wrong: the halo is what makes chunks agree
    short = map_planes_with_halo(var.chunk({"lat": 16, "lon": 11}), _same, (1, 1), float, kernel=kernel)  # fmt: skip
    assert not np.allclose(short.values, whole.values)


class _Reads:
    """Which chunks of a dask array are computed (a counting identity on each block)."""

    def __init__(self):
        self.blocks = set()

    def __call__(self, block, block_info=None):
        self.blocks.add(tuple(block_info[0]["chunk-location"]))
        return block


def test_region_of_excess_and_ring_maps_reads_neighbouring_chunks_only():
    ds = make_dataset(n_e=2, seed=5)
    size = ds.sizes["lat"]
    chunked = ds.chunk({"lat": 8, "lon": 8})
    reads = _Reads()
    counted = chunked.assign(counts=chunked["counts"].copy(data=chunked["counts"].data.map_blocks(reads, dtype=float)))  # fmt: skip
    n_chunks = int(np.prod([len(c) for c in chunked["counts"].data.chunks[-2:]]))
    m = excess_map(counted, 0.04)  # kernel of a few pixels: halo < one chunk
    middle = slice(size // 2 - 2, size // 2 + 2)
    part = m["significance"].isel(lat=middle, lon=middle).compute(scheduler="sync")
    spatial = {b[-2:] for b in reads.blocks}
    assert 0 < len(spatial) <= 9 < n_chunks  # the region's chunk and its neighbours
    full = excess_map(ds, 0.04)["significance"].isel(lat=middle, lon=middle)
    xr.testing.assert_allclose(part, full, rtol=1e-6, atol=1e-6)
    # ring background: same maps as whole planes
    on_off = ring_background(chunked, 0.1, 0.05).compute(scheduler="sync")
    eager = ring_background(ds, 0.1, 0.05)
    for name in ("counts_off", "acceptance_off"):
        np.testing.assert_allclose(on_off[name].values, eager[name].values, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("chunks", [16, 7])
def test_excess_map_of_chunked_store_equals_numpy(tmp_path, chunks):
    ds = make_dataset(n_e=2, seed=8)
    ds.chunk({"lat": chunks, "lon": chunks}).gamma.to_zarr(tmp_path / "m.zarr")
    stored = gammaxr.open_dataset(tmp_path / "m.zarr")
    assert len(stored["counts"].chunks[-1]) > 1
    lazy = excess_map(stored, 0.1).compute(scheduler="sync")
    eager = excess_map(ds, 0.1)
    for name in ("counts", "background", "excess", "significance"):
        np.testing.assert_allclose(lazy[name].values, eager[name].values, rtol=1e-6, atol=1e-6)
