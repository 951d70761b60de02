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
0.5411369318
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy as sp
from scipy.integrate import IntegrationWarning, quad, solve_bvp, solve_ivp

from symgeo import SymgeoError
from symgeo.distance import closed_form_distance
from symgeo.errors import InvalidArgumentError, NumericalError
from symgeo.evaluate import precise_function, value_at

from .compiled import CompiledFamily

RTOL = ATOL = 1e-12
FAR = 1e3  # a shooting trial that runs this many times past both endpoints is abandoned
MAX_EVALUATIONS = 6_000  # right-hand sides per integration before a trial counts as runaway
MAX_HALVINGS = 12


class _Runaway(Exception):
    pass


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
            raise InvalidArgumentError(
                "Geodesics integrates with scipy: compile the family with backend='numpy' "
                "(exp_map_torch integrates batches in torch)"
            )
        self.compiled = compiled
        self.n = compiled.n
        self._rhs = compiled.geodesic_rhs(alpha).generated
        self._jac = compiled.geodesic_jacobian(alpha).generated
        self._margins = compiled.domain_margins
        self.rtol, self.atol = rtol, atol

    # -- exponential map -------------------------------------------------------------------------
    def _events(self):
        count, raw = len(self._margins.exprs), self._margins.fn

        def event(i):
            def margin(_t, z):
                return float(raw(*z[:self.n])[i])
            margin.terminal = True
            margin.direction = -1
            return margin
        return [event(i) for i in range(count)]

    def _integrate(self, x0, v0, t_end, variational: bool, t_eval=None, radius=np.inf):
        """Integrate (with Φ when `variational`); stops at the domain boundary, beyond `radius` in any
        coordinate, or after MAX_EVALUATIONS right-hand sides (a runaway trial, not a wanted geodesic).
        Returns (solution or None, whether t_end was reached inside the domain)."""
        n = self.n
        raw_rhs, raw_jac = self._rhs.scalar, self._jac.scalar  # scalar calls: skip the batching wrapper
        budget = [MAX_EVALUATIONS]

        def rhs(t, z):
            budget[0] -= 1
            if budget[0] < 0:
                raise _Runaway(t, z[:n])
            return np.array(raw_rhs(*z[:2 * n]), dtype=float)

        def rhs_variational(t, z):
            phi = z[2 * n:].reshape(2 * n, n)
            jac = np.array(raw_jac(*z[:2 * n]), dtype=float).reshape(2 * n, 2 * n)
            return np.concatenate([rhs(t, z), (jac @ phi).ravel()])

        def far(_t, z):
            return radius - np.abs(z[:n]).max()
        far.terminal, far.direction = True, -1

        z0 = np.concatenate([x0, v0])
        if variational:
            z0 = np.concatenate([z0, np.vstack([np.zeros((n, n)), np.eye(n)]).ravel()])
        try:
            with np.errstate(all="ignore"):
                sol = solve_ivp(rhs_variational if variational else rhs, (0.0, t_end), z0, method="DOP853",
                                rtol=self.rtol, atol=self.atol, events=self._events() + [far], t_eval=t_eval)
        except _Runaway as stop:
            return stop, False
        inside = sol.status == 0 and np.all(np.isfinite(sol.y[:, -1]))
        return sol, inside

    def exp(self, x0, v0, t: float = 1.0) -> np.ndarray:
        """The point reached at time t from x0 with initial velocity v0."""
        x0, v0 = self._point(x0), np.asarray(v0, dtype=float)
        sol, inside = self._integrate(x0, v0, t, variational=False)
        if not inside:
            raise GeodesicError(_stopped(sol, t))
        return sol.y[:self.n, -1]

    def path(self, x0, v0, times) -> np.ndarray:
        """Points at the given times (shape (len(times), n)), e.g. to draw the geodesic."""
        x0, times = self._point(x0), np.asarray(times, dtype=float)
        sol, inside = self._integrate(x0, np.asarray(v0, dtype=float), times[-1], False, t_eval=times)
        if not inside:
            raise GeodesicError(_stopped(sol, times[-1]))
        return sol.y[:self.n].T

    # -- logarithm map: shooting -----------------------------------------------------------------
    def log(self, x0, x1, tol: float = 1e-11, max_iter: int = 60) -> Shot:
        """The initial velocity of the geodesic from x0 reaching x1 at t = 1.

        Start: a loose collocation solution (scipy's solve_bvp) from a guess path that is straight in
        log-coordinates for positive parameters; polish: damped Newton with the variational Jacobian.
        Fallbacks: Newton from the guess path's velocity, then continuation along the segment."""
        x0, x1 = self._point(x0), self._point(x1)
        target = tol * (1 + np.abs(x1).max())
        coords = _Unbounded(self.compiled)
        segment = coords.velocity(x0, coords.to_u(x1) - coords.to_u(x0))
        attempts = (lambda: self._newton(x0, x1, self._collocation_velocity(x0, x1, coords), tol, max_iter),
                    lambda: self._newton(x0, x1, segment, tol, max_iter),
                    lambda: self._continuation(x0, x1, 4, tol, max_iter),
                    lambda: self._continuation(x0, x1, 16, tol, max_iter))
        best = Shot(x1 - x0, np.inf, 0)
        for attempt in attempts:
            shot = attempt()
            best = shot if shot.residual < best.residual else best
            if best.residual <= target:
                return best
        raise GeodesicError(f"shooting did not converge between {x0.tolist()} and {x1.tolist()}: "
                            f"endpoint residual {best.residual:.3e} after {best.iterations} Newton steps "
                            f"(are the points far apart or near the domain boundary?)")

    def _collocation_velocity(self, x0, x1, coords: _Unbounded) -> np.ndarray:
        """v(0) of a loose collocation solution of the BVP, solved in unbounded coordinates u (log for
        positive, logit for unit-interval parameters) from the straight segment in u."""
        n, times = self.n, np.linspace(0.0, 1.0, 41)
        u0, u1 = coords.to_u(x0), coords.to_u(x1)

        def fun(_t, y):
            u, w = y[:n], y[n:]
            xi = coords.from_u(u)
            # iterates may leave a constrained domain; NaN there (scipy's ψ⁽ⁿ⁾(x) is O(|x|) for x < 0)
            inside = np.all(self._margins(*xi) > 0, axis=-1)
            xi = np.where(inside, xi, np.nan)
            slope, curve = coords.slope(xi), coords.curvature(xi)
            accel = self._rhs(*xi, *(slope * w)).T[n:]
            return np.vstack([w, (accel - curve * w ** 2) / slope])

        def boundary(ya, yb):
            return np.concatenate([ya[:n] - u0, yb[:n] - u1])

        guess = np.vstack(
            [u0[:, None] + (u1 - u0)[:, None] * times, np.repeat((u1 - u0)[:, None], times.size, 1)]
        )
        with np.errstate(all="ignore"):
            sol = solve_bvp(fun, boundary, times, guess, tol=1e-6, max_nodes=20_000)
        start = coords.velocity(x0, sol.y[n:, 0])
        return start if sol.success and np.all(np.isfinite(start)) else coords.velocity(x0, u1 - u0)

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

    def _shoot(self, x0, v, radius):
        """(ξ(1), ∂ξ(1)/∂v) of the geodesic from x0 with velocity v, or (None, None) if it stops early."""
        sol, inside = self._integrate(x0, v, 1.0, variational=True, radius=radius)
        if not inside:  # includes a runaway trial
            return None, None
        end = sol.y[:, -1]
        return end[:self.n], end[2 * self.n:].reshape(2 * self.n, self.n)[:self.n]

    def _newton(self, x0, x1, v, tol, max_iter) -> Shot:
        """Damped Newton on v ↦ ξ(1) − x1 with the variational Jacobian."""
        scale = 1 + np.abs(x1).max()
        radius = FAR * max(scale, 1 + np.abs(x0).max())
        end, phi = self._shoot(x0, v, radius)
        shrink = 0
        while end is None and shrink < 20:  # the first guess left the domain or ran away: shorten it
            v, shrink = v / 2, shrink + 1
            end, phi = self._shoot(x0, v, radius)
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
            for _ in range(MAX_HALVINGS):
                trial = v + step
                end_t, phi_t = self._shoot(x0, trial, radius)
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
            raise InvalidArgumentError(f"a point of {self.compiled.family.name} has {self.n} coordinates "
                             f"({', '.join(map(str, self.compiled.params))}), got {x.shape[0]}")
        self.compiled.check(*x)
        return x


