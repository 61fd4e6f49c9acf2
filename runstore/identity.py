"""What makes two cells comparable: the host, the software stack and the hardware underneath.

A run's cells may only be put side by side (resumed into one run, pooled into one compare group)
when they were measured on the same host, with the same software and on the same hardware.
This module turns a recorded environment (``host.environment.collect_environment``'s dict, as
stored in ``run.json``) into that identity, hashes it, and says in words what differs between
two identities ("torch 2.12.0 → 2.13.0").

* **software**: wavebench's version and commit, Python, torch (and its CUDA), onnxruntime and
  its execution providers, onnx, transformers, s3prl, numpy;
* **hardware**: CPU vendor, family/model/stepping (x86) or implementer/part/variant/revision
  (ARM), the kernel-relevant feature flags, cache sizes, core counts, governor, boost, the
  maximum clock, the board and GPU names, a Jetson's power mode.  The measured GEMM rate is
  *not* part of the hash (it is a measurement, noisy by nature); ``run.json`` keeps it per
  session, and ``make compare`` checks it with a tolerance.

Plain dicts in, plain dicts out: stdlib only, so the run store, the suite and compare share it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from setting_defs.table import OPTIONAL_RUNTIME_PACKAGES

SOFTWARE_PACKAGES = ("torch", "onnxruntime", "onnx", "transformers", "s3prl", "numpy")
# the optional runtimes (setting_defs' OPTIONAL_RUNTIME_PACKAGES) are part of the fingerprint where
# installed (a run measured with OpenVINO 2026.4 is not a run measured with 2026.5), left out where not
HARDWARE_CPU_KEYS = ("model", "vendor", "family", "model_number", "stepping", "arm_architecture",
                     "arm_cores", "kernel_flags", "caches", "logical_cores", "physical_cores",
                     "usable_cores", "governor", "boost", "freq_max_mhz")
HASH_CHARS = 12
# how a difference is named in the one-line reason
LABELS = {"wavebench_commit": "wavebench commit", "onnxruntime_providers": "onnxruntime providers",
          "torch_cuda": "torch CUDA", "model": "CPU", "model_number": "CPU model",
          "family": "CPU family", "stepping": "CPU stepping", "vendor": "CPU vendor",
          "kernel_flags": "CPU flags", "arm_cores": "ARM cores", "arm_architecture": "ARM architecture",
          "logical_cores": "logical cores", "physical_cores": "physical cores",
          "usable_cores": "usable cores", "freq_max_mhz": "max clock MHz",
          "gpu": "GPU", "board": "board", "jetson_power_mode": "Jetson power mode"}


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def software_fingerprint(environment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The software stack that measured, from a recorded environment (missing: ``None``)."""
    sw = _dig(environment, "software") or {}
    raw = sw.get("packages")
    packages: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    commit = sw.get("wavebench_git_commit")
    return {
        "wavebench": sw.get("wavebench"),
        "wavebench_commit": str(commit)[:12] if commit else None,
        "python": sw.get("python"),
        **{name: packages.get(name) for name in SOFTWARE_PACKAGES},
        **{name: packages[name] for name in OPTIONAL_RUNTIME_PACKAGES if packages.get(name)},
        "onnxruntime_providers": sw.get("onnxruntime_providers"),
        "torch_cuda": sw.get("torch_cuda"),
    }


def hardware_fingerprint(environment: Mapping[str, Any] | None) -> dict[str, Any]:
    """The hardware underneath, from a recorded environment (missing: ``None``)."""
    cpu = _dig(environment, "cpu") or {}
    return {
        **{key: cpu.get(key) for key in HARDWARE_CPU_KEYS},
        "board": _dig(environment, "jetson", "model") or _dig(environment, "rpi", "model"),
        "gpu": _dig(environment, "gpu", "name"),
        "jetson_power_mode": _dig(environment, "jetson", "power_mode"),
    }


