"""Energy dispersion: migration density, range policy and kernels."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from scipy.stats import norm

from gammaxr.geom.axes import axis_coords
from gammaxr.io.irf_fits import read_irf_hdu
from gammaxr.irf import edisp_kernel, evaluate_edisp

CRAB_RUNS = (23523, 23526, 23559, 23592)
SIGMA = 0.1
MIGRA_EDGES = np.linspace(0.2, 3.0, 561)  # 0.005 wide


def _gauss_edisp() -> xr.DataArray:
    """Gaussian migration N(1, SIGMA), the same at every energy and offset."""
    coords = axis_coords("energy_true", np.geomspace(0.1, 100, 16), "TeV", lohi=True)
    coords |= axis_coords("migra", MIGRA_EDGES, "", lohi=True)
    coords |= axis_coords("offset", np.array([0.0, 1.0, 2.0, 3.0]), "deg", lohi=True)
    density = norm.pdf(coords["migra"].values, 1.0, SIGMA)
    data = np.broadcast_to(density[None, :, None], (15, 560, 3)).copy()
    return xr.DataArray(
        data, dims=("energy_true", "migra", "offset"), coords=coords, attrs={"units": ""}
    )


def test_gaussian_kernel_matches_analytic():
    edisp = _gauss_edisp()
    e_true = np.geomspace(0.5, 20, 11)
    e_reco = np.geomspace(0.3, 40, 13)
    kernel = edisp_kernel(edisp, 1.2, e_true, e_reco, threshold=0)
    assert kernel.shape == (10, 12)
    centres = np.sqrt(e_true[1:] * e_true[:-1])[:, None]
    cdf = norm.cdf(e_reco[None, :] / centres, 1.0, SIGMA)
    expected = np.diff(cdf, axis=-1)
    np.testing.assert_allclose(kernel, expected, atol=2e-4)
    # every true bin is fully contained in the reco range: rows sum to one
    np.testing.assert_allclose(kernel.sum(axis=-1), 1.0, rtol=1e-6)
    # a narrow reco range loses the tails, and small elements are cut by the threshold
    narrow = edisp_kernel(edisp, 1.2, e_true, np.array([1.0, 2.0]), threshold=1e-3)
    assert np.all(narrow.sum(axis=-1) < 1 + 1e-12)
    assert np.all((narrow == 0) | (narrow >= 1e-3))
    assert narrow[0, 0] == 0  # 0.5-0.72 TeV is > 3 sigma below 1 TeV


def test_kernel_with_other_migra_binning():
    edisp = _gauss_edisp()
    e_true = np.geomspace(0.5, 20, 6)
    e_reco = np.geomspace(0.3, 40, 8)
    own = edisp_kernel(edisp, 0.5, e_true, e_reco)
    coarse = edisp_kernel(edisp, 0.5, e_true, e_reco, migra_edges=np.linspace(0.2, 5, 49))
    np.testing.assert_allclose(coarse, own, atol=0.02)


def test_density_range_policy():
    edisp = _gauss_edisp()
    # inside
    assert evaluate_edisp(edisp, 1.0, 1.0, 0.5) == pytest.approx(
        norm.pdf(1.0, 1.0, SIGMA), rel=1e-3
    )
    # energy beyond the table but migra inside: extrapolated (Gammapy's rule)
    assert evaluate_edisp(edisp, 500.0, 1.0, 0.5) == pytest.approx(
        norm.pdf(1.0, 1.0, SIGMA), rel=1e-3
    )
    # energy and migra both outside, or offset outside: zero
    assert evaluate_edisp(edisp, 500.0, 3.5, 0.5) == 0
    assert evaluate_edisp(edisp, 1.0, 1.0, 3.2) == 0


def test_kernel_dataarray_offsets(raise_on_compute):
    edisp = _gauss_edisp()
    offset = xr.DataArray(
        da.from_array(np.linspace(0, 2.5, 6).reshape(2, 3), chunks=(1, 3)), dims=("lat", "lon")
    )
    e_true = np.geomspace(0.5, 20, 5)
    e_reco = np.geomspace(1, 10, 4)
    kernel = edisp_kernel(edisp, offset, e_true, e_reco)  # graph only
    assert kernel.dims == ("lat", "lon", "energy_true", "energy")
    assert kernel.sizes == {"lat": 2, "lon": 3, "energy_true": 4, "energy": 3}
    np.testing.assert_allclose(kernel["energy_lo"].values, e_reco[:-1])
    values = kernel.compute(scheduler="sync")
    np.testing.assert_allclose(values.values[1, 2], edisp_kernel(edisp, 2.5, e_true, e_reco))


@pytest.mark.hess
@pytest.mark.parametrize("obs_id", CRAB_RUNS)
def test_hess_kernel_at_crab_map_centre_matches_gammapy(hess_dir, reference_dir, obs_id):
    ref = np.load(reference_dir / "crab_runs.npz")
    obs = Table.read(hess_dir / "obs-index.fits.gz")
    row = obs[obs["OBS_ID"] == obs_id][0]
    pointing = SkyCoord(row["RA_PNT"], row["DEC_PNT"], unit="deg")
    offset = SkyCoord(83.633, 22.014, unit="deg").separation(pointing).deg
    path = hess_dir / "data" / f"hess_dl3_dr1_obs_id_{obs_id:06d}.fits.gz"
    with fits.open(path) as hdul:
        edisp = read_irf_hdu(hdul["EDISP"], "edisp_2d", str(path))
    kernel = edisp_kernel(edisp, offset, ref["energy_true_edges"], ref["energy_edges"])
    expected = ref[f"edisp_{obs_id}"]
    assert kernel.shape == expected.shape == (10, 4)
    np.testing.assert_allclose(kernel, expected, atol=0.02, rtol=0)


@pytest.mark.hess
def test_many_offsets_equal_one_by_one(hess_dir):
    """Kernels of many offsets (combined from the offset nodes, zero beyond the valid range)
    equal kernels computed offset by offset."""
    path = hess_dir / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz"
    with fits.open(path) as hdul:
        edisp = read_irf_hdu(hdul["EDISP"], "edisp_2d", str(path))
    offsets = np.random.default_rng(1).uniform(0, 4, (12, 12))
    e_true, e_reco = np.geomspace(0.3, 100, 21), np.geomspace(0.5, 50, 11)
    many = edisp_kernel(edisp, offsets, e_true, e_reco)
    one_by_one = np.stack([edisp_kernel(edisp, o, e_true, e_reco) for o in offsets.ravel()])
    np.testing.assert_allclose(many.reshape(one_by_one.shape), one_by_one, atol=1e-12)
    assert not many[offsets > 2.75].any()


def test_many_offsets_equal_one_by_one_when_the_table_has_negative_values():
    """Kernels combined from the offset nodes stay exact where the interpolated density
    must be clipped (negative table values, as in some H.E.S.S. DR1 runs) and where the
    offset is extrapolated beyond the last node."""
    coords = axis_coords("energy_true", np.geomspace(0.1, 100, 9), "TeV", lohi=True)
    coords |= axis_coords("migra", np.linspace(0.2, 3.0, 57), "", lohi=True)
    coords |= axis_coords("offset", lo=np.arange(4.0), hi=np.arange(4.0), unit="deg", lohi=True)
    coords["offset"].attrs["interp"] = "nodes"
    migra = coords["migra"].values
    rng = np.random.default_rng(5)
    width = np.array([0.1, 0.15, 0.25, 0.4])  # broader with offset
    density = norm.pdf(migra[None, :, None], 1.0, width[None, None, :])
    density = np.broadcast_to(density, (8, 56, 4)) + rng.normal(0, 0.3, (8, 56, 4))
    edisp = xr.DataArray(
        density, dims=("energy_true", "migra", "offset"), coords=coords, attrs={"units": ""}
    )
    assert (edisp.values < 0).sum() > 100
    offsets = np.concatenate([rng.uniform(0, 3.6, 60), [0.0, 3.0, 3.5, 3.49, 3.51, np.nan]])
    e_true, e_reco = np.geomspace(0.15, 80, 13), np.geomspace(0.2, 60, 9)
    many = edisp_kernel(edisp, offsets, e_true, e_reco)
    one_by_one = np.stack([edisp_kernel(edisp, o, e_true, e_reco) for o in offsets])
    np.testing.assert_allclose(many, one_by_one, rtol=1e-10, atol=1e-13)
    assert not many[offsets > 3.5].any() and not many[-1].any() and many[offsets < 3.5].any()


def test_rows_of_zero_density_give_zero_kernels_without_warnings():
    """A true-energy row whose density is zero (nothing to normalise) gives a zero kernel
    row, for one offset and for many (combined from the nodes), and no warning; the other
    rows are normalised (each sums to at most one, and to one when the reco range covers
    the migration)."""
    coords = axis_coords("energy_true", np.geomspace(0.1, 100, 7), "TeV", lohi=True)
    coords |= axis_coords("migra", np.linspace(0.2, 3.0, 29), "", lohi=True)
    coords |= axis_coords("offset", lo=np.arange(4.0), hi=np.arange(4.0), unit="deg", lohi=True)
    coords["offset"].attrs["interp"] = "nodes"
    migra = coords["migra"].values
    density = np.broadcast_to(norm.pdf(migra, 1.0, 0.2)[None, :, None], (6, 28, 4)).copy()
    density[2] = 0.0
    edisp = xr.DataArray(
        density, dims=("energy_true", "migra", "offset"), coords=coords, attrs={"units": ""}
    )
    e_true = np.geomspace(0.1, 100, 7)
    e_reco = np.geomspace(0.01, 1000, 9)
    offsets = np.linspace(0.0, 3.0, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        many = edisp_kernel(edisp, offsets, e_true, e_reco)
        one = edisp_kernel(edisp, 1.5, e_true, e_reco)
    for kernel in (many, one[None]):
        assert np.all(np.isfinite(kernel))
        assert not kernel[:, 2].any()
        np.testing.assert_allclose(np.delete(kernel, 2, axis=1).sum(axis=-1), 1.0, rtol=1e-9)
