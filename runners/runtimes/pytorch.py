"""PyTorch eager: the model built in torch, on the CPU or a CUDA device.

Threads are set with ``torch.set_num_threads``.  On a GPU the call is synchronised
(``torch.cuda.synchronize``) inside the timed region and the peak memory is
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from export.variants import VariantError, torch_variant
from models.registry import NoTorchModelError
from runners.runtimes.base import UnsupportedError


class PyTorchRuntime:
    name = "pytorch"

    def __init__(self, build: Callable[[], Any], threads: int | None, device: str = "cpu",
                 variant: str = "fp32") -> None:
        self.build, self.threads, self.device, self.variant = build, threads, device, variant
        self.provider = device
        self.model: Any = None
        self.dtype: Any = None
        self.load_time_s: float | None = None
        self.io = "device-resident input"
        self.facts: dict[str, Any] = {}

    def load(self) -> None:
        # deferred: torch is heavy and optional on an ONNX-Runtime-only path
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise UnsupportedError(f"PyTorch device {self.device!r} requested but torch.cuda is not available "
                                   f"(torch {torch.__version__})")
        start = time.perf_counter()
        try:
            model = self.build()
            model, self.dtype = torch_variant(model, self.variant, self.device)
        except (NoTorchModelError, VariantError) as exc:
            raise UnsupportedError(str(exc)) from None
        self.model = model.to(self.device).eval()
        self.sync()
        self.load_time_s = time.perf_counter() - start
        self.facts = {"runtime_version": torch.__version__, "runtime_threads": torch.get_num_threads()}

    def prepare(self, wav: np.ndarray) -> Any:
        # deferred: torch is heavy and optional on an ONNX-Runtime-only path
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(wav)).to(self.device, dtype=self.dtype)
        self.sync()
        return tensor

    def make_call(self, prepared: Any) -> Callable[[], Any]:
        # deferred: torch is heavy and optional on an ONNX-Runtime-only path
        import torch

        model = self.model

        def call() -> Any:
            with torch.inference_mode():
                return model(prepared)
        return call

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            # deferred: torch is heavy and optional on an ONNX-Runtime-only path
            import torch

            torch.cuda.synchronize()

    def outputs_numpy(self, outputs: Any) -> list[np.ndarray]:
        return [o.detach().float().cpu().numpy() for o in outputs]

    def batch_of(self, prepared: Any) -> int:
        return int(prepared.shape[0])

    # device memory: CUDA's allocator keeps exact peaks; on the CPU the worker uses RSS
    def reset_device_peak(self) -> int | None:
        if not self.device.startswith("cuda"):
            return None
        # deferred: torch is heavy and optional on an ONNX-Runtime-only path
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()

    def device_peak_over(self, baseline: int | None) -> int | None:
        if baseline is None:
            return None
        # deferred: torch is heavy and optional on an ONNX-Runtime-only path
        import torch

        return max(0, torch.cuda.max_memory_allocated() - baseline)

    def close(self) -> None:
        self.model = None
