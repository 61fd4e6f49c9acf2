"""The runtimes, one module each behind the ``Runtime`` protocol (``base.py``).

A new runtime is one new module here (a class with the ``Runtime`` methods) plus an entry in
``make_runtime`` below, and its tests.  The worker process and ``make eval`` both build their
runtime through ``make_runtime``, so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from runners.runtimes.base import CPU_EP, GPU_EPS, Runtime, UnsupportedError, on_accelerator
from runners.runtimes.executorch import ExecuTorchRuntime
from runners.runtimes.litert import LiteRTRuntime
from runners.runtimes.onnxruntime import OnnxRuntimeRuntime, provider_list, session_options
from runners.runtimes.openvino import OpenVinoRuntime
from runners.runtimes.pytorch import PyTorchRuntime
from runstore.records import RUNTIMES

__all__ = ["CPU_EP", "GPU_EPS", "SHIPPABLE", "ExecuTorchRuntime", "LiteRTRuntime", "OnnxRuntimeRuntime", "OpenVinoRuntime",
           "PyTorchRuntime", "Runtime", "UnsupportedError", "make_runtime", "on_accelerator", "provider_list",
           "session_options"]

RUNTIME_NAMES = RUNTIMES  # the run store's list: every name a record may carry
ALL = "all"  # RUNTIMES=all: every runtime above (the optional ones must be installed)
# the runtimes that load the ONNX file make export writes (the others build their own artifact)
ONNX_RUNTIMES = ("onnxruntime", "openvino")
# the provider field of a runtime that has a single one here (PyTorch: the profile's device;
# ONNX Runtime: the profile's execution providers): OpenVINO's CPU plugin, ExecuTorch's XNNPACK
# delegate, LiteRT's default CPU delegate (XNNPACK too)
FIXED_PROVIDERS = {"openvino": "CPU", "executorch": "XNNPACK", "litert": "XNNPACK"}
# the runtimes whose per-shape artifacts can be made on another machine (make export RUNTIMES=...)
# and used here from their manifest (runners/runtimes/artifacts.py)
SHIPPABLE = ("executorch", "litert")


def expand_runtimes(names: tuple[str, ...]) -> tuple[str, ...]:
    """``RUNTIMES`` as the plan uses it: ``all`` becomes every runtime, in the run store's order
    (PyTorch first; the rounds pair with SPEEDUP_BASE's, bench/schedule.py); duplicates are dropped."""
    out: list[str] = []
    for name in names:
        for runtime in (RUNTIME_NAMES if name == ALL else (name,)):
            if runtime not in out:
                out.append(runtime)
    return tuple(out)


def make_runtime(kind: str, *, build: Callable[[], Any] | None = None, onnx_path: str | Path | None = None,
                 provider: str = CPU_EP, threads: int | None = None, variant: str = "fp32",
                 opt_level: str = "all", trt_cache: str | Path | None = None,
                 artifact_dir: str | Path | None = None, model: str = "model",
                 manifest_dir: str | Path | None = None) -> Runtime:
    """The runtime ``kind`` for one model: PyTorch, ExecuTorch and LiteRT from ``build`` (a function
    returning the fp32 module), ONNX Runtime and OpenVINO from ``onnx_path``.  ``provider`` is a
    device (``cpu``, ``cuda``) for PyTorch, an execution provider for ONNX Runtime, a device
    (``CPU``) for OpenVINO and the delegate (``XNNPACK``) for ExecuTorch and LiteRT; ``artifact_dir``
    is where a runtime caches what it compiles or exports (``model`` names ExecuTorch's and LiteRT's
    files there); ``manifest_dir`` holds artifacts made on another machine with their manifest
    (``make export``)."""
    if kind == "pytorch":
        if build is None:
            raise UnsupportedError("no PyTorch model to build")
        device = "cuda" if provider.startswith("cuda") else "cpu"
        return PyTorchRuntime(build, threads, device, variant)
    if kind == "onnxruntime":
        if onnx_path is None:
            raise UnsupportedError("no ONNX file for this model and variant")
        return OnnxRuntimeRuntime(onnx_path, provider, threads, opt_level, variant, trt_cache)
    if kind == "openvino":
        if onnx_path is None:
            raise UnsupportedError("no ONNX file for this model (OpenVINO compiles the exported ONNX graph)")
        if opt_level != "all":
            raise UnsupportedError(f"ONNX Runtime's graph optimisation level {opt_level!r} does not apply to OpenVINO")
        return OpenVinoRuntime(onnx_path, threads, variant, artifact_dir, provider)
    if kind == "executorch":
        if build is None:
            raise UnsupportedError("no PyTorch model to export (ExecuTorch exports the PyTorch module)")
        if provider != "XNNPACK":
            raise UnsupportedError(f"ExecuTorch runs with the XNNPACK delegate here, not {provider!r}")
        if opt_level != "all":
            raise UnsupportedError(f"ONNX Runtime's graph optimisation level {opt_level!r} does not apply to ExecuTorch")
        return ExecuTorchRuntime(build, threads, variant, artifact_dir, model, manifest_dir=manifest_dir)
    if kind == "litert":
        if build is None:
            raise UnsupportedError("no PyTorch model to convert (LiteRT converts the PyTorch module)")
        if provider != "XNNPACK":
            raise UnsupportedError(f"LiteRT runs with its default XNNPACK delegate here, not {provider!r}")
        if opt_level != "all":
            raise UnsupportedError(f"ONNX Runtime's graph optimisation level {opt_level!r} does not apply to LiteRT")
        return LiteRTRuntime(build, threads, variant, artifact_dir, model, manifest_dir=manifest_dir)
    raise ValueError(f"unknown runtime {kind!r}; valid: {', '.join(RUNTIME_NAMES)}")
