"""Gaussian variational inference for Bayesian GLMs: natural gradient is the Bayesian learning rule.

Model: y_i | w ~ EF(θ = x_iᵀw), a one-parameter exponential family of the catalog with its canonical link
(bernoulli: logistic regression, poisson: log-linear, binomial:n=N; normal_mean:sigma=s, the conjugate
case, has θ = μ/s², so E[y] = s² xᵀw), prior w ~ N(0, P⁻¹); q = N(m, Σ).
The loss is the negative ELBO, KL(q ‖ posterior) − log Z:

  L = Σ_i (E_q[A(a_i)] − T(y_i) x_iᵀm − log h(y_i)) + ½(mᵀPm + tr PΣ) − ½ log det PΣ − d/2.

Each a_i = x_iᵀw ~ N(x_iᵀm, x_iᵀΣx_i) is one-dimensional, so every expectation is a Gauss–Hermite sum:
L and its gradients are exact to quadrature precision (no Monte Carlo noise; a 1e-8 gap means something).
A, A', A'' and T, log h are generated from the family's declaration.

Charts, each a parameter space for `natural_gradient.minimize`:
  `natural_space`   ξ = (Σ⁻¹m, vech Σ⁻¹), affine in q's natural parameters. There F(ξ) = ∂η/∂ξ, so
                    F⁻¹∇_ξL = ∇_ηL and the natural step never forms the (d(d+3)/2)² Fisher:
                      Σ⁻¹ ← (1−ρ)Σ⁻¹ + ρ(P + Xᵀ diag E[A''(a)] X),   m ← m − ρ Σ_new ∇_m L
                    (the Bayesian learning rule of Khan & Rue, 2023; variational online Newton).
  `cholesky_space`  (m, C) with Σ = CCᵀ, C lower triangular with log-diagonal: what ADVI-style code runs
                    gradient descent or Adam on.

>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(200, 2)); y = (rng.random(200) < 1 / (1 + np.exp(-x @ [1.5, -1.0]))).astype(float)
>>> vi = GaussianVI(x, y, "bernoulli", prior_precision=1.0)
>>> fit = vi.fit("natural", tol=1e-12)
>>> first_within = int(np.argmax(np.array(fit.values) - fit.value < 1e-8))  # natural steps to a 1e-8 gap
>>> first_within, np.round(vi.mean_cov(fit.params)[0], 2).tolist()
(6, [1.68, -1.03])
"""
from __future__ import annotations

import numpy as np

from symgeo import DomainError, SymgeoError, duality
from symgeo.errors import InvalidArgumentError

from .codegen import as_array, numpy_function
from .exponential import maps_for
from .natural_gradient import Fit, Objective, minimize

CHARTS = ("natural", "cholesky")


class CanonicalLikelihood:
    """log p(y | θ) = θ T(y) − A(θ) + log h(y) of a one-parameter exponential family, θ ∈ ℝ."""

    def __init__(self, family):
        maps = maps_for(family)
        if maps.m != 1 or maps.n_variables != 1:
            raise SymgeoError(f"{maps.name}: a GLM likelihood needs a one-parameter family of one variable, "
                              f"not {maps.m} natural parameters over {maps.n_variables} variables")
        geometry = maps.geometry
        natural = duality.in_chart(geometry, duality.natural_chart(geometry))
        theta = natural.family.params[0]
        if theta.is_positive or theta.is_negative or theta.is_nonnegative or theta.is_nonpositive:
            raise SymgeoError(f"{maps.name}: its natural parameter is confined to a half-line, so a Gaussian "
                              "linear predictor would leave the domain; use a family whose natural parameter "
                              "ranges over all of ℝ (bernoulli, binomial:n=N, poisson)")
        theta, log_partition, mean, variance = duality.natural_log_partition(geometry)
        self.name = maps.name
        self.maps = maps
        self.log_partition = numpy_function((theta,), log_partition)
        self.mean = numpy_function((theta,), mean)
        self.variance = numpy_function((theta,), variance)

    def statistic_and_log_base(self, y) -> tuple[np.ndarray, float]:
        y = np.asarray(y, dtype=float).reshape(-1)
        return self.maps.statistics(y)[:, 0], float(np.sum(self.maps.log_base(y)))


def _batched(fn, a):
    with np.errstate(all="ignore"):
        return np.broadcast_to(as_array(fn(a)), a.shape)


