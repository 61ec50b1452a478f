"""Spherical geometry (the one home): frames, separations, position angles, offsets, parsing.

All angles are in degrees. The formulas are element-wise numpy expressions, so they also work on
dask arrays and xarray objects (broadcasting as numpy does).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import BaseCoordinateFrame, SkyCoord

from gammaxr.units import to_unit

__all__ = [
    "FRAMES",
    "angular_separation",
    "offset_by",
    "one_minus_cos_separation",
    "position_angle",
    "to_skycoord",
    "transform_lonlat",
]

#: Sky frames a grid may use.
FRAMES = ("icrs", "galactic")


def _frame_name(frame: Any) -> str:
    if isinstance(frame, SkyCoord):
        return frame.frame.name
    if isinstance(frame, BaseCoordinateFrame):
        return frame.name
    return str(frame).lower()


def _deg(x: Any, name: str = "angle") -> np.ndarray:
    """Float array in deg from numbers (taken as deg), angle Quantities or strings
    (``"6 arcmin"``); another kind of quantity raises ``UnitConversionError`` naming ``name``."""
    if isinstance(x, u.Quantity | str | list | tuple):
        x = to_unit(x, "deg", name)
    return np.asarray(x, dtype=float)


def transform_lonlat(
    lon: np.ndarray, lat: np.ndarray, frame_in: Any, frame_out: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Convert sky positions between frames (no-op when the frames are the same).

    Between ``icrs`` and ``galactic`` (a fixed rotation, taken once from astropy) the rotation
    is applied element-wise, so numpy, dask and xarray inputs work and stay lazy; other
    frames go through astropy.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in deg (or angle Quantities), any broadcastable shapes.
    frame_in, frame_out : str or astropy frame
        Frames, e.g. ``"icrs"``, ``"galactic"``, ``"fk5"``.

    Returns
    -------
    lon, lat : array_like
        Positions in ``frame_out`` in deg, ``lon`` in [0, 360). Same-frame input is returned
        unchanged (no wrap).
    """
    lon, lat = (_deg(x) if isinstance(x, u.Quantity | list | tuple) else x for x in (lon, lat))
    name_in, name_out = _frame_name(frame_in), _frame_name(frame_out)
    if name_in in FRAMES and name_out in FRAMES and _plain(frame_in) and _plain(frame_out):
        if name_in == name_out:
            return lon, lat
        return _rotate(lon, lat, _rotation(name_in, name_out))
    if name_in == name_out and isinstance(frame_in, str) and isinstance(frame_out, str):
        return _deg(lon), _deg(lat)
    c = SkyCoord(_deg(lon) * u.deg, _deg(lat) * u.deg, frame=frame_in).transform_to(frame_out)
    sph = c.spherical
    return sph.lon.to_value(u.deg), sph.lat.to_value(u.deg)


def _plain(frame: Any) -> bool:
    """A frame given by name, or an ICRS / Galactic frame object (no attributes to honour)."""
    return isinstance(frame, str) or _frame_name(frame) in FRAMES


@cache
def _rotation(frame_from: str, frame_to: str) -> np.ndarray:
    """3x3 rotation taking unit vectors of ``frame_from`` to ``frame_to`` (from astropy)."""
    basis = SkyCoord([0.0, 90.0, 0.0], [0.0, 0.0, 90.0], unit="deg", frame=frame_from)
    cart = basis.transform_to(frame_to).cartesian
    return np.array([cart.x.value, cart.y.value, cart.z.value])  # column k: image of axis k


def _rotate(lon: Any, lat: Any, rot: np.ndarray) -> tuple[Any, Any]:
    lon_r, lat_r = np.deg2rad(lon), np.deg2rad(lat)
    c = np.cos(lat_r)
    x, y, z = c * np.cos(lon_r), c * np.sin(lon_r), np.sin(lat_r)
    x2 = rot[0, 0] * x + rot[0, 1] * y + rot[0, 2] * z
    y2 = rot[1, 0] * x + rot[1, 1] * y + rot[1, 2] * z
    z2 = rot[2, 0] * x + rot[2, 1] * y + rot[2, 2] * z
    lon2 = np.mod(np.rad2deg(np.arctan2(y2, x2)), 360.0)
    lat2 = np.rad2deg(np.arcsin(np.clip(z2, -1.0, 1.0)))
    return lon2, lat2


