"""FoV background: simulated runs with known norms/tilts, failures, laziness, Crab vs Gammapy."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import minimize, minimize_scalar

from gammaxr.geom import SkyGrid, energy_axis, exclusion_mask
from gammaxr.reduce.fov_background import exclusion_on_grid, fov_background, fov_norms
from gammaxr.reduce.stack import stack_runs

CENTRE = (83.63, 22.01)
SOURCE = "icrs; circle(83.63, 22.01, 0.3)"


def simulate(norms, tilt=0.0, seed=1, level=4.0, source=50.0, shape=(4, 30, 30)):
    """Runs with background maps ``level`` per bin and counts ~ Poisson(norm * bkg * E^-tilt)
    plus a bright source inside ``SOURCE`` (to be excluded)."""
    rng = np.random.default_rng(seed)
    n_e, n_lat, n_lon = shape
    grid = SkyGrid.from_center(CENTRE, (n_lon * 0.05, n_lat * 0.05), 0.05)
    ds = grid.to_dataset(energy_axis(1.0, 10.0, n_e))
    energy = ds["energy"].values[:, None, None]
    in_source = ~exclusion_mask(grid, SOURCE).values
    runs = []
    for i, norm in enumerate(norms):
        # background shape differs per run: a gradient across the map
        bkg = level * (1 + 0.2 * i * np.linspace(-1, 1, n_lon))[None, None, :] * energy**-0.5
        bkg = np.broadcast_to(bkg, shape).astype(np.float32)
        mu = norm * bkg * energy**-tilt + source * in_source[None] / in_source.sum()
        runs.append((rng.poisson(mu).astype(np.float32), bkg))
    dims = ("obs_id", "energy", "lat", "lon")
    return ds.assign(
        counts=(dims, np.stack([r[0] for r in runs]), {"units": ""}),
        background=(dims, np.stack([r[1] for r in runs]), {"units": ""}),
        mask_safe=(dims, np.ones((len(norms), *shape), bool)),
    ).assign_coords(obs_id=100 + np.arange(len(norms)))


def _lazy(ds: xr.Dataset) -> xr.Dataset:
    return ds.chunk({"obs_id": 1})


@pytest.fixture(params=["numpy", "dask"])
def backend(request):
    return request.param


def _as(backend, ds):
    return _lazy(ds) if backend == "dask" else ds


@pytest.mark.parametrize("method", ["scale", "fit"])
def test_recovers_known_norms(backend, method):
    truth = np.array([0.8, 1.0, 1.3])
    ds = simulate(truth)
    out = fov_background(_as(backend, ds), SOURCE, method=method).compute()
    norm, err = out["fov_norm"].values, out["fov_norm_error"].values
    assert np.all(np.abs(norm - truth) < 3 * err), (norm, err)
    assert np.all(err < 0.03)
    assert out["fov_background_ok"].values.all()
    # without the exclusion the source pulls the norms up
    biased = fov_background(ds, None, method=method)["fov_norm"].values
    assert np.all(biased > norm)
    # the background is rescaled run by run, the rest is untouched
    np.testing.assert_allclose(
        out["background"].values, ds["background"].values * norm[:, None, None, None], rtol=1e-6
    )
    xr.testing.assert_identical(out["counts"], ds["counts"])
    assert out["background"].dtype == ds["background"].dtype
    assert out.attrs["fov_background_method"] == method


def test_fit_without_tilt_is_the_cash_optimum():
    ds = simulate([0.9, 1.1])
    scale = fov_background(ds, SOURCE, method="scale")["fov_norm"].values
    fit = fov_background(ds, SOURCE, method="fit")["fov_norm"].values
    np.testing.assert_allclose(fit, scale, rtol=1e-12)
    usable = exclusion_on_grid(ds, SOURCE).values
    for i in range(2):
        n = ds["counts"].values[i][:, usable]
        b = ds["background"].values[i][:, usable]
        res = minimize_scalar(
            lambda a, n=n, b=b: np.sum(a * b - n * np.log(a * b)),
            bounds=(0.1, 10),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert fit[i] == pytest.approx(res.x, rel=1e-6)


def test_tilt_fit_recovers_truth_and_matches_generic_minimiser(backend):
    ds = simulate([1.2, 0.9], tilt=0.3, level=20.0)
    out = fov_background(
        _as(backend, ds), SOURCE, method="fit", fit_tilt=True, reference_energy=2.0
    ).compute()
    tilt, tilt_err = out["fov_tilt"].values, out["fov_tilt_error"].values
    norm, norm_err = out["fov_norm"].values, out["fov_norm_error"].values
    assert np.all(np.abs(tilt - 0.3) < 3 * tilt_err)
    assert np.all(np.abs(norm - np.array([1.2, 0.9]) * 2.0**-0.3) < 3 * norm_err)
    usable = exclusion_on_grid(ds, SOURCE).values
    energy = ds["energy"].values[:, None] / 2.0
    for i in range(2):
        n = ds["counts"].values[i][:, usable]
        b = ds["background"].values[i][:, usable]

        def cash(p, n=n, b=b):
            mu = p[0] * b * energy ** -p[1]
            return np.sum(mu - n * np.log(mu))

        res = minimize(cash, x0=[1.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-9})
        np.testing.assert_allclose([norm[i], tilt[i]], res.x, rtol=1e-4, atol=1e-5)
        # errors: inverse of the numerical Hessian
        h = _numerical_hessian(cash, res.x)
        np.testing.assert_allclose(
            [norm_err[i], tilt_err[i]], np.sqrt(np.diag(np.linalg.inv(h))), rtol=1e-3
        )
    expected = ds["background"] * out["fov_norm"] * (ds["energy"] / 2.0) ** -out["fov_tilt"]
    np.testing.assert_allclose(out["background"].values, expected.values, rtol=1e-6)


def _numerical_hessian(f, x, eps=1e-4):
    h = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            di, dj = np.eye(2)[i] * eps, np.eye(2)[j] * eps
            h[i, j] = (f(x + di + dj) - f(x + di - dj) - f(x - di + dj) + f(x - di - dj)) / (
                4 * eps**2
            )
    return h


def test_failed_runs_keep_model_are_masked_and_named(backend):
    ds = simulate([1.0, 1.0, 1.0, 1.0])
    counts = ds["counts"].values.copy()
    counts[1] = 0  # no counts
    background = ds["background"].values.copy()
    background[2] = 0  # no background model
    ds = ds.assign(counts=ds["counts"].copy(data=counts))
    ds = ds.assign(background=ds["background"].copy(data=background))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fov_background(_as(backend, ds), SOURCE, method="fit", min_counts=10).compute()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("obs_id 101" in m and "counts" in m for m in messages), messages
    assert any("obs_id 102" in m and "background" in m for m in messages), messages
    assert not any("obs_id 100" in m or "obs_id 103" in m for m in messages)
    ok = out["fov_background_ok"].values
    np.testing.assert_array_equal(ok, [True, False, False, True])
    assert out["fov_background_error"].values[0] == ""
    assert "min_counts=10" in out["fov_background_error"].values[1]
    np.testing.assert_array_equal(out["fov_norm"].values[1:3], [1.0, 1.0])
    np.testing.assert_array_equal(out["fov_tilt"].values[1:3], [0.0, 0.0])
    assert not out["mask_safe"].values[1:3].any()
    assert out["mask_safe"].values[[0, 3]].all()
    np.testing.assert_array_equal(out["background"].values[1:3], background[1:3])
    # failed runs drop out of the stack
    stacked = stack_runs(out)
    assert float(stacked["counts"].sum()) == float(ds["counts"].values[[0, 3]].sum())


def test_min_npred_background_and_impossible_tilt():
    ds = simulate([1.0, 1.0])
    total = float(ds["background"].isel(obs_id=0).sum()) * 1.001
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fov_background(ds, None, min_npred_background=total)
    assert any("obs_id 100" in str(w.message) for w in caught)
    assert all("min_npred_background" in str(w.message) for w in caught)
    assert not out["fov_background_ok"].values.any()
    # one energy bin cannot constrain a tilt
    one_bin = ds.isel(energy=[0])
    with pytest.warns(RuntimeWarning, match="at least 2 energy bins"):
        out = fov_background(one_bin, None, method="fit", fit_tilt=True)
    assert not out["fov_background_ok"].values.any()


def test_masks_select_the_bins():
    ds = simulate([1.0])
    counts = ds["counts"].values.copy()
    counts[..., :5] += 100  # garbage in columns outside the safe mask and fit mask
    safe = ds["mask_safe"].values.copy()
    safe[..., :3] = False
    fit = xr.ones_like(ds["mask_safe"].isel(obs_id=0, energy=0))
    fit[:, 3:5] = False
    ds = ds.assign(counts=ds["counts"].copy(data=counts), mask_safe=ds["mask_safe"].copy(data=safe))
    out = fov_background(ds.assign(mask_fit=fit), SOURCE)
    usable = safe[0] & fit.values & exclusion_on_grid(ds, SOURCE).values
    expected = counts[0][usable].sum() / ds["background"].values[0][usable].sum()
    assert float(out["fov_norm"][0]) == pytest.approx(expected, rel=1e-10)


def test_exclusion_forms_agree():
    ds = simulate([1.1])
    grid = SkyGrid.from_xarray(ds)
    by_regions = fov_background(ds, SOURCE)["fov_norm"].values
    by_mask = fov_background(ds, exclusion_mask(grid, SOURCE))["fov_norm"].values
    # a finer mask on a larger grid, taken at the nearest pixel
    fine = SkyGrid.from_center(CENTRE, 2.0, 0.025)
    by_fine = fov_background(ds, exclusion_mask(fine, SOURCE))["fov_norm"].values
    np.testing.assert_allclose(by_mask, by_regions, rtol=1e-12)
    assert by_fine == pytest.approx(by_regions, rel=0.01)
    with pytest.raises(ValueError, match="frame"):
        fov_background(ds, exclusion_mask(grid, SOURCE).assign_attrs(frame="galactic"))


def test_single_run_without_obs_id():
    ds = simulate([0.7]).isel(obs_id=0).drop_vars("obs_id").assign_attrs(obs_id=7)
    out = fov_background(ds, SOURCE, method="fit")
    assert "obs_id" not in out.dims
    assert float(out["fov_norm"]) == pytest.approx(0.7, abs=3 * float(out["fov_norm_error"]))


def test_bad_arguments():
    ds = simulate([1.0])
    with pytest.raises(ValueError, match="method"):
        fov_background(ds, method="median")
    with pytest.raises(ValueError, match="background"):
        fov_background(ds.drop_vars("background"))
    with pytest.raises(ValueError, match="method"):
        fov_norms(
            np.ones((1, 2, 2)), np.ones((1, 2, 2)), np.ones((1, 2, 2), bool), [1.0], method="x"
        )


def test_lazy_graph_computes_nothing_and_matches_numpy(raise_on_compute):
    ds = simulate([0.8, 1.2], tilt=0.2)
    lazy = _lazy(ds)
    out = fov_background(lazy, SOURCE, method="fit", fit_tilt=True)
    for name in ("background", "mask_safe", "fov_norm", "fov_tilt", "fov_background_ok"):
        assert out[name].chunks is not None, name
    assert out["background"].chunks[0] == (1, 1)
    via_accessor = lazy.gamma.fov_background(SOURCE, method="fit", fit_tilt=True)
    assert via_accessor["fov_norm"].chunks is not None


def test_dask_equals_numpy():
    ds = simulate([0.8, 1.2], tilt=0.2)
    eager = fov_background(ds, SOURCE, method="fit", fit_tilt=True)
    lazy = fov_background(_lazy(ds), SOURCE, method="fit", fit_tilt=True).compute()
    xr.testing.assert_identical(lazy, eager)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def crab(hess_dir, reference_dir):
    from gammaxr.data import open_datastore
    from gammaxr.reduce.runs import reduce_runs
    from gammaxr.testing.reference import crab_reference_spec

    ref = np.load(reference_dir / "crab_runs.npz")
    meta = json.loads((reference_dir / "reference.json").read_text())["crab_runs"]
    spec = crab_reference_spec(ref, maps=("counts", "exposure", "background"))
    runs = [int(i) for i in meta["runs"]]
    ds = reduce_runs(open_datastore(hess_dir).observations(runs), spec)
    return ds, meta


@pytest.mark.hess
def test_crab_fit_norms_match_gammapy(crab):
    ds, meta = crab
    out = fov_background(ds, "icrs; circle(83.63, 22.14, 0.2)", method="fit").compute()
    for obs_id, run in meta["runs"].items():
        norm = float(out["fov_norm"].sel(obs_id=int(obs_id)))
        assert norm == pytest.approx(run["fov_fit_norm"], rel=0.02), obs_id
    assert out["fov_background_ok"].values.all()
    stacked = stack_runs(out)
    assert float(stacked["counts"].sum()) == meta["counts_stacked"]
    assert float(stacked["background"].sum()) == pytest.approx(
        meta["background_stacked"], rel=0.005
    )
