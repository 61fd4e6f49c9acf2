"""Which torch build set-up installs, and what it installed.

Set-up (scripts/setup_env.sh) calls this only when the environment has no torch (a Jetson's or a
board's own build is kept).  PyPI's Linux ``torch`` wheels are CUDA builds, also on aarch64 (a
CUDA 13 build for Arm servers: about 4.7 GB installed, 2.9 GB of it NVIDIA libraries), so on a
Linux machine without an NVIDIA GPU -- a Raspberry Pi, a CPU server -- set-up installs PyTorch's
CPU-only build from PyTorch's own CPU wheel index.  Where that index cannot be reached it falls
back to the default index with a one-line warning that says what that costs.

Stdlib only, and written for the oldest Python it may meet (it runs on the interpreter given as
PYTHON= before anything is installed).

    python scripts/torch_plan.py plan --version 2.13.0   # pip arguments, one a line, on stdout
    python scripts/torch_plan.py plan --version 2.13.0 --machine aarch64 --nvidia no --index unreachable
    python scripts/torch_plan.py describe                # which build is installed, and its size
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

CPU_INDEX_URL = "https://download.pytorch.org/whl/cpu"
PROBE_TIMEOUT_S = 10.0
# What the default index's torch costs where it is the CUDA build, for the fallback's warning.
# aarch64: measured in an emulated Debian 12 arm64 root (torch 2.13.0, see docs/platforms.md);
# x86_64: measured here in a Python 3.10 venv made by set-up (torch 2.13.0, docs/platforms.md).
CUDA_BUILD_COST = {
    "aarch64": "about 4.7 GB installed, 2.9 GB of it NVIDIA libraries",
    "x86_64": "about 4.8 GB installed, 2.7 GB of it NVIDIA libraries",
}
# Distributions that come with a CUDA build of torch (counted in the installed size).
CUDA_COMPANIONS = ("nvidia-", "triton", "cuda-")


@dataclass(frozen=True)
class Host:
    """The facts the choice depends on."""

    system: str                # platform.system(): Linux, Darwin, Windows
    machine: str               # platform.machine(), normalised: x86_64, aarch64
    nvidia: str | None         # why we think there is an NVIDIA GPU, or None
    jetson: bool               # an NVIDIA Jetson (its GPU needs NVIDIA's JetPack wheel, not PyPI's)


@dataclass(frozen=True)
class TorchPlan:
    """The pip arguments set-up runs, and the lines it prints before running them."""

    pip_args: tuple[str, ...]
    build: str                 # "cpu" (PyTorch's CPU index) or "default" (the default index)
    messages: tuple[str, ...]


def normalise_machine(machine: str) -> str:
    m = machine.lower()
    return {"arm64": "aarch64", "amd64": "x86_64", "x64": "x86_64"}.get(m, m)


def detect_host(root: str = "/") -> Host:
    """This machine's facts, read from files (``root`` lets tests point at a fake tree)."""
    r = Path(root)
    compatible = _read(r / "proc/device-tree/compatible")
    model = _read(r / "proc/device-tree/model")
    jetson = (r / "etc/nv_tegra_release").exists() or "nvidia,tegra" in compatible or "jetson" in model.lower()
    nvidia = None
    if jetson:
        nvidia = "an NVIDIA Jetson (" + ("/etc/nv_tegra_release" if (r / "etc/nv_tegra_release").exists()
                                        else "device tree") + ")"
    elif (r / "proc/driver/nvidia/version").exists():
        nvidia = "the NVIDIA driver is loaded (/proc/driver/nvidia/version)"
    elif (r / "dev/nvidia0").exists():
        nvidia = "/dev/nvidia0 exists"
    elif root == "/" and shutil.which("nvidia-smi"):
        nvidia = "nvidia-smi is installed"
    return Host(system=platform.system(), machine=normalise_machine(platform.machine()), nvidia=nvidia,
                jetson=jetson)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\x00", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def probe_index(url: str = CPU_INDEX_URL, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when ``url``'s torch page answers; otherwise why not (one short phrase).  A short
    time-out: pip's own would wait minutes (retries x PIP_DEFAULT_TIMEOUT) for an index it cannot reach."""
    cafile = os.environ.get("PIP_CERT") or None
    try:
        context = ssl.create_default_context(cafile=cafile)
        with urllib.request.urlopen(url.rstrip("/") + "/torch/", timeout=timeout_s, context=context) as resp:
            return None if resp.status == 200 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return str(reason)[:120] or type(exc).__name__


