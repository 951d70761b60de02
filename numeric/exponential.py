"""An exponential family's dual maps, batched over K members: the numeric side of e/m-projections.

log p(x | θ) = θ·T(x) − A(θ) + log h(x). A member is stored by its natural parameters θ (a row of a
(K, m) array); `m_projection` maps moments η = E[T] back to θ. Every map is generated from the
family's symbolic declaration (`ExponentialMaps`), except for the d-dimensional normal, whose θ ↔ η maps
are matrix algebra (`GaussianMaps`, Cholesky): SymPy cannot invert a symbolic 10×10 covariance, so those
maps are written with numpy and tested against the generated maps of `multivariate_normal:d=2, 3`.

>>> maps = maps_for("poisson")
>>> maps.params(maps.m_projection(np.array([[2.5]]))).tolist()
[[2.5]]
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from symgeo import DomainError, Geometry, SymgeoError, catalog, duality
from symgeo.duality import InversionUnavailable
from symgeo.errors import InvalidArgumentError
from symgeo.load import load_family
from symgeo.support import Box, FinitePoints, Integers, Simplex

from .codegen import as_array, numpy_function
from .compiled import DomainCheck
from .duality import NaturalFromExpectation


class DegenerateMoments(SymgeoError):
    """η lies on (or past) the boundary of the expectation domain: no θ(η) exists there."""


class ExponentialMaps:
    """T, log h, A(θ), θ(η) and the chart maps of one exponential family, generated from its declaration."""

    def __init__(self, geometry: Geometry):
        ef = geometry.exponential_family
        if ef is None:
            raise SymgeoError(
                f"{geometry.family.name} is not an exponential family: EM here needs T(x) and A(θ)"
            )
        self.geometry = geometry
        self.family = geometry.family
        self.name = self.family.name
        unbound = sorted(name for name, s in self.family.fixed.items() if isinstance(s, sp.Symbol))
        if unbound:
            raise SymgeoError(f"{self.name}: give a value to its fixed symbol(s) {', '.join(unbound)}, e.g. "
                              f"'{self.name}:{unbound[0]}=1'")
        self.param_names = tuple(map(str, self.family.params))
        self.n_variables = len(self.family.variables)
        natural = duality.in_chart(geometry, duality.natural_chart(geometry))
        theta = natural.family.params
        self.m = len(theta)
        self._stats = numpy_function(self.family.variables, list(ef.stats))
        self._log_base = numpy_function(self.family.variables, ef.log_base_measure)
        self._log_partition = numpy_function(theta, natural.exponential_family.log_partition_of_params)
        self._natural = numpy_function(self.family.params, list(ef.natural_of_params))
        chart = dict(duality.natural_chart(geometry).old_in_new)
        self._params = numpy_function(theta, [chart[p] for p in self.family.params])
        self._check = DomainCheck(self.family, "numpy", {})
        self._theta_of_eta = _closed_form_inverse(geometry)
        self._natural_geometry = natural
        self._newton = None if self._theta_of_eta is not None else NaturalFromExpectation(geometry)

    def statistics(self, x) -> np.ndarray:
        """T(x) as (N, m); ValueError for points outside the support."""
        require_support(self.family, x)
        return _rows(self._stats(*_columns(x, self.n_variables)), len(x), self.m)

    def log_base(self, x) -> np.ndarray:
        return np.broadcast_to(as_array(self._log_base(*_columns(x, self.n_variables))), (len(x),))

    def log_partition(self, theta) -> np.ndarray:
        theta = np.atleast_2d(theta)
        return np.broadcast_to(as_array(self._log_partition(*theta.T)), (len(theta),))

    def natural(self, params) -> np.ndarray:
        """θ of (K, n) parameters in the family's chart (domain-checked)."""
        params = np.atleast_2d(as_array(params))
        self._check(tuple(params.T))
        return _rows(self._natural(*params.T), len(params), self.m)

    def params(self, theta) -> np.ndarray:
        theta = np.atleast_2d(theta)
        return _rows(self._params(*theta.T), len(theta), len(self.param_names))

    def expectation(self, theta) -> np.ndarray:
        """η = ∇A(θ) of each row (generated on first use)."""
        if not hasattr(self, "_eta"):
            self._eta = numpy_function(self._natural_geometry.family.params,
                                       list(self._natural_geometry.expectation_params))
        theta = np.atleast_2d(theta)
        return _rows(self._eta(*theta.T), len(theta), self.m)

    def m_projection(self, eta, previous=None) -> np.ndarray:
        """θ(η) for each row of η; DegenerateMoments where η has no preimage."""
        eta = np.atleast_2d(eta)
        if self._theta_of_eta is not None:
            with np.errstate(all="ignore"):
                theta = _rows(self._theta_of_eta(*eta.T), len(eta), self.m)
        else:
            theta = np.array([self._newton_row(e, None if previous is None else previous[k])
                              for k, e in enumerate(eta)])
        self._require_valid(theta, eta)
        return theta

    def _newton_row(self, eta, start):
        try:
            return self._newton(eta, start)
        except SymgeoError:
            if start is None:
                raise DegenerateMoments(
                    f"{self.name}: no natural parameters with moments η = {eta}"
                ) from None
            return self._newton_row(eta, None)

    def _require_valid(self, theta, eta) -> None:
        try:
            if not np.all(np.isfinite(theta)):
                raise DomainError("non-finite θ")
            with np.errstate(all="ignore"):  # NaN parameters are reported by the check
                params = self.params(theta)
            self._check(tuple(params.T))
        except DomainError:
            raise DegenerateMoments(f"{self.name}: moments η = {eta.tolist()} lie on the boundary of the "
                                    "expectation domain (a degenerate component)") from None


