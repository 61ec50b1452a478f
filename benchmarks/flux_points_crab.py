"""Crab flux points (H.E.S.S. DR1, 4 runs, stacked) against Gammapy 2.1's ``crab_fit`` reference.

Builds the stacked dataset of the reference case and fits point source + power law +
background norm exactly as ``benchmarks/fit_crab.py``, then estimates flux points in
1-2, 2-4, 4-10 TeV (snapped to the dataset edges 1-1.78, 1.78-3.16, 3.16-10 TeV, as Gammapy
does) with profile errors and upper limits. Prints the flux-point time (Gammapy 2.1: about
1.2 s on this machine class; the target is 5x faster, < 0.24 s) and TS and e2dnde per bin
against the reference, once for each rendering convention. Then times a TS map of the
stacked dataset (point source, power law of index 2; 100 x 100 pixels) with and without
profile errors and upper limits (Gammapy 2.1's TSMapEstimator with errors and limits takes
about 20 s on this dataset here).

Usage::

    python benchmarks/flux_points_crab.py [--repeat 5] [--data DIR] [--reference DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from fit_crab import SHARED, crab_dataset, crab_models

import gammaxr.accessors  # noqa: F401  (registers ds.gamma)

ENERGY_EDGES = [1.0, 2.0, 4.0, 10.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per convention")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "hess-dl3-dr1")
    parser.add_argument("--reference", type=Path, default=SHARED / "reference")
    args = parser.parse_args()
    reference = json.loads((args.reference / "reference.json").read_text())["crab_fit"]
    ref_ts = np.array(reference["flux_points_ts"])
    ref_e2dnde = np.array(reference["flux_points_e2dnde_TeV_cm-2_s-1"])
    gammapy_seconds = reference["gammapy_seconds"]["flux_points"]
    ds, seconds = crab_dataset(args.data, args.reference)
    print(f"reduction + FoV background + stacking: {seconds:.2f} s")
    ok = True
    for convention in ("gammaxr", "gammapy"):
        result = ds.gamma.fit(crab_models(), convention=convention)
        wall = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fp = ds.gamma.flux_points(
                result.models, ENERGY_EDGES, source="crab", convention=convention
            )
            wall.append(time.perf_counter() - t0)
        wall = np.array(wall)
        print(
            f"\nflux points (convention={convention!r}, fit success={result.success}), "
            f"{args.repeat} runs: wall median {np.median(wall):.3f} s (min {wall.min():.3f}); "
            f"Gammapy 2.1 {gammapy_seconds} s -> {gammapy_seconds / np.median(wall):.1f}x faster"
        )
        bounds = fp["energy_bounds"].values
        print(
            f"{'bin TeV':>12s} {'norm':>7s} {'+-':>6s} {'TS':>8s} {'Gammapy':>8s} {'dev':>7s} "
            f"{'e2dnde':>10s} {'Gammapy':>10s} {'dev':>7s} {'ul':>10s}"
        )
        ts, e2 = fp["ts"].values, fp["e2dnde"].values
        for i in range(fp.sizes["energy"]):
            dts = ts[i] / ref_ts[i] - 1
            de2 = e2[i] / ref_e2dnde[i] - 1
            ok &= abs(dts) <= 0.05
            print(
                f"{bounds[i, 0]:5.2f}-{bounds[i, 1]:5.2f} {fp['norm'].values[i]:7.3f} "
                f"{fp['norm_err'].values[i]:6.3f} {ts[i]:8.1f} {ref_ts[i]:8.1f} {dts:+7.2%} "
                f"{e2[i]:10.4g} {ref_e2dnde[i]:10.4g} {de2:+7.2%} {fp['e2dnde_ul'].values[i]:10.4g}"
            )
    print(f"\nall TS within 5 % of Gammapy: {'yes' if ok else 'NO'}")
    for selection in (None, "all"):
        t0 = time.perf_counter()
        maps = ds.gamma.ts_map(selection=selection)
        seconds = time.perf_counter() - t0
        peak = float(maps["sqrt_ts"].max())
        print(f"TS map (selection={selection!r}): {seconds:.2f} s, peak sqrt(TS) {peak:.2f}")


if __name__ == "__main__":
    main()
