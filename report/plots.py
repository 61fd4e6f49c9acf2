"""The run's plots: latency, real-time factor, memory and energy against batch size and duration.

PNG files into ``run_dir/plots/``, drawn with matplotlib's object API (``Figure``, no pyplot):
no global backend or figure state, nothing to close, headless on a Pi or in CI.

Every plot has a line per model and runtime — one colour per model, solid for PyTorch, dashed
for ONNX Runtime, dash-dot-dot for OpenVINO, densely dashed for ExecuTorch (dotted/dash-dot and
further dash patterns for further setups of a runtime) — log axes, and error bars
from the 95% CI of the median (the IQR when no CI was recorded).  The two sweeps of the default
run are drawn as they were measured: batch sizes at the first (smallest) duration, durations at
batch 1.  A plot with fewer than two points on every line says nothing and is skipped.

Public API: :func:`write_plots`, :data:`PLOTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter, ScalarFormatter

from report.cells import ORT, PYTORCH, as_float, audio_seconds, ci95, iqr, is_ok
from report.series import axis_value, reference_point, series_key, series_labels
from runstore.records import CellRecord

COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
          "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
# a line style per runtime (its further setups: the next ones); matplotlib's names or dash tuples
STYLES: dict[str, tuple[Any, ...]] = {
    PYTORCH: ("-", ":"), ORT: ("--", "-."),
    "openvino": ((0, (3, 1, 1, 1, 1, 1)), (0, (3, 5, 1, 5, 1, 5))),
    "executorch": ((0, (5, 1)), (0, (1, 1))),
    "litert": ((0, (1, 2)), (0, (8, 2, 1, 2))),
}


def _latency_bars(cell: CellRecord, divisor: float = 1.0) -> tuple[float, float] | None:
    """(below, above) error-bar lengths: the 95% CI of the median, else ± half the IQR."""
    median = as_float(cell.latency_median_s)
    interval = ci95(cell)
    if median is not None and interval:
        return (max(median - interval[0], 0) / divisor, max(interval[1] - median, 0) / divisor)
    spread = iqr(cell)
    if spread is not None:
        return (spread / 2 / divisor, spread / 2 / divisor)
    return None


def _latency_ms(cell: CellRecord) -> tuple[float | None, tuple[float, float] | None]:
    value = as_float(cell.latency_median_s)
    bars = _latency_bars(cell, 1e-3)
    return (None if value is None else value * 1e3), bars


def _rtf(cell: CellRecord) -> tuple[float | None, tuple[float, float] | None]:
    audio = audio_seconds(cell)  # the divisor that turns a latency into an RTF
    value = as_float(cell.latency_median_s)
    if not audio or value is None:
        return None, None
    return value / audio, _latency_bars(cell, audio)


def _field(field: Callable[[CellRecord], Any], factor: float = 1.0) -> Callable[[CellRecord], tuple[float | None, None]]:
    def get(cell: CellRecord) -> tuple[float | None, None]:
        value = as_float(field(cell))
        return (None if value is None else value * factor), None
    return get


def _peak_memory(cell: CellRecord) -> int | None:
    return cell.peak_memory_bytes


def _energy(cell: CellRecord) -> float | None:
    return cell.energy_j


@dataclass(frozen=True)
class PlotSpec:
    """One figure: what is on x, what is held fixed, what is on y."""

    filename: str
    x: str  # "batch_size" or "duration_s"
    ylabel: str
    value: Callable[[CellRecord], tuple[float | None, tuple[float, float] | None]]
    needs: Callable[[CellRecord], Any] | None = None  # a record field that must be non-null somewhere, else no plot


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec("latency_vs_batch.png", "batch_size", "median latency (ms)", _latency_ms),
    PlotSpec("latency_vs_duration.png", "duration_s", "median latency (ms)", _latency_ms),
    PlotSpec("rtf_vs_duration.png", "duration_s", "real-time factor (latency / audio s)", _rtf),
    PlotSpec("memory_vs_duration.png", "duration_s", "peak memory (MB)",
             _field(_peak_memory, 1e-6), _peak_memory),
    PlotSpec("memory_vs_batch.png", "batch_size", "peak memory (MB)",
             _field(_peak_memory, 1e-6), _peak_memory),
    PlotSpec("energy_vs_duration.png", "duration_s", "energy per inference (J)",
             _field(_energy), _energy),
    PlotSpec("energy_vs_batch.png", "batch_size", "energy per inference (J)",
             _field(_energy), _energy),
)


@dataclass
class Line:
    model: str
    series: tuple
    xs: list[float]
    ys: list[float]
    bars: list[tuple[float, float] | None]


def _lines(cells: Sequence[CellRecord], spec: PlotSpec, fixed: float) -> list[Line]:
    """The points of each (model, series) along ``spec.x`` with the other axis at ``fixed``."""
    other = "duration_s" if spec.x == "batch_size" else "batch_size"
    lines: dict[tuple, Line] = {}
    for cell in cells:
        if not is_ok(cell) or axis_value(cell, other) != fixed:
            continue
        x = axis_value(cell, spec.x)
        y, bars = spec.value(cell)
        if x is None or x <= 0 or y is None or y <= 0:
            continue
        key = (str(cell.model), series_key(cell))
        line = lines.setdefault(key, Line(key[0], key[1], [], [], []))
        line.xs.append(x)
        line.ys.append(y)
        line.bars.append(bars)
    for line in lines.values():
        order = sorted(range(len(line.xs)), key=lambda i: line.xs[i])
        line.xs = [line.xs[i] for i in order]
        line.ys = [line.ys[i] for i in order]
        line.bars = [line.bars[i] for i in order]
    return list(lines.values())


def _fixed_value(cells: Sequence[CellRecord], spec: PlotSpec) -> float | None:
    """Batch 1 (else the smallest) for duration plots; the first duration at that batch for batch
    plots — the smallest duration with an ok cell, as the default sweep measures them."""
    point = reference_point(cells)
    if point is None:
        return None
    if spec.x == "duration_s":
        return point[0]
    durations = sorted({d for c in cells if is_ok(c) and (d := as_float(c.duration_s)) is not None})
    return durations[0] if durations else None


def _styles(lines: list[Line]) -> dict[tuple, Any]:
    """Solid PyTorch, dashed ONNX Runtime, dash-dot-dot OpenVINO, densely dashed ExecuTorch; a
    runtime's further setups get the next style."""
    out: dict[tuple, Any] = {}
    for key in dict.fromkeys(line.series for line in lines):
        runtime = key[0]
        styles = STYLES.get(runtime, (":",))
        used = sum(1 for k in out if k[0] == runtime)
        out[key] = styles[min(used, len(styles) - 1)]
    return out


