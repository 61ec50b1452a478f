"""Sub-grids and super-grids of a :class:`~gammaxr.geom.grid.SkyGrid` that share its pixels.

A cutout holds exactly the parent's pixel centres over a rectangle of pixels, so a map made on
the cutout is added into the parent by index: ``parent_ds[...].isel(cut.slices_in(parent))``,
or written into a zarr-backed parent with ``to_zarr(region=cut.slices_in(parent))``.

Cutouts are clipped to the parent. On a parent that covers the full 360 deg of longitude a
cutout does not wrap across the parent's lon seam (the lon ends of the parent axis): place the
seam where there is no data (see :meth:`SkyGrid.all_sky`, ``lon_center``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gammaxr.geom.grid import STEP_RTOL
from gammaxr.geom.sky import _deg, _nearest_int, _pair, _position, _wrap180, transform_lonlat

if TYPE_CHECKING:
    from astropy.coordinates import SkyCoord

    from gammaxr.geom.grid import SkyGrid

__all__ = ["cutout_grid", "downsample_grid", "grid_slices", "upsample_grid"]

#: Tolerance, in pixels, on the offset of a sub-grid inside its parent.
OFFSET_ATOL = 1e-4


def _sub(parent: SkyGrid, sl_lat: slice, sl_lon: slice) -> SkyGrid:
    return type(parent)(
        parent.lon[sl_lon],
        parent.lat[sl_lat],
        parent.frame,
        lon_step=parent.lon_step,
        lat_step=parent.lat_step,
    )


def _clip(start: int, stop: int, n: int, name: str, center: Any) -> slice:
    start, stop = max(start, 0), min(stop, n)
    if stop <= start:
        raise ValueError(f"cutout around {center} does not overlap the parent grid along {name}")
    return slice(start, stop)


def cutout_grid(
    parent: SkyGrid,
    center: SkyCoord | tuple[float, float],
    width: float | tuple[float, float] | None = None,
    *,
    radius: float | None = None,
    frame: Any = None,
) -> SkyGrid:
    """Exact sub-grid of ``parent`` around a position, clipped to the parent.

    Parameters
    ----------
    parent : SkyGrid
        Grid to cut from.
    center : SkyCoord or (float, float)
        Cutout centre, a SkyCoord in any frame or ``(lon, lat)`` in deg in ``frame``.
    width : float or (float, float), optional
        Width in deg measured on the sky at the centre, as in :meth:`SkyGrid.from_center`:
        ``round(w_lon / (lon_step * cos(lat_c)))`` by ``round(w_lat / lat_step)`` parent pixels
        whose middle is the parent pixel (or pixel edge) nearest the centre.
    radius : float, optional
        Instead of ``width``: the smallest cutout containing every parent pixel that meets the
        lon/lat bounding box of the circle of this radius (deg) around the centre, e.g. a
        run's field of view up to its maximum offset.
    frame : str, optional
        Frame of a ``(lon, lat)`` centre; default the parent frame.

    Returns
    -------
    SkyGrid
        Same frame and steps as the parent; its coordinates are copies of the parent's.

    Raises
    ------
    ValueError
        If the cutout does not overlap the parent, or neither or both of ``width`` and
        ``radius`` are given.
    """
    if (width is None) == (radius is None):
        raise ValueError("give exactly one of width and radius")
    lon_c, lat_c, cframe = _position(center, frame or parent.frame)
    (lon_c,), (lat_c,) = transform_lonlat([lon_c], [lat_c], cframe, parent.frame)
    (p_lon,), (p_lat,) = parent.to_pixel(np.array([lon_c]), np.array([lat_c]))
    dlon, dlat = parent.lon_step, parent.lat_step
    n_lon, n_lat = parent.lon.size, parent.lat.size
    if width is not None:
        w_lon, w_lat = _pair(width, "width")
        cos_c = max(np.cos(np.radians(lat_c)), 1e-12)
        k_lon = min(_nearest_int(w_lon / (dlon * cos_c)), n_lon)
        k_lat = _nearest_int(w_lat / dlat)
        if k_lon < 1 or k_lat < 1:
            raise ValueError(f"cutout width {width} is less than half a parent pixel")
        lon0 = _nearest_int(p_lon - (k_lon - 1) / 2)
        lat0 = _nearest_int(p_lat - (k_lat - 1) / 2)
        lon_range, lat_range = (lon0, lon0 + k_lon), (lat0, lat0 + k_lat)
    else:
        r = float(_deg(radius, "radius"))
        if not r > 0:
            raise ValueError(f"cutout radius must be positive, got {radius}")
        if abs(lat_c) + r >= 90:
            lon_range = (0, n_lon)
        else:
            half = np.degrees(np.arcsin(np.sin(np.radians(r)) / np.cos(np.radians(lat_c))))
            lon_range = (
                int(np.floor(p_lon - half / dlon + 0.5)),
                int(np.floor(p_lon + half / dlon + 0.5)) + 1,
            )
        lat_range = (
            int(np.floor(p_lat - r / dlat + 0.5)),
            int(np.floor(p_lat + r / dlat + 0.5)) + 1,
        )
    where = f"({lon_c:.4f}, {lat_c:.4f}) {parent.frame}"
    sl_lon = _clip(*lon_range, n_lon, "lon", where)
    sl_lat = _clip(*lat_range, n_lat, "lat", where)
    return _sub(parent, sl_lat, sl_lon)


def grid_slices(child: SkyGrid, parent: SkyGrid) -> dict[str, slice]:
    """Index slices that select ``child`` within ``parent``.

    Parameters
    ----------
    child : SkyGrid
        An exact sub-grid of ``parent`` (same frame and steps, pixel centres on parent
        centres), e.g. from :func:`cutout_grid`.
    parent : SkyGrid
        The enclosing grid.

    Returns
    -------
    dict
        ``{"lat": slice, "lon": slice}`` for ``isel`` or zarr ``region=``.

    Raises
    ------
    ValueError
        If ``child`` is not an exact sub-grid of ``parent``.
    """
    if child.frame != parent.frame:
        raise ValueError(f"sub-grid frame {child.frame!r} differs from parent {parent.frame!r}")
    for name in ("lon_step", "lat_step"):
        a, b = getattr(child, name), getattr(parent, name)
        if abs(a - b) > STEP_RTOL * b:
            raise ValueError(f"sub-grid {name} {a!r} differs from the parent's {b!r} deg")
    o_lat = (child.lat[0] - parent.lat[0]) / parent.lat_step
    x = child.lon[0] - parent.lon[0]
    if parent.is_full_circle:
        x = x % 360.0
    else:
        half_span = parent.lon_step * (parent.lon.size - 1) / 2
        x = _wrap180(x - half_span) + half_span
    o_lon = x / parent.lon_step
    k_lat, k_lon = round(o_lat), round(o_lon)
    if parent.is_full_circle and k_lon == parent.lon.size:
        k_lon = 0
    slices = {
        "lat": slice(k_lat, k_lat + child.lat.size),
        "lon": slice(k_lon, k_lon + child.lon.size),
    }
    fits = (
        abs(o_lat - k_lat) <= OFFSET_ATOL
        and abs(o_lon - round(o_lon)) <= OFFSET_ATOL
        and k_lat >= 0
        and k_lon >= 0
        and slices["lat"].stop <= parent.lat.size
        and slices["lon"].stop <= parent.lon.size
    )
    if not fits or not child.is_same(_sub(parent, slices["lat"], slices["lon"]), rtol=OFFSET_ATOL):
        raise ValueError(f"{child!r} is not an exact sub-grid of {parent!r}")
    return slices


def upsample_grid(grid: SkyGrid, factor: int) -> SkyGrid:
    """Grid with every pixel split into ``factor`` x ``factor`` pixels (same outer edges).

    Parameters
    ----------
    grid : SkyGrid
        Grid to refine.
    factor : int
        Positive integer.

    Returns
    -------
    SkyGrid
        Steps divided by ``factor``; shape multiplied by ``factor``.
    """
    factor = _factor(factor)
    sub = (np.arange(factor) + 0.5) / factor - 0.5
    lon = (grid.lon[:, None] + grid.lon_step * sub).ravel()
    lat = (grid.lat[:, None] + grid.lat_step * sub).ravel()
    return type(grid)(
        lon, lat, grid.frame, lon_step=grid.lon_step / factor, lat_step=grid.lat_step / factor
    )


def downsample_grid(grid: SkyGrid, factor: int) -> SkyGrid:
    """Grid of ``factor`` x ``factor`` merged pixels (same outer edges).

    The new pixel centres are the means of the merged centres, as
    ``DataArray.coarsen(lat=factor, lon=factor)`` makes them.

    Parameters
    ----------
    grid : SkyGrid
        Grid to coarsen; both pixel counts must be multiples of ``factor``.
    factor : int
        Positive integer.

    Returns
    -------
    SkyGrid
    """
    factor = _factor(factor)
    if grid.lon.size % factor or grid.lat.size % factor:
        raise ValueError(
            f"grid shape {grid.shape} is not divisible by downsampling factor {factor}"
        )
    lon = grid.lon.reshape(-1, factor).mean(axis=1)
    lat = grid.lat.reshape(-1, factor).mean(axis=1)
    return type(grid)(
        lon, lat, grid.frame, lon_step=grid.lon_step * factor, lat_step=grid.lat_step * factor
    )


def _factor(factor: int) -> int:
    if int(factor) != factor or factor < 1:
        raise ValueError(f"resampling factor must be a positive integer, got {factor!r}")
    return int(factor)
