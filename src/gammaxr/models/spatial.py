"""Spatial models: surface brightness on the sphere in sr-1, normalised to 1 over the sky.

Conventions (the contract with the predictor and the simulator):

- positions are in degrees in the model's ``frame`` (``"icrs"`` or ``"galactic"``), the
  frame of its ``lon_0``/``lat_0``; ``evaluate(lon, lat, **values)`` is a pure vectorised
  function (numpy, dask or xarray arrays) returning sr-1; parameter values are scalars;
- every model is normalised exactly on the sphere (not in the small-angle approximation):
  the Gaussian and the disk integrate to 1 whatever their size, eccentricity or edge width.
  Shapes follow Gammapy's definitions (same parameters, same profiles), so fitted values
  carry over; Gammapy normalises the elongated Gaussian and the shell in the flat-sky
  limit and the disk without its smooth edge, so tiny normalisation differences of order
  (size in rad)^2 or edge_width^2 remain for large sources;
- elongated models (``e > 0``) have semi-major axis ``sigma``/``r_0`` along position angle
  ``phi``, counted from North (increasing latitude) towards East (increasing longitude), as
  Gammapy's "counter-clockwise from North" on a sky image; the semi-minor axis is
  ``major * sqrt(1 - e**2)`` and the radius in direction ``pa`` is the ellipse's
  ``a b / sqrt((a sin(phi - pa))^2 + (b cos(phi - pa))^2)``;
- ``sample(n, rng)`` draws positions from the distribution (exactly in the radial
  direction; for elongated models the position angle comes from a 4096-cell inverse CDF);
- ``integrate_pixels(lon, lat, frame)`` integrates the model over the pixels of a regular
  lon/lat grid (see :mod:`gammaxr.models.pixels`), oversampling pixels larger than
  ``bin_size_min`` and evaluating only within ``evaluation_radius`` of the centre.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import erfc, erfinv, struve

from gammaxr.units import to_unit

from .parameters import Model, Parameter
from .pixels import integrate_pixels
from .sphere import FRAMES, offset_by, one_minus_cos_separation, position_angle, transform_lonlat

__all__ = [
    "DiskSpatialModel",
    "GaussianSpatialModel",
    "PointSpatialModel",
    "ShellSpatialModel",
    "SpatialModel",
]

#: Gaussian sigma of a smooth disk edge per unit of edge width (95 % -> 5 % over the width).
EDGE_SIGMA_PER_WIDTH = 1.0 / (2.0 * np.sqrt(2.0) * erfinv(0.9))
_N_PA_NORM = 512  # position-angle nodes of the normalisation integral of elongated models
_N_PA_SAMPLE = 4096  # position-angle cells of the sampler of elongated models


def _centre() -> tuple[Parameter, Parameter]:
    """The ``lon_0`` and ``lat_0`` (deg) parameters of the model centre."""
    return Parameter("lon_0", 0.0, "deg"), Parameter("lat_0", 0.0, "deg", min=-90.0, max=90.0)


def _elongation() -> tuple[Parameter, Parameter]:
    """The frozen ``e`` (eccentricity) and ``phi`` (deg, major axis East of North) parameters."""
    return (
        Parameter("e", 0.0, min=0.0, max=1.0, frozen=True),
        Parameter("phi", 0.0, "deg", min=-180.0, max=180.0, frozen=True),
    )


def _effective_radius(major, e, dphi_deg):
    """Radius (units of ``major``) of an ellipse in the direction ``dphi`` from its major axis."""
    minor = major * np.sqrt(1.0 - e**2)
    dphi = np.deg2rad(dphi_deg)
    return major * minor / np.hypot(major * np.sin(dphi), minor * np.cos(dphi))


def _pa_integral(func) -> float:
    """``int_0^2pi func(pa) dpa`` for a smooth periodic ``func`` of pa in deg (trapezoid)."""
    pa = np.linspace(0.0, 360.0, _N_PA_NORM, endpoint=False)
    return float(2.0 * np.pi * np.mean(func(pa)))


def _sample_pa(weight, n: int, rng: np.random.Generator, e: float) -> np.ndarray:
    """Position angles (deg) drawn with density proportional to ``weight(pa)``.

    Uniform (``weight`` not called) for a circular model, eccentricity ``e == 0``.
    """
    if e == 0:
        return 360.0 * rng.random(n)
    edges = np.linspace(0.0, 360.0, _N_PA_SAMPLE + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w = weight(centres)
    cell = rng.choice(_N_PA_SAMPLE, size=n, p=w / w.sum())
    return edges[cell] + (edges[1] - edges[0]) * rng.random(n)


def _sep_from_versine(versine):
    """Separation in deg from ``1 - cos(sep)`` (stable at small angles)."""
    return np.rad2deg(2.0 * np.arcsin(np.sqrt(np.clip(0.5 * versine, 0.0, 1.0))))


class SpatialModel(Model):
    """Base class of spatial models (see the module docstring for conventions).

    Parameters
    ----------
    frame : {"icrs", "galactic"}
        Frame of ``lon_0``/``lat_0`` and of the coordinates ``evaluate`` takes.
    **params
        Parameter values (numbers in canonical units, quantities or Parameters).
    """

    unit: str = "sr-1"
    is_point: bool = False
    option_name = "frame"

    def __init__(self, frame: str = "icrs", **params: Any) -> None:
        self._set_option(str(frame).lower(), FRAMES)
        super().__init__(**params)

    @property
    def position(self) -> tuple[float, float]:
        """``(lon_0, lat_0)`` in deg in the model frame."""
        return self.lon_0.value, self.lat_0.value

    @property
    def evaluation_radius(self) -> float:
        """Radius (deg) outside which the model is negligible (< 1e-5 of its flux)."""
        raise NotImplementedError

    def integral_over_sphere(self) -> float:
        """Integral of the model over the whole sphere (1: models are normalised)."""
        return 1.0

    @property
    def bin_size_min(self) -> float:
        """Largest pixel size (deg) at which evaluating at pixel centres is accurate."""
        raise NotImplementedError

    @staticmethod
    def evaluate(lon, lat, **values):  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, lon, lat, frame: str | None = None):
        """Surface brightness in sr-1 at ``lon``, ``lat`` (deg, in ``frame``; default model's).

        ``lon`` and ``lat`` may also be astropy quantities or strings in any angle unit.
        """
        lon, lat = to_unit(lon, "deg", "lon"), to_unit(lat, "deg", "lat")
        if frame is not None and frame != self.frame:
            lon, lat = transform_lonlat(np.asarray(lon), np.asarray(lat), frame, self.frame)
        return self.evaluate(lon, lat, **self.values)

    def sample(
        self, n: int, rng: np.random.Generator | int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` positions from the model.

        Parameters
        ----------
        n : int
            Number of positions.
        rng : numpy.random.Generator, int or None
            Random generator or seed.

        Returns
        -------
        lon, lat : numpy.ndarray, shape (n,)
            Positions in deg in the model frame, ``lon`` in [0, 360).
        """
        raise NotImplementedError

    def integrate_pixels(
        self,
        lon,
        lat,
        frame: str,
        oversampling: int | None = None,
        max_oversampling: int = 10,
    ) -> np.ndarray:
        """Fraction of the model's flux in each pixel of a regular lon/lat grid.

        See :func:`gammaxr.models.pixels.integrate_pixels` for the parameters; returns an
        array of shape ``(lat.size, lon.size)`` summing to at most 1.
        """
        return integrate_pixels(
            self, lon, lat, frame, oversampling=oversampling, max_oversampling=max_oversampling
        )


class PointSpatialModel(SpatialModel):
    """Point source at ``(lon_0, lat_0)``.

    A point has no surface brightness: use :meth:`integrate_pixels` (which spreads the
    flux over the 4 nearest pixels with bilinear weights, preserving the centroid so that
    a position fit is smooth) or :meth:`sample`.
    """

    tag = "PointSpatialModel"
    short_tag = "point"
    is_point = True
    default_parameters = _centre()

    @property
    def evaluation_radius(self) -> float:
        return 0.0

    @property
    def bin_size_min(self) -> float:
        return np.inf

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0):
        """Not defined for a point: raises TypeError (use integrate_pixels or sample)."""
        raise TypeError(
            "a point source has no surface brightness; use integrate_pixels() or sample()"
        )

    def sample(self, n, rng=None):
        lon = np.full(n, np.mod(self.lon_0.value, 360.0))
        return lon, np.full(n, self.lat_0.value)


