"""The worker: one process measures one model under one runtime configuration.

Started by the suite (``python -m worker``) with a JSON job as the first line of its
stdin; once its imports are done it says ``ready`` and loads its model when the parent says
``load`` (the parent starts a comparison's workers together, so their imports overlap, and lets one
model load at a time, so that each ``load_time_s`` is the load alone).  The parent then sends
commands, one JSON line each (a canary reading, a round of a cell, finish a cell), and the worker
answers with JSON lines on its own stdout (``ready``, ``loaded``, ``start``, ``round``, ``canary``,
``cell``, ``done``).  The parent thus decides the order in which runtimes
measure (interleaved rounds or phase by phase, ``bench/schedule.py``), writes each cell as soon
as it exists, and can tell which cell was running when a worker crashed, ran out of memory or
timed out.  Anything libraries print goes to stderr, never into the protocol.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from typing import Any, Callable, Iterable

import numpy as np

from bench.job import CellShape, WorkerJob
from energy import FIELDS as ENERGY_FIELDS
from energy import open_meter_or_reason
from export.variants import parse_variant
from flops import macs_for
from models.audio_format import samples_of
from models.registry import get_spec
from runners.audio import synthetic_batch
from runners.canary import make_canary, read_canary
from runners.gemm_peak import achieved_flops_per_s, utilization
from runners.harness import REWARM_BELOW_S, TimingPolicy, WarmUp, time_round, warm_up
from runners.memory import PeakRSSTracker
from runners.reference import build_reference, fidelity_probe
from runners.runtimes import Runtime, UnsupportedError, make_runtime, on_accelerator
from runners.stats import summarize
from runners.stopping import CellBudget, cell_budget
from runstore.records import CellRecord
from worker.fake_timing import FakeTiming


def make_job_runtime(job: WorkerJob) -> Runtime:
    """The job's runtime, built through the one registry (``runners.runtimes.make_runtime``)."""
    variant, opt = parse_variant(job.variant)
    return make_runtime(job.runtime, build=lambda: build_reference(job.model, job.tiny, job.weights_source),
                        onnx_path=job.onnx_path, provider=job.provider, threads=job.threads,
                        variant=variant, opt_level=opt, trt_cache=job.trt_cache, artifact_dir=job.artifact_dir,
                        model=job.model, manifest_dir=job.manifest_dir)


