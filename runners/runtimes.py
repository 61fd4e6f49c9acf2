"""The two runtimes: how each loads a model and calls it.  Nothing else differs.

Each runtime prepares its input on the device before timing and exposes ``call`` (one
inference) and ``sync`` (wait for the device) to the shared harness.  Threads are set for
both (``torch.set_num_threads``; ONNX Runtime's ``intra_op_num_threads``) and recorded.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

RUNTIMES = ("pytorch", "onnxruntime")


class UnsupportedError(RuntimeError):
    """This runtime/provider cannot run here; the cell becomes ``unsupported``."""


class PyTorchRuntime:
    name = "pytorch"

    def __init__(self, build: Callable[[], Any], threads: int | None, device: str = "cpu") -> None:
        self.build, self.threads, self.device = build, threads, device
        self.provider = device
        self.model: Any = None
        self.load_time_s: float | None = None

    def load(self) -> None:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UnsupportedError(f"PyTorch device {self.device!r} requested but torch.cuda is not available "
                                   f"(torch {torch.__version__})")
        start = time.perf_counter()
        self.model = self.build().to(self.device).eval()
        self.sync()
        self.load_time_s = time.perf_counter() - start

    def prepare(self, wav: np.ndarray) -> Any:
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(wav)).to(self.device)
        self.sync()
        return tensor

    def make_call(self, prepared: Any) -> Callable[[], Any]:
        import torch

        model = self.model

        def call() -> Any:
            with torch.inference_mode():
                return model(prepared)
        return call

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def outputs_numpy(self, outputs: Any) -> list[np.ndarray]:
        return [o.detach().float().cpu().numpy() for o in outputs]

    def batch_of(self, prepared: Any) -> int:
        return int(prepared.shape[0])

    def close(self) -> None:
        self.model = None


class OnnxRuntimeRuntime:
    name = "onnxruntime"

    def __init__(self, onnx_path: str | Path, provider: str, threads: int | None,
                 opt_level: str = "all") -> None:
        self.path, self.provider, self.threads, self.opt_level = Path(onnx_path), provider, threads, opt_level
        self.session: Any = None
        self.load_time_s: float | None = None

    def load(self) -> None:
        import onnxruntime as ort

        available = ort.get_available_providers()
        if self.provider not in available:
            raise UnsupportedError(f"execution provider {self.provider} is not in this onnxruntime build "
                                   f"({ort.__version__}; available: {', '.join(available)})")
        if not self.path.exists():
            raise FileNotFoundError(f"ONNX file {self.path} not found; run `make export`")
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.opt_level]
        providers = [self.provider] if self.provider == "CPUExecutionProvider" else [self.provider, "CPUExecutionProvider"]
        start = time.perf_counter()
        self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        self.load_time_s = time.perf_counter() - start
        if self.session.get_providers()[0] != self.provider:
            raise UnsupportedError(f"{self.provider} failed to create a session "
                                   f"(ONNX Runtime fell back to {self.session.get_providers()[0]})")
        self.input_name = self.session.get_inputs()[0].name

    def prepare(self, wav: np.ndarray) -> Any:
        return {self.input_name: np.ascontiguousarray(wav, dtype=np.float32)}

    def make_call(self, prepared: Any) -> Callable[[], Any]:
        session = self.session

        def call() -> Any:
            return session.run(None, prepared)
        return call

    def sync(self) -> None:
        return None  # session.run returns host arrays: it is synchronous

    def outputs_numpy(self, outputs: Any) -> list[np.ndarray]:
        return [np.asarray(o, dtype=np.float32) for o in outputs]

    def batch_of(self, prepared: Any) -> int:
        return int(next(iter(prepared.values())).shape[0])

    def close(self) -> None:
        self.session = None
