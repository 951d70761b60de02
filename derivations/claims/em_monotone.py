"""Seed: "EM is alternating projections in dual geometry ... the convergence guarantee follows"."""
import numpy as np

from _claim import report
from numeric.em import fit_mixture

rng = np.random.default_rng(0)
x = np.concatenate([rng.gamma(2.0, 1.0, 3000), rng.gamma(12.0, 0.8, 2000)])
fit = fit_mixture("gamma", x, 2, init=np.array([[1.0, 3.0], [1.5, 3.0]]), max_iter=100, tol=0)
logliks = np.array([h["log_likelihood"] for h in fit.history])
gaps = np.array([h["kl_gap"] for h in fit.history[1:]])
report("EM (E-step: e-projection, M-step: m-projection) never decreases the likelihood",
       f"{len(logliks) - 1} iterations, largest decrease {max(0.0, -np.diff(logliks).min()):.2e}, "
       f"smallest KL gap {gaps.min():.2e} (log L = ELBO + KL, KL ≥ 0)",
       "holds" if fit.monotone and gaps.min() > -1e-9 * abs(logliks[-1]) else "does not hold")
