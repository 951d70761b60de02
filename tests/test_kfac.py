"""K-FAC: the factors against exact Fisher blocks (torch.func per-example gradients), the preconditioned
gradient against the exact damped natural gradient where A ⊗ G is exact, training, damping, robustness."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn
from torch.func import functional_call, grad, vmap

from numeric.nets.kfac import KFAC, per_example_nll
from numeric.nets.kronecker import KroneckerBlock
from numeric.nets.linalg import robust_eigh


def per_example_fisher(model, x, targets, loss):
    """E_b[vec ∇ℓ_b vec ∇ℓ_bᵀ] over the layer's (weight, bias) in K-FAC's column-major (in ⊗ out) order."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def nll(p, xb, yb):
        return per_example_nll(loss, functional_call(model, p, (xb[None],)), yb[None]).sum()

    grads = vmap(grad(nll), in_dims=(None, 0, 0))(params, x, targets)
    matrix = torch.cat([grads["weight"], grads["bias"][..., None]], dim=2)   # (B, out, in + 1)
    flat = matrix.transpose(1, 2).reshape(len(x), -1)                         # vec: columns stacked
    return flat.T @ flat / len(x), matrix


def train(model, optimizer, x, y, steps: int) -> list:
    """`steps` K-FAC updates on one batch; the loss before each."""
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        losses.append(float(optimizer.backward(model(x), y)))
        optimizer.step()
    return losses


def one_step_factors(model, x, y, loss, fisher="empirical"):
    optimizer = KFAC(model, lr=0.1, loss=loss, fisher=fisher, ema_decay=0.5, kl_clip=None, momentum=0.0)
    optimizer.zero_grad()
    optimizer.backward(model(x), y)
    return optimizer, KroneckerBlock(model, optimizer.state[model.weight], "eigen").factors()


@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce"])
def test_kronecker_product_is_the_exact_fisher_block_when_inputs_are_shared(loss):
    torch.manual_seed(0)
    model = nn.Linear(4, 3).double()
    x = torch.randn(1, 4, dtype=torch.float64).repeat(16, 1)        # one input: A ⊗ G is exact
    y = {"cross_entropy": torch.randint(0, 3, (16,)), "mse": torch.randn(16, 3, dtype=torch.float64),
         "bce": torch.randint(0, 2, (16, 3)).double()}[loss]
    _, (a, g) = one_step_factors(model, x, y, loss)
    exact, _ = per_example_fisher(model, x, y, loss)
    np.testing.assert_allclose(torch.kron(a, g).numpy(), exact.numpy(), rtol=1e-10, atol=1e-12)


def test_factors_equal_the_exact_blocks_under_the_independence_assumption():
    torch.manual_seed(1)
    model = nn.Linear(5, 4).double()
    x = torch.randn(64, 5, dtype=torch.float64)
    y = torch.randint(0, 4, (64,))
    _, (a, g) = one_step_factors(model, x, y, "cross_entropy")
    augmented = torch.cat([x, torch.ones(64, 1, dtype=torch.float64)], dim=1)
    np.testing.assert_allclose(a.numpy(), (augmented.T @ augmented / 64).numpy(), rtol=1e-12)
    _, matrix = per_example_fisher(model, x, y, "cross_entropy")
    per_example_g = matrix[:, :, -1]                                 # ∂ℓ_b/∂b = g_b
    np.testing.assert_allclose(g.numpy(), (per_example_g.T @ per_example_g / 64).numpy(), rtol=1e-10)


def test_preconditioned_gradient_is_the_exact_damped_natural_gradient_when_kronecker_exact():
    torch.manual_seed(2)
    model = nn.Linear(3, 2).double()
    x = torch.randn(1, 3, dtype=torch.float64).repeat(32, 1)
    y = torch.randn(32, 2, dtype=torch.float64)
    damping = 0.1
    optimizer, _ = one_step_factors(model, x, y, "mse")
    exact, matrix = per_example_fisher(model, x, y, "mse")
    mean_grad = matrix.mean(dim=0)                                  # ∇ of the mean loss, (out, in + 1)
    natural = torch.linalg.solve(exact + damping * torch.eye(len(exact), dtype=torch.float64),
                                 mean_grad.T.reshape(-1))
    block = KroneckerBlock(model, optimizer.state[model.weight], "eigen")
    block.refresh_inverse(damping)
    ours = block.precondition(mean_grad, damping)
    np.testing.assert_allclose(ours.T.reshape(-1).numpy(), natural.numpy(), rtol=1e-9, atol=1e-12)


