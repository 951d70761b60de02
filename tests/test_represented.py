"""Integral/Sum entries in generated numpy and torch functions, against scipy quadrature, direct
summation and finite differences written here."""
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy import integrate

from numeric.codegen import generate
from numeric.represented import RepresentationError

t = sp.Symbol("t", real=True)
a, m = sp.Symbol("a", positive=True), sp.Symbol("m", real=True)
k = sp.Symbol("k", integer=True)
p = sp.Symbol("p", positive=True)

CASES = [  # (integral in t with parameters a, m; scipy's integrand; limits)
    (sp.Integral(t ** (a - 1) * sp.log(t) ** 2 * (1 - t) ** m ** 2, (t, 0, 1)),
     lambda x, av, mv: x ** (av - 1) * math.log(x) ** 2 * (1 - x) ** mv ** 2, (0, 1)),
    (sp.Integral(t ** a * sp.exp(-t) * sp.log(1 + t * m ** 2), (t, 0, sp.oo)),
     lambda x, av, mv: x ** av * math.exp(-x) * math.log1p(x * mv ** 2), (0, np.inf)),
    (sp.Integral(sp.exp(-(t - m) ** 2 / 2) / (1 + a * t ** 2), (t, -sp.oo, sp.oo)),
     lambda x, av, mv: math.exp(-(x - mv) ** 2 / 2) / (1 + av * x * x), (-np.inf, np.inf)),
    (sp.Integral((1 + t ** 2) ** (-a - 1) * (1 + m ** 2 * t ** 2), (t, -sp.oo, sp.oo)),
     lambda x, av, mv: (1 + x * x) ** (-av - 1) * (1 + mv ** 2 * x * x), (-np.inf, np.inf)),
]


def _scipy(fn, limits, av, mv):
    value, _ = integrate.quad(fn, *limits, args=(av, mv), epsabs=0, epsrel=1e-13, limit=400)
    return value


@pytest.mark.parametrize("case", range(len(CASES)))
def test_integral_entries_match_scipy_quadrature_at_random_points(case):
    atom, fn, limits = CASES[case]
    expr = 2 * atom + a  # an entry mixing a representation and a closed part
    rng = np.random.default_rng(case)
    av, mv = rng.uniform(0.6, 3.0, 5), rng.uniform(-1.5, 1.5, 5)
    f = generate([a, m], expr)
    values, errors = f.with_error(av, mv)
    reference = np.array([2 * _scipy(fn, limits, x, y) + x for x, y in zip(av, mv)])
    assert np.allclose(values, reference, rtol=1e-10, atol=0)
    assert np.all(errors < 1e-8 * np.abs(reference))
    assert values[2] == pytest.approx(float(f(av[2], mv[2])), rel=1e-14)  # batch = one by one


def test_series_entries_match_direct_summation():
    series = sp.Sum(k ** 2 * p ** k * (1 - p) / (1 + k), (k, 0, sp.oo))
    f = generate([p], series + 1)
    ps = np.array([0.1, 0.5, 0.9, 0.99])
    reference = [math.fsum(j ** 2 * q ** j * (1 - q) / (1 + j) for j in range(20000)) + 1 for q in ps]
    assert np.allclose(f(ps), reference, rtol=1e-11)
    finite = generate([p], sp.Sum(p ** k / sp.factorial(k), (k, 0, 10)))
    assert float(finite(0.7)) == pytest.approx(math.fsum(0.7 ** j / math.factorial(j) for j in range(11)), rel=1e-14)


def test_torch_values_and_gradients_differentiate_under_the_sign():
    torch = pytest.importorskip("torch")
    atom = CASES[2][0]
    ft, fn = generate([a, m], atom, "torch"), generate([a, m], atom)
    av = torch.tensor([0.7, 1.9], dtype=torch.float64, requires_grad=True)
    mv = torch.tensor([0.3, -1.1], dtype=torch.float64, requires_grad=True)
    out = ft(av, mv)
    out.sum().backward()
    assert np.allclose(out.detach().numpy(), fn(av.detach().numpy(), mv.detach().numpy()), rtol=1e-13)
    h = 1e-6
    for x, y, ga, gm in zip(av.detach().numpy(), mv.detach().numpy(), av.grad.numpy(), mv.grad.numpy()):
        da = (_scipy(CASES[2][1], CASES[2][2], x + h, y) - _scipy(CASES[2][1], CASES[2][2], x - h, y)) / (2 * h)
        dm = (_scipy(CASES[2][1], CASES[2][2], x, y + h) - _scipy(CASES[2][1], CASES[2][2], x, y - h)) / (2 * h)
        assert ga == pytest.approx(da, rel=1e-6) and gm == pytest.approx(dm, rel=1e-6)


