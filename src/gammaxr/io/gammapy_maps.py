"""Gammapy ``MapDataset`` / ``MapDatasetOnOff`` FITS files <-> gammaxr map datasets.

Gammapy writes a map dataset as one FITS file with an image HDU (and a ``*_BANDS`` table)
per map. The mapping to the gammaxr data model (DESIGN.md) is:

================================  ==========================================================
Gammapy HDU                       gammaxr variable
================================  ==========================================================
``COUNTS``, ``BACKGROUND``        ``counts``, ``background`` (energy, lat, lon)
``EXPOSURE``                      ``exposure`` (energy_true, lat, lon), m2 s
``MASK_SAFE``, ``MASK_FIT``       ``mask_safe``, ``mask_fit`` (bool)
``COUNTS_OFF``, ``ACCEPTANCE``,   ``counts_off``, ``acceptance``, ``acceptance_off`` (on/off)
``ACCEPTANCE_OFF``
``PSF``                           ``psf`` (energy_true, rad, lat_irf, lon_irf), sr-1
``PSF_EXPOSURE``                  ``exposure_irf`` (energy_true, lat_irf, lon_irf), m2 s
``EDISP`` (kernel map)            ``edisp`` (energy_true, energy, lat_irf, lon_irf)
``EDISP_EXPOSURE``                ``exposure_irf`` too; kept apart as ``exposure_irf_edisp``
                                  where it differs from the PSF's (Gammapy stacks them
                                  separately)
``GTI``                           attrs ``gti_start``, ``gti_stop`` (MET s), ``MJDREFI``,
                                  ``MJDREFF``, ``TIMESYS``; ``ontime_total`` their sum
``META_TABLE``                    attrs ``obs_id`` (one run) or ``stacked_obs_ids``,
                                  ``ra_pnt``, ``dec_pnt``, ``telescope``, ``obs_mode``
``EXPOSURE`` ``META`` livetime    attr ``livetime`` (one run) or ``livetime_total``
``PRIMARY`` ``NAME``              attr ``name``
================================  ==========================================================

Longitudes are reversed (Gammapy's decrease along x); grids follow
:mod:`gammaxr.io.gammapy_geometry`. Energy-dispersion maps with a migration axis
(``EDispMap``) are refused: gammaxr holds kernels over reco energy.

Reading is eager (the file is read into numpy); writing computes the dataset (a documented
boundary: the file needs the numbers).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.io import fits

from gammaxr.geom.grid import SkyGrid
from gammaxr.io.gammapy_geometry import (
    GammapyGeometryWarning,
    WcsGrid,
    axes_from_bands,
    axis_edges_of,
    bands_hdu,
    grid_from_header,
    grid_header,
)

__all__ = ["MAP_HDUS", "gti_attrs", "gti_hdu", "read_map_dataset", "write_map_dataset"]

#: Gammapy map HDU -> (gammaxr variable, unit of the variable).
MAP_HDUS = {
    "COUNTS": ("counts", ""),
    "EXPOSURE": ("exposure", "m2 s"),
    "BACKGROUND": ("background", ""),
    "MASK_SAFE": ("mask_safe", None),
    "MASK_FIT": ("mask_fit", None),
    "COUNTS_OFF": ("counts_off", ""),
    "ACCEPTANCE": ("acceptance", ""),
    "ACCEPTANCE_OFF": ("acceptance_off", ""),
}
_IRF_UNITS = {"PSF": "sr-1", "EDISP": "", "PSF_EXPOSURE": "m2 s", "EDISP_EXPOSURE": "m2 s"}
_META_COLUMNS = {"RA_PNT": "ra_pnt", "DEC_PNT": "dec_pnt", "TELESCOP": "telescope"}
_META_COLUMNS["OBS_MODE"] = "obs_mode"
_TIME_KEYS = ("MJDREFI", "MJDREFF", "TIMESYS")
_WCS_KEYS = ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CDELT1", "CDELT2", "CRPIX1", "CRPIX2")
_WCS_KEYS += ("NAXIS1", "NAXIS2", "LONPOLE", "LATPOLE")


# --------------------------------------------------------------------------------- reading


def _converted(data: np.ndarray, unit: str, target: str | None, source: str) -> np.ndarray:
    if target is None:
        return data.astype(bool)
    unit = unit.strip()
    if unit == target or (not unit and not target):
        return data
    try:
        factor = u.Unit(unit or "").to(u.Unit(target))
    except (ValueError, u.UnitConversionError) as exc:
        raise ValueError(f"{source}: unit {unit!r} cannot be converted to {target!r}") from exc
    return data * np.asarray(factor, dtype=data.dtype)


class _Reader:
    """Reads the maps of one open file, checking that grids and axes agree."""

    def __init__(self, hdul: fits.HDUList, path: str, geometry: str):
        self.hdul, self.path, self.geometry = hdul, path, geometry
        self.coords: dict[str, xr.Variable] = {}
        self.grids: dict[str, WcsGrid] = {}  # header text -> grid (one warning per grid)

    def source(self, name: str) -> str:
        return f"{self.path}[{name}]"

    def grid(self, hdu: Any, name: str) -> WcsGrid:
        key = "\n".join(f"{k}={hdu.header.get(k)}" for k in _WCS_KEYS)
        if key not in self.grids:
            self.grids[key] = grid_from_header(
                hdu.header, hdu.data.shape[-2:], geometry=self.geometry,
                source=self.source(name), warn=False,
            )  # fmt: skip
        return self.grids[key]

    def add_axis(self, dim: str, coords: dict, name: str) -> None:
        for key, var in coords.items():
            if key in self.coords:
                if not np.allclose(self.coords[key].values, var.values, rtol=1e-6):
                    raise ValueError(
                        f"{self.source(name)}: axis {dim!r} differs from the other maps' "
                        f"({key} {var.values.ravel()[:4]}... vs "
                        f"{self.coords[key].values.ravel()[:4]}...)"
                    )
            else:
                self.coords[key] = var

    def image(self, name: str) -> tuple[list[str], np.ndarray, WcsGrid, str, list]:
        """dims, data in grid order, grid, BUNIT and axes of image HDU ``name``."""
        hdu = self.hdul[name]
        if hdu.data is None or hdu.data.ndim < 2:
            raise ValueError(f"{self.source(name)}: not an image map")
        bands_name = str(hdu.header.get("BANDSHDU", f"{name}_BANDS"))
        axes = (
            axes_from_bands(self.hdul[bands_name], self.source(bands_name))
            if (bands_name in self.hdul)
            else []
        )
        if len(axes) != hdu.data.ndim - 2:
            raise ValueError(
                f"{self.source(name)}: {hdu.data.ndim - 2} non-spatial axes in the image but "
                f"{len(axes)} in {bands_name}"
            )
        if name == "EXPOSURE" and axes and axes[0][0] == "energy":  # old files
            edges = axes[0][1]
            axes[0] = ("energy_true", _renamed(edges, "energy", "energy_true"))
        wcs_grid = self.grid(hdu, name)
        data = wcs_grid.to_grid_order(_native(hdu.data))
        dims = [dim for dim, _ in reversed(axes)]
        return dims, data, wcs_grid, str(hdu.header.get("BUNIT", "")), axes

    def maps(self) -> tuple[dict, WcsGrid | None]:
        data_vars, main = {}, None
        for name, (var, unit) in MAP_HDUS.items():
            if name not in self.hdul:
                continue
            dims, data, wcs_grid, bunit, axes = self.image(name)
            if main is None:
                main = wcs_grid
                self.coords.update(wcs_grid.grid.coords)
            elif wcs_grid.grid != main.grid:
                raise ValueError(f"{self.source(name)}: sky grid differs from the other maps'")
            for dim, coords in axes:
                self.add_axis(dim, coords, name)
            data = _converted(data, bunit, unit, self.source(name))
            attrs = {} if unit is None else {"units": unit}
            data_vars[var] = ([*dims, "lat", "lon"], data, attrs)
        return data_vars, main

    def irf_maps(self) -> tuple[dict, WcsGrid | None]:
        data_vars, irf = {}, None
        for name, kernel_dim in (("PSF", "rad"), ("EDISP", "energy")):
            if name not in self.hdul:
                continue
            dims, data, wcs_grid, bunit, axes = self.image(name)
            if "migra" in dims:
                raise ValueError(
                    f"{self.source(name)}: an EDispMap (migra axis); gammaxr reads energy-"
                    "dispersion kernel maps: convert in Gammapy first "
                    "(dataset.edisp = dataset.edisp.to_edisp_kernel_map(energy_axis))"
                )
            if dims != ["energy_true", kernel_dim]:
                raise ValueError(f"{self.source(name)}: unexpected axes {dims}")
            if irf is None:
                irf = wcs_grid
            elif wcs_grid.grid != irf.grid:
                raise ValueError(f"{self.source(name)}: IRF grid differs from the PSF's")
            for dim, coords in axes:
                self.add_axis(dim, coords, name)
            data_vars[name.lower()] = (
                [*dims, "lat_irf", "lon_irf"],
                _converted(data, bunit, _IRF_UNITS[name], self.source(name)),
                {"units": _IRF_UNITS[name]},
            )
            exposure_name = f"{name}_EXPOSURE"
            if exposure_name in self.hdul:
                hdu = self.hdul[exposure_name]
                weights = self.grid(hdu, exposure_name).to_grid_order(_native(hdu.data))
                weights = _converted(
                    weights[:, 0], str(hdu.header.get("BUNIT", "")), "m2 s",
                    self.source(exposure_name),
                )  # fmt: skip
                var = "exposure_irf"
                if var in data_vars and not np.allclose(data_vars[var][1], weights, rtol=1e-6):
                    var = "exposure_irf_edisp"
                data_vars.setdefault(var, (["energy_true", "lat_irf", "lon_irf"], weights, {}))
                data_vars[var][2]["units"] = "m2 s"
        if irf is not None:
            self.coords["lon_irf"] = xr.Variable("lon_irf", irf.grid.lon, {"units": "deg"})
            self.coords["lat_irf"] = xr.Variable("lat_irf", irf.grid.lat, {"units": "deg"})
        return data_vars, irf


def _native(data: np.ndarray) -> np.ndarray:
    """FITS data (big-endian) in native byte order."""
    data = np.asarray(data)
    return data.astype(data.dtype.newbyteorder("="), copy=False)


def _renamed(coords: dict, old: str, new: str) -> dict:
    return {k.replace(old, new, 1): xr.Variable(
        tuple(new if d == old else d for d in v.dims), v.values, v.attrs
    ) for k, v in coords.items()}  # fmt: skip


def gti_attrs(hdul: fits.HDUList) -> dict:
    if "GTI" not in hdul:
        return {}
    hdu = hdul["GTI"]
    start = np.asarray(hdu.data["START"], dtype=float)
    stop = np.asarray(hdu.data["STOP"], dtype=float)
    attrs = {"gti_start": start.tolist(), "gti_stop": stop.tolist()}
    attrs["ontime_total"] = float(np.sum(stop - start))
    for key in _TIME_KEYS:
        if key in hdu.header:
            value = hdu.header[key]
            attrs[key] = value.strip() if isinstance(value, str) else value
    return attrs


def _meta_attrs(hdul: fits.HDUList) -> dict:
    """Run metadata: META_TABLE columns (one value per run) and the exposure livetime."""
    attrs: dict[str, Any] = {}
    n_runs = None
    if "META_TABLE" in hdul:
        row = hdul["META_TABLE"].data[0]
        names = hdul["META_TABLE"].columns.names
        if "OBS_ID" in names:
            ids = np.atleast_1d(row["OBS_ID"]).astype(int).tolist()
            n_runs = len(ids)
            if n_runs == 1:
                attrs["obs_id"] = ids[0]
            else:
                attrs["stacked_obs_ids"] = ids
        for column, attr in _META_COLUMNS.items():
            if column in names:
                values = np.atleast_1d(row[column])
                values = [v.strip() if isinstance(v, str) else float(v) for v in values.tolist()]
                attrs[attr] = values[0] if len(values) == 1 else values
    if "EXPOSURE" in hdul:
        meta = _json_meta(hdul["EXPOSURE"].header)
        if "livetime" in meta:
            livetime = u.Quantity(meta["livetime"]).to_value("s")
            key = "livetime" if n_runs == 1 else "livetime_total"
            attrs[key] = float(livetime)
    return attrs


def _json_meta(header: fits.Header) -> dict:
    try:
        meta = json.loads(str(header.get("META", "{}")))
    except json.JSONDecodeError:
        return {}
    return meta if isinstance(meta, dict) else {}


def read_map_dataset(path: str | os.PathLike, *, geometry: str = "auto") -> xr.Dataset:
    """Read a Gammapy ``MapDataset`` or ``MapDatasetOnOff`` FITS file.

    Parameters
    ----------
    path : str or path-like
        The file (gzipped or not).
    geometry : {"auto", "exact", "relabel"}
        How the WCS grid becomes a regular lon/lat grid
        (:mod:`gammaxr.io.gammapy_geometry`).

    Returns
    -------
    xarray.Dataset
        numpy-backed; variables and attrs as in the module docstring.

    Raises
    ------
    ValueError
        If the file holds no map, its maps disagree on grids or axes, or holds an
        ``EDispMap``; :class:`~gammaxr.io.gammapy_geometry.GammapyGeometryError` for grids
        refused by ``geometry``.
    """
    path = str(path)
    with fits.open(path, memmap=False) as hdul:
        reader = _Reader(hdul, path, geometry)
        data_vars, main = reader.maps()
        if main is None:
            raise ValueError(
                f"{path}: no map HDU ({', '.join(MAP_HDUS)}): not a Gammapy MapDataset file"
            )
        irf_vars, irf = reader.irf_maps()
        attrs: dict[str, Any] = {"frame": main.grid.frame}
        name = hdul[0].header.get("NAME")
        if name:
            attrs["name"] = str(name)
        if not main.exact:
            attrs["gammapy_wcs"] = main.header
            attrs["gammapy_pixel_deg"] = main.pixel_side
        if irf is not None and not irf.exact:
            attrs["gammapy_wcs_irf"] = irf.header
        attrs.update(gti_attrs(hdul))
        attrs.update(_meta_attrs(hdul))
        attrs["source_file"] = os.path.basename(path)
    statements = [g.statement for g in reader.grids.values() if g.statement]
    if statements:
        warnings.warn("; ".join(statements), GammapyGeometryWarning, stacklevel=2)
    return xr.Dataset({**data_vars, **irf_vars}, coords=reader.coords, attrs=attrs)


# --------------------------------------------------------------------------------- writing


def _image_hdu(
    var: xr.DataArray,
    axes: list[tuple[str, np.ndarray, np.ndarray, str]],
    name: str,
    header: fits.Header,
    meta: dict,
) -> list[fits.ImageHDU | fits.BinTableHDU]:
    """Image HDU (lon reversed) of ``var`` with dims ``(*axes, lat, lon)`` and its BANDS."""
    data = np.asarray(var.values)[..., ::-1]
    if data.dtype == bool:
        data = data.astype(np.uint8)
    elif data.dtype.kind == "f" and data.dtype.itemsize < 4:
        data = data.astype(np.float32)
    hdr = header.copy()
    bands = bands_hdu(axes, f"{name}_BANDS")
    for key in bands.header:
        if key.startswith(("AXCOLS", "INTERP")):
            hdr[key] = bands.header[key]
    hdr["BANDSHDU"] = f"{name}_BANDS"
    hdr["META"] = json.dumps(meta)
    hdr["BUNIT"] = _fits_unit(str(var.attrs.get("units", "")))
    return [fits.ImageHDU(data, header=hdr, name=name), bands]


def _fits_unit(unit: str) -> str:
    if not unit:
        return ""
    return u.Unit(unit).to_string("fits")


def _exposure_irf_hdus(
    ds: xr.Dataset, weights: str, name: str, squeezed: str, header: fits.Header
) -> list:
    """``PSF_EXPOSURE`` / ``EDISP_EXPOSURE``: the weights with a one-bin ``rad`` / ``energy``."""
    dim, lo, hi, unit = axis_edges_of(ds, squeezed)
    axes = [axis_edges_of(ds, "energy_true"), (dim, lo[:1], hi[-1:], unit)]
    var = ds[weights].transpose("energy_true", "lat_irf", "lon_irf").expand_dims(dim, axis=1)
    return _image_hdu(var, axes, name, header, {})


def gti_hdu(attrs: dict) -> fits.BinTableHDU | None:
    if "gti_start" in attrs and "gti_stop" in attrs:
        start, stop = np.atleast_1d(attrs["gti_start"]), np.atleast_1d(attrs["gti_stop"])
    elif "tstart" in attrs and "tstop" in attrs:
        start, stop = np.atleast_1d(attrs["tstart"]), np.atleast_1d(attrs["tstop"])
    else:
        return None
    if "MJDREFI" not in attrs and "MJDREF" not in attrs:
        return None
    columns = [
        fits.Column("START", "D", unit="s", array=np.asarray(start, float)),
        fits.Column("STOP", "D", unit="s", array=np.asarray(stop, float)),
    ]
    hdu = fits.BinTableHDU.from_columns(columns, name="GTI")
    for key in _TIME_KEYS:
        if key in attrs:
            hdu.header[key] = attrs[key]
    if "MJDREFI" not in attrs:
        hdu.header["MJDREFI"], hdu.header["MJDREFF"] = divmod(float(attrs["MJDREF"]), 1.0)
    return hdu


def _meta_table_hdu(attrs: dict) -> fits.BinTableHDU | None:
    ids = attrs.get("stacked_obs_ids", attrs.get("obs_id"))
    if ids is None:
        return None
    ids = np.atleast_1d(ids).astype(np.int64)
    columns = [fits.Column("OBS_ID", f"{ids.size}K", array=ids[None, :])]
    for column, attr in _META_COLUMNS.items():
        if attr not in attrs:
            continue
        values = np.atleast_1d(attrs[attr])
        if values.size != ids.size:
            continue
        if values.dtype.kind in "US":
            width = max(1, max(len(str(v)) for v in values))
            text = np.array([str(v).ljust(width) for v in values])
            columns.append(
                fits.Column(column, f"{width * ids.size}A", dim=f"({width},{ids.size})",
                            array=text[None, :])
            )  # fmt: skip
        else:
            columns.append(fits.Column(column, f"{ids.size}D", array=values.astype(float)[None, :]))
    return fits.BinTableHDU.from_columns(columns, name="META_TABLE")


def _livetime(attrs: dict) -> float | None:
    for key in ("livetime", "livetime_total"):
        if key in attrs and np.isfinite(float(np.asarray(attrs[key]))):
            return float(np.asarray(attrs[key]))
    return None


def write_map_dataset(ds: xr.Dataset, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a gammaxr map dataset as a Gammapy ``MapDataset`` (``MapDatasetOnOff``) file.

    Parameters
    ----------
    ds : xarray.Dataset
        One dataset (no ``obs_id`` dim) with ``lat``/``lon`` and a ``frame`` attr; the
        variables of the module docstring that it has are written (computed here).
    path : str or path-like
        Output file (``.fits`` or ``.fits.gz``).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written. Gammapy 2.1 reads it with ``MapDataset.read`` (or
        ``MapDatasetOnOff.read`` when ``counts_off`` is present).

    Raises
    ------
    ValueError
        If ``ds`` has an ``obs_id`` dim (stack it or select one run first).
    FileExistsError
        If the file exists and ``overwrite`` is False.
    """
    path = Path(path)
    if "obs_id" in ds.dims:
        raise ValueError(
            "dataset has an 'obs_id' dim: write one dataset, stacked (ds.gamma.stack()) or "
            "one run (ds.sel(obs_id=...))"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    grid = SkyGrid.from_xarray(ds)
    header = grid_header(grid, ds.attrs.get("gammapy_wcs"))
    primary = fits.PrimaryHDU()
    primary.header["NAME"] = str(ds.attrs.get("name", path.name.split(".")[0]))
    primary.header["CREATOR"] = "gammaxr"
    hdus: list = [primary]
    livetime = _livetime(ds.attrs)
    for name, (var, _) in MAP_HDUS.items():
        if var in ds:
            meta = {"livetime": f"{livetime!r} s"} if name == "EXPOSURE" and livetime else {}
            dims = [d for d in ds[var].dims if d not in ("lat", "lon")]
            axes = [axis_edges_of(ds, d) for d in dims]
            hdus += _image_hdu(ds[var].transpose(*dims, "lat", "lon"), axes, name, header, meta)
    if "psf" in ds or "edisp" in ds:
        irf_grid = SkyGrid.from_coords(ds["lon_irf"].values, ds["lat_irf"].values, grid.frame)
        irf_header = grid_header(irf_grid, ds.attrs.get("gammapy_wcs_irf"))
        spatial = ("lat_irf", "lon_irf")
        for name, kernel_dim in (("EDISP", "energy"), ("PSF", "rad")):
            var = name.lower()
            if var not in ds:
                continue
            dims = ("energy_true", kernel_dim)
            axes = [axis_edges_of(ds, d) for d in dims]
            hdus += _image_hdu(ds[var].transpose(*dims, *spatial), axes, name, irf_header, {})
            weights = "exposure_irf_edisp" if name == "EDISP" else "exposure_irf"
            if weights not in ds:
                weights = "exposure_irf"
            if weights in ds:
                hdus += _exposure_irf_hdus(ds, weights, f"{name}_EXPOSURE", kernel_dim, irf_header)
    for hdu in (gti_hdu(ds.attrs), _meta_table_hdu(ds.attrs)):
        if hdu is not None:
            hdus.append(hdu)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=overwrite)
    return path
