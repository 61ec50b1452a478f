"""Benchmark: all 105 H.E.S.S. DL3 DR1 runs into one galactic all-sky mosaic, then maps of a region.

Usage::

    python benchmarks/allsky.py [DATA_DIR] [--output DIR] [--workers 2] [--runs N]
        [--scheduler threads|processes] [--chunks 256] [--resume]

Grid: the whole sky at 0.02 deg in galactic coordinates (18000 x 9000 pixels), reco energy
0.5-50 TeV in 10 log bins, true energy 0.3-100 TeV in 20 log bins, maps counts, exposure,
background, PSF and energy dispersion (on the IRF grid), safe mask aeff-default + offset-max
2.5 deg (the set-up of ``benchmarks/reduce_all_runs.py``), spatial chunks of 256 pixels.

Phases, each timed (wall seconds):

1. build: create the (empty) mosaic store and add every run with
   :func:`gammaxr.reduce.mosaic.add_runs_to_mosaic` (one task per run: on the all-sky grid
   a cutout's bytes, taken at the poles, allow no batches; exactly once); the
   mosaic's cost per run (build wall time / runs added, ms/run, and the spread of the per-run
   task times) is printed so its flatness can be checked;
2. reopen: open the store lazily and sum the safe counts and background over the whole sky;
   they must equal the sums of what each run put in (``MosaicResult.sums``: each run's safe
   sums on its cutout, exactly-once), and are shown beside the per-run safe sums of
   ``reduce_all_runs.py`` (257457 counts, 256232 background in Gammapy 2.1, on per-run
   5 x 5 deg icrs grids whose pixel edges differ from the all-sky grid's at the offset-max
   circle);
3. analysis: an excess map (``excess_map``, r = 0.1 deg), a ring background
   (``ring_background``) and residuals of a 5 x 5 deg region around the Galactic centre
   computed from the lazy store, counting the zarr chunk files actually read (the fraction of
   the store's chunks), and a fit of a point source plus a background norm on a 3 x 3 deg
   cutout around the Crab.

Printed: wall time per step, per phase and in total, peak memory of all processes (the
resident memory of this process and its children, summed, sampled every 20 ms; and the
largest single process), totals, the fraction of chunks read and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import dask
import numpy as np

REPO = Path(__file__).resolve().parent.parent
GAMMAPY_COUNTS, GAMMAPY_BACKGROUND = 257457.0, 256232.1


def _data_dir(arg: str | None) -> Path:
    root = Path(arg or os.environ.get("GAMMAXR_DATA") or REPO.parent / "shared" / "data")
    return root if (root / "hdu-index.fits.gz").exists() else root / "hess-dl3-dr1"


def peak_memory_gb() -> float:
    """Max resident memory of this process and of its (waited-for) children [GB]."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 2**20


