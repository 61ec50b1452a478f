"""EBL absorption from a user-supplied table: the factor exp(-tau(E, z)) ** alpha_norm.

The table is Gammapy's (the XSPEC "table model" FITS layout the EBL models are distributed
in): HDU ``PARAMETERS`` (column ``VALUE``: the redshift nodes in its first row), HDU
``ENERGIES`` (``ENERG_LO``, ``ENERG_HI`` in keV; the node energy is their geometric mean)
and HDU ``SPECTRA`` (``PARAMVAL``, ``INTPSPEC``: one row of absorption factors per
redshift). Between nodes the absorption is interpolated linearly in (redshift, log E) on
log values and extrapolated linearly outside, then clipped to [0, 1], as Gammapy does.
No table is shipped or downloaded: read one with :func:`read_ebl_table` or build the
model from arrays. Multiply a spectral model by it: ``PowerLaw(...) * ebl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.io import fits
from scipy.interpolate import RegularGridInterpolator

from ._lazy import apply_elementwise
from .parameters import Parameter
from .spectral import SpectralModel

__all__ = ["EBLAbsorptionNorm", "read_ebl_table", "write_ebl_table"]


class EBLAbsorptionNorm(SpectralModel):
    """Dimensionless EBL absorption ``exp(-tau(E, z)) ** alpha_norm`` from a table.

    Parameters
    ----------
    energy : array_like, shape (n_e,)
        Node energies in TeV (or a quantity), strictly increasing.
    param : array_like, shape (n_z,)
        Redshift nodes, strictly increasing.
    values : array_like, shape (n_z, n_e)
        Absorption factors ``exp(-tau)`` in [0, 1].
    filename : str, optional
        The table file the model was read from (written to YAML instead of the arrays).
    redshift : float or Parameter
        Source redshift (default 0.1, frozen).
    alpha_norm : float or Parameter
        Scale of the optical depth (default 1, frozen).
    """

    tag = "EBLAbsorptionNormSpectralModel"
    short_tag = "ebl-norm"
    unit = ""
    default_parameters = (
        Parameter("redshift", 0.1, frozen=True),
        Parameter("alpha_norm", 1.0, frozen=True),
    )

    def __init__(self, energy, param, values, filename: str | None = None, **params: Any) -> None:
        energy = np.array(
            energy.to_value("TeV") if isinstance(energy, u.Quantity) else energy, dtype=float
        )
        param = np.array(param, dtype=float)
        values = np.array(values, dtype=float)
        if energy.ndim != 1 or param.ndim != 1 or values.shape != (param.size, energy.size):
            raise ValueError(
                "EBLAbsorptionNorm needs energy (n_e,), param (n_z,) and values (n_z, n_e); "
                f"got {energy.shape}, {param.shape}, {values.shape}"
            )
        if param.size < 2 or energy.size < 2:
            raise ValueError("EBLAbsorptionNorm needs at least two redshifts and two energies")
        if np.any(np.diff(energy) <= 0) or np.any(energy <= 0) or np.any(np.diff(param) <= 0):
            raise ValueError("EBLAbsorptionNorm energies and redshifts must increase strictly")
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError("EBLAbsorptionNorm absorption values must be finite and >= 0")
        for arr in (energy, param, values):
            arr.setflags(write=False)
        log_values = np.log(np.clip(values, np.finfo(float).tiny, None))
        interp = RegularGridInterpolator(
            (param, np.log(energy)), log_values, bounds_error=False, fill_value=None
        )
        object.__setattr__(self, "energy", energy)
        object.__setattr__(self, "param", param)
        object.__setattr__(self, "table_values", values)
        object.__setattr__(self, "filename", None if filename is None else str(filename))
        object.__setattr__(self, "_interp", interp)
        super().__init__(**params)

    @classmethod
    def read(cls, path: str | Path, **params: Any) -> EBLAbsorptionNorm:
        """Model from a table file (see :func:`read_ebl_table`); ``params`` as the constructor."""
        energy, param, values = read_ebl_table(path)
        return cls(energy, param, values, filename=str(path), **params)

    def with_filename(self, filename: str | None) -> EBLAbsorptionNorm:
        """A copy serialised as a reference to ``filename`` (None: as inline arrays)."""
        new = self.copy()
        object.__setattr__(new, "filename", None if filename is None else str(filename))
        return new

    def _extra_state(self) -> tuple:
        return (self.energy, self.param, self.table_values)

    def _repr_extra(self) -> str:
        return f"table {self.param.size} z x {self.energy.size} E"

    def _absorption(self, energy: np.ndarray, redshift: float) -> np.ndarray:
        points = np.stack(np.broadcast_arrays(np.full(energy.shape, redshift), np.log(energy)))
        out = np.exp(self._interp(points.reshape(2, -1).T)).reshape(energy.shape)
        return np.clip(out, 0.0, 1.0)

    def evaluate(self, energy, redshift, alpha_norm):
        """Absorption factor at ``energy`` (TeV), dimensionless."""
        return apply_elementwise(lambda e: self._absorption(e, redshift) ** alpha_norm, energy)


def read_ebl_table(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read an EBL absorption table in the XSPEC table-model layout.

    Parameters
    ----------
    path : str or Path
        FITS file with HDUs ``PARAMETERS``, ``ENERGIES`` and ``SPECTRA``.

    Returns
    -------
    energy : numpy.ndarray, shape (n_e,)
        Node energies in TeV (geometric mean of ``ENERG_LO`` and ``ENERG_HI``, keV).
    param : numpy.ndarray, shape (n_z,)
        Redshifts (duplicates in the file removed).
    values : numpy.ndarray, shape (n_z, n_e)
        Absorption factors.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"EBL table {path} not found")
    try:
        with fits.open(path) as hdul:
            param_all = np.asarray(hdul["PARAMETERS"].data["VALUE"][0], dtype=float)
            lo = np.asarray(hdul["ENERGIES"].data["ENERG_LO"], dtype=float)
            hi = np.asarray(hdul["ENERGIES"].data["ENERG_HI"], dtype=float)
            spectra = np.asarray(hdul["SPECTRA"].data["INTPSPEC"], dtype=float)
    except KeyError as exc:
        raise ValueError(
            f"EBL table {path}: missing HDU or column ({exc}); expected PARAMETERS/VALUE, "
            "ENERGIES/ENERG_LO,ENERG_HI and SPECTRA/INTPSPEC"
        ) from exc
    param, idx = np.unique(param_all, return_index=True)
    energy_tev = np.sqrt(lo * hi) * 1e-9  # keV -> TeV
    return energy_tev, param, spectra[idx, :]


def write_ebl_table(
    path: str | Path,
    energy_edges: np.ndarray,
    param: np.ndarray,
    values: np.ndarray,
    overwrite: bool = False,
) -> None:
    """Write an absorption table in the layout :func:`read_ebl_table` (and Gammapy) reads.

    Parameters
    ----------
    path : str or Path
        Output FITS file.
    energy_edges : array_like, shape (n_e + 1,)
        Energy bin edges in TeV (nodes are the geometric bin centres).
    param : array_like, shape (n_z,)
        Redshifts.
    values : array_like, shape (n_z, n_e)
        Absorption factors ``exp(-tau)``.
    overwrite : bool
        Replace an existing file.
    """
    edges_kev = np.asarray(energy_edges, dtype=float) * 1e9
    param = np.asarray(param, dtype=float)
    values = np.asarray(values, dtype=float)
    n_z, n_e = values.shape
    if param.shape != (n_z,) or edges_kev.shape != (n_e + 1,):
        raise ValueError("write_ebl_table: shapes of energy_edges, param and values disagree")
    par = fits.BinTableHDU.from_columns(
        [
            fits.Column("NAME", "12A", array=["redshift"]),
            fits.Column("NUMBVALS", "J", array=[n_z]),
            fits.Column("VALUE", f"{n_z}D", array=param[None, :]),
        ],
        name="PARAMETERS",
    )
    energies = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "D", array=edges_kev[:-1]),
            fits.Column("ENERG_HI", "D", array=edges_kev[1:]),
        ],
        name="ENERGIES",
    )
    spectra = fits.BinTableHDU.from_columns(
        [
            fits.Column("PARAMVAL", "D", array=param),
            fits.Column("INTPSPEC", f"{n_e}D", array=values),
        ],
        name="SPECTRA",
    )
    fits.HDUList([fits.PrimaryHDU(), par, energies, spectra]).writeto(path, overwrite=overwrite)
