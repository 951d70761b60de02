"""Integral representations: an expectation with no closed form kept as an exact SymPy object.

E[h] = Integral(h(z) q(z), (z, lo, hi)) or Sum(f(x) p(x), (x, lo, hi)) with the parameters free.
SymPy differentiates such objects under the sign (Leibniz), so Christoffel symbols and curvature
follow; `str` of one sympifies back and `evalf`s; numeric backends evaluate them by quadrature.
"""
from __future__ import annotations

import mpmath
import sympy as sp

from .quadrature import integrate_density, sum_density

CANONICAL_OPS = 150
KINDS = ("closed form", "integral representation", "series representation")


def integral(h, logq, z, lo, hi) -> sp.Integral:
    """Over (0, ∞) an integrand without exponentials of z is written in log_z = log z on the line:
    a tail as heavy as the log-Cauchy's (decay 1/(z log⁴z)) becomes polynomial, which quadrature
    resolves, where in z no finite cut-off reaches 1e-10. One with exp(c z) keeps z (in log_z it
    would decay doubly exponentially and overflow on the way)."""
    if lo == 0 and hi == sp.oo:
        var = sp.Symbol(f"log_{z}", real=True)
        integrand = (h * sp.exp(logq)).xreplace({z: sp.exp(var)}) * sp.exp(var)
        if not _nested_exp(integrand, var):
            return _integral(integrand, var, -sp.oo, sp.oo)
    var = sp.Symbol(str(z), **_assumptions(z))
    integrand = (h * sp.exp(logq)).xreplace({z: var})
    return _integral(integrand, var, lo, hi)


def _integral(integrand, var, lo, hi):
    """c · Integral(f) with f factored and c free of var: one integral written two ways (the
    skew-normal's E[z² e^{-α²z²}/(1 + erf)²] from two entries) becomes one atom."""
    if sp.count_ops(integrand) <= CANONICAL_OPS:
        integrand = sp.factor(integrand)
    coeff, body = integrand.as_independent(var, as_Add=False)
    return coeff * sp.Integral(body, (var, lo, hi))


def series(f, logp, x, lo, hi) -> sp.Sum:
    var = sp.Symbol(str(x), integer=True)
    return sp.Sum((f * sp.exp(logp)).xreplace({x: var}), (var, lo, hi))


def _nested_exp(expr, var) -> bool:
    return any(isinstance(inner, sp.exp) and inner.has(var)
               for outer in expr.atoms(sp.exp) for inner in sp.preorder_traversal(outer.args[0]))


def _assumptions(z) -> dict:
    if z.is_positive:
        return {"positive": True}
    return {"real": True}


def kind(expr) -> str:
    """Which of KINDS an expression is: the integral kind wins over the series kind."""
    expr = sp.sympify(expr)
    if expr.has(sp.Integral):
        return KINDS[1]
    if expr.has(sp.Sum):
        return KINDS[2]
    return KINDS[0]


def is_represented(expr) -> bool:
    return sp.sympify(expr).has(sp.Integral, sp.Sum)


def _exponential_part(body, var) -> tuple:
    """body = h · exp(L): the exponential factors' arguments L (which hold the peak), and the rest h."""
    exps = [f for f in sp.Mul.make_args(body) if isinstance(f, sp.exp) and f.has(var)]
    log_q = sp.Add(*[f.args[0] for f in exps])
    return sp.Mul(*[f for f in sp.Mul.make_args(body) if f not in exps]), log_q


def evaluate(expr, point: dict, dps: int = 20):
    """expr at a numeric point, Integral and Sum atoms by mpmath quadrature/summation (far faster
    than SymPy's evalf of them), as an mpmath number."""
    expr = sp.sympify(expr).xreplace(point)
    values = {}
    for atom in expr.atoms(sp.Integral, sp.Sum):
        (var, lo, hi), = atom.limits
        h, log_q = _exponential_part(atom.function, var)  # log q locates the integrand's peak
        if isinstance(atom, sp.Integral):
            values[atom] = integrate_density(h, log_q, var, lo, hi, dps)
        else:
            values[atom] = sum_density(h, log_q, var, lo, hi, dps)
    with mpmath.workdps(dps):
        return mpmath.mpmathify(sp.N(expr.xreplace({a: sp.Float(v, dps) for a, v in values.items()}), dps))
