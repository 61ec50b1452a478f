"""Per-run maps on a sky grid, as plain numpy functions (one run in, arrays out).

All functions take a :class:`gammaxr.geom.SkyGrid` and return numpy arrays with axes
``(energy[_true], lat, lon)`` (or with ``rad``); :mod:`gammaxr.reduce.dataset` wraps them into
xarray. They follow Gammapy's ``MapDatasetMaker`` so that results agree pixel by pixel.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import xarray as xr

from gammaxr._dataarrays import with_values
from gammaxr.geom.fov import sky_to_fov, sky_to_fov_and_offset
from gammaxr.geom.grid import SkyGrid, pixel_solid_angle, transform_lonlat
from gammaxr.irf import (
    edisp_kernel,
    evaluate_aeff_on_offsets,
    integrate_bkg_energy,
    psf_profile_map,
)

__all__ = [
    "background_cube",
    "bin_counts",
    "counts_cube",
    "edisp_kernel_cube",
    "event_bins",
    "exposure_cube",
    "fill_missing_along_energy",
    "pixel_offsets",
    "psf_cube",
]


def counts_cube(
    energy: np.ndarray, ra: np.ndarray, dec: np.ndarray, grid: SkyGrid, energy_edges: np.ndarray
) -> np.ndarray:
    """Histogram events into (energy, lat, lon).

    Parameters
    ----------
    energy : numpy.ndarray, shape (n,)
        Reconstructed event energies in TeV.
    ra, dec : numpy.ndarray, shape (n,)
        Event directions in deg (icrs).
    grid : SkyGrid
        Target sky grid (any frame).
    energy_edges : numpy.ndarray, shape (m + 1,)
        Reco-energy bin edges in TeV; bins include their lower edge.

    Returns
    -------
    numpy.ndarray, shape (m, n_lat, n_lon), float32
        Event counts.
    """
    bins = event_bins(energy, ra, dec, grid, energy_edges)
    return bin_counts(*bins, (len(energy_edges) - 1, *grid.shape))


def event_bins(
    energy: np.ndarray, ra: np.ndarray, dec: np.ndarray, grid: SkyGrid, energy_edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(energy, lat, lon) bin indices of the events inside the bins (arguments as for
    :func:`counts_cube`); events outside are left out.

    Returns
    -------
    i_e, i_lat, i_lon : numpy.ndarray of int64, shape (k,)
    """
    n_e = len(energy_edges) - 1
    i_lon, i_lat, inside = grid.bin_indices(ra, dec, frame="icrs")
    i_e = np.searchsorted(energy_edges, energy, side="right") - 1
    ok = inside & (i_e >= 0) & (i_e < n_e)
    return i_e[ok], i_lat[ok], i_lon[ok]


def bin_counts(
    i_e: np.ndarray, i_lat: np.ndarray, i_lon: np.ndarray, shape: tuple[int, int, int]
) -> np.ndarray:
    """Histogram of bin indices (from :func:`event_bins`, all within ``shape``) as a float32
    cube of ``shape`` (energy, lat, lon)."""
    n_e, n_lat, n_lon = shape
    counts = np.bincount((i_e * n_lat + i_lat) * n_lon + i_lon, minlength=n_e * n_lat * n_lon)
    return counts.reshape(shape).astype(np.float32)


#: FoV alignments of ``bkg_3d`` tables that :func:`background_cube` evaluates (RA/Dec axes).
_RADEC = ("RADEC", "REVERSE_LON_RADEC")


def _fov_alignment(bkg: xr.DataArray) -> str:
    """How a ``bkg_3d`` table's FoV axes are aligned (GADF ``FOVALIGN``; RADEC if unsaid)."""
    return bkg.attrs.get("fov_alignment", "RADEC")