class CellMeasurement:
    """One cell measured in rounds: the parent decides when this runtime measures (its order)
    and when the cell is done; the worker keeps the samples and writes the record at the end."""

    def __init__(self, job: WorkerJob, cell: CellShape, runtime: Runtime, tracker: PeakRSSTracker,
                 policy: TimingPolicy, clock: Callable[[], int] = time.perf_counter_ns,
                 wrap: Callable[[Callable[[], Any]], Callable[[], Any]] = lambda c: c) -> None:
        self.job, self.cell, self.runtime, self.tracker, self.policy = job, cell, runtime, tracker, policy
        self.clock, self.wrap = clock, wrap
        self.rec = job.base_record(cell)
        self.samples: list[float] = []
        self.round_medians: list[float] = []
        self.round_ticks: list[int] = []
        self.measured_s = 0.0
        self.call: Callable[[], Any] | None = None
        self.warm: WarmUp | None = None
        self.budget: CellBudget | None = None
        self.rounds_overhead_s = 0.0  # round time outside the timed blocks (the re-warm call, the loop)
        self.device_baseline: int | None = None

    def begin(self) -> CellRecord | None:
        """Prepare the input, time the first call, check the output, warm up.  A finished
        record (unsupported, oom) when the cell ends here; None when rounds can follow."""
        spec = get_spec(self.job.model)
        rec, runtime = self.rec, self.runtime
        rec.load_time_s = runtime.load_time_s
        batch, duration = rec.batch_size, rec.duration_s
        samples = samples_of(duration)
        self.input_samples = samples
        if samples < spec.min_samples:
            rec.status = "unsupported"
            rec.error = (f"duration {duration:g}s is shorter than {spec.name}'s minimum input "
                         f"{spec.min_duration_s:g}s ({spec.min_samples} samples)")
            return rec
        wav = synthetic_batch(batch, samples, seed=0)
        try:
            prepared = runtime.prepare(wav)  # ExecuTorch and LiteRT make their artifact for this shape here
        except UnsupportedError as exc:
            rec.status, rec.error = "unsupported", str(exc)
            return rec
        if runtime.batch_of(prepared) != batch:
            raise RuntimeError(f"prepared input has batch {runtime.batch_of(prepared)}, expected {batch}")
        call = self.wrap(runtime.make_call(prepared))
        try:
            self.tracker.reset()
            self.device_baseline = runtime.reset_device_peak()
            start = self.clock()  # the first call for this input shape, timed on its own
            raw = call()
            runtime.sync()
            rec.first_call_s = (self.clock() - start) / 1e9
            outputs = runtime.outputs_numpy(raw)
            del raw
            framing_known = spec.arch.get("kind") not in ("python", "onnx")  # users' files don't say
            self.measured_shape = [int(d) for d in outputs[-1].shape]  # what the model returned
            self.expected = (batch, spec.frames(samples) if framing_known else self.measured_shape[1])
            if tuple(self.measured_shape[:2]) != self.expected:
                raise RuntimeError(f"output shape {tuple(self.measured_shape)} does not match batch x frames "
                                   f"{self.expected}")
            del outputs
            self.warm = warm_up(call, self.policy, runtime.sync, self.clock, first_call_s=rec.first_call_s,
                                long_call_warmups=1 if on_accelerator(runtime) else 0)
            self.budget = cell_budget(self.policy, self.warm.call_s * self.warm.calls_per_sample)
        except MemoryError as exc:
            rec.status, rec.error = "oom", f"out of memory: {exc}"
            return rec
        self.call = call
        return None

    def round(self, tick: int) -> list[float]:
        """One round, sized by the cell's budget (the same rule the parent stops by)."""
        assert self.call is not None and self.warm is not None and self.budget is not None
        try:
            # the first round follows the warm-up; long calls barely notice cold caches
            rewarm = bool(self.samples) and float(np.median(self.samples)) < REWARM_BELOW_S
            start = self.clock()
            got = time_round(self.call, self.warm.calls_per_sample, self.budget.samples_per_round,
                             self.budget.round_time_s, self.runtime.sync, self.clock, rewarm=rewarm)
            wall = (self.clock() - start) / 1e9
        except MemoryError as exc:
            self.rec.status, self.rec.error = "oom", f"out of memory: {exc}"
            raise CellEnded(self.rec) from None
        timed = sum(got) * self.warm.calls_per_sample
        self.rounds_overhead_s += max(0.0, wall - timed)
        self.samples += got
        self.measured_s += timed
        self.round_medians.append(float(np.median(got)))
        self.round_ticks.append(tick)
        return got

    def finish(self, meter, energy_reason: str | None, idle_w: float | None, fidelity: tuple) -> CellRecord:
        """The record from every round's samples, then memory, compute and energy."""
        rec, runtime = self.rec, self.runtime
        if not self.samples:
            raise RuntimeError("the cell was finished before any round was measured")
        assert self.warm is not None and self.call is not None
        rec.peak_memory_bytes = self.tracker.peak_over_baseline()
        device_peak = runtime.device_peak_over(self.device_baseline)
        if device_peak is not None:  # on a GPU the cell's peak is the device's; host RSS kept aside
            rec.extra["host_peak_rss_bytes"] = rec.peak_memory_bytes
            rec.peak_memory_bytes = device_peak
            rec.extra["peak_memory_kind"] = "cuda max_memory_allocated over baseline"
        else:
            rec.extra["peak_memory_kind"] = "process peak RSS over baseline"
        stats = summarize(self.samples)
        for key, value in stats.to_fields().items():
            setattr(rec, key, value)
        rec.latency_samples_s = list(self.samples)
        rec.latency_calls_per_sample = self.warm.calls_per_sample
        rec.round_medians_s = list(self.round_medians)
        audio_s = rec.batch_size * rec.duration_s
        rec.rtf = stats.median / audio_s
        rec.throughput_audio_s_per_s = audio_s / stats.median
        rec.output_max_abs_err, rec.output_cosine, fid_error = fidelity
        rec.extra.update({"output_shape": self.measured_shape, "input_samples": self.input_samples,
                          "warmup_calls": self.warm.warmup_calls, "measured_time_s": self.measured_s,
                          "io": runtime.io, "round_ticks": list(self.round_ticks), **runtime.facts,
                          # the worker's share of the cell's time outside timed calls (bench/schedule
                          # adds the parent's: worker start, canary, settle waits, protocol)
                          "overhead_s": {"first_call": rec.first_call_s, "warm_up": self.warm.seconds,
                                         "rewarm": self.rounds_overhead_s}})
        add_compute(self.job, rec, self.input_samples)
        if fid_error:
            rec.extra["fidelity_error"] = fid_error
        if meter is not None and meter.available:
            fields = meter.measure(self.call, audio_s_per_call=audio_s,
                                   min_window_s=self.job.energy_window_s,
                                   idle_power_w=idle_w, sync=runtime.sync)
            add_energy(rec, fields)
        else:
            rec.energy_reason = energy_reason
        return rec


