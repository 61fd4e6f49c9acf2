"""Bring your own model: model specs that point outside the registry.

- ``python:path/file.py:factory`` — a factory returning an ``nn.Module`` that takes ``(B, N)``
  16 kHz waveforms (module attributes ``min_samples``/``hop_samples`` describe its framing;
  defaults 400 and 320);
- ``onnx:path/model.onnx`` — an ONNX file with one float input of rank 2 ``(batch, samples)``;
  ONNX Runtime only (a PyTorch cell is ``unsupported``), parameters from its initializers;
- ``s3prl:NAME:checkpoint`` — an s3prl upstream by name (``apc``, ``tera``, ``mockingjay``,
  ``audio_albert``, ``wav2vec2``, ``hubert``, ``distilhubert``, ``wav2vec2_large``,
  ``hubert_large``) with a local checkpoint in s3prl's format (``models.weights``);
- ``hf:path`` — a transformers speech encoder (wav2vec 2.0, HuBERT, WavLM, data2vec-audio, …)
  from a local directory (``config.json`` + weights) or a ``config.json`` (random weights).

Each becomes a :class:`ModelSpec`, so export, runners and record fields are the same as for
registered models.  A malformed spec, a missing file, a factory that does not return a module,
or an ONNX file with the wrong input rank raises ``UnknownModelError`` with one line saying what
was expected (the command line turns it into exit code 2).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from models.frontend import SAMPLE_RATE
from models.spec import ModelSpec, UnknownModelError
from models.weights import load_weights

S3PRL_NAMES = {
    "apc": "apc", "tera": "tera", "mockingjay": "mockingjay", "audio_albert": "audio-albert",
    "wav2vec2": "wav2vec2-base", "hubert": "hubert-base", "distilhubert": "distilhubert",
    "wav2vec2_large": "wav2vec2-large", "hubert_large": "hubert-large",
}


def source_spec(text: str, registered: Mapping[str, ModelSpec]) -> ModelSpec:
    """The spec of a user's model; ``registered``: the built-in models (``s3prl:`` builds on one)."""
    kind = text.split(":", 1)[0]
    if kind == "s3prl":
        return s3prl_spec(text, registered)
    return {"python": python_spec, "onnx": onnx_spec, "hf": hf_spec}[kind](text)


