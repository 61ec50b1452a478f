"""Units at the public entries: Quantities in other units give what floats in the documented
unit give; wrong kinds raise UnitConversionError naming the argument; bad values ValueError."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from astropy import units as u
from astropy.time import Time
from hypothesis import given, settings
from hypothesis import strategies as st

from gammaxr.data.selection import cone_mask, time_mask
from gammaxr.estimators.excess_map import excess_map
from gammaxr.estimators.residuals import residual_map
from gammaxr.estimators.smoothing import box_kernel, gauss_kernel, tophat_kernel
from gammaxr.estimators.ts_map import ts_map
from gammaxr.geom import SkyGrid
from gammaxr.irf import evaluate_aeff, evaluate_bkg_2d, evaluate_edisp, evaluate_psf
from gammaxr.irf.background_model import background_counts
from gammaxr.models import (
    DiskSpatialModel,
    FoVBackgroundModel,
    GaussianSpatialModel,
    GeneralizedGaussianSpatialModel,
    Models,
    PointSpatialModel,
    PowerLaw,
    ShellSpatialModel,
    SkyModel,
)
from gammaxr.reduce import ReductionSpec, SpectrumSpec
from gammaxr.reduce.ring import ring_background, ring_kernel
from gammaxr.simulate.instrument import ToyInstrument
from gammaxr.simulate.specs import DEFAULT_START, ObservationSpec, met
from gammaxr.testing import simulate_counts, toy_map_dataset
from gammaxr.units import to_unit, unit_factor
from test_background_model import ENERGY_EDGES, FOV_EDGES, OFFSET_EDGES, make_store
from test_excess_map import make_dataset
from test_ring_background import R_IN, WIDTH
from test_ring_background import SOURCE as RING_SOURCE
from test_ring_background import simulate as ring_simulate

ENERGY_UNITS = st.sampled_from(["GeV", "MeV", "TeV", "eV", "erg"])
ANGLE_UNITS = st.sampled_from(["arcmin", "arcsec", "rad", "deg"])
SETTINGS = settings(max_examples=25, deadline=None)


@pytest.fixture(scope="module")
def irfs():
    return ToyInstrument(bins_per_decade=4, migra_bin=0.05, rad_bin=0.02).irfs()


@SETTINGS
@given(
    st.lists(st.floats(0.02, 80.0), min_size=2, max_size=5, unique=True),
    ENERGY_UNITS,
    st.floats(0.1, 3.0),
    ANGLE_UNITS,
)
def test_reduction_spec_quantities(edges, e_unit, offset_max, a_unit):
    edges = np.sort(edges)
    if np.any(np.diff(edges) <= 1e-6 * edges[1:]):
        return
    floats = ReductionSpec(edges, edges, offset_max=offset_max, binsz=0.05, width=2.0)
    quantities = ReductionSpec(
        (edges * u.TeV).to(e_unit),
        [str((e * u.TeV).to(e_unit)) for e in edges],
        offset_max=(offset_max * u.deg).to(a_unit),
        binsz=(0.05 * u.deg).to(a_unit),
        width=(2.0 * u.deg).to(a_unit),
    )
    np.testing.assert_allclose(quantities.energy_edges, floats.energy_edges, rtol=1e-12)
    np.testing.assert_allclose(quantities.energy_true_edges, floats.energy_true_edges, rtol=1e-12)
    for name in ("offset_max", "binsz", "width"):
        assert getattr(quantities, name) == pytest.approx(getattr(floats, name), rel=1e-12)


@SETTINGS
@given(st.floats(0.06, 80.0), st.floats(0.0, 3.5), st.floats(0.3, 2.5), ENERGY_UNITS, ANGLE_UNITS)
def test_irf_evaluators_quantities(irfs, energy, offset, migra, e_unit, a_unit):
    e_q, o_q = (energy * u.TeV).to(e_unit), (offset * u.deg).to(a_unit)
    assert evaluate_aeff(irfs.aeff, e_q, o_q) == pytest.approx(
        evaluate_aeff(irfs.aeff, energy, offset), rel=1e-9
    )
    assert evaluate_edisp(irfs.edisp, e_q, migra, o_q) == pytest.approx(
        evaluate_edisp(irfs.edisp, energy, migra, offset), rel=1e-9
    )
    rad = 0.05
    assert evaluate_psf(irfs.psf, e_q, o_q, (rad * u.deg).to(a_unit)) == pytest.approx(
        evaluate_psf(irfs.psf, energy, offset, rad), rel=1e-9
    )
    assert evaluate_bkg_2d(irfs.bkg, e_q, o_q) == pytest.approx(
        evaluate_bkg_2d(irfs.bkg, energy, offset), rel=1e-9
    )


def test_issue_examples(irfs):
    spec = ReductionSpec([100, 1000, 10000] * u.GeV, [0.1, 1, 10])
    assert spec.energy_edges == pytest.approx((0.1, 1.0, 10.0))
    assert evaluate_aeff(irfs.aeff, 1000 * u.GeV, 0.5) == pytest.approx(
        evaluate_aeff(irfs.aeff, 1.0, 0.5)
    )
    assert evaluate_aeff(irfs.aeff, 1.0, 0.5) > 1e4
    with pytest.raises(u.UnitConversionError, match=r"energy_true: 1\.0 m cannot be converted"):
        evaluate_aeff(irfs.aeff, 1 * u.m, 0.5)
    with pytest.raises(u.UnitConversionError, match="offset_max"):
        ReductionSpec([1, 10], [1, 10], offset_max=2 * u.TeV)


@settings(max_examples=10, deadline=None)
@given(st.floats(0.05, 0.3), ANGLE_UNITS)
def test_excess_map_radius_quantity(radius, unit):
    ds = make_dataset(n_pix=20)
    floats = excess_map(ds, radius)
    quantity = excess_map(ds, (radius * u.deg).to(unit))
    np.testing.assert_allclose(
        quantity["significance"].values, floats["significance"].values, equal_nan=True
    )


def test_excess_map_arcmin_from_the_issue():
    ds = make_dataset(n_pix=20)
    np.testing.assert_allclose(
        excess_map(ds, 6 * u.arcmin)["excess"].values,
        excess_map(ds, 0.1)["excess"].values,
        equal_nan=True,
    )
    edges = excess_map(ds, 0.1, energy_edges=[1000, 10000] * u.GeV)
    assert edges.sizes["energy"] == 1
    with pytest.raises(ValueError, match="correlation_radius must be positive"):
        excess_map(ds, -0.1)
    with pytest.raises(u.UnitConversionError, match="correlation_radius"):
        excess_map(ds, 1 * u.s)


@SETTINGS
@given(st.floats(0.01, 100.0), ENERGY_UNITS, st.floats(1.5, 3.5))
def test_models_quantities(energy, e_unit, index):
    floats = PowerLaw(index=index, amplitude=2e-12, reference=1.0)
    quantities = PowerLaw(
        index=index,
        amplitude=(2e-12 * u.Unit("cm-2 s-1 TeV-1")).to(f"cm-2 s-1 {e_unit}-1"),
        reference=(1.0 * u.TeV).to(e_unit),
    )
    e_q = (energy * u.TeV).to(e_unit)
    assert quantities(e_q).to_value("cm-2 s-1 TeV-1") == pytest.approx(floats(energy), rel=1e-9)
    assert floats(str(e_q)).to_value("cm-2 s-1 TeV-1") == pytest.approx(floats(energy), rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"offset_max": -1}, "offset_max must be positive"),
        ({"binsz": 0}, "binsz must be positive"),
        ({"irf_binsz": -0.1}, "irf_binsz must be positive"),
        ({"width": (1, 2, 3)}, "width must be one value or"),
        ({"width": -2}, "width must be positive"),
        ({"aeff_percent": 120}, "aeff_percent must be a percentage"),
        ({"bias_percent": -5}, "bias_percent must be positive"),
        ({"energy_edges": []}, "energy_edges must be a 1D sequence of at least 2 edges"),
        ({"energy_true_edges": [1, 1]}, "energy_true_edges must be positive increasing"),
        ({"rad_edges": [0.1, 0.05]}, "rad_edges must be increasing"),
        ({"background_oversampling": 0}, "background_oversampling must be a positive integer"),
    ],
)
def test_reduction_spec_argument_checks(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReductionSpec(**{"energy_edges": [1, 10], "energy_true_edges": [1, 10], **kwargs})


def test_to_unit_contract():
    assert to_unit(2.0, "deg", "x") == 2.0  # floats keep meaning the documented unit
    assert to_unit("120 arcmin", "deg", "x") == pytest.approx(2.0)
    assert to_unit("1e5", "m2", "x") == 1e5
    np.testing.assert_allclose(to_unit([1, "500 GeV"], "TeV", "x"), [1.0, 0.5])
    with pytest.raises(ValueError, match="x: cannot read 'abc'"):
        to_unit("abc", "deg", "x")


def test_spectrum_spec_quantities():
    region = "icrs; circle(83.63, 22.01, 0.1)"
    floats = SpectrumSpec(region, [0.1, 1, 10], [0.05, 1, 20], offset_max=2.0)
    quantities = SpectrumSpec(
        region, [100, 1000, 10000] * u.GeV, ["50 GeV", 1, "2e7 MeV"], offset_max=120 * u.arcmin
    )
    np.testing.assert_allclose(quantities.energy_edges, floats.energy_edges)
    np.testing.assert_allclose(quantities.energy_true_edges, floats.energy_true_edges)
    assert quantities.offset_max == pytest.approx(floats.offset_max)
    with pytest.raises(ValueError, match="region_binsz must be positive"):
        SpectrumSpec(region, [0.1, 1], [0.1, 1], region_binsz=0)


SPATIAL_CASES = [
    (GaussianSpatialModel, {"sigma": 0.2, "e": 0.5, "phi": 30.0}),
    (DiskSpatialModel, {"r_0": 0.3, "edge_width": 0.1}),
    (ShellSpatialModel, {"radius": 0.3, "width": 0.1}),
    (GeneralizedGaussianSpatialModel, {"r_0": 0.2, "eta": 0.6}),
]
ANGLE_PARAMETERS = ("lon_0", "lat_0", "sigma", "r_0", "radius", "width", "phi")


@SETTINGS
@given(
    st.sampled_from(SPATIAL_CASES),
    st.floats(0.0, 359.0),
    st.floats(-80.0, 80.0),
    ANGLE_UNITS,
    st.booleans(),
)
def test_spatial_models_quantities(case, lon_0, lat_0, a_unit, as_string):
    cls, shape = case
    values = {"lon_0": lon_0, "lat_0": lat_0, **shape}

    def convert(name, value):
        if name not in ANGLE_PARAMETERS:
            return value
        q = (value * u.deg).to(a_unit)
        return f"{float(q.value)!r} {a_unit}" if as_string else q

    floats = cls(**values)
    quantities = cls(**{k: convert(k, v) for k, v in values.items()})
    for name, value in floats.values.items():
        assert quantities.parameter(name).unit == floats.parameter(name).unit
        assert quantities.values[name] == pytest.approx(value, rel=1e-12, abs=1e-12)
    lon = lon_0 + np.array([0.0, 0.1, -0.25, 0.4])
    lat = np.clip(lat_0 + np.array([0.0, 0.15, 0.05, -0.27]), -90, 90)
    np.testing.assert_allclose(
        quantities((lon * u.deg).to(a_unit), (lat * u.deg).to(a_unit)),
        floats(lon, lat),
        rtol=1e-9,
    )
    if cls is ShellSpatialModel:
        # its profile is singular at the inner radius: pixel sums there move by percents when
        # a sub-pixel centre moves by 1 ulp (as a deg -> rad -> deg round trip does)
        return
    grid = np.linspace(-1, 1, 11) + 0.0123
    grid_lon, grid_lat = lon_0 + grid, lat_0 + grid
    np.testing.assert_allclose(
        floats.integrate_pixels(
            (grid_lon * u.deg).to(a_unit), (grid_lat * u.deg).to(a_unit), "icrs"
        ),
        floats.integrate_pixels(grid_lon, grid_lat, "icrs"),
        rtol=1e-9,
    )


def test_spatial_model_errors_name_the_argument():
    point = PointSpatialModel(lon_0="83.63 deg", lat_0=22.01 * 60 * u.arcmin)
    assert point.position == pytest.approx((83.63, 22.01))
    with pytest.raises(u.UnitConversionError, match=r"parameter 'sigma': 0\.1 TeV cannot be"):
        GaussianSpatialModel(lon_0=0, lat_0=0, sigma=0.1 * u.TeV)
    with pytest.raises(u.UnitConversionError, match="parameter 'lat_0'"):
        PointSpatialModel(lon_0=0, lat_0="3 s")
    with pytest.raises(u.UnitConversionError, match=r"lat: .* cannot be converted to 'deg'"):
        DiskSpatialModel(lon_0=0, lat_0=0, r_0=0.2)(0.0, 1 * u.m)
    with pytest.raises(u.UnitConversionError, match="emin"):
        PowerLaw().sample_energy(10, 1 * u.s, 10)
    energies = PowerLaw().sample_energy(50, "100 GeV", 10 * u.TeV, rng=1)
    np.testing.assert_array_equal(energies, PowerLaw().sample_energy(50, 0.1, 10.0, rng=1))


@pytest.fixture(scope="module")
def ts_toy():
    toy = toy_map_dataset(width=0.8, binsz=0.08)
    source = SkyModel(
        PowerLaw(index=2.0, amplitude="5e-12 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=83.63, lat_0=22.01),
        name="src",
    )
    return simulate_counts(toy, Models([source, FoVBackgroundModel("toy")]), 3)


@settings(max_examples=5, deadline=None)
@given(st.floats(0.05, 0.2), ANGLE_UNITS, ENERGY_UNITS)
def test_ts_map_kernel_and_edges_quantities(ts_toy, sigma, a_unit, e_unit):
    floats = ts_map(
        ts_toy,
        kernel_model=SkyModel(PowerLaw(index=2.0), GaussianSpatialModel(sigma=sigma), name="k"),
        energy_edges=[1.0, 2.0, 10.0],
    )
    kernel = GaussianSpatialModel(sigma=(sigma * u.deg).to(a_unit), lon_0="0 arcmin")
    quantities = ts_map(
        ts_toy,
        kernel_model=SkyModel(PowerLaw(index=2.0, reference=(1 * u.TeV).to(e_unit)), kernel),
        energy_edges=([1.0, 2.0, 10.0] * u.TeV).to(e_unit),
    )
    assert float(floats["ts"].max()) > 25  # the source is seen: the kernel size matters
    for name in ("ts", "norm", "flux"):
        np.testing.assert_allclose(quantities[name], floats[name], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(quantities["energy_bounds"], floats["energy_bounds"])


def test_ts_map_argument_errors(ts_toy):
    with pytest.raises(TypeError, match="kernel_model must be a SkyModel"):
        ts_map(ts_toy, kernel_model=0.1)
    with pytest.raises(u.UnitConversionError, match="energy_edges"):
        ts_map(ts_toy, energy_edges=[1, 10] * u.deg)


@pytest.fixture(scope="module")
def off_store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("off"))


@pytest.fixture(scope="module")
def off_runs(off_store):
    return off_store.observations()[:2]


@settings(max_examples=5, deadline=None)
@given(ENERGY_UNITS, ANGLE_UNITS, st.sampled_from(["offset", "fov"]))
def test_background_counts_quantities(off_runs, e_unit, a_unit, layout):
    spatial = (
        {"offset_edges": OFFSET_EDGES}
        if layout == "offset"
        else {"fov_lon_edges": FOV_EDGES, "fov_lat_edges": FOV_EDGES}
    )
    options = {"gti_tolerance": 1.0, "exclusion_binsz": 0.05}
    floats = background_counts(off_runs, ENERGY_EDGES, **spatial, **options).compute()
    quantities = background_counts(
        off_runs,
        (ENERGY_EDGES * u.TeV).to(e_unit),
        **{k: (v * u.deg).to(a_unit) for k, v in spatial.items()},
        gti_tolerance="1000 ms",
        exclusion_binsz=(0.05 * u.deg).to(a_unit),
    ).compute()
    assert float(floats["counts"].sum()) > 1000
    xr.testing.assert_allclose(quantities, floats, rtol=1e-12)


def test_background_counts_errors_name_the_argument(off_runs):
    with pytest.raises(u.UnitConversionError, match="offset_edges"):
        background_counts(off_runs, ENERGY_EDGES, offset_edges=[0, 1, 2] * u.TeV)
    with pytest.raises(u.UnitConversionError, match="energy_edges"):
        background_counts(off_runs, [1, 10] * u.deg, offset_edges=OFFSET_EDGES)
    with pytest.raises(u.UnitConversionError, match="gti_tolerance"):
        background_counts(off_runs, ENERGY_EDGES, offset_edges=OFFSET_EDGES, gti_tolerance="1 m")
    with pytest.raises(ValueError, match="exclusion_binsz must be positive"):
        background_counts(off_runs, ENERGY_EDGES, offset_edges=OFFSET_EDGES, exclusion_binsz=0)


@SETTINGS
@given(st.floats(0.05, 0.5), st.floats(0.5, 5.0), st.floats(0.1, 100.0), ANGLE_UNITS)
def test_sky_grid_quantities(binsz, width, radius, a_unit):
    def q(x):
        return (x * u.deg).to(a_unit)

    floats = SkyGrid.from_center((83.63, 22.01), (width, width / 2), binsz)
    quantities = SkyGrid.from_center((q(83.63), str(q(22.01))), (q(width), q(width / 2)), q(binsz))
    assert quantities.shape == floats.shape
    np.testing.assert_allclose(quantities.lon, floats.lon, rtol=1e-12)
    np.testing.assert_allclose(quantities.lat, floats.lat, rtol=1e-12)
    table = xr.Dataset(
        {
            "ra_pnt": ("obs_id", [83.6, 84.5, 90.0, 120.0]),
            "dec_pnt": ("obs_id", [22.0, 22.5, 25.0, -10.0]),
        },
        coords={"obs_id": [1, 2, 3, 4]},
    )
    np.testing.assert_array_equal(
        cone_mask(table, (83.63, 22.01), q(radius)), cone_mask(table, (83.63, 22.01), radius)
    )


# times 37.5 s away from the run limits (multiples of 1000 s): conversions cannot cross them
OFF_EDGE_TIMES = st.integers(0, 500).map(lambda k: 100.0 * k + 37.5)


@SETTINGS
@given(OFF_EDGE_TIMES, OFF_EDGE_TIMES, st.sampled_from(["s", "min", "h", "d", "ms"]))
def test_time_selection_quantities(start, stop, t_unit):
    table = xr.Dataset(
        {
            "tstart": ("obs_id", [0.0, 1e4, 2e4, 3e4]),
            "tstop": ("obs_id", [9e3, 1.9e4, 2.9e4, 3.9e4]),
        },
        coords={"obs_id": [1, 2, 3, 4]},
    )
    for how in ("overlap", "within"):
        np.testing.assert_array_equal(
            time_mask(table, (start * u.s).to(t_unit), str((stop * u.s).to(t_unit)), how=how),
            time_mask(table, start, stop, how=how),
        )


def test_selection_and_grid_errors_name_the_argument(off_store):
    assert off_store.select_cone((83.63, 22.01), "30 arcmin").obs_ids.tolist() == [1]
    assert len(off_store.select_cone((83.63, 22.01), 0.5)) == 1
    with pytest.raises(u.UnitConversionError, match="radius"):
        off_store.select_cone((83.63, 22.01), 1 * u.TeV)
    with pytest.raises(ValueError, match="radius must be positive"):
        off_store.select_cone((83.63, 22.01), -1)
    with pytest.raises(u.UnitConversionError, match="binsz"):
        SkyGrid.from_center((0, 0), 1.0, 0.1 * u.s)
    with pytest.raises(u.UnitConversionError, match="width"):
        SkyGrid.from_center((0, 0), "1 TeV", 0.1)
    with pytest.raises(u.UnitConversionError, match="stop"):
        time_mask(xr.Dataset(coords={"obs_id": [1]}), None, 1 * u.m)


@SETTINGS
@given(
    st.floats(0.0, 359.0),
    st.floats(-60.0, 60.0),
    st.floats(60.0, 3000.0),
    ANGLE_UNITS,
    st.sampled_from(["s", "min", "h"]),
)
def test_observation_spec_quantities(ra, dec, livetime, a_unit, t_unit):
    floats = ObservationSpec(1, ra, dec, livetime, "toy", zenith=30.0, target_ra=ra, tstart=1e8)
    quantities = ObservationSpec(
        1,
        (ra * u.deg).to(a_unit),
        str((dec * u.deg).to(a_unit)),
        (livetime * u.s).to(t_unit),
        "toy",
        zenith=(30 * u.deg).to(a_unit),
        target_ra=(ra * u.deg).to(a_unit),
        tstart=(1e8 * u.s).to(t_unit),
    )
    for name in ("ra", "dec", "livetime", "zenith", "target_ra", "tstart", "tstop"):
        assert getattr(quantities, name) == pytest.approx(
            getattr(floats, name), rel=1e-12, abs=1e-9
        )


def test_observation_spec_errors_name_the_argument():
    spec = ObservationSpec(7, 83.63, 22.01, "30 min", "toy", tstart=Time(DEFAULT_START))
    assert spec.livetime == pytest.approx(1800.0)
    assert spec.tstart == pytest.approx(met(DEFAULT_START))
    with pytest.raises(u.UnitConversionError, match="obs_id 7: livetime"):
        ObservationSpec(7, 83.63, 22.01, 30 * u.deg, "toy")
    with pytest.raises(ValueError, match="obs_id 7: dec must be in"):
        ObservationSpec(7, 83.63, 2 * u.rad, 1800, "toy")


@SETTINGS
@given(st.floats(0.03, 0.3), st.floats(0.02, 0.2), ANGLE_UNITS)
def test_smoothing_and_ring_kernels_quantities(size, width, a_unit):
    grid = SkyGrid.from_center((150.0, 30.0), 1.2, 0.02)
    size_q, width_q = (size * u.deg).to(a_unit), str((width * u.deg).to(a_unit))
    for kernel in (tophat_kernel, gauss_kernel, box_kernel):
        np.testing.assert_allclose(kernel(grid, size_q), kernel(grid, size), rtol=1e-12)
    np.testing.assert_array_equal(
        ring_kernel(grid, size_q, width_q), ring_kernel(grid, size, width)
    )


def test_ring_background_and_residuals_quantities():
    ds = ring_simulate([40.0, 120.0], n_pix=40)
    floats = ring_background(ds, R_IN, WIDTH, RING_SOURCE)
    quantities = ring_background(ds, R_IN * 60 * u.arcmin, f"{WIDTH * 3600} arcsec", RING_SOURCE)
    xr.testing.assert_allclose(quantities, floats)
    counts, npred = ds["counts"].isel(obs_id=0), ds["background"].isel(obs_id=0)
    xr.testing.assert_allclose(
        residual_map(counts, npred, smooth_kernel="gauss", smooth_radius=6 * u.arcmin),
        residual_map(counts, npred, smooth_kernel="gauss", smooth_radius=0.1),
    )
    with pytest.raises(u.UnitConversionError, match="r_in"):
        ring_background(ds, 0.4 * u.TeV, WIDTH, RING_SOURCE)
    with pytest.raises(u.UnitConversionError, match="smooth_radius"):
        residual_map(counts, npred, smooth_kernel="gauss", smooth_radius="1 s")
    with pytest.raises(ValueError, match="top-hat radius must be positive"):
        tophat_kernel(SkyGrid.from_center((0, 0), 1.0, 0.1), "-1 arcmin")


def test_toy_instrument_takes_quantities():
    from gammaxr.simulate import ToyInstrument

    plain = ToyInstrument()
    converted = ToyInstrument(
        aeff_max=10 * u.km**2 / 100,  # 1e5 m2
        energy_threshold=150 * u.GeV,
        psf_sigma="2.4 arcmin",
        bkg_rate=2.0e-2 * u.Unit("s-1 GeV-1 sr-1"),
        offset_max=4 * u.deg,
        rad_max="1.5 deg",
    )
    for field in ("aeff_max", "energy_threshold", "psf_sigma", "bkg_rate", "offset_max"):
        assert getattr(converted, field) == pytest.approx(getattr(plain, field), rel=1e-12)
    assert converted.rad_max == plain.rad_max
    with pytest.raises(u.UnitConversionError, match=r"ToyInstrument\.psf_sigma"):
        ToyInstrument(psf_sigma=1 * u.TeV)


def test_unit_factor_converts_and_names_bad_units():
    assert unit_factor("cm2", "m2") == pytest.approx(1e-4)
    assert unit_factor("s-1 MeV-1 sr-1", "s-1 sr-1 TeV-1") == pytest.approx(1e6)
    assert unit_factor("m2", "m2") == 1.0
    with pytest.raises(u.UnitConversionError):
        unit_factor("m2", "s")
    with pytest.raises(ValueError):
        unit_factor("not-a-unit", "m2")