class _Unbounded:
    """Coordinates u with ξ = f(u) unbounded: log for (0, ∞), logit for (0, 1), identity otherwise.
    ξ' = f'(u) u', ξ'' = f'(u) u'' + f''(u) u'²."""

    def __init__(self, compiled: CompiledFamily):
        domains = [compiled.family.domains[p] for p in compiled.params]
        self.log = np.array([d.inf == 0 and d.sup == np.inf for d in domains])[:, None]
        self.logit = np.array([d.inf == 0 and d.sup == 1 for d in domains])[:, None]

    def _col(self, x):
        return np.asarray(x, dtype=float).reshape(self.log.shape[0], -1)

    def to_u(self, x):
        x = self._col(x)
        with np.errstate(all="ignore"):
            return np.where(self.log, np.log(x), np.where(self.logit, np.log(x / (1 - x)), x)).reshape(-1)

    def from_u(self, u):
        with np.errstate(all="ignore"):
            return np.where(self.log, np.exp(u), np.where(self.logit, 1 / (1 + np.exp(-u)), u))

    def slope(self, x):
        return np.where(self.log, x, np.where(self.logit, x * (1 - x), 1.0))

    def curvature(self, x):
        return np.where(self.log, x, np.where(self.logit, x * (1 - x) * (1 - 2 * x), 0.0))

    def velocity(self, x, w):
        """ξ' at ξ = x for u' = w."""
        return (self.slope(self._col(x)) * self._col(w)).reshape(-1)


