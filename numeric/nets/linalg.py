"""Factorizations of K-FAC's factors that survive ill-conditioned or not-quite-symmetric statistics."""
from __future__ import annotations

import warnings

import torch


def robust_eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of a symmetric PSD factor: retried in float64, else the diagonal (warned)."""
    symmetric = (matrix + matrix.T) / 2
    for dtype in (symmetric.dtype, torch.float64):
        try:
            values, vectors = torch.linalg.eigh(symmetric.to(dtype))
            if torch.isfinite(values).all() and torch.isfinite(vectors).all():
                if dtype != symmetric.dtype:
                    warnings.warn(
                        "K-FAC: eigh failed in the factor's precision; used float64",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                return vectors.to(matrix.dtype).contiguous(), values.clamp_min(0).to(matrix.dtype)
        except (RuntimeError, torch.linalg.LinAlgError):
            continue
    warnings.warn("K-FAC: eigh failed in float64 too; falling back to the factor's diagonal", RuntimeWarning,
                  stacklevel=3)
    diagonal = torch.nan_to_num(torch.diagonal(symmetric), nan=0.0, posinf=0.0).clamp_min(0)
    return torch.eye(len(matrix), dtype=matrix.dtype, device=matrix.device), diagonal


def _cholesky(matrix: torch.Tensor) -> torch.Tensor:
    try:
        return torch.linalg.cholesky(matrix)
    except (RuntimeError, torch.linalg.LinAlgError):
        warnings.warn(
            "K-FAC: Cholesky failed; retried in float64 with extra jitter", RuntimeWarning, stacklevel=3
        )
        m = matrix.double()
        jitter = 1e-6 * torch.diagonal(m).abs().mean().clamp_min(1e-12)
        return torch.linalg.cholesky(m + jitter * torch.eye(len(m), dtype=m.dtype, device=m.device)).to(
            matrix.dtype
        )
