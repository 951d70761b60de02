"""Exact arithmetic for tensor calculus: a differential field of rational functions.

Christoffel symbols, curvature and their contractions are sums of products of derivatives of the
metric. With `simplify` on every component (what a user would write) this is the bottleneck of a
derivation. Here every expression is mapped into a field of rational functions over Q whose
generators are the coordinates plus the non-rational "atoms" of the metric (polygamma(1, k),
log σ, besseli(0, κ), π, ...). Field arithmetic cancels common factors exactly and at once, so
zeros are recognised without `simplify`. Derivatives of atoms are themselves mapped into the field;
the set of atoms is closed under differentiation to a fixed depth before the field is built.

Atoms are treated as algebraically independent. When they are not (sin and cos of one angle),
results stay exact but may not be in lowest terms; the metric is tidied before it enters here.
"""
from __future__ import annotations

import sympy as sp
from sympy.core.mul import _keep_coeff
from sympy.functions.special.bessel import BesselBase

from .ratfunc import RationalField

FACTOR_TERMS = 400  # factoring is cosmetic; big numerators stay expanded
FACTOR_DENOMINATOR_TERMS = 20000


def _split_power(expr: sp.Pow):
    """b**(n + f) with 0 < f < 1 -> (b, n, f), so that the atom is b**f."""
    e = expr.exp
    whole = sp.floor(e)
    return expr.base, int(whole), e - whole


_HYPERBOLIC = (sp.sinh, sp.cosh, sp.tanh, sp.coth, sp.sech, sp.csch)


def _normalize(expr: sp.Expr) -> sp.Expr:
    """Rewrite into a small set of independent atoms: Bessel orders ≥ 2 via the recurrence,
    hyperbolic functions as exponentials (cosh θ and e^θ are not independent)."""
    expr = sp.sympify(expr)
    if expr.has(*_HYPERBOLIC):
        expr = expr.rewrite(sp.exp)
    expr = expr.replace(_compound_argument, _canonical_arguments)
    return expr.replace(
        lambda e: isinstance(e, BesselBase) and e.order.is_Integer and abs(e.order) >= 2,
        lambda e: sp.expand_func(e))


def _compound_argument(e) -> bool:
    return (
        isinstance(e, sp.Function) and not isinstance(e, sp.exp) and any(a.is_Add or a.is_Mul for a in e.args)
    )


def _canonical_arguments(e):
    """erf(√2(μ − 2)/(2σ)) and erf(√2μ/(2σ) − √2/σ) are one atom: arguments expanded, then
    common factors taken out again (deterministic from the expanded form)."""
    return e.func(*[sp.factor(sp.expand(a)) for a in e.args])


def _exp_parts(expr) -> list:
    """exp(3a/2 − b + 2) -> [(a, 3/2), (b, −1), (1, 2)]: monomials of the expanded exponent with
    their rational coefficients (e is exp(1))."""
    if expr == sp.E:
        return [(sp.Integer(1), sp.Integer(1))]
    parts = []
    for term in sp.Add.make_args(sp.expand(expr.args[0])):
        coeff, rest = term.as_coeff_Mul()
        if coeff.is_Rational:
            parts.append((rest, coeff))
        else:
            parts.append((term, sp.Integer(1)))
    return parts


class _ExpUnit(tuple):
    """exp(monomial/q) while atoms are collected; merged per monomial afterwards."""

    def __new__(cls, monomial, q):
        return super().__new__(cls, (monomial, int(q)))


def _atom_expr(atom):
    return sp.exp(atom[0] / atom[1]) if isinstance(atom, _ExpUnit) else atom


def _exp_generators(atoms) -> dict:
    """{monomial m: (exp(m/L), L)}, L the lcm of the denominators seen for m (unevaluated: exp(log(x)/2)
    must stay an exponential)."""
    lcm: dict = {}
    for a in atoms:
        if isinstance(a, _ExpUnit):
            lcm[a[0]] = sp.ilcm(lcm.get(a[0], 1), a[1])
    return {m: (sp.exp(m / q, evaluate=False), q) for m, q in lcm.items()}


def _is_exp(expr) -> bool:
    return isinstance(expr, sp.exp) or expr == sp.E


