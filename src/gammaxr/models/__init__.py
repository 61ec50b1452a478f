"""Sky models: parameters, spectral, spatial, sky and background models, serialisation.

Build, evaluate, fit-vector and serialise::

    from gammaxr.models import (
        Models, SkyModel, PowerLaw, PointSpatialModel, FoVBackgroundModel, read_models
    )
    crab = SkyModel(
        PowerLaw(index=2.6, amplitude="4.5e-11 cm-2 s-1 TeV-1"),
        PointSpatialModel(lon_0=83.63, lat_0=22.01, frame="icrs"),
        name="crab",
    )
    models = Models([crab, FoVBackgroundModel("crab-stacked")])
    crab.spectral.integral(1.0, 10.0)            # cm-2 s-1
    x = models.get_vector()                       # free parameters, canonical units
    fitted = models.with_vector(x * 1.01)         # new objects; `models` is unchanged
    models.write("models.yaml")                   # Gammapy's YAML format
    energies = crab.spectral.sample_energy(1000, 0.5, 50.0, rng=1)

Units: energies TeV, dN/dE cm-2 s-1 TeV-1, angles deg, surface brightness sr-1.
"""

from .compound import CompoundSpectral
from .ebl import EBLAbsorptionNorm, read_ebl_table, write_ebl_table
from .parameters import Model, Parameter, ParameterUnitError
from .pixels import integrate_geom, integrate_pixels, pixel_solid_angle
from .priors import GaussianPrior, Prior, UniformPrior
from .serialize import (
    SPATIAL_MODELS,
    SPECTRAL_MODELS,
    TEMPORAL_MODELS,
    ModelFormatError,
    UnknownModelTypeError,
    models_from_dict,
    models_from_yaml,
    models_to_dict,
    models_to_yaml,
    read_models,
    write_models,
)
from .sky import FoVBackgroundModel, Models, ParameterRef, SkyModel
from .spatial import (
    DiskSpatialModel,
    GaussianSpatialModel,
    PointSpatialModel,
    ShellSpatialModel,
    SpatialModel,
)
from .spatial_extra import GeneralizedGaussianSpatialModel, Shell2SpatialModel
from .spectral import (
    BrokenPowerLaw,
    ExpCutoffPowerLaw,
    LogParabola,
    PowerLaw,
    PowerLaw2,
    PowerLawNorm,
    SpectralModel,
    TemplateSpectral,
)
from .spectral_catalog import (
    ConstantSpectral,
    ExpCutoffPowerLaw3FGL,
    PiecewiseNorm,
    SmoothBrokenPowerLaw,
    SuperExpCutoffPowerLaw4FGLDR3,
)
from .template import TemplateSpatialModel, read_template_fits, write_template_fits
from .temporal import (
    ConstantTemporalModel,
    ExpDecayTemporalModel,
    GaussianTemporalModel,
    LightCurveTemplateTemporalModel,
    TemporalModel,
    met_to_mjd,
    mjd_to_met,
)

__all__ = [
    "SPATIAL_MODELS",
    "SPECTRAL_MODELS",
    "TEMPORAL_MODELS",
    "BrokenPowerLaw",
    "CompoundSpectral",
    "ConstantSpectral",
    "ConstantTemporalModel",
    "DiskSpatialModel",
    "EBLAbsorptionNorm",
    "ExpCutoffPowerLaw",
    "ExpCutoffPowerLaw3FGL",
    "ExpDecayTemporalModel",
    "FoVBackgroundModel",
    "GaussianPrior",
    "GaussianSpatialModel",
    "GaussianTemporalModel",
    "GeneralizedGaussianSpatialModel",
    "LightCurveTemplateTemporalModel",
    "LogParabola",
    "Model",
    "ModelFormatError",
    "Models",
    "Parameter",
    "ParameterRef",
    "ParameterUnitError",
    "PiecewiseNorm",
    "PointSpatialModel",
    "PowerLaw",
    "Prior",
    "PowerLaw2",
    "PowerLawNorm",
    "Shell2SpatialModel",
    "ShellSpatialModel",
    "SkyModel",
    "SmoothBrokenPowerLaw",
    "SpatialModel",
    "SpectralModel",
    "SuperExpCutoffPowerLaw4FGLDR3",
    "TemplateSpatialModel",
    "UniformPrior",
    "TemplateSpectral",
    "TemporalModel",
    "UnknownModelTypeError",
    "integrate_geom",
    "integrate_pixels",
    "met_to_mjd",
    "mjd_to_met",
    "models_from_dict",
    "models_from_yaml",
    "models_to_dict",
    "models_to_yaml",
    "pixel_solid_angle",
    "read_ebl_table",
    "read_models",
    "read_template_fits",
    "write_ebl_table",
    "write_models",
    "write_template_fits",
]
