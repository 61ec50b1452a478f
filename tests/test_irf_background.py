"""Background rates: evaluation and integration over reconstructed-energy bins."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from astropy.table import Table

from gammaxr.geom.axes import axis_coords
from gammaxr.geom.fov import sky_to_fov
from gammaxr.io.irf_fits import read_irf_hdu
from gammaxr.irf import (
    evaluate_bkg_2d,
    evaluate_bkg_3d,
    integrate_bkg_energy,
    loglog_bin_integral,
    loglog_integral_from_logs,
)
from gammaxr.irf.interpolate import grid_axis, outside_valid_range

AMPLITUDE = 2e-5  # s-1 MeV-1 sr-1 at 1 TeV
MEV_PER_TEV = 1e6


def _bkg_2d(index: float) -> xr.DataArray:
    coords = axis_coords("energy", np.geomspace(0.1, 100, 19), "TeV", lohi=True)
    coords |= axis_coords("offset", np.linspace(0, 3, 7), "deg", lohi=True)
    e = coords["energy"].values[:, None]
    o = coords["offset"].values[None, :]
    rate = AMPLITUDE * e**-index * np.exp(-0.7 * o)
    return xr.DataArray(
        rate, dims=("energy", "offset"), coords=coords, attrs={"units": "s-1 MeV-1 sr-1"}
    )


def _analytic(edges, index, offset):
    lo, hi = edges[:-1], edges[1:]
    if index == 1:
        integral = np.log(hi / lo)
    else:
        integral = (hi ** (1 - index) - lo ** (1 - index)) / (1 - index)
    return AMPLITUDE * MEV_PER_TEV * integral * np.exp(-0.7 * np.asarray(offset))[..., None]


@pytest.mark.parametrize("index", [2.7, 1.0, 0.0, -1.5])
def test_power_law_integral_is_exact(index):
    bkg = _bkg_2d(index)
    edges = np.geomspace(0.5, 50, 11)
    offset = np.array([[0.0, 0.33], [1.7, 2.9]])
    rate = integrate_bkg_energy(bkg, edges, offset=offset)
    assert rate.shape == (2, 2, 10)
    np.testing.assert_allclose(rate, _analytic(edges, index, offset), rtol=1e-10)
    oversampled = integrate_bkg_energy(bkg, edges, offset=offset, oversampling=3)
    np.testing.assert_allclose(oversampled, rate, rtol=1e-10)


def test_oversampling_converges_for_curved_spectra():
    bkg = _bkg_2d(2.0)
    e = bkg["energy"].values[:, None]
    # log-parabola: not a power law between the edges of a wide bin
    bkg = bkg.copy(data=bkg.values * e ** (-0.4 * np.log(e)))
    edges = np.array([0.3, 3.0, 30.0])
    # the integral of the interpolated rate, on a fine grid
    fine = np.geomspace(0.3, 30.0, 20001)
    centre = np.sqrt(fine[1:] * fine[:-1])
    density = evaluate_bkg_2d(bkg, centre, 0.0) * MEV_PER_TEV
    truth = np.array([np.sum((density * np.diff(fine))[m]) for m in (centre < 3.0, centre > 3.0)])
    errors = [
        np.max(np.abs(integrate_bkg_energy(bkg, edges, offset=0.0, oversampling=n) / truth - 1))
        for n in (1, 4, 16)
    ]
    assert errors[0] > 0.05
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < errors[0] / 30


def test_bins_outside_the_table_are_zero():
    bkg = _bkg_2d(2.7)
    edges = np.array([0.01, 0.05, 0.1, 1.0, 100.0, 200.0])
    rate = integrate_bkg_energy(bkg, edges, offset=1.0)
    assert rate[0] == 0 and rate[-1] == 0
    assert rate[1] == 0  # one end outside the table: no power law to integrate
    np.testing.assert_allclose(rate[2:4], _analytic(edges, 2.7, 1.0)[2:4], rtol=1e-10)
    assert np.all(integrate_bkg_energy(bkg, np.geomspace(1, 10, 3), offset=3.5) == 0)


def test_loglog_bin_integral_edge_cases():
    lo, hi = np.array([1.0, 1.0, 1.0, 2.0]), np.array([2.0, 2.0, 2.0, 3.0])
    values_lo = np.array([1.0, 0.0, 1.0, 2.0])
    values_hi = np.array([0.5, 1.0, 0.0, 4.0 / 3.0])  # index 1 and index 1 again
    out = loglog_bin_integral(lo, hi, values_lo, values_hi)
    assert out[0] == pytest.approx(np.log(2.0))
    assert out[1] == 0 and out[2] == 0
    assert out[3] == pytest.approx(4.0 * np.log(1.5))


def test_loglog_integral_from_logs_equal_and_extreme_ends():
    lo, hi = np.array([1.0, 1.0, 1.0, 2.0]), np.array([2.0, 2.0, 2.0, 3.0])
    log_lo = np.log([1.0, 1.0, 3.0, 2.0])
    log_hi = np.log([0.5, 0.5 * (1 + 1e-12), 1e-300, 4.0 / 3.0])
    out = loglog_integral_from_logs(lo, hi, log_lo, log_hi)
    # a flat E * f(E) (equal a and b) and a nearly flat one: no cancellation
    np.testing.assert_allclose(out[:2], np.log(2.0), rtol=1e-11)
    # a steep power law: the integral from 1 to 2 of 3 * E ** -g with 2 ** -g = 1e-300 / 3
    g = -np.log2(1e-300 / 3.0)
    assert out[2] == pytest.approx(3.0 * (1 - 2.0 ** (1 - g)) / (g - 1), rel=1e-10)
    assert out[3] == pytest.approx(4.0 * np.log(1.5))
    assert loglog_integral_from_logs(1.0, 2.0, -np.inf, 0.0) != loglog_integral_from_logs(
        1.0, 2.0, -np.inf, 0.0
    )  # NaN: the caller decides


def _bkg_3d() -> xr.DataArray:
    coords = axis_coords("energy", np.geomspace(0.1, 100, 10), "TeV", lohi=True)
    coords |= axis_coords("fov_lon", np.linspace(-3, 3, 13), "deg", lohi=True)
    coords |= axis_coords("fov_lat", np.linspace(-3, 3, 13), "deg", lohi=True)
    e = coords["energy"].values[:, None, None]
    x = coords["fov_lon"].values[None, :, None]
    y = coords["fov_lat"].values[None, None, :]
    rate = AMPLITUDE * e**-2.5 * np.exp(-0.3 * x + 0.1 * y)
    return xr.DataArray(
        rate,
        dims=("energy", "fov_lon", "fov_lat"),
        coords=coords,
        attrs={"units": "s-1 MeV-1 sr-1", "fov_alignment": "RADEC"},
    )


def test_bkg_3d_integral_with_dataarray_coordinates(raise_on_compute):
    bkg = _bkg_3d()
    x = np.linspace(-2.5, 2.5, 12).reshape(3, 4)
    y = 0.5 * x.T[:3, :3].repeat(2, axis=1)[:, :4]
    fov_lon = xr.DataArray(da.from_array(x, chunks=(1, 4)), dims=("lat", "lon"))
    fov_lat = xr.DataArray(y, dims=("lat", "lon"))
    edges = np.geomspace(1, 10, 5)
    rate = integrate_bkg_energy(bkg, edges, fov_lon=fov_lon, fov_lat=fov_lat)  # graph only
    assert rate.dims == ("lat", "lon", "energy")
    assert rate.attrs["units"] == "s-1 sr-1"
    np.testing.assert_allclose(rate["energy_hi"].values, edges[1:])
    values = rate.compute(scheduler="sync").values
    expected = (
        AMPLITUDE
        * MEV_PER_TEV
        * (edges[1:] ** -1.5 - edges[:-1] ** -1.5)
        / -1.5
        * np.exp(-0.3 * x + 0.1 * y)[..., None]
    )
    np.testing.assert_allclose(values, expected, rtol=1e-10)
    point = evaluate_bkg_3d(bkg, 2.0, 0.7, -0.4)
    assert point == pytest.approx(AMPLITUDE * 2.0**-2.5 * np.exp(-0.21 - 0.04))


def test_bad_input():
    with pytest.raises(ValueError, match="needs offset"):
        integrate_bkg_energy(_bkg_2d(2.0), [1, 2])
    with pytest.raises(ValueError, match="fov_lon and fov_lat"):
        integrate_bkg_energy(_bkg_3d(), [1, 2], offset=1.0)
    with pytest.raises(ValueError, match="increasing"):
        integrate_bkg_energy(_bkg_2d(2.0), [2, 1], offset=1.0)
    with pytest.raises(ValueError, match="oversampling"):
        integrate_bkg_energy(_bkg_2d(2.0), [1, 2], offset=1.0, oversampling=0)


@pytest.mark.parametrize("oversampling", [1, 3])
def test_weights_and_out_write_the_same_rates_energy_first(oversampling):
    bkg = _bkg_3d()
    rng = np.random.default_rng(4)
    fov_lon = rng.uniform(-3.2, 3.2, (7, 9))  # some points outside the table (zero rate)
    fov_lat = rng.uniform(-3.2, 3.2, (7, 9))
    edges = np.geomspace(0.05, 200, 9)  # bins below and above the table too
    rate = integrate_bkg_energy(
        bkg, edges, fov_lon=fov_lon, fov_lat=fov_lat, oversampling=oversampling
    )
    assert np.any(rate == 0) and np.any(rate > 0)
    weights = np.linspace(1.0, 2.0, 7)[:, None]
    out = np.full((8, 7, 9), -1.0, dtype=np.float32)
    returned = integrate_bkg_energy(
        bkg,
        edges,
        fov_lon=fov_lon,
        fov_lat=fov_lat,
        oversampling=oversampling,
        weights=weights,
        out=out,
    )
    assert returned is out
    expected = (np.moveaxis(rate, -1, 0) * weights).astype(np.float32)
    np.testing.assert_array_equal(out, expected)


def test_rows_of_a_table_with_non_finite_nodes_are_interpolated_point_by_point():
    bkg = _bkg_3d()
    table = bkg.values.copy()
    table[3, 0, 0] = np.nan  # a corner node no point reaches: no NaN anywhere
    broken = bkg.copy(data=table)
    x, y = np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-2, 2, 4))
    edges = np.geomspace(1, 10, 4)
    rate = integrate_bkg_energy(broken, edges, fov_lon=x, fov_lat=y)
    assert np.all(np.isfinite(rate))
    np.testing.assert_allclose(
        rate, integrate_bkg_energy(bkg, edges, fov_lon=x, fov_lat=y), rtol=1e-12
    )


def test_weights_and_out_are_for_numpy_coordinates():
    bkg = _bkg_3d()
    x = xr.DataArray(np.zeros((2, 3)), dims=("lat", "lon"))
    with pytest.raises(TypeError, match="numpy coordinates only"):
        integrate_bkg_energy(bkg, [1, 2], fov_lon=x, fov_lat=x, out=np.empty((1, 2, 3)))
    with pytest.raises(ValueError, match="out must be a C-contiguous array of shape"):
        integrate_bkg_energy(
            bkg, [1, 2], fov_lon=np.zeros((2, 3)), fov_lat=np.zeros((2, 3)), out=np.empty((2, 3, 1))
        )


@pytest.mark.hess
def test_hess_background_map_matches_gammapy(hess_dir, reference_dir):
    """Per-pixel background of run 23523 on the reference grid (no FoV-fit norm applied).

    The H.E.S.S. DR1 bkg_3d tables are tabulated against the FoV longitude with the opposite
    sign to the declared RADEC frame (Gammapy: REVERSE_LON_RADEC, see
    ``gammaxr.io.irf_fits``), so they are evaluated at ``-fov_lon``; choosing that is the
    reduction's job, this test checks evaluation and energy integration.
    """
    ref = np.load(reference_dir / "crab_runs.npz")
    obs = Table.read(hess_dir / "obs-index.fits.gz")
    row = obs[obs["OBS_ID"] == 23523][0]
    path = hess_dir / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz"
    with fits.open(path) as hdul:
        bkg = read_irf_hdu(hdul["BKG"], "bkg_3d", str(path))
    lon, lat = np.meshgrid(ref["lon"], ref["lat"])
    fov_lon, fov_lat = sky_to_fov(lon, lat, row["RA_PNT"], row["DEC_PNT"])
    rate = integrate_bkg_energy(bkg, ref["energy_edges"], fov_lon=-fov_lon, fov_lat=fov_lat)
    dlon = np.deg2rad(abs(ref["lon"][1] - ref["lon"][0]))
    half = np.deg2rad(abs(ref["lat"][1] - ref["lat"][0])) / 2
    lat_rad = np.deg2rad(ref["lat"])
    solid_angle = dlon * (np.sin(lat_rad + half) - np.sin(lat_rad - half))
    counts = np.moveaxis(rate, -1, 0) * solid_angle[None, :, None] * row["ONTIME"]
    expected = ref["background_23523"]
    np.testing.assert_allclose(counts, expected, rtol=1e-3)
    assert counts.sum() == pytest.approx(expected.sum(), rel=1e-4)


def test_edge_values_integrate_as_the_loglog_formula():
    """The (b - a) / d form of the bin integral agrees with loglog_integral_from_logs to
    1e-12 on every point, also where d changes sign across the points or is zero (those
    points by the loglog formula itself), and leaves to it the bins whose rows are not clean."""
    from gammaxr.irf.background import _EdgeValues, loglog_integral_from_logs

    rng = np.random.default_rng(11)
    n = 5000
    energy = np.geomspace(0.5, 50, 11)
    # -1: E * rate constant, d = 0 on every point; -1 with scatter: d of both signs, some
    # of them below SMALL
    for index, scatter in ((-2.7, 0.05), (-1.0, 0.0), (0.5, 0.05), (-1.0, 0.05), (-1.0, 1e-4)):
        rows = [np.log(3e-4 * e**index) + rng.normal(0, scatter, n) for e in energy]
        edges = _EdgeValues(n)
        edges.push(rows[0], energy[0], True)
        for k in range(energy.size - 1):
            edges.push(rows[k + 1], energy[k + 1], True)
            got = np.full(n, np.nan)
            assert edges.integral(energy[k], energy[k + 1], out=got)
            want = loglog_integral_from_logs(energy[k], energy[k + 1], rows[k], rows[k + 1])
            np.testing.assert_allclose(got, want, rtol=1e-12)
    edges = _EdgeValues(3)
    edges.push(np.log([1.0, 2.0, 3.0]), 1.0, True)
    edges.push(np.array([0.0, np.nan, 1.0]), 2.0, False)  # not clean: the general formula
    out = np.full(3, 7.0)
    assert not edges.integral(1.0, 2.0, out=out)
    assert np.all(out == 7.0)  # untouched


def test_points_outside_the_table_change_nothing_inside():
    """Points outside the table's spatial range are zero in every bin, and the points inside
    get the same rates as when they are integrated alone (no outside point: nothing to
    zero)."""
    bkg = _bkg_3d()
    rng = np.random.default_rng(8)
    fov_lon, fov_lat = rng.uniform(-3.5, 3.5, (2, 400))
    edges = np.geomspace(0.5, 50, 11)
    axes = [grid_axis(bkg, d) for d in ("fov_lon", "fov_lat")]
    outside = outside_valid_range(axes[0], fov_lon) | outside_valid_range(axes[1], fov_lat)
    assert outside.any() and not outside.all()
    rate = integrate_bkg_energy(bkg, edges, fov_lon=fov_lon, fov_lat=fov_lat)
    assert np.all(rate[outside] == 0)
    alone = integrate_bkg_energy(bkg, edges, fov_lon=fov_lon[~outside], fov_lat=fov_lat[~outside])
    np.testing.assert_allclose(rate[~outside], alone, rtol=1e-13, atol=0)
    assert np.all(alone > 0)
