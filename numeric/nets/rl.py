"""TRPO with the exact Fisher of the policy's action distribution, and PPO-clip on the same rollouts.

Key equations (Schulman et al. 2015), for a policy π_w(a | s) whose action distribution has parameters
ξ(s; w):
    F v = (1/N) Σ_s J_sᵀ F_ξ(ξ_s) J_s v     J_s = ∂ξ_s/∂w,  F_ξ generated from symgeo (no 2nd derivatives)
    x ≈ (F + c I)⁻¹ g  by conjugate gradient,    step = √(2δ / xᵀ F x) · x
    line search: shrink the step until KL(π_old ‖ π_new) ≤ δ (the KL generated from symgeo) and the surrogate
    L(w) = E[π_w(a|s)/π_old(a|s) · Â] improves; otherwise the parameters are restored.
Advantages Â by GAE(λ) (`gae`, written once, used by both algorithms). `fvp="double_backprop"` is the
usual route (Hessian of the KL by differentiating twice), kept for comparison.

Pseudocode of `train` (both algorithms): collect `n_steps` per environment → GAE → policy update (TRPO step
or PPO epochs) → value-function regression → log a row.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vjp

from symgeo.errors import InvalidArgumentError

from ..torch_state import local_torch_state
from ..validate import count, in_unit, nonnegative, positive
from .cg import conjugate_gradient
from .flat import flat_params, flatten, module_params, set_flat_params
from .heads import BetaHead, BoundedHead, CategoricalHead, DiagonalNormalHead, Head
from .pullback import GaussNewton

FVP_ROUTES = ("exact", "double_backprop")


# -- action distributions: heads (numeric.nets.heads), D independent members of a family per state ---------
CategoricalActions = CategoricalHead  # discrete actions: categorical:k in natural parameters
DiagonalNormalActions = DiagonalNormalHead  # continuous actions: D independent normals (μ, σ)
BetaActions = BetaHead  # bounded continuous actions: D Beta(a, b) on (0, 1), mapped onto [low, high]
BoundedActions = BoundedHead  # any family on a bounded interval [lo, hi], mapped onto [low, high]


def mlp(sizes, activation=nn.Tanh, last_gain: float = 1.0) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        linear = nn.Linear(a, b)
        nn.init.orthogonal_(linear.weight, gain=last_gain if i == len(sizes) - 2 else math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers += [linear] + ([activation()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


class Policy(nn.Module):
    """obs → action-distribution parameters ξ (N, D, n). Gaussian policies have a state-independent log-std
    parameter unless `state_dependent_std`."""

    def __init__(self, obs_dim: int, actions: Head, hidden=(64, 64), state_dependent_std=False):
        super().__init__()
        self.actions = actions
        if isinstance(actions, CategoricalActions):
            self.net = mlp((obs_dim, *hidden, actions.k), last_gain=0.01)
            self.log_std = None
        elif isinstance(actions, (BetaActions, BoundedActions)):  # every parameter depends on the state
            self.net = mlp((obs_dim, *hidden, actions.n * actions.dim), last_gain=0.01)
            self.log_std = None
        else:
            out = 2 * actions.dim if state_dependent_std else actions.dim
            self.net = mlp((obs_dim, *hidden, out), last_gain=0.01)
            self.log_std = None if state_dependent_std else nn.Parameter(torch.zeros(actions.dim))

    def forward(self, obs):
        out = self.net(obs)
        if self.log_std is not None:
            out = torch.cat([out, self.log_std.expand(len(out), -1)], dim=-1)
        return self.actions.params(out)

    def linearize(self, obs) -> MLPLinearization:
        """The policy's Jacobian at `obs`, as J v and Jᵀ u products on cached activations."""
        return MLPLinearization(self, obs)


