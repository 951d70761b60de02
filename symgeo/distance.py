"""Closed-form Fisher–Rao distances, derived from the metric where its shape allows, else from the literature.

Three derived cases, and forms from the literature declared with the family (`closed_forms["distance"]`,
in the catalog for these two):
- one parameter: d = |F(ξ₂) − F(ξ₁)| with F' = √g, when SymPy finds the antiderivative (time-bounded);
- two parameters with g = diag(a/σ², b/σ²) (a, b constants; every symmetric location–scale family): the
  hyperbolic half-plane scaled by √b, d = 2√b asinh(√(((u₁−u₂)² + (σ₁−σ₂)²)/(4σ₁σ₂))), u = μ√(a/b);
- categorical (and its Bernoulli/binomial cases) on the sphere of radius 2: d = 4 asin(‖√p − √q‖/2)
  (Rao 1945), written with asin so that near points keep their digits;
- the centred bivariate normal (covariance only): d = √(½ Σ log² λᵢ), λ the eigenvalues of Σ₁⁻¹Σ₂
  (Atkinson & Mitchell 1981).

>>> from symgeo import catalog, Geometry
>>> form = closed_form_distance(Geometry(catalog.get("poisson"), cache=False))
>>> form.expr
2*Abs(sqrt(lam_1) - sqrt(lam_2))
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import catalog
from .divergence import pair_symbols
from .family import pair_of
from .geometry import Geometry
from .timebound import TimeBoundExceeded, call_with_timeout

ANTIDERIVATIVE_TIMEOUT = 10.0


@dataclass(frozen=True)
class ClosedForm:
    """d(ξ₁, ξ₂) as an expression of the two points' symbols (`first`, `second`, in parameter order)."""

    expr: sp.Expr
    first: tuple
    second: tuple
    source: str


def pair(geo: Geometry) -> tuple[tuple, tuple]:
    """The two points' symbols (ξ_1, ξ_2) in parameter order, as divergence.pair_symbols names them."""
    first, second = pair_symbols(geo)
    return tuple(first.values()), tuple(second.values())


def closed_form_distance(geo: Geometry) -> ClosedForm | None:
    """The Fisher–Rao distance in closed form, or None where none is known (solve the geodesic BVP)."""
    return geo.extension("distance", "closed_form", lambda: _derive(geo))


def _derive(geo: Geometry):
    for rule in (_one_parameter, _half_plane, _declared, _through_default_chart):
        form = rule(geo)
        if form is not None:
            return form
    return None


def _one_parameter(geo: Geometry):
    if geo.family.n != 1:
        return None
    (p,), ((a,), (b,)) = geo.params, pair(geo)
    speed = sp.sqrt(geo.fisher[0, 0])
    try:
        antiderivative = call_with_timeout(_antiderivative, (speed, p), ANTIDERIVATIVE_TIMEOUT)
    except (TimeBoundExceeded, RuntimeError):
        return None
    if antiderivative is None:
        return None
    # both points lie on one side of any singularity of g, so log a − log b = log(a/b): real also
    # where the chart is negative (θ < 0), where the separate logarithms are complex
    difference = sp.logcombine(antiderivative.subs(p, b) - antiderivative.subs(p, a), force=True)
    expr = sp.Abs(sp.factor_terms(sp.simplify(difference)))
    if not _matches_quadrature(geo, expr, speed, a, b):
        return None
    return ClosedForm(expr, (a,), (b,), "∫√g dξ in closed form")


def _matches_quadrature(geo: Geometry, expr, speed, a, b) -> bool:
    """The closed form equals ∫√g between sample points of the domain (mpmath, 30 digits)."""
    import mpmath

    from .errors import NumericalError
    from .evaluate import value_at
    (p,) = geo.params
    samples = [geo.family.sample_point(k)[p] for k in range(4)]
    for lo, hi in ((samples[0], samples[1]), (samples[2], samples[3])):
        if lo == hi:
            continue
        try:
            closed = value_at(expr, {a: lo, b: hi})
        except NumericalError:
            return False
        integrand = sp.lambdify(p, speed, "mpmath")
        with mpmath.workdps(30):
            direct = abs(
                mpmath.quad(
                    lambda t, f=integrand: mpmath.re(f(t)),
                    [mpmath.mpf(sp.N(lo, 40)), mpmath.mpf(sp.N(hi, 40))],
                )
            )
        if abs(closed - float(direct)) > 1e-9 * max(1.0, float(direct)):
            return False
    return True


def _antiderivative(speed, p):
    result = sp.integrate(speed, p)
    if result.has(sp.Integral) or sp.simplify(sp.diff(result, p) - speed) != 0:
        return None
    return result


def _half_plane(geo: Geometry):
    """g = diag(a/σ², b/σ²) in (μ, σ), μ real, σ > 0."""
    if geo.family.n != 2 or geo.fisher[0, 1] != 0:
        return None
    for loc, scale in ((0, 1), (1, 0)):
        sigma = geo.params[scale]
        a = sp.simplify(geo.fisher[loc, loc] * sigma ** 2)
        b = sp.simplify(geo.fisher[scale, scale] * sigma ** 2)
        if a.is_number and b.is_number and a > 0 and b > 0 and sigma.is_positive:
            first, second = pair(geo)
            u1, u2 = first[loc] * sp.sqrt(a / b), second[loc] * sp.sqrt(a / b)
            s1, s2 = first[scale], second[scale]
            ratio = ((u1 - u2) ** 2 + (s1 - s2) ** 2) / (4 * s1 * s2)
            expr = 2 * sp.sqrt(b) * sp.asinh(sp.sqrt(ratio))
            return ClosedForm(expr, first, second, f"hyperbolic half-plane, g = diag({a}, {b})/{sigma}²")
    return None


def _declared(geo: Geometry):
    """A distance declared with the family from the literature (`closed_forms["distance"]`, written in
    pair_of(ξ) symbols: the categorical's sphere, the centred bivariate normal's eigenvalue formula)."""
    form = geo.family.closed_forms.get("distance")
    if form is None:
        return None
    first, second = pair(geo)
    names = dict(zip((q for p in geo.params for q in pair_of(p)),
                     (q for pair_ in zip(first, second) for q in pair_)))
    return ClosedForm(form.xreplace(names), first, second, f"{geo.family.name}, declared with the family")


def _through_default_chart(geo: Geometry):
    """A catalog family in one of its named charts: the default chart's closed form, composed with the
    chart map (a chart made up elsewhere under a name the catalog also uses is not taken for it)."""
    spec = catalog.spec_of(geo.family)
    if spec is None or geo.family.chart == "default":
        return None
    base = catalog.get(spec)
    if geo.family.chart not in base.charts or base.in_chart(geo.family.chart).key != geo.family.key:
        return None
    form = closed_form_distance(Geometry(base))
    if form is None:
        return None
    sub = base.charts[geo.family.chart].substitution()
    first, second = pair(geo)
    mapping = {}
    for symbols, point in ((form.first, first), (form.second, second)):
        at = dict(zip(geo.params, point))
        mapping.update({s: sub[p].xreplace(at) for s, p in zip(symbols, base.params)})
    return ClosedForm(
        form.expr.xreplace(mapping), first, second, f"{form.source}, through chart {geo.family.chart}"
    )
