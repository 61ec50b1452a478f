"""Integrate spatial models over the pixels of a regular lon/lat grid.

A grid is given by its 1D pixel-centre coordinates ``lon`` and ``lat`` (deg, constant steps,
either direction) in a frame; pixel ``(j, i)`` spans ``lon[i] +- dlon / 2`` and
``lat[j] +- dlat / 2`` and has the exact solid angle
``|dlon_rad| * (sin(lat_j + |dlat| / 2) - sin(lat_j - |dlat| / 2))`` (DESIGN.md).

Extended models are evaluated at the centres of ``k x k`` sub-pixels, weighted by their
exact solid angles and summed; ``k`` is chosen so that sub-pixels are no larger than the
model's ``bin_size_min`` (capped at ``max_oversampling``). Only the bounding box of pixels
within ``evaluation_radius`` (plus a pixel diagonal) of the model centre is evaluated.
Point sources get bilinear weights on the 4 nearest pixel centres (the flux centroid is the
source position, and the result varies smoothly with the position, so positions can be fit).

The grid coordinates are small in-memory index coordinates; the result is a numpy array.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from gammaxr.geom.grid import pixel_solid_angle
from gammaxr.units import to_unit, to_unit_or_none

from .sphere import separation, transform_lonlat

if TYPE_CHECKING:
    from .spatial import SpatialModel

__all__ = ["grid_frame", "integrate_geom", "integrate_pixels", "pixel_solid_angle"]


def _step(coord: np.ndarray, name: str, step: float | None) -> float:
    if coord.ndim != 1 or coord.size == 0:
        raise ValueError(f"{name} must be a non-empty 1D array of pixel centres")
    if coord.size == 1:
        if step is None:
            raise ValueError(f"a grid with one {name} pixel needs an explicit {name}_step")
        return float(step)
    diffs = np.diff(coord)
    d = float(np.mean(diffs))
    if d == 0 or np.max(np.abs(diffs - d)) > 1e-6 * abs(d):
        raise ValueError(f"{name} coordinates must be regularly spaced")
    return d


def _point_weights(model, lon, lat, frame, dlon, dlat) -> np.ndarray:
    (lon_p,), (lat_p,) = transform_lonlat(
        np.array([model.lon_0.value]), np.array([model.lat_0.value]), model.frame, frame
    )
    mid = lon.size // 2
    fx = mid + (np.mod(lon_p - lon[mid] + 180.0, 360.0) - 180.0) / dlon
    fy = (lat_p - lat[0]) / dlat
    out = np.zeros((lat.size, lon.size))
    ix, iy = int(np.floor(fx)), int(np.floor(fy))
    tx, ty = fx - ix, fy - iy
    for dy, wy in ((0, 1.0 - ty), (1, ty)):
        for dx, wx in ((0, 1.0 - tx), (1, tx)):
            j, i = iy + dy, ix + dx
            if 0 <= j < lat.size and 0 <= i < lon.size:
                out[j, i] += wy * wx
    return out


def integrate_pixels(
    model: SpatialModel,
    lon: Any,
    lat: Any,
    frame: str,
    oversampling: int | None = None,
    max_oversampling: int = 10,
    lon_step: float | None = None,
    lat_step: float | None = None,
) -> np.ndarray:
    """Fraction of a spatial model's flux falling in each pixel of a regular lon/lat grid.

    Parameters
    ----------
    model : SpatialModel
        The model (any frame; sub-pixel positions are rotated into the model frame).
    lon, lat : array_like or astropy.units.Quantity, shapes (nlon,), (nlat,)
        Pixel-centre coordinates in deg (or angle quantities) in ``frame``, regularly spaced.
    frame : {"icrs", "galactic"}
        Frame of the grid.
    oversampling : int, optional
        Sub-pixels per pixel side; default from the model's ``bin_size_min``.
    max_oversampling : int
        Upper limit of the automatic oversampling.
    lon_step, lat_step : float or astropy.units.Quantity, optional
        Pixel steps (deg or angle quantities), needed only for grids one pixel wide.

    Returns
    -------
    numpy.ndarray, shape (nlat, nlon)
        Integral of the model over each pixel (dimensionless; sums to <= 1).
    """
    lon = np.asarray(to_unit(lon, "deg", "lon"), dtype=float)
    lat = np.asarray(to_unit(lat, "deg", "lat"), dtype=float)
    lon_step = to_unit_or_none(lon_step, "deg", "lon_step")
    lat_step = to_unit_or_none(lat_step, "deg", "lat_step")
    dlon, dlat = _step(lon, "lon", lon_step), _step(lat, "lat", lat_step)
    if model.is_point:
        return _point_weights(model, lon, lat, frame, dlon, dlat)

    (lon_c,), (lat_c,) = transform_lonlat(
        np.array([model.lon_0.value]), np.array([model.lat_0.value]), model.frame, frame
    )
    radius = model.evaluation_radius + 0.5 * np.hypot(dlon, dlat)
    near = separation(lon[None, :], lat[:, None], lon_c, lat_c) <= radius
    out = np.zeros((lat.size, lon.size))
    rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    if rows.size == 0:
        return out
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1

    if oversampling is None:
        size = max(abs(dlon) * np.cos(np.deg2rad(lat_c)), abs(dlat))
        oversampling = int(np.clip(np.ceil(size / model.bin_size_min), 1, max_oversampling))
    k = int(oversampling)
    offsets = (np.arange(k) + 0.5) / k - 0.5
    lon_sub = (lon[c0:c1, None] + dlon * offsets).ravel()
    lat_sub = (lat[r0:r1, None] + dlat * offsets).ravel()
    omega = pixel_solid_angle(lat_sub, dlon / k, dlat / k)
    lon2d, lat2d = np.meshgrid(lon_sub, lat_sub)
    lon2d, lat2d = transform_lonlat(lon2d, lat2d, frame, model.frame)
    values = model.evaluate(lon2d, lat2d, **model.values) * omega[:, None]
    out[r0:r1, c0:c1] = values.reshape(r1 - r0, k, c1 - c0, k).sum(axis=(1, 3))
    return out


def grid_frame(obj: xr.Dataset | xr.DataArray) -> str:
    """Sky frame of an xarray map: ``attrs["frame"]``, else the ``lon`` coordinate's attr."""
    frame = obj.attrs.get("frame", obj.coords["lon"].attrs.get("frame"))
    if frame is None:
        raise KeyError("map has no 'frame' attr naming its sky frame (icrs or galactic)")
    return str(frame)


def integrate_geom(
    model: SpatialModel, obj: xr.Dataset | xr.DataArray, **kwargs: Any
) -> xr.DataArray:
    """:func:`integrate_pixels` on the ``lon``/``lat`` grid of an xarray map.

    Parameters
    ----------
    model : SpatialModel
        The model.
    obj : xarray.Dataset or xarray.DataArray
        Any map with 1D ``lon`` and ``lat`` coordinates (deg) and a ``frame`` attr; only
        its (in-memory) coordinates are used.
    **kwargs
        Passed to :func:`integrate_pixels` (``oversampling``...).

    Returns
    -------
    xarray.DataArray, dims (lat, lon)
        Fraction of the model's flux per pixel, ``units`` "".
    """
    lon, lat = obj.coords["lon"], obj.coords["lat"]
    data = integrate_pixels(model, lon.values, lat.values, grid_frame(obj), **kwargs)
    return xr.DataArray(
        data,
        coords={"lat": lat, "lon": lon},
        dims=("lat", "lon"),
        attrs={"units": "", "frame": grid_frame(obj)},
        name="flux_fraction",
    )
