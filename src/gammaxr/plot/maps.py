"""Sky maps with WCSAxes: images, residual maps and significance distributions.

gammaxr grids store longitude *increasing* along the ``lon`` dim (DESIGN.md, "sky grid"), but
astronomers read maps with RA / Galactic longitude increasing to the **left** (east left).
:func:`display_wcs` gives the grid's WCS mirrored in x, and :func:`plot_map` draws the image
mirrored accordingly (``values[:, ::-1]``), so the axes show east on the left while every
pixel stays at its true sky position (``ax.wcs.pixel_to_world`` of a displayed pixel is that
pixel's centre).

Plotting is a documented compute boundary (DESIGN.md, "Rules for laziness"): the pixels of a
dask-backed map are computed here, once, and only the 2D image (or the 1D spectrum) is
loaded, never the cube behind it when a sum over dims is asked (the sum is computed lazily
first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from astropy.wcs import WCS

from gammaxr.geom.grid import SkyGrid
from gammaxr.plot.labels import RESIDUAL_LABELS, energy_range, energy_range_text, map_label

__all__ = [
    "display_wcs",
    "map_image",
    "plot_dataset_map",
    "plot_map",
    "plot_residuals",
    "plot_significance_distribution",
    "plot_significance_map",
    "significance_distribution",
]

#: Significances up to this many sigma are drawn on a linear colour scale; beyond, the scale
#: compresses (asinh), so that noise and a bright peak show on one symmetric bar.
SIGNIFICANCE_LINEAR_WIDTH = 5.0

_LON_LABELS = {"icrs": "Right Ascension (ICRS)", "galactic": "Galactic longitude"}
_LAT_LABELS = {"icrs": "Declination (ICRS)", "galactic": "Galactic latitude"}


def display_wcs(grid: SkyGrid) -> WCS:
    """The grid's WCS mirrored in x: longitude increasing to the left (east left).

    Parameters
    ----------
    grid : SkyGrid
        A gammaxr grid (``lon`` increasing along the array's last axis).

    Returns
    -------
    astropy.wcs.WCS
        Pixel ``x`` of this WCS is column ``n_lon - 1 - x`` of the grid's arrays; use it with
        images flipped as ``values[:, ::-1]`` (what :func:`map_image` returns).
    """
    wcs = grid.wcs.deepcopy()
    n_lon = grid.shape[1]
    wcs.wcs.cdelt = [-abs(wcs.wcs.cdelt[0]), wcs.wcs.cdelt[1]]
    wcs.wcs.crpix = [n_lon + 1 - wcs.wcs.crpix[0], wcs.wcs.crpix[1]]
    wcs.wcs.set()
    return wcs


def _frame(da: xr.DataArray, frame: str | None) -> str:
    frame = frame or da.attrs.get("frame") or da.coords["lon"].attrs.get("frame")
    if frame is None:
        raise KeyError(
            "the map has no 'frame' attr naming its sky frame; pass frame='icrs' or 'galactic' "
            "(ds.gamma.plot_map does this from the dataset)"
        )
    return frame


def map_image(
    da: xr.DataArray, *, sum_over: Sequence[str] | str | None = None, frame: str | None = None
) -> tuple[np.ndarray, WCS, SkyGrid]:
    """The pixels of a ``(lat, lon)`` map as displayed: computed, mirrored, with their WCS.

    Parameters
    ----------
    da : xarray.DataArray
        A map with dims ``lat``, ``lon`` (deg coordinates of a gammaxr grid); other dims must
        have size 1 or be named in ``sum_over``. numpy- or dask-backed.
    sum_over : str or sequence of str, optional
        Dims to sum over first (e.g. ``"energy"``); NaN are skipped.
    frame : str, optional
        Sky frame (default the ``frame`` attr of ``da`` or of its ``lon`` coordinate).

    Returns
    -------
    image : numpy.ndarray, shape (n_lat, n_lon)
        ``values[:, ::-1]`` (compute boundary: only this 2D image is computed).
    wcs : astropy.wcs.WCS
        :func:`display_wcs` of the grid.
    grid : SkyGrid
        The map's grid.

    Raises
    ------
    ValueError
        If the map has dims other than ``lat``/``lon`` of size > 1 that are not summed.
    """
    if isinstance(sum_over, str):
        sum_over = [sum_over]
    if sum_over:
        missing = [d for d in sum_over if d not in da.dims]
        if missing:
            raise ValueError(f"cannot sum over {missing}: the map has dims {da.dims}")
        da = da.sum(list(sum_over), skipna=True, keep_attrs=True)
    extra = [d for d in da.dims if d not in ("lat", "lon")]
    if {"lat", "lon"} - set(da.dims):
        raise ValueError(f"a sky map needs dims ('lat', 'lon'), got {da.dims}")
    big = [d for d in extra if da.sizes[d] != 1]
    if big:
        raise ValueError(
            f"map {da.name!r} has extra dims {big} with more than one entry: select one "
            f"(da.isel({big[0]}=0)) or sum them (sum_over={big!r})"
        )
    da = da.squeeze(extra, drop=True).transpose("lat", "lon")
    grid = SkyGrid.from_xarray(da.assign_attrs(frame=_frame(da, frame)))
    image = np.asarray(da.values, dtype=float)  # compute boundary: the 2D image
    return image[:, ::-1], display_wcs(grid), grid


def _label_axes(ax: Any, frame: str) -> None:
    """Axis labels (and degree tick labels) of a WCSAxes or plain Axes."""
    if hasattr(ax, "coords"):
        lon, lat = ax.coords[0], ax.coords[1]
        lon.set_axislabel(_LON_LABELS[frame])
        lat.set_axislabel(_LAT_LABELS[frame])
        lon.set_major_formatter("d.dd")
        lat.set_major_formatter("d.dd")
    else:
        ax.set_xlabel(f"{_LON_LABELS[frame]} [deg]")
        ax.set_ylabel(f"{_LAT_LABELS[frame]} [deg]")


def _new_axes(wcs: WCS, ax: Any):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    fig = plt.figure(figsize=(6.4, 5.2), layout="constrained")
    return fig.add_subplot(projection=wcs)


def plot_map(
    da: xr.DataArray,
    ax: Any = None,
    *,
    sum_over: Sequence[str] | str | None = None,
    frame: str | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    symmetric: bool = False,
    add_colorbar: bool = True,
    label: str | None = None,
    title: str | None = None,
    **imshow_kwargs: Any,
):
    """Draw a ``(lat, lon)`` map on WCS axes, longitude increasing to the left.

    Parameters
    ----------
    da : xarray.DataArray
        Map with dims ``(lat, lon)`` (others of size 1, or summed with ``sum_over``), deg
        coordinates of a gammaxr grid and a ``units`` attr (used in the colour-bar label).
        numpy- or dask-backed (compute boundary: the 2D image is computed).
    ax : matplotlib Axes, optional
        A ``WCSAxes`` (any WCS in the same frame: the image is drawn through a transform) or
        a plain ``Axes`` (plate carrée extent in deg, x axis inverted). Default: a new
        figure with ``WCSAxes`` of :func:`display_wcs`.
    sum_over : str or sequence of str, optional
        Dims summed before plotting (e.g. ``"energy"``).
    frame : str, optional
        Sky frame if ``da`` has no ``frame`` attr.
    cmap : str
        Colour map.
    vmin, vmax : float, optional
        Colour limits (default the finite range; ``symmetric``: ``+-max |value|``).
    symmetric : bool
        Colour limits symmetric around zero (for residuals and significances).
    add_colorbar : bool
        Add a colour bar labelled with ``label`` or ``name [units]``.
    label : str, optional
        Colour-bar label.
    title : str, optional
        Axes title.
    **imshow_kwargs
        Passed to ``imshow`` (e.g. ``interpolation``, ``norm``).

    Returns
    -------
    matplotlib Axes
        The axes drawn on (``ax.images[-1]`` is the image).
    """
    image, wcs, grid = map_image(da, sum_over=sum_over, frame=frame)
    finite = image[np.isfinite(image)]
    if symmetric and finite.size and vmin is None and vmax is None:
        vmax = float(np.max(np.abs(finite))) or 1.0
        vmin = -vmax
    ax = _new_axes(wcs, ax)
    kwargs = {"origin": "lower", "cmap": cmap, "vmin": vmin, "vmax": vmax}
    kwargs.update(imshow_kwargs)
    if hasattr(ax, "get_transform") and hasattr(ax, "wcs"):
        same = ax.wcs.wcs.compare(wcs.wcs) if ax.wcs is not None else False
        if not same:
            kwargs["transform"] = ax.get_transform(wcs)
        im = ax.imshow(image, **kwargs)
        if not same:
            ny, nx = image.shape
            ax.set_xlim(-0.5, nx - 0.5)
            ax.set_ylim(-0.5, ny - 0.5)
    else:
        lon_edges, lat_edges = grid.lon_edges, grid.lat_edges
        extent = (lon_edges[-1], lon_edges[0], lat_edges[0], lat_edges[-1])
        im = ax.imshow(image, extent=extent, aspect="auto", **kwargs)
    _label_axes(ax, grid.frame)
    if add_colorbar:
        if label is None:
            summed = [sum_over] if isinstance(sum_over, str) else list(sum_over or ())
            label = map_label(da.name, da.attrs.get("units", ""), summed)
        ax.figure.colorbar(im, ax=ax, label=label)
    if title:
        ax.set_title(title)
    return ax


def plot_dataset_map(
    ds: xr.Dataset,
    var: str,
    ax: Any = None,
    *,
    isel: dict[str, int] | None = None,
    masked: bool = True,
    sum_over: Sequence[str] | str | None = None,
    **kwargs: Any,
):
    """Draw a variable of a dataset as a sky map (what ``ds.gamma.plot_map(var)`` does).

    Parameters
    ----------
    ds : xarray.Dataset
        Dataset with a gammaxr sky grid (``lon``/``lat``, ``frame`` attr).
    var : str
        Variable to draw. Dims other than ``lat``/``lon`` left after ``isel`` are summed
        (e.g. counts over ``energy``), a reco-energy variable inside ``mask_safe``.
    ax : matplotlib Axes, optional
        See :func:`plot_map`.
    isel : dict of str to int, optional
        Positional selections first, e.g. ``{"energy": 0}`` for one energy bin of a
        non-additive map such as ``significance``.
    masked : bool
        Sum only the bins inside ``mask_safe`` (where the dataset has it and the variable
        shares its dims).
    sum_over : str or sequence of str, optional
        Dims to sum (default every dim other than ``lat``/``lon`` left after ``isel``);
        e.g. ``"energy_true"`` for the exposure.
    **kwargs
        Passed to :func:`plot_map` (``cmap``, ``vmin``, ``title``, ...). The default title
        names the variable and the energy range drawn (the safe range when summed over
        ``energy``); the colour bar says which dims were summed.

    Returns
    -------
    matplotlib Axes
    """
    if var not in ds:
        raise KeyError(f"dataset has no variable {var!r}; it has {sorted(ds.data_vars)}")
    da = ds[var].isel(isel or {})
    extra = [d for d in da.dims if d not in ("lat", "lon")]
    if sum_over is not None:
        sum_over = [sum_over] if isinstance(sum_over, str) else list(sum_over)
        missing = [d for d in sum_over if d not in extra]
        if missing:
            raise ValueError(f"cannot sum {var!r} over {missing}: it has dims {da.dims}")
    else:
        sum_over = extra
    if masked and sum_over and "mask_safe" in ds:
        mask = ds["mask_safe"].isel(
            {k: v for k, v in (isel or {}).items() if k in ds["mask_safe"].dims}
        )
        if set(mask.dims) <= set(da.dims):
            da = da.where(mask)
    if "title" not in kwargs:
        kwargs["title"] = _map_title(ds, da, var, isel or {}, masked)
    frame = ds.attrs.get("frame", da.attrs.get("frame"))
    return plot_map(
        da.assign_attrs(frame=frame) if frame else da, ax, sum_over=sum_over or None, **kwargs
    )


def _map_title(ds: xr.Dataset, da: xr.DataArray, var: str, isel: dict, masked: bool) -> str:
    """``var, <energy range>``: the selected bin, or the (safe) range of the summed axis."""
    for dim in ("energy", "energy_true"):
        if dim in da.dims or dim in isel:
            sub = ds.isel({dim: [isel[dim]]}) if dim in isel else ds
            text = energy_range_text(energy_range(sub, dim, safe=masked and dim not in isel))
            if text:
                return f"{var}, {text}" + (" (true)" if dim == "energy_true" else "")
    return var


def _spectral_residuals(
    ds: xr.Dataset, npred: xr.DataArray, mask: xr.DataArray | None
) -> tuple[np.ndarray, ...]:
    """Energy bins and summed counts / npred over the masked pixels (compute boundary)."""
    from gammaxr.geom.axes import axis_lo_hi
    from gammaxr.progress import compute

    counts = ds["counts"]
    spatial = [d for d in counts.dims if d in ("lat", "lon")]
    if mask is not None:
        counts, npred = counts.where(mask, 0), npred.where(mask, 0)
    c, n = compute(counts.sum(spatial), npred.sum(spatial), progress=False)
    lo, hi = axis_lo_hi(ds, "energy")
    return np.asarray(lo), np.asarray(hi), np.asarray(c.values, float), np.asarray(n.values, float)


def plot_residuals(
    ds: xr.Dataset,
    npred: Any = None,
    *,
    method: str = "diff/sqrt(model)",
    smooth_kernel: str | None = "gauss",
    smooth_radius: float = 0.1,
    fig: Any = None,
    convention: str = "gammaxr",
):
    """Spatial residual map and spectral residuals of a dataset against predicted counts.

    Parameters
    ----------
    ds : xarray.Dataset
        A stacked map dataset: ``counts(energy, lat, lon)``, ``background`` (or on/off
        variables), ``mask_safe`` / ``mask_fit`` (used where present), ``frame`` attr.
        numpy- or dask-backed.
    npred : xarray.DataArray, Models, SkyModel or sequence of models, optional
        Predicted counts ``(energy, lat, lon)`` or models whose predicted counts
        (:func:`gammaxr.fit.npred`, sources plus scaled background) are used; default the
        dataset's background estimate.
    method : str
        Residual method of the map (:func:`gammaxr.estimators.residuals.residual_map`).
    smooth_kernel : {"gauss", "box", "tophat"} or None
        Smoothing of the map.
    smooth_radius : float
        Kernel size, deg.
    fig : matplotlib Figure, optional
        Figure to draw in (default a new one).
    convention : {"gammaxr", "gammapy"}
        Source rendering when ``npred`` are models.

    Returns
    -------
    matplotlib Figure
        Left: the residual map summed over energy (WCSAxes, east left); right:
        ``(counts - npred) / npred`` summed over the masked pixels per energy bin with
        Poisson errors ``sqrt(npred) / npred``.
    """
    import matplotlib.pyplot as plt

    from gammaxr.estimators.residuals import dataset_residuals

    if npred is not None and not isinstance(npred, xr.DataArray):
        from gammaxr.fit import npred as model_npred

        npred = model_npred(ds, npred, convention=convention)
    residuals = dataset_residuals(
        ds, npred, method, smooth_kernel=smooth_kernel, smooth_radius=smooth_radius,
        sum_energy=True,
    )  # fmt: skip
    if npred is None:
        npred = _default_npred(ds)
    mask = None
    for name in ("mask_safe", "mask_fit"):
        if name in ds:
            mask = ds[name] if mask is None else mask & ds[name]
    wcs = display_wcs(SkyGrid.from_xarray(ds))
    fig = fig if fig is not None else plt.figure(figsize=(11.5, 4.6), layout="constrained")
    ax_map = fig.add_subplot(1, 2, 1, projection=wcs)
    what = RESIDUAL_LABELS[method]
    smoothing = (
        f"{smooth_kernel} smoothing {smooth_radius:g} deg" if smooth_kernel else "unsmoothed"
    )
    erange = energy_range_text(energy_range(ds))
    plot_map(
        residuals.assign_attrs(frame=ds.attrs.get("frame", "icrs")), ax_map, cmap="RdBu_r",
        symmetric=True, label=what,
        title=f"{what}\n{smoothing}" + (f", {erange}" if erange else ""),
    )  # fmt: skip
    lo, hi, c, n = _spectral_residuals(ds, npred, mask)
    centre = np.sqrt(lo * hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        res = (c - n) / n
        err = np.sqrt(n) / n
    ax = fig.add_subplot(1, 2, 2)
    ax.errorbar(centre, res, yerr=err, xerr=[centre - lo, hi - centre], fmt="o", color="k", ms=4)
    ax.axhline(0, color="0.5", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("(counts - npred) / npred")
    ax.set_title("spectral residuals (masked pixels)")
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    return fig


def _default_npred(ds: xr.Dataset) -> xr.DataArray:
    """The background (or ``alpha * counts_off``): what residuals compare with by default."""
    from gammaxr.stats import alpha_on_off

    if "background" in ds:
        return ds["background"]
    return alpha_on_off(ds["acceptance"], ds["acceptance_off"]) * ds["counts_off"]


def significance_distribution(
    significance: xr.DataArray | np.ndarray, mask: xr.DataArray | np.ndarray | None = None
) -> dict[str, float]:
    """Mean and width of a significance map's pixel distribution (maximum-likelihood normal).

    Parameters
    ----------
    significance : xarray.DataArray or numpy.ndarray
        Significance map (any dims; NaN pixels are left out). Computed here (boundary).
    mask : xarray.DataArray or numpy.ndarray of bool, optional
        Pixels to use (True), e.g. outside the exclusion regions; broadcast against
        ``significance``.

    Returns
    -------
    dict
        ``mean``, ``sigma`` (ML estimates: mean and population standard deviation),
        ``n`` (pixels used), and their uncertainties ``mean_err`` (``sigma / sqrt(n)``) and
        ``sigma_err`` (``sigma / sqrt(2 n)``). NaN where no pixel is left.
    """
    values = _finite_values(significance, mask)
    n = values.size
    if n == 0:
        nan = float("nan")
        return {"mean": nan, "sigma": nan, "n": 0, "mean_err": nan, "sigma_err": nan}
    mean, sigma = float(values.mean()), float(values.std())
    return {
        "mean": mean,
        "sigma": sigma,
        "n": int(n),
        "mean_err": sigma / np.sqrt(n),
        "sigma_err": sigma / np.sqrt(2 * n),
    }


def _finite_values(significance: Any, mask: Any) -> np.ndarray:
    """Finite values of ``significance`` inside ``mask``, flattened (compute boundary)."""
    values = significance
    if mask is not None:
        if isinstance(values, xr.DataArray):
            values = values.where(mask)
        else:
            mask = np.broadcast_to(np.asarray(mask, bool), np.shape(values))
            values = np.where(mask, values, np.nan)
    if isinstance(values, xr.DataArray):
        values = values.values  # compute boundary
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def plot_significance_distribution(
    significance: xr.DataArray | np.ndarray,
    mask: xr.DataArray | np.ndarray | None = None,
    *,
    ax: Any = None,
    bins: int | Sequence[float] | None = None,
    label: str = "pixels",
    title: str | None = "significance distribution",
):
    """Histogram of significance values with N(0, 1) and the fitted normal overlaid.

    Parameters
    ----------
    significance : xarray.DataArray or numpy.ndarray
        Significance map (NaN pixels left out); computed here (boundary).
    mask : xarray.DataArray or numpy.ndarray of bool, optional
        Pixels to use (True), e.g. source-free pixels outside the exclusion regions.
    ax : matplotlib Axes, optional
        Default a new figure.
    bins : int or sequence of float, optional
        Histogram bins (default 0.2-wide bins from -5 to the largest value, at least 5).
    label : str
        Histogram label.
    title : str or None
        Axes title.

    Returns
    -------
    matplotlib Axes
        With a log-scaled density histogram (the top of the axes left free for the legend,
        above the peak), ``N(0, 1)`` (dashed) and ``N(mean, sigma)``
        of the pixels (:func:`significance_distribution`; values in the legend).
    """
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    values = _finite_values(significance, mask)
    stats = significance_distribution(values)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
    if bins is None:
        top = max(5.0, float(values.max()) if values.size else 5.0)
        bins = np.arange(-5.0, top + 0.2, 0.2)
    if values.size:
        ax.hist(values, bins=bins, density=True, histtype="stepfilled", alpha=0.5, label=label)
    x = np.linspace(-5.0, max(5.0, float(np.max(bins))), 400)
    ax.plot(x, norm.pdf(x), "k--", lw=1.2, label="N(0, 1)")
    if stats["n"]:
        ax.plot(
            x,
            norm.pdf(x, stats["mean"], stats["sigma"]),
            "r-",
            lw=1.5,
            label=f"fit: mean {stats['mean']:.2f}, width {stats['sigma']:.2f} ({stats['n']} px)",
        )
    ax.set_yscale("log")
    # N(0, 1) peaks at 0.4: two decades above it hold the legend
    ax.set_ylim(1e-5, 40.0)
    ax.set_xlabel("significance [sigma]")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_significance_map(
    da: xr.DataArray,
    ax: Any = None,
    *,
    vmax: float | None = None,
    linear_width: float = SIGNIFICANCE_LINEAR_WIDTH,
    cmap: str = "RdBu_r",
    label: str = "significance [sigma]",
    **kwargs: Any,
):
    """Draw a significance map on a symmetric diverging colour scale centred on zero.

    Parameters
    ----------
    da : xarray.DataArray
        Significance ``(lat, lon)`` [sigma] (see :func:`plot_map` for dims and frame).
    ax : matplotlib Axes, optional
        See :func:`plot_map`.
    vmax : float, optional
        Colour limits ``-vmax, +vmax`` (default the largest ``|value|``, at least 5).
    linear_width : float
        The scale is linear within ``+-linear_width`` sigma and compresses beyond (asinh),
        so that +-1 sigma noise stays visible next to a bright source without saturating.
    cmap : str
        A diverging colour map (white at zero).
    label : str
        Colour-bar label.
    **kwargs
        Passed to :func:`plot_map` (``title``, ``sum_over``, ...).

    Returns
    -------
    matplotlib Axes
    """
    from matplotlib.colors import AsinhNorm
    from matplotlib.ticker import NullLocator

    da = da.compute()  # compute boundary: read once for the limits and the image
    if vmax is None:
        image = map_image(da, sum_over=kwargs.get("sum_over"), frame=kwargs.get("frame"))[0]
        finite = np.abs(image[np.isfinite(image)])
        vmax = max(5.0, float(finite.max()) if finite.size else 5.0)
    norm = AsinhNorm(linear_width=linear_width, vmin=-vmax, vmax=vmax)
    ax = plot_map(da, ax, cmap=cmap, norm=norm, label=label, **kwargs)
    colorbar = ax.images[-1].colorbar
    if colorbar is not None:
        steps = np.array([2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0])
        steps = steps[steps <= vmax]
        colorbar.set_ticks(np.concatenate([-steps[::-1], [0.0], steps]))
        colorbar.ax.yaxis.set_major_formatter("{x:g}")
        colorbar.ax.yaxis.set_minor_locator(NullLocator())
    return ax
