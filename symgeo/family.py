"""Declared families: a density p(x | ξ) over a support, and exponential families (θ, T, A, log h).

A declaration holds only what defines the family. Everything else (Fisher metric, connections,
curvature, duality) is derived by :class:`symgeo.Geometry`.
"""
from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from .errors import DomainError, SymgeoError
from .support import Interval, Support

SCHEMA = "symgeo-6"  # bump when a derivation or the form of its results changes: caches are rebuilt


def default_domain(symbol: sp.Symbol) -> sp.Interval:
    """Parameter domain implied by a symbol's assumptions."""
    if symbol.is_positive:
        return sp.Interval.open(0, sp.oo)
    if symbol.is_negative:
        return sp.Interval.open(-sp.oo, 0)
    return sp.Interval(-sp.oo, sp.oo)


@dataclass(frozen=True)
class Chart:
    """A named reparametrization: old parameters expressed in the new ones."""

    name: str
    params: tuple
    old_in_new: tuple  # ((old_symbol, expr_in_new_params), ...)
    domains: tuple = ()  # sympy Intervals for the new params; default from assumptions
    forward: tuple = ()  # optional ((new_symbol, expr_in_old_params), ...): maps sample points over

    def substitution(self) -> dict:
        return dict(self.old_in_new)


def log_chart(family) -> Chart | None:
    """The chart of log σ for each parameter σ on (0, ∞) (the others kept), or None if there is none."""
    domains = family.domains
    positive = [p for p in family.params if domains[p].inf == 0 and not domains[p].sup.is_finite]
    if not positive:
        return None
    new = tuple(sp.Symbol(f"log_{p}", real=True) if p in positive else p for p in family.params)
    pairs = list(zip(family.params, new))
    return Chart("log", new, tuple((p, sp.exp(u) if p in positive else u) for p, u in pairs),
                 forward=tuple((u, sp.log(p) if p in positive else p) for p, u in pairs))


@dataclass(frozen=True)
class Reduction:
    """A standardizing substitution x = x_of_z(z, ξ) under which z has a parameter-free law.

    Location–scale families use x = μ + σ z; Weibull uses x = λ z^(1/k) with z ~ Exp(1).
    Expectations then reduce to parameter-free constants times known factors.
    """

    z: sp.Symbol
    x_of_z: sp.Expr
    z_support: Interval


@dataclass(frozen=True)
class ScipyEquivalent:
    """The same distribution in scipy.stats, declared with a family: `scipy.stats.<name>(*args, **kwargs)`
    with the arguments written as expressions of the parameters and fixed values (matrices for vectors).
    A reference for sampling and for independent checks, never a source of symgeo's formulas."""

    name: str
    args: tuple = ()
    kwargs: tuple = ()  # (keyword, expression) pairs
    components_first: bool = False  # its log-density takes x as (components, points) (scipy's dirichlet)

    def at(self, values: Mapping):
        """The frozen scipy.stats distribution at a member ({symbol: number})."""
        import scipy.stats

        def number(e):
            e = sp.sympify(sp.sympify(e).xreplace(values))
            if isinstance(e, sp.MatrixBase):
                return (
                    [[float(v) for v in row] for row in e.tolist()] if e.cols > 1 else [float(v) for v in e]
                )
            return int(e) if e.is_Integer else float(e)  # counts stay integers (binomial n, multinomial)
        return getattr(scipy.stats, self.name)(*map(number, self.args),
                                               **{k: number(v) for k, v in self.kwargs})


def pair_of(param: sp.Symbol) -> tuple:
    """The symbols ξ_1, ξ_2 in which a declared divergence between two members is written."""
    return tuple(sp.Symbol(f"{param.name}_{i}", **param.assumptions0) for i in (1, 2))


