"""Gammapy map geometry <-> gammaxr grids and binned axes (WCS headers and ``*_BANDS`` tables).

Gammapy stores a map as a FITS image whose two first axes follow a celestial WCS and whose
other axes (energy, true energy, rad...) are described by a ``<HDU>_BANDS`` table
(``AXCOLSi`` names the edge columns of axis ``i``, ``INTERPi`` its interpolation). gammaxr
maps live on a regular lon/lat grid (:class:`gammaxr.geom.SkyGrid`, the WCS CAR with
CRVAL2 = 0) with longitudes increasing along ``lon``.

Geometry conversion (``geometry=``):

``"exact"``
    The WCS pixel centres are a regular lon/lat grid: CAR with CRVAL2 = 0 and no rotation
    (gammaxr's own grid). Pixels are reordered (Gammapy's lon decreases) and nothing else.
``"relabel"``
    Any non-rotated celestial WCS: each pixel keeps its value and is placed on the regular
    lon/lat grid with the same reference point and steps (lat step ``CDELT2``, lon step
    ``|CDELT1| / cos(CRVAL2)``, pixels square on the sky at the reference point). Sums are
    kept exactly; pixel positions move by up to the largest shift between the WCS centres and
    the grid centres, which a :class:`GammapyGeometryWarning` states (deg and pixels). For
    Gammapy's default ``WcsGeom.create(proj="CAR")`` maps (CRVAL2 = the centre latitude)
    the shift grows as ``x * y * tan(lat0)`` away from the centre: 0.008 deg (0.39 pixel) in
    the corners of a 2 x 2 deg map at Dec 22 deg.
``"auto"`` (default)
    ``"exact"`` where possible, else ``"relabel"`` when the largest shift is at most
    :data:`AUTO_MAX_SHIFT` pixels, else a :class:`GammapyGeometryError` that names the file,
    the shift and the options.

The WCS header a relabelled map was read from is kept in the dataset's ``gammapy_wcs`` attr;
writing a dataset whose grid is still that relabelled grid writes the original header back
(so Gammapy -> gammaxr -> Gammapy restores the original geometry); any other grid is written
as CAR with CRVAL2 = 0 (exact).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.wcs import WCS

from gammaxr.geom.axes import LOG_AXES, axis_coords, axis_lo_hi
from gammaxr.geom.grid import SkyGrid
from gammaxr.geom.sky import angular_separation

__all__ = [
    "AUTO_MAX_SHIFT",
    "GEOMETRY_MODES",
    "GammapyGeometryError",
    "GammapyGeometryWarning",
    "WcsGrid",
    "axes_from_bands",
    "axis_edges_of",
    "bands_hdu",
    "grid_header",
    "grid_from_header",
]

#: Geometry conversion modes of :func:`grid_from_header` (module docstring).
GEOMETRY_MODES = ("auto", "exact", "relabel")
#: ``geometry="auto"`` relabels grids whose pixel centres move by at most this many pixels.
AUTO_MAX_SHIFT = 0.5
#: Shift (in pixels) below which a conversion counts as exact (float rounding only).
EXACT_SHIFT = 1e-6

#: Gammapy axis name -> (centre column, min column, max column) of a ``*_BANDS`` table.
_BAND_COLUMNS = {
    "energy": ("ENERGY", "E_MIN", "E_MAX"),
    "energy_true": ("ENERGY_TRUE", "ENERGY_TRUE_MIN", "ENERGY_TRUE_MAX"),
    "rad": ("RAD", "RAD_MIN", "RAD_MAX"),
    "migra": ("MIGRA", "MIGRA_MIN", "MIGRA_MAX"),
}
_FRAMES = {"RA": "icrs", "DEC": "icrs", "GLON": "galactic", "GLAT": "galactic"}


class GammapyGeometryError(ValueError):
    """A Gammapy map geometry that gammaxr's regular lon/lat grids cannot hold as asked."""


