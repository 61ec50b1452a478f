import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, SkyOffsetFrame
from hypothesis import given
from hypothesis import strategies as st

from gammaxr.geom.fov import fov_to_sky, sky_to_fov


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
