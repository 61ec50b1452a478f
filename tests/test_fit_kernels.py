"""IRF kernels at a source: PSF kernels, containment, spline shifts, edisp, cutouts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve

from gammaxr.fit.evaluators import convolve_same
from gammaxr.fit.kernels import (
    bspline_weights,
    containment_radii,
    cutout_around,
    diagonal_response,
    edisp_at,
    kernel_nodes,
    node_weights,
    place_kernel,
    psf_kernel,
    psf_profile_at,
    spline_coefficients,
)
from gammaxr.testing import gaussian_psf_profile

RAD = np.linspace(0.0, 0.6, 121)


def _moments(kernel: np.ndarray, dx: float, dy: float) -> tuple[float, float, float, float]:
    """Centroid and variance (deg, deg2 on the sky) of a 2D kernel with pixel sizes dx, dy."""
    ny, nx = kernel.shape
    y = (np.arange(ny) - ny // 2) * dy
    x = (np.arange(nx) - nx // 2) * dx
    total = kernel.sum()
    mx = (kernel.sum(0) @ x) / total
    my = (kernel.sum(1) @ y) / total
    vx = (kernel.sum(0) @ (x - mx) ** 2) / total
    vy = (kernel.sum(1) @ (y - my) ** 2) / total
    return mx, my, vx, vy


@pytest.mark.parametrize("sigma", [0.05, 0.1])
def test_containment_radii_of_gaussian(sigma):
    profile = gaussian_psf_profile(np.array([sigma]), RAD)
    r68, r95 = (containment_radii(profile, RAD, f)[0] for f in (0.68, 0.95))
    # small-angle Gaussian: r_f = sigma * sqrt(-2 ln(1 - f))
    assert r68 == pytest.approx(sigma * np.sqrt(-2 * np.log(0.32)), rel=0.02)
    assert r95 == pytest.approx(sigma * np.sqrt(-2 * np.log(0.05)), rel=0.02)


def test_containment_radius_beyond_the_table_is_the_last_edge():
    profile = gaussian_psf_profile(np.array([1.0]), RAD)  # far wider than the rad axis
    profile = profile * 0.5  # holds less than the fraction asked
    assert containment_radii(profile, RAD, 0.999)[0] == RAD[-1]


@pytest.mark.parametrize("lat", [0.0, 22.0, 60.0])
def test_psf_kernel_on_sky_width_on_ra_step_grid(lat):
    """A grid with a lon step in coordinate degrees: the kernel is round on the sky."""
    sigma, step = 0.08, 0.02
    profile = gaussian_psf_profile(np.array([sigma, 0.5 * sigma]), RAD)
    kernels = psf_kernel(profile, RAD, lat, step, step)
    assert kernels.shape[1] % 2 == 1 and kernels.shape[2] % 2 == 1
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0)
    dx = step * np.cos(np.deg2rad(lat))
    for k, s in zip(kernels, (sigma, 0.5 * sigma), strict=True):
        mx, my, vx, vy = _moments(k, dx, step)
        assert abs(mx) < 1e-9 and abs(my) < 3e-4  # spherical: meridians converge
        # pixel averaging adds step^2 / 12 per axis
        assert vx == pytest.approx(s**2 + dx**2 / 12, rel=0.03)
        assert vy == pytest.approx(s**2 + step**2 / 12, rel=0.03)
    # the kernel reaches the 99.9 % radius in both axes
    r999 = containment_radii(profile, RAD, 0.999).max()
    assert kernels.shape[2] // 2 == pytest.approx(r999 / dx, abs=1)
    assert kernels.shape[1] // 2 == pytest.approx(r999 / step, abs=1)


def test_psf_kernel_square_pixels_as_gammapy():
    """Gammapy's square kernel pixels: the same number of pixels per sigma in both axes."""
    sigma, step, lat = 0.08, 0.02, 40.0
    profile = gaussian_psf_profile(np.array([sigma]), RAD)
    (kernel,) = psf_kernel(profile, RAD, lat, step, step, psf_pixels="square")
    _, _, vx, vy = _moments(kernel, step, step)  # in pixel units times the step
    assert vx == pytest.approx(vy, rel=1e-3)
    assert vy == pytest.approx(sigma**2 + step**2 / 12, rel=0.03)
    with pytest.raises(ValueError, match="psf_pixels"):
        psf_kernel(profile, RAD, lat, step, step, psf_pixels="round")


