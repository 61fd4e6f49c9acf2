"""NVIDIA GPUs through NVML (``pip install nvidia-ml-py``, imported as ``pynvml``; optional).

Two ways to get joules, chosen by probing the GPU, never by assuming:

1. ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta and newer) -> an
   ``energy`` counter read at the window's start and end;
2. where that answers NotSupported (older GPUs, some vGPUs): ``nvmlDeviceGetPowerUsage`` (mW;
   on Ampere and newer a one-second average) polled and integrated.

The GPU measured is the one the benchmark uses: the first entry of ``CUDA_VISIBLE_DEVICES``
(an index or a ``GPU-...`` UUID), else index 0.  The domain is the whole board (GPU, memory,
VRM), not the host.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import SensorError
from .sensor import Context, Domain, Probe, Sensor

FAMILY = "nvml"
INSTALL_FIX = "pip install nvidia-ml-py (the optional 'nvidia' extra), with an NVIDIA driver installed"


def load_module(ctx: Context) -> tuple[Any, str | None]:
    """The injected NVML module, or ``pynvml`` imported now; else (None, why)."""
    if ctx.nvml is not None:
        return ctx.nvml, None
    try:
        return importlib.import_module("pynvml"), None
    except ImportError:
        return None, "the pynvml module is not installed"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def selected_gpu(env: dict | Any) -> str:
    """The benchmark's GPU as NVML sees it: the first ``CUDA_VISIBLE_DEVICES`` entry, else ``0``."""
    visible = (env.get("CUDA_VISIBLE_DEVICES") or "").split(",")[0].strip()
    return visible or "0"


class _NvmlSensor(Sensor):
    family = FAMILY

    def __init__(self, nvml: Any, handle: Any, index: str, name: str, how: str) -> None:
        label = name if name.upper().startswith("NVIDIA") else f"NVIDIA {name}"
        domain = Domain(f"gpu{index}" if index.isdigit() else "gpu", f"{label}: whole board (GPU, memory, VRM) via NVML")
        super().__init__(f"nvml {how} ({name})", [domain])
        self._nvml = nvml
        self._handle = handle
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # shutting down a library that is going away: nothing to report
                pass


class NvmlEnergySensor(_NvmlSensor):
    """The total-energy counter (mJ)."""

    kind = "energy"
    default_period_s = 0.1

    def read(self) -> dict[str, float]:
        try:
            return {self.primary.name: self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1000.0}
        except self._nvml.NVMLError as exc:
            raise SensorError(f"nvmlDeviceGetTotalEnergyConsumption failed: {exc}") from exc


class NvmlPowerSensor(_NvmlSensor):
    """Board power (mW), polled and integrated by the harness."""

    kind = "power"
    min_interval_s = 0.01
    default_period_s = 0.1

    def read(self) -> dict[str, float]:
        try:
            return {self.primary.name: self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0}
        except self._nvml.NVMLError as exc:
            raise SensorError(f"nvmlDeviceGetPowerUsage failed: {exc}") from exc


def probe(ctx: Context) -> Probe:
    nvml, why = load_module(ctx)
    if nvml is None:
        return Probe.missing(FAMILY, why or "NVML unavailable", INSTALL_FIX)
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return Probe.missing(
            FAMILY,
            f"NVML could not start: {exc} (no NVIDIA driver or GPU on this machine)",
            "install the NVIDIA driver (nvidia-smi must work) or run on a machine with an NVIDIA GPU",
        )
    try:
        count = int(nvml.nvmlDeviceGetCount())
        found = []
        for i in range(count):
            found.append(f"GPU {i}: {_text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i)))}")
        if count == 0:
            nvml.nvmlShutdown()
            return Probe.missing(FAMILY, "NVML started but reports no GPU", "check nvidia-smi")
        index = selected_gpu(ctx.env)
        try:
            if index.isdigit():
                handle = nvml.nvmlDeviceGetHandleByIndex(int(index))
            else:
                handle = nvml.nvmlDeviceGetHandleByUUID(index)
        except nvml.NVMLError as exc:
            nvml.nvmlShutdown()
            return Probe.missing(
                FAMILY, f"GPU {index!r} (from CUDA_VISIBLE_DEVICES) not found by NVML: {exc}", "set CUDA_VISIBLE_DEVICES to a valid index or UUID", found
            )
        name = _text(nvml.nvmlDeviceGetName(handle))
        notes = []
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            return Probe(FAMILY, sensor=NvmlEnergySensor(nvml, handle, index, name, "total-energy counter"), found=found)
        except nvml.NVMLError as exc:
            notes.append(f"total-energy counter: {exc}")
        try:
            nvml.nvmlDeviceGetPowerUsage(handle)
            found.append(f"GPU {index}: total-energy counter not supported ({notes[0]}); using power polling")
            return Probe(FAMILY, sensor=NvmlPowerSensor(nvml, handle, index, name, "power polling (mW, integrated)"), found=found)
        except nvml.NVMLError as exc:
            notes.append(f"power usage: {exc}")
        nvml.nvmlShutdown()
        return Probe.missing(
            FAMILY,
            f"GPU {index} ({name}) reports neither energy nor power ({'; '.join(notes)}); common on vGPUs and some consumer boards",
            "measure at the wall with an external meter (ENERGY=csv:<file>)",
            found,
        )
    except Exception as exc:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
        if isinstance(exc, getattr(nvml, "NVMLError", ())):
            return Probe.missing(FAMILY, f"NVML error: {exc}", "check nvidia-smi")
        raise