def conv_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 3 * 3, 3))


def test_conv_factors_sum_over_positions():
    torch.manual_seed(3)
    conv = nn.Conv2d(2, 3, 1).double()
    x = torch.randn(8, 2, 1, 1, dtype=torch.float64)                # 1×1 image, 1×1 kernel: a linear layer
    model = nn.Sequential(conv, nn.Flatten())
    linear = nn.Linear(2, 3).double()
    linear.weight.data = conv.weight.data.reshape(3, 2).clone()
    linear.bias.data = conv.bias.data.clone()
    y = torch.randint(0, 3, (8,))
    opt_conv = KFAC(model, loss="cross_entropy", fisher="empirical", ema_decay=0.5)
    opt_conv.backward(model(x), y)
    opt_lin = KFAC(linear, loss="cross_entropy", fisher="empirical", ema_decay=0.5)
    opt_lin.backward(linear(x.reshape(8, 2)), y)
    for key in ("A", "G"):
        np.testing.assert_allclose(opt_conv.state[conv.weight][key].numpy(),
                                   opt_lin.state[linear.weight][key].numpy(), rtol=1e-12)


def digits_batch(n=256):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    data = sklearn_datasets.load_digits()
    x = torch.tensor(data.data[:n] / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target[:n])
    return x, y


@pytest.mark.parametrize("inverse", ["eigen", "cholesky"])
def test_loss_goes_down_on_digits(inverse):
    x, y = digits_batch()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    optimizer = KFAC(model, lr=0.1, damping=1e-2, loss="cross_entropy", inverse=inverse, seed=0)
    losses = train(model, optimizer, x, y, 40)
    assert losses[-1] < 0.3 * losses[0]


def test_conv_network_trains():
    torch.manual_seed(4)
    x = torch.randn(64, 1, 8, 8)
    y = (x[:, 0, :4].mean(dim=(1, 2)) > 0).long() + (x[:, 0, 4:].mean(dim=(1, 2)) > 0).long()
    model = conv_net()
    optimizer = KFAC(model, lr=0.05, damping=1e-2, seed=0)
    losses = train(model, optimizer, x, y, 30)
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("damping", [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
@pytest.mark.parametrize("inverse", ["eigen", "cholesky"])
def test_damping_grid_never_gives_nan(damping, inverse):
    x, y = digits_batch(128)
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    optimizer = KFAC(model, lr=0.5, damping=damping, inverse=inverse, inverse_interval=3, seed=0)
    losses = train(model, optimizer, x, y, 10)
    assert np.all(np.isfinite(losses)) and all(torch.isfinite(p).all() for p in model.parameters())


def test_state_dict_round_trip_continues_identically():
    x, y = digits_batch(64)

    def run(model, optimizer, steps):
        train(model, optimizer, x, y, steps)

    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10))
    optimizer = KFAC(model, lr=0.1, fisher="empirical", inverse_interval=2)
    run(model, optimizer, 3)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    run(model, optimizer, 2)
    clone = nn.Sequential(nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10))
    clone.load_state_dict(saved_model)
    restored = KFAC(clone, lr=0.1, fisher="empirical", inverse_interval=2)
    restored.load_state_dict(saved_opt)
    run(clone, restored, 2)
    for a, b in zip(model.parameters(), clone.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_unsupported_modules_are_refused_or_skipped():
    model = nn.Sequential(nn.Linear(4, 4), nn.GroupNorm(2, 4), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="GroupNorm"):
        KFAC(model)
    optimizer = KFAC(model, skip=(nn.GroupNorm,), fisher="empirical")
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    before = model[1].weight.detach().clone()
    optimizer.backward(model(x), y)
    optimizer.step()
    assert not torch.equal(before, model[1].weight)                  # skipped: plain gradient update
    with pytest.raises(ValueError, match="groups"):
        KFAC(nn.Conv2d(4, 4, 3, groups=2))
    for bad in (dict(lr=0), dict(damping=-1), dict(momentum=1.0), dict(inverse_interval=0),
                dict(loss="hinge"), dict(fisher="exact"), dict(inverse="lu")):
        with pytest.raises(ValueError):
            KFAC(nn.Linear(2, 2), **bad)


def test_eigh_failures_fall_back_with_a_warning(monkeypatch):
    def broken(_):
        raise torch.linalg.LinAlgError("forced")
    monkeypatch.setattr(torch.linalg, "eigh", broken)
    with pytest.warns(RuntimeWarning, match="diagonal"):
        vectors, values = robust_eigh(torch.tensor([[2.0, 0.5], [0.5, 1.0]]))
    assert torch.equal(vectors, torch.eye(2)) and values.tolist() == [2.0, 1.0]


def test_factors_stay_float32_for_bfloat16_models():
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).to(torch.bfloat16)
    optimizer = KFAC(model, lr=0.05, damping=1e-2)
    x, y = torch.randn(32, 6, dtype=torch.bfloat16), torch.randint(0, 3, (32,))
    for _ in range(3):
        optimizer.zero_grad()
        optimizer.backward(model(x), y)
        optimizer.step()
    assert optimizer.state[model[0].weight]["A"].dtype == torch.float32
    assert all(torch.isfinite(p.float()).all() for p in model.parameters())


