"""torch's global state changed only inside a block: library code leaves the caller's random stream and
thread count as it found them."""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def local_torch_state(seed: int | None = None, threads: int | None = None):
    """Within the block, torch's CPU generator is seeded with `seed` and `threads` intra-op threads are
    used; both are restored afterwards (CUDA generators are left alone)."""
    before = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)
