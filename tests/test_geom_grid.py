"""SkyGrid: construction, WCS, solid angles, positions to pixels, cutouts and resampling."""

from __future__ import annotations

import dataclasses
import pickle

import astropy.units as u
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from gammaxr.geom import SkyGrid, angular_separation, grid_slices


def _wrap(x):
    return (np.asarray(x) + 180.0) % 360.0 - 180.0


# ---------------------------------------------------------------------------- from_center


@pytest.mark.parametrize("lat0", [0.0, 22.0, -60.0])
@pytest.mark.parametrize("frame", ["icrs", "galactic"])
def test_from_center_pixel_counts_and_square_pixels(lat0, frame):
    grid = SkyGrid.from_center((83.6, lat0), 5, 0.02, frame=frame)
    assert grid.shape == (250, 250)
    assert grid.frame == frame
    np.testing.assert_allclose(grid.lat_step, 0.02, rtol=1e-12)
    # square on the sky at the centre: great-circle size of a central pixel along lon and lat
    mid_lat = 0.5 * (grid.lat[124] + grid.lat[125])
    width = SkyCoord(grid.lon[124], mid_lat, unit="deg").separation(
        SkyCoord(grid.lon[125], mid_lat, unit="deg")
    )
    np.testing.assert_allclose(width.deg, 0.02, rtol=1e-4)
    # centred: the middle of the axes is the requested centre
    assert grid.center.spherical.lon.deg == pytest.approx(83.6, abs=1e-9)
    assert grid.center.spherical.lat.deg == pytest.approx(lat0, abs=1e-9)


def test_from_center_rectangular_and_odd():
    grid = SkyGrid.from_center((10.0, 40.0), (3.0, 1.0), 0.5)
    assert grid.shape == (2, 6)
    odd = SkyGrid.from_center((10.0, 40.0), 0.1, 0.02)
    assert odd.shape == (5, 5)
    assert odd.lon[2] == pytest.approx(10.0) and odd.lat[2] == pytest.approx(40.0)


def test_from_center_frames():
    crab = SkyCoord(83.633, 22.014, unit="deg", frame="icrs")
    gal = SkyGrid.from_center(crab, 2, 0.05, frame="galactic")
    assert gal.frame == "galactic"
    assert gal.center.separation(crab).deg < 1e-9
    # a galactic SkyCoord defaults to a galactic grid; an icrs one to icrs
    assert SkyGrid.from_center(crab.galactic, 2, 0.05).is_same(gal)
    assert SkyGrid.from_center(crab, 2, 0.05).frame == "icrs"
    with pytest.raises(ValueError, match="frame"):
        SkyGrid.from_center(crab.fk4, 2, 0.05)
    # quantities accepted
    q = SkyGrid.from_center((83.633 * u.deg, 22.014 * u.deg), 120 * u.arcmin, 3 * u.arcmin)
    assert q.is_same(SkyGrid.from_center((83.633, 22.014), 2, 0.05))


@pytest.mark.parametrize(
    ("center", "frame", "other"),
    [((0, 89), "icrs", "galactic"), ((10, 86), "icrs", "galactic"), ((0, -88), "galactic", "icrs")],
)
def test_pole_error_names_other_frame(center, frame, other):
    with pytest.raises(ValueError, match=f"'{other}' frame"):
        SkyGrid.from_center(center, 5, 0.02, frame=frame)


def test_high_latitude_allowed_within_distortion_limit():
    grid = SkyGrid.from_center((10, 80), 5, 0.02)
    assert grid.shape == (250, 250)
    assert grid.lon_step == pytest.approx(0.02 / np.cos(np.radians(80)))


# ---------------------------------------------------------------------------- from_coords


@pytest.mark.parametrize(("case", "frame"), [("crab_runs", "icrs"), ("msh1552_ring", "galactic")])
@pytest.mark.reference
def test_from_coords_reference_grids(reference_dir, case, frame):
    ref = np.load(reference_dir / f"{case}.npz")
    grid = SkyGrid.from_coords(ref["lon"], ref["lat"], frame)
    assert np.all(np.diff(ref["lon"]) < 0)  # the reference is decreasing ...
    assert np.all(np.diff(grid.lon) > 0)  # ... our grid increasing, same pixel centres
    np.testing.assert_array_equal(grid.lon, np.sort(ref["lon"]))
    np.testing.assert_array_equal(grid.lat, np.sort(ref["lat"]))
    assert grid.lon_step == pytest.approx(0.02) and grid.lat_step == pytest.approx(0.02)


