"""Analysis configuration: a YAML/dict description of one binned 3D analysis, validated.

The description (``examples/demo.yaml`` is a complete one)::

    name: demo                              # optional label
    datastore: ../demo-output/store         # GADF data store (directory or hdu-index file)
    output: ../demo-output/run              # where results go (the CLI's --output wins)
    observations:                           # optional; default every run of the store
      obs_ids: [1, 2, 3, 4]
      cone: {center: [83.63, 22.01], frame: icrs, radius: 3}     # deg
      target: Crab-like
    grid: {center: [83.45, 22.2], frame: icrs, width: 3, binsz: 0.04}     # deg
    axes:                                   # named as the dataset dims
      energy: {min: 0.3, max: 30, nbins: 8}           # reco energy, TeV, log bins
      energy_true: {min: 0.1, max: 100, nbins: 20}    # (or edges: [...]; "300 GeV")
    reduction:
      maps: [counts, exposure, background, psf, edisp]
      safe_mask: [offset-max, aeff-max]
      offset_max: 2.0                       # deg
      aeff_percent: 10
      irf_binsz: 0.2                        # deg
      on_error: raise                       # or skip (failed runs named, left out)
    background:
      method: fov                           # fov (per-run norm) or ring (on/off maps)
      exclusion: "icrs; circle(83.633, 22.014, 0.3)"            # DS9 regions or a list
      fov: {method: scale}                  # or fit (optionally fit_tilt: true)
      ring: {r_in: 0.6, width: 0.3}         # deg (method ring only)
    fit:                                    # optional
      models: models.yaml                   # Gammapy model YAML: a file name or inline
      background_model: true                # add a FoVBackgroundModel for the dataset
      convention: gammaxr
    estimators:
      excess_map: {correlation_radius: 0.1}
      flux_points: {source: point, energy_edges: null}   # null: every reco bin
    plots: true
    compute: {scheduler: threads, num_workers: 2}

Numbers take the default unit (deg, TeV); strings with units are converted. Relative paths
are relative to the description file (the current directory for a mapping). Every problem is
an :class:`AnalysisConfigError` naming the file and the entry at fault.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from astropy import units as u

from gammaxr.io.yaml_files import read_yaml_mapping, suggest
from gammaxr.models import ModelFormatError, Models, models_from_dict, read_models

__all__ = [
    "AnalysisConfig",
    "AnalysisConfigError",
    "parse_analysis_config",
    "read_analysis_config",
]

_SECTIONS = {
    "name", "description", "datastore", "output", "observations", "grid", "axes",
    "reduction", "background", "fit", "estimators", "plots", "compute",
}  # fmt: skip
_MAP_NAMES = ("counts", "exposure", "background", "psf", "edisp")


class AnalysisConfigError(ValueError):
    """A description that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class AnalysisConfig:
    """A validated analysis description (see the module docstring for the format).

    Attributes
    ----------
    name : str
        Label of the analysis (and of the stacked dataset: background models match it).
    datastore : pathlib.Path
        The data store.
    output : pathlib.Path or None
        Output directory (None: nothing is written unless given to the pipeline).
    obs_ids : tuple of int or None
        Runs to use (None: all, after ``cone`` and ``target``).
    cone : dict or None
        ``{"lon", "lat", "frame", "radius"}`` (deg).
    target : str or None
        Target name of the runs.
    center : (float, float)
        Grid centre (deg, ``frame``).
    frame : str
        ``"icrs"`` or ``"galactic"``.
    width : (float, float)
        Grid width and height on the sky, deg.
    binsz : float
        Pixel size, deg.
    energy_edges, energy_true_edges : tuple of float
        Reco and true energy edges, TeV.
    maps, safe_mask : tuple of str
        Maps to make and safe-mask methods.
    offset_max, aeff_percent, irf_binsz : float
        Reduction settings (deg, %, deg).
    on_error : str
        ``"raise"`` or ``"skip"``: what a failing run does.
    background : str
        ``"fov"`` or ``"ring"``.
    exclusion : str or None
        DS9 region string of the exclusion regions.
    fov_method : str
        ``"scale"`` or ``"fit"``; ``fov_fit_tilt`` frees the tilt.
    fov_fit_tilt : bool
    ring_r_in, ring_width : float
        Ring radii, deg.
    models : Models or None
        Models to fit (None: no fit, no flux points).
    background_model : bool
        Add a ``FoVBackgroundModel`` for the stacked dataset when the models have none.
    convention : str
        Source rendering convention of the fit.
    excess_map : dict or None
        Options of the excess map (``correlation_radius`` in deg); None: no map.
    flux_points : dict or None
        ``{"source", "energy_edges"}``; None: no flux points.
    plots : bool
        Write PNG figures.
    scheduler : str
        Dask scheduler (``"threads"``, ``"processes"``, ``"synchronous"``).
    num_workers : int or None
        Dask workers.
    source : str
        Where the description came from (for messages).
    raw : dict
        The description as given (relative paths kept), for provenance.
    """

    datastore: Path
    center: tuple[float, float]
    width: tuple[float, float]
    binsz: float
    energy_edges: tuple[float, ...]
    energy_true_edges: tuple[float, ...]
    name: str = "stacked"
    output: Path | None = None
    obs_ids: tuple[int, ...] | None = None
    cone: dict | None = None
    target: str | None = None
    frame: str = "icrs"
    maps: tuple[str, ...] = _MAP_NAMES
    safe_mask: tuple[str, ...] = ("offset-max", "aeff-max")
    offset_max: float = 2.5
    aeff_percent: float = 10.0
    irf_binsz: float = 0.2
    on_error: str = "raise"
    background: str = "fov"
    exclusion: str | None = None
    fov_method: str = "scale"
    fov_fit_tilt: bool = False
    ring_r_in: float = 0.5
    ring_width: float = 0.3
    models: Models | None = None
    background_model: bool = True
    convention: str = "gammaxr"
    excess_map: dict | None = field(default_factory=lambda: {"correlation_radius": 0.1})
    flux_points: dict | None = None
    plots: bool = True
    scheduler: str = "threads"
    num_workers: int | None = None
    source: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    def to_yaml(self) -> str:
        """The description as given, as YAML (for provenance in the output directory)."""
        return yaml.safe_dump(self.raw, sort_keys=False)


