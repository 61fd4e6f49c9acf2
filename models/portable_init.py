"""Seeded random weights that are the same numbers on every machine.

A board uses ExecuTorch programs and LiteRT models made on a laptop only when they were made from
the very same weights (``runners/runtimes/artifacts.py`` compares the module's hash), and a
reviewer compares a Pi's outputs with a laptop's.  PyTorch's ``Tensor.normal_`` is not the same
on every CPU: on x86-64 with AVX2 it runs Box-Muller with SLEEF's vectorised float32 log and cos,
elsewhere with the C library's scalar ones, and the last bits differ (an emulated aarch64 drew other
weights for every normal-initialised layer of TERA: docs/platforms.md).  ``torch.rand`` in float64
is the same everywhere (integers from the seeded Mersenne Twister, scaled by 2**-53, serially).

So while a model is built (:func:`portable_normal`), ``normal_`` draws its values from uniforms
alone, with no transcendental function and a fixed order of additions: the sum of 12 uniforms less 6
(Irwin-Hall), mean 0 and variance exactly 1, bounded at +-6 (a normal's tail beyond 6 sigma has
probability 2e-9), then scaled and shifted in float64 and rounded once to the tensor's dtype.
``kaiming_normal_``, ``xavier_normal_`` and ``init.normal_`` all end in ``Tensor.normal_`` and get the
same.  Distributions other than the normal (``uniform_``, constants) are left as PyTorch draws them.

One more thing differs by CPU: a weight norm's magnitude (``g = ||v||``, wav2vec 2.0's and HuBERT's
positional convolution) is a reduction, whose order of additions follows the CPU's vector width.
:func:`exact_weight_norms` sets every such ``g`` anew from ``v`` with a correctly rounded sum
(``math.fsum`` of the float64 squares, exact for float32 values) and a correctly rounded root.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import torch

TERMS = 12  # uniforms summed per value: variance TERMS / 12 = 1


def irwin_hall_like(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``tensor`` with ``mean + std * (sum of 12 uniform(0, 1) - 6)``, the same bits on every CPU."""
    with torch.no_grad():
        total = torch.zeros(tensor.numel(), dtype=torch.float64)
        for _ in range(TERMS):  # one elementwise add at a time: the order of the sums is fixed
            total.add_(torch.rand(tensor.numel(), dtype=torch.float64, generator=generator))
        values = (total - TERMS / 2) * float(std) + float(mean)
        tensor.copy_(values.reshape(tensor.shape).to(tensor.dtype))
    return tensor


@contextlib.contextmanager
def portable_normal() -> Iterator[None]:
    """Inside: ``Tensor.normal_`` on a CPU float tensor draws with :func:`irwin_hall_like`."""
    original = torch.Tensor.normal_

    def normal_(self: torch.Tensor, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> torch.Tensor:
        if self.device.type != "cpu" or not self.is_floating_point():
            return original(self, mean, std, generator=generator)
        return irwin_hall_like(self, mean, std, generator)

    torch.Tensor.normal_ = normal_  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.normal_ = original  # type: ignore[method-assign]


def exact_weight_norms(model: torch.nn.Module) -> int:
    """Set each weight norm's ``g`` to the exactly rounded norm of its ``v`` (over every dimension
    but the parametrization's ``dim``); how many were set."""
    from torch.nn.utils import parametrize  # deferred: a small corner of torch, only built models use it

    count = 0
    for module in model.modules():
        if not parametrize.is_parametrized(module):
            continue
        for plist in module.parametrizations.values():  # type: ignore[union-attr]
            norms = [p for p in plist if type(p).__name__ == "_WeightNorm"]
            if len(norms) != 1 or not hasattr(plist, "original0") or not hasattr(plist, "original1"):
                continue
            g, v, dim = plist.original0, plist.original1, norms[0].dim
            rows = v.detach().double().movedim(dim, 0).reshape(v.shape[dim], -1).numpy() if dim != -1 else \
                v.detach().double().reshape(1, -1).numpy()
            exact = torch.tensor([math.sqrt(math.fsum(row * row)) for row in rows], dtype=torch.float64)
            with torch.no_grad():
                g.copy_(exact.reshape(g.shape).to(g.dtype))
            count += 1
    return count
