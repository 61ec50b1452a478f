"""Spectral models: differential photon flux dN/dE as a function of energy.

Conventions (the contract with the fitter and the simulator):

- energies are plain numbers in TeV; differential fluxes are in ``cm-2 s-1 TeV-1``,
  integral fluxes in ``cm-2 s-1`` and energy fluxes in ``TeV cm-2 s-1``;
- every model has ``evaluate(energy, **values)`` and ``evaluate_integral(energy_min,
  energy_max, **values)``, pure vectorised functions of arrays (numpy, dask or xarray: no ``np.asarray``
  inside), where ``values`` are the parameter values in the canonical units listed in
  ``default_parameters``. A fitter calls them with its own parameter vector, never
  building model objects in its inner loop: ``model.evaluate_integral(e_lo, e_hi, **values)``;
- ``model(energy)``, ``model.integral(emin, emax)`` and ``model.energy_flux(emin, emax)``
  use the model's own values and also accept astropy quantities (the result is then a
  quantity);
- ``sample_energy(n, emin, emax, rng)`` draws true energies for the simulator.

Analytic integrals: PowerLaw, PowerLaw2, BrokenPowerLaw, PowerLawNorm and TemplateSpectral
(exact for its log-log interpolation). LogParabola and ExpCutoffPowerLaw use Gauss-Legendre
quadrature in log energy (8 sub-intervals x 6 nodes per integration range; relative accuracy
better than 1e-9 for ranges up to several decades).
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
from scipy.special import exprel

from gammaxr.units import to_unit

from ._lazy import apply_elementwise
from .parameters import Model, Parameter

__all__ = [
    "BrokenPowerLaw",
    "ExpCutoffPowerLaw",
    "LogParabola",
    "PowerLaw",
    "PowerLaw2",
    "PowerLawNorm",
    "SpectralModel",
    "TemplateSpectral",
    "log_quadrature",
]

DNDE_UNIT = "cm-2 s-1 TeV-1"
_GL_X, _GL_W = np.polynomial.legendre.leggauss(6)


def _log_quadrature_numpy(func, emin: np.ndarray, emax: np.ndarray, n_sub: int) -> np.ndarray:
    t = ((np.arange(n_sub)[:, None] + 0.5 * (_GL_X + 1.0)) / n_sub).ravel()
    w = np.tile(0.5 * _GL_W / n_sub, n_sub)
    log_ratio = np.log(emax / emin)[..., None]
    energy = emin[..., None] * np.exp(t * log_ratio)
    return (func(energy) * energy * w).sum(axis=-1) * log_ratio[..., 0]


def log_quadrature(func, emin, emax, n_sub: int = 8):
    """Integrate ``func(E) dE`` from ``emin`` to ``emax`` by Gauss-Legendre in log energy.

    Parameters
    ----------
    func : callable
        Vectorised numpy function of energy (TeV); it receives arrays with one extra
        trailing axis holding the quadrature nodes.
    emin, emax : array_like
        Integration bounds in TeV (broadcast together). Dask and xarray inputs are
        processed lazily, one task per chunk.
    n_sub : int
        Number of equal sub-intervals in log energy, each with 6 nodes.

    Returns
    -------
    array_like
        The integral, with the broadcast shape (and type) of ``emin`` and ``emax``.
    """
    return apply_elementwise(lambda a, b: _log_quadrature_numpy(func, a, b, n_sub), emin, emax)


def _pl_integral(emin, emax, index, reference):
    """Integral of ``(E / reference) ** -index`` from ``emin`` to ``emax`` (TeV).

    Written with ``exprel`` so that it is exact and stable at and near ``index == 1``.
    """
    log_ratio = np.log(emax / emin)
    return emin * (emin / reference) ** (-index) * log_ratio * exprel((1.0 - index) * log_ratio)


def _sample_power_law(uniform, emin, emax, index):
    """Inverse-CDF samples of ``E ** -index`` between ``emin`` and ``emax`` (numpy arrays)."""
    log_ratio = np.log(emax / emin)
    z = (1.0 - index) * log_ratio
    small = np.abs(z) < 1e-9
    z_safe = np.where(small, 1.0, z)
    frac = np.where(small, uniform, np.log1p(uniform * np.expm1(z_safe)) / z_safe)
    return emin * np.exp(frac * log_ratio)


def _strip(x: Any, unit: str) -> tuple[Any, bool]:
    """Value of ``x`` in ``unit`` if it is a quantity (or a string with a unit, raising
    ``UnitConversionError`` for the wrong kind); a flag says whether it was one."""
    if isinstance(x, u.Quantity | str):
        return to_unit(x, unit, "energy"), True
    return x, False


class SpectralModel(Model):
    """Base class of spectral models (see the module docstring for conventions)."""

    #: Unit of ``evaluate``; norm models (``PowerLawNorm``) are dimensionless.
    unit: str = DNDE_UNIT

    @staticmethod
    def evaluate(energy, **values):  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate_integral(self, energy_min, energy_max, **values):
        """Integral of ``evaluate`` over ``[energy_min, energy_max]`` (TeV) for given values.

        Subclasses with an analytic integral override this; the default is
        :func:`log_quadrature`.
        """
        return log_quadrature(lambda e: self.evaluate(e, **values), energy_min, energy_max)

    def evaluate_energy_flux(self, energy_min, energy_max, **values):
        """Integral of ``E * evaluate`` over ``[energy_min, energy_max]`` (TeV), TeV x unit."""
        return log_quadrature(lambda e: e * self.evaluate(e, **values), energy_min, energy_max)

    def _combine(self, other: Any, op: str) -> Any:
        from .compound import CompoundSpectral

        if not isinstance(other, SpectralModel):
            return NotImplemented
        return CompoundSpectral(self, other, op)

    def __add__(self, other):
        """``CompoundSpectral(self, other, "add")``."""
        return self._combine(other, "add")

    def __sub__(self, other):
        """``CompoundSpectral(self, other, "sub")``."""
        return self._combine(other, "sub")

    def __mul__(self, other):
        """``CompoundSpectral(self, other, "mul")`` (e.g. a power law times an absorption)."""
        return self._combine(other, "mul")

    def __truediv__(self, other):
        """``CompoundSpectral(self, other, "truediv")``."""
        return self._combine(other, "truediv")

    def __call__(self, energy):
        """Differential flux at ``energy`` (TeV, or a quantity) in ``cm-2 s-1 TeV-1``."""
        energy, is_q = _strip(energy, "TeV")
        out = self.evaluate(energy, **self.values)
        return u.Quantity(out, self.unit) if is_q else out

    def integral(self, emin, emax):
        """Integral flux between ``emin`` and ``emax`` (TeV or quantities) in ``cm-2 s-1``."""
        (emin, q1), (emax, q2) = _strip(emin, "TeV"), _strip(emax, "TeV")
        out = self.evaluate_integral(emin, emax, **self.values)
        return u.Quantity(out, u.Unit(self.unit) * u.TeV) if (q1 or q2) else out

    def energy_flux(self, emin, emax):
        """Energy flux between ``emin`` and ``emax`` (TeV or quantities) in TeV cm-2 s-1."""
        (emin, q1), (emax, q2) = _strip(emin, "TeV"), _strip(emax, "TeV")
        out = self.evaluate_energy_flux(emin, emax, **self.values)
        return u.Quantity(out, u.Unit(self.unit) * u.TeV**2) if (q1 or q2) else out

    def sample_energy(
        self,
        n: int,
        emin: float,
        emax: float,
        rng: np.random.Generator | int | None = None,
        n_grid: int = 2048,
    ) -> np.ndarray:
        """Draw ``n`` energies (TeV) from the spectrum restricted to ``[emin, emax]``.

        The range is cut into ``n_grid`` log-spaced cells; a cell is chosen with
        probability equal to its integral (``evaluate_integral``, exact where analytic),
        and the energy within the cell follows the local power law through the cell's end
        values. For a power law this is exact; otherwise the error is of order
        (cell width)^2, far below any statistical test.

        Parameters
        ----------
        n : int
            Number of samples.
        emin, emax : float, str or astropy.units.Quantity
            Energy range in TeV (or quantities), ``0 < emin < emax``.
        rng : numpy.random.Generator, int or None
            Random generator or seed.
        n_grid : int
            Number of cells of the inverse-CDF grid.

        Returns
        -------
        numpy.ndarray, shape (n,)
            Energies in TeV.
        """
        rng = np.random.default_rng(rng)
        emin, emax = to_unit(emin, "TeV", "emin"), to_unit(emax, "TeV", "emax")
        if not 0 < emin < emax:
            raise ValueError(f"sample_energy needs 0 < emin < emax, got {emin}, {emax}")
        edges = np.geomspace(emin, emax, n_grid + 1)
        weights = np.asarray(self.integral(edges[:-1], edges[1:]), dtype=float)
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(
                f"{type(self).__name__}: cannot sample, its integral over [{emin}, {emax}] TeV "
                "is not positive and finite"
            )
        cell = rng.choice(n_grid, size=n, p=weights / weights.sum())
        f = np.asarray(self(edges), dtype=float)
        lo, hi = f[cell], f[cell + 1]
        ok = (lo > 0) & (hi > 0)
        ratio = np.log(edges[cell + 1] / edges[cell])
        index = np.where(ok, -np.log(np.where(ok, hi / np.where(ok, lo, 1.0), 1.0)) / ratio, 1.0)
        return _sample_power_law(rng.random(n), edges[cell], edges[cell + 1], index)


def _amplitude(value: float = 1e-12) -> Parameter:
    return Parameter("amplitude", value, DNDE_UNIT)


def _reference(value: float = 1.0, frozen: bool = True) -> Parameter:
    return Parameter("reference", value, "TeV", frozen=frozen)


def _power_law_parameters(index: float) -> tuple[Parameter, Parameter, Parameter]:
    """``index``, ``amplitude`` (1e-12 cm-2 s-1 TeV-1) and frozen ``reference`` (1 TeV)."""
    return Parameter("index", index), _amplitude(), _reference()


def _broken_power_law_parameters() -> tuple[Parameter, ...]:
    """``index1``, ``index2`` (2), ``amplitude`` (1e-12 cm-2 s-1 TeV-1), ``ebreak`` (1 TeV)."""
    indices = Parameter("index1", 2.0), Parameter("index2", 2.0)
    return (*indices, _amplitude(), Parameter("ebreak", 1.0, "TeV"))


class PowerLaw(SpectralModel):
    r"""Power law :math:`\phi(E) = \phi_0 (E / E_0)^{-\Gamma}`.

    Parameters: ``index`` :math:`\Gamma` (2), ``amplitude`` :math:`\phi_0`
    (1e-12 cm-2 s-1 TeV-1), ``reference`` :math:`E_0` (1 TeV, frozen).
    """

    tag = "PowerLawSpectralModel"
    short_tag = "pl"
    default_parameters = _power_law_parameters(2.0)

    @staticmethod
    def evaluate(energy, index, amplitude, reference):
        """Differential flux in cm-2 s-1 TeV-1 at ``energy`` (TeV)."""
        return amplitude * (energy / reference) ** (-index)

    @staticmethod
    def evaluate_integral(energy_min, energy_max, index, amplitude, reference):
        """Analytic integral in cm-2 s-1 (stable through ``index == 1``)."""
        return amplitude * _pl_integral(energy_min, energy_max, index, reference)

    @staticmethod
    def evaluate_energy_flux(energy_min, energy_max, index, amplitude, reference):
        """Analytic energy flux in TeV cm-2 s-1 (stable through ``index == 2``)."""
        return amplitude * reference * _pl_integral(energy_min, energy_max, index - 1.0, reference)

    def sample_energy(self, n, emin, emax, rng=None, n_grid=2048):
        """Exact inverse-CDF samples (TeV); see :meth:`SpectralModel.sample_energy`."""
        emin, emax = to_unit(emin, "TeV", "emin"), to_unit(emax, "TeV", "emax")
        if not 0 < emin < emax:
            raise ValueError(f"sample_energy needs 0 < emin < emax, got {emin}, {emax}")
        rng = np.random.default_rng(rng)
        return _sample_power_law(rng.random(n), emin, emax, self.index.value)


class PowerLawNorm(SpectralModel):
    r"""Dimensionless power-law norm :math:`n (E / E_0)^{-t}` (used for background models).

    Parameters: ``tilt`` :math:`t` (0, frozen), ``norm`` :math:`n` (1), ``reference``
    :math:`E_0` (1 TeV, frozen).
    """

    tag = "PowerLawNormSpectralModel"
    short_tag = "pl-norm"
    unit = ""
    default_parameters = (
        Parameter("tilt", 0.0, frozen=True),
        Parameter("norm", 1.0),
        _reference(),
    )

    # the formulas of PowerLaw with a dimensionless amplitude ``norm`` and index ``tilt``
    @staticmethod
    def evaluate_integral(energy_min, energy_max, tilt, norm, reference):
        """Analytic integral in TeV."""
        return PowerLaw.evaluate_integral(energy_min, energy_max, tilt, norm, reference)

    @staticmethod
    def evaluate(energy, tilt, norm, reference):
        """Dimensionless factor at ``energy`` (TeV)."""
        return PowerLaw.evaluate(energy, tilt, norm, reference)


class PowerLaw2(SpectralModel):
    r"""Power law normalised by its integral flux :math:`F` between ``emin`` and ``emax``.

    :math:`\phi(E) = F \, E^{-\Gamma} / \int_{E_{min}}^{E_{max}} E^{-\Gamma} dE`.
    Parameters: ``amplitude`` :math:`F` (1e-12 cm-2 s-1), ``index`` (2), ``emin``
    (0.1 TeV, frozen), ``emax`` (100 TeV, frozen).
    """

    tag = "PowerLaw2SpectralModel"
    short_tag = "pl-2"
    default_parameters = (
        Parameter("amplitude", 1e-12, "cm-2 s-1"),
        Parameter("index", 2.0),
        Parameter("emin", 0.1, "TeV", frozen=True),
        Parameter("emax", 100.0, "TeV", frozen=True),
    )

    def _validate(self) -> None:
        if not 0 < self.emin.value < self.emax.value:
            raise ValueError(
                f"PowerLaw2 needs 0 < emin < emax, got {self.emin.value}, {self.emax.value}"
            )

    @staticmethod
    def evaluate(energy, amplitude, index, emin, emax):
        """Differential flux in cm-2 s-1 TeV-1 at ``energy`` (TeV)."""
        return amplitude * (energy / emax) ** (-index) / _pl_integral(emin, emax, index, emax)

    @staticmethod
    def evaluate_integral(energy_min, energy_max, amplitude, index, emin, emax):
        """Analytic integral in cm-2 s-1."""
        return (
            amplitude
            * _pl_integral(energy_min, energy_max, index, emax)
            / _pl_integral(emin, emax, index, emax)
        )

    def sample_energy(self, n, emin, emax, rng=None, n_grid=2048):
        """Exact inverse-CDF samples (TeV); see :meth:`SpectralModel.sample_energy`."""
        return PowerLaw(index=self.index.value).sample_energy(n, emin, emax, rng)


class LogParabola(SpectralModel):
    r"""Log parabola :math:`\phi_0 (E/E_0)^{-\alpha - \beta \ln(E/E_0)}` (natural log).

    The natural logarithm is Gammapy's convention; a ``log10`` curvature
    :math:`\beta_{10}` converts as :math:`\beta = \beta_{10} / \ln 10`
    (:meth:`from_log10`). Parameters: ``amplitude`` (1e-12 cm-2 s-1 TeV-1), ``reference``
    (10 TeV, frozen), ``alpha`` (2), ``beta`` (1).
    """

    tag = "LogParabolaSpectralModel"
    short_tag = "lp"
    default_parameters = (
        _amplitude(),
        _reference(10.0),
        Parameter("alpha", 2.0),
        Parameter("beta", 1.0),
    )

    @classmethod
    def from_log10(cls, amplitude, reference, alpha, beta) -> LogParabola:
        """Build from the ``log10`` parametrisation (``beta`` multiplies ``log10(E/E0)``)."""
        return cls(amplitude=amplitude, reference=reference, alpha=alpha, beta=beta / np.log(10))

    @staticmethod
    def evaluate(energy, amplitude, reference, alpha, beta):
        """Differential flux in cm-2 s-1 TeV-1 at ``energy`` (TeV)."""
        x = np.log(energy / reference)
        return amplitude * np.exp(-(alpha + beta * x) * x)


class ExpCutoffPowerLaw(SpectralModel):
    r"""Power law with exponential cutoff :math:`\phi_0 (E/E_0)^{-\Gamma} \exp(-(\lambda E)^\alpha)`.

    Parameters: ``index`` (1.5), ``amplitude`` (1e-12 cm-2 s-1 TeV-1), ``reference``
    (1 TeV, frozen), ``lambda_`` (0.1 TeV-1, inverse cutoff energy), ``alpha`` (1, frozen).
    """

    tag = "ExpCutoffPowerLawSpectralModel"
    short_tag = "ecpl"
    default_parameters = (
        *_power_law_parameters(1.5),
        Parameter("lambda_", 0.1, "TeV-1"),
        Parameter("alpha", 1.0, frozen=True),
    )

    @staticmethod
    def evaluate(energy, index, amplitude, reference, lambda_, alpha):
        """Differential flux in cm-2 s-1 TeV-1 at ``energy`` (TeV)."""
        return amplitude * (energy / reference) ** (-index) * np.exp(-((energy * lambda_) ** alpha))


class BrokenPowerLaw(SpectralModel):
    r"""Broken power law: index ``index1`` below ``ebreak`` and ``index2`` above.

    :math:`\phi(E) = \phi_0 (E / E_b)^{-\Gamma_1}` for :math:`E < E_b`, else
    :math:`\phi_0 (E / E_b)^{-\Gamma_2}`. Parameters: ``index1`` (2), ``index2`` (2),
    ``amplitude`` (1e-12 cm-2 s-1 TeV-1, the flux at the break), ``ebreak`` (1 TeV).
    """

    tag = "BrokenPowerLawSpectralModel"
    short_tag = "bpl"
    default_parameters = _broken_power_law_parameters()

    @staticmethod
    def evaluate(energy, index1, index2, amplitude, ebreak):
        """Differential flux in cm-2 s-1 TeV-1 at ``energy`` (TeV)."""
        above = energy >= ebreak
        index = index1 + (index2 - index1) * above
        return amplitude * (energy / ebreak) ** (-index)

    @staticmethod
    def evaluate_integral(energy_min, energy_max, index1, index2, amplitude, ebreak):
        """Analytic integral in cm-2 s-1 (the two pieces on each side of the break)."""
        lo, hi = energy_min, energy_max
        low = _pl_integral(np.minimum(lo, ebreak), np.minimum(hi, ebreak), index1, ebreak)
        high = _pl_integral(np.maximum(lo, ebreak), np.maximum(hi, ebreak), index2, ebreak)
        return amplitude * (low + high)

    @staticmethod
    def evaluate_energy_flux(energy_min, energy_max, index1, index2, amplitude, ebreak):
        """Analytic energy flux in TeV cm-2 s-1."""
        return ebreak * BrokenPowerLaw.evaluate_integral(
            energy_min, energy_max, index1 - 1.0, index2 - 1.0, amplitude, ebreak
        )


class TemplateSpectral(SpectralModel):
    """Tabulated spectrum with log-log interpolation between nodes, times a ``norm``.

    Outside the tabulated range the end segments' power laws are extrapolated (as
    Gammapy does); a single node gives a constant. Integrals are exact for the log-log
    interpolation (a power law between nodes). Zero-valued nodes make their segments zero.

    Parameters
    ----------
    energy : array_like, shape (n,)
        Node energies in TeV (or a quantity), strictly increasing and positive.
    values : array_like, shape (n,)
        Differential fluxes at the nodes in cm-2 s-1 TeV-1 (or a quantity), >= 0.
    norm : float or Parameter
        Dimensionless scale factor (default 1, free).
    """

    tag = "TemplateSpectralModel"
    short_tag = "template"
    default_parameters = (Parameter("norm", 1.0),)

    def __init__(self, energy, values, **params: Any) -> None:
        energy = (
            energy.to_value("TeV") if isinstance(energy, u.Quantity) else np.asarray(energy, float)
        )
        if isinstance(values, u.Quantity):
            try:
                values = values.to_value(DNDE_UNIT)
            except u.UnitConversionError as exc:
                raise ValueError(
                    f"TemplateSpectral values must be a differential flux, got unit {values.unit}"
                ) from exc
        values = np.asarray(values, dtype=float)
        if energy.ndim != 1 or energy.shape != values.shape or energy.size < 1:
            raise ValueError("TemplateSpectral needs 1D energy and values of equal length")
        if np.any(energy <= 0) or np.any(np.diff(energy) <= 0):
            raise ValueError("TemplateSpectral energies must be positive and strictly increasing")
        if np.any(~np.isfinite(values)) or np.any(values < 0):
            raise ValueError("TemplateSpectral values must be finite and >= 0")
        energy, values = energy.copy(), values.copy()
        energy.setflags(write=False)
        values.setflags(write=False)
        object.__setattr__(self, "energy", energy)
        object.__setattr__(self, "table_values", values)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_e, log_v = np.log(energy), np.log(values)
            slope = np.diff(log_v) / np.diff(log_e)  # -inf/nan where a node is zero
            seg = values[:-1] * _pl_integral(energy[:-1], energy[1:], -slope, energy[:-1])
            seg_e = (
                energy[:-1]
                * values[:-1]
                * _pl_integral(energy[:-1], energy[1:], -slope - 1.0, energy[:-1])
            )
        seg = np.where(np.isfinite(seg), seg, 0.0)
        seg_e = np.where(np.isfinite(seg_e), seg_e, 0.0)
        object.__setattr__(self, "_slope", slope)
        object.__setattr__(self, "_cumulative", np.concatenate([[0.0], np.cumsum(seg)]))
        object.__setattr__(self, "_cumulative_e", np.concatenate([[0.0], np.cumsum(seg_e)]))
        super().__init__(**params)

    def _extra_state(self) -> tuple:
        return (self.energy, self.table_values)

    def _repr_extra(self) -> str:
        return f"{self.energy.size} nodes {self.energy[0]:.3g}-{self.energy[-1]:.3g} TeV"

    def _dnde(self, energy: np.ndarray) -> np.ndarray:
        e, v = self.energy, self.table_values
        if e.size == 1:
            return np.full_like(energy, v[0], dtype=float)
        i = np.clip(np.searchsorted(e, energy, side="right") - 1, 0, e.size - 2)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = v[i] * (energy / e[i]) ** self._slope[i]
        return np.where(np.isfinite(out), out, 0.0)

    def _antiderivative(self, energy: np.ndarray, moment: int = 0) -> np.ndarray:
        """Integral of ``E**moment * dN/dE`` from the first node to ``energy``."""
        e, v = self.energy, self.table_values
        if e.size == 1:
            return v[0] * (energy ** (moment + 1) - e[0] ** (moment + 1)) / (moment + 1)
        x = energy
        i = np.clip(np.searchsorted(e, x, side="right") - 1, 0, e.size - 2)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            part = v[i] * e[i] ** moment * _pl_integral(e[i], x, -self._slope[i] - moment, e[i])
        cumulative = self._cumulative_e if moment else self._cumulative
        return cumulative[i] + np.where(np.isfinite(part), part, 0.0)

    def _antiderivative_e(self, energy: np.ndarray) -> np.ndarray:
        return self._antiderivative(energy, moment=1)

    def evaluate(self, energy, norm):
        """Differential flux in cm-2 s-1 TeV-1 at ``energy`` (TeV)."""
        return norm * apply_elementwise(self._dnde, energy)

    def evaluate_integral(self, energy_min, energy_max, norm):
        """Exact integral of the interpolated table in cm-2 s-1."""
        return norm * (
            apply_elementwise(self._antiderivative, energy_max)
            - apply_elementwise(self._antiderivative, energy_min)
        )

    def evaluate_energy_flux(self, energy_min, energy_max, norm):
        """Exact energy flux of the interpolated table in TeV cm-2 s-1."""
        return norm * (
            apply_elementwise(self._antiderivative_e, energy_max)
            - apply_elementwise(self._antiderivative_e, energy_min)
        )