def identity(host: str | None, environment: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"host", "software", "hardware"}``: what must match for cells to be comparable."""
    return {"host": host, "software": software_fingerprint(environment),
            "hardware": hardware_fingerprint(environment)}


def fingerprint_hash(data: Any) -> str:
    """A short stable hash of a JSON-serialisable value (key order does not matter)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def _show(value: Any) -> str:
    if value is None:
        return "(not recorded)"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, Mapping) for v in value):
            return "+".join(f"{v.get('name') or v.get('part')} r{_hex(v.get('variant'))}p{v.get('revision')}"
                            for v in value)
        return ",".join(str(v) for v in value) or "(none)"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "(none)"
    return str(value)


def _hex(text: Any) -> Any:
    """'0x4' -> 4 (an ARM core's variant, written r4p1 with its revision)."""
    try:
        return int(str(text), 16)
    except ValueError:
        return text


def _flags_change(old: Any, new: Any) -> str | None:
    """'avx512f, avx512bw gone' / 'amx_tile new' for two flag lists; None when not both lists."""
    if not isinstance(old, list) or not isinstance(new, list):
        return None
    gone = [f for f in old if f not in new]
    added = [f for f in new if f not in old]
    parts = ([", ".join(gone) + " gone"] if gone else []) + ([", ".join(added) + " new"] if added else [])
    return "CPU flags: " + "; ".join(parts) if parts else None


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two identities, one short phrase each ("torch 2.12.0 → 2.13.0")."""
    out: list[str] = []
    if old.get("host") != new.get("host"):
        out.append(f"host {_show(old.get('host'))} → {_show(new.get('host'))}")
    for part in ("software", "hardware"):
        a, b = old.get(part) or {}, new.get(part) or {}
        for key in list(a) + [k for k in b if k not in a]:
            if a.get(key) == b.get(key):
                continue
            flags = _flags_change(a.get(key), b.get(key)) if key == "kernel_flags" else None
            out.append(flags or f"{LABELS.get(key, key)} {_show(a.get(key))} → {_show(b.get(key))}")
    return out


def software_label(software: Mapping[str, Any]) -> str:
    """'wavebench 0.1.0 (abc123), torch 2.13.0, onnxruntime 1.22.0, python 3.11.2' for a report."""
    parts = []
    if software.get("wavebench"):
        commit = software.get("wavebench_commit")
        parts.append(f"wavebench {software['wavebench']}" + (f" ({str(commit)[:7]})" if commit else ""))
    for name in ("torch",) + tuple(p for p in SOFTWARE_PACKAGES + OPTIONAL_RUNTIME_PACKAGES if p != "torch") + ("python",):
        if software.get(name):
            parts.append(f"{name} {software[name]}")
    return ", ".join(parts) or "not recorded"


def hardware_label(hardware: Mapping[str, Any]) -> str:
    """'AuthenticAMD family 25 model 1 stepping 1, 2 cores, flags avx2,fma, L2 512 KiB' ."""
    parts = []
    vendor = hardware.get("vendor")
    if hardware.get("family") is not None:
        parts.append(f"{vendor or 'CPU'} family {hardware['family']} model {hardware.get('model_number')}"
                     f" stepping {hardware.get('stepping')}")
    elif hardware.get("arm_cores"):
        parts.append(f"{vendor or 'ARM'} {_show(hardware['arm_cores'])}")
    elif hardware.get("model"):
        parts.append(str(hardware["model"]))
    if hardware.get("logical_cores"):
        parts.append(f"{hardware['logical_cores']} logical cores")
    if hardware.get("kernel_flags") is not None:
        parts.append("flags " + (",".join(hardware["kernel_flags"]) or "none of note"))
    caches = hardware.get("caches") or {}
    if caches:
        parts.append(" ".join(f"{k} {v // 1024} KiB" for k, v in caches.items()))
    if hardware.get("governor"):
        parts.append(f"governor {hardware['governor']}")
    for key in ("board", "gpu", "jetson_power_mode"):
        if hardware.get(key):
            parts.append(f"{LABELS[key]} {hardware[key]}")
    return ", ".join(parts) or "not recorded"
