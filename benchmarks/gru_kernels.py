"""Whose GRU is wrong?  One GRU, its weights and input fixed, run by every runtime against NumPy.

The emulated arm64 check found APC's ONNX graph disagreeing with PyTorch under ONNX Runtime on
aarch64 (cosine 0.83, docs/platforms.md) while the same export passes on x86-64.  That is either
ONNX Runtime's aarch64 code or the emulator running it.  This probe takes the question apart:

- ``make DIR`` (on a machine with the converters: x86-64) draws a GRU's weights and input with a
  seeded NumPy generator and writes them (``gru-<case>.npz``), the ONNX graph with ONNX's own
  ``GRU`` op (``gru-<case>.onnx``, built with ``onnx.helper``: no exporter in between), the same
  recurrence written out step by step in plain ONNX ops (``-unrolled.onnx``: MatMul, Add,
  Sigmoid, Tanh, Mul), and where the packages are there the ExecuTorch program (``.pte``) and the
  LiteRT model (``.tflite``) of ``torch.nn.GRU`` holding the same weights.
- ``check DIR`` (on any machine: the board, the emulated root, the laptop) computes the recurrence
  in float64 NumPy from the ``.npz`` and compares every runtime that is installed with it (max abs
  error, cosine; the export check's thresholds, ``export/fidelity.py``): NumPy in float32,
  PyTorch, ONNX Runtime on the GRU op (one thread and all cores) and on the unrolled graph,
  OpenVINO on the GRU op, ExecuTorch and LiteRT; and ONNX Runtime's Sigmoid and Tanh alone over
  [-12, 12].  It records the machine: architecture, the CPU features the kernel (or qemu-user)
  advertises to the process (``AT_HWCAP``), and ``QEMU_CPU``, the CPU model the emulator was told
  to be.  Run it under two emulated CPUs (``QEMU_CPU=max``, qemu's default, and ``cortex-a76``,
  a Raspberry Pi 5's core): a runtime right on one and wrong on the other is choosing a code path
  by the CPU's features, and only a real CPU with those features can say whether the kernel or
  the emulation of it is wrong.
- ``report A.json B.json ... --out docs/benchmarks/gru-kernels.md`` puts the machines side by side.

    .venv/bin/python benchmarks/gru_kernels.py make /tmp/gru
    .venv/bin/python benchmarks/gru_kernels.py check /tmp/gru --label x86-64 --out /tmp/gru/x86.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from export.fidelity import MAX_REL_ERR, MIN_COSINE, agrees, compare_outputs  # noqa: E402

GATES = ("z", "r", "h")  # ONNX's order of the three gates in W, R and B
OPSET = 17
SEED = 2026


@dataclass(frozen=True)
class Case:
    """One GRU layer: what the probe draws and runs."""

    inputs: int
    hidden: int
    frames: int
    batch: int
    input_scale: float  # the input's standard deviation: log-mel features span several units

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.frames, self.batch, self.inputs)


# 'tiny-apc' is the layer of the APC that failed the emulated check (TINY=1: 80 log-mel bins in,
# hidden 16, 1 s = 100 frames); 'apc-layer' a full-size APC layer's width
CASES = {
    "tiny-apc": Case(inputs=80, hidden=16, frames=100, batch=1, input_scale=2.0),
    "apc-layer": Case(inputs=80, hidden=512, frames=100, batch=1, input_scale=2.0),
}
EDGE_CASES = ("tiny-apc",)  # ExecuTorch and LiteRT unroll a GRU per frame: only the small one


# --- the weights and the reference ----------------------------------------------------------------
def draw(case: Case, seed: int = SEED) -> dict[str, np.ndarray]:
    """Weights as PyTorch initialises a GRU (uniform in +-1/sqrt(hidden)), per gate, and an input."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(case.hidden)
    weights: dict[str, np.ndarray] = {}
    for gate in GATES:
        weights[f"W{gate}"] = rng.uniform(-bound, bound, (case.hidden, case.inputs)).astype(np.float32)
        weights[f"R{gate}"] = rng.uniform(-bound, bound, (case.hidden, case.hidden)).astype(np.float32)
        weights[f"bW{gate}"] = rng.uniform(-bound, bound, case.hidden).astype(np.float32)
        weights[f"bR{gate}"] = rng.uniform(-bound, bound, case.hidden).astype(np.float32)
    weights["x"] = (rng.standard_normal(case.shape) * case.input_scale).astype(np.float32)
    return weights


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def reference(w: dict[str, np.ndarray], dtype: Any = np.float64) -> np.ndarray:
    """The GRU's output at every frame, (frames, batch, hidden): PyTorch's equations (ONNX's with
    ``linear_before_reset=1``), h0 = 0, computed in ``dtype``."""
    p = {k: v.astype(dtype) for k, v in w.items()}
    frames, batch, _ = p["x"].shape
    h = np.zeros((batch, p["Rz"].shape[0]), dtype)
    out = np.empty((frames, batch, h.shape[1]), dtype)
    for t in range(frames):
        x = p["x"][t]
        z = sigmoid(x @ p["Wz"].T + p["bWz"] + h @ p["Rz"].T + p["bRz"])
        r = sigmoid(x @ p["Wr"].T + p["bWr"] + h @ p["Rr"].T + p["bRr"])
        n = np.tanh(x @ p["Wh"].T + p["bWh"] + r * (h @ p["Rh"].T + p["bRh"]))
        h = (1 - z) * n + z * h
        out[t] = h
    return out


