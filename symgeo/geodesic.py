"""Geodesic equations: ẍ^k = −Γ^k_ij ẋ^i ẋ^j, velocities named v_<param>."""
from __future__ import annotations

import sympy as sp

from .names import fresh_many


def velocity_symbols(params) -> tuple:
    """v_<param> for each parameter, renamed apart from the parameters (a parameter v_mu beside mu)."""
    return fresh_many([f"v_{p}" for p in params], {str(p) for p in params}, real=True)


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
