"""Per-layer clip embeddings from either runtime, timed on the real data, cached on disk.

``embed(runtime, spec, waves)`` sorts the clips by length and cuts them into batches of
similar length (at most ``batch_size`` clips and ``max_batch_samples`` padded samples), pads
each batch with zeros to its longest clip, runs the runtime once per batch and mean-pools every
hidden state over the clip's *valid* frames (``spec.frames(length)``), so padding never enters
the average.  What the padding can still change: models whose layers look across time
(attention, GroupNorm over time in wav2vec 2.0's first conv, the recurrent state does not look
ahead) see the zeros of the longer clips' batch mates -- the registry's contract has no
attention mask.  Sorting by length keeps that padding small; ``batch_size=1`` removes it.

Every batch is timed (one call, synchronised): that is the latency of embedding the dataset
itself, with its own lengths and realistic batching, kept beside the synthetic-input figures.

The cache (``EmbeddingCache``) is an ``.npz`` per (model, weights, runtime, provider, data,
batching) key; the data part is :func:`evaluation.data.data_fingerprint` (file list, sizes,
mtimes).  A second run with the same key loads the embeddings and the timings measured when
they were computed.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.audio_format import SAMPLE_RATE

POOLING = "mean-over-valid-frames-v1"


@dataclass
class BatchTiming:
    clips: int
    padded_samples: int  # the batch's padded length
    audio_s: float  # real audio in the batch (without padding)
    seconds: float


@dataclass
class Embeddings:
    layers: np.ndarray  # (L, n_clips, D) float32, clips in the dataset's order
    batches: list[BatchTiming]
    warmup_s: float
    meta: dict[str, Any] = field(default_factory=dict)
    from_cache: bool = False

    @property
    def n_layers(self) -> int:
        return int(self.layers.shape[0])


def plan_batches(lengths: np.ndarray, batch_size: int, max_batch_samples: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length (sorted, longest last)."""
    order = np.argsort(lengths, kind="stable")
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max(int(lengths[i]), max((int(lengths[j]) for j in current), default=0))
        too_big = max_batch_samples is not None and current and longest * (len(current) + 1) > max_batch_samples
        if current and (len(current) >= batch_size or too_big):
            batches.append(current)
            current = []
        current.append(int(i))
    if current:
        batches.append(current)
    return batches


def pad_batch(waves: list[np.ndarray]) -> np.ndarray:
    out = np.zeros((len(waves), max(len(w) for w in waves)), dtype=np.float32)
    for row, w in enumerate(waves):
        out[row, : len(w)] = w
    return out


def pool_outputs(outputs: list[np.ndarray], lengths: list[int], frames_of) -> list[np.ndarray]:
    """Mean over each clip's valid frames, per layer: a list of (B, D) arrays."""
    pooled = []
    for hidden in outputs:
        h = np.asarray(hidden, dtype=np.float32)
        rows = []
        for b, n in enumerate(lengths):
            valid = min(max(int(frames_of(n)), 1), h.shape[1])
            rows.append(h[b, :valid].astype(np.float64).mean(axis=0))
        pooled.append(np.stack(rows).astype(np.float32))
    return pooled


def embed(runtime: Any, spec: Any, waves: list[np.ndarray], batch_size: int = 8,
          max_batch_samples: int | None = 16 * 10 * SAMPLE_RATE, progress: bool = True,
          desc: str = "") -> Embeddings:
    """Embed ``waves`` with a loaded runtime (``runners.runtimes``); see the module doc."""
    lengths = np.array([len(w) for w in waves], dtype=np.int64)
    batches = plan_batches(lengths, batch_size, max_batch_samples)
    # warm-up on the first (shortest) batch: allocation and first-call costs are not the data's
    t0 = time.perf_counter()
    first = pad_batch([waves[i] for i in batches[0]])
    runtime.make_call(runtime.prepare(first))()
    runtime.sync()
    warmup = time.perf_counter() - t0

    per_layer: list[np.ndarray] | None = None
    timings = []
    iterator = batches
    if progress:
        # deferred: tqdm is needed only when a progress bar is shown
        from tqdm import tqdm

        iterator = tqdm(batches, desc=desc or "embedding", unit="batch", leave=False)
    for idx in iterator:
        batch = pad_batch([waves[i] for i in idx])
        call = runtime.make_call(runtime.prepare(batch))
        s = time.perf_counter()
        out = call()
        runtime.sync()
        seconds = time.perf_counter() - s
        arrays = runtime.outputs_numpy(out)
        pooled = pool_outputs(arrays, [int(lengths[i]) for i in idx], spec.frames)
        if per_layer is None:
            per_layer = [np.zeros((len(waves), p.shape[1]), dtype=np.float32) for p in pooled]
        for layer, p in zip(per_layer, pooled):
            layer[idx] = p
        timings.append(BatchTiming(len(idx), batch.shape[1], float(lengths[idx].sum()) / SAMPLE_RATE, seconds))
    dims = {p.shape[1] for p in per_layer}
    if len(dims) == 1:
        layers = np.stack(per_layer)
    else:  # layers of different widths (not in the registry today): pad the narrower ones
        width = max(dims)
        layers = np.stack([np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in per_layer])
    return Embeddings(layers, timings, warmup)


def efficiency(emb: Embeddings) -> dict[str, Any]:
    """Latency figures of embedding the dataset (from the per-batch timings)."""
    secs = np.array([b.seconds for b in emb.batches])
    per_clip = np.array([b.seconds / b.clips for b in emb.batches])
    audio = sum(b.audio_s for b in emb.batches)
    padded = sum(b.padded_samples * b.clips for b in emb.batches) / SAMPLE_RATE
    total = float(secs.sum())
    return {
        "real_batches": len(emb.batches),
        "real_clips": int(sum(b.clips for b in emb.batches)),
        "real_audio_s": audio,
        "real_padding_fraction": (padded - audio) / padded if padded else 0.0,
        "real_total_s": total,
        "real_batch_latency_median_s": float(np.median(secs)),
        "real_clip_latency_median_s": float(np.median(per_clip)),
        "real_rtf": total / audio if audio else None,
        "real_throughput_audio_s_per_s": audio / total if total else None,
        "real_warmup_s": emb.warmup_s,
    }


# ---------------------------------------------------------------- cache

def cache_key(**parts: Any) -> str:
    text = json.dumps({**parts, "pooling": POOLING}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class EmbeddingCache:
    """``<dir>/<model>/<runtime>-<key>.npz``: embeddings, batch timings and metadata."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)

    def path(self, model: str, runtime: str, key: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in model)
        return self.dir / safe / f"{runtime}-{key}.npz"

    def load(self, model: str, runtime: str, key: str) -> Embeddings | None:
        path = self.path(model, runtime, key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                layers = z["layers"]
        except Exception:  # a truncated or foreign file is recomputed, not trusted
            return None
        batches = [BatchTiming(**b) for b in meta.pop("batches")]
        return Embeddings(layers, batches, meta.pop("warmup_s"), meta, from_cache=True)

    def save(self, model: str, runtime: str, key: str, emb: Embeddings, meta: dict[str, Any]) -> Path:
        path = self.path(model, runtime, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        full = {**meta, "batches": [asdict(b) for b in emb.batches], "warmup_s": emb.warmup_s,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, layers=emb.layers, meta=np.array(json.dumps(full)))
        tmp.replace(path)
        emb.meta = {k: v for k, v in full.items() if k not in ("batches", "warmup_s")}
        return path
