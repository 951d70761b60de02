"""Families outside the catalog, declared as spec files (derivations/families/): does each derive,
how fast (cold and cached, fresh processes), and is its Fisher metric right?

The reference is written here, not taken from symgeo: the score by mpmath's numeric derivative of
the declared log-density, and E[s sᵀ] by mpmath quadrature (or summation) at two parameter points.

    python benchmarks/families.py            # all families
    python benchmarks/families.py --quick    # a subset, under a minute
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mpmath
import numpy as np
import sympy as sp
import tomllib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the numeric package, not benchmarks/numeric.py beside this script
FAMILIES = ROOT / "derivations" / "families"
QUICK = ("log_logistic", "lomax", "student_t_nu", "mixture_weight", "beta_prime", "log_gamma")
BUDGET_S = 120
MEMORY_BYTES = 8 * 2 ** 30


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def derive(path: Path, cache: str) -> tuple[float, dict | str]:
    """symgeo derive --format json in a fresh process: (seconds, JSON or the failure)."""
    env = {**os.environ, "SYMGEO_CACHE_DIR": cache}
    start = time.perf_counter()
    try:
        run = subprocess.run([sys.executable, "-m", "symgeo", "derive", str(path), "--format", "json",
                              "--budget", str(BUDGET_S - 15)],
                             capture_output=True, text=True, timeout=BUDGET_S, env=env, check=False,
                             preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        return BUDGET_S, f"no result within {BUDGET_S} s"
    elapsed = time.perf_counter() - start
    if run.returncode not in (0, 3):  # 3: a partial result, the unfinished stages named
        last = (run.stderr.strip().splitlines() or ["killed"])[-1]
        return elapsed, last[:120]
    return elapsed, json.loads(run.stdout)


# -- the independent reference ---------------------------------------------------------------------
def _declaration(path: Path):
    spec = tomllib.loads(path.read_text())
    names = {p: sp.Symbol(p, real=True) for p in spec["params"]}
    variables = {v: sp.Symbol(v, real=True) for v in spec.get("variables", [spec.get("variable", "x")])}
    x = next(iter(variables.values()))  # real: d|x - mu|/dmu is a sign, not Derivative(re)
    local = {**names, **variables, "abs": sp.Abs, "lgamma": sp.loggamma}
    if "density" in spec:
        logp = sp.log(sp.sympify(spec["density"], locals=local))
    else:
        logp = sp.sympify(spec["log_density"], locals=local)
    return spec, x, [names[p] for p in spec["params"]], logp


def _point(spec: dict, k: int) -> list:
    values = []
    for i, kind in enumerate(spec["params"].values()):
        t = (0.35, 0.8, 1.3, 2.1)[(i + k) % 4]
        if kind == "real":
            values.append(t - 0.9)
        elif kind == "unit":
            values.append(0.2 + 0.5 * (t / 2.5))
        elif isinstance(kind, dict):
            lo, hi = (float(sp.sympify(b)) for b in kind["interval"])
            values.append(lo + (hi - lo) * (0.2 + 0.15 * ((i + k) % 4)))
        else:
            values.append(t + 0.6)
    return values


def _exp(a):
    """exp that does not build exp(e^(10^20)) far out in a tail (0 or overflow instead); e^(-10^30)
    is still computed (mpmath holds it), so log(expm1(λ eᵘ)) near x = 0 stays finite."""
    if mpmath.re(a) > 1e6:
        return mpmath.inf
    if mpmath.re(a) < 0 and mpmath.mag(a) > 4000:  # |a| > 2^4000: its exponent alone is unbuildable
        return mpmath.mpf(0)
    return mpmath.exp(a)


def _expm1(a):
    if mpmath.re(a) > 1e6:
        return mpmath.inf
    return mpmath.expm1(a) if mpmath.re(a) > -50 else _exp(a) - 1


def reference_fisher(path: Path, point: list, dps: int = 20):
    """E[s sᵀ] by mpmath quadrature/summation of the score (SymPy's derivative of the declared
    log-density) times the density: no reduction, identity or representation involved."""
    spec, x, params, logp = _declaration(path)
    if "variables" in spec:
        return _region_reference(spec, x, params, logp, point)
    n = len(params)
    at = dict(zip(params, point))
    modules = [{"exp": _exp, "expm1": _expm1}, "mpmath"]
    scores = [sp.diff(logp, p).subs(at) for p in params]
    logp = logp.subs(at)
    support = spec["support"]
    if support == "positive":  # in u = log x, written symbolically: log(e^u) is u, no overflow far out
        u = sp.Symbol("u", real=True)
        scores = [sp.simplify(sc.subs(x, sp.exp(u))) for sc in scores]
        logp, x, support = sp.expand_log(logp.subs(x, sp.exp(u)), force=True) + u, u, "log-positive"
    scores = [sp.lambdify(x, _accurate(sc), modules=modules) for sc in scores]
    log_density = sp.lambdify(x, _accurate(logp), modules=modules)
    with mpmath.workdps(dps):
        g = mpmath.matrix(n, n)
        for i in range(n):
            for j in range(i, n):
                g[i, j] = g[j, i] = _integrate(lambda t, i=i, j=j: _weighted(scores[i], scores[j], log_density, t),
                                               support)
        return g


def _region_reference(spec, xy, params, logp, point):
    """Several variables: nested scipy quadrature (float) over the declared ranges, innermost first
    (a range that names another variable is inner), E[s sᵀ] entry by entry."""
    from scipy import integrate
    names = spec["variables"]
    syms = {str(v): v for v in logp.free_symbols if str(v) in names}
    ranges = spec["support"]
    inner = [v for v in names if any(w in str(ranges[v]) for w in names if w != v)]
    order = inner + [v for v in names if v not in inner]
    variables = [syms.get(v, sp.Symbol(v, real=True)) for v in order]
    at = dict(zip(params, point))
    density = sp.lambdify(variables, sp.exp(logp.subs(at)), modules=["scipy", "numpy"])
    scores = [sp.lambdify(variables, sp.diff(logp, p).subs(at), modules=["scipy", "numpy"]) for p in params]
    bounds = []
    for v in order:
        decl = ranges[v]
        named = {"positive": ("0", "oo"), "reals": ("-oo", "oo"), "unit": ("0", "1")}
        lo, hi = named[decl] if isinstance(decl, str) else decl["interval"]
        fns = [sp.lambdify(variables, sp.sympify(e, locals=syms), modules=["numpy"]) for e in (lo, hi)]
        bounds.append(lambda *outer, fns=fns: [float(f(*([0.0] * (len(variables) - len(outer)) + list(outer))))
                                               for f in fns])
    n = len(params)
    g = mpmath.matrix(n, n)
    for i in range(n):
        for j in range(i, n):
            def f(*xs, i=i, j=j):
                with np.errstate(all="ignore"):
                    value = scores[i](*xs) * scores[j](*xs) * density(*xs)
                return value if np.isfinite(value) else 0.0
            value, _ = integrate.nquad(f, bounds, opts={"epsabs": 0, "epsrel": 1e-11, "limit": 200})
            g[i, j] = g[j, i] = value
    return g


def _accurate(expr):
    """1 − e^a as −expm1(a), e^a − 1 as expm1(a): near an end not rounded to 0 (the generalized
    exponential's log(1 − e^(−λx)) at x ~ 1e-30)."""
    from sympy.codegen.cfunctions import expm1

    def is_one_minus_exp(node):
        if not (node.is_Add and len(node.args) == 2):
            return False
        c, rest = node.as_coeff_Add()
        k, e = rest.as_coeff_Mul()
        return abs(c) == 1 and k == -c and isinstance(e, sp.exp)

    def rewrite(node):
        c, rest = node.as_coeff_Add()
        return -c * expm1(rest.as_coeff_Mul()[1].args[0])
    return expr.replace(is_one_minus_exp, rewrite)


def _weighted(si, sj, log_density, t):
    """s_i s_j p at a node; a node where the log-density is not a number (inf − inf from exp(b eᵘ)
    overflowing far out in a Gompertz tail) or below e^-3000 contributes nothing."""
    try:
        log_p = log_density(t)
        if mpmath.isnan(log_p) or mpmath.re(log_p) < -3000 or log_p == -mpmath.inf:
            return mpmath.mpf(0)
        value = si(t) * sj(t) * mpmath.exp(log_p)
    except ZeroDivisionError:  # 1 − e^(−λx) rounded to 0 at a node ~1e-30 from an integrable end
        return mpmath.mpf(0)
    return mpmath.mpf(0) if mpmath.isnan(value) and mpmath.re(log_p) < -100 else value


def _series(f, lo: int):
    """Σ_{k ≥ lo} f(k): 1000 terms directly, the tail by Euler–Maclaurin (smooth out there; Richardson/
    Shanks, nsum's default, misjudge a power-law tail such as Yule–Simon's by 4e-4)."""
    head = mpmath.fsum(f(k) for k in range(lo, lo + 1000))
    return head + mpmath.nsum(f, [lo + 1000, mpmath.inf], method="e")


def _integrate(f, support):
    if support == "naturals":
        return _series(f, 0)
    if isinstance(support, dict) and "integers" in support:
        lo, hi = support["integers"]
        hi = mpmath.inf if hi == "oo" else int(hi)
        return _series(f, int(lo)) if hi == mpmath.inf else mpmath.fsum(f(k) for k in range(int(lo), hi + 1))
    if support == "reals":
        return mpmath.quad(f, [-mpmath.inf, -2, 0, 2, mpmath.inf])
    if support == "log-positive":
        return mpmath.quad(f, [-mpmath.inf, -30, -5, -1, 0, 1, 5, 30, mpmath.inf])
    if support == "unit":
        return mpmath.quad(f, [0, 0.5, 1])
    lo, hi = (float(sp.sympify(b)) for b in support["interval"])
    return mpmath.quad(f, [lo, (lo + hi) / 2, hi])


_REFERENCES: dict = {}


def references(path: Path) -> list:
    """[(point, E[s sᵀ])] at the two parameter points, computed once per family."""
    if path not in _REFERENCES:
        spec = tomllib.loads(path.read_text())
        _REFERENCES[path] = [(_point(spec, k), reference_fisher(path, _point(spec, k))) for k in range(2)]
    return _REFERENCES[path]


def fisher_error(path: Path, result: dict) -> float:
    from symgeo.expectation.representation import evaluate
    spec, _, params, _ = _declaration(path)
    worst = 0.0
    for point, ref in references(path):
        at = dict(zip(params, [sp.Float(v, 30) for v in point]))
        n = len(params)
        scale = max(abs(ref[i, i]) for i in range(n))
        for i in range(n):
            for j in range(i, n):
                names = {str(p): sp.Symbol(str(p)) for p in params}  # a parameter may be called beta
                value = evaluate(sp.sympify(result["fisher"][i][j], locals=names).xreplace(
                    {names[str(p)]: v for p, v in at.items()}), {}, 20)
                error = float(abs(value - ref[i, j]) / scale)
                worst = error if np.isnan(error) else max(worst, error)  # NaN is reported, not dropped
    return worst


# -- geomstats, side by side ------------------------------------------------------------------------
# geomstats divides by the pdf, so an infinite support gives NaN where the pdf underflows: a user
# picks a finite window; the widest that gives a finite metric is taken (its own tests use (-10, 10))
WINDOWS = (1e4, 1e3, 1e2, 50, 20)
GEOMSTATS_SUPPORTS = {"reals": [(-w, w) for w in WINDOWS], "positive": [(0, w) for w in WINDOWS],
                      "unit": [(0, 1)]}


def _geomstats():
    """geomstats' FisherRaoMetric (torch backend: autograd of the pdf, scipy quad_vec over the support),
    or None where it is not installed. geomstats 2.8 imports numpy.trapz, which numpy 2 renamed."""
    try:
        os.environ.setdefault("GEOMSTATS_BACKEND", "pytorch")
        if not hasattr(np, "trapz"):
            np.trapz = np.trapezoid
        from geomstats.information_geometry.fisher_rao_metric import FisherRaoMetric
        return FisherRaoMetric
    except Exception:  # noqa: BLE001 - not installed or not importable: the column says so
        return None


class _DeclaredManifold:
    """The declared density as geomstats wants it: point -> (x -> pdf), in torch."""

    def __init__(self, path: Path):
        from numeric.codegen import generate
        from symgeo.load import load_family
        fam = load_family(str(path))
        self.dim = fam.n
        self._pdf = generate([*fam.variables, *fam.params], fam.density, "torch")

    def point_to_pdf(self, point):
        import torch

        def pdf(x):
            xs = torch.as_tensor(np.atleast_1d(x), dtype=torch.float64)
            return self._pdf(xs, *[point[..., i] for i in range(self.dim)]).unsqueeze(-1)
        return pdf


def geomstats_fisher(path: Path):
    """(median seconds per point, relative error against the reference) of geomstats' pdf-based Fisher
    metric, or a reason it does not apply."""
    metric_class = _geomstats()
    if metric_class is None:
        return "geomstats not installed"
    spec = tomllib.loads(path.read_text())
    support = spec.get("support")
    if isinstance(support, dict) and "interval" in support and "variables" not in spec:
        windows = [tuple(float(sp.sympify(b)) for b in support["interval"])]
    elif isinstance(support, str) and support in GEOMSTATS_SUPPORTS:
        windows = GEOMSTATS_SUPPORTS[support]
    else:
        return "n/a (discrete or several variables)"
    import torch
    try:
        manifold = _DeclaredManifold(path)
        times, worst = [], 0.0
        for point, ref in references(path):
            for window in windows:
                start = time.perf_counter()
                g = metric_class(manifold, window).metric_matrix(torch.tensor(point, dtype=torch.float64))
                g = g.reshape(len(point), len(point)).numpy()
                if np.all(np.isfinite(g)):
                    break
            times.append(time.perf_counter() - start)
            ref = np.array(ref.tolist(), dtype=float)
            error = float(np.max(np.abs(g - ref)) / np.max(np.abs(np.diag(ref))))
            worst = error if np.isnan(error) else max(worst, error)
        return float(np.median(times)), worst
    except Exception as exc:  # noqa: BLE001 - geomstats failing on a family is a result, reported
        return f"failed ({type(exc).__name__})"


def unfinished(result: dict) -> str:
    return ", ".join(result.get("unfinished", {})) or "-"


def kind(result: dict) -> str:
    if result.get("fisher") is None:
        return "failed"
    text = json.dumps(result["fisher"])
    if "Integral(" in text:
        return "integral repr."
    if "Sum(" in text:
        return "series repr."
    return "closed form"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--only", action="append", metavar="NAME", help="only this family (repeatable)")
    args = parser.parse_args(argv)
    paths = sorted(FAMILIES.glob("*.toml"))
    if args.quick:
        paths = [p for p in paths if p.stem in QUICK]
    if args.only:
        paths = [p for p in paths if p.stem in args.only]
    print(f"{'family':24} {'params':>6} {'result':16} {'cold s':>7} {'cached s':>8} {'Fisher err':>10}  "
          f"{'geomstats s/pt':>14} {'its error':>9}  unfinished")
    rows = []
    for path in paths:
        with tempfile.TemporaryDirectory() as cache:
            cold, result = derive(path, cache)
            cached, _ = derive(path, cache) if isinstance(result, dict) else (float("nan"), None)
        n = len(tomllib.loads(path.read_text())["params"])
        if isinstance(result, dict) and result.get("fisher") is None:
            result = "; ".join(result["unfinished"].values())
        if isinstance(result, str):
            rows.append((path.stem, n, "failed", cold, cached, float("nan"), "all"))
            print(f"{path.stem:24} {n:>6} {'failed':16} {cold:7.1f} {'':>8} {'':>10}  {result}", flush=True)
            continue
        try:
            err = fisher_error(path, result)
        except Exception as exc:  # noqa: BLE001 - the reference failing is reported, the run goes on
            print(f"  reference failed for {path.stem}: {type(exc).__name__}: {exc}", flush=True)
            err = float("nan")
        rows.append((path.stem, n, kind(result), cold, cached, err, unfinished(result)))
        theirs = geomstats_fisher(path)
        theirs = f"{theirs[0]:14.2f} {theirs[1]:9.1e}" if isinstance(theirs, tuple) else f"{theirs:>24}"
        print(f"{path.stem:24} {n:>6} {kind(result):16} {cold:7.1f} {cached:8.2f} {err:10.1e}  {theirs}  "
              f"{unfinished(result)}", flush=True)
    derived = [r for r in rows if r[2] != "failed"]
    print(f"\n{len(derived)}/{len(rows)} derived; Fisher error ≤ 1e-8: "
          f"{sum(r[5] <= 1e-8 for r in derived)}/{len(derived)}; cold ≤ 30 s: "
          f"{sum(r[3] <= 30 for r in derived)}/{len(derived)}; cached ≤ 1 s: "
          f"{sum(r[4] <= 1 for r in derived)}/{len(derived)}; complete within the budget: "
          f"{sum(r[6] == '-' for r in derived)}/{len(derived)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
