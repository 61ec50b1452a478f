"""Where a cutout lands in a large parent grid, and how it splits over the parent's chunks.

A survey mosaic (:mod:`gammaxr.reduce.mosaic`) reduces each run on a cutout of a parent grid
(the whole sky) and adds it into the parent's zarr chunks. This module holds the geometry of
that: :func:`place_cutout` (the cutout, continuous across the lon seam of a full-circle
parent), :func:`chunk_parts` (the pieces of the cutout that fall in each parent chunk) and
:func:`chunk_columns` (the cutout columns in each parent chunk column: a run near a pole of an
all-sky grid covers every longitude, and is reduced a few chunk columns at a time).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from gammaxr.geom.cutout import _sub
from gammaxr.geom.grid import SkyGrid

__all__ = ["ChunkPart", "Placement", "chunk_columns", "chunk_parts", "place_cutout"]


@dataclass(frozen=True)
class Placement:
    """A cutout grid and the parent pixels it covers.

    Attributes
    ----------
    grid : SkyGrid
        The cutout (an exact sub-grid of the parent, or of the parent with its lon seam moved).
    rows : slice
        Parent rows (lat) of the cutout.
    cols : numpy.ndarray of int
        Parent column (lon) of each cutout column: contiguous, or two runs of columns across a
        full-circle parent's seam.
    """

    grid: SkyGrid
    rows: slice
    cols: np.ndarray

    def pieces(self) -> list[tuple[slice, slice]]:
        """(cutout column slice, parent column slice) of each contiguous run of columns."""
        breaks = np.flatnonzero(np.diff(self.cols) != 1) + 1
        bounds = [0, *breaks.tolist(), self.cols.size]
        return [
            (slice(a, b), slice(int(self.cols[a]), int(self.cols[b - 1]) + 1))
            for a, b in itertools.pairwise(bounds)
        ]

    def sub(self, cut_rows: slice, cut_cols: slice) -> Placement:
        """The sub-placement of cutout rows ``cut_rows`` and columns ``cut_cols``."""
        start, stop, _ = cut_rows.indices(self.rows.stop - self.rows.start)
        rows = slice(self.rows.start + start, self.rows.start + stop)
        return Placement(_sub(self.grid, cut_rows, cut_cols), rows, self.cols[cut_cols])


def _rolled(parent: SkyGrid, shift: int) -> SkyGrid:
    """The same full-circle grid with its lon seam moved by ``shift`` columns."""
    lon = np.concatenate([parent.lon[shift:], parent.lon[:shift] + 360.0])
    return SkyGrid(lon, parent.lat, parent.frame, parent.lon_step, parent.lat_step)


def place_cutout(parent: SkyGrid, center, radius: float) -> Placement:
    """Cutout of ``parent`` holding every pixel within ``radius`` deg of ``center``.

    Parameters
    ----------
    parent : SkyGrid
        The parent grid.
    center : astropy.coordinates.SkyCoord or (float, float)
        Centre of the cutout (a tuple is in the parent's frame, deg).
    radius : float
        Radius in deg.

    Returns
    -------
    Placement
        On a full-circle parent a cutout across the lon seam is made continuous (on the grid
        with the seam moved to the opposite side).

    Raises
    ------
    ValueError
        If the cutout misses the parent.
    """
    cut = parent.cutout(center, radius=radius)
    sl = cut.slices_in(parent)
    n = parent.lon.size
    cols = np.arange(sl["lon"].start, sl["lon"].stop)
    if parent.is_full_circle and cols.size < n and (cols[0] == 0 or cols[-1] == n - 1):
        shift = n // 2
        rolled = _rolled(parent, shift)
        cut = rolled.cutout(center, radius=radius)
        sl = cut.slices_in(rolled)
        cols = (np.arange(sl["lon"].start, sl["lon"].stop) + shift) % n
    return Placement(cut, sl["lat"], cols)


class ChunkPart(NamedTuple):
    """The piece of a placement inside one parent chunk."""

    chunk: tuple[int, int]
    """(row, column) index of the parent chunk."""
    bounds: tuple[int, int, int, int]
    """Parent pixels of the piece: (row start, row stop, column start, column stop)."""
    cut_rows: slice
    """The piece's rows in the placement's cutout."""
    cut_cols: slice
    """The piece's columns in the placement's cutout."""

    @property
    def key(self) -> str:
        """A name of the piece unique within its parent grid: ``i-j.r0.r1.c0.c1``."""
        return "{}-{}.{}.{}.{}.{}".format(*self.chunk, *self.bounds)


def _chunk_columns(place: Placement, ch_c: int):
    """(chunk column j, parent column start, stop, cutout column start) of each chunk column
    the placement reaches, in cutout column order."""
    for cut_cols, cols in place.pieces():
        for j in range(cols.start // ch_c, (cols.stop - 1) // ch_c + 1):
            c0, c1 = max(cols.start, j * ch_c), min(cols.stop, (j + 1) * ch_c)
            yield j, c0, c1, cut_cols.start + c0 - cols.start


def chunk_parts(place: Placement, chunks: tuple[int, int]) -> list[ChunkPart]:
    """The pieces of a placement in each parent chunk of ``chunks`` (rows, columns) pixels.

    Parameters
    ----------
    place : Placement
        A cutout placed in its parent (or a band of it).
    chunks : (int, int)
        Chunk edge of the parent grid in pixels (lat, lon).

    Returns
    -------
    list of ChunkPart
        In cutout column order; a chunk holds several parts only when the cutout's columns
        reach it on both sides of a full-circle parent's seam.
    """
    out = []
    rows, (ch_r, ch_c) = place.rows, chunks
    for j, c0, c1, k0 in _chunk_columns(place, ch_c):
        for i in range(rows.start // ch_r, (rows.stop - 1) // ch_r + 1):
            r0, r1 = max(rows.start, i * ch_r), min(rows.stop, (i + 1) * ch_r)
            cut_rows = slice(r0 - rows.start, r1 - rows.start)
            out.append(ChunkPart((i, j), (r0, r1, c0, c1), cut_rows, slice(k0, k0 + c1 - c0)))
    return out


def chunk_columns(place: Placement, ch_c: int) -> list[slice]:
    """The cutout columns of ``place`` in each parent chunk column (chunks ``ch_c`` pixels
    wide), in cutout order: consecutive slices covering the cutout; every
    :class:`ChunkPart` of :func:`chunk_parts` lies in exactly one of them."""
    return [slice(k0, k0 + c1 - c0) for _, c0, c1, k0 in _chunk_columns(place, ch_c)]
