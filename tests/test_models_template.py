"""Spatial template model: normalisation, interpolation, sampling, FITS interchange."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from gammaxr.models import (
    TemplateSpatialModel,
    integrate_geom,
    integrate_pixels,
    read_template_fits,
    write_template_fits,
)
from gammaxr.models.pixels import pixel_solid_angle


@pytest.fixture
def template_map():
    lon = np.arange(-1.0, 1.0 + 1e-9, 0.05)
    lat = np.arange(-0.5, 0.5 + 1e-9, 0.05)
    lon2, lat2 = np.meshgrid(lon, lat)
    data = np.exp(-((lon2 - 0.2) ** 2 + lat2**2) / 0.1) + 0.3 * (lon2 < -0.5)
    return xr.DataArray(
        data,
        coords={"lat": ("lat", lat, {"units": "deg"}), "lon": ("lon", lon, {"units": "deg"})},
        dims=("lat", "lon"),
        attrs={"frame": "galactic", "units": ""},
    )


def test_normalised_and_exact_on_its_own_grid(template_map):
    m = TemplateSpatialModel(template_map)
    lon, lat = template_map.lon.values, template_map.lat.values
    omega = pixel_solid_angle(lat, 0.05, 0.05)[:, None]
    np.testing.assert_allclose(
        m(*np.meshgrid(lon, lat)) * omega,
        template_map.values * omega / (template_map.values * omega).sum(),
        rtol=1e-12,
    )
    assert integrate_pixels(m, lon, lat, "galactic", oversampling=1).sum() == pytest.approx(1.0)
    frac = integrate_geom(m, template_map)
    assert frac.dims == ("lat", "lon") and float(frac.sum()) == pytest.approx(1.0)
    assert m.position == pytest.approx((0.0, 0.0))
    assert m.frame == "galactic"


def test_bilinear_between_centres_and_zero_outside(template_map):
    m = TemplateSpatialModel(template_map)
    a, b = m(0.0, 0.0), m(0.05, 0.0)
    assert m(0.025, 0.0) == pytest.approx(0.5 * (a + b))
    assert m(1.02, 0.0) == pytest.approx(m(1.0, 0.0))  # inside the outer half pixel
    assert m(1.03, 0.0) == 0.0
    assert m(360.0, 0.0) == pytest.approx(a)  # longitude wrap


def test_shift_moves_the_map(template_map):
    m = TemplateSpatialModel(template_map, lon_0=0.3, lat_0=-0.1)
    ref = TemplateSpatialModel(template_map)
    assert m(0.5, -0.1) == pytest.approx(ref(0.2, 0.0))
    assert m.evaluation_radius > ref.evaluation_radius * 0.9


def test_not_normalised_needs_surface_brightness(template_map):
    m = TemplateSpatialModel(template_map.assign_attrs(units="deg-2"), normalize=False)
    assert m(0.2, 0.0) == pytest.approx(
        template_map.sel(lon=0.2, lat=0.0, method="nearest") * (180 / np.pi) ** 2
    )
    with pytest.raises(ValueError, match="sr-1"):
        TemplateSpatialModel(template_map.assign_attrs(units="m"), normalize=False)
    with pytest.raises(ValueError, match=">= 0"):
        TemplateSpatialModel(-template_map)


def test_samples_follow_template(template_map):
    m = TemplateSpatialModel(template_map)
    n = 100000
    lon, lat = m.sample(n, rng=5)
    lon = np.mod(lon + 180, 360) - 180
    edges_lon = np.arange(-1.025, 1.03, 0.05)
    edges_lat = np.arange(-0.525, 0.53, 0.05)
    counts, _, _ = np.histogram2d(lat, lon, bins=[edges_lat, edges_lon])
    expected = n * integrate_pixels(
        m, template_map.lon.values, template_map.lat.values, "galactic", oversampling=1
    )
    use = expected > 10
    red_chi2 = ((counts[use] - expected[use]) ** 2 / expected[use]).sum() / use.sum()
    assert 0.8 < red_chi2 < 1.25


def test_fits_round_trip(template_map, tmp_path):
    m = TemplateSpatialModel(template_map)
    path = tmp_path / "t.fits"
    write_template_fits(m.map, path)
    back = read_template_fits(path)
    assert back.attrs["frame"] == "galactic" and back.attrs["units"] == "sr-1"
    np.testing.assert_allclose(back.lon, template_map.lon, atol=1e-9)
    np.testing.assert_allclose(back.lat, template_map.lat, atol=1e-9)
    m2 = TemplateSpatialModel(back)
    np.testing.assert_allclose(m2.map.values, m.map.values, rtol=1e-9)
    header = fits.getheader(path)
    assert header["CTYPE1"] == "GLON-CAR" and header["CRVAL2"] == 0.0


def test_fits_reader_refuses_irregular_grids(template_map, tmp_path):
    path = tmp_path / "tan.fits"
    header = fits.Header()
    header.update(CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRPIX1=10, CRPIX2=10)
    header.update(CRVAL1=83.6, CRVAL2=22.0, CDELT1=-0.02, CDELT2=0.02)
    fits.PrimaryHDU(np.ones((20, 20)), header=header).writeto(path)
    with pytest.raises(ValueError, match="CAR"):
        read_template_fits(path)
    path2 = tmp_path / "car_offset.fits"
    header.update(CTYPE1="RA---CAR", CTYPE2="DEC--CAR")
    fits.PrimaryHDU(np.ones((20, 20)), header=header).writeto(path2)
    with pytest.raises(ValueError, match="regular lon/lat grid"):
        read_template_fits(path2)


def test_evaluate_stays_lazy(template_map, raise_on_compute):
    m = TemplateSpatialModel(template_map)
    lon = da.from_array(np.linspace(-1, 1, 20), chunks=5)
    lat = da.from_array(np.linspace(-0.5, 0.5, 20), chunks=5)
    assert isinstance(m(lon, lat), da.Array)
    assert isinstance(m(xr.DataArray(lon, dims="x"), xr.DataArray(lat, dims="x")).data, da.Array)
