"""The vetted reference table (vendored as tests/data/references.json): symgeo's formulas against it."""
import json
from pathlib import Path

import pytest
import sympy as sp

TABLE = Path(__file__).resolve().parent / "data" / "references.json"


def _refs():
    return {r["id"]: r for r in json.loads(TABLE.read_text())["references"]}


def _value(geo, point):
    return [float(sp.N(e.xreplace(point), 20)) for row in geo.fisher.tolist() for e in row]


def _flat(rows):
    return [float(v) for row in rows for v in row]


def _point(geo, named):
    by_name = {str(p): p for p in geo.params}
    return {by_name[k]: sp.nsimplify(v) for k, v in named.items() if k in by_name}


@pytest.mark.parametrize("ref_id,family,chart", [
    ("normal.fisher.mu_sigma", "normal", None), ("normal.fisher.mu_var", "normal", "variance"),
    ("gamma.fisher", "gamma", "rate"), ("beta.fisher", "beta", None)])
def test_fisher_examples(ref_id, family, chart, geometry):
    ref = _refs()[ref_id]
    geo = geometry(family, chart)
    for ex in ref["examples"]:
        named = dict(ex["inputs"])
        if chart == "variance":
            named = {"mu": named["mu"], "v": named["v"]}
        got = _value(geo, _point(geo, named))
        assert got == pytest.approx(_flat(ex["output"]), rel=1e-10)


def test_normal_natural_fisher_example(geometry):
    ex = _refs()["normal.fisher.natural"]["examples"][0]
    geo = geometry("normal", "natural")
    got = _value(geo, _point(geo, {"theta1": ex["inputs"]["theta1"], "theta2": ex["inputs"]["theta2"]}))
    assert got == pytest.approx(_flat(ex["output"]), rel=1e-10)


def test_normal_christoffel_and_curvature(geometry):
    geo = geometry("normal")
    sigma = geo.params[1]
    ex = _refs()["normal.christoffel.lc.mu_sigma"]["examples"][0]["output"]
    gam = geo.christoffel().subs(sigma, 2)
    assert float(gam[0, 0, 1]) == pytest.approx(float(ex["G^mu_mu,sigma"]))
    assert float(gam[1, 0, 0]) == pytest.approx(float(ex["G^sigma_mu,mu"]))
    assert float(gam[1, 1, 1]) == pytest.approx(float(ex["G^sigma_sigma,sigma"]))
    curv = _refs()["normal.curvature"]["examples"][0]["output"]
    assert float(geo.gaussian_curvature) == float(curv["K"]) and float(geo.scalar_curvature) == float(curv["R"])


def test_scalar_examples(geometry):
    refs = _refs()
    lam = geometry("poisson").params[0]
    assert float(geometry("poisson").fisher[0].subs(lam, 3.7)) == pytest.approx(float(refs["poisson.fisher"]["examples"][0]["output"]))
    p = geometry("bernoulli").params[0]
    f = geometry("bernoulli").fisher[0]
    assert f.subs(p, sp.Rational(1, 10)) / f.subs(p, sp.Rational(1, 2)) == sp.Rational(25, 9)


def test_dirichlet_examples(geometry):
    geo = geometry("dirichlet:k=3")
    ref = _refs()["dirichlet.fisher"]["examples"]
    point = dict(zip(geo.params, (2, 3, 4)))
    g = geo.fisher.xreplace(point)
    assert float(g[0, 0]) == pytest.approx(float(ref[0]["output"]["g11"]), rel=1e-10)
    assert float(g[0, 1]) == pytest.approx(float(ref[0]["output"]["g12"]), rel=1e-10)
    for ex in ref[1:]:
        point = dict(zip(geo.params, ex["inputs"]["alpha"]))
        R = float(sp.N(geo.scalar_curvature.xreplace(point), 20))
        assert R == pytest.approx(float(ex["output"]["scalar_curvature_R"]), rel=1e-9)
