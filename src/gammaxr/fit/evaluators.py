"""Predicted counts of sky models on map and spectrum datasets, with per-fit caches.

For one source (a :class:`~gammaxr.models.SkyModel`) on a map dataset::

    npred(E, y, x) = sum_t edisp(t, E) * F(t) * [(exposure(t) * S) (*) K_t](y, x)

with ``F(t)`` the spectral model integrated over true-energy bin ``t`` (cm-2 s-1),
``exposure`` in m2 s (times 1e4 for cm2), ``S`` the spatial model integrated over the pixels
(:func:`gammaxr.models.integrate_pixels`, oversampled for small sources) and ``K_t`` the PSF
kernel at the source (:mod:`gammaxr.fit.kernels`). The exposure weighs the photons where they
come from (a point source: the exposure at its position, bilinear between pixel centres),
before the PSF spreads them. ``convention="gammapy"`` multiplies the PSF-convolved image by
the exposure of the pixels where the photons land, as Gammapy's ``MapEvaluator`` does; across
an exposure gradient that shifts the image by ``sigma_psf**2 * grad(ln exposure)``, which
biases fitted positions (``benchmarks/position_bias.py``, docs/conventions.md). The sum runs over a cutout around the
source only. The PSF kernel, the edisp matrix and the cutout are functions of the source
position alone (:mod:`gammaxr.fit.kernels`: kernels blended from a fixed lattice of nodes),
so the likelihood at given parameters does not depend on the history of a fit. The
exception is ``irf_update="gammapy"``, implied by ``convention="gammapy"``: it follows
Gammapy 2.1's ``MapEvaluator``, which computes the PSF kernel, the edisp matrix and the
cutout at the source position of some earlier call and keeps them until the source has
moved further than its evaluation radius plus the cutout margin (0.1 deg) from the position
of the last such update (:meth:`MapSourceEvaluator.irf_needs_update`), so the likelihood
depends on the positions evaluated before, as Gammapy's does. A :class:`MapSourceEvaluator`
keeps, between calls:

- the PSF kernels at the lattice nodes visited, and the blended IRF state at the last
  position (``irf_update="gammapy"``: the IRF state of the last update);
- ``A(t, pixel) = (exposure * S) (*) K_t``, rebuilt only when spatial parameters change;
- the counts, rebuilt when spectral parameters change (one small matrix product).

Evaluators belong to one fit (:class:`gammaxr.fit.likelihood.FitContext`); nothing is cached
on datasets or models. Background: ``background * norm * (E / E_ref) ** -tilt`` at the
reco-bin centres (:class:`~gammaxr.models.FoVBackgroundModel`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from gammaxr.models import SkyModel
from gammaxr.models.sphere import separation, transform_lonlat

from .data import MapData, SpectrumData
from .kernels import (
    CUTOUT_MARGIN,
    Cutout,
    containment_radii,
    cutout_around,
    diagonal_response,
    edisp_at,
    kernel_nodes,
    node_weights,
    place_kernel,
    psf_kernel,
    psf_profile_at,
    spline_coefficients,
)

__all__ = [
    "CM2_PER_M2",
    "CONVENTIONS",
    "IRF_UPDATES",
    "MapSourceEvaluator",
    "SpectrumSourceEvaluator",
    "convolve_same",
    "exposure_at",
]

#: Exposure is stored in m2 s, fluxes are per cm2.
CM2_PER_M2 = 1e4
#: Evaluation conventions (see :class:`MapSourceEvaluator`).
CONVENTIONS = ("gammaxr", "gammapy")
#: When a source's IRF state (PSF kernel, edisp matrix, cutout) is recomputed: at every
#: position, blended from a fixed lattice ("lattice"), or by Gammapy's rule ("gammapy").
IRF_UPDATES = ("lattice", "gammapy")
#: Point sources are shifted by spline interpolation of the PSF kernel (convention
#: "gammaxr") when the PSF's 68 % radius is at least this many pixels at all energies;
#: otherwise (and without PSF) they get bilinear pixel weights, as in Gammapy.
SMOOTH_PSF_PIXELS = 1.0
#: Images with at most this many non-zero pixels are convolved as a sum of shifted kernels.
_SPARSE_PIXELS = 16


def convolve_same(image: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Convolve one image (or one image per plane) with one kernel per plane, on the image's
    pixels.

    Parameters
    ----------
    image : numpy.ndarray, shape (ny, nx) or (n, ny, nx)
        Image (e.g. flux fraction per pixel), the same for every kernel or one per kernel.
    kernels : numpy.ndarray, shape (n, ky, kx)
        Kernels with odd sizes, centred on their middle pixel.

    Returns
    -------
    numpy.ndarray, shape (n, ny, nx)
        ``out[k, y, x] = sum image[(k,) y', x'] kernels[k, y - y' + ky // 2, x - x' + kx // 2]``
        (``scipy.signal.fftconvolve(..., mode="same")``; images with few non-zero pixels,
        such as point sources, are done exactly as sums of shifted kernels).
    """
    planes = np.broadcast_to(image, (kernels.shape[0], *image.shape[-2:]))
    ny, nx = planes.shape[1:]
    _, ky, kx = kernels.shape
    nonzero = np.flatnonzero(planes.any(axis=0))
    if nonzero.size > _SPARSE_PIXELS:
        return fftconvolve(planes, kernels, mode="same", axes=(1, 2))
    out = np.zeros((kernels.shape[0], ny, nx))
    cy, cx = ky // 2, kx // 2
    for y, x in zip(*np.unravel_index(nonzero, (ny, nx)), strict=True):
        y0, y1 = max(y - cy, 0), min(y + cy + 1, ny)
        x0, x1 = max(x - cx, 0), min(x + cx + 1, nx)
        ks = kernels[:, y0 - y + cy : y1 - y + cy, x0 - x + cx : x1 - x + cx]
        out[:, y0:y1, x0:x1] += planes[:, y, x, None, None] * ks
    return out


