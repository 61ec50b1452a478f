"""Gammapy 2.1's ``MapDataset.residuals`` with smoothing on the stacked Crab dataset of the
reference files (hand cross-check of :func:`gammaxr.estimators.dataset_residuals`).

Run with the separate Gammapy environment, never from the test suite::

    /work/gpvenv/bin/python benchmarks/gammapy_residuals.py [REFERENCE_DIR]

The dataset has a safe mask and no models: its predicted counts are the background. For the
``"diff"`` and ``"diff/sqrt(model)"`` residuals smoothed (Gammapy's ``kernel`` and
``width``, ``mode="constant"``) with a 0.0375 deg Gaussian (1.875 pixels: scipy cuts it at
8 pixels, ``int(4 sigma + 0.5)``), a 0.1 deg box (gammaxr's ``smooth_radius`` is its half
side, 0.05 deg) and a 0.1 deg disk (gammaxr's ``"tophat"``), it prints the sum and maximum
of the residual cube and five pixels of its first energy bin (the four corners and the
centre, ``(lat, lon)`` with lon increasing, as gammaxr). ``tests/test_residuals.py`` holds a
copy of the output.
"""

from __future__ import annotations

from gammapy_crab_stacked import cube_summary, read_crab_stacked

CASES = (("gauss", "0.0375 deg"), ("box", "0.1 deg"), ("disk", "0.1 deg"))


def main() -> None:
    dataset = read_crab_stacked()
    print("RESIDUALS = {")
    for method in ("diff", "diff/sqrt(model)"):
        for kernel, width in CASES:
            data = dataset.residuals(method=method, kernel=kernel, width=width).data
            print(f'    ("{method}", "{kernel}"): {cube_summary(data)},')
    print("}")


if __name__ == "__main__":
    main()
