"""Streaming models: one chunk and a recurrent state in, an output and the next state out.

The suite's contract for whole-clip models is ``(B, N) waveform -> (B, T, D) hidden states``.
A streaming model such as Silero VAD does not fit it without bending the model: it is called
once per fixed-size chunk (512 samples at 16 kHz = 32 ms) and carries a state between calls,
and its real use is that loop.  The streaming contract (docs/streaming.md):

* a :class:`StreamingRunner` has ``chunk_samples``, ``reset()`` (a fresh state, as at the start
  of an utterance) and ``step(chunk) -> float`` (one ``(1, chunk_samples)`` float32 chunk in,
  the model's output for it, the state kept inside the runner);
* **per-chunk latency**: ``step`` timed by the shared harness (``runners.harness``) on a fixed
  chunk, the state carried from call to call;
* **utterance in streaming order**: ``reset()`` then every chunk of the utterance in order (the
  last one zero-padded), each call timed; real-time factor = total time / audio duration;
* **fidelity** between runtimes: the two runtimes' outputs for the same utterance chunk by
  chunk (max and mean abs difference, and how often a 0.5 threshold decides the same).

Silero VAD ships the same trained network as TorchScript (``silero_vad.jit``, run by PyTorch)
and ONNX (``silero_vad.onnx``, run by ONNX Runtime) in its wheel; both are read from the
installed package, located without importing it (importing ``silero_vad`` sets
``torch.set_num_threads(1)`` for the whole process).  The ONNX file takes the 64 samples that
precede the chunk as context and the state explicitly, as Silero's own ``OnnxWrapper`` does;
the TorchScript module keeps both inside.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from runners.harness import Timing, TimingPolicy, time_callable

SAMPLE_RATE = 16_000
SILERO_CHUNK = 512
SILERO_CONTEXT = 64
SILERO_STATE_SHAPE = (2, 1, 128)
SILERO_PACKAGE = "silero-vad"
THRESHOLD = 0.5  # Silero's default speech threshold


class StreamingError(RuntimeError):
    """A streaming model or its package is unavailable (message: what to install)."""


@dataclass(frozen=True)
class PackagedFiles:
    package: str
    version: str
    license: str
    torchscript: Path
    onnx: Path
    onnx_fp16: Path | None


def silero_files() -> PackagedFiles:
    """The TorchScript and ONNX files shipped in the installed ``silero-vad`` wheel."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise StreamingError("silero-vad is not installed: pip install --no-deps silero-vad")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    jit, onnx, half = data / "silero_vad.jit", data / "silero_vad.onnx", data / "silero_vad_half.onnx"
    missing = [p.name for p in (jit, onnx) if not p.is_file()]
    if missing:
        raise StreamingError(f"the installed silero-vad lacks {', '.join(missing)}; reinstall it")
    meta = importlib.metadata.metadata(SILERO_PACKAGE)
    licence = ", ".join(c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::"))
    return PackagedFiles(SILERO_PACKAGE, meta["Version"], licence or str(meta.get("License")), jit, onnx,
                         half if half.is_file() else None)


class StreamingRunner(Protocol):
    chunk_samples: int

    def reset(self) -> None: ...

    def step(self, chunk: np.ndarray) -> float: ...


class TorchScriptSilero:
    """PyTorch: the shipped TorchScript module (state and context kept inside it)."""

    chunk_samples = SILERO_CHUNK

    def __init__(self, path: Path, threads: int | None = None) -> None:
        # deferred: torch is heavy and an ONNX-Runtime-only run never needs it
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.model = torch.jit.load(str(path), map_location="cpu").eval()
        self.reset()

    def reset(self) -> None:
        self.model.reset_states()

    def step(self, chunk: np.ndarray) -> float:
        with self.torch.inference_mode():
            return float(self.model(self.torch.from_numpy(chunk), SAMPLE_RATE).item())


class OnnxSilero:
    """ONNX Runtime: the shipped ONNX file, context and state passed explicitly (Silero's OnnxWrapper)."""

    chunk_samples = SILERO_CHUNK

    def __init__(self, path: Path, threads: int | None = None, provider: str = "CPUExecutionProvider") -> None:
        # deferred: onnxruntime is heavy and a PyTorch-only run never needs it
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=[provider])
        # the 16 kHz-only files (silero_vad_half.onnx) have no sample-rate input
        self.extra = ({"sr": np.array(SAMPLE_RATE, dtype=np.int64)}
                      if any(i.name == "sr" for i in self.session.get_inputs()) else {})
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros(SILERO_STATE_SHAPE, dtype=np.float32)
        self.context = np.zeros((1, SILERO_CONTEXT), dtype=np.float32)

    def step(self, chunk: np.ndarray) -> float:
        x = np.concatenate([self.context, chunk], axis=1)
        out, self.state = self.session.run(None, {"input": x, "state": self.state, **self.extra})
        self.context = x[:, -SILERO_CONTEXT:]
        return float(np.asarray(out).reshape(-1)[0])


def chunks_of(wave: np.ndarray, chunk_samples: int) -> list[np.ndarray]:
    """``(1, chunk_samples)`` float32 chunks in order; the last zero-padded to full size."""
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    n = -(-len(wave) // chunk_samples)
    padded = np.zeros(n * chunk_samples, dtype=np.float32)
    padded[: len(wave)] = wave
    return [padded[i * chunk_samples:(i + 1) * chunk_samples][None, :].copy() for i in range(n)]


@dataclass
class StreamResult:
    outputs: np.ndarray  # one output per chunk, in order
    chunk_seconds: np.ndarray  # wall time of each step
    audio_s: float

    @property
    def total_s(self) -> float:
        return float(self.chunk_seconds.sum())

    @property
    def rtf(self) -> float:
        return self.total_s / self.audio_s


def stream(runner: StreamingRunner, wave: np.ndarray) -> StreamResult:
    """Run an utterance in streaming order from a fresh state, timing every chunk."""
    runner.reset()
    outs, secs = [], []
    for chunk in chunks_of(wave, runner.chunk_samples):
        t0 = time.perf_counter()
        outs.append(runner.step(chunk))
        secs.append(time.perf_counter() - t0)
    return StreamResult(np.array(outs, dtype=np.float64), np.array(secs), len(wave) / SAMPLE_RATE)


def chunk_latency(runner: StreamingRunner, chunk: np.ndarray, policy: TimingPolicy | None = None) -> Timing:
    """Per-chunk latency by the shared harness (the state carried from call to call)."""
    runner.reset()
    return time_callable(lambda: runner.step(chunk), policy or TimingPolicy())


@dataclass(frozen=True)
class StreamFidelity:
    max_abs_diff: float
    mean_abs_diff: float
    decision_agreement: float  # fraction of chunks on the same side of the threshold
    chunks: int


def fidelity(a: np.ndarray, b: np.ndarray, threshold: float = THRESHOLD) -> StreamFidelity:
    """Chunk-by-chunk agreement of two runtimes' outputs for the same utterance."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"outputs of different lengths: {a.shape} vs {b.shape}")
    diff = np.abs(a - b)
    return StreamFidelity(float(diff.max()), float(diff.mean()), float(np.mean((a >= threshold) == (b >= threshold))),
                          int(a.size))
