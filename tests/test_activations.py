"""tanh from sigmoid (seq2seq/fast/activations.py) against torch.tanh."""
import torch

from seq2seq.fast.activations import tanh, tanh_from_doubled_


def test_tanh_matches_torch_including_strided_outputs():
    x = torch.linspace(-12, 12, 4001).reshape(1, -1).repeat(3, 1)
    torch.testing.assert_close(tanh(x), torch.tanh(x), atol=2e-7, rtol=0)
    wide = torch.zeros(3, 2 * x.size(1))
    result = tanh(x, out=wide[:, :x.size(1)])
    torch.testing.assert_close(wide[:, :x.size(1)], torch.tanh(x), atol=2e-7, rtol=0)
    assert result.data_ptr() == wide.data_ptr() and bool((wide[:, x.size(1):] == 0).all())
    doubled = x * 2
    torch.testing.assert_close(tanh_from_doubled_(doubled), torch.tanh(x), atol=2e-7, rtol=0)
    x64 = x.double()
    torch.testing.assert_close(tanh(x64), torch.tanh(x64))


def test_tanh_under_autograd_is_torch_tanh():
    x = torch.randn(5, 7, requires_grad=True)
    y = tanh(x)
    y.sum().backward()
    assert y.grad_fn is not None and "Tanh" in type(y.grad_fn).__name__
    torch.testing.assert_close(x.grad, 1 - torch.tanh(x.detach()) ** 2)
