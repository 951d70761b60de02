"""Process-wide bounds for one command: CPU seconds and address space.

`symgeo derive` already runs its stages in children bounded by --budget and --memory; every other
command (kl, distance, geodesic, verify, report, figures) runs in the process and is bounded here:
after `seconds` of CPU time it stops with TimeLimitExceeded, and an allocation past `memory_bytes`
fails with MemoryError, which the command line reports in one line. CPU time (SIGPROF), not wall
time, so that it does not disturb a caller's own alarm; a command waiting on nothing uses none.
"""
from __future__ import annotations

import contextlib
import signal

from .errors import SymgeoError

try:
    import resource
except ImportError:  # not POSIX: no bounds (documented)
    resource = None


class TimeLimitExceeded(SymgeoError):
    """The command used its CPU-time allowance."""


@contextlib.contextmanager
def bounded(seconds: float | None, memory_bytes: int | None, option: str = "--time-limit"):
    restore = []
    try:
        if seconds and hasattr(signal, "setitimer"):
            def stop(signum, frame):
                raise TimeLimitExceeded(f"stopped after {seconds:g} s of computation ({option}; raise it to "
                                        f"allow more)")
            previous = signal.signal(signal.SIGPROF, stop)
            # and again every second after: code that swallows one exception does not escape the bound
            signal.setitimer(signal.ITIMER_PROF, seconds, 1.0)
            restore.append(lambda: (signal.setitimer(signal.ITIMER_PROF, 0),
                                    signal.signal(signal.SIGPROF, previous)))
        if memory_bytes and resource is not None:
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
            if soft == resource.RLIM_INFINITY or limit < soft:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
                restore.append(lambda: resource.setrlimit(resource.RLIMIT_AS, (soft, hard)))
        yield
    finally:
        for undo in reversed(restore):
            undo()