def _file_digest(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


class TupleOutputs(nn.Module):
    """Make a user's module follow the contract: always a tuple of outputs."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.inner(wav)
        if isinstance(out, torch.Tensor):
            return (out,)
        if hasattr(out, "last_hidden_state"):
            return (out.last_hidden_state,)
        return tuple(out)


def python_spec(text: str) -> ModelSpec:
    parts = text.split(":")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise UnknownModelError(f"malformed model spec {text!r}; expected python:path/to/file.py:factory")
    path, factory_name = Path(parts[1]), parts[2]
    if not path.is_file():
        raise UnknownModelError(f"model spec {text!r}: file {path} not found")
    module_spec = importlib.util.spec_from_file_location(f"wavebench_user_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise UnknownModelError(f"model spec {text!r}: importing {path} failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise UnknownModelError(f"model spec {text!r}: {path} has no callable {factory_name!r}")
    min_samples = int(getattr(module, "min_samples", 400))
    hop = int(getattr(module, "hop_samples", 320))

    def build(tiny: bool) -> nn.Module:
        model = factory()
        if not isinstance(model, nn.Module):
            raise UnknownModelError(f"model spec {text!r}: {factory_name}() returned {type(model).__name__}, "
                                    f"expected a torch.nn.Module taking (batch, samples) waveforms")
        return TupleOutputs(model)

    return ModelSpec(text, "user model", f"python factory {path}:{factory_name}", SAMPLE_RATE / hop,
                     min_samples, hop, build, {"kind": "python", "file": _file_digest(path)})


def onnx_spec(text: str) -> ModelSpec:
    path = Path(text[len("onnx:"):])
    if not text[len("onnx:"):]:
        raise UnknownModelError(f"malformed model spec {text!r}; expected onnx:path/to/model.onnx")
    if not path.is_file():
        raise UnknownModelError(f"model spec {text!r}: file {path} not found")
    # deferred: onnx is loaded only where a graph is read or written
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise UnknownModelError(f"model spec {text!r}: {path} is not a readable ONNX file ({type(exc).__name__})") from None
    inputs = [i for i in model.graph.input if i.name not in {init.name for init in model.graph.initializer}]
    if len(inputs) != 1:
        raise UnknownModelError(f"model spec {text!r}: expected one input (batch, samples), found {len(inputs)}")
    rank = len(inputs[0].type.tensor_type.shape.dim)
    if rank != 2:
        raise UnknownModelError(f"model spec {text!r}: input {inputs[0].name!r} has rank {rank}; "
                                f"expected rank 2 (batch, samples) of 16 kHz audio")
    return ModelSpec(text, "user model", f"ONNX file {path}", SAMPLE_RATE / 320, 400, 320, None,
                     {"kind": "onnx", "path": str(path.resolve()), "file": _file_digest(path),
                      "input_name": inputs[0].name})


def s3prl_spec(text: str, registered: Mapping[str, ModelSpec]) -> ModelSpec:
    parts = text.split(":", 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise UnknownModelError(f"malformed model spec {text!r}; expected s3prl:NAME:path/to/checkpoint "
                                f"(NAME one of {', '.join(S3PRL_NAMES)})")
    name, ckpt = parts[1], Path(parts[2])
    if name not in S3PRL_NAMES:
        raise UnknownModelError(f"model spec {text!r}: unknown s3prl upstream {name!r}; valid: {', '.join(S3PRL_NAMES)}")
    if not ckpt.exists():
        raise UnknownModelError(f"model spec {text!r}: checkpoint {ckpt} not found")
    base = registered[S3PRL_NAMES[name]]

    def build(tiny: bool) -> nn.Module:
        model = base.builder(tiny)
        load_weights(base.name, model, str(ckpt))
        return model

    return ModelSpec(text, base.category, f"{base.source} + s3prl checkpoint {ckpt}", base.frame_rate_hz,
                     base.min_samples, base.hop_samples, build,
                     {**base.arch, "checkpoint": str(ckpt), "file": _file_digest(ckpt) if ckpt.is_file() else str(ckpt)},
                     base.published_params, base.published_note)


def cnn_framing(kernels: list[int], strides: list[int]) -> tuple[int, int]:
    """(receptive field, hop) in samples of a stack of 1-D convolutions."""
    field, hop = 1, 1
    for k, s in zip(kernels, strides):
        field += (k - 1) * hop
        hop *= s
    return field, hop


def hf_spec(text: str) -> ModelSpec:
    path = Path(text[len("hf:"):])
    if not text[len("hf:"):]:
        raise UnknownModelError(f"malformed model spec {text!r}; expected hf:path/to/model_dir or hf:config.json")
    config_file = path / "config.json" if path.is_dir() else path
    if not config_file.is_file():
        raise UnknownModelError(f"model spec {text!r}: no config.json at {config_file}")
    # deferred: transformers is heavy (seconds); only the models that need it load it
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(config_file.parent if path.is_dir() else config_file),
                                            local_files_only=True)
    except Exception as exc:
        raise UnknownModelError(f"model spec {text!r}: transformers cannot read {config_file}: {exc}") from None
    kernels, strides = getattr(config, "conv_kernel", None), getattr(config, "conv_stride", None)
    if not kernels or not strides:
        raise UnknownModelError(f"model spec {text!r}: {config.model_type} is not a waveform encoder "
                                f"(no conv_kernel/conv_stride in its config)")
    field, hop = cnn_framing(list(kernels), list(strides))
    has_weights = path.is_dir() and any((path / f).exists() for f in ("model.safetensors", "pytorch_model.bin"))

    def build(tiny: bool) -> nn.Module:
        # deferred: transformers is heavy (seconds); only the models that need it load it
        from transformers import AutoModel

        if has_weights:
            model = AutoModel.from_pretrained(str(path), local_files_only=True)
        else:
            model = AutoModel.from_config(config)
        return HFWaveformEncoder(model)

    return ModelSpec(text, "user model", f"transformers {config.model_type} from {path}", SAMPLE_RATE / hop,
                     field, hop, build, {"kind": "hf", "model_type": config.model_type,
                                         "file": _file_digest(config_file), "weights": has_weights})


class HFWaveformEncoder(nn.Module):
    """All hidden states of a transformers waveform encoder; the last is ``last_hidden_state``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(wav, output_hidden_states=True, return_dict=True)
        return tuple(out.hidden_states[:-1]) + (out.last_hidden_state,)


def validate_user_model(spec: ModelSpec, tiny: bool = False) -> None:
    """Build a user's model once and call it on a (2, N) waveform batch: a factory that does not
    return a module, or a module that does not take a waveform batch, is refused before any run."""
    if spec.arch.get("kind") not in ("python", "hf", "s3prl-checkpoint") and "checkpoint" not in spec.arch:
        return
    try:
        model = spec.build(tiny)
    except UnknownModelError:
        raise
    except Exception as exc:
        raise UnknownModelError(f"model spec {spec.name!r}: building it failed: {type(exc).__name__}: {exc}") from None
    wav = torch.zeros(2, max(2 * spec.min_samples, 1600))
    try:
        with torch.inference_mode():
            outputs = model(wav)
    except Exception as exc:
        raise UnknownModelError(f"model spec {spec.name!r}: the module does not take a (batch, samples) "
                                f"waveform batch: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not outputs or not all(isinstance(o, torch.Tensor) and o.dim() >= 1 and o.shape[0] == 2 for o in outputs):
        raise UnknownModelError(f"model spec {spec.name!r}: expected tensors with the batch (2) as first "
                                f"dimension, got {[tuple(getattr(o, 'shape', ())) for o in outputs]}")
