"""One time and memory budget for a whole derivation, with every finished stage kept.

The stages (Fisher metric, Christoffel symbols, ..., curvature) run in order in a forked child under
an address-space bound; the child sends back each result the moment it exists. At the deadline the
parent kills the child: what arrived is the partial result, the stage that was running is named as
unfinished with its cause. A child that dies (out of memory) costs only its stage: the next stage
starts in a fresh child. Where fork is unavailable (or SYMGEO_NO_FORK is set) stages run inline,
unbounded.

Failures are remembered by the caller (`known` / `on_failure`): a stage that did not finish in
`given` seconds is skipped while no more time than that is available, so a retry is instant unless
the budget is raised.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import SymgeoError

PROGRESS_EVERY_S = 15.0


@dataclass(frozen=True)
class Failure:
    """Why a stage has no result: `cause` is 'time', 'memory' or 'error'; `given` the seconds (time)
    or bytes (memory) it had."""
    cause: str
    reason: str
    given: float = 0.0


@dataclass
class Outcome:
    values: dict = field(default_factory=dict)      # stage name -> value, in stage order
    unfinished: dict = field(default_factory=dict)  # stage name -> Failure
    seconds: dict = field(default_factory=dict)     # stage name -> seconds it took

    @property
    def complete(self) -> bool:
        return not self.unfinished


class StageError(SymgeoError):
    """A required stage (the Fisher metric) failed: nothing else can be derived."""


def run_stages(stages: list[tuple[str, Callable[[], object]]], *, budget: float,
               memory_bytes: int | None = None, required: tuple = (), known: dict | None = None,
               on_failure: Callable[[str, Failure], None] | None = None,
               progress: Callable[[str], None] | None = None) -> Outcome:
    """Run `stages` [(name, fn)] in order within `budget` seconds; see the module docstring.

    A SymgeoError in a stage of `required` is re-raised (with its own message); in any other stage it
    makes that stage unfinished with cause 'error'. `known[name]` is a Failure from an earlier run."""
    known = dict(known or {})
    outcome = Outcome()
    deadline = time.monotonic() + budget
    say = progress or (lambda message: None)
    inline = "fork" not in mp.get_all_start_methods() or os.environ.get("SYMGEO_NO_FORK")
    pending = list(stages)
    if inline:
        _run_inline(pending, outcome, required)
        return outcome
    while pending and time.monotonic() < deadline:
        pending = _run_child(pending, outcome, deadline, memory_bytes, required, known, on_failure, say)
    for name, _ in pending:
        outcome.unfinished[name] = Failure("time", f"{_label(name)}: not started, the budget was spent")
    return outcome


def _stage_deadline(name: str, names: list, required: tuple, deadline: float) -> float:
    """A stage that is neither required nor last may use half of the time left, so one slow stage
    (skewness) does not starve an independent later one (curvature)."""
    if name in required or name == names[-1]:
        return deadline
    now = time.monotonic()
    return now + (deadline - now) / 2


def _skip_reason(failure: Failure | None, allowed: float, memory_bytes: int | None) -> str | None:
    if failure is None:
        return None
    if failure.cause == "time" and allowed <= failure.given + 1:
        return f"{failure.reason} (remembered from an earlier run; a larger --budget retries)"
    if failure.cause == "memory" and memory_bytes is not None and memory_bytes <= failure.given:
        return f"{failure.reason} (remembered from an earlier run; a larger --memory retries)"
    return None


# -- the child ------------------------------------------------------------------------------------
def _child(conn, stages, required, memory_bytes, known, deadline):
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # a child orphaned by a killed parent still ends: CPU seconds bounded by the budget
    cpu = int(max(deadline - time.monotonic(), 1)) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    names = [name for name, _ in stages]
    for name, fn in stages:
        allowed = _stage_deadline(name, names, required, deadline) - time.monotonic()
        skip = _skip_reason(known.get(name), allowed, memory_bytes)
        if skip:
            conn.send_bytes(pickle.dumps(("skipped", name, skip)))
            continue
        conn.send_bytes(pickle.dumps(("start", name, time.monotonic())))
        start = time.monotonic()
        try:
            message = ("done", name, fn(), time.monotonic() - start)
        except MemoryError:
            message = ("memory", name, "")
        except SymgeoError as exc:
            message = ("error", name, str(exc), name in required)
        except Exception as exc:  # noqa: BLE001 - any other failure is this stage's (fatal if required)
            message = ("error", name, f"{type(exc).__name__}: {exc}", name in required)
        try:
            payload = pickle.dumps(message)
        except Exception as exc:  # noqa: BLE001
            payload = pickle.dumps(("error", name, f"result not transferable: {exc}", False))
        conn.send_bytes(payload)
        if message[0] == "error" and message[3]:
            break
    conn.close()


def _run_child(pending, outcome, deadline, memory_bytes, required, known, on_failure, say):
    """Run the pending stages in one child; return those still to run in a fresh child."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    # not a daemon: the stage may fork its own time-bounded children (SymPy integrate under a bound)
    proc = ctx.Process(target=_child, args=(send, pending, required, memory_bytes, known, deadline))
    proc.start()
    send.close()
    names = [name for name, _ in pending]
    current, started, stage_deadline = None, time.monotonic(), deadline
    try:
        while True:
            left = stage_deadline - time.monotonic()
            if left <= 0:
                given = stage_deadline - started
                _fail(current, Failure("time", f"{_label(current)}: not finished within the budget "
                                       f"({given:.0f} s were given to it)", given), outcome, on_failure)
                return _after(current, pending, names, required, outcome)
            if not recv.poll(min(left, PROGRESS_EVERY_S)):
                if current is not None and stage_deadline - time.monotonic() > 1:
                    say(f"still computing {_label(current)} ({time.monotonic() - started:.0f} s)")
                continue
            try:
                message = pickle.loads(recv.recv_bytes())
            except EOFError:  # the child died: killed for memory, or crashed
                if current is None:
                    return []
                _fail(current, Failure("memory", f"{_label(current)}: the computation's process died "
                                       f"(out of memory?{_bound_text(memory_bytes)})", memory_bytes or 0),
                      outcome, on_failure)
                return _after(current, pending, names, required, outcome)
            kind, name = message[0], message[1]
            if kind == "start":
                current, started = name, time.monotonic()
                stage_deadline = _stage_deadline(name, names, required, deadline)
                continue
            current, stage_deadline = None, deadline
            _receive(message, outcome, known, memory_bytes, on_failure, say)
            if name == names[-1]:
                return []
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        proc.join()


