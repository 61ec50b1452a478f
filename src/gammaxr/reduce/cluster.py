"""A ``dask.distributed`` local cluster tuned for reduction workloads.

Reducing a run allocates and frees many multi-megabyte temporaries. ``distributed`` starts
its worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``, which also switches off glibc's
adaptive mmap threshold, so every such temporary is a fresh ``mmap`` whose pages the kernel
must zero again: on this workload workers ran 2-4 times slower than the same code in the
client process. :func:`local_cluster` starts workers with thresholds that keep temporaries in
the heap; memory is still returned to the system by trimming above 256 MiB. Its workers also
import the reduction modules when they start (:data:`WORKER_PRELOAD`), so the first run a
worker reduces does not pay for importing gammaxr and astropy (0.5-1 s of CPU a worker, which
the reduction of 105 runs on 2 workers cannot spread: it is paid once per worker, in
parallel).

:func:`scheduler_context` turns a scheduler name (``"threads"``, ``"processes"``,
``"synchronous"``) or the address of a running ``dask.distributed`` scheduler
(``"tcp://host:port"``) into what ``dask.compute`` needs, connecting a client for an address.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask

__all__ = [
    "WORKER_MALLOC_ENV",
    "WORKER_PRELOAD",
    "is_scheduler_address",
    "local_cluster",
    "scheduler_context",
]

#: Environment of worker processes (glibc malloc tuning, see the module docstring).
WORKER_MALLOC_ENV = {
    "MALLOC_TRIM_THRESHOLD_": 256 * 2**20,
    "MALLOC_MMAP_THRESHOLD_": 256 * 2**20,
}

#: Modules every worker of :func:`local_cluster` imports when it starts (the per-run
#: reduction, the mosaic writer and what they import: the FITS readers, IRFs, astropy).
WORKER_PRELOAD = ("gammaxr.reduce.dataset", "gammaxr.reduce.runs", "gammaxr.reduce.mosaic")


def local_cluster(n_workers: int = 2, threads_per_worker: int = 1, **kwargs: Any):
    """Start a ``distributed.LocalCluster`` whose workers keep temporaries in the heap.

    Parameters
    ----------
    n_workers : int
        Worker processes.
    threads_per_worker : int
        Threads per worker (reduction tasks hold the GIL part of the time: one thread per
        process parallelises best).
    **kwargs
        Passed to ``distributed.LocalCluster`` (e.g. ``memory_limit``). The dashboard
        (bokeh) listens on a free port unless ``dashboard_address`` says otherwise (``None``
        switches it off); ``cluster.dashboard_link`` is its address. ``preload`` defaults to
        :data:`WORKER_PRELOAD` (``()`` to start bare workers).

    Returns
    -------
    distributed.LocalCluster
        Use it with ``distributed.Client(cluster)``; close both when done.
    """
    from distributed import LocalCluster

    kwargs.setdefault("dashboard_address", ":0")
    kwargs.setdefault("preload", list(WORKER_PRELOAD))
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}))
    environ.update(WORKER_MALLOC_ENV)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, **kwargs)


def is_scheduler_address(scheduler: str | None) -> bool:
    """True if ``scheduler`` is the address of a distributed scheduler (``"tcp://..."``)."""
    return isinstance(scheduler, str) and "://" in scheduler


@contextlib.contextmanager
def scheduler_context(scheduler: str | None, *, timeout: float = 10.0) -> Iterator[dict[str, Any]]:
    """Keyword arguments of ``dask.compute`` for a scheduler name or address.

    Parameters
    ----------
    scheduler : str or None
        None (dask's current scheduler), a local scheduler name (``"threads"``,
        ``"processes"``, ``"synchronous"``/``"sync"``) or the address of a running
        ``dask.distributed`` scheduler (``"tcp://host:port"``; a client is connected for the
        duration of the context and closed after).
    timeout : float
        Seconds to wait for the scheduler at an address.

    Yields
    ------
    dict
        ``{}`` or ``{"scheduler": name_or_client}``.

    Raises
    ------
    OSError
        If no scheduler answers at the address (the message names it).
    """
    if scheduler is None:
        yield {}
    elif is_scheduler_address(scheduler):
        from distributed import Client

        try:
            client = Client(scheduler, set_as_default=False, timeout=f"{timeout}s")
        except OSError as exc:
            raise OSError(f"no dask scheduler reachable at {scheduler}: {exc}") from exc
        with client:
            yield {"scheduler": client}
    else:
        yield {"scheduler": scheduler}
