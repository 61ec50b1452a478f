"""One run's contribution to a survey mosaic, reduced on its cutout one band at a time.

:func:`gammaxr.reduce.mosaic.add_runs_to_mosaic` reduces each run on the cutout of the parent
grid around its pointing (radius ``offset_max`` plus one pixel). The cutout is reduced in
bands: one parent chunk column each, trimmed to the rows that hold a pixel within
``offset_max`` (or, on the IRF grid, a pixel of the run's footprint), neighbours with the
same rows merged up to :data:`BAND_VALUES` map values. Memory so stays bounded and no work is
spent beyond ``offset_max``, even for a run near a pole of an all-sky grid: its cutout covers
every longitude (219 x 18000 pixels at 0.02 deg for a pointing 2 deg from the pole, 60 times
a run near the equator), but at most longitudes only the few rows nearest the pole are within
``offset_max``.

What a band holds equals the same pixels of the run reduced on its whole cutout, as
:func:`~gammaxr.reduce.stack.stack_runs` would stack it: the safe energy range is decided once
on the cutout, the events are binned once on the cutout (so an event on a band edge counts
once), and every other map is a function of the pixel alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pandas as pd

from gammaxr.data.validation import validate_observation
from gammaxr.geom.grid import SkyGrid
from gammaxr.geom.placement import Placement, chunk_columns, place_cutout
from gammaxr.reduce.dataset import (
    ReductionSpec,
    irf_maps,
    observation_maps,
    run_energy_range,
    run_events,
    run_safe_mask,
    safe_energy_inputs,
)
from gammaxr.reduce.maps import bin_counts, event_bins

__all__ = ["IRF_MAPS", "OutsideGridError", "RunCutout", "SUMMED"]

#: Maps summed over runs (masked by the run's safe mask / spatial footprint).
SUMMED = ("counts", "background", "exposure")
#: Maps on the coarse IRF grid, averaged with the exposure as weights.
IRF_MAPS = ("psf", "edisp")
#: Map values (pixels times energy / rad bins, all maps together) reduced at once: a band of
#: 2**24 values is 64 MB in float32.
BAND_VALUES = 2**24


class OutsideGridError(ValueError):
    """The run's cutout does not overlap the parent grid."""