class GaussianSpatialModel(SpatialModel):
    r"""Gaussian on the sphere, optionally elongated.

    :math:`f \propto \exp(-(1 - \cos\theta) / (2 (1 - \cos\sigma_{eff})))`, which is
    :math:`\exp(-\theta^2 / 2\sigma_{eff}^2)` at small angles, with
    :math:`\sigma_{eff}` the ellipse radius in the direction of the point
    (:math:`\sigma` along the major axis). Parameters: ``lon_0``, ``lat_0`` (deg),
    ``sigma`` (1 deg, semi-major axis), ``e`` (0, eccentricity, frozen), ``phi``
    (0 deg, position angle of the major axis East of North, frozen).
    """

    tag = "GaussianSpatialModel"
    short_tag = "gauss"
    default_parameters = (
        *_centre(),
        Parameter("sigma", 1.0, "deg", min=0.0),
        *_elongation(),
    )

    def _validate(self) -> None:
        if not self.sigma.value > 0 or not 0 <= self.e.value < 1:
            raise ValueError(
                f"GaussianSpatialModel needs sigma > 0 and 0 <= e < 1, got "
                f"sigma={self.sigma.value}, e={self.e.value}"
            )

    @property
    def evaluation_radius(self) -> float:
        return 5.0 * self.sigma.value

    @property
    def bin_size_min(self) -> float:
        return self.sigma.value * np.sqrt(1.0 - self.e.value**2) / 3.0

    @staticmethod
    def _versine_scale(sigma, e, dphi):
        """``1 - cos(sigma_eff)`` in the direction ``dphi`` (deg) from the major axis."""
        r = np.deg2rad(_effective_radius(sigma, e, dphi))
        return 2.0 * np.sin(0.5 * r) ** 2

    @staticmethod
    def norm(sigma, e, phi) -> float:
        """Normalisation (sr-1) so that the model integrates to 1 over the sphere."""

        def cap(a):  # int_0^pi exp(-(1 - cos t) / 2a) sin t dt
            return -2.0 * a * np.expm1(-1.0 / a)

        if e == 0:
            return 1.0 / (2.0 * np.pi * cap(2.0 * np.sin(0.5 * np.deg2rad(sigma)) ** 2))
        return 1.0 / _pa_integral(lambda pa: cap(GaussianSpatialModel._versine_scale(sigma, e, pa)))

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0, sigma, e, phi):
        """Surface brightness in sr-1 at ``lon``, ``lat`` (deg)."""
        versine = one_minus_cos_separation(lon, lat, lon_0, lat_0)
        if e == 0:
            a = 2.0 * np.sin(0.5 * np.deg2rad(sigma)) ** 2
        else:
            pa = position_angle(lon_0, lat_0, lon, lat)
            a = GaussianSpatialModel._versine_scale(sigma, e, phi - pa)
        return GaussianSpatialModel.norm(sigma, e, phi) * np.exp(-0.5 * versine / a)

    def sample(self, n, rng=None):
        rng = np.random.default_rng(rng)
        v = self.values
        sigma, e, phi = v["sigma"], v["e"], v["phi"]

        def weight(pa):
            a = self._versine_scale(sigma, e, phi - pa)
            return -a * np.expm1(-1.0 / a)

        pa = _sample_pa(weight, n, rng, e)
        a = self._versine_scale(sigma, e, phi - pa)
        # 1 - cos(theta) follows an exponential of scale 2a truncated to [0, 2]
        versine = -2.0 * a * np.log1p(rng.random(n) * np.expm1(-1.0 / a))
        return offset_by(v["lon_0"], v["lat_0"], pa, _sep_from_versine(versine))


