"""Expectations E_ξ[f(x, ξ)] in closed form, by layered methods (see DESIGN: hard expectations).

1. Reduce: under a standardizing substitution x = x(z, ξ) (location–scale, scale, power) the law
   of z is parameter-free, so every expectation is a sum of (function of ξ) × (constant integral).
2. Constants: Gamma-moment identities E[z^a log^b z] for z ~ Exp(1); else `integrate` under a
   time bound, accepted only if free of Integral/oo/nan and equal to 40-digit quadrature;
   else 60-digit quadrature identified over a small basis (π, π², γ, γ², log 2, ζ(3)) and
   recorded as identified numerically.
3. Without a reduction: `integrate` / `summation` under a time bound, checked numerically at a
   sample point. Never is an unevaluated Integral returned as a result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import mpmath
import sympy as sp

from .errors import IntegrationError
from .family import Family, Reduction
from .support import FinitePoints, Integers, Interval
from .timebound import TimeBoundExceeded, call_with_timeout

DEFAULT_TIMEOUT = 30.0
CONSTANT_TIMEOUT = 5.0  # a parameter-free integral SymPy can do, it does fast
ADVICE = ("declare the family as an ExponentialFamily (θ, T, A, log h), give a standardizing "
          "reduction (x = μ + σ z), or raise the time bound (--timeout)")
_BASIS_NAMES = ("pi", "pi**2", "EulerGamma", "EulerGamma**2", "log(2)", "zeta(3)")


@dataclass
class Expectations:
    """Values of E[f] plus notes on how each constant was obtained."""

    values: list
    notes: list = field(default_factory=list)
    method: str = ""


def expectations(family: Family, exprs: list, timeout: float = DEFAULT_TIMEOUT) -> Expectations:
    """E[f] for each f in exprs, under the family's own law; parts free of x come out as they are."""
    variables = set(family.variables)
    parts = [sp.sympify(f).as_independent(*variables, as_Add=True) for f in exprs]
    todo = [v for _, v in parts if v != 0]
    result = _expect(family, todo, timeout) if todo else Expectations([], [], "constants")
    values = iter(result.values)
    result.values = [c + (next(values) if v != 0 else 0) for c, v in parts]
    return result


def _expect(family: Family, exprs: list, timeout: float) -> Expectations:
    support = family.support
    if isinstance(support, FinitePoints):
        return _finite_sum(family, exprs)
    if isinstance(support, Integers):
        return _series(family, exprs, timeout)
    if isinstance(support, Interval):
        reduction = family.reduction or find_reduction(family)
        if reduction is not None:
            return _reduced(family, reduction, exprs, timeout)
        return _integral(family, exprs, timeout)
    raise IntegrationError(f"{family.name}: no symbolic expectation over a {type(support).__name__} "
                           f"support; {ADVICE}")


# -- reductions -----------------------------------------------------------------------------------
def reduced_log_density(family: Family, red: Reduction) -> sp.Expr | None:
    """log q(z) for the law of z under x = x(z, ξ), or None if it still depends on ξ."""
    (x,) = family.variables
    jac = sp.diff(red.x_of_z, red.z)
    logq = family.log_density.xreplace({x: red.x_of_z}) + sp.log(sp.Abs(jac))
    logq = sp.expand_log(sp.simplify(sp.expand_log(logq, force=True)), force=True)
    logq = sp.simplify(logq)
    if logq.free_symbols & set(family.params):
        return None
    return logq


def find_reduction(family: Family) -> Reduction | None:
    """Detect a location–scale, location or scale structure of a scalar continuous family."""
    z = sp.Symbol("z", real=True)
    reals = [p for p in family.params if family.domains[p] == sp.Interval(-sp.oo, sp.oo)]
    positives = [p for p in family.params if family.domains[p] == sp.Interval.open(0, sp.oo)]
    lo, hi = family.support.lo, family.support.hi
    candidates = []
    if lo == -sp.oo and hi == sp.oo:
        candidates += [(m, s, m + s * z) for m in reals for s in positives]
        candidates += [(m, None, m + z) for m in reals]
    if lo == 0 and hi == sp.oo:
        candidates += [(None, s, s * z) for s in positives]
    for _, _, x_of_z in candidates:
        red = Reduction(z, x_of_z, Interval(lo, hi))
        if reduced_log_density(family, red) is not None:
            return red
    return None


