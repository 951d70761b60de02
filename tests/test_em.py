"""EM for exponential-family mixtures: scikit-learn equality, monotone likelihood, planted recovery,
the free-energy decomposition, degenerate components, and the matrix Gaussian maps vs the generated ones."""
import warnings

import numpy as np
import pytest
from helpers import gaussian_same_start
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from numeric.em import fit_mixture, kmeans_plusplus
from numeric.exponential import ExponentialMaps, GaussianMaps, maps_for

sklearn_mixture = pytest.importorskip("sklearn.mixture")


def gaussian_blobs(rng, d, k, n):
    means = rng.normal(0, 4, (k, d))
    covs = []
    for i in range(k):
        a = rng.normal(size=(d, d))
        covs.append(a @ a.T / d + (0.3 + 0.2 * i) * np.eye(d))
    x = np.concatenate([rng.multivariate_normal(m, c, n // k) for m, c in zip(means, covs)])
    return x


@pytest.mark.parametrize("d, k, n", [(2, 3, 6000), (5, 4, 8000)])
def test_gaussian_mixture_equals_sklearn_from_same_start(d, k, n):
    rng = np.random.default_rng(d)
    x = gaussian_blobs(rng, d, k, n)
    init, reference = gaussian_same_start(x, k, rng, max_iter=200)
    maps = GaussianMaps(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning for tol=0
        reference.fit(x)
    fit = fit_mixture(f"multivariate_normal:d={d}", x, k, init=init, max_iter=200, tol=-1)
    means, covs = maps.mean_cov(fit.natural)
    assert fit.n_iter == 200
    np.testing.assert_allclose(means, reference.means_, atol=1e-6)
    np.testing.assert_allclose(covs, reference.covariances_, atol=1e-6)
    np.testing.assert_allclose(fit.weights, reference.weights_, atol=1e-6)
    assert fit.score(x) == pytest.approx(reference.score(x), abs=1e-6)


def planted_problem(seed):
    rng = np.random.default_rng(seed)
    family = ["normal", "poisson", "gamma", "exponential", "multivariate_normal:d=2"][seed % 5]
    n = 400 + 50 * seed
    if family == "normal":
        x = np.concatenate([rng.normal(-2, 1, n), rng.normal(3, 0.5, n)])
    elif family == "poisson":
        x = np.concatenate([rng.poisson(1.5, n), rng.poisson(9, n)]).astype(float)
    elif family == "gamma":
        x = np.concatenate([rng.gamma(2, 1, n), rng.gamma(20, 0.5, n)])
    elif family == "exponential":
        x = np.concatenate([rng.exponential(1, n), rng.exponential(10, n)])
    else:
        x = gaussian_blobs(rng, 2, 3, 3 * n)
    return family, x


@pytest.mark.parametrize("seed", range(20))
def test_log_likelihood_is_monotone_and_the_free_energy_decomposes(seed):
    family, x = planted_problem(seed)
    fit = fit_mixture(family, x, 3 if family.startswith("multi") else 2, seed=seed, max_iter=60, tol=0)
    logliks = np.array([h["log_likelihood"] for h in fit.history])
    assert fit.monotone
    assert np.all(np.diff(logliks) >= -1e-9 * np.abs(logliks[1:]))
    for before, after in zip(fit.history, fit.history[1:]):
        scale = 1e-9 * abs(after["log_likelihood"])
        assert after["elbo"] >= before["log_likelihood"] - scale        # the M-step raises the ELBO
        assert after["kl_gap"] >= -scale                                # log L = ELBO + KL, KL >= 0
        assert after["log_likelihood"] == pytest.approx(after["elbo"] + after["kl_gap"], abs=scale)


def test_poisson_mixture_recovers_planted_parameters():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.poisson(1.0, 20000), rng.poisson(6.0, 30000), rng.poisson(20.0, 10000)]).astype(float)
    fit = fit_mixture("poisson", x, 3, seed=0)
    order = np.argsort(fit.params[:, 0])
    np.testing.assert_allclose(fit.params[order, 0], [1, 6, 20], rtol=0.03)
    np.testing.assert_allclose(fit.weights[order], [1 / 3, 1 / 2, 1 / 6], atol=0.02)
    assert fit.converged


def test_gamma_mixture_recovers_planted_parameters():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.gamma(2.0, 1.0, 30000), rng.gamma(30.0, 0.5, 30000)])
    fit = fit_mixture("gamma", x, 2, seed=0)
    order = np.argsort(fit.params[:, 0] * fit.params[:, 1])
    np.testing.assert_allclose(fit.params[order], [[2.0, 1.0], [30.0, 0.5]], rtol=0.05)
    np.testing.assert_allclose(fit.weights, [0.5, 0.5], atol=0.01)


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_von_mises_and_categorical_mixtures():
    rng = np.random.default_rng(5)
    angles = np.concatenate([stats.vonmises.rvs(8, loc=-2, size=4000, random_state=rng),
                             stats.vonmises.rvs(4, loc=1.5, size=4000, random_state=rng)])
    fit = fit_mixture("von_mises", angles, 2, seed=1)
    order = np.argsort(fit.params[:, 0])
    np.testing.assert_allclose(fit.params[order], [[-2, 8], [1.5, 4]], rtol=0.06, atol=0.05)
    labels = np.concatenate([rng.choice(3, 6000, p=[0.8, 0.1, 0.1]), rng.choice(3, 6000, p=[0.1, 0.1, 0.8])])
    one_hot = np.eye(3)[labels][:, :2]
    fit = fit_mixture("categorical:k=3", one_hot, 2, seed=0)
    assert fit.monotone and np.all(np.isfinite(fit.params))


