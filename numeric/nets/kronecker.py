"""The Kronecker-factored curvature block of a Linear or Conv2d layer (Martens & Grosse 2015; convolutions:
Grosse & Martens 2016) and the damped inverses of A ⊗ G.

For a layer s = W a (bias folded in as a last input of 1), per-example output gradients g:
    F_W ≈ A ⊗ G,   A = E[a aᵀ],   G = E[g gᵀ]      (Conv2d: a = im2col patches, G scaled by the T positions)
    preconditioned gradient  (A ⊗ G + λ)⁻¹ vec(∇W)  =  G⁻¹ ∇W A⁻¹   (with damping, below)
Damping: "eigen" adds λ to the eigenvalues of the Kronecker product, (d_G d_Aᵀ + λ), which is exact Tikhonov
damping of A ⊗ G; "cholesky" uses π-adjusted factored damping (A + π√λ)⁻¹, (G + √λ/π)⁻¹; "ekfac" keeps the
eigenbasis but replaces d_G d_Aᵀ by a moving average of the per-example gradients' second moments in that
basis (George et al. 2018), the exact diagonal of the Fisher there.

The block has the interface of numeric.nets.layer_blocks' other blocks (statistics, update, has_statistics,
has_inverse, refresh_inverse, inverse_shapes, directions, quadratic).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layer_blocks import fold
from .linalg import _cholesky, robust_eigh


# -- the damped inverse of A ⊗ G: one class per method, one interface ---------------------------------
class Inverse:
    """How a layer's damped (A ⊗ G + λ)⁻¹ is kept and applied. What it keeps lives in the layer's optimizer
    state under `keys` (so that state_dict() saves it); `shapes` lets another process receive it."""

    keys: tuple = ()

    def ready(self, state: dict) -> bool:
        return state.keys() >= set(self.keys)

    def refresh(self, state: dict, a: torch.Tensor, g: torch.Tensor, damping: float) -> None:
        raise NotImplementedError

    def shapes(self, n_a: int, n_g: int) -> dict:
        raise NotImplementedError

    def apply(self, state: dict, grad: torch.Tensor, damping: float) -> torch.Tensor:
        raise NotImplementedError


class EigenInverse(Inverse):
    """Exact Tikhonov damping of A ⊗ G in its eigenbasis: (d_G d_Aᵀ + λ)⁻¹."""

    keys = ("QA", "dA", "QG", "dG", "scale")

    def refresh(self, state, a, g, damping):
        state["QA"], state["dA"] = robust_eigh(a)
        state["QG"], state["dG"] = robust_eigh(g)
        state["scale"] = self._scale(state, damping)
        state["scale_damping"] = damping

    def shapes(self, n_a, n_g):
        return {"QA": (n_a, n_a), "dA": (n_a,), "QG": (n_g, n_g), "dG": (n_g,), "scale": (n_g, n_a)}

    def apply(self, state, grad, damping):
        scale = state["scale"] if state.get("scale_damping") == damping else self._scale(state, damping)
        qg, qa = state["QG"], state["QA"]  # torch.mm: a little less dispatch than @ for small blocks
        return torch.mm(torch.mm(qg, torch.mm(torch.mm(qg.T, grad), qa).mul_(scale)), qa.T)

    @staticmethod
    def _scale(state, damping):
        return 1 / (state["dG"][:, None] * state["dA"][None, :] + damping)


class EKFACInverse(Inverse):
    """K-FAC's eigenbasis with the eigenvalues d_G d_Aᵀ replaced by a moving average S of the per-example
    gradients' second moments in that basis (George et al. 2018): (S + λ)⁻¹."""

    keys = ("QA", "dA", "QG", "dG", "S")

    def refresh(self, state, a, g, damping):
        state["QA"], state["dA"] = robust_eigh(a)
        state["QG"], state["dG"] = robust_eigh(g)
        # a new basis: restart the rescaling from K-FAC's eigenvalues, refined by later batches
        state["S"] = state["dG"][:, None] * state["dA"][None, :]

    def shapes(self, n_a, n_g):
        return {"QA": (n_a, n_a), "dA": (n_a,), "QG": (n_g, n_g), "dG": (n_g,), "S": (n_g, n_a)}

    def apply(self, state, grad, damping):
        qa, qg = state["QA"], state["QG"]
        return torch.mm(torch.mm(qg, torch.mm(torch.mm(qg.T, grad), qa).div_(state["S"] + damping)), qa.T)