# --- the artifacts -----------------------------------------------------------------------------------
def gru_op_graph(w: dict[str, np.ndarray]) -> Any:
    """ONNX's GRU op holding ``w`` (one direction, linear_before_reset=1), output (frames, batch, hidden)."""
    from onnx import TensorProto, helper, numpy_helper  # deferred: make-time only

    frames, batch, inputs = w["x"].shape
    hidden = w["Rz"].shape[0]
    init = [
        numpy_helper.from_array(np.concatenate([w[f"W{g}"] for g in GATES])[None], "W"),
        numpy_helper.from_array(np.concatenate([w[f"R{g}"] for g in GATES])[None], "R"),
        numpy_helper.from_array(np.concatenate([w[f"bW{g}"] for g in GATES] + [w[f"bR{g}"] for g in GATES])[None], "B"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
    ]
    nodes = [helper.make_node("GRU", ["x", "W", "R", "B"], ["Y"], hidden_size=hidden, linear_before_reset=1),
             helper.make_node("Squeeze", ["Y", "axis1"], ["y"])]  # (frames, 1, batch, hidden) -> (frames, batch, hidden)
    graph = helper.make_graph(
        nodes, "gru", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [frames, batch, inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [frames, batch, hidden])], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def unrolled_graph(w: dict[str, np.ndarray]) -> Any:
    """The same recurrence in elementary ONNX ops, one set per frame: ONNX Runtime's MatMul, Add,
    Sigmoid, Tanh and Mul kernels instead of its GRU kernel."""
    from onnx import TensorProto, helper, numpy_helper  # deferred: make-time only

    frames, batch, inputs = w["x"].shape
    hidden = w["Rz"].shape[0]
    init = [numpy_helper.from_array(np.ascontiguousarray(w[f"{m}{g}"].T), f"{m}{g}T") for m in "WR" for g in GATES]
    init += [numpy_helper.from_array(w[f"b{m}{g}"], f"b{m}{g}") for m in "WR" for g in GATES]
    init += [numpy_helper.from_array(np.zeros((batch, hidden), np.float32), "h0"),
             numpy_helper.from_array(np.ones((1,), np.float32), "one"),
             numpy_helper.from_array(np.array([0], np.int64), "axis0")]
    nodes: list[Any] = []

    def op(kind: str, inputs_: list[str], name: str) -> str:
        nodes.append(helper.make_node(kind, inputs_, [name]))
        return name

    h, steps = "h0", []
    for t in range(frames):
        init.append(numpy_helper.from_array(np.array(t, np.int64), f"t{t}"))
        x = op("Gather", ["x", f"t{t}"], f"x{t}")  # (batch, inputs)

        def lin(m: str, g: str, v: str, t: int = t) -> str:
            return op("Add", [op("MatMul", [v, f"{m}{g}T"], f"mm{m}{g}{t}"), f"b{m}{g}"], f"lin{m}{g}{t}")

        z = op("Sigmoid", [op("Add", [lin("W", "z", x), lin("R", "z", h)], f"az{t}")], f"z{t}")
        r = op("Sigmoid", [op("Add", [lin("W", "r", x), lin("R", "r", h)], f"ar{t}")], f"r{t}")
        n = op("Tanh", [op("Add", [lin("W", "h", x), op("Mul", [r, lin("R", "h", h)], f"rh{t}")], f"an{t}")], f"n{t}")
        keep = op("Mul", [z, h], f"zh{t}")
        h = op("Add", [op("Mul", [op("Sub", ["one", z], f"omz{t}"), n], f"zn{t}"), keep], f"h{t + 1}")
        steps.append(op("Unsqueeze", [h, "axis0"], f"s{t}"))
    nodes.append(helper.make_node("Concat", steps, ["y"], axis=0))
    graph = helper.make_graph(
        nodes, "gru_unrolled", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [frames, batch, inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [frames, batch, hidden])], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def torch_gru(w: dict[str, np.ndarray]) -> Any:
    """``torch.nn.GRU`` holding ``w`` (PyTorch's gate order r, z, n), returning every frame's output."""
    import torch  # deferred: the check runs without torch where it is absent

    hidden, inputs = w["Wz"].shape

    class OneLayer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(inputs, hidden)

        def forward(self, x: Any) -> Any:
            return self.gru(x)[0]

    module = OneLayer().eval()
    order = ("r", "z", "h")
    with torch.no_grad():
        for name, parts in (("weight_ih_l0", [w[f"W{g}"] for g in order]), ("weight_hh_l0", [w[f"R{g}"] for g in order]),
                            ("bias_ih_l0", [w[f"bW{g}"] for g in order]), ("bias_hh_l0", [w[f"bR{g}"] for g in order])):
            getattr(module.gru, name).copy_(torch.from_numpy(np.concatenate(parts)))
    return module


def make(folder: Path, cases: list[str]) -> list[str]:
    """Write every case's weights and the artifacts this machine can make; one line per file or gap."""
    import onnx  # deferred: make-time only

    folder.mkdir(parents=True, exist_ok=True)
    said = []
    for name in cases:
        w = draw(CASES[name])
        np.savez(folder / f"gru-{name}.npz", **w)
        onnx.save(gru_op_graph(w), str(folder / f"gru-{name}.onnx"))
        onnx.save(unrolled_graph(w), str(folder / f"gru-{name}-unrolled.onnx"))
        said.append(f"{name}: weights, GRU-op and unrolled ONNX graphs")
        if name not in EDGE_CASES:
            continue
        for suffix, convert in (("pte", _lower_executorch), ("tflite", _convert_litert)):
            start = time.perf_counter()
            try:
                data = convert(w)
            except Exception as exc:  # a converter missing or failing: the check says the file is absent
                said.append(f"{name}: no .{suffix} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
                continue
            (folder / f"gru-{name}.{suffix}").write_bytes(data)
            said.append(f"{name}: .{suffix} in {time.perf_counter() - start:.1f} s")
    return said


def _lower_executorch(w: dict[str, np.ndarray]) -> bytes:
    import torch

    from runners.runtimes.executorch import lower

    return lower(torch_gru(w), torch.from_numpy(w["x"]))[0]


def _convert_litert(w: dict[str, np.ndarray]) -> bytes:
    import torch

    from runners.runtimes.litert import convert

    return convert(torch_gru(w), torch.from_numpy(w["x"]))


# --- the runtimes -------------------------------------------------------------------------------------
class Absent(Exception):
    """A runtime or an artifact this machine does not have: a row that says so, not a failure."""


def run_numpy32(folder: Path, case: str, w: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    return reference(w, np.float32), f"numpy {np.__version__}"


def _pytorch(w: dict[str, np.ndarray], onednn: bool = True, float64: bool = False) -> tuple[np.ndarray, str]:
    """torch.nn.GRU on one thread; ``onednn=False``: PyTorch's own RNN kernel instead of oneDNN's
    (``torch.backends.mkldnn``); ``float64``: its plainest path, no float32 kernel at all."""
    try:
        import torch
    except ImportError as exc:
        raise Absent(f"torch not installed ({exc})") from None
    torch.set_num_threads(1)
    module, x = torch_gru(w), torch.from_numpy(w["x"])
    if float64:
        module, x = module.double(), x.double()
    with torch.backends.mkldnn.flags(enabled=onednn), torch.inference_mode():
        return module(x).numpy(), f"torch {torch.__version__}"


def run_pytorch(folder: Path, case: str, w: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    return _pytorch(w)


def run_pytorch_without_onednn(folder: Path, case: str, w: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    return _pytorch(w, onednn=False)


def run_pytorch_float64(folder: Path, case: str, w: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    return _pytorch(w, float64=True)


def _ort(folder: Path, file: str, w: dict[str, np.ndarray], threads: int) -> tuple[np.ndarray, str]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise Absent(f"onnxruntime not installed ({exc})") from None
    path = folder / file
    if not path.exists():
        raise Absent(f"{file} missing (make it with: gru_kernels.py make)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": w["x"]})[0], f"onnxruntime {ort.__version__}, {threads} thread(s)"


def run_ort_gru(folder: Path, case: str, w: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    return _ort(folder, f"gru-{case}.onnx", w, 1)


def run_ort_gru_all_cores(folder: Path, case: str, w: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    return _ort(folder, f"gru-{case}.onnx", w, os.cpu_count() or 1)


def run_ort_unrolled(folder: Path, case: str, w: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    return _ort(folder, f"gru-{case}-unrolled.onnx", w, 1)


def run_openvino(folder: Path, case: str, w: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    try:
        import openvino as ov
    except ImportError as exc:
        raise Absent(f"openvino not installed ({exc})") from None
    from runners.runtimes.openvino import _read_back, compile_config

    path = folder / f"gru-{case}.onnx"
    if not path.exists():
        raise Absent(f"{path.name} missing")
    compiled = ov.Core().compile_model(str(path), "CPU", compile_config(1, None))
    precision = _read_back(compiled, "INFERENCE_PRECISION_HINT")
    out = compiled({"x": w["x"]})
    return np.asarray(next(iter(out.values()))), f"openvino {ov.__version__}, CPU plugin, precision {precision}"


def edge_file(folder: Path, case: str, suffix: str, made_by: str) -> Path:
    """An ExecuTorch or LiteRT file ``make`` wrote, or :class:`Absent` saying why there is none."""
    path = folder / f"gru-{case}{suffix}"
    if not path.exists():
        raise Absent(f"{path.name} not made ({made_by} is for {', '.join(EDGE_CASES)} on a machine that has it)")
    return path


def run_executorch(folder: Path, case: str, w: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    path = edge_file(folder, case, ".pte", "ExecuTorch's export")
    try:
        import torch
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
        from executorch.runtime import Runtime

        from runners.runtimes.executorch import executorch_version
    except ImportError as exc:
        raise Absent(f"executorch not installed ({exc})") from None
    _unsafe_reset_threadpool(1)
    data = path.read_bytes()  # the program reads from these bytes: they, and it, outlive the call
    program = Runtime.get().load_program(data)
    method = program.load_method("forward")
    out = np.array(method.execute([torch.from_numpy(w["x"])])[0].detach().numpy(), dtype=np.float32)
    del method, program, data
    return out, f"executorch {executorch_version()}, XNNPACK, 1 thread"


def run_litert(folder: Path, case: str, w: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    path = edge_file(folder, case, ".tflite", "LiteRT's converter (litert-torch)")
    try:
        from ai_edge_litert.interpreter import Interpreter

        from runners.runtimes.litert import litert_version, run_once
    except ImportError as exc:
        raise Absent(f"ai-edge-litert not installed ({exc})") from None
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    return run_once(interpreter, w["x"])[0], f"ai-edge-litert {litert_version()}, XNNPACK, 1 thread"


RUNNERS: dict[str, tuple[str, Callable[[Path, str, dict[str, np.ndarray]], tuple[np.ndarray, str]]]] = {
    "numpy-float32": ("the recurrence in float32 NumPy (the float32 round-off a runtime is allowed)", run_numpy32),
    "pytorch": ("torch.nn.GRU", run_pytorch),
    "pytorch-without-onednn": ("torch.nn.GRU, torch.backends.mkldnn off", run_pytorch_without_onednn),
    "pytorch-float64": ("torch.nn.GRU in float64", run_pytorch_float64),
    "onnxruntime-gru": ("ONNX GRU op", run_ort_gru),
    "onnxruntime-gru-all-cores": ("ONNX GRU op, every core", run_ort_gru_all_cores),
    "onnxruntime-unrolled": ("MatMul/Add/Sigmoid/Tanh/Mul per frame", run_ort_unrolled),
    "openvino-gru": ("ONNX GRU op", run_openvino),
    "executorch": ("torch.nn.GRU lowered to XNNPACK (.pte)", run_executorch),
    "litert": ("torch.nn.GRU converted (.tflite)", run_litert),
}


@dataclass
class Row:
    case: str
    runtime: str
    graph: str
    status: str  # ok | differs | absent | error
    max_abs_err: float | None = None
    cosine: float | None = None
    version: str = ""
    note: str = ""


def activations() -> list[Row]:
    """ONNX Runtime's Sigmoid and Tanh alone over [-12, 12] against float64 NumPy."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError as exc:
        return [Row("activations", "onnxruntime", "Sigmoid, Tanh", "absent", note=str(exc))]
    x = np.linspace(-12, 12, 4097, dtype=np.float32)
    rows = []
    for kind, exact in (("Sigmoid", sigmoid), ("Tanh", np.tanh)):
        graph = helper.make_graph([helper.make_node(kind, ["x"], ["y"])], kind,
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [x.size])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [x.size])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = session.run(None, {"x": x})[0]
        want = exact(x.astype(np.float64))
        err, cosine = compare_outputs([want], [got])
        rows.append(Row("activations", "onnxruntime", f"{kind} over [-12, 12]",
                        "ok" if agrees([want], err, cosine) else "differs", err, cosine, f"onnxruntime {ort.__version__}"))
    return rows


ACTIVATIONS = "onnxruntime-activations"  # ONNX Runtime's Sigmoid and Tanh alone: a check of their own
MARK = "gru_kernels rows: "  # the line a child process reports its rows on


def rows_of(folder: Path, case: str, runtime: str) -> list[Row]:
    """One runtime on one case (``ACTIVATIONS``: the activation rows), in this process."""
    if runtime == ACTIVATIONS:
        return activations()
    graph, run = RUNNERS[runtime]
    with np.load(folder / f"gru-{case}.npz") as data:
        w = {k: data[k] for k in data.files}
    want = reference(w)
    try:
        got, version = run(folder, case, w)
    except Absent as exc:
        return [Row(case, runtime, graph, "absent", note=str(exc))]
    except Exception as exc:  # a runtime that cannot load or run the file: its words
        return [Row(case, runtime, graph, "error", note=f"{type(exc).__name__}: {str(exc)[:300]}")]
    err, cosine = compare_outputs([want], [np.asarray(got, np.float32).reshape(want.shape)])
    return [Row(case, runtime, graph, "ok" if agrees([want], err, cosine) else "differs", err, cosine, version)]


def in_child(folder: Path, case: str, runtime: str, timeout_s: float) -> list[Row]:
    """:func:`rows_of` in a process of its own: a kernel that crashes (SIGSEGV, SIGILL under an
    emulator) is a row that says so, and the other runtimes still run."""
    graph = "Sigmoid, Tanh" if runtime == ACTIVATIONS else RUNNERS[runtime][0]
    try:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "rows", str(folder), case, runtime],
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return [Row(case, runtime, graph, "error", note=f"no answer in {timeout_s:g} s: stopped")]
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARK):
            return [Row(**r) for r in json.loads(line[len(MARK):])]
    if done.returncode < 0:
        try:
            how = f"killed by signal {-done.returncode} ({signal.Signals(-done.returncode).name})"
        except ValueError:  # a signal number without a name
            how = f"killed by signal {-done.returncode}"
    else:
        how = f"exit code {done.returncode}"
    last = next((ln.strip() for ln in reversed(done.stderr.splitlines()) if ln.strip()), "")
    return [Row(case, runtime, graph, "error", note=f"the process died: {how}" + (f"; last words: {last[:200]}" if last else ""))]


def check(folder: Path, runtimes: list[str] | None = None, isolate: bool = True, timeout_s: float = 1800.0) -> list[Row]:
    """Every runtime on every case found in ``folder``, against the float64 recurrence; each in a
    process of its own unless ``isolate`` is false."""
    jobs = [(name, runtime) for name in CASES if (folder / f"gru-{name}.npz").exists()
            for runtime in RUNNERS if not runtimes or runtime in runtimes]
    if not runtimes or "onnxruntime-gru" in runtimes:
        jobs.append(("activations", ACTIVATIONS))
    rows: list[Row] = []
    for case, runtime in jobs:
        rows += in_child(folder, case, runtime, timeout_s) if isolate else rows_of(folder, case, runtime)
    return rows


# --- the machine ----------------------------------------------------------------------------------
# AT_HWCAP / AT_HWCAP2 bits on aarch64 (Linux's arch/arm64/include/uapi/asm/hwcap.h) that pick kernels
HWCAP_BITS = {"fphp": 9, "asimdhp": 10, "asimddp": 20, "sve": 22}
HWCAP2_BITS = {"sve2": 1, "i8mm": 13, "bf16": 14, "sme": 23}


def hwcaps(auxv: bytes | None = None) -> list[str]:
    """The aarch64 features the kernel (or qemu-user) advertises to this process, from its auxv."""
    if auxv is None:
        if platform.machine() not in ("aarch64", "arm64"):
            return []
        try:
            auxv = Path("/proc/self/auxv").read_bytes()
        except OSError:
            return []
    pairs = np.frombuffer(auxv[: len(auxv) // 16 * 16], dtype=np.uint64).reshape(-1, 2)
    values = {int(k): int(v) for k, v in pairs}
    found = [n for n, bit in HWCAP_BITS.items() if values.get(16, 0) >> bit & 1]  # AT_HWCAP
    return found + [n for n, bit in HWCAP2_BITS.items() if values.get(26, 0) >> bit & 1]  # AT_HWCAP2


def machine(label: str) -> dict[str, Any]:
    return {"label": label, "machine": platform.machine(), "python": platform.python_version(),
            "qemu_cpu": os.environ.get("QEMU_CPU"), "hwcaps": hwcaps(), "cores": os.cpu_count(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


# --- the report --------------------------------------------------------------------------------------
def cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "—"
    if row["status"] in ("ok", "differs"):
        mark = "" if row["status"] == "ok" else " **differs**"
        return f"{row['cosine']:.6f} / {row['max_abs_err']:.2g}{mark}"
    return row["status"]


def merge(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs of one machine label as one (a first check of every runtime, a later one of a few): the
    weights are drawn from one seed, so their rows add up; a row seen twice keeps its first reading."""
    merged: dict[str, dict[str, Any]] = {}
    for run in runs:
        into = merged.setdefault(run["machine"]["label"], {"machine": run["machine"], "rows": []})
        seen = {(r["case"], r["runtime"], r["graph"]) for r in into["rows"]}
        into["rows"] += [r for r in run["rows"] if (r["case"], r["runtime"], r["graph"]) not in seen]
    return list(merged.values())


def report(runs: list[dict[str, Any]]) -> str:
    """A Markdown table: a row per case and runtime, a column per machine (cosine / max abs error)."""
    runs = merge(runs)
    heads = [r["machine"]["label"] for r in runs]
    keys: list[tuple[str, str, str]] = []
    for run in runs:
        for row in run["rows"]:
            key = (row["case"], row["runtime"], row["graph"])
            if key not in keys:
                keys.append(key)
    lines = ["| case | runtime | what runs | " + " | ".join(heads) + " |",
             "|---|---|---|" + "---|" * len(heads)]
    for key in keys:
        found = [next((row for row in run["rows"] if (row["case"], row["runtime"], row["graph"]) == key), None)
                 for run in runs]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cell(f) for f in found) + " |")
    lines += ["", f"Each cell: cosine / max abs error against the float64 recurrence; **differs**: outside the export "
              f"check's thresholds (cosine >= {MIN_COSINE}, max abs error <= {MAX_REL_ERR} x max(1, max |output|)).", "",
              "| machine | architecture | Python | QEMU_CPU | features advertised (AT_HWCAP) | versions |", "|---|---|---|---|---|---|"]
    for run in runs:
        m = run["machine"]
        versions = sorted({row["version"] for row in run["rows"] if row["version"]})
        lines.append(f"| {m['label']} | {m['machine']} | {m['python']} | {m['qemu_cpu'] or '(native)'} | "
                     f"{', '.join(m['hwcaps']) or '—'} | {'; '.join(versions)} |")
    absent = sorted({f"{row['runtime']}: {row['note']}" for run in runs for row in run["rows"]
                     if row["status"] in ("absent", "error")})
    if absent:
        lines += ["", "Not run or failed, in the runtime's words:", ""] + [f"- {a}" for a in absent]
    return "\n".join(lines) + "\n"


def verdict(run: dict[str, Any]) -> str:
    """One line for a check: how many rows agree, and which do not (the arm64 check's summary)."""
    off = [f"{r['runtime']}{' ' + r['graph'].split()[0] if r['case'] == 'activations' else ''} ({r['case']}, "
           f"cosine {r['cosine']:.4f})" if r["cosine"] is not None else f"{r['runtime']} ({r['case']}, error)"
           for r in run["rows"] if r["status"] in ("differs", "error")]
    ok = sum(r["status"] == "ok" for r in run["rows"])
    return f"{ok} ok, {len(off)} off" + (": " + ", ".join(off) if off else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_make = sub.add_parser("make", help="write the weights and the artifacts")
    p_make.add_argument("folder", type=Path)
    p_make.add_argument("--cases", default=",".join(CASES))
    p_check = sub.add_parser("check", help="run every installed runtime against NumPy")
    p_check.add_argument("folder", type=Path)
    p_check.add_argument("--label", default=platform.machine())
    p_check.add_argument("--runtimes", default="", help=f"some of {','.join(RUNNERS)} (default: all)")
    p_check.add_argument("--out", type=Path)
    p_report = sub.add_parser("report", help="machines side by side, as Markdown")
    p_report.add_argument("runs", type=Path, nargs="+")
    p_report.add_argument("--out", type=Path)
    p_rows = sub.add_parser("rows", help="(internal) one runtime on one case, rows printed as JSON")
    p_rows.add_argument("folder", type=Path)
    p_rows.add_argument("case")
    p_rows.add_argument("runtime")
    p_verdict = sub.add_parser("verdict", help="one line: how many rows of a check agree, and which do not")
    p_verdict.add_argument("run", type=Path)
    args = parser.parse_args(argv)
    if args.command == "rows":
        print(MARK + json.dumps([asdict(r) for r in rows_of(args.folder, args.case, args.runtime)]), flush=True)
        return 0
    if args.command == "verdict":
        print(verdict(json.loads(args.run.read_text())))
        return 0
    if args.command == "make":
        cases = [c for c in args.cases.split(",") if c]
        bad = [c for c in cases if c not in CASES]
        if bad:
            print(f"gru_kernels: unknown case {bad[0]!r}; valid: {', '.join(CASES)}", file=sys.stderr)
            return 2
        for line in make(args.folder, cases):
            print(line)
        return 0
    if args.command == "check":
        runtimes = [r for r in args.runtimes.split(",") if r] or None
        bad = [r for r in runtimes or [] if r not in RUNNERS]
        if bad:
            print(f"gru_kernels: unknown runtime {bad[0]!r}; valid: {', '.join(RUNNERS)}", file=sys.stderr)
            return 2
        if not any(args.folder.glob("gru-*.npz")):
            print(f"gru_kernels: no gru-*.npz in {args.folder}; make them first: gru_kernels.py make FOLDER",
                  file=sys.stderr)
            return 2
        rows = check(args.folder, runtimes)
        run = {"machine": machine(args.label), "rows": [asdict(r) for r in rows]}
        for row in rows:
            figures = f"cosine {row.cosine:.6f}, max abs err {row.max_abs_err:.3g}" if row.cosine is not None else row.note
            name = f"{row.runtime} {row.graph.split()[0]}" if row.case == "activations" else row.runtime
            print(f"{row.case:11} {name:26} {row.status:8} {figures}")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(run, indent=1) + "\n")
        return 1 if any(r.status in ("differs", "error") for r in rows) else 0
    runs = [json.loads(p.read_text()) for p in args.runs]
    text = report(runs)
    if args.out:
        args.out.write_text(f"# GRU kernels: every runtime against NumPy, machine by machine\n\n"
                            f"Made by `benchmarks/gru_kernels.py report` from the checks in "
                            f"[{args.out.with_suffix('.json').name}]({args.out.with_suffix('.json').name}); "
                            f"what they show: docs/platforms.md.\n\n{text}")
        args.out.with_suffix(".json").write_text(json.dumps(merge(runs), indent=1) + "\n")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
