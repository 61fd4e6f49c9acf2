"""Series of a run: which cells make one line of measurements, its label, and the reference point.

The plots draw one line per series and the discussion computes one statistic per series; both
take the series' key, label, the (batch, duration) where models are compared and the value of a
cell on an input axis from here.

Public API: :func:`series_key`, :func:`series_labels`, :func:`reference_point`, :func:`axis_value`,
:data:`SeriesKey`, :data:`AXES`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from report.cells import RUNTIME_LABELS, as_float, is_ok
from runstore.records import CellRecord

SeriesKey = tuple  # (runtime, provider, variant, threads)
AXES = ("batch_size", "duration_s")  # the input axes a sweep varies, named as the record's fields


def series_key(cell: CellRecord) -> SeriesKey:
    """What makes one line of measurements: the runtime and the setup it ran under."""
    return (cell.runtime, cell.provider, cell.variant, cell.threads)


def axis_value(cell: CellRecord, axis: str) -> float | None:
    """The cell's value on an input axis (``batch_size`` or ``duration_s``), as a float."""
    if axis == "batch_size":
        return as_float(cell.batch_size)
    if axis == "duration_s":
        return as_float(cell.duration_s)
    raise ValueError(f"axis must be one of {', '.join(AXES)}, not {axis!r}")


def series_labels(cells: Iterable[CellRecord]) -> dict[SeriesKey, str]:
    """"PyTorch", "ONNX Runtime", with the setup appended only where a runtime ran several."""
    keys = list(dict.fromkeys(series_key(c) for c in cells))
    labels: dict[SeriesKey, str] = {}
    for key in keys:
        runtime = key[0]
        same_runtime = [k for k in keys if k[0] == runtime]
        label = RUNTIME_LABELS.get(runtime, str(runtime))
        if len(same_runtime) > 1:
            varying = [i for i in (1, 2, 3) if len({k[i] for k in same_runtime}) > 1]
            parts = [f"{key[i]} thr" if i == 3 else str(key[i]) for i in varying]
            label += f" ({', '.join(parts)})"
        labels[key] = label
    return labels


def reference_point(cells: Sequence[CellRecord]) -> tuple[float, float] | None:
    """(batch, duration) where models are compared: batch 1 (else the smallest), first duration.

    The first duration is the smallest one with an ok cell at that batch size, so one model that
    fails at the shortest input does not move the comparison of all the others.
    """
    ok = [c for c in cells if is_ok(c)]
    if not ok:
        return None
    batches = sorted({b for c in ok if (b := as_float(c.batch_size)) is not None})
    if not batches:
        return None
    batch = 1.0 if 1.0 in batches else batches[0]
    durations = sorted({d for c in ok if as_float(c.batch_size) == batch
                        and (d := as_float(c.duration_s)) is not None})
    return (batch, durations[0]) if durations else None
