"""Dual geometry: skewness, α-connections, dual coordinates, divergences, statistics (issue 3)."""
import mpmath
import numpy as np
import pytest
import scipy.stats as st
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as hs

from symgeo import Geometry, catalog
from symgeo import bounds as B
from symgeo import divergence as V
from symgeo import duality as D
from symgeo.fisher import score
from symgeo.expectation import expectations
from symgeo.geometry import ALPHA

EXPONENTIAL = [n for n in catalog.names() if catalog.get(n).is_exponential]


def _zero(arr):
    return all(sp.simplify(sp.expand_func(e)) == 0 for e in sp.flatten(arr.tolist() if hasattr(arr, "tolist") else arr))


@pytest.mark.parametrize("name", EXPONENTIAL)
def test_dual_flatness_every_exponential_family(name, geometry):
    assert D.dual_flatness(geometry(name)) == {"e_flat_in_natural": True, "m_flat_in_expectation": True}


@pytest.mark.parametrize("name", ["normal", "gamma", "beta", "poisson", "categorical:k=3", "von_mises", "cauchy"])
def test_duality_identity_symbolic_alpha(name, geometry):
    assert _zero(D.duality_defect(geometry(name), ALPHA))


@pytest.mark.parametrize("name", ["normal", "gamma", "beta", "inverse_gaussian", "categorical:k=3", "von_mises"])
@pytest.mark.parametrize("alpha", [1, -1])
def test_alpha_curvature_vanishes_at_plus_minus_one(name, alpha, geometry):
    assert _zero(geometry(name).riemann(alpha))


def test_alpha_curvature_of_normal_is_one_minus_alpha_squared(geometry):
    # Amari: the α-Gaussian curvature of the normal family is −(1 − α²)/2
    g = geometry("normal")
    R = g.riemann(ALPHA)
    K = sp.simplify(R[0, 1, 0, 1] / g.fisher.det())
    assert sp.simplify(K + (1 - ALPHA**2) / 2) == 0


@pytest.mark.parametrize("name", ["normal", "poisson", "bernoulli", "inverse_gaussian", "exponential", "rayleigh"])
def test_e_and_m_connections_vanish_in_their_charts(name, geometry):
    g = geometry(name)
    assert D.is_flat(D.in_chart(g, D.natural_chart(g)), 1)
    assert D.is_flat(D.in_chart(g, D.expectation_chart(g)), -1)


@pytest.mark.parametrize("name", ["normal", "poisson", "bernoulli", "exponential", "geometric"])
def test_skewness_equals_expectation_of_score_cubed(name, geometry):
    g = geometry(name)
    fam = g.family
    s = score(fam)
    n = fam.n
    triples = [(i, j, k) for i in range(n) for j in range(i, n) for k in range(j, n)]
    direct = expectations(fam, [s[i] * s[j] * s[k] for i, j, k in triples], 60).values
    for (i, j, k), v in zip(triples, direct):
        assert sp.simplify(g.skewness[i, j, k] - v) == 0


def test_skewness_in_natural_chart_is_third_derivative_of_a(geometry):
    g = geometry("gamma", "natural")
    ef = g.family
    for i, j, k in [(0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1)]:
        third = sp.diff(ef.log_partition, ef.natural[i], ef.natural[j], ef.natural[k])
        assert sp.simplify(g.skewness[i, j, k] - third.xreplace(dict(zip(ef.natural, g.params)))) == 0


@pytest.mark.parametrize("name", ["normal", "poisson", "inverse_gaussian", "bernoulli"])
def test_fisher_in_eta_is_inverse_of_fisher_in_theta(name, geometry):
    g = geometry(name)
    g_theta = D.in_chart(g, D.natural_chart(g))
    g_eta = D.in_chart(g, D.expectation_chart(g))
    theta_of_eta = D.natural_from_expectation(g)
    sub = {t: theta_of_eta[s] for t, s in zip(g_theta.params, theta_of_eta)}
    product = g_eta.fisher * g_theta.fisher.xreplace(sub)
    point = g_eta.family.sample_point()  # the image of an interior point of the original chart
    value = np.array(product.xreplace(point).evalf(30), dtype=float)
    assert np.allclose(value, np.eye(g.family.n), atol=1e-12)


def test_mixed_coordinates_are_orthogonal(geometry):
    g = geometry("normal")
    mixed = D.in_chart(g, D.mixed_chart(g, [0]))
    assert sp.simplify(mixed.fisher[0, 1]) == 0 and mixed.fisher[0, 0] != 0


def test_dual_potential_is_negative_entropy_for_normal(geometry):
    g = geometry("normal")
    e1, e2 = D.expectation_chart(g).params
    star = D.dual_potential(g)
    mu, sigma = g.params
    entropy = V.entropy(g)
    assert sp.simplify(star.xreplace({e1: mu, e2: sigma**2 + mu**2}) + entropy) == 0
    # ∇A* = θ
    theta = D.natural_from_expectation(g)
    assert [sp.simplify(sp.diff(star, e) - t) for e, t in zip((e1, e2), theta.values())] == [0, 0]


