"""The fp32 PyTorch reference: the output every other runtime and variant is checked against.

The parent computes it once per model on a fixed probe input (``save_reference``) so that no
worker loads a second model, and the memory it holds, to check its own outputs; each worker
compares its runtime's output on the same input with it (``fidelity_probe``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from export.onnx_export import compare_outputs
from models.audio_format import SAMPLE_RATE
from models.build import build_weighted
from models.registry import get_spec
from runners.audio import synthetic_batch
from runners.runtimes.base import Runtime

PROBE_SECONDS = 1.0


def build_reference(model: str, tiny: bool, weights_source: str) -> Any:
    """``model`` in fp32 PyTorch with the run's weights (``random`` or a checkpoint/source)."""
    if weights_source == "random":
        return get_spec(model).build(tiny)
    return build_weighted(model, tiny, weights_source)[0]


def probe_input(spec: Any) -> np.ndarray:
    """The fixed input on which every runtime and variant is compared with fp32 PyTorch."""
    return synthetic_batch(1, max(spec.min_samples, int(PROBE_SECONDS * SAMPLE_RATE)), seed=99)


def save_reference(model: str, tiny: bool, weights_source: str, path: str | Path) -> None:
    """fp32 PyTorch outputs on the probe input, written to ``path`` (``.npz``)."""
    # deferred: torch is heavy and optional on an ONNX-Runtime-only path
    import torch

    wav = probe_input(get_spec(model))
    module = build_reference(model, tiny, weights_source)
    with torch.inference_mode():
        outputs = [o.numpy() for o in module(torch.from_numpy(wav))]
    np.savez(path, *outputs)


def fidelity_probe(runtime: Runtime, spec: Any, reference_path: str | None, reference_error: str | None,
                   is_reference: bool = False) -> tuple[float | None, float | None, str | None]:
    """Max abs error and cosine of ``runtime``'s output against the saved fp32 PyTorch output
    (``is_reference``: this runtime is fp32 PyTorch itself)."""
    if is_reference:
        return 0.0, 1.0, None
    if not reference_path or not Path(reference_path).exists():
        return None, None, reference_error or "no fp32 PyTorch reference for this model"
    with np.load(reference_path) as data:
        ref = [data[f"arr_{i}"] for i in range(len(data.files))]
    out = runtime.outputs_numpy(runtime.make_call(runtime.prepare(probe_input(spec)))())
    try:
        err, cosine = compare_outputs(ref, out)
    except Exception as exc:  # shape mismatch is itself a fidelity finding
        return None, None, f"fidelity probe failed: {exc}"
    return err, cosine, None