def _draw(spec: PlotSpec, lines: list[Line], fixed: float, labels: Mapping[tuple, str],
          title: str, path: Path, dpi: int) -> None:
    fig = Figure(figsize=(7.5, 5), layout="constrained")
    ax = fig.add_subplot()
    models = list(dict.fromkeys(line.model for line in lines))
    colors = {m: COLORS[i % len(COLORS)] for i, m in enumerate(models)}
    styles = _styles(lines)
    for line in lines:
        yerr = None
        bars = [b for b in line.bars if b is not None]
        if len(bars) == len(line.bars):
            yerr = [[b[0] for b in bars], [b[1] for b in bars]]
        ax.errorbar(line.xs, line.ys, yerr=yerr, color=colors[line.model],
                    linestyle=styles[line.series], marker="o", markersize=4, capsize=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    xs = sorted({x for line in lines for x in line.xs})
    ax.set_xticks(xs)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    held = f"duration {fixed:g} s" if spec.x == "batch_size" else f"batch {fixed:g}"
    ax.set_xlabel("batch size" if spec.x == "batch_size" else "audio duration (s)")
    ax.set_ylabel(spec.ylabel)
    ax.set_title(f"{title}{spec.ylabel} vs {'batch size' if spec.x == 'batch_size' else 'duration'}"
                 f" ({held})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    handles = [Line2D([], [], color=colors[m], label=m) for m in models]
    handles += [Line2D([], [], color="black", linestyle=styles[k], label=labels[k]) for k in styles]
    ax.legend(handles=handles, fontsize=8, loc="best")
    fig.savefig(path, dpi=dpi)


@dataclass(frozen=True)
class ScatterSpec:
    """Every ok cell as one point: a model's colour, a runtime's marker."""

    filename: str
    title: str
    xlabel: str
    ylabel: str
    x: Callable[[CellRecord], float | None]
    y: Callable[[CellRecord], float | None]
    ceilings: Callable[[Sequence[CellRecord]], dict[str, float]] | None = None  # label -> y of a ceiling line


def _gemm_peaks(cells: Sequence[CellRecord]) -> dict[str, float]:
    """Each runtime's measured dense-matmul rate (GFLOP/s): the roofline's flat roof."""
    peaks: dict[str, float] = {}
    for c in cells:
        peak = as_float(c.extra.get("gemm_peak_flops_per_s"))
        if peak:
            label = f"{c.runtime} GEMM peak ({c.threads} threads)"
            peaks[label] = peak / 1e9
    return peaks


def _scaled(field: Callable[[CellRecord], Any], factor: float) -> Callable[[CellRecord], float | None]:
    def get(cell: CellRecord) -> float | None:
        value = as_float(field(cell))
        return None if value is None else value * factor
    return get


SCATTERS: tuple[ScatterSpec, ...] = (
    ScatterSpec("roofline.png", "achieved compute vs work per inference (roofline-style)",
                "GFLOPs per inference (2 x MACs)", "achieved GFLOP/s",
                _scaled(lambda c: c.flops, 1e-9), _scaled(lambda c: c.achieved_flops_per_s, 1e-9), _gemm_peaks),
    ScatterSpec("energy_vs_latency.png", "energy vs latency per inference",
                "median latency (ms)", "energy per inference (J)",
                _scaled(lambda c: c.latency_median_s, 1e3), _scaled(_energy, 1.0)),
)
MARKERS = {PYTORCH: "o", ORT: "s", "openvino": "D", "executorch": "^", "litert": "v"}


def _draw_scatter(spec: ScatterSpec, cells: Sequence[CellRecord], title: str, path: Path, dpi: int) -> bool:
    points = [(c, spec.x(c), spec.y(c)) for c in cells if is_ok(c)]
    points = [(c, x, y) for c, x, y in points if x and y and x > 0 and y > 0]
    if len(points) < 2:
        path.unlink(missing_ok=True)
        return False
    fig = Figure(figsize=(7.5, 5), layout="constrained")
    ax = fig.add_subplot()
    models = list(dict.fromkeys(str(c.model) for c, _, _ in points))
    colors = {m: COLORS[i % len(COLORS)] for i, m in enumerate(models)}
    for c, x, y in points:
        ax.scatter(x, y, color=colors[str(c.model)], marker=MARKERS.get(c.runtime, "v"),
                   s=22, alpha=0.85)
    handles = [Line2D([], [], color=colors[m], marker="o", linestyle="", label=m) for m in models]
    handles += [Line2D([], [], color="black", marker=mk, linestyle="", label=rt)
                for rt, mk in MARKERS.items() if any(c.runtime == rt for c, _, _ in points)]
    for i, (label, value) in enumerate((spec.ceilings(cells) if spec.ceilings else {}).items()):
        style = ("--", ":", "-.")[i % 3]
        ax.axhline(value, color="gray", linestyle=style, linewidth=1)
        handles.append(Line2D([], [], color="gray", linestyle=style, label=label))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(spec.xlabel)
    ax.set_ylabel(spec.ylabel)
    ax.set_title(f"{title}{spec.title}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.savefig(path, dpi=dpi)
    return True


def write_plots(cells: Iterable[CellRecord], plots_dir: str | Path, title: str = "",
                dpi: int = 110) -> list[Path]:
    """Draw every plot the cells support into ``plots_dir``; return the files written.

    A plot whose lines all have fewer than two points, or whose field no cell carries, is skipped
    (and a stale file of that name from an earlier report is removed, so the folder matches the
    report).  ``title`` is prefixed to each title, e.g. the device name.
    """
    cells = list(cells)
    plots_dir = Path(plots_dir)
    labels = series_labels(cells)
    written: list[Path] = []
    prefix = f"{title}: " if title else ""
    for spec in PLOTS:
        path = plots_dir / spec.filename
        fixed = _fixed_value(cells, spec)
        lines = _lines(cells, spec, fixed) if fixed is not None else []
        needs = spec.needs
        wanted = needs is None or any(as_float(needs(c)) is not None for c in cells)
        if fixed is None or not wanted or not any(len(set(line.xs)) >= 2 for line in lines):
            path.unlink(missing_ok=True)
            continue
        plots_dir.mkdir(parents=True, exist_ok=True)
        _draw(spec, lines, fixed, labels, prefix, path, dpi)
        written.append(path)
    for scatter in SCATTERS:
        path = plots_dir / scatter.filename
        plots_dir.mkdir(parents=True, exist_ok=True)
        if _draw_scatter(scatter, cells, prefix, path, dpi):
            written.append(path)
    return written
