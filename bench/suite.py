"""The suite: plan the cells, export what is needed, run one worker per model × runtime
configuration, and turn each worker's crash, out-of-memory kill or timeout into that cell's
status while the suite goes on.  Ctrl-C keeps every finished cell and marks the run
``interrupted``; running the same settings again resumes where it stopped.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from bench.estimate import WorkEstimate, estimate_run, prediction_line
from bench.job import CellShape, WorkerJob
from bench.plan import PlannedCell, RuntimeConfig
from bench.profiles import board_mismatch
from bench.progress import WorkProgress
from bench.schedule import Comparison, Side, comparisons, failed_record, remeasure_hint, remeasure_keys
from bench.settings import Settings
from export.needs import missing_for
from export.onnx_export import ExportError, describe_model, describe_onnx, export_model
from export.variants import onnx_variant, parse_variant
from host.environment import collect_environment, throttle_snapshot, wavebench_version
from models.audio_format import samples_of
from models.registry import get_spec
from runners.canary import DRIFT_THRESHOLD
from runners.gemm_peak import gemm_peak_entry
from runners.memory import return_freed_memory
from runners.reference import save_reference
from runners.runtimes import ONNX_RUNTIMES, SHIPPABLE, artifacts
from runstore.folder import SCHEMA_VERSION, OpenedRun, RunFolder, open_run, portable_text
from runstore.identity import fingerprint_hash, identity
from runstore.records import DEFAULT_RUNTIMES, cell_key
from runstore.run_record import RunRecord, RunSession


@dataclass
class RunOutcome:
    run_dir: Path
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)  # notes for after the summary (the drift hint)
    answer: list[str] = field(default_factory=list)  # what was compared, the verdict, per-model figures
    wall_time: dict[str, Any] = field(default_factory=dict)  # predicted and actual, as in run.json

    @property
    def all_ok(self) -> bool:
        return all(k in ("ok", "unsupported") for k, v in self.counts.items() if v)


def open_run_folder(settings: Settings, fresh: bool, fingerprint: str,
                    run_identity: dict[str, Any], command: str = "") -> OpenedRun:
    """The run folder to measure in, locked for this process (:func:`runstore.folder.open_run`:
    raises ``RunInProgress`` while another process measures a run with these settings)."""
    return open_run(Path(settings.results_dir) / settings.device, settings.settings_hash(), fingerprint,
                    run_identity, fresh=fresh, reopen_complete=settings.remeasure == "drift", command=command)


def export_models(settings: Settings, log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Export (or reuse) every model's ONNX file and its variants; a failure is kept as that
    model's (or variant's) error and the suite goes on."""
    entries: dict[str, dict[str, Any]] = {}
    missing = missing_for(settings.exporter)  # said once per model, not as torch's import error
    for model in settings.models:
        spec = get_spec(model)
        try:
            if spec.arch.get("kind") == "onnx":
                entry = describe_onnx(spec)
            elif not set(ONNX_RUNTIMES) & set(settings.runtimes):
                entries[model] = describe_model(model, tiny=settings.tiny, weights=settings.weights)
                continue
            else:
                if missing is not None:
                    raise ExportError(missing)
                entry = export_model(model, settings.onnx_dir, tiny=settings.tiny, exporter=settings.exporter,
                                     weights=settings.weights)
                log(f"export {model}: {'up to date' if entry.get('skipped') else 'exported and checked'}")
        except Exception as exc:
            entries[model] = {"error": str(exc)}
            log(f"export {model}: FAILED: {exc}")
            continue
        entry["variant_files"], entry["variant_errors"] = {"fp32": entry["path"]}, {}
        for variant in settings.variants:
            if variant == "fp32":
                continue
            try:
                entry["variant_files"][variant] = str(onnx_variant(entry["path"], variant))
            except Exception as exc:
                entry["variant_errors"][variant] = f"{type(exc).__name__}: {exc}"
                log(f"variant {model} {variant}: FAILED: {exc}")
        entries[model] = entry
    return entries


