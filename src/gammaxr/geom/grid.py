"""Regular lon/lat sky grids (plate carrée), the spatial geometry of every map.

A :class:`SkyGrid` is a small immutable value: the pixel-centre longitudes ``lon`` and
latitudes ``lat`` (deg, 1D, increasing, constant steps) in one sky ``frame`` (``"icrs"`` or
``"galactic"``). It holds no data. Maps are xarray objects with dims ``(..., lat, lon)`` whose
coordinates come from :attr:`SkyGrid.coords` (see DESIGN.md, "sky grid").

Conventions
-----------
- Longitudes increase along the ``lon`` dim (the opposite of the usual sky-image orientation,
  where RA decreases to the right; plots invert the axis). Grids read from data with decreasing
  longitudes (Gammapy maps) are stored increasing; align data by coordinate, not by index.
- Longitudes are continuous across the 0/360 wrap: a grid centred at RA 0.5 deg runs from
  about -2 to 3 deg. Positions given to :meth:`SkyGrid.to_pixel` may use any wrap (359.9 and
  -0.1 are the same point). Two grids whose longitudes differ by 360 deg are the same grid.
- Pixel ``(j, i)`` is centred exactly on ``(lon[i], lat[j])``; fractional pixel indices put
  pixel centres at integers (0-based), pixel ``i`` spans ``[i - 0.5, i + 0.5)``.
- The equivalent WCS is CAR with CRVAL2 = 0, so that lon/lat lines are pixel rows/columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from gammaxr.geom.sky import (
    FRAMES,
    _deg,
    _frame_name,
    _nearest_int,
    _pair,
    _position,
    _wrap180,
    angular_separation,
    transform_lonlat,
)

__all__ = ["MIN_EDGE_WIDTH_RATIO", "STEP_RTOL", "SkyGrid", "pixel_solid_angle"]

#: :meth:`SkyGrid.from_center` refuses grids whose pixels at the latitude edge farthest from the
#: equator are less than this fraction as wide on the sky as at the centre (near a pole).
MIN_EDGE_WIDTH_RATIO = 0.5

#: Relative tolerance (in units of the step) for regularity and grid comparisons.
STEP_RTOL = 1e-6

_CTYPES = {"icrs": ("RA---CAR", "DEC--CAR"), "galactic": ("GLON-CAR", "GLAT-CAR")}


# ----------------------------------------------------------------------------------------------
# the grid
# ----------------------------------------------------------------------------------------------


def _increasing(values: Any, name: str) -> np.ndarray:
    """1D coordinates in increasing order: reversed if decreasing, lon unwrapped at 0/360."""
    arr = np.asarray(_deg(values), dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1D, got shape {arr.shape}")
    if arr.size >= 2:
        if name == "lon":
            arr = np.unwrap(arr, period=360.0)
        if arr[-1] < arr[0]:
            arr = arr[::-1]
    return arr


def _axis(values: Any, step: float | None, name: str) -> tuple[np.ndarray, float]:
    """Validate one regular axis; returns a read-only copy and its step."""
    arr = np.array(_deg(values), dtype=np.float64, copy=True)
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"SkyGrid {name} must be a non-empty 1D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"SkyGrid {name} has non-finite values")
    if arr.size >= 2:
        derived = (arr[-1] - arr[0]) / (arr.size - 1)
        if derived <= 0:
            raise ValueError(f"SkyGrid {name} must increase (use SkyGrid.from_coords to sort)")
        diffs = np.diff(arr)
        if np.max(np.abs(diffs - derived)) > STEP_RTOL * derived:
            raise ValueError(
                f"SkyGrid {name} is not regular: steps range from {diffs.min()!r} to "
                f"{diffs.max()!r} deg"
            )
        if step is not None and abs(step - derived) > STEP_RTOL * derived:
            raise ValueError(f"SkyGrid {name} step {step} does not match the coordinates")
        step = float(derived)
    elif step is None or not np.isfinite(step) or step <= 0:
        raise ValueError(f"SkyGrid with a single {name} value needs its step ({name}_step)")
    arr.setflags(write=False)
    return arr, float(step)


def pixel_solid_angle(lat: np.ndarray, dlon: float, dlat: float) -> np.ndarray:
    """Exact solid angle (sr) of lon/lat pixels centred at latitudes ``lat`` (deg).

    Parameters
    ----------
    lat : numpy.ndarray
        Pixel-centre latitudes in deg.
    dlon, dlat : float
        Pixel steps in deg (sign ignored).

    Returns
    -------
    numpy.ndarray
        Solid angles in sr, same shape as ``lat``.
    """
    half = 0.5 * abs(dlat)
    lo = np.deg2rad(np.clip(lat - half, -90.0, 90.0))
    hi = np.deg2rad(np.clip(lat + half, -90.0, 90.0))
    return np.deg2rad(abs(dlon)) * (np.sin(hi) - np.sin(lo))


@dataclass(frozen=True, eq=False, repr=False)
class SkyGrid:
    """A regular lon/lat grid of pixel centres (plate carrée); immutable, holds no data.

    Parameters
    ----------
    lon : array_like, shape (n_lon,)
        Pixel-centre longitudes in deg, strictly increasing with a constant step. Values may
        leave [0, 360) so that the axis stays continuous across the wrap.
    lat : array_like, shape (n_lat,)
        Pixel-centre latitudes in deg, strictly increasing with a constant step; pixel edges
        must stay within [-90, 90].
    frame : {"icrs", "galactic"}
        Sky frame of the coordinates.
    lon_step, lat_step : float, optional
        Steps in deg. Derived from the coordinates; needed only for an axis of one pixel.

    Notes
    -----
    Prefer the constructors :meth:`from_center`, :meth:`from_coords`, :meth:`from_xarray` and
    :meth:`all_sky`. Compare grids with :meth:`is_same` (``==`` does the same with the default
    tolerance).
    """

    lon: np.ndarray
    lat: np.ndarray
    frame: str = "icrs"
    lon_step: float | None = None
    lat_step: float | None = None

    def __post_init__(self) -> None:
        frame = _frame_name(self.frame)
        if frame not in FRAMES:
            raise ValueError(f"SkyGrid frame must be one of {FRAMES}, got {self.frame!r}")
        lon, dlon = _axis(self.lon, self.lon_step, "lon")
        lat, dlat = _axis(self.lat, self.lat_step, "lat")
        if lat[0] - dlat / 2 < -90 - 1e-9 or lat[-1] + dlat / 2 > 90 + 1e-9:
            raise ValueError(
                f"SkyGrid lat pixels must stay within [-90, 90] deg, got centres "
                f"{lat[0]:.6g}..{lat[-1]:.6g} with step {dlat:.6g}"
            )
        if lon.size * dlon > 360 * (1 + STEP_RTOL):
            raise ValueError(
                f"SkyGrid spans {lon.size * dlon:.6g} deg of longitude, more than 360 deg"
            )
        for name, value in (
            ("frame", frame),
            ("lon", lon),
            ("lat", lat),
            ("lon_step", dlon),
            ("lat_step", dlat),
        ):
            object.__setattr__(self, name, value)

    # ---------------------------------------------------------------- constructors

    @classmethod
    def from_center(
        cls,
        center: SkyCoord | tuple[float, float],
        width: float | tuple[float, float],
        binsz: float,
        frame: str | None = None,
    ) -> SkyGrid:
        """Grid centred on a position, with widths measured on the sky and square pixels.

        Parameters
        ----------
        center : SkyCoord or (float, float)
            Grid centre, a SkyCoord in any frame or ``(lon, lat)`` in deg in ``frame``.
        width : float or (float, float)
            Width in deg measured on the sky: one value for a square map or ``(w_lon, w_lat)``.
        binsz : float
            Pixel size in deg on the sky at the centre. The lat step is ``binsz``, the lon step
            ``binsz / cos(lat0)``, so pixels are square on the sky at the centre latitude.
        frame : {"icrs", "galactic"}, optional
            Grid frame. Default: the frame of ``center`` if a SkyCoord in icrs or galactic,
            otherwise ``"icrs"`` (for a pair; a SkyCoord in another frame needs it).

        Returns
        -------
        SkyGrid
            ``n_lon = round(w_lon / binsz)`` by ``n_lat = round(w_lat / binsz)`` pixels whose
            middle is at the centre (the centre falls on a pixel edge for even counts).

        Raises
        ------
        ValueError
            If the grid would reach the pole or its pixels near the polar edge would be less
            than :data:`MIN_EDGE_WIDTH_RATIO` as wide as at the centre; the message names the
            frame to use instead.
        """
        lon0, lat0, cframe = _position(center, frame)
        if frame is None:
            if isinstance(center, SkyCoord):
                frame = _frame_name(cframe)
                if frame not in FRAMES:
                    raise ValueError(
                        f"center is in frame {frame!r}: give frame='icrs' or frame='galactic'"
                    )
            else:
                frame, cframe = "icrs", "icrs"
        frame = _frame_name(frame)
        if cframe is not None:
            (lon0,), (lat0,) = transform_lonlat([lon0], [lat0], cframe, frame)
        w_lon, w_lat = _pair(width, "width")
        binsz = float(_deg(binsz, "binsz"))
        if not binsz > 0:
            raise ValueError(f"binsz must be positive, got {binsz}")
        n_lon, n_lat = _nearest_int(w_lon / binsz), _nearest_int(w_lat / binsz)
        if n_lon < 1 or n_lat < 1:
            raise ValueError(f"width {width} is less than half a pixel of {binsz} deg")
        _check_polar_distortion(lon0, lat0, n_lat * binsz / 2, frame)
        dlon = binsz / np.cos(np.radians(lat0))
        if n_lon * dlon > 360 * (1 + STEP_RTOL):
            raise ValueError(
                f"a {w_lon} deg wide grid at lat {lat0:.3f} deg ({frame}) needs "
                f"{n_lon * dlon:.1f} deg of longitude, more than the full circle"
            )
        lon0 = lon0 % 360.0
        lon = lon0 + dlon * (np.arange(n_lon) - (n_lon - 1) / 2)
        lat = lat0 + binsz * (np.arange(n_lat) - (n_lat - 1) / 2)
        return cls(lon, lat, frame, lon_step=dlon, lat_step=binsz)

    @classmethod
    def from_coords(cls, lon: Any, lat: Any, frame: str = "icrs") -> SkyGrid:
        """Grid from explicit regular pixel-centre coordinates.

        Parameters
        ----------
        lon, lat : array_like, 1D
            Pixel centres in deg (or angle Quantities). Decreasing axes (Gammapy maps, whose lon
            decreases) are reversed and a lon axis that jumps at the 0/360 wrap is unwrapped, so
            the grid holds the same set of pixel centres in increasing order.
        frame : {"icrs", "galactic"}
            Frame of the coordinates.

        Returns
        -------
        SkyGrid
        """
        return cls(_increasing(lon, "lon"), _increasing(lat, "lat"), frame)

    @classmethod
    def from_xarray(cls, obj: xr.Dataset | xr.DataArray) -> SkyGrid:
        """Grid of an xarray object with ``lon``/``lat`` coordinates and a ``frame`` attr.

        Parameters
        ----------
        obj : xarray.Dataset or xarray.DataArray
            Carries 1D coordinates ``lon`` and ``lat`` in deg and ``attrs["frame"]`` (or the
            ``frame`` attr of its ``lon`` coordinate). Coordinates are in memory, so this never
            computes dask data.

        Returns
        -------
        SkyGrid
            Increasing axes (see :meth:`from_coords`); a single-pixel axis takes its step from
            the coordinate's ``step`` attr.
        """
        coords = obj.coords.variables  # Variables: no DataArray built per lookup
        for name in ("lon", "lat"):
            if name not in coords:
                raise KeyError(f"object has no {name!r} coordinate (sky grid dims are lat, lon)")
            unit = coords[name].attrs.get("units", "deg")
            if unit not in ("deg", "degree"):
                raise ValueError(f"coordinate {name!r} must be in deg, has units {unit!r}")
        frame = obj.attrs.get("frame", coords["lon"].attrs.get("frame"))
        if frame is None:
            raise KeyError("object has no 'frame' attr naming its sky frame (icrs or galactic)")
        indexes = obj.xindexes
        lon, lat = (_coordinate_values(coords, indexes, name) for name in ("lon", "lat"))
        steps = [
            coords[name].attrs.get("step") if arr.size == 1 else None
            for name, arr in (("lon", lon), ("lat", lat))
        ]
        if cls is not SkyGrid or not _hashable(frame, *steps):
            return cls._from_axes(lon, lat, frame, *steps)
        # the same coordinates give the same (immutable) grid: checked once, not per call
        return _remembered_grid(lon.tobytes(), lat.tobytes(), frame, *steps)

    @classmethod
    def _from_axes(
        cls, lon: np.ndarray, lat: np.ndarray, frame: str, lon_step: Any, lat_step: Any
    ) -> SkyGrid:
        return cls(_increasing(lon, "lon"), _increasing(lat, "lat"), frame, lon_step, lat_step)

    @classmethod
    def all_sky(cls, binsz: Any, frame: str = "galactic", lon_center: Any = 0.0) -> SkyGrid:
        """Whole-sky grid with equal lon and lat steps.

        Parameters
        ----------
        binsz : float, Quantity or str
            Step in deg (or an angle such as ``"1.2 arcmin"``) for both axes; 360 / binsz and
            180 / binsz must be integers.
        frame : {"icrs", "galactic"}
            Grid frame.
        lon_center : float, Quantity or str
            Longitude in deg of the middle of the lon axis (the seam is opposite).

        Returns
        -------
        SkyGrid
        """
        from gammaxr.units import to_positive, to_unit

        binsz = to_positive(binsz, "deg", "binsz")
        lon_center = float(to_unit(lon_center, "deg", "lon_center"))
        n_lon, n_lat = 360.0 / binsz, 180.0 / binsz
        if abs(n_lon - round(n_lon)) > 1e-6 or abs(n_lat - round(n_lat)) > 1e-6:
            raise ValueError(f"binsz {binsz} deg does not divide 180 deg")
        n_lon, n_lat = round(n_lon), round(n_lat)
        lon = lon_center - 180.0 + binsz * (np.arange(n_lon) + 0.5)
        lat = -90.0 + binsz * (np.arange(n_lat) + 0.5)
        return cls(lon, lat, frame, lon_step=binsz, lat_step=binsz)

    # ---------------------------------------------------------------- description

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_lat, n_lon)``, the shape of a map on this grid."""
        return (self.lat.size, self.lon.size)

    @property
    def lon_edges(self) -> np.ndarray:
        """Pixel edges along lon in deg, shape (n_lon + 1,)."""
        return self.lon[0] + self.lon_step * (np.arange(self.lon.size + 1) - 0.5)

    @property
    def lat_edges(self) -> np.ndarray:
        """Pixel edges along lat in deg, shape (n_lat + 1,)."""
        return self.lat[0] + self.lat_step * (np.arange(self.lat.size + 1) - 0.5)

    @property
    def center(self) -> SkyCoord:
        """Middle of the grid (a pixel edge for even pixel counts), in the grid frame."""
        lon = self.lon[0] + self.lon_step * (self.lon.size - 1) / 2
        lat = self.lat[0] + self.lat_step * (self.lat.size - 1) / 2
        return SkyCoord(lon % 360 * u.deg, lat * u.deg, frame=self.frame)

    @property
    def is_full_circle(self) -> bool:
        """True if the lon axis covers all 360 deg."""
        return bool(abs(self.lon.size * self.lon_step - 360) <= 360 * STEP_RTOL)

    def __repr__(self) -> str:
        return (
            f"SkyGrid(frame={self.frame!r}, shape={self.shape}, "
            f"lon={self.lon[0]:.6g}..{self.lon[-1]:.6g} step {self.lon_step:.6g}, "
            f"lat={self.lat[0]:.6g}..{self.lat[-1]:.6g} step {self.lat_step:.6g})"
        )

    def is_same(self, other: SkyGrid, rtol: float = STEP_RTOL) -> bool:
        """True if ``other`` has the same frame and pixel centres.

        Parameters
        ----------
        other : SkyGrid
            Grid to compare.
        rtol : float
            Tolerance on each coordinate and step, as a fraction of the step. Longitudes that
            differ by a multiple of 360 deg are equal.

        Returns
        -------
        bool
        """
        if not isinstance(other, SkyGrid):
            return False
        if self.frame != other.frame or self.shape != other.shape:
            return False
        dlon, dlat = self.lon_step, self.lat_step
        return bool(
            abs(dlon - other.lon_step) <= rtol * dlon
            and abs(dlat - other.lat_step) <= rtol * dlat
            and np.all(np.abs(self.lat - other.lat) <= rtol * dlat)
            and np.all(np.abs(_wrap180(self.lon - other.lon)) <= rtol * dlon)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SkyGrid):
            return NotImplemented
        return self.is_same(other)

    __hash__ = None  # type: ignore[assignment]

    # ---------------------------------------------------------------- xarray interface

    @property
    def coords(self) -> dict[str, xr.Variable]:
        """``lon`` and ``lat`` coordinate Variables (deg) for xarray constructors.

        Each carries attrs ``units="deg"``, ``frame`` and ``step`` (deg; lets a one-pixel
        selection still describe its grid).
        """
        return {
            name: xr.Variable(
                name,
                np.array(values),
                {"units": "deg", "frame": self.frame, "step": step},
            )
            for name, values, step in (
                ("lon", self.lon, self.lon_step),
                ("lat", self.lat, self.lat_step),
            )
        }

    def to_dataset(self, coords: Mapping[str, Any] | None = None, **more_coords: Any) -> xr.Dataset:
        """Empty Dataset with the grid coordinates and ``attrs["frame"]``.

        Parameters
        ----------
        coords : mapping, optional
            Extra coordinates, e.g. ``energy_axis(1, 10, 4)`` from :mod:`gammaxr.geom.axes`.
        **more_coords
            More extra coordinates by name.

        Returns
        -------
        xarray.Dataset
            No data variables; assign maps with dims ``(..., "lat", "lon")``.
        """
        all_coords = {**self.coords, **dict(coords or {}), **more_coords}
        return xr.Dataset(coords=all_coords, attrs={"frame": self.frame})

    def _data_array(self, data: np.ndarray, name: str, units: str) -> xr.DataArray:
        return xr.DataArray(
            data,
            dims=("lat", "lon"),
            coords=self.coords,
            name=name,
            attrs={"units": units, "frame": self.frame},
        )

    @property
    def wcs(self) -> WCS:
        """Equivalent celestial WCS (CAR projection, CRVAL2 = 0); a new object on each call.

        ``wcs.pixel_to_world(i, j)`` is the centre ``(lon[i], lat[j])`` (longitude wrapped to
        [0, 360)), and ``wcs.array_shape`` is :attr:`shape`.
        """
        w = WCS(naxis=2)
        n_lon = self.lon.size
        lon_mid = self.lon[0] + self.lon_step * (n_lon - 1) / 2
        w.wcs.ctype = list(_CTYPES[self.frame])
        w.wcs.cunit = ["deg", "deg"]
        w.wcs.cdelt = [self.lon_step, self.lat_step]
        w.wcs.crval = [lon_mid % 360.0, 0.0]
        # FITS pixels are 1-based: pixel k (0-based) is at k + 1
        w.wcs.crpix = [(n_lon + 1) / 2, 1.0 - self.lat[0] / self.lat_step]
        if self.frame == "icrs":
            w.wcs.radesys = "ICRS"
        w.wcs.set()
        w.array_shape = self.shape
        return w

    def solid_angle(self) -> xr.DataArray:
        """Exact solid angle of each pixel.

        Returns
        -------
        xarray.DataArray, dims (lat, lon), sr
            ``dlon * (sin(lat + dlat/2) - sin(lat - dlat/2))`` in radians, constant along lon
            (a broadcast, read-only view: costs one row of memory).
        """
        row = pixel_solid_angle(self.lat, self.lon_step, self.lat_step)
        data = np.broadcast_to(row[:, None], self.shape)
        return self._data_array(data, "solid_angle", "sr")

    def skycoord(self) -> SkyCoord:
        """Pixel centres as a SkyCoord of shape (n_lat, n_lon) in the grid frame."""
        lon, lat = np.meshgrid(self.lon, self.lat)
        return SkyCoord(lon * u.deg, lat * u.deg, frame=self.frame)

    def separation(self, center: SkyCoord | tuple[float, float], frame: Any = None) -> xr.DataArray:
        """Angular distance of every pixel centre from a position.

        Parameters
        ----------
        center : SkyCoord or (float, float)
            Position, a SkyCoord in any frame or ``(lon, lat)`` in deg in ``frame``.
        frame : str, optional
            Frame of a ``(lon, lat)`` pair; default the grid frame.

        Returns
        -------
        xarray.DataArray, dims (lat, lon), deg
        """
        return self._data_array(self.separation_values(center, frame), "separation", "deg")

    def separation_values(
        self, center: SkyCoord | tuple[float, float], frame: Any = None
    ) -> np.ndarray:
        """Angular distance of every pixel centre from ``center`` as a numpy array.

        Parameters
        ----------
        center, frame
            As for :meth:`separation`.

        Returns
        -------
        numpy.ndarray, shape (n_lat, n_lon), deg
        """
        lon0, lat0, cframe = _position(center, frame or self.frame)
        (lon0,), (lat0,) = transform_lonlat([lon0], [lat0], cframe, self.frame)
        return angular_separation(lon0, lat0, self.lon[None, :], self.lat[:, None])

    # ---------------------------------------------------------------- positions to pixels

    def _pixel_numpy(self, lon: Any, lat: Any, frame: Any) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = transform_lonlat(lon, lat, frame, self.frame)
        half_span = self.lon_step * (self.lon.size - 1) / 2
        lon_mid = self.lon[0] + half_span
        i_lon = (_wrap180(lon - lon_mid) + half_span) / self.lon_step
        i_lat = (lat - self.lat[0]) / self.lat_step
        return i_lon, i_lat

    def _bins_numpy(
        self, lon: Any, lat: Any, frame: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i_lon, i_lat = self._pixel_numpy(lon, lat, frame)
        with np.errstate(invalid="ignore"):
            k_lon = np.floor(i_lon + 0.5)
            k_lat = np.floor(i_lat + 0.5)
            inside = (k_lon >= 0) & (k_lon < self.lon.size) & (k_lat >= 0)
            inside &= k_lat < self.lat.size
        k_lon = np.where(inside, k_lon, -1).astype(np.int64)
        k_lat = np.where(inside, k_lat, -1).astype(np.int64)
        return k_lon, k_lat, inside

    def _dispatch(self, func, n_out: int, dtypes: list, lon: Any, lat: Any, frame: Any):
        if isinstance(lon, SkyCoord):
            if lat is not None:
                raise TypeError("give either a SkyCoord or lon and lat, not both")
            sph = lon.spherical
            return func(sph.lon.to_value(u.deg), sph.lat.to_value(u.deg), lon.frame)
        if lat is None:
            raise TypeError("lat is required when lon is not a SkyCoord")
        frame = self.frame if frame is None else frame
        if isinstance(lon, xr.DataArray) or isinstance(lat, xr.DataArray):
            return xr.apply_ufunc(
                func,
                lon,
                lat,
                kwargs={"frame": frame},
                dask="parallelized",
                output_dtypes=dtypes,
                output_core_dims=[[]] * n_out,
            )
        return func(lon, lat, frame=frame)

    def to_pixel(self, lon: Any, lat: Any = None, frame: Any = None) -> tuple[Any, Any]:
        """Fractional pixel indices of sky positions (pixel centres at integers).

        Parameters
        ----------
        lon, lat : array_like, Quantity, xarray.DataArray or SkyCoord
            Positions in deg, any shape (``lon`` alone may be a SkyCoord). DataArrays may be
            dask-backed: the result is then lazy (one task per chunk).
        frame : str or astropy frame, optional
            Frame of ``lon``/``lat``; default the grid frame. Positions are converted with
            astropy only when the frame differs. Any longitude wrap is accepted.

        Returns
        -------
        i_lon, i_lat : numpy.ndarray or xarray.DataArray of float
            Index along lon and lat; a position is in pixel ``(j, i)`` if
            ``i - 0.5 <= i_lon < i + 0.5`` and ``j - 0.5 <= i_lat < j + 0.5``. Longitudes are
            taken within 180 deg of the grid middle.
        """
        return self._dispatch(self._pixel_numpy, 2, [float, float], lon, lat, frame)

    def bin_indices(self, lon: Any, lat: Any = None, frame: Any = None) -> tuple[Any, Any, Any]:
        """Integer pixel indices of sky positions, for histogramming events.

        Parameters
        ----------
        lon, lat, frame
            As for :meth:`to_pixel`.

        Returns
        -------
        i_lon, i_lat : numpy.ndarray or xarray.DataArray of int64
            Pixel indices, -1 where the position is outside the grid.
        inside : numpy.ndarray or xarray.DataArray of bool
            True where the position falls in a pixel of the grid (NaN positions are outside).

        Examples
        --------
        >>> i_lon, i_lat, ok = grid.bin_indices(ra, dec, frame="icrs")  # doctest: +SKIP
        >>> counts = np.bincount(i_lat[ok] * grid.shape[1] + i_lon[ok], minlength=n_pix)  # doctest: +SKIP
        """
        dtypes = [np.int64, np.int64, bool]
        return self._dispatch(self._bins_numpy, 3, dtypes, lon, lat, frame)

    # ---------------------------------------------------------------- sub- and super-grids

    def cutout(
        self,
        center: SkyCoord | tuple[float, float],
        width: float | tuple[float, float] | None = None,
        *,
        radius: float | None = None,
        frame: Any = None,
    ) -> SkyGrid:
        """Exact sub-grid around a position; see :func:`gammaxr.geom.cutout.cutout_grid`."""
        from gammaxr.geom.cutout import cutout_grid

        return cutout_grid(self, center, width, radius=radius, frame=frame)

    def slices_in(self, parent: SkyGrid) -> dict[str, slice]:
        """Index slices of this grid in ``parent``; see :func:`gammaxr.geom.cutout.grid_slices`."""
        from gammaxr.geom.cutout import grid_slices

        return grid_slices(self, parent)

    def upsample(self, factor: int) -> SkyGrid:
        """Grid with each pixel split into ``factor`` x ``factor``; see
        :func:`gammaxr.geom.cutout.upsample_grid`."""
        from gammaxr.geom.cutout import upsample_grid

        return upsample_grid(self, factor)

    def downsample(self, factor: int) -> SkyGrid:
        """Grid of ``factor`` x ``factor`` merged pixels; see
        :func:`gammaxr.geom.cutout.downsample_grid`."""
        from gammaxr.geom.cutout import downsample_grid

        return downsample_grid(self, factor)


def _check_polar_distortion(lon0: float, lat0: float, half_height: float, frame: str) -> None:
    """Raise if a grid centred at lat0 with the given half height is too close to a pole."""
    lat_far = abs(lat0) + half_height
    ratio = np.cos(np.radians(min(lat_far, 90.0))) / np.cos(np.radians(lat0))
    if lat_far < 90 and ratio >= MIN_EDGE_WIDTH_RATIO:
        return
    other = "galactic" if frame == "icrs" else "icrs"
    (_,), (lat_other,) = transform_lonlat([lon0], [lat0], frame, other)
    problem = (
        "covers the pole"
        if lat_far >= 90
        else f"has edge pixels {ratio:.2f} times as wide on the sky as at the centre"
    )
    raise ValueError(
        f"a grid centred at lat {lat0:.3f} deg in {frame!r} reaching lat "
        f"{np.sign(lat0) * lat_far:.3f} deg {problem}: build it in the {other!r} frame "
        f"(centre at lat {lat_other:.2f} deg there) or make it narrower"
    )


def _coordinate_values(coords: Mapping, indexes: Mapping, name: str) -> np.ndarray:
    """The values of the coordinate ``name`` as float64: from its pandas index when it has
    one (half the time of the Variable's ``values``, which converts the index again)."""
    values = getattr(getattr(indexes.get(name), "index", None), "values", None)
    if not isinstance(values, np.ndarray):
        values = coords[name].values
    return np.asarray(values, dtype=np.float64)


def _hashable(*values: Any) -> bool:
    try:
        hash(values)
    except TypeError:
        return False
    return True


@lru_cache(maxsize=32)
def _remembered_grid(
    lon_bytes: bytes, lat_bytes: bytes, frame: str, lon_step: Any, lat_step: Any
) -> SkyGrid:
    """:meth:`SkyGrid.from_xarray`'s grid of these coordinates (float64 bytes): a small
    memo of a pure function whose value is immutable (the unwrapping and regularity checks
    cost 0.1-0.2 ms, as much as a small map's convolution). A grid that fails its checks
    raises each time (exceptions are not remembered)."""
    lon = np.frombuffer(lon_bytes, dtype=np.float64)
    lat = np.frombuffer(lat_bytes, dtype=np.float64)
    return SkyGrid._from_axes(lon, lat, frame, lon_step, lat_step)
