"""Divergences and entropy of families that are not exponential families, against quadrature written
here (scipy.stats densities, scipy.integrate.quad), literature closed forms and the Fisher metric."""
import itertools
import json
import math

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, stats

from symgeo.divergence import KINDS, NUMERIC, divergence_at, entropy_at
from symgeo.errors import SymgeoError
from symgeo.geometry import Geometry
from symgeo.load import load_family
from symgeo.spec import family_from_dict

# family, scipy law from its parameters, two points, lower end of the support
LAWS = {
    "cauchy": (lambda x0, g: stats.cauchy(x0, g), (0.3, 1.2), (-0.8, 0.5)),
    "laplace": (lambda mu, b: stats.laplace(mu, b), (0.0, 1.0), (1.5, 2.5)),
    "logistic": (lambda mu, s: stats.logistic(mu, s), (0.2, 0.7), (-1.0, 1.9)),
    "weibull": (lambda k, lam: stats.weibull_min(k, scale=lam), (3.5, 1.6), (2.0, 1.0)),
    "student_t": (lambda mu, s: stats.t(5, mu, s), (0.0, 1.0), (0.9, 0.6)),
}
GUMBEL = {"name": "gumbel", "variable": "x", "support": "reals", "params": {"mu": "real", "beta": "positive"},
          "log_density": "-log(beta) - (x - mu)/beta - exp(-(x - mu)/beta)"}
GUMBEL_KL = ("log(beta_2/beta_1) - EulerGamma - 1 + (mu_1 - mu_2)/beta_2 + EulerGamma*beta_1/beta_2"
             " + exp((mu_2 - mu_1)/beta_2)*gamma(1 + beta_1/beta_2)")


def _geometry(name):
    if name == "gumbel":
        return Geometry(family_from_dict({**GUMBEL, "closed_forms": {"kl": GUMBEL_KL}}), cache=False)
    return Geometry(load_family(name), cache=False)


def _law(name):
    if name == "gumbel":
        return lambda mu, beta: stats.gumbel_r(mu, beta), (0.0, 1.0), (1.0, 2.0)
    return LAWS[name]


def _quad(f, law, *others):
    """∫ f over the support, in pieces between the laws' medians (where Laplace has its kinks)."""
    lo, hi = law.support()
    cuts = sorted({float(x.median()) for x in (law, *others)})
    ends = [lo, *[c for c in cuts if lo < c < hi], hi]

    def safe(x):
        value = f(x)
        return value if math.isfinite(value) else 0.0  # 0·log 0 at an infinite end
    return sum(integrate.quad(safe, a, b, epsabs=1e-14, epsrel=1e-12, limit=400)[0] for a, b in itertools.pairwise(ends))


def reference(kind, law1, law2, order=None):
    """The divergence by scipy quadrature of the two scipy densities."""
    def kl(a, b):
        return _quad(lambda x: a.pdf(x) * (a.logpdf(x) - b.logpdf(x)), a, b)

    def affinity(lam):
        return _quad(lambda x: math.exp(lam * law1.logpdf(x) + (1 - lam) * law2.logpdf(x)), law1, law2)
    if kind == "kl":
        return kl(law1, law2)
    if kind == "reverse_kl":
        return kl(law2, law1)
    if kind == "jeffreys":
        return kl(law1, law2) + kl(law2, law1)
    if kind == "renyi":
        return math.log(affinity(order)) / (order - 1)
    if kind == "alpha":
        return 4 / (1 - order ** 2) * (1 - affinity((1 - order) / 2))
    half = affinity(0.5)
    return -math.log(half) if kind == "bhattacharyya" else 1 - half


ORDERS = {"renyi": sp.Rational(3, 2), "alpha": sp.Rational(1, 3)}
NAMES = [*LAWS, "gumbel"]


def _points(geo, values):
    return {p: sp.nsimplify(v) for p, v in zip(geo.params, values)}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", KINDS)
def test_divergence_equals_scipy_quadrature(name, kind):
    geo = _geometry(name)
    law_of, a, b = _law(name)
    order = ORDERS.get(kind)
    got = divergence_at(geo, kind, _points(geo, a), _points(geo, b), order)
    expected = reference(kind, law_of(*a), law_of(*b), None if order is None else float(order))
    assert math.isfinite(got.value)
    assert got.value == pytest.approx(expected, rel=1e-8, abs=1e-11)
    assert got.error <= 1e-10 * max(1.0, abs(got.value))
    declared = kind in ("kl", "reverse_kl", "jeffreys") and name in ("cauchy", "laplace", "weibull", "gumbel")
    assert got.method == ("declared closed form" if declared else NUMERIC)


