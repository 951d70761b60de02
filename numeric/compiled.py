"""A family's derived quantities as generated numpy or torch functions, bundled and domain-checked.

>>> gamma = compile("gamma")
>>> gamma.fisher(2.0, 3.0).round(4).tolist()
[[0.6449, 0.3333], [0.3333, 0.2222]]
>>> gamma.fisher(-1.0, 3.0)
Traceback (most recent call last):
...
symgeo.errors.DomainError: gamma: k must lie in Interval.open(0, oo); got k = -1.0
"""
from __future__ import annotations

from functools import cached_property

import numpy as np
import sympy as sp

from symgeo import DomainError, Family, Geometry, SymgeoError
from symgeo.divergence import kl as symbolic_kl
from symgeo.divergence import pair_symbols
from symgeo.errors import InvalidArgumentError
from symgeo.geodesic import velocity_symbols
from symgeo.geometry import N_OBS
from symgeo.removable import guarded, removable_patches

from .codegen import BACKENDS, Generated, generate


class DomainCheck:
    """Raises DomainError when parameter values leave the family's domain or break its constraints."""

    def __init__(self, family: Family, backend: str, fixed: dict):
        self.family = family
        self.params = family.params
        self.bounds = [_bounds(family.domains[p]) for p in self.params]
        self.constraints = [
            (c, generate(self.params, sp.Piecewise((1, c.xreplace(fixed)), (0, True)), backend))
            for c in family.constraints
        ]

    def __call__(self, values) -> None:
        for p, (lo, hi, lo_open, hi_open), v in zip(self.params, self.bounds, values):
            bad = _outside(v, lo, hi, lo_open, hi_open)
            if bad is not None:
                raise DomainError(f"{self.family.name}: {p} must lie in {self.family.domains[p]}; "
                                  f"got {p} = {bad}")
        for condition, holds in self.constraints:
            ok = holds(*values)
            if not bool((ok > 0.5).all()):
                raise DomainError(f"{self.family.name}: parameters violate {condition}")


def _bounds(domain) -> tuple:
    lo = -np.inf if domain.inf is sp.S.NegativeInfinity else float(domain.inf)
    hi = np.inf if domain.sup is sp.S.Infinity else float(domain.sup)
    return lo, hi, bool(domain.left_open), bool(domain.right_open)


def _outside(value, lo, hi, lo_open, hi_open):
    """The first value outside the interval (or NaN), else None. Two reductions, no temporaries."""
    v = value.detach() if hasattr(value, "detach") else np.asarray(value, dtype=float)
    if v.numel() == 0 if hasattr(v, "numel") else v.size == 0:
        return None
    vmin, vmax = float(v.min()), float(v.max())  # NaN propagates and fails both tests
    if (vmin > lo if lo_open else vmin >= lo) and (vmax < hi if hi_open else vmax <= hi):
        return None
    flat = v.reshape(-1).tolist() if hasattr(v, "reshape") else [float(v)]
    inside = [(x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi) for x in flat]
    return flat[inside.index(False)]


class Checked:
    """A generated function whose parameter arguments (at `slots`) are domain-checked first."""

    def __init__(self, generated: Generated, check: DomainCheck | None, slots: tuple):
        self.generated = generated
        self.check = check
        self.slots = slots

    @property
    def args(self):
        return self.generated.args

    @property
    def exprs(self):
        return self.generated.exprs

    @property
    def shape(self):
        return self.generated.shape

    def __call__(self, *values):
        if self.check is not None:
            for start in self.slots:
                self.check(values[start:start + len(self.check.params)])
        return self.generated(*values)

    def on(self, points):
        return self(*[points[..., i] for i in range(len(self.args))])

    def __repr__(self) -> str:
        return f"Checked({self.generated!r})"


