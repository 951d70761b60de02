"""E_ξ[f(x, ξ)] by layered methods, falling through to an exact integral representation.

Continuous support: a reduction x = x(z, ξ) leaves the law of z with the shape parameters only;
each E[h(z)] is then, in order, (1) an identity: the law carried onto Gamma, Beta or Normal and the
transform differentiated; (2) for a parameter-free h, Gamma moments, bounded `integrate`, or a
60-digit quadrature identified over a small basis; (3) an Integral representation. Every closed
form from (1) or (2) is checked against quadrature at two parameter points before it is used.
Discrete support: finite sums exactly; infinite ones by bounded `summation` (checked), else a Sum.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from .. import cache
from ..errors import IntegrationError
from ..family import SCHEMA, Family
from ..functions import evaluable
from ..support import FinitePoints, Integers, Interval, Region
from ..timebound import TimeBoundExceeded, call_with_timeout
from . import representation
from .bounded import (
    CONSTANT_TIMEOUT,
    bounded_integrate,
    exp_log_to_power,
    gamma_moments,
    gamma_moments_after_log,
    identify,
    integrate_closed,
    is_closed_form,
    summation_closed,
)
from .identities import expect_standard
from .laws import standardize
from .quadrature import agrees, numeric_expectation, quad_law
from .reduction import find_reduction, identity_reduction, reduced_log_density, separate
from .transform import expect_normal, normal_transform

DEFAULT_TIMEOUT = 30.0
SERIES_TIMEOUT = 5.0  # per term: SymPy sums what it can quickly
CHECK_RTOL = 1e-12
SHAPE_TIMEOUT = 3.0  # per expectation with shape parameters: SymPy's integrate, what it does quickly
SHAPE_BUDGET = 8.0  # all of one law's: the rest become integral representations at once


@dataclass
class Expectations:
    """Values of E[f] plus notes on how each constant was obtained."""

    values: list
    notes: list = field(default_factory=list)
    method: str = ""
    conditions: list = field(default_factory=list)  # on the parameters, for the values to be finite


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
        return _continuous(family, exprs, timeout)
    if isinstance(support, Region):
        return _region(family, exprs, timeout)
    raise IntegrationError(f"{family.name}: no symbolic expectation over a {type(support).__name__} "
                           f"support; declare it as an ExponentialFamily (θ, T, A, log h)")


# -- continuous -----------------------------------------------------------------------------------
def _continuous(family: Family, exprs: list, timeout: float) -> Expectations:
    (x,) = family.variables
    red = family.reduction or find_reduction(family) or identity_reduction(family)
    logq = reduced_log_density(family, red)
    params = set(family.params)
    # a fixed shape declared as a symbol (ν "positive") is a shape too: checks and constants need a value
    fixed = {v for v in family.fixed.values() if isinstance(v, sp.Symbol)}
    shape = logq.free_symbols & (params | fixed)
    terms = [sp.Add.make_args(sp.expand(sp.expand_log(sp.sympify(f).xreplace({x: red.x_of_z}), force=True)))
             for f in exprs]
    try:
        split = [[separate(t, red.z, params - shape, family.name) for t in ts] for ts in terms]
    except IntegrationError:
        # E[x] of a Weibull law is E[λ z^(1/k)]: k, removed from the reduced law, is a shape of the function
        shape = shape | {p for ts in terms for t in ts for p in _entangled(t, red.z, params)}
        split = [[separate(t, red.z, params - shape, family.name) for t in ts] for ts in terms]
    law = _Law(family, red, logq, shape, timeout)
    shapes = sorted(
        {h for terms in split for _, h in terms}, key=lambda h: (sp.count_ops(h), sp.default_sort_key(h))
    )
    constants = {h: law.expect(h) for h in shapes}
    values = [sp.Add(*[c * constants[h] for c, h in terms]) for terms in split]
    method = f"reduction x = {red.x_of_z}" if red.x_of_z != x else "integration over the support"
    return Expectations(values, law.notes, method, law.conditions)


class _Law:
    """The reduced law q(z | shape) and the methods that compute E[h(z)] under it."""

    def __init__(self, family, red, logq, shape, timeout):
        self.family, self.z, self.support, self.logq = family, red.z, red.z_support, logq
        self.shape, self.timeout, self.notes, self.conditions = shape, timeout, [], []
        self._integrate_left = min(timeout, SHAPE_BUDGET)
        self._normal, self._cut_short = False, False
        law = f"{SCHEMA}|{sp.srepr(logq)}|{self.support}|{sp.srepr(self.z)}"
        self._law_key = "law_" + hashlib.sha256(law.encode()).hexdigest()[:24]
        self.points = [{p: v for p, v in family.sample_point(k).items() if p in shape} for k in range(2)]
        self.wide_points = _both_signs(self.points, [{p: v for p, v in family.sample_point(k).items()
                                                      if p in shape} for k in range(2, 6)])
        self._std = standardize(logq, self.z, self.support, self.points[0])
        if self._std is not None and self._std.steps:
            self.notes.append(f"expectations by identity: {self.z} ↦ {self._std.describe()}")

    def expect(self, h):
        """E[h(z)], remembered on disk by the law and h: the skewness stage (its own process) asks
        again for most of what the Fisher stage computed."""
        if h == 1:
            return sp.Integer(1)
        key, name = self._memo_key(h)
        if cache.enabled():
            stored = cache.DiskCache().get(key, name)
            if isinstance(stored, tuple) and len(stored) == 3 and isinstance(stored[0], sp.Basic):
                self.notes.extend(n for n in stored[1] if n not in self.notes)
                self._add_conditions(stored[2])
                return stored[0]
        before, self._cut_short, self._found = len(self.notes), False, []
        value = self._compute(h)
        self._add_conditions(self._found)
        if cache.enabled() and not self._cut_short:  # a representation for want of time is not remembered
            cache.DiskCache().put(key, name, (value, self.notes[before:], self._found))
        return value

    def _add_conditions(self, conditions) -> None:
        self.conditions.extend(c for c in conditions if c not in self.conditions)

    def _memo_key(self, h) -> tuple:
        return self._law_key, "expect_" + hashlib.sha256(sp.srepr(h).encode()).hexdigest()[:24]

    def _compute(self, h):
        value = self._by_identity(h)
        if value is None and not self.shape:
            value = self._constant(h)
        if value is None and self.shape:
            value = self._by_transform(h)
        if value is None and self.shape:
            value = self._integrated(h)
        if value is None:
            value = representation.integral(h, self.logq, self.z, self.support.lo, self.support.hi)
        return value

    def _by_identity(self, h):
        if self._std is None:
            return None
        conditions: list = []
        value = expect_standard(self._std, self._std.carry(h, self.z), conditions)
        if value is None or not all(self._agrees(value, h, pt) for pt in self.points):
            return None
        self._found = conditions
        return value

    def _by_transform(self, h):
        if self._normal is False:  # not yet looked for
            self._normal = normal_transform(self.logq, self.z, self.support, self.points)
            if self._normal is not None:
                self.notes.append(f"expectations under a normal transform: {self._normal.describe()}")
        if self._normal is None:
            return None
        value = expect_normal(self._normal, h, SHAPE_TIMEOUT)
        if value is None or not evaluable(value) or not all(self._agrees(value, h, pt) for pt in self.points):
            return None
        return value

    def _integrated(self, h):
        """SymPy's integrate with the shape parameters free, briefly (the law's budget shared by its
        expectations, simplest first), accepted only where it agrees with quadrature at the sample
        points: Birnbaum–Saunders' E[1/z] (Bessel K of half order), skew-normal's Gaussian moments."""
        seconds = min(SHAPE_TIMEOUT, self._integrate_left)
        integrand = h * sp.exp(self.logq)
        if _transcendental_denominator(integrand, self.z):
            return None
        if seconds < 0.5:
            self._cut_short = True
            return None
        start = time.monotonic()
        value = bounded_integrate(integrand, self.z, self.support, seconds)
        self._integrate_left -= time.monotonic() - start
        if (
            value is None
            or not evaluable(value)
            or not all(self._agrees(value, h, pt) for pt in self.wide_points)
        ):
            return None
        return value

    def _agrees(self, value, h, point) -> bool:
        """value equals 30-digit quadrature at the point (to 1e-12; 20 digits miss Kumaraswamy's
        endpoint singularity), and is real there without complex intermediates: SymPy's integrate may
        answer on another branch (sqrt((w − 1)⁻⁵) for 0 < w < 1), right in complex arithmetic and NaN
        in a real backend."""
        at = value.xreplace(point)
        if at.has(sp.zoo, sp.nan, sp.oo, -sp.oo):  # 0/0 at the point: compare its limit there
            at = _limit_at(value, point)
            if at is None:
                return False
        elif not sp.N(at, 30).is_extended_real:
            return False
        try:
            reference = quad_law(h.xreplace(point), self.logq.xreplace(point), self.z, self.support, dps=30)
        except (ValueError, ZeroDivisionError, TypeError, mpmath.libmp.NoConvergence):
            return False
        return agrees(at, reference, CHECK_RTOL)

    def _constant(self, h):
        """A parameter-free constant: Gamma moments, bounded integrate, or identified numerically."""
        z, logq, support = self.z, self.logq, self.support
        reference = quad_law(h, logq, z, support, dps=40)
        if abs(reference) < mpmath.mpf(10) ** -35 and abs(quad_law(h, logq, z, support, dps=60)) < \
                mpmath.mpf(10) ** -50:
            self.notes.append(f"E[{h}] = 0: from 60-digit quadrature")
            return sp.Integer(0)
        integrand = h * sp.exp(logq)
        exact = gamma_moments(integrand, z, support) or gamma_moments_after_log(integrand, z, support)
        if exact is None:
            exact = bounded_integrate(integrand, z, support, min(self.timeout, CONSTANT_TIMEOUT))
        if exact is not None and agrees(exact, reference, 1e-25):
            return exact
        found = identify(quad_law(h, logq, z, support, dps=60))
        if found is None:
            return None
        value, residual = found
        self.notes.append(f"E[{h}] = {value}: identified numerically from 60-digit quadrature "
                          f"(residual {residual:.1e})")
        return value


def _entangled(term, z, params: set) -> set:
    """The parameters that stay with z in a term however it is factored (exp(σz), z^(1/k))."""
    _, h = sp.powsimp(sp.expand_power_base(sp.expand_power_exp(term), force=True),
                      force=True).as_independent(z, as_Add=False)
    return h.free_symbols & params


def _limit_at(value, point: dict):
    """The value just beside a point where the closed form is 0/0 (a removable singularity, such as
    a = 0 in (log(1 + a) − log(1 − a))/(2a³) − 1/a²), by high-precision evaluation; None for a pole."""
    from ..errors import NumericalError
    from ..evaluate import value_at
    try:
        number = value_at(value, {p: v for p, v in point.items() if p in value.free_symbols})
    except NumericalError:
        return None
    return sp.Float(number, 17) if abs(number) < 1e30 else None


def _both_signs(points: list, more: list) -> list:
    """points, plus those of `more` that give a shape a sign it has at none of them: SymPy's own
    answers may hold on one side of a branch only (skew-normal: α < 0 as well as α > 0)."""
    out = list(points)
    for pt in more:
        if any(all(sp.sign(q[p]) != sp.sign(v) for q in out) for p, v in pt.items()):
            out.append(pt)
    return out


def _transcendental_denominator(integrand, z) -> bool:
    """1/(1 + erf(αz))² or 1/(w e^{2z} + 3 − 3w)²: no antiderivative SymPy finds, or one on a
    complex branch (a mixture's); not worth the time bound. A power of e^{z} alone stays."""
    den = sp.fraction(sp.cancel(sp.together(integrand)))[1]
    for factor in sp.Mul.make_args(den):
        base = factor.as_base_exp()[0]
        if base.is_Add and any(f.has(z) for f in base.atoms(sp.Function)):
            return True
    return False


# -- several variables ----------------------------------------------------------------------------
def _region(family: Family, exprs: list, timeout: float) -> Expectations:
    """Iterated SymPy integration/summation, innermost first, under the time bound, each result
    checked against nested quadrature at a sample point; no integral representation yet."""
    from .region import region_expectation
    limits = [(v, r.lo, r.hi) for v, r in family.support.ranges]
    point = family.sample_point()
    values = []
    for f in exprs:
        try:
            value = call_with_timeout(_iterated, (sp.expand(f) * family.density, limits,
                                                  family.support.discrete), timeout)
        except (TimeBoundExceeded, RuntimeError) as exc:
            raise IntegrationError(
                f"{family.name}: E[{f}] over {family.support.describe()} did not finish within {timeout:g} s "
                f"({exc}); a multi-variable family derives without integrals when it is an exponential "
                "family (declare [exponential_family] or write its log-density as "
                "θ(ξ)·T(x) − A(ξ) + log h(x))"
            ) from None
        if value is None or not is_closed_form(value) or not agrees(
                value.xreplace(point), region_expectation(family, f, point), 1e-9):
            raise IntegrationError(
                f"{family.name}: no closed form for E[{f}] over {family.support.describe()}; "
                f"declare it as an exponential family if it is one"
            )
        values.append(sp.simplify(value))
    return Expectations(values, [], "iterated integration over the region")


def _iterated(integrand, limits, discrete):
    out = integrand
    for var, lo, hi in limits:
        out = sp.summation(out, (var, lo, hi)) if discrete else sp.integrate(out, (var, lo, hi))
        if out.has(sp.Integral, sp.Sum):
            return None
    return out


# -- discrete -------------------------------------------------------------------------------------
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
    mass = exp_log_to_power(sp.exp(logp))
    if mass.is_rational_function():
        return sp.cancel(mass)
    return sp.gammasimp(sp.expand_func(mass))


def _series(family: Family, exprs: list, timeout: float) -> Expectations:
    (x,) = family.variables
    lo, hi = family.support.lo, family.support.hi
    if lo.is_Integer and hi.is_Integer and hi - lo <= 1000:
        masses = [_mass_at(family, {x: v}) for v in range(lo, hi + 1)]
        values = [sp.Add(*[sp.sympify(f).xreplace({x: v}) * m for v, m in zip(range(lo, hi + 1), masses)])
                  for f in exprs]
        return Expectations([sp.gammasimp(v) for v in values], [], "finite sum over the support")
    points = [family.sample_point(k) for k in range(3)]
    values, notes = [], []
    bound = min(timeout, SERIES_TIMEOUT)
    summable_law = not _special_in(family.log_density, x, allow_factorial=True)
    for f in exprs:
        closed, rest = sp.Integer(0), sp.Integer(0)
        for term in sp.Add.make_args(sp.expand(f)):
            if not term.has(x):  # Σ c p = c (the mass is checked at declaration): no sum, no check
                closed += term
                continue
            value = _sum_term(family, term, x, lo, hi, points, bound) if summable_law else None
            if value is None:
                rest += term
            else:
                closed += value
        if rest != 0:
            notes.append(f"E[{rest}] kept as a series (no closed form within {bound:g} s)")
            # nothing summed: keep f as declared; its expansion cancels catastrophically term by term
            # (the zero-inflated Poisson's ¼ − ½ sign(x) + ¼ sign(x)² + tiny is 0 in floating point)
            kept = f if closed == 0 else rest
            closed += representation.series(kept, family.log_density, x, lo, hi)
        values.append(closed)
    return Expectations(values, notes, "summation over the support")


def _sum_term(family, term, x, lo, hi, points, bound):
    """Σ term·p in closed form, checked at a sample point; None when SymPy gives none quickly."""
    if _special_in(term, x):
        return None
    try:
        res = call_with_timeout(
            summation_closed, (sp.expand(term * family.density), x, lo, hi, points), bound
        )
    except (TimeBoundExceeded, RuntimeError):
        return None
    if res is None or not is_closed_form(res):
        return None
    point = family.sample_point()
    try:
        reference = numeric_expectation(family, term, point)
    except (ZeroDivisionError, ValueError, mpmath.libmp.NoConvergence):  # a term that cancels numerically
        return None  # (the zero-inflated Poisson's sign(x) pieces): unchecked, so not used
    if not agrees(res.xreplace(point), reference, CHECK_RTOL):
        return None
    return res


def _special_in(expr, x, allow_factorial=False) -> bool:
    """Polygamma, gamma, sign, ... of the variable: sums SymPy does not do in closed form."""
    kinds = (sp.polygamma, sp.loggamma, sp.sign, sp.Abs, sp.erf, sp.besseli, sp.besselj, sp.beta)
    if not allow_factorial:
        kinds += (sp.gamma, sp.factorial, sp.binomial)
    return any(node.args[0].has(x) for node in sp.sympify(expr).atoms(*kinds) if node.args)


# -- normalization --------------------------------------------------------------------------------
def _finite_mass(family: Family, point: dict) -> bool:
    try:
        mass = numeric_expectation(family, 1, point, dps=15)
    except (ValueError, ZeroDivisionError, TypeError, ArithmeticError, mpmath.libmp.NoConvergence):
        return False
    return bool(mpmath.isfinite(mass)) and abs(mass) < 1e100


def total_mass(family: Family, timeout: float = DEFAULT_TIMEOUT) -> sp.Expr:
    """∫ p dx (or Σ p) in closed form, for a density that may not be normalized."""
    (x,) = family.variables
    lo, hi = family.support.lo, family.support.hi
    what = "sum" if isinstance(family.support, Integers) else "integrate"
    if isinstance(family.support, Integers):
        fn, args = summation_closed, (family.density, x, lo, hi, [family.sample_point(k) for k in range(3)])
    elif isinstance(family.support, Interval):
        fn, args = integrate_closed, (family.density, x, lo, hi)
    else:
        raise IntegrationError(f"{family.name}: cannot normalize over a {type(family.support).__name__}")
    try:
        res = call_with_timeout(fn, args, timeout)
    except (TimeBoundExceeded, RuntimeError) as exc:
        raise IntegrationError(f"{family.name}: the {what} of the density over the support did not "
                               f"finish ({exc}); declare the normalized density") from None
    point = family.sample_point()
    if res is None or res.has(sp.oo, sp.zoo, sp.nan):
        if not _finite_mass(family, point):
            total = "sum" if what == "sum" else "integral"
            raise IntegrationError(f"{family.name}: the density has no finite {total} over the support "
                                   f"{family.support.describe()} at {point}: it cannot be normalized "
                                   f"(narrow the support or the parameters' domain)")
        raise IntegrationError(f"{family.name}: SymPy cannot {what} the density in closed form; "
                               f"declare the normalized density")
    if not agrees(res.xreplace(point), numeric_expectation(family, 1, point), CHECK_RTOL):
        raise IntegrationError(f"{family.name}: SymPy's normalizer disagrees with quadrature at {point}")
    return res
