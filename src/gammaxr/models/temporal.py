"""Temporal models: a dimensionless norm multiplying a source's flux as a function of time.

Conventions (Gammapy's):

- times are MJD (days) in the model's time ``scale`` (``"utc"`` by default), parameters
  ``t_ref`` in d (an MJD), durations (``t0``, ``sigma``) in d;
- ``evaluate(time, **values)`` is the norm at ``time``; ``evaluate_integral(t_min, t_max,
  **values)`` its integral over ``[t_min, t_max]`` in d (analytic for every model here);
- :meth:`TemporalModel.mean_norm` is the time average of the norm over a set of intervals
  (Gammapy's ``integral``): a dataset covering those intervals predicts
  ``npred * mean_norm``;
- :meth:`TemporalModel.sample_time` draws event times following the norm inside given
  intervals (the simulator's GTIs);
- :func:`met_to_mjd` converts mission elapsed time (s since a reference epoch) to MJD in a
  model's scale.

:class:`LightCurveTemplateTemporalModel` reads Gammapy's light-curve table (a FITS table
with ``TIME`` relative to ``MJDREFI``/``MJDREFF`` and ``NORM``); the norm is linear between
nodes and zero outside them, as in Gammapy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.time import Time
from scipy.special import erf

from ._lazy import apply_elementwise
from .parameters import Model, Parameter

__all__ = [
    "ConstantTemporalModel",
    "ExpDecayTemporalModel",
    "GaussianTemporalModel",
    "LightCurveTemplateTemporalModel",
    "TemporalModel",
    "met_to_mjd",
    "mjd_to_met",
]

T_REF_DEFAULT = 51544.0  # 2000-01-01 (MJD), Gammapy's default reference time
_N_SAMPLE_CELLS = 4096  # cells per interval of the inverse-CDF time sampler


def met_to_mjd(met, reference: Time, scale: str = "utc") -> np.ndarray:
    """MJD in time ``scale`` of mission elapsed times.

    Parameters
    ----------
    met : array_like
        Seconds since ``reference``.
    reference : astropy.time.Time
        The MET zero point.
    scale : str
        Time scale of the result (``"utc"``, ``"tt"``...).

    Returns
    -------
    numpy.ndarray
        MJD (days), the shape of ``met``.
    """
    t = reference + u.Quantity(np.asarray(met, dtype=float), "s")
    return np.asarray(getattr(t, scale).mjd, dtype=float)


def mjd_to_met(mjd, reference: Time, scale: str = "utc") -> np.ndarray:
    """Mission elapsed time (s since ``reference``) of MJD given in time ``scale``.

    The inverse of :func:`met_to_mjd`.
    """
    t = Time(np.asarray(mjd, dtype=float), format="mjd", scale=scale)
    return np.asarray((t - reference).to_value("s"), dtype=float)


class TemporalModel(Model):
    """Base class of temporal models (see the module docstring for conventions).

    Parameters
    ----------
    scale : str
        Time scale of MJD times and of ``t_ref`` (an astropy time scale).
    **params
        Parameter values (numbers in canonical units, quantities or Parameters).
    """

    option_name = "scale"

    def __init__(self, scale: str = "utc", **params: Any) -> None:
        self._set_option(scale, Time.SCALES)
        super().__init__(**params)

    @staticmethod
    def evaluate(time, **values):  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate_integral(self, t_min, t_max, **values):  # pragma: no cover - abstract
        raise NotImplementedError

    def _mjd(self, time) -> Any:
        if isinstance(time, Time):
            return getattr(time, self.scale).mjd
        return time

    def __call__(self, time):
        """Norm at ``time`` (MJD in the model scale, or astropy Time)."""
        return self.evaluate(self._mjd(time), **self.values)

    def integral(self, t_min, t_max):
        """Integral of the norm over ``[t_min, t_max]`` (MJD or Time), in d."""
        return self.evaluate_integral(self._mjd(t_min), self._mjd(t_max), **self.values)

    def mean_norm(self, t_min, t_max, **values) -> float:
        """Time-averaged norm over the intervals ``[t_min[i], t_max[i]]`` (MJD or Time).

        ``values`` override the model's parameter values (for fitters).
        """
        values = {**self.values, **values}
        t_min = np.atleast_1d(np.asarray(self._mjd(t_min), dtype=float))
        t_max = np.atleast_1d(np.asarray(self._mjd(t_max), dtype=float))
        duration = float(np.sum(t_max - t_min))
        if not duration > 0:
            raise ValueError("mean_norm needs intervals of positive total duration")
        return float(np.sum(self.evaluate_integral(t_min, t_max, **values)) / duration)

    def sample_time(
        self, n: int, t_min, t_max, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """Draw ``n`` times (MJD) following the norm inside the intervals ``[t_min, t_max]``.

        Each interval is cut into 4096 cells; a cell is chosen with probability equal to the
        norm's exact integral over it, and the time is uniform within the cell.

        Parameters
        ----------
        n : int
            Number of times.
        t_min, t_max : array_like
            Interval bounds, MJD in the model scale (or astropy Time).
        rng : numpy.random.Generator, int or None
            Random generator or seed.

        Returns
        -------
        numpy.ndarray, shape (n,)
            Sorted times, MJD.
        """
        rng = np.random.default_rng(rng)
        t_min = np.atleast_1d(np.asarray(self._mjd(t_min), dtype=float))
        t_max = np.atleast_1d(np.asarray(self._mjd(t_max), dtype=float))
        if np.any(t_max <= t_min):
            raise ValueError("sample_time needs intervals with t_max > t_min")
        frac = np.linspace(0.0, 1.0, _N_SAMPLE_CELLS + 1)
        edges = t_min[:, None] + (t_max - t_min)[:, None] * frac[None, :]
        lo, hi = edges[:, :-1].ravel(), edges[:, 1:].ravel()
        weights = np.asarray(self.evaluate_integral(lo, hi, **self.values), dtype=float)
        weights = np.clip(weights, 0.0, None)
        if not weights.sum() > 0:
            raise ValueError(
                f"{type(self).__name__}: the norm is zero in every interval, cannot sample"
            )
        cell = rng.choice(weights.size, size=n, p=weights / weights.sum())
        return np.sort(lo[cell] + (hi[cell] - lo[cell]) * rng.random(n))


def _t_ref(value: float = T_REF_DEFAULT, frozen: bool = True) -> Parameter:
    return Parameter("t_ref", value, "d", frozen=frozen)


class ConstantTemporalModel(TemporalModel):
    """Norm 1 at all times (no parameters)."""

    tag = "ConstantTemporalModel"
    short_tag = "const"
    default_parameters = ()

    @staticmethod
    def evaluate(time):
        """Norm (1) at ``time`` (MJD)."""
        return np.ones_like(np.asarray(time, dtype=float))

    @staticmethod
    def evaluate_integral(t_min, t_max):
        """Integral in d."""
        return t_max - t_min


class ExpDecayTemporalModel(TemporalModel):
    r"""Exponential decay :math:`\exp(-(t - t_{ref}) / t_0)`.

    Parameters: ``t0`` (1 d, decay time), ``t_ref`` (MJD 51544, frozen).
    """

    tag = "ExpDecayTemporalModel"
    short_tag = "exp-decay"
    default_parameters = (Parameter("t0", 1.0, "d"), _t_ref())

    @staticmethod
    def evaluate(time, t0, t_ref):
        """Norm at ``time`` (MJD)."""
        return np.exp(-(time - t_ref) / t0)

    @staticmethod
    def evaluate_integral(t_min, t_max, t0, t_ref):
        """Integral in d."""
        return t0 * (np.exp(-(t_min - t_ref) / t0) - np.exp(-(t_max - t_ref) / t0))


class GaussianTemporalModel(TemporalModel):
    r"""Gaussian flare :math:`\exp(-(t - t_{ref})^2 / 2\sigma^2)` (peak norm 1).

    Parameters: ``t_ref`` (MJD 51544, the peak), ``sigma`` (1 d).
    """

    tag = "GaussianTemporalModel"
    short_tag = "gauss"
    default_parameters = (_t_ref(frozen=False), Parameter("sigma", 1.0, "d"))

    @staticmethod
    def evaluate(time, t_ref, sigma):
        """Norm at ``time`` (MJD)."""
        return np.exp(-0.5 * ((time - t_ref) / sigma) ** 2)

    @staticmethod
    def evaluate_integral(t_min, t_max, t_ref, sigma):
        """Integral in d."""
        scale = np.sqrt(2.0) * sigma
        return (
            np.sqrt(np.pi / 2.0)
            * sigma
            * (erf((t_max - t_ref) / scale) - erf((t_min - t_ref) / scale))
        )


class LightCurveTemplateTemporalModel(TemporalModel):
    """Norm tabulated at times, linear in between, zero outside the table.

    Parameters
    ----------
    time : array_like, shape (n,)
        Node times in d relative to ``t_ref`` (or a quantity), strictly increasing, n >= 2.
    norm : array_like, shape (n,)
        Norms at the nodes (>= 0).
    filename : str, optional
        The FITS table the template is (to be) written to when models are serialised.
    t_ref : float or Parameter
        Reference time, MJD (frozen).
    scale : str
        Time scale.
    """

    tag = "LightCurveTemplateTemporalModel"
    short_tag = "template"
    default_parameters = (_t_ref(),)

    def __init__(
        self, time, norm, filename: str | None = None, scale: str = "utc", **params: Any
    ) -> None:
        time = np.array(time.to_value("d") if isinstance(time, u.Quantity) else time, dtype=float)
        norm = np.array(norm, dtype=float)
        if time.ndim != 1 or time.shape != norm.shape or time.size < 2:
            raise ValueError("LightCurveTemplateTemporalModel needs 1D time and norm, n >= 2")
        if np.any(np.diff(time) <= 0):
            raise ValueError("LightCurveTemplateTemporalModel times must increase strictly")
        if not np.all(np.isfinite(norm)) or np.any(norm < 0):
            raise ValueError("LightCurveTemplateTemporalModel norms must be finite and >= 0")
        time.setflags(write=False)
        norm.setflags(write=False)
        seg = 0.5 * (norm[1:] + norm[:-1]) * np.diff(time)
        object.__setattr__(self, "time", time)
        object.__setattr__(self, "norm", norm)
        object.__setattr__(self, "filename", None if filename is None else str(filename))
        object.__setattr__(self, "_cumulative", np.concatenate([[0.0], np.cumsum(seg)]))
        super().__init__(scale=scale, **params)

    @classmethod
    def read(cls, path: str | Path, **kwargs: Any) -> LightCurveTemplateTemporalModel:
        """Read Gammapy's light-curve table (``TIME``, ``NORM``, ``MJDREFI``/``MJDREFF``)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"light-curve template {path} not found")
        with fits.open(path) as hdul:
            tables = [h for h in hdul if isinstance(h, fits.BinTableHDU)]
            if not tables:
                raise ValueError(f"light-curve template {path}: no table HDU")
            hdu = tables[0]
            names = [n.upper() for n in hdu.columns.names]
            if "TIME" not in names or "NORM" not in names:
                raise ValueError(f"light-curve template {path}: needs TIME and NORM columns")
            header = hdu.header
            unit = header.get(f"TUNIT{names.index('TIME') + 1}") or header.get("TIMEUNIT", "d")
            time = u.Quantity(np.asarray(hdu.data["TIME"], float), unit).to_value("d")
            norm = np.asarray(hdu.data["NORM"], dtype=float)
            t_ref = float(header.get("MJDREFI", 0)) + float(header.get("MJDREFF", 0.0))
            if "MJDREFI" not in header and "MJDREF" in header:
                t_ref = float(header["MJDREF"])
            scale = str(header.get("TIMESYS", "utc")).lower()
        kwargs.setdefault("scale", scale)
        kwargs.setdefault("t_ref", t_ref)
        return cls(time, norm, filename=str(path), **kwargs)

    def write(self, path: str | Path, overwrite: bool = False) -> None:
        """Write the table in Gammapy's format (``TIME`` in d relative to ``t_ref``)."""
        t_ref = self.t_ref.value
        header = fits.Header()
        header["MJDREFI"] = int(np.floor(t_ref))
        header["MJDREFF"] = float(t_ref - np.floor(t_ref))
        header["TIMESYS"] = self.scale
        hdu = fits.BinTableHDU.from_columns(
            [
                fits.Column("TIME", "D", unit="d", array=self.time),
                fits.Column("NORM", "D", array=self.norm),
            ],
            header=header,
        )
        hdu.writeto(path, overwrite=overwrite)

    def with_filename(self, filename: str) -> LightCurveTemplateTemporalModel:
        """A copy serialised to ``filename``."""
        new = self.copy()
        object.__setattr__(new, "filename", str(filename))
        return new

    def _extra_state(self) -> tuple:
        return (self.scale, self.time, self.norm)

    def _repr_extra(self) -> str:
        return f"{self.time.size} nodes, scale={self.scale!r}"

    def _norm_at(self, dt: np.ndarray) -> np.ndarray:
        return np.interp(dt, self.time, self.norm, left=0.0, right=0.0)

    def _antiderivative(self, dt: np.ndarray) -> np.ndarray:
        x = np.clip(dt, self.time[0], self.time[-1])
        i = np.clip(np.searchsorted(self.time, x, side="right") - 1, 0, self.time.size - 2)
        part = 0.5 * (self.norm[i] + self._norm_at(x)) * (x - self.time[i])
        return self._cumulative[i] + part

    def evaluate(self, time, t_ref):
        """Norm at ``time`` (MJD)."""
        return apply_elementwise(self._norm_at, time - t_ref)

    def evaluate_integral(self, t_min, t_max, t_ref):
        """Exact integral of the linear interpolation in d."""
        return apply_elementwise(self._antiderivative, t_max - t_ref) - apply_elementwise(
            self._antiderivative, t_min - t_ref
        )
