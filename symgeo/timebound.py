"""Run a SymPy computation under a wall-clock bound, in a child process that can be killed.

SymPy's integrate/summation can run for minutes; a thread cannot be interrupted, a process can.
A single-threaded process (the command line: the symbolic core starts no threads) forks the child
directly. A process with other threads (numpy's BLAS pool, torch, the caller's own) is not forked: a lock
held by another thread at that moment would stay held in the child forever. Its computations go instead
to a worker, a fresh single-threaded interpreter started once with symgeo loaded, which forks the bounded
child for each. A computation that cannot be sent there (a function defined in `__main__` or a lambda)
falls back to the direct fork. Where fork is unavailable the call runs unbounded (documented limitation).
"""
from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import pickle
import resource
import struct
import subprocess
import sys
import threading


class TimeBoundExceeded(Exception):
    pass


def call_with_timeout(fn, args: tuple, seconds: float):
    """fn(*args) or TimeBoundExceeded after `seconds`; exceptions in fn come back as RuntimeError."""
    if seconds is None or "fork" not in mp.get_all_start_methods() or os.environ.get("SYMGEO_NO_FORK"):
        return fn(*args)
    if _threads() > 1:
        request = _picklable((fn, args, seconds))
        if request is not None:
            return _outcome(*_WORKER.run(request))
    return _outcome(*_forked(fn, args, seconds))


def _outcome(status: str, value):
    if status == "timeout":
        raise TimeBoundExceeded(value)
    if status == "err":
        raise RuntimeError(value)
    return value


def _forked(fn, args: tuple, seconds: float) -> tuple:
    """(status, value) of fn(*args) in a forked child killed after `seconds`."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, seconds))
    proc.start()
    send.close()
    try:
        if not recv.poll(seconds):
            return "timeout", f"no result within {seconds:g} s"
        return pickle.loads(recv.recv_bytes())
    except EOFError:
        return "err", "the computation's process died"
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        proc.join()


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


def _threads() -> int:
    """Threads of this process, native ones included (Linux); else those Python knows of."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _picklable(request) -> bytes | None:
    if getattr(request[0], "__module__", None) == "__main__":
        return None  # the worker cannot import the caller's script
    try:
        return pickle.dumps(request)
    except (pickle.PicklingError, AttributeError, TypeError):
        return None


# -- the worker: a single-threaded interpreter that forks the bounded children -----------------------
class _Worker:
    """One worker process per process that needs it, started on first use; requests are served one at
    a time (a lock), each in a child the worker forks and kills at its bound."""

    def __init__(self):
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._owner = os.getpid()

    def run(self, request: bytes) -> tuple:
        with self._lock:
            for _ in range(2):  # a worker that died is started again once
                try:
                    _write(self._process().stdin, request)
                    return pickle.loads(_read(self._proc.stdout))
                except (OSError, EOFError, struct.error):
                    self.close()
            return "err", "the worker process for bounded computations died"

    def _process(self) -> subprocess.Popen:
        if self._proc is None or self._owner != os.getpid():  # a forked copy starts a worker of its own
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            command = [sys.executable, "-c", "from symgeo.timebound import serve; serve()"]
            self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
            self._owner = os.getpid()
        return self._proc

    def close(self) -> None:
        if self._proc is not None and self._owner == os.getpid():
            self._proc.kill()
            self._proc.wait()
        self._proc = None


_WORKER = _Worker()
atexit.register(_WORKER.close)


def serve() -> None:
    """The worker's loop: read (fn, args, seconds), answer (status, value), until stdin closes."""
    import symgeo  # noqa: F401 (loaded once here, shared by every forked child)
    # the protocol keeps the pipes to itself: what a computation prints goes to stderr, it reads nothing
    stdin, stdout = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    while True:
        try:
            request = _read(stdin)
        except (EOFError, struct.error):
            return
        try:
            fn, args, seconds = pickle.loads(request)
            answer = _forked(fn, args, seconds)
        except Exception as exc:  # noqa: BLE001 (an unloadable request is answered, not fatal)
            answer = ("err", f"{type(exc).__name__}: {exc}")
        _write(stdout, pickle.dumps(answer))


def _write(stream, payload: bytes) -> None:
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


def _read(stream) -> bytes:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError
    (size,) = struct.unpack("<Q", header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return payload
