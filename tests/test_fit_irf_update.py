"""When a source's IRFs are recomputed during a fit: Gammapy's rule under
``convention="gammapy"``, a function of the position alone otherwise.

The toy dataset has a PSF whose width grows steeply with latitude (0.03-0.1 deg over the map),
so the IRF state a fit keeps changes its answer. Gammapy 2.1 recomputes a source's PSF, edisp
and cutout only when the source has moved more than its evaluation radius + 0.1 deg from the
position of the last update (the reference starts at (0, 0)). The expected answers are
Gammapy 2.1's own fits of this dataset (by hand), and, computed independently of that rule,
fits of a copy of the dataset whose PSF is everywhere the profile at the position the rule
says was kept, with IRFs that follow the source (``irf_update="lattice"``), which no history
can change.
"""

from __future__ import annotations

import numpy as np
import pytest

from gammaxr.fit import FitContext, fit, load_datasets, minimize, npred
from gammaxr.fit.kernels import psf_profile_at
from gammaxr.fit.minimizer import gammapy_scales
from gammaxr.geom.axes import axis_edges
from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.testing import gaussian_psf_profile, toy_map_dataset

CENTER = (83.63, 22.01)
#: starts on either side of the source; Gammapy's rule ends their fits with different PSFs
STARTS = ((83.60, 22.04), (83.66, 21.98))


