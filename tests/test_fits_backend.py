"""FITS reading backends: numpy, fitsio and astropy give identical Datasets; errors stay the
same."""

from __future__ import annotations

import gzip
import itertools
import logging
import zlib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from gammaxr import open_datastore
from gammaxr.io import fits_backend, gadf
from gammaxr.io.errors import CorruptFileError, DL3Error, HDUNotFoundError, MissingFileError
from gammaxr.io.fits_backend import ENV_VAR, get_fits_backend, open_fits_file

needs_fitsio = pytest.mark.skipif(
    not fits_backend.fitsio_available(), reason="fitsio is not installed"
)

HESS_RUN = "hess_dl3_dr1_obs_id_023523.fits.gz"
HESS_HDUS = [
    ("EVENTS", "events"),
    ("GTI", "gti"),
    ("AEFF", "aeff_2d"),
    ("EDISP", "edisp_2d"),
    ("PSF", "psf_table"),
    ("BKG", "bkg_3d"),
    ("EVENTS", "header"),
]
CTA_IRF = Path("caldb/data/cta/1dc/bcf/South_z20_50h/irf_file.fits")
CTA_IRF_HDUS = [
    ("EFFECTIVE AREA", "aeff_2d"),
    ("ENERGY DISPERSION", "edisp_2d"),
    ("POINT SPREAD FUNCTION", "psf_3gauss"),
    ("BACKGROUND", "bkg_3d"),
]


@pytest.fixture(autouse=True)
def _default_backend(monkeypatch):
    """Every test starts from the default selection (no environment variable)."""
    monkeypatch.delenv(ENV_VAR, raising=False)


def assert_same(a, b, where=""):
    """Identical values, dims, coords, attrs, and also dtypes (byte order) and attr types."""
    if isinstance(a, dict):
        assert list(a) == list(b), where
        assert [type(v) for v in a.values()] == [type(v) for v in b.values()], where
        assert a == b, where
        return
    xr.testing.assert_identical(a, b)
    va = a.variables if isinstance(a, xr.Dataset) else {**a.coords.variables, None: a.variable}
    vb = b.variables if isinstance(b, xr.Dataset) else {**b.coords.variables, None: b.variable}
    for name, var in va.items():
        assert var.dtype == vb[name].dtype, f"{where} {name}: {var.dtype} != {vb[name].dtype}"
        assert var.dtype.isnative or var.dtype.kind in "bU", f"{where} {name}: {var.dtype}"
    assert list(a.attrs.items()) == list(b.attrs.items()), where
    assert [type(v) for v in a.attrs.values()] == [type(v) for v in b.attrs.values()], where


def read_both(path, requests):
    """read_file_hdus with each backend, checking which library actually read the tables;
    the numpy backend's results are checked identical to astropy's here."""
    out = {}
    for backend in ("astropy", "fitsio", "numpy"):
        out[backend] = gadf.read_file_hdus(path, requests, backend)
        with gadf.open_fits(path, backend) as f:
            assert f.backend == backend
            assert {f[name].backend for name, _ in requests} == {backend}
    for key, value in out["astropy"].items():
        assert_same(value, out["numpy"][key], f"numpy {key}")
    return out["astropy"], out["fitsio"]


# ---------------------------------------------------------------------- selection


def test_backend_selection(monkeypatch):
    expected = "numpy"
    assert get_fits_backend() == expected
    monkeypatch.setenv(ENV_VAR, "astropy")
    assert get_fits_backend() == "astropy"
    assert get_fits_backend("auto") == expected  # the explicit choice wins over the variable
    assert get_fits_backend(" AstroPy ") == "astropy"
    monkeypatch.setenv(ENV_VAR, "cfitsio")
    with pytest.raises(ValueError, match=f"{ENV_VAR}: unknown FITS backend 'cfitsio'"):
        get_fits_backend()
    assert get_fits_backend("astropy") == "astropy"  # the variable is not even read
    with pytest.raises(ValueError, match="open_fits_file: unknown FITS backend 'pyfits'"):
        open_fits_file("anything.fits", "pyfits")
    with pytest.raises(ValueError, match="fits_backend: unknown FITS backend 'pyfits'"):
        open_datastore("anywhere", fits_backend="pyfits")


