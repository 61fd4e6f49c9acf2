"""Plots of a comparison (matplotlib, Agg backend): groups side by side.

* ``latency_<model>.png`` — median latency per cell, one bar per group, IQR whiskers, log scale;
  missing or failed cells are marked under the axis.
* ``speedup.png`` — speedup of each group over the base per cell with its 95% bootstrap CI;
  green/red significant faster/slower, grey noise, hollow untested.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from .match import Comparison, Row  # noqa: E402

DPI = 90
NICE_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5,
              2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 50.0, 100.0]
COARSE_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
COLORS = ["#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB"]


@dataclass
class Plot:
    name: str  # file name inside plots/
    title: str
    path: Path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def _short_label(comp: Comparison, row: Row, drop_model: bool) -> str:
    f = dict(row.fields)
    if drop_model:
        f.pop("model", None)
    parts = []
    if f.get("context"):
        parts.append(str(f["context"]))
    if f.get("model"):
        parts.append(str(f["model"]))
    for name in ("runtime", "provider", "variant"):
        if f.get(name) is not None and not (name == "variant" and f[name] == "fp32"):
            v = str(f[name]).replace("ExecutionProvider", "EP")
            parts.append({"onnxruntime": "ort", "pytorch": "pt", "openvino": "ov", "executorch": "et",
                          "litert": "lrt"}.get(v, v))
    b, d = f.get("batch_size"), f.get("duration_s")
    parts.append(f"b{int(b) if isinstance(b, float) and b.is_integer() else b}×"
                 f"{int(d) if isinstance(d, float) and d.is_integer() else d}s")
    if f.get("threads") is not None:
        parts.append(f"t{f['threads']}")
    varying = [p for p in (row.settings or "").split(", ") if "|" in p]
    if varying:
        parts.append("(" + ", ".join(varying).replace("ExecutionProvider", "EP") + ")")
    return " ".join(parts)


def latency_plots(comp: Comparison, out_dir: Path) -> list[Plot]:
    plots = []
    models = []
    for row in comp.rows:
        if row.fields.get("model") not in models:
            models.append(row.fields.get("model"))
    n_groups = len(comp.groups)
    for model in models:
        rows = [r for r in comp.rows if r.fields.get("model") == model]
        width = min(24.0, max(6.0, 0.35 * len(rows) * max(n_groups, 2) + 2))
        fig, ax = plt.subplots(figsize=(width, 4.8))
        bar_w = 0.8 / max(n_groups, 1)
        any_bar = False
        for gi, group in enumerate(comp.groups):
            xs, heights, lo, hi, bad_x = [], [], [], [], []
            for ri, row in enumerate(rows):
                x = ri + (gi - (n_groups - 1) / 2) * bar_w
                e = row.entries[gi]
                if e is None or not e.ok:
                    bad_x.append(x)
                    continue
                q25, med, q75 = e.quartiles
                xs.append(x)
                heights.append(med * 1000)
                lo.append((med - q25) * 1000 if q25 is not None else 0)
                hi.append((q75 - med) * 1000 if q75 is not None else 0)
            color = COLORS[gi % len(COLORS)]
            if xs:
                any_bar = True
                ax.bar(xs, heights, bar_w, yerr=[lo, hi], capsize=2, color=color,
                       label=group.label, edgecolor="black", linewidth=0.4)
            else:
                ax.bar([], [], color=color, label=group.label)
            if bad_x:
                ax.plot(bad_x, [0.02] * len(bad_x), "x", color=color, markersize=7,
                        transform=ax.get_xaxis_transform(), clip_on=False)
        if any_bar:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(
                lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
            ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([_short_label(comp, r, drop_model=True) for r in rows],
                           rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("median latency (ms), IQR whiskers")
        ax.set_title(f"{model}: latency by {comp.by} (× = missing or failed)")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"latency_{_slug(str(model))}.png"
        path = out_dir / name
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        plots.append(Plot(name, f"{model}: median latency by {comp.by}", path))
    return plots


def speedup_plot(comp: Comparison, out_dir: Path) -> Plot | None:
    others = list(range(1, len(comp.groups)))
    if not others:
        return None
    rows = [r for r in comp.rows if any(r.ratios[gi] is not None for gi in others)]
    if not rows:
        return None
    height = min(40.0, 1.6 + 0.24 * len(rows))
    fig, axes = plt.subplots(1, len(others), figsize=(4.5 * len(others) + 3.5, height), sharey=True,
                             squeeze=False)
    ys = list(range(len(rows)))[::-1]
    for ax, gi in zip(axes[0], others):
        for y, row in zip(ys, rows):
            sig = row.ratios[gi]
            if sig is None or sig.speedup is None or not math.isfinite(sig.speedup):
                continue
            if sig.significant is None:
                color, face = "#666666", "none"
            elif not sig.significant:
                color, face = "#999999", "#999999"
            else:
                color = "#228833" if sig.speedup > 1 else "#CC3311"
                face = color
            if sig.ci_low is not None and math.isfinite(sig.ci_low):
                ax.plot([sig.ci_low, sig.ci_high], [y, y], color=color, linewidth=1.5)
            ax.plot([sig.speedup], [y], "o", color=color, markerfacecolor=face, markersize=5)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        lo_x, hi_x = ax.get_xlim()
        nice = NICE_TICKS if hi_x / max(lo_x, 1e-9) < 4 else COARSE_TICKS
        ticks = [t for t in nice if lo_x <= t <= hi_x] or [1.0]
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{comp.groups[gi].label} vs {comp.base.label}", fontsize=10)
        ax.set_xlabel("speedup (base median / group median), 95% CI")
        ax.grid(axis="x", which="both", alpha=0.3)
    axes[0][0].set_yticks(ys)
    axes[0][0].set_yticklabels([_short_label(comp, r, drop_model=False) for r in rows], fontsize=7)
    axes[0][0].set_ylim(-0.8, len(rows) - 0.2)
    fig.suptitle("green/red: significantly faster/slower · grey: noise · hollow: untested",
                 fontsize=9)
    fig.tight_layout()
    path = out_dir / "speedup.png"
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Plot("speedup.png", f"speedup over {comp.base.label}", path)


def make_plots(comp: Comparison, out_dir: str | Path) -> list[Plot]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    sp = speedup_plot(comp, out_dir)
    if sp:
        plots.append(sp)
    plots += latency_plots(comp, out_dir)
    return plots
