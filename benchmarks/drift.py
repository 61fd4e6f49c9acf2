"""Interleaved vs grouped runtime order under drift: how much the per-cell speed-up moves
between repeated runs, what the canary saw, and whether the idle runtime stayed quiet.

Runs the suite ``--repeats`` times in each order (ORDER=interleaved and ORDER=grouped,
alternating I, G, I, G … so that slow stretches of the machine hit both orders alike) on a few
models and inputs, and reports for each cell the spread of the PyTorch / ONNX Runtime speed-up
across the repeats (max / min, and the geometric standard deviation).  Then ``--no-settle``
interleaved runs without the settle wait, to show what the idle side's spinning thread pool
costs: ``idle_side_cpu_s`` is the CPU time the idle worker burned while the other measured.

The machine this runs on may be shared: the load average is recorded at the start and end of
every run.  Output: ``docs/benchmarks/drift.md`` and the per-run speed-ups in ``drift.json``.

    .venv/bin/python benchmarks/drift.py [--models logmel,apc,tera] [--repeats 5] [--no-settle 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import schedule, suite  # noqa: E402
from bench.profiles import load_profile  # noqa: E402
from bench.settings import build_settings  # noqa: E402
from bench.suite import run_suite  # noqa: E402
from host.environment import read_cpu  # noqa: E402
from host.sysfs import sysfs_root  # noqa: E402
from report.cells import pair_cells, ratio_of_medians  # noqa: E402
from runners.canary import DRIFT_THRESHOLD  # noqa: E402
from runstore.folder import read_records  # noqa: E402


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def one_run(args, order: str, results: Path, onnx_dir: Path, settle: bool) -> dict:
    settings = build_settings(
        load_profile("cpu"), models=args.models, runtimes="pytorch,onnxruntime", batch_sizes=args.batch_sizes,
        durations=args.durations, reps=None, threads=args.threads, providers=None, energy="none",
        results_dir=str(results), onnx_dir=str(onnx_dir), order=order)
    from dataclasses import replace

    settings = replace(settings, measure_peak=False)
    real_settle = schedule.settle
    if not settle:
        schedule.settle = lambda pids, *a, **k: 0.0
    load_start, t0 = load_average(), time.time()
    try:
        outcome = run_suite(settings, fresh=True, progress=False, log=lambda m: None, environment={})
    finally:
        schedule.settle = real_settle
    cells = read_records(outcome.run_dir)
    speedups = {}
    for row in pair_cells(cells):
        value = ratio_of_medians(row.pt, row.ort)  # one estimator for both orders (grouped has no paired one)
        if value is not None:
            speedups[f"{row.model} b{row.batch_size} {row.duration_s:g}s"] = value
    ok = [c for c in cells if c.status == "ok"]
    changes = [abs(c.extra["canary_change"]) for c in ok if c.extra.get("canary_change") is not None]
    idle = [c.extra["idle_side_cpu_s"] for c in ok if c.extra.get("idle_side_cpu_s") is not None]
    measured = [c.extra.get("measured_time_s") or 0.0 for c in ok]
    return {
        "order": order, "settle": settle, "wall_s": round(time.time() - t0, 1),
        "load_start": load_start, "load_end": load_average(), "speedups": speedups,
        "drift_cells": sum(1 for c in ok if c.drift is True), "cells": len(ok),
        "canary_abs_changes": changes, "idle_side_cpu_s": sum(idle),
        "measured_s": sum(measured),
        "paired_ci": {f"{c.model} b{c.batch_size} {c.duration_s:g}s":
                      [c.speedup_ci95_low, c.speedup_ci95_high] for c in ok
                      if c.speedup_ci95_low is not None},
    }


def spread(values: list[float]) -> tuple[float, float]:
    """(max / min, geometric standard deviation) of positive values."""
    logs = [math.log(v) for v in values]
    gsd = math.exp(statistics.stdev(logs)) if len(logs) > 1 else 1.0
    return max(values) / min(values), gsd


def report(args, runs: list[dict]) -> str:
    orders = [("interleaved", True), ("grouped", True)]
    cells = sorted({k for r in runs for k in r["speedups"]},
                   key=lambda k: (args.models.split(",").index(k.split()[0]), k))
    lines = [
        f"# Interleaved vs grouped runtime order under drift ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"`benchmarks/drift.py --models {args.models} --batch-sizes {args.batch_sizes} --durations "
        f"{args.durations} --threads {args.threads} --repeats {args.repeats} --no-settle {args.no_settle}`: the "
        "default timing policy (≥ 10 samples and ≥ 1 s per cell and runtime, CI target 5%), the real models "
        "with random weights, runs alternating interleaved / grouped.",
        "",
        f"Machine: {read_cpu(sysfs_root())['model']}, {os.cpu_count()} vCPUs ({platform.machine()}). Load average (1/5/15 min) at the "
        f"start: {runs[0]['load_start']}, at the end: {runs[-1]['load_end']}; per run below (a load well above "
        "the 2 threads the runs use means other work shared the machine).",
        "",
        "## Spread of the per-cell speed-up (PyTorch / ONNX Runtime median) across repeats",
        "",
        "max/min = the largest speed-up a cell got in the repeats divided by the smallest; gsd = geometric "
        "standard deviation (1.00 = identical in every repeat).",
        "",
        "| cell | interleaved speed-ups | max/min | gsd | grouped speed-ups | max/min | gsd |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = {o: [] for o, _ in orders}
    for cell in cells:
        row = [cell]
        for order, settle in orders:
            values = [r["speedups"][cell] for r in runs if r["order"] == order and r["settle"] == settle
                      and cell in r["speedups"]]
            if len(values) < 2:
                row += [", ".join(f"{v:.2f}" for v in values), "", ""]
                continue
            ratio, gsd = spread(values)
            summary[order].append((ratio, gsd))
            row += [", ".join(f"{v:.2f}" for v in values), f"{ratio:.2f}", f"{gsd:.3f}"]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Median over cells:", ""]
    for order, _ in orders:
        if summary[order]:
            lines.append(f"- {order}: max/min {statistics.median(r for r, _ in summary[order]):.2f}, "
                         f"gsd {statistics.median(g for _, g in summary[order]):.3f} "
                         f"(worst cell max/min {max(r for r, _ in summary[order]):.2f})")
    lines += [
        "",
        "## Runs: load, wall time, what the canary saw",
        "",
        f"drift cells = cells whose canary moved by more than {DRIFT_THRESHOLD:.0%} between before and after "
        "the cell; |canary change| = median and max over the run's cells; idle CPU = CPU seconds the idle worker "
        "burned while the other measured (sum over cells; interleaved only).",
        "",
        "| # | order | settle wait | load at start | load at end | wall s | drift cells | median / max "
        "\\|canary change\\| | idle CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        ch = r["canary_abs_changes"]
        canary = f"{statistics.median(ch):.0%} / {max(ch):.0%}" if ch else ""
        idle = f"{r['idle_side_cpu_s']:.2f}" if r["order"] == "interleaved" else ""
        lines.append(f"| {i} | {r['order']} | {'yes' if r['settle'] else 'no'} | {r['load_start']} | "
                     f"{r['load_end']} | {r['wall_s']:.0f} | {r['drift_cells']} of {r['cells']} | {canary} | {idle} |")
    lines.append("")
    for order, settle in (("interleaved", True), ("grouped", True), ("interleaved", False)):
        mine = [r for r in runs if r["order"] == order and r["settle"] == settle]
        if mine:
            flagged, total = sum(r["drift_cells"] for r in mine), sum(r["cells"] for r in mine)
            idle = (f"; idle side's CPU while the other measured: {statistics.median(r['idle_side_cpu_s'] for r in mine):.2f} s "
                    "per run (median)" if order == "interleaved" else "")
            lines.append(f"- {order}{'' if settle else ' without the settle wait'}: {flagged} of {total} cells "
                         f"flagged drift over {len(mine)} run(s){idle}")
    nosettle = [r for r in runs if not r["settle"]]
    if nosettle:
        lines += ["", "## Without the settle wait", "",
                  "| cell | interleaved, settle (median of repeats) | without settle |", "|---|---|---|"]
        for cell in cells:
            a = [r["speedups"][cell] for r in runs if r["order"] == "interleaved" and r["settle"]
                 and cell in r["speedups"]]
            b = [r["speedups"][cell] for r in nosettle if cell in r["speedups"]]
            if a and b:
                lines.append(f"| {cell} | {statistics.median(a):.2f} | {', '.join(f'{v:.2f}' for v in b)} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="logmel,apc,tera")
    p.add_argument("--batch-sizes", default="1,4")
    p.add_argument("--durations", default="1,4")
    p.add_argument("--threads", default="2")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-settle", type=int, default=1, help="interleaved runs without the settle wait")
    p.add_argument("--out", default="docs/benchmarks/drift.md")
    p.add_argument("--from-json", action="store_true", help="re-write the report from the saved runs")
    args = p.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        runs = json.loads(out.with_suffix(".json").read_text())
        out.write_text(report(args, runs))
        print(out.read_text())
        return
    suite._write_report = lambda run_dir, log: None  # the report's plots are not what is measured here
    work = Path(tempfile.mkdtemp(prefix="wavebench-drift-"))
    runs = []
    plan = [(o, True) for _ in range(args.repeats) for o in ("interleaved", "grouped")]
    plan += [("interleaved", False)] * args.no_settle
    for i, (order, settle) in enumerate(plan, 1):
        run = one_run(args, order, work / f"run{i}", work / "onnx", settle)
        runs.append(run)
        print(f"run {i}/{len(plan)} {order}{'' if settle else ' (no settle)'}: {run['wall_s']:.0f} s, "
              f"load {run['load_start']} -> {run['load_end']}, drift {run['drift_cells']}/{run['cells']}",
              file=sys.stderr, flush=True)
        out.with_suffix(".json").write_text(json.dumps(runs, indent=1) + "\n")  # kept as it grows
    text = report(args, runs)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