class GammapyGeometryWarning(UserWarning):
    """A Gammapy map was placed on a regular lon/lat grid that moves its pixels (relabel)."""


class WcsGrid:
    """A Gammapy image geometry as a gammaxr grid.

    Attributes
    ----------
    grid : SkyGrid
        The regular lon/lat grid (increasing lon and lat).
    flip_lon, flip_lat : bool
        Whether the file's x (y) axis runs opposite to the grid's lon (lat).
    shift : float
        Largest distance (deg) between a WCS pixel centre and its grid centre.
    shift_pixels : float
        ``shift`` in units of the lat step.
    header : str
        The celestial WCS header text of the file.
    pixel_side : float
        ``max(|CDELT1|, |CDELT2|)``, deg: the side of the WCS pixels on the sky at the
        reference point.
    """

    def __init__(self, grid, flip_lon, flip_lat, shift, shift_pixels, header, pixel_side):
        self.grid, self.flip_lon, self.flip_lat = grid, flip_lon, flip_lat
        self.shift, self.shift_pixels, self.header = shift, shift_pixels, header
        self.pixel_side = pixel_side
        self.statement = ""  # what relabelling did, for the caller's warning

    @property
    def exact(self) -> bool:
        """Whether the grid holds the WCS pixel centres exactly."""
        return self.shift_pixels <= EXACT_SHIFT

    def to_grid_order(self, data: np.ndarray) -> np.ndarray:
        """A file array (``..., y, x``) in grid order (``..., lat, lon``, both increasing)."""
        if self.flip_lon:
            data = data[..., ::-1]
        if self.flip_lat:
            data = data[..., ::-1, :]
        return np.ascontiguousarray(data)


def _frame(header: Mapping[str, Any], source: str) -> str:
    ctype1 = str(header.get("CTYPE1", "")).split("-")[0].strip().upper()
    ctype2 = str(header.get("CTYPE2", "")).split("-")[0].strip().upper()
    frame = _FRAMES.get(ctype1)
    if frame is None or _FRAMES.get(ctype2) != frame:
        raise GammapyGeometryError(
            f"{source}: WCS axes {header.get('CTYPE1')!r}, {header.get('CTYPE2')!r} are not a "
            "celestial lon/lat pair in icrs (RA/DEC) or galactic (GLON/GLAT)"
        )
    radesys = str(header.get("RADESYS", "ICRS")).strip().upper()
    if frame == "icrs" and radesys not in ("ICRS", "FK5"):
        raise GammapyGeometryError(f"{source}: RADESYS {radesys!r} is not supported (ICRS)")
    return frame


def _check_not_rotated(header: Mapping[str, Any], source: str) -> None:
    rotated = any(abs(float(header.get(k, 0.0))) > 0 for k in ("PC1_2", "PC2_1", "CD1_2", "CD2_1"))
    if rotated or abs(float(header.get("CROTA2", 0.0))) > 0:
        raise GammapyGeometryError(f"{source}: rotated WCS grids are not supported")


