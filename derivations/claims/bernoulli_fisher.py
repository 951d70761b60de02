"""Seed: "Fisher information F(p) for Bernoulli(p) is maximum at p = 0.5 or p = 0.1?"."""
import numpy as np

import numeric
from _claim import report

bernoulli = numeric.compile("bernoulli")
f = {p: float(np.asarray(bernoulli.fisher(p))[0, 0]) for p in (0.1, 0.5)}
grid = np.linspace(0.01, 0.99, 9801)
minimum = grid[np.argmin(np.asarray(bernoulli.fisher(grid))[:, 0, 0])]
report("which of p = 0.5, p = 0.1 has the larger Fisher information",
       f"F(0.1) = {f[0.1]:.4f}, F(0.5) = {f[0.5]:.4f}; F is smallest at p = {minimum:.2f} and grows without "
       "bound toward 0 and 1",
       f"p = {max(f, key=f.get)} ({max(f.values()) / min(f.values()):.2f}× more); p = {minimum:.2f} is the "
       "minimum of F, not its maximum")
