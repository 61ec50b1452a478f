"""Low-level samplers: source photons through the IRFs, background from the background IRF.

Source events (per :class:`~gammaxr.models.SkyModel`) are drawn from the rate
``phi(E) S(position) A_eff(E, offset) T_live`` by thinning a Poisson process with an
energy-dependent envelope (exact, not binned):

1. the true-energy range is cut into fine log cells (about 100 per decade, plus every node of
   the effective-area table); in each cell the envelope ``A_env`` is the largest effective area
   over the cell and every offset. The table is interpolated (bi)linearly in
   ``(log E, offset)``, so that maximum is reached at a corner: the cell edges times the offset
   nodes and the limits of the table's valid range;
2. the number of proposals is Poisson with mean ``T_live sum_cells A_env F_cell`` (``F_cell``
   the exact integral flux of the cell); a proposal's cell is drawn in proportion to
   ``A_env F_cell``, its energy from the spectrum inside the cell (a local power law through
   the cell's end values: exact for power laws), its position from the spatial model;
3. a proposal is kept with probability ``A_eff(E, offset) / A_env``.

The kept photons are a Poisson sample of the wanted rate, whatever the shape of the source or
of the effective area. Their reconstructed energy is drawn from the migration density of the
edisp table (piecewise constant on its migra bins, as :func:`gammaxr.irf.edisp_kernel` integrates
it), their reconstructed direction from the PSF (psf_table: radial profile on its rad bins as
:func:`gammaxr.irf.psf_profile` gives it; psf_3gauss: the three Gaussians exactly), each at the
photon's own true energy and offset. Photons whose migration density or PSF vanish (outside
the tables) are not reconstructed.

Background events are drawn the same way from the background rate (per unit on-time) in reco
energy, over the table's field of view (a disc of the offset range for ``bkg_2d``, the
``fov_lon`` x ``fov_lat`` rectangle for ``bkg_3d``): the rate is interpolated in log, so its
maximum over a cell is at a corner too. Beyond the outermost nodes the rate may not rise
above its value at the nearest node (log extrapolation next to an empty node can explode,
as at the FoV corners of H.E.S.S. DR1 tables); tables falling towards their edges are
unaffected. Arrival times are uniform in the GTIs.

:mod:`gammaxr.simulate.events` puts them together into the event list of a run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_edges
from gammaxr.geom.fov import fov_to_sky
from gammaxr.irf import (
    evaluate_aeff,
    evaluate_bkg_2d,
    evaluate_bkg_3d,
    evaluate_edisp,
    grid_axis,
    interpolate_irf,
    psf_profile,
)
from gammaxr.models import SkyModel
from gammaxr.models.sphere import offset_by, separation, transform_lonlat
from gammaxr.simulate.instrument import IRFSet

__all__ = [
    "reconstruct_photons",
    "sample_background",
    "sample_gti_times",
    "sample_migra",
    "sample_psf_offsets",
    "sample_source",
]

_CELLS_PER_DECADE = 100
_BATCH = 1_000_000  # proposals drawn at once
_CHUNK_VALUES = 2_000_000  # events x bins evaluated at once (edisp / PSF sampling)
_SR_PER_DEG2 = np.deg2rad(1.0) ** 2
_MEV_PER_TEV = 1.0e6
_CM2_PER_M2 = 1.0e4


# --------------------------------------------------------------------------- helpers


def _axis_range(irf, dim: str) -> tuple[float, float, np.ndarray]:
    """Valid range and interpolation nodes of an IRF axis, in the axis unit."""
    ax = grid_axis(irf, dim)
    scale = np.exp if ax.log else np.asarray
    return float(scale(ax.lo)), float(scale(ax.hi)), np.asarray(scale(ax.nodes), dtype=float)


def _corners(lo: float, hi: float, nodes: np.ndarray) -> np.ndarray:
    """Points where a (log-)multilinear interpolant reaches its extremes along one axis."""
    inside = nodes[(nodes > lo) & (nodes < hi)]
    return np.unique(np.concatenate([[lo, hi], inside]))


def _energy_cells(lo: float, hi: float, nodes: np.ndarray) -> np.ndarray:
    """Fine log cell edges over [lo, hi] that include every table node inside."""
    n = max(2, int(np.ceil(np.log10(hi / lo) * _CELLS_PER_DECADE)))
    return _corners(lo, hi, np.concatenate([np.geomspace(lo, hi, n + 1), nodes]))


def _energy_range(
    lo: float, hi: float, wanted: tuple[float, float] | None, what: str
) -> tuple[float, float]:
    if wanted is not None:
        lo, hi = max(lo, wanted[0]), min(hi, wanted[1])
    if not 0 < lo < hi:
        raise ValueError(f"{what}: empty energy range [{lo}, {hi}] TeV")
    return lo, hi


def _cell_power_law(rng, edges, cell, f_lo, f_hi) -> np.ndarray:
    """Energies inside cells drawn from the power law through the end values ``f``."""
    lo, hi = edges[cell], edges[cell + 1]
    log_ratio = np.log(hi / lo)
    ok = (f_lo > 0) & (f_hi > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(ok, np.log(np.where(ok, f_hi / np.where(ok, f_lo, 1.0), 1.0)), 0.0)
    # density ~ E ** (slope / log_ratio); CDF in log E: (exp(z x) - 1) / (exp(z) - 1)
    z = slope + log_ratio  # exponent + 1, times log_ratio
    uniform = rng.random(cell.size)
    small = np.abs(z) < 1e-9
    z_safe = np.where(small, 1.0, z)
    frac = np.where(small, uniform, np.log1p(uniform * np.expm1(z_safe)) / z_safe)
    return lo * np.exp(frac * log_ratio)


def _poisson_batches(rng, mean: float):
    """Sizes of the proposal batches of a Poisson number with the given mean."""
    n = int(rng.poisson(mean)) if mean > 0 else 0
    while n > 0:
        size = min(n, _BATCH)
        yield size
        n -= size


def _empty(*names: str) -> dict[str, np.ndarray]:
    return {k: np.zeros(0) for k in names}


def concat_columns(
    parts: list[dict[str, np.ndarray]], names: Sequence[str]
) -> dict[str, np.ndarray]:
    if not parts:
        return _empty(*names)
    return {k: np.concatenate([p[k] for p in parts]) for k in names}


# --------------------------------------------------------------------------- sources


def sample_source(
    model: SkyModel,
    irfs: IRFSet,
    pointing: tuple[float, float],
    livetime: float,
    rng: np.random.Generator,
    energy_true: tuple[float, float] | None = None,
) -> dict[str, np.ndarray]:
    """Photons of one source detected in one run, before energy dispersion and PSF.

    Parameters
    ----------
    model : gammaxr.models.SkyModel
        The source (spectral and spatial model, any frame).
    irfs : IRFSet
        The run's IRFs (only ``aeff`` is used here).
    pointing : (float, float)
        Pointing RA, Dec in deg (icrs).
    livetime : float
        Live time in s.
    rng : numpy.random.Generator
        Random generator.
    energy_true : (float, float), optional
        True-energy range in TeV; default (and limited to) the aeff table's valid range.

    Returns
    -------
    dict of str to numpy.ndarray
        ``energy_true`` (TeV), ``ra_true``, ``dec_true`` (deg, icrs) and ``offset`` (deg
        from the pointing) of the detected photons; their number is Poisson with mean
        ``livetime * int phi(E) S A_eff(E, offset) dE dOmega``.
    """
    names = ("energy_true", "ra_true", "dec_true", "offset")
    if model.spatial is None:
        raise ValueError(f"model {model.name!r} has no spatial model")
    lo, hi, e_nodes = _axis_range(irfs.aeff, "energy_true")
    lo, hi = _energy_range(lo, hi, energy_true, f"source {model.name!r}")
    o_lo, o_hi, o_nodes = _axis_range(irfs.aeff, "offset")
    edges = _energy_cells(lo, hi, e_nodes)
    offsets = _corners(max(o_lo, 0.0), o_hi, o_nodes)
    area = evaluate_aeff(irfs.aeff, edges[:, None], offsets[None, :]).max(axis=1)
    envelope = np.maximum(area[:-1], area[1:]) * (1.0 + 1e-9)  # m2
    flux = np.asarray(model.spectral.integral(edges[:-1], edges[1:]), dtype=float)  # cm-2 s-1
    flux = flux * model.spatial.integral_over_sphere()  # a smooth-edged disk holds a bit more
    if np.any(~np.isfinite(flux)) or np.any(flux < 0):
        raise ValueError(f"model {model.name!r}: spectrum integral not finite and >= 0")
    weights = envelope * _CM2_PER_M2 * flux * livetime
    total = float(weights.sum())
    dnde = np.asarray(model.spectral(edges), dtype=float)
    parts = []
    for size in _poisson_batches(rng, total):
        cell = rng.choice(weights.size, size=size, p=weights / total)
        energy = _cell_power_law(rng, edges, cell, dnde[cell], dnde[cell + 1])
        lon, lat = model.spatial.sample(size, rng)
        ra, dec = transform_lonlat(np.asarray(lon), np.asarray(lat), model.spatial.frame, "icrs")
        offset = separation(ra, dec, pointing[0], pointing[1])
        keep = rng.random(size) * envelope[cell] < evaluate_aeff(irfs.aeff, energy, offset)
        parts.append(
            {"energy_true": energy[keep], "ra_true": ra[keep], "dec_true": dec[keep],
             "offset": offset[keep]}
        )  # fmt: skip
    return concat_columns(parts, names)


def _chunks(n: int, bins: int):
    step = max(1, _CHUNK_VALUES // max(bins, 1))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _sample_binned(rng, content: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin index drawn per row of non-negative contents, and whether the row had any."""
    cdf = np.cumsum(content, axis=-1)
    total = cdf[:, -1]
    u = rng.random(total.size) * total
    index = np.minimum((cdf <= u[:, None]).sum(axis=-1), content.shape[-1] - 1)
    return index, total > 0


