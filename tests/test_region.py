"""Families of several variables in spec files: supports with dependent ranges (0 < x < y, counts
with x + y ≤ n), their normalisation checked across the domain, the geometry against quadrature."""
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy import integrate, special

from numeric import CompiledFamily
from numeric.verify import _region_checks, verify
from symgeo import Geometry
from symgeo.errors import SpecError, UnnormalizedDensityError
from symgeo.spec import family_from_dict, load_spec
from symgeo.support import Region

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
MCKAY = ROOT / "derivations" / "families" / "mckay.toml"


def test_mckay_fisher_matches_the_literature_and_scipy_quadrature():
    fam = load_spec(MCKAY)
    assert isinstance(fam.support, Region) and [str(v) for v in fam.support.variables] == ["x", "y"]
    a, b, c = fam.params
    g = Geometry(fam, cache=False).fisher
    literature = sp.Matrix([[sp.polygamma(1, a), 0, -1 / c], [0, sp.polygamma(1, b), -1 / c],
                            [-1 / c, -1 / c, (a + b) / c ** 2]])  # Arwini & Dodson, McKay bivariate gamma
    assert sp.simplify(g - literature) == sp.zeros(3, 3)
    av, bv, cv = 1.7, 2.4, 0.8  # E[s sᵀ] by scipy's dblquad over 0 < x < y, scores written out here

    def scores(x, y):
        return np.array([np.log(cv) + np.log(x) - special.digamma(av),
                         np.log(cv) + np.log(y - x) - special.digamma(bv), (av + bv) / cv - y])

    def density(x, y):
        return cv ** (av + bv) * x ** (av - 1) * (y - x) ** (bv - 1) * np.exp(-cv * y) / (
            special.gamma(av) * special.gamma(bv))
    for i in range(3):
        for j in range(i, 3):
            value, _ = integrate.dblquad(lambda x, y, i=i, j=j: scores(x, y)[i] * scores(x, y)[j] * density(x, y),
                                         0, np.inf, 0, lambda y: y, epsabs=1e-13, epsrel=1e-11)
            assert float(g[i, j].subs({a: av, b: bv, c: cv})) == pytest.approx(value, rel=1e-8)


def test_a_wrong_log_partition_is_refused():
    fam = load_spec(DATA / "mckay_wrong_partition.toml")
    with pytest.raises(UnnormalizedDensityError, match="does not integrate to 1"):
        _ = Geometry(fam, cache=False).fisher


def test_a_log_partition_wrong_only_away_from_two_points_is_refused():
    """A(ξ) off by (a − 13/10)(a − 7/10)/10: exact at the first two sample points, not elsewhere."""
    decl = {"name": "mckay_sly", "variables": ["x", "y"],
            "support": {"x": {"interval": ["0", "y"]}, "y": "positive"},
            "params": {"a": "positive", "b": "positive", "c": "positive"},
            "exponential_family": {"stats": ["log(x)", "log(y - x)", "y"],
                                   "natural_of_params": ["a - 1", "b - 1", "-c"],
                                   "log_partition_of_params":
                                       "loggamma(a) + loggamma(b) - (a + b)*log(c) + (a - 13/10)*(a - 7/10)/10"}}
    fam = family_from_dict(decl)
    assert {fam.sample_point(k)[fam.params[0]] for k in range(2)} == {sp.Rational(13, 10), sp.Rational(7, 10)}
    with pytest.raises(UnnormalizedDensityError):
        _ = Geometry(fam, cache=False).fisher


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_verify_catches_a_wrong_log_partition_it_is_handed():
    fam = load_spec(DATA / "mckay_wrong_partition.toml")
    report = verify(CompiledFamily(Geometry(fam, cache=False, check=False)), samples=1000)
    failed = {c.name for c in report.checks if c.passed is False}
    assert not report.passed
    assert "density integrates to 1 (quadrature over the region)" in failed
    assert "Fisher vs quadrature E[s sᵀ] over the region" in failed


def test_counts_over_a_triangle():
    """Trinomial with n = 4, p1 = a, p2 = (1 − a) b: g = diag(4/(a(1 − a)), 4(1 − a)/(b(1 − b)))."""
    fam = load_spec(DATA / "trinomial.toml")
    a, b = fam.params
    geo = Geometry(fam, cache=False)
    assert sp.simplify(geo.fisher - sp.diag(4 / (a * (1 - a)), 4 * (1 - a) / (b * (1 - b)))) == sp.zeros(2, 2)
    compiled = CompiledFamily(geo)
    for check in _region_checks(compiled, np.array([0.3, 0.6]), "ξ"):
        assert check.passed, check


@pytest.mark.parametrize("support,message", [
    ({"x": {"interval": ["0", "y"]}, "y": {"interval": ["x", "oo"]}}, "circle"),
    ({"x": {"interval": ["0", "x + 1"]}, "y": "positive"}, "itself"),
    ({"x": "positive"}, "one range per variable"),
])
def test_bad_regions_are_spec_errors(support, message):
    decl = {"name": "bad", "variables": ["x", "y"], "support": support, "params": {"c": "positive"},
            "density": "c*exp(-c*y)"}
    with pytest.raises(SpecError, match=message):
        family_from_dict(decl)
