"""The project's figures: each a seeded function that draws from generated code and saves a PNG.

`symgeo figures [--out DIR] [--only NAME]` runs them (default folder `figures/`), printing progress.
Matplotlib is imported here only; figures are drawn on their own Agg canvases (pyplot is not used).
"""
from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import numpy as np

from symgeo.errors import InvalidArgumentError

from .compiled import compile as compile_family

FIGURES: dict = {}


def figure(name: str, description: str):
    def register(fn):
        FIGURES[name] = (fn, description)
        return fn
    return register


def subplots(*grid, figsize, dpi):
    """pyplot's `subplots` without pyplot: a Figure drawn on its own Agg canvas, so that making a figure
    sets no global backend and registers nothing with pyplot (a notebook's backend stays as it was)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*grid)


def _torch_local(draw):
    """Run a torch figure single-threaded (reproducible) with torch's global state restored afterwards."""
    @functools.wraps(draw)
    def run(out: Path, seed: int = 0) -> Path:
        from .torch_state import local_torch_state
        with local_torch_state(seed=seed, threads=1):
            return draw(out, seed)
    return run


# -- the normal manifold ---------------------------------------------------------------------------------
@figure("normal_geodesics", "geodesics in the normal (μ, σ) half-plane and Fisher unit ellipses (Tissot)")
def normal_geodesics(out: Path, seed: int = 0) -> Path:
    from .geodesic import Geodesics
    normal = compile_family("normal")
    flow = Geodesics(normal)
    fig, ax = subplots(figsize=(7, 4.5), dpi=130)
    for mu in np.linspace(-2.5, 2.5, 6):
        for sigma in (0.6, 1.2, 2.0):
            _ellipse(ax, normal.inverse_fisher(mu, sigma), mu, sigma, scale=0.12)
    pairs = [
        ((-2.0, 0.5), (2.0, 0.5)),
        ((-2.0, 1.0), (2.0, 1.0)),
        ((-1.0, 0.4), (1.5, 2.2)),
        ((0.0, 0.3), (0.0, 2.4)),
    ]
    for start, end in pairs:
        path = _geodesic_path(flow, start, end)
        ax.plot(path[:, 0], path[:, 1], lw=1.8)
        ax.plot(*zip(start, end), "k.", ms=6)
    ax.set_xlabel("μ")
    ax.set_ylabel("σ")
    ax.set_ylim(0, 2.6)
    ax.set_title("Normal family: geodesics (half-ellipses) and Fisher unit balls (×0.12)")
    return _save(fig, out / "normal_geodesics.png")


def _geodesic_path(flow, start, end, points: int = 200) -> np.ndarray:
    """The geodesic from start to end (the BVP solved by shooting), sampled at `points` times."""
    start, end = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    return flow.path(start, flow.log(start, end).velocity, np.linspace(0, 1, points))


def _chord(points, x) -> np.ndarray:
    """The straight line through a path's end points, evaluated at abscissae x."""
    (x0, y0), (x1, y1) = points[0], points[-1]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _ellipse(ax, inverse_metric, x, y, scale):
    """The Fisher unit ball {v : vᵀ g v = 1}, scaled, drawn at (x, y)."""
    values, vectors = np.linalg.eigh(np.asarray(inverse_metric))
    t = np.linspace(0, 2 * np.pi, 80)
    circle = np.stack([np.cos(t), np.sin(t)])
    pts = vectors @ (np.sqrt(values)[:, None] * circle) * scale
    ax.fill(x + pts[0], y + pts[1], color="tab:gray", alpha=0.35, lw=0)


