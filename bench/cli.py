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
from setting_defs import SettingError, add_flags, check_folder, setting, settings_for

if TYPE_CHECKING:
    from bench.profiles import DeviceProfile
    from bench.suite import RunOutcome


def build_parser() -> argparse.ArgumentParser:
    """One flag per setting of make bench (setting_defs: its variable gives the default)."""
    p = argparse.ArgumentParser(prog="python -m runners", description=__doc__.splitlines()[0])
    add_flags(p, "bench")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def build_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """``build_settings``' keywords from the parsed flags: every bench setting with a ``field``
    (DEVICE is resolved to a profile first)."""
    return {d.field: getattr(args, d.dest) for d in settings_for("bench")
            if d.field and d.field != "device" and d.flag is not None}


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
    from bench.settings import build_settings

    try:
        device = str(setting("DEVICE").value(args.device))
        no_peak, fresh = setting("NO_PEAK").value(args.no_peak), setting("FRESH").value(args.fresh)
        watts = setting("CPU_WATTS").value(args.cpu_watts)
        if watts is not None:  # the energy meter (in the workers too) reads it from the environment
            os.environ["CPU_WATTS"] = str(args.cpu_watts).strip()
        profile = resolve_profile(device)
        kwargs = build_kwargs(args)
        own_sweep = bool(setting("TINY").value(args.tiny) or setting("QUICK").value(args.quick)
                         or args.batch_sizes or args.durations)
        kwargs["models"] = args.models or _models_that_fit(profile, own_sweep)
        settings = build_settings(profile, **kwargs)  # type: ignore[arg-type]
        if setting("ARTIFACTS_DIR").value(args.artifacts_dir):
            # make bench only reads it (make export writes it): a typo would convert here without a word
            check_folder(settings.artifacts_dir, "ARTIFACTS_DIR", "--artifacts-dir",
                         f"make export RUNTIMES=executorch,litert DEVICE={profile.name} writes it")
    except (ProfileError, SettingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if no_peak:
        settings = replace(settings, measure_peak=False)
    note = None
    if device == "auto":
        note = f"DEVICE=auto chose '{profile.name}' ({profile.chosen_because})"
        print(note, file=sys.stderr)
    warning = threads_warning(settings.threads, available_cores())
    if warning:
        print(warning, file=sys.stderr)
    # deferred: the suite (torch, onnx) is loaded only after the settings are valid, so bad input answers fast
    from bench.suite import run_suite, typed_command

    try:
        outcome = run_suite(settings, fresh=fresh, profile_note=note, progress=not args.no_progress,
                            log=lambda m: print(m, file=sys.stderr),
                            command=typed_command(sys.argv[1:] if argv is None else list(argv)))
    except RunInProgress as exc:  # the same settings are being measured: nothing was written
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(outcome))
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


def summary(outcome: RunOutcome) -> str:
    """The end of ``make bench``: the answer first (what was compared, which runtime won where, by
    how much and by which test, per model), then the comparison table (table.txt), where the
    report is; then the details (cell counts, wall time against its prediction, notes)."""
    run_dir = Path(outcome.run_dir)
    parts = []
    if outcome.answer:
        parts.append("\n".join(outcome.answer))
    table = run_dir / "table.txt"
    if table.exists():
        parts.append(table.read_text().rstrip())
    if (run_dir / "report.md").exists():
        parts.append(f"report: {run_dir / 'report.md'}")
    counts = ", ".join(f"{v} {k}" for k, v in sorted(outcome.counts.items()))
    details = [f"run {outcome.status}: {counts}; results in {run_dir}"]
    wall = wall_time_line(outcome.wall_time)
    if wall:
        details.append(wall)
    parts.append("\n".join(details + list(outcome.messages)))
    return "\n\n" + "\n\n".join(parts)


def wall_time_line(wall: dict | None) -> str | None:
    """'wall time: measuring 96 cell(s) took 27:44, predicted 28:50 before the first cell (0.96× that);
    export and set-up 12 s' from a session's ``wall_time``; None when nothing was measured."""
    measure = (wall or {}).get("measure") or {}
    actual, predicted = measure.get("actual_s"), measure.get("predicted_s")
    if actual is None or not measure.get("cells"):
        return None
    # deferred: the estimate module is loaded with the suite, after the settings are valid
    from bench.estimate import fmt_duration

    text = f"wall time: measuring {measure['cells']} cell(s) took {fmt_duration(actual)}"
    if predicted:
        text += f", predicted {fmt_duration(predicted)} before the first cell ({actual / predicted:.2f}× that)"
    export = ((wall or {}).get("export") or {}).get("actual_s")
    if export is not None:
        text += f"; export and set-up {fmt_duration(export)}"
    return text
