"""Peak memory of a device profile's sweep: the parent (`python -m runners`) and each worker.

A Raspberry Pi 4 has 2-8 GB.  This runs the suite with a profile's default models and sweep
(`--device rpi` by default) and watches the process tree from outside: every 50 ms it reads
``VmHWM`` (the kernel's exact peak resident set) and ``VmRSS`` of the parent and of each worker
from /proc.  Workers reset their own ``VmHWM`` before each cell (runners/memory.py), so the
watcher keeps the largest value it saw; a peak that rose and was reset within 50 ms could be
missed (cells run >= REPS forward passes, so in practice each cell's peak is seen).  Workers run
one after another; the k-th worker is matched to the k-th (model, runtime, provider, variant)
group in cells.jsonl.

    .venv/bin/python benchmarks/profile_memory.py [--device rpi] [--reps 3] [--models a,b] [--out docs/benchmarks/rpi-memory.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POLL_S = 0.05
GROUP_FIELDS = ("model", "runtime", "provider", "variant", "threads")


@dataclass
class Watched:
    """One process of the run, as the watcher saw it."""

    pid: int
    role: str                         # "parent" or "worker"
    first_seen: float
    last_seen: float = 0.0
    peak_bytes: int = 0               # largest VmHWM read
    parent_rss_bytes: int = 0         # for a worker: the parent's largest VmRSS while it ran
    group: dict[str, str] = field(default_factory=dict)


def status_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return out


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def is_worker(pid: int) -> bool:
    try:
        return b"runners.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def watch(argv: list[str], env: dict[str, str]) -> tuple[int, list[Watched], float]:
    """Run ``argv`` and watch it and its workers until it ends: (exit code, processes, seconds)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, env=env)
    seen: dict[int, Watched] = {proc.pid: Watched(proc.pid, "parent", 0.0)}
    while proc.poll() is None:
        now = time.monotonic() - start
        parent_rss = status_kb(proc.pid).get("VmRSS", 0) * 1024
        for pid in [proc.pid] + [c for c in children(proc.pid) if is_worker(c)]:
            kb = status_kb(pid)
            if not kb:
                continue
            w = seen.setdefault(pid, Watched(pid, "worker", now))
            w.last_seen = now
            w.peak_bytes = max(w.peak_bytes, kb.get("VmHWM", 0) * 1024, kb.get("VmRSS", 0) * 1024)
            if w.role == "worker":
                w.parent_rss_bytes = max(w.parent_rss_bytes, parent_rss)
        time.sleep(POLL_S)
    return proc.returncode, sorted(seen.values(), key=lambda w: w.first_seen), time.monotonic() - start


def groups_in_order(run_dir: Path) -> list[tuple[dict[str, str], dict[str, int]]]:
    """(group, status counts) for each worker group, in the order cells.jsonl has them."""
    order: list[tuple[dict[str, str], dict[str, int]]] = []
    index: dict[tuple, int] = {}
    for line in (run_dir / "cells.jsonl").read_text().splitlines():
        try:
            cell = json.loads(line)
        except ValueError:
            continue
        key = tuple(str(cell.get(f)) for f in GROUP_FIELDS)
        if key not in index:
            index[key] = len(order)
            order.append((dict(zip(GROUP_FIELDS, key)), {}))
        counts = order[index[key]][1]
        counts[cell.get("status", "?")] = counts.get(cell.get("status", "?"), 0) + 1
    return order


def gb(n: int) -> str:
    return f"{n / 2**30:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="rpi")
    parser.add_argument("--models", default=None, help="default: the profile's default model list")
    parser.add_argument("--reps", type=int, default=3, help="memory does not depend on repetitions; 3 keeps it short")
    parser.add_argument("--tiny", action="store_true", help="toy-size models (a smoke check of this script)")
    parser.add_argument("--out", type=Path, default=None, help="write a Markdown table here (else stdout only)")
    args = parser.parse_args()

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="wavebench-mem-") as tmp:
        argv = [sys.executable, "-m", "runners", "--device", args.device, "--results", tmp, "--reps", str(args.reps),
                "--energy", "none", "--fresh"]
        if args.models:
            argv += ["--models", args.models]
        if args.tiny:
            argv += ["--tiny"]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        rc, procs, seconds = watch(argv, env)
        runs = sorted(Path(tmp).glob("*/*/cells.jsonl"))
        if not runs:
            print(f"profile_memory: the run wrote no cells (exit {rc})", file=sys.stderr)
            return 1
        run_dir = runs[-1].parent
        groups = groups_in_order(run_dir)
        run_json = json.loads((run_dir / "run.json").read_text())
    load_end = os.getloadavg()
    workers = [w for w in procs if w.role == "worker"]
    parent = procs[0]
    settings = run_json.get("settings", {})
    lines = [
        f"# Peak memory of the `{args.device}` profile's sweep",
        "",
        f"`benchmarks/profile_memory.py --device {args.device} --reps {args.reps}`: exit {rc}, {seconds:.0f} s; "
        f"models {','.join(settings.get('models', []))}; batch sizes {settings.get('batch_sizes')}; "
        f"durations {settings.get('durations')} s; threads {settings.get('threads')}; random weights.",
        f"Machine: {run_json.get('environment', {}).get('cpu', {}).get('model', '?')}, shared with concurrent "
        f"work (load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at end); Python {sys.version.split()[0]}.",
        "Peak = the largest VmHWM (peak resident set) the watcher read, sampled every 50 ms; the last column adds "
        "the parent's largest resident set while that worker ran (what the board must hold at once).",
        "",
        "| process | model | runtime | cells | peak RSS (GiB) | with the parent meanwhile (GiB) |",
        "|---|---|---|---|---:|---:|",
        f"| parent (`python -m runners`, export included) | all | — | — | {gb(parent.peak_bytes)} | — |",
    ]
    if len(workers) != len(groups):
        lines.append(f"| (workers {len(workers)} ≠ groups {len(groups)}: a group was restarted; rows matched by order) | | | | | |")
    for w, (group, counts) in zip(workers, groups):
        cells = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        lines.append(f"| worker | {group['model']} | {group['runtime']} | {cells} | {gb(w.peak_bytes)} | "
                     f"{gb(w.peak_bytes + w.parent_rss_bytes)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
