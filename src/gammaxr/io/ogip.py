"""OGIP spectra (PHA with its ARF, RMF and BKG files) <-> gammaxr 1D on/off spectrum datasets.

The files are those of Gammapy's ``SpectrumDatasetOnOff.write(format="ogip")`` (and what
XSPEC / Sherpa read). Mapping to a gammaxr spectrum dataset (DESIGN.md):

==========================================  =================================================
OGIP                                        gammaxr
==========================================  =================================================
PHA ``SPECTRUM`` ``COUNTS``, ``EBOUNDS``    ``counts(energy)``, energy bounds (TeV)
PHA ``QUALITY`` (0 / False = good)          ``mask_safe = not QUALITY``
PHA ``BACKSCAL``                            ``acceptance``
PHA ``EXPOSURE`` keyword                    attr ``livetime`` (s)
ARF ``SPECRESP`` (m2) x livetime            ``exposure(energy_true)`` (m2 s), and
                                            ``exposure_irf`` (Gammapy weights the RMF with it)
RMF ``MATRIX`` (grouped channels)           ``edisp(energy_true, energy)``
BKG ``COUNTS``, ``BACKSCAL``                ``counts_off``, ``acceptance_off``
PHA / BKG ``REGION`` tables                 attrs ``on_region`` / ``off_regions`` (DS9 text)
PHA ``GTI``                                 attrs ``gti_start``, ``gti_stop`` (MET s),
                                            ``MJDREFI``, ``MJDREFF``, ``TIMESYS``
PHA ``OBS_ID``                              attr ``name`` (and ``obs_id`` if an integer)
==========================================  =================================================

The ARF, RMF and BKG files are found from the PHA keywords ``ANCRFILE``, ``RESPFILE`` and
``BACKFILE`` (relative to the PHA file); writing names them ``<stem>_arf``, ``<stem>_rmf``,
``<stem>_bkg`` next to the PHA file, as Gammapy does. RMF channel numbers start at the
``TLMIN`` of ``F_CHAN`` (1 when absent, the OGIP default; Gammapy writes 0).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import regions as rg
import xarray as xr
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from gammaxr.geom.axes import axis_coords, axis_lo_hi
from gammaxr.geom.regions import _anchor, _bounding_radius, parse_regions, regions_to_string
from gammaxr.io.gammapy_maps import gti_attrs, gti_hdu

__all__ = ["ogip_filenames", "read_ogip", "write_ogip"]


def ogip_filenames(path: str | os.PathLike) -> dict[str, Path]:
    """The PHA file and the ARF, RMF and BKG files written next to it.

    Parameters
    ----------
    path : str or path-like
        PHA file, e.g. ``pha_obs23523.fits``.

    Returns
    -------
    dict
        ``{"pha": ..., "arf": ..., "rmf": ..., "bkg": ...}`` (``pha_obs23523_arf.fits``...).
    """
    path = Path(path)
    suffix = "".join(path.suffixes)
    stem = path.name[: -len(suffix)] if suffix else path.name
    out = {"pha": path}
    for kind in ("arf", "rmf", "bkg"):
        out[kind] = path.with_name(f"{stem}_{kind}{suffix}")
    return out


# --------------------------------------------------------------------------------- reading


def _companion(pha: Path, header: fits.Header, key: str) -> Path | None:
    name = str(header.get(key, "")).strip()
    if not name or name.lower() == "none":
        return None
    path = Path(name)
    if not path.is_absolute() and not path.exists():
        path = pha.parent / name
    if not path.exists():
        raise FileNotFoundError(f"{pha}: {key} file {name!r} not found (looked in {pha.parent})")
    return path


def _column_or_keyword(hdu: fits.BinTableHDU, name: str, default: float) -> np.ndarray:
    n = len(hdu.data)
    if name in hdu.columns.names:
        return np.asarray(hdu.data[name], dtype=float)
    return np.full(n, float(hdu.header.get(name, default)))


def _ebounds(hdul: fits.HDUList, source: str) -> dict:
    if "EBOUNDS" not in hdul:
        raise ValueError(f"{source}: no EBOUNDS table")
    table = Table.read(hdul["EBOUNDS"])
    unit = table["E_MIN"].unit or u.keV
    lo = u.Quantity(table["E_MIN"], unit).to_value("TeV")
    hi = u.Quantity(table["E_MAX"], unit).to_value("TeV")
    return axis_coords("energy", None, "TeV", lo=lo, hi=hi)


def _regions(hdul: fits.HDUList) -> str:
    """The REGION table of an OGIP file as DS9 text (sky regions), "" if absent."""
    if "REGION" not in hdul:
        return ""
    table = Table.read(hdul["REGION"])
    wcs = WCS(hdul["REGION"].header, naxis=2)
    pixel_regions = rg.Regions.parse(table, format="fits")
    return regions_to_string([r.to_sky(wcs) for r in pixel_regions])


def _rmf_matrix(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """True-energy edges (TeV), the redistribution matrix and the reco axis of an RMF file."""
    with fits.open(path, memmap=False) as hdul:
        name = "MATRIX" if "MATRIX" in hdul else "SPECRESP MATRIX"
        if name not in hdul:
            raise ValueError(f"{path}: no MATRIX table")
        hdu = hdul[name]
        data, names = hdu.data, hdu.columns.names
        offset = int(hdu.header.get(f"TLMIN{names.index('F_CHAN') + 1}", 1))
        n_chan = int(hdu.header["DETCHANS"])
        unit = hdu.columns["ENERG_LO"].unit or "keV"
        lo = u.Quantity(np.asarray(data["ENERG_LO"], float), unit).to_value("TeV")
        hi = u.Quantity(np.asarray(data["ENERG_HI"], float), unit).to_value("TeV")
        matrix = np.zeros((len(data), n_chan))
        for i, row in enumerate(data):
            start = 0
            f_chan, n_ch = np.atleast_1d(row["F_CHAN"]), np.atleast_1d(row["N_CHAN"])
            values = np.atleast_1d(row["MATRIX"])
            for k in range(int(row["N_GRP"])):
                first, count = int(f_chan[k]) - offset, int(n_ch[k])
                matrix[i, first : first + count] = values[start : start + count]
                start += count
        ebounds = _ebounds(hdul, str(path))
    return lo, hi, matrix, ebounds


def read_ogip(path: str | os.PathLike) -> xr.Dataset:
    """Read an OGIP PHA file with its ARF, RMF and BKG files into a spectrum dataset.

    Parameters
    ----------
    path : str or path-like
        The PHA file.

    Returns
    -------
    xarray.Dataset
        1D on/off spectrum dataset (module docstring), numpy-backed.

    Raises
    ------
    ValueError
        If the PHA file has no ``SPECTRUM`` table or no ``EXPOSURE``; FileNotFoundError if a
        file it names is missing.
    """
    pha = Path(path)
    with fits.open(pha, memmap=False) as hdul:
        if "SPECTRUM" not in hdul:
            raise ValueError(f"{pha}: no SPECTRUM table: not an OGIP PHA file")
        spectrum = hdul["SPECTRUM"]
        header = spectrum.header
        if "EXPOSURE" not in header:
            raise ValueError(f"{pha}: no EXPOSURE keyword (livetime)")
        livetime = float(header["EXPOSURE"])
        coords = _ebounds(hdul, str(pha))
        counts = np.asarray(spectrum.data["COUNTS"], dtype=float)
        quality = _column_or_keyword(spectrum, "QUALITY", 0)
        data_vars: dict[str, Any] = {
            "counts": ("energy", counts, {"units": ""}),
            "acceptance": ("energy", _column_or_keyword(spectrum, "BACKSCAL", 1), {"units": ""}),
            "mask_safe": ("energy", quality == 0, {}),
        }
        attrs: dict[str, Any] = {"livetime": livetime, "on_region": _regions(hdul)}
        attrs.update(gti_attrs(hdul))
        obs_id = str(header.get("OBS_ID", "")).strip()
        if obs_id:
            attrs["name"] = obs_id
            if re.fullmatch(r"\d+", obs_id):
                attrs["obs_id"] = int(obs_id)
        files = {key: _companion(pha, header, key) for key in ("ANCRFILE", "RESPFILE")}
        files["BACKFILE"] = _companion(pha, header, "BACKFILE")
    if files["ANCRFILE"] is None:
        raise ValueError(f"{pha}: no ANCRFILE (effective area) named in the header")
    with fits.open(files["ANCRFILE"], memmap=False) as arf:
        table = Table.read(arf["SPECRESP"])
        unit = table["ENERG_LO"].unit or u.keV
        lo = u.Quantity(table["ENERG_LO"], unit).to_value("TeV")
        hi = u.Quantity(table["ENERG_HI"], unit).to_value("TeV")
        area = u.Quantity(table["SPECRESP"], table["SPECRESP"].unit or "cm2").to_value("m2")
    coords.update(axis_coords("energy_true", None, "TeV", lo=lo, hi=hi))
    exposure = np.asarray(area, dtype=float) * livetime
    data_vars["exposure"] = ("energy_true", exposure, {"units": "m2 s"})
    if files["RESPFILE"] is not None:
        rlo, rhi, matrix, ebounds = _rmf_matrix(files["RESPFILE"])
        if not (np.allclose(rlo, lo, rtol=1e-6) and np.allclose(rhi, hi, rtol=1e-6)):
            raise ValueError(f"{files['RESPFILE']}: true-energy bins differ from the ARF's")
        if not np.allclose(ebounds["energy_bounds"].values, coords["energy_bounds"].values):
            raise ValueError(f"{files['RESPFILE']}: EBOUNDS differ from the PHA file's")
        data_vars["edisp"] = (("energy_true", "energy"), matrix, {"units": ""})
        data_vars["exposure_irf"] = ("energy_true", exposure.copy(), {"units": "m2 s"})
    if files["BACKFILE"] is not None:
        with fits.open(files["BACKFILE"], memmap=False) as bkg:
            off = bkg["SPECTRUM"]
            data_vars["counts_off"] = (
                "energy", np.asarray(off.data["COUNTS"], dtype=float), {"units": ""}
            )  # fmt: skip
            data_vars["acceptance_off"] = (
                "energy", _column_or_keyword(off, "BACKSCAL", 1), {"units": ""}
            )  # fmt: skip
            attrs["off_regions"] = _regions(bkg)
            attrs["n_off_regions"] = (
                len(parse_regions(attrs["off_regions"])) if (attrs["off_regions"]) else 0
            )
    attrs["source_file"] = pha.name
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# --------------------------------------------------------------------------------- writing


def _region_hdu(text: str, binsz: float = 0.01) -> fits.BinTableHDU | None:
    """A REGION table: the regions in pixels of a TAN grid of ``binsz`` deg covering them
    (centred on the first region; ``WCSSHAPE`` gives its size, as Gammapy's)."""
    if not text or not text.strip():
        return None
    sky = parse_regions(text)
    centre = _anchor(sky[0]).icrs
    extent = max(
        float(_anchor(r).icrs.separation(centre).deg) + (_bounding_radius(r) or 0.0) for r in sky
    )
    npix = 2 * int(np.ceil(extent / binsz)) + 2
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [centre.ra.deg, centre.dec.deg]
    wcs.wcs.cdelt = [-binsz, binsz]
    wcs.wcs.crpix = [(npix + 1) / 2, (npix + 1) / 2]
    wcs.wcs.radesys = "ICRS"
    pixel = rg.Regions([r.to_pixel(wcs) for r in sky])
    hdu = fits.BinTableHDU(pixel.serialize(format="fits"), name="REGION")
    hdu.header.update(wcs.to_header())
    hdu.header["WCSSHAPE"] = f"({npix},{npix})"
    return hdu


def _spectrum_hdu(counts, quality, backscal, meta: dict) -> fits.BinTableHDU:
    counts = np.asarray(counts, dtype=float)
    integral = np.all(np.isfinite(counts)) and np.all(counts == np.round(counts))
    columns = [
        fits.Column("CHANNEL", "I", array=np.arange(counts.size)),
        fits.Column("COUNTS", "J" if integral else "D", array=counts),
        fits.Column("QUALITY", "L", array=np.asarray(quality, bool)),
        fits.Column("BACKSCAL", "D", array=np.asarray(backscal, dtype=float)),
    ]
    hdu = fits.BinTableHDU.from_columns(columns, name="SPECTRUM")
    for key, value in meta.items():
        hdu.header[key] = value
    return hdu


def _ebounds_hdu(lo: np.ndarray, hi: np.ndarray) -> fits.BinTableHDU:
    columns = [
        fits.Column("CHANNEL", "I", array=np.arange(lo.size)),
        fits.Column("E_MIN", "D", unit="TeV", array=lo),
        fits.Column("E_MAX", "D", unit="TeV", array=hi),
    ]
    hdu = fits.BinTableHDU.from_columns(columns, name="EBOUNDS")
    hdu.header.update(
        {"CHANTYPE": "PHA", "DETCHANS": lo.size, "HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE"}
    )
    hdu.header.update({"HDUCLAS2": "EBOUNDS", "HDUVERS": "1.2.0"})
    return hdu


def _matrix_hdu(elo, ehi, matrix: np.ndarray) -> fits.BinTableHDU:
    """RMF MATRIX with one channel group per row (the non-zero span)."""
    n_grp, f_chan, n_chan, values = [], [], [], []
    for row in matrix:
        nonzero = np.flatnonzero(row)
        if nonzero.size == 0:
            n_grp.append(0)
            f_chan.append(np.array([0], np.int16))
            n_chan.append(np.array([0], np.int16))
            values.append(np.zeros(0, np.float32))
            continue
        first, last = int(nonzero[0]), int(nonzero[-1]) + 1
        n_grp.append(1)
        f_chan.append(np.array([first], np.int16))
        n_chan.append(np.array([last - first], np.int16))
        values.append(row[first:last].astype(np.float32))
    columns = [
        fits.Column("ENERG_LO", "E", unit="TeV", array=elo),
        fits.Column("ENERG_HI", "E", unit="TeV", array=ehi),
        fits.Column("N_GRP", "I", array=np.array(n_grp)),
        fits.Column("F_CHAN", "PI()", array=f_chan),
        fits.Column("N_CHAN", "PI()", array=n_chan),
        fits.Column("MATRIX", "PE()", array=values),
    ]
    hdu = fits.BinTableHDU.from_columns(columns, name="MATRIX")
    hdu.header.update({"CHANTYPE": "PHA", "HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE"})
    hdu.header.update({"HDUCLAS2": "RSP_MATRIX", "DETCHANS": matrix.shape[1], "TLMIN4": 0})
    return hdu


def write_ogip(ds: xr.Dataset, path: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Write a 1D on/off spectrum dataset as OGIP PHA, ARF, RMF and BKG files.

    Parameters
    ----------
    ds : xarray.Dataset
        One spectrum dataset (no ``obs_id`` dim) with ``counts(energy)``,
        ``exposure(energy_true)`` and a ``livetime`` attr (s); optional ``edisp``,
        ``counts_off`` / ``acceptance`` / ``acceptance_off``, ``mask_safe``, attrs
        ``on_region`` / ``off_regions`` and GTIs. Computed here.
    path : str or path-like
        The PHA file; the others go next to it (:func:`ogip_filenames`).
    overwrite : bool
        Replace existing files.

    Returns
    -------
    list of pathlib.Path
        The files written. Gammapy 2.1 reads them with ``SpectrumDatasetOnOff.read``.

    Raises
    ------
    ValueError
        If the dataset has an ``obs_id`` dim, no ``livetime`` attr or misses a variable.
    FileExistsError
        If a file exists and ``overwrite`` is False.
    """
    if "obs_id" in ds.dims:
        raise ValueError(
            "dataset has an 'obs_id' dim: write one run (ds.sel(obs_id=...)) or the stack"
        )
    for var in ("counts", "exposure"):
        if var not in ds:
            raise ValueError(f"an OGIP spectrum needs {var!r}; the dataset has {list(ds)}")
    livetime = ds.attrs.get("livetime", ds.attrs.get("livetime_total"))
    if livetime is None or not np.isfinite(float(livetime)) or float(livetime) <= 0:
        raise ValueError("an OGIP spectrum needs the livetime: set ds.attrs['livetime'] (s)")
    livetime = float(livetime)
    ds = ds.load()
    names = ogip_filenames(path)
    for file in names.values():
        if file.exists() and not overwrite:
            raise FileExistsError(f"{file} exists (use overwrite=True)")
    n_e = ds.sizes["energy"]
    mask = ds["mask_safe"].values if "mask_safe" in ds else np.ones(n_e, bool)
    lo, hi = (np.asarray(a, float) for a in axis_lo_hi(ds, "energy"))
    meta = {"EXPOSURE": livetime, "OBS_ID": str(ds.attrs.get("name", ds.attrs.get("obs_id", "")))}
    meta.update({"ANCRFILE": names["arf"].name, "HDUCLASS": "OGIP", "HDUCLAS1": "SPECTRUM"})
    meta.update({"HDUCLAS3": "COUNT", "HDUCLAS4": "TYPE:1", "HDUVERS": "1.2.1"})
    meta.update({"POISSERR": True, "CHANTYPE": "PHA", "DETCHANS": n_e, "GROUPING": 0})
    meta["AREASCAL"] = 1
    if "counts_off" in ds:
        meta["BACKFILE"] = names["bkg"].name
    if "edisp" in ds:
        meta["RESPFILE"] = names["rmf"].name
    acceptance = ds["acceptance"].values if "acceptance" in ds else np.ones(n_e)
    written = []

    def write(hdus: list, file: Path) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        fits.HDUList([fits.PrimaryHDU(), *[h for h in hdus if h is not None]]).writeto(
            file, overwrite=overwrite
        )
        written.append(file)

    pha = _spectrum_hdu(ds["counts"].values, ~mask, acceptance, {**meta, "HDUCLAS2": "TOTAL"})
    region = _region_hdu(ds.attrs.get("on_region", ""))
    write([pha, _ebounds_hdu(lo, hi), region, gti_hdu(ds.attrs)], names["pha"])
    tlo, thi = (np.asarray(a, float) for a in axis_lo_hi(ds, "energy_true"))
    area = ds["exposure"].values / livetime
    columns = [
        fits.Column("ENERG_LO", "D", unit="TeV", array=tlo),
        fits.Column("ENERG_HI", "D", unit="TeV", array=thi),
        fits.Column("SPECRESP", "D", unit="m2", array=area),
    ]
    arf = fits.BinTableHDU.from_columns(columns, name="SPECRESP")
    arf.header.update({"HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE", "HDUCLAS2": "SPECRESP"})
    write([arf], names["arf"])
    if "counts_off" in ds:
        off_acc = ds["acceptance_off"].values if "acceptance_off" in ds else np.ones(n_e)
        bkg = _spectrum_hdu(ds["counts_off"].values, ~mask, off_acc, {**meta, "HDUCLAS2": "BKG"})
        region = _region_hdu(ds.attrs.get("off_regions", ""))
        write([bkg, _ebounds_hdu(lo, hi), region], names["bkg"])
    if "edisp" in ds:
        matrix = ds["edisp"].transpose("energy_true", "energy").values
        write([_matrix_hdu(tlo, thi, matrix), _ebounds_hdu(lo, hi)], names["rmf"])
    return written