def choose(host: Host, version: str, index_problem: str | None, index_url: str = CPU_INDEX_URL) -> TorchPlan:
    """The torch install set-up runs.  ``index_problem`` is probe_index()'s answer (None: reachable)."""
    spec = f"torch=={version}"
    if host.system != "Linux":
        return TorchPlan((spec,), "default", (f"setup: installing {spec} from the default index "
                                              f"({host.system}: its wheel there has no CUDA)",))
    if host.nvidia and not host.jetson:
        return TorchPlan((spec,), "default", (f"setup: installing {spec} from the default index "
                                              f"(the CUDA build: {host.nvidia})",))
    messages: list[str] = []
    if host.jetson:
        messages.append("setup: warning: this Jetson's Python has no torch; PyPI's aarch64 build does not drive a "
                        "Jetson's GPU: install NVIDIA's torch wheel for your JetPack into the system Python and "
                        "re-run set-up (README, Boards); installing the CPU-only build meanwhile")
    why = "no NVIDIA GPU" if not host.jetson else "no usable torch for this Jetson's GPU on any index"
    if index_problem is None:
        messages.append(f"setup: installing {spec}, PyTorch's CPU-only build ({why}), from {index_url}")
        return TorchPlan(("--index-url", index_url, spec), "cpu", tuple(messages))
    cost = CUDA_BUILD_COST.get(host.machine, "several GB")
    messages.append(f"setup: warning: PyTorch's CPU wheel index {index_url} cannot be reached ({index_problem}); "
                    f"installing {spec} from the default index, whose Linux {host.machine} wheel is "
                    f"usually the CUDA build ({cost})")
    return TorchPlan((spec,), "default", tuple(messages))


@dataclass(frozen=True)
class InstalledTorch:
    version: str
    cuda: bool                 # a CUDA build (it requires NVIDIA's libraries)
    size_bytes: int            # torch and the CUDA libraries installed with it

    def line(self) -> str:
        build = "CUDA build" if self.cuda else "CPU-only build"
        return f"setup: installed torch {self.version}: {build}, {self.size_bytes / 1e9:.1f} GB on disk"


def describe_installed() -> InstalledTorch:
    """Which torch is installed in this interpreter, from its metadata (no import: cheap)."""
    dist = metadata.distribution("torch")
    requires = dist.requires or []
    cuda = "+cpu" not in dist.version and any(r.lower().startswith(CUDA_COMPANIONS) for r in requires)
    size = _dist_size(dist)
    if cuda:
        for other in metadata.distributions():
            name = (other.metadata["Name"] or "").lower()
            if name.startswith(CUDA_COMPANIONS):
                size += _dist_size(other)
    return InstalledTorch(version=dist.version, cuda=cuda, size_bytes=size)


def _dist_size(dist: metadata.Distribution) -> int:
    total = 0
    for f in dist.files or []:
        try:
            total += os.path.getsize(str(dist.locate_file(f)))
        except OSError:
            pass
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="print the pip arguments that install torch here, one a line")
    plan.add_argument("--version", required=True)
    plan.add_argument("--index-url", default=os.environ.get("TORCH_INDEX_URL") or CPU_INDEX_URL)
    plan.add_argument("--machine", help="pretend to be this machine (e.g. aarch64) instead of detecting it")
    plan.add_argument("--nvidia", choices=("yes", "no"), help="pretend an NVIDIA GPU is (not) present")
    plan.add_argument("--index", choices=("reachable", "unreachable"), help="skip the probe of the CPU index")
    sub.add_parser("describe", help="say which torch build is installed and its size")
    args = parser.parse_args(argv)
    if args.command == "describe":
        print(describe_installed().line())
        return 0
    host = detect_host()
    if args.machine:
        host = Host("Linux", normalise_machine(args.machine), host.nvidia, host.jetson)
    if args.nvidia:
        host = Host(host.system, host.machine, "given on the command line" if args.nvidia == "yes" else None,
                    host.jetson and args.nvidia == "yes")
    if args.index:
        problem = None if args.index == "reachable" else "given on the command line"
    elif host.system == "Linux" and not (host.nvidia and not host.jetson):
        problem = probe_index(args.index_url)
    else:
        problem = None
    chosen = choose(host, args.version, problem, args.index_url)
    for line in chosen.messages:
        print(line, file=sys.stderr)
    print("\n".join(chosen.pip_args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
