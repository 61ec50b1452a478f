"""The analysis pipeline and the demo main job: truth recovery, outputs, configuration errors."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

import gammaxr
from gammaxr.analysis import (
    AnalysisConfigError,
    AnalysisError,
    demo_description,
    demo_truth,
    parse_analysis_config,
    read_analysis_config,
    run_analysis,
    run_demo,
)
from gammaxr.analysis.outputs import FIGURE_NAMES, OUTPUT_NAMES
from gammaxr.analysis.pipeline import reduce_and_stack, select_observations
from gammaxr.models import Models

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"
TRUE = {"min": 0.1, "max": 100, "nbins": 10}  # a valid true-energy axis
LIVETIME = 600.0  # s per run: a third of the default, so the test stays short


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo on a short simulation: (output directory, results)."""
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    results = run_demo(out, livetime=LIVETIME, log=lines.append)
    assert any(line.startswith("fit:") for line in lines)
    return out, results


def test_demo_recovers_truth(demo):
    _, results = demo
    assert results.attrs["fit_success"]
    free = ~results["frozen"]
    names = list(results["param"].values[free.values])
    truth = demo_truth()
    assert len(names) == 10
    for name in names:
        row = results.sel(param=name)
        true = truth.parameter(name).value
        assert float(row["true_value"]) == pytest.approx(true)
        assert float(row["error"]) > 0
        assert abs(float(row["pull"])) < 4, f"{name}: pull {float(row['pull']):.2f}"
    # the fit moved away from the perturbed start values towards the truth
    start = Models.from_dict(demo_description()["fit"]["models"])
    for name in ("point.spectral.amplitude", "extended.spatial.sigma"):
        fitted = float(results["value"].sel(param=name))
        true = truth.parameter(name).value
        assert abs(fitted - true) < abs(start.parameter(name).value - true) / 3


def test_demo_flux_points_follow_the_true_spectrum(demo):
    _, results = demo
    point = demo_truth()["point"].spectral
    e_ref = results["e_ref"].values
    ok = results["sed_sqrt_ts"].values > 3
    assert ok.sum() >= 4
    true = e_ref**2 * point(e_ref)
    chi = (results["sed_e2dnde"].values - true) / results["sed_e2dnde_err"].values
    assert np.all(np.abs(chi[ok]) < 4)
    assert np.mean(chi[ok] ** 2) < 4
    assert results["sed_e2dnde"].attrs["units"] == "TeV cm-2 s-1"


def test_demo_significance_map(demo):
    _, results = demo
    assert results["significance"].dims == ("lat", "lon")
    # the peak is at the point source; off-source pixels are close to N(0, 1)
    sig = results["significance"].values
    i = np.unravel_index(np.nanargmax(sig), sig.shape)
    assert float(results["lon"][i[1]]) == pytest.approx(83.633, abs=0.05)
    assert float(results["lat"][i[0]]) == pytest.approx(22.014, abs=0.05)
    assert results.attrs["significance_max"] > 20
    assert abs(results.attrs["significance_off_mean"]) < 0.4
    assert abs(results.attrs["significance_off_sigma"] - 1) < 0.2
    assert results.attrs["significance_off_n"] > 1000
    assert not results["use_off"].sel(lon=83.633, lat=22.014, method="nearest")


