"""Tables of a run: the runtime comparison (PyTorch vs ONNX Runtime by default, or every runtime
of the run against ``SPEEDUP_BASE``), ``summary.csv`` and the parameters.

Everything here reads typed cell records (as :func:`report.run_report.load_cells` returns them) so
a Pi's ``cells.jsonl`` copied to a laptop gives the same tables there.  The cell accessors, the
pairing of the runtimes' cells and the significance test on two medians live
in :mod:`report.cells`, shared with the discussion and the plots: one definition, one answer.
This module only formats and lays them out.

Public API: :func:`comparison_table`, :func:`write_summary_csv`, :func:`summary_columns`,
:func:`params_table`, :func:`variants_table`, :func:`has_variants`, :func:`fmt_num`,
:func:`fmt_count`, :func:`fmt_bytes`.
"""

from __future__ import annotations

import csv
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from tabulate import tabulate

from report.cells import (
    MEDIANS,
    ORT,
    PAIRED,
    PairedCell,
    as_float,
    ci95,
    compare_medians,
    estimator_legend,
    iqr,
    is_ok,
    pair_cells,
    rtf,
    runtime_label,
    short_label,
    sizes_with_manifest,
    sort_num,
    speedup_base,
    speedup_estimate,
)
from runstore.records import RUNTIMES, CellRecord

MISSING = "—"  # a runtime that has no record for this cell at all
NON_SCALAR_FIELDS = ("latency_samples_s", "round_medians_s", "extra")


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


# --------------------------------------------------------------------------- comparison table


def _spread_kind(cells: Iterable[CellRecord]) -> str | None:
    """One spread for the whole table so the header can say which: the CI when any cell has it."""
    ok = [c for c in cells if is_ok(c)]
    if any(ci95(c) for c in ok):
        return "95% CI"
    if any(iqr(c) is not None for c in ok):
        return "IQR"
    return None


def _latency_text(cell: CellRecord | None, spread: str | None) -> str:
    """Median in ms with its spread; the status for a failed cell; a dash for an absent one."""
    if cell is None:
        return MISSING
    if not is_ok(cell):
        return str(cell.status or "error")
    text = _fmt_ms(as_float(cell.latency_median_s))
    if spread == "95% CI" and (interval := ci95(cell)):
        text += f" [{_fmt_ms(interval[0])}, {_fmt_ms(interval[1])}]"
    elif spread == "IQR" and (width := iqr(cell)) is not None:
        text += f" (IQR {_fmt_ms(width)})"
    return text


def _speedup_text(row: PairedCell, other: str) -> str:
    """The speed-up base / ``other`` with the 95% CI that belongs to it (see
    :func:`report.cells.speedup_estimate`)."""
    base_cell, other_cell = row.base_cell, row.cell(other)
    found = speedup_estimate(base_cell, other_cell)
    if found is None:
        return MISSING if base_cell is None or other_cell is None else ""
    mark = "~" if compare_medians(base_cell, other_cell) == "same" else ""
    drift = " drift" if any(c and c.drift is True for c in (base_cell, other_cell)) else ""
    interval = f" [{found.ci[0]:.2f}, {found.ci[1]:.2f}]" if found.ci else ""
    return f"{mark}{found.value:.2f}×{interval}{drift}"


def _shared_macs(row: PairedCell) -> int | None:
    """MACs, a per-input quantity that any runtime's record may carry (ONNX Runtime's first:
    they are counted on its graph)."""
    for runtime in sorted(row.runtimes, key=lambda r: r != ORT):
        cell = row.cell(runtime)
        if cell and as_float(cell.macs) is not None:
            return cell.macs
    return None


def _per_runtime(value: Callable[[CellRecord], Any],
                 fmt: Callable[[Any], str]) -> Callable[[CellRecord | None], str]:
    """A column getter that leaves failed and absent cells blank (their status is shown once)."""
    def get(cell: CellRecord | None) -> str:
        if cell is None or not is_ok(cell):
            return ""
        return fmt(value(cell))
    return get


def _gflops(value: Any) -> str:
    v = as_float(value)
    return fmt_num(None if v is None else v / 1e9)


OPTIONAL_COLUMNS: tuple[tuple[str, Callable[[CellRecord], Any], Callable[[Any], str]], ...] = (
    # (header, record field, formatter): per-runtime columns, shown only when some value is non-null
    ("GFLOP/s", lambda c: c.achieved_flops_per_s, _gflops),
    ("peak mem", lambda c: c.peak_memory_bytes, fmt_bytes),
    ("J/inference", lambda c: c.energy_j, fmt_num),
)


def _setup_label(row: PairedCell, varying: list[int]) -> str:
    """The parts of the row's setup that vary in the table: variant, threads, providers."""
    parts = []
    for i in varying:
        value = row.setup[i]
        if value is None:
            continue
        parts.append(f"{value} thr" if i == 1 else f"{value}")
    return " · ".join(parts) if parts else MISSING


