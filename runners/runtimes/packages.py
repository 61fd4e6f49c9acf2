"""Which Python package each runtime needs, where its wheels exist, and how to install it.

PyTorch and ONNX Runtime are set-up's own (``scripts/setup_env.sh``); the edge runtimes
(OpenVINO, ExecuTorch, LiteRT: issue 22) are installed only when asked for (``make setup-runtimes
RUNTIMES=openvino``, or ``pip install -r requirements-openvino.txt``), so that the default ``make
bench`` stays PyTorch vs ONNX Runtime and a board gets nothing it does not measure.  A run that
asks for a runtime whose package is missing is refused before anything is measured, with one line
saying how to install it, or that no wheel exists for this Python or machine (:func:`missing`).

``python -m runners.runtimes.packages openvino`` installs them (the make target calls
it): one table here, read by the settings' check, the installer and the docs' support matrix.
"""

from __future__ import annotations

import importlib.util
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RuntimePackage:
    """One optional runtime's Python package and the wheels its publisher ships."""

    runtime: str
    module: str  # the import name
    requirements: str  # the requirement file, relative to the repository root
    pythons: tuple[tuple[int, int], tuple[int, int]]  # oldest and newest (major, minor) with a wheel
    machines: dict[str, tuple[str, ...]]  # platform.system() -> platform.machine() values with a wheel
    min_glibc: dict[str, tuple[int, int]]  # machine -> the manylinux glibc its Linux wheel needs
    no_deps: bool = False  # pip --no-deps: its metadata pins another torch than the one set-up kept
    note: str = ""
    # machine -> what of the requirement file does not install there (environment markers skip it)
    partial: dict[str, str] = field(default_factory=dict)

    @property
    def requirements_path(self) -> Path:
        return REPO / self.requirements

    @property
    def install_hint(self) -> str:
        return (f"make setup-runtimes RUNTIMES={self.runtime} (or {Path(sys.executable).name} -m pip install "
                f"{'--no-deps ' if self.no_deps else ''}-r {self.requirements})")


OPTIONAL = {
    "openvino": RuntimePackage(
        runtime="openvino", module="openvino", requirements="requirements-openvino.txt",
        pythons=((3, 10), (3, 13)),
        machines={"Linux": ("x86_64", "aarch64"), "Darwin": ("arm64", "x86_64"), "Windows": ("AMD64",)},
        min_glibc={"aarch64": (2, 35), "x86_64": (2, 17)},
        note="no cp314 aarch64 wheel yet (openvinotoolkit/openvino #34802)"),
    "executorch": RuntimePackage(
        runtime="executorch", module="executorch", requirements="requirements-executorch.txt",
        pythons=((3, 10), (3, 13)),
        machines={"Linux": ("x86_64", "aarch64"), "Darwin": ("arm64",)},
        min_glibc={"aarch64": (2, 28), "x86_64": (2, 28)},
        no_deps=True,  # its metadata pulls coremltools, pandas, ... and pins torch>=2.13
        note="each release pairs with one torch release: 1.4 <-> torch 2.13 (pytorch/executorch #21563)"),
    "litert": RuntimePackage(
        runtime="litert", module="ai_edge_litert", requirements="requirements-litert.txt",
        pythons=((3, 10), (3, 14)),  # ai-edge-litert 2.3.0 and litert-converter 0.5.0: cp310-cp314
        machines={"Linux": ("x86_64", "aarch64"), "Darwin": ("arm64",)},
        min_glibc={"aarch64": (2, 27), "x86_64": (2, 27)},
        no_deps=True,  # litert-torch's metadata pins torch<2.15 and pulls kagglehub, transformers, sentencepiece, ...
        note="the runtime (ai-edge-litert) installs on Linux aarch64, the converter (litert-torch) does not",
        partial={"aarch64": "the converter (litert-torch: litert-converter has no Linux aarch64 wheel) is not "
                            "installed: only .tflite files converted elsewhere run here (docs/runtimes.md)"}),
}


def installed(runtime: str) -> bool:
    """Whether ``runtime``'s package can be imported here (PyTorch and ONNX Runtime: set-up's)."""
    package = OPTIONAL.get(runtime)
    return package is None or importlib.util.find_spec(package.module) is not None


def wheel_gap(package: RuntimePackage, version: tuple[int, int] | None = None, system: str | None = None,
              machine: str | None = None, glibc: tuple[int, int] | None = None) -> str | None:
    """Why no wheel of ``package`` fits this Python and machine (None: one should install)."""
    version = version or (sys.version_info.major, sys.version_info.minor)
    system, machine = system or platform.system(), machine or platform.machine()
    oldest, newest = package.pythons
    if not oldest <= version <= newest:
        return (f"{package.module} publishes wheels for Python {oldest[0]}.{oldest[1]}-{newest[0]}.{newest[1]} only, "
                f"this is Python {version[0]}.{version[1]}")
    machines = package.machines.get(system, ())
    if machine not in machines:
        where = "; ".join(f"{s} {'/'.join(m)}" for s, m in package.machines.items())
        return f"{package.module} publishes no wheel for {system} {machine} (wheels: {where})"
    if system == "Linux":
        need = package.min_glibc.get(machine)
        glibc = glibc if glibc is not None else _glibc()
        if need and glibc and glibc < need:
            return (f"{package.module}'s {machine} wheel needs glibc {need[0]}.{need[1]} or newer "
                    f"(manylinux_{need[0]}_{need[1]}), this system has {glibc[0]}.{glibc[1]}")
    return None


def missing(runtimes: tuple[str, ...] | list[str]) -> str | None:
    """One line for the first asked-for runtime that is not installed: how to install it, or
    why it cannot be here.  None when every runtime can be imported."""
    for runtime in runtimes:
        if installed(runtime):
            continue
        package = OPTIONAL[runtime]
        gap = wheel_gap(package)
        if gap:
            return f"RUNTIMES={runtime}: the {package.module} package is not installed and cannot be here: {gap}"
        return f"RUNTIMES={runtime}: the {package.module} package is not installed; install it with {package.install_hint}"
    return None


def _glibc() -> tuple[int, int] | None:
    name, version = platform.libc_ver()
    if name != "glibc" or not version:
        return None
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def install(runtimes: list[str], run=subprocess.call) -> int:
    """pip-install each optional runtime of ``runtimes`` that is missing; the exit status."""
    for runtime in runtimes:
        package = OPTIONAL.get(runtime)
        if package is None:
            continue  # pytorch, onnxruntime: set-up installs them
        if installed(runtime):
            print(f"setup-runtimes: {runtime} is installed")
            continue
        gap = wheel_gap(package)
        if gap:
            print(f"setup-runtimes: {runtime} cannot be installed here: {gap}", file=sys.stderr)
            return 2
        command = [sys.executable, "-m", "pip", "install", "--quiet", *(["--no-deps"] if package.no_deps else []),
                   "-r", str(package.requirements_path)]
        print(f"setup-runtimes: installing {runtime} ({package.requirements})")
        status = run(command)
        if status:
            return status
        if platform.machine() in package.partial:
            print(f"setup-runtimes: {runtime}: {package.partial[platform.machine()]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    names = [n.strip() for n in ",".join(args).split(",") if n.strip()] or ["all"]
    valid = ("pytorch", "onnxruntime", *OPTIONAL, "all")
    unknown = [n for n in names if n not in valid]
    if unknown:
        print(f"error: unknown runtime {unknown[0]!r}; valid: {', '.join(valid)}", file=sys.stderr)
        return 2
    return install(list(OPTIONAL) if "all" in names else names)


if __name__ == "__main__":
    sys.exit(main())
