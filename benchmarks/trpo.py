"""symgeo's TRPO against sb3-contrib's TRPO, side by side in one run, both with the RL Zoo's tuned
hyperparameters (rl-baselines3-zoo hyperparams/trpo.yml, mapped onto symgeo's TrainConfig field by field),
10 seeds each, one torch thread per run, runs spread over --jobs processes.

1. CartPole-v1: env steps and wall-clock seconds until the mean of the last 20 episode returns reaches 475
   (the Zoo's budget, 100 000 steps; a seed that never reaches it counts as the budget).
2. Pendulum-v1 and LunarLanderContinuous-v3: the mean of the last 20 episode returns at the Zoo's budget
   (100 000 steps each).
3. Fisher-vector product time per call: symgeo's exact Jᵀ F J route vs double backprop of the KL (the
   route sb3-contrib takes) for the CartPole policy and a ~0.3M-weight policy at batch 10 000.

Aggregates are interquartile means with 95% stratified-bootstrap confidence intervals (the rliable
protocol: rliable's own estimator when it is installed, else scipy.stats.bootstrap on the IQM).

Differences the Zoo imposes and symgeo does not copy: sb3's Pendulum runs use gSDE (state-dependent
exploration), which symgeo's policies do not have; symgeo's "normalize" is TrainConfig's
normalize_obs + normalize_reward (VecNormalize's observation and return scaling).

Benchmark-only dependencies: `pip install sb3-contrib rliable "gymnasium[box2d]"`.

    python benchmarks/trpo.py [--quick] [--seeds N] [--jobs J]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from scipy import stats

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

THRESHOLD = 475.0
WINDOW = 20

# rl-baselines3-zoo hyperparams/trpo.yml (the tuned entries), in sb3-contrib's own argument names.
ZOO = {
    "CartPole-v1": dict(n_timesteps=100_000, n_envs=2, n_steps=512, batch_size=512, cg_damping=1e-3,
                        gae_lambda=0.98, gamma=0.99, learning_rate=1e-3, n_critic_updates=20),
    "Pendulum-v1": dict(n_timesteps=100_000, n_envs=2, n_steps=1024, gamma=0.9, n_critic_updates=15,
                        use_sde=True, sde_sample_freq=4),
    "LunarLanderContinuous-v3": dict(n_timesteps=100_000, normalize=True, n_envs=2, n_steps=1024,
                                     n_critic_updates=20),
}


def ours_config(zoo: dict):
    """The Zoo's entry as symgeo's TrainConfig; unset fields keep both libraries' common defaults."""
    from numeric.nets.rl import TrainConfig, TRPOConfig
    config = TrainConfig(n_envs=zoo.get("n_envs", 1), n_steps=zoo.get("n_steps", 2048),
                         gamma=zoo.get("gamma", 0.99), gae_lambda=zoo.get("gae_lambda", 0.95),
                         value_lr=zoo.get("learning_rate", 1e-3), value_epochs=zoo.get("n_critic_updates", 10),
                         value_minibatch=zoo.get("batch_size", 128), normalize_obs=zoo.get("normalize", False),
                         normalize_reward=zoo.get("normalize", False))
    config.trpo = TRPOConfig(cg_damping=zoo.get("cg_damping", 0.1))
    return config


def run_ours(env_id: str, seed: int, budget: int, until: float | None):
    from numeric.nets.rl import train
    start = time.perf_counter()
    stop = None if until is None else (lambda log: log.steps_to(until, WINDOW) is not None)
    _, log = train(env_id, budget, ours_config(ZOO[env_id]), seed=seed, progress=False, stop=stop)
    return log.episode_returns, log.episode_end_steps, time.perf_counter() - start


def run_sb3(env_id: str, seed: int, budget: int, until: float | None):
    from sb3_contrib import TRPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    class Episodes(BaseCallback):
        """Raw episode returns from the Monitor wrapper (inside VecNormalize); stops at `until`."""

        def __init__(self):
            super().__init__()
            self.returns, self.ends = [], []

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                if "episode" in info:
                    self.returns.append(float(info["episode"]["r"]))
                    self.ends.append(self.num_timesteps)
                    if (until is not None and len(self.returns) >= WINDOW
                            and np.mean(self.returns[-WINDOW:]) >= until):
                        return False
            return True

    zoo = dict(ZOO[env_id])
    zoo.pop("n_timesteps")
    env = make_vec_env(env_id, n_envs=zoo.pop("n_envs", 1), seed=seed)
    if zoo.pop("normalize", False):
        env = VecNormalize(env, gamma=zoo.get("gamma", 0.99))
    episodes = Episodes()
    start = time.perf_counter()
    TRPO("MlpPolicy", env, seed=seed, device="cpu", **zoo).learn(budget, callback=episodes)
    return episodes.returns, episodes.ends, time.perf_counter() - start


def one_run(job):
    import torch
    torch.set_num_threads(1)
    library, env_id, seed, budget, until = job
    return (run_ours if library == "symgeo" else run_sb3)(env_id, seed, budget, until)


def steps_to(returns, ends, threshold):
    for i in range(WINDOW, len(returns) + 1):
        if np.mean(returns[i - WINDOW:i]) >= threshold:
            return ends[i - 1]
    return None


