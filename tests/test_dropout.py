import pytest
import torch

from seq2seq.fast.dropout import Dropout


def test_keeps_one_minus_p_and_scales_like_nn_dropout():
    torch.manual_seed(0)
    drop = Dropout(0.25).train()
    x = torch.ones(200_000, requires_grad=True)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.75))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d y / d x is the scaled mask


def test_identity_in_eval_or_at_zero():
    x = torch.randn(5, 7)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x


def test_refuses_a_probability_outside_0_1():
    with pytest.raises(ValueError, match="not in"):
        Dropout(1.0)
