"""One evaluation run: data -> per-model, per-runtime embeddings -> probe -> records -> report.

``evaluate(EvalSettings(data=...))`` is what ``python -m evaluation`` calls; a notebook can call
it too.  Each (model, runtime) gives one record (a dict) with the contract's accuracy fields
(``eval_dataset``, ``eval_metric``, ``accuracy`` = best layer, ``accuracy_layer``), the accuracy of
every layer, the latency of embedding the real data (``real_*``), a synthetic-input latency
measured in the same session at the data's median clip length (``synthetic_*``), the matching
cell of a benchmark run when one is given (``bench_*``), MACs per audio second, parameters and
the energy fields (``None`` with ``energy_reason`` when no sensor).  A failing model is recorded
with ``status: error`` and the run goes on.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.profiles import available_cores
from energy import FIELDS as ENERGY_FIELDS
from energy import open_meter_or_reason
from evaluation.data import (
    SAMPLE_RATE,
    DataError,
    LoadedData,
    data_fingerprint,
    discover,
    limit_per_class,
    load_dataset,
)
from evaluation.embed import EmbeddingCache, Embeddings, cache_key, efficiency, embed
from evaluation.probe import METRIC, make_splits, probe_layers
from evaluation.records import EvalRecord
from evaluation.report import write_report
from export.onnx_export import export_model
from flops import analytic_count
from models.registry import LAB_SUITE, get_spec
from models.weights import load_weights
from runners.audio import synthetic_batch
from runners.harness import TimingPolicy, time_callable
from runners.runtimes import make_runtime
from runstore.folder import CELLS_FILE, read_records
from runstore.records import DEFAULT_RUNTIMES as RUNTIMES  # make eval: the default pair
from runstore.records import CellRecord
from setting_defs import setting

# what an embedding's cache metadata measured and the record keeps (the rest is the cache's own)
MEASURED_META = ("synthetic_", "energy_", "power_", "idle_", "load_average", "cpu_count")


@dataclass
class EvalSettings:
    data: Path
    models: list[str] = field(default_factory=lambda: list(_lab_suite()))
    runtimes: list[str] = field(default_factory=lambda: list(RUNTIMES))
    weights: str = setting("WEIGHTS").default  # make bench's default: each model's own (models.weights.resolve_source)
    out_dir: Path = Path("results/eval")
    run_id: str | None = None
    onnx_dir: Path = Path("results/onnx")
    cache_dir: Path | None = None  # default: <out_dir>/cache
    batch_size: int = 8
    max_batch_s: float = 160.0  # padded audio seconds per batch (memory bound)
    threads: int | None = None
    provider: str = "CPUExecutionProvider"
    energy: str = "auto"
    bench_run: Path | None = None
    limit_per_class: int | None = None
    folds: int = 5
    seed: int = 0
    tiny: bool = False
    exporter: str = setting("EXPORTER").default  # the ONNX exporter, as make bench's EXPORTER
    progress: bool = True
    synthetic: bool = True
    plots: bool = True


def _lab_suite() -> tuple[str, ...]:
    return LAB_SUITE


@dataclass
class EvalRun:
    folder: Path
    records: list[EvalRecord]
    data: LoadedData
    probe_method: str
    settings: EvalSettings
    files: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[EvalRecord]:
        return [r for r in self.records if not r.ok]


# ---------------------------------------------------------------- pieces

def onnx_file(name: str, settings: EvalSettings) -> tuple[Path, str]:
    """(ONNX file of ``name`` with ``settings.weights``, its identity for the cache key).

    The same export the benchmark uses (``export_model(weights=...)``, checked against PyTorch
    and kept in the ONNX folder's manifest), so ``WEIGHTS=pretrained make bench`` and ``make eval``
    share one file.
    """
    entry = export_model(name, settings.onnx_dir, tiny=settings.tiny, weights=settings.weights,
                         exporter=settings.exporter)
    return Path(entry["path"]), str(entry.get("sha256"))


def synthetic_latency(runtime: Any, n_samples: int) -> dict[str, Any]:
    """Median latency of one synthetic clip (batch 1) of ``n_samples``: the benchmark's input."""
    policy = TimingPolicy(min_reps=5, min_time_s=0.3, max_reps=200, max_time_s=3.0, warmup_calls=1,
                          warmup_time_s=0.05)
    call = runtime.make_call(runtime.prepare(synthetic_batch(1, n_samples)))
    timing = time_callable(call, policy, sync=runtime.sync)
    median = float(timing.stats.median) if hasattr(timing.stats, "median") else float(np.median(timing.samples_s))
    dur = n_samples / SAMPLE_RATE
    return {"synthetic_batch_size": 1, "synthetic_duration_s": dur, "synthetic_latency_median_s": median,
            "synthetic_rtf": median / dur}


def open_energy(spec: str) -> tuple[Any, str | None]:
    """(meter, None) or (None, the reason): the benchmark worker's own way of opening a meter."""
    meter, reason = open_meter_or_reason(spec)
    return (meter, None) if reason is None else (None, reason)


def measure_energy(meter: Any, runtime: Any, spec: Any, waves: list[np.ndarray], settings: EvalSettings,
                   audio_s: float, idle_w: float | None) -> dict[str, Any]:
    """Energy of one more pass over the whole dataset (the same batches), per the energy harness."""
    def one_pass() -> None:
        embed(runtime, spec, waves, settings.batch_size, int(settings.max_batch_s * SAMPLE_RATE), progress=False)

    fields = meter.measure(one_pass, audio_s_per_call=audio_s, idle_power_w=idle_w, sync=runtime.sync)
    return {k: fields.get(k) for k in ENERGY_FIELDS}


def read_bench_cells(run_dir: Path) -> list[CellRecord]:
    """The ok cells of a benchmark run folder, through the run store's one reader (latest
    record of a cell wins; a damaged line is skipped as everywhere else)."""
    if not (Path(run_dir) / CELLS_FILE).exists():
        raise DataError(f"--bench-run {run_dir}: no cells.jsonl there (expected results/<device>/<run_id>/)")
    return [r for r in read_records(run_dir) if r.status == "ok"]


def bench_fields(cells: list[CellRecord], model: str, runtime: str, duration_s: float, *,
                 provider: str, threads: int, variant: str = "fp32") -> dict[str, Any]:
    """The bench cell nearest to the data (batch 1, closest duration) measured like this
    evaluation: same model, runtime, provider, variant and threads.  An int8 or a 2-thread
    cell is another configuration; when none matches, ``bench_reason`` says what the run has."""
    same_model = [c for c in cells if c.model == model and c.runtime == runtime]
    mine = [c for c in same_model if c.provider == provider and c.variant == variant and c.threads == threads]
    if not mine:
        if not same_model:
            return {}
        have = sorted({f"{c.variant} {c.provider} {c.threads} threads" for c in same_model})
        return {"bench_reason": f"no {variant} {provider} {threads}-thread cell of {model} {runtime} in the bench run "
                                f"(it has: {', '.join(have)})"}
    ones = [c for c in mine if c.batch_size == 1] or mine
    cell = min(ones, key=lambda c: (abs(c.duration_s - duration_s), c.batch_size))
    out = {"bench_batch_size": cell.batch_size, "bench_duration_s": cell.duration_s,
           "bench_latency_median_s": cell.latency_median_s, "bench_rtf": cell.rtf,
           "bench_energy_per_audio_s_j": cell.energy_per_audio_s_j,
           "bench_weights": cell.weights, "bench_threads": cell.threads,
           "bench_variant": cell.variant, "bench_provider": cell.provider}
    if cell.macs:
        out["bench_macs_per_audio_s"] = cell.macs / (cell.batch_size * cell.duration_s)
    return out


def analytic_macs_per_audio_s(name: str, lengths: np.ndarray, tiny: bool) -> float | None:
    """MACs per audio second over the clips' own lengths (``flops.formulas``), if available."""
    try:
        values, counts = np.unique(lengths, return_counts=True)
        total = sum(int(c) * analytic_count(name, 1, int(n), tiny=tiny).macs for n, c in zip(values, counts))
    except Exception:
        return None
    return total / (lengths.sum() / SAMPLE_RATE)


# ---------------------------------------------------------------- the run

def _run_folder(settings: EvalSettings, dataset_name: str) -> Path:
    run_id = settings.run_id or time.strftime("%Y%m%d-%H%M%S") + "-" + "".join(
        ch if ch.isalnum() else "-" for ch in dataset_name.lower()).strip("-")
    return Path(settings.out_dir) / run_id


def evaluate(settings: EvalSettings) -> EvalRun:
    """Run the whole evaluation; raises DataError/WeightsError/ValueError for bad input."""
    for rt in settings.runtimes:
        if rt not in RUNTIMES:
            raise ValueError(f"unknown runtime {rt!r}; valid: {', '.join(RUNTIMES)}")
    specs = {name: get_spec(name) for name in settings.models}  # unknown model: ValueError now
    bench_cells = read_bench_cells(settings.bench_run) if settings.bench_run else []
    dataset = limit_per_class(discover(settings.data), settings.limit_per_class, settings.seed)
    min_samples = max(s.min_samples for s in specs.values())
    data = load_dataset(dataset, min_samples, progress=settings.progress)
    labels = [c.label for c in data.clips]
    if len(set(labels)) < 2:
        raise DataError(f"{dataset.name}: a probe needs at least 2 classes; found {sorted(set(labels))}")
    splits, method = make_splits(labels, [c.split for c in data.clips], dataset.split_method,
                                 settings.seed, settings.folds)
    data_fp = data_fingerprint(dataset, min_samples)
    cache = EmbeddingCache(settings.cache_dir or Path(settings.out_dir) / "cache")
    lengths = data.lengths()
    median_len = int(np.median(lengths))
    folder = _run_folder(settings, dataset.name)
    meter, energy_reason = open_energy(settings.energy)
    idle_w = meter.measure_idle(2.0) if meter is not None else None

    records: list[EvalRecord] = []
    for name, spec in specs.items():
        model = spec.build(settings.tiny)
        weights_label = load_weights(name, model, settings.weights, settings.tiny)  # WeightsError: bad input
        params = sum(p.numel() for p in model.parameters())
        macs = analytic_macs_per_audio_s(name, lengths, settings.tiny)
        reference: Embeddings | None = None
        for rt in settings.runtimes:
            rec = EvalRecord(
                run_id=folder.name, timestamp=time.strftime("%Y-%m-%dT%H:%M:%S%z"), host=socket.gethostname(),
                model=name, runtime=rt, provider=settings.provider if rt == "onnxruntime" else "cpu",
                weights=weights_label, tiny=settings.tiny, threads=settings.threads, batch_size=settings.batch_size,
                eval_dataset=dataset.name, eval_metric=METRIC, params_total=params, macs_per_audio_s=macs,
                macs_source="flops analytic formulas on the clips' lengths" if macs else None,
            )
            try:
                emb = _embeddings(name, spec, model, weights_label, rt, settings, cache, data, data_fp,
                                  median_len, meter, idle_w, energy_reason)
                result = probe_layers(emb.layers, labels, splits, method, settings.seed)
                rec.accuracy, rec.accuracy_layer = result.best, result.best_layer
                rec.accuracy_last, rec.accuracy_last_layer = result.last, len(result.per_layer) - 1
                rec.accuracy_per_layer, rec.accuracy_std_per_layer = result.per_layer, result.per_layer_std
                rec.chance_accuracy, rec.probe_method, rec.probe_splits = result.chance, method, result.n_splits
                rec.n_clips, rec.n_classes, rec.from_cache = len(labels), len(set(labels)), emb.from_cache
                rec.add(efficiency(emb))
                rec.add({k: v for k, v in emb.meta.items() if k.startswith(MEASURED_META)})
                if rec.energy_reason is None and rec.energy_j is None:
                    rec.energy_reason = energy_reason
                if reference is not None and reference.layers.shape == emb.layers.shape:
                    diff = np.abs(reference.layers.astype(np.float64) - emb.layers)
                    a, b = reference.layers[-1].ravel().astype(np.float64), emb.layers[-1].ravel().astype(np.float64)
                    rec.embedding_max_abs_diff_vs_pytorch = float(diff.max())
                    rec.embedding_cosine_vs_pytorch = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))
                if rt == "pytorch":
                    reference = emb
                rec.add(bench_fields(bench_cells, name, rt, median_len / SAMPLE_RATE, provider=rec.provider,
                                     threads=settings.threads or available_cores()))
            except Exception as exc:
                rec.status, rec.error = "error", f"{type(exc).__name__}: {exc}"
            records.append(rec)
    if meter is not None:
        meter.close()
    run = EvalRun(folder, records, data, method, settings)
    run.files = write_report(run)
    return run