def make_job(settings: Settings, folder: RunFolder, host: str, device_name: str,
             config: RuntimeConfig, shapes: list[CellShape], manifest: dict[str, Any]) -> WorkerJob:
    base_variant, _ = parse_variant(config.variant)
    files = manifest.get("variant_files", {})
    tensorrt = config.provider == "TensorrtExecutionProvider"  # builds its own engine from fp32
    return WorkerJob(
        model=config.model, runtime=config.runtime, provider=config.provider, variant=config.variant,
        threads=config.threads, run_id=folder.run_id, device=settings.device, device_name=device_name,
        host=host, cells=list(shapes),
        weights=manifest.get("weights", "random"), weights_source=settings.weights, tiny=settings.tiny,
        onnx_path=files.get("fp32") if tensorrt else files.get(base_variant),
        flops_onnx_path=files.get("fp32"), trt_cache=str(Path(settings.results_dir) / "trt_cache"),
        artifact_dir=str(artifact_cache(settings, config.runtime)) if config.runtime in ARTIFACT_CACHES else None,
        manifest_dir=settings.artifacts_dir if config.runtime in SHIPPABLE else None,
        manifest_entry=manifest, policy=settings.policy(), energy=settings.energy,
        energy_preferred=list(settings.energy_preferred),
        fake_timing=settings.extra.get("fake_timing"),  # tests only (worker/fake_timing.py)
    )


# runtimes that cache what they compile or export beside the ONNX files (OpenVINO's compiled model,
# ExecuTorch's .pte and LiteRT's .tflite per input shape): <ONNX_DIR>/<runtime>/
ARTIFACT_CACHES = ("openvino", "executorch", "litert")


def artifact_cache(settings: Settings, runtime: str) -> Path:
    """This machine's cache of ``runtime``'s artifacts (compiled models, programs, converted models)."""
    return Path(settings.onnx_dir) / runtime


def run_suite(settings: Settings, *, fresh: bool = False, profile_note: str | None = None,
              log: Callable[[str], None] = print, progress: bool = True,
              environment: dict[str, Any] | None = None, command: str | None = None) -> RunOutcome:
    """Measure every cell of ``settings`` not yet measured; ``command`` is what the user typed
    (recorded in run.json; default: this process's command line)."""
    host = socket.gethostname()
    if environment is None:
        environment = _environment()
    run_identity = identity(host, environment)
    fingerprint = fingerprint_hash(run_identity)
    opened = open_run_folder(settings, fresh, fingerprint, run_identity, command or typed_command(sys.argv[1:]))
    folder, resumed, why_not = opened.folder, opened.resumed, opened.why_not
    if why_not:
        log(f"new run {folder.path}: {why_not}")
    for note in opened.notes:
        log(note)
    device_name = _device_name(environment, settings)
    hardware_note = board_mismatch(settings.device, environment)
    if hardware_note:
        log(f"note: {hardware_note}: the numbers are this machine's, filed under {settings.device}")
    plan = settings.plan()
    repaired = folder.end_partial_line() if resumed else None
    if repaired:
        log(repaired)
    done = folder.done_keys() if resumed else set()
    if resumed and settings.remeasure == "drift":
        again = remeasure_keys(folder.cells())
        done -= again
        log(f"REMEASURE=drift: {len(again)} cell(s) of drifted comparisons will be measured again")
    todo = [c for c in plan if cell_key(c) not in done]
    if resumed:
        log(f"resuming {folder.path}: {len(plan) - len(todo)} of {len(plan)} cells already measured"
            + ("" if todo else " (nothing to do; FRESH=1 measures again)"))
    folder.write_run(session_record(
        folder.read_run() if resumed else RunRecord(), settings, run_id=folder.run_id, host=host,
        device_name=device_name, environment=environment, run_identity=run_identity, fingerprint=fingerprint,
        profile_note=profile_note, hardware_note=hardware_note, command=command or typed_command(sys.argv[1:])))
    gemm_rates: dict[str, float] = {}
    peaks: dict[tuple, tuple[dict[str, Any] | None, str | None]] = {}

    def peak_for(config: RuntimeConfig) -> tuple[dict[str, Any] | None, str | None]:
        """The GEMM peak of a runtime × threads × provider, measured (or read from the cache) once."""
        key = (config.runtime, config.threads, config.provider)
        if key not in peaks:
            peaks[key] = gemm_peak(settings, config, log)
        return peaks[key]

    session_started = time.monotonic()
    try:
        manifest = export_models(settings, log) if todo else {}
        return_freed_memory()  # the exported models are gone: give their memory back before the workers start
        estimate = predict(settings, todo, manifest, peak_for, log)
        export_s = time.monotonic() - session_started  # export, GEMM peaks, prediction
    except KeyboardInterrupt:
        log("interrupted before measuring: nothing was measured; run the same command again to resume")
        folder.update_run(status="interrupted", finished=_now())
        _close_session(folder, "interrupted", gemm_rates, settings)
        folder.release()
        return RunOutcome(folder.path, "interrupted", {})
    if manifest:
        folder.update_run(models=manifest)
    _record_wall_time(folder, export_s, estimate)
    outcome = RunOutcome(folder.path, "running")
    bar = WorkProgress(estimate, len(todo), progress)
    measure_started = time.monotonic()
    energy_said: set[str] = set()

    def on_record(record: dict[str, Any]) -> None:
        record["fingerprint"] = fingerprint  # points into run.json's fingerprints
        folder.append_cell(record)
        bar.finish(record)
        reason = record.get("energy_reason")
        if reason and reason not in energy_said and record.get("status") == "ok":
            energy_said.add(reason)
            measured = record.get("energy_j") is not None
            bar.write(f"energy: {'note' if measured else 'not measured'}: {reason}")

    status = "complete"
    references: dict[str, tuple[str | None, str | None]] = {}
    try:
        ticker = [0]
        for sides_of in comparisons(todo):
            sides = []
            for config, shapes in sides_of:
                entry = manifest.get(config.model, {})
                job = make_job(settings, folder, host, device_name, config, shapes, entry)
                job.gemm_peak, job.gemm_peak_reason = peak_for(config)
                peak = (job.gemm_peak or {}).get("flops_per_s")
                if peak:
                    gemm_rates[f"{config.runtime}|{config.threads}"] = peak
                job.reference_path, job.reference_error = reference(job, folder, references, Path(settings.onnx_dir) / "references")
                if config.runtime in ONNX_RUNTIMES and "error" in entry:
                    for shape in job.cells:
                        on_record(failed_record(job, shape, "error", f"ONNX export failed: {entry['error']}"))
                    continue
                variant_error = entry.get("variant_errors", {}).get(job.variant.split("+")[0])
                if config.runtime == "onnxruntime" and variant_error:
                    for shape in job.cells:
                        on_record(failed_record(job, shape, "unsupported", f"variant not available: {variant_error}"))
                    continue

                def on_start(shape: CellShape, c: RuntimeConfig = config) -> None:
                    bar.start(f"{c.model} {c.runtime} b{shape.batch_size} {shape.duration_s:g}s")

                sides.append(Side(job, folder.path / "logs", settings.cell_timeout_s, on_record, on_start))
            Comparison(sides, settings.order, settings.policy(), ticker, settings.speedup_base).run()
    except KeyboardInterrupt:
        status = "interrupted"
        bar.write("interrupted: finished cells are kept; run the same command again to resume")
    finally:
        bar.close()
        counts: dict[str, int] = {}
        for record in folder.cells():
            counts[record.get("status", "?")] = counts.get(record.get("status", "?"), 0) + 1
        throttle = {**(folder.read_run().throttle or {}), "after": _throttle_snapshot()}
        folder.update_run(status=status, finished=_now(), counts=counts, throttle=throttle)
        _close_session(folder, status, gemm_rates, settings)
        outcome.wall_time = _record_wall_time(folder, export_s, estimate,
                                              measure_s=time.monotonic() - measure_started,
                                              session_s=time.monotonic() - session_started)
        outcome.status, outcome.counts = status, counts
        hint = remeasure_hint(folder.cells(), DRIFT_THRESHOLD)
        if hint:  # printed by the command line after its summary (details come after the answer)
            outcome.messages.append(hint)
        outcome.answer = _write_report(folder.path, log)
        folder.release()
    return outcome


