"""Recognise an exponential family in a density: log p = θ(ξ)·T(x) − A(ξ) + log h(x)."""
from __future__ import annotations

import sympy as sp

from .family import ExponentialFamily, Family


def recognize(family: Family) -> ExponentialFamily | None:
    """The family as an ExponentialFamily in its own parameters, or None if its log-density
    does not split into products of parameter-only and variable-only factors.

    >>> from symgeo.support import Interval
    >>> x, lam = sp.Symbol('x', positive=True), sp.Symbol('lam', positive=True)
    >>> ef = recognize(Family('exponential', variables=x, support=Interval(0, sp.oo), params=(lam,),
    ...                       log_density=sp.log(lam) - lam*x))
    >>> ef.stats, ef.natural_of_params
    ((x,), (-lam,))
    """
    if family.is_exponential:
        return family
    variables, params = set(family.variables), set(family.params)
    logp = sp.expand(sp.expand_log(family.log_density, force=True))
    coeffs: dict = {}
    log_h, minus_a = sp.Integer(0), sp.Integer(0)
    for term in sp.Add.make_args(logp):
        has_x, has_p = bool(term.free_symbols & variables), bool(term.free_symbols & params)
        if not has_p:
            log_h += term
        elif not has_x:
            minus_a += term
        else:
            coeff, xpart = term.as_independent(*family.variables, as_Add=False)
            if xpart.free_symbols & params:
                return None
            number, core = xpart.as_coeff_Mul()
            coeffs[core] = coeffs.get(core, 0) + coeff * number
    coeffs = _independent(family, {t: c for t, c in coeffs.items() if sp.simplify(c) != 0})
    stats = list(coeffs)
    if len(stats) != family.n:
        return None  # no statistics, or a curved family (more statistics than parameters)
    stats.sort(key=sp.default_sort_key)
    natural = tuple(sp.Symbol(f"theta{i + 1}", real=True) for i in range(len(stats)))
    jac = sp.Matrix([[sp.diff(coeffs[t], p) for p in family.params] for t in stats])
    if _singular(jac, family):
        return None
    return ExponentialFamily(
        family.name,
        variables=family.variables,
        support=family.support,
        natural=natural,
        stats=stats,
        log_partition=None,
        log_base_measure=log_h,
        params=family.params,
        natural_of_params=[coeffs[t] for t in stats],
        log_partition_of_params=-minus_a,
        domains=family.domains,
        fixed=family.fixed,
        reduction=family.reduction,
        chart=family.chart,
        description=family.description,
    )


def _singular(jac: sp.Matrix, family: Family) -> bool:
    """det ∂θ/∂ξ ≡ 0? Clearly non-zero at a sample point settles it (an exact det of exp/log
    entries took minutes in a natural chart); only a numerically vanishing one is simplified."""
    for k in range(2):
        try:
            value = sp.N(jac.xreplace(family.sample_point(k)).det(method="berkowitz"), 30)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if value.is_number and abs(complex(value)) > 1e-20:
            return False
    return sp.simplify(jac.det(method="berkowitz")) == 0


def _independent(family: Family, coeffs: dict) -> dict:
    """{T: θ(ξ)} with statistics merged whose coefficients are linearly dependent: θ_t = Σ a_b θ_b
    (constants a) makes t one more term of each T_b. The logit-normal's log x and −log(1 − x) are
    one statistic log(x/(1 − x)), not two, and it is a 2-parameter exponential family."""
    terms = sorted(coeffs, key=lambda t: (sp.count_ops(coeffs[t]), sp.default_sort_key(t)))
    points = [family.sample_point(k) for k in range(len(terms) + 2)]
    basis: dict = {}
    for t in terms:
        weights = _combination(coeffs[t], [coeffs[b] for b in basis], points)
        if weights is None:
            basis[t] = t
            continue
        for b, a in zip(list(basis), weights):
            basis[b] += a * t
    return {stat: coeffs[b] for b, stat in basis.items()}


def _combination(c, basis: list, points: list):
    """Constants a with c = Σ a_j basis_j identically, or None."""
    if not basis:
        return None
    rows = sp.Matrix([[b.xreplace(pt) for b in basis] for pt in points])
    rhs = sp.Matrix([c.xreplace(pt) for pt in points])
    try:
        solution, free = rows.gauss_jordan_solve(rhs)
    except ValueError:  # no solution at the points: independent
        return None
    if free.shape[0]:
        solution = solution.xreplace(dict.fromkeys(free, 0))
    weights = [sp.nsimplify(a) for a in solution]
    if sp.simplify(c - sum(a * b for a, b in zip(weights, basis))) != 0:
        return None
    return weights
