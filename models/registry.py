"""The model registry: every model wavebench can build, with the facts a benchmark needs.

One contract for all: a 16 kHz waveform batch ``(B, N)`` float32 in, a tuple of hidden
states ``(B, T, D)`` out (the last is the model's representation).  Each spec states its
frame rate and the shortest input it accepts.  ``tiny=True`` builds the same architecture
at toy width/depth for fast behaviour tests; compute and shapes follow the same code.
Weights are random (seeded): latency and FLOPs do not depend on weight values.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from models.frontend import HOP, N_FFT, SAMPLE_RATE
from models.ge2e import GE2EEncoder
from models.hf_models import TINY, HFEncoder
from models.s3prl_models import APCModel, LogMelModel, S3prlTransformer
from models.sources import source_spec
from models.spec import SOURCE_PREFIXES, ModelSpec, NoTorchModelError, UnknownModelError

__all__ = ["LAB_SUITE", "MODELS", "SOURCE_PREFIXES", "ModelSpec", "NoTorchModelError", "UnknownModelError",
           "build_model", "get_spec"]

LAB_SUITE = ("logmel", "apc", "tera", "mockingjay", "wav2vec2-base", "hubert-base")

# wav2vec 2.0 / HuBERT CNN encoder: receptive field 400 samples, hop 320
CNN_MIN_SAMPLES, CNN_HOP = 400, 320


def _transformer(layers: int, share: bool, chunk: int) -> Callable[[bool], nn.Module]:
    def build(tiny: bool) -> nn.Module:
        if tiny:
            return S3prlTransformer(num_layers=2, share_layer=share, chunk_frames=8,
                                    hidden_size=32, heads=2, ffn=64)
        return S3prlTransformer(num_layers=layers, share_layer=share, chunk_frames=chunk)
    return build


def _hf(family: str, size: dict[str, Any]) -> Callable[[bool], nn.Module]:
    def build(tiny: bool) -> nn.Module:
        cfg = dict(size)
        if tiny:
            cfg.update(TINY)
        return HFEncoder(family, **cfg)
    return build


def _logmel(tiny: bool) -> nn.Module:
    return LogMelModel()


def _apc(tiny: bool) -> nn.Module:
    return APCModel(hidden_size=16 if tiny else 512)


def _ge2e(tiny: bool) -> nn.Module:
    return GE2EEncoder(hidden=16, layers=2, embedding=16) if tiny else GE2EEncoder()


_LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
          "intermediate_size": 4096, "feat_extract_norm": "layer", "do_stable_layer_norm": True}

_SPECS: list[ModelSpec] = [
    ModelSpec("logmel", "signal-processing baseline", "torch (DFT as conv + transformers mel filterbank)",
              SAMPLE_RATE / HOP, N_FFT, HOP, _logmel, {"kind": "logmel"}, 0,
              "SUPERB lists FBANK with 0 parameters."),
    ModelSpec("apc", "autoregressive reconstruction", "s3prl APC (GRU layers run directly)",
              SAMPLE_RATE / HOP, N_FFT, HOP, _apc,
              {"kind": "apc", "layers": 3, "hidden": 512}, 4_105_296,
              "Published count includes the training-only postnet Linear(512->80), 41,040 parameters."),
    ModelSpec("tera", "masked reconstruction", "s3prl TransformerModel",
              SAMPLE_RATE / HOP, N_FFT, HOP, _transformer(3, False, 1500),
              {"kind": "s3prl-transformer", "layers": 3, "chunk_frames": 1500}, 21_327_360,
              "Same architecture: reproduced exactly."),
    ModelSpec("mockingjay", "masked reconstruction", "s3prl TransformerModel",
              SAMPLE_RATE / HOP, N_FFT, HOP, _transformer(12, False, 500),
              {"kind": "s3prl-transformer", "layers": 12, "chunk_frames": 500}, 85_118_208,
              "Same architecture: reproduced exactly."),
    ModelSpec("audio-albert", "masked reconstruction (shared layers)", "s3prl TransformerModel(share_layer=True)",
              SAMPLE_RATE / HOP, N_FFT, HOP, _transformer(12, True, 1500),
              {"kind": "s3prl-transformer", "layers": 12, "chunk_frames": 1500, "shared": True}, 7_151_616,
              "One layer's weights used by all 12 layers: 7,151,616 unique, 85,118,208 parameter-uses."),
    ModelSpec("wav2vec2-base", "contrastive", "transformers Wav2Vec2Model",
              SAMPLE_RATE / CNN_HOP, CNN_MIN_SAMPLES, CNN_HOP, _hf("wav2vec2", {}),
              {"kind": "wav2vec2", "layers": 12, "hidden": 768}, 95_044_608,
              "SUPERB's fairseq count adds training-only modules: quantizer (weight_proj 328,320 + "
              "codevectors 81,920), project_q 65,792, final_proj 196,864 = 672,896."),
    ModelSpec("hubert-base", "masked prediction", "transformers HubertModel",
              SAMPLE_RATE / CNN_HOP, CNN_MIN_SAMPLES, CNN_HOP, _hf("hubert", {}),
              {"kind": "wav2vec2", "layers": 12, "hidden": 768}, 94_697_600,
              "SUPERB's fairseq count adds training-only final_proj 196,864 and label embeddings "
              "129,024 (504 x 256) = 325,888."),
    ModelSpec("distilhubert", "masked prediction (distilled)", "transformers HubertModel (2 layers)",
              SAMPLE_RATE / CNN_HOP, CNN_MIN_SAMPLES, CNN_HOP, _hf("hubert", {"num_hidden_layers": 2}),
              {"kind": "wav2vec2", "layers": 2, "hidden": 768}, 23_490_000,
              "SUPERB lists 23.49M without prediction heads (rounded); the architecture is the same."),
    ModelSpec("wav2vec2-large", "contrastive", "transformers Wav2Vec2Model (Large, stable layer norm)",
              SAMPLE_RATE / CNN_HOP, CNN_MIN_SAMPLES, CNN_HOP, _hf("wav2vec2", {**_LARGE, "conv_bias": True}),
              {"kind": "wav2vec2", "layers": 24, "hidden": 1024}, 317_390_592,
              "SUPERB's fairseq count adds training-only quantizer (weight_proj 328,320 + codevectors "
              "245,760), project_q 590,592, final_proj 787,200 = 1,951,872."),
    ModelSpec("hubert-large", "masked prediction", "transformers HubertModel (Large, stable layer norm)",
              SAMPLE_RATE / CNN_HOP, CNN_MIN_SAMPLES, CNN_HOP, _hf("hubert", {**_LARGE, "conv_bias": False}),
              {"kind": "wav2vec2", "layers": 24, "hidden": 1024}, 316_609_408,
              "SUPERB's fairseq count adds training-only final_proj 787,200 and label embeddings "
              "387,072 (504 x 768) = 1,174,272."),
    ModelSpec("ge2e", "speaker verification (GE2E, supervised)",
              "Resemblyzer 0.1.4 voice encoder, rebuilt in torch (weights: the package's pretrained.pt)",
              SAMPLE_RATE / HOP, N_FFT, HOP, _ge2e,
              {"kind": "ge2e", "layers": 3, "hidden": 256, "embedding": 256, "mels": 40}, 1_423_616,
              "Resemblyzer's pretrained.pt: LSTM(40->256) 4*256*(40+256+2) = 305,152, two LSTM(256->256) "
              "2 * 4*256*(256+256+2) = 1,052,672, Linear(256->256) 65,792; the checkpoint adds the GE2E "
              "loss's training-only similarity weight and bias (2).",
              centered=True),
]

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> ModelSpec:
    """A registered model, or a user's model given as ``python:``, ``onnx:``, ``s3prl:`` or ``hf:``."""
    if name.startswith(SOURCE_PREFIXES):
        return source_spec(name, MODELS)
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; valid models: {', '.join(MODELS)}, or python:file.py:factory, "
            f"onnx:model.onnx, s3prl:NAME:checkpoint, hf:directory") from None


def build_model(name: str, tiny: bool = False) -> nn.Module:
    return get_spec(name).build(tiny)

