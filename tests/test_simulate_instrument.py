"""Toy instrument tables, IRF sets written and read back, IRFs from GADF files and runs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gammaxr.geom.axes import axis_edges
from gammaxr.io.errors import DL3Error, MissingFileError
from gammaxr.io.gadf_write import write_fits
from gammaxr.irf import (
    edisp_kernel,
    evaluate_aeff,
    evaluate_bkg_2d,
    evaluate_bkg_3d,
    psf_3gauss_containment,
    psf_containment,
    psf_containment_radius,
)
from gammaxr.simulate import IRFSet, ToyInstrument, read_irfs


@pytest.fixture(scope="module")
def toy():
    return ToyInstrument()


@pytest.fixture(scope="module")
def irfs(toy):
    return toy.irfs()


def test_aeff_shape_and_nodes(toy, irfs):
    aeff = irfs.aeff
    assert aeff.dims == ("energy_true", "offset") and aeff.attrs["units"] == "m2"
    e, o = aeff["energy_true"].values, aeff["offset"].values
    # table values are the analytic function at the bin centres (float32 rounding)
    np.testing.assert_allclose(aeff.values, toy.effective_area(e[:, None], o[None]), rtol=1e-6)
    on_axis = evaluate_aeff(aeff, e, 0.2)
    assert np.all(np.diff(on_axis) >= 0) and on_axis[6] > 10 * on_axis[0]  # rises ...
    assert on_axis[-1] / toy.aeff_max > 0.99  # ... and saturates at the plateau
    assert on_axis[0] / toy.aeff_max < 0.5
    assert np.all(np.diff(evaluate_aeff(aeff, 1.0, o)) < 0)  # falls with offset
    assert evaluate_aeff(aeff, 1.0, toy.offset_max + 0.1) == 0  # nothing beyond the table


def test_psf_widens_with_offset_and_at_low_energy(toy, irfs):
    psf = irfs.psf
    assert psf.dims == ("energy_true", "offset", "rad") and psf.attrs["units"] == "sr-1"
    r68 = psf_containment_radius(psf, np.array([0.1, 1.0, 10.0])[:, None], [0.5, 2.0], 0.68)
    assert np.all(np.diff(r68, axis=0) < 0)  # narrower at high energy
    assert np.all(np.diff(r68, axis=1) > 0)  # wider off axis
    # the tabulated containment follows the analytic double Gaussian
    rad = np.array([0.05, 0.1, 0.2, 0.4])
    table = psf_containment(psf, 1.0, 0.625, rad)
    np.testing.assert_allclose(table, toy.psf_containment(1.0, 0.625, rad), atol=0.01)


def test_psf_3gauss_matches_table(toy):
    params = toy.replace(psf_format="3gauss").irfs().psf
    assert isinstance(params, xr.Dataset) and params.attrs["irf_class"] == "psf_3gauss"
    rad = np.array([0.03, 0.08, 0.15, 0.3])
    e, o = params["energy_true"].values[10], params["offset"].values[3]
    np.testing.assert_allclose(
        psf_3gauss_containment(params, e, o, rad), toy.psf_containment(e, o, rad), rtol=1e-5
    )


def test_edisp_is_log_normal(toy, irfs):
    edisp = irfs.edisp
    m = axis_edges(edisp, "migra")
    content = (edisp * xr.DataArray(np.diff(m), dims="migra")).sum("migra")
    assert np.all(np.abs(content.values - 1) < 1e-3)  # the whole density is in range
    e, o = edisp["energy_true"].values[12], edisp["offset"].values[2]
    mu, sigma = toy.edisp_mu_sigma(e, o)
    density = edisp.isel(energy_true=12, offset=2).values
    centres = 0.5 * (m[1:] + m[:-1])
    mean_log = np.sum(np.log(centres) * density * np.diff(m))
    assert abs(mean_log - mu) < 0.01
    std_log = np.sqrt(np.sum((np.log(centres) - mean_log) ** 2 * density * np.diff(m)))
    assert abs(std_log - sigma) < 0.01
    # the resolution is worse at low energy: wider kernels
    kernel = edisp_kernel(edisp, 0.5, [0.1, 0.12, 10.0, 12.0], np.geomspace(0.01, 100, 201))
    width = (kernel > 1e-3).sum(axis=-1)
    assert width[0] > width[2]


def test_background_power_law_falling_with_offset(toy, irfs):
    bkg = irfs.bkg
    assert bkg.dims == ("energy", "offset") and bkg.attrs["fov_alignment"] == "RADEC"
    rates = evaluate_bkg_2d(bkg, [2.0, 20.0], 0.5)
    np.testing.assert_allclose(np.log10(rates[0] / rates[1]), toy.bkg_index, rtol=1e-3)
    assert np.all(np.diff(evaluate_bkg_2d(bkg, 1.0, [0.2, 1.0, 2.0, 3.0])) < 0)
    bkg3 = toy.replace(bkg_format="3d").irfs().bkg
    assert bkg3.dims == ("energy", "fov_lon", "fov_lat")
    np.testing.assert_allclose(
        evaluate_bkg_3d(bkg3, 1.0, [0.0, 1.0], [1.0, 0.0]),
        evaluate_bkg_2d(bkg, 1.0, 1.0),
        rtol=0.02,
    )


@pytest.mark.parametrize("psf_format", ["table", "3gauss"])
@pytest.mark.parametrize("bkg_format", ["2d", "3d"])
def test_written_irfs_read_back_identical(tmp_path, toy, psf_format, bkg_format):
    irfs = toy.replace(psf_format=psf_format, bkg_format=bkg_format, name="roundtrip").irfs()
    path = write_fits(tmp_path / "irfs.fits.gz", list(irfs.to_hdus().values()))
    back = read_irfs(path)
    assert back.name == "irfs" and back.hdu_classes() == irfs.hdu_classes()
    for kind in ("aeff", "edisp", "psf", "bkg"):
        ours, theirs = getattr(irfs, kind), getattr(back, kind)
        # float32 tables and axes: exactly what was sampled from
        if isinstance(ours, xr.Dataset):
            for name in ours.data_vars:
                np.testing.assert_array_equal(ours[name].values, theirs[name].values)
        else:
            np.testing.assert_array_equal(ours.transpose(*theirs.dims).values, theirs.values)
        for dim in ours.dims:
            np.testing.assert_array_equal(ours[dim].values, theirs[dim].values)


def test_read_irfs_errors(tmp_path, irfs):
    with pytest.raises(MissingFileError, match="not found"):
        read_irfs(tmp_path / "nope.fits")
    path = write_fits(tmp_path / "aeff_only.fits", [irfs.to_hdus()["aeff"]])
    with pytest.raises(DL3Error, match="no edisp, psf"):
        read_irfs(path)


def test_read_irfs_without_hduclas4(tmp_path, irfs):
    hdus = list(irfs.to_hdus().values())
    for hdu in hdus:
        del hdu.header["HDUCLAS4"]
    back = read_irfs(write_fits(tmp_path / "old.fits", hdus), name="old")
    assert back.name == "old" and back.hdu_classes() == irfs.hdu_classes()


def test_irfset_validation(irfs):
    with pytest.raises(ValueError, match="aeff has dims"):
        IRFSet(aeff=irfs.bkg, edisp=irfs.edisp, psf=irfs.psf)
    no_bkg = irfs.replace(bkg=None)
    assert no_bkg.bkg_class is None and "bkg" not in no_bkg.to_hdus()


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"aeff_max": -1.0}, "aeff_max must be positive"),
        ({"psf_tail_fraction": 1.0}, "psf_tail_fraction"),
        ({"psf_format": "king"}, "psf_format"),
        ({"bkg_format": "3d", "fov_bin": 4.0 / 13}, "n_energy != n_fov"),
        ({"bkg_rate": float("nan")}, "bkg_rate"),
    ],
)
def test_toy_parameter_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        ToyInstrument(**changes)


@pytest.mark.cta
def test_prod5_irfs(prod5_file):
    irfs = read_irfs(prod5_file)
    assert irfs.hdu_classes() == {
        "aeff": "aeff_2d",
        "edisp": "edisp_2d",
        "psf": "psf_3gauss",
        "bkg": "bkg_3d",
    }
    assert irfs.bkg.attrs["fov_alignment"] == "RADEC"
    assert irfs.bkg.sizes == {"energy": 21, "fov_lon": 60, "fov_lat": 60}
    # the standard GADF layout (numpy (lat, lon, energy)) is transposed, not reshaped: a
    # smooth background, falling with energy above 0.1 TeV and with offset, symmetric
    on_axis = evaluate_bkg_3d(irfs.bkg, [0.2, 1.0, 10.0], 0.1, 0.1)
    assert np.all(np.diff(on_axis) < 0)
    rates = evaluate_bkg_3d(
        irfs.bkg, 1.0, [0.1, 1.0, -1.0, 0.1, 0.1, 3.0], [0.1, 0.1, 0.1, 1.0, -1.0, 3.0]
    )
    np.testing.assert_allclose(rates[1:5], rates[1], rtol=0.01)  # symmetric about the axis
    assert rates[5] < 0.5 * rates[0]
    assert float(evaluate_aeff(irfs.aeff, 10.0, 0.5)) > 1e6  # m2: a large array


def test_units_written_in_fits_syntax(irfs):
    """IRFs read from files carry astropy's generic unit strings; FITS needs its own syntax."""
    generic = irfs.replace(
        psf=irfs.psf.assign_attrs(units="1 / sr"), bkg=irfs.bkg.assign_attrs(units="1 / (MeV s sr)")
    )
    hdus = generic.to_hdus()
    assert hdus["psf"].columns["RPSF"].unit == "sr-1"
    assert hdus["bkg"].columns["BKG"].unit == "MeV-1 s-1 sr-1"
    assert hdus["aeff"].columns["EFFAREA"].unit == "m2"