class Family:
    """A parametric family p(x | ξ).

    >>> x = sp.Symbol('x', real=True); mu = sp.Symbol('mu', real=True); s = sp.Symbol('sigma', positive=True)
    >>> fam = Family('normal', variables=x, support=Interval(), params=(mu, s),
    ...              log_density=-(x - mu)**2/(2*s**2) - sp.log(s)
    ...              - sp.log(2*sp.pi)/2)
    >>> fam.params
    (mu, sigma)
    """

    def __init__(
        self,
        name: str,
        *,
        variables,
        support: Support,
        params: Sequence[sp.Symbol],
        log_density: sp.Expr | None = None,
        density: sp.Expr | None = None,
        domains: Mapping | None = None,
        charts: Sequence[Chart] = (),
        fixed: Mapping | None = None,
        reduction: Reduction | None = None,
        chart: str = "default",
        description: str = "",
        constraints: Sequence = (),
        samples: Sequence[Mapping] = (),
        closed_forms: Mapping | None = None,
        origin: str | None = None,
        scipy: ScipyEquivalent | None = None,
    ):
        if (log_density is None) == (density is None):
            raise SymgeoError(f"{name}: give exactly one of log_density or density")
        self.name = name
        self.variables = tuple(variables) if isinstance(variables, (tuple, list)) else (variables,)
        self.support = support
        self.params = tuple(params)
        if len(set(self.params)) != len(self.params) or not self.params:
            raise SymgeoError(f"{name}: parameters must be distinct symbols, at least one")
        self.log_density = sp.expand_log(sp.log(density), force=True) if density is not None else log_density
        self.log_density = sp.sympify(self.log_density)
        self.domains = {p: (domains or {}).get(p, default_domain(p)) for p in self.params}
        self.charts = {c.name: c for c in charts}
        self.fixed = dict(fixed or {})  # fixed (non-coordinate) parameters -> assumptions text
        self.reduction = reduction
        self.chart = chart
        self.description = description
        self.constraints = tuple(constraints)  # joint conditions on the params, e.g. p1 + p2 < 1
        self.samples = tuple(dict(sp_) for sp_ in samples)  # interior points satisfying them
        # known closed forms of divergences, e.g. {"kl": expr in x0_1, gamma_1, x0_2, gamma_2}: literature
        # results the expectation engine does not derive, checked against quadrature where they are used
        self.closed_forms = dict(closed_forms or {})
        # the catalog name (with options) this family was built from, kept through its charts; None for a
        # family declared elsewhere (a spec file, code): what is known of catalog families by name applies
        self.origin = origin
        self.scipy = scipy  # in this chart's parameters; a reparametrized family has none
        self.__dict__["_frozen"] = True  # a declaration does not change once made

    def __setattr__(self, name, value):
        if self.__dict__.get("_frozen"):
            raise AttributeError(
                f"{self.name}: a family is frozen once declared (set {name} when declaring it)"
            )
        super().__setattr__(name, value)

    def with_origin(self, origin: str) -> Family:
        """The same declaration, remembering the catalog name it was built from."""
        out = copy.copy(self)
        out.__dict__["origin"] = origin
        return out

    # -- identity -----------------------------------------------------------------------------
    def _declaration(self) -> tuple:
        return (self.name, self.chart, self.variables, repr(self.support), self.params,
                self.log_density, tuple(self.domains.items()), repr(self.reduction), self.constraints)

    @property
    def key(self) -> str:
        """A hash of the declaration: equal declarations share on-disk cache entries. Memoised per
        declaration (srepr of a large family costs tens of milliseconds and every cache lookup asks)."""
        declaration = self._declaration()
        memo = self.__dict__.get("_key_memo")
        if memo is None or memo[0] != declaration:
            memo = (declaration, hashlib.sha256((SCHEMA + _srepr_any(declaration)).encode()).hexdigest()[:24])
            self.__dict__["_key_memo"] = memo
        return memo[1]

    @property
    def is_exponential(self) -> bool:
        return False

    @property
    def density(self) -> sp.Expr:
        return sp.exp(self.log_density)

    @property
    def n(self) -> int:
        return len(self.params)

    # -- charts -------------------------------------------------------------------------------
    def in_chart(self, name: str) -> Family:
        """The same family in the named chart (parameters renamed and substituted)."""
        if name == self.chart:
            return self
        if name not in self.charts:
            known = ", ".join(sorted(self.charts)) or "none"
            raise SymgeoError(f"{self.name} has no chart {name!r} (charts: {known})")
        return self.reparametrize(self.charts[name])

    def reparametrize(self, chart: Chart) -> Family:
        sub, domains = self._chart_substitution(chart)
        return Family(self.name, variables=self.variables, support=self.support, params=chart.params,
                     log_density=_subs(self.log_density, sub), domains=domains,
                     fixed=self.fixed,
                     reduction=self._reduction_in(sub), chart=chart.name,
                     description=self.description, constraints=self._constraints_in(sub),
                     samples=self._samples_in(chart), origin=self.origin)

    def _chart_substitution(self, chart: Chart) -> tuple:
        """(old → new substitution, new domains or None), after checking the chart covers every parameter."""
        sub = chart.substitution()
        missing = set(self.params) - set(sub)
        if missing:
            raise SymgeoError(f"chart {chart.name!r} does not express {sorted(map(str, missing))}")
        return sub, (dict(zip(chart.params, chart.domains)) if chart.domains else None)

    def _reduction_in(self, sub: dict) -> Reduction | None:
        r = self.reduction
        return None if r is None else Reduction(r.z, _subs(r.x_of_z, sub), r.z_support)

    def _samples_in(self, chart: Chart) -> list:
        if not chart.forward:
            return []
        points = [self.sample_point(k) for k in range(2)]
        return [{new: sp.nsimplify(sp.N(expr.xreplace(pt), 30), rational=True) for new, expr in chart.forward}
                for pt in points]

    def _constraints_in(self, sub: dict) -> tuple:
        """The constraints in the new chart, and the old parameters' domains as conditions on the new
        ones where the new domains do not already imply them (σ = √(η₂ − η₁²) > 0 needs η₂ > η₁²)."""
        out = [c.xreplace(sub) for c in self.constraints]
        for old, expr in sub.items():
            for cond in _domain_conditions(expr, self.domains[old]):
                if cond is not sp.true and cond not in out:
                    out.append(cond)
        return tuple(out)

    def satisfies(self, point: dict) -> bool:
        """Whether the point meets the joint constraints (a condition that is not real is not met)."""
        return all(_holds(c, point) for c in self.constraints)

    # -- domain -------------------------------------------------------------------------------
    def check_point(self, values: Mapping) -> dict:
        """Validate a parameter point {name or symbol: value}; return {symbol: value}."""
        by_name = {str(p): p for p in self.params}
        point = {}
        for key, val in values.items():
            sym = by_name.get(str(key))
            if sym is None:
                raise DomainError(f"{self.name}: unknown parameter {key!r} (parameters: "
                                  f"{', '.join(by_name)})")
            point[sym] = val
        missing = [str(p) for p in self.params if p not in point]
        if missing:
            raise DomainError(f"{self.name}: missing parameter(s) {', '.join(missing)}")
        exact = {sym: _exact(sym, val, self.name) for sym, val in point.items()}
        for sym, val in exact.items():
            if not bool(self.domains[sym].contains(val)):
                raise DomainError(f"{self.name}: {sym} = {val} is outside its domain {self.domains[sym]}")
        bad = [c for c in self.constraints if not _holds(c, exact)]
        if bad:
            raise DomainError(f"{self.name}: the point {_show(values)} violates {bad[0]}")
        return point

    def sample_point(self, k: int = 0) -> dict:
        """A deterministic interior point of the parameter domain (k selects one of several)."""
        fixed = {v: sp.Integer(4) for v in self.fixed.values() if isinstance(v, sp.Symbol)}
        if self.samples:
            return {**fixed, **self.samples[k % len(self.samples)]}
        return {**fixed, **{p: _interior(self.domains[p], k + i) for i, p in enumerate(self.params)}}

    def __repr__(self) -> str:
        kind = "ExponentialFamily" if self.is_exponential else "Family"
        return f"{kind}({self.name!r}, params={self.params}, chart={self.chart!r})"


