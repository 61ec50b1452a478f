"""gammaxr.memory: large results in 4 kB pages, buffers of dropped results used again."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import xarray as xr

from gammaxr import memory
from gammaxr.memory import (
    RESULT_BUFFER_MIN_BYTES,
    drop_kept_buffers,
    kept_buffer_bytes,
    result_array,
)

LINUX = sys.platform.startswith("linux")
needs_linux = pytest.mark.skipif(not LINUX, reason="anonymous memory maps with madvise: Linux")

LARGE = (RESULT_BUFFER_MIN_BYTES // 8 // 1000 + 1, 1000)  # float64, just above the threshold


def wait_for_fault_in_threads() -> None:
    for thread in threading.enumerate():
        if thread.name == "gammaxr-fault-in":
            thread.join(10)


@pytest.fixture(autouse=True)
def no_kept_buffers():
    wait_for_fault_in_threads()  # no helper thread left from another test
    drop_kept_buffers()
    yield
    wait_for_fault_in_threads()
    drop_kept_buffers()


def address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def test_small_arrays_and_python_objects_are_numpys_own():
    array = result_array((10, 20), np.float32)
    assert array.shape == (10, 20) and array.dtype == np.float32
    assert array.flags.owndata and array.flags.writeable
    objects = result_array(LARGE, object)
    assert objects.flags.owndata and objects.dtype == object


@needs_linux
def test_large_array_is_writeable_c_contiguous_of_the_shape_and_dtype():
    array = result_array(LARGE)
    assert array.shape == LARGE and array.dtype == np.float64
    assert array.flags.c_contiguous and array.flags.writeable
    array[...] = 2.5
    assert float(array.sum()) == 2.5 * array.size
    ints = result_array((3, RESULT_BUFFER_MIN_BYTES // 4), np.int32)
    assert ints.dtype == np.int32 and ints.shape == (3, RESULT_BUFFER_MIN_BYTES // 4)


@needs_linux
@pytest.mark.skipif(
    not os.path.exists("/sys/kernel/mm/transparent_hugepage"),
    reason="the kernel has no transparent huge pages: every page is 4 kB",
)
def test_large_array_is_mapped_in_small_pages():
    """The kernel marks the array's mapping ``nh`` (MADV_NOHUGEPAGE) in its VmFlags."""
    array = result_array(LARGE)
    array[...] = 1.0
    start = address(array)
    with open("/proc/self/smaps") as smaps:
        lines = smaps.read().splitlines()
    flags = None
    for i, line in enumerate(lines):
        head = line.split()[0]
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            lo, hi = (int(x, 16) for x in head.split("-"))
            if lo <= start < hi:
                flags = next(s for s in lines[i + 1 :] if s.startswith("VmFlags:"))
                break
    assert flags is not None, "the array's mapping is not in /proc/self/smaps"
    assert " nh" in flags