# literature closed forms, typed here independently of the catalog
def cauchy_kl(a1, g1, a2, g2):
    return math.log(((g1 + g2) ** 2 + (a1 - a2) ** 2) / (4 * g1 * g2))


def laplace_kl(m1, b1, m2, b2):
    d = abs(m1 - m2)
    return math.log(b2 / b1) + d / b2 + b1 / b2 * math.exp(-d / b1) - 1


def weibull_kl(k1, l1, k2, l2):
    euler = 0.5772156649015329
    return (math.log(k1 / l1 ** k1) - math.log(k2 / l2 ** k2) + (k1 - k2) * (math.log(l1) - euler / k1)
            + (l1 / l2) ** k2 * math.gamma(k2 / k1 + 1) - 1)


@pytest.mark.parametrize("name, form", [("cauchy", cauchy_kl), ("laplace", laplace_kl), ("weibull", weibull_kl)])
def test_declared_kl_equals_literature_at_random_pairs(name, form):
    geo = _geometry(name)
    rng = np.random.default_rng(3)
    for _ in range(4):
        a = (rng.uniform(0.5, 3), rng.uniform(0.5, 3)) if name == "weibull" else (rng.normal(), rng.uniform(0.3, 3))
        b = (rng.uniform(0.5, 3), rng.uniform(0.5, 3)) if name == "weibull" else (rng.normal(), rng.uniform(0.3, 3))
        p1, p2 = _points(geo, np.round(a, 3)), _points(geo, np.round(b, 3))
        got = divergence_at(geo, "kl", p1, p2)
        assert got.value == pytest.approx(form(*np.round(a, 3), *np.round(b, 3)), rel=1e-10)


def test_a_wrong_declared_form_is_caught_by_quadrature():
    wrong = GUMBEL_KL.replace("- 1 +", "- 1.01 +")
    geo = Geometry(family_from_dict({**GUMBEL, "closed_forms": {"kl": wrong}}), cache=False)
    with pytest.raises(SymgeoError, match="declaration is wrong"):
        divergence_at(geo, "kl", _points(geo, (0, 1)), _points(geo, (1, 2)))


def test_spec_closed_forms_are_checked_when_read():
    with pytest.raises(SymgeoError, match="unknown kind"):
        family_from_dict({**GUMBEL, "closed_forms": {"entropy": "1"}})
    with pytest.raises(SymgeoError, match="not of the variable"):
        family_from_dict({**GUMBEL, "closed_forms": {"kl": "x*mu_1"}})
    with pytest.raises(SymgeoError, match="not allowed"):
        family_from_dict({**GUMBEL, "closed_forms": {"kl": "__import__('os')"}})


# second order: D(ξ, ξ + ε v) ≈ c ε² vᵀ g v, with g the Fisher metric derived symbolically
FACTOR = {"kl": 0.5, "reverse_kl": 0.5, "jeffreys": 1.0, "renyi": 0.75, "alpha": 0.5, "bhattacharyya": 0.125,
          "hellinger_squared": 0.125}


@pytest.mark.parametrize("name", ["cauchy", "logistic", "weibull"])
@pytest.mark.parametrize("kind", KINDS)
def test_second_order_is_the_fisher_metric(name, kind):
    geo = _geometry(name)
    _, a, _ = _law(name)
    at = _points(geo, a)
    g = np.array(geo.fisher.xreplace(at).evalf(30).tolist(), dtype=float)
    v = np.array([0.6, -0.8])
    eps = sp.Rational(1, 2000)
    moved = {p: at[p] + eps * sp.nsimplify(vi) for p, vi in zip(geo.params, v)}
    got = divergence_at(geo, kind, at, moved, ORDERS.get(kind)).value / float(eps) ** 2
    assert got == pytest.approx(FACTOR[kind] * v @ g @ v, rel=5e-3)


ENTROPY = {
    "cauchy": (lambda x0, g: stats.cauchy(x0, g), (0.3, 1.7)),
    "laplace": (lambda mu, b: stats.laplace(mu, b), (0.0, 0.4)),
    "logistic": (lambda mu, s: stats.logistic(mu, s), (1.0, 3.0)),
    "weibull": (lambda k, lam: stats.weibull_min(k, scale=lam), (0.7, 2.0)),
    "student_t": (lambda mu, s: stats.t(5, mu, s), (0.0, 2.0)),
    "gumbel": (lambda mu, b: stats.gumbel_r(mu, b), (1.0, 0.5)),
}