def _show(values: Mapping) -> str:
    return ", ".join(f"{k} = {v}" for k, v in values.items())


def _domain_conditions(expr: sp.Expr, domain) -> list:
    """expr ∈ domain as relationals (√u > 0 written u > 0), each True when it always holds."""
    if not isinstance(domain, sp.Interval):
        return []
    conds = []
    low, high = domain.inf, domain.sup
    if low.is_finite and not sp.simplify(expr - low).is_positive:
        base = expr.base if (expr.is_Pow and expr.exp == sp.Rational(1, 2) and low == 0) else expr
        conds.append(sp.Gt(base, low) if domain.left_open else sp.Ge(base, low))
    if high.is_finite and not sp.simplify(high - expr).is_positive:
        conds.append(sp.Lt(expr, high) if domain.right_open else sp.Le(expr, high))
    return conds


def _holds(cond, point: dict) -> bool:
    try:
        return bool(cond.xreplace(point))
    except TypeError:  # I > 0: the point maps outside the old chart's real domain
        return False


def _exact(sym, value, family: str) -> sp.Expr:
    """A point's value as an exact SymPy number (a float exactly as stored: 1e-300 stays > 0)."""
    if isinstance(value, sp.Basic):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DomainError(f"{family}: {sym} = {value!r} is not a number") from None
    if not math.isfinite(number):
        raise DomainError(f"{family}: {sym} = {value!r} is not a finite number")
    return sp.Integer(int(value)) if isinstance(value, int) else sp.Rational(number)


