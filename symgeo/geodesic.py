"""Geodesic equations: ẍ^k = −Γ^k_ij ẋ^i ẋ^j, velocities named v_<param>."""
from __future__ import annotations

import sympy as sp

from .simplify import factored


def velocity_symbols(params) -> tuple:
    return tuple(sp.Symbol(f"v_{p}", real=True) for p in params)


def geodesic_equations(params, gamma) -> dict:
    """{param: second derivative} from Γ^k_ij given as an indexable [k][i][j]."""
    v = velocity_symbols(params)
    n = len(params)
    out = {}
    for k, p in enumerate(params):
        terms = []
        for i in range(n):
            for j in range(i, n):
                coeff = gamma[k, i, j] * (1 if i == j else 2)
                if coeff != 0:
                    terms.append(-factored(coeff) * v[i] * v[j])
        out[p] = sp.Add(*terms)
    return out