def test_naive_exact_block_equals_kfac_when_kronecker_exact():
    from numeric.nets.kfac import exact_block_directions
    torch.manual_seed(8)
    model = nn.Linear(3, 2, bias=False).double()
    x = torch.randn(1, 3, dtype=torch.float64).repeat(16, 1)
    y = torch.randint(0, 2, (16,))
    optimizer, _ = one_step_factors(model, x, y, "cross_entropy")
    block = KroneckerBlock(model, optimizer.state[model.weight], "eigen")
    block.refresh_inverse(0.05)
    naive = exact_block_directions(model, x, y, "cross_entropy", damping=0.05)["weight"]
    # K-FAC vectorises column-major, the naive block row-major; the damped inverse is the same operator
    np.testing.assert_allclose(block.precondition(model.weight.grad, 0.05).numpy(), naive.numpy(), rtol=1e-9)


def _distributed_worker(rank, world, port, path, inputs, targets, steps):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10)).double()
        optimizer = KFAC(model, lr=0.2, damping=1e-2, fisher="empirical", inverse_interval=2, momentum=0.5)
        share = len(inputs) // world
        x, y = inputs[rank * share:(rank + 1) * share], targets[rank * share:(rank + 1) * share]
        for _ in range(steps):
            optimizer.zero_grad()
            optimizer.backward(model(x), y)
            optimizer.step()
        if rank == 0:
            torch.save([p.detach() for p in model.parameters()], path)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_distributed_run_equals_the_single_process_run_on_the_same_global_batch(tmp_path):
    import socket

    import torch.multiprocessing as mp
    x, y = digits_batch(128)
    x = x.double()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_distributed_worker, args=(2, port, str(tmp_path / "dist.pt"), x, y, 6), nprocs=2, join=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10)).double()
    optimizer = KFAC(model, lr=0.2, damping=1e-2, fisher="empirical", inverse_interval=2, momentum=0.5)
    for _ in range(6):
        optimizer.zero_grad()
        optimizer.backward(model(x), y)
        optimizer.step()
    for single, distributed in zip(model.parameters(), torch.load(tmp_path / "dist.pt")):
        np.testing.assert_allclose(distributed.numpy(), single.detach().numpy(), rtol=1e-9, atol=1e-11)


