"""Small layers preconditioned as one batch (numeric.nets.packed) against each layer's own block: the same
directions, the same training steps in both K-FAC modes, and the same refusals of a bad step."""
import copy

import pytest

torch = pytest.importorskip("torch")
from torch import nn

from numeric.nets import packed
from numeric.nets.kfac import KFAC
from numeric.nets.kronecker import KroneckerBlock
from numeric.nets.preconditioner import KFACPreconditioner


class Mixed(nn.Module):
    """A small convolution, Linear layers with and without a bias, one output: every packed shape."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.hidden = nn.Linear(16, 7, bias=False)  # the convolution's 2 × 2 × 4 outputs
        self.wide = nn.Linear(7, 12)
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        h = torch.tanh(self.conv(x)).flatten(1)
        return self.out(torch.tanh(self.wide(torch.tanh(self.hidden(h)))))


def _problem(seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 1, 4, 6, generator=generator).to(dtype)
    y = torch.randint(0, 3, (40,), generator=generator)
    torch.manual_seed(seed)
    return Mixed().to(dtype), x, y


def _unpacked(monkeypatch):
    monkeypatch.setattr(packed, "TINY", 0)
    monkeypatch.setattr(packed, "LARGEST", 0)


def test_the_plan_packs_small_layers_of_one_kind_within_the_bound():
    model, _, _ = _problem()
    blocks = [KroneckerBlock(m, {}, "eigen") for m in (model.conv, model.hidden, model.wide, model.out)]
    groups = packed.plan(blocks)
    assert groups == [[0, 3, 2, 1]]  # smallest first: (2, 10), (3, 13), (12, 8), (7, 16)
    assert packed.plan([KroneckerBlock(m, {}, "ekfac") for m in (model.wide, model.out)]) == []
    single = nn.Linear(4, 2)  # float32 beside float64 layers: a group of its own kind, of one, is not packed
    assert packed.plan([KroneckerBlock(m, {}, "eigen") for m in (model.wide, single)]) == []
    # beyond TINY entries only nearly equal shapes: (10, 129) is not padded to (128, 129); equal ones are
    layers = [nn.Linear(128, 10), nn.Linear(64, 128), nn.Linear(128, 128), nn.Linear(64, 128),
              nn.Linear(64, 128, bias=False), nn.Linear(128, 128)]
    assert packed.plan([KroneckerBlock(m, {}, "cholesky") for m in layers]) == [[4, 1, 3], [2, 5]]
    large = (nn.Linear(200, 200), nn.Linear(200, 200))
    assert packed.plan([KroneckerBlock(m, {}, "eigen") for m in large]) == []


@pytest.mark.parametrize("inverse", ["eigen", "cholesky"])
@pytest.mark.parametrize("decay", [0.0, 0.2])
def test_packed_directions_equal_each_layers_own(inverse, decay):
    model, x, y = _problem(1)
    modules = [model.conv, model.hidden, model.wide, model.out]
    optimizer = KFAC(model, damping=0.05, inverse=inverse, fisher="empirical", factor_interval=1)
    optimizer.zero_grad()
    optimizer.backward(model(x), y)
    optimizer.step()  # statistics and inverses
    optimizer.zero_grad()
    optimizer.backward(model(x * 0.5), y)
    blocks = [optimizer._block(m) for m in modules]
    (indices, group), = optimizer._packing.groups
    found = group.directions([blocks[i] for i in indices], 0.05, decay)
    for block in blocks:
        for param, expected in block.directions(0.05, decay).items():
            torch.testing.assert_close(found[param], expected, rtol=1e-11, atol=1e-13)
    if not decay:
        inner = sum((found[p] * p.grad).sum() for p in model.parameters())
        torch.testing.assert_close(group.inner(), inner, rtol=1e-11, atol=1e-13)


def _train(model, x, y, steps, **settings):
    optimizer = KFAC(model, **settings)
    losses = []
    for k in range(steps):
        optimizer.zero_grad()
        losses.append(float(optimizer.backward(model(x[k % 2::2]), y[k % 2::2])))
        optimizer.step()
    return optimizer, losses


@pytest.mark.parametrize("settings", [
    dict(inverse="eigen", momentum=0.9, weight_decay=1e-2),
    dict(inverse="cholesky", momentum=0.0, kl_clip=1e-4),
    dict(inverse="eigen", momentum=0.0, adapt_damping=2),  # the damping moves: the packed scale follows
])
def test_training_steps_are_those_of_the_layers_one_by_one(monkeypatch, settings):
    model, x, y = _problem(2)
    twin = copy.deepcopy(model)
    common = dict(lr=0.2, damping=0.05, inverse_interval=3, fisher="empirical", **settings)
    optimizer, losses = _train(model, x, y, 7, **common)
    assert optimizer._packing.groups
    _unpacked(monkeypatch)
    plain, plain_losses = _train(twin, x, y, 7, **common)
    assert not plain._packing.groups
    assert losses == pytest.approx(plain_losses, rel=1e-10)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    if "adapt_damping" in settings:
        assert optimizer.param_groups[0]["damping"] != 0.05


def test_the_preconditioner_mode_packs_alike(monkeypatch):
    model, x, y = _problem(3)
    twin = copy.deepcopy(model)

    def run(net):
        pre = KFACPreconditioner(net, damping=0.05, inverse_interval=2, kl_clip=1e-3, lr=0.1)
        sgd = torch.optim.SGD(net.parameters(), lr=0.1)
        for k in range(5):
            sgd.zero_grad()
            nn.functional.cross_entropy(net(x[k % 2::2]), y[k % 2::2]).backward()
            pre.step()
            sgd.step()
        return pre

    assert run(model)._packing.groups
    _unpacked(monkeypatch)
    assert not run(twin)._packing.groups
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_a_non_finite_gradient_in_a_packed_layer_skips_the_step():
    model, x, y = _problem(4)
    optimizer, _ = _train(model, x, y, 2, lr=0.1, damping=0.05, fisher="empirical")
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.zero_grad()
    optimizer.backward(model(x), y)
    model.wide.weight.grad[3, 1] = float("nan")
    with pytest.warns(RuntimeWarning, match="non-finite gradient"):
        optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_loaded_state_is_packed_anew():
    model, x, y = _problem(5)
    settings = dict(lr=0.1, damping=0.05, fisher="empirical", momentum=0.0, kl_clip=None,
                    inverse_interval=100)
    fresh_model = copy.deepcopy(model)
    trained, _ = _train(model, x, y, 3, **settings)
    fresh, _ = _train(fresh_model, x, y, 1, **settings)  # packed from its own, different factors
    fresh.load_state_dict(trained.state_dict())
    fresh_model.load_state_dict(model.state_dict())
    for optimizer, net in ((trained, model), (fresh, fresh_model)):
        optimizer.zero_grad()
        optimizer.backward(net(x), y)
        optimizer.step()
    for a, b in zip(model.parameters(), fresh_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_a_bfloat16_model_is_packed_in_float32(monkeypatch):
    model, x, y = _problem(6, torch.float32)
    model = model.to(torch.bfloat16)
    twin = copy.deepcopy(model)
    x = x.to(torch.bfloat16)
    settings = dict(lr=0.1, damping=0.05, fisher="empirical", momentum=0.0)
    optimizer, _ = _train(model, x, y, 3, **settings)
    assert optimizer._packing.groups[0][1].update.dtype == torch.float32
    _unpacked(monkeypatch)
    _train(twin, x, y, 3, **settings)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=1e-2)

