"""Reparametrization: the Fisher metric transforms as a tensor, curvature is invariant."""
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as hs

from symgeo import Chart, Geometry, catalog

CHARTS = [("normal", "variance"), ("normal", "natural"), ("normal", "expectation"), ("gamma", "rate"),
          ("gamma", "natural"), ("beta", "natural"), ("bernoulli", "natural"), ("poisson", "natural"),
          ("categorical:k=3", "natural"), ("inverse_gaussian", "natural"), ("lognormal", "variance")]


def _pullback(geo: Geometry, chart_name: str) -> sp.Matrix:
    chart = geo.family.charts[chart_name]
    sub = chart.substitution()
    old = geo.family.params
    jac = sp.Matrix([[sp.diff(sub[p], q) for q in chart.params] for p in old])
    return jac.T * geo.fisher.xreplace(sub) * jac


@pytest.mark.parametrize("name,chart", CHARTS)
def test_fisher_transforms_as_a_tensor(name, chart, geometry):
    direct = geometry(name, chart).fisher
    pulled = _pullback(geometry(name), chart)
    diff = (direct - pulled).applyfunc(lambda e: sp.simplify(sp.expand_func(e)))
    assert diff == sp.zeros(*direct.shape)


@pytest.mark.parametrize("name,chart", CHARTS)
def test_scalar_curvature_is_invariant(name, chart, geometry):
    geo = geometry(name)
    chart_obj = geo.family.charts[chart]
    moved = geo.scalar_curvature.xreplace(chart_obj.substitution())
    assert sp.simplify(sp.expand_func(geometry(name, chart).scalar_curvature - moved)) == 0


def test_normal_reference_values_in_three_charts(geometry):
    v = geometry("normal", "variance")
    mu, var = v.params
    assert v.fisher == sp.Matrix([[1 / var, 0], [0, 1 / (2 * var**2)]])
    t1, t2 = geometry("normal", "natural").params
    expected = sp.Matrix([[-1 / (2 * t2), t1 / (2 * t2**2)], [t1 / (2 * t2**2), 1 / (2 * t2**2) - t1**2 / (2 * t2**3)]])
    assert (geometry("normal", "natural").fisher - expected).applyfunc(sp.simplify) == sp.zeros(2, 2)
    for chart in ("variance", "natural", "expectation"):
        assert geometry("normal", chart).scalar_curvature == -1


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
@settings(max_examples=25, deadline=None)
@given(a=hs.floats(0.2, 3.0), b=hs.floats(-2.0, 2.0), c=hs.floats(0.2, 3.0))
def test_random_affine_chart_preserves_curvature_and_metric(a, b, c):
    """A user-defined chart (mu = a·m + b, sigma = c·s): pulled-back metric and invariant R."""
    fam = catalog.get("normal")
    mu, sigma = fam.params
    m, s = sp.Symbol("m", real=True), sp.Symbol("s", positive=True)
    ra, rb, rc = (sp.Rational(str(round(v, 3))) for v in (a, b, c))
    chart = Chart("affine", (m, s), ((mu, ra * m + rb), (sigma, rc * s)))
    geo = Geometry(fam.reparametrize(chart), cache=False)
    assert geo.fisher == sp.diag(ra**2 / (rc**2 * s**2), 2 / s**2)
    assert geo.scalar_curvature == -1
