"""Instruments for the simulator: a toy instrument with analytic IRFs, or IRFs from GADF files.

Whatever their origin, the IRFs the simulator samples from are the *tabulated* ones, in the
xarray layout of :mod:`gammaxr.io.irf_fits` (aeff ``(energy_true, offset)`` m2, edisp
``(energy_true, migra, offset)``, psf ``(energy_true, offset, rad)`` sr-1 or a psf_3gauss
Dataset, bkg ``(energy, offset)`` or ``(energy, fov_lon, fov_lat)`` s-1 MeV-1 sr-1), gathered in
an :class:`IRFSet`. Those same tables are written into the simulated data store, so a
reduction of the store sees exactly the instrument the events were drawn from.

- :class:`ToyInstrument`: analytic IRFs (effective area rising and saturating with energy and
  falling with offset, double-Gaussian PSF widening with offset and at low energy, log-normal
  energy dispersion, power-law background with a threshold roll-off, falling with offset),
  tabulated by :meth:`ToyInstrument.irfs`. Tables are rounded to float32 (what the FITS files
  hold), so written and re-read IRFs are identical to the ones sampled from.
- :func:`read_irfs`: the IRFs of any GADF file (e.g. CTA prod5 files: aeff_2d, edisp_2d,
  psf_3gauss, bkg_3d), found by their ``HDUCLAS4`` (or ``EXTNAME``) keywords.
- :func:`irfs_from_observation`: the IRFs of one run of a :class:`gammaxr.data.DataStore`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from astropy.io import fits
from scipy.special import ndtr

from gammaxr.geom.axes import axis_coords
from gammaxr.io.errors import DL3Error, MissingFileError
from gammaxr.io.gadf_write import irf_to_hdu
from gammaxr.io.irf_fits import hdu_irf_class, read_irf_hdu

__all__ = [
    "IRFSet",
    "ToyInstrument",
    "irfs_from_observation",
    "read_irfs",
]

_DEG2_SR = np.deg2rad(1.0) ** 2
_EXTNAMES = {
    "aeff": "EFFECTIVE AREA",
    "edisp": "ENERGY DISPERSION",
    "psf": "POINT SPREAD FUNCTION",
    "bkg": "BACKGROUND",
}
_DIMS = {
    "aeff": {("energy_true", "offset")},
    "edisp": {("energy_true", "migra", "offset")},
    "psf": {("energy_true", "offset", "rad"), ("energy_true", "offset")},
    "bkg": {("energy", "offset"), ("energy", "fov_lon", "fov_lat")},
}


def _f32(x: Any) -> np.ndarray:
    """Values as stored in a float32 FITS column, back in float64."""
    return np.asarray(x, dtype=np.float32).astype(float)


@dataclass(frozen=True)
class IRFSet:
    """The tabulated IRFs of one instrument (or one run), as the simulator uses them.

    Parameters
    ----------
    aeff : xarray.DataArray
        ``aeff_2d`` table, dims ``(energy_true, offset)``, m2.
    edisp : xarray.DataArray
        ``edisp_2d`` table, dims ``(energy_true, migra, offset)``, density per unit migra.
    psf : xarray.DataArray or xarray.Dataset
        ``psf_table`` DataArray ``(energy_true, offset, rad)`` in sr-1, or ``psf_3gauss``
        parameters (a Dataset over ``(energy_true, offset)``).
    bkg : xarray.DataArray, optional
        ``bkg_2d`` ``(energy, offset)`` or ``bkg_3d`` ``(energy, fov_lon, fov_lat)`` rate in
        s-1 MeV-1 sr-1 (per unit on-time); ``fov_alignment`` attr ``RADEC`` (or
        ``REVERSE_LON_RADEC`` for H.E.S.S. DR1 tables). None: no background can be simulated.
    name : str
        Name of the IRF set (file name of the IRFs in a simulated store).
    """

    aeff: xr.DataArray
    edisp: xr.DataArray
    psf: xr.DataArray | xr.Dataset
    bkg: xr.DataArray | None = None
    name: str = "irf"

    def __post_init__(self) -> None:
        for kind in ("aeff", "edisp", "psf", "bkg"):
            irf = getattr(self, kind)
            if irf is None and kind == "bkg":
                continue
            if not isinstance(irf, (xr.DataArray, xr.Dataset)):
                raise TypeError(f"IRFSet {self.name!r}: {kind} must be an xarray object")
            if not any(set(irf.dims) == set(d) for d in _DIMS[kind]):
                raise ValueError(
                    f"IRFSet {self.name!r}: {kind} has dims {tuple(irf.dims)}, expected one of "
                    f"{sorted(_DIMS[kind])}"
                )

    @property
    def psf_class(self) -> str:
        """``"psf_table"`` or ``"psf_3gauss"``."""
        return "psf_3gauss" if isinstance(self.psf, xr.Dataset) else "psf_table"

    @property
    def bkg_class(self) -> str | None:
        """``"bkg_2d"``, ``"bkg_3d"`` or None."""
        if self.bkg is None:
            return None
        return "bkg_2d" if "offset" in self.bkg.dims else "bkg_3d"

    def hdu_classes(self) -> dict[str, str]:
        """HDU type -> GADF HDU class of the IRFs present (``{"aeff": "aeff_2d", ...}``)."""
        out = {"aeff": "aeff_2d", "edisp": "edisp_2d", "psf": self.psf_class}
        if self.bkg is not None:
            out["bkg"] = self.bkg_class
        return out

    def to_hdus(self, dtype: str = "float32") -> dict[str, fits.BinTableHDU]:
        """GADF HDUs of the IRFs: HDU type -> table (EXTNAMEs ``EFFECTIVE AREA`` ...).

        Parameters
        ----------
        dtype : {"float32", "float64"}
            Column type.
        """
        out = {}
        for hdu_type, irf_class in self.hdu_classes().items():
            irf = getattr(self, hdu_type)
            out[hdu_type] = irf_to_hdu(irf, irf_class, extname=_EXTNAMES[hdu_type], dtype=dtype)
        return out

    def replace(self, **changes: Any) -> IRFSet:
        """A copy with some fields changed (e.g. ``bkg=None`` or ``name="..."``)."""
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- toy instrument


#: Units of the ToyInstrument fields that carry one (floats are taken in these units).
_TOY_UNITS = {
    "aeff_max": "m2",
    "energy_threshold": "TeV",
    "aeff_offset_sigma": "deg",
    "psf_sigma": "deg",
    "psf_sigma_low": "deg",
    "psf_offset_widening": "deg-2",
    "edisp_offset_widening": "deg-2",
    "bkg_rate": "s-1 MeV-1 sr-1",
    "bkg_offset_sigma": "deg",
    "energy_min": "TeV",
    "energy_max": "TeV",
    "offset_max": "deg",
    "offset_bin": "deg",
    "fov_bin": "deg",
    "rad_max": "deg",
    "rad_bin": "deg",
}


@dataclass(frozen=True)
class ToyInstrument:
    """An instrument with analytic IRFs, tabulated in the GADF layout by :meth:`irfs`.

    With ``T(E) = 1 / (1 + (E_th / E) ** threshold_slope)`` the threshold roll-off:

    - effective area ``aeff_max * T(E) * exp(-offset**2 / (2 aeff_offset_sigma**2))``;
    - PSF: two Gaussians holding fractions ``1 - psf_tail_fraction`` and
      ``psf_tail_fraction`` of the events, of widths ``sigma(E, offset)`` and
      ``psf_tail_scale * sigma``, ``sigma = (psf_sigma + psf_sigma_low * sqrt(E_th / E)) *
      (1 + psf_offset_widening * offset**2)``;
    - energy dispersion: ``ln(E_reco / E_true)`` normal with mean
      ``edisp_bias / (1 + E / E_th)`` and width ``(edisp_resolution + edisp_resolution_low *
      sqrt(E_th / E)) * (1 + edisp_offset_widening * offset**2)``;
    - background rate ``bkg_rate * (E / 1 TeV) ** -bkg_index * T(E) *
      exp(-offset**2 / (2 bkg_offset_sigma**2))`` (reco energy, per unit on-time).

    Energies in TeV, angles in deg (offset widenings per deg2).

    Parameters
    ----------
    name : str
        IRF set name.
    aeff_max : float
        Plateau effective area on axis, m2.
    energy_threshold : float
        ``E_th``, TeV: the area is half its plateau there.
    threshold_slope : float
        Steepness of the roll-off below threshold.
    aeff_offset_sigma : float
        Gaussian width of the area's fall with offset, deg.
    psf_sigma, psf_sigma_low : float
        High-energy core width and its low-energy addition (at ``E_th``), deg.
    psf_offset_widening : float
        Relative PSF widening per deg2 of offset.
    psf_tail_fraction, psf_tail_scale : float
        Fraction of events in the wide Gaussian and its width relative to the core
        (``psf_tail_fraction = 0``: a single Gaussian).
    edisp_resolution, edisp_resolution_low : float
        Width of ``ln(E_reco / E_true)`` at high energy and its addition at ``E_th``.
    edisp_bias : float
        ``ln`` bias at low energy (``edisp_bias / 2`` at ``E_th``).
    edisp_offset_widening : float
        Relative resolution widening per deg2 of offset.
    bkg_rate : float
        Background rate at 1 TeV on axis (before the roll-off), s-1 MeV-1 sr-1.
    bkg_index : float
        Background spectral index.
    bkg_offset_sigma : float
        Gaussian width of the background's fall with offset, deg.
    psf_format : {"table", "3gauss"}
        Written as ``psf_table`` or ``psf_3gauss``.
    bkg_format : {"2d", "3d"}
        Written as ``bkg_2d`` (energy, offset) or ``bkg_3d`` (energy, fov_lon, fov_lat).
    energy_min, energy_max : float
        Range of the (true and reco) energy axes, TeV.
    bins_per_decade : int
        Energy bins per decade.
    offset_max, offset_bin : float
        Offset axis 0 .. offset_max in bins of offset_bin, deg (bkg_3d: fov_lon/fov_lat from
        -offset_max to offset_max in bins of ``fov_bin``).
    fov_bin : float
        FoV bin size of a bkg_3d table, deg.
    migra_min, migra_max, migra_bin : float
        Migration axis.
    rad_max, rad_bin : float
        rad axis of a psf_table, deg.
    """

    name: str = "toy"
    aeff_max: float = 1.0e5
    energy_threshold: float = 0.15
    threshold_slope: float = 3.0
    aeff_offset_sigma: float = 2.0
    psf_sigma: float = 0.04
    psf_sigma_low: float = 0.04
    psf_offset_widening: float = 0.05
    psf_tail_fraction: float = 0.2
    psf_tail_scale: float = 2.5
    edisp_resolution: float = 0.08
    edisp_resolution_low: float = 0.08
    edisp_bias: float = 0.1
    edisp_offset_widening: float = 0.03
    bkg_rate: float = 2.0e-5
    bkg_index: float = 2.7
    bkg_offset_sigma: float = 1.5
    psf_format: str = "table"
    bkg_format: str = "2d"
    energy_min: float = 0.05
    energy_max: float = 100.0
    bins_per_decade: int = 8
    offset_max: float = 4.0
    offset_bin: float = 0.25
    fov_bin: float = 0.25
    migra_min: float = 0.2
    migra_max: float = 3.0
    migra_bin: float = 0.01
    rad_max: float = 1.5
    rad_bin: float = 0.005

    def __post_init__(self) -> None:
        from gammaxr.units import to_unit

        # Quantities or strings ("0.1 deg", "2 arcmin") become floats in the documented units
        for field, unit in _TOY_UNITS.items():
            value = getattr(self, field)
            if not isinstance(value, int | float):
                number = to_unit(value, unit, f"ToyInstrument.{field}")
                object.__setattr__(self, field, float(number))
        positive = [
            "aeff_max", "energy_threshold", "threshold_slope", "aeff_offset_sigma", "psf_sigma",
            "psf_tail_scale", "edisp_resolution", "bkg_offset_sigma", "energy_min",
            "bins_per_decade", "offset_max", "offset_bin", "fov_bin", "migra_min", "migra_bin",
            "rad_max", "rad_bin",
        ]  # fmt: skip
        for field in positive:
            value = getattr(self, field)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"ToyInstrument.{field} must be positive, got {value!r}")
        non_negative = [
            "psf_sigma_low", "psf_offset_widening", "edisp_resolution_low",
            "edisp_offset_widening", "bkg_rate", "edisp_bias",
        ]  # fmt: skip
        for field in non_negative:
            value = getattr(self, field)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"ToyInstrument.{field} must be >= 0, got {value!r}")
        if not 0 <= self.psf_tail_fraction < 1:
            raise ValueError("ToyInstrument.psf_tail_fraction must be in [0, 1)")
        if self.energy_max <= self.energy_min or self.migra_max <= self.migra_min:
            raise ValueError("ToyInstrument: energy_max > energy_min and migra_max > migra_min")
        if self.psf_format not in ("table", "3gauss"):
            raise ValueError(f"ToyInstrument.psf_format must be 'table' or '3gauss', got "
                             f"{self.psf_format!r}")  # fmt: skip
        if self.bkg_format not in ("2d", "3d"):
            raise ValueError(f"ToyInstrument.bkg_format must be '2d' or '3d', got "
                             f"{self.bkg_format!r}")  # fmt: skip
        if self.bkg_format == "3d" and self._energy_edges().size - 1 == self._fov_edges().size - 1:
            # the bkg_3d array layout is ambiguous for Gammapy then (see gammaxr.io.gadf_write)
            raise ValueError("ToyInstrument: a bkg_3d needs n_energy != n_fov bins; change fov_bin")

    # ------------------------------------------------------------------ analytic functions
    def threshold(self, energy: np.typing.ArrayLike) -> np.ndarray:
        """Threshold roll-off ``T(E)`` in [0, 1] at energies in TeV."""
        energy = np.asarray(energy, dtype=float)
        return 1.0 / (1.0 + (self.energy_threshold / energy) ** self.threshold_slope)

    def effective_area(self, energy_true, offset) -> np.ndarray:
        """Effective area in m2 at true energies (TeV) and offsets (deg), broadcast."""
        offset = np.asarray(offset, dtype=float)
        fall = np.exp(-0.5 * (offset / self.aeff_offset_sigma) ** 2)
        return self.aeff_max * self.threshold(energy_true) * fall

    def psf_sigma_core(self, energy_true, offset) -> np.ndarray:
        """Width of the PSF core Gaussian in deg."""
        energy_true = np.asarray(energy_true, dtype=float)
        offset = np.asarray(offset, dtype=float)
        low = self.psf_sigma_low * np.sqrt(self.energy_threshold / energy_true)
        return (self.psf_sigma + low) * (1.0 + self.psf_offset_widening * offset**2)

    def psf_containment(self, energy_true, offset, rad) -> np.ndarray:
        """Fraction of events within ``rad`` deg of the true direction (small angles)."""
        s1 = self.psf_sigma_core(energy_true, offset)
        s2 = self.psf_tail_scale * s1
        f = self.psf_tail_fraction
        rad = np.asarray(rad, dtype=float)
        return (1.0 - f) * -np.expm1(-0.5 * (rad / s1) ** 2) + f * -np.expm1(-0.5 * (rad / s2) ** 2)

    def edisp_mu_sigma(self, energy_true, offset) -> tuple[np.ndarray, np.ndarray]:
        """Mean and width of ``ln(E_reco / E_true)``."""
        energy_true = np.asarray(energy_true, dtype=float)
        offset = np.asarray(offset, dtype=float)
        mu = self.edisp_bias / (1.0 + energy_true / self.energy_threshold)
        low = self.edisp_resolution_low * np.sqrt(self.energy_threshold / energy_true)
        sigma = (self.edisp_resolution + low) * (1.0 + self.edisp_offset_widening * offset**2)
        return mu + 0.0 * sigma, sigma + 0.0 * mu

    def background_rate(self, energy, offset) -> np.ndarray:
        """Background rate in s-1 MeV-1 sr-1 at reco energies (TeV) and offsets (deg)."""
        energy = np.asarray(energy, dtype=float)
        offset = np.asarray(offset, dtype=float)
        fall = np.exp(-0.5 * (offset / self.bkg_offset_sigma) ** 2)
        return self.bkg_rate * energy ** (-self.bkg_index) * self.threshold(energy) * fall

    # ------------------------------------------------------------------ tabulation
    def _energy_edges(self) -> np.ndarray:
        n = max(1, round(np.log10(self.energy_max / self.energy_min) * self.bins_per_decade))
        return _f32(np.geomspace(self.energy_min, self.energy_max, n + 1))

    def _offset_edges(self) -> np.ndarray:
        n = max(1, round(self.offset_max / self.offset_bin))
        return _f32(np.linspace(0.0, self.offset_max, n + 1))

    def _fov_edges(self) -> np.ndarray:
        n = max(1, round(self.offset_max / self.fov_bin))
        return _f32(np.linspace(-self.offset_max, self.offset_max, 2 * n + 1))

    def _migra_edges(self) -> np.ndarray:
        n = max(1, round((self.migra_max - self.migra_min) / self.migra_bin))
        return _f32(np.linspace(self.migra_min, self.migra_max, n + 1))

    def _rad_edges(self) -> np.ndarray:
        n = max(1, round(self.rad_max / self.rad_bin))
        return _f32(np.linspace(0.0, self.rad_max, n + 1))

    def irfs(self) -> IRFSet:
        """Tabulate the IRFs (values at bin centres; edisp and PSF bin-averaged).

        Returns
        -------
        IRFSet
            aeff_2d, edisp_2d, psf_table or psf_3gauss and bkg_2d or bkg_3d tables, values
            rounded to float32, named :attr:`name`.
        """
        e_true = axis_coords("energy_true", self._energy_edges(), "TeV", lohi=True)
        e_reco = axis_coords("energy", self._energy_edges(), "TeV", lohi=True)
        offset = axis_coords("offset", self._offset_edges(), "deg", lohi=True)
        et, off = e_true["energy_true"].values, offset["offset"].values
        attrs = {"creator": "gammaxr", "source": f"toy instrument {self.name!r}"}

        aeff = xr.DataArray(
            _f32(self.effective_area(et[:, None], off[None, :])),
            dims=("energy_true", "offset"),
            coords={**e_true, **offset},
            name="aeff",
            attrs={**attrs, "irf_class": "aeff_2d", "units": "m2",
                   "lo_threshold": float(self.energy_threshold), "hi_threshold":
                   float(self.energy_max)},
        )  # fmt: skip

        m_edges = self._migra_edges()
        migra = axis_coords("migra", m_edges, "", lohi=True)
        mu, sigma = self.edisp_mu_sigma(et[:, None, None], off[None, None, :])
        with np.errstate(divide="ignore"):
            z = (np.log(m_edges)[None, :, None] - mu) / sigma
        density = np.diff(ndtr(z), axis=1) / np.diff(m_edges)[None, :, None]
        edisp = xr.DataArray(
            _f32(density),
            dims=("energy_true", "migra", "offset"),
            coords={**e_true, **migra, **offset},
            name="edisp",
            attrs={**attrs, "irf_class": "edisp_2d", "units": ""},
        )
        psf = self._psf_table(e_true, offset, attrs) if self.psf_format == "table" else None
        if psf is None:
            psf = self._psf_3gauss(e_true, offset, attrs)
        bkg = self._bkg(e_reco, offset, attrs)
        return IRFSet(aeff=aeff, edisp=edisp, psf=psf, bkg=bkg, name=self.name)

    def _psf_table(self, e_true, offset, attrs) -> xr.DataArray:
        et, off = e_true["energy_true"].values, offset["offset"].values
        r_edges = self._rad_edges()
        rad = axis_coords("rad", r_edges, "deg", lohi=True)
        cont = self.psf_containment(et[:, None, None], off[None, :, None], r_edges[None, None, :])
        area = np.pi * np.diff(r_edges**2) * _DEG2_SR
        return xr.DataArray(
            _f32(np.diff(cont, axis=-1) / area),
            dims=("energy_true", "offset", "rad"),
            coords={**e_true, **offset, **rad},
            name="psf",
            attrs={**attrs, "irf_class": "psf_table", "units": "sr-1"},
        )

    def _psf_3gauss(self, e_true, offset, attrs) -> xr.Dataset:
        et, off = e_true["energy_true"].values, offset["offset"].values
        s1 = self.psf_sigma_core(et[:, None], off[None, :])
        s2 = self.psf_tail_scale * s1
        f = self.psf_tail_fraction
        # GADF: dP/dOmega = SCALE (g1 + A2 g2 + A3 g3), g_i = exp(-r^2 / 2 s_i^2); the
        # probability in component i is proportional to A_i s_i^2 (A_1 = 1)
        ampl_2 = f / (1.0 - f) * (s1 / s2) ** 2
        scale = 1.0 / (2.0 * np.pi * (s1**2 + ampl_2 * s2**2) * _DEG2_SR)
        dims = ("energy_true", "offset")
        params = {
            "scale": (scale, "sr-1"),
            "sigma_1": (s1, "deg"),
            "ampl_2": (ampl_2 + 0.0 * s1, ""),
            "sigma_2": (s2, "deg"),
            "ampl_3": (0.0 * s1, ""),
            "sigma_3": (s2, "deg"),
        }
        data = {
            k: xr.DataArray(_f32(v), dims=dims, attrs={"units": unit})
            for k, (v, unit) in params.items()
        }
        return xr.Dataset(
            data, coords={**e_true, **offset}, attrs={**attrs, "irf_class": "psf_3gauss"}
        )

    def _bkg(self, e_reco, offset, attrs) -> xr.DataArray:
        e = e_reco["energy"].values
        bkg_attrs = {**attrs, "units": "s-1 MeV-1 sr-1", "fov_alignment": "RADEC"}
        if self.bkg_format == "2d":
            off = offset["offset"].values
            return xr.DataArray(
                _f32(self.background_rate(e[:, None], off[None, :])),
                dims=("energy", "offset"),
                coords={**e_reco, **offset},
                name="bkg",
                attrs={**bkg_attrs, "irf_class": "bkg_2d"},
            )
        fov_edges = self._fov_edges()
        lon = axis_coords("fov_lon", fov_edges, "deg", lohi=True)
        lat = axis_coords("fov_lat", fov_edges, "deg", lohi=True)
        x, y = lon["fov_lon"].values, lat["fov_lat"].values
        radius = np.hypot(x[:, None], y[None, :])
        return xr.DataArray(
            _f32(self.background_rate(e[:, None, None], radius[None])),
            dims=("energy", "fov_lon", "fov_lat"),
            coords={**e_reco, **lon, **lat},
            name="bkg",
            attrs={**bkg_attrs, "irf_class": "bkg_3d"},
        )

    def replace(self, **changes: Any) -> ToyInstrument:
        """A copy with some parameters changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """Names of the constructor parameters."""
        return tuple(f.name for f in dataclasses.fields(cls))


