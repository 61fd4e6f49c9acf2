"""Evaluation on real data: layouts, reading and skipping, pooling, caching, the probe, the report."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from evaluation import data as D
from evaluation import demo_data
from evaluation.embed import EmbeddingCache, embed, plan_batches, pool_outputs
from evaluation.probe import make_splits, probe_layers
from evaluation.records import EvalRecord
from evaluation.report import pareto_front
from evaluation.run import EvalSettings, evaluate
from runstore.records import CellRecord

SR = 16_000


def _sine(freq: float, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    demo_data.write_demo(out, per_class=8, classes=("tone", "clicks", "noise"), keywords=False)
    return out


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    from export.onnx_export import export_model

    out = tmp_path_factory.mktemp("onnx")
    for name in ("logmel", "wav2vec2-base"):
        export_model(name, out, tiny=True)
    return out


# ---------------------------------------------------------------- demo data

def test_demo_data_is_deterministic_and_varied(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert demo_data.write_demo(a, per_class=8, keywords=False) == {c: 8 for c in demo_data.CLASSES}
    demo_data.write_demo(b, per_class=8, keywords=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*.wav"))
    assert len(files) == 48
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    infos = [sf.info(str(a / f)) for f in files]
    assert {i.samplerate for i in infos} == {16000, 44100} and {i.channels for i in infos} == {1, 2}
    assert len({round(i.duration, 2) for i in infos}) > 10  # variable lengths


def test_demo_keywords_with_espeak(tmp_path, monkeypatch):
    """A stand-in espeak-ng (writes a tone for the word): keyword classes appear, several voices."""
    fake = tmp_path / "bin" / "espeak-ng"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\n" + """
import sys, numpy as np, soundfile as sf
args = sys.argv[1:]
out = args[args.index('-w') + 1]
speed = int(args[args.index('-s') + 1])
t = np.arange(int(22050 * 60 / speed)) / 22050
sf.write(out, 0.3 * np.sin(2 * np.pi * (100 + 10 * len(args[-1])) * t), 22050)
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    counts = demo_data.write_demo(tmp_path / "d", per_class=3, classes=("tone",), keywords=None)
    assert counts["say_yes"] == 3 and len(counts) == 1 + len(demo_data.KEYWORDS)
    assert demo_data.main([str(tmp_path / "e"), "--per-class", "2"]) == 0


# ---------------------------------------------------------------- layouts

def test_folder_layout(demo):
    ds = D.discover(demo)
    assert ds.layout == "folder" and ds.labels == ["clicks", "noise", "tone"]
    assert ds.split_method == "kfold" and len(ds.clips) == 24


