"""Gammapy file interchange: the Gammapy 2.1 files of ``../shared/reference/gammapy-files`` read
with the figures of ``files.json``, and every kind written by gammaxr reads back unchanged."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import gammaxr
from gammaxr.fit import FitContext, load_datasets, minimize
from gammaxr.fit.kernels import gammapy_containment_radii, psf_profile_at
from gammaxr.fit.minimizer import gammapy_scales
from gammaxr.geom import SkyGrid, axis_coords
from gammaxr.io.gadf_sed import SED_TYPES, read_flux_points, write_flux_points
from gammaxr.io.gammapy_geometry import (
    GammapyGeometryError,
    GammapyGeometryWarning,
    grid_from_header,
)
from gammaxr.io.ogip import ogip_filenames, read_ogip
from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def files(reference_dir):
    root = reference_dir / "gammapy-files"
    if not (root / "files.json").exists():
        pytest.skip(f"Gammapy files not found at {root}")
    return root, json.loads((root / "files.json").read_text())


@pytest.fixture(scope="module")
def crab(files):
    root, _ = files
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GammapyGeometryWarning)
        return gammaxr.read_gammapy(root / "crab_stacked_mapdataset.fits.gz")


def _sum(da: xr.DataArray) -> float:
    return float(da.astype("float64").sum())


# ------------------------------------------------------------------------ reading Gammapy's


def test_crab_mapdataset_totals(files, crab):
    _, ref = files
    ref = ref["crab"]
    assert _sum(crab["counts"]) == ref["counts"]
    assert _sum(crab["background"]) == pytest.approx(ref["background"], rel=1e-6)
    assert _sum(crab["exposure"]) == pytest.approx(ref["exposure_sum"], rel=1e-6)
    assert int(crab["mask_safe"].sum()) == ref["mask_safe_sum"]
    assert crab["exposure"].attrs["units"] == "m2 s"
    assert crab.attrs["name"] == "crab-stacked"
    assert crab.attrs["stacked_obs_ids"] == [23523, 23526, 23559, 23592]
    assert len(crab.attrs["gti_start"]) == 4
    assert set(crab["psf"].dims) == {"energy_true", "rad", "lat_irf", "lon_irf"}
    assert set(crab["edisp"].dims) == {"energy_true", "energy", "lat_irf", "lon_irf"}
    # lon increases; the Crab (brightest pixel) sits near its catalogue position
    assert np.all(np.diff(crab["lon"].values) > 0)
    peak = crab["counts"].sum("energy").argmax(...)
    assert float(crab["lon"][peak["lon"]]) == pytest.approx(83.63, abs=0.03)
    assert float(crab["lat"][peak["lat"]]) == pytest.approx(22.02, abs=0.03)


def test_crab_geometry_is_relabelled_with_a_statement(files):
    root, _ = files
    path = root / "crab_stacked_mapdataset.fits.gz"
    with pytest.warns(GammapyGeometryWarning, match=r"0\.39 pixels"):
        gammaxr.read_gammapy(path)
    with pytest.raises(GammapyGeometryError, match=r"CRVAL2 = 22\.014"):
        gammaxr.read_gammapy(path, geometry="exact")


def test_msh_mapdatasetonoff_totals(files):
    root, ref = files
    ref = ref["msh_ring"]
    path = root / "msh1552_ring_mapdatasetonoff.fits.gz"
    with pytest.raises(GammapyGeometryError, match=r"3\.63 pixels"):  # auto refuses
        gammaxr.read_gammapy(path)
    with pytest.warns(GammapyGeometryWarning):
        ds = gammaxr.read_gammapy(path, geometry="relabel")
    assert len(ds.attrs["stacked_obs_ids"]) == ref["n_obs"]
    for name in ("counts", "counts_off", "acceptance", "acceptance_off"):
        assert _sum(ds[name]) == pytest.approx(ref[name], rel=1e-6), name
    assert "background" not in ds


@pytest.mark.parametrize("obs_id", ["23523", "23526", "23559", "23592"])
def test_ogip_spectra(files, obs_id):
    root, ref = files
    ref = ref["crab_ogip"][obs_id]
    ds = gammaxr.read_gammapy(root / "ogip" / f"pha_obs{obs_id}.fits")
    assert _sum(ds["counts"]) == ref["n_on"]
    assert _sum(ds["counts_off"]) == ref["n_off"]
    alpha = (ds["acceptance"] / ds["acceptance_off"]).values
    np.testing.assert_allclose(alpha, ref["alpha"], rtol=1e-12)
    assert ds["mask_safe"].values.tolist() == ref["mask_safe"]
    assert ds.attrs["on_region"].splitlines()[-1].startswith("circle(83.63")
    assert ds.attrs["n_off_regions"] == round(1 / ref["alpha"])
    assert ds["edisp"].sum("energy").max() <= 1 + 1e-6
    assert ds["exposure"].attrs["units"] == "m2 s"


def test_flux_points_and_light_curve(files):
    root, ref = files
    for name in ("crab_flux_points.ecsv", "crab_flux_points.fits"):
        fp = gammaxr.read_gammapy(root / name)
        np.testing.assert_allclose(fp["e2dnde"], ref["crab"]["flux_points_e2dnde"], rtol=1e-10)
        np.testing.assert_allclose(fp["ts"], ref["crab"]["flux_points_ts"], rtol=1e-10)
        assert fp["e2dnde"].attrs["units"] == "TeV cm-2 s-1"
        assert fp.attrs["n_sigma_ul"] == 2.0
    lc = gammaxr.read_gammapy(root / "crab_light_curve.fits")
    assert lc["flux"].dims == ("time_bin", "energy")
    np.testing.assert_allclose(lc["flux"][:, 0], ref["crab_light_curve"]["flux"], rtol=1e-10)
    np.testing.assert_allclose(lc["time_min"], ref["crab_light_curve"]["time_min"], rtol=1e-14)
    assert lc.sizes["dataset"] == 4  # counts per run, NaN where the run is not in the bin


def test_models_covariance_is_read(files):
    root, _ = files
    models = Models.read(root / "crab_models.yaml")
    cov = models.covariance
    assert cov is not None and cov.dims == ("param", "param2")
    for name in ("crab.spectral.index", "crab.spatial.lat_0", "crab-stacked-bkg.spectral.norm"):
        error = models.parameter(name).error
        assert np.sqrt(float(cov.sel(param=name, param2=name))) == pytest.approx(error, rel=1e-6)
    assert float(cov.sel(param="crab.spectral.index", param2="crab.spatial.lon_0")) != 0


def _crab_start() -> Models:
    """files.json's fit: the start values of gammapy-files/README.md, background norm 1."""
    start = SkyModel(
        PowerLaw(index=2.702, amplitude="4.712e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=83.63308, lat_0=22.0145),
        name="crab",
    )
    return Models([start, FoVBackgroundModel("crab-stacked")])


def _full_name(key: str) -> str:
    model, name = key.split(".")
    return f"{model}.{'spatial' if name in ('lon_0', 'lat_0') else 'spectral'}.{name}"


def test_crab_fit_reproduces_gammapy(files, crab):
    """Fitting the read file as Gammapy did gives Gammapy's values (files.json)."""
    _, ref = files
    result = crab.gamma.fit(_crab_start(), convention="gammapy")
    assert result.success, result.message
    for key, (value, error) in ref["crab"]["params"].items():
        assert abs(result.value(_full_name(key)) - value) < 0.2 * error, key
        assert result.error(_full_name(key)) == pytest.approx(error, rel=0.02), key
    assert result.total_stat == pytest.approx(ref["crab"]["total_stat"], abs=0.02)


#: Gammapy 2.1 on this file and start (by hand in a separate environment): its MapEvaluator
#: recomputes the Crab's IRFs at 9 positions during Migrad's first gradient (steps of
#: +-0.62 and +-0.062 deg in lon, then lat), the last at this one, and keeps them to the end
GAMMAPY_IRF_POSITION = (83.63308, 21.952030540571066)
#: Gammapy 2.1's 99.9 % and 68 % PSF containment radii (deg) there, per true-energy bin
GAMMAPY_R999 = [0.63525, 0.62575, 0.63425, 0.64275, 0.64775, 0.64975, 0.65175, 0.65275,
                0.65225, 0.65225]  # fmt: skip
GAMMAPY_R68 = [0.13375, 0.11825, 0.11375, 0.11525, 0.11925, 0.12175, 0.12175, 0.11975,
               0.11525, 0.10875]  # fmt: skip


def test_crab_fit_keeps_the_irfs_gammapy_kept(files, crab):
    """The emulation of Gammapy's IRF updates is what brings lat_0 onto files.json's."""
    _, ref = files
    value, error = ref["crab"]["params"]["crab.lat_0"]
    models = _crab_start()
    lat = models.free_parameter_names.index("crab.spatial.lat_0")
    x0 = models.get_vector()
    scales, steps = gammapy_scales(x0, [p.error for _, p in models.free_parameters])
    data = load_datasets(crab)
    fitted = {}
    for irf_update in ("gammapy", "lattice"):
        context = FitContext(data, models, convention="gammapy", irf_update=irf_update)
        result = minimize(context, x0, bounds=models.get_bounds(), scales=scales, steps=steps)
        assert result.success, result.message
        fitted[irf_update] = (result.x[lat] - value) / error
        if irf_update == "gammapy":
            ((_, evaluator),) = context.terms[0].sources
            assert evaluator.n_irf_updates == 9
            np.testing.assert_allclose(evaluator.irf_reference, GAMMAPY_IRF_POSITION, atol=1e-6)
    assert abs(fitted["gammapy"]) < 0.02  # sigma
    assert fitted["lattice"] > 0.25  # IRFs following the source: Gammapy's minimum, not its fit
    # the kernel sizes there are Gammapy's (the 99.9 % radius of bin 5 is just below 0.65 deg,
    # two pixels of 0.02 deg fewer than an interpolated radius would give)
    (d,) = data
    profile = psf_profile_at(d.psf, d.lon_irf, d.lat_irf, *GAMMAPY_IRF_POSITION)
    np.testing.assert_allclose(
        gammapy_containment_radii(profile, d.rad_edges, 0.999), GAMMAPY_R999, atol=1e-9
    )
    np.testing.assert_allclose(
        gammapy_containment_radii(profile, d.rad_edges, 0.68), GAMMAPY_R68, atol=1e-9
    )


# ------------------------------------------------------------------------- round trips


def test_gammapy_map_round_trip_is_lossless(crab, tmp_path):
    path = crab.gamma.to_gammapy(tmp_path / "crab.fits.gz")
    with pytest.raises(FileExistsError):
        crab.gamma.to_gammapy(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GammapyGeometryWarning)
        back = gammaxr.read_gammapy(path)
    xr.testing.assert_identical(back.drop_attrs(), crab.drop_attrs())
    assert back.attrs["gammapy_wcs"] == crab.attrs["gammapy_wcs"]  # original WCS written back
    with fits.open(path) as hdul:
        assert hdul["COUNTS"].header["CRVAL2"] == pytest.approx(22.014)


def _synthetic_map(on_off: bool) -> xr.Dataset:
    rng = np.random.default_rng(1)
    grid = SkyGrid.from_center((266.4, -28.9), (1.2, 0.8), 0.05)
    irf = SkyGrid.from_center((266.4, -28.9), (1.2, 0.8), 0.4)
    coords = {**grid.coords, **axis_coords("energy", np.geomspace(1, 10, 4), "TeV")}
    coords.update(axis_coords("energy_true", np.geomspace(0.5, 20, 6), "TeV"))
    coords.update(axis_coords("rad", np.linspace(0, 0.5, 11), "deg"))
    coords["lon_irf"] = xr.Variable("lon_irf", irf.lon, {"units": "deg"})
    coords["lat_irf"] = xr.Variable("lat_irf", irf.lat, {"units": "deg"})
    n_lat, n_lon = grid.shape
    reco, true = (3, n_lat, n_lon), (5, n_lat, n_lon)
    data = {
        "counts": (("energy", "lat", "lon"), rng.poisson(3, reco).astype("f4"), {"units": ""}),
        "background": (("energy", "lat", "lon"), rng.uniform(1, 3, reco).astype("f4"),
                       {"units": ""}),
        "exposure": (("energy_true", "lat", "lon"), rng.uniform(1e8, 1e9, true).astype("f4"),
                     {"units": "m2 s"}),
        "mask_safe": (("energy", "lat", "lon"), rng.uniform(size=reco) > 0.2, {}),
        "mask_fit": (("energy", "lat", "lon"), rng.uniform(size=reco) > 0.5, {}),
        "exposure_irf": (("energy_true", "lat_irf", "lon_irf"),
                         rng.uniform(1e8, 1e9, (5, *irf.shape)).astype("f4"), {"units": "m2 s"}),
        "psf": (("energy_true", "rad", "lat_irf", "lon_irf"),
                rng.uniform(0, 1e3, (5, 10, *irf.shape)).astype("f4"), {"units": "sr-1"}),
        "edisp": (("energy_true", "energy", "lat_irf", "lon_irf"),
                  rng.uniform(0, 0.3, (5, 3, *irf.shape)).astype("f4"), {"units": ""}),
    }  # fmt: skip
    if on_off:
        data["counts_off"] = (("energy", "lat", "lon"), rng.poisson(30, reco).astype("f4"),
                              {"units": ""})  # fmt: skip
        data["acceptance"] = (("energy", "lat", "lon"), np.ones(reco, "f4"), {"units": ""})
        data["acceptance_off"] = (("energy", "lat", "lon"), np.full(reco, 10, "f4"),
                                  {"units": ""})  # fmt: skip
    attrs = {"frame": "icrs", "name": "synthetic", "livetime_total": 3600.0}
    attrs.update(stacked_obs_ids=[1, 2], ra_pnt=[266.0, 266.8], dec_pnt=[-29.0, -28.8])
    attrs.update(gti_start=[0.0, 2000.0], gti_stop=[1800.0, 3800.0], MJDREFI=51910)
    attrs.update(MJDREFF=0.00074287037037037, TIMESYS="tt")
    return xr.Dataset(data, coords=coords, attrs=attrs)


@pytest.mark.parametrize("on_off", [False, True])
def test_synthetic_map_round_trip_is_exact(tmp_path, on_off):
    """gammaxr's own grid (CAR, CRVAL2 = 0) goes to Gammapy's format and back exactly."""
    ds = _synthetic_map(on_off)
    path = ds.chunk({"energy": 1}).gamma.to_gammapy(tmp_path / "map.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GammapyGeometryWarning)  # exact: no statement
        back = gammaxr.read_gammapy(path, geometry="exact")
    xr.testing.assert_allclose(back.drop_attrs(), ds.drop_attrs(), rtol=1e-12)
    for key in ("stacked_obs_ids", "ra_pnt", "gti_start", "gti_stop", "MJDREFF", "name"):
        assert back.attrs[key] == ds.attrs[key], key
    assert back.attrs["livetime_total"] == pytest.approx(3600.0)
    with fits.open(path) as hdul:
        header = hdul["COUNTS"].header
        assert header["CRVAL2"] == 0 and header["CDELT1"] < 0
        assert ("COUNTS_OFF" in hdul) == on_off


def test_map_writer_refuses_runs_and_other_grids(tmp_path):
    ds = _synthetic_map(False)
    runs = ds.expand_dims(obs_id=[1])
    with pytest.raises(ValueError, match="obs_id"):
        runs.gamma.to_gammapy(tmp_path / "runs.fits")
    # a TAN grid far from regular lon/lat (3 deg at the pole side) is refused by default
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 0.0})
    header.update({"CRVAL2": 70.0, "CDELT1": -0.1, "CDELT2": 0.1, "CRPIX1": 30.5, "CRPIX2": 30.5})
    with pytest.raises(GammapyGeometryError, match="geometry='relabel'"):
        grid_from_header(header, (60, 60), source="test")
    header["PC1_2"] = 0.1
    with pytest.raises(GammapyGeometryError, match="rotated"):
        grid_from_header(header, (60, 60), source="test")


