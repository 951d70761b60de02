"""Library code leaves torch's global random stream and thread count as it found them."""
import pytest

torch = pytest.importorskip("torch")

from numeric.torch_state import local_torch_state  # noqa: E402


def test_the_block_is_seeded_and_the_callers_state_restored():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    with local_torch_state(seed=7, threads=1):
        inside = torch.rand(3)
        assert torch.get_num_threads() == 1
    assert torch.equal(torch.rand(3), expected)  # the caller's stream continues where it was
    assert torch.get_num_threads() == threads
    with local_torch_state(seed=7):
        assert torch.equal(torch.rand(3), inside)


def test_trpo_training_leaves_the_global_stream_alone():
    pytest.importorskip("gymnasium")
    from numeric.nets.rl import TrainConfig, train
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    train("CartPole-v1", 256, TrainConfig(n_envs=1, n_steps=128), seed=0, progress=False)
    assert torch.equal(torch.rand(2), expected)
