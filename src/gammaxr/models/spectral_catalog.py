"""Further spectral models: catalogue shapes (3FGL, 4FGL-DR3), smooth broken power law,
constant, and the piecewise norm.

Same conventions as :mod:`gammaxr.models.spectral` (energies in TeV, dN/dE in
cm-2 s-1 TeV-1, ``evaluate`` and ``evaluate_integral`` pure vectorised functions of the
parameter values); parameter names, defaults and formulae are Gammapy's, so model files
carry over. Integrals are analytic for :class:`ConstantSpectral`, exact for
:class:`PiecewiseNorm` with log interpolation (a power law between nodes) and otherwise
Gauss-Legendre quadrature in log energy (:func:`~gammaxr.models.spectral.log_quadrature`).
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np

from ._lazy import apply_elementwise
from .parameters import Parameter
from .spectral import (
    DNDE_UNIT,
    SpectralModel,
    _amplitude,
    _broken_power_law_parameters,
    _pl_integral,
    _power_law_parameters,
    _reference,
)

__all__ = [
    "ConstantSpectral",
    "ExpCutoffPowerLaw3FGL",
    "PiecewiseNorm",
    "SmoothBrokenPowerLaw",
    "SuperExpCutoffPowerLaw4FGLDR3",
]


class ExpCutoffPowerLaw3FGL(SpectralModel):
    r"""3FGL exponential cutoff power law :math:`\phi_0 (E/E_0)^{-\Gamma} \exp((E_0 - E)/E_c)`.

    Parameters: ``index`` (1.5), ``amplitude`` (1e-12 cm-2 s-1 TeV-1), ``reference``
    (1 TeV, frozen), ``ecut`` (10 TeV, cutoff energy).
    """

    tag = "ExpCutoffPowerLaw3FGLSpectralModel"
    short_tag = "ecpl-3fgl"
    default_parameters = (*_power_law_parameters(1.5), Parameter("ecut", 10.0, "TeV"))

    @staticmethod
    def evaluate(energy, index, amplitude, reference, ecut):
        """Differential flux in cm-2 s-1 TeV-1 at ``energy`` (TeV)."""
        return amplitude * (energy / reference) ** (-index) * np.exp((reference - energy) / ecut)


def _expm1_minus_x(y):
    """``exp(y) - 1 - y`` without cancellation near ``y = 0``."""
    small = np.abs(y) < 1e-3
    series = y * y * (0.5 + y * (1.0 / 6.0 + y / 24.0))
    return np.where(small, series, np.expm1(y) - y)


class SuperExpCutoffPowerLaw4FGLDR3(SpectralModel):
    r"""4FGL-DR3 super-exponential cutoff power law (Fermi-LAT ``PLSuperExpCutoff4``).

    With :math:`x = E / E_0`, :math:`d` = ``expfactor`` and :math:`b` = ``index_2``:
    :math:`\phi_0 x^{d/b - \Gamma_1} \exp(d/b^2 (1 - x^b))`, computed as
    :math:`\phi_0 x^{-\Gamma_1} \exp(-d/b^2 (e^{b \ln x} - 1 - b \ln x))`, stable at
    :math:`b \ln x \to 0`. Parameters: ``amplitude`` (1e-12 cm-2 s-1 TeV-1), ``reference``
    (1 TeV, frozen), ``expfactor`` (0.01), ``index_1`` (1.5), ``index_2`` (2).
    """

    tag = "SuperExpCutoffPowerLaw4FGLDR3SpectralModel"
    short_tag = "secpl-4fgl-dr3"
    default_parameters = (
        _amplitude(),
        _reference(),
        Parameter("expfactor", 1e-2),
        Parameter("index_1", 1.5),
        Parameter("index_2", 2.0),
    )

    @staticmethod
    def evaluate(energy, amplitude, reference, expfactor, index_1, index_2):
        """Differential flux in cm-2 s-1 TeV-1 at ``energy`` (TeV)."""
        log_x = np.log(energy / reference)
        y = index_2 * log_x
        return amplitude * np.exp(-index_1 * log_x - expfactor / index_2**2 * _expm1_minus_x(y))


class SmoothBrokenPowerLaw(SpectralModel):
    r"""Smoothly broken power law (Gammapy's definition).

    :math:`\phi_0 (E/E_0)^{-\Gamma_1} (1 + (E/E_b)^{(\Gamma_2 - \Gamma_1)/\beta})^{-\beta}`.
    Parameters: ``index1`` (2), ``index2`` (2), ``amplitude`` (1e-12 cm-2 s-1 TeV-1),
    ``ebreak`` (1 TeV), ``reference`` (1 TeV, frozen), ``beta`` (1, smoothness, frozen).
    """

    tag = "SmoothBrokenPowerLawSpectralModel"
    short_tag = "sbpl"
    default_parameters = (
        *_broken_power_law_parameters(),
        _reference(),
        Parameter("beta", 1.0, frozen=True),
    )

    @staticmethod
    def evaluate(energy, index1, index2, amplitude, ebreak, reference, beta):
        """Differential flux in cm-2 s-1 TeV-1 at ``energy`` (TeV)."""
        smooth = (1.0 + (energy / ebreak) ** ((index2 - index1) / beta)) ** (-beta)
        return amplitude * (energy / reference) ** (-index1) * smooth


class ConstantSpectral(SpectralModel):
    """Constant differential flux ``const`` (1e-12 cm-2 s-1 TeV-1) at every energy."""

    tag = "ConstantSpectralModel"
    short_tag = "const"
    default_parameters = (Parameter("const", 1e-12, DNDE_UNIT),)

    @staticmethod
    def evaluate(energy, const):
        """Differential flux in cm-2 s-1 TeV-1 at ``energy`` (TeV)."""
        return const * (energy / energy)

    @staticmethod
    def evaluate_integral(energy_min, energy_max, const):
        """Analytic integral in cm-2 s-1."""
        return const * (energy_max - energy_min)

    @staticmethod
    def evaluate_energy_flux(energy_min, energy_max, const):
        """Analytic energy flux in TeV cm-2 s-1."""
        return 0.5 * const * (energy_max**2 - energy_min**2)


INTERP_SCALES = ("log", "lin")


class PiecewiseNorm(SpectralModel):
    """Dimensionless norm given at energy nodes, interpolated in between.

    One free parameter ``norm_i`` per node; between nodes the norm is interpolated
    linearly in (log E, log norm) (``interp="log"``, Gammapy's default: a power law between
    nodes) or in (E, norm) (``interp="lin"``); outside the nodes it stays at the end
    value (as Gammapy). Multiply a spectral model by it (:class:`CompoundSpectral`) to let
    the spectral shape float.

    Parameters
    ----------
    energy : array_like, shape (n,)
        Node energies in TeV (or a quantity), strictly increasing and positive, n >= 2.
    norms : array_like, shape (n,), optional
        Initial norms (default 1); ``norm_i=...`` keywords or Parameters override them.
    interp : {"log", "lin"}
        Interpolation scale of energies and norms.
    """

    tag = "PiecewiseNormSpectralModel"
    short_tag = "piecewise-norm"
    unit = ""
    default_parameters = ()

    def __init__(self, energy, norms=None, interp: str = "log", **params: Any) -> None:
        energy = np.array(
            energy.to_value("TeV") if isinstance(energy, u.Quantity) else energy, dtype=float
        )
        if energy.ndim != 1 or energy.size < 2:
            raise ValueError("PiecewiseNorm needs at least two energy nodes (1D)")
        if np.any(energy <= 0) or np.any(np.diff(energy) <= 0):
            raise ValueError("PiecewiseNorm energies must be positive and strictly increasing")
        if interp not in INTERP_SCALES:
            raise ValueError(f"PiecewiseNorm interp must be one of {INTERP_SCALES}, got {interp!r}")
        norms = np.ones(energy.size) if norms is None else np.asarray(norms, dtype=float)
        if norms.shape != energy.shape:
            raise ValueError("PiecewiseNorm needs one norm per energy node")
        energy.setflags(write=False)
        object.__setattr__(self, "energy", energy)
        object.__setattr__(self, "interp", interp)
        object.__setattr__(
            self,
            "default_parameters",
            tuple(Parameter(f"norm_{i}", float(v)) for i, v in enumerate(norms)),
        )
        super().__init__(**params)

    @property
    def breakpoints(self) -> np.ndarray:
        """Energies (TeV) where the norm has kinks (integration splits there)."""
        return self.energy

    def _extra_state(self) -> tuple:
        return (self.energy, self.interp)

    def _repr_extra(self) -> str:
        return f"{self.energy.size} nodes, interp={self.interp!r}"

    def _interpolate(self, energy: np.ndarray, norms: np.ndarray) -> np.ndarray:
        if self.interp == "lin":
            return np.interp(energy, self.energy, norms)
        tiny = np.finfo(float).tiny
        log_norm = np.log(np.clip(norms, tiny, None))
        return np.exp(np.interp(np.log(energy), np.log(self.energy), log_norm))

    def evaluate(self, energy, **norms):
        """Dimensionless norm at ``energy`` (TeV)."""
        values = np.array([norms[p.name] for p in self.parameters], dtype=float)
        return apply_elementwise(lambda e: self._interpolate(e, values), energy)

    def evaluate_integral(self, energy_min, energy_max, **norms):
        """Integral of the norm over energy (TeV); exact for both interpolation scales."""
        values = np.array([norms[p.name] for p in self.parameters], dtype=float)

        def antiderivative(x):
            return _piecewise_antiderivative(self.energy, values, self.interp, x)

        return apply_elementwise(
            lambda a, b: antiderivative(b) - antiderivative(a), energy_min, energy_max
        )


def _piecewise_antiderivative(nodes, values, interp, x):
    """``int_{nodes[0]}^{x}`` of the piecewise interpolation (constant outside), numpy."""
    x = np.asarray(x, dtype=float)
    if interp == "lin":
        seg = 0.5 * (values[1:] + values[:-1]) * np.diff(nodes)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.diff(np.log(values)) / np.diff(np.log(nodes))
            seg = values[:-1] * _pl_integral(nodes[:-1], nodes[1:], -slope, nodes[:-1])
        seg = np.where(np.isfinite(seg), seg, 0.0)
    cumulative = np.concatenate([[0.0], np.cumsum(seg)])
    i = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, nodes.size - 2)
    inner = np.clip(x, nodes[0], nodes[-1])
    if interp == "lin":
        slope_lin = np.diff(values) / np.diff(nodes)
        part = (inner - nodes[i]) * (values[i] + 0.5 * slope_lin[i] * (inner - nodes[i]))
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            part = values[i] * _pl_integral(nodes[i], inner, -slope[i], nodes[i])
        part = np.where(np.isfinite(part), part, 0.0)
    below = values[0] * (np.minimum(x, nodes[0]) - nodes[0])
    above = values[-1] * (np.maximum(x, nodes[-1]) - nodes[-1])
    return cumulative[i] + part + below + above
