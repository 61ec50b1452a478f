"""DataStore, selections and Observation on the real HESS DL3 DR1 and CTA 1DC stores."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from gammaxr import DataStore, open_datastore
from gammaxr.data import event_offsets, events_in_gti, gti_mask, select_events_time
from gammaxr.data.observation import times_in_gti
from gammaxr.io import gadf
from gammaxr.io.errors import HDUNotFoundError, ObsIdNotFoundError

CRAB = (83.633, 22.014)
CRAB_RUNS = [23523, 23526, 23559, 23592]


@pytest.fixture(scope="module")
def hess(hess_dir) -> DataStore:
    return open_datastore(hess_dir)


@pytest.fixture(scope="module")
def cta(cta_dir) -> DataStore:
    return open_datastore(cta_dir / "index" / "gps")


@pytest.fixture
def count_opens(monkeypatch):
    """Record every file gammaxr opens."""
    opened = []
    real = gadf.open_fits

    def spy(path, backend=None):
        opened.append(str(path))
        return real(path, backend)

    monkeypatch.setattr(gadf, "open_fits", spy)
    return opened


# ---------------------------------------------------------------------- opening


@pytest.mark.hess
def test_open_by_directory_and_by_index_file(hess, hess_dir):
    by_file = open_datastore(hess_dir / "hdu-index.fits.gz")
    explicit = open_datastore(hess_dir / "hdu-index.fits.gz", hess_dir / "obs-index.fits.gz")
    assert len(hess) == 105
    np.testing.assert_array_equal(by_file.obs_ids, hess.obs_ids)
    np.testing.assert_array_equal(explicit.obs_ids, hess.obs_ids)
    assert len(hess.hdu_table["hdu"]) == 630


@pytest.mark.hess
def test_obs_table_has_every_column_with_units_and_meta(hess, hess_dir):
    ref = Table.read(hess_dir / "obs-index.fits.gz")
    table = hess.obs_table
    assert table["obs_id"].dims == ("obs_id",) and "obs_id" in table.indexes
    for name in ref.colnames:
        var = table[gadf.column_name(name)]
        assert var.attrs["units"] == (ref[name].unit.to_string() if ref[name].unit else "")
        assert var.attrs["fits_name"] == name
    np.testing.assert_allclose(table["zen_pnt"].values, ref["ZEN_PNT"])
    assert table["object"].dtype.kind == "U"
    assert {"MJDREFI", "MJDREFF", "TIMESYS", "GEOLON", "GEOLAT"} <= set(table.attrs)


@pytest.mark.hess
def test_store_is_immutable(hess):
    table = hess.obs_table
    table["extra"] = table["livetime"] * 2
    assert "extra" not in hess.obs_table
    with pytest.raises(ValueError, match="read-only"):
        hess.obs_table["livetime"].values[0] = 0.0
    sub = hess.select_obs_ids(CRAB_RUNS)
    assert len(hess) == 105 and len(sub) == 4


# ---------------------------------------------------------------------- selections


@pytest.mark.hess
def test_crab_cone_any_frame(hess):
    icrs = hess.select_cone(CRAB, 5)
    gal = SkyCoord(83.633 * u.deg, 22.014 * u.deg).galactic
    assert sorted(icrs.obs_ids) == CRAB_RUNS
    np.testing.assert_array_equal(hess.select_cone(gal, 5 * u.deg).obs_ids, icrs.obs_ids)
    radians = hess.select_cone((gal.l.deg, gal.b.deg), np.deg2rad(5) * u.rad, frame="galactic")
    np.testing.assert_array_equal(radians.obs_ids, icrs.obs_ids)


@pytest.mark.hess
def test_cone_centre_is_a_skycoord_or_a_pair_with_frame(hess):
    with pytest.raises(TypeError, match="frame= argument"):
        hess.select_cone((83.633, 22.014, "icrs"), 5)
    gal = SkyCoord(83.633 * u.deg, 22.014 * u.deg).galactic
    pair = hess.select_cone((gal.l.deg, gal.b.deg), 5, frame="galactic")
    assert sorted(pair.obs_ids) == CRAB_RUNS


@pytest.mark.hess
def test_msh1552_cone_matches_reference(hess, reference_dir):
    ref = json.loads((reference_dir / "reference.json").read_text())["msh1552_ring"]["obs_ids"]
    sel = hess.select_cone((228.32, -59.08), 2.5)
    assert sorted(sel.obs_ids.tolist()) == sorted(ref) and len(ref) == 20


@pytest.mark.hess
def test_off_runs_zenith_split(hess):
    off = hess.select_target("Off data")
    assert len(off) == 45
    split = [len(off.select_range("ZEN_PNT", lo, hi)) for lo, hi in [(0, 20), (20, 40), (40, 90)]]
    assert split == [11, 25, 9]
    # chaining in the other order, lower-case names and Quantities give the same runs
    rad = hess.select_range("zen_pnt", 20 * u.deg, (40 * u.deg).to(u.rad))
    np.testing.assert_array_equal(
        np.sort(rad.select_target("Off data").obs_ids),
        np.sort(off.select_range("ZEN_PNT", 20, 40).obs_ids),
    )


@pytest.mark.hess
def test_range_is_half_open(hess):
    zen = hess.obs_table["zen_pnt"].values
    edge = float(zen[0])
    assert hess.obs_ids[0] in hess.select_range("ZEN_PNT", edge, edge + 1e-3).obs_ids
    assert hess.obs_ids[0] not in hess.select_range("ZEN_PNT", edge - 1, edge).obs_ids
    assert len(hess.select_range("LIVETIME", lo=1000)) == int(
        np.sum(hess.obs_table["livetime"].values >= 1000)
    )
    with pytest.raises(KeyError, match="NO_SUCH"):
        hess.select_range("NO_SUCH", 0, 1)
    with pytest.raises(TypeError, match="not numeric"):
        hess.select_range("OBJECT", 0, 1)


@pytest.mark.hess
def test_target_patterns(hess):
    flare = hess.select_target("PKS 2155-304 (flare)")
    steady = hess.select_target("PKS 2155-304 (steady)")
    both = hess.select_target("PKS 2155*", match="glob")
    assert len(flare) > 0 and len(steady) > 0
    assert len(both) == len(flare) + len(steady)
    assert len(
        hess.select_target("pks 2155-304 \\((flare|steady)\\)", match="regex", case_sensitive=False)
    ) == len(both)
    assert len(hess.select_target("Crab Nebula", column="OBJECT")) == 4
    assert len(hess.select_target(["Crab", "Off data"])) == 49
    assert len(hess.select_target("Crab*")) == 0  # exact match does not expand patterns


@pytest.mark.hess
def test_time_selection_met_and_time_agree(hess):
    table = hess.obs_table
    t0, t1 = np.sort(table["tstart"].values)[[10, 40]]
    t0 += 60.0  # cut into a run: it overlaps the interval but is not within it
    by_met = hess.select_time(t0, t1)
    by_time = hess.select_time(*gadf.met_to_time([t0, t1], table.attrs))
    np.testing.assert_array_equal(by_met.obs_ids, by_time.obs_ids)
    within = hess.select_time(t0, t1, how="within")
    start, stop = by_met.obs_table["tstart"].values, by_met.obs_table["tstop"].values
    assert np.all((start < t1) & (stop > t0))
    assert set(within.obs_ids) <= set(by_met.obs_ids)
    assert np.all(within.obs_table["tstart"].values >= t0)
    assert np.all(within.obs_table["tstop"].values <= t1)
    assert len(within) < len(by_met)


@pytest.mark.hess
def test_select_irfs_and_obs_ids(hess):
    assert len(hess.select_irfs("aeff", "edisp", "psf", "bkg")) == 105
    assert len(hess.select_irfs("psf_table", "bkg_3d")) == 105
    assert len(hess.select_irfs("psf_3gauss")) == 0
    sub = hess.select_obs_ids([23592, 23523])
    assert sub.obs_ids.tolist() == [23592, 23523]
    assert set(sub.hdu_table["obs_id"].values) == {23592, 23523}
    with pytest.raises(ObsIdNotFoundError, match="1234567"):
        hess.select_obs_ids([23523, 1234567])
    with pytest.raises(ObsIdNotFoundError, match="20136"):
        hess.select_obs_ids(CRAB_RUNS).observation(20136)


# ---------------------------------------------------------------------- observation


@pytest.mark.hess
def test_observation_is_lazy(hess, count_opens):
    obs = hess.observation(23523)
    assert obs.obs_id == 23523 and obs.loaded == ()
    assert obs.psf_class == "psf_table" and obs.hdu_classes["bkg"] == "bkg_3d"
    assert count_opens == []
    assert obs.events.sizes["event"] == int(obs.obs_info["event_count"])
    assert len(count_opens) == 1


@pytest.mark.hess
def test_observation_metadata(hess, hess_dir):
    obs = hess.observation(23523)
    with fits.open(hess_dir / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz") as hdul:
        head = hdul["EVENTS"].header
    assert obs.pointing.frame.name == "icrs"
    assert (
        obs.pointing.separation(SkyCoord(head["RA_PNT"], head["DEC_PNT"], unit="deg"))
        < 1e-8 * u.deg
    )
    assert obs.livetime == pytest.approx(head["LIVETIME"])
    assert obs.ontime == pytest.approx(head["ONTIME"])
    assert obs.deadtime_fraction == pytest.approx(1 - head["DEADC"])
    assert obs.livetime == pytest.approx(obs.ontime * obs.deadc, rel=1e-6)
    altaz = obs.pointing_altaz
    assert altaz.alt.deg == pytest.approx(head["ALT_PNT"])
    assert obs.zenith == pytest.approx(90 - head["ALT_PNT"], abs=1e-4)
    # the AltAz frame is consistent: transforming back lands near the pointing
    assert altaz.icrs.separation(obs.pointing) < 1 * u.deg
    # DATE-OBS/TIME-OBS are written in the TIMESYS scale (TT)
    assert obs.time_start.tt.isot == f"{head['DATE-OBS']}T{head['TIME-OBS']}"


@pytest.mark.hess
def test_events_dataset(hess):
    obs = hess.observation(23523)
    ev = obs.events
    assert set(ev.data_vars) == {"event_id", "time", "ra", "dec", "energy"}
    assert ev["energy"].attrs["units"] == "TeV" and ev["ra"].attrs["units"] == "deg"
    assert ev["time"].attrs["MJDREFI"] == 51910
    gti = obs.gti
    assert gti.sizes["gti"] >= 1 and gti["start"].attrs["units"] == "s"
    inside = obs.events_in_gti()
    t = inside["time"].values
    assert np.all((t >= gti["start"].values.min()) & (t < gti["stop"].values.max()))
    assert 0.99 * ev.sizes["event"] < inside.sizes["event"] <= ev.sizes["event"]
    first = select_events_time(ev, stop=float(np.median(ev["time"].values)))
    assert first.sizes["event"] == int(np.sum(ev["time"].values < np.median(ev["time"].values)))


@pytest.mark.hess
def test_event_offsets_match_astropy(hess, raise_on_compute):
    obs = hess.observation(23523).read(["events"])
    ev = obs.events.isel(event=slice(0, 500))
    offsets = event_offsets(ev, obs.pointing)
    radec = ev["ra"].values.astype(float), ev["dec"].values.astype(float)
    ref = SkyCoord(*radec, unit="deg").separation(obs.pointing).deg
    np.testing.assert_allclose(offsets.values, ref, atol=1e-9)
    assert offsets.attrs["units"] == "deg" and offsets.dims == ("event",)
    lazy = ev.chunk(event=100)
    assert isinstance(event_offsets(lazy, obs.pointing).data, da.Array)
    assert isinstance(gti_mask(lazy["time"], obs.gti).data, da.Array)


def test_gti_mask_overlapping_unsorted_intervals():
    gti = xr.Dataset({"start": ("gti", [10.0, 0.0, 4.0]), "stop": ("gti", [12.0, 5.0, 6.0])})
    t = xr.DataArray([-1.0, 0.0, 4.5, 5.5, 6.0, 9.0, 10.0, 11.99, 12.0], dims="event")
    assert gti_mask(t, gti).values.tolist() == [0, 1, 1, 1, 0, 0, 1, 1, 0]
    ev = xr.Dataset({"time": t})
    assert events_in_gti(ev, gti).sizes["event"] == 5
    # the numpy form the reduction uses: the same mask, widened by a tolerance, and all
    # false without intervals
    np.testing.assert_array_equal(times_in_gti(t.values, gti), gti_mask(t, gti).values)
    assert times_in_gti(t.values, gti, tolerance=0.5).tolist() == [0, 1, 1, 1, 1, 0, 1, 1, 1]
    assert times_in_gti(t.values.reshape(3, 3), gti).shape == (3, 3)
    empty = gti.isel(gti=slice(0, 0))
    assert not times_in_gti(t.values, empty).any()


@pytest.mark.hess
def test_hess_irfs_have_expected_dims(hess):
    runs = hess.load_observations([23523, 20136, 20275], hdus=["aeff", "edisp", "psf", "bkg"])
    for obs in runs:
        assert obs.aeff.dims == ("energy_true", "offset") and obs.aeff.attrs["units"] == "m2"
        assert obs.edisp.dims == ("energy_true", "migra", "offset")
        assert obs.psf.dims == ("energy_true", "offset", "rad") and obs.psf_class == "psf_table"
        assert obs.bkg.dims == ("energy", "fov_lon", "fov_lat")
        assert obs.bkg.attrs["units"] == "s-1 MeV-1 sr-1"
        assert obs.aeff.coords["offset"].attrs["interp"] == "nodes"
        assert obs.loaded == ("aeff", "edisp", "psf", "bkg")
    with pytest.raises(ValueError, match="read-only"):
        runs[0].aeff.values[0, 0] = 1.0


@pytest.mark.hess
def test_read_opens_one_file_once(hess, count_opens):
    snap = hess.observation(23592).read()
    assert len(count_opens) == 1
    assert snap.loaded == ("events", "gti", "aeff", "edisp", "psf", "bkg")
    snap.events, snap.psf, snap.livetime, snap.pointing  # noqa: B018
    assert len(count_opens) == 1  # everything came from the snapshot


@pytest.mark.hess
def test_all_hess_runs_load_with_event_counts(hess):
    runs = hess.load_observations(hdus=["events", "gti"], max_workers=4)
    assert [o.obs_id for o in runs] == hess.obs_ids.tolist()
    counts = np.array([o.events.sizes["event"] for o in runs])
    np.testing.assert_array_equal(counts, hess.obs_table["event_count"].values)
    livetime = np.array([o.livetime for o in runs])
    np.testing.assert_allclose(livetime, hess.obs_table["livetime"].values, rtol=1e-6)
    assert all(o.gti.sizes["gti"] >= 1 for o in runs)


@pytest.mark.cta
def test_cta_runs_load_sharing_the_irf_file(cta, count_opens):
    runs = cta.load_observations(max_workers=2)
    assert len(runs) == 4
    assert sorted(set(count_opens)) == sorted(set(cta.hdu_table["path"].values))
    assert len(count_opens) == 5  # four event files, the shared IRF file once
    for obs in runs:
        assert obs.events.sizes["event"] == int(obs.obs_info["event_count"])
        assert {"detx", "dety", "mc_id"} <= set(obs.events.data_vars)
        assert obs.psf_class == "psf_3gauss" and isinstance(obs.psf, xr.Dataset)
        assert set(obs.psf.data_vars) == {
            "scale",
            "sigma_1",
            "ampl_2",
            "sigma_2",
            "ampl_3",
            "sigma_3",
        }
        assert obs.psf["sigma_1"].dims == ("energy_true", "offset")
        assert obs.aeff.dims == ("energy_true", "offset")
        assert obs.edisp.dims == ("energy_true", "migra", "offset")
        assert obs.bkg.dims == ("energy", "fov_lon", "fov_lat")
        assert obs.livetime == pytest.approx(float(obs.obs_info["livetime"]))
    # the shared IRF was read once: the snapshots share its (read-only) buffer
    assert np.shares_memory(runs[0].edisp.values, runs[3].edisp.values)


@pytest.mark.cta
def test_cta_selection_and_missing_hdu(cta):
    assert len(cta.select_irfs("psf_3gauss", "bkg_3d")) == 4
    assert len(cta.select_target("Galactic*", match="glob")) == 4
    gc = cta.select_cone(SkyCoord(0 * u.deg, 0 * u.deg, frame="galactic"), 3)
    assert len(gc) == 3 and 111630 not in gc
    obs = cta.observation(110380)
    with pytest.raises(HDUNotFoundError, match=r"obs_id 110380.*'rad_max'"):
        obs.get("rad_max")