def _reduced(family: Family, red: Reduction, exprs: list, timeout: float) -> Expectations:
    (x,) = family.variables
    logq = reduced_log_density(family, red)
    if logq is None:
        raise IntegrationError(f"{family.name}: the declared reduction x = {red.x_of_z} leaves the "
                               f"law of {red.z} dependent on the parameters")
    split = []
    for f in exprs:
        fz = sp.expand(sp.expand_log(sp.sympify(f).xreplace({x: red.x_of_z}), force=True))
        split.append([_separate(t, red.z, family) for t in sp.Add.make_args(fz)])
    shapes = sorted({h for terms in split for _, h in terms}, key=sp.default_sort_key)
    notes: list = []
    constants = {h: constant_integral(h, logq, red.z, red.z_support, timeout, notes) for h in shapes}
    values = [sp.Add(*[c * constants[h] for c, h in terms]) for terms in split]
    return Expectations(values, notes, f"reduction x = {red.x_of_z}")


def _separate(term, z, family: Family):
    """term -> (c(ξ), h(z)); factoring first turns 1/(γ² + γ²z²) into γ⁻²·1/(1 + z²)."""
    coeff, h = term.as_independent(z, as_Add=False)
    if h.free_symbols & set(family.params):
        coeff, h = sp.factor(term).as_independent(z, as_Add=False)
        c2, h = sp.powsimp(sp.expand_power_base(h, force=True), force=True).as_independent(z, as_Add=False)
        coeff *= c2
    if h.free_symbols & set(family.params):
        raise IntegrationError(f"{family.name}: cannot separate {term} into a parameter factor and a "
                               f"function of {z}; {ADVICE}")
    return coeff, h


# -- parameter-free constants ---------------------------------------------------------------------
def constant_integral(h, logq, z, support: Interval, timeout: float, notes: list) -> sp.Expr:
    """∫ h(z) q(z) dz over the support, parameter-free; exact or identified, never unevaluated."""
    if h == 1:
        return sp.Integer(1)  # q is a normalized density
    integrand = h * sp.exp(logq)
    reference = _quad(h, logq, z, support, dps=40)
    if abs(reference) < mpmath.mpf(10) ** -35:
        if abs(_quad(h, logq, z, support, dps=60)) < mpmath.mpf(10) ** -50:
            notes.append(f"E[{h}] = 0: from 60-digit quadrature")
            return sp.Integer(0)
    exact = _gamma_moments(integrand, z, support) or _gamma_moments_after_log(integrand, z, support)
    if exact is None:
        exact = _bounded_integrate(integrand, z, support, min(timeout, CONSTANT_TIMEOUT))
    if exact is not None and _agrees(exact, reference, 1e-25):
        return exact
    found = identify(_quad(h, logq, z, support, dps=60))
    if found is None:
        raise IntegrationError(f"the constant ∫ {h}·q({z}) d{z} = {mpmath.nstr(reference, 20)} has no "
                               f"closed form SymPy finds; {ADVICE}")
    value, residual = found
    notes.append(f"E[{h}] = {value}: identified numerically from 60-digit quadrature "
                 f"(residual {residual:.1e})")
    return value


def _gamma_moments(integrand, z, support: Interval):
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


def _gamma_moments_after_log(integrand, z, support: Interval):
    """Over the real line, z = ∓log u maps e^{∓z}-type laws (Gumbel) onto Gamma moments in u."""
    if not (support.lo == -sp.oo and support.hi == sp.oo) or not integrand.has(sp.exp):
        return None
    u = sp.Dummy("u", positive=True)
    for sign in (-1, 1):
        moved = sp.powsimp(sp.expand(integrand.xreplace({z: sign * sp.log(u)}) / u), force=True)
        moved = sp.expand(moved.replace(lambda e: isinstance(e, sp.exp), lambda e: sp.exp(sp.expand(e.args[0]))))
        value = _gamma_moments(moved, u, Interval(0, sp.oo))
        if value is not None:
            return value
    return None


def _bounded_integrate(integrand, z, support: Interval, timeout: float):
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
        else:
            part, var = integrand, z
        try:
            res = call_with_timeout(_integrate, (part, var, lo, hi), timeout)
        except (TimeBoundExceeded, RuntimeError):
            return None
        if res is None:
            return None
        total += res
    return total


