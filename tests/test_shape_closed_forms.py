"""Closed forms for families with shape parameters, each against a source written here: a normal
transform (Birnbaum–Saunders, against Lemonte, Cribari-Neto & Vasconcellos 2007), SymPy's integrate
with the shape free (the skew-normal's moments, against Azzalini's form and mpmath quadrature), and
the field algebra's canonical atoms (the truncated normal's curvature, against Brioschi's formula
applied to SymPy derivatives of the metric)."""
from pathlib import Path

import mpmath
import pytest
import sympy as sp

from symgeo import Geometry
from symgeo.algebra import DiffField
from symgeo.expectation.bounded import bounded_integrate
from symgeo.expectation.representation import evaluate
from symgeo.expectation.transform import expect_normal, normal_transform
from symgeo.load import load_family
from symgeo.support import Interval

FAMILIES = Path(__file__).resolve().parent.parent / "derivations" / "families"
z = sp.Symbol("z", positive=True)
alpha = sp.Symbol("alpha", positive=True)
BS_LOGQ = (sp.log(z + 1) - sp.Rational(3, 2) * sp.log(z) - (z + 1 / z - 2) / (2 * alpha ** 2)
           - sp.log(2 * alpha * sp.sqrt(2 * sp.pi)))


def _bs_quadrature(h, a):
    def q(t):
        return (t + 1) * t ** -1.5 * mpmath.exp(-(t + 1 / t - 2) / (2 * a ** 2)) / (2 * a * mpmath.sqrt(2 * mpmath.pi))
    f = sp.lambdify(z, h, "mpmath")
    return mpmath.quad(lambda t: f(t) * q(t), [0, 1, mpmath.inf])


def test_birnbaum_saunders_law_is_a_normal_transform():
    samples = [{alpha: sp.Rational(7, 10)}, {alpha: sp.Rational(13, 10)}]
    t = normal_transform(BS_LOGQ, z, Interval(0, sp.oo), samples)
    assert t is not None
    assert sp.simplify(t.g - (sp.sqrt(z) - 1 / sp.sqrt(z)) / alpha) == 0
    for h in (z / (z + 1) ** 2, 1 / (z + 1) ** 2, z ** 2, 1 / z):
        value = expect_normal(t, h, 30)
        assert value is not None and not value.has(sp.Integral)
        for a in (0.4, 1.1, 2.5):
            exact = complex(sp.N(value.subs(alpha, a), 25))
            assert abs(exact.imag) < 1e-20
            assert exact.real == pytest.approx(float(_bs_quadrature(h, a)), rel=1e-12)


@pytest.mark.parametrize("logq", [
    sp.log(z) * 2 - z,  # a gamma law: no quadratic part with an interior maximum
    -(z - 1) ** 2 / 2 + sp.log(1 + sp.erf(alpha * z)),  # skew-normal-like: the Jacobian check fails
])
def test_laws_that_are_not_normal_transforms_are_refused(logq):
    assert normal_transform(logq, z, Interval(0, sp.oo), [{alpha: sp.Rational(1, 2)}]) is None


