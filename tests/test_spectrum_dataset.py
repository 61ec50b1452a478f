"""1D on/off spectrum datasets: toy runs with known truth, laziness, stacking, Crab runs."""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
import pytest
import regions as rg
import xarray as xr
from astropy.coordinates import SkyCoord
from scipy.stats import norm

from gammaxr.geom import SkyGrid, exclusion_mask, parse_regions
from gammaxr.geom.axes import axis_coords
from gammaxr.irf import edisp_kernel
from gammaxr.reduce.reflected import ReflectedRegionsConfig, regions_contain
from gammaxr.reduce.runs import RunReductionError, failed_runs
from gammaxr.reduce.spectrum import SpectrumSpec, spectrum_dataset, spectrum_runs
from gammaxr.reduce.stack import stack_runs

E_RECO = np.geomspace(1.0, 10.0, 7)
E_TRUE = np.geomspace(0.5, 20.0, 13)
LIVETIME = 1500.0
AEFF_0 = 1.0e5  # m2 at the pointing, falling linearly to zero at 4 deg
SIGMA_PSF = 0.1  # deg, one Gaussian
FOV = 3.0  # background events up to this offset (deg)
ACCEPTANCE_WIDTH = 1.0  # deg, Gaussian fall-off of the background with offset


# --------------------------------------------------------------------------- toy runs


def _aeff() -> xr.DataArray:
    coords = axis_coords("energy_true", np.geomspace(0.1, 100, 13), "TeV", lohi=True)
    nodes = np.linspace(0.0, 3.5, 8)
    coords |= axis_coords("offset", lo=nodes, hi=nodes, unit="deg", lohi=True)
    data = AEFF_0 * (1 - nodes / 4.0)[None, :] * np.ones((12, 1))
    return xr.DataArray(data, dims=("energy_true", "offset"), coords=coords, attrs={"units": "m2"})


def _edisp() -> xr.DataArray:
    coords = axis_coords("energy_true", np.geomspace(0.1, 100, 16), "TeV", lohi=True)
    coords |= axis_coords("migra", np.linspace(0.2, 3.0, 281), "", lohi=True)
    coords |= axis_coords("offset", np.array([0.0, 1.0, 2.0, 3.0, 4.0]), "deg", lohi=True)
    density = norm.pdf(coords["migra"].values, 1.0, 0.1)
    data = np.broadcast_to(density[None, :, None], (15, 280, 4)).copy()
    return xr.DataArray(
        data, dims=("energy_true", "migra", "offset"), coords=coords, attrs={"units": ""}
    )


def _psf() -> xr.Dataset:
    coords = axis_coords("energy_true", np.geomspace(0.1, 100, 6), "TeV", lohi=True)
    coords |= axis_coords("offset", np.array([0.0, 2.0, 4.0]), "deg", lohi=True)
    values = {"scale": 1.0, "sigma_1": SIGMA_PSF, "ampl_2": 0.0, "sigma_2": 0.0}
    values |= {"ampl_3": 0.0, "sigma_3": 0.0}
    data = {
        k: xr.DataArray(
            np.full((5, 2), v),
            dims=("energy_true", "offset"),
            attrs={"units": "deg" if k.startswith("sigma") else ""},
        )
        for k, v in values.items()
    }
    return xr.Dataset(data, coords=coords, attrs={"irf_class": "psf_3gauss"})


def _bkg() -> xr.DataArray:
    coords = axis_coords("energy", np.geomspace(0.1, 100, 19), "TeV", lohi=True)
    coords |= axis_coords("offset", np.linspace(0, 4, 9), "deg", lohi=True)
    e = coords["energy"].values[:, None]
    rate = 1e-5 * e**-2.7 * np.ones((1, 8))  # flat in the field of view
    return xr.DataArray(
        rate, dims=("energy", "offset"), coords=coords, attrs={"units": "s-1 MeV-1 sr-1"}
    )


def _background_events(pointing: SkyCoord, n: int, rng) -> xr.Dataset:
    """Background events: radially symmetric about the pointing with a Gaussian fall-off
    (sigma ACCEPTANCE_WIDTH, cut at FOV deg) like a camera acceptance, power-law energies."""
    cut = 1 - np.exp(-0.5 * (FOV / ACCEPTANCE_WIDTH) ** 2)
    theta = ACCEPTANCE_WIDTH * np.sqrt(-2 * np.log1p(-cut * rng.uniform(size=n)))
    phi = rng.uniform(0, 360, n)
    pos = pointing.directional_offset_by(phi * u.deg, theta * u.deg)
    energy = 0.8 * (1 - rng.uniform(size=n)) ** (-1 / 1.5)  # power law index 2.5 above 0.8
    time = rng.uniform(0.0, LIVETIME, n)
    time[:50] = LIVETIME + 100.0  # outside the GTI: never counted
    return xr.Dataset(
        {
            "ra": ("event", pos.ra.deg),
            "dec": ("event", pos.dec.deg),
            "energy": ("event", energy),
            "time": ("event", time),
        }
    )