def test_demo_outputs_exist_and_reopen(demo):
    out, results = demo
    expected = [n for n in OUTPUT_NAMES if n != "ring.zarr"]
    missing = [n for n in expected if not (out / n).exists()]
    assert not missing
    assert (out / "store" / "hdu-index.fits.gz").exists()
    for name in FIGURE_NAMES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stacked = gammaxr.open_dataset(out / "stacked.zarr")
    assert stacked["counts"].chunks is not None  # lazy
    assert stacked.attrs["name"] == "stacked"
    counts = float(stacked["counts"].where(stacked["mask_safe"]).sum())
    assert counts == results.attrs["counts_total"]
    assert stacked.attrs["stacked_obs_ids"] == [1, 2, 3, 4]
    models = Models.read(out / "models_fitted.yaml")
    for name in ("point.spectral.index", "extended.spatial.sigma", "stacked-bkg.spectral.norm"):
        assert models.parameter(name).value == pytest.approx(
            float(results["value"].sel(param=name))
        )
        assert models.parameter(name).error == pytest.approx(
            float(results["error"].sel(param=name))
        )
    table = pd.read_csv(out / "fit_parameters.csv", index_col=0)
    np.testing.assert_allclose(table.loc[list(results["param"].values), "value"], results["value"])
    assert {"true_value", "pull"} <= set(table.columns)
    fit = yaml.safe_load((out / "fit_result.yaml").read_text())
    assert fit["success"] is True
    assert len(fit["covariance"]["parameters"]) == 10
    cov = np.array(fit["covariance"]["matrix"])
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), [fit["parameters"][n]["error"] for n in fit["covariance"]["parameters"]], rtol=1e-6)  # fmt: skip
    fp = gammaxr.read_gammapy(out / "flux_points.ecsv")
    np.testing.assert_allclose(fp["e2dnde"], results["sed_e2dnde"], rtol=1e-10)
    lo, hi = fp["energy_bounds"].values.T
    assert np.all(lo < fp["e_ref"].values) and np.all(fp["e_ref"].values < hi)
    assert models.covariance is not None  # models_fitted_covariance.dat
    np.testing.assert_allclose(
        models.covariance.sel(param=fit["covariance"]["parameters"],
                              param2=fit["covariance"]["parameters"]).values, cov, rtol=1e-10,
    )  # fmt: skip
    excess = gammaxr.open_dataset(out / "excess_map.zarr")
    np.testing.assert_allclose(excess["significance"].values, results["significance"].values)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["background"]["method"] == "fov"


def test_demo_summary(demo):
    out, results = demo
    text = (out / "summary.txt").read_text()
    for name in ("point.spectral.index", "extended.spatial.sigma", "stacked-bkg.spectral.norm"):
        assert name in text
    assert "pull" in text and "timings: simulate" in text and "significance map" in text
    for step in ("simulate", "reduce", "fit", "flux_points", "excess_map", "outputs"):
        assert results.attrs[f"seconds_{step}"] > 0
    assert results.attrs["seconds_total"] >= results.attrs["seconds_fit"]


def test_demo_refuses_to_overwrite(demo):
    out, _ = demo
    with pytest.raises(FileExistsError, match="overwrite"):
        run_demo(out, livetime=LIVETIME)


def test_example_file_is_the_demo_description():
    data = yaml.safe_load(EXAMPLE.read_text())
    assert data == demo_description("../demo-output/store", "../demo-output/run")
    config = read_analysis_config(EXAMPLE)
    assert config.datastore == EXAMPLE.parent / "../demo-output/store"
    assert config.energy_edges[0] == pytest.approx(0.3) and len(config.energy_edges) == 9
    assert len(config.energy_true_edges) == 21
    assert config.models.names == ["point", "extended"]
    assert config.flux_points == {"source": "point", "energy_edges": None}


def test_run_without_output_and_ring_background(demo, tmp_path):
    """No fit, ring background, nothing written: maps only."""
    out, _ = demo
    data = demo_description(str(out / "store"))
    data["fit"] = None
    data["estimators"] = {"excess_map": {"correlation_radius": 0.1}}
    data["background"] = {
        "method": "ring",
        "exclusion": data["background"]["exclusion"],
        "ring": {"r_in": 0.7, "width": 0.3},
    }
    results = run_analysis(data)
    assert "value" not in results and "sed_e2dnde" not in results
    assert results.attrs["output"] == ""
    assert results.attrs["significance_max"] > 15
    assert abs(results.attrs["significance_off_sigma"] - 1) < 0.25


def test_run_analysis_checks_output_and_selection(demo, tmp_path):
    out, _ = demo
    data = demo_description(str(out / "store"))
    with pytest.raises(FileExistsError, match="already holds"):
        run_analysis(data, out)
    data["observations"] = {"target": "no such target"}
    with pytest.raises(AnalysisError, match="no run left"):
        run_analysis(data, tmp_path / "x")


def test_reduction_stays_lazy(demo, raise_on_compute):
    out, _ = demo
    config = parse_analysis_config(demo_description(str(out / "store")))
    products = reduce_and_stack(config, select_observations(config))
    stacked = products["stacked"]
    assert isinstance(stacked, xr.Dataset) and stacked["counts"].chunks is not None
    assert stacked.attrs["name"] == "stacked"


