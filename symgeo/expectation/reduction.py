"""Standardizing substitutions x = x(z, ξ): location, scale and location–scale structure.

Under a reduction the law of z keeps only the family's shape parameters (none for a pure
location–scale family, ν for Student-t, α for the skew-normal); expectations then split into
(function of ξ) × E[h(z)], and E[h(z)] depends on the shape parameters alone.
"""
from __future__ import annotations

import sympy as sp

from ..errors import IntegrationError
from ..family import Family, Reduction
from ..support import Interval


def reduced_log_density(family: Family, red: Reduction) -> sp.Expr:
    """log q(z) for the law of z under x = x(z, ξ)."""
    (x,) = family.variables
    jac = sp.diff(red.x_of_z, red.z)
    logq = family.log_density.xreplace({x: red.x_of_z}) + sp.log(sp.Abs(jac))
    logq = sp.expand_log(sp.simplify(sp.expand_log(logq, force=True)), force=True)
    # simplify may fold terms back into log(a**(z**alpha)): expanded again, a quadrature node far
    # out evaluates b·log a instead of the astronomically large a**b (Fréchet's check took minutes)
    return sp.expand_log(sp.simplify(logq), force=True)


def identity_reduction(family: Family) -> Reduction:
    (x,) = family.variables
    return Reduction(x, x, family.support)


def find_reduction(family: Family) -> Reduction | None:
    """The location–scale, location or scale substitution that leaves the fewest parameters in
    the law of z (none for a pure location–scale family), or None if none removes any."""
    z = sp.Symbol("z", real=True)
    params = set(family.params)
    reals = [p for p in family.params if family.domains[p] == sp.Interval(-sp.oo, sp.oo)]
    positives = [p for p in family.params if family.domains[p] == sp.Interval.open(0, sp.oo)]
    lo, hi = family.support.lo, family.support.hi
    line = Interval(-sp.oo, sp.oo)
    candidates = []
    if lo == -sp.oo and hi == sp.oo:
        candidates += [(m + s * z, line) for m in reals for s in positives]
        candidates += [(m + z, line) for m in reals]
    if lo == 0 and hi == sp.oo:
        zp = sp.Symbol("z", positive=True)
        candidates += [(s * zp, family.support) for s in positives]
        candidates += [(zp / s, family.support) for s in positives]  # rates: e^(-λx)
        # log-location-scale: log x = m + s z (log-Cauchy, log-logistic in its location form)
        candidates += [(sp.exp(m + s * z), line) for m in reals for s in positives]
        candidates += [(sp.exp(m + z), line) for m in reals]
    best, best_left = None, len(params)
    for x_of_z, z_support in candidates:
        zsym = next(iter(x_of_z.free_symbols - params))
        red = Reduction(zsym, x_of_z, z_support)
        left = len(reduced_log_density(family, red).free_symbols & params)
        removed = len(x_of_z.free_symbols & params)
        if left <= len(params) - removed and left < best_left:
            best, best_left = red, left
            if left == 0:
                break
    return best


def separate(term, z, removable: set, name: str):
    """term -> (c(ξ), h(z, shape)); factoring first turns 1/(γ² + γ²z²) into γ⁻²·1/(1 + z²)."""
    coeff, h = term.as_independent(z, as_Add=False)
    if h.free_symbols & removable:
        coeff, h = sp.factor(term).as_independent(z, as_Add=False)
        c2, h = sp.powsimp(sp.expand_power_base(h, force=True), force=True).as_independent(z, as_Add=False)
        coeff *= c2
    if h.free_symbols & removable:
        raise IntegrationError(f"{name}: cannot separate {term} into a parameter factor and a "
                               f"function of {z}")
    return coeff, h