class GaussianVI:
    """q = N(m, Σ) fitted to the posterior of a canonical-link GLM; see the module docstring."""

    def __init__(self, x, y, likelihood="bernoulli", prior_precision=1.0, nodes: int = 64):
        self.x = np.asarray(x, dtype=float)
        if self.x.ndim != 2 or len(self.x) != len(np.asarray(y).reshape(-1)):
            raise InvalidArgumentError(
                f"x must be (N, d) with one row per observation; got {self.x.shape} and {np.asarray(y).shape}"
            )
        self.n, self.d = self.x.shape
        self.likelihood = likelihood if isinstance(likelihood, CanonicalLikelihood) else \
            CanonicalLikelihood(likelihood)
        self.t, self.log_base = self.likelihood.statistic_and_log_base(y)
        prior = np.asarray(prior_precision, dtype=float)
        self.prior = prior * np.eye(self.d) if prior.ndim == 0 else prior
        if self.prior.shape != (self.d, self.d):
            raise InvalidArgumentError(f"prior_precision must be a number or a ({self.d}, {self.d}) matrix, "
                             f"not shape {prior.shape}")
        try:
            self._prior_logdet = 2 * np.sum(np.log(np.diag(np.linalg.cholesky(self.prior))))
        except np.linalg.LinAlgError:
            raise InvalidArgumentError(
                "prior_precision must be a positive number or a positive definite matrix"
            ) from None
        z, w = np.polynomial.hermite.hermgauss(nodes)
        self._z, self._w = np.sqrt(2) * z, w / np.sqrt(np.pi)
        self._iu = np.triu_indices(self.d)
        self._il = np.tril_indices(self.d)
        self._cache = (None, None)

    # -- the loss in (m, Σ) -----------------------------------------------------------------------------
    def moments(self, m, cov) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """Negative ELBO, ∇_m L, ∇_Σ L (symmetric) and the expected Hessian P + Xᵀ diag E[A''] X; the loss
        is +inf (and the rest None) where Σ is not positive definite or the sums overflow."""
        with np.errstate(all="ignore"):
            return self._moments(m, cov)

    def _moments(self, m, cov):
        mean = self.x @ m
        sd = np.sqrt(np.einsum("ij,jk,ik->i", self.x, cov, self.x))
        a = mean[:, None] + sd[:, None] * self._z
        e_a = _batched(self.likelihood.log_partition, a) @ self._w
        e_mean = _batched(self.likelihood.mean, a) @ self._w
        e_var = _batched(self.likelihood.variance, a) @ self._w
        sign, logdet = np.linalg.slogdet(cov)
        value = (np.sum(e_a - self.t * mean) - self.log_base + 0.5 * (m @ self.prior @ m)
                 + 0.5 * np.sum(self.prior * cov) - 0.5 * (self._prior_logdet + logdet) - 0.5 * self.d)
        if sign <= 0 or not np.isfinite(value):
            return np.inf, None, None, None
        hessian = self.prior + (self.x.T * e_var) @ self.x
        grad_m = self.x.T @ (e_mean - self.t) + self.prior @ m
        grad_cov = 0.5 * (hessian - np.linalg.inv(cov))
        return float(value), grad_m, grad_cov, hessian

    def _moments_at(self, key, m, cov):
        if self._cache[0] != key:
            self._cache = (key, self.moments(m, cov))
        return self._cache[1]

    # -- charts -------------------------------------------------------------------------------------------
    def mean_cov(self, xi, chart: str = "natural") -> tuple[np.ndarray, np.ndarray]:
        xi = np.asarray(xi, dtype=float)
        if chart == "natural":
            precision = self._symmetric(xi[self.d:])
            cov = np.linalg.inv(precision)
            return cov @ xi[:self.d], cov
        if chart == "cholesky":
            with np.errstate(all="ignore"):  # a wild step's exp(log-diagonal) overflows: the loss is +inf
                factor = self._factor(xi[self.d:])
                return xi[:self.d].copy(), factor @ factor.T
        raise InvalidArgumentError(f"chart must be one of {CHARTS}, not {chart!r}")

    def point(self, m, cov, chart: str = "natural") -> np.ndarray:
        """ξ of N(m, Σ) in `chart`."""
        m, cov = np.asarray(m, dtype=float), np.asarray(cov, dtype=float)
        if chart == "natural":
            precision = np.linalg.inv(cov)
            return np.concatenate([precision @ m, precision[self._iu]])
        if chart == "cholesky":
            factor = np.linalg.cholesky(cov)
            factor[np.diag_indices(self.d)] = np.log(np.diag(factor))
            return np.concatenate([m, factor[self._il]])
        raise InvalidArgumentError(f"chart must be one of {CHARTS}, not {chart!r}")

    def _symmetric(self, upper) -> np.ndarray:
        s = np.zeros((self.d, self.d))
        s[self._iu] = upper
        return s + np.triu(s, 1).T

    def _factor(self, lower) -> np.ndarray:
        c = np.zeros((self.d, self.d))
        c[self._il] = lower
        c[np.diag_indices(self.d)] = np.exp(np.diag(c))
        return c

    def objective(self, chart: str = "natural") -> Objective:
        """The negative ELBO and its gradient in `chart` ('natural' or 'cholesky')."""
        if chart not in CHARTS:
            raise InvalidArgumentError(f"chart must be one of {CHARTS}, not {chart!r}")

        def evaluate(xi):
            m, cov = self.mean_cov(xi, chart)
            return self._moments_at((chart, xi.tobytes()), m, cov), m, cov

        def value(xi):
            return evaluate(xi)[0][0]

        def gradient(xi):
            (_, grad_m, grad_cov, _), m, cov = evaluate(xi)
            if chart == "natural":  # m = S⁻¹h, Σ = S⁻¹
                grad_s = -cov @ np.outer(grad_m, m)
                grad_s = (grad_s + grad_s.T) / 2 - cov @ grad_cov @ cov
                grad_s = 2 * grad_s - np.diag(np.diag(grad_s))  # an off-diagonal entry appears twice in S
                return np.concatenate([cov @ grad_m, grad_s[self._iu]])
            factor = self._factor(xi[self.d:])
            grad_c = 2 * grad_cov @ factor
            grad_c[np.diag_indices(self.d)] *= np.diag(factor)  # log-diagonal
            return np.concatenate([grad_m, grad_c[self._il]])

        return Objective(
            value, gradient, f"negative ELBO, {self.likelihood.name} GLM, d = {self.d}, {chart} chart"
        )

    def space(self, chart: str = "natural") -> VariationalSpace:
        return VariationalSpace(self, chart)

    def fit(self, method: str = "natural", start=None, **options) -> Fit:
        """Minimise the negative ELBO from `start` = (m, Σ) (default: the prior); 'natural' runs in the
        natural chart, 'gradient' and 'adam' in the Cholesky chart. Options go to `minimize`."""
        chart = "natural" if method == "natural" else "cholesky"
        m, cov = start if start is not None else (np.zeros(self.d), np.linalg.inv(self.prior))
        return minimize(self.objective(chart), self.space(chart), self.point(m, cov, chart), method=method,
                        **options)


