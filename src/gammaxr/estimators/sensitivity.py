"""Differential sensitivity of a spectrum dataset: the weakest flux detectable per energy bin.

In every reco-energy bin the minimum excess ``s`` is the largest of

- the excess whose on/off significance (Li & Ma / wstat, :func:`gammaxr.stats.wstat_sqrt_ts`)
  is ``n_sigma``, with on counts ``alpha n_off + s``;
- ``gamma_min`` counts;
- ``bkg_syst_fraction`` of the background ``alpha n_off`` (systematic uncertainty of the
  background);

and the sensitivity is the flux of an assumed spectral shape (default a power law of index 2)
whose predicted signal counts in the bin equal ``s``: with ``npred(E)`` the signal counts of
the shape, ``dN/dE_min(E) = s / npred(E) * dN/dE(E)`` at the bin centre ``E``. This follows
Gammapy 2.1's ``SensitivityEstimator`` (same defaults, same criteria).

A dataset with ``counts_off`` uses its off counts and ``alpha = acceptance / acceptance_off``;
one with only a ``background`` (an expected background, e.g. from IRFs) uses
``n_off = background / alpha`` with the ``alpha`` given (Gammapy's sensitivity tutorial builds
its on/off dataset from the background this way, with ``alpha = 0.2``).

::

    from gammaxr.estimators import sensitivity
    table = sensitivity(ds)                     # or ds.gamma.sensitivity()
    table["e2dnde"]                             # erg cm-2 s-1 per reco-energy bin
"""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr

from gammaxr.fit import npred
from gammaxr.models import PowerLaw, SkyModel, SpectralModel
from gammaxr.stats import wstat_n_sig_matching_significance

__all__ = ["CRITERIA", "TEV_TO_ERG", "minimum_excess", "sensitivity"]

#: erg per TeV.
TEV_TO_ERG = float((1 * u.TeV).to_value(u.erg))
#: What limits the sensitivity in a bin.
CRITERIA = ("significance", "gamma", "bkg")


