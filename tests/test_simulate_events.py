"""Event sampler: Poisson means against independent quadratures, distributions, seeds, GTIs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from gammaxr.geom.axes import axis_coords, axis_edges
from gammaxr.geom.fov import sky_to_fov
from gammaxr.irf import (
    evaluate_aeff,
    evaluate_edisp,
    integrate_bkg_energy,
    psf_3gauss_containment,
    psf_containment,
)
from gammaxr.models import GaussianSpatialModel, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.models.pixels import integrate_pixels, pixel_solid_angle
from gammaxr.models.sphere import separation
from gammaxr.simulate import ObservationSpec, ToyInstrument, run_generator, simulate_observation
from gammaxr.simulate.events import sample_background, sample_gti_times, sample_source

POINTING = (83.633, 22.514)
POINT = SkyModel(
    PowerLaw(index=2.6, amplitude="4.5e-11 cm-2 s-1 TeV-1"),
    PointSpatialModel(lon_0=83.633, lat_0=22.014, frame="icrs"),
    name="point",
)
# an extended source given in galactic coordinates, 1 deg from the pointing
EXTENDED = SkyModel(
    PowerLaw(index=2.2, amplitude="2e-11 cm-2 s-1 TeV-1"),
    GaussianSpatialModel(lon_0=184.2, lat_0=-4.8, sigma=0.3, frame="galactic"),
    name="extended",
)
N_SEEDS = 20


@pytest.fixture(scope="module")
def irfs():
    return ToyInstrument().irfs()


@pytest.fixture(scope="module")
def irfs_3d():
    return ToyInstrument(bkg_format="3d", psf_format="3gauss").irfs()


def _energy_cells(irf, dim, n=400):
    edges = axis_edges(irf, dim)
    return np.geomspace(edges[0], edges[-1], n + 1)


def expected_source_counts(model, irfs, livetime, energy_edges=None):
    """livetime * int phi(E) S A(E, offset) dE dOmega by quadrature (per true-energy bin)."""
    cells = _energy_cells(irfs.aeff, "energy_true", 300)
    flux = model.spectral.integral(cells[:-1], cells[1:])  # cm-2 s-1
    centres = np.sqrt(cells[1:] * cells[:-1])
    if model.spatial.is_point:
        from gammaxr.models.sphere import transform_lonlat

        (ra,), (dec,) = transform_lonlat(
            np.array([model.spatial.lon_0.value]),
            np.array([model.spatial.lat_0.value]),
            model.spatial.frame,
            "icrs",
        )
        area = evaluate_aeff(irfs.aeff, centres, separation(ra, dec, *POINTING))
    else:  # a fine icrs grid around the pointing; S integrated per pixel
        lon = np.arange(78.0, 89.2, 0.02)
        lat = np.arange(17.5, 27.5, 0.02)
        fraction = integrate_pixels(model.spatial, lon, lat, "icrs")
        keep = fraction > 1e-9
        lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
        offset = separation(lon2[keep], lat2[keep], *POINTING)
        area = evaluate_aeff(irfs.aeff, centres[:, None], offset[None]) @ fraction[keep]
    per_cell = flux * area * 1e4 * livetime
    if energy_edges is None:
        return per_cell.sum()
    index = np.searchsorted(energy_edges, centres) - 1
    inside = (index >= 0) & (index < len(energy_edges) - 1)
    return np.bincount(index[inside], per_cell[inside], minlength=len(energy_edges) - 1)


def expected_background(irfs, ontime, offset_edges=None):
    """ontime * int rate dE dOmega over the table's field of view (per offset annulus)."""
    bkg = irfs.bkg
    energy = _energy_cells(bkg, "energy", 200)
    if "offset" in bkg.dims:
        edges = np.linspace(0, axis_edges(bkg, "offset")[-1], 401)
        centres = 0.5 * (edges[1:] + edges[:-1])
        omega = 2 * np.pi * -np.diff(np.cos(np.radians(edges)))
        rate = integrate_bkg_energy(bkg, energy, offset=centres).sum(-1) * omega
        if offset_edges is not None:
            idx = np.searchsorted(offset_edges, centres) - 1
            return np.bincount(idx, rate * ontime, minlength=len(offset_edges))[:-1]
        return rate.sum() * ontime
    energy = _energy_cells(bkg, "energy", 100)
    x_edges = np.linspace(*axis_edges(bkg, "fov_lon")[[0, -1]], 161)
    y_edges = np.linspace(*axis_edges(bkg, "fov_lat")[[0, -1]], 161)
    x, y = 0.5 * (x_edges[1:] + x_edges[:-1]), 0.5 * (y_edges[1:] + y_edges[:-1])
    omega = pixel_solid_angle(y, x_edges[1] - x_edges[0], y_edges[1] - y_edges[0])
    rate = integrate_bkg_energy(bkg, energy, fov_lon=x[:, None], fov_lat=y[None, :]).sum(-1)
    return (rate * omega[None, :]).sum() * ontime


