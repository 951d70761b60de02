"""`symgeo kl` for families that are not exponential families: the closed forms of the literature declared
with Cauchy, Laplace and Weibull, typed here independently, and the quadrature route that checks them."""
import json
import math

import numpy as np
import pytest
from scipy import special

from symgeo.cli import main


def _kl(capsys, family, first, second):
    assert main(["kl", family, "--from", first, "--to", second, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "declared closed form" and out["formula"]
    by_quadrature = _quadrature(family, first, second)
    assert by_quadrature.value == pytest.approx(out["kl"], rel=1e-12) and by_quadrature.error < 1e-12
    return out["kl"]


def _quadrature(family, first, second):
    from symgeo.divergence import _numeric
    from symgeo.load import load_family, parse_point
    fam = load_family(family)
    return _numeric(fam, "kl", parse_point(first, fam), parse_point(second, fam), None)


def test_cauchy_kl_is_the_closed_form(capsys):
    # Chyzak & Nielsen (2019): log(((γ1 + γ2)² + (x1 − x2)²) / (4 γ1 γ2))
    expected = math.log(((1 + 3) ** 2 + (0 - 2) ** 2) / (4 * 1 * 3))
    assert _kl(capsys, "cauchy", "x0=0,gamma=1", "x0=2,gamma=3") == pytest.approx(expected, rel=1e-12)


def test_laplace_kl_is_the_closed_form(capsys):
    m1, b1, m2, b2 = 0.0, 1.0, 1.0, 2.0
    expected = math.log(b2 / b1) + abs(m1 - m2) / b2 + b1 / b2 * math.exp(-abs(m1 - m2) / b1) - 1
    assert _kl(capsys, "laplace", "mu=0,b=1", "mu=1,b=2") == pytest.approx(expected, rel=1e-12)


def test_weibull_kl_is_the_closed_form(capsys):
    k1, l1, k2, l2 = 2.0, 1.0, 3.0, 2.0
    expected = (math.log(k1 / l1 ** k1) - math.log(k2 / l2 ** k2) + (k1 - k2) * (math.log(l1) - np.euler_gamma / k1)  # noqa: E501
                + (l1 / l2) ** k2 * special.gamma(k2 / k1 + 1) - 1)
    assert _kl(capsys, "weibull", "k=2,lam=1", "k=3,lam=2") == pytest.approx(expected, rel=1e-12)


def test_exponential_families_still_give_the_closed_form(capsys):
    assert main(["kl", "normal", "--from", "mu=0,sigma=1", "--to", "mu=1,sigma=1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "closed form" and out["kl"] == pytest.approx(0.5, rel=1e-15)