def _embeddings(name: str, spec: Any, model: Any, weights_label: str, rt: str, settings: EvalSettings,
                cache: EmbeddingCache, data: LoadedData, data_fp: str, median_len: int, meter: Any,
                idle_w: float | None, energy_reason: str | None) -> Embeddings:
    onnx, onnx_id = (None, None)
    if rt == "onnxruntime":
        onnx, onnx_id = onnx_file(name, settings)
    max_batch = int(settings.max_batch_s * SAMPLE_RATE)
    key = cache_key(model=name, weights=weights_label, runtime=rt, provider=settings.provider if onnx else "cpu",
                    onnx=onnx_id, data=data_fp, tiny=settings.tiny, batch_size=settings.batch_size,
                    max_batch=max_batch, threads=settings.threads)
    emb = cache.load(name, rt, key)
    if emb is not None:
        return emb
    runtime = make_runtime(rt, build=lambda: model, onnx_path=onnx, provider=settings.provider,
                           threads=settings.threads)
    runtime.load()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    try:
        emb = embed(runtime, spec, data.waves, settings.batch_size, max_batch, settings.progress, f"{name} {rt}")
        meta: dict[str, Any] = {"model": name, "runtime": rt, "weights": weights_label, "data": data_fp,
                                "n_clips": len(data.waves), "host": socket.gethostname(),
                                "load_average_before": load_before, "cpu_count": os.cpu_count()}
        if settings.synthetic:
            meta.update(synthetic_latency(runtime, median_len))
        if meter is not None:
            meta.update(measure_energy(meter, runtime, spec, data.waves, settings, data.audio_seconds, idle_w))
        else:
            meta["energy_reason"] = energy_reason
    finally:
        runtime.close()
    cache.save(name, rt, key, emb, meta)
    return emb
