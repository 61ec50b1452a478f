"""Gridded IRF interpolation: nodes, scales, out-of-range policy, xarray/dask inputs."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from gammaxr.geom.axes import axis_coords
from gammaxr.irf import GridAxis, grid_axis, interpolate_irf, interpolate_table
from gammaxr.irf.aeff import evaluate_aeff, evaluate_aeff_on_offsets
from gammaxr.irf.interpolate import interpolate_on_points

E_EDGES = np.geomspace(0.1, 100.0, 7)  # 6 log bins
OFFSET_NODES = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])


def _table(func, *, offset_nodes: bool = True) -> xr.DataArray:
    coords = axis_coords("energy_true", E_EDGES, "TeV", lohi=True)
    if offset_nodes:
        coords |= axis_coords("offset", lo=OFFSET_NODES, hi=OFFSET_NODES, unit="deg", lohi=True)
    else:
        coords |= axis_coords("offset", np.linspace(0.0, 3.0, 7), "deg", lohi=True)
    e = coords["energy_true"].values[:, None]
    o = coords["offset"].values[None, :]
    return xr.DataArray(
        func(e, o), dims=("energy_true", "offset"), coords=coords, attrs={"units": "m2"}
    )


def _multilinear(e, o):
    # linear in (log E, offset) with a cross term: reproduced exactly by multilinear interpolation
    return 50.0 + 10.0 * np.log(e) + 3.0 * o + 2.0 * np.log(e) * o


def test_values_at_nodes_equal_table():
    table = _table(lambda e, o: np.exp(np.sin(e) + o))
    e = table["energy_true"].values[:, None]
    o = table["offset"].values[None, :]
    np.testing.assert_allclose(
        interpolate_irf(table, {"energy_true": e, "offset": o}), table.values, rtol=1e-13
    )


def test_linear_in_log_energy_and_offset_inside_valid_range():
    table = _table(_multilinear)
    rng = np.random.default_rng(0)
    # anywhere inside the valid range, including between outer nodes and outer edges
    e = np.exp(rng.uniform(np.log(0.1), np.log(100.0), 1000))
    o = rng.uniform(-0.25, 2.75, 1000)
    np.testing.assert_allclose(
        interpolate_irf(table, {"energy_true": e, "offset": o}), _multilinear(e, o), rtol=1e-12
    )


def test_out_of_range_policy_edges_and_nodes():
    table = _table(_multilinear)
    axis = grid_axis(table, "offset")
    # node axis: valid half a node spacing beyond the outer nodes
    assert axis.lo == pytest.approx(-0.25) and axis.hi == pytest.approx(2.75)
    energy = grid_axis(table, "energy_true")
    assert np.exp(energy.lo) == pytest.approx(0.1) and np.exp(energy.hi) == pytest.approx(100.0)
    values = interpolate_irf(
        table,
        {
            "energy_true": np.array([0.099, 0.1, 100.0, 100.1, 1.0, 1.0, 1.0, np.nan]),
            "offset": np.array([1.0, 1.0, 1.0, 1.0, 2.74, 2.76, -0.3, 1.0]),
        },
    )
    assert values[0] == 0 and values[3] == 0  # beyond the energy edges
    assert values[1] == pytest.approx(_multilinear(0.1, 1.0))  # edges are inside
    assert values[2] == pytest.approx(_multilinear(100.0, 1.0))
    assert values[4] == pytest.approx(_multilinear(1.0, 2.74))  # extrapolated beyond last node
    assert values[5] == 0 and values[6] == 0 and values[7] == 0


def test_binned_offset_axis_valid_to_outer_edges():
    table = _table(_multilinear, offset_nodes=False)
    values = interpolate_irf(
        table, {"energy_true": 1.0, "offset": np.array([-0.01, 0.0, 0.1, 2.95, 3.0, 3.01])}
    )
    expected = _multilinear(1.0, np.array([0.0, 0.0, 0.1, 2.95, 3.0, 0.0]))
    expected[0] = expected[-1] = 0.0
    np.testing.assert_allclose(values, expected, rtol=1e-12)


def test_fill_value_none_extrapolates_and_results_are_clipped():
    table = _table(lambda e, o: 1.0 - 0.4 * o + 0 * e)
    out = interpolate_irf(table, {"energy_true": 1.0, "offset": np.array([3.0, 2.7])})
    assert out[0] == 0.0  # outside
    assert out[1] == 0.0  # 1 - 0.4 * 2.7 < 0: clipped
    free = interpolate_irf(
        table, {"energy_true": 1000.0, "offset": np.array([-1.0])}, fill_value=None
    )
    assert free[0] == pytest.approx(1.4)
    unclipped = interpolate_irf(
        table, {"energy_true": 1.0, "offset": 3.0}, fill_value=None, clip=False
    )
    assert unclipped == pytest.approx(1.0 - 0.4 * 3.0)


def test_log_values_scale_is_exact_for_power_laws_and_handles_zeros():
    table = _table(lambda e, o: 1e-3 * e**-2.7 * np.exp(-o))
    rng = np.random.default_rng(1)
    e = np.exp(rng.uniform(np.log(0.1), np.log(100.0), 200))
    o = rng.uniform(0, 2.5, 200)
    values = interpolate_irf(table, {"energy_true": e, "offset": o}, values_scale="log")
    np.testing.assert_allclose(values, 1e-3 * e**-2.7 * np.exp(-o), rtol=1e-10)
    # linear value interpolation is not exact for a power law
    lin = interpolate_irf(table, {"energy_true": e, "offset": o})
    assert np.max(np.abs(lin / values - 1)) > 0.01
    zero = table.copy(data=np.where(table["offset"] > 2.2, 0.0, table.values))
    z = interpolate_irf(zero, {"energy_true": 1.0, "offset": [2.5, 2.25]}, values_scale="log")
    assert z[0] == pytest.approx(np.finfo(np.float32).tiny)  # floored, as Gammapy does
    assert 0.0 < z[1] < 1e-15  # geometric interpolation towards a zero node


def test_descending_axis_and_length_one_axis():
    table = _table(_multilinear)
    flipped = table.isel(offset=slice(None, None, -1))
    e = np.array([0.3, 3.0, 30.0])
    o = np.array([0.2, 1.3, 2.6])
    np.testing.assert_allclose(
        interpolate_irf(flipped, {"energy_true": e, "offset": o}),
        interpolate_irf(table, {"energy_true": e, "offset": o}),
        rtol=1e-13,
    )
    single = table.isel(offset=[2])  # one node: constant along offset, valid everywhere
    values = interpolate_irf(single, {"energy_true": 1.0, "offset": [0.0, 5.0]})
    np.testing.assert_allclose(values, _multilinear(1.0, 1.0))


def test_numpy_broadcasting_shapes():
    table = _table(_multilinear)
    e = np.geomspace(0.2, 50, 4)[:, None, None]
    o = np.linspace(0, 2, 15).reshape(1, 3, 5)
    out = interpolate_irf(table, {"energy_true": e, "offset": o})
    assert out.shape == (4, 3, 5)
    np.testing.assert_allclose(out, _multilinear(e, o), rtol=1e-12)


@pytest.mark.parametrize("chunked", [False, True])
def test_dataarray_coordinates_broadcast_by_dim_and_stay_lazy(chunked, raise_on_compute):
    table = _table(_multilinear)
    energy = xr.DataArray(np.geomspace(0.2, 50, 4), dims="energy_true", attrs={"units": "TeV"})
    offset_deg = np.linspace(0, 2.5, 30).reshape(5, 6)
    # offsets given in rad: converted through the units attr
    offset = xr.DataArray(np.deg2rad(offset_deg), dims=("lat", "lon"), attrs={"units": "rad"})
    if chunked:
        offset = offset.copy(data=da.from_array(offset.values, chunks=(2, 3)))
    out = interpolate_irf(table, {"energy_true": energy, "offset": offset})  # no compute
    assert isinstance(out, xr.DataArray)
    assert set(out.dims) == {"energy_true", "lat", "lon"}
    assert out.attrs["units"] == "m2"
    assert isinstance(out.data, da.Array) == chunked
    expected = _multilinear(energy.values[:, None, None], offset_deg[None])
    np.testing.assert_allclose(
        out.transpose("energy_true", "lat", "lon").compute(scheduler="sync").values,
        expected,
        rtol=1e-12,
    )


def test_dask_backed_table_stays_lazy(raise_on_compute):
    table = _table(_multilinear)
    table = table.copy(data=da.from_array(table.values, chunks=(3, 2)))
    offset = xr.DataArray(da.from_array(np.linspace(0, 2.5, 12), chunks=4), dims="pix")
    out = interpolate_irf(table, {"energy_true": 1.0, "offset": offset})  # no compute
    assert isinstance(out.data, da.Array)
    np.testing.assert_allclose(
        out.compute(scheduler="sync").values, _multilinear(1.0, np.linspace(0, 2.5, 12)), rtol=1e-12
    )


def test_bad_arguments():
    table = _table(_multilinear)
    with pytest.raises(ValueError, match="missing"):
        interpolate_irf(table, {"energy_true": 1.0})
    with pytest.raises(ValueError, match="unexpected"):
        interpolate_irf(table, {"energy_true": 1.0, "offset": 1.0, "rad": 0.1})
    with pytest.raises(TypeError, match="all as"):
        interpolate_irf(
            table,
            {"energy_true": np.ones(3), "offset": xr.DataArray(np.ones(2), dims="x")},
        )
    with pytest.raises(ValueError, match="values_scale"):
        interpolate_irf(table, {"energy_true": 1.0, "offset": 1.0}, values_scale="sqrt")


@pytest.mark.parametrize("values_scale", ["lin", "log"])
def test_outer_product_coordinates_equal_pointwise_interpolation(values_scale):
    """The separable fast path (coordinates on their own dims) equals point-by-point
    multilinear interpolation, including extrapolation and out-of-range fills."""
    rng = np.random.default_rng(3)
    axes = [
        GridAxis(
            "energy_true", np.log(np.geomspace(0.1, 100, 7)), np.log(0.05), np.log(200), True, False
        ),
        GridAxis("offset", np.linspace(0, 2.5, 6), -0.25, 2.75, False, False),
        GridAxis("rad", np.linspace(0, 1, 9), -0.1, 1.1, False, False),
    ]
    table = rng.uniform(0.01, 1, (7, 6, 9))
    energy = np.geomspace(0.03, 300, 5)[:, None, None, None]
    offsets = [rng.uniform(-0.3, 3, (1, 4, 3, 1)), rng.uniform(0, 2.5, (1, 4, 3, 1))]
    rads = [np.linspace(-0.2, 1.2, 6), rng.uniform(0, 1, (1, 4, 3, 6))]  # own dim / shared dims
    for offset in offsets:
        for rad in rads:
            grid = interpolate_table(table, axes, [energy, offset, rad], values_scale=values_scale)
            flat = [np.ravel(a).copy() for a in np.broadcast_arrays(energy, offset, rad)]
            points = interpolate_table(table, axes, flat, values_scale=values_scale)
            np.testing.assert_allclose(grid.ravel(), points, rtol=1e-12, atol=1e-300)


def _points_case_axes() -> list[GridAxis]:
    return [
        GridAxis(
            "energy", np.log(np.geomspace(0.1, 100, 7)), np.log(0.05), np.log(200), True, False
        ),
        GridAxis("fov_lon", np.linspace(-2.5, 2.5, 11), -2.75, 2.75, False, False),
        GridAxis("fov_lat", np.linspace(-2.0, 2.0, 5), -2.5, 2.5, False, False),
    ]


@pytest.mark.parametrize("values_scale", ["lin", "log"])
@pytest.mark.parametrize("fill_value", [0.0, None, -1.0])
@pytest.mark.parametrize("points_first", [False, True])
@pytest.mark.parametrize("point_axes", [(1,), (1, 2)])
def test_on_points_equals_interpolate_table(values_scale, fill_value, points_first, point_axes):
    """Interpolating at the point axes' nodes, then combining per point, equals plain
    multilinear interpolation: extrapolation, out-of-range and NaN points, clipping."""
    rng = np.random.default_rng(7)
    axes = _points_case_axes()
    table = rng.uniform(-0.2, 1.0, (7, 11, 5))  # some negative values: clipping matters
    if values_scale == "log":
        table[2, 3, 1] = 0.0  # a zero node (floored before the log)
    energy = np.geomspace(0.03, 300, 9)  # beyond the valid range on both sides
    lon = rng.uniform(-3.5, 3.5, (6, 8))
    lat = rng.uniform(-3.0, 3.0, (6, 8))
    lon[0, 0] = np.nan
    coords = [energy, lon, lat] if point_axes == (1, 2) else [energy, lon, 0.7]
    points = [coords[i] for i in point_axes]
    kwargs = dict(values_scale=values_scale, fill_value=fill_value)
    got = interpolate_on_points(
        table, axes, coords, point_axes, points, points_first=points_first, **kwargs
    )
    full = [energy[:, None, None], lon, coords[2] if point_axes == (1,) else lat]
    expected = interpolate_table(table, axes, full, **kwargs)
    expected = np.broadcast_to(expected, (9, 6, 8))
    if points_first:
        expected = np.moveaxis(expected, 0, -1)
    assert got.shape == expected.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    if fill_value is not None:
        assert (
            np.all(got[..., 0, 0] == fill_value)
            if not points_first
            else np.all(got[0, 0] == fill_value)
        )


@pytest.mark.parametrize("nan_in_table", [False, True])
def test_on_points_log_values(nan_in_table):
    """``as_log`` gives the logarithms of the log-interpolated values (before exp)."""
    rng = np.random.default_rng(9)
    axes = _points_case_axes()
    table = rng.uniform(0.1, 1.0, (7, 11, 5))
    if nan_in_table:
        table[3, 4, 2] = np.nan
    energy = np.geomspace(0.03, 300, 9)
    lon, lat = rng.uniform(-3.5, 3.5, (2, 6, 8))
    logs = interpolate_on_points(
        table,
        axes,
        [energy, None, None],
        (1, 2),
        [lon, lat],
        values_scale="log",
        fill_value=np.nan,
        as_log=True,
    )
    values = interpolate_table(
        table, axes, [energy[:, None, None], lon, lat], values_scale="log", fill_value=np.nan
    )
    np.testing.assert_allclose(np.exp(logs), values, rtol=1e-12)
    assert np.isnan(logs[0]).all() and np.isfinite(logs[3]).any()


def test_on_points_flipped_single_node_and_non_finite_tables():
    """A descending axis and a single-node point axis are handled; a table with NaNs takes
    the point-by-point path (a NaN node must not spread to other points)."""
    rng = np.random.default_rng(8)
    axes = [
        GridAxis(
            "energy", np.log(np.geomspace(0.1, 100, 4)), np.log(0.05), np.log(200), True, False
        ),
        GridAxis("offset", np.linspace(0.0, 2.5, 6), -0.25, 2.75, False, True),
        GridAxis("rad", np.array([0.3]), -np.inf, np.inf, False, False),
    ]
    table = rng.uniform(0.0, 1.0, (4, 6, 1))
    energy = np.geomspace(0.2, 50, 5)
    offset = rng.uniform(-0.5, 3.0, (3, 7))
    for point_axes, points in (((1,), [offset]), ((1, 2), [offset, np.full((3, 7), 0.3)])):
        coords = [energy, None, 0.3] if point_axes == (1,) else [energy, None, None]
        got = interpolate_on_points(table, axes, coords, point_axes, points)
        expected = interpolate_table(table, axes, [energy[:, None, None], offset, 0.3])
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    table[1, 2, 0] = np.nan
    got = interpolate_on_points(table, axes, [energy, None, 0.3], (1,), [offset])
    expected = interpolate_table(table, axes, [energy[:, None, None], offset, 0.3])
    np.testing.assert_array_equal(got, expected)
    assert np.isfinite(got).all() and (got > 0).any()


def test_aeff_on_offsets_equals_evaluate_aeff():
    table = _table(lambda e, o: np.exp(np.sin(3 * e)) * (3.0 - o) - 0.3)  # clipped where < 0
    table.attrs["units"] = "cm2"
    offsets = np.random.default_rng(2).uniform(-0.5, 3.0, (11, 13))
    energies = np.geomspace(0.05, 200, 9)
    got = evaluate_aeff_on_offsets(table, energies, offsets)
    expected = evaluate_aeff(table, energies[:, None, None], offsets[None])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)
    assert got.shape == (9, 11, 13) and got.max() < 1e-3  # in m2


def test_on_points_clips_extrapolation_below_zero_from_positive_nodes():
    """Nodes all positive, but extrapolated beyond the last node the values turn negative:
    they are clipped at zero (and nothing is clipped when they stay positive)."""
    axes = [
        GridAxis("energy", np.log([1.0, 10.0]), np.log(0.5), np.log(20.0), True, False),
        GridAxis("offset", np.array([0.0, 1.0, 2.0]), -0.5, 2.5, False, False),
    ]
    table = np.array([[3.0, 2.0, 0.2], [3.0, 2.5, 2.2]])  # the first row falls steeply
    offsets = np.array([[0.5, 1.5, 2.2, 2.45]])
    got = interpolate_on_points(table, axes, [np.array([1.0, 10.0]), None], [1], [offsets])
    expected = interpolate_table(table, axes, [np.array([1.0, 10.0])[:, None, None], offsets])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[0, 0, -1] == 0 and got[0, 0, -2] == 0 and np.all(got[1] > 2)


@pytest.mark.parametrize("steep_rows", [[0], [2, 3, 7], [0, 2, 4, 6, 8, 10], []])
def test_on_points_clips_only_the_rows_that_can_turn_negative(steep_rows):
    """Rows whose extrapolation turns negative are clipped, in runs of consecutive rows or
    (more than a few runs) all at once; the other rows keep their values exactly, and the
    result is interpolate_table's."""
    axes = [
        GridAxis(
            "energy", np.log(np.geomspace(1.0, 10.0, 12)), np.log(0.5), np.log(20.0), True, False
        ),
        GridAxis("offset", np.array([0.0, 1.0, 2.0]), -0.5, 2.5, False, False),
    ]
    table = np.tile([3.0, 2.5, 2.2], (12, 1))
    table[steep_rows] = [3.0, 2.0, 0.2]  # below zero beyond offset 2.1
    energy = np.geomspace(1.0, 10.0, 12)
    offsets = np.array([[0.5, 1.5, 2.2, 2.45]])
    got = interpolate_on_points(table, axes, [energy, None], [1], [offsets])
    expected = interpolate_table(table, axes, [energy[:, None, None], offsets])
    np.testing.assert_array_equal(got == 0, expected == 0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.all(got[steep_rows, 0, 2:] == 0)
    gentle = np.setdiff1d(np.arange(12), steep_rows)
    expected_gentle = np.broadcast_to([2.75, 2.35, 2.14, 2.065], (gentle.size, 4))
    np.testing.assert_allclose(got[gentle, 0], expected_gentle, rtol=1e-12)


def test_on_points_extrapolation_below_zero_only_outside_the_valid_range():
    """Values that only turn negative beyond the valid range: filled there (the valid points
    keep their values), and clipped at zero when extrapolating everywhere
    (``fill_value=None``): as interpolate_table in both cases."""
    axes = [
        GridAxis("energy", np.log([1.0, 10.0]), np.log(0.5), np.log(20.0), True, False),
        GridAxis("offset", np.array([0.0, 1.0, 2.0]), -0.5, 2.5, False, False),
    ]
    table = np.array([[3.0, 2.0, 1.0], [3.0, 2.5, 2.2]])  # row 0 reaches 0 at offset 3
    offsets = np.array([[0.5, 2.2, 2.5, 3.5, np.nan]])
    energy = np.array([1.0, 10.0])
    for fill_value in (0.0, None):
        got = interpolate_on_points(
            table, axes, [energy, None], [1], [offsets], fill_value=fill_value
        )
        expected = interpolate_table(
            table, axes, [energy[:, None, None], offsets], fill_value=fill_value
        )
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert got[0, 0, 2] == pytest.approx(0.5) and np.all(got[:, 0, :3] > 0)
    assert got[0, 0, 3] == 0  # extrapolated to -0.5 everywhere: clipped


def test_on_points_many_rows_gathers_per_point():
    """Tables with many rows per point (no small blocked products) give the same values."""
    rng = np.random.default_rng(11)
    axes = [
        GridAxis("rad", np.linspace(0, 1, 5000), -1e-4, 1 + 1e-4, False, False),
        GridAxis("offset", np.linspace(0, 2.5, 6), -0.25, 2.75, False, False),
    ]
    table = rng.uniform(0.0, 1.0, (5000, 6))
    rad, offsets = np.linspace(0, 1, 4000), rng.uniform(0, 3, (3, 5))
    got = interpolate_on_points(table, axes, [rad, None], [1], [offsets])
    expected = interpolate_table(table, axes, [rad[:, None, None], offsets])
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_even_axes_locate_points_as_the_binary_search():
    """Nodes evenly spaced up to float32 rounding (as in DL3 files) are located by arithmetic
    in the very cells a binary search finds: points on, just below and just above every node,
    outside the axis, infinite and NaN included."""
    from gammaxr.irf.interpolate import _even_step, _locate, _locate_even

    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(3, 60))
        start, spacing = rng.uniform(-3, 1), rng.uniform(0.01, 0.5)
        nodes = (
            (start + spacing * np.arange(n) + rng.normal(0, 1e-3 * spacing, n))
            .astype(np.float32)
            .astype(float)
        )
        step = _even_step(nodes)
        assert step is not None and abs(step - spacing) < 0.01 * spacing
        x = np.concatenate(
            [
                rng.uniform(nodes[0] - 1, nodes[-1] + 1, 2000),
                nodes,
                np.nextafter(nodes, -np.inf),
                np.nextafter(nodes, np.inf),
                [np.nan, -np.inf, np.inf],
            ]
        )
        expected = np.searchsorted(nodes[1:-1], x, side="right")
        np.testing.assert_array_equal(_locate_even(nodes, step, x), expected)
    uneven = np.array([0.0, 1.0, 1.5, 4.0])
    assert _even_step(uneven) is None and _even_step(np.array([0.0, 1.0])) is None
    # grid_axis marks even axes; _locate gives the same cells and weights either way
    axis = GridAxis("fov_lon", nodes, nodes[0], nodes[-1], False, False, step)
    search = GridAxis("fov_lon", nodes, nodes[0], nodes[-1], False, False, None)
    x = rng.uniform(nodes[0] - 1, nodes[-1] + 1, 5000)
    for got, want in zip(_locate(axis, x), _locate(search, x), strict=True):
        np.testing.assert_array_equal(got, want)


def test_grid_axis_is_shared_between_equal_axes_and_read_only():
    """Equal axes of two tables give the one GridAxis (memoised), with read-only nodes; a
    different axis, a different interp or bad values are never taken from the memo."""
    first, second = _table(_multilinear), _table(lambda e, o: 2.0 * _multilinear(e, o))
    axis = grid_axis(first, "energy_true")
    assert grid_axis(second, "energy_true") is axis
    with pytest.raises(ValueError, match="read-only"):
        axis.nodes[0] = 0.0
    binned = _table(_multilinear, offset_nodes=False)
    assert grid_axis(binned, "offset") is not grid_axis(first, "offset")
    assert grid_axis(binned, "offset").hi == pytest.approx(3.0)  # its own outer edge
    assert grid_axis(first, "offset").hi == pytest.approx(2.75)  # nodes: half a step beyond
    bad = first.assign_coords(energy_true_lo=("energy_true", -first["energy_true_lo"].values))
    for _ in range(2):  # a failure is raised every time, not remembered
        with pytest.raises(ValueError, match="positive"):
            grid_axis(bad, "energy_true")
