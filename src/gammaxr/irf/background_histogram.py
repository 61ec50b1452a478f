"""Histogram one off run for a background model (numpy in and out).

The per-run task of :func:`gammaxr.irf.background_model.background_counts`: the run's events
inside its GTIs and outside an optional exclusion, binned in reconstructed energy and in offset
or FoV coordinates, with the run's observation time and the solid angle each spatial bin keeps
after the exclusion. The conventions (time, bins, FoV signs, exclusion) are those of
:mod:`gammaxr.irf.background_model`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from gammaxr.data.observation import events_in_gti
from gammaxr.geom.fov import sky_to_fov
from gammaxr.geom.grid import SkyGrid
from gammaxr.geom.regions import exclusion_mask
from gammaxr.geom.sky import angular_separation, transform_lonlat
from gammaxr.units import to_unit

__all__ = ["BACKGROUND_TIMES", "run_histogram", "spatial_edges"]

#: How the observation time of a run is measured (see :mod:`gammaxr.irf.background_model`).
BACKGROUND_TIMES = ("duration", "ontime", "livetime")


def spatial_edges(offset_edges, fov_lon_edges, fov_lat_edges) -> dict[str, np.ndarray]:
    """The spatial axes of a model, checked: ``{"offset": edges}`` or both FoV axes (deg).

    Raises ValueError unless exactly one kind is given, with 1D increasing edges (offsets
    >= 0); edges may be angle quantities.
    """
    if offset_edges is not None and (fov_lon_edges is None and fov_lat_edges is None):
        axes = {"offset": offset_edges}
    elif offset_edges is None and fov_lon_edges is not None and fov_lat_edges is not None:
        axes = {"fov_lon": fov_lon_edges, "fov_lat": fov_lat_edges}
    else:
        raise ValueError("give either offset_edges or both fov_lon_edges and fov_lat_edges")
    out = {}
    for dim, edges in axes.items():
        edges = np.asarray(to_unit(edges, "deg", f"{dim}_edges"), dtype=float)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError(f"{dim} edges must be 1D and increasing, got {edges}")
        if dim == "offset" and edges[0] < 0:
            raise ValueError("offset edges must be >= 0")
        out[dim] = edges
    return out


def _histogram(coords: Sequence[np.ndarray], edges: Sequence[np.ndarray], weights=None):
    """N-d histogram, bins ``[lo, hi)``; values outside every axis range are dropped."""
    shape = tuple(len(e) - 1 for e in edges)
    index, ok = [], np.ones(np.shape(coords[0]), dtype=bool)
    for values, e in zip(coords, edges, strict=True):
        i = np.searchsorted(e, values, side="right") - 1
        ok &= (i >= 0) & (i < len(e) - 1)
        index.append(i)
    flat = np.ravel_multi_index([i[ok] for i in index], shape) if ok.any() else np.zeros(0, int)
    w = None if weights is None else np.broadcast_to(weights, ok.shape)[ok]
    return np.bincount(flat, weights=w, minlength=int(np.prod(shape))).reshape(shape)


def _spatial_coords(ra, dec, ra0: float, dec0: float, dims) -> list[np.ndarray]:
    if dims == ("offset",):
        return [angular_separation(ra0, dec0, ra, dec)]
    return list(sky_to_fov(ra, dec, ra0, dec0))


def _bin_solid_angle(spatial: Mapping[str, np.ndarray]) -> np.ndarray:
    """Exact solid angle (sr) of each spatial bin."""
    if "offset" in spatial:
        r = np.radians(spatial["offset"])
        return 2 * np.pi * (np.cos(r[:-1]) - np.cos(r[1:]))
    dlon = np.diff(np.radians(spatial["fov_lon"]))
    sin_lat = np.sin(np.radians(spatial["fov_lat"]))
    return dlon[:, None] * np.diff(sin_lat)[None, :]


def _reach(spatial: Mapping[str, np.ndarray]) -> float:
    """Largest distance (deg) from the pointing that a spatial bin reaches."""
    if "offset" in spatial:
        return float(spatial["offset"][-1])
    return float(np.hypot(np.abs(spatial["fov_lon"]).max(), np.abs(spatial["fov_lat"]).max()))


def _exclusion_grid(exclusion, ra0: float, dec0: float, reach: float, binsz: float):
    """(grid, usable mask as numpy) for a run, or None."""
    if exclusion is None:
        return None
    if isinstance(exclusion, xr.DataArray):
        # computation boundary: the mask is needed as numpy in the run's task
        return SkyGrid.from_xarray(exclusion), np.asarray(exclusion.values, dtype=bool)
    grid = SkyGrid.from_center((ra0, dec0), 2 * reach + 4 * binsz, binsz, frame="icrs")
    return grid, np.asarray(exclusion_mask(grid, exclusion).values, dtype=bool)


def _run_time(obs, time: str) -> float:
    if time == "duration":
        return obs.tstop - obs.tstart
    return obs.ontime if time == "ontime" else obs.livetime


def run_histogram(
    observation,
    energy_edges: np.ndarray,
    spatial: Mapping[str, np.ndarray],
    *,
    exclusion: Any = None,
    time: str = "ontime",
    gti_tolerance: float = 1.0,
    exclusion_binsz: float = 0.02,
) -> dict[str, np.ndarray]:
    """Histogram one run (the per-run task of :func:`~gammaxr.irf.background_model.background_counts`).

    Parameters
    ----------
    observation : gammaxr.data.Observation
        The run; its events and GTIs are read here.
    energy_edges : numpy.ndarray, shape (n_e + 1,)
        Reco-energy edges in TeV.
    spatial : mapping
        ``{"offset": edges}`` or ``{"fov_lon": edges, "fov_lat": edges}``, deg.
    exclusion, time, gti_tolerance, exclusion_binsz
        See :func:`gammaxr.irf.background_model.background_counts`.

    Returns
    -------
    dict
        ``counts`` ``(n_e, *spatial_shape)`` float64, ``solid_angle`` ``(*spatial_shape)`` sr after
        the exclusion, ``obs_time`` () s, ``ok`` () bool.
    """
    obs = observation.read(("events", "gti"))
    events = events_in_gti(obs.events, obs.gti, tolerance=gti_tolerance)
    ra = np.asarray(events["ra"].values, dtype=float)
    dec = np.asarray(events["dec"].values, dtype=float)
    energy = np.asarray(events["energy"].values, dtype=float)
    pnt = obs.pointing
    ra0, dec0 = float(pnt.ra.deg), float(pnt.dec.deg)
    dims, edges = tuple(spatial), list(spatial.values())
    solid_angle = _bin_solid_angle(spatial)
    excl = _exclusion_grid(exclusion, ra0, dec0, _reach(spatial), exclusion_binsz)
    if excl is not None:
        grid, usable = excl
        i_lon, i_lat, inside = grid.bin_indices(ra, dec, frame="icrs")
        keep = ~inside | usable[np.where(inside, i_lat, 0), np.where(inside, i_lon, 0)]
        ra, dec, energy = ra[keep], dec[keep], energy[keep]
        j_lat, j_lon = np.nonzero(~usable)
        lon, lat = transform_lonlat(grid.lon[j_lon], grid.lat[j_lat], grid.frame, "icrs")
        pix = np.asarray(grid.solid_angle().values)[j_lat, j_lon]
        lost = _histogram(_spatial_coords(lon, lat, ra0, dec0, dims), edges, pix)
        solid_angle = np.clip(solid_angle - lost, 0.0, None)
    coords = _spatial_coords(ra, dec, ra0, dec0, dims)
    counts = _histogram([energy, *coords], [np.asarray(energy_edges), *edges])
    return {
        "counts": counts.astype(float),
        "solid_angle": solid_angle,
        "obs_time": np.asarray(float(_run_time(obs, time))),
        "ok": np.asarray(True),
    }
