"""`symgeo figures`: every registered figure renders a non-empty PNG, deterministically."""
import hashlib
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")
from numeric.figures import FIGURES, make_figures  # noqa: E402

FAST = ["seed_distance", "bernoulli_fisher", "em_projections"]


def test_fast_figures_render_and_are_deterministic(tmp_path):
    first = make_figures(tmp_path / "a", FAST, progress=False)
    second = make_figures(tmp_path / "b", FAST, progress=False)
    for a, b in zip(first, second):
        assert a.stat().st_size > 10_000
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


@pytest.mark.slow
def test_every_figure_renders(tmp_path):
    written = make_figures(tmp_path, progress=False)
    assert [p.stem for p in written] == list(FIGURES)
    assert all(p.stat().st_size > 10_000 for p in written)


def test_cli_lists_and_refuses_unknown_names():
    run = subprocess.run([sys.executable, "-m", "symgeo", "figures", "--list"], capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0 and "normal_geodesics" in run.stdout
    run = subprocess.run([sys.executable, "-m", "symgeo", "figures", "--only", "nope"], capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 2 and "unknown figure" in run.stderr
