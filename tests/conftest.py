"""Shared fixtures: where the real data lives, and a scheduler that raises on compute."""

from __future__ import annotations

import os
from pathlib import Path

import dask
import pytest
from hypothesis import settings

_HERE = Path(__file__).resolve().parent

# Property tests draw the same examples at every run ("repeatable", the default): a test
# command passes or fails the same way on every machine. GAMMAXR_HYPOTHESIS=explore draws
# new examples at each run (and replays failures it found), to look for inputs that break a
# property; an example it finds belongs in the test as an @example.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("GAMMAXR_HYPOTHESIS", "repeatable"))


def _data_root() -> Path:
    env = os.environ.get("GAMMAXR_DATA")
    if env:
        return Path(env)
    return _HERE.parent.parent / "shared" / "data"


DATA_ROOT = _data_root()
REFERENCE_ROOT = _HERE.parent.parent / "shared" / "reference"
HESS_DIR = DATA_ROOT / "hess-dl3-dr1"
CTA_DIR = DATA_ROOT / "cta-1dc"
PROD5_FILE = (
    DATA_ROOT / "cta-caldb" / "Prod5-South-20deg-AverageAz-14MSTs37SSTs.180000s-v0.1.fits.gz"
)


@pytest.fixture(scope="session")
def hess_dir() -> Path:
    """The H.E.S.S. DL3 DR1 store; skips the test where it is absent."""
    if not (HESS_DIR / "hdu-index.fits.gz").exists():
        pytest.skip(f"H.E.S.S. DL3 DR1 not found at {HESS_DIR} (set GAMMAXR_DATA)")
    return HESS_DIR


@pytest.fixture(scope="session")
def cta_dir() -> Path:
    """The CTA 1DC store (index in index/gps); skips the test where it is absent."""
    if not (CTA_DIR / "index" / "gps" / "hdu-index.fits.gz").exists():
        pytest.skip(f"CTA 1DC data not found at {CTA_DIR} (set GAMMAXR_DATA)")
    return CTA_DIR


@pytest.fixture(scope="session")
def prod5_file() -> Path:
    """The CTA prod5 South IRF file (under ``cta-caldb``); skips the test where it is absent."""
    if not PROD5_FILE.exists():
        pytest.skip(f"CTA prod5 IRFs not found at {PROD5_FILE} (set GAMMAXR_DATA)")
    return PROD5_FILE


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Gammapy 2.1 reference outputs; skips the test where they are absent."""
    if not (REFERENCE_ROOT / "reference.json").exists():
        pytest.skip(f"reference outputs not found at {REFERENCE_ROOT}")
    return REFERENCE_ROOT


@pytest.fixture(scope="session")
def crab_stacked(reference_dir):
    """Gammapy 2.1's stacked Crab dataset of the reference files, read by gammaxr with
    Gammapy's pixels as they are (relabelled: its CAR grid centred on the Crab is not a
    regular lon/lat grid), as Gammapy's smoothing and residuals see them."""
    from gammaxr import read_gammapy
    from gammaxr.io.gammapy_geometry import GammapyGeometryWarning

    path = reference_dir / "gammapy-files" / "crab_stacked_mapdataset.fits.gz"
    with pytest.warns(GammapyGeometryWarning, match="not a regular lon/lat grid"):
        return read_gammapy(path)


class _RaiseOnCompute:
    """A dask scheduler that fails any attempt to compute."""

    def __call__(self, dsk, keys, **kwargs):
        raise RuntimeError("dask computation was triggered where the data must stay lazy")


@pytest.fixture
def raise_on_compute():
    """Context in which any dask compute raises (checks that graph construction stays lazy)."""
    with dask.config.set(scheduler=_RaiseOnCompute()):
        yield


@pytest.fixture(scope="session")
def crab_reference_case(hess_dir, reference_dir):
    """The ``crab_runs`` / ``crab_fit`` reference case of ``reference.json``, reduced once.

    Four H.E.S.S. Crab runs on the reference grid (counts, exposure, background, PSF and
    edisp maps; safe mask offset-max 2.5 deg + aeff-max 10 %), FoV background ``fit`` per run
    with the exclusion circle, computed. Returns ``(runs, stacked, start_model, reference)``:
    the per-run dataset, its stack, the Crab sky model at the reference start values and the
    ``crab_fit`` entry of reference.json.
    """
    import json

    import numpy as np

    from gammaxr.data import open_datastore
    from gammaxr.models import PointSpatialModel, PowerLaw, SkyModel
    from gammaxr.reduce.runs import reduce_runs
    from gammaxr.testing.reference import crab_reference_spec

    ref = np.load(reference_dir / "crab_runs.npz")
    meta = json.loads((reference_dir / "reference.json").read_text())
    spec = crab_reference_spec(ref)
    obs = open_datastore(hess_dir).observations([int(i) for i in meta["crab_runs"]["runs"]])
    runs = reduce_runs(obs, spec).gamma.fov_background(
        "icrs; circle(83.63, 22.14, 0.2)", method="fit"
    )
    runs = runs.compute()
    start = SkyModel(
        PowerLaw(index=2.702, amplitude="4.712e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=83.63308, lat_0=22.01450),
        name="crab",
    )
    return runs, runs.gamma.stack(), start, meta["crab_fit"]


@pytest.fixture(scope="session")
def msh_reference_runs(hess_dir, reference_dir):
    """The ``msh1552_ring`` reference case reduced per run (lazy, persisted once).

    The 20 runs within 2.5 deg of (228.32, -59.08) on the reference galactic grid, 0.5-10 TeV in
    10 bins (true = reco), safe mask aeff-default. Returns ``(runs, reference_npz, meta)``.
    """
    import json

    import numpy as np

    from gammaxr.data import open_datastore
    from gammaxr.geom import SkyGrid
    from gammaxr.reduce.dataset import ReductionSpec
    from gammaxr.reduce.runs import reduce_runs

    ref = np.load(reference_dir / "msh1552_ring.npz")
    meta = json.loads((reference_dir / "reference.json").read_text())["msh1552_ring"]
    edges = np.geomspace(0.5, 10, 11)
    spec = ReductionSpec(
        energy_edges=edges,
        energy_true_edges=edges,
        grid=SkyGrid.from_coords(ref["lon"], ref["lat"], "galactic"),
        safe_mask=("aeff-default",),
    )
    store = open_datastore(hess_dir).select_cone((228.32, -59.08), 2.5)
    assert sorted(int(i) for i in store.obs_ids) == sorted(meta["obs_ids"])
    return reduce_runs(store.observations(meta["obs_ids"]), spec).persist(), ref, meta


@pytest.fixture(scope="session")
def simulated_store_dir(tmp_path_factory) -> Path:
    """A small simulated DL3 store (the default scenario: 4 runs of 300 s, seed 3), made
    once per session; tests of persistence faults and clusters run on it (no external data)."""
    from gammaxr.simulate import default_scenario, simulate_datastore

    directory = tmp_path_factory.mktemp("simulated") / "store"
    simulate_datastore(default_scenario(livetime=300.0, seed=3), directory)
    return directory
