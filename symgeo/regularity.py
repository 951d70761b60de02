"""Regularity checks run before any derivation: fixed support, a normalized density."""
from __future__ import annotations

import mpmath
import sympy as sp

from .errors import NonRegularFamilyError, UnnormalizedDensityError
from .expectation import DEFAULT_TIMEOUT, numeric_expectation, total_mass
from .family import Family
from .support import FinitePoints, Integers, Interval, Region

NORMALIZATION_TOL = 1e-9
PROBE_TOL = 1e-5  # away from the sample points quadrature is trusted less (a heavy tail shifted far)


def check_support(family: Family) -> None:
    """Refuse families whose support depends on a parameter (uniform(0, θ), Pareto with free scale)."""
    moving = family.support.free_symbols & set(family.params)
    if moving:
        names = ", ".join(sorted(map(str, moving)))
        raise NonRegularFamilyError(
            f"{family.name} is not a regular family: its support {family.support.describe()} depends "
            f"on {names}, so the score has no zero mean and the Fisher metric is not defined "
            f"(fix {names} as a known constant to study the remaining parameters)")


def normalization_defect(family: Family, point: dict | int = 0) -> float:
    """|∫ p − 1| at a parameter point (or the k-th sample point): mpmath quadrature, summation, or an
    exact finite sum."""
    point = family.sample_point(point) if isinstance(point, int) else point
    if isinstance(family.support, FinitePoints):
        total = sum(family.density.xreplace(dict(zip(family.variables, pt))).xreplace(point)
                    for pt in family.support.points)
        return abs(float(sp.N(total - 1, 30)))
    if isinstance(family.support, (Interval, Integers)):
        return float(abs(numeric_expectation(family, 1, point, dps=20) - 1))
    if isinstance(family.support, Region):
        from .expectation.region import region_expectation
        return abs(region_expectation(family, 1, point) - 1)
    return 0.0  # vector supports: exponential families only; their A is tested against quadrature


REGION_POINTS = 6  # a declared A(θ) of a multi-variable family is checked across the domain


def check_normalized(family: Family) -> None:
    """∫ p = 1 at the sample points (an error there refuses the family) and at probe points across
    the parameter domain (where quadrature itself fails the point is skipped, not held against it)."""
    count = REGION_POINTS if isinstance(family.support, Region) else 2
    points = []
    for k in range(count):
        if family.sample_point(k) not in points:
            points.append(family.sample_point(k))
    for point in points:
        _check_mass(family, point, strict=True)
    if isinstance(family.support, (Interval, Integers, FinitePoints)):
        for point in probe_points(family):
            if point not in points:
                _check_mass(family, point, strict=False)


def _check_mass(family: Family, point: dict, strict: bool) -> None:
    try:
        defect = normalization_defect(family, point)
    except (ValueError, ZeroDivisionError, TypeError, ArithmeticError, mpmath.libmp.NoConvergence) as exc:
        if not strict:
            return
        raise UnnormalizedDensityError(f"{family.name}: the density could not be integrated "
                                       f"numerically at {point} ({exc})") from None
    if not defect < (NORMALIZATION_TOL if strict else PROBE_TOL):
        raise UnnormalizedDensityError(
            f"{family.name}: the density does not integrate to 1 (off by {defect:.3g} at "
            f"{point}); fix the declaration or ask for normalize=True")


# Probe values of one parameter, the others at the first sample point: irregular numbers (a density
# normalised only at round sample points is still caught), moderate ones (a rate e^(2b) at b = 6 is
# beyond what the summation is trusted with), away from the domain's edges.
_PROBE_FRACTIONS = (sp.Rational(61, 1000), sp.Rational(877, 1000))
_PROBE_OFFSETS = (sp.Rational(371, 1000), sp.Rational(2113, 1000))
_PROBE_VALUES = (sp.Rational(-1371, 1000), sp.Rational(371, 1000), sp.Rational(2113, 1000))


def probe_points(family: Family) -> list[dict]:
    """Points of the parameter domain beside the sample points (one parameter moved at a time)."""
    base = family.sample_point(0)
    out = []
    for p in family.params:
        for value in _probe_values(family.domains[p]):
            point = {**base, p: value}
            if family.satisfies(point) and point not in out:
                out.append(point)
    return out


def _probe_values(domain: sp.Interval) -> list:
    lo, hi = domain.inf, domain.sup
    if lo.is_finite and hi.is_finite:
        return [lo + (hi - lo) * f for f in _PROBE_FRACTIONS]
    if lo.is_finite:
        return [lo + v for v in _PROBE_OFFSETS]
    if hi.is_finite:
        return [hi - v for v in _PROBE_OFFSETS]
    return list(_PROBE_VALUES)


def check_nonnegative(family: Family) -> None:
    """The density is ≥ 0 on the support at the sample and probe points: a log-density that is not
    real there (log of a negative number) refuses the family, naming the point."""
    support = family.support
    if len(family.variables) != 1 or not isinstance(support, (Interval, Integers)):
        return
    (x,) = family.variables
    xs = support_points(support)
    for point in [family.sample_point(0), family.sample_point(1)] + probe_points(family):
        logp = family.log_density.xreplace(point)
        for value in xs:
            try:
                with mpmath.workdps(20):
                    number = complex(sp.N(logp.xreplace({x: value}), 20))
            except (TypeError, ValueError, ZeroDivisionError, ArithmeticError):
                continue
            if abs(number.imag) > 1e-9:
                where = ", ".join(f"{k} = {v}" for k, v in {**point, x: value}.items())
                raise UnnormalizedDensityError(
                    f"{family.name}: the density is negative at {where}; a density must be ≥ 0 on the "
                    f"support for every parameter value in the declared domain (narrow the domain)")


def support_points(support) -> list:
    """A few points of a one-variable support, spread over it (the first 31 integers of a count)."""
    lo, hi = support.lo, support.hi
    if isinstance(support, Integers):
        top = hi if hi.is_finite and hi.is_number else lo + 30
        return [lo + k for k in range(min(int(top - lo), 30) + 1)] if (top - lo).is_number else [lo]
    if lo.is_finite and hi.is_finite:
        return [lo + (hi - lo) * sp.Rational(k, 1000) for k in (1, 50, 250, 500, 750, 950, 999)]
    if lo.is_finite:
        return [lo + sp.Rational(v, 100) for v in (1, 50, 100, 300, 1000)]
    if hi.is_finite:
        return [hi - sp.Rational(v, 100) for v in (1, 50, 100, 300, 1000)]
    return [sp.Rational(v, 10) for v in (-50, -10, -1, 0, 1, 10, 50)]


def normalized(family: Family, timeout: float = DEFAULT_TIMEOUT) -> Family:
    """The family with its density divided by the closed-form normalizer Z(ξ) = ∫ p dx."""
    z = total_mass(family, timeout)
    return Family(family.name, variables=family.variables, support=family.support, params=family.params,
                  log_density=family.log_density - sp.log(sp.simplify(z)), domains=family.domains,
                  fixed=family.fixed, reduction=family.reduction, chart=family.chart,
                  description=family.description)


def check_regular(family: Family) -> None:
    check_support(family)
    check_nonnegative(family)
    check_normalized(family)
