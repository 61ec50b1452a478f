"""PSF: 3-Gauss formula and tables, radial profiles, containment fraction and radius."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

from gammaxr.geom.axes import axis_coords
from gammaxr.io.irf_fits import read_irf_hdu
from gammaxr.irf import (
    RAD_EDGES_DEFAULT,
    evaluate_psf_3gauss,
    profile_containment,
    profile_containment_radius,
    psf_3gauss_containment,
    psf_3gauss_to_table,
    psf_containment,
    psf_containment_radius,
    psf_profile,
    psf_profile_map,
)

R68_FACTOR = np.sqrt(-2 * np.log(1 - 0.68))  # r68 / sigma of a 2D Gaussian
SR_PER_DEG2 = np.deg2rad(1.0) ** 2
CRAB_RUNS = (23523, 23526, 23559, 23592)


def _params(sigma_1, ampl_2=0.0, sigma_2=0.0, ampl_3=0.0, sigma_3=0.0, scale=1.0):
    """psf_3gauss parameter Dataset over 5 true-energy bins x 3 offset bins."""
    coords = axis_coords("energy_true", np.geomspace(0.1, 100, 6), "TeV", lohi=True)
    coords |= axis_coords("offset", np.array([0.0, 1.0, 2.0, 3.0]), "deg", lohi=True)
    shape = (5, 3)
    values = {
        "scale": scale,
        "sigma_1": sigma_1,
        "ampl_2": ampl_2,
        "sigma_2": sigma_2,
        "ampl_3": ampl_3,
        "sigma_3": sigma_3,
    }
    data = {
        k: xr.DataArray(
            np.broadcast_to(v, shape).astype(float),
            dims=("energy_true", "offset"),
            attrs={"units": "deg" if k.startswith("sigma") else ""},
        )
        for k, v in values.items()
    }
    return xr.Dataset(data, coords=coords, attrs={"irf_class": "psf_3gauss", "source": "test"})


def test_gaussian_r68_analytic_from_formula_and_from_table():
    sigma = np.linspace(0.05, 0.2, 5)[:, None] * np.ones((1, 3))
    params = _params(sigma)
    e = params["energy_true"].values[:, None]
    o = params["offset"].values[None, :]
    r68 = sigma * R68_FACTOR
    np.testing.assert_allclose(psf_3gauss_containment(params, e, o, r68), 0.68, rtol=1e-12)
    # through a table on fine rad bins and the bin-wise containment integral
    table = psf_3gauss_to_table(params, rad_edges=np.linspace(0, 1.5, 751))
    radius = psf_containment_radius(table, e, o, 0.68)
    np.testing.assert_allclose(radius, r68, rtol=2e-3)
    # Gammapy's default rad binning for PSF maps (0.01 deg): still within 1 %
    coarse = psf_3gauss_to_table(params)
    np.testing.assert_allclose(psf_containment_radius(coarse, e, o, 0.68), r68, rtol=1e-2)


def test_three_gauss_normalisation_and_containment():
    params = _params(0.05, ampl_2=0.3, sigma_2=0.12, ampl_3=0.02, sigma_3=0.4, scale=7.0)
    rad = np.linspace(0, 3.0, 30001)
    density = evaluate_psf_3gauss(params, 1.0, 0.5, rad)
    # 2 pi integral of r * dP/dOmega over the plane is one (small angle)
    integrand = 2 * np.pi * rad * density * SR_PER_DEG2
    cumulative = np.concatenate(
        [[0], np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * np.diff(rad))]
    )
    assert cumulative[-1] == pytest.approx(1.0, abs=1e-6)
    analytic = psf_3gauss_containment(params, 1.0, 0.5, rad)
    np.testing.assert_allclose(analytic, cumulative, atol=1e-6)
    # weights A_i sigma_i^2 / sum, independent of SCALE
    w = np.array([0.05**2, 0.3 * 0.12**2, 0.02 * 0.4**2])
    w /= w.sum()
    assert density[0] == pytest.approx(
        np.sum(w / (2 * np.pi * np.array([0.05, 0.12, 0.4]) ** 2)) / SR_PER_DEG2
    )


def test_3gauss_parameters_interpolated_in_log_energy():
    e_centres = np.sqrt(np.geomspace(0.1, 100, 6)[1:] * np.geomspace(0.1, 100, 6)[:-1])
    sigma = 0.1 + 0.02 * np.log(e_centres)[:, None] * np.ones((1, 3))
    params = _params(sigma)
    e = np.array([0.3, 2.0, 50.0])
    r68 = (0.1 + 0.02 * np.log(e)) * R68_FACTOR
    np.testing.assert_allclose(psf_3gauss_containment(params, e, 1.2, r68), 0.68, rtol=1e-10)
    # zero scale everywhere: the PSF is zero, not NaN
    empty = _params(0.1, scale=0.0)
    assert evaluate_psf_3gauss(empty, 1.0, 0.5, 0.0) == 0


def test_profile_containment_and_radius_are_inverse():
    params = _params(0.08, ampl_2=0.5, sigma_2=0.2)
    table = psf_3gauss_to_table(params)
    e = np.array([0.5, 5.0])[:, None]
    o = np.array([0.3, 1.7])[None, :]
    profile = psf_profile(table, e, o, RAD_EDGES_DEFAULT)
    assert profile.shape == (2, 2, 66)
    area = np.pi * np.diff(RAD_EDGES_DEFAULT**2) * SR_PER_DEG2
    np.testing.assert_allclose(np.sum(profile * area, axis=-1), 1.0, rtol=1e-12)
    fractions = np.array([0.1, 0.39, 0.68, 0.95])[:, None, None]
    radius = profile_containment_radius(profile, fractions, RAD_EDGES_DEFAULT)
    assert radius.shape == (4, 2, 2)
    assert np.all(np.diff(radius, axis=0) > 0)
    back = profile_containment(profile, radius, RAD_EDGES_DEFAULT)
    np.testing.assert_allclose(back, np.broadcast_to(fractions, back.shape), rtol=1e-12)
    # the table functions agree with the profile functions
    np.testing.assert_allclose(
        psf_containment_radius(table, e, o, 0.68, rad_edges=RAD_EDGES_DEFAULT), radius[2]
    )
    np.testing.assert_allclose(
        psf_containment(table, e, o, radius[2], rad_edges=RAD_EDGES_DEFAULT), 0.68
    )
    # limits: 0 at the centre, 1 beyond the last edge, NaN if a fraction is never reached
    assert profile_containment(profile[0, 0], 0.0, RAD_EDGES_DEFAULT) == 0
    assert profile_containment(profile[0, 0], 5.0, RAD_EDGES_DEFAULT) == pytest.approx(1.0)
    assert np.isnan(profile_containment_radius(0.5 * profile[0, 0], 0.68, RAD_EDGES_DEFAULT))
    assert np.isnan(profile_containment_radius(0 * profile[0, 0], 0.68, RAD_EDGES_DEFAULT))


def test_dataarray_profiles_keep_dims_and_stay_lazy(raise_on_compute):
    table = psf_3gauss_to_table(_params(0.1))
    offset = xr.DataArray(
        da.from_array(np.linspace(0, 2, 12).reshape(3, 4), chunks=(3, 2)), dims=("lat", "lon")
    )
    energy = xr.DataArray([1.0, 10.0], dims="energy_true")
    profile = psf_profile(table, energy, offset)  # builds the graph only
    assert set(profile.dims) == {"energy_true", "lat", "lon", "rad"}
    assert "rad_lo" in profile.coords
    radius = profile_containment_radius(profile, 0.68)  # rad edges from the coordinates
    assert isinstance(radius.data, da.Array)
    values = radius.compute(scheduler="sync")
    assert values.attrs["units"] == "deg"
    np.testing.assert_allclose(values, 0.1 * R68_FACTOR, rtol=1e-2)


@pytest.mark.hess
@pytest.mark.parametrize("obs_id", CRAB_RUNS)
def test_hess_r68_at_crab_map_centre_matches_gammapy(hess_dir, reference_dir, obs_id):
    """Gammapy 2.1 takes r68 from a PSF map on rad bins 0-0.66 deg (0.01 deg), normalised."""
    ref = np.load(reference_dir / "crab_runs.npz")
    obs = Table.read(hess_dir / "obs-index.fits.gz")
    row = obs[obs["OBS_ID"] == obs_id][0]
    pointing = SkyCoord(row["RA_PNT"], row["DEC_PNT"], unit="deg")
    offset = SkyCoord(83.633, 22.014, unit="deg").separation(pointing).deg
    path = hess_dir / "data" / f"hess_dl3_dr1_obs_id_{obs_id:06d}.fits.gz"
    with fits.open(path) as hdul:
        psf = read_irf_hdu(hdul["PSF"], "psf_table", str(path))
    edges = ref["energy_true_edges"]
    centres = np.sqrt(edges[1:] * edges[:-1])
    r68 = psf_containment_radius(psf, centres, offset, 0.68, rad_edges=RAD_EDGES_DEFAULT)
    np.testing.assert_allclose(r68, ref[f"psf_r68_{obs_id}"], rtol=0.02)


def test_profile_map_equals_profiles_pixel_by_pixel():
    """The map layout (energy, rad, pixels), combined from the offset nodes, equals the
    profiles computed for every pixel, including negative table values (clipped), offsets
    beyond the valid range (zero) and energies outside the table."""
    sigma = np.linspace(0.05, 0.2, 15).reshape(5, 3)
    table = psf_3gauss_to_table(_params(sigma), rad_edges=np.linspace(0, 1.0, 41))
    rng = np.random.default_rng(4)
    table = table.copy(data=table.values * rng.uniform(0.8, 1.2, table.shape))
    table.values[:, :, -8:] -= 0.5 * table.values[:, :, -8:].max()  # negative tails
    offsets = rng.uniform(0, 3.5, (7, 9))
    energies = np.geomspace(0.05, 200, 8)
    got = psf_profile_map(table, energies, offsets, RAD_EDGES_DEFAULT)
    expected = psf_profile(table, energies[:, None, None], offsets[None], RAD_EDGES_DEFAULT)
    assert got.shape == (8, RAD_EDGES_DEFAULT.size - 1, 7, 9)
    np.testing.assert_allclose(got, np.moveaxis(expected, -1, 1), rtol=1e-10, atol=1e-300)
    assert got[:, :, offsets > 3.0].max() == 0 and got[0].max() == 0  # beyond range
    single = psf_profile_map(table, energies, offsets, RAD_EDGES_DEFAULT, dtype=np.float32)
    assert single.dtype == np.float32
    np.testing.assert_array_equal(single, got.astype(np.float32))


def test_normalised_profiles_and_zero_ones():
    """Each profile divided by its integral over the rad bins, into a new array, in place or
    into float32; a profile whose integral is not positive becomes zero (with or without
    such profiles around)."""
    from gammaxr.irf.psf import _normalised

    rng = np.random.default_rng(2)
    area = rng.uniform(0.5, 2.0, 6)
    values = rng.uniform(0.0, 1.0, (3, 6, 4))
    for zero_somewhere in (False, True):
        if zero_somewhere:
            values[1, :, 2] = 0.0
        total = np.einsum("abc,b->ac", values, area)[:, None, :]
        expected = np.divide(values, total, out=np.zeros_like(values), where=total > 0)
        copy = _normalised(values, area, 1)
        kept = values.copy()
        inplace = _normalised(kept, area, 1, out=kept)
        assert inplace is kept
        single = _normalised(values, area, 1, out=np.empty(values.shape, np.float32))
        for got in (copy, inplace):
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_allclose(np.einsum("abc,b->ac", got, area)[0], 1.0, rtol=1e-14)
        assert single.dtype == np.float32
        np.testing.assert_array_equal(single, expected.astype(np.float32))
        assert np.all(copy[1, :, 2] == 0) == zero_somewhere
        assert np.all(np.isfinite(copy))