class TreeMemory:
    """Samples the resident memory of this process and all its children (summed) in a
    background thread; ``peak`` is the largest sum seen [bytes]."""

    def __init__(self, interval: float = 0.02) -> None:
        self.peak, self._interval, self._stop = 0, interval, threading.Event()

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self._interval)

    def __enter__(self) -> TreeMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class ChunkReads:
    """Records the zarr chunk files read (zarr-python's LocalStore.get), by store key."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> ChunkReads:
        from zarr.storage import LocalStore

        self._original = LocalStore.get
        reads = self

        async def get(store, key, *args, **kwargs):
            if "/c/" in key or key.startswith("c/"):
                with reads._lock:
                    reads.keys.add(key)
            return await reads._original(store, key, *args, **kwargs)

        LocalStore.get = get
        return self

    def __exit__(self, *exc) -> None:
        from zarr.storage import LocalStore

        LocalStore.get = self._original


def total_chunks(path: Path) -> int:
    """Chunks of every data variable of the store (written or not: the chunk grid)."""
    import zarr

    group = zarr.open_group(path, mode="r")
    total = 0
    for _, arr in group.arrays():
        if arr.ndim >= 2:
            total += int(
                np.prod([int(np.ceil(s / c)) for s, c in zip(arr.shape, arr.chunks, strict=True)])
            )
    return total


def region(ds, lon: float, lat: float, width: float, suffix: str = "") -> dict[str, slice]:
    """Index selection of a width x width deg box (lon wraps at 360) on the grid whose dims
    are ``lat{suffix}``, ``lon{suffix}`` (``"_irf"``: the coarse IRF grid)."""
    lons = (ds[f"lon{suffix}"].values - lon + 180) % 360 - 180
    cols = np.flatnonzero(np.abs(lons) <= width / 2)
    rows = np.flatnonzero(np.abs(ds[f"lat{suffix}"].values - lat) <= width / 2)
    return {
        f"lat{suffix}": slice(rows[0], rows[-1] + 1),
        f"lon{suffix}": slice(cols[0], cols[-1] + 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=None)
    parser.add_argument("--output", default=None, help="store directory (default: a temp dir)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", default="threads")
    parser.add_argument("--runs", type=int, default=None, help="only the first N runs")
    parser.add_argument("--obs-ids", default=None, help="only these runs (comma-separated)")
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument(
        "--resume", action="store_true", help="keep a store at --output and add the runs again"
    )
    args = parser.parse_args()

    import gammaxr
    from gammaxr.data import open_datastore
    from gammaxr.geom import SkyGrid
    from gammaxr.reduce.dataset import ReductionSpec
    from gammaxr.reduce.mosaic import add_runs_to_mosaic, create_mosaic_store

    memory = TreeMemory().__enter__()
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    phases: dict[str, float] = {}
    seconds: dict[str, float] = {}
    store = open_datastore(_data_dir(args.data_dir))
    if args.obs_ids:
        runs = store.observations([int(i) for i in args.obs_ids.split(",")])
    else:
        runs = store.observations()[: args.runs]
    spec = ReductionSpec(
        energy_edges=np.geomspace(0.5, 50, 11),
        energy_true_edges=np.geomspace(0.3, 100, 21),
        grid=SkyGrid.all_sky(0.02, frame="galactic"),
        maps=("counts", "exposure", "background", "psf", "edisp"),
        safe_mask=("aeff-default", "offset-max"),
        offset_max=2.5,
    )
    folder = Path(args.output or tempfile.mkdtemp(prefix="gammaxr-allsky-"))
    path = folder / "allsky.zarr"

    # -- phase 1: build --------------------------------------------------------------------
    t0 = time.perf_counter()
    if not (args.resume and path.exists()):
        create_mosaic_store(path, spec, chunks=args.chunks, mode="w")
    seconds["create the empty store"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    with dask.config.set(num_workers=args.workers):
        result = add_runs_to_mosaic(path, runs, spec, scheduler=args.scheduler, progress=False)
    seconds["add runs" if not args.resume else "add runs again"] = time.perf_counter() - t1
    phases["build"] = time.perf_counter() - t0
    build_peak = memory.peak

    # -- phase 2: reopen and sum -----------------------------------------------------------
    t0 = time.perf_counter()
    sky = gammaxr.open_dataset(path)
    with dask.config.set(num_workers=args.workers, scheduler=args.scheduler):
        counts, background = dask.compute(
            sky["counts"].data.sum(dtype=float), sky["background"].data.sum(dtype=float)
        )
    phases["reopen + whole-sky totals"] = seconds["totals over the whole sky"] = (
        time.perf_counter() - t0
    )

    # -- phase 3: analysis of regions ------------------------------------------------------
    from gammaxr.estimators.excess_map import excess_map
    from gammaxr.reduce.ring import ring_background

    t_analysis = time.perf_counter()
    n_chunks = total_chunks(path)
    box = region(sky, 0.0, 0.0, 5.0)
    fractions = {}

    def maps_only(ds):
        keep = ("counts", "background", "mask_safe")
        return ds.drop_vars([v for v in ds.data_vars if v not in keep])

    products = {
        "excess map (r = 0.1 deg)": lambda ds: excess_map(
            maps_only(ds), 0.1, energy_edges=[0.5, 50]
        )[["significance", "excess"]],
        "ring background (0.7 + 0.3 deg)": lambda ds: ring_background(
            maps_only(ds), 0.7, 0.3, energy_edges=[0.5, 50]
        )[["counts_off", "acceptance_off"]],
        "residuals (counts - background)": lambda ds: ds.gamma.residuals(),
    }
    for name, make in products.items():
        t0 = time.perf_counter()
        lazy = make(gammaxr.open_dataset(path)).isel(box)
        with ChunkReads() as reads, dask.config.set(scheduler="threads", num_workers=args.workers):
            values = lazy.compute()
        seconds[f"{name}, 5 x 5 deg"] = time.perf_counter() - t0
        fractions[name] = (len(reads.keys), values)

    t0 = time.perf_counter()
    fit_summary = _fit_crab(gammaxr.open_dataset(path))
    seconds["fit of a 3 x 3 deg cutout (Crab)"] = time.perf_counter() - t0
    phases["analysis (3 maps + fit)"] = time.perf_counter() - t_analysis
    wall = time.perf_counter() - start
    memory.__exit__()

    added = len(result.added)
    per_run = np.array(list(result.seconds.values())) if result.seconds else np.zeros(1)
    run_counts = sum(s["counts"] for s in result.sums.values())
    run_background = sum(s["background"] for s in result.sums.values())
    print(f"runs added / present / skipped : {added} / {len(result.present)} / "
          f"{len(result.skipped)} {dict(list(result.skipped.items())[:3])}")  # fmt: skip
    print(f"grid                           : {spec.grid.lon.size} x {spec.grid.lat.size} px "
          f"(galactic, 0.02 deg), chunks {args.chunks}")  # fmt: skip
    print(f"scheduler / workers            : {args.scheduler} / {args.workers}")
    for name, value in seconds.items():
        print(f"  {name:29s}: {value:.1f} s")
    for name, value in phases.items():
        print(f"phase: {name:24s}: {value:.1f} s")
    print(f"wall time (total)              : {wall:.1f} s")
    if added:
        print(f"mosaic cost per run            : {1e3 * seconds.get('add runs', 0) / added:.0f} "
              f"ms/run (build wall / runs added); per-run task: median "
              f"{np.median(per_run):.2f} s, 90 % {np.percentile(per_run, 90):.2f} s, "
              f"max {per_run.max():.2f} s (obs_id {max(result.seconds, key=result.seconds.get)})")  # fmt: skip
    print(f"peak memory, all processes     : {memory.peak / 2**30:.2f} GB (build phase "
          f"{build_peak / 2**30:.2f} GB); largest single process {peak_memory_gb():.2f} GB")  # fmt: skip
    print(f"store on disk                  : {_disk_gb(path):.2f} GB, {n_chunks} chunks")
    print(f"safe counts, whole sky         : {float(counts):.0f}  (sum of the runs' safe sums "
          f"{run_counts:.0f}, diff {float(counts) - run_counts:+.1f}; Gammapy 2.1 per-run "
          f"grids {GAMMAPY_COUNTS:.0f}, diff {float(counts) - GAMMAPY_COUNTS:+.0f})")  # fmt: skip
    print(f"safe background, whole sky     : {float(background):.1f}  (sum of the runs' "
          f"{run_background:.1f}, {_rel(float(background), run_background)}; Gammapy 2.1 "
          f"{GAMMAPY_BACKGROUND:.1f}, {_rel(float(background), GAMMAPY_BACKGROUND)})")  # fmt: skip
    for name, (n_read, values) in fractions.items():
        print(f"{name}, 5 x 5 deg at the GC: read {n_read} of {n_chunks} chunks "
              f"({100 * n_read / n_chunks:.2f} %); sizes {dict(values.sizes)}")  # fmt: skip
    print(f"fit of the Crab cutout         : {fit_summary}")
    print(f"load average (1 min)           : {load_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores")  # fmt: skip
    if args.output is None:
        shutil.rmtree(folder, ignore_errors=True)


def _rel(value: float, reference: float) -> str:
    return f"{100 * (value / reference - 1):+.4f} %" if reference else "n/a"


def _disk_gb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**30


def _fit_crab(sky) -> str:
    """A point source (power law) plus a background norm fitted on a 3 x 3 deg cutout."""
    from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel

    # the fine maps and the PSF / edisp maps of the IRF grid around the source
    cut = sky.isel(region(sky, 184.557, -5.784, 3.0))
    cut = cut.isel(region(cut, 184.557, -5.784, 4.0, suffix="_irf"))
    if float(cut["counts"].sum()) == 0:
        return "no Crab run in the mosaic"
    model = SkyModel(
        PowerLaw(index=2.5, amplitude="3e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(frame="galactic", lon_0=184.55, lat_0=-5.78),
        name="crab",
    )
    result = cut.gamma.fit(Models([model, FoVBackgroundModel("allsky")]), name="allsky")
    table = result.parameters
    pick = {}
    for name in ("crab.spectral.index", "crab.spectral.amplitude"):
        row = table.sel(param=name)
        pick[name.split(".")[-1]] = f"{float(row['value']):.4g} +- {float(row['error']):.2g}"
    return f"success {result.success}, {pick}"


if __name__ == "__main__":
    main()