@dataclass
class ToyRun:
    """What the spectrum maker reads from an observation (duck-typed)."""

    obs_id: int
    pointing: SkyCoord
    events: xr.Dataset
    broken: bool = False
    threshold: float = 0.1  # TeV, the aeff LO_THRES (safe range for "aeff-default")

    gti = xr.Dataset({"start": ("gti", [0.0]), "stop": ("gti", [LIVETIME])})
    livetime = LIVETIME
    ontime = LIVETIME
    deadtime_fraction = 0.0
    zenith = 20.0
    tstart = 0.0
    tstop = LIVETIME

    def read(self, hdus=None):
        if self.broken:
            raise OSError(f"obs_id {self.obs_id}: events file is unreadable")
        return self

    aeff = property(
        lambda self: _aeff().assign_attrs(lo_threshold=self.threshold, hi_threshold=1e3)
    )
    edisp = property(lambda self: _edisp())
    psf = property(lambda self: _psf())
    bkg = property(lambda self: _bkg())


ON = rg.CircleSkyRegion(SkyCoord(83.6, 22.0, unit="deg"), 0.25 * u.deg)


def _run(obs_id: int, pa: float, offset: float, n: int = 150_000, seed: int = 0) -> ToyRun:
    pointing = ON.center.directional_offset_by(pa * u.deg, offset * u.deg)
    rng = np.random.default_rng(seed)
    return ToyRun(obs_id, pointing, _background_events(pointing, n, rng))


@pytest.fixture(scope="module")
def runs():
    return [_run(1, 0.0, 0.7, seed=1), _run(2, 135.0, 1.5, seed=2), _run(3, 250.0, 1.0, seed=3)]


@pytest.fixture(scope="module")
def spec():
    return SpectrumSpec(ON, E_RECO, E_TRUE, maps=("exposure", "edisp", "background"))


@pytest.fixture(scope="module")
def per_run(runs, spec):
    return [spectrum_dataset(r, spec) for r in runs]


# --------------------------------------------------------------------------- toy truth


def test_counts_are_events_in_regions(runs, per_run):
    for run, ds in zip(runs, per_run, strict=True):
        ev = run.events.isel(event=slice(50, None))  # those in the GTI
        sep = SkyCoord(ev.ra.values, ev.dec.values, unit="deg").separation(ON.center).deg
        e = ev.energy.values
        in_range = (e >= E_RECO[0]) & (e < E_RECO[-1])
        assert ds.counts.sum() == np.sum((sep < 0.25) & in_range)
        offs = parse_regions(ds.attrs["off_regions"])
        assert len(offs) == ds.attrs["n_off_regions"] > 0
        in_off = regions_contain(offs, ev.ra.values, ev.dec.values).any(axis=0)
        np.testing.assert_array_equal(ds.counts_off, np.histogram(e[in_off], E_RECO)[0])
        np.testing.assert_array_equal(ds.acceptance, 1.0)
        np.testing.assert_array_equal(ds.acceptance_off, len(offs))


def test_background_alpha_scaled_off_equals_on(per_run):
    """No source, background falling with offset: alpha * n_off estimates n_on within
    statistics (run by run and stacked) only if the off regions sit at the on offset."""
    pulls = []
    for ds in per_run:
        alpha = 1 / ds.attrs["n_off_regions"]
        n_on, n_off = float(ds.counts.sum()), float(ds.counts_off.sum())
        pulls.append((n_on - alpha * n_off) / np.sqrt(n_on + alpha**2 * n_off))
        assert n_on > 200
    assert np.all(np.abs(pulls) < 4), pulls
    stacked = stack_runs(xr.concat(per_run, "obs_id", coords="minimal", compat="override"))
    alpha = stacked.acceptance / stacked.acceptance_off
    excess = stacked.counts - alpha * stacked.counts_off
    err = np.sqrt(stacked.counts + alpha**2 * stacked.counts_off)
    chi2 = float(((excess / err) ** 2).sum())
    assert chi2 < 25  # 6 bins: a chi2 this large has p ~ 3e-4
    assert abs(float(excess.sum() / np.sqrt((err**2).sum()))) < 4