def exposure_at(exposure: np.ndarray, fy: float, fx: float) -> np.ndarray:
    """Exposure at a sub-pixel position, bilinear between pixel centres (clamped to the image).

    Parameters
    ----------
    exposure : numpy.ndarray, shape (n, ny, nx)
        Exposure planes.
    fy, fx : float
        Position in pixel-index units (row, column).

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    ny, nx = exposure.shape[1:]
    fy, fx = float(np.clip(fy, 0, ny - 1)), float(np.clip(fx, 0, nx - 1))
    y0, x0 = min(int(np.floor(fy)), max(ny - 2, 0)), min(int(np.floor(fx)), max(nx - 2, 0))
    ty, tx = fy - y0, fx - x0
    y1, x1 = min(y0 + 1, ny - 1), min(x0 + 1, nx - 1)
    return (1 - ty) * ((1 - tx) * exposure[:, y0, x0] + tx * exposure[:, y0, x1]) + ty * (
        (1 - tx) * exposure[:, y1, x0] + tx * exposure[:, y1, x1]
    )


def _spectral_flux(spectral, e_lo: np.ndarray, e_hi: np.ndarray, values: dict) -> np.ndarray:
    """Integral flux per true-energy bin, cm-2 s-1."""
    return np.asarray(spectral.evaluate_integral(e_lo, e_hi, **values), dtype=float)


class MapSourceEvaluator:
    """Predicted counts of one sky model on one map dataset (caches as in the module doc).

    Parameters
    ----------
    data : MapData
        The dataset (needs ``exposure``).
    model : SkyModel
        The source; its spatial and spectral models give the functional forms, parameter
        values come with each call.
    margin : float
        deg added to the evaluation radius (and the PSF kernel) in the cutout.
    convention : {"gammaxr", "gammapy"}
        ``"gammaxr"``: PSF kernels on the grid's own pixels and point sources shifted by
        cubic spline interpolation; ``"gammapy"``: Gammapy's square kernel pixels and bilinear point
        weights (:func:`gammaxr.models.integrate_pixels`), to reproduce its numbers (see
        :mod:`gammaxr.fit.kernels`).
    irf_update : {"lattice", "gammapy"}, optional
        ``"lattice"``: the IRF state is a function of the current position (kernels blended
        from the lattice of :func:`~gammaxr.fit.kernels.kernel_nodes`, edisp and cutout at
        the position); ``"gammapy"``: Gammapy 2.1's rule (:meth:`irf_needs_update`; kernels
        computed at the update position itself). Default: ``"gammapy"`` with
        ``convention="gammapy"``, else ``"lattice"``.
    """

    def __init__(
        self,
        data: MapData,
        model: SkyModel,
        margin: float = CUTOUT_MARGIN,
        convention: str = "gammaxr",
        irf_update: str | None = None,
    ) -> None:
        if model.spatial is None:
            raise ValueError(
                f"sky model {model.name!r} has no spatial model; it cannot be evaluated on "
                f"map dataset {data.name!r}"
            )
        if data.exposure is None or data.energy_true_edges is None:
            raise ValueError(f"map dataset {data.name!r} needs 'exposure(energy_true, lat, lon)'")
        self.data, self.model, self.margin = data, model, float(margin)
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        self.convention = convention
        if irf_update is None:
            irf_update = "gammapy" if convention == "gammapy" else "lattice"
        if irf_update not in IRF_UPDATES:
            raise ValueError(f"irf_update must be one of {IRF_UPDATES}, got {irf_update!r}")
        self.irf_update = irf_update
        #: model-frame position (deg) of the last IRF update that passed the distance test;
        #: Gammapy starts it at (0, 0), not at the first position evaluated
        self.irf_reference = (0.0, 0.0)
        #: number of IRF-state updates under ``irf_update="gammapy"`` (diagnostics)
        self.n_irf_updates = 0
        self._psf_pixels = "square" if convention == "gammapy" else "sky"
        edges = data.energy_true_edges
        self._e_lo, self._e_hi = edges[:-1], edges[1:]
        self._edisp_method = "nearest" if convention == "gammapy" else "linear"
        self._diagonal = diagonal_response(edges, data.energy_edges)
        self._lon_nodes, self._lat_nodes = kernel_nodes(data.lon_irf, data.lat_irf, data.lat)
        self._nodes: dict[tuple[int, int], dict[str, Any]] = {}
        self._exposure_cutouts: dict[Cutout, np.ndarray] = {}
        self._irf: dict[str, Any] | None = None
        self._irf_key: tuple | None = None
        self._spatial_key: tuple | None = None
        self._weights: np.ndarray | None = None  # A(t, pixel)
        self._spectral_key: tuple | None = None
        self._counts: np.ndarray | None = None
        #: number of PSF kernels computed at lattice nodes (diagnostics)
        self.n_kernel_nodes = 0

    # -- IRF state: a function of the source position alone ------------------------------
    def _position(self, values: dict) -> tuple[float, float]:
        spatial = self.model.spatial
        lon, lat = values["lon_0"], values["lat_0"]
        if spatial.frame != self.data.frame:
            (lon,), (lat,) = transform_lonlat(
                np.array([lon]), np.array([lat]), spatial.frame, self.data.frame
            )
        return float(lon), float(lat)

    def _node(self, j: int, i: int) -> dict[str, Any]:
        """PSF kernel (and spline coefficients) at kernel-lattice node ``(j, i)``, cached."""
        node = self._nodes.get((j, i))
        if node is None:
            lon, lat = float(self._lon_nodes[i]), float(self._lat_nodes[j])
            node = self._nodes[(j, i)] = self._kernel_at(lon, lat)
            self.n_kernel_nodes += 1
        return node

    def _kernel_at(self, lon: float, lat: float) -> dict[str, Any]:
        """PSF kernel (and spline coefficients if the PSF is smooth on the pixels) at a
        position of the data frame, deg."""
        d = self.data
        profile = psf_profile_at(d.psf, d.lon_irf, d.lat_irf, lon, lat)
        kernel = psf_kernel(
            profile, d.rad_edges, lat, d.lon_step, d.lat_step, psf_pixels=self._psf_pixels,
            square_side=d.square_pixel,
        )  # fmt: skip
        smooth = False
        if self.convention == "gammaxr":
            pixel = max(abs(d.lon_step) * np.cos(np.deg2rad(lat)), abs(d.lat_step))
            r68 = containment_radii(profile, d.rad_edges, 0.68)
            smooth = bool(np.all(r68 >= SMOOTH_PSF_PIXELS * pixel))
        return {"kernel": kernel, "coefficients": spline_coefficients(kernel) if smooth else None}

    def _blend(self, weighted: list, key: str) -> np.ndarray:
        """Weighted sum of the nodes' ``key`` arrays (centred, zero-padded to the largest)."""
        arrays = [node[key] for _, node in weighted]
        ky, kx = (max(a.shape[k] for a in arrays) for k in (1, 2))
        out = np.zeros((arrays[0].shape[0], ky, kx))
        for (w, _), a in zip(weighted, arrays, strict=True):
            y0, x0 = (ky - a.shape[1]) // 2, (kx - a.shape[2]) // 2
            out[:, y0 : y0 + a.shape[1], x0 : x0 + a.shape[2]] += w * a
        return out

    def _irf_at(self, lon: float, lat: float, radius: float, point: bool) -> dict[str, Any]:
        """IRF state for a source at ``(lon, lat)`` with evaluation radius ``radius`` (deg):
        the blended PSF spline coefficients (a point source with a smooth PSF at every node
        around it) or kernel, the edisp matrix, the cutout and the exposure on it."""
        d = self.data
        kernel = coefficients = None
        shape = (1, 1)
        if d.psf is not None:
            if self.irf_update == "gammapy":  # Gammapy: the kernel at the position itself
                weighted = [(1.0, self._kernel_at(lon, lat))]
            else:
                weighted = [
                    (w, self._node(j, i))
                    for j, i, w in node_weights(self._lon_nodes, self._lat_nodes, lon, lat)
                ]
            if point and all(node["coefficients"] is not None for _, node in weighted):
                coefficients = self._blend(weighted, "coefficients")
            else:
                kernel = self._blend(weighted, "kernel")
            shape = tuple(max(n["kernel"].shape[k] for _, n in weighted) for k in (1, 2))
        if d.edisp is not None:
            edisp = edisp_at(d.edisp, d.lon_irf, d.lat_irf, lon, lat, method=self._edisp_method)
        else:
            edisp = self._diagonal
        cut = cutout_around(d.lon, d.lat, lon, lat, radius + self.margin, shape)
        exposure = None
        if not cut.empty:
            exposure = self._exposure_cutouts.get(cut)
            if exposure is None:
                ys, xs = cut.slices
                exposure = (d.exposure[:, ys, xs] * CM2_PER_M2).reshape(d.exposure.shape[0], -1)
                if len(self._exposure_cutouts) >= 16:
                    self._exposure_cutouts.clear()
                self._exposure_cutouts[cut] = exposure
        return {
            "kernel": kernel,
            "coefficients": coefficients,
            "edisp": edisp,
            "cutout": cut,
            "exposure": exposure,
        }

    def irf_needs_update(self, values: dict, radius: float) -> bool:
        """Gammapy 2.1's test for recomputing the IRF state of a source whose spatial
        parameters changed since the previous call (``irf_update="gammapy"``).

        True when the model position is further than ``radius + margin`` (deg; Gammapy's
        evaluation radius plus its 0.1 deg cutout margin) from :attr:`irf_reference`, which
        then moves to the position. The reference starts at (0, 0) in the model frame and
        the first call always computes the IRF state without moving it, so the first
        change of spatial parameters triggers an update (unless the source is near (0, 0)).

        Parameters
        ----------
        values : dict
            Spatial parameter values (``lon_0``, ``lat_0`` in deg, model frame).
        radius : float
            The model's evaluation radius, deg.
        """
        lon, lat = float(values["lon_0"]), float(values["lat_0"])
        moved = float(separation(lon, lat, *self.irf_reference)) > radius + self.margin
        if moved:
            self.irf_reference = (lon, lat)
        return moved

    # -- evaluation ----------------------------------------------------------------------
    def _spatial_weights(self, values: dict) -> None:
        is_point = self.model.spatial.is_point
        # a point needs no model object (radius 0); others are rebuilt with the new values
        spatial = None if is_point else self.model.spatial.with_values(**values)
        lon, lat = self._position(values)
        radius = 0.0 if is_point else float(spatial.evaluation_radius)
        if self.irf_update == "gammapy":
            if self._irf is None or self.irf_needs_update(values, radius):
                self._irf = self._irf_at(lon, lat, radius, is_point)
                self.n_irf_updates += 1
        elif self._irf_key != (lon, lat, radius):
            self._irf = self._irf_at(lon, lat, radius, is_point)
            self._irf_key = (lon, lat, radius)
        irf = self._irf
        cut: Cutout = irf["cutout"]
        if cut.empty:
            self._weights = None
            return
        d = self.data
        ys, xs = cut.slices
        exposure = irf["exposure"].reshape(-1, *cut.shape)
        n_et = exposure.shape[0]
        # position of the source in pixel-index units of the cutout
        fx = (np.mod(lon - d.lon[cut.x0] + 180.0, 360.0) - 180.0) / d.lon_step
        fy = (lat - d.lat[cut.y0]) / d.lat_step
        if is_point and irf["coefficients"] is not None:
            conv = place_kernel(irf["coefficients"], fy, fx, cut.shape)
            # the photons' exposure is that of the source, not of the pixel they land in
            weights = exposure_at(exposure, fy, fx)[:, None, None] * conv
        else:
            if spatial is None:
                spatial = self.model.spatial.with_values(**values)
            image = spatial.integrate_pixels(d.lon[xs], d.lat[ys], d.frame)
            if irf["kernel"] is None:
                weights = exposure * image[None]
            elif self.convention == "gammapy":
                # Gammapy convolves the flux first and multiplies by the exposure of the
                # pixels where the photons land
                weights = exposure * convolve_same(image, irf["kernel"])
            else:
                weights = convolve_same(exposure * image[None], irf["kernel"])
        self._weights = np.broadcast_to(weights, (n_et, *cut.shape)).reshape(n_et, -1)

    def __call__(self, spatial_values: dict, spectral_values: dict) -> tuple[Cutout, np.ndarray]:
        """Predicted counts on the source's cutout.

        Parameters
        ----------
        spatial_values, spectral_values : dict
            Parameter values of the spatial and spectral models (canonical units).

        Returns
        -------
        cutout : Cutout
            Where the counts go in the dataset grid (may be empty).
        counts : numpy.ndarray, shape (n_e, ny, nx)
            Predicted counts in reco-energy bins (do not modify: cached).
        """
        key = tuple(spatial_values.values())
        refreshed = key != self._spatial_key
        if refreshed:
            self._spatial_weights(spatial_values)
            self._spatial_key = key
        skey = tuple(spectral_values.values())
        cut = self._irf["cutout"]
        if refreshed or skey != self._spectral_key or self._counts is None:
            n_e = self.data.energy.size
            if self._weights is None:
                self._counts = np.zeros((n_e, *(max(n, 0) for n in cut.shape)))
            else:
                flux = _spectral_flux(self.model.spectral, self._e_lo, self._e_hi, spectral_values)
                matrix = flux[:, None] * self._irf["edisp"]
                self._counts = (matrix.T @ self._weights).reshape(n_e, *cut.shape)
            self._spectral_key = skey
        return cut, self._counts


