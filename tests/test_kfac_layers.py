"""K-FAC blocks of Linear on sequences, Embedding, LayerNorm and BatchNorm2d against per-example Fisher
blocks computed here with torch.func (vmap of grad): exact where the block is exact (one example; the
normalisation layers' diagonals), the expand-convention factors otherwise."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.func import functional_call, grad, vmap  # noqa: E402

from numeric.nets.kfac import KFAC, block_for  # noqa: E402
from numeric.nets.layer_blocks import finite_groups  # noqa: E402


def _per_example_grads(model, x, y):
    """{name: (B, *shape)} gradients of each example's cross-entropy (its own loss)."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, xb, yb):
        out = functional_call(model, p, (xb[None],))
        return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), yb.reshape(-1), reduction="sum")
    return vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)


def _factors(model, x, y, module):
    optimizer = KFAC(model, fisher="empirical", ema_decay=0.0)
    optimizer.backward(_flat_logits(model(x)), y.reshape(-1))
    return block_for(module, optimizer.state[module.weight], "eigen")


def _flat_logits(out):
    return out.reshape(-1, out.shape[-1])


class Tokens(nn.Module):
    """Embedding → LayerNorm → Linear on every position: a sequence model's skeleton."""

    def __init__(self, vocab=7, dim=5):
        super().__init__()
        self.embed, self.norm, self.head = nn.Embedding(vocab, dim), nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def forward(self, tokens):
        return self.head(self.norm(self.embed(tokens)))


def _tokens(batch, length, seed=0):
    torch.manual_seed(seed)
    model = Tokens().double()
    with torch.no_grad():
        model.norm.weight.uniform_(0.5, 1.5)
        model.norm.bias.normal_()
    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 7, (batch, length), generator=generator)
    y = torch.randint(0, 7, (batch, length), generator=generator)
    return model, x, y


def test_one_example_one_position_the_kronecker_blocks_are_exact():
    """For a single example, vec(g aᵀ) vec(g aᵀ)ᵀ = (a aᵀ) ⊗ (g gᵀ): Linear and Embedding blocks equal the
    per-example Fisher block exactly."""
    model, x, y = _tokens(1, 1)
    grads = _per_example_grads(model, x, y)
    head = _factors(model, x, y, model.head)
    a, g = head.factors()
    g_w = torch.cat([grads["head.weight"][0], grads["head.bias"][0][:, None]], dim=1)  # (out, in + 1)
    exact = torch.outer(g_w.T.reshape(-1), g_w.T.reshape(-1))  # vec stacks columns (inputs)
    torch.testing.assert_close(torch.kron(a, g), exact)
    embed = _factors(model, x, y, model.embed)
    kron = torch.kron(torch.diag(embed.state["A"]), embed.state["G"])
    g_e = grads["embed.weight"][0]  # (V, D): row `token` is g
    torch.testing.assert_close(kron, torch.outer(g_e.reshape(-1), g_e.reshape(-1)))


def test_sequence_factors_follow_the_expand_convention():
    """Linear on (B, T, d) inputs: A = mean over all B·T rows of ã ãᵀ, G = (1/B) Σ_{b,t} g gᵀ."""
    model, x, y = _tokens(6, 4, seed=1)
    head = _factors(model, x, y, model.head)
    with torch.no_grad():
        hidden = model.norm(model.embed(x)).reshape(-1, 5)
        logits = model.head(hidden)
    a_tilde = torch.cat([hidden, torch.ones(len(hidden), 1, dtype=hidden.dtype)], dim=1)
    g = torch.softmax(logits, -1) - nn.functional.one_hot(y.reshape(-1), 7)
    a, gg = head.factors()
    torch.testing.assert_close(a, a_tilde.T @ a_tilde / len(hidden))
    torch.testing.assert_close(gg, g.T @ g / 6)


def test_layer_norm_diagonal_is_the_exact_per_example_fisher_diagonal():
    model, x, y = _tokens(8, 3, seed=2)
    grads = _per_example_grads(model, x, y)
    block = _factors(model, x, y, model.norm)
    torch.testing.assert_close(block.state["D0"], grads["norm.weight"].pow(2).mean(0))
    torch.testing.assert_close(block.state["D1"], grads["norm.bias"].pow(2).mean(0))


