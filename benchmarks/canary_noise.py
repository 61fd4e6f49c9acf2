"""The canary's own noise, and the machine's drift at the scale of a cell: how far two canary
readings move on this machine, back to back and a few seconds apart.

Takes ``--pairs`` pairs of canary readings per runtime and gap (each reading is what a worker
takes before and after a cell: the median of ``runners.canary.REPS`` calls), and reports the
distribution of |after / before - 1|.  Back to back (gap 0) the difference is the canary's own
noise: the drift threshold (``runners.canary.DRIFT_THRESHOLD``) must sit above its tail, or
undisturbed cells would be flagged.  A few seconds apart (about one cell) the difference also
holds the machine's own drift at that scale, which is what the canary is there to report.  The
load average at start and end says how shared the machine was.

    .venv/bin/python benchmarks/canary_noise.py [--pairs 100] [--gaps 0,0.2,3] [--threads 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from runners.canary import CHAIN, DRIFT_THRESHOLD, MATRIX_N, REPS, make_canary, read_canary  # noqa: E402
from runstore.records import DEFAULT_RUNTIMES as RUNTIMES  # noqa: E402


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def measure(runtime: str, threads: int, pairs: int, gap_s: float) -> tuple[list[float], list[float]]:
    provider = "cpu" if runtime == "pytorch" else "CPUExecutionProvider"
    call = make_canary(runtime, threads, provider)
    readings, changes = [], []
    for _ in range(pairs):
        before = read_canary(call)
        time.sleep(gap_s)
        after = read_canary(call)
        readings += [before, after]
        changes.append(abs(after / before - 1.0))
    return readings, changes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gaps", default="0,0.2,3", help="seconds between the two readings of a pair")
    p.add_argument("--long-pairs", type=int, default=40, help="pairs for gaps of a second or more")
    p.add_argument("--out", default="docs/benchmarks/canary-noise.md")
    args = p.parse_args()
    load_start = load_average()
    rows = []
    gaps = [float(g) for g in args.gaps.split(",")]
    for runtime, gap in itertools.product(RUNTIMES, gaps):
        pairs = args.pairs if gap < 1 else args.long_pairs
        readings, changes = measure(runtime, args.threads, pairs, gap)
        c = np.asarray(changes)
        rows.append(f"| {runtime} | {gap:g} | {np.median(readings) * 1e3:.2f} | {np.median(c):.1%} | "
                    f"{np.percentile(c, 95):.1%} | {np.percentile(c, 99):.1%} | {c.max():.1%} | "
                    f"{int((c > DRIFT_THRESHOLD).sum())} of {len(c)} |")
    load_end = load_average()
    text = "\n".join([
        f"# Canary noise ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"`benchmarks/canary_noise.py --pairs {args.pairs} --gaps {args.gaps} --long-pairs {args.long_pairs} "
        f"--threads {args.threads}`: {args.pairs} pairs of canary readings per runtime and gap under a second, "
        f"{args.long_pairs} for longer gaps. A reading is the median of {REPS} calls of a "
        f"chain of {CHAIN} {MATRIX_N}×{MATRIX_N} fp32 matrix products. Machine: {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()} "
        f"(load average 1/5/15 min: {load_start} at start, {load_end} at end).",
        "",
        "| runtime | gap s | canary median ms | median \\|change\\| | p95 | p99 | max | pairs above the "
        f"{DRIFT_THRESHOLD:.0%} drift threshold |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "How to read it: back to back (gap 0) the two readings of a pair run the same kernels on the same "
        "cores within a few tens of milliseconds, so their difference is the canary's own noise (and the "
        "machine's at that scale), and the "
        f"{DRIFT_THRESHOLD:.0%} threshold must sit above most of it. A few seconds apart the readings also "
        "differ by what the machine's speed did in between. On a machine shared with other "
        "load, the readings also differ because the load changed within the pair: that is drift at the "
        "scale of a second, exactly what the canary is there to report, and a large share of pairs above "
        "the threshold then says the machine is not fit for absolute latencies (the interleaved speed-up "
        "is still paired). A high load average above means the second case.",
        "",
    ])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