class SpectrumSourceEvaluator:
    """Predicted counts of one source's spectrum on a 1D spectrum dataset.

    ``npred(E) = sum_t edisp(t, E) F(t) exposure(t)``: the exposure is taken as already
    containing the spatial containment of the on region (point-like source).

    Parameters
    ----------
    data : SpectrumData
        The dataset.
    model : SkyModel
        The source (its spatial model, if any, is not used).
    """

    def __init__(self, data: SpectrumData, model: SkyModel) -> None:
        self.data, self.model = data, model
        edges = data.energy_true_edges
        self._e_lo, self._e_hi = edges[:-1], edges[1:]
        edisp = data.edisp
        if edisp is None:
            edisp = diagonal_response(edges, data.energy_edges)
        self._matrix = data.exposure[:, None] * CM2_PER_M2 * edisp
        self._key: tuple | None = None
        self._counts: np.ndarray | None = None

    def __call__(self, spectral_values: dict) -> np.ndarray:
        """Predicted counts per reco-energy bin, shape (n_e,) (do not modify: cached)."""
        key = tuple(spectral_values.values())
        if key != self._key:
            flux = _spectral_flux(self.model.spectral, self._e_lo, self._e_hi, spectral_values)
            self._counts = flux @ self._matrix
            self._key = key
        return self._counts