def check_poisson(counts, mu):
    """Mean within 4 sigma of mu and the dispersion index consistent with Poisson."""
    counts = np.asarray(counts, dtype=float)
    k = counts.size
    assert abs(counts.mean() - mu) < 4 * np.sqrt(mu / k), (counts.mean(), mu)
    chi2 = np.sum((counts - mu) ** 2) / mu
    p = stats.chi2.sf(chi2, k)
    assert 1e-4 < p < 1 - 1e-4, (chi2, k)


def chi2_pvalue(observed, expected, min_expected=5.0):
    observed, expected = np.asarray(observed, float), np.asarray(expected, float)
    use = expected > min_expected
    chi2 = np.sum((observed[use] - expected[use]) ** 2 / expected[use])
    return stats.chi2.sf(chi2, use.sum())


# --------------------------------------------------------------------------- Poisson means


@pytest.mark.parametrize(
    "model, livetime", [(POINT, 200.0), (EXTENDED, 800.0)], ids=["point", "extended"]
)
def test_source_counts_follow_poisson_mean(irfs, model, livetime):
    mu = expected_source_counts(model, irfs, livetime)
    counts = [
        sample_source(model, irfs, POINTING, livetime, np.random.default_rng(seed))[
            "energy_true"
        ].size
        for seed in range(N_SEEDS)
    ]
    assert 100 < mu < 2000
    check_poisson(counts, mu)


@pytest.mark.parametrize("fixture", ["irfs", "irfs_3d"])
def test_background_counts_follow_poisson_mean(request, fixture):
    irfs = request.getfixturevalue(fixture)
    ontime = 100.0
    mu = expected_background(irfs, ontime)
    counts = [
        sample_background(irfs, POINTING, ontime, np.random.default_rng(seed))["energy"].size
        for seed in range(N_SEEDS)
    ]
    assert 50 < mu < 2000
    check_poisson(counts, mu)
    # background_norm scales the mean
    scaled = [
        sample_background(irfs, POINTING, ontime, np.random.default_rng(seed), norm=2.0)[
            "energy"
        ].size
        for seed in range(N_SEEDS)
    ]
    check_poisson(scaled, 2 * mu)


def test_run_counts_follow_poisson_mean(irfs):
    """Whole runs: N ~ Poisson(sum of sources' flux x exposure + background)."""
    spec = ObservationSpec(1, *POINTING, livetime=60.0, deadc=0.9, instrument="toy")
    models = [POINT, EXTENDED]
    mu = sum(expected_source_counts(m, irfs, spec.livetime) for m in models)
    mu += expected_background(irfs, spec.ontime)
    counts = [
        simulate_observation(spec, irfs, models, run_generator(seed, 1)).events.sizes["event"]
        for seed in range(N_SEEDS)
    ]
    check_poisson(counts, mu)


def test_energy_ranges_restrict_samples(irfs):
    src = sample_source(POINT, irfs, POINTING, 300, np.random.default_rng(1), (1.0, 10.0))
    assert src["energy_true"].min() >= 1.0 and src["energy_true"].max() <= 10.0
    mu = expected_source_counts(POINT, irfs, 300, np.array([1.0, 10.0]))[0]
    assert abs(src["energy_true"].size - mu) < 4 * np.sqrt(mu)
    bkg = sample_background(irfs, POINTING, 300, np.random.default_rng(2), (2.0, 3.0))
    assert bkg["energy"].min() >= 2.0 and bkg["energy"].max() <= 3.0
    with pytest.raises(ValueError, match="empty energy range"):
        sample_source(POINT, irfs, POINTING, 300, np.random.default_rng(1), (200.0, 300.0))