def _integrate(expr, var, lo, hi):
    expr = sp.simplify(sp.powsimp(_exp_log_to_power(expr), force=True))
    res = sp.integrate(expr, (var, lo, hi), conds="none")
    res = res.replace(lambda e: isinstance(e, sp.loggamma), lambda e: sp.log(sp.gamma(e.args[0])))
    if res.has(sp.hyper, sp.meijerg):
        res = sp.hyperexpand(res)
    if not _is_closed_form(res):
        return None
    return sp.simplify(res)


def _is_closed_form(expr) -> bool:
    return not (expr.has(sp.Integral, sp.Sum, sp.oo, -sp.oo, sp.zoo, sp.nan, sp.hyper, sp.meijerg,
                         sp.Piecewise))


NEGLIGIBLE_LOG = -5000  # e^-5000: far below any working precision


def _quad(h, logq, z, support: Interval, dps: int):
    """∫ h q dz by tanh-sinh; log q is evaluated first, so far-out nodes (|z| ~ 1e100) where
    q underflows never build numbers like exp(-exp(1e100))."""
    with mpmath.workdps(dps):
        fh = sp.lambdify(z, h, modules="mpmath")
        fl = sp.lambdify(z, logq, modules="mpmath")

        def fn(t):
            log_q = fl(t)
            return 0 if log_q < NEGLIGIBLE_LOG else fh(t) * mpmath.exp(log_q)
        lo = mpmath.mpf(sp.N(support.lo, dps)) if support.lo.is_finite else -mpmath.inf
        hi = mpmath.mpf(sp.N(support.hi, dps)) if support.hi.is_finite else mpmath.inf
        points = [lo, hi] if (lo != -mpmath.inf or hi != mpmath.inf) else [-mpmath.inf, 0, mpmath.inf]
        if lo == 0 and hi == mpmath.inf:
            points = [0, 1, mpmath.inf]
        return mpmath.quad(fn, points, maxdegree=10)


def _agrees(expr, reference, rtol: float) -> bool:
    try:
        value = sp.N(expr, 40)
        return abs(complex(value) - complex(reference)) <= rtol * max(1.0, abs(complex(reference)))
    except (TypeError, ValueError):
        return False


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


# -- other supports -------------------------------------------------------------------------------
def _finite_sum(family: Family, exprs: list) -> Expectations:
    masses = [_mass_at(family, dict(zip(family.variables, pt))) for pt in family.support.points]
    values = []
    for f in exprs:
        total = sp.Add(*[sp.sympify(f).xreplace(dict(zip(family.variables, pt))) * m
                         for pt, m in zip(family.support.points, masses)])
        values.append(sp.cancel(total) if total.is_rational_function() else total)
    return Expectations(values, [], "finite sum over the support")


def _mass_at(family: Family, sub: dict) -> sp.Expr:
    """p(x) at one support point, with exp(log a − log b) collapsed to a/b."""
    logp = sp.expand_log(family.log_density.xreplace(sub), force=True)
    mass = _exp_log_to_power(sp.exp(logp))
    return sp.cancel(mass) if mass.is_rational_function() else sp.simplify(mass)


def _series(family: Family, exprs: list, timeout: float) -> Expectations:
    (x,) = family.variables
    lo, hi = family.support.lo, family.support.hi
    if lo.is_Integer and hi.is_Integer and hi - lo <= 1000:
        masses = [_mass_at(family, {x: v}) for v in range(lo, hi + 1)]
        values = [sp.simplify(sp.Add(*[sp.sympify(f).xreplace({x: v}) * m
                                       for v, m in zip(range(lo, hi + 1), masses)])) for f in exprs]
        return Expectations(values, [], "finite sum over the support")
    points = [family.sample_point(k) for k in range(3)]
    values = [_bounded(family, _summation, (sp.expand(f * family.density), x, lo, hi, points), f, "sum", timeout)
              for f in exprs]
    _check_at_point(family, exprs, values)
    return Expectations(values, [], "summation over the support")


def _bounded(family: Family, fn, args: tuple, f, what: str, timeout: float):
    """A SymPy sum or integral under the time bound; failure is an IntegrationError with advice."""
    try:
        res = call_with_timeout(fn, args, timeout)
    except (TimeBoundExceeded, RuntimeError) as exc:
        raise IntegrationError(f"{family.name}: the {what} of {f}·p over the support did not finish "
                               f"({exc}); {ADVICE}") from None
    if res is None:
        raise IntegrationError(f"{family.name}: SymPy cannot {what} {f}·p in closed form; {ADVICE}")
    return res


