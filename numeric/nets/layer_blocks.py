"""K-FAC curvature blocks for layers other than Linear/Conv2d (those are `kronecker.KroneckerBlock`):

    nn.Embedding               A ⊗ G with A = diag(token frequencies) (one-hot inputs: A is diagonal),
                               G = E[g gᵀ] of the output gradients; inverted exactly in G's eigenbasis,
                               (d_G d_Aᵀ + λ)⁻¹, whatever the `inverse` setting (A needs no factoring)
    nn.LayerNorm, BatchNorm2d  the exact diagonal E[(∂ℓ_n/∂θ)²] of the per-example Fisher of the affine
                               weight and bias, from ∂ℓ_n/∂γ = Σ g ⊙ x̂ and ∂ℓ_n/∂β = Σ g (x̂ the
                               normalised input: the layer's batch statistics in training, running ones
                               in evaluation); preconditioned by (d + λ)⁻¹

Every block has the interface the optimizer and the preconditioner use: update, has_statistics,
has_inverse, refresh_inverse, inverse_shapes, directions (the preconditioned gradients per parameter)
and quadratic (½ Δᵀ F Δ, for the damping rule).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .linalg import robust_eigh

NORMS = (nn.LayerNorm, nn.BatchNorm2d)


def fold(state: dict, news, decay: float) -> bool:
    """Fold a batch's statistics [(key, tensor)] into their moving averages, all or none: a batch with a
    non-finite statistic (NaN or inf anywhere in its inputs or output gradients reaches it) leaves the
    state as it was and gives False. The statistics are small: checking them, not the activations, is
    cheap."""
    finite = finite_groups([[new for _, new in news]])[0]
    if finite:
        _moving_averages([(state, news)], decay)
    return finite


def fold_all(folds, decay: float) -> bool:
    """fold() for [(block, news)] of several layers with one finiteness check and one fused update for
    all of them (instead of two checks and a few operations per layer); each layer all or none; False
    when any layer kept its statistics."""
    finite = finite_groups([[new for _, new in news] for _, news in folds])
    _moving_averages([(block.state, news) for (block, news), ok in zip(folds, finite) if ok], decay)
    return all(finite)


def _moving_averages(updates, decay: float) -> None:
    """old ← decay·old + (1 − decay)·new for every [(state, news)], the existing ones in one fused call."""
    kept = [(state[key], new) for state, news in updates for key, new in news if key in state]
    if kept:
        torch._foreach_lerp_([old for old, _ in kept], [new for _, new in kept], 1 - decay)
    for state, news in updates:
        for key, new in news:
            if key not in state:
                state[key] = new.mul_(1 - decay)
        state["count"] = state.get("count", 0) + 1
        state["decay"] = decay


def finite_groups(groups) -> list:
    """For each group of tensors, whether every entry of every tensor in it is finite. One fused call takes
    every tensor's Euclidean norm (a NaN or an inf makes it non-finite; torch's fused max-norm, the obvious
    choice, is some 30 times slower on the CPU), read back once; a norm that is infinite only because the
    squares overflowed is told apart by testing that tensor's entries."""
    flat = [t for group in groups for t in group]
    if not flat:
        return [True] * len(groups)
    norms = torch._foreach_norm(flat, 2)
    if len({n.dtype for n in norms}) > 1:
        norms = [n.double() for n in norms]
    ok = torch.isfinite(torch.stack(norms)).tolist()
    ok = [fine or bool(torch.isfinite(t).all()) for fine, t in zip(ok, flat)]
    out, start = [], 0
    for group in groups:
        out.append(all(ok[start:start + len(group)]))
        start += len(group)
    return out


def _corrected(state: dict, key: str) -> torch.Tensor:
    return state[key] / (1 - state["decay"] ** state["count"])


class CurvatureBlock:
    """What every block shares: `statistics()` of a batch, folded into its moving averages by `update()`."""

    state: dict

    def statistics(self, inputs, output_grads, dtype, reduce=None, grad_scale: float = 1.0) -> list:
        raise NotImplementedError

    def update(self, inputs, output_grads, decay: float, dtype, reduce=None) -> bool:
        """Fold this batch's statistics into the moving averages (`reduce` averages them across processes);
        False, and nothing folded, when one is not finite."""
        return fold(self.state, self.statistics(inputs, output_grads, dtype, reduce), decay)


