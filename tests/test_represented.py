"""Integral/Sum entries in generated numpy and torch functions, against scipy quadrature, direct
summation and finite differences written here."""
import math

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
