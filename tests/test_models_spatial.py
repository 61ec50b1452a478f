"""Spatial models: normalisation on the sphere, shape conventions, sampling, pixel integrals."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from scipy import stats

from gammaxr.models import (
    DiskSpatialModel,
    GaussianSpatialModel,
    PointSpatialModel,
    ShellSpatialModel,
    integrate_pixels,
)
from gammaxr.models.sphere import (
    offset_by,
    one_minus_cos_separation,
    position_angle,
    separation,
    transform_lonlat,
)

EXTENDED = {
    "gauss": GaussianSpatialModel(lon_0=10, lat_0=40, sigma=0.3),
    "gauss_big": GaussianSpatialModel(lon_0=10, lat_0=-60, sigma=25.0),
    "gauss_elong": GaussianSpatialModel(lon_0=10, lat_0=40, sigma=0.3, e=0.8, phi=30),
    "gauss_elong_big": GaussianSpatialModel(lon_0=200, lat_0=85, sigma=15, e=0.95, phi=-70),
    "disk": DiskSpatialModel(lon_0=10, lat_0=40, r_0=0.5),
    "disk_hard": DiskSpatialModel(lon_0=10, lat_0=40, r_0=0.5, edge_width=0.0),
    "disk_soft_elong": DiskSpatialModel(
        lon_0=10, lat_0=40, r_0=0.5, e=0.7, phi=-50, edge_width=0.8
    ),
    "disk_big": DiskSpatialModel(lon_0=10, lat_0=40, r_0=20, edge_width=0.5),
    "shell": ShellSpatialModel(lon_0=10, lat_0=40, radius=0.5, width=0.2),
    "shell_big": ShellSpatialModel(lon_0=10, lat_0=40, radius=30, width=10),
}


def _polar_integral(model, radius, n_r=1500, n_pa=720):
    """Integral of the model over a cap of ``radius`` deg around its centre (midpoint rule)."""
    ds = radius / n_r
    s = (np.arange(n_r) + 0.5) * ds
    pa = np.arange(n_pa) * 360.0 / n_pa
    sep, ang = np.meshgrid(s, pa)
    lon, lat = offset_by(model.lon_0.value, model.lat_0.value, ang, sep)
    w = np.sin(np.deg2rad(sep)) * np.deg2rad(ds) * np.deg2rad(360.0 / n_pa)
    return float((model(lon, lat) * w).sum())


@pytest.mark.parametrize("key", EXTENDED)
def test_normalised_to_one_on_the_sphere(key):
    m = EXTENDED[key]
    # (a hard disk edge must fall on a cell boundary of the midpoint rule)
    radius = 0.75 if key == "disk_hard" else min(180.0, 1.3 * m.evaluation_radius)
    total = _polar_integral(m, radius)
    # a smooth-edged disk follows Gammapy's normalisation (that of the hard disk)
    expected = m.integral_over_sphere() if isinstance(m, DiskSpatialModel) else 1.0
    # the shell profile has square-root edges, which the midpoint rule resolves to ~3e-5
    assert total == pytest.approx(expected, abs=1e-4)
    inside = _polar_integral(m, min(180.0, m.evaluation_radius))
    assert inside > 0.999


def test_sphere_helpers_agree_with_astropy():
    rng = np.random.default_rng(0)
    lon1, lon2 = rng.uniform(0, 360, (2, 50))
    lat1, lat2 = rng.uniform(-89, 89, (2, 50))
    c1, c2 = SkyCoord(lon1, lat1, unit="deg"), SkyCoord(lon2, lat2, unit="deg")
    np.testing.assert_allclose(separation(lon1, lat1, lon2, lat2), c1.separation(c2).deg, atol=1e-9)
    versine = one_minus_cos_separation(lon1, lat1, lon2, lat2)
    np.testing.assert_allclose(versine, 1 - np.cos(c1.separation(c2).rad), atol=1e-12)
    pa = position_angle(lon1, lat1, lon2, lat2)
    np.testing.assert_allclose(np.mod(pa, 360), c1.position_angle(c2).deg, atol=1e-8)
    lon3, lat3 = offset_by(lon1, lat1, pa, separation(lon1, lat1, lon2, lat2))
    np.testing.assert_allclose(separation(lon3, lat3, lon2, lat2), 0, atol=1e-8)
    glon, glat = transform_lonlat(lon1, lat1, "icrs", "galactic")
    g = c1.galactic
    np.testing.assert_allclose(separation(glon, glat, g.l.deg, g.b.deg), 0, atol=1e-9)


def test_position_angle_is_east_of_north():
    assert position_angle(10.0, 0.0, 10.0, 1.0) == pytest.approx(0.0)
    assert position_angle(10.0, 0.0, 11.0, 0.0) == pytest.approx(90.0)
    lon, lat = offset_by(10.0, 0.0, 90.0, 2.0)
    assert (lon, lat) == pytest.approx((12.0, 0.0))


@pytest.mark.parametrize("phi", [0.0, 90.0, 30.0])
def test_gaussian_major_axis_along_phi(phi):
    sigma, e = 0.4, 0.8
    minor = sigma * np.sqrt(1 - e**2)
    m = GaussianSpatialModel(lon_0=50, lat_0=30, sigma=sigma, e=e, phi=phi)
    peak = m(50.0, 30.0)
    x = 0.3
    major_pt = offset_by(50.0, 30.0, phi, x)
    minor_pt = offset_by(50.0, 30.0, phi + 90.0, x)
    opposite = offset_by(50.0, 30.0, phi + 180.0, x)

    def profile(width):
        return np.exp(-0.5 * (1 - np.cos(np.deg2rad(x))) / (1 - np.cos(np.deg2rad(width))))

    assert m(*major_pt) / peak == pytest.approx(profile(sigma), rel=1e-10)
    assert m(*minor_pt) / peak == pytest.approx(profile(minor), rel=1e-10)
    assert m(*opposite) == pytest.approx(m(*major_pt), rel=1e-10)
    # small-angle normalisation: peak ~ 1 / (2 pi sigma minor)
    assert peak == pytest.approx(1 / (2 * np.pi * np.deg2rad(sigma) * np.deg2rad(minor)), rel=1e-4)


def test_phi_zero_is_elongated_north_south():
    m = GaussianSpatialModel(lon_0=0, lat_0=0, sigma=0.5, e=0.9, phi=0)
    assert m(0.0, 0.5) > 5 * m(0.5, 0.0)


def test_disk_edge_and_interior():
    r_0, width = 0.5, 0.2
    m = DiskSpatialModel(lon_0=10, lat_0=40, r_0=r_0, edge_width=width)
    centre = m(10.0, 40.0)
    w = r_0 * width

    def at(sep):
        return m(*offset_by(10.0, 40.0, 123.0, sep)) / centre

    assert at(0.2) == pytest.approx(1.0, abs=1e-6)
    assert at(r_0) == pytest.approx(0.5, abs=1e-6)
    assert at(r_0 - w / 2) == pytest.approx(0.95, abs=1e-6)
    assert at(r_0 + w / 2) == pytest.approx(0.05, abs=1e-6)
    hard = DiskSpatialModel(lon_0=10, lat_0=40, r_0=r_0, edge_width=0)
    assert hard(*offset_by(10.0, 40.0, 0.0, 0.499)) > 0
    assert hard(*offset_by(10.0, 40.0, 0.0, 0.501)) == 0
    expected = 1 / (2 * np.pi * (1 - np.cos(np.deg2rad(r_0))))
    assert hard(10.0, 40.0) == pytest.approx(expected, rel=1e-12)


def test_shell_profile():
    m = ShellSpatialModel(lon_0=10, lat_0=40, radius=0.5, width=0.2)
    r_in, r_out = np.deg2rad([0.5, 0.7])
    centre = m(10.0, 40.0)
    at_rin = m(*offset_by(10.0, 40.0, 77.0, 0.5))
    assert centre / at_rin == pytest.approx((r_out - r_in) / np.sqrt(r_out**2 - r_in**2), rel=1e-6)
    assert m(*offset_by(10.0, 40.0, 0.0, 0.71)) == 0


def test_validation_errors():
    with pytest.raises(ValueError, match="sigma > 0"):
        GaussianSpatialModel(sigma=0)
    with pytest.raises(ValueError, match="e < 1"):
        DiskSpatialModel(e=1.0)
    with pytest.raises(ValueError, match="frame"):
        PointSpatialModel(frame="fk4")


def test_gaussian_radial_samples_follow_exact_cdf():
    m = EXTENDED["gauss"]
    lon, lat = m.sample(20000, rng=1)
    versine = one_minus_cos_separation(lon, lat, 10.0, 40.0)
    a = 1 - np.cos(np.deg2rad(0.3))
    cdf = lambda v: -np.expm1(-v / (2 * a)) / -np.expm1(-1 / a)  # noqa: E731
    assert stats.kstest(versine, cdf).pvalue > 0.01
    pa = np.mod(position_angle(10.0, 40.0, lon, lat), 360.0)
    assert stats.kstest(pa, stats.uniform(0, 360).cdf).pvalue > 0.01
    wrong = -np.expm1(-1 / (a * 1.03))
    assert stats.kstest(versine, lambda v: -np.expm1(-v / (2 * a * 1.03)) / wrong).pvalue < 1e-3


def _grid(lon_c, lat_c, half, step):
    lon = lon_c + np.arange(-half, half + step / 2, step)
    lat = lat_c + np.arange(-half, half + step / 2, step)
    return lon, lat


def _chi2_samples_vs_pixels(model, lon, lat, frame, n=100000, seed=2):
    """Histogram model samples on the grid and compare with n * integrate_pixels."""
    slon, slat = model.sample(n, rng=seed)
    slon, slat = transform_lonlat(slon, slat, model.frame, frame)
    slon = np.mod(slon - lon[0] + 180, 360) - 180 + lon[0]
    dlon, dlat = lon[1] - lon[0], lat[1] - lat[0]
    lon_e = np.append(lon - dlon / 2, lon[-1] + dlon / 2)
    lat_e = np.append(lat - dlat / 2, lat[-1] + dlat / 2)
    counts, _, _ = np.histogram2d(slat, slon, bins=[lat_e, lon_e])
    # samples follow the profile; the model may integrate to a little more than 1 (disk)
    expected = n * integrate_pixels(model, lon, lat, frame, oversampling=6)
    expected = expected / model.integral_over_sphere()
    use = expected > 10
    chi2 = ((counts[use] - expected[use]) ** 2 / expected[use]).sum()
    return chi2 / use.sum(), use.sum()


SAMPLED = {
    "gauss_elong": (GaussianSpatialModel(lon_0=10, lat_0=40, sigma=0.3, e=0.8, phi=30), "icrs"),
    "disk_soft_elong": (
        DiskSpatialModel(lon_0=10, lat_0=40, r_0=0.5, e=0.7, phi=-50, edge_width=0.5),
        "icrs",
    ),
    "disk": (DiskSpatialModel(lon_0=10, lat_0=40, r_0=0.5), "icrs"),
    "shell_galactic_on_icrs": (
        ShellSpatialModel(lon_0=184.5575, lat_0=-5.7844, radius=0.4, width=0.2, frame="galactic"),
        "icrs",
    ),
}


@pytest.mark.parametrize("key", SAMPLED)
def test_samples_follow_pixel_integrals(key):
    model, frame = SAMPLED[key]
    (lon_c,), (lat_c,) = transform_lonlat(
        np.array([model.lon_0.value]), np.array([model.lat_0.value]), model.frame, frame
    )
    lon, lat = _grid(lon_c, lat_c, 1.0, 0.05)
    red_chi2, ndf = _chi2_samples_vs_pixels(model, lon, lat, frame)
    assert ndf > 100
    assert 0.8 < red_chi2 < 1.25


def test_point_pixel_weights_keep_the_centroid():
    lon, lat = _grid(83.6, 22.0, 0.5, 0.02)
    m = PointSpatialModel(lon_0=83.6137, lat_0=22.0051)
    w = integrate_pixels(m, lon, lat, "icrs")
    assert w.sum() == pytest.approx(1.0)
    assert (w > 0).sum() == 4
    assert (w * lon[None, :]).sum() == pytest.approx(83.6137, abs=1e-12)
    assert (w * lat[:, None]).sum() == pytest.approx(22.0051, abs=1e-12)
    outside = PointSpatialModel(lon_0=90.0, lat_0=22.0)
    assert integrate_pixels(outside, lon, lat, "icrs").sum() == 0
    # the same source in galactic coordinates lands on the same pixels
    c = SkyCoord(83.6137, 22.0051, unit="deg").galactic
    mg = PointSpatialModel(lon_0=c.l.deg, lat_0=c.b.deg, frame="galactic")
    np.testing.assert_allclose(integrate_pixels(mg, lon, lat, "icrs"), w, atol=1e-8)
    assert m.sample(3, rng=0)[1] == pytest.approx([22.0051] * 3)
    with pytest.raises(TypeError, match="no surface brightness"):
        m(83.6, 22.0)


def test_oversampling_small_sources():
    lon, lat = _grid(0.0, 0.0, 0.6, 0.1)
    m = GaussianSpatialModel(lon_0=0.013, lat_0=-0.021, sigma=0.04, frame="galactic")
    reference = integrate_pixels(m, lon, lat, "galactic", oversampling=40)
    auto = integrate_pixels(m, lon, lat, "galactic")
    centres = integrate_pixels(m, lon, lat, "galactic", oversampling=1)
    assert reference.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.abs(auto - reference).max() < 1e-2 * reference.max()
    assert np.abs(centres - reference).max() > 3e-2 * reference.max()


def test_evaluate_via_other_frame():
    m = GaussianSpatialModel(lon_0=0.5, lat_0=0.2, sigma=0.3, e=0.5, phi=20, frame="galactic")
    c = SkyCoord(l=[0.3, 0.6], b=[0.1, 0.4], unit="deg", frame="galactic").icrs
    np.testing.assert_allclose(
        m(c.ra.deg, c.dec.deg, frame="icrs"), m(np.array([0.3, 0.6]), np.array([0.1, 0.4]))
    )


@pytest.mark.parametrize("key", ["gauss_elong", "disk_soft_elong", "shell"])
def test_evaluate_stays_lazy(key, raise_on_compute):
    m = EXTENDED[key]
    lon = da.from_array(np.linspace(9, 11, 20), chunks=5)
    lat = da.from_array(np.linspace(39, 41, 20), chunks=5)
    assert isinstance(m(lon, lat), da.Array)
