"""Position bias of point-source fits, in units of the fitted error, for both conventions.

For each setting a map dataset is reduced once from a run (exposure, background, PSF and
edisp maps; its counts are not used). Each realisation puts a point source at a position
drawn uniformly inside one pixel (not at its centre), draws its photons with the event
simulator (exact sampling through the effective area, energy dispersion and PSF tables of
the run: :mod:`gammaxr.simulate.sampling`, independent of the fit's rendering of the model),
bins them, adds a Poisson sample of the background map, and fits a point source + power law
+ background norm, starting from the pixel centre, with ``convention="gammaxr"`` and
``convention="gammapy"`` on the same counts. The pull ``(fitted - true) / error`` of lon and
lat is collected; the table gives its mean (the bias; its statistical uncertainty is about
``1 / sqrt(n)``) and width, and the mean pull against the source's offset from the pixel
centre (a convention that pulls fits towards pixel centres has a negative slope).

Settings:

- ``cta``: CTA 1DC run 110380 (psf_3gauss, bkg_3d), galactic grid at 0.02 deg around the
  Galactic centre (square pixels), reco 0.3-10 TeV;
- ``toy``: the toy instrument (default scenario, one 30 min run), icrs grid with a lon step of
  0.02 deg of right ascension at Dec 22 deg (pixels 0.0185 x 0.02 deg on the sky), reco
  1-10 TeV.

Usage (a few minutes on one core)::

    python benchmarks/position_bias.py [--n 100] [--seed 1] [--setting cta toy] [DATA_DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from gammaxr.data import open_datastore
from gammaxr.fit import fit
from gammaxr.geom import SkyGrid
from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.reduce.dataset import ReductionSpec, reduce_observation
from gammaxr.reduce.maps import counts_cube
from gammaxr.simulate import irfs_from_observation, simulate_default
from gammaxr.simulate.sampling import reconstruct_photons, sample_source

CONVENTIONS = ("gammaxr", "gammapy")


def cta_setting(data_dir: Path) -> dict:
    store = open_datastore(data_dir / "cta-1dc" / "index" / "gps")
    obs = store.observation(110380)
    grid = SkyGrid.from_center((0.0, 0.0), 1.0, 0.02, frame="galactic")
    spec = ReductionSpec(
        np.geomspace(0.3, 10, 5),
        np.geomspace(0.2, 20, 11),
        grid=grid,
        maps=("exposure", "background", "psf", "edisp"),
        safe_mask=(),
    )
    return {
        "name": "cta",
        "obs": obs,
        "dataset": reduce_observation(obs, spec),
        "grid": grid,
        "pixel": (0.01, 0.01),  # centre of the pixel north-east of (0, 0)
        "spectrum": PowerLaw(index=2.5, amplitude="4e-12 cm-2 s-1 TeV-1"),
    }


def toy_setting(workdir: Path) -> dict:
    store = simulate_default(workdir / "toy-store", seed=5).open()
    obs = store.observations()[0]
    step = 0.02  # deg of right ascension: 0.0185 deg on the sky at Dec 22
    lon = 83.633 + step * (np.arange(50) - 24.5)
    lat = 22.014 + step * (np.arange(50) - 24.5)
    grid = SkyGrid.from_coords(lon, lat, "icrs")
    spec = ReductionSpec(
        np.geomspace(1.0, 10, 4),
        np.geomspace(0.5, 20, 9),
        grid=grid,
        maps=("exposure", "background", "psf", "edisp"),
        safe_mask=(),
    )
    return {
        "name": "toy",
        "obs": obs,
        "dataset": reduce_observation(obs, spec),
        "grid": grid,
        "pixel": (float(lon[25]), float(lat[25])),
        "spectrum": PowerLaw(index=2.5, amplitude="3e-10 cm-2 s-1 TeV-1"),
    }


def simulate_counts(setting: dict, irfs, lon: float, lat: float, rng) -> np.ndarray:
    ds, grid, obs = setting["dataset"], setting["grid"], setting["obs"]
    model = SkyModel(setting["spectrum"], PointSpatialModel(lon_0=lon, lat_0=lat, frame=grid.frame))
    pointing = (float(obs.pointing.ra.deg), float(obs.pointing.dec.deg))
    photons = reconstruct_photons(
        sample_source(model, irfs, pointing, obs.livetime, rng), irfs, rng
    )
    energy = ds["energy_bounds"].values
    edges = np.append(energy[:, 0], energy[-1, 1])
    source = counts_cube(photons["energy"], photons["ra"], photons["dec"], grid, edges)
    return source + rng.poisson(ds["background"].values)


def fit_position(ds, setting: dict, start: tuple[float, float], convention: str):
    frame = setting["grid"].frame
    spectral = setting["spectrum"]
    source = SkyModel(
        PowerLaw(index=spectral.index.value, amplitude=spectral.amplitude.quantity),
        PointSpatialModel(lon_0=start[0], lat_0=start[1], frame=frame),
        name="src",
    )
    models = Models([source, FoVBackgroundModel("sim")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = fit(ds, models, name="sim", convention=convention)
    if not result.success:
        return None
    return [
        (result.value(f"src.spatial.{p}"), result.error(f"src.spatial.{p}"))
        for p in ("lon_0", "lat_0")
    ]


def run(setting: dict, n: int, seed: int, conventions=CONVENTIONS) -> dict:
    rng = np.random.default_rng(seed)
    irfs = irfs_from_observation(setting["obs"])
    grid = setting["grid"]
    lon_c, lat_c = setting["pixel"]
    steps = (abs(grid.lon_step), abs(grid.lat_step))
    rows = {c: [] for c in conventions}
    seconds = {c: [] for c in conventions}
    for _ in range(n):
        du, dv = rng.uniform(-0.5, 0.5, 2)
        lon, lat = lon_c + du * steps[0], lat_c + dv * steps[1]
        counts = simulate_counts(setting, irfs, lon, lat, rng)
        ds = setting["dataset"].assign(counts=(("energy", "lat", "lon"), counts))
        for convention in conventions:
            t0 = time.perf_counter()
            fitted = fit_position(ds, setting, (lon_c, lat_c), convention)
            seconds[convention].append(time.perf_counter() - t0)
            if fitted is None:
                continue
            (vl, el), (vb, eb) = fitted
            rows[convention].append(
                ((vl - lon) / el, (vb - lat) / eb, du, dv, vl - lon, vb - lat, el, eb)
            )
    return {c: np.array(r) for c, r in rows.items()}, seconds


def report(name: str, results: dict, seconds: dict, n: int) -> None:
    print(f"\n{name}: {n} realisations, sources uniform inside one pixel")
    head = "convention  coord  mean pull   width  slope vs offset   mean bias (deg)  error (deg)"
    print(head)
    for convention, rows in results.items():
        for k, coord in enumerate(("lon", "lat")):
            pull, offset = rows[:, k], rows[:, 2 + k]
            slope = np.polyfit(offset, pull, 1)[0]
            print(
                f"{convention:10s}  {coord:5s}  {pull.mean():+9.3f}  {pull.std(ddof=1):6.3f}"
                f"  {slope:+15.2f}  {rows[:, 4 + k].mean():+15.5f}  {np.median(rows[:, 6 + k]):11.5f}"
            )
        print(
            f"{convention:10s}  failed fits {n - len(rows)}, median fit time "
            f"{1e3 * np.median(seconds[convention]):.0f} ms (shared machine)"
        )
    print(f"statistical uncertainty of a mean pull: +-{1 / np.sqrt(n):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default="../shared/data")
    parser.add_argument("--n", type=int, default=100, help="realisations per setting")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--setting", nargs="+", default=["cta", "toy"])
    parser.add_argument("--convention", nargs="+", default=list(CONVENTIONS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.setting:
            setting = cta_setting(Path(args.data_dir)) if name == "cta" else toy_setting(Path(tmp))
            results, seconds = run(setting, args.n, args.seed, args.convention)
            report(name, results, seconds, args.n)


if __name__ == "__main__":
    main()