def test_without_fitsio_astropy_reads(monkeypatch, tmp_path):
    monkeypatch.setattr(fits_backend, "_fitsio", None)
    monkeypatch.setattr(fits_backend, "_warned_missing", False)
    assert get_fits_backend() == "numpy"
    path = tmp_path / "t.fits"
    fits.HDUList([fits.PrimaryHDU(), _odd_table()]).writeto(path)
    with open_fits_file(path) as f:  # long strings: numpy hands the file to astropy
        assert f.backend == "astropy" and f["ODD"].nrows == 3
    monkeypatch.setenv(ENV_VAR, "fitsio")
    with pytest.warns(UserWarning, match="fitsio is not installed"):
        assert get_fits_backend() == "astropy"
    with open_fits_file(path) as f:
        assert f.backend == "astropy" and f["ODD"].nrows == 3


# ---------------------------------------------------------------------- same results


@pytest.mark.hess
def test_hess_run_identical_with_both_backends(hess_dir):
    astropy_out, fitsio_out = read_both(hess_dir / "data" / HESS_RUN, HESS_HDUS)
    for key in HESS_HDUS:
        assert not isinstance(fitsio_out[key], Exception), fitsio_out[key]
        assert_same(astropy_out[key], fitsio_out[key], key)
    events = fitsio_out["EVENTS", "events"]
    assert events.sizes["event"] > 1000
    assert events["ra"].dtype == np.float32 and events["time"].dtype == np.float64
    assert fitsio_out["BKG", "bkg_3d"].dims == ("energy", "fov_lon", "fov_lat")
    assert fitsio_out["BKG", "bkg_3d"].attrs["units"] == "s-1 MeV-1 sr-1"


@pytest.mark.hess
def test_hess_indexes_identical_with_both_backends(hess_dir, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "astropy")  # the documented switch
    obs_a = gadf.read_obs_index(hess_dir / "obs-index.fits.gz")
    hdu_a = gadf.read_hdu_index(hess_dir / "hdu-index.fits.gz")
    for backend in ("fitsio", "numpy"):
        monkeypatch.setenv(ENV_VAR, backend)
        assert_same(obs_a, gadf.read_obs_index(hess_dir / "obs-index.fits.gz"))
        assert_same(hdu_a, gadf.read_hdu_index(hess_dir / "hdu-index.fits.gz"))
    assert obs_a["target_name"].dtype.kind == "U"


@needs_fitsio
@pytest.mark.cta
def test_cta_run_identical_with_both_backends(cta_dir):
    astropy_irf, fitsio_irf = read_both(cta_dir / CTA_IRF, CTA_IRF_HDUS)
    for key in CTA_IRF_HDUS:
        assert_same(astropy_irf[key], fitsio_irf[key], key)
    assert set(fitsio_irf["POINT SPREAD FUNCTION", "psf_3gauss"].data_vars) >= {"sigma_1"}
    # the OGIP background unit is normalised alike
    assert fitsio_irf["BACKGROUND", "bkg_3d"].attrs["units"] == "s-1 MeV-1 sr-1"
    events = sorted((cta_dir / "data" / "baseline" / "gps").glob("*.fits"))[0]
    requests = [("EVENTS", "events"), ("GTI", "gti"), ("EVENTS", "header")]
    astropy_ev, fitsio_ev = read_both(events, requests)
    for key in requests:
        assert_same(astropy_ev[key], fitsio_ev[key], key)
    assert {"detx", "dety", "mc_id"} <= set(fitsio_ev["EVENTS", "events"].data_vars)


@needs_fitsio
@pytest.mark.cta
def test_cta_store_snapshots_identical_and_read_only(cta_dir):
    store = open_datastore(cta_dir / "index" / "gps")
    ids = store.obs_ids[:2].tolist()
    ref = open_datastore(cta_dir / "index" / "gps", fits_backend="astropy").load_observations(
        ids, max_workers=2
    )
    runs = store.load_observations(ids, max_workers=2)  # default: fitsio
    for a, b in zip(ref, runs, strict=True):
        assert a.loaded == b.loaded
        for hdu_type in a.loaded:
            assert_same(a.get(hdu_type), b.get(hdu_type), f"{a.obs_id} {hdu_type}")
        assert dict(a.meta) == dict(b.meta)
    with pytest.raises(ValueError, match="read-only"):
        runs[0].events["energy"].values[0] = 1.0
    assert np.shares_memory(runs[0].aeff.values, runs[1].aeff.values)  # shared IRF file


