"""numeric.nets: heads (the output family's exact Fisher in the raw outputs) and the pull-back operator,
against references written here with torch.distributions and autograd."""
import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.distributions import Gamma, Normal, kl_divergence  # noqa: E402

from numeric.nets.heads import (  # noqa: E402
    BernoulliHead,
    CategoricalHead,
    DiagonalNormalHead,
    Head,
    UnitNormalHead,
)
from numeric.nets.pullback import GaussNewton  # noqa: E402

GEN = torch.Generator().manual_seed(0)


@pytest.fixture(autouse=True)
def _float64(torch_float64):
    """Every test of this module in float64."""


def _kl_hessian(kl_at, z0):
    """∂²/∂z² KL(p_{z0} ‖ p_z) at z = z0 per example: the Fisher in z (an independent route)."""
    return torch.stack([torch.autograd.functional.hessian(lambda z, a=a: kl_at(a, z), a) for a in z0])


def test_categorical_output_fisher_is_the_softmax_fisher():
    logits = torch.randn(5, 4, generator=GEN)
    probs = torch.softmax(logits, dim=-1)
    expected = torch.diag_embed(probs) - probs[:, :, None] * probs[:, None, :]
    head = CategoricalHead(4)
    assert torch.allclose(head.output_fisher(logits), expected, atol=1e-12)
    generic = Head(head.family, link=lambda z: z[:, :-1] - z[:, -1:])  # the same map through autograd
    assert torch.allclose(generic.output_fisher(logits), expected, atol=1e-12)


def test_any_family_head_with_a_link_gets_its_exact_fisher():
    """A gamma head with softplus links: Jᵀ F J against the Hessian of torch's own gamma KL."""
    head = Head("gamma", link=lambda z: F.softplus(z))
    raw = torch.randn(6, 2, generator=GEN)

    def gamma(z):  # symgeo's gamma is (k, θ) shape–scale; torch's is (concentration, rate)
        k, theta = F.softplus(z).unbind(-1)
        return Gamma(k, 1 / theta)
    expected = _kl_hessian(lambda a, z: kl_divergence(gamma(a), gamma(z)), raw)
    assert torch.allclose(head.output_fisher(raw), expected, rtol=1e-8, atol=1e-10)


def test_normal_heads_against_torch_distributions():
    raw = torch.randn(7, 6, generator=GEN)
    head = DiagonalNormalHead(3)
    xi = head.params(raw)
    y = torch.randn(7, 3, generator=GEN)
    mean, log_std = raw.chunk(2, dim=-1)
    assert torch.allclose(head.log_prob(xi, y), Normal(mean, log_std.exp()).log_prob(y).sum(-1))
    expected = _kl_hessian(lambda a, z: kl_divergence(Normal(a[:3], a[3:].exp()),
                                                      Normal(z[:3], z[3:].exp())).sum(), raw)
    assert torch.allclose(head.output_fisher(raw), expected, atol=1e-10)
    unit = UnitNormalHead()
    assert torch.allclose(unit.output_fisher(raw), torch.eye(6).expand(7, 6, 6))


def test_bernoulli_head_fisher_is_p_times_one_minus_p():
    logits = torch.randn(4, 3, generator=GEN)
    p = torch.sigmoid(logits)
    assert torch.allclose(BernoulliHead().output_fisher(logits), torch.diag_embed(p * (1 - p)))


def test_pullback_matvec_equals_its_matrix_and_the_kl_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4))
    x = torch.randn(10, 3, generator=GEN)
    head = DiagonalNormalHead(2)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def params_of(w):
        chunks, start = {}, 0
        for name, shape in zip(names, shapes):
            size = torch.Size(shape).numel()
            chunks[name] = w[start:start + size].view(shape)
            start += size
        return head.params(torch.func.functional_call(model, chunks, (x,)))

    gauss_newton = GaussNewton.of(params_of, weights, head.fisher, damping=0.0)
    v = torch.randn(len(weights), generator=GEN)
    assert torch.allclose(gauss_newton.matvec(v), gauss_newton.matrix() @ v, atol=1e-12)
    xi0 = params_of(weights).detach()
    hessian = torch.autograd.functional.hessian(lambda w: head.kl(xi0, params_of(w)).mean(), weights)
    assert torch.allclose(gauss_newton.matrix(), hessian, atol=1e-10)


def test_a_head_without_a_sampler_says_so():
    with pytest.raises(ValueError, match="fisher='ggn'"):
        Head("gamma").sample(torch.ones(2, 1, 2))