def test_gaussian_maps_equal_the_generated_maps():
    for d in (2,):  # multivariate_normal:d=3 has no closed-form natural chart in SymPy
        generated = maps_for_generated(d)
        matrix = GaussianMaps(d, reg_covar=0.0)
        rng = np.random.default_rng(d)
        a = rng.normal(size=(4, d, d))
        covs = a @ np.transpose(a, (0, 2, 1)) + np.eye(d)
        params = np.concatenate([rng.normal(size=(4, d)), covs[:, matrix.iu[0], matrix.iu[1]]], axis=1)
        x = rng.normal(size=(7, d))
        np.testing.assert_allclose(matrix.statistics(x), generated.statistics(x), rtol=1e-13)
        np.testing.assert_allclose(matrix.log_base(x), generated.log_base(x), rtol=1e-13)
        theta = generated.natural(params)
        np.testing.assert_allclose(matrix.natural(params), theta, rtol=1e-10)
        np.testing.assert_allclose(matrix.log_partition(theta), generated.log_partition(theta), rtol=1e-10)
        np.testing.assert_allclose(matrix.params(theta), params, rtol=1e-10)
        eta = params[:, :d]
        second = covs + eta[:, :, None] * eta[:, None, :]
        moments = np.concatenate([eta, second[:, matrix.iu[0], matrix.iu[1]]], axis=1)
        np.testing.assert_allclose(matrix.m_projection(moments), theta, rtol=1e-9)


def maps_for_generated(d):
    from symgeo import Geometry, catalog
    return ExponentialMaps(Geometry(catalog.get(f"multivariate_normal:d={d}")))


def test_generated_normal_maps_round_trip():
    maps = maps_for("normal")
    params = np.array([[0.5, 2.0], [-3.0, 0.1]])
    theta = maps.natural(params)
    moments = np.stack([params[:, 0], params[:, 0] ** 2 + params[:, 1] ** 2], axis=1)
    np.testing.assert_allclose(maps.m_projection(moments), theta, rtol=1e-12)
    np.testing.assert_allclose(maps.params(theta), params, rtol=1e-12)


