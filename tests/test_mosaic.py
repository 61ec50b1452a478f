"""Survey mosaics: runs reduced on cutouts and added into a zarr-backed parent grid.

The mosaic must equal ``stack_runs(reduce_runs(...))`` on the same (small) parent grid. Toy runs
(analytic IRFs, random events, placed anywhere on the sky) need no data; H.E.S.S. DR1 runs check
the real IRF path (PSF and edisp maps, bkg_3d) and the pickled (processes, distributed) paths.
"""

from __future__ import annotations

import os

import astropy.units as u
import dask
import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord

import gammaxr
from gammaxr.data import open_datastore
from gammaxr.geom import SkyGrid, axis_coords, fov_to_sky
from gammaxr.geom.placement import place_cutout
from gammaxr.io.run_status import settle_run_status
from gammaxr.reduce.dataset import ReductionSpec
from gammaxr.reduce.mosaic import (
    add_runs_to_mosaic,
    create_mosaic_store,
    mosaic_skipped_runs,
    mosaic_spec,
)
from gammaxr.reduce.runs import RunReductionError, reduce_runs
from gammaxr.reduce.stack import stack_runs

ENERGY = np.geomspace(0.5, 20, 4)
ENERGY_TRUE = np.geomspace(0.3, 50, 6)

# ----------------------------------------------------------------------------------------------
# toy runs
# ----------------------------------------------------------------------------------------------


def _toy_irfs() -> tuple[xr.DataArray, xr.DataArray]:
    edges = np.geomspace(0.1, 100, 25)
    centres = np.sqrt(edges[1:] * edges[:-1])
    nodes = np.linspace(0, 3.5, 8)
    radial = np.exp(-0.5 * (nodes / 1.4) ** 2)
    aeff = xr.DataArray(
        1e5 * (1 - np.exp(-centres / 0.4))[:, None] * radial,
        dims=("energy_true", "offset"),
        coords={
            **axis_coords("energy_true", edges, "TeV", lohi=True),
            **axis_coords("offset", lo=nodes, hi=nodes, unit="deg", lohi=True),
        },
        attrs={"units": "m2", "irf_class": "aeff_2d", "lo_threshold": 0.5, "hi_threshold": 50},
    )
    bkg = xr.DataArray(
        1e-6 * centres[:, None] ** -2.7 * radial,
        dims=("energy", "offset"),
        coords={
            **axis_coords("energy", edges, "TeV", lohi=True),
            **axis_coords("offset", lo=nodes, hi=nodes, unit="deg", lohi=True),
        },
        attrs={"units": "s-1 MeV-1 sr-1", "irf_class": "bkg_2d"},
    )
    return aeff, bkg


AEFF, BKG = _toy_irfs()


class ToyRun:
    """A run with analytic IRFs and random events within 3 deg of its pointing (icrs)."""

    def __init__(self, obs_id: int, ra: float, dec: float, *, seed: int = 0, broken=False):
        rng = np.random.default_rng(seed)
        n = 4000
        r, phi = 3.0 * np.sqrt(rng.random(n)), 2 * np.pi * rng.random(n)
        ra_ev, dec_ev = fov_to_sky(r * np.cos(phi), r * np.sin(phi), ra, dec)
        self.obs_id, self.broken = obs_id, broken
        self.pointing = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
        self.events = xr.Dataset(
            {
                "time": ("event", rng.uniform(-100, 1900, n)),
                "ra": ("event", ra_ev % 360),
                "dec": ("event", dec_ev),
                "energy": ("event", 0.4 * (1 - rng.random(n)) ** (-1 / 1.6)),
            }
        )
        self.gti = xr.Dataset({"start": ("gti", [0.0]), "stop": ("gti", [1800.0])})
        self.aeff, self.bkg = AEFF, BKG
        self.livetime, self.ontime, self.tstart, self.tstop = 1700.0, 1800.0, 0.0, 1800.0
        self.zenith, self.deadtime_fraction = 30.0, 1 / 18

    def read(self, hdus=None, **kwargs):
        if self.broken:
            raise OSError(f"obs_id {self.obs_id}: toy_{self.obs_id}.fits.gz is truncated")
        return self


