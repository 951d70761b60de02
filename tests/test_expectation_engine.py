"""The expectation engine's new mechanisms, each against an independent source: identities (a law
carried onto Gamma/Beta/Normal, transforms differentiated) against scipy quadrature written here;
Student-t with ν free against the literature (Lange, Little & Taylor 1989); integral and series
representations against direct quadrature and summation; heavy tails in the normalization check."""
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special

from symgeo import Geometry
from symgeo.expectation import kind
from symgeo.expectation.identities import expect_standard
from symgeo.expectation.laws import POSITIVE, REALS, UNIT, standardize
from symgeo.expectation.representation import evaluate
from symgeo.regularity import check_normalized
from symgeo.spec import family_from_dict, load_spec

FAMILIES = Path(__file__).resolve().parent.parent / "derivations" / "families"
z = sp.Symbol("z", real=True)
x = sp.Symbol("x", positive=True)
nu, a, b, p, d = sp.symbols("nu a b p d", positive=True)

# (log-density of the reduced law, variable, support, shape values, integrands, expected chain end)
LAWS = {
    "student": (sp.loggamma((nu + 1) / 2) - sp.loggamma(nu / 2) - sp.log(nu * sp.pi) / 2
                - (nu + 1) / 2 * sp.log(1 + z ** 2 / nu), z, REALS, {nu: sp.Rational(23, 10)},
                [sp.log(1 + z ** 2 / nu) ** 2, z ** 2 / (nu + z ** 2), z ** 4 / (nu + z ** 2) ** 2, z / (nu + z ** 2)],
                "Beta(1/2, nu/2)"),
    "generalized_gamma": (sp.log(p) - sp.loggamma(d / p) + (d - 1) * sp.log(x) - x ** p, x, POSITIVE,
                          {d: sp.Rational(13, 10), p: sp.Rational(7, 10)},
                          [sp.log(x) ** 2, x ** p * sp.log(x), x ** (2 * p) * sp.log(x) ** 2], "Gamma(d/p, rate=1)"),
    "kumaraswamy": (sp.log(a * b) + (a - 1) * sp.log(x) + (b - 1) * sp.log(1 - x ** a), x, UNIT,
                    {a: sp.Rational(13, 10), b: sp.Rational(27, 10)},
                    [sp.log(x) ** 2, sp.log(1 - x ** a) * sp.log(x), x ** (2 * a) * sp.log(x) ** 2 / (1 - x ** a) ** 2],
                    "Beta(1, b)"),
    "logistic": (-z - 2 * sp.log(1 + sp.exp(-z)), z, REALS, {},
                 [z ** 2, z * sp.tanh(z / 2), sp.tanh(z / 2) ** 2], "Beta(1, 1)"),
    "generalized_normal": (sp.log(b / 2) - sp.loggamma(1 / b) - sp.Abs(z) ** b, z, REALS,
                           {b: sp.Rational(5, 2)}, [sp.Abs(z) ** (2 * b - 2), sp.Abs(z) ** b * sp.log(sp.Abs(z))],
                           "Gamma(1/b, rate=1)"),
}


def _scipy_expectation(h, logq, var, support, point):
    """∫ h q by scipy.integrate.quad over the support (the test's own reference)."""
    raw = sp.lambdify(var, (h * sp.exp(logq)).xreplace(point), modules=["numpy", "scipy"])

    def f(t):  # inf/inf far out in a tail (logistic at z = -800) is a 0 there
        with np.errstate(all="ignore"):
            value = raw(t)
        return 0.0 if np.isnan(value) else value
    lo, hi = float(support.lo), float(support.hi)
    if lo == -np.inf:
        return sum(integrate.quad(f, a_, b_, epsabs=1e-13, epsrel=1e-12, limit=400)[0]
                   for a_, b_ in ((-np.inf, 0), (0, np.inf)))
    return sum(integrate.quad(f, a_, b_, epsabs=1e-13, epsrel=1e-12, limit=400)[0]
               for a_, b_ in ((lo, 1), (1, hi))) if hi == np.inf else \
        integrate.quad(f, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=400)[0]


