"""The spec files of families outside the catalog: each derives, passes `verify`, and its Fisher metric
matches an independent source (scipy.stats moments, direct summation, the literature)."""
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

import numeric
from numeric.verify import verify

SPECS = Path(__file__).resolve().parent.parent / "derivations"


@pytest.mark.parametrize("name", [pytest.param("truncated_normal", marks=pytest.mark.slow),
                                  pytest.param("zero_truncated_poisson", marks=pytest.mark.slow), "levy"])
def test_spec_family_passes_verify(name):
    report = verify(str(SPECS / f"{name}.toml"), samples=20_000, seed=0)
    assert report.passed, report.table


def test_truncated_normal_fisher_is_the_variance_of_x():
    family = numeric.compile(str(SPECS / "truncated_normal.toml"))
    for mu in (-0.5, 0.7, 1.0, 3.0):
        expected = stats.truncnorm(-mu, 2 - mu, loc=mu).var()     # g = Var(T) for T = x, θ = μ
        assert float(np.asarray(family.fisher(mu))[0, 0]) == pytest.approx(expected, rel=1e-9)


def test_zero_truncated_poisson_fisher_by_direct_summation():
    family = numeric.compile(str(SPECS / "zero_truncated_poisson.toml"))
    x = np.arange(1, 400)
    for lam in (0.3, 2.0, 15.0):
        p = np.exp(x * np.log(lam) - lam - gammaln(x + 1) - np.log1p(-np.exp(-lam)))
        variance = np.sum(p * x ** 2) - np.sum(p * x) ** 2
        assert float(np.asarray(family.fisher(lam))[0, 0]) == pytest.approx(variance / lam ** 2, rel=1e-9)


def test_levy_fisher_from_the_literature():
    family = numeric.compile(str(SPECS / "levy.toml"))
    for c in (0.5, 2.0):
        assert float(np.asarray(family.fisher(c))[0, 0]) == pytest.approx(1 / (2 * c ** 2), rel=1e-12)