def test_batch_norm_diagonal_is_the_exact_per_example_fisher_diagonal():
    """BatchNorm2d in evaluation mode (running statistics, so each example's gradient is its own)."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 4)).double()
    with torch.no_grad():
        model[1].running_mean.normal_()
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(0.5, 1.5)
    model.eval()
    x = torch.randn(10, 2, 4, 4, dtype=torch.float64)
    y = torch.randint(0, 4, (10,))
    grads = _per_example_grads(model, x, y)
    optimizer = KFAC(model, fisher="empirical", ema_decay=0.0)
    optimizer.backward(model(x), y)
    block = block_for(model[1], optimizer.state[model[1].weight], "eigen")
    torch.testing.assert_close(block.state["D0"], grads["1.weight"].pow(2).mean(0))
    torch.testing.assert_close(block.state["D1"], grads["1.bias"].pow(2).mean(0))


def test_a_cnn_with_batch_norm_and_a_token_model_train():
    torch.manual_seed(4)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 8 * 8, 10))
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    optimizer = KFAC(cnn, lr=0.1, inverse_interval=1)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        losses.append(float(optimizer.backward(cnn(x), y)))
        optimizer.step()
    assert losses[-1] < 0.5 * losses[0]
    model, tokens, targets = _tokens(16, 8, seed=5)
    optimizer = KFAC(model, lr=0.1, inverse_interval=1)
    first = None
    for _ in range(15):
        optimizer.zero_grad()
        loss = float(optimizer.backward(_flat_logits(model(tokens)), targets.reshape(-1)))
        first = loss if first is None else first
        optimizer.step()
    assert loss < first


def test_multihead_attention_is_refused_by_name():
    with pytest.raises(ValueError, match="MultiheadAttention"):
        KFAC(nn.Sequential(nn.Linear(4, 4), nn.MultiheadAttention(4, 2)))


def test_preconditioner_and_optimizer_agree_on_every_block_kind():
    import copy

    from numeric.nets.preconditioner import KFACPreconditioner
    model_a, x, y = _tokens(8, 5, seed=6)
    model_b = copy.deepcopy(model_a)
    kfac = KFAC(model_a, lr=0.05, momentum=0.0, kl_clip=None, fisher="empirical", damping=1e-2,
                inverse_interval=1)
    pre = KFACPreconditioner(model_b, damping=1e-2, inverse_interval=1, reduction="mean_over_positions")
    sgd = torch.optim.SGD(model_b.parameters(), lr=0.05)
    for _ in range(3):
        kfac.zero_grad()
        kfac.backward(_flat_logits(model_a(x)), y.reshape(-1))
        kfac.step()
        sgd.zero_grad()
        nn.functional.cross_entropy(_flat_logits(model_b(x)), y.reshape(-1)).backward()
        pre.step()
        sgd.step()
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_batch_norm_in_training_normalises_with_the_batch_statistics():
    """The per-example weight gradient Σ g ⊙ x̂ with x̂ from the batch's own mean and biased variance."""
    from numeric.nets.layer_blocks import DiagonalBlock
    torch.manual_seed(5)
    norm = nn.BatchNorm2d(3).double().train()
    x = torch.randn(6, 3, 4, 4, dtype=torch.float64) * 2 + 1
    g = torch.randn_like(x)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    normed = (x - mean) / torch.sqrt(var + norm.eps)
    weight, bias = DiagonalBlock(norm, {}).per_example(x, g)
    torch.testing.assert_close(weight, (g * normed).sum(dim=(2, 3)))
    torch.testing.assert_close(bias, g.sum(dim=(2, 3)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.sampled_from(["fine", "huge", "nan", "inf", "-inf"]),
                          st.sampled_from([torch.float32, torch.float64, torch.float16])),
                min_size=1, max_size=6),
       st.integers(1, 3))
def test_finite_groups_tells_non_finite_entries_from_overflowing_norms(tensors, groups):
    """The fast norm-based check against torch.isfinite entry by entry: finite tensors whose squares
    overflow (entries near the dtype's largest) are finite; one NaN or ±inf anywhere is not."""
    made = []
    for size, kind, dtype in tensors:
        t = torch.randn(size, dtype=torch.float64)
        if kind == "huge":
            t = t.sign() * torch.finfo(dtype).max * 0.9
        elif kind != "fine":
            t[size // 2] = float(kind)
        made.append(t.to(dtype))
    grouped = [made[i::groups] for i in range(groups)]
    expected = [all(bool(torch.isfinite(t).all()) for t in group) for group in grouped]
    assert finite_groups(grouped) == expected


@pytest.mark.parametrize("conv", [
    dict(kernel_size=3, padding=1), dict(kernel_size=3, padding="same"), dict(kernel_size=4, padding="same"),
    dict(kernel_size=3, padding="same", dilation=2), dict(kernel_size=(2, 3), padding="valid"),
    dict(kernel_size=3, padding=(0, 2), stride=2),
])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's own, in the forward
def test_convolution_patches_reproduce_the_weight_gradient(conv):
    """The patches K-FAC's A is built from are what the convolution multiplies: Σ g ãᵀ over examples and
    positions is autograd's weight and bias gradient, for numeric and "same"/"valid" paddings."""
    from numeric.nets.kronecker import _activations, _output_grads
    torch.manual_seed(7)
    module = nn.Conv2d(2, 3, **conv).double()
    x = torch.randn(4, 2, 7, 6, dtype=torch.float64)
    out = module(x)
    cotangent = torch.randn_like(out)
    out.backward(cotangent)
    a = _activations(module, x, torch.float64)
    g = _output_grads(module, cotangent, torch.float64)
    assert torch.allclose(g.T @ a, module.weight.grad.reshape(3, -1), rtol=1e-10, atol=1e-12)
    assert torch.allclose(g.sum(0), module.bias.grad, rtol=1e-10, atol=1e-12)
