"""Read and write Gammapy's model YAML format.

The file holds ``components:``, a list of models::

    components:
    -   name: crab
        type: SkyModel
        spectral:
            type: PowerLawSpectralModel
            parameters:
            -   {name: index, value: 2.6}
            -   {name: amplitude, value: 4.5e-11, unit: cm-2 s-1 TeV-1}
        spatial:
            type: PointSpatialModel
            frame: icrs
            parameters: [...]
    -   type: FoVBackgroundModel
        datasets_names: [crab-stacked]
        spectral: {type: PowerLawNormSpectralModel, parameters: [...]}

As in Gammapy, a parameter entry may omit any field except ``name``; omitted fields take
the model class default (our defaults are Gammapy's), ``unit`` is omitted for dimensionless
parameters and, unless ``full_output``, ``min``/``max``/``error``/``frozen`` are written only
when they differ from the default. Type names are Gammapy's class names; Gammapy's short
tags (``pl``, ``gauss``...) and gammaxr class names are accepted on reading. Parameters in
other compatible units are converted to the canonical ones. Parameters sharing a ``link``
label are linked. A parameter's ``prior`` entry (Gammapy's layout) is read and written
(:mod:`gammaxr.models.priors`). ``metadata`` is ignored on reading. The ``covariance:`` entry
names Gammapy's covariance file next to the YAML file (:mod:`gammaxr.models.covariance`):
:func:`read_models` reads it into :attr:`Models.covariance` and
``write_models(..., covariance=True)`` writes it.
Template spatial models live in FITS files next to the YAML file (relative paths are
relative to the YAML file's directory).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import spatial, spatial_extra, spectral, spectral_catalog, temporal
from .compound import CompoundSpectral
from .ebl import EBLAbsorptionNorm
from .parameters import Model, Parameter, ParameterUnitError
from .priors import PriorFormatError, prior_from_dict
from .sky import FoVBackgroundModel, Models, SkyModel
from .spatial import PointSpatialModel, SpatialModel
from .spectral import PowerLawNorm, TemplateSpectral
from .spectral_catalog import PiecewiseNorm
from .template import TemplateSpatialModel, read_template_fits, write_template_fits
from .temporal import LightCurveTemplateTemporalModel, TemporalModel

__all__ = [
    "SPATIAL_MODELS",
    "SPECTRAL_MODELS",
    "TEMPORAL_MODELS",
    "ModelFormatError",
    "UnknownModelTypeError",
    "models_from_dict",
    "models_from_yaml",
    "models_to_dict",
    "models_to_yaml",
    "read_models",
    "write_models",
]


class ModelFormatError(ValueError):
    """A model file or dictionary does not follow the model YAML format."""


class UnknownModelTypeError(ModelFormatError):
    """A model ``type`` that gammaxr does not implement."""


_SPECTRAL_CLASSES = (
    spectral.PowerLaw,
    spectral.PowerLaw2,
    spectral.LogParabola,
    spectral.ExpCutoffPowerLaw,
    spectral.BrokenPowerLaw,
    TemplateSpectral,
    PowerLawNorm,
    spectral_catalog.ExpCutoffPowerLaw3FGL,
    spectral_catalog.SuperExpCutoffPowerLaw4FGLDR3,
    spectral_catalog.SmoothBrokenPowerLaw,
    spectral_catalog.ConstantSpectral,
    PiecewiseNorm,
    CompoundSpectral,
    EBLAbsorptionNorm,
)
_SPATIAL_CLASSES = (
    PointSpatialModel,
    spatial.GaussianSpatialModel,
    spatial.DiskSpatialModel,
    spatial.ShellSpatialModel,
    TemplateSpatialModel,
    spatial_extra.Shell2SpatialModel,
    spatial_extra.GeneralizedGaussianSpatialModel,
)
_TEMPORAL_CLASSES = (
    temporal.ConstantTemporalModel,
    temporal.ExpDecayTemporalModel,
    temporal.GaussianTemporalModel,
    LightCurveTemplateTemporalModel,
)


def _registry(classes) -> dict[str, type]:
    out = {}
    for cls in classes:
        for key in (cls.tag, cls.short_tag, cls.__name__):
            out[key] = cls
    return out


#: Spectral model classes by Gammapy type name, Gammapy short tag and gammaxr class name.
SPECTRAL_MODELS: dict[str, type] = _registry(_SPECTRAL_CLASSES)
#: Spatial model classes by Gammapy type name, Gammapy short tag and gammaxr class name.
SPATIAL_MODELS: dict[str, type] = _registry(_SPATIAL_CLASSES)
#: Temporal model classes by Gammapy type name, Gammapy short tag and gammaxr class name.
TEMPORAL_MODELS: dict[str, type] = _registry(_TEMPORAL_CLASSES)
_SKY_TAGS = ("SkyModel", "sky-model")
_BKG_TAGS = ("FoVBackgroundModel", "fov-bkg")


# ----------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------


def _parameter_to_dict(p: Parameter, default: Parameter, full_output: bool) -> dict:
    out: dict[str, Any] = {"name": p.name, "value": float(p.value)}
    if p.unit or default.unit:
        out["unit"] = p.unit
    for key in ("error", "min", "max"):
        value, ref = getattr(p, key), getattr(default, key)
        same = value == ref or (math.isnan(value) and math.isnan(ref))
        if full_output or not same:
            out[key] = float(value)
    if full_output or p.frozen != default.frozen:
        out["frozen"] = bool(p.frozen)
    if p.link is not None:
        out["link"] = p.link
    if p.prior is not None:
        out["prior"] = p.prior.to_dict()
    return out


def _component_to_dict(model: Model, full_output: bool, template_filename: str | None) -> dict:
    if isinstance(model, CompoundSpectral):
        return {
            "type": model.tag,
            "model1": _component_to_dict(model.model1, full_output, None),
            "model2": _component_to_dict(model.model2, full_output, None),
            "operator": model.operator,
        }
    out: dict[str, Any] = {"type": model.tag}
    if isinstance(model, SpatialModel):
        out["frame"] = model.frame
    defaults = {p.name: p for p in model.default_parameters}
    out["parameters"] = [
        _parameter_to_dict(p, defaults[p.name], full_output) for p in model.parameters
    ]
    out.update(_table_fields(model, template_filename))
    return out


def _table_fields(model: Model, template_filename: str | None) -> dict:
    """Non-parameter fields of tabulated and temporal models, in Gammapy's layout."""
    out: dict[str, Any] = {}
    if isinstance(model, PiecewiseNorm):
        out["energy"] = {"data": [float(x) for x in model.energy], "unit": "TeV"}
        out["interp"] = model.interp
    if isinstance(model, EBLAbsorptionNorm):
        if model.filename is not None:
            out["filename"] = model.filename
        else:
            out["energy"] = {"data": [float(x) for x in model.energy], "unit": "TeV"}
            out["param"] = {"data": [float(x) for x in model.param], "unit": ""}
            out["values"] = {"data": model.table_values.tolist(), "unit": ""}
    if isinstance(model, LightCurveTemplateTemporalModel):
        filename = _template_filename(model, template_filename, "lc.fits")
        out.update({"filename": filename, "format": "table", "unit": ""})
    if isinstance(model, TemporalModel):
        out["scale"] = model.scale
    if isinstance(model, TemplateSpectral):
        out["energy"] = {"data": [float(x) for x in model.energy], "unit": "TeV"}
        out["values"] = {
            "data": [float(x) for x in model.table_values],
            "unit": "cm-2 s-1 TeV-1",
        }
    if isinstance(model, TemplateSpatialModel):
        filename = _template_filename(model, template_filename, "x.fits")
        # the stored map is already normalised surface brightness in sr-1
        out.update({"filename": filename, "normalize": False, "unit": "sr-1"})
    return out


