"""The worker: one process measures one model under one runtime configuration.

Started by the suite (``python -m runners.worker``) with a JSON job on stdin; it answers with
JSON lines on its own stdout (``loaded``, ``start``, ``cell``, ``done``) so that the parent can
write each cell as soon as it exists, and can tell which cell was running when a worker
crashed, ran out of memory or timed out.  Anything libraries print goes to stderr, never into
the protocol.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from energy import open_meter
from export.onnx_export import compare_outputs
from export.variants import parse_variant
from flops import macs_for
from models.audio_format import SAMPLE_RATE
from models.build import build_weighted
from models.registry import get_spec
from runners.audio import synthetic_batch
from runners.gemm_peak import achieved_flops_per_s, utilization
from runners.harness import TimingPolicy, time_callable
from runners.memory import PeakRSSTracker
from runners.runtimes import OnnxRuntimeRuntime, PyTorchRuntime, Runtime, UnsupportedError
from runstore.records import CellRecord

PROBE_SECONDS = 1.0


def make_runtime(job: dict[str, Any]) -> Runtime:
    variant, opt = parse_variant(job.get("variant", "fp32"))
    if job["runtime"] == "pytorch":
        device = "cuda" if job["provider"].startswith("cuda") else "cpu"
        return PyTorchRuntime(lambda: build_reference(job), job.get("threads"), device, variant)
    return OnnxRuntimeRuntime(job["onnx_path"], job["provider"], job.get("threads"), opt, variant,
                              job.get("trt_cache"))


def build_reference(job: dict[str, Any]):
    """The job's model in fp32 PyTorch with the run's weights (the reference for fidelity)."""
    if job.get("weights_source", "random") == "random":
        return get_spec(job["model"]).build(job.get("tiny", False))
    return build_weighted(job["model"], job.get("tiny", False), job["weights_source"])[0]


def base_record(job: dict[str, Any], cell: dict[str, Any]) -> CellRecord:
    entry = job.get("manifest_entry") or {}
    return CellRecord(
        run_id=job["run_id"], timestamp=time.strftime("%Y-%m-%dT%H:%M:%S%z"), host=job["host"],
        device=job["device"], device_name=job["device_name"], model=job["model"],
        runtime=job["runtime"], provider=job["provider"], variant=job.get("variant", "fp32"),
        weights=job.get("weights", "random"), batch_size=int(cell["batch_size"]),
        duration_s=float(cell["duration_s"]), threads=job.get("threads"),
        params_total=entry.get("params_total"), params_unique=entry.get("params_unique"),
        params_used=entry.get("params_used"), model_bytes=entry.get("model_bytes"),
        onnx_bytes=entry.get("onnx_bytes"),
    )


def probe_input(spec) -> np.ndarray:
    """The fixed input on which every runtime and variant is compared with fp32 PyTorch."""
    return synthetic_batch(1, max(spec.min_samples, int(PROBE_SECONDS * SAMPLE_RATE)), seed=99)


def save_reference(job: dict[str, Any], path: str | Path) -> None:
    """fp32 PyTorch outputs on the probe input, computed once by the parent for all workers,
    so that no worker loads a second model (and its memory) to check its own outputs."""
    # deferred: torch is heavy and optional on an ONNX-Runtime-only path
    import torch

    wav = probe_input(get_spec(job["model"]))
    model = build_reference(job)
    with torch.inference_mode():
        outputs = [o.numpy() for o in model(torch.from_numpy(wav))]
    np.savez(path, *outputs)


def fidelity_probe(job: dict[str, Any], runtime, spec) -> tuple[float | None, float | None, str | None]:
    """Max abs error and cosine of this runtime's output against fp32 PyTorch on the probe input."""
    if job["runtime"] == "pytorch" and job.get("variant", "fp32") == "fp32":
        return 0.0, 1.0, None  # this *is* the reference
    path = job.get("reference_path")
    if not path or not Path(path).exists():
        return None, None, job.get("reference_error") or "no fp32 PyTorch reference for this model"
    with np.load(path) as data:
        ref = [data[f"arr_{i}"] for i in range(len(data.files))]
    out = runtime.outputs_numpy(runtime.make_call(runtime.prepare(probe_input(spec)))())
    try:
        err, cosine = compare_outputs(ref, out)
    except Exception as exc:  # shape mismatch is itself a fidelity finding
        return None, None, f"fidelity probe failed: {exc}"
    return err, cosine, None


def open_energy(job: dict[str, Any]):
    spec = job.get("energy", "none")
    try:
        meter = open_meter(spec, job.get("energy_preferred"))
    except Exception as exc:  # a sensor that fails to open must not cost the latency cells
        return None, f"energy sensor failed to open: {type(exc).__name__}: {exc}"
    return meter, (None if meter.available else meter.reason)


