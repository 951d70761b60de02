"""Geodesics and Fisher–Rao distances, driven by generated code.

- Exponential map: integrate ξ̈^k = −Γ^k_ij ξ̇^i ξ̇^j (scipy's DOP853, rtol = atol = 1e-12); leaving the
  parameter domain stops the integration (an ODE event on each bound and constraint).
- Logarithm map: shooting. Newton on the initial velocity v with the exact Jacobian ∂ξ(1)/∂v from the
  variational equation Φ̇ = J(ξ, ξ̇) Φ (J generated symbolically), damped steps, and continuation along
  the coordinate segment when the direct attempt fails. Not converging raises GeodesicError with the residual.
- Distance: a closed form where symgeo has one (symgeo.distance), else for one parameter the quadrature
  ∫√g dξ, else √(vᵀ g(ξ₀) v) for the shooting velocity v (geodesics have constant speed).

>>> import numeric
>>> round(distance(numeric.compile("gamma"), [2.0, 1.0], [3.0, 0.5]).value, 10)
0.7369916005
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import quad, solve_ivp

from symgeo import Geometry, SymgeoError
from symgeo.distance import closed_form_distance

from .compiled import CompiledFamily

RTOL = ATOL = 1e-12


class GeodesicError(SymgeoError):
    """The geodesic boundary-value problem did not converge; the message gives the residual."""


@dataclass(frozen=True)
class Distance:
    """A Fisher–Rao distance and how it was obtained."""

    value: float
    method: str
    residual: float = 0.0  # endpoint mismatch of the shooting solution (0 for closed forms)
    iterations: int = 0
    velocity: np.ndarray | None = field(default=None, repr=False)  # log map at the start, when shooting

    def __float__(self) -> float:
        return self.value


@dataclass(frozen=True)
class Shot:
    velocity: np.ndarray
    residual: float
    iterations: int


class Geodesics:
    """Exponential and logarithm maps of the α-connection (α = 0: Levi-Civita) of a compiled family."""

    def __init__(self, compiled: CompiledFamily, alpha=0, rtol: float = RTOL, atol: float = ATOL):
        if compiled.backend != "numpy":
            raise ValueError("Geodesics integrates with scipy: compile the family with backend='numpy' "
                             "(exp_map_torch integrates batches in torch)")
        self.compiled = compiled
        self.n = compiled.n
        self._rhs = compiled.geodesic_rhs(alpha).generated
        self._jac = compiled.geodesic_jacobian(alpha).generated
        self._margins = compiled.domain_margins
        self.rtol, self.atol = rtol, atol

    # -- exponential map -------------------------------------------------------------------------
    def _events(self):
        count = len(self._margins.exprs)

        def event(i):
            def margin(_t, z):
                return self._margins(*z[:self.n])[i]
            margin.terminal = True
            margin.direction = -1
            return margin
        return [event(i) for i in range(count)]

    def _integrate(self, x0, v0, t_end, variational: bool, t_eval=None):
        n = self.n

        def rhs(_t, z):
            return self._rhs(*z[:2 * n])

        def rhs_variational(_t, z):
            y, phi = z[:2 * n], z[2 * n:].reshape(2 * n, n)
            return np.concatenate([self._rhs(*y), (self._jac(*y) @ phi).ravel()])

        z0 = np.concatenate([x0, v0])
        if variational:
            z0 = np.concatenate([z0, np.vstack([np.zeros((n, n)), np.eye(n)]).ravel()])
        with np.errstate(all="ignore"):
            sol = solve_ivp(rhs_variational if variational else rhs, (0.0, t_end), z0, method="DOP853",
                            rtol=self.rtol, atol=self.atol, events=self._events(), t_eval=t_eval)
        inside = sol.status == 0 and np.all(np.isfinite(sol.y[:, -1]))
        return sol, inside

    def exp(self, x0, v0, t: float = 1.0) -> np.ndarray:
        """The point reached at time t from x0 with initial velocity v0."""
        x0, v0 = self._point(x0), np.asarray(v0, dtype=float)
        sol, inside = self._integrate(x0, v0, t, variational=False)
        if not inside:
            raise GeodesicError(f"the geodesic leaves the parameter domain at t = {sol.t[-1]:.6g} < {t}")
        return sol.y[:self.n, -1]

    def path(self, x0, v0, times) -> np.ndarray:
        """Points at the given times (shape (len(times), n)), e.g. to draw the geodesic."""
        x0, times = self._point(x0), np.asarray(times, dtype=float)
        sol, inside = self._integrate(x0, np.asarray(v0, dtype=float), times[-1], False, t_eval=times)
        if not inside:
            raise GeodesicError(f"the geodesic leaves the parameter domain at t = {sol.t[-1]:.6g}")
        return sol.y[:self.n].T

    # -- logarithm map: shooting -----------------------------------------------------------------
    def log(self, x0, x1, tol: float = 1e-11, max_iter: int = 60) -> Shot:
        """The initial velocity of the geodesic from x0 reaching x1 at t = 1."""
        x0, x1 = self._point(x0), self._point(x1)
        direct = self._newton(x0, x1, x1 - x0, tol, max_iter)
        if direct.residual <= tol * (1 + np.abs(x1).max()):
            return direct
        best = direct
        for stages in (4, 16, 64):
            shot = self._continuation(x0, x1, stages, tol, max_iter)
            if shot.residual < best.residual:
                best = shot
            if best.residual <= tol * (1 + np.abs(x1).max()):
                return best
        raise GeodesicError(f"shooting did not converge between {x0.tolist()} and {x1.tolist()}: "
                            f"endpoint residual {best.residual:.3e} after {best.iterations} Newton steps "
                            f"(are the points far apart or near the domain boundary?)")

    def _continuation(self, x0, x1, stages, tol, max_iter) -> Shot:
        v, used = (x1 - x0) / stages, 0
        for s in range(1, stages + 1):
            target = x0 + (x1 - x0) * s / stages
            shot = self._newton(x0, target, v * s / max(s - 1, 1) if s > 1 else v, tol, max_iter)
            used += shot.iterations
            if shot.residual > tol * (1 + np.abs(target).max()):
                return Shot(shot.velocity, np.inf if s < stages else shot.residual, used)
            v = shot.velocity
        return Shot(v, shot.residual, used)

    def _shoot(self, x0, v):
        sol, inside = self._integrate(x0, v, 1.0, variational=True)
        if not inside:
            return None, None
        end = sol.y[:, -1]
        return end[:self.n], end[2 * self.n:].reshape(2 * self.n, self.n)[:self.n]

    def _newton(self, x0, x1, v, tol, max_iter) -> Shot:
        scale = 1 + np.abs(x1).max()
        end, phi = self._shoot(x0, v)
        shrink = 0
        while end is None and shrink < 30:  # the first guess left the domain: shorten it
            v, shrink = v / 2, shrink + 1
            end, phi = self._shoot(x0, v)
        if end is None:
            return Shot(v, np.inf, 0)
        residual = np.abs(end - x1).max()
        for iteration in range(1, max_iter + 1):
            if residual <= tol * scale:
                return Shot(v, residual, iteration - 1)
            try:
                step = np.linalg.solve(phi, x1 - end)
            except np.linalg.LinAlgError:
                return Shot(v, residual, iteration)  # conjugate point: ∂ξ(1)/∂v singular
            for _ in range(40):
                trial = v + step
                end_t, phi_t = self._shoot(x0, trial)
                if end_t is not None and np.abs(end_t - x1).max() < residual:
                    break
                step /= 2
            else:
                return Shot(v, residual, iteration)
            v, end, phi, residual = trial, end_t, phi_t, np.abs(end_t - x1).max()
        return Shot(v, residual, max_iter)

    def _point(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(-1)
        if x.shape != (self.n,):
            raise ValueError(f"a point of {self.compiled.family.name} has {self.n} coordinates "
                             f"({', '.join(map(str, self.compiled.params))}), got {x.shape[0]}")
        self.compiled.check(*x)
        return x


def distance(compiled: CompiledFamily, x0, x1, method: str = "auto", **shooting) -> Distance:
    """Fisher–Rao distance between two parameter points (sequences in parameter order).

    method: "auto" (closed form, else quadrature for one parameter, else shooting), "closed",
    "quadrature" (one parameter) or "shooting"."""
    geo = Geodesics(compiled)
    x0, x1 = geo._point(x0), geo._point(x1)
    if method in ("auto", "closed"):
        form = closed_form(compiled)
        if form is not None:
            return Distance(float(form(*x0, *x1)), f"closed form ({form.source})")
        if method == "closed":
            raise SymgeoError(f"no closed-form Fisher–Rao distance is known for {compiled.family.name}")
    if method == "quadrature" or (method == "auto" and compiled.n == 1):
        return _quadrature(compiled, x0, x1)
    if method not in ("auto", "shooting"):
        raise ValueError(f"unknown method {method!r}: auto, closed, quadrature or shooting")
    shot = geo.log(x0, x1, **shooting)
    g = compiled.fisher(*x0)
    value = float(np.sqrt(shot.velocity @ g @ shot.velocity))
    return Distance(value, "shooting", shot.residual, shot.iterations, shot.velocity)


def closed_form(compiled: CompiledFamily):
    """The generated closed-form distance of the family (arguments ξ₁..., ξ₂...), or None."""
    if "_closed_form" not in compiled.__dict__:
        form = closed_form_distance(compiled.geometry)
        fn = None
        if form is not None:
            fn = compiled.function(form.first + form.second, form.expr, slots=(0, compiled.n))
            fn.source = form.source
        compiled.__dict__["_closed_form"] = fn
    return compiled.__dict__["_closed_form"]


def _quadrature(compiled: CompiledFamily, x0, x1) -> Distance:
    if compiled.n != 1:
        raise ValueError("quadrature of √g gives the distance of one-parameter families only")
    fisher = compiled.fisher.generated
    value, error = quad(lambda t: np.sqrt(fisher(t)[0, 0]), x0[0], x1[0], epsabs=0, epsrel=1e-13, limit=200)
    return Distance(abs(value), "quadrature of √g", residual=float(error))


def exp_map_torch(compiled: CompiledFamily, x0, v0, steps: int = 64, t: float = 1.0):
    """Batched exponential map in torch (classical RK4, `steps` fixed steps): x0, v0 of shape (B, n).

    Runs on the inputs' device and is differentiable; for reference accuracy use Geodesics.exp."""
    if compiled.backend != "torch":
        raise ValueError("exp_map_torch needs a family compiled with backend='torch'")
    import torch
    rhs = compiled.geodesic_rhs().generated
    n = compiled.n
    compiled.check(*x0.unbind(-1))
    state, h = torch.cat([x0, v0], dim=-1), t / steps

    def f(z):
        return rhs(*z.unbind(-1))
    for _ in range(steps):
        k1 = f(state)
        k2 = f(state + h / 2 * k1)
        k3 = f(state + h / 2 * k2)
        k4 = f(state + h * k3)
        state = state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return state[..., :n]


def geometry_distance(geo: Geometry, x0, x1) -> Distance:
    """Convenience: distance for a Geometry (compiles it with numpy)."""
    return distance(CompiledFamily(geo), x0, x1)
