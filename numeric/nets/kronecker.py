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

from .layer_blocks import CurvatureBlock
from .linalg import _cholesky, robust_eigh


# -- the damped inverse of A ⊗ G: one class per method, one interface ---------------------------------
class Inverse:
    """How a layer's damped (A ⊗ G + λ)⁻¹ is kept and applied. What it keeps lives in the layer's optimizer
    state under `keys` (so that state_dict() saves it); `shapes` lets another process receive it."""

    keys: tuple = ()

    def __init__(self):
        self._required = frozenset(self.keys)  # ready() is asked every step

    def ready(self, state: dict) -> bool:
        return self._required <= state.keys()

    def refresh(self, state: dict, a: torch.Tensor, g: torch.Tensor, damping: float) -> None:
        raise NotImplementedError

    def shapes(self, n_a: int, n_g: int) -> dict:
        raise NotImplementedError

    def apply(self, state: dict, grad: torch.Tensor, damping: float) -> torch.Tensor:
        """The preconditioned (out, in [+1]) gradient matrix."""
        raise NotImplementedError

    def apply_split(self, state: dict, weight: torch.Tensor, bias: torch.Tensor | None, damping: float):
        """apply() to [∇W | ∇b] given as the (out, in) weight matrix and the bias vector (None: no bias),
        returned the same way: (weight matrix, bias)."""
        if bias is None:
            return self.apply(state, weight, damping), None
        update = self.apply(state, torch.cat([weight, bias[:, None]], dim=1), damping)
        return update[:, :-1], update[:, -1]


class _EigenbasisInverse(Inverse):
    """(A ⊗ G + λ)⁻¹ as Q_G [(Q_Gᵀ ∇ Q_A) ∘ scale] Q_Aᵀ, scale one number per eigenvector pair."""

    def scaling(self, state: dict, damping: float) -> torch.Tensor:
        """The (out, in [+1]) scale: the damped inverse's eigenvalues, one per eigenvector pair."""
        raise NotImplementedError

    def apply(self, state, grad, damping):
        qa = state["QA"]  # torch.mm: a little less dispatch than @ for small blocks
        return torch.mm(self._rotate_scale(state, torch.mm(grad, qa), damping), qa.T)

    def _rotate_scale(self, state, rotated, damping):
        """Q_G [(Q_Gᵀ X) ∘ scale] for X = ∇ Q_A (in place). With one output Q_G = ±1 and this is X ∘ scale
        (a regression layer's two products saved)."""
        qg = state["QG"]
        if qg.shape[0] == 1:
            return rotated.mul_(self.scaling(state, damping))
        return torch.mm(qg, torch.mm(qg.T, rotated).mul_(self.scaling(state, damping)))

    def apply_split(self, state, weight, bias, damping):
        """With a bias, [∇W | ∇b] Q_A = ∇W Q_A[:-1] + ∇b Q_A[-1] and the result's two parts are Y Q_A[:-1]ᵀ
        and Y Q_A[-1]: neither [∇W | ∇b] nor a copy of the weight's part is made (a third fewer operations
        for a small layer, whose step is the operations' fixed cost)."""
        if bias is None:
            return self.apply(state, weight, damping), None
        qa = state["QA"]
        top, last = qa[:-1], qa[-1]
        y = self._rotate_scale(state, torch.addr(torch.mm(weight, top), bias, last), damping)
        return torch.mm(y, top.T), torch.mv(y, last)


class EigenInverse(_EigenbasisInverse):
    """Exact Tikhonov damping of A ⊗ G in its eigenbasis: (d_G d_Aᵀ + λ)⁻¹."""

    keys = ("QA", "dA", "QG", "dG", "scale")

    def refresh(self, state, a, g, damping):
        state["QA"], state["dA"] = robust_eigh(a)
        state["QG"], state["dG"] = robust_eigh(g)
        state["scale"] = self._damped(state, damping)
        state["scale_damping"] = damping

    def shapes(self, n_a, n_g):
        return {"QA": (n_a, n_a), "dA": (n_a,), "QG": (n_g, n_g), "dG": (n_g,), "scale": (n_g, n_a)}

    def scaling(self, state, damping):
        return state["scale"] if state.get("scale_damping") == damping else self._damped(state, damping)

    @staticmethod
    def _damped(state, damping):
        return 1 / (state["dG"][:, None] * state["dA"][None, :] + damping)


