"""Run a SymPy computation under a wall-clock bound, in a forked child that can be killed.

SymPy's integrate/summation can run for minutes; a thread cannot be interrupted, a process can.
Where fork is unavailable the call runs unbounded (documented limitation).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import resource


class TimeBoundExceeded(Exception):
    pass


def _child(conn, fn, args, seconds):
    # not a daemon, so fn may bound its own steps the same way; an orphan still ends by its CPU limit
    cpu = int(seconds) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    try:
        conn.send_bytes(pickle.dumps(("ok", fn(*args))))
    except BaseException as exc:  # noqa: BLE001 (report any failure to the parent, never hang it)
        conn.send_bytes(pickle.dumps(("err", f"{type(exc).__name__}: {exc}")))
    finally:
        conn.close()


def call_with_timeout(fn, args: tuple, seconds: float):
    """fn(*args) or TimeBoundExceeded after `seconds`; exceptions in fn come back as RuntimeError."""
    if seconds is None or "fork" not in mp.get_all_start_methods() or os.environ.get("SYMGEO_NO_FORK"):
        return fn(*args)
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, seconds))
    proc.start()
    send.close()
    try:
        if not recv.poll(seconds):
            raise TimeBoundExceeded(f"no result within {seconds:g} s")
        status, value = pickle.loads(recv.recv_bytes())
    except EOFError as exc:
        raise RuntimeError("the computation's process died") from exc
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        proc.join()
    if status == "err":
        raise RuntimeError(value)
    return value
