"""What a cold call pays on this machine, whatever the library: fresh memory and idle cores.

    python benchmarks/cold_costs.py [--megabytes 400] [--idle 20] [--repeat 3]

The "cold" figures of ``side_by_side.py`` (one call in a process, after the stages before it)
include two costs of the machine rather than of the code, which this script measures alone:

``first touch``
    Writing fresh memory for the first time (a page fault per page, the kernel zeroing it),
    in ms per MB, each in a new process: right after another process wrote and freed as much
    memory (``recently freed``), and after the machine has been idle ``--idle`` seconds
    (``after idle``); with numpy's default transparent huge pages (2 MB pages, asked for
    arrays of 4 MB or more) and with 4 kB pages (``NUMPY_MADVISE_HUGEPAGE=0``). On a virtual
    machine whose guest hands free memory back to the host (virtio-balloon free page
    reporting: ``page_reporting`` on the kernel command line), memory left free for a few
    seconds is given back, and touching it again costs a fault in the host too. A
    ``verdict`` line says whether 4 kB pages (``NUMPY_MADVISE_HUGEPAGE=0``) pay here, as
    :mod:`gammaxr.memory` assumes for the large results of the correlations.
``after idle``
    A 20-plane Gaussian smoothing (150 x 150 pixels, sigma 2.5 pixels, both cores), timed
    back to back (the fastest of 50 calls) and as the first call after the process slept
    0.5 s (``--repeat`` times, the median): a virtual CPU that halted while idle runs
    slower for its first milliseconds.

The kernel's settings that matter are printed first. Nothing here is gammaxr's own cost:
the figures say how far a cold figure on this machine is from one on a machine without
these effects.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def touch(megabytes: float) -> float:
    """ms per MB to write ``megabytes`` of fresh memory once (a new numpy array)."""
    values = np.empty(int(megabytes * 2**20) // 8)
    start = time.perf_counter()
    values[...] = 1.0
    return 1e3 * (time.perf_counter() - start) / megabytes


def touch_in_new_process(megabytes: float, huge_pages: bool) -> float:
    """:func:`touch` in a fresh Python process (its own fresh memory)."""
    env = dict(os.environ, NUMPY_MADVISE_HUGEPAGE="1" if huge_pages else "0")
    out = subprocess.run(
        [sys.executable, __file__, "--touch-only", str(megabytes)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def kernel_settings() -> list[str]:
    """The settings of this machine's kernel that decide what fresh memory costs."""
    lines = []
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if thp.exists():
        lines.append(f"transparent huge pages  : {thp.read_text().strip()}")
    cmdline = Path("/proc/cmdline")
    reporting = [
        word
        for word in (cmdline.read_text().split() if cmdline.exists() else [])
        if "page_reporting" in word
    ]
    balloon = Path("/sys/bus/virtio/drivers/virtio_balloon").exists()
    lines.append(
        "free page reporting     : "
        + (" ".join(reporting) if reporting else "not on the kernel command line")
        + (" (virtio_balloon driver present)" if balloon else "")
    )
    return lines


def first_touch_rows(megabytes: float, idle: float) -> list[str]:
    rows, after_idle = [], {}
    for huge_pages in (True, False):
        pages = "2 MB pages" if huge_pages else "4 kB pages"
        time.sleep(idle)  # the memory freed before has been idle this long
        after_idle[huge_pages] = touch_in_new_process(megabytes, huge_pages)
        recently = touch_in_new_process(megabytes, huge_pages)  # right after the first
        rows.append(
            f"first touch, {pages} : {after_idle[huge_pages]:.2f} ms/MB after {idle:g} s "
            f"idle, {recently:.2f} ms/MB recently freed ({megabytes:g} MB)"
        )
    ratio = after_idle[True] / after_idle[False]
    verdict = (
        f"fresh memory costs {ratio:.1f} times more in 2 MB pages after idle: gammaxr's "
        "correlations put their large results in 4 kB pages and reuse the buffers of dropped "
        "ones (gammaxr.memory); other code's first calls on large arrays pay it "
        "(docs/performance.md)"
        if ratio > 2
        else f"fresh memory costs about the same in both page sizes (x{ratio:.1f}): keep "
        "numpy's default"
    )
    rows.append(f"{'verdict':<24}: {verdict}")
    return rows


def after_idle_rows(repeat: int) -> list[str]:
    from gammaxr.geom.convolve import convolve_plane_sources

    sigma, half = 2.5, 10
    weights = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    kernel = np.outer(weights, weights) / weights.sum() ** 2
    planes = np.random.default_rng(1).poisson(1.0, (20, 150, 150)).astype(np.float32)

    def call() -> float:
        start = time.perf_counter()
        convolve_plane_sources([planes], kernel, workers=os.cpu_count() or 1)
        return 1e3 * (time.perf_counter() - start)

    back_to_back = min(call() for _ in range(50))
    woken = []
    for _ in range(repeat):
        time.sleep(0.5)
        woken.append(call())
    return [
        f"smoothing, 20 planes    : {back_to_back:.2f} ms back to back, "
        f"{statistics.median(woken):.2f} ms as the first call after 0.5 s idle"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=float, default=400.0)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds idle before a touch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--touch-only", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.touch_only:
        print(f"{touch(args.touch_only):.4f}")
        return
    for line in kernel_settings():
        print(line)
    for line in first_touch_rows(args.megabytes, args.idle):
        print(line)
    for line in after_idle_rows(args.repeat):
        print(line)
    print(f"load average (1 min)    : {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
