"""Tables of a run: the PyTorch-vs-ONNX Runtime comparison, ``summary.csv`` and the parameters.

Everything here reads plain cell dicts (as :func:`report.run_report.load_cells` returns them) so a
Pi's ``cells.jsonl`` copied to a laptop gives the same tables there.  The statistics were computed
by the harness when the cell was measured; this module only pairs, formats and compares them
(the one exception: the IQR is recomputed from the raw samples when a record lacks it).

The pairing of a PyTorch cell with an ONNX Runtime cell (:func:`pair_cells`) and the significance
test on two medians (:func:`compare_medians`) live here because the discussion and the plots use
the same definitions as the printed table: one definition, one answer.

Public API: :func:`comparison_table`, :func:`write_summary_csv`, :func:`params_table`,
:func:`model_sizes`, :func:`pair_cells`, :func:`compare_medians`, :func:`speedup`, :func:`is_ok`,
:func:`ci95`, :func:`iqr`, :func:`iqr_ratio`, :func:`is_noisy`, :func:`rtf`, :func:`as_float`,
:func:`fmt_num`, :func:`fmt_count`, :func:`fmt_bytes`, :data:`PairedCell`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from tabulate import tabulate

from runstore.records import CellRecord

PYTORCH = "pytorch"
ORT = "onnxruntime"
RUNTIME_LABELS = {PYTORCH: "PyTorch", ORT: "ONNX Runtime"}
SHORT_LABELS = {PYTORCH: "PT", ORT: "ORT"}
MISSING = "—"  # a runtime that has no record for this cell at all
NOISY_IQR_RATIO = 0.10  # torch.utils.benchmark's "this is noisy" threshold, IQR / median
NON_SCALAR_FIELDS = ("latency_samples_s", "round_medians_s", "extra")
SIZE_FIELDS = ("params_total", "params_unique", "params_used", "model_bytes", "onnx_bytes")


# --------------------------------------------------------------------------- cell accessors


def is_ok(cell: Mapping[str, Any] | None) -> bool:
    """A cell whose median can be used: status ``ok`` *and* a median (a half-written record is not)."""
    return bool(cell) and cell.get("status") == "ok" and as_float(cell.get("latency_median_s")) is not None


def as_float(value: Any) -> float | None:
    """A finite float, or None: JSON ``null``, NaN and strings never reach arithmetic."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def ci95(cell: Mapping[str, Any]) -> tuple[float, float] | None:
    """The 95% CI of the median as recorded by the harness, or None when it was not computed."""
    low, high = as_float(cell.get("latency_ci95_low_s")), as_float(cell.get("latency_ci95_high_s"))
    if low is None or high is None:
        return None
    return (low, high)


def iqr(cell: Mapping[str, Any]) -> float | None:
    """The IQR of the latency samples: the recorded one, else recomputed from the raw samples."""
    recorded = as_float(cell.get("latency_iqr_s"))
    if recorded is not None:
        return recorded
    samples = [s for s in (as_float(x) for x in cell.get("latency_samples_s") or []) if s is not None]
    if len(samples) < 2:
        return None
    q75, q25 = np.percentile(samples, [75, 25])
    return float(q75 - q25)


def iqr_ratio(cell: Mapping[str, Any]) -> float | None:
    """IQR / median: the relative spread torch.utils.benchmark calls noisy above 10%."""
    spread, median = iqr(cell), as_float(cell.get("latency_median_s"))
    if spread is None or not median:
        return None
    return spread / median


def is_noisy(cell: Mapping[str, Any]) -> bool:
    """Flagged noisy by the harness, or IQR/median above 10% when the flag is missing."""
    if cell.get("latency_noisy") is True:
        return True
    ratio = iqr_ratio(cell)
    return ratio is not None and ratio > NOISY_IQR_RATIO


def rtf(cell: Mapping[str, Any]) -> float | None:
    """Real-time factor: the recorded one, else median / (batch × duration) as the contract defines."""
    recorded = as_float(cell.get("rtf"))
    if recorded is not None:
        return recorded
    median = as_float(cell.get("latency_median_s"))
    audio = (as_float(cell.get("batch_size")) or 0) * (as_float(cell.get("duration_s")) or 0)
    return median / audio if median is not None and audio > 0 else None


# --------------------------------------------------------------------------- formatting


def fmt_num(value: float | None) -> str:
    """About three significant digits without exponents for the everyday range, '' for null."""
    v = as_float(value)
    if v is None:
        return ""
    a = abs(v)
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a == 0:
        return "0"
    return f"{v:#.3g}"  # '#' keeps trailing zeros: 0.390, not 0.39