def test_psf_profile_bilinear_between_irf_pixels():
    n_et, n_rad = 2, RAD.size - 1
    psf = np.zeros((n_et, n_rad, 2, 3))
    psf[..., 0, :] = 1.0
    psf[..., 1, :] = 3.0
    psf[..., :, 2] += 10.0
    lon_irf, lat_irf = np.array([10.0, 10.2, 10.4]), np.array([0.0, 0.2])
    out = psf_profile_at(psf, lon_irf, lat_irf, 10.1, 0.05)
    np.testing.assert_allclose(out, 1.0 + 2.0 * 0.25)
    out = psf_profile_at(psf, lon_irf, lat_irf, 10.3, 0.2)
    np.testing.assert_allclose(out, 3.0 + 5.0)
    # outside the IRF grid: clamped to the edge; lon wraps around 360
    np.testing.assert_allclose(psf_profile_at(psf, lon_irf, lat_irf, 9.0, -1.0), 1.0)
    np.testing.assert_allclose(psf_profile_at(psf, lon_irf, lat_irf, 370.1, 0.0), 1.0)


def test_edisp_at_nearest_irf_pixel():
    edisp = np.arange(2 * 3 * 2 * 3, dtype=float).reshape(2, 3, 2, 3)
    lon_irf, lat_irf = np.array([10.0, 10.2, 10.4]), np.array([0.0, 0.2])
    np.testing.assert_array_equal(edisp_at(edisp, lon_irf, lat_irf, 10.29, 0.11), edisp[..., 1, 1])
    np.testing.assert_array_equal(edisp_at(edisp, lon_irf, lat_irf, 50.0, -5.0), edisp[..., 0, 2])


def test_edisp_linear_blend_is_continuous():
    edisp = np.arange(2 * 3 * 2 * 3, dtype=float).reshape(2, 3, 2, 3)
    lon_irf, lat_irf = np.array([10.0, 10.2, 10.4]), np.array([0.0, 0.2])
    out = edisp_at(edisp, lon_irf, lat_irf, 10.3, 0.05, method="linear")
    expected = 0.75 * 0.5 * (edisp[..., 0, 1] + edisp[..., 0, 2]) + 0.25 * 0.5 * (
        edisp[..., 1, 1] + edisp[..., 1, 2]
    )
    np.testing.assert_allclose(out, expected)
    left = edisp_at(edisp, lon_irf, lat_irf, 10.1 - 1e-9, 0.1, method="linear")
    right = edisp_at(edisp, lon_irf, lat_irf, 10.1 + 1e-9, 0.1, method="linear")
    np.testing.assert_allclose(left, right, atol=1e-6)
    with pytest.raises(ValueError, match="method"):
        edisp_at(edisp, lon_irf, lat_irf, 10.1, 0.1, method="cubic")


def test_node_weights_bilinear_and_clamped():
    lon, lat = np.array([10.0, 10.2, 10.4]), np.array([0.0, 0.2])
    weights = {(j, i): w for j, i, w in node_weights(lon, lat, 10.25, 0.15)}
    assert weights == pytest.approx(
        {(0, 1): 0.1875, (0, 2): 0.0625, (1, 1): 0.5625, (1, 2): 0.1875}
    )
    assert node_weights(lon, lat, 10.2, 0.0) == ((0, 1, 1.0),)  # on a node: that node only
    assert node_weights(lon, lat, 12.0, -3.0) == ((0, 2, 1.0),)  # outside: the edge node


def test_kernel_nodes_with_one_psf_span_the_map_in_latitude():
    lat_grid = np.linspace(21.0, 23.0, 101)
    lon_nodes, lat_nodes = kernel_nodes(np.array([83.6]), np.array([22.0]), lat_grid)
    assert lon_nodes.tolist() == [83.6]
    np.testing.assert_allclose(np.diff(lat_nodes), 0.1)
    assert lat_nodes[0] <= 21.0 and lat_nodes[-1] >= 23.0
    lon_irf, lat_irf = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    assert kernel_nodes(lon_irf, lat_irf, lat_grid) == (lon_irf, lat_irf)


def test_diagonal_response():
    e = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(diagonal_response(e, e), np.eye(2))
    et = np.array([0.5, 1.0, 3.0, 4.0, 8.0])
    m = diagonal_response(et, e)
    np.testing.assert_allclose(m, [[0, 0], [0.5, 0.5], [0, 1], [0, 0]])


