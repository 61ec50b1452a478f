"""Spherical geometry used by the spatial models: separations, position angles, offsets, frames.

All angles are in degrees. The functions are plain element-wise numpy expressions, so they
also work on dask arrays and xarray objects (broadcasting as numpy does).
"""

from __future__ import annotations

from functools import cache

import numpy as np

__all__ = [
    "FRAMES",
    "offset_by",
    "one_minus_cos_separation",
    "position_angle",
    "separation",
    "transform_lonlat",
]

#: Sky frames the models accept (names as astropy and Gammapy spell them).
FRAMES = ("icrs", "galactic")


def separation(lon1, lat1, lon2, lat2):
    """Great-circle distance between two positions (Vincenty formula, stable at all angles).

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        Positions in degrees (broadcast together).

    Returns
    -------
    array_like
        Separation in degrees, in [0, 180].
    """
    lon1, lat1, lon2, lat2 = (np.deg2rad(x) for x in (lon1, lat1, lon2, lat2))
    dlon = lon2 - lon1
    slat1, clat1 = np.sin(lat1), np.cos(lat1)
    slat2, clat2 = np.sin(lat2), np.cos(lat2)
    num1 = clat2 * np.sin(dlon)
    num2 = clat1 * slat2 - slat1 * clat2 * np.cos(dlon)
    denom = slat1 * slat2 + clat1 * clat2 * np.cos(dlon)
    return np.rad2deg(np.arctan2(np.hypot(num1, num2), denom))


def one_minus_cos_separation(lon1, lat1, lon2, lat2):
    """``1 - cos(separation)`` computed without cancellation (twice the haversine).

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        Positions in degrees.

    Returns
    -------
    array_like
        Dimensionless, in [0, 2]; about ``separation_rad**2 / 2`` at small separations.
    """
    lon1, lat1, lon2, lat2 = (np.deg2rad(x) for x in (lon1, lat1, lon2, lat2))
    hav = np.sin(0.5 * (lat2 - lat1)) ** 2 + np.cos(lat1) * np.cos(lat2) * (
        np.sin(0.5 * (lon2 - lon1)) ** 2
    )
    return 2.0 * hav


def position_angle(lon0, lat0, lon, lat):
    """Position angle of ``(lon, lat)`` seen from ``(lon0, lat0)``, East of North.

    The angle is 0 towards increasing latitude (North) and 90 deg towards increasing
    longitude (East), as astropy's ``position_angle``.

    Parameters
    ----------
    lon0, lat0 : array_like
        Reference position in degrees.
    lon, lat : array_like
        Target positions in degrees.

    Returns
    -------
    array_like
        Position angle in degrees, in (-180, 180].
    """
    lon0, lat0, lon, lat = (np.deg2rad(x) for x in (lon0, lat0, lon, lat))
    dlon = lon - lon0
    x = np.cos(lat0) * np.sin(lat) - np.sin(lat0) * np.cos(lat) * np.cos(dlon)
    y = np.sin(dlon) * np.cos(lat)
    return np.rad2deg(np.arctan2(y, x))


def offset_by(lon0, lat0, pa, sep):
    """Position reached from ``(lon0, lat0)`` moving ``sep`` along position angle ``pa``.

    Parameters
    ----------
    lon0, lat0 : array_like
        Start position in degrees.
    pa : array_like
        Position angle in degrees, East of North.
    sep : array_like
        Distance in degrees.

    Returns
    -------
    lon, lat : array_like
        End position in degrees, ``lon`` in [0, 360).
    """
    lon0, lat0, pa, sep = (np.deg2rad(x) for x in (lon0, lat0, pa, sep))
    slat = np.sin(lat0) * np.cos(sep) + np.cos(lat0) * np.sin(sep) * np.cos(pa)
    lat = np.arcsin(np.clip(slat, -1.0, 1.0))
    dlon = np.arctan2(np.sin(pa) * np.sin(sep) * np.cos(lat0), np.cos(sep) - np.sin(lat0) * slat)
    return np.mod(np.rad2deg(lon0 + dlon), 360.0), np.rad2deg(lat)


@cache
def _rotation(frame_from: str, frame_to: str) -> np.ndarray:
    """3x3 rotation taking unit vectors of ``frame_from`` to ``frame_to`` (from astropy)."""
    from astropy.coordinates import SkyCoord

    # unit vectors x, y, z of frame_from as (lon, lat)
    basis = SkyCoord([0.0, 90.0, 0.0], [0.0, 0.0, 90.0], unit="deg", frame=frame_from)
    cart = basis.transform_to(frame_to).cartesian
    # column k is the image of basis vector k
    return np.array([cart.x.value, cart.y.value, cart.z.value])


def transform_lonlat(lon, lat, frame_from: str, frame_to: str):
    """Convert positions between the ``icrs`` and ``galactic`` frames.

    The two frames differ by a fixed rotation, which is taken once from astropy and applied
    here as a 3x3 matrix (fast for millions of positions; exact to astropy's precision).

    Parameters
    ----------
    lon, lat : numpy.ndarray
        Positions in degrees in ``frame_from``.
    frame_from, frame_to : {"icrs", "galactic"}
        Frames.

    Returns
    -------
    lon, lat : numpy.ndarray
        Positions in degrees in ``frame_to``, ``lon`` in [0, 360).
    """
    for frame in (frame_from, frame_to):
        if frame not in FRAMES:
            raise ValueError(f"unknown sky frame {frame!r}; use one of {FRAMES}")
    if frame_from == frame_to:
        return lon, lat
    rot = _rotation(frame_from, frame_to)
    lon_r, lat_r = np.deg2rad(lon), np.deg2rad(lat)
    c = np.cos(lat_r)
    x, y, z = c * np.cos(lon_r), c * np.sin(lon_r), np.sin(lat_r)
    x2 = rot[0, 0] * x + rot[0, 1] * y + rot[0, 2] * z
    y2 = rot[1, 0] * x + rot[1, 1] * y + rot[1, 2] * z
    z2 = rot[2, 0] * x + rot[2, 1] * y + rot[2, 2] * z
    lon2 = np.mod(np.rad2deg(np.arctan2(y2, x2)), 360.0)
    lat2 = np.rad2deg(np.arcsin(np.clip(z2, -1.0, 1.0)))
    return lon2, lat2
