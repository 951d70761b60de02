"""Natural-gradient descent on a family's parameters, with the generated Fisher metric.

Key equation, in any chart ξ:   ξ ← ξ − lr · (F(ξ) + λI)⁻¹ ∇L(ξ)      (solved, never inverted)
To first order the step does not depend on the chart (F transforms as a tensor); plain gradient steps do.

Objectives (value and gradient from generated code, never hand-typed):
  `mle_objective`  mean negative log-likelihood of data; for exponential families it only needs T̄:
                   L(ξ) = A(ξ) − θ(ξ)·T̄ − mean log h.
  `kl_objective`   KL(q_ξ ‖ p) (mode-seeking, "exclusive") or KL(p ‖ q_ξ) (mass-covering, "inclusive")
                   to a target density p, by quadrature. With an unnormalised posterior as p, minimising
                   KL(q ‖ p) is variational inference (the negative ELBO up to log Z): natural-gradient VI.
`minimize` runs natural gradient, gradient descent or Adam on either, with the same step-halving
safeguard when a step leaves the parameter domain.

>>> import numeric
>>> gamma = numeric.compile("gamma")
>>> data = np.random.default_rng(0).gamma(3.0, 2.0, 5000)
>>> fit = minimize(mle_objective(gamma, data), gamma, [1.0, 1.0], tol=1e-12)
>>> fit.converged, np.round(fit.params, 2).tolist()
(True, [2.99, 2.03])
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from symgeo import DomainError, SymgeoError, duality
from symgeo.errors import InvalidArgumentError, NumericalError

from .codegen import as_array
from .compiled import CompiledFamily
from .exponential import require_support
from .validate import count, nonnegative, positive

METHODS = ("natural", "gradient", "adam")
MAX_HALVINGS = 60  # a step halved this often without an acceptable point ends the run
MASS_TOL = 1e-9  # |∫q − 1| on the quadrature rule beyond which KL(q ‖ p) is not trusted


def natural_direction(fisher, grad, damping: float = 0.0) -> np.ndarray:
    """(F + λI)⁻¹ g by a linear solve; F may carry leading batch dimensions."""
    fisher = np.asarray(fisher, dtype=float)
    grad = np.asarray(grad, dtype=float)
    if damping:
        fisher = fisher + damping * np.eye(fisher.shape[-1])
    return np.linalg.solve(fisher, grad[..., None])[..., 0]


@dataclass
class Objective:
    """A scalar loss of the parameters with its gradient (both numpy callables of a 1-D array)."""

    value: Callable
    gradient: Callable
    description: str = ""


def mle_objective(family: CompiledFamily, data) -> Objective:
    """Mean negative log-likelihood of `data` ((N,) or (N, n_variables)) under `family`."""
    data = np.asarray(data, dtype=float)
    if not np.all(np.isfinite(data)):
        raise InvalidArgumentError(f"{family.family.name}: the data contain NaN or infinite values")
    require_support(family.family, data)
    columns = _columns(family, data)
    if family.geometry.exponential_family is not None:
        return _exponential_mle(family, columns)
    log_p, score = family.log_density, score_function(family)
    return Objective(lambda xi: -float(np.mean(log_p(*columns, *xi))),
                     lambda xi: -np.mean(as_array(score(*columns, *xi)).reshape(len(data), -1), axis=0),
                     f"{family.family.name} MLE ({len(data)} points)")


def _exponential_mle(family: CompiledFamily, columns) -> Objective:
    means, loss, gradient = duality.mle_loss(family.geometry)
    args = family.params + tuple(means)
    value = family.function(args, loss)
    gradient = family.function(args, gradient)
    t_bar = np.mean(as_array(family.sufficient_statistics(*columns)).reshape(len(columns[0]), -1), axis=0)
    t_bar = np.broadcast_to(t_bar, (len(means),))
    offset = -float(np.mean(np.broadcast_to(as_array(_log_base(family)(*columns)), columns[0].shape)))
    return Objective(lambda xi: float(value(*xi, *t_bar)) + offset,
                     lambda xi: as_array(gradient(*xi, *t_bar)).ravel(),
                     f"{family.family.name} MLE ({len(columns[0])} points, via T̄)")


def _log_base(family: CompiledFamily):
    return family.function(
        family.family.variables, family.geometry.exponential_family.log_base_measure, slots=()
    )


def score_function(family: CompiledFamily):
    """∂ log p(x | ξ)/∂ξ: arguments (variables..., params...), result (..., n)."""
    from symgeo.fisher import score
    variables = family.family.variables
    return family.extension("natural_gradient.score", lambda: family.function(
        variables + family.params, score(family.family), slots=(len(variables),)))


@dataclass(frozen=True)
class Quadrature:
    """Nodes and weights of a rule for ∫ f(x) dx over a 1-D support."""

    nodes: np.ndarray
    weights: np.ndarray

    @classmethod
    def legendre(cls, lo: float, hi: float, n: int = 400) -> Quadrature:
        z, w = np.polynomial.legendre.leggauss(n)
        return cls(0.5 * (hi - lo) * z + 0.5 * (hi + lo), 0.5 * (hi - lo) * w)

    @classmethod
    def log_legendre(cls, lo: float, hi: float, n: int = 400) -> Quadrature:
        """Gauss–Legendre in log x on [lo, hi] ⊂ (0, ∞): for positive supports spanning decades."""
        if not 0 < lo < hi:
            raise InvalidArgumentError(f"log_legendre needs 0 < lo < hi, got {lo}, {hi}")
        rule = cls.legendre(np.log(lo), np.log(hi), n)
        x = np.exp(rule.nodes)
        return cls(x, rule.weights * x)


def kl_objective(q: CompiledFamily, log_target: Callable, quadrature: Quadrature,
                 direction: str = "exclusive") -> Objective:
    """KL(q_ξ ‖ p) ('exclusive', mode-seeking) or KL(p ‖ q_ξ) ('inclusive', mass-covering) by quadrature.
    `log_target(x)` may be unnormalised: p is normalised on the quadrature rule. Where the rule does not
    integrate q to 1 (q narrower than the nodes resolve, or mass outside), KL(q ‖ p) is +inf, so that
    `minimize` halves the step instead of trusting a quadrature artefact."""
    if direction not in ("exclusive", "inclusive"):
        raise InvalidArgumentError(
            f"direction must be 'exclusive' (KL(q‖p)) or 'inclusive' (KL(p‖q)), not {direction!r}"
        )
    if len(q.family.variables) != 1:
        raise SymgeoError("kl_objective integrates over one variable; use a Monte Carlo objective in more")
    x, w = quadrature.nodes, quadrature.weights
    log_p = np.asarray(log_target(x), dtype=float)
    log_p = log_p - _log_integral(log_p, w)
    log_q, score = q.log_density, score_function(q)

    def exclusive(xi):
        lq = _log_q(log_q, x, xi)
        q_x = np.exp(lq)
        if abs(np.sum(w * q_x) - 1) > MASS_TOL:
            return np.inf  # q too narrow for the rule, or mass outside it: the step is halved
        return float(np.sum(w * q_x * (lq - log_p)))

    def exclusive_gradient(xi):
        lq = _log_q(log_q, x, xi)
        return _scores(score, x, xi).T @ (w * np.exp(lq) * (lq - log_p + 1))

    p = np.exp(log_p)

    def inclusive(xi):
        return float(np.sum(w * p * (log_p - _log_q(log_q, x, xi))))

    def inclusive_gradient(xi):
        return -(_scores(score, x, xi).T @ (w * p))

    if direction == "exclusive":
        return Objective(exclusive, exclusive_gradient, f"KL(q ‖ p), q = {q.family.name}")
    return Objective(inclusive, inclusive_gradient, f"KL(p ‖ q), q = {q.family.name}")


def _log_integral(log_f, weights) -> float:
    top = np.max(log_f)
    return float(top + np.log(np.sum(weights * np.exp(log_f - top))))


def _log_q(log_q, x, xi) -> np.ndarray:
    with np.errstate(all="ignore"):
        out = np.broadcast_to(as_array(log_q(x, *xi)), x.shape)
    return np.where(np.isfinite(out), out, -np.inf)


def _scores(score, x, xi) -> np.ndarray:
    with np.errstate(all="ignore"):
        s = np.broadcast_to(as_array(score(x, *xi)), (len(x), len(xi)))
    return np.where(np.isfinite(s), s, 0.0)


@dataclass
class Fit:
    """Result of `minimize`: the final parameters, the path and loss per iteration."""

    method: str
    params: np.ndarray
    value: float
    iterations: int
    converged: bool
    path: list = field(default_factory=list)
    values: list = field(default_factory=list)
    halvings: int = 0  # step halvings forced by the domain or a non-finite loss


def minimize(objective: Objective, family, start, *, method: str = "natural",
             lr: float = 1.0, damping: float = 0.0, max_iter: int = 1000, tol: float = 1e-10,
             target: float | None = None, gap: float = 1e-8, betas=(0.9, 0.999), eps: float = 1e-8,
             backtrack: bool | None = None) -> Fit:
    """Minimise `objective` over the family's parameters from `start`. `family` is a CompiledFamily or any
    space with `check(*xi)` and `natural_direction(xi, grad, damping)` (e.g. `variational.GaussianVI.space`).

    method: 'natural' (lr·(F + λI)⁻¹∇L), 'gradient' (lr·∇L) or 'adam'. Every step is halved while it leaves
    the domain or the loss is not finite; with `backtrack` (default: on except for Adam) also while the
    loss increases. Stops when the loss is within `gap` of `target` (if given), else when the step's size
    ‖Δξ‖∞ falls below `tol`·max(1, ‖ξ‖∞). A step that finds no acceptable point in 60 halvings ends the run
    (converged only if it backtracks, has no target, and so stands at a stationary point)."""
    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS}, not {method!r}")
    positive("lr", lr)
    nonnegative("damping", damping)
    nonnegative("tol", tol)
    nonnegative("gap", gap)
    count("max_iter", max_iter)
    xi = np.asarray(start, dtype=float).copy()
    if not np.all(np.isfinite(xi)):
        raise InvalidArgumentError(f"start must be finite, not {xi.tolist()}")
    family.check(*xi)
    value = objective.value(xi)
    if np.isnan(value) or value == -np.inf:  # (+inf may still be descended from)
        raise NumericalError(f"the objective is {value} at the start {xi.tolist()}: no descent can begin "
                             f"(are the data inside the family's support?)")
    fit = Fit(method, xi, value, 0, False, [xi.copy()], [value])
    direction = _direction(method, family, damping, betas, eps)
    monotone = method != "adam" if backtrack is None else backtrack
    for iteration in range(1, max_iter + 1):
        grad = objective.gradient(xi)
        if not np.all(np.isfinite(grad)):
            raise NumericalError(
                f"the gradient is not finite at {xi.tolist()} (iteration {iteration}): {grad.tolist()}"
            )
        step = lr * direction(xi, grad, iteration)
        xi, value, halvings = _safe_step(objective, family, xi, step, value, monotone)
        fit.halvings += halvings
        if halvings == MAX_HALVINGS:  # no acceptable point along the step: with backtracking and no target,
            fit.converged = monotone and target is None and np.isfinite(value)  # a stationary point
            break
        fit.path.append(xi.copy())
        fit.values.append(value)
        done = (value - target <= gap) if target is not None else (
            np.max(np.abs(fit.path[-1] - fit.path[-2])) <= tol * max(1.0, np.max(np.abs(xi))))
        if done:
            fit.converged = True
            break
    fit.params, fit.value, fit.iterations = xi, value, iteration
    fit.converged = fit.converged and bool(np.isfinite(value))  # never on a non-finite loss
    return fit


def _direction(method: str, family: CompiledFamily, damping: float, betas, eps):
    if method == "natural":
        if hasattr(family, "natural_direction"):  # a space that knows F⁻¹g without forming F
            return lambda xi, g, t: family.natural_direction(xi, g, damping)
        return lambda xi, g, t: natural_direction(family.fisher(*xi), g, damping)
    if method == "gradient":
        return lambda xi, g, t: g
    state = {}

    def adam(xi, g, t):
        m = state["m"] = betas[0] * state.get("m", 0.0) + (1 - betas[0]) * g
        v = state["v"] = betas[1] * state.get("v", 0.0) + (1 - betas[1]) * g * g
        return (m / (1 - betas[0] ** t)) / (np.sqrt(v / (1 - betas[1] ** t)) + eps)
    return adam


def _safe_step(objective, family, xi, step, value, monotone: bool, max_halvings: int = MAX_HALVINGS):
    """ξ − step, halved while it leaves the domain or the loss is not finite, and if `monotone` while the
    loss increases."""
    for halvings in range(max_halvings):
        candidate = xi - step
        try:
            family.check(*candidate)
            new = objective.value(candidate)
        except DomainError:
            new = np.inf
        if np.isfinite(new) and (not monotone or new <= value + 1e-15 * max(1.0, abs(value))):
            return candidate, new, halvings
        step = step / 2
    return xi, value, max_halvings


def _columns(family: CompiledFamily, data: np.ndarray):
    n_variables = len(family.family.variables)
    if n_variables == 1:
        return (data.reshape(len(data)),)
    if data.ndim != 2 or data.shape[1] != n_variables:
        raise InvalidArgumentError(f"data must have shape (N, {n_variables}), not {data.shape}")
    return tuple(data.T)


def adam_vs_fisher(family: CompiledFamily, data, params, *, batch_size: int = 1, steps: int = 20000,
                   beta2: float = 0.9999, seed=None) -> dict:
    """What Adam's second-moment vector estimates, at fixed parameters (the learning rate → 0 limit).

    Adam keeps v ≈ E[g_B²] for minibatch gradients g_B of the mean NLL. At the MLE E[g_B] = 0 and
    Cov(g_B) = F_emp / B, so v → diag(F_emp)/B: the diagonal of the empirical Fisher, scaled by the batch size
    and used through its square root. Returned: Adam's bias-corrected v, diag(F_emp)/B, diag(F)/B with F
    the generated Fisher, F itself, and the Fisher's correlation matrix (what a diagonal cannot see)."""
    data = np.asarray(data, dtype=float)
    columns = _columns(family, data)
    xi = np.asarray(params, dtype=float)
    scores = -np.broadcast_to(as_array(score_function(family)(*columns, *xi)), (len(data), len(xi)))
    rng = np.random.default_rng(seed)
    v = np.zeros(len(xi))
    for t in range(1, steps + 1):
        g = scores[rng.integers(len(data), size=batch_size)].mean(axis=0)
        v = beta2 * v + (1 - beta2) * g * g
    v_hat = v / (1 - beta2 ** steps)
    empirical = scores.T @ scores / len(data)
    fisher = as_array(family.fisher(*xi))
    scale = np.sqrt(np.diag(fisher))
    return {"adam_v": v_hat, "empirical_diag": np.diag(empirical) / batch_size,
            "fisher_diag": np.diag(fisher) / batch_size, "empirical_fisher": empirical, "fisher": fisher,
            "fisher_correlation": fisher / np.outer(scale, scale)}
