"""Natural gradient: MLE to 1e-10, chart invariance to first order, Newton = mirror descent in natural
coordinates, KL asymmetry, natural-gradient VI, what Adam's second moments estimate, the torch optimizer."""
import numpy as np
import pytest
from scipy import stats
from scipy.special import digamma

import numeric
from numeric.exponential import maps_for
from numeric.natural_gradient import (
    Quadrature,
    adam_vs_fisher,
    kl_objective,
    minimize,
    mle_objective,
    natural_direction,
    score_function,
)


def exact_mle(name, data):
    maps = maps_for(name)
    return maps.params(maps.m_projection(maps.statistics(data).mean(axis=0)[None]))[0]


@pytest.mark.parametrize("name, data, starts", [
    ("gamma", np.random.default_rng(0).gamma(3.0, 2.0, 5000), [[0.05, 50.0], [100.0, 0.01], [1.0, 1.0]]),
    ("beta", np.random.default_rng(1).beta(2.0, 5.0, 5000), [[0.05, 0.05], [50.0, 80.0], [1.0, 1.0]]),
])
def test_natural_gradient_reaches_the_mle_from_far_starts(name, data, starts):
    family = numeric.compile(name)
    objective = mle_objective(family, data)
    star = exact_mle(name, data)  # θ(T̄) by Newton on A: a second route to the MLE
    for start in starts:
        fit = minimize(objective, family, start, tol=1e-14, max_iter=200)
        assert fit.converged and fit.iterations < 60
        np.testing.assert_allclose(fit.params, star, rtol=1e-10)


def test_generic_mle_objective_matches_the_exponential_shortcut():
    data = np.random.default_rng(2).gamma(2.0, 1.0, 300)
    family = numeric.compile("gamma")
    fast = mle_objective(family, data)
    generic_value = lambda xi: -np.mean(stats.gamma.logpdf(data, xi[0], scale=xi[1]))
    score = score_function(family)
    for xi in ([1.5, 0.7], [3.0, 2.0]):
        assert fast.value(np.array(xi)) == pytest.approx(generic_value(xi), rel=1e-12)
        np.testing.assert_allclose(fast.gradient(np.array(xi)), -np.mean(score(data, *xi), axis=0), rtol=1e-10)


def test_cauchy_mle_through_the_per_sample_score():
    data = stats.cauchy.rvs(loc=1.0, scale=2.0, size=4000, random_state=3)
    family = numeric.compile("cauchy")
    fit = minimize(mle_objective(family, data), family, [0.0, 1.0], tol=1e-13)
    reference = stats.cauchy.fit(data)
    np.testing.assert_allclose(fit.params, reference, rtol=1e-4)
    assert np.max(np.abs(mle_objective(family, data).gradient(fit.params))) < 1e-10


def flow(chart, method, lr, horizon, data):
    family = numeric.compile("normal", chart=chart)
    start = [2.0, 3.0] if chart is None else [2.0, 9.0]
    fit = minimize(mle_objective(family, data), family, start, method=method, lr=lr,
                   max_iter=int(round(horizon / lr)), tol=0)
    path = np.array(fit.path)
    return path if chart is None else np.stack([path[:, 0], np.sqrt(path[:, 1])], axis=1)


def test_natural_gradient_paths_agree_across_charts_to_first_order():
    data = np.random.default_rng(4).normal(0.5, 1.5, 2000)
    gaps = {}
    for method in ("natural", "gradient"):
        for lr in (0.02, 0.002):
            sigma_path, variance_path = flow(None, method, lr, 1.0, data), flow("variance", method, lr, 1.0, data)
            gaps[method, lr] = np.max(np.abs(sigma_path[-1] - variance_path[-1]))
    assert gaps["natural", 0.002] < gaps["natural", 0.02] / 7       # the gap shrinks like the step
    assert gaps["natural", 0.002] < 2e-3
    assert gaps["gradient", 0.002] > 0.1                             # plain gradient flows differ


def test_natural_gradient_step_one_is_newton_and_mirror_descent_in_natural_coordinates():
    data = np.random.default_rng(5).normal(1.0, 2.0, 1000)
    natural = numeric.compile("normal", chart="natural")
    expectation = numeric.compile("normal", chart="expectation")
    theta = np.array([0.2, -0.15])  # near θ* = (0.25, −0.125): one Newton step stays in the domain
    objective = mle_objective(natural, data)
    ngd = theta - natural_direction(natural.fisher(*theta), objective.gradient(theta))
    h = 1e-5
    hessian = np.array([(objective.gradient(theta + h * e) - objective.gradient(theta - h * e)) / (2 * h)
                        for e in np.eye(2)])
    newton = theta - np.linalg.solve(hessian, objective.gradient(theta))
    np.testing.assert_allclose(ngd, newton, rtol=1e-7)
    # mirror descent on L(η) with mirror map A*: θ_next = ∇A*(η) − ∇_η L(η), with ∇A*(η) = θ(η)
    eta = np.asarray(natural.expectation_params(*theta))
    mirror = maps_for("normal").m_projection(eta[None])[0] - mle_objective(expectation, data).gradient(eta)
    np.testing.assert_allclose(ngd, mirror, rtol=1e-10)


def test_damping_is_a_ridge_on_the_fisher():
    fisher = np.array([[2.0, 1.0], [1.0, 1.0]])
    grad = np.array([1.0, -1.0])
    np.testing.assert_allclose(natural_direction(fisher, grad, 0.5), np.linalg.solve(fisher + 0.5 * np.eye(2), grad))