class ExponentialFamily(Family):
    """p(x | θ) = h(x) exp(θ·T(x) − A(θ)), possibly written in other parameters ξ via θ(ξ).

    `natural` are the θ symbols, `stats` T(x), `log_partition` A(θ). When the family is declared
    in parameters ξ (`params`, with `natural_of_params` θ(ξ)), A may be given as A(ξ)
    (`log_partition_of_params`) if A(θ) has no convenient form. `expectation_of_params`, the
    closed form of η(ξ) = E[T], is an optional override of the derived ∇A.
    """

    def __init__(
        self,
        name: str,
        *,
        variables,
        support: Support,
        natural: Sequence[sp.Symbol],
        stats: Sequence[sp.Expr],
        log_partition: sp.Expr | None,
        log_base_measure: sp.Expr,
        params: Sequence[sp.Symbol] | None = None,
        natural_of_params: Sequence[sp.Expr] | None = None,
        log_partition_of_params: sp.Expr | None = None,
        expectation_of_params: Sequence[sp.Expr] | None = None,
        **kwargs,
    ):
        self.natural = tuple(natural)
        self.stats = tuple(sp.sympify(t) for t in stats)
        if len(self.natural) != len(self.stats):
            raise SymgeoError(f"{name}: {len(self.natural)} natural parameters but "
                              f"{len(self.stats)} sufficient statistics")
        self.log_partition = None if log_partition is None else sp.sympify(log_partition)
        self.log_base_measure = sp.sympify(log_base_measure)
        params = tuple(params) if params is not None else self.natural
        self.natural_of_params = (tuple(sp.sympify(e) for e in natural_of_params)
                                  if natural_of_params is not None else tuple(params))
        if len(self.natural_of_params) != len(self.natural):
            raise SymgeoError(f"{name}: natural_of_params must give one expression per natural parameter")
        if log_partition_of_params is None:
            if self.log_partition is None:
                raise SymgeoError(f"{name}: give log_partition A(θ) or log_partition_of_params A(ξ)")
            log_partition_of_params = _subs(self.log_partition, dict(zip(self.natural,
                                                                         self.natural_of_params)))
        self.log_partition_of_params = sp.sympify(log_partition_of_params)
        self.expectation_of_params = (None if expectation_of_params is None
                                      else tuple(sp.sympify(e) for e in expectation_of_params))
        log_density = (sum(t * s for t, s in zip(self.natural_of_params, self.stats))
                       - self.log_partition_of_params + self.log_base_measure)
        super().__init__(name, variables=variables, support=support, params=params, log_density=log_density,
                         **kwargs)

    @property
    def is_exponential(self) -> bool:
        return True

    def _declaration(self) -> tuple:
        return super()._declaration() + (self.natural, self.stats, self.log_partition,
                                         self.log_base_measure, self.natural_of_params,
                                         self.log_partition_of_params, self.expectation_of_params)

    def reparametrize(self, chart: Chart) -> ExponentialFamily:
        sub, domains = self._chart_substitution(chart)
        expect = (None if self.expectation_of_params is None
                  else [_subs(e, sub) for e in self.expectation_of_params])
        return ExponentialFamily(
            self.name,
            variables=self.variables,
            support=self.support,
            natural=self.natural,
            stats=self.stats,
            log_partition=self.log_partition,
            log_base_measure=self.log_base_measure,
            params=chart.params,
            natural_of_params=[_simplify_map(_subs(e, sub)) for e in self.natural_of_params],
            log_partition_of_params=_subs(self.log_partition_of_params, sub),
            expectation_of_params=expect,
            domains=domains,
            fixed=self.fixed,
            reduction=self._reduction_in(sub),
            chart=chart.name,
            description=self.description,
            constraints=self._constraints_in(sub),
            samples=self._samples_in(chart),
            origin=self.origin,
        )


_OFFSETS = (sp.Rational(13, 10), sp.Rational(7, 10), sp.Rational(23, 10), sp.Rational(9, 5))


def _interior(domain: sp.Interval, k: int) -> sp.Rational:
    lo, hi, t = domain.inf, domain.sup, _OFFSETS[k % len(_OFFSETS)]
    if lo.is_finite and hi.is_finite:
        return lo + (hi - lo) * sp.Rational(3 + 2 * (k % 3), 10)
    if lo.is_finite:
        return lo + t
    if hi.is_finite:
        return hi - t
    return t - 1


def _subs(expr, sub: dict):
    return sp.sympify(expr).xreplace(sub) if sub else sp.sympify(expr)


def _simplify_map(expr):
    """Natural parameters under a chart are usually simple; a light simplify keeps them so."""
    out = sp.cancel(sp.powsimp(expr, force=True))
    return out if sp.count_ops(out) <= sp.count_ops(expr) else expr


def _srepr_any(obj) -> str:
    if isinstance(obj, sp.Basic):
        return sp.srepr(obj)
    if isinstance(obj, (tuple, list)):
        return "(" + ",".join(_srepr_any(o) for o in obj) + ")"
    if isinstance(obj, dict):
        return "{" + ",".join(_srepr_any(k) + ":" + _srepr_any(v) for k, v in obj.items()) + "}"
    return repr(obj)


__all__ = ["Family", "ExponentialFamily", "Chart", "Reduction", "default_domain"]
