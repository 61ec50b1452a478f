"""Flux points: the norm of a fitted source's spectrum, re-fitted in each energy bin.

For each requested energy bin the best-fit spectral model of one source (the *reference
model*) is scaled by a free factor ``norm`` and fitted to the counts of the reco-energy bins
inside the bin, everything else held at its current value (Gammapy's ``FluxPointsEstimator``
with ``reoptimize=False``; ``reoptimize=True`` re-fits the other free parameters per bin,
:mod:`gammaxr.estimators.reoptimize`). With ``mu = other + norm * signal`` per bin, where ``signal`` is
the source's predicted counts at ``norm = 1`` and ``other`` the background (scaled by its
model) plus all other sources, the likelihood is one-dimensional and cheap: the predicted
counts are computed once and each bin's norm is a scalar fit (the likelihood lives in
:mod:`gammaxr.estimators.norm_fit`: :func:`norm_terms`, :class:`NormLikelihood`,
:func:`estimate_norm`). On/off datasets use wstat with
``mu_sig = other_sources + norm * signal``.

Per bin: ``norm`` and ``norm_err`` (curvature of the likelihood, as Hesse, times
``n_sigma``), ``ts = stat(norm=0) - stat(best)``, ``sqrt_ts`` (signed by the norm),
``norm_errn``/``norm_errp`` (profile likelihood, ``Delta stat = n_sigma**2``), ``norm_ul``
(``Delta stat = n_sigma_ul**2`` above the best norm), ``npred``, ``npred_excess``,
``counts``, ``stat``, ``stat_null``, ``success`` and ``is_ul`` (``sqrt_ts <
sqrt_ts_threshold_ul``); fluxes ``dnde``, ``e2dnde``, ``flux``, ``eflux`` (and their
errors and limits) are the norm quantities times the reference model's values
``ref_dnde``, ``ref_e2dnde`` at ``e_ref`` (the geometric bin centre) and ``ref_flux``,
``ref_eflux`` integrated over the bin.

Requested edges snap to the nearest dataset edges in log energy (as Gammapy); a bin's
``energy_bounds`` are the edges of the reco bins that lie inside it and inside the masks.
Bins with no data get NaN and ``success = False``.

The datasets are loaded once (:func:`gammaxr.fit.load_datasets`, the compute boundary of
fitting), so numpy- and dask-backed datasets give the same result.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_coords
from gammaxr.models import Models, SkyModel, SpectralModel, models_to_yaml
from gammaxr.progress import track
from gammaxr.units import to_edges

from .norm_fit import (
    OPTIONAL,
    NormLikelihood,
    NormTerm,
    _as_models,
    check_selection,
    estimate_norm,
    norm_terms,
    source_model,
)

__all__ = [
    "SED_UNITS",
    "NormLikelihood",
    "NormTerm",
    "estimate_norm",
    "flux_points",
    "norm_terms",
    "sed_dataset",
    "snap_energy_edges",
    "source_model",
]

#: Units of the SED quantities (``dnde``, ``e2dnde``, ``flux``, ``eflux``).
SED_UNITS = {
    "dnde": "cm-2 s-1 TeV-1",
    "e2dnde": "TeV cm-2 s-1",
    "flux": "cm-2 s-1",
    "eflux": "TeV cm-2 s-1",
}


# -- energy bins -------------------------------------------------------------------------
def snap_energy_edges(
    dataset_edges: np.ndarray, requested: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Requested bins as ranges of dataset bins (edges snapped to the nearest in log E).

    Parameters
    ----------
    dataset_edges : numpy.ndarray, shape (n + 1,)
        Reco-energy edges of the dataset, TeV.
    requested : sequence of float or astropy.units.Quantity, shape (m + 1,)
        Requested bin edges, TeV (increasing); a Quantity in any energy unit is converted.

    Returns
    -------
    start, stop : numpy.ndarray of int, shape (m,)
        Requested bin ``i`` covers dataset bins ``start[i]:stop[i]`` (empty when both
        edges snap to the same dataset edge, e.g. outside the dataset's range).
    """
    edges = np.asarray(dataset_edges, dtype=float)
    req = to_edges(requested, "TeV", "energy_edges")
    position = np.interp(np.log(req), np.log(edges), np.arange(edges.size))
    index = np.floor(position + 0.5).astype(int)  # nearest edge; exact halves round up
    return index[:-1], index[1:]


# -- output -----------------------------------------------------------------------------
def _reference_values(model: SpectralModel, e_min: np.ndarray, e_max: np.ndarray) -> dict:
    values = model.values
    e_ref = np.sqrt(e_min * e_max)
    dnde = np.asarray(model.evaluate(e_ref, **values), dtype=float)
    return {
        "e_ref": e_ref,
        "dnde": dnde,
        "e2dnde": dnde * e_ref**2,
        "flux": np.asarray(model.evaluate_integral(e_min, e_max, **values), dtype=float),
        "eflux": np.asarray(model.evaluate_energy_flux(e_min, e_max, **values), dtype=float),
    }


