"""Per-run map functions on synthetic IRFs and events with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gammaxr.geom import SkyGrid, axis_coords
from gammaxr.reduce.maps import (
    background_cube,
    counts_cube,
    exposure_cube,
    fill_missing_along_energy,
)
from gammaxr.reduce.safe_mask import (
    energy_range_mask,
    safe_energy_range,
    safe_mask,
    table_energy_inputs,
)


def _irf(dims, values, edges, units):
    coords = {}
    for dim in dims:
        coords.update(axis_coords(dim, edges[dim], "TeV" if "energy" in dim else "deg", lohi=True))
    return xr.DataArray(values, dims=dims, coords=coords, attrs={"units": units})


@pytest.fixture
def grid():
    return SkyGrid.from_center((150.0, -30.0), 3.0, 0.1, frame="icrs")


def test_counts_cube_bins_events_by_energy_and_pixel(grid):
    edges = np.array([1.0, 2.0, 4.0])
    i = np.array([3, 10, 29])
    j = np.array([0, 12, 29])
    ra, dec = grid.lon[i], grid.lat[j]
    energy = np.array([1.0, 3.999, 2.0])  # lower edges are inside their bin
    counts = counts_cube(energy, ra, dec, grid, edges)
    assert counts.shape == (2, 30, 30)
    assert counts.sum() == 3
    assert counts[0, 0, 3] == 1 and counts[1, 12, 10] == 1 and counts[1, 29, 29] == 1
    # outside the energy range or the grid: dropped
    none = counts_cube(
        np.array([0.5, 4.0, 1.5]), np.array([1.0, 150, 10]), np.array([0, -30, 0]), grid, edges
    )
    assert none.sum() == 0


def test_exposure_cube_flat_area(grid):
    edges = {"energy_true": np.geomspace(0.1, 100, 7), "offset": np.linspace(0, 4, 5)}
    aeff = _irf(("energy_true", "offset"), np.full((6, 4), 2.0e5), edges, "m2")
    offset = grid.separation(grid.center).values
    exposure = exposure_cube(aeff, offset, 1000.0, np.array([1.0, 10.0]))
    np.testing.assert_allclose(exposure, 2.0e8)


def test_background_cube_flat_rate_counts(grid):
    rate = 1e-6  # s-1 MeV-1 sr-1
    e_edges = np.geomspace(0.1, 100, 13)
    edges = {"energy": e_edges, "offset": np.linspace(0, 5, 6)}
    bkg = _irf(("energy", "offset"), np.full((12, 5), rate), edges, "s-1 MeV-1 sr-1")
    offset = grid.separation(grid.center).values
    reco = np.array([1.0, 2.0, 5.0])
    cube = background_cube(bkg, grid, (150.0, -30.0), 1800.0, reco, offset=offset)
    expected = rate * np.diff(reco)[:, None, None] * 1e6 * grid.solid_angle().values * 1800.0
    np.testing.assert_allclose(cube, expected, rtol=1e-6)


def test_background_cube_3d_uses_fov_coordinates(grid):
    # a rate rising linearly with fov_lat: north of the pointing more background
    e_edges = np.geomspace(0.1, 100, 4)
    fov = np.linspace(-3, 3, 61)
    centres = 0.5 * (fov[1:] + fov[:-1])
    values = np.broadcast_to(1e-6 * (2 + centres[None, None, :]), (3, 60, 60)).copy()
    edges = {"energy": e_edges, "fov_lon": fov, "fov_lat": fov}
    bkg = _irf(("energy", "fov_lon", "fov_lat"), values, edges, "s-1 MeV-1 sr-1")
    bkg.attrs["fov_alignment"] = "RADEC"
    cube = background_cube(bkg, grid, (150.0, -30.0), 100.0, np.array([1.0, 2.0]))
    per_sr = cube[0] / grid.solid_angle().values
    assert np.all(np.diff(per_sr.mean(axis=1)) > 0)  # grows with latitude
    np.testing.assert_allclose(per_sr.std(axis=1) / per_sr.mean(axis=1), 0, atol=0.02)
    bkg.attrs["fov_alignment"] = "ALTAZ"
    with pytest.raises(NotImplementedError, match="ALTAZ"):
        background_cube(bkg, grid, (150.0, -30.0), 100.0, np.array([1.0, 2.0]))


def test_fill_missing_along_energy_matches_log_interpolation():
    rng = np.random.default_rng(0)
    values = rng.uniform(1, 2, (7, 5, 6))
    values[rng.uniform(size=values.shape) < 0.4] = 0
    values[0, 0, 0] = np.nan
    bkg = xr.DataArray(values, dims=("energy", "fov_lon", "fov_lat"))
    filled = fill_missing_along_energy(bkg).values
    index = np.arange(7)
    for a in range(5):
        for b in range(6):
            line = values[:, a, b]
            ok = np.isfinite(line) & (line > 0)
            if not ok.any():
                continue
            expected = np.interp(index, index[ok], np.log(line[ok]), left=np.nan, right=np.nan)
            inner = ~ok & np.isfinite(expected)
            np.testing.assert_allclose(filled[inner, a, b], np.exp(expected[inner]))
            np.testing.assert_array_equal(filled[ok, a, b], line[ok])
    np.testing.assert_array_equal(bkg.values, values)  # input untouched


@pytest.mark.parametrize(
    "dims", [("energy", "fov_lon", "fov_lat"), ("fov_lon", "energy", "fov_lat")]
)
def test_fill_missing_along_energy_any_axis_keeps_coords_and_unfillable_columns(dims):
    rng = np.random.default_rng(3)
    values = rng.uniform(1, 2, (6, 4, 3))  # energy first, moved below where dims say
    values[0] = 0  # lowest and highest energies missing everywhere: nothing to fill there
    values[-1] = np.inf
    values[2:4, 1, 2] = 0  # one interior gap of two bins
    values[:, 3, 0] = 0  # a column with nothing valid
    axis = dims.index("energy")
    bkg = xr.DataArray(
        np.moveaxis(values, 0, axis),
        dims=dims,
        coords={"energy": ("energy", np.arange(6.0), {"units": "TeV"})},
        attrs={"units": "s-1 MeV-1 sr-1"},
        name="bkg",
    )
    out = fill_missing_along_energy(bkg)
    filled = np.moveaxis(out.values, axis, 0)
    expected = values.copy()
    log_lo, log_hi = np.log(values[1, 1, 2]), np.log(values[4, 1, 2])
    expected[2, 1, 2] = np.exp(2 / 3 * log_lo + 1 / 3 * log_hi)
    expected[3, 1, 2] = np.exp(1 / 3 * log_lo + 2 / 3 * log_hi)
    np.testing.assert_allclose(filled, expected, rtol=1e-14)
    assert out.dims == dims and out.name == "bkg" and out.attrs == bkg.attrs
    assert out.coords["energy"].attrs == {"units": "TeV"}
    out.attrs["units"] = "changed"  # the result's attrs are its own
    assert bkg.attrs["units"] == "s-1 MeV-1 sr-1"
    # no interior gap anywhere: the input itself comes back
    values[2:4, 1, 2] = 1.0
    untouched = xr.DataArray(values, dims=("energy", "fov_lon", "fov_lat"))
    assert fill_missing_along_energy(untouched) is untouched


def test_fill_missing_power_law_gap_is_exact():
    energy = np.geomspace(0.1, 10, 9)
    rate = energy**-2.5
    gapped = rate.copy()
    gapped[3:5] = 0
    out = fill_missing_along_energy(xr.DataArray(gapped[:, None], dims=("energy", "offset")))
    np.testing.assert_allclose(out.values[:, 0], rate, rtol=1e-12)
    spectrum = fill_missing_along_energy(xr.DataArray(gapped, dims=("energy",)))  # 1D too
    np.testing.assert_allclose(spectrum.values, rate, rtol=1e-12)


def test_safe_mask_combinations():
    edges = np.array([0.5, 1.0, 2.0, 4.0])
    np.testing.assert_array_equal(energy_range_mask(edges, 0.9, 4.0), [False, True, True])
    offset = np.array([[0.0, 1.0, 3.0]])
    aeff = _irf(
        ("energy_true", "offset"),
        np.ones((3, 2)),
        {"energy_true": np.array([0.1, 1, 10, 100]), "offset": np.array([0, 2, 4])},
        "m2",
    )
    aeff.attrs.update(lo_threshold=0.9, hi_threshold=100.0)
    inputs = table_energy_inputs(("aeff-default",), aeff=aeff)
    mask = safe_mask(
        ("aeff-default", "offset-max"),
        edges,
        offset,
        offset_max=2.5,
        energy_range=safe_energy_range(("aeff-default",), inputs),
    )
    assert mask.shape == (3, 1, 3)
    np.testing.assert_array_equal(mask[:, 0, 0], [False, True, True])
    np.testing.assert_array_equal(mask[1, 0], [True, True, False])
    background = np.ones((3, 1, 3))
    background[2, 0, 1] = 0
    assert not safe_mask((), edges, offset, background=background)[2, 0, 1]
    with pytest.raises(ValueError, match="unknown safe-mask"):
        safe_mask(("aeff-min",), edges, offset)
