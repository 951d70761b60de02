"""Geodesics and Fisher–Rao distances: closed forms vs the numeric solver, literature values, properties."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from numeric import CompiledFamily
from numeric.geodesic import GeodesicError, Geodesics, closed_form, distance, exp_map_torch
from symgeo import DomainError, Geometry, catalog

REFERENCES = Path(__file__).resolve().parent / "data" / "references.json"  # vendored


@pytest.fixture(scope="module")
def compiled(geometry):
    memo = {}

    def get(name, chart=None, **fixed):
        key = (name, chart, tuple(fixed.items()))
        if key not in memo:
            memo[key] = CompiledFamily(geometry(name, chart), fixed=fixed or None)
        return memo[key]
    return get


CLOSED_VS_SHOOTING = [
    ("normal", [0, 1], [1, 1]),
    ("normal", [-1, 0.5], [2, 3]),
    ("normal_mean:sigma=2", [0.3], [-1.2]),
    ("poisson", [1.0], [4.0]),
    ("exponential", [0.5], [3.0]),
    ("bernoulli", [0.5], [0.1]),
    ("binomial:n=10", [0.2], [0.7]),
    ("categorical:k=3", [0.7, 0.2], [0.1, 0.2]),
    ("categorical:k=4", [0.1, 0.2, 0.3], [0.4, 0.3, 0.2]),
    ("centered_normal", [1.0, 0.3, 2.0], [2.0, -0.5, 1.0]),
    ("cauchy", [0.0, 1.0], [2.0, 0.5]),
    ("student_t", [1.0, 2.0], [-1.0, 1.0]),
]


@pytest.mark.parametrize("name, a, b", CLOSED_VS_SHOOTING)
def test_shooting_matches_every_closed_form(name, a, b, compiled):
    c = compiled(name)
    closed = distance(c, a, b, method="closed")
    shot = distance(c, a, b, method="shooting")
    assert closed.method.startswith("closed form")
    assert shot.value == pytest.approx(closed.value, rel=1e-8)
    assert shot.residual < 1e-10
    if c.n == 1:
        assert distance(c, a, b, method="quadrature").value == pytest.approx(closed.value, rel=1e-10)


def _reference(ref_id):
    table = {r["id"]: r for r in json.loads(REFERENCES.read_text())["references"]}
    return table[ref_id]


@pytest.mark.parametrize("ref_id, name, order", [
    ("normal.fr_distance", "normal", ["mu1", "sigma1", "mu2", "sigma2"]),
    ("poisson.fr_distance", "poisson", ["l1", "l2"]),
    ("binomial.fr_distance", "binomial", ["p1", "p2"]),
])
def test_distances_match_the_vetted_reference_values(ref_id, name, order, compiled):
    for example in _reference(ref_id)["examples"]:
        inputs = example["inputs"]
        fixed = {"n": inputs["n"]} if "n" in inputs else {}
        c = compiled(name, **fixed)
        values = [float(inputs[k]) for k in order]
        half = len(values) // 2
        want = float(example.get("value_hp", example["output"]))
        for method in ("auto", "shooting"):
            got = distance(c, values[:half], values[half:], method=method).value
            assert got == pytest.approx(want, rel=1e-8 if "value_hp" in example else 1e-10)


def test_categorical_and_exponential_reference_values(compiled):
    example = _reference("categorical.fr_distance")["examples"][0]
    p, q = example["inputs"]["p"], example["inputs"]["q"]
    c = compiled("categorical:k=3")
    assert distance(c, p[:2], q[:2]).value == pytest.approx(float(example["value_hp"]), rel=1e-12)
    assert distance(c, p[:2], q[:2], method="shooting").value == pytest.approx(float(example["value_hp"]),
                                                                               rel=1e-8)
    example = _reference("exponential.fisher_distance_kl")["examples"][0]
    got = distance(compiled("exponential"), [example["inputs"]["l1"]], [example["inputs"]["l2"]]).value
    assert got == pytest.approx(float(example["output"]["d"]), rel=1e-11)


@pytest.mark.parametrize("mu, sigma", [(1e200, 1.0), (1e300, 1e-300), (-1e160, 1e10)])
def test_closed_form_beyond_floating_point_intermediates(mu, sigma, compiled, recwarn):
    """(Δμ)² overflows in floating point though the distance is a few thousand: the formula is evaluated at a
    working precision, not left to the shooting solver (which failed); checked against √2 arccosh(1 +
    ((Δμ)²/2 + (Δσ)²) / (2 σ₁ σ₂)) in mpmath, and no floating-point warning escapes."""
    import mpmath
    with mpmath.workdps(50):
        want = float(mpmath.sqrt(2) * mpmath.acosh(
            1 + (mpmath.mpf(mu) ** 2 / 2 + (mpmath.mpf(sigma) - 1) ** 2) / (2 * mpmath.mpf(sigma))))
    for method in ("auto", "closed"):
        got = distance(compiled("normal"), [0.0, 1.0], [mu, sigma], method=method)
        assert got.method.startswith("closed form")
        assert got.value == pytest.approx(want, rel=1e-12)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("name", ["normal", "cauchy", "student_t", "logistic", "poisson", "exponential",
                                  "bernoulli", "categorical:k=3", "centered_normal", "normal_mean:sigma=2"])
def test_closed_forms_agree_with_the_metric_to_second_order(name, compiled):
    """d(ξ, ξ + εu)² / ε² → uᵀ g(ξ) u: each closed form is checked against the derived metric."""
    c = compiled(name)
    fn = closed_form(c)
    assert fn is not None
    xi = np.array([float(v) for v in c.family.sample_point().values()])[:c.n]
    rng = np.random.default_rng(3)
    for _ in range(3):
        u = rng.standard_normal(c.n)
        eps = 1e-5 * (1 + np.abs(xi).max())
        d = float(fn(*xi, *(xi + eps * u)))
        assert (d / eps) ** 2 == pytest.approx(u @ c.fisher(*xi) @ u, rel=1e-4)


def test_distance_is_chart_invariant(compiled):
    """The same two normals in (μ, σ), (μ, v = σ²) and natural coordinates, closed form and shooting."""
    a, b = (0.5, 1.5), (2.0, 0.7)
    want = distance(compiled("normal"), a, b).value
    variance = compiled("normal", "variance")
    va, vb = (a[0], a[1] ** 2), (b[0], b[1] ** 2)
    natural = compiled("normal", "natural")
    na = (a[0] / a[1] ** 2, -1 / (2 * a[1] ** 2))
    nb = (b[0] / b[1] ** 2, -1 / (2 * b[1] ** 2))
    for c, p, q in ((variance, va, vb), (natural, na, nb)):
        assert distance(c, p, q).value == pytest.approx(want, rel=1e-12)
        assert distance(c, p, q, method="shooting").value == pytest.approx(want, rel=1e-8)


def test_gamma_has_no_closed_form_and_shoots(compiled):
    c = compiled("gamma")
    result = distance(c, [2.0, 1.0], [3.0, 0.5])
    assert result.method == "shooting" and result.residual < 1e-10 and result.iterations > 0
    geo = Geodesics(c)
    np.testing.assert_allclose(geo.exp([2.0, 1.0], result.velocity), [3.0, 0.5], atol=1e-10)
    # the length of the integrated path equals √(vᵀ g v): geodesics have constant speed
    times = np.linspace(0, 1, 2001)
    path = geo.path([2.0, 1.0], result.velocity, times)
    steps = np.diff(path, axis=0)
    mids = (path[1:] + path[:-1]) / 2
    metric = c.fisher(mids[:, 0], mids[:, 1])
    length = np.sum(np.sqrt(np.einsum("ni,nij,nj->n", steps, metric, steps)))
    assert length == pytest.approx(result.value, rel=1e-6)


POSITIVE = hs.floats(0.3, 5.0)


@settings(max_examples=8, deadline=None)
@given(hs.tuples(POSITIVE, POSITIVE), hs.tuples(POSITIVE, POSITIVE), hs.tuples(POSITIVE, POSITIVE))
def test_shooting_distance_is_a_metric(a, b, c3):
    """Symmetric, zero on the diagonal, and the triangle inequality (gamma: no closed form)."""
    c = _gamma()
    dab = distance(c, a, b).value
    assert distance(c, b, a).value == pytest.approx(dab, rel=1e-8, abs=1e-12)
    assert distance(c, a, a).value == 0.0
    assert dab <= distance(c, a, c3).value + distance(c, c3, b).value + 1e-9


_GAMMA = {}


def _gamma():
    if "c" not in _GAMMA:
        _GAMMA["c"] = CompiledFamily(Geometry(catalog.get("gamma"), cache=False))
    return _GAMMA["c"]


def test_beta_distance_is_stable_under_tighter_tolerances_and_matches_its_path_length(compiled):
    """Beta (no closed form): default tolerances vs rtol = atol = 1e-14, and the length of the
    integrated path by Simpson's rule (independent of the constant-speed formula)."""
    from scipy.integrate import simpson
    c = compiled("beta")
    a, b = np.array([1.5, 2.0]), np.array([3.0, 0.8])
    got = distance(c, a, b)
    tight = Geodesics(c, rtol=3e-14, atol=1e-14)
    shot = tight.log(a, b, tol=1e-13)
    assert float(np.sqrt(shot.velocity @ c.fisher(*a) @ shot.velocity)) == pytest.approx(got.value, rel=1e-10)
    times = np.linspace(0, 1, 4001)
    sol, _ = tight._integrate(a, shot.velocity, 1.0, variational=False, t_eval=times)
    x, v = sol.y[:2].T, sol.y[2:].T
    speed = np.sqrt(np.einsum("ni,nij,nj->n", v, c.fisher(x[:, 0], x[:, 1]), v))
    assert simpson(speed, x=times) == pytest.approx(got.value, rel=1e-10)
    assert np.ptp(speed) < 1e-9 * speed.mean()  # constant speed along a geodesic


