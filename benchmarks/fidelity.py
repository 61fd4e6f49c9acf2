"""Fidelity of the harness: its median against torch.utils.benchmark, measured in one run.

For each model (wav2vec2-base and logmel by default; batch 1, 1 s of audio, PyTorch on the CPU)
this times the same forward call with wavebench's harness and with
``torch.utils.benchmark.Timer.blocked_autorange()``, alternating the two several times so that
drift of the machine hits both alike, and reports the ratio of the medians.
Targets: within 3% for wav2vec2-base, 5% for logmel.

    .venv/bin/python benchmarks/fidelity.py [--models wav2vec2-base,logmel] [--rounds 3] [--out docs/benchmarks/fidelity.md]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.utils.benchmark as tb  # noqa: E402

from models.registry import get_spec  # noqa: E402
from runners.audio import synthetic_batch  # noqa: E402
from runners.harness import TimingPolicy, time_callable  # noqa: E402

TARGETS = {"wav2vec2-base": 0.03, "logmel": 0.05}


def measure(model_name: str, rounds: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    spec = get_spec(model_name)
    model = spec.build()
    wav = torch.from_numpy(synthetic_batch(1, 16000))

    def call():
        with torch.inference_mode():
            return model(wav)

    ours, theirs = [], []
    for _ in range(rounds):
        t = time_callable(call, TimingPolicy())
        ours.append(t.stats.median)
        timer = tb.Timer(stmt="call()", globals={"call": call}, num_threads=threads)
        theirs.append(timer.blocked_autorange(min_run_time=max(1.0, 10 * t.stats.median)).median)
    ours_med, theirs_med = statistics.median(ours), statistics.median(theirs)
    return {"model": model_name, "harness_ms": ours_med * 1e3, "torch_benchmark_ms": theirs_med * 1e3,
            "ratio": ours_med / theirs_med, "rounds_harness_ms": [x * 1e3 for x in ours],
            "rounds_torch_ms": [x * 1e3 for x in theirs]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="wav2vec2-base,logmel")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--out", default=None)
    args = p.parse_args()
    rows = [measure(m, args.rounds, args.threads) for m in args.models.split(",")]
    lines = [
        f"# Harness fidelity vs torch.utils.benchmark ({time.strftime('%Y-%m-%d %H:%M')})", "",
        f"Machine: {platform.node()} ({platform.machine()}), {args.threads} threads, torch {torch.__version__}. "
        f"Batch 1, 1 s of audio, PyTorch on the CPU; {args.rounds} alternating rounds, median of rounds.", "",
        "| model | harness median (ms) | blocked_autorange median (ms) | ratio | target | within | per-round harness / torch (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = TARGETS.get(r["model"], 0.05)
        ok = abs(r["ratio"] - 1) <= target
        rounds = "; ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(r["rounds_harness_ms"], r["rounds_torch_ms"]))
        lines.append(f"| {r['model']} | {r['harness_ms']:.3f} | {r['torch_benchmark_ms']:.3f} | {r['ratio']:.3f} | "
                     f"±{target:.0%} | {'yes' if ok else 'NO'} | {rounds} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
