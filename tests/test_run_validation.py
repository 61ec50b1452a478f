"""Bad runs are refused (or repaired with a warning) by name, never stacked silently.

Each case corrupts one run of a small simulated store in a scratch copy (tmp_path) and checks
the error or warning names the run, the file and the problem; with ``on_error="skip"`` the
other runs' results are identical to those of a clean reduction.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from astropy.table import Table

from gammaxr import open_datastore
from gammaxr.data.validation import RunValidationError, RunValidationWarning, validate_observation
from gammaxr.geom import SkyGrid
from gammaxr.reduce import NoOverlapError, ReductionSpec, RunReductionError, failed_runs
from gammaxr.reduce.runs import reduce_runs
from gammaxr.simulate import default_scenario, simulate_datastore

BAD = 2  # the run that is corrupted
TOY = {"bins_per_decade": 4, "migra_bin": 0.05, "rad_bin": 0.02, "offset_bin": 0.5}


@pytest.fixture(autouse=True)
def _synchronous():
    """Warnings raised inside dask tasks are checked: run the tasks in this thread
    (``warnings.catch_warnings`` is not thread-safe)."""
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("validation") / "store"
    simulate_datastore(default_scenario(livetime=300.0, **TOY), path, seed=5)
    return path


def _spec(center=(83.633, 22.014)) -> ReductionSpec:
    grid = SkyGrid.from_center(center, 2.0, 0.1, frame="icrs")
    return ReductionSpec(
        energy_edges=np.geomspace(0.1, 10, 5),
        energy_true_edges=np.geomspace(0.05, 20, 9),
        grid=grid,
        maps=("counts", "exposure", "background"),
        safe_mask=("offset-max", "aeff-max"),
        offset_max=2.0,
    )


def scratch_store(
    clean: Path,
    dst: Path,
    obs_id: int = BAD,
    *,
    events: Callable | None = None,
    gti: Callable | None = None,
    irf: Callable | None = None,
    index: Callable | None = None,
) -> Path:
    """A copy of ``clean`` with run ``obs_id`` corrupted by the given editors.

    ``events(hdu)`` / ``gti(hdu)`` edit the run's EVENTS / GTI HDU (astropy) in place;
    ``irf(hdul)`` edits a private copy of its IRF file; ``index(table, row)`` edits its
    obs-index row.
    """
    shutil.copytree(clean, dst)
    name = f"obs_{obs_id:06d}.fits.gz"
    if events or gti:
        with fits.open(dst / "data" / name) as hdul:
            [h.data for h in hdul]
            if events:
                events(hdul["EVENTS"])
            if gti:
                gti(hdul["GTI"])
            hdul.writeto(dst / "data" / name, overwrite=True)
    if irf:
        with fits.open(dst / "irfs" / "toy.fits.gz") as hdul:
            [h.data for h in hdul]
            irf(hdul)
            hdul.writeto(dst / "irfs" / "bad.fits", overwrite=True)
        hdu_index = Table.read(dst / "hdu-index.fits.gz")
        hdu_index["FILE_NAME"] = hdu_index["FILE_NAME"].astype("U40")
        rows = (hdu_index["OBS_ID"] == obs_id) & (hdu_index["FILE_NAME"] == "toy.fits.gz")
        hdu_index["FILE_NAME"][rows] = "bad.fits"
        hdu_index.write(dst / "hdu-index.fits.gz", overwrite=True)
    if index:
        table = Table.read(dst / "obs-index.fits.gz")
        index(table, int(np.flatnonzero(table["OBS_ID"] == obs_id)[0]))
        table.write(dst / "obs-index.fits.gz", overwrite=True)
    return dst


def _reduce(store: Path, on_error: str, spec: ReductionSpec | None = None) -> xr.Dataset:
    runs = open_datastore(store).observations()
    return reduce_runs(runs, spec or _spec(), on_error=on_error).compute()


@pytest.fixture(scope="module")
def clean_result(clean_store) -> xr.Dataset:
    return _reduce(clean_store, "raise")


def _nan_events(hdu):
    energy = hdu.data["ENERGY"]
    energy[:2] = np.nan
    energy[2] = np.inf


def _set_gev(hdu):
    hdu.columns["ENERGY"].unit = "GeV"
    hdu.header["TUNIT5"] = "GeV"


def _events_far_away(hdu):
    hdu.data["DEC"] = hdu.data["DEC"] + 30.0  # the header's pointing stays


def _nan_aeff(hdu_list):
    hdu_list["EFFECTIVE AREA"].data["EFFAREA"][0, :, 10:] = np.nan


def _negative_aeff(hdu_list):
    area = hdu_list["EFFECTIVE AREA"].data["EFFAREA"]
    area[0, :, 10:] = -0.5 * area.max()


def _one_slightly_negative_aeff(hdu_list):
    area = hdu_list["EFFECTIVE AREA"].data["EFFAREA"]
    area[0, 0, 0] = -0.02 * area.max()  # below the noise threshold, 1 % of the peak


def _livetime_zero(hdu):
    hdu.header["LIVETIME"] = 0.0


def _gti_reversed(hdu):
    start = hdu.data["START"].copy()
    hdu.data["START"] = hdu.data["STOP"]
    hdu.data["STOP"] = start


def _set_index(column, value=None, shift=None):
    def edit(table, row):
        table[column][row] = value if shift is None else table[column][row] + shift

    return edit


def _empty_events(hdu):
    hdu.data = hdu.data[:0]


CASES = {
    "empty event list": (
        {"events": _empty_events, "index": _set_index("EVENT_COUNT", 0)},
        r"EVENTS\]: empty event list \(0 events\) in a run of 300 s",
    ),
    "NaN in part of the effective area": (
        {"irf": _nan_aeff},
        r"bad.fits\[EFFECTIVE AREA\]: 24 of 104 aeff values are NaN or inf",
    ),
    "negative effective area": (
        {"irf": _negative_aeff},
        r"bad.fits\[EFFECTIVE AREA\]: \d+ of 104 aeff values are negative \(min -.*, peak .*\)",
    ),
    "ENERGY declared in GeV holding TeV": (
        {"events": _set_gev},
        "EVENTS]: 100% of the event energies .* outside the IRF energy range .* wrong ENERGY unit",
    ),
    "events far from the pointing": (
        {"events": _events_far_away},
        r"EVENTS]: 100% of the events lie beyond the IRF offset range \(.* deg; median offset "
        r"3\d(\.\d)? deg\): wrong pointing or event coordinates",
    ),
    "GTI stop before start": ({"gti": _gti_reversed}, r"GTI\]: GTI row 0: stop .* is not after"),
    "LIVETIME 0 in header and obs index": (
        {"events": _livetime_zero, "index": _set_index("LIVETIME", 0.0)},
        "EVENTS]: LIVETIME is 0.0 s: a run needs a positive, finite LIVETIME",
    ),
    "LIVETIME 0 in the header only": (
        {"events": _livetime_zero},
        "EVENTS]: LIVETIME is 0.0 s",
    ),
    "header and obs index disagree": (
        {"index": _set_index("RA_PNT", shift=1.0)},
        r"EVENTS]: pointing \(RA_PNT, DEC_PNT\) = .* in the header but .* in the obs index",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_run_is_named_and_skipped(case, clean_store, clean_result, tmp_path):
    editors, problem = CASES[case]
    store = scratch_store(clean_store, tmp_path / "store", **editors)
    with pytest.raises(RunReductionError) as info:
        _reduce(store, "raise")
    message = str(info.value)
    assert message.startswith(f"obs_id {BAD}: reduction failed: RunValidationError: obs_id {BAD}: ")
    assert str(store) in message  # the file at fault
    assert info.value.obs_id == BAD
    assert re.search(problem, message), message
    with pytest.warns(RuntimeWarning, match=f"obs_id {BAD} skipped"):
        skipped = _reduce(store, "skip")
    assert list(failed_runs(skipped)) == [BAD]
    assert not skipped["mask_safe"].sel(obs_id=BAD).any()
    others = [i for i in clean_result.obs_id.values if i != BAD]
    data = [v for v in clean_result.data_vars if v != "reduce_error"]
    xr.testing.assert_identical(
        skipped[data].sel(obs_id=others).drop_vars(["livetime", "ontime"], errors="ignore"),
        clean_result[data].sel(obs_id=others).drop_vars(["livetime", "ontime"], errors="ignore"),
    )


def test_non_finite_event_energies_dropped_with_warning(clean_store, clean_result, tmp_path):
    store = scratch_store(clean_store, tmp_path / "store", events=_nan_events)
    with pytest.warns(RunValidationWarning) as record:
        result = _reduce(store, "raise")
    texts = [str(w.message) for w in record]
    hit = [t for t in texts if t.startswith(f"obs_id {BAD}: ")]
    assert hit and "3 of" in hit[0] and "events dropped: ENERGY non-finite or <= 0 (3)" in hit[0]
    assert str(store / "data") in hit[0]
    # the three dropped events are the only difference
    obs = open_datastore(clean_store).observation(BAD)
    lost = _spec().grid.bin_indices(obs.events["ra"].values[:3], obs.events["dec"].values[:3])
    n_lost_in_grid = int(np.sum(lost[2] & (obs.events["energy"].values[:3] >= 0.1)))
    diff = clean_result["counts"].sel(obs_id=BAD).sum() - result["counts"].sel(obs_id=BAD).sum()
    assert int(diff) <= n_lost_in_grid
    others = [i for i in clean_result.obs_id.values if i != BAD]
    xr.testing.assert_identical(
        result["counts"].sel(obs_id=others), clean_result["counts"].sel(obs_id=others)
    )


def test_validation_on_reading(clean_store, tmp_path):
    store = scratch_store(clean_store, tmp_path / "store", gti=_gti_reversed)
    obs = open_datastore(store).observation(BAD)
    with pytest.raises(RunValidationError) as info:
        validate_observation(obs)
    assert info.value.check == "gti" and info.value.hdu == "GTI" and info.value.obs_id == BAD
    good = validate_observation(open_datastore(store).observation(1))
    assert good.loaded  # a loaded snapshot, ready to reduce


def test_grid_no_run_overlaps(clean_store):
    spec = _spec(center=(150.0, -30.0))
    runs = open_datastore(clean_store).observations()
    lazy = reduce_runs(runs, spec).gamma.stack()
    with pytest.warns(RunValidationWarning) as record:
        with pytest.raises(NoOverlapError, match=r"none of the runs \[1, 2, 3, 4\] contributes"):
            lazy.compute()
    texts = {str(w.message) for w in record}
    for obs_id in (1, 2, 3, 4):
        assert any(
            t.startswith(f"obs_id {obs_id} contributes nothing to the grid: no pixel within "
                         "offset_max 2.0 deg") for t in texts
        ), texts  # fmt: skip


def test_one_run_outside_is_reported(clean_store):
    # a grid at the edge of run 1's field: run 3 (0.5 deg south of the target) is beyond it
    spec = _spec(center=(83.633, 24.8))
    runs = open_datastore(clean_store).observations()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        stacked = reduce_runs(runs, spec).gamma.stack().compute()
    texts = [str(w.message) for w in record if issubclass(w.category, RunValidationWarning)]
    assert any(t.startswith("obs_id 3 contributes nothing") for t in texts), texts
    assert stacked["mask_safe"].any()


def test_validation_when_loading(clean_store, tmp_path):
    store = open_datastore(scratch_store(clean_store, tmp_path / "store", gti=_gti_reversed))
    with pytest.raises(RunValidationError, match=f"obs_id {BAD}: .*GTI row 0"):
        store.load_observations(validate=True)
    with pytest.warns(UserWarning, match=f"skipping obs_id {BAD}: obs_id {BAD}: .*GTI"):
        runs = store.load_observations(validate=True, on_error="skip")
    assert [r.obs_id for r in runs] == [1, 3, 4]
    assert len(store.load_observations()) == 4  # without validate: read as it is


def test_irf_values_slightly_negative_are_used_with_a_warning(clean_store, tmp_path):
    """A value below the noise threshold whose total is small against the positive values:
    the run is reduced as it is, with a warning naming the file and the values."""
    store = scratch_store(clean_store, tmp_path / "store", irf=_one_slightly_negative_aeff)
    with pytest.warns(RunValidationWarning) as record:
        result = _reduce(store, "raise")
    texts = [str(w.message) for w in record if str(w.message).startswith(f"obs_id {BAD}: ")]
    assert any(
        "bad.fits[EFFECTIVE AREA]: 1 of 104 aeff values are negative" in t
        and "used as they are" in t
        for t in texts
    ), texts
    assert BAD in result.obs_id.values and not failed_runs(result)
