"""Type aliases of the IRF functions' coordinates and results.

Every evaluation function of :mod:`gammaxr.irf` takes its coordinates as numpy array-likes
(numpy result, broadcast shape) or ``xarray.DataArray`` objects (DataArray result, broadcast
dims, lazy on dask).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: Coordinate values: numbers, numpy array-likes or a DataArray.
Coordinate = np.typing.ArrayLike | xr.DataArray
#: What an evaluation returns: numpy for numpy inputs, a DataArray for DataArray inputs.
Evaluated = np.ndarray | xr.DataArray
