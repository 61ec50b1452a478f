"""Benchmark: wall time of ``import gammaxr`` (and of the CLI's ``--help``) in fresh interpreters.

Usage: python benchmarks/import_time.py [--repeat N] [--top K]

Each statement runs ``--repeat`` times in a new ``python -c`` process; the figure is the
median (and minimum) wall time of the whole process minus that of ``python -c pass`` (the
interpreter start-up). ``import xarray`` is the floor: the ``ds.gamma`` accessor registers
on xarray, everything else is imported on first use. The ``-X importtime`` profile of one
``import gammaxr`` lists the modules costing most (cumulative: with what they import), and the
heavy libraries found in ``sys.modules`` afterwards are printed (there should be none).
The 1-minute load average is printed: figures taken on a loaded machine are not comparable.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gammaxr._lazy import DEFERRED_LIBRARIES

SRC = Path(__file__).resolve().parents[1] / "src"
STATEMENTS = {
    "python -c pass": "pass",
    "import xarray (floor)": "import xarray",
    "import gammaxr": "import gammaxr",
    "gammaxr --help (CLI)": (
        "import contextlib, io\nfrom gammaxr.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])"
    ),
}


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }


def wall_seconds(code: str, repeat: int) -> list[float]:
    """Wall times (s) of ``repeat`` fresh ``python -c code`` processes."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=_env())
        times.append(time.perf_counter() - start)
    return times


def importtime_top(top: int) -> list[tuple[float, str]]:
    """``(cumulative ms, module)`` of the ``top`` slowest imports (any depth) under ``import gammaxr``."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import gammaxr"],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
    )
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        rows.append((int(cumulative) / 1e3, name))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="processes per statement")
    parser.add_argument("--top", type=int, default=8, help="rows of the -X importtime profile")
    args = parser.parse_args()

    print(f"load average (1 min)    : {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    times = {label: wall_seconds(code, args.repeat) for label, code in STATEMENTS.items()}
    base = statistics.median(times["python -c pass"])
    for label, values in times.items():
        extra = "" if label == "python -c pass" else " above start-up"
        print(
            f"{label:<24}: median {statistics.median(values) - (0 if extra == '' else base):.3f} s, "
            f"min {min(values) - (0 if extra == '' else base):.3f} s{extra} ({args.repeat} runs)"
        )
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, gammaxr; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({DEFERRED_LIBRARIES!r})))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
    ).stdout.strip()
    print(f"heavy modules loaded    : {loaded}")
    print("slowest imports under `import gammaxr` (-X importtime, cumulative):")
    for ms, name in importtime_top(args.top):
        print(f"  {ms:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