def sed_dataset(
    rows: dict[str, np.ndarray],
    e_min: np.ndarray,
    e_max: np.ndarray,
    reference: SkyModel,
    *,
    dims: tuple[str, ...] = ("energy",),
    coords: dict | None = None,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    sqrt_ts_threshold_ul: float = 2.0,
) -> xr.Dataset:
    """Assemble estimator results into an SED dataset with fluxes from a reference model.

    Parameters
    ----------
    rows : dict of numpy.ndarray
        Output of :func:`estimate_norm` stacked to arrays of shape ``dims`` (energy last).
    e_min, e_max : numpy.ndarray, shape (n_energy,)
        Bin edges, TeV.
    reference : SkyModel
        The source (its spectral model gives the reference fluxes).
    dims : tuple of str
        Dims of the arrays; the last must be ``"energy"``.
    coords : dict, optional
        Extra coordinates (for the leading dims).
    n_sigma, n_sigma_ul, sqrt_ts_threshold_ul : float
        Recorded in attrs; ``is_ul = sqrt_ts < sqrt_ts_threshold_ul`` when ``norm_ul`` is
        present.

    Returns
    -------
    xarray.Dataset
        See the module docstring.
    """

    ref = _reference_values(reference.spectral, e_min, e_max)
    edges_ok = np.concatenate([e_min, e_max[-1:]])
    contiguous = np.allclose(e_max[:-1], e_min[1:], rtol=1e-12)
    if contiguous:
        all_coords = dict(axis_coords("energy", edges_ok, "TeV"))
    else:
        all_coords = dict(axis_coords("energy", None, "TeV", lo=e_min, hi=e_max))
    all_coords.update(coords or {})
    all_coords["e_ref"] = ("energy", ref["e_ref"], {"units": "TeV"})
    data: dict[str, Any] = {}
    for key, values in rows.items():
        dtype = bool if key == "success" else float
        data[key] = (dims, np.asarray(values).astype(dtype), {"units": ""})
    norm = np.asarray(rows["norm"], dtype=float)
    ts = np.asarray(rows["ts"], dtype=float)
    with np.errstate(invalid="ignore"):
        sqrt_ts = np.sign(norm) * np.sqrt(np.clip(ts, 0, None))
        data["sqrt_ts"] = (dims, sqrt_ts, {"units": ""})
        if "norm_ul" in rows:
            data["is_ul"] = (dims, sqrt_ts < sqrt_ts_threshold_ul, {"units": ""})
    suffixes = [s for s in ("", "_err", "_errn", "_errp", "_ul") if f"norm{s}" in rows]
    for sed, unit in SED_UNITS.items():
        data[f"ref_{sed}"] = ("energy", ref[sed], {"units": unit})
        for suffix in suffixes:
            value = np.asarray(rows[f"norm{suffix}"], dtype=float) * ref[sed]
            data[f"{sed}{suffix}"] = (dims, value, {"units": unit})
    attrs = {
        "source": reference.name,
        "reference_model": models_to_yaml(Models([reference])),
        "n_sigma": float(n_sigma),
        "n_sigma_ul": float(n_sigma_ul),
        "sqrt_ts_threshold_ul": float(sqrt_ts_threshold_ul),
        "sed_type_init": "likelihood",
    }
    return xr.Dataset(data, coords=all_coords, attrs=attrs)


def bin_ranges(terms: Sequence[NormTerm], energy_edges: Sequence[float] | None):
    """Reco-bin ranges of the requested bins and their edges inside the masks.

    Parameters
    ----------
    terms : sequence of NormTerm
        All terms (their energy axes must agree).
    energy_edges : sequence of float or None
        Requested edges, TeV; None: every reco bin of the datasets.

    Returns
    -------
    start, stop : numpy.ndarray of int
        Reco-bin ranges.
    e_min, e_max : numpy.ndarray
        Edges of each bin: those of the masked-in reco bins it contains (the snapped
        requested edges where none is).
    """
    edges = terms[0].energy_edges
    for t in terms[1:]:
        if t.energy_edges.shape != edges.shape or not np.allclose(t.energy_edges, edges):
            raise ValueError(
                f"datasets {terms[0].name!r} and {t.name!r} have different reco-energy axes"
            )
    if energy_edges is None:
        start = np.arange(edges.size - 1)
        stop = start + 1
    else:
        start, stop = snap_energy_edges(edges, energy_edges)
    used = np.zeros(edges.size - 1, bool)
    for t in terms:
        used[np.unique(t.energy_index)] = True
    e_min, e_max = edges[start].astype(float), edges[stop].astype(float)
    for i, (a, b) in enumerate(zip(start, stop, strict=True)):
        inside = np.flatnonzero(used[a:b]) + a
        if inside.size:
            e_min[i], e_max[i] = edges[inside[0]], edges[inside[-1] + 1]
        elif a == b and energy_edges is not None:
            e_min[i], e_max[i] = energy_edges[i], energy_edges[i + 1]
    return start, stop, e_min, e_max


