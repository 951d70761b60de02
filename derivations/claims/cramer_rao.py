"""Seed: "the variance of any unbiased estimator cannot be smaller than 1/F(θ) ... MLE as n → ∞ achieves it"."""
import numpy as np

import numeric
from _claim import report

rng = np.random.default_rng(0)
exponential = numeric.compile("exponential")
rows = []
for n in (5, 50, 500, 5000):
    mle = 1 / rng.exponential(0.5, (4000, n)).mean(axis=1)           # rate λ = 2
    rows.append((n, np.var(mle) / float(np.asarray(exponential.cramer_rao(2.0, n))[0, 0])))
report("the MLE's variance approaches the Cramér–Rao bound 1/(n F) as n → ∞",
       "exponential(λ = 2), variance / bound: " + ", ".join(f"n = {n}: {r:.3f}" for n, r in rows),
       "holds: the ratio tends to 1 (above 1 for small n, where this MLE is biased)" if abs(rows[-1][1] - 1) < 0.05
       else "does not hold at n = 5000")