def test_exposure_edisp_at_region_centre(runs, per_run):
    centres = np.sqrt(E_TRUE[1:] * E_TRUE[:-1])
    for run, ds in zip(runs, per_run, strict=True):
        offset = ON.center.separation(run.pointing).deg
        assert ds.attrs["offset_deg"] == pytest.approx(offset)
        # aeff is linear in offset and flat in energy: exact
        np.testing.assert_allclose(ds.exposure, AEFF_0 * (1 - offset / 4) * LIVETIME, rtol=1e-12)
        np.testing.assert_allclose(ds.exposure_irf, ds.exposure)
        assert ds.edisp.dims == ("energy_true", "energy")
        kernel = edisp_kernel(_edisp(), offset, E_TRUE, E_RECO)
        np.testing.assert_allclose(ds.edisp, kernel)
        # a 10 % Gaussian migration: true bins well inside 1-10 TeV are fully reconstructed
        inside = (centres > 1.5) & (centres < 6.5)
        np.testing.assert_allclose(ds.edisp.sum("energy")[inside], 1.0, atol=1e-3)
        assert ds.exposure.attrs["units"] == "m2 s"


def test_containment_correction_gaussian_psf(runs):
    spec = SpectrumSpec(ON, E_RECO, E_TRUE, containment_correction=True)
    ds = spectrum_dataset(runs[0], spec)
    fraction = 1 - np.exp(-0.5 * (0.25 / SIGMA_PSF) ** 2)
    np.testing.assert_allclose(ds.exposure / ds.exposure_irf, fraction, rtol=1e-10)
    assert ds.attrs["containment_correction"] == 1
    with pytest.raises(TypeError, match="circular"):
        SpectrumSpec(
            rg.RectangleSkyRegion(ON.center, 0.3 * u.deg, 0.2 * u.deg),
            E_RECO,
            E_TRUE,
            containment_correction=True,
        )


def test_background_model_and_background_acceptance(runs, per_run):
    spec = SpectrumSpec(ON, E_RECO, E_TRUE, maps=("background",), acceptance="background")
    ds = spectrum_dataset(runs[1], spec)
    # flat background model and equal circles: alpha = 1 / n_off
    alpha = ds.acceptance / ds.acceptance_off
    np.testing.assert_allclose(alpha, 1 / ds.attrs["n_off_regions"], rtol=1e-3)
    # the model counts in the on region: rate x solid angle x time x energy integral
    area = 2 * np.pi * (1 - np.cos(np.radians(0.25)))
    lo, hi = E_RECO[:-1], E_RECO[1:]
    integral = 1e-5 * 1e6 * (lo**-1.7 - hi**-1.7) / 1.7  # MeV-1 -> TeV-1
    np.testing.assert_allclose(ds.background, integral * area * LIVETIME, rtol=2e-3)
    np.testing.assert_allclose(per_run[1].background, ds.background)
    assert ds.attrs["acceptance_method"] == "background"


def test_safe_mask_and_attrs(runs):
    spec = SpectrumSpec(ON, E_RECO, E_TRUE, safe_mask=("offset-max",), offset_max=1.2)
    near, far = spectrum_dataset(runs[0], spec), spectrum_dataset(runs[1], spec)
    assert near.mask_safe.all() and not far.mask_safe.any()
    on = parse_regions(near.attrs["on_region"])[0]
    assert on.center.separation(ON.center).deg < 1e-9
    assert on.radius.to_value(u.deg) == pytest.approx(0.25)
    assert near.attrs["obs_id"] == 1 and near.attrs["livetime"] == LIVETIME
    assert near.mask_safe.dtype == bool


def test_no_off_region_masks_the_run(runs):
    everything = exclusion_mask(
        SkyGrid.from_center(ON.center, 5, 0.05), rg.CircleSkyRegion(ON.center, 3 * u.deg)
    )
    spec = SpectrumSpec(ON, E_RECO, E_TRUE, exclusion=everything)
    ds = spectrum_dataset(runs[0], spec)
    assert ds.attrs["n_off_regions"] == 0 and ds.attrs["off_regions"] == ""
    assert not ds.mask_safe.any()
    np.testing.assert_array_equal(ds.counts_off, 0)