# --------------------------------------------------------------------------- from files


def _class_from_extname(hdu: fits.BinTableHDU) -> str | None:
    """IRF class of an HDU without ``HDUCLAS4``, from its name and columns."""
    name = hdu.name.upper()
    columns = {c.upper() for c in hdu.columns.names}
    if name in ("EFFECTIVE AREA", "AEFF", "EFFECTIVE_AREA"):
        return "aeff_2d"
    if name in ("ENERGY DISPERSION", "EDISP", "ENERGY_DISPERSION"):
        return "edisp_2d"
    if name in ("POINT SPREAD FUNCTION", "PSF", "POINT_SPREAD_FUNCTION"):
        return "psf_3gauss" if "SIGMA_1" in columns else "psf_table"
    if name in ("BACKGROUND", "BKG"):
        return "bkg_3d" if "DETX_LO" in columns else "bkg_2d"
    return None


def read_irfs(
    path: str | os.PathLike, name: str | None = None, hdus: Mapping[str, str] | None = None
) -> IRFSet:
    """Read the IRFs of a GADF file (e.g. a CTA prod5 IRF file) into an :class:`IRFSet`.

    Parameters
    ----------
    path : str or os.PathLike
        FITS file (gzipped or not) holding aeff_2d, edisp_2d, psf_table or psf_3gauss and
        optionally bkg_2d or bkg_3d HDUs.
    name : str, optional
        Name of the IRF set; default the file name without ``.fits[.gz]``.
    hdus : mapping of str to str, optional
        HDU type (``aeff``, ``edisp``, ``psf``, ``bkg``) -> HDU name, for files holding
        several IRFs of one type; by default each HDU's class is taken from its ``HDUCLAS4``
        keyword (else its name and columns) and the first HDU of each type is used.

    Returns
    -------
    IRFSet

    Raises
    ------
    gammaxr.io.errors.MissingFileError
        The file does not exist.
    gammaxr.io.errors.DL3Error
        The file lacks an effective area, energy dispersion or PSF, or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: IRF file not found")
    if name is None:
        name = path.name.split(".fits")[0]
    found: dict[str, Any] = {}
    try:
        with fits.open(path) as hdul:
            for hdu in hdul[1:]:
                if not isinstance(hdu, fits.BinTableHDU):
                    continue
                irf_class = hdu_irf_class(hdu.header) or _class_from_extname(hdu)
                if irf_class is None:
                    continue
                hdu_type = irf_class.split("_")[0]
                wanted = (hdus or {}).get(hdu_type)
                if hdu_type in found or (wanted is not None and hdu.name != wanted.upper()):
                    continue
                irf = read_irf_hdu(hdu, irf_class, f"{path}[{hdu.name}]")
                found[hdu_type] = irf
    except OSError as exc:
        raise DL3Error(f"{path}: cannot read IRF file: {exc}") from exc
    missing = [t for t in ("aeff", "edisp", "psf") if t not in found]
    if missing:
        raise DL3Error(f"{path}: no {', '.join(missing)} IRF HDU in the file")
    return IRFSet(
        aeff=found["aeff"], edisp=found["edisp"], psf=found["psf"], bkg=found.get("bkg"), name=name
    )


def irfs_from_observation(observation, name: str | None = None) -> IRFSet:
    """The IRFs of one run of a data store.

    Parameters
    ----------
    observation : gammaxr.data.Observation
        The run (``store.observation(obs_id)``); its aeff, edisp, psf and (if indexed) bkg
        HDUs are read here.
    name : str, optional
        Name of the IRF set; default ``f"obs_{obs_id}"``.

    Returns
    -------
    IRFSet
        The run's tables; a H.E.S.S. DR1 bkg_3d keeps its ``REVERSE_LON_RADEC`` alignment
        (the simulator and :func:`gammaxr.io.gadf_write.irf_to_hdu` allow for it).
    """
    types = [t for t in ("aeff", "edisp", "psf", "bkg") if t in observation.hdus]
    missing = [t for t in ("aeff", "edisp", "psf") if t not in types]
    if missing:
        raise DL3Error(f"obs_id {observation.obs_id}: no {', '.join(missing)} HDU in the index")
    obs = observation.read(types)
    return IRFSet(
        aeff=obs.aeff,
        edisp=obs.edisp,
        psf=obs.psf,
        bkg=obs.bkg if "bkg" in types else None,
        name=name or f"obs_{observation.obs_id}",
    )
