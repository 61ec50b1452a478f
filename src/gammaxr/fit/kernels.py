"""IRF kernels at a source position: PSF convolution kernels, edisp matrices, cutouts.

Conventions follow Gammapy's ``MapEvaluator`` so that predicted counts agree:

- the PSF profile at a position is interpolated bilinearly between the IRF-grid pixels
  (Gammapy interpolates its PSF map linearly in the spatial pixel coordinates); the kernel
  extends to the radius holding 99.9 % of the PSF (per true-energy bin), pixels are
  oversampled by ``ceil(12 / (2 r68 / pixel))`` (at most 4) per side and averaged, and each
  true-energy plane is normalised to sum 1;
- a source's kernel is the bilinear blend of the kernels computed at the nodes of a fixed
  lattice around it (:func:`kernel_nodes`: the IRF-grid pixel centres), so predicted counts,
  hence the likelihood, are a continuous function of the parameters alone, whatever the
  history of a fit. Gammapy computes the kernel at the source position of its last IRF update
  and keeps it until the source moves further than its evaluation radius plus 0.1 deg from
  there, so its likelihood at given parameters depends on the start values and on the
  minimiser's path; ``convention="gammapy"`` does the same
  (:meth:`gammaxr.fit.evaluators.MapSourceEvaluator.irf_needs_update`);
- kernel pixels are laid out on the dataset's own lon/lat grid (offsets are true angular
  distances on the sky at the source: ``psf_pixels="sky"``), so a grid whose lon step is a
  step of right ascension (pixels narrower on the sky than high) gets the right kernel.
  Gammapy instead renders the kernel on square pixels of side ``max(lon step, lat step)``
  centred on the source and convolves it in pixel units; ``psf_pixels="square"`` does the
  same (each plane cut to Gammapy's odd square of side twice its 99.9 % radius rather than a
  circle, radii computed as Gammapy does, :func:`gammapy_containment_radii`, profiles
  extrapolated linearly inside the first rad node as Gammapy's map
  interpolation does), for cross-checks (on a 0.02 deg RA x 0.02 deg Dec grid at Dec 22 deg its PSF is
  7 % too narrow in RA);
- the energy-dispersion kernel is the bilinear blend of those of the IRF pixels around the
  source (with ``convention="gammapy"``: the nearest IRF pixel, Gammapy's ``method="nearest"``);
  without edisp the response is diagonal (overlap of true and reco bins);
- sources are evaluated on a cutout centred on their pixel, extending the PSF kernel radius
  plus the model's evaluation radius plus a margin (0.1 deg) each side;
- a point source's PSF-convolved image is the kernel shifted to the source's sub-pixel
  position by cubic B-spline interpolation (:func:`place_kernel`: exact at whole-pixel
  shifts, preserves flux and centroid, twice continuously differentiable in the position,
  so the likelihood's curvature, hence the Hesse error, does not depend on where in its
  pixel the source sits). Gammapy spreads the point over 4 pixels with bilinear weights
  before convolving; that image has kinks in the position at every pixel centre, which pull
  fitted positions towards pixel centres and spoil their Hesse errors (simulated position
  pulls of width 1.4 for a source near a pixel centre, 1.0 with the spline shift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import spline_filter

from gammaxr.irf.edisp import diagonal_response
from gammaxr.models.sphere import separation

__all__ = [
    "PSF_CONTAINMENT",
    "CUTOUT_MARGIN",
    "KERNEL_NODE_STEP",
    "Cutout",
    "containment_radii",
    "cutout_around",
    "diagonal_response",
    "edisp_at",
    "gammapy_containment_radii",
    "kernel_nodes",
    "node_weights",
    "bspline_weights",
    "place_kernel",
    "psf_kernel",
    "psf_profile_at",
    "spline_coefficients",
]

#: PSF containment fraction defining the kernel radius.
PSF_CONTAINMENT = 0.999
#: Margin (deg) added around a source's evaluation radius in its cutout.
CUTOUT_MARGIN = 0.1
#: Latitude spacing (deg) of the kernel nodes of a dataset with one PSF for the whole map.
KERNEL_NODE_STEP = 0.1
_PRECISION_FACTOR = 12
_MAX_OVERSAMPLING = 4


def _wrap_lon(lon: float, ref: float) -> float:
    """``lon`` on the branch of ``ref`` (within 180 deg of it)."""
    return ref + (np.mod(lon - ref + 180.0, 360.0) - 180.0)


def _fractional_index(value: float, centres: np.ndarray) -> float:
    if centres.size == 1:
        return 0.0
    return float((value - centres[0]) / (centres[1] - centres[0]))


def _axis_weights(value: float, centres: np.ndarray) -> tuple[tuple[int, float], ...]:
    """Linear-interpolation weights of the (at most two) centres around ``value`` (clamped)."""
    f = float(np.clip(_fractional_index(value, centres), 0.0, centres.size - 1))
    i0 = int(np.floor(f))
    i1 = min(i0 + 1, centres.size - 1)
    return tuple((i, w) for i, w in ((i0, 1.0 - (f - i0)), (i1, f - i0)) if w > 0)


def node_weights(
    lon_nodes: np.ndarray, lat_nodes: np.ndarray, lon: float, lat: float
) -> tuple[tuple[int, int, float], ...]:
    """Bilinear weights of the nodes of a regular lon/lat lattice around a position.

    Parameters
    ----------
    lon_nodes, lat_nodes : numpy.ndarray
        Node coordinates, deg (regular; positions outside are clamped to the edge, ``lon``
        is taken on the branch of the lattice's middle node).
    lon, lat : float
        Position, deg.

    Returns
    -------
    tuple of (j, i, weight)
        Indices along ``lat_nodes`` and ``lon_nodes`` with positive weights summing to 1
        (one to four nodes); continuous in the position.
    """
    lon = _wrap_lon(lon, float(lon_nodes[lon_nodes.size // 2]))
    return tuple(
        (j, i, wy * wx)
        for j, wy in _axis_weights(lat, lat_nodes)
        for i, wx in _axis_weights(lon, lon_nodes)
    )


def psf_profile_at(
    psf: np.ndarray, lon_irf: np.ndarray, lat_irf: np.ndarray, lon: float, lat: float
) -> np.ndarray:
    """Radial PSF profiles at a sky position, bilinear between IRF-grid pixel centres.

    Parameters
    ----------
    psf : numpy.ndarray, shape (n_et, n_rad, n_lat_irf, n_lon_irf)
        Profiles in sr-1.
    lon_irf, lat_irf : numpy.ndarray
        IRF-grid pixel centres, deg (regular; positions outside are clamped to the edge).
    lon, lat : float
        Position in the frame of the grid, deg.

    Returns
    -------
    numpy.ndarray, shape (n_et, n_rad)
        Profiles in sr-1.
    """
    out = np.zeros(psf.shape[:2])
    for j, i, w in node_weights(lon_irf, lat_irf, lon, lat):
        out += w * psf[:, :, j, i]
    return out


def kernel_nodes(
    lon_irf: np.ndarray, lat_irf: np.ndarray, lat_grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The lattice of positions where a dataset's PSF kernels are computed.

    A source's kernel is the bilinear blend of the kernels at the lattice nodes around it
    (:class:`gammaxr.fit.evaluators.MapSourceEvaluator`), so it is a continuous function of
    the source position alone. The nodes are the IRF-grid pixel centres; along an axis where
    the IRF grid has a single pixel (one PSF for the whole map) latitude nodes are spaced
    :data:`KERNEL_NODE_STEP` apart over the map (the kernel's pixel geometry depends on the
    latitude).

    Parameters
    ----------
    lon_irf, lat_irf : numpy.ndarray
        IRF-grid pixel centres, deg.
    lat_grid : numpy.ndarray
        Latitudes of the dataset's pixel centres, deg.

    Returns
    -------
    lon_nodes, lat_nodes : numpy.ndarray
        Node coordinates, deg.
    """
    if lat_irf.size >= 2:
        return lon_irf, lat_irf
    lo = np.floor((lat_grid.min() - 1.0) / KERNEL_NODE_STEP)
    hi = np.ceil((lat_grid.max() + 1.0) / KERNEL_NODE_STEP)
    lat_nodes = np.clip(np.arange(lo, hi + 1) * KERNEL_NODE_STEP, -89.9, 89.9)
    return lon_irf, np.unique(lat_nodes)


def containment_radii(profile: np.ndarray, rad_edges: np.ndarray, fraction: float) -> np.ndarray:
    """Radii (deg) containing ``fraction`` of radial profiles (linear within rad bins).

    Parameters
    ----------
    profile : numpy.ndarray, shape (n_et, n_rad)
        dP/dOmega in sr-1, per rad bin.
    rad_edges : numpy.ndarray, shape (n_rad + 1,)
        rad bin edges, deg.
    fraction : float
        Containment fraction in (0, 1); profiles holding less than that give the last edge.

    Returns
    -------
    numpy.ndarray, shape (n_et,)
    """
    r = np.deg2rad(rad_edges)
    ring = 2.0 * np.pi * (np.cos(r[:-1]) - np.cos(r[1:]))
    cum = np.concatenate([np.zeros((profile.shape[0], 1)), np.cumsum(profile * ring, 1)], 1)
    return np.array(
        [
            np.interp(fraction, c, rad_edges) if c[-1] >= fraction else rad_edges[-1]
            for c in np.maximum.accumulate(cum, axis=1)
        ]
    )


def gammapy_containment_radii(
    profile: np.ndarray, rad_edges: np.ndarray, fraction: float, upsample: int = 20
) -> np.ndarray:
    """Containment radii (deg) as Gammapy 2.1 computes them for its PSF kernels.

    The cumulative integral uses flat-sky rings ``2 pi r_centre dr`` summed up to each bin's
    upper edge and is interpolated linearly; the radius is the centre of the rad bin split
    ``upsample`` times whose containment is nearest ``fraction`` (so it is quantised to
    1/upsample of a rad bin, where :func:`containment_radii` interpolates). Kernels cut at
    these radii have Gammapy's sizes even where the radius falls near a pixel boundary.

    Parameters
    ----------
    profile, rad_edges, fraction
        As for :func:`containment_radii` (sr-1 per rad bin; deg; a fraction in (0, 1)).
    upsample : int
        Sub-bins per rad bin.

    Returns
    -------
    numpy.ndarray, shape (n_et,)
    """
    n = rad_edges.size - 1
    centres, widths = 0.5 * (rad_edges[1:] + rad_edges[:-1]), np.diff(rad_edges)
    ring = 2.0 * np.pi * centres * widths * np.deg2rad(1.0) ** 2
    cum = np.cumsum(profile * ring, axis=1)  # at the upper edges
    fine_edges = np.interp(np.linspace(0, n, n * upsample + 1), np.arange(n + 1), rad_edges)
    fine = 0.5 * (fine_edges[1:] + fine_edges[:-1])
    nodes = rad_edges[1:]
    # linear between the upper edges, extrapolated by half a bin below the first one
    j = np.clip(np.searchsorted(nodes, fine) - 1, 0, n - 2)
    t = (fine - nodes[j]) / (nodes[j + 1] - nodes[j])
    values = cum[:, j] * (1 - t) + cum[:, j + 1] * t
    values[:, fine < nodes[0] - 0.5 * widths[0]] = 0.0
    return fine[np.argmin(np.abs(values - fraction), axis=1)]


def psf_kernel(
    profile: np.ndarray,
    rad_edges: np.ndarray,
    lat: float,
    lon_step: float,
    lat_step: float,
    containment: float = PSF_CONTAINMENT,
    psf_pixels: str = "sky",
    square_side: float | None = None,
) -> np.ndarray:
    """PSF convolution kernels on a lon/lat pixel grid at latitude ``lat``.

    Parameters
    ----------
    profile : numpy.ndarray, shape (n_et, n_rad)
        Radial profiles at the source (sr-1), e.g. from :func:`psf_profile_at`.
    rad_edges : numpy.ndarray, shape (n_rad + 1,)
        rad bin edges, deg; profile values sit at the bin centres and are interpolated
        linearly in between.
    lat : float
        Latitude of the source, deg (sets the on-sky width of lon steps).
    lon_step, lat_step : float
        Pixel steps of the dataset grid, deg.
    containment : float
        Containment fraction setting the kernel radius per true-energy bin.
    psf_pixels : {"sky", "square"}
        Pixel geometry: the grid's own pixels on the sky, or Gammapy's square pixels of side
        ``max(|lon_step|, |lat_step|)`` (see the module docstring; containment radii are
        then Gammapy's, :func:`gammapy_containment_radii`).
    square_side : float, optional
        deg; the side of the square pixels instead of ``max(|lon_step|, |lat_step|)`` (the
        WCS pixel of a Gammapy map that was relabelled onto a lon/lat grid).

    Returns
    -------
    numpy.ndarray, shape (n_et, 2 h_lat + 1, 2 h_lon + 1)
        Kernels, each plane summing to 1 (or 0 if its profile is empty); axes (lat, lon),
        centred on the middle pixel.
    """
    rad_centres = 0.5 * (rad_edges[1:] + rad_edges[:-1])
    radii = gammapy_containment_radii if psf_pixels == "square" else containment_radii
    radius = radii(profile, rad_edges, containment)
    r68 = radii(profile, rad_edges, 0.68)
    if psf_pixels == "square":
        side = square_side or max(abs(lon_step), abs(lat_step))
        lon_step = np.copysign(side / np.cos(np.deg2rad(lat)), lon_step)
        lat_step = np.copysign(side, lat_step)
    elif psf_pixels != "sky":
        raise ValueError(f"psf_pixels must be 'sky' or 'square', got {psf_pixels!r}")
    dx = abs(lon_step) * np.cos(np.deg2rad(lat))
    dy = abs(lat_step)
    r_max = float(np.max(radius))
    hx, hy = int(np.ceil(r_max / dx - 0.5)), int(np.ceil(r_max / dy - 0.5))
    pixel = max(dx, dy)
    with np.errstate(divide="ignore"):
        factors = np.ceil(_PRECISION_FACTOR / (2.0 * r68 / pixel))
    factors = np.clip(np.nan_to_num(factors, nan=1.0, posinf=_MAX_OVERSAMPLING), 1, None)
    factors = np.minimum(factors, _MAX_OVERSAMPLING).astype(int)
    kernels = np.zeros((profile.shape[0], 2 * hy + 1, 2 * hx + 1))
    for f in np.unique(factors):
        sub = (np.arange(f) + 0.5) / f - 0.5
        x = (np.arange(-hx, hx + 1)[:, None] + sub).ravel() * lon_step
        y = (np.arange(-hy, hy + 1)[:, None] + sub).ravel() * lat_step
        rad = separation(x[None, :], lat + y[:, None], 0.0, lat)
        for e in np.flatnonzero(factors == f):
            if psf_pixels == "square":
                values = _linear_extrapolated(rad, rad_centres, profile[e])
            else:
                values = np.interp(rad, rad_centres, profile[e], right=0.0)
                values[rad > radius[e]] = 0.0
            kernels[e] = values.reshape(2 * hy + 1, f, 2 * hx + 1, f).mean(axis=(1, 3))
    if psf_pixels == "square":  # Gammapy: a square of odd side 2 * radius per energy
        half = (np.ceil(2.0 * radius / pixel) // 2).astype(int)
        iy, ix = np.abs(np.arange(-hy, hy + 1))[:, None], np.abs(np.arange(-hx, hx + 1))
        for e, h in enumerate(half):
            kernels[e][(iy > h) | (ix > h)] = 0.0
    total = kernels.sum(axis=(1, 2), keepdims=True)
    return np.divide(kernels, total, out=np.zeros_like(kernels), where=total > 0)


def _linear_extrapolated(x: np.ndarray, nodes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation that extrapolates the end segments (clipped at 0), as Gammapy's
    map interpolation of PSF profiles."""
    out = np.interp(x, nodes, values)
    lo, hi = x < nodes[0], x > nodes[-1]
    slope_lo = (values[1] - values[0]) / (nodes[1] - nodes[0])
    slope_hi = (values[-1] - values[-2]) / (nodes[-1] - nodes[-2])
    out[lo] = values[0] + slope_lo * (x[lo] - nodes[0])
    out[hi] = values[-1] + slope_hi * (x[hi] - nodes[-1])
    return np.clip(out, 0.0, None)


def edisp_at(
    edisp: np.ndarray,
    lon_irf: np.ndarray,
    lat_irf: np.ndarray,
    lon: float,
    lat: float,
    method: str = "nearest",
) -> np.ndarray:
    """Energy-dispersion kernel at a position of the IRF grid.

    Parameters
    ----------
    edisp : numpy.ndarray, shape (n_et, n_e, n_lat_irf, n_lon_irf)
        Kernels.
    lon_irf, lat_irf : numpy.ndarray
        IRF-grid pixel centres, deg.
    lon, lat : float
        Position, deg, in the grid's frame.
    method : {"nearest", "linear"}
        The kernel of the nearest IRF pixel (Gammapy's choice; a step function of the
        position), or the bilinear blend of the surrounding ones (continuous).

    Returns
    -------
    numpy.ndarray, shape (n_et, n_e)
    """
    if method == "linear":
        out = np.zeros(edisp.shape[:2])
        for j, i, w in node_weights(lon_irf, lat_irf, lon, lat):
            out += w * edisp[:, :, j, i]
        return out
    if method != "nearest":
        raise ValueError(f"method must be 'nearest' or 'linear', got {method!r}")
    lon = _wrap_lon(lon, float(lon_irf[lon_irf.size // 2]))
    i = int(np.clip(np.rint(_fractional_index(lon, lon_irf)), 0, lon_irf.size - 1))
    j = int(np.clip(np.rint(_fractional_index(lat, lat_irf)), 0, lat_irf.size - 1))
    return np.ascontiguousarray(edisp[:, :, j, i])


@dataclass(frozen=True)
class Cutout:
    """A rectangular part of a dataset grid: ``lat`` rows ``y0:y1``, ``lon`` columns ``x0:x1``."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(lat slice, lon slice)``."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_lat, n_lon)``."""
        return self.y1 - self.y0, self.x1 - self.x0

    @property
    def empty(self) -> bool:
        """Whether the cutout holds no pixel (the source is far outside the grid)."""
        return self.y1 <= self.y0 or self.x1 <= self.x0


def cutout_around(
    lon_grid: np.ndarray,
    lat_grid: np.ndarray,
    lon: float,
    lat: float,
    radius: float,
    kernel_shape: tuple[int, int] = (1, 1),
) -> Cutout:
    """The cutout centred on the pixel nearest ``(lon, lat)``, trimmed to the grid.

    Parameters
    ----------
    lon_grid, lat_grid : numpy.ndarray
        Pixel centres of the dataset grid, deg (regular).
    lon, lat : float
        Source position, deg.
    radius : float
        Angular radius to cover besides the kernel (evaluation radius + margin), deg.
    kernel_shape : (int, int)
        Shape of the PSF kernel (odd sizes); its half-widths are added.

    Returns
    -------
    Cutout
    """
    dlon, dlat = lon_grid[1] - lon_grid[0], lat_grid[1] - lat_grid[0]
    lon = _wrap_lon(lon, float(lon_grid[lon_grid.size // 2]))
    ix = int(np.rint((lon - lon_grid[0]) / dlon))
    iy = int(np.rint((lat - lat_grid[0]) / dlat))
    cos_lat = max(np.cos(np.deg2rad(min(abs(lat) + radius, 89.0))), 1e-3)
    wx = kernel_shape[1] // 2 + int(np.ceil(radius / (abs(dlon) * cos_lat) - 1e-9))
    wy = kernel_shape[0] // 2 + int(np.ceil(radius / abs(dlat) - 1e-9))
    return Cutout(
        y0=max(iy - wy, 0),
        y1=min(iy + wy + 1, lat_grid.size),
        x0=max(ix - wx, 0),
        x1=min(ix + wx + 1, lon_grid.size),
    )


def spline_coefficients(kernels: np.ndarray, pad: int = 4) -> np.ndarray:
    """Cubic B-spline coefficients of kernels, for :func:`place_kernel`.

    Parameters
    ----------
    kernels : numpy.ndarray, shape (n, ky, kx)
        Kernels with odd sizes centred on their middle pixel.
    pad : int
        Zero pixels added on every side first (the interpolating spline's coefficients
        ring a few pixels beyond the kernel's support).

    Returns
    -------
    numpy.ndarray, shape (n, ky + 2 pad, kx + 2 pad)
        Coefficients (still centred on the middle pixel).
    """
    padded = np.pad(kernels, ((0, 0), (pad, pad), (pad, pad)))
    return np.stack([spline_filter(k, order=3, mode="grid-constant") for k in padded])


def bspline_weights(t: float) -> np.ndarray:
    """Cubic B-spline weights of the taps -1, 0, 1, 2 at offset ``t`` in [0, 1).

    Returns
    -------
    numpy.ndarray, shape (4,)
        Weights summing to 1, with ``sum(w * [-1, 0, 1, 2]) == t``.
    """
    s = 1.0 - t
    return np.array([s**3, 3 * t**3 - 6 * t**2 + 4, 3 * s**3 - 6 * s**2 + 4, t**3]) / 6.0


def place_kernel(
    coefficients: np.ndarray, fy: float, fx: float, shape: tuple[int, int]
) -> np.ndarray:
    """Kernels centred at a sub-pixel position of an image (cubic spline interpolation).

    Parameters
    ----------
    coefficients : numpy.ndarray, shape (n, ky, kx)
        Spline coefficients of kernels from :func:`spline_coefficients` (odd sizes, centred
        on the middle pixel).
    fy, fx : float
        Position of the kernel centre in pixel-index units of the image (row, column).
    shape : (int, int)
        Image shape ``(ny, nx)``.

    Returns
    -------
    numpy.ndarray, shape (n, ny, nx)
        The kernels shifted to ``(fy, fx)`` (equal to them at whole-pixel positions; flux
        and centroid preserved; twice continuously differentiable in the position),
        trimmed to the image and clipped at zero (the spline rings slightly negative at the
        kernels' rim).
    """
    n, ky, kx = coefficients.shape
    iy, ix = int(np.floor(fy)), int(np.floor(fx))
    wy, wx = bspline_weights(fy - iy), bspline_weights(fx - ix)
    along_x = np.zeros((n, ky, kx + 3))
    for j in range(4):
        along_x[:, :, j : j + kx] += wx[j] * coefficients
    both = np.zeros((n, ky + 3, kx + 3))
    for j in range(4):
        both[:, j : j + ky, :] += wy[j] * along_x
    # pixel (0, 0) of `both` sits at image pixel (iy - 1 - ky // 2, ix - 1 - kx // 2)
    y0, x0 = iy - 1 - ky // 2, ix - 1 - kx // 2
    ny, nx = shape
    out = np.zeros((n, ny, nx))
    a0, a1 = max(y0, 0), min(y0 + ky + 3, ny)
    b0, b1 = max(x0, 0), min(x0 + kx + 3, nx)
    if a0 < a1 and b0 < b1:
        out[:, a0:a1, b0:b1] = both[:, a0 - y0 : a1 - y0, b0 - x0 : b1 - x0]
    return np.maximum(out, 0.0, out=out)
