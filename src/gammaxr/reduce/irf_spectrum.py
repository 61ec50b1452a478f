"""Expected 1D spectrum datasets from IRFs alone (no events): for sensitivity and planning.

:func:`irf_spectrum_dataset` gives what a run of ``livetime`` seconds pointed at ``pointing``
would expect in the on region of a :class:`~gammaxr.reduce.spectrum.SpectrumSpec`, with the
same computations as the reduction of real runs (:mod:`gammaxr.reduce.spectrum`):

- ``exposure(energy_true)`` [m2 s]: effective area at the on-region centre's offset times
  ``livetime`` (times the PSF containment within the on circle if the spec asks for it);
- ``edisp(energy_true, energy)``: the energy-dispersion kernel at that offset;
- ``background(energy)``: the background IRF integrated over the on region and the reco bins,
  times ``livetime``;
- ``counts`` zero and ``mask_safe`` true in every bin (no data, no safe-mask cut: choose the
  energy range with the edges).

Gammapy makes the same dataset with ``Observation.create`` and ``SpectrumDatasetMaker``
(its CTA sensitivity tutorial); :func:`gammaxr.estimators.sensitivity` turns it into a
sensitivity curve.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr

from gammaxr.geom.regions import _anchor
from gammaxr.geom.sky import to_skycoord
from gammaxr.irf import edisp_kernel
from gammaxr.reduce.maps import fill_missing_along_energy
from gammaxr.reduce.spectrum import (
    SpectrumSpec,
    _region_background,
    _region_exposure,
    spectrum_layout,
)

__all__ = ["irf_spectrum_dataset"]


@dataclass(frozen=True)
class _ExpectedRun:
    """The parts of a read run that the spectrum computations use."""

    aeff: xr.DataArray
    edisp: xr.DataArray
    psf: Any
    pointing: Any
    livetime: float


def irf_spectrum_dataset(
    irfs: Any,
    spec: SpectrumSpec,
    pointing: Any,
    livetime: float,
    *,
    frame: str = "icrs",
) -> xr.Dataset:
    """Expected spectrum dataset of a run from its IRFs (module docstring).

    Parameters
    ----------
    irfs : object with ``aeff``, ``edisp``, ``psf``, ``bkg``
        IRF tables in the layout of :mod:`gammaxr.io.irf_fits`, e.g.
        :func:`gammaxr.simulate.read_irfs` of a CTA prod5 file (``bkg`` is needed).
    spec : SpectrumSpec
        On region (circle for the containment correction), energy edges,
        ``containment_correction``, ``region_binsz`` and ``background_oversampling``
        (the other fields, for off regions and safe masks, are not used).
    pointing : SkyCoord or (lon, lat)
        Pointing position (deg in ``frame`` for a pair).
    livetime : float
        Observation time, s (dead-time free: the background is also scaled by it).
    frame : str
        Frame of a ``(lon, lat)`` pointing.

    Returns
    -------
    xarray.Dataset
        ``counts``, ``exposure``, ``exposure_irf``, ``edisp``, ``background`` and
        ``mask_safe`` as in :func:`gammaxr.reduce.spectrum.spectrum_layout`; attrs: the
        spec's, ``livetime``, ``offset_deg`` and the pointing (``ra_pnt``, ``dec_pnt``).

    Raises
    ------
    ValueError
        If ``livetime`` is not positive or the IRFs have no background.
    """
    if not livetime > 0:
        raise ValueError(f"livetime must be a positive number of seconds, got {livetime}")
    if getattr(irfs, "bkg", None) is None:
        raise ValueError("the IRFs have no background table: an expected spectrum needs one")
    pointing = to_skycoord(pointing, frame).icrs
    region = spec.region
    offset = float(_anchor(region).separation(pointing).to_value(u.deg))
    run = _ExpectedRun(irfs.aeff, irfs.edisp, irfs.psf, pointing, float(livetime))
    exposure_irf, exposure = _region_exposure(run, spec, offset)
    bkg = fill_missing_along_energy(irfs.bkg)
    n_e = len(spec.energy_edges) - 1
    arrays = {
        "counts": np.zeros(n_e),
        "background": _region_background(bkg, region, pointing, float(livetime), spec),
        "exposure": exposure,
        "exposure_irf": exposure_irf,
        "edisp": np.asarray(edisp_kernel(irfs.edisp, offset, spec.energy_true, spec.energy)),
        "mask_safe": np.ones(n_e, bool),
    }
    layout = spectrum_layout(replace(spec, maps=("exposure", "edisp", "background")))
    data_vars = {n: (layout[n][0], a, layout[n][3]) for n, a in arrays.items()}
    return xr.Dataset(data_vars, coords=spec.coords(), attrs=spec.attrs()).assign_attrs(
        livetime=float(livetime),
        offset_deg=offset,
        ra_pnt=float(pointing.ra.deg),
        dec_pnt=float(pointing.dec.deg),
    )
