"""Device profiles: small TOML data files in ``bench/device_profiles/``, not code branches.

A profile names the runtimes, the PyTorch device, the ONNX Runtime execution providers (each
one a series of cells; ``ort_optional_providers`` are used only when the installed
onnxruntime has them), the default threads, the default sweep and the energy sensors to try
first.  ``auto`` picks one from what the machine is, and says why.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

try:
    import tomllib  # novermin: 3.11+; tomli below
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    import tomli as tomllib

from host.commands import CommandRunner
from host.platform import detect_platform

PROFILE_DIR = Path(__file__).parent / "device_profiles"


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str
    runtimes: tuple[str, ...]
    pytorch_device: str
    ort_providers: tuple[str, ...]
    ort_optional_providers: tuple[str, ...] = ()
    threads: int = 0
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8)
    durations: tuple[float, ...] = (1, 2, 4, 8, 16)
    energy: tuple[str, ...] = ()
    cell_timeout_s: float = 900
    # GiB each model needs at once in this profile's sweep (its worker's peak plus the parent),
    # measured by benchmarks/profile_memory.py; used to leave out models that cannot fit
    memory_need_gib: tuple[tuple[str, float], ...] = ()
    chosen_because: str | None = field(default=None, compare=False)

    def providers_for(self, available: list[str]) -> list[str]:
        """The ONNX Runtime provider series to run: required ones always (an absent one becomes
        ``unsupported`` cells with the reason), optional ones only when available."""
        return list(self.ort_providers) + [p for p in self.ort_optional_providers if p in available]

    def default_threads(self) -> int:
        return self.threads if self.threads > 0 else available_cores()

    def models_that_fit(self, models: tuple[str, ...] | list[str],
                        available_bytes: int | None) -> tuple[list[str], list[str]]:
        """(models whose measured need fits ``available_bytes``, one line per model left out).
        Unmeasured models and an unknown amount of memory keep everything."""
        needs = dict(self.memory_need_gib)
        if available_bytes is None:
            return list(models), []
        kept, left_out = [], []
        for model in models:
            need = needs.get(model)
            if need is not None and need * 2**30 > available_bytes:
                left_out.append(f"{self.name} profile: leaving out {model}: its sweep needs {need:.1f} GiB at once "
                                f"(measured, docs/platforms.md) and this machine has {available_bytes / 2**30:.1f} GiB "
                                f"available; MODELS={model} runs it anyway")
            else:
                kept.append(model)
        return kept, left_out


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def profile_names(directory: Path = PROFILE_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_profile(name: str, directory: Path = PROFILE_DIR) -> DeviceProfile:
    path = directory / f"{name}.toml"
    if not path.exists():
        raise ProfileError(f"unknown device profile {name!r}; valid: {', '.join(profile_names(directory) + ['auto'])}")
    data: dict[str, Any] = tomllib.loads(path.read_text())
    try:
        return DeviceProfile(
            name=data["name"], description=data.get("description", ""),
            runtimes=tuple(data["runtimes"]), pytorch_device=data.get("pytorch_device", "cpu"),
            ort_providers=tuple(data.get("ort_providers", ["CPUExecutionProvider"])),
            ort_optional_providers=tuple(data.get("ort_optional_providers", [])),
            threads=int(data.get("threads", 0)),
            batch_sizes=tuple(int(b) for b in data.get("batch_sizes", [1, 2, 4, 8])),
            durations=tuple(float(d) for d in data.get("durations", [1, 2, 4, 8, 16])),
            energy=tuple(data.get("energy", [])), cell_timeout_s=float(data.get("cell_timeout_s", 900)),
            memory_need_gib=tuple((str(m), float(g)) for m, g in data.get("memory_need_gib", {}).items()),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"device profile {path} is malformed: {exc}") from None


def detect_kind(root: str | None = None, run: CommandRunner | None = None) -> tuple[str, str]:
    """(profile name, reason) for this machine, from the host's platform detector."""
    found = detect_platform(root=root, run=run)
    kind = found.get("kind", "cpu")
    return (kind if kind in profile_names() else "cpu"), found.get("reason", "")


