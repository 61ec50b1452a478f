"""IRF evaluation at the tabulated nodes reproduces the FITS tables (HESS DR1, CTA 1DC, prod5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

from gammaxr.io.irf_fits import _irf_data_array, read_irf_hdu
from gammaxr.irf import (
    evaluate_aeff,
    evaluate_bkg_2d,
    evaluate_bkg_3d,
    evaluate_edisp,
    evaluate_psf,
    evaluate_psf_3gauss,
    psf_3gauss_to_table,
)

HESS_RUNS = (23523, 20136)
CTA_1DC_IRF = Path("caldb/data/cta/1dc/bcf/South_z20_50h/irf_file.fits")
PROD5_FILES = (
    "Prod5-South-20deg-AverageAz-14MSTs37SSTs.180000s-v0.1.fits.gz",
    "Prod5-North-20deg-AverageAz-4LSTs09MSTs.180000s-v0.1.fits.gz",
)


def _read(path: Path, hdu: str, irf_class: str):
    with fits.open(path) as hdul:
        return read_irf_hdu(hdul[hdu], irf_class, f"{path}[{hdu}]")


def _nodes(irf, dims):
    """Node coordinates of ``dims`` shaped for broadcasting to the table."""
    out = []
    for i, d in enumerate(dims):
        shape = [1] * len(dims)
        shape[i] = -1
        out.append(irf[d].values.reshape(shape))
    return out


def _raw_column(path: Path, hdu: str, column: str) -> np.ndarray:
    with fits.open(path) as hdul:
        return np.asarray(hdul[hdu].data[column][0], dtype=float)


def _check_nodes(path, hdu, irf_class, evaluate):
    irf = _read(path, hdu, irf_class)
    dims = irf.dims
    values = evaluate(irf, *_nodes(irf, dims))
    # zero nodes of log-interpolated (bkg) tables come back as 1.2e-38, see interpolate.py
    np.testing.assert_allclose(values, irf.values, rtol=1e-10, atol=1e-37)
    return irf


def _check_aeff_edisp(path: Path, hdus: dict[str, str]):
    aeff = _check_nodes(path, hdus["aeff"], "aeff_2d", evaluate_aeff)
    # the reader keeps the FITS numbers: same multiset of values as the raw column
    raw = _raw_column(path, hdus["aeff"], "EFFAREA")
    np.testing.assert_allclose(np.sort(aeff.values.ravel()), np.sort(raw.ravel()), rtol=1e-12)
    _check_nodes(path, hdus["edisp"], "edisp_2d", evaluate_edisp)


@pytest.mark.hess
@pytest.mark.parametrize("obs_id", HESS_RUNS)
def test_hess_irfs_at_nodes_equal_table(hess_dir, obs_id):
    path = hess_dir / "data" / f"hess_dl3_dr1_obs_id_{obs_id:06d}.fits.gz"
    _check_aeff_edisp(path, {"aeff": "AEFF", "edisp": "EDISP"})
    psf = _check_nodes(path, "PSF", "psf_table", evaluate_psf)
    assert psf.attrs["units"] in ("sr-1", "1 / sr")
    bkg = _check_nodes(path, "BKG", "bkg_3d", evaluate_bkg_3d)
    raw = _raw_column(path, "BKG", "BKG")  # MeV-1 s-1 sr-1 in the files
    np.testing.assert_allclose(np.sort(bkg.values.ravel()), np.sort(raw.ravel()), rtol=1e-6)


@pytest.mark.hess
def test_hess_out_of_range(hess_dir):
    path = hess_dir / "data" / "hess_dl3_dr1_obs_id_023523.fits.gz"
    aeff = _read(path, "AEFF", "aeff_2d")
    # offsets are nodes 0 ... 2.5 deg: valid to 2.75 deg (extrapolated), zero beyond
    last, before = aeff.values[:, -1], aeff.values[:, -2]
    idx = int(np.argmax(last + 0.4 * (last - before)))  # an energy where it stays positive
    node = float(aeff["energy_true"][idx])
    values = evaluate_aeff(aeff, node, np.array([2.5, 2.7, 2.76, 3.5]))
    table = aeff.values[idx]
    assert values[0] == pytest.approx(table[-1])
    # linear extrapolation from the last two nodes
    assert values[1] == pytest.approx(max(table[-1] + 0.4 * (table[-1] - table[-2]), 0.0))
    assert values[1] > 0 and values[2] == 0 and values[3] == 0
    # energy beyond the table's outer edges (0.01 - 100 TeV)
    assert np.all(evaluate_aeff(aeff, np.array([0.0099, 100.5]), 0.5) == 0)
    bkg = _read(path, "BKG", "bkg_3d")
    inside = evaluate_bkg_3d(bkg, 1.0, np.array([0.0, 2.49]), np.array([0.0, 2.49]))
    outside = evaluate_bkg_3d(bkg, 1.0, np.array([2.51, 0.0]), np.array([0.0, -2.51]))
    assert np.all(inside > 0) and np.all(outside == 0)


@pytest.mark.cta
def test_cta_1dc_irfs_at_nodes_equal_table(cta_dir):
    path = cta_dir / CTA_1DC_IRF
    _check_aeff_edisp(path, {"aeff": "EFFECTIVE AREA", "edisp": "ENERGY DISPERSION"})
    _check_nodes(path, "BACKGROUND", "bkg_3d", evaluate_bkg_3d)
    _check_3gauss_formula(path, "POINT SPREAD FUNCTION")


def _prod5_dir(cta_dir: Path) -> Path:
    directory = cta_dir.parent / "cta-caldb"
    if not (directory / PROD5_FILES[0]).exists():
        pytest.skip(f"CTA prod5 IRFs not found in {directory}")
    return directory


@pytest.mark.cta
@pytest.mark.parametrize("name", PROD5_FILES)
def test_cta_prod5_irfs_at_nodes_equal_table(cta_dir, name):
    path = _prod5_dir(cta_dir) / name
    _check_aeff_edisp(path, {"aeff": "EFFECTIVE AREA", "edisp": "ENERGY DISPERSION"})
    _check_nodes(path, "BACKGROUND", "bkg_3d", evaluate_bkg_3d)
    _check_3gauss_formula(path, "POINT SPREAD FUNCTION")


def _check_3gauss_formula(path: Path, hdu: str):
    """Normalised GADF 3-Gauss density, computed here from the raw columns, at the nodes."""
    params = _read(path, hdu, "psf_3gauss")
    raw = {
        p: params[p].values[..., None]
        for p in ("scale", "sigma_1", "ampl_2", "sigma_2", "ampl_3", "sigma_3")
    }
    rad = np.linspace(0.0, 0.5, 11)
    sr = np.deg2rad(1.0) ** 2
    num = np.exp(-0.5 * rad**2 / np.where(raw["sigma_1"] > 0, raw["sigma_1"], 1.0) ** 2)
    norm = raw["sigma_1"] ** 2
    for a, s in (("ampl_2", "sigma_2"), ("ampl_3", "sigma_3")):
        use = raw[a] > 0
        sigma = np.where(use, raw[s], 1.0)
        num = num + np.where(use, raw[a] * np.exp(-0.5 * rad**2 / sigma**2), 0.0)
        norm = norm + np.where(use, raw[a] * raw[s] ** 2, 0.0)
    valid = (raw["scale"] > 0) & (raw["sigma_1"] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(valid, num / (2 * np.pi * norm * sr), 0.0)
    e, o = _nodes(params, ("energy_true", "offset"))
    values = evaluate_psf_3gauss(params, e[..., None], o[..., None], rad)
    np.testing.assert_allclose(values, expected, rtol=1e-10, atol=0)
    assert np.any(expected > 0)
    table = psf_3gauss_to_table(params, rad_edges=np.linspace(0.0, 0.5, 6))
    assert table.dims == ("energy_true", "offset", "rad")
    np.testing.assert_allclose(
        table.values,
        evaluate_psf_3gauss(params, e[..., None], o[..., None], table["rad"].values),
        rtol=1e-12,
    )
    # the table evaluates back to itself at its nodes
    np.testing.assert_allclose(
        evaluate_psf(table, e[..., None], o[..., None], table["rad"].values),
        table.values,
        rtol=1e-10,
    )


def _bkg_2d_hdu(energy_edges, offset_edges, data) -> fits.BinTableHDU:
    """A GADF bkg_2d table (data column axes in reverse column order)."""
    n_e, n_o = len(energy_edges) - 1, len(offset_edges) - 1
    cols = [
        fits.Column("ENERG_LO", f"{n_e}E", unit="TeV", array=[energy_edges[:-1]]),
        fits.Column("ENERG_HI", f"{n_e}E", unit="TeV", array=[energy_edges[1:]]),
        fits.Column("THETA_LO", f"{n_o}E", unit="deg", array=[offset_edges[:-1]]),
        fits.Column("THETA_HI", f"{n_o}E", unit="deg", array=[offset_edges[1:]]),
        fits.Column(
            "BKG", f"{n_e * n_o}E", unit="s-1 MeV-1 sr-1", dim=f"({n_e},{n_o})", array=[data.T]
        ),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="BKG")
    hdu.header["HDUCLAS4"] = "BKG_2D"
    return hdu


def test_bkg_2d_at_nodes_equal_table():
    # no data file ships a bkg_2d table: build one in the GADF layout
    e_edges = np.geomspace(0.1, 100, 13)
    o_edges = np.linspace(0, 3, 7)
    e_c = np.sqrt(e_edges[1:] * e_edges[:-1])
    o_c = 0.5 * (o_edges[1:] + o_edges[:-1])
    data = (1e-4 * e_c[:, None] ** -2.5 * np.exp(-(o_c[None, :] ** 2))).astype(np.float32)
    bkg = read_irf_hdu(_bkg_2d_hdu(e_edges, o_edges, data), "bkg_2d", "synthetic")
    assert bkg.dims == ("energy", "offset")
    np.testing.assert_allclose(evaluate_bkg_2d(bkg, e_c[:, None], o_c[None, :]), data, rtol=1e-6)
    # geometric interpolation: exact for this power law in energy at fixed offset node
    e = np.array([0.2, 3.3, 42.0])
    np.testing.assert_allclose(
        evaluate_bkg_2d(bkg, e, o_c[2]), 1e-4 * e**-2.5 * np.exp(-(o_c[2] ** 2)), rtol=1e-5
    )
    assert evaluate_bkg_2d(bkg, 1.0, 3.01) == 0 and evaluate_bkg_2d(bkg, 101.0, 1.0) == 0


@pytest.mark.cta
def test_prod5_bkg_3d_in_reversed_column_order_is_transposed(cta_dir):
    """prod5 stores BKG as numpy (DETY, DETX, ENERG) for columns ENERG, DETX, DETY."""
    path = cta_dir.parent / "cta-caldb" / PROD5_FILES[0]
    if not path.exists():
        pytest.skip(f"{path} not found")
    bkg = _read(path, "BACKGROUND", "bkg_3d")
    raw = _raw_column(path, "BACKGROUND", "BKG")
    assert raw.shape == (bkg.sizes["fov_lat"], bkg.sizes["fov_lon"], bkg.sizes["energy"])
    np.testing.assert_allclose(bkg.transpose("fov_lat", "fov_lon", "energy").values, raw)


@pytest.mark.hess
@pytest.mark.parametrize(("hdu", "irf_class"), [("AEFF", "aeff_2d"), ("BKG", "bkg_3d")])
def test_irf_tables_as_built_by_the_plain_constructor(hess_dir, hdu, irf_class):
    """The fast DataArray assembly of the IRF reader equals xarray's plain constructor
    (coords, indexes, attrs, name) and rejects coordinates that do not fit the data."""
    path = hess_dir / "data" / f"hess_dl3_dr1_obs_id_0{HESS_RUNS[0]}.fits.gz"
    irf = _read(path, hdu, irf_class)
    coords = {k: v.variable for k, v in irf.coords.items()}
    plain = xr.DataArray(irf.values, dims=irf.dims, coords=coords, name=irf.name, attrs=irf.attrs)
    assert irf.identical(plain)
    assert list(irf.xindexes) == list(plain.xindexes)
    assert set(irf.xindexes) == set(irf.dims)
    dim = irf.dims[0]
    assert irf.sel({dim: irf[dim].values[1]}).equals(plain.isel({dim: 1}))
    short = {**coords, f"{dim}_lo": coords[f"{dim}_lo"][:-1]}
    with pytest.raises(ValueError, match=f"{dim}_lo"):
        _irf_data_array(irf.values, irf.dims, short, irf.name, irf.attrs)


@pytest.mark.hess
def test_irf_tables_of_two_runs_share_their_axis_indexes_not_their_coordinates(hess_dir):
    """Two runs' tables with the same binning share each dimension's (immutable) index, while
    each keeps its own coordinate variables (attrs changed on one do not reach the other)."""
    paths = [hess_dir / "data" / f"hess_dl3_dr1_obs_id_0{run}.fits.gz" for run in HESS_RUNS[:2]]
    first, second = (_read(path, "AEFF", "aeff_2d") for path in paths)
    for dim in first.dims:
        np.testing.assert_array_equal(first[dim].values, second[dim].values)
        assert first.xindexes[dim] is second.xindexes[dim]
    first["offset"].attrs["note"] = "changed"
    assert first.coords["offset"].attrs["note"] == "changed"
    assert "note" not in second["offset"].attrs
    assert not np.shares_memory(first.values, second.values)