@settings(max_examples=30, deadline=None)
@given(m=hs.floats(-3, 3), s=hs.floats(0.2, 4))
def test_theta_eta_round_trip_normal(m, s):
    g = Geometry(catalog.get("normal"))
    mu, sigma = g.params
    point = {mu: sp.nsimplify(round(m, 4)), sigma: sp.nsimplify(round(s, 4))}
    eta = [e.xreplace(point) for e in g.expectation_params]
    theta_of_eta = D.natural_from_expectation(g)
    etas = D.expectation_chart(g).params
    back = [t.xreplace(dict(zip(etas, eta))) for t in theta_of_eta.values()]
    assert [sp.simplify(b - t.xreplace(point)) for b, t in zip(back, g.family.natural_of_params)] == [0, 0]


@settings(max_examples=30, deadline=None)
@given(v=hs.floats(0.05, 0.95))
def test_theta_eta_round_trip_bernoulli(v):
    g = Geometry(catalog.get("bernoulli"))
    (p,) = g.params
    theta_of_eta = D.natural_from_expectation(g)
    (eta,) = D.expectation_chart(g).params
    value = sp.nsimplify(round(v, 4))
    assert sp.simplify(list(theta_of_eta.values())[0].xreplace({eta: value}) - sp.log(value / (1 - value))) == 0


SCIPY = {"normal": lambda p: st.norm(float(p["mu"]), float(p["sigma"])),
         "gamma": lambda p: st.gamma(float(p["k"]), scale=float(p["theta"])),
         "beta": lambda p: st.beta(float(p["a"]), float(p["b"])),
         "poisson": lambda p: st.poisson(float(p["lam"])),
         "exponential": lambda p: st.expon(scale=1 / float(p["lam"]))}


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_expectation_params_equal_monte_carlo_mean_of_stats(name, geometry):
    g = geometry(name)
    point = g.family.sample_point()
    dist = SCIPY[name]({str(k): v for k, v in point.items()})
    xs = dist.rvs(size=400_000, random_state=np.random.default_rng(3))
    (x,) = g.family.variables
    for stat, eta in zip(g.exponential_family.stats, g.expectation_params):
        vals = np.asarray(sp.lambdify(x, stat, "numpy")(xs), dtype=float) * np.ones_like(xs, dtype=float)
        assert abs(vals.mean() - float(sp.N(eta.xreplace(point)))) < 6 * vals.std() / np.sqrt(xs.size)


def _numeric_kl(g, p1, p2):
    fam = g.family
    (x,) = fam.variables
    l1, l2 = fam.log_density.xreplace(p1), fam.log_density.xreplace(p2)
    f1 = sp.lambdify(x, l1, "mpmath")
    f2 = sp.lambdify(x, l2, "mpmath")
    lo, hi = fam.support.lo, fam.support.hi
    if fam.support.discrete:
        top = mpmath.inf if hi == sp.oo else int(hi.xreplace(p1))
        return float(mpmath.nsum(lambda t: mpmath.exp(f1(t)) * (f1(t) - f2(t)), [int(lo), top]))
    a = -mpmath.inf if lo == -sp.oo else float(sp.N(lo))
    b = mpmath.inf if hi == sp.oo else float(sp.N(hi))
    return float(mpmath.quad(lambda t: mpmath.exp(f1(t)) * (f1(t) - f2(t)), [a, b]))


@pytest.mark.parametrize("name", ["normal", "gamma", "beta", "poisson", "exponential", "inverse_gaussian", "lognormal",
                                  "geometric", "negative_binomial:r=3", "rayleigh", "inverse_gamma", "von_mises",
                                  "bernoulli", "binomial:n=5"])
def test_kl_bregman_equals_direct_integral(name, geometry):
    g = geometry(name)
    a, b = V.pair_symbols(g)
    formula = V.kl(g, a, b)
    p1, p2 = g.family.sample_point(0), g.family.sample_point(1)
    value = formula.xreplace({a[k]: v for k, v in p1.items()}).xreplace({b[k]: v for k, v in p2.items()})
    assert float(sp.N(value, 30)) == pytest.approx(_numeric_kl(g, p1, p2), rel=1e-10)


