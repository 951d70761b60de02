"""The audit's disagreements, each settled by an independent 40-digit computation.

Every case: symgeo's value (its exact formula, evaluated), the library's value, and a reference written
here from the density alone with mpmath (entropies as −∫ p log p over u = log x, which spreads heavy
tails and extreme shapes over a range tanh-sinh handles). Run: python benchmarks/audit_findings.py
"""
from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import mpmath
import sympy as sp
from scipy import stats

from symgeo.divergence import entropy_at
from symgeo.evaluate import value_at
from symgeo.geometry import Geometry
from symgeo.load import load_family

FAMILIES = Path(__file__).resolve().parents[1] / "derivations"
L = mpmath.log


def symgeo_entropy(name: str, **values) -> float:
    fam = load_family(str(FAMILIES / f"{name}.toml") if (FAMILIES / f"{name}.toml").exists() else name)
    point = {p: sp.Rational(str(values[str(p)])) for p in fam.params}
    return entropy_at(Geometry(fam), point).value


def symgeo_log_density(name: str, x: float, **values) -> float:
    fam = load_family(str(FAMILIES / f"{name}.toml") if (FAMILIES / f"{name}.toml").exists() else name)
    point = {p: sp.Rational(str(values[str(p)])) for p in fam.params}
    return value_at(fam.log_density, {**point, fam.variables[0]: sp.Rational(str(x))})


def entropy_on_log_scale(log_pdf, breaks) -> mpmath.mpf:
    """−∫ p(x) log p(x) dx with x = eᵘ."""
    def integrand(u):
        x = mpmath.exp(u)
        return -mpmath.exp(log_pdf(x) + u) * log_pdf(x)
    return mpmath.quad(integrand, [-mpmath.inf, *breaks, mpmath.inf])


def cases():
    m = mpmath.mpf
    beta_prime = (m("0.01"), m("0.7"))
    yield ("scipy betaprime(0.01, 0.7).entropy()", stats.betaprime(0.01, 0.7).entropy(),
           symgeo_entropy("families/beta_prime", a=0.01, b=0.7),
           entropy_on_log_scale(lambda x: (beta_prime[0] - 1) * L(x) - sum(beta_prime) * L(1 + x)
                                - L(mpmath.beta(*beta_prime)), [-200, -100, -50, -10, 0, 10, 50]))
    c, k, lam = m("0.01"), m("0.7"), m("2.3")
    yield ("scipy burr12(0.01, 0.7, scale=2.3).entropy()", stats.burr12(0.01, 0.7, scale=2.3).entropy(),
           symgeo_entropy("families/burr", c=0.01, k=0.7, lam=2.3),
           entropy_on_log_scale(lambda x: L(c * k / lam) + (c - 1) * L(x / lam) - (k + 1) * L(1 + (x / lam) ** c),
                                [-1000, -300, -100, 0, 100, 300, 1000]))
    c, k = m("1.3"), m("0.001")
    yield ("scipy burr12(1.3, 0.001, scale=2.3).entropy()", stats.burr12(1.3, 0.001, scale=2.3).entropy(),
           symgeo_entropy("families/burr", c=1.3, k=0.001, lam=2.3),
           entropy_on_log_scale(lambda x: L(c * k / lam) + (c - 1) * L(x / lam) - (k + 1) * L(1 + (x / lam) ** c),
                                [-10, 0, 10, 100, 300, 600, 1000, 2000]))
    a, b, p = m("0.01"), m("0.7"), m("2.3")
    yield ("scipy burr(0.01, 2.3, scale=0.7).entropy() (Dagum)", stats.burr(0.01, 2.3, scale=0.7).entropy(),
           symgeo_entropy("families/dagum", a=0.01, b=0.7, p=2.3),
           entropy_on_log_scale(lambda x: L(a * p / x) + a * p * L(x / b) - (p + 1) * L((x / b) ** a + 1),
                                [-3000, -1000, -300, -100, 0, 100, 300]))
    c, x = m("38.25"), m("0.01")
    yield ("scipy levy(scale=38.25).logpdf(0.01)", stats.levy(scale=38.25).logpdf(0.01),
           symgeo_log_density("levy", 0.01, c=38.25),
           L(c / (2 * mpmath.pi)) / 2 - m(3) / 2 * L(x) - c / (2 * x))
    alpha, s = m(2), m("0.7")
    yield ("scipy invweibull(2, scale=0.7).logpdf(0.01) (Fréchet)", stats.invweibull(2, scale=0.7).logpdf(0.01),
           symgeo_log_density("families/frechet", 0.01, alpha=2, s=0.7),
           L(alpha / s) + (-1 - alpha) * L(x / s) - (x / s) ** -alpha)
    r, q = 3, m("0.001")
    yield ("scipy nbinom(3, 0.001).entropy()", stats.nbinom(3, 0.001).entropy(),
           symgeo_entropy("negative_binomial:r=3", p=0.001),
           -mpmath.fsum(_nbinom_plogp(n, r, q) for n in range(120_000)))  # the tail beyond: below e^(-100)
    yield ("scipy laplace(0.3, 0.001).logpdf(-5)", stats.laplace(0.3, 0.001).logpdf(-5.0),
           symgeo_log_density("laplace", -5, mu=0.3, b=0.001), -L(m("0.002")) - m("5.3") / m("0.001"))
    yield ("scipy hypsecant(0.3, 2·0.001/π).logpdf(-5)", stats.hypsecant(0.3, 0.002 / math.pi).logpdf(-5.0),
           symgeo_log_density("families/hyperbolic_secant", -5, mu=0.3, s=0.001),
           -L(m("0.002")) - L(mpmath.cosh(mpmath.pi * m("-5.3") / m("0.002"))))
    kappa, loc, x_vm = m("0.7"), mpmath.pi - m("6.283e-6"), m("-3.1353094682826135")
    yield ("torch VonMises(π − 6.3e-6, 0.7).log_prob(−3.1353)", _torch_von_mises(float(loc), 0.7, float(x_vm)),
           symgeo_log_density("von_mises", float(x_vm), mu=float(loc), kappa=0.7),
           kappa * mpmath.cos(x_vm - loc) - L(2 * mpmath.pi * mpmath.besseli(0, kappa)))


def _nbinom_plogp(n, r, q):
    log_p = mpmath.loggamma(n + r) - mpmath.loggamma(r) - mpmath.loggamma(n + 1) + r * L(q) + n * L(1 - q)
    return mpmath.exp(log_p) * log_p


def _torch_von_mises(loc: float, kappa: float, x: float) -> float:
    import torch
    dist = torch.distributions.VonMises(torch.tensor(loc, dtype=torch.float64), torch.tensor(kappa, dtype=torch.float64))
    return float(dist.log_prob(torch.tensor(x, dtype=torch.float64)))


def main() -> int:
    mpmath.mp.dps = 40
    print("| case | library | symgeo | 40-digit reference | right |\n|---|---|---|---|---|")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, library, ours, reference in cases():
            ref = float(reference)
            right = [who for who, v in (("library", float(library)), ("symgeo", ours))
                     if abs(v - ref) <= 1e-10 * max(1.0, abs(ref))]
            print(f"| {name} | {float(library)!r} | {ours!r} | {mpmath.nstr(reference, 17)} | "
                  f"{' and '.join(right) or 'neither'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
