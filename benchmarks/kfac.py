"""K-FAC against first-order optimizers and another K-FAC, side by side in one run, on scikit-learn's digits.

1. Training to a target loss on the full training set (1797 images, batch 256, one torch thread):
   classifier 64-128-128-10 (ReLU, cross-entropy, target 0.01) and autoencoder 64-32-8-32-64 (tanh,
   0.5·SSE per image, target 0.6). SGD+momentum, Adam, symgeo's K-FAC and, when installed, asdl's
   KfacGradientMaker (`pip install asdfghjkl`, benchmark only). Each optimizer's setting is the best of a
   small grid on seed 0 (K-FAC: damping, KL clip, momentum, eigen or Cholesky inverses; factors and
   inverses every 10 steps);
   that setting then runs on 5 seeds (--quick: 1) and the medians are reported: time and steps to target,
   time per step relative to SGD (amortised over the run). Settings that diverge or fail are counted.
2. The seed's claim "K-FAC computes natural gradients far faster than inverting the Fisher": time per
   step of K-FAC (inverses every step, and amortised every 10) vs the naive exact Fisher block solved
   directly (`numeric.nets.kfac.exact_block_directions`), for an MLP 64-w-10 with growing width w.

The loss on the full training set is evaluated every 10 steps, outside the timed region.

    python benchmarks/kfac.py [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from numeric.nets.kfac import KFAC, exact_block_directions, per_example_nll

try:
    if not torch.cuda.is_available():  # asdl 0.1a5 calls torch.cuda.nvtx.range even on CPU builds
        class _NoRange(contextlib.ContextDecorator):
            def __init__(self, *args, **kwargs):
                pass

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False
        torch.cuda.nvtx.range = _NoRange
    import asdl
    HAVE_ASDL = True
except ImportError:
    HAVE_ASDL = False

EVAL_EVERY = 10
TASKS = {
    "classifier": dict(sizes=(64, 128, 128, 10), activation=nn.ReLU, loss="cross_entropy", target=0.01),
    "autoencoder": dict(sizes=(64, 32, 8, 32, 64), activation=nn.Tanh, loss="mse", target=0.6),
}
GRIDS = {
    "SGD+momentum": [dict(lr=lr) for lr in (0.03, 0.1, 0.3)],
    "Adam": [dict(lr=lr) for lr in (1e-3, 3e-3, 1e-2)],
    "K-FAC (symgeo)": [dict(lr=0.3, damping=d, kl_clip=c, momentum=m, inverse=i) for i in ("cholesky", "eigen")
                       for d in (1e-2, 1e-1) for c in (1e-3, 1e-2) for m in (0.0, 0.9)],
    "K-FAC (asdl)": [dict(lr=lr, damping=d) for lr in (0.1, 0.3) for d in (1e-3, 1e-2)],
}


def digits():
    from sklearn.datasets import load_digits
    data = load_digits()
    return torch.tensor(data.data / 16.0, dtype=torch.float32), torch.tensor(data.target)


def mlp(sizes, activation, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class Trainer:
    """One optimizer's step on a batch: forward, loss, gradients (and curvature), update."""

    def __init__(self, name: str, model: nn.Module, loss: str, config: dict, batch: int):
        self.name, self.model, self.loss = name, model, loss
        if name == "SGD+momentum":
            self.opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
        elif name == "Adam":
            self.opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
        elif name == "K-FAC (symgeo)":
            self.opt = KFAC(model, lr=config["lr"], damping=config["damping"], loss=loss, seed=0,
                            kl_clip=config["kl_clip"], momentum=config["momentum"], inverse=config["inverse"],
                            factor_interval=10,
                            inverse_interval=10)
        else:
            cfg = asdl.PreconditioningConfig(data_size=batch, damping=config["damping"],
                                             preconditioner_upd_interval=10, curvature_upd_interval=1,
                                             ema_decay=config.get("ema_decay", -1))
            self.maker = asdl.KfacGradientMaker(model, cfg, fisher_type="fisher_mc",
                                                loss_type="cross_entropy" if loss == "cross_entropy" else "mse")
            self.opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)

    def step(self, x, y) -> None:
        self.opt.zero_grad()
        if self.name == "K-FAC (symgeo)":
            self.opt.backward(self.model(x), y)
        elif self.name == "K-FAC (asdl)":
            dummy = self.maker.setup_model_call(self.model, x)
            if self.loss == "cross_entropy":
                self.maker.setup_loss_call(F.cross_entropy, dummy, y)
            else:
                self.maker.setup_loss_call(_half_sse, dummy, y)
            self.maker.forward_and_backward()
        else:
            per_example_nll(self.loss, self.model(x), y).mean().backward()
        self.opt.step()


def _half_sse(outputs, targets, reduction="mean"):
    """0.5·‖out − t‖² per example; asdl wants a loss with a `reduction` argument."""
    per_example = 0.5 * (outputs - targets).pow(2).sum(dim=1)
    return {"mean": per_example.mean(), "sum": per_example.sum()}.get(reduction, per_example)


FAILURES: dict = {}


