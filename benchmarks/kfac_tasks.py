"""K-FAC on real architectures, side by side in one run: symgeo's KFACPreconditioner (+ SGD with momentum)
against SGD+momentum, AdamW and asdl's K-FAC (KfacGradientMaker + SGD with momentum, where asdl is
installed: pip install asdfghjkl; kfac-pytorch is not in this machine's package index), each with its best
setting from a small grid on seed 0 (the learning rate; for symgeo's K-FAC also the factor/inverse
intervals, 10/50 or 20/100, and the inverse, eigen or cholesky; on the Poisson MLP both K-FACs' damping λ,
0.1 or 0.01, their steps being bounded by the KL clip there), then 5 seeds (--quick: 1) with medians and
95% bootstrap confidence intervals (scipy.stats.bootstrap).

Tasks (no download; one torch thread on CPU):
  cnn      a CNN with BatchNorm (conv 3×3 ×2, BN, ReLU, pool, linear) on scikit-learn's digits as 8×8 images;
           target: held-out accuracy ≥ 0.97
  charlm   a 2-layer transformer character model (causal attention from nn.Linear projections, LayerNorm,
           token and position embeddings) on the text of scikit-learn's dataset descriptions (90/10 split);
           target: held-out loss ≤ 2.0 nats per character
  poisson  an MLP regressing counts with symgeo's exact Poisson head (log link, K-FAC's GGN from the
           generated Poisson Fisher) against the same network with a Gaussian/MSE surrogate head;
           target: held-out Poisson deviance within 5% of the true rates'

The held-out metric is evaluated every 5 steps outside the timed region; time to target is the training
time until the first evaluation that meets it. Per-step cost is amortised over the whole run. The runs go
seed by seed, every method's run of a seed in turn, so that the machine's slow spells fall on all alike.

    python benchmarks/kfac_tasks.py [--quick] [--device cpu|cuda] [--tasks cnn charlm poisson]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from numeric.nets.heads import Head
from numeric.nets.kfac import KFAC
from numeric.nets.preconditioner import KFACPreconditioner

EVAL_EVERY = 5
SEEDS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class KFACSetting:
    """One grid point of symgeo's K-FAC: the rate, statistics every `factor_interval` steps, inverses every
    `inverse_interval`, the damping λ and the inverse (eigen: exact Tikhonov damping of A ⊗ G; cholesky:
    π-adjusted factored damping)."""

    lr: float
    factor_interval: int = 10
    inverse_interval: int = 50
    damping: float = 1e-2
    inverse: str = "eigen"

    def __str__(self) -> str:
        return (f"{self.lr:g} ({self.factor_interval}/{self.inverse_interval}, λ={self.damping:g}, "
                f"{self.inverse})")


INVERSE_GRID = ("eigen", "cholesky")
GRIDS = {
    "SGD+momentum": (0.03, 0.1, 0.3),
    "AdamW": (1e-3, 3e-3, 1e-2),
    # statistics every 10 or 20 steps, inverses every 50 or 100; both inverses
    "K-FAC (symgeo)": tuple(KFACSetting(lr, f, i, inverse=inverse) for lr in (0.1, 0.3, 1.0)
                            for f, i in ((10, 50), (20, 100)) for inverse in INVERSE_GRID),
}
POISSON_INTERVALS = ((5, 20), (10, 50))  # the optimizer mode on the Poisson MLP: (factor, inverse)
# the Poisson MLP's K-FAC steps are bounded by the KL clip, so the rate hardly matters there: its damping is
# in the grid too (for asdl's as well)
POISSON_DAMPINGS = (0.1, 0.01)
try:  # asdl's K-FAC (pip install asdfghjkl), the published K-FAC library that runs here
    import asdl
    GRIDS["K-FAC (asdl)"] = (0.01, 0.03, 0.1, 0.3)
except ImportError:
    asdl = None


# -- data ----------------------------------------------------------------------------------------------
def digits(device):
    from sklearn.datasets import load_digits
    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(data.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order].to(device), y[order].to(device)
    return (x[:1437], y[:1437]), (x[1437:], y[1437:])


def corpus(device, context: int):
    import sklearn
    folder = Path(sklearn.__file__).parent / "datasets" / "descr"
    text = "".join(f.read_text() for f in sorted(folder.glob("*.rst")))
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(c) for c in text], device=device)
    cut = int(0.9 * len(ids))
    return ids[:cut], ids[cut:], len(vocab)


def windows(ids, context, batch, generator, device):
    starts = torch.randint(0, len(ids) - context - 1, (batch,), generator=generator).to(device)
    offsets = torch.arange(context, device=device)
    return ids[starts[:, None] + offsets], ids[starts[:, None] + offsets + 1]


def counts(device, n=6000, d=10):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=generator)
    w = torch.randn(d, generator=generator) * 0.4
    rate = torch.exp(0.5 + x @ w + 0.3 * torch.sin(2 * x[:, 0]))
    y = torch.poisson(rate, generator=generator)
    cut = 5000
    return (x[:cut].to(device), y[:cut].to(device)), (
        x[cut:].to(device),
        y[cut:].to(device),
        rate[cut:].to(device),
    )


# -- models --------------------------------------------------------------------------------------------
def cnn(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2 * width * 16, 10))


class Attention(nn.Module):
    """Causal multi-head self-attention with nn.Linear projections (so that K-FAC sees every weight)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        split = [
            f(x).reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for f in (self.q, self.k, self.v)
        ]
        mixed = F.scaled_dot_product_attention(*split, is_causal=True)
        return self.out(mixed.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CharTransformer(nn.Module):
    def __init__(self, vocab: int, context: int, dim: int = 64, heads: int = 4, layers: int = 2):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.Sequential(*(Block(dim, heads) for _ in range(layers)))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, ids):
        x = self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))
        return self.head(self.norm(self.blocks(x)))