def angular_separation(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    """Great-circle distance between positions in one frame (Vincenty's formula, stable).

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        Positions in deg, broadcastable against each other.

    Returns
    -------
    numpy.ndarray
        Separation in deg, broadcast shape of the inputs.
    """
    x, y, z = seen_from(lon1, lat1, lon2, lat2)
    return separation_from(x, y, z)


def seen_from(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unit vector of ``(lon2, lat2)`` in the frame whose x axis points at ``(lon1,
    lat1)``, y towards increasing longitude and z towards its north: the terms of
    Vincenty's formula (:func:`angular_separation`) and the FoV coordinates
    (:func:`gammaxr.geom.fov.sky_to_fov`), computed once for both.

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        Positions in deg, broadcastable against each other.

    Returns
    -------
    x, y, z : numpy.ndarray
        Cartesian components (dimensionless), broadcast shape of the inputs.
    """
    lon1, lat1, lon2, lat2 = (np.radians(x) for x in (lon1, lat1, lon2, lat2))
    dl = lon2 - lon1
    cos_b1, sin_b1 = np.cos(lat1), np.sin(lat1)
    cos_b2, sin_b2 = np.cos(lat2), np.sin(lat2)
    cos_dl = np.cos(dl)
    y = cos_b2 * np.sin(dl)
    z = cos_b1 * sin_b2 - sin_b1 * cos_b2 * cos_dl
    x = sin_b1 * sin_b2 + cos_b1 * cos_b2 * cos_dl
    return x, y, z


def separation_from(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The angle in deg between the x axis and the vector ``(x, y, z)`` of :func:`seen_from`
    (Vincenty's formula: accurate at every angle)."""
    return np.degrees(np.arctan2(np.hypot(y, z), x))


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


def _wrap180(x: np.ndarray) -> np.ndarray:
    """Angle difference wrapped into [-180, 180) deg."""
    return (x + 180.0) % 360.0 - 180.0


def _position(center: Any, frame: Any = None) -> tuple[float, float, Any]:
    """(lon, lat, frame) of one position given as SkyCoord or (lon, lat) pair."""
    if isinstance(center, SkyCoord):
        sph = center.spherical
        return float(sph.lon.to_value(u.deg)), float(sph.lat.to_value(u.deg)), center.frame
    try:
        lon, lat = center
    except (TypeError, ValueError):
        raise TypeError(
            f"a sky position must be a SkyCoord or a (lon, lat) pair in deg, got {center!r}"
        ) from None
    return float(_deg(lon, "lon")), float(_deg(lat, "lat")), frame


def to_skycoord(position: Any, frame: Any = None) -> SkyCoord:
    """A scalar SkyCoord from a SkyCoord or a ``(lon, lat)`` pair: how gammaxr takes positions.

    Parameters
    ----------
    position : SkyCoord or (float, float)
        A SkyCoord in any frame, or ``(lon, lat)`` in deg (floats or angle Quantities) in
        ``frame``.
    frame : str or astropy frame, optional
        Frame of a ``(lon, lat)`` pair (default ``"icrs"``); ignored for a SkyCoord.

    Returns
    -------
    astropy.coordinates.SkyCoord

    Raises
    ------
    TypeError
        If ``position`` is neither (a 3-tuple ``(lon, lat, frame)`` is refused: give
        ``frame=`` instead).
    """
    if isinstance(position, SkyCoord):
        return position
    if isinstance(position, tuple | list) and len(position) == 3:
        raise TypeError(
            f"a sky position is a SkyCoord or a (lon, lat) pair, got {position!r}: "
            "give the frame as the frame= argument"
        )
    lon, lat, _ = _position(position)
    return SkyCoord(lon * u.deg, lat * u.deg, frame=frame or "icrs")


def _pair(value: Any, name: str) -> tuple[float, float]:
    arr = np.atleast_1d(_deg(value, name)).astype(float)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.shape != (2,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be a positive number or a pair (lon, lat), got {value!r}")
    return float(arr[0]), float(arr[1])


def _nearest_int(x: float) -> int:
    """Round to nearest, halves up (with a little slack for float noise like 249.99999)."""
    return int(np.floor(x + 0.5 + 1e-9))
