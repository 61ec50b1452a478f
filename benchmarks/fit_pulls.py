"""Pulls of fitted parameters over simulated realisations (point and Gaussian source).

For each source type, ``--n`` datasets are simulated from a known model on a toy map dataset
(flat exposure, Gaussian PSF map, diagonal edisp, flat background; gammaxr.testing), each is
fitted from the true values, and the pull ``(fitted - true) / error`` of every free parameter
is collected. The issue asks: pull mean within 0.25 of 0 and width within 0.25 of 1 over at
least 20 realisations. With n realisations the mean and width of a pull scatter by about
1/sqrt(n) and 1/sqrt(2 n) (0.22 and 0.16 for n = 20), so the default is 100.

Usage::

    python benchmarks/fit_pulls.py [--n 100] [--seed 0] [--kind point gaussian]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from gammaxr.fit import fit
from gammaxr.models import (
    FoVBackgroundModel,
    GaussianSpatialModel,
    Models,
    PointSpatialModel,
    PowerLaw,
    SkyModel,
)
from gammaxr.testing import simulate_counts, toy_map_dataset


def truth(kind: str) -> Models:
    spatial = {
        "point": PointSpatialModel(lon_0=83.65, lat_0=22.0),
        "gaussian": GaussianSpatialModel(lon_0=83.65, lat_0=22.0, sigma=0.15),
    }[kind]
    spectral = PowerLaw(index=2.5, amplitude="5e-11 cm-2 s-1 TeV-1")
    return Models([SkyModel(spectral, spatial, name="src"), FoVBackgroundModel("toy")])


def run(kind: str, n: int, seed: int) -> dict[str, np.ndarray]:
    ds = toy_map_dataset()
    models = truth(kind)
    names = models.free_parameter_names
    x_true = models.get_vector()
    pulls, failed, seconds = [], 0, []
    rng = np.random.default_rng(seed)
    for _ in range(n):
        sim = simulate_counts(ds, models, rng)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = fit(sim, models)
        seconds.append(time.perf_counter() - t0)
        if not result.success:
            failed += 1
            continue
        fitted = np.array([result.value(p) for p in names])
        errors = np.array([result.error(p) for p in names])
        pulls.append((fitted - x_true) / errors)
    pulls = np.array(pulls)
    print(
        f"\n{kind} source: {n} realisations, {failed} failed fits, "
        f"median fit time {1e3 * np.median(seconds):.0f} ms"
    )
    print(
        f"{'parameter':32s} {'mean':>7s} {'width':>7s}  ok   "
        f"(statistical spread +-{1 / np.sqrt(len(pulls)):.2f}, +-{1 / np.sqrt(2 * len(pulls)):.2f})"
    )
    ok_all = True
    for i, name in enumerate(names):
        mean, width = pulls[:, i].mean(), pulls[:, i].std(ddof=1)
        ok = abs(mean) < 0.25 and abs(width - 1) < 0.25
        ok_all &= ok
        print(f"{name:32s} {mean:+7.3f} {width:7.3f}  {'yes' if ok else 'NO'}")
    print(f"all within 0.25: {'yes' if ok_all else 'NO'}")
    return dict(zip(names, pulls.T, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="realisations per source type")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kind", nargs="+", default=["point", "gaussian"])
    args = parser.parse_args()
    for kind in args.kind:
        run(kind, args.n, args.seed)


if __name__ == "__main__":
    main()
