"""The mixture estimator on a GPU (torch tensors on the device) against its numpy path on the same
machine's CPUs: full-covariance Gaussians (2-D/3 and 10-D/5 components) and a gamma mixture, 10⁶ and
10⁷ points, time per EM iteration (median of 3 fits of 5 iterations after a warm-up fit), float64,
and the largest relative difference of the fitted parameters between the two paths.

    python benchmarks/mixture_device.py [--device cuda] [--sizes 1000000 10000000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from numeric.exponential import GaussianMaps  # noqa: E402
from numeric.mixture import ExponentialFamilyMixture  # noqa: E402


def problem(name: str, n: int):
    rng = np.random.default_rng(0)
    if name == "gamma":
        x = np.r_[rng.gamma(2.0, 1.0, n // 2), rng.gamma(20.0, 0.5, n - n // 2)][:, None]
        return "gamma", x, np.array([[1.5, 1.5], [15.0, 0.8]])
    d, k = (2, 3) if name == "2-D/3" else (10, 5)
    means = rng.normal(0, 3, (k, d))
    x = np.concatenate([m + rng.normal(size=(n // k, d)) for m in means])
    maps = GaussianMaps(d)
    start = np.concatenate([x[rng.choice(len(x), k, replace=False)], np.repeat(np.cov(x[:100_000].T)[maps.iu][None], k, axis=0)], axis=1)
    return "multivariate_normal", x, start


def seconds_per_iteration(family, data, start, iterations=5, repeat=3):
    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ExponentialFamilyMixture(family, len(start), params_init=start, tol=-1, max_iter=iterations,
                                            chunk_size=1_048_576 if torch.is_tensor(data) else 16_384).fit(data)
    model = fit()  # warm-up: generated code, allocator
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fit()
        times.append(time.perf_counter() - t)
    return statistics.median(times) / iterations, model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print(f"device: {name}; CPU threads: {torch.get_num_threads()}")
    print(f"{'problem':>8} {'points':>11} {'numpy CPU ms/it':>16} {'torch device ms/it':>19} {'speed-up':>9} {'max rel. Δ':>11}")
    for which in ("2-D/3", "10-D/5", "gamma"):
        for n in args.sizes:
            family, x, start = problem(which, n)
            cpu, a = seconds_per_iteration(family, x, start)
            dev, b = seconds_per_iteration(family, torch.tensor(x, device=args.device), start)
            diff = float(np.max(np.abs(a.params_ - b.params_) / np.maximum(np.abs(a.params_), 1e-12)))
            print(f"{which:>8} {n:>11,} {cpu * 1e3:16.1f} {dev * 1e3:19.2f} {cpu / dev:8.1f}× {diff:11.1e}", flush=True)


if __name__ == "__main__":
    main()
