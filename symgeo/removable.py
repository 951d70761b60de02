"""Removable singularities of closed forms inside the parameter domain, and the series that replace
the closed form near them.

g(a) = −1/a² + (log(1 + a) − log(1 − a))/(2a³) is finite at a = 0 (g → 1/3) but is 0/0 there, and in
floating point it loses every digit near it (g(10⁻⁶) evaluates to −26.4). For each parameter, the
constant zeros of the denominator inside its domain where the expression has a finite limit are found,
with the Taylor polynomial there and the radius within which that polynomial is exact to double
precision; code generation evaluates the polynomial inside the radius.

>>> a = sp.Symbol("a", real=True)
>>> g = -1/a**2 + (sp.log(1 + a) - sp.log(1 - a))/(2*a**3)
>>> (patch,) = removable_patches(g, {a: sp.Interval.open(-1, 1)}, {})
>>> patch.at, patch.series.subs(a, 0), patch.radius
(0, 1/3, 1/10)
"""
from __future__ import annotations

from dataclasses import dataclass

import mpmath
import sympy as sp

from .timebound import TimeBoundExceeded, call_with_timeout

ORDER = 20                 # terms of the Taylor polynomial
EXTRA = 8                  # highest order of the zero of the denominator that is tried
MAX_OPS = 300              # larger expressions are left as they are (their series cost too much)
SERIES_SECONDS = 5.0
SERIES_RTOL = 1e-15        # the polynomial's agreement with the exact value at the switch radius
RADII = tuple(sp.Rational(1, 10 ** k) for k in range(1, 7)) + ()


@dataclass(frozen=True)
class Patch:
    """Inside |param − at| < radius, `series` replaces the closed form."""

    param: sp.Symbol
    at: sp.Expr
    series: sp.Expr
    radius: sp.Rational


def removable_patches(expr: sp.Expr, domains: dict, values: dict) -> list[Patch]:
    """The removable singularities of expr at constant values of one parameter inside its open
    domain; `values` gives the other parameters' sample values used to size the radius."""
    expr = sp.sympify(expr)
    if expr.is_number or sp.count_ops(expr) > MAX_OPS or expr.has(sp.Integral, sp.Sum, sp.Piecewise):
        return []
    denominator = sp.fraction(sp.together(expr))[1]
    patches = []
    for param, domain in domains.items():
        for root in _constant_roots(denominator, param, domain):
            patch = _patch(expr, param, root, values)
            if patch is not None:
                patches.append(patch)
    return patches


def _constant_roots(denominator, param, domain) -> list:
    if param not in denominator.free_symbols:
        return []
    roots = set()
    for factor in _polynomial_factors(denominator, param):
        for root in sp.Poly(factor, param).real_roots():
            root = sp.nsimplify(root) if root.is_Rational else root
            if root.is_Rational and domain.contains(root) and root not in (domain.inf, domain.sup):
                roots.add(root)
    return sorted(roots)


def _polynomial_factors(denominator, param) -> list:
    """The factors of the denominator that are polynomials of low degree in `param` alone
    (bases of powers included: √a and a³ both give a)."""
    out = []
    for term in sp.Mul.make_args(denominator):
        base = term.as_base_exp()[0]
        if base.free_symbols != {param} or not base.is_polynomial(param) or sp.degree(base, param) > 4:
            continue
        out += [f for f, _ in sp.factor_list(base, param)[1] if f.free_symbols == {param}]
    return out


def _patch(expr, param, at, values) -> Patch | None:
    try:
        series = call_with_timeout(_taylor, (expr, param, at), SERIES_SECONDS)
    except (TimeBoundExceeded, RuntimeError):
        return None
    if series is None:
        return None
    radius = _radius(expr, series, param, at, values)
    return None if radius is None else Patch(param, at, series, radius)


def _taylor(expr, param, at):
    """The Taylor polynomial of expr at param = at, or None where the limit is not finite.

    Numerator and denominator are expanded separately and divided as power series (SymPy's series of
    the quotient itself takes seconds where this takes milliseconds)."""
    step = sp.Dummy("h")
    num, den = (_coefficients(f, param, at, step, ORDER + EXTRA) for f in sp.fraction(sp.together(expr)))
    if num is None or den is None:
        return None
    lowest = next((k for k, d in enumerate(den) if not _is_zero(d)), None)
    if lowest is None or lowest > EXTRA or any(not _is_zero(c) for c in num[:lowest]):
        return None
    quotient = []
    for j in range(ORDER):
        top = num[j + lowest] if j + lowest < len(num) else 0
        top -= sum(quotient[i] * den[lowest + j - i] for i in range(j) if lowest + j - i < len(den))
        quotient.append(sp.cancel(top / den[lowest]))
    return sum(c * (param - at) ** k for k, c in enumerate(quotient))


def _coefficients(f, param, at, step, count: int):
    """[c_0, c_1, ...] of f(at + h) = Σ c_k h^k up to h^(count−1), or None if not a power series."""
    series = sp.series(f.xreplace({param: at + step}), step, 0, count).removeO()
    series = sp.expand(series)
    if series.has(sp.log(step)) or not series.is_polynomial(step):
        return None
    poly = sp.Poly(series, step)
    coeffs = [poly.coeff_monomial(step ** k) for k in range(count)]
    return [sp.sympify(c) for c in coeffs]


def _is_zero(c) -> bool:
    c = sp.sympify(c)
    return c == 0 or sp.simplify(c) == 0


def _radius(expr, series, param, at, values) -> sp.Rational | None:
    """The largest radius at which the polynomial equals the exact value (60 digits) to SERIES_RTOL."""
    others = {k: v for k, v in values.items() if k != param}
    exact_fn = sp.lambdify(param, expr.xreplace(others), "mpmath")
    series_fn = sp.lambdify(param, series.xreplace(others), "mpmath")
    for radius in RADII:
        with mpmath.workdps(60):
            try:
                ok = all(_close(exact_fn(at + sign * mpmath.mpf(radius.p) / radius.q),
                                series_fn(at + sign * mpmath.mpf(radius.p) / radius.q)) for sign in (1, -1))
            except (ZeroDivisionError, ValueError, TypeError, ArithmeticError):
                ok = False
        if ok:
            return radius
    return None


def _close(exact, approx) -> bool:
    if not (mpmath.isfinite(mpmath.re(exact)) and mpmath.isfinite(mpmath.re(approx))):
        return False
    return abs(exact - approx) <= SERIES_RTOL * max(abs(exact), mpmath.mpf(10) ** -30)


def guarded(expr: sp.Expr, patches: list[Patch]) -> sp.Expr:
    """expr with each patch's polynomial inside its radius; the closed form is then evaluated at a
    point outside the radius, so no 0/0 (and no NaN gradient) arises in the branch not taken."""
    for patch in patches:
        near = sp.Lt(sp.Abs(patch.param - patch.at), patch.radius)
        safe = sp.Piecewise((patch.at + 2 * patch.radius, near), (patch.param, True))
        expr = sp.Piecewise((patch.series, near), (expr.xreplace({patch.param: safe}), True))
    return expr
