"""The catalog: named families, as the CLI and the JSON contract name them.

A name may carry options: ``categorical:k=4``, ``dirichlet:k=3``, ``multivariate_normal:d=2``,
``binomial:n=10`` (trials; symbolic n when absent), ``negative_binomial:r=3``, ``student_t:nu=5``.

>>> get("normal").params
(mu, sigma)
>>> get("categorical:k=4").params
(p1, p2, p3)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .algebra import lowest_terms
from .errors import UnknownFamilyError
from .family import Chart, ExponentialFamily, Family, Reduction, ScipyEquivalent, pair_of
from .support import Box, FinitePoints, Integers, Interval, Simplex

_BUILDERS: dict[str, Builder] = {}

POS = dict(positive=True)
REAL = dict(real=True)
UNIT = sp.Interval.open(0, 1)


@dataclass(frozen=True)
class Builder:
    """A catalog entry: its builder, option defaults, description and each option's allowed range
    (sizes beyond the upper end are refused: the symbolic tensors grow as n⁴)."""

    build: Callable
    defaults: dict
    description: str
    ranges: dict  # option -> (lowest, highest or None)


def _register(name: str, description: str, ranges: dict | None = None, **defaults):
    def wrap(fn):
        _BUILDERS[name] = Builder(fn, defaults, description, ranges or {})
        return fn
    return wrap


def names() -> list[str]:
    return sorted(_BUILDERS)


def description(name: str) -> str:
    return _BUILDERS[name].description


def parse_name(spec: str) -> tuple[str, dict]:
    """'categorical:k=4' -> ('categorical', {'k': 4})."""
    name, _, opts = spec.partition(":")
    options = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UnknownFamilyError(
                f"bad option {item!r} in {spec!r}: write key=value, e.g. categorical:k=4"
            )
        try:
            options[key.strip()] = int(value)
        except ValueError:
            raise UnknownFamilyError(f"option {key}={value!r} in {spec!r} must be a whole number") from None
    return name.strip(), options


def get(spec: str, **options) -> Family:
    """The catalog family named by `spec` (with options)."""
    name, parsed = parse_name(spec)
    parsed.update(options)
    if name not in _BUILDERS:
        raise UnknownFamilyError(f"unknown family {name!r}; known: {', '.join(names())}")
    entry = _BUILDERS[name]
    unknown = set(parsed) - set(entry.defaults)
    if unknown:
        allowed = ", ".join(entry.defaults) or "none"
        raise UnknownFamilyError(f"{name} takes no option {', '.join(sorted(unknown))} (options: {allowed})")
    kwargs = {**entry.defaults, **parsed}
    for key, value in kwargs.items():
        lowest, highest = entry.ranges.get(key, (1, None))
        if value is not None and (not isinstance(value, int) or value < lowest):
            raise UnknownFamilyError(f"{name}: option {key} must be an integer ≥ {lowest}, got {value!r}")
        if value is not None and highest is not None and value > highest:
            raise UnknownFamilyError(f"{name} is limited to size {highest} here (asked {value}): the "
                                     f"symbolic tensors grow as n^4")
    family = entry.build(**kwargs)
    options = [(k, v) for k, v in kwargs.items() if v is not None]
    return family.with_origin(
        name + "".join(f"{':' if i == 0 else ','}{k}={v}" for i, (k, v) in enumerate(options))
    )


def spec_of(family: Family) -> str | None:
    """The catalog name (with options) `family` was built from, in any of its charts; None for a family
    declared elsewhere.

    >>> spec_of(get("categorical:k=4").in_chart("natural"))
    'categorical:k=4'
    """
    return family.origin


def _fixed(name: str, value, assumptions: dict):
    return sp.Symbol(name, **assumptions) if value is None else sp.Integer(value)


def _x(positive=False):
    return sp.Symbol("x", positive=True) if positive else sp.Symbol("x", real=True)


def _thetas(n: int, *negative: int):
    return tuple(sp.Symbol(f"theta{i + 1}", negative=True) if i in negative else
                 sp.Symbol(f"theta{i + 1}", real=True) for i in range(n))


# -- discrete ------------------------------------------------------------------------------------
@_register("bernoulli", "Bernoulli(p) on {0, 1}")
def bernoulli():
    x, p, (t,) = sp.Symbol("x", integer=True, nonnegative=True), sp.Symbol("p", **POS), _thetas(1)
    return ExponentialFamily(
        "bernoulli",
        variables=x,
        support=Integers(0, 1),
        natural=(t,),
        stats=(x,),
        log_partition=sp.log(1 + sp.exp(t)),
        log_base_measure=0,
        params=(p,),
        natural_of_params=(sp.log(p / (1 - p)),),
        expectation_of_params=(p,),
        domains={p: UNIT},
        charts=[Chart("natural", (t,), ((p, sp.exp(t) / (1 + sp.exp(t))),))],
        closed_forms={"distance": _sphere_distance((p,))},
        scipy=ScipyEquivalent("bernoulli", (p,)),
    )


@_register("binomial", "Binomial(n, p), n trials fixed", n=None)
def binomial(n):
    x, p, (t,) = sp.Symbol("x", integer=True, nonnegative=True), sp.Symbol("p", **POS), _thetas(1)
    trials = _fixed("n", n, dict(positive=True, integer=True))
    return ExponentialFamily(
        "binomial",
        variables=x,
        support=Integers(0, trials),
        natural=(t,),
        stats=(x,),
        log_partition=trials * sp.log(1 + sp.exp(t)),
        log_base_measure=sp.log(sp.binomial(trials, x)),
        params=(p,),
        natural_of_params=(sp.log(p / (1 - p)),),
        expectation_of_params=(trials * p,),
        domains={p: UNIT},
        fixed={"n": trials},
        charts=[Chart("natural", (t,), ((p, sp.exp(t) / (1 + sp.exp(t))),))],
        closed_forms={"distance": _sphere_distance((p,), trials)},
        scipy=ScipyEquivalent("binom", (trials, p)),
    )


@_register("categorical", "Categorical(p1..pk) as one-hot x1..x_{k-1}", {"k": (2, 12)}, k=3)
def categorical(k):
    xs = tuple(sp.Symbol(f"x{i + 1}", integer=True, nonnegative=True) for i in range(k - 1))
    ps = tuple(sp.Symbol(f"p{i + 1}", **POS) for i in range(k - 1))
    ts = _thetas(k - 1)
    last = 1 - sum(ps)
    points = tuple(tuple(int(i == j) for j in range(k - 1)) for i in range(k - 1)) + ((0,) * (k - 1),)
    eth = [sp.exp(t) for t in ts]
    return ExponentialFamily(
        "categorical",
        variables=xs,
        support=FinitePoints(points),
        natural=ts,
        stats=xs,
        log_partition=sp.log(1 + sum(eth)),
        log_base_measure=0,
        params=ps,
        natural_of_params=tuple(sp.log(p / last) for p in ps),
        expectation_of_params=ps,
        domains={p: UNIT for p in ps},
        constraints=(sp.Lt(sum(ps), 1),),
        samples=[{p: sp.Rational(1, k + i % 2) for i, p in enumerate(ps)}],
        charts=[Chart("natural", ts, tuple((p, e / (1 + sum(eth))) for p, e in zip(ps, eth)))],
        closed_forms={"distance": _sphere_distance(ps)},
        scipy=ScipyEquivalent("multinomial", (1, sp.Matrix(ps + (last,)))),
    )


def _sphere_distance(ps, trials=1):
    """Fisher–Rao distance of the categorical on the sphere of radius 2 (Rao 1945), 4 asin(‖√p − √q‖ / 2),
    written with asin so that near points keep their digits; n trials scale it by √n."""
    first, second = zip(*(pair_of(p) for p in ps))
    p, q = list(first) + [1 - sum(first)], list(second) + [1 - sum(second)]
    chord = sp.sqrt(sum((sp.sqrt(a) - sp.sqrt(b)) ** 2 for a, b in zip(p, q)))
    return 4 * sp.sqrt(trials) * sp.asin(chord / 2)


@_register("poisson", "Poisson(lam) on {0, 1, 2, ...}")
def poisson():
    x, lam, (t,) = sp.Symbol("x", integer=True, nonnegative=True), sp.Symbol("lam", **POS), _thetas(1)
    return ExponentialFamily(
        "poisson",
        variables=x,
        support=Integers(0, sp.oo),
        natural=(t,),
        stats=(x,),
        log_partition=sp.exp(t),
        log_base_measure=-sp.loggamma(x + 1),
        params=(lam,),
        natural_of_params=(sp.log(lam),),
        expectation_of_params=(lam,),
        charts=[Chart("natural", (t,), ((lam, sp.exp(t)),))],
        scipy=ScipyEquivalent("poisson", (lam,)),
    )


@_register("geometric", "Geometric(p): failures before the first success, on {0, 1, ...}")
def geometric():
    x, p, (t,) = sp.Symbol("x", integer=True, nonnegative=True), sp.Symbol("p", **POS), _thetas(1, 0)
    return ExponentialFamily(
        "geometric",
        variables=x,
        support=Integers(0, sp.oo),
        natural=(t,),
        stats=(x,),
        log_partition=-sp.log(1 - sp.exp(t)),
        log_base_measure=0,
        params=(p,),
        natural_of_params=(sp.log(1 - p),),
        expectation_of_params=((1 - p) / p,),
        domains={p: UNIT},
        charts=[Chart("natural", (t,), ((p, 1 - sp.exp(t)),))],
        scipy=ScipyEquivalent("geom", (p,), (("loc", -1),)),
    )


@_register("negative_binomial", "NegativeBinomial(r, p): failures before the r-th success, r fixed", r=None)
def negative_binomial(r):
    x, p, (t,) = sp.Symbol("x", integer=True, nonnegative=True), sp.Symbol("p", **POS), _thetas(1, 0)
    rr = _fixed("r", r, POS)
    return ExponentialFamily(
        "negative_binomial",
        variables=x,
        support=Integers(0, sp.oo),
        natural=(t,),
        stats=(x,),
        log_partition=-rr * sp.log(1 - sp.exp(t)),
        log_base_measure=sp.loggamma(x + rr) - sp.loggamma(rr) - sp.loggamma(x + 1),
        params=(p,),
        natural_of_params=(sp.log(1 - p),),
        expectation_of_params=(rr * (1 - p) / p,),
        domains={p: UNIT},
        fixed={"r": rr},
        charts=[Chart("natural", (t,), ((p, 1 - sp.exp(t)),))],
        scipy=ScipyEquivalent("nbinom", (rr, p)),
    )


# -- continuous, univariate ----------------------------------------------------------------------
@_register("exponential", "Exponential(lam), rate lam")
def exponential():
    x, lam, (t,) = _x(True), sp.Symbol("lam", **POS), _thetas(1, 0)
    return ExponentialFamily(
        "exponential",
        variables=x,
        support=Interval(0, sp.oo),
        natural=(t,),
        stats=(x,),
        log_partition=-sp.log(-t),
        log_base_measure=0,
        params=(lam,),
        natural_of_params=(-lam,),
        charts=[Chart("natural", (t,), ((lam, -t),))],
        scipy=ScipyEquivalent("expon", (), (("scale", 1 / lam),)),
    )


def _gaussian(name, x, stat, log_h, support, scipy):
    mu, sigma = sp.Symbol("mu", **REAL), sp.Symbol("sigma", **POS)
    t1, t2 = _thetas(2, 1)
    v, e1, e2 = sp.Symbol("v", **POS), sp.Symbol("eta1", **REAL), sp.Symbol("eta2", **POS)
    return ExponentialFamily(
        name,
        variables=x,
        support=support,
        natural=(t1, t2),
        stats=(stat, stat**2),
        log_partition=-(t1**2) / (4 * t2) + sp.log(-sp.pi / t2) / 2,
        log_base_measure=log_h,
        params=(mu, sigma),
        natural_of_params=(mu / sigma**2, -1 / (2 * sigma**2)),
        expectation_of_params=(mu, sigma**2 + mu**2),
        charts=[
            Chart("variance", (mu, v), ((mu, mu), (sigma, sp.sqrt(v)))),
            Chart("natural", (t1, t2), ((mu, -t1 / (2 * t2)), (sigma, sp.sqrt(-1 / (2 * t2))))),
            Chart("expectation", (e1, e2), ((mu, e1), (sigma, sp.sqrt(e2 - e1**2)))),
        ],
        scipy=scipy(mu, sigma),
    )


@_register("normal", "Normal(mu, sigma); charts variance (mu, v), natural, expectation")
def normal():
    return _gaussian("normal", _x(), _x(), 0, Interval(), lambda mu, s: ScipyEquivalent("norm", (mu, s)))


@_register("normal_mean", "Normal(mu, sigma) with sigma fixed (symbolic unless sigma=...)", sigma=None)
def normal_mean(sigma):
    x, mu, (t,) = _x(), sp.Symbol("mu", **REAL), _thetas(1)
    scale = _fixed("sigma", sigma, POS)
    return ExponentialFamily(
        "normal_mean",
        variables=x,
        support=Interval(),
        natural=(t,),
        stats=(x,),
        log_partition=t**2 * scale**2 / 2,
        log_base_measure=-(x**2) / (2 * scale**2) - sp.log(2 * sp.pi * scale**2) / 2,
        params=(mu,),
        natural_of_params=(mu / scale**2,),
        fixed={"sigma": scale},
        charts=[Chart("natural", (t,), ((mu, t * scale**2),))],
        scipy=ScipyEquivalent("norm", (mu, scale)),
    )


@_register("lognormal", "LogNormal(mu, sigma): log x ~ Normal(mu, sigma)")
def lognormal():
    x = _x(True)
    return _gaussian("lognormal", x, sp.log(x), -sp.log(x), Interval(0, sp.oo),
                     lambda mu, s: ScipyEquivalent("lognorm", (s,), (("scale", sp.exp(mu)),)))


@_register("gamma", "Gamma(k, theta), shape k, scale theta; chart rate (k, beta)")
def gamma():
    x, k, th, beta = _x(True), sp.Symbol("k", **POS), sp.Symbol("theta", **POS), sp.Symbol("beta", **POS)
    t1, t2 = sp.Symbol("theta1", **POS), sp.Symbol("theta2", negative=True)
    return ExponentialFamily(
        "gamma", variables=x, support=Interval(0, sp.oo), natural=(t1, t2), stats=(sp.log(x), x),
        log_partition=sp.loggamma(t1) - t1 * sp.log(-t2), log_base_measure=-sp.log(x), params=(k, th),
        natural_of_params=(k, -1 / th), expectation_of_params=(sp.polygamma(0, k) + sp.log(th), k * th),
        charts=[Chart("rate", (k, beta), ((k, k), (th, 1 / beta))),
                Chart("natural", (t1, t2), ((k, t1), (th, -1 / t2)))],
        scipy=ScipyEquivalent("gamma", (k,), (("scale", th),)))


@_register("inverse_gamma", "InverseGamma(a, b), shape a, scale b")
def inverse_gamma():
    x, a, b = _x(True), sp.Symbol("a", **POS), sp.Symbol("b", **POS)
    t1, t2 = sp.Symbol("theta1", negative=True), sp.Symbol("theta2", negative=True)
    return ExponentialFamily(
        "inverse_gamma",
        variables=x,
        support=Interval(0, sp.oo),
        natural=(t1, t2),
        stats=(sp.log(x), 1 / x),
        log_partition=sp.loggamma(-t1) + t1 * sp.log(-t2),
        log_base_measure=-sp.log(x),
        params=(a, b),
        natural_of_params=(-a, -b),
        expectation_of_params=(sp.log(b) - sp.polygamma(0, a), a / b),
        charts=[Chart("natural", (t1, t2), ((a, -t1), (b, -t2)))],
        scipy=ScipyEquivalent("invgamma", (a,), (("scale", b),)),
    )


@_register("beta", "Beta(a, b) on (0, 1)")
def beta():
    x, a, b = sp.Symbol("x", positive=True), sp.Symbol("a", **POS), sp.Symbol("b", **POS)
    t1, t2 = sp.Symbol("theta1", **POS), sp.Symbol("theta2", **POS)
    return ExponentialFamily(
        "beta",
        variables=x,
        support=Interval(0, 1),
        natural=(t1, t2),
        stats=(sp.log(x), sp.log(1 - x)),
        log_partition=sp.loggamma(t1) + sp.loggamma(t2) - sp.loggamma(t1 + t2),
        log_base_measure=-sp.log(x) - sp.log(1 - x),
        params=(a, b),
        natural_of_params=(a, b),
        charts=[Chart("natural", (t1, t2), ((a, t1), (b, t2)))],
        scipy=ScipyEquivalent("beta", (a, b)),
    )


@_register("inverse_gaussian", "InverseGaussian(mu, lam), mean mu, shape lam")
def inverse_gaussian():
    x, mu, lam = _x(True), sp.Symbol("mu", **POS), sp.Symbol("lam", **POS)
    t1, t2 = _thetas(2, 0, 1)
    return ExponentialFamily(
        "inverse_gaussian",
        variables=x,
        support=Interval(0, sp.oo),
        natural=(t1, t2),
        stats=(x, 1 / x),
        log_partition=-2 * sp.sqrt(t1 * t2) - sp.log(-2 * t2) / 2,
        log_base_measure=-sp.log(2 * sp.pi) / 2 - 3 * sp.log(x) / 2,
        params=(mu, lam),
        natural_of_params=(-lam / (2 * mu**2), -lam / 2),
        expectation_of_params=(mu, 1 / mu + 1 / lam),
        charts=[Chart("natural", (t1, t2), ((mu, sp.sqrt(t2 / t1)), (lam, -2 * t2)))],
        scipy=ScipyEquivalent("invgauss", (mu / lam,), (("scale", lam),)),
    )


@_register("von_mises", "VonMises(mu, kappa) on the circle (-pi, pi)")
def von_mises():
    x, mu, kappa = _x(), sp.Symbol("mu", **REAL), sp.Symbol("kappa", **POS)
    t1, t2 = _thetas(2)
    ratio = sp.besseli(1, kappa) / sp.besseli(0, kappa)
    return ExponentialFamily(
        "von_mises",
        variables=x,
        support=Interval(-sp.pi, sp.pi),
        natural=(t1, t2),
        stats=(sp.cos(x), sp.sin(x)),
        log_partition=None,
        log_base_measure=0,
        params=(mu, kappa),
        natural_of_params=(kappa * sp.cos(mu), kappa * sp.sin(mu)),
        log_partition_of_params=sp.log(2 * sp.pi * sp.besseli(0, kappa)),
        expectation_of_params=(ratio * sp.cos(mu), ratio * sp.sin(mu)),
        domains={mu: sp.Interval.open(-sp.pi, sp.pi)},
        samples=[
            {mu: -sp.Rational(6, 5), kappa: sp.Rational(7, 10)},
            {mu: sp.Rational(1, 2), kappa: sp.Rational(23, 10)},
        ],
        scipy=ScipyEquivalent("vonmises", (kappa,), (("loc", mu),)),
    )


@_register("rayleigh", "Rayleigh(sigma)")
def rayleigh():
    x, sigma, (t,) = _x(True), sp.Symbol("sigma", **POS), _thetas(1, 0)
    return ExponentialFamily(
        "rayleigh",
        variables=x,
        support=Interval(0, sp.oo),
        natural=(t,),
        stats=(x**2,),
        log_partition=-sp.log(-2 * t),
        log_base_measure=sp.log(x),
        params=(sigma,),
        natural_of_params=(-1 / (2 * sigma**2),),
        expectation_of_params=(2 * sigma**2,),
        charts=[Chart("natural", (t,), ((sigma, sp.sqrt(-1 / (2 * t))),))],
        scipy=ScipyEquivalent("rayleigh", (), (("scale", sigma),)),
    )


# -- not exponential families --------------------------------------------------------------------
@_register("cauchy", "Cauchy(x0, gamma), location x0, scale gamma")
def cauchy():
    x, x0, g = _x(), sp.Symbol("x0", **REAL), sp.Symbol("gamma", **POS)
    (a1, a2), (g1, g2) = pair_of(x0), pair_of(g)
    kl = sp.log(((g1 + g2) ** 2 + (a1 - a2) ** 2) / (4 * g1 * g2))  # Chyzak & Nielsen (2019)
    return Family("cauchy", variables=x, support=Interval(), params=(x0, g),
                  log_density=-sp.log(sp.pi * g) - sp.log(1 + ((x - x0) / g) ** 2), closed_forms={"kl": kl},
                  scipy=ScipyEquivalent("cauchy", (x0, g)))


@_register("student_t", "StudentT(mu, sigma) with nu degrees of freedom fixed", nu=5)
def student_t(nu):
    x, mu, sigma = _x(), sp.Symbol("mu", **REAL), sp.Symbol("sigma", **POS)
    n = sp.Integer(nu)
    z = (x - mu) / sigma
    logp = (sp.loggamma((n + 1) / 2) - sp.loggamma(n / 2) - sp.log(n * sp.pi) / 2 - sp.log(sigma)
            - (n + 1) / 2 * sp.log(1 + z ** 2 / n))
    return Family(
        "student_t",
        variables=x,
        support=Interval(),
        params=(mu, sigma),
        log_density=sp.expand_func(logp),
        fixed={"nu": n},
        scipy=ScipyEquivalent("t", (n, mu, sigma)),
    )


@_register("weibull", "Weibull(k, lam), shape k, scale lam")
def weibull():
    x, k, lam = _x(True), sp.Symbol("k", **POS), sp.Symbol("lam", **POS)
    z = sp.Symbol("z", positive=True)
    logp = sp.log(k) - sp.log(lam) + (k - 1) * (sp.log(x) - sp.log(lam)) - (x / lam) ** k
    (k1, k2), (l1, l2) = pair_of(k), pair_of(lam)
    kl = (
        sp.log(k1)
        - k1 * sp.log(l1)
        - sp.log(k2)
        + k2 * sp.log(l2)
        + (k1 - k2) * (sp.log(l1) - sp.EulerGamma / k1)
        + (l1 / l2) ** k2 * sp.gamma(k2 / k1 + 1)
        - 1
    )  # Bauckhage (2013)
    return Family("weibull", variables=x, support=Interval(0, sp.oo), params=(k, lam), log_density=logp,
                  reduction=Reduction(z, lam * z ** (1 / k), Interval(0, sp.oo)), closed_forms={"kl": kl},
                  scipy=ScipyEquivalent("weibull_min", (k,), (("scale", lam),)))


@_register("logistic", "Logistic(mu, s), location mu, scale s")
def logistic():
    x, mu, s = _x(), sp.Symbol("mu", **REAL), sp.Symbol("s", **POS)
    z = (x - mu) / s
    return Family(
        "logistic",
        variables=x,
        support=Interval(),
        params=(mu, s),
        log_density=-z - 2 * sp.log(1 + sp.exp(-z)) - sp.log(s),
        scipy=ScipyEquivalent("logistic", (mu, s)),
    )


@_register("laplace", "Laplace(mu, b), location mu, scale b")
def laplace():
    x, mu, b = _x(), sp.Symbol("mu", **REAL), sp.Symbol("b", **POS)
    (m1, m2), (b1, b2) = pair_of(mu), pair_of(b)
    shift = sp.Abs(m1 - m2)
    kl = sp.log(b2 / b1) + shift / b2 + b1 / b2 * sp.exp(-shift / b1) - 1
    return Family(
        "laplace",
        variables=x,
        support=Interval(),
        params=(mu, b),
        log_density=-sp.log(2 * b) - sp.Abs(x - mu) / b,
        closed_forms={"kl": kl},
        scipy=ScipyEquivalent("laplace", (mu, b)),
    )


# -- multivariate --------------------------------------------------------------------------------
@_register("dirichlet", "Dirichlet(alpha1..alphak) on the simplex", {"k": (2, 12)}, k=3)
def dirichlet(k):
    xs = tuple(sp.Symbol(f"x{i + 1}", positive=True) for i in range(k - 1))
    alphas = tuple(sp.Symbol(f"alpha{i + 1}", **POS) for i in range(k))
    ts = tuple(sp.Symbol(f"theta{i + 1}", **POS) for i in range(k))
    parts = xs + (1 - sum(xs),)
    return ExponentialFamily(
        "dirichlet",
        variables=xs,
        support=Simplex(k - 1),
        natural=ts,
        stats=tuple(sp.log(p) for p in parts),
        log_partition=sum(sp.loggamma(t) for t in ts) - sp.loggamma(sum(ts)),
        log_base_measure=-sum(sp.log(p) for p in parts),
        params=alphas,
        natural_of_params=alphas,
        charts=[Chart("natural", ts, tuple(zip(alphas, ts)))],
        scipy=ScipyEquivalent("dirichlet", (sp.Matrix(alphas),), components_first=True),
    )


@_register("multivariate_normal", "MultivariateNormal:d, means mu_i and covariance entries s_ij (i<=j)",
           {"d": (1, 5)}, d=2)
def multivariate_normal(d):
    return _multivariate_normal("multivariate_normal", d, with_mean=True)


@_register("centered_normal", "MultivariateNormal(0, Sigma):d, covariance entries s_ij (i<=j) only",
           {"d": (1, 5)}, d=2)
def centered_normal(d):
    return _multivariate_normal("centered_normal", d, with_mean=False)


def _multivariate_normal(name: str, d: int, with_mean: bool):
    xs = tuple(sp.Symbol(f"x{i + 1}", **REAL) for i in range(d))
    mus = tuple(sp.Symbol(f"mu{i + 1}", **REAL) for i in range(d)) if with_mean else ()
    pairs = [(i, j) for i in range(d) for j in range(i, d)]
    s = {(i, j): sp.Symbol(f"s{i + 1}{j + 1}", **(POS if i == j else REAL)) for i, j in pairs}
    cov = sp.Matrix(d, d, lambda i, j: s[(min(i, j), max(i, j))])
    prec = cov.inv()
    prec = prec.applyfunc(lowest_terms)
    mu = sp.Matrix(mus) if with_mean else sp.zeros(d, 1)
    pm = prec * mu
    natural = [pm[i] for i in range(len(mus))] + [
        (-prec[i, j] / 2 if i == j else -prec[i, j]) for i, j in pairs
    ]
    stats = list(xs[:len(mus)]) + [xs[i] * xs[j] for i, j in pairs]
    eta = list(mus) + [cov[i, j] + mu[i] * mu[j] for i, j in pairs]
    log_a = (mu.T * prec * mu)[0, 0] / 2 + sp.log(cov.det()) / 2
    thetas = tuple(sp.Symbol(f"theta{i + 1}", **REAL) for i in range(len(stats)))
    minors = tuple(sp.Gt(cov[:m, :m].det(), 0) for m in range(2, d + 1))
    sample = {**{m: sp.Rational(i + 1, 4) for i, m in enumerate(mus)},
              **{s[p]: (sp.Integer(2) if p[0] == p[1] else sp.Rational(1, 2)) for p in pairs}}
    known = {}
    if not with_mean and d == 2:
        known["distance"] = _centered_bivariate_distance(*(s[p] for p in pairs))
    return ExponentialFamily(
        name,
        variables=xs,
        support=Box(tuple(Interval() for _ in xs)),
        natural=thetas,
        stats=stats,
        log_partition=None,
        log_base_measure=-sp.Rational(d, 2) * sp.log(2 * sp.pi),
        params=mus + tuple(s[p] for p in pairs),
        natural_of_params=natural,
        log_partition_of_params=log_a,
        expectation_of_params=eta,
        constraints=minors,
        samples=[sample],
        closed_forms=known,
        scipy=ScipyEquivalent("multivariate_normal", (mu, cov)),
    )


def _centered_bivariate_distance(s11, s12, s22):
    """Fisher–Rao distance of centred bivariate normals (Atkinson & Mitchell 1981): √(½ Σ log² λᵢ), λ± the
    eigenvalues of Σ₁⁻¹Σ₂ (trace τ, determinant δ)."""
    (a11, b11), (a12, b12), (a22, b22) = pair_of(s11), pair_of(s12), pair_of(s22)
    cov1, cov2 = sp.Matrix([[a11, a12], [a12, a22]]), sp.Matrix([[b11, b12], [b12, b22]])
    tau = (cov1.inv() * cov2).trace()
    delta = cov2.det() / cov1.det()
    root = sp.sqrt(tau ** 2 - 4 * delta)
    return sp.sqrt((sp.log((tau + root) / 2) ** 2 + sp.log((tau - root) / 2) ** 2) / 2)
