"""Write background models as GADF HDUs, and data stores that use them.

:func:`write_background_models` writes each group of a model of
:mod:`gammaxr.irf.background_model` (its :func:`~gammaxr.irf.background_model.background_irf`)
as a ``bkg_2d`` / ``bkg_3d`` HDU; :func:`write_background_store` also writes an HDU index that
points each run of a data store to the model of its group, and a copy of the observation
index, so that :func:`gammaxr.data.open_datastore` on the result uses the new models.
Writing computes the model: a compute boundary.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_edges
from gammaxr.io.gadf_write import irf_to_hdu, replace_hdus, write_fits, write_index_files
from gammaxr.irf.background_model import background_irf, group_dims

__all__ = ["write_background_models", "write_background_store"]


def _group_positions(model: xr.Dataset) -> list[dict[str, int]]:
    groups = group_dims(model)
    shape = [model.sizes[g] for g in groups]
    return [dict(zip(groups, map(int, idx), strict=True)) for idx in np.ndindex(*shape)]


def _extname(irf: xr.DataArray, groups: Sequence[str]) -> str:
    parts = [f"{g}_{irf.attrs[f'{g}_lo']:g}_{irf.attrs[f'{g}_hi']:g}" for g in groups]
    return "_".join(["BKG", *parts]).upper()


def _group_header(irf: xr.DataArray, groups: Sequence[str]) -> dict[str, Any]:
    header: dict[str, Any] = {"NRUNS": irf.attrs["n_runs"], "OBSTIME": irf.attrs["obs_time"]}
    for k, g in enumerate(groups, start=1):
        header[f"GRPCOL{k}"] = g.upper()
        header[f"GRPLO{k}"] = irf.attrs[f"{g}_lo"]
        header[f"GRPHI{k}"] = irf.attrs[f"{g}_hi"]
    return header


def write_background_models(
    model: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False
) -> dict[tuple[int, ...], str]:
    """Write each group of a background model with runs as a GADF ``bkg_2d``/``bkg_3d`` HDU.

    Parameters
    ----------
    model : xarray.Dataset
        Result of :func:`~gammaxr.irf.background_model.background_model` (computed here: a computation boundary).
    path : str or os.PathLike
        Output FITS file (gzipped if it ends with ``.gz``).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    dict
        Group position (tuple of indices along the group dims) -> HDU name, e.g.
        ``{(0,): "BKG_ZEN_PNT_0_20", ...}``; groups without runs are not written. Each HDU
        carries ``NRUNS``, ``OBSTIME`` and ``GRPCOLk``/``GRPLOk``/``GRPHIk`` keywords.
    """
    model = model.compute()
    groups = group_dims(model)
    hdus, names = [], {}
    for pos in _group_positions(model):
        irf = background_irf(model, **pos)
        if irf.attrs["n_runs"] == 0:
            continue
        name = _extname(irf, groups)
        hdus.append(irf_to_hdu(irf, extname=name, header=_group_header(irf, groups)))
        names[tuple(pos[g] for g in groups)] = name
    if not hdus:
        raise ValueError(f"{path}: the background model has no group with runs")
    write_fits(path, hdus, overwrite=overwrite)
    return names


def _assign_groups(obs_table: xr.Dataset, model: xr.Dataset) -> list[tuple[int, ...] | None]:
    """Group position of every run of an observation table (None if outside all groups)."""
    groups = group_dims(model)
    n = obs_table.sizes["obs_id"]
    index = np.zeros((n, len(groups)), dtype=int)
    inside = np.ones(n, dtype=bool)
    for k, g in enumerate(groups):
        if g not in obs_table:
            raise KeyError(f"observation table has no column {g.upper()!r} to pick a model by")
        edges = axis_edges(model, g)
        i = np.searchsorted(edges, np.asarray(obs_table[g].values, dtype=float), "right") - 1
        inside &= (i >= 0) & (i < edges.size - 1)
        index[:, k] = i
    return [tuple(map(int, row)) if ok else None for row, ok in zip(index, inside, strict=True)]


def write_background_store(
    store: Any,
    model: xr.Dataset,
    directory: str | os.PathLike,
    *,
    filename: str = "background-models.fits.gz",
    overwrite: bool = False,
) -> Path:
    """Write background models and index files that make a data store use them.

    Writes into ``directory``: ``filename`` (:func:`write_background_models`), an
    ``hdu-index.fits.gz`` that copies every row of ``store``'s HDU index but points the
    ``bkg`` HDU of each run to the model of its group (by the run's observation-table values;
    ``FILE_DIR`` relative to ``directory``, so the event and IRF files stay where they are),
    and ``obs-index.fits.gz``, a copy of ``store``'s observation table.
    ``gammaxr.data.open_datastore(directory)`` then reads the new models.

    Parameters
    ----------
    store : gammaxr.data.DataStore
        The runs to index (any selection, e.g. the whole H.E.S.S. DR1 store).
    model : xarray.Dataset
        Result of :func:`~gammaxr.irf.background_model.background_model`; its group columns must be in the obs table.
    directory : str or os.PathLike
        Output directory (created if needed).
    filename : str
        Name of the model file in ``directory``.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    pathlib.Path
        ``directory``.

    Warns
    -----
    UserWarning
        Naming the runs outside every group with runs; they keep their original background.
    """
    directory = Path(directory)
    model_path = directory / filename
    names = write_background_models(model, model_path, overwrite=overwrite)
    obs_table = store.obs_table
    assigned = _assign_groups(obs_table, model)
    obs_ids = np.asarray(obs_table["obs_id"].values, dtype=np.int64)
    new_hdu = {int(i): names[p] for i, p in zip(obs_ids, assigned, strict=True) if p in names}
    left = sorted(set(obs_ids.tolist()) - set(new_hdu))
    if left:
        warnings.warn(
            f"{len(left)} run(s) fall in no background group with runs and keep their "
            f"original background: obs_id {left[:20]}{' ...' if len(left) > 20 else ''}",
            UserWarning,
            stacklevel=2,
        )
    irf_class = "bkg_2d" if "offset" in model["bkg"].dims else "bkg_3d"
    index = replace_hdus(store.hdu_table, "bkg", irf_class, model_path, new_hdu)
    write_index_files(directory, index, obs_table, overwrite=overwrite)
    return directory
