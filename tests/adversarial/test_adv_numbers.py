"""Class 2: no NaN and no wrong number with exit status 0. Every reference here is computed in the
test (mpmath quadrature, closed forms from the literature), not by symgeo."""
import json
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symgeo import Geometry
from symgeo.divergence import kl, pair_symbols
from symgeo.errors import UnnormalizedDensityError
from symgeo.spec import family_from_dict

SLOW_OK = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_distance_in_a_negative_chart_is_finite_and_right(cli):
    code, out, _ = cli("distance", "exponential", "--chart", "natural", "--from", "theta1=-0.5",
                       "--to", "theta1=-3", "--json")
    assert code == 0 and json.loads(out)["distance"] == pytest.approx(math.log(6), rel=1e-12)


@pytest.fixture(scope="module")
def exponential_natural():
    from numeric.compiled import CompiledFamily
    from symgeo import catalog
    return CompiledFamily(Geometry(catalog.get("exponential").in_chart("natural")))


@SLOW_OK
@given(a=st.floats(-50, -1e-3), b=st.floats(-50, -1e-3))
def test_natural_chart_distance_is_the_log_ratio(exponential_natural, a, b):
    from numeric.geodesic import distance
    # g(θ) = 1/θ²: d = |log(θ₁/θ₂)| on θ < 0
    assert distance(exponential_natural, [a], [b]).value == pytest.approx(abs(math.log(a / b)), rel=1e-9, abs=1e-12)


LINEAR = {"name": "linear", "variable": "x", "support": "unit", "density": "1 + a*(2*x - 1)",
          "params": {"a": {"interval": [-1, 1]}}}


def _fisher_by_quadrature(a: float) -> float:
    return float(mpmath.quad(lambda x: (2 * x - 1) ** 2 / (1 + a * (2 * x - 1)), [0, 1]))


@pytest.fixture(scope="module")
def linear():
    from numeric.compiled import CompiledFamily
    return CompiledFamily(Geometry(family_from_dict(LINEAR)))


@pytest.mark.parametrize("a", [0.0, 1e-12, 1e-9, 1e-6, 1e-4, 1e-3, -1e-3, 0.05, 0.0999, 0.1001, 0.3, -0.7, 0.95])
def test_a_removable_singularity_keeps_its_digits(linear, a):
    """g(a) = −1/a² + (log(1 + a) − log(1 − a))/(2a³): 0/0 at a = 0, where g = 1/3."""
    assert linear.geometry.fisher_route == "score" and not linear.geometry.fisher.has(sp.Integral)
    with np.errstate(all="raise"):
        value = float(linear.fisher(a)[0, 0])
    assert value == pytest.approx(_fisher_by_quadrature(a), rel=1e-11)


@pytest.mark.parametrize("a", [0.0, 1e-7, 0.02, -0.4])
def test_christoffel_near_the_removable_point_matches_finite_differences(linear, a):
    h = 1e-4
    slope = (_fisher_by_quadrature(a + h) - _fisher_by_quadrature(a - h)) / (2 * h)
    expected = slope / (2 * _fisher_by_quadrature(a))  # Γ^a_aa = g'/(2g) in one dimension
    assert float(linear.christoffel(a)[0, 0, 0]) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_a_density_negative_somewhere_in_its_domain_is_refused():
    spec = dict(LINEAR, params={"a": "real"})
    with pytest.raises(UnnormalizedDensityError, match="negative at"):
        _ = Geometry(family_from_dict(spec)).fisher


def test_a_density_normalised_only_at_the_sample_points_is_refused():
    """∫ p = 1 + (mu² − 9/100)/4: one at mu = ±3/10 (the sample points), not elsewhere."""
    spec = {"name": "sneaky", "variable": "x", "support": "reals",
            "density": "(1 + (mu**2 - 9/100)/4)*exp(-(x - mu)**2/2)/sqrt(2*pi)", "params": {"mu": "real"}}
    with pytest.raises(UnnormalizedDensityError, match="does not integrate to 1"):
        _ = Geometry(family_from_dict(spec)).fisher
    with pytest.raises(UnnormalizedDensityError, match="does not integrate to 1"):  # the divergences too
        kl(Geometry(family_from_dict(spec)), *pair_symbols(Geometry(family_from_dict(spec))))


