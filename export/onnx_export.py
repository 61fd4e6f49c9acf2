"""Export a registered model to ONNX, check it against PyTorch, and record it in a manifest.

The exported graph takes ``waveform`` (batch, samples) with both axes dynamic and returns
``hidden_state_0 .. hidden_state_L``.  The check runs both runtimes on fresh random inputs of
two lengths and two batch sizes and fails the model's export, with the numbers, when the
outputs disagree.  Re-export is skipped when the model, the exporter and the file are unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import json
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from export.fidelity import OutputMismatch, agrees, compare_outputs
from export.params import count_parameters, onnx_initializer_count
from models.build import build_weighted
from models.registry import ModelSpec, get_spec
from models.weights import NO_WEIGHTS_LABEL, resolve_source

OPSET = {"torchscript": 17, "dynamo": 18}
EXPORTERS = tuple(OPSET)
CHECK_INPUTS = ((1, 1.37), (3, 2.5))  # (batch, seconds): two lengths, not hop multiples
MANIFEST = "manifest.json"


class ExportError(RuntimeError):
    """An export or its check failed; the message carries the numbers."""


@dataclass
class CheckResult:
    batch: int
    samples: int
    max_abs_err: float
    cosine: float
    ok: bool


# the files that define what an exported graph computes: a change in any of them re-exports
MODEL_CODE = ("models/frontend.py", "models/s3prl_models.py", "models/hf_models.py", "models/registry.py",
              "export/onnx_export.py")
REPO_ROOT = Path(__file__).resolve().parent.parent


def code_digest() -> str:
    """Hash of the model and export code: a change here invalidates exported files."""
    h = hashlib.sha256()
    for name in MODEL_CODE:
        h.update((REPO_ROOT / name).read_bytes())
    return h.hexdigest()[:16]


def model_libraries() -> list[str]:
    """Versions of the libraries that build the models and draw their seeded random weights
    (transformers initialises wav2vec 2.0 and HuBERT; a new release may draw other weights)."""
    found = [f"torch {torch.__version__}"]
    for name in ("transformers", "s3prl"):
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} absent")
    return found


def fingerprint(spec: ModelSpec, tiny: bool, exporter: str) -> str:
    """What an exported file depends on: the model, its code, the exporter and the libraries."""
    h = hashlib.sha256(json.dumps(
        [spec.name, tiny, exporter, OPSET[exporter], model_libraries(), code_digest(), spec.arch]).encode())
    return h.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_onnx(model: torch.nn.Module, path: Path, seed: int = 1234) -> list[CheckResult]:
    """Run PyTorch and ONNX Runtime on fresh random inputs and compare every output."""
    # deferred: onnxruntime is heavy and optional on a PyTorch-only path
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    results = []
    for batch, seconds in CHECK_INPUTS:
        samples = int(seconds * 16000)
        wav = torch.randn(batch, samples, generator=gen) * 0.1
        with torch.inference_mode():
            ref = [o.numpy() for o in model(wav)]
        out = session.run(None, {"waveform": wav.numpy()})
        try:
            err, cosine = compare_outputs(ref, out)
        except OutputMismatch as exc:
            raise ExportError(str(exc)) from None
        results.append(CheckResult(batch, samples, err, cosine, agrees(ref, err, cosine)))
    return results


def onednn_rnn_verdict(model: torch.nn.Module, path: Path) -> str:
    """When an RNN model's ONNX graph disagrees with PyTorch, whose output is off: PyTorch runs
    GRUs and LSTMs through oneDNN where it can, and on an emulated Arm CPU with SVE that path gave
    wrong results for a small GRU while PyTorch's own kernel, ONNX Runtime and the other runtimes
    agreed with a NumPy reference (docs/platforms.md).  The check is run again with oneDNN off; if
    the graph then agrees, the words say so (the file is refused all the same: the PyTorch runner
    would measure the oneDNN path).  Empty when it does not apply or tells nothing."""
    if not torch.backends.mkldnn.is_available() or not torch.backends.mkldnn.enabled:
        return ""
    if not any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
        return ""
    try:
        with torch.backends.mkldnn.flags(enabled=False):
            plain = check_onnx(model, path)
    except Exception:  # a second opinion that cannot be had: the first one's words stand alone
        return ""
    if not all(c.ok for c in plain):
        return ""
    worst = min(plain, key=lambda c: c.cosine)
    return (f"; with oneDNN off, PyTorch agrees with the ONNX graph (cosine {worst.cosine:.6f}, max abs err "
            f"{worst.max_abs_err:.3g}): this machine's oneDNN RNN kernel is the output that is off, not the "
            f"ONNX graph (docs/platforms.md; benchmarks/gru_kernels.py checks each runtime against NumPy)")


def _torch_export(model: torch.nn.Module, spec: ModelSpec, path: Path, exporter: str, n_outputs: int) -> None:
    example = torch.randn(2, 16000)
    names = [f"hidden_state_{i}" for i in range(n_outputs)]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            axes = {"waveform": {0: "batch", 1: "samples"}}
            axes.update({n: {0: "batch", 1: "frames"} for n in names})
            torch.onnx.export(model, (example,), str(path), input_names=["waveform"],
                              output_names=names, dynamic_axes=axes, opset_version=OPSET[exporter],
                              dynamo=False)
        else:
            batch = torch.export.Dim("batch", min=1, max=4096)
            samples = torch.export.Dim("samples", min=spec.min_samples, max=16000 * 3600)
            torch.onnx.export(model, (example,), str(path), input_names=["waveform"],
                              output_names=names, dynamic_shapes=({0: batch, 1: samples},),
                              opset_version=OPSET[exporter], dynamo=True, external_data=False)


def load_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / MANIFEST
    if not path.exists():
        return {"models": {}}
    return json.loads(path.read_text())


def save_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    tmp = out_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    tmp.replace(out_dir / MANIFEST)


def onnx_path(out_dir: Path, name: str, tiny: bool = False) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
    return Path(out_dir) / (f"{safe}-tiny.onnx" if tiny else f"{safe}.onnx")


def describe_model(name: str, *, tiny: bool = False, weights: str = "random") -> dict[str, Any]:
    """Parameter counts without an ONNX export (for PyTorch-only runs)."""
    spec = get_spec(name)
    model, label = build_weighted(name, tiny, weights)
    counts = count_parameters(model, torch.randn(2, max(spec.min_samples * 2, 1600)))
    return {"model": name, "tiny": tiny, "weights": label, **counts.to_dict(), "published_params": spec.published_params,
            "published_note": spec.published_note, "onnx_bytes": None}


def _up_to_date(name: str, spec: ModelSpec, out_dir: Path, tiny: bool, exporter: str,
                tag: str) -> dict[str, Any] | None:
    """The manifest entry of an export that is still valid (same model code, exporter and software
    in its fingerprint, the file unchanged since it was checked), ready to be reused; else None."""
    path = onnx_path(out_dir, name + tag, tiny)
    entry = load_manifest(out_dir)["models"].get((f"{name}-tiny" if tiny else name) + tag)
    if not (entry and entry.get("fingerprint") == fingerprint(spec, tiny, exporter) + tag and path.exists()
            and entry.get("sha256") == file_sha256(path)):
        return None
    label = entry.get("weights", "random")
    if label == "random" and entry.get("params_total") == 0:  # an older manifest called log-mel's none "random"
        label = NO_WEIGHTS_LABEL
    return {**entry, "weights": label, "skipped": True, "path": str(path.resolve())}


def export_model(name: str, out_dir: str | Path, *, tiny: bool = False, exporter: str = "torchscript",
                 force: bool = False, weights: str = "random") -> dict[str, Any]:
    """Export ``name`` (unless an identical export exists) and return its manifest entry."""
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}; valid: {', '.join(EXPORTERS)}")
    spec = get_spec(name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not force and resolve_source(name, weights, tiny).lower() == "random":
        reused = _up_to_date(name, spec, out_dir, tiny, exporter, tag="")
        if reused is not None:  # seeded random weights: the fingerprint says all, no model built
            return reused
    model, label = build_weighted(name, tiny, weights)
    tag = "" if label in ("random", "none") else "@" + hashlib.sha256(label.encode()).hexdigest()[:8]
    path = onnx_path(out_dir, name + tag, tiny)
    key = (f"{name}-tiny" if tiny else name) + tag
    fp = fingerprint(spec, tiny, exporter) + tag
    if not force:
        reused = _up_to_date(name, spec, out_dir, tiny, exporter, tag)
        if reused is not None:
            # the label as this version makes it (an older manifest called log-mel's none "random")
            return {**reused, "weights": label}

    example = torch.randn(2, max(spec.min_samples * 2, 1600))
    counts = count_parameters(model, example)
    with torch.inference_mode():
        n_outputs = len(model(example))
    start = time.perf_counter()
    try:
        _torch_export(model, spec, path, exporter, n_outputs)
    except Exception as exc:  # the exporter's own message is the useful part
        raise ExportError(f"{name}: {exporter} export failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    export_time = time.perf_counter() - start
    checks = check_onnx(model, path)
    if not all(c.ok for c in checks):
        bad = [c for c in checks if not c.ok]
        whose = onednn_rnn_verdict(model, path)
        path.unlink(missing_ok=True)
        raise ExportError(f"{name}: ONNX output differs from PyTorch: " + "; ".join(
            f"batch {c.batch} x {c.samples} samples: max abs err {c.max_abs_err:.3g}, "
            f"cosine {c.cosine:.6f}" for c in bad) + whose)
    # deferred: onnx is loaded only where a graph is read or written
    import onnx

    entry = {
        "model": name, "tiny": tiny, "file": path.name, "exporter": exporter, "weights": label,
        "opset": OPSET[exporter], "fingerprint": fp,
        "input": {"name": "waveform", "shape": ["batch", "samples"], "dtype": "float32",
                  "sample_rate": 16000, "min_samples": spec.min_samples},
        "outputs": [f"hidden_state_{i}" for i in range(n_outputs)],
        "frame_rate_hz": spec.frame_rate_hz,
        **counts.to_dict(),
        "onnx_initializers": onnx_initializer_count(path),
        "published_params": spec.published_params,
        "published_note": spec.published_note,
        "onnx_bytes": path.stat().st_size,
        "sha256": file_sha256(path),
        "export_time_s": round(export_time, 3),
        "checks": [c.__dict__ for c in checks],
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "skipped": False,
    }
    manifest = load_manifest(out_dir)  # re-read: another model may have been written meanwhile
    manifest["models"][key] = entry
    save_manifest(out_dir, manifest)
    return {**entry, "path": str(path.resolve())}


def describe_onnx(spec: ModelSpec) -> dict[str, Any]:
    """A user's ONNX file (``onnx:path``): used as is, sizes from the file itself."""
    path = Path(spec.arch["path"])
    count = onnx_initializer_count(path)
    return {"model": spec.name, "path": str(path), "file": path.name, "exporter": None,
            "params_total": count, "params_unique": count, "params_used": None,
            "onnx_initializers": count, "onnx_bytes": path.stat().st_size, "model_bytes": None,
            "params_note": "ONNX initializer values (shared tensors once; folded constants included)"}
