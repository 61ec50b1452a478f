"""Reflected off regions: geometry, exclusion, settings, shapes, and the H.E.S.S. Crab runs."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import regions as rg
from astropy.coordinates import SkyCoord

from gammaxr.geom import SkyGrid, exclusion_mask, region_mask
from gammaxr.reduce.reflected import (
    ReflectedRegionsConfig,
    reflected_region_angles,
    reflected_regions,
    regions_contain,
    rotate_region,
)

POINTING = SkyCoord(120.0, -30.0, unit="deg")
RADIUS = 0.2


def _on(offset: float = 1.0, pa: float = 40.0, radius: float = RADIUS) -> rg.CircleSkyRegion:
    centre = POINTING.directional_offset_by(pa * u.deg, offset * u.deg)
    return rg.CircleSkyRegion(centre, radius * u.deg)


def _centres(regs) -> SkyCoord:
    return SkyCoord([r.center.icrs for r in regs])


def test_off_circles_same_offset_and_radius_no_overlap():
    on = _on()
    offs = reflected_regions(on, POINTING)
    centres = _centres(offs)
    offset = on.center.separation(POINTING).deg
    np.testing.assert_allclose(centres.separation(POINTING).deg, offset, atol=1e-9)
    assert all(r.radius.to_value(u.deg) == RADIUS for r in offs)
    # no off region touches the on region; neighbours overlap by at most a reference pixel
    # (the angular size is measured on pixel centres, as Gammapy does)
    assert np.all(centres.separation(on.center).deg >= 2 * RADIUS)
    sep = centres[:, None].separation(centres[None, :]).deg
    assert np.all(sep[~np.eye(len(offs), dtype=bool)] >= 2 * RADIUS - 0.01)
    # the angular size of a 0.2 deg circle at 1 deg is 2 asin(0.2) = 23.1 deg: with the
    # default 0.1 rad spacing from the on region, 14 regions fit around the circle
    size = 2 * np.degrees(np.arcsin(RADIUS / offset))
    first = size + np.degrees(0.1)
    expected = int(np.floor((360 - size - np.degrees(0.1) - first) / size)) + 1
    assert len(offs) == expected == 14


def test_angles_spacing_and_position_angles():
    on = _on(pa=300.0)
    angles = reflected_region_angles(on, POINTING)
    step = np.diff(angles)
    np.testing.assert_allclose(step, step[0])  # nothing excluded: a regular sequence
    assert 0 < step[0] < 2 * np.degrees(np.arcsin(RADIUS))  # pixel centres inside the circle
    pa_on = POINTING.position_angle(on.center).deg
    pa_off = POINTING.position_angle(_centres(rotate_region(on, POINTING, angles))).deg
    np.testing.assert_allclose(np.mod(pa_off - pa_on, 360), angles, atol=1e-8)


def test_settings_max_number_and_min_distance():
    on = _on()
    assert len(reflected_regions(on, POINTING, max_region_number=3)) == 3
    default = reflected_region_angles(on, POINTING)
    spaced = reflected_region_angles(on, POINTING, config=ReflectedRegionsConfig(min_distance=10))
    np.testing.assert_allclose(np.diff(spaced), np.diff(default)[0] + 10)
    assert len(spaced) < len(default)
    far = reflected_region_angles(
        on, POINTING, config=ReflectedRegionsConfig(min_distance_input=60)
    )
    assert far[0] == pytest.approx(default[0] - np.degrees(0.1) + 60)
    # angles as Quantities
    cfg = ReflectedRegionsConfig(angle_increment=0.2 * u.rad, binsz=36 * u.arcsec)
    assert cfg.angle_increment == pytest.approx(np.degrees(0.2))
    assert cfg.binsz == pytest.approx(0.01)
    for bad in ({"angle_increment": 0}, {"min_distance": -1}, {"binsz": 0}):
        with pytest.raises(ValueError):
            ReflectedRegionsConfig(**bad)


def test_exclusion_is_avoided():
    on = _on()
    free = reflected_regions(on, POINTING)
    # exclude a disk around the position of the 4th free off region, and the on region
    blocker = rg.CircleSkyRegion(free[3].center, 0.15 * u.deg)
    grid = SkyGrid.from_center(POINTING, 3.0, 0.01)
    excl = exclusion_mask(grid, [on, blocker])
    offs = reflected_regions(on, POINTING, excl)
    assert 0 < len(offs) < len(free)
    # no excluded pixel centre inside any off region (shrunk by a pixel diagonal for the
    # nearest-pixel sampling of the mask)
    for r in offs:
        shrunk = rg.CircleSkyRegion(r.center, (RADIUS - 0.015) * u.deg)
        assert not np.any(region_mask(grid, shrunk).values & ~excl.values)
    # without the walk, the 4th free region would have hit the exclusion
    assert np.any(region_mask(grid, free[3]).values & ~excl.values)
    # the regions before the blocked one are unchanged
    np.testing.assert_allclose(_centres(offs[:3]).separation(_centres(free[:3])).deg, 0, atol=1e-9)


def test_exclusion_in_other_frame_and_far_away():
    on = _on()
    far_grid = SkyGrid.from_center(SkyCoord(0, 0, unit="deg", frame="galactic"), 2, 0.05)
    far = exclusion_mask(far_grid, rg.CircleSkyRegion(SkyCoord(0, 0, unit="deg"), 1 * u.deg))
    assert len(reflected_regions(on, POINTING, far)) == len(reflected_regions(on, POINTING))
    # an exclusion in galactic coordinates covering the whole field: nothing is usable
    gal = POINTING.galactic
    grid = SkyGrid.from_center(gal, 6, 0.05)
    everything = exclusion_mask(grid, rg.CircleSkyRegion(gal, 5 * u.deg))
    assert reflected_regions(on, POINTING, everything) == []


def test_pointing_inside_on_region_gives_nothing():
    on = rg.CircleSkyRegion(POINTING.directional_offset_by(0 * u.deg, 0.1 * u.deg), 0.3 * u.deg)
    assert reflected_regions(on, POINTING) == []


def test_on_region_from_string_and_errors():
    on = _on()
    text = rg.Regions([on]).serialize(format="ds9")
    assert len(reflected_regions(text, POINTING)) == len(reflected_regions(on, POINTING))
    with pytest.raises(ValueError, match="one on region"):
        reflected_regions(text + text.split("\n", 2)[-1], POINTING)
    with pytest.raises(TypeError, match="point"):
        reflected_regions(rg.PointSkyRegion(on.center), POINTING)
    tiny = _on(radius=0.002)
    with pytest.raises(ValueError, match="smaller"):
        reflected_regions(tiny, POINTING)


@pytest.mark.parametrize(
    "shape",
    [
        lambda c: rg.RectangleSkyRegion(c, 0.5 * u.deg, 0.2 * u.deg, angle=30 * u.deg),
        lambda c: rg.EllipseSkyRegion(c, 0.4 * u.deg, 0.2 * u.deg, angle=-20 * u.deg),
    ],
    ids=["rectangle", "ellipse"],
)
def test_other_shapes_rotated_copies(shape):
    centre = POINTING.directional_offset_by(70 * u.deg, 1.2 * u.deg)
    on = shape(centre)
    offs = reflected_regions(on, POINTING)
    assert len(offs) > 3
    assert all(type(r) is type(on) for r in offs)
    np.testing.assert_allclose(_centres(offs).separation(POINTING).deg, 1.2, atol=1e-6)
    grid = SkyGrid.from_center(POINTING, 3.0, 0.01)
    on_mask = region_mask(grid, on).values
    for r in offs:
        mask = region_mask(grid, r).values
        assert not np.any(mask & on_mask)
        assert mask.sum() == pytest.approx(on_mask.sum(), rel=0.03)  # same area
    # orientation turns with the rotation: the long axis stays tangential-relative
    angles = reflected_region_angles(on, POINTING)
    turn = (offs[0].angle - on.angle).to_value(u.deg)
    assert np.mod(turn - angles[0] + 180, 360) - 180 == pytest.approx(0, abs=0.5)


def test_regions_contain_matches_region_mask():
    grid = SkyGrid.from_center(POINTING, 2.0, 0.02)
    lon, lat = np.meshgrid(grid.lon, grid.lat)
    shapes = [
        _on(offset=0.3),
        rg.RectangleSkyRegion(POINTING, 0.6 * u.deg, 0.3 * u.deg, angle=15 * u.deg),
        rg.CircleAnnulusSkyRegion(POINTING, 0.2 * u.deg, 0.5 * u.deg),
        _on(offset=0.3) | rg.CircleSkyRegion(POINTING, 0.1 * u.deg),
    ]
    inside = regions_contain(shapes, lon.ravel(), lat.ravel(), "icrs")
    assert inside.shape == (len(shapes), lon.size)
    for k, shape in enumerate(shapes):
        expected = region_mask(grid, shape).values.ravel()
        assert expected.any()
        np.testing.assert_array_equal(inside[k], expected)
    # exact circle test: strictly inside
    circle = rg.CircleSkyRegion(POINTING, 0.5 * u.deg)
    edge = POINTING.directional_offset_by([0, 90] * u.deg, [0.5 - 1e-9, 0.5 + 1e-9] * u.deg)
    np.testing.assert_array_equal(
        regions_contain(circle, edge.ra.deg, edge.dec.deg)[0], [True, False]
    )
    gal = edge.galactic
    np.testing.assert_array_equal(
        regions_contain(circle, gal.l.deg, gal.b.deg, "galactic")[0], [True, False]
    )
    assert regions_contain([], [1.0], [2.0]).shape == (0, 1)


# ------------------------------------------------------------------ H.E.S.S. Crab runs


@pytest.mark.hess
def test_crab_off_region_numbers(hess_dir):
    """Crab runs with the workflow's settings: 0.2 deg on circle at (83.63, 22.01), that
    circle excluded on a 5 deg, 0.05 deg icrs grid, Gammapy's finder defaults."""
    from gammaxr.data import open_datastore

    store = open_datastore(hess_dir)
    on = rg.CircleSkyRegion(SkyCoord(83.63, 22.01, unit="deg"), 0.2 * u.deg)
    excl = exclusion_mask(SkyGrid.from_center((83.63, 22.01), 5, 0.05), on)
    # Gammapy 2.1 ReflectedRegionsBackgroundMaker (DESIGN.md reference figures)
    expected = {23523: 6, 23592: 21, 23526: 6, 23559: 22}
    for obs_id, n in expected.items():
        pointing = store.observation(obs_id).pointing
        offs = reflected_regions(on, pointing, excl)
        assert len(offs) == n, obs_id
        offset = on.center.separation(pointing).deg
        np.testing.assert_allclose(_centres(offs).separation(pointing).deg, offset, atol=1e-9)
