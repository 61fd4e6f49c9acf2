"""ExecuTorch with the XNNPACK delegate: a ``.pte`` program exported per input shape from the same
PyTorch module the PyTorch runner measures.

The artifact step (``torch.export.export`` → ``to_edge_transform_and_lower(XnnpackPartitioner)`` →
``to_executorch``) runs in the worker, outside every timed call, when a cell's input shape is first
prepared.  A ``.pte`` has fixed shapes, so each (batch, samples) gets its own program; each is
checked against PyTorch on its own input (max abs error and cosine, the thresholds of the ONNX
export's check: refused when off) and cached under ``artifact_dir`` (``results/onnx/executorch/``)
with a JSON sidecar.  The cache key is the model's architecture and weights (a hash of its
``repr`` and its state dict), the input shape, and the torch and ExecuTorch versions: a later run
with the same key loads the file instead of exporting again.  Programs exported on another machine
(``make export RUNTIMES=executorch`` on a laptop, shipped by ``make fleet``) are used from their
manifest (``manifest_dir``) when the model hash, shape, recipe and ExecuTorch release match and the
file's checksum verifies (``runners/runtimes/artifacts.py``; ``extra.runtime_artifact`` says where
the program came from).  The export time is recorded apart (``extra.runtime_export_s``, ``null``
when the program was not exported here), never in a latency.

What cannot be exported or lowered is ``unsupported`` with ExecuTorch's own words (the cell's
reason), and the run goes on:

- an RNN (GRU/LSTM) is unrolled into one node per frame: its export time grows with the input
  (tiny APC at 1 s did not finish in minutes), so an RNN above :data:`MAX_RNN_SAMPLES` input
  samples is not exported during ``make bench`` (a cached or shipped program is still used;
  ``make export`` lists it as unsupported with the same reason, and tries it only with
  ``LONG_RNN=1``, within its time limit);
- an export that outlasts ``export_timeout_s`` is stopped and refused (and so is every larger
  shape of the same model in this worker);
- a fidelity check that fails refuses the artifact.

Settings, recorded in every cell (``extra.runtime_*``): fp32 only (no quantizer: XNNPACK runs the
fp32 graph); threads by ``_unsafe_reset_threadpool(n)`` before any program is loaded — the pool is
process-wide, which one worker process per runtime configuration makes safe.  The log-mel front
ends register their DFT and mel matrices as non-persistent buffers, which ``to_edge`` refuses
(``SpecViolationError: Non-persistent buffer ... is in the state dict``): this runner's own copy
of the module makes them persistent before export (their values do not change).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from export.fidelity import MAX_REL_ERR, MIN_COSINE
from runners.memory import return_freed_memory
from runners.runtimes import artifacts
from runners.runtimes.base import UnsupportedError

DELEGATE = "XNNPACK"
PRECISION = "fp32"
RECIPE = "torch.export -> to_edge_transform_and_lower(XnnpackPartitioner) -> to_executorch, fp32, v1"
# an RNN is unrolled frame by frame: above this many input samples (0.25 s at 16 kHz) its export
# takes minutes and GBs (docs/runtimes.md), so it is refused before trying
MAX_RNN_SAMPLES = 4000
EXPORT_TIMEOUT_S = 480.0  # an export that takes longer is stopped: unsupported (under the 900 s cell timeout)


class ExportTimeout(BaseException):  # not swallowed by a library's broad `except Exception`
    pass


def executorch_version() -> str | None:
    try:
        from executorch import version  # deferred: optional

        return str(version.__version__)
    except Exception:  # an install without the version module
        return None


def make_persistent(module: Any) -> int:
    """Make every non-persistent buffer persistent (``to_edge`` refuses them); how many there were."""
    count = 0
    for sub in module.modules():
        count += len(sub._non_persistent_buffers_set)
        sub._non_persistent_buffers_set.clear()
    return count


def module_digest(module: Any) -> str:
    """The module's architecture-and-weights hash (``artifacts.module_digests``' first; kept for
    the runtimes that import it from here)."""
    return artifacts.module_digests(module)[0]


def has_rnn(module: Any) -> str | None:
    """The class name of the first RNN (GRU, LSTM, RNN) in ``module``, or None."""
    import torch  # deferred: heavy

    for sub in module.modules():
        if isinstance(sub, torch.nn.RNNBase):
            return type(sub).__name__
    return None


class Deadline:
    """Whether a :func:`time_limit` expired.  The alarm raises :class:`ExportTimeout` inside
    torch.export, whose clean-up on the way out can raise an error of its own in its place
    ("Trying to pop empty mode stack"): the flag, not the exception that arrives, says it timed out."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds, self.fired = seconds, False

    @property
    def message(self) -> str:
        return f"the export took longer than {self.seconds:g} s and was stopped"


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[Deadline]:
    """Raise :class:`ExportTimeout` in this (main) thread after ``seconds`` (a no-op elsewhere)."""
    deadline = Deadline(seconds)
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield deadline
        return

    def expire(signum: int, frame: Any) -> None:
        deadline.fired = True
        raise ExportTimeout(deadline.message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield deadline
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def reason_of(exc: BaseException) -> str:
    """An exception's own words, on one line (long traces cut to their first 600 characters)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text[:600]}{'…' if len(text) > 600 else ''}"


def lower(module: Any, example: Any) -> tuple[bytes, list[str]]:
    """The ``.pte`` bytes of ``module`` at ``example``'s shape, and the ops XNNPACK did not take."""
    # deferred: torch is heavy and executorch optional (make setup-runtimes RUNTIMES=executorch)
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(module, (example,))
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    left = sorted({op_name(node.target) for node in edge.exported_program().graph_module.graph.nodes
                   if node.op == "call_function" and "executorch_call_delegate" not in str(node.target)
                   and "getitem" not in str(node.target)})
    return edge.to_executorch().buffer, left


def op_name(target: Any) -> str:
    """``aten.lt.Scalar`` for an edge op (whose ``str`` is ``<EdgeOpOverload: ...>: schema = aten::lt.Scalar(...)``)."""
    text = str(target)
    found = re.search(r"schema = (\w+)::([\w.]+)\(", text)
    return f"{found.group(1)}.{found.group(2)}" if found else text


class ExecuTorchRuntime:
    name = "executorch"

    def __init__(self, build: Callable[[], Any], threads: int | None, variant: str = "fp32",
                 artifact_dir: str | Path | None = None, model: str = "model",
                 export_timeout_s: float | None = EXPORT_TIMEOUT_S, max_rnn_samples: int = MAX_RNN_SAMPLES,
                 manifest_dir: str | Path | None = None) -> None:
        self.build, self.threads, self.variant = build, threads, variant
        self.artifact_dir = Path(artifact_dir) if artifact_dir else None
        self.manifest_dir = Path(manifest_dir) if manifest_dir else None  # programs made elsewhere (make export)
        self.model, self.export_timeout_s, self.max_rnn_samples = model, export_timeout_s, max_rnn_samples
        self.provider = DELEGATE
        self.io = "torch CPU tensors, passed to Method.execute"
        self.load_time_s: float | None = None
        self.facts: dict[str, Any] = {}
        self.module: Any = None
        self.digest = ""
        self.weights_digest = ""
        self.rnn: str | None = None
        self.timed_out: tuple[int, int] | None = None  # the smallest shape whose export timed out
        self._runtime: Any = None
        self._shape: tuple[int, int] | None = None
        self._method: Any = None
        self._program: Any = None
        self._source: Any = None

    def load(self) -> None:
        if self.variant != "fp32":
            raise UnsupportedError(f"ExecuTorch runs the fp32 program with the {DELEGATE} delegate here; "
                                   f"the {self.variant} variant is a PyTorch and ONNX Runtime recipe")
        try:
            # deferred: executorch is optional (make setup-runtimes RUNTIMES=executorch)
            from executorch.extension.pybindings.portable_lib import (
                _threadpool_get_thread_count,
                _unsafe_reset_threadpool,
            )
            from executorch.runtime import Runtime  # deferred: optional, as above
        except ImportError as exc:
            raise UnsupportedError(f"executorch is not installed ({exc}); "
                                   "make setup-runtimes RUNTIMES=executorch") from None
        start = time.perf_counter()
        # process-wide and unsafe once programs exist (pytorch/executorch #17641): before any program
        # is loaded, and only when the size changes (a second runtime in one process: tests, tools)
        if self.threads and _threadpool_get_thread_count() != int(self.threads):
            _unsafe_reset_threadpool(int(self.threads))
        self._runtime = Runtime.get()
        self.module = self.build().eval()
        # the hash before the buffers are made persistent: a derived buffer (the log-mel filterbank,
        # the window) is computed on each machine and its last bits differ by CPU, so with it in the
        # state dict a board never matched the programs made on a laptop (docs/platforms.md)
        self.digest, self.weights_digest = artifacts.module_digests(self.module)
        make_persistent(self.module)
        self.rnn = has_rnn(self.module)
        self.load_time_s = time.perf_counter() - start
        self.facts = {"runtime_version": executorch_version(), "runtime_delegate": DELEGATE,
                      "runtime_precision": PRECISION, "runtime_threads": int(_threadpool_get_thread_count())}

    # --- the artifact, per input shape -------------------------------------------------------
    def artifact_key(self, shape: tuple[int, int]) -> artifacts.ArtifactKey:
        """What the program for ``shape`` is made from and for (runners/runtimes/artifacts.py): the
        ExecuTorch release loads it (must match where it is used); torch and ExecuTorch export it."""
        import torch  # deferred: heavy

        version = executorch_version()
        return artifacts.ArtifactKey(
            runtime=self.name, model=self.model, module_sha256=self.digest, weights_sha256=self.weights_digest,
            input_shape=(int(shape[0]), int(shape[1])), recipe=RECIPE, suffix=".pte",
            runtime_versions={"executorch": version},
            exporter_versions={"torch": torch.__version__, "executorch": version})

    def key(self, shape: tuple[int, int]) -> dict[str, Any]:
        """The cache's key for ``shape`` (its sidecar's ``key``)."""
        return self.artifact_key(shape).cache_dict()

    def artifact_path(self, shape: tuple[int, int]) -> Path | None:
        if self.artifact_dir is None:
            return None
        return artifacts.cache_path(self.artifact_dir, self.artifact_key(shape))

    def cached(self, shape: tuple[int, int]) -> dict[str, Any] | None:
        """The sidecar of a cached program for ``shape`` whose key and checksum still match."""
        return artifacts.read_cached(self.artifact_dir, self.artifact_key(shape))

    def refusal(self, shape: tuple[int, int]) -> str | None:
        """Why ``shape`` is not exported during a benchmark (an RNN over a long input, a shape past a
        timed-out one): a cached or shipped program is still used."""
        if self.rnn and shape[1] > self.max_rnn_samples:
            return (f"ExecuTorch unrolls the {self.rnn} frame by frame at export: an input of {shape[1]} samples is "
                    f"above the {self.max_rnn_samples}-sample limit set for RNNs (its export takes minutes and GBs; "
                    f"docs/runtimes.md; make export RUNTIMES=executorch can make it on another machine)")
        return self.after_timeout(shape)

    def after_timeout(self, shape: tuple[int, int]) -> str | None:
        """Why ``shape`` is not tried at all: as large or larger than a shape whose export timed out."""
        if self.timed_out and shape[0] >= self.timed_out[0] and shape[1] >= self.timed_out[1]:
            return (f"the ExecuTorch export of input {self.timed_out[0]}x{self.timed_out[1]} took longer than "
                    f"{self.export_timeout_s:g} s and was stopped; this input is as large or larger")
        return None

    def export(self, shape: tuple[int, int]) -> tuple[bytes, dict[str, Any]]:
        """Export, lower and check the program for ``shape``; UnsupportedError when it cannot be.
        No size limit for RNNs here (``make export`` asks :meth:`refusal` first, unless ``LONG_RNN=1``): only
        the time limit."""
        import torch  # deferred: heavy (the parent imports this module)

        from export.onnx_export import compare_outputs  # deferred: it imports torch

        why = self.after_timeout(shape)
        if why:
            raise UnsupportedError(why)
        example = torch.from_numpy(_probe(shape))
        start = time.perf_counter()
        deadline = Deadline(self.export_timeout_s)
        try:
            try:
                with time_limit(self.export_timeout_s) as deadline:
                    data, left = lower(self.module, example)
            except Exception:
                if deadline.fired:  # torch's clean-up replaced the alarm with an error of its own
                    raise ExportTimeout(deadline.message) from None
                raise
            if deadline.fired:  # the alarm was swallowed on the way: what came out is not to be trusted
                raise ExportTimeout(deadline.message)
        except ExportTimeout:
            self.timed_out = shape if self.timed_out is None else min(self.timed_out, shape)
            raise UnsupportedError(f"ExecuTorch ({DELEGATE}) could not export input {shape[0]}x{shape[1]}: "
                                   f"{deadline.message}") from None
        except MemoryError as exc:
            raise UnsupportedError(f"ExecuTorch ({DELEGATE}) ran out of memory exporting input "
                                   f"{shape[0]}x{shape[1]}: {exc}") from None
        except Exception as exc:  # what torch.export or the lowering cannot take
            raise UnsupportedError(f"ExecuTorch {executorch_version()} ({DELEGATE}) could not export input "
                                   f"{shape[0]}x{shape[1]}: {reason_of(exc)}") from None
        export_s = time.perf_counter() - start
        program = self._runtime.load_program(data)  # the program, and ``data``, outlive its method
        method = program.load_method("forward")
        got = [np.array(t.detach().numpy(), dtype=np.float32) for t in method.execute([example])]
        del method, program  # before ``data`` can go
        with torch.inference_mode():
            ref = [o.numpy() for o in self.module(example)]
        err, cosine = compare_outputs(ref, got)
        scale = max(1.0, max(float(np.max(np.abs(r))) for r in ref))
        if not (cosine >= MIN_COSINE and err <= MAX_REL_ERR * scale):
            raise UnsupportedError(f"the ExecuTorch program for input {shape[0]}x{shape[1]} disagrees with PyTorch: "
                                   f"max abs err {err:.3g}, cosine {cosine:.6f} (needed: cosine >= {MIN_COSINE}, "
                                   f"max abs err <= {MAX_REL_ERR * scale:.3g})")
        meta = {"key": self.key(shape), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                "export_s": export_s, "check": {"max_abs_err": err, "cosine": cosine},
                "undelegated_ops": left, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        return data, meta

    def program(self, shape: tuple[int, int]) -> Any:
        """The loaded ``forward`` method for ``shape``: from this machine's cache, from a manifest of
        programs made elsewhere, or exported now (runners/runtimes/artifacts.py decides, and says which)."""
        if self._shape == shape and self._method is not None:
            return self._method
        self._method = self._program = self._source = None  # one program at a time: its weights are the cell's memory
        got = artifacts.obtain(self.artifact_key(shape), convert=lambda: self.export(shape),
                               cache_dir=self.artifact_dir, manifest_dir=self.manifest_dir,
                               cannot_convert=self.refusal(shape))
        if got.exported_here:
            return_freed_memory()  # what the export freed goes back before the cell's memory is read
        meta = got.meta
        start = time.perf_counter()
        # the program, and the bytes it was loaded from, live as long as its method: a program
        # loaded from bytes points into them (freed bytes crashed the full-size models' calls)
        self._source = got.source
        self._program = self._runtime.load_program(self._source)
        self._method = self._program.load_method("forward")
        self._shape = shape
        self.facts.update({
            "runtime_artifact": got.provenance,  # exported here | from cache | from manifest (made on <host>)
            "runtime_artifact_file": got.file_name,
            "runtime_artifact_refused": "; ".join(got.refused) or None,
            "runtime_loaded_from_cache": not got.exported_here,
            "runtime_export_s": meta["export_s"] if got.exported_here else None,
            "runtime_program_load_s": time.perf_counter() - start,
            "runtime_artifact_bytes": meta.get("bytes"),
            "runtime_artifact_check": meta.get("check"),
            "runtime_undelegated_ops": meta.get("undelegated_ops"),
        })
        return self._method

    # --- the Runtime protocol -----------------------------------------------------------------
    def prepare(self, wav: np.ndarray) -> Any:
        import torch  # deferred: heavy

        x = np.ascontiguousarray(wav, dtype=np.float32)
        method = self.program((int(x.shape[0]), int(x.shape[1])))
        # the program and its bytes travel with the input: a call made from it stays valid
        return method, [torch.from_numpy(x)], (self._program, self._source)

    def make_call(self, prepared: Any) -> Callable[[], Any]:
        method, inputs, keep = prepared

        def call() -> Any:
            assert keep is not None
            return method.execute(inputs)
        return call

    def sync(self) -> None:
        return None  # execute() returns when the program has run

    def outputs_numpy(self, outputs: Any) -> list[np.ndarray]:
        return [np.array(t.detach().numpy(), dtype=np.float32, copy=True) for t in outputs]

    def batch_of(self, prepared: Any) -> int:
        return int(prepared[1][0].shape[0])

    def reset_device_peak(self) -> int | None:
        return None  # CPU only: the worker reports host RSS

    def device_peak_over(self, baseline: int | None) -> int | None:
        return None

    def close(self) -> None:
        self._method = self._program = self._source = None
        self.module = None


def _probe(shape: tuple[int, int]) -> np.ndarray:
    """The example input an export traces and checks with (the shape is what matters)."""
    from runners.audio import synthetic_batch  # deferred: only an export needs it

    return synthetic_batch(shape[0], shape[1], seed=7)
