"""Further spatial models: the shell parametrised by its outer radius (``Shell2``) and the
generalized Gaussian.

Same conventions as :mod:`gammaxr.models.spatial` (deg in the model frame, sr-1,
normalised on the sphere, Gammapy's parameters and profiles, position angle East of
North).
"""

from __future__ import annotations

import numpy as np
from scipy.special import roots_genlaguerre

from .parameters import Parameter
from .spatial import (
    ShellSpatialModel,
    SpatialModel,
    _centre,
    _effective_radius,
    _elongation,
    _pa_integral,
    _sample_pa,
    _sep_from_versine,
)
from .sphere import offset_by, one_minus_cos_separation, position_angle

__all__ = ["GeneralizedGaussianSpatialModel", "Shell2SpatialModel"]


def _radius_and_eta(eta: float, eta_min: float) -> tuple[Parameter, Parameter]:
    """The ``r_0`` (1 deg) and ``eta`` (in ``[eta_min, 1]``) parameters."""
    return Parameter("r_0", 1.0, "deg"), Parameter("eta", eta, min=eta_min, max=1.0)


class Shell2SpatialModel(SpatialModel):
    r"""Projected spherical shell given by its outer radius ``r_0`` and relative width ``eta``.

    The inner radius is :math:`r_0 (1 - \eta)`; the profile is that of
    :class:`~gammaxr.models.ShellSpatialModel` with ``radius = r_0 (1 - eta)`` and
    ``width = r_0 eta``. Parameters: ``lon_0``, ``lat_0`` (deg), ``r_0`` (1 deg),
    ``eta`` (0.2, in (0, 1]).
    """

    tag = "Shell2SpatialModel"
    short_tag = "shell2"
    default_parameters = (*_centre(), *_radius_and_eta(0.2, eta_min=0.02))

    def _validate(self) -> None:
        if not self.r_0.value > 0 or not 0 < self.eta.value <= 1:
            raise ValueError(
                "Shell2SpatialModel needs r_0 > 0 and 0 < eta <= 1, got "
                f"r_0={self.r_0.value}, eta={self.eta.value}"
            )

    def as_shell(self) -> ShellSpatialModel:
        """The same model as a :class:`~gammaxr.models.ShellSpatialModel`."""
        v = self.values
        return ShellSpatialModel(
            frame=self.frame,
            lon_0=v["lon_0"],
            lat_0=v["lat_0"],
            radius=v["r_0"] * (1.0 - v["eta"]),
            width=v["r_0"] * v["eta"],
        )

    @property
    def evaluation_radius(self) -> float:
        return self.r_0.value

    @property
    def bin_size_min(self) -> float:
        return self.r_0.value * self.eta.value / 2.0

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0, r_0, eta):
        """Surface brightness in sr-1 at ``lon``, ``lat`` (deg)."""
        return ShellSpatialModel.evaluate(lon, lat, lon_0, lat_0, r_0 * (1.0 - eta), r_0 * eta)

    def sample(self, n, rng=None):
        return self.as_shell().sample(n, rng)


_N_LAGUERRE = 64


def _radial_integral(r_deg, eta):
    """``int_0^pi exp(-(t / r) ** (1 / eta)) sin t dt`` (r in deg, t in rad), any shape.

    Substituting ``s = (t / r) ** (1 / eta)`` gives a generalized Gauss-Laguerre integral of
    ``r eta sin(r s**eta) / s**eta`` with weight ``s**(2 eta - 1) exp(-s)``: the remaining
    factor is ``r (1 - O(r**2))``, so the rule is exact in the flat limit and accurate to
    machine precision for sources of a few degrees.
    """
    nodes, weights = roots_genlaguerre(_N_LAGUERRE, 2.0 * eta - 1.0)
    r = np.deg2rad(np.asarray(r_deg, dtype=float))[..., None]
    scaled = nodes**eta
    theta = np.minimum(r * scaled, np.pi)
    return r[..., 0] * eta * (weights * np.sin(theta) / scaled).sum(axis=-1)