def comparison_table(cells: Iterable[CellRecord], fmt: str = "simple",
                     legend: bool = True, base: str | None = None) -> str:
    """The runtime comparison: per model and cell, every runtime of the run side by side, the
    base (``SPEEDUP_BASE``, recorded in the cells; PyTorch by default) first, as tabulate text.

    Columns: each runtime's median latency (ms) with its spread (the header names the 95% CI of
    the median, or the IQR when no record has a CI); a speed-up per runtime other than the base
    (base / that runtime: the paired median ratio with its 95% CI when the rounds were
    interleaved, else the ratio of the medians; ``~`` when not significant); RTF per runtime; then
    MACs, achieved GFLOP/s, peak memory and energy per inference where at least one record carries
    them.  A failed cell shows its status, an absent one ``—``.  Several variants/threads/providers
    in one run get a ``setup`` column instead of being mixed.  The default run (PyTorch, ONNX
    Runtime) reads ``PT median ms``, ``ORT median ms``, ``speed-up PT/ORT``, ``RTF PT``, ``RTF ORT``.
    """
    cells = list(cells)
    rows = pair_cells(cells, base or speedup_base(cells))
    if not rows:
        return "(no PyTorch or ONNX Runtime cells)"
    runtimes = rows[0].runtimes
    spread = _spread_kind(cells)
    suffix = f" [{spread}]" if spread == "95% CI" else f" ({spread})" if spread else ""

    # a runtime absent for some model (setup value None) is shown by its dashes, not a new group
    varying = [i for i in range(len(rows[0].setup)) if len({r.setup[i] for r in rows} - {None}) > 1]
    base_short = short_label(runtimes[0])
    headers: list[str] = (["setup"] if varying else []) + [
        "model", "batch", "dur s", *(f"{short_label(r)} median ms{suffix}" for r in runtimes),
        *(f"speed-up {base_short}/{short_label(r)}" for r in runtimes[1:]),
        *(f"RTF {short_label(r)}" for r in runtimes)]
    table: list[list[str]] = []
    for row in rows:
        line = [_setup_label(row, varying)] if varying else []
        line += [str(row.model), str(row.batch_size), _fmt_duration(row.duration_s),
                 *(_latency_text(c, spread) for c in row.cells),
                 *(_speedup_text(row, r) for r in row.others),
                 *(fmt_num(rtf(c)) if is_ok(c) else "" for c in row.cells)]
        table.append(line)

    extra_headers, extra_columns = _optional_columns(rows)
    headers += extra_headers
    for line, column_values in zip(table, extra_columns):
        line += column_values

    n_left = (1 if varying else 0) + 1
    colalign = ["left"] * n_left + ["right"] * (len(headers) - n_left)
    text = tabulate(table, headers=headers, tablefmt=fmt, disable_numparse=True, colalign=colalign)
    if legend:
        estimators = [e.estimator for r in rows for o in r.others
                      if (e := speedup_estimate(r.base_cell, r.cell(o))) is not None]
        text += "\n\n" + _legend(spread, estimators, runtimes)
    return text


def _optional_columns(rows: list[PairedCell]) -> tuple[list[str], list[list[str]]]:
    """MACs and the per-runtime extras, keeping only columns with at least one value."""
    candidates: list[tuple[str, list[str]]] = [
        ("MACs", [fmt_count(_shared_macs(r)) for r in rows])]
    for header, value, fmt in OPTIONAL_COLUMNS:
        getter = _per_runtime(value, fmt)
        for runtime in rows[0].runtimes if rows else ():
            values = [getter(r.cell(runtime)) for r in rows]
            candidates.append((f"{header} {short_label(runtime)}", values))
    kept = [(h, v) for h, v in candidates if any(x for x in v)]
    headers = [h for h, _ in kept]
    per_row = [[v[i] for _, v in kept] for i in range(len(rows))]
    return headers, per_row


def _legend(spread: str | None, estimators: list[str], runtimes: tuple[str, ...]) -> str:
    """The legend under the table: what the spread is, and which estimate the speed-up is (one
    other runtime: named; several: ``X`` stands for each)."""
    what = {"95% CI": "[low, high] is the 95% confidence interval of the median",
            "IQR": "IQR is the interquartile range of the samples"}.get(spread or "", "no spread recorded")
    base = runtime_label(runtimes[0])
    if len(runtimes) == 1:
        speed = f"no speed-up: one runtime ({base})"
    elif len(runtimes) == 2:
        other = runtime_label(runtimes[1])
        speed = f"speed-up = {estimator_legend(estimators or [MEDIANS], base, other)} (above 1: {other} faster)"
    else:
        named = ", ".join(f"{short_label(r)} = {runtime_label(r)}" for r in runtimes)
        speed = (f"speed-up {short_label(runtimes[0])}/X = {estimator_legend(estimators or [MEDIANS], base, 'X')}, "
                 f"for each runtime X against {base}, the base (SPEEDUP_BASE; above 1: X faster; {named})")
    if PAIRED in estimators:
        speed += ("; [low, high] after it = the 95% CI of that paired median ratio, from the same "
                  "interleaved rounds (ORDER=interleaved)")
    tests = (["the paired CI contains 1"] if PAIRED in estimators else []) + (
        ["the two medians' 95% CIs overlap"] if MEDIANS in estimators or not estimators else [])
    return "\n".join([
        f"Latency in ms, median of the timed repetitions; {what}.",
        f"{speed}; ~ = not significant ({', or without paired rounds '.join(tests)}); "
        "drift = the canary moved during the cell (see the noisy cells).",
        f"RTF = median latency / (batch × duration); {MISSING} = no record for that runtime."])


