"""K-FAC as a preconditioner for any torch.optim optimizer (the convention kfac-pytorch users know):

    pre = KFACPreconditioner(model)
    loss.backward(); pre.step(); optimizer.step()

While the loss is back-propagated, hooks keep each supported layer's inputs a and the gradients g of
the loss at its outputs; `step()` folds them into the Kronecker factors A = E[a aᵀ], G = E[g gᵀ] (every
`factor_interval` steps), refreshes the damped inverses (every `inverse_interval`) and replaces each
layer's `.grad` with (A ⊗ G + λ)⁻¹ ∇W, the same blocks and inverses as the `KFAC` optimizer
(numeric.nets.kfac; Embedding, LayerNorm and BatchNorm2d blocks in numeric.nets.layer_blocks). G comes
from the loss's own gradients (the empirical Fisher), scaled to one example's: the loss is taken to be a
mean over the batch (`reduction="mean"`), over every position of every sequence (`"mean_over_positions"`,
a language model's token-averaged loss; K-FAC's "expand" convention), or a sum (`"sum"`).

Schedulers act on the optimizer as usual. Gradient accumulation: call backward on each micro-batch
(of the same shape) with its mean loss divided by the number of micro-batches (so that the gradients are
the full batch's), and `step()` once; the factors are the statistics of all of them. Mixed precision:
pass `grad_scaler=scaler` (its scale is divided out of the captured gradients) and call
`scaler.unscale_(optimizer)` before `pre.step()`; a step whose gradients overflowed is left to the scaler
(neither the factors nor the gradients are touched). One process: under torch.distributed use the `KFAC`
optimizer, which averages the factors across processes.
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from symgeo.errors import InvalidArgumentError

from ..validate import count, in_unit, nonnegative, positive
from .hooks import StatisticsHooks
from .kfac import INVERSES, Blocks, all_finite, inner_terms, kl_scale, supported_layers, total_inner
from .layer_blocks import fold_all
from .packed import Packing

REDUCTIONS = ("mean", "mean_over_positions", "sum")
SEQUENCE_LAYOUT = (nn.Linear, nn.Embedding, nn.LayerNorm)  # (batch, positions…, features)


class KFACPreconditioner:
    """Preconditions the gradients of `model`'s supported layers in place (see the module
    docstring). Parameters of modules in `skip` keep their gradients; any other module with parameters is
    refused. `kl_clip` (with `lr`, a number or a function returning the optimizer's current rate) scales
    the preconditioned gradients so that the update's predicted KL stays below it."""

    def __init__(self, model: nn.Module, damping: float = 1e-3, ema_decay: float = 0.95,
                 factor_interval: int = 1, inverse_interval: int = 10, inverse: str = "eigen",
                 reduction: str = "mean", kl_clip: float | None = None, lr=None, grad_scaler=None,
                 skip: tuple = ()):
        nonnegative("damping", damping)
        in_unit("ema_decay", ema_decay)
        count("factor_interval", factor_interval)
        count("inverse_interval", inverse_interval)
        if inverse not in INVERSES:
            raise InvalidArgumentError(f"inverse must be one of {INVERSES}, not {inverse!r}")
        if reduction not in REDUCTIONS:
            raise InvalidArgumentError(f"reduction must be one of {REDUCTIONS}, not {reduction!r}")
        if kl_clip is not None:
            positive("kl_clip", kl_clip)
            if lr is None:
                raise InvalidArgumentError(
                    "kl_clip needs lr (the optimizer's rate, or a function returning it)"
                )
        self.model = model
        self.layers = supported_layers(model, tuple(skip))
        self.damping, self.ema_decay, self.kl_clip, self.lr = damping, ema_decay, kl_clip, lr
        self.factor_interval, self.inverse_interval = factor_interval, inverse_interval
        self.inverse, self.reduction, self.grad_scaler = inverse, reduction, grad_scaler
        self.state: dict = {module: {} for module in self.layers}
        self._blocks = Blocks(inverse)
        self._packing = Packing([self._block(module) for module in self.layers])
        self.steps = 0
        self._inputs: dict = {m: [] for m in self.layers}
        self._grads: dict = {m: {} for m in self.layers}
        self._hooks = StatisticsHooks(self.layers, self._keep_input)
        self._hooks.arm(True)

    # -- hooks ------------------------------------------------------------------------------------
    def _collecting(self) -> bool:
        return self.steps % self.factor_interval == 0

    def _keep_input(self, module, args, output):
        """Keep the layer's input, and have the loss's gradient at its output kept (paired with this input,
        whatever order the backward pass delivers them in) when it arrives."""
        if torch.is_grad_enabled() and self._collecting() and output.requires_grad:
            index = len(self._inputs[module])
            self._inputs[module].append(args[0].detach())
            output.register_hook(lambda grad, m=module, i=index: self._keep_grad(m, i, grad))

    def _keep_grad(self, module, index: int, grad):
        self._grads[module][index] = grad.detach()  # scaled in the statistics (_grad_scale)

    def _grad_scale(self, module, grad: torch.Tensor, micro_batches: int) -> float:
        """What turns a kept gradient into one example's gradient of its own loss: times the examples
        (and positions) the loss was averaged over and the micro-batches it was divided by, over the
        GradScaler's scale."""
        if self.reduction == "mean_over_positions" and isinstance(module, SEQUENCE_LAYOUT):
            scale = (grad.numel() // grad.shape[-1]) * micro_batches  # averaged over every position
        elif self.reduction != "sum":
            scale = len(grad) * micro_batches
        else:
            scale = 1.0
        return scale / self.grad_scaler.get_scale() if self.grad_scaler is not None else scale

    # -- the step -----------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self) -> None:
        """Fold the kept statistics into the factors (when due) and precondition the gradients."""
        grads = [p.grad for m in self.layers for p in m.parameters() if p.grad is not None]
        if not all_finite(grads):
            warnings.warn(
                "KFACPreconditioner: non-finite gradients; nothing is preconditioned and the factors "
                "keep their values",
                RuntimeWarning,
                stacklevel=2,
            )
            self._clear()
            return
        if self._collecting():
            self._update_factors()
        self._clear()
        updates, parts = self._directions(self.steps % self.inverse_interval == 0)
        if updates:
            scale = self._kl_scale(parts)
            grads = [p.grad for p in updates]
            torch._foreach_copy_(grads, [d if d.dtype == g.dtype else d.to(g.dtype)
                                         for d, g in zip(updates.values(), grads)])
            if scale != 1.0:
                torch._foreach_mul_(grads, scale)
        self.steps += 1
        self._hooks.arm(self._collecting())

    def _update_factors(self) -> None:
        folds = []
        for module in self.layers:
            inputs, kept = self._inputs[module], self._grads[module]
            if not kept or len(kept) != len(inputs):  # a forward pass without its backward: not a batch
                continue
            grads = [kept[i] for i in range(len(inputs))]
            a, g = (inputs[0], grads[0]) if len(grads) == 1 else (torch.cat(inputs), torch.cat(grads))
            dtype = torch.float64 if module.weight.dtype == torch.float64 else torch.float32
            block = self._block(module)
            scale = self._grad_scale(module, grads[0], len(grads))
            folds.append((block, block.statistics(a, g, dtype, grad_scale=float(scale))))
        if not fold_all(folds, self.ema_decay):
            warnings.warn("KFACPreconditioner: non-finite activations or output gradients; the factors they "
                          "reach keep their values", RuntimeWarning, stacklevel=3)

    def _directions(self, due: bool) -> tuple[dict, list]:
        """({param: preconditioned gradient}, the parts of Σ ⟨u, ∇⟩) of the layers with statistics and a
        gradient, their inverses refreshed when `due` (small layers packed: numeric.nets.packed)."""
        blocks = [self._block(module) for module in self.layers]
        for block in blocks:
            if block.has_statistics and block.weight.grad is not None and (due or not block.has_inverse):
                block.refresh_inverse(self.damping)
        updates, parts, loose = self._packing.directions(blocks, self.damping)
        own = {}
        for i in loose:
            if blocks[i].has_statistics and blocks[i].weight.grad is not None:
                own.update(blocks[i].directions(self.damping))
        if self.kl_clip is not None:
            parts = parts + inner_terms(own)
        updates.update(own)
        return updates, parts

    def _kl_scale(self, parts: list) -> float:
        """min(1, √(kl_clip / (lr² Σ ⟨Δ, ∇⟩))) over the preconditioned layers (Ba et al. 2017)."""
        if self.kl_clip is None:
            return 1.0
        inner = total_inner(parts)
        return kl_scale(inner, self.lr() if callable(self.lr) else self.lr, self.kl_clip) if math.isfinite(
            inner) else 1.0

    def _block(self, module):
        return self._blocks.get(module, self.state[module])

    def _clear(self) -> None:
        for module in self.layers:
            self._inputs[module].clear()
            self._grads[module].clear()

    # -- checkpoints and cleanup ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"steps": self.steps, "factors": [dict(self.state[m]) for m in self.layers]}

    def load_state_dict(self, state: dict) -> None:
        self.steps = state["steps"]
        for module, saved in zip(self.layers, state["factors"]):
            self.state[module] = dict(saved)
        self._hooks.arm(self._collecting())

    def close(self) -> None:
        """Remove the hooks this preconditioner put on the model."""
        self._hooks.close()
        self._clear()
