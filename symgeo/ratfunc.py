"""Multivariate rational functions over Q, on FLINT's integer polynomials (python-flint).

The tensor calculus of a derivation is field arithmetic with cancellation after every step.
SymPy's own sparse field does that in pure Python; here numerator and denominator are
`flint.fmpz_mpoly` and every gcd, product and derivative runs in C: raising the index of the
multivariate normal's (d = 3, 9 parameters) Christoffel symbols takes 0.1 s instead of 63 s.

Elements are kept in lowest terms with a denominator of positive leading coefficient, so equal
functions have equal representations and a zero numerator is the zero function.

>>> K = RationalField(("x", "y"))
>>> x, y = K.gens
>>> f = (x**2 - y**2) / (x + y)
>>> f.numer.str(), f.denom.str()
('x - y', '1')
>>> (f.diff(0) * (1 / y)).numer.str()
'1'
"""
from __future__ import annotations

from fractions import Fraction

import flint


class RationalField:
    """Q(x_1, ..., x_n); `K(3)`, `K(Fraction(1, 2))`, `K.gens`, `K.zero`, `K.one`."""

    def __init__(self, names):
        self.names = tuple(names)
        self.ctx = flint.fmpz_mpoly_ctx.get(self.names or ("_",), "lex")
        self._one_poly = self.ctx.constant(1)
        self.zero = RationalFunction(self, self.ctx.constant(0), self._one_poly)
        self.one = RationalFunction(self, self._one_poly, self._one_poly)
        self.gens = tuple(
            RationalFunction(self, g, self._one_poly) for g in self.ctx.gens()[: len(self.names)]
        )

    def __call__(self, value) -> RationalFunction:
        if isinstance(value, RationalFunction):
            return value
        q = Fraction(int(value.p), int(value.q)) if hasattr(value, "p") else Fraction(value)
        return RationalFunction(self, self.ctx.constant(q.numerator), self.ctx.constant(q.denominator))

    def sum(self, terms) -> RationalFunction:
        """Σ terms with one reduction per distinct denominator, not one per addition: a contraction's
        terms mostly share a denominator (a power of det Σ for the multivariate normal), and the gcd
        after each addition was most of its cost."""
        groups: list = []  # [denominator, numerator accumulated over it]
        for t in terms:
            if not t:
                continue
            for group in groups:
                if group[0] == t.denom:
                    group[1] += t.numer
                    break
            else:
                groups.append([t.denom, t.numer])
        out = self.zero
        for denom, numer in groups:
            out += _reduced(self, numer, denom)
        return out

    def from_terms(self, terms) -> RationalFunction:
        """A polynomial from {exponent tuple: integer coefficient}."""
        return RationalFunction(self, self.ctx.from_dict(dict(terms)), self._one_poly)


def _reduced(K: RationalField, num, den) -> RationalFunction:
    g = num.gcd(den)
    if not g.is_one():
        num, den = num / g, den / g
    if den.leading_coefficient() < 0:
        num, den = -num, -den
    return RationalFunction(K, num, den)


class RationalFunction:
    __slots__ = ("K", "denom", "numer")

    def __init__(self, K: RationalField, numer, denom):
        self.K, self.numer, self.denom = K, numer, denom

    def _coerce(self, other) -> RationalFunction:
        return other if isinstance(other, RationalFunction) else self.K(other)

    def __bool__(self) -> bool:
        return not self.numer.is_zero()

    def __eq__(self, other) -> bool:
        other = self._coerce(other)
        return self.numer == other.numer and self.denom == other.denom

    __hash__ = None

    def __neg__(self):
        return RationalFunction(self.K, -self.numer, self.denom)

    def __add__(self, other):
        other = self._coerce(other)
        if not other:
            return self
        if not self:
            return other
        a, b, c, d = self.numer, self.denom, other.numer, other.denom
        if b == d:
            return _reduced(self.K, a + c, b)
        if b.is_one():
            return RationalFunction(self.K, a * d + c, d)
        if d.is_one():
            return RationalFunction(self.K, a + c * b, b)
        g = b.gcd(d)
        if g.is_one():
            return RationalFunction(self.K, a * d + b * c, b * d)
        b_g, d_g = b / g, d / g
        num = a * d_g + c * b_g
        h = num.gcd(g)  # the only common factor left is inside g (Henrici)
        if not h.is_one():
            num, g = num / h, g / h
        return RationalFunction(self.K, num, b_g * d_g * g)

    __radd__ = __add__

    def __sub__(self, other):
        return self + (-self._coerce(other))

    def __rsub__(self, other):
        return self._coerce(other) - self

    def __mul__(self, other):
        other = self._coerce(other)
        if not self or not other:
            return self.K.zero
        a, b, c, d = self.numer, self.denom, other.numer, other.denom
        g1, g2 = a.gcd(d), c.gcd(b)
        if not g1.is_one():
            a, d = a / g1, d / g1
        if not g2.is_one():
            c, b = c / g2, b / g2
        return RationalFunction(self.K, a * c, b * d)

    __rmul__ = __mul__

    def inverse(self):
        if not self:
            raise ZeroDivisionError("division by the zero rational function")
        num, den = self.denom, self.numer
        if den.leading_coefficient() < 0:
            num, den = -num, -den
        return RationalFunction(self.K, num, den)

    def __truediv__(self, other):
        return self * self._coerce(other).inverse()

    def __rtruediv__(self, other):
        return self._coerce(other) * self.inverse()

    def __pow__(self, n: int):
        if n < 0:
            return self.inverse() ** -n
        return RationalFunction(self.K, self.numer ** n, self.denom ** n)

    def diff(self, i: int):
        """∂/∂x_i."""
        a, b = self.numer, self.denom
        da = a.derivative(i)
        if b.is_constant():
            return _reduced(self.K, da, b) if not da.is_zero() else self.K.zero
        db = b.derivative(i)
        if db.is_zero():
            return _reduced(self.K, da, b)
        # (a/b)' = (a' b − a b') / b²; with b = g·r, g = gcd(b, b'), the result is (a' r − a b'/g) / (b r)
        g = b.gcd(db)
        r, dbg = b / g, db / g
        return _reduced(self.K, da * r - a * dbg, b * r)

    def __repr__(self) -> str:
        return f"({self.numer.str()})/({self.denom.str()})"