def _smooth_cap(r, s):
    """``int_0^pi Phi((r - t) / s) sin t dt`` for radius ``r`` and edge sigma ``s`` (rad).

    Equals ``E[1 - cos max(X, 0)]`` for ``X ~ N(r, s^2)``; closed form with a complex erfc.
    """
    r, s = np.broadcast_arrays(np.asarray(r, float), np.asarray(s, float))
    hard = 1.0 - np.cos(r)
    s_safe = np.where(s > 0, s, 1.0)
    below = 0.5 * erfc(r / (np.sqrt(2.0) * s_safe))  # P(X < 0)
    tail = (
        np.exp(1j * r - 0.5 * s_safe**2) * 0.5 * erfc((r + 1j * s_safe**2) / (np.sqrt(2) * s_safe))
    )
    smooth = 1.0 - np.cos(r) * np.exp(-0.5 * s_safe**2) - (below - tail.real)
    return np.where(s > 0, smooth, hard)


class DiskSpatialModel(SpatialModel):
    r"""Uniform disk (or ellipse) with an optional smooth edge.

    Inside the (elliptical) radius the brightness is constant; the edge falls from 95 % to
    5 % over ``edge_width * r_eff`` (a Gaussian CDF, as Gammapy's erf edge). Parameters:
    ``lon_0``, ``lat_0`` (deg), ``r_0`` (1 deg, semi-major axis), ``e`` (0, frozen),
    ``phi`` (0 deg, frozen), ``edge_width`` (0.01, fraction of the radius, frozen).
    """

    tag = "DiskSpatialModel"
    short_tag = "disk"
    default_parameters = (
        *_centre(),
        Parameter("r_0", 1.0, "deg", min=0.0),
        *_elongation(),
        Parameter("edge_width", 0.01, min=0.0, max=1.0, frozen=True),
    )

    def _validate(self) -> None:
        v = self.values
        if not v["r_0"] > 0 or not 0 <= v["e"] < 1 or not 0 <= v["edge_width"] <= 1:
            raise ValueError(
                "DiskSpatialModel needs r_0 > 0, 0 <= e < 1 and 0 <= edge_width <= 1, got "
                f"r_0={v['r_0']}, e={v['e']}, edge_width={v['edge_width']}"
            )

    @property
    def evaluation_radius(self) -> float:
        v = self.values
        return v["r_0"] * (1.0 + 5.0 * EDGE_SIGMA_PER_WIDTH * v["edge_width"]) * 1.01

    @property
    def bin_size_min(self) -> float:
        return self.r_0.value * np.sqrt(1.0 - self.e.value**2) / 10.0

    @staticmethod
    def _radius_and_edge(r_0, e, edge_width, dphi):
        """Radius and edge sigma (deg) in direction ``dphi`` from the major axis."""
        r = r_0 if e == 0 else _effective_radius(r_0, e, dphi)
        return r, r * edge_width * EDGE_SIGMA_PER_WIDTH

    @staticmethod
    def norm(r_0, e, phi, edge_width) -> float:
        """Normalisation (sr-1) that makes this disk profile integrate to 1 over the sphere.

        :meth:`evaluate` uses it with ``edge_width = 0`` (Gammapy's convention), so a
        smooth-edged disk integrates to ``norm(..., 0) / norm(..., edge_width)``; see
        :meth:`integral_over_sphere`.
        """

        def cap(pa):
            r, s = DiskSpatialModel._radius_and_edge(r_0, e, edge_width, pa)
            return _smooth_cap(np.deg2rad(r), np.deg2rad(s))

        if e == 0:
            return float(1.0 / (2.0 * np.pi * cap(0.0)))
        return 1.0 / _pa_integral(cap)

    def integral_over_sphere(self) -> float:
        """Integral of the model over the whole sphere (1 for a hard edge, a little more
        with a smooth edge, as in Gammapy)."""
        v = self.values
        return self.norm(v["r_0"], v["e"], v["phi"], 0.0) / self.norm(
            v["r_0"], v["e"], v["phi"], v["edge_width"]
        )

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0, r_0, e, phi, edge_width):
        """Surface brightness in sr-1 at ``lon``, ``lat`` (deg)."""
        sep = _sep_from_versine(one_minus_cos_separation(lon, lat, lon_0, lat_0))
        dphi = 0.0 if e == 0 else phi - position_angle(lon_0, lat_0, lon, lat)
        r, s = DiskSpatialModel._radius_and_edge(r_0, e, edge_width, dphi)
        if edge_width == 0:
            inside = 1.0 * (sep <= r)
        else:
            inside = 0.5 * erfc((sep - r) / (np.sqrt(2.0) * s))
        # Gammapy 2.1's normalisation: that of the hard-edged disk, so the values equal
        # Gammapy's; the smooth edge makes the integral norm(edge 0) / norm(edge_width)
        # (1 + 1e-7 at the default 0.01, 1.0009 at 0.1): see docs/conventions.md
        return DiskSpatialModel.norm(r_0, e, phi, 0.0) * inside

    def sample(self, n, rng=None):
        rng = np.random.default_rng(rng)
        v = self.values
        r_0, e, phi, width = v["r_0"], v["e"], v["phi"], v["edge_width"]

        def weight(pa):
            r, s = self._radius_and_edge(r_0, e, width, phi - pa)
            return _smooth_cap(np.deg2rad(r), np.deg2rad(s))

        pa = _sample_pa(weight, n, rng, e)
        r, s = self._radius_and_edge(r_0, e, width, phi - pa)
        r, s = np.broadcast_to(np.deg2rad(r), (n,)), np.broadcast_to(np.deg2rad(s), (n,))
        # The edge profile is a mixture of hard caps of radius X ~ N(r, s^2) weighted by
        # their solid angle 1 - cos X: draw X by rejection, then a point uniform in the cap.
        cap_radius = r.copy()
        todo = np.flatnonzero(s > 0)
        while todo.size:
            x_max = np.minimum(r[todo] + 8.0 * s[todo], np.pi)
            x = r[todo] + s[todo] * rng.standard_normal(todo.size)
            accept_p = (1.0 - np.cos(np.clip(x, 0.0, np.pi))) / (1.0 - np.cos(x_max))
            ok = (x > 0) & (x < x_max) & (rng.random(todo.size) < accept_p)
            cap_radius[todo[ok]] = x[ok]
            todo = todo[~ok]
        versine = rng.random(n) * 2.0 * np.sin(0.5 * cap_radius) ** 2
        return offset_by(v["lon_0"], v["lat_0"], pa, _sep_from_versine(versine))


