"""The ``gammaxr`` command line.

Each subcommand lives in a function ``_add_<name>(subparsers)`` that declares its arguments
and sets ``func`` (called with the parsed namespace, returning an exit code); add new ones to
:data:`_COMMANDS`. Expected errors (bad descriptions, missing files, existing outputs) are
printed as one ``gammaxr <command>: error: ...`` line with exit code 2; anything else is a bug
and keeps its traceback.

    gammaxr simulate CONFIG.yaml OUTPUT_DIR [--seed N] [--overwrite]
    gammaxr simulate --default OUTPUT_DIR [--seed N] [--overwrite]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["build_parser", "main"]


class CommandError(Exception):
    """An expected failure of a command: printed without a traceback."""


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
    parser = subparsers.add_parser(
        "simulate",
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
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    parser.set_defaults(func=_simulate)


#: Subcommand registrars, in the order shown by ``gammaxr --help``.
_COMMANDS: list[Callable] = [_add_simulate]


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