def test_csv_manifest_with_splits(tmp_path):
    for i, label in enumerate(["a", "b"] * 4):
        sf.write(str(tmp_path / f"{i}.flac"), _sine(200 + 300 * (label == "b"), 0.5), SR)
    with open(tmp_path / "list.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "split"])
        for i, label in enumerate(["a", "b"] * 4):
            w.writerow([f"{i}.flac", label, "test" if i >= 6 else "train"])
    ds = D.discover(tmp_path / "list.csv")
    assert ds.layout == "csv" and ds.split_method == "given"
    assert [c.split for c in ds.clips].count("test") == 2
    splits, method = make_splits([c.label for c in ds.clips], [c.split for c in ds.clips], ds.split_method)
    assert method.startswith("the dataset's train/test") and len(splits) == 1
    (tmp_path / "bad.csv").write_text("file,class\nx.wav,a\n")
    with pytest.raises(D.DataError, match="path,label"):
        D.discover(tmp_path / "bad.csv")


def test_speech_commands_layout(tmp_path):
    for word in ("yes", "no"):
        (tmp_path / word).mkdir()
        for i in range(4):
            sf.write(str(tmp_path / word / f"spk{i}_nohash_0.wav"), _sine(300, 0.3), SR)
    (tmp_path / "_background_noise_").mkdir()
    sf.write(str(tmp_path / "_background_noise_" / "white.wav"), _sine(50, 0.3), SR)
    (tmp_path / "validation_list.txt").write_text("yes/spk0_nohash_0.wav\nno/spk0_nohash_0.wav\n")
    (tmp_path / "testing_list.txt").write_text("yes/spk1_nohash_0.wav\nno/spk1_nohash_0.wav\n")
    ds = D.discover(tmp_path)
    assert ds.layout == "speech_commands" and ds.name == "Speech Commands" and ds.labels == ["no", "yes"]
    splits = {c.path.relative_to(tmp_path).as_posix(): c.split for c in ds.clips}
    assert splits["yes/spk0_nohash_0.wav"] == "validation" and splits["no/spk1_nohash_0.wav"] == "test"
    assert splits["yes/spk2_nohash_0.wav"] == "train" and ds.split_method == "given"


def test_esc50_layout(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "meta").mkdir()
    rows = []
    for i in range(10):
        name = f"{i % 5 + 1}-{i}-A-{i % 2}.wav"
        sf.write(str(tmp_path / "audio" / name), _sine(300, 0.2), 44100)
        rows.append([name, i % 5 + 1, i % 2, ["dog", "rain"][i % 2], "False", i, "A"])
    with open(tmp_path / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    ds = D.discover(tmp_path)
    assert ds.layout == "esc50" and ds.split_method == "folds" and ds.labels == ["dog", "rain"]
    splits, method = make_splits([c.label for c in ds.clips], [c.split for c in ds.clips], "folds")
    assert len(splits) == 5 and "5 folds" in method


# ---------------------------------------------------------------- reading

def test_resampling_and_mixdown(tmp_path):
    x = _sine(1000, 0.5, 44100)
    sf.write(str(tmp_path / "st.wav"), np.stack([x, 0.5 * x], axis=1), 44100)
    sf.write(str(tmp_path / "v.ogg"), x, 44100)
    y = D.load_clip(tmp_path / "st.wav")
    assert len(y) == 8000 and y.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SR / len(y) - 1000) < 5
    assert abs(np.max(np.abs(y[1000:-1000])) - 0.375) < 0.02  # mean of 0.5 and 0.25 amplitude
    assert abs(len(D.load_clip(tmp_path / "v.ogg")) - 8000) <= 1


def test_bad_files_are_skipped_counted_and_reported(tmp_path):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            sf.write(str(tmp_path / label / f"{i}.wav"), _sine(300 if label == "a" else 900, 0.3), SR)
    (tmp_path / "a" / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    (tmp_path / "a" / "empty.wav").write_bytes(b"")
    sf.write(str(tmp_path / "b" / "short.wav"), _sine(300, 0.01), SR)  # 160 samples < 400
    loaded = D.load_dataset(D.discover(tmp_path), min_samples=400)
    assert len(loaded.clips) == 6
    reasons = {Path(p).name: why for p, why in loaded.skipped}
    assert set(reasons) == {"corrupt.wav", "empty.wav", "short.wav"}
    assert "unreadable" in reasons["corrupt.wav"] and "empty" in reasons["empty.wav"]
    assert "too short" in reasons["short.wav"]


# ---------------------------------------------------------------- batching and pooling

def test_plan_batches_sorts_by_length():
    lengths = np.array([500, 100, 300, 200, 400, 600, 50])
    batches = plan_batches(lengths, batch_size=3)
    assert [len(b) for b in batches] == [3, 3, 1]
    flat = [i for b in batches for i in b]
    assert list(lengths[flat]) == sorted(lengths)
    assert all(len(b) * max(lengths[b]) <= 800 for b in plan_batches(lengths, 8, max_batch_samples=800))


def test_pooling_masks_padding():
    h = np.zeros((2, 5, 2), dtype=np.float32)
    h[0, :, 0] = [1, 1, 1, 9, 9]  # last two frames are padding for a 3-frame clip
    h[1, :, 0] = 2
    out = pool_outputs([h], [3, 5], frames_of=lambda n: n)
    assert out[0][0, 0] == 1.0 and out[0][1, 0] == 2.0


@pytest.mark.parametrize("name,layers,dim", [("logmel", 1, 80), ("wav2vec2-base", 3, 32)])
def test_embedding_shapes_and_padding_invariance(name, layers, dim):
    from models.registry import get_spec
    from runners.runtimes import PyTorchRuntime

    spec = get_spec(name)
    model = spec.build(tiny=True)
    rt = PyTorchRuntime(lambda: model, threads=None)
    rt.load()
    waves = [_sine(300, s) for s in (0.3, 0.5, 0.45)]
    emb = embed(rt, spec, waves, batch_size=3, progress=False)
    assert emb.layers.shape == (layers, 3, dim)
    if name == "logmel":  # frame-wise features: padding in the batch must not change the mean
        alone = embed(rt, spec, waves[:1], batch_size=1, progress=False)
        np.testing.assert_allclose(alone.layers[0, 0], emb.layers[0, 0], rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------- probe

def test_probe_on_demo_data_beats_chance(demo):
    from models.registry import get_spec
    from runners.runtimes import PyTorchRuntime

    loaded = D.load_dataset(D.discover(demo))
    spec = get_spec("logmel")
    model = spec.build()
    rt = PyTorchRuntime(lambda: model, threads=None)
    rt.load()
    emb = embed(rt, spec, loaded.waves, progress=False)
    labels = [c.label for c in loaded.clips]
    splits, method = make_splits(labels, [None] * len(labels), "kfold", seed=0)
    result = probe_layers(emb.layers, labels, splits, method)
    assert result.chance == pytest.approx(1 / 3)
    assert result.best > 0.8, result.per_layer
    again = probe_layers(emb.layers, labels, splits, method)
    assert again.per_layer == result.per_layer  # fixed seeds


def test_pareto_front():
    pts = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6), (0.5, 0.4), (2.0, 0.65)]
    assert pareto_front(pts) == [3, 0, 1]


# ---------------------------------------------------------------- the whole run

def _settings(demo, onnx_dir, tmp_path, **kw):
    base = dict(data=demo, models=["logmel", "wav2vec2-base"], tiny=True, onnx_dir=onnx_dir,
                out_dir=tmp_path / "eval", progress=False, energy="none", plots=True)
    base.update(kw)
    return EvalSettings(**base)


def test_evaluate_both_runtimes_cache_and_report(demo, onnx_dir, tmp_path, monkeypatch):
    run = evaluate(_settings(demo, onnx_dir, tmp_path, run_id="first"))
    assert not run.failed
    assert len(run.records) == 4
    for r in run.records:
        for key in ("eval_dataset", "eval_metric", "accuracy", "accuracy_layer", "weights"):
            assert getattr(r, key) is not None
        assert r.energy_j is None and "switched off" in r.energy_reason
        assert r.real_clip_latency_median_s > 0 and r.synthetic_rtf > 0
        assert len(r.accuracy_per_layer) == (1 if r.model == "logmel" else 3)
    ort = [r for r in run.records if r.runtime == "onnxruntime"]
    assert all(r.embedding_cosine_vs_pytorch > 0.9999 for r in ort)
    logmel = {r.runtime: r for r in run.records if r.model == "logmel"}
    assert logmel["pytorch"].accuracy > 0.8 and abs(logmel["pytorch"].accuracy - logmel["onnxruntime"].accuracy) < 0.1
    stored = [json.loads(line) for line in (tmp_path / "eval" / "first" / "results.jsonl").read_text().splitlines()]
    assert [EvalRecord.from_dict(d) for d in stored] == run.records  # results.jsonl round-trips the records
    assert stored[0]["bench_reason"] is None and "real_rtf" in stored[0]  # flat, every field present
    folder = tmp_path / "eval" / "first"
    report = (folder / "report.md").read_text()
    assert "Pareto" in report and "Random weights" in report and "PyTorch vs ONNX Runtime" in report
    assert (folder / "plots" / "pareto_latency.png").exists() and (folder / "plots" / "pareto_macs.png").exists()
    assert len((folder / "accuracy.csv").read_text().splitlines()) == 1 + 2 * (1 + 3)
    for name in ("report.md", "data.json"):  # results travel: no path of this machine
        assert str(tmp_path) not in (folder / name).read_text()

    # second run: every embedding comes from the cache, nothing is computed
    import evaluation.run as R

    monkeypatch.setattr(R, "embed", lambda *a, **k: pytest.fail("recomputed despite the cache"))
    again = evaluate(_settings(demo, onnx_dir, tmp_path, run_id="second", plots=False))
    assert all(r.from_cache for r in again.records)
    assert [r.accuracy for r in again.records] == [r.accuracy for r in run.records]

    # touching a file changes the data key: recomputed
    monkeypatch.undo()
    clip = next(demo.rglob("*.wav"))
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))
    third = evaluate(_settings(demo, onnx_dir, tmp_path, run_id="third", plots=False, runtimes=["pytorch"],
                               models=["logmel"], synthetic=False))
    assert not third.records[0].from_cache


