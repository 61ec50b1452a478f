"""Moved to :mod:`gammaxr.testing` (test scaffolding); kept importable for old scripts."""

from gammaxr.testing import (  # noqa: F401
    gaussian_psf_profile,
    simulate_counts,
    toy_map_dataset,
    toy_spectrum_dataset,
)
