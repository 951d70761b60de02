"""EM for finite mixtures of an exponential family, as alternating projections.

Key equations (components p(x | θ_k) = exp(θ_k·T(x) − A(θ_k)) h(x), weights π_k):
    E-step (e-projection of the data onto the model's posteriors):
        r_nk = π_k p(x_n | θ_k) / Σ_j π_j p(x_n | θ_j)
    M-step (m-projection, moment matching):
        N_k = Σ_n r_nk,  η_k = Σ_n r_nk T(x_n) / N_k,  θ_k = θ(η_k),  π_k = N_k / N
Free energy: log L(Θ) = ELBO(q, Θ) + KL(q ‖ p(z | x, Θ)). The M-step raises the ELBO with q fixed; the E-step
sets q to the posterior, closing the KL gap. `MixtureFit.history` records all three every iteration.

The E-step is one matrix product T Θᵀ (N×m by m×K) and the M-step one more (Rᵀ T): T(x) is computed once.

>>> rng = np.random.default_rng(0)
>>> x = np.concatenate([rng.poisson(2.0, 3000), rng.poisson(12.0, 2000)]).astype(float)
>>> fit = fit_mixture("poisson", x, 2, seed=0)
>>> np.round(np.sort(fit.params[:, 0])).tolist(), fit.monotone
([2.0, 12.0], True)
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from symgeo.errors import InvalidArgumentError, NumericalError

from .exponential import DegenerateMoments, maps_for
from .validate import count, finite

MONOTONE_SLACK = 1e-9  # relative decrease of log L tolerated as round-off
SOFTEN = 0.01  # weight of the uniform part of the k-means++ starting responsibilities


@dataclass
class MixtureFit:
    """Result of `fit_mixture`. `params` are (K, n) in the family's chart, `natural` (K, m) are θ."""

    family: str
    param_names: tuple
    weights: np.ndarray
    params: np.ndarray
    natural: np.ndarray
    log_likelihood: float
    n_iter: int
    converged: bool
    monotone: bool
    history: list = field(default_factory=list)  # dicts: log_likelihood, elbo, kl_gap (before the E-step)
    maps: object = field(default=None, repr=False)

    def log_joint(self, x) -> np.ndarray:
        """log π_k + log p(x_n | θ_k), shape (N, K)."""
        return log_joint(self.maps, self.maps.statistics(x), self.maps.log_base(x), np.log(self.weights),
                          self.natural)

    def responsibilities(self, x) -> np.ndarray:
        joint = self.log_joint(x)
        return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))

    def score(self, x) -> float:
        """Mean log-likelihood per point."""
        return float(np.mean(logsumexp(self.log_joint(x), axis=1)))


def fit_mixture(family, x, n_components: int, *, init="kmeans++", weights=None, max_iter: int = 500,
                tol: float = 1e-10, seed=None, reg_covar: float = 1e-6, maps=None) -> MixtureFit:
    """Fit a K-component mixture of `family` (catalog name, spec path, Family, Geometry) to data `x`
    ((N,) or (N, n_variables)). `init`: 'kmeans++', 'random', or a (K, n) array of component parameters
    in the family's chart (with optional `weights`). Stops when the mean log-likelihood changes by less
    than `tol`. Degenerate components are repaired with a RuntimeWarning, never NaN."""
    maps = maps or maps_for(family, reg_covar=reg_covar)
    x = np.asarray(x, dtype=float)
    if len(x) < n_components or n_components < 1:
        raise InvalidArgumentError(
            f"need 1 <= n_components <= number of points, got {n_components} for {len(x)} points"
        )
    count("max_iter", max_iter)
    finite("tol", tol)  # (a negative tol runs all max_iter iterations)
    if not np.all(np.isfinite(x)):
        raise InvalidArgumentError(f"{maps.name}: the data contain NaN or infinite values")
    stats, log_base = maps.statistics(x), maps.log_base(x)
    if not np.all(np.isfinite(stats)):
        raise InvalidArgumentError(
            f"{maps.name}: some data points lie outside the support (T(x) is not finite)"
        )
    require_spread(maps, x)
    rng = np.random.default_rng(seed)
    log_w, theta = initial(maps, x, stats, n_components, init, weights, rng)
    history, log_resp, resp, previous = [], None, None, None
    converged = False
    for iteration in range(1, max_iter + 1):
        joint = log_joint(maps, stats, log_base, log_w, theta)
        log_norm = _logsumexp_rows(joint)
        loglik = float(log_norm.sum())
        if not np.isfinite(loglik):
            raise NumericalError(
                f"{maps.name} mixture: the log-likelihood is {loglik} at iteration {iteration}"
            )
        history.append(_free_energy(loglik, joint, log_resp, resp))
        log_resp = joint - log_norm[:, None]                                 # E-step: e-projection
        resp = np.exp(log_resp)
        log_w, theta = _m_step(
            maps, stats, resp, theta, rng, _collapsed(maps, x, resp)
        )  # M-step: m-projection
        if previous is not None and abs(loglik - previous) < tol * len(x):
            converged = True
            break
        previous = loglik
    joint = log_joint(maps, stats, log_base, log_w, theta)
    loglik = float(_logsumexp_rows(joint).sum())
    history.append(_free_energy(loglik, joint, log_resp, resp))
    monotone = _is_monotone([h["log_likelihood"] for h in history])
    if not monotone:
        warnings.warn(
            f"{maps.name} mixture: the log-likelihood decreased (a repaired component)",
            RuntimeWarning,
            stacklevel=2,
        )
    return MixtureFit(maps.name, maps.param_names, np.exp(log_w), maps.params(theta), theta, loglik,
                      iteration, converged, monotone, history, maps)