class MLPLinearization:
    """J v and Jᵀ u of ξ(obs; w) for a Policy of Linear/Tanh/ReLU layers, by hand on activations cached
    once: each product is about one matrix product per layer and direction. (torch.func's jvp/vjp recompute
    the forward pass and carry dual tensors; on small CPU policies that costs more than the products.)"""

    def __init__(self, policy: Policy, obs):
        self.policy = policy
        self.inputs, self.masks = [], []
        h = obs
        with torch.no_grad():
            for layer in policy.net:
                if isinstance(layer, nn.Linear):
                    self.inputs.append(h)
                    h = layer(h)
                elif isinstance(layer, nn.Tanh):
                    h = torch.tanh(h)
                    self.masks.append(1 - h * h)
                else:
                    self.masks.append((h > 0).to(h.dtype))
                    h = torch.relu(h)
            if policy.log_std is not None:
                h = torch.cat([h, policy.log_std.expand(len(h), -1)], dim=-1)
        self.raw = h
        self.linears = [i for i, layer in enumerate(policy.net) if isinstance(layer, nn.Linear)]

    def jvp(self, tangents: dict) -> torch.Tensor:
        dh, k = None, 0
        for i, layer in enumerate(self.policy.net):
            if isinstance(layer, nn.Linear):
                j = self.linears.index(i)
                step = self.inputs[j] @ tangents[f"net.{i}.weight"].T + tangents[f"net.{i}.bias"]
                dh = step if dh is None else dh @ layer.weight.T + step
            else:
                dh = dh * self.masks[k]
                k += 1
        if self.policy.log_std is not None:
            dh = torch.cat([dh, tangents["log_std"].expand(len(dh), -1)], dim=-1)
        return self.policy.actions.params_tangent(self.raw, dh)[1]

    def vjp(self, cotangent_raw: torch.Tensor) -> dict:
        """Jᵀ applied to a cotangent on the raw outputs (before the distribution's parameter map)."""
        grads = {}
        delta = cotangent_raw
        if self.policy.log_std is not None:
            d = self.policy.log_std.numel()
            delta, grads["log_std"] = delta[:, :-d], delta[:, -d:].sum(dim=0)
        k = len(self.masks) - 1
        for i in reversed(range(len(self.policy.net))):
            layer = self.policy.net[i]
            if isinstance(layer, nn.Linear):
                j = self.linears.index(i)
                grads[f"net.{i}.weight"] = delta.T @ self.inputs[j]
                grads[f"net.{i}.bias"] = delta.sum(dim=0)
                if j > 0:
                    delta = delta @ layer.weight
            else:
                delta = delta * self.masks[k]
                k -= 1
        return grads


# -- GAE, written once --------------------------------------------------------------------------------
def gae(rewards, values, next_values, terminated, ends, gamma: float, lam: float):
    """Generalised advantage estimation over (T, E) arrays. `next_values[t]` is V(s_{t+1}) (the true next
    state, also at truncation); `terminated` zeroes it; `ends` (terminated or truncated) stops the
    recursion."""
    advantages = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1])
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * next_values[t] * (1 - terminated[t]) - values[t]
        running = delta + gamma * lam * (1 - ends[t]) * running
        advantages[t] = running
    return advantages, advantages + values


# -- Fisher-vector products ----------------------------------------------------------------------------
def fisher_vector_product(policy: Policy, obs: torch.Tensor, damping: float = 0.0, route: str = "exact"):
    """v ↦ (F + damping·I) v at the current weights, F the mean Fisher of π(· | s) over `obs`: the head's
    exact Fisher pulled back through the policy (numeric.nets.pullback), or the KL's Hessian by
    differentiating twice (`route="double_backprop"`, kept for comparison)."""
    if route not in FVP_ROUTES:
        raise InvalidArgumentError(f"route must be one of {FVP_ROUTES}, not {route!r}")
    weights = flat_params(policy)

    def params_of(w):
        return functional_call(policy, module_params(policy, w), (obs,))

    if route == "exact" and _has_tangent_rules(policy):
        return _mlp_fvp(policy, obs, damping)
    if route == "exact":
        return GaussNewton.of(params_of, weights, policy.actions.fisher, damping).matvec

    xi_old = params_of(weights).detach()
    w = weights.clone().requires_grad_(True)
    with torch.enable_grad():
        kl = policy.actions.kl(xi_old, params_of(w)).mean()
        grad = torch.autograd.grad(kl, w, create_graph=True)[0]

    def product(v):
        with torch.enable_grad():
            return torch.autograd.grad(grad @ v, w, retain_graph=True)[0] + damping * v
    return product


