"""Pulls of a sub-run light curve on a simulated flare with intra-run variability.

Four 30-minute runs of the toy instrument (0.5 deg wobble, 10-minute gaps) on a point source
whose flux follows a light-curve template (baseline, then a flare rising to 4x inside the
second run and decaying over the third): the runs are reduced once (gammaxr.estimators.
gammaxr.testing.flare), then ``--n`` new event lists are simulated and the light curve is measured in
10-minute bins (3 per run, 1-10 TeV) from the per-run reduction cut in time. The pull of a
bin is ``(norm - injected mean norm in the bin) / norm_err``. Issue 12 asks for a pull mean
within 0.25 of 0 and a width within 0.25 of 1 over 50 realisations.

Usage::

    python benchmarks/light_curve_pulls.py [--n 50] [--seed 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gammaxr.testing.flare import flare_scenario, light_curve_pulls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="number of realisations")
    parser.add_argument("--seed", type=int, default=1, help="master seed")
    args = parser.parse_args()
    t0 = time.perf_counter()
    scenario = flare_scenario()
    t1 = time.perf_counter()
    pulls = light_curve_pulls(scenario, args.n, seed=args.seed)
    t2 = time.perf_counter()
    pull = pulls["pull"].values
    ok = np.isfinite(pull)
    print(f"scenario (simulate + write + reduce 4 runs once): {t1 - t0:.1f} s")
    print(
        f"{args.n} realisations x {pull.shape[1]} bins: {t2 - t1:.1f} s "
        f"({(t2 - t1) / args.n:.2f} s each; machine shared, timings are indicative)"
    )
    print(f"finite pulls: {ok.sum()} of {pull.size}")
    print(
        f"pull mean {pull[ok].mean():+.3f} (target |mean| < 0.25), "
        f"width {pull[ok].std(ddof=1):.3f} (target |width - 1| < 0.25)"
    )
    print("per bin: true norm, mean norm, mean pull, pull width")
    for k in range(pull.shape[1]):
        col = pull[:, k][np.isfinite(pull[:, k])]
        print(
            f"  bin {k:2d} [{pulls.tstart.values[k]:7.0f}, {pulls.tstop.values[k]:7.0f}] s: "
            f"{pulls.true_norm.values[k]:.3f} {np.nanmean(pulls.norm.values[:, k]):.3f} "
            f"{col.mean():+.2f} {col.std(ddof=1):.2f}"
        )
    pvalue = pulls["variability_pvalue"].values
    print(
        f"variability: p-value of a constant flux, median {np.median(pvalue):.2e} "
        f"(max {pvalue.max():.2e}); fractional variance {np.mean(pulls.fvar.values):.3f} "
        f"+- {np.std(pulls.fvar.values):.3f}"
    )


if __name__ == "__main__":
    main()
