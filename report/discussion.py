"""The computed discussion: the lab's hypotheses answered from a run's cells, with the numbers.

The lab asks three questions of every run — does latency rank with model size, does ONNX Runtime
(or each runtime of the run, against the base runtime ``SPEEDUP_BASE``) win everywhere or only at
some sizes, where does latency grow faster than linearly — and a
report that answers them in prose written before the data is a report that can be wrong.  So
every sentence here is built from the cells: a statistic, the models it covers, and a wording
chosen by thresholds on that statistic.

Statistics: Spearman's rank correlation and average ranks for ties from ``scipy.stats``
(``spearmanr``, ``rankdata``; ``make compare`` ranks with the same library), and a least-squares
slope in log-log space.  The noise threshold is :mod:`runstore.verdict`'s.

Public API: :func:`discussion` (the Markdown section), :func:`spearman`, :func:`ranks`,
:func:`loglog_slope`, :func:`growth_slopes`, :func:`rank_correlations`,
:func:`runtime_verdicts`, :func:`all_runtime_verdicts`, :func:`noisy_cells`, :data:`Slope`,
:data:`Correlation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
from scipy import stats
from tabulate import tabulate

from report.cells import (
    NOISY_PERCENT,
    ORT,
    PYTORCH,
    PairedCell,
    as_float,
    compare_medians,
    compared_runtimes,
    estimator_legend,
    iqr_ratio,
    is_noisy,
    is_ok,
    manifest_sizes,
    model_sizes,
    pair_cells,
    paired_ci,
    runtime_label,
    speedup_base,
    speedup_estimate,
)
from report.series import SeriesKey, axis_value, reference_point, series_key, series_labels
from runstore.records import CellRecord

SUPERLINEAR = 1.1  # log-log slope above this: latency grows faster than the input
SUBLINEAR = 0.9  # below this: fixed per-call costs still dominate
MAX_LISTED = 8  # cells named per model before "and N more"



# --------------------------------------------------------------------------- statistics


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing the average of the ranks they span (as Spearman requires)."""
    return stats.rankdata(np.asarray(values, dtype=float), method="average")


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho (``scipy.stats.spearmanr``); None when undefined (n < 2, or a side is constant)."""
    if len(x) != len(y):
        raise ValueError(f"spearman: x has {len(x)} values, y has {len(y)}")
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(stats.spearmanr(x, y).statistic)


def loglog_slope(x: Sequence[float | None], y: Sequence[float | None]) -> float | None:
    """Least-squares slope of log y on log x: 1 is linear growth, 2 quadratic; None if < 2 x values."""
    pairs = [(a, b) for a, b in zip(x, y) if a and b and a > 0 and b > 0]
    if len({a for a, _ in pairs}) < 2:
        return None
    lx = np.log([a for a, _ in pairs])
    ly = np.log([b for _, b in pairs])
    return float(np.polyfit(lx, ly, 1)[0])


# --------------------------------------------------------------------------- series


def _by_series(cells: Iterable[CellRecord]) -> dict[SeriesKey, list[CellRecord]]:
    out: dict[SeriesKey, list[CellRecord]] = {}
    for cell in cells:
        out.setdefault(series_key(cell), []).append(cell)
    return out


def _series_at_reference(cells: Iterable[CellRecord]
                         ) -> Iterator[tuple[SeriesKey, list[CellRecord], float, float]]:
    """Each series (runtime configuration) with its reference point (batch, duration); series
    without one are left out."""
    for key, series in _by_series(cells).items():
        point = reference_point(series)
        if point is not None:
            yield key, series, point[0], point[1]


def _models_in_order(cells: Iterable[CellRecord]) -> list[str]:
    return list(dict.fromkeys(str(c.model) for c in cells))


def _at(cells: Iterable[CellRecord], batch: float, duration: float) -> list[CellRecord]:
    return [c for c in cells if as_float(c.batch_size) == batch and as_float(c.duration_s) == duration]


def _median(cell: CellRecord) -> float:
    """The median latency of an ok cell (:func:`report.cells.is_ok` guarantees one)."""
    return _present(cell.latency_median_s, "latency_median_s", cell)


def _energy(cell: CellRecord) -> float:
    """The energy per inference of a cell known to carry one."""
    return _present(cell.energy_j, "energy_j", cell)


def _present(value: float | None, name: str, cell: CellRecord) -> float:
    if value is None:
        raise ValueError(f"{cell.model}/{cell.runtime}: {name} is null where the discussion needs it")
    return float(value)


def _fmt_shape(batch: Any, duration: Any) -> str:
    b = as_float(batch)
    d = as_float(duration)
    return f"batch {int(b) if b is not None and b.is_integer() else b}, {d:g} s"


# --------------------------------------------------------------------------- rank correlation


@dataclass
class Correlation:
    """Spearman's rho between median latency and one size measure, for one series."""

    series: str
    size: str  # "parameters" or "MACs"
    batch: float
    duration: float
    rho: float | None
    models: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    biggest_disagreement: tuple[str, float, float] | None = None  # model, latency rank, size rank


