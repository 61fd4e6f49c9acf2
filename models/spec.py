"""What a model is to wavebench: :class:`ModelSpec` and the errors of looking one up.

Its own module so the registry (built-in models) and the sources (models users bring) both
build specs without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from models.frontend import SAMPLE_RATE
from models.portable_init import exact_weight_norms, portable_normal

BUILD_SEED = 0
SOURCE_PREFIXES = ("python:", "onnx:", "s3prl:", "hf:")


class UnknownModelError(ValueError):
    pass


class NoTorchModelError(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    category: str
    source: str
    frame_rate_hz: float
    min_samples: int
    hop_samples: int
    builder: Callable[[bool], nn.Module] | None
    arch: dict[str, Any] = field(default_factory=dict)
    published_params: int | None = None
    published_note: str = ""
    # librosa-style centre padding (n_fft // 2 zeros each side): T = N // hop + 1
    centered: bool = False

    @property
    def min_duration_s(self) -> float:
        return self.min_samples / SAMPLE_RATE

    def frames(self, n_samples: int) -> int:
        """Output frames for ``n_samples`` input samples (0 when the input is too short)."""
        if n_samples < self.min_samples:
            return 0
        if self.centered:
            return n_samples // self.hop_samples + 1
        return (n_samples - self.min_samples) // self.hop_samples + 1

    def build(self, tiny: bool = False) -> nn.Module:
        """Build in eval mode with seeded random weights (the same weights on every call and machine)."""
        if self.builder is None:
            raise NoTorchModelError(f"{self.name} has no PyTorch model (an ONNX file runs in ONNX Runtime only)")
        torch.manual_seed(BUILD_SEED)
        with portable_normal():  # the same weights on every CPU (models/portable_init.py)
            model = self.builder(tiny)
        exact_weight_norms(model)
        return model.eval()
