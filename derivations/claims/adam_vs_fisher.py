"""Seed: "Adam uses a diagonal approximation of the second derivative of the loss. In what sense is this
related to the Fisher matrix? What does Adam miss?"."""
import numpy as np

import numeric
from _claim import report
from numeric.exponential import maps_for
from numeric.natural_gradient import adam_vs_fisher

data = np.random.default_rng(0).gamma(2.0, 1.5, 20000)
maps = maps_for("gamma")
mle = maps.params(maps.m_projection(maps.statistics(data).mean(axis=0)[None]))[0]
r = adam_vs_fisher(numeric.compile("gamma"), data, mle, batch_size=8, seed=0)
report("Adam's second moment is a diagonal curvature estimate",
       f"at the gamma MLE, batch 8: Adam v = {np.round(r['adam_v'], 4).tolist()}, diag(F_emp)/B = "
       f"{np.round(r['empirical_diag'], 4).tolist()}, diag(F)/B = {np.round(r['fisher_diag'], 4).tolist()}; "
       f"Fisher correlation of (k, θ) = {r['fisher_correlation'][0, 1]:.3f}",
       "partly: v estimates the diagonal of the empirical Fisher divided by the batch size (not the Hessian), "
       "and Adam divides by its square root; it misses the off-diagonal coupling (here 0.88) and the metric's "
       "dependence on the parametrisation")
