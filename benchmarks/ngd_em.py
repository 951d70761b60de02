"""Natural gradient and EM against what a user would otherwise pick, side by side in one run.

1. EM, Gaussian mixtures with full covariances, 100 000 points (--quick 20 000): time per iteration of
   symgeo's EM (one T·Θᵀ product per E-step, Rᵀ·T per M-step) and scikit-learn's GaussianMixture, from the
   same initialisation, 2-D/3 components and 10-D/5 components; the parameters of both are compared too.
2. Minimising to a loss gap of 1e-8: natural gradient (step 1) vs gradient descent and Adam, each with its
   best step size from a grid, on the gamma and beta MLEs and a variational normal fitted by KL(q ‖ p) to a
   skewed target (Gumbel), and multivariate variational normals for Bayesian logistic (d = 11) and Poisson
   (d = 5) regression posteriors (numeric/variational.py: natural steps in q's natural chart, GD and Adam in
   the Cholesky chart ADVI-style code uses, on finer grids scaled to the ELBO's curvature). Iterations and
   wall time to the gap, from three starts (--quick: one, smaller problems), within a budget of 5000
   iterations (--quick: 1000); once with fixed steps and once with backtracking.

3. The mixture estimator (benchmarks/mixture.py, also runnable alone): 10⁶-point Gaussian mixtures against
   scikit-learn, a 10⁷-point stream with its peak memory, gamma and Poisson mixtures against pomegranate
   and a direct numpy EM.

Times are medians of several runs (the machines are noisy).

    python benchmarks/ngd_em.py [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import special, stats

# benchmarks/numeric.py would shadow the package of the same name
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
import numeric
from numeric.em import fit_mixture
from numeric.exponential import GaussianMaps
from numeric.natural_gradient import Quadrature, kl_objective, minimize, mle_objective
from numeric.variational import GaussianVI

try:
    from sklearn.mixture import GaussianMixture
    HAVE_SKLEARN = True
except ImportError:
    HAVE_SKLEARN = False

NATURAL_STEPS = (0.5, 1.0)
GD_STEPS = (0.01, 0.1, 1.0, 10.0, 100.0)
ADAM_STEPS = (0.001, 0.01, 0.1, 1.0)
# the ELBO of n observations has curvature ~ n: its stable GD steps are smaller, so its grids reach lower
VI_GD_STEPS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
VI_ADAM_STEPS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
GAP = 1e-8


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- EM -----------------------------------------------------------------------------------------------
def blobs(d: int, k: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 3, (k, d))
    parts = []
    for i, m in enumerate(means):
        a = rng.normal(size=(d, d))
        parts.append(rng.multivariate_normal(m, a @ a.T / d + 0.5 * np.eye(d), n // k))
    x = np.concatenate(parts)
    start_means = x[rng.choice(len(x), k, replace=False)]
    return x, start_means, np.cov(x.T)


def em_row(d: int, k: int, n: int, iterations: int, repeat: int):
    x, start_means, start_cov = blobs(d, k, n)
    maps = GaussianMaps(d)
    init = np.concatenate([start_means, np.repeat(start_cov[maps.iu][None], k, axis=0)], axis=1)
    ours = lambda: fit_mixture(f"multivariate_normal:d={d}", x, k, init=init, max_iter=iterations, tol=-1,
                               maps=maps)
    t_ours = median_time(ours, repeat) / iterations
    fit = ours()
    if not HAVE_SKLEARN:
        return d, k, t_ours, None, None
    reference = GaussianMixture(k, covariance_type="full", tol=0, max_iter=iterations,
                                weights_init=np.full(k, 1 / k), means_init=start_means,
                                precisions_init=np.repeat(np.linalg.inv(start_cov)[None], k, axis=0))

    def theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: tol=0 runs every iteration on purpose
            reference.fit(x)
    t_theirs = median_time(theirs, repeat) / iterations
    means, _ = maps.mean_cov(fit.natural)
    return d, k, t_ours, t_theirs, float(np.max(np.abs(means - reference.means_)))


# -- natural gradient vs first-order methods ------------------------------------------------------------
@dataclass
class Problem:
    """One minimisation: `run(method, start, **options)` → Fit. `grids` overrides the step grids."""

    name: str
    starts: list
    run: Callable
    grids: dict = field(default_factory=dict)


def family_problem(name, family, objective, starts) -> Problem:
    return Problem(name, starts, lambda method, start, **options: minimize(objective, family, start, method=method,
                                                                             **options))


def logistic_data(n: int, d: int, seed: int = 0):
    """Features with AR(1) correlation 0.8 plus an intercept; labels from a random true w."""
    rng = np.random.default_rng(seed)
    corr = 0.8 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    x = np.column_stack([np.ones(n), rng.normal(size=(n, d)) @ np.linalg.cholesky(corr).T])
    return x, (rng.random(n) < special.expit(x @ rng.normal(size=d + 1))).astype(float)


def vi_problem(name, vi: GaussianVI, starts) -> Problem:
    grids = {"gradient": VI_GD_STEPS, "adam": VI_ADAM_STEPS}
    return Problem(name, starts, lambda method, start, **options: vi.fit(method, start=start, **options), grids)


def problems(quick: bool):
    n = 2000 if quick else 20000
    gamma_data = np.random.default_rng(1).gamma(3.0, 2.0, n)
    beta_data = np.random.default_rng(2).beta(2.0, 5.0, n)
    gamma, beta, normal = numeric.compile("gamma"), numeric.compile("beta"), numeric.compile("normal")
    target = stats.gumbel_r(loc=1.0, scale=2.0).logpdf   # skewed, full support: KL(q ‖ p) is finite
    rule = Quadrature.legendre(-20.0, 40.0, 400 if quick else 1200)
    yield family_problem("gamma MLE", gamma, mle_objective(gamma, gamma_data), [[1.0, 1.0], [0.1, 30.0], [40.0, 0.05]])
    yield family_problem("beta MLE", beta, mle_objective(beta, beta_data), [[1.0, 1.0], [0.1, 0.1], [30.0, 60.0]])
    yield family_problem("VI normal → Gumbel", normal, kl_objective(normal, target, rule, "exclusive"),
                         [[0.0, 1.0], [10.0, 0.5], [3.0, 6.0]])
    d = 4 if quick else 10
    x, y = logistic_data(150 if quick else 500, d)
    yield vi_problem(f"VI logistic d={d + 1}", GaussianVI(x, y, "bernoulli"), vi_starts(d + 1))
    x, y = logistic_data(150 if quick else 500, 4, seed=1)
    counts = np.random.default_rng(2).poisson(np.exp(0.3 * x @ np.array([1.0, 0.5, -0.5, 0.3, 0.2])))
    yield vi_problem("VI Poisson d=5", GaussianVI(0.3 * x, counts, "poisson"), vi_starts(5))


def vi_starts(d: int) -> list:
    """q = the prior N(0, I); a narrow q off-centre; a wide q."""
    return [(np.zeros(d), np.eye(d)), (np.full(d, 2.0), 0.01 * np.eye(d)), (np.full(d, -1.0), 10 * np.eye(d))]


def optimum(problem: Problem) -> float:
    return min(problem.run("natural", s, tol=1e-15, max_iter=500).value for s in problem.starts)


def best_run(problem: Problem, start, method, steps, target, max_iter, backtrack):
    best = None
    for lr in steps:
        t0 = time.perf_counter()
        fit = problem.run(method, start, lr=lr, target=target, gap=GAP, max_iter=max_iter, backtrack=backtrack)
        elapsed = time.perf_counter() - t0
        if fit.converged and (best is None or fit.iterations < best[0]):
            best = (fit.iterations, elapsed, lr)
    return best


def ngd_rows(quick: bool, backtrack: bool):
    max_iter = 1000 if quick else 5000
    for problem in problems(quick):
        target = optimum(problem)
        for start in problem.starts[:1] if quick else problem.starts:
            row = {"problem": problem.name, "start": _start_label(start)}
            for method, steps, line_search in (("natural", NATURAL_STEPS, backtrack), ("gradient", GD_STEPS, backtrack),
                                               ("adam", ADAM_STEPS, False)):
                row[method] = best_run(problem, start, method, problem.grids.get(method, steps), target, max_iter,
                                       line_search)
            yield row


def _start_label(start) -> str:
    if isinstance(start, tuple):  # (m, Σ) of a variational normal
        m, cov = start
        return f"m={m[0]:g}, Σ={cov[0, 0]:g}I"
    return ",".join(f"{v:g}" for v in start)


def _fmt_run(run) -> str:
    return "not in budget" if run is None else f"{run[0]:>6} it {run[1] * 1e3:8.1f} ms (lr {run[2]:g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="20 000 EM points, one start per problem, budget 1000 iterations (under a minute)")
    args = parser.parse_args()
    n, iterations, repeat = (20_000, 10, 3) if args.quick else (100_000, 20, 5)
    if not HAVE_SKLEARN:
        print("scikit-learn is not installed (pip install scikit-learn): its columns stay empty")

    print(f"\nEM, Gaussian mixture with full covariances, {n:,} points: time per iteration "
          f"(median of {repeat} runs of {iterations} iterations, same initialisation)", flush=True)
    header = ("dims/comps", "symgeo", "scikit-learn", "symgeo/sklearn", "max |Δ mean|")
    print("  ".join(f"{h:>15}" for h in header))
    for d, k, ours, theirs, diff in (em_row(2, 3, n, iterations, repeat), em_row(10, 5, n, iterations, repeat)):
        cells = (f"{d}-D/{k}", f"{ours * 1e3:.2f} ms", "—" if theirs is None else f"{theirs * 1e3:.2f} ms",
                 "—" if theirs is None else f"{ours / theirs:.2f}×", "—" if diff is None else f"{diff:.1e}")
        print("  ".join(f"{c:>15}" for c in cells), flush=True)

    import mixture  # benchmarks/mixture.py: the scikit-learn-style estimator at 10⁶ points and on streams
    mixture.run(args.quick)

    for backtrack in (False, True):
        rule = ("fixed steps (halved only to stay in the domain)" if not backtrack else
                "natural and gradient steps halved while the loss increases (Adam as before)")
        print(f"\nIterations and wall time to a loss gap of {GAP:g}, {rule}; best step of each grid: natural "
              f"{NATURAL_STEPS}, GD {GD_STEPS}, Adam {ADAM_STEPS} (multivariate VI: GD {VI_GD_STEPS}, Adam "
              f"{VI_ADAM_STEPS})", flush=True)
        print_ngd_table(ngd_rows(args.quick, backtrack))


def print_ngd_table(rows) -> None:
    header = ("problem", "start", "natural gradient", "gradient descent", "Adam", "fewer iterations")
    print(f"{header[0]:>22} {header[1]:>13}  {header[2]:>31}  {header[3]:>31}  {header[4]:>31}  {header[5]:>16}")
    for row in rows:
        others = [r[0] for r in (row["gradient"], row["adam"]) if r is not None]
        ratio = "—" if row["natural"] is None else (
            "others never" if not others else f"{min(others) / row['natural'][0]:.1f}×")
        print(f"{row['problem']:>22} {row['start']:>13}  {_fmt_run(row['natural']):>31}  {_fmt_run(row['gradient']):>31}  "
              f"{_fmt_run(row['adam']):>31}  {ratio:>16}", flush=True)


if __name__ == "__main__":
    main()
