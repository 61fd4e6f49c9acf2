"""LiteRT (formerly TensorFlow Lite) on the CPU: a ``.tflite`` model converted per input shape from
the same PyTorch module the PyTorch runner measures, run by LiteRT's interpreter with its default
XNNPACK delegate.

The artifact step (``litert_torch.convert(module, (sample,))``, torch.export-based) runs in the
worker, outside every timed call, when a cell's input shape is first prepared.  A ``.tflite`` has
fixed shapes, so each (batch, samples) gets its own model; each is run on its own input beside the
PyTorch module (max abs error and cosine, the thresholds of the ONNX export's check: refused when
off) and cached under ``artifact_dir`` (``results/onnx/litert/``) with a JSON sidecar.  The cache
key is the model's architecture and weights (a hash of its ``repr`` and its state dict), the input
shape, and the torch, converter (``litert-torch``) and runtime (``ai-edge-litert``) versions: a
later run with the same key loads the file instead of converting again.  The conversion time is
recorded apart (``extra.runtime_export_s``, ``null`` when loaded from the cache), never in a latency.

The runtime (``ai-edge-litert``) installs on Linux aarch64, the converter does not (its
``litert-converter`` has no Linux aarch64 wheel).  Models converted on another machine (``make
export RUNTIMES=litert DEVICE=rpi`` on an x86-64 laptop, shipped by ``make fleet``) are used from
their manifest (``manifest_dir``) when the model hash, shape, recipe and ai-edge-litert release
match and the file's checksum verifies (``runners/runtimes/artifacts.py``, as for ExecuTorch;
``extra.runtime_artifact`` says where the model came from); where the converter is missing and no
such file matches, the cell is refused saying how to make one.

What it cannot take is ``unsupported`` with the reason, and the run goes on:

- an RNN (GRU/LSTM) is unrolled into one set of nodes per frame and its interpreter's memory grows
  with the input (docs/runtimes.md), so an RNN above :data:`MAX_RNN_SAMPLES` input samples is not
  converted during ``make bench`` (a cached or shipped model is still used; ``make export`` lists
  it as unsupported with the same reason, and tries it only with ``LONG_RNN=1``, within its time limit);
- a conversion that fails, with the converter's own words; one that outlasts
  ``export_timeout_s`` is stopped (and so is every larger shape of the same model in this worker);
- a model that disagrees with PyTorch, or that LiteRT cannot load;
- a variant other than fp32 (no quantization recipe here).

The timed call is ``set_tensor`` → ``invoke`` → ``get_tensor`` of every output, on an interpreter
made (``num_threads`` = the cell's threads) and allocated once per shape.  Recorded in every cell
(``extra.runtime_*``): the runtime and converter versions, the delegate (``XNNPACK``, LiteRT's
default on the CPU; its partitions and the ops it left, read from the interpreter), fp32, the threads passed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from runners.memory import return_freed_memory
from runners.runtimes import artifacts
from runners.runtimes.base import UnsupportedError
from runners.runtimes.executorch import (
    MAX_REL_ERR,
    MIN_COSINE,
    Deadline,
    ExportTimeout,
    has_rnn,
    reason_of,
    time_limit,
)

DELEGATE = "XNNPACK"
PRECISION = "fp32"
RECIPE = "litert_torch.convert(module, (sample,)) -> .tflite, fp32, default XNNPACK delegate, v1"
# an RNN is unrolled frame by frame, and XNNPACK packs the recurrent weights once per unrolled step:
# full-size APC (GRU 3 x 512) at 1 s (~100 frames) took 69-162 s to convert and its interpreter 0.9 GB
# (~9 MB per frame), so above 1 s of input (16000 samples) an RNN is refused before converting
# (docs/runtimes.md)
MAX_RNN_SAMPLES = 16000
EXPORT_TIMEOUT_S = 480.0  # a conversion that takes longer is stopped: unsupported (under the 900 s cell timeout)
CONVERTER_MODULE = "litert_torch"


def _version(distribution: str) -> str | None:
    try:
        from importlib.metadata import version  # deferred: only the LiteRT worker asks

        return version(distribution)
    except Exception:  # not installed
        return None


def litert_version() -> str | None:
    """The installed ``ai-edge-litert`` (the runtime), or None."""
    return _version("ai-edge-litert")


def converter_version() -> str | None:
    """The installed ``litert-torch`` (the converter), or None."""
    return _version("litert-torch")


def has_converter() -> bool:
    return importlib.util.find_spec(CONVERTER_MODULE) is not None


def converter_gap(machine: str | None = None, system: str | None = None) -> str:
    """Why the converter is missing here, for the refusal's words."""
    machine, system = machine or platform.machine(), system or platform.system()
    if system == "Linux" and machine in ("aarch64", "arm64"):
        return "litert-converter, which litert-torch needs, publishes no Linux aarch64 wheel: only the runtime installs here"
    return "make setup-runtimes RUNTIMES=litert installs it on x86-64 Linux and macOS"