def stack_rows(results: list[dict[str, float]]) -> dict[str, np.ndarray]:
    """``[{key: value}, ...]`` -> ``{key: array}`` (same keys in every dict)."""
    return {k: np.array([r[k] for r in results]) for k in results[0]}


def flux_points(
    datasets: xr.Dataset | Sequence[xr.Dataset],
    models: Models | SkyModel | Sequence,
    energy_edges: Sequence[float] | None = None,
    *,
    source: str | None = None,
    n_sigma: float = 1.0,
    n_sigma_ul: float = 2.0,
    sqrt_ts_threshold_ul: float = 2.0,
    selection: str | Sequence[str] | None = OPTIONAL,
    reoptimize: bool = False,
    name: str | Sequence[str] | None = None,
    convention: str = "gammaxr",
    progress: bool | None = None,
) -> xr.Dataset:
    """Flux points of a source: its spectrum's norm fitted in each energy bin.

    Parameters
    ----------
    datasets : xarray.Dataset or sequence of xarray.Dataset
        Map or spectrum datasets (numpy- or dask-backed; an ``obs_id`` dim is a joint
        likelihood over runs), as for :func:`gammaxr.fit.fit`. Loaded once here.
    models : Models, SkyModel or sequence of models
        The models at their best fit (``result.models``); background models apply as in a
        fit and stay at their values.
    energy_edges : sequence of float, optional
        Bin edges in reco energy, TeV; snapped to the nearest dataset edges (log energy).
        Default: every reco bin of the datasets.
    source : str, optional
        Name of the sky model (default: the first).
    n_sigma : float
        Size of ``norm_err`` and of the profile errors ``norm_errn``/``norm_errp``.
    n_sigma_ul : float
        Upper limits at ``Delta stat = n_sigma_ul**2`` (2: Gammapy's default).
    sqrt_ts_threshold_ul : float
        ``is_ul`` where ``sqrt_ts`` is below this.
    selection : {"errn-errp", "ul"}, "all", sequence or None
        Optional outputs (default both).
    reoptimize : bool
        False (default, as Gammapy): everything else stays at its value. True: the other
        free parameters are re-fitted in each bin with the source's amplitude
        (:mod:`gammaxr.estimators.reoptimize`; a fit per likelihood evaluation, slow).
    name : str or sequence of str, optional
        Dataset names (background models are matched by them).
    convention : {"gammaxr", "gammapy"}
        Source rendering convention (see :func:`gammaxr.fit.fit`).
    progress : bool or None
        Show a progress bar (None: the :func:`gammaxr.progress.show_progress` context).

    Returns
    -------
    xarray.Dataset
        Dim ``energy`` (coordinate: log centres of ``energy_bounds``; ``e_ref``): the
        variables of the module docstring, each with a ``units`` attr; attrs ``source``,
        ``reference_model`` (Gammapy model YAML), ``n_sigma``, ``n_sigma_ul``.

    Examples
    --------
    >>> result = ds.gamma.fit(models)
    >>> fp = ds.gamma.flux_points(result.models, [1, 2, 4, 10], source="crab")
    >>> fp["e2dnde"], fp["e2dnde_err"], fp["ts"]
    """
    chosen = check_selection(selection)
    src = source_model(models, source)
    terms = norm_terms(datasets, models, source, name=name, convention=convention)
    start, stop, e_min, e_max = bin_ranges(terms, energy_edges)
    options = {"n_sigma": n_sigma, "n_sigma_ul": n_sigma_ul, "selection": chosen}
    results = []
    bins = zip(start, stop, e_min, e_max, strict=True)
    for a, b, lo, hi in track(bins, progress, desc="flux points", total=len(start)):
        like = NormLikelihood(terms, int(a), int(b))
        if reoptimize and like.n_bins and like.signal_total > 0:
            from .reoptimize import reoptimized_point

            row = reoptimized_point(
                datasets, _as_models(models), src, lo, hi, (int(a), int(b)),
                name=name, convention=convention, **options,
            )  # fmt: skip
        else:
            row = estimate_norm(like, **options)
        results.append(row)
    failed = [i for i, r in enumerate(results) if not r["success"]]
    if failed and any(np.isfinite(results[i]["ts"]) for i in failed):
        warnings.warn(
            f"flux points: the norm fit did not converge in bins {failed}", RuntimeWarning, 2
        )
    return sed_dataset(
        stack_rows(results),
        e_min,
        e_max,
        src,
        n_sigma=n_sigma,
        n_sigma_ul=n_sigma_ul,
        sqrt_ts_threshold_ul=sqrt_ts_threshold_ul,
    )