class EKFACInverse(_EigenbasisInverse):
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

    def scaling(self, state, damping):
        return 1 / (state["S"] + damping)


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
# a convolution's statistics build at most about this many patch entries at a time: on the CPU, temporaries of
# half a megabyte are reused from the heap, larger ones are fresh pages each time (the first touch of each
# page faults); on an accelerator the caching allocator reuses anything, so the bound only limits memory
PATCH_ENTRIES = {"cpu": 1 << 17}
PATCH_ENTRIES_ELSEWHERE = 1 << 24


# -- curvature blocks: one precondition(grad, damping) interface -----------------------------------
class KroneckerBlock(CurvatureBlock):
    """A ⊗ G for one Linear/Conv2d layer: its statistics and, through `inverse`, its damped inverse."""

    def __init__(self, module: nn.Module, state: dict, inverse: Inverse | str):
        self.module = module
        self.state = state
        self.inverse = INVERSE_METHODS[inverse]() if isinstance(inverse, str) else inverse
        # read every step, so kept here rather than looked up through nn.Module; a bias frozen when the block
        # is made is not part of it (A has no row of ones)
        self.weight = module.weight
        self.bias = module.bias if module.bias is not None and module.bias.requires_grad else None

    def statistics(self, inputs: torch.Tensor, output_grads, dtype, reduce=None, grad_scale: float = 1.0
                   ) -> list:
        """[(key, this batch's statistic)]: A, G (and EKFAC's S). `output_grads` is one tensor of
        per-example gradients, or a list whose G contributions add up (the columns of F^{1/2} of the
        exact GGN); G and S are those of the gradients times `grad_scale` (scaling the small statistic,
        not the large gradients). A convolution's patches are built a few examples at a time
        (PATCH_ENTRIES)."""
        grads = output_grads if isinstance(output_grads, (list, tuple)) else [output_grads]
        batch = len(grads[0])
        ekfac = isinstance(self.inverse, EKFACInverse) and "QA" in self.state
        sums, rows, step = [], 0, self._examples_per_chunk(grads[0])
        for start in range(0, batch, step):
            part = slice(start, start + step)
            a = _activations(self.module, inputs[part], dtype)
            gs = [_output_grads(self.module, g[part], dtype) for g in grads]
            stacked = gs[0] if len(gs) == 1 else torch.cat(gs)  # Σ_j g_jᵀ g_j as one product
            chunk = [_moment_sum(a, self.bias is not None), stacked.T @ stacked]
            if ekfac:
                examples = min(step, batch - start)
                chunk.append(sum(self._eigenbasis_squares(a, g, examples) for g in gs))
            sums = chunk if not sums else [total.add_(c) for total, c in zip(sums, chunk)]
            rows += len(a)
        # one example's gradient sums over its positions
        news = [("A", sums[0].div_(rows)), ("G", sums[1].mul_((rows // batch) / rows * grad_scale**2))]
        if ekfac:
            news.append(("S", sums[2].mul_(grad_scale**2 / batch)))
        if reduce is not None:
            for _, new in news:
                reduce(new)
        return news

    def _examples_per_chunk(self, grads: torch.Tensor) -> int:
        """All of them, but for a convolution as many as keep its patch matrix within PATCH_ENTRIES (on the
        CPU a large temporary costs more than the products: fresh pages, each faulted in)."""
        if not isinstance(self.module, nn.Conv2d):
            return len(grads)
        budget = PATCH_ENTRIES.get(grads.device.type, PATCH_ENTRIES_ELSEWHERE)
        per_example = self.weight.shape[1:].numel() * grads.shape[2:].numel()  # patch length × positions
        return max(1, min(len(grads), budget // per_example))

    def _eigenbasis_squares(self, a, g, batch: int) -> torch.Tensor:
        """EKFAC's rescaling (George et al. 2018) summed over examples: Σ_b (Q_Gᵀ ∇W_b Q_A)², whose mean is
        the exact diagonal of the Fisher in the Kronecker eigenbasis, from per-example gradients
        ∇W_b = Σ_t g_bt ã_btᵀ."""
        if self.bias is not None:
            a = torch.cat([a, a.new_ones(len(a), 1)], dim=1)
        u = (g @ self.state["QG"]).reshape(batch, -1, g.shape[1])
        v = (a @ self.state["QA"]).reshape(batch, -1, a.shape[1])
        return torch.einsum("bto,bti->boi", u, v).pow(2).sum(dim=0)

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
        """{parameter: preconditioned gradient} of the layer (weight decay added to the gradient first). A
        bias without a gradient (frozen after the block was made) counts as a zero gradient and gets no
        direction."""
        weight, bias = self.weight, self.bias
        dtype = self.state["A"].dtype
        matrix = weight.grad.reshape(weight.shape[0], -1)
        bias_grad = None if bias is None else bias.grad
        if bias is not None and bias_grad is None:
            bias, bias_grad = None, torch.zeros_like(bias)
        if weight_decay:
            matrix = matrix + weight_decay * weight.reshape(weight.shape[0], -1)
            bias_grad = bias_grad if bias is None else bias_grad + weight_decay * bias
        if matrix.dtype != dtype:
            matrix = matrix.to(dtype)
            bias_grad = None if bias_grad is None else bias_grad.to(dtype)
        update, bias_update = self.inverse.apply_split(self.state, matrix, bias_grad, damping)
        if bias is None:
            return {weight: update.reshape(weight.shape)}
        return {weight: update.reshape(weight.shape), bias: bias_update}

    def quadratic(self, changes: dict) -> float:
        """½ Δᵀ (A ⊗ G) Δ for the layer's parameter changes."""
        if not self.has_statistics or self.weight not in changes:
            return 0.0
        a, g = self.factors()
        bias = None if self.bias is None else changes.get(self.bias, torch.zeros_like(self.bias))
        delta = _as_matrix(changes[self.weight], bias).to(a.dtype)
        return 0.5 * float((delta * (g @ delta @ a)).sum())


def _activations(module: nn.Module, inputs: torch.Tensor, dtype) -> torch.Tensor:
    """Rows a (one per example and position), with a trailing 1 for the bias."""
    if isinstance(module, nn.Conv2d):
        padding = module.padding
        if isinstance(padding, str):  # "valid": none; "same": as the convolution pads, less on the left
            totals = [0, 0] if padding == "valid" else [
                d * (k - 1) for d, k in zip(module.dilation, module.kernel_size)]
            inputs = F.pad(inputs, (totals[1] // 2, totals[1] - totals[1] // 2,
                                    totals[0] // 2, totals[0] - totals[0] // 2))
            padding = 0
        patches = F.unfold(inputs, module.kernel_size, module.dilation, padding, module.stride)
        a = patches.transpose(1, 2).reshape(-1, patches.shape[1])
    else:
        a = inputs.reshape(-1, inputs.shape[-1])
    return a.to(dtype)


def _moment_sum(a: torch.Tensor, bias: bool) -> torch.Tensor:
    """Σ ã ãᵀ over the rows of a, ã = (a, 1): small a padded with ones (one product), large a (a convolution's
    patches) not copied: the bias row is the column sums of a."""
    if not bias or a.numel() <= 1 << 16:
        a = F.pad(a, (0, 1), value=1.0) if bias else a
        return a.T @ a
    out = a.new_empty(a.shape[1] + 1, a.shape[1] + 1)
    torch.mm(a.T, a, out=out[:-1, :-1])
    total = a.sum(dim=0)
    out[:-1, -1], out[-1, :-1], out[-1, -1] = total, total, len(a)
    return out


def _output_grads(module: nn.Module, grads: torch.Tensor, dtype) -> torch.Tensor:
    if isinstance(module, nn.Conv2d):
        return grads.permute(0, 2, 3, 1).reshape(-1, grads.shape[1]).to(dtype)
    return grads.reshape(-1, grads.shape[-1]).to(dtype)


def _as_matrix(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A layer's weight-shaped tensor as (out, in·k·k), with its bias-shaped one as a last column."""
    matrix = weight.reshape(weight.shape[0], -1)
    return matrix if bias is None else torch.cat([matrix, bias[:, None]], dim=1)