@pytest.mark.parametrize("name", sorted(LAWS))
def test_identity_chain_matches_quadrature(name):
    logq, var, support, point, integrands, law = LAWS[name]
    std = standardize(logq, var, support, point)
    assert std is not None and str(std.law) == law
    for h in integrands:
        value = expect_standard(std, std.carry(h, var))
        assert value is not None, h
        assert not value.has(sp.Integral)
        reference = _scipy_expectation(h, logq, var, support, point)
        assert float(sp.N(value.xreplace(point))) == pytest.approx(reference, rel=1e-8, abs=1e-10), h


@settings(max_examples=15, deadline=None)
@given(shape=st.floats(0.6, 6.0), power=st.integers(0, 3), logs=st.integers(0, 2))
def test_gamma_power_identity_for_any_shape(shape, power, logs):
    """E[V^s log^m V] for V^(1/p) with V ~ Gamma(d/p): the differentiated Mellin transform vs mpmath."""
    pv = sp.Rational(3, 2)
    dv = sp.nsimplify(round(shape, 2))
    logq = sp.log(pv) - sp.loggamma(dv / pv) + (dv - 1) * sp.log(x) - x ** pv
    std = standardize(logq, x, POSITIVE, {})
    h = x ** power * sp.log(x) ** logs
    value = float(sp.N(expect_standard(std, std.carry(h, x))))
    f = sp.lambdify(x, h * sp.exp(logq), modules="mpmath")
    reference = float(mpmath.quad(f, [0, 1, mpmath.inf]))
    assert value == pytest.approx(reference, rel=1e-10, abs=1e-12)


def test_student_t_with_free_nu_matches_the_literature():
    g = Geometry(load_spec(FAMILIES / "student_t_nu.toml"), cache=False).fisher
    s, n = sp.Rational(3, 2), sp.Rational(7, 3)
    names = {str(sym): sym for sym in g.free_symbols}
    at = {names["sigma"]: s, names["nu"]: n}
    # Lange, Little & Taylor (1989): the Fisher information of t(μ, σ, ν)
    expected = {(0, 0): (n + 1) / ((n + 3) * s ** 2), (1, 1): 2 * n / ((n + 3) * s ** 2),
                (1, 2): -2 / (s * (n + 1) * (n + 3)),
                (2, 2): (sp.polygamma(1, n / 2) - sp.polygamma(1, (n + 1) / 2)) / 4
                - (n + 5) / (2 * n * (n + 1) * (n + 3)), (0, 1): 0, (0, 2): 0}
    for (i, j), value in expected.items():
        assert float(sp.N(g[i, j].xreplace(at) - value, 30)) == pytest.approx(0, abs=1e-25)


def test_mixture_weight_is_an_integral_representation_equal_to_direct_quadrature():
    geo = Geometry(load_spec(FAMILIES / "mixture_weight.toml"), cache=False)
    entry = geo.fisher[0, 0]
    assert kind(entry) == "integral representation"
    (w,) = geo.params
    assert sp.sympify(str(entry), locals={"w": sp.Symbol("w")}).has(sp.Integral)  # the JSON contract
    def information(t, wv):  # (f1 - f2)² / p for the weight of N(0, 1) against N(2, 1)
        f1, f2 = np.exp(-t ** 2 / 2) / np.sqrt(2 * np.pi), np.exp(-(t - 2) ** 2 / 2) / np.sqrt(2 * np.pi)
        return (f1 - f2) ** 2 / (wv * f1 + (1 - wv) * f2)
    for wv in (0.15, 0.5, 0.9):
        direct = integrate.quad(information, -30, 32, args=(wv,), epsabs=1e-13, points=[0, 2],
                                limit=200)[0]  # e^-450 beyond
        assert float(evaluate(entry, {w: sp.Float(wv, 30)})) == pytest.approx(direct, rel=1e-9)