@dataclass(frozen=True)
class Accelerators:
    """What this Python can drive: a CUDA device for PyTorch, and onnxruntime's providers."""

    torch_cuda: bool
    torch_detail: str  # why not, and what to install
    ort_providers: tuple[str, ...]


def probe_accelerators() -> Accelerators:
    """Ask torch and onnxruntime (imported here: only a CUDA or TensorRT profile needs this)."""
    import onnxruntime as ort  # deferred: heavy, and only needed for a GPU profile
    import torch  # deferred: heavy, and only needed for a GPU profile

    if torch.cuda.is_available():
        detail = ""
    elif torch.version.cuda is None:
        detail = f"torch {torch.__version__} is a CPU-only build: install a CUDA build of torch"
    else:
        detail = f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device"
    return Accelerators(torch.cuda.is_available(), detail, tuple(ort.get_available_providers()))


ORT_PACKAGE_HINT = "install onnxruntime-gpu, or on a Jetson the JetPack build of onnxruntime"


def profile_gaps(profile: DeviceProfile, runtimes: tuple[str, ...] | list[str],
                 accelerators: Accelerators | None = None, providers_given: bool = False) -> list[str]:
    """What this profile needs for ``runtimes`` that this machine lacks (empty: it can run).

    Only the CUDA device and the required ONNX Runtime providers are checked: a CPU provider
    is always there, and optional providers are used only when present.  ``providers_given``:
    the user named the providers (PROVIDERS=...), which replace the profile's and are checked
    against the installed onnxruntime on their own.
    """
    needs_cuda = "pytorch" in runtimes and profile.pytorch_device.startswith("cuda")
    needs_ep = ("onnxruntime" in runtimes and not providers_given
                and any(p != "CPUExecutionProvider" for p in profile.ort_providers))
    if not (needs_cuda or needs_ep):
        return []
    found = accelerators or probe_accelerators()
    gaps = []
    if needs_cuda and not found.torch_cuda:
        gaps.append(f"PyTorch has no CUDA device ({found.torch_detail})")
    missing = [p for p in profile.ort_providers if needs_ep and p not in found.ort_providers]
    if missing:
        gaps.append(f"onnxruntime has no {' or '.join(missing)} (available: {', '.join(found.ort_providers)}; "
                    f"{ORT_PACKAGE_HINT})")
    return gaps


BOARDS = {"rpi": "Raspberry Pi", "jetson": "Jetson"}


def board_mismatch(profile_name: str, environment: dict[str, Any]) -> str | None:
    """A board profile applied on other hardware (people rehearse a Pi run on a laptop): the
    line that says so, from the environment fingerprint; None when it fits or is unknown."""
    board = BOARDS.get(profile_name)
    detected = (environment.get("platform") or {}).get("kind") if isinstance(environment, dict) else None
    if board is None or detected is None or detected == profile_name:
        return None
    cpu_model = (environment.get("cpu") or {}).get("model")
    hardware = " ".join(x for x in (cpu_model, platform.machine()) if x)
    return f"{profile_name} profile on {hardware} — not a {board}"


def resolve_profile(name: str, root: str | None = None, run: CommandRunner | None = None,
                    accelerators: Accelerators | None = None) -> DeviceProfile:
    """Load ``name``; for ``auto``, detect the machine and record why the profile was chosen.

    ``auto`` never picks a profile this Python cannot run (an NVIDIA GPU with a CPU-only torch
    and onnxruntime): it falls back to ``cpu`` and says why.
    """
    if name != "auto":
        return load_profile(name)
    kind, reason = detect_kind(root, run)
    profile = load_profile(kind)
    reason = reason or f"detected {kind}"
    gaps = profile_gaps(profile, profile.runtimes, accelerators)
    if gaps:
        profile, reason = load_profile("cpu"), f"{reason}, but {'; '.join(gaps)}"
    return replace(profile, chosen_because=reason)
