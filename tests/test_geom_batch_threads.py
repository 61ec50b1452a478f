"""Batches of one eager convolution on a kept pool of threads, BLAS on one thread meanwhile."""

from __future__ import annotations

import multiprocessing
import sys
import threading

import numpy as np
import pytest

from gammaxr.geom.batch_threads import batch_threads, one_blas_thread, run_batches


def _blas_threads() -> set[int]:
    from threadpoolctl import ThreadpoolController

    return {
        lib["num_threads"] for lib in ThreadpoolController().info() if lib["user_api"] == "blas"
    }


def test_every_batch_runs_once_on_the_pool_or_in_turn():
    for workers in (1, -1, 2):
        seen, names = [], set()

        def work(first, seen=seen, names=names):
            seen.append(first)
            names.add(threading.current_thread().name)

        run_batches(work, range(0, 50, 5), workers)
        assert sorted(seen) == list(range(0, 50, 5))
        with one_blas_thread() as single:  # False if another thread controls BLAS's limits
            pooled = single and batch_threads(workers) > 1
        if pooled:
            assert all(name.startswith("gammaxr-batches") for name in names)
        else:
            assert names == {threading.current_thread().name}
    one = []
    run_batches(lambda first: one.append(threading.current_thread().name), [0], -1)
    assert one == [threading.current_thread().name]  # one batch: no hand-over


def test_batch_threads_counts_the_cores_this_process_may_use():
    assert batch_threads(1) == 1
    assert batch_threads(-1) >= 1
    assert batch_threads(10_000) == batch_threads(-1)
    assert batch_threads(0) == 1


def test_an_error_in_one_batch_is_raised_after_every_batch_ends():
    done = []

    def work(first):
        if first == 3:
            raise ValueError("batch 3 is bad")
        done.append(first)

    with pytest.raises(ValueError, match="batch 3 is bad"):
        run_batches(work, range(8), -1)
    assert sorted(done) == [0, 1, 2, 4, 5, 6, 7]


def test_blas_runs_on_one_thread_during_the_batches_and_is_given_back():
    before = _blas_threads()
    during = []
    run_batches(lambda first: during.append(_blas_threads()), range(4), -1)
    if batch_threads(-1) > 1:
        assert all(threads == {1} for threads in during)
    assert _blas_threads() == before


def test_one_blas_thread_limits_and_gives_back():
    before = _blas_threads()
    with one_blas_thread() as single:
        assert single
        assert _blas_threads() <= {1}
    assert _blas_threads() == before


def test_concurrent_calls_share_the_pool_one_at_a_time_and_give_blas_back():
    before = _blas_threads()
    inside = threading.Event()
    results = {}

    def slow(first):  # holds the pool until the second call has run
        inside.set()
        release.wait(5)

    def first_call():
        run_batches(slow, range(4), -1)
        results["first"] = True

    def second_call():
        inside.wait(5)
        names = set()
        run_batches(lambda first: names.add(threading.current_thread().name), range(4), -1)
        results["second"] = names  # the pool is busy: in turn on this thread
        release.set()

    release = threading.Event()
    threads = [threading.Thread(target=first_call), threading.Thread(target=second_call)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results["first"]
    assert results["second"] == {threads[1].name}
    assert _blas_threads() == before


def test_batches_run_in_turn_when_another_thread_controls_blas():
    from threadpoolctl import ThreadpoolController

    before = _blas_threads()
    holding, done = threading.Event(), threading.Event()

    def hold():  # the user's own limit (here the same number), held by another thread
        with ThreadpoolController().limit(limits=max(before, default=1), user_api="blas"):
            holding.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    try:
        names = set()
        run_batches(lambda first: names.add(threading.current_thread().name), range(4), -1)
        if any(lib["internal_api"] == "openblas" for lib in ThreadpoolController().info()):
            assert names == {threading.current_thread().name}  # could not limit: in turn
        assert len(names) >= 1
    finally:
        done.set()
        holder.join(10)
    assert _blas_threads() == before


def _child_sums(queue):
    out = np.zeros(6)
    names = set()

    def work(first):
        out[first] = first * 2.0
        names.add(threading.current_thread().name)

    run_batches(work, range(6), -1)
    with one_blas_thread() as single:
        pooled = single and batch_threads(-1) > 1
    queue.put((out.tolist(), pooled, sorted(names)))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method is Linux-only here")
@pytest.mark.parametrize("busy", [False, True])
def test_a_forked_child_gets_its_own_pool(busy):
    run_batches(lambda first: None, range(4), -1)  # the parent's pool exists before the fork
    release = threading.Event()
    if busy:  # the fork happens while a parent's thread holds the pool
        started = threading.Event()

        def hold(first):
            started.set()
            release.wait(10)

        holder = threading.Thread(target=run_batches, args=(hold, range(2), -1))
        holder.start()
        started.wait(5)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_sums, args=(queue,))
    child.start()
    try:
        result = queue.get(timeout=30)  # a pool without threads would never answer
    finally:
        release.set()
        child.join(10)
        if child.is_alive():
            child.kill()
    if busy:
        holder.join(10)
    sums, pooled, names = result
    assert sums == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    if pooled:  # the child's own pool, free even if the parent's was busy at the fork
        assert all(name.startswith("gammaxr-batches") for name in names)


def test_an_interrupted_call_drops_the_batches_not_started(monkeypatch):
    import concurrent.futures

    started, release = [], threading.Event()

    def work(first):
        started.append(first)
        release.wait(5)

    calls = {"n": 0}
    exception = concurrent.futures.Future.exception

    def interrupted(self, timeout=None):  # Ctrl-C while waiting for the first batch
        calls["n"] += 1
        if calls["n"] == 1:
            release.set()
            raise KeyboardInterrupt
        return exception(self, timeout)

    monkeypatch.setattr(concurrent.futures.Future, "exception", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_batches(work, range(40), -1)
    monkeypatch.undo()
    names = set()
    run_batches(lambda first: names.add(first), range(4), -1)  # the pool is free again
    assert names == {0, 1, 2, 3}
    with one_blas_thread() as single:
        pooled = single and batch_threads(-1) > 1
    if pooled:  # whatever was left of the first call ran before the second: all of it
        assert len(started) < 40  # most batches never started
