"""SymPy's own integrate and summation, under a wall-clock bound, with answers checked numerically.

Also the two constant-only methods: Gamma-moment identities for e^{-z} laws, and identification of a
60-digit quadrature value over a small basis (π, π², γ, γ², log 2, ζ(3)), recorded as such.
"""
from __future__ import annotations

import mpmath
import sympy as sp

from ..support import Interval
from ..timebound import TimeBoundExceeded, call_with_timeout

CONSTANT_TIMEOUT = 5.0  # a parameter-free integral SymPy can do, it does fast
_BASIS_NAMES = ("pi", "pi**2", "EulerGamma", "EulerGamma**2", "log(2)", "zeta(3)")


def gamma_moments(integrand, z, support: Interval):
    """Σ c z^a log^b z e^{-z} over (0, ∞) -> Σ c Γ^{(b)}(a + 1)."""
    if not (support.lo == 0 and support.hi == sp.oo):
        return None
    s = sp.Dummy("s")
    total = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(sp.powsimp(sp.expand(integrand)))):
        coeff, rest = term.as_independent(z, as_Add=False)
        a, b, has_exp = sp.Integer(0), 0, False
        for fac in sp.Mul.make_args(rest):
            base, expo = fac.as_base_exp()
            if base == z:
                a += expo
            elif base.func == sp.log and base.args[0] == z and expo.is_Integer and expo > 0:
                b += int(expo)
            elif fac == sp.exp(-z):
                has_exp = True
            else:
                return None
        if not has_exp or not (a + 1).is_positive:
            return None
        total += coeff * sp.diff(sp.gamma(s + 1), s, b).subs(s, a)
    return sp.expand(sp.expand_func(total))


def gamma_moments_after_log(integrand, z, support: Interval):
    """Over the real line, z = ∓log u maps e^{∓z}-type laws (Gumbel) onto Gamma moments in u."""
    if not (support.lo == -sp.oo and support.hi == sp.oo) or not integrand.has(sp.exp):
        return None
    u = sp.Dummy("u", positive=True)
    for sign in (-1, 1):
        moved = sp.powsimp(sp.expand(integrand.xreplace({z: sign * sp.log(u)}) / u), force=True)
        moved = sp.expand(
            moved.replace(lambda e: isinstance(e, sp.exp), lambda e: sp.exp(sp.expand(e.args[0])))
        )
        value = gamma_moments(moved, u, Interval(0, sp.oo))
        if value is not None:
            return value
    return None


def bounded_integrate(integrand, z, support: Interval, timeout: float):
    pieces = [(support.lo, support.hi)]
    if integrand.has(sp.Abs, sp.sign) and support.lo == -sp.oo and support.hi == sp.oo:
        pieces = [(-sp.oo, 0), (0, sp.oo)]
    total = sp.Integer(0)
    for lo, hi in pieces:
        sign_sub = sp.Dummy("t", positive=True)
        if lo == 0:
            part, var = integrand.xreplace({z: sign_sub}), sign_sub
        elif hi == 0:
            part, var, lo, hi = integrand.xreplace({z: -sign_sub}), sign_sub, 0, sp.oo
        else:  # the whole line: the odd part integrates to 0 (z⁴ erf(αz) φ(z) in the skew-normal)
            part, var = _even_part(integrand, z), z
            if part == 0:
                continue
        try:
            res = call_with_timeout(integrate_closed, (part, var, lo, hi), timeout)
        except (TimeBoundExceeded, RuntimeError):
            return None
        if res is None:
            return None
        total += res
    return total


def _even_part(f, z):
    even = (f + f.xreplace({z: -z})) / 2
    return sp.expand(even) if sp.count_ops(even) <= 200 else even


def integrate_closed(expr, var, lo, hi):
    expr = sp.simplify(sp.powsimp(exp_log_to_power(expr), force=True))
    res = sp.integrate(expr, (var, lo, hi), conds="none")
    res = res.replace(lambda e: isinstance(e, sp.loggamma), lambda e: sp.log(sp.gamma(e.args[0])))
    if res.has(sp.hyper, sp.meijerg):
        res = sp.hyperexpand(res)
    if not is_closed_form(res):
        return None
    if res.has(sp.sinh, sp.cosh, sp.tanh):  # e^x (cosh x − sinh x) is 1 only once written in exp
        res = res.rewrite(sp.exp)
    return sp.simplify(res)


