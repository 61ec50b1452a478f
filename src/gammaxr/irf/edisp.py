"""Energy dispersion: migration density and kernels (true energy x reconstructed energy)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_coords, axis_lo_hi
from gammaxr.irf._typing import Coordinate, Evaluated
from gammaxr.irf.interpolate import (
    AXIS_UNITS,
    _locate,
    apply_irf,
    convert_units,
    grid_axis,
    interpolate_table,
    outside_valid_range,
)

__all__ = ["diagonal_response", "evaluate_edisp", "edisp_kernel"]

_DIMS = ("energy_true", "migra", "offset")


def _density_core(axes, table, energy_true, migra, offset):
    """Migration density with Gammapy's EnergyDispersion2D range policy."""
    values = interpolate_table(table, axes, [energy_true, migra, offset], fill_value=None)
    out_e, out_m, out_o = (
        outside_valid_range(ax, x) for ax, x in zip(axes, (energy_true, migra, offset), strict=True)
    )
    bad = (out_e & out_m) | out_o | ~np.isfinite(values)
    return np.where(bad, 0.0, values)


def _raw_at_offset_nodes(axes, table, true_centres, m_centres, offset) -> np.ndarray | None:
    """The density at the offset nodes, unclipped, shape (n_nodes, n_true, n_migra), or None
    when combining kernels from the nodes is not worth it (few offsets, a single node)."""
    nodes = axes[2].nodes
    if nodes.size < 2 or offset.size <= 4 * nodes.size:
        return None
    raw = interpolate_table(
        table,
        axes,
        [true_centres[:, None, None], m_centres[:, None], nodes],
        fill_value=None,
        clip=False,
    )
    return np.moveaxis(raw, -1, 0)


