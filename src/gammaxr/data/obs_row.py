"""One run's row of the observation table, held compactly.

Every :class:`gammaxr.data.observation.Observation` knows its run's row of the observation
table. An ``xarray.Dataset`` of 0-d variables (what ``obs_table.sel(obs_id=...)`` gives)
costs about 17 kB of memory and 0.4-1.3 ms to select for each run; a survey of 10,000 runs
held 0.17 GB of them in the client, and sent each to the dask workers as a 5 kB pickle.
:class:`ObsTableRow` keeps only the row's values (numpy scalars); what every row of a table
shares (each column's dims, dtype and attrs, the table's attrs) is one
:class:`ObsTableColumns` object, referenced by all of them and pickled once per task.
:meth:`ObsTableRow.to_dataset` gives the same Dataset as ``sel`` would, when asked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["ObsTableColumns", "ObsTableRow", "ObsTableRows"]


class ObsTableColumns:
    """What the rows of one observation table share.

    Parameters
    ----------
    columns : mapping of str to (tuple of str, numpy.dtype, dict)
        Per variable with an ``obs_id`` dim: its other dims, dtype and attrs, in the table's
        order (coordinates first, then data variables).
    coords : set of str
        Which of them are coordinates.
    constants : mapping of str to xarray.Variable
        Variables without an ``obs_id`` dim, the same in every row.
    attrs : dict
        The table's attrs (header keywords, ``source``).
    """

    __slots__ = ("attrs", "columns", "constants", "coords", "position")

    def __init__(
        self,
        columns: Mapping[str, tuple[tuple[str, ...], np.dtype, dict]],
        coords: set[str],
        constants: Mapping[str, xr.Variable],
        attrs: dict,
    ) -> None:
        self.columns = dict(columns)
        self.coords = set(coords)
        self.constants = dict(constants)
        self.attrs = dict(attrs)
        #: column name -> position of its value in a row's tuple
        self.position = {name: k for k, name in enumerate(self.columns)}

    def __getstate__(self) -> tuple:
        return self.columns, self.coords, self.constants, self.attrs

    def __setstate__(self, state: tuple) -> None:
        self.__init__(*state)


class ObsTableRow:
    """One run's row of the observation table: its values, and the table's shared columns.

    Parameters
    ----------
    values : sequence of numpy scalar or numpy.ndarray
        The row's value of every column of ``columns``, in their order (a numpy scalar for
        1-D columns; a tuple rather than a dict: 0.2 kB a row instead of 1.2).
    columns : ObsTableColumns
        Dims, dtypes and attrs of the columns, shared by the table's rows.
    """

    __slots__ = ("_columns", "_values")

    def __init__(self, values: Sequence[Any], columns: ObsTableColumns) -> None:
        if len(values) != len(columns.columns):
            raise ValueError(f"a row of {len(columns.columns)} columns, got {len(values)} values")
        self._values = tuple(values)
        self._columns = columns

    @classmethod
    def from_dataset(cls, info: xr.Dataset) -> ObsTableRow:
        """The row of a Dataset of 0-d variables (``obs_table.sel(obs_id=...)``).

        Raises
        ------
        ValueError
            If a variable of ``info`` has dims (more than one row, or a table).
        """
        columns, values = {}, []
        for name, var in info.variables.items():
            if var.dims:
                raise ValueError(
                    f"an observation's info must be one row of 0-d variables; {name!r} has "
                    f"dims {var.dims}"
                )
            columns[name] = ((), var.dtype, dict(var.attrs))
            values.append(var.values[()])
        shared = ObsTableColumns(columns, set(info.coords), {}, info.attrs)
        return cls(values, shared)

    def __getstate__(self) -> tuple:
        # numpy scalars as Python values (a float pickles in 9 bytes, a numpy scalar in about
        # 40): the column dtypes give them back exactly on the other side
        plain = tuple(v.item() if isinstance(v, np.generic) else v for v in self._values)
        return plain, self._columns

    def __setstate__(self, state: tuple) -> None:
        plain, self._columns = state
        dtypes = (dtype for _, dtype, _ in self._columns.columns.values())
        self._values = tuple(
            v if isinstance(v, np.ndarray) else np.asarray(v, dtype=dtype)[()]
            for v, dtype in zip(plain, dtypes, strict=True)
        )

    @property
    def attrs(self) -> dict:
        """The table's attrs (header keywords such as ``MJDREFI``, ``GEOLON``, ``source``)."""
        return self._columns.attrs

    def __contains__(self, name: object) -> bool:
        return name in self._columns.position or name in self._columns.constants

    def __iter__(self) -> Iterator[str]:
        yield from self._columns.columns
        yield from self._columns.constants

    def value(self, name: str) -> Any:
        """The value of column ``name``: a Python scalar for a 1-D column, else an array.

        Raises
        ------
        KeyError
            If the table has no such column.
        """
        if name in self._columns.position:
            value = self._values[self._columns.position[name]]
        else:
            value = self._columns.constants[name].values
        value = np.asarray(value)
        return value.item() if value.ndim == 0 else value

    def to_dataset(self) -> xr.Dataset:
        """The row as ``obs_table.sel(obs_id=...)`` gives it: 0-d variables with their
        units, the scalar ``obs_id`` coordinate, the table's attrs (a new Dataset; the
        arrays are read-only as the table's)."""
        shared = self._columns
        variables: dict[str, xr.Variable] = {}
        for (name, (dims, dtype, attrs)), value in zip(
            shared.columns.items(), self._values, strict=True
        ):
            data = np.asarray(value, dtype=dtype)
            data.flags.writeable = False
            variables[name] = xr.Variable(dims, data, attrs=dict(attrs))
        variables.update(shared.constants)
        coords = {k: v for k, v in variables.items() if k in shared.coords}
        data_vars = {k: v for k, v in variables.items() if k not in shared.coords}
        return xr.Dataset(data_vars, coords=coords, attrs=dict(shared.attrs))


