"""The one simplification policy: applied once, where a result enters the cache.

Rational functions of the parameters are put in lowest terms and factored by FLINT (exact, fast);
anything else goes through `simplify` while it is small, else `cancel`. Tensor components computed
in :mod:`symgeo.algebra` arrive already in lowest terms and only need factoring.
"""
from __future__ import annotations

import sympy as sp

from .algebra import lowest_terms

SMALL_OPS = 400


def tidy(expr) -> sp.Expr:
    expr = sp.sympify(expr)
    if expr.has(sp.Integral, sp.Sum):  # simplify would try to evaluate the representation
        return expr
    if expr.is_number:
        return sp.nsimplify(sp.simplify(expr)) if expr.is_Float else sp.simplify(expr)
    symbols = list(expr.free_symbols)
    if expr.is_rational_function(*symbols):
        return lowest_terms(expr)
    if expr.is_Pow and expr.exp.is_Rational and expr.base.is_rational_function(*symbols):
        return lowest_terms(expr.base) ** expr.exp
    if sp.count_ops(expr) <= SMALL_OPS:
        simple = sp.simplify(expr)
        factored = sp.factor_terms(simple)
        return factored if sp.count_ops(factored) <= sp.count_ops(simple) else simple
    return sp.cancel(expr)


def tidy_matrix(matrix) -> sp.ImmutableMatrix:
    n, m = matrix.shape
    out = [[None] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            if out[i][j] is None:
                out[i][j] = tidy(matrix[i, j])
                if n == m and j > i and sp.expand(matrix[i, j] - matrix[j, i]) == 0:
                    out[j][i] = out[i][j]
    return sp.ImmutableMatrix(out)