def toy_spec(grid: SkyGrid, **kwargs) -> ReductionSpec:
    kwargs.setdefault("safe_mask", ("aeff-default", "offset-max"))
    return ReductionSpec(ENERGY, ENERGY_TRUE, grid=grid, offset_max=2.0, **kwargs)


def stacked(runs, spec: ReductionSpec) -> xr.Dataset:
    """The reference: per-run maps on the whole parent grid, stacked."""
    return settle_run_status(stack_runs(reduce_runs(runs, spec)).compute(scheduler="sync"))


def assert_mosaic_equals(path, expected: xr.Dataset) -> xr.Dataset:
    mosaic = gammaxr.open_dataset(path).compute()
    assert set(mosaic.data_vars) == set(expected.data_vars)
    for name in expected.data_vars:
        xr.testing.assert_allclose(mosaic[name], expected[name], rtol=1e-5, atol=1e-6)
    assert sorted(mosaic.attrs["stacked_obs_ids"]) == sorted(expected.attrs["stacked_obs_ids"])
    for name in ("livetime_total", "ontime_total"):
        assert mosaic.attrs[name] == pytest.approx(expected.attrs[name])
    assert float(mosaic["counts"].sum()) > 0
    return mosaic


# parent grids across the 0/360 wrap: a plain grid (lon continuous from -4 to 4.5 deg) and a
# full-circle band whose lon seam is at 0 (runs across it are split between both ends)
WRAP_PARENTS = {
    "across-wrap": SkyGrid.from_center((0.25, 10.0), (8.5, 7.0), 0.05),
    "full-circle-seam": SkyGrid(np.arange(0.1, 360, 0.2), np.arange(6.1, 14, 0.2), "icrs"),
}
WRAP_RUNS = ((1, 359.4, 10.0), (2, 0.8, 11.0), (3, 0.1, 9.2))


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("parent", list(WRAP_PARENTS))
def test_toy_runs_across_wrap_equal_stack(tmp_path, parent, batch):
    """One run per task, or runs 1-2 in one batch (one transaction per chunk for both, two
    parts of each run in the same chunk on a full-circle seam)."""
    grid = WRAP_PARENTS[parent]
    spec = toy_spec(grid)
    runs = [ToyRun(i, ra, dec, seed=i) for i, ra, dec in WRAP_RUNS]
    create_mosaic_store(tmp_path / "m.zarr", spec, chunks=12)
    result = add_runs_to_mosaic(tmp_path / "m.zarr", runs, spec, runs_per_task=batch)
    assert sorted(result.added) == [1, 2, 3] and result.skipped == {}
    mosaic = assert_mosaic_equals(tmp_path / "m.zarr", stacked(runs, spec))
    # each run lands on both sides of lon 0
    counts = mosaic["counts"].sum(("energy", "lat"))
    lon = (mosaic["lon"] + 180) % 360 - 180
    assert float(counts.where(lon < 0).sum()) > 0 and float(counts.where(lon > 0).sum()) > 0


def test_cutout_across_seam_is_continuous():
    grid = WRAP_PARENTS["full-circle-seam"]
    place = place_cutout(grid, SkyCoord(359.9 * u.deg, 10 * u.deg), 2.1)
    pieces = place.pieces()
    assert len(pieces) == 2
    (_, right), (_, left) = pieces
    assert right.stop == grid.lon.size and left.start == 0
    assert np.all(np.diff(place.grid.lon) > 0)  # one continuous cutout
    np.testing.assert_allclose(place.grid.lon % 360, grid.lon[place.cols])
    inside = place_cutout(grid, SkyCoord(180 * u.deg, 10 * u.deg), 2.1)
    assert len(inside.pieces()) == 1


