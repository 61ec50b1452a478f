"""Binned axes: centre coordinates plus CF-style bounds, as DESIGN.md fixes them.

An axis named ``energy`` is stored as a 1D coordinate ``energy`` (bin centres) and a
2D coordinate ``energy_bounds`` with dims ``(energy, bnds)`` holding the bin edges.
Energy-like axes use log (geometric) centres, all others linear centres.

An ``xarray.DataArray`` cannot carry a coordinate with the extra ``bnds`` dim, so
DataArrays standing alone (the IRFs) carry the same edges as two 1D coordinates
``energy_lo`` and ``energy_hi``; :func:`axis_edges` reads either form.
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

__all__ = [
    "band_slices",
    "LOG_AXES",
    "axis_coords",
    "axis_edges",
    "axis_lo_hi",
    "energy_axis",
    "bounds_name",
]

#: Axes whose bin centres are geometric means of the edges.
LOG_AXES = frozenset({"energy", "energy_true"})

BOUNDS_DIM = "bnds"


def bounds_name(dim: str) -> str:
    """Name of the CF bounds coordinate of axis ``dim`` (``"energy"`` -> ``"energy_bounds"``)."""
    return f"{dim}_bounds"


def axis_coords(
    dim: str,
    edges: np.ndarray | None = None,
    unit: str = "",
    *,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    interp: str | None = None,
    lohi: bool = False,
) -> dict[str, xr.Variable]:
    """Coordinates of a binned axis: bin centres and CF bounds.

    Parameters
    ----------
    dim : str
        Axis (dimension) name, e.g. ``"energy_true"`` or ``"offset"``.
    edges : array_like, shape (n + 1,), optional
        Monotonic bin edges. Give either ``edges`` or both ``lo`` and ``hi``.
    unit : str
        Astropy unit string of the edges (``"TeV"``, ``"deg"``, ``""``).
    lo, hi : array_like, shape (n,), optional
        Lower and upper bin edges, for tables that store them separately
        (they need not be contiguous). Where ``lo == hi`` everywhere the axis holds
        nodes, not bins: the centres are the nodes and ``interp`` attr is ``"nodes"``.
    interp : {"log", "lin"}, optional
        How bin centres are placed; default ``"log"`` for energy axes and
        ``"lin"`` for all others.
    lohi : bool
        Give the edges as 1D ``dim + "_lo"`` / ``dim + "_hi"`` coordinates (for DataArrays)
        instead of one ``dim + "_bounds"`` coordinate with dims ``(dim, bnds)``.

    Returns
    -------
    dict of str to xarray.Variable
        ``{dim: centres(dim), dim + "_bounds": edges(dim, bnds)}``, ready to be
        passed as ``coords`` to an xarray constructor (or the ``_lo``/``_hi`` pair).
    """
    if edges is not None:
        edges = np.asarray(edges, dtype=float)
        if edges.ndim != 1 or edges.size < 2:
            raise ValueError(f"axis {dim!r}: edges must be 1D with at least 2 values")
        lo, hi = edges[:-1], edges[1:]
    elif lo is None or hi is None:
        raise ValueError(f"axis {dim!r}: give edges or both lo and hi")
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    if lo.shape != hi.shape or lo.ndim != 1:
        raise ValueError(f"axis {dim!r}: lo and hi must be 1D of equal length")
    if np.all(hi == lo):
        # GADF tables may tabulate nodes rather than bins (HESS DR1 offsets: THETA_LO == THETA_HI)
        return _coords(dim, lo.copy(), lo, hi, unit, "nodes", lohi)
    if np.any(hi <= lo):
        raise ValueError(f"axis {dim!r}: every bin needs hi > lo")
    interp = interp or ("log" if dim in LOG_AXES else "lin")
    if interp == "log":
        if np.any(lo <= 0):
            raise ValueError(f"axis {dim!r}: log axis needs positive edges")
        centres = np.sqrt(lo * hi)
    elif interp == "lin":
        centres = 0.5 * (lo + hi)
    else:
        raise ValueError(f"axis {dim!r}: unknown interp {interp!r} (use 'log' or 'lin')")
    return _coords(dim, centres, lo, hi, unit, interp, lohi)


def _coords(dim, centres, lo, hi, unit, interp, lohi) -> dict[str, xr.Variable]:
    out = {dim: xr.Variable(dim, centres, {"units": unit, "interp": interp})}
    if lohi:
        out[f"{dim}_lo"] = xr.Variable(dim, lo, {"units": unit})
        out[f"{dim}_hi"] = xr.Variable(dim, hi, {"units": unit})
    else:
        out[bounds_name(dim)] = xr.Variable(
            (dim, BOUNDS_DIM), np.stack([lo, hi], -1), {"units": unit}
        )
    return out


def energy_axis(
    emin: float, emax: float, nbin: int, *, name: str = "energy", unit: str = "TeV"
) -> dict[str, xr.Variable]:
    """Log-spaced energy axis coordinates.

    Parameters
    ----------
    emin, emax : float
        Lowest and highest edge, in ``unit``.
    nbin : int
        Number of bins (log-uniform).
    name : {"energy", "energy_true"}
        Axis name.
    unit : str
        Unit of the edges, default TeV.

    Returns
    -------
    dict of str to xarray.Variable
        See :func:`axis_coords`.
    """
    if not (0 < emin < emax) or nbin < 1:
        raise ValueError(
            f"energy axis needs 0 < emin < emax and nbin >= 1, got {emin}, {emax}, {nbin}"
        )
    return axis_coords(name, np.geomspace(emin, emax, nbin + 1), unit)


def axis_lo_hi(obj: xr.DataArray | xr.Dataset, dim: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bin edges of axis ``dim`` of ``obj``, from either edge form.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Object carrying ``dim + "_bounds"`` or ``dim + "_lo"`` / ``dim + "_hi"``.
    dim : str
        Axis name.

    Returns
    -------
    lo, hi : numpy.ndarray, shape (n,)
        Edges in the axis unit. gammaxr keeps bounds coordinates in memory; if a user's
        ``ds.chunk()`` made them dask arrays they are computed here (a few numbers: a
        documented boundary).
    """
    name = bounds_name(dim)
    coords = obj.coords.variables  # Variables: no DataArray built per access
    if name in coords:
        b = np.asarray(coords[name].values)
        return b[:, 0], b[:, 1]
    if f"{dim}_lo" in coords and f"{dim}_hi" in coords:
        return np.asarray(coords[f"{dim}_lo"].values), np.asarray(coords[f"{dim}_hi"].values)
    raise KeyError(f"axis {dim!r} has no bounds ({name!r} or {dim}_lo/{dim}_hi coordinates)")


