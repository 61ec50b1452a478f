"""Spatial template model from a sky map, and its FITS image interchange.

The template is an ``xarray.DataArray`` with dims ``(lat, lon)``, 1D coordinates in deg on
a regular grid and a ``frame`` attr (``icrs`` or ``galactic``), as every gammaxr map. It is
loaded into memory once at construction (a documented boundary: templates are small).

On disk a template is a FITS image with a CAR projection whose pixel centres form a regular
lon/lat grid (CRVAL2 = 0), which both gammaxr and Gammapy read. Other projections are
refused with a message asking to reproject.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.wcs import WCS
from scipy.interpolate import RegularGridInterpolator

from ._lazy import apply_elementwise
from .parameters import Parameter
from .pixels import _step, grid_frame, pixel_solid_angle
from .spatial import SpatialModel
from .sphere import separation

__all__ = ["TemplateSpatialModel", "read_template_fits", "write_template_fits"]

_CTYPES = {"icrs": ("RA---CAR", "DEC--CAR"), "galactic": ("GLON-CAR", "GLAT-CAR")}


class TemplateSpatialModel(SpatialModel):
    """Spatial model from a sky map, normalised to 1 over the sky.

    The map is read as a surface brightness: with ``normalize=True`` (default) it is
    divided by ``sum(values * pixel solid angle)`` (Gammapy divides by the plain sum of the
    pixel values and then by each pixel's solid angle, which differs only where pixel solid
    angles vary across the map); with ``normalize=False`` the values must already be in
    sr-1 (a ``units`` attr convertible to sr-1, or none). Between pixel centres the model
    is interpolated bilinearly (up to the outer pixel edges, zero beyond). ``sample`` and
    pixel integrals on the template's own grid treat each pixel as uniform.

    Parameters
    ----------
    map : xarray.DataArray
        Dims ``(lat, lon)``, regular 1D coordinates in deg, ``attrs["frame"]``; values >= 0.
    normalize : bool
        Normalise the map to unit integral.
    filename : str, optional
        FITS file the template is (to be) written to when models are serialised.
    lon_0, lat_0 : float or Parameter
        Position of the map centre (deg, frozen; default: the map centre). Moving them
        shifts the whole map in lon and lat of its frame (fine for small shifts).
    """

    tag = "TemplateSpatialModel"
    short_tag = "template"
    default_parameters = (
        Parameter("lon_0", math.nan, "deg", frozen=True),
        Parameter("lat_0", math.nan, "deg", min=-90.0, max=90.0, frozen=True),
    )

    def __init__(
        self,
        map: xr.DataArray,
        normalize: bool = True,
        filename: str | None = None,
        **params: Any,
    ) -> None:
        if set(map.dims) != {"lat", "lon"}:
            raise ValueError(f"TemplateSpatialModel map must have dims (lat, lon), got {map.dims}")
        frame = grid_frame(map)
        map = map.transpose("lat", "lon").sortby("lat").sortby("lon")
        lon = np.asarray(map["lon"].values, dtype=float)
        lat = np.asarray(map["lat"].values, dtype=float)
        dlon, dlat = _step(lon, "lon", None), _step(lat, "lat", None)
        data = np.array(map.values, dtype=float)  # boundary: templates live in memory
        if not np.all(np.isfinite(data)) or np.any(data < 0):
            raise ValueError("TemplateSpatialModel map values must be finite and >= 0")
        omega = pixel_solid_angle(lat, dlon, dlat)[:, None]
        if normalize:
            total = float((data * omega).sum())
            if total <= 0:
                raise ValueError("TemplateSpatialModel map is zero everywhere")
            data = data / total
        else:
            unit = u.Unit(map.attrs.get("units", "sr-1") or "sr-1")
            try:
                data = data * unit.to("sr-1")
            except u.UnitConversionError as exc:
                raise ValueError(
                    f"TemplateSpatialModel with normalize=False needs values in sr-1, got {unit}"
                ) from exc
        for arr in (lon, lat, data):
            arr.setflags(write=False)
        centre = (0.5 * (lon[0] + lon[-1]), 0.5 * (lat[0] + lat[-1]))
        object.__setattr__(self, "_lon", lon)
        object.__setattr__(self, "_lat", lat)
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_steps", (dlon, dlat))
        object.__setattr__(self, "_centre", centre)
        object.__setattr__(self, "normalize", bool(normalize))
        object.__setattr__(self, "filename", None if filename is None else str(filename))
        lon_0 = _nan_to(params.pop("lon_0", math.nan), centre[0])
        lat_0 = _nan_to(params.pop("lat_0", math.nan), centre[1])
        super().__init__(frame=frame, lon_0=lon_0, lat_0=lat_0, **params)

    # -- data access -----------------------------------------------------------------
    @property
    def map(self) -> xr.DataArray:
        """The normalised template (sr-1) as a DataArray ``(lat, lon)``."""
        return xr.DataArray(
            self._data,
            coords={
                "lat": ("lat", self._lat, {"units": "deg"}),
                "lon": ("lon", self._lon, {"units": "deg"}),
            },
            dims=("lat", "lon"),
            attrs={"units": "sr-1", "frame": self.frame},
            name="template",
        )

    def with_filename(self, filename: str) -> TemplateSpatialModel:
        """A copy that is serialised to ``filename``."""
        new = self.copy()
        object.__setattr__(new, "filename", str(filename))
        return new

    def _extra_state(self) -> tuple:
        return (self.frame, self._lon, self._lat, self._data)

    def _repr_extra(self) -> str:
        return f"frame={self.frame!r}, shape={self._data.shape}"

    # -- model interface -------------------------------------------------------------
    @property
    def evaluation_radius(self) -> float:
        dlon, dlat = self._steps
        lon_e = np.array([self._lon[0] - dlon / 2, self._lon[-1] + dlon / 2])
        lat_e = np.array([self._lat[0] - dlat / 2, self._lat[-1] + dlat / 2])
        shift = (self.lon_0.value - self._centre[0], self.lat_0.value - self._centre[1])
        corners_lon, corners_lat = np.meshgrid(lon_e + shift[0], np.clip(lat_e + shift[1], -90, 90))
        return float(separation(corners_lon, corners_lat, *self.position).max())

    @property
    def bin_size_min(self) -> float:
        return float(min(abs(self._steps[0]), abs(self._steps[1])))

    def _interpolate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        dlon, dlat = self._steps
        lon_ext = np.concatenate([[self._lon[0] - dlon / 2], self._lon, [self._lon[-1] + dlon / 2]])
        lat_ext = np.concatenate([[self._lat[0] - dlat / 2], self._lat, [self._lat[-1] + dlat / 2]])
        data = np.pad(self._data, 1, mode="edge")
        interp = RegularGridInterpolator(
            (lat_ext, lon_ext), data, method="linear", bounds_error=False, fill_value=0.0
        )
        lon = np.mod(lon - self._centre[0] + 180.0, 360.0) - 180.0 + self._centre[0]
        shape = np.broadcast_shapes(np.shape(lon), np.shape(lat))
        pts = np.stack([np.broadcast_to(lat, shape).ravel(), np.broadcast_to(lon, shape).ravel()])
        return interp(pts.T).reshape(shape)

    def evaluate(self, lon, lat, lon_0, lat_0):
        """Surface brightness in sr-1 at ``lon``, ``lat`` (deg, template frame)."""
        return apply_elementwise(
            self._interpolate, lon - (lon_0 - self._centre[0]), lat - (lat_0 - self._centre[1])
        )

    def sample(self, n, rng=None):
        rng = np.random.default_rng(rng)
        dlon, dlat = self._steps
        weights = (self._data * pixel_solid_angle(self._lat, dlon, dlat)[:, None]).ravel()
        idx = rng.choice(weights.size, size=n, p=weights / weights.sum())
        j, i = np.unravel_index(idx, self._data.shape)
        lon = self._lon[i] + dlon * (rng.random(n) - 0.5)
        lo = np.sin(np.deg2rad(self._lat[j] - dlat / 2))
        hi = np.sin(np.deg2rad(self._lat[j] + dlat / 2))
        lat = np.rad2deg(np.arcsin(lo + (hi - lo) * rng.random(n)))
        lon = lon + self.lon_0.value - self._centre[0]
        lat = lat + self.lat_0.value - self._centre[1]
        return np.mod(lon, 360.0), lat


def _nan_to(given: Any, value: float) -> Any:
    """``given``, or ``value`` where ``given`` is NaN (a number or a Parameter's value)."""
    if isinstance(given, Parameter):
        return given.replace(value=value) if math.isnan(given.value) else given
    if isinstance(given, (int, float)) and math.isnan(given):
        return value
    return given


def write_template_fits(template: xr.DataArray, path: str | Path, overwrite: bool = False) -> None:
    """Write a ``(lat, lon)`` map as a FITS CAR image (CRVAL2 = 0) readable by Gammapy.

    Parameters
    ----------
    template : xarray.DataArray
        Dims ``(lat, lon)``, regular coordinates in deg, ``frame`` attr, ``units`` attr.
    path : str or Path
        Output file.
    overwrite : bool
        Replace an existing file.
    """
    frame = grid_frame(template)
    template = template.transpose("lat", "lon").sortby("lat").sortby("lon")
    lon, lat = template["lon"].values, template["lat"].values
    dlon, dlat = _step(lon, "lon", None), _step(lat, "lat", None)
    header = fits.Header()
    header["CTYPE1"], header["CTYPE2"] = _CTYPES[frame]
    header["CRPIX1"], header["CRVAL1"], header["CDELT1"] = 1.0, float(lon[0]), dlon
    header["CRPIX2"], header["CRVAL2"], header["CDELT2"] = 1.0 - lat[0] / dlat, 0.0, dlat
    header["CUNIT1"] = header["CUNIT2"] = "deg"
    if frame == "icrs":
        header["RADESYS"] = "ICRS"
    header["BUNIT"] = template.attrs.get("units", "sr-1") or "sr-1"
    data = np.asarray(template.values, dtype=float)  # boundary: writing a file
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=overwrite)


