"""Benchmark: load events, GTIs and all IRFs of every run of the HESS DL3 DR1 store.

Usage::

    python benchmarks/read_all_runs.py [DATA_DIR] [--max-workers N]

``DATA_DIR`` is the folder holding ``hess-dl3-dr1`` (or that store itself); default
``$GAMMAXR_DATA``, else ``../shared/data`` relative to the repository. Prints the wall time,
the peak resident memory of the process (``ru_maxrss``) and the number of events read.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from gammaxr import open_datastore

REPO = Path(__file__).resolve().parent.parent


def _store_dir(arg: str | None) -> Path:
    root = Path(arg or os.environ.get("GAMMAXR_DATA") or REPO.parent / "shared" / "data")
    return root if (root / "hdu-index.fits.gz").exists() else root / "hess-dl3-dr1"


def _peak_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes vs KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", help="data folder or the hess-dl3-dr1 store")
    parser.add_argument("--max-workers", type=int, default=4, help="reader threads (default 4)")
    args = parser.parse_args(argv)

    path = _store_dir(args.data)
    before = _peak_mb()
    t0 = time.perf_counter()
    store = open_datastore(path)
    runs = store.load_observations(max_workers=args.max_workers)
    wall = time.perf_counter() - t0

    n_events = sum(obs.events.sizes["event"] for obs in runs)
    n_irfs = sum(len(obs.loaded) - 2 for obs in runs)
    irf_mb = sum(
        obs.get(t).nbytes for obs in runs for t in obs.loaded if t not in ("events", "gti")
    )
    ev_mb = sum(obs.events.nbytes for obs in runs)
    print(f"store            : {path}")
    print(f"runs loaded      : {len(runs)} ({n_irfs} IRF HDUs, {args.max_workers} threads)")
    print(f"events           : {n_events}")
    print(f"wall time        : {wall:.2f} s ({1000 * wall / max(len(runs), 1):.1f} ms per run)")
    print(f"peak memory      : {_peak_mb():.0f} MB (after imports: {before:.0f} MB)")
    print(f"data held        : events {ev_mb / 2**20:.0f} MB, IRFs {irf_mb / 2**20:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
