"""Gridded interpolation of IRF tables, with the out-of-range policy of Gammapy 2.1.

The IRF DataArrays of :mod:`gammaxr.io.irf_fits` tabulate a quantity at the centres of
their bins (or at nodes, ``interp="nodes"``). :func:`interpolate_irf` evaluates such a
table at arbitrary coordinates:

* **grid**: the nodes of each axis are its centre coordinate; energy axes (``energy``,
  ``energy_true``) are interpolated in ``log(E)``, every other axis (``offset``,
  ``migra``, ``rad``, ``fov_lon``, ``fov_lat``) linearly;
* **values**: multilinear interpolation of the values themselves
  (``values_scale="lin"``) or of their logarithm (``"log"``, used for background rates;
  zeros are floored at the float32 ``tiny`` before taking the log, so a zero node comes
  back as 1.2e-38 rather than 0 -- as in Gammapy, which matters for log-log energy
  integrals of bins next to a zero node; only results that underflow come back as 0);
* **range policy**: beyond the outermost nodes, values are extrapolated linearly (in the
  scaled coordinates) from the two outermost nodes, but only up to the *valid range* of the
  axis: its outer bin edges, or for a node axis half a node spacing beyond the outer nodes
  (in the axis scale). Points outside the valid range of any axis get ``fill_value``
  (default 0). With ``fill_value=None`` nothing is masked and values are extrapolated
  everywhere. Non-finite coordinates give ``fill_value`` (NaN when ``fill_value=None``).
  Results are clipped at zero (IRFs are non-negative). An axis of length one is constant
  along that dim (its valid range still applies, except for a single node, which is valid
  everywhere).

This is what Gammapy's IRF classes do with their default ``interp_kwargs``
(``bounds_error=False, fill_value=0``: extrapolation within the bins, zero outside).

Coordinates may be numpy array-likes (numpy broadcasting, numpy result) or
``xarray.DataArray`` objects (broadcast by dim name, DataArray result; dask-backed inputs
stay lazy, evaluation runs per chunk through :func:`xarray.apply_ufunc`). A DataArray
coordinate with a ``units`` attr is converted to the axis unit (TeV for energies, deg for
angles). Mixing DataArrays with numpy arrays of more than zero dims is refused (the dims
would be ambiguous). The IRF's coordinates (centres and bounds) are read eagerly: they
are small and in memory; the IRF values themselves may be dask-backed (kept lazy on the
DataArray path, read with ``np.asarray`` on the numpy path -- the documented boundary).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xarray as xr
from astropy import units as u

from gammaxr.geom.axes import LOG_AXES, axis_lo_hi
from gammaxr.units import to_unit, unit_factor

__all__ = [
    "GridAxis",
    "grid_axis",
    "interpolate_irf",
    "interpolate_on_points",
    "node_values",
    "CornerWeights",
    "interpolate_table",
    "outside_valid_range",
]

#: Floor applied before taking the log of values (float32 tiny, as GADF tables are float32).
LOG_FLOOR = float(np.finfo(np.float32).tiny)

_FLOAT64_TINY = float(np.finfo(np.float64).tiny)

# multiply-adds of a matrix product that BLAS libraries keep on the calling thread
# (OpenBLAS: up to 65536 x GEMM_MULTITHREAD_THRESHOLD = 4)
_SMALL_PRODUCT = 2**18

#: Unit in which coordinates of each IRF axis are expected.
AXIS_UNITS = {
    "energy": "TeV",
    "energy_true": "TeV",
    "offset": "deg",
    "rad": "deg",
    "fov_lon": "deg",
    "fov_lat": "deg",
    "migra": "",
}


@dataclass(frozen=True)
class GridAxis:
    """One IRF axis prepared for interpolation.

    Attributes
    ----------
    name : str
        Dim name.
    nodes : numpy.ndarray, shape (n,)
        Node positions in the scaled coordinate (``log`` for energy axes), ascending.
    lo, hi : float
        Valid range in the scaled coordinate (see module docstring).
    log : bool
        Whether the axis is interpolated in ``log`` of the coordinate.
    flip : bool
        Whether the table runs in descending order along this axis (reversed internally).
    step : float or None
        The node spacing if the nodes are evenly spaced (within 1 % of it), else None:
        points are then located by arithmetic instead of a binary search.
    """

    name: str
    nodes: np.ndarray
    lo: float
    hi: float
    log: bool
    flip: bool
    step: float | None = None

    def scale(self, x: np.ndarray) -> np.ndarray:
        """Coordinate ``x`` (axis unit) in the interpolation scale."""
        x = np.asarray(x, dtype=float)
        if not self.log:
            return x
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)


def grid_axis(irf: xr.DataArray | xr.Dataset, dim: str) -> GridAxis:
    """Interpolation nodes and valid range of axis ``dim`` of an IRF.

    Parameters
    ----------
    irf : xarray.DataArray or xarray.Dataset
        IRF with a centre coordinate ``dim`` and bounds ``dim_lo``/``dim_hi`` (or
        ``dim_bounds``). Without bounds the axis is treated as nodes.
    dim : str
        Axis name.

    Returns
    -------
    GridAxis
        Nodes and valid range in the interpolation scale (log for energy axes). Axes of
        equal values are one shared object (:func:`_grid_axis_of`): its ``nodes`` are
        read-only.
    """
    coord = irf.coords.variables[dim]  # a Variable: no DataArray built
    centres = np.asarray(coord.values, dtype=float)
    is_nodes = coord.attrs.get("interp") == "nodes"
    try:
        lo, hi = axis_lo_hi(irf, dim)
    except KeyError:
        lo = hi = centres
        is_nodes = True
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return _grid_axis_of(
        dim, is_nodes, centres.shape, centres.tobytes(), lo.tobytes(), hi.tobytes()
    )


@lru_cache(maxsize=256)
def _grid_axis_of(
    dim: str, is_nodes: bool, shape: tuple[int, ...], centres: bytes, lo: bytes, hi: bytes
) -> GridAxis:
    """The :class:`GridAxis` of :func:`grid_axis` from the axis' values (float64 bytes).

    Memoised: every run of a data release reads the same few axes from its files, and a
    reduction asks for each about a dozen times a run (~0.1 ms each, in Python that holds
    the GIL while other threads reduce other runs); equal values give the one object.
    """
    centres = np.frombuffer(centres, dtype=float).reshape(shape)
    lo, hi = np.frombuffer(lo, dtype=float), np.frombuffer(hi, dtype=float)
    log = dim in LOG_AXES
    flip = centres.size > 1 and centres[0] > centres[-1]
    if flip:
        centres = centres[::-1]
    if log and (np.any(centres <= 0) or np.any(lo <= 0)):
        raise ValueError(f"IRF axis {dim!r}: log-interpolated axis needs positive values")
    scale = np.log if log else np.array
    nodes = np.array(scale(centres), dtype=float)
    nodes.flags.writeable = False
    if nodes.size > 1 and np.any(np.diff(nodes) <= 0):
        raise ValueError(f"IRF axis {dim!r}: nodes must be strictly monotonic")
    if is_nodes:
        if nodes.size == 1:
            vlo, vhi = -np.inf, np.inf
        else:
            vlo = nodes[0] - 0.5 * (nodes[1] - nodes[0])
            vhi = nodes[-1] + 0.5 * (nodes[-1] - nodes[-2])
    else:
        vlo = float(scale(min(np.min(lo), np.min(hi))))
        vhi = float(scale(max(np.max(lo), np.max(hi))))
    return GridAxis(dim, nodes, float(vlo), float(vhi), log, bool(flip), _even_step(nodes))


def _even_step(nodes: np.ndarray) -> float | None:
    """The spacing of ``nodes`` if every node is within 1 % of a spacing of the even grid
    from the first to the last node (so that arithmetic locates a point within one cell of
    its own), else None."""
    if nodes.size < 3:
        return None
    step = (nodes[-1] - nodes[0]) / (nodes.size - 1)
    even = nodes[0] + step * np.arange(nodes.size)
    return float(step) if np.max(np.abs(nodes - even)) < 0.01 * step else None


def _locate(axis: GridAxis, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower node index and weight of the upper node (unclipped: extrapolates)."""
    n = axis.nodes.size
    if n == 1:
        return np.zeros(x.shape, dtype=np.intp), np.zeros(x.shape)
    # the last node at or below x, limited to 0 .. n - 2: the inner nodes at or below x
    x = np.asarray(x, dtype=float)
    if axis.step is None or x.size < 64:
        idx = np.searchsorted(axis.nodes[1:-1], x, side="right")
    else:
        idx = _locate_even(axis.nodes, axis.step, x)
    lower, width = np.empty(x.shape), np.empty(x.shape)
    np.take(axis.nodes, idx, out=lower, mode="clip")  # idx is in range: no bounds checks
    np.take(axis.nodes[1:], idx, out=width, mode="clip")
    width -= lower
    np.subtract(x, lower, out=lower)
    lower /= width
    return idx, lower


