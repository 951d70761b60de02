"""Expectations over a Region of several variables by nested scipy quadrature and direct sums: the
numeric side of multi-variable families (normalisation and log-partition checks, references).

A variable's range may depend on the variables outside it (0 < x < y), so the integral is nested
innermost first: ∫ dy ∫_0^y dx f(x, y) p(x, y).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import sympy as sp

from ..support import Integers, Region

RTOL = 1e-12
MAX_TERMS = 100_000


def region_expectation(family, f, point: dict, rtol: float = RTOL):
    """E[f] at a numeric parameter point (f = 1: the total mass); f may be a list, computed in one
    pass (an array comes back)."""
    region: Region = family.support
    variables = region.variables
    many = isinstance(f, (list, tuple))
    fs = [sp.sympify(e).xreplace(point) for e in (f if many else [f])]
    integrand = _vector_function(variables, fs, family.log_density.xreplace(point))
    bounds = [(_bound(r.lo.xreplace(point), variables), _bound(r.hi.xreplace(point), variables),
               isinstance(r, Integers)) for _, r in region.ranges]
    value = _nested(integrand, bounds, len(bounds) - 1, {}, rtol)
    return value if many else float(value[0])


# math first: scalar calls ~10× cheaper than numpy's; log Γ without overflow
_SCALAR_MODULES = [{"loggamma": math.lgamma}, "math", "scipy", "numpy"]


def _scalar_ready(expr):
    """factorial/binomial as Γ, and log Γ(·) as loggamma: counts of any size, floats accepted."""
    expr = sp.expand_log(sp.sympify(expr).rewrite(sp.gamma), force=True)
    return expr.replace(lambda a: isinstance(a, sp.log) and isinstance(a.args[0], sp.gamma),
                        lambda a: sp.loggamma(a.args[0].args[0]))


def _vector_function(variables, fs, log_p):
    fn = sp.lambdify(variables, [_scalar_ready(f) for f in fs], modules=_SCALAR_MODULES)
    log_fn = sp.lambdify(variables, _scalar_ready(log_p), modules=_SCALAR_MODULES)
    zero = np.zeros(len(fs))

    def value(*xs):
        """f p at a node; a node where an integrable end singularity ((y − x)^(b − 1) with x = y after
        rounding) is not finite counts 0: a non-integrable one still shows in the total."""
        try:
            lp = float(log_fn(*xs))
            if not -745 < lp < 745:
                return zero
            out = np.asarray(fn(*xs), dtype=float) * math.exp(lp)
        except (ValueError, ZeroDivisionError, OverflowError):  # math's domain errors at an end
            return zero
        return np.where(np.isfinite(out), out, 0.0)
    value.zero = zero
    return value


def _bound(expr, variables):
    """A range end as a function of the values of the variables outside it (by their index in the
    innermost-first order; the inner ones are never used, by that order)."""
    if not expr.free_symbols & set(variables):
        constant = float(expr)
        return lambda values: constant
    fn = sp.lambdify(variables, expr, modules=["numpy"])
    return lambda values: float(fn(*[values.get(i, math.nan) for i in range(len(variables))]))


def _nested(integrand, bounds, level: int, values: dict, rtol: float):
    """The integral (or sum) over the variables 0..level, the outer ones fixed in `values`; one
    scalar quad per entry (nested quad_vec was many times slower)."""
    lo_fn, hi_fn, discrete = bounds[level]
    lo, hi = lo_fn(values), hi_fn(values)

    def inner(t):
        here = {**values, level: float(t)}
        if level == 0:
            return integrand(*[here[i] for i in range(len(bounds))])
        return _nested(integrand, bounds, level - 1, here, rtol)
    if discrete:
        return _sum(inner, lo, hi)
    if len(integrand.zero) > 1:  # one nested integral per entry, not every inner entry per outer node
        return np.concatenate([_nested(_component(integrand, k), bounds, level, values, rtol)
                               for k in range(len(integrand.zero))])
    return np.array([_quad(lambda t: inner(t)[0], lo, hi, rtol)])


def _component(integrand, k: int):
    def value(*xs):
        return integrand(*xs)[k:k + 1]
    value.zero = integrand.zero[:1]
    return value


def _quad(fn, lo, hi, rtol):
    from scipy import integrate
    with warnings.catch_warnings():  # end singularities make quad warn; the total is what is checked
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return integrate.quad(fn, lo, hi, epsabs=0, epsrel=rtol, limit=200)[0]


def _sum(term, lo, hi):
    total, k, top = 0.0, int(lo), hi
    while k <= top:
        value = term(float(k))
        total = total + value
        k += 1
        if top == math.inf and k - int(lo) > 50 and np.all(np.abs(value) <= 1e-17 * np.abs(total)):
            break
        if k - int(lo) > MAX_TERMS:
            raise ValueError("a sum over the support did not converge")
    return total
