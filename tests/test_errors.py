"""Bad input gets a clear error, never a wrong number or a hang."""
import time

import pytest
import sympy as sp

from symgeo import (DomainError, Family, Geometry, IntegrationError, Interval, NonRegularFamilyError,
                    SingularFisherError, UnnormalizedDensityError, catalog)

x = sp.Symbol("x", positive=True)
th = sp.Symbol("theta", positive=True)


def test_uniform_with_free_endpoint_is_non_regular():
    fam = Family("uniform", variables=x, support=Interval(0, th), params=(th,), log_density=-sp.log(th))
    with pytest.raises(NonRegularFamilyError, match="support .* depends on theta"):
        Geometry(fam, cache=False).fisher


def test_pareto_with_free_scale_is_non_regular():
    a, xm = sp.Symbol("a", positive=True), sp.Symbol("xm", positive=True)
    fam = Family("pareto", variables=x, support=Interval(xm, sp.oo), params=(a, xm),
                 log_density=sp.log(a) + a * sp.log(xm) - (a + 1) * sp.log(x))
    with pytest.raises(NonRegularFamilyError, match="xm"):
        Geometry(fam, cache=False).fisher


def test_pareto_with_fixed_scale_is_fine():
    a = sp.Symbol("a", positive=True)
    fam = Family(
        "pareto",
        variables=x,
        support=Interval(1, sp.oo),
        params=(a,),
        log_density=sp.log(a) - (a + 1) * sp.log(x),
    )
    assert Geometry(fam, cache=False).fisher == sp.Matrix([[1 / a**2]])


def test_unnormalized_density_is_refused():
    lam = sp.Symbol("lam", positive=True)
    fam = Family(
        "bad", variables=x, support=Interval(0, sp.oo), params=(lam,), log_density=-lam * x
    )  # missing log(lam)
    with pytest.raises(UnnormalizedDensityError, match="does not integrate to 1"):
        Geometry(fam, cache=False).fisher


def test_normalize_on_request():
    from symgeo.regularity import normalized
    lam = sp.Symbol("lam", positive=True)
    fam = normalized(
        Family("exp", variables=x, support=Interval(0, sp.oo), params=(lam,), log_density=-lam * x)
    )
    assert Geometry(fam, cache=False).fisher == sp.Matrix([[1 / lam**2]])


def test_non_identifiable_parameters_are_reported():
    y = sp.Symbol("y", real=True)
    a, b = sp.Symbol("a", real=True), sp.Symbol("b", real=True)
    fam = Family(
        "sum_mean",
        variables=y,
        support=Interval(),
        params=(a, b),
        log_density=-((y - a - b) ** 2) / 2 - sp.log(2 * sp.pi) / 2,
    )
    with pytest.raises(SingularFisherError, match="not identifiable"):
        Geometry(fam, cache=False).fisher


@pytest.mark.parametrize("values,match", [({"mu": 0, "sigma": -1}, "outside its domain"),
                                          ({"mu": 0, "sigma": 0}, "outside its domain"),
                                          ({"mu": 0}, "missing"), ({"mu": 0, "sigma": 1, "z": 2}, "unknown")])
def test_out_of_domain_points(values, match):
    with pytest.raises(DomainError, match=match):
        catalog.get("normal").check_point(values)


def test_categorical_simplex_constraint():
    with pytest.raises(DomainError, match="violates"):
        catalog.get("categorical:k=3").check_point({"p1": 0.6, "p2": 0.6})
    assert catalog.get("categorical:k=3").check_point({"p1": 0.2, "p2": 0.3})


def test_hard_integral_is_time_bounded():
    """Gumbel with rate-type parameter a (no location/scale chart): bounded, then right or refused."""
    y = sp.Symbol("y", real=True)
    a = sp.Symbol("a", positive=True)
    fam = Family(
        "gumbel_rate",
        variables=y,
        support=Interval(),
        params=(a,),
        log_density=sp.log(a) - y - a * sp.exp(-y),
    )
    start = time.time()
    try:
        g = Geometry(fam, cache=False, timeout=1).fisher
    except IntegrationError as exc:
        assert "ExponentialFamily" in str(exc) and "time" in str(exc)
    else:
        assert sp.simplify(g[0, 0] - 1 / a**2) == 0
    assert time.time() - start < 60


def test_integral_that_sympy_cannot_do_is_refused_with_advice():
    """A constant with no closed form in the identification basis: clear error, no number."""
    y = sp.Symbol("y", real=True)
    m = sp.Symbol("m", real=True)
    z = y - m
    c = sp.log(2 * sp.gamma(sp.Rational(5, 4)))  # ∫ exp(-z^4) dz = 2 Γ(5/4)
    fam = Family("quartic", variables=y, support=Interval(), params=(m,), log_density=-z**4 - c)
    try:
        g = Geometry(fam, cache=False, timeout=2).fisher
    except IntegrationError as exc:
        assert "no closed form" in str(exc) or "ExponentialFamily" in str(exc)
    else:  # E[(4 z^3)^2] = 16 E[z^6] = 16 Γ(7/4)/Γ(1/4)
        assert (
            abs(float(g[0, 0]) - float(16 * sp.gamma(sp.Rational(7, 4)) / sp.gamma(sp.Rational(1, 4))))
            < 1e-12
        )


def test_unknown_catalog_name_and_options():
    from symgeo import UnknownFamilyError
    with pytest.raises(UnknownFamilyError, match="unknown family"):
        catalog.get("nope")
    with pytest.raises(UnknownFamilyError, match="takes no option"):
        catalog.get("normal:k=3")
    with pytest.raises(UnknownFamilyError, match="integer"):
        catalog.get("categorical:k=1")
    with pytest.raises(UnknownFamilyError, match="whole number"):
        catalog.get("categorical:k=abc")


def test_a_poisson_regression_with_one_covariate_value_is_reported_non_identifiable():
    """λ = exp(b0 + 2 b1): the series close (e^{x·c}/x! read as u^x/x!) and the message names the
    direction (−2, 1), not a summation failure."""
    from symgeo.spec import family_from_dict
    spec = {"name": "poisson_regression", "variable": "y", "support": "naturals",
            "density": "exp(-exp(b0 + 2*b1)) * exp(b0 + 2*b1)**y / factorial(y)",
            "params": {"b0": "real", "b1": "real"}}
    with pytest.raises(SingularFisherError, match=r"along \(-2, 1\)"):
        Geometry(family_from_dict(spec)).fisher
    spec.update(density="exp(-exp(b0)) * exp(b0)**y / factorial(y)", params={"b0": "real"})
    g = Geometry(family_from_dict(spec)).fisher
    assert sp.simplify(g[0, 0] - sp.exp(sp.Symbol("b0", real=True))) == 0