def _template_filename(model: Model, template_filename: str | None, example: str) -> str:
    """The file name a template model is written with: the one given, else its own."""
    filename = template_filename or model.filename
    if filename is None:
        raise ModelFormatError(
            f"a {type(model).__name__} needs a filename to be serialised: use "
            f"write_models(...) (which writes it) or model.with_filename({example!r})"
        )
    return str(filename)


def models_to_dict(
    models: Models | SkyModel | FoVBackgroundModel,
    full_output: bool = False,
    template_filenames: dict[str, str] | None = None,
) -> dict:
    """Gammapy-compatible dictionary ``{"components": [...]}``.

    Parameters
    ----------
    models : Models, SkyModel or FoVBackgroundModel
        What to serialise.
    full_output : bool
        Write every parameter field, not only those differing from the defaults.
    template_filenames : dict, optional
        ``{model name: filename}`` for spatial templates (overrides their ``filename``).
    """
    models = Models(models) if not isinstance(models, Models) else models
    template_filenames = template_filenames or {}
    components = []
    for m in models:
        if isinstance(m, FoVBackgroundModel):
            components.append(
                {
                    "type": FoVBackgroundModel.tag,
                    "datasets_names": [m.dataset_name],
                    "spectral": _component_to_dict(m.spectral, full_output, None),
                }
            )
            continue
        entry: dict[str, Any] = {"name": m.name, "type": SkyModel.tag}
        if m.datasets_names is not None:
            entry["datasets_names"] = list(m.datasets_names)
        entry["spectral"] = _component_to_dict(m.spectral, full_output, None)
        if m.spatial is not None:
            entry["spatial"] = _component_to_dict(
                m.spatial, full_output, template_filenames.get(m.name)
            )
        if m.temporal is not None:
            entry["temporal"] = _component_to_dict(
                m.temporal, full_output, template_filenames.get(f"{m.name}.temporal")
            )
        components.append(entry)
    return {"components": components}


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, indent=4)


