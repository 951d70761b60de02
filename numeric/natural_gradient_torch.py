"""`NaturalGradient`: a torch optimizer for networks whose outputs are a declared family's parameters.

The loss is the mean negative log-likelihood −(1/B) Σ_b log p(y_b | ξ_b), ξ_b = link(model(x_b)). Its Fisher
in the weights w is the pull-back of the family's exact Fisher (generated from symgeo) through the
network Jacobian J_b = ∂ξ_b/∂w, i.e. the generalized Gauss–Newton matrix

    G = (1/B) Σ_b J_bᵀ F(ξ_b) J_b,       step:  w ← w − lr · (G + λI)⁻¹ ∇L

G is never formed by default: conjugate gradient uses G·v = Jᵀ(F (J v))/B with torch.func (a forward-mode
jvp for J v, one reverse-mode vjp closure for Jᵀ u). `solver="exact"` builds G from the full
Jacobian (small networks).
The batch is the input of the model's last forward call (captured by a forward pre-hook), so `step`
keeps torch.optim's `step(closure)` signature.
"""
from __future__ import annotations

import warnings

import torch
from torch.func import functional_call, jacfwd, jacrev, jvp, vjp

from symgeo.errors import InvalidArgumentError

from .cg import CGInfo, conjugate_gradient
from .compiled import CompiledFamily
from .compiled import compile as compile_family
from .validate import count, nonnegative, positive

SOLVERS = ("auto", "cg", "exact")
EXACT_LIMIT = 4096  # "auto" forms G (P × P) up to this many weights, else runs conjugate gradient


class NaturalGradient(torch.optim.Optimizer):
    """Natural-gradient descent with the exact output-distribution Fisher (see the module docstring).

    family: a catalog name or a torch-backend CompiledFamily; link maps raw outputs (B, k) to the family's
    parameters (B, n) (e.g. a softplus for a scale). Tests call `natural_step` directly."""

    def __init__(self, model: torch.nn.Module, family, lr: float = 1.0, damping: float = 1e-3, link=None,
                 solver: str = "auto", cg_iters: int = 50, cg_tol: float = 1e-8):
        positive("lr", lr)
        nonnegative("damping", damping)
        if solver not in SOLVERS:
            raise InvalidArgumentError(f"solver must be one of {SOLVERS}, not {solver!r}")
        count("cg_iters", cg_iters)
        positive("cg_tol", cg_tol)
        self.family = family if isinstance(family, CompiledFamily) else compile_family(family, "torch")
        if self.family.backend != "torch":
            raise InvalidArgumentError(
                "NaturalGradient needs a torch-backend family (numeric.compile(..., backend='torch'))"
            )
        defaults = dict(lr=lr, damping=damping, solver=solver, cg_iters=cg_iters, cg_tol=cg_tol)
        super().__init__([p for p in model.parameters() if p.requires_grad], defaults)
        if len(self.param_groups) != 1:
            raise InvalidArgumentError("NaturalGradient supports one parameter group")
        self.model = model
        self.link = link or (lambda out: out)
        self._inputs = None
        self.last_cg: CGInfo | None = None
        model.register_forward_pre_hook(self._capture)

    def _capture(self, module, args):
        self._inputs = tuple(a.detach() if torch.is_tensor(a) else a for a in args)

    @torch.no_grad()
    def step(self, closure=None):
        """closure() must zero the gradients, run the model on the batch, compute the mean NLL and call
        backward; it returns the loss."""
        if closure is None:
            raise InvalidArgumentError(
                "NaturalGradient.step needs a closure that evaluates the loss (and its gradient)"
            )
        with torch.enable_grad():
            loss = closure()
        if self._inputs is None:
            raise RuntimeError("the closure did not run the model: no batch to build the Fisher from")
        group = self.param_groups[0]
        params = group["params"]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            warnings.warn(
                "NaturalGradient: a non-finite gradient (NaN or inf in the batch or its targets); the "
                "step is skipped and the weights are left as they were",
                RuntimeWarning,
                stacklevel=2,
            )
            return loss.detach() if torch.is_tensor(loss) else loss
        direction, self.last_cg = natural_step(self.model, self.family, self.link, self._inputs, params,
                                               grads, group["damping"], group["solver"], group["cg_iters"],
                                               group["cg_tol"])
        if not all(bool(torch.isfinite(d).all()) for d in direction):
            warnings.warn(
                "NaturalGradient: the Fisher solve gave a non-finite direction (the output family's "
                "parameters left its domain?); the step is skipped",
                RuntimeWarning,
                stacklevel=2,
            )
            return loss.detach() if torch.is_tensor(loss) else loss
        for p, d in zip(params, direction):
            p.sub_(group["lr"] * d)
        return loss.detach() if torch.is_tensor(loss) else loss


def natural_step(
    model, family, link, inputs, params, grads, damping, solver="auto", cg_iters=50, cg_tol=1e-8
):
    """(G + λI)⁻¹ g as a list shaped like `params`, and the CG report (None for the exact solver)."""
    primals = {n: p.detach() for n, p in zip(_names(model, params), params)}
    flat, g = _flatten(primals.values()), _flatten(grads)

    def outputs(w):
        return link(functional_call(model, _unflatten(w, primals), inputs))

    with torch.enable_grad():
        xi, vjp_fn = vjp(outputs, flat)
    fisher = family.fisher(*xi.detach().unbind(-1))          # (B, n, n), generated from symgeo
    if solver == "auto":
        solver = "exact" if len(flat) <= EXACT_LIMIT else "cg"
    if solver == "exact":
        direction, info = torch.linalg.solve(_gauss_newton_matrix(outputs, flat, fisher, damping), g), None
    else:
        def gauss_newton(v):
            with torch.enable_grad():
                jv = jvp(outputs, (flat,), (v,))[1]
            return vjp_fn(torch.einsum("bij,bj->bi", fisher, jv) / len(xi))[0] + damping * v
        direction, info = conjugate_gradient(gauss_newton, g, cg_iters, cg_tol)
    return list(_unflatten(direction, primals).values()), info


def _gauss_newton_matrix(outputs, flat, fisher, damping) -> torch.Tensor:
    """(1/B) Σ_b J_bᵀ F_b J_b + λI from the full Jacobian (forward mode when the weights are fewer)."""
    batch, n = fisher.shape[:2]
    jacobian = jacfwd if len(flat) <= batch * n else jacrev
    with torch.enable_grad():
        jac = jacobian(outputs)(flat).reshape(batch, n, -1)
    matrix = torch.einsum("bip,bij,bjq->pq", jac, fisher, jac) / batch
    return matrix + damping * torch.eye(len(flat), dtype=flat.dtype, device=flat.device)


def _names(model, params):
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [by_id[id(p)] for p in params]


def _flatten(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflatten(flat, like: dict) -> dict:
    out, start = {}, 0
    for name, t in like.items():
        out[name] = flat[start:start + t.numel()].view_as(t)
        start += t.numel()
    return out