def test_overflow_far_in_a_tail_is_dropped_but_not_where_it_matters():
    # (1 + e^{2t}) e^{-3t}: e^{2t} overflows far out where the product has long decayed
    decayed = generate([a], sp.Integral((1 + sp.exp(2 * t)) * sp.exp(-3 * a * t), (t, 0, sp.oo)))
    av = np.array([1.0, 2.0])
    assert np.allclose(decayed(av), 1 / (3 * av) + 1 / (3 * av - 2), rtol=1e-11)
    growing = generate([a], sp.Integral(sp.exp(2 * t) * sp.exp(-a * t), (t, 0, sp.oo)))  # diverges for a < 2
    with pytest.raises(RepresentationError):
        growing(1.0)


def test_slow_series_is_an_error_not_a_number():
    f = generate([p], sp.Sum(1 / (k + 1) ** (1 + p), (k, 0, sp.oo)))
    with pytest.raises(RepresentationError, match="did not converge"):
        f(0.01)


def test_represented_family_fisher_matches_mpmath_evaluation():
    from symgeo import Geometry
    from symgeo.expectation.representation import evaluate, is_represented
    from symgeo.load import load_family
    fam = load_family("derivations/families/exponential_mixture.toml")
    g = Geometry(fam).fisher
    assert any(is_represented(e) for e in g)
    f = generate(fam.params, g)
    for w in (0.15, 0.5, 0.85):
        point = {fam.params[0]: sp.Rational(str(w))}
        assert float(f(w)[0, 0]) == pytest.approx(float(evaluate(g[0, 0], point, 30)), rel=1e-12)


# -- spec families whose Fisher is an integral or a series, through numeric.compile -----------------
FAMILIES = Path(__file__).resolve().parents[1] / "derivations" / "families"


def _fisher_by_scores(log_density, point, limits):
    """E[s sᵀ] with s the autograd score of a log-density written here (torch), by scipy quadrature."""
    torch = pytest.importorskip("torch")

    def score_and_density(x):
        theta = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        log_p = log_density(torch.tensor(x, dtype=torch.float64), *theta)
        (score,) = torch.autograd.grad(log_p, theta)
        return score.numpy(), math.exp(float(log_p.detach()))
    n = len(point)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            def entry(x, i=i, j=j):
                score, density = score_and_density(x)
                return density * score[i] * score[j]
            out[i, j] = out[j, i] = integrate.quad(entry, *limits, limit=400, epsabs=1e-14, epsrel=1e-11)[0]
    return out


@pytest.mark.slow  # the skew normal's derivation, cold, is most of its 18 s
def test_skew_normal_and_generalized_exponential_where_floating_point_drops_nodes():
    """1 + erf(αz/√2) rounds to 0 in the left tail (generated as erfc(−αz/√2) now) and the generalized
    exponential's (e^z − 1)^α underflows (expm1): both used to fail at the family's own sample point."""
    torch = pytest.importorskip("torch")
    from numeric import compile as compile_family

    def skew_normal(x, xi, omega, alpha):
        z = (x - xi) / omega
        return math.log(2) - z ** 2 / 2 - 0.5 * math.log(2 * math.pi) - torch.log(omega) + torch.special.log_ndtr(
            alpha * z)

    def generalized_exponential(x, alpha, lam):
        return torch.log(alpha * lam) + (alpha - 1) * torch.log(-torch.expm1(-lam * x)) - lam * x

    for spec, log_density, limits, points in (
        ("skew_normal.toml", skew_normal, (-np.inf, np.inf), [(0.0, 1.0, 2.0), (0.0, 1.0, 30.0)]),
        ("generalized_exponential.toml", generalized_exponential, (0, np.inf), [(1.3, 0.7)]),
    ):
        c = compile_family(str(FAMILIES / spec))
        for point in points:
            got = np.asarray(c.fisher(*point))
            np.testing.assert_allclose(got, _fisher_by_scores(log_density, point, limits), rtol=1e-7, atol=1e-12)