def _draw_in_bins(n: int, n_bins: int, content, place, rng) -> tuple[np.ndarray, np.ndarray]:
    """Draw one value per photon from binned densities, in chunks of photons.

    ``content(s)`` gives the non-negative bin contents (rows) of the photons of slice ``s``;
    a bin is drawn per row by :func:`_sample_binned`, then ``place(index, u)`` maps the bin
    and a uniform number in [0, 1) to the value. NaN (and ``ok`` False) where a row is empty.
    """
    values = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    for s in _chunks(n, n_bins):
        index, ok[s] = _sample_binned(rng, content(s))
        values[s] = place(index, rng.random(index.size))
    values[~ok] = np.nan
    return values, ok


def sample_migra(
    edisp: xr.DataArray,
    energy_true: np.ndarray,
    offset: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw migrations ``E_reco / E_true`` from an edisp_2d table.

    The density (:func:`gammaxr.irf.evaluate_edisp`) is taken at the centre of each migra
    bin of the table and is constant inside it; a bin is drawn in proportion to its content
    and the migra uniformly inside it.

    Parameters
    ----------
    edisp : xarray.DataArray
        Table ``(energy_true, migra, offset)`` with contiguous migra bins.
    energy_true, offset : numpy.ndarray, shape (n,)
        True energies (TeV) and offsets (deg) of the photons.
    rng : numpy.random.Generator
        Random generator.

    Returns
    -------
    migra : numpy.ndarray, shape (n,)
        Migrations (positive; NaN where not reconstructed).
    ok : numpy.ndarray of bool, shape (n,)
        False where the migration density vanishes (photon not reconstructed).
    """
    edges = axis_edges(edisp, "migra")
    centres, width = 0.5 * (edges[:-1] + edges[1:]), np.diff(edges)
    return _draw_in_bins(
        energy_true.size,
        centres.size,
        lambda s: evaluate_edisp(edisp, energy_true[s, None], centres, offset[s, None]) * width,
        # uniform in (lo, hi]: never exactly zero
        lambda index, u: edges[index] + (1.0 - u) * width[index],
        rng,
    )


def _psf_3gauss_radius(params: xr.Dataset, energy_true, offset, rng) -> np.ndarray:
    """Radii (deg) from the 3-Gauss PSF at each photon's energy and offset."""
    coords = {"energy_true": energy_true, "offset": offset}
    values = {}
    for name in ("sigma_1", "ampl_2", "sigma_2", "ampl_3", "sigma_3"):
        v = interpolate_irf(params[name], coords, fill_value=None)
        if name.startswith("sigma"):
            v = np.where(v > 0, v, 1.0)  # GADF files write 0 for unused components (1 deg)
        values[name] = v
    s = np.stack([values["sigma_1"], values["sigma_2"], values["sigma_3"]], axis=-1)
    a = np.stack([np.ones_like(s[:, 0]), values["ampl_2"], values["ampl_3"]], axis=-1)
    weight = np.clip(a, 0.0, None) * s**2
    component, _ = _sample_binned(rng, weight)
    sigma = s[np.arange(s.shape[0]), component]
    return sigma * np.sqrt(-2.0 * np.log1p(-rng.random(sigma.size)))


def sample_psf_offsets(
    psf: xr.DataArray | xr.Dataset,
    energy_true: np.ndarray,
    offset: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw angular distances between true and reconstructed directions from a PSF.

    Parameters
    ----------
    psf : xarray.DataArray or xarray.Dataset
        ``psf_table`` (energy_true, offset, rad): the normalised radial profile on the
        table's rad bins (:func:`gammaxr.irf.psf_profile`) is taken as constant inside each
        bin, a bin is drawn by its probability and the radius uniformly in solid angle
        inside it. ``psf_3gauss`` parameters: a Gaussian component is drawn by its weight and
        the radius from its Rayleigh distribution.
    energy_true, offset, rng
        As in :func:`sample_migra`.

    Returns
    -------
    rad : numpy.ndarray, shape (n,)
        Distances in deg (NaN where not reconstructed).
    ok : numpy.ndarray of bool, shape (n,)
        False where the PSF vanishes.
    """
    if isinstance(psf, xr.Dataset):
        rad = _psf_3gauss_radius(psf, energy_true, offset, rng)
        return rad, np.isfinite(rad)
    edges = axis_edges(psf, "rad")
    area = np.pi * np.diff(edges**2)
    return _draw_in_bins(
        energy_true.size,
        area.size,
        lambda s: psf_profile(psf, energy_true[s], offset[s], edges) * area,
        # uniform in solid angle inside the bin
        lambda index, u: np.sqrt(
            edges[index] ** 2 + u * (edges[index + 1] ** 2 - edges[index] ** 2)
        ),
        rng,
    )


def reconstruct_photons(
    source: dict[str, np.ndarray], irfs: IRFSet, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Apply energy dispersion and PSF to detected photons; drop those not reconstructed.

    Parameters
    ----------
    source : dict of str to numpy.ndarray
        :func:`sample_source` output (``energy_true``, ``ra_true``, ``dec_true``, ``offset``).
    irfs : IRFSet
        The run's IRFs (edisp and PSF are used).
    rng : numpy.random.Generator
        Random generator.

    Returns
    -------
    dict of str to numpy.ndarray
        The truth columns (without ``offset``) plus ``energy`` (TeV), ``ra``, ``dec`` (deg).
    """
    e_true, offset = source["energy_true"], source["offset"]
    migra, ok_e = sample_migra(irfs.edisp, e_true, offset, rng)
    rad, ok_p = sample_psf_offsets(irfs.psf, e_true, offset, rng)
    pa = 360.0 * rng.random(e_true.size)
    ra, dec = offset_by(source["ra_true"], source["dec_true"], pa, np.nan_to_num(rad))
    keep = ok_e & ok_p
    out = {k: v[keep] for k, v in source.items() if k != "offset"}
    out.update(energy=(e_true * migra)[keep], ra=ra[keep], dec=dec[keep])
    return out


# --------------------------------------------------------------------------- background


def _bkg_rate(bkg: xr.DataArray, energy, *spatial) -> np.ndarray:
    """Background rate (s-1 MeV-1 sr-1) that does not rise beyond the outermost nodes.

    Log interpolation extrapolates beyond the outermost nodes up to the table edges; next to
    an empty (zero) node that can explode (H.E.S.S. DR1 tables reach 1e26 at FoV corners).
    The rate is the smaller of the extrapolated value and the value at the coordinates
    clamped to the node range, so tables falling towards their edges (the usual case, and the
    toy's) are sampled exactly as :func:`gammaxr.irf.integrate_bkg_energy` integrates them.
    """
    dims = ("energy", "offset") if "offset" in bkg.dims else ("energy", "fov_lon", "fov_lat")
    coords = (energy, *spatial)
    clamped = []
    for dim, x in zip(dims, coords, strict=True):
        _, _, nodes = _axis_range(bkg, dim)
        clamped.append(np.clip(x, nodes.min(), nodes.max()))
    func = evaluate_bkg_2d if "offset" in bkg.dims else evaluate_bkg_3d
    return np.minimum(func(bkg, *coords), func(bkg, *clamped))


def _bkg_envelope(bkg: xr.DataArray, edges: np.ndarray, *points: np.ndarray) -> np.ndarray:
    """Largest rate over each energy cell and the whole FoV (see the module docstring)."""
    dims = ("energy", "offset") if "offset" in bkg.dims else ("energy", "fov_lon", "fov_lat")
    func = evaluate_bkg_2d if "offset" in bkg.dims else evaluate_bkg_3d
    # open (broadcast) grids: the interpolation contracts them axis by axis, fast
    grids, clamped = [], []
    for k, (dim, x) in enumerate(zip(dims, (edges, *points), strict=True)):
        _, _, nodes = _axis_range(bkg, dim)
        shape = [1] * len(dims)
        shape[k] = x.size
        grids.append(x.reshape(shape))
        clamped.append(np.clip(x, nodes.min(), nodes.max()).reshape(shape))
    axes = tuple(range(1, len(dims)))
    # max of min(f, g) over a cell <= min(max f, max g), each reached at a corner
    extrapolated, capped = func(bkg, *grids).max(axis=axes), func(bkg, *clamped).max(axis=axes)
    f_max = np.maximum(extrapolated[:-1], extrapolated[1:])
    g_max = np.maximum(capped[:-1], capped[1:])
    return np.minimum(f_max, g_max) * (1.0 + 1e-9)


def sample_background(
    irfs: IRFSet,
    pointing: tuple[float, float],
    ontime: float,
    rng: np.random.Generator,
    energy: tuple[float, float] | None = None,
    norm: float = 1.0,
) -> dict[str, np.ndarray]:
    """Background events of one run from the background IRF.

    Parameters
    ----------
    irfs : IRFSet
        The run's IRFs; ``irfs.bkg`` is a bkg_2d or bkg_3d rate in s-1 MeV-1 sr-1 per unit
        on-time (``fov_alignment`` RADEC or REVERSE_LON_RADEC for bkg_3d).
    pointing, rng
        As in :func:`sample_source`.
    ontime : float
        On time in s.
    energy : (float, float), optional
        Reco-energy range in TeV; default (and limited to) the table's valid range.
    norm : float
        Factor on the rate.

    Returns
    -------
    dict of str to numpy.ndarray
        ``energy`` (TeV), ``ra``, ``dec`` (deg, icrs); the number is Poisson with mean
        ``norm * ontime * int rate dE dOmega`` over the table's field of view.
    """
    names = ("energy", "ra", "dec")
    bkg = irfs.bkg
    if bkg is None:
        raise ValueError(f"IRF set {irfs.name!r} has no background IRF")
    if norm == 0:
        return _empty(*names)
    lo, hi, e_nodes = _axis_range(bkg, "energy")
    lo, hi = _energy_range(lo, hi, energy, f"background of {irfs.name!r}")
    edges = _energy_cells(lo, hi, e_nodes)
    if "offset" in bkg.dims:
        o_lo, o_hi, o_nodes = _axis_range(bkg, "offset")
        o_lo, o_hi = max(o_lo, 0.0), min(o_hi, 180.0)
        envelope = _bkg_envelope(bkg, edges, _corners(o_lo, o_hi, o_nodes))
        c_lo, c_hi = np.cos(np.radians(o_hi)), np.cos(np.radians(o_lo))
        solid_angle = 2.0 * np.pi * (c_hi - c_lo)
    else:
        alignment = str(bkg.attrs.get("fov_alignment", "RADEC")).upper()
        if alignment not in ("RADEC", "REVERSE_LON_RADEC"):
            raise NotImplementedError(
                f"{bkg.attrs.get('source', irfs.name)}: bkg_3d FoV alignment {alignment!r} is "
                "not supported (RADEC and REVERSE_LON_RADEC are)"
            )
        x_lo, x_hi, x_nodes = _axis_range(bkg, "fov_lon")
        y_lo, y_hi, y_nodes = _axis_range(bkg, "fov_lat")
        y_lo, y_hi = max(y_lo, -89.0), min(y_hi, 89.0)
        xs, ys = _corners(x_lo, x_hi, x_nodes), _corners(y_lo, y_hi, y_nodes)
        envelope = _bkg_envelope(bkg, edges, xs, ys)
        s_lo, s_hi = np.sin(np.radians(y_lo)), np.sin(np.radians(y_hi))
        solid_angle = np.radians(x_hi - x_lo) * (s_hi - s_lo)
    weights = envelope * np.diff(edges) * _MEV_PER_TEV * solid_angle * ontime * norm
    total = float(weights.sum())
    parts = []
    for size in _poisson_batches(rng, total):
        cell = rng.choice(weights.size, size=size, p=weights / total)
        e = edges[cell] + rng.random(size) * (edges[cell + 1] - edges[cell])
        if "offset" in bkg.dims:
            theta = np.degrees(np.arccos(c_lo + rng.random(size) * (c_hi - c_lo)))
            value = _bkg_rate(bkg, e, theta)
            ra, dec = offset_by(pointing[0], pointing[1], 360.0 * rng.random(size), theta)
        else:
            x = x_lo + rng.random(size) * (x_hi - x_lo)
            y = np.degrees(np.arcsin(s_lo + rng.random(size) * (s_hi - s_lo)))
            value = _bkg_rate(bkg, e, x, y)
            fov_lon = -x if alignment == "REVERSE_LON_RADEC" else x
            ra, dec = fov_to_sky(fov_lon, y, pointing[0], pointing[1])
        keep = rng.random(size) * envelope[cell] < value
        parts.append({"energy": e[keep], "ra": ra[keep], "dec": dec[keep]})
    return concat_columns(parts, names)


def sample_gti_times(
    gti: Sequence[tuple[float, float]], n: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` arrival times uniform over good time intervals (s MET), sorted."""
    gti = np.asarray(gti, dtype=float).reshape(-1, 2)
    duration = gti[:, 1] - gti[:, 0]
    if np.any(duration <= 0):
        raise ValueError(f"GTIs must have stop > start, got {gti.tolist()}")
    which = rng.choice(duration.size, size=n, p=duration / duration.sum())
    return np.sort(gti[which, 0] + rng.random(n) * duration[which])
