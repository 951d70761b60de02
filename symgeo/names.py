"""Names of the symbols symgeo introduces (the α of the α-connections, geodesic velocities, the two
points of a divergence), kept apart from the family's own: a parameter called `alpha` or `v_mu` is
not confused with them.

>>> import sympy as sp
>>> fresh("alpha", {"alpha", "beta"})
alpha_
"""
from __future__ import annotations

import sympy as sp


def fresh(base: str, taken, **assumptions) -> sp.Symbol:
    """Symbol(base), with underscores appended until its name is not in `taken`."""
    name = base
    while name in taken:
        name += "_"
    return sp.Symbol(name, **assumptions)


def fresh_many(bases, taken, **assumptions) -> tuple:
    """fresh() for several names, apart from `taken` and from one another."""
    taken = set(taken)
    out = []
    for base in bases:
        symbol = fresh(base, taken, **assumptions)
        taken.add(symbol.name)
        out.append(symbol)
    return tuple(out)


def names_of(family) -> set:
    """Every name a family's expressions may use: parameters, variables, fixed symbols."""
    symbols = set(family.params) | set(family.variables) | {v for v in family.fixed.values()
                                                             if isinstance(v, sp.Symbol)}
    return {s.name for s in symbols}
