import numpy as np
import pytest
import xarray as xr
from astropy import units as u
from astropy.coordinates import SkyCoord, SkyOffsetFrame
from hypothesis import given
from hypothesis import strategies as st

from gammaxr.geom import SkyGrid
from gammaxr.geom.fov import fov_to_sky, sky_to_fov, sky_to_fov_and_offset
from gammaxr.geom.sky import angular_separation
from gammaxr.reduce.maps import pixel_offsets


@pytest.mark.parametrize("pointing", [(83.63, 22.01), (228.3, -59.1), (359.8, 0.3), (10.0, 80.0)])
def test_sky_to_fov_matches_astropy_offset_frame_with_reversed_lon(pointing):
    rng = np.random.default_rng(1)
    lon0, lat0 = pointing
    frame = SkyOffsetFrame(origin=SkyCoord(lon0 * u.deg, lat0 * u.deg))
    fov = SkyCoord(rng.uniform(-3, 3, 50) * u.deg, rng.uniform(-3, 3, 50) * u.deg, frame=frame)
    sky = fov.icrs
    fov_lon, fov_lat = sky_to_fov(sky.ra.deg, sky.dec.deg, lon0, lat0)
    np.testing.assert_allclose(fov_lon, -fov.lon.wrap_at(180 * u.deg).deg, atol=1e-9)
    np.testing.assert_allclose(fov_lat, fov.lat.deg, atol=1e-9)


def test_fov_lon_grows_towards_decreasing_ra():
    fov_lon, fov_lat = sky_to_fov(np.array([84.0, 83.0]), np.array([0.0, 0.0]), 83.5, 0.0)
    assert fov_lon[0] < 0 < fov_lon[1]
    np.testing.assert_allclose(fov_lat, 0.0, atol=1e-12)


@given(st.floats(0, 360), st.floats(-85, 85), st.floats(-5, 5), st.floats(-5, 5))
def test_fov_round_trip(lon0, lat0, fx, fy):
    lon, lat = fov_to_sky(fx, fy, lon0, lat0)
    back = sky_to_fov(lon, lat, lon0, lat0)
    np.testing.assert_allclose(back, (fx, fy), atol=1e-8)


@pytest.mark.parametrize("pointing", [(83.63, 22.01), (266.4, -28.9), (10.0, 70.0), (0.0, 0.0)])
def test_fov_and_offset_together_equal_each_alone(pointing):
    """The FoV coordinates and offsets computed together are exactly those computed apart
    (the same operations, shared)."""
    grid = SkyGrid.from_center(pointing, 6.0, 0.1, frame="icrs")
    lon, lat = grid.lon[None, :], grid.lat[:, None]
    fov_lon, fov_lat, offset = sky_to_fov_and_offset(lon, lat, *pointing)
    alone_lon, alone_lat = sky_to_fov(lon, lat, *pointing)
    np.testing.assert_array_equal(fov_lon, alone_lon)
    np.testing.assert_array_equal(fov_lat, alone_lat)
    np.testing.assert_array_equal(offset, angular_separation(*pointing, lon, lat))
    np.testing.assert_array_equal(offset, grid.separation_values(pointing, "icrs"))


def _bkg_table(dims, alignment="RADEC"):
    shape = tuple(3 for _ in dims)
    return xr.DataArray(np.ones(shape), dims=dims, attrs={"fov_alignment": alignment})


def test_pixel_offsets_give_fov_coordinates_only_where_the_background_uses_them():
    """FoV coordinates come with the offsets for a RA/Dec-aligned bkg_3d table on an icrs
    grid; otherwise (no table, bkg_2d, ALTAZ alignment, a galactic grid) only the offsets,
    the same in every case."""
    pointing = (83.63, 22.01)
    icrs = SkyGrid.from_center(pointing, 3.0, 0.1, frame="icrs")
    bkg_3d = _bkg_table(("energy", "fov_lon", "fov_lat"))
    offset, fov = pixel_offsets(icrs, pointing, bkg_3d)
    expected = icrs.separation_values(pointing, "icrs")
    np.testing.assert_array_equal(offset, expected)
    alone = sky_to_fov(icrs.lon[None, :], icrs.lat[:, None], *pointing)
    for got, one in zip(fov, alone, strict=True):
        np.testing.assert_array_equal(got, one)
    reversed_lon = _bkg_table(("energy", "fov_lon", "fov_lat"), "REVERSE_LON_RADEC")
    assert pixel_offsets(icrs, pointing, reversed_lon)[1] is not None
    for bkg in (None, _bkg_table(("energy", "offset")), _bkg_table(bkg_3d.dims, "ALTAZ")):
        offset, fov = pixel_offsets(icrs, pointing, bkg)
        assert fov is None
        np.testing.assert_array_equal(offset, expected)
    galactic = SkyGrid.from_center((184.56, -5.78), 3.0, 0.1, frame="galactic")
    offset, fov = pixel_offsets(galactic, pointing, bkg_3d)
    assert fov is None
    np.testing.assert_array_equal(offset, galactic.separation_values(pointing, "icrs"))
