"""The mixture estimator (numeric.mixture.ExponentialFamilyMixture) against what a user would pick.

1. Full-covariance Gaussian mixtures, 10⁶ points (--quick 10⁵), 2-D/3 and 10-D/5 components, from the
   same start as scikit-learn's GaussianMixture: the marginal time per iteration (medians of 3 fits of 12
   and of 2 iterations, their difference over 10), then both run to convergence (tol 1e-6 on the mean
   log-likelihood): iterations, wall time, and the relative difference of the final log-likelihoods.
2. A stream of 10⁷ points (--quick 10⁶) generated chunk by chunk, never held in memory, fitted by batch
   EM over the chunks (3 passes) in a fresh process, against the same with 10× fewer points: peak
   resident memory of each (it should not grow with n), and time per pass.
3. Gamma and Poisson mixtures, 10⁶ points (--quick 10⁵), against pomegranate's GeneralMixtureModel (the
   library that fits them; float64 tensors, where it installs) and a direct numpy EM written here: time
   per iteration and the log-likelihood reached from the same start after the same 10 iterations.

    python benchmarks/mixture.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import special

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from numeric.exponential import GaussianMaps  # noqa: E402
from numeric.mixture import ExponentialFamilyMixture  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol < 0 runs every iteration on purpose
        return fn()


def _median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        _quiet(fn)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _blobs(d, k, n, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 3, (k, d))
    parts = []
    for m in means:
        a = rng.normal(size=(d, d))
        parts.append(rng.multivariate_normal(m, a @ a.T / d + 0.5 * np.eye(d), n // k))
    x = np.concatenate(parts)
    return x, x[rng.choice(len(x), k, replace=False)], np.cov(x.T)


def gaussian_rows(n: int, iterations=(2, 12), repeat: int = 3) -> list:
    """Per 10⁶-point problem: the marginal time per iteration of each (the median time of a fit of 12
    iterations minus that of 2, over 10: set-up, validation and initialisation cancel — scikit-learn runs
    its k-means even when every initial value is given), then both to convergence from the same start."""
    from sklearn.mixture import GaussianMixture
    rows = []
    for d, k in ((2, 3), (10, 5)):
        x, means, cov = _blobs(d, k, n)
        maps = GaussianMaps(d)
        start = np.concatenate([means, np.repeat(cov[maps.iu][None], k, axis=0)], axis=1)
        precisions = np.repeat(np.linalg.inv(cov)[None], k, axis=0)

        def ours(max_iter, tol, k=k, start=start, x=x):
            return ExponentialFamilyMixture(n_components=k, params_init=start, max_iter=max_iter, tol=tol).fit(x)

        def theirs(max_iter, tol, k=k, means=means, precisions=precisions, x=x):
            return GaussianMixture(k, covariance_type="full", tol=tol, max_iter=max_iter,
                                   weights_init=np.full(k, 1 / k), means_init=means,
                                   precisions_init=precisions).fit(x)
        few, many = iterations
        t_ours = (_median_seconds(lambda: ours(many, -1), repeat)
                  - _median_seconds(lambda: ours(few, -1), repeat)) / (many - few)
        t_theirs = (_median_seconds(lambda: theirs(many, 0), repeat)
                    - _median_seconds(lambda: theirs(few, 0), repeat)) / (many - few)
        start_time = time.perf_counter()
        a = _quiet(lambda: ours(1000, 1e-6))
        wall_ours = time.perf_counter() - start_time
        start_time = time.perf_counter()
        b = _quiet(lambda: theirs(1000, 1e-6))
        wall_theirs = time.perf_counter() - start_time
        ll_a, ll_b = a.score(x), b.score(x)
        rows.append((f"{d}-D/{k}", t_ours, t_theirs, a.n_iter_, b.n_iter_, wall_ours, wall_theirs,
                     abs(ll_a - ll_b) / abs(ll_b)))
    return rows


STREAM_CODE = """
import json, resource, sys, time, warnings
import numpy as np
from numeric.mixture import ExponentialFamilyMixture
n, chunk = {n}, 100_000
def chunks():
    rng = np.random.default_rng(0)
    centers = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        yield centers[rng.integers(3, size=rows)] + rng.normal(size=(rows, 2))
