"""The evaluation record: one model x runtime of ``make eval``, typed.

The run builds it (``evaluation/run.py``), the report reads its fields (``evaluation/report.py``),
and ``results.jsonl`` stores it one JSON object a line, flat, every declared field present (``null``
when not measured, as in ``cells.jsonl``).  The contract's accuracy fields (``eval_dataset``,
``eval_metric``, ``accuracy``, ``accuracy_layer``) and the energy fields have the cell record's
names; ``real_*`` is the latency of embedding the real data, ``synthetic_*`` the benchmark's input
measured in the same session, ``bench_*`` the matching cell of a benchmark run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class EvalRecord:
    # identity
    run_id: str
    timestamp: str
    host: str
    model: str
    runtime: str
    provider: str
    variant: str = "fp32"
    weights: str = ""
    tiny: bool = False
    threads: int | None = None
    batch_size: int | None = None
    status: str = "ok"
    error: str | None = None
    # the data and the probe
    eval_dataset: str | None = None
    eval_metric: str | None = None
    accuracy: float | None = None  # the best layer's
    accuracy_layer: int | None = None
    accuracy_last: float | None = None
    accuracy_last_layer: int | None = None
    accuracy_per_layer: list[float] = field(default_factory=list)
    accuracy_std_per_layer: list[float] = field(default_factory=list)
    chance_accuracy: float | None = None
    probe_method: str | None = None
    probe_splits: int | None = None
    n_clips: int | None = None
    n_classes: int | None = None
    from_cache: bool | None = None
    # size and compute
    params_total: int | None = None
    macs_per_audio_s: float | None = None
    macs_source: str | None = None
    # latency of embedding the real data (evaluation.embed.efficiency)
    real_batches: int | None = None
    real_clips: int | None = None
    real_audio_s: float | None = None
    real_padding_fraction: float | None = None
    real_total_s: float | None = None
    real_batch_latency_median_s: float | None = None
    real_clip_latency_median_s: float | None = None
    real_rtf: float | None = None
    real_throughput_audio_s_per_s: float | None = None
    real_warmup_s: float | None = None
    # the benchmark's synthetic input, same session (evaluation.run.synthetic_latency)
    synthetic_batch_size: int | None = None
    synthetic_duration_s: float | None = None
    synthetic_latency_median_s: float | None = None
    synthetic_rtf: float | None = None
    # the machine while it was timed
    load_average_before: float | None = None
    cpu_count: int | None = None
    # PyTorch and ONNX Runtime embeddings of the same weights (on the ONNX Runtime record)
    embedding_max_abs_diff_vs_pytorch: float | None = None
    embedding_cosine_vs_pytorch: float | None = None
    # energy of one more pass over the data (energy.FIELDS' names)
    energy_j: float | None = None
    energy_gross_j: float | None = None
    energy_per_audio_s_j: float | None = None
    power_w_mean: float | None = None
    idle_power_w: float | None = None
    energy_source: str | None = None
    energy_domain: str | None = None
    energy_window_s: float | None = None
    energy_reason: str | None = None
    # the matching cell of a benchmark run (--bench-run; evaluation.run.bench_fields)
    bench_batch_size: int | None = None
    bench_duration_s: float | None = None
    bench_latency_median_s: float | None = None
    bench_rtf: float | None = None
    bench_energy_per_audio_s_j: float | None = None
    bench_macs_per_audio_s: float | None = None
    bench_weights: str | None = None
    bench_threads: int | None = None
    bench_variant: str | None = None
    bench_provider: str | None = None
    bench_reason: str | None = None  # why no cell matched
    # anything else (cache metadata, a newer version's keys), stored flat beside the fields
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def label(self) -> str:
        return f"{self.model} ({self.runtime})"

    def value(self, name: str) -> Any:
        """A field by name, for code that picks its column at run time (the report's cost axes)."""
        return getattr(self, name) if name in EVAL_FIELDS else self.extra.get(name)

    def add(self, values: dict[str, Any]) -> None:
        """Set the declared fields among ``values``; the rest go to ``extra``, said so here."""
        for name, value in values.items():
            if name in EVAL_FIELDS:
                setattr(self, name, value)
            else:
                self.extra[name] = value

    def to_dict(self) -> dict[str, Any]:
        """One line of ``results.jsonl``: every field, then ``extra``'s keys beside them."""
        data = asdict(self)
        extra = data.pop("extra")
        data.update((k, v) for k, v in extra.items() if k not in data)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalRecord":
        """A stored line, from any version: missing fields get their defaults, unknown keys ``extra``."""
        known = {k: v for k, v in data.items() if k in EVAL_FIELDS and not (v is None and k in _LISTS)}
        for name in ("run_id", "timestamp", "host", "model", "runtime", "provider"):
            known.setdefault(name, "")
        record = cls(**known)
        record.extra = {k: v for k, v in data.items() if k not in EVAL_FIELDS and k != "extra"}
        return record


EVAL_FIELDS = frozenset(f.name for f in fields(EvalRecord)) - {"extra"}
_LISTS = ("accuracy_per_layer", "accuracy_std_per_layer")
