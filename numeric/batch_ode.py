"""Many independent ODEs at once, each with its own adaptive step: Dormand–Prince 8(5,3) in numpy.

scipy's `solve_ivp` controls one step for the whole state, so integrating B problems as one system lets
the hardest row set the step of all and lets a row that fails (leaves the domain, turns non-finite)
disturb the rest. Here every row has its own time and step; each iteration evaluates the right-hand
side on the rows still running (one batched call per stage) and a failing row simply stops. The
tableau is scipy's (`scipy.integrate.DOP853`), the error estimate and step control are Hairer's.

>>> z, ok = integrate_rows(lambda z: -z * np.array([1.0, 10.0]), np.ones((1, 2)))
>>> ok.tolist(), np.allclose(z, np.exp([-1.0, -10.0]), rtol=1e-10)
([True], True)
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.integrate import DOP853

from symgeo.errors import InvalidArgumentError

A, B, C, E3, E5 = DOP853.A, DOP853.B, DOP853.C, DOP853.E3, DOP853.E5
STAGES = DOP853.n_stages
SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0
MIN_STEP = 1e-12


def integrate_rows(f: Callable, z0, t_end: float = 1.0, rtol: float = 1e-12, atol: float = 1e-12,
                   max_steps: int = 1000, valid: Callable | None = None,
                   group: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ż = f(z) from t = 0 to t_end for each row of z0 ((B, m)); f maps (k, m) rows to (k, m).
    `valid(z)` → (k,) bool may reject states (outside a domain): a step landing there is retried smaller.
    `group` consecutive rows share one step sequence (the largest error of the group controls it), so
    differences between the rows of a group are free of step-size noise: finite-difference Jacobians
    from perturbed copies are then accurate to the perturbation, not to rtol / perturbation.
    Returns (z(t_end), ok); ok is False for rows that needed more than max_steps steps or a step below
    1e-12 (their z is where they stopped)."""
    z = np.array(z0, dtype=float)
    rows = len(z)
    if rows % group:
        raise InvalidArgumentError(f"{rows} rows do not split into groups of {group}")
    t, h = np.zeros(rows), np.full(rows, 0.01 * t_end)
    ok, running = np.ones(rows, dtype=bool), np.ones(rows, dtype=bool)
    steps = np.zeros(rows, dtype=int)
    k_first = _call(f, z)
    while running.any():
        idx = np.flatnonzero(running)
        h_now = np.minimum(h[idx], t_end - t[idx])
        z_new, k_last, error = _dop853_step(f, z[idx], k_first[idx], h_now, rtol, atol)
        good = np.isfinite(error) & np.all(np.isfinite(z_new), axis=1)
        if valid is not None:
            good[good] &= valid(z_new[good])
        if group > 1:
            good = np.repeat(good.reshape(-1, group).all(axis=1), group)
            error = np.repeat(np.where(good, error, np.inf).reshape(-1, group).max(axis=1), group)
        accept = good & (error <= 1)
        factor = np.where(good, SAFETY * np.maximum(error, 1e-10) ** (-1 / 8), MIN_FACTOR)
        factor = np.clip(factor, MIN_FACTOR, np.where(accept, MAX_FACTOR, 1.0))
        done_rows = idx[accept]
        z[done_rows], k_first[done_rows] = z_new[accept], k_last[accept]
        t[done_rows] += h_now[accept]
        steps[idx] += 1
        h[idx] = h_now * factor
        finished = t[idx] >= t_end * (1 - 1e-14)
        failed = ~finished & ((steps[idx] >= max_steps) | (h[idx] < MIN_STEP * t_end))
        ok[idx[failed]] = False
        running[idx[finished | failed]] = False
    return z, ok


def _call(f, z) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(f(z), dtype=float)


def _dop853_step(f, z, k0, h, rtol, atol):
    """One DOP853 step for each row: (z_new, f(z_new), scaled error norm)."""
    k = np.empty((STAGES + 1,) + z.shape)
    k[0] = k0
    for s in range(1, STAGES):
        k[s] = _call(f, z + h[:, None] * np.tensordot(A[s, :s], k[:s], axes=1))
    z_new = z + h[:, None] * np.tensordot(B, k[:STAGES], axes=1)
    k[STAGES] = _call(f, z_new)
    with np.errstate(all="ignore"):
        scale = atol + rtol * np.maximum(np.abs(z), np.abs(z_new))
        err5 = np.sum((np.tensordot(E5, k, axes=1) / scale) ** 2, axis=1)
        err3 = np.sum((np.tensordot(E3, k, axes=1) / scale) ** 2, axis=1)
        denominator = np.where(err5 + err3 > 0, err5 + 0.01 * err3, 1.0)
        error = np.abs(h) * err5 / np.sqrt(denominator * z.shape[1])
    return z_new, k[STAGES], error