def grid_from_header(
    header: fits.Header,
    shape: tuple[int, int],
    *,
    geometry: str = "auto",
    source: str = "",
    warn: bool = True,
) -> WcsGrid:
    """The gammaxr grid of a Gammapy image header (module docstring).

    Parameters
    ----------
    header : astropy.io.fits.Header
        Image header with a 2D celestial WCS on its first two axes.
    shape : (int, int)
        Image shape ``(n_y, n_x)``.
    geometry : {"auto", "exact", "relabel"}
        Conversion mode.
    source : str
        File and HDU, for messages.
    warn : bool
        Issue the :class:`GammapyGeometryWarning` of a relabelled grid here; with False the
        caller issues ``result.statement``.

    Returns
    -------
    WcsGrid

    Raises
    ------
    GammapyGeometryError
        If the WCS is not celestial or rotated, or the conversion is not allowed by
        ``geometry``.
    """
    if geometry not in GEOMETRY_MODES:
        raise ValueError(f"geometry must be one of {GEOMETRY_MODES}, got {geometry!r}")
    frame = _frame(header, source)
    _check_not_rotated(header, source)
    wcs = WCS(header, naxis=2).celestial
    n_y, n_x = shape
    cdelt1, cdelt2 = (float(v) for v in wcs.wcs.cdelt)
    crpix1, crpix2 = (float(v) for v in wcs.wcs.crpix)
    crval1, crval2 = (float(v) for v in wcs.wcs.crval)
    x, y = np.arange(n_x, dtype=float), np.arange(n_y, dtype=float)
    lon = crval1 + (x + 1 - crpix1) * cdelt1 / np.cos(np.radians(crval2))
    lat = crval2 + (y + 1 - crpix2) * cdelt2
    grid = SkyGrid.from_coords(lon, lat, frame)
    xx, yy = np.meshgrid(x, y)
    true_lon, true_lat = wcs.pixel_to_world_values(xx, yy)
    label_lon, label_lat = np.meshgrid(lon, lat)
    shift = float(np.max(angular_separation(true_lon, true_lat, label_lon, label_lat)))
    result = WcsGrid(
        grid,
        flip_lon=cdelt1 < 0,
        flip_lat=cdelt2 < 0,
        shift=shift,
        shift_pixels=shift / abs(cdelt2),
        header=wcs.to_header().tostring(sep="\n"),
        pixel_side=max(abs(cdelt1), abs(cdelt2)),
    )
    if result.exact:
        return result
    what = (
        f"{source}: the WCS ({header.get('CTYPE1')}, CRVAL2 = {crval2:g}) is not a regular "
        f"lon/lat grid; placed on one, pixels move by up to {shift:.3g} deg "
        f"({result.shift_pixels:.2f} pixels)"
    )
    if geometry == "exact" or (geometry == "auto" and result.shift_pixels > AUTO_MAX_SHIFT):
        raise GammapyGeometryError(
            f"{what}. Pass geometry='relabel' to accept this (sums are kept, positions move), "
            "or re-make the map in Gammapy on a CAR grid with CRVAL2 = 0 (exact)"
        )
    result.statement = f"{what} (geometry='relabel': sums are kept, positions move by at most this)"
    if warn:
        warnings.warn(result.statement, GammapyGeometryWarning, stacklevel=2)
    return result


def grid_header(grid: SkyGrid, original: str | None = None) -> fits.Header:
    """The WCS header of ``grid`` for a Gammapy image (lon decreasing along x).

    Parameters
    ----------
    grid : SkyGrid
        The grid.
    original : str, optional
        A WCS header text the grid was relabelled from (``gammapy_wcs`` attr); used when
        relabelling it again gives ``grid``, else ignored.

    Returns
    -------
    astropy.io.fits.Header
        CAR with CRVAL2 = 0 and CDELT1 < 0 (exact), or the original header.
    """
    if original:
        header = fits.Header.fromstring(original, sep="\n")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", GammapyGeometryWarning)
                again = grid_from_header(header, grid.shape, geometry="relabel")
        except GammapyGeometryError:
            again = None
        if again is not None and again.flip_lon and not again.flip_lat and again.grid == grid:
            return header
    wcs = grid.wcs
    wcs.wcs.cdelt = [-grid.lon_step, grid.lat_step]  # centre pixel fixed: only x reverses
    wcs.wcs.set()
    return wcs.to_header()


# ----------------------------------------------------------------------------- BANDS tables


def _axis_name(min_column: str) -> str:
    for name, (_, lo, _) in _BAND_COLUMNS.items():
        if lo == min_column.upper():
            return name
    return min_column.upper().removesuffix("_MIN").lower()