class CholeskyInverse(Inverse):
    """π-adjusted factored damping (Martens & Grosse 2015): (G + √λ/π)⁻¹ ∇W (A + π√λ)⁻¹."""

    keys = ("A_inv", "G_inv")

    def refresh(self, state, a, g, damping):
        pi = torch.sqrt((torch.trace(a) / len(a)) / (torch.trace(g) / len(g)).clamp_min(1e-30)).clamp(
            1e-4, 1e4
        )
        root = math.sqrt(damping)
        state["A_inv"] = torch.cholesky_inverse(_cholesky(a + pi * root * _eye_like(a)))
        state["G_inv"] = torch.cholesky_inverse(_cholesky(g + root / pi * _eye_like(g)))

    def shapes(self, n_a, n_g):
        return {"A_inv": (n_a, n_a), "G_inv": (n_g, n_g)}

    def apply(self, state, grad, damping):
        return torch.mm(torch.mm(state["G_inv"], grad), state["A_inv"])


def _eye_like(matrix: torch.Tensor) -> torch.Tensor:
    return torch.eye(len(matrix), dtype=matrix.dtype, device=matrix.device)


INVERSE_METHODS = {"eigen": EigenInverse, "cholesky": CholeskyInverse, "ekfac": EKFACInverse}
INVERSES = tuple(INVERSE_METHODS)


# -- curvature blocks: one precondition(grad, damping) interface -----------------------------------
class KroneckerBlock:
    """A ⊗ G for one Linear/Conv2d layer: its statistics and, through `inverse`, its damped inverse."""

    def __init__(self, module: nn.Module, state: dict, inverse: Inverse | str):
        self.module = module
        self.state = state
        self.inverse = INVERSE_METHODS[inverse]() if isinstance(inverse, str) else inverse

    def update(self, inputs: torch.Tensor, output_grads, decay: float, dtype, reduce=None) -> bool:
        """Fold this batch's A and G into the moving averages (`reduce` averages them across processes);
        False, and nothing folded, when a statistic is not finite."""
        return fold(self.state, self.statistics(inputs, output_grads, dtype, reduce), decay)

    def statistics(self, inputs: torch.Tensor, output_grads, dtype, reduce=None, grad_scale: float = 1.0
                   ) -> list:
        """[(key, this batch's statistic)]: A, G (and EKFAC's S). `output_grads` is one tensor of
        per-example gradients, or a list whose G contributions add up (the columns of F^{1/2} of the
        exact GGN); G and S are those of the gradients times `grad_scale` (scaling the small statistic,
        not the large gradients)."""
        grads = output_grads if isinstance(output_grads, (list, tuple)) else [output_grads]
        a = _activations(self.module, inputs, dtype)
        gs = [_output_grads(self.module, g, dtype) for g in grads]
        batch = len(grads[0])
        positions = len(a) // batch
        new_a = _second_moment(a, self.module.bias is not None)
        stacked = gs[0] if len(gs) == 1 else torch.cat(gs)  # Σ_j g_jᵀ g_j as one product
        # one example's gradient sums over its positions
        new_g = (stacked.T @ stacked).mul_(positions / len(a) * grad_scale**2)
        if reduce is not None:
            reduce(new_a)
            reduce(new_g)
        news = [("A", new_a), ("G", new_g)]
        if isinstance(self.inverse, EKFACInverse) and "QA" in self.state:
            new_s = sum(self._eigenbasis_second_moment(a, g, batch) for g in gs) * grad_scale**2
            if reduce is not None:
                reduce(new_s)
            news.append(("S", new_s))
        return news

    def _eigenbasis_second_moment(self, a, g, batch: int) -> torch.Tensor:
        """EKFAC's rescaling (George et al. 2018): E_b[(Q_Gᵀ ∇W_b Q_A)²], the exact diagonal of the Fisher in
        the Kronecker eigenbasis, from per-example gradients ∇W_b = Σ_t g_bt ã_btᵀ."""
        if self.module.bias is not None:
            a = torch.cat([a, a.new_ones(len(a), 1)], dim=1)
        u = (g @ self.state["QG"]).reshape(batch, -1, g.shape[1])
        v = (a @ self.state["QA"]).reshape(batch, -1, a.shape[1])
        return torch.einsum("bto,bti->boi", u, v).pow(2).mean(dim=0)

    @property
    def has_statistics(self) -> bool:
        return "A" in self.state

    @property
    def has_inverse(self) -> bool:
        return self.inverse.ready(self.state)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Bias-corrected A and G."""
        correction = 1 - self.state["decay"] ** self.state["count"]
        return self.state["A"] / correction, self.state["G"] / correction

    def refresh_inverse(self, damping: float) -> None:
        self.inverse.refresh(self.state, *self.factors(), damping)

    def inverse_shapes(self) -> dict:
        """Names and shapes of what refresh_inverse stores (to receive them from another process)."""
        return self.inverse.shapes(len(self.state["A"]), len(self.state["G"]))

    def precondition(self, grad: torch.Tensor, damping: float) -> torch.Tensor:
        """(A ⊗ G + damping)⁻¹ applied to the (out, in [+1]) gradient matrix."""
        return self.inverse.apply(self.state, grad.to(self.state["A"].dtype), damping)

    def directions(self, damping: float, weight_decay: float = 0.0) -> dict:
        """{parameter: preconditioned gradient} of the layer (weight decay added to the gradient first)."""
        matrix = gradient_matrix(self.module)
        if weight_decay:
            matrix = matrix + weight_decay * _as_matrix(self.module, self.module.weight, self.module.bias)
        weight, bias = _split(self.module, self.precondition(matrix, damping))
        return {self.module.weight: weight} | ({self.module.bias: bias} if bias is not None else {})

    def quadratic(self, changes: dict) -> float:
        """½ Δᵀ (A ⊗ G) Δ for the layer's parameter changes."""
        if not self.has_statistics or self.module.weight not in changes:
            return 0.0
        a, g = self.factors()
        delta = _as_matrix(self.module, changes[self.module.weight], changes.get(self.module.bias)).to(
            a.dtype
        )
        return 0.5 * float((delta * (g @ delta @ a)).sum())


