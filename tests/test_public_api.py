"""The public API: what the subpackages export, positions, accessor delegations."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import xarray as xr
from astropy.coordinates import SkyCoord

import gammaxr
import gammaxr.io
import gammaxr.reduce
from gammaxr.geom import SkyGrid, energy_axis
from gammaxr.geom.sky import to_skycoord
from gammaxr.reduce.ring import to_image

REDUCE_NAMES = (
    "ReductionSpec",
    "reduce_runs",
    "reduce_runs_tree",
    "stack_runs",
    "SpectrumSpec",
    "spectrum_runs",
    "fov_background",
    "ring_background",
    "reflected_regions",
)
IO_NAMES = ("open_dataset", "to_zarr", "read_obs_index", "read_irf_hdu", "irf_to_hdu")


@pytest.mark.parametrize("module, names", [(gammaxr.reduce, REDUCE_NAMES), (gammaxr.io, IO_NAMES)])
def test_subpackages_export_their_main_functions(module, names):
    for name in names:
        assert name in module.__all__
        assert callable(getattr(module, name))
    assert sorted(module.__all__) == module.__all__


def test_a_position_is_a_skycoord_or_a_pair_with_a_frame():
    crab = SkyCoord(83.633, 22.014, unit="deg")
    assert to_skycoord(crab) is crab
    gal = to_skycoord((crab.galactic.l.deg, crab.galactic.b.deg), frame="galactic")
    assert gal.separation(crab).deg < 1e-9
    assert to_skycoord((83.633 * u.deg, 22.014 * u.deg)).frame.name == "icrs"
    with pytest.raises(TypeError, match="frame= argument"):
        to_skycoord((83.633, 22.014, "icrs"))
    with pytest.raises(TypeError, match="SkyCoord or a"):
        to_skycoord("crab")
    # the grid takes the same pair and frame
    grid = SkyGrid.from_center(
        (crab.galactic.l.deg, crab.galactic.b.deg), 1.0, 0.1, frame="galactic"
    )
    assert grid.frame == "galactic"


def test_to_image_on_the_accessor():
    grid = SkyGrid.from_center((10.0, 20.0), 1.0, 0.1)
    ds = grid.to_dataset(energy_axis(1.0, 10.0, 3))
    dims = ("energy", "lat", "lon")
    counts = np.arange(3 * 100, dtype=np.float32).reshape(3, 10, 10)
    safe = np.ones((3, 10, 10), bool)
    safe[0] = False
    ds = ds.assign(counts=(dims, counts, {"units": ""}), mask_safe=(dims, safe))
    image = ds.gamma.to_image()
    xr.testing.assert_identical(image, to_image(ds))
    assert image.sizes["energy"] == 1
    np.testing.assert_allclose(image["counts"][0], counts[1:].sum(0))
