"""How long `make bench` takes to answer, before and after a change, and whether the faster run
gives the same answers.

Runs the real user commands (``make bench …``) as subprocesses in a checkout (this one, and with
``--before COMMIT`` also a worktree of that commit, each scenario before then after so that a
slow stretch of the machine hits both alike), and reports for each:

- wall time of the whole command (set-up check, export, GEMM peak, cells, report);
- ``quick-scratch``: ``QUICK=1`` with an empty ONNX folder (the export included);
  ``quick``: ``QUICK=1`` with the exports present (after ``quick-scratch``: in its results
  folder, as a user's second run); ``default``: the default sweep;
  ``rpi``: ``DEVICE=rpi`` (the Pi profile's sweep, rehearsed on this machine);
- the run's predicted wall time against its actual one, where the run records a prediction;
- per cell, the verdict of the ONNX Runtime / PyTorch comparison (faster, slower or
  indistinguishable by the speed-up's 95% CI) against a reference run with ``--reference-caps``
  times the time cap (``python -m runners --max-time``) and a speed-up CI target
  ``--reference-tighter`` times narrower (``--speedup-ci``): the stopping rule ends a cell when its
  speed-up is known, so a reference with longer caps alone would stop at the same target and be
  one more repeat, not a more patient run.  Each repeat's share of cells that agree, and of the
  ones that differ, how many contradict the reference (faster against slower) rather than lack
  its power (indistinguishable against a verdict);
- with ``--repeats N``, the spread of each cell's speed-up across the repeats (max/min), the
  figure ``docs/benchmarks/drift.md`` reports for the old rule.

Run it alone on a quiet machine (no tests, builds or helpers beside): it is a timing benchmark.

    .venv/bin/python benchmarks/suite_time.py --runs quick-scratch,quick,default \\
        [--before 81074c6] [--repeats 3] [--reference-caps 5] [--out docs/benchmarks/suite-time.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.schedule import fixed_costs  # noqa: E402
from benchmarks.bench_output import write_outputs  # noqa: E402
from host.environment import read_cpu  # noqa: E402
from host.sysfs import sysfs_root  # noqa: E402
from runstore.folder import read_records, read_run_dict  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "quick-scratch": {"QUICK": "1", "DEVICE": "cpu"},
    "quick": {"QUICK": "1", "DEVICE": "cpu"},
    "default": {"DEVICE": "cpu"},
    "rpi": {"DEVICE": "rpi"},
}
DEFAULT_MAX_TIME_S = 8.0  # Settings.max_time_s: the reference run multiplies it
DEFAULT_SPEEDUP_CI = 0.15  # SPEEDUP_CI's default: the reference run divides it


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_line(cpu: dict[str, Any]) -> str:
    """The CPU as a reviewer needs it to compare runs: which host family is behind a VM today."""
    flags = [f for f in ("avx2", "avx512f", "amx_tile", "asimd", "sve") if f in (cpu.get("kernel_flags") or [])]
    return (f"{cpu.get('logical_cores') or os.cpu_count()} cores, {cpu.get('model') or '?'} "
            f"({cpu.get('vendor')} family {cpu.get('family')} model {cpu.get('model_number')}; "
            f"{', '.join(flags) or 'no vector flags read'})")


def checkout(commit: str, where: Path) -> Path:
    """A worktree of ``commit`` (detached) to measure the code as it was."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), commit],
                   check=True, capture_output=True)
    return where


def run_make(tree: Path, scenario: str, results: Path, onnx_dir: Path, venv: Path, log: Path) -> float:
    """``make bench`` with the scenario's variables in ``tree``; its wall time in seconds."""
    variables = {**SCENARIOS[scenario], "RESULTS_DIR": str(results), "ONNX_DIR": str(onnx_dir)}
    cmd = ["make", "-C", str(tree), "bench", f"VENV={venv}"] + [f"{k}={v}" for k, v in variables.items()]
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"suite_time: {' '.join(cmd)} exited {proc.returncode}; see {log}")
    return wall


