"""Synthetic result folders that follow the results contract, for tests and examples.

Every number written here is made up (seeded random samples around a chosen median); the
run.json says so in ``settings.synthetic``.  Real results come from ``make bench``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from runstore.records import CellRecord


def make_cell(model: str, runtime: str = "pytorch", *, median_s: float = 0.1,
              spread: float = 0.03, n: int = 10, seed: int = 0, batch_size: int = 1,
              duration_s: float = 1.0, threads: int | None = 1, provider: str | None = None,
              variant: str = "fp32", status: str = "ok", run_id: str = "run",
              device: str = "cpu", host: str = "host", timestamp: str = "2025-01-01T00:00:00+00:00",
              **extra: Any) -> dict[str, Any]:
    """A cell record with ``n`` log-normal samples of relative spread ``spread`` around
    ``median_s`` (the sample median is rescaled to exactly ``median_s``)."""
    if provider is None:
        provider = "CPUExecutionProvider" if runtime == "onnxruntime" else "cpu"
    rec = CellRecord(run_id=run_id, timestamp=timestamp, host=host, device=device,
                     device_name=f"synthetic {device}", model=model, runtime=runtime,
                     provider=provider, variant=variant, weights="random", batch_size=batch_size,
                     duration_s=duration_s, threads=threads, status=status)
    if status == "ok":
        rng = np.random.default_rng(seed)
        samples = np.exp(rng.normal(0.0, spread, n))
        samples = samples / np.median(samples) * median_s
        s = np.sort(samples)
        rec.latency_samples_s = [float(v) for v in samples]
        rec.latency_n = n
        rec.latency_median_s = float(np.median(s))
        rec.latency_mean_s = float(s.mean())
        rec.latency_std_s = float(s.std(ddof=1)) if n > 1 else 0.0
        rec.latency_min_s, rec.latency_max_s = float(s[0]), float(s[-1])
        q25, q75, p90, p95 = np.percentile(s, [25, 75, 90, 95])
        rec.latency_iqr_s = float(q75 - q25)
        rec.latency_p90_s, rec.latency_p95_s = float(p90), float(p95)
        rec.rtf = rec.latency_median_s / (batch_size * duration_s)
        rec.throughput_audio_s_per_s = 1.0 / rec.rtf
    else:
        rec.error = f"synthetic {status}"
    data = rec.to_dict()
    data.update(extra)
    return data


def write_run(results_root: str | Path, device: str, run_id: str,
              cells: Iterable[dict[str, Any]], *, host: str = "host",
              environment: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
              schema_version: Any = 1, wavebench_version: str = "0.1.0",
              status: str = "ok", **meta_extra: Any) -> Path:
    """Write ``results_root/<device>/<run_id>/`` with run.json and cells.jsonl; ``meta_extra``
    adds run.json fields (``fingerprint``, ``fingerprints``, ``sessions``, ``device_name`` ...)."""
    folder = Path(results_root) / device / run_id
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"schema_version": schema_version, "wavebench_version": wavebench_version,
            "run_id": run_id, "device": device, "device_name": f"synthetic {device}",
            "host": host, "started": f"{run_id}",
            "settings": {"synthetic": True, **(settings or {})},
            "environment": environment or {}, "status": status, **meta_extra}
    (folder / "run.json").write_text(json.dumps(meta, indent=2))
    with (folder / "cells.jsonl").open("w") as fh:
        for cell in cells:
            cell = {**cell, "run_id": run_id, "device": device, "host": host}
            fh.write(json.dumps(cell) + "\n")
    return folder


def example_environment(cpu: str, cores: int, *, gpu: str | None = None) -> dict[str, Any]:
    """A small environment dict shaped like :func:`host.environment.collect_environment`."""
    return {
        "schema": 1,
        "platform": {"kind": "gpu" if gpu else "cpu", "reason": "synthetic"},
        "host": {"hostname": "synthetic", "os": "Linux", "kernel": "6.1.0", "machine": "x86_64"},
        "cpu": {"model": cpu, "logical_cores": cores, "physical_cores": cores,
                "governor": "performance", "boost": False},
        "memory": {"total_bytes": 16 * 1024 ** 3},
        "gpu": ({"present": True, "name": gpu, "driver_version": "550.54.15", "power_limit_w": 300.0}
                if gpu else {"present": False, "reason": "nvidia-smi not found"}),
        "jetson": {"present": False, "reason": "not a Jetson"},
        "rpi": {"present": False, "reason": "not a Raspberry Pi"},
        "software": {"python": "3.11.7", "wavebench": "0.1.0",
                     "packages": {"torch": "2.13.0+cpu", "onnxruntime": "1.32.0", "numpy": "2.4.6"},
                     "onnxruntime_providers": ["CPUExecutionProvider"]},
    }
