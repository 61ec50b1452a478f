"""Per-run reduction of the four Crab runs against Gammapy 2.1 (reference crab_runs.npz)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from gammaxr.data import open_datastore
from gammaxr.irf import edisp_kernel
from gammaxr.reduce.runs import reduce_runs
from gammaxr.testing.reference import crab_reference_spec

pytestmark = pytest.mark.hess

RUNS = (23523, 23526, 23559, 23592)
CENTRE = (83.633, 22.014)


@pytest.fixture(scope="module")
def reference(reference_dir):
    ref = np.load(reference_dir / "crab_runs.npz")
    meta = json.loads((reference_dir / "reference.json").read_text())["crab_runs"]
    return ref, meta


@pytest.fixture(scope="module")
def reduced(hess_dir, reference):
    ref, _ = reference
    store = open_datastore(hess_dir)
    spec = crab_reference_spec(ref, maps=("counts", "exposure", "background", "edisp"))
    return store, reduce_runs(store.observations(RUNS), spec).compute()


def _by_coordinate(array: np.ndarray) -> np.ndarray:
    """Reference arrays have lon decreasing along the last axis; ours increase."""
    return array[..., ::-1]


@pytest.mark.parametrize("obs_id", RUNS)
def test_counts_and_mask_identical(reduced, reference, obs_id):
    ref, _ = reference
    run = reduced[1].sel(obs_id=obs_id)
    np.testing.assert_array_equal(run["counts"].values, _by_coordinate(ref[f"counts_{obs_id}"]))
    np.testing.assert_array_equal(
        run["mask_safe"].values, _by_coordinate(ref[f"mask_safe_{obs_id}"])
    )


@pytest.mark.parametrize("obs_id", RUNS)
@pytest.mark.parametrize("name", ["exposure", "background"])
def test_exposure_background_within_one_percent(reduced, reference, obs_id, name):
    ref, _ = reference
    ours = reduced[1][name].sel(obs_id=obs_id).values
    theirs = _by_coordinate(ref[f"{name}_{obs_id}"])
    significant = theirs > 0.01 * theirs.max()
    np.testing.assert_allclose(ours[significant], theirs[significant], rtol=0.01)
    assert ours.sum() == pytest.approx(theirs.sum(), rel=0.005)


@pytest.mark.parametrize("obs_id", RUNS)
def test_edisp_kernel_at_map_centre(reduced, reference, obs_id):
    ref, _ = reference
    store, ds = reduced
    kernel_map = ds["edisp"].sel(obs_id=obs_id)
    nearest = kernel_map.sel(lon_irf=CENTRE[0], lat_irf=CENTRE[1], method="nearest").values
    np.testing.assert_allclose(nearest, ref[f"edisp_{obs_id}"], atol=0.02)
    # and evaluated exactly at the map centre
    obs = store.observation(obs_id)
    offset = float(obs.pointing.separation(SkyCoord(*CENTRE, unit="deg")).deg)
    exact = edisp_kernel(obs.edisp, offset, ref["energy_true_edges"], ref["energy_edges"])
    np.testing.assert_allclose(exact, ref[f"edisp_{obs_id}"], atol=0.02)


def test_stacked_counts_equal_reference(reduced, reference):
    ref, meta = reference
    stacked = reduced[1].gamma.stack()
    assert float(stacked["counts"].sum()) == meta["counts_stacked"]
    for obs_id in RUNS:
        safe = reduced[1].sel(obs_id=obs_id)
        counts_safe = float(safe["counts"].where(safe["mask_safe"], 0).sum())
        assert counts_safe == meta["runs"][str(obs_id)]["counts_safe"]
    np.testing.assert_allclose(
        stacked["exposure"].values,
        _by_coordinate(ref["exposure_stacked"]),
        rtol=1e-5,
        atol=1e-6 * float(ref["exposure_stacked"].max()),
    )