def _stopped(sol, t_end) -> str:
    if isinstance(sol, _Runaway):
        t, point = sol.args
        return (f"the geodesic ODE needed more than {MAX_EVALUATIONS} evaluations by t = {t:.6g} < {t_end}, "
                f"near {np.round(point, 6).tolist()}: it runs away or into the domain's boundary")
    return f"the geodesic leaves the parameter domain at t = {sol.t[-1]:.6g} < {t_end}"


def distance(compiled: CompiledFamily, x0, x1, method: str = "auto", **shooting) -> Distance:
    """Fisher–Rao distance between two parameter points (sequences in parameter order).

    method: "auto" (closed form, else quadrature for one parameter, else shooting), "closed",
    "quadrature" (one parameter) or "shooting"."""
    geo = Geodesics(compiled)
    x0, x1 = geo._point(x0), geo._point(x1)
    if method in ("auto", "closed"):
        form = closed_form(compiled)
        if form is not None:
            value = _closed_value(form, x0, x1)
            if np.isfinite(value):
                return Distance(value, f"closed form ({form.source})")
            if method == "closed":
                raise NumericalError(f"the closed-form distance of {compiled.family.name} is {value} between "
                                     f"{x0.tolist()} and {x1.tolist()} in floating point; use --method auto")
        if method == "closed":
            raise SymgeoError(f"no closed-form Fisher–Rao distance is known for {compiled.family.name}")
    if method == "quadrature" or (method == "auto" and compiled.n == 1):
        return _quadrature(compiled, x0, x1)
    if method not in ("auto", "shooting"):
        raise InvalidArgumentError(f"unknown method {method!r}: auto, closed, quadrature or shooting")
    shot = geo.log(x0, x1, **shooting)
    g = compiled.fisher(*x0)
    value = float(np.sqrt(shot.velocity @ g @ shot.velocity))
    if not np.isfinite(value):
        raise NumericalError(f"the shooting distance between {x0.tolist()} and {x1.tolist()} is {value}")
    return Distance(value, "shooting", shot.residual, shot.iterations, shot.velocity)


