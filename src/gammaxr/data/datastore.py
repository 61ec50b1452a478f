"""GADF DL3 data store: HDU index + observation table, immutable selections, observations.

>>> store = open_datastore("../shared/data/hess-dl3-dr1")                    # doctest: +SKIP
>>> crab = store.select_cone((83.633, 22.014), 5)                            # doctest: +SKIP
>>> runs = crab.load_observations(max_workers=4)                              # doctest: +SKIP

A :class:`DataStore` never changes: every ``select_*`` method returns a new store holding
the subset of runs (chaining works), and the original keeps all its runs. The observation
table (:attr:`DataStore.obs_table`) follows the naming rules of :mod:`gammaxr.io.gadf`:
lower-case column names (``ZEN_PNT`` -> ``zen_pnt``, ``DATE-OBS`` -> ``date_obs``), ``units``
attrs, header keywords verbatim in attrs; selection methods accept either spelling.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np
import xarray as xr
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time

from gammaxr.data import selection as sel
from gammaxr.data.obs_row import ObsTableRows
from gammaxr.data.observation import HDULocation, Observation, read_observations
from gammaxr.io.errors import ObsIdNotFoundError
from gammaxr.io.fits_backend import check_fits_backend
from gammaxr.io.gadf import find_index_files, read_hdu_index, read_obs_index

__all__ = ["DataStore", "open_datastore"]


def open_datastore(
    path: str | os.PathLike,
    obs_index: str | os.PathLike | None = None,
    *,
    fits_backend: str | None = None,
) -> DataStore:
    """Open a GADF data store.

    Parameters
    ----------
    path : str or os.PathLike
        Directory holding ``hdu-index.fits[.gz]`` and ``obs-index.fits[.gz]``, or the HDU
        index file itself (the observation index is then looked for beside it).
    obs_index : str or os.PathLike, optional
        Explicit observation index file.
    fits_backend : {"numpy", "fitsio", "astropy", "auto"}, optional
        FITS library for every file of the store (see :mod:`gammaxr.io.fits_backend`);
        default the ``GAMMAXR_FITS_BACKEND`` environment variable, else ``auto``. The
        observations carry it, so it holds in reader threads and dask workers too.

    Returns
    -------
    DataStore
        Only the two index tables are read; no event or IRF file is opened.

    Raises
    ------
    gammaxr.io.errors.MissingFileError
        An index file is missing.
    gammaxr.io.errors.DL3Error
        An index table is unreadable or lacks required columns.
    """
    if fits_backend is not None:
        fits_backend = check_fits_backend(fits_backend, "fits_backend")
    hdu_path, obs_path = find_index_files(path, obs_index)
    return DataStore(
        read_hdu_index(hdu_path, fits_backend),
        read_obs_index(obs_path, fits_backend),
        fits_backend=fits_backend,
    )


def _locations(hdu_index: xr.Dataset) -> Mapping[int, Mapping[str, HDULocation]]:
    """obs_id -> {hdu_type: location}; the first row wins for a repeated type.

    Equal strings (a run's file named by each of its HDUs, the IRF file shared by many runs,
    the HDU types and classes) are one object: held once, and pickled once per run task.
    """
    out: dict[int, dict[str, HDULocation]] = {}
    columns = [hdu_index[k].values for k in ("obs_id", "hdu_type", "hdu_class", "path", "hdu_name")]
    strings: dict[str, str] = {}

    def shared(value: object) -> str:
        text = str(value)
        return strings.setdefault(text, text)

    for obs_id, hdu_type, hdu_class, path, hdu_name in zip(*columns, strict=True):
        hdus = out.setdefault(int(obs_id), {})
        if hdu_type not in hdus:
            hdus[shared(hdu_type)] = HDULocation(
                shared(hdu_type), shared(hdu_class), shared(path), shared(hdu_name)
            )
    return MappingProxyType({k: MappingProxyType(v) for k, v in out.items()})


def _read_only(ds: xr.Dataset) -> xr.Dataset:
    for var in ds.variables.values():
        if isinstance(var.data, np.ndarray):
            var.data.flags.writeable = False
    return ds


class DataStore:
    """A GADF DL3 data store, or a selection of its runs; immutable.

    Build with :func:`open_datastore`. The constructor takes already-read index tables.

    Parameters
    ----------
    hdu_index : xarray.Dataset
        HDU index as :func:`gammaxr.io.gadf.read_hdu_index` returns it (with ``path``).
    obs_table : xarray.Dataset
        Observation table indexed by ``obs_id`` (:func:`gammaxr.io.gadf.read_obs_index`).
    fits_backend : {"numpy", "fitsio", "astropy", "auto"}, optional
        FITS library the observations read their files with (None: the environment's).
    """

    def __init__(
        self,
        hdu_index: xr.Dataset,
        obs_table: xr.Dataset,
        *,
        fits_backend: str | None = None,
        _locations_by_obs: Mapping[int, Mapping[str, HDULocation]] | None = None,
    ) -> None:
        if fits_backend is not None:
            fits_backend = check_fits_backend(fits_backend, "fits_backend")
        self._fits_backend = fits_backend
        self._hdu_index = _read_only(hdu_index)
        self._obs_table = _read_only(obs_table)
        self._by_obs = _locations_by_obs if _locations_by_obs is not None else _locations(hdu_index)

    # ------------------------------------------------------------------ tables
    @cached_property
    def _rows(self) -> ObsTableRows:
        """The observation table's rows by obs_id (made once, on the first observation)."""
        return ObsTableRows(self._obs_table)

    @property
    def fits_backend(self) -> str | None:
        """FITS library of the store's files (``None``: the environment's choice)."""
        return self._fits_backend

    @property
    def obs_table(self) -> xr.Dataset:
        """Observation table of the selected runs: dim/coordinate ``obs_id``.

        A shallow copy over read-only arrays: adding variables to it does not touch the store.
        """
        return self._obs_table.copy(deep=False)

    @property
    def hdu_table(self) -> xr.Dataset:
        """HDU index rows of the selected runs (dim ``hdu``; ``path`` = resolved file)."""
        keep = np.isin(self._hdu_index["obs_id"].values, self.obs_ids)
        return self._hdu_index.isel(hdu=np.flatnonzero(keep))

    @property
    def obs_ids(self) -> np.ndarray:
        """Selected obs_ids, in table order (int64 array, a copy)."""
        return np.array(self._obs_table["obs_id"].values, dtype=np.int64)

    def __len__(self) -> int:
        return self._obs_table.sizes["obs_id"]

    def __contains__(self, obs_id: object) -> bool:
        try:
            return int(obs_id) in set(self.obs_ids.tolist())  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def __iter__(self) -> Iterator[Observation]:
        """Lazy observations of the selected runs, in table order."""
        return iter(self.observations())

    def __repr__(self) -> str:
        ids = self.obs_ids
        shown = ", ".join(str(i) for i in ids[:6]) + (", ..." if len(ids) > 6 else "")
        source = self._obs_table.attrs.get("source", "")
        return f"<DataStore {len(ids)} runs [{shown}] from {source}>"

    def info(self, show: bool = True) -> str | None:
        """Summary of the store: runs, targets, livetime, zenith and date ranges, events and
        HDU classes, from the index tables (nothing else read); see
        :func:`gammaxr.summary.data.datastore_text`. Prints it (``show=True``) or returns it.
        """
        from gammaxr.summary.data import datastore_text

        text = datastore_text(self)
        if not show:
            return text
        print(text)
        return None

    # ------------------------------------------------------------------ selection
    def select(self, mask: xr.DataArray | np.ndarray | Sequence[bool]) -> DataStore:
        """New store with the runs where ``mask`` is true.

        Parameters
        ----------
        mask : xarray.DataArray (dim obs_id) or array_like of bool, shape (n_runs,)
            A DataArray is aligned on ``obs_id``; a plain array follows :attr:`obs_ids` order.
        """
        if isinstance(mask, xr.DataArray):
            mask = mask.reindex(obs_id=self._obs_table["obs_id"].values, fill_value=False)
            keep = np.asarray(mask.values, dtype=bool)
        else:
            keep = np.asarray(mask, dtype=bool)
        if keep.shape != (len(self),):
            raise ValueError(f"mask has shape {keep.shape}, expected ({len(self)},)")
        return self._subset(self._obs_table.isel(obs_id=np.flatnonzero(keep)))

    def _subset(self, table: xr.Dataset) -> DataStore:
        return DataStore(
            self._hdu_index, table, fits_backend=self.fits_backend, _locations_by_obs=self._by_obs
        )

    def select_obs_ids(self, obs_ids: Iterable[int] | int) -> DataStore:
        """New store with the given runs, in the given order.

        Raises
        ------
        ObsIdNotFoundError
            Naming every obs_id that is not in this store.
        """
        ids = np.atleast_1d(np.asarray(list(obs_ids) if not np.isscalar(obs_ids) else obs_ids))
        ids = ids.astype(np.int64)
        if len(np.unique(ids)) != len(ids):
            raise ValueError(f"obs_ids contain duplicates: {ids.tolist()}")
        missing = ids[~np.isin(ids, self.obs_ids)]
        if missing.size:
            raise ObsIdNotFoundError(
                f"obs_id(s) {missing.tolist()} not in the data store "
                f"({self._obs_table.attrs.get('source', '')}, {len(self)} runs)"
            )
        return self._subset(self._obs_table.sel(obs_id=ids))

    def select_cone(
        self, center: SkyCoord | Sequence[Any], radius: float | u.Quantity, frame: str = "icrs"
    ) -> DataStore:
        """Runs whose pointing is less than ``radius`` from ``center``.

        Parameters
        ----------
        center : SkyCoord or (float, float)
            A SkyCoord in any frame, or ``(lon, lat)`` in deg in ``frame``.
        radius : float or astropy.units.Quantity
            Float in deg.
        frame : str
            Frame of a ``(lon, lat)`` centre (default ``"icrs"``), as for
            :meth:`gammaxr.geom.SkyGrid.from_center`.
        """
        return self.select(sel.cone_mask(self._obs_table, center, radius, frame))

    def select_target(
        self,
        name: str | Iterable[str],
        *,
        match: str = "exact",
        column: str | None = None,
        case_sensitive: bool = True,
    ) -> DataStore:
        """Runs by target name; see :func:`gammaxr.data.selection.target_mask`.

        ``match`` is ``"exact"`` (default), ``"glob"`` or ``"regex"``; the column defaults to
        ``TARGET_NAME`` when the table has it, else ``OBJECT``.
        """
        mask = sel.target_mask(
            self._obs_table, name, match=match, column=column, case_sensitive=case_sensitive
        )
        return self.select(mask)

    def select_range(
        self,
        column: str,
        lo: float | u.Quantity | None = None,
        hi: float | u.Quantity | None = None,
    ) -> DataStore:
        """Runs with ``lo <= column < hi`` (half-open), e.g. ``select_range("ZEN_PNT", 0, 20)``.

        Floats are in the column's unit; Quantities are converted; ``None`` leaves a side open.
        """
        return self.select(sel.range_mask(self._obs_table, column, lo, hi))

    def select_time(
        self,
        start: float | Time | None = None,
        stop: float | Time | None = None,
        *,
        how: str = "overlap",
    ) -> DataStore:
        """Runs by time: ``how="overlap"`` (default) or ``"within"`` ``[start, stop)``.

        Bounds are astropy Times or MET seconds; see :func:`gammaxr.data.selection.time_mask`.
        """
        return self.select(sel.time_mask(self._obs_table, start, stop, how=how))

    def select_irfs(self, *required: str) -> DataStore:
        """Runs whose HDU index lists every given HDU type or class.

        E.g. ``select_irfs("aeff", "edisp", "psf", "bkg")`` or ``select_irfs("bkg_3d")``.
        """
        return self.select(sel.hdu_mask(self.obs_ids, self._hdu_index, required))

    # ------------------------------------------------------------------ observations
    def observation(self, obs_id: int) -> Observation:
        """Lazy :class:`~gammaxr.data.observation.Observation` of one run (nothing is read).

        Raises
        ------
        ObsIdNotFoundError
            If ``obs_id`` is not in this store (selection).
        """
        rows = self._rows
        try:
            obs_id = int(obs_id)
            info = rows.row(obs_id)
        except (KeyError, TypeError, ValueError):
            raise ObsIdNotFoundError(
                f"obs_id {obs_id!r} not in the data store "
                f"({self._obs_table.attrs.get('source', '')}, {len(self)} runs)"
            ) from None
        return Observation(
            obs_id, info, self._by_obs.get(obs_id, {}), fits_backend=self.fits_backend
        )

    def observations(self, obs_ids: Iterable[int] | None = None) -> list[Observation]:
        """Lazy observations of ``obs_ids`` (default: every selected run), in that order."""
        ids = self.obs_ids if obs_ids is None else obs_ids
        return [self.observation(i) for i in ids]

    def load_observations(
        self,
        obs_ids: Iterable[int] | None = None,
        *,
        hdus: Iterable[str] | None = None,
        max_workers: int | None = None,
        on_error: str = "raise",
        validate: bool = False,
    ) -> list[Observation]:
        """Load many runs in threads, each distinct file opened once.

        Parameters
        ----------
        obs_ids : iterable of int, optional
            Runs to load (default: every selected run).
        hdus : iterable of str, optional
            HDU types to read, e.g. ``("events", "gti")``; default every type of
            ``events, gti, aeff, edisp, psf, bkg`` that each run lists. The events header is
            always read (pointing, livetime ... without further I/O).
        max_workers : int, optional
            Number of threads (default: ``ThreadPoolExecutor``'s default).
        on_error : {"raise", "skip"}
            Raise on the first failing run, or skip failing runs with a warning naming each
            obs_id and reason.
        validate : bool
            Check each run as read (:func:`gammaxr.data.validation.validate_observation`);
            an invalid run raises, or with ``on_error="skip"`` is left out with a warning.

        Returns
        -------
        list of Observation
            Loaded snapshots (see :meth:`Observation.read`), in ``obs_ids`` order. IRFs read
            from a file shared by several runs are read once and shared (read-only arrays).
        """
        runs = read_observations(
            self.observations(obs_ids), hdus, max_workers=max_workers, on_error=on_error
        )
        if not validate:
            return runs
        from gammaxr.data.validation import RunValidationError, validate_observation

        checked = []
        for run in runs:
            try:
                checked.append(validate_observation(run, hdus))
            except RunValidationError as exc:
                if on_error == "raise":
                    raise
                warnings.warn(f"skipping obs_id {run.obs_id}: {exc}", stacklevel=2)
        return checked
