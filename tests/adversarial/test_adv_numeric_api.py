"""Class 4: every public numeric entry point validates its inputs, never loops on a NaN, never
reports convergence on a non-finite value, and a non-finite batch leaves an optimizer as it was."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numeric
from numeric import validate
from numeric.em import fit_mixture
from numeric.natural_gradient import minimize, mle_objective
from symgeo.errors import InvalidArgumentError, NumericalError

BAD_NUMBERS = [float("nan"), float("inf"), -float("inf")]


# -- the validators themselves: whatever they accept satisfies their predicate ----------------------
@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10),
                       st.booleans(), st.text(max_size=3), st.none()))
def test_validators_accept_only_what_they_promise(value):
    checks = {"positive": lambda v: math.isfinite(v) and v > 0,
              "nonnegative": lambda v: math.isfinite(v) and v >= 0,
              "in_unit": lambda v: math.isfinite(v) and 0 <= v < 1}
    for name, holds in checks.items():
        try:
            accepted = getattr(validate, name)("x", value)
        except InvalidArgumentError:
            continue
        assert holds(accepted) and not isinstance(value, (bool, str))
    try:
        accepted = validate.count("x", value)
    except InvalidArgumentError:
        return
    assert isinstance(accepted, int) and accepted >= 1 and not isinstance(value, bool)


# -- EM --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gamma_data():
    return np.random.default_rng(0).gamma(3.0, 1.0, 400)


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_em_refuses_non_finite_weights_data_and_starts(gamma_data, bad, within):
    with within(30):
        with pytest.raises(InvalidArgumentError, match="weights"):
            fit_mixture("gamma", gamma_data, 2, init=[[2, 1], [4, 1]], weights=[bad, 1.0])
        with pytest.raises(InvalidArgumentError, match="finite"):
            fit_mixture("gamma", gamma_data, 2, init=[[2, bad], [4, 1]])
        data = gamma_data.copy()
        data[7] = bad
        with pytest.raises(InvalidArgumentError):
            fit_mixture("gamma", data, 2, seed=0)
        with pytest.raises(InvalidArgumentError, match="tol"):
            fit_mixture("gamma", gamma_data, 2, tol=bad, seed=0)
        with pytest.raises(InvalidArgumentError, match="max_iter"):
            fit_mixture("gamma", gamma_data, 2, max_iter=0, seed=0)


def test_em_on_constant_or_collapsing_data_says_why(within):
    with within(60), pytest.raises(InvalidArgumentError, match="all data points are equal"):
        fit_mixture("gamma", np.full(100, 2.0), 1)
    with within(60), pytest.warns(RuntimeWarning, match="degenerate"):
        fit = fit_mixture("gamma", np.r_[np.full(50, 1.0), np.full(50, 5.0)], 2, seed=0)
    # each component shrinks onto one value (k → ∞): stabilised by pseudo-observations, said, finite
    assert np.all(np.isfinite(fit.params)) and fit.params[:, 0].max() < 1e4
    assert sorted(fit.params[:, 0] * fit.params[:, 1]) == pytest.approx([1.0, 5.0], rel=0.05)


def test_em_still_fits_ordinary_data(gamma_data):
    fit = fit_mixture("gamma", gamma_data, 1, seed=0)
    assert fit.converged and np.all(np.isfinite(fit.params))
    assert fit.params[0, 0] == pytest.approx(3.0, rel=0.15)


# -- minimize --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gamma_family():
    return numeric.compile("gamma")


def test_minimize_refuses_an_objective_that_is_nan_at_the_start(gamma_family, within):
    data = np.array([1.0, 2.0, -3.0])  # outside the support of the gamma
    with within(30), pytest.raises((NumericalError, InvalidArgumentError)):
        minimize(mle_objective(gamma_family, data), gamma_family, [2.0, 1.0])


@pytest.mark.parametrize("setting", [{"lr": float("inf")}, {"lr": float("nan")}, {"lr": 0.0},
                                     {"damping": float("nan")}, {"tol": float("nan")}, {"max_iter": 0}])
def test_minimize_validates_its_settings(gamma_family, gamma_data, setting):
    with pytest.raises(InvalidArgumentError):
        minimize(mle_objective(gamma_family, gamma_data), gamma_family, [2.0, 1.0], **setting)


def test_minimize_never_reports_convergence_on_a_nan_gradient(gamma_family, gamma_data, within):
    objective = mle_objective(gamma_family, gamma_data)
    broken = type(objective)(objective.value, lambda xi: np.full(2, np.nan))
    with within(30), pytest.raises(NumericalError, match="gradient"):
        minimize(broken, gamma_family, [2.0, 1.0])


# -- torch optimizers ------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


def _state(optimizer, model):
    weights = [p.detach().clone() for p in model.parameters()]
    buffers = {k: v.clone() for p in model.parameters() for k, v in optimizer.state[p].items()
               if torch.is_tensor(v)}
    return weights, buffers


@pytest.mark.parametrize("setting", [{"lr": float("inf")}, {"lr": float("nan")}, {"lr": -1.0},
                                     {"damping": float("nan")}, {"momentum": 1.0}, {"ema_decay": float("nan")},
                                     {"kl_clip": float("inf")}, {"inverse_interval": 0}])
def test_kfac_validates_its_settings(setting):
    from numeric.nets.kfac import KFAC
    with pytest.raises(InvalidArgumentError):
        KFAC(torch.nn.Linear(3, 2), **setting)


@pytest.mark.parametrize("fisher", ["empirical", "true"])
@pytest.mark.parametrize("poison", ["input", "target"])
def test_kfac_skips_a_non_finite_batch_and_keeps_its_state(fisher, poison):
    from numeric.nets.kfac import KFAC
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    optimizer = KFAC(model, lr=0.05, loss="mse", fisher=fisher, kl_clip=None, inverse_interval=1, seed=0)
    x, y = torch.randn(32, 4), torch.randn(32, 3)
    for _ in range(2):
        optimizer.zero_grad()
        optimizer.backward(model(x), y)
        optimizer.step()
    before = _state(optimizer, model)
    bad_x, bad_y = x.clone(), y.clone()
    if poison == "input":
        bad_x[3, 1] = float("nan")
    else:
        bad_y[5, 0] = float("inf")
    optimizer.zero_grad()
    with pytest.warns(RuntimeWarning, match="non-finite"):
        optimizer.backward(model(bad_x), bad_y)
        optimizer.step()
    after = _state(optimizer, model)
    assert all(torch.equal(a, b) for a, b in zip(before[0], after[0]))
    assert before[1].keys() == after[1].keys() and all(torch.equal(before[1][k], after[1][k]) for k in before[1])
    optimizer.zero_grad()
    optimizer.backward(model(x), y)  # and it carries on from where it was
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_natural_gradient_skips_a_non_finite_batch():
    from numeric.nets.natural_gradient import NaturalGradient
    family = numeric.compile("normal", backend="torch")
    model = torch.nn.Linear(2, 2).double()
    optimizer = NaturalGradient(model, family, lr=0.5, damping=1e-3,
                                link=lambda out: torch.stack([out[:, 0], torch.nn.functional.softplus(out[:, 1])], -1))
    x, y = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    y[2] = float("nan")

    def closure():
        optimizer.zero_grad()
        out = model(x)
        loss = -family.log_density(y, out[:, 0], torch.nn.functional.softplus(out[:, 1])).mean()
        loss.backward()
        return loss
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.warns(RuntimeWarning, match="non-finite"):
        optimizer.step(closure)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    for bad in ({"lr": float("inf")}, {"damping": -1.0}, {"cg_iters": 0}):
        with pytest.raises(InvalidArgumentError):
            NaturalGradient(model, family, **bad)


@pytest.mark.parametrize("config, setting", [
    ("TRPOConfig", {"max_kl": -0.01}), ("TRPOConfig", {"max_kl": float("nan")}),
    ("TRPOConfig", {"backtrack_ratio": 1.5}), ("TRPOConfig", {"cg_iters": 0}),
    ("PPOConfig", {"clip": 0.0}), ("PPOConfig", {"lr": float("inf")}), ("PPOConfig", {"minibatch": 0}),
    ("TrainConfig", {"n_envs": 0}), ("TrainConfig", {"n_steps": 0}), ("TrainConfig", {"gamma": 1.5}),
    ("TrainConfig", {"algorithm": "sac"})])
def test_trpo_and_ppo_configs_are_validated(config, setting):
    from numeric.nets import rl as trpo
    with pytest.raises(InvalidArgumentError):
        getattr(trpo, config)(**setting)
