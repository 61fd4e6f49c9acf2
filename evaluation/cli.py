"""``python -m evaluation``: the command line over :func:`evaluation.run.evaluate`.

Exit codes: 0 every model x runtime evaluated; 1 some failed (recorded in the report);
2 bad usage or input (data not found, no usable clips, weights that cannot be loaded).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from runstore.records import DEFAULT_RUNTIMES  # make eval's runtimes: PyTorch and ONNX Runtime
from setting_defs import SettingError, add_flags, check_folders, check_writable, values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation",
                                description="Linear-probe accuracy per layer on real data, in both runtimes, "
                                            "beside the latency of embedding that data; Pareto report.")
    p.add_argument("--data", required=True, help="DATA/<label>/*.wav|flac|ogg, a CSV manifest (path,label[,split]), "
                                                 "Speech Commands or ESC-50")
    # MODELS, RUNTIMES, WEIGHTS, THREADS, ENERGY, CPU_WATTS, TINY, EXPORTER, RESULTS_DIR, ONNX_DIR: read as
    # make bench reads them (setting_defs), so make eval measures what make bench measured
    add_flags(p, "eval")
    p.add_argument("--out", help="results folder (a run writes <out>/<run_id>/; default: <RESULTS_DIR>/eval)")
    p.add_argument("--run-id")
    p.add_argument("--cache-dir", help="embedding cache (default: <out>/cache)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--provider", default="CPUExecutionProvider", help="ONNX Runtime execution provider")
    p.add_argument("--bench-run", help="a benchmark run folder (results/<device>/<run_id>/) to compare against")
    p.add_argument("--limit-per-class", type=int, help="at most N clips per class and split (quick runs)")
    p.add_argument("--folds", type=int, default=5, help="k of the stratified k-fold when the data has no splits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-synthetic", action="store_true", help="skip the synthetic-input latency")
    p.add_argument("--no-progress", action="store_true")
    return p


def read_settings(args: argparse.Namespace) -> dict[str, Any]:
    """make bench's settings as make eval uses them, checked before anything runs (SettingError).
    Unset RUNTIMES (or all) means both, the ones it runs; THREADS is one number here (one embedding pass per model)."""
    # deferred: bench.settings loads the model registry (torch) only once the flags parse
    from bench.settings import check_energy, check_weights
    from models.registry import LAB_SUITE

    found = values(args, "eval")
    runtimes = DEFAULT_RUNTIMES if found["RUNTIMES"] in (None, ("all",)) else found["RUNTIMES"]
    for runtime in runtimes:
        if runtime not in DEFAULT_RUNTIMES:
            raise SettingError(f"RUNTIMES={','.join(found['RUNTIMES'])}: make eval runs {', '.join(DEFAULT_RUNTIMES)} "
                               f"only; {runtime} is make bench's")
    found["RUNTIMES"] = runtimes
    threads = found["THREADS"]
    if threads is not None and len(threads) != 1:
        raise SettingError(f"THREADS={','.join(map(str, threads))}: make eval takes one number of threads, "
                           f"not a sweep; e.g. THREADS={threads[0]}")
    found["THREADS"] = threads[0] if threads else None
    if found["CPU_WATTS"] is not None:  # the energy meter reads it from the environment
        os.environ["CPU_WATTS"] = str(args.cpu_watts).strip()
    check_energy(found["ENERGY"])  # the same refusal as make bench: ENERGY=rapel, estimate without CPU_WATTS
    check_weights(tuple(found["MODELS"] or LAB_SUITE), found["WEIGHTS"], found["TINY"])
    found["out"] = args.out or str(Path(found["RESULTS_DIR"]) / "eval")
    check_folders(found, ("ONNX_DIR",))
    check_writable(found["out"], "--out", None, "evaluation folder")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # deferred: the evaluation (torch, sklearn) is loaded only after the arguments are valid
    from evaluation.data import DataError
    from evaluation.run import EvalSettings, evaluate

    # deferred: torch is loaded only after the arguments are valid
    from models.weights import WeightsError

    if args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    try:
        found = read_settings(args)
    except SettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = EvalSettings(data=Path(args.data), runtimes=list(found["RUNTIMES"]), weights=found["WEIGHTS"],
                            out_dir=Path(found["out"]), run_id=args.run_id, onnx_dir=Path(found["ONNX_DIR"]),
                            cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                            batch_size=args.batch_size, threads=found["THREADS"], provider=args.provider,
                            energy=found["ENERGY"], exporter=found["EXPORTER"],
                            bench_run=Path(args.bench_run) if args.bench_run else None,
                            limit_per_class=args.limit_per_class, folds=args.folds, seed=args.seed,
                            tiny=found["TINY"], progress=not args.no_progress, synthetic=not args.no_synthetic)
    if found["MODELS"]:
        settings.models = list(found["MODELS"])
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
