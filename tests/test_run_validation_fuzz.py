"""Seeded fuzz test: corrupted headers, columns and tables of a simulated run.

Every case must end in a gammaxr exception naming the file at fault, or in a reduction whose
run passes validation and whose maps are finite and non-negative. The tally of which check
caught how many cases is printed (``pytest -s``) and asserted to be non-trivial.
"""

from __future__ import annotations

import collections
import io
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from gammaxr import open_datastore
from gammaxr.data.validation import RunValidationError, validate_observation
from gammaxr.geom import SkyGrid
from gammaxr.io.errors import DL3Error
from gammaxr.reduce import ReductionSpec
from gammaxr.reduce.dataset import reduce_observation_arrays
from gammaxr.simulate import default_scenario, simulate_datastore

N_CASES = 300
SEED = 20261203
OBS_ID = 1
TOY = {"bins_per_decade": 4, "migra_bin": 0.05, "rad_bin": 0.02, "offset_bin": 0.5}
IRF_COLUMNS = {
    "EFFECTIVE AREA": ("EFFAREA", "ENERG_LO", "THETA_LO"),
    "ENERGY DISPERSION": ("MATRIX", "MIGRA_LO", "ENERG_HI"),
    "POINT SPREAD FUNCTION": ("RPSF", "RAD_LO", "THETA_HI"),
    "BACKGROUND": ("BKG", "ENERG_LO", "THETA_LO"),
}
HEADER_KEYS = ("LIVETIME", "ONTIME", "DEADC", "TSTART", "TSTOP", "RA_PNT", "DEC_PNT", "EUNIT")
EVENT_COLUMNS = ("ENERGY", "RA", "DEC", "TIME")
INDEX_COLUMNS = ("LIVETIME", "ONTIME", "RA_PNT", "DEC_PNT", "EVENT_COUNT")


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory) -> Path:
    """A one-run store whose event and IRF files are uncompressed (cheap to rewrite)."""
    root = tmp_path_factory.mktemp("fuzz")
    sim = root / "sim"
    config = default_scenario(livetime=120.0, **TOY)
    simulate_datastore(config.replace(observations=config.observations[:1]), sim, seed=3)
    store = root / "store"
    (store / "data").mkdir(parents=True)
    with fits.open(sim / "data" / f"obs_{OBS_ID:06d}.fits.gz") as hdul:
        hdul.writeto(store / "data" / "run.fits")
    with fits.open(sim / "irfs" / "toy.fits.gz") as hdul:
        hdul.writeto(store / "data" / "irf.fits")
    index = Table.read(sim / "hdu-index.fits.gz")
    index["FILE_DIR"] = "data"
    is_run = [str(n).startswith("obs_") for n in index["FILE_NAME"]]
    index["FILE_NAME"] = np.where(is_run, "run.fits", "irf.fits")
    index.write(store / "hdu-index.fits.gz")
    shutil.copy(sim / "obs-index.fits.gz", store / "obs-index.fits.gz")
    return store


def _spec() -> ReductionSpec:
    grid = SkyGrid.from_center((83.633, 22.3), 1.6, 0.1, frame="icrs")
    return ReductionSpec(
        energy_edges=np.geomspace(0.1, 10, 4),
        energy_true_edges=np.geomspace(0.05, 20, 6),
        grid=grid,
        maps=("counts", "exposure", "background"),
        safe_mask=("offset-max", "aeff-max"),
        offset_max=2.0,
    )


def _spoil(values: np.ndarray, rng: np.random.Generator) -> str:
    """Corrupt part of a float array in place; returns what was done."""
    flat = values.reshape(-1)
    kind = rng.choice(["nan", "inf", "negative", "zero", "scale", "huge"])
    fraction = float(rng.choice([0.01, 0.2, 1.0]))
    chosen = rng.random(flat.size) < fraction
    if not chosen.any():
        chosen[rng.integers(flat.size)] = True
    if kind == "scale":
        flat[:] = flat * float(rng.choice([1e-3, 1e3, -1.0]))
    else:
        flat[chosen] = {"nan": np.nan, "inf": np.inf, "negative": -1.0, "zero": 0.0, "huge": 1e30}[
            kind
        ]
    return f"{kind} x{fraction:g}"


def _corrupt(rng, fresh) -> tuple[str, str, object]:
    """One random corruption of a fresh copy of the events file, the IRF file or the obs
    index (``fresh(kind)``); returns (kind, description, corrupted object)."""
    target = rng.choice(["header", "column", "unit", "rows", "gti", "irf", "axis", "index"])
    kind = {"irf": "irf", "axis": "irf", "index": "index"}.get(str(target), "events")
    obj = fresh(kind)
    return kind, _corrupt_one(rng, str(target), obj), obj


