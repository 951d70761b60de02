"""Geometry: everything derived from a family, computed once, simplified once, cached.

>>> from symgeo import catalog
>>> geo = Geometry(catalog.get("normal"), cache=False)
>>> geo.fisher
Matrix([
[sigma**(-2),          0],
[          0, 2/sigma**2]])
>>> geo.scalar_curvature
-1
"""
from __future__ import annotations

import mpmath
import sympy as sp

from . import cache as disk
from .algebra import DiffField
from .connection import alpha_first, christoffel_first, raise_index
from .curvature import lower_first, ricci, riemann_up, scalar
from .errors import InvalidArgumentError, SingularFisherError, SymgeoError
from .expectation import DEFAULT_TIMEOUT, expectations, is_represented
from .expectation.representation import evaluate
from .family import ExponentialFamily, Family
from .fisher import FisherResult, expectation_params, fisher_by_expectation, fisher_exponential
from .geodesic import geodesic_equations
from .names import fresh, names_of
from .printer import latex
from .recognize import recognize
from .regularity import check_regular
from .simplify import tidy, tidy_matrix, tidy_reduced

N_OBS = sp.Symbol("n_obs", positive=True, integer=True)
ALPHA = sp.Symbol("alpha", real=True)  # the symbol to use for a symbolic α-connection