# --------------------------------------------------------------------------- distributions


@pytest.fixture(scope="module")
def point_photons(irfs):
    spec = ObservationSpec(1, *POINTING, livetime=3000.0, instrument="toy", background_norm=0)
    return simulate_observation(spec, irfs, [POINT], rng=5).events


def test_true_energy_spectrum(irfs, point_photons):
    edges = np.geomspace(0.05, 100, 14)
    observed = np.histogram(point_photons["energy_true"].values, edges)[0]
    expected = expected_source_counts(POINT, irfs, 3000.0, edges)
    assert chi2_pvalue(observed, expected) > 1e-3


def test_migration_follows_edisp(irfs, point_photons):
    e_true = point_photons["energy_true"].values
    migra = point_photons["energy"].values / e_true
    edges = axis_edges(irfs.edisp, "migra")
    coarse = edges[::10]
    offset = separation(83.633, 22.014, *POINTING)
    centres = 0.5 * (edges[1:] + edges[:-1])
    density = evaluate_edisp(irfs.edisp, e_true[:, None], centres, offset) * np.diff(edges)
    density /= density.sum(axis=1, keepdims=True)
    expected = np.add.reduceat(density.sum(axis=0), np.arange(0, centres.size, 10))
    observed = np.histogram(migra, coarse)[0]
    assert observed.sum() == e_true.size
    assert chi2_pvalue(observed, expected[: observed.size]) > 1e-3


@pytest.mark.parametrize("psf_format", ["table", "3gauss"])
def test_psf_radius_distribution(psf_format):
    irfs = ToyInstrument(psf_format=psf_format).irfs()
    spec = ObservationSpec(1, *POINTING, livetime=2000.0, instrument="toy", background_norm=0)
    events = simulate_observation(spec, irfs, [POINT], rng=3).events
    rad = separation(events["ra"], events["dec"], events["ra_true"], events["dec_true"]).values
    e_true = events["energy_true"].values
    offset = separation(83.633, 22.014, *POINTING)
    edges = np.array([0.0, 0.03, 0.06, 0.09, 0.12, 0.16, 0.2, 0.3, 0.45, 0.7, 1.5])
    if psf_format == "table":
        cont = psf_containment(irfs.psf, e_true[:, None], offset, edges[None, :])
    else:
        cont = psf_3gauss_containment(irfs.psf, e_true[:, None], offset, edges[None, :])
    expected = np.diff(cont, axis=1).sum(axis=0)
    observed = np.histogram(rad, edges)[0]
    assert chi2_pvalue(observed, expected) > 1e-3


@pytest.mark.parametrize("fixture", ["irfs", "irfs_3d"])
def test_background_offset_distribution(request, fixture):
    irfs = request.getfixturevalue(fixture)
    events = sample_background(irfs, POINTING, 1000.0, np.random.default_rng(11))
    offset = separation(events["ra"], events["dec"], *POINTING)
    edges = np.linspace(0, 4.0, 9)
    observed = np.histogram(offset, edges)[0]
    if fixture == "irfs":
        expected = expected_background(irfs, 1000.0, edges)
        assert chi2_pvalue(observed, expected) > 1e-3
    else:  # 3d: a square field of view; inside 4 deg the rates agree with the 2d toy
        assert offset.max() <= 4 * np.sqrt(2) + 1e-6
        assert np.all(np.diff(observed[2:] / np.diff(edges[2:] ** 2)) < 0)


def _gradient_bkg(alignment):
    """A bkg_3d rising steeply towards positive FoV longitude."""
    edges = np.linspace(-2, 2, 21)
    e_edges = np.geomspace(0.1, 10, 5)
    coords = {
        **axis_coords("energy", e_edges, "TeV", lohi=True),
        **axis_coords("fov_lon", edges, "deg", lohi=True),
        **axis_coords("fov_lat", edges, "deg", lohi=True),
    }
    x = coords["fov_lon"].values
    rate = 1e-4 * np.exp(x)[None, :, None] * np.ones((4, 1, 20))
    return xr.DataArray(
        rate,
        dims=("energy", "fov_lon", "fov_lat"),
        coords=coords,
        attrs={"units": "s-1 MeV-1 sr-1", "fov_alignment": alignment},
    )