def test_bench_cells_energy_and_bad_files_in_report(demo, onnx_dir, tmp_path, monkeypatch):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(demo, data)
    (data / "tone" / "broken.wav").write_bytes(b"not audio")
    bench = tmp_path / "bench"
    bench.mkdir()
    cells = [{"model": m, "runtime": "pytorch", "provider": "cpu", "variant": "fp32", "batch_size": 1,
              "duration_s": d, "threads": 1, "status": "ok", "latency_median_s": 0.01 * d, "rtf": 0.01,
              "macs": 1e6 * d * (m == "logmel") + 5e8 * d}
             for m in ("logmel", "wav2vec2-base") for d in (1, 2)]
    # other configurations of the same model and runtime: never the figure compared with
    decoys = [{**c, "variant": "int8", "latency_median_s": 99.0} for c in cells] + \
             [{**c, "threads": 2, "latency_median_s": 77.0} for c in cells]
    (bench / "cells.jsonl").write_text("".join(json.dumps(c) + "\n" for c in decoys + cells) + "{truncated")

    class FakeMeter:
        available = True

        def measure_idle(self, s):
            return 1.0

        def measure(self, call, audio_s_per_call, idle_power_w, sync):
            call()
            return {"energy_j": 2.0, "energy_gross_j": 3.0, "energy_per_audio_s_j": 2.0 / audio_s_per_call,
                    "power_w_mean": 5.0, "idle_power_w": idle_power_w, "energy_source": "fake",
                    "energy_domain": "package", "energy_window_s": 0.6, "energy_reason": None}

        def close(self):
            pass

    import evaluation.run as R

    monkeypatch.setattr(R, "open_energy", lambda spec: (FakeMeter(), None))
    run = evaluate(_settings(data, onnx_dir, tmp_path, run_id="b", runtimes=["pytorch"], bench_run=bench,
                             synthetic=False, cache_dir=tmp_path / "c2", threads=1))
    assert not run.failed
    assert all(r.bench_latency_median_s < 1 and r.bench_threads == 1 and r.bench_variant == "fp32"
               for r in run.records)
    assert all(r.bench_macs_per_audio_s and r.energy_per_audio_s_j for r in run.records)
    report = (tmp_path / "eval" / "b" / "report.md").read_text()
    assert "Skipped files: 1" in report and "broken.wav" in report
    assert (tmp_path / "eval" / "b" / "plots" / "pareto_energy.png").exists()
    assert "MACs per audio second (bench cells)" in report