def _locate_even(nodes: np.ndarray, step: float, x: np.ndarray) -> np.ndarray:
    """``searchsorted(nodes[1:-1], x, side="right")`` for nodes evenly spaced by ``step``
    (to 1 %): the cell by arithmetic, then moved by one where rounding put it next to the
    right one (~20x faster than the binary search on a map's pixels; NaN goes to the last
    cell, as with the search)."""
    last = nodes.size - 2
    cell = np.subtract(x, nodes[0])
    cell /= step
    np.floor(cell, out=cell)
    np.clip(cell, 0, last, out=cell)
    np.copyto(cell, last, where=np.isnan(cell))
    idx = cell.astype(np.intp)
    below = np.take(nodes, idx, mode="clip") > x  # the cell starts above x: one down
    below &= idx > 0
    idx -= below
    above = np.take(nodes, idx + 1, mode="clip") <= x  # x is past the cell: one up
    above &= idx < last
    idx += above
    return idx


def interpolate_table(
    table: np.ndarray,
    axes: Sequence[GridAxis],
    coords: Sequence[np.ndarray],
    *,
    values_scale: str = "lin",
    fill_value: float | None = 0.0,
    clip: bool = True,
) -> np.ndarray:
    """Multilinear interpolation of a numpy table on :class:`GridAxis` axes (numpy core).

    Parameters
    ----------
    table : numpy.ndarray
        Values, one numpy axis per entry of ``axes`` in the same order.
    axes : sequence of GridAxis
        The table axes (from :func:`grid_axis`).
    coords : sequence of array_like
        One coordinate array per axis, in the axis unit (not scaled); broadcast together.
    values_scale : {"lin", "log"}
        Interpolate the values or their logarithm.
    fill_value : float or None
        Value where any coordinate is outside its axis' valid range (or not finite);
        ``None`` extrapolates everywhere.
    clip : bool
        Clip results at zero.

    Returns
    -------
    numpy.ndarray
        Interpolated values with the broadcast shape of ``coords``.
    """
    table = np.asarray(table, dtype=float)
    if table.ndim != len(axes) or len(coords) != len(axes):
        raise ValueError("interpolate_table: table, axes and coords must agree in number")
    for ax, size in zip(axes, table.shape, strict=True):
        if ax.nodes.size != size:
            raise ValueError(
                f"interpolate_table: axis {ax.name!r} has {ax.nodes.size} nodes, table {size}"
            )
    flips = tuple(i for i, ax in enumerate(axes) if ax.flip)
    if flips:
        table = np.flip(table, axis=flips)
    if values_scale == "log":
        table = np.log(np.clip(table, LOG_FLOOR, None))
    elif values_scale != "lin":
        raise ValueError(f"unknown values_scale {values_scale!r} (use 'lin' or 'log')")

    scaled = [ax.scale(c) for ax, c in zip(axes, coords, strict=True)]
    shape = np.broadcast_shapes(*(np.shape(x) for x in scaled))
    result = _multilinear(table, axes, scaled, shape)

    # out-of-range masks are built on each coordinate's own (small) shape
    bad = [~((x >= ax.lo) & (x <= ax.hi)) for ax, x in zip(axes, scaled, strict=True)]
    return _finish_values(
        result, values_scale, clip, fill_value, bad, not np.all(np.isfinite(table))
    )