def _activations(module: nn.Module, inputs: torch.Tensor, dtype) -> torch.Tensor:
    """Rows a (one per example and position), with a trailing 1 for the bias."""
    if isinstance(module, nn.Conv2d):
        patches = F.unfold(inputs, module.kernel_size, module.dilation, module.padding, module.stride)
        a = patches.transpose(1, 2).reshape(-1, patches.shape[1])
    else:
        a = inputs.reshape(-1, inputs.shape[-1])
    return a.to(dtype)


def _second_moment(a: torch.Tensor, bias: bool) -> torch.Tensor:
    """E[ã ãᵀ] for ã = (a, 1): small a padded with ones (one product), large a (a convolution's patches)
    not copied: the bias row is the mean of a."""
    if not bias or a.numel() <= 1 << 16:
        a = F.pad(a, (0, 1), value=1.0) if bias else a
        return (a.T @ a).div_(len(a))
    out = a.new_empty(a.shape[1] + 1, a.shape[1] + 1)
    torch.mm(a.T, a, out=out[:-1, :-1]).div_(len(a))
    mean = a.mean(dim=0)
    out[:-1, -1], out[-1, :-1], out[-1, -1] = mean, mean, 1.0
    return out


def _output_grads(module: nn.Module, grads: torch.Tensor, dtype) -> torch.Tensor:
    if isinstance(module, nn.Conv2d):
        return grads.permute(0, 2, 3, 1).reshape(-1, grads.shape[1]).to(dtype)
    return grads.reshape(-1, grads.shape[-1]).to(dtype)


def gradient_matrix(module: nn.Module) -> torch.Tensor:
    """∇W as (out, in·k·k), with ∇b as a last column."""
    return _as_matrix(module, module.weight.grad, None if module.bias is None else module.bias.grad)


def _split(module: nn.Module, matrix: torch.Tensor):
    weight = matrix[:, :-1] if module.bias is not None else matrix
    bias = matrix[:, -1] if module.bias is not None else None
    return weight.reshape(module.weight.shape), bias


def _as_matrix(module: nn.Module, weight: torch.Tensor, bias) -> torch.Tensor:
    matrix = weight.reshape(weight.shape[0], -1)
    return torch.cat([matrix, bias[:, None]], dim=1) if module.bias is not None else matrix
