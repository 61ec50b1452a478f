"""Write simulated runs as a complete GADF DL3 data store.

Layout of a store written here::

    DIRECTORY/
      hdu-index.fits.gz        OBS_ID HDU_TYPE HDU_CLASS FILE_DIR FILE_NAME HDU_NAME SIZE
      obs-index.fits.gz        OBS_ID RA_PNT DEC_PNT ... LIVETIME EVENT_COUNT TARGET_NAME IRF
      data/obs_000001.fits.gz  EVENTS and GTI of one run
      irfs/<instrument>.fits.gz  EFFECTIVE AREA, ENERGY DISPERSION, POINT SPREAD FUNCTION,
                               BACKGROUND (one file per IRF set, shared by its runs)

:func:`gammaxr.data.open_datastore` and Gammapy's ``DataStore.from_dir`` read it. Only
standard columns plus ``MC_ID`` (0 background, k + 1 source k) are written to the event
lists; the truth columns of :class:`~gammaxr.simulate.events.SimulatedObservation` stay in
memory.
"""

from __future__ import annotations

import os
import re
import time as _time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from gammaxr.io.gadf_write import (
    events_to_hdu,
    gti_to_hdu,
    write_fits,
    write_index_files,
)
from gammaxr.simulate.config import read_config
from gammaxr.simulate.events import SimulatedObservation, simulate_observations
from gammaxr.simulate.specs import TIME_REFERENCE, Observatory, SimulationConfig

__all__ = [
    "SimulationReport",
    "obs_index_table",
    "simulate_datastore",
    "write_datastore",
]

#: Columns of the event lists written to disk.
EVENT_COLUMNS = ("event_id", "time", "ra", "dec", "energy", "mc_id")
_INDEX_FILES = ("hdu-index.fits.gz", "obs-index.fits.gz")
_OBS_COLUMNS = {
    # name: (FITS name, unit)
    "obs_id": ("OBS_ID", ""),
    "ra_pnt": ("RA_PNT", "deg"),
    "dec_pnt": ("DEC_PNT", "deg"),
    "glon_pnt": ("GLON_PNT", "deg"),
    "glat_pnt": ("GLAT_PNT", "deg"),
    "zen_pnt": ("ZEN_PNT", "deg"),
    "alt_pnt": ("ALT_PNT", "deg"),
    "az_pnt": ("AZ_PNT", "deg"),
    "object": ("OBJECT", ""),
    "target_name": ("TARGET_NAME", ""),
    "ra_obj": ("RA_OBJ", "deg"),
    "dec_obj": ("DEC_OBJ", "deg"),
    "target_offset": ("TARGET_OFFSET", "deg"),
    "ontime": ("ONTIME", "s"),
    "livetime": ("LIVETIME", "s"),
    "deadc": ("DEADC", ""),
    "tstart": ("TSTART", "s"),
    "tstop": ("TSTOP", "s"),
    "date_obs": ("DATE-OBS", ""),
    "time_obs": ("TIME-OBS", ""),
    "date_end": ("DATE-END", ""),
    "time_end": ("TIME-END", ""),
    "n_tels": ("N_TELS", ""),
    "event_count": ("EVENT_COUNT", ""),
    "ev_class": ("EV_CLASS", ""),
    "irf": ("IRF", ""),
}


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name) or "irf"


def _check_directory(directory: Path, overwrite: bool) -> None:
    existing = [n for n in _INDEX_FILES if (directory / n).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{directory}: a data store exists there ({', '.join(existing)}); use overwrite=True "
            "(--overwrite) or another directory"
        )


def _target_offset(header: Mapping) -> float:
    if "RA_OBJ" not in header:
        return float("nan")
    from gammaxr.models.sphere import separation

    return float(
        separation(header["RA_PNT"], header["DEC_PNT"], header["RA_OBJ"], header["DEC_OBJ"])
    )