def measure_cell(job: dict[str, Any], cell: dict[str, Any], runtime, tracker: PeakRSSTracker,
                 policy: TimingPolicy, meter, energy_reason: str | None, idle_w: float | None,
                 fidelity: tuple) -> CellRecord:
    spec = get_spec(job["model"])
    rec = base_record(job, cell)
    rec.load_time_s = runtime.load_time_s
    batch, duration = rec.batch_size, rec.duration_s
    samples = int(round(duration * SAMPLE_RATE))
    if samples < spec.min_samples:
        rec.status = "unsupported"
        rec.error = (f"duration {duration:g}s is shorter than {spec.name}'s minimum input "
                     f"{spec.min_duration_s:g}s ({spec.min_samples} samples)")
        return rec
    wav = synthetic_batch(batch, samples, seed=0)
    prepared = runtime.prepare(wav)
    if runtime.batch_of(prepared) != batch:
        raise RuntimeError(f"prepared input has batch {runtime.batch_of(prepared)}, expected {batch}")
    call = runtime.make_call(prepared)
    try:
        tracker.reset()
        device_baseline = runtime.reset_device_peak()
        start = time.perf_counter()  # the first call for this input shape, timed on its own
        raw = call()
        runtime.sync()
        first_call_s = time.perf_counter() - start
        outputs = runtime.outputs_numpy(raw)
        del raw
        framing_known = spec.arch.get("kind") not in ("python", "onnx")  # users' files don't say
        measured_shape = [int(d) for d in outputs[-1].shape]
        expected = (batch, spec.frames(samples) if framing_known else measured_shape[1])
        if tuple(measured_shape[:2]) != expected:
            raise RuntimeError(f"output shape {tuple(measured_shape)} does not match batch x frames {expected}")
        del outputs
        timing = time_callable(call, policy, sync=runtime.sync)
        rec.peak_memory_bytes = tracker.peak_over_baseline()
        device_peak = runtime.device_peak_over(device_baseline)
        if device_peak is not None:  # on a GPU the cell's peak is the device's; host RSS kept aside
            rec.extra["host_peak_rss_bytes"] = rec.peak_memory_bytes
            rec.peak_memory_bytes = device_peak
            rec.extra["peak_memory_kind"] = "cuda max_memory_allocated over baseline"
        else:
            rec.extra["peak_memory_kind"] = "process peak RSS over baseline"
    except MemoryError as exc:
        rec.status, rec.error = "oom", f"out of memory: {exc}"
        return rec
    for key, value in timing.stats.to_fields().items():
        setattr(rec, key, value)
    rec.latency_samples_s = timing.samples_s
    rec.latency_calls_per_sample = timing.calls_per_sample
    rec.first_call_s = first_call_s  # the harness's own first call then counts as warm-up
    audio_s = batch * duration
    rec.rtf = timing.stats.median / audio_s
    rec.throughput_audio_s_per_s = audio_s / timing.stats.median
    rec.output_max_abs_err, rec.output_cosine, fid_error = fidelity
    rec.extra.update({"output_shape": measured_shape, "input_samples": samples,
                      "warmup_calls": timing.warmup_calls + 1, "measured_time_s": timing.measured_time_s,
                      "io": runtime.io})
    add_compute(job, rec, samples)
    if fid_error:
        rec.extra["fidelity_error"] = fid_error
    if meter is not None and meter.available:
        fields = meter.measure(call, audio_s_per_call=audio_s, min_window_s=job.get("energy_window_s", 2.0),
                               idle_power_w=idle_w, sync=runtime.sync)
        for key, value in fields.items():
            if hasattr(rec, key):
                setattr(rec, key, value)
            else:
                rec.extra[key] = value
    else:
        rec.energy_reason = energy_reason
    return rec


def add_compute(job: dict[str, Any], rec: CellRecord, samples: int) -> None:
    """MACs/FLOPs of the cell's exact input shape, achieved FLOP/s and share of the GEMM peak."""
    if job.get("gemm_peak_reason"):
        rec.extra["gemm_peak_reason"] = job["gemm_peak_reason"]
    try:
        counted = macs_for(job["model"], job.get("flops_onnx_path"), rec.batch_size, samples,
                           tiny=bool(job.get("tiny", False)))
    except Exception as exc:  # counting must never cost the latency cell
        rec.extra["macs_reason"] = f"{type(exc).__name__}: {exc}"
        return
    if not counted.get("macs"):
        rec.extra["macs_reason"] = "no MAC count for this model (no ONNX graph and no formula)"
        return
    rec.macs, rec.flops = int(counted["macs"]), int(counted["flops"])
    rec.extra["macs_source"] = counted.get("source")
    rec.achieved_flops_per_s = achieved_flops_per_s(rec.flops, rec.latency_median_s)
    record = job.get("gemm_peak") or {}
    peak = record.get("flops_per_s")
    rec.utilization = utilization(rec.achieved_flops_per_s, peak)
    if peak:
        rec.extra["gemm_peak_flops_per_s"] = peak
        rec.extra["gemm_peak"] = record  # which peak: when, under what load, which library


def run_job(job: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> None:
    cells = job["cells"]
    policy = TimingPolicy(**job.get("policy", {}))
    runtime = make_runtime(job)
    try:
        runtime.load()
    except UnsupportedError as exc:
        for cell in cells:
            rec = base_record(job, cell)
            rec.status, rec.error = "unsupported", str(exc)
            emit({"type": "cell", "record": rec.to_dict()})
        emit({"type": "done"})
        return
    emit({"type": "loaded", "load_time_s": runtime.load_time_s})
    spec = get_spec(job["model"])  # imports done before the baseline: they are not a cell's memory
    tracker = PeakRSSTracker()
    gc.collect()
    tracker.set_baseline()  # the loaded model, before the probe or any cell touches activations
    fidelity = fidelity_probe(job, runtime, spec)
    meter, energy_reason = open_energy(job)
    idle_w = None
    if meter is not None and meter.available:
        idle_w = meter.measure_idle(job.get("idle_s", 2.0))
    for cell in cells:
        emit({"type": "start", "cell": cell})
        try:
            rec = measure_cell(job, cell, runtime, tracker, policy, meter, energy_reason, idle_w, fidelity)
        except Exception as exc:
            rec = base_record(job, cell)
            rec.status, rec.error = "error", f"{type(exc).__name__}: {exc}"
        emit({"type": "cell", "record": rec.to_dict()})
    if meter is not None:
        meter.close()
    runtime.close()
    emit({"type": "done"})


def main() -> None:
    job = json.loads(sys.stdin.read())
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries go to stderr
    sys.stdout = sys.stderr

    def emit(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    try:
        run_job(job, emit)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
