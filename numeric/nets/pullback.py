"""The output distribution's exact Fisher pulled back through a network: the generalized Gauss–Newton matrix

    G = (1/B) Σ_b J_bᵀ F(ξ_b) J_b  (+ λI),      J_b = ∂ξ_b/∂w,  F generated from symgeo,

as a matrix-vector product (conjugate gradient: natural gradient, TRPO) or as a dense matrix (small
networks). J comes from torch.func (`GaussNewton.of`) or from a network's own J v and Jᵀ u products
(`GaussNewton(jvp, vjp, ...)`, e.g. a hand linearization on cached activations)."""
from __future__ import annotations

import torch
from torch.func import jacfwd, jacrev, jvp, vjp


class GaussNewton:
    """v ↦ G v for ξ of shape (B, ..., n) and F of shape (B, ..., n, n)."""

    def __init__(self, jvp_fn, vjp_fn, fisher: torch.Tensor, damping: float = 0.0, outputs=None,
                 weights=None):
        self._jvp, self._vjp = jvp_fn, vjp_fn
        self.fisher = fisher
        self.batch = fisher.shape[0]
        self.damping = damping
        self._outputs, self._weights = outputs, weights

    @classmethod
    def of(cls, outputs, weights: torch.Tensor, fisher_of, damping: float = 0.0) -> GaussNewton:
        """G of ξ = outputs(weights) (a function of the flat weights), F = fisher_of(ξ)."""
        with torch.enable_grad():
            xi, pullback = vjp(outputs, weights)
        fisher = fisher_of(xi.detach())

        def forward(v):
            with torch.enable_grad():
                return jvp(outputs, (weights,), (v,))[1]
        return cls(forward, lambda u: pullback(u)[0], fisher, damping, outputs, weights)

    def matvec(self, v: torch.Tensor):
        with torch.no_grad():
            u = torch.einsum("...ij,...j->...i", self.fisher, self._jvp(v)) / self.batch
            return _add_damping(self._vjp(u), v, self.damping)

    __call__ = matvec

    def matrix(self) -> torch.Tensor:
        """G as a dense P × P matrix from the full Jacobian (forward mode when the weights are fewer)."""
        if self._outputs is None:
            raise ValueError("the dense matrix needs GaussNewton.of(outputs, weights, ...)")
        weights, fisher = self._weights, self.fisher
        n = fisher.shape[-1]
        rows = fisher.numel() // (n * n)  # members: examples × factors
        jacobian = jacfwd if len(weights) <= rows else jacrev
        with torch.enable_grad():
            jac = jacobian(self._outputs)(weights).reshape(rows, n, -1)
        blocks = fisher.reshape(rows, n, n)
        matrix = torch.einsum("rip,rij,rjq->pq", jac, blocks, jac) / self.batch
        return matrix + self.damping * torch.eye(len(weights), dtype=weights.dtype, device=weights.device)


def _add_damping(product, v, damping: float):
    return product + damping * v if damping else product
