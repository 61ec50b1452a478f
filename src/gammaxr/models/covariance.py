"""Covariance files next to model YAML files, in Gammapy's format.

Gammapy's ``Models.write(path, write_covariance=True)`` writes ``<stem>_covariance.dat``
next to the YAML file and names it under the YAML key ``covariance:``. The file is an
astropy ``ascii.fixed_width`` table (``|`` delimited): a ``Parameters`` column with the full
parameter names (``model.component.name``, every parameter, frozen ones included) and one
column ``"0"``, ``"1"``... per parameter. Gammapy reads it back by position, so the rows
follow the models' parameter order (gammaxr's and Gammapy's orders agree for the models
both have).

In gammaxr a covariance is an ``xarray.DataArray`` with dims ``(param, param2)`` labelled by
full names (as in a fit result, DESIGN.md); :attr:`gammaxr.models.Models.covariance` holds
it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr
from astropy.table import Table

__all__ = ["covariance_filename", "diagonal_covariance", "read_covariance", "write_covariance"]


def covariance_filename(yaml_path: str | os.PathLike) -> str:
    """Gammapy's name of the covariance file of a model YAML file (``<stem>_covariance.dat``)."""
    return f"{Path(yaml_path).stem}_covariance.dat"


def _names(models) -> list[str]:
    return [ref.full_name for ref, _ in models.parameters]


def _labelled(matrix: np.ndarray, names: list[str]) -> xr.DataArray:
    return xr.DataArray(matrix, dims=("param", "param2"), coords={"param": names, "param2": names})


def diagonal_covariance(models) -> xr.DataArray:
    """The covariance implied by the parameter errors alone (``error**2`` on the diagonal)."""
    errors = np.array([p.error for _, p in models.parameters], dtype=float)
    return _labelled(np.diag(np.nan_to_num(errors) ** 2), _names(models))


def read_covariance(path: str | os.PathLike, models) -> xr.DataArray:
    """Read a Gammapy covariance file for ``models``.

    Parameters
    ----------
    path : str or path-like
        The ``*_covariance.dat`` file.
    models : gammaxr.models.Models
        The models it belongs to; rows are matched by parameter name (parameters the file
        lacks get zeros).

    Returns
    -------
    xarray.DataArray
        dims ``(param, param2)``, the models' parameter order.

    Raises
    ------
    ValueError
        If the file is not a square table or names parameters the models do not have.
    """
    table = Table.read(path, format="ascii.fixed_width", delimiter="|")
    if "Parameters" not in table.colnames:
        raise ValueError(f"{path}: no 'Parameters' column: not a Gammapy covariance file")
    names = [str(n).strip() for n in table["Parameters"]]
    values = np.array([[float(v) for v in table[str(i)]] for i in range(len(names))]).T
    wanted = _names(models)
    unknown = sorted(set(names) - set(wanted))
    if unknown:
        raise ValueError(f"{path}: parameters {unknown} are not in the models ({len(wanted)})")
    index = [wanted.index(n) for n in names]
    matrix = np.zeros((len(wanted), len(wanted)))
    matrix[np.ix_(index, index)] = values
    return _labelled(matrix, wanted)


def write_covariance(path: str | os.PathLike, models, covariance: xr.DataArray | None) -> Path:
    """Write a covariance file for ``models`` in Gammapy's format.

    Parameters
    ----------
    path : str or path-like
        Output file.
    models : gammaxr.models.Models
        Its parameters give the rows, in order.
    covariance : xarray.DataArray or None
        dims ``(param, param2)`` labelled by full names (entries for other parameters are
        ignored, missing ones are zero); None writes :func:`diagonal_covariance`.

    Returns
    -------
    pathlib.Path
    """
    names = _names(models)
    if covariance is None:
        covariance = diagonal_covariance(models)
    known = [n for n in names if n in covariance["param"].values]
    matrix = np.zeros((len(names), len(names)))
    index = [names.index(n) for n in known]
    matrix[np.ix_(index, index)] = covariance.sel(param=known, param2=known).values
    table = Table()
    table["Parameters"] = names
    for i in range(len(names)):
        table[str(i)] = matrix[i]
    path = Path(path)
    table.write(path, format="ascii.fixed_width", delimiter="|", overwrite=True)
    return path
