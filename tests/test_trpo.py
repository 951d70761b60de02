"""TRPO: the exact Fisher-vector product equals double backprop, GAE against a direct sum, the line search
never accepts KL > δ, and a short seeded CartPole run improves its return."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from numeric.nets.rl import (
    CategoricalActions,
    DiagonalNormalActions,
    Policy,
    TrainConfig,
    TRPOConfig,
    fisher_vector_product,
    flat_params,
    gae,
    train,
    trpo_step,
)


def random_policy(kind, seed, state_dependent_std=False):
    torch.manual_seed(seed)
    actions = CategoricalActions(4) if kind == "categorical" else DiagonalNormalActions(3)
    policy = Policy(5, actions, hidden=(16, 16), state_dependent_std=state_dependent_std).double()
    for p in policy.parameters():  # away from the near-deterministic initial output layer
        p.data.add_(0.3 * torch.randn_like(p))
    return policy


@pytest.mark.parametrize("kind, dependent", [("categorical", False), ("normal", False), ("normal", True)])
def test_exact_fisher_vector_product_equals_double_backprop(kind, dependent):
    policy = random_policy(kind, 0, dependent)
    obs = torch.randn(200, 5, dtype=torch.float64)
    exact = fisher_vector_product(policy, obs, 0.1, "exact")
    double = fisher_vector_product(policy, obs, 0.1, "double_backprop")
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        v = torch.randn(len(flat_params(policy)), generator=generator, dtype=torch.float64)
        np.testing.assert_allclose(exact(v).numpy(), double(v).numpy(), rtol=1e-6, atol=1e-9)


def test_categorical_fisher_is_the_softmax_covariance():
    """symgeo's categorical Fisher in natural parameters against diag(p) − ppᵀ on the free logits."""
    actions = CategoricalActions(4)
    logits = torch.randn(7, 4, dtype=torch.float64)
    p = torch.softmax(logits, dim=-1)[:, :3]
    expected = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    np.testing.assert_allclose(actions.fisher(actions.params(logits))[:, 0].numpy(), expected.numpy(), rtol=1e-12)


def test_gae_equals_the_direct_sum():
    rng = np.random.default_rng(0)
    rewards, values, next_values = rng.normal(size=(3, 12, 2))
    terminated = np.zeros((12, 2))
    ends = np.zeros((12, 2))
    terminated[5, 0] = ends[5, 0] = 1   # termination: no bootstrap
    ends[8, 1] = 1                      # truncation: bootstrap, but the recursion stops
    gamma, lam = 0.9, 0.8
    advantages, returns = gae(rewards, values, next_values, terminated, ends, gamma, lam)
    for env in range(2):
        for t in range(12):
            total, weight = 0.0, 1.0
            for u in range(t, 12):
                delta = rewards[u, env] + gamma * next_values[u, env] * (1 - terminated[u, env]) - values[u, env]
                total += weight * delta
                if ends[u, env]:
                    break
                weight *= gamma * lam
            assert advantages[t, env] == pytest.approx(total, rel=1e-10)
    np.testing.assert_allclose(returns, advantages + values)


@pytest.mark.parametrize("kind", ["categorical", "normal"])
def test_line_search_respects_the_trust_region_and_restores_on_failure(kind):
    policy = random_policy(kind, 2)
    obs = torch.randn(256, 5, dtype=torch.float64)
    with torch.no_grad():
        actions = policy.actions.sample(policy(obs))
    advantages = torch.randn(256, dtype=torch.float64)
    config = TRPOConfig(max_kl=0.01)
    before = flat_params(policy)
    outcome = trpo_step(policy, obs, actions, advantages, config)
    assert outcome["accepted"] and outcome["kl"] <= config.max_kl and outcome["improvement"] > 0
    with torch.no_grad():
        kl = float(policy.actions.kl(random_policy(kind, 2)(obs), policy(obs)).mean())
    assert kl == pytest.approx(outcome["kl"], rel=1e-9)
    policy = random_policy(kind, 2)
    true_kl = policy.actions.kl
    policy.actions.kl = lambda old, new: true_kl(old, new) + 1.0   # every candidate violates the bound
    failed = trpo_step(policy, obs, actions, advantages, TRPOConfig(max_kl=0.01, backtrack_iters=3))
    assert not failed["accepted"]
    np.testing.assert_array_equal(flat_params(policy).numpy(), before.numpy())   # restored