def test_from_coords_unwraps_and_validates():
    lon = np.array([359.98, 359.99, 0.0, 0.01])
    grid = SkyGrid.from_coords(lon, [1.0, 2.0], "icrs")
    np.testing.assert_allclose(grid.lon, [359.98, 359.99, 360.0, 360.01])
    down = SkyGrid.from_coords(lon[::-1], [2.0, 1.0], "icrs")
    assert down.is_same(grid)
    with pytest.raises(ValueError, match="not regular"):
        SkyGrid.from_coords([0.0, 1.0, 3.0], [0.0, 1.0], "icrs")
    with pytest.raises(ValueError, match="frame"):
        SkyGrid.from_coords([0.0, 1.0], [0.0, 1.0], "fk5")
    with pytest.raises(ValueError, match="-90, 90"):
        SkyGrid.from_coords([0.0, 1.0], [89.0, 90.0], "icrs")
    with pytest.raises(ValueError, match="single"):
        SkyGrid([1.0], [0.0, 1.0], "icrs")


def test_immutable():
    grid = SkyGrid.from_center((0, 0), 1, 0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.frame = "galactic"
    with pytest.raises(ValueError, match="read-only"):
        grid.lon[0] = 5.0
    with pytest.raises(TypeError):
        hash(grid)
    assert pickle.loads(pickle.dumps(grid)).is_same(grid, rtol=0)  # ships to dask workers


def test_is_same_tolerance_and_wrap():
    grid = SkyGrid.from_center((0.5, 0), 5, 0.02)
    assert grid == SkyGrid(grid.lon + 360, grid.lat, "icrs")
    assert not grid.is_same(SkyGrid(grid.lon + 1e-3, grid.lat, "icrs"))
    assert grid.is_same(SkyGrid(grid.lon + 1e-3, grid.lat, "icrs"), rtol=0.1)
    assert grid != SkyGrid(grid.lon, grid.lat, "galactic")
    assert grid != SkyGrid(grid.lon[:-1], grid.lat, "icrs")


# ---------------------------------------------------------------------------- xarray


def test_dataset_round_trip():
    grid = SkyGrid.from_center((266.4, -28.9), (3, 2), 0.05, frame="icrs")
    ds = grid.to_dataset({"energy": ("energy", [1.0, 2.0])}, obs_id=[1])
    assert ds.attrs["frame"] == "icrs"
    assert ds.lon.attrs["units"] == "deg" and ds.lat.attrs["units"] == "deg"
    assert set(ds.coords) == {"lon", "lat", "energy", "obs_id"}
    assert SkyGrid.from_xarray(ds).is_same(grid, rtol=0)
    # DataArray without dataset attrs: the frame is on the coordinates
    da_ = xr.DataArray(np.zeros(grid.shape), dims=("lat", "lon"), coords=grid.coords)
    assert SkyGrid.from_xarray(da_).is_same(grid, rtol=0)
    # a single-pixel selection still knows its steps
    one = SkyGrid.from_xarray(ds.isel(lon=[7], lat=[3]))
    assert one.shape == (1, 1) and one.lon_step == grid.lon_step
    assert one.slices_in(grid) == {"lat": slice(3, 4), "lon": slice(7, 8)}
    # Gammapy orientation (decreasing lon) gives the same grid
    assert SkyGrid.from_xarray(ds.isel(lon=slice(None, None, -1))).is_same(grid, rtol=0)
    with pytest.raises(KeyError, match="frame"):
        SkyGrid.from_xarray(xr.Dataset(coords={"lon": [0.0, 1.0], "lat": [0.0, 1.0]}))


def test_from_xarray_same_coordinates_give_the_same_checked_grid():
    grid = SkyGrid.from_center((83.63, 22.01), 2, 0.05, frame="icrs")
    ds = grid.to_dataset({"energy": ("energy", [1.0, 2.0])}, obs_id=[1])
    first = SkyGrid.from_xarray(ds)
    # equal coordinates in other memory (a deep copy, a DataArray of the dataset): the
    # same immutable grid, not checked again; its axes cannot be written through
    assert SkyGrid.from_xarray(ds.copy(deep=True)) is first
    on_grid = xr.DataArray(np.zeros(grid.shape), dims=("lat", "lon"), coords=grid.coords)
    assert SkyGrid.from_xarray(on_grid) is first
    with pytest.raises(ValueError, match="read-only"):
        first.lon[0] = 0.0
    # anything that changes the grid gives another one
    galactic = SkyGrid.from_xarray(ds.assign_attrs(frame="galactic"))
    assert galactic.frame == "galactic" and first.frame == "icrs"
    shifted = SkyGrid.from_xarray(ds.assign_coords(lon=ds.lon.values + 0.05))
    assert shifted.lon[0] == pytest.approx(first.lon[0] + 0.05, abs=1e-12)
    one = ds.isel(lon=[3], lat=[2])
    wider = one.assign_coords(lon=one.lon.assign_attrs(step=0.1))
    assert SkyGrid.from_xarray(one).lon_step == pytest.approx(grid.lon_step)
    assert SkyGrid.from_xarray(wider).lon_step == 0.1
    # a bad grid raises at every call, never remembered as a grid
    lon = ds.lon.values.copy()
    lon[5] += 0.01
    irregular = ds.assign_coords(lon=("lon", lon, ds.lon.attrs))
    for _ in range(2):
        with pytest.raises(ValueError, match="not regular"):
            SkyGrid.from_xarray(irregular)


# ---------------------------------------------------------------------------- WCS


@pytest.mark.parametrize(
    ("center", "frame"),
    [
        ((83.633, 22.014), "icrs"),
        ((0.3, -30.0), "icrs"),
        ((359.0, 1.0), "galactic"),
        ((184.6, -5.8), "galactic"),
    ],
)
def test_wcs_matches_every_pixel(center, frame):
    grid = SkyGrid.from_center(center, (3, 2), 0.02, frame=frame)
    wcs = grid.wcs
    assert wcs.array_shape == grid.shape
    assert wcs.wcs.crval[1] == 0.0
    jj, ii = np.indices(grid.shape)
    world = wcs.pixel_to_world(ii, jj)
    sph = world.spherical
    assert np.abs(_wrap(sph.lon.deg - grid.lon[ii])).max() < 1e-9
    assert np.abs(sph.lat.deg - grid.lat[jj]).max() < 1e-9
    # and back: random positions to pixels agree with the WCS
    rng = np.random.default_rng(1)
    lon = grid.lon[0] + rng.uniform(-1, grid.shape[1] + 1, 500) * grid.lon_step
    lat = grid.lat[0] + rng.uniform(-1, grid.shape[0] + 1, 500) * grid.lat_step
    px, py = wcs.world_to_pixel(SkyCoord(lon, lat, unit="deg", frame=frame))
    i_lon, i_lat = grid.to_pixel(lon % 360, lat)
    np.testing.assert_allclose(i_lon, px, atol=1e-7)
    np.testing.assert_allclose(i_lat, py, atol=1e-7)
    assert "CAR" in wcs.wcs.ctype[0] and wcs.wcs.ctype[0].startswith(
        "RA" if frame == "icrs" else "GLON"
    )


# ---------------------------------------------------------------------------- solid angle


@pytest.mark.parametrize(
    ("center", "width", "binsz"), [((0, 0), 40, 5), ((120, -50), (30, 20), 2.5)]
)
def test_solid_angle_sums_to_box_area(center, width, binsz):
    grid = SkyGrid.from_center(center, width, binsz)
    sa = grid.solid_angle()
    assert sa.dims == ("lat", "lon") and sa.attrs["units"] == "sr"
    lo, hi = np.radians(grid.lat_edges[[0, -1]])
    area = np.radians(grid.lon_step * grid.shape[1]) * (np.sin(hi) - np.sin(lo))
    assert float(sa.sum()) == pytest.approx(area, rel=1e-12)
    # exact per row: numerical integral of cos(lat) over each pixel's lat band
    rows = [
        np.radians(grid.lon_step) * quad(np.cos, np.radians(b0), np.radians(b1))[0]
        for b0, b1 in zip(grid.lat_edges[:-1], grid.lat_edges[1:], strict=True)
    ]
    np.testing.assert_allclose(sa.values[:, 0], rows, rtol=1e-12)
    assert np.all(sa.values == sa.values[:, :1])


def test_all_sky_solid_angle():
    grid = SkyGrid.all_sky(1.0, "galactic")
    assert grid.shape == (180, 360) and grid.is_full_circle
    assert float(grid.solid_angle().sum()) == pytest.approx(4 * np.pi, rel=1e-12)
    with pytest.raises(ValueError, match="divide"):
        SkyGrid.all_sky(0.7)


def test_all_sky_takes_angles_in_any_unit():
    plain = SkyGrid.all_sky(2.0, "icrs", lon_center=180.0)
    for binsz, centre in ((120 * u.arcmin, np.pi * u.rad), ("2 deg", "180 deg")):
        grid = SkyGrid.all_sky(binsz, "icrs", lon_center=centre)
        np.testing.assert_allclose(grid.lon, plain.lon, atol=1e-9)
        np.testing.assert_allclose(grid.lat, plain.lat, atol=1e-9)
    with pytest.raises(u.UnitConversionError, match="binsz"):
        SkyGrid.all_sky(2 * u.TeV)
    with pytest.raises(ValueError, match="binsz"):
        SkyGrid.all_sky(-1.0)


# ---------------------------------------------------------------------------- positions


def test_separation_any_frame():
    grid = SkyGrid.from_center((83.633, 22.014), 3, 0.1)
    src = SkyCoord(184.557, -5.784, unit="deg", frame="galactic")
    sep = grid.separation(src)
    assert sep.dims == ("lat", "lon") and sep.attrs["units"] == "deg"
    expected = grid.skycoord().separation(src).deg
    np.testing.assert_allclose(sep.values, expected, atol=1e-9)
    np.testing.assert_allclose(
        grid.separation((184.557, -5.784), frame="galactic"), expected, atol=1e-9
    )


def test_lon_wrap_events():
    grid = SkyGrid.from_center((0.5, 0.0), 5, 0.02)
    assert grid.lon[0] < 0 < grid.lon[-1]
    lon = np.array([359.95, 0.15, -0.05, 719.95])  # pixel centres, far from edges
    i_lon, _, inside = grid.bin_indices(lon, np.zeros(4))
    assert inside.all()
    for k in range(4):  # each event lies within half a pixel of its pixel centre
        assert abs(_wrap(grid.lon[i_lon[k]] - lon[k])) <= grid.lon_step / 2
    assert i_lon[0] == i_lon[2] == i_lon[3] and i_lon[1] == i_lon[0] + 10
    # the brief's example, 359.9 and 0.1 (0.1 deg from the middle, on pixel edges): right pixels
    k_lon, _, ok = grid.bin_indices(np.array([359.9, 0.1]), np.zeros(2))
    assert ok.all()
    assert np.all(np.abs(_wrap(grid.lon[k_lon] - [359.9, 0.1])) <= grid.lon_step / 2 + 1e-9)
    # same pixels as the equivalent WCS says
    px, _ = grid.wcs.world_to_pixel(SkyCoord(lon, np.zeros(4), unit="deg"))
    np.testing.assert_array_equal(i_lon, np.floor(px + 0.5).astype(int))


def test_to_pixel_other_frame_and_skycoord():
    grid = SkyGrid.from_center((184.557, -5.784), 4, 0.05, frame="galactic")
    rng = np.random.default_rng(3)
    crab = SkyCoord(83.633 + rng.normal(0, 1, 300), 22.014 + rng.normal(0, 1, 300), unit="deg")
    px, py = grid.wcs.world_to_pixel(crab)
    i_lon, i_lat = grid.to_pixel(crab.ra.deg, crab.dec.deg, frame="icrs")
    np.testing.assert_allclose(i_lon, px, atol=1e-7)
    np.testing.assert_allclose(i_lat, py, atol=1e-7)
    s_lon, s_lat = grid.to_pixel(crab)
    np.testing.assert_allclose(s_lon, px, atol=1e-7)
    np.testing.assert_allclose(s_lat, py, atol=1e-7)
    with pytest.raises(TypeError):
        grid.to_pixel(crab, crab.dec.deg)


def test_bin_indices_edges_and_nan():
    grid = SkyGrid.from_coords([0.5, 1.5, 2.5], [0.5, 1.5], "icrs")
    lon = np.array([0.0, 2.999, 3.0, -0.001, 1.0, np.nan])
    lat = np.array([0.0, 1.999, 1.0, 1.0, 2.0, 1.0])
    i_lon, i_lat, inside = grid.bin_indices(lon, lat)
    np.testing.assert_array_equal(inside, [True, True, False, False, False, False])
    np.testing.assert_array_equal(i_lon, [0, 2, -1, -1, -1, -1])
    np.testing.assert_array_equal(i_lat, [0, 1, -1, -1, -1, -1])


def test_bin_indices_lazy_on_dask(raise_on_compute):
    grid = SkyGrid.from_center((83.633, 22.014), 2, 0.02)
    rng = np.random.default_rng(0)
    ra, dec = 83.6 + rng.normal(0, 0.7, 1000), 22.0 + rng.normal(0, 0.7, 1000)
    lon = xr.DataArray(da.from_array(ra, chunks=300), dims="event")
    lat = xr.DataArray(da.from_array(dec, chunks=300), dims="event")
    lazy = grid.bin_indices(lon, lat, frame="icrs")
    lazy_gal = grid.bin_indices(*transform(ra, dec), frame="galactic")
    assert all(isinstance(x.data, da.Array) for x in (*lazy, *lazy_gal))
    expected = grid.bin_indices(ra, dec)
    with __import__("dask").config.set(scheduler="sync"):
        for got, exp in zip(lazy, expected, strict=True):
            np.testing.assert_array_equal(got.values, exp)
        for got, exp in zip(lazy_gal, expected, strict=True):
            np.testing.assert_array_equal(got.values, exp)


def transform(ra, dec):
    gal = SkyCoord(ra, dec, unit="deg").galactic
    return (
        xr.DataArray(da.from_array(gal.l.deg, chunks=300), dims="event"),
        xr.DataArray(da.from_array(gal.b.deg, chunks=300), dims="event"),
    )


@pytest.mark.hess
def test_binning_reproduces_reference_counts(reference_dir, hess_dir):
    """Events of the Crab runs binned with bin_indices give Gammapy's counts pixel by pixel."""
    from astropy.io import fits

    ref = np.load(reference_dir / "crab_runs.npz")
    grid = SkyGrid.from_coords(ref["lon"], ref["lat"], "icrs")
    for obs_id in (23523, 23592):
        events = fits.getdata(
            hess_dir / "data" / f"hess_dl3_dr1_obs_id_0{obs_id}.fits.gz", "EVENTS"
        )
        sel = (events["ENERGY"] >= 1) & (events["ENERGY"] < 10)
        ra, dec = events["RA"][sel].astype(float), events["DEC"][sel].astype(float)
        i_lon, i_lat, ok = grid.bin_indices(ra, dec)
        counts = np.bincount(
            i_lat[ok] * grid.shape[1] + i_lon[ok], minlength=grid.lon.size * grid.lat.size
        )
        expected = ref[f"counts_{obs_id}"].sum(axis=0)[:, ::-1]  # reference lon decreases
        np.testing.assert_array_equal(counts.reshape(grid.shape), expected)


# ---------------------------------------------------------------------------- cutouts


def test_cutout_is_exact_subgrid():
    parent = SkyGrid.from_center((83.633, 22.014), 5, 0.02)
    cut = parent.cutout(SkyCoord(83.2, 21.5, unit="deg"), 1.0)
    assert cut.shape == (50, 50)
    sl = cut.slices_in(parent)
    np.testing.assert_array_equal(cut.lon, parent.lon[sl["lon"]])
    np.testing.assert_array_equal(cut.lat, parent.lat[sl["lat"]])
    # the cutout's middle is within half a pixel of the requested centre
    assert abs(cut.center.ra.deg - 83.2) <= parent.lon_step / 2 + 1e-9
    assert abs(cut.center.dec.deg - 21.5) <= parent.lat_step / 2 + 1e-9
    ds = parent.to_dataset().assign(x=(("lat", "lon"), np.arange(250 * 250.0).reshape(250, 250)))
    sub = ds.isel(sl)
    assert SkyGrid.from_xarray(sub).is_same(cut, rtol=0)


def test_cutout_clipped_and_no_overlap():
    parent = SkyGrid.from_center((10.0, 0.0), 2, 0.1)
    corner = parent.cutout((9.0, -1.0), 1.0)
    assert corner.shape == (5, 5)
    assert corner.slices_in(parent) == {"lat": slice(0, 5), "lon": slice(0, 5)}
    with pytest.raises(ValueError, match="overlap"):
        parent.cutout((20.0, 0.0), 1.0)
    with pytest.raises(ValueError, match="exactly one"):
        parent.cutout((10.0, 0.0))


def test_cutout_across_wrap_and_other_frame():
    parent = SkyGrid.from_center((0.0, 0.0), 10, 0.1)
    cut = parent.cutout((359.0, 0.0), 2.0)
    sl = cut.slices_in(parent)
    np.testing.assert_array_equal(cut.lon, parent.lon[sl["lon"]])
    assert cut.lon.min() < 0 < parent.lon.max()
    shifted = SkyGrid(cut.lon + 360, cut.lat, cut.frame)  # the same grid written differently
    assert shifted.slices_in(parent) == sl
    gal = parent.cutout(SkyCoord(0.0, 0.0, unit="deg").galactic, 2.0)
    assert gal.is_same(parent.cutout((0.0, 0.0), 2.0))


def test_slices_in_rejects_non_subgrids():
    parent = SkyGrid.from_center((10.0, 0.0), 2, 0.1)
    with pytest.raises(ValueError, match="sub-grid"):
        SkyGrid(parent.lon + 0.05, parent.lat, "icrs").slices_in(parent)
    with pytest.raises(ValueError, match="step"):
        parent.upsample(2).slices_in(parent)
    with pytest.raises(ValueError, match="frame"):
        SkyGrid(parent.lon, parent.lat, "galactic").slices_in(parent)


@settings(max_examples=40, deadline=None)
@given(
    lon=st.floats(-20, 20),
    lat=st.floats(-65, 65),
    radius=st.floats(0.05, 3.0),
)
def test_radius_cutout_contains_the_circle(lon, lat, radius):
    parent = SkyGrid(np.arange(-22, 22, 0.25) + 0.125, np.arange(-70, 70, 0.25) + 0.125, "icrs")
    cut = parent.cutout((lon % 360, lat), radius=radius)
    sl = cut.slices_in(parent)
    np.testing.assert_array_equal(cut.lon, parent.lon[sl["lon"]])
    inside = (parent.separation((lon, lat)) < radius).values
    in_cut = np.zeros(parent.shape, bool)
    in_cut[sl["lat"], sl["lon"]] = True
    assert not np.any(inside & ~in_cut)
    # and it is not much bigger than the circle's bounding box
    assert cut.shape[0] <= 2 * radius / parent.lat_step + 2


@settings(max_examples=30, deadline=None)
@given(
    lon=st.floats(0, 360, exclude_max=True),
    lat=st.floats(-60, 60),
    width=st.floats(0.3, 4),
)
def test_width_cutout_matches_from_center_counts(lon, lat, width):
    """A cutout far from the parent edges has as many pixels as from_center would give."""
    parent = SkyGrid.from_center((lon, lat), 12, 0.1)
    cut = parent.cutout((lon, lat), width)
    assert cut.shape == SkyGrid.from_center((lon, lat), width, 0.1).shape
    sl = cut.slices_in(parent)
    np.testing.assert_array_equal(cut.lon, parent.lon[sl["lon"]])
    np.testing.assert_array_equal(cut.lat, parent.lat[sl["lat"]])


# ---------------------------------------------------------------------------- resampling


def test_upsample_downsample():
    grid = SkyGrid.from_center((83.633, 22.014), (2, 1), 0.1)
    up = grid.upsample(4)
    assert up.shape == (40, 80)
    np.testing.assert_allclose(up.lon_edges[[0, -1]], grid.lon_edges[[0, -1]], atol=1e-12)
    np.testing.assert_allclose(up.lat_edges[::4], grid.lat_edges, atol=1e-12)
    assert up.downsample(4).is_same(grid)
    # coordinates as xarray's coarsen makes them
    ds = up.to_dataset().assign(x=(("lat", "lon"), np.ones(up.shape)))
    coarse = ds.coarsen(lat=4, lon=4).sum()
    assert SkyGrid.from_xarray(coarse.assign_attrs(frame="icrs")).is_same(grid)
    np.testing.assert_allclose(
        float(up.solid_angle().sum()), float(grid.solid_angle().sum()), rtol=1e-12
    )
    with pytest.raises(ValueError, match="divisible"):
        grid.downsample(3)
    with pytest.raises(ValueError, match="positive integer"):
        grid.upsample(0)


def test_grid_slices_function_and_repr():
    parent = SkyGrid.all_sky(2.0, "icrs", lon_center=180.0)
    cut = parent.cutout((10.0, 5.0), 6.0)
    assert grid_slices(cut, parent) == cut.slices_in(parent)
    assert "SkyGrid(frame='icrs'" in repr(cut)
    assert angular_separation(0.0, 0.0, 90.0, 0.0) == pytest.approx(90.0)
