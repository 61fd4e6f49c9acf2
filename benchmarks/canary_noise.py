"""The canary's own noise: how far two back-to-back canary readings move on this machine.

Takes ``--pairs`` pairs of canary readings per runtime (each reading is what a worker takes
before and after a cell: the median of ``runners.canary.REPS`` calls), with a short gap between
the two readings of a pair, and reports the distribution of |after / before - 1|.  The drift
threshold (``runners.canary.DRIFT_THRESHOLD``) must sit well above this distribution's tail,
or undisturbed cells would be flagged.  The load average at start and end says how shared the
machine was.

    .venv/bin/python benchmarks/canary_noise.py [--pairs 100] [--threads 2] [--out docs/benchmarks/canary-noise.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from runners.canary import CHAIN, DRIFT_THRESHOLD, MATRIX_N, REPS, make_canary, read_canary  # noqa: E402


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
    p.add_argument("--gap", type=float, default=0.2, help="seconds between the two readings of a pair")
    p.add_argument("--out", default="docs/benchmarks/canary-noise.md")
    args = p.parse_args()
    load_start = load_average()
    rows = []
    for runtime in ("pytorch", "onnxruntime"):
        readings, changes = measure(runtime, args.threads, args.pairs, args.gap)
        c = np.asarray(changes)
        rows.append(f"| {runtime} | {np.median(readings) * 1e3:.2f} | {np.median(c):.1%} | "
                    f"{np.percentile(c, 95):.1%} | {np.percentile(c, 99):.1%} | {c.max():.1%} | "
                    f"{int((c > DRIFT_THRESHOLD).sum())} of {len(c)} |")
    load_end = load_average()
    text = "\n".join([
        f"# Canary noise ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"`benchmarks/canary_noise.py --pairs {args.pairs} --threads {args.threads}`: {args.pairs} pairs of "
        f"canary readings per runtime, {args.gap:g} s apart. A reading is the median of {REPS} calls of a "
        f"chain of {CHAIN} {MATRIX_N}×{MATRIX_N} fp32 matrix products. Machine: {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, shared with concurrent work "
        f"(load average 1/5/15 min: {load_start} at start, {load_end} at end).",
        "",
        "| runtime | canary median ms | median \\|change\\| | p95 | p99 | max | pairs above the "
        f"{DRIFT_THRESHOLD:.0%} drift threshold |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "How to read it: on an undisturbed machine the two readings of a pair run the same kernels on "
        "the same cores a fraction of a second apart, so their difference is the canary's own noise, and "
        f"the {DRIFT_THRESHOLD:.0%} threshold must sit above its tail. On a machine shared with other "
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
