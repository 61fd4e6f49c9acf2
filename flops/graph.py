"""MACs and FLOPs of each model, counted from its ONNX graph at a concrete input shape.

Three counts, one number:

* ``count_onnx(path, batch, n_samples)``: the graph count.  onnx-tool binds the dynamic
  ``waveform`` axes and propagates shapes (its value inference resolves the shape arithmetic
  of Mockingjay/TERA chunking); then our own formula prices each node.  MatMul/Gemm/Conv/
  GRU/LSTM/RNN are multiply-accumulates (MACs; FLOPs = 2 x MACs); activation x activation
  MatMuls (QK^T and AV) are tagged as attention; elementwise, normalisation and softmax are
  "other FLOPs", never MACs (onnx-tool books them as MACs, so its totals are ~1% high);
  shape/data-movement ops cost 0 and are listed as such; any op type we have no formula for
  is listed under ``uncounted`` with its node count, never silently priced at zero.
* ``analytic_count(name, batch, n_samples, tiny)``: the same MACs derived by hand from each
  architecture (formulas in docs/flops.md), per layer.  Microseconds, no file needed.
* PyTorch's ``FlopCounterMode`` (tests only; see ``torch_flop_count``), with a formula
  registered for the CPU SDPA kernel that torch 2.13 leaves at zero.

``macs_for(model, onnx_path, batch, n_samples)`` serves the benchmark: one dict per cell.
``python -m flops.graph`` (``make flops``) writes the report to ``results/flops/``.

Everything FLOPs-related lives in this one module on purpose: ``export/onnx_export.py``
hashes every other ``export/*.py`` into the export fingerprint, so a new helper module there
would invalidate every exported ONNX file.  Sections: graph count, analytic formulas,
per-cell API, PyTorch cross-check, report and command line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import threading
from collections import Counter, OrderedDict, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from models.frontend import HOP, N_FFT, N_MELS, SAMPLE_RATE

# ---------------------------------------------------------------------------------------------
# Graph count
# ---------------------------------------------------------------------------------------------

MAC_OPS = frozenset({"MatMul", "Gemm", "Conv", "GRU", "LSTM", "RNN"})
# other FLOPs per output element (a documented convention, not a hardware truth)
ELEMENTWISE_FLOPS = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Pow": 1, "Sqrt": 1, "Reciprocal": 1, "Neg": 1,
    "Abs": 1, "Exp": 1, "Log": 1, "Erf": 1, "Tanh": 1, "Sigmoid": 1, "Relu": 1, "Clip": 1,
    "Max": 1, "Min": 1, "Where": 1, "Equal": 1, "Less": 1, "Greater": 1, "LessOrEqual": 1,
    "GreaterOrEqual": 1, "Not": 1, "And": 1, "Or": 1, "Sin": 1, "Cos": 1, "Floor": 1, "Ceil": 1,
    "Gelu": 8, "Softmax": 5, "LogSoftmax": 5,
    "LayerNormalization": 7, "InstanceNormalization": 7, "GroupNormalization": 7,
    "BatchNormalization": 2,
}
REDUCE_OPS = frozenset({"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                        "ReduceL2", "ReduceSumSquare"})  # 1 FLOP per input element
FREE_OPS = frozenset({
    "Constant", "Identity", "Shape", "Gather", "GatherElements", "Unsqueeze", "Squeeze",
    "Reshape", "Transpose", "Concat", "Slice", "Cast", "ConstantOfShape", "Expand", "Pad",
    "Range", "Flatten", "Split", "Tile", "Size", "Dropout", "ScatterND", "NonZero", "CastLike",
})  # data movement and shape arithmetic: 0 FLOPs, counted as nodes


@dataclass
class NodeCount:
    name: str
    op_type: str
    layer: str
    macs: int = 0
    other_flops: int = 0
    attention: bool = False
    priced: bool = True


@dataclass
class FlopCount:
    """Counts for one model at one input shape.  ``macs`` are matmul/conv/recurrent MACs only."""

    model: str
    batch: int
    n_samples: int
    macs: int = 0
    attention_macs: int = 0
    other_flops: int = 0
    by_op: dict[str, dict[str, int]] = field(default_factory=dict)
    by_layer: dict[str, dict[str, int]] = field(default_factory=dict)
    uncounted: dict[str, int] = field(default_factory=dict)
    free_nodes: int = 0
    onnx_tool_macs: int | None = None  # onnx-tool's own total (elementwise booked as MACs)
    nodes: list[NodeCount] = field(default_factory=list, repr=False)

    @property
    def flops(self) -> int:
        """Matmul/conv/recurrent FLOPs: 2 x MACs."""
        return 2 * self.macs

    @property
    def total_flops(self) -> int:
        return self.flops + self.other_flops

    @property
    def duration_s(self) -> float:
        return self.n_samples / SAMPLE_RATE

    def to_dict(self, nodes: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not nodes:
            d.pop("nodes")
        d.update(flops=self.flops, total_flops=self.total_flops, duration_s=self.duration_s)
        return d


_LAYER_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/?frontend/"), "front-end"),
    (re.compile(r"^/?model/feature_extractor/"), "cnn encoder"),
    (re.compile(r"^/?model/feature_projection/"), "projection"),
    (re.compile(r"^/?model/encoder/pos_conv_embed/"), "positional conv"),
    (re.compile(r"^/?model/encoder/layers\.(\d+)/"), "layer {}"),
    (re.compile(r"^/?model/encoder/(layer_norm|LayerNorm)"), "encoder norm"),
    (re.compile(r"^/?transformer/input_representations/"), "projection"),
    (re.compile(r"^/?transformer/encoder/layer\.(\d+)/"), "layer {}"),
    (re.compile(r"^/?(?:apc/)?rnn_layers\.(\d+)/"), "gru {}"),
]


_SHARED_CALL = re.compile(r"^/?transformer/encoder/layer\.0/")


def layer_of(node_name: str) -> str:
    """Map an exported node name (its module scope) to a report layer; glue is ``other``.

    A shared layer (Audio ALBERT) is one module called L times: the TorchScript exporter
    scopes its k-th call with a ``_k`` suffix on the innermost module (``query_3/MatMul``),
    so the call index is read from that suffix.
    """
    for pattern, label in _LAYER_RULES:
        m = pattern.search(node_name)
        if m:
            if "{}" not in label:
                return label
            index = int(m.group(1))
            if _SHARED_CALL.search(node_name):
                scopes = node_name.strip("/").split("/")[3:-1]
                calls = [int(c.group(1)) for c in (re.search(r"_(\d+)$", s) for s in scopes) if c]
                index += max(calls, default=0)
            return label.format(index)
    return "other"


def _vol(shape: list[int]) -> int:
    return int(math.prod(int(s) for s in shape))


def _price(node: Any, tensors: dict[str, Any]) -> tuple[int, int, bool]:
    """(MACs, other FLOPs, priced) of one onnx-tool node after shape inference."""
    op = node.op_type
    ins = [tensors[i] if i else None for i in node.input]
    outs = [tensors[o] for o in node.output]
    out = outs[0].get_shape() if outs else []
    if op == "MatMul":
        a = ins[0].get_shape()
        k = a[-1]
        return _vol(out) * int(k), 0, True
    if op == "Gemm":
        a = ins[0].get_shape()
        k = a[-2] if getattr(node, "transA", 0) else a[-1]
        bias = _vol(out) if len(ins) > 2 and ins[2] is not None else 0
        return _vol(out) * int(k), bias, True
    if op == "Conv":
        w = ins[1].get_shape()  # (Cout, Cin/groups, *kernel)
        macs = _vol(out) * _vol(w[1:])
        bias = _vol(out) if len(ins) > 2 and ins[2] is not None else 0
        return macs, bias, True
    if op in ("GRU", "LSTM", "RNN"):
        x, w, r = ins[0].get_shape(), ins[1].get_shape(), ins[2].get_shape()
        seq, batch = int(x[0]), int(x[1])  # layout=0 (what torch exports)
        gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
        dirs, hidden = int(w[0]), int(w[1]) // gates
        # per step, batch row and direction: gates*H*input + gates*H*H
        macs = seq * batch * (_vol(w) + _vol(r))
        per_unit = {"GRU": 17, "LSTM": 19, "RNN": 3}[op]  # see docs/flops.md
        return macs, seq * batch * dirs * hidden * per_unit, True
    if op in ELEMENTWISE_FLOPS:
        return 0, _vol(out) * ELEMENTWISE_FLOPS[op], True
    if op in REDUCE_OPS:
        return 0, _vol(ins[0].get_shape()), True
    if op in FREE_OPS:
        return 0, 0, True
    return 0, 0, False


def _is_static(tensors: dict[str, Any], name: str) -> bool:
    from onnx_tool.tensor import STATIC_TENSOR

    return bool(name) and tensors[name].type == STATIC_TENSOR


class GraphCounter:
    """One loaded ONNX graph (onnx-tool) counted at any number of input shapes.

    Loading costs about the file's size in memory and a few seconds for a full-size model;
    each further shape costs tens of milliseconds.
    """

    def __init__(self, source: str | Path | Any, model: str = "") -> None:
        import onnx
        import onnx_tool

        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.exists():
                raise FileNotFoundError(f"no ONNX file {path}")
            try:
                proto = onnx.load(str(path))
            except Exception as exc:
                raise CorruptOnnxError(f"cannot read ONNX file {path}: {type(exc).__name__}: {exc}") from exc
            model = model or path.stem.removesuffix("-tiny")
        else:
            proto = source
        self.model = model
        self._lock = threading.Lock()
        try:
            self._m = onnx_tool.Model(proto, {"verbose": False})
        except Exception as exc:
            raise CorruptOnnxError(f"onnx-tool cannot load {model or 'the model'}: {type(exc).__name__}: {exc}") from exc
        if not getattr(self._m, "valid", True):
            raise CorruptOnnxError(f"not an ONNX model: {source}")
        self.input_name = self._m.graph.input[0]

    def count(self, batch: int, n_samples: int) -> FlopCount:
        import numpy as np

        g = self._m.graph
        with self._lock:
            try:
                g.shape_infer({self.input_name: np.zeros((batch, n_samples), dtype=np.float32)})
                g.profile()
            except Exception as exc:
                raise CountError(f"{self.model}: shape inference failed at batch {batch} x "
                                 f"{n_samples} samples: {type(exc).__name__}: {exc}") from exc
            fc = FlopCount(self.model, batch, n_samples, onnx_tool_macs=int(g.macs[0]))
            by_op: dict[str, Counter] = defaultdict(Counter)
            by_layer: dict[str, Counter] = defaultdict(Counter)
            for key, node in g.nodemap.items():
                name = node.name or key
                macs, other, priced = _price(node, g.tensormap)
                attention = (node.op_type == "MatMul" and not _is_static(g.tensormap, node.input[0])
                             and not _is_static(g.tensormap, node.input[1]))
                nc = NodeCount(name, node.op_type, layer_of(name), macs, other, attention, priced)
                fc.nodes.append(nc)
                if not priced:
                    fc.uncounted[node.op_type] = fc.uncounted.get(node.op_type, 0) + 1
                    continue
                if macs == 0 and other == 0 and node.op_type in FREE_OPS:
                    fc.free_nodes += 1
                fc.macs += macs
                fc.other_flops += other
                fc.attention_macs += macs if attention else 0
                op_key = "MatMul (attention)" if attention else node.op_type
                for bucket, k in ((by_op, op_key), (by_layer, nc.layer)):
                    bucket[k]["nodes"] += 1
                    bucket[k]["macs"] += macs
                    bucket[k]["other_flops"] += other
                    bucket[k]["attention_macs"] += macs if attention else 0
        fc.by_op = {k: dict(v) for k, v in sorted(by_op.items(), key=lambda kv: -kv[1]["macs"])}
        fc.by_layer = {k: dict(v) for k, v in sorted(by_layer.items(), key=lambda kv: _layer_sort(kv[0]))}
        return fc


def _layer_sort(label: str) -> tuple[int, int, str]:
    order = ["front-end", "cnn encoder", "projection", "positional conv", "gru", "layer",
             "encoder norm", "other"]
    head, _, idx = label.partition(" ")
    rank = order.index(label) if label in order else (order.index(head) if head in order else len(order))
    return rank, int(idx) if idx.isdigit() else -1, label


class CountError(RuntimeError):
    """The graph could not be counted at the requested shape."""


class CorruptOnnxError(CountError):
    """The ONNX file exists but cannot be read."""


def count_onnx(path_or_model: str | Path | Any, batch: int, n_samples: int, model: str = "") -> FlopCount:
    """Count the ONNX graph (a path or an ``onnx.ModelProto``) at input ``(batch, n_samples)``."""
    return GraphCounter(path_or_model, model).count(batch, n_samples)


# ---------------------------------------------------------------------------------------------
# Analytic formulas (docs/flops.md derives each one)
# ---------------------------------------------------------------------------------------------


def arch_config(name: str, tiny: bool = False) -> dict[str, Any]:
    """The architecture numbers the formulas need, from the registry (tiny: the toy sizes).

    ``tests/test_flops.py`` checks these against the built modules, so they cannot drift.
    """
    from models.registry import get_spec

    spec = get_spec(name)
    kind = spec.arch["kind"]
    if kind == "logmel":
        return {"kind": kind}
    if kind == "apc":
        return {"kind": kind, "layers": spec.arch["layers"], "hidden": 16 if tiny else spec.arch["hidden"],
                "input": N_MELS}
    if kind == "s3prl-transformer":
        if tiny:
            return {"kind": kind, "layers": 2, "hidden": 32, "heads": 2, "ffn": 64, "chunk_frames": 8,
                    "shared": spec.arch.get("shared", False)}
        return {"kind": kind, "layers": spec.arch["layers"], "hidden": 768, "heads": 12, "ffn": 3072,
                "chunk_frames": spec.arch["chunk_frames"], "shared": spec.arch.get("shared", False)}
    if kind == "wav2vec2":
        from transformers import Wav2Vec2Config

        from models.hf_models import TINY

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
    from models.registry import get_spec

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
            from models.s3prl_models import chunk_plan

            n, c = chunk_plan(frames, cfg["chunk_frames"])
            seqs, d = batch * n, cfg["hidden"]
            tokens = seqs * c  # padded frames are computed too
            layers["projection"] = tokens * N_MELS * d
            for i in range(cfg["layers"]):
                macs, att = _transformer_layer(tokens, seqs, c, d, cfg["ffn"])
                layers[f"layer {i}"] = macs
                attention += att
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
# Per-cell API for the benchmark
# ---------------------------------------------------------------------------------------------


class MacsCache:
    """Per-shape results and loaded graphs; a benchmark process keeps one (``macs_for`` does)."""

    def __init__(self) -> None:
        self.cells: dict[tuple, dict[str, Any]] = {}
        self.graphs: dict[tuple, GraphCounter] = {}
        self.validated: dict[tuple, bool] = {}
        self.lock = threading.Lock()

    def graph(self, path: Path, model: str) -> GraphCounter:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if key not in self.graphs:
            self.graphs.clear()  # keep one loaded graph: they are as large as the model
            self.graphs[key] = GraphCounter(path, model)
        return self.graphs[key]


_DEFAULT_CACHE = MacsCache()


def macs_for(model: str, onnx_path: str | Path | None, batch: int, n_samples: int, *,
             validate: bool = False, cache: MacsCache | None = None) -> dict[str, Any]:
    """MACs and FLOPs of one benchmark cell: ``{"macs", "flops", "attention_macs", ...}``.

    The analytic formula gives the number in microseconds without touching the file; the
    tests prove it equal to the ONNX graph count for every registered model, and ``make
    flops`` re-checks it on the real files.  ``validate=True`` also counts the graph once
    per file (seconds, and memory the size of the model: do it before the model is loaded
    or in the parent process) and, should the two ever disagree, returns the graph's count.
    A model without an analytic formula always gets the graph count, cached per shape.
    ``flops`` = 2 x ``macs`` (matmul/conv/recurrent only; elementwise work is not in it).
    """
    cache = cache or _DEFAULT_CACHE
    path = Path(onnx_path) if onnx_path else None
    tiny = bool(path and path.stem.endswith("-tiny"))
    key = (model, str(path) if path else None, tiny, batch, n_samples, validate)
    with cache.lock:
        if key in cache.cells:
            return dict(cache.cells[key])
        result: dict[str, Any]
        try:
            a = analytic_count(model, batch, n_samples, tiny)
            result = {"macs": a.macs, "flops": a.flops, "attention_macs": a.attention_macs,
                      "frames": a.frames, "source": "analytic"}
        except ValueError as exc:
            if "below the minimum" in str(exc):
                raise
            result = {}
        if path is not None and (validate or not result):
            gkey = (str(path), tiny)
            if not result or not cache.validated.get(gkey, False):
                g = cache.graph(path, model).count(batch, n_samples)
                if result and result["macs"] == g.macs:
                    cache.validated[gkey] = True
                    result["source"] = "analytic (checked against the ONNX graph)"
                else:
                    if result:
                        result["analytic_macs"] = result["macs"]
                    result.update(macs=g.macs, flops=g.flops, attention_macs=g.attention_macs,
                                  other_flops=g.other_flops, uncounted=g.uncounted, source="onnx-graph")
            else:
                result["source"] = "analytic (checked against the ONNX graph)"
        if not result:
            raise CountError(f"{model}: no analytic formula and no ONNX file to count")
        result.update(model=model, batch=batch, n_samples=n_samples)
        cache.cells[key] = result
        return dict(result)


# ---------------------------------------------------------------------------------------------
# PyTorch cross-check
# ---------------------------------------------------------------------------------------------


def torch_flop_count(module: Any, wav: Any) -> int:
    """FLOPs by ``torch.utils.flop_counter.FlopCounterMode`` (matmul/conv/attention only),
    with the CPU SDPA kernel priced as SDPA (torch 2.13 has no formula for it)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def sdpa_cpu(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    mapping = {}
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None:
        mapping[op] = sdpa_cpu
    # no_grad, not inference_mode: under inference_mode the weight-norm parametrisation of
    # transformers' positional conv raises AttributeError inside FlopCounterMode (torch 2.13)
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        module(wav)
    return int(counter.get_total_flops())


# ---------------------------------------------------------------------------------------------
# Report and command line
# ---------------------------------------------------------------------------------------------


class UsageError(ValueError):
    """Bad input: the command line turns it into one line and exit code 2."""


def _csv_list(text: str, cast: type, what: str) -> list:
    try:
        values = [cast(v.strip()) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"bad {what} list {text!r}: expected comma-separated numbers") from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"bad {what} list {text!r}: expected positive numbers")
    return values


