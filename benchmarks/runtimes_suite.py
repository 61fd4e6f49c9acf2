"""All five runtimes in one interleaved run of the lab suite: the timing figures of docs/runtimes.md.

Runs the user's command, ``make bench RUNTIMES=all BATCH_SIZES=1 DURATIONS=1,4 THREADS=2
ENERGY=none DEVICE=cpu``, into a fresh results folder (so every ExecuTorch program and LiteRT
model is exported in the run and its export time is recorded, never inside a latency), then
tabulates the run's own records: per model and input, each runtime's median latency with its 95%
CI, its paired speed-up against PyTorch eager (recorded by the run, ``SPEEDUP_BASE``'s default)
and against ONNX Runtime (recomputed from the same interleaved rounds with the run's own rule,
``runners.stopping.paired_speedup``: rounds are paired in order across every runtime of a model),
peak memory above the worker's loaded baseline, the export time of the cell's artifact, the
fidelity against fp32 PyTorch, and every cell a runtime could not take with its reason verbatim.

Run it alone on a quiet machine (no tests, builds or helpers beside): it is a timing benchmark.

    .venv/bin/python benchmarks/runtimes_suite.py [--durations 1,4] [--models ...] \\
        [--out docs/benchmarks/runtimes-suite.md]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_output import write_outputs  # noqa: E402
from benchmarks.suite_time import latest_run, load_average, machine_line  # noqa: E402
from host.environment import read_cpu  # noqa: E402
from host.sysfs import sysfs_root  # noqa: E402
from runners.stopping import paired_speedup  # noqa: E402
from runstore.folder import read_records, read_run_dict  # noqa: E402
from runstore.records import RUNTIMES, CellRecord  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def run_bench(results: Path, variables: dict[str, str], log: Path) -> float:
    """``make bench`` with ``variables`` into ``results``; its wall time in seconds."""
    cmd = ["make", "-C", str(REPO), "bench", f"RESULTS_DIR={results}"] + [f"{k}={v}" for k, v in variables.items()]
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"runtimes_suite: {' '.join(cmd)} exited {proc.returncode}; see {log}")
    return time.perf_counter() - start


def speedup_against(base: CellRecord | None, other: CellRecord) -> dict[str, Any] | None:
    """The paired speed-up base / other from the two records' interleaved rounds (None when either
    has none): the figure a run with ``SPEEDUP_BASE=<base>`` would have recorded."""
    if base is None or base.status != "ok" or other.status != "ok":
        return None
    found = paired_speedup(base.round_medians_s, other.round_medians_s)
    if found is None:
        return None
    point, low, high = found
    return {"speedup": point, "ci": [low, high],
            "rounds": min(len(base.round_medians_s), len(other.round_medians_s))}


def cell_row(rec: CellRecord, by_runtime: dict[str, CellRecord]) -> dict[str, Any]:
    """What the tables show of one record."""
    row: dict[str, Any] = {"model": rec.model, "runtime": rec.runtime, "batch_size": rec.batch_size,
                           "duration_s": rec.duration_s, "status": rec.status}
    if rec.status != "ok":
        row["reason"] = rec.error
        return row
    ms = 1e3
    row.update({
        "median_ms": rec.latency_median_s * ms if rec.latency_median_s is not None else None,
        "ci_ms": [rec.latency_ci95_low_s * ms, rec.latency_ci95_high_s * ms]
        if rec.latency_ci95_low_s is not None and rec.latency_ci95_high_s is not None else None,
        "n": rec.latency_n, "rounds": len(rec.round_medians_s), "stop_reason": rec.stop_reason,
        "peak_mb": rec.peak_memory_bytes / 2 ** 20 if rec.peak_memory_bytes is not None else None,
        "export_s": rec.extra.get("runtime_export_s"), "artifact": rec.extra.get("runtime_artifact"),
        "cosine": rec.output_cosine, "drift": rec.drift,
        "vs_pytorch": speedup_against(by_runtime.get("pytorch"), rec) if rec.runtime != "pytorch" else None,
        "vs_onnxruntime": speedup_against(by_runtime.get("onnxruntime"), rec)
        if rec.runtime != "onnxruntime" else None,
    })
    return row


def collect(run_dir: Path) -> list[dict[str, Any]]:
    records = read_records(run_dir)
    groups: dict[tuple[str, int, float], dict[str, CellRecord]] = {}
    for rec in records:
        groups.setdefault((rec.model, rec.batch_size, rec.duration_s), {})[rec.runtime] = rec
    rows = []
    for key in groups:
        by_runtime = groups[key]
        for runtime in sorted(by_runtime, key=lambda r: RUNTIMES.index(r) if r in RUNTIMES else 99):
            rows.append(cell_row(by_runtime[runtime], by_runtime))
    return rows


def fmt_speedup(found: dict[str, Any] | None) -> str:
    if not found:
        return ""
    low, high = found["ci"]
    return f"{found['speedup']:.2f}× [{low:.2f}, {high:.2f}]"


def fmt_latency(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return row["status"]
    if row.get("ci_ms"):
        return f"{row['median_ms']:.1f} [{row['ci_ms'][0]:.1f}, {row['ci_ms'][1]:.1f}]"
    return f"{row['median_ms']:.1f}"


def render(result: dict[str, Any]) -> str:
    lines = [f"# Five runtimes, one interleaved run ({result['date']})", "",
             f"`{result['command']}` on {result['machine']}; load average at start {result['load_start']}, at end "
             f"{result['load_end']}; wall time {result['wall_s']:.0f} s (exports included). Run alone on the machine.",
             "", "Median latency in ms with its 95% CI; speed-ups are paired over the run's interleaved rounds "
             "(above 1: this runtime is faster than the base), with their 95% CI; peak memory above the "
             "worker's loaded baseline; export: the time to make this cell's artifact (ExecuTorch program, "
             "LiteRT model; OpenVINO compiles the ONNX file at load), never inside a latency.", "",
             "| model | input | runtime | latency ms | vs PyTorch | vs ONNX Runtime | peak MB | export s | "
             "cosine | stop |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        shape = f"b{row['batch_size']} {row['duration_s']:g} s"
        if row["status"] != "ok":
            lines.append(f"| {row['model']} | {shape} | {row['runtime']} | {row['status']} |  |  |  |  |  | |")
            continue
        peak = "" if row.get("peak_mb") is None else f"{row['peak_mb']:.0f}"
        export = "" if row.get("export_s") is None else f"{row['export_s']:.1f}"
        cosine = "" if row.get("cosine") is None else f"{row['cosine']:.6f}"
        lines.append(f"| {row['model']} | {shape} | {row['runtime']} | {fmt_latency(row)} | "
                     f"{fmt_speedup(row.get('vs_pytorch'))} | {fmt_speedup(row.get('vs_onnxruntime'))} | {peak} | "
                     f"{export} | {cosine} | {row.get('stop_reason') or ''}{' drift' if row.get('drift') else ''} |")
    refused = [r for r in result["rows"] if r["status"] != "ok"]
    if refused:
        lines += ["", "## What a runtime could not take (reasons verbatim)", ""]
        lines += [f"- {r['model']} b{r['batch_size']} {r['duration_s']:g} s, {r['runtime']} ({r['status']}): "
                  f"{r.get('reason')}" for r in refused]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", default="1,4")
    parser.add_argument("--batch-sizes", default="1")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--models", default=None, help="default: the lab suite")
    parser.add_argument("--out", default=None)
    parser.add_argument("--run", default=None,
                        help="tabulate this finished run folder (made by this script) instead of measuring")
    args = parser.parse_args(argv)
    variables = {"DEVICE": "cpu", "RUNTIMES": "all", "BATCH_SIZES": args.batch_sizes, "DURATIONS": args.durations,
                 "THREADS": args.threads, "ENERGY": "none"}
    if args.models:
        variables["MODELS"] = args.models
    tmp = Path(tempfile.mkdtemp(prefix="runtimes-suite-"))
    cpu = read_cpu(sysfs_root())
    load_start = load_average()
    if args.run:
        run_dir = Path(args.run)
    else:
        wall = run_bench(tmp / "results", variables, tmp / "bench.log")
        run_dir = latest_run(tmp / "results")
    run = read_run_dict(run_dir)
    if args.run:  # the command's wall time was not seen here: the run's own record of it
        wall = float(run.get("actual_wall_s") or "nan")
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": "make bench " + " ".join(f"{k}={v}" for k, v in variables.items()),
              "machine": machine_line(cpu),
              "load_start": load_start, "load_end": load_average(), "wall_s": wall, "run": run_dir.name,
              "software": (run.get("environment") or {}).get("software"),
              "rows": collect(run_dir)}
    write_outputs(args.out, render(result), result)
    print(f"logs and run: {tmp}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
