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
an :class:`AnalysisConfigError` naming the file and the entry at fault; every problem of a file
is listed at once. The schema is :class:`gammaxr.analysis.schema.AnalysisDescription` (pydantic);
:func:`analysis_json_schema` (or ``gammaxr schema analysis``) exports it for editors.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gammaxr.analysis.schema import MAP_NAMES, AnalysisDescription, Estimators, RingOptions
from gammaxr.io.config_schema import description_json_schema, raise_problems, validate_description
from gammaxr.io.yaml_files import read_yaml_mapping
from gammaxr.models import Models

__all__ = [
    "AnalysisConfig",
    "AnalysisConfigError",
    "analysis_json_schema",
    "parse_analysis_config",
    "read_analysis_config",
]

_MAP_NAMES = MAP_NAMES


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
        Dask scheduler (``"threads"``, ``"processes"``, ``"synchronous"``) or the address of
        a running ``dask.distributed`` scheduler (``"tcp://host:port"``).
    num_workers : int or None
        Dask workers.
    source : str
        Where the description came from (for messages).
    raw : dict
        The description as given (relative paths kept), for provenance.
    sections : AnalysisDescription or None
        The validated description, section by section (``config.sections.compute``): the
        place where a newly added section's options are read.
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
    sections: AnalysisDescription | None = field(default=None, repr=False, compare=False)

    def to_yaml(self) -> str:
        """The description as given, as YAML (for provenance in the output directory)."""
        return yaml.safe_dump(self.raw, sort_keys=False)


def _estimators(
    desc: AnalysisDescription, models: Models | None, problems: list[str]
) -> dict[str, Any]:
    """Estimator options; without an ``estimators`` section: the excess map, and flux points
    when there are models."""
    est = desc.estimators
    if est is None:
        est = Estimators(excess_map={}, flux_points={} if models is not None else False)
    out: dict[str, Any] = {"excess_map": None, "flux_points": None}
    if est.excess_map is not False:
        out["excess_map"] = {
            "correlation_radius": est.excess_map.correlation_radius,
            "energy_edges": est.excess_map.energy_edges,
        }
    if est.flux_points is not False:
        if models is None:
            problems.append("estimators.flux_points: flux points need fit models (fit.models)")
            return out
        names = [m.name for m in models.sky_models]
        source = est.flux_points.source or names[0]
        if source not in names:
            problems.append(
                f"estimators.flux_points.source: {source!r} is not a sky model; models: {names}"
            )
        edges = est.flux_points.energy_edges
        out["flux_points"] = {"source": source, "energy_edges": edges}
    return out


def _path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def parse_analysis_config(
    data: Mapping[str, Any], base_path: str | os.PathLike | None = None, source: str = ""
) -> AnalysisConfig:
    """Validate a description mapping (the parsed YAML) into an :class:`AnalysisConfig`.

    Parameters
    ----------
    data : mapping
        The description (module docstring; schema :class:`~gammaxr.analysis.schema.AnalysisDescription`).
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
        Listing every problem of the description, each with its path (``grid.binsz: ...``).
    """
    base = Path(base_path) if base_path is not None else Path.cwd()
    desc = validate_description(
        AnalysisDescription, data, source, AnalysisConfigError, context={"base": base}
    )
    problems: list[str] = []
    models = desc.fit.models if desc.fit is not None else None
    estimators = _estimators(desc, models, problems)
    raise_problems(problems, source, AnalysisConfigError)
    obs, grid, red, bkg = desc.observations, desc.grid, desc.reduction, desc.background
    cone = None
    if obs.cone is not None:
        lon, lat = obs.cone.center
        cone = {"lon": lon, "lat": lat, "frame": obs.cone.frame, "radius": obs.cone.radius}
    ring = bkg.ring or RingOptions()
    kwargs: dict[str, Any] = {
        "datastore": _path(desc.datastore, base),
        "output": None if desc.output is None else _path(desc.output, base),
        "obs_ids": None if obs.obs_ids is None else tuple(obs.obs_ids),
        "cone": cone,
        "target": obs.target,
        "center": tuple(grid.center),
        "frame": grid.frame,
        "width": tuple(grid.width),
        "binsz": grid.binsz,
        "energy_edges": desc.axes.energy.values(),
        "energy_true_edges": desc.axes.energy_true.values(),
        "maps": tuple(red.maps),
        "safe_mask": tuple(red.safe_mask),
        "offset_max": red.offset_max,
        "aeff_percent": red.aeff_percent,
        "irf_binsz": red.irf_binsz,
        "on_error": red.on_error,
        "background": bkg.method,
        "exclusion": bkg.exclusion,
        "fov_method": bkg.fov.method,
        "fov_fit_tilt": bkg.fov.fit_tilt,
        "ring_r_in": ring.r_in,
        "ring_width": ring.width,
        "models": models,
        "plots": desc.plots,
        "scheduler": desc.compute.scheduler,
        "num_workers": desc.compute.num_workers,
        "source": source,
        "raw": copy.deepcopy(dict(data)),
        "sections": desc,
        **estimators,
    }
    if desc.name is not None:
        kwargs["name"] = desc.name
    if desc.fit is not None:
        kwargs["background_model"] = desc.fit.background_model
        kwargs["convention"] = desc.fit.convention
    return AnalysisConfig(**kwargs)


def read_analysis_config(path: str | os.PathLike) -> AnalysisConfig:
    """Read and validate a YAML description file; relative paths are relative to it.

    The :class:`AnalysisConfig` of the YAML file at ``path``, as :func:`parse_analysis_config`
    makes it; an :class:`AnalysisConfigError` if the file is missing, is not YAML, or
    describes something invalid.
    """
    data, path = read_yaml_mapping(path, AnalysisConfigError, "no such configuration file")
    return parse_analysis_config(data, base_path=path.resolve().parent, source=str(path))


def analysis_json_schema() -> str:
    """The JSON schema of the analysis description (for editors' YAML completion)."""
    return description_json_schema(AnalysisDescription)