@figure("seed_distance", "Fisher–Rao distance N(0, σ)–N(1, σ) as σ grows (the seed's example)")
def seed_distance(out: Path, seed: int = 0) -> Path:
    from .geodesic import distance
    normal = compile_family("normal")
    sigmas = np.logspace(-1, 2.2, 60)
    d = np.array([distance(normal, [0.0, s], [1.0, s]).value for s in sigmas])
    fig, ax = subplots(figsize=(6.5, 4), dpi=130)
    ax.loglog(sigmas, d, lw=2, label="d(N(0, σ), N(1, σ))  (closed form)")
    ax.loglog(sigmas, 1 / sigmas, "k--", lw=1, label="1/σ (the small-step approximation)")
    for s, label in ((1.0, "σ = 1"), (10.0, "σ² = 100"), (100.0, "σ = 100")):
        value = distance(normal, [0.0, s], [1.0, s]).value
        ax.plot(s, value, "o", ms=7)
        ax.annotate(f"{label}: {value:.4g}", (s, value), textcoords="offset points", xytext=(8, 6))
    ax.set_xlabel("σ")
    ax.set_ylabel("Fisher–Rao distance")
    ax.set_title("Moving the mean by 1 costs less information as σ grows")
    ax.legend()
    return _save(fig, out / "seed_distance.png")


@figure("bernoulli_fisher", "Bernoulli Fisher information F(p) = 1/(p(1−p)), p = 0.1 and 0.5 marked")
def bernoulli_fisher(out: Path, seed: int = 0) -> Path:
    bernoulli = compile_family("bernoulli")
    p = np.linspace(0.01, 0.99, 400)
    f = np.asarray(bernoulli.fisher(p))[:, 0, 0]
    fig, ax = subplots(figsize=(6, 4), dpi=130)
    ax.semilogy(p, f, lw=2)
    for q in (0.1, 0.5):
        value = float(np.asarray(bernoulli.fisher(q))[0, 0])
        ax.plot(q, value, "o", ms=7)
        ax.annotate(f"F({q}) = {value:.4g}", (q, value), textcoords="offset points", xytext=(8, 8))
    ax.set_xlabel("p")
    ax.set_ylabel("F(p)")
    ax.set_title("Bernoulli Fisher information: F(0.1) = 2.8 F(0.5)")
    return _save(fig, out / "bernoulli_fisher.png")


