"""Units of the shared layers: AdaIN, self-attention, spectral norm and its folding."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from livingportrait_backend.model.adain import AdaIN, InstanceNorm
from livingportrait_backend.model.attention import QUERY_BLOCK, SelfAttention
from livingportrait_backend.model.spectral_norm import fold_spectral_norm, sn


def test_adain_output_has_the_statistics_psi_asks_for():
    torch.manual_seed(0)
    ada = AdaIN(4)
    x = torch.randn(2, 4, 8, 8) * 5 + 3
    scale_offset = torch.tensor([[0.5, -0.5, 1.0, 0.0], [0.0, 0.0, 2.0, -0.9]])
    bias = torch.tensor([[1.0, -2.0, 0.0, 3.0], [0.5, 0.5, 0.5, 0.5]])
    y = ada(x, torch.cat([scale_offset, bias], dim=1))
    var, mean = torch.var_mean(y, dim=(2, 3), unbiased=False)
    torch.testing.assert_close(mean, bias, atol=1e-4, rtol=0)
    torch.testing.assert_close(var.sqrt(), (1 + scale_offset).abs(), atol=1e-3, rtol=1e-3)


def test_adain_on_a_flat_feature_map_stays_finite():
    # Without the epsilon the std of a constant map is 0 and the division gives NaN.
    ada = AdaIN(3)
    y = ada(torch.full((1, 3, 4, 4), 7.0), torch.zeros(1, 6))
    assert torch.isfinite(y).all()
    assert y.abs().max() == 0


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_instance_norm_matches_torch_and_keeps_the_layout(layout):
    torch.manual_seed(0)
    norm = InstanceNorm(6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = (torch.randn(3, 6, 9, 7) * 4 + 100).contiguous(memory_format=layout)  # a large mean must not cancel
    y = norm(x)
    torch.testing.assert_close(y, F.instance_norm(x, weight=norm.weight, bias=norm.bias, eps=norm.eps),
                               atol=1e-4, rtol=1e-4)
    assert y.is_contiguous(memory_format=layout)
    assert set(norm.state_dict()) == {"weight", "bias"}  # nn.InstanceNorm2d's keys: checkpoints still load


def test_self_attention_in_query_blocks_equals_the_whole_matrix():
    torch.manual_seed(0)
    att = SelfAttention(16).eval()  # eval: spectral norm's power iteration leaves the weights alone
    with torch.no_grad():
        att.gamma.fill_(0.7)
    x = torch.randn(2, 16, 25, 31)  # 775 positions: a full block and a remainder
    assert 25 * 31 > QUERY_BLOCK
    q = att.query(x).flatten(2).transpose(1, 2)
    k, v = att.key(x).flatten(2), att.value(x).flatten(2)
    whole = torch.bmm(v, torch.softmax(torch.bmm(q, k), dim=-1).transpose(1, 2)).reshape(x.shape)
    torch.testing.assert_close(att(x), x + 0.7 * whole, atol=1e-5, rtol=1e-5)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(att(x_cl), x + 0.7 * whole, atol=1e-5, rtol=1e-5)
    assert att(x_cl).is_contiguous(memory_format=torch.channels_last)


def test_self_attention_starts_as_identity_and_mixes_once_gamma_moves():
    torch.manual_seed(0)
    att = SelfAttention(16)
    x = torch.randn(2, 16, 6, 5)
    torch.testing.assert_close(att(x), x)
    with torch.no_grad():
        att.gamma.fill_(1.0)
    y = att(x)
    assert y.shape == x.shape
    assert (y - x).abs().mean() > 1e-3
    # Non-local: changing one position changes the output at a far-away position.
    x2 = x.clone()
    x2[:, :, 0, 0] += 5.0
    assert (att(x2)[:, :, 5, 4] - y[:, :, 5, 4]).abs().max() > 1e-4


def test_spectral_norm_bounds_the_largest_singular_value_and_folds_exactly():
    torch.manual_seed(0)
    lin = sn(nn.Linear(32, 16))
    with torch.no_grad():
        lin.parametrizations.weight.original.mul_(10.0)
    lin.train()
    for _ in range(50):  # power iterations run in training-mode forwards
        lin(torch.randn(4, 32))
    lin.eval()
    sigma = torch.linalg.matrix_norm(lin.weight.detach(), ord=2)
    assert abs(float(sigma) - 1.0) < 1e-3
    x = torch.randn(3, 32)
    before = lin(x)
    fold_spectral_norm(lin)
    assert not hasattr(lin, "parametrizations")
    assert isinstance(lin.weight, nn.Parameter)
    torch.testing.assert_close(lin(x), before)