def _finish_values(result, values_scale, clip, fill_value, bad, nonfinite_table) -> np.ndarray:
    """Back from log values, clip at zero and fill out-of-range points (in place).

    ``bad`` lists masks broadcastable to ``result`` (True where a coordinate is outside its
    axis' valid range); ``nonfinite_table`` says whether the table had non-finite values.
    """
    log = values_scale == "log"
    if log:
        # exp of log values is never negative (no clipping needed); it is infinite or NaN
        # only if a log value is large or NaN, which one reduction tells
        non_finite = not np.max(result, initial=-np.inf) < 700.0
        with np.errstate(over="ignore"):
            np.exp(result, out=result)
        np.copyto(result, 0.0, where=result <= 2 * _FLOAT64_TINY)
    if clip and not log:
        np.maximum(result, 0.0, out=result)
    if fill_value is not None:
        for outside in bad:
            if np.any(outside):
                np.copyto(result, fill_value, where=outside)
        if (log and non_finite) or nonfinite_table:
            np.copyto(result, fill_value, where=~np.isfinite(result))
    return result


def interpolate_on_points(
    table: np.ndarray,
    axes: Sequence[GridAxis],
    coords: Sequence[np.typing.ArrayLike | None],
    point_axes: Sequence[int],
    points: Sequence[np.typing.ArrayLike],
    *,
    values_scale: str = "lin",
    fill_value: float | None = 0.0,
    clip: bool = True,
    points_first: bool = False,
    as_log: bool = False,
) -> np.ndarray:
    """:func:`interpolate_table` where some axes are evaluated at many points (pixels).

    The axes ``point_axes`` take their coordinates from ``points`` (arrays of one shape,
    e.g. the offset of every pixel, or its FoV lon and lat), the others from ``coords``
    (small arrays, e.g. energy bin centres). The table is first interpolated along the
    other axes at the point axes' *nodes* (multilinear interpolation is separable), then
    combined across the nodes for every point: for one point axis the lower node's value
    plus the weight times the step to the next node, gathered per point; for several, one
    sparse matrix product with the multilinear weights. This replaces gathering the whole
    table for every output element. The values scale, clipping and range policy are those
    of :func:`interpolate_table`; results agree with it up to rounding.

    Parameters
    ----------
    table : numpy.ndarray
        Values, one numpy axis per entry of ``axes``.
    axes : sequence of GridAxis
        The table axes.
    coords : sequence of array_like or None
        Coordinates of the axes not in ``point_axes``, broadcast together (their broadcast
        shape is ``shape``); the entries of the point axes are ignored.
    point_axes : sequence of int
        Indices (into ``axes``) of the axes whose coordinates are ``points``.
    points : sequence of array_like
        One coordinate array per point axis, all of one shape ``points_shape``.
    values_scale, fill_value, clip
        As for :func:`interpolate_table`.
    points_first : bool
        Result shape ``points_shape + shape`` instead of ``shape + points_shape``.
    as_log : bool
        With ``values_scale="log"``: return the interpolated logarithms of the values
        (``fill_value`` where out of range, no clipping): for callers that work in log
        space (power-law integrals).

    Returns
    -------
    numpy.ndarray
        Interpolated values, float64, C-contiguous.
    """
    point_axes = [int(i) for i in point_axes]
    points = [np.asarray(p, dtype=float) for p in points]
    points_shape = np.broadcast_shapes(*(p.shape for p in points))
    points = [np.broadcast_to(p, points_shape) for p in points]
    others = [i for i in range(len(axes)) if i not in point_axes]
    shape = np.broadcast_shapes(*(np.shape(coords[i]) for i in others))
    table = np.asarray(table, dtype=float)
    nonfinite_table = not np.all(np.isfinite(table))
    if nonfinite_table:  # a non-finite node would spread to every point: gather instead
        pad_points = (1,) * len(shape) if points_first else ()
        pad_other = () if points_first else (1,) * len(points_shape)
        full = [
            np.reshape(points[point_axes.index(i)], points_shape + pad_points)
            if i in point_axes
            else np.reshape(coords[i], np.shape(coords[i]) + pad_other)
            for i in range(len(axes))
        ]
        if as_log:  # the logs of the values, as below
            table, values_scale, clip = np.log(np.clip(table, LOG_FLOOR, None)), "lin", False
        result = interpolate_table(
            table, axes, full, values_scale=values_scale, fill_value=fill_value, clip=clip
        )
        out_shape = points_shape + shape if points_first else shape + points_shape
        return np.ascontiguousarray(np.broadcast_to(result, out_shape))
    if values_scale not in ("log", "lin"):
        raise ValueError(f"unknown values_scale {values_scale!r} (use 'lin' or 'log')")
    raw = node_values(table, axes, coords, point_axes, values_scale=values_scale)
    if len(point_axes) == 1:
        result, may_be_negative = _combine_nodes(
            axes[point_axes[0]], points[0], raw, points_first, fill_value is not None
        )
        if clip and values_scale == "lin" and not points_first:  # only the rows that can be
            for rows in _runs(may_be_negative):
                np.maximum(result[rows], 0.0, out=result[rows])
            clip = False
        clip = clip and bool(may_be_negative.any())
    else:
        corners = CornerWeights.of([axes[i] for i in point_axes], points)
        result = corners.apply(raw, points_first)
    result = result.reshape(points_shape + shape if points_first else shape + points_shape)
    # out-of-range masks: the other coordinates', then the points'
    pad = (1,) * len(points_shape)
    bad = []
    for i in others:
        x = axes[i].scale(coords[i])
        outside = ~((x >= axes[i].lo) & (x <= axes[i].hi))
        bad.append(outside if points_first else outside.reshape(outside.shape + pad))
    outside = np.zeros(points_shape, dtype=bool)
    for i, p in zip(point_axes, points, strict=True):
        outside |= outside_valid_range(axes[i], p)
    bad.append(outside.reshape(points_shape + (1,) * len(shape)) if points_first else outside)
    if as_log:
        if values_scale != "log":
            raise ValueError("as_log needs values_scale='log'")
        return _finish_values(result, "lin", False, fill_value, bad, False)
    return _finish_values(result, values_scale, clip, fill_value, bad, nonfinite_table)


