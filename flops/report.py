"""``python -m flops`` (``make flops``): the MACs/FLOPs report of the ONNX files, table, CSV, JSON, plot."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from tabulate import tabulate

from export.onnx_export import onnx_path
from flops.formulas import analytic_count
from flops.graph import (
    CorruptOnnxError,
    GraphCounter,
)
from models.frontend import SAMPLE_RATE
from models.registry import LAB_SUITE, UnknownModelError, get_spec
from setting_defs import SettingError, add_flags, check_folders, values

# ---------------------------------------------------------------------------------------------
# Report and command line
# ---------------------------------------------------------------------------------------------


class UsageError(ValueError):
    """Bad input: the command line turns it into one line and exit code 2."""


# make flops' own sweep when DURATIONS / BATCH_SIZES are unset (it has no device profile)
FLOPS_DURATIONS = (1.0, 2.0, 4.0, 8.0, 16.0)
FLOPS_BATCH_SIZES = (1,)


def _g(x: float) -> str:
    return f"{x / 1e9:,.3f}"


def _m(x: float) -> str:
    return f"{x / 1e6:,.1f}"


def build_report(models: list[str], durations: list[float], batch_sizes: list[int],
                 onnx_dir: Path, log=print) -> dict[str, Any]:
    """Count every model x batch x duration from its ONNX file; raise UsageError on bad input."""
    specs = []
    for name in models:
        try:
            specs.append(get_spec(name))
        except UnknownModelError as exc:
            raise UsageError(str(exc)) from None
    for spec in specs:
        for d in durations:
            if int(round(d * SAMPLE_RATE)) < spec.min_samples:
                raise UsageError(f"duration {d:g} s is below {spec.name}'s minimum of "
                                 f"{spec.min_duration_s:g} s ({spec.min_samples} samples)")
        path = onnx_path(onnx_dir, spec.name)
        if not path.exists():
            raise UsageError(f"missing ONNX file {path}; export it with "
                             f"`make export MODELS={spec.name}` (or `python -m export --models "
                             f"{spec.name} --out {onnx_dir}`)")
    rows, details = [], {}
    for spec in specs:
        path = onnx_path(onnx_dir, spec.name)
        log(f"{spec.name}: loading {path}")
        try:
            counter = GraphCounter(path, spec.name)
        except CorruptOnnxError as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise UsageError(f"{first}; re-export it with `make export MODELS={spec.name} FRESH=1`") from None
        details[spec.name] = {}
        for b in batch_sizes:
            for d in durations:
                n = int(round(d * SAMPLE_RATE))
                fc = counter.count(b, n)
                a = analytic_count(spec.name, b, n)
                agree = abs(fc.macs - a.macs) <= 1e-3 * max(1, a.macs)
                rows.append({
                    "model": spec.name, "batch": b, "duration_s": d, "n_samples": n, "frames": spec.frames(n),
                    "gmacs": fc.macs / 1e9, "gflops": fc.flops / 1e9,
                    "gmacs_per_audio_s": fc.macs / 1e9 / (b * d),
                    "attention_gmacs": fc.attention_macs / 1e9,
                    "attention_share": fc.attention_macs / fc.macs if fc.macs else 0.0,
                    "other_gflops": fc.other_flops / 1e9,
                    "onnx_tool_gmacs": (fc.onnx_tool_macs or 0) / 1e9,
                    "analytic_gmacs": a.macs / 1e9, "analytic_agrees": agree,
                    "uncounted": ";".join(f"{k}:{v}" for k, v in fc.uncounted.items()),
                    "macs": fc.macs, "flops": fc.flops,
                })
                details[spec.name][f"b{b}_{d:g}s"] = fc.to_dict()
                if not agree:
                    log(f"WARNING {spec.name} batch {b} {d:g} s: graph {fc.macs:,} MACs vs "
                        f"analytic {a.macs:,}")
        del counter
    return {"rows": rows, "details": details, "models": models, "durations": durations,
            "batch_sizes": batch_sizes, "onnx_dir": str(onnx_dir)}


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows, details = report["rows"], report["details"]
    written = []
    csv_path = out / "flops.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    written.append(csv_path)
    json_path = out / "flops.json"
    json_path.write_text(json.dumps({k: v for k, v in report.items()}, indent=1, default=str))
    written.append(json_path)

    lines = ["# MACs and FLOPs per model, counted from the ONNX graphs", "",
             "MACs are multiply-accumulates of MatMul/Gemm/Conv/GRU nodes; FLOPs = 2 x MACs. "
             "Elementwise, normalisation and softmax work is the separate *other GFLOPs* column "
             "(1 FLOP per output element, softmax 5, norms 7: docs/flops.md). *onnx-tool* is "
             "onnx-tool's own total, which books that elementwise work as MACs too. *analytic* is "
             "the hand-derived formula (docs/flops.md); it must equal the graph count.", "",
             f"ONNX files: `{report['onnx_dir']}`", ""]
    head = ["model", "batch", "duration s", "frames", "GMACs", "GFLOPs", "GMACs / audio-s",
            "attention share", "other GFLOPs", "onnx-tool GMACs", "analytic = graph", "uncounted ops"]
    table = [[r["model"], r["batch"], f"{r['duration_s']:g}", r["frames"], _g(r["macs"]), _g(r["flops"]),
              f"{r['gmacs_per_audio_s']:,.3f}", f"{100 * r['attention_share']:.1f}%",
              f"{r['other_gflops']:,.3f}", f"{r['onnx_tool_gmacs']:,.3f}",
              "yes" if r["analytic_agrees"] else "NO", r["uncounted"] or "none"] for r in rows]
    lines += ["## Totals", "", tabulate(table, head, tablefmt="github"), ""]
    b0 = report["batch_sizes"][0]
    for model, per_shape in details.items():
        lines += [f"## {model}", ""]
        keys = [f"b{b0}_{d:g}s" for d in report["durations"]]
        shapes = [per_shape[k] for k in keys]
        last = shapes[-1]["by_op"]
        ops = sorted({op for s in shapes for op in s["by_op"]},
                     key=lambda op: (-last.get(op, {}).get("macs", 0), -last.get(op, {}).get("other_flops", 0)))
        op_rows, free = [], []
        for op in ops:
            if not any(s["by_op"].get(op, {}).get("macs", 0) or s["by_op"].get(op, {}).get("other_flops", 0)
                       for s in shapes):
                free.append(f"{op} {last.get(op, {}).get('nodes', 0)}")
                continue
            row = [op, last.get(op, {}).get("nodes", 0)]
            for s in shapes:
                e = s["by_op"].get(op, {})
                row += [_m(e.get("macs", 0)), _m(e.get("other_flops", 0))]
            op_rows.append(row)
        op_head = ["op type", "nodes"] + [c for d in report["durations"]
                                          for c in (f"MMACs {d:g}s", f"other MFLOPs {d:g}s")]
        lines += [f"By operator type (batch {b0}):", "", tabulate(op_rows, op_head, tablefmt="github"), "",
                  "Data movement and shape ops (0 FLOPs; node counts): " + (", ".join(free) or "none"), ""]
        layers = list(shapes[-1]["by_layer"])
        layer_rows = []
        for layer in layers:
            row = [layer]
            for s in shapes:
                e = s["by_layer"].get(layer, {})
                row += [_m(e.get("macs", 0)), _m(e.get("attention_macs", 0)), _m(e.get("other_flops", 0))]
            layer_rows.append(row)
        layer_head = ["layer"] + [c for d in report["durations"]
                                  for c in (f"MMACs {d:g}s", f"attention MMACs {d:g}s", f"other MFLOPs {d:g}s")]
        lines += [f"By layer (batch {b0}; *other* is glue: reshapes, masks, chunking):", "",
                  tabulate(layer_rows, layer_head, tablefmt="github"), ""]
        if any(s["uncounted"] for s in shapes):
            lines += [f"Uncounted op types: {shapes[-1]['uncounted']}", ""]
    plot = _plot(report, out)
    if plot:
        written.append(plot)
        lines += ["## GMACs per audio-second against duration", "", f"![GMACs per audio-second]({plot.name})", ""]
    md = out / "report.md"
    md.write_text("\n".join(lines))
    written.insert(0, md)
    return written


def _plot(report: dict[str, Any], out: Path) -> Path | None:
    # deferred: matplotlib is heavy and optional: a board without it still gets its tables
    import matplotlib

    matplotlib.use("Agg")
    # deferred: matplotlib is heavy and optional: a board without it still gets its tables
    import matplotlib.pyplot as plt

    b0 = report["batch_sizes"][0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = ["-", "--", ":", "-."]  # identical curves (wav2vec2/HuBERT Base) stay visible
    for i, model in enumerate(report["models"]):
        pts = [(r["duration_s"], r["gmacs_per_audio_s"]) for r in report["rows"]
               if r["model"] == model and r["batch"] == b0]
        if pts:
            ax.plot(*zip(*pts), marker="os^D"[i % 4], linestyle=styles[i % 4], label=model)
    ax.set_xscale("log", base=2)
    ax.set_xticks(report["durations"], [f"{d:g}" for d in report["durations"]])
    ax.set_yscale("log")
    ax.set_xlabel("input duration (s)")
    ax.set_ylabel("GMACs per audio-second")
    ax.set_title(f"Compute per audio-second (batch {b0})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path = out / "gmacs_per_audio_s.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m flops",
                                description="MACs/FLOPs report from the ONNX graphs (make flops)")
    # MODELS, DURATIONS, BATCH_SIZES, ONNX_DIR, FLOPS_DIR (--out), RESULTS_DIR: read as make bench reads them
    add_flags(p, "flops", aliases={"FLOPS_DIR": ("--out",)})
    args = p.parse_args(argv)
    try:
        found = values(args, "flops")
        check_folders(found, ("FLOPS_DIR",))
        models = list(found["MODELS"] or LAB_SUITE)
        durations = list(found["DURATIONS"] or FLOPS_DURATIONS)
        batch_sizes = list(found["BATCH_SIZES"] or FLOPS_BATCH_SIZES)
        report = build_report(models, durations, batch_sizes, Path(found["ONNX_DIR"]),
                              log=lambda s: print(s, file=sys.stderr))
    except (UsageError, SettingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(found["FLOPS_DIR"])
    written = write_report(report, out)
    b0 = batch_sizes[0]
    table = [[r["model"], f"{r['duration_s']:g}", _g(r["macs"]), f"{r['gmacs_per_audio_s']:,.3f}",
              f"{100 * r['attention_share']:.1f}%", f"{r['other_gflops']:,.3f}"]
             for r in report["rows"] if r["batch"] == b0]
    print(tabulate(table, ["model", "duration s", "GMACs", "GMACs / audio-s", "attention", "other GFLOPs"],
                   tablefmt="simple"))
    print("wrote " + ", ".join(str(w) for w in written))
    bad = [r for r in report["rows"] if not r["analytic_agrees"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
