"""Affine connections in coordinates, computed in a :class:`~symgeo.algebra.DiffField`.

Index conventions: first kind Γ_ij,k as [i][j][k]; second kind Γ^k_ij as [k][i][j].
Levi-Civita: Γ_ij,k = ½(∂_i g_jk + ∂_j g_ik − ∂_k g_ij), symmetric in i, j.
Amari's α-connection: Γ^(α)_ij,k = Γ_ij,k − (α/2) T_ijk; α = 1 is the e-, α = −1 the m-connection.
"""
from __future__ import annotations

from .algebra import DiffField


def christoffel_first(F: DiffField, g: list) -> list:
    n = len(g)
    dg = [[[F.d(g[j][k], i) for k in range(n)] for j in range(n)] for i in range(n)]  # dg[i][j][k]=∂_i g_jk
    half = F.K(1) / 2
    out = [[[None] * n for _ in range(n)] for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            for k in range(n):
                out[i][j][k] = out[j][i][k] = half * (dg[i][j][k] + dg[j][i][k] - dg[k][i][j])
    return out


def alpha_first(F: DiffField, first: list, skew: list, alpha) -> list:
    """Γ^(α)_ij,k = Γ_ij,k − (α/2) T_ijk (alpha a rational or a field element)."""
    n = len(first)
    a = F.to_field(alpha) / 2
    return [[[first[i][j][k] - a * skew[i][j][k] for k in range(n)] for j in range(n)] for i in range(n)]


def raise_index(ginv: list, first: list) -> list:
    """Γ^k_ij = g^{kl} Γ_ij,l."""
    n = len(ginv)
    K = first[0][0][0].K
    out = [[[None] * n for _ in range(n)] for _ in range(n)]
    for k in range(n):
        for i in range(n):
            for j in range(i, n):
                acc = K.sum(ginv[k][m] * first[i][j][m] for m in range(n) if ginv[k][m] and first[i][j][m])
                out[k][i][j] = out[k][j][i] = acc
    return out
