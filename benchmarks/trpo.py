"""symgeo's TRPO against sb3-contrib's TRPO, side by side in one run (both at default hyperparameters,
one torch thread, seeds 0-2; --quick: seed 0 and a shorter Pendulum run).

1. CartPole-v1: env steps and wall-clock until the mean of the last 20 episode returns reaches 475
   (budget 200 000 steps).
2. Fisher-vector product time per call: symgeo's exact Jᵀ F J route vs double backprop of the KL (the
   route sb3-contrib and most implementations take), for the CartPole policy (batch 2048) and a larger
   policy (obs 64, hidden 512×512, 8 continuous actions: ~0.3M weights, batch 10 000).
3. Pendulum-v1: mean of the last 20 episode returns after 100 000 steps (--quick: 20 000).

sb3-contrib is a benchmark-only dependency (`pip install sb3-contrib`).

    python benchmarks/trpo.py [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
from numeric.nets.rl import (
    CategoricalActions,
    DiagonalNormalActions,
    Policy,
    TrainConfig,
    fisher_vector_product,
    flat_params,
    train,
)

try:
    from sb3_contrib import TRPO
    from stable_baselines3.common.callbacks import BaseCallback
    HAVE_SB3 = True
except ImportError:
    HAVE_SB3 = False

THRESHOLD = 475.0
WINDOW = 20


def ours_cartpole(seed: int, budget: int):
    start = time.perf_counter()
    _, log = train("CartPole-v1", budget, TrainConfig(), seed=seed, progress=False,
                   stop=lambda log: log.steps_to(THRESHOLD, WINDOW) is not None)
    return log.steps_to(THRESHOLD, WINDOW), time.perf_counter() - start


def ours_pendulum(seed: int, steps: int) -> float:
    _, log = train("Pendulum-v1", steps, TrainConfig(), seed=seed, progress=False)
    return float(np.mean(log.episode_returns[-WINDOW:]))


if HAVE_SB3:
    class EpisodeTracker(BaseCallback):
        """Episode returns from the Monitor wrapper; stops once the last-20 mean reaches a threshold."""

        def __init__(self, threshold=None):
            super().__init__()
            self.threshold, self.returns, self.reached_at = threshold, [], None

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", []):
                if "episode" in info:
                    self.returns.append(info["episode"]["r"])
                    if (self.threshold is not None and self.reached_at is None and len(self.returns) >= WINDOW
                            and np.mean(self.returns[-WINDOW:]) >= self.threshold):
                        self.reached_at = self.num_timesteps
                        return False
            return True


def sb3_cartpole(seed: int, budget: int):
    tracker = EpisodeTracker(THRESHOLD)
    start = time.perf_counter()
    TRPO("MlpPolicy", "CartPole-v1", seed=seed, device="cpu").learn(budget, callback=tracker)
    return tracker.reached_at, time.perf_counter() - start


def sb3_pendulum(seed: int, steps: int) -> float:
    tracker = EpisodeTracker()
    TRPO("MlpPolicy", "Pendulum-v1", seed=seed, device="cpu").learn(steps, callback=tracker)
    return float(np.mean(tracker.returns[-WINDOW:]))


def fvp_times(repeat: int = 5):
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


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="seed 0 only, Pendulum for 20 000 steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [0] if args.quick else [0, 1, 2]
    budget, pendulum_steps = 200_000, (20_000 if args.quick else 100_000)
    if not HAVE_SB3:
        print("sb3-contrib is not installed (pip install sb3-contrib): its column stays empty")

    print(f"\nCartPole-v1: env steps and seconds until the mean of the last {WINDOW} returns ≥ {THRESHOLD:g} "
          f"(medians over seeds {seeds})", flush=True)
    rows = {"symgeo TRPO": [ours_cartpole(s, budget) for s in seeds]}
    if HAVE_SB3:
        rows["sb3-contrib TRPO"] = [sb3_cartpole(s, budget) for s in seeds]
    print(f"{'':>18} {'steps':>10} {'seconds':>10}  per seed (steps, s)")
    for name, runs in rows.items():
        steps, seconds = _median([r[0] for r in runs]), _median([r[1] for r in runs if r[0] is not None])
        detail = ", ".join(f"({r[0]}, {r[1]:.1f})" for r in runs)
        print(f"{name:>18} {'—' if steps is None else f'{steps:.0f}':>10} "
              f"{'—' if seconds is None else f'{seconds:.1f}':>10}  {detail}", flush=True)

    print("\nFisher-vector product, time per call (median of 5)", flush=True)
    print(f"{'policy':>40} {'weights':>9} {'exact JᵀFJ':>12} {'double backprop':>16} {'speed-up':>9}")
    for name, weights, exact, double in fvp_times():
        print(f"{name:>40} {weights:>9} {exact * 1e3:>9.2f} ms {double * 1e3:>13.2f} ms {double / exact:>8.2f}×",
              flush=True)

    print(f"\nPendulum-v1: mean of the last {WINDOW} returns after {pendulum_steps:,} steps", flush=True)
    ours = [ours_pendulum(s, pendulum_steps) for s in seeds]
    print(f"{'symgeo TRPO':>18} {statistics.median(ours):>10.1f}  per seed {', '.join(f'{r:.1f}' for r in ours)}",
          flush=True)
    if HAVE_SB3:
        theirs = [sb3_pendulum(s, pendulum_steps) for s in seeds]
        print(f"{'sb3-contrib TRPO':>18} {statistics.median(theirs):>10.1f}  per seed "
              f"{', '.join(f'{r:.1f}' for r in theirs)}", flush=True)


if __name__ == "__main__":
    main()