def test_kl_dirichlet_against_monte_carlo(geometry):
    g = geometry("dirichlet:k=3")
    a, b = V.pair_symbols(g)
    al1, al2 = [1.5, 2.0, 3.0], [2.5, 1.0, 2.0]
    value = float(V.kl(g, a, b).xreplace({a[p]: sp.nsimplify(v) for p, v in zip(g.params, al1)})
                  .xreplace({b[p]: sp.nsimplify(v) for p, v in zip(g.params, al2)}))
    xs = st.dirichlet(al1).rvs(size=400_000, random_state=np.random.default_rng(5))
    diff = st.dirichlet(al1).logpdf(xs.T) - st.dirichlet(al2).logpdf(xs.T)
    assert abs(diff.mean() - value) < 6 * diff.std() / np.sqrt(len(diff))


@pytest.mark.parametrize("name", [n for n in EXPONENTIAL if n not in ("multivariate_normal",)])
def test_kl_hessian_is_fisher_every_exponential_family(name, geometry):
    g = geometry(name)
    a, b = V.pair_symbols(g)
    d = V.kl(g, a, b)
    point = g.family.sample_point()
    at = {**{a[p]: point[p] for p in g.params}, **{b[p]: point[p] for p in g.params}}
    fixed = {k: v for k, v in point.items() if k not in g.params}
    for i, pi in enumerate(g.params):
        for j, pj in enumerate(g.params):
            h = sp.diff(d, b[pi], b[pj]).xreplace(at).xreplace(fixed)
            assert float(sp.N(h - g.fisher[i, j].xreplace(point), 30)) == pytest.approx(0, abs=1e-20)


DIVERGENCES = [("kl", lambda g, a, b: V.kl(g, a, b), sp.Rational(1, 2)),
               ("reverse_kl", lambda g, a, b: V.reverse_kl(g, a, b), sp.Rational(1, 2)),
               ("jeffreys", lambda g, a, b: V.jeffreys(g, a, b), 1),
               ("alpha=1/3", lambda g, a, b: V.alpha_divergence(g, a, b, sp.Rational(1, 3)), sp.Rational(1, 2)),
               ("renyi=2", lambda g, a, b: V.renyi(g, a, b, 2), 1),
               ("bhattacharyya", lambda g, a, b: V.bhattacharyya(g, a, b), sp.Rational(1, 8)),
               ("hellinger", lambda g, a, b: V.hellinger_squared(g, a, b), sp.Rational(1, 8))]


@pytest.mark.parametrize("name", ["normal", "gamma", "poisson", "bernoulli"])
@pytest.mark.parametrize("label,div,factor", DIVERGENCES)
def test_divergence_hessian_is_multiple_of_fisher(name, label, div, factor, geometry):
    """D(ξ, ξ + t v) = factor · t² vᵀ g v + O(t³): the seed's "Fisher = second derivative of KL"."""
    g = geometry(name)
    a, b = V.pair_symbols(g)
    d = div(g, a, b)
    t = sp.Symbol("t")
    point = g.family.sample_point()
    v = [sp.Rational(1, 3) + sp.Rational(i, 5) for i in range(g.family.n)]
    path = {a[p]: point[p] for p in g.params}
    path.update({b[p]: point[p] + t * vi for p, vi in zip(g.params, v)})
    second = sp.diff(d.xreplace(path), t, 2).subs(t, 0)
    gv = sp.Matrix(v).T * g.fisher.xreplace(point) * sp.Matrix(v)
    assert float(sp.N(second - 2 * factor * gv[0, 0], 30)) == pytest.approx(0, abs=1e-20)


@pytest.mark.parametrize("name,scipy_entropy", [
    ("normal", lambda p: st.norm(0, float(p["sigma"])).entropy()),
    ("gamma", lambda p: st.gamma(float(p["k"]), scale=float(p["theta"])).entropy()),
    ("beta", lambda p: st.beta(float(p["a"]), float(p["b"])).entropy()),
    ("exponential", lambda p: st.expon(scale=1 / float(p["lam"])).entropy()),
    ("dirichlet:k=3", lambda p: st.dirichlet([float(p[f"alpha{i}"]) for i in (1, 2, 3)]).entropy())])
def test_entropy_matches_scipy(name, scipy_entropy, geometry):
    g = geometry(name)
    point = g.family.sample_point()
    assert float(sp.N(V.entropy(g).xreplace(point), 30)) == pytest.approx(
        float(scipy_entropy({str(k): v for k, v in point.items()})), rel=1e-10)


def test_jeffreys_normalisability(geometry):
    assert B.jeffreys_normalizer(geometry("bernoulli")) == (True, sp.pi)
    assert B.jeffreys_normalizer(geometry("poisson"))[0] is False
    assert B.jeffreys_normalizer(geometry("normal"))[0] is False


def test_delta_method_bound(geometry):
    g = geometry("poisson")
    (lam,) = g.params
    # Var(√λ̂) ≥ (1/(2√λ))² λ / n = 1/(4n): the variance-stabilising transform
    assert sp.simplify(B.cramer_rao_function(g, sp.sqrt(lam)) - 1 / (4 * sp.Symbol("n_obs", positive=True, integer=True))) == 0


