"""CTA prod5 differential sensitivity at 50 h from the IRFs alone (gammaxr's chain).

Reads the prod5 South IRF file, makes the expected spectrum dataset of a 50 h run with the
source 0.5 deg from the pointing, on circle r = 0.1 deg with PSF containment correction,
reco energy 0.03-30 TeV in 20 bins, true energy 0.01-100 TeV in 100 bins
(:func:`gammaxr.reduce.irf_spectrum.irf_spectrum_dataset`), and prints the 5-sigma
sensitivity (gamma_min 10, background systematics 5 %, alpha 0.2) per bin with the time it
took. With ``--gammapy-table`` (an ecsv written by Gammapy 2.1's SensitivityEstimator on the
same set-up, e.g. by a hand-run script in a separate environment) it prints the ratio.

Usage::

    python benchmarks/sensitivity_cta.py [--irf FILE] [--gammapy-table FILE.ecsv]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import astropy.units as u
import numpy as np
import regions as rg
from astropy.coordinates import SkyCoord

from gammaxr.estimators import sensitivity
from gammaxr.reduce.irf_spectrum import irf_spectrum_dataset
from gammaxr.reduce.spectrum import SpectrumSpec
from gammaxr.simulate import read_irfs

HERE = Path(__file__).resolve().parent
IRF = (
    HERE.parent.parent
    / "shared/data/cta-caldb/Prod5-South-20deg-AverageAz-14MSTs37SSTs.180000s-v0.1.fits.gz"
)


def prod5_dataset(irf_file: Path, hours: float = 50.0):
    """The expected spectrum dataset of the module docstring."""
    on = rg.CircleSkyRegion(SkyCoord(0.0, 0.5, unit="deg"), 0.1 * u.deg)
    spec = SpectrumSpec(
        on,
        np.geomspace(0.03, 30, 21),
        np.geomspace(0.01, 100, 101),
        maps=("exposure", "edisp", "background"),
        containment_correction=True,
    )
    return irf_spectrum_dataset(read_irfs(irf_file), spec, (0.0, 0.0), hours * 3600.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--irf", type=Path, default=IRF)
    parser.add_argument("--gammapy-table", type=Path, default=None)
    args = parser.parse_args()
    t0 = time.perf_counter()
    ds = prod5_dataset(args.irf)
    table = sensitivity(ds, alpha=0.2)
    seconds = time.perf_counter() - t0
    reference = None
    if args.gammapy_table is not None:
        from astropy.table import Table

        reference = Table.read(args.gammapy_table)["e2dnde"].quantity.to_value("erg cm-2 s-1")
    print(f"dataset + sensitivity: {seconds:.2f} s")
    print(f"{'E [TeV]':>9s} {'e2dnde [erg cm-2 s-1]':>22s} {'excess':>8s} {'bkg':>9s} criterion")
    for i, e in enumerate(table["energy"].values):
        row = (
            f"{e:9.4f} {table['e2dnde'].values[i]:22.4e} {table['excess'].values[i]:8.1f} "
            f"{table['background'].values[i]:9.2f} {table['criterion'].values[i]}"
        )
        if reference is not None:
            row += (
                f"  Gammapy {reference[i]:.4e} ratio {table['e2dnde'].values[i] / reference[i]:.4f}"
            )
        print(row)
    if reference is not None:
        ratio = table["e2dnde"].values / reference
        print(f"max |ratio - 1| = {np.nanmax(np.abs(ratio - 1)):.4f}")


if __name__ == "__main__":
    main()
