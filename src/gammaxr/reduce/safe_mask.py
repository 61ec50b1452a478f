"""Safe data masks of one run: which (energy, lat, lon) bins are trusted.

Methods, each selectable and combinable (the result is their logical AND), as Gammapy's
``SafeMaskMaker`` defines them:

``"aeff-default"``
    reco-energy bins inside the file's safe range (``LO_THRES``/``HI_THRES`` of the aeff HDU).
``"aeff-max"``
    bins above the lowest true-energy edge of the aeff table where the effective area at
    the pointing exceeds ``aeff_percent`` % of its maximum.
``"edisp-bias"``
    bins above the energy where the energy bias at the pointing falls to ``bias_percent`` %.
``"offset-max"``
    pixels closer than ``offset_max`` deg to the pointing.
``"bkg-peak"``
    bins above the energy of the peak of the background spectrum.

A reco-energy bin is kept only if it lies entirely inside the energy range. When a background
map is made, bins with zero or non-finite background are always masked.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_lo_hi
from gammaxr.irf import edisp_kernel, evaluate_aeff

__all__ = ["SAFE_MASK_METHODS", "energy_range_mask", "safe_energy_min", "safe_mask"]

SAFE_MASK_METHODS = ("aeff-default", "aeff-max", "edisp-bias", "offset-max", "bkg-peak")


def energy_range_mask(
    energy_edges: np.ndarray, energy_min: float | None = None, energy_max: float | None = None
) -> np.ndarray:
    """Reco-energy bins entirely inside ``[energy_min, energy_max]`` (TeV); shape (m,)."""
    lo, hi = energy_edges[:-1], energy_edges[1:]
    emin = lo[0] if energy_min is None else energy_min
    emax = hi[-1] if energy_max is None else energy_max
    return (lo >= emin) & (hi <= emax)


def _table_edges(irf: xr.DataArray, dim: str) -> np.ndarray:
    lo, hi = axis_lo_hi(irf, dim)
    return np.append(lo, hi[-1])


def _aeff_max_energy(aeff: xr.DataArray, percent: float) -> float:
    edges = _table_edges(aeff, "energy_true")
    values = evaluate_aeff(aeff, edges, 0.0)
    return float(edges[values > percent / 100 * values.max()].min())


def _edisp_bias_energy(edisp: xr.DataArray, percent: float) -> float:
    edges = _table_edges(edisp, "energy_true")
    centres = np.sqrt(edges[:-1] * edges[1:])
    kernel = edisp_kernel(edisp, 0.0, edges, edges)
    norm = kernel.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_reco = (kernel @ centres) / norm
        bias = (mean_reco - centres) / centres
    start = int(np.nanargmax(bias))
    tail_e, tail_b = centres[start:], bias[start:]
    below = np.flatnonzero(tail_b <= percent / 100)
    if below.size == 0:
        energy_true = tail_e[0]
    elif below[0] == 0:
        energy_true = tail_e[0]
    else:
        k = below[0]
        # interpolate log(E) linearly in bias between the two bracketing nodes
        x0, x1 = tail_b[k - 1], tail_b[k]
        w = (x0 - percent / 100) / (x0 - x1)
        energy_true = float(np.exp((1 - w) * np.log(tail_e[k - 1]) + w * np.log(tail_e[k])))
    return float(energy_true * (1 + percent / 100))


def _bkg_peak_energy(bkg: xr.DataArray) -> float:
    spatial = [d for d in bkg.dims if d != "energy"]
    if "offset" in spatial:
        # integrate over the offset disk: weight by the ring area
        offset = bkg["offset"].values
        spectrum = (bkg * xr.DataArray(offset, dims="offset")).sum("offset")
    else:
        spectrum = bkg.sum(spatial)
    edges = _table_edges(bkg, "energy")
    return float(edges[int(np.argmax(spectrum.values))])


def safe_energy_min(
    method: str,
    *,
    aeff: xr.DataArray | None = None,
    edisp: xr.DataArray | None = None,
    bkg: xr.DataArray | None = None,
    aeff_percent: float = 10.0,
    bias_percent: float = 10.0,
) -> tuple[float | None, float | None]:
    """Energy range (TeV) that an energy safe-mask method allows; None = unbounded.

    Parameters
    ----------
    method : {"aeff-default", "aeff-max", "edisp-bias", "bkg-peak"}
        Method name.
    aeff, edisp, bkg : xarray.DataArray, optional
        The IRF tables the method needs.
    aeff_percent, bias_percent : float
        Thresholds of ``aeff-max`` and ``edisp-bias`` in %.

    Returns
    -------
    (float or None, float or None)
        Lower and upper energy limits in TeV.
    """
    if method == "aeff-default":
        lo, hi = aeff.attrs.get("lo_threshold"), aeff.attrs.get("hi_threshold")
        if lo is None or hi is None:
            warnings.warn(
                f"{aeff.attrs.get('source', 'aeff')}: no LO_THRES/HI_THRES, "
                "aeff-default leaves that side of the energy range open",
                RuntimeWarning,
                stacklevel=2,
            )
        return lo, hi
    if method == "aeff-max":
        return _aeff_max_energy(aeff, aeff_percent), None
    if method == "edisp-bias":
        return _edisp_bias_energy(edisp, bias_percent), None
    if method == "bkg-peak":
        return _bkg_peak_energy(bkg), None
    raise ValueError(f"unknown energy safe-mask method {method!r}; known: {SAFE_MASK_METHODS}")


def safe_mask(
    methods: tuple[str, ...],
    energy_edges: np.ndarray,
    offset: np.ndarray,
    *,
    offset_max: float = 2.5,
    background: np.ndarray | None = None,
    **irfs_and_thresholds,
) -> np.ndarray:
    """Combined safe mask of one run.

    Parameters
    ----------
    methods : tuple of str
        Any of :data:`SAFE_MASK_METHODS`.
    energy_edges : numpy.ndarray, shape (m + 1,)
        Reco-energy edges in TeV.
    offset : numpy.ndarray, shape (n_lat, n_lon)
        Pixel offsets from the pointing, deg.
    offset_max : float
        Maximum offset in deg for ``"offset-max"``.
    background : numpy.ndarray, shape (m, n_lat, n_lon), optional
        Background counts; where given, bins with zero or non-finite background are masked.
    **irfs_and_thresholds
        ``aeff``, ``edisp``, ``bkg`` tables and ``aeff_percent``, ``bias_percent`` for the
        energy methods (see :func:`safe_energy_min`).

    Returns
    -------
    numpy.ndarray of bool, shape (m, n_lat, n_lon)
    """
    unknown = set(methods) - set(SAFE_MASK_METHODS)
    if unknown:
        raise ValueError(f"unknown safe-mask methods {sorted(unknown)}; known: {SAFE_MASK_METHODS}")
    shape = (len(energy_edges) - 1, *offset.shape)
    mask = np.ones(shape, dtype=bool)
    if background is not None:
        mask &= np.isfinite(background) & (background > 0)
    if "offset-max" in methods:
        mask &= (offset < offset_max)[None]
    for method in methods:
        if method == "offset-max":
            continue
        emin, emax = safe_energy_min(method, **irfs_and_thresholds)
        mask &= energy_range_mask(energy_edges, emin, emax)[:, None, None]
    return mask