class GeneralizedGaussianSpatialModel(SpatialModel):
    r"""Generalized Gaussian :math:`\propto \exp(-(\theta / r_{eff})^{1/\eta})`, optionally elongated.

    ``eta = 0.5`` is a Gaussian of sigma :math:`r_0 / \sqrt 2`, ``eta = 1`` a Laplace
    profile, small ``eta`` tends to a disk. :math:`r_{eff}` is the ellipse radius in the
    direction of the point (``r_0`` along the major axis). Normalised on the sphere (Gammapy
    normalises in the flat-sky limit: relative difference of order :math:`(r_0/{\rm rad})^2`).
    Parameters: ``lon_0``, ``lat_0`` (deg), ``r_0`` (1 deg), ``eta`` (0.5, in (0, 1]),
    ``e`` (0, frozen), ``phi`` (0 deg, frozen).
    """

    tag = "GeneralizedGaussianSpatialModel"
    short_tag = "gauss-general"
    default_parameters = (*_centre(), *_radius_and_eta(0.5, eta_min=0.01), *_elongation())

    def _validate(self) -> None:
        v = self.values
        if not v["r_0"] > 0 or not 0 < v["eta"] <= 1 or not 0 <= v["e"] < 1:
            raise ValueError(
                "GeneralizedGaussianSpatialModel needs r_0 > 0, 0 < eta <= 1 and 0 <= e < 1, "
                f"got r_0={v['r_0']}, eta={v['eta']}, e={v['e']}"
            )

    @property
    def evaluation_radius(self) -> float:
        return self.r_0.value * (1.0 + 8.0 * self.eta.value)

    @property
    def bin_size_min(self) -> float:
        return self.r_0.value / (3.0 + 8.0 * self.eta.value) / (self.e.value + 1.0)

    @staticmethod
    def norm(r_0, eta, e, phi) -> float:
        """Normalisation (sr-1) so that the model integrates to 1 over the sphere."""
        if e == 0:
            return float(1.0 / (2.0 * np.pi * _radial_integral(r_0, eta)))
        return 1.0 / _pa_integral(lambda pa: _radial_integral(_effective_radius(r_0, e, pa), eta))

    @staticmethod
    def evaluate(lon, lat, lon_0, lat_0, r_0, eta, e, phi):
        """Surface brightness in sr-1 at ``lon``, ``lat`` (deg)."""
        sep = _sep_from_versine(one_minus_cos_separation(lon, lat, lon_0, lat_0))
        if e == 0:
            r_eff = r_0
        else:
            r_eff = _effective_radius(r_0, e, phi - position_angle(lon_0, lat_0, lon, lat))
        norm = GeneralizedGaussianSpatialModel.norm(r_0, eta, e, phi)
        return norm * np.exp(-((sep / r_eff) ** (1.0 / eta)))

    def sample(self, n, rng=None):
        rng = np.random.default_rng(rng)
        v = self.values
        r_0, eta, e, phi = v["r_0"], v["eta"], v["e"], v["phi"]
        pa = _sample_pa(
            lambda p: _radial_integral(_effective_radius(r_0, e, phi - p), eta), n, rng, e
        )
        r = np.broadcast_to(np.deg2rad(_effective_radius(r_0, e, phi - pa)), (n,))
        # flat-sky radius: s ~ Gamma(2 eta), theta = r s**eta; then accept with
        # sin(theta) / theta to follow the profile on the sphere
        sep = np.empty(n)
        todo = np.arange(n)
        while todo.size:
            theta = r[todo] * rng.gamma(2.0 * eta, size=todo.size) ** eta
            ok = (theta < np.pi) & (rng.random(todo.size) < np.sinc(theta / np.pi))
            sep[todo[ok]] = theta[ok]
            todo = todo[~ok]
        return offset_by(v["lon_0"], v["lat_0"], pa, np.rad2deg(sep))
