"""The numbers a fit works on: numpy snapshots of map and spectrum datasets.

A likelihood is evaluated hundreds of times, so the arrays it needs are loaded once, here,
into plain numpy containers: this is the **compute boundary** of fitting (DESIGN.md, "Rules
for laziness"). :func:`load_datasets` computes all variables a fit reads in one
``dask.compute`` call (dask-backed datasets are read once, nothing else is loaded) and splits a
dataset with an ``obs_id`` dim into one snapshot per run.

Dataset names (used to match :class:`~gammaxr.models.FoVBackgroundModel` and
``SkyModel.datasets_names``): a dataset is called ``name`` (argument), else
``ds.attrs["name"]``, else ``"stacked"``; the runs of a dataset with an ``obs_id`` dim are
called ``str(obs_id)`` and also answer to the dataset's name (so one background model named
after the dataset is shared by all runs, one per run name gives each run its own norm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import dask
import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_edges
from gammaxr.io.errors import DL3Error
from gammaxr.io.gadf import time_reference

__all__ = ["DEFAULT_NAME", "MapData", "SpectrumData", "dataset_name", "load_datasets"]

#: Name of a dataset without a ``name`` attr.
DEFAULT_NAME = "stacked"

_MAP_VARS = (
    "counts",
    "background",
    "exposure",
    "mask_safe",
    "mask_fit",
    "psf",
    "edisp",
    "counts_off",
    "acceptance",
    "acceptance_off",
)


@dataclass(frozen=True, eq=False)
class MapData:
    """One map dataset as numpy arrays (float64), ready for likelihood evaluation.

    Attributes
    ----------
    name : str
        Dataset name; ``names`` also holds the parent dataset's name for runs.
    names : tuple of str
        Names the dataset answers to (its own, then its parent's).
    frame : str
        Sky frame of ``lon``/``lat``.
    lon, lat : numpy.ndarray, shapes (n_lon,), (n_lat,)
        Pixel-centre coordinates, deg (regular steps).
    energy : numpy.ndarray, shape (n_e,)
        Reco-energy bin centres, TeV (where background norms are evaluated).
    energy_edges, energy_true_edges : numpy.ndarray
        Bin edges, TeV.
    counts : numpy.ndarray, shape (n_e, n_lat, n_lon)
        Observed counts.
    mask : numpy.ndarray of bool, shape (n_e, n_lat, n_lon)
        Bins entering the likelihood (``mask_safe & mask_fit``).
    exposure : numpy.ndarray, shape (n_et, n_lat, n_lon), or None
        Exposure, m2 s.
    background : numpy.ndarray, shape (n_e, n_lat, n_lon), or None
        Background model counts.
    psf : numpy.ndarray, shape (n_et, n_rad, n_lat_irf, n_lon_irf), or None
        Normalised radial PSF profiles, sr-1 (IRF dims of size 1 if the dataset has one PSF).
    rad_edges : numpy.ndarray or None
        rad bin edges of ``psf``, deg.
    lon_irf, lat_irf : numpy.ndarray
        IRF-grid pixel centres, deg (one element if there is no IRF grid).
    edisp : numpy.ndarray, shape (n_et, n_e, n_lat_irf, n_lon_irf), or None
        Energy-dispersion kernels (probability per reco bin).
    counts_off, alpha : numpy.ndarray, shape (n_e, n_lat, n_lon), or None
        Off counts and ``acceptance / acceptance_off`` of an on/off dataset.
    square_pixel : float or None
        deg; the pixel side of the Gammapy WCS a dataset was relabelled from (attr
        ``gammapy_pixel_deg``, :mod:`gammaxr.io.gammapy_geometry`), used by
        ``convention="gammapy"`` for its square PSF-kernel pixels.
    time_intervals : numpy.ndarray, shape (n, 2), or None
        Time span(s) of the data (``tstart``, ``tstop``), MJD in TT, where known; temporal
        models are averaged over them.
    """

    name: str
    names: tuple[str, ...]
    frame: str
    lon: np.ndarray
    lat: np.ndarray
    energy: np.ndarray
    energy_edges: np.ndarray
    energy_true_edges: np.ndarray
    counts: np.ndarray
    mask: np.ndarray
    exposure: np.ndarray | None = None
    background: np.ndarray | None = None
    psf: np.ndarray | None = None
    rad_edges: np.ndarray | None = None
    lon_irf: np.ndarray | None = None
    lat_irf: np.ndarray | None = None
    edisp: np.ndarray | None = None
    counts_off: np.ndarray | None = None
    alpha: np.ndarray | None = None
    square_pixel: float | None = None
    time_intervals: np.ndarray | None = None

    @property
    def is_on_off(self) -> bool:
        """Whether the dataset has off counts (wstat likelihood)."""
        return self.counts_off is not None

    @property
    def lon_step(self) -> float:
        """lon pixel step, deg."""
        return _step(self.lon, "lon", self.name)

    @property
    def lat_step(self) -> float:
        """lat pixel step, deg."""
        return _step(self.lat, "lat", self.name)


@dataclass(frozen=True, eq=False)
class SpectrumData:
    """One 1D spectrum dataset as numpy arrays (dims ``energy`` / ``energy_true`` only).

    Attributes
    ----------
    name, names : str, tuple of str
        As :class:`MapData`.
    energy, energy_edges, energy_true_edges : numpy.ndarray
        Reco bin centres and edges, true edges, TeV.
    counts : numpy.ndarray, shape (n_e,)
        On counts.
    mask : numpy.ndarray of bool, shape (n_e,)
        Bins entering the likelihood.
    exposure : numpy.ndarray, shape (n_et,)
        Exposure (containment-corrected if the reduction did so), m2 s.
    edisp : numpy.ndarray, shape (n_et, n_e), or None
        Energy-dispersion kernel.
    background : numpy.ndarray, shape (n_e,), or None
        Background model counts in the on region (cash likelihood when there is no off).
    counts_off, alpha : numpy.ndarray, shape (n_e,), or None
        Off counts and alpha (wstat likelihood).
    time_intervals : numpy.ndarray, shape (n, 2), or None
        As :class:`MapData`.
    """

    name: str
    names: tuple[str, ...]
    energy: np.ndarray
    energy_edges: np.ndarray
    energy_true_edges: np.ndarray
    counts: np.ndarray
    mask: np.ndarray
    exposure: np.ndarray
    edisp: np.ndarray | None = None
    background: np.ndarray | None = None
    counts_off: np.ndarray | None = None
    alpha: np.ndarray | None = None
    time_intervals: np.ndarray | None = None

    @property
    def is_on_off(self) -> bool:
        """Whether the dataset has off counts (wstat likelihood)."""
        return self.counts_off is not None


def _step(coord: np.ndarray, axis: str, name: str) -> float:
    if coord.size < 2:
        raise ValueError(f"dataset {name!r}: the {axis} axis needs at least 2 pixels")
    return float(coord[1] - coord[0])


def dataset_name(ds: xr.Dataset, name: str | None = None) -> str:
    """The name of a dataset: ``name``, else ``ds.attrs["name"]``, else ``"stacked"``."""
    return str(name if name is not None else ds.attrs.get("name", DEFAULT_NAME))


def _float(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a, dtype=np.float64)


def _edges(ds: xr.Dataset, dim: str, name: str) -> np.ndarray:
    try:
        return axis_edges(ds, dim)
    except KeyError as exc:
        raise KeyError(
            f"dataset {name!r}: axis {dim!r} has no bin edges (coordinate {dim}_bounds); "
            "fitting needs them to integrate spectra over the bins"
        ) from exc


def _mask(ds: xr.Dataset, dims: tuple[str, ...]) -> xr.DataArray:
    mask = xr.ones_like(ds["counts"], dtype=bool)
    if "mask_safe" in ds:
        mask = mask & ds["mask_safe"].astype(bool)
    if "mask_fit" in ds:
        mask = mask & ds["mask_fit"].astype(bool)
    return mask.transpose(*dims)


def _alpha(acc: np.ndarray, acc_off: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(acc_off > 0, acc / np.where(acc_off > 0, acc_off, 1.0), 0.0)


def _map_arrays(ds: xr.Dataset, name: str) -> dict[str, xr.DataArray]:
    """The DataArrays a map fit needs, in canonical dim order (still lazy)."""
    if "counts" not in ds:
        raise ValueError(f"dataset {name!r} has no 'counts' variable to fit")
    lead = ("obs_id",) if "obs_id" in ds.dims else ()
    reco = (*lead, "energy", "lat", "lon")
    out = {"counts": ds["counts"].transpose(*reco), "mask": _mask(ds, reco)}
    if "background" in ds:
        out["background"] = ds["background"].transpose(*reco)
    if "exposure" in ds:
        out["exposure"] = ds["exposure"].transpose(*lead, "energy_true", "lat", "lon")
    irf = tuple(d for d in ("lat_irf", "lon_irf") if d in ds.dims)
    if "psf" in ds:
        dims = (*lead, "energy_true", "rad", *[d for d in irf if d in ds["psf"].dims])
        out["psf"] = ds["psf"].transpose(*dims)
    if "edisp" in ds:
        dims = (*lead, "energy_true", "energy", *[d for d in irf if d in ds["edisp"].dims])
        out["edisp"] = ds["edisp"].transpose(*dims)
    if "counts_off" in ds:
        for var in ("acceptance", "acceptance_off"):
            if var not in ds:
                raise ValueError(f"on/off dataset {name!r} has counts_off but no {var!r}")
        for var in ("counts_off", "acceptance", "acceptance_off"):
            out[var] = ds[var].broadcast_like(ds["counts"]).transpose(*reco)
    return out


def _spectrum_arrays(ds: xr.Dataset, name: str) -> dict[str, xr.DataArray]:
    lead = ("obs_id",) if "obs_id" in ds.dims else ()
    for var in ("counts", "exposure"):
        if var not in ds:
            raise ValueError(f"spectrum dataset {name!r} has no {var!r} variable")
    out = {
        "counts": ds["counts"].transpose(*lead, "energy"),
        "mask": _mask(ds, (*lead, "energy")),
        "exposure": ds["exposure"].transpose(*lead, "energy_true"),
    }
    if "edisp" in ds:
        out["edisp"] = ds["edisp"].transpose(*lead, "energy_true", "energy")
    if "background" in ds:
        out["background"] = ds["background"].transpose(*lead, "energy")
    if "counts_off" in ds:
        for var in ("counts_off", "acceptance", "acceptance_off"):
            if var not in ds:
                raise ValueError(f"on/off spectrum dataset {name!r} has no {var!r}")
            out[var] = ds[var].broadcast_like(ds["counts"]).transpose(*lead, "energy")
    return out


def _irf_axis(psf_or_edisp: xr.DataArray | None, ds: xr.Dataset, dim: str, fallback: float):
    if psf_or_edisp is not None and dim in psf_or_edisp.dims:
        return np.asarray(ds[dim].values, dtype=float)
    return np.array([fallback])


def _one_map(ds, arrays: dict, name: str, names: tuple[str, ...]) -> MapData:
    lon = np.asarray(ds["lon"].values, dtype=float)
    lat = np.asarray(ds["lat"].values, dtype=float)
    psf_da, edisp_da = ds.get("psf"), ds.get("edisp")
    irf_da = psf_da if psf_da is not None else edisp_da
    psf, edisp = _float(arrays.get("psf")), _float(arrays.get("edisp"))
    if psf is not None and psf.ndim == 2:  # one PSF for the whole map
        psf = psf[:, :, None, None]
    if edisp is not None and edisp.ndim == 2:  # one kernel for the whole map
        irf_shape = psf.shape[2:] if psf is not None else (1, 1)
        edisp = np.broadcast_to(edisp[:, :, None, None], (*edisp.shape, *irf_shape))
    alpha = counts_off = None
    if "counts_off" in arrays:
        counts_off = _float(arrays["counts_off"])
        alpha = _alpha(_float(arrays["acceptance"]), _float(arrays["acceptance_off"]))
    frame = ds.attrs.get("frame", ds["lon"].attrs.get("frame"))
    if frame is None:
        raise KeyError(f"dataset {name!r} has no 'frame' attr naming its sky frame")
    return MapData(
        name=name,
        names=names,
        frame=str(frame),
        lon=lon,
        lat=lat,
        energy=np.asarray(ds["energy"].values, dtype=float),
        energy_edges=_edges(ds, "energy", name),
        energy_true_edges=_edges(ds, "energy_true", name) if "energy_true" in ds.dims else None,
        counts=_float(arrays["counts"]),
        mask=np.asarray(arrays["mask"], dtype=bool),
        exposure=_float(arrays.get("exposure")),
        background=_float(arrays.get("background")),
        psf=psf,
        rad_edges=_edges(ds, "rad", name) if psf is not None else None,
        lon_irf=_irf_axis(irf_da, ds, "lon_irf", float(np.median(lon))),
        lat_irf=_irf_axis(irf_da, ds, "lat_irf", float(np.median(lat))),
        edisp=edisp,
        counts_off=counts_off,
        alpha=alpha,
        square_pixel=ds.attrs.get("gammapy_pixel_deg"),
    )


def _one_spectrum(ds, arrays: dict, name: str, names: tuple[str, ...]) -> SpectrumData:
    alpha = counts_off = None
    if "counts_off" in arrays:
        counts_off = _float(arrays["counts_off"])
        alpha = _alpha(_float(arrays["acceptance"]), _float(arrays["acceptance_off"]))
    return SpectrumData(
        name=name,
        names=names,
        energy=np.asarray(ds["energy"].values, dtype=float),
        energy_edges=_edges(ds, "energy", name),
        energy_true_edges=_edges(ds, "energy_true", name),
        counts=_float(arrays["counts"]),
        mask=np.asarray(arrays["mask"], dtype=bool),
        exposure=_float(arrays["exposure"]),
        edisp=_float(arrays.get("edisp")),
        background=_float(arrays.get("background")),
        counts_off=counts_off,
        alpha=alpha,
    )


def time_spans(ds: xr.Dataset) -> np.ndarray | None:
    """``[[tstart, tstop], ...]`` of a dataset as MJD (TT), one row per run, or None.

    Read from the ``tstart``/``tstop`` coordinates (MET s, with ``MJDREFI``/``MJDREFF``/
    ``TIMESYS`` attrs; one value per run along ``obs_id``, or scalars), else from the
    dataset's GTI attrs ``gti_start``/``gti_stop`` (files read from Gammapy; one row per GTI)
    or ``tstart``/``tstop``; None where they or their reference are missing.
    """
    if "obs_id" not in ds.dims and "gti_start" in ds.attrs and "gti_stop" in ds.attrs:
        attrs = ds.attrs
        start, stop = np.atleast_1d(attrs["gti_start"]), np.atleast_1d(attrs["gti_stop"])
    elif "tstart" in ds.coords and "tstop" in ds.coords:
        start, stop = ds["tstart"], ds["tstop"]
        attrs = {**ds.attrs, **start.attrs}
        start, stop = np.atleast_1d(start.values), np.atleast_1d(stop.values)
    elif "tstart" in ds.attrs and "tstop" in ds.attrs:
        attrs, start, stop = (
            ds.attrs,
            np.atleast_1d(ds.attrs["tstart"]),
            np.atleast_1d(ds.attrs["tstop"]),
        )
    else:
        return None
    try:
        reference = time_reference(attrs)
    except DL3Error:
        return None
    met = np.stack([np.asarray(start, float), np.asarray(stop, float)], axis=-1)
    if not np.all(np.isfinite(met)):
        return None
    return reference.tt.mjd + met / 86400.0


def load_datasets(
    datasets: xr.Dataset | Sequence[xr.Dataset],
    name: str | Sequence[str] | None = None,
    skip_empty: bool = True,
) -> list[MapData | SpectrumData]:
    """Load what a fit needs from one or several datasets (the compute boundary of fitting).

    Parameters
    ----------
    datasets : xarray.Dataset or sequence of xarray.Dataset
        Map datasets (``counts(energy, lat, lon)``, ``exposure(energy_true, lat, lon)`` [m2 s],
        ``background``, ``mask_safe``, optional ``mask_fit``, ``psf(energy_true, rad,
        lat_irf, lon_irf)`` [sr-1], ``edisp(energy_true, energy, lat_irf, lon_irf)``,
        ``counts_off``/``acceptance``/``acceptance_off``) or spectrum datasets (the same
        without ``lat``/``lon``), optionally with an ``obs_id`` dim; numpy- or dask-backed.
    name : str or sequence of str, optional
        Dataset names (see the module docstring).
    skip_empty : bool
        Leave out runs with no bin inside their masks (they add nothing to a likelihood).

    Returns
    -------
    list of MapData or SpectrumData
        One entry per dataset, or per run for datasets with an ``obs_id`` dim.
    """
    if isinstance(datasets, xr.Dataset):
        datasets = [datasets]
    datasets = list(datasets)
    if name is None or isinstance(name, str):
        names = [name] * len(datasets)
    else:
        names = list(name)
        if len(names) != len(datasets):
            raise ValueError(f"got {len(names)} names for {len(datasets)} datasets")
    names = [dataset_name(ds, n) for ds, n in zip(datasets, names, strict=True)]
    if len(set(names)) != len(names):
        raise ValueError(f"dataset names must be unique, got {names}; pass name=[...]")
    lazy = []
    for ds, n in zip(datasets, names, strict=True):
        is_map = "lat" in ds.dims and "lon" in ds.dims
        lazy.append((_map_arrays if is_map else _spectrum_arrays)(ds, n))
    (loaded,) = dask.compute([{k: v.data for k, v in d.items()} for d in lazy])
    out: list[MapData | SpectrumData] = []
    for ds, n, arrays in zip(datasets, names, loaded, strict=True):
        make = _one_map if ("lat" in ds.dims and "lon" in ds.dims) else _one_spectrum
        spans = time_spans(ds)
        if "obs_id" not in ds.dims:
            out.append(replace(make(ds, arrays, n, (n,)), time_intervals=spans))
            continue
        for i, obs_id in enumerate(np.asarray(ds["obs_id"].values).tolist()):
            run = {k: a[i] for k, a in arrays.items()}
            if skip_empty and not np.any(run["mask"]):
                continue  # nothing of this run enters the likelihood
            span = None if spans is None else spans[i : i + 1]
            out.append(replace(make(ds, run, str(obs_id), (str(obs_id), n)), time_intervals=span))
    if not out and skip_empty:
        raise ValueError("no dataset has any bin inside its safe/fit mask")
    return out