def _closed_form_inverse(geometry: Geometry):
    try:
        inverse = duality.natural_from_expectation(geometry)
    except InversionUnavailable:
        return None
    chart = duality.expectation_chart(geometry)
    return numpy_function(
        chart.params, [inverse[t] for t in duality.natural_symbols(geometry.exponential_family)]
    )


class GaussianMaps:
    """The d-dimensional normal with full covariance, in the catalog's `multivariate_normal:d` convention:
    T = (x, x_i x_j for i ≤ j), θ = (Σ⁻¹μ, −½ Σ⁻¹_ii, −Σ⁻¹_ij for i < j), params = (μ, Σ_ij for i ≤ j).

    `reg_covar` is added to the diagonal of every fitted covariance (a floor against collapse, as in
    scikit-learn's GaussianMixture)."""

    def __init__(self, d: int, reg_covar: float = 1e-6):
        if d < 1:
            raise InvalidArgumentError(f"dimension must be at least 1, not {d}")
        if reg_covar < 0:
            raise InvalidArgumentError(f"reg_covar must be non-negative, not {reg_covar}")
        self.d = d
        self.reg_covar = reg_covar
        self.name = f"multivariate_normal:d={d}"
        self.iu = np.triu_indices(d)
        self.m = d + len(self.iu[0])
        self.n_variables = d
        self.param_names = tuple(f"mu{i + 1}" for i in range(d)) + tuple(
            f"s{i + 1}{j + 1}" for i, j in zip(*self.iu))
        self._off = self.iu[0] != self.iu[1]

    def statistics(self, x) -> np.ndarray:
        x = _matrix(x, self.d)
        return np.concatenate([x, x[:, self.iu[0]] * x[:, self.iu[1]]], axis=1)

    def statistics_columns(self, columns, out) -> np.ndarray:
        """T(x)ᵀ of the points given as columns (d, rows), written into `out` (m, rows): row by row in
        place, each product x_i x_{i:} one contiguous vector operation (a mixture's E-step builds its chunk
        of T here, in cache, rather than reading a stored T of m columns from memory each pass)."""
        out[:self.d] = columns
        row = self.d
        for i in range(self.d):
            np.multiply(columns[i], columns[i:], out=out[row:row + self.d - i])
            row += self.d - i
        return out

    def log_base(self, x) -> np.ndarray:
        return np.full(len(x), -0.5 * self.d * np.log(2 * np.pi))

    def log_partition(self, theta) -> np.ndarray:
        mean, cov = self.mean_cov(theta)
        chol = np.linalg.cholesky(cov)
        return 0.5 * np.einsum("ki,ki->k", mean, np.linalg.solve(cov, mean[..., None])[..., 0]) + np.log(
            np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)

    def natural(self, params) -> np.ndarray:
        params = np.atleast_2d(as_array(params))
        mean, cov = params[:, :self.d], self._symmetric(params[:, self.d:])
        return self._theta(mean, cov)

    def params(self, theta) -> np.ndarray:
        mean, cov = self.mean_cov(theta)
        return np.concatenate([mean, cov[:, self.iu[0], self.iu[1]]], axis=1)

    def mean_cov(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """(K, d) means and (K, d, d) covariances of natural parameters θ."""
        theta = np.atleast_2d(theta)
        upper = theta[:, self.d:].copy()
        upper[:, self._off] /= 2
        precision = -2 * self._symmetric(upper)
        cov = np.linalg.inv(precision)
        return np.einsum("kij,kj->ki", cov, theta[:, :self.d]), cov

    def m_projection(self, eta, previous=None) -> np.ndarray:
        eta = np.atleast_2d(eta)
        mean = eta[:, :self.d]
        cov = self._symmetric(eta[:, self.d:]) - mean[:, :, None] * mean[:, None, :]
        cov[:, np.arange(self.d), np.arange(self.d)] += self.reg_covar
        return self._theta(mean, cov)

    def _theta(self, mean, cov) -> np.ndarray:
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise DegenerateMoments(f"{self.name}: a covariance is not positive definite (a degenerate "
                                    "component); raise reg_covar") from None
        eye = np.broadcast_to(np.eye(self.d), cov.shape)
        inv_chol = np.linalg.solve(chol, eye)
        precision = np.einsum("kji,kjl->kil", inv_chol, inv_chol)
        upper = -precision[:, self.iu[0], self.iu[1]]
        upper[:, ~self._off] /= 2
        return np.concatenate([np.einsum("kij,kj->ki", precision, mean), upper], axis=1)

    def _symmetric(self, upper) -> np.ndarray:
        out = np.zeros((len(upper), self.d, self.d))
        out[:, self.iu[0], self.iu[1]] = upper
        out[:, self.iu[1], self.iu[0]] = upper
        return out


def maps_for(family, fixed: dict | None = None, reg_covar: float = 1e-6):
    """Batched dual maps: a catalog name, a spec path, a Family or a Geometry. `multivariate_normal:d=N`
    (any N) gets the matrix-algebra maps; every other exponential family gets generated ones."""
    if isinstance(family, str):
        name, options = (None, {}) if family.endswith(".toml") else catalog.parse_name(family)
        if name == "multivariate_normal":  # any d: matrix algebra, no symbolic family of that size needed
            return GaussianMaps(options.get("d", 2), reg_covar)
        family = load_family(family)
    if fixed:
        raise SymgeoError("fixed values: declare the family with them (e.g. 'binomial:n=10')")
    return ExponentialMaps(family if isinstance(family, Geometry) else Geometry(family))


def require_support(family, x) -> None:
    """InvalidArgumentError naming the first data point outside the family's support."""
    inside = _in_support(family.support, np.asarray(x, dtype=float).reshape(len(x), -1))
    if not np.all(inside):
        bad = np.asarray(x)[np.flatnonzero(~inside)[0]]
        raise InvalidArgumentError(f"{family.name}: data point {bad.tolist()} lies outside the support "
                         f"{family.support.describe()}")


def _in_support(support, x) -> np.ndarray:
    """Mask of the rows of x (N, n_variables) inside the support; bounds that are symbols are not checked."""
    if isinstance(support, Box):
        return np.all([_in_support(iv, x[:, [i]]) for i, iv in enumerate(support.intervals)], axis=0)
    if isinstance(support, FinitePoints):
        points = np.array([[float(v) for v in p] for p in support.points])
        return np.any(np.all(np.abs(x[:, None, :] - points[None]) < 1e-12, axis=2), axis=1)
    if isinstance(support, Simplex):
        return np.all(x > 0, axis=1) & (x.sum(axis=1) < 1)
    inside = np.all(np.isfinite(x), axis=1)
    if support.lo.is_number:
        inside &= np.all(x >= float(support.lo), axis=1)
    if support.hi.is_number:
        inside &= np.all(x <= float(support.hi), axis=1)
    if isinstance(support, Integers):
        inside &= np.all(x == np.round(x), axis=1)
    return inside


def _columns(x, n_variables: int):
    x = np.asarray(x, dtype=float)
    if n_variables == 1:
        return (x.reshape(len(x)),)
    return tuple(_matrix(x, n_variables).T)


def _matrix(x, d: int) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 1 and d == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != d:
        raise InvalidArgumentError(f"data must have shape (N, {d}), not {x.shape}")
    return x


def _rows(value, k: int, m: int) -> np.ndarray:
    """Generated output (K,), (K, m), or constants broadcast, as a (K, m) float array."""
    value = as_array(value)
    if value.ndim == 0:
        value = np.full((k, m), float(value))
    if value.ndim == 1:
        value = value[:, None] if m == 1 and len(value) == k else value[None, :]
    return np.ascontiguousarray(np.broadcast_to(value, (k, m)), dtype=float)
