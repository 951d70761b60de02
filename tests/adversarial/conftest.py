"""Shared helpers of the adversarial suite: a wall-clock guard and an in-process CLI runner."""
import contextlib
import signal

import pytest


@contextlib.contextmanager
def _within(seconds: float):
    """Fail the test (instead of hanging CI) when the block runs longer than `seconds`."""
    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a hang")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def within():
    """with within(s): ... fails the test when the block runs longer than s seconds."""
    return _within


@pytest.fixture
def cli(capsys):
    """cli(*args) -> (exit status, stdout, stderr) of `symgeo args` run in this process."""
    from symgeo.cli import main

    def run(*args, seconds: float = 120):
        with _within(seconds):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse refuses an option this way (status 2)
                code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err
    return run
