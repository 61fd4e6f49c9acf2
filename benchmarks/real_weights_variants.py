"""Quantisation fidelity on real weights: GE2E int8/fp16 in both runtimes, pretrained vs random.

For the ``ge2e`` architecture with Resemblyzer's trained weights and with the suite's seeded
random weights, every clip of the spoken-word set (``make speech-data``) is embedded by
PyTorch and ONNX Runtime in fp32, fp16 and int8 (``export/variants.py``: the suite's own
recipes).  Per variant it reports, against fp32 PyTorch with the same weights:

* the output error of the clip embeddings (the last output, mean-pooled over valid frames, the
  vector the probe sees): max abs difference and the lowest cosine over the clips;
* the linear-probe accuracy on both label sets (which word, which voice) at the best layer and
  at the last layer, beside fp32's.

    .venv/bin/python benchmarks/real_weights_variants.py [--data results/speech-data] [--threads 1]
        [--out docs/benchmarks/real-weights-variants.md]
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from bench_output import has_speech_data, speech_data_parser, write_outputs  # noqa: E402  (benchmarks/ is the script's folder)

from evaluation.data import discover, load_dataset  # noqa: E402
from evaluation.embed import embed  # noqa: E402
from evaluation.probe import make_splits, probe_layers  # noqa: E402

MODEL = "ge2e"
VARIANTS = ("fp32", "fp16", "int8")
RUNTIMES = ("pytorch", "onnxruntime")


def _runtime(kind: str, model, onnx_path: Path, variant: str, threads: int):
    from export.variants import onnx_variant
    from runners.runtimes import OnnxRuntimeRuntime, PyTorchRuntime

    if kind == "pytorch":
        import copy

        return PyTorchRuntime(lambda: copy.deepcopy(model), threads, variant=variant)
    return OnnxRuntimeRuntime(onnx_variant(onnx_path, variant), "CPUExecutionProvider", threads, variant=variant)


def measure(data: Path, threads: int, onnx_dir: Path) -> dict:
    from export.onnx_export import export_model
    from models.build import build_weighted
    from models.registry import get_spec

    spec = get_spec(MODEL)
    tasks = {"word": discover(data), "voice": discover(data / "voice.csv")}
    loaded = load_dataset(tasks["word"], spec.min_samples)
    by_path = {c.path: c.label for c in discover(data / "voice.csv").clips}
    labels = {"word": [c.label for c in loaded.clips], "voice": [by_path[c.path] for c in loaded.clips]}
    splits = {t: make_splits(labels[t], [None] * len(labels[t]), "kfold", 0, 5) for t in tasks}
    rows = []
    for weights in ("pretrained", "random"):
        model, label = build_weighted(MODEL, False, weights)
        entry = export_model(MODEL, onnx_dir, weights=weights)
        reference = None
        for rt in RUNTIMES:
            for variant in VARIANTS:
                runtime = _runtime(rt, model, Path(entry["path"]), variant, threads)
                runtime.load()
                t0 = time.perf_counter()
                emb = embed(runtime, spec, loaded.waves, batch_size=8, progress=False)
                wall = time.perf_counter() - t0
                runtime.close()
                row = {"weights": weights, "weights_label": label, "runtime": rt, "variant": variant,
                       "embed_s": wall, "audio_s": loaded.audio_seconds}
                last = emb.layers[-1].astype(np.float64)
                if reference is None:
                    reference = emb.layers[-1].astype(np.float64)
                cos = np.sum(last * reference, axis=1) / (np.linalg.norm(last, axis=1) * np.linalg.norm(reference, axis=1) + 1e-30)
                row.update(max_abs_err=float(np.abs(last - reference).max()), min_cosine=float(cos.min()))
                for task in tasks:
                    res = probe_layers(emb.layers, labels[task], splits[task][0], splits[task][1], 0)
                    row[f"{task}_best"], row[f"{task}_best_layer"], row[f"{task}_last"] = res.best, res.best_layer, res.last
                rows.append(row)
                print(json.dumps(row), flush=True)
    return {"rows": rows, "clips": len(loaded.clips), "audio_s": loaded.audio_seconds}


def render(result: dict, threads: int, load: tuple[float, float], started: str, data: Path) -> str:
    lines = [
        f"# Quantisation fidelity on real weights: GE2E ({started})", "",
        f"Machine: {platform.machine()} Linux VM, 2 vCPUs (AMD EPYC), {threads} thread(s) per runtime, "
        f"**shared with concurrent work** (load average {load[0]:.1f} at start, {load[1]:.1f} at end): "
        f"times are indicative only; errors and accuracies do not depend on load.", "",
        f"Data: `{data.name}` from `make speech-data` ({result['clips']} clips, {result['audio_s']:.0f} s of audio), "
        f"probe: stratified 5-fold logistic regression (seed 0). Errors are against fp32 PyTorch with the "
        f"same weights, on the mean-pooled last output (the L2-normalised running embedding).", "",
        "| weights | runtime | variant | max abs err | lowest cosine | word acc. best (layer) | word acc. last | "
        "voice acc. best (layer) | voice acc. last | embed time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['weights']} | {r['runtime']} | {r['variant']} | {r['max_abs_err']:.1e} | {r['min_cosine']:.6f} | "
                     f"{r['word_best']:.3f} ({r['word_best_layer']}) | {r['word_last']:.3f} | "
                     f"{r['voice_best']:.3f} ({r['voice_best_layer']}) | {r['voice_last']:.3f} | {r['embed_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    args = speech_data_parser(__doc__).parse_args()
    data = Path(args.data)
    if not has_speech_data(data, "voice.csv"):
        return 2
    started = time.strftime("%Y-%m-%d %H:%M")
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(data, args.threads, Path(tmp))
    text = render(result, args.threads, (load0, os.getloadavg()[0]), started, data)
    write_outputs(args.out, text, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
