"""K-FAC (Martens & Grosse 2015; convolutions: Grosse & Martens 2016): a Kronecker-factored natural gradient.

Key equations, for a layer s = W a (bias folded in as a last input of 1), per-example output gradients g:
    F_W ≈ A ⊗ G,   A = E[a aᵀ],   G = E[g gᵀ]            (Conv2d: a = im2col patches, G scaled by the T positions)
    preconditioned gradient  (A ⊗ G + λ)⁻¹ vec(∇W)  =  G⁻¹ ∇W A⁻¹   (with damping, below)
Scaling convention: g is the gradient of one example's negative log-likelihood (sum reduction), so the
factors do not depend on the batch size or on the loss's reduction. `fisher="true"` draws the targets from
the model's predictive distribution (categorical / unit-variance normal / Bernoulli), `"empirical"` uses the
data's targets. Damping: "eigen" adds λ to the eigenvalues of the Kronecker product, (d_G d_Aᵀ + λ), which is
exact Tikhonov damping of A ⊗ G; "cholesky" uses π-adjusted factored damping (A + π√λ)⁻¹, (G + √λ/π)⁻¹;
"ekfac" keeps the eigenbasis but replaces d_G d_Aᵀ by a moving average of the per-example gradients' second
moments in that basis (George et al. 2018), the exact diagonal of the Fisher there.
`adapt_damping=k` adjusts λ every k steps by the Levenberg–Marquardt rule on the last batch.
Factors are bias-corrected exponential moving averages kept in float32 (float64 for float64 models).

Use:
    optimizer = KFAC(model, lr=0.05, loss="cross_entropy")
    optimizer.zero_grad(); loss = optimizer.backward(model(x), y); optimizer.step()

Data-parallel (torch.distributed initialised, every process with an equal share of the batch): the factor
statistics and (unless the model is wrapped in DistributedDataParallel) the gradients are averaged across
processes, and layer i's inverse is computed by rank i mod world size and broadcast.
"""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("cross_entropy", "mse", "bce")
FISHERS = ("true", "empirical")
INVERSES = ("eigen", "cholesky", "ekfac")
SUPPORTED = (nn.Linear, nn.Conv2d)


