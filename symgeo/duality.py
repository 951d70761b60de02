"""Dual (Amari) structure of an exponential family: θ and η = ∇A coordinates, the Legendre dual
potential A*(η) = θ·η − A(θ), dual flatness and the duality identity.

Charts to θ and η are derived by inverting θ(ξ) or η(ξ) with `solve` under a time bound; the
branch kept is the one that maps a sample point back to itself. Where SymPy cannot invert,
`InversionUnavailable` says so and the numeric inverse (Newton on A) is the fallback.
"""
from __future__ import annotations

from dataclasses import replace

import sympy as sp

from .errors import SymgeoError
from .family import Chart, ExponentialFamily
from .geometry import Geometry
from .timebound import TimeBoundExceeded, call_with_timeout

SOLVE_TIMEOUT = 20.0


class InversionUnavailable(SymgeoError):
    """SymPy could not invert the coordinate map in closed form within the time bound.

    The numeric inverse is `numeric.duality.NaturalFromExpectation(geo)` (Newton on A)."""

    ADVICE = "; use the numeric inverse numeric.duality.NaturalFromExpectation"

    def __init__(self, message: str):
        super().__init__(message if message.endswith(self.ADVICE) else message + self.ADVICE)


def _require_ef(geo: Geometry) -> ExponentialFamily:
    ef = geo.exponential_family
    if ef is None:
        raise SymgeoError(f"{geo.family.name} is not an exponential family: no θ/η dual coordinates")
    return ef


def _solve(equations, unknowns):
    return sp.solve(equations, unknowns, dict=True)


def invert(exprs, params, new_symbols, sample: dict, timeout: float = SOLVE_TIMEOUT) -> dict:
    """{param: expression in new_symbols} solving new_symbols = exprs(params), branch checked at `sample`."""
    equations = [sp.Eq(s, e) for s, e in zip(new_symbols, exprs)]
    try:
        solutions = call_with_timeout(_solve, (equations, list(params)), timeout)
    except (TimeBoundExceeded, RuntimeError) as exc:
        raise InversionUnavailable(
            f"no closed-form inverse of ({', '.join(map(str, exprs))}) ({exc})"
        ) from None
    target = {s: sp.sympify(e).xreplace(sample) for s, e in zip(new_symbols, exprs)}
    for sol in solutions:
        if set(sol) != set(params):
            continue
        try:
            ok = all(abs(complex(sp.N(sol[p].xreplace(target).xreplace(sample) - sample[p], 30))) < 1e-20
                     for p in params)
        except (TypeError, ValueError):
            ok = False
        if ok:
            return {p: sp.simplify(sol[p]) for p in params}
    raise InversionUnavailable(
        f"no closed-form inverse of ({', '.join(map(str, exprs))}) on the parameter domain"
    )


def natural_symbols(ef: ExponentialFamily) -> tuple:
    return tuple(sp.Symbol(f"theta{i + 1}", real=True) for i in range(len(ef.natural)))


def expectation_symbols(ef: ExponentialFamily) -> tuple:
    return tuple(sp.Symbol(f"eta{i + 1}", real=True) for i in range(len(ef.natural)))


def _memo_or_raise(geo: Geometry, name: str, compute):
    return geo.extension("duality", name, compute, remember=(InversionUnavailable,))


def natural_chart(geo: Geometry) -> Chart:
    """Chart to θ: the family's parameters expressed in θ (declared, else derived)."""
    return _memo_or_raise(geo, "natural_chart", lambda: _natural_chart(geo))


def _natural_chart(geo: Geometry) -> Chart:
    ef = _require_ef(geo)
    return _derived_chart(geo, "natural", natural_symbols(ef), ef.natural_of_params)


def _derived_chart(geo: Geometry, name: str, symbols: tuple, exprs) -> Chart:
    """The declared chart `name` (with its forward map ξ ↦ symbols), else the old parameters solved from
    symbols = exprs(ξ)."""
    if name in geo.family.charts:
        declared = geo.family.charts[name]
        return declared if declared.forward else replace(declared, forward=tuple(zip(declared.params, exprs)))
    sol = invert(exprs, geo.params, symbols, geo.family.sample_point())
    return Chart(name, symbols, tuple((p, sol[p]) for p in geo.params), forward=tuple(zip(symbols, exprs)))


