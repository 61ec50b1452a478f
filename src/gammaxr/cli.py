"""The ``gammaxr`` command line.

Each subcommand lives in a function ``_add_<name>(subparsers)`` that declares its arguments
and sets ``func`` (called with the parsed namespace, returning an exit code); add new ones to
:data:`_COMMANDS`. Expected errors (bad descriptions, missing files, existing outputs) are
printed as one ``gammaxr <command>: error: ...`` line with exit code 2; anything else is a bug
and keeps its traceback.

    gammaxr simulate CONFIG.yaml OUTPUT_DIR [--seed N] [--overwrite]
    gammaxr simulate --default OUTPUT_DIR [--seed N] [--overwrite]
    gammaxr run CONFIG.yaml [--output DIR] [--datastore PATH] [--scheduler S] [--overwrite]
    gammaxr demo OUTPUT_DIR [--livetime S] [--seed N] [--overwrite]
    gammaxr schema {analysis,simulation} [--output FILE]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["build_parser", "main"]


class CommandError(Exception):
    """An expected failure of a command: printed without a traceback."""


def _subcommand(
    subparsers,
    name: str,
    func: Callable[[argparse.Namespace], int],
    *,
    overwrite: str | None = None,
    quiet: str | None = None,
    **texts: str,
) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` that calls ``func``; ``texts`` are its ``help``/``description``.

    ``overwrite`` and ``quiet``, when given, are the help texts of the ``--overwrite`` and
    ``-q/--quiet`` flags that most commands share.
    """
    parser = subparsers.add_parser(name, **texts)
    parser.set_defaults(func=func)
    if overwrite is not None:
        parser.add_argument("--overwrite", action="store_true", help=overwrite)
    if quiet is not None:
        parser.add_argument("-q", "--quiet", action="store_true", help=quiet)
    return parser


def _simulate(args: argparse.Namespace) -> int:
    from gammaxr.io.errors import DL3Error
    from gammaxr.simulate import SimulationConfigError, simulate_datastore
    from gammaxr.simulate.scenarios import default_scenario

    if args.default == (args.config is not None):
        raise CommandError("give either a CONFIG.yaml file or --default (and an OUTPUT_DIR)")
    try:
        config = default_scenario() if args.default else args.config
        report = simulate_datastore(config, args.output, seed=args.seed, overwrite=args.overwrite)
    except (SimulationConfigError, DL3Error, FileExistsError) as exc:
        raise CommandError(str(exc)) from exc
    if not args.quiet:
        print(report.summary())
    return 0


def _add_simulate(subparsers) -> None:
    parser = _subcommand(
        subparsers,
        "simulate",
        _simulate,
        overwrite="replace an existing store",
        quiet="print nothing",
        help="simulate observations into a GADF DL3 data store",
        description=(
            "Simulate event lists from a YAML description (instruments, sky models, runs) "
            "and write a GADF DL3 data store (events, GTIs, IRFs, HDU and observation "
            "indexes). --default writes the default scenario: a Crab-like point source and "
            "an extended source, 4 runs at 0.5 deg wobble with the toy instrument."
        ),
    )
    parser.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="simulation description")
    parser.add_argument("output", metavar="OUTPUT_DIR", help="directory of the data store")
    parser.add_argument("--default", action="store_true", help="simulate the default scenario")
    parser.add_argument(
        "--seed", type=int, default=None, help="master seed (default: the description's seed)"
    )


def _analysis_errors() -> tuple[type[Exception], ...]:
    """Exceptions of an analysis run that are the user's to fix (printed without traceback)."""
    from gammaxr.analysis import AnalysisConfigError, AnalysisError
    from gammaxr.io.errors import DL3Error
    from gammaxr.reduce.runs import RunReductionError
    from gammaxr.reduce.stack import NoOverlapError

    return (
        AnalysisConfigError, AnalysisError, DL3Error, RunReductionError, NoOverlapError,
        FileExistsError,
    )  # fmt: skip


def _progress_options(args: argparse.Namespace) -> dict:
    """The ``overwrite``/``log``/``progress`` keywords of an analysis run, from the flags."""
    return {
        "overwrite": args.overwrite,
        "log": None if args.quiet else print,
        "progress": not args.quiet,
    }


def _analysis_with_summary(args: argparse.Namespace, analysis: Callable) -> int:
    """Run ``analysis()``; user errors become a :class:`CommandError`, then print the summary."""
    from gammaxr.analysis import analysis_summary

    try:
        results = analysis()
    except _analysis_errors() as exc:
        raise CommandError(str(exc)) from exc
    if not args.quiet:
        print()
        print(analysis_summary(results))
    return 0


