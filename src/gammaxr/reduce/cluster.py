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

:func:`keep_freed_memory` applies the same malloc thresholds to the calling process (for
the threaded scheduler): a choice for the application, which the ``gammaxr`` command makes
for itself, and a library function never makes on its own.

:func:`scheduler_context` turns a scheduler name (``"threads"``, ``"processes"``,
``"synchronous"``) or the address of a running ``dask.distributed`` scheduler
(``"tcp://host:port"``) into what ``dask.compute`` needs, connecting a client for an address,
and keeps the objects that exist when the computation starts out of Python's garbage
collection while it runs (:func:`gc_frozen`).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from typing import Any

from gammaxr.memory import KEPT_RESULT_BYTES_VARIABLE

__all__ = [
    "WORKER_MALLOC_ENV",
    "WORKER_PRELOAD",
    "gc_frozen",
    "is_scheduler_address",
    "keep_freed_memory",
    "local_cluster",
    "scheduler_context",
    "worker_kept_result_bytes",
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

    Notes
    -----
    Each worker keeps the buffers of the large correlation results it dropped up to
    :func:`worker_kept_result_bytes` (an eighth of its memory limit, at most this process's
    bound; :mod:`gammaxr.memory`), unless ``GAMMAXR_KEPT_RESULT_BYTES`` is set in this
    process's environment or in ``distributed.nanny.pre-spawn-environ``: the kept memory is
    "unmanaged" for dask's memory manager, so it stays well inside the worker's limit.
    """
    import dask
    from distributed import LocalCluster

    kwargs.setdefault("dashboard_address", ":0")
    kwargs.setdefault("preload", list(WORKER_PRELOAD))
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}))
    environ.update(WORKER_MALLOC_ENV)
    if KEPT_RESULT_BYTES_VARIABLE not in os.environ and KEPT_RESULT_BYTES_VARIABLE not in environ:
        limit = worker_kept_result_bytes(kwargs.get("memory_limit", "auto"), n_workers)
        environ[KEPT_RESULT_BYTES_VARIABLE] = str(limit)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, **kwargs)


def worker_kept_result_bytes(memory_limit: Any, n_workers: int) -> int:
    """The bound on kept result buffers (:mod:`gammaxr.memory`) for a worker of
    :func:`local_cluster`: an eighth of its memory limit, at most this process's bound.

    Parameters
    ----------
    memory_limit : str, int, float or None
        The worker's ``memory_limit`` as ``distributed`` takes it: ``"auto"`` (the
        machine's memory shared between the workers), bytes or a string such as ``"4 GiB"``,
        a fraction of the machine's memory (a float up to 1), or 0/None for no limit.
    n_workers : int
        Workers sharing the machine (for ``"auto"``).

    Returns
    -------
    int
        Bytes, >= 0.
    """
    from dask.utils import parse_bytes

    from gammaxr.memory import KEPT_RESULT_BYTES, physical_memory_bytes

    if memory_limit in (None, 0, "0"):
        return KEPT_RESULT_BYTES
    share_of_machine = memory_limit == "auto" or (
        isinstance(memory_limit, float) and 0 < memory_limit <= 1
    )
    if share_of_machine:
        machine = physical_memory_bytes()
        if machine is None:
            return KEPT_RESULT_BYTES
        if memory_limit == "auto":
            limit = machine // max(1, n_workers)
        else:
            limit = int(machine * memory_limit)
    else:
        limit = parse_bytes(memory_limit) if isinstance(memory_limit, str) else int(memory_limit)
    return max(0, min(KEPT_RESULT_BYTES, limit // 8))


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Let this process keep the memory it frees for its next arrays (glibc malloc).

    Sets glibc's trim and mmap thresholds to those of :data:`WORKER_MALLOC_ENV` (256 MiB)
    with ``mallopt``, as the environment does for the workers of :func:`local_cluster`.
    By default glibc returns most freed multi-megabyte arrays to the system, and the next
    run's arrays are fresh pages the kernel must fault in and zero again: on a virtual
    machine that is ~3 us a 4 kB page, 10-15 ms of the ~50 ms a H.E.S.S. run takes to
    reduce, and with several threads their page faults also wait for each other. With this
    setting the heap keeps up to 256 MiB of freed memory per arena for reuse, so the
    process's resident memory stays near its peak instead of shrinking after a reduction.

    It changes the whole process, for good: call it at the start of an application or
    pipeline script (the ``gammaxr`` command does), never from library code.

    Returns
    -------
    bool
        True if applied; False, changing nothing, where the C library is not glibc.
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    trim = int(WORKER_MALLOC_ENV["MALLOC_TRIM_THRESHOLD_"])
    mmap = int(WORKER_MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"])
    applied = libc.mallopt(_M_TRIM_THRESHOLD, trim) == 1
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap) == 1 and applied)


@contextlib.contextmanager
def gc_frozen() -> Iterator[None]:
    """Leave the objects that exist now out of Python's garbage collection until the
    context ends (:func:`gc.freeze`, then :func:`gc.unfreeze`).

    A full collection walks every object the process holds: during a computation that is
    the whole task graph, the lazy datasets and every module, for a collection that finds
    next to nothing of theirs to free (the garbage is what the tasks make), while every
    thread waits for the GIL (81 ms once in the reduction of the 105 H.E.S.S. runs, 3 % of
    its compute). Objects made within the context are collected as usual; garbage among
    the frozen ones is collected after it. Does nothing if objects are frozen already
    (by the application, or by an enclosing context).
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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

    Within the context the objects that exist when it starts are left out of Python's
    garbage collection (:func:`gc_frozen`).

    Yields
    ------
    dict
        ``{}`` or ``{"scheduler": scheduler}``: a local scheduler as dask's function for its
        name (``dask.threaded.get``, ...: dask resolves a name by first importing
        ``distributed`` to look for a client, 0.12 s in every new process, though a named
        local scheduler never uses one), another name as it is, a client for an address.

    Raises
    ------
    OSError
        If no scheduler answers at the address (the message names it).
    """
    with gc_frozen():
        yield from _scheduler_kwargs(scheduler, timeout)


def _scheduler_kwargs(scheduler: str | None, timeout: float) -> Iterator[dict[str, Any]]:
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
        from dask.base import named_schedulers

        local = named_schedulers.get(scheduler.lower()) if isinstance(scheduler, str) else None
        yield {"scheduler": local if local is not None else scheduler}