def _parse(changes=None, drop=(), **kwargs):
    data = copy.deepcopy(demo_description("store"))
    for key in drop:
        del data[key]
    for key, value in (changes or {}).items():
        data[key] = value
    return parse_analysis_config(data, base_path="/data", source="test.yaml", **kwargs)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"grdi": {}}, r"test.yaml: grdi: unknown key \(did you mean 'grid'\?\)"),
        ({"grid": {"center": [83, 22], "width": 3}}, "grid.binsz: missing"),
        (
            {"grid": {"center": [83, 22], "width": -1, "binsz": 0.1}},
            r"grid.width\[0\]: must be positive",
        ),
        (
            {"grid": {"center": "crab", "width": 3, "binsz": 0.1}},
            r"grid.center: expected \[lon, lat\]",
        ),
        ({"grid": {"center": [1, 2], "width": 3, "binsz": 0.1, "frame": "fk5"}}, "grid.frame"),
        (
            {"axes": {"energy": {"min": 1, "max": 10}, "energy_true": TRUE}},
            r"axes.energy: missing \['nbins'\]",
        ),
        (
            {"axes": {"energy": {"edges": [1, 0.5]}, "energy_true": {"edges": [1, 2]}}},
            "must increase",
        ),
        (
            {"axes": {"energy": {"min": "1 m", "max": 10, "nbins": 2}, "energy_true": TRUE}},
            "axes.energy.min: expected a number in TeV",
        ),
        ({"axes": {"energy": {"min": 1, "max": 10, "nbins": 2}, True: {}}}, "unknown key True"),
        (
            {"background": {"method": "rings"}},
            r"background.method: must be one of \['fov', 'ring', 'reflected'\]",
        ),
        ({"background": {"method": "ring"}}, "method 'ring' needs ring"),
        (
            {"background": {"exclusion": "circle(1, 2"}},
            "background.exclusion: (cannot parse|no sky region)",
        ),
        ({"reduction": {"maps": ["counts", "exposure"]}}, "needs the 'background' map"),
        ({"reduction": {"safe_mask": ["aeff-maxx"]}}, "reduction.safe_mask: must be one of"),
        ({"reduction": {"on_error": "ignore"}}, "reduction.on_error"),
        (
            {"fit": {"models": "nofile.yaml"}},
            "fit.models: model file '/data/nofile.yaml' does not exist",
        ),
        ({"fit": {"models": {"components": [{"type": "Nope", "name": "x"}]}}}, "fit.models"),
        ({"fit": {"background_model": True}}, "fit.models: missing"),
        ({"estimators": {"flux_points": {"source": "crab"}}}, "'crab' is not a sky model"),
        ({"fit": None, "estimators": {"flux_points": None}}, "flux points need fit models"),
        (
            {"observations": {"obs_ids": [1, "2"]}},
            r"observations.obs_ids\[1\]: expected an integer, got '2'",
        ),
        ({"compute": {"num_workers": 0}}, "compute.num_workers"),
        ({"plots": "yes"}, "plots: expected true or false"),
        ({"name": "a.b"}, "name: must be a non-empty name without '.'"),
    ],
)
def test_bad_config_gives_clear_error(changes, match):
    with pytest.raises(AnalysisConfigError, match=match):
        _parse(changes)


@pytest.mark.parametrize("key", ["datastore", "grid", "axes"])
def test_config_missing_section(key):
    with pytest.raises(AnalysisConfigError, match=f"{key}: missing"):
        _parse(drop=[key])