def models_to_yaml(
    models: Models | SkyModel | FoVBackgroundModel, full_output: bool = False
) -> str:
    """Gammapy-compatible YAML text (templates must already have a ``filename``)."""
    return _dump(models_to_dict(models, full_output=full_output))


def write_models(
    models: Models | SkyModel | FoVBackgroundModel,
    path: str | Path,
    overwrite: bool = False,
    full_output: bool = False,
    covariance: bool = False,
) -> None:
    """Write models to a YAML file that Gammapy's ``Models.read`` reads.

    Spatial templates are written as FITS CAR images next to the YAML file, to their
    ``filename`` (relative to the YAML directory) or ``{yaml stem}_{model name}.fits``.

    Parameters
    ----------
    models : Models, SkyModel or FoVBackgroundModel
        What to write.
    path : str or Path
        YAML file.
    overwrite : bool
        Replace existing YAML and template files.
    full_output : bool
        Write every parameter field.
    covariance : bool
        Also write ``{yaml stem}_covariance.dat`` (the models' covariance, else the one
        implied by the parameter errors) and name it under ``covariance:``, as Gammapy.
    """
    path = Path(path)
    models = Models(models) if not isinstance(models, Models) else models
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    filenames = {}
    for m in models.sky_models:
        if isinstance(m.spatial, TemplateSpatialModel):
            name = m.spatial.filename or f"{path.stem}_{m.name}.fits"
            target = Path(name) if Path(name).is_absolute() else path.parent / name
            write_template_fits(m.spatial.map, target, overwrite=overwrite)
            filenames[m.name] = name
        if isinstance(m.temporal, LightCurveTemplateTemporalModel):
            name = m.temporal.filename or f"{path.stem}_{m.name}_lc.fits"
            target = Path(name) if Path(name).is_absolute() else path.parent / name
            if not (target.exists() and _same_light_curve(target, m.temporal)):
                m.temporal.write(target, overwrite=overwrite)
            filenames[f"{m.name}.temporal"] = name
    data = models_to_dict(models, full_output=full_output, template_filenames=filenames)
    if covariance:
        from .covariance import covariance_filename, write_covariance

        name = covariance_filename(path)
        write_covariance(path.parent / name, models, models.covariance)
        data["covariance"] = name
    path.write_text(_dump(data))


# ----------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------

