"""Reflected off regions: copies of an on region rotated about the pointing position.

The search follows Gammapy's ``ReflectedRegionsFinder`` so that the same regions are found:

1. A reference image in gnomonic (TAN) projection is centred on the pointing, in the frame of
   the on region, with ``binsz`` pixels (default 0.01 deg) and a width of four times the
   on-region offset plus 0.3 deg. In this azimuthal projection a rotation about the image
   centre is a rotation on the sky about the pointing.
2. The angular size of the on region seen from the pointing is measured on the pixel centres
   that the region contains (largest minus smallest position angle).
3. Candidate rotation angles start at ``size + min_distance + min_distance_input``; a candidate
   whose rotated region contains the centre of an excluded pixel (the exclusion mask sampled
   at the reference pixel centres, nearest pixel, usable outside the mask) is skipped by
   ``angle_increment``; an accepted one moves the next candidate on by ``size +
   min_distance``. The search stops before ``360 deg - size - min_distance -
   min_distance_input`` or after ``max_region_number`` regions.

Because the size is measured on pixel centres, neighbouring off regions may overlap by up to
about one reference pixel (as in Gammapy); events there count once in the off counts.

Angles are position angles (deg, north through east) about the pointing. A circular on region
gives circles of the same radius whose centres are the on centre rotated on the sphere; other
shapes are rotated in the reference projection (their orientation turns with them).

:func:`regions_contain` tests positions against sky regions the way
:func:`gammaxr.geom.region_mask` tests pixel centres (circles exactly, other shapes in a
gnomonic projection centred on the shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
import regions as rg
import xarray as xr
from astropy.coordinates import SkyCoord
from astropy.wcs.utils import celestial_frame_to_wcs

from gammaxr.geom.grid import SkyGrid
from gammaxr.geom.regions import _anchor, local_wcs, parse_regions
from gammaxr.geom.sky import _deg, angular_separation, transform_lonlat

__all__ = [
    "ReflectedRegionsConfig",
    "reflected_region_angles",
    "reflected_regions",
    "regions_contain",
    "rotate_region",
    "single_region",
]

_SPHERICAL = getattr(rg, "SphericalSkyRegion", None)
#: Reference image width beyond four times the on-region offset (deg), as Gammapy.
_WIDTH_PAD = 0.3
#: Default rotation step and on-region spacing: 0.1 rad in deg (Gammapy's defaults).
DEFAULT_ANGLE = float(np.degrees(0.1))


@dataclass(frozen=True)
class ReflectedRegionsConfig:
    """Settings of the reflected-region search (Gammapy's ``ReflectedRegionsFinder`` ones).

    Parameters
    ----------
    angle_increment : float or Quantity
        Rotation step (deg) after a candidate region that touches the exclusion mask.
        Default 0.1 rad.
    min_distance : float or Quantity
        Extra rotation (deg) between two consecutive off regions. Default 0.
    min_distance_input : float or Quantity
        Extra rotation (deg) between the on region and the first / last off region.
        Default 0.1 rad.
    max_region_number : int
        Maximum number of off regions. Default 10000.
    binsz : float or Quantity
        Pixel size (deg) of the reference image. Default 0.01 deg.
    """

    angle_increment: float = DEFAULT_ANGLE
    min_distance: float = 0.0
    min_distance_input: float = DEFAULT_ANGLE
    max_region_number: int = 10000
    binsz: float = 0.01

    def __post_init__(self):
        for name in ("angle_increment", "min_distance", "min_distance_input", "binsz"):
            object.__setattr__(self, name, float(_deg(getattr(self, name), name)))
        object.__setattr__(self, "max_region_number", int(self.max_region_number))
        if not self.angle_increment > 0:
            raise ValueError(f"angle_increment must be positive, got {self.angle_increment}")
        if self.min_distance < 0 or self.min_distance_input < 0:
            raise ValueError("min_distance and min_distance_input must not be negative")
        if not self.binsz > 0:
            raise ValueError(f"binsz must be positive, got {self.binsz}")
        if self.max_region_number < 1:
            raise ValueError("max_region_number must be at least 1")


# ------------------------------------------------------------------------------ helpers


def single_region(region: Any) -> rg.SkyRegion:
    """One sky region from a region object or a DS9 string holding exactly one shape."""
    if isinstance(region, str):
        parsed = parse_regions(region)
        if len(parsed) != 1:
            raise ValueError(f"expected one on region, the string holds {len(parsed)}")
        region = parsed[0]
    if isinstance(region, rg.Regions):
        if len(region) != 1:
            raise ValueError(f"expected one on region, got {len(region)}")
        region = region[0]
    if not isinstance(region, rg.SkyRegion):
        raise TypeError(f"expected a sky region, got {type(region).__name__}")
    if isinstance(region, rg.PointSkyRegion):
        raise TypeError("a point region has no area: give the on region a size")
    return region


def _frame_of(region: rg.SkyRegion):
    return _anchor(region).frame


def _reference_wcs(region: rg.SkyRegion, pointing: SkyCoord, binsz: float):
    """TAN image centred on the pointing, in the region frame: (wcs, npix, centre pixel)."""
    frame = _frame_of(region)
    centre = pointing.transform_to(frame)
    sep = float(_anchor(region).separation(pointing).to_value(u.deg))
    npix = int(np.rint((4 * sep + _WIDTH_PAD) / binsz))
    wcs = celestial_frame_to_wcs(frame, projection="TAN")
    sph = centre.spherical
    wcs.wcs.crval = [sph.lon.to_value(u.deg), sph.lat.to_value(u.deg)]
    wcs.wcs.crpix = [(npix + 1) / 2.0, (npix + 1) / 2.0]
    wcs.wcs.cdelt = [-binsz, binsz]
    wcs.array_shape = (npix, npix)
    wcs.wcs.set()
    centre_pix = rg.PixCoord((npix - 1) / 2.0, (npix - 1) / 2.0)
    return wcs, npix, centre_pix


def _pixels_inside(pix_region, npix: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference pixel centres (x, y) inside a pixel region, within the image."""
    bbox = pix_region.bounding_box
    x = np.arange(max(bbox.ixmin, 0), min(bbox.ixmax, npix))
    y = np.arange(max(bbox.iymin, 0), min(bbox.iymax, npix))
    xx, yy = np.meshgrid(x, y)
    inside = np.asarray(pix_region.contains(rg.PixCoord(xx, yy)), dtype=bool)
    return xx[inside].astype(float), yy[inside].astype(float)


def _angular_size(x: np.ndarray, y: np.ndarray, centre: rg.PixCoord) -> float:
    """Range of position angles (deg) of pixels seen from the centre pixel."""
    if x.size == 0:
        return 0.0
    angles = np.arctan2(centre.x - x, centre.y - y)
    size = np.ptp(angles)
    if size > np.pi:  # the region straddles the +-pi cut: measure on [0, 2 pi)
        size = np.ptp(np.mod(angles, 2 * np.pi))
    return float(np.degrees(size))


def _exclusion_values(exclusion: xr.DataArray) -> np.ndarray:
    """The mask as numpy (a small 2D image: a documented compute boundary)."""
    if exclusion.dims != ("lat", "lon"):
        exclusion = exclusion.transpose("lat", "lon")
    return np.asarray(exclusion.values, dtype=bool)


def _excluded_pixels(
    exclusion: xr.DataArray | None,
    wcs,
    npix: int,
    centre: rg.PixCoord,
    rho_range: tuple[float, float],
    frame,
) -> rg.PixCoord:
    """Centres of excluded reference pixels with centre distance in ``rho_range`` (pixels)."""
    if exclusion is None:
        return rg.PixCoord(np.zeros(0), np.zeros(0))
    grid = SkyGrid.from_xarray(exclusion)
    usable = _exclusion_values(exclusion)
    idx = np.arange(npix, dtype=float)
    rho2 = (idx[None, :] - centre.x) ** 2 + (idx[:, None] - centre.y) ** 2
    yy, xx = np.nonzero((rho2 >= rho_range[0] ** 2) & (rho2 <= rho_range[1] ** 2))
    xx, yy = xx.astype(float), yy.astype(float)
    lon, lat = wcs.wcs_pix2world(xx, yy, 0)
    i_lon, i_lat, inside = grid.bin_indices(lon, lat, frame=frame)
    excluded = np.zeros(xx.size, dtype=bool)
    excluded[inside] = ~usable[i_lat[inside], i_lon[inside]]
    return rg.PixCoord(xx[excluded], yy[excluded])


# ------------------------------------------------------------------------------ finder


def reflected_region_angles(
    on_region: Any,
    pointing: SkyCoord,
    exclusion: xr.DataArray | None = None,
    config: ReflectedRegionsConfig | None = None,
) -> np.ndarray:
    """Rotation angles of the reflected off regions of one on region.

    Parameters
    ----------
    on_region : regions.SkyRegion or str
        The on region (any extended sky shape, or a DS9 string of one shape).
    pointing : astropy.coordinates.SkyCoord
        Rotation centre (the run's pointing), any frame.
    exclusion : xarray.DataArray of bool, dims (lat, lon), optional
        Exclusion mask on a :class:`~gammaxr.geom.SkyGrid` (``frame`` attr), True where
        usable (see :func:`gammaxr.geom.exclusion_mask`). Read into memory here (a small
        image). Outside it every position is usable.
    config : ReflectedRegionsConfig, optional
        Search settings; default Gammapy's defaults.

    Returns
    -------
    numpy.ndarray, shape (n_off,)
        Position-angle increments in deg (0 to 360, increasing) about the pointing, one per
        off region; empty when the pointing lies in the on region or no place is free.
    """
    region = single_region(on_region)
    config = config or ReflectedRegionsConfig()
    wcs, npix, centre = _reference_wcs(region, pointing, config.binsz)
    on_pix = region.to_pixel(wcs)
    if bool(np.any(on_pix.contains(centre))):
        return np.zeros(0)
    x, y = _pixels_inside(on_pix, npix)
    if x.size == 0:
        raise ValueError(
            f"on region is smaller than the {config.binsz} deg reference pixels; "
            "give a smaller binsz"
        )
    step = _angular_size(x, y, centre) + config.min_distance
    angle_max = 360.0 - step - config.min_distance_input
    rho = np.hypot(x - centre.x, y - centre.y)
    margin = 2.0 * np.sqrt(2.0)  # pixel centres near the continuous region's edge
    excluded = _excluded_pixels(
        exclusion,
        wcs,
        npix,
        centre,
        (max(rho.min() - margin, 0.0), rho.max() + margin),
        _frame_of(region),
    )
    angles = []
    angle = step + config.min_distance_input
    while angle < angle_max:
        blocked = False
        if len(excluded.x):
            test = on_pix.rotate(centre, angle * u.deg)
            blocked = bool(np.any(test.contains(excluded)))
        if blocked:
            angle += config.angle_increment
            continue
        angles.append(angle)
        if len(angles) >= config.max_region_number:
            break
        angle += step
    return np.asarray(angles, dtype=float)


def rotate_region(
    region: Any, pointing: SkyCoord, angles: np.typing.ArrayLike, binsz: float = 0.01
) -> list[rg.SkyRegion]:
    """Copies of a sky region rotated about the pointing by given position angles.

    Parameters
    ----------
    region : regions.SkyRegion or str
        Region to rotate.
    pointing : astropy.coordinates.SkyCoord
        Rotation centre.
    angles : array_like of float
        Position-angle increments in deg (north through east).
    binsz : float
        Pixel size (deg) of the reference projection used for non-circular shapes.

    Returns
    -------
    list of regions.SkyRegion
        Circles keep their radius exactly and their centres are rotated on the sphere;
        other shapes are rotated in the gnomonic projection centred on the pointing.
    """
    region = single_region(region)
    angles = np.atleast_1d(np.asarray(angles, dtype=float))
    if angles.size == 0:
        return []
    if isinstance(region, rg.CircleSkyRegion):
        centre = region.center
        frame = centre.frame
        point = pointing.transform_to(frame)
        pa = point.position_angle(centre)
        sep = point.separation(centre)
        new = point.directional_offset_by(pa + angles * u.deg, sep)
        return [rg.CircleSkyRegion(center=new[k], radius=region.radius) for k in range(angles.size)]
    wcs, _, centre_pix = _reference_wcs(region, pointing, binsz)
    pix = region.to_pixel(wcs)
    return [pix.rotate(centre_pix, a * u.deg).to_sky(wcs) for a in angles]


def reflected_regions(
    on_region: Any,
    pointing: SkyCoord,
    exclusion: xr.DataArray | None = None,
    *,
    angle_increment: float | u.Quantity = DEFAULT_ANGLE,
    min_distance: float | u.Quantity = 0.0,
    min_distance_input: float | u.Quantity = DEFAULT_ANGLE,
    max_region_number: int = 10000,
    binsz: float | u.Quantity = 0.01,
) -> list[rg.SkyRegion]:
    """Reflected off regions of an on region for one pointing.

    Parameters
    ----------
    on_region : regions.SkyRegion or str
        The on region (any extended sky shape, or a DS9 string of one shape).
    pointing : astropy.coordinates.SkyCoord
        The run's pointing position (rotation centre).
    exclusion : xarray.DataArray of bool, dims (lat, lon), optional
        Exclusion mask, True where usable (see :func:`reflected_region_angles`).
    angle_increment, min_distance, min_distance_input : float or Quantity
        Rotation step after an excluded candidate, extra spacing between off regions, and
        extra spacing from the on region; deg (see :class:`ReflectedRegionsConfig`).
    max_region_number : int
        Maximum number of off regions.
    binsz : float or Quantity
        Reference pixel size in deg.

    Returns
    -------
    list of regions.SkyRegion
        The off regions, in order of increasing rotation angle (possibly empty).
    """
    config = ReflectedRegionsConfig(
        angle_increment, min_distance, min_distance_input, max_region_number, binsz
    )
    angles = reflected_region_angles(on_region, pointing, exclusion, config)
    return rotate_region(on_region, pointing, angles, config.binsz)


# ------------------------------------------------------------------------------ membership


def _contains(region: Any, lon: np.ndarray, lat: np.ndarray, frame) -> np.ndarray:
    if isinstance(region, rg.CompoundSkyRegion):
        return region.operator(
            _contains(region.region1, lon, lat, frame), _contains(region.region2, lon, lat, frame)
        )
    if isinstance(region, (rg.CircleSkyRegion, rg.CircleAnnulusSkyRegion)):
        sph = region.center.spherical
        (lon0,), (lat0,) = transform_lonlat(
            [sph.lon.to_value(u.deg)], [sph.lat.to_value(u.deg)], region.center.frame, frame
        )
        sep = angular_separation(lon0, lat0, lon, lat)
        if isinstance(region, rg.CircleSkyRegion):
            return sep < region.radius.to_value(u.deg)
        inner = region.inner_radius.to_value(u.deg)
        return (sep >= inner) & (sep < region.outer_radius.to_value(u.deg))
    coords = SkyCoord(lon * u.deg, lat * u.deg, frame=frame)
    if _SPHERICAL is not None and isinstance(region, _SPHERICAL):
        return np.asarray(region.contains(coords), dtype=bool)
    anchor = _anchor(region)
    inside = np.asarray(region.contains(coords, local_wcs(anchor)), dtype=bool)
    return inside & (coords.separation(anchor).to_value(u.deg) < 89.0)


def regions_contain(
    regions: Any, lon: np.typing.ArrayLike, lat: np.typing.ArrayLike, frame: str = "icrs"
) -> np.ndarray:
    """Which positions lie in each of several sky regions.

    Parameters
    ----------
    regions : regions.SkyRegion, list of them or str
        Sky shapes (a DS9 string may hold several).
    lon, lat : array_like, shape (n,)
        Positions in deg in ``frame`` (e.g. event ``ra``, ``dec``).
    frame : str
        Frame of the positions.

    Returns
    -------
    numpy.ndarray of bool, shape (n_regions, n)
        Circles: centre distance strictly below the radius (exact on the sphere); other
        shapes: ``region.contains`` in a gnomonic projection centred on the shape, as
        :func:`gammaxr.geom.region_mask` does.
    """
    if isinstance(regions, str):
        regions = parse_regions(regions)
    elif isinstance(regions, rg.Region):
        regions = [regions]
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    out = np.zeros((len(regions), lon.size), dtype=bool)
    for k, region in enumerate(regions):  # loop over a few regions, vectorised over positions
        if lon.size:
            out[k] = _contains(region, lon, lat, frame)
    return out