def _runs(mask: np.ndarray) -> list[slice]:
    """The runs of consecutive True values of a 1D mask, as slices; one slice over the whole
    mask when there are more than a few (one pass beats many small ones)."""
    edges = np.flatnonzero(np.diff(mask, prepend=False, append=False))
    runs = [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return runs if len(runs) <= 4 else [slice(None)]


def node_values(
    table: np.ndarray,
    axes: Sequence[GridAxis],
    coords: Sequence[np.typing.ArrayLike | None],
    point_axes: Sequence[int],
    *,
    values_scale: str = "lin",
) -> np.ndarray:
    """The first step of :func:`interpolate_on_points`: the table along the other axes.

    The table (its logarithm for ``values_scale="log"``) is interpolated, extrapolating,
    along the axes not in ``point_axes`` at ``coords``, at every combination of the point
    axes' nodes. Interpolating these rows at the points (:func:`_combine_nodes`,
    :class:`CornerWeights`) gives the values at the points.

    Parameters
    ----------
    table, axes, coords, point_axes
        As for :func:`interpolate_on_points`; the table's values must be finite.
    values_scale : {"lin", "log"}
        Whether the rows hold the values or their logarithms.

    Returns
    -------
    numpy.ndarray, shape (rows, node combinations)
        ``rows`` is the size of the broadcast shape of the other axes' ``coords``; node
        combinations run over the point axes in C order.
    """
    counts = [axes[i].nodes.size for i in point_axes]
    node_coords = []
    for i, ax in enumerate(axes):
        if i in point_axes:
            nodes = np.exp(ax.nodes) if ax.log else ax.nodes
            node_shape = [1] * len(point_axes)
            node_shape[list(point_axes).index(i)] = nodes.size
            node_coords.append(nodes.reshape(node_shape))
        else:
            c = np.asarray(coords[i], dtype=float)
            node_coords.append(c.reshape(c.shape + (1,) * len(point_axes)))
    table = np.asarray(table, dtype=float)
    if values_scale == "log":
        table = np.log(np.clip(table, LOG_FLOOR, None))
    raw = interpolate_table(table, axes, node_coords, fill_value=None, clip=False)
    return raw.reshape(-1, int(np.prod(counts)))


def _combine_nodes(
    axis: GridAxis,
    points: np.ndarray,
    raw: np.ndarray,
    points_first: bool,
    filled_outside: bool = False,
):
    """Values at ``points`` along one axis from ``raw`` (others, nodes): lower node value plus
    the weight times the step to the upper node, gathered for every point. Also returns
    which rows can have a negative value (else clipping at zero has nothing to do), shape
    (others,); with ``filled_outside`` (the caller overwrites the points outside the axis'
    valid range) which can inside that range."""
    may_be_negative = np.any(raw < 0, axis=1)
    if axis.nodes.size == 1:
        column = raw[:, :1]
        shape = (points.size, raw.shape[0]) if points_first else (raw.shape[0], points.size)
        result = np.broadcast_to(column.T if points_first else column, shape)
        return np.ascontiguousarray(result), may_be_negative
    idx, w = _locate(axis, np.ravel(axis.scale(points)))
    lower, step = raw[:, :-1], np.diff(raw, axis=1)
    if not may_be_negative.all():  # between nodes not negative: only extrapolation can be
        w_min, w_max = np.fmin.reduce(w, initial=0.0), np.fmax.reduce(w, initial=1.0)
        if filled_outside:  # no valid point extrapolates beyond the valid range's ends
            nodes = axis.nodes
            w_min = max(w_min, min((axis.lo - nodes[0]) / (nodes[1] - nodes[0]), 0.0))
            w_max = min(w_max, max((axis.hi - nodes[-2]) / (nodes[-1] - nodes[-2]), 1.0))
        may_be_negative |= lower[:, 0] + w_min * step[:, 0] < 0
        may_be_negative |= lower[:, -1] + w_max * step[:, -1] < 0
    columns = max(1, _SMALL_PRODUCT // raw.size)  # points per product, see below
    if not points_first and columns >= 16:
        # node weights of every point (two per column), and the table rows times them in
        # small blocks of points: each product runs on the calling thread (BLAS libraries
        # do not split products this small over threads, which under dask's worker threads
        # would oversubscribe the cores), and no (rows, points) temporary is made
        weights = np.zeros((axis.nodes.size, idx.size))
        flat = weights.reshape(-1)  # a view: flat indices are ~2x quicker than (row, column)
        at = np.arange(idx.size)
        at += idx * idx.size  # each point's lower node
        flat[at] = 1.0 - w
        at += idx.size
        flat[at] = w
        result = np.empty((raw.shape[0], idx.size))
        for start in range(0, idx.size, columns):
            block = slice(start, start + columns)
            np.matmul(raw, weights[:, block], out=result[:, block])
        return result, may_be_negative
    if points_first:
        result = np.take(np.ascontiguousarray(lower.T), idx, axis=0, mode="clip")
        steps = np.take(np.ascontiguousarray(step.T), idx, axis=0, mode="clip")
        steps *= w[:, None]
    else:
        result = np.take(lower, idx, axis=1, mode="clip")
        steps = np.take(step, idx, axis=1, mode="clip")
        steps *= w
    result += steps
    return result, may_be_negative


@dataclass(frozen=True)
class CornerWeights:
    """Multilinear weights of many points on several table axes, applied row by row.

    Every point takes the ``2**k`` corners of its cell (``k`` the axes with more than one
    node): the flat node index of each corner and its weight, the product of its axes'
    weights (extrapolating outside the nodes). Computed once for the points, applied to any
    number of rows of node values (:func:`node_values`): each row is a gather per corner,
    weighted and summed corner by corner (the lowest axis varies fastest), on arrays of one
    value per point that stay in the core's cache (a row of 62,500 pixels is 0.5 MB).

    Attributes
    ----------
    indices : tuple of numpy.ndarray, each shape (points,)
        Flat node index of each corner.
    weights : tuple of numpy.ndarray or None
        Weight of each corner per point (None for a weight of one: single-node axes only).
    """

    indices: tuple
    weights: tuple

    @classmethod
    def of(cls, axes: Sequence[GridAxis], points: Sequence[np.ndarray]) -> CornerWeights:
        """The corners of ``points`` (one coordinate array per axis, one shape) on ``axes``."""
        counts = [ax.nodes.size for ax in axes]
        strides = np.cumprod([1, *counts[:0:-1]])[::-1]  # of each axis in the flat index
        base = None
        weights, offsets = [None], [0]
        for ax, p, stride in zip(axes, points, strides, strict=True):
            idx, w = _locate(ax, np.ravel(ax.scale(p)))
            idx *= int(stride)
            base = idx if base is None else np.add(base, idx, out=base)
            if ax.nodes.size == 1:  # one node: every point on it, weight one
                continue
            lower = 1.0 - w
            weights = [lower if c is None else c * lower for c in weights] + [
                w if c is None else c * w for c in weights
            ]
            offsets = offsets + [offset + int(stride) for offset in offsets]
        indices = tuple(base + offset if offset else base for offset in offsets)
        return cls(indices, tuple(weights))

    def row(self, values: np.ndarray, out: np.ndarray, work: np.ndarray) -> np.ndarray:
        """One row of node values at the points, written into ``out``.

        Parameters
        ----------
        values : numpy.ndarray, shape (node combinations,)
            The row (C order over the axes' nodes).
        out, work : numpy.ndarray, shape (points,), float64
            The result, and a scratch array of the same size.

        Returns
        -------
        numpy.ndarray
            ``out``.
        """
        values = np.ascontiguousarray(values, dtype=float)
        for corner, (index, weight) in enumerate(zip(self.indices, self.weights, strict=True)):
            target = work if corner else out
            np.take(values, index, out=target, mode="clip")  # indices are in range
            if weight is not None:
                target *= weight
            if corner:
                out += work
        return out

    def apply(self, raw: np.ndarray, points_first: bool = False) -> np.ndarray:
        """Every row of ``raw`` (rows, node combinations) at the points.

        Returns
        -------
        numpy.ndarray
            ``(points, rows)`` if ``points_first`` else ``(rows, points)``, float64.
        """
        n_points = self.indices[0].size
        result = np.empty((raw.shape[0], n_points))
        work = np.empty(n_points)
        for values, out in zip(raw, result, strict=True):
            self.row(values, out, work)
        return np.ascontiguousarray(result.T) if points_first else result


def _multilinear(table, axes, scaled, shape) -> np.ndarray:
    """Multilinear interpolation (extrapolating) of ``table`` at broadcast coordinates.

    Multilinear interpolation is separable. An axis whose coordinate varies along output
    dims of its own (true energies x pixel offsets, say) is interpolated once for all the
    others by a small contraction of the table; its table axis then lists the coordinate's
    own values and becomes those output dims by a reshape. Only the remaining axes, whose
    coordinates share dims (FoV lon and lat over the pixels), are interpolated point by point,
    gathering whole contiguous rows of the contracted table. The result equals plain
    multilinear interpolation up to rounding.

    Returns a float64 array of the broadcast ``shape`` that does not share memory with
    ``table`` (possibly a transposed view of a fresh array).
    """
    original = table
    ndim = len(shape)
    shapes = [(1,) * (ndim - np.ndim(x)) + np.shape(x) for x in scaled]
    owned, active = {}, []
    for i, ax in enumerate(axes):
        if ax.nodes.size == 1:  # constant along this axis
            table = np.take(table, [0], axis=i)
            owned[i] = []
            continue
        own = _own_dims(shapes, i)
        if own is None:
            active.append(i)
        else:
            owned[i] = own
    # contract the axes that shrink the table first, so intermediates stay small
    separable = [i for i in owned if axes[i].nodes.size > 1]
    for i in sorted(separable, key=lambda i: np.size(scaled[i]) / axes[i].nodes.size):
        idx, w = _locate(axes[i], np.reshape(scaled[i], -1))
        w = w.reshape((1,) * i + (-1,) + (1,) * (table.ndim - i - 1))
        table = (1.0 - w) * np.take(table, idx, axis=i) + w * np.take(table, idx + 1, axis=i)
    # table axes: active ones first (gathered), then the owned output dims in axis order
    contracted = [i for i in range(len(axes)) if i not in active]
    table = np.transpose(table, active + contracted)
    own_dims = [d for i in contracted for d in owned[i]]
    table = table.reshape(table.shape[: len(active)] + tuple(shape[d] for d in own_dims))
    shared = sorted({d for i in active for d, n in enumerate(shapes[i]) if n > 1})
    pick = tuple(slice(None) if d in shared else 0 for d in range(ndim))
    located = [_locate(axes[i], np.broadcast_to(scaled[i], shapes[i])[pick]) for i in active]
    located = [(np.broadcast_to(a, [shape[d] for d in shared]), b) for a, b in located]
    result = None
    for corner in range(2 ** len(active)):
        index, weight = [], 1.0
        for bit, (idx, w) in enumerate(located):
            upper = (corner >> bit) & 1
            index.append(idx + upper)
            weight = weight * (w if upper else 1.0 - w)
        values = table[tuple(index)] if active else table
        if active:
            weight = np.reshape(weight, np.shape(weight) + (1,) * len(own_dims))
        term = weight * values
        result = term if result is None else result + term
    # result axes: shared dims, then owned dims -> output order, unowned dims of size one
    order = shared + own_dims
    full = [shape[d] if d in order else 1 for d in range(ndim)]
    result = np.transpose(np.asarray(result), np.argsort(order)).reshape(full)
    if tuple(full) != tuple(shape):  # coordinates of single-node axes vary along these dims
        return np.array(np.broadcast_to(result, shape))
    # callers modify the result in place: copy it if it is still the caller's table
    return result.copy() if np.shares_memory(result, original) else result


def _own_dims(shapes: list[tuple[int, ...]], i: int) -> list[int] | None:
    """Broadcast dims along which only coordinate ``i`` varies, or None if it shares one."""
    mine = [d for d, n in enumerate(shapes[i]) if n > 1]
    for j, other in enumerate(shapes):
        if j != i and any(other[d] > 1 for d in mine):
            return None
    return mine


def outside_valid_range(axis: GridAxis, values: np.ndarray) -> np.ndarray:
    """Mask of coordinates outside the valid range of ``axis`` (or not finite).

    Parameters
    ----------
    axis : GridAxis
        Axis from :func:`grid_axis`.
    values : array_like
        Coordinates in the axis unit.

    Returns
    -------
    numpy.ndarray of bool
        True where the value is out of range.
    """
    x = axis.scale(values)
    return ~((x >= axis.lo) & (x <= axis.hi))


# --------------------------------------------------------------------------- xarray layer


def _is_xarray(x) -> bool:
    return isinstance(x, xr.DataArray | xr.Variable)


def convert_units(x, unit: str, name: str = "coordinate"):
    """``x`` in ``unit``: a DataArray with a ``units`` attr is scaled (lazily), an astropy
    Quantity or a string with a unit is converted (:func:`gammaxr.units.to_unit`, raising
    ``UnitConversionError`` naming ``name``), plain numbers are taken to be in ``unit``."""
    if isinstance(x, u.Quantity | str):
        return to_unit(x, unit, name)
    src = x.attrs.get("units") if _is_xarray(x) else None
    if src is None or src == unit:
        return x
    factor = unit_factor(src, unit)
    if factor == 1.0:
        return x
    return x * factor


def table_values(irf: xr.DataArray, dims: Sequence[str]) -> np.ndarray:
    """The values of an IRF as a numpy array with its axes in ``dims`` order (read with
    ``np.asarray``: the documented boundary for numpy callers; a view, no copy)."""
    return np.asarray(irf.values).transpose([irf.dims.index(d) for d in dims])


def irf_table(irf: xr.DataArray, dims: Sequence[str]) -> xr.DataArray:
    """IRF values with dims renamed ``_irf_<dim>`` (so they never clash with map dims)."""
    data = irf.transpose(*dims).data
    return xr.DataArray(data, dims=[f"_irf_{d}" for d in dims])


def apply_irf(
    func: Callable,
    tables: Sequence[xr.DataArray | xr.Dataset],
    table_dims: Sequence[Sequence[str]],
    args: Sequence,
    *,
    output_core_dims: Sequence[str] = (),
    output_sizes: Mapping[str, int] | None = None,
    name: str | None = None,
    attrs: Mapping | None = None,
    coords: Mapping | None = None,
):
    """Call ``func(*numpy_tables, *args)`` on numpy or through ``xarray.apply_ufunc``.

    ``tables`` are IRF DataArrays (passed to ``func`` as numpy arrays with dims in
    ``table_dims`` order), ``args`` are the broadcast arguments. If no argument is an
    xarray object the call is plain numpy (the tables are read with ``np.asarray``: IRF
    tables are small and in memory; a dask-backed table is computed here, the documented
    boundary for numpy callers). Otherwise the call goes through ``apply_ufunc`` with
    ``dask="parallelized"``, so dask-backed tables and arguments stay lazy, and the result
    is a DataArray with the broadcast dims of the arguments followed by
    ``output_core_dims``.
    """
    if not any(_is_xarray(a) for a in args):
        arrays = [table_values(t, d) for t, d in zip(tables, table_dims, strict=True)]
        return func(*arrays, *args)
    for a in args:
        if not _is_xarray(a) and np.ndim(a) > 0:
            raise TypeError(
                "IRF evaluation: give coordinates either all as xarray.DataArray or all as "
                "numpy arrays; a numpy array with dims cannot be broadcast against DataArrays"
            )
    wrapped = [irf_table(t, d) for t, d in zip(tables, table_dims, strict=True)]
    out = xr.apply_ufunc(
        func,
        *wrapped,
        *args,
        input_core_dims=[list(w.dims) for w in wrapped] + [[] for _ in args],
        output_core_dims=[list(output_core_dims)],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"allow_rechunk": True, "output_sizes": dict(output_sizes or {})},
        keep_attrs=False,
    )
    if coords:
        out = out.assign_coords(coords)
    out.attrs = dict(attrs or {})
    return out.rename(name) if name else out


def interpolate_irf(
    irf: xr.DataArray,
    coords: Mapping[str, object],
    *,
    values_scale: str = "lin",
    fill_value: float | None = 0.0,
    clip: bool = True,
) -> np.ndarray | xr.DataArray:
    """Evaluate a tabulated IRF at given coordinates (see module docstring for the policy).

    Parameters
    ----------
    irf : xarray.DataArray
        IRF table with centre coordinates and bounds for each of its dims.
    coords : mapping of str to array_like or xarray.DataArray
        One coordinate per dim of ``irf``: energies in TeV, angles in deg, migra
        dimensionless. Broadcast together (numpy rules, or by dim name for DataArrays).
    values_scale : {"lin", "log"}
        Interpolate values linearly or in log (background rates).
    fill_value : float or None
        Value outside the valid range of any axis; ``None`` extrapolates everywhere.
    clip : bool
        Clip results at zero.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        Values in the unit of ``irf`` (``units`` attr), shape/dims broadcast from
        ``coords``.
    """
    dims = list(irf.dims)
    missing = set(dims) - set(coords)
    extra = set(coords) - set(dims)
    if missing or extra:
        raise ValueError(
            f"interpolate_irf: coordinates must be given for exactly the IRF dims {dims}; "
            f"missing {sorted(missing)}, unexpected {sorted(extra)}"
        )
    axes = [grid_axis(irf, d) for d in dims]
    args = [convert_units(coords[d], AXIS_UNITS.get(d, ""), d) for d in dims]

    def core(table, *values):
        return interpolate_table(
            table, axes, values, values_scale=values_scale, fill_value=fill_value, clip=clip
        )

    return apply_irf(
        core,
        [irf],
        [dims],
        args,
        name=irf.name,
        attrs={"units": irf.attrs.get("units", "")},
    )