_PARAM_KEYS = {"name", "value", "unit", "error", "min", "max", "frozen", "link", "prior"}
_IGNORED_PARAM_KEYS = {"interp", "scale_method", "scale_transform", "scale", "factor", "is_norm"}


def _parameters_from_list(
    cls: type, entries: Any, where: str, defaults: Any = None
) -> dict[str, Parameter]:
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ModelFormatError(f"{where}: 'parameters' must be a list")
    defaults = {p.name: p for p in (cls.default_parameters if defaults is None else defaults)}
    out = {}
    for entry in entries:
        if not isinstance(entry, dict) or "name" not in entry:
            raise ModelFormatError(f"{where}: each parameter needs a 'name', got {entry!r}")
        name = entry["name"]
        if name not in defaults:
            raise ModelFormatError(
                f"{where}: {cls.tag} has no parameter {name!r}; valid names are {list(defaults)}"
            )
        unknown = set(entry) - _PARAM_KEYS - _IGNORED_PARAM_KEYS
        if unknown:
            raise ModelFormatError(
                f"{where}: parameter {name!r} has unknown keys {sorted(unknown)}"
            )
        d = defaults[name]
        try:
            # fields given in the file are in the file's unit; omitted ones are defaults
            unit = entry.get("unit", d.unit) or ""
            prior = entry.get("prior")
            if prior is not None:
                prior = prior_from_dict(prior, unit, f"{where}: parameter {name!r}")
            given = Parameter(
                name=name,
                value=entry.get("value", math.nan),
                unit=unit,
                min=_nan(entry.get("min")),
                max=_nan(entry.get("max")),
                error=entry.get("error", 0.0),
                prior=prior,
            ).to_unit(d.unit)
            out[name] = d.replace(
                value=given.value if "value" in entry else d.value,
                min=given.min if "min" in entry else d.min,
                max=given.max if "max" in entry else d.max,
                error=given.error if "error" in entry else d.error,
                frozen=bool(entry.get("frozen", d.frozen)),
                link=entry.get("link"),
                prior=given.prior,
            )
        except (ParameterUnitError, PriorFormatError, TypeError) as exc:
            raise ModelFormatError(f"{where}: {exc}") from exc
    missing = set(defaults) - set(out)
    if missing and cls not in (TemplateSpectral, TemplateSpatialModel):
        warnings.warn(
            f"{where}: parameter(s) {sorted(missing)} not given, using defaults", stacklevel=4
        )
    return out


def _nan(x: Any) -> float:
    return math.nan if x is None else x


def _lookup(registry: dict[str, type], data: Any, kind: str, where: str) -> type:
    if not isinstance(data, dict) or "type" not in data:
        raise ModelFormatError(f"{where}: the {kind} model needs a 'type'")
    cls = registry.get(data["type"])
    if cls is None:
        supported = sorted({c.tag for c in registry.values()})
        raise UnknownModelTypeError(
            f"{where}: unknown {kind} model type {data['type']!r}; supported: {supported}"
        )
    return cls


def _quantity_list(data: Any, key: str, unit: str, where: str) -> np.ndarray:
    import astropy.units as u

    entry = data.get(key)
    if not isinstance(entry, dict) or "data" not in entry:
        raise ModelFormatError(f"{where}: the model needs '{key}: {{data, unit}}'")
    try:
        return u.Quantity(entry["data"], entry.get("unit", unit)).to_value(unit)
    except (u.UnitConversionError, ValueError) as exc:
        raise ModelFormatError(f"{where}: {key}: {exc}") from exc