def convert(module: Any, example: Any) -> bytes:
    """The ``.tflite`` bytes of ``module`` at ``example``'s shape (litert-torch, torch.export-based)."""
    # deferred: the converter is optional and heavy (it imports jax); only a conversion needs it
    import litert_torch

    edge = litert_torch.convert(module, (example,))
    return bytes(edge.model_content())


def output_order(interpreter: Any) -> list[int]:
    """The output tensors' indices in the PyTorch module's order.  litert-torch names a returned
    tuple's items ``output_0``, ``output_1``, … in its signature; the interpreter's own output list
    need not follow that order."""
    details = interpreter.get_output_details()
    try:
        signatures = interpreter._get_full_signature_list()
        outputs = dict(next(iter(signatures.values()))["outputs"])
    except Exception:  # no signature: the interpreter's order
        return [int(d["index"]) for d in details]
    names = sorted(outputs, key=lambda n: (int(n.rsplit("_", 1)[1]) if n.rsplit("_", 1)[-1].isdigit() else 1 << 30, n))
    if len(names) != len(details):
        return [int(d["index"]) for d in details]
    return [int(outputs[n]) for n in names]


def delegation(interpreter: Any) -> tuple[int, list[str]]:
    """(delegate partitions, op names left to LiteRT's own kernels), read from an allocated
    interpreter.  Its node list keeps every node of the graph and adds one ``DELEGATE`` node per
    partition the delegate took (inputs: the tensors entering it; outputs: those leaving it): a node
    is delegated when it is reached walking back from a partition's outputs without crossing its inputs."""
    try:
        ops = interpreter._get_ops_details()
    except Exception:  # an interpreter without the (private) node listing
        return -1, []
    graph = [op for op in ops if op.get("op_name") != "DELEGATE"]
    partitions = [op for op in ops if op.get("op_name") == "DELEGATE"]
    producer = {int(t): i for i, op in enumerate(graph) for t in op.get("outputs", ())}
    inside: set[int] = set()
    for partition in partitions:
        entering = {int(t) for t in partition.get("inputs", ())}
        stack = [int(t) for t in partition.get("outputs", ())]
        while stack:
            tensor = stack.pop()
            if tensor in entering or tensor not in producer or producer[tensor] in inside:
                continue
            inside.add(producer[tensor])
            stack.extend(int(t) for t in graph[producer[tensor]].get("inputs", ()))
    return len(partitions), sorted({str(op.get("op_name")) for i, op in enumerate(graph) if i not in inside})