def test_short_cartpole_run_improves_and_never_exceeds_the_trust_region(tmp_path):
    pytest.importorskip("gymnasium")
    from numeric.nets.rl import train
    config = TrainConfig(n_envs=2, n_steps=512, trpo=TRPOConfig(max_kl=0.01))
    _, log = train("CartPole-v1", 8192, config, seed=0, progress=False)
    assert all(row["kl"] <= 0.01 for row in log.rows)
    early, late = np.mean(log.episode_returns[:20]), np.mean(log.episode_returns[-20:])
    assert late > 2 * early
    log.to_csv(tmp_path / "log.csv")
    log.to_json(tmp_path / "log.json")
    assert (tmp_path / "log.csv").read_text().startswith("steps,seconds,mean_return_20,kl")


def test_ppo_and_pendulum_smoke():
    pytest.importorskip("gymnasium")
    from numeric.nets.rl import PPOConfig, train
    _, log = train("Pendulum-v1", 1024, TrainConfig(n_steps=512, normalize_obs=True), seed=1, progress=False)
    assert len(log.rows) == 2 and all(np.isfinite(r["kl"]) for r in log.rows)
    _, log = train("CartPole-v1", 1024, TrainConfig(algorithm="ppo", n_steps=512, ppo=PPOConfig(epochs=2)),
                   seed=1, progress=False)
    assert len(log.rows) == 2
    with pytest.raises(ValueError, match="algorithm"):
        train("CartPole-v1", 10, TrainConfig(algorithm="a2c"), progress=False)
    with pytest.raises(ValueError, match="fvp"):  # refused when configured, not at the first update
        TRPOConfig(fvp="finite_differences")


def test_seeded_runs_are_reproducible():
    pytest.importorskip("gymnasium")
    from numeric.nets.rl import train
    runs = [train("CartPole-v1", 1024, TrainConfig(n_steps=512), seed=3, progress=False)[1] for _ in range(2)]
    assert runs[0].rows[-1]["kl"] == runs[1].rows[-1]["kl"]
    assert runs[0].episode_returns == runs[1].episode_returns


def test_beta_actions_have_the_exact_fvp_and_their_own_log_density():
    """Beta(a, b) actions (bounded Box spaces): the exact FVP from symgeo's generated Beta Fisher equals the
    KL Hessian by double backprop; the log-density is torch.distributions.Beta's; draws lie in (0, 1)."""
    from numeric.nets.rl import BetaActions
    torch.manual_seed(0)
    policy = Policy(5, BetaActions(2), hidden=(8,)).double()
    obs = torch.randn(40, 5, dtype=torch.float64)
    exact = fisher_vector_product(policy, obs, damping=0.0, route="exact")
    backprop = fisher_vector_product(policy, obs, damping=0.0, route="double_backprop")
    v = torch.randn(len(flat_params(policy)), dtype=torch.float64)
    torch.testing.assert_close(exact(v), backprop(v), rtol=1e-8, atol=1e-10)
    xi = policy(obs)
    u = policy.actions.sample(xi, torch.Generator().manual_seed(1))
    assert ((u > 0) & (u < 1)).all()
    a, b = xi.unbind(-1)
    expected = torch.distributions.Beta(a, b).log_prob(u).sum(-1)
    torch.testing.assert_close(policy.actions.log_prob(xi, u), expected)


def test_ppo_trains_with_beta_actions_on_pendulum():
    pytest.importorskip("gymnasium")
    from numeric.nets.rl import BetaActions
    policy, log = train("Pendulum-v1", 2048, TrainConfig(box_actions="beta", n_steps=512, algorithm="ppo"),
                        seed=0, progress=False)
    assert isinstance(policy.actions, BetaActions) and log.rows
    assert all(np.isfinite(r["kl"]) for r in log.rows)


def test_reward_scaler_divides_by_the_std_of_the_discounted_return():
    from numeric.nets.rl import RewardScaler
    rng = np.random.default_rng(0)
    gamma, steps = 0.9, 400
    rewards = rng.normal(3.0, 2.0, size=(steps, 2))
    ends = rng.random((steps, 2)) < 0.05
    scaler = RewardScaler(2, gamma)
    running, history = np.zeros(2), []
    for reward, end in zip(rewards, ends):
        scaled = scaler(reward, end)
        running = running * gamma + reward
        history.extend(running)
        running[end] = 0.0
    # the last step's scaling: the variance of every discounted return seen so far (prior count 1e-4)
    assert np.allclose(scaled, np.clip(reward / np.sqrt(np.var(history) + 1e-8), -10, 10), rtol=1e-3)


def test_reward_normalisation_keeps_the_logged_returns_raw():
    pytest.importorskip("gymnasium")
    config = TrainConfig(n_steps=256, n_envs=2, normalize_obs=True, normalize_reward=True)
    _, log = train("CartPole-v1", 1024, config, seed=2, progress=False)
    assert all(r == int(r) and r >= 8 for r in log.episode_returns)  # CartPole pays 1 a step, ≥ 8 steps