@figure("cramer_rao", "variance of the MLE from simulation vs the Cramér–Rao bound, as n grows")
def cramer_rao(out: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    ns = np.array([5, 10, 20, 50, 100, 200, 500, 1000])
    fig, axes = subplots(1, 2, figsize=(10, 4), dpi=130)
    cases = [
        ("exponential", 2.0, lambda n: rng.exponential(1 / 2.0, (4000, n)), lambda x: 1 / x.mean(axis=1)),
        ("poisson", 3.0, lambda n: rng.poisson(3.0, (4000, n)), lambda x: x.mean(axis=1)),
    ]
    for ax, (name, true, draw, mle) in zip(axes, cases):
        family = compile_family(name)
        bound = np.array([float(np.asarray(family.cramer_rao(true, n))[0, 0]) for n in ns])
        variance = np.array([np.var(mle(draw(n))) for n in ns])
        ax.loglog(ns, bound, "k-", lw=2, label="Cramér–Rao bound 1/(n F)")
        ax.loglog(ns, variance, "o", ms=6, label="variance of the MLE (4000 runs)")
        ax.set_title(f"{name} ({family.params[0]} = {true:g})")
        ax.set_xlabel("n")
        ax.legend()
    axes[0].set_ylabel("variance")
    fig.suptitle("The MLE attains the bound asymptotically (exponential: biased above it for small n)")
    return _save(fig, out / "cramer_rao.png")


@figure("alpha_geodesics", "e-, m- and Levi-Civita geodesics between two gamma distributions, in θ and η")
def alpha_geodesics(out: Path, seed: int = 0) -> Path:
    from .geodesic import Geodesics
    gamma = compile_family("gamma")
    start, end = np.array([0.7, 6.0]), np.array([9.0, 0.3])
    fig, axes = subplots(1, 2, figsize=(10, 4.2), dpi=130)
    for alpha, label in ((1, "e-geodesic (α = 1): straight in θ"), (-1, "m-geodesic (α = −1): straight in η"),
                         (0, "Levi-Civita (α = 0)")):
        path = _geodesic_path(Geodesics(gamma, alpha=alpha), start, end)
        for ax, coords in ((axes[0], gamma.natural_params), (axes[1], gamma.expectation_params)):
            c = np.asarray(coords(path[:, 0], path[:, 1]))
            ax.plot(c[:, 0], c[:, 1] - _chord(c, c[:, 0]), lw=2, label=label)
    axes[0].set_xlabel("θ₁ = k")
    axes[0].set_ylabel("θ₂ − chord   (θ₂ = −1/scale)")
    axes[1].set_xlabel("η₁ = E[log x]")
    axes[1].set_ylabel("η₂ − chord   (η₂ = E[x])")
    axes[0].set_title("natural coordinates θ, offset from the chord")
    axes[1].set_title("expectation coordinates η, offset from the chord")
    axes[0].legend(fontsize=8)
    fig.suptitle("Gamma(k, scale): from (0.7, 6) to (9, 0.3)")
    return _save(fig, out / "alpha_geodesics.png")


@figure("ngd_paths", "natural gradient vs gradient vs Adam on the normal MLE, in (μ, σ) and (μ, σ²)")
def ngd_paths(out: Path, seed: int = 0) -> Path:
    from .natural_gradient import minimize, mle_objective
    data = np.random.default_rng(seed).normal(1.0, 0.7, 500)
    fig, axes = subplots(1, 2, figsize=(10, 4.2), dpi=130)
    for ax, chart, start in ((axes[0], None, [-1.5, 2.5]), (axes[1], "variance", [-1.5, 6.25])):
        family = compile_family("normal", chart=chart)
        objective = mle_objective(family, data)
        mu, scale = np.meshgrid(
            np.linspace(-2, 2.5, 120), np.linspace(0.2, 3.0 if chart is None else 7.0, 120)
        )
        loss = np.vectorize(lambda a, b, f=objective: f.value(np.array([a, b])))(mu, scale)
        ax.contour(mu, scale, np.log(loss - loss.min() + 1e-3), levels=20, cmap="Greys", linewidths=0.6)
        for method, lr, style in (("natural", 0.1, "-"), ("gradient", 0.05, "--"), ("adam", 0.05, ":")):
            fit = minimize(objective, family, start, method=method, lr=lr, max_iter=150, tol=0)
            path = np.array(fit.path)
            ax.plot(path[:, 0], path[:, 1], style, lw=2, label=f"{method} (lr {lr})")
            if chart == "variance":
                mapped = np.stack([path[:, 0], np.sqrt(path[:, 1])], axis=1)
                axes[0].plot(mapped[:, 0], mapped[:, 1], style, color="k", lw=0.8,
                             label=f"{method}, run in (μ, σ²), drawn in (μ, σ)")
        ax.set_xlabel("μ")
        ax.set_ylabel("σ" if chart is None else "σ²")
        ax.set_title("chart (μ, σ)" if chart is None else "chart (μ, σ²)")
        ax.legend(fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle(
        "150 steps from the same distribution: only the natural-gradient path is (nearly) chart-independent"
    )
    return _save(fig, out / "ngd_paths.png")


@figure("em_projections", "EM on a gamma mixture: log-likelihood, ELBO and KL gap per iteration")
def em_projections(out: Path, seed: int = 0) -> Path:
    from .em import fit_mixture
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.gamma(2.0, 1.0, 3000), rng.gamma(12.0, 0.8, 2000)])
    start = np.array([[1.0, 3.0], [1.5, 3.0]])       # two nearly equal components: a slow start
    fit = fit_mixture("gamma", x, 2, init=start, seed=seed, max_iter=60, tol=0)
    loglik = np.array([h["log_likelihood"] for h in fit.history]) / len(x)
    elbo = np.array([np.nan if h["elbo"] is None else h["elbo"] for h in fit.history]) / len(x)
    fig, axes = subplots(1, 2, figsize=(10, 4), dpi=130)
    axes[0].plot(loglik, "o-", ms=3, label="log L(Θ_t) / N")
    axes[0].plot(elbo, "s--", ms=3, label="ELBO(q_{t−1}, Θ_t) / N (after the m-projection)")
    axes[0].set_xlabel("iteration")
    axes[0].legend(fontsize=8)
    axes[0].set_title("monotone log-likelihood")
    axes[0].ticklabel_format(useOffset=False, axis="y")
    gap = loglik - elbo
    axes[1].semilogy(np.arange(len(gap))[1:], np.maximum(gap[1:], 1e-16), "o-", ms=3)
    axes[1].set_xlabel("iteration")
    axes[1].set_title("KL gap per point before each e-projection")
    fig.suptitle("EM as alternating projections: log L = ELBO + KL")
    return _save(fig, out / "em_projections.png")


