"""Samplers of a compiled family at a parameter point: scipy.stats for catalog families in their
default chart, else an inverse CDF tabulated from the generated density (one variable), or the
probability table (counts). Used by `verify`'s Monte Carlo checks and the mixture estimator's `sample`.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from symgeo import catalog
from symgeo.errors import InvalidArgumentError
from symgeo.support import FinitePoints, Integers, Interval

from .compiled import CompiledFamily


def sampler(compiled: CompiledFamily):
    """A function (point, n, rng) -> tuple of variable columns, or None."""
    spec = catalog.spec_of(compiled.family)
    if spec is not None and compiled.family.chart == "default":
        scipy_dist = scipy_equivalent(compiled, spec)
        if scipy_dist is not None:
            return lambda point, n, rng: scipy_dist(point)[1](n, rng)
    return _tabulated_sampler(compiled)


def scipy_equivalent(compiled: CompiledFamily, spec: str):
    """point -> (log_density(x columns), sample(n, rng)) for catalog families in their default chart."""
    import scipy.stats as st
    name, fam = catalog.parse_name(spec)[0], compiled.family
    fixed = {k: float(compiled.bind(v)) if isinstance(v, sp.Basic) else float(v)
             for k, v in fam.fixed.items()}
    if any(not np.isfinite(v) for v in fixed.values()):
        return None
    scalar = {
        "bernoulli": lambda p: st.bernoulli(p),
        "beta": lambda a, b: st.beta(a, b),
        "binomial": lambda p: st.binom(int(fixed["n"]), p),
        "cauchy": lambda x0, g: st.cauchy(x0, g),
        "exponential": lambda lam: st.expon(scale=1 / lam),
        "gamma": lambda k, th: st.gamma(k, scale=th),
        "geometric": lambda p: st.geom(p, loc=-1),
        "inverse_gamma": lambda a, b: st.invgamma(a, scale=b),
        "inverse_gaussian": lambda mu, lam: st.invgauss(mu / lam, scale=lam),
        "laplace": lambda mu, b: st.laplace(mu, b),
        "logistic": lambda mu, s: st.logistic(mu, s),
        "lognormal": lambda mu, s: st.lognorm(s, scale=np.exp(mu)),
        "negative_binomial": lambda p: st.nbinom(fixed["r"], p),
        "normal": lambda mu, s: st.norm(mu, s),
        "normal_mean": lambda mu: st.norm(mu, fixed["sigma"]),
        "poisson": lambda lam: st.poisson(lam),
        "rayleigh": lambda s: st.rayleigh(scale=s),
        "student_t": lambda mu, s: st.t(fixed["nu"], mu, s),
        "von_mises": lambda mu, k: st.vonmises(k, loc=mu),
        "weibull": lambda k, lam: st.weibull_min(k, scale=lam),
    }
    if name in scalar:
        def build(point):
            dist = scalar[name](*point)
            logp = (lambda cols: dist.logpmf(cols[0])) if hasattr(dist.dist, "pmf") else \
                (lambda cols: dist.logpdf(cols[0]))
            return logp, lambda n, rng: (dist.rvs(size=n, random_state=rng),)
        return build
    if name in ("multivariate_normal", "centered_normal"):
        return lambda point: _mvn(fam, point, name == "multivariate_normal")
    if name == "dirichlet":
        def build(point):
            dist = st.dirichlet(point)
            return (lambda cols: dist.logpdf(np.vstack(list(cols) + [1 - sum(cols)]))), \
                (lambda n, rng: tuple(dist.rvs(size=n, random_state=rng).T[:-1]))
        return build
    if name == "categorical":
        def build(point):
            probs = np.append(point, 1 - point.sum())
            k = probs.size

            def sample(n, rng):
                onehot = np.eye(k)[rng.choice(k, size=n, p=probs)]
                return tuple(onehot.T[:-1])
            return (lambda cols: np.log(probs[_category(cols, k)])), sample
        return build
    return None


def _category(cols, k):
    stacked = np.vstack(cols)
    return np.where(stacked.sum(axis=0) == 0, k - 1, stacked.argmax(axis=0))


def _mvn(fam, point, with_mean):
    import scipy.stats as st
    d = len(fam.variables)
    mean = point[:d] if with_mean else np.zeros(d)
    entries = iter(point[d:] if with_mean else point)
    cov = np.zeros((d, d))
    for i in range(d):
        for j in range(i, d):
            cov[i, j] = cov[j, i] = next(entries)
    dist = st.multivariate_normal(mean, cov)
    return (lambda cols: dist.logpdf(np.vstack(cols).T)), \
        (lambda n, rng: tuple(dist.rvs(size=n, random_state=rng).T))


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