class LiteRTRuntime:
    name = "litert"

    def __init__(self, build: Callable[[], Any], threads: int | None, variant: str = "fp32",
                 artifact_dir: str | Path | None = None, model: str = "model",
                 export_timeout_s: float | None = EXPORT_TIMEOUT_S, max_rnn_samples: int = MAX_RNN_SAMPLES,
                 manifest_dir: str | Path | None = None) -> None:
        self.build, self.threads, self.variant = build, threads, variant
        self.artifact_dir = Path(artifact_dir) if artifact_dir else None
        self.manifest_dir = Path(manifest_dir) if manifest_dir else None  # models converted elsewhere (make export)
        self.model, self.export_timeout_s, self.max_rnn_samples = model, export_timeout_s, max_rnn_samples
        self.provider = DELEGATE
        self.io = "host arrays, copied in by set_tensor and out by get_tensor inside the timed call"
        self.load_time_s: float | None = None
        self.facts: dict[str, Any] = {}
        self.module: Any = None
        self.digest = ""
        self.weights_digest = ""
        self.rnn: str | None = None
        self.converter = False
        self.timed_out: tuple[int, int] | None = None  # the smallest shape whose conversion timed out
        self._interpreter_class: Any = None
        self._shape: tuple[int, int] | None = None
        self._interpreter: Any = None
        self._source: Any = None

    def load(self) -> None:
        if self.variant != "fp32":
            raise UnsupportedError(f"LiteRT runs the fp32 model converted from PyTorch here ({DELEGATE} delegate); "
                                   f"the {self.variant} variant is a PyTorch and ONNX Runtime recipe")
        try:
            # deferred: ai-edge-litert is optional (make setup-runtimes RUNTIMES=litert)
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise UnsupportedError(f"ai-edge-litert is not installed ({exc}); "
                                   "make setup-runtimes RUNTIMES=litert") from None
        start = time.perf_counter()
        self._interpreter_class = Interpreter
        self.module = self.build().eval()
        self.rnn = has_rnn(self.module)
        self.digest, self.weights_digest = artifacts.module_digests(self.module)
        self.converter = has_converter()
        self.load_time_s = time.perf_counter() - start
        self.facts = {"runtime_version": litert_version(), "runtime_delegate": DELEGATE,
                      "runtime_precision": PRECISION, "runtime_threads": self.threads,
                      "runtime_converter": f"litert-torch {converter_version()}" if self.converter else None}

    # --- the artifact, per input shape -------------------------------------------------------
    def artifact_key(self, shape: tuple[int, int]) -> artifacts.ArtifactKey:
        """What the model for ``shape`` is made from and for (runners/runtimes/artifacts.py): the
        ai-edge-litert release loads it (must match where it is used); torch and litert-torch make it."""
        import torch  # deferred: heavy

        return artifacts.ArtifactKey(
            runtime=self.name, model=self.model, module_sha256=self.digest, weights_sha256=self.weights_digest,
            input_shape=(int(shape[0]), int(shape[1])), recipe=RECIPE, suffix=".tflite",
            runtime_versions={"ai-edge-litert": litert_version()},
            exporter_versions={"torch": torch.__version__, "litert-torch": converter_version()})

    def key(self, shape: tuple[int, int]) -> dict[str, Any]:
        """The cache's key for ``shape`` (its sidecar's ``key``)."""
        return self.artifact_key(shape).cache_dict()

    def artifact_path(self, shape: tuple[int, int]) -> Path | None:
        if self.artifact_dir is None:
            return None
        return artifacts.cache_path(self.artifact_dir, self.artifact_key(shape))

    def cached(self, shape: tuple[int, int]) -> dict[str, Any] | None:
        """The sidecar of a cached model for ``shape`` whose key and checksum still match."""
        return artifacts.read_cached(self.artifact_dir, self.artifact_key(shape))

    def refusal(self, shape: tuple[int, int]) -> str | None:
        """Why ``shape`` is not converted during a benchmark (no converter here, an RNN over a long
        input, a shape past a timed-out one): a cached or shipped model is still used."""
        if not self.converter:
            return self.no_converter(shape)
        if self.rnn and shape[1] > self.max_rnn_samples:
            return (f"LiteRT's converter unrolls the {self.rnn} frame by frame: an input of {shape[1]} samples is "
                    f"above the {self.max_rnn_samples}-sample limit set for RNNs (conversion time and the "
                    f"interpreter's memory grow with every frame: ~9 MB per frame for full-size APC; "
                    f"docs/runtimes.md; make export RUNTIMES=litert can make it on another machine)")
        return self.after_timeout(shape)

    def after_timeout(self, shape: tuple[int, int]) -> str | None:
        """Why ``shape`` is not tried at all: as large or larger than a shape whose conversion timed out."""
        if self.timed_out and shape[0] >= self.timed_out[0] and shape[1] >= self.timed_out[1]:
            return (f"the LiteRT conversion of input {self.timed_out[0]}x{self.timed_out[1]} took longer than "
                    f"{self.export_timeout_s:g} s and was stopped; this input is as large or larger")
        return None

    def no_converter(self, shape: tuple[int, int]) -> str:
        return (f"the LiteRT converter (litert-torch) is not installed on this machine ({converter_gap()}); "
                f"make the .tflite for input {shape[0]}x{shape[1]} on a machine that has it with make export "
                f"RUNTIMES=litert DEVICE=<this board's profile> and the run's MODELS, TINY, WEIGHTS, BATCH_SIZES "
                f"and DURATIONS, then ship its ARTIFACTS_DIR here (make fleet does)")

    def export(self, shape: tuple[int, int]) -> tuple[bytes, dict[str, Any]]:
        """Convert and check the model for ``shape``; UnsupportedError when it cannot be.  No size
        limit for RNNs here (``make export`` calls this directly): only the time limit."""
        import torch  # deferred: heavy (the parent imports this module)

        from export.onnx_export import compare_outputs  # deferred: it imports torch

        if not self.converter:
            raise UnsupportedError(self.no_converter(shape))
        why = self.after_timeout(shape)
        if why:
            raise UnsupportedError(why)
        example = torch.from_numpy(probe(shape))
        start = time.perf_counter()
        deadline = Deadline(self.export_timeout_s)
        try:
            try:
                with time_limit(self.export_timeout_s) as deadline:
                    data = convert(self.module, example)
            except Exception:
                if deadline.fired:  # a library's clean-up replaced the alarm with an error of its own
                    raise ExportTimeout(deadline.message) from None
                raise
            if deadline.fired:  # the alarm was swallowed on the way: what came out is not to be trusted
                raise ExportTimeout(deadline.message)
        except ExportTimeout:
            self.timed_out = shape if self.timed_out is None else min(self.timed_out, shape)
            raise UnsupportedError(f"LiteRT could not convert input {shape[0]}x{shape[1]}: "
                                   f"{deadline.message.replace('export', 'conversion')}") from None
        except MemoryError as exc:
            raise UnsupportedError(f"LiteRT ran out of memory converting input {shape[0]}x{shape[1]}: {exc}") from None
        except Exception as exc:  # what torch.export or the converter cannot take
            raise UnsupportedError(f"litert-torch {converter_version()} could not convert input "
                                   f"{shape[0]}x{shape[1]}: {reason_of(exc)}") from None
        export_s = time.perf_counter() - start
        try:
            interpreter = self._interpreter_class(model_content=data, num_threads=self.threads or None)
            interpreter.allocate_tensors()
            got = run_once(interpreter, example.numpy())
        except Exception as exc:
            raise UnsupportedError(f"LiteRT {litert_version()} could not run the model converted for input "
                                   f"{shape[0]}x{shape[1]}: {reason_of(exc)}") from None
        del interpreter  # before ``data`` can go
        with torch.inference_mode():
            ref = [o.numpy() for o in self.module(example)]
        try:
            err, cosine = compare_outputs(ref, got)
        except Exception as exc:  # an output count or shape that differs
            raise UnsupportedError(f"the LiteRT model for input {shape[0]}x{shape[1]} disagrees with PyTorch: "
                                   f"{exc}") from None
        scale = max(1.0, max(float(np.max(np.abs(r))) for r in ref))
        if not (cosine >= MIN_COSINE and err <= MAX_REL_ERR * scale):
            raise UnsupportedError(f"the LiteRT model for input {shape[0]}x{shape[1]} disagrees with PyTorch: "
                                   f"max abs err {err:.3g}, cosine {cosine:.6f} (needed: cosine >= {MIN_COSINE}, "
                                   f"max abs err <= {MAX_REL_ERR * scale:.3g})")
        meta = {"key": self.key(shape), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                "export_s": export_s, "check": {"max_abs_err": err, "cosine": cosine},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        return data, meta

    def interpreter(self, shape: tuple[int, int]) -> Any:
        """The allocated interpreter for ``shape``: its model from this machine's cache, from a
        manifest of models converted elsewhere, or converted now (runners/runtimes/artifacts.py
        decides, and says which)."""
        if self._shape == shape and self._interpreter is not None:
            return self._interpreter
        self._interpreter = self._source = None  # one model at a time: its weights are the cell's memory
        got = artifacts.obtain(self.artifact_key(shape), convert=lambda: self.export(shape),
                               cache_dir=self.artifact_dir, manifest_dir=self.manifest_dir,
                               cannot_convert=self.refusal(shape))
        if got.exported_here:
            return_freed_memory()  # what the conversion freed goes back before the cell's memory is read
        meta, source = got.meta, got.source
        start = time.perf_counter()
        try:
            if isinstance(source, Path):
                interpreter = self._interpreter_class(model_path=str(source), num_threads=self.threads or None)
            else:  # no cache folder: the bytes, kept alive as long as the interpreter
                interpreter = self._interpreter_class(model_content=source, num_threads=self.threads or None)
            interpreter.allocate_tensors()
        except Exception as exc:  # a file LiteRT cannot load
            raise UnsupportedError(f"LiteRT {litert_version()} could not load the model for input "
                                   f"{shape[0]}x{shape[1]} ({got.provenance}): {reason_of(exc)}") from None
        delegated, left = delegation(interpreter)
        self._source, self._interpreter, self._shape = source, interpreter, shape
        shipped = not got.exported_here and meta.get("exporter_versions") is not None
        self.facts.update({
            "runtime_artifact": got.provenance,  # exported here | from cache | from manifest (made on <host>)
            "runtime_artifact_file": got.file_name,
            "runtime_artifact_refused": "; ".join(got.refused) or None,
            "runtime_artifact_made_with": meta.get("exporter_versions") if shipped else None,
            "runtime_loaded_from_cache": not got.exported_here,
            "runtime_export_s": meta["export_s"] if got.exported_here else None,
            "runtime_program_load_s": time.perf_counter() - start,
            "runtime_artifact_bytes": meta.get("bytes"),
            "runtime_artifact_check": meta.get("check"),
            "runtime_delegate": None if delegated == 0 else DELEGATE,  # 0 partitions: LiteRT's own kernels ran it all
            "runtime_delegate_partitions": delegated,
            "runtime_undelegated_ops": left if delegated >= 0 else None,
        })
        return interpreter

    # --- the Runtime protocol -----------------------------------------------------------------
    def prepare(self, wav: np.ndarray) -> Any:
        x = np.ascontiguousarray(wav, dtype=np.float32)
        interpreter = self.interpreter((int(x.shape[0]), int(x.shape[1])))
        [detail] = interpreter.get_input_details()
        if tuple(int(d) for d in detail["shape"]) != x.shape:
            raise RuntimeError(f"the LiteRT model takes {tuple(detail['shape'])}, the input is {x.shape}")
        # the interpreter and the bytes or file it was made from travel with the input
        return interpreter, int(detail["index"]), output_order(interpreter), x, self._source

    def make_call(self, prepared: Any) -> Callable[[], Any]:
        interpreter, index, outputs, x, keep = prepared
        set_tensor, invoke, get_tensor = interpreter.set_tensor, interpreter.invoke, interpreter.get_tensor

        def call() -> Any:
            assert keep is not None
            set_tensor(index, x)
            invoke()
            return [get_tensor(i) for i in outputs]
        return call

    def sync(self) -> None:
        return None  # invoke() returns when the model has run

    def outputs_numpy(self, outputs: Any) -> list[np.ndarray]:
        return [np.array(o, dtype=np.float32, copy=True) for o in outputs]

    def batch_of(self, prepared: Any) -> int:
        return int(prepared[3].shape[0])

    def reset_device_peak(self) -> int | None:
        return None  # CPU only: the worker reports host RSS

    def device_peak_over(self, baseline: int | None) -> int | None:
        return None

    def close(self) -> None:
        self._interpreter = self._source = None
        self.module = None


def run_once(interpreter: Any, x: np.ndarray) -> list[np.ndarray]:
    """One call of an allocated interpreter, outputs in the PyTorch module's order."""
    [detail] = interpreter.get_input_details()
    interpreter.set_tensor(int(detail["index"]), np.ascontiguousarray(x, dtype=np.float32))
    interpreter.invoke()
    return [np.array(interpreter.get_tensor(i), dtype=np.float32) for i in output_order(interpreter)]


def probe(shape: tuple[int, int]) -> np.ndarray:
    """The example input a conversion traces and checks with (the shape is what matters)."""
    from runners.audio import synthetic_batch  # deferred: only a conversion needs it

    return synthetic_batch(shape[0], shape[1], seed=7)