def _scaled(value: float, steps: Iterable[tuple[float, str]]) -> tuple[float, str]:
    for factor, unit in steps:
        if abs(value) >= factor:
            return value / factor, unit
    return value, ""


def fmt_count(value: Any) -> str:
    """A count (parameters, MACs) with a decimal prefix and two decimals: ``94.37 M``."""
    v = as_float(value)
    if v is None:
        return ""
    scaled, unit = _scaled(v, ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")))
    return f"{scaled:.2f} {unit}".rstrip() if unit else f"{int(v)}"


def fmt_bytes(value: Any) -> str:
    """Bytes with decimal (SI) units and three significant digits: ``361 MB``, ``1.26 GB``."""
    v = as_float(value)
    if v is None:
        return ""
    scaled, unit = _scaled(v, ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")))
    if not unit:
        return f"{int(v)} B"
    digits = 0 if abs(scaled) >= 100 else 1 if abs(scaled) >= 10 else 2
    return f"{scaled:.{digits}f} {unit}"


def _fmt_duration(seconds: Any) -> str:
    """Durations as the user typed them: 1, 2, 0.5 (not 1.00)."""
    v = as_float(seconds)
    return "" if v is None else f"{v:g}"


def _fmt_ms(seconds: float | None) -> str:
    return fmt_num(None if seconds is None else seconds * 1e3)


# --------------------------------------------------------------------------- pairing


@dataclass(frozen=True)
class PairedCell:
    """One row of the comparison: the same model and input under PyTorch and ONNX Runtime.

    ``pt``/``ort`` are None when that runtime has no record for this cell.  Cells pair on model,
    variant, threads, batch size and duration; providers are listed per runtime (a PyTorch CPU
    run is compared with every ONNX Runtime execution provider of the same setup).
    """

    model: str
    batch_size: int
    duration_s: float
    variant: Any
    threads: Any
    pt_provider: Any
    ort_provider: Any
    pt: dict | None
    ort: dict | None

    @property
    def setup(self) -> tuple:
        """What separates groups of rows that must not be mixed."""
        return (self.variant, self.threads, self.pt_provider, self.ort_provider)


def _sort_num(value: Any) -> float:
    v = as_float(value)
    return v if v is not None else math.inf


def pair_cells(cells: Iterable[Mapping[str, Any]]) -> list[PairedCell]:
    """PyTorch and ONNX Runtime records of the same cell side by side, grouped by setup.

    Rows come out by setup (first seen), then model (first seen: the suite's order), then batch
    size and duration ascending.  Records of other runtimes are left out.
    """
    groups: dict[tuple, dict[str, dict[Any, dict[tuple, dict]]]] = {}
    model_order: dict[str, int] = {}
    for cell in cells:
        runtime = cell.get("runtime")
        if runtime not in (PYTORCH, ORT):
            continue
        model_order.setdefault(cell.get("model"), len(model_order))
        group = groups.setdefault((cell.get("model"), cell.get("variant"), cell.get("threads")),
                                  {PYTORCH: {}, ORT: {}})
        shape = (cell.get("batch_size"), cell.get("duration_s"))
        group[runtime].setdefault(cell.get("provider"), {})[shape] = dict(cell)

    rows: list[PairedCell] = []
    for (model, variant, threads), by_runtime in groups.items():
        shapes = sorted({s for provs in by_runtime.values() for p in provs.values() for s in p},
                        key=lambda s: (_sort_num(s[0]), _sort_num(s[1])))
        for ptp in list(by_runtime[PYTORCH]) or [None]:
            for ortp in list(by_runtime[ORT]) or [None]:
                for b, d in shapes:
                    rows.append(PairedCell(
                        model, b, d, variant, threads, ptp, ortp,
                        by_runtime[PYTORCH].get(ptp, {}).get((b, d)),
                        by_runtime[ORT].get(ortp, {}).get((b, d))))
    setup_order: dict[tuple, int] = {}
    for row in rows:
        setup_order.setdefault(row.setup, len(setup_order))
    return sorted(rows, key=lambda r: (setup_order[r.setup], model_order[r.model],
                                       _sort_num(r.batch_size), _sort_num(r.duration_s)))


def speedup(pt: Mapping[str, Any] | None, ort: Mapping[str, Any] | None) -> float | None:
    """PyTorch median / ONNX Runtime median: above 1 means ONNX Runtime is faster."""
    if not (is_ok(pt) and is_ok(ort)):
        return None
    ort_median = as_float(ort["latency_median_s"])
    return as_float(pt["latency_median_s"]) / ort_median if ort_median else None


def paired_ci(ort: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The 95% CI of the speed-up from interleaved rounds (on the ONNX Runtime record), if any."""
    if not is_ok(ort):
        return None
    low, high = as_float(ort.get("speedup_ci95_low")), as_float(ort.get("speedup_ci95_high"))
    return (low, high) if low is not None and high is not None else None


def compare_medians(pt: Mapping[str, Any] | None, ort: Mapping[str, Any] | None) -> str | None:
    """``faster``/``slower`` (ONNX Runtime vs PyTorch) when significant, ``same`` when not,
    ``no-ci`` when there is nothing to test, None when not both ok.

    Interleaved runs carry a CI of the speed-up from paired rounds: significant when it excludes
    1.  Otherwise (grouped runs, older records) the 95% CIs of the two medians must not overlap.
    """
    if not (is_ok(pt) and is_ok(ort)):
        return None
    paired = paired_ci(ort)
    if paired is not None:
        return "faster" if paired[0] > 1 else "slower" if paired[1] < 1 else "same"
    pt_ci, ort_ci = ci95(pt), ci95(ort)
    if pt_ci is None or ort_ci is None:
        return "no-ci"
    if ort_ci[1] < pt_ci[0]:
        return "faster"
    if ort_ci[0] > pt_ci[1]:
        return "slower"
    return "same"


# --------------------------------------------------------------------------- comparison table


def _spread_kind(cells: Iterable[Mapping[str, Any]]) -> str | None:
    """One spread for the whole table so the header can say which: the CI when any cell has it."""
    ok = [c for c in cells if is_ok(c)]
    if any(ci95(c) for c in ok):
        return "95% CI"
    if any(iqr(c) is not None for c in ok):
        return "IQR"
    return None


def _latency_text(cell: Mapping[str, Any] | None, spread: str | None) -> str:
    """Median in ms with its spread; the status for a failed cell; a dash for an absent one."""
    if cell is None:
        return MISSING
    if not is_ok(cell):
        return str(cell.get("status") or "error")
    text = _fmt_ms(as_float(cell["latency_median_s"]))
    if spread == "95% CI" and (interval := ci95(cell)):
        text += f" [{_fmt_ms(interval[0])}, {_fmt_ms(interval[1])}]"
    elif spread == "IQR" and (width := iqr(cell)) is not None:
        text += f" (IQR {_fmt_ms(width)})"
    return text


def _speedup_text(row: PairedCell) -> str:
    value = speedup(row.pt, row.ort)
    if value is None:
        return MISSING if row.pt is None or row.ort is None else ""
    mark = "~" if compare_medians(row.pt, row.ort) == "same" else ""
    drift = " drift" if any(c and c.get("drift") is True for c in (row.pt, row.ort)) else ""
    paired = paired_ci(row.ort)
    interval = f" [{paired[0]:.2f}, {paired[1]:.2f}]" if paired else ""
    return f"{mark}{value:.2f}×{interval}{drift}"


def _shared_value(row: PairedCell, key: str) -> Any:
    """A per-input quantity (MACs) that either runtime's record may carry."""
    for cell in (row.ort, row.pt):
        if cell and as_float(cell.get(key)) is not None:
            return cell.get(key)
    return None


def _per_runtime(key: str, fmt: Callable[[Any], str]) -> Callable[[Mapping[str, Any] | None], str]:
    """A column getter that leaves failed and absent cells blank (their status is shown once)."""
    def get(cell: Mapping[str, Any] | None) -> str:
        if not is_ok(cell):
            return ""
        return fmt(cell.get(key))
    return get


OPTIONAL_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    # (header, record field, formatter): per-runtime columns, shown only when some value is non-null
    ("GFLOP/s", "achieved_flops_per_s", lambda v: fmt_num(None if as_float(v) is None else as_float(v) / 1e9)),
    ("peak mem", "peak_memory_bytes", fmt_bytes),
    ("J/inference", "energy_j", fmt_num),
)


def _setup_label(row: PairedCell, varying: list[int]) -> str:
    names = ("variant", "threads", "PT provider", "ORT provider")
    parts = []
    for i in varying:
        value = row.setup[i]
        if value is None:
            continue
        parts.append(f"{value} thr" if names[i] == "threads" else f"{value}")
    return " · ".join(parts) if parts else MISSING


def comparison_table(cells: Iterable[Mapping[str, Any]], fmt: str = "simple",
                     legend: bool = True) -> str:
    """The runtime comparison: per model and cell, PyTorch vs ONNX Runtime, as tabulate text.

    Columns: median latency (ms) with its spread (the header names the 95% CI of the median, or
    the IQR when no record has a CI), speed-up (PyTorch / ONNX Runtime, ``~`` when the two 95% CIs
    overlap), RTF per runtime; then MACs, achieved GFLOP/s, peak memory and energy per inference
    where at least one record carries them.  A failed cell shows its status, an absent one ``—``.
    Several variants/threads/providers in one run get a ``setup`` column instead of being mixed.
    """
    cells = list(cells)
    rows = pair_cells(cells)
    if not rows:
        return "(no PyTorch or ONNX Runtime cells)"
    spread = _spread_kind(cells)
    suffix = f" [{spread}]" if spread == "95% CI" else f" ({spread})" if spread else ""

    # a runtime absent for some model (setup value None) is shown by its dashes, not a new group
    varying = [i for i in range(4) if len({r.setup[i] for r in rows} - {None}) > 1]
    headers: list[str] = (["setup"] if varying else []) + [
        "model", "batch", "dur s", f"PT median ms{suffix}", f"ORT median ms{suffix}",
        "speed-up PT/ORT", "RTF PT", "RTF ORT"]
    table: list[list[str]] = []
    for row in rows:
        line = [_setup_label(row, varying)] if varying else []
        line += [str(row.model), str(row.batch_size), _fmt_duration(row.duration_s),
                 _latency_text(row.pt, spread), _latency_text(row.ort, spread), _speedup_text(row),
                 fmt_num(rtf(row.pt)) if is_ok(row.pt) else "",
                 fmt_num(rtf(row.ort)) if is_ok(row.ort) else ""]
        table.append(line)

    extra_headers, extra_columns = _optional_columns(rows)
    headers += extra_headers
    for line, column_values in zip(table, extra_columns):
        line += column_values

    n_left = (1 if varying else 0) + 1
    colalign = ["left"] * n_left + ["right"] * (len(headers) - n_left)
    text = tabulate(table, headers=headers, tablefmt=fmt, disable_numparse=True, colalign=colalign)
    if legend:
        text += "\n\n" + _legend(spread)
    return text


def _optional_columns(rows: list[PairedCell]) -> tuple[list[str], list[list[str]]]:
    """MACs and the per-runtime extras, keeping only columns with at least one value."""
    candidates: list[tuple[str, list[str]]] = [
        ("MACs", [fmt_count(_shared_value(r, "macs")) for r in rows])]
    for header, key, fmt in OPTIONAL_COLUMNS:
        getter = _per_runtime(key, fmt)
        for runtime in (PYTORCH, ORT):
            values = [getter(r.pt if runtime == PYTORCH else r.ort) for r in rows]
            candidates.append((f"{header} {SHORT_LABELS[runtime]}", values))
    kept = [(h, v) for h, v in candidates if any(x for x in v)]
    headers = [h for h, _ in kept]
    per_row = [[v[i] for _, v in kept] for i in range(len(rows))]
    return headers, per_row


def _legend(spread: str | None) -> str:
    what = {"95% CI": "[low, high] is the 95% confidence interval of the median",
            "IQR": "IQR is the interquartile range of the samples"}.get(spread, "no spread recorded")
    return "\n".join([
        f"Latency in ms, median of the timed repetitions; {what}.",
        "speed-up = PyTorch median / ONNX Runtime median (above 1: ONNX Runtime faster); "
        "[low, high] after it = 95% CI of the speed-up from interleaved rounds (ORDER=interleaved); "
        "~ = not significant (that CI contains 1, or without it the two medians' 95% CIs overlap); "
        "drift = the canary moved during the cell (see the noisy cells).",
        f"RTF = median latency / (batch × duration); {MISSING} = no record for that runtime."])


# --------------------------------------------------------------------------- summary.csv


def summary_columns(cells: Iterable[Mapping[str, Any]]) -> list[str]:
    """The record's scalar fields in schema order, then any other scalar keys found, sorted.

    Unknown keys (a newer writer's fields, a runner's ``extra``) get their own columns so nothing
    scalar is lost; the raw samples list and nested dicts are left out.
    """
    base = [f.name for f in fields(CellRecord) if f.name not in NON_SCALAR_FIELDS]
    others: set[str] = set()
    for cell in cells:
        for key, value in _flat_items(cell):
            if key not in base and _is_scalar(value):
                others.add(key)
    return base + sorted(others)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _flat_items(cell: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """Top-level keys, with the ``extra`` dict's keys lifted (``extra.<key>`` on a name clash)."""
    for key, value in cell.items():
        if key == "extra" and isinstance(value, Mapping):
            for k, v in value.items():
                yield (k if k not in cell else f"extra.{k}"), v
        elif key not in NON_SCALAR_FIELDS:
            yield key, value


def write_summary_csv(cells: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """One row per cell with every scalar field, stable column order; null is an empty field."""
    cells = list(cells)
    columns = summary_columns(cells)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for cell in cells:
            flat = {k: v for k, v in _flat_items(cell) if _is_scalar(v)}
            writer.writerow({k: ("" if flat.get(k) is None else flat[k]) for k in columns})
    return path


# --------------------------------------------------------------------------- parameters


def model_sizes(source: Any) -> dict[str, dict[str, Any]]:
    """Per-model size fields from cells, a ``{model: entry}`` dict, or a manifest ``{"models": ...}``.

    From cells the first non-null value per model and field wins (every cell of a model carries
    the same counts; a failed cell may carry none).
    """
    if isinstance(source, Mapping):
        entries = source.get("models", source)
        if isinstance(entries, Mapping):
            items = [({"model": name} | dict(e)) for name, e in entries.items() if isinstance(e, Mapping)]
        else:
            items = [dict(e) for e in entries if isinstance(e, Mapping)]
    else:
        items = [dict(e) for e in source if isinstance(e, Mapping)]
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        row = out.setdefault(str(item.get("model")), {})
        for key in SIZE_FIELDS:
            if row.get(key) is None and as_float(item.get(key)) is not None:
                row[key] = item[key]
    return out


def params_table(cells_or_manifest: Any, fmt: str = "simple") -> str:
    """Per model: total / unique / used parameters, PyTorch and ONNX sizes, human-readable."""
    rows = model_sizes(cells_or_manifest)
    if not rows:
        return "(no parameter counts recorded)"
    headers = ["model", "params total", "params unique", "params used", "model size", "ONNX size"]
    table = [[model, fmt_count(r.get("params_total")), fmt_count(r.get("params_unique")),
              fmt_count(r.get("params_used")), fmt_bytes(r.get("model_bytes")),
              fmt_bytes(r.get("onnx_bytes"))] for model, r in rows.items()]
    return tabulate(table, headers=headers, tablefmt=fmt, disable_numparse=True,
                    colalign=["left"] + ["right"] * 5)


# --------------------------------------------------------------------------- variants


def _reference(cells: list[Mapping[str, Any]], cell: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The fp32 PyTorch cell of the same model, input and threads: every variant's yardstick."""
    for c in cells:
        if (c.get("runtime") == "pytorch" and c.get("variant") == "fp32" and is_ok(c)
                and c.get("model") == cell.get("model") and c.get("batch_size") == cell.get("batch_size")
                and c.get("duration_s") == cell.get("duration_s") and c.get("threads") == cell.get("threads")):
            return c
    return None


def has_variants(cells: Iterable[Mapping[str, Any]]) -> bool:
    return any(c.get("variant", "fp32") != "fp32" for c in cells)


def variants_table(cells: Iterable[Mapping[str, Any]], fmt: str = "simple") -> str:
    """Variants grouped under their model and runtime: median latency, speed-up against fp32
    PyTorch measured in the same run, and the output's distance from fp32 PyTorch (max abs
    error, cosine of the last hidden state), so a fast but wrong variant shows."""
    cells = list(cells)
    order = {"pytorch": 0, "onnxruntime": 1}
    models = list(dict.fromkeys(c.get("model") for c in cells))
    rows = []
    for c in sorted(cells, key=lambda c: (models.index(c.get("model")), _sort_num(c.get("batch_size")),
                                          _sort_num(c.get("duration_s")), _sort_num(c.get("threads")),
                                          order.get(c.get("runtime"), 9), str(c.get("provider")),
                                          str(c.get("variant")))):
        ref = _reference(cells, c)
        ok = is_ok(c)
        speed = (as_float(ref.get("latency_median_s")) / as_float(c.get("latency_median_s"))
                 if ok and ref and as_float(c.get("latency_median_s")) else None)
        err, cos = as_float(c.get("output_max_abs_err")), as_float(c.get("output_cosine"))
        rows.append([
            c.get("model"), c.get("runtime"), c.get("provider"), c.get("variant"), c.get("threads"),
            c.get("batch_size"), _fmt_duration(c.get("duration_s")),
            _fmt_ms(as_float(c.get("latency_median_s"))) if ok else c.get("status"),
            f"{speed:.2f}×" if speed else "—",
            "—" if err is None else f"{err:.2e}", "—" if cos is None else f"{cos:.6f}",
        ])
    headers = ["model", "runtime", "provider", "variant", "threads", "batch", "dur s", "median ms",
               "speed-up vs fp32 PyTorch", "max abs err", "cosine"]
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)