def _models(lon: float, lat: float) -> Models:
    source = SkyModel(
        PowerLaw(index=2.0, amplitude="3e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=lon, lat_0=lat),
        name="src",
    )
    return Models([source, FoVBackgroundModel("toy")])


def _with_psf(ds, profiles: np.ndarray):
    """``ds`` with PSF profiles ``(lat_irf, energy_true, rad)``, the same along lon_irf."""
    psf = np.broadcast_to(profiles.transpose(1, 2, 0)[:, :, :, None], ds["psf"].shape)
    return ds.assign(psf=(ds["psf"].dims, np.array(psf), ds["psf"].attrs))


def asimov_dataset():
    """Toy dataset (0.02 deg pixels, 0.1 deg IRF pixels; lon steps equal to lat steps, as
    Gammapy needs to convolve) with a latitude-dependent Gaussian PSF and counts (float32)
    equal to the expectation of a point source at the centre."""
    ds = toy_map_dataset(
        center=CENTER,
        width=1.2,
        binsz=0.02,
        energy_edges=(1.0, 3.0, 10.0),
        energy_true_edges=(1.0, 3.0, 10.0),
        irf_binsz=0.1,
        background=0.3,
        psf_sigma=0.1,
    )
    for name, step in (("lon", 0.02), ("lon_irf", 0.1)):
        n = ds.sizes[name]
        lon = CENTER[0] + (np.arange(n) - (n - 1) / 2) * step
        ds = ds.assign_coords({name: (name, lon, ds[name].attrs)})
    sigma = np.clip(0.06 * np.exp(4.0 * (ds["lat_irf"].values - CENTER[1])), 0.03, 0.1)
    rad = axis_edges(ds, "rad")
    ds = _with_psf(ds, np.stack([gaussian_psf_profile(np.full(2, s), rad) for s in sigma]))
    counts = npred(ds, _models(*CENTER)).transpose("energy", "lat", "lon").values
    return ds.assign(counts=(("energy", "lat", "lon"), counts.astype("f4")))


@pytest.fixture(scope="module")
def asimov():
    return asimov_dataset()


def _frozen_at(ds, lon: float, lat: float):
    """``ds`` with the PSF profile at ``(lon, lat)`` everywhere."""
    data = load_datasets(ds)[0]
    profile = psf_profile_at(data.psf, data.lon_irf, data.lat_irf, lon, lat)
    return _with_psf(ds, np.broadcast_to(profile, (ds.sizes["lat_irf"], *profile.shape)))


def _signal(context: FitContext, x: np.ndarray) -> np.ndarray:
    return context.npred(x)[0]["signal"]


def test_gammapy_rule_keeps_the_irfs_of_the_last_update(asimov):
    models = _models(*CENTER)
    context = FitContext(load_datasets(asimov), models, convention="gammapy")
    ((_, evaluator),) = context.terms[0].sources
    assert evaluator.irf_update == "gammapy"
    x = models.get_vector()  # index, amplitude, lon_0, lat_0, norm

    def at(lat, amplitude=3e-11):
        return np.array([2.0, amplitude, CENTER[0], lat, 1.0])

    # (lat, updates so far, reference after the call), worked out by hand from the rule
    steps = [
        (at(22.01), 1, (0.0, 0.0)),  # first call: IRFs here, reference stays (0, 0)
        (at(22.01, 4e-11), 1, (0.0, 0.0)),  # spectral change only
        (at(22.04), 2, (CENTER[0], 22.04)),  # moved, far from (0, 0): update
        (at(22.12), 2, (CENTER[0], 22.04)),  # 0.08 deg from the reference: kept
        (at(22.15), 3, (CENTER[0], 22.15)),  # 0.11 deg: update
        (at(22.06), 3, (CENTER[0], 22.15)),  # 0.09 deg: kept
        (at(22.04), 4, (CENTER[0], 22.04)),  # 0.11 deg: update
    ]
    for x, updates, reference in steps:
        context.stat(x)
        assert evaluator.n_irf_updates == updates
        np.testing.assert_allclose(evaluator.irf_reference, reference, atol=1e-12)
    # now at 22.04 with the IRFs of 22.04; move to 22.12 (kept) and compare with a dataset
    # whose PSF is that of 22.04 everywhere, evaluated afresh
    x = at(22.12)
    kept = _signal(context, x)
    frozen = _frozen_at(asimov, CENTER[0], 22.04)
    expected = _signal(FitContext(load_datasets(frozen), models, convention="gammapy"), x)
    # (equal but for the kernel's pixel geometry, computed at 22.04 or at 22.12: 3e-5)
    np.testing.assert_allclose(kept, expected, rtol=1e-4, atol=1e-9 * expected.max())
    # the PSF at 22.12 is 40 % wider than at 22.04: the kept one makes a visible difference
    fresh = _signal(FitContext(load_datasets(asimov), models, convention="gammapy"), x)
    assert np.abs(fresh - kept).max() > 0.05 * kept.max()


def test_gammapy_rule_reference_starts_at_the_origin():
    """Gammapy's first distance test is against (0, 0): a source starting 0.05 deg from it
    keeps its first IRFs when it moves to 0.09 deg (Gammapy 2.1 by hand: 1, 1, 2 updates)."""
    ds = toy_map_dataset(center=(0.0, 0.0), width=0.6, binsz=0.02, frame="galactic")
    source = SkyModel(
        PowerLaw(), PointSpatialModel(lon_0=0.05, lat_0=0.0, frame="galactic"), name="src"
    )
    models = Models([source])
    context = FitContext(load_datasets(ds), models, convention="gammapy")
    ((_, evaluator),) = context.terms[0].sources
    x = models.get_vector()
    lon = models.free_parameter_names.index("src.spatial.lon_0")
    for value, updates in ((0.05, 1), (0.09, 1), (0.11, 2)):
        x[lon] = value
        context.stat(x)
        assert evaluator.n_irf_updates == updates


def test_default_irfs_follow_the_source(asimov):
    models = _models(*CENTER)
    x = models.get_vector()
    x[3] = 22.12
    for convention in ("gammaxr", "gammapy"):
        irf_update = None if convention == "gammaxr" else "lattice"
        fresh = FitContext(load_datasets(asimov), models, convention, irf_update=irf_update)
        visited = FitContext(load_datasets(asimov), models, convention, irf_update=irf_update)
        for lat in (22.01, 22.04, 22.10):
            y = x.copy()
            y[3] = lat
            visited.stat(y)
        assert visited.stat(x) == fresh.stat(x)


def _gammapy_fit(ds, models: Models, **context_kwargs):
    """Migrad + Hesse on ``ds`` with Gammapy's conditioning, returning the result and the
    source's evaluator."""
    context = FitContext(load_datasets(ds), models, convention="gammapy", **context_kwargs)
    x0 = models.get_vector()
    scales, steps = gammapy_scales(x0, [p.error for _, p in models.free_parameters])
    result = minimize(context, x0, bounds=models.get_bounds(), scales=scales, steps=steps)
    assert result.success, result.message
    return result, context.terms[0].sources[0][1]


#: Gammapy 2.1 on this dataset (written by ``to_gammapy``, fitted by hand in a separate
#: environment with ``Fit().run``) from each of STARTS: fitted amplitude (cm-2 s-1 TeV-1)
#: and index, and the position of its last IRF update (of 7)
GAMMAPY_FITS = (
    {"amplitude": 3.196511e-11, "index": 2.015686, "irf_position": (83.60, 22.078004498887513)},
    {"amplitude": 3.002258e-11, "index": 1.999746, "irf_position": (83.66, 22.01839979763026)},
)


def test_gammapy_fit_depends_on_the_start_as_gammapys_does(asimov):
    default = [fit(asimov, _models(*start)) for start in STARTS]
    gammapy = [fit(asimov, _models(*start), convention="gammapy") for start in STARTS]
    amplitude, index = "src.spectral.amplitude", "src.spectral.index"
    # the default likelihood is a function of the parameters: both starts find the truth
    for result in default:
        assert result.success
        assert result.value(amplitude) == pytest.approx(3e-11, rel=1e-3)
    assert default[0].total_stat == pytest.approx(default[1].total_stat, abs=1e-4)
    # Gammapy's rule: the fits keep different PSFs, so the amplitudes differ by 0.9 error,
    # and each is Gammapy's own
    error = gammapy[0].error(amplitude)
    assert abs(gammapy[0].value(amplitude) - gammapy[1].value(amplitude)) > 0.5 * error
    for result, reference in zip(gammapy, GAMMAPY_FITS, strict=True):
        for name, key in ((amplitude, "amplitude"), (index, "index")):
            assert abs(result.value(name) - reference[key]) < 0.01 * result.error(name)
    for start, result, reference in zip(STARTS, gammapy, GAMMAPY_FITS, strict=True):
        models = _models(*start)
        path, evaluator = _gammapy_fit(asimov, models)
        np.testing.assert_allclose(path.x, result.models.get_vector(), rtol=1e-12)
        lon, lat = evaluator.irf_reference  # where the last update put the IRFs
        np.testing.assert_allclose((lon, lat), reference["irf_position"], atol=1e-6)
        # the same fit with that PSF everywhere and IRFs following the source (another
        # Migrad path to the same minimum: equal within Migrad's tolerance, EDM < 2e-4)
        expected, _ = _gammapy_fit(_frozen_at(asimov, lon, lat), models, irf_update="lattice")
        errors = np.sqrt(np.diag(expected.covariance))
        np.testing.assert_array_less(np.abs(path.x - expected.x), 0.03 * errors)
        np.testing.assert_allclose(path.errors, errors, rtol=0.01)