def _shell_profile_integral(radius):
    """``int_0^R sqrt(R^2 - t^2) sin t dt = (pi R / 2) H_1(R)`` (Struve function), R in rad."""
    return 0.5 * np.pi * radius * struve(1, radius)


class ShellSpatialModel(SpatialModel):
    r"""Projected uniformly emitting spherical shell.

    The profile is the line-of-sight length through a shell of inner radius ``radius``
    and outer radius ``radius + width``: :math:`\sqrt{r_{out}^2 - \theta^2} -
    \sqrt{r_{in}^2 - \theta^2}` inside :math:`r_{in}` and :math:`\sqrt{r_{out}^2 -
    \theta^2}` between the radii (as Gammapy), normalised on the sphere. Parameters:
    ``lon_0``, ``lat_0`` (deg), ``radius`` (1 deg), ``width`` (0.2 deg).
    """

    tag = "ShellSpatialModel"
    short_tag = "shell"
    default_parameters = (
        *_centre(),
        Parameter("radius", 1.0, "deg"),
        Parameter("width", 0.2, "deg"),
    )

    def _validate(self) -> None:
        if not self.radius.value >= 0 or not self.width.value > 0:
            raise ValueError(
                "ShellSpatialModel needs radius >= 0 and width > 0, got "
                f"radius={self.radius.value}, width={self.width.value}"
            )

    @property
    def evaluation_radius(self) -> float:
        return self.radius.value + self.width.value

    @property
    def bin_size_min(self) -> float:
        return self.width.value / 2.0

    @staticmethod
    def norm(radius, width) -> float:
        """Normalisation so that the model integrates to 1 over the sphere (rad-3)."""
        r_in, r_out = np.deg2rad(radius), np.deg2rad(radius + width)
        total = _shell_profile_integral(r_out) - _shell_profile_integral(r_in)
        return float(1.0 / (2.0 * np.pi * total))

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0, radius, width):
        """Surface brightness in sr-1 at ``lon``, ``lat`` (deg)."""
        sep = np.deg2rad(_sep_from_versine(one_minus_cos_separation(lon, lat, lon_0, lat_0)))
        r_in, r_out = np.deg2rad(radius), np.deg2rad(radius + width)
        outer = np.sqrt(np.maximum(r_out**2 - sep**2, 0.0))
        inner = np.sqrt(np.maximum(r_in**2 - sep**2, 0.0))
        return ShellSpatialModel.norm(radius, width) * (outer - inner)

    def sample(self, n, rng=None):
        rng = np.random.default_rng(rng)
        v = self.values
        r_in, r_out = np.deg2rad(v["radius"]), np.deg2rad(v["radius"] + v["width"])
        # Project points uniform in the 3D shell volume (flat-sky profile * theta), then
        # accept with sin(theta)/theta to get the profile on the sphere.
        sep = np.empty(n)
        todo = np.arange(n)
        while todo.size:
            r3 = r_in**3 + (r_out**3 - r_in**3) * rng.random(todo.size)
            mu = 2.0 * rng.random(todo.size) - 1.0
            rho = np.cbrt(r3) * np.sqrt(1.0 - mu**2)
            ok = rng.random(todo.size) < np.sinc(rho / np.pi)
            sep[todo[ok]] = rho[ok]
            todo = todo[~ok]
        pa = 360.0 * rng.random(n)
        return offset_by(v["lon_0"], v["lat_0"], pa, np.rad2deg(sep))
