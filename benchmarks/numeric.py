"""Generated numeric code against what a user would otherwise pick, side by side in one run.

1. Fisher metric at N points (10⁶; --quick 10⁵): symgeo's generated numpy (domain-checked and unchecked)
   vs a hand-written numpy closed form vs geomstats' `metric_matrix` on the same points.
2. Fisher–Rao distance between random pairs (100; --quick 10) for gamma and beta: time and max relative
   error of symgeo (`distances`, all pairs at once; and `distance`, one pair at a time) and geomstats
   (`metric.dist`, one pair at a time) against a reference computed by a different
   algorithm: collocation (scipy solve_bvp, tol 1e-10) in log coordinates, length by Simpson's rule on
   4001 points of the collocation solution.

Times are medians of several runs (the machines are noisy). geomstats is a benchmark-only dependency;
geomstats 2.8 still imports numpy.trapz, removed in numpy 2, so the alias is restored before importing it.

    python benchmarks/numeric.py [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.integrate import simpson, solve_bvp
from scipy.special import polygamma

# this file is named after the package it measures: keep its folder from shadowing that package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
import numeric
from numeric import blocks
from numeric.batch_geodesic import distances
from numeric.geodesic import distance

try:
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid  # geomstats 2.8 on numpy 2
    from geomstats.information_geometry.beta import BetaDistributions
    from geomstats.information_geometry.dirichlet import DirichletDistributions
    from geomstats.information_geometry.gamma import GammaDistributions
    from geomstats.information_geometry.normal import UnivariateNormalDistributions
    HAVE_GEOMSTATS = True
except ImportError:
    HAVE_GEOMSTATS = False


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- hand-written closed forms (what a user would type) -------------------------------------------
def hand_normal(mu, sigma):
    g = np.zeros(mu.shape + (2, 2))
    inv = 1 / sigma ** 2
    g[..., 0, 0], g[..., 1, 1] = inv, 2 * inv
    return g


def hand_gamma(k, theta):
    g = np.empty(k.shape + (2, 2))
    g[..., 0, 0] = polygamma(1, k)
    g[..., 0, 1] = g[..., 1, 0] = 1 / theta
    g[..., 1, 1] = k / theta ** 2
    return g


def hand_beta(a, b):
    g = np.empty(a.shape + (2, 2))
    t = polygamma(1, a + b)
    g[..., 0, 0], g[..., 1, 1] = polygamma(1, a) - t, polygamma(1, b) - t
    g[..., 0, 1] = g[..., 1, 0] = -t
    return g


def hand_dirichlet(*alphas):
    alphas = np.stack(alphas, axis=-1)
    g = -polygamma(1, alphas.sum(-1))[..., None, None] * np.ones(alphas.shape[-1:] * 2)
    idx = np.arange(alphas.shape[-1])
    g[..., idx, idx] += polygamma(1, alphas)
    return g


def geomstats_points(name, columns):
    """The same distributions in geomstats' coordinates (gamma: shape and mean k·θ)."""
    if name == "gamma":
        return np.stack([columns[0], columns[0] * columns[1]], axis=-1)
    return np.stack(columns, axis=-1)


def geomstats_space(name):
    return {"normal": UnivariateNormalDistributions, "gamma": GammaDistributions, "beta": BetaDistributions,
            "dirichlet:k=3": lambda: DirichletDistributions(3)}[name]()