def _may_be_negative(axis, raw_nodes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Elements (true energy, migra) where the density combined from the offset nodes with
    any of ``weights`` (extrapolating beyond the outer nodes) can be negative: negative at
    a node, or at the most extrapolated weight on either side (linear in the weight, the
    combination is otherwise not negative)."""
    negative = np.any(raw_nodes < 0, axis=0)
    n = axis.nodes.size
    for weight, lower in ((weights.min(initial=0.0), 0), (weights.max(initial=1.0), n - 2)):
        if weight < 0 or weight > 1:
            negative |= (1 - weight) * raw_nodes[lower] + weight * raw_nodes[lower + 1] < 0
    return negative


def _check(edisp: xr.DataArray) -> list:
    if set(edisp.dims) != set(_DIMS):
        raise ValueError(
            f"{edisp.attrs.get('source', '')}: edisp table has dims {edisp.dims}, expected {_DIMS}"
        )
    return [grid_axis(edisp, d) for d in _DIMS]


def evaluate_edisp(
    edisp: xr.DataArray, energy_true: Coordinate, migra: Coordinate, offset: Coordinate
) -> Evaluated:
    """Energy migration probability density at given true energy, migra and offset.

    Linear interpolation in ``(log energy_true, migra, offset)``. Out-of-range policy of
    Gammapy's ``EnergyDispersion2D``: values are linearly extrapolated beyond the outer
    nodes and set to zero only where the offset is outside its valid range or where
    *both* energy_true and migra are outside theirs; never negative.

    Parameters
    ----------
    edisp : xarray.DataArray
        ``edisp_2d`` table, dims ``(energy_true, migra, offset)``, density per unit migra.
    energy_true : array_like or xarray.DataArray
        True energy in TeV.
    migra : array_like or xarray.DataArray
        Ratio of reconstructed to true energy.
    offset : array_like or xarray.DataArray
        Offset from the pointing in deg. All three are broadcast together.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Probability density per unit migra (dimensionless).
    """
    axes = _check(edisp)
    args = [
        convert_units(a, AXIS_UNITS[d], d)
        for a, d in zip((energy_true, migra, offset), _DIMS, strict=True)
    ]

    def core(table, e, m, o):
        return _density_core(axes, table, e, m, o)

    return apply_irf(core, [edisp], [_DIMS], args, name="edisp", attrs={"units": ""})


def edisp_kernel(
    edisp: xr.DataArray,
    offset: Coordinate,
    energy_true_edges: np.typing.ArrayLike,
    energy_edges: np.typing.ArrayLike,
    *,
    migra_edges: np.typing.ArrayLike | None = None,
    threshold: float = 1e-8,
) -> Evaluated:
    """Energy-dispersion kernel: probability that a photon of each true-energy bin is
    reconstructed in each reconstructed-energy bin, at given offsets.

    Follows Gammapy's ``EnergyDispersion2D.to_edisp_kernel``: the migration density
    (:func:`evaluate_edisp`) is taken at the log centre of each true-energy bin and the
    centres of the migra bins (the table's own migra bins, or ``migra_edges``), normalised
    so that it integrates to one over the migra bins (all-zero rows stay zero), and its
    cumulative integral, linear between migra bin edges, zero below the first edge and one
    above the last, is differenced between ``E_reco_edge / E_true_centre``. Elements
    below ``threshold`` are set to zero.

    Parameters
    ----------
    edisp : xarray.DataArray
        ``edisp_2d`` table, dims ``(energy_true, migra, offset)``.
    offset : array_like or xarray.DataArray
        Offsets from the pointing in deg, any shape (or dims).
    energy_true_edges : array_like, shape (nt + 1,)
        True-energy bin edges in TeV, increasing.
    energy_edges : array_like, shape (nr + 1,)
        Reconstructed-energy bin edges in TeV, increasing.
    migra_edges : array_like, optional
        Migra binning on which the density is sampled; default the table's migra bins.
        (Gammapy's ``EDispMap`` uses ``linspace(0.2, 5, 49)``.)
    threshold : float
        Kernel elements below this are set to zero.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Kernel, numpy shape ``offset.shape + (nt, nr)``; as a DataArray the offset dims
        followed by ``energy_true`` and ``energy`` (centre coordinates and ``_lo``/``_hi``
        edges). Rows sum to the fraction of the migration density inside the
        reconstructed range.
    """
    axes = _check(edisp)
    e_true = np.asarray(energy_true_edges, dtype=float)
    e_reco = np.asarray(energy_edges, dtype=float)
    for name, edges in (("energy_true_edges", e_true), ("energy_edges", e_reco)):
        if edges.ndim != 1 or edges.size < 2 or np.any(edges <= 0) or np.any(np.diff(edges) <= 0):
            raise ValueError(f"edisp_kernel: {name} must be increasing, positive, 1D")
    if migra_edges is None:
        lo, hi = axis_lo_hi(edisp, "migra")
        if not np.allclose(lo[1:], hi[:-1], rtol=1e-6, atol=1e-9):
            raise ValueError(
                "edisp_kernel: the table's migra bins are not contiguous; give migra_edges"
            )
        m_edges = np.append(lo, hi[-1])
    else:
        m_edges = np.asarray(migra_edges, dtype=float)
    if m_edges.ndim != 1 or m_edges.size < 2 or np.any(np.diff(m_edges) <= 0):
        raise ValueError("edisp_kernel: migra edges must be increasing, 1D")
    true_centres = np.sqrt(e_true[:-1] * e_true[1:])
    m_centres = 0.5 * (m_edges[:-1] + m_edges[1:])
    m_width = np.diff(m_edges)
    nt, nr = true_centres.size, e_reco.size - 1

    # where each (true centre, reco edge) falls on the migra edges: shared by all offsets
    m_eval = e_reco[None, :] / true_centres[:, None]
    k = np.clip(np.searchsorted(m_edges, m_eval, side="right") - 1, 0, m_edges.size - 2)
    w = np.clip((m_eval - m_edges[k]) / m_width[k], 0.0, 1.0)
    rows = np.arange(nt)[:, None]

    # Gammapy's range policy for a density interpolated at offsets within the valid range
    outside_true_and_migra = outside_valid_range(axes[0], true_centres)[:, None] & (
        outside_valid_range(axes[1], m_centres)
    )

    def unnormalised(density):
        """Cumulative content at the reco edges and total content, before normalising."""
        content = density * m_width
        cum = np.concatenate([np.zeros((*content.shape[:-1], 1)), np.cumsum(content, -1)], -1)
        at_edges = cum[..., rows, k] * (1.0 - w) + cum[..., rows, k + 1] * w
        return at_edges, cum[..., -1:]

    def finish(at_edges, total):
        # a row whose total is not positive is zero: its content divided by infinity is
        # (after the clip at zero), without a masked division (5x quicker in all)
        total = np.where(total > 0, total, np.inf)
        with np.errstate(invalid="ignore"):  # non-finite content stays NaN, as it was
            kernel = np.diff(at_edges, axis=-1)
            kernel /= total
        np.maximum(kernel, 0.0, out=kernel)
        np.copyto(kernel, 0.0, where=kernel < threshold)
        return kernel

    def core(table, offset_values):
        o = np.asarray(offset_values, dtype=float)
        raw_nodes = _raw_at_offset_nodes(axes, table, true_centres, m_centres, o)
        if raw_nodes is None or not np.all(np.isfinite(raw_nodes)):
            e, m = true_centres[:, None], m_centres
            density = _density_core(axes, table, e, m, o[..., None, None])
            return finish(*unnormalised(density))
        # The density at an offset is a linear combination of the (unclipped) densities at
        # the two nearest nodes, clipped at zero. Without the clipping, the cumulative
        # content at the reco edges and its total are linear in the density too: those of
        # the nodes combine exactly. The clipping adds, where the combination is negative,
        # its opposite; that is computed element by element where it can happen.
        raw_nodes = np.where(outside_true_and_migra, 0.0, raw_nodes)
        valid = ~outside_valid_range(axes[2], o)  # beyond the valid range the kernel is zero
        idx, wo = _locate(axes[2], o[valid])
        node_edges, node_total = unnormalised(raw_nodes)
        wo3 = wo[:, None, None]
        at_edges = (1 - wo3) * node_edges[idx] + wo3 * node_edges[idx + 1]
        total = (1 - wo3) * node_total[idx] + wo3 * node_total[idx + 1]
        t_s, m_s = np.nonzero(_may_be_negative(axes[2], raw_nodes, wo))
        if t_s.size:
            at_s = raw_nodes[:, t_s, m_s]  # (nodes, elements), elements in (true, migra) order
            # between two nodes not negative there, the combination is not negative either:
            # unless a node is, only the extrapolated offsets can add anything
            at = slice(None) if np.any(at_s < 0) else np.nonzero((wo < 0) | (wo > 1))[0]
            idx_s, wo_s = idx[at], wo[at, None]
            negative = np.maximum((wo_s - 1) * at_s[idx_s] - wo_s * at_s[idx_s + 1], 0.0)
            # the cumulative content these elements add, read at the reco edges as above
            cum = np.cumsum(negative * m_width[m_s], axis=1)
            cum = np.concatenate([np.zeros((cum.shape[0], 1)), cum], axis=1)
            key, n_m = t_s * m_centres.size + m_s, m_centres.size
            start = np.searchsorted(key, rows * n_m)  # first element of each row, (nt, 1)
            below = cum[:, np.searchsorted(key, rows * n_m + k)]  # elements with m < k
            below_next = cum[:, np.searchsorted(key, rows * n_m + k + 1)]
            first = cum[:, start]
            at_edges[at] += (1.0 - w) * (below - first) + w * (below_next - first)
            total[at] += cum[:, np.searchsorted(key, (rows + 1) * n_m)] - first
        out = np.zeros((*o.shape, nt, nr))
        out[valid] = finish(at_edges, total)
        return out

    coords = {
        **axis_coords("energy_true", e_true, "TeV", lohi=True),
        **axis_coords("energy", e_reco, "TeV", lohi=True),
    }
    return apply_irf(
        core,
        [edisp],
        [_DIMS],
        [convert_units(offset, "deg", "offset")],
        output_core_dims=("energy_true", "energy"),
        output_sizes={"energy_true": nt, "energy": nr},
        coords=coords,
        name="edisp_kernel",
        attrs={"units": ""},
    )


def diagonal_response(energy_true_edges: np.ndarray, energy_edges: np.ndarray) -> np.ndarray:
    """Perfect energy resolution: the fraction of each true bin inside each reco bin.

    Parameters
    ----------
    energy_true_edges, energy_edges : numpy.ndarray
        Bin edges, TeV.

    Returns
    -------
    numpy.ndarray, shape (n_et, n_e)
        Overlap fractions (linear in energy); identity for equal axes.
    """
    t_lo, t_hi = energy_true_edges[:-1, None], energy_true_edges[1:, None]
    lo = np.maximum(t_lo, energy_edges[None, :-1])
    hi = np.minimum(t_hi, energy_edges[None, 1:])
    return np.clip(hi - lo, 0.0, None) / (t_hi - t_lo)
