"""Background models from off runs: simulated runs with a known rate, and H.E.S.S. DR1."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from gammaxr.data import open_datastore
from gammaxr.geom import SkyGrid, fov_to_sky
from gammaxr.io.gadf_write import events_to_hdu, gti_to_hdu, write_fits, write_index_files
from gammaxr.irf.background_model import (
    background_counts,
    background_irf,
    background_model,
    make_background_model,
    smooth_background,
)
from gammaxr.irf.background_store import write_background_models, write_background_store
from gammaxr.reduce.dataset import ReductionSpec, reduce_observation

RADIUS = 2.5  # deg, disk in which the simulated background is drawn
EMIN, EMAX, INDEX = 0.5, 50.0, 2.7  # TeV, power law of the simulated background
DURATION = 2000.0  # s
N_EVENTS = 20000  # mean number of events per run
GRADIENT = 0.8  # relative slope of the rate along fov_lon (rate ~ 1 + a fov_lon / RADIUS)
ENERGY_EDGES = np.geomspace(EMIN, EMAX, 9)
OFFSET_EDGES = np.sqrt(np.linspace(0, RADIUS**2, 6))
FOV_EDGES = np.linspace(-1.5, 1.5, 7)  # inside the disk: corner at 2.1 deg
# (obs_id, ra, dec, zenith, legacy H.E.S.S. events header)
RUNS = [
    (1, 83.6, 22.0, 10.0, False),
    (2, 10.0, -30.0, 15.0, True),
    (3, 200.0, 60.0, 30.0, False),
    (4, 300.0, 5.0, 35.0, True),
    (5, 150.0, -60.0, 50.0, False),
    (6, 250.0, 45.0, 55.0, False),
]
SOLID_ANGLE_DISK = 2 * np.pi * (1 - np.cos(np.radians(RADIUS)))
# rate normalisation at 1 TeV, s-1 MeV-1 sr-1: N = T * Omega * 1e6 * int K E^-INDEX dE
K_RATE = N_EVENTS / (
    DURATION * SOLID_ANGLE_DISK * 1e6 * (EMIN ** (1 - INDEX) - EMAX ** (1 - INDEX)) / (INDEX - 1)
)


def true_rate(energy_lo, energy_hi, fov_lon=0.0, gradient=0.0):
    """Bin-averaged true rate (s-1 MeV-1 sr-1) over [energy_lo, energy_hi) TeV."""
    integral = (energy_lo ** (1 - INDEX) - energy_hi ** (1 - INDEX)) / (INDEX - 1)
    return K_RATE * integral / (energy_hi - energy_lo) * (1 + gradient * fov_lon / RADIUS)


def simulate_events(rng, ra0, dec0, tstart, gradient):
    """Events drawn uniformly (times a linear fov_lon gradient) in a disk, power-law energies."""
    n = rng.poisson(N_EVENTS * (1 + gradient))
    cos_theta = rng.uniform(np.cos(np.radians(RADIUS)), 1.0, n)
    theta, phi = np.arccos(cos_theta), rng.uniform(0, 2 * np.pi, n)
    x, y, z = cos_theta, np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi)
    fov_lon, fov_lat = -np.degrees(np.arctan2(y, x)), np.degrees(np.arcsin(z))
    keep = rng.uniform(0, 1 + gradient, n) < 1 + gradient * fov_lon / RADIUS
    ra, dec = fov_to_sky(fov_lon[keep], fov_lat[keep], ra0, dec0)
    u = rng.uniform(0, 1, ra.size)
    a, b = EMIN ** (1 - INDEX), EMAX ** (1 - INDEX)
    energy = (a + u * (b - a)) ** (1 / (1 - INDEX))
    time = tstart + np.sort(rng.uniform(0, DURATION, ra.size))
    return ra, dec, energy, time


def make_store(directory, gradient=0.0, seed=1):
    """A GADF data store of the simulated runs (events and GTI only), written with gadf_write."""
    rng = np.random.default_rng(seed)
    time_ref = {"MJDREFI": 51910, "MJDREFF": 0.0, "TIMESYS": "TT", "TIMEUNIT": "s"}
    index_rows, table = [], {k: [] for k in ("OBS_ID", "RA_PNT", "DEC_PNT", "ZEN_PNT")}
    for k, (obs_id, ra0, dec0, zen, legacy) in enumerate(RUNS):
        tstart = 1e8 + 1e4 * k
        ra, dec, energy, time = simulate_events(rng, ra0, dec0, tstart, gradient)
        header = {
            "OBS_ID": obs_id,
            "RA_PNT": ra0,
            "DEC_PNT": dec0,
            "ZEN_PNT": zen,
            "TSTART": tstart,
            "TSTOP": tstart + DURATION,
            "ONTIME": DURATION,
            "LIVETIME": 0.9 * DURATION,
            "DEADC": 0.9,
            **time_ref,
        }
        if legacy:  # events header of the H.E.S.S. DR1 files (REVERSE_LON_RADEC rule)
            header.update(CREATOR="SASH FITS::EventListWriter", HDUVERS="0.2")
        events = xr.Dataset(
            {
                "EVENT_ID": ("event", np.arange(ra.size, dtype=np.int64)),
                "TIME": ("event", time, {"units": "s"}),
                "RA": ("event", ra, {"units": "deg"}),
                "DEC": ("event", dec, {"units": "deg"}),
                "ENERGY": ("event", energy, {"units": "TeV"}),
            },
            attrs=header,
        )
        gti = xr.Dataset(
            {"START": ("gti", [tstart], {"units": "s"}), "STOP": ("gti", [tstart + DURATION])},
            attrs=time_ref,
        )
        name = f"run_{obs_id:03d}.fits.gz"
        write_fits(directory / "data" / name, [events_to_hdu(events), gti_to_hdu(gti)])
        for hdu_type in ("events", "gti"):
            index_rows.append((obs_id, hdu_type, hdu_type, "data", name, hdu_type.upper()))
        for key, value in zip(table, (obs_id, ra0, dec0, zen), strict=True):
            table[key].append(value)
    columns = ("obs_id", "hdu_type", "hdu_class", "file_dir", "file_name", "hdu_name")
    hdu_index = xr.Dataset(
        {
            c: ("hdu", np.array(v))
            for c, v in zip(columns, zip(*index_rows, strict=True), strict=True)
        }
    )
    obs_table = xr.Dataset(
        {
            c: ("obs_id", np.array(v), {"units": "deg" if c != "obs_id" else ""})
            for c, v in table.items()
        },
        attrs={"MJDREFI": 51910, "MJDREFF": 0.0, "TIMESYS": "TT"},
    )
    write_index_files(directory, hdu_index, obs_table)
    return open_datastore(directory)


@pytest.fixture(scope="module")
def flat_store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("flat"))


@pytest.fixture(scope="module")
def gradient_store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("gradient"), gradient=GRADIENT, seed=2)


def pulls(model, truth):
    """(counts - expected) / sqrt(expected), expected = true rate * exposure."""
    expected = truth * model["exposure"]
    return (model["counts"] - expected) / np.sqrt(expected)


def energy_lo_hi(model):
    bounds = model["energy_bounds"].values
    return (xr.DataArray(bounds[:, i], dims="energy") for i in (0, 1))


# ----------------------------------------------------------------------------- simulated runs


def test_offset_rate_recovered(flat_store):
    model = make_background_model(flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES)
    lo, hi = energy_lo_hi(model)
    pull = pulls(model, true_rate(lo, hi)).values
    assert model["bkg"].dims == ("energy", "offset")
    assert model["bkg"].attrs["units"] == "s-1 MeV-1 sr-1"
    assert np.all(np.abs(pull) < 5)
    assert 0.5 < np.mean(pull**2) < 1.6  # chi2 / dof
    assert abs(pull.sum() / np.sqrt(pull.size)) < 4  # no overall bias
    # every event is in the disk and in the energy range: nothing lost
    assert float(model["counts"].sum()) == sum(
        o.events.sizes["event"] for o in flat_store.observations()
    )
    assert float(model["obs_time"]) == pytest.approx(len(RUNS) * DURATION)
    # ring solid angles are exact: 5 equal-area rings add up to the disk
    one_run = background_counts(flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES).isel(obs_id=0)
    assert float(one_run["solid_angle"].sum()) == pytest.approx(SOLID_ANGLE_DISK, rel=1e-12)


@pytest.mark.parametrize("time, factor", [("duration", 1.0), ("ontime", 1.0), ("livetime", 0.9)])
def test_time_definitions(flat_store, time, factor):
    counts = background_counts(flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES, time=time)
    np.testing.assert_allclose(counts["obs_time"].values, factor * DURATION)
    assert counts.attrs["time"] == time


def test_fov_rate_and_sign(gradient_store):
    model = make_background_model(
        gradient_store, ENERGY_EDGES, fov_lon_edges=FOV_EDGES, fov_lat_edges=FOV_EDGES
    )
    lo, hi = energy_lo_hi(model)
    truth = true_rate(lo, hi, model["fov_lon"], GRADIENT)
    pull = pulls(model, truth).values
    assert model["bkg"].dims == ("energy", "fov_lon", "fov_lat")
    assert model.attrs["fov_alignment"] == "RADEC"
    assert np.all(np.abs(pull) < 5) and 0.5 < np.mean(pull**2) < 1.6
    # the mirrored truth is clearly rejected: the sign of fov_lon is right
    mirrored = pulls(model, true_rate(lo, hi, -model["fov_lon"], GRADIENT)).values
    assert np.mean(mirrored**2) > 5
    # FoV bins have their exact solid angle (dlon * (sin lat2 - sin lat1))
    solid = background_counts(
        gradient_store, ENERGY_EDGES, fov_lon_edges=FOV_EDGES, fov_lat_edges=FOV_EDGES
    )["solid_angle"].isel(obs_id=0)
    lat = np.radians(FOV_EDGES)
    exact = np.radians(0.5) * (np.sin(lat[1:]) - np.sin(lat[:-1]))
    np.testing.assert_allclose(solid.values, np.broadcast_to(exact, (6, 6)), rtol=1e-12)


def test_grouping_by_zenith(flat_store):
    counts = background_counts(flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES).compute()
    model = background_model(counts, {"ZEN_PNT": [0, 20, 40, 90]})
    assert model["bkg"].dims == ("zen_pnt", "energy", "offset")
    np.testing.assert_array_equal(model["n_runs"].values, [2, 2, 2])
    np.testing.assert_array_equal(model["zen_pnt_bounds"].values, [[0, 20], [20, 40], [40, 90]])
    per_run = counts["counts"].sum(("energy", "offset")).values
    np.testing.assert_allclose(
        model["counts"].sum(("energy", "offset")), per_run.reshape(3, 2).sum(1)
    )
    np.testing.assert_allclose(model["obs_time"], 2 * DURATION)
    # each group recovers the same true rate
    lo, hi = energy_lo_hi(model)
    assert np.all(np.abs(pulls(model, true_rate(lo, hi))) < 5)
    # two columns give two group dims; runs outside every bin are left out
    two = background_model(counts, {"zen_pnt": [0, 40], "dec_pnt": [-90, 0, 90]})
    assert two["bkg"].dims == ("zen_pnt", "dec_pnt", "energy", "offset")
    np.testing.assert_array_equal(two["n_runs"].values, [[1, 3]])
    with pytest.raises(KeyError, match="NO_SUCH"):
        background_model(counts, {"NO_SUCH": [0, 1]})


def test_exclusion_regions_unbiased(flat_store):
    # exclude a circle 1 deg east of every pointing: less solid angle, same rate
    centre = 0.3
    circles = [
        f"circle({ra + 1.0 / np.cos(np.radians(dec)):.6f}, {dec}, {centre})"
        for _, ra, dec, *_ in RUNS
    ]
    region_text = "icrs\n" + "\n".join(circles)
    counts = background_counts(
        flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES, exclusion=region_text
    ).compute()
    full = background_counts(flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES).compute()
    lost = full["solid_angle"] - counts["solid_angle"]
    # each run loses the solid angle of one circle (several circles reach each run's rings
    # only for runs close in the sky: none here), to pixel accuracy
    circle = 2 * np.pi * (1 - np.cos(np.radians(centre)))
    np.testing.assert_allclose(lost.sum("offset"), circle, rtol=0.03)
    assert float(lost.sel(offset=slice(2.0, None)).sum()) == 0.0
    assert float(counts["counts"].sum()) < float(full["counts"].sum())
    model = background_model(counts)
    lo, hi = energy_lo_hi(model)
    pull = pulls(model, true_rate(lo, hi)).values
    assert np.all(np.abs(pull) < 5) and abs(pull.sum() / np.sqrt(pull.size)) < 4


def test_exclusion_mask_array(flat_store):
    # a mask (True = usable) on a grid around run 1 excluding everything with dec > 22:
    # half of the inner ring is lost for run 1 only
    grid = SkyGrid.from_center((83.6, 22.0), 8.0, 0.02)
    usable = np.broadcast_to(grid.lat[:, None] <= 22.0, grid.shape)
    mask = xr.DataArray(
        usable,
        dims=("lat", "lon"),
        coords={"lat": grid.lat, "lon": grid.lon},
        attrs={"frame": "icrs"},
    )
    counts = background_counts(
        flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES, exclusion=mask
    ).compute()
    ring = 2 * np.pi * (1 - np.cos(np.radians(OFFSET_EDGES[1])))
    assert float(counts["solid_angle"].sel(obs_id=1).isel(offset=0)) == pytest.approx(
        ring / 2, rel=0.02
    )
    assert float(counts["solid_angle"].sel(obs_id=2).isel(offset=0)) == pytest.approx(ring)


def test_smoothing(flat_store):
    model = make_background_model(flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES)
    smooth = smooth_background(model, {"offset": 1.5})
    np.testing.assert_allclose(smooth["counts"].sum("offset"), model["counts"].sum("offset"))
    np.testing.assert_allclose(smooth["exposure"].sum("offset"), model["exposure"].sum("offset"))
    assert smooth.attrs["smoothing"] == {"offset": 1.5}
    lo, hi = energy_lo_hi(model)
    truth = true_rate(lo, hi)
    # a flat truth stays flat: smoothing only removes noise
    scatter = float(((model["bkg"] / truth - 1) ** 2).mean())
    assert float(((smooth["bkg"] / truth - 1) ** 2).mean()) < scatter
    well_measured = (smooth["bkg"] / truth - 1).isel(energy=slice(0, 3))  # >= 4000 counts/bin
    assert float(abs(well_measured).max()) < 0.05
    same = make_background_model(
        flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES, smooth={"offset": 1.5}
    )
    xr.testing.assert_allclose(same, smooth)
    with pytest.raises(ValueError, match="cannot smooth"):
        smooth_background(model, {"fov_lon": 1.0})


def test_lazy_one_task_per_run(flat_store, raise_on_compute):
    counts = background_counts(flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES)
    assert counts["counts"].chunks[0] == (1,) * len(RUNS)
    model = background_model(counts, {"zen_pnt": [0, 20, 40, 90]}, smooth={"energy": 0.5})
    assert model["bkg"].chunks is not None
    histogram_tasks = [k for k in dict(counts["counts"].data.dask) if str(k).startswith("bkg-hist")]
    assert len(histogram_tasks) == len(RUNS)


def test_lazy_equals_eager(flat_store):
    counts = background_counts(flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES)
    lazy = background_model(counts, {"zen_pnt": [0, 20, 40, 90]}).compute()
    eager = background_model(counts.compute(), {"zen_pnt": [0, 20, 40, 90]})
    xr.testing.assert_allclose(lazy, eager)


def test_failing_run(tmp_path, flat_store):
    obs = flat_store.observations()
    broken = tmp_path / "broken"
    # a store whose run 3 points to a missing file
    index = flat_store.hdu_table
    path = index["path"].values.copy()
    path[index["obs_id"].values == 3] = str(broken / "missing.fits")
    write_index_files(broken, index.assign(path=("hdu", path)), flat_store.obs_table)
    store = open_datastore(broken)
    with pytest.raises(RuntimeError, match="obs_id 3"):
        background_counts(store, ENERGY_EDGES, offset_edges=OFFSET_EDGES).compute()
    with pytest.warns(RuntimeWarning, match="obs_id 3"):
        counts = background_counts(
            store, ENERGY_EDGES, offset_edges=OFFSET_EDGES, on_error="skip"
        ).compute()
    assert counts["ok"].values.tolist() == [i != 3 for i, *_ in RUNS]
    model = background_model(counts)
    assert float(model["obs_time"]) == (len(obs) - 1) * DURATION


def test_bad_arguments(flat_store):
    with pytest.raises(ValueError, match="offset_edges or both"):
        background_counts(flat_store, ENERGY_EDGES)
    with pytest.raises(ValueError, match="offset_edges or both"):
        background_counts(flat_store, ENERGY_EDGES, offset_edges=[0, 1], fov_lon_edges=[0, 1])
    with pytest.raises(ValueError, match="increasing"):
        background_counts(flat_store, ENERGY_EDGES, offset_edges=[0, 2, 1])
    with pytest.raises(ValueError, match="time must be"):
        background_counts(flat_store, ENERGY_EDGES, offset_edges=[0, 1], time="dead")


# ----------------------------------------------------------------------------- writing, reading


def test_store_round_trip(tmp_path, flat_store):
    model = make_background_model(
        flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES, group_by={"zen_pnt": [0, 20, 40]}
    )
    with pytest.warns(UserWarning, match=r"2 run\(s\).*\[5, 6\]"):
        directory = write_background_store(flat_store, model, tmp_path / "with_bkg")
    store = open_datastore(directory)
    assert store.obs_ids.tolist() == flat_store.obs_ids.tolist()
    assert not any(d.startswith("/") for d in store.hdu_table["file_dir"].values)
    for obs_id, *_ in RUNS:
        obs = store.observation(obs_id)
        original = flat_store.observation(obs_id)
        for hdu_type in ("events", "gti"):  # other rows copied, relative paths right
            assert obs.location(hdu_type) == original.location(hdu_type)
        if obs_id > 4:  # outside the groups: no background
            assert "bkg" not in obs.hdus
            continue
        group = 0 if obs_id <= 2 else 1
        expected = background_irf(model, zen_pnt=group)
        bkg = obs.bkg
        assert bkg.attrs["irf_class"] == "bkg_2d"
        xr.testing.assert_allclose(bkg.drop_attrs(), expected.drop_attrs())
        assert obs.hdus["bkg"].hdu_name == ["BKG_ZEN_PNT_0_20", "BKG_ZEN_PNT_20_40"][group]


def test_write_models_file(tmp_path, flat_store):
    counts = background_counts(flat_store, ENERGY_EDGES, offset_edges=OFFSET_EDGES)
    model = background_model(counts, {"zen_pnt": [0, 20, 40, 60, 90]})
    names = write_background_models(model, tmp_path / "m.fits")
    assert names == {(0,): "BKG_ZEN_PNT_0_20", (1,): "BKG_ZEN_PNT_20_40", (2,): "BKG_ZEN_PNT_40_60"}
    from astropy.io import fits

    header = fits.getheader(tmp_path / "m.fits", "BKG_ZEN_PNT_20_40")
    assert header["HDUCLAS4"] == "BKG_2D" and header["NRUNS"] == 2
    assert (header["GRPCOL1"], header["GRPLO1"], header["GRPHI1"]) == ("ZEN_PNT", 20, 40)
    assert header["OBSTIME"] == 2 * DURATION


def test_reduce_with_fov_model(tmp_path, gradient_store):
    """A bkg_3d written by gammaxr predicts the counts of the runs it was made from, with the
    east-west gradient the right way round, also beside legacy H.E.S.S. events headers."""
    model = make_background_model(
        gradient_store, ENERGY_EDGES, fov_lon_edges=FOV_EDGES, fov_lat_edges=FOV_EDGES
    )
    store = open_datastore(write_background_store(gradient_store, model, tmp_path / "fov"))
    spec = ReductionSpec(
        energy_edges=ENERGY_EDGES,
        energy_true_edges=ENERGY_EDGES,
        width=3.0,
        binsz=0.1,
        maps=("counts", "background"),
    )
    for obs_id in (1, 2):  # run 2 has a legacy H.E.S.S. events header
        obs = store.observation(obs_id)
        assert obs.bkg.attrs["fov_alignment"] == "RADEC"
        ds = reduce_observation(obs, spec)
        grid = SkyGrid.from_xarray(ds)
        inside = grid.separation(obs.pointing) < 1.4
        east = inside & (ds["lon"] > obs.pointing.ra.deg)  # fov_lon < 0: fewer events
        halves = []
        for name in ("counts", "background"):
            total = ds[name].sum("energy")
            halves.append(
                (float(total.where(east).sum()), float(total.where(inside & ~east).sum()))
            )
        (c_east, c_west), (b_east, b_west) = halves
        assert c_west / c_east > 1.3  # the simulated gradient
        assert b_west / b_east == pytest.approx(c_west / c_east, rel=0.08)
        # the mean over all runs is predicted for each: within statistics of one run
        assert b_east + b_west == pytest.approx(c_east + c_west, rel=0.05)


# ----------------------------------------------------------------------------- H.E.S.S. DR1

HESS_ENERGY = np.logspace(-1, 2, 20)
HESS_OFFSET = np.sqrt(np.linspace(0, 9, 10))
HESS_FOV = np.linspace(-3, 3, 13)
ZENITH_EDGES = [0, 20, 40, 90]


@pytest.fixture(scope="module")
def hess_off_counts(hess_dir):
    store = open_datastore(hess_dir)
    off = store.select_target("Off data")
    counts = background_counts(off, HESS_ENERGY, offset_edges=HESS_OFFSET).compute()
    return store, off, counts


def predicted_and_counts(store, obs_ids, radius=2.0, first_bin=7):
    """Counts and predicted background summed within ``radius`` of each pointing, in the energy
    bins from ``first_bin`` on (7: E >= 1.27 TeV, above the threshold of every zenith group)."""
    spec = ReductionSpec(
        energy_edges=HESS_ENERGY,
        energy_true_edges=HESS_ENERGY[::6],
        width=2 * radius + 0.2,
        binsz=0.1,
        maps=("counts", "background"),
    )
    total = np.zeros(2)
    for obs in store.observations(obs_ids):
        ds = reduce_observation(obs, spec).isel(energy=slice(first_bin, None))
        inside = SkyGrid.from_xarray(ds).separation(obs.pointing) < radius
        total += [float(ds[n].where(inside).sum()) for n in ("counts", "background")]
    return total


@pytest.mark.hess
def test_hess_off_runs_histogram(hess_off_counts):
    _, off, counts = hess_off_counts
    assert counts.sizes["obs_id"] == 45
    assert float(counts["counts"].sum()) == 353302
    model = background_model(counts, {"ZEN_PNT": ZENITH_EDGES})
    np.testing.assert_array_equal(model["n_runs"].values, [11, 25, 9])
    table = off.obs_table
    duration = (table["tstop"] - table["tstart"]).values
    zen_group = np.searchsorted(ZENITH_EDGES, table["zen_pnt"].values, "right") - 1
    np.testing.assert_allclose(
        model["obs_time"].values, [duration[zen_group == g].sum() for g in range(3)]
    )
    np.testing.assert_allclose(duration, table["ontime"].values)  # DR1: ONTIME = TSTOP - TSTART
    # independent histogram of two runs (events within the GTI widened by 1 s)
    for obs_id in off.obs_ids[[0, 30]]:
        obs = off.observation(obs_id)
        events, gti = obs.events, obs.gti
        t = events["time"].values
        ok = (t >= gti["start"].values[0] - 1) & (t < gti["stop"].values[0] + 1)
        offset = obs.event_offsets().values[ok]
        expected, *_ = np.histogram2d(
            events["energy"].values[ok], offset, bins=(HESS_ENERGY, HESS_OFFSET)
        )
        np.testing.assert_array_equal(counts["counts"].sel(obs_id=obs_id).values, expected)


@pytest.mark.hess
def test_hess_models_through_datastore(hess_off_counts, tmp_path):
    store, off, counts = hess_off_counts
    model = background_model(counts, {"ZEN_PNT": ZENITH_EDGES})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every one of the 105 runs has a group
        directory = write_background_store(store, model, tmp_path / "hess")
    new = open_datastore(directory)
    assert len(new) == 105
    assert len(new.hdu_table["hdu"]) == len(store.hdu_table["hdu"])
    for obs_id in (23523, off.obs_ids[0], off.obs_ids[-1]):
        obs, original = new.observation(obs_id), store.observation(obs_id)
        assert obs.hdus["bkg"].hdu_class == "bkg_2d"
        assert obs.location("aeff") == original.location("aeff")
        group = int(np.searchsorted(ZENITH_EDGES, obs.zenith, "right") - 1)
        expected = background_irf(model, zen_pnt=group)
        xr.testing.assert_equal(obs.bkg.drop_attrs(), expected.drop_attrs())
    # the models predict the off runs' counts above threshold (sum over each group's runs)
    zen_group = np.searchsorted(ZENITH_EDGES, off.obs_table["zen_pnt"].values, "right") - 1
    totals = [predicted_and_counts(new, off.obs_ids[zen_group == g]) for g in range(3)]
    for n_counts, n_bkg in totals:
        assert n_bkg == pytest.approx(n_counts, rel=0.05)
    n_counts, n_bkg = np.sum(totals, axis=0)
    assert n_bkg == pytest.approx(n_counts, rel=0.03)


@pytest.mark.hess
def test_hess_single_run_model_predicts_its_counts(hess_dir, tmp_path):
    one = open_datastore(hess_dir).select_target("Off data").select_obs_ids([20275])
    model = make_background_model(one, HESS_ENERGY, offset_edges=HESS_OFFSET)
    new = open_datastore(write_background_store(one, model, tmp_path / "one"))
    n_counts, n_bkg = predicted_and_counts(new, [20275], first_bin=5)  # E >= 0.53 TeV
    assert n_bkg == pytest.approx(n_counts, rel=0.05)


@pytest.mark.hess
def test_hess_fov_model_through_datastore(hess_dir, tmp_path):
    store = open_datastore(hess_dir)
    off = store.select_target("Off data")
    model = make_background_model(
        off,
        HESS_ENERGY,
        fov_lon_edges=HESS_FOV,
        fov_lat_edges=HESS_FOV,
        group_by={"ZEN_PNT": ZENITH_EDGES},
        smooth={"fov_lon": 1.0, "fov_lat": 1.0},
    )
    assert model["bkg"].dims == ("zen_pnt", "energy", "fov_lon", "fov_lat")
    np.testing.assert_array_equal(model["n_runs"].values, [11, 25, 9])
    new = open_datastore(write_background_store(off, model, tmp_path / "fov"))
    high = off.select_range("ZEN_PNT", 40, 90).obs_ids
    obs = new.observation(high[0])
    assert obs.bkg.attrs["fov_alignment"] == "RADEC"  # despite the legacy H.E.S.S. events
    xr.testing.assert_allclose(obs.bkg.drop_attrs(), background_irf(model, zen_pnt=2).drop_attrs())
    n_counts, n_bkg = predicted_and_counts(new, high)
    assert n_bkg == pytest.approx(n_counts, rel=0.05)