def add_energy(rec: CellRecord, fields: dict[str, Any]) -> None:
    """The meter's fields onto the record: its declared energy fields (``energy.FIELDS``, each a
    ``CellRecord`` field) as they are, anything else it reports (per-domain detail) into ``extra``."""
    for name in ENERGY_FIELDS:
        setattr(rec, name, fields.get(name))
    rec.extra.update({k: v for k, v in fields.items() if k not in ENERGY_FIELDS})


class CellEnded(Exception):
    """A round ended the cell (out of memory): the record carries the status."""

    def __init__(self, record: CellRecord) -> None:
        super().__init__(record.error)
        self.record = record


def add_compute(job: WorkerJob, rec: CellRecord, samples: int) -> None:
    """MACs/FLOPs of the cell's exact input shape, achieved FLOP/s and share of the GEMM peak."""
    if job.gemm_peak_reason:
        rec.extra["gemm_peak_reason"] = job.gemm_peak_reason
    try:
        counted = macs_for(job.model, job.flops_onnx_path, rec.batch_size, samples, tiny=job.tiny)
    except Exception as exc:  # counting must never cost the latency cell
        rec.extra["macs_reason"] = f"{type(exc).__name__}: {exc}"
        return
    if not counted.get("macs"):
        rec.extra["macs_reason"] = "no MAC count for this model (no ONNX graph and no formula)"
        return
    rec.macs, rec.flops = int(counted["macs"]), int(counted["flops"])
    rec.extra["macs_source"] = counted.get("source")
    rec.achieved_flops_per_s = achieved_flops_per_s(rec.flops, rec.latency_median_s)
    record = job.gemm_peak or {}
    peak = record.get("flops_per_s")
    rec.utilization = utilization(rec.achieved_flops_per_s, peak)
    if peak:
        rec.extra["gemm_peak_flops_per_s"] = peak
        rec.extra["gemm_peak"] = record  # which peak: when, under what load, which library


def log(line: str) -> None:
    """One line in this worker's log (its stderr: ``logs/<worker>.log`` in the run folder)."""
    print(f"worker: {line}", file=sys.stderr, flush=True)


