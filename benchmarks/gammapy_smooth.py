"""Gammapy 2.1's ``Map.smooth`` on the stacked Crab dataset of the reference files (hand
cross-check of :func:`gammaxr.estimators.smooth`).

Run with the separate Gammapy environment, never from the test suite::

    /work/gpvenv/bin/python benchmarks/gammapy_smooth.py [REFERENCE_DIR]

It prints, for the counts and background of ``gammapy-files/crab_stacked_mapdataset.fits.gz``
smoothed with a 0.05 deg Gaussian, a 0.1 deg disk and a 0.1 deg box, each with
``mode="reflect"`` (Gammapy's default) and ``mode="constant"``: the sum and maximum of the
smoothed cube, and five pixels of its first energy bin (the four corners and the centre,
indexed ``(lat, lon)`` with lon increasing, as gammaxr); then for a 0.08 deg box (4 pixels,
an even box: scipy's window reaches a pixel further on one side) the sum, the lat and lon
centroids and five pixels around the centre. ``tests/test_smooth.py`` holds a copy of the
output.
"""

from __future__ import annotations

from gammapy_crab_stacked import cube_summary, lon_increasing, pixel_values, read_crab_stacked

CASES = (("gauss", "0.05 deg"), ("disk", "0.1 deg"), ("box", "0.1 deg"))


def main() -> None:
    dataset = read_crab_stacked()
    print("SMOOTHED = {")
    for kernel, width in CASES:
        for mode in ("reflect", "constant"):
            for name in ("counts", "background"):
                data = getattr(dataset, name).smooth(width, kernel=kernel, mode=mode).data
                print(f'    ("{kernel}", "{mode}", "{name}"): {cube_summary(data)},')
    print("}")
    print_even_box(dataset)


#: An even box (4 pixels of 0.02 deg): scipy's window is not centred on the pixel.
EVEN_BOX = "0.08 deg"
#: Pixels around the centre of the first energy bin, (lat, lon) with lon increasing.
NEIGHBOURS = ((50, 50), (49, 50), (51, 50), (50, 49), (50, 51))


def print_even_box(dataset) -> None:
    """The 0.08 deg box: sum, lat and lon centroids (pixels, lon increasing) of the smoothed
    cube and five pixels around the centre of its first energy bin, per mode and map: the
    centroids move by half a pixel with the side the window reaches further."""
    print("EVEN_BOX = {")
    for mode in ("reflect", "constant"):
        for name in ("counts", "background"):
            smoothed = getattr(dataset, name).smooth(EVEN_BOX, kernel="box", mode=mode)
            data = lon_increasing(smoothed.data)
            lat = (data.sum(axis=(0, 2)) * range(data.shape[1])).sum() / data.sum()
            lon = (data.sum(axis=(0, 1)) * range(data.shape[2])).sum() / data.sum()
            pixels = pixel_values(data, NEIGHBOURS)
            print(
                f'    ("{mode}", "{name}"): '
                f"({data.sum():.15g}, {lat:.15g}, {lon:.15g}, ({pixels})),"
            )
    print("}")


if __name__ == "__main__":
    main()