def obs_index_table(
    headers: Iterable[Mapping], observatory: Observatory | None = None
) -> xr.Dataset:
    """Observation index of simulated runs from their event headers.

    Parameters
    ----------
    headers : iterable of mapping
        ``EVENTS`` header keywords of each run (with ``EVENT_COUNT`` added).
    observatory : Observatory, optional
        Site keywords for the table header.

    Returns
    -------
    xarray.Dataset
        Dim ``obs_id``, columns of :data:`_OBS_COLUMNS` (``fits_name`` and ``units`` attrs),
        header keywords (time reference, site) in attrs.
    """
    headers = list(headers)
    values: dict[str, list] = {k: [] for k in _OBS_COLUMNS}
    for h in headers:
        row = {
            **{k: h.get(fits_name) for k, (fits_name, _) in _OBS_COLUMNS.items()},
            "target_name": h.get("OBJECT", ""),
            "ra_obj": h.get("RA_OBJ", np.nan),
            "dec_obj": h.get("DEC_OBJ", np.nan),
            "target_offset": _target_offset(h),
            "irf": h.get("EV_CLASS", ""),
        }
        for k in values:
            values[k].append(row[k])
    data = {}
    for name, (fits_name, unit) in _OBS_COLUMNS.items():
        column = values[name]
        if name in ("obs_id", "n_tels", "event_count"):
            arr = np.asarray(column, dtype=np.int64)
        elif all(isinstance(v, str) for v in column):
            arr = np.asarray(column, dtype=str)
        else:
            arr = np.asarray(column, dtype=float)
        data[name] = xr.Variable("obs_id", arr, {"units": unit, "fits_name": fits_name})
    observatory = observatory or Observatory()
    attrs = {
        **TIME_REFERENCE,
        "TELESCOP": observatory.telescope,
        "GEOLON": observatory.geolon,
        "GEOLAT": observatory.geolat,
        "ALTITUDE": observatory.altitude,
        "CREATOR": "gammaxr.simulate",
    }
    return xr.Dataset(data, attrs=attrs)