class Geometry:
    """The Fisher–Rao geometry of a family in its chart.

    Tensors are ImmutableDenseNDimArray: Christoffel first kind Γ_ij,k as [i][j][k], second kind
    Γ^k_ij as [k][i][j], Riemann R_abcd (all lower) as [a][b][c][d].
    """

    def __init__(self, family: Family, *, route: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 cache: bool | disk.DiskCache = True, check: bool = True):
        self.family = family
        self._route = route
        self._timeout = timeout
        if cache is True and disk.enabled():
            cache = disk.DiskCache()
        self._disk = cache if isinstance(cache, disk.DiskCache) else None
        self._memo: dict = {}
        self._check = check

    def __repr__(self) -> str:
        return f"Geometry({self.family!r})"

    @property
    def params(self) -> tuple:
        return self.family.params

    @property
    def timeout(self) -> float:
        """Seconds allowed to each symbolic integral or sum of this geometry's derivations."""
        return self._timeout

    def in_chart(self, chart) -> Geometry:
        """The same geometry in a named chart of the family, or in a given Chart."""
        family = self.family.in_chart(chart) if isinstance(chart, str) else self.family.reparametrize(chart)
        return Geometry(family, route=self._route, timeout=self._timeout, cache=self._disk or False,
                        check=self._check)

    # -- caching ------------------------------------------------------------------------------
    def extension(self, owner: str, name: str, compute, remember: tuple = ()):
        """Cache a result another module derives from this geometry (memory, then disk), in that module's
        own namespace (`owner`, e.g. "distance"): it never meets the geometry's internals or another
        module's entries. `remember` as for `memo`."""
        return self.memo(f"{owner}/{name}", compute, remember)

    def memo(self, name: str, compute, remember: tuple = ()):
        """Cache a quantity of this geometry's own (memory, then disk) under `name`; other modules use
        `extension`.

        Exceptions of the classes in `remember` (a proven "cannot") are cached too and re-raised,
        so a time-bounded failure is not paid again."""
        def attempt():
            try:
                return ("ok", compute(), None)
            except remember as exc:
                return ("error", exc, self._timeout)
        status, value, bound = self._cached(name, attempt)
        if status == "error" and bound is not None and bound < self._timeout:
            self._memo.pop(name)  # failed under a shorter time bound than this one: try again
            status, value, bound = self._cached(name, attempt, fresh=True)
        if status == "error":
            raise value
        return value

    def _cached(self, name: str, compute, fresh: bool = False):
        if name in self._memo:
            return self._memo[name]
        value = None if fresh else self.stored(name)
        if value is None:
            value = compute()
            self.store(name, value)
        self._memo[name] = value
        return value

    @property
    def _disk_key(self) -> str:
        return f"{self.family.key}-{self._route or 'auto'}" + ("" if self._check else "-unchecked")

    def stored(self, name: str, owner: str | None = None):
        """What the disk cache holds for this geometry under `name` (in `owner`'s namespace), or None."""
        key = name if owner is None else f"{owner}/{name}"
        return self._disk.get(self._disk_key, key) if self._disk else None

    def store(self, name: str, value, owner: str | None = None) -> None:
        """Keep `value` on disk under `name` (in `owner`'s namespace); None forgets it."""
        if self._disk:
            self._disk.put(self._disk_key, name if owner is None else f"{owner}/{name}", value)

    @property
    def exponential_family(self) -> ExponentialFamily | None:
        """The family as an exponential family (declared or recognised), else None."""
        if "ef" not in self._memo:
            self.require_regular()  # the divergences read A(θ) without the Fisher metric: check here too
            self._memo["ef"] = recognize(self.family)
        return self._memo["ef"]

    def require_regular(self) -> None:
        """The regularity checks (support, sign, normalisation), once; a pass is remembered on disk.
        Every derived quantity runs them first; numeric routes that derive nothing call this."""
        if self._check:
            self._cached("regular", lambda: check_regular(self.family) or True)

    # -- metric -------------------------------------------------------------------------------
    def _fisher_result(self) -> FisherResult:
        return self._cached("fisher", self._derive_fisher)

    def _derive_fisher(self) -> FisherResult:
        self.require_regular()
        ef = self.exponential_family
        route = self._route or ("exponential" if ef is not None else "score")
        if route == "exponential":
            if ef is None:
                raise SymgeoError(f"{self.family.name} is not an exponential family; use route "
                                  f"'score' or 'hessian'")
            g, notes = fisher_exponential(ef), ()
        else:
            g, notes = fisher_by_expectation(self.family, route, self._timeout)
        g = tidy_matrix(g)
        _check_nonsingular(self.family, g)
        return FisherResult(g, route, notes)

    @property
    def fisher(self) -> sp.ImmutableMatrix:
        """g_ij = E[∂_i log p ∂_j log p]."""
        return self._fisher_result().matrix

    @property
    def fisher_route(self) -> str:
        return self._fisher_result().route

    @property
    def notes(self) -> tuple:
        """How non-obvious constants were obtained (e.g. identified numerically, with precision)."""
        return self._fisher_result().notes

    @property
    def inverse_fisher(self) -> sp.ImmutableMatrix:
        def compute():
            F = self._field
            return sp.ImmutableMatrix([[tidy_reduced(F.to_expr(e)) for e in row] for row in self._ginv_f])
        return self._cached("inverse_fisher", compute)

    @property
    def alpha_symbol(self) -> sp.Symbol:
        """The symbol for a symbolic α (ALPHA, renamed when the family has a parameter 'alpha')."""
        return fresh("alpha", names_of(self.family), real=True)

    def _alpha(self, alpha):
        """α as given, checked: a number, or alpha_symbol; never one of the family's parameters."""
        alpha = sp.sympify(alpha)
        if alpha.is_number:
            return alpha
        if alpha.free_symbols - {self.alpha_symbol}:
            raise InvalidArgumentError(f"α must be a number or geo.alpha_symbol ({self.alpha_symbol}), not "
                                       f"{alpha}: the family's own parameters are not α")
        return alpha

    # -- field-level state (built only when something must be computed) -----------------------
    @property
    def _field(self) -> DiffField:
        if "field" not in self._memo:
            exprs = list(self.fisher) + [self.alpha_symbol]
            ef = self.exponential_family
            if ef is not None:
                exprs += list(ef.natural_of_params) + list(self.expectation_params)
            self._memo["field"] = DiffField(exprs, self.params)
        return self._memo["field"]

    @property
    def _g_f(self):
        if "g_f" not in self._memo:
            F, g = self._field, self.fisher
            self._memo["g_f"] = [[F.to_field(g[i, j]) for j in range(self.family.n)]
                                 for i in range(self.family.n)]
        return self._memo["g_f"]

    @property
    def _ginv_f(self):
        if "ginv_f" not in self._memo:
            self._memo["ginv_f"] = self._field.inverse(self._g_f)
        return self._memo["ginv_f"]

    def _first_f(self, alpha=0):
        name = f"first_f_{alpha}"
        if name not in self._memo:
            first = self._memo.get("first_f_0") or christoffel_first(self._field, self._g_f)
            self._memo["first_f_0"] = first
            if alpha != 0:
                first = alpha_first(self._field, first, self._skew_f, alpha)
            self._memo[name] = first
        return self._memo[name]

    def _second_f(self, alpha=0):
        name = f"second_f_{alpha}"
        if name not in self._memo:
            self._memo[name] = raise_index(self._ginv_f, self._first_f(alpha))
        return self._memo[name]

    @property
    def _skew_f(self):
        if "skew_f" not in self._memo:
            F = self._field
            self._memo["skew_f"] = [[[F.to_field(e) for e in row] for row in plane]
                                    for plane in self.skewness.tolist()]
        return self._memo["skew_f"]

    @property
    def skewness(self) -> sp.ImmutableDenseNDimArray:
        """Amari–Chentsov tensor T_ijk = E[∂_iℓ ∂_jℓ ∂_kℓ] as [i][j][k] (totally symmetric).

        Exponential families:
        T_ijk = Σ_a (∂_i∂_j η_a ∂_k θ_a − ∂_i∂_j θ_a ∂_k η_a) = Γ^(−1)_ij,k − Γ^(1)_ij,k,
        no integral. Otherwise E[s_i s_j s_k] by the expectation engine."""
        return self._cached("skewness", self._derive_skewness)

    def _derive_skewness(self):
        n, ef = self.family.n, self.exponential_family
        triples = [(i, j, k) for i in range(n) for j in range(i, n) for k in range(j, n)]
        if ef is not None:
            F = self._field
            theta = [F.to_field(t) for t in ef.natural_of_params]
            eta = [F.to_field(e) for e in self.expectation_params]
            dtheta = [[F.d(t, i) for i in range(n)] for t in theta]
            deta = [[F.d(e, i) for i in range(n)] for e in eta]
            values = {}
            for i, j, k in triples:
                acc = F.K.sum(
                    term
                    for a in range(len(theta))
                    for term in (F.d(deta[a][i], j) * dtheta[a][k], -(F.d(dtheta[a][i], j) * deta[a][k]))
                )
                values[(i, j, k)] = tidy_reduced(F.to_expr(acc))
        else:
            from .fisher import score
            sc = score(self.family)
            result = expectations(self.family, [sc[i] * sc[j] * sc[k] for i, j, k in triples], self._timeout)
            values = {t: tidy(v) for t, v in zip(triples, result.values)}
        out = [[[values[tuple(sorted((i, j, k)))] for k in range(n)] for j in range(n)] for i in range(n)]
        return sp.ImmutableDenseNDimArray(out)

    def _array(self, nested) -> sp.ImmutableDenseNDimArray:
        F = self._field
        return sp.ImmutableDenseNDimArray(_map_nested(nested, lambda e: F.to_expr(e)))

    # -- connections and curvature ------------------------------------------------------------
    def christoffel_first(self, alpha=0) -> sp.ImmutableDenseNDimArray:
        """Γ^(α)_ij,k as [i][j][k]; α = 0 is Levi-Civita: ½(∂_i g_jk + ∂_j g_ik − ∂_k g_ij)."""
        alpha = self._alpha(alpha)
        return self._cached(f"christoffel_first_{alpha}", lambda: self._array(self._first_f(alpha)))

    def christoffel(self, alpha=0) -> sp.ImmutableDenseNDimArray:
        """Γ^(α)k_ij = g^{kl} Γ^(α)_ij,l as [k][i][j]."""
        alpha = self._alpha(alpha)
        return self._cached(f"christoffel_{alpha}", lambda: self._array(self._second_f(alpha)))

    def riemann(self, alpha=0) -> sp.ImmutableDenseNDimArray:
        """R_abcd = g_aλ R^λ_bcd as [a][b][c][d] (the sphere's R_θφθφ = sin²θ)."""
        alpha = self._alpha(alpha)
        def compute():
            up = riemann_up(self._field, self._second_f(alpha))
            return self._array(lower_first(self._g_f, up))
        return self._cached(f"riemann_{alpha}", compute)

    def _ricci_f(self, alpha=0):
        name = f"ricci_f_{alpha}"
        if name not in self._memo:
            self._memo[name] = ricci(self._field, self._second_f(alpha))
        return self._memo[name]

    def ricci(self, alpha=0) -> sp.ImmutableMatrix:
        """Ric_σν = R^ρ_σρν."""
        alpha = self._alpha(alpha)
        return self._cached(
            f"ricci_{alpha}",
            lambda: sp.ImmutableMatrix(_map_nested(self._ricci_f(alpha), self._field.to_expr)),
        )

    @property
    def scalar_curvature(self) -> sp.Expr:
        """R = g^{ij} Ric_ij (the normal family's R = −1)."""
        def compute():
            if self.family.n == 1:
                return sp.Integer(0)
            return tidy_reduced(self._field.to_expr(scalar(self._field, self._ginv_f, self._ricci_f(0))))
        return self._cached("scalar_curvature", compute)

    @property
    def gaussian_curvature(self) -> sp.Expr:
        """K = R_0101 / det g for a 2-parameter family (= R/2)."""
        if self.family.n != 2:
            raise SymgeoError("the Gaussian curvature is defined for 2-parameter families; use "
                              "sectional_curvature(u, v)")
        return self._cached("gaussian_curvature", lambda: tidy(self.scalar_curvature / 2))

    def sectional_curvature(self, u, v) -> sp.Expr:
        """K(u, v) = R(u, v, u, v) / (g(u,u) g(v,v) − g(u,v)²) for tangent vectors u, v."""
        R, g, n = self.riemann(), self.fisher, self.family.n
        num = sum(R[a, b, c, d] * u[a] * v[b] * u[c] * v[d]
                  for a in range(n) for b in range(n) for c in range(n) for d in range(n))
        guu = sum(g[a, b] * u[a] * u[b] for a in range(n) for b in range(n))
        gvv = sum(g[a, b] * v[a] * v[b] for a in range(n) for b in range(n))
        guv = sum(g[a, b] * u[a] * v[b] for a in range(n) for b in range(n))
        return tidy(num / (guu * gvv - guv ** 2))

    def geodesic_equations(self, alpha=0) -> dict:
        """{ξ^k: ξ̈^k = −Γ^(α)k_ij ξ̇^i ξ̇^j}, velocities named v_<param>."""
        alpha = self._alpha(alpha)
        return self._cached(f"geodesic_{alpha}",
                            lambda: geodesic_equations(self.params, self.christoffel(alpha)))

    def geodesic_system(self, alpha=0) -> tuple:
        """The geodesic equations as a first-order system in the state (ξ, v): (state, rhs, ∂rhs/∂state),
        rhs = (v, ξ̈); the Jacobian drives the variational equation of shooting."""
        from .geodesic import velocity_symbols
        alpha = self._alpha(alpha)

        def derive():
            eqs = self.geodesic_equations(alpha)
            state = self.params + velocity_symbols(self.params)
            rhs = list(velocity_symbols(self.params)) + [eqs[p] for p in self.params]
            return state, rhs, sp.ImmutableMatrix(rhs).jacobian(state)
        return self._cached(f"geodesic_system_{alpha}", derive)

    # -- statistics ---------------------------------------------------------------------------
    def cramer_rao(self, n=N_OBS) -> sp.ImmutableMatrix:
        """Covariance bound g⁻¹/n for unbiased estimators from n observations."""
        if n is N_OBS:
            return self._cached("cramer_rao", lambda: (self.inverse_fisher / n).as_immutable())
        return (self.inverse_fisher / n).as_immutable()

    @property
    def expectation_params(self) -> tuple | None:
        """η(ξ) = E[T(x)] for an exponential family (declared closed form or ∇A), else None."""
        ef = self.exponential_family
        if ef is None:
            return None
        return self._cached("expectation_params", lambda: tuple(tidy(e) for e in expectation_params(ef)))

    @property
    def jeffreys_prior(self) -> sp.Expr:
        """√det g, unnormalised."""
        return self._cached("jeffreys", self._root_of_det)

    def _root_of_det(self) -> sp.Expr:
        """√det g from det g's factors: p^(2k) gives |p|^k, the sign of p read at sample points (|p|
        kept where it changes), the odd powers stay under one root. SymPy's sqrt of the expanded
        determinant spends minutes on assumptions (multivariate normal d = 4: 45 s)."""
        F = self._field
        det = F.det(self._g_f)
        if self.fisher.has(sp.Integral, sp.Sum):  # signs would need quadrature: the root as it stands
            return sp.sqrt(F.to_expr(det))
        c, factors = F.factors(det)
        points = [self.family.sample_point(k) for k in range(2)]
        out, under = sp.sqrt(abs(c)), []
        for p, e in factors:
            signs = {sp.sign(sp.N(p.xreplace(pt), 15)) for pt in points}
            size = -p if signs == {-1} else (p if signs == {1} else sp.Abs(p))
            out *= size ** (e // 2)
            if e % 2:
                under.append(size)
        return out * sp.sqrt(sp.Mul(*under))

    # -- display ------------------------------------------------------------------------------
    def _repr_latex_(self) -> str:
        return (rf"$\text{{{self.family.name}}}\ ({self.family.chart}):\quad g = {latex(self.fisher)},\quad "
                rf"R = {latex(self.scalar_curvature)}$")


def _map_nested(nested, fn):
    if isinstance(nested, list):
        return [_map_nested(x, fn) for x in nested]
    return fn(nested)


def _value_at(expr, point):
    if is_represented(expr):  # quadrature to 20 digits: enough to see a singular matrix
        return mpmath.mpf(evaluate(expr, point, 20))
    at = expr.xreplace(point)
    if at.has(sp.zoo, sp.nan):  # a removable singularity at the sample point: the value beside it
        from .evaluate import value_at
        return mpmath.mpf(value_at(expr, point))
    return mpmath.mpf(sp.N(at, 40))


def _check_nonsingular(family: Family, g: sp.ImmutableMatrix) -> None:
    """Singular → SingularFisherError (non-identifiable); not positive definite → an error too.

    A Cholesky factorisation at two interior points decides quickly; only when the matrix looks
    singular there is the exact determinant computed, so a singular metric is proven, not guessed."""
    suspicious = False
    represented = any(is_represented(e) for e in g)
    tol_digits = 14 if represented else 30
    for k in range(2):
        point = family.sample_point(k)
        with mpmath.workdps(40):
            values = mpmath.matrix(
                [[_value_at(g[i, j], point) for j in range(g.cols)] for i in range(g.rows)]
            )
            try:
                chol = mpmath.cholesky(values)
            except (ValueError, ZeroDivisionError):
                suspicious = True
                continue
            scale = max(abs(values[i, i]) for i in range(g.rows))
            if min(abs(chol[i, i]) ** 2 for i in range(g.rows)) < mpmath.mpf(10) ** -tol_digits * scale:
                suspicious = True
    if not suspicious:
        return
    if represented:
        raise SingularFisherError(
            f"{family.name}: the Fisher matrix is numerically singular (to {tol_digits} digits) at "
            f"{family.sample_point()}: the parameters are not identifiable there; drop or fix one")
    field = DiffField(list(g), family.params)
    det = field.det([[field.to_field(g[i, j]) for j in range(g.cols)] for i in range(g.rows)])
    if not det:
        null = [
            [sp.simplify(sp.powsimp(c, force=True)) for c in v] for v in sp.Matrix(g).nullspace(simplify=True)
        ]
        directions = "; ".join("(" + ", ".join(map(str, v)) + ")" for v in null)
        raise SingularFisherError(
            f"{family.name}: the Fisher matrix is singular (det g = 0): the parameters are not "
            f"identifiable: moving ({', '.join(map(str, family.params))}) along {directions} leaves "
            f"the distribution unchanged to first order; drop or fix one of them, or reparametrize")
    raise SymgeoError(f"{family.name}: the derived Fisher matrix is not positive definite at "
                      f"{family.sample_point()}; the declaration is inconsistent")