def _lemonte_bs_fisher(a, b):
    """Lemonte, Cribari-Neto & Vasconcellos (2007): K_αα = 2/α², K_αβ = 0,
    K_ββ = (1 + α(2π)^{-1/2} h(α))/(α²β²), h(α) = α√(π/2) − π e^{2/α²}(1 − Φ(2/α))."""
    h = a * mpmath.sqrt(mpmath.pi / 2) - mpmath.pi * mpmath.exp(2 / a ** 2) * mpmath.ncdf(-2 / a)
    return [[2 / a ** 2, 0], [0, (1 + a * h / mpmath.sqrt(2 * mpmath.pi)) / (a ** 2 * b ** 2)]]


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_birnbaum_saunders_fisher_is_the_literature_closed_form():
    geo = Geometry(load_family(str(FAMILIES / "birnbaum_saunders.toml")))
    g = geo.fisher
    assert not g.has(sp.Integral)
    assert any("normal transform" in note for note in geo.notes)
    a_sym, b_sym = geo.params
    for a, b in ((0.3, 1.7), (1.0, 0.5), (2.4, 3.0)):
        want = _lemonte_bs_fisher(mpmath.mpf(a), mpmath.mpf(b))
        for i in range(2):
            for j in range(2):
                got = complex(sp.N(g[i, j].subs({a_sym: a, b_sym: b}), 25))
                assert got.real == pytest.approx(float(want[i][j]), rel=1e-12, abs=1e-14)


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_skew_normal_moments_close_and_only_azzalinis_integrals_remain():
    """Azzalini (1985): I_μμ = (1 + α² a₀)/σ², I_σσ = (2 + α² a₂)/σ², I_αα = a₂ with
    a_k = E[Z^k (φ(αZ)/Φ(αZ))²]; the Gaussian and skew-normal moments around them close."""
    geo = Geometry(load_family(str(FAMILIES / "skew_normal.toml")))
    g = geo.fisher
    mu, sigma, al = geo.params
    integrals = set().union(*(e.atoms(sp.Integral) for e in g))
    assert len(integrals) == 3  # a₀, a₁, a₂

    def a_k(k, av):
        def f(t):
            phi, Phi = mpmath.npdf(t), mpmath.ncdf(av * t)
            return t ** k * 2 * phi * Phi * (mpmath.npdf(av * t) / Phi) ** 2
        return mpmath.quad(f, [-mpmath.inf, 0, mpmath.inf])
    for av, sv in ((0.8, 1.3), (-1.7, 0.6)):
        point = {mu: sp.Float(0.2), sigma: sp.Float(sv), al: sp.Float(av)}
        a0, a2 = a_k(0, av), a_k(2, av)
        assert float(evaluate(g[0, 0], point)) == pytest.approx(float((1 + av ** 2 * a0) / sv ** 2), rel=1e-10)
        assert float(evaluate(g[1, 1], point)) == pytest.approx(float((2 + av ** 2 * a2) / sv ** 2), rel=1e-10)
        assert float(evaluate(g[2, 2], point)) == pytest.approx(float(a2), rel=1e-10)


def test_an_odd_integrand_over_the_line_is_zero_without_integrating():
    t = sp.Symbol("t", real=True)
    odd = t ** 5 * sp.erf(alpha * t) * sp.exp(-t ** 2) * sp.cos(t) * sp.erf(t)
    assert bounded_integrate(odd, t, Interval(-sp.oo, sp.oo), 5) == 0


def test_exponentials_of_one_monomial_share_a_generator():
    mu, sigma = sp.symbols("mu sigma", positive=True)
    half = sp.exp(mu ** 2 / (2 * sigma ** 2))
    F = DiffField([sp.exp(mu ** 2 / sigma ** 2), sp.exp(-mu ** 2 / (2 * sigma ** 2)),
                   sp.exp((mu - 2) ** 2 / (2 * sigma ** 2)), sp.erf(sp.sqrt(2) * (mu - 2) / (2 * sigma))], (mu, sigma))
    exps = [a for a in F.atoms if isinstance(a, sp.exp)]
    assert len(exps) == 3  # exp(μ²/2σ²), exp(μ/σ²), exp(1/σ²)
    assert F.to_field(sp.exp(3 * mu ** 2 / (2 * sigma ** 2))) == F.to_field(half) ** 3
    same = sp.erf(sp.sqrt(2) * mu / (2 * sigma) - sp.sqrt(2) / sigma)
    assert F.to_field(same) == F.to_field(sp.erf(sp.sqrt(2) * (mu - 2) / (2 * sigma)))


def _brioschi_scalar(g, u, v, point):
    """2K from Brioschi's formula with SymPy derivatives of the metric entries (not symgeo's field)."""
    E, F, G = g[0, 0], g[0, 1], g[1, 1]

    def n(e):
        return sp.N(e.xreplace(point), 30)

    def d(e, *args):
        return n(sp.diff(e, *args))
    m1 = sp.Matrix([[-d(E, v, v) / 2 + d(F, u, v) - d(G, u, u) / 2, d(E, u) / 2, d(F, u) - d(E, v) / 2],
                    [d(F, v) - d(G, u) / 2, n(E), n(F)], [d(G, v) / 2, n(F), n(G)]])
    m2 = sp.Matrix([[0, d(E, v) / 2, d(G, u) / 2], [d(E, v) / 2, n(E), n(F)], [d(G, u) / 2, n(F), n(G)]])
    return 2 * (m1.det() - m2.det()) / (n(E) * n(G) - n(F) ** 2) ** 2


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_truncated_normal_with_both_parameters_free_has_its_curvature():
    geo = Geometry(load_family(str(FAMILIES / "truncated_normal_free.toml")))
    mu, sigma = geo.params
    R = geo.scalar_curvature
    for m, s in (("7/10", "13/10"), ("-2/5", "3/5"), ("3/2", "2")):
        point = {mu: sp.Rational(m), sigma: sp.Rational(s)}
        assert float(sp.N(R.xreplace(point), 20)) == pytest.approx(
            float(_brioschi_scalar(geo.fisher, mu, sigma, point)), rel=1e-10)