class _Parser:
    """Helpers that prefix every error with the source and the entry."""

    def __init__(self, source: str, base: Path) -> None:
        self.prefix = f"{source}: " if source else ""
        self.base = base

    def error(self, where: str, message: str) -> AnalysisConfigError:
        return AnalysisConfigError(f"{self.prefix}{where}: {message}")

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(where, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            key = unknown[0]
            did = suggest(key, allowed)
            raise self.error(where, f"unknown key {key!r}{did}; known keys: {sorted(allowed)}")
        return dict(value)

    def number(self, value: Any, where: str, unit: str, positive: bool = True) -> float:
        try:
            if isinstance(value, str):
                number = u.Quantity(value).to_value(unit)
            elif isinstance(value, bool):
                raise TypeError
            else:
                number = float(value)
        except (TypeError, ValueError, u.UnitsError) as exc:
            raise self.error(
                where, f"expected a number in {unit or 'no unit'}, got {value!r}"
            ) from exc
        if not np.isfinite(number) or (positive and number <= 0):
            raise self.error(
                where, f"must be {'positive' if positive else 'finite'}, got {value!r}"
            )
        return float(number)

    def choice(self, value: Any, where: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.error(where, f"must be one of {list(choices)}, got {value!r}")
        return str(value)

    def path(self, value: Any, where: str) -> Path:
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise self.error(where, f"expected a path, got {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base / path

    def lonlat(self, value: Any, where: str) -> tuple[float, float]:
        if isinstance(value, Mapping):
            keys = [k for k in (("lon", "lat"), ("ra", "dec"), ("l", "b")) if set(k) <= set(value)]
            if not keys or len(value) != 2:
                raise self.error(where, f"expected {{lon, lat}} (or ra/dec, l/b), got {value!r}")
            value = [value[keys[0][0]], value[keys[0][1]]]
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise self.error(where, f"expected [lon, lat] in deg, got {value!r}")
        return (
            self.number(value[0], f"{where}[0]", "deg", positive=False),
            self.number(value[1], f"{where}[1]", "deg", positive=False),
        )

    def edges(self, value: Any, where: str) -> tuple[float, ...]:
        spec = self.mapping(value, where, {"min", "max", "nbins", "edges"})
        if "edges" in spec:
            if set(spec) != {"edges"}:
                raise self.error(where, "give either 'edges' or 'min', 'max', 'nbins'")
            raw = spec["edges"]
            if not isinstance(raw, (list, tuple)) or len(raw) < 2:
                raise self.error(f"{where}.edges", f"expected at least 2 edges, got {raw!r}")
            edges = [self.number(e, f"{where}.edges[{i}]", "TeV") for i, e in enumerate(raw)]
        else:
            missing = sorted({"min", "max", "nbins"} - set(spec))
            if missing:
                raise self.error(where, f"missing {missing} (or give 'edges')")
            lo = self.number(spec["min"], f"{where}.min", "TeV")
            hi = self.number(spec["max"], f"{where}.max", "TeV")
            nbins = spec["nbins"]
            if not isinstance(nbins, int) or isinstance(nbins, bool) or nbins < 1:
                raise self.error(f"{where}.nbins", f"expected a positive integer, got {nbins!r}")
            edges = np.geomspace(lo, hi, nbins + 1).tolist()
        if np.any(np.diff(edges) <= 0):
            raise self.error(where, f"edges must increase, got {edges}")
        return tuple(float(e) for e in edges)

    def models(self, value: Any, where: str) -> Models:
        try:
            if isinstance(value, (str, os.PathLike)):
                path = self.path(value, where)
                if not path.exists():
                    raise self.error(where, f"model file {str(path)!r} does not exist")
                return read_models(path)
            if isinstance(value, Mapping):
                return models_from_dict(dict(value), base_path=self.base, source=where)
        except (ModelFormatError, ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, AnalysisConfigError):
                raise
            raise self.error(where, str(exc)) from exc
        raise self.error(where, f"expected a model file name or a mapping, got {value!r}")


def _observations(p: _Parser, data: Any) -> dict[str, Any]:
    obs = p.mapping(data, "observations", {"obs_ids", "cone", "target"})
    out: dict[str, Any] = {"obs_ids": None, "cone": None, "target": None}
    if obs.get("obs_ids") is not None:
        ids = obs["obs_ids"]
        if not isinstance(ids, (list, tuple)) or not ids:
            raise p.error("observations.obs_ids", f"expected a list of obs_ids, got {ids!r}")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise p.error("observations.obs_ids", f"obs_ids must be integers, got {ids!r}")
        out["obs_ids"] = tuple(ids)
    if obs.get("cone") is not None:
        cone = p.mapping(obs["cone"], "observations.cone", {"center", "frame", "radius"})
        if "center" not in cone or "radius" not in cone:
            raise p.error("observations.cone", "needs 'center' and 'radius'")
        lon, lat = p.lonlat(cone["center"], "observations.cone.center")
        frame = p.choice(cone.get("frame", "icrs"), "observations.cone.frame", ("icrs", "galactic"))
        radius = p.number(cone["radius"], "observations.cone.radius", "deg")
        out["cone"] = {"lon": lon, "lat": lat, "frame": frame, "radius": radius}
    if obs.get("target") is not None:
        out["target"] = str(obs["target"])
    return out


def _grid(p: _Parser, data: Any) -> dict[str, Any]:
    grid = p.mapping(data, "grid", {"center", "frame", "width", "binsz"})
    missing = sorted({"center", "width", "binsz"} - set(grid))
    if missing:
        raise p.error("grid", f"missing {missing}")
    width = grid["width"]
    if isinstance(width, (list, tuple)):
        if len(width) != 2:
            raise p.error("grid.width", f"expected a number or [width, height], got {width!r}")
        width = tuple(p.number(w, f"grid.width[{i}]", "deg") for i, w in enumerate(width))
    else:
        w = p.number(width, "grid.width", "deg")
        width = (w, w)
    return {
        "center": p.lonlat(grid["center"], "grid.center"),
        "frame": p.choice(grid.get("frame", "icrs"), "grid.frame", ("icrs", "galactic")),
        "width": width,
        "binsz": p.number(grid["binsz"], "grid.binsz", "deg"),
    }


def _reduction(p: _Parser, data: Any) -> dict[str, Any]:
    from gammaxr.reduce.safe_mask import SAFE_MASK_METHODS

    allowed = {"maps", "safe_mask", "offset_max", "aeff_percent", "irf_binsz", "on_error"}
    red = p.mapping(data, "reduction", allowed)
    out: dict[str, Any] = {}
    if "maps" in red:
        maps = red["maps"]
        if not isinstance(maps, (list, tuple)) or not maps:
            raise p.error("reduction.maps", f"expected a list of maps, got {maps!r}")
        for m in maps:
            p.choice(m, "reduction.maps", _MAP_NAMES)
        for need in ("counts", "background"):
            if need not in maps:
                raise p.error("reduction.maps", f"the analysis needs the {need!r} map")
        out["maps"] = tuple(maps)
    if "safe_mask" in red:
        methods = red["safe_mask"] or []
        if not isinstance(methods, (list, tuple)):
            raise p.error("reduction.safe_mask", f"expected a list of methods, got {methods!r}")
        for m in methods:
            p.choice(m, "reduction.safe_mask", tuple(SAFE_MASK_METHODS))
        out["safe_mask"] = tuple(methods)
    for key, unit in (("offset_max", "deg"), ("aeff_percent", ""), ("irf_binsz", "deg")):
        if key in red:
            out[key] = p.number(red[key], f"reduction.{key}", unit)
    if "on_error" in red:
        out["on_error"] = p.choice(red["on_error"], "reduction.on_error", ("raise", "skip"))
    return out


def _exclusion(p: _Parser, value: Any) -> str | None:
    from gammaxr.geom import parse_regions

    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = "\n".join(str(v) for v in value)
    if not isinstance(value, str):
        raise p.error("background.exclusion", f"expected DS9 region text, got {value!r}")
    try:
        regions = parse_regions(value)
    except Exception as exc:  # regions raises several types for bad text
        raise p.error("background.exclusion", f"cannot parse regions: {exc}") from exc
    if not regions:
        raise p.error("background.exclusion", f"no sky region in {value!r}")
    return value


def _background(p: _Parser, data: Any) -> dict[str, Any]:
    bkg = p.mapping(data, "background", {"method", "exclusion", "fov", "ring"})
    out: dict[str, Any] = {
        "background": p.choice(bkg.get("method", "fov"), "background.method", ("fov", "ring")),
        "exclusion": _exclusion(p, bkg.get("exclusion")),
    }
    fov = p.mapping(bkg.get("fov"), "background.fov", {"method", "fit_tilt"})
    if "method" in fov:
        out["fov_method"] = p.choice(fov["method"], "background.fov.method", ("scale", "fit"))
    if "fit_tilt" in fov:
        out["fov_fit_tilt"] = bool(fov["fit_tilt"])
    ring = p.mapping(bkg.get("ring"), "background.ring", {"r_in", "width"})
    if out["background"] == "ring" and bkg.get("ring") is None:
        raise p.error("background.ring", "method 'ring' needs ring: {r_in: ..., width: ...}")
    for key in ("r_in", "width"):
        if key in ring:
            out[f"ring_{key}"] = p.number(ring[key], f"background.ring.{key}", "deg")
    return out


def _fit(p: _Parser, data: Any) -> dict[str, Any]:
    if data is None:
        return {"models": None}
    fit = p.mapping(data, "fit", {"models", "background_model", "convention"})
    if "models" not in fit:
        raise p.error("fit", "needs 'models' (a Gammapy model YAML file name or mapping)")
    out: dict[str, Any] = {"models": p.models(fit["models"], "fit.models")}
    if not out["models"].sky_models:
        raise p.error("fit.models", "no sky model to fit")
    if "background_model" in fit:
        out["background_model"] = bool(fit["background_model"])
    if "convention" in fit:
        out["convention"] = p.choice(fit["convention"], "fit.convention", ("gammaxr", "gammapy"))
    return out


def _estimators(p: _Parser, data: Any, models: Models | None) -> dict[str, Any]:
    """A key present (null or a mapping) turns an estimator on; absent or false: off.

    Without an ``estimators`` section: the excess map, and flux points when there are models.
    """
    if data is None:
        est: dict[str, Any] = {"excess_map": None}
        if models is not None:
            est["flux_points"] = None
    else:
        est = p.mapping(data, "estimators", {"excess_map", "flux_points"})
    out: dict[str, Any] = {"excess_map": None, "flux_points": None}
    if "excess_map" in est and est["excess_map"] is not False:
        em = p.mapping(est["excess_map"], "estimators.excess_map", {"correlation_radius"})
        radius = p.number(
            em.get("correlation_radius", 0.1), "estimators.excess_map.correlation_radius", "deg"
        )
        out["excess_map"] = {"correlation_radius": radius}
    if "flux_points" in est and est["flux_points"] is not False:
        if models is None:
            raise p.error("estimators.flux_points", "flux points need fit models (fit.models)")
        fp = p.mapping(est["flux_points"], "estimators.flux_points", {"source", "energy_edges"})
        names = [m.name for m in models.sky_models]
        source = fp.get("source") or names[0]
        if source not in names:
            raise p.error(
                "estimators.flux_points.source", f"{source!r} is not a sky model; models: {names}"
            )
        edges = fp.get("energy_edges")
        if edges is not None:
            edges = list(p.edges({"edges": edges}, "estimators.flux_points.energy_edges"))
        out["flux_points"] = {"source": source, "energy_edges": edges}
    return out


def _compute(p: _Parser, data: Any) -> dict[str, Any]:
    comp = p.mapping(data, "compute", {"scheduler", "num_workers"})
    out: dict[str, Any] = {}
    if "scheduler" in comp:
        out["scheduler"] = p.choice(
            comp["scheduler"], "compute.scheduler", ("threads", "processes", "synchronous")
        )
    if comp.get("num_workers") is not None:
        n = comp["num_workers"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise p.error("compute.num_workers", f"expected a positive integer, got {n!r}")
        out["num_workers"] = n
    return out


def parse_analysis_config(
    data: Mapping[str, Any], base_path: str | os.PathLike | None = None, source: str = ""
) -> AnalysisConfig:
    """Validate a description mapping (the parsed YAML) into an :class:`AnalysisConfig`.

    Parameters
    ----------
    data : mapping
        The description (module docstring).
    base_path : str or os.PathLike, optional
        Directory of relative paths (default the current directory).
    source : str
        Name of the file or text, used in error messages.

    Returns
    -------
    AnalysisConfig

    Raises
    ------
    AnalysisConfigError
        Naming the source and the entry at fault.
    """
    p = _Parser(source, Path(base_path) if base_path is not None else Path.cwd())
    top = p.mapping(data, "description", _SECTIONS)
    for key in ("datastore", "grid", "axes"):
        if key not in top:
            raise p.error(key, "missing (every description needs datastore, grid and axes)")
    axes = p.mapping(top["axes"], "axes", {"energy", "energy_true"})
    for key in ("energy", "energy_true"):
        if key not in axes:
            raise p.error(f"axes.{key}", "missing")
    kwargs: dict[str, Any] = {
        "datastore": p.path(top["datastore"], "datastore"),
        "energy_edges": p.edges(axes["energy"], "axes.energy"),
        "energy_true_edges": p.edges(axes["energy_true"], "axes.energy_true"),
        "source": source,
        "raw": copy.deepcopy(dict(data)),
    }
    if top.get("name") is not None:
        name = str(top["name"])
        if not name or "." in name:
            raise p.error("name", f"must be a non-empty name without '.', got {name!r}")
        kwargs["name"] = name
    if top.get("output") is not None:
        kwargs["output"] = p.path(top["output"], "output")
    kwargs.update(_observations(p, top.get("observations")))
    kwargs.update(_grid(p, top["grid"]))
    kwargs.update(_reduction(p, top.get("reduction")))
    kwargs.update(_background(p, top.get("background")))
    kwargs.update(_fit(p, top.get("fit")))
    kwargs.update(_estimators(p, top.get("estimators"), kwargs["models"]))
    if "plots" in top:
        if not isinstance(top["plots"], bool):
            raise p.error("plots", f"expected true or false, got {top['plots']!r}")
        kwargs["plots"] = top["plots"]
    kwargs.update(_compute(p, top.get("compute")))
    if kwargs["background"] == "fov" and "background" not in kwargs.get("maps", _MAP_NAMES):
        raise p.error("reduction.maps", "FoV background needs the 'background' map")
    return AnalysisConfig(**kwargs)


def read_analysis_config(path: str | os.PathLike) -> AnalysisConfig:
    """Read and validate a YAML description file; relative paths are relative to it.

    Parameters
    ----------
    path : str or os.PathLike
        The YAML file.

    Returns
    -------
    AnalysisConfig

    Raises
    ------
    AnalysisConfigError
        If the file is missing, is not YAML, or describes something invalid.
    """
    data, path = read_yaml_mapping(path, AnalysisConfigError, "no such configuration file")
    return parse_analysis_config(data, base_path=path.resolve().parent, source=str(path))