def minimum_excess(
    n_off: Any,
    alpha: Any,
    n_sigma: float = 5.0,
    gamma_min: float = 10.0,
    bkg_syst_fraction: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum excess per bin and the condition that sets it.

    Parameters
    ----------
    n_off, alpha : array_like
        Off counts and the on/off exposure ratio (> 0).
    n_sigma : float
        Significance the excess must reach.
    gamma_min : float
        Minimum number of signal counts.
    bkg_syst_fraction : float
        Minimum excess as a fraction of the background ``alpha * n_off``.

    Returns
    -------
    excess : numpy.ndarray
        Signal counts.
    criterion : numpy.ndarray of str
        ``"significance"``, ``"gamma"`` or ``"bkg"`` (the largest of the three conditions;
        ``"gamma"`` wins a tie with the significance, ``"bkg"`` wins any tie it is in).
    """
    n_off, alpha = np.broadcast_arrays(np.asarray(n_off, float), np.asarray(alpha, float))
    background = alpha * n_off
    significance = np.asarray(wstat_n_sig_matching_significance(n_off, alpha, n_sigma), float)
    gamma = np.full(background.shape, float(gamma_min))
    syst = bkg_syst_fraction * background
    excess = np.fmax(np.fmax(significance, gamma), syst)
    criterion = np.where(
        excess == syst, "bkg", np.where(excess == gamma, "gamma", "significance")
    ).astype("U12")
    return excess, criterion


def _on_off(ds: xr.Dataset, alpha: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(n_off, alpha) per reco bin of a spectrum dataset."""
    if "counts_off" in ds:
        for var in ("acceptance", "acceptance_off"):
            if var not in ds:
                raise ValueError(f"on/off dataset has counts_off but no {var!r}")
        acc_off = ds["acceptance_off"].values
        ratio = np.divide(
            ds["acceptance"].values, acc_off, out=np.zeros(acc_off.shape), where=acc_off > 0
        )
        return np.broadcast_to(ds["counts_off"].values, ratio.shape), ratio
    if "background" not in ds:
        raise ValueError("sensitivity needs 'counts_off' (on/off) or a 'background' variable")
    if alpha is None or not alpha > 0:
        raise ValueError(
            f"a dataset without counts_off needs alpha > 0 (off/on exposure ratio), got {alpha}"
        )
    background = ds["background"].values
    return background / alpha, np.full(background.shape, float(alpha))


def sensitivity(
    ds: xr.Dataset,
    spectral_model: SpectralModel | None = None,
    *,
    n_sigma: float = 5.0,
    gamma_min: float = 10.0,
    bkg_syst_fraction: float = 0.05,
    alpha: float | None = 0.2,
) -> xr.Dataset:
    """Differential sensitivity per reco-energy bin of a 1D spectrum dataset.

    A compute boundary: the (small, 1D) dataset is loaded, in one compute if dask-backed.

    Parameters
    ----------
    ds : xarray.Dataset
        Spectrum dataset (dims ``energy``, ``energy_true``): ``exposure(energy_true)`` [m2 s],
        optional ``edisp(energy_true, energy)``, and either ``counts_off``, ``acceptance``,
        ``acceptance_off`` (on/off) or ``background`` (expected counts in the on region).
        Bins outside ``mask_safe`` give NaN.
    spectral_model : SpectralModel, optional
        Assumed spectral shape (its normalisation does not matter); default a power law of
        index 2.
    n_sigma : float
        Significance to reach.
    gamma_min : float
        Minimum number of signal counts.
    bkg_syst_fraction : float
        Minimum signal as a fraction of the background counts.
    alpha : float, optional
        On/off exposure ratio for a dataset without ``counts_off`` (ignored otherwise).

    Returns
    -------
    xarray.Dataset
        Dim ``energy`` (bin centres and bounds of ``ds``): ``e2dnde`` [erg cm-2 s-1] and
        ``dnde`` [cm-2 s-1 TeV-1] at the bin centre, ``excess`` (minimum signal counts),
        ``background`` (``alpha n_off``), ``criterion`` (``"significance"``, ``"gamma"``,
        ``"bkg"``); attrs ``n_sigma``, ``gamma_min``, ``bkg_syst_fraction``, ``spectral_model``.

    Raises
    ------
    ValueError
        If the dataset is a map dataset, or has neither off counts nor a background.
    """
    if "lat" in ds.dims or "lon" in ds.dims:
        raise ValueError("sensitivity needs a 1D spectrum dataset (dims energy, energy_true)")
    if "obs_id" in ds.dims:
        raise ValueError("sensitivity needs one spectrum dataset: stack the runs first")
    if spectral_model is None:
        spectral_model = PowerLaw(index=2.0, amplitude="1e-12 cm-2 s-1 TeV-1")
    ds = ds.compute()  # the compute boundary: one compute for a dask-backed dataset
    n_off, ratio = _on_off(ds, alpha)
    excess, criterion = minimum_excess(n_off, ratio, n_sigma, gamma_min, bkg_syst_fraction)
    shape = SkyModel(spectral_model, name="sensitivity")
    zeros = xr.zeros_like(ds["energy"], dtype=float)
    keep = ("exposure", "edisp")
    signal_ds = ds.drop_vars([v for v in ds.data_vars if v not in keep]).assign(
        counts=zeros, background=zeros
    )
    signal = npred(signal_ds, shape, kind="signal").values
    energy = ds["energy"].values
    with np.errstate(divide="ignore", invalid="ignore"):
        dnde = excess / signal * np.asarray(spectral_model(energy), float)
    valid = signal > 0
    if "mask_safe" in ds:
        valid &= ds["mask_safe"].values.astype(bool)
    dnde = np.where(valid, dnde, np.nan)
    coords = {k: v for k, v in ds.coords.items() if set(v.dims) <= {"energy", "bnds"}}
    return xr.Dataset(
        {
            "e2dnde": ("energy", dnde * energy**2 * TEV_TO_ERG, {"units": "erg cm-2 s-1"}),
            "dnde": ("energy", dnde, {"units": "cm-2 s-1 TeV-1"}),
            "excess": ("energy", excess, {"units": ""}),
            "background": ("energy", ratio * n_off, {"units": ""}),
            "criterion": ("energy", criterion),
        },
        coords=coords,
        attrs={
            "n_sigma": float(n_sigma),
            "gamma_min": float(gamma_min),
            "bkg_syst_fraction": float(bkg_syst_fraction),
            "spectral_model": repr(spectral_model),
        },
    )