def metric_table(n_points: int, repeat: int) -> list:
    rng = np.random.default_rng(0)
    cases = {"normal": (hand_normal, [rng.normal(size=n_points), rng.uniform(0.5, 3, n_points)]),
             "gamma": (hand_gamma, [rng.uniform(0.5, 5, n_points), rng.uniform(0.5, 5, n_points)]),
             "beta": (hand_beta, [rng.uniform(0.5, 5, n_points), rng.uniform(0.5, 5, n_points)]),
             "dirichlet:k=3": (hand_dirichlet, [rng.uniform(0.5, 5, n_points) for _ in range(3)])}
    rows = []
    for name, (hand, columns) in cases.items():
        checked = numeric.compile(name).fisher
        unchecked = numeric.compile(name, check=False).fisher
        np.testing.assert_allclose(checked(*columns), hand(*columns), rtol=1e-12)
        t_checked = median_time(lambda f=checked, c=columns: f(*c), repeat)
        t_unchecked = median_time(lambda f=unchecked, c=columns: f(*c), repeat)
        threads, blocks.THREADS = blocks.THREADS, 1
        t_single = median_time(lambda f=checked, c=columns: f(*c), repeat)
        blocks.THREADS = threads
        t_hand = median_time(lambda f=hand, c=columns: f(*c), repeat)
        t_geomstats = None
        if HAVE_GEOMSTATS:
            metric, points = geomstats_space(name).metric, geomstats_points(name, columns)
            t_geomstats = median_time(lambda m=metric, p=points: m.metric_matrix(p), max(1, repeat // 2))
        rows.append((name, t_checked, t_unchecked, t_single, t_hand, t_geomstats))
    return rows


# -- distances ------------------------------------------------------------------------------------
def collocation_reference(compiled, x0, x1) -> float:
    """Length of the collocation solution (tol 1e-10) in log coordinates: independent of shooting."""
    rhs = compiled.geodesic_rhs().generated
    u0, u1, n = np.log(x0), np.log(x1), compiled.n

    def fun(_t, y):
        xi, w = np.exp(y[:n]), y[n:]
        accel = rhs(*xi, *(xi * w)).T[n:]
        return np.vstack([w, accel / xi - w ** 2])
    times = np.linspace(0, 1, 101)
    guess = np.vstack([u0[:, None] + (u1 - u0)[:, None] * times, np.repeat((u1 - u0)[:, None], 101, 1)])
    sol = solve_bvp(fun, lambda a, b: np.concatenate([a[:n] - u0, b[:n] - u1]), times, guess, tol=1e-10,
                    max_nodes=200_000)
    if not sol.success:
        return float("nan")
    dense = np.linspace(0, 1, 4001)
    y = sol.sol(dense)
    xi, v = np.exp(y[:n]).T, (np.exp(y[:n]) * y[n:]).T
    speed = np.sqrt(np.einsum("ni,nij,nj->n", v, compiled.fisher(*xi.T), v))
    return float(simpson(speed, x=dense))


def timed(repeat: int, fn, *args):
    """(median seconds, last result) of fn(*args) over `repeat` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def one_pair_at_a_time(compiled, pairs) -> np.ndarray:
    return np.array([distance(compiled, a, b).value for a, b in pairs])


def geomstats_distances(space, name, pairs) -> np.ndarray:
    return np.array([float(space.metric.dist(geomstats_points(name, list(a)), geomstats_points(name, list(b))))
                     for a, b in pairs])


def distance_table(n_pairs: int, repeat: int) -> list:
    rng = np.random.default_rng(1)
    rows = []
    for name in ("gamma", "beta"):
        compiled = numeric.compile(name)
        pairs = [(np.exp(rng.uniform(np.log(0.5), np.log(5), 2)), np.exp(rng.uniform(np.log(0.5), np.log(5), 2)))
                 for _ in range(n_pairs)]
        reference = np.array([collocation_reference(compiled, a, b) for a, b in pairs])
        x0, x1 = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
        distance(compiled, *pairs[0])  # generate the code once, outside the timing
        distances(compiled, x0[:2], x1[:2])
        t_ours, ours = timed(repeat, distances, compiled, x0, x1)
        t_single, one_by_one = timed(repeat, one_pair_at_a_time, compiled, pairs)
        t_geo, err_geo = None, None
        if HAVE_GEOMSTATS:
            space = geomstats_space(name)
            t_geo, theirs = timed(repeat, geomstats_distances, space, name, pairs)
            err_geo = float(np.nanmax(np.abs(theirs - reference) / reference))
        err_ours = float(np.nanmax(np.abs(ours - reference) / reference))
        err_single = float(np.nanmax(np.abs(one_by_one - reference) / reference))
        rows.append((name, n_pairs, t_ours, err_ours, t_single, err_single, t_geo, err_geo,
                     int(np.isnan(reference).sum())))
    return rows


def _fmt(value, unit="s"):
    return "—" if value is None else (f"{value:.4f} {unit}" if unit else f"{value:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10⁵ points and 10 pairs (under a minute)")
    args = parser.parse_args()
    n_points, repeat, n_pairs = (100_000, 5, 10) if args.quick else (1_000_000, 7, 100)
    if not HAVE_GEOMSTATS:
        print("geomstats is not installed (pip install geomstats): its columns stay empty")

    print(f"\nFisher metric at {n_points:,} points (median of {repeat} runs; symgeo evaluates blocks of "
          f"{blocks.BLOCK} points on {blocks.THREADS} threads, SYMGEO_THREADS to change; '1 thread': the same, "
          "serially; geomstats and the hand-written code run on one thread)")
    header = ("family", "symgeo", "symgeo unchecked", "symgeo 1 thread", "hand numpy", "geomstats", "symgeo/hand",
              "geomstats/symgeo")
    print("  ".join(f"{h:>17}" for h in header))
    for name, checked, unchecked, single, hand, geo in metric_table(n_points, repeat):
        cells = (name, _fmt(checked), _fmt(unchecked), _fmt(single), _fmt(hand), _fmt(geo), f"{checked / hand:.2f}×",
                 "—" if geo is None else f"{geo / checked:.2f}×")
        print("  ".join(f"{c:>17}" for c in cells))

    print(f"\nFisher–Rao distance, {n_pairs} random pairs with parameters in [0.5, 5] (reference: collocation; "
          f"times: median of {1 if args.quick else 3} runs)")
    print("symgeo: `distances` (all pairs at once); one by one: `distance` per pair, the tighter solver")
    header = ("family", "symgeo time", "symgeo max err", "one by one time", "one by one err", "geomstats time",
              "geomstats max err", "time ratio", "error ratio")
    print("  ".join(f"{h:>17}" for h in header))
    table = distance_table(n_pairs, 1 if args.quick else 3)
    for name, n, t_ours, e_ours, t_single, e_single, t_geo, e_geo, failed in table:
        cells = (name, _fmt(t_ours), _fmt(e_ours, ""), _fmt(t_single), _fmt(e_single, ""), _fmt(t_geo),
                 _fmt(e_geo, ""),
                 "—" if t_geo is None else f"{t_geo / t_ours:.1f}×",
                 "—" if e_geo is None else f"{e_geo / max(e_ours, 1e-16):.0e}×")
        print("  ".join(f"{c:>17}" for c in cells) + (f"  ({failed} references failed)" if failed else ""))


if __name__ == "__main__":
    main()
