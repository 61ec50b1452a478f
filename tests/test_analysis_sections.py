"""Analysis description sections that cover Gammapy's AnalysisConfig: 1D analysis (on region,
reflected regions, containment correction, spectrum fit, flux points, light curve), time
ranges, required IRFs, fit energy range, excess maps in energy bands."""

from __future__ import annotations

import numpy as np
import pytest

from gammaxr.analysis import parse_analysis_config
from gammaxr.analysis.config import AnalysisConfigError
from gammaxr.analysis.pipeline import AnalysisError, run_analysis, select_observations
from gammaxr.analysis.spectrum_pipeline import apply_fit_energy_range
from gammaxr.testing import toy_map_dataset

CRAB = [23523, 23526, 23559, 23592]
MODELS = {
    "components": [
        {
            "name": "crab",
            "type": "SkyModel",
            "spectral": {
                "type": "PowerLawSpectralModel",
                "parameters": [
                    {"name": "index", "value": 2.6},
                    {"name": "amplitude", "value": 4e-11, "unit": "cm-2 s-1 TeV-1"},
                    {"name": "reference", "value": 1.0, "unit": "TeV", "frozen": True},
                ],
            },
        }
    ]
}


def _crab_1d(hess_dir, **changes) -> dict:
    data = {
        "datastore": str(hess_dir),
        "observations": {"obs_ids": CRAB},
        "datasets": {"type": "1d", "on_region": "icrs; circle(83.63, 22.01, 0.2)"},
        "grid": {"center": [83.63, 22.01], "width": 5, "binsz": 0.05},
        "axes": {
            "energy": {"min": 1, "max": 10, "nbins": 11},
            "energy_true": {"min": 0.3, "max": 10, "nbins": 31},
        },
        "reduction": {"safe_mask": ["aeff-max"]},
        "background": {"method": "reflected", "exclusion": "icrs; circle(83.63, 22.01, 0.2)"},
        "fit": {"models": MODELS},
        "estimators": {"flux_points": {"energy_edges": [1, 2, 4, 10]}, "light_curve": None},
        "plots": False,
    }
    data.update(changes)
    return data


@pytest.mark.hess
def test_1d_crab_analysis_matches_gammapy_counts(hess_dir, tmp_path):
    """DESIGN.md reference: per run (n_on, n_off, alpha) of Gammapy's reflected regions."""
    data = _crab_1d(hess_dir, datasets={**_crab_1d(hess_dir)["datasets"]})
    data["datasets"]["containment_correction"] = False
    results = run_analysis(data, tmp_path / "out")
    expected = {23523: (137, 131, 6), 23592: (111, 287, 21), 23526: (136, 105, 6)}
    expected[23559] = (99, 218, 22)
    for obs_id, (n_on, n_off, n_reg) in expected.items():
        run = results.sel(obs_id=obs_id)
        assert int(run.run_n_on) == n_on and int(run.run_n_off) == n_off
        assert float(run.run_alpha) == pytest.approx(1 / n_reg)
    index = results["value"].sel(param="crab.spectral.index")
    assert float(index) == pytest.approx(2.62, abs=0.1)  # DESIGN.md: 2.62 +- 0.10
    assert results["sed_e2dnde"].sizes["energy"] == 3
    assert results["lc_norm"].sizes["time_bin"] == 4  # one point per run
    for name in ("fit_parameters.csv", "flux_points.ecsv", "light_curve.ecsv", "spectrum.zarr"):
        assert (tmp_path / "out" / name).exists(), name


@pytest.mark.hess
def test_1d_containment_correction_and_fit_range(hess_dir):
    """Containment-corrected exposure raises the flux of a small on region; a fit energy range
    leaves bins out of the fit but not out of the reduction."""
    plain = _crab_1d(hess_dir, estimators=None)
    plain["datasets"] = {**plain["datasets"], "containment_correction": False}
    corrected = _crab_1d(hess_dir, estimators=None)
    amp = "crab.spectral.amplitude"
    a0 = float(run_analysis(plain)["value"].sel(param=amp))
    a1 = float(run_analysis(corrected)["value"].sel(param=amp))
    assert 1.05 < a1 / a0 < 1.4  # the 0.2 deg circle holds 75-95 % of the PSF
    ranged = _crab_1d(hess_dir, estimators=None)
    ranged["fit"] = {"models": MODELS, "energy_range": {"min": 2, "max": 10}}
    res = run_analysis(ranged)
    assert float(res["value"].sel(param=amp)) != pytest.approx(a1, rel=1e-6)
    assert int(res.attrs["counts_total"]) == 483  # all safe on counts, 1-10 TeV


@pytest.mark.hess
def test_time_range_and_required_irfs_select_runs(hess_dir):
    data = _crab_1d(hess_dir)
    data["observations"] = {
        "obs_ids": CRAB,
        "time": {"start": "2004-12-04", "stop": "2004-12-05T12:00:00"},
        "required_irf": ["aeff", "edisp", "psf", "bkg"],
    }
    runs = [o.obs_id for o in select_observations(parse_analysis_config(data))]
    assert runs == [23523, 23526]
    data["observations"]["time"] = {"start": "2030-01-01"}
    with pytest.raises(AnalysisError, match="no run left"):
        select_observations(parse_analysis_config(data))


def test_description_errors_name_the_entry(tmp_path):
    base = {
        "datastore": str(tmp_path),
        "grid": {"center": [0, 0], "width": 1, "binsz": 0.1},
        "axes": {
            "energy": {"min": 1, "max": 10, "nbins": 2},
            "energy_true": {"min": 1, "max": 10, "nbins": 2},
        },
    }
    with pytest.raises(AnalysisConfigError, match="needs on_region"):
        parse_analysis_config({**base, "datasets": {"type": "1d"}})
    with pytest.raises(AnalysisConfigError, match=r"needs background\.method: reflected"):
        parse_analysis_config(
            {**base, "datasets": {"type": "1d", "on_region": "icrs; circle(0, 0, 0.1)"}}
        )
    with pytest.raises(AnalysisConfigError, match=r"needs datasets\.type: 1d"):
        parse_analysis_config({**base, "background": {"method": "reflected"}})
    with pytest.raises(AnalysisConfigError, match=r"observations\.time\.start"):
        parse_analysis_config({**base, "observations": {"time": {"start": "yesterday-ish"}}})
    with pytest.raises(AnalysisConfigError, match="required_irf"):
        parse_analysis_config({**base, "observations": {"required_irf": ["aeff", "psf2"]}})


def test_fit_energy_range_sets_mask_fit():
    ds = toy_map_dataset(energy_edges=(0.5, 1.0, 2.0, 4.0, 10.0))
    config = parse_analysis_config(
        {
            "datastore": ".",
            "grid": {"center": [0, 0], "width": 1, "binsz": 0.1},
            "axes": {
                "energy": {"min": 1, "max": 10, "nbins": 2},
                "energy_true": {"min": 1, "max": 10, "nbins": 2},
            },
            "fit": {"models": MODELS, "energy_range": {"min": "900 GeV", "max": 4}},
        }
    )
    masked = apply_fit_energy_range(ds, config)
    np.testing.assert_array_equal(
        masked["mask_fit"].any(("lat", "lon")).values, [False, True, True, False]
    )
    config = parse_analysis_config(
        {**config.raw, "fit": {"models": MODELS, "energy_range": {"min": 1.5, "max": 1.9}}}
    )
    with pytest.raises(ValueError, match="holds no whole reco-energy bin"):
        apply_fit_energy_range(ds, config)
