"""seq2seq/fast/fused_loss.py: the fused projection + cross-entropy equals F.cross_entropy over the projected logits."""
import pytest
import torch
import torch.nn.functional as F

from seq2seq.fast.fused_loss import projected_cross_entropy


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_cross_entropy_and_its_gradients(smoothing, with_bias):
    torch.manual_seed(0)
    features = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(11, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(11, dtype=torch.float64, requires_grad=True) if with_bias else None
    gold = torch.tensor([0, 3, 10, 3, 5, 1, 9])
    inputs = [features, weight] + ([bias] if with_bias else [])

    expected = F.cross_entropy(F.linear(features, weight, bias), gold, label_smoothing=smoothing, reduction="sum")
    expected_grads = torch.autograd.grad(expected * 3, inputs)
    got = projected_cross_entropy(features, weight, bias, gold, smoothing)
    got_grads = torch.autograd.grad(got * 3, inputs)  # a scaled loss scales every gradient

    torch.testing.assert_close(got, expected)
    for g, e in zip(got_grads, expected_grads):
        torch.testing.assert_close(g, e)


def test_large_logits_do_not_overflow():
    features = torch.tensor([[1000.0, 0.0], [0.0, -1000.0]], requires_grad=True)
    weight = torch.eye(2)
    gold = torch.tensor([1, 0])
    loss = projected_cross_entropy(features, weight, None, gold)
    expected = F.cross_entropy(features @ weight.t(), gold, reduction="sum")
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert torch.isfinite(features.grad).all()


def test_a_second_backward_is_refused_not_wrong():
    """The backward turns the kept buffer into the gradient in place, so the graph is single-use."""
    features = torch.randn(3, 4, requires_grad=True)
    loss = projected_cross_entropy(features, torch.randn(5, 4), None, torch.tensor([0, 1, 2]))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="inplace"):
        loss.backward()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_rows_whose_gold_probability_underflows_keep_an_exact_loss(smoothing):
    """The normaliser comes from log p_gold; where p_gold underflows float32 (here exp(-200) and
    exp(-90)), the row's is recomputed, so loss and gradients still equal F.cross_entropy's."""
    features = torch.tensor([[200.0, 0.0, 1.0], [0.0, 1.0, 2.0], [90.0, 0.0, 0.0]], requires_grad=True)
    weight, gold = torch.eye(3), torch.tensor([1, 2, 2])
    loss = projected_cross_entropy(features, weight, None, gold, smoothing)
    expected = F.cross_entropy(features @ weight.t(), gold, label_smoothing=smoothing, reduction="sum")
    torch.testing.assert_close(loss, expected)
    (grad,) = torch.autograd.grad(loss, features)
    (expected_grad,) = torch.autograd.grad(expected, features)
    torch.testing.assert_close(grad, expected_grad)