def _corrupt_one(rng, target: str, obj) -> str:
    events = irf = index = obj
    ev = obj["EVENTS"] if target in ("header", "column", "unit", "rows") else None
    if target == "header":
        key = str(rng.choice(HEADER_KEYS))
        value = rng.choice(["0", "-1", "1e30", "scale", "text"])
        if value == "text":
            ev.header[key] = "abc"
        elif value == "scale" and isinstance(ev.header.get(key), float):
            ev.header[key] = ev.header[key] * float(rng.choice([1e-3, 0.5, 2.0, 1e3]))
        else:
            ev.header[key] = float(value) if value != "scale" else 0.0
        return f"events header {key} -> {ev.header[key]!r}"
    if target == "column":
        name = str(rng.choice(EVENT_COLUMNS))
        return f"events column {name}: {_spoil(ev.data[name], rng)}"
    if target == "unit":
        name = str(rng.choice(("ENERGY", "RA", "TIME")))
        unit = str(rng.choice(["GeV", "MeV", "erg", "rad", "arcmin", "h", "m"]))
        ev.columns[name].unit = unit
        ev.header[f"TUNIT{ev.columns.names.index(name) + 1}"] = unit
        return f"events column {name} unit -> {unit}"
    if target == "rows":
        keep = int(rng.choice([0, 1, 5, len(ev.data) // 2]))
        ev.data = ev.data[:keep]
        return f"events truncated to {keep} rows"
    if target == "gti":
        gti = events["GTI"]
        action = rng.choice(["swap", "shift", "nan", "empty", "duplicate"])
        if action == "swap":
            start = gti.data["START"].copy()
            gti.data["START"], gti.data["STOP"] = gti.data["STOP"], start
        elif action == "shift":
            gti.data["START"] += float(rng.choice([-1e4, 1e4]))
        elif action == "nan":
            gti.data["STOP"][:] = np.nan
        elif action == "empty":
            gti.data = gti.data[:0]
        else:
            gti.data = np.concatenate([gti.data, gti.data]).view(fits.FITS_rec)
        return f"GTI {action}"
    if target in ("irf", "axis"):
        hdu_name = str(rng.choice(list(IRF_COLUMNS)))
        data_col, axis_a, axis_b = IRF_COLUMNS[hdu_name]
        table = irf[hdu_name].data
        if target == "irf":
            return f"{hdu_name} {data_col}: {_spoil(table[data_col], rng)}"
        axis = str(rng.choice([axis_a, axis_b]))
        action = rng.choice(["reverse", "scale", "nan"])
        if action == "reverse":
            table[axis][:] = table[axis][:, ::-1]
        elif action == "scale":
            table[axis][:] = table[axis] * 1e3
        else:
            table[axis][0, 0] = np.nan
        return f"{hdu_name} axis {axis}: {action}"
    column = str(rng.choice(INDEX_COLUMNS))
    value = index[column][0]
    index[column][0] = value * float(rng.choice([0.0, -1.0, 0.5, 2.0])) + (
        1.0 if column == "RA_PNT" else 0.0
    )
    return f"obs index {column}: {value} -> {index[column][0]}"


def _passes(obs, arrays) -> list[str]:
    """Problems of a reduction that went through (empty: it is fine)."""
    problems = []
    try:
        validate_observation(obs)
    except RunValidationError as exc:
        problems.append(f"result fails validation: {exc}")
    for name, array in arrays.items():
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)):
                problems.append(f"{name} has non-finite values")
            elif np.any(array < 0):
                problems.append(f"{name} has negative values")
    return problems


def test_fuzzed_runs_fail_loudly_or_pass_validation(fuzz_store, capsys):
    rng = np.random.default_rng(SEED)
    run_file, irf_file = fuzz_store / "data" / "run.fits", fuzz_store / "data" / "irf.fits"
    obs_index = fuzz_store / "obs-index.fits.gz"
    paths = {"events": run_file, "irf": irf_file, "index": obs_index}
    pristine = {kind: path.read_bytes() for kind, path in paths.items()}
    index0 = Table.read(obs_index)
    spec = _spec()
    tally: collections.Counter = collections.Counter()
    failures = []
    store = open_datastore(fuzz_store)

    def fresh(kind):
        if kind == "index":
            return index0.copy()
        hdul = fits.open(io.BytesIO(pristine[kind]))
        for hdu in hdul:
            hdu.data  # noqa: B018 (load the data before the buffer is reused)
        return hdul

    def write(kind, obj):
        if kind == "index":
            obj.write(paths[kind], overwrite=True)
        else:
            obj.writeto(paths[kind], overwrite=True)

    last = None
    for case in range(N_CASES):
        if last is not None:  # restore the file the previous case corrupted
            paths[last].write_bytes(pristine[last])
        reopen = last == "index"
        kind, what, obj = _corrupt(rng, fresh)
        last = kind
        try:
            write(kind, obj)
        except (ValueError, OSError, TypeError):  # astropy refused to write it
            tally["not writable (astropy)"] += 1
            continue
        if kind == "index" or reopen:
            store = open_datastore(fuzz_store)  # the obs index is read when opening
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                obs = validate_observation(store.observation(OBS_ID))
                arrays = reduce_observation_arrays(obs, spec, spec.grid)
        except RunValidationError as exc:
            tally[f"validation: {exc.check}"] += 1
            if str(fuzz_store) not in str(exc):
                failures.append(f"case {case} ({what}): error names no file: {exc}")
            continue
        except DL3Error as exc:
            tally[f"reading: {type(exc).__name__}"] += 1
            if str(fuzz_store) not in str(exc):
                failures.append(f"case {case} ({what}): error names no file: {exc}")
            continue
        except Exception as exc:  # anything else is a silent-failure bug to report
            failures.append(f"case {case} ({what}): {type(exc).__name__}: {exc}")
            continue
        problems = _passes(obs, arrays)
        if problems:
            failures.append(f"case {case} ({what}): went through but {problems}")
        else:
            tally["passed validation"] += 1
    with capsys.disabled():
        print(
            f"\nfuzz: {N_CASES} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.items()))
        )
    assert not failures, "\n".join(failures[:20])
    assert sum(tally.values()) == N_CASES
    caught = sum(v for k, v in tally.items() if k.startswith("validation"))
    assert caught > N_CASES // 4 and tally["passed validation"] > 0
