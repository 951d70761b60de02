"""Laws of a monotone transform of a standard normal: w = g(z) ~ N(0, 1), found from log q.

Such a law has log q = −g(z)²/2 + log g'(z) − log √(2π) (Birnbaum–Saunders: g = (√z − 1/√z)/α;
Johnson's S_U: g = γ + δ asinh z). The part of log q that is not c·log f(z) is −g²/2 up to a constant,
and g vanishes where that part is largest: so g² is found, g is its root that increases, and the
whole of log q is then checked numerically against the formula. E[h(z)] = E[h(z(w))] under N(0, 1)
with z(w) the inverse of g; the integrand is first made even in w (the law is symmetric), which
turns the radicals of z(w) into rational functions of w² (Birnbaum–Saunders' E[z/(1 + z)²] becomes
E[1/(4 + α²w²)], an erfc), then split into partial fractions for SymPy's integrate.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import sympy as sp

from ..support import Interval
from ..timebound import TimeBoundExceeded, call_with_timeout
from .bounded import integrate_closed

W = sp.Symbol("w_", real=True)
FIND_SECONDS = 5.0
CHECK_POINTS = 4


@dataclass(frozen=True)
class NormalTransform:
    z: sp.Symbol
    g: sp.Expr  # w = g(z), increasing on the support
    z_of_w: sp.Expr

    def describe(self) -> str:
        return f"{sp.sstr(self.g)} ~ Normal(0, 1)"

    def integrand(self, h) -> sp.Expr:
        """h(z(w)) made even in w, radicals cleared, in partial fractions of w where rational."""
        e = h.xreplace({self.z: self.z_of_w})
        even = sp.simplify(sp.radsimp(sp.together((e + e.xreplace({W: -W})) / 2)))
        if even.is_rational_function(W):
            return sp.apart(even, W)
        return sp.expand(even)


def normal_transform(logq, z, support: Interval, samples: list) -> NormalTransform | None:
    """The transform g with w = g(z) ~ N(0, 1) under exp(logq), or None (bounded in time)."""
    try:
        return call_with_timeout(_find, (logq, z, support, samples), FIND_SECONDS)
    except (TimeBoundExceeded, RuntimeError):
        return None


def expect_normal(t: NormalTransform, h, seconds: float):
    """E[h(z)] = ∫ h(z(w)) φ(w) dw by SymPy, term by term, or None."""
    try:
        return call_with_timeout(_expect, (t, h), seconds)
    except (TimeBoundExceeded, RuntimeError):
        return None


def _expect(t: NormalTransform, h):
    phi = sp.exp(-W ** 2 / 2) / sp.sqrt(2 * sp.pi)
    total = sp.Integer(0)
    for term in sp.Add.make_args(t.integrand(h)):
        value = integrate_closed(term * phi, W, -sp.oo, sp.oo)
        if value is None:
            return None
        total += value
    return sp.simplify(total)


# -- finding g ---------------------------------------------------------------------------------------
def _find(logq, z, support: Interval, samples: list):
    quadratic = sp.Add(*[t for t in sp.Add.make_args(sp.expand(logq)) if not _log_term(t, z)])
    if not quadratic.has(z):
        return None
    critical = _unique_critical_point(quadratic, z, support, samples)
    if critical is None:
        return None
    g_squared = sp.factor(-2 * (quadratic - quadratic.xreplace({z: critical})))
    g = sp.powdenest(sp.sqrt(g_squared), force=True).replace(
        lambda e: isinstance(e, sp.Abs), lambda e: e.args[0]
    )
    if _value_at(sp.diff(g, z), samples[0], {z: _inside(support)[1]}) < 0:
        g = -g
    if not _matches(logq, g, z, support, samples):
        return None
    z_of_w = _inverse(g, z, support, samples)
    return None if z_of_w is None else NormalTransform(z, g, z_of_w)


def _log_term(term, z) -> bool:
    """c·log f(z): a term of log g' (the Jacobian), not of −g²/2."""
    dependent = term.as_independent(z, as_Add=False)[1]
    return isinstance(dependent, sp.log)


def _unique_critical_point(quadratic, z, support, samples):
    try:
        roots = sp.solve(sp.diff(quadratic, z), z)
    except (NotImplementedError, ValueError):
        return None
    inside = [r for r in roots if _in_support(r, samples[0], support)]
    return inside[0] if len(inside) == 1 else None


def _in_support(expr, sample, support: Interval) -> bool:
    value = sp.N(expr.xreplace(sample))
    if not value.is_real:
        return False
    return bool((support.lo == -sp.oo or value > support.lo) and (support.hi == sp.oo or value < support.hi))


def _inside(support: Interval) -> list:
    """Points inside the support where the identity is checked."""
    lo, hi = support.lo, support.hi
    if lo == -sp.oo and hi == sp.oo:
        return [-1.7, -0.3, 0.4, 2.2]
    if hi == sp.oo:
        return [float(lo) + d for d in (0.15, 0.8, 1.9, 6.5)]
    return [float(lo + (hi - lo) * f) for f in (0.1, 0.35, 0.6, 0.9)]


def _value_at(expr, sample, point) -> float:
    return float(sp.N(expr.xreplace(sample).xreplace(point)))


def _matches(logq, g, z, support, samples) -> bool:
    """log q = −g²/2 + log g' − log √(2π) at points of the support, for each sample."""
    formula = -g ** 2 / 2 + sp.log(sp.diff(g, z)) - sp.log(2 * sp.pi) / 2
    for sample in samples:
        for point in _inside(support)[:CHECK_POINTS]:
            try:
                lhs = complex(sp.N(logq.xreplace(sample).xreplace({z: point}), 30))
                rhs = complex(sp.N(formula.xreplace(sample).xreplace({z: point}), 30))
            except (TypeError, ValueError):
                return False
            if not (
                abs(lhs.imag) < 1e-20 and abs(rhs.imag) < 1e-20 and abs(lhs - rhs) <= 1e-12 * max(1, abs(lhs))
            ):
                return False
    return True


def _inverse(g, z, support, samples):
    """The root z(w) of g(z) = w that lies in the support and inverts g at sample values of w."""
    try:
        roots = sp.solve(sp.Eq(g, W), z)
    except (NotImplementedError, ValueError):
        return None
    rng = random.Random(0)
    checks = [rng.uniform(-2.5, 2.5) for _ in range(3)]
    for root in roots:
        if all(_inverts(root, g, z, support, sample, w) for sample in samples for w in checks):
            return root
    return None


def _inverts(root, g, z, support, sample, w) -> bool:
    try:
        at = sp.N(root.xreplace(sample).xreplace({W: w}), 30)
        if not at.is_real or not _in_support(at, {}, support):
            return False
        back = sp.N(g.xreplace(sample).xreplace({z: at}), 30)
        return abs(float(back) - w) < 1e-12
    except (TypeError, ValueError):
        return False