def _odd_table() -> fits.BinTableHDU:
    """A table with every column kind, including those fitsio converts differently."""
    cols = [
        fits.Column(name="OBS_ID", format="K", array=np.array([3, 1, 2])),
        fits.Column(name="NAME", format="8A", array=np.array(["a  ", "bb", "  c"])),
        fits.Column(name="FLAGS", format="3L", array=np.eye(3, dtype=bool)),
        fits.Column(name="UINT", format="I", bzero=32768, array=np.array([1, 2, 60000], "u2")),
        fits.Column(name="BYTE", format="B", array=np.array([1, 2, 255], "u1")),
        fits.Column(
            name="VEC", format="4E", unit="1/s/MeV/sr", dim="(2,2)", array=np.ones((3, 2, 2))
        ),
        fits.Column(name="CPLX", format="C", array=np.array([1 + 2j, 3, 4])),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="ODD")
    hdu.header["MYKEY"] = (3.5, "a float")
    hdu.header["FLAG"] = True
    hdu.header["LONGSTR"] = "x" * 100  # CONTINUE cards
    hdu.header["BLANK"] = None
    hdu.header["DATE-OBS"] = "2004-12-04"
    return hdu


def _write(path, *hdus) -> Path:
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(path)
    return path


@needs_fitsio
def test_column_kinds_identical(tmp_path):
    path = _write(tmp_path / "odd.fits", _odd_table())
    datasets = {}
    for backend in ("astropy", "fitsio"):
        with gadf.open_fits(path, backend) as f:
            table = f["odd"]  # case-insensitive
            assert table.backend == backend
            datasets[backend] = gadf.table_to_dataset(table, "row", source="odd", index="obs_id")
    assert_same(datasets["astropy"], datasets["fitsio"])
    ds = datasets["fitsio"]
    assert ds["name"].values.tolist() == ["a", "bb", "  c"]
    assert ds["uint"].dtype == np.uint16 and ds["uint"].values[-1] == 60000
    assert ds["flags"].dtype == bool and ds["vec"].dims == ("obs_id", "vec_dim_1", "vec_dim_2")
    assert ds["vec"].attrs["units"] == gadf.unit_string("s-1 MeV-1 sr-1")
    assert ds.attrs["LONGSTR"] == "x" * 100 and "BLANK" not in ds.attrs


@needs_fitsio
def test_formats_fitsio_reads_differently_fall_back_to_astropy(tmp_path):
    special = [
        fits.Column(name="BITS", format="2X", array=np.array([[1, 0], [0, 1], [1, 1]], bool)),
        fits.Column(name="VAR", format="PE()", array=[np.ones(2), np.ones(3), np.ones(1)]),
        fits.Column(name="SBYTE", format="B", bzero=-128, array=np.array([1, -2, 3], "i1")),
    ]
    for col in special:
        plain = fits.Column(name="X", format="D", array=np.arange(3.0))
        hdu = fits.BinTableHDU.from_columns([plain, col], name="T")
        path = _write(tmp_path / f"{col.name}.fits", hdu)
        with gadf.open_fits(path, "astropy") as f:
            ref = f["T"].column(col.name)
        for backend in ("fitsio", "numpy"):  # numpy hands the table to fitsio, then astropy
            with gadf.open_fits(path, backend) as f:
                assert f.backend == backend and f["T"].backend == "astropy", col.name
                values = f["T"].column(col.name)
                assert np.asarray(f["T"].column("X")).tolist() == [0.0, 1.0, 2.0]
            if values.dtype == object:
                for v, r in zip(values, ref, strict=True):
                    np.testing.assert_array_equal(v, r)
            else:
                np.testing.assert_array_equal(values, ref)
                assert values.dtype == ref.dtype


