"""Silero VAD, a streaming model, in both runtimes from the files its package ships.

PyTorch runs the shipped TorchScript (``silero_vad.jit``), ONNX Runtime the shipped ONNX
(``silero_vad.onnx``; also the shipped ``silero_vad_half.onnx`` and the suite's int8 recipe
applied to the fp32 file).  The streaming contract (``runners/streaming.py``): per-chunk
latency by the shared harness (512 samples = 32 ms at 16 kHz, state carried), and a whole
utterance in streaming order (clips of the spoken-word set joined by 0.5 s pauses), each chunk
timed, several passes; fidelity = every chunk's speech probability against fp32 PyTorch.

    .venv/bin/python benchmarks/streaming_vad.py [--data results/speech-data] [--clips 24] [--passes 3]
        [--threads 1] [--out docs/benchmarks/streaming-vad.md]
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from bench_output import has_speech_data, speech_data_parser, write_outputs  # noqa: E402  (benchmarks/ is the script's folder)

from runners.harness import TimingPolicy  # noqa: E402
from runners.streaming import (  # noqa: E402
    SAMPLE_RATE,
    SILERO_CHUNK,
    OnnxSilero,
    StreamingError,
    TorchScriptSilero,
    chunk_latency,
    fidelity,
    silero_files,
    stream,
)

POLICY = TimingPolicy(min_reps=50, min_time_s=0.5, max_reps=5000, max_time_s=3.0)


def utterance(data: Path, n_clips: int) -> np.ndarray:
    """The first ``n_clips`` clips of the manifest joined by 0.5 s of silence."""
    from evaluation.data import discover, load_clip

    clips = discover(data).clips[:: max(1, len(discover(data).clips) // n_clips)][:n_clips]
    gap = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    return np.concatenate([np.concatenate([load_clip(c.path), gap]) for c in clips])


def runners(threads: int, tmp: Path) -> list[tuple[str, str, object]]:
    """(runtime, variant, runner or the reason it cannot run)."""
    from export.variants import onnx_variant

    files = silero_files()
    out: list[tuple[str, str, object]] = [("pytorch", "fp32", TorchScriptSilero(files.torchscript, threads))]
    reason = ("a TorchScript module: .half() fails inside its interpreter and quantize_dynamic cannot swap "
              "modules of a scripted graph; the package ships no eager model")
    out += [("pytorch", "fp16", reason), ("pytorch", "int8", reason)]
    out.append(("onnxruntime", "fp32", OnnxSilero(files.onnx, threads)))
    if files.onnx_fp16 is not None:
        out.append(("onnxruntime", "fp32 (shipped silero_vad_half.onnx: 16 kHz only, float32 weights)", OnnxSilero(files.onnx_fp16, threads)))
    local = tmp / files.onnx.name  # the variant files go beside a copy, never into site-packages
    shutil.copy(files.onnx, local)
    for variant in ("fp16", "int8"):
        try:
            out.append(("onnxruntime", f"{variant} (suite recipe)", OnnxSilero(onnx_variant(local, variant), threads)))
        except Exception as exc:  # recorded, not fatal: the table says why
            out.append(("onnxruntime", f"{variant} (suite recipe)", f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"))
    return out


def measure(wave: np.ndarray, threads: int, passes: int) -> dict:
    rows = []
    reference = None
    chunk = np.ascontiguousarray(wave[None, 4 * SAMPLE_RATE: 4 * SAMPLE_RATE + SILERO_CHUNK], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for runtime, variant, runner in runners(threads, Path(tmp)):
            row = {"runtime": runtime, "variant": variant}
            if isinstance(runner, str):
                row["unsupported"] = runner
                rows.append(row)
                continue
            timing = chunk_latency(runner, chunk, POLICY)
            results = [stream(runner, wave) for _ in range(passes)]
            totals = [r.total_s for r in results]
            best = results[int(np.argsort(totals)[len(totals) // 2])]
            per_chunk = np.concatenate([r.chunk_seconds for r in results])
            row.update(chunk_median_ms=timing.stats.median * 1e3, chunk_p90_ms=float(np.percentile(timing.samples_s, 90)) * 1e3,
                       chunk_n=len(timing.samples_s), stream_rtf=float(np.median(totals)) / best.audio_s,
                       stream_chunk_p50_ms=float(np.median(per_chunk)) * 1e3,
                       stream_chunk_p99_ms=float(np.percentile(per_chunk, 99)) * 1e3,
                       speech_fraction=float(np.mean(best.outputs >= 0.5)))
            if reference is None:
                reference = best.outputs
            f = fidelity(reference, best.outputs)
            row.update(max_abs_diff=f.max_abs_diff, mean_abs_diff=f.mean_abs_diff, decision_agreement=f.decision_agreement,
                       chunks=f.chunks)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"rows": rows, "audio_s": len(wave) / SAMPLE_RATE}


def render(result: dict, threads: int, load: tuple[float, float], started: str, files, n_clips: int) -> str:
    lines = [
        f"# Silero VAD in both runtimes, streaming ({started})", "",
        f"Files: {files.package} {files.version} ({files.license}) as shipped: `silero_vad.jit` (PyTorch), "
        f"`silero_vad.onnx` (ONNX Runtime). Machine: {platform.machine()} Linux VM, 2 vCPUs (AMD EPYC), "
        f"{threads} thread(s) per runtime, **shared with concurrent work** (load average {load[0]:.1f} at start, "
        f"{load[1]:.1f} at end): latencies are indicative; fidelity does not depend on load.", "",
        f"Utterance: {n_clips} clips of `make speech-data` joined by 0.5 s pauses, {result['audio_s']:.1f} s = "
        f"{result['rows'][0].get('chunks', 0)} chunks of {SILERO_CHUNK} samples (32 ms). Per chunk: the harness on one "
        f"fixed chunk, state carried. Streaming: every chunk in order from a fresh state; RTF = time / audio "
        f"(median of passes). Fidelity: each chunk's speech probability against fp32 PyTorch; agreement = same "
        f"side of Silero's 0.5 threshold.", "",
        "| runtime | variant | chunk median (ms) | chunk p90 (ms) | streaming RTF | streamed chunk p50 / p99 (ms) | "
        "max abs diff | mean abs diff | decisions agree | speech chunks |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        if "unsupported" in r:
            lines.append(f"| {r['runtime']} | {r['variant']} | unsupported: {r['unsupported']} | | | | | | | |")
            continue
        lines.append(f"| {r['runtime']} | {r['variant']} | {r['chunk_median_ms']:.3f} | {r['chunk_p90_ms']:.3f} | "
                     f"{r['stream_rtf']:.4f} | {r['stream_chunk_p50_ms']:.3f} / {r['stream_chunk_p99_ms']:.3f} | "
                     f"{r['max_abs_diff']:.1e} | {r['mean_abs_diff']:.1e} | {r['decision_agreement']:.2%} | "
                     f"{r['speech_fraction']:.1%} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = speech_data_parser(__doc__)
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--passes", type=int, default=3)
    args = p.parse_args()
    data = Path(args.data)
    if not has_speech_data(data, "manifest.csv"):
        return 2
    try:
        files = silero_files()
    except StreamingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.strftime("%Y-%m-%d %H:%M")
    load0 = os.getloadavg()[0]
    result = measure(utterance(data, args.clips), args.threads, args.passes)
    text = render(result, args.threads, (load0, os.getloadavg()[0]), started, files, args.clips)
    write_outputs(args.out, text, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
