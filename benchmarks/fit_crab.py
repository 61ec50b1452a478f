"""Stacked Crab fit (H.E.S.S. DR1, 4 runs) against Gammapy 2.1's ``crab_fit`` reference.

Reduces the ``crab_runs`` reference case (grid and energy axes from crab_runs.npz, maps
counts/exposure/background/psf/edisp, safe mask offset-max 2.5 deg + aeff-max 10 %), fits
the FoV background of each run (method "fit", exclusion circle (83.63, 22.14) r = 0.2 deg),
stacks, and fits a point source with a power law plus a background norm (tilt frozen),
starting from the reference start values. Prints the fit time (Gammapy 2.1: about 2.6 s on
this machine class) and every fitted value against the reference, in units of the
reference error, with the ratio of errors; once with gammaxr's conventions (the default)
and once with ``convention="gammapy"``; then the total_stat of fits from two start values;
with ``--profiles`` also index profiles and the (index, amplitude) contour against Minos.
Last, the Crab MapDataset written by Gammapy 2.1 (``gammapy-files``) is read and fitted with
``convention="gammapy"`` from its README's start, against ``files.json``.

Usage::

    python benchmarks/fit_crab.py [--repeat 5] [--profiles] [--data DIR] [--reference DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import gammaxr.accessors  # noqa: F401  (registers ds.gamma)
from gammaxr.data import open_datastore
from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.reduce.runs import reduce_runs
from gammaxr.testing.reference import crab_reference_spec

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
EXCLUSION = "icrs; circle(83.63, 22.14, 0.2)"
ROWS = (
    ("index", "crab.spectral.index", "index"),
    ("amplitude", "crab.spectral.amplitude", "amplitude_cm-2_s-1_TeV-1"),
    ("lon_0", "crab.spatial.lon_0", "lon_0_deg"),
    ("lat_0", "crab.spatial.lat_0", "lat_0_deg"),
    ("bkg norm", "stacked-bkg.spectral.norm", "bkg_norm"),
)

#: A start 0.1 deg from the Crab with another spectrum (the fit must end at the same total_stat).
MOVED_START = {
    "crab.spatial.lon_0": 83.70,
    "crab.spatial.lat_0": 21.95,
    "crab.spectral.index": 2.3,
    "crab.spectral.amplitude": 3e-11,
}


def crab_dataset(data_dir: Path, reference_dir: Path):
    """The stacked Crab dataset of the reference case (and the reduction time)."""
    ref = np.load(reference_dir / "crab_runs.npz")
    meta = json.loads((reference_dir / "reference.json").read_text())["crab_runs"]
    spec = crab_reference_spec(ref)
    t0 = time.perf_counter()
    store = open_datastore(data_dir)
    runs = reduce_runs(store.observations([int(i) for i in meta["runs"]]), spec)
    runs = runs.gamma.fov_background(EXCLUSION, method="fit").compute()
    stacked = runs.gamma.stack()
    return stacked, time.perf_counter() - t0


def crab_models() -> Models:
    """Point source + power law (reference start values) + background norm (tilt frozen)."""
    crab = SkyModel(
        PowerLaw(index=2.702, amplitude="4.712e-11 cm-2 s-1 TeV-1", reference="1 TeV"),
        PointSpatialModel(lon_0=83.63308, lat_0=22.01450, frame="icrs"),
        name="crab",
    )
    return Models([crab, FoVBackgroundModel("stacked")])


def timed_fit(ds, models, repeat: int, **kwargs):
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = ds.gamma.fit(models, **kwargs)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return result, np.array(wall), np.array(cpu)


def report(result, reference: dict, label: str) -> bool:
    print(f"\n{label}: success={result.success}, nfev={result.nfev}, message={result.message!r}")
    print(
        f"{'parameter':10s} {'gammaxr':>12s} {'+-':>10s} {'Gammapy':>12s} {'+-':>10s} "
        f"{'dev/sigma':>9s} {'err ratio':>9s}"
    )
    ok = result.success
    for label_, name, key in ROWS:
        value, error = result.value(name), result.error(name)
        ref_value, ref_error = reference["params"][key]
        dev = (value - ref_value) / ref_error
        ratio = error / ref_error
        ok &= abs(dev) <= 0.2 and abs(ratio - 1) <= 0.1
        print(
            f"{label_:10s} {value:12.6g} {error:10.4g} {ref_value:12.6g} {ref_error:10.4g} "
            f"{dev:+9.3f} {ratio:9.3f}"
        )
    print(f"total_stat {result.total_stat:.2f} (Gammapy {reference['total_stat']})")
    print(f"all values within 0.2 sigma and errors within 10 %: {'yes' if ok else 'NO'}")
    return ok


def profiles(ds, models) -> None:
    """Index profiles at +-1 Hesse error and the (index, amplitude) contour vs Minos."""
    index, amplitude = "crab.spectral.index", "crab.spectral.amplitude"
    result = ds.gamma.fit(models, minos=[index])
    best, err = result.value(index), result.error(index)
    lo, hi = (float(result.parameters[k].sel(param=index)) for k in ("error_lo", "error_hi"))
    print(f"\nindex {best:.4f}: Hesse +-{err:.4f}, Minos {lo:+.4f} / {hi:+.4f}")
    for reoptimize in (False, True):
        t0 = time.perf_counter()
        profile = ds.gamma.stat_profile(result, index, [best - err, best + err], reoptimize)
        rise = profile["stat"].values - result.total_stat
        print(
            f"profile ({'re-optimised' if reoptimize else 'others fixed'}): rise at -1/+1 "
            f"Hesse error {rise[0]:.3f} / {rise[1]:.3f} ({time.perf_counter() - t0:.2f} s)"
        )
    t0 = time.perf_counter()
    profile = ds.gamma.stat_profile(result, index, reoptimize=True)
    print(
        f"re-optimised profile, {profile.sizes['value']} values: {time.perf_counter() - t0:.2f} s"
    )
    t0 = time.perf_counter()
    contour = ds.gamma.stat_contour(result, index, amplitude, n_points=20)
    extent = float(contour[index].min()) - best, float(contour[index].max()) - best
    print(
        f"1-sigma contour (20 points, {time.perf_counter() - t0:.2f} s): index extent "
        f"{extent[0]:+.4f} / {extent[1]:+.4f} (Minos {lo:+.4f} / {hi:+.4f})"
    )


def gammapy_file_fit(reference_dir: Path) -> None:
    """Fit of Gammapy's own Crab file (convention="gammapy") against files.json."""
    import warnings

    import gammaxr
    from gammaxr.io.gammapy_geometry import GammapyGeometryWarning

    root = reference_dir / "gammapy-files"
    ref = json.loads((root / "files.json").read_text())["crab"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GammapyGeometryWarning)
        ds = gammaxr.read_gammapy(root / "crab_stacked_mapdataset.fits.gz").compute()
    models = Models([crab_models()["crab"], FoVBackgroundModel("crab-stacked")])
    w0, c0 = time.perf_counter(), time.process_time()
    result = ds.gamma.fit(models, convention="gammapy")
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(f"\nGammapy's Crab file, convention='gammapy': {wall:.3f} s wall, {cpu:.3f} s CPU, "
          f"nfev={result.nfev}, success={result.success}")  # fmt: skip
    print(
        f"{'parameter':24s} {'gammaxr':>12s} {'files.json':>12s} {'dev/sigma':>9s} {'err ratio':>9s}"
    )
    for key, (value, error) in ref["params"].items():
        model, name = key.split(".")
        full = f"{model}.{'spatial' if name in ('lon_0', 'lat_0') else 'spectral'}.{name}"
        dev = (result.value(full) - value) / error
        print(f"{key:24s} {result.value(full):12.7g} {value:12.7g} {dev:+9.4f} "
              f"{result.error(full) / error:9.4f}")  # fmt: skip
    print(f"total_stat {result.total_stat:.4f} (Gammapy {ref['total_stat']:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed fits per convention")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "hess-dl3-dr1")
    parser.add_argument("--reference", type=Path, default=SHARED / "reference")
    parser.add_argument(
        "--profiles", action="store_true", help="also time index profiles and a contour"
    )
    args = parser.parse_args()
    reference = json.loads((args.reference / "reference.json").read_text())["crab_fit"]
    ds, seconds = crab_dataset(args.data, args.reference)
    print(f"reduction + FoV background + stacking: {seconds:.2f} s")
    print(f"stacked counts {float(ds['counts'].where(ds['mask_safe']).sum()):.0f}")
    models = crab_models()
    gammapy_seconds = reference["gammapy_seconds"]["fit"]
    for convention in ("gammaxr", "gammapy"):
        result, wall, cpu = timed_fit(ds, models, args.repeat, convention=convention)
        print(
            f"\nfit (convention={convention!r}), {args.repeat} runs: wall median "
            f"{np.median(wall):.3f} s (min {wall.min():.3f}), CPU median {np.median(cpu):.3f} s; "
            f"Gammapy 2.1 {gammapy_seconds} s -> {gammapy_seconds / np.median(wall):.1f}x faster"
        )
        report(result, reference, f"convention={convention!r}")
    moved = models.with_values(MOVED_START)
    a, b = ds.gamma.fit(models), ds.gamma.fit(moved)
    print(
        f"\ntotal_stat from the reference start {a.total_stat:.5f}, from {MOVED_START}: "
        f"{b.total_stat:.5f} (difference {abs(a.total_stat - b.total_stat):.1e})"
    )
    if args.profiles:
        profiles(ds, models)
    assert models == crab_models(), "the user's models were modified"
    if (args.reference / "gammapy-files" / "files.json").exists():
        gammapy_file_fit(args.reference)


if __name__ == "__main__":
    main()
