"""Second derivation routes and numeric references."""
import numpy as np
import pytest
import scipy.stats as st
import sympy as sp

from helpers import as_float_matrix, monte_carlo_fisher, numeric_scalar_curvature
from symgeo import catalog
from symgeo.fisher import fisher_by_expectation

# Exponential families whose −E[∂∂ℓ] and E[s sᵀ] SymPy integrates or sums: the EF route must agree.
ROUTE_FAMILIES = ["normal", "poisson", "bernoulli", "exponential", "rayleigh", "geometric", "gamma",
                  "categorical:k=3", "binomial:n=6"]


@pytest.mark.parametrize("name", ROUTE_FAMILIES)
@pytest.mark.parametrize("route", ["hessian", "score"])
def test_exponential_route_equals_expectation_routes(name, route, geometry):
    fam = catalog.get(name)
    if route == "score" and name in ("gamma",):
        pytest.skip("E[s sᵀ] for gamma needs E[log² x]: covered by the hessian route")
    g_ef = geometry(name).fisher
    g_exp, _ = fisher_by_expectation(fam, route, timeout=60)
    diff = (g_ef - g_exp).applyfunc(lambda e: sp.simplify(sp.expand_func(e)))
    assert diff == sp.zeros(*g_ef.shape)


@pytest.mark.parametrize("name", ["cauchy", "logistic", "weibull", "student_t"])
def test_hessian_route_equals_score_route(name, geometry):
    # the catalog uses the score route for these; −E[∂∂ℓ] is a second derivation
    g_hess, _ = fisher_by_expectation(catalog.get(name), "hessian", timeout=60)
    assert (geometry(name).fisher - g_hess).applyfunc(sp.simplify) == sp.zeros(2, 2)


SCIPY = {
    "normal": lambda p: st.norm(p["mu"], p["sigma"]),
    "gamma": lambda p: st.gamma(float(p["k"]), scale=float(p["theta"])),
    "beta": lambda p: st.beta(float(p["a"]), float(p["b"])),
    "cauchy": lambda p: st.cauchy(float(p["x0"]), float(p["gamma"])),
    "logistic": lambda p: st.logistic(float(p["mu"]), float(p["s"])),
    "laplace": lambda p: st.laplace(float(p["mu"]), float(p["b"])),
    "weibull": lambda p: st.weibull_min(float(p["k"]), scale=float(p["lam"])),
    "student_t": lambda p: st.t(5, float(p["mu"]), float(p["sigma"])),
    "lognormal": lambda p: st.lognorm(float(p["sigma"]), scale=np.exp(float(p["mu"]))),
    "inverse_gaussian": lambda p: st.invgauss(float(p["mu"] / p["lam"]), scale=float(p["lam"])),
    "inverse_gamma": lambda p: st.invgamma(float(p["a"]), scale=float(p["b"])),
    "rayleigh": lambda p: st.rayleigh(scale=float(p["sigma"])),
    "exponential": lambda p: st.expon(scale=1 / float(p["lam"])),
    "von_mises": lambda p: st.vonmises(float(p["kappa"]), loc=float(p["mu"])),
}


def _named_point(fam):
    point = fam.sample_point()
    return point, {str(k): v for k, v in point.items()}


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_log_density_matches_scipy(name):
    fam = catalog.get(name)
    point, named = _named_point(fam)
    dist = SCIPY[name]({k: float(v) if k != "mu" or name != "inverse_gaussian" else v
                        for k, v in named.items()} if name != "inverse_gaussian" else named)
    xs = dist.rvs(size=7, random_state=np.random.default_rng(1))
    (x,) = fam.variables
    ours = sp.lambdify(x, fam.log_density.xreplace(point), modules=["numpy", "scipy"])(xs)
    np.testing.assert_allclose(ours, dist.logpdf(xs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_fisher_matches_monte_carlo(name, geometry):
    fam = catalog.get(name)
    point, named = _named_point(fam)
    dist = SCIPY[name]({k: float(v) for k, v in named.items()} if name != "inverse_gaussian" else named)
    samples = dist.rvs(size=400_000, random_state=np.random.default_rng(7))
    mc, se = monte_carlo_fisher(fam, point, samples)
    exact = as_float_matrix(geometry(name).fisher, point)
    assert np.all(np.abs(mc - exact) <= 6 * se + 1e-9), f"{name}: MC {mc} vs exact {exact} (se {se})"


@pytest.mark.parametrize("name", ["normal", "gamma", "beta", "inverse_gaussian", "von_mises", "weibull",
                                  "logistic", "categorical:k=3", "dirichlet:k=3", "multivariate_normal:d=2",
                                  "multivariate_normal:d=3", "centered_normal:d=3",
                                  "inverse_gamma", "cauchy", "student_t"])
def test_scalar_curvature_matches_numeric_derivatives(name, geometry):
    g = geometry(name)
    point = g.family.sample_point()
    numeric = numeric_scalar_curvature(g.fisher, g.params, point)
    symbolic = float(sp.N(g.scalar_curvature.xreplace(point), 30))
    assert symbolic == pytest.approx(numeric, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", ["normal", "gamma", "von_mises"])
def test_christoffel_matches_sympy_diffgeom(name, geometry):
    from sympy.diffgeom import CoordSystem, Manifold, Patch, TensorProduct, metric_to_Christoffel_2nd
    g = geometry(name)
    n = g.family.n
    man = Manifold("M", n)
    patch = Patch("P", man)
    coords = CoordSystem("c", patch, [str(p) for p in g.params])
    fields = coords.base_scalars()
    forms = coords.base_oneforms()
    sub = dict(zip(g.params, fields))
    metric = sum(g.fisher[i, j].xreplace(sub) * TensorProduct(forms[i], forms[j])
                 for i in range(n) for j in range(n))
    ref = metric_to_Christoffel_2nd(metric)
    back = {f: p for f, p in zip(fields, g.params)}
    ours = g.christoffel()
    for idx in np.ndindex(n, n, n):
        assert sp.simplify(sp.sympify(ref[idx]).xreplace(back) - ours[idx]) == 0