def _param_count(model: str, sizes: Mapping[str, Mapping[str, Any]]) -> tuple[float | None, str]:
    row = sizes.get(model, {})
    for key in ("params_used", "params_total"):
        if as_float(row.get(key)) is not None:
            return as_float(row[key]), key
    return None, ""


def _macs_at(cells: Iterable[CellRecord], model: str, batch: float, duration: float) -> float | None:
    """MACs for this model and input from any runtime's record (they are counted on the graph)."""
    for cell in _at(cells, batch, duration):
        if cell.model == model and (macs := as_float(cell.macs)) is not None:
            return macs
    return None


def merged_sizes(cells: Sequence[CellRecord],
                 models: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Per-model sizes from the run's manifest, overridden by the non-null values the cells carry."""
    sizes = dict(manifest_sizes(models)) if models else {}
    for model, row in model_sizes(cells).items():
        merged = dict(sizes.get(model, {}))
        merged.update({k: v for k, v in row.items() if v is not None})
        sizes[model] = merged
    return sizes


def rank_correlations(cells: Sequence[CellRecord],
                      models: Mapping[str, Any] | None = None) -> list[Correlation]:
    """Per series: rho(latency, parameters) and, when MACs are recorded, rho(latency, MACs)."""
    sizes = merged_sizes(cells, models)
    labels = series_labels(cells)
    out: list[Correlation] = []
    for key, series, batch, duration in _series_at_reference(cells):
        here = {str(c.model): c for c in _at(series, batch, duration) if is_ok(c)}
        all_models = _models_in_order(series)
        for size_name in ("parameters", "MACs"):
            values: dict[str, float] = {}
            for model in here:
                value = (_param_count(model, sizes)[0] if size_name == "parameters"
                         else _macs_at(cells, model, batch, duration))
                if value is not None:
                    values[model] = value
            if not values:  # nothing to correlate with: said once by the caller, not per series
                continue
            names = [m for m in all_models if m in values]
            latency = [_median(here[m]) for m in names]
            size = [values[m] for m in names]
            corr = Correlation(labels[key], size_name, batch, duration, None, names,
                               [m for m in all_models if m not in values])
            if len(names) >= 3:
                corr.rho = spearman(latency, size)
                lr, sr = ranks(latency), ranks(size)
                worst = int(np.argmax(np.abs(lr - sr)))
                if lr[worst] != sr[worst]:
                    corr.biggest_disagreement = (names[worst], float(lr[worst]), float(sr[worst]))
            out.append(corr)
    return out


def _strength(rho: float) -> str:
    a = abs(rho)
    word = "strong" if a >= 0.7 else "moderate" if a >= 0.4 else "weak"
    return f"{word} {'positive' if rho > 0 else 'negative' if rho < 0 else 'zero'}"


def _fmt_rho(rho: float | None) -> str:
    return "undefined" if rho is None else f"{rho:.2f}"


def _strength_or_tie(rho: float | None) -> str:
    """:func:`_strength`, or why there is none (a side whose values all tie has no rank order)."""
    return "all values tie" if rho is None else _strength(rho)


def _param_measure(cells: Sequence[CellRecord], models: Mapping[str, Any] | None) -> str:
    sizes = manifest_sizes(models) if models else {}
    sizes.update({m: r for m, r in model_sizes(cells).items() if any(v is not None for v in r.values())})
    kinds = {_param_count(m, sizes)[1] for m in sizes} - {""}
    if kinds == {"params_used"}:
        return "parameters used in inference"
    if kinds == {"params_total"}:
        return "total parameters"
    return "parameter count (params_used where recorded, else params_total)"


def correlation_sentence(corr: Correlation, measure: str) -> str:
    """One sentence per correlation, wording chosen from rho's size and sign."""
    where = f"{corr.series} at {_fmt_shape(corr.batch, corr.duration)}"
    what = measure if corr.size == "parameters" else "MACs"
    if len(corr.models) < 3:
        text = (f"{where}: too few models for a rank correlation with {what} "
                f"(n = {len(corr.models)}; 3 needed).")
    elif corr.rho is None:
        text = (f"{where}: Spearman's rho with {what} is undefined over {len(corr.models)} models "
                "(all latencies or all sizes tie).")
    else:
        text = (f"{where}: Spearman's rho between median latency and {what} = {corr.rho:.2f} "
                f"over {len(corr.models)} models — a {_strength(corr.rho)} rank correlation.")
        if corr.biggest_disagreement:
            model, lr, sr = corr.biggest_disagreement
            text += (f" Largest rank disagreement: {model} (latency rank {lr:g}, "
                     f"size rank {sr:g} of {len(corr.models)}).")
    if corr.left_out:
        text += f" Left out (no ok cell or no count there): {', '.join(corr.left_out)}."
    return text


# --------------------------------------------------------------------------- runtime verdicts


@dataclass
class RuntimeVerdicts:
    """Paired cells sorted by the significance of one runtime (``other``: ONNX Runtime by default)
    against the base (``base``: ``SPEEDUP_BASE``, PyTorch by default)."""

    faster: list = field(default_factory=list)  # the other runtime significantly faster
    slower: list = field(default_factory=list)
    same: list = field(default_factory=list)  # 95% CIs overlap
    no_ci: list = field(default_factory=list)
    speedups: list = field(default_factory=list)  # (printed speed-up or None, paired cell)
    estimators: list = field(default_factory=list)  # which estimate each printed speed-up is
    base: str = PYTORCH
    other: str = ORT

    @property
    def n(self) -> int:
        return len(self.faster) + len(self.slower) + len(self.same) + len(self.no_ci)

    def setup(self, row: PairedCell) -> tuple:
        """The row's setup as far as this pairing goes: variant, threads, the two providers."""
        return row.setup_of((self.base, self.other))

    def varying(self) -> list[int]:
        """The parts of :meth:`setup` that differ between this pairing's cells."""
        setups = [self.setup(r) for _, r in self.speedups]
        return [i for i in range(4) if len({s[i] for s in setups} - {None}) > 1]


def runtime_verdicts(cells: Iterable[CellRecord], other: str | None = None,
                     base: str | None = None) -> RuntimeVerdicts:
    """Every cell measured ok under both the base runtime (default: the run's, ``SPEEDUP_BASE``)
    and ``other`` (default: the first other compared runtime: ONNX Runtime in the default run),
    classified by ``report.cells.compare_medians`` (the paired speed-up's CI where the rounds were
    interleaved, else non-overlap of the 95% CIs)."""
    cells = list(cells)
    base = base or speedup_base(cells)
    runtimes = compared_runtimes(cells, base)
    other = other or (runtimes[1] if len(runtimes) > 1 else ORT if base != ORT else PYTORCH)
    out = RuntimeVerdicts(base=base, other=other)
    buckets = {"faster": out.faster, "slower": out.slower, "same": out.same, "no-ci": out.no_ci}
    seen: set[tuple[int, int]] = set()
    for row in pair_cells(cells, base):
        base_cell, other_cell = row.base_cell, row.cell(other)
        verdict = compare_medians(base_cell, other_cell)
        # a third runtime under several providers repeats the pair in several rows: counted once
        if verdict is None or (id(base_cell), id(other_cell)) in seen:
            continue
        seen.add((id(base_cell), id(other_cell)))
        buckets[verdict].append(row)
        found = speedup_estimate(base_cell, other_cell)
        out.speedups.append((found.value if found else None, row))
        if found:
            out.estimators.append(found.estimator)
    return out


def all_runtime_verdicts(cells: Iterable[CellRecord]) -> list[RuntimeVerdicts]:
    """:func:`runtime_verdicts` for every runtime compared with the base, in the table's order
    (one in the default run: ONNX Runtime against PyTorch)."""
    cells = list(cells)
    runtimes = compared_runtimes(cells)
    return [runtime_verdicts(cells, other, runtimes[0]) for other in runtimes[1:]] or [runtime_verdicts(cells)]


def _row_label(row: Any, varying: Sequence[int] = (), setup: tuple | None = None) -> str:
    """'batch 1, 2 s', with the parts of the setup that vary in this run appended."""
    text = _fmt_shape(row.batch_size, row.duration_s)
    setup = row.setup if setup is None else setup
    parts = [f"{setup[i]} thr" if i == 1 else str(setup[i]) for i in varying if setup[i] is not None]
    if parts:
        text += f" [{' · '.join(parts)}]"
    return text


def _where(rows: list, with_setup: Sequence[int] = (), verdicts: RuntimeVerdicts | None = None) -> str:
    """'model (batch 1, 1 s; batch 2, 1 s)' per model, capped so a big grid stays readable."""
    per_model: dict[str, list[str]] = {}
    for row in rows:
        setup = verdicts.setup(row) if verdicts is not None else None
        per_model.setdefault(str(row.model), []).append(_row_label(row, with_setup, setup))
    parts = []
    for model, shapes in per_model.items():
        shown = "; ".join(shapes[:MAX_LISTED])
        if len(shapes) > MAX_LISTED:
            shown += f"; and {len(shapes) - MAX_LISTED} more"
        parts.append(f"{model} ({shown})")
    return ", ".join(parts)


def runtime_paragraph(verdicts: RuntimeVerdicts) -> list[str]:
    """Counts, range of speed-ups, and where each outcome happened (the other runtime against the
    base: ONNX Runtime against PyTorch by default)."""
    n = verdicts.n
    base, other = runtime_label(verdicts.base), runtime_label(verdicts.other)
    if n == 0:
        return [f"No cell was measured ok under both {base} and {other}, so the runtimes "
                "cannot be compared in this run."]
    paired = sum(1 for _, row in verdicts.speedups
                 if paired_ci(row.cell(verdicts.other), row.base_cell) is not None)
    test = ("the 95% CI of the speed-up from paired rounds excludes 1" if paired == n else
            "non-overlapping 95% CIs of the median" if paired == 0 else
            f"for {paired} cells the 95% CI of the speed-up from paired rounds excludes 1, for the "
            f"other {n - paired} the two medians' 95% CIs do not overlap")
    lines = [f"Of {n} cells measured ok under both runtimes, {other} was significantly faster "
             f"({test}) in {len(verdicts.faster)}, significantly "
             f"slower in {len(verdicts.slower)} and indistinguishable in {len(verdicts.same)}"
             + (f"; {len(verdicts.no_ci)} had no CI to test" if verdicts.no_ci else "") + "."]
    values = [(s, r) for s, r in verdicts.speedups if s is not None]
    multi = verdicts.varying()
    if values:
        low = min(values, key=lambda v: v[0])
        high = max(values, key=lambda v: v[0])
        gmean = math.exp(sum(math.log(s) for s, _ in values) / len(values))
        lines.append(f"Speed-up ({estimator_legend(verdicts.estimators, base, other)}, as in the table) ranged "
                     f"from {low[0]:.2f}× "
                     f"({low[1].model}, {_row_label(low[1], multi, verdicts.setup(low[1]))}) to {high[0]:.2f}× "
                     f"({high[1].model}, {_row_label(high[1], multi, verdicts.setup(high[1]))}); "
                     f"geometric mean {gmean:.2f}×.")
    if len(verdicts.faster) == n:
        lines.append(f"{other} won in every compared cell.")
    elif not verdicts.faster:
        lines.append(f"{other} was not significantly faster in any cell.")
    else:
        lines.append(f"{other} won significantly in {len(verdicts.faster)} of {n} cells, "
                     "not everywhere.")
    for name, rows in (("Faster", verdicts.faster), ("Slower", verdicts.slower),
                       ("Indistinguishable", verdicts.same)):
        if rows and len(rows) < n:
            lines.append(f"{name} under {other}: {_where(rows, multi, verdicts)}.")
    return lines


def runtimes_paragraphs(cells: Sequence[CellRecord]) -> tuple[str, list[str]]:
    """The discussion's runtime subsection: its heading and its bullet lines.  One runtime against
    the base (the default run): "Does ONNX Runtime win everywhere?" and its paragraph; several: a
    paragraph per runtime, each led by "X against <base>"."""
    all_verdicts = all_runtime_verdicts(cells)
    if len(all_verdicts) == 1:
        verdicts = all_verdicts[0]
        return (f"Does {runtime_label(verdicts.other)} win everywhere?",
                [f"- {line}" for line in runtime_paragraph(verdicts)])
    base = runtime_label(all_verdicts[0].base)
    lines = []
    for verdicts in all_verdicts:
        lines.append(f"- **{runtime_label(verdicts.other)} against {base}:**")
        lines += [f"  - {line}" for line in runtime_paragraph(verdicts)]
    return f"Does each runtime win everywhere against {base} (the base)?", lines


# --------------------------------------------------------------------------- growth


@dataclass
class Slope:
    """The log-log slope of median latency against one input axis for one model and series."""

    model: str
    series: str
    axis: str  # "duration_s" or "batch_size"
    slope: float
    n_points: int
    fixed: str  # the other axis's value, for the sentence
    noisy: bool = False  # a fitted point is noisy: the slope is only as good as its points

    @property
    def kind(self) -> str:
        if self.slope > SUPERLINEAR:
            return "superlinear"
        if self.slope < SUBLINEAR:
            return "sublinear"
        return "linear"


def growth_slopes(cells: Sequence[CellRecord], axis: str) -> list[Slope]:
    """Per model and series, the slope along ``axis`` (duration at batch 1, or batch at the first
    duration), from the ok cells only; fewer than two distinct points gives no slope."""
    if axis not in ("duration_s", "batch_size"):
        raise ValueError(f"axis must be 'duration_s' or 'batch_size', not {axis!r}")
    labels = series_labels(cells)
    out: list[Slope] = []
    for key, series, batch, duration in _series_at_reference(cells):
        other, fixed_value = ("batch_size", batch) if axis == "duration_s" else ("duration_s", duration)
        fixed = (f"batch {fixed_value:g}" if other == "batch_size" else f"{fixed_value:g} s")
        for model in _models_in_order(series):
            line = [c for c in series if is_ok(c) and c.model == model
                    and axis_value(c, other) == fixed_value]
            xs = [axis_value(c, axis) for c in line]
            ys = [as_float(c.latency_median_s) for c in line]
            slope = loglog_slope(xs, ys)
            if slope is not None:
                out.append(Slope(model, labels[key], axis, slope, len(set(xs)), fixed,
                                 any(is_noisy(c) for c in line)))
    return out


def _slope_name(slope: Slope) -> str:
    return (f"{slope.model} under {slope.series} ({slope.slope:.2f}"
            f"{', noisy' if slope.noisy else ''})")


GROWTH_MEANING = {
    "duration_s": "as attention's cost, quadratic in sequence length, would make it",
    "batch_size": "each extra item in a batch costs more than the one before",
}


def growth_paragraph(slopes: list[Slope], axis: str) -> list[str]:
    """Which models grow faster (or slower) than linearly along this axis, with their slopes."""
    noun = "duration" if axis == "duration_s" else "batch size"
    if not slopes:
        return [f"Latency vs {noun}: fewer than two measured points per model, so no slope."]
    lines = []
    hits = [s for s in slopes if s.kind == "superlinear"]
    if hits:
        names = ", ".join(_slope_name(s) for s in hits)
        lines.append(f"Latency grows faster than linearly in {noun} (at {hits[0].fixed}; log-log "
                     f"slope > {SUPERLINEAR:g}, {GROWTH_MEANING[axis]}): {names}.")
    else:
        top = max(slopes, key=lambda s: s.slope)
        lines.append(f"No model's latency grows faster than linearly in {noun} over the measured "
                     f"range (at {top.fixed}; largest log-log slope {top.slope:.2f}, {top.model} "
                     f"under {top.series}).")
    low = [s for s in slopes if s.kind == "sublinear"]
    if low:
        names = ", ".join(_slope_name(s) for s in low)
        lines.append(f"Slower than linear in {noun} (slope < {SUBLINEAR:g}, as when fixed "
                     f"per-call costs dominate over this range): {names}.")
    if any(s.noisy for s in hits + low):
        lines.append("Slopes marked noisy were fitted through noisy cells (listed below): treat "
                     "them as rough.")
    return lines


def slope_table(by_axis: Mapping[str, list[Slope]]) -> str:
    """Every fitted slope, one row per model and runtime, so the sentences can stay short."""
    columns = [a for a in ("duration_s", "batch_size") if by_axis.get(a)]
    if not columns:
        return ""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for axis in columns:
        for s in by_axis[axis]:
            rows.setdefault((s.model, s.series), {})[axis] = (
                f"{s.slope:.2f} (n={s.n_points}{', noisy' if s.noisy else ''})")
    headers = ["model", "runtime"] + [
        f"slope vs duration ({by_axis[a][0].fixed})" if a == "duration_s"
        else f"slope vs batch ({by_axis[a][0].fixed})" for a in columns]
    body = [[m, r] + [cells.get(a, "") for a in columns] for (m, r), cells in rows.items()]
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


# --------------------------------------------------------------------------- noise


def noisy_cells(cells: Iterable[CellRecord]) -> list[tuple[CellRecord, str]]:
    """Ok cells whose latency is not to be trusted to one digit, with the reason."""
    out = []
    for cell in cells:
        if not is_ok(cell) or not is_noisy(cell):
            continue
        ratio = iqr_ratio(cell)
        reason = f"IQR/median {ratio:.0%}" if ratio is not None else "flagged noisy by the harness"
        out.append((cell, reason))
    return out


def noisy_paragraph(cells: Sequence[CellRecord]) -> list[str]:
    labels = series_labels(cells)
    noisy = noisy_cells(cells)
    n_ok = sum(1 for c in cells if is_ok(c))
    if not noisy:
        lines = [f"No noisy cell: all {n_ok} ok cells have IQR/median ≤ {NOISY_PERCENT} and no noise flag."]
    else:
        items = [f"  - {c.model} / {labels[series_key(c)]} "
                 f"({_fmt_shape(c.batch_size, c.duration_s)}): {reason}"
                 for c, reason in noisy]
        lines = [f"{len(noisy)} of {n_ok} ok cells are noisy (IQR/median > {NOISY_PERCENT} or flagged); "
                 "differences within their spread should not be read as real:\n" + "\n".join(items)]
    return lines + drift_paragraph(cells)


def drift_paragraph(cells: Sequence[CellRecord]) -> list[str]:
    """Cells whose canary moved: the machine's speed changed while they were measured."""
    ok = [c for c in cells if is_ok(c)]
    watched = [c for c in ok if c.drift is not None]
    if not watched:
        return []
    found = [c for c in watched if c.drift is True]
    orders = sorted({str(c.order) for c in watched if c.order})
    if not found:
        return [f"No drift: the canary stayed within its threshold around all {len(watched)} cells "
                f"(order: {', '.join(orders) or 'unknown'})."]
    labels = series_labels(cells)
    items = []
    for c in found:
        before, after = as_float(c.canary_before_s), as_float(c.canary_after_s)
        moved = f"canary {before * 1e3:.2f} → {after * 1e3:.2f} ms" if before and after else "canary moved"
        items.append(f"  - {c.model} / {labels[series_key(c)]} "
                     f"({_fmt_shape(c.batch_size, c.duration_s)}): {moved}")
    protected = ("interleaved rounds keep the speed-up paired (both runtimes saw the same drift), but "
                 "absolute latencies are affected" if orders == ["interleaved"] else
                 "in grouped order the speed-up takes the drift too")
    return [f"{len(found)} of {len(watched)} cells drifted (the canary, a fixed workload timed before and "
            f"after the cell, moved beyond its threshold): {protected}; re-measure with "
            f"`make bench REMEASURE=drift`:\n" + "\n".join(items)]


# --------------------------------------------------------------------------- the section


def discussion(cells: Sequence[CellRecord], models: Mapping[str, Any] | None = None) -> str:
    """The discussion as Markdown: four short subsections, each sentence carrying its numbers.

    ``models`` is the run's per-model manifest (``run.json`` ``models``), used for parameter
    counts when the cells lack them.
    """
    cells = list(cells)
    if not any(is_ok(c) for c in cells):
        return "No cell was measured ok, so there is nothing to discuss.\n"
    measure = _param_measure(cells, models)
    parts = ["### Does latency rank with model size?", ""]
    correlations = rank_correlations(cells, models)
    parts += [f"- {correlation_sentence(c, measure)}" for c in correlations] or [
        "- No parameter counts recorded."]
    heading, runtime_lines = runtimes_paragraphs(cells)
    parts += ["", f"### {heading}", ""]
    parts += runtime_lines
    parts += ["", "### Where does latency grow faster than linearly?", ""]
    slopes = {axis: growth_slopes(cells, axis) for axis in ("duration_s", "batch_size")}
    for axis, found in slopes.items():
        parts += [f"- {line}" for line in growth_paragraph(found, axis)]
    table = slope_table(slopes)
    if table:
        parts += ["", "Log-log slope of the median latency (1 = linear, 2 = quadratic; n = points "
                  "fitted):", "", table]
    parts += ["", "### Does energy track latency, and parameter count?", ""]
    parts += [f"- {line}" for line in energy_paragraph(cells, models)]
    parts += ["", "### Noisy cells", ""]
    parts += [f"- {line}" for line in noisy_paragraph(cells)]
    return "\n".join(parts) + "\n"


def energy_paragraph(cells: Sequence[CellRecord], models: Mapping[str, Any] | None = None) -> list[str]:
    """Spearman's rho of energy per inference with latency (over every measured cell of a series)
    and with parameter count (across models at the reference input); the reason when unmeasured."""
    measured = [c for c in cells if is_ok(c) and as_float(c.energy_j) is not None]
    if not measured:
        reasons = list(dict.fromkeys(str(c.energy_reason) for c in cells
                                     if is_ok(c) and c.energy_reason))
        return ["Energy was not measured in this run" + (f": {reasons[0]}" if reasons else ".")]
    sizes = merged_sizes(cells, models)
    labels = series_labels(measured)
    lines = []
    for key, series in _by_series(measured).items():
        lat = [_median(c) for c in series]
        joules = [_energy(c) for c in series]
        source = series[0].energy_source or "sensor"
        if len(series) >= 3:
            rho = spearman(lat, joules)
            lines.append(f"{labels[key]}: Spearman's rho between energy per inference and median latency = "
                         f"{_fmt_rho(rho)} over {len(series)} cells ({_strength_or_tie(rho)}; energy from {source}).")
        point = reference_point(series)
        if point is None:
            continue
        here = {str(c.model): c for c in _at(series, *point)}
        params = {m: count for m in here if (count := _param_count(m, sizes)[0]) is not None}
        if len(params) >= 3:
            rho = spearman([_energy(here[m]) for m in params], list(params.values()))
            lines.append(f"{labels[key]} at {_fmt_shape(*point)}: rho between energy per inference and "
                         f"parameter count = {_fmt_rho(rho)} over {len(params)} models ({_strength_or_tie(rho)}).")
        else:
            lines.append(f"{labels[key]}: fewer than 3 models with energy at {_fmt_shape(*point)}: "
                         f"too few models to rank energy against parameters.")
    return lines