def test_polar_runs_reduced_in_bands_equal_stack(tmp_path, monkeypatch):
    """Runs near a pole of a full-circle grid cover every longitude: reduced and added one band
    of chunk columns at a time (a small band budget forces many bands) and still equal the
    plain stack."""
    from gammaxr.reduce import mosaic_run

    grid = SkyGrid(np.arange(0.25, 360, 0.5), np.arange(-89.75, -78, 0.5), "icrs")
    spec = toy_spec(grid)
    runs = [ToyRun(1, 40.0, -88.5, seed=1), ToyRun(2, 200.0, -87.0, seed=2)]
    monkeypatch.setattr(mosaic_run, "BAND_VALUES", 9 * 8 * 24)  # 3 chunk columns of 8 x 24
    place = place_cutout(grid, runs[0].pointing, 2.1)
    assert place.cols.size == grid.lon.size  # the whole circle
    near = place.grid.separation_values(runs[0].pointing) < spec.offset_max
    bands = mosaic_run._bands(place, near, (8, 8), 9)
    assert len(bands) > 10
    # far from the pointing's longitude only the rows nearest the pole are reduced
    assert min(rows.stop - rows.start for rows, _ in bands) < place.grid.shape[0] / 2
    # a run alone in its task is added band by band as its bands are made (its memory one
    # band); a batch's runs are made whole first, then added
    import gammaxr.reduce.mosaic as mosaic_module

    made, seen, fine_bands = [0], [], mosaic_run.RunCutout.fine_bands

    def counted_bands(self, chunks):
        for band in fine_bands(self, chunks):
            made[0] += 1
            yield band

    add_parts = mosaic_module._add_parts

    def recording_add_parts(ledger, grid, parts, *args):
        if grid == "fine":
            seen.append((made[0], len({obs_id for obs_id, _, _ in parts})))
        return add_parts(ledger, grid, parts, *args)

    monkeypatch.setattr(mosaic_run.RunCutout, "fine_bands", counted_bands)
    monkeypatch.setattr(mosaic_module, "_add_parts", recording_add_parts)
    expected = stacked(runs, spec)
    for batch in (1, 2):
        path = tmp_path / f"m{batch}.zarr"
        create_mosaic_store(path, spec, chunks=8)
        made[0] = 0
        seen.clear()
        result = add_runs_to_mosaic(path, runs, spec, runs_per_task=batch, scheduler="sync")
        assert sorted(result.added) == [1, 2]
        if batch == 1:  # each band added before the next is made
            assert [m for m, _ in seen] == list(range(1, made[0] + 1)) and made[0] > 20
            assert max(n for _, n in seen) == 1
        else:  # both runs made whole, then added in one pass over the chunks
            assert seen == [(made[0], 2)] and made[0] > 20
        # the stack bins each event once on the whole grid: equal counts mean none was counted
        # on two bands or lost between them
        mosaic = assert_mosaic_equals(path, expected)
        assert float(mosaic["counts"].sum()) > 1000


def test_overlapping_runs_add_under_locks(tmp_path):
    """Many runs on the same chunks, in parallel threads: nothing lost to races."""
    grid = SkyGrid.from_center((40.0, -30.0), (6.0, 5.0), 0.05)
    spec = toy_spec(grid, safe_mask=("offset-max",))
    create_mosaic_store(tmp_path / "one.zarr", spec, chunks=16)
    add_runs_to_mosaic(tmp_path / "one.zarr", [ToyRun(1, 40.2, -30.1)], spec)
    many = [ToyRun(i, 40.2, -30.1) for i in range(1, 9)]  # identical runs, distinct obs_ids
    create_mosaic_store(tmp_path / "many.zarr", spec, chunks=16)
    with dask.config.set(num_workers=4):
        add_runs_to_mosaic(tmp_path / "many.zarr", many, spec, scheduler="threads")
    one = gammaxr.open_dataset(tmp_path / "one.zarr").compute()
    eight = gammaxr.open_dataset(tmp_path / "many.zarr").compute()
    for name in ("counts", "background", "exposure"):
        xr.testing.assert_allclose(eight[name], 8 * one[name], rtol=1e-6)
    xr.testing.assert_equal(eight["mask_safe"], one["mask_safe"])
    assert sorted(eight.attrs["stacked_obs_ids"]) == list(range(1, 9))
    assert eight.attrs["livetime_total"] == pytest.approx(8 * 1700.0)


