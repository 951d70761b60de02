"""symgeo.testing's torch helpers: the exact Jᵀ F J of a network head against double-backprop
Fisher-vector products and a Jacobian built here, and a broken FVP caught."""
import pytest

torch = pytest.importorskip("torch")

from symgeo.testing import assert_fvp_matches, exact_ggn


def _model(outputs, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, outputs)).double()


def _normal(out):
    return out[:, 0], out[:, 1].exp()


def normal_kl(m0, s0, m, s):
    return torch.log(s / s0) + (s0 ** 2 + (m0 - m) ** 2) / (2 * s ** 2) - 0.5


def poisson_kl(l0, lam):
    return l0 * torch.log(l0 / lam) - l0 + lam


def double_backprop_fvp(model, x, kl, head):
    """G v as the Hessian of the mean KL from the current outputs, at the current weights."""
    params = [p for p in model.parameters()]
    with torch.no_grad():
        fixed = head(model(x))

    def fvp(v):
        loss = kl(*fixed, *head(model(x))).mean()
        grads = torch.autograd.grad(loss, params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        hv = torch.autograd.grad(flat @ v, params)
        return torch.cat([h.reshape(-1) for h in hv])
    return fvp


def test_normal_head_fvp_equals_double_backprop():
    model, x = _model(2), torch.randn(16, 3, dtype=torch.float64)
    fvp = double_backprop_fvp(model, x, normal_kl, _normal)
    assert assert_fvp_matches(fvp, model, x, "normal", to_params=_normal, rtol=1e-10) == 3


def test_poisson_head_with_a_log_link():
    model, x = _model(1, seed=1), torch.randn(20, 3, dtype=torch.float64)

    def head(out):
        return (out[:, 0].exp(),)
    fvp = double_backprop_fvp(model, x, poisson_kl, head)
    assert_fvp_matches(fvp, model, x, "poisson", to_params=head, rtol=1e-10)


def test_a_missing_term_and_nan_are_caught():
    model, x = _model(2), torch.randn(16, 3, dtype=torch.float64)
    good = double_backprop_fvp(model, x, normal_kl, _normal)

    def only_the_mean(v):  # the σ part of the Fisher forgotten
        def kl_mean_only(m0, s0, m, s):
            return (m0 - m) ** 2 / (2 * s0 ** 2)
        return double_backprop_fvp(model, x, kl_mean_only, _normal)(v)
    with pytest.raises(AssertionError, match=r"normal head, vector 0 .*worst entry"):
        assert_fvp_matches(only_the_mean, model, x, "normal", to_params=_normal)
    with pytest.raises(AssertionError, match="relative error"):
        assert_fvp_matches(lambda v: good(v) * float("nan"), model, x, "normal", to_params=_normal)


def test_exact_ggn_equals_a_jacobian_built_here():
    model, x = _model(2, seed=2), torch.randn(5, 3, dtype=torch.float64)
    names = [n for n, _ in model.named_parameters()]
    weights = {n: p.detach() for n, p in model.named_parameters()}

    def xi_of(flat):
        parts, start = {}, 0
        for n in names:
            parts[n] = flat[start:start + weights[n].numel()].reshape(weights[n].shape)
            start += weights[n].numel()
        m, s = _normal(torch.func.functional_call(model, parts, (x,)))
        return torch.stack([m, s], 1)
    flat = torch.cat([weights[n].reshape(-1) for n in names])
    jac = torch.autograd.functional.jacobian(xi_of, flat)  # (N, 2, P)
    sigma = xi_of(flat)[:, 1]
    fisher = torch.zeros(len(x), 2, 2, dtype=torch.float64)
    fisher[:, 0, 0], fisher[:, 1, 1] = 1 / sigma ** 2, 2 / sigma ** 2  # the normal's Fisher in (μ, σ)
    expected = torch.einsum("nip,nij,njq->pq", jac, fisher, jac) / len(x)
    got = exact_ggn(model, x, "normal", to_params=_normal)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert torch.allclose(got, got.T, atol=1e-12)