def test_bspline_weights():
    for t in (0.0, 0.3, 0.999):
        w = bspline_weights(t)
        assert w.sum() == pytest.approx(1.0)
        assert w @ np.array([-1, 0, 1, 2]) == pytest.approx(t)
        assert np.all(w >= 0)


@pytest.fixture
def kernels():
    profile = gaussian_psf_profile(np.array([0.06, 0.1]), RAD)
    return psf_kernel(profile, RAD, 0.0, 0.02, 0.02)


def test_place_kernel_exact_at_whole_pixels(kernels):
    coef = spline_coefficients(kernels)
    out = place_kernel(coef, 30.0, 40.0, (61, 81))
    image = np.zeros((61, 81))
    image[30, 40] = 1.0
    np.testing.assert_allclose(out, convolve_same(image, kernels), atol=1e-8)


def test_place_kernel_moves_centroid_and_keeps_flux(kernels):
    coef = spline_coefficients(kernels)
    for fy, fx in ((30.25, 40.5), (30.9, 39.1)):
        out = place_kernel(coef, fy, fx, (61, 81))
        # flux kept up to the clipped rim (spline ringing where the kernel is cut)
        np.testing.assert_allclose(out.sum(axis=(1, 2)), 1.0, rtol=2e-4)
        for plane in out:
            mx, my, *_ = _moments(plane, 1.0, 1.0)  # relative to the image centre pixel
            assert mx + 40 == pytest.approx(fx, abs=1e-3)
            assert my + 30 == pytest.approx(fy, abs=1e-3)


def _second_difference_jump(values: np.ndarray) -> float:
    d2 = np.diff(values, 2)
    return float(np.max(np.abs(np.diff(d2))) / np.max(np.abs(d2)))


def test_place_kernel_is_smooth_in_position(kernels):
    """Second differences in the position change smoothly across a pixel centre; bilinear
    spreading of the point (Gammapy) has a kink there."""
    coef = spline_coefficients(kernels)
    positions = 40.0 + np.linspace(-0.2, 0.2, 41)
    spline = [place_kernel(coef, 30.0, fx, (61, 81))[0, 30, 43] for fx in positions]
    assert _second_difference_jump(np.array(spline)) < 0.1
    bilinear = []
    for fx in positions:
        image = np.zeros((61, 81))
        i = int(np.floor(fx))
        image[30, i], image[30, i + 1] = i + 1 - fx, fx - i
        bilinear.append(convolve_same(image, kernels)[0, 30, 43])
    assert _second_difference_jump(np.array(bilinear)) > 1.0


def test_place_kernel_trimmed_at_the_image_edge(kernels):
    coef = spline_coefficients(kernels)
    out = place_kernel(coef, 0.3, 0.6, (20, 20))
    assert out.shape == (2, 20, 20)
    assert 0.2 < out[0].sum() < 0.5  # about a quarter of the kernel is inside
    assert np.all(out >= 0)
    assert not place_kernel(coef, -100.0, 5.0, (20, 20)).any()


@pytest.mark.parametrize("n_points", [1, 3, 40])
def test_convolve_same_sparse_equals_fft(kernels, n_points):
    rng = np.random.default_rng(n_points)
    image = np.zeros((30, 50))
    idx = rng.choice(image.size, n_points, replace=False)
    image.ravel()[idx] = rng.random(n_points)
    out = convolve_same(image, kernels)
    reference = np.stack([fftconvolve(image, k, mode="same") for k in kernels])
    np.testing.assert_allclose(out, reference, atol=1e-12)


def test_cutout_around():
    lon = np.arange(100) * 0.02 + 82.0
    lat = np.arange(80) * 0.02 + 21.0
    cut = cutout_around(lon, lat, 83.0, 21.8, 0.1, kernel_shape=(11, 21))
    iy, ix = 40, 50
    wx = 10 + int(np.ceil(0.1 / (0.02 * np.cos(np.deg2rad(21.9)))))
    assert (cut.x0, cut.x1) == (ix - wx, ix + wx + 1)
    assert (cut.y0, cut.y1) == (iy - 5 - 5, iy + 5 + 5 + 1)
    edge = cutout_around(lon, lat, 82.01, 21.0, 0.1, kernel_shape=(11, 21))
    assert edge.x0 == 0 and edge.y0 == 0 and not edge.empty
    assert cutout_around(lon, lat, 120.0, 21.5, 0.1).empty