def _after(current, pending, names, required, outcome):
    """The stages still to run after `current` failed: none when it was required (everything needs it)."""
    rest = pending[names.index(current) + 1:]
    if current not in required:
        return rest
    for name, _ in rest:
        outcome.unfinished[name] = Failure(
            "error", f"{_label(name)}: not started, {_label(current)} did not finish"
        )
    return []


def _receive(message, outcome, known, memory_bytes, on_failure, say):
    kind, name = message[0], message[1]
    if kind == "done":
        outcome.values[name], outcome.seconds[name] = message[2], message[3]
        if message[3] > 2:
            say(f"{_label(name)}: {message[3]:.1f} s")
    elif kind == "skipped":
        earlier = known[name]
        outcome.unfinished[name] = Failure(earlier.cause, message[2], earlier.given)
    elif kind == "memory":
        _fail(name, Failure("memory", f"{_label(name)}: ran out of memory{_bound_text(memory_bytes)}",
                            memory_bytes or 0), outcome, on_failure)
    elif message[3]:  # an error in a required stage
        raise StageError(message[2])
    else:
        outcome.unfinished[name] = Failure("error", f"{_label(name)}: {message[2]}")


def _fail(name, failure, outcome, on_failure):
    outcome.unfinished[name] = failure
    if on_failure is not None:
        on_failure(name, failure)


def _run_inline(pending, outcome, required):
    for name, fn in pending:
        start = time.monotonic()
        try:
            outcome.values[name] = fn()
        except SymgeoError as exc:
            if name in required:
                raise
            outcome.unfinished[name] = Failure("error", f"{_label(name)}: {exc}")
        outcome.seconds[name] = time.monotonic() - start


def _bound_text(memory_bytes):
    return f", bound {memory_bytes / 2 ** 30:.1f} GiB" if memory_bytes else ""


def _label(name: str) -> str:
    return name.replace("_", " ")