def axes_from_bands(bands: fits.BinTableHDU, source: str = "") -> list[tuple[str, dict]]:
    """Non-spatial axes of a Gammapy map from its ``*_BANDS`` table.

    Parameters
    ----------
    bands : astropy.io.fits.BinTableHDU
        The bands table (``AXCOLSi``, ``INTERPi`` keywords).
    source : str
        File and HDU, for messages.

    Returns
    -------
    list of (str, dict)
        ``(dim, coords)`` per axis in FITS order (axis 1 first, i.e. the last numpy axis
        before the spatial ones), coords from :func:`gammaxr.geom.axis_coords`.
    """
    header = bands.header
    axes = []
    i = 1
    while f"AXCOLS{i}" in header:
        columns = [c.strip() for c in str(header[f"AXCOLS{i}"]).split(",")]
        if len(columns) != 2:
            raise ValueError(f"{source}: axis {i} is given by nodes {columns}, not bin edges")
        lo_name, hi_name = columns
        name = _axis_name(lo_name)
        col_lo, col_hi = bands.columns[lo_name], bands.columns[hi_name]
        lo = np.unique(np.asarray(bands.data[lo_name], dtype=float))
        hi = np.unique(np.asarray(bands.data[hi_name], dtype=float))
        unit = (col_lo.unit or col_hi.unit or "").strip()
        interp = str(header.get(f"INTERP{i}", "lin")).strip()
        interp = "log" if interp == "log" else "lin"
        axes.append((name, axis_coords(name, None, unit, lo=lo, hi=hi, interp=interp)))
        i += 1
    return axes


def bands_hdu(
    axes: Sequence[tuple[str, np.ndarray, np.ndarray, str]], name: str
) -> fits.BinTableHDU:
    """A Gammapy ``*_BANDS`` table for the non-spatial axes of a map.

    Parameters
    ----------
    axes : sequence of (str, numpy.ndarray, numpy.ndarray, str)
        ``(dim, lo, hi, unit)`` per non-spatial axis in numpy order (slowest first); FITS
        axis 1 is the last one.
    name : str
        EXTNAME of the table (``"COUNTS_BANDS"``...).

    Returns
    -------
    astropy.io.fits.BinTableHDU
        One row per combination of bins (FITS axis 1 fastest), columns ``CHANNEL`` then the
        centre, min and max columns of each axis.
    """
    fits_order = list(reversed(axes))
    sizes = [len(lo) for _, lo, _, _ in fits_order]
    index = np.indices(sizes[::-1]).reshape(len(sizes), -1)[::-1]  # axis 1 varies fastest
    columns = [fits.Column("CHANNEL", "K", array=np.arange(index.shape[1]))]
    header = fits.Header()
    for i, ((dim, lo, hi, unit), idx) in enumerate(zip(fits_order, index, strict=True), start=1):
        centre_name, lo_name, hi_name = _BAND_COLUMNS.get(
            dim, (dim.upper(), f"{dim.upper()}_MIN", f"{dim.upper()}_MAX")
        )
        lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
        interp = "log" if dim in LOG_AXES else "lin"
        centre = np.sqrt(lo * hi) if interp == "log" else 0.5 * (lo + hi)
        for col, values in ((centre_name, centre), (lo_name, lo), (hi_name, hi)):
            columns.append(fits.Column(col, "D", unit=unit or None, array=values[idx]))
        header[f"AXCOLS{i}"] = f"{lo_name},{hi_name}"
        header[f"INTERP{i}"] = interp
    return fits.BinTableHDU.from_columns(columns, header=header, name=name)


def axis_edges_of(ds: xr.Dataset, dim: str) -> tuple[str, np.ndarray, np.ndarray, str]:
    """``(dim, lo, hi, unit)`` of a binned axis of ``ds`` (for :func:`bands_hdu`)."""
    lo, hi = axis_lo_hi(ds, dim)
    return dim, np.asarray(lo), np.asarray(hi), str(ds.coords[dim].attrs.get("units", ""))
