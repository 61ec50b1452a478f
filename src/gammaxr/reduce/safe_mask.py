"""Safe data masks of one run: which (energy, lat, lon) bins are trusted.

Methods, each selectable and combinable (the result is their logical AND), as Gammapy 2.1's
``SafeMaskMaker`` defines them:

``"aeff-default"``
    reco-energy bins inside the file's safe range (``LO_THRES``/``HI_THRES`` of the aeff HDU).
``"aeff-max"``
    bins above the energy where the effective area reaches ``aeff_percent`` % of its maximum.
``"edisp-bias"``
    bins above the energy where the energy bias falls to ``bias_percent`` %.
``"offset-max"``
    pixels closer than ``offset_max`` deg to the pointing.
``"bkg-peak"``
    bins above the lower edge of the energy bin where the background spectrum peaks.

Where the energy methods look (``irfs``, as Gammapy's option of that name):

``"DL4"`` (the default, Gammapy 2.1's)
    the dataset's own reduced quantities at the safe-mask *position*: the effective area of the
    exposure at the map pixel nearest to the position (default the map centre) on the
    dataset's true-energy bins, inverted in log-log between bin centres; the energy-dispersion
    kernel of the dataset's energy axes at the IRF pixel nearest to the position; the
    background spectrum summed over the map. For a 1D spectrum the position is the on region:
    its (containment-corrected) exposure, its kernel, and its background (the WStat estimate
    ``alpha (n_on + n_off) / (1 + alpha)`` of an on/off spectrum, as Gammapy's
    ``npred_background``).
``"DL3"``
    the IRF tables of the file at one offset: ``fixed_offset``, else the offset of
    ``position``, else 0 (the pointing). ``aeff-max`` takes the lowest table edge where the
    area exceeds the threshold; ``bkg-peak`` integrates the background table over offset.

A reco-energy bin is kept only if it lies entirely inside the energy range. When a background
map is made, bins with zero or non-finite background are always masked.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_lo_hi
from gammaxr.geom.sky import _deg, _position, angular_separation, transform_lonlat
from gammaxr.irf import edisp_kernel, evaluate_aeff

__all__ = [
    "SAFE_MASK_IRFS",
    "SAFE_MASK_METHODS",
    "SafeEnergyInputs",
    "aeff_default_thresholds",
    "aeff_max_energy",
    "bkg_peak_energy",
    "check_safe_mask_options",
    "edisp_bias_energy",
    "energy_range_mask",
    "energy_thresholds",
    "safe_energy_range",
    "safe_mask",
    "safe_mask_offset",
    "safe_mask_position",
    "table_energy_inputs",
]

SAFE_MASK_METHODS = ("aeff-default", "aeff-max", "edisp-bias", "offset-max", "bkg-peak")
SAFE_MASK_IRFS = ("DL4", "DL3")

# Gammapy's log interpolation clips values at the smallest positive float64
_TINY = np.finfo(float).tiny


def check_safe_mask_options(
    methods: Sequence[str],
    irfs: str,
    position: object = None,
    fixed_offset: float | None = None,
) -> tuple[tuple[str, ...], str, tuple[float, float] | None, float | None]:
    """Validate and normalise the safe-mask options of a reduction spec.

    Parameters
    ----------
    methods : sequence of str
        Any of :data:`SAFE_MASK_METHODS`.
    irfs : {"DL4", "DL3"}
        Where the energy methods look (see the module docstring).
    position : SkyCoord or (ra, dec) in deg (icrs), optional
        Position of the energy thresholds.
    fixed_offset : float, optional
        Offset from the pointing in deg of the energy thresholds (excludes ``position``).

    Returns
    -------
    (tuple of str, str, (float, float) or None, float or None)
        Methods, irfs, position as icrs (ra, dec) in deg, fixed offset in deg.
    """
    methods = tuple(methods)
    unknown = set(methods) - set(SAFE_MASK_METHODS)
    if unknown:
        raise ValueError(f"unknown safe-mask methods {sorted(unknown)}; known: {SAFE_MASK_METHODS}")
    if irfs not in SAFE_MASK_IRFS:
        raise ValueError(f"safe-mask irfs must be one of {SAFE_MASK_IRFS}, got {irfs!r}")
    if position is not None and fixed_offset is not None:
        raise ValueError("safe-mask position and fixed_offset are mutually exclusive")
    if position is not None:
        lon, lat, frame = _position(position, "icrs")
        ra, dec = transform_lonlat(lon, lat, frame or "icrs", "icrs")
        position = (float(ra), float(dec))
    if fixed_offset is not None:
        fixed_offset = float(_deg(fixed_offset, "fixed_offset"))
        if not np.isfinite(fixed_offset) or fixed_offset < 0:
            raise ValueError(f"safe-mask fixed_offset must be >= 0 deg, got {fixed_offset}")
    return methods, irfs, position, fixed_offset


def safe_mask_offset(
    pointing: tuple[float, float],
    position: tuple[float, float] | None = None,
    fixed_offset: float | None = None,
) -> float:
    """Offset (deg) at which the ``"DL3"`` energy methods read the IRF tables.

    ``fixed_offset``, else the separation of ``position`` from the pointing, else 0.
    ``pointing`` and ``position`` are icrs (ra, dec) in deg.
    """
    if fixed_offset is not None:
        return float(fixed_offset)
    if position is not None:
        return float(angular_separation(*pointing, *position))
    return 0.0


def safe_mask_position(
    pointing: tuple[float, float],
    default: tuple[float, float],
    position: tuple[float, float] | None = None,
    fixed_offset: float | None = None,
) -> tuple[float, float]:
    """Icrs (ra, dec) in deg at which the ``"DL4"`` energy methods read a map dataset.

    The pointing moved north by ``fixed_offset``, else ``position``, else ``default`` (the
    map centre).
    """
    if fixed_offset is not None:
        ra, dec = pointing
        dec_new = dec + fixed_offset
        if dec_new > 90.0:  # over the pole: the other side of the meridian
            return (ra + 180.0) % 360.0, 180.0 - dec_new
        return ra, dec_new
    return position if position is not None else default


def energy_range_mask(
    energy_edges: np.ndarray, energy_min: float | None = None, energy_max: float | None = None
) -> np.ndarray:
    """Reco-energy bins entirely inside ``[energy_min, energy_max]`` (TeV); shape (m,)."""
    lo, hi = energy_edges[:-1], energy_edges[1:]
    emin = lo[0] if energy_min is None else energy_min
    emax = hi[-1] if energy_max is None else energy_max
    return (lo >= emin) & (hi <= emax)


def _first_crossing(energy: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """First energy where the log-log interpolant through the nodes equals ``level``.

    Values are clipped at the smallest positive float, as Gammapy's log interpolation does;
    None if the interpolant does not cross ``level`` between the first and last node.
    """
    log_e = np.log(energy)
    log_v = np.log(np.clip(values, _TINY, None))
    diff = log_v - np.log(level)
    if diff[0] == 0:
        return float(energy[0])
    sign_change = np.flatnonzero(np.sign(diff[:-1]) * np.sign(diff[1:]) <= 0)
    if sign_change.size == 0:
        return None
    k = int(sign_change[0])
    w = diff[k] / (diff[k] - diff[k + 1])
    return float(np.exp(log_e[k] + w * (log_e[k + 1] - log_e[k])))


def aeff_max_energy(
    energy_true: np.ndarray, aeff: np.ndarray, percent: float, *, interpolate: bool = True
) -> float | None:
    """Lower energy threshold (TeV) where the effective area reaches ``percent`` % of its max.

    Parameters
    ----------
    energy_true : numpy.ndarray, shape (n,)
        True energies in TeV of the samples (``"DL4"``: the dataset's bin centres;
        ``"DL3"``: the table's bin edges).
    aeff : numpy.ndarray, shape (n,)
        Effective area (any unit) at ``energy_true``.
    percent : float
        Threshold in % of the maximum.
    interpolate : bool
        True (``"DL4"``): the first crossing of the log-log interpolant between the first
        positive sample and the last one (the first positive sample if there is none).
        False (``"DL3"``): the lowest sample above the threshold.

    Returns
    -------
    float or None
        Threshold in TeV; None if the area is zero everywhere.
    """
    energy_true, aeff = np.asarray(energy_true, float), np.asarray(aeff, float)
    if not np.any(aeff > 0):
        return None
    level = percent / 100 * aeff.max()
    if not interpolate:
        return float(energy_true[aeff > level].min())
    start = int(np.flatnonzero(aeff > 0)[0])
    crossing = _first_crossing(energy_true[start:], aeff[start:], level)
    return float(energy_true[start]) if crossing is None else crossing


def edisp_bias_energy(
    kernel: np.ndarray, energy_true_edges: np.ndarray, energy_edges: np.ndarray, percent: float
) -> float:
    """Reco energy (TeV) above which the energy bias stays below ``percent`` %.

    Gammapy's ``EDispKernel.get_bias_energy``: the bias ``(<E_reco> - E_true) / E_true`` at
    the true-bin centres (``<E_reco>`` the kernel-weighted mean of the reco-bin centres, 0
    for an empty row), the first energy above the bias peak where its log-log interpolant
    falls to ``percent`` % (the peak energy if it never does), times ``1 + percent / 100``.

    Parameters
    ----------
    kernel : numpy.ndarray, shape (n_true, n_reco)
        Energy-dispersion kernel.
    energy_true_edges, energy_edges : numpy.ndarray
        True and reco bin edges in TeV.
    percent : float
        Bias threshold in %.
    """
    true_c = np.sqrt(energy_true_edges[:-1] * energy_true_edges[1:])
    reco_c = np.sqrt(energy_edges[:-1] * energy_edges[1:])
    norm = kernel.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_reco = np.nan_to_num((kernel @ reco_c) / norm)
    bias = (mean_reco - true_c) / true_c
    start = int(np.nanargmax(bias))
    crossing = _first_crossing(true_c[start:], bias[start:], percent / 100)
    energy_true = float(true_c[start]) if crossing is None else crossing
    return energy_true * (1 + percent / 100)


def bkg_peak_energy(energy_edges: np.ndarray, spectrum: np.ndarray) -> float:
    """Lower edge (TeV) of the reco-energy bin where the background spectrum peaks."""
    return float(energy_edges[int(np.argmax(spectrum))])


def _table_edges(irf: xr.DataArray, dim: str) -> np.ndarray:
    lo, hi = axis_lo_hi(irf, dim)
    return np.append(lo, hi[-1])


def _bkg_table_spectrum(bkg: xr.DataArray) -> np.ndarray:
    """Background rate integrated over offset from the pointing (Gammapy's DL3 branch).

    ``bkg_2d``: rate x 2 pi offset x bin width summed over the offset bins; ``bkg_3d``: the
    same over the row ``fov_lat = 0``, ``fov_lon >= 0`` (Gammapy's ``Background3D.to_2d``).
    """
    if "offset" in bkg.dims:
        rate = bkg.transpose("energy", "offset").values
        lo, hi = axis_lo_hi(bkg, "offset")
    else:
        lo_lon, hi_lon = axis_lo_hi(bkg, "fov_lon")
        lat_edges = _table_edges(bkg, "fov_lat")
        lon_edges = np.append(lo_lon, hi_lon[-1])
        i_lon = int(np.searchsorted(lon_edges, 0.0, side="right") - 1)
        i_lat = int(np.searchsorted(lat_edges, 0.0, side="right") - 1)
        rate = bkg.transpose("energy", "fov_lon", "fov_lat").values[:, i_lon:, i_lat]
        lo, hi = lon_edges[i_lon:-1], lon_edges[i_lon + 1 :]
    centre = 0.5 * (lo + hi)
    return (rate * (2 * np.pi * centre * (hi - lo))[None, :]).sum(axis=1)


@dataclass(frozen=True)
class SafeEnergyInputs:
    """What the energy safe-mask methods of one run look at (each only where asked for).

    Parameters
    ----------
    aeff_thresholds : (float or None, float or None), optional
        ``LO_THRES``/``HI_THRES`` of the aeff HDU in TeV (``"aeff-default"``).
    aeff : (numpy.ndarray, numpy.ndarray), optional
        True energies (TeV) and effective areas (``"aeff-max"``).
    aeff_interpolate : bool
        How ``"aeff-max"`` reads ``aeff`` (see :func:`aeff_max_energy`).
    edisp : (numpy.ndarray, numpy.ndarray, numpy.ndarray), optional
        Kernel ``(n_true, n_reco)`` and its true and reco edges in TeV (``"edisp-bias"``).
    background : (numpy.ndarray, numpy.ndarray), optional
        Energy edges (TeV) and background spectrum (``"bkg-peak"``).
    where : str
        What to name in messages (e.g. ``"obs_id 23523"``).
    """

    aeff_thresholds: tuple[float | None, float | None] | None = None
    aeff: tuple[np.ndarray, np.ndarray] | None = None
    aeff_interpolate: bool = True
    edisp: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    background: tuple[np.ndarray, np.ndarray] | None = None
    where: str = "run"


def table_energy_inputs(
    methods: Sequence[str],
    *,
    aeff: xr.DataArray | None = None,
    edisp: xr.DataArray | None = None,
    bkg: xr.DataArray | None = None,
    offset: float = 0.0,
    where: str = "run",
) -> SafeEnergyInputs:
    """The ``"DL3"`` inputs: the IRF tables of a run read at one offset (deg)."""
    kwargs = {"where": where, "aeff_interpolate": False}
    if "aeff-default" in methods:
        kwargs["aeff_thresholds"] = aeff_default_thresholds(aeff, where)
    if "aeff-max" in methods:
        edges = _table_edges(aeff, "energy_true")
        kwargs["aeff"] = (edges, evaluate_aeff(aeff, edges, offset))
    if "edisp-bias" in methods:
        edges = _table_edges(edisp, "energy_true")
        kwargs["edisp"] = (np.asarray(edisp_kernel(edisp, offset, edges, edges)), edges, edges)
    if "bkg-peak" in methods:
        kwargs["background"] = (_table_edges(bkg, "energy"), _bkg_table_spectrum(bkg))
    return SafeEnergyInputs(**kwargs)


def aeff_default_thresholds(
    aeff: xr.DataArray, where: str = "run"
) -> tuple[float | None, float | None]:
    """``LO_THRES``/``HI_THRES`` of an aeff table in TeV; warns about a missing one."""
    lo, hi = aeff.attrs.get("lo_threshold"), aeff.attrs.get("hi_threshold")
    if lo is None or hi is None:
        warnings.warn(
            f"{where}: {aeff.attrs.get('source', 'aeff')} has no LO_THRES/HI_THRES, "
            "aeff-default leaves that side of the energy range open",
            RuntimeWarning,
            stacklevel=3,
        )
    return lo, hi


def energy_thresholds(
    methods: Sequence[str],
    inputs: SafeEnergyInputs,
    *,
    aeff_percent: float = 10.0,
    bias_percent: float = 10.0,
) -> dict[str, tuple[float | None, float | None]]:
    """Energy range (TeV) each energy method allows; None = open side.

    Parameters
    ----------
    methods : sequence of str
        Safe-mask methods; those other than energy methods are ignored.
    inputs : SafeEnergyInputs
        What the methods look at (:func:`table_energy_inputs` or a dataset's own).
    aeff_percent, bias_percent : float
        Thresholds of ``aeff-max`` and ``edisp-bias`` in %.

    Returns
    -------
    dict of str to (float or None, float or None)
        Method -> (lower, upper) limit in TeV. ``aeff-max`` gives ``(inf, None)`` where the
        effective area is zero everywhere at the position (no bin is safe).
    """
    out = {}
    if "aeff-default" in methods:
        out["aeff-default"] = inputs.aeff_thresholds
    if "aeff-max" in methods:
        energy, values = inputs.aeff
        lo = aeff_max_energy(energy, values, aeff_percent, interpolate=inputs.aeff_interpolate)
        out["aeff-max"] = (np.inf if lo is None else lo, None)
    if "edisp-bias" in methods:
        out["edisp-bias"] = (edisp_bias_energy(*inputs.edisp, bias_percent), None)
    if "bkg-peak" in methods:
        out["bkg-peak"] = (bkg_peak_energy(*inputs.background), None)
    return out


def safe_energy_range(
    methods: Sequence[str],
    inputs: SafeEnergyInputs,
    *,
    aeff_percent: float = 10.0,
    bias_percent: float = 10.0,
) -> tuple[float | None, float | None] | None:
    """Energy range (TeV) allowed by the energy methods together; None = no safe energy.

    Parameters
    ----------
    methods, inputs, aeff_percent, bias_percent
        As for :func:`energy_thresholds`.

    Returns
    -------
    (float or None, float or None) or None
        Lower and upper limits in TeV (None = open); None if the effective area is zero
        everywhere at the position (no bin is safe; a warning names the run, as Gammapy).
    """
    limits = energy_thresholds(
        methods, inputs, aeff_percent=aeff_percent, bias_percent=bias_percent
    )
    if limits.get("aeff-max", (None,))[0] == np.inf:
        warnings.warn(
            f"{inputs.where}: the effective area is zero at the safe-mask position; "
            "no energy bin is safe (mask_safe all false)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    lows = [lo for lo, _ in limits.values() if lo is not None]
    highs = [hi for _, hi in limits.values() if hi is not None]
    return (max(lows) if lows else None, min(highs) if highs else None)


def safe_mask(
    methods: tuple[str, ...],
    energy_edges: np.ndarray,
    offset: np.ndarray,
    *,
    offset_max: float = 2.5,
    background: np.ndarray | None = None,
    energy_range: tuple[float | None, float | None] | None = (None, None),
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
    energy_range : (float or None, float or None) or None
        Safe energy range in TeV from :func:`safe_energy_range`; None masks every bin.

    Returns
    -------
    numpy.ndarray of bool, shape (m, n_lat, n_lon)
    """
    unknown = set(methods) - set(SAFE_MASK_METHODS)
    if unknown:
        raise ValueError(f"unknown safe-mask methods {sorted(unknown)}; known: {SAFE_MASK_METHODS}")
    shape = (len(energy_edges) - 1, *offset.shape)
    if energy_range is None:
        return np.zeros(shape, dtype=bool)
    mask = np.ones(shape, dtype=bool)
    if background is not None:
        mask &= np.isfinite(background) & (background > 0)
    if "offset-max" in methods:
        mask &= (offset < offset_max)[None]
    mask &= energy_range_mask(energy_edges, *energy_range)[:, None, None]
    return mask
