"""The mixture estimator's E-step on torch tensors, on the device of the data.

T(x) and log h(x) come from the family's generated torch code (the Gaussian's from a product of
columns); A(θ) and the M-step θ(η) stay in numpy on K rows, so a pass moves only the K×m sufficient
statistics off the device. Imported only when X is a torch tensor.
"""
from __future__ import annotations

import numpy as np
import sympy as sp
import torch

from symgeo.errors import InvalidArgumentError

from .codegen import generate
from .exponential import GaussianMaps


class TorchStatistics:
    """T(x) and log h(x) of a batch of rows on their device, for one family's maps."""

    def __init__(self, maps):
        self.maps = maps
        if isinstance(maps, GaussianMaps):
            self._stats = self._log_base = None
            return
        ef = maps.geometry.exponential_family
        variables = maps.family.variables
        self._stats = generate(variables, list(ef.stats), "torch")
        self._log_base = generate(variables, sp.sympify(ef.log_base_measure), "torch")

    def __call__(self, x: torch.Tensor) -> tuple:
        maps = self.maps
        if isinstance(maps, GaussianMaps):
            i, j = (torch.as_tensor(a, device=x.device) for a in maps.iu)
            stats = torch.cat([x, x[:, i] * x[:, j]], dim=1)
            log_base = torch.full(
                (len(x),), -0.5 * maps.d * float(np.log(2 * np.pi)), dtype=x.dtype, device=x.device
            )
            return stats, log_base
        columns = [x[:, c] for c in range(x.shape[1])]
        stats = self._stats(*columns).reshape(len(x), maps.m)
        log_base = self._log_base(*columns).reshape(-1).expand(len(x))
        if not (torch.isfinite(stats).all() and torch.isfinite(log_base).all()):
            raise InvalidArgumentError(f"{maps.name}: some data points lie outside the support "
                                       f"(T(x) or log h(x) is not finite)")
        return stats, log_base


def responsibilities(stats, log_base, theta, offset) -> tuple:
    """(log p(x) per row, responsibilities (K, rows)): numeric.mixture's E-step in torch."""
    joint = theta @ stats.T + offset[:, None] + log_base[None, :]
    norm = torch.logsumexp(joint, dim=0)
    return norm, torch.exp(joint - norm)


def as_tensor(values, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values), dtype=like.dtype, device=like.device)


def validated(X, n_variables: int | None) -> torch.Tensor:
    """A 2-D floating tensor of finite values (float64 unless float32 was given)."""
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows, variables), not {X.ndim}-D")
    if not X.is_floating_point():
        X = X.to(torch.float64)
    if not torch.isfinite(X).all():
        raise ValueError("Input X contains NaN or infinity.")
    if n_variables is not None and X.shape[1] != n_variables:
        raise ValueError(f"X has {X.shape[1]} columns; the fitted family has {n_variables}")
    return X
