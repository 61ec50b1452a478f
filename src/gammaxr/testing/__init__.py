"""Test scaffolding: small synthetic datasets with known truth (``gammaxr.testing``).

They live in the package, not in ``tests/``, because benchmarks and examples use them too
(``benchmarks/fit_pulls.py``); nothing in the library itself imports this module.

:func:`toy_map_dataset` builds a map dataset in the DESIGN.md layout with a flat exposure,
a flat background, a Gaussian PSF map and a diagonal energy dispersion;
:func:`toy_spectrum_dataset` a 1D on/off spectrum dataset; :func:`simulate_counts` replaces
the counts (and off counts) by Poisson samples of the predicted counts of given models.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from gammaxr.fit.fitting import npred
from gammaxr.fit.kernels import diagonal_response
from gammaxr.geom.axes import axis_coords
from gammaxr.geom.grid import SkyGrid

__all__ = ["gaussian_psf_profile", "simulate_counts", "toy_map_dataset", "toy_spectrum_dataset"]


def gaussian_psf_profile(sigma: np.ndarray, rad_edges: np.ndarray) -> np.ndarray:
    """Gaussian radial PSF profiles normalised over the rad bins.

    Parameters
    ----------
    sigma : numpy.ndarray, shape (n,)
        Gaussian widths, deg.
    rad_edges : numpy.ndarray, shape (k + 1,)
        rad bin edges, deg.

    Returns
    -------
    numpy.ndarray, shape (n, k)
        dP/dOmega in sr-1 at the bin centres, summing to 1 with the rings' solid angles.
    """
    centres = 0.5 * (rad_edges[1:] + rad_edges[:-1])
    profile = np.exp(-0.5 * (centres[None, :] / np.asarray(sigma)[:, None]) ** 2)
    r = np.deg2rad(rad_edges)
    ring = 2.0 * np.pi * (np.cos(r[:-1]) - np.cos(r[1:]))
    return profile / (profile @ ring)[:, None]


def toy_map_dataset(
    center: tuple[float, float] = (83.63, 22.01),
    width: float = 1.6,
    binsz: float = 0.04,
    frame: str = "icrs",
    energy_edges=(1.0, 2.0, 4.0, 10.0),
    energy_true_edges=(0.8, 1.0, 2.0, 4.0, 10.0, 12.0),
    exposure: float = 3e9,
    background: float = 0.5,
    background_index: float = 1.5,
    psf_sigma: float | tuple[float, ...] = 0.08,
    irf_binsz: float = 0.4,
    name: str = "toy",
) -> xr.Dataset:
    """A map dataset with analytic IRFs (counts all zero: see :func:`simulate_counts`).

    Parameters
    ----------
    center : (float, float)
        Grid centre, deg in ``frame``.
    width, binsz : float
        Grid width and pixel size on the sky, deg.
    frame : {"icrs", "galactic"}
        Grid frame.
    energy_edges, energy_true_edges : sequence of float
        Reco and true energy edges, TeV.
    exposure : float
        Flat exposure, m2 s.
    background : float
        Background counts per pixel in the first reco bin; other bins follow a power law of
        the bin-centre energy with ``background_index``.
    psf_sigma : float or sequence of float
        Gaussian PSF width, deg: one for all true-energy bins, or one per bin (the same at
        all positions).
    irf_binsz : float
        Pixel size of the coarse IRF grid, deg.
    name : str
        ``attrs["name"]`` of the dataset.

    Returns
    -------
    xarray.Dataset
        ``counts``, ``background``, ``exposure``, ``mask_safe`` (all true), ``psf`` and
        ``edisp`` (diagonal) on the IRF grid, ``exposure_irf``.
    """
    grid = SkyGrid.from_center(center, width, binsz, frame=frame)
    irf = SkyGrid.from_center(center, width, irf_binsz, frame=frame)
    e = np.asarray(energy_edges, dtype=float)
    et = np.asarray(energy_true_edges, dtype=float)
    sigma = np.broadcast_to(np.asarray(psf_sigma, dtype=float), (et.size - 1,))
    rad = np.linspace(0.0, max(6.0 * float(sigma.max()), 0.05), 61)
    coords = dict(grid.coords)
    coords.update(axis_coords("energy", e, "TeV"))
    coords.update(axis_coords("energy_true", et, "TeV"))
    coords.update(axis_coords("rad", rad, "deg"))
    coords["lon_irf"] = xr.Variable("lon_irf", irf.lon, {"units": "deg"})
    coords["lat_irf"] = xr.Variable("lat_irf", irf.lat, {"units": "deg"})
    n_e, n_et = e.size - 1, et.size - 1
    (n_lat, n_lon), (m_lat, m_lon) = grid.shape, irf.shape
    e_c = np.sqrt(e[1:] * e[:-1])
    bkg = background * (e_c / e_c[0]) ** (-background_index)
    profile = gaussian_psf_profile(sigma, rad)
    reco, true = ("energy", "lat", "lon"), ("energy_true", "lat", "lon")
    irf_dims = ("lat_irf", "lon_irf")
    data = {
        "counts": (reco, np.zeros((n_e, n_lat, n_lon), np.float32), {"units": ""}),
        "background": (reco, np.broadcast_to(bkg[:, None, None], (n_e, n_lat, n_lon)), {}),
        "exposure": (true, np.full((n_et, n_lat, n_lon), float(exposure)), {"units": "m2 s"}),
        "mask_safe": (reco, np.ones((n_e, n_lat, n_lon), bool), {}),
        "exposure_irf": (
            ("energy_true", *irf_dims),
            np.full((n_et, m_lat, m_lon), float(exposure)),
            {"units": "m2 s"},
        ),
        "psf": (
            ("energy_true", "rad", *irf_dims),
            np.broadcast_to(profile[:, :, None, None], (*profile.shape, m_lat, m_lon)),
            {"units": "sr-1"},
        ),
        "edisp": (
            ("energy_true", "energy", *irf_dims),
            np.broadcast_to(diagonal_response(et, e)[:, :, None, None], (n_et, n_e, m_lat, m_lon)),
            {"units": ""},
        ),
    }
    data["background"][2]["units"] = ""
    ds = xr.Dataset(
        {k: (dims, np.array(v), attrs) for k, (dims, v, attrs) in data.items()}, coords=coords
    )
    return ds.assign_attrs(frame=frame, name=name)


def toy_spectrum_dataset(
    energy_edges=(0.7, 1.0, 1.5, 2.2, 3.3, 5.0, 7.5, 11.0),
    energy_true_edges=None,
    exposure: float = 1e9,
    background: float = 20.0,
    background_index: float = 2.5,
    alpha: float = 0.2,
    name: str = "toy-spectrum",
) -> xr.Dataset:
    """A 1D on/off spectrum dataset (counts all zero: see :func:`simulate_counts`).

    Parameters
    ----------
    energy_edges, energy_true_edges : sequence of float
        Reco and true energy edges, TeV (true = reco by default, diagonal edisp).
    exposure : float
        Flat exposure, m2 s.
    background : float
        Background counts in the on region in the first bin (power law of the bin centre
        with ``background_index`` after that); ``counts_off`` expects ``background /
        alpha``.
    alpha : float
        ``acceptance / acceptance_off``.
    name : str
        ``attrs["name"]``.

    Returns
    -------
    xarray.Dataset
        ``counts``, ``counts_off``, ``acceptance``, ``acceptance_off``, ``exposure``,
        ``edisp``, ``mask_safe`` and the true background in ``background_true`` (for
        simulation; not used by fits).
    """
    e = np.asarray(energy_edges, dtype=float)
    et = e if energy_true_edges is None else np.asarray(energy_true_edges, dtype=float)
    coords = {**axis_coords("energy", e, "TeV"), **axis_coords("energy_true", et, "TeV")}
    e_c = np.sqrt(e[1:] * e[:-1])
    bkg = background * (e_c / e_c[0]) ** (-background_index)
    n_e = e.size - 1
    return xr.Dataset(
        {
            "counts": ("energy", np.zeros(n_e), {"units": ""}),
            "counts_off": ("energy", np.zeros(n_e), {"units": ""}),
            "acceptance": ("energy", np.ones(n_e), {"units": ""}),
            "acceptance_off": ("energy", np.full(n_e, 1.0 / alpha), {"units": ""}),
            "exposure": ("energy_true", np.full(et.size - 1, float(exposure)), {"units": "m2 s"}),
            "edisp": (("energy_true", "energy"), diagonal_response(et, e), {"units": ""}),
            "mask_safe": ("energy", np.ones(n_e, bool), {}),
            "background_true": ("energy", bkg, {"units": ""}),
        },
        coords=coords,
        attrs={"name": name},
    )


def simulate_counts(ds: xr.Dataset, models, rng: np.random.Generator | int | None = None):
    """A copy of ``ds`` with Poisson counts drawn from the models' predicted counts.

    For map datasets ``counts ~ Poisson(npred)``; for on/off spectrum datasets built by
    :func:`toy_spectrum_dataset`, ``counts ~ Poisson(signal + background_true)`` and
    ``counts_off ~ Poisson(background_true / alpha)``.

    Parameters
    ----------
    ds : xarray.Dataset
        A toy dataset.
    models : Models or SkyModel
        The truth.
    rng : numpy.random.Generator, int or None
        Random generator or seed.

    Returns
    -------
    xarray.Dataset
    """
    rng = np.random.default_rng(rng)
    if "background_true" in ds:
        signal = npred(
            ds.drop_vars(["counts_off", "acceptance", "acceptance_off"]).assign(
                background=ds["background_true"] * 0
            ),
            models,
            kind="signal",
        )
        alpha = ds["acceptance"] / ds["acceptance_off"]
        on = rng.poisson(signal.values + ds["background_true"].values)
        off = rng.poisson(ds["background_true"].values / alpha.values)
        return ds.assign(
            counts=("energy", on.astype(float), ds["counts"].attrs),
            counts_off=("energy", off.astype(float), ds["counts_off"].attrs),
        )
    mu = npred(ds, models).transpose(*ds["counts"].dims).values
    counts = rng.poisson(mu).astype(ds["counts"].dtype)
    return ds.assign(counts=(ds["counts"].dims, counts, ds["counts"].attrs))
