"""The suite: plan the cells, export what is needed, run one worker per model × runtime
configuration, and turn each worker's crash, out-of-memory kill or timeout into that cell's
status while the suite goes on.  Ctrl-C keeps every finished cell and marks the run
``interrupted``; running the same settings again resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any, Callable

from export.onnx_export import describe_model, describe_onnx, export_model
from export.variants import onnx_variant, parse_variant
from host.environment import collect_environment, throttle_snapshot, wavebench_version
from models.registry import get_spec
from runners.gemm_peak import gemm_peak_entry
from runners.profiles import board_mismatch
from runners.settings import Settings
from runners.worker import base_record, save_reference
from runstore.folder import SCHEMA_VERSION, RunFolder, find_resumable, new_run_id, portable_text
from runstore.records import CellRecord, cell_key

REPO_ROOT = Path(__file__).resolve().parent.parent
GROUP_FIELDS = ("model", "runtime", "provider", "variant", "threads")


@dataclass
class RunOutcome:
    run_dir: Path
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    @property
    def all_ok(self) -> bool:
        return all(k in ("ok", "unsupported") for k, v in self.counts.items() if v)


def open_run_folder(settings: Settings, profile_note: str | None, fresh: bool) -> tuple[RunFolder, bool]:
    device_dir = Path(settings.results_dir) / settings.device
    existing = None if fresh else find_resumable(device_dir, settings.settings_hash())
    if existing is not None:
        return RunFolder(existing), True
    return RunFolder(device_dir / new_run_id(settings.settings_hash())), False


def export_models(settings: Settings, log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Export (or reuse) every model's ONNX file and its variants; a failure is kept as that
    model's (or variant's) error and the suite goes on."""
    entries: dict[str, dict[str, Any]] = {}
    for model in settings.models:
        spec = get_spec(model)
        try:
            if spec.arch.get("kind") == "onnx":
                entry = describe_onnx(spec)
            elif "onnxruntime" not in settings.runtimes:
                entries[model] = describe_model(model, tiny=settings.tiny, weights=settings.weights)
                continue
            else:
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