def bimodal(x):
    return np.logaddexp(np.log(0.5) + stats.norm.logpdf(x, -3, 0.7), np.log(0.5) + stats.norm.logpdf(x, 3, 0.7))


def test_kl_asymmetry_mode_seeking_vs_mass_covering():
    normal = numeric.compile("normal")
    rule = Quadrature.legendre(-15, 15, 600)
    inclusive = minimize(kl_objective(normal, bimodal, rule, "inclusive"), normal, [0.5, 1.0], tol=1e-13)
    p = np.exp(bimodal(rule.nodes))
    mean = np.sum(rule.weights * p * rule.nodes)
    std = np.sqrt(np.sum(rule.weights * p * (rule.nodes - mean) ** 2))
    np.testing.assert_allclose(inclusive.params, [mean, std], rtol=1e-8, atol=1e-10)   # moment matching
    exclusive = minimize(kl_objective(normal, bimodal, rule, "exclusive"), normal, [0.5, 1.0], tol=1e-13)
    assert abs(abs(exclusive.params[0]) - 3) < 0.05 and abs(exclusive.params[1] - 0.7) < 0.05  # one mode
    assert exclusive.value < 0.75 and inclusive.params[1] > 3


def test_natural_gradient_vi_recovers_a_conjugate_posterior():
    counts = np.random.default_rng(6).poisson(4.0, 30)
    a0, b0 = 2.0, 0.5                                     # gamma prior, shape and rate

    def log_joint(z):
        return stats.gamma.logpdf(z, a0, scale=1 / b0) + np.sum(stats.poisson.logpmf(counts[:, None], z), axis=0)

    q = numeric.compile("gamma")
    rule = Quadrature.log_legendre(1e-3, 50, 800)
    fit = minimize(kl_objective(q, log_joint, rule, "exclusive"), q, [a0, 1 / b0], tol=1e-13)
    np.testing.assert_allclose(fit.params, [a0 + counts.sum(), 1 / (b0 + len(counts))], rtol=1e-7)
    assert fit.value < 1e-12                              # KL(q ‖ posterior) = 0: q is the posterior


def test_natural_gradient_vi_for_a_non_conjugate_logistic_model():
    rng = np.random.default_rng(7)
    x = rng.normal(size=200)
    y = rng.random(200) < 1 / (1 + np.exp(-1.5 * x))

    def log_joint(w):
        logits = np.outer(x, w)
        return stats.norm.logpdf(w, 0, 2) + np.sum(np.where(y[:, None], -np.logaddexp(0, -logits),
                                                            -np.logaddexp(0, logits)), axis=0)

    q = numeric.compile("normal")
    rule = Quadrature.legendre(-4, 7, 800)
    objective = kl_objective(q, log_joint, rule, "exclusive")
    fit = minimize(objective, q, [0.0, 1.0], tol=1e-13)
    assert fit.converged and np.max(np.abs(objective.gradient(fit.params))) < 1e-9
    p = np.exp(log_joint(rule.nodes) - np.max(log_joint(rule.nodes)))
    p /= np.sum(rule.weights * p)
    mean = np.sum(rule.weights * p * rule.nodes)
    assert abs(fit.params[0] - mean) < 0.02 and 0 < fit.value < 0.01  # close to, not equal to, the posterior


def test_adam_second_moments_estimate_the_diagonal_empirical_fisher_over_the_batch():
    data = np.random.default_rng(8).gamma(2.0, 1.5, 20000)
    gamma = numeric.compile("gamma")
    star = exact_mle("gamma", data)
    for batch in (1, 8):
        report = adam_vs_fisher(gamma, data, star, batch_size=batch, seed=0)
        np.testing.assert_allclose(report["adam_v"], report["empirical_diag"], rtol=0.08)
        np.testing.assert_allclose(report["empirical_diag"], report["fisher_diag"], rtol=0.05)
    k = star[0]
    assert report["fisher_correlation"][0, 1] == pytest.approx(1 / np.sqrt(k * float(
        np.asarray(numeric.compile("gamma").fisher(*star))[0, 0])), rel=1e-12)   # 1/√(k ψ'(k)), ≈ 0.88
    assert report["fisher_correlation"][0, 1] > 0.8                            # what a diagonal misses


def test_minimize_refuses_bad_settings():
    gamma = numeric.compile("gamma")
    objective = mle_objective(gamma, np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="method"):
        minimize(objective, gamma, [1.0, 1.0], method="lbfgs")
    with pytest.raises(ValueError, match="lr"):
        minimize(objective, gamma, [1.0, 1.0], lr=0.0)
    with pytest.raises(ValueError, match="must lie in"):
        minimize(objective, gamma, [-1.0, 1.0])
    with pytest.raises(ValueError, match="direction"):
        kl_objective(gamma, np.log, Quadrature.legendre(0.1, 1.0, 10), "forward")
    with pytest.raises(ValueError, match="0 < lo < hi"):
        Quadrature.log_legendre(0.0, 1.0)


def test_digamma_sanity_of_the_gamma_mle():  # the stationarity condition, independently of symgeo
    data = np.random.default_rng(9).gamma(5.0, 0.3, 3000)
    k, _ = exact_mle("gamma", data)
    assert np.log(k) - digamma(k) == pytest.approx(np.log(data.mean()) - np.log(data).mean(), rel=1e-12)
