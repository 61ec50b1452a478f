"""Which runs a stacked dataset holds, told truthfully once the data is computed.

Whether a run contributes to a stack is only known once it is reduced: its reduction may fail
(``reduce_error`` with ``on_error="skip"``), its background fit may fail
(``fov_background_error``), or its safe mask may be empty. A lazily stacked dataset therefore
carries small per-run status variables along the dim :data:`RUN_DIM` (computed with the data,
from the same per-run tasks):

- ``run_contributes(run)``: True if any of the run's pixels is safe;
- ``run_<name>(run)`` for each per-run error string ``<name>`` of the input (e.g.
  ``run_reduce_error``);
- coordinates ``run_livetime(run)``, ``run_ontime(run)`` [s].

:func:`settle_run_status` (in memory, once computed) and :func:`settle_store_run_status` (in a
zarr store, by :func:`gammaxr.io.zarr_store.to_zarr` before it publishes the store) turn them
into attrs: ``stacked_obs_ids``, ``livetime_total``, ``ontime_total`` of the contributing
runs only, and ``skipped_obs_ids``/``skipped_reasons`` for the others, then drop them.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

__all__ = [
    "RUN_DIM",
    "pending_run_status",
    "run_status_attrs",
    "run_status_variables",
    "settle_run_status",
    "settle_store_run_status",
]

#: Dim of the per-run status variables of a stacked dataset.
RUN_DIM = "run"
_CONTRIBUTES = "run_contributes"


def _error_names(ds: xr.Dataset, dim: str) -> list[str]:
    """Per-run error strings of ``ds``: 1-d string variables along ``dim`` named ``*_error``."""
    return [
        str(n)
        for n, v in ds.data_vars.items()
        if str(n).endswith("_error") and v.dims == (dim,) and v.dtype.kind in "USO"
    ]


def _own_layer(var: xr.DataArray) -> xr.DataArray:
    """``var`` through a new dask layer (an identity map): computing it together with the
    stacked maps otherwise loses a shared layer of the graph in dask 2026.8 ("Missing
    dependency" for a background-fit output)."""
    if var.chunks is None:
        return var
    return var.copy(data=var.data.map_blocks(np.asarray, dtype=var.dtype))


def run_status_variables(ds: xr.Dataset, mask_safe: xr.DataArray, dim: str) -> xr.Dataset:
    """The per-run status variables of a dataset about to be stacked over ``dim`` (lazy if
    the input is).

    Parameters
    ----------
    ds : xarray.Dataset
        Per-run dataset (``livetime``/``ontime`` coordinates along ``dim`` if known).
    mask_safe : xarray.DataArray
        Its safe mask, with ``dim``.
    dim : str
        The stacked dim (``obs_id``).

    Returns
    -------
    xarray.Dataset
        ``run_contributes`` and ``run_<error>`` along :data:`RUN_DIM`, coordinates
        ``run_livetime``/``run_ontime``.
    """
    others = [d for d in mask_safe.dims if d != dim]
    out = {_CONTRIBUTES: mask_safe.any(others)}
    out.update({f"run_{n}": _own_layer(ds[n]) for n in _error_names(ds, dim)})
    status = xr.Dataset(out).drop_vars(list(xr.Dataset(out).coords))
    status = status.rename({dim: RUN_DIM}).assign_coords({RUN_DIM: ds[dim].values})
    times = {  # numpy or lazy, as given
        f"run_{n}": (RUN_DIM, ds.coords[n].data)
        for n in ("livetime", "ontime")
        if n in ds.coords and ds.coords[n].dims == (dim,)
    }
    return status.assign_coords(times)


def pending_run_status(ds: xr.Dataset) -> bool:
    """True if ``ds`` carries per-run status variables not yet turned into attrs."""
    return _CONTRIBUTES in ds.data_vars


def run_status_attrs(status: xr.Dataset) -> dict:
    """Attrs from computed status variables (see the module docstring).

    Parameters
    ----------
    status : xarray.Dataset
        Numpy-backed ``run_contributes`` (and ``run_*_error``) along :data:`RUN_DIM`.

    Returns
    -------
    dict
        ``stacked_obs_ids``, ``livetime_total``/``ontime_total`` [s] (if known),
        ``skipped_obs_ids``, ``skipped_reasons``.
    """
    ids = [int(i) for i in status[RUN_DIM].values]
    contributes = np.asarray(status[_CONTRIBUTES].values, bool)
    errors = [n for n in status.data_vars if n != _CONTRIBUTES and str(n).endswith("_error")]
    errors.sort(key=lambda n: n != "run_reduce_error")  # the first cause first
    reasons = []
    for k in range(len(ids)):
        said = [str(status[n].values[k]) for n in errors if str(status[n].values[k])]
        reasons.append(said[0] if said else "no safe pixel (empty safe mask)")
    attrs = {"stacked_obs_ids": [i for i, c in zip(ids, contributes, strict=True) if c]}
    for name in ("livetime", "ontime"):
        if f"run_{name}" in status.coords:
            values = np.asarray(status.coords[f"run_{name}"].values, float)
            attrs[f"{name}_total"] = float(values[contributes].sum())
    attrs["skipped_obs_ids"] = [i for i, c in zip(ids, contributes, strict=True) if not c]
    attrs["skipped_reasons"] = [r for r, c in zip(reasons, contributes, strict=True) if not c]
    return attrs


def _status_names(ds: xr.Dataset) -> list[str]:
    return [str(n) for n in ds.variables if RUN_DIM in ds[n].dims]


def settle_run_status(ds: xr.Dataset) -> xr.Dataset:
    """Turn the status variables of a computed (or persisted) stacked dataset into attrs.

    Parameters
    ----------
    ds : xarray.Dataset
        A stacked dataset; its status variables are loaded here (small; cheap once the data
        is computed or persisted, but it computes the runs if they are still lazy).

    Returns
    -------
    xarray.Dataset
        ``ds`` without the status variables and with the attrs of :func:`run_status_attrs`;
        ``ds`` itself if it has no pending status.
    """
    if not pending_run_status(ds):
        return ds
    names = _status_names(ds)
    attrs = run_status_attrs(ds[names].load())
    return ds.drop_vars(names).drop_dims(RUN_DIM, errors="ignore").assign_attrs(attrs)


def settle_store_run_status(path: str | os.PathLike) -> None:
    """:func:`settle_run_status` inside a written zarr store (its data already computed):
    attrs updated, status arrays deleted, metadata consolidated.

    Parameters
    ----------
    path : str or path-like
        A zarr store not yet visible to readers (the temporary of a write).
    """
    import zarr

    from gammaxr.io.zarr_store import quiet_zarr_warnings

    with quiet_zarr_warnings():
        status = xr.open_zarr(path, consolidated=True)
        if not pending_run_status(status):
            return
        names = _status_names(status)
        attrs = run_status_attrs(status[names].load())
        group = zarr.open_group(path, mode="r+")
        for name in names:
            del group[name]
        group.attrs.update(attrs)
        zarr.consolidate_metadata(path)
