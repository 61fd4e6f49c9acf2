"""The runtimes, one module each behind the ``Runtime`` protocol (``base.py``).

A new runtime is one new module here (a class with the ``Runtime`` methods) plus an entry in
``make_runtime`` below, and its tests.  The worker process and ``make eval`` both build their
runtime through ``make_runtime``, so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from runners.runtimes.base import CPU_EP, GPU_EPS, Runtime, UnsupportedError
from runners.runtimes.onnxruntime import OnnxRuntimeRuntime, provider_list, session_options
from runners.runtimes.pytorch import PyTorchRuntime

__all__ = ["CPU_EP", "GPU_EPS", "OnnxRuntimeRuntime", "PyTorchRuntime", "Runtime", "UnsupportedError",
           "make_runtime", "provider_list", "session_options"]

RUNTIME_NAMES = ("pytorch", "onnxruntime")


def make_runtime(kind: str, *, build: Callable[[], Any] | None = None, onnx_path: str | Path | None = None,
                 provider: str = CPU_EP, threads: int | None = None, variant: str = "fp32",
                 opt_level: str = "all", trt_cache: str | Path | None = None) -> Runtime:
    """The runtime ``kind`` for one model: PyTorch from ``build`` (a function returning the fp32
    module), ONNX Runtime from ``onnx_path``.  ``provider`` is a device (``cpu``, ``cuda``) for
    PyTorch and an execution provider for ONNX Runtime."""
    if kind == "pytorch":
        if build is None:
            raise UnsupportedError("no PyTorch model to build")
        device = "cuda" if provider.startswith("cuda") else "cpu"
        return PyTorchRuntime(build, threads, device, variant)
    if kind == "onnxruntime":
        if onnx_path is None:
            raise UnsupportedError("no ONNX file for this model and variant")
        return OnnxRuntimeRuntime(onnx_path, provider, threads, opt_level, variant, trt_cache)
    raise ValueError(f"unknown runtime {kind!r}; valid: {', '.join(RUNTIME_NAMES)}")
