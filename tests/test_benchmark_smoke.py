"""The GPU benchmark script runs end to end at a tiny size on the CPU (so that it cannot rot)."""
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_gpu_benchmark_smoke_run_prints_its_table():
    run = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--device", "cpu"], capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[0].startswith("device: CPU")
    for label in ("cnn", "charlm", "FVP exact", "FVP double_backprop"):
        assert any(line.startswith(label) for line in lines), label
    assert "failed" not in run.stdout
