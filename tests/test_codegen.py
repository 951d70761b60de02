"""Generated numpy/torch functions against `expr.evalf` at seeded points."""
import numpy as np
import pytest
import sympy as sp

from numeric import CompiledFamily, compile
from numeric.codegen import generate
from symgeo import DomainError, SymgeoError

torch = pytest.importorskip("torch")

FAMILIES = ["normal", "gamma", "beta", "poisson", "bernoulli", "binomial:n=5", "categorical:k=3",
            "dirichlet:k=3", "von_mises", "inverse_gaussian", "multivariate_normal:d=2", "centered_normal",
            "cauchy", "student_t", "weibull"]
METRIC = ["fisher", "inverse_fisher", "christoffel", "christoffel_first", "scalar_curvature", "jeffreys_prior"]
EXPONENTIAL = ["natural_params", "expectation_params", "log_partition"]


def random_points(family, rng, count=3):
    """Seeded interior points near the family's sample point (domains and constraints respected)."""
    base = family.sample_point()
    points = []
    while len(points) < count:
        point = {}
        for p in family.params:
            value, domain = float(base[p]), family.domains[p]
            if domain.inf == 0 and domain.sup == 1:
                logit = np.log(value / (1 - value)) + 0.3 * rng.standard_normal()
                point[p] = 1 / (1 + np.exp(-logit))
            elif domain.inf == 0 or value != 0:
                point[p] = value * np.exp(0.3 * rng.standard_normal()) if value else rng.standard_normal()
            else:
                point[p] = value + 0.3 * rng.standard_normal()
        try:
            family.check_point(point)
        except DomainError:
            continue
        points.append(point)
    return points


def reference(exprs, args, values) -> np.ndarray:
    """30-digit evalf of the symbolic source at one point."""
    sub = {a: sp.Float(v, 30) for a, v in zip(args, values)}
    flat = sp.flatten(exprs.tolist()) if hasattr(exprs, "tolist") else sp.flatten([exprs])
    shape = tuple(exprs.shape) if hasattr(exprs, "shape") else np.shape(np.empty(len(flat))) if \
        isinstance(exprs, (list, tuple)) else ()
    return np.array([float(sp.N(sp.sympify(e).xreplace(sub), 30)) for e in flat]).reshape(shape)


@pytest.fixture(scope="module")
def compiled(geometry):
    memo = {}

    def get(name, backend="numpy"):
        if (name, backend) not in memo:
            memo[(name, backend)] = CompiledFamily(geometry(name), backend, fixed=None)
        return memo[(name, backend)]
    return get


def _quantities(family_compiled):
    names = list(METRIC)
    if family_compiled.geometry.exponential_family is not None:
        names += EXPONENTIAL + ["skewness"]
    return names


def _evaluate(fn, values, backend):
    if backend == "torch":
        return fn(*[torch.tensor(v, dtype=torch.float64) for v in values]).numpy()
    return np.asarray(fn(*values))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", FAMILIES)
