"""Field-of-view (FoV) background: renormalise each run's background model to its own counts.

For every run the background model is compared with the counts in the *usable* bins: inside
the run's ``mask_safe`` (and ``mask_fit`` where present) and outside the exclusion mask (bright
sources). Two methods, as Gammapy's ``FoVBackgroundMaker`` defines them:

``"scale"``
    ``norm = sum(counts) / sum(background)`` over the usable bins, error
    ``sqrt(sum(counts)) / sum(background)``.
``"fit"``
    maximum of the Poisson likelihood (cash) of the counts given
    ``norm * background * (E / E_ref) ** -tilt`` over the usable bins; ``tilt`` is frozen at 0
    unless ``fit_tilt`` (Gammapy's default ``PowerLawNormSpectralModel`` has it frozen). With
    the tilt frozen the maximum is exactly the ``"scale"`` value; with a free tilt the profile
    likelihood in ``tilt`` is convex and solved with a bracketed root finder, errors come from
    the analytic Hessian.

A run where this cannot work (no usable background, too few counts, a non-finite value, a tilt
fit without solution) keeps its model (norm 1, tilt 0), gets ``mask_safe`` all False (so it
drops out of stacking and fitting), ``fov_background_ok`` False and its reason in
``fov_background_error``; a ``RuntimeWarning`` names the obs_id and the reason.

The work is one small task per run chunk (:func:`xarray.apply_ufunc` over ``obs_id``): on
dask-backed datasets nothing is computed until asked; warnings are then emitted at compute time.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from gammaxr.geom.grid import SkyGrid

__all__ = ["FOV_METHODS", "exclusion_on_grid", "fov_background", "fov_norms"]

#: Methods of :func:`fov_background`.
FOV_METHODS = ("scale", "fit")
#: Largest |tilt| the tilt fit searches.
TILT_MAX = 10.0
ERROR_LENGTH = 200
_RESULTS = ("fov_norm", "fov_norm_error", "fov_tilt", "fov_tilt_error", "fov_background_error")


def exclusion_on_grid(ds: xr.Dataset | xr.DataArray, exclusion: Any) -> xr.DataArray | None:
    """An exclusion mask (True = usable) on the sky grid of ``ds``.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        Object with ``lon``/``lat`` coordinates (deg) and a ``frame`` attr.
    exclusion : xarray.DataArray, regions, str or None
        A bool mask with dims ``(lat, lon)`` (True = usable, as
        :func:`gammaxr.geom.exclusion_mask` gives) on the same grid or on another grid of the
        same frame (taken at the nearest pixel, pixels outside it usable); or sky regions to
        exclude (``regions`` shapes or a DS9 string); None for no exclusion.

    Returns
    -------
    xarray.DataArray of bool, dims (lat, lon), or None
        With the coordinates of ``ds``; lazy if the input mask is.
    """
    if exclusion is None:
        return None
    if not isinstance(exclusion, xr.DataArray):
        from gammaxr.geom.regions import exclusion_mask  # imports regions

        return exclusion_mask(SkyGrid.from_xarray(ds), exclusion)
    if set(exclusion.dims) != {"lat", "lon"}:
        raise ValueError(f"exclusion mask must have dims (lat, lon), got {exclusion.dims}")
    frame = exclusion.attrs.get("frame", ds.attrs.get("frame"))
    if frame != ds.attrs.get("frame"):
        raise ValueError(
            f"exclusion mask frame {frame!r} differs from the dataset frame "
            f"{ds.attrs.get('frame')!r}; give the regions instead"
        )
    mask = exclusion.astype(bool).transpose("lat", "lon")
    same = all(
        mask.sizes[d] == ds.sizes[d] and np.allclose(mask[d].values, ds[d].values, atol=1e-6)
        for d in ("lat", "lon")
    )
    if same:
        return mask.assign_coords(lat=ds["lat"], lon=ds["lon"])
    grid = SkyGrid.from_xarray(mask.assign_attrs(frame=frame))
    tol = {"lat": 0.5 * grid.lat_step, "lon": 0.5 * grid.lon_step}
    out = mask.sortby(["lat", "lon"]).astype(float)
    out = out.reindex(lat=ds["lat"], method="nearest", tolerance=tol["lat"])
    out = out.reindex(lon=ds["lon"], method="nearest", tolerance=tol["lon"])
    return out.fillna(1.0).astype(bool).assign_attrs(mask.attrs)


def _failure(reason: str) -> tuple:
    return 1.0, np.nan, 0.0, np.nan, reason


def _fit_tilt(n_e: np.ndarray, b_e: np.ndarray, log_x: np.ndarray) -> tuple:
    """Cash fit of (norm, tilt) to per-energy counts ``n_e`` and background ``b_e``."""
    use = b_e > 0
    if np.unique(log_x[use]).size < 2:
        return _failure("a tilt fit needs background in at least 2 energy bins")
    n_e, b_e, log_x = n_e[use], b_e[use], log_x[use]
    n_tot = n_e.sum()
    target = float(n_e @ log_x) / n_tot

    def mean_log_x(tilt: float) -> float:
        # background-weighted mean of log(E / E_ref) with weights b * x**-tilt (stable)
        log_w = np.log(b_e) - tilt * log_x
        w = np.exp(log_w - log_w.max())
        return float(w @ log_x / w.sum()) - target

    lo, hi = mean_log_x(-TILT_MAX), mean_log_x(TILT_MAX)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo * hi > 0:
        return _failure(f"tilt fit has no solution with |tilt| < {TILT_MAX}")
    from scipy.optimize import brentq

    tilt = brentq(mean_log_x, -TILT_MAX, TILT_MAX, xtol=1e-10)
    weights = np.exp(-tilt * log_x)
    norm = n_tot / float(b_e @ weights)
    # Hessian of -log L = sum(mu - n log mu), mu = norm * b * exp(-tilt * log_x)
    mu = norm * b_e * weights
    h_aa = n_tot / norm**2
    h_at = -float(mu @ log_x) / norm
    h_tt = float(mu @ log_x**2)
    det = h_aa * h_tt - h_at**2
    if not (np.isfinite(norm) and det > 0):
        return _failure("tilt fit Hessian is not positive definite")
    return norm, np.sqrt(h_tt / det), tilt, np.sqrt(h_aa / det), ""


def _one_run(
    n_e: np.ndarray,
    b_e: np.ndarray,
    log_x: np.ndarray,
    method: str,
    fit_tilt: bool,
    min_counts: float,
    min_npred_background: float,
) -> tuple:
    n_tot, b_tot = n_e.sum(), b_e.sum()  # numpy floats: x / 0 gives inf/nan, not an error
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = float(n_tot / b_tot)
    if not np.isfinite(norm):
        return _failure(f"non-finite norm (counts {n_tot:g} / background {b_tot:g})")
    if b_tot <= min_npred_background:
        return _failure(
            f"background {b_tot:.6g} in the usable bins is not above "
            f"min_npred_background={min_npred_background:g}"
        )
    if n_tot <= min_counts:
        return _failure(f"{n_tot:g} counts in the usable bins, not above min_counts={min_counts:g}")
    if method == "fit" and fit_tilt:
        return _fit_tilt(n_e, b_e, log_x)
    return norm, np.sqrt(n_tot) / b_tot, 0.0, np.nan, ""


def fov_norms(
    counts: np.ndarray,
    background: np.ndarray,
    usable: np.ndarray,
    energy: np.ndarray,
    obs_id: np.ndarray | None = None,
    *,
    method: str = "scale",
    fit_tilt: bool = False,
    reference_energy: float = 1.0,
    min_counts: float = 0.0,
    min_npred_background: float = 0.0,
) -> tuple[np.ndarray, ...]:
    """FoV background norms of runs (the numpy core of :func:`fov_background`).

    Parameters
    ----------
    counts, background : numpy.ndarray, shape (..., n_energy, n_lat, n_lon)
        Counts and background model counts of each run.
    usable : numpy.ndarray of bool, same shape
        Bins that enter the estimate (safe, not excluded, in the fit mask).
    energy : numpy.ndarray, shape (n_energy,)
        Reco-energy bin centres in TeV (the tilt is evaluated there).
    obs_id : numpy.ndarray, shape (...), optional
        Run ids, to name the runs in warnings.
    method : {"scale", "fit"}
        See the module docstring.
    fit_tilt : bool
        With ``method="fit"``, fit the spectral tilt too.
    reference_energy : float
        Reference energy of the tilt in TeV.
    min_counts, min_npred_background : float
        A run needs more counts, and more background, than these in the usable bins.

    Returns
    -------
    norm, norm_error, tilt, tilt_error : numpy.ndarray of float, shape (...)
        Applied values (1 and 0 for a failed run) and 1-sigma errors (NaN when not fitted).
    error : numpy.ndarray of str, shape (...)
        Empty where the estimate worked, else the reason.
    """
    if method not in FOV_METHODS:
        raise ValueError(f"unknown FoV background method {method!r}; known: {FOV_METHODS}")
    usable = usable & np.isfinite(background) & np.isfinite(counts)
    n_e = np.where(usable, counts, 0).sum(axis=(-2, -1), dtype=float)
    b_e = np.where(usable, background, 0).sum(axis=(-2, -1), dtype=float)
    log_x = np.log(np.asarray(energy, dtype=float) / reference_energy)
    lead = n_e.shape[:-1]
    ids = np.broadcast_to(np.asarray(obs_id if obs_id is not None else -1), lead)
    results = [np.empty(lead, dtype=float) for _ in range(4)]
    errors = np.empty(lead, dtype=f"<U{ERROR_LENGTH}")
    for idx in np.ndindex(lead):  # one iteration per run
        out = _one_run(
            n_e[idx], b_e[idx], log_x, method, fit_tilt, min_counts, min_npred_background
        )
        for array, value in zip(results, out[:4], strict=True):
            array[idx] = value
        errors[idx] = out[4][:ERROR_LENGTH]
        if out[4]:
            warnings.warn(
                f"obs_id {ids[idx]}: FoV background {method} failed ({out[4]}); "
                "run keeps its background model and is masked out (mask_safe False)",
                RuntimeWarning,
                stacklevel=2,
            )
    return (*results, errors)


def _usable(ds: xr.Dataset, exclusion: xr.DataArray | None) -> xr.DataArray:
    usable = ds["mask_safe"]
    if "mask_fit" in ds:
        usable = usable & ds["mask_fit"]
    if exclusion is not None:
        usable = usable & exclusion
    return usable


def fov_background(
    ds: xr.Dataset,
    exclusion: Any = None,
    *,
    method: str = "scale",
    fit_tilt: bool = False,
    reference_energy: float = 1.0,
    min_counts: float = 0.0,
    min_npred_background: float = 0.0,
    dim: str = "obs_id",
) -> xr.Dataset:
    """Renormalise each run's background model to its counts outside an exclusion mask.

    Parameters
    ----------
    ds : xarray.Dataset
        Per-run datasets: ``counts(obs_id, energy, lat, lon)``, ``background(obs_id, energy,
        lat, lon)`` [counts], ``mask_safe(obs_id, energy, lat, lon)`` bool, optional
        ``mask_fit``; numpy- or dask-backed (one chunk per run is best). A single run without
        the ``obs_id`` dim (e.g. from :func:`gammaxr.reduce.dataset.reduce_observation`) works
        too.
    exclusion : xarray.DataArray, regions, str or None
        Usable pixels (bool ``(lat, lon)``, True = usable, as
        :func:`gammaxr.geom.exclusion_mask` gives), or the sky regions to exclude; see
        :func:`exclusion_on_grid`.
    method : {"scale", "fit"}
        ``"scale"``: ratio of summed counts and background; ``"fit"``: cash fit of the norm
        (and the tilt if ``fit_tilt``).
    fit_tilt : bool
        Fit ``norm * (E / reference_energy) ** -tilt`` instead of a norm alone (``"fit"``).
    reference_energy : float
        TeV, reference energy of the tilt.
    min_counts : float
        A run needs more than this many counts in the usable bins.
    min_npred_background : float
        A run needs more than this many background counts in the usable bins.
    dim : str
        The run dimension.

    Returns
    -------
    xarray.Dataset
        A new dataset: ``background`` multiplied by each run's ``norm * (E / E_ref) **
        -tilt``; ``mask_safe`` all False for failed runs; new variables along ``obs_id``:
        ``fov_norm``, ``fov_norm_error``, ``fov_tilt``, ``fov_tilt_error``,
        ``fov_background_ok`` (bool) and ``fov_background_error`` (reason, empty if ok). Lazy
        if the input is.

    Warns
    -----
    RuntimeWarning
        Once per failed run, naming its obs_id and the reason (at compute time for dask).
    """
    if method not in FOV_METHODS:
        raise ValueError(f"unknown FoV background method {method!r}; known: {FOV_METHODS}")
    missing = [n for n in ("counts", "background", "mask_safe") if n not in ds]
    if missing:
        raise ValueError(f"FoV background needs variables {missing} in the dataset")
    single = dim not in ds.dims
    if single:
        ds = ds.expand_dims({dim: [int(ds.attrs.get("obs_id", -1))]})
    usable = _usable(ds, exclusion_on_grid(ds, exclusion))
    core = ["energy", "lat", "lon"]
    results = xr.apply_ufunc(
        fov_norms,
        ds["counts"],
        ds["background"],
        usable,
        ds["energy"],
        ds[dim],
        input_core_dims=[core, core, core, ["energy"], []],
        output_core_dims=[[]] * 5,
        dask="parallelized",
        output_dtypes=[float, float, float, float, np.dtype(f"<U{ERROR_LENGTH}")],
        dask_gufunc_kwargs={"allow_rechunk": True},
        kwargs={
            "method": method,
            "fit_tilt": fit_tilt,
            "reference_energy": reference_energy,
            "min_counts": min_counts,
            "min_npred_background": min_npred_background,
        },
    )
    out = dict(zip(_RESULTS, results, strict=True))
    ok = out["fov_background_error"] == ""
    energy = ds["energy"]
    factor = out["fov_norm"] * (energy / reference_energy) ** (-out["fov_tilt"])
    background = (ds["background"] * factor).astype(ds["background"].dtype)
    new = ds.assign(
        background=background.assign_attrs(ds["background"].attrs),
        mask_safe=(ds["mask_safe"] & ok).assign_attrs(ds["mask_safe"].attrs),
        fov_background_ok=ok,
        **{name: out[name] for name in _RESULTS},
    )
    units = {"fov_norm": "", "fov_norm_error": "", "fov_tilt": "", "fov_tilt_error": ""}
    for name, unit in units.items():
        new[name].attrs["units"] = unit
    new = new.assign_attrs(
        fov_background_method=method,
        fov_background_fit_tilt=bool(fit_tilt),
        fov_reference_energy_TeV=float(reference_energy),
    )
    new = new.drop_vars([c for c in new.coords if c not in ds.coords], errors="ignore")
    return new.isel({dim: 0}) if single else new
