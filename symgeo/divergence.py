"""Divergences between two members of an exponential family, in closed form via A.

With λ-mixtures of natural parameters, ∫ p₁^λ p₂^(1−λ) dx = exp(A(λθ₁ + (1−λ)θ₂) − λA(θ₁) − (1−λ)A(θ₂))
(the base measure cancels), which gives the Rényi, α-, Bhattacharyya and Hellinger divergences.
KL is the Bregman divergence of A: KL(p₁‖p₂) = A(θ₂) − A(θ₁) − ⟨θ₂ − θ₁, η(θ₁)⟩.
Points are given as dicts {param: value or symbol}; `pair_symbols` makes two symbolic copies.

Second-order behaviour at p₂ → p₁ (tested): KL, α-divergence ≈ ½ dξᵀ g dξ, Jeffreys ≈ dξᵀ g dξ,
Rényi of order a ≈ (a/2) dξᵀ g dξ, Bhattacharyya and Hellinger (1 − ∫√(p₁p₂)) ≈ ⅛ dξᵀ g dξ.
"""
from __future__ import annotations

import math

import sympy as sp

from .errors import SymgeoError
from .family import ExponentialFamily
from .geometry import Geometry
from .names import fresh_many, names_of


def pair_symbols(geo: Geometry) -> tuple[dict, dict]:
    """Two symbolic points {ξ: ξ1} and {ξ: ξ2} with the parameters' assumptions."""
    taken = names_of(geo.family)
    first, second = {}, {}
    for p in geo.params:  # mu_1 and mu_2, renamed apart from a parameter that is called mu_1
        first[p], second[p] = fresh_many([f"{p}_1", f"{p}_2"], taken, **p.assumptions0)
        taken |= {first[p].name, second[p].name}
    return first, second


def _ef(geo: Geometry) -> ExponentialFamily:
    ef = geo.exponential_family
    if ef is None:
        raise SymgeoError(f"{geo.family.name} is not an exponential family: no closed-form divergence via A "
                          f"(use numeric Monte Carlo KL)")
    return ef


def _at(expr, point: dict):
    return sp.sympify(expr).xreplace(point)


def kl(geo: Geometry, p1: dict, p2: dict) -> sp.Expr:
    """KL(p_ξ1 ‖ p_ξ2) as the Bregman divergence of the log-partition."""
    a, b = pair_symbols(geo)
    formula = geo.memo("kl_logs_expanded", lambda: _kl(geo, a, b))
    # one simultaneous substitution: p1, p2 may themselves be the pair symbols (reverse KL)
    return formula.xreplace({**{a[p]: p1[p] for p in geo.params}, **{b[p]: p2[p] for p in geo.params}})


def _kl(geo: Geometry, p1: dict, p2: dict) -> sp.Expr:
    ef = _ef(geo)
    a = ef.log_partition_of_params
    theta, eta = ef.natural_of_params, geo.expectation_params
    value = _at(a, p2) - _at(a, p1) - sum((_at(t, p2) - _at(t, p1)) * _at(e, p1) for t, e in zip(theta, eta))
    # simplify may fold logs into log(σ₂^(2σ₂²)/σ₁^(2σ₂²)), which overflows numerically; split them again
    # (expand_log only where the assumptions allow it)
    return sp.expand_log(sp.simplify(value))


def reverse_kl(geo: Geometry, p1: dict, p2: dict) -> sp.Expr:
    return kl(geo, p2, p1)


def jeffreys(geo: Geometry, p1: dict, p2: dict) -> sp.Expr:
    """Symmetrised KL: KL(p₁‖p₂) + KL(p₂‖p₁) = ⟨θ₁ − θ₂, η₁ − η₂⟩."""
    ef = _ef(geo)
    return sp.simplify(sum((_at(t, p1) - _at(t, p2)) * (_at(e, p1) - _at(e, p2))
                           for t, e in zip(ef.natural_of_params, geo.expectation_params)))


def log_affinity(geo: Geometry, p1: dict, p2: dict, lam) -> sp.Expr:
    """log ∫ p₁^λ p₂^(1−λ) dx = A(λθ₁ + (1−λ)θ₂) − λA(θ₁) − (1−λ)A(θ₂) (needs A(θ))."""
    ef = _ef(geo)
    if ef.log_partition is None:
        raise SymgeoError(f"{geo.family.name}: A(θ) is not declared in natural parameters, so λ-mixtures "
                          f"of θ have no closed form here; KL and Jeffreys are still available")
    mix = {t: lam * _at(e, p1) + (1 - lam) * _at(e, p2) for t, e in zip(ef.natural, ef.natural_of_params)}
    a = ef.log_partition
    a1 = _at(ef.log_partition_of_params, p1)
    a2 = _at(ef.log_partition_of_params, p2)
    return a.xreplace(mix) - lam * a1 - (1 - lam) * a2


