"""Spherical helpers shared by the sky-grid modules: frames, separations, position parsing."""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import BaseCoordinateFrame, SkyCoord

__all__ = ["FRAMES", "angular_separation", "to_skycoord", "transform_lonlat"]

#: Sky frames a grid may use.
FRAMES = ("icrs", "galactic")


def _frame_name(frame: Any) -> str:
    if isinstance(frame, SkyCoord):
        return frame.frame.name
    if isinstance(frame, BaseCoordinateFrame):
        return frame.name
    return str(frame).lower()


def _deg(x: Any) -> np.ndarray:
    """Float array in deg from numbers (taken as deg) or angle Quantities."""
    if isinstance(x, u.Quantity):
        return x.to_value(u.deg)
    return np.asarray(x, dtype=float)


def transform_lonlat(
    lon: np.ndarray, lat: np.ndarray, frame_in: Any, frame_out: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Convert sky positions between frames (no-op when the frames are the same).

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in deg (or angle Quantities), any broadcastable shapes.
    frame_in, frame_out : str or astropy frame
        Frames, e.g. ``"icrs"``, ``"galactic"``, ``"fk5"``.

    Returns
    -------
    lon, lat : numpy.ndarray
        Positions in ``frame_out`` in deg. Same-frame input is returned unchanged (no wrap).
    """
    lon, lat = _deg(lon), _deg(lat)
    name = _frame_name(frame_in)
    if name == _frame_name(frame_out) and (
        name in FRAMES or (isinstance(frame_in, str) and isinstance(frame_out, str))
    ):
        return lon, lat
    c = SkyCoord(lon * u.deg, lat * u.deg, frame=frame_in).transform_to(frame_out)
    sph = c.spherical
    return sph.lon.to_value(u.deg), sph.lat.to_value(u.deg)


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
    lon1, lat1, lon2, lat2 = (np.radians(x) for x in (lon1, lat1, lon2, lat2))
    dl = lon2 - lon1
    cos_b1, sin_b1 = np.cos(lat1), np.sin(lat1)
    cos_b2, sin_b2 = np.cos(lat2), np.sin(lat2)
    num1 = cos_b2 * np.sin(dl)
    num2 = cos_b1 * sin_b2 - sin_b1 * cos_b2 * np.cos(dl)
    den = sin_b1 * sin_b2 + cos_b1 * cos_b2 * np.cos(dl)
    return np.degrees(np.arctan2(np.hypot(num1, num2), den))


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
    return float(_deg(lon)), float(_deg(lat)), frame


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
    arr = np.atleast_1d(_deg(value)).astype(float)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.shape != (2,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be a positive number or a pair (lon, lat), got {value!r}")
    return float(arr[0]), float(arr[1])


def _nearest_int(x: float) -> int:
    """Round to nearest, halves up (with a little slack for float noise like 249.99999)."""
    return int(np.floor(x + 0.5 + 1e-9))
