"""Check a network's Fisher-vector product or Gauss–Newton matrix against symgeo's exact Jᵀ F J.

A network whose outputs give the parameters ξ(x, w) of a declared family has the Fisher (= generalised
Gauss–Newton) matrix G(w) = (1/N) Σᵢ Jᵢᵀ F(ξᵢ) Jᵢ, Jᵢ = ∂ξ(xᵢ, w)/∂w, F the family's Fisher metric. The
reference here takes F from symgeo's exact formula (lambdified by SymPy in float64, not symgeo's
generated code) and J from torch.func (jvp then vjp), so it is independent of any FVP or K-FAC code.

    from symgeo.testing import assert_fvp_matches
    assert_fvp_matches(my_fvp, model, x, "poisson", to_params=lambda out: (out[:, 0].exp(),))

Imported lazily: symgeo does not need torch.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp
import torch
from torch.func import functional_call, jvp, vjp

from .errors import InvalidArgumentError
from .geometry import Geometry
from .load import as_family


def _parameters(model: torch.nn.Module) -> dict:
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat(vector: torch.Tensor, like: dict) -> dict:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = vector[start:start + t.numel()].reshape(t.shape).to(t.dtype)
        start += t.numel()
    return out


class _Head:
    """ξ(w) for the batch, and F(ξ) per example from the family's exact Fisher."""

    def __init__(self, model, inputs, family, to_params, chart):
        fam = as_family(family, chart)
        self.family = fam
        fisher = Geometry(fam).fisher
        if fisher.free_symbols - set(fam.params):
            raise InvalidArgumentError(
                f"{fam.name}: give values to its fixed symbols (e.g. '{fam.name}:n=10')"
            )
        self._fisher = sp.lambdify(fam.params, fisher, "numpy")
        self.model, self.inputs, self.weights = model, inputs, _parameters(model)
        self.to_params = to_params or (lambda out: tuple(out[:, i] for i in range(fam.n)))

    def params(self, weights: dict) -> torch.Tensor:
        """(N, n): the family's parameters for each example."""
        xi = self.to_params(functional_call(self.model, weights, (self.inputs,)))
        return torch.stack([t.reshape(-1) for t in xi], dim=1)

    def fisher_at(self, xi: torch.Tensor) -> torch.Tensor:
        """(N, n, n) exact Fisher matrices at each example's parameters."""
        values = xi.detach().double().cpu().numpy()
        mats = np.array([np.array(self._fisher(*row), dtype=float) for row in values])
        if not np.all(np.isfinite(mats)):
            raise InvalidArgumentError(f"{self.family.name}: the network's outputs leave the family's domain "
                                       f"(the exact Fisher is not finite there); check to_params")
        return torch.as_tensor(mats, dtype=xi.dtype, device=xi.device)

    def product(self, vector: torch.Tensor) -> torch.Tensor:
        """G v = (1/N) Σ Jᵢᵀ F(ξᵢ) Jᵢ v."""
        xi, jv = jvp(self.params, (self.weights,), (_unflat(vector, self.weights),))
        u = torch.einsum("nij,nj->ni", self.fisher_at(xi), jv) / xi.shape[0]
        _, pullback = vjp(self.params, self.weights)
        return _flat(pullback(u)[0].values())


def exact_ggn(
    model: torch.nn.Module, inputs: torch.Tensor, family, *, to_params=None, chart=None
) -> torch.Tensor:
    """The dense (P, P) matrix (1/N) Σ Jᵢᵀ F(ξᵢ) Jᵢ over the model's trainable parameters, in
    named_parameters order (for small models: compare a K-FAC factor's Kronecker product or a block)."""
    head = _Head(model, inputs, family, to_params, chart)
    size = sum(t.numel() for t in head.weights.values())
    dtype = next(iter(head.weights.values())).dtype
    eye = torch.eye(size, dtype=dtype)
    return torch.stack([head.product(eye[i]) for i in range(size)], dim=1)


def assert_fvp_matches(
    fvp,
    model: torch.nn.Module,
    inputs: torch.Tensor,
    family,
    *,
    to_params=None,
    chart=None,
    rtol: float = 1e-6,
    n_vectors: int = 3,
    seed: int = 0,
) -> int:
    """Raise AssertionError unless fvp(v) (v flat over the trainable parameters in named_parameters order)
    equals the exact G v for seeded random v; returns the number of vectors compared."""
    head = _Head(model, inputs, family, to_params, chart)
    generator = torch.Generator().manual_seed(seed)
    like = next(iter(head.weights.values()))
    size = sum(t.numel() for t in head.weights.values())
    for k in range(n_vectors):
        v = torch.randn(size, generator=generator, dtype=like.dtype).to(like.device)
        expected = head.product(v)
        got = torch.as_tensor(fvp(v.clone()), dtype=expected.dtype, device=expected.device).reshape(-1)
        if got.shape != expected.shape:
            raise AssertionError(
                f"Fisher-vector product for {head.family.name}: got shape {tuple(got.shape)}, "
                f"expected {tuple(expected.shape)}"
            )
        error = float(torch.linalg.vector_norm(got - expected))
        scale = float(torch.linalg.vector_norm(expected))
        if not math.isfinite(float(got.abs().sum())) or error > rtol * scale:
            worst = int(torch.argmax((got - expected).abs()))
            name, offset = _entry_name(head.weights, worst)
            raise AssertionError(
                f"Fisher-vector product for a {head.family.name} head, vector {k} (seed {seed}): "
                f"relative error {error / scale if scale else math.inf:.3g} > rtol {rtol:g}; "
                f"worst entry {name}{offset}: got "
                f"{float(got[worst])!r}, exact Jᵀ F J v gives {float(expected[worst])!r}"
            )
    return n_vectors


def _entry_name(weights: dict, index: int) -> tuple[str, list]:
    for name, t in weights.items():
        if index < t.numel():
            return name, [int(i) for i in np.unravel_index(index, tuple(t.shape))]
        index -= t.numel()
    return "?", []
