"""Analysis pipelines: a YAML-configured chain from a data store to fitted results.

::

    from gammaxr.analysis import read_analysis_config, run_analysis, run_demo
    results = run_analysis("examples/demo.yaml", "out")   # or: gammaxr run examples/demo.yaml
    results = run_demo("demo-output")                      # or: gammaxr demo demo-output

- :mod:`~gammaxr.analysis.config`: the description format, :class:`AnalysisConfig`,
  :func:`read_analysis_config`, :func:`parse_analysis_config`, :class:`AnalysisConfigError`;
- :mod:`~gammaxr.analysis.pipeline`: :func:`run_analysis` (select, reduce lazily with dask,
  background, stack to zarr, fit, flux points, excess map) and its steps;
- :mod:`~gammaxr.analysis.outputs`: tables, models, maps, figures, :func:`analysis_summary`;
- :mod:`~gammaxr.analysis.demo`: :func:`run_demo`, the main job on simulated data.
"""

from gammaxr.analysis.config import (
    AnalysisConfig,
    AnalysisConfigError,
    parse_analysis_config,
    read_analysis_config,
)
from gammaxr.analysis.demo import demo_description, demo_truth, run_demo
from gammaxr.analysis.outputs import analysis_summary
from gammaxr.analysis.pipeline import AnalysisError, run_analysis

__all__ = [
    "AnalysisConfig",
    "AnalysisConfigError",
    "AnalysisError",
    "analysis_summary",
    "demo_description",
    "demo_truth",
    "parse_analysis_config",
    "read_analysis_config",
    "run_analysis",
    "run_demo",
]
