"""``python -m evaluation``: the command line over :func:`evaluation.run.evaluate`.

Exit codes: 0 every model x runtime evaluated; 1 some failed (recorded in the report);
2 bad usage or input (data not found, no usable clips, weights that cannot be loaded).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation",
                                description="Linear-probe accuracy per layer on real data, in both runtimes, "
                                            "beside the latency of embedding that data; Pareto report.")
    p.add_argument("--data", required=True, help="DATA/<label>/*.wav|flac|ogg, a CSV manifest (path,label[,split]), "
                                                 "Speech Commands or ESC-50")
    p.add_argument("--models", default=os.environ.get("MODELS") or None, help="comma list (default: the lab suite)")
    p.add_argument("--runtimes", default="pytorch,onnxruntime")
    p.add_argument("--weights", default=os.environ.get("WEIGHTS") or "default",
                   help="default | random | pretrained | /path/to/checkpoint(s) | model=path,... (default: $WEIGHTS, "
                        "else each model's default: random, or the weights its installed package ships (ge2e))")
    p.add_argument("--out", default="results/eval", help="results folder (a run writes <out>/<run_id>/)")
    p.add_argument("--run-id")
    p.add_argument("--onnx-dir", default="results/onnx", help="where the random-weight ONNX exports are (or go)")
    p.add_argument("--cache-dir", help="embedding cache (default: <out>/cache)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=int(os.environ["THREADS"]) if os.environ.get("THREADS") else None)
    p.add_argument("--provider", default="CPUExecutionProvider", help="ONNX Runtime execution provider")
    p.add_argument("--energy", default=os.environ.get("ENERGY") or "auto", help="auto | none | <sensor> (energy package)")
    p.add_argument("--bench-run", help="a benchmark run folder (results/<device>/<run_id>/) to compare against")
    p.add_argument("--limit-per-class", type=int, help="at most N clips per class and split (quick runs)")
    p.add_argument("--folds", type=int, default=5, help="k of the stratified k-fold when the data has no splits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="toy-size models (tests)")
    p.add_argument("--no-synthetic", action="store_true", help="skip the synthetic-input latency")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # deferred: the evaluation (torch, sklearn) is loaded only after the arguments are valid
    from bench.settings import SettingsError, check_energy
    from evaluation.data import DataError
    from evaluation.run import EvalSettings, evaluate

    # deferred: torch is loaded only after the arguments are valid
    from models.weights import WeightsError

    if args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    try:
        check_energy(args.energy)  # the same refusal as make bench: ENERGY=rapel, estimate without CPU_WATTS
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = EvalSettings(data=Path(args.data), runtimes=_csv(args.runtimes), weights=args.weights,
                            out_dir=Path(args.out), run_id=args.run_id, onnx_dir=Path(args.onnx_dir),
                            cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                            batch_size=args.batch_size, threads=args.threads, provider=args.provider,
                            energy=args.energy, bench_run=Path(args.bench_run) if args.bench_run else None,
                            limit_per_class=args.limit_per_class, folds=args.folds, seed=args.seed,
                            tiny=args.tiny, progress=not args.no_progress, synthetic=not args.no_synthetic)
    if args.models:
        settings.models = _csv(args.models)
    try:
        run = evaluate(settings)
    except (DataError, WeightsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # deferred: the evaluation (torch, sklearn) is loaded only after the arguments are valid
    from evaluation.report import accuracy_table, front_sentence

    print(accuracy_table(run.records))
    print("\nOn the Pareto fronts:")
    print("\n".join(front_sentence(run.records)))
    skipped = len(run.data.skipped)
    print(f"\n{len(run.data.clips)} clips used, {skipped} skipped; report: {run.folder / 'report.md'}")
    return 1 if run.failed else 0
