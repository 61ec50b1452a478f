"""Region masks on sky grids: circles exactly, other shapes in a local tangent plane."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import regions as rg
from astropy.coordinates import SkyCoord
from hypothesis import given, settings
from hypothesis import strategies as st

from gammaxr.geom import (
    SkyGrid,
    exclusion_mask,
    parse_regions,
    region_mask,
    regions_to_string,
)

CRAB = SkyCoord(83.633, 22.014, unit="deg")


@pytest.fixture
def grid():
    return SkyGrid.from_center(CRAB, 3, 0.02)


def _tangent_plane(grid: SkyGrid, center: SkyCoord):
    """Gnomonic standard coordinates (xi east, eta north; radians) of the pixel centres."""
    pix = grid.skycoord().transform_to(center.frame).spherical
    lon, lat = pix.lon.rad, pix.lat.rad
    lon0, lat0 = center.spherical.lon.rad, center.spherical.lat.rad
    cos_c = np.sin(lat0) * np.sin(lat) + np.cos(lat0) * np.cos(lat) * np.cos(lon - lon0)
    xi = np.cos(lat) * np.sin(lon - lon0) / cos_c
    eta = (np.cos(lat0) * np.sin(lat) - np.sin(lat0) * np.cos(lat) * np.cos(lon - lon0)) / cos_c
    return xi, eta


def _rotated(xi, eta, angle_deg):
    """Coordinates along the shape's width axis (angle from west towards north) and across."""
    a = np.radians(angle_deg)
    along = -xi * np.cos(a) + eta * np.sin(a)
    across = xi * np.sin(a) + eta * np.cos(a)
    return along, across


def test_mask_layout(grid):
    mask = region_mask(grid, rg.CircleSkyRegion(CRAB, 0.5 * u.deg))
    assert mask.dims == ("lat", "lon") and mask.dtype == bool
    np.testing.assert_array_equal(mask.lon, grid.lon)
    np.testing.assert_array_equal(mask.lat, grid.lat)
    assert mask.attrs["frame"] == "icrs"
    assert SkyGrid.from_xarray(mask).is_same(grid, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    dlon=st.floats(-2, 2),
    dlat=st.floats(-2, 2),
    radius=st.floats(0.01, 2.0),
    region_frame=st.sampled_from(["icrs", "galactic", "fk5"]),
    grid_frame=st.sampled_from(["icrs", "galactic"]),
)
def test_circle_matches_separation(dlon, dlat, radius, region_frame, grid_frame):
    grid = SkyGrid.from_center(CRAB, 3, 0.05, frame=grid_frame)
    center = SkyCoord(83.633 + dlon, 22.014 + dlat, unit="deg").transform_to(region_frame)
    mask = region_mask(grid, rg.CircleSkyRegion(center, radius * u.deg))
    expected = grid.skycoord().separation(center).deg < radius
    np.testing.assert_array_equal(mask.values, expected)


def test_circle_annulus_and_compound(grid):
    a = rg.CircleSkyRegion(CRAB, 0.6 * u.deg)
    b = rg.CircleSkyRegion(SkyCoord(84.0, 22.3, unit="deg").galactic, 0.5 * u.deg)
    ma, mb = region_mask(grid, a).values, region_mask(grid, b).values
    assert ma.sum() > 100 and mb.sum() > 100 and (ma & mb).any() and (ma & ~mb).any()
    np.testing.assert_array_equal(region_mask(grid, a | b).values, ma | mb)
    np.testing.assert_array_equal(region_mask(grid, a & b).values, ma & mb)
    np.testing.assert_array_equal(region_mask(grid, a ^ b).values, ma ^ mb)
    np.testing.assert_array_equal(region_mask(grid, [a, b]).values, ma | mb)
    ring = rg.CircleAnnulusSkyRegion(CRAB, 0.3 * u.deg, 0.6 * u.deg)
    sep = grid.separation(CRAB).values
    np.testing.assert_array_equal(region_mask(grid, ring).values, (sep >= 0.3) & (sep < 0.6))


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0])
@pytest.mark.parametrize("region_frame", ["icrs", "galactic"])
def test_rectangle_in_tangent_plane(grid, angle, region_frame):
    center = SkyCoord(83.9, 21.8, unit="deg").transform_to(region_frame)
    rect = rg.RectangleSkyRegion(center, 1.2 * u.deg, 0.5 * u.deg, angle=angle * u.deg)
    mask = region_mask(grid, rect).values
    along, across = _rotated(*_tangent_plane(grid, center), angle)
    expected = (np.abs(along) < np.radians(0.6)) & (np.abs(across) < np.radians(0.25))
    np.testing.assert_array_equal(mask, expected)
    # about the right number of pixels: area / pixel area on the sky
    assert mask.sum() == pytest.approx(1.2 * 0.5 / 0.02**2, rel=0.03)