def test_count_series_whose_terms_overflow_or_underflow():
    """Γ(r + x)/x! overflows from x = 171 (the negative binomial with free r: Γ products are generated as
    one exp of log Γ sums) and the zero-inflated Poisson's p′²/p is 0/0 once p underflows (terms dropped
    where the terms before them are negligible): against sums written here in log space."""
    from numeric import compile as compile_family
    from scipy.special import digamma, gammaln

    def nb_fisher(r, q):
        x = np.arange(0, 20000.0)
        log_p = gammaln(r + x) - gammaln(x + 1) - gammaln(r) + r * math.log(q) + x * math.log1p(-q)
        scores = np.stack([digamma(r + x) - digamma(r) + math.log(q), r / q - x / (1 - q)])
        return (np.exp(log_p) * scores) @ scores.T

    def zip_fisher(pi0, lam):
        x = np.arange(0, 400.0)
        poisson = np.exp(x * math.log(lam) - lam - gammaln(x + 1))
        p = (1 - pi0) * poisson + pi0 * (x == 0)
        kept = p > 0  # beyond, p underflows and so does its share
        x, poisson, p = x[kept], poisson[kept], p[kept]
        scores = np.stack([((x == 0) - poisson) / p, (1 - pi0) * poisson * (x / lam - 1) / p])
        return (p * scores) @ scores.T

    nb = compile_family(str(FAMILIES / "negative_binomial_r.toml"))
    for point in [(1.3, 0.5), (0.13, 0.05), (30.0, 0.9)]:
        np.testing.assert_allclose(np.asarray(nb.fisher(*point)), nb_fisher(*point), rtol=1e-8)
    zero_inflated = compile_family(str(FAMILIES / "zero_inflated_poisson.toml"))
    for point in [(0.3, 0.7), (0.03, 0.07), (0.5, 50.0)]:
        np.testing.assert_allclose(np.asarray(zero_inflated.fisher(*point)), zip_fisher(*point), rtol=1e-8,
                                   atol=1e-14)


@pytest.mark.slow  # 19 s: summing at a working precision, and the mpmath reference
def test_a_power_law_series_is_summed_at_a_working_precision():
    """The Yule–Simon's Fisher: terms decaying like x⁻³ log² x do not settle in 2¹⁶ floating-point terms; the
    series is summed at a working precision instead (numpy), checked against 1/ρ² − ψ′(ρ+1) + E ψ′(x+ρ+1)
    summed by mpmath's Euler–Maclaurin here (a second route); torch with gradients is refused."""
    import mpmath
    from numeric import compile as compile_family
    c = compile_family(str(FAMILIES / "yule_simon.toml"))
    for rho in (2.0,):
        with mpmath.workdps(30):
            r = mpmath.mpf(rho)
            tail = mpmath.nsum(lambda x: r * mpmath.beta(x, r + 1) * mpmath.psi(1, x + r + 1), [1, mpmath.inf],
                               method="euler-maclaurin")
            want = float(1 / r ** 2 - mpmath.psi(1, r + 1) + tail)
        assert float(np.asarray(c.fisher(rho))[0, 0]) == pytest.approx(want, rel=1e-9)
    torch = pytest.importorskip("torch")
    on_torch = compile_family(str(FAMILIES / "yule_simon.toml"), "torch")
    with pytest.raises(RepresentationError, match="no gradient"):
        on_torch.fisher(torch.tensor([2.0], dtype=torch.float64, requires_grad=True))


def test_zero_inflated_poisson_christoffel_symbols_against_differences_of_its_metric():
    """Its Christoffel symbols' series have terms that turn 0/0 at x = 17 (at λ = 0.7) while the terms before
    decay geometrically (ratio ~0.06): dropped with their bounded tail; Γ^k_ij against central differences of
    the generated metric, g^{kl} (∂_i g_lj + ∂_j g_li − ∂_l g_ij) / 2."""
    from numeric import compile as compile_family
    c = compile_family(str(FAMILIES / "zero_inflated_poisson.toml"))
    point, h = np.array([0.3, 0.7]), 1e-5
    derivatives = [(np.asarray(c.fisher(*(point + h * e))) - np.asarray(c.fisher(*(point - h * e)))) / (2 * h)
                   for e in np.eye(2)]
    dg = np.stack(derivatives)  # dg[i, j, k] = ∂_i g_jk
    first_kind = 0.5 * (np.einsum("ilj->lij", dg) + np.einsum("jli->lij", dg) - dg)  # [l, i, j]
    want = np.einsum("kl,lij->kij", np.linalg.inv(np.asarray(c.fisher(*point))), first_kind)
    np.testing.assert_allclose(np.asarray(c.christoffel(*point)), want, rtol=1e-6, atol=1e-9)