# --------------------------------------------------------------------------- summary.csv


def summary_columns(cells: Iterable[CellRecord]) -> list[str]:
    """The record's scalar fields in schema order, then any other scalar keys found, sorted.

    Unknown keys (a newer writer's fields, a runner's ``extra``) get their own columns so nothing
    scalar is lost; the raw samples list and nested dicts are left out.
    """
    base = [f.name for f in fields(CellRecord) if f.name not in NON_SCALAR_FIELDS]
    others: set[str] = set()
    for cell in cells:
        for key, value in _flat_items(cell.to_dict()):
            if key not in base and _is_scalar(value):
                others.add(key)
    return base + sorted(others)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _flat_items(cell: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Top-level keys of a record's :meth:`~runstore.records.CellRecord.to_dict` (the one place
    the summary reads a record by field name), with the ``extra`` dict's keys lifted
    (``extra.<key>`` on a name clash)."""
    for key, value in cell.items():
        if key == "extra" and isinstance(value, Mapping):
            for k, v in value.items():
                yield (k if k not in cell else f"extra.{k}"), v
        elif key not in NON_SCALAR_FIELDS:
            yield key, value


def write_summary_csv(cells: Iterable[CellRecord], path: str | Path) -> Path:
    """One row per cell with every scalar field, stable column order; null is an empty field."""
    cells = list(cells)
    columns = summary_columns(cells)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for cell in cells:
            flat = {k: v for k, v in _flat_items(cell.to_dict()) if _is_scalar(v)}
            writer.writerow({k: ("" if flat.get(k) is None else flat[k]) for k in columns})
    return path


# --------------------------------------------------------------------------- parameters


def params_table(cells: Iterable[CellRecord], fmt: str = "simple", manifest: Any = None) -> str:
    """Per model: total / unique / used parameters, PyTorch and ONNX sizes, human-readable.

    From the cells, the run's per-model ``manifest`` (``run.json`` ``models``) filling the gaps.
    """
    rows = sizes_with_manifest(cells, manifest)
    if not rows:
        return "(no parameter counts recorded)"
    headers = ["model", "params total", "params unique", "params used", "model size", "ONNX size"]
    table = [[model, fmt_count(r.get("params_total")), fmt_count(r.get("params_unique")),
              fmt_count(r.get("params_used")), fmt_bytes(r.get("model_bytes")),
              fmt_bytes(r.get("onnx_bytes"))] for model, r in rows.items()]
    return tabulate(table, headers=headers, tablefmt=fmt, disable_numparse=True,
                    colalign=["left"] + ["right"] * 5)


# --------------------------------------------------------------------------- variants


def _reference(cells: list[CellRecord], cell: CellRecord) -> CellRecord | None:
    """The fp32 PyTorch cell of the same model, input and threads: every variant's yardstick."""
    for c in cells:
        if (c.runtime == "pytorch" and c.variant == "fp32" and is_ok(c)
                and c.model == cell.model and c.batch_size == cell.batch_size
                and c.duration_s == cell.duration_s and c.threads == cell.threads):
            return c
    return None


def has_variants(cells: Iterable[CellRecord]) -> bool:
    return any(c.variant != "fp32" for c in cells)


def variants_table(cells: Iterable[CellRecord], fmt: str = "simple") -> str:
    """Variants grouped under their model and runtime: median latency, speed-up against fp32
    PyTorch measured in the same run, and the output's distance from fp32 PyTorch (max abs
    error, cosine of the last hidden state), so a fast but wrong variant shows."""
    cells = list(cells)
    order = {runtime: i for i, runtime in enumerate(RUNTIMES)}
    models = list(dict.fromkeys(c.model for c in cells))
    rows = []
    for c in sorted(cells, key=lambda c: (models.index(c.model), sort_num(c.batch_size),
                                          sort_num(c.duration_s), sort_num(c.threads),
                                          order.get(c.runtime, 9), str(c.provider), str(c.variant))):
        ref = _reference(cells, c)
        ok = is_ok(c)
        median, ref_median = as_float(c.latency_median_s), as_float(ref.latency_median_s) if ref else None
        speed = ref_median / median if ok and ref_median is not None and median else None
        err, cos = as_float(c.output_max_abs_err), as_float(c.output_cosine)
        rows.append([
            c.model, c.runtime, c.provider, c.variant, c.threads,
            c.batch_size, _fmt_duration(c.duration_s),
            _fmt_ms(median) if ok else c.status,
            f"{speed:.2f}×" if speed else "—",
            "—" if err is None else f"{err:.2e}", "—" if cos is None else f"{cos:.6f}",
        ])
    headers = ["model", "runtime", "provider", "variant", "threads", "batch", "dur s", "median ms",
               "speed-up vs fp32 PyTorch", "max abs err", "cosine"]
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)
