"""The fp32 PyTorch reference: the output every other runtime and variant is checked against.

The parent computes it once per model on a fixed probe input (``save_reference``) so that no
worker loads a second model, and the memory it holds, to check its own outputs; each worker
compares its runtime's output on the same input with it (``fidelity_probe``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from export.onnx_export import code_digest, compare_outputs, model_libraries
from models.audio_format import SAMPLE_RATE
from models.build import build_weighted
from models.registry import get_spec
from models.weights import resolve_source
from runners.audio import synthetic_batch
from runners.runtimes.base import Runtime, UnsupportedError

PROBE_SECONDS = 1.0
PROBE_SEED = 99


def build_reference(model: str, tiny: bool, weights_source: str) -> Any:
    """``model`` in fp32 PyTorch with the run's weights (``random`` or a checkpoint/source)."""
    if weights_source == "random":
        return get_spec(model).build(tiny)
    return build_weighted(model, tiny, weights_source)[0]


def probe_shape(spec: Any) -> tuple[int, int]:
    """(batch, samples) of the probe input (a runtime with per-shape artifacts needs one for it too)."""
    return 1, max(spec.min_samples, int(PROBE_SECONDS * SAMPLE_RATE))


def probe_input(spec: Any) -> np.ndarray:
    """The fixed input on which every runtime and variant is compared with fp32 PyTorch."""
    return synthetic_batch(*probe_shape(spec), seed=PROBE_SEED)


def save_reference(model: str, tiny: bool, weights_source: str, path: str | Path,
                   cache_dir: str | Path | None = None) -> bool:
    """fp32 PyTorch outputs on the probe input, written to ``path`` (``.npz``); True when they
    came from ``cache_dir``.

    With seeded random weights the outputs are fixed by the model code, its configuration and the
    torch version, so they are cached beside the exported files (like the exports themselves) and
    a later run copies them instead of building the model again; checkpoints are never cached
    (a file may change under the same name)."""
    cached = None
    if cache_dir is not None and resolve_source(model, weights_source, tiny).lower() == "random":
        cached = Path(cache_dir) / f"{reference_key(model, tiny)}.npz"
        if cached.is_file():
            shutil.copyfile(cached, path)
            return True
    # deferred: torch is heavy and optional on an ONNX-Runtime-only path
    import torch

    wav = probe_input(get_spec(model))
    module = build_reference(model, tiny, weights_source)
    with torch.inference_mode():
        outputs = [o.numpy() for o in module(torch.from_numpy(wav))]
    with open(path, "wb") as out:
        np.savez(out, *outputs)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.part")
        shutil.copyfile(path, partial)
        partial.replace(cached)  # atomic: a concurrent run reads the old file or the whole new one
    return False


def reference_key(model: str, tiny: bool) -> str:
    """The cache name of a model's seeded-random reference: what its outputs depend on."""
    spec = get_spec(model)
    digest = hashlib.sha256(json.dumps([model, tiny, model_libraries(), code_digest(), spec.arch,
                                        PROBE_SECONDS, PROBE_SEED], default=str).encode()).hexdigest()[:16]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model)}{'-tiny' if tiny else ''}-{digest}"


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
    try:
        out = runtime.outputs_numpy(runtime.make_call(runtime.prepare(probe_input(spec)))())
    except UnsupportedError as exc:  # a runtime with an artifact per shape (ExecuTorch) may refuse this one
        return None, None, f"fidelity probe not run: {exc}"
    try:
        err, cosine = compare_outputs(ref, out)
    except Exception as exc:  # shape mismatch is itself a fidelity finding
        return None, None, f"fidelity probe failed: {exc}"
    return err, cosine, None
