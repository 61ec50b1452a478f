"""Field-of-view (FoV) coordinates: sky positions relative to the pointing.

The FoV frame has its origin at the pointing and its axes aligned with the sky frame of the
pointing (``RADEC`` alignment of GADF ``bkg_3d``). As in GADF and Gammapy, the FoV longitude is
reversed with respect to the sky longitude: ``fov_lon`` grows towards decreasing RA, so that a
sky image and a FoV image have the same orientation.
"""

from __future__ import annotations

import numpy as np

from gammaxr.geom.sky import seen_from, separation_from

__all__ = ["sky_to_fov", "sky_to_fov_and_offset", "fov_to_sky"]


def sky_to_fov(
    lon: np.ndarray, lat: np.ndarray, lon_pnt: float, lat_pnt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Convert sky coordinates to FoV coordinates centred on a pointing.

    Parameters
    ----------
    lon, lat : array_like
        Sky longitude and latitude in deg (any broadcastable shapes), in the same frame as the
        pointing.
    lon_pnt, lat_pnt : float
        Pointing position in deg.

    Returns
    -------
    fov_lon, fov_lat : numpy.ndarray
        FoV longitude (reversed, see module docstring) and latitude in deg, broadcast shape of
        the inputs.
    """
    return fov_from(*seen_from(lon_pnt, lat_pnt, lon, lat))


def sky_to_fov_and_offset(
    lon: np.ndarray, lat: np.ndarray, lon_pnt: float, lat_pnt: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sky_to_fov` and the offset from the pointing, sharing their trigonometry.

    Parameters
    ----------
    lon, lat : array_like
        Sky longitude and latitude in deg, in the frame of the pointing.
    lon_pnt, lat_pnt : float
        Pointing position in deg.

    Returns
    -------
    fov_lon, fov_lat, offset : numpy.ndarray
        FoV coordinates as :func:`sky_to_fov` gives them and the offset as
        :func:`gammaxr.geom.sky.angular_separation` does (the same values), all in deg.
    """
    x, y, z = seen_from(lon_pnt, lat_pnt, lon, lat)
    return (*fov_from(x, y, z), separation_from(x, y, z))


def fov_from(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FoV longitude (reversed) and latitude in deg of the vector ``(x, y, z)`` of
    :func:`gammaxr.geom.sky.seen_from` (x towards the pointing)."""
    fov_lon = -np.degrees(np.arctan2(y, x))
    fov_lat = np.degrees(np.arcsin(np.clip(z, -1.0, 1.0)))
    return fov_lon, fov_lat


def fov_to_sky(
    fov_lon: np.ndarray, fov_lat: np.ndarray, lon_pnt: float, lat_pnt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Convert FoV coordinates back to sky coordinates (inverse of :func:`sky_to_fov`).

    ``fov_lon``, ``fov_lat`` are FoV coordinates in deg (reversed longitude) and ``lon_pnt``,
    ``lat_pnt`` the pointing in deg; returns the sky ``lon``, ``lat`` in deg (numpy arrays,
    longitude in [0, 360)).
    """
    u = -np.radians(fov_lon)
    v = np.radians(fov_lat)
    lon0, lat0 = np.radians(lon_pnt), np.radians(lat_pnt)
    x = np.cos(v) * np.cos(u)
    y = np.cos(v) * np.sin(u)
    z = np.sin(v)
    # inverse rotation: undo the tilt by lat0, then the turn by lon0
    xs = np.cos(lat0) * x - np.sin(lat0) * z
    zs = np.sin(lat0) * x + np.cos(lat0) * z
    lon = np.degrees(np.arctan2(y, xs) + lon0) % 360.0
    lat = np.degrees(np.arcsin(np.clip(zs, -1.0, 1.0)))
    return lon, lat
