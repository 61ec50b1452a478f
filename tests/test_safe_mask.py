"""Safe energy thresholds (Gammapy 2.1's DL4 default and the DL3 option) and the on-time.

Known-truth cases on synthetic inputs, and the H.E.S.S. Crab runs against the thresholds
that Gammapy 2.1 computes on the same data (``benchmarks/gammapy_safe_thresholds.py``, run
with the separate Gammapy environment; its output is copied below).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gammaxr.data.observation import Observation
from gammaxr.geom import SkyGrid, exclusion_mask
from gammaxr.geom.axes import axis_coords
from gammaxr.reduce.dataset import ReductionSpec, reduce_observation, safe_energy_inputs
from gammaxr.reduce.safe_mask import (
    SafeEnergyInputs,
    aeff_max_energy,
    bkg_peak_energy,
    check_safe_mask_options,
    edisp_bias_energy,
    energy_thresholds,
    safe_energy_range,
    safe_mask_offset,
    safe_mask_position,
    table_energy_inputs,
)
from gammaxr.reduce.spectrum import SpectrumSpec, spectrum_dataset, spectrum_safe_energy_inputs

# ------------------------------------------------------------------- known truth


def test_aeff_max_inverts_a_power_law_exactly():
    """A ~ E^2 below 2 TeV, flat above: 10 % of the max is reached at 2 / sqrt(10) TeV."""
    energy = np.geomspace(0.1, 100, 31)
    area = np.where(energy < 2, (energy / 2) ** 2, 1.0) * 1e5
    expected = 2 / np.sqrt(10)
    assert aeff_max_energy(energy, area, 10.0) == pytest.approx(expected, rel=1e-12)
    # DL3: the lowest sample above the threshold, no interpolation
    assert aeff_max_energy(energy, area, 10.0, interpolate=False) == energy[energy > expected][0]
    # leading zeros are skipped: the search starts at the first positive sample
    area[:3] = 0.0
    assert aeff_max_energy(energy, area, 10.0) == pytest.approx(expected, rel=1e-12)
    assert aeff_max_energy(energy, np.zeros_like(energy), 10.0) is None


def _shift_kernel(edges: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Row i puts ``weight[i]`` in reco bin i + 1 and the rest in bin i."""
    n = edges.size - 1
    kernel = np.zeros((n, n))
    kernel[np.arange(n), np.arange(n)] = 1 - weight
    kernel[np.arange(n - 1), np.arange(1, n)] = weight[:-1]
    kernel[n - 1, n - 1] = 1.0
    return kernel


def test_edisp_bias_energy_of_a_known_bias():
    """bias(E) = 0.5 (E / 0.2 TeV)^-1 falls to 10 % at 1 TeV; threshold 1 TeV x 1.1."""
    edges = np.geomspace(0.1, 100, 17)  # wide bins: a shift by one bin is a 54 % bias
    centres = np.sqrt(edges[:-1] * edges[1:])
    ratio = edges[1] / edges[0]
    bias = np.minimum(0.5 * (centres / 0.2) ** -1, 0.5)
    kernel = _shift_kernel(edges, bias / (ratio - 1))
    energy = edisp_bias_energy(kernel, edges, edges, 10.0)
    assert energy == pytest.approx(1.0 * 1.1, rel=1e-9)
    # never above 10 %: the threshold is the energy of the bias peak
    low = 0.08 * (centres / centres[0]) ** -0.2
    flat = _shift_kernel(edges, low / (ratio - 1))
    assert edisp_bias_energy(flat, edges, edges, 10.0) == pytest.approx(centres[0] * 1.1)


