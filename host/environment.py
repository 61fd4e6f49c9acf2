"""The environment fingerprint: what machine, clocks and software a run measured on.

Everything here is a small reader of a sysfs/procfs file or of one command's output, so it
can be tested without the hardware:

* every file read is re-rooted under ``root`` (argument), else the environment variable
  ``WAVEBENCH_SYSFS_ROOT``, else ``/`` — a test builds a fake tree per board;
* every command goes through ``run`` (argument), a :class:`host.commands.CommandRunner`
  (default: the real one) read through :func:`host.commands.command_output`, which never
  raises — a test feeds recorded output (:class:`energy.fakes.FakeRunner`).

Nothing that is missing raises: it is recorded as absent (``{"present": False, "reason": ...}``
or ``None`` for a single value).  The result is a plain JSON-serialisable dict that a run stores
in ``run.json`` under ``environment``.

Public API: :func:`collect_environment`, :func:`throttle_snapshot`, :func:`throttle_change`,
:func:`decode_throttled` (the board detection is :mod:`host.platform`, the sysfs root
:mod:`host.sysfs`, the command runner :mod:`host.commands`).

The top-level keys of the fingerprint: ``platform``, ``host``, ``cpu``, ``memory``, ``gpu``,
``jetson``, ``rpi``, ``thermal`` (a :func:`throttle_snapshot`), ``software`` and ``summary``
(flat headline names: ``gpu_name``, ``jetson_model``, ``rpi_model``, ``cpu_model``, ...).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from host.commands import CommandRunner, command_output
from host.platform import board_model, detect_platform, is_jetson, is_raspberry_pi
from host.sysfs import SysRoot, sysfs_root
from setting_defs.table import OPTIONAL_RUNTIME_PACKAGES

SCHEMA = 1
REPO_ROOT = Path(__file__).resolve().parents[1]

# Raspberry Pi firmware `vcgencmd get_throttled` bits (documented in the Raspberry Pi
# firmware docs).  Bits 0-3 are "now", bits 16-19 are "has occurred since boot".
THROTTLED_BITS: dict[int, str] = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "under_voltage_occurred",
    17: "arm_frequency_capping_occurred",
    18: "throttling_occurred",
    19: "soft_temperature_limit_occurred",
}

# ARM "CPU part" ids for the cores found on the boards this project targets.
ARM_PARTS: dict[str, str] = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd41": "Cortex-A78",
    "0xd42": "Cortex-A78AE",
    "0xd4f": "Neoverse-V2",
    "0x004": "Carmel",  # NVIDIA Xavier (implementer 0x4e)
}

# CPU features that decide which GEMM/conv kernels a runtime can pick (MLAS, oneDNN, XNNPACK,
# KleidiAI): the same model name with or without them is a different machine for the benchmark.
# x86 names as in /proc/cpuinfo "flags"; ARM names as in "Features" (asimd = NEON, asimddp =
# dotprod, asimdhp/fphp = fp16 arithmetic; "neon"/"vfpv4" on a 32-bit kernel).
X86_KERNEL_FLAGS = ("sse4_2", "avx", "f16c", "fma", "avx2", "avx_vnni", "avx512f", "avx512dq",
                    "avx512cd", "avx512bw", "avx512vl", "avx512ifma", "avx512vbmi", "avx512_vbmi2",
                    "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
ARM_KERNEL_FLAGS = ("neon", "vfpv4", "asimd", "fphp", "asimdhp", "asimddp", "asimdfhm", "i8mm",
                    "bf16", "sve", "sve2", "svei8mm", "svebf16", "sme")
# "CPU implementer" ids (Arm ARM, MIDR_EL1) for the vendors of the boards this project targets.
ARM_IMPLEMENTERS: dict[str, str] = {"0x41": "ARM", "0x4e": "NVIDIA", "0x51": "Qualcomm",
                                    "0x61": "Apple", "0x48": "HiSilicon", "0xc0": "Ampere"}

PACKAGES = ("torch", "onnxruntime", "onnx", "s3prl", "transformers", "numpy")
# onnxruntime ships under several distribution names; the first one installed wins.
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-silicon",
                     "onnxruntime-directml", "onnxruntime-openvino", "onnxruntime-training")

NVIDIA_SMI_FIELDS = ("index", "name", "driver_version", "memory.total", "power.limit",
                     "power.max_limit", "clocks.max.sm", "persistence_mode")


# --------------------------------------------------------------------------------------------
# plumbing: the root, files, commands


def _is_real_root(root: Path) -> bool:
    try:
        return root.resolve() == Path("/")
    except OSError:
        return False


def _path(root: Path, path: str) -> Path:
    return SysRoot(root).real(path)


def read_text(root: Path, path: str) -> str | None:
    """The stripped contents of ``root/path`` (device-tree NULs removed), or None."""
    return SysRoot(root).read_lenient(path)


def _read_int(root: Path, path: str) -> int | None:
    text = read_text(root, path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _call(run: CommandRunner | None, argv: Sequence[str]) -> str | None:
    """A command's output through the injectable runner; whatever goes wrong, 'absent'."""
    return command_output(argv, run)


