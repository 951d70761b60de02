"""Fisher–Rao distances between many pairs at once.

1. Start: every pair's geodesic boundary-value problem, discretised by central differences on
   RELAX_INTERVALS intervals in unbounded coordinates u (log for positive, logit for unit-interval
   parameters), is solved by damped Newton for all pairs together (one sparse block-tridiagonal
   system per iteration). Its initial slope is the geodesic's initial velocity to O(h²).
2. Polish: Newton shooting on all pairs together. Each trajectory, with n velocity-perturbed copies
   for a forward-difference ∂ξ(1)/∂v, is integrated by `batch_ode.integrate_rows` (DOP853, each row
   with its own step; every stage is one batched call of the generated Γ).
3. A pair the batch does not settle (it nears the domain's boundary, runs away or stalls) goes to the
   one-pair solver `numeric.geodesic.distance`.

Why not scipy's `solve_bvp` or `solve_ivp` over all pairs: both control one mesh or step for the whole
system, so the hardest pair sets the cost of all (measured: gamma's 100 benchmark pairs as one
`solve_ivp` system took 25 s, against 5.9 s one pair at a time).

>>> import numeric
>>> gamma = numeric.compile("gamma")
>>> np.round(distances(gamma, [[2.0, 1.0], [1.0, 1.0]], [[3.0, 0.5], [4.0, 2.0]]), 10).tolist()
[0.5411369318, 2.7468409495]
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import MatrixRankWarning, spsolve

from symgeo.errors import InvalidArgumentError

from .batch_ode import integrate_rows
from .compiled import CompiledFamily
from .geodesic import FAR, GeodesicError, _Unbounded, closed_form, distance

RTOL = ATOL = 1e-12
RELAX_INTERVALS = 32
RELAX_ITERATIONS = 40
MAX_ITERATIONS = 20
MAX_HALVINGS = 8  # a pair whose Newton step finds no decrease in this many halvings leaves the batch
FD_STEP = 1e-7  # relative perturbation of forward-difference Jacobians
MAX_STEPS = 400  # adaptive steps per trajectory before it counts as a runaway trial


class BatchGeodesics:
    """Batched logarithm maps (initial velocities) of the Levi-Civita connection of a compiled family."""

    def __init__(self, compiled: CompiledFamily, rtol: float = RTOL, atol: float = ATOL):
        if compiled.backend != "numpy":
            raise InvalidArgumentError("batched shooting integrates in numpy: compile with backend='numpy'")
        self.compiled, self.n = compiled, compiled.n
        self.rtol, self.atol = rtol, atol
        self._rhs = compiled.geodesic_rhs().generated
        self._margins = compiled.domain_margins
        self._coords = _Unbounded(compiled)

    def inside(self, xi) -> np.ndarray:
        """(K,) bool for rows of parameter points (K, n)."""
        with np.errstate(all="ignore"):
            margins = np.asarray(self._margins(*xi.T)).reshape(len(xi), -1)
        return np.all(margins > 0, axis=1) & np.all(np.isfinite(xi), axis=1)

    # -- 1. start: the discretised boundary-value problem -------------------------------------------
    def _accel_u(self, u, w) -> np.ndarray:
        """u'' of the geodesic in unbounded coordinates, rows (K, n); NaN outside the domain."""
        c = self._coords
        with np.errstate(all="ignore"):
            xi = c.from_u(u.T).T
            xi[~self.inside(xi)] = np.nan  # scipy's ψ⁽ⁿ⁾ is slow and meaningless far outside
            slope, curve = c.slope(xi.T).T, c.curvature(xi.T).T
            accel = self._rhs.rows(np.hstack([xi, slope * w]))[:, self.n:]
            return (accel - curve * w ** 2) / slope

    def _relax_residual(self, U, h):
        """Central-difference residual (P, M−1, n) of u'' = F(u, u') on the nodes U (P, M+1, n)."""
        n = U.shape[2]
        inner, slope = U[:, 1:-1], (U[:, 2:] - U[:, :-2]) / (2 * h)
        F = self._accel_u(inner.reshape(-1, n), slope.reshape(-1, n)).reshape(inner.shape)
        return (U[:, 2:] - 2 * inner + U[:, :-2]) / h ** 2 - F, inner, slope, F

    def _relax_jacobian(self, inner, slope, F, h):
        """The block-tridiagonal Jacobian of the residual in the interior nodes, one block per pair."""
        P, m, n = inner.shape
        rows_u, rows_w = inner.reshape(-1, n), slope.reshape(-1, n)
        base = F.reshape(-1, n)
        Fu, Fw = np.empty((len(base), n, n)), np.empty((len(base), n, n))
        for a in range(n):
            du = FD_STEP * (1 + np.abs(rows_u[:, a]))
            shifted = rows_u.copy()
            shifted[:, a] += du
            Fu[:, :, a] = (self._accel_u(shifted, rows_w) - base) / du[:, None]
            dw = FD_STEP * (1 + np.abs(rows_w[:, a]))
            shifted = rows_w.copy()
            shifted[:, a] += dw
            Fw[:, :, a] = (self._accel_u(rows_u, shifted) - base) / dw[:, None]
        eye = np.eye(n)
        diag = (-2 * eye / h ** 2 - Fu).reshape(P, m, n, n)
        lower = (eye / h ** 2 + Fw / (2 * h)).reshape(P, m, n, n)[:, 1:]  # ∂R_k/∂U_{k−1}
        upper = (eye / h ** 2 - Fw / (2 * h)).reshape(P, m, n, n)[:, :-1]  # ∂R_k/∂U_{k+1}
        index = np.arange(P * m * n).reshape(P, m, n)
        rows, cols, vals = [], [], []
        for block, r, c in ((diag, index, index), (lower, index[:, 1:], index[:, :-1]),
                            (upper, index[:, :-1], index[:, 1:])):
            rows.append(np.broadcast_to(r[..., :, None], block.shape).ravel())
            cols.append(np.broadcast_to(c[..., None, :], block.shape).ravel())
            vals.append(block.ravel())
        size = P * m * n
        return sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                 shape=(size, size))

    def start(self, x0, x1, intervals: int = RELAX_INTERVALS) -> tuple[np.ndarray, np.ndarray]:
        """Initial velocities (P, n) from the discretised problem, and which pairs it solved."""
        c, n = self._coords, self.n
        u0, u1 = c.to_u(x0.T).reshape(n, -1).T, c.to_u(x1.T).reshape(n, -1).T
        h = 1.0 / intervals
        t = np.linspace(0.0, 1.0, intervals + 1)[None, :, None]
        U = u0[:, None] + (u1 - u0)[:, None] * t
        R, _, slope, F = self._relax_residual(U, h)
        norm = _row_norm(R)
        active = np.isfinite(norm)
        solved = np.zeros(len(U), dtype=bool)
        for _ in range(RELAX_ITERATIONS):
            rows = np.flatnonzero(active)
            if rows.size == 0:
                break
            J = self._relax_jacobian(U[rows, 1:-1], slope[rows], F[rows], h)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", MatrixRankWarning)  # a singular pair gets NaN and stalls
                step = -spsolve(J, R[rows].ravel()).reshape(R[rows].shape)
            small = np.abs(step).max(axis=(1, 2)) <= 1e-10 * (1 + np.abs(U[rows]).max(axis=(1, 2)))
            stalled = self._relax_line_search(U, R, slope, F, norm, rows, step, small, h)
            solved[rows[small]] = True
            active[rows[small]] = False
            active[stalled] = False  # left to shooting from where it got
        w0 = (-3 * U[:, 0] + 4 * U[:, 1] - U[:, 2]) / (2 * h)
        return c.slope(x0.T).T * w0, solved

    def _relax_line_search(self, U, R, slope, F, norm, rows, step, small, h) -> np.ndarray:
        """Damped Newton step on the nodes of `rows` (state updated in place); returns the rows that
        found no sufficient decrease in MAX_HALVINGS halvings."""
        lam, pending = np.ones(rows.size), np.arange(rows.size)
        for _ in range(MAX_HALVINGS):
            trial = U[rows[pending]].copy()
            trial[:, 1:-1] += lam[pending, None, None] * step[pending]
            R_t, _, slope_t, F_t = self._relax_residual(trial, h)
            norm_t = _row_norm(R_t)
            better = (norm_t < (1 - 1e-4 * lam[pending]) * norm[rows[pending]]) | (
                small[pending] & np.isfinite(norm_t)
            )
            take = rows[pending[better]]
            U[take], R[take], slope[take], F[take], norm[take] = (
                trial[better], R_t[better], slope_t[better], F_t[better], norm_t[better])
            pending = pending[~better]
            lam[pending] /= 2
            if pending.size == 0:
                break
        return rows[pending]

    # -- 2. polish: shooting ----------------------------------------------------------------------
    def shoot(self, x0, v, radius) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ξ(1), ∂ξ(1)/∂v, ok) for each row of x0, v; ∂ξ(1)/∂v by forward differences (n perturbed
        trajectories beside each row, on its step sequence). ok is False where a trajectory left the domain
        or `radius`, or
        needed more than MAX_STEPS steps."""
        batch, n = x0.shape
        dv = FD_STEP * (1 + np.abs(v).max(axis=1))
        velocities = np.concatenate([v[:, None, :], v[:, None, :] + dv[:, None, None] * np.eye(n)], axis=1)
        z0 = np.concatenate([np.repeat(x0[:, None, :], n + 1, axis=1), velocities], axis=2).reshape(-1, 2 * n)

        def valid(z):
            return self.inside(z[:, :n]) & (np.abs(z[:, :n]).max(axis=1) < radius)

        end, ok = integrate_rows(self._rhs.rows, z0, rtol=self.rtol, atol=self.atol,
                                 max_steps=MAX_STEPS, valid=valid, group=n + 1)
        end = end.reshape(batch, n + 1, 2 * n)[..., :n]
        ok = ok.reshape(batch, n + 1).all(axis=1)
        jacobian = np.swapaxes(end[:, 1:] - end[:, :1], 1, 2) / dv[:, None, None]
        return end[:, 0], jacobian, ok

    def log(self, x0, x1, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Initial velocities v with exp(x0, v) = x1 for each row: (v, residual, converged)."""
        x0, x1 = np.asarray(x0, dtype=float), np.asarray(x1, dtype=float)
        coarse, _ = self.start(x0, x1, RELAX_INTERVALS // 2)
        fine, _ = self.start(x0, x1, RELAX_INTERVALS)
        v = (4 * fine - coarse) / 3  # Richardson: the O(h²) error terms cancel
        scale = 1 + np.abs(x1).max(axis=1)
        radius = FAR * max(scale.max(), 1 + np.abs(x0).max())
        v = np.where(np.isfinite(v), v, x1 - x0)
        v[np.all(x0 == x1, axis=1)] = 0.0  # exactly: the geodesic stays put, the distance is 0
        end, phi, ok = self.shoot(x0, v, radius)
        residual = np.where(ok, np.abs(end - x1).max(axis=1), np.inf)
        active = ok & (residual > tol * scale)
        for _ in range(MAX_ITERATIONS):
            rows = np.flatnonzero(active)
            if rows.size == 0:
                break
            with np.errstate(all="ignore"):
                step = np.linalg.solve(phi[rows], (x1[rows] - end[rows])[..., None])[..., 0]
            stalled = self._line_search(x0, x1, v, residual, end, phi, rows, step, radius)
            active[stalled] = False
            active &= residual > tol * scale
        return v, residual, residual <= tol * scale

    def _line_search(self, x0, x1, v, residual, end, phi, rows, step, radius) -> np.ndarray:
        """Damped Newton step for `rows`, updating v, residual, end, phi in place; returns the rows that
        found no decrease in MAX_HALVINGS halvings."""
        for _ in range(MAX_HALVINGS):
            finite = np.all(np.isfinite(step), axis=1)
            trial = v[rows] + np.where(finite[:, None], step, 0.0)
            end_t, phi_t, ok = self.shoot(x0[rows], trial, radius)
            res_t = np.where(ok & finite, np.abs(end_t - x1[rows]).max(axis=1), np.inf)
            better = res_t < residual[rows]
            taken = rows[better]
            v[taken], residual[taken], end[taken], phi[taken] = (
                trial[better],
                res_t[better],
                end_t[better],
                phi_t[better],
            )
            rows, step = rows[~better], step[~better] / 2
            if rows.size == 0:
                break
        return rows


def _row_norm(R) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        norm = np.abs(R).max(axis=tuple(range(1, R.ndim)))
    return np.where(np.isfinite(norm), norm, np.inf)


def distances(compiled: CompiledFamily, x0, x1, tol: float = 1e-10, rtol: float = RTOL) -> np.ndarray:
    """Fisher–Rao distances between the rows of x0 and x1 ((B, n) arrays, or (n,) for one pair):
    the family's closed form where it has one, quadrature for one parameter, else batched shooting with
    the one-pair solver for any pair the batch does not converge. `rtol` (= atol) is the integrator's
    tolerance; `tol` the endpoint residual, relative to 1 + |x1|, that counts as converged."""
    x0, x1 = np.atleast_2d(np.asarray(x0, dtype=float)), np.atleast_2d(np.asarray(x1, dtype=float))
    if x0.shape != x1.shape or x0.shape[1] != compiled.n:
        raise InvalidArgumentError(
            f"x0 and x1 must both be (B, {compiled.n}) arrays of {compiled.family.name} "
            f"parameters ({', '.join(map(str, compiled.params))}); got {x0.shape} and {x1.shape}"
        )
    compiled.check(*x0.T)
    compiled.check(*x1.T)
    form = closed_form(compiled)
    if form is not None:
        return np.asarray(form(*x0.T, *x1.T), dtype=float).reshape(len(x0))
    if compiled.n == 1:
        return np.array([distance(compiled, a, b).value for a, b in zip(x0, x1)])
    if len(x0) == 0:
        return np.empty(0)
    v, _, converged = BatchGeodesics(compiled, rtol=rtol, atol=rtol).log(x0, x1, tol)
    g = compiled.fisher(*x0.T)
    out = np.sqrt(np.einsum("bi,bij,bj->b", v, g, v))
    for i in np.flatnonzero(~converged):
        try:
            out[i] = distance(compiled, x0[i], x1[i], method="shooting").value
        except GeodesicError as exc:
            raise GeodesicError(f"pair {i} of {len(x0)}: {exc}") from None
    return out
