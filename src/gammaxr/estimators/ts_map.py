"""TS maps: at every pixel, the likelihood-ratio test of a test source placed there.

For each pixel ``p`` a test source (default: a point source with a power law of index 2) is
put at the pixel centre and only its amplitude ``norm`` is fitted, with the background (the
dataset's ``background`` scaled by background models, plus all given sources) held fixed::

    mu(q) = b(q) + norm * m_p(q),    m_p(q) = sum_E K_E(q - p) X_E(q)

``X_E(q)`` are the predicted counts of the test source's spectrum per unit norm at pixel
``q`` in reco-energy bin ``E`` (exposure times the spectrum integrated over each true-energy
bin, folded with the energy dispersion at the map centre) and ``K_E`` the fraction of the
source's counts falling at offset ``q - p`` (the source convolved with the PSF at the map
centre, computed by the fit's evaluator: :class:`gammaxr.fit.evaluators.MapSourceEvaluator`,
so the kernel extends to the PSF's 99.9 % radius plus the source's size). This is
Gammapy's ``TSMapEstimator`` approach (Stewart 2009, appendix A), with the exact
energy-weighted kernel where Gammapy averages the per-energy kernels.

All pixels are fitted at once (:mod:`gammaxr.estimators.pixel_norms`): footprint sums of
``b``, ``m_p`` and a matched-filter start value are FFT correlations; only the (pixel, bin)
pairs whose bin has counts enter the Newton iterations on the derivative of the Cash
statistic (vectorised, a bracket guards the steps), processed in chunks of map rows to
bound memory. The norm may be negative, down to the exact edge where some predicted count
of the footprint reaches zero (the minimum sits there for deep negative fluctuations, as
Gammapy's ``norm_min_total``); profile errors below that edge are NaN. With
``sum_over_energy=True`` (default, as Gammapy) counts, background and ``m_p`` are summed
over the reco bins of each energy group before the fit; with False every reco bin is a
separate term (the full 3D likelihood, as a direct fit of the test source at that pixel).

Outputs per pixel and energy group: ``ts = stat(0) - stat(best)``, ``sqrt_ts`` (signed by
the norm), ``norm``, ``norm_err`` (curvature, times ``n_sigma``), optional
``norm_errn``/``norm_errp`` and ``norm_ul`` (profile likelihood, ``Delta stat =
n_sigma**2`` / ``n_sigma_ul**2``), ``flux`` (and errors: norm times the test spectrum's
integral over the group's reco range, cm-2 s-1), ``npred``, ``npred_excess``, ``counts``
(sums over the kernel footprint), ``niter`` and ``success``. Pixels outside the mask or
without background are NaN.

The dataset is read once (:func:`gammaxr.fit.load_datasets`, the compute boundary); numpy-
and dask-backed datasets give the same maps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy.ndimage import minimum_filter
from scipy.signal import fftconvolve

from gammaxr.fit import FitContext, MapData, load_datasets
from gammaxr.fit.evaluators import CM2_PER_M2, MapSourceEvaluator
from gammaxr.fit.kernels import diagonal_response, edisp_at
from gammaxr.geom.axes import axis_coords
from gammaxr.models import Models, PointSpatialModel, PowerLaw, SkyModel, models_to_yaml
from gammaxr.models.sphere import transform_lonlat
from gammaxr.progress import track

from .flux_points import snap_energy_edges
from .norm_fit import _as_models, check_selection
from .pixel_norms import PixelLikelihood, profile_crossings, solve_norms

__all__ = ["default_kernel_model", "test_source_kernel", "ts_map"]

#: Target number of likelihood entries (bins with counts x pixels) per chunk of map rows.
CHUNK_ELEMENTS = 2_000_000
#: FFT sums of the test source's counts below this fraction of their maximum are zero.
FFT_FLOOR = 1e-12
#: Kernel values below this fraction of the kernel's peak are set to zero.
KERNEL_FLOOR = 1e-10


def default_kernel_model() -> SkyModel:
    """Point source with a power law of index 2 (amplitude 1e-12 cm-2 s-1 TeV-1 at 1 TeV)."""
    return SkyModel(
        PowerLaw(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1"), PointSpatialModel(), name="ts-kernel"
    )


def _centre_pixel(data: MapData) -> tuple[int, int]:
    """The pixel nearest the grid centre with non-zero exposure."""
    ny, nx = data.counts.shape[1:]
    cy, cx = ny // 2, nx // 2
    valid = np.any(data.exposure > 0, axis=0)
    if valid[cy, cx]:
        return cy, cx
    if not valid.any():
        raise ValueError(f"dataset {data.name!r} has no exposure: no TS map kernel can be made")
    ys, xs = np.nonzero(valid)
    i = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    return int(ys[i]), int(xs[i])


def test_source_kernel(
    data: MapData, model: SkyModel, convention: str = "gammaxr"
) -> tuple[np.ndarray, np.ndarray]:
    """Counts kernel of a test source and the reco-energy exposure of its spectrum.

    Parameters
    ----------
    data : MapData
        The dataset (exposure, PSF and edisp maps are used at its centre).
    model : SkyModel
        The test source (its position is ignored: it is put at the centre pixel).
    convention : {"gammaxr", "gammapy"}
        Rendering convention of the evaluator.

    Returns
    -------
    kernel : numpy.ndarray, shape (n_e, 2 hy + 1, 2 hx + 1)
        Fraction of the source's counts in reco bin ``E`` at each pixel offset (lat, lon),
        centred on the middle element; planes sum to <= 1.
    exposure : numpy.ndarray, shape (n_e, n_lat, n_lon)
        Predicted counts of the source's spectrum per unit norm in each reco bin at each
        pixel (``X_E(q)`` of the module docstring).
    """
    cy, cx = _centre_pixel(data)
    lon_c, lat_c = float(data.lon[cx]), float(data.lat[cy])
    spatial = model.spatial
    if spatial is None:
        raise ValueError("the TS map kernel model needs a spatial model")
    lon_m, lat_m = lon_c, lat_c
    if spatial.frame != data.frame:
        (lon_m,), (lat_m,) = transform_lonlat(
            np.array([lon_c]), np.array([lat_c]), data.frame, spatial.frame
        )
    spatial = spatial.with_values(lon_0=float(lon_m), lat_0=float(lat_m))
    reach = (0.0 if spatial.is_point else float(spatial.evaluation_radius)) + 0.1
    if data.psf is not None:
        reach += float(data.rad_edges[-1])
    dx = abs(data.lon_step) * np.cos(np.deg2rad(lat_c))
    hx, hy = int(np.ceil(reach / dx)) + 1, int(np.ceil(reach / abs(data.lat_step))) + 1
    lon_k = lon_c + data.lon_step * np.arange(-hx, hx + 1)
    lat_k = lat_c + data.lat_step * np.arange(-hy, hy + 1)
    n_e, n_et = data.counts.shape[0], data.exposure.shape[0]
    exposure_c = data.exposure[:, cy, cx]
    flat = np.broadcast_to(exposure_c[:, None, None], (n_et, lat_k.size, lon_k.size))
    kdata = dataclasses.replace(
        data,
        lon=lon_k,
        lat=lat_k,
        counts=np.zeros((n_e, lat_k.size, lon_k.size)),
        mask=np.ones((n_e, lat_k.size, lon_k.size), bool),
        exposure=np.ascontiguousarray(flat),
        background=None,
        counts_off=None,
        alpha=None,
    )
    source = model.replace(spatial=spatial, datasets_names=None)
    evaluator = MapSourceEvaluator(kdata, source, convention=convention)
    cut, counts = evaluator(spatial.values, model.spectral.values)
    raw = np.zeros(kdata.counts.shape)
    ys, xs = cut.slices
    raw[:, ys, xs] = counts
    # reco-energy exposure of the spectrum: sum_t F_t exposure_t(q) edisp(t, E)
    e_true = data.energy_true_edges
    flux = np.asarray(
        model.spectral.evaluate_integral(e_true[:-1], e_true[1:], **model.spectral.values),
        dtype=float,
    )
    if data.edisp is not None:
        edisp = edisp_at(data.edisp, data.lon_irf, data.lat_irf, lon_c, lat_c)
    else:
        edisp = diagonal_response(e_true, data.energy_edges)
    weights = flux[:, None] * edisp  # (n_et, n_e)
    exposure = np.tensordot(weights, data.exposure, axes=(0, 0)) * CM2_PER_M2
    norm_c = weights.T @ exposure_c * CM2_PER_M2  # counts per norm at the kernel grid
    kernel = np.divide(
        raw, norm_c[:, None, None], out=np.zeros_like(raw), where=norm_c[:, None, None] > 0
    )
    kernel[kernel < KERNEL_FLOOR * kernel.max()] = 0.0  # rounding noise of the convolution
    keep_y = np.flatnonzero(kernel.any(axis=(0, 2)))
    keep_x = np.flatnonzero(kernel.any(axis=(0, 1)))
    if keep_y.size == 0:
        raise ValueError("the TS map kernel is empty (no exposure or PSF at the map centre)")
    wy = max(hy - keep_y[0], keep_y[-1] - hy)
    wx = max(hx - keep_x[0], keep_x[-1] - hx)
    return kernel[:, hy - wy : hy + wy + 1, hx - wx : hx + wx + 1], exposure


# -- per-pixel likelihoods of one energy group ------------------------------------------------
def _correlate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``out[p] = sum_k kernel[k] image[p + k]`` (kernel centred, zero outside the image)."""
    return fftconvolve(image, kernel[::-1, ::-1], mode="same")


