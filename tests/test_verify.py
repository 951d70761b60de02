"""`numeric.verify` and the numeric subcommands (distance, geodesic, verify)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numeric import CompiledFamily
from numeric.verify import assert_verified, verify

pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["normal", "gamma", "categorical:k=3", "poisson", "binomial:n=5",
                                  "derivations/half_normal.toml", "student_t", "centered_normal:d=2",
                                  "dirichlet:k=3", "multivariate_normal:d=2"])
def test_derived_families_pass_every_check(name):
    report = assert_verified(name, samples=40_000, seed=1)
    ran = [c for c in report.checks if c.passed is not None]
    assert len(ran) >= 5, report.table()


def test_a_wrong_metric_is_caught(geometry):
    """A Fisher metric off by a factor 1 + k/10 fails the Monte Carlo and the finite-difference checks
    (a constant factor would leave Γ unchanged)."""
    compiled = CompiledFamily(geometry("gamma"))
    k = compiled.params[0]
    compiled.__dict__["fisher"] = compiled.function(compiled.params, compiled.geometry.fisher * (1 + k / 10))
    report = verify(compiled, samples=40_000, seed=1)
    failed = {c.name for c in report.checks if c.passed is False}
    assert not report.passed
    assert "Fisher vs Monte Carlo E[s sᵀ] (torch autograd)" in failed
    assert "Christoffel vs finite differences of g" in failed
    with pytest.raises(AssertionError, match="FAIL"):
        assert_verified(compiled, samples=40_000, seed=1)


def test_a_wrong_kl_is_caught(geometry):
    compiled = CompiledFamily(geometry("poisson"))
    right = compiled.kl
    compiled.__dict__["kl"] = lambda *v: 1.1 * right(*v)
    report = verify(compiled, samples=100_000, seed=2)
    assert [c.passed for c in report.checks if c.name.startswith("KL")] == [False]


def test_tabulated_sampler_matches_the_density():
    """The inverse-CDF sampler used for spec families reproduces the half-normal's quantiles."""
    import scipy.stats as st
    from numeric import compile
    from numeric.sampling import _tabulated_sampler
    c = compile("derivations/half_normal.toml")
    (x,) = _tabulated_sampler(c)(np.array([2.0]), 200_000, np.random.default_rng(0))
    assert st.kstest(x, st.halfnorm(scale=2.0).cdf).pvalue > 1e-3
    (k,) = _tabulated_sampler(compile("geometric"))(np.array([0.3]), 200_000, np.random.default_rng(0))
    assert k.mean() == pytest.approx(0.7 / 0.3, rel=0.02)


DATA = Path(__file__).parent / "data"


def test_heavy_tails_are_sampled_far_out():
    """Pareto with shape 0.7: a quarter of the mass lies beyond 7 and 1e-4 of it beyond 5e5; a grid that
    stops at 2e4 biases E[s sᵀ]. The sampler reaches the tail and matches scipy's CDF."""
    import scipy.stats as st
    from numeric import compile
    from numeric.sampling import _tabulated_sampler
    (x,) = _tabulated_sampler(compile(str(DATA / "pareto_heavy.toml")))(np.array([0.7]), 200_000,
                                                                         np.random.default_rng(3))
    assert st.kstest(x, st.pareto(0.7).cdf).pvalue > 1e-3
    assert x.max() > 1e6


@pytest.mark.parametrize("spec", ["pareto_heavy.toml", "log_logistic_heavy.toml"])
def test_heavy_tailed_spec_families_pass(spec):
    report = assert_verified(str(DATA / spec), samples=40_000, seed=4)
    assert sum(c.passed is True for c in report.checks if c.name.startswith("Fisher")) == 2


@pytest.mark.parametrize("samples", [0, 1, 999, -5])
def test_too_few_samples_are_refused(samples):
    with pytest.raises(ValueError, match="at least"):
        verify("normal", samples=samples)
    out = _symgeo("verify", "normal", "--samples", str(samples))
    assert out.returncode == 2 and "--samples" in out.stderr


def _symgeo(*args):
    return subprocess.run([sys.executable, "-m", "symgeo", *args], capture_output=True, text=True, timeout=300)


def test_cli_distance_prints_the_number_last_and_json():
    out = _symgeo("distance", "normal", "--from", "mu=0,sigma=1", "--to", "mu=1,sigma=1")
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) == pytest.approx(0.98025814346854719171, rel=1e-13)
    out = _symgeo("distance", "gamma", "--from", "k=2,theta=1", "--to", "k=3,theta=1/2", "--json")
    data = json.loads(out.stdout)
    assert data["method"] == "shooting" and data["residual"] < 1e-10


def test_cli_bad_points_exit_2_with_one_line():
    out = _symgeo("distance", "gamma", "--from", "k=2,theta=-1", "--to", "k=3,theta=1")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "domain" in out.stderr
    out = _symgeo("distance", "gamma", "--from", "k=2", "--to", "k=3,theta=1")
    assert out.returncode == 2 and "missing" in out.stderr


def test_cli_geodesic_plot_and_verify(tmp_path):
    png = tmp_path / "geodesic.png"
    out = _symgeo("geodesic", "normal", "--from", "mu=-2,sigma=1", "--to", "mu=2,sigma=1", "--plot", str(png),
                  "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    path = np.array(data["path"])
    assert path[:, 1].max() == pytest.approx(np.sqrt(3), rel=1e-6)  # μ²/2 + σ² is constant on this geodesic
    assert png.stat().st_size > 10_000
    out = _symgeo("verify", "poisson", "--samples", "20000")
    assert out.returncode == 0 and "all checks passed" in out.stdout


@pytest.mark.parametrize("name", ["bernoulli", "beta", "binomial:n=4", "categorical:k=4", "cauchy", "dirichlet:k=3",
                                  "exponential", "gamma", "geometric", "inverse_gamma", "inverse_gaussian",
                                  "laplace", "logistic", "lognormal", "multivariate_normal:d=2",
                                  "centered_normal:d=3", "negative_binomial:r=3", "normal", "normal_mean:sigma=2",
                                  "poisson", "rayleigh", "student_t", "von_mises", "weibull"])
def test_every_declared_scipy_equivalent_is_the_family(name):
    """The scipy.stats distribution declared with each catalog family has the family's log-density."""
    from numeric.sampling import scipy_equivalent
    from symgeo import Geometry, catalog
    compiled = CompiledFamily(Geometry(catalog.get(name)))
    build = scipy_equivalent(compiled)
    assert build is not None
    point = np.array([float(compiled.family.sample_point(0)[p]) for p in compiled.params])
    logp, sample = build(point)
    cols = sample(300, np.random.default_rng(0))
    np.testing.assert_allclose(compiled.log_density(*cols, *point), logp(cols), rtol=1e-9, atol=1e-12)