def mlp(d: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))


# -- tasks: model, a batch sampler, the loss, the held-out metric and its target ------------------------
class Task:
    def __init__(self, name, device, quick, size="small"):
        self.name, self.device = name, device
        self.steps = {"cnn": 400, "charlm": 1000, "poisson": 600}[name] // (2 if quick else 1)
        if name == "cnn":
            self.train_set, self.test_set = digits(device)
            self.width, self.batch, self.target = (16 if size == "small" else 128), 128, 0.97
        elif name == "charlm":
            self.context = 64 if size == "small" else 256
            self.train_ids, self.test_ids, self.vocab = corpus(device, self.context)
            self.dim = 64 if size == "small" else 384
            self.batch, self.target = 32, 2.0
        else:
            self.train_set, (xt, yt, rate) = counts(device)
            self.test_set = (xt, yt)
            self.batch = 256
            self.target = 1.05 * deviance(rate, yt)

    def model(self, seed):
        torch.manual_seed(seed)
        if self.name == "cnn":
            return cnn(self.width).to(self.device)
        if self.name == "charlm":
            return CharTransformer(self.vocab, self.context, self.dim, layers=2 if self.dim == 64 else 6).to(
                self.device)
        return mlp(self.train_set[0].shape[1]).to(self.device)

    def batches(self, seed):
        generator = torch.Generator().manual_seed(1000 + seed)
        while True:
            if self.name == "charlm":
                yield windows(self.train_ids, self.context, self.batch, generator, self.device)
            else:
                x, y = self.train_set
                index = torch.randint(0, len(x), (self.batch,), generator=generator).to(self.device)
                yield x[index], y[index]

    def loss(self, model, batch, head="exact"):
        x, y = batch
        out = model(x)
        if self.name == "poisson":
            if head == "mse":
                return 0.5 * (out[:, 0] - y).pow(2).mean()
            return POISSON.nll(out, y).mean()
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    @torch.no_grad()
    def metric(self, model, head="exact") -> float:
        """Held-out accuracy (cnn, higher is better), loss per character (charlm) or Poisson deviance."""
        model.eval()
        try:
            if self.name == "cnn":
                x, y = self.test_set
                return float((model(x).argmax(-1) == y).float().mean())
            if self.name == "charlm":
                generator = torch.Generator().manual_seed(7)
                losses = [self.loss(model, windows(self.test_ids, self.context, 64, generator, self.device))
                          for _ in range(4)]
                return float(torch.stack(losses).mean())
            x, y = self.test_set
            out = model(x)[:, 0]
            mean = out.clamp_min(1e-6) if head == "mse" else out.exp()
            return deviance(mean, y)
        finally:
            model.train()

    def reached(self, value: float) -> bool:
        return value >= self.target if self.name == "cnn" else value <= self.target


