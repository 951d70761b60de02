"""Divergences between two members of an exponential family, in closed form via A.

With λ-mixtures of natural parameters, ∫ p₁^λ p₂^(1−λ) dx = exp(A(λθ₁ + (1−λ)θ₂) − λA(θ₁) − (1−λ)A(θ₂))
(the base measure cancels), which gives the Rényi, α-, Bhattacharyya and Hellinger divergences.
KL is the Bregman divergence of A: KL(p₁‖p₂) = A(θ₂) − A(θ₁) − ⟨θ₂ − θ₁, η(θ₁)⟩.
Points are given as dicts {param: value or symbol}; `pair_symbols` makes two symbolic copies.

Second-order behaviour at p₂ → p₁ (tested): KL, α-divergence ≈ ½ dξᵀ g dξ, Jeffreys ≈ dξᵀ g dξ,
Rényi of order a ≈ (a/2) dξᵀ g dξ, Bhattacharyya and Hellinger (1 − ∫√(p₁p₂)) ≈ ⅛ dξᵀ g dξ.

Families that are not exponential families: `divergence_at` answers at two numeric points with a closed
form declared with the family (a literature result, checked against quadrature each time it is used)
or by mpmath quadrature of E_p₁[log p₁ − log p₂] and ∫ p₁^λ p₂^(1−λ) at 20 and 30 digits, the
difference being the stated error. `entropy` is −E[log p] through the expectation engine for every family.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp

from .errors import InvalidArgumentError, SymgeoError
from .evaluate import value_at
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
    formula = geo.extension("divergence", "kl_logs_expanded", lambda: _kl(geo, a, b))
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
    return geo.extension("divergence", "entropy", lambda: _entropy(geo), remember=(IntegrationError,))


def _entropy(geo: Geometry) -> sp.Expr:
    from .expectation import expectations
    ef = geo.exponential_family
    if ef is None:  # −E[log p] by the expectation engine (a representation where it finds no closed form)
        geo.require_regular()
        return _simplified(expectations(geo.family, [-geo.family.log_density], geo.timeout).values[0])
    log_h = ef.log_base_measure
    if log_h.free_symbols & set(ef.variables):
        e_log_h = _linear_in_stats(ef, log_h, geo.expectation_params)
        if e_log_h is None:
            e_log_h = expectations(geo.family, [log_h], geo.timeout).values[0]
    else:
        e_log_h = log_h
    return _simplified(ef.log_partition_of_params
                       - sum(t * e for t, e in zip(ef.natural_of_params, geo.expectation_params)) - e_log_h)


SIMPLIFY_SECONDS = 10.0


def _simplified(expr) -> sp.Expr:
    """simplify, bounded in time (the inverse Gaussian's E[log x] held it for minutes); a representation
    (Integral, Sum) is only tidied, as simplify would try to evaluate it."""
    from .simplify import tidy
    from .timebound import TimeBoundExceeded, call_with_timeout
    if sp.sympify(expr).has(sp.Integral, sp.Sum):
        return tidy(expr)
    try:
        return call_with_timeout(sp.simplify, (expr,), SIMPLIFY_SECONDS)
    except (TimeBoundExceeded, RuntimeError):
        return tidy(expr)


def _linear_in_stats(ef: ExponentialFamily, expr, eta):
    """E[expr] when expr = c₀ + Σ c_a T_a (as log h often is): c₀ + Σ c_a η_a."""
    cs = sp.symbols(f"c0:{len(ef.stats) + 1}")
    residual = sp.expand(expr - cs[0] - sum(c * t for c, t in zip(cs[1:], ef.stats)))
    if residual == 0:
        return None
    sol = sp.solve(
        sp.Poly(residual, *ef.variables).coeffs()
        if residual.is_polynomial(*ef.variables)
        else [residual.coeff(t) for t in ef.stats] + [residual.as_independent(*ef.variables)[0]],
        cs,
        dict=True,
    )
    if not sol:
        return None
    s = sol[0]
    if any(c not in s for c in cs):
        return None
    check = sp.simplify(expr - s[cs[0]] - sum(s[c] * t for c, t in zip(cs[1:], ef.stats)))
    if check != 0:
        return None
    return s[cs[0]] + sum(s[c] * e for c, e in zip(cs[1:], eta))


# -- values at two numeric points, for every regular family -----------------------------------------
KINDS = ("kl", "reverse_kl", "jeffreys", "renyi", "alpha", "bhattacharyya", "hellinger_squared")
ORDERED = ("renyi", "alpha")  # these take an order (Rényi's a, Amari's α)
CLOSED, DECLARED, NUMERIC = "closed form", "declared closed form", "numeric quadrature"
DECLARED_RTOL = 1e-8  # a declared form must equal quadrature to this, beyond the quadrature's error
AGREEMENT = 1e-10  # relative, between quadrature at 20 and 30 digits


@dataclass(frozen=True)
class Divergence:
    """A divergence's value between two members, with its method; for a closed form, the formula in the
    pair's symbols and their values, else the quadrature's error estimate."""
    kind: str
    value: float
    method: str
    formula: sp.Expr | None = None
    point: dict | None = None
    error: float = 0.0


def divergence_formula(geo: Geometry, kind: str, order=None):
    """(formula in the pair's symbols, (first, second) symbol maps, method), or None where no closed form is
    known: via A for an exponential family, else a form declared with the family."""
    order = _checked_order(kind, order)
    if geo.exponential_family is not None:
        a, b = pair_symbols(geo)
        formula = _exponential_formula(geo, kind, a, b, order)
        if formula is not None:
            return formula, (a, b), CLOSED
    from .family import pair_of
    a, b = ({p: pair_of(p)[i] for p in geo.params} for i in (0, 1))
    formula = _declared_formula(geo.family, kind, a, b)
    return None if formula is None else (formula, (a, b), DECLARED)


def divergence_at(geo: Geometry, kind: str, first: dict, second: dict, order=None) -> Divergence:
    """The divergence `kind` (see KINDS) from the member at `first` to the one at `second` ({param: number}),
    with `order` for Rényi (a > 0, a ≠ 1) and α (α ≠ ±1); exact where a closed form is known."""
    order = _checked_order(kind, order)
    geo.require_regular()  # before any number is given
    found = divergence_formula(geo, kind, order)
    if found is None:
        return _numeric(geo.family, kind, first, second, order)
    formula, pair, method = found
    point = _pair_point(pair, first, second)
    _require_values(geo.family, formula, point)
    value = value_at(formula, point)
    if method == DECLARED:
        _check_declared(geo, kind, first, second, value)
    return Divergence(kind, value, method, formula, point)


def _check_declared(geo: Geometry, kind: str, first: dict, second: dict, value: float) -> None:
    """A declared form equals quadrature at the pair asked for, or where quadrature cannot settle there
    (members far apart at extreme scales), at the family's own sample pair."""
    from .errors import NumericalError
    try:
        numeric = _numeric(geo.family, kind, first, second, None)
    except NumericalError:
        first, second = (geo.family.sample_point(k) for k in (0, 1))
        first, second = ({p: pt[p] for p in geo.params} for pt in (first, second))
        formula, pair, _ = divergence_formula(geo, kind)
        value = value_at(formula, _pair_point(pair, first, second))
        numeric = _numeric(geo.family, kind, first, second, None)
    if abs(value - numeric.value) > numeric.error + DECLARED_RTOL * max(1.0, abs(value)):
        raise SymgeoError(
            f"{geo.family.name}: the declared closed form of {kind} gives {value!r} at "
            f"{first}, {second} but quadrature gives {numeric.value!r}: the declaration is wrong"
        )


def _pair_point(pair: tuple, first: dict, second: dict) -> dict:
    """The pair's symbols {ξ: ξ_1}, {ξ: ξ_2} given the two members' values."""
    a, b = pair
    return {**{a[p]: first[p] for p in a}, **{b[p]: second[p] for p in b}}


def _require_values(fam, formula, point: dict) -> None:
    unset = sorted(map(str, formula.free_symbols - set(point)))
    if unset:
        raise InvalidArgumentError(f"{fam.name}: give a value to its fixed symbol(s) {', '.join(unset)}, "
                                   f"e.g. '{fam.name}:{unset[0]}=3'")


def _checked_order(kind: str, order):
    if kind not in KINDS:
        raise SymgeoError(f"unknown divergence {kind!r} (known: {', '.join(KINDS)})")
    if kind not in ORDERED:
        if order is not None:
            raise SymgeoError(f"{kind} takes no order")
        return None
    if order is None:
        raise SymgeoError(f"{kind} needs an order ({'a > 0, a ≠ 1' if kind == 'renyi' else 'α ≠ ±1'})")
    order = sp.nsimplify(order) if isinstance(order, float) else sp.sympify(order)
    if not (order.is_number and order.is_real and order.is_finite):
        raise SymgeoError(f"{kind}: the order must be a finite real number, got {order}")
    if kind == "renyi" and (order <= 0 or order == 1):
        raise SymgeoError(f"renyi: the order must be positive and ≠ 1 (1 is KL), got {order}")
    if kind == "alpha" and abs(order) == 1:
        raise SymgeoError(f"alpha: α = ±1 are the KL divergences (kl, reverse_kl), got {order}")
    return order


def _exponential_formula(geo: Geometry, kind: str, first: dict, second: dict, order):
    """The closed form via A at the two points; None where A(θ) is not declared (λ-mixtures of θ)."""
    ef = geo.exponential_family
    if kind in ("kl", "reverse_kl", "jeffreys"):
        a, b = (first, second) if kind != "reverse_kl" else (second, first)
        return kl(geo, a, b) if kind != "jeffreys" else kl(geo, a, b) + kl(geo, b, a)
    if ef.log_partition is None:
        return None
    if kind == "renyi":
        return renyi(geo, first, second, order)
    if kind == "alpha":
        return alpha_divergence(geo, first, second, order)
    return (bhattacharyya if kind == "bhattacharyya" else hellinger_squared)(geo, first, second)


def _declared_formula(fam, kind: str, first: dict, second: dict):
    """A closed form declared with the family (KL), and those it gives: reverse KL and Jeffreys."""
    from .family import pair_of
    if "kl" not in fam.closed_forms or kind not in ("kl", "reverse_kl", "jeffreys"):
        return None
    form = fam.closed_forms["kl"]

    def at(a, b):
        return form.xreplace({s: point[p] for p in fam.params for s, point in zip(pair_of(p), (a, b))})
    if kind == "kl":
        return at(first, second)
    return at(second, first) if kind == "reverse_kl" else at(first, second) + at(second, first)


def _numeric(fam, kind: str, first: dict, second: dict, order) -> Divergence:
    """By quadrature at 20 and 30 digits: KL from E_p₁[log p₁ − log p₂], the others from the affinity
    ∫ p₁^λ p₂^(1−λ) = E_p₁[exp((1 − λ)(log p₂ − log p₁))]."""
    from .errors import NumericalError
    if len(fam.variables) != 1:
        raise SymgeoError(f"{fam.name}: a numeric divergence is computed for one-variable families only")
    try:
        values = [_numeric_value(fam, kind, first, second, order, dps) for dps in (20, 30)]
    except (ValueError, ZeroDivisionError, OverflowError) as err:
        raise NumericalError(f"{fam.name}: the {kind} quadrature failed between {first} and {second} "
                             f"({err})") from None
    value, error = float(sp.re(values[1])), float(abs(values[1] - values[0]))
    if not (math.isfinite(value) and math.isfinite(error)) or abs(sp.im(values[1])) > 0:
        raise NumericalError(f"{fam.name}: the {kind} quadrature is not finite between {first} and {second}: "
                             f"the divergence is probably infinite (∫ p₁^λ p₂^(1−λ) diverges for some orders "
                             f"when the tails differ)")
    if error > AGREEMENT * max(1.0, abs(value)):  # a convergent integral agrees to ~1e-18 between the two
        raise NumericalError(
            f"{fam.name}: {kind} between {first} and {second} did not converge (quadrature at "
            f"20 and 30 digits: {float(values[0])!r} and {value!r}); the integral is probably "
            f"infinite (∫ p₁^λ p₂^(1−λ) diverges for some orders when the tails differ)"
        )
    return Divergence(kind, value, NUMERIC, error=error)


def _numeric_value(fam, kind, first, second, order, dps):
    import mpmath

    from .expectation import numeric_expectation

    def kl_from(a, b):
        return numeric_expectation(
            fam, fam.log_density - fam.log_density.xreplace(b), a, dps=dps, peaks_of=[b]
        )

    def affinity(lam):  # ∫ p₁^λ p₂^(1−λ)
        log_ratio = fam.log_density.xreplace(second) - fam.log_density
        return numeric_expectation(fam, sp.exp((1 - lam) * log_ratio), first, dps=dps, peaks_of=[second])
    with mpmath.workdps(dps):
        if kind in ("kl", "reverse_kl"):
            return kl_from(first, second) if kind == "kl" else kl_from(second, first)
        if kind == "jeffreys":
            return kl_from(first, second) + kl_from(second, first)
        if kind == "renyi":
            return mpmath.log(affinity(order)) / mpmath.mpf(sp.N(order - 1, dps))
        if kind == "alpha":
            lam = (1 - order) / 2
            return mpmath.mpf(sp.N(4 / (1 - order ** 2), dps)) * (1 - affinity(lam))
        half = affinity(sp.Rational(1, 2))
        return -mpmath.log(half) if kind == "bhattacharyya" else 1 - half


def entropy_at(geo: Geometry, point: dict) -> Divergence:
    """The entropy at a numeric point: its closed form where the expectation engine finds one, else
    −E[log p] by quadrature at 20 and 30 digits."""
    from .errors import NumericalError
    from .expectation import is_represented, numeric_expectation
    geo.require_regular()
    formula = entropy(geo)
    _require_values(geo.family, formula, point)  # a fixed symbol may bound a Sum too (binomial's n)
    if not is_represented(formula):
        return Divergence("entropy", value_at(formula, point), CLOSED, formula, dict(point))
    fam = geo.family
    if len(fam.variables) != 1:
        raise SymgeoError(f"{fam.name}: a numeric entropy is computed for one-variable families only")
    values = [numeric_expectation(fam, -fam.log_density, point, dps=dps) for dps in (20, 30)]
    value, error = float(values[1]), float(abs(values[1] - values[0]))
    if not (math.isfinite(value) and math.isfinite(error)):
        raise NumericalError(f"{fam.name}: the entropy quadrature is not finite at {point}")
    return Divergence("entropy", value, NUMERIC, error=error)
