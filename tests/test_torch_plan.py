"""Set-up's choice of torch build (scripts/torch_plan.py), decided without the network: PyTorch's
CPU-only build on a machine without an NVIDIA GPU (a Raspberry Pi), PyPI's default build where
there is one, and a warning with the cost where the CPU index cannot be reached."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from scripts.torch_plan import CPU_INDEX_URL, Host, choose, describe_installed, detect_host, main

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "torch_plan.py"
PI = Host(system="Linux", machine="aarch64", nvidia=None, jetson=False)
ARM_SERVER_WITH_GPU = Host(system="Linux", machine="aarch64", nvidia="/dev/nvidia0 exists", jetson=False)
JETSON = Host(system="Linux", machine="aarch64", nvidia="an NVIDIA Jetson (device tree)", jetson=True)


def test_aarch64_without_gpu_installs_the_cpu_build_from_pytorchs_cpu_index():
    plan = choose(PI, "2.13.0", index_problem=None)
    assert plan.pip_args == ("--index-url", CPU_INDEX_URL, "torch==2.13.0")
    assert plan.build == "cpu"
    assert plan.messages == (f"setup: installing torch==2.13.0, PyTorch's CPU-only build (no NVIDIA GPU), "
                             f"from {CPU_INDEX_URL}",)


def test_unreachable_cpu_index_falls_back_to_the_default_index_with_one_warning_and_the_cost():
    plan = choose(PI, "2.13.0", index_problem="Name or service not known")
    assert plan.pip_args == ("torch==2.13.0",) and plan.build == "default"
    assert len(plan.messages) == 1
    warning = plan.messages[0]
    assert warning.startswith("setup: warning: PyTorch's CPU wheel index")
    assert "Name or service not known" in warning and "4.7 GB" in warning and "\n" not in warning


def test_aarch64_with_an_nvidia_gpu_keeps_the_default_cuda_build():
    plan = choose(ARM_SERVER_WITH_GPU, "2.13.0", index_problem=None)
    assert plan.pip_args == ("torch==2.13.0",) and plan.build == "default"
    assert "/dev/nvidia0" in plan.messages[0]


def test_a_jetson_without_torch_gets_the_cpu_build_and_is_told_where_its_gpu_build_is():
    plan = choose(JETSON, "2.13.0", index_problem=None)
    assert plan.pip_args == ("--index-url", CPU_INDEX_URL, "torch==2.13.0")
    assert "NVIDIA's torch wheel for your JetPack" in plan.messages[0]


def test_other_systems_use_the_default_index():
    plan = choose(Host(system="Darwin", machine="arm64", nvidia=None, jetson=False), "2.13.0", None)
    assert plan.pip_args == ("torch==2.13.0",)


def test_detection_reads_the_device_tree_and_the_driver(tmp_path):
    assert detect_host(str(tmp_path)).nvidia is None
    dt = tmp_path / "proc/device-tree"
    dt.mkdir(parents=True)
    (dt / "model").write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    (dt / "compatible").write_bytes(b"raspberrypi,4-model-b\x00brcm,bcm2711\x00")
    pi = detect_host(str(tmp_path))
    assert pi.nvidia is None and not pi.jetson
    (dt / "compatible").write_bytes(b"nvidia,p3768-0000+p3767-0005\x00nvidia,tegra234\x00")
    jetson = detect_host(str(tmp_path))
    assert jetson.jetson and jetson.nvidia == "an NVIDIA Jetson (device tree)"
    driver = tmp_path / "x86/proc/driver/nvidia"
    driver.mkdir(parents=True)
    (driver / "version").write_text("NVRM version: 550\n")
    assert detect_host(str(tmp_path / "x86")).nvidia == "the NVIDIA driver is loaded (/proc/driver/nvidia/version)"


def test_the_command_line_prints_what_set_up_runs(capsys):
    assert main(["plan", "--version", "2.13.0", "--machine", "aarch64", "--nvidia", "no", "--index", "reachable"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["--index-url", CPU_INDEX_URL, "torch==2.13.0"]
    assert "CPU-only build" in err
    assert main(["plan", "--version", "2.13.0", "--machine", "aarch64", "--nvidia", "no", "--index", "unreachable"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["torch==2.13.0"] and err.count("\n") == 1 and "4.7 GB" in err


def test_the_script_runs_standalone_as_set_up_calls_it():
    """Set-up runs it by path with the bare interpreter, before anything is installed."""
    proc = subprocess.run([sys.executable, "-S", str(SCRIPT), "plan", "--version", "2.13.0", "--machine", "arm64",
                           "--nvidia", "yes"], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines() == ["torch==2.13.0"]


def test_describe_reports_the_installed_build():
    installed = describe_installed()
    assert torch.__version__.split("+")[0] == installed.version.split("+")[0]  # a CUDA wheel says +cu130 only at run time
    assert installed.cuda == (torch.version.cuda is not None)
    assert installed.size_bytes > 50_000_000  # torch's shared libraries alone are larger