def test_levenberg_marquardt_rule_and_adaptive_damping_run():
    from numeric.nets.kfac import adjust_damping
    assert adjust_damping(1e-2, 0.9) == pytest.approx(0.95e-2)
    assert adjust_damping(1e-2, 0.1) == pytest.approx(1e-2 / 0.95)
    assert adjust_damping(1e-2, 0.5) == 1e-2
    assert adjust_damping(1e-8, 1.0) == 1e-8 and adjust_damping(1e2, -5.0) == 1e2
    x, y = digits_batch(128)
    torch.manual_seed(9)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))
    seen = []
    optimizer = KFAC(model, lr=0.1, damping=1.0, adapt_damping=1, seed=0, callback=seen.append)
    for _ in range(30):
        optimizer.zero_grad()
        optimizer.backward(model(x), y)
        optimizer.step()
    dampings = [s["damping"] for s in seen]
    assert dampings[-1] < 1.0                      # good quadratic models: the damping is lowered
    assert all(np.isfinite(dampings)) and all(torch.isfinite(p).all() for p in model.parameters())
    with pytest.raises(ValueError, match="adapt_damping"):
        KFAC(model, adapt_damping=0)


def test_ekfac_rescaling_is_the_exact_fisher_diagonal_in_the_kronecker_eigenbasis():
    torch.manual_seed(10)
    model = nn.Linear(4, 3).double()
    x, y = torch.randn(64, 4, dtype=torch.float64), torch.randint(0, 3, (64,))
    optimizer = KFAC(model, lr=1e-12, loss="cross_entropy", fisher="empirical", inverse="ekfac", ema_decay=0.0,
                     kl_clip=None, momentum=0.0)   # lr ~ 0: both steps see the same parameters
    for _ in range(2):  # the first step builds the basis, the second measures S in it (ema_decay 0: this batch)
        optimizer.zero_grad()
        optimizer.backward(model(x), y)
        state = optimizer.state[model.weight]
        basis = (state["QG"].clone(), state["QA"].clone()) if "QG" in state else None
        optimizer.step()
    _, per_example = per_example_fisher(model, x, y, "cross_entropy")       # (B, out, in + 1)
    qg, qa = basis
    exact = torch.einsum("oi,boj,jk->bik", qg, per_example, qa).pow(2).mean(dim=0)
    np.testing.assert_allclose(state["S"].numpy(), exact.numpy(), rtol=1e-9, atol=1e-14)


def test_ekfac_trains_and_equals_kfac_when_kronecker_exact():
    x, y = digits_batch(128)
    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))
    optimizer = KFAC(model, lr=0.1, damping=1e-2, inverse="ekfac", inverse_interval=5, seed=0)
    losses = train(model, optimizer, x, y, 40)
    assert losses[-1] < 0.3 * losses[0]
    shared = torch.randn(1, 3, dtype=torch.float64).repeat(16, 1)
    targets = torch.randn(16, 2, dtype=torch.float64)
    directions = {}
    for inverse in ("eigen", "ekfac"):
        torch.manual_seed(12)
        layer = nn.Linear(3, 2).double()
        opt = KFAC(layer, lr=1e-12, loss="mse", fisher="empirical", inverse=inverse, ema_decay=0.0, kl_clip=None,
                   momentum=0.0)
        for _ in range(2):
            opt.zero_grad()
            opt.backward(layer(shared), targets)
            if _ == 0:
                opt.step()
        block = KroneckerBlock(layer, opt.state[layer.weight], inverse)
        directions[inverse] = block.precondition(torch.cat([layer.weight.grad, layer.bias.grad[:, None]], 1), 0.1)
    np.testing.assert_allclose(directions["ekfac"].numpy(), directions["eigen"].numpy(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce"])
def test_ggn_factor_is_the_mean_output_fisher_for_a_linear_layer(loss):
    """G = E_b[F_out(z_b)] when the layer's output is the network's output; F_out from symgeo against the
    textbook forms: softmax covariance, identity, σ(z)(1 − σ(z))."""
    torch.manual_seed(13)
    model = nn.Linear(4, 3).double()
    x = torch.randn(32, 4, dtype=torch.float64)
    y = {"cross_entropy": torch.randint(0, 3, (32,)), "mse": torch.randn(32, 3, dtype=torch.float64),
         "bce": torch.randint(0, 2, (32, 3)).double()}[loss]
    optimizer = KFAC(model, loss=loss, fisher="ggn", ema_decay=0.5)
    optimizer.backward(model(x), y)
    _, g = KroneckerBlock(model, optimizer.state[model.weight], "eigen").factors()
    with torch.no_grad():
        z = model(x)
    if loss == "cross_entropy":
        p = torch.softmax(z, dim=-1)
        expected = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]).mean(dim=0)
    elif loss == "mse":
        expected = torch.eye(3, dtype=torch.float64)
    else:
        s = torch.sigmoid(z)
        expected = torch.diag_embed(s * (1 - s)).mean(dim=0)
    np.testing.assert_allclose(g.numpy(), expected.numpy(), rtol=1e-10, atol=1e-14)