def test_bkg_peak_and_dl3_table_spectrum():
    """bkg_2d rate peaking at the 4th energy bin, flat in offset: the lower edge of that bin."""
    edges = np.geomspace(0.1, 100, 10)
    coords = axis_coords("energy", edges, "TeV", lohi=True)
    coords |= axis_coords("offset", np.linspace(0, 3, 7), "deg", lohi=True)
    rate = np.exp(-((np.arange(9) - 3.0) ** 2))[:, None] * np.ones((1, 6))
    bkg = xr.DataArray(rate, dims=("energy", "offset"), coords=coords, attrs={"units": "s-1"})
    inputs = table_energy_inputs(("bkg-peak",), bkg=bkg)
    assert energy_thresholds(("bkg-peak",), inputs)["bkg-peak"] == (edges[3], None)
    assert bkg_peak_energy(edges, rate[:, 0]) == edges[3]


def test_safe_energy_range_combines_and_refuses_zero_area():
    energy = np.geomspace(0.1, 100, 31)
    area = np.minimum((energy / 2) ** 2, 1.0)
    inputs = SafeEnergyInputs(aeff_thresholds=(0.3, 50.0), aeff=(energy, area))
    low = safe_energy_range(("aeff-default", "aeff-max"), inputs)
    assert low == (pytest.approx(2 / np.sqrt(10)), 50.0)  # max of the lows, min of the highs
    dead = SafeEnergyInputs(aeff=(energy, np.zeros_like(energy)), where="obs_id 7")
    with pytest.warns(RuntimeWarning, match="obs_id 7: the effective area is zero"):
        assert safe_energy_range(("aeff-max",), dead) is None


def test_safe_mask_options_position_and_fixed_offset():
    methods, irfs, position, offset = check_safe_mask_options(["aeff-max"], "DL3", (83.6, 22.0))
    assert (methods, irfs, position, offset) == (("aeff-max",), "DL3", (83.6, 22.0), None)
    with pytest.raises(ValueError, match="mutually exclusive"):
        check_safe_mask_options(["aeff-max"], "DL4", (83.6, 22.0), 0.5)
    with pytest.raises(ValueError, match="irfs must be one of"):
        check_safe_mask_options(["aeff-max"], "DL5")
    with pytest.raises(ValueError, match="fixed_offset must be >= 0"):
        check_safe_mask_options(["aeff-max"], "DL3", fixed_offset=-1)
    pointing = (83.0, 21.5)
    assert safe_mask_offset(pointing) == 0.0
    assert safe_mask_offset(pointing, fixed_offset=0.7) == 0.7
    assert safe_mask_offset(pointing, (83.0, 22.0)) == pytest.approx(0.5)
    assert safe_mask_position(pointing, (1.0, 2.0)) == (1.0, 2.0)
    assert safe_mask_position(pointing, (1.0, 2.0), fixed_offset=0.5) == (83.0, 22.0)
    with pytest.raises(ValueError, match="DL3' only"):
        SpectrumSpec("icrs; circle(83.6, 22.0, 0.2)", [1, 10], [1, 10], safe_mask_fixed_offset=0.5)
    with pytest.raises(ValueError, match="add 'background' to maps"):
        ReductionSpec([1, 10], [1, 10], safe_mask=("bkg-peak",), maps=("counts",))


def _observation(meta: dict, gti=None) -> Observation:
    data = {"meta": meta} if gti is None else {"meta": meta, "gti": gti}
    return Observation(1, xr.Dataset(), {}, data)


def test_ontime_from_header_else_sum_of_gtis():
    gti = xr.Dataset({"start": ("gti", [0.0, 1000.0]), "stop": ("gti", [600.0, 1800.0])})
    header = {"ONTIME": 1800.0, "TSTART": 0.0, "TSTOP": 1792.0}
    assert _observation(header, gti).ontime == 1800.0
    assert _observation({"TSTART": 0.0, "TSTOP": 1792.0}, gti).ontime == 1400.0
    with pytest.raises(Exception, match="obs_id 1: no ONTIME"):
        _ = _observation({"TSTART": 0.0}).ontime


# ------------------------------------------------------------------- H.E.S.S. against Gammapy

