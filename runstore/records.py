"""The cell record: one measured (model, runtime, variant, batch, duration) cell.

Field names are the user-facing contract (README.md, docs/bench.md) and must not be
renamed.  A record crosses process boundaries (worker -> parent -> ``cells.jsonl``) as a
plain dict, so everything here is JSON-serialisable.  A value that could not be measured is
``None`` (``null``), never 0, and the reason is stored in ``error`` or a ``*_reason`` field.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Iterable, Protocol

STATUSES = ("ok", "oom", "timeout", "error", "unsupported", "interrupted")
# every runtime a record may name; the first two are the default comparison (make bench), the
# others run when asked for (RUNTIMES=...,openvino,executorch,litert or all) and need their package installed
RUNTIMES = ("pytorch", "onnxruntime", "openvino", "executorch", "litert")
DEFAULT_RUNTIMES = RUNTIMES[:2]
# the runtime speed-ups are against when a run's records do not say (SPEEDUP_BASE's default, and
# the only base before it existed)
DEFAULT_BASE = RUNTIMES[0]


@dataclass
class CellRecord:
    # identity
    run_id: str
    timestamp: str
    host: str
    device: str
    device_name: str
    model: str
    runtime: str
    provider: str
    variant: str
    weights: str
    batch_size: int
    duration_s: float
    threads: int | None
    status: str = "ok"
    error: str | None = None
    # host + software + hardware it was measured with: a key of run.json's "fingerprints"
    fingerprint: str | None = None
    # size
    params_total: int | None = None
    params_unique: int | None = None
    params_used: int | None = None
    model_bytes: int | None = None
    onnx_bytes: int | None = None
    # compute
    macs: int | None = None
    flops: int | None = None
    achieved_flops_per_s: float | None = None
    utilization: float | None = None
    # latency (seconds)
    latency_mean_s: float | None = None
    latency_std_s: float | None = None
    latency_median_s: float | None = None
    latency_p90_s: float | None = None
    latency_p95_s: float | None = None
    latency_p99_s: float | None = None
    latency_min_s: float | None = None
    latency_max_s: float | None = None
    latency_iqr_s: float | None = None
    latency_ci95_low_s: float | None = None
    latency_ci95_high_s: float | None = None
    latency_n: int | None = None
    latency_samples_s: list[float] = field(default_factory=list)
    latency_calls_per_sample: int | None = None
    latency_noisy: bool | None = None
    load_time_s: float | None = None
    first_call_s: float | None = None
    rtf: float | None = None
    throughput_audio_s_per_s: float | None = None
    # drift: the order runtimes were measured in and the canary around this cell
    # (bench/schedule.py, runners/canary.py); the paired speed-up (base runtime / this runtime) is on
    # every record of a runtime other than the base (``speedup_base``: SPEEDUP_BASE, on every record
    # the scheduler annotates; None in records written before the setting, whose base was PyTorch)
    order: str | None = None
    round_medians_s: list[float] = field(default_factory=list)
    canary_before_s: float | None = None
    canary_after_s: float | None = None
    drift: bool | None = None
    speedup_paired: float | None = None
    speedup_ci95_low: float | None = None
    speedup_ci95_high: float | None = None
    speedup_base: str | None = None
    # why the cell's rounds stopped (runners/stopping.py): ``target`` (the reported CI met its
    # target), ``time-cap`` or ``sample-cap`` (a cap came first: the CI is as wide as it came out)
    stop_reason: str | None = None
    # memory
    peak_memory_bytes: int | None = None
    # fidelity against the fp32 PyTorch output of the same input
    output_max_abs_err: float | None = None
    output_cosine: float | None = None
    # energy
    energy_j: float | None = None
    energy_gross_j: float | None = None
    energy_per_audio_s_j: float | None = None
    power_w_mean: float | None = None
    idle_power_w: float | None = None
    energy_source: str | None = None
    energy_domain: str | None = None
    energy_window_s: float | None = None
    energy_reason: str | None = None
    # accuracy (evaluation on real data)
    eval_dataset: str | None = None
    eval_metric: str | None = None
    accuracy: float | None = None
    accuracy_layer: int | None = None
    # anything else a runner wants to keep (input shape checks, output shape, ...)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CellRecord":
        """A stored record as every reader sees it, whichever wavebench version wrote it.

        Fields this version has and an older writer (or a hand-written file) did not are ``None``
        (or empty), the run's metadata (run id, host, device, ...) included; fields this version
        does not know go to ``extra``; a number that is not finite or not a number (``NaN`` in a
        hand-edited file, a string) is ``None``, like any value that could not be measured.
        Raises ``ValueError`` naming what a record lacks of :data:`CELL_FIELDS` (model, runtime,
        batch size, duration): without them it is not a cell, and the run store counts its line
        as damage.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a cell record is a JSON object, not {type(data).__name__}")
        missing = [name for name in CELL_FIELDS if data.get(name) is None]
        if missing:
            raise ValueError(f"not a cell record: missing {', '.join(missing)}")
        kwargs: dict[str, Any] = {}
        extra = dict(data["extra"]) if isinstance(data.get("extra"), dict) else {}
        for key, value in data.items():
            kind = _KINDS.get(key)
            if kind is None:
                extra[key] = value
            elif key != "extra":
                kwargs[key] = _coerce(value, kind)
        for name in _REQUIRED:
            kwargs.setdefault(name, None)
        return cls(**kwargs, extra=extra)


def _kind(annotation: str) -> str:
    """The value kind of a field from its annotation (annotations are strings here)."""
    for kind in ("list", "dict", "bool", "int", "float", "str"):
        if annotation.startswith(kind):
            return kind
    raise TypeError(f"CellRecord field of unknown kind: {annotation}")


def _coerce(value: Any, kind: str) -> Any:
    if value is None:
        return [] if kind == "list" else None
    if kind == "str":
        return str(value)
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        if kind == "int":
            return int(value) if float(value).is_integer() else None
        return float(value)
    if kind == "list":
        return [_coerce(v, "float") for v in value] if isinstance(value, list) else []
    return value if isinstance(value, dict) else {}


_KINDS = {f.name: _kind(str(f.type)) for f in fields(CellRecord)}
_REQUIRED = [f.name for f in fields(CellRecord) if f.default is MISSING and f.default_factory is MISSING]
CELL_FIELDS = ("model", "runtime", "batch_size", "duration_s")  # what makes a record a cell


def run_base(records: Iterable[CellRecord]) -> str:
    """The runtime a run's speed-ups are against: the ``speedup_base`` its records carry (the
    scheduler writes it on every record it annotates), :data:`DEFAULT_BASE` for records written
    before ``SPEEDUP_BASE`` existed."""
    return next((r.speedup_base for r in records if r.speedup_base), DEFAULT_BASE)


CELL_KEY_FIELDS = ("model", "runtime", "provider", "variant", "batch_size", "duration_s", "threads")


class KeyedCell(Protocol):
    """Anything with a cell's identity as attributes: a :class:`CellRecord`, or a cell of the
    plan (``bench.plan.PlannedCell``), so that resume compares plan and records field by field."""

    # read-only (properties): the plan's cells are frozen dataclasses
    @property
    def model(self) -> str: ...
    @property
    def runtime(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def variant(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def threads(self) -> int | None: ...


def cell_key(record: dict[str, Any] | KeyedCell) -> tuple:
    """The identity of a cell inside a run: used to resume and to match across runs."""
    if isinstance(record, dict):
        return tuple(record.get(k) for k in CELL_KEY_FIELDS)
    return tuple(getattr(record, k) for k in CELL_KEY_FIELDS)  # fields, not a deep copy (to_dict)