POISSON = None


def deviance(mean, y) -> float:
    """Mean Poisson deviance 2[y log(y/μ) − (y − μ)]."""
    ratio = torch.where(y > 0, y * torch.log(y / mean), torch.zeros_like(y))
    return float((2 * (ratio - (y - mean))).mean())


# -- one run --------------------------------------------------------------------------------------------
FAILED = dict(failed=True, per_step=float("nan"), reached=None, steps=None, final=float("nan"))


def label(setting) -> str:
    """A grid setting as printed: the rate, and for K-FAC its intervals, damping λ and inverse."""
    if isinstance(setting, tuple):  # asdl: (rate, damping)
        return f"{setting[0]:g} (λ={setting[1]:g})"
    return str(setting) if isinstance(setting, KFACSetting) else f"{setting:g}"


def run(task: Task, optimizer_name: str, lr, seed: int, head: str = "exact") -> dict:
    """One training run; a divergence (a non-finite loss, parameters that leave the family's domain, a
    failed Cholesky factorisation) fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # asdl's full-backward-hook and .grad warnings, every step
            return _run(task, optimizer_name, lr, seed, head)
    except (ValueError, RuntimeError):  # symgeo's DomainError is a ValueError
        return dict(FAILED)


def _run(task: Task, optimizer_name: str, setting, seed: int, head: str) -> dict:
    model = task.model(seed)
    if optimizer_name == "K-FAC (symgeo)" and not isinstance(setting, KFACSetting):
        setting = KFACSetting(setting)
    if task.name == "poisson" and optimizer_name == "K-FAC (symgeo)":
        return _run_kfac_head(task, model, setting, seed, head)
    lr = _rate(setting)
    step_loss, backward_done = task.loss, False
    if optimizer_name == "AdamW":
        optimizer, pre = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01), None
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        pre = None
        if optimizer_name == "K-FAC (asdl)":
            damping = setting[1] if isinstance(setting, tuple) else 0.1
            step_loss, backward_done = asdl_loss(task, model, damping), True
        elif optimizer_name.startswith("K-FAC"):
            reduction = "mean_over_positions" if task.name == "charlm" else "mean"
            pre = KFACPreconditioner(
                model,
                damping=setting.damping,
                factor_interval=setting.factor_interval,
                inverse_interval=setting.inverse_interval,
                inverse=setting.inverse,
                reduction=reduction,
                kl_clip=1e-3,
                lr=lambda: optimizer.param_groups[0]["lr"],
            )
    batches = task.batches(seed)
    elapsed, reached_at, reached_step, history = 0.0, None, None, []
    for step in range(1, task.steps + 1):
        batch = next(batches)
        _sync(task.device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = step_loss(model, batch, head)
        if not backward_done:
            loss.backward()
        if pre is not None:
            pre.step()
        optimizer.step()
        _sync(task.device)
        elapsed += time.perf_counter() - start
        if not math.isfinite(loss.item()):
            return dict(FAILED)
        if step % EVAL_EVERY == 0:
            value = task.metric(model, head)
            history.append(value)
            if reached_at is None and task.reached(value):
                reached_at, reached_step = elapsed, step
    if pre is not None:
        pre.close()
    return dict(failed=False, per_step=elapsed / task.steps, reached=reached_at, steps=reached_step,
                final=history[-1] if history else float("nan"))


def asdl_loss(task: Task, model, damping: float):
    """asdl's KfacGradientMaker as a loss-and-backward function: its Monte Carlo Fisher for the
    cross-entropy tasks; for the Poisson likelihood, which asdl cannot express (its losses are cross-entropy
    and MSE), its empirical Fisher of the same Poisson loss. Same factor/inverse intervals as symgeo's;
    damping 0.1 (1e-2 and 1e-3 fail asdl's float32 Cholesky on the CNN; on the Poisson MLP 0.1 and 0.01
    are in its grid). asdl's K-FAC for nn.Embedding
    fails here ("kron not calculated"), so the embeddings take plain SGD steps."""
    config = asdl.PreconditioningConfig(data_size=task.batch, damping=damping, preconditioner_upd_interval=50,
                                        curvature_upd_interval=10, ignore_modules=[nn.Embedding])
    maker = asdl.KfacGradientMaker(model, config, fisher_type="fisher_emp" if task.name == "poisson"
                                   else "fisher_mc", loss_type="cross_entropy")

    def poisson_nll(out, y, reduction="mean"):  # asdl asks for per-example or summed losses
        nll = POISSON.nll(out, y)
        return {"mean": nll.mean, "sum": nll.sum}.get(reduction, lambda: nll)()

    def step_loss(model, batch, head):
        x, y = batch
        out = maker.setup_model_call(model, x)
        if task.name == "poisson":
            maker.setup_loss_call(poisson_nll, out, y)
        else:
            logits = out.reshape(-1, out.shape[-1]) if task.name == "charlm" else out
            maker.setup_logits_repr(logits)
            maker.setup_loss_call(F.cross_entropy, logits, y.reshape(-1))
        return maker.forward_and_backward()[1]

    return step_loss


def _run_kfac_head(task: Task, model, setting, seed: int, head: str) -> dict:
    """K-FAC (optimizer mode) with the exact GGN of the output family: symgeo's Poisson (log link) or the
    unit-variance normal of the MSE surrogate."""
    optimizer = KFAC(model, lr=setting.lr, momentum=0.0, damping=setting.damping,
                     factor_interval=setting.factor_interval, inverse_interval=setting.inverse_interval,
                     inverse=setting.inverse, kl_clip=1e-3, fisher="ggn",
                     loss=POISSON if head == "exact" else "mse")
    batches = task.batches(seed)
    elapsed, reached_at, reached_step, value = 0.0, None, None, float("nan")
    for step in range(1, task.steps + 1):
        x, y = next(batches)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = optimizer.backward(model(x), y if head == "exact" else y[:, None])
        optimizer.step()
        _sync(task.device)
        elapsed += time.perf_counter() - start
        if not math.isfinite(loss.item()):
            optimizer.close()
            return dict(FAILED)
        if step % EVAL_EVERY == 0:
            value = task.metric(model, head)
            if reached_at is None and task.reached(value):
                reached_at, reached_step = elapsed, step
    optimizer.close()
    return dict(
        failed=False, per_step=elapsed / task.steps, reached=reached_at, steps=reached_step, final=value
    )


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def grid(task, name) -> tuple:
    if task.name == "poisson" and name == "K-FAC (symgeo)":
        return tuple(KFACSetting(lr, f, i, d, inverse) for lr in (0.1, 0.3, 1.0) for f, i in POISSON_INTERVALS
                     for d in POISSON_DAMPINGS for inverse in INVERSE_GRID)
    if task.name == "poisson" and name == "K-FAC (asdl)":
        return tuple((lr, d) for lr in GRIDS[name] for d in POISSON_DAMPINGS)
    return GRIDS[name]


def _rate(setting) -> float:
    if isinstance(setting, KFACSetting):
        return setting.lr
    return setting[0] if isinstance(setting, tuple) else setting


def best_lr(task, name, head="exact"):
    """The grid's setting with the shortest time to target on seed 0, else the best final metric."""
    results = {lr: run(task, name, lr, 0, head) for lr in grid(task, name)}
    done = {lr: r for lr, r in results.items() if not r["failed"] and r["reached"] is not None}
    if done:
        return min(done, key=lambda lr: done[lr]["reached"])
    alive = {lr: r for lr, r in results.items() if not r["failed"]}
    sign = -1 if task.name == "cnn" else 1
    return min(alive, key=lambda lr: sign * alive[lr]["final"]) if alive else grid(task, name)[0]