def renyi(geo: Geometry, p1: dict, p2: dict, order) -> sp.Expr:
    """D_a(p₁‖p₂) = log ∫ p₁^a p₂^(1−a) / (a − 1); a → 1 gives KL."""
    return log_affinity(geo, p1, p2, order) / (order - 1)


def alpha_divergence(geo: Geometry, p1: dict, p2: dict, alpha) -> sp.Expr:
    """Amari: D_α(p₁‖p₂) = 4/(1 − α²) (1 − ∫ p₁^((1−α)/2) p₂^((1+α)/2)); α → −1 gives KL(p₁‖p₂)."""
    lam = (1 - alpha) / 2
    return 4 / (1 - alpha**2) * (1 - sp.exp(log_affinity(geo, p1, p2, lam)))


def bhattacharyya(geo: Geometry, p1: dict, p2: dict) -> sp.Expr:
    """−log ∫ √(p₁ p₂)."""
    return sp.simplify(-log_affinity(geo, p1, p2, sp.Rational(1, 2)))


def hellinger_squared(geo: Geometry, p1: dict, p2: dict) -> sp.Expr:
    """H² = 1 − ∫ √(p₁ p₂) (so 0 ≤ H² ≤ 1)."""
    return 1 - sp.exp(log_affinity(geo, p1, p2, sp.Rational(1, 2)))


def entropy(geo: Geometry) -> sp.Expr:
    """Differential (or Shannon) entropy H = A − θ·η − E[log h]."""
    from .errors import IntegrationError
    return geo.memo("entropy", lambda: _entropy(geo), remember=(IntegrationError,))


def _entropy(geo: Geometry) -> sp.Expr:
    ef = _ef(geo)
    from .expectation import expectations
    log_h = ef.log_base_measure
    if log_h.free_symbols & set(ef.variables):
        e_log_h = _linear_in_stats(ef, log_h, geo.expectation_params)
        if e_log_h is None:
            e_log_h = expectations(geo.family, [log_h], geo._timeout).values[0]
    else:
        e_log_h = log_h
    return sp.simplify(ef.log_partition_of_params
                       - sum(t * e for t, e in zip(ef.natural_of_params, geo.expectation_params)) - e_log_h)


def _linear_in_stats(ef: ExponentialFamily, expr, eta):
    """E[expr] when expr = c₀ + Σ c_a T_a (as log h often is): c₀ + Σ c_a η_a."""
    cs = sp.symbols(f"c0:{len(ef.stats) + 1}")
    residual = sp.expand(expr - cs[0] - sum(c * t for c, t in zip(cs[1:], ef.stats)))
    if residual == 0:
        return None
    sol = sp.solve(sp.Poly(residual, *ef.variables).coeffs() if residual.is_polynomial(*ef.variables)
                   else [residual.coeff(t) for t in ef.stats] + [residual.as_independent(*ef.variables)[0]], cs,
                   dict=True)
    if not sol:
        return None
    s = sol[0]
    if any(c not in s for c in cs):
        return None
    check = sp.simplify(expr - s[cs[0]] - sum(s[c] * t for c, t in zip(cs[1:], ef.stats)))
    if check != 0:
        return None
    return s[cs[0]] + sum(s[c] * e for c, e in zip(cs[1:], eta))


def kl_by_quadrature(geo: Geometry, first: dict, second: dict) -> tuple[float, float]:
    """KL(p₁ ‖ p₂) = E_p₁[log p₁ − log p₂] at two numeric points of a one-variable family with no closed
    form (not an exponential family): mpmath quadrature or summation, at 20 and 30 digits; returns
    (value, |difference of the two|) as the error estimate."""
    from .errors import NumericalError
    from .expectation import numeric_expectation
    fam = geo.family
    if len(fam.variables) != 1:
        raise SymgeoError(f"{fam.name}: a numeric KL is computed for one-variable families only")
    geo.require_regular()  # before any number is given
    log_ratio = fam.log_density - fam.log_density.xreplace(second)
    values = [numeric_expectation(fam, log_ratio, first, dps=dps) for dps in (20, 30)]
    value, error = float(values[1]), float(abs(values[1] - values[0]))
    if not (math.isfinite(value) and math.isfinite(error)):
        raise NumericalError(f"{fam.name}: the KL quadrature is not finite between {first} and {second}")
    return value, error
