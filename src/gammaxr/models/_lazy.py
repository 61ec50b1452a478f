"""Model formulas (numpy functions of float arrays) applied to numpy, dask or xarray inputs.

The dispatch itself has one home, :func:`gammaxr.stats._elementwise.elementwise`; this module
only converts the inputs of a model formula to float arrays first.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from gammaxr.stats._elementwise import as_float, elementwise

__all__ = ["apply_elementwise"]


def _on_floats(func, *arrays: Any):
    return func(*(as_float(a) for a in arrays))


def apply_elementwise(func, *arrays: Any):
    """``func(*arrays)`` for a numpy function of broadcastable float arrays.

    xarray inputs go through ``xr.apply_ufunc`` and dask arrays through a generalised ufunc
    (one task per chunk), lazily; numpy-like inputs are converted to float arrays.
    """
    return elementwise(partial(_on_floats, func), *arrays)
