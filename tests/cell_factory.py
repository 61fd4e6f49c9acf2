"""Cell records for the report's tests (tables, plots, discussion, run report): one identity, the
latency fields each test needs on top."""

from __future__ import annotations

from typing import Any

from runstore.records import CellRecord

PROVIDERS = {"pytorch": "cpu", "onnxruntime": "CPUExecutionProvider", "openvino": "CPU", "executorch": "XNNPACK"}


def latency(median: float, rel_ci: float = 0.02) -> dict[str, float]:
    """A median and its 95% CI of median × (1 ± rel_ci)."""
    return {"latency_median_s": median, "latency_ci95_low_s": median * (1 - rel_ci),
            "latency_ci95_high_s": median * (1 + rel_ci)}


def record(model: str, runtime: str, b: int, d: float, status: str, fields: dict[str, Any]) -> CellRecord:
    """A cell record as the run store reads it back, with ``fields`` set."""
    base = dict(run_id="r", timestamp="t", host="h", device="cpu", device_name="test cpu",
                model=model, runtime=runtime, provider=PROVIDERS[runtime], variant="fp32",
                weights="random", batch_size=b, duration_s=d, threads=2, status=status)
    return CellRecord(**{**base, **fields})