def expectation_chart(geo: Geometry) -> Chart:
    """Chart to η = E[T]: the family's parameters expressed in η (declared, else derived)."""
    return _memo_or_raise(geo, "expectation_chart", lambda: _expectation_chart(geo))


def _expectation_chart(geo: Geometry) -> Chart:
    ef = _require_ef(geo)
    return _derived_chart(geo, "expectation", expectation_symbols(ef), geo.expectation_params)


def natural_from_expectation(geo: Geometry) -> dict:
    """θ(η) in closed form: {θ_a symbol: expression in η}."""
    return _memo_or_raise(geo, "theta_of_eta", lambda: _natural_from_expectation(geo))


def _natural_from_expectation(geo: Geometry) -> dict:
    ef = _require_ef(geo)
    chart = expectation_chart(geo)
    sub = chart.substitution()
    return {t: sp.simplify(e.xreplace(sub)) for t, e in zip(natural_symbols(ef), ef.natural_of_params)}


def dual_potential(geo: Geometry) -> sp.Expr:
    """A*(η) = θ(η)·η − A(θ(η)) (the negative entropy up to E[log h])."""
    return _memo_or_raise(geo, "dual_potential", lambda: _dual_potential(geo))


def _dual_potential(geo: Geometry) -> sp.Expr:
    ef = _require_ef(geo)
    chart = expectation_chart(geo)
    sub = chart.substitution()
    theta = [e.xreplace(sub) for e in ef.natural_of_params]
    a_of_eta = ef.log_partition_of_params.xreplace(sub)
    return sp.simplify(sum(t * e for t, e in zip(theta, chart.params)) - a_of_eta)


def in_chart(geo: Geometry, chart: Chart) -> Geometry:
    return geo.in_chart(chart)


def is_flat(geo: Geometry, alpha) -> bool:
    """Do all Christoffel symbols of the α-connection vanish in this chart?"""
    return all(sp.simplify(e) == 0 for e in sp.flatten(geo.christoffel(alpha).tolist()))


def affine_defect(geo: Geometry, alpha, functions) -> list:
    """∇^(α)d f = ∂_i∂_j f − Γ^(α)k_ij ∂_k f for each f: zero iff the f are affine for ∇^(α)."""
    n, xi = geo.family.n, geo.params
    gam = geo.christoffel(alpha)

    def hessian(f):
        return sp.Matrix(n, n, lambda i, j: sp.simplify(sp.expand_func(
            sp.diff(f, xi[i], xi[j]) - sum(gam[k, i, j] * sp.diff(f, xi[k]) for k in range(n)))))
    return [hessian(f) for f in functions]


def dual_flatness(geo: Geometry) -> dict:
    """Whether θ is affine for the e-connection and η for the m-connection, checked in the
    family's own chart (no inversion needed): ∇^(1)dθ_a = 0 and ∇^(−1)dη_a = 0."""
    ef = _require_ef(geo)
    zero = sp.zeros(geo.family.n, geo.family.n)
    return {"e_flat_in_natural": all(m == zero for m in affine_defect(geo, 1, ef.natural_of_params)),
            "m_flat_in_expectation": all(m == zero for m in affine_defect(geo, -1, geo.expectation_params))}


def duality_defect(geo: Geometry, alpha=None) -> sp.ImmutableDenseNDimArray:
    """∂_k g_ij − Γ^(α)_ki,j − Γ^(−α)_kj,i as [k][i][j]: identically zero (Γ^(α), Γ^(−α) dual)."""
    n, g = geo.family.n, geo.fisher
    alpha = geo.alpha_symbol if alpha is None else alpha
    plus, minus = geo.christoffel_first(alpha), geo.christoffel_first(-alpha)
    out = [[[sp.simplify(sp.diff(g[i, j], geo.params[k]) - plus[k, i, j] - minus[k, j, i])
             for j in range(n)] for i in range(n)] for k in range(n)]
    return sp.ImmutableDenseNDimArray(out)