@dataclass(frozen=True, eq=False)
class _Group:
    """Inputs of one energy group: masked maps and the kernel's support."""

    counts: np.ndarray  # (n_bins_e, ny, nx): reco bins, or one summed plane
    background: np.ndarray  # same shape as counts
    exposure: np.ndarray  # (n_eg, ny, nx): X_E of the module docstring, masked
    kernel: np.ndarray  # (n_eg, ky, kx)
    summed: bool

    @property
    def support(self) -> np.ndarray:
        return self.kernel.any(axis=0)

    def offsets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Offsets (dy, dx) of the support (sorted by dy) and kernel values (n_eg, k)."""
        ky, kx = self.support.shape
        oy, ox = np.nonzero(self.support)
        return oy - ky // 2, ox - kx // 2, self.kernel[:, oy, ox]

    def model_values(self, k: np.ndarray, q: np.ndarray, qe, qy, qx, kv) -> np.ndarray:
        """Test-source counts per unit norm at kernel offsets ``k`` in bins ``q`` (indices
        into the bins ``(qe, qy, qx)``)."""
        if self.summed:
            x_q = self.exposure[:, qy, qx]  # (n_eg, n_bins): small
            out = kv[0][k] * x_q[0][q]
            for e in range(1, kv.shape[0]):
                out += kv[e][k] * x_q[e][q]
            return out
        return kv[qe[q], k] * self.exposure[qe, qy, qx][q]


def _pixel_sums(g: _Group) -> dict[str, np.ndarray]:
    """Per-pixel sums over the kernel footprint (FFT correlations) and the start values."""
    support = g.support.astype(float)
    ksum = g.kernel.sum(axis=0)
    model = sum(_correlate(g.exposure[e], g.kernel[e]) for e in range(g.kernel.shape[0]))
    background = _correlate(g.background.sum(axis=0), support)
    if g.summed:
        excess = _correlate(g.counts[0] - g.background[0], ksum)
        weight = sum(_correlate(g.exposure[e], ksum * g.kernel[e]) for e in range(len(g.kernel)))
    else:
        excess = sum(
            _correlate(g.counts[e] - g.background[e], g.kernel[e]) for e in range(len(g.kernel))
        )
        weight = sum(_correlate(g.exposure[e], g.kernel[e] ** 2) for e in range(len(g.kernel)))
    model[model < FFT_FLOOR * max(model.max(), 0.0)] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        guess = np.where(weight > 0, excess / weight, np.nan)
    return {"M": model, "B": np.maximum(background, 0.0), "guess": guess}


def _edge_over(g: _Group, ys: np.ndarray, xs: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """``max(-b / m)`` over the footprint bins at kernel offsets ``sel``, for some pixels."""
    oy, ox, kv = g.offsets()
    oy, ox, kv = oy[sel], ox[sel], kv[:, sel]
    hy, hx = g.kernel.shape[1] // 2, g.kernel.shape[2] // 2
    pad = ((0, 0), (hy, hy), (hx, hx))
    exposure, background = np.pad(g.exposure, pad), np.pad(g.background, pad)
    out = np.full(ys.size, -np.inf)
    step = max(1, CHUNK_ELEMENTS // (oy.size * len(kv)))
    for start in range(0, ys.size, step):
        sl = slice(start, start + step)
        qy = ys[sl, None] + (oy + hy)[None, :]
        qx = xs[sl, None] + (ox + hx)[None, :]
        if g.summed:
            m = np.einsum("ej,erj->rj", kv, exposure[:, qy, qx])[None]
        else:
            m = kv[:, None, :] * exposure[:, qy, qx]
        pos = m > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(pos, background[:, qy, qx] / np.where(pos, m, 1.0), np.inf)
        out[sl] = -ratio.min(axis=(0, 2))
    return out


def _exact_lower(g: _Group, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Exact domain edge ``max(-b / m)`` over all bins of the footprint, for some pixels.

    The offsets with the largest kernel values are scanned first; the others (values at most
    ``kappa``) cannot give a larger edge than ``-min(b / X) / kappa`` (minimum over a box
    around the pixel), so they are scanned only for pixels where that bound does not settle
    it.
    """
    _, _, kv = g.offsets()
    peak = kv.max(axis=0)  # largest kernel value of each offset over energies
    order = np.argsort(-peak, kind="stable")
    n_head = min(order.size, max(64, order.size // 16))
    edge = _edge_over(g, ys, xs, order[:n_head])
    if n_head == order.size:
        return edge
    kappa = peak[order[n_head]]
    scale = g.exposure.sum(axis=0, keepdims=True) if g.summed else g.exposure
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(scale > 0, g.background / scale, np.inf)
    size = g.kernel.shape[1:]
    lowest = np.min(
        [minimum_filter(r, size=size, mode="constant", cval=np.inf) for r in ratio], axis=0
    )
    tail_edge = -lowest[ys, xs] / kappa  # >= the edge from any tail offset
    open_ = tail_edge > edge
    if open_.any():
        rest = _edge_over(g, ys[open_], xs[open_], order[n_head:])
        edge[open_] = np.maximum(edge[open_], rest)
    return edge


def _entries(g: _Group, row_of: np.ndarray, y0: int, y1: int, n_rows: int) -> PixelLikelihood:
    """Entries (bins with counts) of the pixels in lat rows ``y0:y1``."""
    oy, ox, kv = g.offsets()
    nx = g.counts.shape[2]
    qe, qy, qx = np.nonzero(g.counts > 0)
    near = (qy >= y0 - oy.max()) & (qy < y1 - oy.min())
    qe, qy, qx = qe[near], qy[near], qx[near]
    # offsets with py = qy - oy in [y0, y1): a contiguous range of the sorted offsets
    start = np.searchsorted(oy, qy - (y1 - 1), side="left")
    stop = np.searchsorted(oy, qy - y0, side="right")
    count = stop - start
    q = np.repeat(np.arange(qy.size), count)
    k = np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())
    py, px = qy[q] - oy[k], qx[q] - ox[k]
    ok = (px >= 0) & (px < nx)
    q, k, py, px = q[ok], k[ok], py[ok], px[ok]
    row = row_of[py, px]
    ok = row >= 0
    q, k, row = q[ok], k[ok], row[ok]
    n = g.counts[qe, qy, qx].astype(float)[q]
    return PixelLikelihood(
        row=row,
        n=n,
        b=g.background[qe, qy, qx].astype(float)[q],
        m=g.model_values(k, q, qe, qy, qx, kv),
        B=np.zeros(n_rows),
        M=np.zeros(n_rows),
        N=np.bincount(row, weights=n, minlength=n_rows),
    )


def _chunk_rows(g: _Group, pixels_y: np.ndarray) -> list[tuple[int, int]]:
    """Ranges of lat rows whose entries stay below ``CHUNK_ELEMENTS``."""
    ny = g.counts.shape[1]
    per_row = np.bincount(pixels_y, minlength=ny)
    n_bins = max(int(np.count_nonzero(g.counts)), 1)
    k = int(g.support.sum())
    density = n_bins * k / max(pixels_y.size, 1)  # entries per evaluated pixel, at most
    limit = max(CHUNK_ELEMENTS / max(density, 1.0), 1.0)
    ranges, y0, acc = [], 0, 0.0
    for y in range(ny):
        acc += per_row[y]
        if acc >= limit:
            ranges.append((y0, y + 1))
            y0, acc = y + 1, 0.0
    if y0 < ny:
        ranges.append((y0, ny))
    return ranges


def _fit_chunk(g: _Group, sums: dict, py, px, y0, y1, options: dict) -> dict:
    """Fit the pixels ``(py, px)`` (all in lat rows ``y0:y1``)."""
    ny, nx = g.counts.shape[1:]
    row_of = np.full((ny, nx), -1)
    row_of[py, px] = np.arange(py.size)
    entries = _entries(g, row_of, y0, y1, py.size)
    like = dataclasses.replace(entries, B=sums["B"][py, px], M=sums["M"][py, px])
    lower = sums["lower"][py, px]
    res = solve_norms(
        like, lower, sums["guess"][py, px], rtol=options["rtol"], max_iter=options["max_iter"]
    )
    res["npred_excess"] = res["norm"] * like.M
    res["npred"] = like.B + res["norm"] * like.M
    res["counts"] = like.N
    args = (like, res["norm"], res["stat"], res["err"], lower)
    if "errn" in options:
        level = options["n_sigma"] ** 2
        res["errp"] = profile_crossings(*args, level, +1) - res["norm"]
        res["errn"] = res["norm"] - profile_crossings(*args, level, -1)
    if "ul" in options:
        res["ul"] = profile_crossings(*args, options["n_sigma_ul"] ** 2, +1)
    return res


def _group_maps(
    g: _Group, valid: np.ndarray, options: dict, progress: bool | None = None
) -> dict[str, np.ndarray]:
    """All output maps of one energy group (NaN where ``valid`` is False)."""
    ys, xs = np.nonzero(valid)
    if ys.size == 0:
        raise ValueError("no pixel to evaluate: the mask is empty or the background is zero")
    sums = _pixel_sums(g)
    sums["lower"] = np.full(valid.shape, -np.inf)
    sums["lower"][ys, xs] = _exact_lower(g, ys, xs)
    out: dict[str, np.ndarray] = {}
    for y0, y1 in track(_chunk_rows(g, ys), progress, desc="TS map rows"):
        sel = (ys >= y0) & (ys < y1)
        if not sel.any():
            continue
        res = _fit_chunk(g, sums, ys[sel], xs[sel], y0, y1, options)
        for key, value in res.items():
            if key not in out:
                out[key] = np.full(valid.shape, np.nan)
            out[key][ys[sel], xs[sel]] = value
    return out


def ts_map(
    ds: xr.Dataset,
    models: Models | SkyModel | Sequence | None = None,
    *,
    kernel_model: SkyModel | None = None,
    energy_edges: Sequence[float] | None = None,
    sum_over_energy: bool = True,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    selection: str | Sequence[str] | None = None,
    rtol: float = 1e-4,
    max_iter: int = 100,
    name: str | None = None,
    convention: str = "gammaxr",
    progress: bool | None = None,
) -> xr.Dataset:
    """TS, significance and flux maps of a test source fitted at every pixel.

    Parameters
    ----------
    ds : xarray.Dataset
        A map dataset (``counts(energy, lat, lon)``, ``background``, ``exposure`` [m2 s],
        masks, optional ``psf``/``edisp``), numpy- or dask-backed (loaded once here). Stack
        runs first (``ds.gamma.stack()``).
    models : Models, SkyModel or sequence of models, optional
        Known sources and background models: the background of the test is the
        dataset's ``background`` scaled by its background model plus these sources
        (default: the ``background`` as it is).
    kernel_model : SkyModel, optional
        The test source: spatial shape and spectrum (default
        :func:`default_kernel_model`, a point source with a power law of index 2); its
        position is ignored. Its parameters take quantities (``sigma="6 arcmin"``).
    energy_edges : sequence of float or astropy.units.Quantity, optional
        Energy groups in reco energy, TeV or energy quantities (snapped to the dataset
        edges); default one group over the whole range.
    sum_over_energy : bool
        Sum counts, background and model over the reco bins of a group before the fit
        (default, as Gammapy), or keep them as separate terms.
    n_sigma, n_sigma_ul : float
        Error size and upper-limit level (``Delta stat = n_sigma_ul**2``).
    selection : {"errn-errp", "ul"}, "all", sequence or None
        Optional outputs (default none).
    rtol : float
        Convergence: Newton steps below ``rtol`` times the norm's error.
    max_iter : int
        Iteration limit per pixel.
    name : str, optional
        Dataset name (matches background models).
    convention : {"gammaxr", "gammapy"}
        Rendering convention of the kernel and of the models (see :func:`gammaxr.fit.fit`).
    progress : bool or None
        Show a progress bar over the pixel chunks fitted (None: the
        :func:`gammaxr.progress.show_progress` context).

    Returns
    -------
    xarray.Dataset
        Dims ``(energy, lat, lon)`` (one energy per group, ``energy_bounds``), the maps of
        the module docstring with ``units`` attrs; attrs ``frame``, ``kernel_model``
        (YAML), ``n_sigma``, ``n_sigma_ul``, ``sum_over_energy``.
    """
    if "obs_id" in ds.dims:
        raise ValueError("ts_map works on one map dataset: stack the runs first (ds.gamma.stack())")
    if "lat" not in ds.dims or "lon" not in ds.dims:
        raise ValueError("ts_map needs a map dataset with 'lat' and 'lon' dims")
    chosen = check_selection(selection)
    (data,) = load_datasets(ds, name, skip_empty=False)
    if data.is_on_off:
        raise ValueError("ts_map needs a dataset with a known background (cash), not on/off")
    if data.exposure is None or data.energy_true_edges is None:
        raise ValueError(f"dataset {data.name!r} needs 'exposure(energy_true, lat, lon)'")
    if models is not None:
        context = FitContext(
            [data], _as_models(models), convention=convention, require_sources=False
        )
        background = context.npred()[0]["total"]
    elif data.background is None:
        raise ValueError(f"dataset {data.name!r} has no 'background' variable")
    else:
        background = data.background
    kernel_model = default_kernel_model() if kernel_model is None else kernel_model
    if not isinstance(kernel_model, SkyModel) or kernel_model.spatial is None:
        raise TypeError(
            "kernel_model must be a SkyModel with a spatial model (its size, e.g. "
            f"GaussianSpatialModel(sigma='0.1 deg'), sets the kernel), got {kernel_model!r}"
        )
    kernel, exposure = test_source_kernel(data, kernel_model, convention)
    mask = data.mask & np.isfinite(background)
    edges = data.energy_edges
    if energy_edges is None:
        start, stop = np.array([0]), np.array([edges.size - 1])
    else:
        start, stop = snap_energy_edges(edges, energy_edges)
        keep = stop > start
        start, stop = start[keep], stop[keep]
        if not start.size:
            raise ValueError(f"energy_edges {list(energy_edges)} do not overlap the dataset")
    options = {"rtol": rtol, "max_iter": max_iter, "n_sigma": n_sigma, "n_sigma_ul": n_sigma_ul}
    options.update({"errn": True} if "errn-errp" in chosen else {})
    options.update({"ul": True} if "ul" in chosen else {})
    maps = []
    for a, b in zip(start, stop, strict=True):
        group, valid = _group_inputs(
            data, background, kernel, exposure, mask, a, b, sum_over_energy
        )
        maps.append(_group_maps(group, valid, options, progress))
    spectral = kernel_model.spectral
    e_min, e_max = edges[start], edges[stop]
    ref_flux = np.asarray(spectral.evaluate_integral(e_min, e_max, **spectral.values), float)
    attrs = {
        "frame": data.frame,
        "kernel_model": models_to_yaml(Models([kernel_model])),
        "n_sigma": float(n_sigma),
        "n_sigma_ul": float(n_sigma_ul),
        "sum_over_energy": int(bool(sum_over_energy)),
    }
    return _to_dataset(ds, maps, e_min, e_max, ref_flux, float(n_sigma), attrs)


def _group_inputs(data, background, kernel, exposure, mask, a, b, summed) -> tuple[_Group, Any]:
    """Masked inputs of the energy group of reco bins ``a:b`` and the pixels to evaluate."""
    msk = mask[a:b]
    counts = np.where(msk, data.counts[a:b], 0.0)
    bkg = np.where(msk, background[a:b], 0.0)
    valid = msk.any(axis=0) & (bkg.sum(axis=0) > 0)
    if summed:
        counts, bkg = counts.sum(axis=0, keepdims=True), bkg.sum(axis=0, keepdims=True)
    group = _Group(
        counts=counts,
        background=bkg,
        exposure=np.where(msk, exposure[a:b], 0.0),
        kernel=kernel[a:b],
        summed=bool(summed),
    )
    return group, valid


def _to_dataset(ds, groups, e_min, e_max, ref_flux, n_sigma, attrs) -> xr.Dataset:
    def stack(key):
        return np.stack([g[key] for g in groups])

    dims = ("energy", "lat", "lon")
    norm, err = stack("norm"), stack("err") * n_sigma
    ts = stack("stat_null") - stack("stat")
    with np.errstate(invalid="ignore"):
        sqrt_ts = np.sign(norm) * np.sqrt(np.clip(ts, 0, None))
    flux = ref_flux[:, None, None]
    data: dict[str, Any] = {
        "ts": (dims, ts, {"units": ""}),
        "sqrt_ts": (dims, sqrt_ts, {"units": ""}),
        "norm": (dims, norm, {"units": ""}),
        "norm_err": (dims, err, {"units": ""}),
        "flux": (dims, norm * flux, {"units": "cm-2 s-1"}),
        "flux_err": (dims, err * flux, {"units": "cm-2 s-1"}),
    }
    for key in ("errn", "errp", "ul"):
        if key in groups[0]:
            data[f"norm_{key}"] = (dims, stack(key), {"units": ""})
            data[f"flux_{key}"] = (dims, stack(key) * flux, {"units": "cm-2 s-1"})
    for key in ("npred", "npred_excess", "counts", "stat", "stat_null"):
        data[key] = (dims, stack(key), {"units": ""})
    niter = stack("niter")
    data["niter"] = (dims, np.nan_to_num(niter).astype(int), {"units": ""})
    data["success"] = (dims, np.nan_to_num(stack("success")).astype(bool), {"units": ""})
    coords = dict(axis_coords("energy", np.concatenate([e_min, e_max[-1:]]), "TeV"))
    if not np.allclose(e_max[:-1], e_min[1:]):
        coords = dict(axis_coords("energy", None, "TeV", lo=e_min, hi=e_max))
    coords["lat"], coords["lon"] = ds["lat"].variable, ds["lon"].variable
    coords["ref_flux"] = ("energy", ref_flux, {"units": "cm-2 s-1"})
    return xr.Dataset(data, coords=coords, attrs=attrs)
