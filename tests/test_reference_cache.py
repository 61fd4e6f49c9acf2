"""The fp32 reference outputs are cached beside the exports for seeded random weights only."""

from __future__ import annotations

import numpy as np
import torch

from models.registry import get_spec
from runners.reference import reference_key, save_reference


def arrays(path):
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def test_seeded_random_references_are_computed_once_and_copied_after(tmp_path):
    cache = tmp_path / "onnx" / "references"
    first, second = tmp_path / "run1.npz", tmp_path / "run2.npz"
    assert save_reference("apc", True, "default", first, cache) is False  # computed, then cached
    assert [p.name for p in cache.iterdir()] == [f"{reference_key('apc', True)}.npz"]
    assert save_reference("apc", True, "random", second, cache) is True  # default = random at toy size
    for a, b in zip(arrays(first), arrays(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert reference_key("apc", True) != reference_key("apc", False) != reference_key("tera", False)


def test_a_checkpoint_reference_is_never_cached(tmp_path):
    checkpoint = tmp_path / "apc.pt"
    model = get_spec("apc").build(True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    torch.save(model.state_dict(), checkpoint)
    cache = tmp_path / "cache"
    out = tmp_path / "ref.npz"
    assert save_reference("apc", True, str(checkpoint), out, cache) is False
    assert not cache.exists() or not any(cache.iterdir())
    random_ref = tmp_path / "random.npz"
    save_reference("apc", True, "random", random_ref)
    assert not np.allclose(arrays(out)[-1], arrays(random_ref)[-1])  # the checkpoint's weights were used