def mixed_chart(geo: Geometry, natural_indices) -> Chart:
    """Mixed coordinates (θ_I, η_J) with I the given indices and J the rest; their Fisher metric is
    block diagonal (the θ_I and η_J directions are orthogonal)."""
    ef = _require_ef(geo)
    idx = set(natural_indices)
    thetas, etas = natural_symbols(ef), expectation_symbols(ef)
    new = tuple(thetas[a] if a in idx else etas[a] for a in range(len(thetas)))
    exprs = [ef.natural_of_params[a] if a in idx else geo.expectation_params[a] for a in range(len(thetas))]
    sol = invert(exprs, ef.params, new, geo.family.sample_point())
    return Chart("mixed", new, tuple((p, sol[p]) for p in ef.params), forward=tuple(zip(new, exprs)))


T = sp.Symbol("t", real=True)


def e_geodesic(geo: Geometry, p1: dict, p2: dict) -> dict:
    """The e-geodesic (α = 1) from p1 (t = 0) to p2 (t = 1): θ(t) = (1 − t)θ₁ + tθ₂, in the family's chart."""
    ef = _require_ef(geo)
    return _line_in(geo, natural_chart(geo), [sp.sympify(e) for e in ef.natural_of_params], p1, p2)


def m_geodesic(geo: Geometry, p1: dict, p2: dict) -> dict:
    """The m-geodesic (α = −1): η(t) = (1 − t)η₁ + tη₂ (a mixture of moments), in the family's chart."""
    return _line_in(geo, expectation_chart(geo), list(geo.expectation_params), p1, p2)


def _line_in(geo: Geometry, chart: Chart, coords, p1: dict, p2: dict) -> dict:
    ends = [[c.xreplace(p) for c in coords] for p in (p1, p2)]
    line = {s: (1 - T) * a + T * b for s, a, b in zip(chart.params, *ends)}
    return {p: sp.simplify(expr.xreplace(line)) for p, expr in chart.substitution().items()}


def geodesic_residual(geo: Geometry, curve: dict, alpha) -> list:
    """ξ̈^k + Γ^(α)k_ij ξ̇^i ξ̇^j along a curve {param: ξ(t)}: zero iff it is an α-geodesic."""
    gam = geo.christoffel(alpha)
    xs = [curve[p] for p in geo.params]
    vs = [sp.diff(x, T) for x in xs]
    at = dict(zip(geo.params, xs))
    n = geo.family.n
    return [
        sp.diff(vs[k], T) + sum(gam[k, i, j].xreplace(at) * vs[i] * vs[j] for i in range(n) for j in range(n))
        for k in range(n)
    ]


def mle_loss(geo: Geometry) -> tuple:
    """(T̄ symbols, L, ∇_ξ L) with L(ξ; T̄) = A(ξ) − θ(ξ)·T̄: the mean negative log-likelihood of data whose
    sufficient statistics average T̄, less the data's mean log h (a constant in ξ)."""
    ef = _require_ef(geo)

    def derive():
        means = sp.symbols(f"tbar1:{len(ef.stats) + 1}", real=True)
        loss = ef.log_partition_of_params - sum(t * m for t, m in zip(ef.natural_of_params, means))
        return means, loss, [sp.diff(loss, p) for p in geo.params]
    return geo.extension("duality", "mle_loss", derive)


def natural_log_partition(geo: Geometry) -> tuple:
    """(θ, A(θ), A′(θ), A″(θ)) of a one-parameter exponential family in its natural chart: the log-partition
    and the mean and variance of T as functions of θ."""
    ef = _require_ef(geo)
    if len(ef.stats) != 1:
        raise SymgeoError(f"{geo.family.name}: A′ and A″ as scalars need one natural parameter")

    def derive():
        natural = in_chart(geo, natural_chart(geo))
        theta = natural.family.params[0]
        a = sp.simplify(natural.exponential_family.log_partition_of_params)
        return theta, a, sp.simplify(sp.diff(a, theta)), sp.simplify(sp.diff(a, theta, 2))
    return geo.extension("duality", "natural_log_partition", derive)