class CompiledFamily:
    """Generated functions of one family in one chart; each is built on first use.

    Parameters are positional, in the order of `params`, and broadcast: `fisher(mu, sigma)` with arrays
    of shape (N,) returns (N, n, n). The torch backend returns tensors on the inputs' device,
    differentiable through every formula."""

    def __init__(self, geometry: Geometry, backend: str = "numpy", fixed: dict | None = None,
                 check: bool = True):
        if backend not in BACKENDS:
            raise InvalidArgumentError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self.geometry = geometry
        self.family = geometry.family
        self.params = self.family.params
        self.backend = backend
        self._fixed = _fixed_values(self.family, fixed or {})
        self._check = DomainCheck(self.family, backend, self._fixed) if check else None
        self._extensions: dict = {}

    def extension(self, key: str, build):
        """What another module generates from this family (its own functions), built once: `key` is
        namespaced by that module ("geodesic.closed_form"), `build()` makes the value."""
        if key not in self._extensions:
            self._extensions[key] = build()
        return self._extensions[key]

    def __repr__(self) -> str:
        return f"CompiledFamily({self.family.name!r}, chart={self.family.chart!r}, backend={self.backend!r})"

    @property
    def n(self) -> int:
        return len(self.params)

    @property
    def fixed(self) -> dict:
        """{name: value} of the fixed symbols given at compile time (pass on to compile the same family)."""
        return {str(symbol): value for symbol, value in self._fixed.items()}

    def bind(self, exprs):
        """`exprs` with the fixed symbols (binomial n, ...) replaced by their compile-time values."""
        return _substitute(exprs, self._fixed)

    def function(self, args, exprs, slots=(0,)) -> Checked:
        """Generate any expression of (a prefix of) `args`; parameter blocks start at `slots`."""
        exprs = self.bind(exprs)
        free = set().union(*(sp.sympify(e).free_symbols for e in sp.flatten(_as_list(exprs)))) - set(args)
        if free:
            raise SymgeoError(f"{self.family.name}: the expression depends on {sorted(map(str, free))}; "
                              f"give their values (e.g. fixed={{'{min(map(str, free))}': ...}})")
        return Checked(
            generate(args, self._guard_removable(args, exprs, slots), self.backend), self._check, slots
        )

    def _guard_removable(self, args, exprs, slots):
        """Each entry with its removable singularities inside the domain (0/0 at a = 0) evaluated
        by its Taylor polynomial near them (symgeo.removable)."""
        domains, values = {}, {}
        sample = self.family.sample_point(0)
        for slot in slots:
            for i, p in enumerate(self.params):
                if slot + i < len(args):
                    domains[args[slot + i]] = self.family.domains[p]
                    values[args[slot + i]] = sample[p]
        return _map_entries(exprs, lambda e: guarded(e, removable_patches(e, domains, values)))

    def check(self, *values) -> None:
        """Raise DomainError unless the parameter values lie in the domain."""
        if self._check is not None:
            self._check(values)

    # -- the metric and its connections --------------------------------------------------------
    @cached_property
    def fisher(self) -> Checked:
        return self.function(self.params, self.geometry.fisher)

    @cached_property
    def inverse_fisher(self) -> Checked:
        return self.function(self.params, self.geometry.inverse_fisher)

    @cached_property
    def christoffel(self) -> Checked:
        """Levi-Civita Γ^k_ij, result [..., k, i, j]."""
        return self.function(self.params, self.geometry.christoffel())

    def alpha_christoffel(self, alpha) -> Checked:
        """Γ^(α)k_ij for a numeric α (1: e-connection, −1: m-connection)."""
        return self.function(self.params, self.geometry.christoffel(sp.nsimplify(alpha)))

    @cached_property
    def christoffel_first(self) -> Checked:
        return self.function(self.params, self.geometry.christoffel_first())

    @cached_property
    def skewness(self) -> Checked:
        return self.function(self.params, self.geometry.skewness)

    @cached_property
    def scalar_curvature(self) -> Checked:
        return self.function(self.params, self.geometry.scalar_curvature)

    @cached_property
    def jeffreys_prior(self) -> Checked:
        return self.function(self.params, self.geometry.jeffreys_prior)

    @cached_property
    def cramer_rao(self) -> Checked:
        """g⁻¹/n, arguments (params..., n)."""
        return self.function(self.params + (N_OBS,), self.geometry.cramer_rao())

    @cached_property
    def velocities(self) -> tuple:
        return velocity_symbols(self.params)

    def geodesic_rhs(self, alpha=0) -> Checked:
        """(ξ, v) ↦ (v, −Γ^(α)k_ij v^i v^j): arguments (params..., velocities...), result (..., 2n)."""
        return self._geodesic(alpha)[0]

    def geodesic_jacobian(self, alpha=0) -> Checked:
        """∂(rhs)/∂(ξ, v), result (..., 2n, 2n): drives the variational equation of shooting."""
        return self._geodesic(alpha)[1]

    def _geodesic(self, alpha):
        def build():
            state, rhs, jacobian = self.geometry.geodesic_system(sp.nsimplify(alpha))
            return self.function(state, rhs), self.function(state, jacobian)
        return self.extension(f"compiled.geodesic_{alpha}", build)

    @cached_property
    def domain_margins(self) -> Generated:
        """Distances to each finite domain bound and each constraint (all positive inside): ODE events."""
        margins = []
        for p in self.params:
            domain = self.family.domains[p]
            if domain.inf.is_finite:
                margins.append(p - domain.inf)
            if domain.sup.is_finite:
                margins.append(domain.sup - p)
        for c in self.family.constraints:
            margins.append((c.lhs - c.rhs) if isinstance(c, (sp.StrictGreaterThan, sp.GreaterThan))
                           else (c.rhs - c.lhs))
        return generate(self.params, _substitute(margins, self._fixed), self.backend)

    # -- the density and the exponential-family maps --------------------------------------------
    @cached_property
    def log_density(self) -> Checked:
        """log p(x | ξ): arguments (variables..., params...)."""
        variables = self.family.variables
        return self.function(variables + self.params, self.family.log_density, slots=(len(variables),))

    def _ef(self):
        ef = self.geometry.exponential_family
        if ef is None:
            raise SymgeoError(f"{self.family.name} is not an exponential family")
        return ef

    @cached_property
    def natural_params(self) -> Checked:
        """θ(ξ)."""
        return self.function(self.params, list(self._ef().natural_of_params))

    @cached_property
    def expectation_params(self) -> Checked:
        """η(ξ) = E[T(x)]."""
        self._ef()
        return self.function(self.params, list(self.geometry.expectation_params))

    @cached_property
    def log_partition(self) -> Checked:
        """A(θ(ξ))."""
        return self.function(self.params, self._ef().log_partition_of_params)

    @cached_property
    def sufficient_statistics(self) -> Generated:
        """T(x), arguments the variables."""
        stats = _substitute(list(self._ef().stats), self._fixed)
        return generate(self.family.variables, stats, self.backend)

    @cached_property
    def kl(self) -> Checked:
        """KL(p_ξ1 ‖ p_ξ2): arguments (params of ξ1..., params of ξ2...)."""
        a, b = pair_symbols(self.geometry)
        expr = symbolic_kl(self.geometry, a, b)
        return self.function(tuple(a.values()) + tuple(b.values()), expr, slots=(0, self.n))