def session_record(previous: RunRecord, settings: Settings, *, run_id: str, host: str, device_name: str,
                   environment: dict[str, Any], run_identity: dict[str, Any], fingerprint: str,
                   profile_note: str | None, hardware_note: str | None, command: str) -> RunRecord:
    """run.json as a session starts: a new run's record, or the resumed run's (``previous``) with
    this session added.  One run = one host, software and hardware: a resumed run keeps its first
    session's environment and start time, and every session (a start or a resume) is kept."""
    now = _now()
    sessions = previous.sessions or []
    return replace(
        previous, schema_version=SCHEMA_VERSION, wavebench_version=wavebench_version(), run_id=run_id,
        device=settings.device, device_name=device_name, host=host, settings=settings.to_dict(),
        settings_hash=settings.settings_hash(), profile_note=profile_note, hardware_note=hardware_note,
        environment=sessions[0].environment if sessions else environment, status="running",
        started=previous.started or now, command=command, throttle={"before": _throttle_snapshot()},
        fingerprint=fingerprint, fingerprints={**(previous.fingerprints or {}), fingerprint: run_identity},
        sessions=[*sessions, RunSession(started=now, status="running", fingerprint=fingerprint, command=command,
                                        environment=environment)])


def predict(settings: Settings, todo: list[PlannedCell], manifest: dict[str, Any],
            peak_for: Callable[[RuntimeConfig], tuple[dict[str, Any] | None, str | None]],
            log: Callable[[str], None]) -> WorkEstimate | None:
    """The measuring phase's predicted wall time (``bench/estimate.py``), printed before the first
    cell; the GEMM peaks it needs are the ones the cells' utilisation is computed against.  A CPU
    runtime without a peak of its own (OpenVINO's CPU plugin, ExecuTorch's and LiteRT's XNNPACK) is predicted at the best CPU rate
    measured for its thread count."""
    if not todo:
        return None
    rates: dict[RuntimeConfig, float | None] = {}
    for unit in comparisons(todo):
        for config, _ in unit:
            rates[config] = (peak_for(config)[0] or {}).get("flops_per_s")
    cpu_rates: dict[int, float] = {}
    for config, rate in rates.items():
        if rate and _on_cpu(config):
            cpu_rates[config.threads] = max(rate, cpu_rates.get(config.threads, 0.0))
    for config, rate in rates.items():
        if not rate and _on_cpu(config):
            rates[config] = cpu_rates.get(config.threads)
    def artifact_ready(config: RuntimeConfig, shape: CellShape) -> bool:
        """Whether an edge runtime's side will find its artifact rather than make it."""
        if config.runtime not in SHIPPABLE:  # OpenVINO compiles in its load, counted in the worker's start
            return True
        return artifacts.at_hand(config.runtime, config.model, (int(shape.batch_size), samples_of(shape.duration_s)),
                                 artifact_cache(settings, config.runtime), settings.artifacts_dir)

    estimate = estimate_run(todo, settings.policy(), settings.order, manifest, rates.get, settings.tiny,
                            artifact_ready=artifact_ready)
    log(prediction_line(estimate, all(rates.values())))
    return estimate