def test_forward_mode_tangent_equals_torch_func_jvp_also_under_vmap():
    from torch.func import jvp, vmap

    from numeric.nets.heads import forward_mode
    head = Head("gamma", link=torch.exp)
    raw = torch.randn(9, 2, generator=GEN)
    tangent = torch.randn(9, 2, generator=GEN)
    expected = jvp(head.params, (raw,), (tangent,))
    for value, reference in zip(forward_mode(head.params, raw, tangent), expected):
        assert torch.allclose(value, reference, atol=1e-14)
    mapped = vmap(lambda r, t: forward_mode(head.params, r[None], t[None])[1][0])(raw, tangent)
    assert torch.allclose(mapped, expected[1], atol=1e-14)
    constant = forward_mode(lambda r: torch.ones(len(r), 1, 1), raw, tangent)
    assert torch.equal(constant[1], torch.zeros(9, 1, 1))


def _nb_log_prob(k, p, r=3):  # failures before the r-th success, success probability p
    return (torch.lgamma(k + r) - math.lgamma(r) - torch.lgamma(k + 1) + r * torch.log(p)
            + k * torch.log1p(-p))


# the output families the heads are for: (symgeo family, link, torch's law at ξ (or the hand NB), support)
NAMED_HEADS = {
    "negative_binomial:r=3": (torch.sigmoid, None, "counts"),
    "lognormal": (lambda z: torch.stack([z[:, 0], z[:, 1].exp()], -1),
                  lambda xi: torch.distributions.LogNormal(xi[0], xi[1]), (0, math.inf)),
    "beta": (lambda z: 1 + F.softplus(z), lambda xi: torch.distributions.Beta(xi[0], xi[1]), (0, 1)),
    "von_mises": (lambda z: torch.stack([z[:, 0], F.softplus(z[:, 1])], -1),
                  lambda xi: torch.distributions.VonMises(xi[0], xi[1]), (-math.pi, math.pi)),
    "student_t:nu=3": (lambda z: torch.stack([z[:, 0], z[:, 1].exp()], -1),
                       lambda xi: torch.distributions.StudentT(3.0, xi[0], xi[1]), (-math.inf, math.inf)),
    "weibull": (lambda z: 0.5 + F.softplus(z), lambda xi: torch.distributions.Weibull(xi[1], xi[0]),
                (0, math.inf)),
}


@pytest.mark.parametrize("name", list(NAMED_HEADS))
def test_named_family_heads_fisher_is_the_expected_outer_product_of_scores(name):
    """Jᵀ F J in the raw outputs against E[∇_z log p ∇_z log pᵀ], the expectation by quadrature (a sum for
    the counts) of scores autograd takes of torch's own log-density; and the head's log-density is torch's."""
    from scipy import integrate
    link, law, support = NAMED_HEADS[name]
    head = Head(name, link=link)
    m = 1 if support == "counts" else 2
    raw = 0.5 * torch.randn(2, m, generator=GEN)

    def score_and_density(z, y):
        z = z.clone().requires_grad_(True)
        xi = link(z[None])[0]
        log_p = _nb_log_prob(torch.tensor(float(y)), xi[0]) if law is None else law(xi).log_prob(
            torch.tensor(float(y)))
        (score,) = torch.autograd.grad(log_p, z)
        return score.numpy(), math.exp(float(log_p.detach()))

    for z, got in zip(raw, head.output_fisher(raw)):
        want = torch.zeros(m, m, dtype=torch.float64)
        if support == "counts":
            for k in range(2000):
                score, p = score_and_density(z, k)
                want += p * torch.outer(torch.tensor(score), torch.tensor(score))
        else:
            for i in range(m):
                for j in range(i, m):
                    def entry(y, z=z, i=i, j=j):
                        score, density = score_and_density(z, y)
                        return density * score[i] * score[j]
                    want[i, j] = want[j, i] = integrate.quad(entry, *support, limit=400, epsabs=1e-13,
                                                             epsrel=1e-11)[0]
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-12)
    if law is not None:
        xi = head.params(raw)
        y = law(xi[:, 0].T).mean.clamp(-3, 3) + 0.1  # a point inside each support
        # torch's von Mises normaliser is a polynomial approximation of log I₀ (about 1e-7)
        rtol = 1e-6 if name == "von_mises" else 1e-10
        assert torch.allclose(head.log_prob(xi, y), law(xi[:, 0].T).log_prob(y), rtol=rtol)
