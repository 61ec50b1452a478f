"""The analysis pipeline: data store -> stacked dataset -> fit, maps, flux points, figures.

:func:`run_analysis` runs one :class:`~gammaxr.analysis.config.AnalysisConfig`:

1. **select** the runs of the data store (obs_ids, cone, target);
2. **reduce** them lazily with dask, one task per run (:func:`gammaxr.reduce.runs.reduce_runs`
   on the configured grid), renormalise each run's background to its counts outside the
   exclusion regions (``background.method: fov``; :func:`gammaxr.reduce.fov_background`), or
   build ring on/off maps per run (``ring``; :func:`gammaxr.reduce.ring.ring_background`),
   **stack** (:func:`gammaxr.reduce.stack.stack_runs`) and write ``stacked.zarr`` (the
   computation happens in this write), then re-open it lazily;
3. **fit** the models (plus a FoV background norm for the stacked dataset) with
   :func:`gammaxr.fit.fit` (the compute boundary of fitting);
4. **flux points** of one source (:func:`gammaxr.estimators.flux_points.flux_points`);
5. **excess map**: correlated excess and significance summed over the safe energy range
   (cash against the background for ``fov``; wstat of the ring on/off maps for ``ring``) and
   the distribution of the significance outside the exclusion regions;
6. **outputs** (:mod:`gammaxr.analysis.outputs`): tables, models, figures and ``summary.txt``.

The returned ``xr.Dataset`` holds the results (see :func:`run_analysis`). With ``truth``
models (a simulation's), fitted values are compared with the true ones (``pull``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import numpy as np
import xarray as xr

from gammaxr.analysis.config import AnalysisConfig, parse_analysis_config, read_analysis_config
from gammaxr.analysis.outputs import OUTPUT_NAMES, analysis_summary, write_outputs
from gammaxr.analysis.spectrum_pipeline import (
    apply_fit_energy_range,
    run_spectrum_analysis,
    select_time_and_irfs,
)
from gammaxr.models import FoVBackgroundModel, Models
from gammaxr.progress import compute

__all__ = [
    "AnalysisError",
    "StepTimer",
    "configured_flux_points",
    "excess_products",
    "fit_models",
    "reduce_and_stack",
    "reduction_spec",
    "results_dataset",
    "run_analysis",
    "select_observations",
]

#: Variables of the excess map kept in the results (renamed).
_MAP_VARS = {"significance": "significance", "excess": "excess", "counts": "counts_correlated"}
_MAP_VARS["background"] = "background_correlated"


class AnalysisError(RuntimeError):
    """The analysis cannot go on (no runs selected, no usable data, ...)."""


class StepTimer:
    """Wall-clock seconds per pipeline step (``with timer("fit"): ...``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    @property
    def total(self) -> float:
        """Seconds since the timer was made."""
        return time.perf_counter() - self._start


def _as_config(config: AnalysisConfig | Mapping | str | os.PathLike) -> AnalysisConfig:
    if isinstance(config, AnalysisConfig):
        return config
    if isinstance(config, Mapping):
        return parse_analysis_config(config, source="configuration")
    return read_analysis_config(config)


def select_observations(config: AnalysisConfig) -> list:
    """The runs of ``config``'s data store and selection.

    Returns the lazy :class:`~gammaxr.data.Observation` objects (nothing read yet).

    Raises
    ------
    AnalysisError
        If the selection leaves no run.
    """
    from gammaxr.data import open_datastore

    store = open_datastore(config.datastore)
    if config.obs_ids is not None:
        store = store.select_obs_ids(config.obs_ids)
    if config.cone is not None:
        c = config.cone
        store = store.select_cone((c["lon"], c["lat"]), c["radius"], frame=c["frame"])
    if config.target is not None:
        store = store.select_target(config.target)
    store = select_time_and_irfs(store, config)
    if len(store.obs_ids) == 0:
        raise AnalysisError(f"{config.datastore}: no run left after the selection")
    return store.observations(store.obs_ids)


def reduction_spec(config: AnalysisConfig):
    """The reduction of the configuration: shared grid, energy axes, maps and safe masks.

    Parameters
    ----------
    config : AnalysisConfig

    Returns
    -------
    gammaxr.reduce.dataset.ReductionSpec
        On :meth:`gammaxr.geom.SkyGrid.from_center` of ``config.center``, ``width`` (deg on
        the sky), ``binsz`` (deg) and ``frame``.
    """
    from gammaxr.geom import SkyGrid
    from gammaxr.reduce.dataset import ReductionSpec

    grid = SkyGrid.from_center(config.center, config.width, config.binsz, frame=config.frame)
    return ReductionSpec(
        energy_edges=config.energy_edges,
        energy_true_edges=config.energy_true_edges,
        grid=grid,
        maps=config.maps,
        safe_mask=config.safe_mask,
        offset_max=config.offset_max,
        aeff_percent=config.aeff_percent,
        irf_binsz=config.irf_binsz,
        safe_mask_irfs=config.sections.reduction.safe_mask_irfs if config.sections else "DL4",
    )


def reduce_and_stack(config: AnalysisConfig, observations: list) -> dict[str, xr.Dataset]:
    """Lazy per-run reduction, background estimation and stacking.

    Parameters
    ----------
    config : AnalysisConfig
    observations : list of gammaxr.data.Observation

    Returns
    -------
    dict of str to xarray.Dataset
        ``"stacked"``: the stacked map dataset (``name`` attr set to the configuration's);
        with ``background: ring`` also ``"ring"``: the stacked on/off image. Both lazy
        (dask); nothing is computed here.
    """
    from gammaxr.reduce.runs import reduce_runs

    runs = reduce_runs(observations, reduction_spec(config), on_error=config.on_error)
    out = {}
    if config.background == "fov":
        runs = runs.gamma.fov_background(
            config.exclusion, method=config.fov_method, fit_tilt=config.fov_fit_tilt
        )
    else:
        keep = [v for v in runs.data_vars if v not in ("counts", "background", "mask_safe")]
        ring = runs.drop_vars(keep).gamma.ring_background(
            config.ring_r_in, config.ring_width, config.exclusion
        )
        out["ring"] = ring.gamma.stack().assign_attrs(name=f"{config.name}-ring")
    stacked = runs.gamma.stack()
    out["stacked"] = stacked.assign_attrs(name=config.name)
    return out


def fit_models(config: AnalysisConfig) -> Models:
    """The models to fit: the configured ones plus a FoV background norm if asked.

    Parameters
    ----------
    config : AnalysisConfig

    Returns
    -------
    Models
        ``config.models``, plus ``FoVBackgroundModel(config.name)`` (named
        ``"<name>-bkg"``, norm free, tilt frozen) when ``config.background_model`` is set and
        the models have no background model.

    Raises
    ------
    AnalysisError
        If the configuration has no models.
    """
    models = config.models
    if models is None:
        raise AnalysisError("no models to fit (fit.models)")
    if config.background_model and not models.background_models:
        models = Models([*models, FoVBackgroundModel(config.name)])
    return models


def configured_flux_points(
    config: AnalysisConfig, stacked: xr.Dataset, models: Models, progress: bool | None = None
) -> xr.Dataset:
    """Flux points of ``estimators.flux_points`` on the stacked dataset (fitted models)."""
    return stacked.gamma.flux_points(
        models,
        config.flux_points["energy_edges"],
        source=config.flux_points["source"],
        convention=config.convention,
        progress=progress,
    )


def excess_products(
    config: AnalysisConfig, stacked: xr.Dataset, ring: xr.Dataset | None = None
) -> xr.Dataset:
    """The energy-summed excess / significance map (lazy) with ``use_off``: off-source pixels.

    Parameters
    ----------
    config : AnalysisConfig
    stacked : xarray.Dataset
        Stacked map dataset (``counts``, ``background``, ``mask_safe``).
    ring : xarray.Dataset, optional
        Stacked ring on/off image (``background: ring``).

    Returns
    -------
    xarray.Dataset
        :func:`gammaxr.estimators.excess_map.excess_map` outputs over ``(lat, lon)`` plus
        ``use_off`` (bool: inside the map's mask and outside the exclusion regions).
    """
    from gammaxr.estimators.excess_map import excess_map
    from gammaxr.geom.axes import axis_edges
    from gammaxr.reduce.fov_background import exclusion_on_grid

    radius = config.excess_map["correlation_radius"]
    if ring is not None:
        em = excess_map(ring, radius, correlate_off=False)
    else:
        keep = ("counts", "background", "mask_safe", "mask_fit")
        ds = stacked.drop_vars([v for v in stacked.data_vars if v not in keep])
        edges = axis_edges(ds, "energy")
        em = excess_map(ds, radius, energy_edges=[float(edges[0]), float(edges[-1])])
        bands = config.excess_map.get("energy_edges")
        if bands is not None:  # one map per band besides the whole range
            per_band = excess_map(ds, radius, energy_edges=bands)[["significance", "excess"]]
            per_band = per_band.reset_coords(drop=True).drop_vars("energy")
            per_band = per_band.rename({"energy": "energy_band"})
            em = em.assign(
                significance_bands=per_band["significance"],
                excess_bands=per_band["excess"],
            ).assign_attrs(energy_band_edges_tev=[float(e) for e in bands])
    if "energy" in em.dims:  # one band: the whole safe energy range
        em = em.isel(energy=0, drop=True)
    em = em.drop_vars([c for c in em.coords if set(em[c].dims) - {"lat", "lon"}])
    use = em["mask"]
    excl = exclusion_on_grid(em.assign_attrs(frame=stacked.attrs["frame"]), config.exclusion)
    if excl is not None:
        use = use & excl
    return em.assign(use_off=use.assign_attrs(units=""))


def _write_stacked(
    products: dict[str, xr.Dataset], out_dir: Path | None, progress: bool | None = None
) -> dict[str, xr.Dataset]:
    """Compute the lazy products (once, together) into zarr stores and re-open them lazily;
    in memory without an output directory."""
    from gammaxr.io.run_status import settle_run_status
    from gammaxr.io.zarr_store import open_dataset, quiet_zarr_warnings, to_zarr

    if out_dir is None:
        computed = compute(*products.values(), progress=progress)
        return {name: settle_run_status(ds) for name, ds in zip(products, computed, strict=True)}
    writes = [to_zarr(ds, out_dir / f"{name}.zarr", compute=False) for name, ds in products.items()]
    with quiet_zarr_warnings():
        compute(*writes, progress=progress)
    return {name: open_dataset(out_dir / f"{name}.zarr") for name in products}


def _check_output(out_dir: Path, overwrite: bool) -> bool:
    """Prepare the output directory; with ``overwrite`` the previous run's outputs (only the
    :data:`OUTPUT_NAMES`) are removed, so none is left stale beside the new ones. Returns
    whether the directory was created."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    present = [n for n in OUTPUT_NAMES if (out_dir / n).exists()]
    if present and not overwrite:
        raise FileExistsError(
            f"{out_dir} already holds analysis outputs {present}; use overwrite=True "
            "(--overwrite) or another directory"
        )
    _remove_outputs(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    return created


def _remove_outputs(out_dir: Path) -> None:
    """Delete the analysis outputs (:data:`OUTPUT_NAMES`) in ``out_dir``, nothing else."""
    for name in OUTPUT_NAMES:
        path = out_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _clean_failed_run(out_dir: Path, created: bool) -> None:
    """After a failed run: remove its partial outputs, and the directory if it made it and
    it is left empty."""
    _remove_outputs(out_dir)
    if created and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()


def results_dataset(
    config: AnalysisConfig,
    stacked: xr.Dataset,
    result: Any = None,
    flux_points: xr.Dataset | None = None,
    excess: xr.Dataset | None = None,
    truth: Models | None = None,
) -> xr.Dataset:
    """Gather the results of a run into one dataset (numbers computed here).

    Parameters
    ----------
    config : AnalysisConfig
    stacked : xarray.Dataset
        The stacked dataset (totals go to attrs).
    result : gammaxr.fit.FitResult, optional
    flux_points : xarray.Dataset, optional
    excess : xarray.Dataset, optional
        Output of :func:`excess_products`.
    truth : Models, optional
        True models: ``true_value`` and ``pull = (value - true) / error`` per parameter.

    Returns
    -------
    xarray.Dataset
        See :func:`run_analysis`.
    """
    from gammaxr.plot.maps import significance_distribution

    parts: list[xr.Dataset] = []
    attrs: dict[str, Any] = {"name": config.name, "datastore": str(config.datastore)}
    attrs["obs_ids"] = [int(i) for i in stacked.attrs.get("stacked_obs_ids", [])]
    attrs["livetime_s"] = float(stacked.attrs.get("livetime_total", np.nan))
    attrs["skipped_obs_ids"] = [int(i) for i in stacked.attrs.get("skipped_obs_ids", [])]
    attrs["skipped_reasons"] = [str(r) for r in stacked.attrs.get("skipped_reasons", [])]
    mask = stacked["mask_safe"]
    totals = compute(
        stacked["counts"].where(mask).sum(), stacked["background"].where(mask).sum(), progress=False
    )
    attrs["counts_total"], attrs["background_total"] = (float(t) for t in totals)
    if result is not None:
        table = result.parameters.copy()
        attrs.update({f"fit_{k}": v for k, v in table.attrs.items()})
        table.attrs = {}
        if truth is not None:
            names = [r.full_name for r, _ in truth.parameters]
            true = [
                truth.parameter(n).value if n in names else np.nan for n in table["param"].values
            ]
            table["true_value"] = ("param", np.asarray(true, float))
            with np.errstate(divide="ignore", invalid="ignore"):
                pull = (table["value"] - table["true_value"]) / table["error"]
            table["pull"] = pull.where(~table["frozen"] & (table["error"] > 0))
        parts.append(table)
    if flux_points is not None:
        fp = flux_points.rename({v: f"sed_{v}" for v in flux_points.data_vars})
        attrs["sed_source"] = flux_points.attrs.get("source", "")
        parts.append(fp.drop_attrs(deep=False))
    if excess is not None:
        em = excess.compute()
        maps = em[list(_MAP_VARS)].rename(_MAP_VARS)
        dist = significance_distribution(em["significance"], em["use_off"])
        attrs.update({f"significance_off_{k}": v for k, v in dist.items()})
        attrs["significance_max"] = float(em["significance"].max())
        attrs["correlation_radius_deg"] = float(em.attrs["correlation_radius_deg"])
        bands = [v for v in ("significance_bands", "excess_bands") if v in em]
        maps = maps.assign({v: em[v] for v in bands})
        parts.append(maps.assign(use_off=em["use_off"]).drop_attrs(deep=False))
    out = xr.merge(parts, compat="override", combine_attrs="override") if parts else xr.Dataset()
    out.attrs = {"frame": stacked.attrs["frame"], **attrs}  # variables keep their units
    return out


def run_analysis(
    config: AnalysisConfig | Mapping | str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
    truth: Models | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Run the configured analysis; returns the results and writes the outputs.

    Parameters
    ----------
    config : AnalysisConfig, mapping or path
        The analysis (a validated config, a description mapping or a YAML file).
    output : str or os.PathLike, optional
        Output directory (default ``config.output``; None for both: nothing written).
    overwrite : bool
        Replace outputs of an earlier run in the directory: they (the files of
        :data:`~gammaxr.analysis.outputs.OUTPUT_NAMES`, nothing else) are deleted first, so
        none is left stale beside the new ones. A run that fails removes its partial outputs,
        and the directory too if it created it.
    truth : Models, optional
        True models (simulations): fitted values are compared with them.
    log : callable, optional
        Called with one line per finished step (e.g. ``print``).
    progress : bool or None
        Show progress bars of the reduction, flux points and maps (None: the
        :func:`gammaxr.progress.show_progress` context).

    Returns
    -------
    xarray.Dataset
        Fit table (dim ``param``: ``value``, ``error``, ``min``, ``max``, ``frozen``,
        ``unit``, ``link``, ``covariance(param, param2)``; with truth ``true_value``,
        ``pull``), flux points (dim ``energy``, variables prefixed ``sed_``: ``sed_e2dnde``
        [TeV cm-2 s-1], ``sed_e2dnde_err``, ``sed_ts``, ...), energy-summed maps (dims
        ``lat``, ``lon``: ``significance``, ``excess``, ``counts_correlated``,
        ``background_correlated``, ``use_off``). Attrs: run totals, ``fit_success``,
        ``fit_total_stat``, ..., ``significance_off_mean`` / ``_sigma`` (off-source pixel
        distribution), ``significance_max``, ``seconds_<step>`` (wall-clock timings),
        ``output`` (directory or "").

    Raises
    ------
    AnalysisConfigError
        For an invalid description.
    AnalysisError
        If no run is selected or the models cannot be fitted.
    FileExistsError
        If the output directory holds earlier outputs and ``overwrite`` is False.
    """
    timer = StepTimer()
    say = log or (lambda _line: None)
    config = _as_config(config)
    out_dir = Path(output) if output is not None else config.output
    created = False
    if out_dir is not None:
        created = _check_output(out_dir, overwrite)
    try:
        results = _run_steps(config, out_dir, timer, say, truth, progress)
    except BaseException:
        if out_dir is not None:
            _clean_failed_run(out_dir, created)
        raise
    timings = {f"seconds_{k}": round(v, 3) for k, v in timer.seconds.items()}
    results.attrs.update(timings, seconds_total=round(timer.total, 3), output=str(out_dir or ""))
    if out_dir is not None:
        (out_dir / "summary.txt").write_text(analysis_summary(results) + "\n")
    return results


def _run_steps(
    config: AnalysisConfig,
    out_dir: Path | None,
    timer: StepTimer,
    say: Callable,
    truth: Models | None,
    progress: bool | None,
) -> xr.Dataset:
    """The steps of :func:`run_analysis` (reduce, fit, estimators, outputs)."""
    from gammaxr.fit import fit
    from gammaxr.reduce.cluster import scheduler_context

    workers = {} if config.num_workers is None else {"num_workers": config.num_workers}
    with scheduler_context(config.scheduler) as chosen, dask.config.set({**chosen, **workers}):
        if config.sections is not None and config.sections.datasets.type == "1d":
            results = run_spectrum_analysis(
                config, out_dir, timer=timer, say=say, progress=progress
            )
            timings = {f"seconds_{k}": round(v, 3) for k, v in timer.seconds.items()}
            results.attrs.update(timings, seconds_total=round(timer.total, 3))
            results.attrs["output"] = str(out_dir or "")
            return results
        with timer("select"):
            observations = select_observations(config)
        with timer("reduce"):
            products = _write_stacked(reduce_and_stack(config, observations), out_dir, progress)
        stacked = products["stacked"]
        skipped = len(stacked.attrs.get("skipped_obs_ids", []))
        say(
            f"reduce: {len(observations)} runs -> stacked dataset"
            + (f" ({skipped} skipped, see the summary)" if skipped else "")
            + f" ({timer.seconds['reduce']:.1f} s)"
        )
        result = fp = excess = None
        if config.models is not None:
            with timer("fit"):
                result = fit(
                    apply_fit_energy_range(stacked, config),
                    fit_models(config),
                    convention=config.convention,
                )
            say(
                f"fit: success={result.success}, {result.nfev} evaluations ({timer.seconds['fit']:.1f} s)"
            )
            if config.flux_points is not None:
                with timer("flux_points"):
                    fp = configured_flux_points(config, stacked, result.models, progress)
                say(
                    f"flux points: {fp.sizes['energy']} bins ({timer.seconds['flux_points']:.1f} s)"
                )
        if config.excess_map is not None:
            with timer("excess_map"):
                (excess,) = compute(
                    excess_products(config, stacked, products.get("ring")), progress=progress
                )
            say(f"excess map ({timer.seconds['excess_map']:.1f} s)")
        results = results_dataset(config, stacked, result, fp, excess, truth)
        if out_dir is not None:
            with timer("outputs"):
                write_outputs(
                    out_dir, config, results, stacked, result=result, flux_points=fp,
                    excess=excess, plots=config.plots,
                )  # fmt: skip
            say(f"outputs -> {out_dir} ({timer.seconds['outputs']:.1f} s)")
    return results