def _on_cpu(config: RuntimeConfig) -> bool:
    """A CPU provider (PyTorch's ``cpu``, ONNX Runtime's CPU EP, OpenVINO's ``CPU`` plugin,
    ExecuTorch's and LiteRT's ``XNNPACK`` delegate)."""
    return str(config.provider).lower() in ("cpu", "cpuexecutionprovider", "xnnpack")


def _record_wall_time(folder: RunFolder, export_s: float, estimate: WorkEstimate | None,
                      measure_s: float | None = None, session_s: float | None = None) -> dict[str, Any]:
    """This session's predicted and actual wall time in run.json, set once the prediction exists and
    completed when the session ends: per phase in ``sessions[-1].wall_time`` (the report's appendix
    shows every session), and the latest session's totals as ``predicted_wall_s`` and
    ``actual_wall_s`` (what ``benchmarks/suite_time.py`` reads)."""
    predicted = estimate.first if estimate is not None else (0.0, 0.0, 0.0)
    measure: dict[str, Any] = {"cells": estimate.cells if estimate is not None else 0,
                               "predicted_s": round(predicted[0], 1), "low_s": round(predicted[1], 1),
                               "high_s": round(predicted[2], 1)}
    if measure_s is not None:
        measure["actual_s"] = round(measure_s, 1)
        if estimate is not None:
            measure["refined_s"] = round(estimate.total_s, 1)  # with every measured call time
    wall: dict[str, Any] = {"predicted_s": round(export_s + predicted[0], 1), "export": {"actual_s": round(export_s, 1)},
                            "measure": measure}
    if session_s is not None:
        wall["actual_s"] = round(session_s, 1)
    sessions = folder.read_run().sessions or [RunSession()]
    sessions[-1].wall_time = wall
    folder.update_run(sessions=sessions, predicted_wall_s=wall["predicted_s"], actual_wall_s=wall.get("actual_s"))
    return wall


def _close_session(folder: RunFolder, status: str, gemm_rates: dict[str, float], settings: Settings) -> None:
    """End this session's entry in run.json: status, time and the GEMM rates it measured with
    (the attainable rate per ``runtime|threads``; part of the hardware fingerprint, but not of
    its hash, because it is a measurement)."""
    sessions = folder.read_run().sessions or [RunSession()]
    session = sessions[-1]
    session.status, session.finished, session.gemm_flops_per_s = status, _now(), dict(gemm_rates)
    if not gemm_rates:
        session.gemm_reason = ("not measured (NO_PEAK=1)" if not settings.measure_peak
                               else "no CPU cell measured in this session")
    folder.update_run(sessions=sessions)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def typed_command(args: list[str]) -> str:
    """The command as the user gave it: ``make bench QUICK=1`` (the Makefile says so in
    ``WAVEBENCH_COMMAND``) or ``python -m runners ...``; never a path of this machine."""
    made = os.environ.get("WAVEBENCH_COMMAND", "").strip()
    if made:
        return portable_text(" ".join(made.split()))
    return portable_text(shlex.join(["python", "-m", "runners", *args]))