def _hdu_size(hdu) -> int:
    """Bytes of an HDU in its (uncompressed) FITS file: header and data in 2880-byte blocks."""
    blocks = lambda n: -(-int(n) // 2880) * 2880  # noqa: E731
    return blocks(80 * (len(hdu.header) + 1)) + blocks(
        hdu.data.nbytes if hdu.data is not None else 0
    )


class _StoreWriter:
    """Writes run files and shared IRF files; collects the index rows."""

    def __init__(self, directory: Path, overwrite: bool) -> None:
        self.directory = directory
        self.overwrite = overwrite
        self.rows: list[tuple] = []
        self.headers: list[dict] = []
        self.irf_files: dict[str, tuple[str, dict]] = {}  # irf name -> (file, {type: hdu})

    def _irf_file(self, sim: SimulatedObservation) -> tuple[str, dict]:
        name = sim.irfs.name
        if name not in self.irf_files:
            hdus = sim.irfs.to_hdus()
            file_name = f"{_safe_name(name)}.fits.gz"
            used = {f for f, _ in self.irf_files.values()}
            if file_name in used:
                file_name = f"{_safe_name(name)}_{len(used)}.fits.gz"
            write_fits(
                self.directory / "irfs" / file_name, list(hdus.values()), overwrite=self.overwrite
            )
            self.irf_files[name] = (file_name, hdus)
        return self.irf_files[name]

    def add(self, sim: SimulatedObservation) -> None:
        obs_id = sim.obs_id
        events = sim.events[[c for c in EVENT_COLUMNS if c in sim.events]]
        header = {**sim.events.attrs, "EVENT_COUNT": int(events.sizes["event"])}
        events_hdu = events_to_hdu(events.assign_attrs(header))
        gti_hdu = gti_to_hdu(sim.gti, header={"OBS_ID": obs_id})
        file_name = f"obs_{obs_id:06d}.fits.gz"
        write_fits(
            self.directory / "data" / file_name, [events_hdu, gti_hdu], overwrite=self.overwrite
        )
        for hdu_type, hdu in (("events", events_hdu), ("gti", gti_hdu)):
            self.rows.append((obs_id, hdu_type, hdu_type, "data", file_name, hdu.name, hdu))
        irf_file, irf_hdus = self._irf_file(sim)
        classes = sim.irfs.hdu_classes()
        for hdu_type, hdu in irf_hdus.items():
            self.rows.append((obs_id, hdu_type, classes[hdu_type], "irfs", irf_file, hdu.name, hdu))
        self.headers.append(header)

    def finish(self, observatory: Observatory | None) -> xr.Dataset:
        columns = ("obs_id", "hdu_type", "hdu_class", "file_dir", "file_name", "hdu_name")
        data = {
            c: xr.Variable("hdu", np.asarray([r[k] for r in self.rows]))
            for k, c in enumerate(columns)
        }
        data["obs_id"] = data["obs_id"].astype(np.int64)
        data["size"] = xr.Variable(
            "hdu", np.asarray([_hdu_size(r[-1]) for r in self.rows], dtype=np.int64)
        )
        hdu_index = xr.Dataset(data)
        obs_table = obs_index_table(self.headers, observatory)
        write_index_files(self.directory, hdu_index, obs_table, overwrite=self.overwrite)
        return obs_table


def write_datastore(
    directory: str | os.PathLike,
    observations: Iterable[SimulatedObservation],
    *,
    observatory: Observatory | None = None,
    overwrite: bool = False,
) -> Path:
    """Write simulated runs as a GADF DL3 data store (layout in the module docstring).

    Parameters
    ----------
    directory : str or os.PathLike
        Output directory (created if needed).
    observations : iterable of SimulatedObservation
        The runs (e.g. from :func:`~gammaxr.simulate.events.simulate_observations`); each
        IRF set (by name) is written once.
    observatory : Observatory, optional
        Site keywords of the observation index header.
    overwrite : bool
        Replace an existing store in ``directory``.

    Returns
    -------
    pathlib.Path
        ``directory``; ``gammaxr.data.open_datastore(directory)`` opens the store.

    Raises
    ------
    FileExistsError
        ``directory`` already holds index files and ``overwrite`` is False.
    """
    directory = Path(directory)
    _check_directory(directory, overwrite)
    writer = _StoreWriter(directory, overwrite)
    for sim in observations:
        writer.add(sim)
    if not writer.rows:
        raise ValueError(f"{directory}: no observations to write")
    writer.finish(observatory)
    return directory


@dataclass(frozen=True)
class SimulationReport:
    """What :func:`simulate_datastore` wrote.

    Attributes
    ----------
    directory : pathlib.Path
        The data store.
    obs_table : xarray.Dataset
        The observation index written (dim ``obs_id``; ``event_count`` per run).
    counts : dict of int to dict of str to int
        obs_id -> events per component (``"background"`` and each source name).
    seconds : float
        Wall time of simulating and writing.
    seed : int or None
        Master seed used.
    """

    directory: Path
    obs_table: xr.Dataset
    counts: dict[int, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    seed: int | None = None

    @property
    def n_events(self) -> int:
        """Total number of events written."""
        return int(self.obs_table["event_count"].sum())

    def open(self):
        """The store as a :class:`gammaxr.data.DataStore`."""
        from gammaxr.data import open_datastore

        return open_datastore(self.directory)

    def summary(self) -> str:
        """A small text table: events per run and component, and the wall time."""
        names = list(dict.fromkeys(k for c in self.counts.values() for k in c))
        head = f"{'obs_id':>8} {'events':>8} " + " ".join(f"{n[:12]:>12}" for n in names)
        lines = [head]
        for obs_id, c in self.counts.items():
            total = sum(c.values())
            lines.append(f"{obs_id:>8} {total:>8} " + " ".join(f"{c.get(n, 0):>12}" for n in names))
        lines.append(
            f"{len(self.counts)} runs, {self.n_events} events, {self.seconds:.2f} s "
            f"(seed {self.seed}) -> {self.directory}"
        )
        return "\n".join(lines)


def simulate_datastore(
    config: SimulationConfig | str | os.PathLike,
    directory: str | os.PathLike,
    *,
    seed: int | None = None,
    overwrite: bool = False,
) -> SimulationReport:
    """Simulate every run of a description and write the data store, one run at a time.

    Parameters
    ----------
    config : SimulationConfig or path
        The description (or its YAML file, :func:`~gammaxr.simulate.config.read_config`).
    directory : str or os.PathLike
        Output directory.
    seed : int, optional
        Master seed (default the description's ``seed``; None: not reproducible).
    overwrite : bool
        Replace an existing store in ``directory``.

    Returns
    -------
    SimulationReport
    """
    start = _time.perf_counter()
    if not isinstance(config, SimulationConfig):
        config = read_config(config)
    seed = config.seed if seed is None else seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    directory = Path(directory)
    _check_directory(directory, overwrite)
    writer = _StoreWriter(directory, overwrite)
    counts = {}
    for sim in simulate_observations(config, seed=seed):
        writer.add(sim)
        counts[sim.obs_id] = dict(sim.counts)
    obs_table = writer.finish(config.observatory)
    return SimulationReport(directory, obs_table, counts, _time.perf_counter() - start, seed)
