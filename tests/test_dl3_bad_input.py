"""Broken data stores built in tmp_path from one HESS run: every failure names file/obs_id."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table, vstack

from gammaxr import open_datastore
from gammaxr.io.errors import (
    CorruptFileError,
    DL3Error,
    HDUNotFoundError,
    MissingFileError,
    ObsIdNotFoundError,
    UnknownHDUClassError,
)

pytestmark = pytest.mark.hess

RUN = 23523
RUN_FILE = "hess_dl3_dr1_obs_id_023523.fits.gz"
HDUS = [
    ("events", "events", "EVENTS"),
    ("gti", "gti", "GTI"),
    ("aeff", "aeff_2d", "AEFF"),
    ("edisp", "edisp_2d", "EDISP"),
    ("psf", "psf_table", "PSF"),
    ("bkg", "bkg_3d", "BKG"),
]


def make_store(tmp_path: Path, hess_dir: Path, runs: dict[int, dict[str, tuple]]) -> Path:
    """Write a data store whose runs are copies of run 23523.

    ``runs`` maps a new obs_id to overrides ``{hdu_type: (hdu_class, file_name, hdu_name)}``;
    files that do not exist yet are not created (tests create or break them).
    """
    store = tmp_path / "store"
    (store / "data").mkdir(parents=True)
    shutil.copy(hess_dir / "data" / RUN_FILE, store / "data" / RUN_FILE)
    obs = Table.read(hess_dir / "obs-index.fits.gz")
    obs = obs[obs["OBS_ID"] == RUN]
    rows, obs_rows = [], []
    for obs_id, overrides in runs.items():
        for hdu_type, hdu_class, hdu_name in HDUS:
            cls, name, hname = overrides.get(hdu_type, (hdu_class, RUN_FILE, hdu_name))
            rows.append((obs_id, hdu_type, cls, "data", name, hname))
        row = obs.copy()
        row["OBS_ID"] = obs_id
        obs_rows.append(row)
    names = ("OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME")
    Table(rows=rows, names=names).write(store / "hdu-index.fits.gz")
    vstack(obs_rows).write(store / "obs-index.fits.gz")
    return store


def test_missing_file(tmp_path, hess_dir):
    store = open_datastore(
        make_store(tmp_path, hess_dir, {1: {"bkg": ("bkg_3d", "gone.fits", "BKG")}})
    )
    obs = store.observation(1)
    assert obs.aeff.dims == ("energy_true", "offset")  # other HDUs still readable
    with pytest.raises(MissingFileError, match=r"obs_id 1: .*gone\.fits: file not found"):
        _ = obs.bkg
    with pytest.raises(MissingFileError, match="obs_id 1"):
        obs.read()


def test_hdu_missing_from_file(tmp_path, hess_dir):
    store = open_datastore(
        make_store(tmp_path, hess_dir, {1: {"psf": ("psf_table", RUN_FILE, "PSF_X")}})
    )
    with pytest.raises(HDUNotFoundError, match=rf"obs_id 1: .*{RUN_FILE}: no HDU named 'PSF_X'"):
        _ = store.observation(1).psf


def test_corrupt_gzip(tmp_path, hess_dir):
    path = make_store(tmp_path, hess_dir, {1: {}})
    data = path / "data" / RUN_FILE
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) // 2])  # truncated
    obs = open_datastore(path).observation(1)
    with pytest.raises(
        CorruptFileError, match=rf"obs_id 1: .*{RUN_FILE}: corrupt or truncated gzip"
    ):
        _ = obs.events
    data.write_bytes(raw[:100] + b"\x00" * 64 + raw[164:])  # garbled in the middle
    with pytest.raises(CorruptFileError, match=RUN_FILE):
        _ = obs.events


def test_not_a_fits_file(tmp_path, hess_dir):
    path = make_store(tmp_path, hess_dir, {1: {"events": ("events", "junk.fits", "EVENTS")}})
    (path / "data" / "junk.fits").write_bytes(b"this is not FITS at all\n" * 200)
    with pytest.raises(CorruptFileError, match=r"obs_id 1: .*junk\.fits: not a readable FITS"):
        _ = open_datastore(path).observation(1).events


def test_unknown_hdu_class(tmp_path, hess_dir):
    path = make_store(tmp_path, hess_dir, {1: {"psf": ("psf_king_foo", RUN_FILE, "PSF")}, 2: {}})
    store = open_datastore(path)
    obs = store.observation(1)
    assert obs.psf_class == "psf_king_foo"
    with pytest.raises(UnknownHDUClassError, match=r"obs_id 1: .*'psf_king_foo'"):
        _ = obs.psf
    assert obs.events.sizes["event"] > 0  # the rest of the run is fine
    with pytest.raises(UnknownHDUClassError, match="obs_id 1"):
        store.load_observations()
    with pytest.warns(UserWarning, match=r"skipping obs_id 1: .*psf_king_foo"):
        loaded = store.load_observations(on_error="skip")
    assert [o.obs_id for o in loaded] == [2]
    # asking only for HDUs it has loads the run
    assert store.load_observations([1], hdus=["events", "aeff"])[0].loaded == ("events", "aeff")


def test_obs_id_not_in_store(tmp_path, hess_dir):
    store = open_datastore(make_store(tmp_path, hess_dir, {1: {}}))
    with pytest.raises(ObsIdNotFoundError, match="obs_id 99 not in the data store"):
        store.observation(99)
    with pytest.raises(ObsIdNotFoundError, match="obs_id 99 not in"):
        store.load_observations([1, 99])
    assert 1 in store and 99 not in store


def test_missing_index_files(tmp_path, hess_dir):
    path = make_store(tmp_path, hess_dir, {1: {}})
    (path / "obs-index.fits.gz").unlink()
    with pytest.raises(MissingFileError, match=r"no observation index file found .*obs-index"):
        open_datastore(path)
    with pytest.raises(MissingFileError, match=r"nothing\.fits: observation index file not found"):
        open_datastore(path, obs_index=path / "nothing.fits")
    (path / "hdu-index.fits.gz").unlink()
    with pytest.raises(MissingFileError, match="no HDU index file found"):
        open_datastore(path)
    with pytest.raises(MissingFileError, match="no such data store"):
        open_datastore(tmp_path / "elsewhere")


def test_corrupt_index_file(tmp_path, hess_dir):
    path = make_store(tmp_path, hess_dir, {1: {}})
    (path / "hdu-index.fits.gz").write_bytes(gzip.compress(b"garbage" * 100)[:50])
    with pytest.raises(CorruptFileError, match=r"hdu-index\.fits\.gz"):
        open_datastore(path)


def test_duplicate_obs_id_in_obs_index(tmp_path, hess_dir):
    path = make_store(tmp_path, hess_dir, {1: {}})
    obs = Table.read(path / "obs-index.fits.gz")
    vstack([obs, obs]).write(path / "obs-index.fits.gz", overwrite=True)
    with pytest.raises(DL3Error, match=r"obs-index\.fits\.gz: .*obs_id\(s\) \[1\] more than once"):
        open_datastore(path)


def test_empty_event_list_is_valid(tmp_path, hess_dir):
    path = make_store(tmp_path, hess_dir, {7: {"events": ("events", "empty.fits", "EVENTS")}})
    with fits.open(hess_dir / "data" / RUN_FILE) as hdul:
        events = hdul["EVENTS"]
        cols = [fits.Column(name=c.name, format=c.format, unit=c.unit) for c in events.columns]
        empty = fits.BinTableHDU.from_columns(cols, name="EVENTS", nrows=0)
        for card in events.header.cards:
            if card.keyword not in empty.header and not re.match(
                r"T(TYPE|FORM|UNIT)\d", card.keyword
            ):
                empty.header[card.keyword] = card.value
        fits.HDUList([fits.PrimaryHDU(), empty]).writeto(path / "data" / "empty.fits")
    obs = open_datastore(path).load_observations()[0]
    ev = obs.events
    assert ev.sizes["event"] == 0
    assert {"time", "ra", "dec", "energy"} <= set(ev.data_vars)
    assert ev["energy"].attrs["units"] == "TeV" and ev["time"].attrs["MJDREFI"] == 51910
    assert obs.event_offsets().sizes["event"] == 0
    assert obs.events_in_gti().sizes["event"] == 0
    assert obs.meta["TIMESYS"] == "TT" and obs.livetime > 0 and obs.aeff.size > 0


def test_uncompressed_store(tmp_path, hess_dir):
    path = make_store(tmp_path, hess_dir, {1: {}})
    for name in ("hdu-index.fits.gz", "obs-index.fits.gz"):
        with gzip.open(path / name) as src, open(path / name[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
        (path / name).unlink()
    store = open_datastore(path / "hdu-index.fits")
    assert store.obs_ids.tolist() == [1]
    counts = store.observation(1).events.sizes["event"]
    assert counts == int(np.asarray(store.obs_table["event_count"])[0])
