"""Tiny synthetic inputs of the laziness matrix (tests/test_laziness_matrix.py).

Each builder returns numpy-backed objects; :func:`as_dask` turns any of them into the same values
backed by dask arrays (several chunks along the sky, so blockwise code paths are exercised).
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from gammaxr.testing import toy_map_dataset

RUN_IDS = (11, 12)


def map_runs() -> xr.Dataset:
    """Two runs of an 8x8-pixel toy map dataset along ``obs_id`` (Poisson counts, seeded)."""
    rng = np.random.default_rng(1)
    runs = []
    for obs_id in RUN_IDS:
        run = toy_map_dataset(width=0.8, binsz=0.1, background=3.0)
        source = 2.0 * np.exp(-0.5 * ((run.lon - 83.63) ** 2 + (run.lat - 22.01) ** 2) / 0.01)
        run["counts"] = xr.DataArray(
            rng.poisson(run["background"] + source).astype("float32"), dims=run["counts"].dims
        )
        runs.append(run.expand_dims(obs_id=[obs_id]))
    ds = xr.concat(runs, "obs_id", data_vars="minimal", coords="minimal", compat="override")
    for name in ("counts", "background", "exposure", "mask_safe"):
        ds[name] = xr.concat([r[name] for r in runs], "obs_id")
    return ds.assign_coords(
        livetime=("obs_id", [1700.0, 1650.0]), ontime=("obs_id", [1800.0, 1750.0])
    )


def map_dataset() -> xr.Dataset:
    """The stack of :func:`map_runs` (one map dataset, counts and background summed)."""
    runs = map_runs()
    ds = runs.isel(obs_id=0, drop=True).drop_vars(["livetime", "ontime"], errors="ignore")
    ds["counts"] = runs["counts"].sum("obs_id")
    ds["background"] = runs["background"].sum("obs_id")
    return ds


def stats_arrays() -> dict[str, np.ndarray]:
    """Per-bin count arrays for the :mod:`gammaxr.stats` functions (argument name -> values)."""
    rng = np.random.default_rng(3)
    n_off = rng.poisson(20.0, 12) * 1.0
    return {
        "n_on": rng.poisson(8.0, 12) * 1.0,
        "n_off": n_off,
        "alpha": np.full(12, 0.2),
        "mu_sig": np.linspace(0.0, 3.0, 12),
        "mu_bkg": 0.2 * n_off + 0.5,
        "mu_on": np.linspace(2.0, 9.0, 12),
        "significance": np.linspace(1.0, 5.0, 12),
        "acceptance": np.ones(12),
        "acceptance_off": np.full(12, 5.0),
    }


def as_dask(obj):
    """The same values backed by dask arrays (several chunks along lon / the first axis).

    Data variables only: coordinates (bin bounds, per-run metadata) stay in memory, as
    :func:`gammaxr.open_dataset` loads them.
    """
    if isinstance(obj, np.ndarray):
        return da.from_array(obj, chunks=max(1, obj.shape[0] // 3) if obj.ndim else ())
    if isinstance(obj, xr.DataArray | xr.Dataset):
        chunks = {d: 4 for d in ("lon", "lat") if d in obj.dims}
        chunks.update({d: 1 for d in ("obs_id",) if d in obj.dims})
        if not chunks:
            chunks = {d: -1 for d in obj.dims}
        if isinstance(obj, xr.DataArray):
            return obj.copy(data=da.from_array(obj.data, chunks=_block(obj, chunks)))
        return obj.assign({n: as_dask(v) for n, v in obj.data_vars.items()})
    return obj


def _block(obj: xr.DataArray, chunks: dict[str, int]) -> tuple[int, ...]:
    return tuple(chunks.get(d, -1) for d in obj.dims)
