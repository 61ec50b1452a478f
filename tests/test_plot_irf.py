"""IRF, event and peek plots: what is drawn equals the IRF evaluation (toy instrument with
known analytic IRFs), panels and labels; obs.peek on the H.E.S.S. data."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

import gammaxr
from gammaxr.irf import evaluate_aeff, evaluate_bkg_2d
from gammaxr.plot import (
    plot_aeff,
    plot_background_rate,
    plot_edisp,
    plot_event_energies,
    plot_event_map,
    plot_psf_containment,
)
from gammaxr.simulate.instrument import ToyInstrument
from gammaxr.testing import toy_map_dataset


@pytest.fixture(autouse=True)
def _agg_backend():
    backend = plt.get_backend()
    plt.switch_backend("Agg")
    yield
    plt.close("all")
    plt.switch_backend(backend)


@pytest.fixture(scope="module")
def toy():
    instrument = ToyInstrument()
    return instrument, instrument.irfs()


def test_aeff_and_background_lines_are_the_irf_evaluations(toy):
    _, irfs = toy
    ax = plot_aeff(irfs.aeff, offsets=[0.0, 1.0])
    assert len(ax.lines) == 2 and ax.get_xscale() == ax.get_yscale() == "log"
    for line, offset in zip(ax.lines, (0.0, 1.0), strict=True):
        energy = line.get_xdata()
        np.testing.assert_allclose(line.get_ydata(), evaluate_aeff(irfs.aeff, energy, offset))
    assert ax.get_legend().get_texts()[1].get_text() == "offset 1 deg"
    ax = plot_background_rate(irfs.bkg, offsets=[0.5])
    (line,) = ax.lines
    expected = evaluate_bkg_2d(irfs.bkg, line.get_xdata(), 0.5)
    np.testing.assert_allclose(line.get_ydata(), np.where(expected > 0, expected, np.nan))
    assert "s-1 MeV-1 sr-1" in ax.get_ylabel()


def test_psf_containment_radius_matches_the_analytic_psf(toy):
    instrument, irfs = toy
    ax = plot_psf_containment(irfs.psf, fractions=(0.68, 0.95), offsets=[0.5])
    r68, r95 = ax.lines
    energy = r68.get_xdata()
    inside = (energy > 0.5) & (energy < 50)  # away from the table edges
    for line, fraction in ((r68, 0.68), (r95, 0.95)):
        got = instrument.psf_containment(energy[inside], 0.5, line.get_ydata()[inside])
        np.testing.assert_allclose(got, fraction, atol=0.02)
    assert np.all(r95.get_ydata()[inside] > r68.get_ydata()[inside])


def test_edisp_image_peaks_at_migra_one(toy):
    _, irfs = toy
    ax = plot_edisp(irfs.edisp, offset=0.5)
    mesh = ax.collections[0]
    density = np.asarray(mesh.get_array()).reshape(100, 100)  # (migra, energy)
    migra = np.linspace(*ax.get_ylim(), 101)
    centres = 0.5 * (migra[:-1] + migra[1:])
    peak = centres[np.argmax(density[:, 60])]  # a bin well above threshold
    assert abs(peak - 1.0) < 0.1
    assert "offset 0.5 deg" in ax.get_title()


def test_event_plots_count_every_event():
    rng = np.random.default_rng(0)
    n = 2000
    events = xr.Dataset(
        {
            "ra": ("event", rng.normal(359.9, 0.5, n) % 360.0),  # across RA = 0
            "dec": ("event", rng.normal(10.0, 0.5, n)),
            "energy": ("event", rng.pareto(1.5, n) + 0.1),
        }
    )
    ax = plot_event_map(events, center=(359.9, 10.0), width=8.0, binsz=0.1)
    assert np.asarray(ax.collections[0].get_array()).sum() == n
    assert ax.get_xlim()[0] > ax.get_xlim()[1]  # RA increases to the left
    ax = plot_event_energies(events)
    heights = ax.patches[0].get_path().vertices[:, 1]
    energy = events["energy"].values
    edges = np.geomspace(energy.min(), energy.max() * (1 + 1e-9), 41)
    counts, _ = np.histogram(energy, bins=edges)
    assert counts.sum() == n and heights.max() == counts.max()
    assert ax.get_xscale() == "log" and ax.get_title() == "event energies"


def test_dataset_peek():
    ds = toy_map_dataset(center=(83.63, 22.01))
    ds = ds.assign(counts=(ds["counts"].dims, np.full(ds["counts"].shape, 2.0, np.float32)))
    fig = ds.gamma.peek()
    titles = [a.get_title() for a in fig.axes]
    assert "counts, 1-10 TeV" in titles and "excess, 1-10 TeV" in titles
    assert any(t.startswith("exposure") for t in titles)
    spectrum = fig.axes[-1]
    (points,) = [ln for ln in spectrum.lines if ln.get_marker() == "o"]
    np.testing.assert_allclose(points.get_ydata(), 2.0 * 40 * 40)


@pytest.mark.hess
def test_observation_peek(hess_dir):
    obs = gammaxr.open_datastore(hess_dir).observation(23523)
    fig = obs.peek()
    titles = {a.get_title() for a in fig.axes}
    for title in ("effective area", "PSF containment radius", "event energies"):
        assert title in titles
    assert "events (7613)" in titles
    assert any(t.startswith("energy dispersion") for t in titles)
    assert any(t.startswith("background rate") for t in titles)
    assert obs.loaded == ()  # peek reads a snapshot; the handle stays lazy