def test_run_tasks_open_no_zarr_group(tmp_path, monkeypatch):
    """The store's chunk layout is read once per call, not in every run's task: the tasks
    write through the plan's direct chunk I/O, and the result is the same."""
    import zarr

    import gammaxr.io.mosaic_ledger as ledger_module

    grid = SkyGrid.from_center((40.0, -30.0), (6.0, 5.0), 0.05)
    spec = toy_spec(grid, safe_mask=("offset-max",))
    runs = [ToyRun(i, 40.2 + 0.1 * i, -30.1, seed=i) for i in range(1, 5)]
    opened, open_group = [], zarr.open_group

    def counting_open_group(*args, **kwargs):
        opened.append(args)
        return open_group(*args, **kwargs)

    monkeypatch.setattr(ledger_module.zarr, "open_group", counting_open_group)
    counts = {}
    for n in (1, 4):
        create_mosaic_store(tmp_path / f"m{n}.zarr", spec, chunks=16)
        opened.clear()
        add_runs_to_mosaic(tmp_path / f"m{n}.zarr", runs[:n], spec, scheduler="sync")
        counts[n] = len(opened)
    assert counts[4] == counts[1]  # the call's own opens, whatever the number of runs
    assert_mosaic_equals(tmp_path / "m4.zarr", stacked(runs, spec))