def _g(x: float) -> str:
    return f"{x / 1e9:,.3f}"


def _m(x: float) -> str:
    return f"{x / 1e6:,.1f}"


def build_report(models: list[str], durations: list[float], batch_sizes: list[int],
                 onnx_dir: Path, log=print) -> dict[str, Any]:
    """Count every model x batch x duration from its ONNX file; raise UsageError on bad input."""
    from export.onnx_export import onnx_path
    from models.registry import get_spec, UnknownModelError

    specs = []
    for name in models:
        try:
            specs.append(get_spec(name))
        except UnknownModelError as exc:
            raise UsageError(str(exc)) from None
    for spec in specs:
        for d in durations:
            if int(round(d * SAMPLE_RATE)) < spec.min_samples:
                raise UsageError(f"duration {d:g} s is below {spec.name}'s minimum of "
                                 f"{spec.min_duration_s:g} s ({spec.min_samples} samples)")
        path = onnx_path(onnx_dir, spec.name)
        if not path.exists():
            raise UsageError(f"missing ONNX file {path}; export it with "
                             f"`make export MODELS={spec.name}` (or `python -m export --models "
                             f"{spec.name} --out {onnx_dir}`)")
    rows, details = [], {}
    for spec in specs:
        path = onnx_path(onnx_dir, spec.name)
        log(f"{spec.name}: loading {path}")
        try:
            counter = GraphCounter(path, spec.name)
        except CorruptOnnxError as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise UsageError(f"{first}; re-export it with `make export MODELS={spec.name} FRESH=1`") from None
        details[spec.name] = {}
        for b in batch_sizes:
            for d in durations:
                n = int(round(d * SAMPLE_RATE))
                fc = counter.count(b, n)
                a = analytic_count(spec.name, b, n)
                agree = abs(fc.macs - a.macs) <= 1e-3 * max(1, a.macs)
                rows.append({
                    "model": spec.name, "batch": b, "duration_s": d, "n_samples": n, "frames": spec.frames(n),
                    "gmacs": fc.macs / 1e9, "gflops": fc.flops / 1e9,
                    "gmacs_per_audio_s": fc.macs / 1e9 / (b * d),
                    "attention_gmacs": fc.attention_macs / 1e9,
                    "attention_share": fc.attention_macs / fc.macs if fc.macs else 0.0,
                    "other_gflops": fc.other_flops / 1e9,
                    "onnx_tool_gmacs": (fc.onnx_tool_macs or 0) / 1e9,
                    "analytic_gmacs": a.macs / 1e9, "analytic_agrees": agree,
                    "uncounted": ";".join(f"{k}:{v}" for k, v in fc.uncounted.items()),
                    "macs": fc.macs, "flops": fc.flops,
                })
                details[spec.name][f"b{b}_{d:g}s"] = fc.to_dict()
                if not agree:
                    log(f"WARNING {spec.name} batch {b} {d:g} s: graph {fc.macs:,} MACs vs "
                        f"analytic {a.macs:,}")
        del counter
    return {"rows": rows, "details": details, "models": models, "durations": durations,
            "batch_sizes": batch_sizes, "onnx_dir": str(onnx_dir)}


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    import csv

    from tabulate import tabulate

    out.mkdir(parents=True, exist_ok=True)
    rows, details = report["rows"], report["details"]
    written = []
    csv_path = out / "flops.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    written.append(csv_path)
    json_path = out / "flops.json"
    json_path.write_text(json.dumps({k: v for k, v in report.items()}, indent=1, default=str))
    written.append(json_path)

    lines = ["# MACs and FLOPs per model, counted from the ONNX graphs", "",
             "MACs are multiply-accumulates of MatMul/Gemm/Conv/GRU nodes; FLOPs = 2 x MACs. "
             "Elementwise, normalisation and softmax work is the separate *other GFLOPs* column "
             "(1 FLOP per output element, softmax 5, norms 7: docs/flops.md). *onnx-tool* is "
             "onnx-tool's own total, which books that elementwise work as MACs too. *analytic* is "
             "the hand-derived formula (docs/flops.md); it must equal the graph count.", "",
             f"ONNX files: `{report['onnx_dir']}`", ""]
    head = ["model", "batch", "duration s", "frames", "GMACs", "GFLOPs", "GMACs / audio-s",
            "attention share", "other GFLOPs", "onnx-tool GMACs", "analytic = graph", "uncounted ops"]
    table = [[r["model"], r["batch"], f"{r['duration_s']:g}", r["frames"], _g(r["macs"]), _g(r["flops"]),
              f"{r['gmacs_per_audio_s']:,.3f}", f"{100 * r['attention_share']:.1f}%",
              f"{r['other_gflops']:,.3f}", f"{r['onnx_tool_gmacs']:,.3f}",
              "yes" if r["analytic_agrees"] else "NO", r["uncounted"] or "none"] for r in rows]
    lines += ["## Totals", "", tabulate(table, head, tablefmt="github"), ""]
    b0 = report["batch_sizes"][0]
    for model, per_shape in details.items():
        lines += [f"## {model}", ""]
        keys = [f"b{b0}_{d:g}s" for d in report["durations"]]
        shapes = [per_shape[k] for k in keys]
        last = shapes[-1]["by_op"]
        ops = sorted({op for s in shapes for op in s["by_op"]},
                     key=lambda op: (-last.get(op, {}).get("macs", 0), -last.get(op, {}).get("other_flops", 0)))
        op_rows, free = [], []
        for op in ops:
            if not any(s["by_op"].get(op, {}).get("macs", 0) or s["by_op"].get(op, {}).get("other_flops", 0)
                       for s in shapes):
                free.append(f"{op} {last.get(op, {}).get('nodes', 0)}")
                continue
            row = [op, last.get(op, {}).get("nodes", 0)]
            for s in shapes:
                e = s["by_op"].get(op, {})
                row += [_m(e.get("macs", 0)), _m(e.get("other_flops", 0))]
            op_rows.append(row)
        op_head = ["op type", "nodes"] + [c for d in report["durations"]
                                          for c in (f"MMACs {d:g}s", f"other MFLOPs {d:g}s")]
        lines += [f"By operator type (batch {b0}):", "", tabulate(op_rows, op_head, tablefmt="github"), "",
                  "Data movement and shape ops (0 FLOPs; node counts): " + (", ".join(free) or "none"), ""]
        layers = list(shapes[-1]["by_layer"])
        layer_rows = []
        for layer in layers:
            row = [layer]
            for s in shapes:
                e = s["by_layer"].get(layer, {})
                row += [_m(e.get("macs", 0)), _m(e.get("attention_macs", 0)), _m(e.get("other_flops", 0))]
            layer_rows.append(row)
        layer_head = ["layer"] + [c for d in report["durations"]
                                  for c in (f"MMACs {d:g}s", f"attention MMACs {d:g}s", f"other MFLOPs {d:g}s")]
        lines += [f"By layer (batch {b0}; *other* is glue: reshapes, masks, chunking):", "",
                  tabulate(layer_rows, layer_head, tablefmt="github"), ""]
        if any(s["uncounted"] for s in shapes):
            lines += [f"Uncounted op types: {shapes[-1]['uncounted']}", ""]
    plot = _plot(report, out)
    if plot:
        written.append(plot)
        lines += ["## GMACs per audio-second against duration", "", f"![GMACs per audio-second]({plot.name})", ""]
    md = out / "report.md"
    md.write_text("\n".join(lines))
    written.insert(0, md)
    return written


