"""Summaries: dataset reprs (numbers against direct sums, one compute pass), observation and
data-store summaries (header and index only), fit result tables."""

from __future__ import annotations

import dask
import numpy as np
import pytest

import gammaxr
from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.stats import alpha_on_off, cash_sqrt_ts, wstat_sqrt_ts
from gammaxr.summary import dataset_summary
from gammaxr.testing import toy_map_dataset

CENTER = (83.63, 22.01)


def toy(seed: int = 0):
    ds = toy_map_dataset(center=CENTER)
    rng = np.random.default_rng(seed)
    counts = rng.poisson(ds["background"].values * 1.5).astype(np.float32)
    safe = np.ones(counts.shape, bool)
    safe[0, :5] = False
    return ds.assign(
        counts=(ds["counts"].dims, counts, {"units": ""}),
        mask_safe=(ds["counts"].dims, safe),
    )


class _CountingScheduler:
    def __init__(self):
        self.calls = 0

    def __call__(self, dsk, keys, **kwargs):
        self.calls += 1
        return dask.get(dsk, keys, **kwargs)


def test_dataset_summary_numbers_are_the_safe_totals():
    ds = toy()
    safe = ds["mask_safe"].values
    n_on = float(ds["counts"].values[safe].sum())
    bkg = float(ds["background"].values[safe].sum())
    s = dataset_summary(ds)
    assert s["counts"] == n_on and s["background"] == pytest.approx(bkg)
    assert s["excess"] == pytest.approx(n_on - bkg)
    assert s["significance"] == pytest.approx(float(cash_sqrt_ts(n_on, bkg)))
    assert s["exposure_min"] == s["exposure_max"] == pytest.approx(3e9)
    assert s["fit_bins"] == safe.sum() and s["bins"] == safe.size
    assert s["energy"] == (1.0, 10.0, 3) and s["energy_true"][2] == 5
    assert s["kind"] == "map dataset"
    text = repr(ds.gamma)
    assert text.startswith("<gammaxr map dataset 'toy'>")
    for word in ("counts (safe)", "background", "excess", "significance", "exposure", "fit bins"):
        assert word in text
    assert f"{n_on:.0f}" in text
    html = ds.gamma._repr_html_()
    assert "<table>" in html and "significance" in html


def test_dataset_summary_of_lazy_data_is_one_compute():
    ds = toy()
    lazy = ds.chunk({"energy": 1}).assign_coords({c: ds[c] for c in ds.coords})
    scheduler = _CountingScheduler()
    with dask.config.set(scheduler=scheduler):
        s = lazy.gamma.summary()
    assert scheduler.calls == 1
    assert s["counts"] == dataset_summary(ds)["counts"]


def test_on_off_summary_uses_wstat_with_the_effective_alpha():
    ds = toy(seed=3)
    rng = np.random.default_rng(4)
    acc = ds["background"].values
    ds = ds.drop_vars("background").assign(
        counts_off=(ds["counts"].dims, rng.poisson(acc * 10).astype(np.float32)),
        acceptance=(ds["counts"].dims, acc),
        acceptance_off=(ds["counts"].dims, acc * rng.uniform(5, 15, acc.shape)),
    )
    safe = ds["mask_safe"].values
    alpha = alpha_on_off(ds["acceptance"].values, ds["acceptance_off"].values)
    n_on, n_off = ds["counts"].values[safe].sum(), ds["counts_off"].values[safe].sum()
    bkg = (alpha * ds["counts_off"].values)[safe].sum()
    s = dataset_summary(ds)
    assert s["kind"] == "on/off map dataset"
    assert s["alpha"] == pytest.approx(bkg / n_off)
    assert s["significance"] == pytest.approx(float(wstat_sqrt_ts(n_on, n_off, bkg / n_off)))
    assert "alpha (on/off)" in repr(ds.gamma)


