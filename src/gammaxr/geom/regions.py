"""Pixel masks of sky regions (``regions`` package shapes) on a :class:`SkyGrid`.

How each shape is evaluated at the pixel centres:

- ``CircleSkyRegion`` and ``CircleAnnulusSkyRegion``: exactly, from the angular separation
  (``inner <= sep < outer``, boundary excluded as in ``regions``), in any frame;
- spherical regions (``regions >= 0.12``, e.g. ``PolygonSphericalSkyRegion``): their own
  exact ``contains``;
- compound regions (``r1 | r2``, ``r1 & r2``, ...): each part as here, then combined;
- every other sky shape (rectangle, ellipse, polygon, ...): ``region.contains`` with a gnomonic
  (TAN) WCS in the region's own frame centred on the region. Sizes and angles of the shape are
  then measured on the sky at its centre, independently of the grid, and polygon edges are
  great circles (straight lines in TAN). Pixels 90 deg or more from the centre are outside.

Regions may be kept as strings (DS9 or CRTF, see :func:`regions_to_string`) in dataset attrs
and turned into masks directly: ``region_mask(grid, "icrs; circle(83.63, 22.01, 0.2)")``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import astropy.units as u
import numpy as np
import regions as rg
import xarray as xr
from astropy.coordinates import SkyCoord
from astropy.wcs.utils import celestial_frame_to_wcs

from gammaxr.geom.grid import SkyGrid
from gammaxr.geom.sky import angular_separation, transform_lonlat

__all__ = ["exclusion_mask", "parse_regions", "region_mask", "regions_to_string"]

_SPHERICAL = getattr(rg, "SphericalSkyRegion", None)
#: TAN pixel scale of the local projection (deg); any value works, this keeps numbers modest.
_LOCAL_SCALE = 1.0 / 3600.0
#: Pixels at least this far (deg) from a projected region's centre are outside it.
_MAX_TAN_DISTANCE = 89.0


def parse_regions(text: str, format: str = "ds9") -> list:
    """Sky regions from a serialised string.

    Parameters
    ----------
    text : str
        Region description, e.g. ``"icrs; circle(83.63, 22.01, 0.2)"`` (DS9; sizes in deg when
        unitless).
    format : {"ds9", "crtf"}
        Serialisation format understood by ``regions.Regions.parse``.

    Returns
    -------
    list of regions.SkyRegion

    Raises
    ------
    ValueError
        If the text holds pixel regions (a mask needs sky coordinates).
    """
    parsed = list(rg.Regions.parse(text, format=format))
    pixel = [type(r).__name__ for r in parsed if isinstance(r, rg.PixelRegion)]
    if pixel:
        raise ValueError(f"region string holds pixel regions {pixel}; give sky coordinates")
    return parsed


def regions_to_string(regions: Any, format: str = "ds9") -> str:
    """Serialise sky regions, e.g. to keep an on region in ``ds.attrs``.

    Parameters
    ----------
    regions : regions.SkyRegion or list of them
        Regions to write.
    format : {"ds9", "crtf"}
        Serialisation format of ``regions.Regions.serialize``.

    Returns
    -------
    str
        Text that :func:`parse_regions` reads back.
    """
    return rg.Regions(_as_list(regions)).serialize(format=format)


def _as_list(regions: Any) -> list:
    if isinstance(regions, str):
        return parse_regions(regions)
    if isinstance(regions, rg.Region):
        return [regions]
    if isinstance(regions, Iterable):
        out = []
        for r in regions:
            out.extend(_as_list(r))
        return out
    raise TypeError(f"expected sky regions or a region string, got {type(regions).__name__}")


def _circle_mask(grid: SkyGrid, center: SkyCoord, r_in: float, r_out: float) -> np.ndarray:
    sph = center.spherical
    (lon0,), (lat0,) = transform_lonlat(
        [sph.lon.to_value(u.deg)], [sph.lat.to_value(u.deg)], center.frame, grid.frame
    )
    sep = angular_separation(lon0, lat0, grid.lon[None, :], grid.lat[:, None])
    return (sep >= r_in) & (sep < r_out)


def _anchor(region: Any) -> SkyCoord:
    """A point inside or near a region, for the local projection."""
    center = getattr(region, "center", None)
    if isinstance(center, SkyCoord):
        return center
    vertices = getattr(region, "vertices", None)
    if isinstance(vertices, SkyCoord):
        x, y, z = vertices.cartesian.xyz.to_value().reshape(3, -1).mean(axis=1)
        lon, lat = np.arctan2(y, x), np.arctan2(z, np.hypot(x, y))
        return SkyCoord(lon * u.rad, lat * u.rad, frame=vertices.frame)
    raise TypeError(f"cannot locate region {type(region).__name__} on the sky")


def local_wcs(anchor: SkyCoord):
    """A TAN WCS centred on ``anchor`` (1 arcsec pixels) for ``region.contains`` tests.

    Parameters
    ----------
    anchor : astropy.coordinates.SkyCoord
        The projection centre, in the frame the WCS takes.

    Returns
    -------
    astropy.wcs.WCS
    """
    wcs = celestial_frame_to_wcs(anchor.frame, projection="TAN")
    sph = anchor.spherical
    wcs.wcs.crval = [sph.lon.to_value(u.deg), sph.lat.to_value(u.deg)]
    wcs.wcs.crpix = [0.0, 0.0]
    wcs.wcs.cdelt = [-_LOCAL_SCALE, _LOCAL_SCALE]
    wcs.wcs.set()
    return wcs


def _projected_mask(grid: SkyGrid, region: Any) -> np.ndarray:
    anchor = _anchor(region)
    wcs = local_wcs(anchor)
    pixels = grid.skycoord()
    inside = np.asarray(region.contains(pixels, wcs), dtype=bool).reshape(grid.shape)
    near = pixels.separation(anchor).to_value(u.deg) < _MAX_TAN_DISTANCE
    return inside & near


def _bounding_radius(region: Any) -> float | None:
    """Radius in deg of a circle around :func:`_anchor` that holds the region, if known."""
    if isinstance(region, rg.CircleSkyRegion):
        return region.radius.to_value(u.deg)
    if isinstance(region, rg.CircleAnnulusSkyRegion):
        return region.outer_radius.to_value(u.deg)
    if isinstance(region, rg.RectangleSkyRegion):
        return float(np.hypot(region.width.to_value(u.deg), region.height.to_value(u.deg))) / 2
    if isinstance(region, rg.EllipseSkyRegion):
        return max(region.width.to_value(u.deg), region.height.to_value(u.deg)) / 2
    if isinstance(region, (rg.RectangleAnnulusSkyRegion, rg.EllipseAnnulusSkyRegion)):
        w, h = region.outer_width.to_value(u.deg), region.outer_height.to_value(u.deg)
        return float(np.hypot(w, h)) / 2
    if isinstance(region, rg.PolygonSkyRegion):
        return float(np.max(region.vertices.separation(_anchor(region)).to_value(u.deg)))
    return None


def _shape_mask(grid: SkyGrid, region: Any) -> np.ndarray:
    if isinstance(region, rg.CircleSkyRegion):
        return _circle_mask(grid, region.center, -1.0, region.radius.to_value(u.deg))
    if isinstance(region, rg.CircleAnnulusSkyRegion):
        return _circle_mask(
            grid,
            region.center,
            region.inner_radius.to_value(u.deg),
            region.outer_radius.to_value(u.deg),
        )
    if _SPHERICAL is not None and isinstance(region, _SPHERICAL):
        return np.asarray(region.contains(grid.skycoord()), dtype=bool).reshape(grid.shape)
    return _projected_mask(grid, region)


def _mask(grid: SkyGrid, region: Any) -> np.ndarray:
    if isinstance(region, rg.PixelRegion):
        raise TypeError(f"{type(region).__name__} is a pixel region; masks need sky regions")
    if isinstance(region, rg.CompoundSkyRegion):
        return region.operator(_mask(grid, region.region1), _mask(grid, region.region2))
    radius = _bounding_radius(region)
    if radius is None:
        return _shape_mask(grid, region)
    # evaluate only on the cutout around the region's bounding circle
    out = np.zeros(grid.shape, dtype=bool)
    try:
        sub = grid.cutout(_anchor(region), radius=radius * (1 + 1e-6) + 1e-9)
    except ValueError:  # no overlap with the grid
        return out
    sl = sub.slices_in(grid)
    out[sl["lat"], sl["lon"]] = _shape_mask(sub, region)
    return out


def region_mask(grid: SkyGrid, regions: Any, inside: bool = True) -> xr.DataArray:
    """Pixels whose centre lies inside any of the given sky regions.

    Parameters
    ----------
    grid : SkyGrid
        Grid of the mask.
    regions : regions.SkyRegion, list of them, regions.Regions or str
        Sky shapes in any frame, or a DS9 region string (see :func:`parse_regions`). An empty
        list selects nothing.
    inside : bool
        If False, return the complement (True outside every region).

    Returns
    -------
    xarray.DataArray of bool, dims (lat, lon)
        Grid coordinates and ``frame`` attr; a region string given as input is kept in
        ``attrs["regions"]``.
    """
    region_list = _as_list(regions)
    mask = np.zeros(grid.shape, dtype=bool)
    for region in region_list:
        mask |= _mask(grid, region)
    if not inside:
        mask = ~mask
    out = grid._data_array(mask, "mask", "")
    if isinstance(regions, str):
        out.attrs["regions"] = regions
    return out


def exclusion_mask(grid: SkyGrid, regions: Any) -> xr.DataArray:
    """Mask of usable pixels: True outside every region (the convention of Gammapy).

    Parameters
    ----------
    grid : SkyGrid
        Grid of the mask.
    regions : regions.SkyRegion, list of them, regions.Regions or str
        Regions to exclude (e.g. known sources), in any frame.

    Returns
    -------
    xarray.DataArray of bool, dims (lat, lon)
        ``region_mask(grid, regions, inside=False)``, named ``"exclusion"``.
    """
    return region_mask(grid, regions, inside=False).rename("exclusion")
