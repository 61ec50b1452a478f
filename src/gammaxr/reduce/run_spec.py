"""What the run specs share: checks of their common fields, energy axes, safe-mask attrs.

:class:`~gammaxr.reduce.dataset.ReductionSpec` (maps) and
:class:`~gammaxr.reduce.spectrum.SpectrumSpec` (1D spectra) are frozen dataclasses with the
same energy, safe-mask and GTI fields; :class:`RunSpecFields` holds what they do with them,
so both check and describe those fields alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gammaxr.geom.axes import axis_coords
from gammaxr.reduce.safe_mask import check_safe_mask_options
from gammaxr.units import to_edges, to_positive

__all__ = ["RunSpecFields"]

_SAFE_OPTIONS = ("safe_mask", "safe_mask_irfs", "safe_mask_position", "safe_mask_fixed_offset")


class RunSpecFields:
    """Mixin of the frozen run-spec dataclasses (no fields of its own).

    The dataclass has the fields ``energy_edges``, ``energy_true_edges`` (TeV), ``maps``,
    ``safe_mask``, ``safe_mask_irfs``, ``safe_mask_position``, ``safe_mask_fixed_offset``,
    ``offset_max`` (deg), ``aeff_percent``, ``bias_percent`` (%) and ``gti_tolerance`` (s),
    and calls :meth:`_check_shared_fields` from its ``__post_init__``.
    """

    def _check_shared_fields(self, known_maps: tuple[str, ...], angles: tuple[str, ...]) -> None:
        """Check and freeze the shared fields in place (``object.__setattr__``).

        Parameters
        ----------
        known_maps : tuple of str
            The map names ``maps`` may hold.
        angles : tuple of str
            Fields that are positive angles (deg), ``offset_max`` and the spec's own.

        Raises
        ------
        ValueError
            Naming the field: edges not increasing, an angle or percentage not positive, a
            percentage above 100, a negative ``gti_tolerance``, an unknown map or a bad
            safe-mask option (:func:`~gammaxr.reduce.safe_mask.check_safe_mask_options`).
        """
        for name in ("energy_edges", "energy_true_edges"):
            edges = to_edges(getattr(self, name), "TeV", name)
            object.__setattr__(self, name, tuple(edges.tolist()))
        for name in angles:
            object.__setattr__(self, name, to_positive(getattr(self, name), "deg", name))
        for name in ("aeff_percent", "bias_percent"):
            value = to_positive(getattr(self, name), "", name)
            if value > 100:
                raise ValueError(f"{name} must be a percentage in (0, 100], got {value}")
            object.__setattr__(self, name, value)
        tolerance = to_positive(self.gti_tolerance, "s", "gti_tolerance", allow_zero=True)
        object.__setattr__(self, "gti_tolerance", tolerance)
        object.__setattr__(self, "maps", tuple(self.maps))
        unknown = set(self.maps) - set(known_maps)
        if unknown:
            raise ValueError(f"unknown maps {sorted(unknown)}; known: {known_maps}")
        options = check_safe_mask_options(*(getattr(self, name) for name in _SAFE_OPTIONS))
        for name, value in zip(_SAFE_OPTIONS, options, strict=True):
            object.__setattr__(self, name, value)

    @property
    def energy(self) -> np.ndarray:
        """Reco-energy edges, TeV."""
        return np.asarray(self.energy_edges)

    @property
    def energy_true(self) -> np.ndarray:
        """True-energy edges, TeV."""
        return np.asarray(self.energy_true_edges)

    def energy_coords(self) -> dict[str, Any]:
        """The ``energy`` and ``energy_true`` coordinates (centres and CF bounds, TeV)."""
        return {
            **axis_coords("energy", self.energy, "TeV"),
            **axis_coords("energy_true", self.energy_true, "TeV"),
        }

    def safe_mask_attrs(self) -> dict[str, Any]:
        """Dataset attrs recording the safe-mask settings."""
        return {
            "safe_mask_methods": list(self.safe_mask),
            "offset_max_deg": float(self.offset_max),
            "safe_mask_irfs": self.safe_mask_irfs,
        }
