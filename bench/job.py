"""The worker's job: everything one worker process needs to measure one model under one runtime
configuration (model × runtime × provider × variant × threads) on a list of input shapes.

The suite builds it (``bench/suite.make_job``), the scheduler reads it (``bench/schedule``), and
it crosses the process boundary as one JSON line (``to_dict`` in the parent, ``from_dict`` in
``runners/worker``).  A typed job means a misspelt or forgotten key fails where the job is built,
with the key's name, instead of as a ``KeyError`` inside a worker that the parent then reports as
a crashed cell.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from runners.harness import TimingPolicy
from runstore.records import CellRecord


@dataclass(frozen=True)
class CellShape:
    """One input shape of a job: the cell's batch size and audio duration."""

    batch_size: int
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "duration_s": self.duration_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CellShape":
        """The shape a protocol message or a job names: parsed once, where it arrives."""
        return cls(int(data["batch_size"]), float(data["duration_s"]))


@dataclass
class WorkerJob:
    # the runtime configuration: one worker
    model: str
    runtime: str
    provider: str
    variant: str
    threads: int | None
    # where the records go and whose they are
    run_id: str
    device: str
    device_name: str
    host: str
    cells: list[CellShape]
    # the model and its files
    weights: str = "random"  # what the records say (the manifest's name for the weights)
    weights_source: str = "random"  # what to load: ``random`` or a checkpoint/source (models/sources)
    tiny: bool = False
    onnx_path: str | None = None  # the graph this runtime configuration loads
    flops_onnx_path: str | None = None  # the fp32 graph the MACs are counted on
    trt_cache: str | None = None
    artifact_dir: str | None = None  # where the runtime caches what it compiles (OpenVINO's CACHE_DIR)
    manifest_dir: str | None = None  # artifacts made on another machine, with their manifest (ARTIFACTS_DIR)
    manifest_entry: dict[str, Any] = field(default_factory=dict)  # export facts: params, bytes, variants
    # how to measure
    policy: TimingPolicy = field(default_factory=TimingPolicy)  # the stopping rule (runners/stopping.py)
    energy: str = "none"
    energy_preferred: list[str] = field(default_factory=list)
    idle_s: float = 2.0  # idle-power window before the cells
    energy_window_s: float = 2.0  # the shortest energy window of a cell
    # what the parent measured or found for this job
    gemm_peak: dict[str, Any] | None = None
    gemm_peak_reason: str | None = None
    reference_path: str | None = None  # the fp32 PyTorch output the fidelity probe compares with
    reference_error: str | None = None
    fake_timing: dict[str, Any] | None = None  # tests only (worker/fake_timing.py)

    @property
    def name(self) -> str:
        """The runtime configuration in words, for log file names."""
        return f"{self.model}-{self.runtime}-{self.provider}-{self.variant}-t{self.threads}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def base_record(self, cell: CellShape) -> CellRecord:
        """The record of one of this job's cells before anything is measured: identity and size.
        The worker fills it in; the parent writes it as it is when the cell failed."""
        entry = self.manifest_entry or {}
        return CellRecord(
            run_id=self.run_id, timestamp=time.strftime("%Y-%m-%dT%H:%M:%S%z"), host=self.host,
            device=self.device, device_name=self.device_name, model=self.model,
            runtime=self.runtime, provider=self.provider, variant=self.variant,
            weights=self.weights, batch_size=cell.batch_size,
            duration_s=cell.duration_s, threads=self.threads,
            params_total=entry.get("params_total"), params_unique=entry.get("params_unique"),
            params_used=entry.get("params_used"), model_bytes=entry.get("model_bytes"),
            onnx_bytes=entry.get("onnx_bytes"),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WorkerJob":
        """The job a parent sent; an unknown or missing key is a bug in the parent, said by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown worker job field(s): {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        kwargs = dict(data)
        if "cells" in data:  # absent: refused below like any other missing field
            kwargs["cells"] = [CellShape.from_dict(c) for c in data["cells"]]
        if isinstance(data.get("policy"), dict):
            kwargs["policy"] = TimingPolicy.from_dict(data["policy"])
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a missing required field
            raise ValueError(f"incomplete worker job: {exc}") from None
