"""Recognise an exponential family in a density: log p = θ(ξ)·T(x) − A(ξ) + log h(x)."""
from __future__ import annotations

import sympy as sp

from .family import ExponentialFamily, Family


def recognize(family: Family) -> ExponentialFamily | None:
    """The family as an ExponentialFamily in its own parameters, or None if its log-density
    does not split into products of parameter-only and variable-only factors.

    >>> from symgeo.support import Interval
    >>> x, lam = sp.Symbol('x', positive=True), sp.Symbol('lam', positive=True)
    >>> ef = recognize(Family('exponential', x, Interval(0, sp.oo), (lam,), log_density=sp.log(lam) - lam*x))
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
    stats = [t for t, c in coeffs.items() if sp.simplify(c) != 0]
    if len(stats) != family.n:
        return None  # no statistics, or a curved family (more statistics than parameters)
    stats.sort(key=sp.default_sort_key)
    natural = tuple(sp.Symbol(f"theta{i + 1}", real=True) for i in range(len(stats)))
    jac = sp.Matrix([[sp.diff(coeffs[t], p) for p in family.params] for t in stats])
    if sp.simplify(jac.det()) == 0:
        return None
    return ExponentialFamily(
        family.name, family.variables, family.support, natural, stats, None, log_h,
        params=family.params, natural_of_params=[coeffs[t] for t in stats],
        log_partition_of_params=-minus_a, domains=family.domains, fixed=family.fixed,
        reduction=family.reduction, chart=family.chart, description=family.description)
