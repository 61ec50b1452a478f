"""Flux points and light curves in the gadf-sed format (ECSV or FITS) <-> gammaxr SED datasets.

gammaxr's estimators (:func:`gammaxr.estimators.flux_points.flux_points`,
:func:`gammaxr.estimators.light_curve.light_curve`) return an SED dataset: dim ``energy``
(and ``time_bin`` for light curves) with ``norm``-type variables, the reference fluxes
``ref_dnde`` / ``ref_e2dnde`` / ``ref_flux`` / ``ref_eflux`` and the four SED quantities
``dnde``, ``e2dnde``, ``flux``, ``eflux`` (with ``_err``, ``_errn``, ``_errp``, ``_ul``). A
gadf-sed table has one row per energy bin (per time bin, with one column cell per energy bin,
for Gammapy's ``"lightcurve"`` format) and the columns of one SED type (``SED_TYPE`` keyword):

- ``likelihood``: ``ref_dnde``, ``ref_flux``, ``ref_eflux``, ``norm``, ``norm_err``...,
  optionally ``norm_scan`` / ``stat_scan`` (read into dim ``scan``);
- ``dnde``, ``e2dnde``, ``flux``, ``eflux``: that quantity and its errors / limits in units.

Reading converts every unit to gammaxr's (TeV, cm-2 s-1 TeV-1, TeV cm-2 s-1, cm-2 s-1). A
non-likelihood table is turned into norms with a reference spectrum, as Gammapy does: the
``reference_model`` given, else Gammapy's default (a power law of index 2 and amplitude
1e-12 cm-2 s-1 TeV-1 at 1 TeV); all four SED quantities are then derived from the norms.
Columns with one value per dataset (``counts``, ``npred``, ``npred_excess``) get a
``dataset`` dim when they hold several, else are squeezed. ``UL_CONF`` becomes the
``n_sigma_ul`` attr. Light-curve times ``time_min`` / ``time_max`` are MJD (TT).

Writing takes ``sed_type`` (default ``"likelihood"``, the complete form), writes ECSV for a
``.ecsv`` path and FITS (HDU ``FLUXPOINTS``) otherwise; Gammapy 2.1 reads both with
``FluxPoints.read``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.table import Table
from scipy import stats

from gammaxr.geom.axes import axis_coords, axis_lo_hi

__all__ = ["SED_TYPES", "read_flux_points", "write_flux_points"]

#: gadf-sed SED types.
SED_TYPES = ("likelihood", "dnde", "e2dnde", "flux", "eflux")
#: Units of the SED quantities (as :data:`gammaxr.estimators.flux_points.SED_UNITS`).
_UNITS = {
    "dnde": "cm-2 s-1 TeV-1",
    "e2dnde": "TeV cm-2 s-1",
    "flux": "cm-2 s-1",
    "eflux": "TeV cm-2 s-1",
}
_SUFFIXES = ("", "_err", "_errn", "_errp", "_ul")
_STAT_COLUMNS = ("ts", "sqrt_ts", "npred", "npred_excess", "stat", "stat_null", "is_ul")
_STAT_COLUMNS += ("counts", "success")
_PER_DATASET = ("npred", "npred_excess", "counts")
_TIME_COLUMNS = ("time_min", "time_max")
#: Gammapy's reference spectrum for non-likelihood tables without a reference model.
DEFAULT_REFERENCE = {"index": 2.0, "amplitude": 1e-12, "reference": 1.0}


# --------------------------------------------------------------------------------- reading


def _sed_type(table: Table, source: str) -> str:
    sed_type = table.meta.get("SED_TYPE")
    if sed_type is None:
        for name in ("norm", "e2dnde", "dnde", "flux", "eflux"):
            if name in table.colnames:
                sed_type = "likelihood" if name == "norm" else name
                break
    if sed_type not in SED_TYPES:
        raise ValueError(f"{source}: unknown or missing SED_TYPE {sed_type!r}; one of {SED_TYPES}")
    return str(sed_type)


def _values(table: Table, name: str, unit: str | None, light_curve: bool) -> np.ndarray:
    """A column as numpy (native float64 or bool), masked cells NaN / False, in ``unit``."""
    column = table[name]
    data = (
        np.ma.filled(np.ma.asarray(column), np.nan)
        if column.dtype.kind == "f"
        else (np.ma.filled(np.ma.asarray(column), False))
    )
    if unit is not None and column.unit is not None:
        data = u.Quantity(data, column.unit).to_value(unit)
    data = np.asarray(data)
    return data.astype(np.float64) if data.dtype.kind == "f" else data


def _reference_fluxes(model: Any, e_min: np.ndarray, e_max: np.ndarray) -> dict:
    """ref_dnde / ref_e2dnde / ref_flux / ref_eflux of a spectral model over the bins."""
    from gammaxr.estimators.flux_points import _reference_values

    ref = _reference_values(model, e_min, e_max)
    return {f"ref_{k}": ref[k] for k in _UNITS}


def _default_reference():
    from gammaxr.models import PowerLaw

    p = DEFAULT_REFERENCE
    return PowerLaw(
        index=p["index"], amplitude=f"{p['amplitude']} cm-2 s-1 TeV-1", reference=p["reference"]
    )


def read_flux_points(
    path: str | os.PathLike, *, sed_type: str | None = None, reference_model: Any = None
) -> xr.Dataset:
    """Read gadf-sed flux points or a Gammapy light curve (ECSV or FITS).

    Parameters
    ----------
    path : str or path-like
        The file (``.ecsv``, or FITS with a ``FLUXPOINTS`` table).
    sed_type : {"likelihood", "dnde", "e2dnde", "flux", "eflux"}, optional
        Overrides the ``SED_TYPE`` keyword (guessed from the columns without it).
    reference_model : gammaxr.models.SpectralModel or SkyModel, optional
        Reference spectrum that turns non-likelihood tables into norms (module docstring).

    Returns
    -------
    xarray.Dataset
        SED dataset with dims ``(energy,)`` or ``(time_bin, energy)`` (module docstring).
    """
    path = Path(path)
    source = str(path)
    if path.name.endswith(".ecsv"):
        table = Table.read(path, format="ascii.ecsv")
    else:
        with fits.open(path, memmap=False) as hdul:
            name = "FLUXPOINTS" if "FLUXPOINTS" in hdul else 1
            table = Table.read(hdul[name])
    sed_type = sed_type or _sed_type(table, source)
    light_curve = "time_min" in table.colnames
    for col in ("e_min", "e_max"):
        if col not in table.colnames:
            raise ValueError(f"{source}: no {col!r} column: not a gadf-sed table")
    e_min = _values(table, "e_min", "TeV", light_curve)
    e_max = _values(table, "e_max", "TeV", light_curve)
    if light_curve:
        e_min, e_max = e_min[0].ravel(), e_max[0].ravel()
        dims: tuple[str, ...] = ("time_bin", "energy")
    else:
        dims = ("energy",)
    contiguous = np.allclose(e_max[:-1], e_min[1:], rtol=1e-9)
    if contiguous:
        coords = dict(axis_coords("energy", np.append(e_min, e_max[-1]), "TeV"))
    else:
        coords = dict(axis_coords("energy", None, "TeV", lo=e_min, hi=e_max))
    if "e_ref" in table.colnames:
        e_ref = _values(table, "e_ref", "TeV", light_curve)
        e_ref = e_ref[0].ravel() if light_curve else e_ref
    else:
        e_ref = np.sqrt(e_min * e_max)
    coords["e_ref"] = ("energy", e_ref, {"units": "TeV"})
    if light_curve:
        n_t = len(table)
        coords["time_bin"] = ("time_bin", np.arange(n_t))
        for col in _TIME_COLUMNS:
            coords[col] = ("time_bin", np.asarray(table[col], float),
                           {"units": "d", "format": "mjd", "scale": "tt"})  # fmt: skip
    shape = (len(table), e_min.size) if light_curve else (e_min.size,)
    data: dict[str, Any] = {}

    def add(name: str, values: np.ndarray, unit: str) -> None:
        values = (
            values.reshape(*shape, -1) if values.size != np.prod(shape) else (values.reshape(shape))
        )
        if values.ndim > len(shape):
            if values.shape[-1] == 1:
                values = values[..., 0]
            else:
                data[name] = ((*dims, "dataset" if name in _PER_DATASET else "scan"), values,
                              {"units": unit})  # fmt: skip
                return
        data[name] = (dims, values, {"units": unit})

    if sed_type == "likelihood":
        refs = {f"ref_{k}": _values(table, f"ref_{k}", _UNITS[k], light_curve)
                for k in ("dnde", "flux", "eflux") if f"ref_{k}" in table.colnames}  # fmt: skip
        if "ref_dnde" not in refs:
            raise ValueError(f"{source}: a likelihood table needs ref_dnde")
        refs = {k: (v[0].ravel() if light_curve else v) for k, v in refs.items()}
        refs["ref_e2dnde"] = refs["ref_dnde"] * e_ref**2
        norms = {f"norm{s}": _values(table, f"norm{s}", None, light_curve)
                 for s in _SUFFIXES if f"norm{s}" in table.colnames}  # fmt: skip
    else:
        model = reference_model if reference_model is not None else _default_reference()
        model = getattr(model, "spectral", model)
        refs = _reference_fluxes(model, e_min, e_max)
        ref = refs[f"ref_{sed_type}"]
        norms = {f"norm{s}": _values(table, f"{sed_type}{s}", _UNITS[sed_type], light_curve) / ref
                 for s in _SUFFIXES if f"{sed_type}{s}" in table.colnames}  # fmt: skip
    for name, values in norms.items():
        add(name, np.asarray(values, float), "")
    for name in ("norm_scan", "stat_scan"):
        if name in table.colnames:
            add(name, _values(table, name, None, light_curve).astype(float), "")
    for name in _STAT_COLUMNS:
        if name in table.colnames:
            add(name, _values(table, name, None, light_curve), "")
    for key, unit in _UNITS.items():
        if f"ref_{key}" in refs:
            data[f"ref_{key}"] = ("energy", np.asarray(refs[f"ref_{key}"], float), {"units": unit})
            for suffix in _SUFFIXES:
                if f"norm{suffix}" in data:
                    norm = data[f"norm{suffix}"][1]
                    data[f"{key}{suffix}"] = (dims, norm * refs[f"ref_{key}"], {"units": unit})
    attrs: dict[str, Any] = {"sed_type_init": sed_type, "source_file": path.name}
    conf = table.meta.get("UL_CONF")
    if conf:
        attrs["n_sigma_ul"] = float(np.round(stats.norm.isf(0.5 * (1 - float(conf))), 1))
    if sed_type != "likelihood":
        from gammaxr.models import Models, SkyModel, models_to_yaml

        attrs["reference_model"] = models_to_yaml(Models([SkyModel(model, name="reference")]))
    return xr.Dataset(data, coords=coords, attrs=attrs)


# --------------------------------------------------------------------------------- writing


def _ul_conf(n_sigma_ul: float) -> float:
    return float(np.round(1 - 2 * stats.norm.sf(n_sigma_ul), 7))


def write_flux_points(
    fp: xr.Dataset,
    path: str | os.PathLike,
    *,
    sed_type: str = "likelihood",
    overwrite: bool = False,
) -> Path:
    """Write an SED dataset as a gadf-sed table (ECSV for ``.ecsv``, else FITS).

    Parameters
    ----------
    fp : xarray.Dataset
        Flux points (dim ``energy``) or a light curve (dims ``time_bin``, ``energy``, with
        ``time_min``/``time_max`` in MJD); computed here.
    path : str or path-like
        Output file.
    sed_type : {"likelihood", "dnde", "e2dnde", "flux", "eflux"}
        Columns to write (``likelihood``: norms and reference fluxes).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        For an unknown ``sed_type``, missing variables or a light curve without MJD times.
    FileExistsError
        If the file exists and ``overwrite`` is False.
    """
    path = Path(path)
    if sed_type not in SED_TYPES:
        raise ValueError(f"sed_type must be one of {SED_TYPES}, got {sed_type!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    fp = fp.load()
    light_curve = "time_bin" in fp.dims
    if light_curve and "time_min" not in fp.coords:
        raise ValueError("light curve without time_min/time_max (MJD): give time_reference")
    lo, hi = (np.asarray(a, float) for a in axis_lo_hi(fp, "energy"))
    e_ref = np.asarray(fp["e_ref"].values if "e_ref" in fp.coords else np.sqrt(lo * hi), float)
    table = Table()

    def column(values: np.ndarray, unit: str | None = None, per_energy: bool = True) -> Any:
        values = np.asarray(values)
        if light_curve and per_energy and values.ndim == 1:  # energy-only: one row per time
            values = np.broadcast_to(values, (fp.sizes["time_bin"], values.size))
        return u.Quantity(values, unit) if unit else values

    def variable(name: str) -> np.ndarray:
        var = fp[name]
        order = [d for d in ("time_bin", "energy") if d in var.dims]
        return var.transpose(*order, ...).values

    if light_curve:
        for name in _TIME_COLUMNS:
            table[name] = np.asarray(fp[name].values, float)
    table["e_ref"] = column(e_ref, "TeV")
    table["e_min"] = column(lo, "TeV")
    table["e_max"] = column(hi, "TeV")
    if sed_type == "likelihood":
        names = ["ref_dnde", "ref_flux", "ref_eflux"] + [f"norm{s}" for s in _SUFFIXES]
    else:
        names = [f"{sed_type}{s}" for s in _SUFFIXES]
    names += ["norm_scan", "stat_scan"] if sed_type == "likelihood" else []
    names += list(_STAT_COLUMNS)
    missing = [n for n in names[:2] if n not in fp]
    if missing:
        raise ValueError(f"the SED dataset has no {missing} to write as {sed_type!r}")
    for name in names:
        if name not in fp:
            continue
        unit = fp[name].attrs.get("units") or None
        values = column(variable(name), unit)
        if name in _PER_DATASET and "dataset" not in fp[name].dims:
            values = values[..., None]  # Gammapy: one cell per dataset
        table[name] = values
    table.meta["SED_TYPE"] = sed_type
    table.meta["UL_CONF"] = _ul_conf(float(fp.attrs.get("n_sigma_ul", 2.0)))
    if light_curve:
        table.meta.update({"TIMESYS": "tt", "TIMEUNIT": "d", "MJDREFI": 0, "MJDREFF": 0.0})
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".ecsv"):
        table.write(path, format="ascii.ecsv", overwrite=overwrite)
    else:
        hdu = fits.table_to_hdu(table)
        hdu.name = "FLUXPOINTS"
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=overwrite)
    return path
