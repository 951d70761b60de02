"""Every exponential family of the catalog: ∇A = E[T], and θ → η → θ round trips (issue 3)."""
import numpy as np
import pytest
import scipy.stats as st
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as hs

from symgeo import Geometry, catalog
from symgeo import duality as D
from symgeo.expectation import numeric_expectation
from symgeo.fisher import expectation_params

SCALAR = [
    "bernoulli",
    "binomial:n=5",
    "poisson",
    "geometric",
    "negative_binomial:r=3",
    "exponential",
    "normal",
    "lognormal",
    "gamma",
    "inverse_gamma",
    "beta",
    "inverse_gaussian",
    "von_mises",
    "rayleigh",
]


@pytest.mark.parametrize("name", SCALAR)
def test_expectation_params_equal_mean_of_stats_by_quadrature(name, geometry):
    """η = ∇A (declared closed form or derived) against E[T] by mpmath quadrature / summation."""
    g = geometry(name)
    point = g.family.sample_point()
    for stat, eta in zip(g.exponential_family.stats, g.expectation_params):
        assert float(sp.N(eta.xreplace(point), 30)) == pytest.approx(
            float(numeric_expectation(g.family, stat, point)), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("name", ["bernoulli", "poisson", "normal", "gamma", "beta", "inverse_gaussian",
                                  "von_mises", "multivariate_normal:d=2", "geometric"])
def test_declared_expectation_override_equals_derived_gradient(name):
    """The optional closed form η(ξ) (a hook) against the fallback ∇A / J⁻ᵀ∇_ξA."""
    fam = catalog.get(name)
    if fam.expectation_of_params is None:
        pytest.skip("no override declared")
    from symgeo import ExponentialFamily

    bare = ExponentialFamily(
        fam.name,
        variables=fam.variables,
        support=fam.support,
        natural=fam.natural,
        stats=fam.stats,
        log_partition=fam.log_partition,
        log_base_measure=fam.log_base_measure,
        params=fam.params,
        natural_of_params=fam.natural_of_params,
        log_partition_of_params=fam.log_partition_of_params,
        domains=fam.domains,
    )
    derived = expectation_params(bare)
    point = fam.sample_point()
    for a, b in zip(fam.expectation_of_params, derived):
        assert float(sp.N((a - b).xreplace(point), 30)) == pytest.approx(0, abs=1e-20)


def test_categorical_and_vector_families_mean_of_stats(geometry):
    g = geometry("categorical:k=4")
    # exact: E[x_i] = p_i by the finite sum over one-hot points
    for stat, eta in zip(g.exponential_family.stats, g.expectation_params):
        assert eta == stat.xreplace({v: p for v, p in zip(g.family.variables, g.params)})
    rng = np.random.default_rng(9)
    d = geometry("dirichlet:k=3")
    alpha = [1.3, 0.7, 2.3]
    xs = st.dirichlet(alpha).rvs(size=400_000, random_state=rng)
    for i, eta in enumerate(d.expectation_params):
        mc = np.log(xs[:, i])
        assert abs(mc.mean() - float(sp.N(eta.xreplace(dict(zip(d.params, map(sp.nsimplify, alpha))))))) \
            < 6 * mc.std() / np.sqrt(len(mc))
    m = geometry("multivariate_normal:d=2")
    pt = m.family.sample_point()
    mean = [float(pt[m.params[0]]), float(pt[m.params[1]])]
    cov = [[float(pt[m.params[2]]), float(pt[m.params[3]])], [float(pt[m.params[3]]), float(pt[m.params[4]])]]
    xs = rng.multivariate_normal(mean, cov, size=400_000)
    x1, x2 = m.family.variables
    fn = sp.lambdify((x1, x2), list(m.exponential_family.stats), "numpy")
    stats = np.array([np.broadcast_to(v, (len(xs),)) for v in fn(xs[:, 0], xs[:, 1])])
    for row, eta in zip(stats, m.expectation_params):
        assert abs(row.mean() - float(eta.xreplace(pt))) < 6 * row.std() / np.sqrt(len(row))


CLOSED = ["normal", "lognormal", "poisson", "bernoulli", "binomial:n=5", "geometric", "negative_binomial:r=3",
          "exponential", "rayleigh", "inverse_gaussian", "categorical:k=3"]
NUMERIC = [
    "gamma",
    "beta",
    "inverse_gamma",
    "dirichlet:k=3",
    "normal",
    "poisson",
    "bernoulli",
    "inverse_gaussian",
    "categorical:k=3",
    "exponential",
]


@pytest.mark.parametrize("name", CLOSED)
def test_closed_form_theta_of_eta_round_trip(name, geometry):
    g = geometry(name)
    theta_of_eta = D.natural_from_expectation(g)
    etas = D.expectation_chart(g).params
    for k in range(2):
        point = g.family.sample_point(k)
        eta = [e.xreplace(point) for e in g.expectation_params]
        for expr, t in zip(theta_of_eta.values(), g.family.natural_of_params):
            assert float(sp.N(expr.xreplace(dict(zip(etas, eta))) - t.xreplace(point), 30)) == pytest.approx(
                0, abs=1e-20
            )


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_theta_of_eta_round_trip(name):
    from numeric.duality import NaturalFromExpectation
    g = Geometry(catalog.get(name))
    inverse = NaturalFromExpectation(g)

    @settings(max_examples=15, deadline=None)
    @given(scale=hs.floats(0.6, 1.6))
    def round_trip(scale):
        point = {p: v * sp.nsimplify(round(scale, 3)) if g.family.domains[p].inf == 0 and
                 g.family.domains[p].sup == sp.oo else v for p, v in g.family.sample_point().items()}
        eta = [float(sp.N(e.xreplace(point), 30)) for e in g.expectation_params]
        theta = [float(sp.N(t.xreplace(point), 30)) for t in g.family.natural_of_params]
        np.testing.assert_allclose(inverse(eta), theta, rtol=1e-9, atol=1e-11)
    round_trip()
