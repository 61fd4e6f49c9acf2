"""Which kind of machine this is: Jetson, Raspberry Pi, NVIDIA GPU or plain CPU — one set of rules.

The device-profile choice (``DEVICE=auto``), the environment fingerprint and the energy sensors
(Jetson INA3221 rails, the Pi 5 PMIC) all ask the same questions here, so they cannot disagree.
Every file is read through :class:`host.sysfs.SysRoot` and every command through a
:class:`host.commands.CommandRunner`, so a test can stand in a fake board.
"""

from __future__ import annotations

import os
from typing import Any

from host.commands import CommandRunner, command_output
from host.sysfs import SysRoot


def board_model(root: str | os.PathLike | SysRoot | None = None) -> str | None:
    """The device-tree model string (``Raspberry Pi 5 Model B Rev 1.0``), or ``None``."""
    r = SysRoot.resolve(root)
    return r.read_lenient("/proc/device-tree/model") or r.read_lenient("/sys/firmware/devicetree/base/model")


def jetson_evidence(root: str | os.PathLike | SysRoot | None = None) -> str | None:
    """Why this is a Jetson (L4T release file, device-tree model or compatible), or ``None``."""
    r = SysRoot.resolve(root)
    tegra = r.read_lenient("/etc/nv_tegra_release")
    if tegra is not None:
        return f"/etc/nv_tegra_release present ({tegra.splitlines()[0][:60] if tegra else ''})"
    model = board_model(r)
    if model and "jetson" in model.lower():
        return f"device-tree model {model!r}"
    compatible = r.read_lenient("/proc/device-tree/compatible") or ""
    if "nvidia,tegra" in compatible or "nvidia,p37" in compatible:
        return "device-tree compatible names nvidia,tegra"
    return None


def is_jetson(root: str | os.PathLike | SysRoot | None = None) -> bool:
    return jetson_evidence(root) is not None


def is_raspberry_pi(root: str | os.PathLike | SysRoot | None = None) -> bool:
    """A device-tree model naming a Raspberry Pi."""
    model = board_model(root)
    return bool(model and "raspberry pi" in model.lower())


def detect_platform(root: str | os.PathLike | SysRoot | None = None,
                    run: CommandRunner | None = None) -> dict[str, Any]:
    """Which device profile fits this machine: ``{"kind": jetson|rpi|gpu|cpu, "reason": ...}``.

    Jetson and Raspberry Pi are recognised from files (device tree, L4T release); an NVIDIA
    GPU from ``/proc/driver/nvidia/gpus`` or ``nvidia-smi -L``; anything else is ``cpu``.
    """
    r = SysRoot.resolve(root)
    model = board_model(r)
    why = jetson_evidence(r)
    if why is not None:
        return {"kind": "jetson", "reason": why, "model": model}
    if is_raspberry_pi(r):
        return {"kind": "rpi", "reason": f"device-tree model {model!r}", "model": model}
    gpus_dir = r.real("/proc/driver/nvidia/gpus")
    try:
        n_dirs = len(list(gpus_dir.iterdir())) if gpus_dir.is_dir() else 0
    except OSError:
        n_dirs = 0
    if n_dirs:
        return {"kind": "gpu", "reason": f"NVIDIA driver lists {n_dirs} GPU(s) in "
                                         "/proc/driver/nvidia/gpus", "model": model}
    listing = command_output(["nvidia-smi", "-L"], run)
    if listing and "GPU" in listing:
        first = listing.splitlines()[0].strip()
        return {"kind": "gpu", "reason": f"nvidia-smi -L: {first[:80]}", "model": model}
    return {"kind": "cpu", "reason": "no Jetson, Raspberry Pi or NVIDIA GPU found", "model": model}