def _mlp_fvp(policy: Policy, obs, damping: float):
    """The pull-back with the policy's hand linearization for J v and Jᵀ u; through the head's parameter
    map (logits → θ, log σ → σ) Jᵀ is a vjp of that small map."""
    lin = policy.linearize(obs)
    raw = lin.raw.detach().requires_grad_(True)
    with torch.enable_grad():
        xi, map_pullback = vjp(policy.actions.params, raw)
    names = [n for n, _ in policy.named_parameters()]

    def pullback(u):
        grads = lin.vjp(map_pullback(u)[0])
        return flatten(grads[n] for n in names)
    return GaussNewton(lambda v: lin.jvp(module_params(policy, v)), pullback,
                       policy.actions.fisher(xi.detach()), damping).matvec


def _has_tangent_rules(policy) -> bool:
    return isinstance(policy, Policy) and all(
        isinstance(m, (nn.Linear, nn.Tanh, nn.ReLU)) for m in policy.net
    )


# -- the updates ---------------------------------------------------------------------------------------
@dataclass
class TRPOConfig:
    max_kl: float = 0.01
    cg_iters: int = 15
    cg_damping: float = 0.1
    backtrack_ratio: float = 0.8
    backtrack_iters: int = 10
    fvp: str = "exact"

    def __post_init__(self):
        positive("max_kl", self.max_kl)
        count("cg_iters", self.cg_iters)
        nonnegative("cg_damping", self.cg_damping)
        in_unit("backtrack_ratio", self.backtrack_ratio, low_closed=False)
        count("backtrack_iters", self.backtrack_iters)
        if self.fvp not in FVP_ROUTES:
            raise InvalidArgumentError(f"fvp must be one of {FVP_ROUTES}, not {self.fvp!r}")


def trpo_step(policy: Policy, obs, actions, advantages, config: TRPOConfig) -> dict:
    """One natural-gradient step with a KL line search; parameters are restored if no fraction is accepted."""
    old = flat_params(policy)
    with torch.no_grad():
        xi_old = policy(obs)
        logp_old = policy.actions.log_prob(xi_old, actions)

    def surrogate():
        xi = policy(obs)
        return (torch.exp(policy.actions.log_prob(xi, actions) - logp_old) * advantages).mean(), xi

    with torch.enable_grad():
        loss, _ = surrogate()
        grad = torch.autograd.grad(loss, list(policy.parameters()))
    g = torch.cat([x.reshape(-1) for x in grad])
    product = fisher_vector_product(policy, obs, config.cg_damping, config.fvp)
    direction, info = conjugate_gradient(product, g, config.cg_iters, 1e-10)
    curvature = float(direction @ product(direction))
    if not curvature > 0 or not math.isfinite(curvature):
        return {
            "accepted": False,
            "kl": 0.0,
            "fraction": 0.0,
            "improvement": 0.0,
            "cg_residual": info.residual,
        }
    full_step = math.sqrt(2 * config.max_kl / curvature) * direction
    base = float(loss.detach())
    for i in range(config.backtrack_iters):
        fraction = config.backtrack_ratio ** i
        set_flat_params(policy, old + fraction * full_step)
        with torch.no_grad():
            new_loss, xi = surrogate()
            kl = float(policy.actions.kl(xi_old, xi).mean())
        if kl <= config.max_kl and float(new_loss) > base and math.isfinite(float(new_loss)):
            return {"accepted": True, "kl": kl, "fraction": fraction, "improvement": float(new_loss) - base,
                    "cg_residual": info.residual}
    set_flat_params(policy, old)
    return {"accepted": False, "kl": 0.0, "fraction": 0.0, "improvement": 0.0, "cg_residual": info.residual}


@dataclass
class PPOConfig:
    clip: float = 0.2
    epochs: int = 10
    minibatch: int = 64
    lr: float = 3e-4

    def __post_init__(self):
        in_unit("clip", self.clip, low_closed=False)
        count("epochs", self.epochs)
        count("minibatch", self.minibatch)
        positive("lr", self.lr)


