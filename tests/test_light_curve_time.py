"""Light curves in bins shorter than a run, variability tests, and temporal models in
simulation and in predicted counts."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr

from gammaxr.estimators.light_curve import light_curve
from gammaxr.estimators.norm_fit import norm_terms
from gammaxr.estimators.time_slices import gti_overlap, slice_terms, variability
from gammaxr.fit import fit, npred
from gammaxr.models import (
    ExpDecayTemporalModel,
    GaussianTemporalModel,
    LightCurveTemplateTemporalModel,
    Models,
    PointSpatialModel,
    PowerLaw,
    SkyModel,
    met_to_mjd,
)
from gammaxr.simulate import ObservationSpec, ToyInstrument, run_generator, simulate_observation
from gammaxr.testing import simulate_counts, toy_map_dataset, toy_spectrum_dataset
from gammaxr.testing.flare import _MET_REFERENCE, flare_scenario, light_curve_pulls


@pytest.fixture(scope="module")
def scenario():
    return flare_scenario(seed=0)


@pytest.fixture(scope="module")
def terms(scenario):
    return norm_terms(scenario.runs, Models([scenario.source.replace(temporal=None)]))


def test_slices_add_up_to_the_run(scenario, terms):
    """Cut at the light-curve bins, the same events give back each run's counts and
    predictions (the bins tile the runs)."""
    groups = slice_terms(terms, scenario.runs, scenario.sims, scenario.bins, gti_tolerance=1.0)
    assert [len(g) for g, _ in groups] == [1] * len(scenario.bins)  # one run per bin
    for term in terms:
        pieces = [p for g, _ in groups for p in g if p.name.startswith(f"{term.name}@")]
        assert len(pieces) == 3
        np.testing.assert_array_equal(sum(p.counts for p in pieces), term.counts)
        np.testing.assert_allclose(sum(p.signal for p in pieces), term.signal, rtol=1e-12)
        np.testing.assert_allclose(sum(p.other for p in pieces), term.other, rtol=1e-12)


def test_gtis_are_respected(scenario, terms):
    spec = scenario.specs[0]
    sim = simulate_observation(spec, scenario.irfs, [scenario.source], run_generator(5, 1))
    gap = (spec.tstart + 600.0, spec.tstart + 1200.0)
    gti = xr.Dataset(
        {"start": ("gti", [spec.tstart, gap[1]]), "stop": ("gti", [gap[0], spec.tstop])}
    )

    run = SimpleNamespace(obs_id=spec.obs_id, events=sim.events, gti=gti)  # middle 10 min bad
    assert gti_overlap(gti.start.values, gti.stop.values, gap[0] - 300, gap[1] + 300) == 600
    bins = np.array([[spec.tstart, gap[0]], [gap[0], gap[1]], [gap[0] - 300, gap[1] + 300]])
    groups = slice_terms(terms[:1], scenario.runs.isel(obs_id=[0]), [run], bins)
    full, empty, across = (g for g, _ in groups)
    assert empty == []
    # good time is 1200 s of the 1800 s run: the first bin holds half of it
    np.testing.assert_allclose(full[0].signal, terms[0].signal / 2, rtol=1e-12)
    np.testing.assert_allclose(across[0].signal, terms[0].signal / 2, rtol=1e-12)
    t = sim.events["time"].values
    in_gap = (t >= gap[0]) & (t < gap[1])
    assert in_gap.sum() > 0  # events in the bad interval exist but are not counted
    assert across[0].counts.sum() <= (~in_gap & (t >= gap[0] - 300) & (t < gap[1] + 300)).sum()


def test_flare_light_curve_recovers_injected_flux(scenario):
    pulls = light_curve_pulls(scenario, 2, seed=11)
    pull = pulls["pull"].values
    assert np.all(np.isfinite(pull)) and pull.shape == (2, 12)
    # 24 pulls: mean scatters by 0.2, width by 0.15 around the truth
    assert abs(pull.mean()) < 0.6 and 0.6 < pull.std() < 1.5
    truth = pulls["true_norm"].values
    assert np.argmax(truth) == 5
    assert np.all(np.argmax(pulls["norm"].values, axis=1) == 5)
    assert np.all(pulls["variability_pvalue"].values < 1e-6)
    assert np.all(pulls["ts"].values > 25)


def test_light_curve_outputs_and_variability(scenario):
    lc = light_curve(
        scenario.runs,
        Models([scenario.source]),  # its temporal model is ignored: flux = mean flux in a bin
        scenario.bins,
        time_format="met",
        observations={s.obs_id: s for s in scenario.sims},
    )
    assert lc.sizes["time_bin"] == 12
    for name in ("flux", "flux_err", "flux_ul", "ts", "is_ul", "variability_pvalue", "fvar"):
        assert name in lc
    np.testing.assert_array_equal(lc["n_runs"], 1)
    assert "time_min" in lc.coords  # MJD from the runs' MJDREF
    tests = variability(lc)
    np.testing.assert_allclose(lc["fvar"], tests["fvar"])
    assert tests["dof"].item() == 11
    # the injected light curve's fractional variance (without noise)
    truth = scenario.true_norms()
    expected = truth.std(ddof=1) / truth.mean()
    assert abs(lc["fvar"].item() - expected) < 3 * lc["fvar_err"].item()


def test_variability_of_a_constant_and_a_known_curve():
    n = 400
    rng = np.random.default_rng(2)
    err = np.full((n, 1), 0.1)

    def lc(values):
        return xr.Dataset(
            {"flux": (("time_bin", "energy"), values), "flux_err": (("time_bin", "energy"), err)},
            coords={"energy": [1.0]},
        )

    constant = variability(lc(1.0 + 0.1 * rng.standard_normal((n, 1))))
    assert abs(constant["chi2"].item() / (n - 1) - 1) < 0.2
    assert constant["pvalue"].item() > 1e-3
    intrinsic = 1.0 + 0.3 * rng.standard_normal((n, 1))  # F_var = 0.3
    variable = variability(lc(intrinsic + 0.1 * rng.standard_normal((n, 1))))
    assert abs(variable["fvar"].item() - 0.3) < 3 * variable["fvar_err"].item()
    assert variable["pvalue"].item() < 1e-10
    with pytest.raises(KeyError, match="norm_err"):
        variability(lc(intrinsic).rename(flux="norm"), "norm")


def test_sub_run_slicing_needs_map_datasets_and_events(scenario, terms):
    spectrum = toy_spectrum_dataset().expand_dims(obs_id=[1])
    with pytest.raises(ValueError, match="map datasets"):
        slice_terms(terms, spectrum, [], scenario.bins)
    with pytest.raises(ValueError, match="no events given"):
        slice_terms(terms, scenario.runs, {}, scenario.bins)


def test_temporal_model_scales_npred_by_its_mean_over_the_data_span():
    ds = toy_map_dataset()
    ds.attrs.update(tstart=0.0, tstop=7200.0, MJDREFI=51910, MJDREFF=0.0, TIMESYS="tt")
    constant = SkyModel(PowerLaw(), PointSpatialModel(lon_0=83.63, lat_0=22.01), name="s")
    mjd = met_to_mjd(np.array([0.0, 7200.0]), _reference_tt(), "utc")
    decay = ExpDecayTemporalModel(t0=0.05, t_ref=mjd[0])
    flaring = constant.replace(temporal=decay)
    ratio = npred(ds, flaring, kind="signal").sum() / npred(ds, constant, kind="signal").sum()
    np.testing.assert_allclose(ratio, decay.mean_norm(mjd[:1], mjd[1:]), rtol=1e-9)
    assert 0.3 < float(ratio) < 0.8
    # GTIs as Gammapy's files give them (two intervals) take precedence over tstart/tstop
    gtis = ds.assign_attrs(gti_start=[0.0, 5400.0], gti_stop=[1800.0, 7200.0])
    ratio = npred(gtis, flaring, kind="signal").sum() / npred(ds, constant, kind="signal").sum()
    parts = met_to_mjd(np.array([[0.0, 1800.0], [5400.0, 7200.0]]), _reference_tt(), "utc")
    np.testing.assert_allclose(ratio, decay.mean_norm(parts[:, 0], parts[:, 1]), rtol=1e-9)
    del ds.attrs["tstart"]
    with pytest.raises(ValueError, match="no time span"):
        npred(ds, flaring)


def _reference_tt():
    from astropy.time import Time

    return Time(51910, 0.0, format="mjd", scale="tt")


def test_simulated_times_follow_the_temporal_model():
    spec = ObservationSpec(1, 83.63, 22.51, livetime=1710.0, instrument="toy", tstart=1000.0)
    irfs = ToyInstrument().irfs()
    gti_mjd = met_to_mjd(np.array(spec.gti), _MET_REFERENCE, "utc")[0]
    peak = gti_mjd[0] + 0.25 * (gti_mjd[1] - gti_mjd[0])
    flare = GaussianTemporalModel(t_ref=peak, sigma=(gti_mjd[1] - gti_mjd[0]) / 10)
    source = SkyModel(
        PowerLaw(amplitude=2e-10),
        PointSpatialModel(lon_0=83.63, lat_0=22.01),
        name="f",
        temporal=flare,
    )
    sims = [
        simulate_observation(spec, irfs, [source], run_generator(s, 1), energy=(1.0, 10.0))
        for s in range(4)
    ]
    times = np.concatenate([s.events["time"].values[s.events["mc_id"].values == 1] for s in sims])
    assert times.min() >= spec.tstart and times.max() <= spec.tstop
    in_first_half = np.mean(times < spec.tstart + 0.5 * spec.ontime)
    expected = flare.integral(gti_mjd[0], 0.5 * (gti_mjd[0] + gti_mjd[1])) / flare.integral(
        *gti_mjd
    )
    assert abs(in_first_half - expected) < 4 * np.sqrt(expected * (1 - expected) / times.size)
    constant = [
        simulate_observation(
            spec, irfs, [source.replace(temporal=None)], run_generator(s, 1), energy=(1.0, 10.0)
        ).counts["f"]
        for s in range(4)
    ]
    mean_norm = flare.mean_norm(gti_mjd[:1], gti_mjd[1:])
    n_flare = sum(s.counts["f"] for s in sims)
    assert abs(n_flare - mean_norm * sum(constant)) < 5 * np.sqrt(n_flare + sum(constant))
    for s in sims:
        assert np.all(np.diff(s.events["time"].values) >= 0)


def test_fit_of_a_decay_time_over_runs():
    """Four runs of a decaying source: the joint fit recovers the decay time ``t0``."""
    toy = toy_map_dataset(exposure=1e9, width=1.2)
    starts = 3600.0 * np.arange(4)
    runs = xr.concat([toy] * 4, dim="obs_id").assign_coords(
        obs_id=[1, 2, 3, 4], tstart=("obs_id", starts), tstop=("obs_id", starts + 1800.0)
    )
    runs["tstart"].attrs.update(units="s", MJDREFI=51910, MJDREFF=0.0, TIMESYS="tt")
    t_ref = float(met_to_mjd(np.array(0.0), _reference_tt(), "utc"))
    source = SkyModel(
        PowerLaw(index=2.5, amplitude=1e-10),
        PointSpatialModel(lon_0=83.63, lat_0=22.01),
        name="src",
        temporal=ExpDecayTemporalModel(t0=0.08, t_ref=t_ref),
    )
    truth = Models([source])
    sim = simulate_counts(runs, truth, 4)
    start = truth.with_values({"src.temporal.t0": 0.05})
    assert "src.temporal.t0" in start.free_parameter_names
    result = fit(sim, start)
    assert result.success, result.message
    t0, err = result.value("src.temporal.t0"), result.error("src.temporal.t0")
    assert abs(t0 - 0.08) < 4 * err and err < 0.02


@pytest.mark.hess
def test_crab_in_ten_minute_bins(crab_reference_case, hess_dir):
    """Real runs cut into 10-minute bins: the pieces give back each run's counts, and the
    Crab is constant."""
    from gammaxr.data import open_datastore

    runs, _, _, reference = crab_reference_case
    params = reference["params"]
    crab = SkyModel(
        PowerLaw(index=params["index"][0], amplitude=params["amplitude_cm-2_s-1_TeV-1"][0]),
        PointSpatialModel(lon_0=params["lon_0_deg"][0], lat_0=params["lat_0_deg"][0]),
        name="crab",
    )
    observations = open_datastore(hess_dir).observations(runs["obs_id"].values.tolist())
    bins = []
    for a, b in zip(runs.tstart.values, runs.tstop.values, strict=True):
        edges = [*np.arange(a, b, 600.0), b]
        bins.extend(itertools.pairwise(edges))
    lc = light_curve(
        runs,
        Models([crab]),
        np.array(bins),
        time_format="met",
        observations=observations,
        gti_tolerance=1.0,
    )
    assert lc.sizes["time_bin"] == len(bins) >= 12
    assert int(lc["counts"].sum()) == int(runs["counts"].where(runs["mask_safe"]).sum())
    assert lc["variability_pvalue"].item() > 1e-3
    assert np.all(lc["ts"] > 9)


def test_simulation_description_with_a_light_curve_template(tmp_path):
    """A model file with a light-curve template drives the simulator's arrival times."""
    import yaml

    from gammaxr.simulate import read_config, simulate_observations
    from gammaxr.simulate.scenarios import default_description

    data = default_description()
    config = read_config(_write_description(tmp_path, data, yaml))
    spec = config.observations[0]
    span = met_to_mjd(np.array([spec.tstart, spec.tstop]), _MET_REFERENCE, "utc")
    # emission only in the first quarter of the first run
    quarter = span[0] + 0.25 * (span[1] - span[0])
    template = LightCurveTemplateTemporalModel(
        [0.0, quarter - span[0], quarter - span[0] + 1e-6], [1.0, 1.0, 0.0], t_ref=span[0]
    )
    point = config.models["point"].replace(temporal=template)
    Models([point]).write(tmp_path / "flare.yaml")
    data["models"] = "flare.yaml"
    config = read_config(_write_description(tmp_path, data, yaml))
    assert config.models["point"].temporal == template
    run = next(simulate_observations(config, seed=3))
    times = run.events["time"].values[run.events["mc_id"].values == 1]
    assert times.size > 20
    assert np.all(times <= spec.tstart + 0.25 * (spec.tstop - spec.tstart) + 1e-3)


def _write_description(tmp_path, data, yaml):
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
