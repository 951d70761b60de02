"""Regularity checks run before any derivation: fixed support, a normalized density."""
from __future__ import annotations

import mpmath
import sympy as sp

from .errors import NonRegularFamilyError, UnnormalizedDensityError
from .expectation import DEFAULT_TIMEOUT, numeric_expectation, total_mass
from .family import Family
from .support import FinitePoints, Integers, Interval, Region

NORMALIZATION_TOL = 1e-9


def check_support(family: Family) -> None:
    """Refuse families whose support depends on a parameter (uniform(0, θ), Pareto with free scale)."""
    moving = family.support.free_symbols & set(family.params)
    if moving:
        names = ", ".join(sorted(map(str, moving)))
        raise NonRegularFamilyError(
            f"{family.name} is not a regular family: its support {family.support.describe()} depends "
            f"on {names}, so the score has no zero mean and the Fisher metric is not defined "
            f"(fix {names} as a known constant to study the remaining parameters)")


def normalization_defect(family: Family, k: int = 0) -> float:
    """|∫ p − 1| at the k-th sample point (mpmath quadrature, summation, or exact finite sum)."""
    point = family.sample_point(k)
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
    count = REGION_POINTS if isinstance(family.support, Region) else 2
    points = []
    for k in range(count):
        if family.sample_point(k) not in points:
            points.append(family.sample_point(k))
    for k in range(len(points)):
        try:
            defect = normalization_defect(family, k)
        except (ValueError, ZeroDivisionError, TypeError, mpmath.libmp.NoConvergence) as exc:
            raise UnnormalizedDensityError(f"{family.name}: the density could not be integrated "
                                           f"numerically at {family.sample_point(k)} ({exc})") from None
        if not defect < NORMALIZATION_TOL:
            raise UnnormalizedDensityError(
                f"{family.name}: the density does not integrate to 1 (off by {defect:.3g} at "
                f"{family.sample_point(k)}); fix the declaration or ask for normalize=True")


def normalized(family: Family, timeout: float = DEFAULT_TIMEOUT) -> Family:
    """The family with its density divided by the closed-form normalizer Z(ξ) = ∫ p dx."""
    z = total_mass(family, timeout)
    return Family(family.name, family.variables, family.support, family.params,
                  log_density=family.log_density - sp.log(sp.simplify(z)), domains=family.domains,
                  fixed=family.fixed, reduction=family.reduction, chart=family.chart,
                  description=family.description)


def check_regular(family: Family) -> None:
    check_support(family)
    check_normalized(family)