def ppo_step(policy: Policy, optimizer, obs, actions, advantages, config: PPOConfig, generator) -> dict:
    """PPO-clip epochs over minibatches: maximise E[min(r Â, clip(r, 1 ± ε) Â)]."""
    with torch.no_grad():
        xi_old = policy(obs)
        logp_old = policy.actions.log_prob(xi_old, actions)
    for _ in range(config.epochs):
        for index in torch.randperm(len(obs), generator=generator).split(config.minibatch):
            ratio = torch.exp(policy.actions.log_prob(policy(obs[index]), actions[index]) - logp_old[index])
            clipped = ratio.clamp(1 - config.clip, 1 + config.clip)
            loss = -torch.min(ratio * advantages[index], clipped * advantages[index]).mean()
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            optimizer.step()
    with torch.no_grad():
        kl = float(policy.actions.kl(xi_old, policy(obs)).mean())
    return {
        "accepted": True,
        "kl": kl,
        "fraction": 1.0,
        "improvement": float("nan"),
        "cg_residual": float("nan"),
    }


# -- observation normalisation -----------------------------------------------------------------------------
class RunningNormalizer:
    """Observations standardised by running mean and variance (Chan et al.'s parallel update)."""

    def __init__(self, dim: int, clip: float = 10.0):
        self.mean, self.var, self.count, self.clip = np.zeros(dim), np.ones(dim), 1e-4, clip

    def update(self, x) -> None:
        mean, var, n = x.mean(axis=0), x.var(axis=0), len(x)
        delta, total = mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + var * n + delta ** 2 * self.count * n / total) / total
        self.count = total

    def __call__(self, x):
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -self.clip, self.clip)


class RewardScaler:
    """Rewards divided by the running standard deviation of the discounted return (the scaling of
    stable-baselines3's VecNormalize, so tuned hyperparameters that assume it carry over), clipped."""

    def __init__(self, n_envs: int, gamma: float, clip: float = 10.0):
        self.returns, self.gamma, self.clip = np.zeros(n_envs), gamma, clip
        self.stats = RunningNormalizer(1)

    def __call__(self, reward, ends):
        self.returns = self.returns * self.gamma + reward
        self.stats.update(self.returns[:, None])
        self.returns[ends] = 0.0
        return np.clip(reward / np.sqrt(self.stats.var[0] + 1e-8), -self.clip, self.clip)


# -- training -----------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    algorithm: str = "trpo"
    n_envs: int = 1
    n_steps: int = 2048          # per environment and update
    gamma: float = 0.99
    gae_lambda: float = 0.95
    value_lr: float = 1e-3
    value_epochs: int = 10
    value_minibatch: int = 128
    normalize_obs: bool = False
    normalize_reward: bool = False  # rewards scaled by the running std of the discounted return
    adam_eps: float = 1e-5  # Adam's ε for the critic (and PPO's policy), stable-baselines3's and OpenAI's
    hidden: tuple = (64, 64)
    state_dependent_std: bool = False
    # bounded Box spaces: "normal" (clipped), "beta", or any family on a bounded interval (a catalog name or a
    # spec path: "von_mises", "derivations/families/kumaraswamy.toml"), its support mapped onto [low, high]
    box_actions: str = "normal"
    trpo: TRPOConfig = field(default_factory=TRPOConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)

    def __post_init__(self):
        if self.algorithm not in ("trpo", "ppo"):
            raise InvalidArgumentError(f"algorithm must be 'trpo' or 'ppo', not {self.algorithm!r}")
        if not isinstance(self.box_actions, str) or not self.box_actions:
            raise InvalidArgumentError("box_actions must be 'normal', 'beta' or a family on a bounded "
                                       f"interval, not {self.box_actions!r}")
        count("n_envs", self.n_envs)
        count("n_steps", self.n_steps)
        in_unit("gamma", self.gamma, high_closed=True)
        in_unit("gae_lambda", self.gae_lambda, high_closed=True)
        positive("value_lr", self.value_lr)
        positive("adam_eps", self.adam_eps)
        count("value_epochs", self.value_epochs)
        count("value_minibatch", self.value_minibatch)
        for width in self.hidden:
            count("hidden layer width", width)


@dataclass
class TrainLog:
    rows: list = field(default_factory=list)
    episode_returns: list = field(default_factory=list)
    episode_end_steps: list = field(default_factory=list)

    def steps_to(self, threshold: float, window: int = 20) -> int | None:
        """Env steps when the mean of the last `window` episode returns first reached `threshold`."""
        returns = self.episode_returns
        for i in range(window - 1, len(returns)):
            if np.mean(returns[i - window + 1:i + 1]) >= threshold:
                return self.episode_end_steps[i]
        return None

    def to_csv(self, path) -> None:
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)

    def to_json(self, path) -> None:
        with open(path, "w") as handle:
            json.dump({"updates": self.rows, "episode_returns": self.episode_returns,
                       "episode_end_steps": self.episode_end_steps}, handle)