def is_closed_form(expr) -> bool:
    return not (expr.has(sp.Integral, sp.Sum, sp.oo, -sp.oo, sp.zoo, sp.nan, sp.hyper, sp.meijerg,
                         sp.Piecewise))


def identify(value, tol_digits: int = 45):
    """Identify a real constant as a rational combination of 1, π, π², γ, γ², log 2, ζ(3)."""
    with mpmath.workdps(70):
        basis_vals = [mpmath.mpf(1), mpmath.pi, mpmath.pi ** 2, mpmath.euler, mpmath.euler ** 2,
                      mpmath.log(2), mpmath.zeta(3)]
        rel = mpmath.pslq([value] + basis_vals, maxcoeff=10 ** 6, maxsteps=10 ** 6)
        if rel is None or rel[0] == 0:
            return None
        syms = [sp.Integer(1)] + [sp.sympify(n) for n in _BASIS_NAMES]
        expr = -sp.Add(*[sp.Rational(c, rel[0]) * s for c, s in zip(rel[1:], syms)])
        residual = abs(mpmath.mpf(sp.N(expr, 70)) - value)
        if residual > mpmath.mpf(10) ** (-tol_digits) * max(1, abs(value)):
            return None
        return expr, float(residual)


def summation_closed(expr, x, lo, hi, points):
    """Σ expr over lo..hi, term by term; exp(x log λ)/Γ(x+1) is first rewritten λ^x/x!.

    A convergence condition SymPy attaches (Piecewise) is accepted when it holds at the sample
    points of the domain; the result is then checked against numeric summation."""
    total = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(exp_log_to_power(expr))):
        plain = sp.simplify(sp.powsimp(term, force=True))
        as_power, bases = exp_linear_to_power(plain, x)
        for candidate, back in (
            (plain, {}),
            (plain.rewrite(sp.factorial), {}),
            (as_power, bases),
            (term, {}),
        ):
            res = converged_branch(sp.summation(candidate, (x, lo, hi)), points)
            if res is not None and is_closed_form(res):
                total += res.xreplace(back)
                break
        else:
            return None
    return sp.simplify(total)


def exp_linear_to_power(expr, x):
    """exp(c·x + rest) -> u**x · exp(rest) with u = e^c a positive symbol: a Poisson regression's
    e^{x(b₀ + 2b₁)}/x! is an exponential series SymPy sums only in this form. Returns the rewritten
    expression and {u: e^c} to substitute back."""
    bases: dict = {}

    def split(e):
        arg = sp.expand(e.args[0])
        c = arg.coeff(x)
        if c == 0 or c.has(x) or sp.expand(arg - c * x).has(x):
            return e
        u = bases.setdefault(c, sp.Dummy("u", positive=True))
        return u ** x * sp.exp(arg - c * x)
    out = expr.replace(lambda e: isinstance(e, sp.exp) and e.has(x), split)
    return out, {u: sp.exp(c) for c, u in bases.items()}


def exp_log_to_power(expr):
    """exp(c·log b + rest) -> b**c · exp(rest): geometric-type sums become recognisable."""
    def split(e):
        powers, rest = sp.Integer(1), []
        for t in sp.Add.make_args(sp.expand(e.args[0])):
            c, logs = t.as_independent(sp.log, as_Add=False)
            if isinstance(logs, sp.log):
                powers *= sp.Pow(logs.args[0], c)
            else:
                rest.append(t)
        return powers * sp.exp(sp.Add(*rest))
    return expr.replace(lambda e: isinstance(e, sp.exp), split)


def converged_branch(res, points):
    """Replace each Piecewise by its branch whose condition holds at all sample points."""
    def pick(pw):
        for value, cond in pw.args:
            if cond is sp.true or all(bool(cond.xreplace(pt)) for pt in points):
                return value
        return sp.nan
    out = res.replace(lambda e: isinstance(e, sp.Piecewise), pick)
    return out if is_closed_form(out) else None