def _plot(report: dict[str, Any], out: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b0 = report["batch_sizes"][0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = ["-", "--", ":", "-."]  # identical curves (wav2vec2/HuBERT Base) stay visible
    for i, model in enumerate(report["models"]):
        pts = [(r["duration_s"], r["gmacs_per_audio_s"]) for r in report["rows"]
               if r["model"] == model and r["batch"] == b0]
        if pts:
            ax.plot(*zip(*pts), marker="os^D"[i % 4], linestyle=styles[i % 4], label=model)
    ax.set_xscale("log", base=2)
    ax.set_xticks(report["durations"], [f"{d:g}" for d in report["durations"]])
    ax.set_yscale("log")
    ax.set_xlabel("input duration (s)")
    ax.set_ylabel("GMACs per audio-second")
    ax.set_title(f"Compute per audio-second (batch {b0})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path = out / "gmacs_per_audio_s.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    from models.registry import LAB_SUITE

    env = os.environ
    p = argparse.ArgumentParser(prog="python -m flops.graph",
                                description="MACs/FLOPs report from the ONNX graphs (make flops)")
    p.add_argument("--models", default=env.get("MODELS") or ",".join(LAB_SUITE))
    p.add_argument("--durations", default=env.get("DURATIONS") or "1,2,4,8,16", help="seconds, comma-separated")
    p.add_argument("--batch-sizes", default=env.get("BATCH_SIZES") or "1")
    p.add_argument("--onnx-dir", default=env.get("ONNX_DIR") or "results/onnx")
    p.add_argument("--out", default=env.get("FLOPS_DIR") or "results/flops")
    args = p.parse_args(argv)
    try:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        if not models:
            raise UsageError("no models given")
        durations = _csv_list(args.durations, float, "duration")
        batch_sizes = _csv_list(args.batch_sizes, int, "batch size")
        report = build_report(models, durations, batch_sizes, Path(args.onnx_dir),
                              log=lambda s: print(s, file=sys.stderr))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = write_report(report, Path(args.out))
    from tabulate import tabulate

    b0 = batch_sizes[0]
    table = [[r["model"], f"{r['duration_s']:g}", _g(r["macs"]), f"{r['gmacs_per_audio_s']:,.3f}",
              f"{100 * r['attention_share']:.1f}%", f"{r['other_gflops']:,.3f}"]
             for r in report["rows"] if r["batch"] == b0]
    print(tabulate(table, ["model", "duration s", "GMACs", "GMACs / audio-s", "attention", "other GFLOPs"],
                   tablefmt="simple"))
    print("wrote " + ", ".join(str(w) for w in written))
    bad = [r for r in report["rows"] if not r["analytic_agrees"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