@pytest.mark.parametrize("name", list(ENTROPY))
def test_entropy_of_general_families_equals_scipy(name):
    geo = _geometry(name)
    law, a = ENTROPY[name]
    got = entropy_at(geo, _points(geo, a))
    assert got.method == "closed form"
    assert got.value == pytest.approx(float(law(*a).entropy()), rel=1e-9)


@pytest.mark.parametrize("name, a, b, order", [
    ("weibull", (2, 1), (sp.Rational(7, 2), sp.Rational(8, 5)), sp.Rational(3, 2)),  # p₂^(−½) beats p₁^(3/2)
    ("laplace", (0, 1), (0, sp.Rational(1, 2)), 3),  # exp((2/b₂ − 3/b₁)|x|) with 2/b₂ > 3/b₁
    ("logistic", (0, 1), (0, sp.Rational(1, 3)), 2)])
def test_an_infinite_renyi_divergence_is_refused_not_approximated(name, a, b, order):
    from symgeo.errors import NumericalError
    geo = _geometry(name)
    with pytest.raises(NumericalError, match="did not converge|probably infinite"):
        divergence_at(geo, "renyi", _points(geo, a), _points(geo, b), order)


def test_a_finite_renyi_divergence_near_the_edge_is_answered():
    """Laplace with equal locations: ∫ p₁^a p₂^(1−a) = (2b₁)^(−a) (2b₂)^(a−1) · 2/(a/b₁ − (a−1)/b₂)."""
    geo = _geometry("laplace")
    a, b1, b2 = 3, 1.0, 1 / 1.4
    exact = math.log((2 * b1) ** -a * (2 * b2) ** (a - 1) * 2 / (a / b1 - (a - 1) / b2)) / (a - 1)
    got = divergence_at(geo, "renyi", _points(geo, (0, 1)), _points(geo, (0, sp.Rational(5, 7))), 3)
    assert got.value == pytest.approx(exact, rel=1e-10)


def test_orders_are_checked():
    geo = _geometry("cauchy")
    p = _points(geo, (0, 1))
    for kind, order, message in [("renyi", None, "needs an order"), ("renyi", 1, "positive and ≠ 1"),
                                 ("renyi", -2, "positive"), ("alpha", -1, "KL divergences"),
                                 ("kl", 2, "takes no order"), ("tv", None, "unknown divergence")]:
        with pytest.raises(SymgeoError, match=message):
            divergence_at(geo, kind, p, p, order)


def test_cli_says_how_each_value_was_obtained(capsys):
    from symgeo.cli import main
    assert main(["divergence", "logistic", "--kind", "bhattacharyya", "--from", "mu=0,s=1", "--to", "mu=1,s=2",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == NUMERIC and out["error"] < 1e-12 and out["formula"] is None
    assert out["bhattacharyya"] == pytest.approx(reference("bhattacharyya", stats.logistic(0, 1),
                                                           stats.logistic(1, 2)), rel=1e-8)
    assert main(["kl", "cauchy", "--from", "x0=0,gamma=1", "--to", "x0=1,gamma=2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "declared closed form" and out["exact"] == "log(5/4)"
    assert main(["entropy", "laplace", "--at", "mu=0,b=2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["entropy"] == pytest.approx(1 + math.log(4))
    assert main(["divergence", "normal", "--kind", "renyi", "--from", "mu=0,sigma=1", "--to", "mu=1,sigma=1"]) == 2
    assert main(["entropy", "binomial", "--at", "p=1/2"]) == 2  # n unset: it bounds the entropy's Sum
    assert main(["kl", "binomial", "--from", "p=1/2", "--to", "p=1/3"]) == 2


def test_a_narrow_entropy_representation_is_integrated_around_its_peak():
    """The inverse Gaussian's entropy holds E[log x] as an integral times e^(λ/μ); at λ = 1000 the integrand
    is 1e-336 and peaked at μ: once integrated at mpmath's absolute tolerance, it came out −2.03."""
    geo = _geometry("inverse_gaussian")
    got = entropy_at(geo, _points(geo, (1.3, 1000)))
    assert got.value == pytest.approx(float(stats.invgauss(1.3 / 1000, scale=1000).entropy()), rel=1e-10)