def test_rectangle_rotation_swaps_sides(grid):
    wide = rg.RectangleSkyRegion(CRAB, 1.5 * u.deg, 0.3 * u.deg, angle=90 * u.deg)
    tall = rg.RectangleSkyRegion(CRAB, 0.3 * u.deg, 1.5 * u.deg)
    np.testing.assert_array_equal(region_mask(grid, wide).values, region_mask(grid, tall).values)
    lat_extent = np.ptp(grid.lat[region_mask(grid, tall).values.any(axis=1)])
    assert lat_extent == pytest.approx(1.5, abs=0.05)


def test_ellipse_in_tangent_plane(grid):
    center = SkyCoord(83.5, 22.2, unit="deg").galactic
    ell = rg.EllipseSkyRegion(center, 1.0 * u.deg, 0.4 * u.deg, angle=45 * u.deg)
    along, across = _rotated(*_tangent_plane(grid, center), 45.0)
    expected = (along / np.radians(0.5)) ** 2 + (across / np.radians(0.2)) ** 2 < 1
    np.testing.assert_array_equal(region_mask(grid, ell).values, expected)


@pytest.mark.skipif(not hasattr(rg, "PolygonSphericalSkyRegion"), reason="regions < 0.12")
def test_polygon_edges_are_great_circles(grid):
    vertices = SkyCoord([82.8, 84.4, 84.0, 83.2], [21.0, 21.4, 23.2, 22.6], unit="deg")
    mask = region_mask(grid, rg.PolygonSkyRegion(vertices)).values
    exact = rg.PolygonSphericalSkyRegion(vertices).contains(grid.skycoord())
    assert mask.sum() > 1000
    np.testing.assert_array_equal(mask, exact)
    # spherical regions are used as they are
    spherical = region_mask(grid, rg.PolygonSphericalSkyRegion(vertices)).values
    np.testing.assert_array_equal(spherical, exact)


def test_exclusion_is_complement(grid):
    regions = [
        rg.CircleSkyRegion(CRAB, 0.3 * u.deg),
        rg.RectangleSkyRegion(CRAB, 2 * u.deg, 0.1 * u.deg),
    ]
    inside = region_mask(grid, regions)
    excl = exclusion_mask(grid, regions)
    assert excl.name == "exclusion"
    np.testing.assert_array_equal(excl.values, ~inside.values)
    np.testing.assert_array_equal(region_mask(grid, regions, inside=False).values, excl.values)
    assert exclusion_mask(grid, []).values.all()
    assert not region_mask(grid, []).values.any()


def test_region_strings_round_trip(grid):
    regions = [
        rg.CircleSkyRegion(CRAB, 0.3 * u.deg),
        rg.RectangleSkyRegion(CRAB.galactic, 1.0 * u.deg, 0.2 * u.deg, angle=20 * u.deg),
    ]
    text = regions_to_string(regions)
    assert len(parse_regions(text)) == 2
    from_text = region_mask(grid, text)
    assert from_text.attrs["regions"] == text
    np.testing.assert_array_equal(from_text.values, region_mask(grid, regions).values)
    short = region_mask(grid, "icrs; circle(83.633, 22.014, 0.3)")
    np.testing.assert_array_equal(short.values, region_mask(grid, regions[0]).values)


def test_pixel_regions_rejected(grid):
    with pytest.raises(ValueError, match="pixel regions"):
        parse_regions("image; circle(10, 10, 3)")
    with pytest.raises(TypeError, match="pixel region"):
        region_mask(grid, rg.CirclePixelRegion(rg.PixCoord(1, 1), 2))
    with pytest.raises(TypeError, match="region"):
        region_mask(grid, 3.0)


def test_far_side_of_the_sky_is_outside():
    grid = SkyGrid.all_sky(5.0, "icrs")
    rect = rg.RectangleSkyRegion(SkyCoord(0, 0, unit="deg"), 20 * u.deg, 20 * u.deg)
    mask = region_mask(grid, rect).values
    sep = grid.separation((0.0, 0.0)).values
    assert mask.any() and not mask[sep > 90].any()


@pytest.mark.reference
def test_msh1552_exclusion_matches_reference(reference_dir):
    """The workflow's exclusion circle (icrs) on its galactic grid, as Gammapy made it."""
    ref = np.load(reference_dir / "msh1552_ring.npz")
    grid = SkyGrid.from_coords(ref["lon"], ref["lat"], "galactic")
    circle = rg.CircleSkyRegion(SkyCoord(228.32, -59.08, unit="deg"), 0.4 * u.deg)
    mask = exclusion_mask(grid, circle)
    expected = ref["exclusion"][:, ::-1]  # reference lon decreases along the last axis
    assert (~expected).sum() > 1000
    np.testing.assert_array_equal(mask.values, expected)


def test_regions_off_and_across_the_grid_edge(grid):
    far = rg.RectangleSkyRegion(SkyCoord(120.0, -40.0, unit="deg"), 1 * u.deg, 1 * u.deg)
    assert not region_mask(grid, far).values.any()
    edge = SkyCoord(grid.lon[0], 22.014, unit="deg")  # half of the circle is off the grid
    mask = region_mask(grid, rg.CircleSkyRegion(edge, 0.4 * u.deg)).values
    np.testing.assert_array_equal(mask, grid.skycoord().separation(edge).deg < 0.4)
    assert mask[:, 0].any() and not mask[:, -1].any()
