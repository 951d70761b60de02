"""A network's weights as one flat vector and back (the form conjugate gradient and line searches use)."""
from __future__ import annotations

import torch
from torch import nn


def flatten(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(flat: torch.Tensor, like: dict) -> dict:
    """{name: view of `flat` shaped like like[name]}, in like's order."""
    out, start = {}, 0
    for name, t in like.items():
        out[name] = flat[start:start + t.numel()].view_as(t)
        start += t.numel()
    return out


def flat_params(module: nn.Module) -> torch.Tensor:
    return flatten(p.detach() for p in module.parameters())


def module_params(module: nn.Module, flat: torch.Tensor) -> dict:
    """{name: tensor} of `module`'s parameters read from a flat vector (for torch.func.functional_call)."""
    return unflatten(flat, dict(module.named_parameters()))


def set_flat_params(module: nn.Module, flat: torch.Tensor) -> None:
    with torch.no_grad():
        for p, value in zip(module.parameters(), module_params(module, flat).values()):
            p.copy_(value)
