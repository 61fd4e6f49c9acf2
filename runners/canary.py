"""The canary: a short fixed workload, timed in each runtime's own library, that tells drift
from difference.

A worker times its canary before a cell's first round and after its last.  The workload never
changes (a chain of 256×256 fp32 matrix products: same FLOPs, same kernels, same threads), so
when its time moves by more than :data:`DRIFT_THRESHOLD` between the two, the machine changed
speed while the cell was measured (other load, a throttling CPU, a power plan) and the cell is
flagged ``drift``.  Each runtime runs its own canary (PyTorch through ``torch.matmul``, ONNX
Runtime through a one-node-chain session, OpenVINO, ExecuTorch and LiteRT through their own compiled chain) because the libraries use different kernels and
thread pools, and a drift in one need not show in the other.

The threshold: ``benchmarks/canary_noise.py`` (→ ``docs/benchmarks/canary-noise.md``) measures how
far two canary readings move on an otherwise idle machine.  On this project's 2-vCPU VM (load
average < 1.5), two readings back to back moved by a median 2.3-2.7%, p99 13%, at most 16% (1 of
200 pairs above 15%): that is the canary's own noise, and 15% sits just above its tail, so a flag
is not the canary's noise.  The same VM's speed moved far more between readings 0.2-3 s apart
(median 7-17%, p95 47-55%) while nothing else ran: the machine itself drifts at the scale of a
cell, which is what the flag reports and what the interleaved order is there to cancel.  The
scheduler lets the other runtime's worker go quiet before each canary reading as before each round
(an idle thread pool still spinning made readings 3× slower: ``bench/schedule.py``).
"""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

MATRIX_N = 256
CHAIN = 8  # matrix products per canary call: about 1-2 ms on a 2-core x86 VM
REPS = 5  # canary calls per reading; the reading is their median
DRIFT_THRESHOLD = 0.15  # |after / before - 1| above this flags the cell `drift`
# LiteRT's and ExecuTorch's canaries are artifacts like their models' (a board without LiteRT's
# converter uses the one ``make export RUNTIMES=litert`` made; ExecuTorch's lowering is paid once
# per machine): the manifest names them by this model name and shape
CANARY_MODEL = "canary"
CANARY_SHAPE = (MATRIX_N, MATRIX_N)
SHIPPED_CANARIES = ("litert", "executorch")  # the runtimes whose canary make export makes (fleet/artifacts.py ships it)


def torch_canary(threads: int | None, device: str = "cpu") -> Callable[[], None]:
    """A chain of matrix products in PyTorch (its own thread pool and BLAS)."""
    import torch  # deferred: heavy, and the parent process never needs it for the canary

    if threads:
        torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(MATRIX_N, MATRIX_N, generator=gen).to(device)
    b = (torch.randn(MATRIX_N, MATRIX_N, generator=gen) / MATRIX_N ** 0.5).to(device)
    cuda = device.startswith("cuda")

    def call() -> None:
        with torch.inference_mode():
            x = a
            for _ in range(CHAIN):
                x = x @ b
            if cuda:
                torch.cuda.synchronize()
    return call


