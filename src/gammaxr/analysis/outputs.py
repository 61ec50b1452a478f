"""What an analysis run writes: tables, models, maps, figures and a text summary.

Files in the output directory (:data:`OUTPUT_NAMES`):

- ``stacked.zarr`` (and ``ring.zarr``): the stacked dataset(s), re-open with
  :func:`gammaxr.open_dataset`;
- ``config.yaml``: the description that was run;
- ``fit_parameters.csv``: one row per parameter (value, error, min, max, frozen, unit, link;
  with truth: true_value, pull); ``fit_result.yaml``: fit status, values and covariance;
- ``models_fitted.yaml`` and ``models_fitted_covariance.dat``: the fitted models and their
  covariance in Gammapy's model YAML (:meth:`Models.read` / Gammapy's ``Models.read``);
- ``flux_points.ecsv``: the flux points as a gadf-sed table with units (``SED_TYPE``
  likelihood: e_ref, e_min, e_max, reference fluxes, norms with errors and upper limits, ts,
  sqrt_ts, is_ul...), read by :func:`gammaxr.read_gammapy` and Gammapy's ``FluxPoints.read``;
- ``excess_map.zarr``: the energy-summed correlated excess / significance maps;
- figures ``counts.png``, ``significance.png``, ``significance_distribution.png``,
  ``residuals.png``, ``spectrum.png``;
- ``summary.txt``: :func:`analysis_summary`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from gammaxr.geom.axes import axis_lo_hi

__all__ = [
    "FIGURE_NAMES",
    "OUTPUT_NAMES",
    "analysis_summary",
    "parameters_table",
    "write_figures",
    "write_outputs",
]

FIGURE_NAMES = (
    "counts.png",
    "significance.png",
    "significance_distribution.png",
    "residuals.png",
    "spectrum.png",
)
OUTPUT_NAMES = (
    "stacked.zarr",
    "ring.zarr",
    "config.yaml",
    "fit_parameters.csv",
    "fit_result.yaml",
    "models_fitted.yaml",
    "models_fitted_covariance.dat",
    "flux_points.ecsv",
    "excess_map.zarr",
    *FIGURE_NAMES,
    "summary.txt",
)
_TABLE_COLUMNS = ("value", "error", "min", "max", "frozen", "unit", "link", "true_value", "pull")


def parameters_table(results: xr.Dataset):
    """The fit parameters as a table.

    Parameters
    ----------
    results : xarray.Dataset
        With dim ``param`` (:func:`gammaxr.analysis.pipeline.results_dataset`).

    Returns
    -------
    pandas.DataFrame
        Indexed by full parameter name; columns ``value``, ``error``, ``min``, ``max``,
        ``frozen``, ``unit``, ``link`` (and ``true_value``, ``pull`` when present).
    """
    columns = [c for c in _TABLE_COLUMNS if c in results]
    return results[columns].to_dataframe()[columns]


def _fit_yaml(result: Any) -> str:
    table = result.parameters
    free = ~table["frozen"].values
    names = [str(n) for n in table["param"].values[free]]
    cov = table["covariance"].values[np.ix_(free, free)]
    data = {
        "success": bool(table.attrs["success"]),
        "message": str(table.attrs["message"]),
        "total_stat": float(table.attrs["total_stat"]),
        "nfev": int(table.attrs["nfev"]),
        "parameters": {
            str(n): {
                "value": float(table["value"].sel(param=n)),
                "error": float(table["error"].sel(param=n)),
                "unit": str(table["unit"].sel(param=n).values),
                "frozen": bool(table["frozen"].sel(param=n)),
            }
            for n in table["param"].values
        },
        "covariance": {"parameters": names, "matrix": cov.tolist()},
    }
    return yaml.safe_dump(data, sort_keys=False)


def _mark_sources(ax: Any, models: Any) -> None:
    """Fitted source positions as crosses on WCS axes."""
    for i, model in enumerate(models.sky_models):
        spatial = model.spatial
        if spatial is None or "lon_0" not in spatial.parameter_names:
            continue
        frame = getattr(spatial, "frame", "icrs")
        ax.scatter(
            spatial.lon_0.value, spatial.lat_0.value, transform=ax.get_transform(frame),
            marker="+", s=80, color=f"C{i + 1}", label=model.name,
        )  # fmt: skip
    if models.sky_models:
        ax.legend(loc="upper right", fontsize="small")


def write_figures(
    out_dir: Path,
    stacked: xr.Dataset,
    *,
    result: Any = None,
    flux_points: xr.Dataset | None = None,
    excess: xr.Dataset | None = None,
    source: str | None = None,
) -> list[Path]:
    """Write the PNG figures of an analysis (Agg backend; a compute boundary).

    Parameters
    ----------
    out_dir : pathlib.Path
        Output directory.
    stacked : xarray.Dataset
        The stacked map dataset.
    result : gammaxr.fit.FitResult, optional
        Fit result (residuals against the fitted models, spectra with error bands).
    flux_points : xarray.Dataset, optional
        Flux points of ``source``.
    excess : xarray.Dataset, optional
        Excess map products (:func:`gammaxr.analysis.pipeline.excess_products`).
    source : str, optional
        Name of the flux points' source.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from gammaxr.plot import (
        plot_dataset_map,
        plot_residuals,
        plot_significance_distribution,
        plot_significance_map,
        plot_spectrum,
    )
    from gammaxr.plot.labels import energy_range, energy_range_text

    written = []

    def save(fig, name: str) -> None:
        path = out_dir / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    erange = energy_range_text(energy_range(stacked))
    ax = plot_dataset_map(stacked, "counts", title=f"counts, {erange} (safe)")
    save(ax.figure, "counts.png")
    if excess is not None:
        sig = excess["significance"]
        radius = f"r = {excess.attrs['correlation_radius_deg']:g} deg"
        ax = plot_significance_map(
            sig.assign_attrs(frame=stacked.attrs["frame"]),
            title=f"significance, {radius}, {erange}",
        )
        if result is not None:
            _mark_sources(ax, result.models)
        save(ax.figure, "significance.png")
        ax = plot_significance_distribution(
            sig, excess["use_off"], label="off-source pixels",
            title=f"significance distribution, {radius}, {erange}",
        )  # fmt: skip
        save(ax.figure, "significance_distribution.png")
    fig = plot_residuals(stacked, result.models if result is not None else None)
    save(fig, "residuals.png")
    if result is not None:
        fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
        for i, model in enumerate(result.models.sky_models):
            fp = flux_points if model.name == source else None
            plot_spectrum(model, result, fp, ax=ax, color=f"C{i}", energy_range=_range(stacked))
        ax.set_title(f"fitted spectra, {energy_range_text(_range(stacked))}")
        save(fig, "spectrum.png")
    return written


