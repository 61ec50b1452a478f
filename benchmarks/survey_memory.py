"""Benchmark: add H.E.S.S. runs into zarr-backed survey mosaics of two sizes.

Usage::

    python benchmarks/survey_memory.py [DATA_DIR] [--binsz 0.02] [--chunks 256] [--irf-maps]
        [--keep DIR]

For each parent grid (the Galactic plane region l = 295..365 deg, |b| < 5 deg, and the
whole sky, both at ``--binsz`` in galactic coordinates) a fresh process creates an empty
mosaic store (:func:`gammaxr.reduce.mosaic.create_mosaic_store`) and adds the MSH 15-52 and
RX J1713.7-3946 runs of the DR1 store (35 runs; 10 reco bins 0.5-50 TeV, 20 true bins
0.3-100 TeV, safe mask aeff-default + offset-max 2.5 deg) with
:func:`~gammaxr.reduce.mosaic.add_runs_to_mosaic` on dask threads. Each process prints its
wall time, peak resident memory (``ru_maxrss``) and the safe counts and background summed over
the mosaic; a table compares the two sizes (peak memory must not grow with the grid).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TARGETS = ("MSH 15-52", "RX J1713.7-3946")
PARENTS = ("plane", "sky")


def _store_dir(arg: str | None) -> Path:
    root = Path(arg or os.environ.get("GAMMAXR_DATA") or REPO.parent / "shared" / "data")
    return root if (root / "hdu-index.fits.gz").exists() else root / "hess-dl3-dr1"


def _peak_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes vs KiB


def _disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def run_one(data: Path, parent: str, binsz: float, irf_maps: bool, chunks: int, out: Path) -> dict:
    """Create one mosaic store and add the runs; returns the figures (in this process)."""
    import gammaxr
    from gammaxr.geom import SkyGrid
    from gammaxr.reduce.dataset import ReductionSpec
    from gammaxr.reduce.mosaic import add_runs_to_mosaic, create_mosaic_store

    after_imports = _peak_mb()
    store = gammaxr.open_datastore(data)
    table = store.obs_table
    obs_ids = table.obs_id.values[np.isin(table.target_name.values, TARGETS)]
    runs = store.observations(obs_ids)
    if parent == "sky":
        grid = SkyGrid.all_sky(binsz, frame="galactic")
    else:
        grid = SkyGrid.from_center((330.0, 0.0), (70.0, 10.0), binsz, frame="galactic")
    maps = ("counts", "exposure", "background") + (("psf", "edisp") if irf_maps else ())
    spec = ReductionSpec(
        energy_edges=np.geomspace(0.5, 50, 11),
        energy_true_edges=np.geomspace(0.3, 100, 21),
        grid=grid,
        maps=maps,
        safe_mask=("aeff-default", "offset-max"),
        offset_max=2.5,
    )
    t0 = time.perf_counter()
    create_mosaic_store(out, spec, chunks=chunks)
    t_create = time.perf_counter() - t0
    result = add_runs_to_mosaic(out, runs, spec, scheduler="threads")
    wall = time.perf_counter() - t0
    peak = _peak_mb()
    mosaic = gammaxr.open_dataset(out)
    dense_gb = mosaic["exposure"].nbytes / 2**30
    sums = {name: float(mosaic[name].sum().compute()) for name in ("counts", "background")}
    return {
        "parent": parent,
        "shape": list(grid.shape),
        "pixels_m": grid.lon.size * grid.lat.size / 1e6,
        "runs": len(result.added),
        "skipped": len(result.skipped),
        "create_s": t_create,
        "wall_s": wall,
        "peak_mb": peak,
        "after_imports_mb": after_imports,
        "disk_mb": _disk_mb(out),
        "dense_exposure_gb": dense_gb,
        **sums,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", help="data folder or the hess-dl3-dr1 store")
    parser.add_argument("--binsz", type=float, default=0.02, help="pixel size, deg")
    parser.add_argument("--irf-maps", action="store_true", help="also PSF and edisp maps")
    parser.add_argument("--chunks", type=int, default=256, help="spatial chunk edge, pixels")
    parser.add_argument("--keep", help="folder for the stores (default: a temporary one)")
    parser.add_argument("--one", choices=PARENTS, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data = _store_dir(args.data)

    if args.one:
        figures = run_one(data, args.one, args.binsz, args.irf_maps, args.chunks, Path(args.out))
        print(json.dumps(figures))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for parent in PARENTS:
            cmd = [sys.executable, __file__, str(data), "--one", parent, "--binsz"]
            cmd += [str(args.binsz), "--chunks", str(args.chunks)]
            cmd += ["--out", str(folder / f"mosaic_{parent}.zarr")]
            cmd += ["--irf-maps"] if args.irf_maps else []
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                return done.returncode
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))

    print(
        f"store: {data}; pixel {args.binsz} deg (galactic); chunks {args.chunks} px; "
        f"irf maps: {args.irf_maps}; dask threads"
    )
    header = (
        f"{'parent':8s} {'shape (lat, lon)':>18s} {'Mpix':>7s} {'runs':>5s} {'wall s':>7s} "
        f"{'peak MB':>8s} {'disk MB':>8s} {'dense exposure GB':>18s} {'counts':>9s} "
        f"{'background':>11s}"
    )
    print(header)
    for r in rows:
        shape = f"{r['shape'][0]} x {r['shape'][1]}"
        print(
            f"{r['parent']:8s} {shape:>18s} {r['pixels_m']:7.1f} {r['runs']:5d} "
            f"{r['wall_s']:7.1f} {r['peak_mb']:8.0f} {r['disk_mb']:8.1f} "
            f"{r['dense_exposure_gb']:18.1f} {r['counts']:9.0f} {r['background']:11.1f}"
        )
    print(f"(peak memory after imports: {rows[0]['after_imports_mb']:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
