"""Random weights drawn the same on every machine (models/portable_init.py): normal_ inside a
model's build draws from float64 uniforms alone, in a fixed order."""

from __future__ import annotations

import numpy as np
import torch

from models.portable_init import irwin_hall_like, portable_normal
from models.registry import get_spec


def test_the_values_are_twelve_uniforms_less_six_scaled():
    torch.manual_seed(3)
    with portable_normal():
        got = torch.empty(5, 7).normal_(0.5, 0.02)
    torch.manual_seed(3)
    uniforms = [torch.rand(35, dtype=torch.float64).numpy() for _ in range(12)]
    total = np.zeros(35)
    for u in uniforms:
        total = total + u
    want = ((total - 6.0) * 0.02 + 0.5).astype(np.float32).reshape(5, 7)
    assert got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), want)


def test_mean_and_spread_are_the_normals():
    gen = torch.Generator().manual_seed(0)
    x = irwin_hall_like(torch.empty(200_000, dtype=torch.float64), 1.0, 2.0, gen).numpy()
    assert abs(x.mean() - 1.0) < 0.02 and abs(x.std() - 2.0) < 0.02
    assert x.min() >= 1.0 - 12.0 and x.max() <= 1.0 + 12.0


def test_outside_a_build_pytorch_draws_as_before_and_the_patch_is_undone():
    original = torch.Tensor.normal_
    with portable_normal():
        assert torch.Tensor.normal_ is not original
    assert torch.Tensor.normal_ is original
    torch.manual_seed(1)
    plain = torch.empty(64).normal_()
    torch.manual_seed(1)
    with portable_normal():
        portable = torch.empty(64).normal_()
    assert not torch.equal(plain, portable)
    assert torch.empty(3, dtype=torch.int64).random_(0, 5).dtype == torch.int64  # other draws untouched


def test_a_models_normal_initialised_layers_come_from_it():
    """TERA's Linear weights are normal_(0, 0.02): drawn here, they are bounded at 6 x 0.02."""
    model = get_spec("tera").build(tiny=True)
    again = get_spec("tera").build(tiny=True)
    weight = model.transformer.encoder.layer[0].attention.self.query.weight
    assert torch.equal(weight, again.transformer.encoder.layer[0].attention.self.query.weight)
    assert float(weight.abs().max()) <= 6 * 0.02 + 1e-7
    assert abs(float(weight.std()) - 0.02) < 0.002


def test_weight_norms_are_the_exactly_rounded_norms_of_their_directions():
    import math

    from torch.nn.utils.parametrizations import weight_norm

    from models.portable_init import exact_weight_norms

    torch.manual_seed(0)
    conv = weight_norm(torch.nn.Conv1d(6, 4, 5), name="weight", dim=2)
    assert exact_weight_norms(torch.nn.Sequential(conv, torch.nn.Linear(3, 3))) == 1
    g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    for k in range(5):  # dim 2: one norm per kernel position, over output and input channels
        column = v[:, :, k].detach().double().flatten().tolist()
        assert float(g[0, 0, k]) == float(torch.tensor(math.sqrt(math.fsum(x * x for x in column)), dtype=torch.float32))
    model = get_spec("wav2vec2-base").build(tiny=True)  # its positional convolution is weight-normed
    p = model.model.encoder.pos_conv_embed.conv.parametrizations.weight
    v = p.original1.detach().double()
    exact = torch.tensor([math.sqrt(math.fsum(v[:, :, k].flatten().tolist()[i] ** 2 for i in range(v[:, :, k].numel())))
                          for k in range(v.shape[2])], dtype=torch.float32)
    assert torch.equal(p.original0.flatten(), exact)