def test_an_exponential_family_with_a_wrong_log_partition_is_refused():
    """A(θ) = θ²/2 + log √(2π) + (θ² − 9/100)/10: right at θ = ±3/10 only."""
    spec = {"name": "wrong_a", "variable": "x", "support": "reals",
            "params": {"mu": "real"},
            "exponential_family": {"natural_of_params": ["mu"], "stats": ["x"],
                                   "log_partition_of_params": "mu**2/2 + log(sqrt(2*pi)) + (mu**2 - 9/100)/10",
                                   "log_base_measure": "-x**2/2"}}
    with pytest.raises(UnnormalizedDensityError, match="does not integrate to 1"):
        _ = Geometry(family_from_dict(spec)).fisher


def test_verify_refuses_too_few_samples(cli):
    for samples in ("0", "-5", "nan"):
        code, _, err = cli("verify", "normal", "--samples", samples)
        assert code == 2 and "--samples" in err


def test_a_parameter_called_alpha_is_not_the_alpha_connection():
    spec = {"name": "beta_alpha", "variable": "x", "support": "unit",
            "log_density": "loggamma(alpha + b) - loggamma(alpha) - loggamma(b) + (alpha - 1)*log(x)"
                           " + (b - 1)*log(1 - x)",
            "params": {"alpha": "real", "b": "positive"}}
    spec["params"]["alpha"] = "positive"
    geo = Geometry(family_from_dict(spec))
    alpha_param = geo.params[0]
    a = geo.alpha_symbol
    assert a.name != "alpha" and a not in geo.params
    symbolic = geo.christoffel(a)
    assert sp.simplify(symbolic.subs(a, 0) - geo.christoffel(0)).is_zero is not False
    assert all(sp.simplify(e1 - e2) == 0 for e1, e2 in zip(sp.flatten(symbolic.subs(a, 1)),
                                                          sp.flatten(geo.christoffel(1))))
    with pytest.raises(ValueError, match="not α"):
        geo.christoffel(alpha_param)


def test_a_parameter_v_mu_beside_mu_keeps_its_own_velocity():
    spec = {"name": "vmu", "variable": "x", "support": "reals",
            "log_density": "-(x - mu)**2/(2*v_mu**2) - log(v_mu) - log(2*pi)/2",
            "params": {"mu": "real", "v_mu": "positive"}}
    geo = Geometry(family_from_dict(spec))
    equations = geo.geodesic_equations()
    mu, v_mu = geo.params
    velocity_names = {s.name for rhs in equations.values() for s in rhs.free_symbols} - {"mu", "v_mu"}
    assert velocity_names == {"v_mu_", "v_v_mu"}
    # the normal in (μ, σ): μ'' = 2 μ' σ'/σ
    assert sp.simplify(equations[mu] - 2 * sp.Symbol("v_mu_", real=True) * sp.Symbol("v_v_mu", real=True) / v_mu) == 0


def test_point_symbols_of_a_divergence_avoid_parameter_names():
    from symgeo.divergence import pair_symbols
    spec = {"name": "clash", "variable": "x", "support": "reals",
            "log_density": "-(x - mu)**2/(2*mu_1**2) - log(mu_1) - log(2*pi)/2",
            "params": {"mu": "real", "mu_1": "positive"}}
    geo = Geometry(family_from_dict(spec))
    first, second = pair_symbols(geo)
    names = [s.name for s in list(first.values()) + list(second.values())]
    assert len(set(names)) == 4 and not set(names) & {"mu", "mu_1"}
