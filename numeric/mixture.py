"""Mixtures of any exponential family as a scikit-learn estimator, fitted by EM in batch, chunk by
chunk (data larger than memory: a memory-mapped array or re-iterable chunks, one pass per
iteration), or online (stepwise EM).

EM here is alternating projections (see numeric.em): the E-step is one product T Θᵀ and a
log-sum-exp, the M-step θ_k = θ(η_k) with η_k the responsibility-weighted mean of T(x). Both only
need the sufficient statistics Σ_n r_nk and Σ_n r_nk T(x_n), so a pass over the data adds them up
chunk by chunk: batch EM with memory bounded by `chunk_size` rows.

Stepwise (online) EM, `partial_fit` (Cappé & Moulines 2009): after the t-th minibatch the running
statistics are s ← (1 − γ_t) s + γ_t ŝ_t, with ŝ_t the minibatch's mean of (r_k, r_k T(x)) and
γ_t = (t + step_offset)^(−step_exponent), 0.5 < step_exponent ≤ 1 (Robbins–Monro: Σγ = ∞, Σγ² < ∞);
then θ_k = θ(s_1k / s_0k), π_k = s_0k. With γ_t = 1 for a single batch holding all the data it is one
batch EM iteration.

>>> rng = np.random.default_rng(0)
>>> x = np.concatenate([rng.poisson(2.0, 3000), rng.poisson(12.0, 2000)])[:, None]
>>> model = ExponentialFamilyMixture("poisson", 2, random_state=0).fit(x)
>>> np.round(np.sort(model.params_[:, 0])).tolist(), model.converged_
([2.0, 12.0], True)
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from symgeo.errors import InvalidArgumentError, NumericalError

from .em import COLLAPSE_RTOL, initial, log_joint, project, require_spread
from .exponential import GaussianMaps, maps_for

INIT_PARAMS = ("k-means++", "kmeans", "random")
DEFAULT_CHUNK = 16_384  # rows: measured best of 4096–65536 for 10⁶ points, 2-D and 10-D
STATISTICS_BYTES = 2 * 2 ** 30  # an in-memory X whose T(x) fits in this keeps T(x) between iterations


class ExponentialFamilyMixture(DensityMixin, BaseEstimator):
    """A K-component mixture of one exponential family (a catalog name such as "gamma",
    "poisson", "von_mises", "dirichlet", "multivariate_normal" — whose dimension is read from X — or
    the path of a spec file), fitted by EM.

    X has one column per variable of the family. Fitted attributes: `weights_` (K,), `params_`
    (K, n) in the family's own chart (`param_names_`), `natural_params_` θ and `expectation_params_`
    η (K, m), `converged_`, `n_iter_`, `lower_bound_` (mean log-likelihood per point of the best run),
    `n_features_in_`. Settings follow scikit-learn's GaussianMixture where they overlap.
    """

    def __init__(self, family="multivariate_normal", n_components=1, *, tol=1e-6, max_iter=200, n_init=1,
                 init_params="k-means++", weights_init=None, params_init=None, reg_covar=1e-6,
                 warm_start=False, random_state=None, verbose=0, verbose_interval=10,
                 chunk_size=DEFAULT_CHUNK, step_exponent=0.6, step_offset=2.0, distributed=False):
        self.family = family
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.params_init = params_init
        self.reg_covar = reg_covar
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.step_exponent = step_exponent
        self.step_offset = step_offset
        self.distributed = distributed

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Batch EM. X: an array (a memory-mapped one is read `chunk_size` rows at a time), or a
        re-iterable of arrays (a list of chunks, or a callable returning a fresh iterator)."""
        chunks = self._chunk_source(X, reset=True)
        self._validate_settings()
        rng = _generator(self.random_state)
        best = None
        runs = 1 if (self.warm_start and hasattr(self, "natural_params_")) else self.n_init
        try:
            for run in range(runs):
                result = self._em(chunks, rng, run)
                if best is None or result["lower_bound"] > best["lower_bound"]:
                    best = result
        finally:
            self._columns = self._pooled = None  # the data's transposed copy is not kept (nor pickled)
        if not best["converged"]:
            warnings.warn(
                f"EM did not converge in {self.max_iter} iterations (tol={self.tol}); raise max_iter or tol",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._set_fitted(best["log_w"], best["theta"])
        if hasattr(self, "_running"):
            del self._running  # a later partial_fit starts its running statistics from this fit
        self.converged_, self.n_iter_, self.lower_bound_ = (
            best["converged"],
            best["n_iter"],
            best["lower_bound"],
        )
        return self

    def fit_predict(self, X, y=None):
        return self.fit(X).predict(X)

    def partial_fit(self, X, y=None):
        """One stepwise-EM update from the minibatch X (see the module docstring)."""
        first = not hasattr(self, "_running")
        fitted = hasattr(self, "natural_params_")  # after fit(): continue from its parameters
        X = validate_data(self, X, reset=first and not fitted, dtype=float, ensure_min_samples=1)
        self._validate_settings()
        maps = self._maps_for(X) if first and not fitted else self._maps
        stats, log_base = maps.statistics(X), maps.log_base(X)
        if first and fitted:
            self._running, self._steps = None, 0
        elif first:
            rng = _generator(self.random_state)
            if len(X) < self.n_components:
                raise InvalidArgumentError(f"the first minibatch needs at least n_components = "
                                           f"{self.n_components} points, not {len(X)}")
            log_w, theta = initial(maps, X, stats, self.n_components, self._init_for(maps, X, rng), None, rng)
            self._running, self._steps = None, 0
            self._set_fitted(log_w, theta)
        norm, resp = _posteriors(
            log_joint(maps, stats, log_base, np.log(self.weights_), self.natural_params_)
        )
        batch_counts, batch_sums = resp.mean(axis=0), resp.T @ stats / len(X)
        self._steps += 1
        gamma = 1.0 if self._steps == 1 else (self._steps + self.step_offset) ** (-self.step_exponent)
        counts, sums = self._running_stats(batch_counts, batch_sums, gamma)
        theta = self._m_step(maps, counts, sums, stats.mean(axis=0))
        self._set_fitted(np.log(counts / counts.sum()), theta)
        self.n_iter_ = self._steps
        self.lower_bound_ = float(norm.mean())
        self.converged_ = False  # an online fit has no end of its own
        return self

    def _running_stats(self, batch_counts, batch_sums, gamma):
        if self._running is None:
            self._running = (batch_counts, batch_sums)
        else:
            counts, sums = self._running
            self._running = (
                (1 - gamma) * counts + gamma * batch_counts,
                (1 - gamma) * sums + gamma * batch_sums,
            )
        counts, sums = self._running
        return counts, sums

    # -- the EM loop over chunks -------------------------------------------------------------------
    def _em(self, chunks, rng, run: int) -> dict:
        maps = self._maps
        if self.warm_start and hasattr(self, "natural_params_"):
            log_w, theta = np.log(self.weights_), self.natural_params_
        else:
            log_w, theta = self._start(maps, chunks, rng)
            if self.distributed:  # every process starts where process 0 does
                log_w, theta = _broadcast(log_w), _broadcast(theta)
        previous, converged, lower_bound = None, False, -np.inf
        for iteration in range(1, self.max_iter + 1):
            totals = self._e_step(maps, chunks, log_w, theta)
            lower_bound = totals["loglik"] / totals["n"]
            if not np.isfinite(lower_bound):
                raise NumericalError(
                    f"{maps.name} mixture: the log-likelihood is {lower_bound} at iteration {iteration}"
                )
            log_w = np.log(np.maximum(totals["counts"], np.finfo(float).tiny) / totals["n"])
            theta = self._m_step(maps, totals["counts"], totals["sums"], totals["pooled"] / totals["n"],
                                 totals, theta)
            self._progress(run, iteration, lower_bound)
            if previous is not None and abs(lower_bound - previous) < self.tol:
                converged = True
                break
            previous = lower_bound
        final = self._e_step(maps, chunks, log_w, theta)  # the bound of the parameters returned
        return {"log_w": log_w, "theta": theta, "converged": converged, "n_iter": iteration,
                "lower_bound": final["loglik"] / final["n"]}

    def _e_step(self, maps, chunks, log_w, theta) -> dict:
        """Log-likelihood and sufficient statistics summed over the chunks (or on the data's torch
        device, or on Dask's scheduler), and with `distributed` over every process's share of the data."""
        local = self._local_e_step(maps, chunks, log_w, theta)
        return _all_reduced(local) if self.distributed else local

    def _local_e_step(self, maps, chunks, log_w, theta) -> dict:
        if getattr(self, "_torch", False):
            return self._e_step_torch(maps, chunks, log_w, theta)
        spread = _needs_spread(maps)
        offset = log_w - maps.log_partition(theta)
        if getattr(self, "_dask", None) is not None:
            import dask
            blocks = self._dask.to_delayed().ravel()
            parts = dask.compute(
                *[dask.delayed(_block_totals)(maps, b, theta, offset, spread) for b in blocks]
            )
        elif getattr(self, "_columns", None) is not None:  # in-memory Gaussian data: T built in cache
            return self._gaussian_e_step(maps, theta, offset)
        else:
            parts = _over_chunks(lambda chunk: _chunk_totals(*chunk, theta, offset, spread), chunks())
        return {key: sum(part[key] for part in parts) for key in parts[0]}

    def _gaussian_e_step(self, maps, theta, offset) -> dict:
        """The E-step over the in-memory Gaussian columns; Σ T(x), the same every pass, summed on the
        first pass of the fit only."""
        columns, rows = self._columns, _cache_rows(maps.m, self.chunk_size)
        offset = offset + maps.log_base(columns[:, :1].T)[0]
        first = self._pooled is None
        parts = _over_chunks(
            lambda start: _gaussian_totals(maps, columns, start, rows, theta, offset, first),
            range(0, columns.shape[1], rows))
        totals = {key: sum(part[key] for part in parts) for key in parts[0]}
        if first:
            self._pooled = totals["pooled"]
        return totals | {"pooled": self._pooled}

    def _e_step_torch(self, maps, chunks, log_w, theta) -> dict:
        import torch

        from . import mixture_torch
        first = next(iter(chunks()))[1]
        theta_t = mixture_torch.as_tensor(theta, first)
        offset = mixture_torch.as_tensor(log_w - maps.log_partition(theta), first)
        totals = {"n": 0, "loglik": 0.0, "counts": 0, "sums": 0, "pooled": 0}
        for x, stats, log_base in chunks():
            norm, resp = mixture_torch.responsibilities(stats, log_base, theta_t, offset)
            totals["n"] += len(x)
            totals["loglik"] = totals["loglik"] + norm.sum()
            totals["counts"] = totals["counts"] + resp.sum(dim=1)
            totals["sums"] = totals["sums"] + resp @ stats
            totals["pooled"] = totals["pooled"] + stats.sum(dim=0)
            if _needs_spread(maps):
                points = x.reshape(len(x), -1)
                for key, value in (("x1", resp @ points), ("x2", resp @ points ** 2),
                                   ("all1", points.sum(dim=0)), ("all2", (points ** 2).sum(dim=0))):
                    totals[key] = totals.get(key, 0) + value
        return {
            k: (v.detach().cpu().double().numpy() if torch.is_tensor(v) else v) for k, v in totals.items()
        } | {"loglik": float(totals["loglik"])}

    def _m_step(self, maps, counts, sums, pooled, totals=None, theta=None):
        eta = np.where(counts[:, None] > 0, sums / np.maximum(counts, np.finfo(float).tiny)[:, None], pooled)
        collapsed = self._collapsed(maps, counts, totals) if totals is not None else None
        previous = theta if theta is not None else self.natural_params_
        return project(maps, eta, np.maximum(counts, np.finfo(float).tiny), pooled, previous, collapsed)

    @staticmethod
    def _collapsed(maps, counts, totals):
        """Components of a family with more statistics than variables that sit on one value (see
        numeric.em): their variance is tiny beside the data's."""
        if not _needs_spread(maps):
            return None
        n = totals["n"]
        scale = totals["all2"] / n - (totals["all1"] / n) ** 2
        safe = np.maximum(counts, np.finfo(float).tiny)[:, None]
        spread = totals["x2"] / safe - (totals["x1"] / safe) ** 2
        return np.all(spread <= COLLAPSE_RTOL * np.maximum(scale, np.finfo(float).tiny), axis=1) & (
            counts > 1.5
        )

    def _start(self, maps, chunks, rng):
        """Initial weights and θ from the first chunk (or the given params_init and weights_init)."""
        if self.params_init is not None:
            params = np.atleast_2d(np.asarray(self.params_init, dtype=float))
            weights = (np.full(self.n_components, 1 / self.n_components) if self.weights_init is None
                       else np.asarray(self.weights_init, dtype=float))
            if params.shape != (self.n_components, len(maps.param_names)) or not np.all(np.isfinite(params)):
                raise InvalidArgumentError(f"params_init must be finite with shape ({self.n_components}, "
                                           f"{len(maps.param_names)}) for {maps.param_names}")
            if (
                weights.shape != (self.n_components,)
                or not np.all(np.isfinite(weights))
                or np.any(weights <= 0)
            ):
                raise InvalidArgumentError(
                    f"weights_init must be {self.n_components} positive finite numbers"
                )
            return np.log(weights / weights.sum()), maps.natural(params)
        x, stats, _ = next(iter(chunks()))
        if getattr(self, "_torch", False):
            x, stats = x.detach().cpu().double().numpy(), stats.detach().cpu().double().numpy()
        return initial(maps, x, stats, self.n_components, self._init_for(maps, x, rng), None, rng)

    def _init_for(self, maps, x, rng):
        """numeric.em's initial() takes 'kmeans++', 'random' or parameters; 'kmeans' is k-means
        (scikit-learn's KMeans) whose clusters' moments give the start."""
        if self.init_params == "random":
            return "random"
        if self.init_params == "k-means++":
            return "kmeans++"
        from sklearn.cluster import KMeans
        points = x.reshape(len(x), -1)
        labels = KMeans(self.n_components, n_init=1, random_state=int(rng.integers(2**31))).fit_predict(
            points
        )
        stats = maps.statistics(x)
        resp = np.eye(self.n_components)[labels] * 0.99 + 0.01 / self.n_components
        eta = resp.T @ stats / resp.sum(axis=0)[:, None]
        theta = project(
            maps, eta, resp.sum(axis=0), stats.mean(axis=0), np.zeros((self.n_components, maps.m))
        )
        return maps.params(theta)

    # -- using the fit ----------------------------------------------------------------------------
    def score_samples(self, X):
        """log p(x) of each row (a torch tensor on X's device for a tensor X)."""
        if _is_torch(X):
            import torch
            return torch.logsumexp(self._joint_torch(X), dim=1)
        return logsumexp(self._joint(X), axis=1)

    def score(self, X, y=None):
        """Mean log-likelihood per point."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        if _is_torch(X):
            import torch
            return torch.softmax(self._joint_torch(X), dim=1)
        joint = self._joint(X)
        return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))

    def predict(self, X):
        if _is_torch(X):
            return self._joint_torch(X).argmax(dim=1)
        return self._joint(X).argmax(axis=1)

    def sample(self, n_samples=1):
        """(X, component labels) drawn from the fitted mixture."""
        check_is_fitted(self)
        if n_samples < 1:
            raise InvalidArgumentError(f"n_samples must be at least 1, not {n_samples}")
        rng = _generator(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        draw = self._sampler()
        parts = [draw(self.params_[k], int(c), rng) for k, c in enumerate(counts) if c]
        labels = np.repeat(np.arange(self.n_components), counts)
        return np.vstack(parts), labels

    def bic(self, X):
        return -2 * self.score(X) * len(X) + self._n_parameters() * np.log(len(X))

    def aic(self, X):
        return -2 * self.score(X) * len(X) + 2 * self._n_parameters()

    def _n_parameters(self) -> int:
        return self.n_components * self.params_.shape[1] + self.n_components - 1

    def _joint(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=float)
        maps = self._maps
        return log_joint(
            maps, maps.statistics(X), maps.log_base(X), np.log(self.weights_), self.natural_params_
        )

    def _joint_torch(self, X):
        from . import mixture_torch
        check_is_fitted(self)
        X = mixture_torch.validated(X, self.n_features_in_)
        maps = self._maps
        statistics = getattr(self, "_torch_statistics", None) or mixture_torch.TorchStatistics(maps)
        self._torch_statistics = statistics
        stats, log_base = statistics(X)
        theta = mixture_torch.as_tensor(self.natural_params_, X)
        offset = mixture_torch.as_tensor(np.log(self.weights_) - maps.log_partition(self.natural_params_), X)
        return (theta @ stats.T + offset[:, None] + log_base[None, :]).T

    def _sampler(self):
        maps = self._maps
        if isinstance(maps, GaussianMaps):
            def draw(params, n, rng):
                mean, cov = maps.mean_cov(maps.natural(params[None]))
                return rng.multivariate_normal(mean[0], cov[0], size=n)
            return draw
        from .compiled import CompiledFamily
        from .sampling import sampler
        columns = sampler(CompiledFamily(maps.geometry))
        if columns is None:
            raise InvalidArgumentError(f"{maps.name}: no sampler for this family's support")
        return lambda params, n, rng: np.column_stack(columns(params, n, rng))

    # -- bookkeeping -------------------------------------------------------------------------------
    def _set_fitted(self, log_w, theta) -> None:
        maps = self._maps
        self.weights_ = np.exp(log_w - logsumexp(log_w))
        self.natural_params_ = np.asarray(theta, dtype=float)
        self.params_ = maps.params(self.natural_params_)
        self.expectation_params_ = _expectations(maps, self.natural_params_)
        self.param_names_ = tuple(maps.param_names)

    def _chunk_source(self, X, reset: bool):
        """A callable giving a fresh iterator of (rows, T(rows), log h(rows)) chunks, validated."""
        self._torch, self._columns, self._pooled = _is_torch(X), None, None
        if self._torch:
            return self._torch_chunks(X)
        self._dask = None
        if type(X).__module__.startswith("dask"):
            return self._dask_chunks(X, reset)
        if callable(X) or (
            isinstance(X, (list, tuple)) and len(X) and _is_array(X[0]) and np.ndim(X[0]) == 2
        ):
            make = X if callable(X) else (lambda: iter(X))
            first = validate_data(self, next(iter(make())), reset=reset, dtype=float, ensure_min_samples=1)
            self._maps = self._maps_for(first)

            def chunks():
                for part in make():
                    yield self._with_statistics(validate_data(self, part, reset=False, dtype=float))
            return chunks
        if isinstance(X, np.memmap):
            if X.ndim != 2:
                raise InvalidArgumentError(f"a memory-mapped X must be 2-D, not {X.ndim}-D")
            head = validate_data(self, np.asarray(X[: min(len(X), 2)]), reset=reset, dtype=float)
            self._maps = self._maps_for(head)
            rows = max(int(self.chunk_size), 1)

            def chunks():
                for start in range(0, len(X), rows):
                    yield self._with_statistics(np.asarray(X[start:start + rows], dtype=float))
            return chunks
        X = validate_data(self, X, reset=reset, dtype=float, ensure_min_samples=2)
        if len(X) < self.n_components:
            raise ValueError(f"n_samples={len(X)} should be >= n_components={self.n_components}")
        self._maps = self._maps_for(X)
        require_spread(self._maps, X)
        rows = max(int(self.chunk_size), 1)
        if isinstance(self._maps, GaussianMaps):  # the E-step builds T chunk by chunk from the columns
            self._columns = np.ascontiguousarray(X.T)
            return lambda: (self._with_statistics(X[i:i + rows]) for i in range(0, len(X), rows))
        if len(X) * self._maps.m * 8 <= STATISTICS_BYTES:  # T(x) computed once, kept for every iteration
            stats, log_base = self._maps.statistics(X), self._maps.log_base(X)
            return lambda: (
                (X[i : i + rows], stats[i : i + rows], log_base[i : i + rows]) for i in range(0, len(X), rows)
            )
        return lambda: (self._with_statistics(X[i:i + rows]) for i in range(0, len(X), rows))

    def _dask_chunks(self, X, reset: bool):
        """A Dask array: blocks of rows (all columns each), reduced on Dask's own scheduler each
        iteration; the first block seeds the start."""
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (rows, variables), not {X.ndim}-D")
        rows = max(int(self.chunk_size), 1)
        self._dask = X.rechunk({0: min(rows, max(X.shape[0], 1)), 1: -1})
        head = validate_data(self, np.asarray(self._dask.blocks[0].compute()), reset=reset, dtype=float)
        self._maps_for(head)

        def chunks():  # only the first block is read from here (the start); the passes run in Dask
            yield self._with_statistics(head)
        return chunks

    def _torch_chunks(self, X):
        from . import mixture_torch
        X = mixture_torch.validated(X, None)
        if len(X) < max(self.n_components, 2):
            raise ValueError(f"n_samples={len(X)} should be >= n_components={self.n_components}")
        self.n_features_in_ = X.shape[1]
        maps = self._maps_for(X)
        self._torch_statistics = mixture_torch.TorchStatistics(maps)
        rows = max(int(self.chunk_size), 1)
        parts = [(X[i:i + rows], *self._torch_statistics(X[i:i + rows])) for i in range(0, len(X), rows)]
        return lambda: iter(parts)

    def _with_statistics(self, x) -> tuple:
        """(x, T(x), log h(x)) of a chunk; NaN, infinite or out-of-support values refused."""
        if not np.all(np.isfinite(x)):
            raise InvalidArgumentError(f"{self._maps.name}: a chunk contains NaN or infinite values")
        return x, self._maps.statistics(x), self._maps.log_base(x)

    def _maps_for(self, X):
        family = self.family
        if isinstance(family, str) and family.strip() == "multivariate_normal":
            maps = GaussianMaps(X.shape[1], self.reg_covar)
        else:
            maps = maps_for(family, reg_covar=self.reg_covar)
        if maps.n_variables != X.shape[1]:
            raise ValueError(
                f"{maps.name} has {maps.n_variables} variable(s): X needs that many columns, not {X.shape[1]}"
            )
        self._maps = maps
        return maps

    def _validate_settings(self) -> None:
        from .validate import count, finite, nonnegative
        count("n_components", self.n_components)
        count("max_iter", self.max_iter)
        count("n_init", self.n_init)
        count("chunk_size", self.chunk_size)
        finite("tol", self.tol)
        nonnegative("reg_covar", self.reg_covar)
        if not 0.5 < float(self.step_exponent) <= 1:
            raise InvalidArgumentError(f"step_exponent must lie in (0.5, 1], not {self.step_exponent}")
        nonnegative("step_offset", self.step_offset)
        if self.distributed:
            import torch.distributed as dist
            if not (dist.is_available() and dist.is_initialized()):
                raise InvalidArgumentError(
                    "distributed=True needs an initialised torch.distributed process group"
                )
        if self.init_params not in INIT_PARAMS:
            raise InvalidArgumentError(f"init_params must be one of {INIT_PARAMS}, not {self.init_params!r}")

    def _progress(self, run: int, iteration: int, lower_bound: float) -> None:
        if self.verbose and iteration % max(int(self.verbose_interval), 1) == 0:
            print(f"  init {run + 1}, iteration {iteration}: mean log-likelihood {lower_bound:.8g}",
                  file=sys.stderr, flush=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _expectations(maps, theta) -> np.ndarray:
    """η = E[T] of each component (from the generated ∇A, or the Gaussian's moments)."""
    if isinstance(maps, GaussianMaps):
        mean, cov = maps.mean_cov(theta)
        second = cov + mean[:, :, None] * mean[:, None, :]
        return np.concatenate([mean, second[:, maps.iu[0], maps.iu[1]]], axis=1)
    return maps.expectation(theta)


def _chunk_totals(x, stats, log_base, theta, offset, spread: bool) -> dict:
    """One chunk's log-likelihood and sufficient statistics Σ r, Σ r T(x) (and what the collapse test
    needs where `spread`)."""
    norm, resp = _responsibilities(stats, log_base, theta, offset)     # resp: (K, rows)
    part = {"n": len(x), "loglik": float(norm.sum()), "counts": resp.sum(axis=1), "sums": resp @ stats,
            "pooled": stats.sum(axis=0)}
    if spread:
        points = x.reshape(len(x), -1)
        part.update(
            x1=resp @ points, x2=resp @ points**2, all1=points.sum(axis=0), all2=(points**2).sum(axis=0)
        )
    return part


def _over_chunks(work, chunks) -> list:
    """work(chunk) for every chunk, on one thread per core with single-threaded BLAS inside (each chunk's
    products and exponentials stay in its core's cache; BLAS's own threads on top would oversubscribe
    the cores, as scikit-learn's KMeans also avoids). At most two chunks per thread are read ahead, so a
    stream's memory stays bounded by a few chunks."""
    workers = _workers()
    if workers == 1:
        return [work(chunk) for chunk in chunks]
    results, pending = [], deque()
    with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        for chunk in chunks:
            pending.append(pool.submit(work, chunk))
            if len(pending) >= 2 * workers:
                results.append(pending.popleft().result())
        results.extend(future.result() for future in pending)
    return results


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, found once: finding them reads the process's
    memory map, 4 ms that were a fifth of a 2-D iteration."""
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


def _cache_rows(m: int, chunk_size: int) -> int:
    """Rows per chunk whose m statistics fit in 4 MiB (one core's share of cache), at most chunk_size:
    measured best for 10⁶ points, 2-D/3 (16384 rows) and 10-D/5 (8192)."""
    return max(256, min(int(chunk_size), (4 << 20) // (8 * m)))


def _workers() -> int:
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 16))
    except AttributeError:  # not on Linux
        return max(1, min(os.cpu_count() or 1, 16))


def _block_totals(maps, x, theta, offset, spread: bool) -> dict:
    """_chunk_totals of a Dask block (run by Dask's scheduler)."""
    x = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(x)):
        raise InvalidArgumentError(f"{maps.name}: a block contains NaN or infinite values")
    return _chunk_totals(x, maps.statistics(x), maps.log_base(x), theta, offset, spread)


def _responsibilities(stats, log_base, theta, offset) -> tuple:
    """(log p(x) per row, responsibilities as (K, rows)) of one chunk, in place and components-first:
    reductions over K then run along contiguous rows (numpy's reductions over a short last axis of
    an (N, 3) array were half of an iteration)."""
    joint = theta @ stats.T
    joint += log_base[None, :]
    return _normalised(joint, offset)


def _gaussian_totals(maps, columns, start: int, rows: int, theta, offset, pooled: bool) -> dict:
    """_chunk_totals of the Gaussian points columns[:, start:start + rows], T built in this thread's
    scratch buffers (see GaussianMaps.statistics_columns); the constant log h folded into `offset`;
    Σ T(x) only where `pooled`."""
    block = columns[:, start:start + rows]
    stats_t, joint = _scratch((maps.m, rows), (len(theta), rows))
    stats_t, joint = stats_t[:, :block.shape[1]], joint[:, :block.shape[1]]
    maps.statistics_columns(block, out=stats_t)
    np.matmul(theta, stats_t, out=joint)
    norm, resp = _normalised(joint, offset)
    return {"n": block.shape[1], "loglik": float(norm.sum()), "counts": resp.sum(axis=1),
            "sums": resp @ stats_t.T, "pooled": stats_t.sum(axis=1) if pooled else 0}


_SCRATCH = threading.local()


def _scratch(*shapes) -> list:
    """This thread's reusable buffers of the given shapes (no allocation, no page faults, per chunk)."""
    held = getattr(_SCRATCH, "buffers", None)
    if held is None or [b.shape for b in held] != list(shapes):
        _SCRATCH.buffers = held = [np.empty(shape) for shape in shapes]
    return held


def _normalised(joint, offset) -> tuple:
    """(log Σ_k e^(joint + offset), the responsibilities) of a (K, rows) joint, overwritten in place."""
    joint += offset[:, None]
    top = joint.max(axis=0)
    joint -= top
    np.exp(joint, out=joint)
    total = joint.sum(axis=0)
    joint /= total
    return np.log(total) + top, joint


def _posteriors(joint) -> tuple:
    """(log Σ_k e^joint, responsibilities) per row with one exp (scipy's logsumexp and a second exp
    were half of an iteration's time)."""
    top = joint.max(axis=1, keepdims=True)
    weights = np.exp(joint - top)
    total = weights.sum(axis=1, keepdims=True)
    weights /= total
    return (np.log(total) + top)[:, 0], weights


def _needs_spread(maps) -> bool:
    """More statistics than variables and no covariance floor: a component may collapse (numeric.em)."""
    return maps.m > maps.n_variables and not isinstance(maps, GaussianMaps)


def _generator(random_state) -> np.random.Generator:
    """numpy's Generator from scikit-learn's random_state conventions (None, an int, a RandomState)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return np.random.default_rng(random_state)
    return np.random.default_rng(check_random_state(random_state).randint(2 ** 31))


def _all_reduced(totals: dict) -> dict:
    """The totals summed over the processes of torch.distributed's default group (one all-reduce)."""
    import torch
    import torch.distributed as dist
    keys = sorted(totals)
    flat = np.concatenate([np.ravel(np.asarray(totals[k], dtype=float)) for k in keys])
    buffer = torch.from_numpy(flat.copy())
    dist.all_reduce(buffer)
    out, at = {}, 0
    for k in keys:
        shape = np.shape(totals[k])
        size = int(np.prod(shape)) if shape else 1
        value = buffer[at:at + size].numpy().reshape(shape)
        out[k] = float(value) if not shape else value
        at += size
    return out


def _broadcast(array) -> np.ndarray:
    import torch
    import torch.distributed as dist
    buffer = torch.from_numpy(np.ascontiguousarray(array, dtype=float).copy())
    dist.broadcast(buffer, src=0)
    return buffer.numpy()


def _is_torch(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "device")


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")

