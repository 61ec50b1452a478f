"""Threads for the batches of one eager call (a convolution), each with one BLAS thread.

An eager convolution of many planes (:func:`gammaxr.geom.convolve.convolve_plane_sources`
on numpy data, e.g. every run's energy bands at once) works batch by batch. The banded
passes of a separable kernel are matrix products, which BLAS would spread over the cores;
but between the products each batch is gathered, checked and copied out by numpy on one
core. Running the batches on one thread per core, each with single-threaded BLAS, keeps
both the products and the copies on every core: on 2 cores, 400 planes of 150 x 150 with
a 21-pixel Gaussian took 42 ms instead of 53 ms (37 ms with the passes fused row block by
row block, ``docs/performance.md``).

The statistics of large numpy excess maps run their blocks on the same threads
(:func:`gammaxr.estimators.excess_map.excess_map`: numpy releases the GIL in its loops).

:func:`run_batches` is that scheme: a pool of threads kept by the process (remade after a
``fork``, whose child has none of its parent's threads, with fresh locks), used by one call
at a time, with BLAS limited to one thread while it runs (:mod:`threadpoolctl`; the limit
is process-wide, set and lifted by the calling thread). Inside dask tasks (``workers=1``),
which run in parallel already, and whenever the pool is busy or BLAS cannot be limited,
the batches run in turn on the calling thread, BLAS left as it is: no call runs more than
one thread per core.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

__all__ = ["batch_threads", "one_blas_thread", "run_batches"]

_lock = threading.Lock()
_pool_in_use = threading.Lock()  # one eager convolution at a time on the pool
_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}  # (pid, threads): pool
_controller = []  # the threadpoolctl controller, made at the first threaded call


def _fresh_locks_in_forked_child() -> None:
    # a lock held by a parent's thread at the fork would never be released in the child
    global _lock, _pool_in_use
    _lock, _pool_in_use = threading.Lock(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_locks_in_forked_child)


def batch_threads(workers: int) -> int:
    """The number of threads for the batches of one call.

    Parameters
    ----------
    workers : int
        As the ``workers`` of :func:`gammaxr.geom.convolve.convolve_plane_sources`:
        ``-1`` for every core this process may use, else at most that many threads.

    Returns
    -------
    int
        At least 1.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores if workers < 0 else min(workers, cores))


def _kept_pool(threads: int) -> ThreadPoolExecutor:
    """The process's pool of ``threads`` threads (a new one in a forked child)."""
    key = (os.getpid(), threads)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix="gammaxr-batches")
        return pool


@contextmanager
def one_blas_thread() -> Iterator[bool]:
    """BLAS limited to one thread in the whole process while the block runs.

    Set and lifted by the calling thread (:mod:`threadpoolctl`, which lets one thread at a
    time control OpenBLAS's process-wide pool; this thread gives that control back on the
    way out, so later limits of the user's own code take effect).

    Yields
    ------
    bool
        Whether every BLAS library loaded now runs on one thread: False when another
        thread holds the control of OpenBLAS's limits and this one could not set them.
    """
    with _lock:
        if not _controller:
            from threadpoolctl import ThreadpoolController

            _controller.append(ThreadpoolController())
    controller = _controller[0]
    limiter = controller.limit(limits=1, user_api="blas")
    try:
        blas = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
        yield all(lib.get_num_threads() in (1, None) for lib in blas)
    finally:
        limiter.restore_original_limits()
        for lib in controller.lib_controllers:
            release = getattr(lib, "clear_controlling_thread", None)
            if release is not None:  # only if this thread holds the control
                release()


def run_batches(work: Callable[[int], None], firsts: Iterable[int], workers: int) -> None:
    """Call ``work(first)`` for every batch start in ``firsts``, on several threads if
    ``workers`` allows more than one and there is more than one batch.

    The batches run in turn on the calling thread when ``workers`` is 1, when there is one
    batch, when another call is using the threads already, or when BLAS cannot be limited
    to one thread (another thread controls it): never more threads than cores.

    Parameters
    ----------
    work : callable
        Does one batch, writing into disjoint parts of the outputs: convolves a batch of
        planes (its work memory the calling thread's own,
        :func:`gammaxr.geom.convolve.work_buffer`), or computes a block of the excess map's
        statistics.
    firsts : iterable of int
        The first plane (or the number) of each batch.
    workers : int
        ``1``: in turn on this thread (inside dask tasks); ``-1`` or more: one thread per
        core, at most ``workers`` (:func:`batch_threads`), BLAS on one thread meanwhile.

    Raises
    ------
    Exception
        The first exception raised by ``work``, after every batch has ended. An interruption
        while waiting (``KeyboardInterrupt``) cancels the batches not started, waits for
        those running and is raised again.
    """
    firsts = list(firsts)
    threads = batch_threads(workers)
    if threads > 1 and len(firsts) > 1 and _pool_in_use.acquire(blocking=False):
        try:
            with one_blas_thread() as single:
                if single:
                    pool = _kept_pool(threads)
                    futures = [pool.submit(work, first) for first in firsts]
                    try:
                        errors = [future.exception() for future in futures]  # waits for all
                    except BaseException:  # interrupted: the batches not started are dropped
                        for future in futures:
                            future.cancel()
                        wait(futures)
                        raise
                    for error in errors:
                        if error is not None:
                            raise error
                    return
        finally:
            _pool_in_use.release()
    for first in firsts:
        work(first)
