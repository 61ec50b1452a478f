"""Geometry: binned axes, regular sky grids, cutouts, region masks and FoV coordinates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gammaxr._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from gammaxr.geom.axes import (
        LOG_AXES,
        axis_coords,
        axis_edges,
        axis_lo_hi,
        bounds_name,
        energy_axis,
    )
    from gammaxr.geom.cutout import cutout_grid, downsample_grid, grid_slices, upsample_grid
    from gammaxr.geom.fov import fov_to_sky, sky_to_fov
    from gammaxr.geom.grid import SkyGrid
    from gammaxr.geom.regions import exclusion_mask, parse_regions, region_mask, regions_to_string
    from gammaxr.geom.sky import FRAMES, angular_separation, transform_lonlat

__all__ = [
    "FRAMES",
    "LOG_AXES",
    "SkyGrid",
    "angular_separation",
    "axis_coords",
    "axis_edges",
    "axis_lo_hi",
    "bounds_name",
    "cutout_grid",
    "downsample_grid",
    "energy_axis",
    "exclusion_mask",
    "fov_to_sky",
    "grid_slices",
    "parse_regions",
    "region_mask",
    "regions_to_string",
    "sky_to_fov",
    "transform_lonlat",
    "upsample_grid",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