def read_template_fits(path: str | Path, hdu: str | int | None = None) -> xr.DataArray:
    """Read a FITS image on a regular lon/lat (CAR, CRVAL2 = 0) grid as a ``(lat, lon)`` map.

    Parameters
    ----------
    path : str or Path
        FITS file.
    hdu : str or int, optional
        HDU to read; default the first HDU holding an image.

    Returns
    -------
    xarray.DataArray
        Dims ``(lat, lon)`` with coordinates in deg, ``frame`` and ``units`` attrs.
    """
    with fits.open(path) as hdul:
        if hdu is None:
            found = [h for h in hdul if h.is_image and h.data is not None]
            if not found:
                raise ValueError(f"template {path}: no image HDU")
            image = found[0]
        else:
            image = hdul[hdu]
        data = np.asarray(image.data, dtype=float)
        header = image.header.copy()
    data = np.squeeze(data)
    if data.ndim != 2:
        raise ValueError(
            f"template {path}: expected a 2D image, got shape {data.shape} "
            "(energy-dependent templates are not supported)"
        )
    wcs = WCS(header, naxis=2)
    ctype = tuple(wcs.wcs.ctype)
    frame = {v: k for k, v in _CTYPES.items()}.get((ctype[0][:8], ctype[1][:8]))
    if frame is None:
        raise ValueError(
            f"template {path}: WCS {ctype} is not a CAR projection in RA/DEC or GLON/GLAT; "
            "reproject it onto a CAR grid first"
        )
    ny, nx = data.shape
    jj, ii = np.mgrid[0:ny, 0:nx]
    lon2d, lat2d = wcs.pixel_to_world_values(ii, jj)
    lon = np.unwrap(lon2d[0], period=360.0)
    lat = lat2d[:, 0]
    regular = np.allclose(
        np.mod(lon2d - lon[None, :] + 180, 360) - 180, 0, atol=1e-6
    ) and np.allclose(lat2d, lat[:, None], atol=1e-6)
    if not regular:
        raise ValueError(
            f"template {path}: pixel centres do not form a regular lon/lat grid (a CAR image "
            "needs CRVAL2 = 0); reproject it onto a gammaxr grid first"
        )
    unit = header.get("BUNIT", "")
    return (
        xr.DataArray(
            data,
            coords={"lat": ("lat", lat, {"units": "deg"}), "lon": ("lon", lon, {"units": "deg"})},
            dims=("lat", "lon"),
            attrs={"frame": frame, "units": unit},
            name="template",
        )
        .sortby("lon")
        .sortby("lat")
    )