def test_newton_inverse_for_gamma_round_trip():
    maps = maps_for("gamma")
    params = np.array([[0.3, 2.0], [50.0, 0.01]])
    from scipy.special import digamma
    moments = np.stack([digamma(params[:, 0]) + np.log(params[:, 1]), params[:, 0] * params[:, 1]], axis=1)
    theta = maps.m_projection(moments)
    np.testing.assert_allclose(theta, maps.natural(params), rtol=1e-9)
    np.testing.assert_allclose(maps.params(theta), params, rtol=1e-9)


def test_collapsing_component_is_repaired_with_a_warning_not_nan():
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.normal(0, 1, 500), np.full(40, 7.0)])  # a cluster of identical points
    with pytest.warns(RuntimeWarning, match="degenerate"):
        fit = fit_mixture("normal", x, 2, init=np.array([[0.0, 1.0], [7.0, 0.5]]), max_iter=50)
    assert np.all(np.isfinite(fit.params)) and np.all(fit.params[:, 1] > 0)


def test_empty_component_is_reseeded_with_a_warning():
    rng = np.random.default_rng(7)
    x = rng.poisson(3.0, 1000).astype(float)
    with pytest.warns(RuntimeWarning, match="empty"):
        fit = fit_mixture("poisson", x, 2, init=np.array([[3.0], [1e6]]), max_iter=20)
    assert np.all(np.isfinite(fit.params)) and np.all(fit.weights > 0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="outside the support"):
        fit_mixture("poisson", np.array([1.0, 2.0, -1.0]), 2)
    with pytest.raises(ValueError, match="outside the support"):
        fit_mixture("poisson", np.array([1.0, 2.5, 3.0]), 2)
    with pytest.raises(ValueError, match="shape"):
        fit_mixture("gamma", np.array([1.0, 2.0, 3.0]), 2, init=np.ones((3, 2)))
    with pytest.raises(ValueError, match="n_components"):
        fit_mixture("gamma", np.array([1.0, 2.0]), 3)
    with pytest.raises(Exception, match="not an exponential family"):
        fit_mixture("cauchy", np.array([1.0, 2.0, 3.0]), 2)
    with pytest.raises(ValueError, match="must lie in"):
        fit_mixture("gamma", np.array([1.0, 2.0, 3.0]), 2, init=np.array([[1.0, 1.0], [-1.0, 1.0]]))


def test_kmeans_plusplus_picks_distinct_data_points():
    rng = np.random.default_rng(8)
    points = np.concatenate([rng.normal(-10, 0.1, (50, 2)), rng.normal(10, 0.1, (50, 2))])
    centers = kmeans_plusplus(points, 2, np.random.default_rng(0))
    assert np.sign(centers[0, 0]) != np.sign(centers[1, 0])
    assert all(any(np.allclose(c, p) for p in points) for c in centers)


def test_seeded_fits_are_reproducible():
    _, x = planted_problem(2)
    a = fit_mixture("gamma", x, 2, seed=11)
    b = fit_mixture("gamma", x, 2, seed=11)
    np.testing.assert_array_equal(a.params, b.params)


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_gaussian_dual_maps_round_trip(d, seed):
    rng = np.random.default_rng(seed)
    maps = GaussianMaps(d, reg_covar=0.0)
    a = rng.normal(size=(d, d))
    cov = a @ a.T + 0.1 * np.eye(d)
    mean = rng.normal(0, 3, d)
    params = np.concatenate([mean, cov[maps.iu]])[None]
    theta = maps.natural(params)
    np.testing.assert_allclose(maps.params(theta), params, rtol=1e-8, atol=1e-10)
    second = cov + np.outer(mean, mean)
    moments = np.concatenate([mean, second[maps.iu]])[None]
    np.testing.assert_allclose(maps.m_projection(moments), theta, rtol=1e-6, atol=1e-8)
    # A(θ) is the log-normaliser: log p from θ·T − A + log h equals scipy's log-density
    x = rng.normal(size=(5, d))
    log_p = maps.statistics(x) @ theta[0] - maps.log_partition(theta)[0] + maps.log_base(x)
    np.testing.assert_allclose(log_p, stats.multivariate_normal(mean, cov).logpdf(x).reshape(5), rtol=1e-8)
