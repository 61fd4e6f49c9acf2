"""MACs derived by hand from each architecture (docs/flops.md), and PyTorch's own count.

``analytic_count`` is what a benchmark cell records (microseconds, no file); the tests prove it
equal to :func:`flops.graph.count_onnx` for every registered model.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from models.frontend import HOP, N_FFT, N_MELS
from models.hf_models import TINY
from models.registry import get_spec
from models.s3prl_models import chunk_plan

# ---------------------------------------------------------------------------------------------
# Analytic formulas (docs/flops.md derives each one)
# ---------------------------------------------------------------------------------------------


def arch_config(name: str, tiny: bool = False) -> dict[str, Any]:
    """The architecture numbers the formulas need, from the registry (tiny: the toy sizes).

    ``tests/test_flops.py`` checks these against the built modules, so they cannot drift.
    """
    spec = get_spec(name)
    kind = spec.arch["kind"]
    if kind == "logmel":
        return {"kind": kind}
    if kind == "apc":
        return {"kind": kind, "layers": spec.arch["layers"], "hidden": 16 if tiny else spec.arch["hidden"],
                "input": N_MELS}
    if kind == "ge2e":  # tiny: models.registry._ge2e
        return {"kind": kind, "layers": 2 if tiny else spec.arch["layers"], "hidden": 16 if tiny else spec.arch["hidden"],
                "embedding": 16 if tiny else spec.arch["embedding"], "mels": spec.arch["mels"]}
    if kind == "s3prl-transformer":
        if tiny:
            return {"kind": kind, "layers": 2, "hidden": 32, "heads": 2, "ffn": 64, "chunk_frames": 8,
                    "shared": spec.arch.get("shared", False)}
        return {"kind": kind, "layers": spec.arch["layers"], "hidden": 768, "heads": 12, "ffn": 3072,
                "chunk_frames": spec.arch["chunk_frames"], "shared": spec.arch.get("shared", False)}
    if kind == "wav2vec2":
        # deferred: transformers is heavy (seconds); only the models that need it load it
        from transformers import Wav2Vec2Config

        size = {"layers": spec.arch["layers"], "hidden": spec.arch["hidden"]}
        big = spec.arch["hidden"] == 1024
        d = Wav2Vec2Config()
        cfg = {"kind": kind, "layers": size["layers"], "hidden": size["hidden"],
               "heads": 16 if big else 12, "ffn": 4096 if big else 3072,
               "conv_dim": list(d.conv_dim), "conv_kernel": list(d.conv_kernel),
               "conv_stride": list(d.conv_stride), "pos_kernel": d.num_conv_pos_embeddings,
               "pos_groups": d.num_conv_pos_embedding_groups}
        if tiny:
            cfg.update(layers=TINY["num_hidden_layers"], hidden=TINY["hidden_size"],
                       heads=TINY["num_attention_heads"], ffn=TINY["intermediate_size"],
                       conv_dim=list(TINY["conv_dim"]), pos_kernel=TINY["num_conv_pos_embeddings"],
                       pos_groups=TINY["num_conv_pos_embedding_groups"])
        return cfg
    raise ValueError(f"no analytic formula for architecture {kind!r}")


def conv_out(length: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    return (length + 2 * pad - kernel) // stride + 1


def _logmel_layers(batch: int, n_samples: int) -> tuple[int, dict[str, int]]:
    frames = conv_out(n_samples, N_FFT, HOP)
    n_freq = N_FFT // 2 + 1
    dft = batch * frames * (2 * n_freq) * N_FFT  # Conv1d(1 -> 402, k=400, stride 160)
    mel = batch * frames * n_freq * N_MELS  # (B, T, 201) @ (201, 80)
    return frames, {"front-end": dft + mel}


def _transformer_layer(tokens: int, seqs: int, seq_len: int, d: int, ffn: int) -> tuple[int, int]:
    """(MACs of one post-/pre-LN encoder layer, of which attention): Q,K,V,out + FFN + QK^T, AV."""
    dense = tokens * (4 * d * d + 2 * d * ffn)
    attention = 2 * seqs * seq_len * seq_len * d  # heads x (L x L x d/heads), twice
    return dense + attention, attention


@dataclass
class AnalyticCount:
    model: str
    batch: int
    n_samples: int
    frames: int
    macs: int
    attention_macs: int
    by_layer: dict[str, int]

    @property
    def flops(self) -> int:
        return 2 * self.macs


def analytic_count(name: str, batch: int, n_samples: int, tiny: bool = False,
                   config: dict[str, Any] | None = None) -> AnalyticCount:
    """Matmul/conv/recurrent MACs from the architecture alone, per layer (docs/flops.md)."""
    spec = get_spec(name)
    if n_samples < spec.min_samples:
        raise ValueError(f"{name}: {n_samples} samples is below the minimum of {spec.min_samples}")
    cfg = config or arch_config(name, tiny)
    kind = cfg["kind"]
    layers: dict[str, int] = OrderedDict()
    attention = 0
    if kind in ("logmel", "apc", "s3prl-transformer"):
        frames, fe = _logmel_layers(batch, n_samples)
        layers.update(fe)
        if kind == "apc":
            h, inp = cfg["hidden"], cfg["input"]
            for i in range(cfg["layers"]):
                layers[f"gru {i}"] = batch * frames * 3 * h * (inp + h)
                inp = h
        elif kind == "s3prl-transformer":
            n, c = chunk_plan(frames, cfg["chunk_frames"])
            seqs, d = batch * n, cfg["hidden"]
            tokens = seqs * c  # padded frames are computed too
            layers["projection"] = tokens * N_MELS * d
            for i in range(cfg["layers"]):
                macs, att = _transformer_layer(tokens, seqs, c, d, cfg["ffn"])
                layers[f"layer {i}"] = macs
                attention += att
    elif kind == "ge2e":
        # librosa-style centred framing: n_fft // 2 zeros each side, T = N // hop + 1
        frames = n_samples // HOP + 1
        n_freq = N_FFT // 2 + 1
        layers["front-end"] = batch * frames * (2 * n_freq * N_FFT + n_freq * cfg["mels"])
        h, inp = cfg["hidden"], cfg["mels"]
        for i in range(cfg["layers"]):
            layers[f"lstm {i}"] = batch * frames * 4 * h * (inp + h)
            inp = h
        layers["head"] = batch * frames * h * cfg["embedding"]
    elif kind == "wav2vec2":
        length, c_in, cnn = n_samples, 1, 0
        for c_out, k, s in zip(cfg["conv_dim"], cfg["conv_kernel"], cfg["conv_stride"]):
            length = conv_out(length, k, s)
            cnn += batch * length * c_out * c_in * k
            c_in = c_out
        frames, d = length, cfg["hidden"]
        layers["cnn encoder"] = cnn
        layers["projection"] = batch * frames * c_in * d
        k, g = cfg["pos_kernel"], cfg["pos_groups"]
        pos_len = conv_out(frames, k, 1, k // 2)  # T + 1 for an even kernel (SamePad drops it)
        layers["positional conv"] = batch * pos_len * d * (d // g) * k
        for i in range(cfg["layers"]):
            macs, att = _transformer_layer(batch * frames, batch, frames, d, cfg["ffn"])
            layers[f"layer {i}"] = macs
            attention += att
    else:
        raise ValueError(f"no analytic formula for architecture {kind!r}")
    return AnalyticCount(name, batch, n_samples, frames, sum(layers.values()), attention, dict(layers))


# ---------------------------------------------------------------------------------------------
# PyTorch cross-check
# ---------------------------------------------------------------------------------------------


def torch_flop_count(module: Any, wav: Any) -> int:
    """FLOPs by ``torch.utils.flop_counter.FlopCounterMode`` (matmul/conv/attention only),
    with the CPU SDPA kernel priced as SDPA and the CPU LSTM kernel as its gates' matrix
    products (torch 2.13 has no formula for either)."""
    # deferred: torch is heavy and optional on an ONNX-Runtime-only path
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def sdpa_cpu(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    def lstm_cpu(inp, w_ih, w_hh, *args, out_shape=None, **kwargs) -> int:
        # one LSTM layer on the CPU (oneDNN kernel): per step and batch row, the input and
        # recurrent matrix products of the 4 gates; torch 2.13 has no formula for it
        steps_rows = int(inp[0]) * int(inp[1])
        return 2 * steps_rows * (int(w_ih[0]) * int(w_ih[1]) + int(w_hh[0]) * int(w_hh[1]))

    mapping = {}
    rnn = getattr(torch.ops.aten, "mkldnn_rnn_layer", None)
    if rnn is not None:
        mapping[rnn] = lstm_cpu
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None:
        mapping[op] = sdpa_cpu
    # no_grad, not inference_mode: under inference_mode the weight-norm parametrisation of
    # transformers' positional conv raises AttributeError inside FlopCounterMode (torch 2.13)
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        module(wav)
    return int(counter.get_total_flops())


