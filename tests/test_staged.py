"""One budget per derivation: stages that finish are kept, the one that does not is named, a dead
child costs only its stage, failures are remembered with their bound."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from symgeo.errors import SymgeoError
from symgeo.staged import Failure, StageError, run_stages

ROOT = Path(__file__).resolve().parents[1]


def _sleep(seconds, value):
    def fn():
        time.sleep(seconds)
        return value
    return fn


def _hog():
    blocks = []
    while True:  # until the address-space bound stops it
        blocks.append(bytearray(2 ** 26))


def _die():
    os._exit(9)


def _user_error():
    raise SymgeoError("cannot integrate this")


def test_a_slow_stage_is_named_and_later_stages_still_run():
    start = time.monotonic()
    outcome = run_stages([("fisher", lambda: 1), ("skewness", _sleep(60, 2)), ("curvature", lambda: 3)],
                         budget=4, required=("fisher",))
    assert time.monotonic() - start < 10
    assert outcome.values == {"fisher": 1, "curvature": 3}
    assert list(outcome.unfinished) == ["skewness"] and outcome.unfinished["skewness"].cause == "time"
    assert "skewness" in outcome.unfinished["skewness"].reason and not outcome.complete


def test_budget_spent_names_stages_not_started():
    outcome = run_stages([("fisher", _sleep(60, 1)), ("christoffel", lambda: 2)], budget=1.5,
                         required=("fisher",))
    assert outcome.values == {}
    assert outcome.unfinished["fisher"].cause == "time"
    assert "not started" in outcome.unfinished["christoffel"].reason


def test_memory_bound_and_a_dead_child_cost_only_their_stage():
    outcome = run_stages([("fisher", lambda: 1), ("skewness", _hog), ("jeffreys", _die), ("curvature", lambda: 4)],
                         budget=60, memory_bytes=2 * 2 ** 30, required=("fisher",))
    assert outcome.values == {"fisher": 1, "curvature": 4}
    assert outcome.unfinished["skewness"].cause == "memory" and "memory" in outcome.unfinished["skewness"].reason
    assert outcome.unfinished["jeffreys"].cause == "memory" and "died" in outcome.unfinished["jeffreys"].reason


def _bounded_inside():
    from symgeo.timebound import call_with_timeout
    return call_with_timeout(sum, ([1, 2, 3],), 10)


def test_a_stage_may_fork_its_own_time_bounded_work():
    """SymPy integrals run under call_with_timeout, which forks: the stage's process must allow it."""
    outcome = run_stages([("fisher", _bounded_inside)], budget=30, required=("fisher",))
    assert outcome.values == {"fisher": 6}


def test_a_required_stage_that_dies_ends_the_run():
    outcome = run_stages([("fisher", _die), ("christoffel", lambda: 2)], budget=30, required=("fisher",))
    assert outcome.values == {} and "fisher did not finish" in outcome.unfinished["christoffel"].reason


def test_error_in_a_required_stage_is_raised_elsewhere_kept():
    with pytest.raises(StageError, match="cannot integrate"):
        run_stages([("fisher", _user_error), ("curvature", lambda: 1)], budget=30, required=("fisher",))
    outcome = run_stages([("fisher", lambda: 1), ("skewness", _user_error), ("curvature", lambda: 2)],
                         budget=30, required=("fisher",))
    assert outcome.values == {"fisher": 1, "curvature": 2}
    assert outcome.unfinished["skewness"].cause == "error" and "cannot integrate" in outcome.unfinished["skewness"].reason


def test_remembered_failure_is_skipped_unless_more_time_is_given():
    recorded = {}
    stages = [("fisher", lambda: 1), ("skewness", _sleep(60, 2))]
    run_stages(stages, budget=2, required=("fisher",), on_failure=recorded.__setitem__)
    assert recorded["skewness"].cause == "time" and 0 < recorded["skewness"].given <= 2
    start = time.monotonic()
    again = run_stages(stages, budget=2, required=("fisher",), known=recorded)
    assert time.monotonic() - start < 1.5 and "remembered" in again.unfinished["skewness"].reason
    retried = run_stages([("fisher", lambda: 1), ("skewness", lambda: 2)], budget=30, known=recorded)
    assert retried.values == {"fisher": 1, "skewness": 2}


def test_memory_failure_is_skipped_until_the_bound_is_raised():
    known = {"skewness": Failure("memory", "skewness: ran out of memory", 2 ** 30)}
    outcome = run_stages([("skewness", lambda: 2)], budget=30, memory_bytes=2 ** 30, known=known)
    assert "remembered" in outcome.unfinished["skewness"].reason
    outcome = run_stages([("skewness", lambda: 2)], budget=30, memory_bytes=2 ** 31, known=known)
    assert outcome.values == {"skewness": 2}


def _derive(*args, cache):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYMGEO_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "symgeo", "derive", *args], capture_output=True, text=True, check=False,
                          timeout=120, env=env, cwd=ROOT)


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_derive_prints_what_finished_exits_3_and_remembers(tmp_path):
    spec = "derivations/families/student_t_nu.toml"
    out = _derive(spec, "--format", "json", "--budget", "10", cache=tmp_path)
    assert out.returncode == 3, out.stderr
    data = json.loads(out.stdout)
    assert data["unfinished"] and "partial result" in out.stderr
    for name in data["unfinished"]:
        assert data.get(name, None) is None
    finished = {k for k in ("fisher", "christoffel", "scalar_curvature") if data.get(k) is not None}
    assert finished.isdisjoint(data["unfinished"])
    # the second run finds the Fisher metric cached, so the slow stage gets more time and is retried;
    # the third has no more time than the second: the failure is remembered, not paid again
    _derive(spec, "--format", "json", "--budget", "10", cache=tmp_path)
    start = time.monotonic()
    third = _derive(spec, "--format", "json", "--budget", "10", cache=tmp_path)
    assert third.returncode == 3 and time.monotonic() - start < 5
    assert "remembered" in third.stderr


@pytest.mark.parametrize("option,value", [("--budget", "0"), ("--budget", "nan"), ("--memory", "-1")])
def test_budget_and_memory_must_be_positive(option, value, tmp_path):
    out = _derive("normal", option, value, cache=tmp_path)
    assert out.returncode == 2 and option in out.stderr
