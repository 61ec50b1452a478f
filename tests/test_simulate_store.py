"""Simulated GADF data stores: read back through the DataStore, reduced counts vs prediction."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from gammaxr.data import open_datastore
from gammaxr.geom import SkyGrid
from gammaxr.irf import edisp_kernel, evaluate_aeff, evaluate_psf
from gammaxr.models import SkyModel
from gammaxr.models.pixels import integrate_pixels
from gammaxr.models.sphere import separation
from gammaxr.reduce.dataset import ReductionSpec, reduce_observation
from gammaxr.reduce.runs import reduce_runs
from gammaxr.simulate import (
    default_scenario,
    parse_config,
    read_irfs,
    simulate_datastore,
    simulate_observations,
    write_datastore,
)
from gammaxr.simulate.scenarios import DEFAULT_POINT_SOURCE, default_description

LIVETIME = 600.0  # s per run: about 1800 events per run
SEED = 7
RECO_EDGES = np.geomspace(0.1, 100.0, 13)
TRUE_EDGES = np.geomspace(0.05, 100.0, 67)


@pytest.fixture(scope="module")
def config():
    return default_scenario(livetime=LIVETIME, seed=SEED)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory, config):
    directory = tmp_path_factory.mktemp("sim") / "store"
    report = simulate_datastore(config, directory)
    assert report.seed == SEED and report.directory == directory
    return directory


@pytest.fixture(scope="module")
def store(store_dir):
    return open_datastore(store_dir)


@pytest.fixture(scope="module")
def sims(config):
    return list(simulate_observations(config))


# --------------------------------------------------------------------------- reading back


def test_store_reads_back(store, sims, config):
    assert list(store.obs_ids) == config.obs_ids == [1, 2, 3, 4]
    table = store.obs_table
    for sim in sims:
        obs = store.observation(sim.obs_id)
        events = obs.events
        # the same seed gives the same events as in memory
        assert int(table["event_count"].sel(obs_id=sim.obs_id)) == events.sizes["event"]
        assert events.sizes["event"] == sim.events.sizes["event"]
        for name in ("time", "ra", "dec", "energy", "mc_id", "event_id"):
            np.testing.assert_array_equal(events[name].values, sim.events[name].values)
        assert "energy_true" not in events  # truth stays in memory
        assert obs.livetime == pytest.approx(LIVETIME)
        assert obs.ontime == pytest.approx(LIVETIME / 0.95)
        assert obs.tstop - obs.tstart == pytest.approx(obs.ontime)
        assert obs.pointing.ra.deg == pytest.approx(sim.spec.ra)
        assert obs.zenith == pytest.approx(20.0)
        assert separation(obs.pointing.ra.deg, obs.pointing.dec.deg, 83.633, 22.014) == (
            pytest.approx(0.5)
        )
        gti = obs.gti
        assert gti["start"].values[0] == obs.tstart and gti["stop"].values[0] == obs.tstop
        assert obs.hdu_classes == {
            "events": "events",
            "gti": "gti",
            "aeff": "aeff_2d",
            "edisp": "edisp_2d",
            "psf": "psf_table",
            "bkg": "bkg_2d",
        }
        for kind in ("aeff", "edisp", "psf", "bkg"):
            np.testing.assert_array_equal(getattr(obs, kind).values, getattr(sim.irfs, kind).values)
    for column in ("livetime", "ontime", "tstart", "tstop", "ra_pnt", "dec_pnt", "zen_pnt"):
        assert column in table
    assert set(table["target_name"].values) == {"Crab-like"}
    np.testing.assert_allclose(table["target_offset"].values, 0.5, atol=1e-9)
    # MET and calendar times agree
    first = store.observation(1)
    assert first.time_start.utc.isot.startswith("2024-01-01T20:00:00")


def test_store_is_relocatable(store_dir, tmp_path):
    moved = shutil.copytree(store_dir, tmp_path / "moved")
    store = open_datastore(moved)
    assert store.observation(2).aeff.sizes["energy_true"] > 0
    assert str(moved) in store.hdu_table["path"].values[0]


def test_shared_irf_file(store):
    paths = {loc.path for i in store.obs_ids for t, loc in store.observation(i).hdus.items()}
    irf_files = [p for p in paths if "/irfs/" in p]
    assert len(irf_files) == 1 and irf_files[0].endswith("toy.fits.gz")
    assert read_irfs(irf_files[0]).hdu_classes()["psf"] == "psf_table"


def test_existing_store_needs_overwrite(store_dir, sims, config):
    with pytest.raises(FileExistsError, match="overwrite"):
        write_datastore(store_dir, sims)
    with pytest.raises(FileExistsError, match="overwrite"):
        simulate_datastore(config, store_dir)


def test_write_datastore_other_formats(tmp_path):
    config = default_scenario(livetime=60.0, psf_format="3gauss", bkg_format="3d")
    sims = list(simulate_observations(config, seed=1))
    write_datastore(tmp_path, sims, observatory=config.observatory)
    obs = open_datastore(tmp_path).observation(3)
    assert obs.psf_class == "psf_3gauss" and obs.hdu_classes["bkg"] == "bkg_3d"
    assert obs.bkg.attrs["fov_alignment"] == "RADEC"
    np.testing.assert_array_equal(obs.bkg.values, sims[2].irfs.bkg.values)


def test_seed_changes_events(tmp_path):
    config = default_scenario(livetime=60.0)
    a = simulate_datastore(config, tmp_path / "a", seed=1)
    b = simulate_datastore(config, tmp_path / "b", seed=2)
    assert a.counts != b.counts
    c = simulate_datastore(config, tmp_path / "c", seed=1)
    assert a.counts == c.counts
    assert a.n_events == sum(sum(v.values()) for v in a.counts.values())
    assert "4 runs" in a.summary()


# --------------------------------------------------------------------------- reduction


def predicted_source_spectrum(model: SkyModel, irfs, pointing, livetime):
    """Expected reco-energy counts of a source from the tabulated IRFs (all sky).

    exposure x flux integrated per true-energy bin x spatial fraction per pixel, folded
    with the edisp kernel at each pixel's offset.
    """
    centres = np.sqrt(TRUE_EDGES[1:] * TRUE_EDGES[:-1])
    flux = model.spectral.integral(TRUE_EDGES[:-1], TRUE_EDGES[1:])
    spatial = model.spatial
    if spatial.is_point:
        offsets = np.array([separation(*spatial.position, *pointing)])
        weights = np.ones(1)
    else:
        grid = SkyGrid.from_center(spatial.position, 3.0, 0.04, frame=spatial.frame)
        fraction = integrate_pixels(spatial, grid.lon, grid.lat, spatial.frame)
        keep = fraction > 1e-7
        lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
        offsets = separation(lon[keep], lat[keep], *pointing)
        weights = fraction[keep]
    area = evaluate_aeff(irfs.aeff, centres[:, None], offsets[None, :])  # (true, pix) m2
    # the kernel varies slowly with offset: taken at offsets rounded to 0.02 deg
    nodes, index = np.unique(np.round(offsets / 0.02) * 0.02, return_inverse=True)
    kernel = edisp_kernel(irfs.edisp, nodes, TRUE_EDGES, RECO_EDGES)[index]  # (pix, true, reco)
    return np.einsum("t,tp,p,ptr->r", flux, area, weights, kernel) * 1e4 * livetime


def chi2_pvalue(observed, expected):
    observed, expected = np.asarray(observed, float), np.asarray(expected, float)
    use = expected > 5
    chi2 = np.sum((observed[use] - expected[use]) ** 2 / expected[use])
    return stats.chi2.sf(chi2, use.sum())


def test_reduced_spectrum_matches_prediction(store, sims, config):
    spec = ReductionSpec(
        energy_edges=RECO_EDGES,
        energy_true_edges=TRUE_EDGES,
        width=6.4,
        binsz=0.04,
        maps=("counts", "background"),
        # the toy background spectrum is curved near threshold: a log-log integral over
        # whole quarter-decade bins would be biased by a few %
        background_oversampling=10,
    )
    for sim in sims:
        obs = store.observation(sim.obs_id)
        ds = reduce_observation(obs, spec)
        grid = SkyGrid.from_xarray(ds)
        inside = (grid.separation(obs.pointing) < 3.0).values
        counts = ds["counts"].values[:, inside].sum(axis=1)
        expected = ds["background"].values[:, inside].sum(axis=1).astype(float)
        pointing = (sim.spec.ra, sim.spec.dec)
        for model in config.models:
            expected += predicted_source_spectrum(model, sim.irfs, pointing, LIVETIME)
        assert counts.sum() > 1000
        # the sources add a significant signal over the background
        assert expected.sum() > 1.2 * ds["background"].values[:, inside].sum()
        p = chi2_pvalue(counts, expected)
        assert p > 1e-3, (sim.obs_id, counts, expected)


def test_reduced_radial_profile_matches_psf(tmp_path):
    """Point source only: counts around it in annuli vs background + PSF-spread prediction."""
    data = default_description()
    data["models"]["components"] = data["models"]["components"][:1]
    data["defaults"]["livetime"] = 1200.0
    data["observations"][0]["wobble"]["angles"] = [0, 180]
    config = parse_config(data)
    simulate_datastore(config, tmp_path, seed=3)
    store = open_datastore(tmp_path)
    source = (DEFAULT_POINT_SOURCE["ra"], DEFAULT_POINT_SOURCE["dec"])
    grid = SkyGrid.from_center(source, 1.2, 0.01, frame="icrs")
    spec = ReductionSpec(
        energy_edges=RECO_EDGES[[0, 4, 8, 12]],
        energy_true_edges=TRUE_EDGES,
        grid=grid,
        maps=("counts", "background"),
        background_oversampling=10,
    )
    model = config.models["point"]
    sep = grid.separation(source).values
    r_edges = np.array([0.0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.3, 0.4, 0.6])
    annulus = np.digitize(sep, r_edges) - 1
    centres = np.sqrt(TRUE_EDGES[1:] * TRUE_EDGES[:-1])
    flux = model.spectral.integral(TRUE_EDGES[:-1], TRUE_EDGES[1:])
    omega = grid.solid_angle().values
    datasets = reduce_runs(store.observations(store.obs_ids), spec).compute()
    for obs_id in store.obs_ids:
        obs = store.observation(obs_id)
        irfs = obs.read(["aeff", "edisp", "psf"])
        offset = float(separation(*source, obs.pointing.ra.deg, obs.pointing.dec.deg))
        n_true = flux * evaluate_aeff(irfs.aeff, centres, offset) * 1e4 * obs.livetime
        kernel = edisp_kernel(irfs.edisp, offset, TRUE_EDGES, spec.energy)  # (true, reco)
        psf = evaluate_psf(irfs.psf, centres[:, None, None], offset, sep[None])  # (true, y, x)
        source_map = np.einsum("t,tr,tyx->ryx", n_true, kernel, psf * omega)
        ds = datasets.sel(obs_id=obs_id)
        predicted = ds["background"].values + source_map
        counts = ds["counts"].values
        ok = annulus < r_edges.size - 1
        ring_counts = np.array([np.bincount(annulus[ok], c[ok]) for c in counts])
        ring_pred = np.array([np.bincount(annulus[ok], p[ok]) for p in predicted])
        assert ring_counts.sum() > 500
        p = chi2_pvalue(ring_counts.ravel(), ring_pred.ravel())
        assert p > 1e-3, (obs_id, ring_counts, ring_pred)
        # the source shows up: the inner rings are well above the background alone
        bkg_rings = np.bincount(annulus[ok], ds["background"].values.sum(0)[ok])
        assert ring_counts.sum(0)[0] > 5 * bkg_rings[0]


def test_xarray_events_roundtrip_dtypes(store):
    events = store.observation(1).events
    assert events["energy"].attrs["units"] == "TeV"
    assert events["time"].attrs["MJDREFI"] == 51910
    assert isinstance(events, xr.Dataset) and events["mc_id"].dtype.kind == "i"
