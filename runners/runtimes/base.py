"""The contract every runtime keeps with the harness, the worker and ``make eval``.

A runtime differs from another only in how it loads a model and calls it: it prepares its input
on the device before timing and exposes ``make_call`` (one inference) and ``sync`` (wait for the
device) to the shared harness (``runners/harness.py``), and it sets and records its threads.  A
runtime that cannot run a model here raises ``UnsupportedError``: the cell becomes
``unsupported`` with the reason, and the run goes on.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

CPU_EP = "CPUExecutionProvider"
GPU_EPS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def on_accelerator(runtime: "Runtime") -> bool:
    """Whether ``runtime`` runs on a GPU (PyTorch on ``cuda``, ONNX Runtime's CUDA or TensorRT
    provider): its sync waits for the device and a new shape's kernels may be tuned over calls."""
    provider = str(runtime.provider)
    return provider in GPU_EPS or provider.startswith("cuda")


class UnsupportedError(RuntimeError):
    """This runtime/provider/variant cannot run here; the cell becomes ``unsupported``."""


@runtime_checkable
class Runtime(Protocol):
    """The contract between a runtime and the harness, the worker and ``make eval``: the
    implementations (one module each in this package) differ only in how they load a model and call it."""

    name: str
    provider: str
    threads: int | None
    variant: str
    io: str
    load_time_s: float | None
    # what the runtime reports it ran with once loaded (version, device, precision, threads read
    # back), copied into every cell's ``extra``; a runtime that reports nothing leaves it empty
    facts: dict[str, Any]

    def load(self) -> None:
        """Build or open the model (timed into ``load_time_s``); ``UnsupportedError`` if it cannot run here."""

    def prepare(self, wav: np.ndarray) -> Any:
        """The input, on the device, outside the timed region."""

    def make_call(self, prepared: Any) -> Callable[[], Any]:
        """One inference on ``prepared``: what the harness times."""

    def sync(self) -> None:
        """Wait for the device (a no-op on the CPU)."""

    def outputs_numpy(self, outputs: Any) -> list[np.ndarray]:
        """A call's outputs as host arrays (fidelity, embeddings)."""

    def batch_of(self, prepared: Any) -> int:
        """The batch size of a prepared input."""

    def reset_device_peak(self) -> int | None:
        """Start a device-memory peak window; the baseline in bytes, ``None`` where not measurable."""

    def device_peak_over(self, baseline: int | None) -> int | None:
        """The device-memory peak above ``baseline`` since :meth:`reset_device_peak`."""

    def close(self) -> None:
        """Release the model and the device memory it holds."""