def _range(stacked: xr.Dataset) -> tuple[float, float]:
    lo, hi = axis_lo_hi(stacked, "energy")
    return float(np.min(lo)), float(np.max(hi))


def write_outputs(
    out_dir: Path,
    config: Any,
    results: xr.Dataset,
    stacked: xr.Dataset,
    *,
    result: Any = None,
    flux_points: xr.Dataset | None = None,
    excess: xr.Dataset | None = None,
    plots: bool = True,
) -> None:
    """Write the tables, models, maps and figures of an analysis (module docstring).

    Parameters
    ----------
    out_dir : pathlib.Path
        Existing output directory (``stacked.zarr`` is already there).
    config : AnalysisConfig
        The configuration run.
    results : xarray.Dataset
        Output of :func:`gammaxr.analysis.pipeline.results_dataset`.
    stacked : xarray.Dataset
        The stacked dataset.
    result, flux_points, excess : optional
        Fit result, flux points and excess map products.
    plots : bool
        Write the PNG figures.
    """
    from gammaxr.io.zarr_store import to_zarr

    (out_dir / "config.yaml").write_text(config.to_yaml())
    if result is not None:
        parameters_table(results).to_csv(out_dir / "fit_parameters.csv")
        (out_dir / "fit_result.yaml").write_text(_fit_yaml(result))
        result.models.write(out_dir / "models_fitted.yaml", overwrite=True, covariance=True)
    if flux_points is not None:
        from gammaxr.io.gadf_sed import write_flux_points

        write_flux_points(flux_points, out_dir / "flux_points.ecsv", overwrite=True)
    if excess is not None:
        to_zarr(excess.assign_attrs(frame=stacked.attrs["frame"]), out_dir / "excess_map.zarr")
    if plots:
        source = flux_points.attrs.get("source") if flux_points is not None else None
        write_figures(
            out_dir, stacked, result=result, flux_points=flux_points, excess=excess,
            source=source,
        )  # fmt: skip


def _fmt(value: float) -> str:
    if not np.isfinite(value):
        return "nan"
    return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"


