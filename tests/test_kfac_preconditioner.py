"""KFACPreconditioner (loss.backward(); pre.step(); optimizer.step()) against the KFAC optimizer and
against factors written here."""
import copy

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from numeric.nets.kfac import KFAC  # noqa: E402
from numeric.nets.preconditioner import KFACPreconditioner  # noqa: E402


def _problem(seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(48, 6, generator=generator, dtype=dtype)
    y = torch.randint(0, 3, (48,), generator=generator)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).to(dtype)
    return model, x, y


@pytest.mark.parametrize("inverse", ["eigen", "cholesky", "ekfac"])
def test_the_update_equals_the_optimizer_modes(inverse):
    """SGD(lr) after the preconditioner = KFAC(lr, momentum 0, empirical Fisher), step after step."""
    model_a, x, y = _problem()
    model_b = copy.deepcopy(model_a)
    settings = dict(damping=1e-2, ema_decay=0.9, inverse_interval=2, inverse=inverse)
    kfac = KFAC(model_a, lr=0.1, momentum=0.0, kl_clip=None, fisher="empirical", **settings)
    pre = KFACPreconditioner(model_b, **settings)
    sgd = torch.optim.SGD(model_b.parameters(), lr=0.1)
    for _ in range(4):
        kfac.zero_grad()
        kfac.backward(model_a(x), y)
        kfac.step()
        sgd.zero_grad()
        nn.functional.cross_entropy(model_b(x), y).backward()
        pre.step()
        sgd.step()
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_accumulated_micro_batches_give_the_full_batch_factors():
    model_a, x, y = _problem(1)
    model_b = copy.deepcopy(model_a)
    full = KFACPreconditioner(model_a, inverse_interval=1)
    nn.functional.cross_entropy(model_a(x), y).backward()
    full.step()
    parts = KFACPreconditioner(model_b, inverse_interval=1)
    for xs, ys in zip(x.chunk(3), y.chunk(3)):
        (nn.functional.cross_entropy(model_b(xs), ys) / 3).backward()
    parts.step()
    for module_a, module_b in zip(full.layers, parts.layers):
        for key in ("A", "G"):
            torch.testing.assert_close(full.state[module_a][key], parts.state[module_b][key])
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-10)


def test_the_factors_are_the_layer_statistics():
    """A = E[ã ãᵀ] of the layer's inputs (with the bias 1), G = E[g gᵀ] of per-example output gradients."""
    model, x, y = _problem(2)
    pre = KFACPreconditioner(model, ema_decay=0.0)
    nn.functional.cross_entropy(model(x), y).backward()
    pre.step()
    last = model[2]
    with torch.no_grad():
        hidden = torch.tanh(model[0](x))
    a_tilde = torch.cat([hidden, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    logits = model(x).detach()
    per_example = torch.softmax(logits, -1) - nn.functional.one_hot(y, 3)
    a, g = pre._block(last).factors()
    torch.testing.assert_close(a, a_tilde.T @ a_tilde / len(x))
    torch.testing.assert_close(g, per_example.T @ per_example / len(x))


def test_adamw_scheduler_and_grad_scaler_run_and_the_scale_is_divided_out():
    model_a, x, y = _problem(3, torch.float32)
    model_b = copy.deepcopy(model_a)
    plain = KFACPreconditioner(model_a, ema_decay=0.0)
    nn.functional.cross_entropy(model_a(x), y).backward()
    plain.step()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    optimizer = torch.optim.AdamW(model_b.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    scaled = KFACPreconditioner(model_b, ema_decay=0.0, grad_scaler=scaler, kl_clip=1e-3,
                                lr=lambda: optimizer.param_groups[0]["lr"])
    scaler.scale(nn.functional.cross_entropy(model_b(x), y)).backward()
    scaler.unscale_(optimizer)
    scaled.step()
    for module_a, module_b in zip(plain.layers, scaled.layers):
        torch.testing.assert_close(plain._block(module_a).factors()[1], scaled._block(module_b).factors()[1],
                                   rtol=1e-5, atol=1e-7)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert all(torch.isfinite(p).all() for p in model_b.parameters())


def test_overflowed_gradients_are_left_to_the_scaler():
    model, x, y = _problem(4)
    pre = KFACPreconditioner(model)
    nn.functional.cross_entropy(model(x), y).backward()
    model[0].weight.grad[0, 0] = float("inf")
    before = [p.grad.clone() for p in model.parameters()]
    with pytest.warns(RuntimeWarning, match="non-finite"):
        pre.step()
    assert all(torch.equal(b, p.grad) for b, p in zip(before, model.parameters()))
    assert not pre.state[model[0]]


def test_close_removes_the_hooks_and_bad_settings_are_refused():
    model, _, _ = _problem()
    pre = KFACPreconditioner(model)
    pre.close()
    assert not model[0]._forward_hooks
    with pytest.raises(ValueError, match="kl_clip needs lr"):
        KFACPreconditioner(model, kl_clip=1e-3)
    with pytest.raises(ValueError, match="unsupported"):
        KFACPreconditioner(nn.Sequential(nn.Linear(2, 2), nn.GRU(2, 2)))


def test_two_forward_passes_before_one_backward_pair_each_input_with_its_own_gradient():
    """loss = f(x₁) + f(x₂) back-propagates x₂'s gradients first; the factors are still those of the two
    halves of one batch."""
    _, x, y = _problem(5)
    torch.manual_seed(5)
    model_a = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 3)).double()
    model_b = copy.deepcopy(model_a)
    whole = KFACPreconditioner(model_a, ema_decay=0.0)
    nn.functional.cross_entropy(model_a(x), y).backward()
    whole.step()
    halves = KFACPreconditioner(model_b, ema_decay=0.0)
    (x1, x2), (y1, y2) = x.chunk(2), y.chunk(2)
    ((nn.functional.cross_entropy(model_b(x1), y1) + nn.functional.cross_entropy(model_b(x2), y2)) / 2).backward()
    halves.step()
    for module_a, module_b in zip(whole.layers, halves.layers):
        for key in whole.state[module_a]:  # A, G of the linear layers; the LayerNorm's per-example diagonal
            torch.testing.assert_close(whole.state[module_a][key], halves.state[module_b][key])


def test_a_batch_whose_statistics_overflow_leaves_that_layers_factors_as_they_were():
    """An input of 1e20 in float32: the first layer's A overflows (its square passes 3.4e38) while the loss and
    every gradient stay finite (tanh saturates); that layer keeps its factors, the others take the batch."""
    model, x, y = _problem(5, dtype=torch.float32)
    pre = KFACPreconditioner(model, factor_interval=1)
    nn.functional.cross_entropy(model(x), y).backward()
    pre.step()
    first, last = dict(pre.state[model[0]]), {k: v.clone() for k, v in pre.state[model[2]].items()
                                              if torch.is_tensor(v)}
    first = {k: v.clone() for k, v in first.items() if torch.is_tensor(v)}
    model.zero_grad()
    x = x.clone()
    x[0, 0] = 1e20
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.warns(RuntimeWarning, match="non-finite"):
        pre.step()
    assert all(torch.equal(first[k], pre.state[model[0]][k]) for k in ("A", "G"))
    assert not torch.equal(last["A"], pre.state[model[2]]["A"])
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
