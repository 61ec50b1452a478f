"""Low-level GADF readers (gammaxr.io.gadf) on small synthetic tables and the real indexes."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from gammaxr.io import gadf
from gammaxr.io.errors import DL3Error, HDUNotFoundError, MissingFileError


def _table_hdu(name="EVENTS", header=None, **columns):
    cols = [
        fits.Column(name=k, format=f, unit=unit, array=a) for k, (f, unit, a) in columns.items()
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name=name)
    for key, value in (header or {}).items():
        hdu.header[key] = value
    return hdu


def _events_hdu(n=5, energy_unit="TeV", header=None):
    rng = np.random.default_rng(1)
    base = {"MJDREFI": 51910, "MJDREFF": 7.428703703703703e-4, "TIMESYS": "TT"}
    return _table_hdu(
        header={**base, **(header or {})},
        EVENT_ID=("K", "", np.arange(n)),
        TIME=("D", "s", 1e8 + np.sort(rng.uniform(0, 100, n))),
        RA=("E", "deg", rng.uniform(80, 85, n)),
        DEC=("E", "deg", rng.uniform(20, 24, n)),
        ENERGY=("E", energy_unit, rng.uniform(1, 10, n)),
        TELMASK=("3L", "", np.ones((n, 3), bool)),
    )


def test_column_name_and_units():
    assert gadf.column_name("DATE-OBS") == "date_obs"
    assert gadf.column_name(" ZEN_PNT ") == "zen_pnt"
    assert gadf.unit_string("1/s/MeV/sr") == gadf.unit_string("s-1 MeV-1 sr-1")
    assert gadf.unit_string(None) == ""


def test_table_to_dataset_types_units_and_attrs():
    hdu = _table_hdu(
        name="T",
        header={"MYKEY": 3.5, "TELESCOP": "HESS"},
        OBS_ID=("K", "", np.array([3, 1, 2])),
        NAME=("8A", "", np.array(["a  ", "bb", "c"])),
        VAL=("E", "deg", np.array([1.0, 2.0, np.nan], ">f4")),
        VEC=("2D", "TeV", np.arange(6.0).reshape(3, 2)),
    )
    ds = gadf.table_to_dataset(hdu, "row", index="obs_id")
    assert list(ds["obs_id"].values) == [3, 1, 2]
    assert ds["name"].dtype.kind == "U" and list(ds["name"].values) == ["a", "bb", "c"]
    assert ds["val"].attrs["units"] == "deg" and ds["val"].dtype.byteorder in "=|<"
    assert ds["vec"].dims == ("obs_id", "vec_dim_1") and ds["vec"].attrs["units"] == "TeV"
    assert ds.attrs["MYKEY"] == 3.5 and ds.attrs["TELESCOP"] == "HESS"
    assert not any(k.startswith(("TTYPE", "TFORM", "NAXIS")) for k in ds.attrs)
    assert ds["obs_id"].attrs["fits_name"] == "OBS_ID"


def test_read_events_converts_units_and_keeps_time_reference():
    hdu = _events_hdu(energy_unit="GeV")
    raw = np.asarray(hdu.data["ENERGY"], dtype=float)
    ev = gadf.read_events_hdu(hdu, "mem[EVENTS]")
    assert ev.sizes == {"event": 5, "telmask_dim_1": 3}
    np.testing.assert_allclose(ev["energy"].values, raw / 1000, rtol=1e-6)
    assert ev["energy"].attrs["units"] == "TeV"
    assert ev["time"].attrs["MJDREFI"] == 51910 and ev["time"].attrs["TIMESYS"] == "TT"
    assert ev["telmask"].dtype == bool


def test_read_events_missing_column_names_source():
    hdu = _table_hdu(TIME=("D", "s", np.zeros(2)), RA=("E", "deg", np.zeros(2)))
    with pytest.raises(DL3Error, match=r"run\.fits\[EVENTS\].*'DEC'.*'ENERGY'"):
        gadf.read_events_hdu(hdu, "run.fits[EVENTS]")


def test_read_empty_events_and_gti():
    ev = gadf.read_events_hdu(_events_hdu(n=0))
    assert ev.sizes["event"] == 0 and ev["energy"].attrs["units"] == "TeV"
    gti = gadf.read_gti_hdu(
        _table_hdu(name="GTI", START=("D", "", np.zeros(0)), STOP=("D", "", np.zeros(0)))
    )
    assert gti.sizes["gti"] == 0 and gti["start"].attrs["units"] == "s"


def test_met_time_round_trip():
    attrs = {"MJDREFI": 51910, "MJDREFF": 7.428703703703703e-4, "TIMESYS": "TT"}
    # the HESS reference epoch is 2001-01-01 00:00:00 UTC written in TT
    assert gadf.met_to_time(0.0, attrs).utc.isot == "2001-01-01T00:00:00.000"
    t = Time("2004-12-04T22:08:10.184", scale="utc")
    met = gadf.time_to_met(t, attrs)
    assert abs(gadf.met_to_time(met, attrs) - t).to_value("s") < 1e-6
    with pytest.raises(DL3Error, match="MJDREF"):
        gadf.time_reference({})


def _write(hdus, path):
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(path)


def test_read_file_hdus_reads_many_and_reports_missing_hdu(tmp_path):
    path = tmp_path / "run.fits"
    gti = _table_hdu(name="GTI", START=("D", "s", [1e8]), STOP=("D", "s", [1e8 + 100]))
    _write([_events_hdu(), gti], path)
    out = gadf.read_file_hdus(
        path, [("EVENTS", "events"), ("gti", "gti"), ("EVENTS", "header"), ("NOPE", "aeff_2d")]
    )
    assert out["EVENTS", "events"].sizes["event"] == 5
    assert out["gti", "gti"]["stop"].item() == 1e8 + 100
    assert out["EVENTS", "header"]["MJDREFI"] == 51910
    assert isinstance(out["NOPE", "aeff_2d"], HDUNotFoundError)
    assert "NOPE" in str(out["NOPE", "aeff_2d"]) and str(path) in str(out["NOPE", "aeff_2d"])


def test_open_fits_reads_gzip_by_content(tmp_path):
    plain = tmp_path / "run.fits"
    _write([_events_hdu()], plain)
    zipped = tmp_path / "run_no_suffix"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    with gadf.open_fits(zipped) as hdul:
        assert hdul["EVENTS"].header["NAXIS2"] == 5


def test_find_index_files(tmp_path):
    (tmp_path / "hdu-index.fits").write_bytes(b"")
    with pytest.raises(MissingFileError, match="observation index"):
        gadf.find_index_files(tmp_path)
    (tmp_path / "obs-index.fits.gz").write_bytes(b"")
    assert gadf.find_index_files(tmp_path) == (
        tmp_path / "hdu-index.fits",
        tmp_path / "obs-index.fits.gz",
    )
    assert gadf.find_index_files(tmp_path / "hdu-index.fits")[1] == tmp_path / "obs-index.fits.gz"
    (tmp_path / "sub").mkdir()
    with pytest.raises(MissingFileError, match="HDU index"):
        gadf.find_index_files(tmp_path / "sub")
    with pytest.raises(MissingFileError, match="nowhere"):
        gadf.find_index_files(tmp_path / "nowhere")


def test_hdu_index_base_dir(tmp_path):
    t = Table(
        {
            "OBS_ID": [1],
            "HDU_TYPE": ["EVENTS"],
            "HDU_CLASS": ["events"],
            "FILE_DIR": ["runs"],
            "FILE_NAME": ["r1.fits"],
            "HDU_NAME": ["EVENTS"],
        }
    )
    t.meta["BASE_DIR"] = "../data"
    (tmp_path / "index").mkdir()
    t.write(tmp_path / "index" / "hdu-index.fits")
    idx = gadf.read_hdu_index(tmp_path / "index" / "hdu-index.fits")
    assert idx["path"].item() == str(tmp_path / "data" / "runs" / "r1.fits")
    assert idx["hdu_type"].item() == "events"  # normalised to lower case


@pytest.mark.hess
def test_read_hess_obs_index(hess_dir):
    ref = Table.read(hess_dir / "obs-index.fits.gz")
    ds = gadf.read_obs_index(hess_dir / "obs-index.fits.gz")
    assert sorted(ds.variables) == sorted(gadf.column_name(c) for c in ref.colnames)
    np.testing.assert_array_equal(ds["obs_id"].values, ref["OBS_ID"])
    assert ds["ra_pnt"].attrs["units"] == "deg" and ds["livetime"].attrs["units"] == "s"
    assert ds["target_name"].dtype.kind == "U"
    assert int(ds["target_offset"].isnull().sum()) == int(np.sum(ref["TARGET_OFFSET"].mask))
    assert ds.attrs["MJDREFI"] == 51910 and "GEOLON" in ds.attrs


@pytest.mark.cta
def test_cta_hdu_index_paths_exist(cta_dir):
    idx = gadf.read_hdu_index(cta_dir / "index" / "gps" / "hdu-index.fits.gz")
    paths = set(idx["path"].values)
    assert len(paths) == 5  # four event files and one shared IRF file
    assert all((cta_dir / p).exists() for p in paths)


@pytest.mark.hess
def test_uncompressed_index_copy(tmp_path, hess_dir):
    with gzip.open(hess_dir / "obs-index.fits.gz") as src, open(tmp_path / "obs.fits", "wb") as dst:
        shutil.copyfileobj(src, dst)
    a = gadf.read_obs_index(tmp_path / "obs.fits")
    b = gadf.read_obs_index(hess_dir / "obs-index.fits.gz")
    assert a.drop_attrs().identical(b.drop_attrs())


@pytest.mark.hess
def test_leading_header_equals_full_read(hess_dir, tmp_path):
    from gammaxr.io.gadf import read_file_hdus, read_leading_header

    path = hess_dir / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz"
    full = read_file_hdus(path, [("EVENTS", "header")])["EVENTS", "header"]
    assert read_leading_header(path, "events") == full
    for run in sorted((hess_dir / "data").glob("*.fits.gz"))[::10]:  # as astropy reads them
        full = read_file_hdus(run, [("EVENTS", "header")], "astropy")["EVENTS", "header"]
        lead = read_leading_header(run, "EVENTS")
        assert lead == full and list(map(type, lead.values())) == list(map(type, full.values()))
    assert read_leading_header(path, "NOPE") is None
    broken = tmp_path / "broken.fits.gz"
    broken.write_bytes(path.read_bytes()[:1000])
    assert read_leading_header(broken, "EVENTS") is None
