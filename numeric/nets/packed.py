"""Small Kronecker layers preconditioned together. For a layer of a few hundred weights each product of its
damped inverse, Q_G [(Q_Gᵀ ∇ Q_A) ∘ s] Q_Aᵀ or G⁻¹ ∇ A⁻¹, costs less than dispatching it, so a small
network's step costs the number of operations rather than their size. Here the gradient matrices of such
layers are zero-padded into one (L, rows, columns) batch and every layer is preconditioned by the same four
(eigenbasis) or two (Cholesky) batched products, and the inner product ⟨u, ∇⟩ the KL clip needs is one more.

Padding is exact: the padded rows and columns of the packed eigenvectors and inverses are zero, so no entry
of a layer reaches another's or the padding (a NaN or an inf in a gradient still reaches the layer's update
and the inner product, which is how the optimizer notices it).

Measured on one CPU thread for the Poisson MLP of benchmarks/kfac_tasks.py (layers 10→32→32→1): the
optimizer's whole step (preconditioning, inner product, update) 108 µs packed against 193 µs one layer at a
time (SGD's: 55 µs). What is packed is decided by the layers' shapes (`plan`).
"""
from __future__ import annotations

import math

import torch

from .kronecker import CholeskyInverse, EigenInverse, KroneckerBlock

# a group's padded (rows, columns) matrix may have up to TINY entries whatever the padding (products that
# small cost less than their dispatch on a CPU thread, so the padding's extra arithmetic is free); up to
# LARGEST entries when the padding adds at most a quarter to the group's entries (nearly equal shapes: a
# transformer's attention projections, an MLP's equal hidden layers). Measured on one thread, eigenbasis
# inverses: three layers (32, 33) packed 40 µs against 121 µs one by one; (128, 129) 698 against 834 µs; but
# (10, 129) padded to (128, 129) beside a (128, 65) layer 729 against 502 µs.
TINY = 2048
LARGEST = 128 * 129
WASTE = 1.25
PACKABLE = (EigenInverse, CholeskyInverse)  # EKFAC's rescaling changes in place between inverses: not packed


def matrix_shape(block: KroneckerBlock) -> tuple[int, int]:
    """(out, in [+1]): the layer's gradient matrix with the bias as a last column."""
    weight = block.weight
    return weight.shape[0], weight[0].numel() + (block.bias is not None)


def plan(blocks: list) -> list[list[int]]:
    """Indices of `blocks` to pack, in groups of at least two: Kronecker blocks with an eigenbasis or Cholesky
    inverse, of one inverse, dtype and device, taken smallest first; a layer joins the group before it while
    the padded matrix stays within TINY entries, or within LARGEST with padding of at most WASTE."""
    kinds: dict = {}
    for i, block in enumerate(blocks):
        if isinstance(block, KroneckerBlock) and type(block.inverse) in PACKABLE:
            key = (type(block.inverse), block.weight.dtype, block.weight.device)
            kinds.setdefault(key, []).append(i)
    groups = []
    for members in kinds.values():
        members.sort(key=lambda i: (math.prod(matrix_shape(blocks[i])), i))
        runs = [[members[0]]]
        for i in members[1:]:
            if _fits([matrix_shape(blocks[j]) for j in runs[-1] + [i]]):
                runs[-1].append(i)
            else:
                runs.append([i])
        groups += [run for run in runs if len(run) >= 2]
    return groups


def _fits(shapes: list) -> bool:
    box = max(r for r, _ in shapes) * max(c for _, c in shapes)
    return box <= TINY or (box <= LARGEST and len(shapes) * box <= WASTE * sum(r * c for r, c in shapes))


