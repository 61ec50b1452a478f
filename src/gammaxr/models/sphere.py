"""Spherical geometry used by the spatial models: re-exported from :mod:`gammaxr.geom.sky`.

Its one home is :mod:`gammaxr.geom.sky`; ``separation`` is
:func:`gammaxr.geom.sky.angular_separation`.
"""

from __future__ import annotations

from gammaxr.geom.sky import FRAMES, offset_by, one_minus_cos_separation, position_angle
from gammaxr.geom.sky import angular_separation as separation
from gammaxr.geom.sky import transform_lonlat as _transform_lonlat

__all__ = [
    "FRAMES",
    "offset_by",
    "one_minus_cos_separation",
    "position_angle",
    "separation",
    "transform_lonlat",
]


def transform_lonlat(lon, lat, frame_from: str, frame_to: str):
    """:func:`gammaxr.geom.sky.transform_lonlat` for the model frames (``icrs``, ``galactic``).

    Raises
    ------
    ValueError
        For any other frame.
    """
    for frame in (frame_from, frame_to):
        if frame not in FRAMES:
            raise ValueError(f"unknown sky frame {frame!r}; use one of {FRAMES}")
    return _transform_lonlat(lon, lat, frame_from, frame_to)