def _spectral_from_dict(data: Any, where: str, base_path: Path | None = None) -> Any:
    cls = _lookup(SPECTRAL_MODELS, data, "spectral", where)
    if cls is CompoundSpectral:
        for key in ("model1", "model2", "operator"):
            if key not in data:
                raise ModelFormatError(f"{where}: CompoundSpectralModel needs '{key}'")
        try:
            return CompoundSpectral(
                _spectral_from_dict(data["model1"], f"{where} model1", base_path),
                _spectral_from_dict(data["model2"], f"{where} model2", base_path),
                data["operator"],
            )
        except ValueError as exc:
            raise ModelFormatError(f"{where}: {exc}") from exc
    if cls in (PiecewiseNorm, EBLAbsorptionNorm):
        return _tabulated_spectral(cls, data, where, base_path)
    params = _parameters_from_list(cls, data.get("parameters"), f"{where} spectral")
    if cls is TemplateSpectral:
        energy = _quantity_list(data, "energy", "TeV", where)
        values = _quantity_list(data, "values", "cm-2 s-1 TeV-1", where)
        return TemplateSpectral(energy, values, **params)
    return cls(**params)


def _resolve(filename: str, base_path: Path | None, where: str) -> Path:
    file = Path(filename)
    if not file.is_absolute() and base_path is not None:
        file = base_path / file
    if not file.exists():
        raise ModelFormatError(f"{where}: file {file} not found")
    return file


def _tabulated_spectral(cls: type, data: dict, where: str, base_path: Path | None) -> Any:
    """PiecewiseNorm or EBLAbsorptionNorm from their Gammapy dictionary."""
    try:
        if cls is PiecewiseNorm:
            energy = _quantity_list(data, "energy", "TeV", where)
            base = PiecewiseNorm(energy, interp=data.get("interp", "log"))
        elif "filename" in data:
            base = EBLAbsorptionNorm.read(_resolve(data["filename"], base_path, where))
            base = base.with_filename(data["filename"])
        else:
            base = EBLAbsorptionNorm(
                _quantity_list(data, "energy", "TeV", where),
                _quantity_list(data, "param", "", where),
                _quantity_list(data, "values", "", where),
            )
    except (ValueError, OSError) as exc:
        if isinstance(exc, ModelFormatError):
            raise
        raise ModelFormatError(f"{where}: {exc}") from exc
    params = _parameters_from_list(
        cls, data.get("parameters"), f"{where} spectral", defaults=base.default_parameters
    )
    return base.with_parameters(params)


def _temporal_from_dict(data: Any, where: str, base_path: Path | None) -> TemporalModel:
    cls = _lookup(TEMPORAL_MODELS, data, "temporal", where)
    params = _parameters_from_list(cls, data.get("parameters"), f"{where} temporal")
    scale = data.get("scale", "utc")
    try:
        if cls is LightCurveTemplateTemporalModel:
            if "filename" not in data:
                raise ModelFormatError(f"{where}: LightCurveTemplateTemporalModel needs a filename")
            if data.get("format", "table") != "table":
                raise UnknownModelTypeError(
                    f"{where}: light-curve template format {data['format']!r} is not supported "
                    "(only 'table')"
                )
            model = LightCurveTemplateTemporalModel.read(
                _resolve(data["filename"], base_path, where), scale=scale
            )
            return model.with_filename(data["filename"]).with_parameters(params)
        return cls(scale=scale, **params)
    except (ValueError, OSError) as exc:
        if isinstance(exc, ModelFormatError):
            raise
        raise ModelFormatError(f"{where}: {exc}") from exc


def _same_light_curve(path: Path, model: LightCurveTemplateTemporalModel) -> bool:
    try:
        on_disk = LightCurveTemplateTemporalModel.read(path)
    except (OSError, ValueError):
        return False
    return np.array_equal(on_disk.time, model.time) and np.array_equal(on_disk.norm, model.norm)


def _spatial_from_dict(data: Any, where: str, base_path: Path | None) -> SpatialModel:
    cls = _lookup(SPATIAL_MODELS, data, "spatial", where)
    params = _parameters_from_list(cls, data.get("parameters"), f"{where} spatial")
    frame = data.get("frame", "icrs")
    if cls is TemplateSpatialModel:
        filename = data.get("filename")
        if filename is None:
            raise ModelFormatError(f"{where}: TemplateSpatialModel needs a 'filename'")
        file = Path(filename)
        if not file.is_absolute() and base_path is not None:
            file = base_path / file
        if not file.exists():
            raise ModelFormatError(f"{where}: template file {file} not found")
        template = read_template_fits(file)
        return TemplateSpatialModel(
            template, normalize=bool(data.get("normalize", True)), filename=filename, **params
        )
    try:
        return cls(frame=frame, **params)
    except ValueError as exc:
        raise ModelFormatError(f"{where}: {exc}") from exc