@pytest.mark.parametrize("name", ["normal", "gamma", "beta", "weibull", "multivariate_normal:d=2",
                                  "multivariate_normal:d=3", "dirichlet:k=3", "von_mises"])
def test_jeffreys_prior_squared_is_the_fisher_determinant(name):
    """√det g taken factor by factor (|p| where a factor's sign is read at sample points)."""
    geo = Geometry(load_family(name))
    point = geo.family.sample_point(1)
    prior = sp.N(geo.jeffreys_prior.xreplace(point), 30)
    assert prior.is_positive
    assert float(prior ** 2) == pytest.approx(float(sp.N(geo.fisher.xreplace(point).det(), 30)), rel=1e-20)


def test_multivariate_normal_jeffreys_is_a_power_of_the_covariance_determinant():
    geo = Geometry(load_family("multivariate_normal:d=4"))
    by_name = {str(p): p for p in geo.params}
    cov = sp.Matrix(4, 4, lambda i, j: by_name[f"s{min(i, j) + 1}{max(i, j) + 1}"])
    # |Σ|^{-(d+2)/2} up to a constant
    ratio = sp.cancel(geo.jeffreys_prior * cov.det() ** 3)
    assert ratio.is_number and ratio > 0


def test_long_polynomials_print_unsorted_and_read_back_equal():
    from symgeo.render import BIG_SUM
    from symgeo.render import text as _str
    xs = sp.symbols("x0:12")
    poly = sp.expand(sum(xs) ** 3)
    assert len(poly.args) > BIG_SUM
    expr = poly / (1 + xs[0] ** 2)
    assert sp.expand(sp.sympify(_str(expr)) * (1 + xs[0] ** 2) - poly) == 0
    assert _str(xs[0] + 1) == "x0 + 1"


def test_closed_forms_outside_the_numeric_backends_stay_integrals():
    """Gompertz's E[z eᶻ] is (1 − e^η Ei(−η))/η: right, but torch has no Ei; the entry stays an
    integral representation that both backends evaluate."""
    geo = Geometry(load_family(str(FAMILIES / "gompertz.toml")))
    assert not geo.fisher.has(sp.Ei, sp.expint, sp.uppergamma, sp.hyper)


# -- curvature of an integral-represented family -----------------------------------------------------
def _gompertz():
    geo = Geometry(load_family(str(FAMILIES / "gompertz.toml")))
    assert geo.fisher.has(sp.Integral) and geo.scalar_curvature.has(sp.Integral)
    return geo


STEP = mpmath.mpf("1e-6")


def _brioschi_by_differences(metric, u, v, h=STEP):
    """2K from Brioschi's formula, every derivative a central difference of the numeric metric."""
    def at(du, dv):
        return metric(u + du * h, v + dv * h)
    m = {(a, b): at(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)}
    E, F, G = (lambda a, b: m[a, b][0]), (lambda a, b: m[a, b][1]), (lambda a, b: m[a, b][2])

    def d1(f, axis):
        return (f(*axis) - f(-axis[0], -axis[1])) / (2 * h)

    def d2(f, axis):
        return (f(*axis) - 2 * f(0, 0) + f(-axis[0], -axis[1])) / h ** 2

    def duv(f):
        return (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1)) / (4 * h ** 2)
    U, V = (1, 0), (0, 1)
    e, f, g = E(0, 0), F(0, 0), G(0, 0)
    m1 = mpmath.matrix([[-d2(E, V) / 2 + duv(F) - d2(G, U) / 2, d1(E, U) / 2, d1(F, U) - d1(E, V) / 2],
                        [d1(F, V) - d1(G, U) / 2, e, f], [d1(G, V) / 2, f, g]])
    m2 = mpmath.matrix([[0, d1(E, V) / 2, d1(G, U) / 2], [d1(E, V) / 2, e, f], [d1(G, U) / 2, f, g]])
    return 2 * (mpmath.det(m1) - mpmath.det(m2)) / (e * g - f * f) ** 2


