"""Environment fingerprint readers against fake sysfs trees and recorded command output.

Four boards: an Intel laptop, a Raspberry Pi 5 that has throttled, a Jetson AGX Orin with
``nvpmodel``/``jetson_clocks`` output, and a GPU server with ``nvidia-smi`` output.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import pytest

from host import environment as env
from host.commands import CommandResult, command_output
from host.sysfs import ROOT_ENV


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return root


class recorded:
    """A command runner that answers from recorded output (matched by prefix); anything else
    is missing, as a program that is not installed."""

    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.calls: list[str] = []

    def run(self, argv, timeout: float = 5.0) -> CommandResult:
        key = " ".join(argv)
        self.calls.append(key)
        for prefix, out in self.outputs.items():
            if key.startswith(prefix):
                return CommandResult(tuple(argv), 0, out)
        raise FileNotFoundError(2, "No such file or directory", argv[0])

    def stream(self, argv):
        raise FileNotFoundError(2, "No such file or directory", argv[0])


def x86_cpuinfo(n: int, model: str, *, package: Callable[[int], int], core: Callable[[int], int],
                vendor: str | None = None) -> str:
    """/proc/cpuinfo of ``n`` x86 logical CPUs: CPU i on package ``package(i)``, core ``core(i)``."""
    vendor_line = f"vendor_id\t: {vendor}\n" if vendor else ""
    return "".join(f"processor\t: {i}\n{vendor_line}model name\t: {model}\nphysical id\t: {package(i)}\n"
                   f"core id\t\t: {core(i)}\n\n" for i in range(n))


def cpu_files(n: int, *, governor: str, driver: str, max_khz: int, min_khz: int,
              threads_per_core: int = 1, cur_khz: int | None = None) -> dict[str, str]:
    files = {"/sys/devices/system/cpu/online": f"0-{n - 1}\n",
             "/sys/devices/system/cpu/present": f"0-{n - 1}\n"}
    for cpu in range(n):
        base = f"/sys/devices/system/cpu/cpu{cpu}"
        files[f"{base}/topology/core_id"] = f"{cpu // threads_per_core}\n"
        files[f"{base}/topology/physical_package_id"] = "0\n"
        files[f"{base}/cpufreq/scaling_governor"] = governor + "\n"
        files[f"{base}/cpufreq/scaling_driver"] = driver + "\n"
        files[f"{base}/cpufreq/cpuinfo_max_freq"] = f"{max_khz}\n"
        files[f"{base}/cpufreq/cpuinfo_min_freq"] = f"{min_khz}\n"
        files[f"{base}/cpufreq/scaling_cur_freq"] = f"{cur_khz or max_khz}\n"
    return files


MEMINFO = "MemTotal:       {kb} kB\nMemFree:         1000 kB\nMemAvailable:   {avail} kB\nSwapTotal: 0 kB\n"


@pytest.fixture
def intel_laptop(tmp_path):
    files = {
        "/proc/cpuinfo": x86_cpuinfo(8, "12th Gen Intel(R) Core(TM) i7-1260P", vendor="GenuineIntel",
                                     package=lambda i: 0, core=lambda i: i // 2),
        "/proc/meminfo": MEMINFO.format(kb=16 * 1024 * 1024, avail=8 * 1024 * 1024),
        "/proc/sys/kernel/hostname": "laptop\n",
        "/proc/sys/kernel/osrelease": "6.5.0-14-generic\n",
        "/etc/os-release": 'PRETTY_NAME="Ubuntu 22.04.3 LTS"\nID=ubuntu\n',
        "/sys/devices/system/cpu/intel_pstate/no_turbo": "0\n",
        "/proc/loadavg": "0.52 0.40 0.31 1/523 12345\n",
        "/sys/class/thermal/thermal_zone0/type": "acpitz\n",
        "/sys/class/thermal/thermal_zone0/temp": "45000\n",
        "/sys/class/thermal/thermal_zone1/type": "x86_pkg_temp\n",
        "/sys/class/thermal/thermal_zone1/temp": "52000\n",
        **cpu_files(8, governor="powersave", driver="intel_pstate", max_khz=4700000,
                    min_khz=400000, threads_per_core=2, cur_khz=1200000),
    }
    return write_tree(tmp_path / "laptop", files)


PI5_MODEL = "Raspberry Pi 5 Model B Rev 1.0"


@pytest.fixture
def pi5(tmp_path):
    cpuinfo = "".join(
        f"processor\t: {i}\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\n"
        for i in range(4)) + f"Revision\t: d04170\nModel\t\t: {PI5_MODEL}\n"
    files = {
        "/proc/cpuinfo": cpuinfo,
        "/proc/device-tree/model": PI5_MODEL.encode() + b"\x00",
        "/proc/meminfo": MEMINFO.format(kb=8 * 1024 * 1024, avail=7 * 1024 * 1024),
        "/sys/devices/system/cpu/cpufreq/boost": "1\n",
        "/sys/class/thermal/thermal_zone0/type": "cpu-thermal\n",
        "/sys/class/thermal/thermal_zone0/temp": "61250\n",
        **cpu_files(4, governor="ondemand", driver="cpufreq-dt", max_khz=2400000,
                    min_khz=1500000, cur_khz=1500000),
    }
    return write_tree(tmp_path / "pi5", files)


PI5_COMMANDS = {"vcgencmd measure_temp": "temp=61.3'C\n",
                "vcgencmd get_throttled": "throttled=0x50005\n"}

ORIN_MODEL = "NVIDIA Jetson AGX Orin Developer Kit"
JETSON_CLOCKS_PINNED = """SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit
Online CPUs: 0-11
cpu0: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0
cpu1: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0
cpu2: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0
cpu3: Online=1 Governor=schedutil MinFreq=2201600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0
GPU MinFreq=1300500000 MaxFreq=1300500000 CurrentFreq=1300500000
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1
FAN Dynamic Speed control=active hwmon4_pwm=35
NV Power Mode: MAXN
"""
JETSON_CLOCKS_DVFS = JETSON_CLOCKS_PINNED.replace("MinFreq=2201600", "MinFreq=729600").replace(
    "GPU MinFreq=1300500000", "GPU MinFreq=306000000").replace("FreqOverride=1", "FreqOverride=0")


@pytest.fixture
def orin(tmp_path):
    cpuinfo = "".join(
        f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: 0xd42\n\n" for i in range(4))
    files = {
        "/proc/cpuinfo": cpuinfo,
        "/proc/device-tree/model": ORIN_MODEL.encode() + b"\x00",
        "/proc/device-tree/compatible": b"nvidia,p3737-0000+p3701-0000\x00nvidia,tegra234\x00",
        "/etc/nv_tegra_release": "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, "
                                 "EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n",
        "/proc/meminfo": MEMINFO.format(kb=32 * 1024 * 1024, avail=28 * 1024 * 1024),
        "/sys/class/thermal/thermal_zone0/type": "CPU-therm\n",
        "/sys/class/thermal/thermal_zone0/temp": "48500\n",
        "/sys/class/thermal/thermal_zone1/type": "GPU-therm\n",
        "/sys/class/thermal/thermal_zone1/temp": "47000\n",
        **cpu_files(4, governor="schedutil", driver="tegra194", max_khz=2201600,
                    min_khz=115200),
    }
    return write_tree(tmp_path / "orin", files)


ORIN_COMMANDS = {"nvpmodel -q": "NV Power Mode: MAXN\n0\n", "jetson_clocks --show": JETSON_CLOCKS_PINNED}


@pytest.fixture
def gpu_server(tmp_path):
    files = {
        "/proc/cpuinfo": x86_cpuinfo(16, "AMD EPYC 9454 48-Core Processor", package=lambda i: i // 8,
                                     core=lambda i: i % 8),
        "/proc/meminfo": MEMINFO.format(kb=512 * 1024 * 1024, avail=500 * 1024 * 1024),
        "/sys/devices/system/cpu/online": "0-15\n",
        "/sys/devices/system/cpu/cpufreq/boost": "0\n",
        "/proc/driver/nvidia/gpus/0000:19:00.0/information": "Model: NVIDIA H200\n",
    }
    for cpu in range(16):
        files[f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"] = (
            "performance\n" if cpu < 12 else "ondemand\n")
    return write_tree(tmp_path / "gpu", files)


NVIDIA_SMI = ("0, NVIDIA H200, 550.54.15, 143771 MiB, 700.00 W, 700.00 W, 1980 MHz, Enabled\n"
              "1, NVIDIA H200, 550.54.15, 143771 MiB, 500.00 W, 700.00 W, 1980 MHz, Enabled\n")
GPU_COMMANDS = {"nvidia-smi --query-gpu": NVIDIA_SMI,
                "nvidia-smi -L": "GPU 0: NVIDIA H200 (UUID: GPU-1)\nGPU 1: NVIDIA H200 (UUID: GPU-2)\n"}


def test_intel_laptop(intel_laptop):
    e = env.collect_environment(str(intel_laptop), recorded({}))
    json.dumps(e)  # JSON-serialisable
    assert e["platform"]["kind"] == "cpu"
    cpu = e["cpu"]
    assert cpu["model"] == "12th Gen Intel(R) Core(TM) i7-1260P"
    assert (cpu["logical_cores"], cpu["physical_cores"]) == (8, 4)
    assert cpu["governor"] == "powersave" and cpu["scaling_driver"] == "intel_pstate"
    assert cpu["freq_max_mhz"] == 4700.0 and cpu["freq_min_mhz"] == 400.0
    assert cpu["boost"] is True and cpu["boost_source"] == "intel_pstate/no_turbo"
    assert e["memory"]["total_bytes"] == 16 * 1024 ** 3
    assert e["host"]["hostname"] == "laptop" and e["host"]["kernel"] == "6.5.0-14-generic"
    assert e["host"]["os_release"] == "Ubuntu 22.04.3 LTS"
    assert e["gpu"]["present"] is False and "nvidia-smi" in e["gpu"]["reason"]
    assert e["jetson"]["present"] is False and e["rpi"]["present"] is False
    zones = e["thermal"]["thermal_zones"]
    assert [z["type"] for z in zones] == ["acpitz", "x86_pkg_temp"] and e["thermal"]["max_temp_c"] == 52.0
    assert e["thermal"]["cpu_freq_mhz_max"] == 1200.0
    assert e["thermal"]["load_avg"] == [0.52, 0.40, 0.31]


def test_intel_turbo_off(intel_laptop):
    (intel_laptop / "sys/devices/system/cpu/intel_pstate/no_turbo").write_text("1\n")
    assert env.read_boost(intel_laptop) == (False, "intel_pstate/no_turbo")


def test_pi5_with_throttling(pi5):
    run = recorded(PI5_COMMANDS)
    e = env.collect_environment(str(pi5), run)
    assert e["platform"]["kind"] == "rpi" and PI5_MODEL in e["platform"]["reason"]
    assert e["cpu"]["model"] == "Cortex-A76"
    assert (e["cpu"]["logical_cores"], e["cpu"]["physical_cores"]) == (4, 4)
    assert e["cpu"]["governor"] == "ondemand" and e["cpu"]["boost"] is True
    rpi = e["rpi"]
    assert rpi["present"] and rpi["model"] == PI5_MODEL and rpi["revision"] == "d04170"
    assert rpi["temperature_c"] == 61.3
    assert e["summary"]["rpi_model"] == PI5_MODEL and e["summary"]["cpu_model"] == "Cortex-A76"
    thr = rpi["throttled"]
    assert thr["raw"] == "0x50005"
    assert thr["now"] == ["under_voltage", "throttled"]
    assert thr["since_boot"] == ["under_voltage_occurred", "throttling_occurred"]
    assert e["jetson"]["present"] is False and e["gpu"]["present"] is False
    snap = e["thermal"]
    assert snap["rpi"]["temperature_c"] == 61.3 and snap["max_temp_c"] == 61.25


def test_pi_without_vcgencmd(pi5):
    e = env.collect_environment(str(pi5), recorded({}))
    assert e["rpi"]["present"] and e["rpi"]["temperature_c"] is None
    assert e["rpi"]["throttled"] is None and "vcgencmd" in e["rpi"]["reason"]


@pytest.mark.parametrize("value, flags", [
    ("throttled=0x0", []),
    ("throttled=0x80008", ["soft_temperature_limit", "soft_temperature_limit_occurred"]),
    (0x20002, ["arm_frequency_capped", "arm_frequency_capping_occurred"]),
    ("garbage", []),
])
def test_decode_throttled(value, flags):
    assert env.decode_throttled(value)["flags"] == flags


def test_throttle_before_and_after(pi5):
    before = env.throttle_snapshot(str(pi5), recorded({**PI5_COMMANDS,
                                                       "vcgencmd get_throttled": "throttled=0x0"}))
    (pi5 / "sys/class/thermal/thermal_zone0/temp").write_text("82000\n")
    after = env.throttle_snapshot(str(pi5), recorded({**PI5_COMMANDS,
                                                      "vcgencmd get_throttled": "throttled=0x80008"}))
    change = env.throttle_change(before, after)
    assert change["temp_rise_c"] == pytest.approx(20.75)
    assert change["new_throttle_flags"] == ["soft_temperature_limit", "soft_temperature_limit_occurred"]
    assert change["throttled_during_run"] is True


def test_jetson_orin(orin):
    run = recorded(ORIN_COMMANDS)
    e = env.collect_environment(str(orin), run)
    assert e["platform"]["kind"] == "jetson" and "nv_tegra_release" in e["platform"]["reason"]
    j = e["jetson"]
    assert j["present"] and j["model"] == ORIN_MODEL and j["l4t_release"] == "35.4.1"
    assert (j["power_mode"], j["power_mode_id"]) == ("MAXN", 0)
    assert j["clocks_pinned"] is True and j["gpu_clocks_pinned"] is True
    assert e["summary"]["jetson_model"] == ORIN_MODEL and "rpi_model" not in e["summary"]
    assert e["cpu"]["model"] == "Cortex-A78AE"
    assert e["rpi"]["present"] is False
    assert [z["type"] for z in e["thermal"]["thermal_zones"]] == ["CPU-therm", "GPU-therm"]
    assert "rpi" not in e["thermal"]


def test_jetson_clocks_not_pinned_and_not_root(orin):
    j = env.read_jetson(orin, recorded({"nvpmodel -q": "NV Power Mode: 15W\n2\n",
                                        "jetson_clocks --show": JETSON_CLOCKS_DVFS}))
    assert (j["power_mode"], j["power_mode_id"]) == ("15W", 2)
    assert j["clocks_pinned"] is False and j["cpu_clocks_pinned"] is False
    j = env.read_jetson(orin, recorded({}))  # jetson_clocks needs root; nvpmodel missing
    assert j["present"] and j["power_mode"] is None and j["clocks_pinned"] is None
    assert "root" in j["reason"]


def test_gpu_server(gpu_server):
    run = recorded(GPU_COMMANDS)
    e = env.collect_environment(str(gpu_server), run)
    assert e["platform"]["kind"] == "gpu" and "/proc/driver/nvidia/gpus" in e["platform"]["reason"]
    g = e["gpu"]
    assert g["present"] and g["count"] == 2
    assert (g["name"], g["driver_version"], g["power_limit_w"]) == ("NVIDIA H200", "550.54.15", 700.0)
    assert e["summary"]["gpu_name"] == "NVIDIA H200" and e["summary"]["platform"] == "gpu"
    assert g["gpus"][1]["power_limit_w"] == 500.0 and g["gpus"][1]["memory_total_mib"] == 143771.0
    cpu = e["cpu"]
    assert cpu["model"] == "AMD EPYC 9454 48-Core Processor"
    assert (cpu["logical_cores"], cpu["physical_cores"]) == (16, 16)
    assert cpu["governor"] == "mixed: ondemand×4, performance×12"
    assert cpu["boost"] is False and cpu["boost_source"] == "cpufreq/boost"
    assert any(c.startswith("nvidia-smi --query-gpu=") and c.endswith("--format=csv,noheader")
               for c in run.calls)


def test_gpu_detected_by_nvidia_smi_alone(tmp_path):
    p = env.detect_platform(str(tmp_path), recorded(GPU_COMMANDS))
    assert p["kind"] == "gpu" and "nvidia-smi -L" in p["reason"]


def test_nvidia_smi_na_fields():
    g = env.read_gpu(recorded({"nvidia-smi --query-gpu": "0, Tesla T4, 535.1, 15360 MiB, [N/A], "
                                                         "[Not Supported], 1590 MHz, Disabled\n"}))
    assert g["present"] and g["power_limit_w"] is None and g["gpus"][0]["power_max_limit_w"] is None


def test_nothing_raises_on_empty_root_and_broken_runner(tmp_path):
    class broken(recorded):
        def run(self, argv, timeout: float = 5.0):
            raise RuntimeError("boom")

    e = env.collect_environment(str(tmp_path), broken({}))
    json.dumps(e)
    assert e["platform"]["kind"] == "cpu"
    assert e["cpu"]["model"] is None and e["cpu"]["logical_cores"] is None
    assert e["memory"]["total_bytes"] is None and e["gpu"]["present"] is False
    assert e["thermal"]["thermal_zones"] == []


def test_env_var_reroots(pi5, monkeypatch):
    monkeypatch.setenv(ROOT_ENV, str(pi5))
    assert env.detect_platform(run=recorded({}))["kind"] == "rpi"


def test_default_runner_missing_command_is_absent():
    assert command_output(["definitely-not-a-command-wavebench"]) is None
    assert command_output(["false"]) is None
    assert command_output(["echo", "hi"]) == "hi"


def test_software_versions():
    s = env.read_software()
    assert s["python"] and s["wavebench"] == "0.1.0"
    assert set(env.PACKAGES) <= set(s["packages"])
    if s["packages"]["onnxruntime"]:
        assert "CPUExecutionProvider" in s["onnxruntime_providers"]


def test_real_machine_is_fast():
    t0 = time.perf_counter()
    e = env.collect_environment()
    elapsed = time.perf_counter() - t0
    json.dumps(e)
    assert elapsed < 1.0, f"collect_environment took {elapsed:.2f} s"
