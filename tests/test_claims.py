"""Each claim script of the seed article runs and prints the claim, the computed answer and a verdict."""
import subprocess
import sys
from pathlib import Path

import pytest

CLAIMS = Path(__file__).resolve().parent.parent / "derivations" / "claims"
SCRIPTS = sorted(p.name for p in CLAIMS.glob("[a-z]*.py"))


def test_there_is_a_script_per_claim():
    assert len(SCRIPTS) == 8


@pytest.mark.parametrize("script", SCRIPTS)
def test_claim_script_runs(script):
    run = subprocess.run([sys.executable, script], cwd=CLAIMS, capture_output=True, text=True, timeout=600,
                         check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines[-3:]] == ["claim", "computed", "verdict"]


def test_every_claim_is_owned_by_the_installed_package():
    from numeric.claims import CLAIMS
    assert sorted(CLAIMS) == sorted(s.removesuffix(".py") for s in SCRIPTS)
