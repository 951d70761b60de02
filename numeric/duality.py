"""θ(η) numerically, where SymPy cannot invert η = ∇A(θ) (gamma, beta, Dirichlet, ...).

Newton's method on the convex function f(θ) = A(θ) − θ·η, whose gradient is ∇A − η and whose
Hessian is the Fisher metric in θ; steps are halved until f decreases and θ stays in the natural
parameter space (A finite). All functions are generated from the family's symbolic A, η and g.
"""
from __future__ import annotations

import numpy as np

from symgeo import Geometry, SymgeoError, duality

from .codegen import as_array, numpy_function


class NaturalFromExpectation:
    """Callable η ↦ θ(η) for an exponential family, by damped Newton on A."""

    def __init__(self, geo: Geometry):
        natural = duality.in_chart(geo, duality.natural_chart(geo))
        ef = natural.exponential_family
        theta = natural.params
        self.params = theta
        self._a = numpy_function(theta, ef.log_partition_of_params)
        self._eta = numpy_function(theta, list(natural.expectation_params))
        self._fisher = numpy_function(theta, natural.fisher)
        self._start = np.array([float(natural.family.sample_point()[t]) for t in theta])
        domains = [natural.family.domains[t] for t in theta]
        self._lo = np.array([float(d.inf) for d in domains])
        self._hi = np.array([float(d.sup) for d in domains])

    def _objective(self, theta, eta):
        if np.any(theta <= self._lo) or np.any(theta >= self._hi):
            return np.inf  # special functions extend past the domain (gammaln(-0.5) is finite)
        with np.errstate(all="ignore"):
            value = float(self._a(*theta)) - float(theta @ eta)
        return value if np.isfinite(value) else np.inf

    def _gradient(self, theta, eta):
        return as_array(self._eta(*theta)).ravel() - eta

    def _line_search(self, theta, step, f, grad, eta):
        """Halve until f decreases; where f is flat to round-off, a smaller gradient decides."""
        t = 1.0
        while t > 1e-12:
            candidate = theta - t * step
            f_new = self._objective(candidate, eta)
            if f_new <= f:
                return candidate, f_new
            if f_new - f <= 1e-12 * max(1.0, abs(f)) and (
                    np.max(np.abs(self._gradient(candidate, eta))) < np.max(np.abs(grad))):
                return candidate, f_new
            t /= 2
        return None

    def __call__(self, eta, theta0=None, tol: float = 1e-13, max_iter: int = 200) -> np.ndarray:
        eta = as_array(eta)
        theta = self._start.copy() if theta0 is None else as_array(theta0).copy()
        f = self._objective(theta, eta)
        if not np.isfinite(f):
            raise SymgeoError(f"starting point {theta} is outside the natural parameter space")
        for _ in range(max_iter):
            grad = self._gradient(theta, eta)
            if np.max(np.abs(grad)) <= tol * max(1.0, np.max(np.abs(eta))):
                return theta
            step = np.linalg.solve(as_array(self._fisher(*theta)), grad)
            if np.max(np.abs(step)) <= 4 * np.finfo(float).eps * max(1.0, np.max(np.abs(theta))):
                break  # converged to round-off
            accepted = self._line_search(theta, step, f, grad, eta)
            if accepted is None:
                break
            theta, f = accepted
        residual = np.max(np.abs(as_array(self._eta(*theta)).ravel() - eta))
        if residual > 1e-8 * max(1.0, np.max(np.abs(eta))):
            raise SymgeoError(f"Newton on A did not converge (residual {residual:.2e}); is η = {eta} "
                              f"inside the expectation domain (the interior of the convex hull of T)?")
        return theta