def _collect_atoms(expr: sp.Expr, out: set) -> None:
    if expr.is_Symbol or expr.is_Rational:
        return
    if _is_exp(expr):  # one generator exp(m/L) per monomial m: L the lcm of its coefficients' denominators
        for monomial, coeff in _exp_parts(expr):
            out.add(_ExpUnit(monomial, coeff.q))
        return
    if expr.is_Add or expr.is_Mul:
        for a in expr.args:
            _collect_atoms(a, out)
    elif expr.is_Pow and expr.exp.is_Integer:
        _collect_atoms(expr.base, out)
    elif expr.is_Pow and expr.exp.is_Rational:
        base, _, frac = _split_power(expr)
        _collect_atoms(base, out)
        out.add(sp.Pow(base, frac, evaluate=False))
    else:
        out.add(expr)


class DiffField:
    """A field Q(coords, atoms) with total derivatives d/d coord.

    >>> x, y = sp.symbols('x y', positive=True)
    >>> F = DiffField([sp.log(x) / y], (x, y))
    >>> f = F.to_field(sp.log(x) / y)
    >>> F.to_expr(F.d(f, 0))
    1/(x*y)
    """

    def __init__(self, exprs, coords, depth: int = 3):
        self.coords = tuple(coords)
        atoms: set = set()
        constants: set = set()
        for e in exprs:
            e = sp.sympify(e)
            constants |= e.free_symbols - set(self.coords)
            _collect_atoms(_normalize(e), atoms)
        frontier = set(atoms)
        for _ in range(depth):
            new: set = set()
            for a in frontier:
                for c in self.coords:
                    _collect_atoms(_normalize(sp.diff(_atom_expr(a), c)), new)
            frontier = new - atoms
            atoms |= frontier
            if not frontier:
                break
        self._exp_unit = _exp_generators(atoms)
        atoms = {a for a in atoms if not isinstance(a, _ExpUnit)} | {u for u, _ in self._exp_unit.values()}
        self.atoms = tuple(sorted(atoms, key=sp.default_sort_key))
        self._atom_symbols = tuple(sp.Dummy(f"a{i}") for i in range(len(self.atoms)))
        self._atom_of = dict(zip(self.atoms, self._atom_symbols))
        self.constants = tuple(sorted(constants, key=sp.default_sort_key))  # fixed symbols: d = 0
        symbols = self.coords + self.constants + self._atom_symbols
        self._symbols = symbols
        self.K = RationalField([f"g{i}" for i in range(len(symbols))])
        self._atom_index = range(len(self.coords) + len(self.constants), len(symbols))
        self._gen_of = dict(zip(symbols, self.K.gens))
        self._back = dict(zip(self._atom_symbols, self.atoms))
        self._depends = [[bool(a.has(c)) for a in self.atoms] for c in self.coords]
        self._atom_derivs: dict = {}

    def _atom_derivative(self, a: int, i: int):
        """d atom_a / d coord_i in the field, computed on first use."""
        key = (a, i)
        if key not in self._atom_derivs:
            self._atom_derivs[key] = self.to_field(_normalize(sp.diff(self.atoms[a], self.coords[i])))
        return self._atom_derivs[key]

    # -- conversion ---------------------------------------------------------------------------
    def to_field(self, expr):
        return self._to_field(_normalize(expr))

    def _to_field(self, expr):
        if expr.is_Rational:
            return self.K(expr)
        if expr in self._gen_of:
            return self._gen_of[expr]
        if expr.is_Add:
            out = self.K.zero
            for a in expr.args:
                out += self._to_field(a)
            return out
        if expr.is_Mul:
            out = self.K.one
            for a in expr.args:
                out *= self._to_field(a)
            return out
        if expr.is_Pow and expr.exp.is_Integer:
            return self._to_field(expr.base) ** int(expr.exp)
        if expr.is_Pow and expr.exp.is_Rational:
            base, whole, frac = _split_power(expr)
            return self._to_field(base) ** whole * self._atom(sp.Pow(base, frac, evaluate=False))
        if _is_exp(expr):
            out = self.K.one
            for monomial, coeff in _exp_parts(expr):
                unit, L = self._exp_unit.get(monomial, (None, 1))
                power = coeff * L
                if unit is None or not power.is_Integer:
                    raise KeyError(f"internal: exp({coeff * monomial}) is not a power of a generator "
                                   f"of this field")
                out *= self._atom(unit) ** int(power)
            return out
        return self._atom(_normalize(expr) if isinstance(expr, BesselBase) else expr)

    def _atom(self, atom):
        sym = self._atom_of.get(atom)
        if sym is None:
            raise KeyError(f"internal: {atom} is not a generator of this field (closure depth too small)")
        return self._gen_of[sym]

    def to_expr(self, f) -> sp.Expr:
        """Back to a SymPy expression: numerator and denominator factored (by FLINT) while small."""
        if not f:
            return sp.Integer(0)
        if len(f.numer) + len(f.denom) <= FACTOR_TERMS:
            (c_num, num), (c_den, den) = self._factored(f.numer), self._factored(f.denom)
            expr = _keep_coeff(sp.Rational(c_num, c_den), num / den)
        elif len(f.denom) <= FACTOR_DENOMINATOR_TERMS:  # typically a power of one small polynomial
            c_den, den = self._factored(f.denom)
            expr = self._poly_expr(f.numer) / (c_den * den)
        else:
            expr = self._poly_expr(f.numer) / self._poly_expr(f.denom)
        return expr.xreplace(self._back)

    def factors(self, f) -> tuple:
        """f = c · Π pᵢ^eᵢ: (c, [(pᵢ as a SymPy expression, eᵢ)]), eᵢ < 0 for the denominator's."""
        (c_num, num), (c_den, den) = f.numer.factor(), f.denom.factor()
        out = [(self._poly_expr(p).xreplace(self._back), int(e)) for p, e in num]
        out += [(self._poly_expr(p).xreplace(self._back), -int(e)) for p, e in den]
        return sp.Rational(int(c_num), int(c_den)), out

    def _factored(self, poly) -> tuple:
        content, factors = poly.factor()
        return int(content), sp.Mul(*(self._poly_expr(p) ** e for p, e in factors))

    def _poly_expr(self, poly) -> sp.Expr:
        terms = []
        for exps, coeff in poly.to_dict().items():
            powers = [s ** e for s, e in zip(self._symbols, exps) if e]
            terms.append(sp.Mul(sp.Integer(int(coeff)), *powers))
        return sp.Add(*terms)

    # -- calculus -----------------------------------------------------------------------------
    def d(self, f, i: int):
        """Total derivative of a field element with respect to coordinate i."""
        out = f.diff(i)
        for a, gen in enumerate(self._atom_index):
            if self._depends[i][a]:
                partial = f.diff(gen)
                if partial:
                    out += partial * self._atom_derivative(a, i)
        return out

    def inverse(self, matrix):
        """Inverse of a square matrix of field elements (list of lists), block by block."""
        n = len(matrix)
        blocks = _blocks(matrix)
        inv = [[self.K.zero] * n for _ in range(n)]
        for block in blocks:
            sub = _gauss_jordan_inverse([[matrix[i][j] for j in block] for i in block], self.K)
            for a, i in enumerate(block):
                for b, j in enumerate(block):
                    inv[i][j] = sub[a][b]
        return inv

    def det(self, matrix):
        out = self.K.one
        for block in _blocks(matrix):
            out *= _det([[matrix[i][j] for j in block] for i in block], self.K)
        return out


