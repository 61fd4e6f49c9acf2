"""ONNX export: dynamic axes, the check against PyTorch, the manifest and re-export skipping."""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export.fidelity import OutputMismatch
from export.onnx_export import ExportError, compare_outputs, export_model, onnx_path
from export.params import onnx_initializer_count
from models.registry import LAB_SUITE, get_spec


@pytest.mark.parametrize("name", LAB_SUITE)
def test_tiny_exports_have_dynamic_axes_and_match_pytorch(tiny_onnx_dir, name):
    manifest = json.loads((tiny_onnx_dir / "manifest.json").read_text())
    entry = manifest["models"][f"{name}-tiny"]
    assert entry["input"]["shape"] == ["batch", "samples"]
    assert len(entry["checks"]) == 2 and all(c["ok"] for c in entry["checks"])
    assert {c["batch"] for c in entry["checks"]} == {1, 3}
    model = onnx.load(str(tiny_onnx_dir / entry["file"]))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "samples"]
    # fresh shapes the export never saw
    session = ort.InferenceSession(str(tiny_onnx_dir / entry["file"]), providers=["CPUExecutionProvider"])
    wav = np.random.default_rng(5).normal(0, 0.1, (2, 7777)).astype(np.float32)
    out = session.run(None, {"waveform": wav})
    spec = get_spec(name)
    with torch.inference_mode():
        ref = [o.numpy() for o in spec.build(tiny=True)(torch.from_numpy(wav))]
    err, cos = compare_outputs(ref, out)
    assert out[-1].shape[:2] == (2, spec.frames(7777))
    assert err < 1e-3 and cos > 0.9999


def test_manifest_records_what_users_need(tiny_onnx_dir):
    entry = json.loads((tiny_onnx_dir / "manifest.json").read_text())["models"]["apc-tiny"]
    for key in ("opset", "exporter", "params_total", "params_unique", "params_used", "onnx_initializers",
                "onnx_bytes", "sha256", "export_time_s", "fingerprint", "outputs"):
        assert key in entry
    assert entry["onnx_bytes"] == (tiny_onnx_dir / entry["file"]).stat().st_size
    assert entry["onnx_initializers"] == onnx_initializer_count(tiny_onnx_dir / entry["file"])


def test_reexport_is_skipped_unless_file_changed(tmp_path):
    first = export_model("logmel", tmp_path, tiny=True)
    assert first["skipped"] is False
    again = export_model("logmel", tmp_path, tiny=True)
    assert again["skipped"] is True and again["sha256"] == first["sha256"]
    path = onnx_path(tmp_path, "logmel", tiny=True)
    path.write_bytes(path.read_bytes()[:-10])  # a corrupted file is exported again
    redone = export_model("logmel", tmp_path, tiny=True)
    assert redone["skipped"] is False and redone["sha256"] == first["sha256"]
    assert export_model("logmel", tmp_path, tiny=True, force=True)["skipped"] is False


def test_an_up_to_date_export_with_seeded_weights_is_reused_without_building_the_model(tmp_path, monkeypatch):
    """make bench checks every model's export before it measures: with seeded random weights the
    fingerprint and the file's checksum say all, so no model is built (seconds per model)."""
    import export.onnx_export as onnx_export

    first = export_model("apc", tmp_path, tiny=True, weights="default")
    assert first["skipped"] is False and first["weights"] == "random"
    logmel = export_model("logmel", tmp_path, tiny=True, weights="default")
    assert logmel["weights"] == "none"

    def no_build(*args, **kwargs):
        raise AssertionError("the model was built to reuse an up-to-date export")

    monkeypatch.setattr(onnx_export, "build_weighted", no_build)
    again = export_model("apc", tmp_path, tiny=True, weights="default")
    assert again["skipped"] is True and again["weights"] == "random" and again["sha256"] == first["sha256"]
    assert export_model("logmel", tmp_path, tiny=True, weights="random")["weights"] == "none"
    with pytest.raises(AssertionError, match="was built"):  # a changed file is exported again: built
        path = onnx_path(tmp_path, "apc", tiny=True)
        path.write_bytes(path.read_bytes()[:-10])
        export_model("apc", tmp_path, tiny=True, weights="default")
    with pytest.raises(AssertionError, match="was built"):  # FRESH / --force always builds
        export_model("logmel", tmp_path, tiny=True, force=True)


def test_a_failing_check_fails_the_export_with_numbers(tmp_path, monkeypatch):
    import export.onnx_export as ox

    real = ox.check_onnx

    def corrupted(model, path, seed=1234):
        results = real(model, path, seed)
        results[0].max_abs_err, results[0].cosine, results[0].ok = 0.5, 0.9, False
        return results

    monkeypatch.setattr(ox, "check_onnx", corrupted)
    with pytest.raises(ExportError, match=r"max abs err 0.5, cosine 0.900000"):
        export_model("tera", tmp_path, tiny=True)
    assert not onnx_path(tmp_path, "tera", tiny=True).exists()


