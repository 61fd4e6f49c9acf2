"""``python -m runners``: the benchmark command line (``make bench`` calls it).

A thin layer: parse flags, validate everything before anything is written (bad input: one
line on stderr naming the value and the valid choices, exit 2), run the suite, print the
runtime comparison, write the report.  Exit 0 when every cell is ok (or unsupported by
design), 1 when some cells failed (their status is stored), 2 for bad usage or a run with the
same settings still being measured, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from host.environment import read_memory
from host.sysfs import sysfs_root
from runstore.lock import RunInProgress

if TYPE_CHECKING:
    from bench.profiles import DeviceProfile


def env_default(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runners", description=__doc__.splitlines()[0])
    p.add_argument("--device", default=env_default("DEVICE", "auto"), help="cpu|rpi|jetson|gpu|auto")
    p.add_argument("--models", default=env_default("MODELS"), help="comma-separated model ids (default: the lab suite)")
    p.add_argument("--runtimes", default=env_default("RUNTIMES"),
                   help="pytorch,onnxruntime (default); also openvino, or all (make setup-runtimes installs them)")
    p.add_argument("--providers", default=env_default("PROVIDERS"), help="ONNX Runtime execution providers")
    p.add_argument("--batch-sizes", default=env_default("BATCH_SIZES"))
    p.add_argument("--durations", default=env_default("DURATIONS"), help="seconds of audio")
    p.add_argument("--reps", default=env_default("REPS"),
                   help="minimum timed repetitions per cell (default 10; validated, REPS=0 is refused)")
    p.add_argument("--threads", default=env_default("THREADS"), help="threads for both runtimes (list = sweep)")
    p.add_argument("--variants", default=env_default("VARIANTS"), help="fp32,fp16,int8")
    p.add_argument("--ort-opt", default=env_default("ORT_OPT"),
                   help="ONNX Runtime graph optimisation levels: disable,basic,extended,all")
    p.add_argument("--energy", default=env_default("ENERGY", "auto"))
    p.add_argument("--weights", default=env_default("WEIGHTS", "random"),
                   help="random | pretrained | a checkpoint path | model=path,... (export/weights.py)")
    p.add_argument("--grid", action="store_true", default=env_default("GRID") == "1")
    p.add_argument("--quick", action="store_true", default=env_default("QUICK") == "1")
    p.add_argument("--fresh", action="store_true", default=env_default("FRESH") == "1",
                   help="start a new run even where an interrupted one could be resumed")
    p.add_argument("--tiny", action="store_true", default=env_default("TINY") == "1",
                   help="toy-size models (for tests and smoke checks)")
    p.add_argument("--min-time", type=float, default=None, help="minimum measured seconds per cell")
    p.add_argument("--max-time", type=float, default=None, help="measurement cap per cell (seconds)")
    p.add_argument("--ci-target", type=float, default=None, help="stop when the median's 95%% CI is this narrow")
    p.add_argument("--speedup-ci", type=float, default=env_default("SPEEDUP_CI"),
                   help="interleaved order: stop when the paired speed-up's 95%% CI is this narrow "
                        "(relative width; default 0.10; env SPEEDUP_CI)")
    p.add_argument("--cell-timeout", type=float, default=None)
    p.add_argument("--exporter", default=env_default("EXPORTER", "torchscript"))
    p.add_argument("--results", default=env_default("RESULTS_DIR", "results"))
    p.add_argument("--onnx-dir", default=env_default("ONNX_DIR"))
    p.add_argument("--order", default=env_default("ORDER", "interleaved"),
                   help="interleaved (PyTorch and ONNX Runtime rounds alternate) | grouped (phase by phase)")
    p.add_argument("--remeasure", default=env_default("REMEASURE"),
                   help="drift: resume the run and measure its drift-flagged cells again")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-peak", action="store_true", default=env_default("NO_PEAK") == "1",
                   help="skip the GEMM peak measurement (utilisation stays null)")
    return p


def listen_for_ctrl_c() -> None:
    """Make SIGINT raise KeyboardInterrupt even when it was inherited as ignored.

    A shell without job control starts background commands (``make bench &`` in a script, a
    CI step) with SIGINT ignored, and Python then installs no handler: the signal was lost,
    the run went on to the end and exited 0.  The run's contract is that Ctrl-C keeps every
    finished cell, marks the run ``interrupted`` and exits 130, however it was started.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


