"""The FITS backend chosen at ``open_datastore`` travels with the observations to workers.

There is no process-wide switch: the choice is an argument that the store hands to its
:class:`~gammaxr.data.Observation` objects, so reader threads, dask worker processes and
their reads all use it. The environment variable is set to an invalid name in these tests:
any read that ignored the explicit choice would fail on it.
"""

from __future__ import annotations

import dask
import numpy as np
import pytest

from gammaxr.data import open_datastore
from gammaxr.data.observation import Observation
from gammaxr.io import gadf
from gammaxr.io.fits_backend import ENV_VAR, fitsio_available

RUNS = (1, 2)
BACKENDS = ("astropy", "fitsio") if fitsio_available() else ("astropy",)


def _read_in_worker(obs: Observation) -> tuple[str | None, str, int]:
    """The observation's backend, the library that opens its events file, the event count."""
    with gadf.open_fits(obs.location("events").path, obs.fits_backend) as f:
        opened_with = f.backend
    return obs.fits_backend, opened_with, int(obs.events.sizes["event"])


@pytest.fixture
def bogus_environment(monkeypatch):
    """An invalid ``GAMMAXR_FITS_BACKEND``; set before any worker process starts."""
    monkeypatch.setenv(ENV_VAR, "no-such-library")


# astropy is not the default where fitsio is installed: it shows the choice travelled
@pytest.mark.parametrize(
    ("scheduler", "backend"),
    [*(("threads", b) for b in BACKENDS), ("processes", "astropy")],
)
def test_explicit_backend_reaches_workers(
    simulated_store_dir, bogus_environment, scheduler, backend
):
    store = open_datastore(simulated_store_dir, fits_backend=backend.upper())
    assert store.fits_backend == backend  # normalised once, at opening
    observations = store.select_obs_ids(RUNS).observations()
    tasks = [dask.delayed(_read_in_worker)(obs) for obs in observations]
    results = dask.compute(*tasks, scheduler=scheduler)
    assert [r[:2] for r in results] == [(backend, backend)] * len(RUNS)
    assert all(r[2] > 0 for r in results)


def test_environment_is_read_in_workers_without_explicit_backend(simulated_store_dir, monkeypatch):
    store = open_datastore(simulated_store_dir)  # indexes read before the variable is broken
    assert store.fits_backend is None
    monkeypatch.setenv(ENV_VAR, "no-such-library")
    task = dask.delayed(_read_in_worker)(store.observation(RUNS[0]))
    with pytest.raises(ValueError, match=f"{ENV_VAR}: unknown FITS backend 'no-such-library'"):
        dask.compute(task, scheduler="processes")


def test_snapshots_and_copies_keep_the_backend(simulated_store_dir, bogus_environment):
    store = open_datastore(simulated_store_dir, fits_backend="astropy")
    loaded = store.load_observations(RUNS, hdus=("events", "gti"), max_workers=2)
    assert [obs.fits_backend for obs in loaded] == ["astropy"] * len(RUNS)
    cleaned = loaded[0].with_data(events=loaded[0].events.isel(event=slice(0, 10)))
    assert cleaned.fits_backend == "astropy"
    assert cleaned.aeff.sizes["energy_true"] > 0  # read now, with the carried backend
    lazy = store.observation(RUNS[1])
    assert lazy.meta["OBS_ID"] == RUNS[1]
    np.testing.assert_array_equal(lazy.events["energy"], loaded[1].events["energy"])


def test_explicit_backend_reaches_distributed_workers(simulated_store_dir, bogus_environment):
    distributed = pytest.importorskip("distributed")
    from gammaxr.reduce.cluster import local_cluster

    store = open_datastore(simulated_store_dir, fits_backend="astropy")
    # the workers start after the variable is broken, so they inherit it
    with (
        local_cluster(n_workers=1, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        futures = client.map(_read_in_worker, store.observations(RUNS), pure=False)
        results = client.gather(futures)
        assert [r[:2] for r in results] == [("astropy", "astropy")] * len(RUNS)
        assert all(r[2] > 0 for r in results)
        # and without the argument the workers' own environment decides: it is broken
        lazy = open_datastore(simulated_store_dir, fits_backend="astropy").observation(RUNS[0])
        unset = Observation(lazy.obs_id, lazy.obs_info, lazy.hdus)
        with pytest.raises(ValueError, match=f"{ENV_VAR}: unknown FITS backend"):
            client.submit(_read_in_worker, unset, pure=False).result()
