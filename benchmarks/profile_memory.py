"""Peak memory of a device profile's sweep: the parent (`python -m runners`) and each worker.

A Raspberry Pi 4 has 2-8 GB.  This runs the suite with a profile's default models and sweep
(`--device rpi` by default) and watches the process tree from outside: every 50 ms it reads
``VmHWM`` (the kernel's exact peak resident set) and ``VmRSS`` of the parent and of each worker
from /proc.  Workers reset their own ``VmHWM`` before each cell (runners/memory.py), so the
watcher keeps the largest value it saw; a peak that rose and was reset within 50 ms could be
missed (cells run >= REPS forward passes, so in practice each cell's peak is seen).  A worker is
known by its log file (its stderr, named after its runtime configuration).  In interleaved order
(the default) both runtimes' workers of a model are alive at once, so the script also keeps, per
model, the largest sum of its live workers and the parent at one moment: what a board must hold.

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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runstore.folder import read_records  # noqa: E402
from runstore.records import RUNTIMES  # noqa: E402

POLL_S = 0.05


@dataclass
class Watched:
    """One process of the run, as the watcher saw it."""

    pid: int
    role: str                         # "parent" or "worker"
    first_seen: float
    last_seen: float = 0.0
    peak_bytes: int = 0               # largest VmHWM read
    parent_rss_bytes: int = 0         # for a worker: the parent's largest VmRSS while it ran
    name: str = ""                    # a worker's runtime configuration (its log file's name)


def worker_name(pid: int) -> str:
    """``model-runtime-provider-variant-tN`` of a worker: the scheduler sends each worker's stderr to
    ``logs/<that>.log`` (bench/job.py ``WorkerJob.name``)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/fd/2")).stem
    except OSError:
        return ""


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
        return b"-m\x00worker\x00" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def split_name(name: str) -> tuple[str, str]:
    """(model, runtime) of a worker's name; model names may hold dashes (``wav2vec2-base``)."""
    for runtime in RUNTIMES:
        if f"-{runtime}-" in name:
            return name[:name.index(f"-{runtime}-")], runtime
    return "?", "?"


def watch(argv: list[str], env: dict[str, str]) -> tuple[int, list[Watched], float, dict[str, int], int]:
    """Run ``argv`` and watch it and its workers until it ends: (exit code, processes, seconds,
    the largest resident set of each model's live workers plus the parent at one moment, the
    largest resident set of the whole process tree at one moment)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, env=env)
    seen: dict[int, Watched] = {proc.pid: Watched(proc.pid, "parent", 0.0)}
    at_once: dict[str, int] = {}
    tree_peak = 0
    while proc.poll() is None:
        now = time.monotonic() - start
        parent_kb = status_kb(proc.pid)
        parent_rss = parent_kb.get("VmRSS", 0) * 1024
        by_model: dict[str, int] = {}
        total = parent_rss
        for pid in [c for c in children(proc.pid) if is_worker(c)]:
            kb = status_kb(pid)
            if not kb:
                continue
            if pid not in seen:
                seen[pid] = Watched(pid, "worker", now, name=worker_name(pid))
            w = seen[pid]
            w.last_seen = now
            w.peak_bytes = max(w.peak_bytes, kb.get("VmHWM", 0) * 1024, kb.get("VmRSS", 0) * 1024)
            w.parent_rss_bytes = max(w.parent_rss_bytes, parent_rss)
            rss = kb.get("VmRSS", 0) * 1024
            model = split_name(w.name)[0]
            by_model[model] = by_model.get(model, 0) + rss
            total += rss
        parent = seen[proc.pid]
        parent.peak_bytes = max(parent.peak_bytes, parent_kb.get("VmHWM", 0) * 1024)
        for model, rss in by_model.items():
            at_once[model] = max(at_once.get(model, 0), rss + parent_rss)
        tree_peak = max(tree_peak, total)
        time.sleep(POLL_S)
    return proc.returncode, sorted(seen.values(), key=lambda w: w.first_seen), time.monotonic() - start, at_once, tree_peak


def cell_counts(run_dir: Path) -> dict[tuple[str, str], dict[str, int]]:
    """Status counts per (model, runtime), read through the run store."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for cell in read_records(run_dir):
        counts = out.setdefault((cell.model, cell.runtime), {})
        counts[cell.status] = counts.get(cell.status, 0) + 1
    return out


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
        rc, procs, seconds, at_once, tree_peak = watch(argv, env)
        runs = sorted(Path(tmp).glob("*/*/cells.jsonl"))
        if not runs:
            print(f"profile_memory: the run wrote no cells (exit {rc})", file=sys.stderr)
            return 1
        run_dir = runs[-1].parent
        counts = cell_counts(run_dir)
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
        f"durations {settings.get('durations')} s; threads {settings.get('threads')}; order "
        f"{settings.get('order', '?')}; random weights.",
        f"Machine: {run_json.get('environment', {}).get('cpu', {}).get('model', '?')} (load average "
        f"{load_start[0]:.1f} at start, {load_end[0]:.1f} at end); Python {sys.version.split()[0]}.",
        "Sampled every 50 ms from /proc. A worker's peak is the largest VmHWM (peak resident set) read; "
        "*at once* is the largest sum of the resident sets of a model's live workers (both runtimes in "
        "interleaved order) and the parent at one moment: what the board must hold for that model "
        "(`memory_need_gib` in the profile).",
        "",
        f"Parent (`python -m runners`, export included): peak **{gb(parent.peak_bytes)} GiB**. "
        f"Whole process tree at one moment: **{gb(tree_peak)} GiB**.",
        "",
        "| model | runtime | cells | worker peak (GiB) | parent meanwhile (GiB) |",
        "|---|---|---|---:|---:|",
    ]
    for w in workers:
        model, runtime = split_name(w.name)
        cells = ", ".join(f"{n} {s}" for s, n in sorted(counts.get((model, runtime), {}).items()))
        lines.append(f"| {model} | {runtime} | {cells} | {gb(w.peak_bytes)} | {gb(w.parent_rss_bytes)} |")
    lines += ["", "| model | at once (GiB) |", "|---|---:|",
              *[f"| {model} | {gb(need)} |" for model, need in at_once.items()], ""]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