def threads_warning(threads: tuple[int, ...], usable: int) -> str | None:
    """One line when a run asks for more threads than cores (the rpi profile's 4 on a 2-core VM)."""
    most = max(threads)
    if most <= usable:
        return None
    return (f"warning: {most} threads but only {usable} usable core(s) here: "
            f"the threads will share cores (THREADS={usable} or fewer avoids it)")


def main(argv: list[str] | None = None) -> int:
    listen_for_ctrl_c()
    args = build_parser().parse_args(argv)
    # deferred: the suite (torch, onnx) is loaded only after the settings are valid, so bad input answers fast
    from bench.profiles import ProfileError, available_cores, resolve_profile
    from bench.settings import SettingsError, build_settings

    try:
        profile = resolve_profile(args.device)
        own_sweep = bool(args.tiny or args.quick or args.batch_sizes or args.durations)
        models = args.models or _models_that_fit(profile, own_sweep)
        settings = build_settings(
            profile, models=models, runtimes=args.runtimes, batch_sizes=args.batch_sizes,
            durations=args.durations, reps=args.reps, threads=args.threads, providers=args.providers,
            energy=args.energy, variants=args.variants, ort_opts=args.ort_opt, grid=args.grid, quick=args.quick, tiny=args.tiny,
            min_time_s=args.min_time, max_time_s=args.max_time, ci_target=args.ci_target, speedup_ci=args.speedup_ci,
            cell_timeout_s=args.cell_timeout, exporter=args.exporter, results_dir=args.results,
            onnx_dir=args.onnx_dir, weights=args.weights, order=args.order, remeasure=args.remeasure)
    except (ProfileError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.no_peak:
        settings = replace(settings, measure_peak=False)
    note = None
    if args.device == "auto":
        note = f"DEVICE=auto chose '{profile.name}' ({profile.chosen_because})"
        print(note, file=sys.stderr)
    warning = threads_warning(settings.threads, available_cores())
    if warning:
        print(warning, file=sys.stderr)
    # deferred: the suite (torch, onnx) is loaded only after the settings are valid, so bad input answers fast
    from bench.suite import run_suite, typed_command

    try:
        outcome = run_suite(settings, fresh=args.fresh, profile_note=note, progress=not args.no_progress,
                            log=lambda m: print(m, file=sys.stderr),
                            command=typed_command(sys.argv[1:] if argv is None else list(argv)))
    except RunInProgress as exc:  # the same settings are being measured: nothing was written
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _report(outcome.run_dir)
    counts = ", ".join(f"{v} {k}" for k, v in sorted(outcome.counts.items()))
    print(f"\nrun {outcome.status}: {counts}; results in {outcome.run_dir}")
    if outcome.status == "interrupted":
        return 130
    return 0 if outcome.all_ok else 1


def _models_that_fit(profile: DeviceProfile, own_sweep: bool) -> str | None:
    """The default model list less the models this profile's memory cannot hold (each said why);
    None (the lab suite) when nothing is left out.  The needs are measured for the profile's own
    sweep at full size: another sweep (TINY, QUICK, BATCH_SIZES, DURATIONS) is not judged."""
    # deferred: the model registry loads torch; the settings module is loaded by main() already
    from bench.settings import SettingsError
    from models.registry import LAB_SUITE

    if own_sweep or not profile.memory_need_gib:
        return None
    kept, left_out = profile.models_that_fit(LAB_SUITE, read_memory(sysfs_root())["available_bytes"])
    for line in left_out:
        print(line, file=sys.stderr)
    if not left_out:
        return None
    if not kept:
        raise SettingsError(f"no model of the lab suite fits this machine's memory for the {profile.name} profile; "
                            f"choose smaller ones with MODELS=")
    return ",".join(kept)


def _report(run_dir: Path) -> None:
    """Print the comparison the suite wrote (table.txt) and where the report is."""
    table = Path(run_dir) / "table.txt"
    if table.exists():
        print(table.read_text())
    if (Path(run_dir) / "report.md").exists():
        print(f"report: {Path(run_dir) / 'report.md'}")