def test_ogip_round_trip(files, tmp_path):
    root, _ = files
    ds = gammaxr.read_gammapy(root / "ogip" / "pha_obs23559.fits")
    written = ds.gamma.to_gammapy(tmp_path / "pha_obs23559.fits")
    assert sorted(p.name for p in written) == sorted(
        p.name for p in ogip_filenames(tmp_path / "pha_obs23559.fits").values()
    )
    back = read_ogip(tmp_path / "pha_obs23559.fits")
    xr.testing.assert_allclose(back, ds, rtol=1e-6)  # the RMF stores float32
    for key in ("livetime", "name", "gti_start", "MJDREFF"):
        assert back.attrs[key] == ds.attrs[key]
    assert back.attrs["n_off_regions"] == ds.attrs["n_off_regions"] == 22
    with pytest.raises(ValueError, match="livetime"):
        ds.drop_attrs().gamma.to_gammapy(tmp_path / "nolivetime.fits")


def test_simulated_spectrum_round_trip(tmp_path):
    """A spectrum dataset as gammaxr's reduction lays it out (with a mask) survives OGIP."""
    rng = np.random.default_rng(3)
    coords = {**axis_coords("energy", np.geomspace(0.5, 50, 9), "TeV")}
    coords.update(axis_coords("energy_true", np.geomspace(0.3, 80, 13), "TeV"))
    kernel = rng.uniform(0, 1, (12, 8))
    kernel /= kernel.sum(axis=1, keepdims=True) * 1.1
    exposure = rng.uniform(1e7, 1e9, 12)
    ds = xr.Dataset(
        {
            "counts": ("energy", rng.poisson(20, 8).astype(float), {"units": ""}),
            "counts_off": ("energy", rng.poisson(60, 8).astype(float), {"units": ""}),
            "acceptance": ("energy", np.ones(8), {"units": ""}),
            "acceptance_off": ("energy", np.full(8, 3.0), {"units": ""}),
            "exposure": ("energy_true", exposure, {"units": "m2 s"}),
            "exposure_irf": ("energy_true", exposure, {"units": "m2 s"}),
            "edisp": (("energy_true", "energy"), kernel, {"units": ""}),
            "mask_safe": ("energy", np.arange(8) > 1, {}),
        },
        coords=coords,
        attrs={"livetime": 1800.0, "name": "7", "on_region": "icrs; circle(83.6, 22.0, 0.11)"},
    )
    ds.gamma.to_gammapy(tmp_path / "pha.fits")
    back = gammaxr.read_gammapy(tmp_path / "pha.fits")
    xr.testing.assert_allclose(back, ds, rtol=1e-6)
    assert back.attrs["obs_id"] == 7
    assert "circle(83.6" in back.attrs["on_region"]


