"""Words on figures: energy ranges, residual methods, labels of summed maps.

One home for the text that titles and colour bars share, so that a title and its colour bar
always name the same quantity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from gammaxr.geom.axes import axis_edges, bounds_name

__all__ = [
    "RESIDUAL_LABELS",
    "energy_range",
    "energy_range_text",
    "map_label",
]

#: What a residual map of each method of :func:`gammaxr.estimators.residuals.residual_map`
#: shows (title and colour bar).
RESIDUAL_LABELS = {
    "diff": "counts - npred",
    "diff/model": "(counts - npred) / npred",
    "diff/sqrt(model)": "(counts - npred) / sqrt(npred)",
    "sqrt_ts": "significance of counts against npred [sigma]",
}


def energy_range(
    obj: xr.Dataset | xr.DataArray, dim: str = "energy", *, safe: bool = True
) -> tuple[float, float] | None:
    """Energy range of a dataset's axis, in TeV (inside the safe mask by default).

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        With an energy axis ``dim`` (bounds coordinate or lo/hi coordinates).
    dim : str
        ``"energy"`` or ``"energy_true"``.
    safe : bool
        Only the bins where ``mask_safe`` (a Dataset variable along ``dim``) is true
        somewhere; the mask is reduced over the other dims and computed here (a plotting
        boundary: one boolean per bin).

    Returns
    -------
    (float, float) or None
        Lowest and highest edge [TeV]; None if the axis has no edges or no bin is safe.
    """
    if dim not in obj.dims or not (bounds_name(dim) in obj.coords or f"{dim}_lo" in obj.coords):
        return None
    edges = axis_edges(obj, dim)
    keep = np.ones(edges.size - 1, bool)
    if safe and isinstance(obj, xr.Dataset) and "mask_safe" in obj:
        mask = obj["mask_safe"]
        if dim in mask.dims:
            other = [d for d in mask.dims if d != dim]
            keep = np.asarray(mask.any(other).values, bool)  # one bool per bin
    if not keep.any():
        return None
    idx = np.flatnonzero(keep)
    return float(edges[idx[0]]), float(edges[idx[-1] + 1])


def energy_range_text(limits: tuple[float, float] | None) -> str:
    """``"0.3-30 TeV"`` for an energy range in TeV (empty for None)."""
    if limits is None:
        return ""
    lo, hi = limits
    return f"{lo:.3g}-{hi:.3g} TeV"


def map_label(name: str | None, units: str, summed: Sequence[str] = ()) -> str:
    """Colour-bar label of a map: ``name [units]``, saying which dims were summed.

    Parameters
    ----------
    name : str or None
        Variable name.
    units : str
        Units of the drawn values (a sum keeps the units of what is summed).
    summed : sequence of str
        Dims summed over, e.g. ``("energy_true",)``.
    """
    text = str(name or "")
    if summed:
        text += f" summed over {', '.join(summed)}"
    return f"{text} [{units}]" if units else text
