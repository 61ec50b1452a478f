"""1D spectrum datasets per run: on counts, reflected-region off counts, exposure, edisp.

The on/off spectrum dataset of one run (DESIGN.md, "spectrum dataset") holds

- ``counts(energy)``: events in the on region;
- ``counts_off(energy)``: events in the reflected off regions (:mod:`gammaxr.reduce.reflected`);
- ``acceptance(energy)`` = 1 and ``acceptance_off(energy)`` = number of off regions (so
  ``alpha = 1 / n_off``), or with ``acceptance="background"`` the background model
  integrated over the on region and over all off regions;
- ``exposure(energy_true)`` [m2 s]: effective area at the on-region centre's offset times
  livetime, optionally times the PSF containment fraction within the on-circle radius;
  ``exposure_irf(energy_true)`` the same without containment (weights of ``edisp``);
- ``edisp(energy_true, energy)``: the energy-dispersion kernel at the on-region centre;
- ``mask_safe(energy)``: the safe-mask methods of :mod:`gammaxr.reduce.safe_mask` at the
  on-region centre; all false if no off region was found;
- optionally ``background(energy)``: the background model in the on region.

The on region is kept as a DS9 string in ``attrs["on_region"]``; the off regions of each run
as a DS9 string in ``attrs["off_regions"]`` (one run) or in the ``off_regions(obs_id)``
coordinate (many runs). IRFs are taken at the region centre, as Gammapy's
``SpectrumDatasetMaker`` (``use_region_center=True``) and ``ReflectedRegionsBackgroundMaker``
do. :func:`spectrum_runs` makes a lazy dataset with dim ``obs_id`` (one dask task per run); the
off regions are found when it is built (from the pointing alone, no event is read), and
:func:`gammaxr.reduce.stack.stack_runs` stacks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import astropy.units as u
import numpy as np
import regions as rg
import xarray as xr

from gammaxr.data.observation import events_in_gti
from gammaxr.data.validation import validate_observation
from gammaxr.geom.grid import SkyGrid
from gammaxr.geom.regions import (
    _anchor,
    _bounding_radius,
    parse_regions,
    region_mask,
    regions_to_string,
)
from gammaxr.irf import edisp_kernel, evaluate_aeff, psf_3gauss_containment, psf_containment
from gammaxr.reduce.dataset import run_coords
from gammaxr.reduce.maps import background_cube, fill_missing_along_energy
from gammaxr.reduce.reflected import (
    ReflectedRegionsConfig,
    reflected_region_angles,
    regions_contain,
    rotate_region,
    single_region,
)
from gammaxr.reduce.run_spec import RunSpecFields
from gammaxr.reduce.runs import _check_on_error, stacked_run_variables
from gammaxr.reduce.safe_mask import (
    SafeEnergyInputs,
    aeff_default_thresholds,
    safe_energy_range,
    safe_mask,
    safe_mask_offset,
    table_energy_inputs,
)
from gammaxr.stats import wstat_mu_bkg

__all__ = [
    "SPECTRUM_MAPS",
    "SpectrumSpec",
    "find_off_regions",
    "spectrum_arrays",
    "spectrum_dataset",
    "spectrum_layout",
    "spectrum_regions",
    "spectrum_runs",
]

#: Optional variables a spectrum reduction can make besides the on/off counts.
SPECTRUM_MAPS = ("exposure", "edisp", "background")
_ACCEPTANCE = ("regions", "background")


@dataclass(frozen=True)
class SpectrumSpec(RunSpecFields):
    """What to make of each run for a 1D on/off spectrum.

    Parameters
    ----------
    on_region : regions.SkyRegion or str
        The on region (any extended sky shape, or a DS9 string of one); kept as a DS9 string.
    energy_edges : sequence of float
        Reco-energy edges in TeV.
    energy_true_edges : sequence of float
        True-energy edges in TeV.
    exclusion : xarray.DataArray of bool, dims (lat, lon), optional
        Exclusion mask (True = usable) on a :class:`~gammaxr.geom.SkyGrid`; off regions avoid
        its excluded pixels. Read into memory when the spec is made (a small image).
    finder : ReflectedRegionsConfig
        Settings of the reflected-region search (Gammapy's defaults).
    maps : tuple of str
        Any of :data:`SPECTRUM_MAPS` (counts, counts_off, acceptances and mask_safe are
        always made).
    acceptance : {"regions", "background"}
        ``"regions"``: ``acceptance`` 1 and ``acceptance_off`` the number of off regions (as
        Gammapy); ``"background"``: the background model integrated over the on region and
        over the off regions (needs the run's background IRF).
    containment_correction : bool
        Multiply the exposure by the PSF containment fraction within the on-circle radius at
        the region centre (circular on regions only).
    safe_mask : tuple of str
        Safe-mask methods (:data:`gammaxr.reduce.safe_mask.SAFE_MASK_METHODS`).
    offset_max, aeff_percent, bias_percent : float
        Thresholds of the safe-mask methods (deg, %, %).
    safe_mask_irfs : {"DL4", "DL3"}
        Where the energy methods look (Gammapy's ``irfs``). ``"DL4"`` (default): the
        spectrum itself: its exposure (containment-corrected when asked), its kernel at the
        on-region centre, and the WStat background estimate of the on/off counts.
        ``"DL3"``: the IRF tables at one offset (``safe_mask_fixed_offset``, else that of
        ``safe_mask_position``, else 0).
    safe_mask_position : SkyCoord or (ra, dec) in deg, optional
        ``"DL3"`` only: position whose offset the tables are read at.
    safe_mask_fixed_offset : float, optional
        ``"DL3"`` only: offset in deg the tables are read at.
    region_binsz : float
        Pixel size (deg) used to integrate the background model over a region.
    background_oversampling : int
        Energy oversampling of the background integral.
    gti_tolerance : float
        Seconds by which GTIs are widened when selecting events (see
        :class:`gammaxr.reduce.dataset.ReductionSpec`).
    """

    on_region: Any
    energy_edges: tuple[float, ...]
    energy_true_edges: tuple[float, ...]
    exclusion: xr.DataArray | None = field(default=None, compare=False, repr=False)
    finder: ReflectedRegionsConfig = field(default_factory=ReflectedRegionsConfig)
    maps: tuple[str, ...] = ("exposure", "edisp")
    acceptance: str = "regions"
    containment_correction: bool = False
    safe_mask: tuple[str, ...] = ()
    offset_max: float = 2.5
    aeff_percent: float = 10.0
    bias_percent: float = 10.0
    safe_mask_irfs: str = "DL4"
    safe_mask_position: tuple[float, float] | None = None
    safe_mask_fixed_offset: float | None = None
    region_binsz: float = 0.01
    background_oversampling: int = 1
    gti_tolerance: float = 1.0

    def __post_init__(self):
        region = single_region(self.on_region)
        object.__setattr__(self, "on_region", regions_to_string(region))
        self._check_shared_fields(SPECTRUM_MAPS, angles=("offset_max", "region_binsz"))
        if self.safe_mask_irfs == "DL4" and (
            self.safe_mask_position is not None or self.safe_mask_fixed_offset is not None
        ):
            raise ValueError(
                "a spectrum's DL4 safe mask is taken in its on region: safe_mask_position "
                "and safe_mask_fixed_offset apply to safe_mask_irfs='DL3' only"
            )
        if self.acceptance not in _ACCEPTANCE:
            raise ValueError(f"acceptance must be one of {_ACCEPTANCE}, got {self.acceptance!r}")
        if self.containment_correction and not isinstance(region, rg.CircleSkyRegion):
            raise TypeError(
                f"containment correction needs a circular on region, got {type(region).__name__}"
            )
        if self.exclusion is not None:
            excl = self.exclusion
            if not isinstance(excl, xr.DataArray) or set(excl.dims) != {"lat", "lon"}:
                raise TypeError("exclusion must be a bool DataArray with dims (lat, lon)")
            excl = excl.transpose("lat", "lon")
            # a small image: read once here (documented boundary) so each task ships numpy
            object.__setattr__(self, "exclusion", excl.copy(data=np.asarray(excl.values, bool)))

    @property
    def region(self) -> rg.SkyRegion:
        """The on region as a ``regions`` object."""
        return parse_regions(self.on_region)[0]

    def hdus(self) -> tuple[str, ...]:
        """HDU types a run must provide."""
        need = ["events", "gti"]
        if "exposure" in self.maps or "edisp" in self.maps:
            need.append("aeff")
        if "edisp" in self.maps or "edisp-bias" in self.safe_mask:
            need.append("edisp")
        if self.containment_correction and (
            "exposure" in self.maps
            or ("aeff-max" in self.safe_mask and self.safe_mask_irfs == "DL4")
        ):
            need.append("psf")
        if "background" in self.maps or self.acceptance == "background":
            need.append("bkg")
        if {"aeff-default", "aeff-max"} & set(self.safe_mask):
            need.append("aeff")
        if "bkg-peak" in self.safe_mask and self.safe_mask_irfs == "DL3":
            need.append("bkg")
        return tuple(dict.fromkeys(need))

    def coords(self) -> dict:
        """Energy coordinates of a spectrum dataset."""
        return self.energy_coords()

    def attrs(self) -> dict:
        """Dataset attrs: the on region and the reduction settings."""
        return {
            "on_region": self.on_region,
            "acceptance_method": self.acceptance,
            "containment_correction": int(self.containment_correction),
            **self.safe_mask_attrs(),
            # stack_runs: drop unsafe reco bins of each run's kernel (as Gammapy)
            "edisp_energy_mask": 1,
            **{f"reflected_{k}": v for k, v in _finder_attrs(self.finder).items()},
        }


def _finder_attrs(finder: ReflectedRegionsConfig) -> dict:
    return {
        "angle_increment_deg": finder.angle_increment,
        "min_distance_deg": finder.min_distance,
        "min_distance_input_deg": finder.min_distance_input,
        "max_region_number": finder.max_region_number,
        "binsz_deg": finder.binsz,
    }


def spectrum_layout(spec: SpectrumSpec) -> dict[str, tuple]:
    """name -> (dims, shape, dtype, attrs) of every variable a run produces."""
    n_e, n_et = len(spec.energy_edges) - 1, len(spec.energy_true_edges) - 1
    f = np.dtype("float64")
    reco, true = (("energy",), (n_e,)), (("energy_true",), (n_et,))
    layout = {
        "counts": (*reco, f, {"units": ""}),
        "counts_off": (*reco, f, {"units": ""}),
        "acceptance": (*reco, f, {"units": ""}),
        "acceptance_off": (*reco, f, {"units": ""}),
    }
    if "background" in spec.maps:
        layout["background"] = (*reco, f, {"units": ""})
    if "exposure" in spec.maps:
        layout["exposure"] = (*true, f, {"units": "m2 s"})
    if "edisp" in spec.maps:
        layout["exposure_irf"] = (*true, f, {"units": "m2 s"})
        layout["edisp"] = (("energy_true", "energy"), (n_et, n_e), f, {"units": ""})
    layout["mask_safe"] = (*reco, np.dtype(bool), {})
    return layout


# ------------------------------------------------------------------------------ one run


def find_off_regions(observation, spec: SpectrumSpec) -> list[rg.SkyRegion]:
    """Reflected off regions of one run (from its pointing; no event or IRF is read).

    Parameters
    ----------
    observation : gammaxr.data.Observation
        The run.
    spec : SpectrumSpec
        On region, exclusion mask and finder settings.

    Returns
    -------
    list of regions.SkyRegion
    """
    region = spec.region
    angles = reflected_region_angles(region, observation.pointing, spec.exclusion, spec.finder)
    return rotate_region(region, observation.pointing, angles, spec.finder.binsz)


def _energy_counts(energy: np.ndarray, selected: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram of the selected event energies; bins include their lower edge."""
    idx = np.searchsorted(edges, energy[selected], side="right") - 1
    idx = idx[(idx >= 0) & (idx < edges.size - 1)]
    return np.bincount(idx, minlength=edges.size - 1).astype(float)


def _region_background(
    bkg: xr.DataArray, region, pointing, ontime: float, spec: SpectrumSpec
) -> np.ndarray:
    """Background-model counts in a region, shape (m,).

    The model map is made on a ``region_binsz`` grid around the region; its mean density over
    the pixels inside the region is multiplied by the region's solid angle (exact for
    circles, the pixel sum otherwise), so that equal regions get equal areas.
    """
    radius = _bounding_radius(region)
    if radius is None:
        raise TypeError(f"cannot integrate the background over a {type(region).__name__}")
    centre = _anchor(region).icrs
    width = 2 * radius + 4 * spec.region_binsz
    grid = SkyGrid.from_center(centre, width, spec.region_binsz, frame="icrs")
    inside = region_mask(grid, region).values
    ra, dec = float(pointing.ra.deg), float(pointing.dec.deg)
    cube = background_cube(
        bkg,
        grid,
        (ra, dec),
        ontime,
        spec.energy,
        offset=grid.separation(pointing).values,
        oversampling=spec.background_oversampling,
    )
    pixel_sr = grid.solid_angle().values[inside]
    if pixel_sr.size == 0:
        raise ValueError(f"region smaller than the {spec.region_binsz} deg pixels")
    density = cube[:, inside].sum(axis=1) / pixel_sr.sum()
    if isinstance(region, rg.CircleSkyRegion):
        area = 2 * np.pi * (1 - np.cos(region.radius.to_value(u.rad)))
    else:
        area = pixel_sr.sum()
    return density * area


def _containment(psf, energy_true: np.ndarray, offset: float, radius: float) -> np.ndarray:
    if isinstance(psf, xr.Dataset):  # psf_3gauss parameters: analytic
        return np.asarray(psf_3gauss_containment(psf, energy_true, offset, radius), dtype=float)
    # the table as given (not renormalised), as Gammapy's PSF3D.containment
    return np.asarray(psf_containment(psf, energy_true, offset, radius, normalize=False))


def spectrum_arrays(
    observation, spec: SpectrumSpec, off_regions: str | Sequence | None = None
) -> dict[str, np.ndarray]:
    """Reduce one run to the numpy arrays of its spectrum dataset (the per-run dask task).

    Parameters
    ----------
    observation : gammaxr.data.Observation
        The run; its HDUs are read here, each file opened once.
    spec : SpectrumSpec
        What to make.
    off_regions : str or list of regions.SkyRegion, optional
        The off regions (DS9 string or list); found here when None. An empty string means
        no off region.

    Returns
    -------
    dict of str to numpy.ndarray
        Arrays as laid out by :func:`spectrum_layout`.
    """
    obs = validate_observation(observation, spec.hdus())
    region, pointing = spec.region, obs.pointing
    if off_regions is None:
        off_regions = find_off_regions(obs, spec)
    elif isinstance(off_regions, str):
        off_regions = parse_regions(off_regions) if off_regions.strip() else []
    n_off = len(off_regions)
    energy, energy_true = spec.energy, spec.energy_true
    offset = float(_anchor(region).separation(pointing).to_value(u.deg))

    events = events_in_gti(obs.events, obs.gti, tolerance=spec.gti_tolerance)
    ra, dec = events["ra"].values, events["dec"].values
    e_evt = events["energy"].values
    in_on = regions_contain(region, ra, dec, "icrs")[0]
    out = {"counts": _energy_counts(e_evt, in_on, energy)}
    in_off = regions_contain(off_regions, ra, dec, "icrs").any(axis=0)
    out["counts_off"] = _energy_counts(e_evt, in_off, energy)

    n_e = energy.size - 1
    ontime = obs.ontime
    if "background" in spec.maps or spec.acceptance == "background":
        bkg = fill_missing_along_energy(obs.bkg)
        bkg_on = _region_background(bkg, region, pointing, ontime, spec)
        if "background" in spec.maps:
            out["background"] = bkg_on
    if spec.acceptance == "background":
        out["acceptance"] = bkg_on
        out["acceptance_off"] = sum(
            (_region_background(bkg, r, pointing, ontime, spec) for r in off_regions),
            np.zeros(n_e),
        )
    else:
        out["acceptance"] = np.ones(n_e)
        out["acceptance_off"] = np.full(n_e, float(n_off))

    if "exposure" in spec.maps or "edisp" in spec.maps:
        exposure_irf, exposure = _region_exposure(obs, spec, offset)
        if "exposure" in spec.maps:
            out["exposure"] = exposure
        if "edisp" in spec.maps:
            out["exposure_irf"] = exposure_irf
            out["edisp"] = np.asarray(edisp_kernel(obs.edisp, offset, energy_true, energy))

    energy_range = safe_energy_range(
        spec.safe_mask,
        spectrum_safe_energy_inputs(obs, spec, out),
        aeff_percent=spec.aeff_percent,
        bias_percent=spec.bias_percent,
    )
    # the region centre as a one-pixel image
    mask = safe_mask(
        spec.safe_mask,
        energy,
        np.full((1, 1), offset),
        offset_max=spec.offset_max,
        energy_range=energy_range,
    )[:, 0, 0]
    mask &= n_off > 0
    mask &= out["acceptance_off"] > 0
    out["mask_safe"] = mask
    return out


def _region_exposure(obs, spec: SpectrumSpec, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Exposure (m2 s) at the on-region centre without and with the containment correction."""
    energy_true = spec.energy_true
    centres = np.sqrt(energy_true[:-1] * energy_true[1:])
    exposure_irf = np.asarray(evaluate_aeff(obs.aeff, centres, offset) * obs.livetime, float)
    if not spec.containment_correction:
        return exposure_irf, exposure_irf
    radius = spec.region.radius.to_value(u.deg)
    return exposure_irf, exposure_irf * _containment(obs.psf, centres, offset, radius)


def spectrum_safe_energy_inputs(obs, spec: SpectrumSpec, arrays: dict) -> SafeEnergyInputs:
    """What the energy safe-mask methods of one run's spectrum look at.

    Parameters
    ----------
    obs : gammaxr.data.Observation
        The run (its IRFs are read where needed).
    spec : SpectrumSpec
        The reduction spec (``safe_mask_irfs`` says where the methods look).
    arrays : dict of str to numpy.ndarray
        The run's spectrum arrays (:func:`spectrum_layout`); ``counts``, ``counts_off``,
        ``acceptance``, ``acceptance_off`` for ``bkg-peak``, and ``exposure`` / ``edisp``
        where made (else computed here).

    Returns
    -------
    SafeEnergyInputs
        ``"DL4"``: the spectrum's own (containment-corrected) exposure, its kernel at the
        on-region centre and the WStat background ``alpha (n_on + n_off) / (1 + alpha)``, as
        Gammapy's ``npred_background`` of an on/off spectrum without a source model.
        ``"DL3"``: the IRF tables at the offset of :func:`safe_mask_offset`.
    """
    methods, where = spec.safe_mask, f"obs_id {obs.obs_id}"
    if spec.safe_mask_irfs == "DL3":
        pointing = (float(obs.pointing.ra.deg), float(obs.pointing.dec.deg))
        at = safe_mask_offset(pointing, spec.safe_mask_position, spec.safe_mask_fixed_offset)
        tables = {
            name: getattr(obs, name) for name in ("aeff", "edisp", "bkg") if name in spec.hdus()
        }
        return table_energy_inputs(methods, offset=at, where=where, **tables)
    energy, energy_true = spec.energy, spec.energy_true
    offset = float(_anchor(spec.region).separation(obs.pointing).to_value(u.deg))
    inputs = {"where": where}
    if "aeff-default" in methods:
        inputs["aeff_thresholds"] = aeff_default_thresholds(obs.aeff, where)
    if "aeff-max" in methods:
        exposure = arrays.get("exposure")
        if exposure is None:
            exposure = _region_exposure(obs, spec, offset)[1]
        inputs["aeff"] = (np.sqrt(energy_true[:-1] * energy_true[1:]), exposure)
    if "edisp-bias" in methods:
        kernel = arrays.get("edisp")
        if kernel is None:
            kernel = np.asarray(edisp_kernel(obs.edisp, offset, energy_true, energy))
        inputs["edisp"] = (kernel, energy_true, energy)
    if "bkg-peak" in methods:
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = np.nan_to_num(arrays["acceptance"] / arrays["acceptance_off"])
        n_on, n_off = arrays["counts"], arrays["counts_off"]
        background = alpha * np.nan_to_num(wstat_mu_bkg(n_on, n_off, alpha, 0.0))
        inputs["background"] = (energy, background)
    return SafeEnergyInputs(**inputs)


def _attr_float(value) -> float:
    return float(np.asarray(value))


def spectrum_dataset(observation, spec: SpectrumSpec) -> xr.Dataset:
    """The on/off spectrum dataset of one run, eagerly (numpy-backed).

    Parameters
    ----------
    observation : gammaxr.data.Observation
        The run.
    spec : SpectrumSpec
        What to make.

    Returns
    -------
    xarray.Dataset
        Variables of :func:`spectrum_layout`; attrs hold the on region, the off regions
        (DS9 string), their number, the on-region offset and the run metadata.
    """
    off_regions = find_off_regions(observation, spec)
    arrays = spectrum_arrays(observation, spec, off_regions)
    layout = spectrum_layout(spec)
    data_vars = {n: (layout[n][0], a, layout[n][3]) for n, a in arrays.items()}
    ds = xr.Dataset(data_vars, coords=spec.coords(), attrs=spec.attrs())
    meta = run_coords([observation]).isel(obs_id=0)
    ds = ds.assign_attrs({k: _attr_float(v) for k, v in meta.coords.items() if k != "obs_id"})
    return ds.assign_attrs(
        obs_id=int(observation.obs_id),
        off_regions=regions_to_string(off_regions) if off_regions else "",
        n_off_regions=len(off_regions),
        offset_deg=_on_offset(spec, observation),
    )


def _on_offset(spec: SpectrumSpec, observation) -> float:
    try:
        return float(_anchor(spec.region).separation(observation.pointing).to_value(u.deg))
    except Exception:  # metadata missing: the run's task reports the real problem
        return float("nan")


def _off_regions_or_error(observation, spec: SpectrumSpec) -> tuple[str, int, str | None]:
    try:
        regions = find_off_regions(observation, spec)
    except Exception as exc:
        return "", 0, f"{type(exc).__name__}: {exc}"
    return (regions_to_string(regions) if regions else ""), len(regions), None


class _RunWithOffRegions:
    """A run and its off regions (found on the client when the graph is built), as the
    batch tasks of :func:`spectrum_runs` take it; pickles for process schedulers."""

    def __init__(self, observation, off_regions: str, error: str | None):
        self.observation, self.off_regions, self.error = observation, off_regions, error

    @property
    def obs_id(self) -> int:
        return self.observation.obs_id

    @property
    def files(self):
        return getattr(self.observation, "files", None)


def _run_arrays(run: _RunWithOffRegions, spec: SpectrumSpec) -> dict:
    if run.error is not None:
        raise RuntimeError(f"off regions could not be found: {run.error}")
    return spectrum_arrays(run.observation, spec, run.off_regions)


def spectrum_runs(
    observations: Sequence,
    spec: SpectrumSpec,
    *,
    on_error: str = "raise",
    runs_per_task: int | None = None,
) -> xr.Dataset:
    """Spectrum datasets of many runs, lazily: dim ``obs_id``, one dask task per run (per
    batch of runs beyond 64 runs), in blockwise layers as :func:`gammaxr.reduce.reduce_runs`.

    Parameters
    ----------
    observations : sequence of gammaxr.data.Observation
        The runs; their metadata and pointing are read now and their off regions found now
        (no event or IRF data is read).
    spec : SpectrumSpec
        What to make.
    on_error : {"raise", "skip"}
        What computing does with a run that fails (see
        :func:`gammaxr.reduce.runs.reduce_runs`); a skipped run has ``mask_safe`` all false
        and its reason in ``reduce_error(obs_id)``.
    runs_per_task : int, optional
        Runs per dask task (one chunk along ``obs_id``); default
        :func:`gammaxr.reduce.runs.runs_per_task` (one run per task up to 64 runs).

    Returns
    -------
    xarray.Dataset
        Variables of :func:`spectrum_layout` with a leading ``obs_id`` dim (one chunk per
        task), per-run coordinates along ``obs_id`` (livetime, pointing, zenith, ...,
        ``offset`` of the on region, ``off_regions`` as DS9 strings, ``n_off_regions``),
        the on region in ``attrs["on_region"]``. Stack with ``ds.gamma.stack()``.
    """
    _check_on_error(on_error)
    if len(observations) == 0:
        raise ValueError("no observations to reduce")
    runs, off_strings, n_off = [], [], []
    for obs in observations:
        regions, n, error = _off_regions_or_error(obs, spec)
        off_strings.append(regions)
        n_off.append(n)
        runs.append(_RunWithOffRegions(obs, regions, error))
    data_vars = stacked_run_variables(
        runs,
        partial(_run_arrays, spec=spec),
        spectrum_layout(spec),
        on_error,
        task_name="spectrum-runs",
        array_prefix="spectrum-",
        batch=runs_per_task,
    )
    coords = run_coords(observations).coords
    extra = {
        "offset": (
            "obs_id",
            np.array([_on_offset(spec, o) for o in observations]),
            {"units": "deg"},
        ),
        "n_off_regions": ("obs_id", np.array(n_off, dtype=int), {"units": ""}),
        "off_regions": ("obs_id", np.array(off_strings, dtype=str)),
    }
    ds = xr.Dataset(data_vars, coords={**spec.coords(), **coords})
    return ds.assign_coords(extra).assign_attrs(spec.attrs())


def spectrum_regions(ds: xr.Dataset, obs_id: int | None = None) -> dict[str, Any]:
    """The on region and the off regions of a spectrum dataset, as ``regions`` objects.

    Parameters
    ----------
    ds : xarray.Dataset
        A result of :func:`spectrum_dataset` (off regions in attrs) or :func:`spectrum_runs`
        (off regions in the ``off_regions(obs_id)`` coordinate).
    obs_id : int, optional
        The run whose off regions to return; needed when ``ds`` has an ``obs_id`` dim.

    Returns
    -------
    dict
        ``{"on": SkyRegion, "off": list of SkyRegion}``.
    """
    if "on_region" not in ds.attrs:
        raise KeyError("dataset has no 'on_region' attr (not a spectrum dataset)")
    if "obs_id" in ds.dims:
        if obs_id is None:
            raise ValueError("give obs_id: the dataset holds several runs")
        text = str(ds["off_regions"].sel(obs_id=obs_id).values)
    elif obs_id is not None and ds.attrs.get("obs_id") != obs_id:
        raise KeyError(f"dataset is run {ds.attrs.get('obs_id')}, not {obs_id}")
    else:
        text = ds.attrs.get("off_regions", "")
    off = parse_regions(text) if text.strip() else []
    return {"on": parse_regions(ds.attrs["on_region"])[0], "off": off}
