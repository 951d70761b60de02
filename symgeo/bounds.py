"""Statistics from the metric: Cramér–Rao bounds, the Jeffreys prior, MLE as an m-projection."""
from __future__ import annotations

import sympy as sp

from .duality import InversionUnavailable, invert
from .errors import SymgeoError
from .geometry import N_OBS, Geometry
from .timebound import TimeBoundExceeded, call_with_timeout


def cramer_rao_function(geo: Geometry, g, n=N_OBS) -> sp.Expr:
    """Var bound for an unbiased estimator of g(ξ): ∇gᵀ F⁻¹ ∇g / n (delta method)."""
    grad = sp.Matrix([sp.diff(g, p) for p in geo.params])
    return sp.simplify((grad.T * geo.inverse_fisher * grad)[0, 0] / n)


def _integrate_prior(expr, params, domains):
    out = expr
    for p in params:
        dom = domains[p]
        out = sp.integrate(out, (p, dom.inf, dom.sup), conds="none")
        if out.has(sp.Integral):
            return None
        if out.has(sp.oo, -sp.oo, sp.zoo):
            return sp.oo  # the integrand is positive: one divergent direction decides
    return sp.simplify(out)


def jeffreys_normalizer(geo: Geometry, timeout: float = 30.0):
    """(normalisable?, ∫ √det g dξ over the parameter domain): (True, Z), (False, oo), or
    (None, None) when SymPy cannot decide within the time bound."""
    if geo.family.constraints:
        return None, None  # joint constraints (a simplex): the box integral below would be wrong
    try:
        z = call_with_timeout(_integrate_prior, (geo.jeffreys_prior, geo.params, geo.family.domains), timeout)
    except (TimeBoundExceeded, RuntimeError):
        return None, None
    if z is None or z.has(sp.nan):
        return None, None
    if z in (sp.oo, -sp.oo, sp.zoo) or z.has(sp.oo):
        return False, sp.oo
    return True, z


def mle_natural(geo: Geometry, mean_stats) -> list:
    """The MLE in natural parameters from averaged sufficient statistics: the m-projection η̂ = T̄,
    then θ̂ = θ(η̂) (closed form where SymPy inverts η(ξ); else InversionUnavailable)."""
    ef = geo.exponential_family
    if ef is None:
        raise SymgeoError(f"{geo.family.name} is not an exponential family: the MLE is not moment matching")
    mle = mle_params(geo, mean_stats)
    return [sp.simplify(t.xreplace(mle)) for t in ef.natural_of_params]


def mle_params(geo: Geometry, mean_stats) -> dict:
    """{ξ: ξ̂} solving η(ξ) = T̄ (moment matching) in the family's own chart."""
    ef = geo.exponential_family
    if ef is None:
        raise SymgeoError(f"{geo.family.name} is not an exponential family: the MLE is not moment matching")
    if len(mean_stats) != len(ef.stats):
        raise SymgeoError(f"expected {len(ef.stats)} averaged statistics ({', '.join(map(str, ef.stats))})")
    etas = tuple(sp.Dummy(f"eta{i}") for i in range(len(ef.stats)))
    sol = invert(geo.expectation_params, geo.params, etas, geo.family.sample_point())
    return {p: sp.simplify(sol[p].xreplace(dict(zip(etas, map(sp.sympify, mean_stats))))) for p in geo.params}


__all__ = ["cramer_rao_function", "jeffreys_normalizer", "mle_natural", "mle_params", "InversionUnavailable"]