def axis_edges(obj: xr.DataArray | xr.Dataset, dim: str) -> np.ndarray:
    """Bin edges of axis ``dim`` of ``obj`` as a 1D numpy array (contiguous bins).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Object carrying the ``dim + "_bounds"`` coordinate.
    dim : str
        Axis name.

    Returns
    -------
    numpy.ndarray, shape (n + 1,)
        Edges in the axis unit. Coordinates are always in memory, so this never computes
        dask data.

    Raises
    ------
    ValueError
        If the bins are not contiguous (``hi[i] != lo[i + 1]``).
    """
    lo, hi = axis_lo_hi(obj, dim)
    if not np.allclose(lo[1:], hi[:-1], rtol=1e-6, atol=0):
        raise ValueError(f"axis {dim!r} bins are not contiguous")
    return np.append(lo, hi[-1])


def band_slices(edges: np.ndarray, band_edges: np.ndarray) -> list[slice]:
    """Slices of the bins of ``edges`` that make up each band of ``band_edges``.

    Parameters
    ----------
    edges : numpy.ndarray, shape (n + 1,)
        Edges of the fine bins.
    band_edges : numpy.ndarray, shape (m + 1,)
        Edges of the wider bands; each must coincide with an edge of ``edges`` (relative
        tolerance 1e-6).

    Returns
    -------
    list of slice
        One slice of fine-bin indices per band.

    Raises
    ------
    ValueError
        If a band edge is not a fine edge, or the band edges do not increase.
    """
    pos = []
    for edge in band_edges:
        hit = np.flatnonzero(np.isclose(edges, edge, rtol=1e-6, atol=0))
        if hit.size == 0:
            raise ValueError(
                f"energy edge {edge:g} TeV is not an edge of the dataset's energy axis "
                f"({np.array2string(np.asarray(edges), precision=4)})"
            )
        pos.append(int(hit[0]))
    if np.any(np.diff(pos) <= 0):
        raise ValueError("energy_edges must be increasing")
    return [slice(a, b) for a, b in itertools.pairwise(pos)]