class RunCutout:
    """One run on its cutout of a mosaic's parent grid.

    Parameters
    ----------
    observation : gammaxr.data.Observation
        The run (read and validated here).
    spec : ReductionSpec
        The mosaic's spec (``spec.grid`` is the parent grid).
    irf_parent : SkyGrid or None
        The parent's IRF grid (None if the spec makes no PSF / edisp maps).
    radius : float
        Cutout radius in deg.

    Raises
    ------
    OutsideGridError
        If the cutout misses the parent grid (before the run's files are read).
    """

    def __init__(self, observation, spec: ReductionSpec, irf_parent: SkyGrid | None, radius):
        pointing = observation.pointing
        try:
            self.fine = place_cutout(spec.grid, pointing, radius)
        except ValueError as exc:
            raise OutsideGridError(f"outside the parent grid: {exc}") from None
        self.spec, self.irf_parent = spec, irf_parent
        self.obs = validate_observation(observation.read(spec.hdus()), spec.hdus())
        self.irf = place_cutout(irf_parent, pointing, radius) if spec.irf_maps else None
        self.offset = self.fine.grid.separation_values(pointing)
        fine_maps = tuple(m for m in ("background", "exposure") if m in spec.maps)
        self._band_spec = replace(spec, maps=fine_maps)
        inputs = safe_energy_inputs(
            self.obs, spec, self.fine.grid, self._range_inputs(), offset=self.offset
        )
        self.energy_range = run_energy_range(spec, inputs)
        if "counts" in spec.maps:
            self._events = event_bins(*run_events(self.obs, spec), self.fine.grid, spec.energy)
        self.spatial = np.zeros(self.fine.grid.shape, dtype=bool)
        """The run's spatial safe footprint on the cutout (filled by :meth:`fine_bands`)."""

    def _range_inputs(self) -> dict:
        """The maps the safe energy range looks at: only ``bkg-peak`` with DL4 inputs needs
        one, the background summed over the cutout (summed band by band here)."""
        spec = self.spec
        if "bkg-peak" not in spec.safe_mask or spec.safe_mask_irfs != "DL4":
            return {}
        total = 0.0
        spec_bkg = replace(spec, maps=("background",))
        everywhere = np.ones(self.fine.grid.shape, dtype=bool)
        for rows, cols in _bands(self.fine, everywhere, (1, 1), len(spec.energy)):
            grid = self.fine.sub(rows, cols).grid
            bkg = observation_maps(self.obs, spec_bkg, grid, self.offset[rows, cols])
            total = total + bkg["background"].sum(axis=(1, 2), dtype=float)
        return {"background": np.asarray(total)[:, None, None]}

    def fine_bands(self, chunks: tuple[int, int]) -> Iterator[tuple[Placement, dict]]:
        """The run's maps on the fine grid, one band of whole chunk columns at a time.

        Parameters
        ----------
        chunks : (int, int)
            Chunk edge of the parent grid in pixels (lat, lon).

        Yields
        ------
        band : Placement
            The band's placement in the parent.
        arrays : dict of str to numpy.ndarray
            What the run adds to the store there: ``counts``/``background`` where
            ``mask_safe``, ``exposure`` where the spatial footprint, and ``mask_safe``.
        """
        spec = self.spec
        n_e, n_et = len(spec.energy) - 1, len(spec.energy_true) - 1
        near = self.offset < spec.offset_max
        for rows, cols in _bands(self.fine, near, chunks, 3 * n_e + n_et):
            offset = self.offset[rows, cols]
            band = self.fine.sub(rows, cols)
            arrays = observation_maps(self.obs, self._band_spec, band.grid, offset)
            if "counts" in spec.maps:
                arrays["counts"] = self._counts(rows, cols)
            mask = run_safe_mask(spec, offset, arrays.get("background"), self.energy_range)
            spatial = mask.any(axis=0)
            self.spatial[rows, cols] = spatial
            out = {"mask_safe": mask}
            for name in SUMMED:
                if name in arrays:
                    where = spatial[None] if name == "exposure" else mask
                    out[name] = np.where(where, arrays[name], 0).astype(arrays[name].dtype)
            yield band, out

    def _counts(self, rows: slice, cols: slice) -> np.ndarray:
        """Counts cube of cutout pixels ``rows``, ``cols`` from the events binned on the
        cutout."""
        i_e, i_lat, i_lon = self._events
        inside = (i_lon >= cols.start) & (i_lon < cols.stop)
        inside &= (i_lat >= rows.start) & (i_lat < rows.stop)
        shape = (len(self.spec.energy) - 1, rows.stop - rows.start, cols.stop - cols.start)
        return bin_counts(
            i_e[inside], i_lat[inside] - rows.start, i_lon[inside] - cols.start, shape
        )

    def irf_bands(self, chunks: tuple[int, int]) -> Iterator[tuple[Placement, dict]]:
        """The run's IRF maps on the IRF grid, one band at a time; call after
        :meth:`fine_bands` is exhausted (it needs the whole spatial footprint).

        Yields
        ------
        band : Placement
            The band's placement in the parent's IRF grid.
        arrays : dict of str to numpy.ndarray
            ``exposure_irf`` times the footprint (the weights) and the run's ``psf``/``edisp``.
        """
        spec = self.spec
        n_e, n_et = len(spec.energy) - 1, len(spec.energy_true) - 1
        per_pixel = n_et * (1 + ("psf" in spec.maps) * (len(spec.rad) - 1))
        per_pixel += n_et * n_e * ("edisp" in spec.maps)
        foot = self._footprint_on_irf(self.irf)
        for rows, cols in _bands(self.irf, foot, chunks, per_pixel):
            band = self.irf.sub(rows, cols)
            maps = irf_maps(self.obs, spec, band.grid)
            maps["exposure_irf"] = np.where(foot[None, rows, cols], maps["exposure_irf"], 0)
            yield band, maps

    def _footprint_on_irf(self, irf: Placement) -> np.ndarray:
        """The spatial footprint on an IRF placement: its value at the nearest parent pixel
        (as :func:`gammaxr.reduce.stack.stack_runs` does on the whole grid); False where that
        pixel is outside the fine cutout (beyond ``offset_max``)."""
        parent, fine = self.spec.grid, self.fine
        lat_near = pd.Index(parent.lat).get_indexer(self.irf_parent.lat[irf.rows], method="nearest")
        lon_near = pd.Index(parent.lon).get_indexer(self.irf_parent.lon[irf.cols], method="nearest")
        row_map = np.full(parent.lat.size, -1)
        row_map[fine.rows] = np.arange(fine.rows.stop - fine.rows.start)
        col_map = np.full(parent.lon.size, -1)
        col_map[fine.cols] = np.arange(fine.cols.size)
        r, c = row_map[lat_near], col_map[lon_near]
        inside = (r >= 0)[:, None] & (c >= 0)[None, :]
        return inside & self.spatial[np.maximum(r, 0)[:, None], np.maximum(c, 0)[None, :]]


def _bands(
    place: Placement, inside: np.ndarray, chunks: tuple[int, int], per_pixel: int
) -> list[tuple[slice, slice]]:
    """Where to reduce a cutout: (rows, columns) of the cutout, one band per parent chunk
    column trimmed to the rows holding a pixel of ``inside`` (chunk columns without one are
    left out), neighbours with the same rows merged (never across a full-circle parent's
    seam) while a band holds at most :data:`BAND_VALUES` values (``per_pixel`` values per
    pixel)."""
    out: list[tuple[slice, slice]] = []
    for cols in chunk_columns(place, chunks[1]):
        found = np.flatnonzero(inside[:, cols].any(axis=1))
        if found.size == 0:
            continue
        rows = slice(int(found[0]), int(found[-1]) + 1)
        previous = out[-1][1] if out else None
        if (
            previous is not None
            and out[-1][0] == rows
            and previous.stop == cols.start
            and place.cols[cols.start] == place.cols[previous.stop - 1] + 1  # not the seam
        ):
            merged = slice(out[-1][1].start, cols.stop)
            if (rows.stop - rows.start) * (merged.stop - merged.start) * per_pixel <= BAND_VALUES:
                out[-1] = (rows, merged)
                continue
        out.append((rows, cols))
    return out