def summary(values) -> str:
    """median [95% bootstrap CI] of the finite values, or — (with how many of them there are)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "—"
    median = statistics.median(finite)
    if len(finite) < 3 or len(set(finite)) == 1:
        return f"{median:.3g}" + (f" ({len(finite)}/{len(values)})" if len(finite) < len(values) else "")
    from scipy.stats import bootstrap
    ci = bootstrap((np.array(finite),), np.median, confidence_level=0.95, n_resamples=2000,
                   method="percentile", random_state=0).confidence_interval
    suffix = f" ({len(finite)}/{len(values)})" if len(finite) < len(values) else ""
    return f"{median:.3g} [{ci.low:.3g}, {ci.high:.3g}]{suffix}"


def table(task: Task, seeds) -> list:
    rows = []
    names = list(GRIDS)
    chosen = {}
    for name in names:
        chosen[name] = best_lr(task, name)
        print(f"  {task.name}: {name}: {label(chosen[name])}", file=sys.stderr, flush=True)
    # seeds outermost: a slow spell of the machine falls on every method alike, not on one method's runs
    runs = {name: [] for name in names}
    for seed in seeds:
        print(f"  {task.name}: seed {seed} ...", file=sys.stderr, flush=True)
        for name in names:
            runs[name].append(run(task, name, chosen[name], seed))
    results = {name: (chosen[name], runs[name]) for name in names}
    sgd_step = _step_cost(results["SGD+momentum"][1])
    for name in names:
        lr, runs = results[name]
        rows.append((task.name, name, label(lr), summary([r["reached"] for r in runs]),
                     summary([r["steps"] for r in runs]),
                     f"{_step_cost(runs) * 1e3:.2f}",
                     f"{_step_cost(runs) / sgd_step:.2f}×",
                     summary([r["final"] for r in runs])))
    return rows


def _step_cost(runs) -> float:
    """Median time per step over the runs that did not diverge."""
    costs = [r["per_step"] for r in runs if not r["failed"]]
    return statistics.median(costs) if costs else float("nan")


def head_rows(task: Task, seeds) -> list:
    """The exact Poisson head against a Gaussian/MSE surrogate, both with K-FAC (each its best rate)."""
    rows = []
    for head in ("exact", "mse"):
        lr = best_lr(task, "K-FAC (symgeo)", head)
        runs = [run(task, "K-FAC (symgeo)", lr, s, head) for s in seeds]
        rows.append(
            (
                head,
                label(lr),
                summary([r["steps"] for r in runs]),
                summary([r["reached"] for r in runs]),
                summary([r["final"] for r in runs]),
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 seed, half the steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", choices=("small", "large"), default="small")
    parser.add_argument("--tasks", nargs="+", default=["cnn", "charlm", "poisson"])
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    global POISSON
    POISSON = Head("poisson", link=torch.exp)
    seeds = SEEDS[:1] if args.quick else SEEDS
    header = (
        "task",
        "optimizer",
        "lr",
        "time to target s",
        "steps to target",
        "ms/step",
        "vs SGD",
        "final metric",
    )
    rows = []
    for name in args.tasks:
        task = Task(name, args.device, args.quick, args.size)
        rows += table(task, seeds)
        if name == "poisson":
            poisson_rows = head_rows(task, seeds)
    print(f"\nK-FAC on real architectures ({args.device}, {len(seeds)} seed(s); medians [95% bootstrap CI])")
    _print(header, rows)
    if "poisson" in args.tasks:
        print(
            "\nPoisson counts: exact Poisson head vs Gaussian/MSE surrogate head (both K-FAC; held-out "
            "deviance target within 5% of the true rates')"
        )
        _print(("head", "lr", "steps to target", "time to target s", "final deviance"), poisson_rows)


def _print(header, rows):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