@pytest.mark.parametrize("sed_type", SED_TYPES)
@pytest.mark.parametrize("suffix", [".ecsv", ".fits"])
def test_flux_points_round_trip_every_sed_type(files, tmp_path, sed_type, suffix):
    root, _ = files
    fp = read_flux_points(root / "crab_flux_points.fits")
    path = write_flux_points(fp, tmp_path / f"fp{suffix}", sed_type=sed_type)
    back = read_flux_points(path)
    assert back.attrs["sed_type_init"] == sed_type
    quantity = "norm" if sed_type == "likelihood" else sed_type
    for name in (quantity, f"{quantity}_errn", f"{quantity}_ul", "ts", "is_ul", "counts"):
        np.testing.assert_allclose(back[name], fp[name], rtol=1e-12, err_msg=name)
    if sed_type in ("dnde", "e2dnde"):  # point quantities at e_ref: each gives the other
        np.testing.assert_allclose(back["dnde"], fp["dnde"], rtol=1e-12)
        np.testing.assert_allclose(back["e2dnde_ul"], fp["e2dnde_ul"], rtol=1e-12)
    if sed_type == "likelihood":  # the complete form is lossless
        xr.testing.assert_allclose(back, fp, rtol=1e-12)


def test_light_curve_round_trip(files, tmp_path):
    root, _ = files
    lc = read_flux_points(root / "crab_light_curve.fits")
    for name in ("lc.fits", "lc.ecsv"):
        back = read_flux_points(write_flux_points(lc, tmp_path / name))
        xr.testing.assert_allclose(back.drop_attrs(), lc.drop_attrs(), rtol=1e-12)


