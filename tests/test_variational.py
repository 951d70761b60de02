"""Gaussian VI for GLMs: the loss, its gradients and the natural step against independent sources."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

import numeric
from numeric.natural_gradient import minimize
from numeric.variational import CanonicalLikelihood, GaussianVI
from symgeo import SymgeoError


def logistic_problem(n=150, d=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) @ np.linalg.cholesky(0.5 * np.eye(d) + 0.5)  # correlated features
    y = (rng.random(n) < special.expit(x @ np.linspace(1.5, -1.0, d))).astype(float)
    return x, y


def random_gaussian(d, rng):
    a = rng.normal(size=(d, d))
    return rng.normal(size=d), a @ a.T / d + 0.3 * np.eye(d)


def finite_difference(f, xi, h=1e-6):
    """Central differences: row i is ∂f/∂ξ_i (f scalar or vector)."""
    steps = h * np.eye(len(xi))
    return np.array([(np.asarray(f(xi + e)) - np.asarray(f(xi - e))) / (2 * h) for e in steps])


@pytest.mark.parametrize("likelihood", ["bernoulli", "poisson", "binomial:n=4"])
@pytest.mark.parametrize("chart", ["natural", "cholesky"])
def test_gradient_matches_finite_differences(likelihood, chart):
    rng = np.random.default_rng(1)
    x = 0.5 * rng.normal(size=(80, 3))
    y = {"bernoulli": rng.integers(0, 2, 80), "poisson": rng.poisson(2.0, 80),
         "binomial:n=4": rng.integers(0, 5, 80)}[likelihood]
    vi = GaussianVI(x, y, likelihood, prior_precision=np.diag([1.0, 2.0, 0.5]))
    xi = vi.point(*random_gaussian(3, rng), chart)
    objective = vi.objective(chart)
    np.testing.assert_allclose(objective.gradient(xi), finite_difference(objective.value, xi),
                               rtol=1e-6, atol=1e-6)


def test_loss_equals_two_dimensional_quadrature_of_the_elbo():
    """The Gauss–Hermite-per-observation loss against a tensor quadrature over w itself."""
    x, y = logistic_problem(n=40)
    vi = GaussianVI(x, y, "bernoulli", prior_precision=0.5)
    m, cov = np.array([0.8, -0.4]), np.array([[0.3, 0.1], [0.1, 0.2]])
    q = stats.multivariate_normal(m, cov)
    z, weights = np.polynomial.legendre.leggauss(200)
    half = 7 * np.sqrt(np.diag(cov))
    w1, w2 = np.meshgrid(m[0] + half[0] * z, m[1] + half[1] * z, indexing="ij")
    w = np.column_stack([w1.ravel(), w2.ravel()])
    log_joint = (stats.bernoulli.logpmf(y, special.expit(w @ x.T)).sum(axis=1)
                 + stats.multivariate_normal(np.zeros(2), np.eye(2) / 0.5).logpdf(w))
    reference = np.sum(np.outer(weights, weights).ravel() * half.prod() * q.pdf(w) * (q.logpdf(w) - log_joint))
    assert vi.objective("cholesky").value(vi.point(m, cov, "cholesky")) == pytest.approx(reference, rel=1e-8)


def test_natural_direction_is_the_generated_fisher_solve():
    """F(ξ)⁻¹∇L from the duality identity equals a solve with multivariate_normal's generated Fisher,
    pulled back to ξ = (Σ⁻¹m, vech Σ⁻¹)."""
    x, y = logistic_problem()
    vi = GaussianVI(x, y, "bernoulli")
    xi = vi.point(np.array([0.3, -0.2]), np.array([[0.5, 0.2], [0.2, 0.4]]))
    mvn = numeric.compile("multivariate_normal")

    def catalog_params(xi):  # (mu1, mu2, s11, s12, s22)
        m, cov = vi.mean_cov(xi)
        return np.array([m[0], m[1], cov[0, 0], cov[0, 1], cov[1, 1]])
    jacobian = finite_difference(catalog_params, xi).T
    fisher = jacobian.T @ np.asarray(mvn.fisher(*catalog_params(xi))) @ jacobian
    objective, space = vi.objective("natural"), vi.space("natural")
    gradient = objective.gradient(xi)
    np.testing.assert_allclose(space.natural_direction(xi, gradient), np.linalg.solve(fisher, gradient),
                               rtol=1e-6, atol=1e-8)


def test_conjugate_model_is_exact_in_one_natural_step():
    """Gaussian likelihood (normal_mean, canonical θ = μ/σ², so y ~ N(σ² xᵀw, σ²)): the posterior is
    Gaussian, one step of size 1 lands on it from anywhere, and the optimal loss is −log evidence."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 3))
    sigma, prior = 2, 0.7
    y = sigma**2 * x @ np.array([0.3, -0.5, 0.1]) + sigma * rng.normal(size=60)
    vi = GaussianVI(x, y, f"normal_mean:sigma={sigma}", prior_precision=prior)
    fit = vi.fit("natural", start=random_gaussian(3, rng), max_iter=1)
    precision = prior * np.eye(3) + sigma**2 * x.T @ x
    m, cov = vi.mean_cov(fit.params)
    np.testing.assert_allclose(cov, np.linalg.inv(precision), rtol=1e-10)
    np.testing.assert_allclose(m, np.linalg.solve(precision, x.T @ y), rtol=1e-10)
    marginal = stats.multivariate_normal(np.zeros(60), sigma**2 * np.eye(60) + sigma**4 * x @ x.T / prior)
    assert fit.value == pytest.approx(-marginal.logpdf(y), rel=1e-12)


