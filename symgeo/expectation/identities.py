"""Expectations under a standard law by differentiating its transform: E[V^s log^m V ...] exactly.

An integrand carried onto the law's variable v (see :mod:`laws`) is expanded into terms
c · v^s · (1-v)^t · log^m v · log^n(1-v) (Beta), c · v^s · e^{-tv} · log^m v (Gamma) or c · v^n · e^{tv}
(Normal); each is a derivative of the transform at (s, t). A term of another shape makes the whole
integrand fall through to the next method.
"""
from __future__ import annotations

import sympy as sp

from .laws import BetaLaw, GammaLaw, NormalLaw, Standardization


def expect_standard(std: Standardization, h, conditions: list | None = None) -> sp.Expr | None:
    """E[h(v)] under std.law for h already carried onto v; None if some term has another shape. The
    conditions for each term's transform to be finite (k + s > 0: E[X⁻²] of an inverse gamma needs
    a > 2) are appended to `conditions`, those that hold for every parameter value left out."""
    law, v = std.law, std.v
    total = sp.Integer(0)
    if h == 0:  # an odd integrand under a symmetric law
        return total
    memo: dict = {}
    for term in sp.Add.make_args(h):  # carried: numerator terms over a factored denominator
        shape = _term_shape(term, v, law)
        if shape is None:
            return None
        coeff, key = shape
        if key not in memo:
            memo[key] = _moment(law, key)
            if conditions is not None:
                conditions.extend(c for c in law.exists(key[0], key[1])
                                  if c is not sp.true and c not in conditions)
        total += coeff * memo[key]
    return total


def _term_shape(term, v, law):
    """(coefficient, (s, t, m, n)) for a term of the law's shape, else None."""
    coeff, rest = term.as_independent(v, as_Add=False)
    s, t, m, n = sp.Integer(0), sp.Integer(0), 0, 0
    for fac in sp.Mul.make_args(rest):
        base, e = fac.as_base_exp()
        if fac == 1:
            continue
        if isinstance(law, BetaLaw) and e.is_Integer and sp.expand(base - (v - 1)) == 0:
            t += e
            coeff *= (-1) ** e
        elif base == v:
            s += e
        elif isinstance(law, BetaLaw) and sp.expand(base - (1 - v)) == 0:
            t += e
        elif isinstance(base, sp.log) and e.is_Integer and e > 0 and base.args[0] == v \
                and not isinstance(law, NormalLaw):
            m += int(e)
        elif isinstance(law, BetaLaw) and isinstance(base, sp.log) and e.is_Integer and e > 0 \
                and sp.expand(base.args[0] - (1 - v)) == 0:
            n += int(e)
        elif isinstance(fac, sp.exp) and not isinstance(law, BetaLaw):
            arg = sp.expand(fac.args[0])
            rate = arg.coeff(v)
            const = sp.expand(arg - rate * v)
            if const.has(v) or rate.has(v):
                return None
            t += -rate if isinstance(law, GammaLaw) else rate
            coeff *= sp.exp(const)
        else:
            return None
    if isinstance(law, NormalLaw) and not (s.is_Integer and s >= 0):
        return None
    return coeff, (s, t, m, n)


_S, _T = sp.Dummy("s"), sp.Dummy("t")


def _moment(law, key):
    s, t, m, n = key
    if isinstance(law, NormalLaw):
        out = sp.diff(law.transform(_T), _T, int(s)) if s else law.transform(_T)
        return sp.expand(out.xreplace({_T: t}))
    value = law.transform(_S, _T)
    if m:
        value = sp.diff(value, _S, m)
    if n:
        value = sp.diff(value, _T, n)
    value = value.xreplace({_S: s, _T: t})
    # Γ(a + n)/Γ(a) → a(a+1)…, Γ only: expand_func on ψ(p/q) writes Gauss's q-term digamma formula,
    # and gammasimp can take minutes on rational shapes
    return sp.expand(value.replace(lambda e: isinstance(e, sp.gamma), sp.expand_func))