def lowest_terms(expr: sp.Expr) -> sp.Expr:
    """A rational function of its free symbols in lowest terms, factored while small (FLINT)."""
    F = DiffField([expr], sorted(expr.free_symbols, key=sp.default_sort_key), depth=0)
    return F.to_expr(F.to_field(expr))


def _blocks(matrix) -> list:
    """Connected components of the nonzero pattern: the diagonal blocks after a permutation."""
    n = len(matrix)
    seen, blocks = set(), []
    for start in range(n):
        if start in seen:
            continue
        comp, stack = [], [start]
        seen.add(start)
        while stack:
            i = stack.pop()
            comp.append(i)
            for j in range(n):
                if j not in seen and (matrix[i][j] or matrix[j][i]):
                    seen.add(j)
                    stack.append(j)
        blocks.append(sorted(comp))
    return blocks


def _gauss_jordan_inverse(a, K):
    n = len(a)
    m = [list(row) + [K.one if i == j else K.zero for j in range(n)] for i, row in enumerate(a)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if m[r][col]), None)
        if pivot is None:
            raise ZeroDivisionError("singular matrix")
        m[col], m[pivot] = m[pivot], m[col]
        p = m[col][col]
        m[col] = [v / p for v in m[col]]
        for r in range(n):
            if r != col and m[r][col]:
                factor = m[r][col]
                m[r] = [v - factor * w for v, w in zip(m[r], m[col])]
    return [row[n:] for row in m]


def _det(a, K):
    n = len(a)
    m = [list(row) for row in a]
    out = K.one
    for col in range(n):
        pivot = next((r for r in range(col, n) if m[r][col]), None)
        if pivot is None:
            return K.zero
        if pivot != col:
            m[col], m[pivot] = m[pivot], m[col]
            out = -out
        p = m[col][col]
        out *= p
        for r in range(col + 1, n):
            if m[r][col]:
                factor = m[r][col] / p
                m[r] = [v - factor * w for v, w in zip(m[r], m[col])]
    return out