def test_generated_metric_quantities_match_evalf(name, backend, compiled):
    c = compiled(name, backend)
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    for point in random_points(c.family, rng):
        values = [point[p] for p in c.params]
        for quantity in _quantities(c):
            fn = getattr(c, quantity)
            got = _evaluate(fn, values, backend)
            want = reference(fn.exprs, fn.args, values)
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"{name}.{quantity}")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name", ["normal", "gamma", "poisson", "categorical:k=3", "von_mises", "student_t"])
def test_generated_density_geodesic_rhs_and_crb_match_evalf(name, backend, compiled):
    c = compiled(name, backend)
    rng = np.random.default_rng(7)
    (point,) = random_points(c.family, rng, 1)
    values = [point[p] for p in c.params]
    x = [0.0] * len(c.family.variables) if name == "categorical:k=3" else \
        [1.0 if str(c.family.variables[0]) == "x" and name == "poisson" else 0.7] * len(c.family.variables)
    checks = [(c.log_density, x + values), (c.geodesic_rhs(), values + [0.3, -0.2][:c.n] + [0.1] * (c.n - 2)),
              (c.cramer_rao, values + [10.0])]
    if c.geometry.exponential_family is not None:
        checks.append((c.kl, values + [v * 1.1 for v in values]))
    for fn, args in checks:
        np.testing.assert_allclose(_evaluate(fn, args, backend), reference(fn.exprs, fn.args, args),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_batches_broadcast_to_leading_dimensions(backend, compiled):
    c = compiled("gamma", backend)
    k = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    theta = np.array([0.5, 1.0, 2.0])
    if backend == "torch":
        k, theta = torch.tensor(k), torch.tensor(theta)
    batch = np.asarray(c.fisher(k, theta))
    assert batch.shape == (2, 3, 2, 2)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(batch[i, j], np.asarray(c.fisher(float(k[i, j]), float(theta[j]))),
                                       rtol=1e-14)
    assert np.asarray(c.christoffel(k, theta)).shape == (2, 3, 2, 2, 2)
    assert np.asarray(c.scalar_curvature(k, theta)).shape == (2, 3)


def test_torch_metric_is_differentiable(compiled):
    """Autograd through the generated Fisher equals the symbolic derivative ∂g/∂ξ."""
    c = compiled("gamma", "torch")
    k = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    theta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    g = c.fisher(k, theta)
    g[0, 0].backward()
    kk = c.params[0]
    want = float(sp.diff(c.geometry.fisher[0, 0], kk).xreplace({kk: sp.Float(2.5, 30)}).evalf(30))
    assert float(k.grad) == pytest.approx(want, rel=1e-12)


def test_torch_float32_and_device_follow_the_inputs(compiled):
    c = compiled("beta", "torch")
    a = torch.tensor([1.5, 2.0], dtype=torch.float32)
    out = c.fisher(a, 3.0)
    assert out.dtype == torch.float32 and out.device == a.device
    if torch.cuda.is_available():
        assert c.fisher(a.cuda(), 3.0).device.type == "cuda"


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("name, args, message", [
    ("normal", (0.0, -1.0), "sigma must lie in"),
    ("normal", (0.0, 0.0), "sigma must lie in"),
    ("normal", (float("nan"), 1.0), "mu must lie in"),
    ("bernoulli", (1.0,), "p must lie in"),
    ("categorical:k=3", (0.6, 0.5), "violate"),
    ("multivariate_normal:d=2", (0.0, 0.0, 1.0, 2.0, 1.0), "violate"),
])
def test_out_of_domain_parameters_raise_value_error(name, args, message, backend, compiled):
    c = compiled(name, backend)
    values = [torch.tensor(a) for a in args] if backend == "torch" else args
    with pytest.raises(ValueError, match=message):
        c.fisher(*values)
    with pytest.raises(DomainError):  # DomainError is a ValueError and a SymgeoError
        c.fisher(*values)


def test_one_bad_entry_in_a_batch_is_named():
    c = compile("normal")
    with pytest.raises(ValueError, match=r"sigma = -2\.0"):
        c.fisher(np.zeros(3), np.array([1.0, -2.0, 3.0]))


def test_unchecked_functions_skip_the_domain_test():
    c = compile("normal", check=False)
    assert np.isnan(c.fisher(0.0, np.nan)[0, 0])


def test_fixed_symbols_need_values():
    with pytest.raises(SymgeoError, match="depends on"):
        compile("binomial").fisher(0.3)
    assert compile("binomial", fixed={"n": 10}).fisher(0.3)[0, 0] == pytest.approx(10 / 0.21)
    with pytest.raises(SymgeoError, match="nothing fixed is named"):
        compile("binomial", fixed={"m": 3})


def test_compile_accepts_names_charts_and_spec_files():
    assert compile("normal", chart="variance").params[1].name == "v"
    c = compile("derivations/half_normal.toml")
    assert c.fisher(2.0).shape == (1, 1)
    with pytest.raises(ValueError, match="backend"):
        compile("normal", backend="jax")


def test_constants_and_special_functions_in_torch():
    x = sp.Symbol("x", positive=True)
    expr = [sp.zeta(3) * sp.polygamma(2, x) + sp.EulerGamma + sp.sqrt(2) * sp.besseli(1, x) / sp.besseli(0, x),
            sp.gamma(x) * sp.erf(x) + sp.loggamma(x) + x ** -3]
    want = np.array([float(sp.N(e.subs(x, 1.7), 30)) for e in expr])
    np.testing.assert_allclose(generate([x], expr, "torch")(torch.tensor(1.7, dtype=torch.float64)).numpy(),
                               want, rtol=1e-13)
    np.testing.assert_allclose(generate([x], expr)(1.7), want, rtol=1e-13)


def test_fast_trigamma_matches_mpmath_over_twenty_decades():
    import mpmath
    from numeric.special import trigamma
    xs = np.exp(np.linspace(np.log(1e-8), np.log(1e12), 3000))
    want = np.array([float(mpmath.polygamma(1, x)) for x in xs])
    np.testing.assert_allclose(trigamma(xs), want, rtol=2e-15)
    np.testing.assert_allclose(trigamma(xs[:10]), want[:10], rtol=2e-15)  # the small-input path
    assert np.isnan(trigamma(np.full(100, np.nan))).all()
    assert np.isfinite(trigamma(np.linspace(-3.5, -0.5, 100))).all()  # negative: scipy's ζ, no error


def test_large_batches_run_in_blocks_and_equal_the_small_batch_values(monkeypatch):
    """Batches above one block are split over threads: same values as block-free evaluation, the
    batch-first shape, broadcasting of scalars and of non-full shapes, and the caller's error state."""
    from numeric import blocks
    gamma = compile("gamma", check=False)
    rng = np.random.default_rng(0)
    k, theta = rng.uniform(0.2, 20, 3 * blocks.BLOCK + 17), rng.uniform(0.2, 20, 3 * blocks.BLOCK + 17)
    blocked = gamma.christoffel(k, theta)
    monkeypatch.setattr(blocks, "BLOCK", 10 ** 9)  # one block (numpy's SIMD tails differ in the last bit)
    np.testing.assert_allclose(blocked, gamma.christoffel(k, theta), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(compile("gamma").fisher(k, 2.0)[:, 1, 1], k / 4)
    grid = gamma.fisher(k[:300, None], theta[None, :400])
    assert grid.shape == (300, 400, 2, 2) and grid[7, 11, 0, 1] == 1 / theta[11]
    monkeypatch.undo()
    f = generate(sp.symbols("x:1"), sp.exp(sp.Symbol("x0")) ** 2)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        f(np.full(3 * blocks.BLOCK, 400.0))
    with np.errstate(over="ignore"):
        assert np.isinf(f(np.full(3 * blocks.BLOCK, 400.0))).all()


def test_blocks_nested_in_a_worker_run_inline():
    from numeric import blocks
    out = np.zeros(4 * blocks.BLOCK)

    def inner(start, stop):
        out[start:stop] += 1

    def outer(start, stop):  # runs on a pool worker: its own run_blocks must not wait on the pool
        if start == 0:
            blocks.run_blocks(inner, out.size)
    blocks.run_blocks(outer, 2 * blocks.BLOCK)
    assert np.all(out == 1)


def _whitelisted_calls():
    """One call of every function a spec file may use, with arguments in its usual domain."""
    from symgeo.functions import FUNCTIONS
    x, a = sp.symbols("x a", positive=True)
    two_args = {"polygamma": (2, x), "beta": (x, a), "binomial": (x + 3, a), "besseli": (2, x),
                "besselj": (2, x)}
    calls = {name: fn(*two_args.get(name, (x,))) for name, fn in FUNCTIONS.items()}
    calls["besselj0"], calls["tan"], calls["sign"] = sp.besselj(0, x), sp.tan(x / 3), sp.sign(x - 1)
    calls["acosh"], calls["atanh"] = sp.acosh(x + 1), sp.atanh(x / 3)
    return (x, a), calls


@pytest.mark.parametrize("name", sorted(_whitelisted_calls()[1]))
def test_every_spec_function_prints_for_torch_and_numpy(name):
    torch = pytest.importorskip("torch")
    (x, a), calls = _whitelisted_calls()
    expr = calls[name]
    xs, av = np.array([0.3, 1.7, 2.5]), np.array([0.5, 1.2, 2.0])
    want = np.array([float(expr.subs({x: xi, a: ai}).evalf(30)) for xi, ai in zip(xs, av)])
    on_torch = generate([x, a], expr, "torch")(torch.tensor(xs, dtype=torch.float64),
                                               torch.tensor(av, dtype=torch.float64)).numpy()
    assert np.allclose(on_torch, want, rtol=1e-11, atol=1e-300)
    assert np.allclose(generate([x, a], expr)(xs, av), want, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_count_log_densities_do_not_overflow_at_large_counts(backend):
    """log n! and log binomial(n, k) are generated as log Γ sums (Γ(201) overflows float64, Γ(36) float32):
    the Poisson at 200 counts, the binomial at n = 1000 and the negative binomial at 500 failures, against
    scipy.stats."""
    import scipy.stats as st

    from numeric import compile as compile_family
    if backend == "torch":
        torch = pytest.importorskip("torch")
    cases = [("poisson", (200.0, 150.0), st.poisson(150).logpmf(200)),
             ("binomial:n=1000", (400.0, 0.4), st.binom(1000, 0.4).logpmf(400)),
             ("negative_binomial:r=3", (500.0, 0.01), st.nbinom(3, 0.01).logpmf(500))]
    for name, args, expected in cases:
        f = compile_family(name, backend).log_density
        if backend == "torch":
            # float32: log Γ(1001) ≈ 5912 cancels to −3.66, so its 6e-8 relative rounding is 4e-4 absolute
            for dtype, rtol, atol in ((torch.float64, 1e-10, 0.0), (torch.float32, 1e-5, 1e-3)):
                got = float(f(*(torch.tensor([a], dtype=dtype) for a in args))[0])
                assert got == pytest.approx(expected, rel=rtol, abs=atol), (name, dtype)
        else:
            assert float(f(*args)) == pytest.approx(expected, rel=1e-10), name


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_higher_order_bessel_in_a_product_keeps_its_parentheses(backend):
    """I₂, J₃ print as sums of orders 0 and 1 for torch; inside a product the sum must stay grouped (3·I₂(x)
    was printed 3·I₀(x) − 2 I₁(x)/x)."""
    torch = pytest.importorskip("torch")
    x = sp.Symbol("x", positive=True)
    for expr in (3 * sp.besseli(2, x), x * sp.besselj(3, x), sp.besseli(3, x) / (1 + sp.besseli(2, x))):
        values = np.array([0.4, 1.5, 2.5])  # torch.special.bessel_j0 is good to ~1e-8 beyond 5
        want = [float(expr.subs(x, v).evalf(30)) for v in values]
        fn = generate([x], expr, backend)
        got = fn(torch.tensor(values, dtype=torch.float64)).numpy() if backend == "torch" else fn(values)
        assert np.allclose(got, want, rtol=1e-11)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_bessel_forms_do_not_overflow_at_large_arguments(backend):
    """The von Mises at κ = 800 and 10⁵ (I₀(κ) overflows float64 beyond 713): its log-density and Fisher are
    finite and equal mpmath's, since I_ν is generated scaled (e^{−|z|} I_ν(z)) and e^{|z|} leaves through the
    logarithm and the ratios."""
    import mpmath
    torch = pytest.importorskip("torch")
    from numeric import compile as compile_family
    c = compile_family("von_mises", backend)
    for kappa in (0.5, 800.0, 1e5):
        x, mu = 0.1, 0.0
        with mpmath.workdps(40):
            k = mpmath.mpf(kappa)
            ratio = mpmath.besseli(1, k) / mpmath.besseli(0, k)
            want_log = float(k * mpmath.cos(x - mu) - mpmath.log(2 * mpmath.pi * mpmath.besseli(0, k)))
            want_fisher = [float(k * ratio), float(1 - ratio ** 2 - ratio / k)]

        def arg(v):
            return torch.tensor([v], dtype=torch.float64) if backend == "torch" else np.array([v])
        log_p = np.asarray(c.log_density(arg(x), arg(mu), arg(kappa)), dtype=float)
        fisher = np.asarray(c.fisher(arg(mu), arg(kappa)), dtype=float)[0]
        assert log_p[0] == pytest.approx(want_log, rel=1e-12)
        assert fisher[0, 0] == pytest.approx(want_fisher[0], rel=1e-12)
        assert fisher[1, 1] == pytest.approx(want_fisher[1], rel=1e-5)  # 1 − A² − A/κ cancels to 1/(2κ²)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_sums_that_cancel_near_zero_are_generated_in_their_exact_forms(backend):
    """eᶻ − 1, 1 − e⁻ᶻ, eᶻe^{az} − e^{az}, log(1 + z²) at z = 1e-20 and 1 + erf(z) at z = −10 come out
    0, 0, 0, 0 and 0 in plain floating point; generated as expm1, log1p and erfc they keep every digit."""
    torch = pytest.importorskip("torch")
    z, a = sp.Symbol("z", real=True), sp.Symbol("a", positive=True)
    exprs = [sp.exp(z) - 1, 1 - sp.exp(-z), sp.exp(z) * sp.exp(a * z) - sp.exp(a * z), sp.log(1 + z ** 2),
             1 + sp.erf(z - 10), 1 - sp.erf(10 - z)]
    fn = generate([z, a], exprs, backend)
    args = (1e-20, 0.5)
    got = fn(*(torch.tensor(v, dtype=torch.float64) for v in args)).numpy() if backend == "torch" else fn(*args)
    import mpmath
    with mpmath.workdps(60):
        tiny = mpmath.mpf(10) ** -20
        want = [float(mpmath.expm1(tiny)), float(-mpmath.expm1(-tiny)), float(mpmath.expm1(tiny) * mpmath.exp(tiny / 2)),
                float(mpmath.log1p(tiny ** 2)), float(mpmath.erfc(10 - tiny)), float(mpmath.erfc(10 - tiny))]
    np.testing.assert_allclose(got, want, rtol=1e-12)