def test_torch_batched_exponential_map_matches_scipy(compiled):
    torch = pytest.importorskip("torch")
    c_np = compiled("gamma")
    c_t = CompiledFamily(c_np.geometry, "torch")
    x0 = torch.tensor([[2.0, 1.0], [1.0, 3.0], [4.0, 0.5]], dtype=torch.float64)
    v0 = torch.tensor([[0.3, -0.2], [-0.1, 0.5], [1.0, 0.1]], dtype=torch.float64)
    got = exp_map_torch(c_t, x0, v0, steps=200).numpy()
    geo = Geodesics(c_np)
    want = np.array([geo.exp(x.numpy(), v.numpy()) for x, v in zip(x0, v0)])
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_leaving_the_domain_and_non_convergence_are_reported(compiled):
    geo = Geodesics(compiled("bernoulli"))
    with pytest.raises(GeodesicError, match="boundary"):  # p → 1, where the metric blows up
        geo.exp([0.5], [40.0])
    with pytest.raises(GeodesicError, match="leaves the parameter domain"):  # the m-geodesic is a line in p
        Geodesics(compiled("bernoulli"), alpha=-1).exp([0.5], [1.0])
    with pytest.raises(GeodesicError, match="residual"):
        Geodesics(compiled("gamma")).log([2.0, 1.0], [3.0, 0.5], max_iter=1, tol=1e-300)
    with pytest.raises(DomainError):
        distance(compiled("gamma"), [2.0, -1.0], [3.0, 0.5])
    with pytest.raises(ValueError, match="2 coordinates"):
        distance(compiled("gamma"), [2.0], [3.0, 0.5])


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_quadrature_distance_where_floating_point_loses_the_metric(geometry):
    """The truncated normal N(μ, 1) on [0, 2] far to the left of its interval: its Fisher formula (erf
    differences times e^{μ²}) gives NaN or a negative number in floating point at μ = −8; the distance comes
    from the formula at a working precision, checked against ∫√A''(μ) dμ with A the log-partition
    differentiated by mpmath here."""
    import mpmath
    from numeric import compile as compile_family
    spec = Path(__file__).resolve().parents[1] / "derivations" / "truncated_normal.toml"
    c = compile_family(str(spec))
    with mpmath.workdps(40):
        def log_partition(m):
            return m ** 2 / 2 + mpmath.log(mpmath.sqrt(2 * mpmath.pi)) + mpmath.log(
                (mpmath.erf((2 - m) / mpmath.sqrt(2)) + mpmath.erf(m / mpmath.sqrt(2))) / 2)
        want = float(mpmath.quad(lambda m: mpmath.sqrt(mpmath.diff(log_partition, m, 2)), [-8, -7]))
    got = distance(c, [-8.0], [-7.0])
    assert got.method == "quadrature of √g at a working precision"
    assert got.value == pytest.approx(want, rel=1e-10)
    assert distance(c, [-3.0], [-2.0]).method == "quadrature of √g"  # floating point where it serves


@pytest.mark.slow  # 10-30 s on one core: in CI's slow run
def test_shooting_where_the_christoffel_symbols_are_series():
    """The negative binomial with r free: its metric and Christoffel symbols hold series (no closed form);
    shooting used to call the generated functions without evaluating them (a TypeError). Against the batch
    route (central differences + its own Newton) and against √(uᵀ g u) ε for a short step."""
    from numeric import compile as compile_family
    from numeric.batch_geodesic import distances
    c = compile_family(str(Path(__file__).resolve().parents[1] / "derivations" / "families"
                           / "negative_binomial_r.toml"))
    a, b = np.array([1.3, 0.5]), np.array([2.0, 0.4])
    shot = distance(c, a, b, method="shooting")
    assert shot.residual < 1e-10
    assert distances(c, a[None], b[None])[0] == pytest.approx(shot.value, rel=1e-8)
    u, eps = np.array([0.6, -0.8]), 1e-4
    short = distance(c, a, a + eps * u, method="shooting").value
    assert short == pytest.approx(eps * np.sqrt(u @ np.asarray(c.fisher(*a)) @ u), rel=1e-4)
