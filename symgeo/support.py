"""Supports of families: where the variable lives, and how to sum or integrate over it."""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class _Bounds:
    lo: sp.Expr
    hi: sp.Expr

    def __post_init__(self):
        object.__setattr__(self, "lo", sp.sympify(self.lo))
        object.__setattr__(self, "hi", sp.sympify(self.hi))

    @property
    def free_symbols(self) -> set:
        return self.lo.free_symbols | self.hi.free_symbols


@dataclass(frozen=True)
class Interval(_Bounds):
    """A continuous scalar support [lo, hi] (endpoints may be ±oo)."""

    lo: sp.Expr = -sp.oo
    hi: sp.Expr = sp.oo
    discrete = False

    def describe(self) -> str:
        return f"({self.lo}, {self.hi})"


@dataclass(frozen=True)
class Integers(_Bounds):
    """A discrete scalar support {lo, lo+1, ..., hi} (hi may be oo or a fixed symbol)."""

    lo: sp.Expr = sp.Integer(0)  # noqa: RUF009 (SymPy numbers are immutable)
    hi: sp.Expr = sp.oo
    discrete = True

    def describe(self) -> str:
        return f"{{{self.lo}, ..., {self.hi}}}"


@dataclass(frozen=True)
class FinitePoints:
    """A finite set of points of a vector variable (e.g. one-hot vectors of a categorical)."""

    points: tuple
    discrete = True

    @property
    def free_symbols(self) -> set:
        return set().union(*(sp.Tuple(*p).free_symbols for p in self.points))

    def describe(self) -> str:
        return f"{len(self.points)} points"


@dataclass(frozen=True)
class Simplex:
    """The open probability simplex in its first `dim` coordinates (the last is 1 - sum)."""

    dim: int
    discrete = False
    free_symbols = frozenset()

    def describe(self) -> str:
        return f"simplex of dimension {self.dim}"


@dataclass(frozen=True)
class Box:
    """A product of continuous intervals, one per component of a vector variable."""

    intervals: tuple
    discrete = False

    @property
    def free_symbols(self) -> set:
        return set().union(*(iv.free_symbols for iv in self.intervals))

    def describe(self) -> str:
        return " x ".join(iv.describe() for iv in self.intervals)


@dataclass(frozen=True)
class Region:
    """Several scalar variables, each over an Interval or Integers whose ends may depend on the
    variables after it: `ranges` ((variable, range), ...) innermost first. 0 < x < y is
    ((x, Interval(0, y)), (y, Interval(0, oo))); counts with x + y ≤ n are
    ((x, Integers(0, n - y)), (y, Integers(0, n)))."""

    ranges: tuple

    @property
    def discrete(self) -> bool:
        return all(isinstance(r, Integers) for _, r in self.ranges)

    @property
    def variables(self) -> tuple:
        return tuple(v for v, _ in self.ranges)

    @property
    def free_symbols(self) -> set:
        return set().union(*(r.free_symbols for _, r in self.ranges)) - set(self.variables)

    def describe(self) -> str:
        return ", ".join(f"{v} in {r.describe()}" for v, r in self.ranges)


Support = Interval | Integers | FinitePoints | Simplex | Box | Region
