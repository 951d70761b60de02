"""Samplers of a compiled family at a parameter point: the scipy.stats distribution declared with the
family (catalog families in their default chart), else an inverse CDF tabulated from the generated
density (one variable), or the probability table (counts). Used by `verify`'s Monte Carlo checks and
the mixture estimator's `sample`.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from symgeo.errors import InvalidArgumentError
from symgeo.support import FinitePoints, Integers, Interval

from .compiled import CompiledFamily


def sampler(compiled: CompiledFamily):
    """A function (point, n, rng) -> tuple of variable columns, or None."""
    equivalent = scipy_equivalent(compiled)
    if equivalent is not None:
        return lambda point, n, rng: equivalent(point)[1](n, rng)
    return _tabulated_sampler(compiled)


def scipy_equivalent(compiled: CompiledFamily):
    """point -> (log_density(x columns), sample(n, rng)) from the scipy.stats distribution declared with the
    family (`Family.scipy`), or None. A k-vector distribution of a family with k − 1 variables (categorical
    as a one-hot multinomial, Dirichlet on the simplex) leaves its last component implicit, as the family
    does."""
    fam = compiled.family
    if fam.scipy is None:
        return None
    fixed = {v: compiled.bind(v) for v in fam.fixed.values() if isinstance(v, sp.Symbol)}  # given at compile
    if any(not (v.is_number and v.is_finite) for v in fixed.values()):
        return None

    def build(point):
        dist = fam.scipy.at({**fixed, **dict(zip(fam.params, map(float, point)))})
        return _adapted(dist, len(fam.variables), fam.scipy.components_first)
    return build


def _adapted(dist, n_variables: int, components_first: bool):
    """(log p of variable columns, draw n rows as columns) for a frozen scipy distribution."""
    discrete = hasattr(dist, "pmf") or hasattr(getattr(dist, "dist", None), "pmf")
    log = dist.logpmf if discrete else dist.logpdf
    if n_variables == 1:
        return (lambda cols: log(cols[0])), (lambda n, rng: (dist.rvs(size=n, random_state=rng),))
    mean = dist.mean() if callable(dist.mean) else dist.mean
    width = len(np.atleast_1d(mean))

    def log_density(cols):
        rows = np.vstack(list(cols) + ([1 - sum(cols)] if width == n_variables + 1 else []))
        return log(rows if components_first else rows.T)

    def sample(n, rng):
        rows = np.asarray(dist.rvs(size=n, random_state=rng), dtype=float).reshape(n, width)
        return tuple(rows[:, :n_variables].T)
    return log_density, sample


def _tabulated_sampler(compiled: CompiledFamily):
    """Samples of a one-variable family from its generated density: inverse CDF on a 20 001-point grid
    (continuous, in a variable that maps the support onto (0, 1)), or the probability table (discrete)."""
    fam = compiled.family
    if len(fam.variables) != 1:
        return None
    support = fam.support
    log_density = compiled.log_density.generated
    if isinstance(support, Integers):
        lo, top = int(support.lo), compiled.bind(support.hi)
        top = int(top) if top.is_number and top.is_finite else None
        if top is None and not support.hi.is_infinite:
            return None  # a symbolic upper end without a value

        def sample(point, n, rng):
            xs = np.arange(lo, (top if top is not None else lo + 1_000_000) + 1)
            with np.errstate(all="ignore"):
                p = np.exp(log_density(xs.astype(float), *point))
            p = np.nan_to_num(p)
            return (rng.choice(xs, size=n, p=p / p.sum()).astype(float),)
        return sample
    if isinstance(support, FinitePoints):
        return None
    if not isinstance(support, Interval):
        return None
    lo, hi = (float(b) if b.is_finite else None for b in (support.lo, support.hi))
    to_x, log_jacobian = _line_map(lo, hi)

    def sample(point, n, rng):
        y, cdf = _inverse_cdf_table(lambda y: _log_mass(log_density, to_x, log_jacobian, y, point))
        return (to_x(np.interp(rng.random(n) * cdf[-1], cdf, y)),)
    return sample


FAR = 700.0  # |y| range of the map below: x reaches e^700 (as far as float64 goes)


def _line_map(lo, hi):
    """x(y) from the line onto the support, and log dx/dy: x = lo + e^y on a half-line (so tails as
    heavy as a 0.7-shape Pareto's are sampled out to 1e300, not cut at a grid's end), sinh y on the
    line, a logistic map on a finite interval."""
    if lo is not None and hi is not None:
        return (lambda y: lo + (hi - lo) * _expit(y)), \
            (lambda y: np.log(hi - lo) - np.logaddexp(0, y) - np.logaddexp(0, -y))
    if lo is not None:
        return (lambda y: lo + np.exp(y)), (lambda y: y)
    if hi is not None:
        return (lambda y: hi - np.exp(y)), (lambda y: y)
    return np.sinh, (lambda y: np.log(np.cosh(y)))


def _expit(y):
    return np.exp(-np.logaddexp(0, -y))


def _log_mass(log_density, to_x, log_jacobian, y, point):
    with np.errstate(all="ignore"):
        value = log_density(to_x(y), *point) + log_jacobian(y)
    return np.where(np.isfinite(value), value, -np.inf)


def _inverse_cdf_table(log_mass, coarse: int = 4001, fine: int = 200_001):
    """(y grid, cumulative mass) on the range of y that holds all but 1e-16 of the mass: a coarse pass
    over |y| ≤ FAR finds it, a fine trapezoid pass tabulates it."""
    y = np.linspace(-FAR, FAR, coarse)
    lm = log_mass(y)
    if not np.isfinite(lm).any():
        raise InvalidArgumentError("the density is zero or not finite everywhere at this point")
    weight = np.exp(lm - lm.max())
    cdf = np.cumsum(weight)
    cdf /= cdf[-1]
    first = max(np.searchsorted(cdf, 1e-16) - 2, 0)
    last = min(np.searchsorted(cdf, 1 - 1e-16) + 2, coarse - 1)
    y = np.linspace(y[first], y[last], fine)
    lm = log_mass(y)
    weight = np.exp(lm - lm.max())
    cdf = np.concatenate([[0.0], np.cumsum((weight[1:] + weight[:-1]) / 2 * np.diff(y))])
    return y, cdf
