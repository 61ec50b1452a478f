"""Plumbing shared by the example scripts: output folder, data location, figures.

Every example takes one optional argument, the output folder (default
``examples-output/<name>``), finds the data in ``$GAMMAXR_DATA`` or ``../shared/data`` (next
to the repository) and stops with a message and exit status 0 where the data are absent.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are written to files; no display needed

import matplotlib.pyplot as plt

REPOSITORY = Path(__file__).resolve().parents[1]

#: What each data set must contain to count as present (relative to its folder).
DATA_MARKERS = {
    "hess-dl3-dr1": "hdu-index.fits.gz",
    "cta-1dc": "index/gps/hdu-index.fits.gz",
}


def output_folder(name: str, description: str | None = None) -> Path:
    """The output folder given on the command line (created), default ``examples-output/<name>``."""
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=description)
    parser.add_argument(
        "output",
        nargs="?",
        default=Path("examples-output") / name,
        type=Path,
        help=f"folder for the figures and files (default examples-output/{name})",
    )
    out = parser.parse_args().output
    out.mkdir(parents=True, exist_ok=True)
    return out


def data_folder(dataset: str) -> Path:
    """The folder of ``dataset`` (``hess-dl3-dr1``, ``cta-1dc``); exits 0 with a message if absent.

    Looks in ``$GAMMAXR_DATA`` when set, else in ``../shared/data`` next to the repository.
    """
    env = os.environ.get("GAMMAXR_DATA")
    root = Path(env) if env else REPOSITORY.parent / "shared" / "data"
    folder = root / dataset
    if not (folder / DATA_MARKERS[dataset]).exists():
        print(
            f"SKIPPED: {dataset} not found at {folder} "
            f"(set GAMMAXR_DATA to the folder holding {dataset}/)"
        )
        sys.exit(0)
    return folder


def save_figure(fig, out: Path, filename: str) -> Path:
    """Write ``fig`` as ``out/filename`` (PNG, 100 dpi, nothing clipped) and close it."""
    path = out / filename
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"figure: {path}")
    return path