def models_from_dict(data: Any, base_path: str | Path | None = None, source: str = "") -> Models:
    """Models from a Gammapy-format dictionary.

    Parameters
    ----------
    data : dict
        ``{"components": [...]}`` (other keys ignored).
    base_path : str or Path, optional
        Directory against which relative template filenames are resolved.
    source : str
        Name of the file or text, used in error messages.
    """
    prefix = f"{source}: " if source else ""
    if not isinstance(data, dict) or not isinstance(data.get("components"), list):
        raise ModelFormatError(f"{prefix}expected a mapping with a 'components' list")
    base = None if base_path is None else Path(base_path)
    models = []
    for k, comp in enumerate(data["components"]):
        if not isinstance(comp, dict):
            raise ModelFormatError(f"{prefix}component {k} is not a mapping")
        kind = comp.get("type")
        where = f"{prefix}component {comp.get('name', k)!r}"
        if kind in _SKY_TAGS:
            if "name" not in comp:
                raise ModelFormatError(f"{where}: a SkyModel needs a 'name'")
            if "spectral" not in comp:
                raise ModelFormatError(f"{where}: a SkyModel needs a 'spectral' model")
            if comp.get("apply_irf", None) not in (None, {}):
                raise ModelFormatError(f"{where}: 'apply_irf' is not supported")
            spectral = _spectral_from_dict(comp["spectral"], where, base)
            spatial = temporal = None
            if comp.get("spatial") is not None:
                spatial = _spatial_from_dict(comp["spatial"], where, base)
            if comp.get("temporal") is not None:
                temporal = _temporal_from_dict(comp["temporal"], where, base)
            models.append(
                SkyModel(
                    spectral,
                    spatial,
                    name=comp["name"],
                    temporal=temporal,
                    datasets_names=comp.get("datasets_names"),
                )
            )
        elif kind in _BKG_TAGS:
            names = comp.get("datasets_names")
            if not names or len(names) != 1:
                raise ModelFormatError(
                    f"{where}: FoVBackgroundModel needs exactly one dataset name"
                )
            if comp.get("spatial") is not None:
                raise UnknownModelTypeError(
                    f"{where}: FoVBackgroundModel with a spatial model is not supported"
                )
            spectral = _spectral_from_dict(comp["spectral"], where) if "spectral" in comp else None
            if spectral is not None and not isinstance(spectral, PowerLawNorm):
                raise UnknownModelTypeError(
                    f"{where}: FoVBackgroundModel spectral norm {comp['spectral']['type']!r} "
                    "is not supported (only PowerLawNormSpectralModel)"
                )
            models.append(FoVBackgroundModel(names[0], spectral=spectral))
        else:
            raise UnknownModelTypeError(
                f"{where}: unknown component type {kind!r}; supported: SkyModel, FoVBackgroundModel"
            )
    return Models(models)


def models_from_yaml(text: str, base_path: str | Path | None = None, source: str = "") -> Models:
    """Models from Gammapy-format YAML text (see :func:`models_from_dict`)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModelFormatError(f"{source or 'YAML text'}: not valid YAML: {exc}") from exc
    return models_from_dict(data, base_path=base_path, source=source)


def read_models(path: str | Path) -> Models:
    """Read a model YAML file written by gammaxr or Gammapy."""
    path = Path(path)
    text = path.read_text()
    models = models_from_yaml(text, base_path=path.parent, source=str(path))
    name = (yaml.safe_load(text) or {}).get("covariance")
    if name:
        from .covariance import read_covariance

        file = Path(name) if Path(name).is_absolute() else path.parent / name
        if not file.exists():
            warnings.warn(f"{path}: covariance file {name!r} not found; not read", stacklevel=2)
        else:
            models = models.with_covariance(read_covariance(file, models))
    return models