model = ExponentialFamilyMixture(n_components=3, random_state=0, max_iter=3, tol=-1)
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model.fit(chunks)
seconds = time.perf_counter() - start
def peak_mib():  # VmHWM: this process's own high-water mark (ru_maxrss keeps the forking parent's)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"peak_mib": peak_mib(),
                  "seconds_per_pass": seconds / 4, "means": model.params_[:, :2].round(2).tolist()}}))
"""


def stream_rows(n: int) -> list:
    rows = []
    for size in (n // 10, n):
        run = subprocess.run([sys.executable, "-c", STREAM_CODE.format(n=size)], capture_output=True, text=True,
                             check=True, cwd=ROOT)
        result = json.loads(run.stdout)
        rows.append((size, result["peak_mib"], result["seconds_per_pass"], result["means"]))
    return rows


def _gamma_numpy_em(x, k_start, theta_start, weights, iterations):
    """Direct numpy EM for a gamma mixture: closed-form E-step, M-step by Newton on the shape
    (log k − ψ(k) = log x̄_k − mean(log x)_k)."""
    log_x = np.log(x)
    shape, scale, w = k_start.copy(), theta_start.copy(), weights.copy()
    for _ in range(iterations):
        log_p = ((shape - 1) * log_x[:, None] - x[:, None] / scale - special.gammaln(shape) - shape * np.log(scale)
                 + np.log(w))
        norm = special.logsumexp(log_p, axis=1, keepdims=True)
        r = np.exp(log_p - norm)
        counts = r.sum(axis=0)
        mean = r.T @ x / counts
        mean_log = r.T @ log_x / counts
        s = np.log(mean) - mean_log
        shape = (3 - s + np.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
        for _ in range(5):
            shape -= (np.log(shape) - special.digamma(shape) - s) / (1 / shape - special.polygamma(1, shape))
        scale, w = mean / shape, counts / len(x)
    log_p = ((shape - 1) * log_x[:, None] - x[:, None] / scale - special.gammaln(shape) - shape * np.log(scale)
             + np.log(w))
    return float(np.mean(special.logsumexp(log_p, axis=1)))


def _poisson_numpy_em(x, lam, weights, iterations):
    lam, w = lam.copy(), weights.copy()
    log_fact = special.gammaln(x + 1)
    for _ in range(iterations):
        log_p = x[:, None] * np.log(lam) - lam - log_fact[:, None] + np.log(w)
        norm = special.logsumexp(log_p, axis=1, keepdims=True)
        r = np.exp(log_p - norm)
        counts = r.sum(axis=0)
        lam, w = r.T @ x / counts, counts / len(x)
    log_p = x[:, None] * np.log(lam) - lam - log_fact[:, None] + np.log(w)
    return float(np.mean(special.logsumexp(log_p, axis=1)))


def _pomegranate(kind, x, params, weights, iterations):
    """pomegranate's GeneralMixtureModel from the same start (float64), fitted for exactly `iterations`
    EM iterations; returns a function that fits and gives the mean log-likelihood, or None if absent."""
    try:
        import torch
        from pomegranate.distributions import Gamma, Poisson
        from pomegranate.gmm import GeneralMixtureModel
    except ImportError:
        return None
    data = torch.tensor(x[:, None], dtype=torch.float64)

    def fit():
        as64 = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
        parts = ([Gamma(shapes=as64(k), rates=as64(1 / t)) for k, t in params] if kind == "gamma"
                 else [Poisson(lambdas=as64(lam)) for (lam,) in params])
        model = GeneralMixtureModel(parts, priors=torch.tensor(weights, dtype=torch.float64),
                                    max_iter=iterations, tol=-np.inf).fit(data)
        return float(model.log_probability(data).mean())
    return fit


def _family_row(name, kind, x, start, weights, direct, iterations, repeat):
    ours = lambda: ExponentialFamilyMixture(kind, 2, params_init=start, max_iter=iterations,  # noqa: E731
                                            tol=-1).fit(x[:, None])
    t_ours = _median_seconds(ours, repeat) / iterations
    t_numpy = _median_seconds(direct, repeat) / iterations
    theirs = _pomegranate(kind, x, start, weights, iterations)
    t_theirs = None if theirs is None else _median_seconds(theirs, repeat) / iterations
    return (name, t_ours, t_theirs, t_numpy, _quiet(ours).score(x[:, None]),
            None if theirs is None else theirs(), direct())


def family_rows(n: int, iterations: int = 10, repeat: int = 3) -> list:
    rng = np.random.default_rng(0)
    x = np.r_[rng.gamma(2.0, 1.0, n // 2), rng.gamma(20.0, 0.5, n - n // 2)]
    k0, t0, w0 = np.array([1.5, 15.0]), np.array([1.5, 0.8]), np.array([0.5, 0.5])
    rows = [_family_row("gamma, 2 components", "gamma", x, np.c_[k0, t0], w0,
                        lambda: _gamma_numpy_em(x, k0, t0, w0, iterations), iterations, repeat)]
    x = np.r_[rng.poisson(2.0, n // 2), rng.poisson(12.0, n - n // 2)].astype(float)
    lam0 = np.array([1.0, 8.0])
    rows.append(_family_row("Poisson, 2 components", "poisson", x, lam0[:, None], w0,
                            lambda: _poisson_numpy_em(x, lam0, w0, iterations), iterations, repeat))
    return rows


def run(quick: bool) -> None:
    n = 100_000 if quick else 1_000_000
    print(f"\nMixture estimator, full-covariance Gaussians, {n:,} points, same start as scikit-learn "
          f"(per iteration: marginal, fits of 12 − 2 iterations, medians of 3; to convergence: tol 1e-6)",
          flush=True)
    print(f"{'dims/comps':>10} {'symgeo ms/it':>13} {'sklearn ms/it':>14} {'speed-up':>9} {'iters (s/sk)':>13} "
          f"{'wall s (s/sk)':>15} {'wall ratio':>10} {'|Δ log L|/|log L|':>18}")
    for name, a, b, ia, ib, wa, wb, diff in gaussian_rows(n):
        print(f"{name:>10} {a * 1e3:13.1f} {b * 1e3:14.1f} {b / a:8.1f}× {ia:>6}/{ib:<6} "
              f"{wa:7.1f}/{wb:<7.1f} {wb / wa:9.1f}× {diff:18.1e}", flush=True)
    size = 1_000_000 if quick else 10_000_000
    print("\nStreaming batch EM over generated chunks of 100 000 rows (2-D, 3 components, 3 passes), fresh "
          "processes", flush=True)
    print(f"{'points':>12} {'peak RSS MiB':>13} {'s per pass':>11}  fitted means")
    for points, peak, seconds, means in stream_rows(size):
        print(f"{points:>12,} {peak:13.0f} {seconds:11.2f}  {means}", flush=True)
    print(f"\nNon-Gaussian mixtures, {n:,} points, 10 iterations from the same start, against pomegranate "
          f"(— where it is not installed) and a direct numpy EM", flush=True)
    print(f"{'mixture':>22} {'symgeo ms/it':>13} {'pomegranate':>12} {'numpy ms/it':>12} {'vs pom.':>8} "
          f"{'vs numpy':>9} {'log L symgeo':>13} {'pomegranate':>12} {'numpy':>10}")
    dash = lambda v, fmt: "—" if v is None else format(v, fmt)  # noqa: E731
    for name, a, p, b, la, lp, lb in family_rows(n):
        print(f"{name:>22} {a * 1e3:13.1f} {dash(p and p * 1e3, '12.1f'):>12} {b * 1e3:12.1f} "
              f"{dash(p and p / a, '7.1f') + '×':>8} {b / a:8.1f}× {la:13.6f} {dash(lp, '12.6f'):>12} {lb:10.6f}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10⁵ points, a 10⁶-point stream (under a minute)")
    run(parser.parse_args().quick)


if __name__ == "__main__":
    main()