def test_config_values_and_defaults():
    config = _parse(
        {
            "grid": {
                "center": {"ra": 83.6, "dec": 22.0},
                "width": [4, "120 arcmin"],
                "binsz": 0.05,
            },
            "axes": {
                "energy": {"edges": ["500 GeV", 1, 10]},
                "energy_true": {"min": 0.1, "max": 100, "nbins": 3},
            },
            "estimators": None,
        }
    )
    assert config.center == (83.6, 22.0) and config.width == (4.0, 2.0)
    assert config.energy_edges == pytest.approx((0.5, 1.0, 10.0))
    np.testing.assert_allclose(config.energy_true_edges, [0.1, 1, 10, 100])
    assert config.datastore == Path("/data/store")
    assert config.excess_map == {"correlation_radius": 0.1, "energy_edges": None}  # defaults
    assert config.flux_points == {"source": "point", "energy_edges": None}
    assert yaml.safe_load(config.to_yaml())["grid"]["binsz"] == 0.05
    no_fit = _parse({"fit": None, "estimators": None})
    assert no_fit.models is None and no_fit.flux_points is None


def test_read_config_errors(tmp_path):
    with pytest.raises(AnalysisConfigError, match="no such configuration file"):
        read_analysis_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [1, 2\n")
    with pytest.raises(AnalysisConfigError, match="not valid YAML"):
        read_analysis_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(AnalysisConfigError, match="mapping at the top level"):
        read_analysis_config(bad)


def test_demo_stacked_dataset_and_store_summaries(demo):
    out, results = demo
    stacked = gammaxr.open_dataset(out / "stacked.zarr")
    text = repr(stacked.gamma)
    counts, background = results.attrs["counts_total"], results.attrs["background_total"]
    assert f"counts (safe)     : {counts:.0f}" in text
    assert f"excess (safe)     : {counts - background:.1f}" in text
    assert "significance" in text and "livetime 0.67 h" in text  # 4 runs of 600 s
    store = gammaxr.open_datastore(out / "store")
    obs = store.observation(int(store.obs_ids[0]))
    summary = repr(obs)
    assert "zenith   : 20.0 deg" in summary and "livetime : 10.0 min" in summary
    assert obs.loaded == ()
    assert "runs     : 4" in store.info(show=False)


def test_excess_maps_in_energy_bands(demo):
    """estimators.excess_map.energy_edges: one significance / excess map per band besides the
    summed one; the band excesses add up to the summed one where the bands cover the range."""
    out, _ = demo
    data = demo_description(str(out / "store"))
    data["fit"] = None
    data["reduction"] = {**data["reduction"], "safe_mask_irfs": "DL3"}
    edges = data["axes"]["energy"]
    data["axes"]["energy"] = {"edges": [0.3, 1.0, 3.0, 30.0]} if "edges" not in edges else edges
    data["estimators"] = {"excess_map": {"correlation_radius": 0.1, "energy_edges": [0.3, 1, 30]}}
    results = run_analysis(data)
    assert results["significance_bands"].sizes["energy_band"] == 2
    summed = results["excess_bands"].sum("energy_band", skipna=False)
    both = np.isfinite(summed.values) & np.isfinite(results["excess"].values)
    assert both.mean() > 0.5
    np.testing.assert_allclose(summed.values[both], results["excess"].values[both], atol=1e-3)
    assert float(results["significance_bands"].max()) > 5


def test_overwrite_removes_stale_outputs_and_failed_runs_leave_nothing(demo, tmp_path):
    out, _ = demo
    run = tmp_path / "run"
    run.mkdir()
    for name in ("flux_points.ecsv", "fit_parameters.csv", "spectrum.png"):
        (run / name).write_text("from an earlier run")
    (run / "stacked.zarr").mkdir()
    (run / "notes.txt").write_text("not an analysis output: kept")
    data = demo_description(str(out / "store"))
    data["fit"] = None
    data["estimators"] = {"excess_map": {"correlation_radius": 0.1}}
    data["plots"] = False
    with pytest.raises(FileExistsError, match="already holds"):
        run_analysis(data, run)
    run_analysis(data, run, overwrite=True)
    for name in ("flux_points.ecsv", "fit_parameters.csv", "spectrum.png"):
        assert not (run / name).exists()  # no stale result beside the new ones
    assert (run / "notes.txt").read_text() == "not an analysis output: kept"
    assert (run / "excess_map.zarr").is_dir() and (run / "summary.txt").exists()
    # a run that fails removes its partial outputs and the folder it created
    data["observations"] = {"obs_ids": [999]}
    failed = tmp_path / "new" / "run"
    with pytest.raises(Exception, match="999"):
        run_analysis(data, failed)
    assert not failed.exists()
