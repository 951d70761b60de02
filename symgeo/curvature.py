"""Curvature of a torsion-free connection Γ^k_ij ([k][i][j]), in a DiffField.

R^ρ_σμν = ∂_μ Γ^ρ_νσ − ∂_ν Γ^ρ_μσ + Γ^ρ_μλ Γ^λ_νσ − Γ^ρ_νλ Γ^λ_μσ   (the sphere has R > 0)
Ric_σν = R^ρ_σρν,   R = g^{σν} Ric_σν,   R_ρσμν = g_ρλ R^λ_σμν,
Gaussian curvature of a 2-parameter family K = R_0101 / det g (= R/2 for the Levi-Civita connection).
"""
from __future__ import annotations

from .algebra import DiffField


def _products(gamma, rho, mu, nu, sigma, n):
    terms = []
    for lam in range(n):
        a, b = gamma[rho][mu][lam], gamma[lam][nu][sigma]
        if a and b:
            terms.append(a * b)
        c, d = gamma[rho][nu][lam], gamma[lam][mu][sigma]
        if c and d:
            terms.append(-(c * d))
    return gamma[0][0][0].K.sum(terms)


def riemann_up(F: DiffField, gamma: list) -> list:
    """R^ρ_σμν as [ρ][σ][μ][ν] (antisymmetric in μ, ν)."""
    n = len(gamma)
    zero = F.K.zero
    out = [[[[zero] * n for _ in range(n)] for _ in range(n)] for _ in range(n)]
    for rho in range(n):
        for sigma in range(n):
            for mu in range(n):
                for nu in range(mu + 1, n):
                    val = (F.d(gamma[rho][nu][sigma], mu) - F.d(gamma[rho][mu][sigma], nu)
                           + _products(gamma, rho, mu, nu, sigma, n))
                    out[rho][sigma][mu][nu] = val
                    out[rho][sigma][nu][mu] = -val
    return out


def lower_first(g: list, up: list) -> list:
    n = len(g)
    zero = up[0][0][0][0] * 0
    out = [[[[zero] * n for _ in range(n)] for _ in range(n)] for _ in range(n)]
    for a in range(n):
        for b in range(n):
            for c in range(n):
                for d in range(n):
                    out[a][b][c][d] = zero.K.sum(g[a][lam] * up[lam][b][c][d] for lam in range(n)
                                                 if g[a][lam] and up[lam][b][c][d])
    return out


def ricci(F: DiffField, gamma: list) -> list:
    """Ric_σν = ∂_ρ Γ^ρ_νσ − ∂_ν Γ^ρ_ρσ + Γ^ρ_ρλ Γ^λ_νσ − Γ^ρ_νλ Γ^λ_ρσ (no full Riemann needed)."""
    n = len(gamma)
    trace = [sum((gamma[r][r][s] for r in range(n)), F.K.zero) for s in range(n)]  # Γ^ρ_ρσ
    out = [[None] * n for _ in range(n)]
    for sigma in range(n):
        for nu in range(n):
            acc = F.K.zero
            for rho in range(n):
                acc += F.d(gamma[rho][nu][sigma], rho) + _products(gamma, rho, rho, nu, sigma, n)
            acc -= F.d(trace[sigma], nu)
            out[sigma][nu] = acc
    return out


def scalar(F: DiffField, ginv: list, ric: list):
    n = len(ginv)
    return F.K.sum(ginv[a][b] * ric[a][b] for a in range(n) for b in range(n) if ginv[a][b] and ric[a][b])