def _map_entries(exprs, fn):
    if isinstance(exprs, (sp.MatrixBase, sp.NDimArray)):
        return exprs.applyfunc(fn)
    if isinstance(exprs, (list, tuple)):
        return type(exprs)(_map_entries(e, fn) for e in exprs)
    return fn(sp.sympify(exprs))


def _as_list(exprs):
    if isinstance(exprs, (sp.MatrixBase, sp.NDimArray)):
        return exprs.tolist()
    return exprs if isinstance(exprs, (list, tuple)) else [exprs]


def _substitute(exprs, values: dict):
    if not values:
        return exprs
    if isinstance(exprs, (sp.MatrixBase, sp.NDimArray)):
        return exprs.applyfunc(lambda e: sp.sympify(e).xreplace(values))
    if isinstance(exprs, (list, tuple)):
        return [_substitute(e, values) for e in exprs]
    return sp.sympify(exprs).xreplace(values)


def _fixed_values(family: Family, given: dict) -> dict:
    """{symbol: value} for the family's fixed symbols (binomial n, ...), from `given` by name."""
    out = {}
    symbols = {name: s for name, s in family.fixed.items() if isinstance(s, sp.Symbol)}
    unknown = set(map(str, given)) - set(symbols)
    if unknown:
        raise SymgeoError(f"{family.name}: nothing fixed is named {sorted(unknown)} (fixed: "
                          f"{sorted(symbols) or 'none'})")
    for name, value in given.items():
        out[symbols[str(name)]] = sp.nsimplify(value)
    return out


def compile(family, backend: str = "numpy", *, chart: str | None = None, fixed: dict | None = None,
            check: bool = True) -> CompiledFamily:
    """Generated functions of a family: a catalog name ('gamma', 'dirichlet:k=3'), a spec-file path,
    a Family or a Geometry. `fixed` gives values to fixed symbols (binomial n); `check=False` skips
    domain checks (for hot loops on trusted values)."""
    if isinstance(family, str):
        from symgeo.load import load_family
        family = load_family(family, chart)
    elif chart is not None:
        family = family.in_chart(chart)
    geometry = family if isinstance(family, Geometry) else Geometry(family)
    return CompiledFamily(geometry, backend, fixed, check)