@pytest.mark.parametrize("alignment, sign", [("RADEC", 1), ("REVERSE_LON_RADEC", -1)])
def test_bkg_3d_alignment(irfs, alignment, sign):
    toy = irfs.replace(bkg=_gradient_bkg(alignment))
    events = sample_background(toy, POINTING, 100.0, np.random.default_rng(4))
    fov_lon, fov_lat = sky_to_fov(events["ra"], events["dec"], *POINTING)
    table_lon = sign * fov_lon
    assert np.all(np.abs(table_lon) <= 2 + 1e-6) and np.all(np.abs(fov_lat) <= 2 + 1e-6)
    # the fraction of events at positive table longitude follows the exponential gradient
    frac = np.mean(table_lon > 0)
    expected = (np.e**2 - 1) / (np.e**2 - np.e**-2)
    n = table_lon.size
    assert abs(frac - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    with pytest.raises(NotImplementedError, match="ALTAZ"):
        sample_background(irfs.replace(bkg=_gradient_bkg("ALTAZ")), POINTING, 1.0, 0)


# --------------------------------------------------------------------------- runs


def test_simulate_observation_columns_and_gti(irfs):
    spec = ObservationSpec(7, *POINTING, livetime=190.0, deadc=0.95, instrument="toy")
    sim = simulate_observation(spec, irfs, [POINT, EXTENDED], rng=0)
    ev = sim.events
    assert sim.spec.ontime == pytest.approx(200.0)
    assert ev.sizes["event"] == sum(sim.counts.values())
    assert set(sim.counts) == {"background", "point", "extended"}
    for mc_id, name in enumerate(["background", "point", "extended"]):
        assert int((ev["mc_id"] == mc_id).sum()) == sim.counts[name]
    time = ev["time"].values
    assert np.all(np.diff(time) >= 0)
    assert time.min() >= spec.tstart and time.max() <= spec.tstop
    assert np.array_equal(ev["event_id"].values, np.arange(1, time.size + 1))
    bkg = ev["mc_id"].values == 0
    assert np.all(np.isnan(ev["energy_true"].values[bkg]))
    assert np.all(np.isfinite(ev["energy_true"].values[~bkg]))
    for key in ("OBS_ID", "RA_PNT", "DEC_PNT", "TSTART", "TSTOP", "ONTIME", "LIVETIME"):
        assert key in ev.attrs
    assert ev.attrs["LIVETIME"] == pytest.approx(ev.attrs["ONTIME"] * ev.attrs["DEADC"])
    assert sim.gti["start"].values[0] == spec.tstart and sim.gti["stop"].values[0] == spec.tstop


def test_reproducible_from_seed(irfs):
    spec = ObservationSpec(3, *POINTING, livetime=100.0, instrument="toy")
    a = simulate_observation(spec, irfs, [POINT], rng=run_generator(42, 3)).events
    b = simulate_observation(spec, irfs, [POINT], rng=run_generator(42, 3)).events
    c = simulate_observation(spec, irfs, [POINT], rng=run_generator(42, 4)).events
    xr.testing.assert_identical(a, b)
    assert a.sizes["event"] != c.sizes["event"] or not np.array_equal(a["ra"], c["ra"])


def test_background_needs_bkg_irf(irfs):
    spec = ObservationSpec(3, *POINTING, livetime=10.0, instrument="toy")
    with pytest.raises(ValueError, match="no background IRF"):
        simulate_observation(spec, irfs.replace(bkg=None), [POINT], rng=0)
    sources_only = spec.__class__(**{**spec.__dict__, "background_norm": 0.0})
    sim = simulate_observation(sources_only, irfs.replace(bkg=None), [POINT], rng=0)
    assert "background" not in sim.counts


def test_gti_times_uniform():
    rng = np.random.default_rng(0)
    gti = [(0.0, 100.0), (200.0, 500.0)]
    t = sample_gti_times(gti, 20000, rng)
    assert np.all(((t >= 0) & (t <= 100)) | ((t >= 200) & (t <= 500)))
    frac = np.mean(t < 150)
    assert abs(frac - 0.25) < 4 * np.sqrt(0.25 * 0.75 / t.size)
    with pytest.raises(ValueError, match="stop > start"):
        sample_gti_times([(5.0, 5.0)], 3, rng)
