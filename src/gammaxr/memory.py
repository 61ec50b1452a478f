"""Memory for large results: 4 kB pages, and the buffers of dropped results used again.

numpy asks the kernel for transparent huge pages (2 MB) for every array of 4 MB or more.
That pays where memory is reused at once: one page fault per 2 MB instead of 512. But on a
virtual machine whose guest hands free memory back to the host (virtio-balloon free page
reporting, which reports large free blocks, 8 MB on the development machine, once they
have been free for a few seconds), fresh huge pages are mostly such blocks, and the host
must fault each one in again at the first touch: about 2 ms a MB, against 0.4 ms a MB in
4 kB pages, which the kernel takes from the free memory it has not reported
(``benchmarks/cold_costs.py`` measures both on the machine it runs on). A notebook cell or
script that makes a few hundred MB of maps after a pause would pay the first figure each
time.

The large results of the correlations (the convolved maps, the excess-map products, the
reference exposure) are therefore made by :func:`result_array`:

- in 4 kB pages (an anonymous memory map with ``MADV_NOHUGEPAGE``), so that a first call
  pays a fifth of what fresh memory costs in huge pages after a pause;
- and when all the arrays on a result's buffer are gone, the buffer is kept, up to
  :data:`KEPT_RESULT_BYTES` in all, for the next result of its size (or up to half as
  large): a call that follows
  another touches no fresh memory at all (numpy's huge pages would cost 0.1 ms a MB even
  then). The kept buffers are part of the process's resident memory until reused or
  dropped (:func:`drop_kept_buffers`); ``GAMMAXR_KEPT_RESULT_BYTES`` sets the limit (0
  for none; the workers of :func:`gammaxr.reduce.cluster.local_cluster` get an eighth of
  their memory limit).

A result written by one thread while another core has nothing to do (the top-hat sums
of an eager call run on one thread) may ask for its fresh buffer to be faulted in on
another thread (``fault_in_background=True``): a helper thread asks the kernel for the
buffer's pages, last page first (``MADV_POPULATE_WRITE``, Linux 5.14 and later, which maps
pages writable without writing them), while the caller writes from the first page on, so
that most of the page faults are taken off the caller's thread. A call that knows the
results it will make after such a stretch of work has their buffers made and faulted in
the same way beforehand, kept for :func:`result_array` (:func:`prepare_result_buffers`).
One helper thread at a time does the work, the buffer asked for last first, a few MB at a
time; it holds each buffer until it is done with it, so the memory stays mapped whatever
happens to the arrays.

Fresh buffers are made for arrays of at least :data:`RESULT_BUFFER_MIN_BYTES` (4 MB);
kept buffers also serve arrays from :data:`KEPT_BUFFER_MIN_BYTES` (1 MB); other arrays are
``numpy.empty``, from the heap. Only on Linux; elsewhere every array is ``numpy.empty``. A
buffer taken again holds the values of the result it held: callers write every element,
as they must after ``numpy.empty``.
"""

from __future__ import annotations

import ctypes
import errno
import math
import mmap
import os
import sys
import threading
import weakref

import numpy as np

__all__ = [
    "KEPT_BUFFER_MIN_BYTES",
    "KEPT_RESULT_BYTES",
    "KEPT_RESULT_BYTES_VARIABLE",
    "RESULT_BUFFER_MIN_BYTES",
    "drop_kept_buffers",
    "kept_buffer_bytes",
    "physical_memory_bytes",
    "prepare_result_buffers",
    "result_array",
]

#: Arrays from this size on get a fresh buffer in 4 kB pages when no kept one fits (numpy
#: asks for huge pages from 4 MB on); smaller ones are ``numpy.empty`` then, from glibc's
#: heap, as good as fresh 4 kB pages and often already in memory.
RESULT_BUFFER_MIN_BYTES = 4 * 2**20

#: Arrays from this size on take a kept buffer that fits if there is one. Below 4 MB that
#: is what keeps a small result after large ones cheap: glibc's heap would have served it
#: without page faults only if glibc had seen large arrays freed (its adaptive mmap
#: threshold grows with them), and the large results here are not glibc's (the first
#: 10-band Gaussian after the top-hats took 4.2-6.5 ms without this, 2.8-2.9 ms with it).
KEPT_BUFFER_MIN_BYTES = 2**20