def _summation(expr, x, lo, hi, points):
    """Σ expr over lo..hi, term by term; exp(x log λ)/Γ(x+1) is first rewritten λ^x/x!.

    A convergence condition SymPy attaches (Piecewise) is accepted when it holds at the sample
    points of the domain; the result is then checked against numeric summation."""
    total = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(_exp_log_to_power(expr))):
        plain = sp.simplify(sp.powsimp(term, force=True))
        for candidate in (plain, plain.rewrite(sp.factorial), term):
            res = _converged_branch(sp.summation(candidate, (x, lo, hi)), points)
            if res is not None and _is_closed_form(res):
                total += res
                break
        else:
            return None
    return sp.simplify(total)


def _exp_log_to_power(expr):
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


def _converged_branch(res, points):
    """Replace each Piecewise by its branch whose condition holds at all sample points."""
    def pick(pw):
        for value, cond in pw.args:
            if cond is sp.true or all(bool(cond.xreplace(pt)) for pt in points):
                return value
        return sp.nan
    out = res.replace(lambda e: isinstance(e, sp.Piecewise), pick)
    return out if _is_closed_form(out) else None


def _integral(family: Family, exprs: list, timeout: float) -> Expectations:
    (x,) = family.variables
    lo, hi = family.support.lo, family.support.hi
    values = [_bounded(family, _integrate, (f * family.density, x, lo, hi), f, "integrate", timeout)
              for f in exprs]
    _check_at_point(family, exprs, values)
    return Expectations(values, [], "integration over the support")


def total_mass(family: Family, timeout: float = DEFAULT_TIMEOUT) -> sp.Expr:
    """∫ p dx (or Σ p) in closed form, for a density that may not be normalized."""
    if isinstance(family.support, Integers):
        return _series(family, [1], timeout).values[0]
    if isinstance(family.support, Interval):
        return _integral(family, [1], timeout).values[0]
    raise IntegrationError(f"{family.name}: cannot normalize over a {type(family.support).__name__}")


def numeric_expectation(family: Family, f, point: dict, dps: int = 30):
    """E[f] at a numeric parameter point by mpmath quadrature or summation (an independent check)."""
    (x,) = family.variables
    f_at = sp.sympify(f).xreplace(point)
    log_p = family.log_density.xreplace(point)
    lo, hi = (sp.sympify(family.support.lo).xreplace(point), sp.sympify(family.support.hi).xreplace(point))
    with mpmath.workdps(dps):
        ff = sp.lambdify(x, f_at, modules="mpmath")
        fl = sp.lambdify(x, log_p, modules="mpmath")

        def fn(t):
            log_q = fl(t)
            return 0 if mpmath.re(log_q) < NEGLIGIBLE_LOG else ff(t) * mpmath.exp(log_q)
        if isinstance(family.support, Integers):
            return mpmath.nsum(fn, [int(lo), mpmath.inf if hi == sp.oo else int(hi)])
        a = -mpmath.inf if lo == -sp.oo else mpmath.mpf(sp.N(lo, dps))
        b = mpmath.inf if hi == sp.oo else mpmath.mpf(sp.N(hi, dps))
        inner = sorted({mpmath.mpf(0) if a == -mpmath.inf and b == mpmath.inf else a}
                       | _kinks(f_at * log_p, x, dps))
        pts = [a] + [c for c in inner if a < c < b] + [b]
        return mpmath.quad(fn, pts)


def _kinks(expr, x, dps) -> set:
    """Points where |.| or sign(.) of a linear argument switch: quadrature breakpoints."""
    out = set()
    for node in expr.atoms(sp.Abs, sp.sign):
        arg = node.args[0]
        if arg.is_polynomial(x) and sp.degree(arg, x) == 1:
            out.add(mpmath.mpf(sp.N(sp.solve(arg, x)[0], dps)))
    return out


def _check_at_point(family: Family, exprs: list, values: list) -> None:
    point = family.sample_point()
    for f, v in zip(exprs, values):
        ref = numeric_expectation(family, f, point)
        if not _agrees(v.xreplace(point), ref, 1e-12):
            raise IntegrationError(f"{family.name}: SymPy's closed form for E[{f}] disagrees with "
                                   f"quadrature at {point}; refusing it. {ADVICE}")