class WorkerSupervisor:
    """Runs one worker process for a group of cells and relays its messages with timeouts."""

    def __init__(self, job: dict[str, Any], log_path: Path, cell_timeout_s: float, load_timeout_s: float) -> None:
        self.job, self.log_path = job, log_path
        self.cell_timeout_s, self.load_timeout_s = cell_timeout_s, load_timeout_s
        self.proc: subprocess.Popen | None = None
        self.messages: queue.Queue = queue.Queue()

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "runners.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log, cwd=str(REPO_ROOT), env=env,
                                     text=True, start_new_session=True)
        log.close()
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(self.job))
        self.proc.stdin.close()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.messages.put(json.loads(line))
            except ValueError:
                continue
        self.messages.put(None)  # end of stream

    def next_message(self, timeout: float) -> dict[str, Any] | None | str:
        """A message, ``None`` at end of stream, or ``"timeout"``."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return "timeout"

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        if self.proc:
            self.proc.wait()

    def exit_description(self) -> tuple[str, str]:
        """(status, message) for a worker that ended without finishing its cells."""
        assert self.proc is not None
        code = self.proc.wait()
        tail = _log_tail(self.log_path)
        if code in (-signal.SIGKILL, 137):
            return "oom", f"worker killed by SIGKILL (exit {code}), most likely out of memory; {tail}"
        if code < 0:
            return "error", f"worker died with signal {-code}; {tail}"
        return "error", f"worker exited with code {code}; {tail}"


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = [l for l in path.read_text().splitlines() if l.strip()]
    except OSError:
        return "no log"
    return "log: " + " | ".join(text[-lines:])[-500:] if text else "empty log"


def make_job(settings: Settings, folder: RunFolder, host: str, device_name: str,
             group: dict[str, Any], cells: list[dict[str, Any]], manifest: dict[str, Any]) -> dict[str, Any]:
    base_variant, _ = parse_variant(group["variant"])
    files = manifest.get("variant_files", {})
    return {
        **group, "run_id": folder.run_id, "device": settings.device, "device_name": device_name,
        "host": host, "weights": manifest.get("weights", "random"), "weights_source": settings.weights,
        "tiny": settings.tiny,
        "onnx_path": files.get(base_variant) if group["provider"] != "TensorrtExecutionProvider" else files.get("fp32"),
        "flops_onnx_path": files.get("fp32"),
        "trt_cache": str(Path(settings.results_dir) / "trt_cache"),
        "manifest_entry": manifest, "policy": settings.policy(),
        "energy": settings.energy, "energy_preferred": list(settings.energy_preferred),
        "cells": [{"batch_size": c["batch_size"], "duration_s": c["duration_s"]} for c in cells],
    }


def failed_record(job: dict[str, Any], cell: dict[str, Any], status: str, message: str) -> dict[str, Any]:
    rec: CellRecord = base_record(job, cell)
    rec.status, rec.error = status, message
    return rec.to_dict()


def run_group(job: dict[str, Any], folder: RunFolder, settings: Settings,
              on_record: Callable[[dict[str, Any]], None], on_start: Callable[[dict[str, Any]], None]) -> None:
    """Measure a group's cells; restart the worker after a cell that killed it."""
    remaining = list(job["cells"])
    name = f"{job['model']}-{job['runtime']}-{job['provider']}-{job['variant']}-t{job['threads']}"
    log_path = folder.path / "logs" / (re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") + ".log")
    while remaining:
        sup = WorkerSupervisor({**job, "cells": remaining}, log_path, settings.cell_timeout_s,
                               load_timeout_s=max(settings.cell_timeout_s, 600))
        sup.start()
        current: dict[str, Any] | None = None
        timeout = sup.load_timeout_s
        try:
            while True:
                message = sup.next_message(timeout)
                if message == "timeout":
                    sup.kill()
                    cell = current or remaining[0]
                    what = f"cell exceeded {settings.cell_timeout_s:g}s" if current else \
                        f"model load exceeded {sup.load_timeout_s:g}s"
                    on_record(failed_record(job, cell, "timeout", what))
                    remaining = remaining[remaining.index(cell) + 1:]
                    break
                if message is None:  # stream ended
                    status, text = sup.exit_description()
                    if not remaining:
                        break
                    cell = current or remaining[0]
                    on_record(failed_record(job, cell, status, text))
                    remaining = remaining[remaining.index(cell) + 1:]
                    break
                kind = message.get("type")
                if kind == "start":
                    current = {"batch_size": message["cell"]["batch_size"], "duration_s": message["cell"]["duration_s"]}
                    on_start(current)
                    timeout = settings.cell_timeout_s
                elif kind == "cell":
                    record = message["record"]
                    on_record(record)
                    done = {"batch_size": record["batch_size"], "duration_s": record["duration_s"]}
                    remaining = [c for c in remaining if c != done]
                    current = None
                elif kind == "loaded":
                    timeout = settings.cell_timeout_s
                elif kind == "done":
                    sup.proc.wait()
                    remaining = []
                    break
        except BaseException:
            sup.kill()
            raise


def run_suite(settings: Settings, *, fresh: bool = False, profile_note: str | None = None,
              log: Callable[[str], None] = print, progress: bool = True,
              environment: dict[str, Any] | None = None, command: str | None = None) -> RunOutcome:
    """Measure every cell of ``settings`` not yet measured; ``command`` is what the user typed
    (recorded in run.json; default: this process's command line)."""
    folder, resumed = open_run_folder(settings, profile_note, fresh)
    host = socket.gethostname()
    if environment is None:
        environment = _environment()
    device_name = _device_name(environment, settings)
    hardware_note = board_mismatch(settings.device, environment)
    if hardware_note:
        log(f"note: {hardware_note}: the numbers are this machine's, filed under {settings.device}")
    plan = settings.plan()
    repaired = folder.end_partial_line() if resumed else None
    if repaired:
        log(repaired)
    done = folder.done_keys() if resumed else set()
    base = {"run_id": folder.run_id, "device": settings.device}
    todo = [c for c in plan if cell_key({**base, **c}) not in done]
    if resumed:
        log(f"resuming {folder.path}: {len(plan) - len(todo)} of {len(plan)} cells already measured"
            + ("" if todo else " (nothing to do; FRESH=1 measures again)"))
    run_info = folder.read_run() if resumed else {}
    run_info.update({
        "schema_version": SCHEMA_VERSION, "wavebench_version": wavebench_version(),
        "run_id": folder.run_id, "device": settings.device, "device_name": device_name, "host": host,
        "settings": settings.to_dict(), "settings_hash": settings.settings_hash(),
        "profile_note": profile_note, "hardware_note": hardware_note, "environment": environment,
        "status": "running",
        "started": run_info.get("started") or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command or typed_command(sys.argv[1:]),
        "throttle": {"before": _throttle_snapshot()},
    })
    folder.write_run(run_info)
    try:
        manifest = export_models(settings, log) if todo else {}
    except KeyboardInterrupt:
        log("interrupted during export: nothing was measured; run the same command again to resume")
        folder.update_run(status="interrupted", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        return RunOutcome(folder.path, "interrupted", {})
    if manifest:
        folder.update_run(models=manifest)
    outcome = RunOutcome(folder.path, "running")
    bar = _progress(len(todo), progress)
    energy_said: set[str] = set()

    def on_record(record: dict[str, Any]) -> None:
        folder.append_cell(record)
        bar.update(1)
        reason = record.get("energy_reason")
        if reason and reason not in energy_said and record.get("status") == "ok":
            energy_said.add(reason)
            measured = record.get("energy_j") is not None
            bar.write(f"energy: {'note' if measured else 'not measured'}: {reason}")

    status = "complete"
    references: dict[str, dict[str, str]] = {}
    try:
        keyfn = lambda c: tuple(c[f] for f in GROUP_FIELDS)
        for group_key, cells in groupby(todo, key=keyfn):
            # increasing input size: allocator arenas then never hold more than the cell needs
            cells = sorted(cells, key=lambda c: (c["batch_size"] * c["duration_s"], c["duration_s"]))
            group = dict(zip(GROUP_FIELDS, group_key))
            entry = manifest.get(group["model"], {})
            job = make_job(settings, folder, host, device_name, group, cells, entry)
            job.update(gemm_peak(settings, group, log))
            job.update(reference(job, folder, references))
            if group["runtime"] == "onnxruntime" and "error" in entry:
                for cell in job["cells"]:
                    on_record(failed_record(job, cell, "error", f"ONNX export failed: {entry['error']}"))
                continue
            variant_error = entry.get("variant_errors", {}).get(job["variant"].split("+")[0])
            if group["runtime"] == "onnxruntime" and variant_error:
                for cell in job["cells"]:
                    on_record(failed_record(job, cell, "unsupported", f"variant not available: {variant_error}"))
                continue

            def on_start(cell: dict[str, Any], g=group) -> None:
                bar.set_description(f"{g['model']} {g['runtime']} b{cell['batch_size']} {cell['duration_s']:g}s")

            run_group(job, folder, settings, on_record, on_start)
    except KeyboardInterrupt:
        status = "interrupted"
        bar.write("interrupted: finished cells are kept; run the same command again to resume")
    finally:
        bar.close()
        counts: dict[str, int] = {}
        for record in folder.cells():
            counts[record.get("status", "?")] = counts.get(record.get("status", "?"), 0) + 1
        throttle = folder.read_run().get("throttle", {})
        throttle["after"] = _throttle_snapshot()
        folder.update_run(status=status, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), counts=counts,
                          throttle=throttle)
        outcome.status, outcome.counts = status, counts
        _write_report(folder.path, log)
    return outcome


def typed_command(args: list[str]) -> str:
    """The command as the user gave it: ``make bench QUICK=1`` (the Makefile says so in
    ``WAVEBENCH_COMMAND``) or ``python -m runners ...``; never a path of this machine."""
    made = os.environ.get("WAVEBENCH_COMMAND", "").strip()
    if made:
        return portable_text(" ".join(made.split()))
    return portable_text(shlex.join(["python", "-m", "runners", *args]))


def _write_report(run_dir: Path, log: Callable[[str], None]) -> None:
    """Tables, summary.csv, plots and report.md from what is on disk (also after Ctrl-C)."""
    try:
        # deferred: the report pulls matplotlib; measurement never loads it, and a report failure is logged, not fatal
        from report.run_report import write_report

        write_report(run_dir)
    except Exception as exc:  # a report failure must not lose or hide the measurements
        log(f"report not written: {type(exc).__name__}: {exc} (retry: make report RUN={run_dir})")


def _environment() -> dict[str, Any]:
    try:
        return collect_environment()
    except Exception as exc:  # the fingerprint must never stop a benchmark
        return {"error": f"environment not collected: {exc}"}


def reference(job: dict[str, Any], folder: RunFolder, cache: dict[str, dict[str, str]]) -> dict[str, str]:
    """fp32 PyTorch outputs on the probe input, once per model and run, for the fidelity fields."""
    if job["runtime"] == "pytorch" and job["variant"] == "fp32":
        return {}
    if job["model"] not in cache:
        path = folder.path / "references" / (re.sub(r"[^A-Za-z0-9._-]+", "_", job["model"]) + ".npz")
        path.parent.mkdir(exist_ok=True)
        try:
            save_reference(job, path)
            cache[job["model"]] = {"reference_path": str(path)}
        except Exception as exc:  # e.g. an ONNX file has no PyTorch model
            cache[job["model"]] = {"reference_error": f"no fp32 PyTorch reference: {type(exc).__name__}: {exc}"}
    return cache[job["model"]]


PEAK_RECORD = ("flops_per_s", "measured_at", "load_average", "others_cpu_share", "under_load", "library",
               "cached", "remeasured_because")


def gemm_peak(settings: Settings, group: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """The attainable dense-matmul FLOP/s for this group's runtime and threads, with when and
    under what load it was measured (``{"gemm_peak": {...}}``), or why there is none."""
    if group["provider"] not in ("cpu", "CPUExecutionProvider") or not settings.measure_peak:
        return {}  # GPU peaks: PyTorch only and not for ORT; kept to the CPU here
    try:
        entry = gemm_peak_entry(int(group["threads"] or 1), "float32", group["runtime"],
                                cache_path=Path(settings.results_dir) / "gemm_peak.json")
    except Exception as exc:
        log(f"GEMM peak not measured: {exc}")
        return {"gemm_peak_reason": f"GEMM peak not measured: {type(exc).__name__}: {exc}"}
    if entry.get("remeasured_because"):
        log(f"GEMM peak ({group['runtime']}, {group['threads']} threads) measured again: {entry['remeasured_because']}")
    if entry.get("under_load"):
        log(f"GEMM peak ({group['runtime']}, {group['threads']} threads) measured under load "
            f"(load average {entry.get('load_average')}): utilisation figures are overstated")
    return {"gemm_peak": {k: entry.get(k) for k in PEAK_RECORD}}


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


class _NullBar:
    def update(self, n: int = 1) -> None: ...
    def set_description(self, text: str) -> None: ...
    def write(self, text: str) -> None: print(text, file=sys.stderr)
    def close(self) -> None: ...


def _progress(total: int, enabled: bool):
    if not enabled:
        return _NullBar()
    # deferred: tqdm is needed only when a progress bar is shown
    from tqdm import tqdm

    return tqdm(total=total, unit="cell", dynamic_ncols=True, file=sys.stderr)
