"""The schema of the analysis description: one pydantic :class:`Section` per YAML section.

:class:`AnalysisDescription` is the top level; :func:`gammaxr.analysis.config.parse_analysis_config`
validates a description with it and flattens it into an
:class:`~gammaxr.analysis.config.AnalysisConfig` (which also keeps the validated sections as
``config.sections``). To add a section ``foo``: write ``class FooSection(Section)`` with its
keys (units with :func:`~gammaxr.io.config_schema.unit_float`) and add
``foo: FooSection = FooSection()`` to :class:`AnalysisDescription`; the JSON schema, unknown-key
suggestions and error paths follow.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gammaxr.io.config_schema import Section, positive_int, unit_float

__all__ = [
    "AnalysisDescription",
    "Axes",
    "Background",
    "Compute",
    "Cone",
    "Datasets",
    "EnergyRange",
    "EnergyAxis",
    "Estimators",
    "ExcessMapOptions",
    "Fit",
    "FluxPointsOptions",
    "FovOptions",
    "Grid",
    "LightCurveOptions",
    "Observations",
    "Reduction",
    "RingOptions",
    "TimeRange",
]

MAP_NAMES = ("counts", "exposure", "background", "psf", "edisp")

Deg = unit_float("deg")
PositiveDeg = unit_float("deg", minimum=0)
PositiveTeV = unit_float("TeV", minimum=0)
Frame = Literal["icrs", "galactic"]


def _lonlat(value: Any) -> Any:
    if isinstance(value, Mapping):
        pairs = [k for k in (("lon", "lat"), ("ra", "dec"), ("l", "b")) if set(k) <= set(value)]
        if not pairs or len(value) != 2:
            raise ValueError(f"expected {{lon, lat}} (or ra/dec, l/b), got {dict(value)!r}")
        return [value[pairs[0][0]], value[pairs[0][1]]]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"expected [lon, lat] in deg, got {value!r}")
    return value


def _latitude_in_range(value: tuple[float, float]) -> tuple[float, float]:
    if not -90 <= value[1] <= 90:
        raise ValueError(f"latitude must be in [-90, 90] deg, got {value[1]}")
    return value


#: A sky position ``[lon, lat]`` (or ``{ra, dec}``, ``{lon, lat}``, ``{l, b}``), deg.
LonLat = Annotated[tuple[Deg, Deg], BeforeValidator(_lonlat), AfterValidator(_latitude_in_range)]


def _square(value: Any) -> Any:
    return value if isinstance(value, (list, tuple)) else (value, value)


class Cone(Section):
    """Runs pointed within ``radius`` (deg) of ``center``."""

    center: LonLat
    frame: Frame = "icrs"
    radius: PositiveDeg


def _time(value: Any) -> Any:
    from astropy.time import Time

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)  # MET seconds
    try:
        Time(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"expected a time (ISO string, e.g. '2004-12-04T22:00:00') or MET s: {exc}"
        ) from exc
    return str(value)


#: A time: an ISO / astropy-readable string (UTC), or seconds of mission elapsed time.
TimeValue = Annotated[float | str, AfterValidator(_time)]


class TimeRange(Section):
    """Runs by time (Gammapy's ``observations.obs_time``): ``how: overlap`` (default, the
    run overlaps ``[start, stop)``) or ``within``."""

    start: TimeValue | None = None
    stop: TimeValue | None = None
    how: Literal["overlap", "within"] = "overlap"


class Observations(Section):
    """Which runs of the store: explicit obs_ids, a cone, a target name (all optional)."""

    obs_ids: list[StrictInt] | None = None
    cone: Cone | None = None
    target: str | None = None
    time: TimeRange | None = None
    required_irf: list[Literal["aeff", "edisp", "psf", "bkg"]] | None = None

    @field_validator("obs_ids")
    @classmethod
    def _not_empty(cls, ids: list[int] | None) -> list[int] | None:
        if ids is not None and not ids:
            raise ValueError("expected a non-empty list of obs_ids")
        return ids


class Grid(Section):
    """The shared sky grid: centre (deg), frame, width (deg, or [width, height]), pixel size."""

    center: LonLat
    frame: Frame = "icrs"
    width: Annotated[tuple[PositiveDeg, PositiveDeg], BeforeValidator(_square)]
    binsz: PositiveDeg


class EnergyAxis(Section):
    """Log-spaced ``min``, ``max``, ``nbins`` (TeV), or explicit ``edges`` (TeV)."""

    min: PositiveTeV | None = None
    max: PositiveTeV | None = None
    nbins: positive_int | None = None
    edges: list[PositiveTeV] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> EnergyAxis:
        given = {k for k in ("min", "max", "nbins") if getattr(self, k) is not None}
        if self.edges is not None:
            if given:
                raise ValueError("give either 'edges' or 'min', 'max', 'nbins'")
            if len(self.edges) < 2:
                raise ValueError(f"expected at least 2 edges, got {self.edges}")
        elif given != {"min", "max", "nbins"}:
            raise ValueError(f"missing {sorted({'min', 'max', 'nbins'} - given)} (or give 'edges')")
        edges = self.values()
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError(f"edges must increase, got {list(edges)}")
        return self

    def values(self) -> tuple[float, ...]:
        """The bin edges, TeV."""
        import numpy as np

        if self.edges is not None:
            return tuple(float(e) for e in self.edges)
        return tuple(np.geomspace(self.min, self.max, self.nbins + 1).tolist())


class Axes(Section):
    """Reco (``energy``) and true (``energy_true``) energy axes, named as the dataset dims."""

    energy: EnergyAxis
    energy_true: EnergyAxis


def _safe_mask_methods(methods: list[str] | None) -> list[str]:
    from gammaxr.reduce.safe_mask import SAFE_MASK_METHODS

    for method in methods or []:
        if method not in SAFE_MASK_METHODS:
            raise ValueError(f"must be one of {list(SAFE_MASK_METHODS)}, got {method!r}")
    return list(methods or [])


def _maps(maps: list[str]) -> list[str]:
    if not maps:
        raise ValueError("expected a non-empty list of maps")
    for need in ("counts", "background"):
        if need not in maps:
            raise ValueError(f"the analysis needs the {need!r} map")
    return maps


class Reduction(Section):
    """Maps to make, safe mask, offset cut (deg), aeff percent, IRF map pixel (deg), on_error."""

    maps: Annotated[
        list[Literal["counts", "exposure", "background", "psf", "edisp"]], AfterValidator(_maps)
    ] = Field(default_factory=lambda: list(MAP_NAMES))
    safe_mask: Annotated[list[str] | None, AfterValidator(_safe_mask_methods)] = Field(
        default_factory=lambda: ["offset-max", "aeff-max"]
    )
    offset_max: PositiveDeg = 2.5
    aeff_percent: unit_float("", minimum=0) = 10.0
    irf_binsz: PositiveDeg = 0.2
    on_error: Literal["raise", "skip"] = "raise"
    safe_mask_irfs: Literal["DL4", "DL3"] = "DL4"


class FovOptions(Section):
    """FoV background normalisation: ``scale`` or ``fit`` (``fit_tilt`` frees a tilt)."""

    method: Literal["scale", "fit"] = "scale"
    fit_tilt: StrictBool = False


class RingOptions(Section):
    """Ring background radii, deg."""

    r_in: PositiveDeg = 0.5
    width: PositiveDeg = 0.3


def _exclusion(value: str | list[str] | None) -> str | None:
    from gammaxr.geom import parse_regions

    if value is None:
        return None
    text = "\n".join(value) if isinstance(value, list) else value
    try:
        regions = parse_regions(text)
    except Exception as exc:  # regions raises several types for bad text
        raise ValueError(f"cannot parse regions: {exc}") from exc
    if not regions:
        raise ValueError(f"no sky region in {text!r}")
    return text


class Background(Section):
    """Background method (``fov`` or ``ring``), exclusion regions (DS9 text), options."""

    method: Literal["fov", "ring", "reflected"] = "fov"
    exclusion: Annotated[str | list[str] | None, AfterValidator(_exclusion)] = None
    fov: FovOptions = FovOptions()
    ring: RingOptions | None = None

    @model_validator(mode="after")
    def _ring_given(self) -> Background:
        if self.method == "ring" and self.ring is None:
            raise ValueError("method 'ring' needs ring: {r_in: ..., width: ...}")
        return self


class EnergyRange(Section):
    """Reco-energy range (TeV): bins entirely inside it are fitted (``mask_fit``)."""

    min: PositiveTeV | None = None
    max: PositiveTeV | None = None


class Fit(Section):
    """Models to fit (a Gammapy model YAML file name, or the mapping inline)."""

    models: str | dict[str, Any]
    background_model: StrictBool = True
    convention: Literal["gammaxr", "gammapy"] = "gammaxr"
    energy_range: EnergyRange | None = None

    @field_validator("models", mode="after")
    @classmethod
    def _read_models(cls, value: str | dict, info: ValidationInfo) -> Any:
        from gammaxr.models import ModelFormatError, models_from_dict, read_models

        base = Path((info.context or {}).get("base", "."))
        try:
            if isinstance(value, str):
                path = Path(value).expanduser()
                path = path if path.is_absolute() else base / path
                if not path.exists():
                    raise ValueError(f"model file {str(path)!r} does not exist")
                models = read_models(path)
            else:
                models = models_from_dict(dict(value), base_path=base)
        except (ModelFormatError, TypeError, KeyError) as exc:
            raise ValueError(str(exc)) from exc
        if not models.sky_models:
            raise ValueError("no sky model to fit")
        return models


def _on(value: Any) -> Any:
    """``null`` turns an estimator on with its defaults."""
    return {} if value is None else value


class ExcessMapOptions(Section):
    """Excess / significance map; ``correlation_radius`` in deg; ``energy_edges`` (TeV, on
    the reco axis) for one map per band (default one map over the safe energy range)."""

    correlation_radius: PositiveDeg = 0.1
    energy_edges: list[PositiveTeV] | None = None


class FluxPointsOptions(Section):
    """Flux points of ``source`` (default the first sky model) in ``energy_edges`` (TeV)."""

    source: str | None = None
    energy_edges: list[PositiveTeV] | None = None

    @field_validator("energy_edges")
    @classmethod
    def _increasing(cls, edges: list[float] | None) -> list[float] | None:
        if edges is not None:
            if len(edges) < 2:
                raise ValueError(f"expected at least 2 edges, got {edges}")
            if any(b <= a for a, b in itertools.pairwise(edges)):
                raise ValueError(f"edges must increase, got {edges}")
        return edges


class LightCurveOptions(Section):
    """Light curve of ``source`` (default the first sky model): ``time_intervals`` as
    ``[[start, stop], ...]`` (ISO strings or MET s; default one per run) and ``energy_edges``
    (TeV; default the whole safe range)."""

    source: str | None = None
    time_intervals: list[tuple[TimeValue, TimeValue]] | None = None
    energy_edges: list[PositiveTeV] | None = None


class Estimators(Section):
    """A key present (null or a mapping) turns an estimator on; absent or ``false``: off."""

    excess_map: Annotated[ExcessMapOptions | Literal[False], BeforeValidator(_on)] = False
    flux_points: Annotated[FluxPointsOptions | Literal[False], BeforeValidator(_on)] = False
    light_curve: Annotated[LightCurveOptions | Literal[False], BeforeValidator(_on)] = False


def _scheduler_address(value: str) -> str:
    if not re.fullmatch(r"(tcp|tls|ucx|ws|wss)://[^\s:/]+:\d+", value):
        raise ValueError(
            "expected 'threads', 'processes', 'synchronous' or the address of a dask "
            f"scheduler such as 'tcp://host:8786', got {value!r}"
        )
    return value


class Compute(Section):
    """Dask scheduler of the reduction (a local one, or the address ``tcp://host:port`` of a
    running ``dask.distributed`` scheduler) and its number of workers."""

    scheduler: (
        Literal["threads", "processes", "synchronous"]
        | Annotated[str, AfterValidator(_scheduler_address)]
    ) = "threads"
    num_workers: positive_int | None = None


def _name(value: str | None) -> str | None:
    if value is not None and (not value or "." in value):
        raise ValueError(f"must be a non-empty name without '.', got {value!r}")
    return value


class Datasets(Section):
    """``type: 3d`` (map datasets on ``grid``) or ``1d`` (on/off spectra in ``on_region``,
    reflected-region background, ``grid`` the exclusion-mask grid); ``stack``: fit the stacked
    spectrum (default) or all runs jointly."""

    type: Literal["3d", "1d"] = "3d"
    on_region: Annotated[str | None, AfterValidator(_exclusion)] = None
    containment_correction: StrictBool = True
    stack: StrictBool = True

    @model_validator(mode="after")
    def _on_region(self) -> Datasets:
        if self.type == "1d" and self.on_region is None:
            raise ValueError(
                "type '1d' needs on_region (a DS9 circle, e.g. 'icrs; circle(83.63, 22.01, 0.11)')"
            )
        return self


class AnalysisDescription(Section):
    """A whole analysis description (``examples/demo.yaml``)."""

    name: Annotated[str | None, AfterValidator(_name)] = None
    description: str | None = None
    datastore: str
    output: str | None = None
    observations: Observations = Observations()
    datasets: Datasets = Datasets()
    grid: Grid
    axes: Axes
    reduction: Reduction = Reduction()
    background: Background = Background()
    fit: Fit | None = None
    estimators: Estimators | None = None
    plots: StrictBool = True
    compute: Compute = Compute()

    @field_validator(
        "observations", "reduction", "background", "compute", "datasets", mode="before"
    )
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _background_fits_the_datasets(self) -> AnalysisDescription:
        one_d = self.datasets.type == "1d"
        if one_d and self.background.method != "reflected":
            raise ValueError("datasets.type '1d' needs background.method: reflected")
        if not one_d and self.background.method == "reflected":
            raise ValueError("background.method 'reflected' needs datasets.type: 1d")
        return self