def test_shared_layer_is_stored_once_in_onnx(tiny_onnx_dir, tmp_path):
    export_model("audio-albert", tmp_path, tiny=True)
    export_model("mockingjay", tmp_path, tiny=True)
    manifest = json.loads((tmp_path / "manifest.json").read_text())["models"]
    albert, mj = manifest["audio-albert-tiny"], manifest["mockingjay-tiny"]
    # same architecture and buffers; ALBERT stores its one layer once, not twice
    layer = get_spec("mockingjay").build(tiny=True).transformer.encoder.layer[1]
    assert mj["params_unique"] - albert["params_unique"] == sum(p.numel() for p in layer.parameters())
    # in ONNX the second layer adds only its weight matrices: with random initialisation its
    # biases (zeros) and LayerNorm weights (ones) equal the first layer's, and the exporter
    # stores identical constant tensors once
    matrices = sum(p.numel() for p in layer.parameters() if p.dim() == 2)
    assert mj["onnx_initializers"] - albert["onnx_initializers"] == matrices


def test_compare_outputs():
    a = [np.ones((1, 2, 3), np.float32)]
    assert compare_outputs(a, [a[0] + 0.25]) == (0.25, pytest.approx(1.0))
    with pytest.raises(OutputMismatch, match="shape"):
        compare_outputs(a, [np.ones((1, 3, 3), np.float32)])


def test_export_command_line_bad_model(capsys):
    from export.__main__ import main

    assert main(["--models", "nope", "--out", "/nonexistent"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'nope'" in err[0] and "logmel" in err[0]


def test_the_dynamo_exporter_without_onnxscript_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    """onnxscript is not in make bench's set: asking for EXPORTER=dynamo without it is one line
    naming the fix, before any model is built (make export), or each model's error (the suite)."""
    from bench.profiles import load_profile
    from bench.settings import build_settings
    from bench.suite import export_models
    from export.__main__ import main
    from export.needs import missing_for

    monkeypatch.setitem(sys.modules, "onnxscript", None)  # not installed, as far as imports can tell
    hint = ("EXPORTER=dynamo needs onnxscript, which is not installed: make bench or make export with "
            "EXPORTER=dynamo installs it, or pip install -r requirements-dynamo.txt")
    assert missing_for("dynamo") == hint
    assert missing_for("torchscript") is None

    assert main(["--exporter", "dynamo", "--models", "logmel", "--out", str(tmp_path / "onnx")]) == 2
    assert capsys.readouterr().err == f"error: {hint}\n"
    assert not (tmp_path / "onnx").exists()

    settings = build_settings(load_profile("cpu"), models="logmel", runtimes="pytorch,onnxruntime", batch_sizes="1",
                              durations="0.5", reps=3, threads="1", providers=None, energy="none", tiny=True,
                              results_dir=str(tmp_path / "results"), exporter="dynamo")
    logged: list[str] = []
    assert export_models(settings, logged.append) == {"logmel": {"error": hint}}
    assert logged == [f"export logmel: FAILED: {hint}"]


class _GruOffUnderOneDnn(torch.nn.Module):
    """A GRU whose PyTorch output is wrong while oneDNN is on (as the oneDNN GRU under an emulated
    SVE CPU was, docs/platforms.md) and right with it off: the ONNX graph is traced with it off."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(160, 8, batch_first=True)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor]:
        frames = wav[:, : wav.shape[1] // 160 * 160].reshape(wav.shape[0], -1, 160)
        out = self.gru(frames)[0]
        if torch.backends.mkldnn.enabled:
            out = out * 0.5 + 0.1
        return (out,)


def test_an_rnn_that_disagrees_only_under_onednn_is_named(tmp_path):
    from export.onnx_export import check_onnx, onednn_rnn_verdict

    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch has no oneDNN")
    model = _GruOffUnderOneDnn().eval()
    path = tmp_path / "gru.onnx"
    with torch.backends.mkldnn.flags(enabled=False):
        torch.onnx.export(model, (torch.zeros(1, 16000),), str(path), input_names=["waveform"],
                          dynamic_axes={"waveform": {0: "batch", 1: "samples"}}, dynamo=False)
    assert not any(c.ok for c in check_onnx(model, path))  # oneDNN on: PyTorch's output is off
    words = onednn_rnn_verdict(model, path)
    assert words.startswith("; with oneDNN off, PyTorch agrees with the ONNX graph (cosine 1.000000")
    assert "oneDNN RNN kernel is the output that is off" in words
    broken = tmp_path / "other.onnx"  # a graph that is wrong either way: nothing to say
    graph = onnx.load(str(path))
    for init in graph.graph.initializer:
        if init.dims and len(init.dims) == 3:
            init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init) * -1.0, init.name))
    onnx.save(graph, str(broken))
    assert onednn_rnn_verdict(model, broken) == ""
    assert onednn_rnn_verdict(torch.nn.Sequential(torch.nn.Linear(2, 2)), path) == ""  # no RNN