def prepare_exports(tree: Path, onnx_dir: Path, venv: Path, log: Path) -> None:
    """``make export`` into ``onnx_dir``, untimed: the scenarios measured "with exports present"."""
    cmd = ["make", "-C", str(tree), "export", f"VENV={venv}", f"ONNX_DIR={onnx_dir}"]
    with open(log, "w") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"suite_time: {' '.join(cmd)} exited {proc.returncode}; see {log}")


def run_reference(tree: Path, results: Path, onnx_dir: Path, venv: Path, caps: float, tighter: float,
                  log: Path) -> float:
    """The default sweep with ``caps`` × the time cap per cell and a speed-up CI target ``tighter``
    times narrower: the verdicts a patient user would get."""
    cmd = [str(venv / "bin/python"), "-m", "runners", "--device", "cpu", "--results", str(results),
           "--onnx-dir", str(onnx_dir), "--max-time", f"{DEFAULT_MAX_TIME_S * caps:g}",
           "--speedup-ci", f"{DEFAULT_SPEEDUP_CI / tighter:g}", "--energy", "none"]
    start = time.perf_counter()
    with open(log, "w") as out:
        subprocess.run(cmd, cwd=tree, stdout=out, stderr=subprocess.STDOUT, check=False)
    return time.perf_counter() - start


def latest_run(results: Path) -> Path:
    runs = sorted(p.parent for p in results.glob("*/*/run.json"))
    if not runs:
        raise SystemExit(f"suite_time: no run folder under {results}")
    return max(runs, key=lambda p: p.stat().st_mtime)