def require_spread(maps, x) -> None:
    """A family with more sufficient statistics than variables (gamma: log x and x) has no maximum-
    likelihood fit to data that are all one point: its moments lie on the boundary (k → ∞)."""
    if maps.m > maps.n_variables and np.all(np.ptp(x.reshape(len(x), -1), axis=0) == 0):
        raise InvalidArgumentError(
            f"{maps.name}: all data points are equal; no {maps.name} distribution fits "
            f"them (the maximum-likelihood estimate does not exist)"
        )


COLLAPSED_PSEUDO = 0.01  # pseudo-observations of the pooled moments given a collapsed component, per point
COLLAPSE_RTOL = 1e-12  # a component's variance this small beside the data's is a point mass


def _collapsed(maps, x, resp) -> np.ndarray:
    """Components of a family with more statistics than variables (gamma: log x and x) that have
    shrunk onto one value: their m-projection exists only in the limit (k → ∞, printed as 10¹³), so
    they are treated as degenerate (a Gaussian is kept from it by reg_covar instead)."""
    k = resp.shape[1]
    if maps.m <= maps.n_variables or hasattr(maps, "reg_covar"):
        return np.zeros(k, dtype=bool)
    points = x.reshape(len(x), -1)
    counts = np.maximum(resp.sum(axis=0), np.finfo(float).tiny)
    mean = (resp.T @ points) / counts[:, None]
    spread = (resp.T @ (points - points.mean(axis=0)) ** 2) / counts[:, None] - (
        mean - points.mean(axis=0)
    ) ** 2
    return np.all(spread <= COLLAPSE_RTOL * points.var(axis=0), axis=1) & (counts > 1.5)


def log_joint(maps, stats, log_base, log_w, theta) -> np.ndarray:
    return stats @ theta.T + (log_w - maps.log_partition(theta)) + log_base[:, None]


def _logsumexp_rows(a) -> np.ndarray:
    top = a.max(axis=1)
    return np.log(np.exp(a - top[:, None]).sum(axis=1)) + top


def _free_energy(loglik: float, joint, log_resp, resp) -> dict:
    """log L, and the ELBO and KL gap of the previous E-step's q under the current parameters."""
    if log_resp is None:
        return {"log_likelihood": loglik, "elbo": None, "kl_gap": None}
    elbo = float(np.einsum("nk,nk->", resp, joint - log_resp))
    return {"log_likelihood": loglik, "elbo": elbo, "kl_gap": loglik - elbo}


def _m_step(maps, stats, resp, theta, rng, collapsed=None):
    counts = resp.sum(axis=0)
    empty = counts < 10 * np.finfo(float).eps * len(stats)
    if np.any(empty):
        resp = _reseed(resp, np.flatnonzero(empty), rng)
        counts = resp.sum(axis=0)
    eta = (resp.T @ stats) / counts[:, None]
    theta = project(maps, eta, counts, stats.mean(axis=0), theta, collapsed)
    return np.log(counts / counts.sum()), theta