def test_fit_result_prints_a_parameter_table():
    ds = toy_map_dataset(center=CENTER)
    models = Models(
        [
            SkyModel(
                PowerLaw(index=2.5, amplitude="5e-11 cm-2 s-1 TeV-1"),
                PointSpatialModel(lon_0=83.7, lat_0=22.0),
                name="src",
            ),
            FoVBackgroundModel("toy"),
        ]
    )
    npred = ds.gamma.npred(models).transpose(*ds["counts"].dims)
    ds = ds.assign(counts=npred.drop_vars(["energy_lo", "energy_hi"]))
    result = ds.gamma.fit(models)
    text = repr(result)
    lines = text.splitlines()
    assert lines[0] == "<FitResult>" and "success     : True" in text
    header = next(line for line in lines if line.split()[:1] == ["parameter"])
    assert header.split() == ["parameter", "value", "error", "unit", "frozen"]
    (index,) = [line for line in lines if line.strip().startswith("src.spectral.index ")]
    assert float(index.split()[1]) == pytest.approx(result.value("src.spectral.index"), rel=1e-4)
    assert float(index.split()[2]) == pytest.approx(result.error("src.spectral.index"), rel=1e-4)
    (reference,) = [line for line in lines if "src.spectral.reference" in line]
    assert reference.split()[-2:] == ["TeV", "yes"]
    assert "<table>" in result._repr_html_()


@pytest.mark.hess
def test_observation_repr_reads_the_header_only(hess_dir):
    store = gammaxr.open_datastore(hess_dir)
    obs = store.observation(23523)
    text = repr(obs)
    assert text.startswith("<Observation 23523>")
    assert "target   : Crab" in text
    assert "RA 83.633, Dec 21.514" in text
    assert "zenith   : 48.6 deg" in text
    assert f"events   : {int(obs.obs_info['event_count'])}" in text
    assert "livetime : 26.4 min" in text
    assert obs.loaded == ()  # nothing read but the header
    assert obs.info(show=False) == text


@pytest.mark.hess
def test_datastore_info(hess_dir, capsys):
    store = gammaxr.open_datastore(hess_dir)
    store.info()
    text = capsys.readouterr().out
    assert "runs     : 105 (obs_id 20136 - 47829)" in text
    assert "Off data (45)" in text and "Crab (4)" in text
    assert "bkg: bkg_3d (105)" in text
    crab = store.select_target("Crab")
    hours = float(crab.obs_table["livetime"].sum()) / 3600
    text = crab.info(show=False)
    assert "runs     : 4 (obs_id 23523 - 23592)" in text and f"livetime : {hours:.2f} h" in text


@pytest.mark.hess
def test_reflected_regions_summary_matches_the_gammapy_counts(hess_dir):
    """DESIGN.md, Crab reflected regions: per run (n_on, n_off, alpha) from Gammapy 2.1."""
    from gammaxr.reduce import SpectrumSpec, spectrum_runs

    gammapy = {23523: (137, 131, 1 / 6), 23592: (111, 287, 1 / 21)}
    gammapy |= {23526: (136, 105, 1 / 6), 23559: (99, 218, 1 / 22)}
    store = gammaxr.open_datastore(hess_dir).select_obs_ids(list(gammapy))
    spec = SpectrumSpec(
        on_region="icrs; circle(83.63, 22.01, 0.2)",
        energy_edges=tuple(np.geomspace(1, 10, 5)),
        energy_true_edges=tuple(np.geomspace(0.5, 20, 11)),
    )
    s = spectrum_runs(store.observations(), spec).gamma.summary()
    n_on = sum(v[0] for v in gammapy.values())
    n_off = sum(v[1] for v in gammapy.values())
    background = sum(v[1] * v[2] for v in gammapy.values())
    assert (s["counts"], s["counts_off"]) == (n_on, n_off)
    assert s["background"] == pytest.approx(background, rel=1e-4)
    assert s["alpha"] == pytest.approx(background / n_off, rel=1e-4)
    assert s["kind"] == "on/off spectrum dataset, 4 runs along obs_id"
