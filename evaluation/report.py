"""The accuracy-vs-efficiency report of an evaluation run, written from its records.

``results/eval/<run>/``: ``results.jsonl`` (one record per model x runtime), ``summary.csv``,
``accuracy.csv`` (every layer), ``data.json`` (the dataset and the skipped files), ``report.md``
and ``plots/`` (Pareto fronts of accuracy against latency, energy, MACs and parameters; accuracy
per layer).  Everything here reads the records only, so a report can be rebuilt from a
``results.jsonl`` with :func:`report_from_records`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tabulate import tabulate

from evaluation.records import EvalRecord
from runstore.folder import portable, portable_text

SUMMARY_FIELDS = ("model", "runtime", "weights", "status", "eval_dataset", "eval_metric", "accuracy",
                  "accuracy_layer", "accuracy_last", "accuracy_last_layer", "chance_accuracy", "probe_method",
                  "n_clips", "n_classes", "params_total", "macs_per_audio_s", "real_clip_latency_median_s",
                  "real_batch_latency_median_s", "real_rtf", "real_throughput_audio_s_per_s",
                  "real_padding_fraction", "synthetic_latency_median_s", "synthetic_rtf",
                  "bench_latency_median_s", "bench_rtf", "bench_macs_per_audio_s", "energy_j",
                  "energy_per_audio_s_j", "energy_reason", "embedding_max_abs_diff_vs_pytorch",
                  "embedding_cosine_vs_pytorch", "from_cache", "error")


# ---------------------------------------------------------------- Pareto

def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated when cost (x) is minimised and accuracy (y) maximised."""
    front = []
    for i, (ci, ai) in enumerate(points):
        dominated = any((cj <= ci and aj >= ai) and (cj < ci or aj > ai) for j, (cj, aj) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def cost_axes(records: list[EvalRecord]) -> list[tuple[str, str, str]]:
    """(plot file stem, record field, axis label) for every cost that has values."""
    axes = [("pareto_latency", "real_clip_latency_median_s", "median latency per clip on the data (s)")]
    if any(r.energy_per_audio_s_j is not None for r in records):
        axes.append(("pareto_energy", "energy_per_audio_s_j", "energy per audio second (J)"))
    elif any(r.bench_energy_per_audio_s_j is not None for r in records):
        axes.append(("pareto_energy", "bench_energy_per_audio_s_j", "energy per audio second, bench cells (J)"))
    if any(r.bench_macs_per_audio_s for r in records):
        axes.append(("pareto_macs", "bench_macs_per_audio_s", "MACs per audio second (bench cells)"))
    elif any(r.macs_per_audio_s for r in records):
        axes.append(("pareto_macs", "macs_per_audio_s", "MACs per audio second (analytic, on the data)"))
    axes.append(("pareto_params", "params_total", "parameters"))
    return axes


def _points(records: list[EvalRecord], key: str) -> list[EvalRecord]:
    """The ok records with an accuracy and a value of the cost ``key``."""
    return [r for r in records if r.ok and r.accuracy is not None and r.value(key) is not None]


def fronts(records: list[EvalRecord]) -> dict[str, list[EvalRecord]]:
    out = {}
    for stem, key, _ in cost_axes(records):
        pts = _points(records, key)
        idx = pareto_front([(float(r.value(key)), float(r.accuracy or 0.0)) for r in pts])
        out[key] = [pts[i] for i in idx]
    return out


def plot_pareto(records: list[EvalRecord], key: str, xlabel: str, path: Path, dpi: int = 110) -> Path | None:
    # deferred: matplotlib is heavy and optional: a board without it still gets its tables
    import matplotlib

    matplotlib.use("Agg")
    # deferred: matplotlib is heavy and optional: a board without it still gets its tables
    import matplotlib.pyplot as plt

    pts = _points(records, key)
    if len(pts) < 2:
        return None
    xs = [max(float(r.value(key)), 1e-12) for r in pts]
    ys = [float(r.accuracy or 0.0) for r in pts]
    front = pareto_front(list(zip(xs, ys)))
    fig, ax = plt.subplots(figsize=(7, 4.6))
    markers = {"pytorch": "o", "onnxruntime": "s"}
    rank = {i: k for k, i in enumerate(sorted(range(len(pts)), key=lambda i: (round(ys[i], 2), xs[i])))}
    for i, r in enumerate(pts):
        on = i in front
        ax.scatter(xs[i], ys[i], marker=markers.get(r.runtime, "^"), s=70 if on else 40,
                   facecolors="tab:red" if on else "none", edgecolors="tab:red" if on else "tab:blue", zorder=3)
        dy = (-12, 5, 14)[rank[i] % 3]  # stagger labels of neighbouring points
        ax.annotate(r.label.replace("onnxruntime", "ORT").replace("pytorch", "PT"), (xs[i], ys[i]),
                    textcoords="offset points", xytext=(4, dy), fontsize=6.5)
    fx, fy = [xs[i] for i in front], [ys[i] for i in front]
    ax.step(fx, fy, where="post", color="tab:red", lw=1.2, label="Pareto front")
    chance = [r.chance_accuracy for r in pts if r.chance_accuracy is not None]
    if chance:
        ax.axhline(max(chance), color="grey", ls=":", lw=1, label="chance (majority class)")
    if max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel + " (lower is better)")
    ax.set_ylabel("probe accuracy, best layer (higher is better)")
    ax.set_title(f"accuracy vs {xlabel.split(' (')[0]}: circles PyTorch, squares ONNX Runtime", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_layers(records: list[EvalRecord], path: Path, dpi: int = 110) -> Path | None:
    # deferred: matplotlib is heavy and optional: a board without it still gets its tables
    import matplotlib

    matplotlib.use("Agg")
    # deferred: matplotlib is heavy and optional: a board without it still gets its tables
    import matplotlib.pyplot as plt

    ok = [r for r in records if r.ok and r.accuracy_per_layer]
    if not ok:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in ok:
        ls = "-" if r.runtime == "pytorch" else "--"
        ax.plot(range(len(r.accuracy_per_layer)), r.accuracy_per_layer, ls, marker=".", label=r.label)
    ax.set_xlabel("layer (0 = first output)")
    ax.set_ylabel("probe accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- weights

NO_WEIGHTS = "none"  # models.weights.NO_WEIGHTS_LABEL (not imported: that module loads torch)


def weights_label(rec: EvalRecord) -> str:
    """The record's weights label; ``none`` for a model without parameters, also in records written
    before that label existed (they said ``random`` for log-mel, which has nothing to randomise)."""
    label = rec.weights or ""
    if label == "random" and rec.params_total == 0:
        return NO_WEIGHTS
    return label


def _weights_kind(label: str) -> str:
    return label if label in (NO_WEIGHTS, "random") else "trained"


def _names(models: list[str]) -> str:
    """'`a`', '`a` and `b`', '`a`, `b` and `c`'."""
    quoted = [f"`{m}`" for m in models]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def models_by_weights(records: list[EvalRecord]) -> dict[str, dict[str, str]]:
    """``{kind: {model: label}}`` over the records (kinds ``none``, ``random``, ``trained``), models in
    record order: what the report's sentences about weights say, from the records of its table."""
    out: dict[str, dict[str, str]] = {NO_WEIGHTS: {}, "random": {}, "trained": {}}
    for rec in records:
        label = weights_label(rec)
        out[_weights_kind(label)].setdefault(rec.model, label)
    return out


def weights_sentences(records: list[EvalRecord]) -> tuple[str, list[str]]:
    """The 'Weights: ...' summary and, when any model ran with random weights, the caution paragraph
    naming exactly those models and the ones whose features do mean something (trained weights, or
    none at all) — from the same records as the accuracy table."""
    kinds = models_by_weights(records)
    labels = {m: label for group in kinds.values() for m, label in group.items()}
    order = list(dict.fromkeys(r.model for r in records))
    parts = [f"`{m}` {labels[m]}" + (" (no parameters)" if labels[m] == NO_WEIGHTS else "") for m in order]
    summary = "Weights: " + (", ".join(parts) if parts else "none recorded") + "."
    random = list(kinds["random"])
    if not random:
        return summary, []
    one = len(random) == 1
    text = (f"**Random weights.** {_names(random)} {'was' if one else 'were'} evaluated with random, untrained "
            f"weights: {'its' if one else 'their'} accuracy measures what a random projection of the log-mel (or "
            "of the raw waveform) preserves, not what the model learns in pre-training.")
    trained, none = list(kinds["trained"]), list(kinds[NO_WEIGHTS])
    if trained:
        text += f" {_names(trained)} {'carries' if len(trained) == 1 else 'carry'} trained weights."
    if none:
        text += (f" {_names(none)} {'has' if len(none) == 1 else 'have'} no weights (signal processing, "
                 "nothing to train).")
    meaningful = [m for m in order if m in trained or m in none]
    text += (f" Only the features of {_names(meaningful)} are meaningful here;" if meaningful
             else " No model's features here are meaningful;")
    text += (" load trained checkpoints (`WEIGHTS=path/to/ckpt`) for a comparison of the random-weight "
             "models themselves.")
    return summary, [text]


# ---------------------------------------------------------------- tables

def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _ms(x: Any) -> str:
    return "–" if x is None else f"{1000 * float(x):.2f}"


def _si(x: Any) -> str:
    if x is None:
        return "–"
    x = float(x)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.2f} {unit}"
    return f"{x:.0f}"


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def accuracy_table(records: list[EvalRecord]) -> str:
    rows = []
    for r in records:
        if not r.ok:
            rows.append([r.model, r.runtime, weights_label(r), "error", "", "", "", "", "", ""])
            continue
        rows.append([r.model, r.runtime, weights_label(r), f"{_f(r.accuracy)} (layer {r.accuracy_layer})",
                     f"{_f(r.accuracy_last)} (layer {r.accuracy_last_layer})", _f(r.chance_accuracy),
                     _ms(r.real_clip_latency_median_s), _f(r.real_rtf, 4),
                     _si(r.bench_macs_per_audio_s or r.macs_per_audio_s), _si(r.params_total)])
    return _md_table(["model", "runtime", "weights", "accuracy, best layer", "accuracy, last layer", "chance",
                      "latency/clip (ms)", "RTF on data", "MACs per audio s", "parameters"], rows)


def runtime_table(records: list[EvalRecord]) -> str:
    by = {(r.model, r.runtime): r for r in records if r.ok}
    rows = []
    for model in dict.fromkeys(r.model for r in records):
        pt, ort = by.get((model, "pytorch")), by.get((model, "onnxruntime"))
        if not (pt and ort) or pt.accuracy is None or ort.accuracy is None:
            continue
        rows.append([model, _f(pt.accuracy), _f(ort.accuracy), f"{ort.accuracy - pt.accuracy:+.3f}",
                     _f(pt.accuracy_last), _f(ort.accuracy_last),
                     f"{_or_nan(ort.embedding_max_abs_diff_vs_pytorch):.2g}",
                     f"{_or_nan(ort.embedding_cosine_vs_pytorch):.6f}",
                     _ms(pt.real_clip_latency_median_s), _ms(ort.real_clip_latency_median_s)])
    if not rows:
        return ""
    return _md_table(["model", "PyTorch best", "ONNX Runtime best", "Δ", "PyTorch last", "ONNX Runtime last",
                      "embedding max |Δ|", "embedding cosine", "PyTorch ms/clip", "ONNX Runtime ms/clip"], rows)


def _or_nan(x: float | None) -> float:
    return float("nan") if x is None else x


def synthetic_table(records: list[EvalRecord]) -> tuple[str, list[float]]:
    rows, ratios = [], []
    for r in records:
        if not r.ok or not r.real_rtf:
            continue
        ratio = r.real_rtf / r.synthetic_rtf if r.synthetic_rtf else None
        if ratio:
            ratios.append(ratio)
        bench = r.bench_rtf
        rows.append([r.model, r.runtime, _f(r.real_rtf, 4), _f(r.synthetic_rtf, 4),
                     "–" if ratio is None else f"{ratio:.2f}", _f(bench, 4),
                     "–" if not bench else f"{r.real_rtf / bench:.2f}", f"{100 * (r.real_padding_fraction or 0):.1f}%"])
    table = _md_table(["model", "runtime", "RTF, real data (batched)", "RTF, synthetic (batch 1, same length)",
                       "real / synthetic", "RTF, bench cell", "real / bench", "padding"], rows)
    return table, ratios


def _spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    # deferred: scipy is needed only on this path of make eval
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def synthetic_answer(records: list[EvalRecord], ratios: list[float]) -> str:
    if not ratios:
        return "No synthetic figures were measured in this run (--no-synthetic), so there is nothing to compare."
    ok = [r for r in records if r.ok and r.synthetic_rtf and r.real_rtf]
    rho = _spearman([r.real_rtf or 0.0 for r in ok], [r.synthetic_rtf or 0.0 for r in ok])
    lo, hi = min(ratios), max(ratios)
    text = (f"Embedding the real data cost {lo:.2f}x to {hi:.2f}x the real-time factor of one synthetic clip of the "
            f"data's median length (a ratio below 1 means the batched real data was cheaper per audio second).")
    if rho is not None:
        same = "the same" if rho > 0.99 else ("nearly the same" if rho > 0.9 else "a different")
        text += (f" The models' cost ranking is {same} on both inputs (Spearman rank correlation {rho:.2f} over "
                 f"{len(ok)} model x runtime pairs): the latencies differ through batching and lengths, "
                 f"not through what the audio contains.")
    return text


def front_sentence(records: list[EvalRecord]) -> list[str]:
    out = []
    for stem, key, label in cost_axes(records):
        members = fronts(records)[key]
        if members:
            out.append(f"- accuracy vs {label}: " + ", ".join(r.label for r in members) + ".")
    return out


# ---------------------------------------------------------------- files

def write_report(run: Any) -> list[Path]:
    folder: Path = run.folder
    folder.mkdir(parents=True, exist_ok=True)
    records = run.records
    files = []
    path = folder / "results.jsonl"
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    files.append(path)
    data_info = {
        "dataset": run.data.dataset.name, "layout": run.data.dataset.layout, "root": str(run.data.dataset.root),
        "clips_listed": len(run.data.dataset.clips), "clips_used": len(run.data.clips),
        "audio_s": run.data.audio_seconds, "classes": run.data.dataset.labels, "probe_method": run.probe_method,
        "skipped": [{"path": p, "reason": why} for p, why in run.data.skipped],
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(run.settings).items()},
    }
    data_info = portable(json.loads(json.dumps(data_info, default=str)))  # no local paths: results travel
    (folder / "data.json").write_text(json.dumps(data_info, indent=2))
    files.append(folder / "data.json")
    with open(folder / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow({k: r.value(k) for k in SUMMARY_FIELDS})
    files.append(folder / "summary.csv")
    with open(folder / "accuracy.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "runtime", "weights", "layer", "accuracy", "accuracy_std", "is_best", "is_last"])
        for r in records:
            if not r.ok:
                continue
            n = len(r.accuracy_per_layer)
            for i, (a, s) in enumerate(zip(r.accuracy_per_layer, r.accuracy_std_per_layer)):
                w.writerow([r.model, r.runtime, weights_label(r), i, f"{a:.6f}", f"{s:.6f}",
                            int(i == r.accuracy_layer), int(i == n - 1)])
    files.append(folder / "accuracy.csv")
    plots = []
    if run.settings.plots:
        for stem, key, label in cost_axes(records):
            p = plot_pareto(records, key, label, folder / "plots" / f"{stem}.png")
            if p:
                plots.append(p)
        p = plot_layers(records, folder / "plots" / "accuracy_per_layer.png")
        if p:
            plots.append(p)
    files += plots
    (folder / "report.md").write_text(portable_text(render_markdown(run, data_info, plots)))
    files.append(folder / "report.md")
    return files


def render_markdown(run: Any, data_info: dict[str, Any], plots: list[Path]) -> str:
    records = run.records
    s = run.settings
    weights_summary, weights_caution = weights_sentences(records)
    lines = [f"# Accuracy vs efficiency: {data_info['dataset']}", ""]
    lines.append(f"Run `{run.folder.name}`. Data: {data_info['dataset']} ({data_info['layout']} layout), "
                 f"{data_info['clips_used']} clips used of {data_info['clips_listed']} listed, "
                 f"{data_info['audio_s']:.1f} s of audio, {len(data_info['classes'])} classes "
                 f"({', '.join(data_info['classes'])}).")
    lines.append(f"Probe: {data_info['probe_method']}; logistic regression on standardised, mean-pooled "
                 f"embeddings, seed {s.seed}. {weights_summary} Batching: up to {s.batch_size} clips "
                 f"of similar length per call, threads {s.threads or 'default'}.")
    lines += [line for text in weights_caution for line in ("", text)]
    lines += ["", "## Accuracy", "", accuracy_table(records), ""]
    skipped = data_info["skipped"]
    lines.append(f"Skipped files: {len(skipped)}" + ("." if not skipped else ":"))
    for item in skipped[:50]:
        lines.append(f"- `{item['path']}`: {item['reason']}")
    if len(skipped) > 50:
        lines.append(f"- ... and {len(skipped) - 50} more (data.json lists them all)")
    rt = runtime_table(records)
    if rt:
        lines += ["", "## PyTorch vs ONNX Runtime", "",
                  "The same weights in both runtimes; the embeddings differ only by floating-point rounding, and the "
                  "probe's accuracy with them:", "", rt]
    lines += ["", "## Pareto fronts", ""]
    lines.append("Models on the front (no other model is both at least as accurate and at most as costly):")
    lines += front_sentence(records)
    lines.append("")
    for p in plots:
        lines.append(f"![{p.stem}](plots/{p.name})")
    loads = [r.load_average_before for r in records if r.load_average_before is not None]
    cpus = next((r.cpu_count for r in records if r.cpu_count), None)
    table, ratios = synthetic_table(records)
    lines += ["", "## Real data vs synthetic input", "",
              "Latency of embedding this dataset (its own lengths, sorted and batched) against the benchmark's "
              "synthetic input (batch 1, the data's median clip length), measured in the same session"
              + (" and the matching cells of the benchmark run given with --bench-run" if s.bench_run else "") + ".", "",
              table, "", synthetic_answer(records, ratios)]
    if loads and cpus and max(loads) > 0.5 * cpus:
        lines += ["", f"Caution: the machine was busy while these were timed (1-minute load average up to "
                  f"{max(loads):.1f} on {cpus} CPUs, other processes included); latencies are noisier and "
                  f"higher than on an idle machine. The accuracy figures are unaffected."]
    energy = [r for r in records if r.energy_per_audio_s_j is not None]
    reasons = sorted({r.energy_reason for r in records if r.energy_reason})
    lines += ["", "## Energy", ""]
    if energy:
        lines.append("Energy of one further pass over the dataset, idle-subtracted, per audio second: "
                     + ", ".join(f"{r.label} {r.energy_per_audio_s_j:.3g} J" for r in energy) + ".")
    else:
        lines.append("Not measured: " + ("; ".join(reasons) if reasons else "no reason recorded") + ".")
    failed = [r for r in records if not r.ok]
    if failed:
        lines += ["", "## Failures", ""] + [f"- {r.label}: {r.error}" for r in failed]
    lines += ["", "Files: `results.jsonl` (every field), `summary.csv`, `accuracy.csv` (every layer), `data.json` "
              "(dataset, skipped files, settings), `plots/`.", ""]
    return "\n".join(lines)


def report_from_records(folder: str | Path) -> str:
    """The accuracy table of a finished run folder (for notebooks and quick looks)."""
    lines = (Path(folder) / "results.jsonl").read_text().splitlines()
    return accuracy_table([EvalRecord.from_dict(json.loads(line)) for line in lines if line.strip()])