def test_logistic_optimum_satisfies_the_fixed_point_by_monte_carlo():
    """At the optimum E_q[∇ log p(w | y)] = 0 and Σ⁻¹ = E_q[−∇² log p(w | y)], checked with samples of q and
    the logistic log-likelihood's derivatives written out by hand (not generated)."""
    x, y = logistic_problem(n=300, d=3, seed=4)
    vi = GaussianVI(x, y, "bernoulli", prior_precision=0.25)
    fit = vi.fit("natural", tol=1e-13)
    m, cov = vi.mean_cov(fit.params)
    w = np.random.default_rng(5).multivariate_normal(m, cov, 200_000)
    p = special.expit(w @ x.T)
    grad = (y - p) @ x - 0.25 * w
    hessian = np.einsum("sn,ni,nj->ij", p * (1 - p), x, x) / len(w) + 0.25 * np.eye(3)
    scale = np.sqrt(np.diag(np.linalg.inv(cov)))
    assert np.all(np.abs(grad.mean(axis=0)) < 4 * grad.std(axis=0) / np.sqrt(len(w)) + 1e-9)
    np.testing.assert_allclose(np.linalg.inv(cov) / np.outer(scale, scale), hessian / np.outer(scale, scale),
                               atol=5e-3)


def test_every_method_reaches_the_same_optimum():
    x, y = logistic_problem(n=120, d=2, seed=6)
    vi = GaussianVI(x, y, "poisson", prior_precision=1.0)
    best = vi.fit("natural", tol=1e-13)
    for method, lr in (("gradient", 0.01), ("adam", 0.05)):
        fit = vi.fit(method, lr=lr, target=best.value, gap=1e-10, max_iter=20000)
        assert fit.converged
        for a, b in zip(vi.mean_cov(fit.params, "cholesky"), vi.mean_cov(best.params)):
            np.testing.assert_allclose(a, b, atol=1e-4)


def test_natural_steps_need_few_iterations():
    x, y = logistic_problem(n=300, d=4, seed=7)
    vi = GaussianVI(x, y, "bernoulli")
    fit = vi.fit("natural", tol=1e-13)
    gaps = np.array(fit.values) - fit.value
    assert np.argmax(gaps < 1e-8) <= 8


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**31))
def test_chart_round_trips(d, seed):
    rng = np.random.default_rng(seed)
    vi = GaussianVI(rng.normal(size=(5, d)), np.zeros(5), "bernoulli")
    m, cov = random_gaussian(d, rng)
    for chart in ("natural", "cholesky"):
        back_m, back_cov = vi.mean_cov(vi.point(m, cov, chart), chart)
        np.testing.assert_allclose(back_m, m, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(back_cov, cov, rtol=1e-8, atol=1e-10)


def test_steps_that_break_positive_definiteness_are_halved():
    x, y = logistic_problem()
    vi = GaussianVI(x, y, "bernoulli")
    fit = vi.fit("natural", lr=3.0, max_iter=30, backtrack=False)  # ρ > 1 can make Σ⁻¹ indefinite
    assert np.isfinite(fit.value) and np.all(np.linalg.eigvalsh(vi.mean_cov(fit.params)[1]) > 0)


@pytest.mark.parametrize("likelihood, message", [
    ("exponential", "half-line"), ("gamma", "one-parameter"), ("normal_mean", "sigma"),
    ("multivariate_normal", "one-parameter")])
def test_unsuitable_likelihoods_are_refused(likelihood, message):
    with pytest.raises(SymgeoError, match=message):
        CanonicalLikelihood(likelihood)


def test_bad_inputs_are_refused():
    x, y = logistic_problem()
    with pytest.raises(ValueError, match="one row per observation"):
        GaussianVI(x[:10], y, "bernoulli")
    with pytest.raises(ValueError, match="positive definite"):
        GaussianVI(x, y, "bernoulli", prior_precision=-1.0)
    with pytest.raises(ValueError, match=r"\(2, 2\) matrix"):
        GaussianVI(x, y, "bernoulli", prior_precision=np.eye(3))
    with pytest.raises(ValueError, match="support"):
        GaussianVI(x, y + 1, "bernoulli")
    vi = GaussianVI(x, y, "bernoulli")
    with pytest.raises(SymgeoError, match="damping"):
        minimize(vi.objective("natural"), vi.space("natural"), vi.point(np.zeros(2), np.eye(2)), damping=0.1)
    with pytest.raises(ValueError, match="chart"):
        vi.objective("polar")
