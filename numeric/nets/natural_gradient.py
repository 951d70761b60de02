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
from torch.func import functional_call

from symgeo.errors import InvalidArgumentError

from ..validate import count, nonnegative, positive
from .cg import CGInfo, conjugate_gradient
from .flat import flatten, unflatten
from .heads import Head
from .pullback import GaussNewton

SOLVERS = ("auto", "cg", "exact")
EXACT_LIMIT = 4096  # "auto" forms G (P × P) up to this many weights, else runs conjugate gradient


class NaturalGradient(torch.optim.Optimizer):
    """Natural-gradient descent with the exact output-distribution Fisher (see the module docstring).

    family: a catalog name, spec path, torch-backend CompiledFamily or a Head (numeric.nets.heads); link
    maps raw outputs (B, k) to the family's parameters (B, n) (e.g. a softplus for a scale)."""

    def __init__(self, model: torch.nn.Module, family, lr: float = 1.0, damping: float = 1e-3, link=None,
                 solver: str = "auto", cg_iters: int = 50, cg_tol: float = 1e-8):
        positive("lr", lr)
        nonnegative("damping", damping)
        if solver not in SOLVERS:
            raise InvalidArgumentError(f"solver must be one of {SOLVERS}, not {solver!r}")
        count("cg_iters", cg_iters)
        positive("cg_tol", cg_tol)
        self.head = family if isinstance(family, Head) else Head(family, link=link)
        self.family = self.head.family
        defaults = dict(lr=lr, damping=damping, solver=solver, cg_iters=cg_iters, cg_tol=cg_tol)
        super().__init__([p for p in model.parameters() if p.requires_grad], defaults)
        if len(self.param_groups) != 1:
            raise InvalidArgumentError("NaturalGradient supports one parameter group")
        self.model = model
        self.link = self.head.link or (lambda out: out)
        self._inputs = None
        self.last_cg: CGInfo | None = None
        self._hook = model.register_forward_pre_hook(self._capture)

    def close(self) -> None:
        """Remove the hook this optimizer put on the model."""
        self._hook.remove()

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
            return _skipped(loss, "a non-finite gradient (NaN or inf in the batch or its targets); the step "
                                  "is skipped and the weights are left as they were")
        direction, self.last_cg = natural_step(self.model, self.family, self.link, self._inputs, params,
                                               grads, group["damping"], group["solver"], group["cg_iters"],
                                               group["cg_tol"])
        if not all(bool(torch.isfinite(d).all()) for d in direction):
            return _skipped(loss, "the Fisher solve gave a non-finite direction (the output family's "
                                  "parameters left its domain?); the step is skipped")
        for p, d in zip(params, direction):
            p.sub_(group["lr"] * d)
        return loss.detach() if torch.is_tensor(loss) else loss


def _skipped(loss, reason: str):
    warnings.warn(f"NaturalGradient: {reason}", RuntimeWarning, stacklevel=3)
    return loss.detach() if torch.is_tensor(loss) else loss


def natural_step(
    model, family, link, inputs, params, grads, damping, solver="auto", cg_iters=50, cg_tol=1e-8
):
    """(G + λI)⁻¹ g as a list shaped like `params`, and the CG report (None for the exact solver); G is the
    family's Fisher pulled back through link ∘ model (numeric.nets.pullback)."""
    primals = {n: p.detach() for n, p in zip(_names(model, params), params)}
    flat, g = flatten(primals.values()), flatten(grads)

    def outputs(w):
        return link(functional_call(model, unflatten(w, primals), inputs))

    gauss_newton = GaussNewton.of(outputs, flat, lambda xi: family.fisher(*xi.unbind(-1)), damping)
    if solver == "auto":
        solver = "exact" if len(flat) <= EXACT_LIMIT else "cg"
    if solver == "exact":
        direction, info = torch.linalg.solve(gauss_newton.matrix(), g), None
    else:
        direction, info = conjugate_gradient(gauss_newton.matvec, g, cg_iters, cg_tol)
    return list(unflatten(direction, primals).values()), info


def _names(model, params):
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [by_id[id(p)] for p in params]