def _parse_cpu_list(text: str | None) -> list[int]:
    """'0-3,6,8-9' -> [0, 1, 2, 3, 6, 8, 9]."""
    cpus: list[int] = []
    if not text:
        return cpus
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                cpus.extend(range(int(lo), int(hi) + 1))
            else:
                cpus.append(int(part))
        except ValueError:
            continue
    return cpus


def _absent(reason: str) -> dict[str, Any]:
    return {"present": False, "reason": reason}


# --------------------------------------------------------------------------------------------
# host


def read_host(root: Path) -> dict[str, Any]:
    real = _is_real_root(root)
    os_release = {}
    text = read_text(root, "/etc/os-release")
    for line in (text or "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            os_release[k.strip()] = v.strip().strip('"')
    hostname = read_text(root, "/proc/sys/kernel/hostname") or (socket.gethostname() if real else None)
    kernel = read_text(root, "/proc/sys/kernel/osrelease") or (platform.release() if real else None)
    return {
        "hostname": hostname,
        "os": platform.system() if real else "Linux",
        "os_release": os_release.get("PRETTY_NAME"),
        "kernel": kernel,
        "machine": platform.machine() if real else None,
    }


# --------------------------------------------------------------------------------------------
# cpu and memory


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks, cur = [], {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                blocks.append(cur)
            cur = {}
            continue
        if ":" in line:
            k, v = line.split(":", 1)
            cur[k.strip()] = v.strip()
    if cur:
        blocks.append(cur)
    return blocks


def read_cpu(root: Path) -> dict[str, Any]:
    cpuinfo = read_text(root, "/proc/cpuinfo") or ""
    blocks = _cpuinfo_blocks(cpuinfo)
    procs = [b for b in blocks if "processor" in b]
    model = None
    for b in procs:
        if b.get("model name"):
            model = b["model name"]
            break
    if model is None and procs:  # ARM: name the core from implementer/part
        parts = sorted({b.get("CPU part", "") for b in procs if b.get("CPU part")})
        names = [ARM_PARTS.get(p.lower(), f"ARM part {p}") for p in parts]
        if names:
            model = " + ".join(names)
    if model is None:
        model = read_text(root, "/sys/firmware/devicetree/base/cpus/cpu@0/compatible")

    online = _parse_cpu_list(read_text(root, "/sys/devices/system/cpu/online"))
    present = _parse_cpu_list(read_text(root, "/sys/devices/system/cpu/present"))
    logical = len(online) or len(procs) or None

    cores: set[tuple[str, str]] = set()
    for cpu in online:
        core = read_text(root, f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id")
        pkg = read_text(root, f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id")
        if core is not None:
            cores.add((pkg or "0", core))
    if not cores:
        for b in procs:
            if "core id" in b:
                cores.add((b.get("physical id", "0"), b["core id"]))
    physical = len(cores) or None

    governors: dict[str, int] = {}
    drivers: set[str] = set()
    max_khz: list[int] = []
    min_khz: list[int] = []
    for cpu in online or range(len(procs)):
        base = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
        gov = read_text(root, f"{base}/scaling_governor")
        if gov:
            governors[gov] = governors.get(gov, 0) + 1
        drv = read_text(root, f"{base}/scaling_driver")
        if drv:
            drivers.add(drv)
        hi = _read_int(root, f"{base}/cpuinfo_max_freq")
        lo = _read_int(root, f"{base}/cpuinfo_min_freq")
        if hi:
            max_khz.append(hi)
        if lo:
            min_khz.append(lo)
    if not governors:
        governor = None
    elif len(governors) == 1:
        governor = next(iter(governors))
    else:
        governor = "mixed: " + ", ".join(f"{g}×{n}" for g, n in sorted(governors.items()))

    boost, boost_source = read_boost(root)
    return {
        "model": model,
        **cpu_identity(procs),
        "caches": read_caches(root, procs),
        "logical_cores": logical,
        "physical_cores": physical,
        "present_cores": len(present) or None,
        "usable_cores": len(os.sched_getaffinity(0)) if _is_real_root(root)
        and hasattr(os, "sched_getaffinity") else None,
        "governor": governor,
        "scaling_driver": ", ".join(sorted(drivers)) or None,
        "freq_min_mhz": min(min_khz) / 1000 if min_khz else None,
        "freq_max_mhz": max(max_khz) / 1000 if max_khz else None,
        "boost": boost,
        "boost_source": boost_source,
    }


def cpu_identity(procs: Sequence[dict[str, str]]) -> dict[str, Any]:
    """Vendor, family/model/stepping (x86) or implementer/part/variant/revision (ARM), and the
    kernel-relevant feature flags that every core has (a kernel may run on any of them).

    ``procs``: the ``processor`` blocks of ``/proc/cpuinfo`` (:func:`_cpuinfo_blocks`).
    """
    first = procs[0] if procs else {}
    flag_sets = [set((b.get("flags") or b.get("Features") or "").split()) for b in procs
                 if b.get("flags") or b.get("Features")]
    common = set.intersection(*flag_sets) if flag_sets else set()
    if "vendor_id" in first or "flags" in first:
        return {"vendor": first.get("vendor_id"), "family": _int_or_none(first.get("cpu family")),
                "model_number": _int_or_none(first.get("model")),
                "stepping": _int_or_none(first.get("stepping")),
                "kernel_flags": [f for f in X86_KERNEL_FLAGS if f in common] if flag_sets else None}
    if "CPU implementer" in first or "Features" in first:
        cores = sorted({(b.get("CPU implementer", "").lower(), b.get("CPU part", "").lower(),
                         b.get("CPU variant", "").lower(), b.get("CPU revision", ""))
                        for b in procs if b.get("CPU part")})
        vendor = sorted({ARM_IMPLEMENTERS.get(c[0], f"implementer {c[0]}") for c in cores})
        return {"vendor": " + ".join(vendor) or None,
                "arm_architecture": first.get("CPU architecture"),
                "arm_cores": [{"implementer": c[0], "part": c[1], "name": ARM_PARTS.get(c[1]),
                               "variant": c[2], "revision": _int_or_none(c[3])} for c in cores],
                "kernel_flags": [f for f in ARM_KERNEL_FLAGS if f in common] if flag_sets else None}
    return {"vendor": None, "kernel_flags": None}


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _size_bytes(text: str | None) -> int | None:
    """'32K' (sysfs), '512 KB' (/proc/cpuinfo), '1M' -> bytes."""
    m = re.match(r"\s*(\d+)\s*([KMG]?)i?B?\s*$", text or "", re.I)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[m.group(2).upper()]


def read_caches(root: Path, procs: Sequence[dict[str, str]] = ()) -> dict[str, int] | None:
    """Cache sizes of cpu0 in bytes by name (``L1d``, ``L1i``, ``L2``, ``L3``) from sysfs; where
    sysfs has none (some Pi kernels), the x86 ``cache size`` line of /proc/cpuinfo as ``cpuinfo``
    (the L2 on AMD, the L3 on Intel — which one is not said there); None when neither exists."""
    caches: dict[str, int] = {}
    for index in range(16):
        base = f"/sys/devices/system/cpu/cpu0/cache/index{index}"
        level, size = read_text(root, f"{base}/level"), _size_bytes(read_text(root, f"{base}/size"))
        if level is None:
            break
        kind = read_text(root, f"{base}/type") or ""
        if size is not None:
            caches[f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")] = size
    if not caches and procs and _size_bytes(procs[0].get("cache size")):
        caches["cpuinfo"] = _size_bytes(procs[0].get("cache size"))  # type: ignore[assignment]
    return caches or None


def read_boost(root: Path) -> tuple[bool | None, str | None]:
    """Turbo/boost state: True on, False off, None unknown, and which file said so."""
    no_turbo = _read_int(root, "/sys/devices/system/cpu/intel_pstate/no_turbo")
    if no_turbo is not None:
        return no_turbo == 0, "intel_pstate/no_turbo"
    boost = _read_int(root, "/sys/devices/system/cpu/cpufreq/boost")
    if boost is not None:
        return boost == 1, "cpufreq/boost"
    boost = _read_int(root, "/sys/devices/system/cpu/cpufreq/policy0/boost")
    if boost is not None:
        return boost == 1, "cpufreq/policy0/boost"
    return None, None


def read_memory(root: Path) -> dict[str, Any]:
    text = read_text(root, "/proc/meminfo") or ""
    values: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"(\w+):\s+(\d+)\s*kB", line)
        if m:
            values[m.group(1)] = int(m.group(2)) * 1024
    return {"total_bytes": values.get("MemTotal"), "available_bytes": values.get("MemAvailable"),
            "swap_total_bytes": values.get("SwapTotal")}


# --------------------------------------------------------------------------------------------
# NVIDIA GPU (nvidia-smi)


def _smi_value(text: str) -> Any:
    text = text.strip()
    if not text or text.startswith("[") or text in ("N/A", "[N/A]", "[Not Supported]"):
        return None
    return text


def _number(text: Any, unit: str) -> float | None:
    if text is None:
        return None
    m = re.match(r"([-+]?[0-9.]+)\s*" + re.escape(unit) + r"?$", str(text).strip())
    return float(m.group(1)) if m else None


def read_gpu(run: CommandRunner | None) -> dict[str, Any]:
    query = ",".join(NVIDIA_SMI_FIELDS)
    out = _call(run, ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"])
    if out is None:
        return _absent("nvidia-smi not found or failed (no NVIDIA GPU/driver)")
    gpus = []
    for line in out.splitlines():
        cols = [c.strip() for c in line.split(",")]
        if len(cols) != len(NVIDIA_SMI_FIELDS):
            continue
        raw = dict(zip(NVIDIA_SMI_FIELDS, (_smi_value(c) for c in cols)))
        gpus.append({
            "index": int(raw["index"]) if raw["index"] and raw["index"].isdigit() else raw["index"],
            "name": raw["name"],
            "driver_version": raw["driver_version"],
            "memory_total_mib": _number(raw["memory.total"], "MiB"),
            "power_limit_w": _number(raw["power.limit"], "W"),
            "power_max_limit_w": _number(raw["power.max_limit"], "W"),
            "clock_max_sm_mhz": _number(raw["clocks.max.sm"], "MHz"),
            "persistence_mode": raw["persistence_mode"],
        })
    if not gpus:
        return _absent("nvidia-smi answered but listed no GPU")
    return {"present": True, "count": len(gpus), "name": gpus[0]["name"],
            "driver_version": gpus[0]["driver_version"],
            "power_limit_w": gpus[0]["power_limit_w"], "gpus": gpus}


# --------------------------------------------------------------------------------------------
# Jetson


def parse_nvpmodel(text: str | None) -> tuple[str | None, int | None]:
    """``nvpmodel -q`` -> (mode name, mode id).  Output: 'NV Power Mode: MAXN' then '0'."""
    if not text:
        return None, None
    name = mode_id = None
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"NV Power Mode:\s*(.+)", line)
        if m:
            name = m.group(1).strip()
        elif line.isdigit() and mode_id is None:
            mode_id = int(line)
    return name, mode_id


def parse_jetson_clocks(text: str | None) -> dict[str, Any]:
    """``jetson_clocks --show``: are CPU and GPU clocks pinned at their maximum?

    Pinned means every online CPU has MinFreq == MaxFreq (== CurrentFreq when shown), and the
    GPU has MinFreq == MaxFreq.  ``jetson_clocks`` sets exactly that; the default DVFS leaves
    MinFreq at the floor.
    """
    if not text:
        return {"clocks_pinned": None, "reason": "jetson_clocks --show not available "
                                                 "(missing, or not run as root)"}
    cpu_pinned: list[bool] = []
    gpu_pinned = emc_pinned = None
    for line in text.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        if re.match(r"\s*cpu\d+:", line) and fields.get("Online", "1") == "1":
            if "MinFreq" in fields and "MaxFreq" in fields:
                cpu_pinned.append(fields["MinFreq"] == fields["MaxFreq"])
        elif line.strip().startswith("GPU") and "MinFreq" in fields:
            gpu_pinned = fields["MinFreq"] == fields.get("MaxFreq")
        elif line.strip().startswith("EMC") and "MinFreq" in fields:
            emc_pinned = (fields.get("FreqOverride") == "1"
                          or fields["MinFreq"] == fields.get("MaxFreq"))
    cpu_all = all(cpu_pinned) if cpu_pinned else None
    parts = [p for p in (cpu_all, gpu_pinned) if p is not None]
    pinned = all(parts) if parts else None
    return {"clocks_pinned": pinned, "cpu_clocks_pinned": cpu_all,
            "gpu_clocks_pinned": gpu_pinned, "emc_clocks_pinned": emc_pinned}


def read_jetson(root: Path, run: CommandRunner | None) -> dict[str, Any]:
    model = board_model(root)
    release = read_text(root, "/etc/nv_tegra_release")
    if not is_jetson(root):
        return _absent("not a Jetson (no /etc/nv_tegra_release, device-tree model "
                       f"{model!r})")
    l4t = None
    if release:
        m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", release)
        if m:
            l4t = f"{m.group(1)}.{m.group(2)}"
    mode, mode_id = parse_nvpmodel(_call(run, ["nvpmodel", "-q"]))
    clocks = parse_jetson_clocks(_call(run, ["jetson_clocks", "--show"]))
    return {"present": True, "model": model, "l4t_release": l4t,
            "nv_tegra_release": release.splitlines()[0] if release else None,
            "power_mode": mode, "power_mode_id": mode_id, **clocks}


# --------------------------------------------------------------------------------------------
# Raspberry Pi


def decode_throttled(value: int | str | None) -> dict[str, Any]:
    """Decode ``vcgencmd get_throttled`` ('throttled=0x50005' or an int) into named flags."""
    if value is None:
        return {"raw": None, "flags": [], "now": [], "since_boot": []}
    if isinstance(value, str):
        m = re.search(r"(0x[0-9a-fA-F]+|\d+)", value.split("=", 1)[-1])
        if not m:
            return {"raw": None, "flags": [], "now": [], "since_boot": []}
        value = int(m.group(1), 0)
    flags = [name for bit, name in sorted(THROTTLED_BITS.items()) if value & (1 << bit)]
    return {"raw": hex(value), "flags": flags,
            "now": [THROTTLED_BITS[b] for b in (0, 1, 2, 3) if value & (1 << b)],
            "since_boot": [THROTTLED_BITS[b] for b in (16, 17, 18, 19) if value & (1 << b)]}


def parse_vcgencmd_temp(text: str | None) -> float | None:
    """"temp=48.3'C" -> 48.3."""
    if not text:
        return None
    m = re.search(r"temp=([-0-9.]+)", text)
    return float(m.group(1)) if m else None


def read_rpi(root: Path, run: CommandRunner | None) -> dict[str, Any]:
    model = board_model(root)
    if not is_raspberry_pi(root):
        return _absent(f"not a Raspberry Pi (device-tree model {model!r})")
    cpuinfo = read_text(root, "/proc/cpuinfo") or ""
    revision = None
    m = re.search(r"^Revision\s*:\s*(\w+)", cpuinfo, re.M)
    if m:
        revision = m.group(1)
    return {"present": True, "model": model, "revision": revision, **_rpi_snapshot(run)}


def _rpi_snapshot(run: CommandRunner | None) -> dict[str, Any]:
    temp_out = _call(run, ["vcgencmd", "measure_temp"])
    thr_out = _call(run, ["vcgencmd", "get_throttled"])
    out: dict[str, Any] = {"temperature_c": parse_vcgencmd_temp(temp_out),
                           "throttled": decode_throttled(thr_out) if thr_out else None}
    if temp_out is None and thr_out is None:
        out["reason"] = "vcgencmd not found or failed"
    return out


# --------------------------------------------------------------------------------------------
# thermal zones and throttling, before and after a run


def read_thermal_zones(root: Path) -> list[dict[str, Any]]:
    base = _path(root, "/sys/class/thermal")
    zones = []
    try:
        entries = sorted((p for p in base.iterdir() if p.name.startswith("thermal_zone")),
                         key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    except OSError:
        return zones
    for zone in entries:
        rel = f"/sys/class/thermal/{zone.name}"
        milli = _read_int(root, f"{rel}/temp")
        zones.append({"zone": zone.name, "type": read_text(root, f"{rel}/type"),
                      "temp_c": milli / 1000 if milli is not None else None})
    return zones


def _current_freqs_mhz(root: Path) -> list[float]:
    freqs = []
    for cpu in _parse_cpu_list(read_text(root, "/sys/devices/system/cpu/online")):
        khz = _read_int(root, f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_cur_freq")
        if khz:
            freqs.append(khz / 1000)
    return freqs


def throttle_snapshot(root: str | os.PathLike | None = None,
                      run: CommandRunner | None = None) -> dict[str, Any]:
    """Temperatures, throttling flags and clocks now; take one before and one after a run.

    On a Raspberry Pi: ``vcgencmd`` temperature and decoded throttled flags.  Everywhere:
    the ``/sys/class/thermal`` zones and the current CPU frequencies (min/max over cores).
    """
    r = sysfs_root(root)
    snap: dict[str, Any] = {"timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if is_raspberry_pi(r):
        snap["rpi"] = _rpi_snapshot(run)
    zones = read_thermal_zones(r)
    snap["thermal_zones"] = zones
    temps = [z["temp_c"] for z in zones if z["temp_c"] is not None]
    snap["max_temp_c"] = max(temps) if temps else (snap.get("rpi") or {}).get("temperature_c")
    load = (read_text(r, "/proc/loadavg") or "").split()
    try:
        snap["load_avg"] = [float(x) for x in load[:3]] if len(load) >= 3 else None
    except ValueError:
        snap["load_avg"] = None
    freqs = _current_freqs_mhz(r)
    snap["cpu_freq_mhz_min"] = min(freqs) if freqs else None
    snap["cpu_freq_mhz_max"] = max(freqs) if freqs else None
    return snap


def throttle_change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed between two :func:`throttle_snapshot` s: temperature rise, new Pi flags."""
    out: dict[str, Any] = {}
    t0, t1 = before.get("max_temp_c"), after.get("max_temp_c")
    out["temp_rise_c"] = round(t1 - t0, 2) if t0 is not None and t1 is not None else None
    f0 = set((((before.get("rpi") or {}).get("throttled")) or {}).get("flags", []))
    f1 = set((((after.get("rpi") or {}).get("throttled")) or {}).get("flags", []))
    out["new_throttle_flags"] = sorted(f1 - f0)
    out["throttled_during_run"] = bool(f1 - f0) or bool(
        (((after.get("rpi") or {}).get("throttled")) or {}).get("now"))
    return out


# --------------------------------------------------------------------------------------------
# software


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    except Exception:
        return None


def wavebench_version(repo_root: Path = REPO_ROOT) -> str | None:
    """wavebench's version from ``pyproject.toml`` at the repo root, else installed metadata."""
    text = None
    try:
        text = (repo_root / "pyproject.toml").read_text()
    except OSError:
        pass
    if text:
        try:
            # deferred: tomllib exists on Python 3.11+ only; a fallback follows
            import tomllib  # novermin: 3.11+; on 3.10 the regex below reads the version

            version = tomllib.loads(text).get("project", {}).get("version")
            if version:
                return str(version)
        except Exception:
            m = re.search(r'^\s*version\s*=\s*"([^"]+)"', text, re.M)
            if m:
                return m.group(1)
    return _dist_version("wavebench")


def _git_commit(repo_root: Path = REPO_ROOT) -> str | None:
    """The checked-out commit, read from .git without running git (fast, no dependency)."""
    git = repo_root / ".git"
    try:
        if git.is_file():  # a worktree or submodule: ".git" names the real git folder
            git = (repo_root / git.read_text().split("gitdir:", 1)[1].strip()).resolve()
        common = git / (git / "commondir").read_text().strip() if (git / "commondir").exists() else git
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head[:40]
        ref = head.split(None, 1)[1]
        for ref_file in (git / ref, common / ref):  # a worktree's branches live in the common folder
            if ref_file.exists():
                return ref_file.read_text().strip()[:40]
        packed = (common / "packed-refs").read_text()
        for line in packed.splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


def _torch_cuda_version() -> str | None:
    """torch.version.cuda without importing torch (which costs a second or more)."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        try:
            text = (Path(loc) / "version.py").read_text()
        except OSError:
            continue
        m = re.search(r"^cuda\s*(?::[^=]*)?=\s*(['\"])([^'\"]*)\1", text, re.M)
        return m.group(2) if m else None
    return None


def _ort_providers() -> tuple[list[str] | None, str | None]:
    try:
        # deferred: onnxruntime is heavy and optional on a PyTorch-only path
        import onnxruntime

        return list(onnxruntime.get_available_providers()), None
    except Exception as exc:  # not installed, or a broken build
        return None, f"{type(exc).__name__}: {exc}"


def read_software() -> dict[str, Any]:
    packages = {name: _dist_version(name) for name in PACKAGES}
    packages.update({name: version for name in OPTIONAL_RUNTIME_PACKAGES if (version := _dist_version(name))})
    ort_dist = next((d for d in ORT_DISTRIBUTIONS if _dist_version(d)), None)
    if ort_dist:
        packages["onnxruntime"] = _dist_version(ort_dist)
    providers, reason = _ort_providers() if ort_dist else (None, "onnxruntime not installed")
    software = {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "wavebench": wavebench_version(),
        "wavebench_git_commit": _git_commit(),
        "packages": packages,
        "onnxruntime_distribution": ort_dist,
        "onnxruntime_providers": providers,
        "torch_cuda": _torch_cuda_version() if packages.get("torch") else None,
    }
    if reason:
        software["onnxruntime_providers_reason"] = reason
    return software


# --------------------------------------------------------------------------------------------
# the whole fingerprint


def collect_environment(root: str | None = None, run: CommandRunner | None = None) -> dict[str, Any]:
    """The environment fingerprint of this machine as a JSON-serialisable dict.

    ``root``: directory that sysfs/procfs/etc paths are read under (default: the
    ``WAVEBENCH_SYSFS_ROOT`` environment variable, else ``/``).  ``run``: command runner,
    a :class:`host.commands.CommandRunner` (default: the real one).  Never raises for a missing
    file or command; what is missing is recorded as absent.
    """
    r = sysfs_root(root)
    env = {
        "schema": SCHEMA,
        "collected_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": detect_platform(r, run),
        "host": read_host(r),
        "cpu": read_cpu(r),
        "memory": read_memory(r),
        "gpu": read_gpu(run),
        "jetson": read_jetson(r, run),
        "rpi": read_rpi(r, run),
        "thermal": throttle_snapshot(r, run),
        "software": read_software(),
    }
    env["summary"] = summarize(env)
    return env


def summarize(env: dict[str, Any]) -> dict[str, Any]:
    """Flat headline keys (``gpu_name``, ``jetson_model``, ``rpi_model``, ``cpu_model``, ...),
    present only when known, for code that wants one name for the device."""
    pairs = {
        "platform": (env.get("platform") or {}).get("kind"),
        "gpu_name": (env.get("gpu") or {}).get("name"),
        "jetson_model": (env.get("jetson") or {}).get("model"),
        "rpi_model": (env.get("rpi") or {}).get("model"),
        "cpu_model": (env.get("cpu") or {}).get("model"),
        "logical_cores": (env.get("cpu") or {}).get("logical_cores"),
        "memory_total_bytes": (env.get("memory") or {}).get("total_bytes"),
        "hostname": (env.get("host") or {}).get("hostname"),
    }
    return {k: v for k, v in pairs.items() if v is not None}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m host.environment``: print the fingerprint as JSON."""
    print(json.dumps(collect_environment(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
