"""Sky models, the field-of-view background model and the :class:`Models` collection.

A :class:`SkyModel` is a spectral model times a spatial model (or a spectral model alone
for 1D spectrum datasets); a :class:`FoVBackgroundModel` rescales the background of one
dataset by a power-law norm. :class:`Models` is an immutable, list-like collection addressed
by index or name that exposes the flat vector of free parameters a fitter works with:

>>> models.free_parameter_names            # ["crab.spectral.index", ...]
>>> x = models.get_vector()                # free values, canonical units
>>> fitted = models.with_vector(x_best, errors=x_err)   # new Models; originals untouched

Parameters carrying the same ``link`` label share one slot of that vector (joint fits with
a common parameter, e.g. one spectral index for several datasets).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .parameters import Parameter
from .spatial import SpatialModel
from .spectral import PowerLawNorm, SpectralModel
from .temporal import TemporalModel

__all__ = ["FoVBackgroundModel", "Models", "ParameterRef", "SkyModel"]


class SkyModel:
    """A source: spectral model x spatial model, with a name.

    Parameters
    ----------
    spectral : SpectralModel
        Differential flux (cm-2 s-1 TeV-1) integrated over the source.
    spatial : SpatialModel or None
        Normalised spatial distribution (sr-1); None for spectrum-only (1D) analyses.
    name : str
        Unique name within a :class:`Models` collection (no ``.`` allowed).
    temporal : TemporalModel or None
        Time dependence of the flux (a norm; see :mod:`gammaxr.models.temporal`).
    datasets_names : sequence of str, optional
        Datasets the model applies to (default: all).
    """

    tag = "SkyModel"

    def __init__(
        self,
        spectral: SpectralModel,
        spatial: SpatialModel | None = None,
        name: str = "source",
        temporal: TemporalModel | None = None,
        datasets_names: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(spectral, SpectralModel):
            raise TypeError(f"SkyModel {name!r}: spectral must be a SpectralModel")
        if spatial is not None and not isinstance(spatial, SpatialModel):
            raise TypeError(f"SkyModel {name!r}: spatial must be a SpatialModel or None")
        if temporal is not None and not isinstance(temporal, TemporalModel):
            raise TypeError(f"SkyModel {name!r}: temporal must be a TemporalModel or None")
        _check_name(name)
        self._spectral, self._spatial, self._name = spectral, spatial, str(name)
        self._temporal = temporal
        self._datasets_names = None if datasets_names is None else tuple(datasets_names)

    spectral = property(lambda self: self._spectral, doc="The spectral model.")
    spatial = property(lambda self: self._spatial, doc="The spatial model (or None).")
    name = property(lambda self: self._name, doc="Model name.")
    temporal = property(lambda self: self._temporal, doc="The temporal model (or None).")
    datasets_names = property(lambda self: self._datasets_names, doc="Datasets or None (all).")

    @property
    def components(self) -> dict[str, Any]:
        """``{"spectral": ..., "spatial": ..., "temporal": ...}`` (components present)."""
        out = {"spectral": self._spectral}
        if self._spatial is not None:
            out["spatial"] = self._spatial
        if self._temporal is not None:
            out["temporal"] = self._temporal
        return out

    def replace(self, **changes: Any) -> SkyModel:
        """A copy with ``spectral``, ``spatial``, ``temporal``, ``name`` or ``datasets_names``
        changed."""
        kwargs = {
            "spectral": self._spectral,
            "spatial": self._spatial,
            "temporal": self._temporal,
            "name": self._name,
            "datasets_names": self._datasets_names,
        }
        unknown = set(changes) - set(kwargs)
        if unknown:
            raise TypeError(f"SkyModel.replace: unknown field(s) {sorted(unknown)}")
        kwargs.update(changes)
        return type(self)(**kwargs)

    def copy(self) -> SkyModel:
        """A copy (all parts are immutable)."""
        return self.replace()

    def applies_to(self, dataset_name: str) -> bool:
        """Whether the model contributes to dataset ``dataset_name``."""
        return self._datasets_names is None or dataset_name in self._datasets_names

    def __call__(self, lon, lat, energy):
        """Differential surface brightness in cm-2 s-1 TeV-1 sr-1 (broadcast inputs).

        ``lon``, ``lat`` in deg in the spatial model's frame, ``energy`` in TeV.
        """
        if self._spatial is None:
            raise TypeError(f"SkyModel {self._name!r} has no spatial model")
        return self._spectral(energy) * self._spatial(lon, lat)

    def sample(
        self,
        n: int,
        energy_min: float,
        energy_max: float,
        rng: np.random.Generator | int | None = None,
    ) -> dict[str, np.ndarray]:
        """Draw ``n`` photons: ``{"energy": TeV, "lon": deg, "lat": deg}`` (model frame)."""
        rng = np.random.default_rng(rng)
        out = {"energy": self._spectral.sample_energy(n, energy_min, energy_max, rng)}
        if self._spatial is not None:
            out["lon"], out["lat"] = self._spatial.sample(n, rng)
        return out

    def _key(self) -> tuple:
        return (self._name, self._spectral, self._spatial, self._temporal, self._datasets_names)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"SkyModel(name={self._name!r}, spectral={self._spectral!r}, spatial={self._spatial!r})"
        )


class FoVBackgroundModel:
    """Background norm of one dataset: ``background * norm * (E / reference) ** -tilt``.

    The factor is evaluated at the (log) centre of each reconstructed-energy bin, as Gammapy
    does. The model's name is ``f"{dataset_name}-bkg"`` (Gammapy's convention).

    Parameters
    ----------
    dataset_name : str
        The dataset whose background the model rescales.
    spectral : PowerLawNorm, optional
        The norm model; default ``PowerLawNorm(norm=norm, tilt=tilt, reference=reference)``.
    norm, tilt, reference : float or Parameter, optional
        Shortcuts for the default norm model (tilt is frozen by default).
    """

    tag = "FoVBackgroundModel"

    def __init__(
        self,
        dataset_name: str,
        spectral: PowerLawNorm | None = None,
        **params: Any,
    ) -> None:
        if spectral is None:
            spectral = PowerLawNorm(**params)
        elif params:
            raise TypeError("give either a spectral norm model or norm/tilt/reference values")
        if not isinstance(spectral, PowerLawNorm):
            raise TypeError(
                f"FoVBackgroundModel {dataset_name!r}: only PowerLawNorm spectral norms are "
                f"supported, got {type(spectral).__name__}"
            )
        _check_name(dataset_name)
        self._dataset_name, self._spectral = str(dataset_name), spectral

    dataset_name = property(lambda self: self._dataset_name, doc="The dataset rescaled.")
    spectral = property(lambda self: self._spectral, doc="The PowerLawNorm model.")

    @property
    def name(self) -> str:
        """``f"{dataset_name}-bkg"``."""
        return f"{self._dataset_name}-bkg"

    @property
    def datasets_names(self) -> tuple[str]:
        """``(dataset_name,)``."""
        return (self._dataset_name,)

    @property
    def components(self) -> dict[str, Any]:
        """``{"spectral": norm model}``."""
        return {"spectral": self._spectral}

    def replace(self, **changes: Any) -> FoVBackgroundModel:
        """A copy with ``spectral`` or ``dataset_name`` changed."""
        kwargs = {"dataset_name": self._dataset_name, "spectral": self._spectral}
        kwargs.update(changes)
        return type(self)(**kwargs)

    def copy(self) -> FoVBackgroundModel:
        """A copy (all parts are immutable)."""
        return self.replace()

    def applies_to(self, dataset_name: str) -> bool:
        """Whether the model rescales dataset ``dataset_name``."""
        return dataset_name == self._dataset_name

    def factor(self, energy):
        """Dimensionless background scale factor at ``energy`` (TeV; bin log centres)."""
        return self._spectral(energy)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self._dataset_name, self._spectral) == (other._dataset_name, other._spectral)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FoVBackgroundModel(dataset_name={self._dataset_name!r}, {self._spectral!r})"


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name or "." in name:
        raise ValueError(f"model names must be non-empty strings without '.', got {name!r}")


@dataclass(frozen=True)
class ParameterRef:
    """Address of one parameter in a :class:`Models` collection."""

    model: str
    component: str
    name: str

    @property
    def full_name(self) -> str:
        """``"model.component.name"`` (Gammapy's unique parameter names)."""
        return f"{self.model}.{self.component}.{self.name}"


AnyModel = SkyModel | FoVBackgroundModel


class Models(Sequence):
    """Immutable list of sky and background models with a flat free-parameter vector.

    Parameters
    ----------
    models : iterable of SkyModel or FoVBackgroundModel
        Models with unique names.
    """

    def __init__(self, models: Iterable[AnyModel] = ()) -> None:
        if isinstance(models, (SkyModel, FoVBackgroundModel)):
            models = [models]
        models = tuple(models)
        for m in models:
            if not isinstance(m, (SkyModel, FoVBackgroundModel)):
                raise TypeError(f"Models holds SkyModel / FoVBackgroundModel, got {type(m)}")
        names = [m.name for m in models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"model names must be unique; duplicated: {dup}")
        self._models = models
        self._refs, self._slot_of, self._slot_members = self._index()

    # -- list-like access ------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[AnyModel]:
        return iter(self._models)

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            for m in self._models:
                if m.name == key:
                    return m
            raise KeyError(f"no model named {key!r}; models are {self.names}")
        if isinstance(key, slice):
            return Models(self._models[key])
        return self._models[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self.names
        return key in self._models

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Models):
            return NotImplemented
        return self._models == other._models

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Iterable[AnyModel]) -> Models:
        return Models(self._models + tuple(Models(other)))

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(m) for m in self._models)
        return f"Models([\n  {inner}\n])"

    @property
    def names(self) -> list[str]:
        """Model names in order."""
        return [m.name for m in self._models]

    def copy(self) -> Models:
        """A copy (models are immutable)."""
        return Models(self._models)

    def replace(self, model: AnyModel) -> Models:
        """A copy with the model of the same name replaced by ``model``."""
        self[model.name]
        return Models(model if m.name == model.name else m for m in self._models)

    def select(self, dataset_name: str) -> Models:
        """Models that apply to dataset ``dataset_name``."""
        return Models(m for m in self._models if m.applies_to(dataset_name))

    @property
    def sky_models(self) -> list[SkyModel]:
        """The :class:`SkyModel` members."""
        return [m for m in self._models if isinstance(m, SkyModel)]

    @property
    def background_models(self) -> list[FoVBackgroundModel]:
        """The :class:`FoVBackgroundModel` members."""
        return [m for m in self._models if isinstance(m, FoVBackgroundModel)]

    # -- parameters ------------------------------------------------------------------
    def _index(self):
        refs: list[tuple[ParameterRef, Parameter]] = []
        for m in self._models:
            for comp, cm in m.components.items():
                for p in cm.parameters:
                    refs.append((ParameterRef(m.name, comp, p.name), p))
        slot_of: dict[ParameterRef, int] = {}
        members: list[list[ParameterRef]] = []
        label_slot: dict[str, int] = {}
        for ref, p in refs:
            if p.link is not None and p.link in label_slot:
                k = label_slot[p.link]
                members[k].append(ref)
            else:
                k = len(members)
                members.append([ref])
                if p.link is not None:
                    label_slot[p.link] = k
            slot_of[ref] = k
        params = dict(refs)
        for group in members:
            frozen = {params[r].frozen for r in group}
            if len(frozen) > 1:
                raise ValueError(
                    "linked parameters must all be frozen or all free: "
                    + ", ".join(r.full_name for r in group)
                )
        return refs, slot_of, members

    @property
    def parameters(self) -> list[tuple[ParameterRef, Parameter]]:
        """All ``(ref, parameter)`` pairs, linked duplicates included."""
        return list(self._refs)

    def parameter(self, key: str | ParameterRef) -> Parameter:
        """A parameter by ref or full name ``"model.component.name"``."""
        ref = self._ref(key)
        for r, p in self._refs:
            if r == ref:
                return p
        raise KeyError(f"no parameter {ref.full_name!r}")

    def _ref(self, key: str | ParameterRef) -> ParameterRef:
        if isinstance(key, ParameterRef):
            return key
        parts = str(key).split(".", 2)  # compound members: "m.spectral.model1.index"
        if len(parts) != 3:
            raise KeyError(f"parameter names are 'model.component.name', got {key!r}")
        return ParameterRef(*parts)

    @property
    def free_parameters(self) -> list[tuple[ParameterRef, Parameter]]:
        """One ``(ref, parameter)`` per free fit parameter (first member of a link group)."""
        params = dict(self._refs)
        return [
            (group[0], params[group[0]])
            for group in self._slot_members
            if not params[group[0]].frozen
        ]

    @property
    def free_parameter_names(self) -> list[str]:
        """Full names of the free parameters (order of :meth:`get_vector`)."""
        return [ref.full_name for ref, _ in self.free_parameters]

    def get_vector(self) -> np.ndarray:
        """Values of the free parameters (canonical units)."""
        return np.array([p.value for _, p in self.free_parameters], dtype=float)

    def get_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the free parameters (-inf / +inf where unbounded)."""
        b = np.array([p.bounds for _, p in self.free_parameters], dtype=float).reshape(-1, 2)
        return b[:, 0], b[:, 1]

    def component_values(
        self, vector: Sequence[float] | None = None
    ) -> dict[tuple[str, str], dict[str, float]]:
        """Parameter values of every component, optionally with free ones from ``vector``.

        For fitters: ``values[(model_name, "spectral")]`` is ready for
        ``component.evaluate(..., **values)`` without building new model objects.

        Parameters
        ----------
        vector : sequence of float, optional
            Free-parameter values in the order of :attr:`free_parameter_names`.

        Returns
        -------
        dict
            ``{(model name, component): {parameter name: value}}``.
        """
        out: dict[tuple[str, str], dict[str, float]] = {}
        if vector is not None:
            free = self.free_parameters
            if len(vector) != len(free):
                raise ValueError(f"expected {len(free)} values, got {len(vector)}")
            slot_value = {
                self._slot_of[ref]: float(v) for (ref, _), v in zip(free, vector, strict=True)
            }
        else:
            slot_value = {}
        for ref, p in self._refs:
            value = slot_value.get(self._slot_of[ref], p.value)
            out.setdefault((ref.model, ref.component), {})[ref.name] = value
        return out

    def with_vector(self, values: Sequence[float], errors: Sequence[float] | None = None) -> Models:
        """A copy with free parameters (and linked partners) set from ``values``.

        Parameters
        ----------
        values : sequence of float
            New values in the order of :attr:`free_parameter_names`.
        errors : sequence of float, optional
            One-sigma errors to store with the values.
        """
        free = self.free_parameters
        values = np.asarray(values, dtype=float)
        if values.shape != (len(free),):
            raise ValueError(f"expected {len(free)} values, got shape {values.shape}")
        errs = None if errors is None else np.asarray(errors, dtype=float)
        changes: dict[ParameterRef, dict[str, float]] = {}
        for i, (ref, _) in enumerate(free):
            change = {"value": float(values[i])}
            if errs is not None:
                change["error"] = float(errs[i])
            for member in self._slot_members[self._slot_of[ref]]:
                changes[member] = change
        return self._apply(changes)

    def with_values(self, values: dict[str, float]) -> Models:
        """A copy with parameters set by full name (linked partners follow)."""
        changes = {}
        for key, value in values.items():
            ref = self._ref(key)
            self.parameter(ref)
            for member in self._slot_members[self._slot_of[ref]]:
                changes[member] = {"value": float(value)}
        return self._apply(changes)

    def with_parameter(self, key: str | ParameterRef, **fields: Any) -> Models:
        """A copy with fields of one parameter (and its linked partners) changed.

        E.g. ``models.with_parameter("crab.spatial.lon_0", frozen=True)`` or ``min=0``.
        """
        ref = self._ref(key)
        self.parameter(ref)
        return self._apply({m: fields for m in self._slot_members[self._slot_of[ref]]})

    def link(self, label: str, *keys: str | ParameterRef) -> Models:
        """A copy where the named parameters share one fit parameter (value of the first).

        Parameters
        ----------
        label : str
            Link label written to YAML (``link:``); must not be used by other parameters.
        *keys : str or ParameterRef
            Parameters to link, by full name ``"model.component.name"``.
        """
        refs = [self._ref(k) for k in keys]
        first = self.parameter(refs[0])
        for ref, p in self._refs:
            if p.link == label and ref not in refs:
                raise ValueError(f"link label {label!r} is already used by {ref.full_name}")
        changes = {
            r: {"link": label, "value": first.value, "frozen": first.frozen, "error": first.error}
            for r in refs
        }
        for r in refs:
            self.parameter(r)
        return self._apply(changes)

    def _apply(self, changes: dict[ParameterRef, dict[str, Any]]) -> Models:
        if not changes:
            return self.copy()
        new_models = []
        for m in self._models:
            comps = {}
            for comp, cm in m.components.items():
                mine = {
                    r.name: c
                    for r, c in changes.items()
                    if (r.model, r.component) == (m.name, comp)
                }
                if mine:
                    comps[comp] = cm.with_parameters(
                        {name: cm.parameter(name).replace(**c) for name, c in mine.items()}
                    )
            new_models.append(m.replace(**comps) if comps else m)
        return Models(new_models)

    def parameters_dataset(self) -> xr.Dataset:
        """Parameter table as an ``xr.Dataset`` with dim ``param`` (DESIGN.md fit result).

        Variables ``value``, ``error``, ``min``, ``max`` (float), ``frozen`` (bool),
        ``unit`` (str) and ``link`` (str, "" when unlinked); coordinate ``param`` holds the
        full names ``model.component.name``.
        """
        rows = self._refs
        data = {
            "value": [p.value for _, p in rows],
            "error": [p.error for _, p in rows],
            "min": [p.min for _, p in rows],
            "max": [p.max for _, p in rows],
            "frozen": [p.frozen for _, p in rows],
            "unit": [p.unit for _, p in rows],
            "link": [p.link or "" for _, p in rows],
        }
        return xr.Dataset(
            {k: ("param", np.asarray(v)) for k, v in data.items()},
            coords={"param": [r.full_name for r, _ in rows]},
        )

    # -- covariance (see covariance.py) -------------------------------------------------
    @property
    def covariance(self) -> xr.DataArray | None:
        """Parameter covariance (dims ``param``, ``param2``; full names) or None: set by a
        fit, read from the covariance file a model YAML names, kept by :meth:`write`."""
        return getattr(self, "_covariance", None)

    def with_covariance(self, covariance: xr.DataArray | None) -> Models:
        """A copy holding ``covariance`` (dims ``param``, ``param2``)."""
        out = Models(self._models)
        out._covariance = covariance
        return out

    # -- serialisation (see serialize.py) ----------------------------------------------
    def to_dict(self, full_output: bool = False) -> dict:
        """Gammapy-compatible ``{"components": [...]}`` dictionary."""
        from .serialize import models_to_dict

        return models_to_dict(self, full_output=full_output)

    @classmethod
    def from_dict(cls, data: dict, base_path: Any = None) -> Models:
        """Models from a Gammapy-format dictionary."""
        from .serialize import models_from_dict

        return models_from_dict(data, base_path=base_path)

    def to_yaml(self, full_output: bool = False) -> str:
        """Gammapy-compatible YAML text."""
        from .serialize import models_to_yaml

        return models_to_yaml(self, full_output=full_output)

    @classmethod
    def from_yaml(cls, text: str, base_path: Any = None) -> Models:
        """Models from Gammapy-format YAML text."""
        from .serialize import models_from_yaml

        return models_from_yaml(text, base_path=base_path)

    def write(self, path: Any, overwrite: bool = False, **kwargs: Any) -> None:
        """Write a Gammapy-compatible YAML file (and template FITS files)."""
        from .serialize import write_models

        write_models(self, path, overwrite=overwrite, **kwargs)

    @classmethod
    def read(cls, path: Any) -> Models:
        """Read a Gammapy-format YAML model file."""
        from .serialize import read_models

        return read_models(path)