def test_ggn_kfac_trains():
    x, y = digits_batch(128)
    y = y % 3                                   # three classes keep the symbolic categorical small
    torch.manual_seed(14)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 3))
    optimizer = KFAC(model, lr=0.1, damping=1e-2, fisher="ggn")
    losses = train(model, optimizer, x, y, 30)
    assert losses[-1] < 0.5 * losses[0]


def test_close_removes_the_hooks():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = KFAC(model, adapt_damping=2)
    assert model[0]._forward_hooks and model._forward_pre_hooks
    opt.close()
    assert not model[0]._forward_hooks and not model[2]._forward_hooks and not model._forward_pre_hooks
    model(torch.randn(5, 3))
    assert not opt._captured


def test_any_declared_family_is_a_head_for_kfac():
    """A Poisson head with a log link (λ = e^z): G = E_b[λ_b] and the loss is −log p(y | λ), from symgeo's
    generated Poisson; fisher='true' is refused (the head cannot draw targets)."""
    from numeric.nets.heads import Head
    torch.manual_seed(3)
    head = Head("poisson", link=torch.exp)
    model = nn.Linear(4, 1).double()
    x = torch.randn(64, 4, dtype=torch.float64)
    y = torch.poisson(torch.exp(0.3 * x[:, :1])).reshape(-1)
    with pytest.raises(ValueError, match="fisher='ggn'"):
        KFAC(model, loss=head, fisher="true")
    optimizer = KFAC(model, loss=head, fisher="ggn", ema_decay=0.5)
    loss = optimizer.backward(model(x), y)
    with torch.no_grad():
        rate = torch.exp(model(x)).reshape(-1)
    expected_loss = (rate - y * torch.log(rate) + torch.lgamma(y + 1)).mean()
    assert torch.allclose(loss, expected_loss)
    _, g = KroneckerBlock(model, optimizer.state[model.weight], "eigen").factors()
    assert torch.allclose(g, rate.mean().reshape(1, 1))
    optimizer.step()  # and it steps
    assert torch.isfinite(model.weight).all()