def resident_bytes(array: np.ndarray) -> int:
    """Bytes of ``array``'s pages in memory (``mincore``; its mapping may have merged with a
    neighbour's in /proc/self/smaps)."""
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    start = address(array) // page * page
    n_pages = -(-(address(array) + array.nbytes - start) // page)
    vector = (ctypes.c_ubyte * n_pages)()
    mincore = ctypes.CDLL(None, use_errno=True).mincore
    mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
    assert mincore(start, n_pages * page, vector) == 0, ctypes.get_errno()
    return sum(1 for v in vector if v & 1) * page


@needs_linux
@pytest.mark.parametrize("nbytes", [memory.BACKGROUND_FAULT_MIN_BYTES, 36_000_000])
def test_fresh_buffer_faulted_in_on_a_helper_thread(nbytes):
    """The helper maps every page (the last one too when the size is not a whole number of
    pages) without the caller writing any; the values are then the caller's."""
    memory._madvise.clear()  # as in a new process
    array = result_array((nbytes // 8,), fault_in_background=True)
    wait_for_fault_in_threads()
    if memory._libc_madvise() is None:
        pytest.skip("this kernel refuses MADV_POPULATE_WRITE (before Linux 5.14)")
    assert resident_bytes(array) >= nbytes
    array[...] = 3.0
    assert float(array[-1]) == 3.0 and float(array.sum()) == 3.0 * array.size
    # without the helper, nothing is mapped before it is written
    plain = result_array((nbytes // 8,))
    assert resident_bytes(plain) < nbytes // 4


@needs_linux
def test_no_helper_for_small_or_kept_buffers(monkeypatch):
    started = []
    monkeypatch.setattr(memory, "_fault_in_background", started.append)
    small = result_array((memory.BACKGROUND_FAULT_MIN_BYTES // 8 - 1,), fault_in_background=True)
    assert not started and small.size
    large = result_array((memory.BACKGROUND_FAULT_MIN_BYTES // 8,), fault_in_background=True)
    assert len(started) == 1
    del large
    gc.collect()
    again = result_array((memory.BACKGROUND_FAULT_MIN_BYTES // 8,), fault_in_background=True)
    assert len(started) == 1 and again.size  # a kept buffer is in memory already


@needs_linux
def test_helper_keeps_the_buffer_mapped_when_the_array_goes_first():
    """The array dropped, its buffer dropped too, while the helper still works: the helper's
    own reference keeps the memory mapped until it ends, and it ends without error."""
    memory._madvise.clear()
    array = result_array((64 * 2**20 // 8,), fault_in_background=True)
    del array
    gc.collect()
    drop_kept_buffers()
    wait_for_fault_in_threads()
    assert not [t for t in threading.enumerate() if t.name == "gammaxr-fault-in"]
    if memory._libc_madvise() is not None:  # not disabled by an error on the way
        assert memory._madvise == [memory._libc_madvise()]


@needs_linux
def test_kernel_refusing_the_advice_stops_the_helpers(monkeypatch):
    import ctypes
    import errno

    calls = []

    def refusing(address, length, advice):
        calls.append(advice)
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(memory, "_madvise", [refusing])
    array = result_array((memory.BACKGROUND_FAULT_MIN_BYTES // 8,), fault_in_background=True)
    wait_for_fault_in_threads()
    assert calls == [memory._MADV_POPULATE_WRITE]  # one refusal, then no more asking
    assert memory._madvise == [None]
    array[...] = 1.0  # the array is as good as any
    assert float(array.sum()) == array.size
    result_array((memory.BACKGROUND_FAULT_MIN_BYTES // 8,), fault_in_background=True)
    assert calls == [memory._MADV_POPULATE_WRITE]


@needs_linux
def test_buffer_is_kept_when_the_last_view_goes_and_given_again():
    array = result_array(LARGE)
    where = address(array)
    view = array[1:]
    del array
    gc.collect()
    assert kept_buffer_bytes() == 0  # a view still uses it
    del view
    gc.collect()
    assert kept_buffer_bytes() == LARGE[0] * LARGE[1] * 8
    again = result_array(LARGE)
    assert address(again) == where
    assert kept_buffer_bytes() == 0
    other = result_array(LARGE)  # none kept any more: a new buffer
    assert address(other) != where


@needs_linux
def test_kept_buffer_serves_sizes_down_to_half_its_own():
    big = result_array((4 * LARGE[0], LARGE[1]))
    where = address(big)
    del big
    gc.collect()
    quarter = result_array(LARGE)  # a quarter of the buffer: a new one
    assert address(quarter) != where
    half = result_array((2 * LARGE[0], LARGE[1]))
    assert address(half) == where
    assert kept_buffer_bytes() == 0


@needs_linux
def test_mid_size_arrays_take_a_kept_buffer_or_numpys_memory():
    mid = (RESULT_BUFFER_MIN_BYTES // 8 // 1000 - 1, 1000)  # below the fresh-buffer size
    assert mid[0] * 1000 * 8 >= memory.KEPT_BUFFER_MIN_BYTES
    assert result_array(mid).flags.owndata  # nothing kept: numpy's own
    big = result_array(LARGE)
    where = address(big)
    del big
    gc.collect()
    taken = result_array(mid)  # LARGE is less than twice as large: the kept buffer serves
    assert address(taken) == where and not taken.flags.owndata
    del taken
    gc.collect()
    assert kept_buffer_bytes() == LARGE[0] * LARGE[1] * 8  # and is kept again
    small = (memory.KEPT_BUFFER_MIN_BYTES // 8 // 1000 - 1, 1000)
    assert result_array(small).flags.owndata  # below the kept size: never a kept buffer
    assert kept_buffer_bytes() == LARGE[0] * LARGE[1] * 8


@needs_linux
def test_kept_bytes_stay_within_the_limit(monkeypatch):
    nbytes = LARGE[0] * LARGE[1] * 8
    monkeypatch.setattr(memory, "KEPT_RESULT_BYTES", 2 * nbytes)
    first, second, third = (result_array(LARGE) for _ in range(3))
    addresses = [address(a) for a in (first, second, third)]
    del first
    del second
    del third
    gc.collect()
    assert kept_buffer_bytes() == 2 * nbytes  # the first dropped is let go
    held = [result_array(LARGE) for _ in range(2)]
    assert sorted(address(a) for a in held) == sorted(addresses[1:])
    too_big = result_array((3 * LARGE[0], LARGE[1]))
    del too_big
    gc.collect()
    assert kept_buffer_bytes() == 0  # a buffer over the limit is never kept


@needs_linux
def test_drop_kept_buffers_gives_them_back():
    arrays = [result_array(LARGE) for _ in range(2)]
    del arrays
    gc.collect()
    kept = kept_buffer_bytes()
    assert kept == 2 * LARGE[0] * LARGE[1] * 8
    assert drop_kept_buffers() == kept
    assert kept_buffer_bytes() == 0


@needs_linux
def test_threads_taking_and_dropping_buffers_keep_their_own_values():
    errors = []

    def work(value: float) -> None:
        for _ in range(20):
            array = result_array(LARGE)
            array[...] = value
            if not np.all(array == value):
                errors.append(value)
            del array

    threads = [threading.Thread(target=work, args=(float(i),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert kept_buffer_bytes() <= memory.KEPT_RESULT_BYTES


@needs_linux
def test_excess_maps_on_kept_buffers_equal_the_first(monkeypatch):
    """An excess map whose outputs and sums are large results, made again on the kept
    buffers of the first (which hold its values), equals it; so does one made while the
    first is still alive (on new buffers)."""
    import importlib

    from gammaxr.estimators import excess_map

    statistics = importlib.import_module("gammaxr.estimators.excess_statistics")

    monkeypatch.setattr(memory, "RESULT_BUFFER_MIN_BYTES", 64 * 1024)
    monkeypatch.setattr(memory, "KEPT_BUFFER_MIN_BYTES", 32 * 1024)
    # the statistics block by block, into result arrays, as on large maps
    monkeypatch.setattr(statistics, "BLOCKED_PRODUCTS_MIN_PIXELS", 1000)
    monkeypatch.setattr(statistics, "PRODUCTS_BLOCK_PIXELS", 4096)
    rng = np.random.default_rng(3)
    shape = (4, 3, 60, 60)  # 86 kB a float64 map
    counts = rng.poisson(2.0, shape).astype(np.float32)
    background = np.full(shape, 1.8, dtype=np.float32)
    ds = xr.Dataset(
        {
            "counts": (("obs_id", "energy", "lat", "lon"), counts),
            "background": (("obs_id", "energy", "lat", "lon"), background),
        },
        coords={
            "obs_id": np.arange(4),
            "energy": [1.0, 2.0, 4.0],
            "lat": np.linspace(-0.59, 0.59, 60),
            "lon": np.linspace(-0.59, 0.59, 60),
        },
        attrs={"frame": "icrs"},
    )
    first = excess_map(ds, 0.1, metric="pixel")
    while_alive = excess_map(ds, 0.1, metric="pixel")
    xr.testing.assert_identical(first, while_alive)
    expected = first.copy(deep=True)
    del first, while_alive
    gc.collect()
    assert kept_buffer_bytes() > 0
    again = excess_map(ds, 0.1, metric="pixel")
    xr.testing.assert_identical(again, expected)


def kept_limit_in_new_process(value: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GAMMAXR_KEPT_RESULT_BYTES"}
    if value is not None:
        env["GAMMAXR_KEPT_RESULT_BYTES"] = value
    code = "import gammaxr.memory as m; print(m.KEPT_RESULT_BYTES)"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )


def test_kept_limit_from_the_environment():
    default = kept_limit_in_new_process(None)
    assert default.returncode == 0
    assert 0 < int(default.stdout) <= 2**30
    assert kept_limit_in_new_process("12345").stdout.strip() == "12345"
    assert kept_limit_in_new_process("0").stdout.strip() == "0"
    for wrong in ("-1", "lots"):
        done = kept_limit_in_new_process(wrong)
        assert done.returncode != 0
        assert "GAMMAXR_KEPT_RESULT_BYTES" in done.stderr and repr(wrong) in done.stderr


@needs_linux
def test_no_buffer_kept_with_a_zero_limit(monkeypatch):
    monkeypatch.setattr(memory, "KEPT_RESULT_BYTES", 0)
    array = result_array(LARGE)
    array[...] = 1.0
    del array
    gc.collect()
    assert kept_buffer_bytes() == 0


@needs_linux
def test_prepared_buffers_are_kept_for_the_results_of_their_shape(monkeypatch):
    shape = (memory.BACKGROUND_FAULT_MIN_BYTES // 8,)
    nbytes = shape[0] * 8
    assert memory.prepare_result_buffers((10, 10), 3) == 0  # small: numpy's own memory
    if memory._libc_madvise() is None:
        assert memory.prepare_result_buffers(shape, 3) == 0
        pytest.skip("this kernel refuses MADV_POPULATE_WRITE (before Linux 5.14)")
    kept = result_array(shape)
    kept[...] = 0.0
    kept_at = address(kept)
    del kept
    gc.collect()  # one buffer of the size kept already: two more made
    assert memory.prepare_result_buffers(shape, 3) == 2
    assert kept_buffer_bytes() == 3 * nbytes
    wait_for_fault_in_threads()
    taken = [result_array(shape) for _ in range(3)]
    assert kept_buffer_bytes() == 0 and kept_at in {address(a) for a in taken}
    assert all(resident_bytes(a) >= nbytes for a in taken)  # faulted in, none written
    # never more than the room left under the limit
    monkeypatch.setattr(memory, "KEPT_RESULT_BYTES", 2 * nbytes + 1)
    del taken
    gc.collect()
    drop_kept_buffers()
    assert memory.prepare_result_buffers(shape, 5) == 2


@needs_linux
def test_the_helper_faults_the_buffer_asked_for_last_in_first(monkeypatch):
    """A result asked for while prepared buffers are being faulted in goes first: it is
    needed first."""
    step = memory.BACKGROUND_FAULT_STEP_BYTES
    first_step = threading.Event()
    go_on = threading.Event()
    seen = []

    def madvise(address, length, advice):
        seen.append(address)
        first_step.set()
        go_on.wait(10)
        return 0

    monkeypatch.setattr(memory, "_madvise", [madvise])
    shape = (3 * step // 8,)
    prepared = memory.prepare_result_buffers(shape, 1)  # three steps, from its end
    assert prepared == 1 and first_step.wait(10)  # the helper is in its first step
    wanted = result_array((7 * step // 8,), fault_in_background=True)  # no kept one fits
    start = address(wanted)
    go_on.set()
    wait_for_fault_in_threads()
    assert len(seen) == 3 + 7
    assert seen[1:8] == [start + k * step for k in range(6, -1, -1)]  # from its end
    assert seen[0] - seen[8] == step and seen[8] - seen[9] == step  # then the rest