def onnx_canary_model() -> bytes:
    """The same chain as an ONNX graph (built here: no file to ship or to go stale)."""
    from onnx import TensorProto, helper, numpy_helper  # deferred: only the ONNX Runtime worker builds this

    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((MATRIX_N, MATRIX_N)) / MATRIX_N ** 0.5).astype(np.float32)
    nodes, previous = [], "x"
    for i in range(CHAIN):
        out = f"y{i}"
        nodes.append(helper.make_node("MatMul", [previous, "w"], [out]))
        previous = out
    graph = helper.make_graph(
        nodes, "canary", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [MATRIX_N, MATRIX_N])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [MATRIX_N, MATRIX_N])],
        initializer=[numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def ort_canary(threads: int | None, provider: str = "CPUExecutionProvider") -> Callable[[], None]:
    """The chain in an ONNX Runtime session with the worker's thread count and provider."""
    import onnxruntime as ort  # deferred: heavy

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    session = ort.InferenceSession(onnx_canary_model(), sess_options=options, providers=providers)
    x = np.random.default_rng(1).standard_normal((MATRIX_N, MATRIX_N)).astype(np.float32)

    def call() -> None:
        session.run(None, {"x": x})
    return call


def openvino_canary(threads: int | None, device: str = "CPU") -> Callable[[], None]:
    """The chain compiled by OpenVINO (its own thread pool and kernels), fp32 as its cells."""
    import openvino as ov  # deferred: optional, only the OpenVINO worker builds this

    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    core = ov.Core()
    compiled = core.compile_model(core.read_model(io.BytesIO(onnx_canary_model())), device, config)
    request = compiled.create_infer_request()
    x = np.random.default_rng(1).standard_normal((MATRIX_N, MATRIX_N)).astype(np.float32)

    def call() -> None:
        request.infer({0: x}, share_inputs=True, share_outputs=True)
    return call


def executorch_canary(threads: int | None, artifact_dir: str | Path | None = None,
                      manifest_dir: str | Path | None = None) -> Callable[[], None]:
    """The chain as an ExecuTorch program lowered to XNNPACK (its own kernels and thread pool), fp32
    as its cells; the pool's threads are the worker's (set when its runtime was loaded).  The
    program is obtained as the cells' are (runners/runtimes/artifacts.py): from ``artifact_dir``'s
    cache, from ``manifest_dir`` (``make export RUNTIMES=executorch`` makes it, ``make fleet`` ships
    it) or lowered here and cached — once per machine rather than about 8 s in every worker."""
    from runners.runtimes.executorch import ExecuTorchRuntime  # deferred: optional, only its worker builds this

    runtime = ExecuTorchRuntime(canary_module, threads, artifact_dir=artifact_dir, model=CANARY_MODEL,
                                manifest_dir=manifest_dir)
    runtime.load()
    method, inputs, keep = runtime.prepare(np.random.default_rng(1).standard_normal(CANARY_SHAPE).astype(np.float32))

    def call() -> None:
        method.execute(inputs)
    call.runtime = runtime  # type: ignore[attr-defined]  # says where the program came from
    call.keep = keep  # type: ignore[attr-defined]  # the program and the bytes it points into live as long as the call
    return call


def canary_module() -> Any:
    """The chain as a PyTorch module (fixed seeded weights), for the runtimes that convert it."""
    import torch  # deferred: heavy, and the parent process never needs it for the canary

    rng = np.random.default_rng(0)
    weight = torch.from_numpy((rng.standard_normal((MATRIX_N, MATRIX_N)) / MATRIX_N ** 0.5).astype(np.float32))

    class Chain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(weight, requires_grad=False)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
            for _ in range(CHAIN):
                x = x @ self.w
            return (x,)  # a tuple of outputs, as the models return (the conversion's check reads them so)

    return Chain().eval()


def litert_canary(threads: int | None, artifact_dir: str | Path | None = None,
                  manifest_dir: str | Path | None = None) -> Callable[[], None]:
    """The chain as a ``.tflite`` model run by LiteRT's interpreter (its default XNNPACK delegate and
    thread pool, the worker's threads), fp32 as its cells.  The model is obtained as the cells' are
    (runners/runtimes/artifacts.py): from ``artifact_dir``'s cache, from ``manifest_dir`` (``make
    export RUNTIMES=litert`` makes it beside the models' shapes, ``make fleet`` ships it), or
    converted here — so a board without the converter (Linux aarch64) has a canary too; with none
    of them, the UnsupportedError's reason becomes the cells' (drift ``null``)."""
    from runners.runtimes.litert import LiteRTRuntime  # deferred: optional, only the LiteRT worker builds this

    runtime = LiteRTRuntime(canary_module, threads, artifact_dir=artifact_dir, model=CANARY_MODEL,
                            manifest_dir=manifest_dir)
    runtime.load()
    interpreter = runtime.interpreter(CANARY_SHAPE)
    x = np.random.default_rng(1).standard_normal(CANARY_SHAPE).astype(np.float32)
    index = interpreter.get_input_details()[0]["index"]
    output = interpreter.get_output_details()[0]["index"]

    def call() -> None:
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        interpreter.get_tensor(output)
    call.runtime = runtime  # type: ignore[attr-defined]  # keeps the model's bytes and says where it came from
    return call


def make_canary(runtime: str, threads: int | None, provider: str, artifact_dir: str | Path | None = None,
                manifest_dir: str | Path | None = None) -> Callable[[], None]:
    """The canary of ``runtime``'s worker; ``artifact_dir`` and ``manifest_dir`` are the worker's
    (LiteRT's and ExecuTorch's canaries are obtained like their models)."""
    if runtime == "pytorch":
        return torch_canary(threads, "cuda" if provider.startswith("cuda") else "cpu")
    if runtime == "openvino":
        return openvino_canary(threads, provider)
    if runtime == "executorch":
        return executorch_canary(threads, artifact_dir, manifest_dir)
    if runtime == "litert":
        return litert_canary(threads, artifact_dir, manifest_dir)
    return ort_canary(threads, provider if provider != "TensorrtExecutionProvider" else "CUDAExecutionProvider")


def read_canary(call: Callable[[], Any], reps: int = REPS,
                clock: Callable[[], int] = time.perf_counter_ns) -> float:
    """One reading: the median seconds of ``reps`` calls after one untimed call."""
    call()
    times = []
    for _ in range(reps):
        start = clock()
        call()
        times.append((clock() - start) / 1e9)
    return float(statistics.median(times))


def canary_change(before: float | None, after: float | None) -> float | None:
    """after / before - 1: +0.30 means the canary took 30% longer after the cell."""
    if not before or after is None:
        return None
    return after / before - 1.0


def is_drift(before: float | None, after: float | None, threshold: float = DRIFT_THRESHOLD) -> bool | None:
    """True when the canary moved by more than ``threshold`` (either way); None when unknown."""
    change = canary_change(before, after)
    if change is None:
        return None
    return abs(change) > threshold