def test_mle_is_moment_matching(geometry):
    g = geometry("normal")
    t1, t2 = sp.symbols("tbar1 tbar2", real=True)
    mle = B.mle_params(g, [t1, t2])
    mu, sigma = g.params
    assert mle[mu] == t1 and sp.simplify(mle[sigma] ** 2 - (t2 - t1**2)) == 0


@pytest.mark.parametrize("name,sampler", [("normal", lambda rng, n: rng.normal(0.3, 1.3, size=(4000, n))),
                                          ("poisson", lambda rng, n: rng.poisson(1.3, size=(4000, n)))])
def test_cramer_rao_attained_by_mle_asymptotically(name, sampler, geometry):
    """Seeded Monte Carlo: n·Var(MLE) → the inverse Fisher (loose tolerance)."""
    g = geometry(name)
    rng = np.random.default_rng(11)
    n = 400
    xs = sampler(rng, n).astype(float)
    (x,) = g.family.variables
    tbars = [np.asarray(sp.lambdify(x, s, "numpy")(xs), dtype=float).mean(axis=1) for s in g.exponential_family.stats]
    syms = sp.symbols(f"tb0:{len(tbars)}", real=True)
    mle = B.mle_params(g, list(syms))
    est = np.array([sp.lambdify(syms, mle[p], "numpy")(*tbars) for p in g.params])
    point = g.family.sample_point() if name == "poisson" else {g.params[0]: sp.Rational(3, 10), g.params[1]: sp.Rational(13, 10)}
    bound = np.array(g.cramer_rao(1).xreplace(point).evalf(), dtype=float)
    empirical = np.atleast_2d(np.cov(est)) * n
    assert np.allclose(np.diag(empirical), np.diag(bound), rtol=0.12)


@pytest.mark.parametrize("name", ["normal", "poisson", "inverse_gaussian", "gamma", "bernoulli", "categorical:k=3"])
def test_e_and_m_geodesics_solve_the_alpha_geodesic_equations(name, geometry):
    g = geometry(name)
    p1, p2 = g.family.sample_point(0), g.family.sample_point(1)
    curves = [(1, D.e_geodesic(g, p1, p2))]
    try:
        curves.append((-1, D.m_geodesic(g, p1, p2)))
    except D.InversionUnavailable:
        assert name == "gamma"  # θ(η) needs the digamma inverse: numeric only
    for alpha, curve in curves:
        assert all(float(sp.N(curve[p].subs(D.T, 0) - p1[p], 30)) == pytest.approx(0, abs=1e-20) for p in g.params)
        assert all(float(sp.N(curve[p].subs(D.T, 1) - p2[p], 30)) == pytest.approx(0, abs=1e-20) for p in g.params)
        for t in (sp.Rational(1, 4), sp.Rational(2, 3)):
            for r in D.geodesic_residual(g, curve, alpha):
                assert float(sp.N(r.subs(D.T, t), 30)) == pytest.approx(0, abs=1e-18)


SCIPY_KL = {"normal": (lambda p: st.norm(float(p["mu"]), float(p["sigma"])), (-np.inf, np.inf)),
            "gamma": (lambda p: st.gamma(float(p["k"]), scale=float(p["theta"])), (0, np.inf)),
            "beta": (lambda p: st.beta(float(p["a"]), float(p["b"])), (0, 1)),
            "poisson": (lambda p: st.poisson(float(p["lam"])), None)}


@pytest.mark.parametrize("name", sorted(SCIPY_KL))
def test_kl_against_scipy_densities(name, geometry):
    """KL from scipy.stats' own densities (scipy.integrate.quad, or a sum of pmf terms) vs the Bregman form."""
    from scipy.integrate import quad
    g = geometry(name)
    p1, p2 = g.family.sample_point(0), g.family.sample_point(1)
    make, bounds = SCIPY_KL[name]
    d1, d2 = make({str(k): v for k, v in p1.items()}), make({str(k): v for k, v in p2.items()})
    if bounds is None:
        ks = np.arange(0, 200)
        ref = float(np.sum(d1.pmf(ks) * (d1.logpmf(ks) - d2.logpmf(ks))))
    else:
        ref = quad(lambda t: d1.pdf(t) * (d1.logpdf(t) - d2.logpdf(t)), *bounds, epsabs=1e-13, epsrel=1e-12)[0]
    value = V.kl(g, {p: p1[p] for p in g.params}, {p: p2[p] for p in g.params})
    assert float(sp.N(value, 30)) == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("name", [n for n in EXPONENTIAL if n not in ("multivariate_normal", "categorical", "dirichlet")])
def test_duality_identity_numeric_alpha_every_exponential_family(name, geometry):
    for alpha in (sp.Rational(1, 2), 2):
        assert _zero(D.duality_defect(geometry(name), alpha))
