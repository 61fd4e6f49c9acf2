"""OpenVINO: the exported ONNX graph compiled by OpenVINO's CPU plugin.

It reads the same ONNX file ``make export`` writes and checks (dynamic batch and time axes kept:
one compiled model serves every cell shape).  The configuration is fixed for a fair fp32 latency
comparison and read back from the compiled model into every cell (``extra.runtime_*``):

- ``INFERENCE_PRECISION_HINT=f32``: the CPU plugin's default is bf16 on CPUs with AMX or
  AVX-512-bf16 and f16 on Armv8.2+ cores with fp16 arithmetic, which would compare a lower
  precision with PyTorch's and ONNX Runtime's fp32;
- ``INFERENCE_NUM_THREADS`` = the cell's threads; ``PERFORMANCE_HINT=LATENCY`` and
  ``NUM_STREAMS=1``: one request at a time, as the other runtimes are called;
- ``CACHE_DIR``: the compiled blob is cached beside the ONNX files (``results/onnx/openvino``), so
  a later run's ``load_time_s`` is a cache load (``extra.runtime_loaded_from_cache`` says which).

Only the fp32 variant: fp16/int8 cells are ``unsupported`` (those variants are PyTorch's and ONNX
Runtime's recipes).  One infer request per worker, called with ``share_inputs`` and
``share_outputs`` (no copies inside the timed call, like ONNX Runtime's ``run``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from runners.runtimes.base import UnsupportedError

PRECISION = "f32"


def compile_config(threads: int | None, cache_dir: str | Path | None) -> dict[str, Any]:
    """The CPU plugin's settings for a one-request fp32 latency run."""
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": PRECISION, "PERFORMANCE_HINT": "LATENCY",
                              "NUM_STREAMS": "1"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if cache_dir:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        config["CACHE_DIR"] = str(cache_dir)
    return config


def _read_back(compiled: Any, name: str) -> Any:
    """A property of the compiled model as plain JSON (None where this version lacks it)."""
    try:
        value = compiled.get_property(name)
    except Exception:  # an older OpenVINO without the property
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    text = str(value)
    return text.removeprefix("<Type: '").removesuffix("'>")  # ov.Type prints as <Type: 'float32'>


class OpenVinoRuntime:
    name = "openvino"

    def __init__(self, onnx_path: str | Path, threads: int | None, variant: str = "fp32",
                 cache_dir: str | Path | None = None, device: str = "CPU", ov_module: Any = None) -> None:
        self.path, self.threads, self.variant, self.cache_dir = Path(onnx_path), threads, variant, cache_dir
        self.provider = device  # the OpenVINO device (plugin) name
        self._ov = ov_module
        self.compiled: Any = None
        self.request: Any = None
        self.load_time_s: float | None = None
        self.io = "host arrays (CPU), shared with the infer request"
        self.facts: dict[str, Any] = {}

    @property
    def ov(self) -> Any:
        if self._ov is None:
            try:
                # deferred: openvino is optional (make setup-runtimes RUNTIMES=openvino)
                import openvino
            except ImportError as exc:
                raise UnsupportedError(f"openvino is not installed ({exc}); make setup-runtimes RUNTIMES=openvino")
            self._ov = openvino
        return self._ov

    def load(self) -> None:
        if self.variant != "fp32":
            raise UnsupportedError(f"OpenVINO runs the fp32 ONNX graph with its precision forced to {PRECISION} "
                                   f"here; the {self.variant} variant is a PyTorch and ONNX Runtime recipe")
        ov = self.ov
        if not self.path.exists():
            raise FileNotFoundError(f"ONNX file {self.path} not found; run `make export`")
        core = ov.Core()
        if self.provider not in core.available_devices:
            raise UnsupportedError(f"OpenVINO device {self.provider} is not available "
                                   f"(available: {', '.join(core.available_devices)})")
        config = compile_config(self.threads, self.cache_dir)
        start = time.perf_counter()
        try:
            self.compiled = core.compile_model(str(self.path), self.provider, config)
        except Exception as exc:  # an op the ONNX frontend or the plugin cannot take
            raise UnsupportedError(f"OpenVINO {ov.__version__.split('-')[0]} could not compile {self.path.name} "
                                   f"for {self.provider}: {openvino_reason(exc)}") from None
        self.request = self.compiled.create_infer_request()
        self.load_time_s = time.perf_counter() - start
        self.outputs = list(self.compiled.outputs)
        precision = _read_back(self.compiled, "INFERENCE_PRECISION_HINT")
        self.facts = {
            "runtime_version": ov.__version__,
            "runtime_device": self.provider,
            "runtime_device_name": _device_name(core, self.provider),
            "runtime_precision": precision,
            "runtime_threads": _read_back(self.compiled, "INFERENCE_NUM_THREADS"),
            "runtime_streams": _read_back(self.compiled, "NUM_STREAMS"),
            "runtime_performance_hint": _read_back(self.compiled, "PERFORMANCE_HINT"),
            "runtime_loaded_from_cache": _read_back(self.compiled, "LOADED_FROM_CACHE"),
        }
        if precision not in (None, "f32", "float32"):
            raise UnsupportedError(f"OpenVINO's {self.provider} plugin would run at {precision}, not fp32, "
                                   f"although {PRECISION} was asked for")

    def prepare(self, wav: np.ndarray) -> Any:
        return np.ascontiguousarray(wav, dtype=np.float32)

    def make_call(self, prepared: Any) -> Callable[[], Any]:
        request, inputs = self.request, {0: prepared}

        def call() -> Any:
            return request.infer(inputs, share_inputs=True, share_outputs=True)
        return call

    def sync(self) -> None:
        return None  # infer() returns when the request has finished

    def outputs_numpy(self, outputs: Any) -> list[np.ndarray]:
        # copies: shared outputs are the request's own buffers, overwritten by the next call
        return [np.array(outputs[port], dtype=np.float32, copy=True) for port in self.outputs]

    def batch_of(self, prepared: Any) -> int:
        return int(prepared.shape[0])

    def reset_device_peak(self) -> int | None:
        return None  # CPU only: the worker reports host RSS

    def device_peak_over(self, baseline: int | None) -> int | None:
        return None

    def close(self) -> None:
        self.request = None
        self.compiled = None


def openvino_reason(exc: BaseException) -> str:
    """OpenVINO's own words for a failure, without its source locations (``Exception from
    src/...cpp:132:`` and ``Check 'false' failed at ...`` lines say where, not why)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(("Exception from src/", "Check '"))]
    return f"{type(exc).__name__}: {' '.join(kept or lines)}"


def _device_name(core: Any, device: str) -> str | None:
    try:
        return str(core.get_property(device, "FULL_DEVICE_NAME"))
    except Exception:  # a plugin without the property
        return None
