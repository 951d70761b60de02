"""Time to derive the full dual structure of each exponential family, cold and cached.

The dual structure: skewness T, Γ^(+1) and Γ^(−1), η(ξ), θ(η) and A*(η) where SymPy can invert
(otherwise reported as numeric-only), the KL divergence and the entropy. Each measurement runs in
a fresh process; "cached" reuses the on-disk cache of the cold run.

    python benchmarks/dual.py            # every exponential family of the catalog
    python benchmarks/dual.py --quick    # a few families, under a minute
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

QUICK = ["normal", "poisson", "gamma", "categorical:k=3"]
FULL = ["bernoulli", "binomial", "categorical:k=3", "poisson", "geometric", "negative_binomial", "exponential",
        "normal", "lognormal", "gamma", "inverse_gamma", "beta", "dirichlet:k=3", "inverse_gaussian",
        "multivariate_normal:d=2", "von_mises", "rayleigh"]

WORKER = r"""
import json, sys, time
import sympy as sp
w = sp.Symbol("w", positive=True)
sp.simplify(sp.diff(sp.exp(w) * sp.log(w) / (1 + w) ** 2 + sp.polygamma(1, w), w))
from symgeo import Geometry, catalog, divergence, duality
name = sys.argv[1]
t = time.perf_counter()
g = Geometry(catalog.get(name))
g.skewness; g.christoffel(1); g.christoffel(-1); g.expectation_params
try:
    duality.natural_from_expectation(g); duality.dual_potential(g); inverse = "closed form"
except duality.InversionUnavailable:
    inverse = "numeric only"
a, b = divergence.pair_symbols(g)
divergence.kl(g, a, b)
try:
    divergence.entropy(g)
except Exception:
    pass
print(json.dumps([time.perf_counter() - t, inverse]))
"""


def run(name: str, env: dict):
    out = subprocess.run([sys.executable, "-c", WORKER, name], capture_output=True, text=True, env=env, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"{name}: {out.stderr[-1500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    names = QUICK if args.quick else FULL
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"{'family':26s} {'cold s':>8s} {'cached s':>9s}  θ(η)", flush=True)
    tc = tw = 0.0
    for i, name in enumerate(names, 1):
        colds, warms, inverse = [], [], ""
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                env = {**os.environ, "SYMGEO_CACHE_DIR": tmp}
                cold, inverse = run(name, env)
                warm, _ = run(name, env)
                colds.append(cold)
                warms.append(warm)
        c, w = statistics.median(colds), statistics.median(warms)
        tc, tw = tc + c, tw + w
        print(f"{name:26s} {c:8.2f} {w:9.3f}  {inverse}   [{i}/{len(names)}]", flush=True)
    print(f"\n{'total':26s} {tc:8.2f} {tw:9.3f}   (medians of {repeats} fresh-process runs)")


if __name__ == "__main__":
    main()