def _reseed(resp, empty, rng):
    """Give each empty component a random 1% of the points (a warning says so)."""
    warnings.warn(f"empty mixture component(s) {empty.tolist()} re-initialised on random points",
                  RuntimeWarning, stacklevel=4)
    resp = resp.copy()
    size = max(2, len(resp) // 100)
    for k in empty:
        chosen = rng.choice(len(resp), size=min(size, len(resp)), replace=False)
        resp[chosen] = 0.0
        resp[chosen, k] = 1.0
    return resp


def project(maps, eta, counts, pooled, theta, collapsed=None):
    """θ(η) per component; a degenerate η (or a collapsed component's) is pulled toward the pooled
    moments (a conjugate-prior pseudo-count)."""
    collapsed = np.zeros(len(eta), dtype=bool) if collapsed is None else collapsed
    if not collapsed.any():
        try:
            return maps.m_projection(eta, theta)
        except DegenerateMoments:
            pass
    out = np.empty_like(theta)
    for k in range(len(eta)):
        pseudo = COLLAPSED_PSEUDO * counts[k] if collapsed[k] else 0.0
        while True:
            try:
                out[k] = maps.m_projection(
                    ((counts[k] * eta[k] + pseudo * pooled) / (counts[k] + pseudo))[None], theta[k : k + 1]
                )[0]
                break
            except DegenerateMoments:
                if not np.isfinite(pseudo) or pseudo > counts.sum():
                    raise
                pseudo = max(2 * pseudo, 1e-6 * counts.sum())
        if pseudo:
            warnings.warn(f"{maps.name}: component {k} is degenerate (its moments lie on the boundary); "
                          f"stabilised with {pseudo:.3g} pseudo-observations of the pooled data",
                          RuntimeWarning, stacklevel=4)
    return out


def initial(maps, x, stats, k, init, weights, rng):
    if isinstance(init, str):
        if init == "kmeans++":
            centers = kmeans_plusplus(x.reshape(len(x), -1), k, rng)
            labels = np.argmin(_squared_distances(x.reshape(len(x), -1), centers), axis=1)
            resp = (1 - SOFTEN) * np.eye(k)[labels] + SOFTEN / k  # every η strictly inside the hull
        elif init == "random":
            resp = rng.dirichlet(np.ones(k), size=len(x))
        else:
            raise InvalidArgumentError(
                f"init must be 'kmeans++', 'random' or a (K, n) array of parameters, not {init!r}"
            )
        return _m_step(maps, stats, resp, np.zeros((k, maps.m)), rng)
    params = np.atleast_2d(np.asarray(init, dtype=float))
    if params.shape != (k, len(maps.param_names)):
        raise InvalidArgumentError(
            f"init must have shape ({k}, {len(maps.param_names)}) for {maps.param_names}, not {params.shape}"
        )
    if not np.all(np.isfinite(params)):
        raise InvalidArgumentError(f"init must be finite parameters, not {params.tolist()}")
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (k,) or not np.all(np.isfinite(w)) or not np.all(w > 0):
        raise InvalidArgumentError(f"weights must be {k} positive finite numbers, not {w.tolist()}")
    return np.log(w / w.sum()), maps.natural(params)


def kmeans_plusplus(points, k: int, rng) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each new centre drawn with probability ∝ D²."""
    centers = [points[rng.integers(len(points))]]
    nearest = _squared_distances(points, np.array(centers))[:, 0]
    for _ in range(1, k):
        total = nearest.sum()
        index = rng.integers(len(points)) if total == 0 else rng.choice(len(points), p=nearest / total)
        centers.append(points[index])
        nearest = np.minimum(nearest, _squared_distances(points, points[index][None])[:, 0])
    return np.array(centers)


def _squared_distances(points, centers) -> np.ndarray:
    return ((points[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)


def _is_monotone(values) -> bool:
    values = np.asarray(values)
    slack = MONOTONE_SLACK * np.maximum(1.0, np.abs(values[1:]))
    return bool(np.all(np.diff(values) >= -slack))