@figure("kfac_training", "K-FAC vs SGD+momentum vs Adam: training loss on digits per step")
@_torch_local
def kfac_training(out: Path, seed: int = 0) -> Path:
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    from .nets.kfac import KFAC, per_example_nll
    data = load_digits()
    x, y = torch.tensor(data.data / 16.0, dtype=torch.float32), torch.tensor(data.target)
    fig, ax = subplots(figsize=(6.5, 4.2), dpi=130)
    for name in ("SGD+momentum", "Adam", "K-FAC"):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
        )
        if name == "SGD+momentum":
            opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
        elif name == "Adam":
            opt = torch.optim.Adam(model.parameters(), lr=0.01)
        else:
            opt = KFAC(model, lr=0.3, damping=1e-2, kl_clip=1e-3, inverse="cholesky", factor_interval=10,
                       seed=seed)
        generator = torch.Generator().manual_seed(seed)
        steps, losses = [], []
        for step in range(1, 301):
            index = torch.randint(0, len(x), (256,), generator=generator)
            opt.zero_grad()
            if name == "K-FAC":
                opt.backward(model(x[index]), y[index])
            else:
                per_example_nll("cross_entropy", model(x[index]), y[index]).mean().backward()
            opt.step()
            if step % 10 == 0:
                with torch.no_grad():
                    losses.append(float(per_example_nll("cross_entropy", model(x), y).mean()))
                steps.append(step)
        ax.semilogy(steps, losses, lw=2, label=name)
    ax.axhline(0.01, color="k", lw=0.8, ls="--")
    ax.set_xlabel("steps (batch 256)")
    ax.set_ylabel("training loss (full set)")
    ax.legend()
    ax.set_title("Digits 64-128-128-10; wall-clock comparison: benchmarks/kfac.py")
    return _save(fig, out / "kfac_training.png")


@figure("trpo_cartpole", "TRPO on CartPole-v1: episode returns and KL per update (δ = 0.01)")
@_torch_local
def trpo_cartpole(out: Path, seed: int = 0) -> Path:

    from .nets.rl import TrainConfig, train
    _, log = train("CartPole-v1", 40_960, TrainConfig(), seed=seed, progress=False)
    fig, axes = subplots(1, 2, figsize=(10, 4), dpi=130)
    axes[0].plot(log.episode_end_steps, log.episode_returns, ".", ms=2, alpha=0.4, label="episode return")
    axes[0].plot([r["steps"] for r in log.rows], [r["mean_return_20"] for r in log.rows], lw=2,
                 label="mean of the last 20")
    axes[0].axhline(475, color="k", lw=0.8, ls="--")
    axes[0].set_xlabel("environment steps")
    axes[0].legend()
    axes[1].plot(
        [r["steps"] for r in log.rows], [r["kl"] for r in log.rows], "o-", ms=3, label="KL(π_old ‖ π_new)"
    )
    axes[1].axhline(0.01, color="k", lw=0.8, ls="--", label="δ")
    axes[1].set_xlabel("environment steps")
    axes[1].legend()
    fig.suptitle("TRPO with symgeo's exact Fisher of the categorical policy")
    return _save(fig, out / "trpo_cartpole.png")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    return path