class PackedGroup:
    """Some small Kronecker layers' (A ⊗ G + λ)⁻¹ applied as one batch. The packed factors are rebuilt when
    a layer's inverse is replaced (a refresh, a loaded state) or the damping changes; `directions` returns
    views of one buffer, valid until its next call."""

    def __init__(self, blocks: list):
        self.eigen = isinstance(blocks[0].inverse, EigenInverse)
        self.shapes = [matrix_shape(b) for b in blocks]
        rows, columns = max(r for r, _ in self.shapes), max(c for _, c in self.shapes)
        dtype = torch.float64 if blocks[0].weight.dtype == torch.float64 else torch.float32
        buffer = dict(dtype=dtype, device=blocks[0].weight.device)
        self.gradients = torch.zeros(len(blocks), rows, columns, **buffer)
        self.work = [torch.empty_like(self.gradients) for _ in range(3 if self.eigen else 1)]
        self.update = torch.empty_like(self.gradients)
        self._gradient_views = _views(self.gradients, blocks, self.shapes)
        self._update_views = _views(self.update, blocks, self.shapes)
        self._source: list = []  # the state tensors and the damping the packed factors were built from
        self._damping = None
        self._factors: tuple = ()

    def directions(self, blocks: list, damping: float, weight_decay: float = 0.0) -> dict | None:
        """{parameter: preconditioned gradient} of every layer of the group, or None when one of them has no
        inverse or no gradient yet (then each goes its own way)."""
        params = []
        for block in blocks:
            if block.weight.grad is None or not block.has_inverse:
                return None
            params.append(block.weight)
            if block.bias is not None:
                if block.bias.grad is None:
                    return None
                params.append(block.bias)
        self._refresh(blocks, damping)
        torch._foreach_copy_(self._gradient_views, [p.grad for p in params])
        if weight_decay:
            torch._foreach_add_(self._gradient_views, [p.detach() for p in params], alpha=weight_decay)
        self._apply()
        return dict(zip(params, self._update_views))

    def inner(self) -> torch.Tensor:
        """⟨u, ∇⟩ summed over the group for the last `directions` called without weight decay (with it, the
        packed gradients hold ∇ + decay·w, so the caller takes the products with the gradients itself)."""
        return torch.vdot(self.update.reshape(-1), self.gradients.reshape(-1))

    def _apply(self) -> None:
        if self.eigen:
            qa, qa_t, qg, qg_t, scale = self._factors
            rotated, scaled, back = self.work
            torch.bmm(self.gradients, qa, out=rotated)
            torch.bmm(qg_t, rotated, out=scaled).mul_(scale)
            torch.bmm(qg, scaled, out=back)
            torch.bmm(back, qa_t, out=self.update)
        else:
            g_inv, a_inv = self._factors
            torch.bmm(g_inv, self.gradients, out=self.work[0])
            torch.bmm(self.work[0], a_inv, out=self.update)

    def _refresh(self, blocks: list, damping: float) -> None:
        keys = ("QA", "QG", "scale") if self.eigen else ("A_inv", "G_inv")
        source = [b.state[k] for b in blocks for k in keys]
        if (damping == self._damping and len(source) == len(self._source)
                and all(a is b for a, b in zip(source, self._source))):
            return
        rows, columns = self.gradients.shape[1:]
        if self.eigen:
            qa = self._corners([b.state["QA"] for b in blocks], (columns, columns))
            qg = self._corners([b.state["QG"] for b in blocks], (rows, rows))
            scale = self._corners([b.inverse.scaling(b.state, damping) for b in blocks], (rows, columns))
            self._factors = (qa, qa.transpose(1, 2).contiguous(), qg, qg.transpose(1, 2).contiguous(), scale)
        else:
            self._factors = (self._corners([b.state["G_inv"] for b in blocks], (rows, rows)),
                             self._corners([b.state["A_inv"] for b in blocks], (columns, columns)))
        self._source, self._damping = source, damping

    def _corners(self, matrices: list, shape: tuple) -> torch.Tensor:
        """The layers' matrices in the top-left corners of a batch of zero matrices of `shape`."""
        out = self.gradients.new_zeros(len(matrices), *shape)
        for k, matrix in enumerate(matrices):
            out[k, :matrix.shape[0], :matrix.shape[1]] = matrix
        return out


def _views(batch: torch.Tensor, blocks: list, shapes: list) -> list:
    """Each layer's weight (in its own shape) and bias as views of its slice of `batch`."""
    views = []
    for k, (block, (rows, _)) in enumerate(zip(blocks, shapes)):
        inputs = block.weight[0].numel()
        views.append(batch[k, :rows, :inputs].view(block.weight.shape))
        if block.bias is not None:
            views.append(batch[k, :rows, inputs])
    return views


class Packing:
    """The groups of a list of layers' blocks (`plan`), fixed when built; the blocks themselves are passed
    at each step (they are rebuilt when a state is loaded)."""

    def __init__(self, blocks: list):
        self.groups = [(indices, PackedGroup([blocks[i] for i in indices])) for indices in plan(blocks)]

    def directions(self, blocks: list, damping: float, weight_decay: float = 0.0):
        """({parameter: direction} of the packed layers, [⟨u, ∇⟩ of each group] (None with weight decay),
        the indices of the blocks left to precondition one by one)."""
        updates, inners, loose = {}, [], set(range(len(blocks)))
        for indices, group in self.groups:
            found = group.directions([blocks[i] for i in indices], damping, weight_decay)
            if found is None:
                continue
            updates.update(found)
            loose.difference_update(indices)
            inners.append(None if weight_decay else group.inner())
        return updates, inners, sorted(loose)