def test_max_region_number_changes_alpha(runs):
    spec = SpectrumSpec(ON, E_RECO, E_TRUE, finder=ReflectedRegionsConfig(max_region_number=2))
    ds = spectrum_dataset(runs[1], spec)
    np.testing.assert_array_equal(ds.acceptance_off, 2.0)
    assert ds.attrs["reflected_max_region_number"] == 2


def test_spec_validation():
    with pytest.raises(ValueError, match="maps"):
        SpectrumSpec(ON, E_RECO, E_TRUE, maps=("psf",))
    with pytest.raises(ValueError, match="acceptance"):
        SpectrumSpec(ON, E_RECO, E_TRUE, acceptance="ring")
    with pytest.raises(ValueError, match="energy_edges"):
        SpectrumSpec(ON, E_RECO[::-1], E_TRUE)
    with pytest.raises(ValueError, match="safe-mask"):
        SpectrumSpec(ON, E_RECO, E_TRUE, safe_mask=("nope",))
    with pytest.raises(TypeError, match="exclusion"):
        SpectrumSpec(ON, E_RECO, E_TRUE, exclusion=np.ones((3, 3), bool))


# --------------------------------------------------------------------------- many runs


def test_lazy_runs_match_eager_and_stack(runs, spec, per_run, raise_on_compute):
    ds = spectrum_runs(runs, spec)  # graph construction computes nothing
    assert ds.counts.dims == ("obs_id", "energy")
    assert ds.counts.data.npartitions == len(runs)
    np.testing.assert_array_equal(ds.n_off_regions, [p.attrs["n_off_regions"] for p in per_run])
    assert ds.attrs["on_region"] == spec.on_region
    stacked = stack_runs(ds)  # stays lazy
    assert stacked.counts.chunks is not None


def test_lazy_runs_values_and_stacking_rules(runs, spec, per_run):
    ds = spectrum_runs(runs, spec).compute(scheduler="threads")
    for k, eager in enumerate(per_run):
        run = ds.isel(obs_id=k)
        for name in eager.data_vars:
            np.testing.assert_array_equal(run[name].values, eager[name].values, err_msg=name)
        assert str(run.off_regions.values) == eager.attrs["off_regions"]
    assert failed_runs(ds) == {}
    st = stack_runs(ds)
    np.testing.assert_array_equal(st.counts, ds.counts.sum("obs_id"))
    np.testing.assert_array_equal(st.counts_off, ds.counts_off.sum("obs_id"))
    # alpha of the stack: sum(alpha_i n_off_i) / sum(n_off_i)
    alpha_i = ds.acceptance / ds.acceptance_off
    expected = (alpha_i * ds.counts_off).sum("obs_id") / ds.counts_off.sum("obs_id")
    np.testing.assert_allclose(st.acceptance / st.acceptance_off, expected, rtol=1e-12)
    np.testing.assert_allclose(st.exposure, ds.exposure.sum("obs_id"))
    weights = ds.exposure_irf / ds.exposure_irf.sum("obs_id")
    np.testing.assert_allclose(st.edisp, (ds.edisp * weights).sum("obs_id"), atol=1e-12)


def test_lazy_runs_graph_is_blockwise_and_batches_give_the_same_values(runs, spec):
    graphs = [spectrum_runs(runs[:n], spec).counts.data.__dask_graph__() for n in (1, len(runs))]
    # the runs, their tasks, the counts picked from them: three layers whatever the runs
    assert [len(g.layers) for g in graphs] == [3, 3]
    assert [len(dict(g)) for g in graphs] == [3, 3 * len(runs)]
    one_per_task = spectrum_runs(runs, spec).compute(scheduler="sync")
    batched = spectrum_runs(runs, spec, runs_per_task=2)
    assert batched.counts.data.chunks[0] == (2,) * (len(runs) // 2) + (len(runs) % 2,) * (
        len(runs) % 2
    )
    xr.testing.assert_identical(batched.compute(scheduler="sync"), one_per_task)