def make_figures(out="figures", only=None, seed: int = 0, progress: bool = True) -> list:
    """Run every registered figure (or `only` those names) into `out`; returns the written paths."""
    names = list(FIGURES) if not only else list(only)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise InvalidArgumentError(f"unknown figure(s) {unknown}; known: {', '.join(FIGURES)}")
    out = Path(out)
    written = []
    for i, name in enumerate(names, 1):
        start = time.perf_counter()
        written.append(FIGURES[name][0](out, seed))
        if progress:
            print(
                f"[{i}/{len(names)}] {name}: {written[-1]} ({time.perf_counter() - start:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    return written


def family_plane(compiled, path: Path, n_geodesics: int = 6) -> Path:
    """A family's own figure: Fisher unit balls over its parameter plane and geodesics from a sample point
    (two parameters); the metric g(ξ) (one parameter)."""
    from .geodesic import GeodesicError, Geodesics
    fam = compiled.family
    center = np.array([float(v) for v in (fam.sample_point()[p] for p in fam.params)])
    boxes = [_range(fam.domains[p], c) for p, c in zip(fam.params, center)]
    fig, ax = subplots(figsize=(6.5, 4.5), dpi=130)
    if compiled.n == 1:
        xs = np.linspace(*boxes[0], 400)
        ax.plot(xs, np.asarray(compiled.fisher(xs)).reshape(len(xs)), lw=2)
        ax.set_xlabel(str(fam.params[0]))
        ax.set_ylabel("g")
        ax.set_title(f"{fam.name}: Fisher information")
        return _save(fig, path)
    if compiled.n != 2:
        raise InvalidArgumentError("family figures are drawn for one or two parameters")
    scale = 0.12 * min(hi - lo for lo, hi in boxes)
    for x in np.linspace(*boxes[0], 6):
        for y in np.linspace(*boxes[1], 5):
            try:
                g = np.asarray(compiled.fisher(x, y))
            except ValueError:
                continue
            longest = 1 / np.linalg.eigvalsh(g).min()      # squared longest semi-axis of the unit ball
            _ellipse(ax, np.linalg.inv(g) / longest, x, y, scale)
    flow = Geodesics(compiled)
    g0 = np.asarray(compiled.fisher(*center))
    for angle in np.linspace(0, 2 * np.pi, n_geodesics, endpoint=False):
        direction = np.array([np.cos(angle), np.sin(angle)])
        velocity = direction / np.sqrt(direction @ g0 @ direction)
        try:
            points = flow.path(center, velocity, np.linspace(0, 1.0, 120))
        except (GeodesicError, ValueError):
            continue
        ax.plot(points[:, 0], points[:, 1], lw=1.6)
    ax.plot(*center, "k.", ms=8)
    ax.set_xlim(*boxes[0])
    ax.set_ylim(*boxes[1])
    ax.set_xlabel(str(fam.params[0]))
    ax.set_ylabel(str(fam.params[1]))
    ax.set_title(f"{fam.name}: Fisher balls (shapes) and geodesics from a point")
    return _save(fig, path)


def _range(domain, center: float) -> tuple:
    lo, hi = float(domain.inf), float(domain.sup)
    if np.isfinite(lo) and np.isfinite(hi):
        return lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo)
    if np.isfinite(lo):
        return lo + (center - lo) / 4, lo + (center - lo) * 3
    if np.isfinite(hi):
        return hi - (hi - center) * 3, hi - (hi - center) / 4
    return center - 2.0, center + 2.0