def _run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from gammaxr.analysis import read_analysis_config, run_analysis

    try:
        config = read_analysis_config(args.config)
        if args.datastore is not None:
            config = dataclasses.replace(config, datastore=Path(args.datastore))
        if args.scheduler is not None:
            config = dataclasses.replace(config, scheduler=args.scheduler)
        if args.output is None and config.output is None:
            raise CommandError(
                f"{args.config}: no output directory; give --output DIR or 'output:' in the file"
            )
        return _analysis_with_summary(
            args, lambda: run_analysis(config, args.output, **_progress_options(args))
        )
    except _analysis_errors() as exc:
        raise CommandError(str(exc)) from exc


def _add_run(subparsers) -> None:
    parser = _subcommand(
        subparsers,
        "run",
        _run,
        overwrite="replace earlier outputs",
        quiet="print nothing (no progress bars either)",
        help="run a configured analysis (reduce, stack, fit, maps, flux points, figures)",
        description=(
            "Run the analysis a YAML file describes (see examples/demo.yaml): select runs of a "
            "data store, reduce them lazily with dask on a sky grid, estimate the background "
            "(FoV or ring), stack into a zarr store, fit the models, make flux points and a "
            "significance map, and write tables, fitted models (Gammapy YAML), figures and a "
            "summary into the output directory."
        ),
    )
    parser.add_argument("config", metavar="CONFIG.yaml", help="analysis description")
    parser.add_argument(
        "-o", "--output", default=None, help="output directory (default: 'output:' of the file)"
    )
    parser.add_argument(
        "--datastore", default=None, help="data store to use instead of the file's 'datastore:'"
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        help="dask scheduler instead of the file's compute.scheduler: threads, processes, "
        "synchronous, or the address of a dask.distributed scheduler (tcp://host:port)",
    )


def _demo(args: argparse.Namespace) -> int:
    from gammaxr.analysis import run_demo

    return _analysis_with_summary(
        args,
        lambda: run_demo(
            args.output, livetime=args.livetime, seed=args.seed, **_progress_options(args)
        ),
    )


def _add_demo(subparsers) -> None:
    parser = _subcommand(
        subparsers,
        "demo",
        _demo,
        overwrite="replace an earlier demo",
        quiet="print nothing",
        help="the main job on simulated data: simulate, reduce, fit, maps, figures",
        description=(
            "Simulate the default scenario (a point and a Gaussian source, 4 wobble runs, toy "
            "instrument) into OUTPUT_DIR/store, then analyse it end to end: lazy dask "
            "reduction, FoV background, stacking to OUTPUT_DIR/stacked.zarr, a fit of the "
            "scenario's models from perturbed start values, flux points, a significance map, "
            "figures, and OUTPUT_DIR/summary.txt comparing fitted and true values. No "
            "external data needed."
        ),
    )
    parser.add_argument("output", metavar="OUTPUT_DIR", help="directory of the store and outputs")
    parser.add_argument(
        "--livetime", type=float, default=None, help="livetime per run in s (default 1800)"
    )
    parser.add_argument("--seed", type=int, default=None, help="simulation seed (default 0)")


def _schema(args: argparse.Namespace) -> int:
    if args.kind == "analysis":
        from gammaxr.analysis.config import analysis_json_schema as schema
    else:
        from gammaxr.simulate.config import simulation_json_schema as schema
    text = schema()
    if args.output is None:
        print(text)
    else:
        from pathlib import Path

        Path(args.output).write_text(text + "\n")
    return 0


def _add_schema(subparsers) -> None:
    parser = _subcommand(
        subparsers,
        "schema",
        _schema,
        help="print the JSON schema of the analysis or simulation YAML (for editors)",
        description=(
            "Print the JSON schema of a description file format: 'analysis' (gammaxr run) or "
            "'simulation' (gammaxr simulate). YAML editors use it for completion and checks."
        ),
    )
    parser.add_argument("kind", choices=("analysis", "simulation"), help="which description")
    parser.add_argument("-o", "--output", default=None, help="write to this file")


#: Subcommand registrars, in the order shown by ``gammaxr --help``.
_COMMANDS: list[Callable] = [_add_simulate, _add_run, _add_demo, _add_schema]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="gammaxr", description="gammaxr: gamma-ray astronomy on xarray, dask and zarr"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in _COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"gammaxr {args.command}: error: {exc}", file=sys.stderr)
        return 2


def console_main() -> None:  # pragma: no cover - the installed ``gammaxr`` command
    """The ``gammaxr`` command: :func:`main` in a process that keeps the memory it frees for
    its next arrays (:func:`gammaxr.reduce.cluster.keep_freed_memory`)."""
    from gammaxr.reduce.cluster import keep_freed_memory

    keep_freed_memory()
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