def pixel_offsets(
    grid: SkyGrid, pointing: tuple[float, float], bkg: xr.DataArray | None = None
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """The offset of every pixel from the pointing, and the pixels' FoV coordinates when
    ``bkg`` is a ``bkg_3d`` table aligned with RA/Dec on an icrs grid (the two share their
    trigonometry: :func:`gammaxr.geom.fov.sky_to_fov_and_offset`).

    Parameters
    ----------
    grid : SkyGrid
        The sky grid.
    pointing : (float, float)
        Pointing RA, Dec in deg (icrs).
    bkg : xarray.DataArray, optional
        The background table the FoV coordinates are for (None: offsets only).

    Returns
    -------
    offset : numpy.ndarray, shape (n_lat, n_lon)
        Deg, as ``grid.separation_values(pointing, "icrs")``.
    fov : (numpy.ndarray, numpy.ndarray) or None
        FoV longitude and latitude in deg (for ``background_cube(fov=...)``), or None.
    """
    radec = bkg is not None and "offset" not in bkg.dims and _fov_alignment(bkg) in _RADEC
    if not (radec and grid.frame == "icrs"):
        return grid.separation_values(pointing, "icrs"), None
    fov_lon, fov_lat, offset = sky_to_fov_and_offset(
        grid.lon[None, :], grid.lat[:, None], *pointing
    )
    return offset, (fov_lon, fov_lat)


def exposure_cube(
    aeff: xr.DataArray,
    offset: np.ndarray,
    livetime: float,
    energy_true: np.ndarray,
    *,
    dtype: np.typing.DTypeLike = np.float64,
) -> np.ndarray:
    """Exposure: effective area at each pixel's offset and true energy, times livetime.

    Parameters
    ----------
    aeff : xarray.DataArray
        ``aeff_2d`` table (energy_true, offset), m2.
    offset : numpy.ndarray, shape (n_lat, n_lon)
        Offset of each pixel centre from the pointing, deg.
    livetime : float
        Livetime in s.
    energy_true : numpy.ndarray, shape (m,)
        True-energy bin centres (log) in TeV.
    dtype : numpy dtype
        Of the result (computed in float64, stored as ``dtype``).

    Returns
    -------
    numpy.ndarray, shape (m, n_lat, n_lon)
        Exposure in m2 s.
    """
    area = evaluate_aeff_on_offsets(aeff, energy_true, offset)
    exposure = np.empty(area.shape, dtype)
    for plane, out in zip(area, exposure, strict=True):  # plane by plane: ~2x faster than
        plane *= livetime  # one multiply that casts through numpy's buffers
        out[...] = plane
    return exposure


def fill_missing_along_energy(bkg: xr.DataArray) -> xr.DataArray:
    """Fill zero or non-finite background rates by log interpolation along energy.

    Each missing entry is replaced by interpolating the logarithm of the valid rates of the
    same spatial bin against the energy bin index; entries outside the valid range stay as
    they are (as Gammapy's ``interp_missing_data(axis_name="energy")``).

    Parameters
    ----------
    bkg : xarray.DataArray
        ``bkg_2d`` or ``bkg_3d`` table with an ``energy`` dim.

    Returns
    -------
    xarray.DataArray
        A new table; the input is not modified.
    """
    axis = bkg.dims.index("energy")
    values = np.asarray(bkg.values, dtype=float)
    missing = ~np.isfinite(values) | (values == 0)
    # energy first, one column per spatial bin (views when energy is the first axis, as in
    # the tables read from files); only the columns with a gap between valid entries can
    # be filled (tables miss their lowest and highest energies in most columns)
    by_energy = np.moveaxis(values, axis, 0)
    n, spatial = by_energy.shape[0], by_energy.shape[1:]
    missing = np.moveaxis(missing, axis, 0).reshape(n, -1)
    valid = ~missing
    first, last = valid.argmax(axis=0), n - 1 - valid[::-1].argmax(axis=0)
    count = np.count_nonzero(valid, axis=0)
    columns = np.flatnonzero((count > 0) & (count < last - first + 1))
    if not columns.size:
        return bkg
    missing = missing[:, columns]
    index = np.arange(n)[:, None]
    # nearest valid entry below and above each entry along energy: a running max / min
    # over the energy bins, a row of columns at a time
    below, above = np.where(missing, -1, index), np.where(missing, n, index)
    for i in range(1, n):
        np.maximum(below[i - 1], below[i], out=below[i])
        np.minimum(above[n - i], above[n - i - 1], out=above[n - i - 1])
    energy, column = np.nonzero(missing & (below >= 0) & (above < n))  # the entries to fill
    if not energy.size:
        return bkg
    lo, hi = below[energy, column], above[energy, column]
    t = (energy - lo) / (hi - lo)
    where = np.unravel_index(columns[column], spatial) if spatial else ()  # 1D: energy only
    log_lo = np.log(by_energy[(lo, *where)])
    log_hi = np.log(by_energy[(hi, *where)])
    out = values.copy()
    np.moveaxis(out, axis, 0)[(energy, *where)] = np.exp((1 - t) * log_lo + t * log_hi)
    return with_values(bkg, out)


def background_cube(
    bkg: xr.DataArray,
    grid: SkyGrid,
    pointing: tuple[float, float],
    ontime: float,
    energy_edges: np.ndarray,
    *,
    offset: np.ndarray | None = None,
    fov: tuple[np.ndarray, np.ndarray] | None = None,
    oversampling: int = 1,
    dtype: np.typing.DTypeLike = np.float64,
) -> np.ndarray:
    """Predicted background counts from the background IRF.

    The rate is integrated over each reco-energy bin, multiplied by the pixel solid angle and
    by the observation on-time (GADF background rates are per on-time, not dead-time
    corrected). ``bkg_3d`` tables are evaluated in FoV coordinates aligned with RA/Dec
    (``fov_alignment`` ``RADEC``); ``bkg_2d`` tables at the pixel offsets.

    Parameters
    ----------
    bkg : xarray.DataArray
        Background table, s-1 MeV-1 sr-1.
    grid : SkyGrid
        Target grid.
    pointing : (float, float)
        Pointing RA, Dec in deg (icrs).
    ontime : float
        Observation time in s.
    energy_edges : numpy.ndarray
        Reco-energy edges in TeV.
    offset : numpy.ndarray, shape (n_lat, n_lon), optional
        Pixel offsets from the pointing (deg), needed for ``bkg_2d``.
    fov : (numpy.ndarray, numpy.ndarray), optional
        The pixels' FoV longitude and latitude (deg, RA/Dec-aligned, as
        :func:`gammaxr.geom.fov.sky_to_fov` gives them), if already computed
        (:func:`pixel_offsets`); else computed here for a ``bkg_3d`` table.
    oversampling : int
        Energy oversampling of the bin integral.
    dtype : numpy dtype
        Of the result (computed in float64, stored as ``dtype``).

    Returns
    -------
    numpy.ndarray, shape (m, n_lat, n_lon)
        Predicted background counts.

    Raises
    ------
    NotImplementedError
        For a ``bkg_3d`` aligned with ALTAZ (not supported yet).
    """
    alignment = _fov_alignment(bkg)
    per_pixel = (pixel_solid_angle(grid.lat, grid.lon_step, grid.lat_step) * ontime)[:, None]
    out = np.empty((len(energy_edges) - 1, *grid.shape), dtype)
    integrate = partial(
        integrate_bkg_energy,
        bkg,
        energy_edges,
        oversampling=oversampling,
        weights=per_pixel,
        out=out,
    )
    if "offset" in bkg.dims:
        return integrate(offset=offset)
    if alignment in _RADEC:
        if fov is None:
            if grid.frame == "icrs":  # lon along the columns, lat along the rows
                ra, dec = grid.lon[None, :], grid.lat[:, None]
            else:
                ra, dec = transform_lonlat(*np.meshgrid(grid.lon, grid.lat), grid.frame, "icrs")
            fov = sky_to_fov(ra, dec, *pointing)
        fov_lon, fov_lat = fov
        if alignment == "REVERSE_LON_RADEC":
            fov_lon = -fov_lon
        return integrate(fov_lon=fov_lon, fov_lat=fov_lat)
    raise NotImplementedError(
        f"{bkg.attrs.get('source', 'background')}: FoV alignment {alignment!r} is not "
        "supported yet (RADEC and REVERSE_LON_RADEC are)"
    )


def psf_cube(
    psf: xr.DataArray,
    offset: np.ndarray,
    energy_true: np.ndarray,
    rad_edges: np.ndarray,
    *,
    dtype: np.typing.DTypeLike = np.float64,
) -> np.ndarray:
    """Normalised radial PSF profiles on the IRF grid.

    Parameters
    ----------
    psf : xarray.DataArray
        ``psf_table`` (energy_true, offset, rad) in sr-1.
    offset : numpy.ndarray, shape (n_lat, n_lon)
        Offsets of the IRF-grid pixels, deg.
    energy_true : numpy.ndarray, shape (m,)
        True-energy bin centres in TeV.
    rad_edges : numpy.ndarray, shape (k + 1,)
        rad bin edges in deg.
    dtype : numpy dtype
        Of the result (computed in float64, stored as ``dtype``).

    Returns
    -------
    numpy.ndarray, shape (m, k, n_lat, n_lon)
        dP/dOmega in sr-1, each profile integrating to one over the rad bins.
    """
    return psf_profile_map(psf, energy_true, offset, rad_edges, dtype=dtype)


def edisp_kernel_cube(
    edisp: xr.DataArray, offset: np.ndarray, energy_true_edges: np.ndarray, energy_edges
) -> np.ndarray:
    """Energy-dispersion kernels on the IRF grid.

    Parameters
    ----------
    edisp : xarray.DataArray
        ``edisp_2d`` table (energy_true, migra, offset).
    offset : numpy.ndarray, shape (n_lat, n_lon)
        Offsets of the IRF-grid pixels, deg.
    energy_true_edges, energy_edges : numpy.ndarray
        True and reco energy edges in TeV.

    Returns
    -------
    numpy.ndarray, shape (m_true, m_reco, n_lat, n_lon)
        Probability of reconstruction in each reco bin.
    """
    kernel = edisp_kernel(edisp, offset, energy_true_edges, energy_edges)
    return np.moveaxis(kernel, (-2, -1), (0, 1))
