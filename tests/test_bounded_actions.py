"""Actions from any family on a bounded interval (numeric.nets.heads.BoundedHead): draws against the law's
own CDF (Kolmogorov–Smirnov), the grid KL against the closed form and against quadrature written here, the
exact Fisher-vector product against double backprop of the KL, links that never leave a domain, refusals,
and a short TRPO run on Pendulum with von Mises actions."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import integrate, special, stats

torch = pytest.importorskip("torch")
from numeric.nets.heads import BoundedHead, domain_link  # noqa: E402
from numeric.nets.rl import Policy, TrainConfig, fisher_vector_product, flat_params, train  # noqa: E402
from symgeo.errors import InvalidArgumentError  # noqa: E402

KUMARASWAMY = "derivations/families/kumaraswamy.toml"


@pytest.fixture(autouse=True)
def _float64(torch_float64):
    """Every test of this module in float64."""


@pytest.fixture(scope="module")
def von_mises():
    return BoundedHead("von_mises", 1)


@pytest.fixture(scope="module")
def kumaraswamy():
    return BoundedHead(KUMARASWAMY, 1)


def _draws(head, xi, n=5000, seed=0):
    return head.sample(torch.tensor([[xi]]).expand(n, 1, len(xi)), torch.Generator().manual_seed(seed))[:, 0]


def _von_mises_cdf(mu, kappa):
    """On (−π, π), by the trapezoid rule on a fine grid of e^{κ(cos(x − μ) − 1)}."""
    xs = np.linspace(-np.pi, np.pi, 400_001)
    cdf = integrate.cumulative_trapezoid(np.exp(kappa * (np.cos(xs - mu) - 1)), xs, initial=0)
    return lambda x: np.interp(x, xs, cdf / cdf[-1])


@pytest.mark.parametrize("mu, kappa", [(0.3, 2.0), (3.0, 50.0), (-3.1, 5.0), (1.0, 1e-3)])
def test_von_mises_draws_follow_its_law(von_mises, mu, kappa):
    """Including a location at the edge of (−π, π) (the law wraps round) and a nearly uniform one."""
    draws = _draws(von_mises, [mu, kappa]).numpy()
    assert ((draws > -np.pi) & (draws < np.pi)).all()
    assert stats.kstest(draws, _von_mises_cdf(mu, kappa)).pvalue > 0.01


@pytest.mark.parametrize("a, b", [(0.5, 0.5), (2.0, 5.0), (1.5, 0.4)])
def test_kumaraswamy_draws_follow_its_law_within_the_edge(kumaraswamy, a, b):
    """Densities infinite at an end (a < 1 or b < 1) included: against F(x) = 1 − (1 − xᵃ)ᵇ restricted to
    [EDGE, 1 − EDGE], the range the draws cover."""
    def cdf(x):
        return 1 - (1 - x ** a) ** b
    edge = BoundedHead.EDGE
    low, high = cdf(edge), cdf(1 - edge)
    draws = _draws(kumaraswamy, [a, b]).numpy()
    assert stats.kstest(draws, lambda x: (cdf(x) - low) / (high - low)).pvalue > 0.01


def test_a_wrong_sampler_is_caught():
    """The draws are checked against the right law: a Beta(2, 3) sampler fails the Beta(3, 2) test."""
    draws = _draws(BoundedHead("beta", 1), [2.0, 3.0]).numpy()
    assert stats.kstest(draws, stats.beta(2.0, 3.0).cdf).pvalue > 0.01
    assert stats.kstest(draws, stats.beta(3.0, 2.0).cdf).pvalue < 1e-6


def test_log_density_is_torchs_von_mises(von_mises):
    xi = von_mises.params(torch.randn(6, 2, generator=torch.Generator().manual_seed(3)))
    y = torch.linspace(-3, 3, 6)
    law = torch.distributions.VonMises(xi[:, 0, 0], xi[:, 0, 1])
    torch.testing.assert_close(von_mises.log_prob(xi, y), law.log_prob(y), rtol=1e-6, atol=1e-7)


def test_grid_kl_matches_the_closed_form_and_quadrature(kumaraswamy):
    grid = BoundedHead("von_mises", 1, kl="grid")
    closed = BoundedHead("von_mises", 1, kl="closed")
    old = torch.tensor([[[0.3, 2.0]], [[1.0, 30.0]], [[-3.0, 0.5]]])
    new = torch.tensor([[[0.5, 2.5]], [[1.05, 25.0]], [[3.0, 0.7]]])
    torch.testing.assert_close(grid.kl(old, new), closed.kl(old, new), rtol=2e-3, atol=1e-6)

    def kumaraswamy_kl(p, q):  # by quadrature of p log(p/q), written here
        def log_pdf(x, a, b):
            return math.log(a * b) + (a - 1) * math.log(x) + (b - 1) * math.log1p(-x ** a)
        return integrate.quad(lambda x: math.exp(log_pdf(x, *p)) * (log_pdf(x, *p) - log_pdf(x, *q)), 0, 1,
                              limit=200)[0]
    pairs = [((2.0, 3.0), (2.2, 2.7)), ((1.5, 4.0), (1.0, 4.0))]
    got = kumaraswamy.kl(torch.tensor([[p] for p, _ in pairs]), torch.tensor([[q] for _, q in pairs]))
    np.testing.assert_allclose(got.numpy(), [kumaraswamy_kl(p, q) for p, q in pairs], rtol=1e-3)
    assert kumaraswamy._kl_route == "grid"  # it has no closed form: not an exponential family


@pytest.mark.parametrize("family, rtol", [("von_mises", 1e-8), (KUMARASWAMY, 2e-3)])
def test_exact_fvp_equals_double_backprop_of_the_kl(family, rtol):
    """The von Mises KL is closed, so its Hessian is the Fisher to rounding; the Kumaraswamy's is the grid's,
    the Fisher of the discretised law, close to the exact one where the density is finite at the ends
    (shapes a, b > 1 here; at a = b = 1/2 it is 5% off, the law's mass within EDGE of the ends not drawn)."""
    torch.manual_seed(0)
    policy = Policy(3, BoundedHead(family, 2), hidden=(8,)).double()
    for p in policy.parameters():
        p.data.add_(0.3 * torch.randn_like(p))
    with torch.no_grad():
        policy.net[-1].bias.add_(2.0)  # softplus(2) ≈ 2.1: the Kumaraswamy's shapes above 1
    obs = torch.randn(30, 3)
    exact = fisher_vector_product(policy, obs, 0.0, "exact")
    backprop = fisher_vector_product(policy, obs, 0.0, "double_backprop")
    v = torch.randn(len(flat_params(policy)))
    torch.testing.assert_close(exact(v), backprop(v), rtol=rtol, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(raw=hs.floats(-1e4, 1e4), bounds=hs.sampled_from(
    [(-math.inf, math.inf), (0, math.inf), (1, math.inf), (-math.inf, 2), (-math.pi, math.pi), (0, 1)]))
def test_links_stay_inside_the_domain(raw, bounds):
    import sympy as sp
    domain = sp.Interval.open(*(sp.oo if b == math.inf else -sp.oo if b == -math.inf else sp.nsimplify(b)
                                for b in bounds))
    for dtype in (torch.float32, torch.float64):
        value = float(domain_link(domain)(torch.tensor([raw], dtype=dtype))[0])
        assert math.isfinite(value) and bounds[0] < value < bounds[1]


@pytest.mark.parametrize("family, message", [("normal", "bounded interval"), ("binomial:n=5", "continuous"),
                                             ("categorical:k=3", "continuous")])
def test_families_off_a_bounded_interval_are_refused(family, message):
    with pytest.raises(InvalidArgumentError, match=message):
        BoundedHead(family, 1)


def test_trpo_trains_with_von_mises_actions_on_pendulum():
    pytest.importorskip("gymnasium")
    torch.set_default_dtype(torch.float32)  # the policy's usual precision
    policy, log = train("Pendulum-v1", 2048, TrainConfig(box_actions="von_mises", n_steps=1024),
                        seed=0, progress=False)
    assert isinstance(policy.actions, BoundedHead) and len(log.rows) == 2
    assert all(np.isfinite(r["kl"]) and r["kl"] <= 0.01 for r in log.rows)
    assert any(r["accepted"] for r in log.rows)
    with pytest.raises(InvalidArgumentError, match="bounded interval"):
        train("Pendulum-v1", 512, TrainConfig(box_actions="normal_mean:sigma=1", n_steps=256), progress=False)


def test_mode_is_the_densest_point(von_mises):
    xi = torch.tensor([[[1.2, 40.0]], [[-2.5, 3.0]]])
    np.testing.assert_allclose(von_mises.mode(xi)[:, 0].numpy(), [1.2, -2.5], atol=2 * np.pi / 1024)
    assert special.i0e(40.0) > 0  # scipy's scaled Bessel function, as the generated code uses
