"""GADF writers: IRF tables of every class, events, GTIs and index tables read back equal."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from gammaxr.data import open_datastore
from gammaxr.geom.axes import axis_coords
from gammaxr.io.gadf import (
    read_events_hdu,
    read_gti_hdu,
    read_hdu_index,
    read_obs_index,
    table_to_dataset,
)
from gammaxr.io.gadf_write import (
    events_to_hdu,
    gti_to_hdu,
    hdu_index_to_hdu,
    irf_to_hdu,
    obs_index_to_hdu,
    relocate_hdu_index,
    replace_hdus,
    table_to_hdu,
    write_fits,
    write_index_files,
)
from gammaxr.io.irf_fits import read_irf_hdu
from gammaxr.irf import evaluate_bkg_3d

AXES = {
    "energy_true": (np.geomspace(0.1, 100, 8), "TeV"),
    "energy": (np.geomspace(0.1, 100, 6), "TeV"),
    "offset": (np.linspace(0, 2.5, 5), "deg"),
    "migra": (np.linspace(0.2, 5, 11), ""),
    "rad": (np.linspace(0, 0.6, 13), "deg"),
    "fov_lon": (np.linspace(-3, 3, 10), "deg"),
    "fov_lat": (np.linspace(-2, 2, 4), "deg"),
}
CLASSES = {
    "aeff_2d": (("energy_true", "offset"), "m2"),
    "edisp_2d": (("energy_true", "migra", "offset"), ""),
    "psf_table": (("energy_true", "offset", "rad"), "sr-1"),
    "bkg_2d": (("energy", "offset"), "s-1 MeV-1 sr-1"),
    "bkg_3d": (("energy", "fov_lon", "fov_lat"), "s-1 MeV-1 sr-1"),
}


def make_irf(irf_class, seed=0, order=None):
    """A random IRF with distinct axis lengths, in the layout read_irf_hdu returns."""
    dims, unit = CLASSES[irf_class]
    coords = {}
    for dim in dims:
        edges, axis_unit = AXES[dim]
        coords.update(axis_coords(dim, edges, axis_unit, lohi=True))
    shape = [len(AXES[d][0]) - 1 for d in dims]
    data = np.random.default_rng(seed).uniform(0.1, 1.0, shape)
    attrs = {"units": unit, "irf_class": irf_class}
    if irf_class.startswith("bkg"):
        attrs["fov_alignment"] = "RADEC"
    irf = xr.DataArray(data, dims=dims, coords=coords, name="irf", attrs=attrs)
    return irf.transpose(*order) if order else irf


def round_trip(tmp_path, hdu, irf_class, name="IRF"):
    path = write_fits(tmp_path / "irf.fits", [hdu], overwrite=True)
    with fits.open(path) as hdul:
        return read_irf_hdu(hdul[name], irf_class, source=str(path)), hdul[name].header.copy()


def assert_same_irf(read, irf):
    xr.testing.assert_identical(
        read.drop_attrs(), irf.transpose(*read.dims).drop_attrs().rename(read.name)
    )
    assert read.attrs["units"] == irf.attrs["units"] or (
        read.attrs["units"] == "1 / sr" and irf.attrs["units"] == "sr-1"
    )


@pytest.mark.parametrize("irf_class", list(CLASSES))
def test_irf_round_trip(tmp_path, irf_class):
    irf = make_irf(irf_class)
    hdu = irf_to_hdu(irf, extname="IRF")
    read, header = round_trip(tmp_path, hdu, irf_class)
    assert_same_irf(read, irf)
    assert header["HDUCLAS1"] == "RESPONSE"
    assert header["HDUCLAS4"] == irf_class.upper()
    assert header["HDUCLASS"] == "GADF"
    assert header["CREATOR"] == "gammaxr"
    if irf_class.startswith("bkg"):
        assert header["HDUCLAS2"] == "BKG" and header["FOVALIGN"] == "RADEC"
        assert read.attrs["fov_alignment"] == "RADEC"


def test_irf_dim_order_and_class_guess(tmp_path):
    irf = make_irf("edisp_2d", order=("offset", "energy_true", "migra"))
    del irf.attrs["irf_class"]
    read, header = round_trip(tmp_path, irf_to_hdu(irf, extname="IRF"), "edisp_2d")
    assert header["HDUCLAS4"] == "EDISP_2D"
    assert_same_irf(read, irf)


def test_gadf_column_layout():
    # generic rule: numpy axes in reverse column order, TDIM in column order
    hdu = irf_to_hdu(make_irf("psf_table"))
    assert [c.name for c in hdu.columns] == [
        "ENERG_LO",
        "ENERG_HI",
        "THETA_LO",
        "THETA_HI",
        "RAD_LO",
        "RAD_HI",
        "RPSF",
    ]
    assert hdu.header["TDIM7"] == "(7,4,12)"
    assert hdu.data["RPSF"][0].shape == (12, 4, 7)
    assert hdu.name == "POINT SPREAD FUNCTION"
    # bkg_3d: numpy (energy, fov_lon, fov_lat) as read_irf_hdu reads it (H.E.S.S./CTA files)
    bkg = make_irf("bkg_3d")
    hdu = irf_to_hdu(bkg)
    assert [c.name for c in hdu.columns][::2] == ["ENERG_LO", "DETX_LO", "DETY_LO", "BKG"]
    assert hdu.header["TDIM7"] == "(3,9,5)"
    np.testing.assert_array_equal(hdu.data["BKG"][0], bkg.values)
    assert hdu.columns["BKG"].unit == "s-1 MeV-1 sr-1"
    assert hdu.name == "BACKGROUND"


def test_nodes_axis_and_thresholds(tmp_path):
    # HESS DR1 tabulates offsets as nodes (THETA_LO == THETA_HI)
    irf = make_irf("aeff_2d")
    nodes = np.array([0.0, 0.5, 1.0, 1.5])
    irf = irf.drop_vars(["offset", "offset_lo", "offset_hi"]).assign_coords(
        axis_coords("offset", lo=nodes, hi=nodes, unit="deg", lohi=True)
    )
    irf.attrs.update(lo_threshold=0.3, hi_threshold=80.0)
    read, header = round_trip(tmp_path, irf_to_hdu(irf, extname="IRF"), "aeff_2d")
    assert read["offset"].attrs["interp"] == "nodes"
    assert_same_irf(read, irf)
    assert (header["LO_THRES"], header["HI_THRES"]) == (0.3, 80.0)
    assert read.attrs["lo_threshold"] == 0.3


def test_psf_3gauss_round_trip(tmp_path):
    params = ("scale", "sigma_1", "ampl_2", "sigma_2", "ampl_3", "sigma_3")
    base = make_irf("aeff_2d")
    variables = {}
    for k, p in enumerate(params):
        unit = "deg" if p.startswith("sigma") else ""
        variables[p] = (base * (k + 1)).assign_attrs(units=unit)
    psf = xr.Dataset(variables, attrs={"irf_class": "psf_3gauss"})
    read, header = round_trip(tmp_path, irf_to_hdu(psf, extname="IRF"), "psf_3gauss")
    assert header["HDUCLAS4"] == "PSF_3GAUSS"
    for p in params:
        xr.testing.assert_identical(read[p].drop_attrs(), psf[p].drop_attrs())
        assert read[p].attrs["units"] == psf[p].attrs["units"]


def test_float32_and_extra_keywords(tmp_path):
    irf = make_irf("bkg_2d")
    hdu = irf_to_hdu(irf, extname="IRF", dtype="float32", header={"OBS_ID": 7, "NRUNS": 3})
    assert hdu.header["TFORM5"].endswith("E")
    read, header = round_trip(tmp_path, hdu, "bkg_2d")
    xr.testing.assert_allclose(read.drop_attrs(), irf.drop_attrs().rename(read.name), rtol=1e-6)
    assert (header["OBS_ID"], header["NRUNS"]) == (7, 3)


def test_reversed_lon_bkg_written_as_radec(tmp_path):
    irf = make_irf("bkg_3d")
    legacy = irf.assign_attrs(fov_alignment="REVERSE_LON_RADEC", creator="")
    read, header = round_trip(tmp_path, irf_to_hdu(legacy, extname="IRF"), "bkg_3d")
    assert header["FOVALIGN"] == "RADEC" and header["CREATOR"] == "gammaxr"
    assert read.attrs["creator"] == "gammaxr"
    # the RADEC table at fov_lon equals the legacy table at -fov_lon
    lon = np.array([-2.1, -0.4, 0.3, 1.7])[:, None]
    lat = np.array([-1.0, 0.2, 0.9])[None, :]
    np.testing.assert_allclose(
        evaluate_bkg_3d(read, 3.0, lon, lat), evaluate_bkg_3d(irf, 3.0, -lon, lat), rtol=1e-12
    )
    assert not np.allclose(
        evaluate_bkg_3d(read, 3.0, lon, lat), evaluate_bkg_3d(irf, 3.0, lon, lat)
    )


@pytest.mark.parametrize("creator, written", [("", None), ("SASH", "SASH"), (None, "gammaxr")])
def test_creator_of_copied_tables_is_kept(creator, written):
    irf = make_irf("bkg_3d")
    if creator is not None:
        irf.attrs["creator"] = creator
    assert irf_to_hdu(irf).header.get("CREATOR") == written


def test_irf_errors():
    with pytest.raises(ValueError, match="cannot tell the GADF class"):
        irf_to_hdu(make_irf("aeff_2d").rename(offset="foo").drop_attrs())
    with pytest.raises(ValueError, match="expected"):
        irf_to_hdu(make_irf("aeff_2d"), "bkg_2d")
    with pytest.raises(ValueError, match="unique"):
        write_fits("never.fits", [irf_to_hdu(make_irf("aeff_2d"))] * 2)


# ----------------------------------------------------------------------------- tables


def make_events(n=50):
    rng = np.random.default_rng(3)
    header = {"OBS_ID": 11, "RA_PNT": 83.6, "DEC_PNT": 22.0, "MJDREFI": 51910, "MJDREFF": 0.5}
    header.update(TIMESYS="TT", TSTART=100.0, TSTOP=200.0, ONTIME=100.0)
    return xr.Dataset(
        {
            "event_id": ("event", np.arange(n, dtype=np.int64), {"fits_name": "EVENT_ID"}),
            "time": ("event", np.sort(rng.uniform(100, 200, n)), {"units": "s"}),
            "ra": ("event", rng.uniform(80, 85, n), {"units": "deg"}),
            "dec": ("event", rng.uniform(20, 24, n), {"units": "deg"}),
            "energy": ("event", rng.uniform(0.1, 10, n).astype(np.float32), {"units": "TeV"}),
            "multip": ("event", rng.integers(2, 5, n).astype(np.int16)),
        },
        attrs=header,
    )


def test_events_and_gti_round_trip(tmp_path):
    events = make_events()
    gti = xr.Dataset({"start": ("gti", [100.0, 150.0]), "stop": ("gti", [140.0, 200.0])})
    path = write_fits(tmp_path / "run.fits", [events_to_hdu(events), gti_to_hdu(gti)])
    with fits.open(path) as hdul:
        assert hdul["EVENTS"].header["HDUCLAS1"] == "EVENTS"
        assert hdul["GTI"].header["HDUCLAS1"] == "GTI"
        read = read_events_hdu(hdul["EVENTS"])
        read_gti = read_gti_hdu(hdul["GTI"])
    for name in events.data_vars:
        np.testing.assert_array_equal(read[name].values, events[name].values)
        assert read[name].dtype == events[name].dtype
    assert read["event_id"].attrs["fits_name"] == "EVENT_ID"
    assert read["ra"].attrs["units"] == "deg"
    assert read.attrs["OBS_ID"] == 11 and read.attrs["MJDREFF"] == 0.5
    np.testing.assert_array_equal(read_gti["stop"].values, [140.0, 200.0])


def test_table_vector_and_text_columns():
    ds = xr.Dataset(
        {
            "name": ("row", np.array(["Crab", "MSH 15-52", ""])),
            "vec": (("row", "k"), np.arange(6.0).reshape(3, 2), {"units": "deg"}),
            "flag": ("row", np.array([True, False, True])),
        },
        attrs={"lower_case": 1, "KEYWORD": "x", "TOOLONGKEYWORD": 2},
    )
    hdu = table_to_hdu(ds, "row", extname="T")
    assert hdu.header["KEYWORD"] == "x"
    assert "LOWER_CASE" not in hdu.header and "TOOLONGKEYWORD" not in hdu.header
    read = table_to_dataset(fits.BinTableHDU(hdu.data, hdu.header), "row")
    np.testing.assert_array_equal(read["name"].values, ds["name"].values)
    np.testing.assert_array_equal(read["vec"].values, ds["vec"].values)
    np.testing.assert_array_equal(read["flag"].values, ds["flag"].values)
    with pytest.raises(ValueError, match="not along"):
        table_to_hdu(ds.assign(other=("k", [1, 2])), "row", extname="T", columns=["other"])


@pytest.fixture
def small_store(tmp_path):
    """Two runs with events and GTIs under data/, indexes at the top."""
    rows = []
    for obs_id in (11, 12):
        events = make_events().assign_attrs(OBS_ID=obs_id)
        gti = xr.Dataset({"start": ("gti", [100.0]), "stop": ("gti", [200.0])})
        name = f"run{obs_id}.fits"
        write_fits(tmp_path / "data" / name, [events_to_hdu(events), gti_to_hdu(gti)])
        rows += [(obs_id, t, t, "data", name, t.upper(), 2880) for t in ("events", "gti")]
    names = ("obs_id", "hdu_type", "hdu_class", "file_dir", "file_name", "hdu_name", "size")
    index = xr.Dataset(
        {n: ("hdu", np.array(v)) for n, v in zip(names, zip(*rows, strict=True), strict=True)}
    )
    table = xr.Dataset(
        {
            "obs_id": ("obs_id", [11, 12]),
            "ra_pnt": ("obs_id", [83.6, 84.0], {"units": "deg"}),
            "object": ("obs_id", ["Crab", "Crab"]),
            "date_obs": ("obs_id", ["2004-01-01", "2004-01-02"], {"fits_name": "DATE-OBS"}),
        },
        attrs={"MJDREFI": 51910, "MJDREFF": 0.5, "TIMESYS": "TT"},
    )
    write_index_files(tmp_path, index, table)
    return tmp_path


def test_index_files_round_trip(small_store):
    store = open_datastore(small_store)
    assert store.obs_ids.tolist() == [11, 12]
    table = store.obs_table
    assert table["date_obs"].attrs["fits_name"] == "DATE-OBS"
    assert table["ra_pnt"].attrs["units"] == "deg"
    assert table.attrs["MJDREFF"] == 0.5 and table.attrs["HDUCLAS2"] == "OBS"
    obs = store.observation(12)
    assert obs.events.attrs["OBS_ID"] == 12
    assert store.hdu_table["size"].values.tolist() == [2880] * 4
    # an index written elsewhere still finds the files
    other = small_store / "elsewhere" / "deeper"
    write_index_files(other, store.hdu_table, store.obs_table)
    moved = open_datastore(other)
    assert moved.hdu_table["file_dir"].values.tolist() == ["../../data"] * 4
    np.testing.assert_array_equal(moved.hdu_table["path"].values, store.hdu_table["path"].values)
    np.testing.assert_array_equal(
        moved.observation(11).events["ra"], store.observation(11).events["ra"]
    )


def test_relocate_and_replace(small_store, tmp_path):
    index = read_hdu_index(small_store / "hdu-index.fits.gz")
    moved = relocate_hdu_index(index, small_store / "data")
    assert moved["file_dir"].values.tolist() == ["."] * 4
    assert "BASE_DIR" not in moved.attrs
    new = replace_hdus(index, "bkg", "bkg_2d", small_store / "models" / "bkg.fits", {12: "BKG_A"})
    assert new["obs_id"].values.tolist() == [11, 11, 12, 12, 12]
    row = new.isel(hdu=4)
    assert (str(row["hdu_type"].values), str(row["hdu_name"].values)) == ("bkg", "BKG_A")
    assert int(row["size"].values) == 0
    # replacing again swaps the row instead of adding one
    again = replace_hdus(new, "bkg", "bkg_2d", small_store / "bkg2.fits", {12: "BKG_B"})
    assert again["hdu_name"].values.tolist().count("BKG_B") == 1
    assert "BKG_A" not in again["hdu_name"].values.tolist()
    path = write_fits(
        tmp_path / "index.fits", [hdu_index_to_hdu(relocate_hdu_index(again, tmp_path))]
    )
    read = read_hdu_index(path)
    np.testing.assert_array_equal(read["path"].values, again["path"].values)
    with pytest.raises(ValueError, match="lacks column"):
        hdu_index_to_hdu(index.drop_vars("hdu_name"))
    with pytest.raises(ValueError, match="resolved 'path'"):
        relocate_hdu_index(index.drop_vars("path"), tmp_path)


def test_obs_index_keeps_keywords(tmp_path):
    table = xr.Dataset({"obs_id": ("obs_id", [1])}, attrs={"HDUVERS": "0.2", "GEOLON": 16.5})
    path = write_fits(tmp_path / "obs.fits", [obs_index_to_hdu(table)])
    read = read_obs_index(path)
    assert read.attrs["HDUVERS"] == "0.2"  # the table's own keywords win over the defaults
    assert read.attrs["GEOLON"] == 16.5 and read.attrs["HDUCLASS"] == "GADF"


# ----------------------------------------------------------------------------- real files


@pytest.mark.hess
def test_hess_irfs_round_trip(hess_dir, tmp_path):
    obs = open_datastore(hess_dir).observation(23523).read()
    hdus = [irf_to_hdu(obs.get(t), extname=t.upper()) for t in ("aeff", "edisp", "psf", "bkg")]
    path = write_fits(tmp_path / "irfs.fits", hdus)
    with fits.open(path) as hdul:
        for t in ("aeff", "edisp", "psf", "bkg"):
            original = obs.get(t)
            read = read_irf_hdu(hdul[t.upper()], original.attrs["irf_class"])
            xr.testing.assert_identical(read.drop_attrs(), original.drop_attrs())
            keep = {k: v for k, v in original.attrs.items() if k != "source"}
            assert {k: v for k, v in read.attrs.items() if k != "source"} == keep


@pytest.mark.cta
def test_cta_irfs_round_trip(cta_dir, tmp_path):
    store = open_datastore(cta_dir / "index" / "gps")
    obs = store.observation(store.obs_ids[0]).read()
    for t in ("psf", "bkg", "edisp"):
        original = obs.get(t)
        cls = obs.hdus[t].hdu_class
        read, _ = round_trip(tmp_path, irf_to_hdu(original, cls, extname="IRF"), cls)
        xr.testing.assert_identical(read.drop_attrs(), original.drop_attrs())
