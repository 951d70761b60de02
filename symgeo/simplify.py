"""The one simplification policy: applied once, where a result enters the cache.

Rational functions of the parameters are put in lowest terms and factored by FLINT (exact, fast);
anything else goes through `simplify` while it is small, else `cancel`. Tensor components computed
in :mod:`symgeo.algebra` arrive already in lowest terms and only need factoring.
"""
from __future__ import annotations

import sympy as sp

from .algebra import lowest_terms

SMALL_OPS = 400


def _small_polygammas(expr):
    """ψ⁽ᵐ⁾ at integers and half-integers in closed form (ψ⁽¹⁾(3/2) = π²/2 − 4): cheap and exact;
    other rationals stay, their expansion has a term per unit of the denominator."""
    return expr.replace(
        lambda a: isinstance(a, sp.polygamma) and a.args[0].is_Integer and a.args[0] >= 0
        and a.args[1].is_Rational and a.args[1].q <= 2 and 0 < a.args[1] <= 64,
        lambda a: _polygamma_at(int(a.args[0]), a.args[1]))


def _polygamma_at(m: int, r: sp.Rational) -> sp.Expr:
    """ψ⁽ᵐ⁾(r), r = f + k with f = 1 or 1/2: the value at f plus k steps of
    ψ⁽ᵐ⁾(x + 1) = ψ⁽ᵐ⁾(x) + (−1)ᵐ m!/x^(m+1)."""
    f = sp.Integer(1) if r.q == 1 else sp.Rational(1, 2)
    sign = (-1) ** (m + 1) * sp.factorial(m)
    if m == 0:
        value = -sp.EulerGamma if f == 1 else -sp.EulerGamma - 2 * sp.log(2)
    else:
        value = sign * sp.zeta(m + 1) * (1 if f == 1 else 2 ** (m + 1) - 1)
    steps = int(r - f)
    return value + sum((-1) ** m * sp.factorial(m) / (f + j) ** (m + 1) for j in range(steps))


MAX_SHIFT = 12


def _shifted_polygammas(expr):
    """ψ⁽ᵐ⁾(u + c) with a rational c outside [0, 1) written at u + (c mod 1) plus the rational terms of
    ψ⁽ᵐ⁾(x + 1) = ψ⁽ᵐ⁾(x) + (−1)ᵐ m!/x^(m+1): ψ((ν+3)/2) − ψ((ν+1)/2) becomes 2/(ν+1), and a
    beta-binomial's ψ(a + 6) joins ψ(a), so later algebra sees one transcendental per argument."""
    def shifted(a):
        m, arg = a.args
        c, u = arg.as_coeff_Add()
        if not (c.is_Rational and u.free_symbols) or 0 <= c < 1 or abs(c) > MAX_SHIFT:
            return a
        base = c - sp.floor(c)
        steps = int(c - base)
        sign = (-1) ** int(m) * sp.factorial(m)
        if steps > 0:
            return sp.polygamma(m, u + base) + sum(sign / (u + base + j) ** (m + 1) for j in range(steps))
        return sp.polygamma(m, u + base) - sum(sign / (u + base + j) ** (m + 1) for j in range(steps, 0))
    return expr.replace(lambda a: isinstance(a, sp.polygamma) and a.args[0].is_Integer and a.args[0] >= 0,
                        shifted)


def tidy(expr) -> sp.Expr:
    expr = sp.sympify(expr)
    if expr.has(sp.polygamma):
        expr = _shifted_polygammas(_small_polygammas(expr))
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
    if expr.has(sp.polygamma):  # cancel over the shifted polygammas' rational terms is slow (Burr's
        return sp.factor_terms(expr)  # skewness: minutes); the field algebra takes lowest terms anyway
    return sp.cancel(expr)


def tidy_reduced(expr) -> sp.Expr:
    """tidy for an expression the field algebra already put in lowest terms: only the small ones
    are simplified further (SymPy's cancel of a large one repeats that work in pure Python; on the
    truncated normal's curvature it was 28 of 30 s)."""
    expr = sp.sympify(expr)
    if expr.has(sp.polygamma, sp.Integral, sp.Sum) or _at_most_nodes(expr, SMALL_OPS):
        return tidy(expr)
    return expr


def _at_most_nodes(expr, limit: int) -> bool:
    """Whether expr has at most `limit` nodes, stopping early (count_ops of a large expression
    costs as much as printing it)."""
    for count, _ in enumerate(sp.preorder_traversal(expr)):
        if count >= limit:
            return False
    return True


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