class EmbeddingBlock(CurvatureBlock):
    """diag(A) ⊗ G for an nn.Embedding (weight V × D, read as the D × V matrix of a Linear on one-hots)."""

    def __init__(self, module: nn.Embedding, state: dict, inverse=None):
        self.module, self.state = module, state
        self.weight = module.weight

    def statistics(self, inputs, output_grads, dtype, reduce=None, grad_scale: float = 1.0) -> list:
        """[(key, this batch's statistic)]: the token frequencies A and the output gradients' G (of the
        gradients times `grad_scale`)."""
        grads = output_grads if isinstance(output_grads, (list, tuple)) else [output_grads]
        tokens = inputs.reshape(-1)
        positions = len(tokens) // len(grads[0])
        counts = torch.bincount(tokens, minlength=self.module.num_embeddings).to(dtype) / len(tokens)
        gs = [g.reshape(-1, g.shape[-1]).to(dtype) for g in grads]
        stacked = gs[0] if len(gs) == 1 else torch.cat(gs)
        new_g = (stacked.T @ stacked).mul_(positions / len(tokens) * grad_scale**2)
        if reduce is not None:
            reduce(counts)
            reduce(new_g)
        return [("A", counts), ("G", new_g)]

    @property
    def has_statistics(self) -> bool:
        return "A" in self.state

    @property
    def has_inverse(self) -> bool:
        return "QG" in self.state

    def refresh_inverse(self, damping: float) -> None:
        self.state["QG"], self.state["dG"] = robust_eigh(_corrected(self.state, "G"))
        self.state["dA"] = _corrected(self.state, "A")

    def inverse_shapes(self) -> dict:
        v, d = self.module.num_embeddings, self.module.embedding_dim
        return {"QG": (d, d), "dG": (d,), "dA": (v,)}

    def directions(self, damping: float, weight_decay: float = 0.0) -> dict:
        weight = self.weight
        grad = weight.grad + weight_decay * weight if weight_decay else weight.grad
        qg = self.state["QG"]
        matrix = grad.T.to(qg.dtype)  # D × V
        scaled = (qg.T @ matrix) / (self.state["dG"][:, None] * self.state["dA"][None, :] + damping)
        return {weight: (qg @ scaled).T}

    def quadratic(self, changes: dict) -> float:
        delta = changes.get(self.weight)
        if delta is None or not self.has_statistics:
            return 0.0
        a, g = _corrected(self.state, "A"), _corrected(self.state, "G")
        m = delta.T.to(g.dtype)
        return 0.5 * float((m * (g @ m * a[None, :])).sum())


class DiagonalBlock(CurvatureBlock):
    """The exact diagonal Fisher of a LayerNorm's or BatchNorm2d's affine weight and bias."""

    def __init__(self, module: nn.Module, state: dict, inverse=None):
        self.module, self.state = module, state
        self.weight, self.bias = module.weight, module.bias

    def _params(self) -> list:
        return [p for p in (self.weight, self.bias) if p is not None]

    def per_example(self, inputs: torch.Tensor, grad: torch.Tensor) -> list:
        """[∂ℓ_n/∂γ, ∂ℓ_n/∂β] for each example n, from the layer's input and the gradient at its output."""
        m = self.module
        if isinstance(m, nn.LayerNorm):
            normed = F.layer_norm(inputs, m.normalized_shape, eps=m.eps)
            dims = tuple(range(1, inputs.dim() - len(m.normalized_shape)))
        else:  # one fused call: the batch's statistics in training, the running ones in evaluation
            batch_stats = m.training or m.running_mean is None
            normed = F.batch_norm(inputs, None if batch_stats else m.running_mean.to(inputs.dtype),
                                  None if batch_stats else m.running_var.to(inputs.dtype),
                                  training=batch_stats, eps=m.eps)
            dims = (2, 3)
        out = [(grad * normed).sum(dim=dims) if dims else grad * normed]
        if m.bias is not None:
            out.append(grad.sum(dim=dims) if dims else grad)
        return out

    def statistics(self, inputs, output_grads, dtype, reduce=None, grad_scale: float = 1.0) -> list:
        """[(key, this batch's statistic)]: the mean squared per-example gradient of each parameter (the
        output gradients times `grad_scale`)."""
        grads = output_grads if isinstance(output_grads, (list, tuple)) else [output_grads]
        x = inputs.to(dtype)
        news = None
        for g in grads:
            squares = [e.pow(2).mean(dim=0) for e in self.per_example(x, g.to(dtype))]
            news = squares if news is None else [a + b for a, b in zip(news, squares)]
        if reduce is not None:
            for n in news:
                reduce(n)
        return [(f"D{i}", n.mul_(grad_scale**2)) for i, n in enumerate(news)]

    @property
    def has_statistics(self) -> bool:
        return "D0" in self.state

    has_inverse = has_statistics

    def refresh_inverse(self, damping: float) -> None:
        pass  # (d + λ)⁻¹ needs no factoring

    def inverse_shapes(self) -> dict:
        return {}

    def directions(self, damping: float, weight_decay: float = 0.0) -> dict:
        out = {}
        for i, p in enumerate(self._params()):
            if p.grad is not None:
                grad = p.grad + weight_decay * p if weight_decay else p.grad
                out[p] = grad.to(self.state[f"D{i}"].dtype) / (_corrected(self.state, f"D{i}") + damping)
        return out

    def quadratic(self, changes: dict) -> float:
        if not self.has_statistics:
            return 0.0
        return sum(
            0.5
            * float((_corrected(self.state, f"D{i}") * changes[p].to(self.state[f"D{i}"].dtype) ** 2).sum())
            for i, p in enumerate(self._params())
            if p in changes
        )
