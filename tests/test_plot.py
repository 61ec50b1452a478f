"""Plotting: figures build, labels and units, east-left orientation, dask-backed inputs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord
from astropy.visualization.wcsaxes import WCSAxes

import gammaxr  # noqa: F401  (registers ds.gamma)
from gammaxr.geom import SkyGrid, axis_coords
from gammaxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel
from gammaxr.plot import (
    display_wcs,
    map_image,
    plot_flux_points,
    plot_map,
    plot_residuals,
    plot_significance_distribution,
    plot_spectrum,
    significance_distribution,
    spectrum_butterfly,
)
from gammaxr.testing import toy_map_dataset

CENTER = (83.63, 22.01)
EAST = (CENTER[0] + 0.4, CENTER[1] + 0.1)  # east = larger RA


@pytest.fixture(autouse=True)
def _agg_backend():
    """Draw off-screen (Agg) and close every figure after each test."""
    backend = plt.get_backend()
    plt.switch_backend("Agg")
    yield
    plt.close("all")
    plt.switch_backend(backend)


def bump_dataset(frame: str = "icrs", chunked: bool = False) -> xr.Dataset:
    """Toy dataset whose counts are a Gaussian bump east of the grid centre."""
    ds = toy_map_dataset(center=CENTER, width=1.6, binsz=0.04, frame=frame)
    lon, lat = ds["lon"], ds["lat"]
    bump = 50 * np.exp(-((lon - EAST[0]) ** 2 + (lat - EAST[1]) ** 2) / (2 * 0.05**2))
    counts = (bump + ds["background"]).transpose(*ds["counts"].dims)
    ds = ds.assign(counts=counts.assign_attrs(units=""))
    return ds.chunk({"energy": 1}) if chunked else ds


def test_display_wcs_mirrors_lon():
    grid = SkyGrid.from_center(CENTER, width=(2.0, 1.0), binsz=0.1)
    wcs = display_wcs(grid)
    n_lon = grid.shape[1]
    assert wcs.wcs.cdelt[0] < 0
    x = np.arange(n_lon)
    world = wcs.pixel_to_world(x, np.zeros(n_lon))
    np.testing.assert_allclose(world.ra.deg, grid.lon[::-1], atol=1e-9)
    np.testing.assert_allclose(world.dec.deg, grid.lat[0], atol=1e-9)


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_plot_map_source_east_appears_left(chunked):
    ds = bump_dataset(chunked=chunked)
    ax = plot_map(ds["counts"].assign_attrs(frame="icrs"), sum_over="energy")
    assert isinstance(ax, WCSAxes)
    image = np.asarray(ax.images[-1].get_array())
    row, col = np.unravel_index(np.argmax(image), image.shape)
    assert col < image.shape[1] / 2 - 5  # left of centre on the displayed image
    peak = ax.wcs.pixel_to_world(col, row)
    assert peak.separation(SkyCoord(*EAST, unit="deg")).deg < 0.04
    # the displayed image is the data, mirrored
    total = ds["counts"].sum("energy").values
    np.testing.assert_allclose(image, total[:, ::-1], rtol=1e-6)
    # east left: world longitude decreases with the display x pixel
    lon_left = ax.wcs.pixel_to_world(0, row).ra.deg
    lon_right = ax.wcs.pixel_to_world(image.shape[1] - 1, row).ra.deg
    assert lon_left > lon_right


def test_plot_map_labels_and_colorbar():
    ds = bump_dataset()
    da = ds["counts"].sum("energy").assign_attrs(frame="icrs", units="")
    ax = plot_map(da.rename("counts"), title="counts", label="counts per pixel")
    assert "Right Ascension" in ax.coords[0].get_axislabel()
    assert "Declination" in ax.coords[1].get_axislabel()
    assert ax.get_title() == "counts"
    colorbar_axes = [a for a in ax.figure.axes if a is not ax]
    assert colorbar_axes and colorbar_axes[0].get_ylabel() == "counts per pixel"
    ax = plot_map(ds["background"].sum("energy").assign_attrs(frame="icrs", units="s-1"))
    assert ax.figure.axes[-1].get_ylabel() == "background [s-1]"


def test_plot_map_galactic_labels():
    ds = toy_map_dataset(center=(184.56, -5.78), frame="galactic")
    ax = plot_map(ds["background"].isel(energy=0).assign_attrs(frame="galactic"))
    assert ax.coords[0].get_axislabel() == "Galactic longitude"
    assert ax.coords[1].get_axislabel() == "Galactic latitude"


def test_plot_map_on_plain_axes_inverts_x():
    ds = bump_dataset()
    _, ax = plt.subplots()
    plot_map(ds["counts"].assign_attrs(frame="icrs"), ax, sum_over="energy", add_colorbar=False)
    left, right = ax.get_xlim()
    assert left > right  # longitude decreasing to the right
    assert ax.get_xlabel().startswith("Right Ascension")


def test_plot_map_on_foreign_wcs_axes():
    """Drawn through a transform on axes of another WCS (here the grid's own, east right)."""
    ds = bump_dataset()
    grid = SkyGrid.from_xarray(ds)
    fig = plt.figure()
    ax = fig.add_subplot(projection=grid.wcs)
    plot_map(ds["counts"].assign_attrs(frame="icrs"), ax, sum_over="energy")
    fig.canvas.draw()
    assert ax.images


def test_map_image_errors():
    ds = bump_dataset()
    with pytest.raises(ValueError, match="extra dims"):
        map_image(ds["counts"].assign_attrs(frame="icrs"))
    with pytest.raises(KeyError, match="frame"):
        map_image(ds["counts"].sum("energy").drop_attrs())
    with pytest.raises(ValueError, match="cannot sum"):
        map_image(ds["counts"].assign_attrs(frame="icrs"), sum_over="time")
    image, _, grid = map_image(ds["counts"].isel(energy=[1]).assign_attrs(frame="icrs"))
    assert image.shape == grid.shape


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_accessor_plot_map_sums_inside_safe_mask(chunked):
    ds = bump_dataset()
    mask = ds["mask_safe"].copy(data=np.ones(ds["mask_safe"].shape, bool))
    mask[0] = False  # first energy bin unsafe
    ds = ds.assign(mask_safe=mask)
    ds = ds.chunk({"energy": 1}) if chunked else ds
    ax = ds.gamma.plot_map("counts")
    image = np.asarray(ax.images[-1].get_array())
    expected = ds["counts"].isel(energy=slice(1, None)).sum("energy").values[:, ::-1]
    np.testing.assert_allclose(image, expected, rtol=1e-6)
    ax = ds.gamma.plot_map("counts", isel={"energy": 0}, masked=False)
    expected = ds["counts"].isel(energy=0).values[:, ::-1]
    np.testing.assert_allclose(np.asarray(ax.images[-1].get_array()), expected, rtol=1e-6)
    with pytest.raises(KeyError, match="no variable"):
        ds.gamma.plot_map("nope")


def _spectral_points(fig):
    ax = fig.axes[-1]
    (line,) = [ln for ln in ax.lines if ln.get_marker() == "o"]
    return line.get_xdata(), line.get_ydata()


@pytest.mark.parametrize("chunked", [False, True], ids=["numpy", "dask"])
def test_plot_residuals(chunked):
    ds = toy_map_dataset(center=CENTER)
    src = SkyModel(
        PowerLaw(index=2.5, amplitude="5e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=EAST[0], lat_0=EAST[1]),
        name="src",
    )
    models = Models([src, FoVBackgroundModel("toy")])
    expected = ds.gamma.npred(models)
    ds = ds.assign(
        counts=expected.transpose(*ds["counts"].dims).drop_vars(["energy_lo", "energy_hi"])
    )
    ds = ds.chunk({"energy": 1}) if chunked else ds
    fig = plot_residuals(ds, models)
    map_ax = fig.axes[0]
    assert isinstance(map_ax, WCSAxes)
    assert "Right Ascension" in map_ax.coords[0].get_axislabel()
    energy, res = _spectral_points(fig)
    assert energy.size == ds.sizes["energy"]
    np.testing.assert_allclose(res, 0, atol=1e-5)  # counts = npred exactly
    assert fig.axes[-1].get_xscale() == "log"
    assert "npred" in fig.axes[-1].get_ylabel()
    # against the background only, the source shows as a positive residual
    fig = ds.gamma.plot_residuals()
    _, res = _spectral_points(fig)
    assert np.all(res > 0.05)
    image = np.asarray(fig.axes[0].images[-1].get_array())
    _, col = np.unravel_index(np.nanargmax(image), image.shape)
    assert col < image.shape[1] / 2  # source east of centre: left
    # npred given as a DataArray
    fig = plot_residuals(ds, expected, method="diff", smooth_kernel=None)
    _, res = _spectral_points(fig)
    np.testing.assert_allclose(res, 0, atol=1e-5)


def test_significance_distribution_and_plot():
    rng = np.random.default_rng(1)
    values = rng.normal(0.3, 1.2, size=(100, 100))
    values[:10, :10] = 20.0  # a "source", excluded by the mask
    values[50, 50] = np.nan
    mask = np.ones(values.shape, bool)
    mask[:10, :10] = False
    stats = significance_distribution(values, mask)
    assert stats["n"] == 100 * 100 - 100 - 1
    assert abs(stats["mean"] - 0.3) < 4 * stats["mean_err"]
    assert abs(stats["sigma"] - 1.2) < 4 * stats["sigma_err"]
    unmasked = significance_distribution(values)
    assert unmasked["mean"] > stats["mean"] + 0.1
    da = xr.DataArray(values, dims=("lat", "lon")).chunk(50)
    mask_da = xr.DataArray(mask, dims=("lat", "lon"))
    assert significance_distribution(da, mask_da)["mean"] == pytest.approx(stats["mean"])
    ax = plot_significance_distribution(da, mask_da)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("N(0, 1)" in t for t in texts)
    assert any(
        f"mean {stats['mean']:.2f}" in t and f"width {stats['sigma']:.2f}" in t for t in texts
    )
    assert ax.get_yscale() == "log"
    assert "significance" in ax.get_xlabel()
    empty = significance_distribution(values, np.zeros(values.shape, bool))
    assert empty["n"] == 0 and np.isnan(empty["mean"])


def _fit_like_covariance(names, cov):
    return xr.Dataset(
        {"covariance": (("param", "param2"), cov)},
        coords={"param": names, "param2": names},
    )


def test_spectrum_butterfly_matches_analytic_propagation():
    amp, index = 4e-11, 2.5
    model = SkyModel(PowerLaw(index=index, amplitude=amp, reference=1.0), name="src")
    names = ["src.spectral.index", "src.spectral.amplitude", "src.spectral.reference", "x.y.z"]
    c_ii, c_aa, c_ia = 0.01, (0.1 * amp) ** 2, -0.3 * 0.1 * 0.1 * amp
    cov = np.zeros((4, 4))
    cov[0, 0], cov[1, 1], cov[0, 1], cov[1, 0] = c_ii, c_aa, c_ia, c_ia
    cov[3, 3] = 5.0  # another model's parameter: ignored
    energy = np.array([0.5, 1.0, 3.0, 10.0])
    band = spectrum_butterfly(model, _fit_like_covariance(names, cov), energy)
    f = amp * energy**-index
    log = np.log(energy)
    var = f**2 * (c_aa / amp**2 + log**2 * c_ii - 2 * log * c_ia / amp)
    np.testing.assert_allclose(band["dnde"], f, rtol=1e-10)
    np.testing.assert_allclose(band["dnde_err"], np.sqrt(var), rtol=1e-5)
    np.testing.assert_allclose(band["e2dnde_err"], energy**2 * np.sqrt(var), rtol=1e-5)
    assert band["e2dnde"].attrs["units"] == "TeV cm-2 s-1"
    # at the reference energy only the amplitude error counts
    assert band["dnde_err"].sel(energy=1.0) == pytest.approx(0.1 * amp, rel=1e-5)
    with pytest.raises(KeyError, match="covariance"):
        spectrum_butterfly(model.spectral, _fit_like_covariance(names, cov), energy)
    band2 = spectrum_butterfly(
        model.spectral, _fit_like_covariance(names, cov), energy, prefix="src.spectral."
    )
    xr.testing.assert_allclose(band, band2)


def flux_points_dataset() -> xr.Dataset:
    edges = np.geomspace(1, 30, 5)
    e_ref = np.sqrt(edges[1:] * edges[:-1])
    e2 = 4e-11 * e_ref**-0.5 * 1e0
    coords = dict(axis_coords("energy", edges, "TeV"))
    coords["e_ref"] = ("energy", e_ref, {"units": "TeV"})
    unit = {"units": "TeV cm-2 s-1"}
    return xr.Dataset(
        {
            "e2dnde": ("energy", e2, unit),
            "e2dnde_errn": ("energy", 0.1 * e2, unit),
            "e2dnde_errp": ("energy", 0.12 * e2, unit),
            "e2dnde_ul": ("energy", 1.3 * e2, unit),
            "is_ul": ("energy", np.array([False, False, False, True])),
        },
        coords=coords,
    )


def test_plot_spectrum_with_band_and_flux_points():
    model = SkyModel(PowerLaw(index=2.5, amplitude=4e-11), name="src")
    names = ["src.spectral.index", "src.spectral.amplitude"]
    cov = np.diag([0.01, (4e-12) ** 2])
    fp = flux_points_dataset()
    ax = plot_spectrum(model, _fit_like_covariance(names, cov), fp)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "Energy [TeV]"
    assert "TeV cm-2 s-1" in ax.get_ylabel()
    assert ax.collections, "no error band drawn"
    curve = ax.lines[0]
    energy = curve.get_xdata()
    assert energy[0] == pytest.approx(1.0) and energy[-1] == pytest.approx(30.0)
    np.testing.assert_allclose(curve.get_ydata(), 4e-11 * energy**-0.5, rtol=1e-10)
    points = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert points and points[0].get_xdata().size == 3  # the fourth is an upper limit
    # no covariance: the model alone, dnde
    ax = plot_spectrum(model, energy_range=(0.1, 10), sed_type="dnde")
    assert "cm-2 s-1 TeV-1" in ax.get_ylabel() and not ax.collections
    with pytest.raises(ValueError, match="sed_type"):
        plot_spectrum(model, sed_type="flux")


def test_plot_flux_points_symmetric_errors():
    fp = flux_points_dataset().drop_vars(["e2dnde_errn", "e2dnde_errp", "e2dnde_ul", "is_ul"])
    fp = fp.assign(e2dnde_err=0.1 * fp["e2dnde"])
    ax = plot_flux_points(fp)
    (line,) = [ln for ln in ax.lines if ln.get_marker() == "o"]
    assert line.get_xdata().size == 4
    with pytest.raises(KeyError, match="dnde"):
        plot_flux_points(fp, sed_type="dnde")


# ------------------------------------------------------------------ figure fixes (issue 13)


def _inside_figure(fig) -> bool:
    """Every artist (labels, ticks, titles, colour bars) lies inside the saved figure."""
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer()).transformed(fig.dpi_scale_trans)
    return box.x0 >= -1 and box.y0 >= -1 and box.x1 <= fig.bbox.x1 + 1 and box.y1 <= fig.bbox.y1 + 1


def test_significance_map_has_a_symmetric_diverging_scale():
    from gammaxr.plot import plot_significance_map

    ds = bump_dataset()
    sig = (ds["counts"] - ds["background"]).sum("energy") / 2
    sig = sig.assign_attrs(frame="icrs", units="").rename("significance")
    peak = float(np.abs(sig).max())
    ax = plot_significance_map(sig, title="significance")
    norm = ax.images[-1].norm
    assert norm.vmin == pytest.approx(-norm.vmax) and norm.vmax == pytest.approx(max(5, peak))
    assert norm(0.0) == pytest.approx(0.5)  # white at zero
    assert norm(-1.0) == pytest.approx(1 - norm(1.0))  # -1 sigma as far from white as +1
    assert 0.02 < abs(norm(1.0) - 0.5) < 0.2  # ordinary noise visible, far from saturating
    ticks = ax.images[-1].colorbar.get_ticks()
    np.testing.assert_allclose(ticks, -ticks[::-1])
    assert _inside_figure(ax.figure)


def test_dataset_map_titles_name_the_energy_range():
    ds = bump_dataset()
    safe = np.ones(ds["mask_safe"].shape, bool)
    safe[0] = False  # 1-2 TeV unsafe: the range drawn is 2-10 TeV
    ds = ds.assign(mask_safe=(ds["mask_safe"].dims, safe))
    ax = ds.gamma.plot_map("counts")
    assert ax.get_title() == "counts, 2-10 TeV"
    assert ds.gamma.plot_map("counts", isel={"energy": 0}).get_title() == "counts, 1-2 TeV"
    assert _inside_figure(ax.figure)


def test_exposure_summed_over_true_energy():
    ds = toy_map_dataset(center=CENTER)
    ax = ds.gamma.plot_map("exposure", sum_over="energy_true")
    image = np.asarray(ax.images[-1].get_array())
    np.testing.assert_allclose(image, ds["exposure"].sum("energy_true").values[:, ::-1])
    assert ax.figure.axes[-1].get_ylabel() == "exposure summed over energy_true [m2 s]"
    assert ax.get_title() == "exposure, 0.8-12 TeV (true)"
    with pytest.raises(ValueError, match="cannot sum 'counts' over"):
        ds.gamma.plot_map("counts", sum_over="energy_true")


@pytest.mark.parametrize("method", ["diff", "diff/model", "diff/sqrt(model)"])
def test_residual_map_title_matches_its_colour_bar(method):
    from gammaxr.plot.labels import RESIDUAL_LABELS

    fig = plot_residuals(toy_map_dataset(center=CENTER), method=method)
    map_ax, colorbar_ax = fig.axes[0], fig.axes[1]
    assert fig.axes[0].get_title().splitlines()[0] == RESIDUAL_LABELS[method]
    assert colorbar_ax.get_ylabel() == RESIDUAL_LABELS[method]
    assert "1-10 TeV" in map_ax.get_title()
    assert _inside_figure(fig)


def test_significance_distribution_legend_leaves_the_peak_free():
    values = np.random.default_rng(2).normal(size=(60, 60))
    ax = plot_significance_distribution(values, title="MSH 15-52")
    assert ax.get_title() == "MSH 15-52"
    ax.figure.canvas.draw()
    legend = ax.get_legend().get_window_extent().transformed(ax.transData.inverted())
    peak = max(float(np.max(p.get_xy()[:, 1])) for p in ax.patches)  # the histogram's top
    assert peak > 0.3
    assert legend.y0 > peak
    assert _inside_figure(ax.figure)


def test_spectrum_has_a_title_and_unclipped_labels():
    model = SkyModel(PowerLaw(index=2.5, amplitude=4e-11), name="crab")
    ax = plot_spectrum(model, energy_range=(1, 10))
    assert ax.get_title() == "crab, 1-10 TeV"
    assert _inside_figure(ax.figure)