def make_policy(env, config: TrainConfig) -> Policy:
    import gymnasium as gym
    space = env.single_action_space
    obs_dim = int(np.prod(env.single_observation_space.shape))
    if isinstance(space, gym.spaces.Discrete):
        actions = CategoricalActions(int(space.n))
    elif isinstance(space, gym.spaces.Box) and len(space.shape) == 1 and config.box_actions != "normal":
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise InvalidArgumentError(f"{config.box_actions} actions need a bounded Box, not {space}")
        dim, family = space.shape[0], config.box_actions
        actions = BetaActions(dim) if family == "beta" else BoundedActions(family, dim)
    elif isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        actions = DiagonalNormalActions(space.shape[0])
    else:
        raise InvalidArgumentError(f"unsupported action space {space}: Discrete and 1-D Box are supported")
    return Policy(obs_dim, actions, config.hidden, config.state_dependent_std)


def train(env_id, total_steps: int, config: TrainConfig | None = None, seed: int = 0, progress: bool = True,
          stop=None) -> tuple[Policy, TrainLog]:
    """Train on a gymnasium env id (or a callable making one env) for `total_steps` env steps.
    `stop(log)` may end training early (e.g. once a return threshold is reached)."""
    config = config or TrainConfig()
    config.__post_init__()  # fields may have been changed after construction
    config.trpo.__post_init__()
    config.ppo.__post_init__()
    count("total_steps", total_steps)
    with local_torch_state(seed):  # the policy's initialisation; the caller's random stream is restored
        return _train(env_id, total_steps, config, seed, progress, stop)


