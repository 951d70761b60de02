"""The torch NaturalGradient optimizer: the GGN step equals the numpy natural gradient when the network is a
bare parameter vector, CG equals the exact solve, and training a small network beats Adam per step."""
import numpy as np
import pytest

import numeric
from numeric.nets.cg import conjugate_gradient
from numeric.natural_gradient import mle_objective, natural_direction

torch = pytest.importorskip("torch")
from numeric.nets.natural_gradient import NaturalGradient, natural_step


class Constant(torch.nn.Module):
    """Every input row gets the same distribution parameters: the model is the parameter vector itself."""

    def __init__(self, values):
        super().__init__()
        self.xi = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))

    def forward(self, x):
        return self.xi.expand(len(x), -1)


def test_step_equals_the_numpy_natural_gradient_for_a_bare_parameter_vector():
    data = np.random.default_rng(0).gamma(3.0, 2.0, 500)
    family = numeric.compile("gamma", backend="torch")
    model = Constant([1.5, 1.0])
    y = torch.tensor(data)
    optimizer = NaturalGradient(model, family, lr=1.0, damping=0.0)

    def closure():
        optimizer.zero_grad()
        xi = model(y[:, None])
        loss = -family.log_density(y, xi[:, 0], xi[:, 1]).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    numpy_family = numeric.compile("gamma")
    start = np.array([1.5, 1.0])
    expected = start - natural_direction(numpy_family.fisher(*start), mle_objective(numpy_family, data).gradient(start))
    np.testing.assert_allclose(model.xi.detach().numpy(), expected, rtol=1e-10)


def heteroscedastic(seed=0, n=256):
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(-2, 2, n, dtype=torch.float64)[:, None]
    y = torch.sin(2 * x[:, 0]) + (0.1 + 0.3 * x[:, 0].abs()) * torch.randn(n, generator=g, dtype=torch.float64)
    return x, y


def link(out):
    return torch.stack([out[:, 0], torch.nn.functional.softplus(out[:, 1]) + 1e-3], dim=-1)


def network(seed=1):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()


def test_conjugate_gradient_equals_the_exact_solve():
    x, y = heteroscedastic()
    model = network()
    family = numeric.compile("normal", backend="torch")
    xi = link(model(x))
    loss = -family.log_density(y, xi[:, 0], xi[:, 1]).mean()
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params)
    exact, _ = natural_step(model, family, link, (x,), params, grads, 1e-3, "exact")
    iterative, info = natural_step(model, family, link, (x,), params, grads, 1e-3, "cg", cg_iters=500, cg_tol=1e-12)
    assert info.converged
    for a, b in zip(exact, iterative):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-8)


def test_training_a_small_network_beats_adam_per_step():
    x, y = heteroscedastic()
    family = numeric.compile("normal", backend="torch")
    losses = {}
    for name in ("natural", "adam"):
        model = network()
        optimizer = (NaturalGradient(model, family, lr=0.5, damping=1e-3, link=link) if name == "natural"
                     else torch.optim.Adam(model.parameters(), lr=0.01))

        def closure():
            optimizer.zero_grad()
            xi = link(model(x))
            loss = -family.log_density(y, xi[:, 0], xi[:, 1]).mean()
            loss.backward()
            return loss

        history = [optimizer.step(closure).item() for _ in range(100)]
        losses[name] = history
        assert np.all(np.isfinite(history))
    assert losses["natural"][-1] < losses["natural"][0] - 0.5
    assert losses["natural"][-1] < losses["adam"][-1] - 0.05


def test_state_dict_round_trip_and_validation():
    model = network()
    family = numeric.compile("normal", backend="torch")
    optimizer = NaturalGradient(model, family, lr=0.3, damping=0.01, link=link)
    restored = NaturalGradient(network(), family, lr=1.0, link=link)
    restored.load_state_dict(optimizer.state_dict())
    assert restored.param_groups[0]["lr"] == 0.3 and restored.param_groups[0]["damping"] == 0.01
    with pytest.raises(ValueError, match="lr"):
        NaturalGradient(model, family, lr=-1.0)
    with pytest.raises(ValueError, match="damping"):
        NaturalGradient(model, family, damping=-1.0)
    with pytest.raises(ValueError, match="solver"):
        NaturalGradient(model, family, solver="lu")
    with pytest.raises(ValueError, match="torch-backend"):
        NaturalGradient(model, numeric.compile("normal"))
    with pytest.raises(ValueError, match="closure"):
        optimizer.step()
    with pytest.raises(RuntimeError, match="did not run the model"):
        NaturalGradient(network(), family, link=link).step(lambda: torch.tensor(0.0))


def test_conjugate_gradient_solves_a_random_spd_system():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(30, 30, generator=g, dtype=torch.float64)
    matrix = a @ a.T + 0.1 * torch.eye(30, dtype=torch.float64)
    b = torch.randn(30, generator=g, dtype=torch.float64)
    x, info = conjugate_gradient(lambda v: matrix @ v, b, max_iter=300, tol=1e-12)
    assert info.converged
    np.testing.assert_allclose(x.numpy(), torch.linalg.solve(matrix, b).numpy(), rtol=1e-8)
    _, stopped = conjugate_gradient(lambda v: -v, b)          # not positive definite: stops, says so
    assert not stopped.converged