@pytest.mark.slow  # minutes: mpmath sums the digamma series at 20 digits
def test_negative_binomial_with_free_r_keeps_a_digamma_series():
    geo = Geometry(load_spec(FAMILIES / "negative_binomial_r.toml"), cache=False)
    g = geo.fisher
    assert kind(g[0, 0]) == "series representation"
    r, p = geo.params
    rv, pv = 2.5, 0.4
    k = np.arange(0, 4000)
    logpmf = special.gammaln(k + rv) - special.gammaln(rv) - special.gammaln(k + 1) + rv * np.log(pv) \
        + k * np.log1p(-pv)
    pmf = np.exp(logpmf)
    s_r = special.digamma(k + rv) - special.digamma(rv) + np.log(pv)
    s_p = rv / pv - k / (1 - pv)
    at = {r: sp.Float(rv, 30), p: sp.Float(pv, 30)}
    for (i, j), ref in {(0, 0): np.sum(pmf * s_r * s_r), (0, 1): np.sum(pmf * s_r * s_p),
                        (1, 1): np.sum(pmf * s_p * s_p)}.items():
        assert float(evaluate(g[i, j], at)) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("density, support", [
    ("(7/10/alpha)*(x/alpha)**(7/10 - 1)/(1 + (x/alpha)**(7/10))**2", "positive"),   # no mean
    ("s/(pi*x*((log(x) - mu)**2 + s**2))", "positive"),                               # log-Cauchy
    ("rho*gamma(x)*gamma(rho + 1)/gamma(x + rho + 1)", {"integers": [1, "oo"]}),      # Yule–Simon
])
def test_heavy_tailed_densities_are_accepted_as_normalized(density, support):
    params = {"alpha": "positive", "mu": "real", "s": "positive", "rho": "positive"}
    used = {k: v for k, v in params.items() if k in density}
    family = family_from_dict({"name": "heavy", "variable": "x", "support": support, "density": density,
                               "params": used})
    check_normalized(family)


def test_a_wrong_heavy_tailed_density_is_still_refused():
    from symgeo.errors import UnnormalizedDensityError
    family = family_from_dict({"name": "bad", "variable": "x", "support": "positive",
                               "density": "1.001*s/(pi*x*((log(x) - mu)**2 + s**2))",
                               "params": {"mu": "real", "s": "positive"}})
    with pytest.raises(UnnormalizedDensityError):
        check_normalized(family)


def test_recognizer_merges_linearly_dependent_statistics():
    """logit-normal declared by its density: five x-terms, two statistics; E[T] from ∇A equals
    scipy quadrature of T under the declared density."""
    from symgeo.recognize import recognize
    fam = load_spec(FAMILIES / "logit_normal.toml")
    ef = recognize(fam)
    assert ef is not None and len(ef.stats) == 2
    mu, sigma = fam.params
    geo = Geometry(fam, cache=False)
    assert sp.simplify(geo.fisher - sp.Matrix([[1 / sigma ** 2, 0], [0, 2 / sigma ** 2]])) == sp.zeros(2, 2)
    (x,) = fam.variables
    point = {mu: sp.Rational(3, 10), sigma: sp.Rational(7, 10)}
    density = sp.lambdify(x, fam.density.xreplace(point), "mpmath")
    for stat, eta in zip(ef.stats, geo.expectation_params):
        t = sp.lambdify(x, stat, "mpmath")
        want = mpmath.quad(lambda v: t(v) * density(v), [0, 0.5, 1])
        assert float(eta.xreplace(point)) == pytest.approx(float(want), rel=1e-12)


def test_recognizer_keeps_curved_families_curved():
    """N(μ, μ²) has statistics x and x² with coefficients 1/μ and −1/(2μ²): independent, two
    statistics for one parameter: not a (full) exponential family."""
    from symgeo.recognize import recognize
    fam = family_from_dict({"name": "curved", "variable": "x", "support": "reals",
                            "density": "exp(-(x - m)**2/(2*m**2))/(m*sqrt(2*pi))", "params": {"m": "positive"}})
    assert recognize(fam) is None