def test_estimator_flux_points_written_and_read(files, crab, tmp_path):
    """gammaxr's own estimator output -> gadf-sed -> back, lossless for the SED columns."""
    root, ref = files
    models = Models.read(root / "crab_models.yaml")
    fp = crab.gamma.flux_points(models, [1, 2, 4, 10], source="crab", convention="gammapy")
    back = gammaxr.read_gammapy(fp.gamma.to_gammapy(tmp_path / "fp.ecsv"))
    for name in ("norm", "norm_ul", "dnde", "e2dnde_err", "flux_errp", "eflux", "ts", "is_ul"):
        np.testing.assert_allclose(back[name], fp[name], rtol=1e-12, err_msg=name)
    # and they are Gammapy's flux points of the same file
    np.testing.assert_allclose(back["e2dnde"], ref["crab"]["flux_points_e2dnde"], rtol=0.02)


def test_models_covariance_round_trip(files, tmp_path):
    root, _ = files
    models = Models.read(root / "crab_models.yaml")
    models.write(tmp_path / "m.yaml", covariance=True)
    assert "covariance: m_covariance.dat" in (tmp_path / "m.yaml").read_text()
    back = Models.read(tmp_path / "m.yaml")
    xr.testing.assert_allclose(back.covariance, models.covariance, rtol=1e-12)
    # without a covariance, the parameter errors are written on the diagonal
    bare = Models(list(models)).write(tmp_path / "bare.yaml", covariance=True)
    assert bare is None
    diag = Models.read(tmp_path / "bare.yaml").covariance
    error = models.parameter("crab.spectral.index").error
    assert float(diag.sel(param="crab.spectral.index", param2="crab.spectral.index")) == (
        pytest.approx(error**2)
    )
    assert float(diag.sel(param="crab.spectral.index", param2="crab.spatial.lon_0")) == 0


def test_read_gammapy_bad_input(files, tmp_path):
    root, _ = files
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gammaxr.read_gammapy(tmp_path / "none.fits")
    with pytest.raises(ValueError, match="neither a FITS file nor ECSV"):
        gammaxr.read_gammapy(root / "README.md")
    with pytest.raises(ValueError, match="kind must be one of"):
        gammaxr.read_gammapy(root / "crab_flux_points.fits", kind="spectrum")
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(name="EVENTS")]).writeto(tmp_path / "e.fits")
    with pytest.raises(ValueError, match=r"not a Gammapy map dataset.*EVENTS"):
        gammaxr.read_gammapy(tmp_path / "e.fits")
    with pytest.raises(ValueError, match="cannot tell what to write"):
        xr.Dataset({"x": ("a", [1.0])}).gamma.to_gammapy(tmp_path / "x.fits")