# -- losses and the output distribution they are the NLL of ---------------------------------------
def per_example_nll(loss: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood per example (up to constants): cross-entropy on logits, 0.5‖y − out‖², or BCE."""
    if loss == "cross_entropy":
        return F.cross_entropy(outputs, targets, reduction="none")
    if loss == "mse":
        return 0.5 * (outputs - targets).pow(2).reshape(len(outputs), -1).sum(dim=1)
    return F.binary_cross_entropy_with_logits(outputs, targets, reduction="none").reshape(len(outputs), -1).sum(1)


def sample_targets(loss: str, outputs: torch.Tensor, generator=None) -> torch.Tensor:
    """Targets drawn from the model's predictive distribution (the true-Fisher K-FAC)."""
    out = outputs.detach()
    if loss == "cross_entropy":
        return torch.multinomial(torch.softmax(out.float(), dim=-1), 1, generator=generator).squeeze(-1)
    if loss == "mse":
        return out + torch.randn(out.shape, generator=generator, dtype=out.dtype, device=out.device)
    return torch.bernoulli(torch.sigmoid(out), generator=generator)


# -- curvature blocks: one precondition(grad, damping) interface -----------------------------------
class KroneckerBlock:
    """A ⊗ G for one Linear/Conv2d layer, its statistics and its damped inverse."""

    def __init__(self, module: nn.Module, state: dict, inverse: str):
        self.module = module
        self.state = state
        self.inverse = inverse

    def update(self, inputs: torch.Tensor, output_grads: torch.Tensor, decay: float, dtype, reduce=None) -> None:
        """Fold this batch's A and G into the moving averages (`reduce` averages them across processes)."""
        a, g = _activations(self.module, inputs, dtype), _output_grads(self.module, output_grads, dtype)
        positions = len(a) // len(output_grads)
        new_a = _second_moment(a, self.module.bias is not None)
        new_g = g.T @ g / len(a) * positions  # one example's gradient sums over its T positions
        if reduce is not None:
            reduce(new_a)
            reduce(new_g)
        news = [("A", new_a), ("G", new_g)]
        if self.inverse == "ekfac" and "QA" in self.state:
            new_s = self._eigenbasis_second_moment(a, g, len(output_grads))
            if reduce is not None:
                reduce(new_s)
            news.append(("S", new_s))
        for key, new in news:
            old = self.state.get(key)
            self.state[key] = new.mul_(1 - decay) if old is None else old.mul_(decay).add_(new, alpha=1 - decay)
        self.state["count"] = self.state.get("count", 0) + 1
        self.state["decay"] = decay

    def _eigenbasis_second_moment(self, a, g, batch: int) -> torch.Tensor:
        """EKFAC's rescaling (George et al. 2018): E_b[(Q_Gᵀ ∇W_b Q_A)²], the exact diagonal of the Fisher in
        the Kronecker eigenbasis, from per-example gradients ∇W_b = Σ_t g_bt ã_btᵀ."""
        if self.module.bias is not None:
            a = torch.cat([a, a.new_ones(len(a), 1)], dim=1)
        u = (g @ self.state["QG"]).reshape(batch, -1, g.shape[1])
        v = (a @ self.state["QA"]).reshape(batch, -1, a.shape[1])
        return torch.einsum("bto,bti->boi", u, v).pow(2).mean(dim=0)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Bias-corrected A and G."""
        correction = 1 - self.state["decay"] ** self.state["count"]
        return self.state["A"] / correction, self.state["G"] / correction

    def refresh_inverse(self, damping: float) -> None:
        a, g = self.factors()
        if self.inverse == "ekfac":
            self.state["QA"], self.state["dA"] = robust_eigh(a)
            self.state["QG"], self.state["dG"] = robust_eigh(g)
            # a new basis: restart the rescaling from K-FAC's eigenvalues, refined by later batches
            self.state["S"] = self.state["dG"][:, None] * self.state["dA"][None, :]
        elif self.inverse == "eigen":
            self.state["QA"], self.state["dA"] = robust_eigh(a)
            self.state["QG"], self.state["dG"] = robust_eigh(g)
            self.state["scale"] = 1 / (self.state["dG"][:, None] * self.state["dA"][None, :] + damping)
            self.state["scale_damping"] = damping
        else:
            pi = torch.sqrt((torch.trace(a) / len(a)) / (torch.trace(g) / len(g)).clamp_min(1e-30)).clamp(1e-4, 1e4)
            root = math.sqrt(damping)
            self.state["A_inv"] = torch.cholesky_inverse(_cholesky(a + pi * root * torch.eye(len(a), dtype=a.dtype,
                                                                                             device=a.device)))
            self.state["G_inv"] = torch.cholesky_inverse(_cholesky(g + root / pi * torch.eye(len(g), dtype=g.dtype,
                                                                                            device=g.device)))

    def inverse_shapes(self) -> dict:
        """Names and shapes of what refresh_inverse stores (to receive them from another process)."""
        n_a, n_g = len(self.state["A"]), len(self.state["G"])
        if self.inverse == "eigen":
            return {"QA": (n_a, n_a), "dA": (n_a,), "QG": (n_g, n_g), "dG": (n_g,), "scale": (n_g, n_a)}
        if self.inverse == "ekfac":
            return {"QA": (n_a, n_a), "dA": (n_a,), "QG": (n_g, n_g), "dG": (n_g,), "S": (n_g, n_a)}
        return {"A_inv": (n_a, n_a), "G_inv": (n_g, n_g)}

    def precondition(self, grad: torch.Tensor, damping: float) -> torch.Tensor:
        """(A ⊗ G + damping)⁻¹ applied to the (out, in [+1]) gradient matrix."""
        grad = grad.to(self.state["A"].dtype)
        if self.inverse == "ekfac":
            qa, qg = self.state["QA"], self.state["QG"]
            return qg @ ((qg.T @ grad @ qa) / (self.state["S"] + damping)) @ qa.T
        if self.inverse == "eigen":
            qa, qg = self.state["QA"], self.state["QG"]
            scale = self.state["scale"]
            if self.state["scale_damping"] != damping:
                scale = 1 / (self.state["dG"][:, None] * self.state["dA"][None, :] + damping)
            return qg @ ((qg.T @ grad @ qa) * scale) @ qa.T
        return self.state["G_inv"] @ grad @ self.state["A_inv"]


def robust_eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of a symmetric PSD factor: retried in float64, else the diagonal (warned)."""
    symmetric = (matrix + matrix.T) / 2
    for dtype in (symmetric.dtype, torch.float64):
        try:
            values, vectors = torch.linalg.eigh(symmetric.to(dtype))
            if torch.isfinite(values).all() and torch.isfinite(vectors).all():
                if dtype != symmetric.dtype:
                    warnings.warn("K-FAC: eigh failed in the factor's precision; used float64", RuntimeWarning,
                                  stacklevel=3)
                return vectors.to(matrix.dtype).contiguous(), values.clamp_min(0).to(matrix.dtype)
        except (RuntimeError, torch.linalg.LinAlgError):
            continue
    warnings.warn("K-FAC: eigh failed in float64 too; falling back to the factor's diagonal", RuntimeWarning,
                  stacklevel=3)
    diagonal = torch.nan_to_num(torch.diagonal(symmetric), nan=0.0, posinf=0.0).clamp_min(0)
    return torch.eye(len(matrix), dtype=matrix.dtype, device=matrix.device), diagonal


def _cholesky(matrix: torch.Tensor) -> torch.Tensor:
    try:
        return torch.linalg.cholesky(matrix)
    except (RuntimeError, torch.linalg.LinAlgError):
        warnings.warn("K-FAC: Cholesky failed; retried in float64 with extra jitter", RuntimeWarning, stacklevel=3)
        m = matrix.double()
        jitter = 1e-6 * torch.diagonal(m).abs().mean().clamp_min(1e-12)
        return torch.linalg.cholesky(m + jitter * torch.eye(len(m), dtype=m.dtype, device=m.device)).to(matrix.dtype)


def _activations(module: nn.Module, inputs: torch.Tensor, dtype) -> torch.Tensor:
    """Rows a (one per example and position), with a trailing 1 for the bias."""
    if isinstance(module, nn.Conv2d):
        patches = F.unfold(inputs, module.kernel_size, module.dilation, module.padding, module.stride)
        a = patches.transpose(1, 2).reshape(-1, patches.shape[1])
    else:
        a = inputs.reshape(-1, inputs.shape[-1])
    return a.to(dtype)


def _second_moment(a: torch.Tensor, bias: bool) -> torch.Tensor:
    """E[ã ãᵀ] for ã = (a, 1) without building ã: the bias row is the mean of a."""
    n = len(a)
    if not bias:
        return a.T @ a / n
    out = a.new_empty(a.shape[1] + 1, a.shape[1] + 1)
    out[:-1, :-1] = a.T @ a / n
    mean = a.mean(dim=0)
    out[:-1, -1] = mean
    out[-1, :-1] = mean
    out[-1, -1] = 1.0
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


# -- the optimizer ------------------------------------------------------------------------------------
class KFAC(torch.optim.Optimizer):
    """K-FAC for nn.Linear and nn.Conv2d layers (see the module docstring).

    Parameters of modules in `skip` (types) are updated with their plain gradient (SGD with the same
    momentum); any other module with parameters is refused with a ValueError naming it."""

    def __init__(self, model: nn.Module, lr: float = 0.01, damping: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0.0, loss: str = "cross_entropy", fisher: str = "true",
                 ema_decay: float = 0.95, factor_interval: int = 1, inverse_interval: int = 10,
                 inverse: str = "eigen", kl_clip: float | None = 1e-3, skip: tuple = (), callback=None,
                 seed: int | None = None, distributed: bool | None = None, adapt_damping: int | None = None):
        _validate(lr=lr, damping=damping, momentum=momentum, weight_decay=weight_decay, ema_decay=ema_decay,
                  factor_interval=factor_interval, inverse_interval=inverse_interval, kl_clip=kl_clip)
        for name, value, allowed in (("loss", loss, LOSSES), ("fisher", fisher, FISHERS),
                                     ("inverse", inverse, INVERSES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
        self.layers = _kfac_layers(model, tuple(skip))
        defaults = dict(lr=lr, damping=damping, momentum=momentum, weight_decay=weight_decay, ema_decay=ema_decay,
                        kl_clip=kl_clip)
        super().__init__([p for p in model.parameters() if p.requires_grad], defaults)
        self.model, self.loss, self.fisher, self.inverse = model, loss, fisher, inverse
        self.factor_interval, self.inverse_interval = factor_interval, inverse_interval
        self.callback = callback
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.distributed = _distributed_default() if distributed is None else distributed
        if self.distributed and not _distributed_default():
            raise ValueError("distributed=True needs an initialised torch.distributed process group")
        self._average_gradients = self.distributed and not isinstance(
            model, nn.parallel.DistributedDataParallel)
        if adapt_damping is not None and not (isinstance(adapt_damping, int) and adapt_damping >= 1):
            raise ValueError(f"adapt_damping must be a positive step interval or None, not {adapt_damping}")
        self.adapt_damping = adapt_damping
        self._captured: dict = {}
        self._batch = None
        for module in self.layers:
            module.register_forward_hook(self._capture)
        if adapt_damping:
            model.register_forward_pre_hook(self._capture_inputs)

    def _capture(self, module, args, output):
        if torch.is_grad_enabled() and output.requires_grad:
            self._captured[module] = (args[0].detach(), output)

    def _capture_inputs(self, module, args):
        if torch.is_grad_enabled():
            self._inputs = tuple(a.detach() if torch.is_tensor(a) else a for a in args)

    @property
    def steps(self) -> int:
        return self.state["kfac"].get("steps", 0) if "kfac" in self.state else 0

    def _block(self, module) -> KroneckerBlock:
        return KroneckerBlock(module, self.state[module.weight], self.inverse)

    def backward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss of the batch; computes its gradients and (every factor_interval steps) the factors."""
        nll = per_example_nll(self.loss, outputs, targets)
        if self.steps % self.factor_interval == 0 and self._captured:
            self._update_factors(outputs, targets)
        loss = nll.mean()
        loss.backward()
        self._captured.clear()
        if self.adapt_damping:
            self._batch = (self._inputs, targets.detach(), float(loss))
        return loss.detach()

    def _update_factors(self, outputs, targets) -> None:
        modules = [m for m in self.layers if m in self._captured]
        fisher_targets = sample_targets(self.loss, outputs, self.generator) if self.fisher == "true" else targets
        total = per_example_nll(self.loss, outputs, fisher_targets).sum()
        grads = torch.autograd.grad(total, [self._captured[m][1] for m in modules], retain_graph=True)
        decay = self.param_groups[0]["ema_decay"]
        reduce = _all_reduce_mean if self.distributed else None
        for module, grad in zip(modules, grads):
            dtype = torch.float64 if module.weight.dtype == torch.float64 else torch.float32
            self._block(module).update(self._captured[module][0], grad, decay, dtype, reduce)

    @torch.no_grad()
    def step(self, closure=None):
        """One update. With a closure, it must zero the gradients and return `optimizer.backward(...)`."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        lr, damping = group["lr"], group["damping"]
        meta = self.state.setdefault("kfac", {})
        if self._average_gradients:
            for p in group["params"]:
                if p.grad is not None:
                    _all_reduce_mean(p.grad)
        self._refresh_inverses(meta.get("steps", 0) % self.inverse_interval == 0, damping)
        updates = self._preconditioned(group)
        scale = self._kl_scale(updates, lr, group["kl_clip"])
        changes = {}
        for p, update in updates.items():
            buf = self.state[p].get("momentum_buffer")
            update = update.to(p.dtype) * scale
            buf = update if buf is None else buf.mul_(group["momentum"]).add_(update)
            self.state[p]["momentum_buffer"] = buf
            changes[p] = -lr * buf
            p.add_(changes[p])
        meta["steps"] = meta.get("steps", 0) + 1
        if self.adapt_damping and self._batch is not None and meta["steps"] % self.adapt_damping == 0:
            group["damping"] = damping = self._levenberg_marquardt(changes, damping)
        if self.callback is not None:
            self.callback({"step": meta["steps"], "loss": None if loss is None else float(loss),
                           "kl_scale": scale, "damping": damping})
        return loss

    def _levenberg_marquardt(self, changes: dict, damping: float) -> float:
        """ρ = actual / predicted reduction of the loss on the last batch, the prediction from the damped
        K-FAC quadratic model q(Δ) = ∇Lᵀ Δ + ½ Δᵀ (A ⊗ G + λ) Δ; the damping follows ρ."""
        inputs, targets, before = self._batch
        predicted = sum(float((p.grad * d).sum()) for p, d in changes.items() if p.grad is not None)
        predicted += 0.5 * damping * sum(float((d * d).sum()) for d in changes.values())
        for module in self.layers:
            state = self.state[module.weight]
            if "A" in state and module.weight in changes:
                a, g = self._block(module).factors()
                delta = _as_matrix(module, changes[module.weight], changes.get(module.bias)).to(a.dtype)
                predicted += 0.5 * float((delta * (g @ delta @ a)).sum())
        after = float(per_example_nll(self.loss, self.model(*inputs), targets).mean())
        return adjust_damping(damping, (after - before) / predicted if predicted < 0 else -1.0)

    def _refresh_inverses(self, due: bool, damping: float) -> None:
        """Recompute the damped inverses; distributed, layer i is inverted by rank i mod world, then broadcast."""
        stale = [m for m in self.layers if "A" in self.state[m.weight] and
                 (due or not ("dA" in self.state[m.weight] or "A_inv" in self.state[m.weight]))]
        if not self.distributed:
            for module in stale:
                self._block(module).refresh_inverse(damping)
            return
        import torch.distributed as dist
        rank, world = dist.get_rank(), dist.get_world_size()
        for i, module in enumerate(stale):
            block = self._block(module)
            if i % world == rank:
                block.refresh_inverse(damping)
            for name, shape in block.inverse_shapes().items():
                if i % world != rank:
                    block.state[name] = block.state["A"].new_empty(shape)
                block.state[name] = block.state[name].contiguous()  # collectives send the storage as laid out
                dist.broadcast(block.state[name], src=i % world)
            block.state["scale_damping"] = damping

    def _preconditioned(self, group) -> dict:
        """{param: update direction}: K-FAC for the layers, the plain gradient for skipped parameters."""
        updates, decay = {}, group["weight_decay"]
        for p in self.param_groups[0]["params"]:
            if p.grad is not None:
                updates[p] = p.grad + decay * p if decay else p.grad
        for module in self.layers:
            if module.weight.grad is None or "dA" not in self.state[module.weight] and \
                    "A_inv" not in self.state[module.weight]:
                continue
            matrix = gradient_matrix(module)
            if decay:
                matrix = matrix + decay * _parameter_matrix(module)
            weight, bias = _split(module, self._block(module).precondition(matrix, group["damping"]))
            updates[module.weight] = weight
            if bias is not None:
                updates[module.bias] = bias
        return updates

    def _kl_scale(self, updates: dict, lr: float, kl_clip) -> float:
        """min(1, √(kl_clip / (lr² Σ ⟨Δ, ∇⟩))): the update's predicted KL stays below kl_clip (Ba et al. 2017)."""
        if kl_clip is None:
            return 1.0
        inner = sum(float((u.to(p.grad.dtype) * p.grad).sum()) for p, u in updates.items() if p.grad is not None)
        if not inner > 0 or not math.isfinite(inner):
            return 1.0 if math.isfinite(inner) else 0.0
        return min(1.0, math.sqrt(kl_clip / (lr ** 2 * inner)))


def adjust_damping(damping: float, rho: float, omega: float = 0.95, bounds=(1e-8, 1e2)) -> float:
    """Levenberg–Marquardt rule (Martens & Grosse 2015): λ·ω when the quadratic model predicted well
    (ρ > 3/4), λ/ω when badly (ρ < 1/4), else unchanged; kept within `bounds`."""
    if rho > 0.75:
        damping *= omega
    elif rho < 0.25:
        damping /= omega
    return min(max(damping, bounds[0]), bounds[1])


def _as_matrix(module: nn.Module, weight: torch.Tensor, bias) -> torch.Tensor:
    matrix = weight.reshape(weight.shape[0], -1)
    return torch.cat([matrix, bias[:, None]], dim=1) if module.bias is not None else matrix


def _distributed_default() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _all_reduce_mean(tensor: torch.Tensor) -> None:
    torch.distributed.all_reduce(tensor)
    tensor.div_(torch.distributed.get_world_size())


def _parameter_matrix(module: nn.Module) -> torch.Tensor:
    return _as_matrix(module, module.weight, module.bias)


def _kfac_layers(model: nn.Module, skip: tuple) -> list:
    layers, refused = [], []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if isinstance(module, nn.Conv2d) and (module.groups != 1 or module.padding_mode != "zeros"):
            refused.append(f"{name} (Conv2d with groups={module.groups}, padding_mode={module.padding_mode!r})")
        elif isinstance(module, SUPPORTED):
            layers.append(module)
        elif not (skip and isinstance(module, skip)):
            refused.append(f"{name} ({type(module).__name__})")
    if refused:
        raise ValueError(f"K-FAC supports nn.Linear and nn.Conv2d; unsupported modules with parameters: "
                         f"{', '.join(refused)}. Pass their types in skip=(...) to update them with plain SGD.")
    if not layers:
        raise ValueError("the model has no nn.Linear or nn.Conv2d layer to precondition")
    return layers


def _validate(**values) -> None:
    for name, value in values.items():
        if value is None and name == "kl_clip":
            continue
        if name in ("factor_interval", "inverse_interval"):
            ok = isinstance(value, int) and value >= 1
        elif name in ("momentum", "ema_decay"):
            ok = 0 <= value < 1
        elif name in ("lr", "kl_clip"):
            ok = value > 0
        else:
            ok = value >= 0
        if not ok:
            raise ValueError(f"invalid {name}: {value}")


# -- the naive baseline ---------------------------------------------------------------------------------
def exact_block_directions(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, loss: str = "cross_entropy",
                           damping: float = 1e-3) -> dict:
    """The naive natural gradient K-FAC approximates: for every parameter tensor, its exact (empirical)
    Fisher block F = (1/B) Σ_b vec ∇ℓ_b vec ∇ℓ_bᵀ from per-example gradients (torch.func), and
    (F + λI)⁻¹ ∇L by a dense solve — O(P³) per block, which is what the seed's cost claim is about."""
    from torch.func import functional_call, grad, vmap
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}

    def nll(p, xb, yb):
        return per_example_nll(loss, functional_call(model, p, (xb[None],)), yb[None]).sum()

    per_example = vmap(grad(nll), in_dims=(None, 0, 0))(params, x, targets)
    out = {}
    for name, g in per_example.items():
        flat = g.reshape(len(x), -1)
        fisher = flat.T @ flat / len(x)
        fisher.diagonal().add_(damping)
        out[name] = torch.linalg.solve(fisher, flat.mean(dim=0)).reshape(params[name].shape)
    return out