def _train(env_id, total_steps: int, config: TrainConfig, seed: int, progress: bool, stop):
    import gymnasium as gym
    generator = torch.Generator().manual_seed(seed)
    make = env_id if callable(env_id) else (lambda: gym.make(env_id))
    envs = gym.vector.SyncVectorEnv([make for _ in range(config.n_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    policy = make_policy(envs, config)
    value = mlp((policy.net[0].in_features, *config.hidden, 1))
    value_opt = torch.optim.Adam(value.parameters(), lr=config.value_lr, eps=config.adam_eps)
    policy_opt = (
        torch.optim.Adam(policy.parameters(), lr=config.ppo.lr, eps=config.adam_eps)
        if config.algorithm == "ppo" else None
    )
    normalizer = RunningNormalizer(policy.net[0].in_features) if config.normalize_obs else None
    scaler = RewardScaler(config.n_envs, config.gamma) if config.normalize_reward else None
    log, steps, started = TrainLog(), 0, time.perf_counter()
    obs, _ = envs.reset(seed=seed)
    episode_return = np.zeros(config.n_envs)
    box = isinstance(envs.single_action_space, gym.spaces.Box)
    while steps < total_steps:
        batch, obs, episode_return = _rollout(envs, policy, value, obs, config, (normalizer, scaler),
                                              generator, episode_return, log, steps, box)
        steps += config.n_steps * config.n_envs
        advantages, returns = gae(
            batch["rewards"],
            batch["values"],
            batch["next_values"],
            batch["terminated"],
            batch["ends"],
            config.gamma,
            config.gae_lambda,
        )
        flat = _flatten_batch(batch, advantages, returns)
        adv = (flat["advantages"] - flat["advantages"].mean()) / (flat["advantages"].std() + 1e-8)
        if config.algorithm == "trpo":
            outcome = trpo_step(policy, flat["obs"], flat["actions"], adv, config.trpo)
        else:
            outcome = ppo_step(policy, policy_opt, flat["obs"], flat["actions"], adv, config.ppo, generator)
        _fit_value(value, value_opt, flat["obs"], flat["returns"], config, generator)
        log.rows.append(_row(log, steps, outcome, flat, value, started))
        if progress:
            _progress(steps, total_steps, log)
        if stop is not None and stop(log):
            break
    envs.close()
    if progress:
        print(file=sys.stderr)
    return policy, log


def _rollout(envs, policy, value, obs, config, normalizers, generator, episode_return, log, steps_before,
             box):
    """n_steps transitions from every env. V(s') is V of the next stored state, except where an episode
    ended (V of the final observation, needed at truncation) and after the last step. The logged episode
    returns are the raw rewards; the batch holds the scaled ones when rewards are normalised."""
    normalizer, scaler = normalizers
    keys = ("obs", "actions", "rewards", "values", "terminated", "ends")
    batch = {k: [] for k in keys}
    final_values = {}
    for t in range(config.n_steps):
        if normalizer is not None:
            normalizer.update(obs)
        x = torch.as_tensor(normalizer(obs) if normalizer else obs, dtype=torch.float32)
        with torch.no_grad():
            action = policy.actions.sample(policy(x), generator)
            v = value(x)[:, 0].numpy()
        env_action = action.numpy()
        if box and isinstance(policy.actions, (BetaActions, BoundedActions)):
            space, (lo, hi) = envs.single_action_space, policy.actions.support
            env_action = space.low + (space.high - space.low) * (env_action - lo) / (hi - lo)
        elif box:
            env_action = np.clip(env_action, envs.single_action_space.low, envs.single_action_space.high)
        next_obs, reward, terminated, truncated, info = envs.step(env_action)
        ends = np.logical_or(terminated, truncated)
        episode_return += reward
        if scaler is not None:
            reward = scaler(reward, ends)
        for i in np.flatnonzero(ends):
            log.episode_returns.append(float(episode_return[i]))
            log.episode_end_steps.append(steps_before + (t + 1) * config.n_envs)
            episode_return[i] = 0.0
            final = info["final_obs"][i][None] if "final_obs" in info else next_obs[i][None]
            xf = torch.as_tensor(normalizer(final) if normalizer else final, dtype=torch.float32)
            with torch.no_grad():
                final_values[(t, i)] = float(value(xf)[0, 0])
        for key, item in zip(keys, (x.numpy(), action.numpy(), reward, v, terminated, ends)):
            batch[key].append(np.asarray(item, dtype=np.float32 if key != "actions" else None))
        obs = next_obs
    out = {k: np.stack(v) for k, v in batch.items()}
    xl = torch.as_tensor(normalizer(obs) if normalizer else obs, dtype=torch.float32)
    with torch.no_grad():
        last = value(xl)[:, 0].numpy()
    out["next_values"] = np.concatenate([out["values"][1:], last[None]], axis=0)
    for (t, i), v in final_values.items():
        out["next_values"][t, i] = v
    return out, obs, episode_return


def _flatten_batch(batch, advantages, returns) -> dict:
    def flat(a):
        return torch.as_tensor(a.reshape(-1, *a.shape[2:]))

    return {
        "obs": flat(batch["obs"]),
        "actions": flat(batch["actions"]),
        "advantages": flat(advantages).float(),
        "returns": flat(returns).float(),
        "values": flat(batch["values"]),
    }


def _fit_value(value, optimizer, obs, returns, config, generator) -> None:
    for _ in range(config.value_epochs):
        for index in torch.randperm(len(obs), generator=generator).split(config.value_minibatch):
            loss = (value(obs[index])[:, 0] - returns[index]).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def _row(log, steps, outcome, flat, value, started) -> dict:
    returns = flat["returns"].numpy()
    with torch.no_grad():
        predicted = value(flat["obs"])[:, 0].numpy()
    explained = 1 - np.var(returns - predicted) / max(np.var(returns), 1e-12)
    recent = log.episode_returns[-20:]
    return {"steps": steps, "seconds": time.perf_counter() - started,
            "mean_return_20": float(np.mean(recent)) if recent else float("nan"), "kl": outcome["kl"],
            "accepted": outcome["accepted"], "step_fraction": outcome["fraction"],
            "improvement": outcome["improvement"], "explained_variance": float(explained)}


def _progress(steps, total, log) -> None:
    done = min(steps / total, 1.0)
    bar = "#" * int(30 * done) + "-" * (30 - int(30 * done))
    last = log.rows[-1]
    print(f"\r[{bar}] {steps}/{total} steps  return(20) {last['mean_return_20']:8.1f}  kl {last['kl']:.4f}",
          end="", file=sys.stderr, flush=True)