def _rliable():
    """rliable's modules, or None where it is absent or does not import (its arch dependency fails on
    some pandas releases)."""
    try:
        from rliable import library, metrics
        return library, metrics
    except Exception:  # noqa: BLE001 - any import-time failure means: use scipy
        return None


def iqm_interval(values, reps: int = 2000):
    """Interquartile mean and its 95% stratified-bootstrap interval (one task: a plain bootstrap over runs)."""
    values = np.asarray(values, dtype=float)
    if (modules := _rliable()) is not None:
        library, metrics = modules
        point, interval = library.get_interval_estimates({"x": values[:, None]},
                                                         lambda s: np.array([metrics.aggregate_iqm(s)]),
                                                         reps=reps)
        return float(point["x"][0]), (float(interval["x"][0, 0]), float(interval["x"][1, 0]))
    iqm = lambda x, axis=-1: stats.trim_mean(x, 0.25, axis=axis)  # noqa: E731
    if np.ptp(values) == 0:
        return float(values[0]), (float(values[0]), float(values[0]))
    ci = stats.bootstrap((values,), iqm, n_resamples=reps, method="percentile", random_state=0).confidence_interval
    return float(iqm(values)), (float(ci.low), float(ci.high))


def show(label: str, values, unit: str = "", digits: int = 0) -> str:
    point, (low, high) = iqm_interval(values)
    return f"{label:>18} {point:>12,.{digits}f}{unit} [{low:,.{digits}f}, {high:,.{digits}f}]"


def fvp_times(repeat: int = 5):
    import torch
    from numeric.nets.rl import CategoricalActions, DiagonalNormalActions, Policy, fisher_vector_product, flat_params
    torch.set_num_threads(1)
    cases = [("CartPole policy, batch 2048", Policy(4, CategoricalActions(2)), torch.randn(2048, 4)),
             ("obs 64, 512×512, 8 actions, batch 10⁴", Policy(64, DiagonalNormalActions(8), hidden=(512, 512)),
              torch.randn(10_000, 64))]
    for name, policy, obs in cases:
        v = torch.randn(len(flat_params(policy)))
        row = [name, len(v)]
        for route in ("exact", "double_backprop"):
            product = fisher_vector_product(policy, obs, 0.1, route)
            product(v)
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                product(v)
                times.append(time.perf_counter() - start)
            row.append(statistics.median(times))
        yield row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 10 000-step budgets (under a minute)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel, one thread each")
    args = parser.parse_args()
    seeds = range(2 if args.quick else args.seeds)
    try:
        import sb3_contrib  # noqa: F401
        libraries = ("symgeo", "sb3-contrib")
    except ImportError:
        print("sb3-contrib is not installed (pip install sb3-contrib): its rows stay empty")
        libraries = ("symgeo",)
    envs = list(ZOO)
    budget = {env: (10_000 if args.quick else ZOO[env]["n_timesteps"]) for env in envs}
    jobs = [(lib, env, seed, budget[env], THRESHOLD if env == "CartPole-v1" else None)
            for env in envs for seed in seeds for lib in libraries]  # interleaved: both see the same load
    estimator = "rliable" if _rliable() is not None else "scipy.stats.bootstrap (percentile; rliable absent)"
    print(f"{len(jobs)} runs over {args.jobs} processes; intervals from {estimator} …", flush=True)
    results = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {pool.submit(one_run, job): job for job in jobs}
        for done, future in enumerate(as_completed(futures), 1):
            results[futures[future]] = future.result()
            library, env, seed = futures[future][:3]
            print(f"  {done}/{len(jobs)} runs done ({library}, {env}, seed {seed})", file=sys.stderr, flush=True)

    for env in envs:
        print(f"\n{env}, {len(seeds)} seeds, budget {budget[env]:,} steps, IQM [95% stratified-bootstrap CI]")
        for lib in libraries:
            runs = [results[(lib, env, s, budget[env], THRESHOLD if env == "CartPole-v1" else None)]
                    for s in seeds]
            if env == "CartPole-v1":
                reached = [steps_to(r, e, THRESHOLD) for r, e, _ in runs]
                steps = [budget[env] if s is None else s for s in reached]
                seconds = [t for _, _, t in runs]
                hits = sum(s is not None for s in reached)
                print(show(lib, steps, " steps") + f"  {show('', seconds, ' s', 1).strip()}  "
                      f"reached {hits}/{len(runs)}", flush=True)
            else:
                finals = [np.mean(r[-WINDOW:]) for r, _, _ in runs]
                print(show(lib, finals, digits=1) + f"  (last-{WINDOW} mean return; per seed "
                      f"{', '.join(f'{f:.0f}' for f in finals)})", flush=True)

    print("\nFisher-vector product, time per call (median of 5, one thread)", flush=True)
    print(f"{'policy':>40} {'weights':>9} {'exact JᵀFJ':>12} {'double backprop':>16} {'speed-up':>9}")
    for name, weights, exact, double in fvp_times():
        print(f"{name:>40} {weights:>9} {exact * 1e3:>9.2f} ms {double * 1e3:>13.2f} ms {double / exact:>8.2f}×",
              flush=True)


if __name__ == "__main__":
    main()