def physical_memory_bytes() -> int | None:
    """The machine's memory in bytes, None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


#: The environment variable that sets :data:`KEPT_RESULT_BYTES` (read at import).
KEPT_RESULT_BYTES_VARIABLE = "GAMMAXR_KEPT_RESULT_BYTES"


def _kept_result_bytes() -> int:
    """The limit from :data:`KEPT_RESULT_BYTES_VARIABLE`, else 1 GiB or an eighth of the
    machine's memory where that is less."""
    setting = os.environ.get(KEPT_RESULT_BYTES_VARIABLE)
    if setting is None:
        return min(2**30, (physical_memory_bytes() or 2**33) // 8)
    try:
        value = int(setting)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(
            f"{KEPT_RESULT_BYTES_VARIABLE} must be a number of bytes >= 0 (0: keep no "
            f"buffer of a dropped result), got {setting!r}"
        )
    return value


#: The most memory kept in dropped results' buffers per process: 1 GiB, or an eighth of
#: the machine's memory where that is less; the environment variable
#: ``GAMMAXR_KEPT_RESULT_BYTES`` sets it (0 keeps none: every large result is then fresh
#: memory in 4 kB pages), e.g. for many worker processes on one machine.
KEPT_RESULT_BYTES = _kept_result_bytes()

_ANONYMOUS = getattr(mmap, "MAP_ANONYMOUS", None)
_NO_HUGE_PAGES = getattr(mmap, "MADV_NOHUGEPAGE", None)
_SMALL_PAGES = _ANONYMOUS is not None and _NO_HUGE_PAGES is not None

#: Buffers whose arrays are gone, oldest first; guarded by ``_lock``.
_kept: list[mmap.mmap] = []
_lock = threading.Lock()


def _forget_after_fork() -> None:
    """In a forked child: a lock of its own (the parent's may have been held by another
    thread at the fork) and no kept buffers (the parent's, copied on write)."""
    global _lock, _fault_lock
    _lock = threading.Lock()
    _kept.clear()
    _fault_lock = threading.Lock()  # the parent's helper thread is not in the child
    _fault_jobs.clear()
    _fault_thread.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def result_array(
    shape: tuple[int, ...],
    dtype: np.dtype | type = np.float64,
    *,
    fault_in_background: bool = False,
) -> np.ndarray:
    """A new, writeable, C-contiguous array for a large result.

    Parameters
    ----------
    shape : tuple of int
        Shape of the array.
    dtype : numpy.dtype
        Its data type (default float64).
    fault_in_background : bool
        For a result that one thread writes from its first element on while another core
        is idle: a fresh buffer of at least :data:`BACKGROUND_FAULT_MIN_BYTES` is faulted
        in on a helper thread, last page first (see the module docstring). A kept buffer
        is in memory already.

    Returns
    -------
    numpy.ndarray
        Contents undefined, as of ``numpy.empty``: the caller writes every element. On
        Linux, from :data:`KEPT_BUFFER_MIN_BYTES` on (not for Python objects), the array
        is on a kept buffer of its size (up to twice) if there is one; else, from
        :data:`RESULT_BUFFER_MIN_BYTES` on, on a new buffer of its own in 4 kB pages. Such a
        buffer is kept for the next result when the array and all its views are gone.
        Otherwise ``numpy.empty``.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < KEPT_BUFFER_MIN_BYTES or not _SMALL_PAGES or dtype.hasobject:
        return np.empty(shape, dtype)
    buffer = _take_kept(nbytes)
    if buffer is None:
        if nbytes < RESULT_BUFFER_MIN_BYTES:
            return np.empty(shape, dtype)
        buffer = _fresh_buffer(nbytes)
        if fault_in_background and nbytes >= BACKGROUND_FAULT_MIN_BYTES:
            _fault_in_background(buffer)
    array = np.frombuffer(buffer, dtype=dtype, count=math.prod(shape)).reshape(shape)
    # the array made by frombuffer is the base of every view: keep the buffer when it dies
    finalizer = weakref.finalize(array.base, _keep, buffer)
    finalizer.atexit = False
    return array


def _fresh_buffer(nbytes: int) -> mmap.mmap:
    """A new anonymous memory map of ``nbytes``, in 4 kB pages."""
    buffer = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | _ANONYMOUS)
    try:
        buffer.madvise(_NO_HUGE_PAGES)
    except OSError:  # a kernel without transparent huge pages: 4 kB pages anyway
        pass
    return buffer


#: Fresh buffers from this size on are faulted in on a helper thread when the caller asks
#: (``result_array(..., fault_in_background=True)``): the helper thread costs about 0.1 ms
#: to start, the page faults about 0.4 ms a MB on the writing thread.
BACKGROUND_FAULT_MIN_BYTES = 8 * 2**20

#: Bytes faulted in by one call of the kernel in the helper thread (a few ms each).
BACKGROUND_FAULT_STEP_BYTES = 4 * 2**20

#: Linux's ``MADV_POPULATE_WRITE`` (5.14 and later): fault the range in, writable.
_MADV_POPULATE_WRITE = 23
#: libc's ``madvise`` through ctypes, which lets go of the GIL during the call (the
#: ``madvise`` of Python's ``mmap`` holds it); None where unavailable or refused.
_madvise: list = []


def _libc_madvise():
    """libc's ``madvise`` (None off Linux or without ctypes' access to libc)."""
    if not _madvise:
        function = None
        if sys.platform.startswith("linux"):
            try:
                function = ctypes.CDLL(None, use_errno=True).madvise
                function.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
                function.restype = ctypes.c_int
            except (OSError, AttributeError):
                function = None
        _madvise.append(function)
    return _madvise[0]


#: Buffers being faulted in, newest last: ``[buffer, address, bytes left]``; guarded by
#: ``_fault_lock``. The helper thread (one at a time, ``_fault_thread``) works on the newest
#: first, a step at a time: a result asked for now is needed before those prepared earlier.
_fault_jobs: list[list] = []
_fault_lock = threading.Lock()
_fault_thread: list[threading.Thread] = []


def _fault_in_background(buffer: mmap.mmap) -> None:
    """Have the helper thread fault ``buffer`` in, last page first (started if none runs)."""
    madvise = _libc_madvise()
    if madvise is None:
        return
    view = np.frombuffer(buffer, dtype=np.uint8)
    address = view.ctypes.data  # page-aligned: the start of the map
    del view  # no export left behind: the job holds the buffer itself
    page = mmap.PAGESIZE
    length = -(-len(buffer) // page) * page  # the map's last page in full: steps aligned
    with _fault_lock:
        _fault_jobs.append([buffer, address, length])
        if not _fault_thread:
            thread = threading.Thread(
                target=_fault_in, args=(madvise,), name="gammaxr-fault-in", daemon=True
            )
            _fault_thread.append(thread)
            thread.start()


def _fault_in(madvise) -> None:
    """The helper thread: fault the newest job's next step in (from its end), until no job
    is left. A job holds its buffer, so the memory stays mapped whatever happens to its
    arrays. A kernel that refuses the advice (before Linux 5.14) stops it for the
    process."""
    while True:
        with _fault_lock:
            if not _fault_jobs:
                _fault_thread.clear()
                return
            job = _fault_jobs[-1]
            buffer, address, end = job
            start = max(0, end - BACKGROUND_FAULT_STEP_BYTES)
            job[2] = start
            if start == 0:
                _fault_jobs.pop()
        if madvise(address + start, end - start, _MADV_POPULATE_WRITE) != 0:
            refused = ctypes.get_errno() == errno.EINVAL  # an older kernel: never again
            with _fault_lock:
                if refused:
                    _madvise[0] = None
                    _fault_jobs.clear()
                else:  # another error: this job is dropped, the others go on
                    _fault_jobs[:] = [j for j in _fault_jobs if j[0] is not buffer]
        del buffer, job


def prepare_result_buffers(
    shape: tuple[int, ...], count: int, dtype: np.dtype | type = np.float64
) -> int:
    """Make buffers for ``count`` results of ``shape`` ahead of time, faulted in on the
    helper thread, and keep them for :func:`result_array`.

    For a call that will make results of a known size after a stretch of work that leaves
    a core idle (the top-hat sums of an eager excess map run on one thread before its
    statistics): the pages are mapped meanwhile instead of by the threads that write the
    results. Kept buffers that already fit count towards ``count``; no more is made than
    the room left under :data:`KEPT_RESULT_BYTES`.

    Parameters
    ----------
    shape : tuple of int
        Shape of the results.
    count : int
        How many results will be made.
    dtype : numpy.dtype
        Their data type (default float64).

    Returns
    -------
    int
        The number of buffers made (0 off Linux, below
        :data:`BACKGROUND_FAULT_MIN_BYTES`, where the kernel refuses the advice, or when
        enough buffers are kept already).
    """
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes < BACKGROUND_FAULT_MIN_BYTES or not _SMALL_PAGES or _libc_madvise() is None:
        return 0
    with _lock:
        fitting = sum(1 for b in _kept if nbytes <= len(b) <= 2 * nbytes)
        room = KEPT_RESULT_BYTES - sum(len(b) for b in _kept)
    made = max(0, min(count - fitting, room // nbytes))
    for _ in range(made):
        buffer = _fresh_buffer(nbytes)
        _fault_in_background(buffer)
        _keep(buffer)
    return made


def _take_kept(nbytes: int) -> mmap.mmap | None:
    """The smallest kept buffer of ``nbytes`` to twice that (removed from the kept ones)."""
    with _lock:
        fitting = [b for b in _kept if nbytes <= len(b) <= 2 * nbytes]
        if not fitting:
            return None
        buffer = min(fitting, key=len)
        del _kept[next(i for i, kept in enumerate(_kept) if kept is buffer)]
        return buffer


def _keep(buffer: mmap.mmap) -> None:
    """Keep ``buffer`` (its arrays are gone) for a later result, the oldest kept ones
    dropped to stay within :data:`KEPT_RESULT_BYTES`. Called by a finalizer, from whatever
    thread let go of the last array: if another thread holds the lock, the buffer is
    dropped (unmapped) rather than waited for."""
    if len(buffer) > KEPT_RESULT_BYTES or not _lock.acquire(blocking=False):
        return
    try:
        total = sum(len(b) for b in _kept) + len(buffer)
        while _kept and total > KEPT_RESULT_BYTES:
            total -= len(_kept.pop(0))
        _kept.append(buffer)
    finally:
        _lock.release()


def kept_buffer_bytes() -> int:
    """Bytes held in kept buffers of dropped results (the memory :func:`result_array` may
    give again)."""
    with _lock:
        return sum(len(b) for b in _kept)


def drop_kept_buffers() -> int:
    """Give the kept buffers back to the system.

    Returns
    -------
    int
        The bytes given back.
    """
    with _lock:
        dropped = sum(len(b) for b in _kept)
        _kept.clear()
    return dropped