def _write_report(run_dir: Path, log: Callable[[str], None]) -> list[str]:
    """Tables, summary.csv, plots and report.md from what is on disk (also after Ctrl-C); the
    run's answer (the verdict and its figures) for the terminal summary."""
    try:
        # deferred: the report pulls matplotlib; measurement never loads it, and a report failure is logged, not fatal
        from report.run_report import answer_lines, write_report

        write_report(run_dir)
        return answer_lines(run_dir)
    except Exception as exc:  # a report failure must not lose or hide the measurements
        log(f"report not written: {type(exc).__name__}: {exc} (retry: make report RUN={run_dir})")
        return []


def _environment() -> dict[str, Any]:
    try:
        return collect_environment()
    except Exception as exc:  # the fingerprint must never stop a benchmark
        return {"error": f"environment not collected: {exc}"}


def reference(job: WorkerJob, folder: RunFolder, cache: dict[str, tuple[str | None, str | None]],
              cache_dir: Path | None = None) -> tuple[str | None, str | None]:
    """fp32 PyTorch outputs on the probe input, once per model and run, for the fidelity fields:
    ``(reference_path, reference_error)``; neither for the fp32 PyTorch job itself."""
    if job.runtime == "pytorch" and job.variant == "fp32":
        return None, None
    if job.model not in cache:
        path = folder.path / "references" / (re.sub(r"[^A-Za-z0-9._-]+", "_", job.model) + ".npz")
        path.parent.mkdir(exist_ok=True)
        try:
            save_reference(job.model, job.tiny, job.weights_source, path, cache_dir)
            cache[job.model] = (str(path), None)
        except Exception as exc:  # e.g. an ONNX file has no PyTorch model
            cache[job.model] = (None, f"no fp32 PyTorch reference: {type(exc).__name__}: {exc}")
        return_freed_memory()  # the reference model built here is gone: give its memory back
    return cache[job.model]


PEAK_RECORD = ("flops_per_s", "measured_at", "load_average", "others_cpu_share", "under_load", "library",
               "cached", "remeasured_because")


def gemm_peak(settings: Settings, config: RuntimeConfig,
              log: Callable[[str], None]) -> tuple[dict[str, Any] | None, str | None]:
    """The attainable dense-matmul FLOP/s for this worker's runtime and threads, with when and
    under what load it was measured, or why there is none: ``(gemm_peak, gemm_peak_reason)``."""
    if config.runtime not in DEFAULT_RUNTIMES:
        return None, f"no GEMM peak for {config.runtime} (measured with PyTorch's and ONNX Runtime's GEMM only)"
    if config.provider not in ("cpu", "CPUExecutionProvider") or not settings.measure_peak:
        return None, None  # GPU peaks: PyTorch only and not for ORT; kept to the CPU here
    try:
        entry = gemm_peak_entry(int(config.threads or 1), "float32", config.runtime,
                                cache_path=Path(settings.results_dir) / "gemm_peak.json")
    except Exception as exc:
        log(f"GEMM peak not measured: {exc}")
        return None, f"GEMM peak not measured: {type(exc).__name__}: {exc}"
    if entry.get("remeasured_because"):
        log(f"GEMM peak ({config.runtime}, {config.threads} threads) measured again: {entry['remeasured_because']}")
    if entry.get("under_load"):
        log(f"GEMM peak ({config.runtime}, {config.threads} threads) measured under load "
            f"(load average {entry.get('load_average')}): utilisation figures are overstated")
    return {k: entry.get(k) for k in PEAK_RECORD}, None


def _throttle_snapshot() -> dict[str, Any]:
    """Temperatures and throttling flags (Pi, thermal zones) before and after the run."""
    try:
        return throttle_snapshot()
    except Exception as exc:
        return {"error": f"throttle snapshot failed: {exc}"}


def _device_name(environment: dict[str, Any], settings: Settings) -> str:
    for key in ("gpu_name", "jetson_model", "rpi_model", "cpu_model"):
        value = _find(environment, key)
        if value:
            return str(value)
    return settings.device


def _find(data: Any, key: str) -> Any:
    if isinstance(data, dict):
        if data.get(key):
            return data[key]
        for value in data.values():
            found = _find(value, key)
            if found:
                return found
    return None
