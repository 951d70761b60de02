"""Audit: libraries users rely on, checked with symgeo.testing against symgeo's exact formulas.

For every family both sides have: torch.distributions (log_prob, entropy, mean, variance and the
kl_divergence registry), scipy.stats (logpdf/logpmf, entropy, mean, var) and geomstats'
information_geometry (metric_matrix, christoffels, dist; optional). Points come from
symgeo.testing.sample_points: moderate values, values near the domain's edges and extreme scales.
Prints library | quantity | family | comparisons | max relative error | verdict, then the first
disagreement of each failing row. Run: python benchmarks/audit.py [--quick] [--only torch,scipy,geomstats]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sympy as sp

from symgeo.family import Chart
from symgeo.load import load_family
from symgeo.testing import compare, sample_points

THRESHOLD = 1e-8  # relative: a disagreement beyond it is investigated
SPECS = Path(__file__).resolve().parents[1] / "derivations"


def family(name: str):
    """A catalog name, or a spec file of derivations/ ("gumbel" → derivations/gumbel.toml)."""
    path = SPECS / f"{name}.toml"
    return load_family(str(path)) if path.exists() else load_family(name)


def gamma_mean_chart():
    """geomstats' gamma coordinates (κ, γ = mean = κθ), declared as a chart of symgeo's gamma."""
    fam = family("gamma")
    k, theta = fam.params
    kappa, mean = sp.Symbol("kappa", positive=True), sp.Symbol("gamma_mean", positive=True)
    return fam.reparametrize(Chart("mean", (kappa, mean), ((k, kappa), (theta, mean / kappa))))


# -- torch.distributions ---------------------------------------------------------------------------
def torch_checks():
    import torch
    from torch import distributions as D
    torch.set_default_dtype(torch.float64)

    def t(v):
        return torch.as_tensor(v, dtype=torch.float64)
    laws = {  # symgeo family -> torch distribution from symgeo's parameters, in order
        "normal": lambda mu, s: D.Normal(t(mu), t(s)),
        "gamma": lambda k, th: D.Gamma(t(k), 1 / t(th)),
        "exponential": lambda lam: D.Exponential(t(lam)),
        "beta": lambda a, b: D.Beta(t(a), t(b)),
        "poisson": lambda lam: D.Poisson(t(lam)),
        "bernoulli": lambda p: D.Bernoulli(probs=t(p)),
        "geometric": lambda p: D.Geometric(probs=t(p)),
        "binomial:n=10": lambda p: D.Binomial(10, probs=t(p)),
        "negative_binomial:r=3": lambda p: D.NegativeBinomial(3, probs=1 - t(p)),  # torch counts the other outcome
        "cauchy": lambda x0, g: D.Cauchy(t(x0), t(g)),
        "laplace": lambda mu, b: D.Laplace(t(mu), t(b)),
        "gumbel": lambda mu, beta: D.Gumbel(t(mu), t(beta)),
        "weibull": lambda k, lam: D.Weibull(t(lam), t(k)),
        "lognormal": lambda mu, s: D.LogNormal(t(mu), t(s)),
        "student_t": lambda mu, s: D.StudentT(5.0, t(mu), t(s)),
        "von_mises": lambda mu, kappa: D.VonMises(t(mu), t(kappa)),
        "inverse_gamma": lambda a, b: D.InverseGamma(t(a), t(b)),
        "half_normal": lambda s: D.HalfNormal(t(s)),
        "dirichlet": lambda *a: D.Dirichlet(t(a)),
        "categorical:k=3": lambda p1, p2: D.Categorical(probs=t([p1, p2, 1 - p1 - p2])),
    }
    # no mean (Cauchy); circular mean ≠ E[x] on (−π, π]; torch's categorical moments are of the index
    moments_undefined = {"cauchy", "von_mises", "categorical:k=3"}
    for name, law in laws.items():
        yield ("torch", "log_density", name,
               lambda x, *p, law=law: float(law(*p).log_prob(t(x))), {})
        yield "torch", "entropy", name, lambda *p, law=law: float(law(*p).entropy()), {}
        if name not in moments_undefined:
            yield "torch", "mean", name, lambda *p, law=law: law(*p).mean.numpy(), {}
            yield "torch", "variance", name, lambda *p, law=law: law(*p).variance.numpy(), {}
        same = (type(law(*_some_point(name))),) * 2
        if same in D.kl._KL_REGISTRY:
            yield ("torch", "kl", name, lambda p1, p2, law=law: float(D.kl_divergence(law(*p1), law(*p2))),
                   {})


def _some_point(name):
    fam = family(name)
    return [float(v) for p, v in fam.sample_point(0).items() if p in fam.params]


# -- scipy.stats -----------------------------------------------------------------------------------
def scipy_checks():
    from scipy import stats
    laws = {
        "normal": lambda mu, s: stats.norm(mu, s),
        "gamma": lambda k, th: stats.gamma(k, scale=th),
        "exponential": lambda lam: stats.expon(scale=1 / lam),
        "beta": lambda a, b: stats.beta(a, b),
        "poisson": lambda lam: stats.poisson(lam),
        "bernoulli": lambda p: stats.bernoulli(p),
        "geometric": lambda p: stats.geom(p, loc=-1),  # scipy counts trials, symgeo failures
        "binomial:n=10": lambda p: stats.binom(10, p),
        "negative_binomial:r=3": lambda p: stats.nbinom(3, p),
        "cauchy": lambda x0, g: stats.cauchy(x0, g),
        "laplace": lambda mu, b: stats.laplace(mu, b),
        "logistic": lambda mu, s: stats.logistic(mu, s),
        "gumbel": lambda mu, beta: stats.gumbel_r(mu, beta),
        "weibull": lambda k, lam: stats.weibull_min(k, scale=lam),
        "lognormal": lambda mu, s: stats.lognorm(s, scale=math.exp(mu)),
        "student_t": lambda mu, s: stats.t(5, mu, s),
        "von_mises": lambda mu, kappa: stats.vonmises(kappa, loc=mu),
        "inverse_gamma": lambda a, b: stats.invgamma(a, scale=b),
        "inverse_gaussian": lambda mu, lam: stats.invgauss(mu / lam, scale=lam),
        "rayleigh": lambda s: stats.rayleigh(scale=s),
        "half_normal": lambda s: stats.halfnorm(scale=s),
        "maxwell": lambda a: stats.maxwell(scale=a),
        "levy": lambda c: stats.levy(scale=c),
    }
    shape_families = {  # derivations/families/*.toml, in their declared parameter order
        "families/beta_prime": lambda a, b: stats.betaprime(a, b),
        "families/burr": lambda c, k, lam: stats.burr12(c, k, scale=lam),
        "families/dagum": lambda a, b, p: stats.burr(a, p, scale=b),  # scipy's Burr III is Dagum's law
        "families/frechet": lambda alpha, s: stats.invweibull(alpha, scale=s),
        "families/gompertz": lambda eta, b: stats.gompertz(eta, scale=1 / b),
        "families/log_logistic": lambda alpha, beta: stats.fisk(beta, scale=alpha),
        "families/lomax": lambda alpha, lam: stats.lomax(alpha, scale=lam),
        "families/nakagami": lambda m, omega: stats.nakagami(m, scale=math.sqrt(omega)),
        "families/generalized_gamma": lambda a, d, p: stats.gengamma(d / p, p, scale=a),
        "families/generalized_normal": lambda mu, alpha, beta: stats.gennorm(beta, mu, alpha),
        "families/hyperbolic_secant": lambda mu, s: stats.hypsecant(mu, 2 * s / math.pi),
        "families/log_gamma": lambda mu, k: stats.loggamma(k, mu),
        "families/birnbaum_saunders": lambda alpha, beta: stats.fatiguelife(alpha, scale=beta),
    }
    discrete = {"poisson", "bernoulli", "geometric", "binomial:n=10", "negative_binomial:r=3"}
    moments_undefined = {"cauchy", "von_mises", "levy", *shape_families}  # infinite for some shapes
    for name, law in {**laws, **shape_families}.items():
        method = "logpmf" if name in discrete else "logpdf"
        yield ("scipy", "log_density", name,
               lambda x, *p, law=law, method=method: float(getattr(law(*p), method)(x)), {})
        yield "scipy", "entropy", name, lambda *p, law=law: float(law(*p).entropy()), {}
        if name not in moments_undefined:
            yield "scipy", "mean", name, lambda *p, law=law: float(law(*p).mean()), {}
            yield "scipy", "variance", name, lambda *p, law=law: float(law(*p).var()), {}
    yield "scipy", "entropy", "dirichlet", lambda *a: float(stats.dirichlet(list(a)).entropy()), {}


# -- geomstats --------------------------------------------------------------------------------------
def geomstats_checks():
    os.environ.setdefault("GEOMSTATS_BACKEND", "pytorch")  # christoffels need automatic differentiation
    if not hasattr(np, "trapz"):  # geomstats 2.8 imports numpy.trapz, removed in numpy 2.4
        np.trapz = np.trapezoid
    import torch
    from geomstats.information_geometry import (
        beta,
        binomial,
        categorical,
        dirichlet,
        exponential,
        gamma,
        geometric,
        normal,
        poisson,
    )
    torch.set_default_dtype(torch.float64)

    def t(*v):
        return torch.tensor(v, dtype=torch.float64)
    spaces = {
        "normal": normal.NormalDistributions(sample_dim=1),
        gamma_mean_chart: gamma.GammaDistributions(),
        "beta": beta.BetaDistributions(),
        "exponential": exponential.ExponentialDistributions(),
        "poisson": poisson.PoissonDistributions(),
        "geometric": geometric.GeometricDistributions(),
        "binomial:n=10": binomial.BinomialDistributions(10),
        "dirichlet": dirichlet.DirichletDistributions(3),
    }
    closed_distance = {"normal", "exponential", "poisson", "geometric", "binomial:n=10"}
    for name, space in spaces.items():
        metric = space.metric
        yield "geomstats", "fisher", name, lambda *p, m=metric: m.metric_matrix(t(*p)).numpy(), {}
        if name not in ("exponential", "poisson", "geometric", "binomial:n=10"):
            yield "geomstats", "christoffel", name, lambda *p, m=metric: m.christoffels(t(*p)).numpy(), {}
        if name in closed_distance:
            yield "geomstats", "distance", name, lambda a, b, m=metric: float(m.dist(t(*a), t(*b))), {}
    simplex = categorical.CategoricalDistributions(3)
    yield ("geomstats", "distance", "categorical:k=3",
           lambda a, b: float(simplex.metric.dist(t(a[0], a[1], 1 - a[0] - a[1]), t(b[0], b[1], 1 - b[0] - b[1]))),
           {})


SOURCES = {"torch": torch_checks, "scipy": scipy_checks, "geomstats": geomstats_checks}


def run(only, n: int) -> list:
    rows = []
    for source in only:
        try:
            checks = list(SOURCES[source]())
        except ImportError as err:
            print(f"{source}: not installed ({err}); skipped", file=sys.stderr)
            continue
        for library, quantity, name, fn, options in checks:
            fam = name() if callable(name) else family(name)
            label = name.__name__ if callable(name) else name
            start = time.perf_counter()
            points = sample_points(fam, n, seed=1)
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                try:
                    report = compare(fn, fam, quantity, points=points, n=n, **options)
                except Exception as err:  # noqa: BLE001 (symgeo has no such quantity here: said in the table)
                    rows.append((library, quantity, label, 0, math.nan, f"not compared: {err}"[:70], []))
                    continue
            if report.failures and all("raised NotImplementedError" in f for f in report.failures):
                rows.append((library, quantity, label, 0, math.nan, "not implemented by the library", []))
                continue
            verdict = "agrees" if report.passed and report.max_relative <= THRESHOLD else \
                f"{len(report.failures)} disagree" if report.failures else "agrees (atol)"
            rows.append((library, quantity, label, report.comparisons, report.max_relative, verdict, report.failures))
            print(f"  {library:9} {quantity:12} {label:24} {report.comparisons:5d}  "
                  f"{report.max_relative:9.2e}  {verdict}  ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return rows


def table(rows) -> str:
    head = ("library", "quantity", "family", "comparisons", "max rel. error", "verdict")
    body = [(lib, q, fam, str(c), "—" if math.isnan(e) else f"{e:.1e}", v) for lib, q, fam, c, e, v, _ in rows]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in body]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 points per family instead of 12")
    parser.add_argument("--only", default="torch,scipy,geomstats")
    parser.add_argument("-n", type=int, default=None)
    args = parser.parse_args(argv)
    n = args.n or (5 if args.quick else 12)
    rows = run([s.strip() for s in args.only.split(",") if s.strip()], n)
    print(table(rows))
    failing = [r for r in rows if r[6]]
    for library, quantity, name, *_, failures in failing:
        print(f"\n{library} {quantity} {name}: {len(failures)} disagreement(s); the first:\n  {failures[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