def test_default_batches_by_count_memory_and_cap(tmp_path, monkeypatch):
    """Batches by the rule of reduce_runs (runs per task from the number of runs and the
    bytes of a cutout), capped at MAX_RUNS_PER_TASK; every batching gives the same store."""
    import gammaxr.reduce.mosaic as mosaic_module
    import gammaxr.reduce.runs as runs_module

    grid = SkyGrid.from_center((40.0, -30.0), (6.0, 5.0), 0.05)
    spec = toy_spec(grid, safe_mask=("offset-max",))
    runs = [ToyRun(i, 40.0 + 0.3 * i, -30.1, seed=i) for i in range(1, 6)]
    tasks, compute = [], mosaic_module.compute

    def counting_compute(*delayed, **kwargs):
        tasks.append(len(delayed))
        return compute(*delayed, **kwargs)

    monkeypatch.setattr(mosaic_module, "compute", counting_compute)
    monkeypatch.setattr(runs_module, "TARGET_TASKS", 2)  # 5 runs: batches of 3
    expected = stacked(runs, spec)
    cases = {"by count": ({}, 2), "by memory": ({"array.chunk-size": "1 kiB"}, 5)}
    cases["capped"] = ({}, 3)
    for name, (config, n_tasks) in cases.items():
        if name == "capped":
            monkeypatch.setattr(mosaic_module, "MAX_RUNS_PER_TASK", 2)
        path = tmp_path / f"{name}.zarr"
        create_mosaic_store(path, spec, chunks=16)
        with dask.config.set(config):
            result = add_runs_to_mosaic(path, runs, spec, scheduler="sync")
        assert tasks[-1] == n_tasks and result.runs_per_task == -(-5 // n_tasks), name
        assert result.added == (1, 2, 3, 4, 5)
        assert all(result.seconds[i] > 0 for i in result.added)
        assert_mosaic_equals(path, expected)


def test_batch_failing_to_add_reports_each_run(tmp_path, monkeypatch):
    """A batch whose adding fails at a chunk of its second run only: the first run, all its
    parts in before, is complete and reported added; the second failed and finished by the
    next call."""
    from gammaxr.io.mosaic_ledger import MosaicLedger

    grid = SkyGrid.from_center((40.0, -30.0), (5.0, 9.0), 0.05)
    spec = toy_spec(grid, safe_mask=("offset-max",))
    runs = [ToyRun(1, 40.0, -32.5, seed=1), ToyRun(2, 40.0, -27.0, seed=2)]
    commits, commit = [], MosaicLedger.commit

    def recording_commit(self, parts, region, values):
        commits.append({write.obs_id for write in parts})
        if len(commits) == fail_at:
            raise OSError(28, "No space left on device")
        return commit(self, parts, region, values)

    monkeypatch.setattr(MosaicLedger, "commit", recording_commit)
    fail_at = None  # a clean batch first: which commits hold which runs
    create_mosaic_store(tmp_path / "clean.zarr", spec, chunks=16)
    add_runs_to_mosaic(tmp_path / "clean.zarr", runs, spec, scheduler="sync", runs_per_task=2)
    last_of_run_1 = max(i for i, ids in enumerate(commits, 1) if 1 in ids)
    fail_at = next(i for i, ids in enumerate(commits, 1) if i > last_of_run_1 and ids == {2})
    commits.clear()
    path = tmp_path / "m.zarr"
    create_mosaic_store(path, spec, chunks=16)
    with pytest.raises(RunReductionError, match=r"obs_id 2.*No space left.*add it again"):
        add_runs_to_mosaic(path, runs, spec, scheduler="sync", runs_per_task=2)
    records = MosaicLedger(path).records()
    assert records[1]["state"] == "complete" and records[2]["state"] == "adding"
    result = add_runs_to_mosaic(path, runs, spec, scheduler="sync", runs_per_task=2)
    assert result.present == (1,) and result.added == (2,)
    assert_mosaic_equals(path, stacked(runs, spec))


def test_outside_run_skipped_and_recorded(tmp_path):
    grid = SkyGrid.from_center((100.0, 5.0), (5.0, 5.0), 0.05)
    spec = toy_spec(grid)
    runs = [ToyRun(1, 100.5, 5.0), ToyRun(2, 200.0, -40.0, seed=2), ToyRun(3, 97.0, 6.5, seed=3)]
    path = tmp_path / "m.zarr"
    create_mosaic_store(path, spec, chunks=32)
    with pytest.warns(RuntimeWarning, match="obs_id 2 skipped: outside the parent grid"):
        result = add_runs_to_mosaic(path, runs, spec)
    assert sorted(result.added) == [1, 3]
    assert list(result.skipped) == [2]
    assert mosaic_skipped_runs(path) == result.skipped
    reopened = gammaxr.open_dataset(path)
    assert mosaic_skipped_runs(reopened) == result.skipped
    # run 3 is partly off the grid (clipped cutout); run 2 is not counted anywhere
    assert_mosaic_equals(path, stacked([runs[0], runs[2]], spec))


def test_corrupt_run_skip_and_raise(tmp_path):
    grid = SkyGrid.from_center((60.0, 0.0), (6.0, 5.0), 0.05)
    spec = toy_spec(grid)
    runs = [ToyRun(1, 59.0, 0.3), ToyRun(2, 60.0, 0.0, broken=True), ToyRun(3, 61.0, -0.5)]
    create_mosaic_store(tmp_path / "skip.zarr", spec, chunks=32)
    with pytest.warns(RuntimeWarning, match="obs_id 2 skipped: OSError"):
        result = add_runs_to_mosaic(tmp_path / "skip.zarr", runs, spec, on_error="skip")
    assert "toy_2.fits.gz is truncated" in result.skipped[2]
    assert mosaic_skipped_runs(tmp_path / "skip.zarr") == result.skipped
    good = [runs[0], runs[2]]
    assert_mosaic_equals(tmp_path / "skip.zarr", stacked(good, spec))

    create_mosaic_store(tmp_path / "raise.zarr", spec, chunks=32)
    with pytest.raises(RunReductionError, match=r"obs_id 2: .*toy_2\.fits\.gz is truncated"):
        add_runs_to_mosaic(tmp_path / "raise.zarr", runs, spec, on_error="raise")
    # the good runs were still added, completely and on record; the bad one can follow later
    assert mosaic_skipped_runs(tmp_path / "raise.zarr") == {}
    assert_mosaic_equals(tmp_path / "raise.zarr", stacked(good, spec))
    result = add_runs_to_mosaic(tmp_path / "raise.zarr", [ToyRun(2, 60.0, 0.0)])  # fixed run
    assert result.added == (2,)


def _no_compute(dsk, keys, **kwargs):
    raise RuntimeError("dask computation was triggered where the data must stay lazy")


def test_create_whole_sky_store_is_lazy(tmp_path):
    """A whole-sky store at 0.02 deg is metadata only and re-opens lazily."""
    grid = SkyGrid.all_sky(0.02, frame="galactic")
    spec = ReductionSpec(ENERGY, ENERGY_TRUE, grid=grid, safe_mask=("offset-max",))
    path = tmp_path / "sky.zarr"
    ds = create_mosaic_store(path, spec, chunks=512)
    assert ds["counts"].shape == (3, 9000, 18000)
    assert ds["counts"].data.chunksize == (3, 512, 512)
    stored = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    assert stored < 2e6  # coordinates and metadata, no data chunks
    assert not os.path.exists(path / "counts" / "c")
    reopened = gammaxr.open_dataset(path)
    assert reopened.attrs["stacked_obs_ids"] == [] and reopened.attrs["frame"] == "galactic"
    with dask.config.set(scheduler=_no_compute):
        total = reopened["exposure"].sum()
        patch = reopened.isel(lat=slice(4000, 4010), lon=slice(100, 110))
        assert isinstance(total.data, dask.array.Array)
        with pytest.raises(RuntimeError, match="must stay lazy"):
            total.compute()
    patch = patch.compute(scheduler="sync")
    assert float(patch["exposure"].sum()) == 0 and not bool(patch["mask_safe"].any())
    restored = mosaic_spec(path)
    assert restored.grid.is_same(grid) and restored.energy_edges == spec.energy_edges


def test_bad_arguments(tmp_path):
    grid = SkyGrid.from_center((60.0, 0.0), (4.0, 4.0), 0.1)
    spec = toy_spec(grid)
    with pytest.raises(ValueError, match="offset-max"):
        create_mosaic_store(tmp_path / "a.zarr", toy_spec(grid, safe_mask=("aeff-default",)))
    with pytest.raises(ValueError, match="parent grid"):
        create_mosaic_store(tmp_path / "a.zarr", toy_spec(None))
    path = tmp_path / "m.zarr"
    create_mosaic_store(path, spec)
    with pytest.raises(FileExistsError):
        create_mosaic_store(path, spec)
    with pytest.raises(ValueError, match="differs"):
        add_runs_to_mosaic(path, [ToyRun(1, 60, 0)], toy_spec(grid, safe_mask=("offset-max",)))
    other = SkyGrid.from_center((60.0, 0.0), (4.0, 4.0), 0.05)
    with pytest.raises(ValueError, match="grid"):
        add_runs_to_mosaic(path, [ToyRun(1, 60, 0)], toy_spec(other))
    with pytest.raises(ValueError, match="duplicate obs_id"):
        add_runs_to_mosaic(path, [ToyRun(1, 60, 0), ToyRun(1, 61, 0)])
    with pytest.raises(ValueError, match="on_error"):
        add_runs_to_mosaic(path, [ToyRun(1, 60, 0)], on_error="ignore")
    for bad in (0, -2, 1.5, "2", True, [2]):
        with pytest.raises(ValueError, match="runs_per_task must be a positive integer"):
            add_runs_to_mosaic(path, [ToyRun(1, 60, 0)], runs_per_task=bad)
    assert add_runs_to_mosaic(path, [ToyRun(3, 60, 0)], runs_per_task=2.0).runs_per_task == 2
    assert add_runs_to_mosaic(path, [ToyRun(1, 60, 0)]).added == (1,)
    again = add_runs_to_mosaic(path, [ToyRun(1, 60, 0), ToyRun(2, 60.5, 0)])
    assert again.added == (2,) and again.present == (1,)  # idempotent: run 1 not doubled
    with pytest.raises(FileNotFoundError, match="no mosaic store"):
        add_runs_to_mosaic(tmp_path / "nothing.zarr", [ToyRun(2, 60, 0)])


# ----------------------------------------------------------------------------------------------
# H.E.S.S. DR1 runs
# ----------------------------------------------------------------------------------------------

CRAB_RUNS = (23523, 23526, 23559)
IRF_MAPS = ("counts", "exposure", "background", "psf", "edisp")


@pytest.fixture(scope="module")
def hess_store(hess_dir):
    return open_datastore(hess_dir)


@pytest.mark.hess
def test_hess_crab_runs_equal_stack(tmp_path, hess_store):
    """Real IRFs, PSF/edisp maps, a parent edge clipping the runs, cutouts over many chunks."""
    grid = SkyGrid.from_center((84.5, 21.5), (5.5, 4.5), 0.05)
    spec = ReductionSpec(
        ENERGY, ENERGY_TRUE, grid=grid, maps=IRF_MAPS, safe_mask=("aeff-default", "offset-max")
    )
    runs = hess_store.observations(CRAB_RUNS)
    create_mosaic_store(tmp_path / "m.zarr", spec, chunks=24)
    add_runs_to_mosaic(tmp_path / "m.zarr", runs, spec)
    mosaic = assert_mosaic_equals(tmp_path / "m.zarr", stacked(runs, spec))
    assert float(mosaic["psf"].max()) > 0 and float(mosaic["edisp"].max()) > 0


@pytest.mark.hess
def test_hess_run_across_galactic_seam(tmp_path, hess_store):
    """Run 26077 (l = 359.7 deg) on a full-circle galactic band whose lon seam is at l = 0."""
    grid = SkyGrid(np.arange(0.1, 360, 0.2), np.arange(20.1, 28.5, 0.2), "galactic")
    spec = ReductionSpec(
        ENERGY,
        ENERGY_TRUE,
        grid=grid,
        maps=IRF_MAPS,
        safe_mask=("aeff-default", "offset-max"),
        irf_binsz=0.4,
    )
    runs = hess_store.observations([26077])
    create_mosaic_store(tmp_path / "m.zarr", spec, chunks=64)
    add_runs_to_mosaic(tmp_path / "m.zarr", runs, spec, scheduler="processes")
    mosaic = assert_mosaic_equals(tmp_path / "m.zarr", stacked(runs, spec))
    exposure = mosaic["exposure"].sum(("energy_true", "lat"))
    assert float(exposure.isel(lon=slice(0, 10)).sum()) > 0  # l just above 0
    assert float(exposure.isel(lon=slice(-10, None)).sum()) > 0  # l just below 360


@pytest.mark.hess
def test_hess_corrupt_run(tmp_path, hess_dir):
    from test_dl3_bad_input import RUN_FILE, make_store

    path = make_store(
        tmp_path, hess_dir, {1: {}, 2: {"events": ("events", "broken.fits.gz", "EVENTS")}}
    )
    data = (path / "data" / RUN_FILE).read_bytes()
    (path / "data" / "broken.fits.gz").write_bytes(data[: len(data) // 3])
    runs = open_datastore(path).observations()
    grid = SkyGrid.from_center(runs[0].pointing, 5.0, 0.1)
    spec = ReductionSpec(ENERGY, ENERGY_TRUE, grid=grid, safe_mask=("offset-max",))
    create_mosaic_store(tmp_path / "m.zarr", spec)
    with pytest.raises(RunReductionError, match=r"obs_id 2: .*broken\.fits\.gz"):
        add_runs_to_mosaic(tmp_path / "m.zarr", runs)
    assert gammaxr.open_dataset(tmp_path / "m.zarr").attrs["stacked_obs_ids"] == [1]


@pytest.mark.hess
def test_hess_distributed_cluster(tmp_path, hess_store):
    distributed = pytest.importorskip("distributed")
    grid = SkyGrid.from_center((83.63, 22.01), (4.0, 4.0), 0.1)
    spec = ReductionSpec(ENERGY, ENERGY_TRUE, grid=grid, safe_mask=("offset-max",))
    runs = hess_store.observations(CRAB_RUNS[:2])
    create_mosaic_store(tmp_path / "m.zarr", spec, chunks=16)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        result = add_runs_to_mosaic(tmp_path / "m.zarr", runs, spec)
    assert sorted(result.added) == list(CRAB_RUNS[:2])
    assert_mosaic_equals(tmp_path / "m.zarr", stacked(runs, spec))
