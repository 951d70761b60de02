"""Geodesic equations: ẍ^k = −Γ^k_ij ẋ^i ẋ^j, velocities named v_<param>."""
from __future__ import annotations

import sympy as sp


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
                if gamma[k, i, j] != 0:  # Γ arrives factored; a Mul of ≥ 3 factors keeps it so
                    terms.append(sp.Mul(-1 if i == j else -2, gamma[k, i, j], v[i], v[j]))
        out[p] = sp.Add(*terms)
    return out
