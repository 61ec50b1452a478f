"""DataArrays made on another one's coordinates (gammaxr._dataarrays)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gammaxr._dataarrays import with_attrs, with_values


@pytest.fixture
def table() -> xr.DataArray:
    return xr.DataArray(
        np.arange(6.0).reshape(2, 3),
        dims=("energy", "offset"),
        coords={
            "energy": ("energy", [1.0, 2.0], {"units": "TeV"}),
            "offset": ("offset", [0.0, 1.0, 2.0]),
            "energy_lo": ("energy", [0.5, 1.5]),
        },
        attrs={"units": "m2", "hduclas": "aeff"},
        name="aeff",
    )


def test_with_values_equals_xarray_copy_with_data(table):
    values = np.ones((2, 3))
    out = with_values(table, values)
    xr.testing.assert_identical(out, table.copy(data=values))
    assert out.data is values and out.name == "aeff"
    assert list(out.xindexes) == ["energy", "offset"]
    assert out.sel(energy=2.0).sizes == {"offset": 3}  # the indexes work
    out.attrs["units"] = "cm2"  # attrs are the new array's own
    assert table.attrs["units"] == "m2"
    np.testing.assert_array_equal(table.values, np.arange(6.0).reshape(2, 3))


def test_with_values_checks_the_shape(table):
    with pytest.raises(ValueError, match=r"shape \(3, 2\) for an array of shape \(2, 3\)"):
        with_values(table, np.ones((3, 2)))


def test_with_attrs_adds_attrs_and_leaves_the_input_alone(table):
    out = with_attrs(table, fov_alignment="RADEC", units="cm2")
    xr.testing.assert_identical(out, table.assign_attrs(fov_alignment="RADEC", units="cm2"))
    assert table.attrs == {"units": "m2", "hduclas": "aeff"}
    assert np.shares_memory(out.values, table.values)
