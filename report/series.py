"""Series of a run: which cells make one line of measurements, its label, and the reference point.

The plots draw one line per series and the discussion computes one statistic per series; both
take the series' key, label and the (batch, duration) where models are compared from here.

Public API: :func:`series_key`, :func:`series_labels`, :func:`reference_point`, :data:`SeriesKey`.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from report.cells import RUNTIME_LABELS, as_float, is_ok

SeriesKey = tuple  # (runtime, provider, variant, threads)


def series_key(cell: Mapping[str, Any]) -> SeriesKey:
    """What makes one line of measurements: the runtime and the setup it ran under."""
    return (cell.get("runtime"), cell.get("provider"), cell.get("variant"), cell.get("threads"))


def series_labels(cells: Iterable[Mapping[str, Any]]) -> dict[SeriesKey, str]:
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


def reference_point(cells: Sequence[Mapping[str, Any]]) -> tuple[Any, Any] | None:
    """(batch, duration) where models are compared: batch 1 (else the smallest), first duration.

    The first duration is the smallest one with an ok cell at that batch size, so one model that
    fails at the shortest input does not move the comparison of all the others.
    """
    ok = [c for c in cells if is_ok(c)]
    if not ok:
        return None
    batches = sorted({as_float(c.get("batch_size")) for c in ok} - {None})
    if not batches:
        return None
    batch = 1.0 if 1.0 in batches else batches[0]
    durations = sorted({as_float(c.get("duration_s")) for c in ok
                        if as_float(c.get("batch_size")) == batch} - {None})
    return (batch, durations[0]) if durations else None