def test_curvature_of_an_integral_representation_matches_differences_of_the_numeric_metric():
    """Gompertz: R differentiated under the integral sign (symbolically) against Brioschi's formula on
    finite differences of the metric evaluated by quadrature."""
    geo = _gompertz()
    eta, b = geo.params
    g = geo.fisher

    def metric(u, v):
        point = {eta: sp.Float(mpmath.nstr(u, 30), 30), b: sp.Float(mpmath.nstr(v, 30), 30)}
        return [evaluate(g[0, 0], point, 30), evaluate(g[0, 1], point, 30), evaluate(g[1, 1], point, 30)]
    with mpmath.workdps(30):
        for u, v in (("0.7", "1.3"), ("1.9", "0.6")):
            want = _brioschi_by_differences(metric, mpmath.mpf(u), mpmath.mpf(v))
            got = evaluate(geo.scalar_curvature, {eta: sp.Rational(u), b: sp.Rational(v)}, 30)
            assert float(got) == pytest.approx(float(want), rel=1e-9)


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_curvature_of_an_integral_representation_is_chart_invariant():
    """The same Gompertz law declared with the scale s = 1/b: R(η, s) = R(η, 1/s)."""
    from symgeo.spec import family_from_dict
    geo = _gompertz()
    eta, b = geo.params
    other = Geometry(family_from_dict({
        "name": "gompertz_scale", "variable": "x", "support": "positive",
        "density": "eta/s*exp(eta + x/s - eta*exp(x/s))", "params": {"eta": "positive", "s": "positive"}}))
    assert other.scalar_curvature.has(sp.Integral)
    eta2, s = other.params
    for u, v in (("7/10", "13/10"), ("19/10", "3/5")):
        here = evaluate(geo.scalar_curvature, {eta: sp.Rational(u), b: sp.Rational(v)}, 25)
        there = evaluate(other.scalar_curvature, {eta2: sp.Rational(u), s: 1 / sp.Rational(v)}, 25)
        assert float(there) == pytest.approx(float(here), rel=1e-10)


def test_expectations_are_remembered_by_law_and_integrand(tmp_path, monkeypatch):
    """A second process asking for E[h] under the same law reads it back (the skewness stage asks for
    most of what the Fisher stage computed); a corrupt entry is recomputed, not trusted."""
    from symgeo.expectation import dispatch
    monkeypatch.setenv("SYMGEO_CACHE_DIR", str(tmp_path))
    fam = load_family(str(FAMILIES / "skew_normal.toml"))
    mu, sigma, _ = fam.params
    h = (fam.variables[0] - mu) ** 2 / sigma ** 2
    first = dispatch.expectations(fam, [h]).values[0]
    entries = list(tmp_path.rglob("expect_*.pkl"))
    assert entries

    def refuse(self, h):
        raise AssertionError("recomputed")
    monkeypatch.setattr(dispatch._Law, "_compute", refuse)
    assert sp.simplify(dispatch.expectations(fam, [h]).values[0] - first) == 0
    for entry in entries:
        entry.write_bytes(b"0" * 64 + b"\n" + b"not a pickle")
    with pytest.raises(AssertionError, match="recomputed"):
        dispatch.expectations(fam, [h])


def test_a_representation_for_want_of_time_is_not_remembered(tmp_path, monkeypatch):
    from symgeo.expectation import dispatch
    monkeypatch.setenv("SYMGEO_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(dispatch, "SHAPE_BUDGET", 0.0)
    fam = load_family(str(FAMILIES / "skew_normal.toml"))
    mu, sigma, _ = fam.params
    value = dispatch.expectations(fam, [(fam.variables[0] - mu) ** 3 / sigma ** 3]).values[0]
    assert value.has(sp.Integral)
    assert not list(tmp_path.rglob("expect_*.pkl"))
