"""Run every example script into one folder, keep what each printed, and time them.

Usage: ``python examples/run_examples.py [OUTPUT] [--only NAME ...]``

Each example ``examples/<name>.py`` runs in its own process as
``python examples/<name>.py OUTPUT/<name>``; what it prints (stdout and stderr) is kept in
``OUTPUT/<name>/output.txt`` and its wall-clock time and exit status in
``OUTPUT/timings.json``. The documentation (``docs/``) renders these folders: set
``GAMMAXR_EXAMPLES_OUTPUT=OUTPUT`` when building it so that the examples are not run again.
Exits with status 1 if any example failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent

#: The workflow examples, in the order the documentation presents them.
EXAMPLE_NAMES = (
    "msh1552_ring_background",
    "data_reduction",
    "background_model",
    "crab_3d_analysis",
    "cta_gc_image_fitting",
    "distributed_zarr",
)


def run_example(name: str, output: Path) -> dict:
    """Run one example into ``output/name``; returns its status, seconds and whether it skipped."""
    folder = output / name
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    text = proc.stdout + (f"\n[stderr]\n{proc.stderr}" if proc.stderr.strip() else "")
    (folder / "output.txt").write_text(text)
    skipped = proc.stdout.startswith("SKIPPED")
    return {"returncode": proc.returncode, "seconds": round(seconds, 2), "skipped": skipped}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=Path("examples-output"))
    parser.add_argument("--only", nargs="*", default=None, help="example names to run")
    args = parser.parse_args()
    names = args.only or EXAMPLE_NAMES
    unknown = sorted(set(names) - set(EXAMPLE_NAMES))
    if unknown:
        parser.error(f"unknown examples {unknown}; known: {list(EXAMPLE_NAMES)}")
    args.output.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in names:
        results[name] = run_example(name, args.output)
        r = results[name]
        state = "FAILED" if r["returncode"] else ("skipped" if r["skipped"] else "ok")
        print(f"{name:28s} {state:8s} {r['seconds']:7.1f} s", flush=True)
        if r["returncode"]:
            print((args.output / name / "output.txt").read_text()[-3000:])
    timings = args.output / "timings.json"
    previous = json.loads(timings.read_text()) if timings.exists() else {}
    timings.write_text(json.dumps({**previous, **results}, indent=1))
    total = sum(r["seconds"] for r in results.values())
    print(f"{'total':28s} {'':8s} {total:7.1f} s")
    return 1 if any(r["returncode"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
