"""The Fisher metric g_ij(ξ) by three routes.

- ``exponential``: for p = h exp(θ·T − A), g = Jᵀ ∂η/∂ξ with J = ∂θ/∂ξ and η = E[T] = ∇_θ A
  (= Jᵀ ∇²A J, the Hessian of A pulled back to the chart); no integral at all.
- ``hessian``: g_ij = −E[∂_i ∂_j log p].
- ``score``: g_ij = E[∂_i log p ∂_j log p] (needs only first derivatives: valid for Laplace).
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .errors import SymgeoError
from .expectation import DEFAULT_TIMEOUT, expectations
from .family import ExponentialFamily, Family

ROUTES = ("exponential", "hessian", "score")


@dataclass(frozen=True)
class FisherResult:
    matrix: sp.ImmutableMatrix
    route: str
    notes: tuple = ()


def natural_jacobian(ef: ExponentialFamily) -> sp.Matrix:
    """J_ai = ∂θ_a/∂ξ_i."""
    return sp.Matrix([[sp.diff(t, p) for p in ef.params] for t in ef.natural_of_params])


def expectation_params(ef: ExponentialFamily) -> list:
    """η(ξ) = E[T]: the declared closed form, else ∇_θ A at θ(ξ), else J⁻ᵀ ∇_ξ A(ξ)."""
    if ef.expectation_of_params is not None:
        return list(ef.expectation_of_params)
    if ef.log_partition is not None:
        at = dict(zip(ef.natural, ef.natural_of_params))
        return [sp.diff(ef.log_partition, t).xreplace(at) for t in ef.natural]
    grad = sp.Matrix([sp.diff(ef.log_partition_of_params, p) for p in ef.params])
    jac = natural_jacobian(ef)
    if jac.shape[0] != jac.shape[1]:
        raise SymgeoError(f"{ef.name}: a curved exponential family needs A(θ) to give E[T]")
    return list(jac.T.LUsolve(grad))


def fisher_exponential(ef: ExponentialFamily) -> sp.Matrix:
    jac = natural_jacobian(ef)
    eta = expectation_params(ef)
    deta = sp.Matrix([[sp.diff(e, p) for p in ef.params] for e in eta])
    n = ef.n
    g = sp.zeros(n, n)
    for i in range(n):
        for j in range(i, n):
            g[i, j] = g[j, i] = sp.Add(*[jac[a, i] * deta[a, j] for a in range(jac.shape[0])])
    return g


def score(family: Family) -> list:
    return [sp.diff(family.log_density, p) for p in family.params]


def fisher_by_expectation(family: Family, route: str, timeout: float = DEFAULT_TIMEOUT):
    """(g, notes) by −E[∂∂ℓ] (route 'hessian') or E[s sᵀ] (route 'score')."""
    s = score(family)
    n = family.n
    pairs = [(i, j) for i in range(n) for j in range(i, n)]
    if route == "score":
        integrands = [s[i] * s[j] for i, j in pairs]
    elif route == "hessian":
        integrands = [-sp.diff(s[i], family.params[j]) for i, j in pairs]
    else:
        raise SymgeoError(f"unknown Fisher route {route!r}; choose one of {ROUTES}")
    result = expectations(family, integrands, timeout)
    g = sp.zeros(n, n)
    for (i, j), v in zip(pairs, result.values):
        g[i, j] = g[j, i] = v
    return g, tuple(result.notes)