def verdicts(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per cell (model, variant, threads, batch, duration): the speed-up, its 95% CI and the verdict."""
    out: dict[str, dict[str, Any]] = {}
    for rec in read_records(run_dir):
        if rec.runtime == "pytorch" or rec.status != "ok":
            continue
        low, high, point = rec.speedup_ci95_low, rec.speedup_ci95_high, rec.speedup_paired
        if low is None or high is None:
            continue
        verdict = "faster" if low > 1 else "slower" if high < 1 else "indistinguishable"
        key = f"{rec.model} {rec.runtime} {rec.variant} t{rec.threads} b{rec.batch_size} {rec.duration_s:g}s"
        out[key] = {"speedup": point, "ci": [low, high], "verdict": verdict}
    return out


def run_facts(run_dir: Path) -> dict[str, Any]:
    """What the run says of its own time: the prediction, where it made one."""
    found = {k: v for k, v in _flatten(read_run_dict(run_dir)).items() if "predicted" in k or k.endswith("wall_s")}
    cells = read_records(run_dir)
    stops: dict[str, int] = {}
    for r in cells:
        stops[str(r.stop_reason)] = stops.get(str(r.stop_reason), 0) + 1
    costs = fixed_costs([r.to_dict() for r in cells])
    return {"run": run_dir.name, "cells": len(cells), "ok": sum(r.status == "ok" for r in cells), **found,
            "stop_reasons": stops, "costs": costs}


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, (int, float, str)) or value is None:
            out[name] = value
    return out


def agreement(run: dict[str, dict[str, Any]], reference: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Cells whose verdict equals the reference's, cells compared, the ones that differ (with both
    speed-ups and CIs), and how many of those contradict it: one says faster where the other says
    slower.  The rest differ by power: one run's CI still includes 1 where the other's does not."""
    common = sorted(set(run) & set(reference))

    def show(cell: dict[str, Any]) -> str:
        low, high = cell["ci"]
        return f"{cell['verdict']} {cell['speedup']:.3f}x [{low:.3f}, {high:.3f}]"

    differ = [k for k in common if run[k]["verdict"] != reference[k]["verdict"]]
    contradict = [k for k in differ if "indistinguishable" not in (run[k]["verdict"], reference[k]["verdict"])]
    return {"agree": len(common) - len(differ), "of": len(common), "contradict": len(contradict),
            "differ": [f"{k}: {show(run[k])} vs reference {show(reference[k])}" for k in differ]}


def spread(repeats: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per cell max/min of the speed-up across repeated runs; the median and worst over cells."""
    cells = set.intersection(*(set(r) for r in repeats)) if repeats else set()
    ratios = {}
    for key in sorted(cells):
        values = [r[key]["speedup"] for r in repeats if r[key]["speedup"]]
        if len(values) == len(repeats) and min(values) > 0:
            ratios[key] = max(values) / min(values)
    if not ratios:
        return {}
    worst = max(ratios, key=lambda k: ratios[k])
    return {"cells": len(ratios), "median_max_over_min": round(statistics.median(ratios.values()), 3),
            "worst_max_over_min": round(ratios[worst], 3), "worst_cell": worst,
            "speedups": {k: [round(r[k]["speedup"], 4) for r in repeats] for k in ratios}}


def render(result: dict[str, Any]) -> str:
    lines = [f"# Time to an answer: `make bench` wall time ({result['date']})", "",
             f"Machine: {result['machine']}; load average at start {result['load_start']}, "
             f"at end {result['load_end']}. Commands run one after another, alone on the machine.", "",
             "| code | scenario | wall time (s) | cells ok / all | predicted (s) | run |",
             "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        predicted = next((v for k, v in row["facts"].items() if "predicted" in k and isinstance(v, (int, float))), None)
        lines.append(f"| {row['code']} | {row['scenario']} | {row['wall_s']:.1f} | {row['facts']['ok']} / "
                     f"{row['facts']['cells']} | {'' if predicted is None else f'{predicted:.0f}'} | "
                     f"{row['facts']['run']} |")
    lines += ["", "Where each run's measuring time went, from its records (`extra.overhead_s`, summed over "
              "both sides of every cell: a comparison's workers start together, so `worker_start` counts "
              "overlapping seconds twice), and why its cells stopped:", "",
              "| scenario | timed calls | first call | warm-up | re-warm | settle | worker start | other | "
              "stop reasons |", "|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        c = row["facts"].get("costs") or {}
        named = ("timed", "first_call", "warm_up", "rewarm", "settle", "worker_start")
        other = sum(v for k, v in c.items() if k not in named and k != "total")
        stops = ", ".join(f"{k} {v}" for k, v in sorted((row["facts"].get("stop_reasons") or {}).items()))
        lines.append(f"| {row['scenario']} | " + " | ".join(f"{c.get(k, 0.0):.1f}" for k in named)
                     + f" | {other:.1f} | {stops} |")
    if result.get("agreement"):
        ref = result.get("reference") or {}
        lines += ["", "## Verdicts against a reference run", "",
                  f"Reference: the default sweep with {result['reference_caps']:g}× the time cap and a speed-up CI "
                  f"target {result.get('reference_tighter', 1):g}× narrower (SPEEDUP_CI "
                  f"{DEFAULT_SPEEDUP_CI / result.get('reference_tighter', 1):g}); "
                  + (f"{ref['wall_s']:.0f} s, its cells stopped: "
                     + ", ".join(f"{k} {v}" for k, v in sorted((ref.get('stop_reasons') or {}).items()))
                     if ref else "") + ".", ""]
        for item in result["agreement"]:
            share = item["agree"] / item["of"] if item["of"] else float("nan")
            lines.append(f"- {item['code']} {item['scenario']} #{item.get('repeat', 0)}: {item['agree']} of "
                         f"{item['of']} cells agree with the reference ({share:.0%}); of the "
                         f"{item['of'] - item['agree']} that differ, {item.get('contradict', 'n/a')} contradict it "
                         f"(faster against slower).")
            lines += [f"  - differs: {d}" for d in item["differ"]]
    if result.get("spread"):
        lines += ["", "## Spread of the speed-up across repeats", ""]
        for item in result["spread"]:
            lines.append(f"- {item['code']} {item['scenario']}: {item['repeats']} repeats, {item['cells']} cells, "
                         f"median max/min {item['median_max_over_min']}, worst {item['worst_max_over_min']}"
                         + (f" ({item['worst_cell']}: {', '.join(f'{v:.3f}' for v in item['speedups'][item['worst_cell']])})"
                            if item.get("worst_cell") else ""))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="quick-scratch,quick,default")
    parser.add_argument("--before", default=None, help="a commit to measure first, in a worktree")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--reference-caps", type=float, default=0.0,
                        help="also run the default sweep with this many times the time cap (0: no reference)")
    parser.add_argument("--reference-tighter", type=float, default=2.0,
                        help="the reference's speed-up CI target is SPEEDUP_CI's default divided by this")
    parser.add_argument("--venv", default=str(REPO / ".venv"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    scenarios = [s for s in args.runs.split(",") if s]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        print(f"suite_time: unknown scenario {unknown[0]!r}; valid: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="suite-time-"))
    venv = Path(args.venv)
    trees = [("after", REPO)]
    if args.before:
        trees.insert(0, (f"before ({args.before})", checkout(args.before, tmp / "before")))
    cpu = read_cpu(sysfs_root())
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "machine": machine_line(cpu),
                              "load_start": load_average(), "rows": [], "agreement": [], "spread": [],
                              "reference_caps": args.reference_caps, "reference_tighter": args.reference_tighter}
    warm_onnx = {code: tmp / f"onnx-{i}" for i, (code, _) in enumerate(trees)}
    by_run: dict[tuple[str, str], list[dict[str, dict[str, Any]]]] = {}
    for scenario in scenarios:
        for repeat in range(args.repeats):
            for code, tree in trees:
                tag = f"{scenario}-{code.split()[0]}-{repeat}"
                onnx = tmp / f"onnx-scratch-{tag}" if scenario == "quick-scratch" else warm_onnx[code]
                results = tmp / f"results-{tag}"
                scratch = f"quick-scratch-{code.split()[0]}-{repeat}"
                if scenario == "quick" and (tmp / f"results-{scratch}").is_dir():
                    # a user's second QUICK run: the first one's results and ONNX folders (its exports
                    # and cached GEMM peak)
                    results, onnx = tmp / f"results-{scratch}", tmp / f"onnx-scratch-{scratch}"
                elif scenario != "quick-scratch" and not onnx.is_dir():
                    prepare_exports(tree, onnx, venv, tmp / f"export-{code.split()[0]}.log")  # "exports present"
                wall = run_make(tree, scenario, results, onnx, venv, tmp / f"{tag}.log")
                run_dir = latest_run(results)
                result["rows"].append({"code": code, "scenario": scenario, "repeat": repeat, "wall_s": wall,
                                       "facts": run_facts(run_dir)})
                by_run.setdefault((code, scenario), []).append(verdicts(run_dir))
                print(f"{code} {scenario} #{repeat}: {wall:.1f} s", flush=True)
    for (code, scenario), runs in by_run.items():
        if len(runs) > 1:
            result["spread"].append({"code": code, "scenario": scenario, "repeats": len(runs), **spread(runs)})
    if args.reference_caps > 0 and "default" in scenarios:
        results = tmp / "results-reference"
        ref_wall = run_reference(REPO, results, warm_onnx["after"], venv, args.reference_caps,
                                 args.reference_tighter, tmp / "reference.log")
        ref_dir = latest_run(results)
        reference = verdicts(ref_dir)
        ref_facts = run_facts(ref_dir)
        result["reference"] = {"wall_s": ref_wall, "run": ref_facts.get("run"),
                               "stop_reasons": ref_facts.get("stop_reasons"), "verdicts": reference}
        for (code, scenario), runs in by_run.items():
            if scenario == "default":
                for repeat, run in enumerate(runs):
                    result["agreement"].append({"code": code, "scenario": scenario, "repeat": repeat,
                                                **agreement(run, reference)})
    result["load_end"] = load_average()
    write_outputs(args.out, render(result), result)
    print(f"logs and runs: {tmp}", file=sys.stderr)
    if args.before:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tmp / "before")],
                       check=False, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