E_RECO = np.geomspace(0.3, 30, 41)
E_TRUE = np.geomspace(0.2, 50, 41)
METHODS = ("aeff-max", "edisp-bias", "bkg-peak")
ON = "icrs; circle(83.63, 22.01, 0.2)"
# Gammapy 2.1 (benchmarks/gammapy_safe_thresholds.py): aeff-max, edisp-bias, bkg-peak in TeV
GAMMAPY = {
    (23526, "map", "DL4"): (0.4632, 0.7501, 0.5986),
    (23526, "map", "DL3"): (0.5109, 0.7471, 0.5623),
    (23526, "spectrum", "DL4"): (0.4632, 0.7510, 0.5335),
    (23526, "spec-cc", "DL4"): (0.4703, 0.7510, 0.5335),
    (23559, "map", "DL4"): (0.4786, 0.6958, 0.6716),
    (23559, "spectrum", "DL4"): (0.4796, 0.6930, 0.5335),
    (23559, "spec-cc", "DL4"): (0.4749, 0.6930, 0.5335),
    (23559, "spec-cc", "DL3"): (0.4642, 0.7094, 0.5623),
}


def _thresholds(inputs) -> tuple[float, ...]:
    limits = energy_thresholds(METHODS, inputs)
    return tuple(limits[m][0] for m in METHODS)


@pytest.mark.hess
def test_crab_thresholds_match_gammapy(hess_dir):
    from gammaxr.data import open_datastore

    store = open_datastore(hess_dir)
    grid = SkyGrid.from_center((83.633, 22.014), 2.0, 0.02, frame="icrs")
    exclusion = exclusion_mask(SkyGrid.from_center((83.63, 22.01), 5, 0.05), ON)
    for (obs_id, case, irfs), expected in GAMMAPY.items():
        obs = store.observation(obs_id)
        if case == "map":
            spec = ReductionSpec(
                E_RECO,
                E_TRUE,
                grid=grid,
                maps=("background",),
                safe_mask=METHODS,
                safe_mask_irfs=irfs,
            )
            ds = reduce_observation(obs, spec)
            arrays = {"background": ds["background"].values}
            got = _thresholds(safe_energy_inputs(obs.read(spec.hdus()), spec, grid, arrays))
            # the kernel comes from an IRF pixel of a slightly different grid than Gammapy's
            for value, want, rtol in zip(got, expected, (2e-4, 2e-3, 2e-4), strict=True):
                assert value == pytest.approx(want, rel=rtol), (obs_id, irfs, got)
        else:
            spec = SpectrumSpec(
                ON,
                E_RECO,
                E_TRUE,
                exclusion=exclusion,
                containment_correction=case == "spec-cc",
                safe_mask=METHODS,
                safe_mask_irfs=irfs,
            )
            ds = spectrum_dataset(obs, spec)
            arrays = {name: ds[name].values for name in ds.data_vars}
            got = _thresholds(spectrum_safe_energy_inputs(obs.read(spec.hdus()), spec, arrays))
            np.testing.assert_allclose(got, expected, rtol=2e-4, err_msg=f"{obs_id} {case}")
            mask = ds["mask_safe"].values
            assert E_RECO[np.argmax(mask)] == E_RECO[E_RECO >= max(expected) * (1 - 2e-4)][0]


@pytest.mark.cta
def test_cta_background_uses_ontime_not_float32_tstop(cta_dir):
    """CTA 1DC headers: TSTOP - TSTART = 1792 s for 1800 s runs; Gammapy scales by 1800 s."""
    from gammaxr.data import open_datastore

    obs = open_datastore(cta_dir / "index" / "gps").observation(110380)
    assert obs.tstop - obs.tstart == 1792.0 and obs.ontime == 1800.0
    grid = SkyGrid.from_center((0.0, 0.0), 1.0, 0.1, frame="galactic")
    spec = ReductionSpec([0.1, 1.0, 10.0], [0.1, 10.0], grid=grid, maps=("background",))
    background = reduce_observation(obs, spec)["background"].sum(("lat", "lon")).values
    # Gammapy 2.1 MapDatasetMaker on the same CAR grid (CRVAL2 = 0, so the pixels agree)
    np.testing.assert_allclose(background, [1357.28941918, 53.68230247], rtol=2e-6)
