"""ExponentialFamilyMixture: scikit-learn's estimator checks, equality with GaussianMixture from the
same start, chunked and streaming fits against batch EM, and recovery of non-Gaussian mixtures."""
import warnings

import numpy as np
import pytest
from helpers import gaussian_same_start
from scipy import stats
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from numeric.exponential import GaussianMaps
from numeric.mixture import ExponentialFamilyMixture
from symgeo.errors import InvalidArgumentError


@parametrize_with_checks([ExponentialFamilyMixture(random_state=0)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _blobs(rng, d, k, n):
    centers = rng.normal(0, 6, (k, d))
    return np.vstack([rng.multivariate_normal(c, np.eye(d) * rng.uniform(0.5, 2), n // k) for c in centers])


@pytest.mark.parametrize("d, k", [(2, 3), (4, 2)])
def test_equals_gaussian_mixture_from_the_same_start(d, k):
    rng = np.random.default_rng(d)
    x = _blobs(rng, d, k, 3000)
    params, reference = gaussian_same_start(x, k, rng, max_iter=100)
    maps = GaussianMaps(d)
    ours = ExponentialFamilyMixture(n_components=k, tol=-1, max_iter=100, params_init=params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn that tol = 0 / −1 never converges
        reference.fit(x)
        ours.fit(x)
    got_means, got_covs = maps.mean_cov(ours.natural_params_)
    np.testing.assert_allclose(got_means, reference.means_, atol=1e-6)
    np.testing.assert_allclose(got_covs, reference.covariances_, atol=1e-6)
    np.testing.assert_allclose(ours.weights_, reference.weights_, atol=1e-6)
    assert ours.score(x) == pytest.approx(reference.score(x), rel=1e-8)
    np.testing.assert_allclose(ours.predict_proba(x), reference.predict_proba(x), atol=1e-6)


@pytest.fixture(scope="module")
def gamma_data():
    rng = np.random.default_rng(1)
    return np.r_[rng.gamma(2.0, 1.0, 4000), rng.gamma(20.0, 0.5, 2000)][:, None]


def test_chunks_and_memory_maps_give_the_batch_fit(gamma_data, tmp_path):
    # the same start (a chunked fit seeds from its first chunk, a batch fit from all the data)
    settings = dict(n_components=2, params_init=[[1.5, 1.5], [15.0, 0.8]], tol=-1, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = ExponentialFamilyMixture("gamma", **settings, chunk_size=10 ** 6).fit(gamma_data)
        path = tmp_path / "x.npy"
        np.save(path, gamma_data)
        mapped = ExponentialFamilyMixture("gamma", **settings, chunk_size=700).fit(np.load(path, mmap_mode="r"))
        chunks = [gamma_data[i:i + 1000] for i in range(0, len(gamma_data), 1000)]
        listed = ExponentialFamilyMixture("gamma", **settings).fit(chunks)
    for other in (mapped, listed):
        np.testing.assert_allclose(other.params_, batch.params_, rtol=1e-10)
        assert other.lower_bound_ == pytest.approx(batch.lower_bound_, rel=1e-12)


def test_one_full_stepwise_update_is_one_batch_iteration(gamma_data):
    start = np.array([[1.5, 1.5], [15.0, 0.8]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = ExponentialFamilyMixture("gamma", 2, params_init=start, max_iter=1, tol=-1).fit(gamma_data)
    online = ExponentialFamilyMixture("gamma", 2, params_init=start)
    online.partial_fit(gamma_data[:10])  # initialises the state
    online._set_fitted(np.log(np.full(2, 0.5)), online._maps.natural(start))
    online._running, online._steps = None, 0
    online.partial_fit(gamma_data)
    np.testing.assert_allclose(online.params_, batch.params_, rtol=1e-10)


def test_stepwise_em_approaches_the_batch_estimate(gamma_data):
    batch = ExponentialFamilyMixture("gamma", 2, random_state=0).fit(gamma_data)
    online = ExponentialFamilyMixture("gamma", 2, random_state=0, step_exponent=0.7)
    rng = np.random.default_rng(5)
    for _ in range(30):  # epochs of shuffled minibatches
        for part in np.array_split(gamma_data[rng.permutation(len(gamma_data))], 20):
            online.partial_fit(part)
    order_b, order_o = np.argsort(batch.params_[:, 0]), np.argsort(online.params_[:, 0])
    np.testing.assert_allclose(online.params_[order_o], batch.params_[order_b], rtol=0.05)
    assert online.score(gamma_data) == pytest.approx(batch.score(gamma_data), abs=2e-3)


def _recovered(model, truth, rtol):
    order = np.lexsort(model.params_.T[::-1])
    expected = truth[np.lexsort(truth.T[::-1])]
    np.testing.assert_allclose(model.params_[order], expected, rtol=rtol)


def test_recovers_poisson_gamma_von_mises_and_dirichlet_mixtures():
    rng = np.random.default_rng(3)
    n = 6000
    x = np.r_[rng.poisson(2.0, n), rng.poisson(15.0, n)][:, None]
    _recovered(ExponentialFamilyMixture("poisson", 2, random_state=0).fit(x), np.array([[2.0], [15.0]]), 0.05)
    x = np.r_[rng.gamma(3.0, 1.0, n), rng.gamma(30.0, 0.5, n)][:, None]
    _recovered(ExponentialFamilyMixture("gamma", 2, random_state=0).fit(x), np.array([[3.0, 1.0], [30.0, 0.5]]), 0.1)
    x = np.r_[stats.vonmises(8.0, loc=-1.5).rvs(n, random_state=1), stats.vonmises(4.0, loc=1.5).rvs(n, random_state=2)]
    model = ExponentialFamilyMixture("von_mises", 2, random_state=0).fit(x[:, None])
    _recovered(model, np.array([[-1.5, 8.0], [1.5, 4.0]]), 0.1)
    alphas = np.array([[8.0, 2.0, 2.0], [2.0, 2.0, 8.0]])
    x = np.vstack([rng.dirichlet(a, n) for a in alphas])[:, :2]  # the catalog's two free coordinates
    model = ExponentialFamilyMixture("dirichlet", 2, random_state=0).fit(x)
    _recovered(model, alphas, 0.1)


def test_fitted_parameters_in_three_charts_agree(gamma_data):
    model = ExponentialFamilyMixture("gamma", 2, random_state=0).fit(gamma_data)
    k, theta = model.params_.T
    np.testing.assert_allclose(model.natural_params_, np.c_[k, -1 / theta], rtol=1e-12)  # T = (log x, x), h = 1/x
    from scipy.special import digamma
    np.testing.assert_allclose(model.expectation_params_, np.c_[digamma(k) + np.log(theta), k * theta], rtol=1e-10)
    assert model.param_names_ == ("k", "theta")


def test_sample_bic_aic_pipeline_and_grid_search(gamma_data):
    model = ExponentialFamilyMixture("gamma", 2, random_state=0).fit(gamma_data)
    x, labels = model.sample(20000)
    assert x.shape == (20000, 1) and set(labels) == {0, 1}
    assert np.mean(labels == 0) == pytest.approx(model.weights_[0], abs=0.02)
    assert model.bic(gamma_data) > model.aic(gamma_data)
    search = GridSearchCV(ExponentialFamilyMixture("gamma", random_state=0), {"n_components": [1, 2, 3]}, cv=3)
    search.fit(gamma_data)
    assert search.best_params_["n_components"] >= 2
    pipeline = make_pipeline(FunctionTransformer(np.exp), ExponentialFamilyMixture("gamma", 2, random_state=0))
    pipeline.fit(np.log(gamma_data))
    assert pipeline.predict(np.log(gamma_data[:5])).shape == (5,)


def test_bad_settings_and_data_are_refused(gamma_data):
    for bad in ({"tol": float("nan")}, {"n_components": 0}, {"init_params": "spectral"}, {"step_exponent": 0.4}):
        with pytest.raises(InvalidArgumentError):
            ExponentialFamilyMixture("gamma", **{"n_components": 2, **bad}).fit(gamma_data)
    with pytest.raises(ValueError):
        ExponentialFamilyMixture("gamma", 2).fit(-gamma_data)
    with pytest.raises(ValueError, match="columns"):
        ExponentialFamilyMixture("gamma", 2).fit(np.c_[gamma_data, gamma_data])


def test_warm_start_continues_from_the_last_fit(gamma_data):
    model = ExponentialFamilyMixture("gamma", 2, random_state=0, max_iter=2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(gamma_data)
        first = model.lower_bound_
        model.fit(gamma_data)
    assert model.lower_bound_ >= first - 1e-12


START = [[1.5, 1.5], [15.0, 0.8]]


def _fixed_iterations(data, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol = −1: every iteration runs, no convergence claimed
        return ExponentialFamilyMixture("gamma", 2, params_init=START, tol=-1, max_iter=25, **options).fit(data)


def test_torch_tensors_give_the_numpy_fit(gamma_data):
    torch = pytest.importorskip("torch")
    reference = _fixed_iterations(gamma_data)
    on_torch = _fixed_iterations(torch.tensor(gamma_data), chunk_size=1500)
    np.testing.assert_allclose(on_torch.params_, reference.params_, rtol=1e-10)
    assert on_torch.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-12)
    x = torch.tensor(gamma_data[:50])
    assert torch.equal(on_torch.predict(x), torch.as_tensor(reference.predict(gamma_data[:50])))
    np.testing.assert_allclose(on_torch.score_samples(x).numpy(), reference.score_samples(gamma_data[:50]), rtol=1e-12)
    rng = np.random.default_rng(2)
    blobs = _blobs(rng, 3, 2, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ExponentialFamilyMixture(n_components=2, random_state=0, tol=-1, max_iter=10).fit(blobs)
        b = ExponentialFamilyMixture(n_components=2, params_init=_first_params(blobs), tol=-1, max_iter=10)
        b.fit(torch.tensor(blobs))
        c = ExponentialFamilyMixture(n_components=2, params_init=_first_params(blobs), tol=-1, max_iter=10).fit(blobs)
    np.testing.assert_allclose(b.params_, c.params_, rtol=1e-9, atol=1e-12)
    assert np.isfinite(a.lower_bound_)


def _first_params(x):
    from numeric.exponential import GaussianMaps
    maps = GaussianMaps(x.shape[1])
    cov = np.cov(x.T)
    return np.concatenate([x[:2], np.repeat(cov[maps.iu][None], 2, axis=0)], axis=1)


def test_a_dask_array_gives_the_in_memory_fit(gamma_data):
    da = pytest.importorskip("dask.array")
    reference = _fixed_iterations(gamma_data)
    lazy = _fixed_iterations(da.from_array(gamma_data, chunks=(500, 1)), chunk_size=800)
    np.testing.assert_allclose(lazy.params_, reference.params_, rtol=1e-10)
    assert lazy.lower_bound_ == pytest.approx(reference.lower_bound_, rel=1e-12)


def _distributed_fit(rank, world, port, path, data):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        share = np.array_split(data, world)[rank]
        model = _fixed_iterations(share, distributed=True)
        if rank == 0:
            np.save(path, np.concatenate([model.params_.ravel(), [model.lower_bound_]]))
    finally:
        dist.destroy_process_group()


def test_data_parallel_em_over_two_processes_gives_the_single_process_fit(gamma_data, tmp_path):
    pytest.importorskip("torch")
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = str(tmp_path / "fit.npy")
    mp.spawn(_distributed_fit, args=(2, port, path, gamma_data), nprocs=2, join=True)
    reference = _fixed_iterations(gamma_data)
    result = np.load(path)
    np.testing.assert_allclose(result[:-1], reference.params_.ravel(), rtol=1e-10)
    assert result[-1] == pytest.approx(reference.lower_bound_, rel=1e-12)


def test_partial_fit_after_fit_continues_from_the_fit(gamma_data):
    model = ExponentialFamilyMixture("gamma", 2, random_state=0).fit(gamma_data)
    before, score = model.params_.copy(), model.score(gamma_data)
    model.partial_fit(gamma_data)  # one more full-data EM step from the fit: a small move, uphill
    np.testing.assert_allclose(model.params_, before, rtol=2e-3)
    assert model.score(gamma_data) >= score - 1e-12


def test_the_gaussian_e_step_built_in_cache_equals_the_stored_statistics_route():
    """The in-memory Gaussian E-step builds T(x) chunk by chunk from the data's columns, on threads; the
    same fit through a list of chunks (T stored per chunk, one thread) agrees, and no copy of X is kept."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(-2, 1, (700, 3)), rng.normal(2, 0.5, (500, 3)) @ rng.normal(size=(3, 3))])
    start = ExponentialFamilyMixture(n_components=2, random_state=0, max_iter=1).fit(x)
    common = dict(n_components=2, params_init=start.params_, max_iter=15, tol=-1, chunk_size=256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol < 0: every iteration runs
        columns = ExponentialFamilyMixture(**common).fit(x)
        chunked = ExponentialFamilyMixture(**common).fit([x[i:i + 256] for i in range(0, len(x), 256)])
    assert np.allclose(columns.params_, chunked.params_, rtol=1e-10, atol=1e-12)
    assert columns.lower_bound_ == pytest.approx(chunked.lower_bound_, rel=1e-12)
    assert getattr(columns, "_columns", None) is None
