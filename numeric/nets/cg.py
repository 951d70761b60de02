"""Conjugate gradient on a matrix-free symmetric positive-definite operator (Fisher-vector products).

>>> import torch
>>> a = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
>>> x, info = conjugate_gradient(lambda v: a @ v, torch.tensor([1.0, 2.0], dtype=torch.float64))
>>> [round(v, 6) for v in x.tolist()], info.converged
([0.090909, 0.636364], True)
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CGInfo:
    iterations: int
    residual: float  # ‖b − A x‖ / ‖b‖
    converged: bool


def conjugate_gradient(matvec, b, max_iter: int = 50, tol: float = 1e-10):
    """x ≈ A⁻¹ b for a callable v ↦ A v (A symmetric positive definite); stops when ‖r‖ ≤ tol ‖b‖."""
    x = b.new_zeros(b.shape)
    r = b.clone()
    p = r.clone()
    rr = float(r @ r)
    target = tol ** 2 * rr
    for i in range(max_iter):
        if rr <= target:
            return x, CGInfo(i, (rr / max(float(b @ b), 1e-300)) ** 0.5, True)
        ap = matvec(p)
        curvature = float(p @ ap)
        if not curvature > 0:  # not positive definite along p (or NaN): stop with what we have
            return x, CGInfo(i, (rr / max(float(b @ b), 1e-300)) ** 0.5, False)
        step = rr / curvature
        x = x + step * p
        r = r - step * ap
        rr_new = float(r @ r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, CGInfo(max_iter, (rr / max(float(b @ b), 1e-300)) ** 0.5, rr <= target)