def _skipped_lines(attrs: dict) -> list[str]:
    """One line per run that was selected but does not contribute, with the reason."""
    ids, reasons = attrs.get("skipped_obs_ids", []), attrs.get("skipped_reasons", [])
    skipped = list(zip(ids, reasons, strict=True))
    if not skipped:
        return []
    lines = [f"skipped runs ({len(skipped)}, not in the stacked dataset or the livetime):"]
    return lines + [f"  obs_id {int(i)}: {reason}" for i, reason in skipped]


def analysis_summary(results: xr.Dataset) -> str:
    """A short text summary of an analysis: data, fit (with truth and pulls), maps, timings.

    Parameters
    ----------
    results : xarray.Dataset
        Output of :func:`gammaxr.analysis.pipeline.run_analysis`.

    Returns
    -------
    str
    """
    a = results.attrs
    obs = a.get("obs_ids", [])
    lines = [
        f"gammaxr analysis {a.get('name', '')!r}: {len(obs)} runs {list(obs)}, "
        f"livetime {a.get('livetime_s', np.nan) / 3600:.2f} h",
        f"data store: {a.get('datastore', '')}",
        *_skipped_lines(a),
        f"stacked (safe): counts {a.get('counts_total', np.nan):.0f}, "
        f"background {a.get('background_total', np.nan):.1f}",
    ]
    if "value" in results:
        lines += [
            "",
            f"fit: success {a.get('fit_success')}, total_stat {a.get('fit_total_stat', np.nan):.2f}, "
            f"{a.get('fit_nfev')} evaluations ({a.get('fit_message', '')})",
        ]
        truth = "true_value" in results
        head = f"  {'parameter':34s} {'value':>11s} {'error':>10s}"
        lines.append(head + (f" {'true':>11s} {'pull':>6s}" if truth else ""))
        for name in results["param"].values:
            row = results.sel(param=name)
            if bool(row["frozen"]):
                continue
            line = (
                f"  {name!s:34s} {_fmt(float(row['value'])):>11s} {_fmt(float(row['error'])):>10s}"
            )
            if truth:
                true = float(row["true_value"])
                pull = float(row["pull"])
                line += f" {_fmt(true):>11s} {pull:+6.2f}" if np.isfinite(true) else ""
            lines.append(line)
        if truth:
            pulls = results["pull"].values
            pulls = pulls[np.isfinite(pulls)]
            if pulls.size:
                lines.append(
                    f"  pulls: {pulls.size} parameters, max |pull| {np.max(np.abs(pulls)):.2f}, "
                    f"rms {np.sqrt(np.mean(pulls**2)):.2f}"
                )
    if "sed_e2dnde" in results:
        lines += ["", f"flux points of {a.get('sed_source', '')!r} (E2 dN/dE, TeV cm-2 s-1):"]
        for i in range(results.sizes["energy"]):
            r = results.isel(energy=i)
            ul = bool(r["sed_is_ul"]) if "sed_is_ul" in r else False
            text = (
                f"< {_fmt(float(r['sed_e2dnde_ul']))}"
                if ul
                else f"{_fmt(float(r['sed_e2dnde']))} +- {_fmt(float(r['sed_e2dnde_err']))}"
            )
            lines.append(
                f"  {float(r['e_ref']):8.3f} TeV: {text:24s} sqrt(TS) {float(r['sed_sqrt_ts']):6.1f}"
            )
    if "significance" in results:
        lines += [
            "",
            f"significance map (r = {a.get('correlation_radius_deg', np.nan):g} deg): max "
            f"{a.get('significance_max', np.nan):.1f} sigma; off-source pixels: mean "
            f"{a.get('significance_off_mean', np.nan):+.3f}, width "
            f"{a.get('significance_off_sigma', np.nan):.3f} ({a.get('significance_off_n', 0)} px)",
        ]
    order = ("simulate", "select", "reduce", "fit", "flux_points", "excess_map", "outputs")
    steps = [k for k in a if k.startswith("seconds_") and k != "seconds_total"]
    steps.sort(key=lambda k: order.index(k[8:]) if k[8:] in order else len(order))
    if steps:
        times = ", ".join(f"{k[8:]} {a[k]:.2f} s" for k in steps)
        lines += ["", f"timings: {times}; total {a.get('seconds_total', np.nan):.2f} s"]
    if a.get("output"):
        lines.append(f"outputs: {a['output']}")
    return "\n".join(lines)
