"""Parameter counts, the several ways people mean them.

- ``params_total``: every parameter reference counted, so a tensor shared by 12 layers counts
  12 times (``named_parameters(remove_duplicate=False)``): the parameter-uses that compute sees.
- ``params_unique``: each tensor once (``model.parameters()``): what a checkpoint stores and what
  papers and SUPERB report.
- ``params_used``: unique parameters that inference actually touches, found by differentiating
  the outputs of a short forward pass: a parameter whose gradient is absent (training-only
  heads such as APC's postnet, wav2vec 2.0's ``masked_spec_embed``) is not used.
- ``onnx_initializers``: the number of values stored as initializers in the exported ONNX file
  (buffers such as the mel matrix and position tables appear there; shared layers once).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass
class ParamCounts:
    params_total: int
    params_unique: int
    params_used: int
    model_bytes: int
    unused_names: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def count_parameters(model: nn.Module, example: torch.Tensor) -> ParamCounts:
    """Count parameters of ``model``; ``example`` is a small valid waveform batch."""
    total = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    named = list(model.named_parameters())
    unique = sum(p.numel() for _, p in named)
    grads: list = []
    if named:
        with torch.enable_grad():
            outputs = model(example)
            loss = sum(o.float().sum() for o in outputs)
            grads = list(torch.autograd.grad(loss, [p for _, p in named], allow_unused=True))
    unused = [name for (name, _), g in zip(named, grads) if g is None]
    used = sum(p.numel() for (_, p), g in zip(named, grads) if g is not None)
    tensors = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    model_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
    return ParamCounts(total, unique, used, model_bytes, unused)


def onnx_initializer_count(path: str | Path) -> int:
    """Number of values in the ONNX file's initializers and constant tensors."""
    # deferred: onnx is loaded only where a graph is read or written
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=False)
    count = 0
    for init in model.graph.initializer:
        count += int(_numel(init.dims))
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    count += int(numpy_helper.to_array(attr.t).size)
    return count


def _numel(dims) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n
