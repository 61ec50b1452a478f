"""The laziness matrix: every public operation of ``reduce``, ``estimators``, ``stats`` and the
``ds.gamma`` accessor, on numpy and on dask inputs.

On dask inputs the result is built under a scheduler that raises on any compute (the
``raise_on_compute`` fixture), must be dask-backed, and equals the numpy result once computed.
Operations that compute on purpose are not run here: they must be listed, with a reason, in
:data:`gammaxr.boundaries.COMPUTE_BOUNDARIES` (and in docs/architecture.md).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import astropy.units as u
import dask
import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord
from regions import CircleSkyRegion

import gammaxr  # noqa: F401  (registers ds.gamma)
from gammaxr import estimators, reduce, stats
from gammaxr.accessors import GammaDatasetAccessor
from gammaxr.boundaries import COMPUTE_BOUNDARIES
from gammaxr.geom import SkyGrid
from laziness_inputs import as_dask, map_dataset, map_runs, stats_arrays

EXCLUSION = "icrs; circle(83.63, 22.01, 0.2)"
# public names that are classes or constants, not operations on data
NOT_OPERATIONS = {
    "NoOverlapError",
    "ReductionSpec",
    "ReflectedRegionsConfig",
    "RunReductionError",
    "SpectrumSpec",
    "OPTIONAL_OUTPUTS",
    "RESIDUAL_METHODS",
    "TRUNCATION_VALUE",
}


# name -> (input builder, operation); the operation takes the (numpy or dask) input
DATASET_OPERATIONS = {
    "gammaxr.reduce.stack_runs": (map_runs, reduce.stack_runs),
    "gammaxr.reduce.fov_background": (map_runs, lambda ds: reduce.fov_background(ds, EXCLUSION)),
    "gammaxr.reduce.ring_background": (
        map_dataset,
        lambda ds: reduce.ring_background(ds, 0.25, 0.2, EXCLUSION),
    ),
    "gammaxr.reduce.to_image": (map_dataset, reduce.to_image),
    "gammaxr.estimators.excess_map": (map_dataset, lambda ds: estimators.excess_map(ds, 0.2)),
    "gammaxr.estimators.residual_map": (
        map_dataset,
        lambda ds: estimators.residual_map(ds["counts"], ds["background"], "diff/sqrt(model)"),
    ),
    "gammaxr.estimators.dataset_residuals": (map_dataset, estimators.dataset_residuals),
    "gammaxr.estimators.convolve_sky": (
        map_dataset,
        lambda ds: estimators.convolve_sky(
            ds["counts"], estimators.tophat_kernel(SkyGrid.from_xarray(ds), 0.2)
        ),
    ),
    "gammaxr.estimators.convolve_sky_maps": (
        map_dataset,
        lambda ds: xr.Dataset(
            estimators.convolve_sky_maps(
                {"counts": ds["counts"], "background": ds["background"]},
                estimators.gauss_kernel(SkyGrid.from_xarray(ds), 0.1),
                mask=ds["mask_safe"],
                integer=("counts",),
            )
        ),
    ),
    "gammaxr.estimators.reco_exposure": (map_dataset, estimators.reco_exposure),
    "gammaxr.estimators.smooth": (map_dataset, lambda ds: estimators.smooth(ds, 0.1, "box")),
    "ds.gamma.stack": (map_runs, lambda ds: ds.gamma.stack()),
    "ds.gamma.to_image": (map_dataset, lambda ds: ds.gamma.to_image()),
    "ds.gamma.fov_background": (map_runs, lambda ds: ds.gamma.fov_background(EXCLUSION)),
    "ds.gamma.ring_background": (
        map_dataset,
        lambda ds: ds.gamma.ring_background(0.25, 0.2, EXCLUSION),
    ),
    "ds.gamma.excess_map": (map_dataset, lambda ds: ds.gamma.excess_map(0.2)),
    "ds.gamma.residuals": (map_dataset, lambda ds: ds.gamma.residuals(method="diff/model")),
    "ds.gamma.smooth": (map_dataset, lambda ds: ds.gamma.smooth(0.1, mode="constant")),
}

# operations on the sky grid alone (no data arrays): they must not compute either
GRID_OPERATIONS = {
    "gammaxr.estimators.box_kernel": lambda g: estimators.box_kernel(g, 0.2),
    "gammaxr.estimators.gauss_kernel": lambda g: estimators.gauss_kernel(g, 0.1),
    "gammaxr.estimators.tophat_kernel": lambda g: estimators.tophat_kernel(g, 0.2),
    "gammaxr.estimators.kernel_steps": estimators.kernel_steps,
    "gammaxr.estimators.smoothing_kernel": lambda g: estimators.smoothing_kernel(g, 0.1),
    "gammaxr.estimators.uniform_box_kernel": lambda g: estimators.uniform_box_kernel(g, 0.08),
    "ds.gamma.grid": lambda g: g,
    "ds.gamma.wcs": lambda g: g.wcs,
}

# operations on a store of runs (numpy: one run at a time; dask: the lazy reduction)
STORE_OPERATIONS = (
    "gammaxr.reduce.reduce_runs",
    "gammaxr.reduce.reduce_runs_tree",
    "gammaxr.reduce.spectrum_runs",
)

STATS_OPERATIONS = [f"gammaxr.stats.{n}" for n in stats.__all__ if n not in NOT_OPERATIONS]


def _public_operations() -> set[str]:
    names = set()
    for module in (reduce, estimators, stats):
        names |= {f"{module.__name__}.{n}" for n in module.__all__ if n not in NOT_OPERATIONS}
    for name, member in inspect.getmembers(GammaDatasetAccessor):
        if (not name.startswith("_") or name in ("__repr__", "_repr_html_")) and (
            callable(member) or isinstance(member, property)
        ):
            names.add(f"ds.gamma.{name}")
    return names - {"ds.gamma.__init__"}


def _covered() -> set[str]:
    lazy = set(DATASET_OPERATIONS)
    lazy |= set(GRID_OPERATIONS) | set(STORE_OPERATIONS) | {"ds.gamma.to_zarr"}
    lazy |= {n for n in STATS_OPERATIONS if n not in COMPUTE_BOUNDARIES}
    return lazy


def test_every_public_operation_is_in_the_matrix_or_a_boundary():
    operations = _public_operations()
    covered = _covered()
    assert covered.isdisjoint(COMPUTE_BOUNDARIES), "an operation is both lazy and a boundary"
    missing = operations - covered - set(COMPUTE_BOUNDARIES)
    assert not missing, f"public operations neither tested lazy nor listed as boundary: {missing}"
    unknown = (covered | set(COMPUTE_BOUNDARIES)) - operations
    assert all(n.startswith("gammaxr.fit.") for n in unknown), f"not public operations: {unknown}"
    assert len(operations) >= 70  # the note quotes this count


def test_boundaries_are_documented():
    text = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    for reason in ("fit", "TS map", "flux points", "light curve", "plot", "summar", "sensitivity"):
        assert reason in text
    for name in COMPUTE_BOUNDARIES:
        assert COMPUTE_BOUNDARIES[name], f"{name}: no reason given"


def _assert_lazy(result) -> None:
    if isinstance(result, tuple):
        for item in result:
            _assert_lazy(item)
        return
    if isinstance(result, xr.Dataset):
        assert any(dask.is_dask_collection(v.data) for v in result.data_vars.values())
    else:
        assert dask.is_dask_collection(result)


def _assert_equal(lazy, eager) -> None:
    if isinstance(eager, tuple):
        for a, b in zip(lazy, eager, strict=True):
            _assert_equal(a, b)
        return
    if isinstance(eager, xr.Dataset | xr.DataArray):
        # (dask.compute on some of these xarray graphs loses a transpose layer; .compute does not)
        computed = lazy.compute(scheduler="sync")
        if isinstance(computed, xr.Dataset):  # a lazy stack's run status -> attrs, as eager
            from gammaxr.io.run_status import settle_run_status

            computed = settle_run_status(computed)
        xr.testing.assert_allclose(computed, eager, rtol=1e-10, atol=1e-12)
    else:
        (computed,) = dask.compute(lazy, scheduler="sync")
        np.testing.assert_allclose(np.asarray(computed), np.asarray(eager), rtol=1e-10)


@pytest.mark.parametrize("name", sorted(DATASET_OPERATIONS))
def test_dataset_operation_is_lazy_and_equal(name, raise_on_compute):
    build, operation = DATASET_OPERATIONS[name]
    data = build()
    lazy = operation(as_dask(data))
    _assert_lazy(lazy)
    with dask.config.set(scheduler="sync"):
        eager = operation(data)
    _assert_equal(lazy, eager)


@pytest.mark.parametrize("name", [n for n in STATS_OPERATIONS if n not in COMPUTE_BOUNDARIES])
def test_stats_operation_is_lazy_and_equal(name, raise_on_compute):
    function = getattr(stats, name.rsplit(".", 1)[1])
    arrays = stats_arrays()
    params = [p for p in inspect.signature(function).parameters if p in arrays]
    eager = function(*(arrays[p] for p in params))
    for wrap in (as_dask, lambda a: as_dask(xr.DataArray(a, dims="bin"))):
        lazy = function(*(wrap(arrays[p]) for p in params))
        _assert_lazy(lazy)
        if isinstance(lazy, xr.DataArray):
            lazy = lazy.data
        _assert_equal(lazy, eager)


@pytest.mark.parametrize("name", sorted(GRID_OPERATIONS))
def test_grid_operation_computes_nothing(name, raise_on_compute):
    grid = SkyGrid.from_xarray(as_dask(map_dataset()))
    assert GRID_OPERATIONS[name](grid) is not None


def test_to_zarr_graph_is_lazy(raise_on_compute, tmp_path):
    ds = as_dask(map_runs())
    delayed = ds.gamma.to_zarr(tmp_path / "lazy.zarr", compute=False)
    assert dask.is_dask_collection(delayed)


def test_stack_of_a_plainly_opened_zarr_store_is_lazy(tmp_path, raise_on_compute):
    """Per-run coordinates read back as dask arrays: their totals stay lazy too."""
    with dask.config.set(scheduler="sync"):
        map_runs().to_zarr(tmp_path / "runs.zarr")
    opened = xr.open_zarr(tmp_path / "runs.zarr")
    stacked = opened.gamma.stack()
    _assert_lazy(stacked)
    (computed,) = dask.compute(stacked, scheduler="sync")
    # the totals of the contributing runs, known once computed (gammaxr.io.run_status)
    from gammaxr.io.run_status import settle_run_status

    assert settle_run_status(computed).attrs["livetime_total"] == pytest.approx(3350.0)


@pytest.mark.parametrize("name", STORE_OPERATIONS)
def test_store_reduction_is_lazy_and_equal(name, simulated_store_dir, raise_on_compute):
    from gammaxr.data import open_datastore

    energy, energy_true = np.geomspace(0.5, 20, 3), np.geomspace(0.3, 50, 4)
    if name.endswith("spectrum_runs"):
        on = CircleSkyRegion(SkyCoord(83.633, 22.014, unit="deg"), 0.2 * u.deg)
        spec, per_run = reduce.SpectrumSpec(on, energy, energy_true), reduce.spectrum_dataset
    else:
        grid = SkyGrid.from_center((83.633, 22.014), 1.0, 0.1, frame="icrs")
        spec, per_run = (
            reduce.ReductionSpec(energy, energy_true, grid=grid),
            reduce.reduce_observation,
        )
    observations = open_datastore(simulated_store_dir).observations([1, 2])
    lazy = getattr(reduce, name.rsplit(".", 1)[1])(observations, spec)
    with dask.config.set(scheduler="sync"):
        eager = [per_run(obs, spec) for obs in observations]
    if isinstance(lazy, xr.Dataset):
        _assert_lazy(lazy)
        runs = [lazy.isel(obs_id=i) for i in range(2)]
    else:  # a DataTree: one child per run
        runs = [lazy[f"obs_{obs.obs_id}"].to_dataset() for obs in observations]
        _assert_lazy(runs[0])
    for run, expected in zip(runs, eager, strict=True):
        assert float(expected["counts"].sum()) > 0
        for var in set(expected.data_vars) & {"counts", "counts_off", "exposure", "background"}:
            values = run[var].compute(scheduler="sync")
            np.testing.assert_allclose(values.values, expected[var].values, rtol=1e-12)