def test_cli_exit_codes(demo, onnx_dir, tmp_path, capsys):
    from evaluation.cli import main

    assert main(["--data", str(tmp_path / "absent")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["--data", str(demo), "--models", "apc", "--tiny", "--weights", str(tmp_path / "no.ckpt"),
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert main(["--data", str(demo), "--models", "logmel", "--runtimes", "pytorch", "--tiny", "--energy", "none",
                 "--out", str(tmp_path / "o"), "--onnx-dir", str(onnx_dir), "--no-progress", "--no-synthetic"]) == 0
    assert "report:" in capsys.readouterr().out


def test_cache_ignores_broken_file(tmp_path):
    cache = EmbeddingCache(tmp_path)
    p = cache.path("m", "pytorch", "k")
    p.parent.mkdir(parents=True)
    p.write_bytes(b"truncated")
    assert cache.load("m", "pytorch", "k") is None


@pytest.mark.parametrize("energy,message", [
    ("rapel", "unknown energy sensor 'rapel'"),
    ("estimate", "ENERGY=estimate needs CPU_WATTS"),
])
def test_cli_refuses_a_bad_energy_before_anything_runs(tmp_path, capsys, monkeypatch, energy, message):
    from evaluation.cli import main

    monkeypatch.delenv("CPU_WATTS", raising=False)
    monkeypatch.setenv("ENERGY", energy)  # make eval ENERGY=...
    data = tmp_path / "data" / "yes"
    data.mkdir(parents=True)
    assert main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "out").exists()


def test_bench_figure_matches_threads_variant_and_provider():
    from evaluation.run import bench_fields

    base = {"model": "tera", "runtime": "onnxruntime", "provider": "CPUExecutionProvider", "variant": "fp32",
            "batch_size": 1, "duration_s": 1.0, "threads": 2, "status": "ok", "latency_median_s": 0.02,
            "run_id": "r", "timestamp": "t", "host": "h", "device": "cpu", "device_name": "cpu", "weights": "random"}
    cells = [CellRecord.from_dict(c) for c in (
        {**base, "variant": "int8", "latency_median_s": 0.005}, {**base, "threads": 1, "latency_median_s": 0.04},
        {**base, "provider": "CUDAExecutionProvider", "latency_median_s": 0.001}, base)]
    got = bench_fields(cells, "tera", "onnxruntime", 1.0, provider="CPUExecutionProvider", threads=2)
    assert got["bench_latency_median_s"] == 0.02 and got["bench_threads"] == 2
    none = bench_fields(cells, "tera", "onnxruntime", 1.0, provider="CPUExecutionProvider", threads=4)
    assert "bench_latency_median_s" not in none
    assert none["bench_reason"].startswith("no fp32 CPUExecutionProvider 4-thread cell of tera onnxruntime")
    assert bench_fields(cells, "apc", "onnxruntime", 1.0, provider="CPUExecutionProvider", threads=2) == {}


def test_an_older_results_line_is_read_as_a_typed_record():
    line = {"model": "apc", "runtime": "pytorch", "status": "error", "error": "boom", "weights": "random",
            "accuracy_per_layer": None, "some_new_key": 1}
    rec = EvalRecord.from_dict(line)
    assert (rec.model, rec.ok, rec.error, rec.accuracy, rec.accuracy_per_layer) == ("apc", False, "boom", None, [])
    assert rec.extra == {"some_new_key": 1} and rec.to_dict()["some_new_key"] == 1
    assert rec.value("some_new_key") == 1 and rec.value("accuracy") is None
    rec.add({"real_rtf": 0.5, "pooling": "mean"})
    assert rec.real_rtf == 0.5 and rec.extra["pooling"] == "mean"