class ObsTableRows:
    """The rows of an observation table, by ``obs_id``, made without xarray selections.

    Parameters
    ----------
    table : xarray.Dataset
        Observation table with dim ``obs_id`` (:func:`gammaxr.io.gadf.read_obs_index`).

    Raises
    ------
    ValueError
        If the table has no ``obs_id`` dim, or lists an obs_id more than once.
    """

    def __init__(self, table: xr.Dataset) -> None:
        if "obs_id" not in table.dims:
            raise ValueError(f"an observation table needs an obs_id dim, got {dict(table.sizes)}")
        columns, arrays, constants = {}, [], {}
        for name, var in table.variables.items():
            if "obs_id" not in var.dims:
                constants[name] = var
                continue
            var = var.transpose("obs_id", ...)
            columns[name] = (var.dims[1:], var.dtype, dict(var.attrs))
            arrays.append(var.values)
        self._columns = ObsTableColumns(columns, set(table.coords), constants, table.attrs)
        self._arrays = arrays
        obs_ids = np.asarray(table["obs_id"].values)
        self._position = {int(i): k for k, i in enumerate(obs_ids)}
        if len(self._position) != obs_ids.size:
            unique, counts = np.unique(obs_ids, return_counts=True)
            twice = [int(i) for i in unique[counts > 1][:10]]
            raise ValueError(f"the observation table lists obs_id(s) {twice} more than once")

    def __len__(self) -> int:
        return len(self._position)

    def row(self, obs_id: int) -> ObsTableRow:
        """The row of ``obs_id``.

        Raises
        ------
        KeyError
            If the table has no such run.
        """
        return self.row_at(self._position[int(obs_id)])

    def row_at(self, position: int) -> ObsTableRow:
        """The row at ``position`` (0-based) in the table's order."""
        return ObsTableRow([a[position] for a in self._arrays], self._columns)