@needs_fitsio
def test_fitsio_failure_falls_back(tmp_path, monkeypatch, caplog):
    path = _write(tmp_path / "ev.fits", _odd_table())
    ref = gadf.read_file_hdus(path, [("ODD", "header")], "astropy")

    def broken(*args, **kwargs):
        raise OSError("cfitsio says no")

    monkeypatch.setattr(fits_backend._fitsio, "FITS", broken)
    with caplog.at_level(logging.DEBUG, logger="gammaxr.io.fits_backend"):
        with gadf.open_fits(path) as f:
            assert f.backend == "astropy"
        out = gadf.read_file_hdus(path, [("ODD", "header")])
    assert out == ref and "cfitsio says no" in caplog.text


def test_empty_table_and_image_hdu(tmp_path):
    cols = [fits.Column(name=n, format="E", unit="deg") for n in ("RA", "DEC")]
    cols.append(fits.Column(name="ENERGY", format="E", unit="GeV"))
    cols.append(fits.Column(name="TIME", format="D", unit="s"))
    empty = fits.BinTableHDU.from_columns(cols, name="EVENTS", nrows=0)
    path = _write(tmp_path / "e.fits", empty, fits.ImageHDU(np.zeros((2, 2)), name="IMG"))
    results = []
    backends = ("astropy", "numpy", "fitsio")[: 3 if fits_backend.fitsio_available() else 2]
    for backend in backends:
        out = gadf.read_file_hdus(path, [("EVENTS", "events"), ("IMG", "events")], backend)
        ev = out["EVENTS", "events"]
        assert ev.sizes["event"] == 0 and ev["ra"].dtype == np.float32
        assert ev["ra"].dtype.isnative and ev["energy"].attrs["units"] == "TeV"
        assert isinstance(out["IMG", "events"], DL3Error)
        assert "not a binary table" in str(out["IMG", "events"])
        results.append(ev)
    for ev in results[1:]:
        assert_same(results[0], ev)


# ---------------------------------------------------------------------- bad input


