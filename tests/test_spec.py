"""Spec files: declared families derive; malformed or malicious files are refused safely."""
from pathlib import Path

import pytest
import sympy as sp

from symgeo import Geometry, SpecError
from symgeo.spec import family_from_dict, load_spec, parse_expression

DERIVATIONS = Path(__file__).resolve().parents[1] / "derivations"


def test_spec_files_derive_known_metrics():
    g = Geometry(load_spec(DERIVATIONS / "gumbel.toml"), cache=False)
    mu, beta = g.params
    eg = sp.EulerGamma
    expected = sp.Matrix([[1, eg - 1], [eg - 1, (1 - eg) ** 2 + sp.pi**2 / 6]]) / beta**2
    assert (g.fisher - expected).applyfunc(sp.simplify) == sp.zeros(2, 2)
    assert sp.simplify(g.scalar_curvature + 12 / sp.pi**2) == 0
    (a,) = (maxwell := Geometry(load_spec(DERIVATIONS / "maxwell.toml"), cache=False)).params
    assert maxwell.fisher == sp.Matrix([[6 / a**2]])
    (s,) = (half := Geometry(load_spec(DERIVATIONS / "half_normal.toml"), cache=False)).params
    assert half.fisher == sp.Matrix([[2 / s**2]])
    tau = half.in_chart("precision")
    (t,) = tau.params
    assert tau.fisher == sp.Matrix([[1 / (2 * t**2)]])


def test_density_declared_normal_is_recognised_as_exponential_family():
    g = Geometry(load_spec(DERIVATIONS / "normal_by_density.toml"), cache=False)
    assert g.exponential_family is not None and g.fisher_route == "exponential"
    mu, sigma = g.params
    assert g.fisher == sp.diag(1 / sigma**2, 2 / sigma**2)
    assert set(g.exponential_family.stats) == {g.family.variables[0], g.family.variables[0] ** 2}


BASE = {"name": "t", "variable": "x", "support": "reals", "params": {"m": "real"},
        "log_density": "-(x - m)**2/2 - log(2*pi)/2"}


@pytest.mark.parametrize("change,match", [
    ({"log_density": "__import__('os').system('true')"}, "not allowed"),
    ({"log_density": "x.__class__"}, "Attribute"),
    ({"log_density": "9**9**9**9"}, "too large"),
    ({"log_density": "x**(10**6)"}, "exceeds the limit"),
    ({"log_density": "((9**99)**99)**99"}, "digits"),
    ({"log_density": "exp(" * 60 + "x" + ")" * 60}, "nested deeper"),
    ({"log_density": "(" * 300 + "x" + ")" * 300}, "not a valid|nested"),
    ({"log_density": "+".join(["x"] * 2000)}, "longer than|syntax nodes"),
    ({"log_density": "exp(y)"}, "unknown name 'y'"),
    ({"log_density": "lambda: 1"}, "Lambda"),
    ({"log_density": "[x for x in ()]"}, "not allowed"),
    ({"log_density": "f'{x}'"}, "not allowed"),
    ({"log_density": "exp(x, base=2)"}, "keyword"),
    ({"log_density": "1/0"}, "division by zero"),
    ({"params": {"m": "imaginary"}}, "kind must be"),
    ({"params": {"__class__": "real"}}, "not a usable symbol"),
    ({"support": "everywhere"}, "support must be"),
    ({"bogus": 1}, "unknown key"),
    ({"name": ""}, "'name'"),
])
def test_malformed_specs_are_refused(change, match):
    with pytest.raises(SpecError, match=match):
        family_from_dict({**BASE, **change})


def test_file_level_limits(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text("name = 'x'\n" + "# padding\n" * 10000)
    with pytest.raises(SpecError, match="larger than"):
        load_spec(big)
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.toml")


def test_numbers_are_exact():
    x = sp.Symbol("x")
    assert parse_expression("0.1*x", {"x": x}) == sp.Rational(1, 10) * x
    with pytest.raises(SpecError):
        parse_expression("1j", {})
    with pytest.raises(SpecError):
        parse_expression("True", {})


def test_non_regular_spec_is_refused():
    from symgeo import NonRegularFamilyError
    fam = family_from_dict({"name": "uniform", "variable": "x", "support": {"interval": ["0", "theta"]},
                            "params": {"theta": "positive"}, "log_density": "-log(theta)"})
    with pytest.raises(NonRegularFamilyError):
        Geometry(fam, cache=False).fisher