def closed_form(compiled: CompiledFamily):
    """The generated closed-form distance of the family (arguments ξ₁..., ξ₂...), or None."""
    def build():
        form = closed_form_distance(compiled.geometry)
        if form is None:
            return None
        fn = compiled.function(form.first + form.second, form.expr, slots=(0, compiled.n))
        fn.source = form.source
        return fn
    return compiled.extension("geodesic.closed_form", build)


def _closed_value(form, x0, x1) -> float:
    """The closed form at two points; where floating point overflows inside it ((Δμ)² at μ = 1e200) though
    the distance itself is a modest number, the formula at a working precision (symgeo.evaluate)."""
    with np.errstate(all="ignore"):
        value = float(form(*x0, *x1))
    if np.isfinite(value):
        return value
    point = dict(zip(form.args, [float(v) for v in (*x0, *x1)]))
    if not sp.sympify(form.exprs).free_symbols <= point.keys():
        return value
    try:
        return value_at(form.exprs, point)
    except NumericalError:
        return value


def _quadrature(compiled: CompiledFamily, x0, x1) -> Distance:
    if compiled.n != 1:
        raise InvalidArgumentError("quadrature of √g gives the distance of one-parameter families only")
    fisher = compiled.fisher.generated
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        value, error = quad(lambda t: np.sqrt(fisher(t)[0, 0]), x0[0], x1[0], epsabs=0, epsrel=1e-13,
                            limit=200)
    if np.isfinite(value) and np.isfinite(error) and error <= 1e-6 * max(abs(value), 1e-300):
        return Distance(abs(value), "quadrature of √g", residual=float(error))
    return _precise_quadrature(compiled, x0[0], x1[0], f"{value} ± {error}")


def _precise_quadrature(compiled: CompiledFamily, a: float, b: float, float_result: str) -> Distance:
    """∫√g by mpmath with g evaluated at a working precision (symgeo.evaluate): for metrics that floating
    point loses to cancellation or overflow inside the formula (the truncated normal's erf differences far
    from its interval gave NaN, and a negative g)."""
    try:
        g = precise_function(sp.sympify(compiled.fisher.exprs)[0, 0], compiled.params)
        value, error = mpmath.quad(lambda t: mpmath.sqrt(g(float(t))), [a, b], error=True)
    except (NumericalError, ValueError, ZeroDivisionError) as exc:
        raise NumericalError(f"quadrature of √g between {a} and {b} gives {float_result} in floating point, "
                             f"and at a working precision: {exc}") from exc
    value, error = float(mpmath.re(value)), float(error)
    if not (np.isfinite(value) and error <= 1e-8 * max(abs(value), 1e-300)):
        raise NumericalError(f"quadrature of √g between {a} and {b} gives {float_result} in floating point "
                             f"and {value} ± {error} at a working precision")
    return Distance(abs(value), "quadrature of √g at a working precision", residual=error)


def exp_map_torch(compiled: CompiledFamily, x0, v0, steps: int = 64, t: float = 1.0):
    """Batched exponential map in torch (classical RK4, `steps` fixed steps): x0, v0 of shape (B, n).

    Runs on the inputs' device and is differentiable; for reference accuracy use Geodesics.exp."""
    if compiled.backend != "torch":
        raise InvalidArgumentError("exp_map_torch needs a family compiled with backend='torch'")
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