def serve(job: WorkerJob, commands: Iterable[str], emit: Callable[[dict[str, Any]], None]) -> None:
    """Say ``ready``, load the model when told (``{"op": "load"}``), then answer the parent's
    commands (one JSON object a line) until ``quit`` or the end of stdin:

    - ``{"op": "canary", "tick": t}`` -> ``{"type": "canary", "seconds": s}``
    - ``{"op": "round", "cell": c, "tick": t}`` -> ``start`` (on the cell's first round), then
      ``{"type": "round", "samples": [...], "measured_s": x, "sample_s": s}`` (a round as long as
      the job's policy says for this call: ``runners.stopping.cell_budget``), or a final ``cell``
      record when the cell ended (unsupported, out of memory, error)
    - ``{"op": "finish", "cell": c}`` -> ``{"type": "cell", "record": {...}}``

    A runtime that cannot load answers ``{"type": "unsupported", "error": ...}`` and exits.
    """
    commands = iter(commands)
    # the log (stderr) says when each phase began on the system-wide monotonic clock, so that the
    # worker logs of one comparison show that its models loaded one at a time
    log(f"ready at {time.monotonic():.6f}")
    emit({"type": "ready"})  # imports done; the parent says when to load (one model loading at a time)
    for line in commands:
        if line.strip():
            if json.loads(line).get("op") != "load":
                return  # quit (or anything else) before loading: nothing to measure
            break
    else:
        return  # end of input before loading
    log(f"load started at {time.monotonic():.6f}")
    policy: TimingPolicy = job.policy
    fake = FakeTiming.from_job(job)
    clock = fake.clock if fake else time.perf_counter_ns
    wrap = fake.wrap if fake else (lambda c: c)
    try:
        runtime = make_job_runtime(job)
        runtime.load()
    except UnsupportedError as exc:
        emit({"type": "unsupported", "error": str(exc)})
        return
    spec = get_spec(job.model)  # imports done before the baseline: they are not a cell's memory
    canary, canary_error = None, None
    if not fake:
        try:
            canary = make_canary(job.runtime, job.threads, job.provider, job.artifact_dir, job.manifest_dir)
        except Exception as exc:  # no canary must never cost the cells: drift stays unknown (null)
            canary_error = f"canary unavailable: {type(exc).__name__}: {exc}"
    tracker = PeakRSSTracker()
    gc.collect()
    tracker.set_baseline()  # the loaded model, before the probe or any cell touches activations
    fidelity = fidelity_probe(runtime, spec, job.reference_path, job.reference_error,
                              is_reference=job.runtime == "pytorch" and job.variant == "fp32")
    meter, energy_reason = open_meter_or_reason(job.energy, job.energy_preferred)
    idle_w = None
    if meter is not None and meter.available:
        idle_w = meter.measure_idle(job.idle_s)
    log(f"loaded at {time.monotonic():.6f} (load_time_s {runtime.load_time_s:.3f})")
    emit({"type": "loaded", "load_time_s": runtime.load_time_s})
    cells: dict[CellShape, CellMeasurement] = {}
    for line in commands:
        if not line.strip():
            continue
        command = json.loads(line)
        op = command.get("op")
        if fake is not None:
            fake.tick = int(command.get("tick", fake.tick))
        if op == "quit":
            break
        if op == "canary":
            seconds = fake.canary() if fake else read_canary(canary) if canary else None
            emit({"type": "canary", "seconds": seconds, "error": canary_error})
            continue
        cell = CellShape.from_dict(command["cell"])  # parsed once, where the command arrives
        try:
            if op == "round":
                if cell not in cells:
                    emit({"type": "start", "cell": cell.to_dict()})
                    cells[cell] = CellMeasurement(job, cell, runtime, tracker, policy, clock, wrap)
                    ended = cells[cell].begin()
                    if ended is not None:
                        raise CellEnded(ended)
                measuring = cells[cell]
                got = measuring.round(int(command.get("tick", 0)))
                assert measuring.warm is not None and measuring.budget is not None
                emit({"type": "round", "samples": got, "measured_s": sum(got) * measuring.warm.calls_per_sample,
                      "sample_s": measuring.budget.sample_s})
            elif op == "finish":
                rec = cells.pop(cell).finish(meter, energy_reason, idle_w, fidelity)
                emit({"type": "cell", "record": rec.to_dict()})
        except CellEnded as ended:
            cells.pop(cell, None)
            emit({"type": "cell", "record": ended.record.to_dict()})
        except Exception as exc:
            cells.pop(cell, None)
            rec = job.base_record(cell)
            rec.status, rec.error = "error", f"{type(exc).__name__}: {exc}"
            emit({"type": "cell", "record": rec.to_dict()})
    if meter is not None:
        meter.close()
    runtime.close()
    emit({"type": "done"})


def main() -> None:
    job = WorkerJob.from_dict(json.loads(sys.stdin.readline()))
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to stderr
    sys.stdout = sys.stderr

    def emit(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        serve(job, sys.stdin, emit)
    except KeyboardInterrupt:
        sys.exit(130)

