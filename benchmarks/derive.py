"""Derivation speed: symgeo cold and cached vs a plain SymPy pipeline, per catalog family.

Each measurement runs in a fresh Python process (SymPy's in-memory caches start empty), timing
only the work after imports. "cold" derives everything `symgeo derive` prints (Fisher, inverse,
Christoffel, scalar curvature, geodesic equations, Cramér–Rao, Jeffreys) with an empty disk cache;
"cached" repeats it in a new process with the disk cache filled. "plain SymPy" starts from
symgeo's Fisher matrix and does metric → Christoffel → Ricci → scalar with `simplify` on every
component, as a user would write it; it is stopped at a time limit.

    python benchmarks/derive.py            # whole catalog (the figures quoted in notes)
    python benchmarks/derive.py --quick    # a smaller set, under a minute
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

FULL = ["bernoulli", "binomial", "categorical:k=3", "categorical:k=4", "poisson", "geometric",
        "negative_binomial", "exponential", "normal", "lognormal", "gamma", "inverse_gamma", "beta",
        "dirichlet:k=3", "inverse_gaussian", "multivariate_normal:d=2", "multivariate_normal:d=3",
        "von_mises", "rayleigh", "cauchy", "student_t", "weibull", "logistic", "laplace"]
COLD_LIMIT = 900.0
QUICK = ["normal", "gamma", "beta", "categorical:k=3", "cauchy", "multivariate_normal:d=2"]

WORKER = r"""
import json, sys, time
import sympy as sp
mode, name = sys.argv[1], sys.argv[2]
from symgeo import Geometry, catalog
from symgeo.render import derivation
w = sp.Symbol("w", positive=True)  # pay SymPy's lazy first-use imports before timing, in both modes
sp.simplify(sp.diff(sp.exp(w) * sp.log(w) / (1 + w) ** 2 + sp.polygamma(1, w), w))
if mode == "symgeo":
    t = time.perf_counter()
    derivation(Geometry(catalog.get(name)))
    print(json.dumps(time.perf_counter() - t))
else:
    g = Geometry(catalog.get(name), cache=False).fisher  # the same metric, not timed
    params = Geometry(catalog.get(name), cache=False).params
    n = len(params)
    t = time.perf_counter()
    G = sp.Matrix(g)
    Ginv = G.inv().applyfunc(sp.simplify)
    Gam = [[[sp.simplify(sum(Ginv[k, l] * (sp.diff(G[j, l], params[i]) + sp.diff(G[i, l], params[j])
                                          - sp.diff(G[i, j], params[l])) for l in range(n)) / 2)
             for j in range(n)] for i in range(n)] for k in range(n)]
    Ric = sp.zeros(n, n)
    for b in range(n):
        for d in range(n):
            Ric[b, d] = sp.simplify(sum(sp.diff(Gam[a][d][b], params[a]) - sp.diff(Gam[a][a][b], params[d])
                                        + sum(Gam[a][a][e] * Gam[e][d][b] - Gam[a][d][e] * Gam[e][a][b]
                                              for e in range(n)) for a in range(n)))
    R = sp.simplify(sum(Ginv[b, d] * Ric[b, d] for b in range(n) for d in range(n)))
    print(json.dumps(time.perf_counter() - t))
"""


def run(mode: str, name: str, env: dict, limit: float) -> float | None:
    try:
        out = subprocess.run([sys.executable, "-c", WORKER, mode, name], capture_output=True, text=True,
                             env=env, timeout=limit)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        raise RuntimeError(f"{mode} {name} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None, help="runs per measurement (median)")
    ap.add_argument("--baseline-limit", type=float, default=None, help="seconds before plain SymPy is stopped")
    args = ap.parse_args()
    names = QUICK if args.quick else FULL
    repeats = args.repeats or (1 if args.quick else 3)
    limit = args.baseline_limit or (8.0 if args.quick else 120.0)
    rows = []
    print(f"{'family':26s} {'n':>2s} {'cold s':>8s} {'cached s':>9s} {'plain SymPy s':>14s} {'plain/cold':>10s}",
          flush=True)
    for i, name in enumerate(names, 1):
        colds, warms = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                env = {**os.environ, "SYMGEO_CACHE_DIR": tmp}
                colds.append(run("symgeo", name, env, COLD_LIMIT))
                warms.append(run("symgeo", name, env, COLD_LIMIT) if colds[-1] is not None else None)
        if None in colds:
            print(f"{name:26s}    {'>' + format(COLD_LIMIT, 'g'):>8s}   (stopped)   [{i}/{len(names)}]", flush=True)
            rows.append((name, COLD_LIMIT, float("nan"), None))
            continue
        base_env = {**os.environ, "SYMGEO_CACHE": "0"}
        base = run("plain", name, base_env, limit)
        cold, warm = statistics.median(colds), statistics.median(warms)
        from symgeo import catalog
        n = len(catalog.get(name).params)
        base_txt = f"{base:14.2f}" if base is not None else f"{'>' + format(limit, 'g'):>14s}"
        ratio = f"{base / cold:10.1f}" if base is not None else f"{'>' + format(limit / cold, '.1f'):>10s}"
        print(f"{name:26s} {n:2d} {cold:8.2f} {warm:9.3f} {base_txt} {ratio}   [{i}/{len(names)}]", flush=True)
        rows.append((name, cold, warm, base))
    total_cold = sum(r[1] for r in rows)
    total_warm = sum(r[2] for r in rows if r[2] == r[2])
    print(f"\n{'total':26s}    {total_cold:8.2f} {total_warm:9.3f}   (medians of {repeats} fresh-process runs; "
          f"plain SymPy stopped at {limit:g} s)")


if __name__ == "__main__":
    main()