def train(task: str, name: str, config: dict, seed: int, max_steps: int, batch: int = 256):
    """(seconds to target or None, steps to target or None, seconds per step); failures are tallied."""
    spec = TASKS[task]
    x, labels = digits()
    y = labels if spec["loss"] == "cross_entropy" else x
    model = mlp(spec["sizes"], spec["activation"], seed)
    try:
        trainer = Trainer(name, model, spec["loss"], config, batch)
    except ValueError:
        return None, None, float("nan")
    generator = torch.Generator().manual_seed(seed)
    elapsed, steps = 0.0, 0
    while steps < max_steps:
        start = time.perf_counter()
        for _ in range(EVAL_EVERY):
            index = torch.randint(0, len(x), (batch,), generator=generator)
            try:
                trainer.step(x[index], y[index])
            except (RuntimeError, ValueError) as exc:  # diverging: NaN probabilities, failed factorisation
                FAILURES.setdefault((task, name), set()).add(type(exc).__name__)
                return None, None, elapsed / max(steps, 1)
            steps += 1
        elapsed += time.perf_counter() - start
        with torch.no_grad():
            loss = float(per_example_nll(spec["loss"], model(x), y).mean())
        if math.isnan(loss):
            FAILURES.setdefault((task, name), set()).add("NaN loss")
            return None, None, elapsed / steps
        if loss <= spec["target"]:
            return elapsed, steps, elapsed / steps
    return None, None, elapsed / steps


def best_config(task, name, max_steps):
    results = []
    for config in GRIDS[name]:
        seconds, steps, _ = train(task, name, config, 0, max_steps)
        if seconds is not None:
            results.append((seconds, config))
    return min(results, key=lambda r: r[0])[1] if results else None


def training_rows(quick: bool):
    seeds, max_steps = (1, 1500) if quick else (5, 4000)
    if quick:  # one setting each, the full grids' usual winners
        for name in GRIDS:
            GRIDS[name] = GRIDS[name][2:3] if name.startswith("K-FAC") else GRIDS[name][-1:]
    names = [n for n in GRIDS if n != "K-FAC (asdl)" or HAVE_ASDL]
    for task in TASKS:
        rows = {}
        for name in names:
            print(f"  {task}: {name} ...", file=sys.stderr, flush=True)
            config = best_config(task, name, max_steps)
            runs = [train(task, name, config, seed, max_steps) for seed in range(seeds)] if config else []
            reached = [r for r in runs if r[0] is not None]
            rows[name] = dict(config=config, reached=len(reached), runs=len(runs),
                              seconds=statistics.median([r[0] for r in reached]) if reached else None,
                              steps=statistics.median([r[1] for r in reached]) if reached else None,
                              per_step=statistics.median([r[2] for r in runs]) if runs else None)
        yield task, rows


def width_rows(widths):
    x, y = digits()
    x, y = x[:256], y[:256]
    for width in widths:
        model = mlp((64, width, 10), nn.ReLU, 0)
        naive = _median_time(lambda: exact_block_directions(model, x, y, "cross_entropy", 1e-3), 3)
        every = _kfac_step_time(model, x, y, inverse_interval=1)
        amortised = _kfac_step_time(model, x, y, inverse_interval=10)
        params = sum(p.numel() for p in model.parameters())
        yield width, params, naive, every, amortised


def _kfac_step_time(model, x, y, inverse_interval):
    opt = KFAC(model, lr=1e-3, damping=1e-3, inverse_interval=inverse_interval, seed=0)

    def step():
        opt.zero_grad()
        opt.backward(model(x), y)
        opt.step()
    step()
    return _median_time(lambda: [step() for _ in range(10)], 3) / 10


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _setting(config: dict) -> str:
    return ",".join(f"{k}={v}" if isinstance(v, str) else f"{k}={v:g}" for k, v in config.items())


def _cell(value, unit="s"):
    return "—" if value is None else f"{value:.3f} {unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed, 1500-step budget, widths up to 64")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not HAVE_ASDL:
        print("asdl is not installed (pip install asdfghjkl): its rows are left out")
    print("\nTime to target on digits (batch 256, one thread; medians over seeds; grid best on seed 0)", flush=True)
    header = ("task", "optimizer", "setting", "reached", "time to target", "steps", "per step", "step / SGD")
    print(f"{header[0]:>12} {header[1]:>15} {header[2]:>62} {header[3]:>8} {header[4]:>15} {header[5]:>7} "
          f"{header[6]:>10} {header[7]:>10}")
    for task, rows in training_rows(args.quick):
        sgd = rows["SGD+momentum"]["per_step"]
        for name, r in rows.items():
            setting = "none reached" if r["config"] is None else _setting(r["config"])
            ratio = "—" if r["per_step"] is None or not sgd else f"{r['per_step'] / sgd:.2f}×"
            steps = "—" if r["steps"] is None else f"{r['steps']:.0f}"
            per_step = "—" if r["per_step"] is None else f"{r['per_step'] * 1e3:.2f} ms"
            failed = FAILURES.get((task, name))
            print(f"{task:>12} {name:>15} {setting:>62} {r['reached']:>3}/{r['runs']:<4} {_cell(r['seconds']):>15} "
                  f"{steps:>7} {per_step:>10} {ratio:>10}" + (f"  (failures: {', '.join(sorted(failed))})"
                                                             if failed else ""), flush=True)

    widths = (16, 32, 64) if args.quick else (16, 32, 64, 128)
    print("\nNaive exact Fisher blocks (dense solve) vs K-FAC, time per step, MLP 64-w-10, batch 256", flush=True)
    print(f"{'width':>6} {'weights':>8} {'naive':>12} {'K-FAC (inv. every step)':>24} {'K-FAC (every 10)':>17} "
          f"{'naive / K-FAC':>14}")
    for width, params, naive, every, amortised in width_rows(widths):
        print(f"{width:>6} {params:>8} {naive * 1e3:>9.1f} ms {every * 1e3:>21.2f} ms {amortised * 1e3:>14.2f} ms "
              f"{naive / every:>13.0f}×", flush=True)


if __name__ == "__main__":
    main()
