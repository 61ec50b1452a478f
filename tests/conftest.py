"""Shared fixtures: where the real data lives, and a scheduler that raises on compute."""

from __future__ import annotations

import os
from pathlib import Path

import dask
import pytest

_HERE = Path(__file__).resolve().parent


def _data_root() -> Path:
    env = os.environ.get("GAMMAXR_DATA")
    if env:
        return Path(env)
    return _HERE.parent.parent / "shared" / "data"


DATA_ROOT = _data_root()
REFERENCE_ROOT = _HERE.parent.parent / "shared" / "reference"
HESS_DIR = DATA_ROOT / "hess-dl3-dr1"
CTA_DIR = DATA_ROOT / "cta-1dc"


@pytest.fixture(scope="session")
def hess_dir() -> Path:
    """The H.E.S.S. DL3 DR1 store; skips the test where it is absent."""
    if not (HESS_DIR / "hdu-index.fits.gz").exists():
        pytest.skip(f"H.E.S.S. DL3 DR1 not found at {HESS_DIR} (set GAMMAXR_DATA)")
    return HESS_DIR


@pytest.fixture(scope="session")
def cta_dir() -> Path:
    """The CTA 1DC store (index in index/gps); skips the test where it is absent."""
    if not (CTA_DIR / "index" / "gps" / "hdu-index.fits.gz").exists():
        pytest.skip(f"CTA 1DC data not found at {CTA_DIR} (set GAMMAXR_DATA)")
    return CTA_DIR


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Gammapy 2.1 reference outputs; skips the test where they are absent."""
    if not (REFERENCE_ROOT / "reference.json").exists():
        pytest.skip(f"reference outputs not found at {REFERENCE_ROOT}")
    return REFERENCE_ROOT


class _RaiseOnCompute:
    """A dask scheduler that fails any attempt to compute."""

    def __call__(self, dsk, keys, **kwargs):
        raise RuntimeError("dask computation was triggered where the data must stay lazy")


@pytest.fixture
def raise_on_compute():
    """Context in which any dask compute raises (checks that graph construction stays lazy)."""
    with dask.config.set(scheduler=_RaiseOnCompute()):
        yield