def test_frechet_and_hyperbolic_secant_close():
    """Fréchet: g_αα = (π²/6 + (1 − γ)²)/α², g_ss = α²/s² (literature); hyperbolic secant:
    g = π²/(8 s²) I (mpmath quadrature of the score written here)."""
    fam = load_spec(FAMILIES / "frechet.toml")
    alpha, s = fam.params
    g = Geometry(fam, cache=False).fisher
    assert sp.simplify(g[0, 0] - (sp.pi ** 2 / 6 + (1 - sp.EulerGamma) ** 2) / alpha ** 2) == 0
    assert sp.simplify(g[1, 1] - alpha ** 2 / s ** 2) == 0
    fam = load_spec(FAMILIES / "hyperbolic_secant.toml")
    mu, s = fam.params
    g = Geometry(fam, cache=False).fisher
    assert sp.simplify(g - sp.eye(2) * sp.pi ** 2 / (8 * s ** 2)) == sp.zeros(2, 2)
    scale = mpmath.quad(lambda z: (1 - mpmath.pi / 2 * z * mpmath.tanh(mpmath.pi * z / 2)) ** 2
                        * mpmath.sech(mpmath.pi * z / 2) / 2, [-mpmath.inf, 0, mpmath.inf])
    assert float(g[1, 1].subs(s, 1)) == pytest.approx(float(scale), rel=1e-14)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 4), st.integers(1, 40), st.booleans())
def test_polygamma_at_integers_and_half_integers(m, k, half):
    from symgeo.simplify import _polygamma_at
    r = sp.Rational(2 * k - 1, 2) if half else sp.Integer(k)
    assert abs(float(sp.N(_polygamma_at(m, r), 30)) - float(mpmath.polygamma(m, float(r)))) <= \
        1e-13 * max(1.0, abs(float(mpmath.polygamma(m, float(r)))))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 3), st.fractions(min_value=-8, max_value=8, max_denominator=4))
def test_shifted_polygammas_are_equal(m, c):
    from symgeo.simplify import _shifted_polygammas
    a = sp.Symbol("a", positive=True)
    expr = sp.polygamma(m, a / 2 + sp.Rational(c.numerator, c.denominator))
    shifted = _shifted_polygammas(expr)
    for value in (sp.Rational(37, 3), sp.Rational(101, 7)):  # arguments kept positive
        assert abs(sp.N((expr - shifted).subs(a, value), 40)) < 1e-30


def test_a_fixed_shape_declared_as_a_symbol_derives():
    """Student-t with [fixed] nu = "positive": the literature's (ν+1)/(σ²(ν+3)) and 2ν/(σ²(ν+3)),
    ν symbolic (the quadrature checks take ν at its sample value)."""
    fam = family_from_dict({
        "name": "t_fixed_nu", "variable": "x", "support": "reals", "fixed": {"nu": "positive"},
        "log_density": "loggamma((nu + 1)/2) - loggamma(nu/2) - log(nu*pi)/2 - log(sigma) "
                       "- (nu + 1)/2*log(1 + ((x - mu)/sigma)**2/nu)",
        "params": {"mu": "real", "sigma": "positive"}})
    mu, sigma = fam.params
    nu = fam.fixed["nu"]
    g = Geometry(fam, cache=False).fisher
    want = sp.diag((nu + 1) / (sigma ** 2 * (nu + 3)), 2 * nu / (sigma ** 2 * (nu + 3)))
    assert sp.simplify(g - want) == sp.zeros(2, 2)


def test_zero_inflated_poisson_series_matches_direct_summation():
    """sign(x) pieces: the series is kept as declared (its expansion cancels to 0/0 in floating point)
    and equals a direct sum of the score products written here."""
    fam = load_spec(FAMILIES / "zero_inflated_poisson.toml")
    pi0, lam = fam.params
    g = Geometry(fam, cache=False).fisher
    p0, l0 = 0.3, 2.3

    def prob(k):
        return p0 * (k == 0) + (1 - p0) * np.exp(-l0) * l0 ** k / special.factorial(k)

    def scores(k):
        poisson = np.exp(-l0) * l0 ** k / special.factorial(k)
        return np.array([((k == 0) - poisson) / prob(k), (1 - p0) * poisson * (k / l0 - 1) / prob(k)])
    want = sum(np.outer(scores(k), scores(k)) * prob(k) for k in range(80))
    point = {pi0: sp.Rational(3, 10), lam: sp.Rational(23, 10)}
    got = np.array([[float(evaluate(g[i, j], point, 20)) for j in range(2)] for i in range(2)])
    assert np.allclose(got, want, rtol=1e-12)
