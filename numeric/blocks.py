"""Elementwise work in cache-sized blocks, spread over a thread pool.

numpy releases the GIL inside its loops, so blocks of 2¹⁶ elements run in parallel on one thread per core
(at most 8; the environment variable SYMGEO_THREADS overrides), and each block's temporaries stay in
cache instead of paging in fresh memory. Generated numpy functions evaluate large batches this way, and so
does `special.trigamma`. numpy's error state (np.errstate) is carried into the worker threads.

>>> out = np.empty(200_000)
>>> def fill(start, stop):
...     out[start:stop] = np.arange(start, stop) ** 2
>>> run_blocks(fill, out.size)
>>> bool(out[-1] == 199_999 ** 2)
True
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BLOCK = 65536
THREADS = max(1, int(os.environ.get("SYMGEO_THREADS", min(os.cpu_count() or 1, 8))))
_PREFIX = "symgeo-block"
_POOL: ThreadPoolExecutor | None = None


def run_blocks(fill: Callable[[int, int], None], size: int) -> None:
    """Call fill(start, stop) for consecutive blocks covering range(size), in parallel where it pays."""
    starts = range(0, size, BLOCK)
    nested = threading.current_thread().name.startswith(_PREFIX)  # a worker waiting on its own pool deadlocks
    if len(starts) <= 1 or THREADS == 1 or nested:
        for start in starts:
            fill(start, min(start + BLOCK, size))
        return
    errors = np.geterr()

    def task(start):
        with np.errstate(**errors):
            fill(start, min(start + BLOCK, size))
    list(_pool().map(task, starts))  # list(): re-raises a worker's exception here


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(THREADS, thread_name_prefix=_PREFIX)
    return _POOL
