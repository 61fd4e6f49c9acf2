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
``python -m flops`` (``make flops``) writes the report to ``results/flops/``.

The package is split by concern: this module is the graph count; :mod:`flops.formulas` the
analytic formulas and the PyTorch cross-check; :mod:`flops.cache` the per-cell API of the
benchmark; :mod:`flops.report` the report and command line.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.frontend import SAMPLE_RATE

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
    (re.compile(r"^/?lstm\.(\d+)/"), "lstm {}"),
    (re.compile(r"^/?linear/"), "head"),
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
    # deferred: onnx-tool is loaded only when a graph is counted
    from onnx_tool.tensor import STATIC_TENSOR

    return bool(name) and tensors[name].type == STATIC_TENSOR


class GraphCounter:
    """One loaded ONNX graph (onnx-tool) counted at any number of input shapes.

    Loading costs about the file's size in memory and a few seconds for a full-size model;
    each further shape costs tens of milliseconds.
    """

    def __init__(self, source: str | Path | Any, model: str = "") -> None:
        # deferred: onnx is loaded only where a graph is read or written
        import onnx

        # deferred: onnx-tool is loaded only when a graph is counted
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
    order = ["front-end", "cnn encoder", "projection", "positional conv", "gru", "lstm", "layer", "head",
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
