"""Background rate models from off runs, and data stores that use them.

The background rate of an IACT (s-1 MeV-1 sr-1, per unit observation time) is estimated as in
Gammapy's "make template background model" workflow, from runs without gamma-ray sources in
the field of view (the H.E.S.S. DR1 ``"Off data"``):

1. :func:`background_counts` histograms the events of each run (inside its GTIs, outside an
   optional exclusion of known sources) in reconstructed energy and either offset from the
   pointing (a ``bkg_2d`` model) or FoV coordinates (``bkg_3d``); it also records the run's
   observation time and the solid angle of each spatial bin left after the exclusion. One dask
   task per run (:func:`gammaxr.irf.background_histogram.run_histogram`, numpy in and out);
   nothing is read until computed.
2. :func:`background_model` sums runs into groups (bins of any observation-table column, e.g.
   zenith angle) as a reduction over ``obs_id``, and divides:
   ``rate = counts / (time * solid angle * energy width)``; :func:`smooth_background`
   optionally smooths it.
3. :func:`background_irf` gives one group as an IRF table in the layout of
   :func:`gammaxr.io.irf_fits.read_irf_hdu`; :mod:`gammaxr.irf.background_store` writes every
   group as a GADF ``bkg_2d`` / ``bkg_3d`` HDU and an HDU index pointing each run of a data
   store to the model of its group (and a copy of the observation index), so that
   :func:`gammaxr.data.open_datastore` on the result uses them.

Conventions
-----------
Time
    The rate is per unit of on-time (``time="ontime"``, the default: ``ONTIME``, else the
    sum of the GTIs): GADF background rates are per on-time, not dead-time corrected, and
    the time is the one Gammapy's workflow (``observation_time_duration``, the GTI sum) and
    gammaxr's reduction (:func:`gammaxr.reduce.dataset.reduce_observation_arrays`) multiply
    the rate by. ``"duration"`` (``TSTOP - TSTART``; equal to ``ONTIME`` in H.E.S.S. DR1)
    and ``"livetime"`` are available.
Bins
    Bins include their lower edge and exclude their upper edge. Solid angles are exact on the
    sphere: an offset ring ``[r1, r2)`` covers ``2 pi (cos r1 - cos r2)`` sr (``pi (r2^2 -
    r1^2)`` to 2e-4 relative at 3 deg); a FoV bin ``dlon * (sin lat2 - sin lat1)`` sr.
FoV coordinates
    ``fov_lon``, ``fov_lat`` come from :func:`gammaxr.geom.sky_to_fov` with the pointing
    RA/Dec (``FOVALIGN = RADEC``): ``fov_lat`` towards increasing Dec and ``fov_lon`` towards
    *decreasing* RA (the GADF / Gammapy sign), which is how
    :func:`gammaxr.reduce.maps.background_cube` evaluates a ``RADEC`` table. The models are
    written with ``CREATOR = gammaxr`` and read back as ``RADEC`` even beside the H.E.S.S. DR1
    event lists, whose own tables are ``REVERSE_LON_RADEC``
    (:func:`gammaxr.io.irf_fits.legacy_fov_alignment`). Gammapy 2.1 applies its reversed-lon
    rule to every table of a H.E.S.S. DR1 run, so it would read a non-symmetric gammaxr
    ``bkg_3d`` attached to those runs mirrored in ``fov_lon``.
Exclusion
    Events in excluded pixels are dropped and the solid angle of each spatial bin is reduced
    by the excluded pixels whose centre falls in it (pixel-size accuracy at the boundaries).
Sparse models
    A bin without counts has rate 0. Background tables are evaluated by interpolating the
    log of the rate between bin centres and integrating power laws between the energy edges
    (Gammapy's policy, :func:`gammaxr.irf.integrate_bkg_energy`), so a model with many empty
    bins under-predicts next to them, and extrapolating from an empty bin towards an axis end
    (e.g. offset 0) can give absurdly large values. Use enough runs, wider bins or
    :func:`smooth_background`. Near the energy threshold, where the rate peaks within one or two
    bins, the edge-based integration also under-predicts; compare above threshold or use
    ``background_oversampling`` in the reduction.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter1d

from gammaxr.geom.axes import axis_coords, axis_edges
from gammaxr.io.gadf import column_name
from gammaxr.irf.background_histogram import BACKGROUND_TIMES, run_histogram, spatial_edges
from gammaxr.units import to_edges, to_positive

__all__ = [
    "background_counts",
    "background_irf",
    "background_model",
    "group_dims",
    "make_background_model",
    "smooth_background",
]

_RATE_UNIT = "s-1 MeV-1 sr-1"
_RUN_VARS = ("counts", "solid_angle", "obs_time", "ok")


# --------------------------------------------------------------------------- many runs (lazy)


def _run_task(observation, energy_edges, spatial, on_error: str, kwargs) -> dict:
    try:
        return run_histogram(observation, energy_edges, spatial, **kwargs)
    except Exception as exc:
        reason = f"obs_id {int(observation.obs_id)}: background histogram failed: {exc}"
        if on_error == "raise":
            raise RuntimeError(reason) from exc
        warnings.warn(f"{reason} (run skipped)", RuntimeWarning, stacklevel=1)
        shape = tuple(len(e) - 1 for e in spatial.values())
        return {
            "counts": np.zeros((len(energy_edges) - 1, *shape)),
            "solid_angle": np.zeros(shape),
            "obs_time": np.asarray(0.0),
            "ok": np.asarray(False),
        }


def _table_coords(observations) -> dict[str, tuple]:
    """Numeric observation-table columns shared by all runs, as coordinates along obs_id."""
    infos = [o.obs_info for o in observations]
    names = [
        n
        for n, v in infos[0].data_vars.items()
        if v.ndim == 0 and v.dtype.kind in "iufb" and n not in _RUN_VARS
    ]
    names = [n for n in names if all(n in i.data_vars for i in infos[1:])]
    return {
        n: ("obs_id", np.array([i[n].values for i in infos]), dict(infos[0][n].attrs))
        for n in names
    }


def background_counts(
    observations: Any,
    energy_edges: Sequence[float],
    *,
    offset_edges: Sequence[float] | None = None,
    fov_lon_edges: Sequence[float] | None = None,
    fov_lat_edges: Sequence[float] | None = None,
    exclusion: Any = None,
    time: str = "ontime",
    gti_tolerance: float = 1.0,
    exclusion_binsz: float = 0.02,
    on_error: str = "raise",
) -> xr.Dataset:
    """Per-run event histograms for background modelling, lazily (one dask task per run).

    Parameters
    ----------
    observations : gammaxr.data.DataStore or sequence of gammaxr.data.Observation
        The off runs; only their observation-table rows are used now.
    energy_edges : sequence of float or astropy.units.Quantity
        Reco-energy edges in TeV (or energy quantities), increasing.
    offset_edges : sequence of float or astropy.units.Quantity, optional
        Offset edges in deg (a ``bkg_2d`` model), e.g. ``np.sqrt(np.linspace(0, 9, 10))``.
    fov_lon_edges, fov_lat_edges : sequence of float or astropy.units.Quantity, optional
        FoV edges in deg (a ``bkg_3d`` model, RADEC alignment; see the module docstring for
        the sign of ``fov_lon``). Give these or ``offset_edges``.
    exclusion : xarray.DataArray or regions or str, optional
        Known sources to leave out: a boolean mask ``(lat, lon)`` with a ``frame`` attr, True
        where usable (as :func:`gammaxr.geom.exclusion_mask` makes it; positions off the mask
        are usable), or sky regions / a DS9 string to exclude (turned into a mask around each
        pointing with ``exclusion_binsz`` pixels).
    time : {"duration", "ontime", "livetime"}
        Observation time of a run: ``TSTOP - TSTART``, ``ONTIME`` (default; else the GTI
        sum) or ``LIVETIME``.
    gti_tolerance : float or astropy.units.Quantity
        Seconds (or a time quantity) by which GTIs are widened (as
        :class:`gammaxr.reduce.dataset.ReductionSpec`; H.E.S.S. DR1 rounds GTI limits to whole
        seconds).
    exclusion_binsz : float or astropy.units.Quantity
        Pixel size in deg (or an angle quantity) of the masks made from regions.
    on_error : {"raise", "skip"}
        A run that fails raises (naming its obs_id) or is skipped with a warning, counting
        nothing (``ok`` False, ``obs_time`` 0).

    Returns
    -------
    xarray.Dataset
        Dim ``obs_id`` (one dask chunk per run): ``counts(obs_id, energy, *spatial)``,
        ``solid_angle(obs_id, *spatial)`` in sr (after the exclusion), ``obs_time(obs_id)`` in
        s, ``ok(obs_id)``; coordinates: the binned axes (``energy``, ``offset`` or
        ``fov_lon``/``fov_lat``, with bounds) and the numeric observation-table columns along
        ``obs_id`` (``zen_pnt``, ``az_pnt``, ...) for grouping.
    """
    if time not in BACKGROUND_TIMES:
        raise ValueError(f"time must be one of {BACKGROUND_TIMES}, got {time!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    observations = (
        observations.observations() if hasattr(observations, "observations") else observations
    )
    observations = list(observations)
    if not observations:
        raise ValueError("background_counts: no observations")
    energy_edges = to_edges(energy_edges, "TeV", "energy_edges")
    gti_tolerance = to_positive(gti_tolerance, "s", "gti_tolerance", allow_zero=True)
    exclusion_binsz = to_positive(exclusion_binsz, "deg", "exclusion_binsz")
    spatial = spatial_edges(offset_edges, fov_lon_edges, fov_lat_edges)
    sdims, sshape = tuple(spatial), tuple(len(e) - 1 for e in spatial.values())
    layout = {
        "counts": (("energy", *sdims), (len(energy_edges) - 1, *sshape), float, ""),
        "solid_angle": (sdims, sshape, float, "sr"),
        "obs_time": ((), (), float, "s"),
        "ok": ((), (), bool, ""),
    }
    kwargs = {
        "exclusion": exclusion,
        "time": time,
        "gti_tolerance": gti_tolerance,
        "exclusion_binsz": exclusion_binsz,
    }
    pieces: dict[str, list] = {name: [] for name in layout}
    for obs in observations:
        obs_id = int(obs.obs_id)
        task = dask.delayed(_run_task, pure=False)(
            obs, energy_edges, spatial, on_error, kwargs, dask_key_name=f"bkg-hist-{obs_id}"
        )
        for name, (_, shape, dtype, _) in layout.items():
            arr = da.from_delayed(task[name], shape=shape, dtype=dtype, name=f"{name}-{obs_id}")
            pieces[name].append(arr[None])
    data_vars = {
        name: (("obs_id", *dims), da.concatenate(pieces[name]), {"units": unit})
        for name, (dims, _, _, unit) in layout.items()
    }
    coords = {"obs_id": np.array([int(o.obs_id) for o in observations])}
    coords.update(_table_coords(observations))
    coords.update(axis_coords("energy", energy_edges, "TeV"))
    for dim, edges in spatial.items():
        coords.update(axis_coords(dim, edges, "deg"))
    attrs = {"time": time, "gti_tolerance": float(gti_tolerance)}
    if fov_lon_edges is not None:
        attrs["fov_alignment"] = "RADEC"
    if exclusion is not None:
        attrs["exclusion"] = exclusion if isinstance(exclusion, str) else type(exclusion).__name__
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _membership(counts: xr.Dataset, group_by: Mapping[str, Sequence[float]]):
    """(obs_id, *group dims) 0/1 weights and the group-axis coordinates."""
    weights = xr.DataArray(np.ones(counts.sizes["obs_id"]), dims="obs_id")
    coords: dict[str, Any] = {}
    for column, edges in group_by.items():
        name = column_name(column)
        if name not in counts.coords:
            raise KeyError(
                f"cannot group by {column!r}: no such observation-table column along obs_id "
                f"(have {sorted(k for k, v in counts.coords.items() if v.dims == ('obs_id',))})"
            )
        edges = np.asarray(edges, dtype=float)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError(f"group edges of {column!r} must be 1D and increasing")
        values = np.asarray(counts.coords[name].values, dtype=float)
        index = np.searchsorted(edges, values, side="right") - 1
        onehot = index[:, None] == np.arange(edges.size - 1)[None, :]
        weights = weights * xr.DataArray(onehot.astype(float), dims=("obs_id", name))
        coords.update(axis_coords(name, edges, counts.coords[name].attrs.get("units", "")))
    return weights, coords


def background_model(
    counts: xr.Dataset,
    group_by: Mapping[str, Sequence[float]] | None = None,
    *,
    smooth: Mapping[str, float] | None = None,
) -> xr.Dataset:
    """Background rate per group of runs from :func:`background_counts` (a lazy reduction).

    Parameters
    ----------
    counts : xarray.Dataset
        Result of :func:`background_counts` (lazy or computed).
    group_by : mapping of str to sequence of float, optional
        Observation-table column -> bin edges, e.g. ``{"ZEN_PNT": [0, 20, 40, 90]}`` (in the
        column's unit; bins ``[lo, hi)``; several columns give one group dim each). A run
        outside every bin is left out. Default: all runs in one model (no group dim).
    smooth : mapping of str to float, optional
        Gaussian smoothing, sigma in bins per dim; see :func:`smooth_background`.

    Returns
    -------
    xarray.Dataset
        Dims ``(*group dims, energy, *spatial)``, one group dim per column named after it
        (``zen_pnt`` with bin-centre coordinate and ``zen_pnt_bounds``): ``bkg`` in
        s-1 MeV-1 sr-1 (0 where there are no counts), ``counts``, ``exposure`` (s MeV sr, the
        denominator), ``n_runs`` and ``obs_time`` (s) per group. Lazy if ``counts`` is.
    """
    weights, group_coords = _membership(counts, group_by or {})
    ok = counts["ok"].astype(float)
    summed_counts = xr.dot(counts["counts"], weights, dim="obs_id")
    time_w = weights * counts["obs_time"] * ok
    time_sr = xr.dot(counts["solid_angle"], time_w, dim="obs_id")
    lo, hi = (counts.coords["energy_bounds"].values[:, i] for i in (0, 1))
    width = xr.DataArray((hi - lo) * 1e6, dims="energy")  # TeV -> MeV
    exposure = time_sr * width
    spatial = [d for d in counts["solid_angle"].dims if d != "obs_id"]
    order = [*(d for d in weights.dims if d != "obs_id"), "energy", *spatial]
    out = xr.Dataset(
        {
            "counts": summed_counts.transpose(*order).assign_attrs(units=""),
            "exposure": exposure.transpose(*order).assign_attrs(units="s MeV sr"),
            "n_runs": weights.sum("obs_id").astype(int).assign_attrs(units=""),
            "obs_time": time_w.sum("obs_id").assign_attrs(units="s"),
        },
        coords={k: v for k, v in counts.coords.items() if "obs_id" not in v.dims},
        attrs={**counts.attrs, "group_by": list(weights.dims[1:])},
    ).assign_coords(group_coords)
    out["bkg"] = _rate(out["counts"], out["exposure"])
    if smooth:
        out = smooth_background(out, smooth)
    return out


def _rate(counts: xr.DataArray, exposure: xr.DataArray) -> xr.DataArray:
    rate = xr.where(exposure > 0, counts / exposure.where(exposure > 0), 0.0)
    return rate.assign_attrs(units=_RATE_UNIT)


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian_filter1d(np.asarray(x, dtype=float), sigma, axis=-1, mode="reflect")


def smooth_background(model: xr.Dataset, sigma: Mapping[str, float]) -> xr.Dataset:
    """Smooth a background model with Gaussian kernels along some of its axes.

    Counts and exposure are smoothed alike (kernel width ``sigma`` in bins, reflecting at the
    axis ends so that no counts are lost) and the rate recomputed as their ratio, which is an
    exposure-weighted average of neighbouring rates. Along ``offset`` / ``fov_*`` this reduces
    noise at the cost of resolution; along ``energy``, where the rate falls steeply, it biases
    the rate towards its neighbours, so keep ``sigma`` small there (<~ 1 bin).

    Parameters
    ----------
    model : xarray.Dataset
        Result of :func:`background_model` (lazy or computed).
    sigma : mapping of str to float
        Dim -> Gaussian sigma in bins, e.g. ``{"offset": 1.0}`` or
        ``{"fov_lon": 1, "fov_lat": 1}``.

    Returns
    -------
    xarray.Dataset
        A new model; ``attrs["smoothing"]`` records the sigmas.
    """
    out = model.copy()
    for dim, s in sigma.items():
        if dim not in model["counts"].dims or dim in model.attrs.get("group_by", []):
            raise ValueError(f"cannot smooth along {dim!r}: not an axis of the background")
        if not s > 0:
            raise ValueError(f"smoothing sigma along {dim!r} must be positive, got {s}")
        for name in ("counts", "exposure"):
            var = out[name].chunk({dim: -1}) if out[name].chunks else out[name]
            smoothed = xr.apply_ufunc(
                _gaussian,
                var,
                input_core_dims=[[dim]],
                output_core_dims=[[dim]],
                kwargs={"sigma": float(s)},
                dask="parallelized",
                output_dtypes=[float],
            )
            out[name] = smoothed.transpose(*model[name].dims).assign_attrs(model[name].attrs)
    out["bkg"] = _rate(out["counts"], out["exposure"])
    smoothing = {
        **dict(model.attrs.get("smoothing", {})),
        **{k: float(v) for k, v in sigma.items()},
    }
    return out.assign_attrs(smoothing=smoothing)


def make_background_model(
    observations: Any,
    energy_edges: Sequence[float],
    *,
    group_by: Mapping[str, Sequence[float]] | None = None,
    smooth: Mapping[str, float] | None = None,
    compute: bool = True,
    **kwargs: Any,
) -> xr.Dataset:
    """Background model from off runs in one call: :func:`background_counts` then
    :func:`background_model`.

    Parameters
    ----------
    observations, energy_edges, **kwargs
        See :func:`background_counts` (``offset_edges`` or ``fov_lon_edges`` and
        ``fov_lat_edges`` are required).
    group_by, smooth
        See :func:`background_model`.
    compute : bool
        Compute the result (the default; a computation boundary), or return it lazy.

    Returns
    -------
    xarray.Dataset
        See :func:`background_model`.
    """
    counts = background_counts(observations, energy_edges, **kwargs)
    model = background_model(counts, group_by, smooth=smooth)
    return model.compute() if compute else model


def group_dims(model: xr.Dataset) -> list[str]:
    """The group dims of a background model (one per ``group_by`` column)."""
    return list(model.attrs.get("group_by", []))


def background_irf(model: xr.Dataset, **indexers: int) -> xr.DataArray:
    """One group of a background model as an IRF table (``read_irf_hdu`` layout).

    Parameters
    ----------
    model : xarray.Dataset
        Result of :func:`background_model`.
    **indexers : int
        Position along each group dim, e.g. ``zen_pnt=1``.

    Returns
    -------
    xarray.DataArray
        ``bkg`` with dims ``(energy, offset)`` or ``(energy, fov_lon, fov_lat)``, edges as
        ``{dim}_lo``/``{dim}_hi`` coordinates, attrs ``units``, ``irf_class``,
        ``fov_alignment`` (``bkg_3d``), and the group's ``{column}_lo``/``{column}_hi``,
        ``n_runs`` and ``obs_time``.
    """
    groups = group_dims(model)
    if set(indexers) != set(groups):
        raise ValueError(f"give one position per group dim {groups}, got {sorted(indexers)}")
    one = model.isel(indexers)
    bkg = one["bkg"]
    dims = bkg.dims
    coords = {}
    for dim in dims:
        coords.update(axis_coords(dim, axis_edges(one, dim), one[dim].attrs["units"], lohi=True))
    irf_class = "bkg_2d" if "offset" in dims else "bkg_3d"
    attrs = {"units": _RATE_UNIT, "irf_class": irf_class}
    if irf_class == "bkg_3d":
        attrs["fov_alignment"] = model.attrs.get("fov_alignment", "RADEC")
    for g in groups:
        lo, hi = one.coords[f"{g}_bounds"].values
        attrs[f"{g}_lo"], attrs[f"{g}_hi"] = float(lo), float(hi)
    attrs["n_runs"] = int(one["n_runs"].values)
    attrs["obs_time"] = float(one["obs_time"].values)
    return xr.DataArray(bkg.values, dims=dims, coords=coords, name="bkg", attrs=attrs)
