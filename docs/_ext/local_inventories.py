"""Small local intersphinx inventories, the offline fallback of the remote ones.

The documentation links to xarray, dask, astropy, ... through intersphinx. Each project gets
two inventory locations: its ``objects.inv`` on the web, then a local inventory written here
with the few objects the gammaxr pages name (URIs relative to the project's documentation
root, so links are the same either way). Sphinx warns only when all locations of a project
fail, so a build without network passes with ``-W`` (see ``docs/conf.py``).
"""

from __future__ import annotations

import zlib
from pathlib import Path

#: project -> (documentation root, {object name: (domain:role, uri relative to the root)})
PROJECTS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "python": (
        "https://docs.python.org/3/",
        {
            "pathlib.Path": ("py:class", "library/pathlib.html#pathlib.Path"),
            "os.PathLike": ("py:class", "library/os.html#os.PathLike"),
        },
    ),
    "numpy": (
        "https://numpy.org/doc/stable/",
        {"numpy.ndarray": ("py:class", "reference/generated/numpy.ndarray.html")},
    ),
    "xarray": (
        "https://docs.xarray.dev/en/stable/",
        {
            "xarray.Dataset": ("py:class", "generated/xarray.Dataset.html"),
            "xarray.DataArray": ("py:class", "generated/xarray.DataArray.html"),
            "xarray.DataTree": ("py:class", "generated/xarray.DataTree.html"),
            "xarray.apply_ufunc": ("py:function", "generated/xarray.apply_ufunc.html"),
            "xarray.open_zarr": ("py:function", "generated/xarray.open_zarr.html"),
            "xarray.open_datatree": ("py:function", "generated/xarray.open_datatree.html"),
            "xarray.Dataset.to_zarr": ("py:method", "generated/xarray.Dataset.to_zarr.html"),
        },
    ),
    "dask": (
        "https://docs.dask.org/en/stable/",
        {
            "dask.array.Array": ("py:class", "generated/dask.array.Array.html"),
            "dask.compute": ("py:function", "api.html#dask.compute"),
            "dask.persist": ("py:function", "api.html#dask.persist"),
            "dask.config.set": ("py:class", "api.html#dask.config.set"),
        },
    ),
    "distributed": (
        "https://distributed.dask.org/en/stable/",
        {
            "distributed.Client": ("py:class", "api.html#distributed.Client"),
            "distributed.LocalCluster": ("py:class", "api.html#distributed.LocalCluster"),
        },
    ),
    "astropy": (
        "https://docs.astropy.org/en/stable/",
        {
            "astropy.coordinates.SkyCoord": (
                "py:class",
                "api/astropy.coordinates.SkyCoord.html",
            ),
            "astropy.units.Quantity": ("py:class", "api/astropy.units.Quantity.html"),
            "astropy.wcs.WCS": ("py:class", "api/astropy.wcs.WCS.html"),
        },
    ),
    "regions": (
        "https://astropy-regions.readthedocs.io/en/stable/",
        {"regions.SkyRegion": ("py:class", "api/regions.SkyRegion.html")},
    ),
    "matplotlib": (
        "https://matplotlib.org/stable/",
        {
            "matplotlib.axes.Axes": ("py:class", "api/_as_gen/matplotlib.axes.Axes.html"),
            "matplotlib.figure.Figure": ("py:class", "api/_as_gen/matplotlib.figure.Figure.html"),
        },
    ),
}


def write_inventory(path: Path, project: str, objects: dict[str, tuple[str, str]]) -> Path:
    """Write a Sphinx ``objects.inv`` (version 2) holding ``objects``."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        "# Version: stable\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    lines = "".join(f"{name} {role} 1 {uri} -\n" for name, (role, uri) in sorted(objects.items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode() + zlib.compress(lines.encode()))
    return path


def intersphinx_mapping_with_fallback(folder: Path, *, offline: bool) -> dict:
    """``intersphinx_mapping``: remote inventory first, local one second (only local if offline)."""
    mapping = {}
    for project, (root, objects) in PROJECTS.items():
        local = str(write_inventory(Path(folder) / f"{project}.inv", project, objects))
        mapping[project] = (root, local if offline else (None, local))
    return mapping
