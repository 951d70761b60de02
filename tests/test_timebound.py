"""Bounded computations: a threaded process never forks itself (its children go to a single-threaded
worker); the bound, errors and results are the same on both routes."""
import os
import threading
import time

import pytest
import sympy as sp

from symgeo.timebound import TimeBoundExceeded, _threads, call_with_timeout


@pytest.fixture
def threaded():
    """This process with one more thread alive (as numpy's BLAS pool or torch would leave it)."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    yield
    stop.set()
    thread.join()


def _pid_of_parent():
    return os.getppid()


def test_a_threaded_process_sends_its_computation_to_the_worker(threaded):
    assert _threads() > 1
    parent_of_child = call_with_timeout(_pid_of_parent, (), 30)
    assert parent_of_child != os.getpid()  # forked by the worker, not by this process
    x = sp.Symbol("x")
    assert call_with_timeout(sp.integrate, (sp.exp(-x ** 2), (x, 0, sp.oo)), 60) == sp.sqrt(sp.pi) / 2


def test_bounds_and_errors_on_the_worker_route(threaded):
    start = time.time()
    with pytest.raises(TimeBoundExceeded):
        call_with_timeout(time.sleep, (30,), 1)
    assert time.time() - start < 10
    with pytest.raises(RuntimeError, match="invalid literal"):
        call_with_timeout(int, ("x",), 10)


def test_what_cannot_be_sent_runs_in_a_direct_fork(threaded):
    assert call_with_timeout(lambda a: a + 1, (2,), 10) == 3
