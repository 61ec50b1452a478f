"""The 1D analysis of the YAML description (``datasets.type: 1d``), and the options that the
3D pipeline reads from the newer sections (time ranges, required IRFs, fit energy range).

A 1D analysis, as Gammapy's ``AnalysisConfig`` with ``datasets.type: 1d`` does:

1. **select** the runs (obs_ids, cone, target, ``observations.time``,
   ``observations.required_irf``);
2. **reduce** each run to an on/off spectrum in ``datasets.on_region`` with reflected off
   regions avoiding ``background.exclusion`` (on the ``grid``), the exposure
   containment-corrected (``datasets.containment_correction``) and the safe mask of
   ``reduction`` (:func:`gammaxr.reduce.spectrum.spectrum_runs`, one dask task per run);
3. **stack** them (``datasets.stack``, the default) or keep the runs for a joint fit;
4. **fit** the sky models (WStat), inside ``fit.energy_range``;
5. **flux points** and a **light curve** (``estimators``);
6. write ``spectrum.zarr`` (the runs), ``stacked.zarr``, the fit tables and models, the flux
   points (gadf-sed ECSV) and the light curve (ECSV).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "apply_fit_energy_range",
    "run_spectrum_analysis",
    "select_time_and_irfs",
    "spectrum_spec",
]


def select_time_and_irfs(store, config) -> Any:
    """``observations.time`` and ``observations.required_irf`` applied to a data store."""
    sections = config.sections
    if sections is None:
        return store
    obs = sections.observations
    if obs.time is not None:
        start, stop = (_time(t) for t in (obs.time.start, obs.time.stop))
        store = store.select_time(start, stop, how=obs.time.how)
    if obs.required_irf:
        store = store.select_irfs(*obs.required_irf)
    return store


def _time(value: Any) -> Any:
    from astropy.time import Time

    if value is None or isinstance(value, float):
        return value
    return Time(value, scale="utc")


def apply_fit_energy_range(ds: xr.Dataset, config) -> xr.Dataset:
    """The dataset with ``mask_fit`` set to the reco bins inside ``fit.energy_range``."""
    from gammaxr.geom.axes import axis_edges
    from gammaxr.reduce.safe_mask import energy_range_mask

    fit = config.sections.fit if config.sections is not None else None
    if fit is None or fit.energy_range is None:
        return ds
    inside = energy_range_mask(axis_edges(ds, "energy"), fit.energy_range.min, fit.energy_range.max)
    if not inside.any():
        raise ValueError(
            f"fit.energy_range [{fit.energy_range.min}, {fit.energy_range.max}] TeV holds no "
            "whole reco-energy bin"
        )
    mask = xr.DataArray(inside, dims="energy")
    if "mask_fit" in ds:
        mask = mask & ds["mask_fit"]
    return ds.assign(mask_fit=mask.broadcast_like(ds["mask_safe"]))


def spectrum_spec(config):
    """The per-run spectrum reduction of a ``datasets.type: 1d`` description.

    Parameters
    ----------
    config : gammaxr.analysis.AnalysisConfig

    Returns
    -------
    gammaxr.reduce.spectrum.SpectrumSpec
        On region, energy axes, containment correction and safe mask of the description;
        off regions avoid the exclusion regions rasterised on ``grid``.
    """
    from gammaxr.geom import SkyGrid, exclusion_mask
    from gammaxr.reduce.spectrum import SpectrumSpec

    sections = config.sections
    exclusion = None
    if config.exclusion is not None:
        grid = SkyGrid.from_center(config.center, config.width, config.binsz, frame=config.frame)
        exclusion = exclusion_mask(grid, config.exclusion)
    return SpectrumSpec(
        sections.datasets.on_region,
        config.energy_edges,
        config.energy_true_edges,
        exclusion=exclusion,
        containment_correction=sections.datasets.containment_correction,
        safe_mask=config.safe_mask,
        offset_max=config.offset_max,
        aeff_percent=config.aeff_percent,
        safe_mask_irfs=sections.reduction.safe_mask_irfs,
    )


def _runs_table(runs: xr.Dataset) -> xr.Dataset:
    """Per-run counts inside the safe mask, alpha and first safe energy (dim ``obs_id``)."""
    from gammaxr.geom.axes import axis_edges

    mask = runs["mask_safe"]
    edges = axis_edges(runs, "energy")
    first = [
        float(edges[np.argmax(m)]) if m.any() else np.nan
        for m in np.asarray(mask.transpose("obs_id", "energy").values)
    ]
    alpha = (runs["acceptance"] / runs["acceptance_off"]).where(mask).mean("energy")
    return xr.Dataset(
        {
            "run_n_on": runs["counts"].where(mask, 0).sum("energy"),
            "run_n_off": runs["counts_off"].where(mask, 0).sum("energy"),
            "run_alpha": alpha,
            "run_safe_energy_min": ("obs_id", np.array(first), {"units": "TeV"}),
        }
    ).reset_coords(drop=True)


def run_spectrum_analysis(
    config, out_dir: Path | None, *, timer, say, progress: bool | None = None
) -> xr.Dataset:
    """Run a ``datasets.type: 1d`` description (see the module docstring).

    Parameters
    ----------
    config : gammaxr.analysis.AnalysisConfig
    out_dir : pathlib.Path or None
        Output directory (already checked), or None: nothing written.
    timer : gammaxr.analysis.pipeline.StepTimer
    say : callable
        Called with one line per step.
    progress : bool or None
        Progress bars.

    Returns
    -------
    xarray.Dataset
        Fit table (dim ``param``), flux points (``sed_*``, dim ``energy``), light curve
        (``lc_*``, dim ``time_bin``), per-run table (``run_*``, dim ``obs_id``); attrs the
        stacked totals and timings.
    """
    from gammaxr.analysis.pipeline import (
        AnalysisError,
        configured_flux_points,
        results_dataset,
        select_observations,
    )
    from gammaxr.estimators.light_curve import light_curve
    from gammaxr.fit import fit
    from gammaxr.io.zarr_store import to_zarr
    from gammaxr.progress import compute
    from gammaxr.reduce.spectrum import spectrum_runs

    with timer("select"):
        observations = select_observations(config)
    with timer("reduce"):
        lazy = spectrum_runs(observations, spectrum_spec(config), on_error=config.on_error)
        (runs,) = compute(lazy, progress=progress)
        stacked = runs.gamma.stack().assign_attrs(name=config.name)
    say(f"reduce: {runs.sizes['obs_id']} runs -> on/off spectra ({timer.seconds['reduce']:.1f} s)")
    datasets = stacked if config.sections.datasets.stack else runs
    result = fp = lc = None
    if config.models is not None:
        models = config.models
        if models.background_models:
            raise AnalysisError("a 1D on/off analysis has no background model to fit")
        with timer("fit"):
            result = fit(apply_fit_energy_range(datasets, config), models)
        say(f"fit: success={result.success} ({timer.seconds['fit']:.1f} s)")
        if config.flux_points is not None:
            with timer("flux_points"):
                fp = configured_flux_points(config, stacked, result.models, progress)
        options = config.sections.estimators
        if options is not None and options.light_curve is not False:
            opts = options.light_curve
            intervals = None
            if opts.time_intervals is not None:
                intervals = [[_time(a), _time(b)] for a, b in opts.time_intervals]
            with timer("light_curve"):
                lc = light_curve(
                    runs,
                    result.models,
                    intervals,
                    energy_edges=opts.energy_edges,
                    source=opts.source or config.models.sky_models[0].name,
                    progress=progress,
                )
    results = results_dataset(config, _with_maps_totals(stacked), result, fp)
    results = xr.merge([results, _runs_table(runs)], combine_attrs="override", join="outer")
    if lc is not None:
        lc_vars = lc.rename({v: f"lc_{v}" for v in lc.data_vars}).drop_attrs(deep=False)
        if "energy" in lc_vars.dims:  # its own energy bins, apart from the flux points'
            energy_coords = [c for c in lc_vars.coords if "energy" in lc_vars[c].dims]
            lc_vars = lc_vars.drop_vars(energy_coords).rename_dims(energy="lc_energy")
        results = xr.merge(
            [results, lc_vars], compat="override", combine_attrs="override", join="outer"
        )
    if out_dir is not None:
        with timer("outputs"):
            _write(out_dir, config, results, runs, stacked, result, fp, lc, to_zarr)
    return results


def _with_maps_totals(stacked: xr.Dataset) -> xr.Dataset:
    """A spectrum stack with the ``background`` total that results_dataset reports (alpha x
    off counts) and the frame attr it copies."""
    alpha = (stacked["acceptance"] / stacked["acceptance_off"]).fillna(0)
    background = (alpha * stacked["counts_off"]).assign_attrs(units="")
    return stacked.assign(background=background).assign_attrs(frame="icrs")


def _write(out_dir, config, results, runs, stacked, result, fp, lc, to_zarr) -> None:
    from gammaxr.analysis.outputs import parameters_table

    (out_dir / "config.yaml").write_text(config.to_yaml())
    to_zarr(runs, out_dir / "spectrum.zarr")
    to_zarr(stacked, out_dir / "stacked.zarr")
    if result is not None:
        parameters_table(results).to_csv(out_dir / "fit_parameters.csv")
        result.models.write(out_dir / "models_fitted.yaml", overwrite=True, covariance=True)
    if fp is not None:
        from gammaxr.io.gadf_sed import write_flux_points

        write_flux_points(fp, out_dir / "flux_points.ecsv", overwrite=True)
    if lc is not None:
        from gammaxr.io.gadf_sed import write_flux_points

        write_flux_points(lc, out_dir / "light_curve.ecsv", sed_type="flux", overwrite=True)