def _bad_files(tmp_path: Path, hess_dir: Path) -> dict[str, Path]:
    raw = (hess_dir / "data" / HESS_RUN).read_bytes()
    plain = gzip.decompress(raw)
    contents = {
        # cfitsio on its own accepts a gzip stream cut in its 8-byte trailer: gammaxr must not
        "gzip_trailer_cut": raw[:-4],
        "gzip_half": raw[: len(raw) // 2],
        "gzip_garbled": raw[:100] + b"\x00" * 64 + raw[164:],
        "junk": b"this is not FITS at all\n" * 200,
        "empty": b"",
        "fits_cut_in_data": plain[:-3000],
        "fits_cut_in_half": plain[: len(plain) // 2],
    }
    out = {}
    for name, content in contents.items():
        out[name] = tmp_path / name
        out[name].write_bytes(content)
    return out


def _outcome(path: Path, backend: str):
    try:
        out = gadf.read_file_hdus(path, HESS_HDUS, backend)
    except DL3Error as exc:
        return exc
    return {k: (type(v), str(v)) if isinstance(v, Exception) else v for k, v in out.items()}


@needs_fitsio
@pytest.mark.hess
@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_bad_files_fail_alike_with_both_backends(tmp_path, hess_dir):
    files = _bad_files(tmp_path, hess_dir)
    for (name, path), backend in itertools.product(files.items(), ("fitsio", "numpy")):
        ref, got = _outcome(path, "astropy"), _outcome(path, backend)
        if isinstance(ref, Exception):
            assert type(got) is type(ref) and str(got) == str(ref), name
            assert isinstance(got, CorruptFileError) and str(path) in str(got), name
            continue
        assert list(got) == list(ref), name
        for key, value in ref.items():
            if isinstance(value, tuple):
                assert got[key] == value, (name, key)
            else:
                assert_same(value, got[key], f"{name} {key}")
        assert any(isinstance(v, tuple) for v in got.values()), name  # something failed
    for name in ("gzip_trailer_cut", "gzip_half"):
        with pytest.raises(CorruptFileError, match=rf"{name}: corrupt or truncated gzip"):
            gadf.read_file_hdus(files[name], HESS_HDUS)
    with pytest.raises(CorruptFileError, match=r"junk: not a readable FITS file"):
        gadf.read_file_hdus(files["junk"], HESS_HDUS)


@needs_fitsio
def test_missing_file_and_hdu_with_fitsio(tmp_path):
    with pytest.raises(MissingFileError, match=r"nothing\.fits: file not found"):
        gadf.read_file_hdus(tmp_path / "nothing.fits", [("EVENTS", "events")])
    with pytest.raises(DL3Error, match="is a directory"):
        gadf.read_file_hdus(tmp_path, [("EVENTS", "events")])
    path = _write(tmp_path / "odd.fits", _odd_table())
    zipped = tmp_path / "odd_zipped_without_suffix"
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    out = gadf.read_file_hdus(zipped, [("NOPE", "aeff_2d"), ("ODD", "header")])
    error = out["NOPE", "aeff_2d"]
    assert isinstance(error, HDUNotFoundError)
    assert str(error) == f"{zipped}: no HDU named 'NOPE' in the file (it has ['PRIMARY', 'ODD'])"
    assert out["ODD", "header"]["MYKEY"] == 3.5


# ---------------------------------------------------------------------- numpy backend


def _plain_table(nrows: int = 3) -> fits.BinTableHDU:
    """A table of every column kind the numpy backend reads itself."""
    rng = np.random.default_rng(5)
    cols = [
        fits.Column(name="OBS_ID", format="K", array=np.arange(nrows) + 2**40),
        fits.Column(name="NAME", format="8A", array=np.array(["a  ", "bb", "  c", "d'e"][:nrows])),
        fits.Column(name="FLAGS", format="3L", array=rng.random((nrows, 3)) > 0.5),
        fits.Column(name="FLAG", format="L", array=np.arange(nrows) % 2 == 0),
        fits.Column(
            name="U16", format="I", bzero=32768, array=np.arange(nrows, dtype="u2") * 30000
        ),
        fits.Column(
            name="U32", format="J", bzero=2**31, array=np.arange(nrows, dtype="u4") * 2**31
        ),
        fits.Column(
            name="U64", format="K", bzero=2**63, array=np.arange(nrows, dtype="u8") * 2**63
        ),
        fits.Column(name="I16", format="I", array=-np.arange(nrows, dtype="i2")),
        fits.Column(name="I32", format="J", array=-np.arange(nrows, dtype="i4") * 70000),
        fits.Column(name="BYTE", format="B", array=np.arange(nrows, dtype="u1") * 100),
        fits.Column(name="F32", format="E", unit="deg", array=rng.normal(size=nrows)),
        fits.Column(name="F64", format="2D", unit="TeV", array=rng.normal(size=(nrows, 2))),
        fits.Column(
            name="CUBE",
            format="24E",
            unit="1/s/MeV/sr",
            dim="(4,3,2)",
            array=rng.random((nrows, 2, 3, 4)),
        ),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="PLAIN")
    hdu.header["MYKEY"] = (3.5, "a float")
    hdu.header["FLAGKEY"] = True
    hdu.header["QUOTED"] = "it's / not a comment"
    hdu.header["LEADING"] = "  kept"
    hdu.header["EMPTY"] = ""
    hdu.header["BLANK"] = None
    hdu.header["BIGINT"] = 1234567890123456789
    hdu.header.append(fits.Card.fromstring("DEXP    =               1.5D02 / D exponent"))
    hdu.header.append(fits.Card.fromstring("NOVALUE this card has no value indicator"))
    hdu.header.add_comment("a comment")
    hdu.header.add_history("a history")
    return hdu


def _defined(header) -> dict:
    """Header as a dict, astropy's undefined values as None (as numpy and fitsio give them)."""
    return {k: None if isinstance(v, type(fits.card.UNDEFINED)) else v for k, v in header.items()}


def test_numpy_backend_reads_every_plain_kind_as_astropy(tmp_path):
    path = _write(tmp_path / "plain.fits", _plain_table(), _plain_table(0))
    with gadf.open_fits(path, "numpy") as f, gadf.open_fits(path, "astropy") as ref:
        assert f.backend == "numpy"
        assert f.hdu_names() == ref.hdu_names() == ["PRIMARY", "PLAIN", "PLAIN"]
        for index in range(3):
            table, expected = f.table_at(index), ref.table_at(index)
            assert (table.backend == "numpy") == (index < 2)  # no rows: a library reads it
            assert (table.nrows, table.is_table) == (expected.nrows, expected.is_table)
            assert [c[:2] for c in table.columns] == [c[:2] for c in expected.columns]
            assert _defined(table.header) == _defined(expected.header)
            for name in table.column_names:
                got = table.column(name)
                np.testing.assert_array_equal(got, expected.column(name), err_msg=name)
                assert got.dtype.isnative and not np.shares_memory(got, f.raw), name
            if index:
                datasets = [gadf.table_to_dataset(t, "row") for t in (expected, table)]
                assert_same(*datasets)
        plain = f["plain"]  # case-insensitive, the first of that name
        header = plain.header
        assert header["QUOTED"] == "it's / not a comment" and header["LEADING"] == "  kept"
        assert header["DEXP"] == 150.0 and header["FLAGKEY"] is True and header["BLANK"] is None
        assert header["BIGINT"] == 1234567890123456789 and header["EMPTY"] == ""
        assert header["NOVALUE"] == "this card has no value indicator"
        assert header["COMMENT"] == "a comment"
        assert plain.column("FLAGS").dtype == bool and plain.column("CUBE").shape == (3, 2, 3, 4)
        assert plain.column("U64").dtype == np.uint64 and plain.column("U64")[1] == 2**63
        assert plain.column("NAME").tolist() == ["a", "bb", "  c", "d'e"][:3]


def test_numpy_backend_hands_what_it_does_not_read_to_a_library(tmp_path, monkeypatch, caplog):
    long_string = _write(tmp_path / "long.fits", _odd_table())  # CONTINUE cards
    plain = _write(tmp_path / "plain.fits", _plain_table())
    trailing = tmp_path / "trailing.fits"
    trailing.write_bytes(plain.read_bytes() + b"\x00" * 2880)
    with caplog.at_level(logging.DEBUG, logger="gammaxr.io.fits_backend"):
        for path in (long_string, trailing):  # the whole file
            with gadf.open_fits(path, "numpy") as f, gadf.open_fits(path, "astropy") as ref:
                assert f.backend != "numpy"
                name = f.hdu_names()[1]
                assert gadf.header_attrs(f[name].header) == gadf.header_attrs(ref[name].header)
        with gadf.open_fits(long_string, "numpy") as f:
            assert f["ODD"].header["LONGSTR"] == "x" * 100

        def broken(self, name):
            raise RuntimeError("numpy says no")

        monkeypatch.setattr(fits_backend._NumpyTable, "_read_column", broken)
        with gadf.open_fits(plain, "numpy") as f:  # one table, from its first failed column
            table = f["PLAIN"]
            assert table.backend == "numpy"
            assert table.column("F32").dtype == np.float32 and table.backend != "numpy"
            assert f.backend == "numpy"
    for reason in ("CONTINUE cards", "bytes after the last HDU", "numpy says no"):
        assert reason in caplog.text


def test_fits_structure_reads_values_and_refuses_the_rest():
    from gammaxr.io.fits_structure import Unsupported, card_value, data_size, table_layout

    assert card_value(" 'O''Hara  '   / name") == "O'Hara"
    assert card_value("'  lead'") == "  lead"
    assert card_value("                   T / yes") is True
    assert card_value("-12") == -12 and card_value("1.5D-3") == 1.5e-3
    assert card_value(".5E2 / comment") == 50.0 and card_value("   / nothing") is None
    for text in ("(1.0, 2.0)", "'not closed", "1.2.3", "yes"):
        with pytest.raises(ValueError):
            card_value(text)
    header = {"BITPIX": 8, "NAXIS": 2, "NAXIS1": 12, "NAXIS2": 5, "PCOUNT": 7, "GCOUNT": 1}
    assert data_size(header) == 12 * 5 + 7
    assert data_size({"BITPIX": -32, "NAXIS": 0}) == 0
    for bad in ({**header, "BITPIX": 7}, {**header, "NAXIS2": -1}, {**header, "NAXIS": "2"}):
        with pytest.raises(Unsupported):
            data_size(bad)
    table = {"NAXIS1": 16, "NAXIS2": 1, "TFIELDS": 1, "TTYPE1": "X", "TFORM1": "4E"}
    layout = table_layout({**table, "TDIM1": "(2,2)"})
    assert layout.row.itemsize == 16 and layout.cells[0].shape == (2, 2)
    # the row layout is memoised by the columns' keywords, not the number of rows
    assert table_layout({**table, "NAXIS2": 7}).nrows == 7 and table_layout(table).nrows == 1
    assert table_layout({**table, "TUNIT1": "TeV"}).units == ("TeV",)
    for bad in (
        {"TDIM1": "(3,2)"},  # 6 values in a cell of 4
        {"TFORM1": "2C"},  # complex
        {"TFORM1": "1PE(4)"},  # variable length
        {"TSCAL1": 2.0},  # scaled
        {"NAXIS1": 20},  # widths do not add up
        {"TTYPE1": "  "},  # no name
        {"TFORM1": "0E", "NAXIS1": 0},  # a column of no values
    ):
        for _ in range(2):  # refused every time (errors are not memoised)
            with pytest.raises(Unsupported):
                table_layout({**table, **bad})


def test_parse_header_gives_the_same_cards_and_errors_every_time():
    # cards are memoised by their text: a header read again (as every file of a release
    # repeats most cards) gives equal cards, and a card refused is refused every time
    from gammaxr.io.fits_structure import Unsupported, parse_header

    def header(*cards: str) -> bytes:
        text = "".join(card.ljust(80) for card in (*cards, "END"))
        return text.ljust(2880 * (len(text) // 2880 + 1)).encode("ascii")

    raw = header(
        "SIMPLE  =                    T",
        "TTYPE1  = 'ENERGY  '           / energy",
        "NAXIS2  =                 1234",
        "COMMENT a comment = with an equals sign",
        "EMPTY   =",
    )
    expected = [
        ("SIMPLE", True),
        ("TTYPE1", "ENERGY"),
        ("NAXIS2", 1234),
        ("COMMENT", "a comment = with an equals sign"),
        ("EMPTY", None),
    ]
    for _ in range(2):
        assert parse_header(raw, 0) == (expected, 2880)
    for bad, reason in (("CONTINUE  'more'", "CONTINUE"), ("X       = (1.0, 2.0)", "X:")):
        for _ in range(2):
            with pytest.raises(Unsupported, match=reason):
                parse_header(header("SIMPLE  =                    T", bad), 0)


@pytest.mark.parametrize("inflater", ["isal", "zlib"])
def test_gunzip_checks_the_trailer_and_reads_every_member(tmp_path, monkeypatch, inflater):
    from gammaxr.io.fits_backend import _read_content

    if inflater == "zlib":  # without isal installed
        monkeypatch.setattr(fits_backend, "_inflate", zlib)
    else:
        assert fits_backend._inflate.__name__.startswith("isal")

    first, second = b"FITS content " * 500, b"appended member" * 40
    one, two = gzip.compress(first), gzip.compress(second)
    cases = {"one": one, "two_members": one + two}
    bad_crc = bytearray(one)
    bad_crc[-8] ^= 0x01  # CRC-32 of the content, first byte of the trailer
    bad_length = bytearray(one)
    bad_length[-1] ^= 0x01  # ISIZE, last byte of the trailer
    cases.update(bad_crc=bytes(bad_crc), bad_length=bytes(bad_length), cut=one[:-3])
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    assert _read_content(tmp_path / "one") == first
    assert _read_content(tmp_path / "two_members") == first + second
    for name in ("bad_crc", "bad_length", "cut"):
        with pytest.raises(CorruptFileError, match=rf"{name}: corrupt or truncated gzip"):
            _read_content(tmp_path / name)


def test_closed_file_is_freed_without_the_cycle_collector(tmp_path):
    """A file and its tables form no reference cycle once the file is closed: dropping them
    frees the file's content at once, not when Python's cycle collector next runs."""
    import gc
    import weakref

    path = _write(tmp_path / "plain.fits", _plain_table())
    gc.disable()
    try:
        for backend in ("numpy", "astropy") + (
            ("fitsio",) if fits_backend.fitsio_available() else ()
        ):
            with gadf.open_fits(path, backend) as f:
                table = f["PLAIN"]
                ref = weakref.ref(f)
                assert table.column("F32").shape == (3,)
            del f, table
            assert ref() is None, backend
    finally:
        gc.enable()