@pytest.mark.parametrize("inverse", ["eigen", "cholesky", "ekfac"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_gradient_skips_the_step_and_leaves_weights_and_momentum(inverse, bad):
    """The step's one inner product Σ⟨u, ∇⟩ is its finiteness check: a NaN or ±inf in any gradient entry
    (here each entry of each parameter in turn) makes it non-finite, and nothing moves."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, y = torch.randn(16, 3, dtype=torch.float64), torch.randint(0, 2, (16,))
    optimizer = KFAC(model, lr=0.1, inverse=inverse, fisher="empirical", momentum=0.9)
    train(model, optimizer, x, y, 2)
    for p in model.parameters():
        for index in range(p.numel()):
            before = copy.deepcopy(model.state_dict())
            buffers = [optimizer.state[q]["momentum_buffer"].clone() for q in model.parameters()]
            optimizer.zero_grad()
            optimizer.backward(model(x), y)
            p.grad.view(-1)[index] = bad
            with pytest.warns(RuntimeWarning, match="non-finite gradient"):
                optimizer.step()
            for name, value in model.state_dict().items():
                assert torch.equal(value, before[name])
            for q, buffer in zip(model.parameters(), buffers):
                assert torch.equal(optimizer.state[q]["momentum_buffer"], buffer)
    train(model, optimizer, x, y, 1)  # and a finite batch steps again
    assert not torch.equal(model.state_dict()["0.weight"], before["0.weight"])


def test_layer_hooks_are_present_only_on_steps_that_collect_statistics():
    """A forward hook slows its module's every call: K-FAC keeps them only while factors are due, and a
    loaded state re-arms them for its own step count."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    optimizer = KFAC(model, factor_interval=3, inverse_interval=3, fisher="empirical")
    armed = []
    for _ in range(7):
        armed.append(bool(model[0]._forward_hooks))
        train(model, optimizer, x, y, 1)
    assert armed == [True, False, False, True, False, False, True]
    assert optimizer.state[model[0].weight]["count"] == 3         # steps 0, 3, 6 folded a batch
    saved = optimizer.state_dict()
    optimizer.close()
    fresh = KFAC(model, factor_interval=3, inverse_interval=3, fisher="empirical")
    assert model[0]._forward_hooks                                  # step 0 collects
    fresh.load_state_dict(saved)                                    # step 7 does not
    assert fresh.steps == 7 and not model[0]._forward_hooks and not model[2]._forward_hooks
    train(model, fresh, x, y, 2)
    assert model[0]._forward_hooks and fresh.state[model[0].weight]["count"] == 3
    fresh.close()
    assert not model[0]._forward_hooks and not model[2]._forward_hooks


@pytest.mark.parametrize("rows", [8, 5000])  # a padded copy for small inputs, the column sums for large ones
@pytest.mark.parametrize("bias", [True, False])
def test_moment_sum_of_the_inputs_with_a_trailing_one(rows, bias):
    from numeric.nets.kronecker import _moment_sum
    a = torch.randn(rows, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(rows))
    padded = torch.cat([a, torch.ones(rows, 1, dtype=a.dtype)], dim=1) if bias else a
    expected = torch.einsum("ni,nj->ij", padded, padded)
    assert torch.allclose(_moment_sum(a, bias), expected, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("inverse", ["eigen", "ekfac"])
def test_convolution_statistics_built_a_few_examples_at_a_time_equal_the_whole_batch(monkeypatch, inverse):
    """A convolution's patches are built in chunks of examples (a bounded temporary): A, G and EKFAC's S
    equal the whole batch's, and A is E[ã ãᵀ] over examples and positions of the unfolded input."""
    from numeric.nets import kronecker
    torch.manual_seed(4)
    conv = nn.Conv2d(3, 4, 3, padding=1, stride=2).double()
    x = torch.randn(10, 3, 7, 7, dtype=torch.float64)
    g = torch.randn(10, 4, 4, 4, dtype=torch.float64)
    state: dict = {}
    block = KroneckerBlock(conv, state, inverse)
    block.update(x, g, 0.5, torch.float64)
    block.refresh_inverse(0.1)                            # EKFAC's S needs an eigenbasis
    whole = dict(block.statistics(x, g, torch.float64, grad_scale=3.0))
    monkeypatch.setitem(kronecker.PATCH_ENTRIES, "cpu", 27 * 16 * 3)  # 3 examples a chunk: 3 + 3 + 3 + 1
    assert block._examples_per_chunk(g) == 3
    chunked = dict(block.statistics(x, g, torch.float64, grad_scale=3.0))
    assert set(chunked) == set(whole) == ({"A", "G", "S"} if inverse == "ekfac" else {"A", "G"})
    for key, value in whole.items():
        assert torch.allclose(chunked[key], value, rtol=1e-12, atol=1e-12), key
    patches = torch.nn.functional.unfold(x, 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 27)
    padded = torch.cat([patches, torch.ones(len(patches), 1, dtype=x.dtype)], dim=1)
    assert torch.allclose(chunked["A"], padded.T @ padded / len(padded), rtol=1e-12, atol=1e-12)
    rows = g.permute(0, 2, 3, 1).reshape(-1, 4)
    assert torch.allclose(chunked["G"], 9.0 * rows.T @ rows / 10, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("inverse", ["eigen", "cholesky", "ekfac"])
@pytest.mark.parametrize("layer", ["linear", "one-output", "no-bias", "conv"])
def test_layer_directions_equal_the_preconditioned_gradient_matrix(inverse, layer):
    """directions() takes ∇W and ∇b apart (no [∇W | ∇b] is built; one output skips Q_G): the same numbers
    as precondition() on the (out, in + 1) gradient matrix, with and without weight decay."""
    torch.manual_seed(5)
    module = {"linear": nn.Linear(5, 3), "one-output": nn.Linear(5, 1),
              "no-bias": nn.Linear(5, 3, bias=False), "conv": nn.Conv2d(2, 3, 3, padding=1)}[layer].double()
    x = torch.randn(12, 2, 4, 4) if layer == "conv" else torch.randn(12, 5)
    x = x.double()
    out = module(x)
    block = KroneckerBlock(module, {}, inverse)
    block.update(x, torch.randn_like(out), 0.5, torch.float64)
    block.refresh_inverse(0.1)
    if inverse == "ekfac":
        block.update(x, torch.randn_like(out), 0.5, torch.float64)  # S moves off d_G d_Aᵀ
    out.pow(2).sum().backward()
    for decay in (0.0, 0.3):
        directions = block.directions(0.1, decay)
        params = [module.weight] + ([module.bias] if module.bias is not None else [])
        matrix = torch.cat([(p.grad + decay * p.detach()).reshape(len(p), -1) for p in params], dim=1)
        expected = block.precondition(matrix, 0.1)
        assert torch.allclose(directions[module.weight].reshape(len(expected), -1),
                              expected[:, :module.weight[0].numel()], rtol=1e-10, atol=1e-12)
        if module.bias is not None:
            assert torch.allclose(directions[module.bias], expected[:, -1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["optimizer", "preconditioner"])
@pytest.mark.parametrize("layer", ["linear", "conv"])
def test_a_frozen_bias_is_left_out_of_its_layers_block(mode, layer):
    """A bias frozen before K-FAC is built is not part of the block (A = E[a aᵀ] without the row of ones,
    the Fisher of the weight alone); one frozen later counts as a zero gradient (also in the optimizer's
    damping rule, whose quadratic model reads the block). Both train, and neither frozen bias moves."""
    from numeric.nets.preconditioner import KFACPreconditioner
    torch.manual_seed(6)
    if layer == "linear":
        model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
        x = torch.randn(32, 3, dtype=torch.float64)
    else:
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(8, 2)).double()
        x = torch.randn(32, 1, 4, 4, dtype=torch.float64)
    y = torch.randint(0, 2, (32,))
    model[0].bias.requires_grad_(False)
    frozen = model[0].bias.detach().clone()

    def loss_and_step(optimizer, pre):
        optimizer.zero_grad()
        if pre is None:
            loss = optimizer.backward(model(x), y)
        else:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            pre.step()
        optimizer.step()
        return float(loss.detach())

    if mode == "optimizer":
        optimizer, pre = KFAC(model, lr=0.1, fisher="empirical", ema_decay=0.5, adapt_damping=1), None
        state = optimizer.state[model[0].weight]
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        pre = KFACPreconditioner(model, ema_decay=0.5, damping=0.1)
        state = pre.state[model[0]]
    losses = [loss_and_step(optimizer, pre)]
    a, _ = KroneckerBlock(model[0], state, "eigen").factors()
    rows = torch.nn.functional.unfold(x, 3).transpose(1, 2).reshape(-1, 9) if layer == "conv" else x
    assert torch.allclose(a, rows.T @ rows / len(rows), rtol=1e-10, atol=1e-12)  # no row of ones
    losses += [loss_and_step(optimizer, pre) for _ in range(10)]
    model[-1].bias.requires_grad_(False)                      # frozen after the block was made
    model[-1].bias.grad = None
    last = model[-1].bias.detach().clone()
    losses += [loss_and_step(optimizer, pre) for _ in range(10)]
    assert losses[-1] < losses[0]
    assert torch.equal(model[0].bias, frozen) and torch.equal(model[-1].bias, last)
