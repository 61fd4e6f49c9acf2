"""ONNX Runtime: the exported ONNX graph in an ``InferenceSession`` with one execution provider.

Threads: ``intra_op_num_threads`` (one inter-op thread, sequential execution).  The CUDA and
TensorRT providers run with I/O binding, the input and outputs resident on the device, so
host-device copies are excluded from the timing (``io`` in the record says which).  TensorRT
builds its engine on the first call (recorded apart as ``first_call_s``), cached under
``results/trt_cache``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from runners.runtimes.base import CPU_EP, GPU_EPS, UnsupportedError


def session_options(threads: int | None, opt_level: str, ort: Any) -> Any:
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[opt_level]
    return options


def provider_list(provider: str, variant: str, trt_cache: str | Path | None) -> list:
    """Providers for the session: the requested one (with its options) then the CPU fallback."""
    if provider == CPU_EP:
        return [CPU_EP]
    if provider == "TensorrtExecutionProvider":
        if variant == "int8":
            raise UnsupportedError("TensorRT int8 needs a calibration table; wavebench's int8 variant is "
                                   "ONNX Runtime dynamic quantisation (CPU/CUDA providers)")
        options: dict[str, Any] = {"trt_fp16_enable": variant == "fp16"}
        if trt_cache:
            Path(trt_cache).mkdir(parents=True, exist_ok=True)
            options.update({"trt_engine_cache_enable": True, "trt_engine_cache_path": str(trt_cache)})
        return [(provider, options), "CUDAExecutionProvider", CPU_EP]
    return [provider, CPU_EP]


class OnnxRuntimeRuntime:
    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, provider: str, threads: int | None,
                 opt_level: str = "all", variant: str = "fp32", trt_cache: str | Path | None = None,
                 ort_module: Any = None) -> None:
        self.path, self.provider, self.threads, self.opt_level = Path(onnx_path), provider, threads, opt_level
        self.variant, self.trt_cache, self._ort = variant, trt_cache, ort_module
        self.session: Any = None
        self.load_time_s: float | None = None
        self.io_binding = provider in GPU_EPS
        self.io = "I/O binding: device-resident input and outputs, copies excluded" if self.io_binding \
            else "host arrays (CPU)"
        self.facts: dict[str, Any] = {}

    @property
    def ort(self) -> Any:
        if self._ort is None:
            # deferred: onnxruntime is heavy and optional on a PyTorch-only path
            import onnxruntime

            self._ort = onnxruntime
        return self._ort

    def load(self) -> None:
        ort = self.ort
        available = ort.get_available_providers()
        if self.provider not in available:
            raise UnsupportedError(f"execution provider {self.provider} is not in this onnxruntime build "
                                   f"({ort.__version__}; available: {', '.join(available)})")
        if not self.path.exists():
            raise FileNotFoundError(f"ONNX file {self.path} not found; run `make export`")
        options = session_options(self.threads, self.opt_level, ort)
        providers = provider_list(self.provider, self.variant, self.trt_cache)
        start = time.perf_counter()
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # e.g. a CUDA EP whose libraries are missing
            raise UnsupportedError(f"{self.provider} failed to create a session: {type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        self.load_time_s = time.perf_counter() - start
        if self.session.get_providers()[0] != self.provider:
            raise UnsupportedError(f"{self.provider} failed to create a session "
                                   f"(ONNX Runtime fell back to {self.session.get_providers()[0]})")
        self.input_name = self.session.get_inputs()[0].name
        self.facts = {"runtime_version": ort.__version__}
        self.output_names = [o.name for o in self.session.get_outputs()]

    def prepare(self, wav: np.ndarray) -> Any:
        wav = np.ascontiguousarray(wav, dtype=np.float32)
        if not self.io_binding:
            return {self.input_name: wav}
        value = self.ort.OrtValue.ortvalue_from_numpy(wav, "cuda", 0)
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, value)
        for name in self.output_names:
            binding.bind_output(name, "cuda", 0)
        binding.synchronize_inputs()
        return {"binding": binding, "input": value, "batch": wav.shape[0]}

    def make_call(self, prepared: Any) -> Callable[[], Any]:
        session = self.session
        if not self.io_binding:
            def call() -> Any:
                return session.run(None, prepared)
            return call
        binding = prepared["binding"]

        def call_bound() -> Any:
            session.run_with_iobinding(binding)
            return binding
        return call_bound

    def sync(self) -> None:
        return None  # run() and run_with_iobinding() return after the device has finished

    def outputs_numpy(self, outputs: Any) -> list[np.ndarray]:
        if self.io_binding:
            outputs = outputs.copy_outputs_to_cpu()
        return [np.asarray(o, dtype=np.float32) for o in outputs]

    def batch_of(self, prepared: Any) -> int:
        if self.io_binding:
            return int(prepared["batch"])
        return int(next(iter(prepared.values())).shape[0])

    def reset_device_peak(self) -> int | None:
        return None  # ONNX Runtime exposes no peak-allocation counter; host RSS is reported

    def device_peak_over(self, baseline: int | None) -> int | None:
        return None

    def close(self) -> None:
        self.session = None