class VariationalSpace:
    """The parameter space `minimize` needs: a domain check and, in the natural chart, the natural step."""

    def __init__(self, vi: GaussianVI, chart: str):
        self.vi, self.chart = vi, chart

    def check(self, *xi) -> None:
        if self.chart == "natural":
            try:
                np.linalg.cholesky(self.vi._symmetric(np.asarray(xi[self.vi.d:])))
            except np.linalg.LinAlgError:
                raise DomainError("Σ⁻¹ is not positive definite") from None
        elif not np.all(np.isfinite(xi)):
            raise DomainError("non-finite parameters")

    def natural_direction(self, xi, gradient, damping: float = 0.0) -> np.ndarray:
        """F(ξ)⁻¹∇_ξL = ∇_ηL, from ∇_m L and ∇_Σ L (no Fisher formed)."""
        if self.chart != "natural":
            raise SymgeoError("natural steps run in the natural chart: GaussianVI.fit('natural')")
        if damping:
            raise SymgeoError("damping is not used by the natural-chart step (F is never formed); "
                              "use a smaller lr instead")
        vi = self.vi
        m, cov = vi.mean_cov(xi, "natural")
        _, grad_m, grad_cov, _ = vi._moments_at(("natural", np.asarray(xi, dtype=float).tobytes()), m, cov)
        return np.concatenate([grad_m - 2 * grad_cov @ m, (-2 * grad_cov)[vi._iu]])