def test_stacked_edisp_predicts_the_safe_counts_of_the_runs(runs):
    """Runs with different safe energy ranges: the stacked exposure x kernel predicts the
    sum over runs of their predictions in their safe bins (Gammapy's stacking rule)."""
    spec = SpectrumSpec(ON, E_RECO, E_TRUE, safe_mask=("aeff-default",))
    low = ToyRun(11, runs[0].pointing, runs[0].events, threshold=1.0)
    high = ToyRun(12, runs[1].pointing, runs[1].events, threshold=2.2)
    ds = spectrum_runs([low, high], spec).compute()
    assert ds.mask_safe.sel(obs_id=11).all() and not ds.mask_safe.sel(obs_id=12).all()
    st = stack_runs(ds)
    flux = xr.DataArray(np.geomspace(1, 1e-3, E_TRUE.size - 1), dims="energy_true")
    per_run = (ds.exposure * flux * ds.edisp).sum("energy_true").where(ds.mask_safe, 0)
    stacked = (st.exposure * flux * st.edisp).sum("energy_true")
    np.testing.assert_allclose(stacked, per_run.sum("obs_id"), rtol=1e-12)
    np.testing.assert_array_equal(st.mask_safe, True)


def test_regions_accessor_zarr_round_trip_and_pickle(runs, spec, per_run, tmp_path):
    import pickle

    import gammaxr

    ds = spectrum_runs(runs[:2], spec)
    regs = ds.gamma.spectrum_regions(obs_id=2)
    assert regs["on"].center.separation(ON.center).deg < 1e-9
    assert len(regs["off"]) == per_run[1].attrs["n_off_regions"]
    one = per_run[0].gamma.spectrum_regions()
    assert len(one["off"]) == per_run[0].attrs["n_off_regions"]
    with pytest.raises(ValueError, match="obs_id"):
        ds.gamma.spectrum_regions()
    ds.gamma.to_zarr(tmp_path / "spec.zarr")
    back = gammaxr.open_dataset(tmp_path / "spec.zarr").compute()
    xr.testing.assert_identical(back, ds.compute())
    assert len(back.gamma.spectrum_regions(obs_id=1)["off"]) == per_run[0].attrs["n_off_regions"]
    assert pickle.loads(pickle.dumps(spec)) == spec  # tasks ship to worker processes


def test_failing_run_skipped_or_raised(spec):
    good = _run(7, 30.0, 1.0, n=5000)
    bad = ToyRun(8, good.pointing, good.events, broken=True)
    with pytest.raises(RunReductionError, match="obs_id 8"):
        spectrum_runs([good, bad], spec).compute()
    with pytest.warns(RuntimeWarning, match="obs_id 8 skipped"):
        ds = spectrum_runs([good, bad], spec, on_error="skip").compute()
    assert list(failed_runs(ds)) == [8]
    assert not ds.mask_safe.sel(obs_id=8).any()
    st = stack_runs(ds)
    np.testing.assert_array_equal(st.counts, ds.counts.sel(obs_id=7))
    with pytest.raises(ValueError, match="no observations"):
        spectrum_runs([], spec)


# --------------------------------------------------------------------------- H.E.S.S.


@pytest.mark.hess
def test_crab_reflected_regions_match_gammapy(hess_dir):
    """DESIGN.md reference (Gammapy 2.1 ReflectedRegionsBackgroundMaker): per run
    (n_on, n_off, number of off regions) summed over 1-10 TeV in 11 log bins."""
    from gammaxr.data import open_datastore

    store = open_datastore(hess_dir)
    on = rg.CircleSkyRegion(SkyCoord(83.63, 22.01, unit="deg"), 0.2 * u.deg)
    excl = exclusion_mask(SkyGrid.from_center((83.63, 22.01), 5, 0.05), on)
    spec = SpectrumSpec(
        on,
        np.geomspace(1, 10, 12),
        np.geomspace(0.3, 10, 32),
        exclusion=excl,
        safe_mask=("aeff-max",),
    )
    expected = {23523: (137, 131, 6), 23592: (111, 287, 21), 23526: (136, 105, 6)}
    expected[23559] = (99, 218, 22)
    ds = spectrum_runs(store.observations(list(expected)), spec).compute()
    for obs_id, (n_on, n_off, n_reg) in expected.items():
        run = ds.sel(obs_id=obs_id)
        assert int(run.counts.sum()) == n_on, obs_id
        assert int(run.counts_off.sum()) == n_off, obs_id
        assert int(run.n_off_regions) == n_reg, obs_id
        np.testing.assert_array_equal(run.acceptance_off, n_reg)
        assert run.mask_safe.all()
    st = ds.gamma.stack()
    alpha = st.acceptance / st.acceptance_off
    n_off = sum(v[1] for v in expected.values())
    bkg = sum(v[1] / v[2] for v in expected.values())
    assert float((alpha * st.counts_off).sum()) == pytest.approx(bkg, rel=1e-12)
    assert float(st.counts_off.sum()) == n_off
