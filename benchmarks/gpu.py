"""Natural-gradient deep learning at a realistic size on a GPU, one table, under 10 minutes:

1. K-FAC (symgeo's KFACPreconditioner + SGD) vs AdamW on the CNN with BatchNorm (width 128) and the
   character transformer (6 layers, width 384, context 256) of benchmarks/kfac_tasks.py: time per step
   and the held-out metric after a fixed number of steps, each with the rate that task's small grid
   prefers (seed 0).
2. The policy Fisher-vector product at about 1M weights and a batch of 10⁵ states, by both routes:
   the exact pull-back Jᵀ F J v of symgeo's generated Fisher, and the Hessian of the KL by double
   backprop (median of 5 after a warm-up).

    python benchmarks/gpu.py [--device cuda] [--smoke]

`--smoke` runs everything at a tiny size on the CPU in seconds (the test suite does, so the script
cannot rot).
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from numeric.nets.rl import DiagonalNormalActions, Policy, fisher_vector_product


def _tasks():
    spec = importlib.util.spec_from_file_location("kfac_tasks", Path(__file__).with_name("kfac_tasks.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def training_rows(device: str, smoke: bool) -> list:
    kt = _tasks()
    kt.POISSON = None
    rows = []
    for name, lrs in (("cnn", {"AdamW": 3e-3, "K-FAC (symgeo)": 0.3}),
                      ("charlm", {"AdamW": 3e-3, "K-FAC (symgeo)": 0.3})):
        task = kt.Task(name, device, quick=True, size="small" if smoke else "large")
        task.steps = 20 if smoke else {"cnn": 200, "charlm": 300}[name]
        if smoke and name == "charlm":
            task.dim = 32
        for optimizer, lr in lrs.items():
            result = kt.run(task, optimizer, lr, seed=0)
            rows.append((name, optimizer, f"{lr:g}", f"{result['per_step'] * 1e3:.2f} ms/step",
                         f"{result['final']:.4g}", "failed" if result["failed"] else ""))
    return rows


def fvp_rows(device: str, smoke: bool) -> list:
    hidden, batch = ((32, 32), 1000) if smoke else ((1024, 1024), 100_000)
    torch.manual_seed(0)
    policy = Policy(64, DiagonalNormalActions(8), hidden=hidden).to(device)
    obs = torch.randn(batch, 64, device=device)
    weights = sum(p.numel() for p in policy.parameters())
    v = torch.randn(weights, device=device)
    rows = []
    for route in ("exact", "double_backprop"):
        product = fisher_vector_product(policy, obs, damping=0.1, route=route)
        rows.append((f"FVP {route}", f"{weights:,} weights", f"batch {batch:,}",
                     f"{_median_seconds(lambda p=product: p(v), device) * 1e3:.2f} ms", "", ""))
    return rows


def _median_seconds(fn, device, repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds, any device")
    args = parser.parse_args(argv)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    rows = training_rows(args.device, args.smoke) + fvp_rows(args.device, args.smoke)
    print(f"device: {name}; torch {torch.__version__}{' (smoke size)' if args.smoke else ''}")
    header = ("task", "method", "setting", "cost", "held-out metric", "")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main()
