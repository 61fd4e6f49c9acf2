"""LiteRT as a runner: it converts a ``.tflite`` per input shape from the PyTorch module, checks it
against PyTorch, caches it under a key of model, weights, shape and versions, records what it ran
with and how long the conversion took (apart from the latency), turns what it cannot convert into
``unsupported`` cells with the reason, runs models converted elsewhere (``make export
RUNTIMES=litert``) where the converter is missing (Linux aarch64), and measures beside PyTorch in a
tiny suite run.

The tests that convert skip, with the reason, where the converter (litert-torch) or the runtime
(ai-edge-litert) cannot be imported (``make setup-runtimes RUNTIMES=litert`` installs them); the
refusal of a missing package is tested everywhere.  Conversions are kept few and small (tiny
log-mel and TERA, seconds each; a GRU is refused by its size limit, not converted: tiny APC at 1 s
takes about two minutes).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace

import numpy as np
import pytest

from bench.cli import main as bench_main
from bench.profiles import load_profile
from bench.settings import SettingsError, build_settings
from runners.audio import synthetic_batch
from runners.canary import make_canary, read_canary
from runners.runtimes import LiteRTRuntime, UnsupportedError, make_runtime
from runners.runtimes import litert as litert_module
from runners.runtimes.packages import OPTIONAL, install, wheel_gap

HAVE_RUNTIME = importlib.util.find_spec("ai_edge_litert") is not None
HAVE_CONVERTER = importlib.util.find_spec("litert_torch") is not None
needs_converter = pytest.mark.skipif(not (HAVE_RUNTIME and HAVE_CONVERTER),
                                     reason="litert-torch or ai-edge-litert is not installed (make setup-runtimes "
                                            "RUNTIMES=litert; the converter has no Linux aarch64 wheel)")


def build(model: str):
    from runners.reference import build_reference

    return lambda: build_reference(model, True, "random")


def torch_outputs(model: str, wav: np.ndarray) -> list[np.ndarray]:
    import torch

    with torch.inference_mode():
        return [o.numpy() for o in build(model)()(torch.from_numpy(wav))]


def litert(model: str, tmp_path, **kw):
    return make_runtime("litert", build=build(model), provider="XNNPACK", threads=1,
                        artifact_dir=tmp_path / "litert", model=model, **kw)


@needs_converter
def test_converts_checks_and_caches_a_model_per_shape(tmp_path):
    from export.onnx_export import compare_outputs

    wav = synthetic_batch(1, 4000, seed=3)
    runtime = litert("logmel", tmp_path)
    runtime.load()
    facts = runtime.facts
    assert facts["runtime_delegate"] == "XNNPACK" and facts["runtime_precision"] == "fp32"
    assert facts["runtime_threads"] == 1 and facts["runtime_version"] and facts["runtime_converter"]
    prepared = runtime.prepare(wav)
    out = runtime.outputs_numpy(runtime.make_call(prepared)())
    err, cosine = compare_outputs(torch_outputs("logmel", wav), out)
    assert cosine > 0.9999 and err < 1e-3, (err, cosine)
    assert runtime.batch_of(prepared) == 1
    facts = dict(runtime.facts)
    assert facts["runtime_loaded_from_cache"] is False and facts["runtime_export_s"] > 0
    assert facts["runtime_artifact_check"]["cosine"] > 0.9999  # checked when converted
    assert facts["runtime_delegate_partitions"] > 0 and facts["runtime_delegate"] == "XNNPACK"  # read back
    assert facts["runtime_undelegated_ops"] == []  # XNNPACK took every op of log-mel
    assert facts["runtime_artifact"] == "exported here" and facts["runtime_artifact_made_with"] is None
    files = sorted((tmp_path / "litert").glob("logmel-b1-n4000-*.tflite"))
    assert len(files) == 1 and files[0].with_suffix(".json").exists()
    assert facts["runtime_artifact_file"] == files[0].name
    runtime.close()

    again = litert("logmel", tmp_path)  # a later run: same model, weights, shape and versions
    again.load()
    out2 = again.outputs_numpy(again.make_call(again.prepare(wav))())
    assert again.facts["runtime_artifact"] == "from cache" and again.facts["runtime_export_s"] is None
    assert again.facts["runtime_loaded_from_cache"] is True
    assert np.array_equal(out[-1], out2[-1])
    # another shape or other weights: another key, another file
    assert again.artifact_path((1, 4000)) == files[0] and again.artifact_path((2, 4000)) != files[0]
    again.digest = "other weights"
    assert again.artifact_path((1, 4000)) != files[0] and again.cached((1, 4000)) is None


@needs_converter
def test_make_export_converts_for_a_board_that_has_no_converter(tmp_path, capsys, monkeypatch):
    """``make export RUNTIMES=litert DEVICE=rpi`` on an x86-64 machine; the board (Linux aarch64: the
    runtime only) uses the manifest's files, and refuses a shape nobody converted saying how to make it."""
    import export.__main__ as export_main
    from export.onnx_export import compare_outputs

    for name in ("RUNTIMES", "DEVICE", "MODELS", "BATCH_SIZES", "DURATIONS", "GRID", "QUICK", "ONNX_DIR",
                 "ARTIFACTS_DIR", "FRESH", "WEIGHTS"):
        monkeypatch.delenv(name, raising=False)
    laptop = tmp_path / "laptop"
    assert export_main.main(["--runtimes", "litert", "--device", "rpi", "--models", "logmel", "--tiny",
                             "--batch-sizes", "1", "--durations", "0.25", "--results", str(laptop)]) == 0
    out = capsys.readouterr().out
    folder = laptop / "onnx" / "artifacts"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted((e["model"], tuple(e["input_shape"])) for e in manifest["artifacts"]) == [
        ("canary", (256, 256)), ("logmel", (1, 4000)), ("logmel", (1, 16000))], out  # and the drift canary
    canary_entry = next(e for e in manifest["artifacts"] if e["model"] == "canary")
    assert canary_entry["file"].startswith("litert/canary-") and canary_entry["check"]["cosine"] > 0.9999
    assert canary_entry["tiny"] is None and canary_entry["weights"] == "seeded (runners/canary.py)"
    entry = next(e for e in manifest["artifacts"] if e["input_shape"] == [1, 4000])
    assert entry["runtime"] == "litert" and entry["file"].startswith("litert/logmel-b1-n4000-")
    assert entry["file"].endswith(".tflite") and entry["check"]["cosine"] > 0.9999
    assert entry["runtime_versions"]["ai-edge-litert"] and entry["exporter_versions"]["litert-torch"]
    assert "edge artifacts: 3 made, 0 up to date" in out

    monkeypatch.setattr(litert_module, "has_converter", lambda: False)  # the board: no converter
    monkeypatch.setattr(litert_module, "converter_gap", lambda: "no wheel here (a test)")
    # the board's drift canary: from the manifest (none, and the worker records why drift is unknown)
    canary = make_canary("litert", 1, "XNNPACK", tmp_path / "board-cache", folder)
    assert canary.runtime.facts["runtime_artifact"].startswith("from manifest (made on ")
    assert 0 < read_canary(canary, reps=3) < 1.0
    with pytest.raises(UnsupportedError, match=r"cannot convert: the LiteRT converter \(litert-torch\) is not installed"):
        make_canary("litert", 1, "XNNPACK", tmp_path / "other-cache", None)
    board = make_runtime("litert", build=build("logmel"), provider="XNNPACK", threads=1, model="logmel",
                         artifact_dir=tmp_path / "board-cache", manifest_dir=folder)
    board.load()
    assert board.facts["runtime_converter"] is None
    wav = synthetic_batch(1, 4000, seed=3)
    got = board.outputs_numpy(board.make_call(board.prepare(wav))())
    err, cosine = compare_outputs(torch_outputs("logmel", wav), got)
    assert cosine > 0.9999 and err < 1e-3
    facts = board.facts
    assert facts["runtime_artifact"].startswith("from manifest (made on ") and facts["runtime_export_s"] is None
    assert facts["runtime_artifact_made_with"]["litert-torch"] and facts["runtime_artifact_file"].endswith(".tflite")
    with pytest.raises(UnsupportedError) as err_info:  # a shape nobody converted
        board.prepare(synthetic_batch(1, 4800, seed=0))
    said = str(err_info.value)
    assert said.startswith("no matching artifact and this machine cannot convert: the LiteRT converter "
                           "(litert-torch) is not installed on this machine (no wheel here (a test))")
    assert "make export RUNTIMES=litert DEVICE=<this board's profile>" in said
    board.close()

    edited = json.loads((folder / "manifest.json").read_text())  # another runtime release on the board
    for e in edited["artifacts"]:
        e["runtime_versions"]["ai-edge-litert"] = "2.0.0"
    (folder / "manifest.json").write_text(json.dumps(edited))
    board = make_runtime("litert", build=build("logmel"), provider="XNNPACK", threads=1, model="logmel",
                         artifact_dir=tmp_path / "board-cache", manifest_dir=folder)
    board.load()
    with pytest.raises(UnsupportedError, match="refused: made for ai-edge-litert 2.0.0, this machine has ai-edge-litert"):
        board.prepare(wav)


def test_the_refusal_names_the_missing_aarch64_wheel():
    assert "publishes no Linux aarch64 wheel" in litert_module.converter_gap("aarch64", "Linux")
    assert "make setup-runtimes RUNTIMES=litert" in litert_module.converter_gap("x86_64", "Linux")


@needs_converter
def test_what_it_cannot_convert_is_unsupported_with_the_reason(tmp_path):
    import torch

    apc = litert("apc", tmp_path)  # a GRU: refused by its size limit, before any conversion is tried
    apc.load()
    with pytest.raises(UnsupportedError, match=r"unrolls the GRU frame by frame: an input of 32000 samples is "
                                               r"above the 16000-sample limit set for RNNs"):
        apc.prepare(synthetic_batch(1, 32000, seed=0))

    class DataDependent(torch.nn.Module):  # control flow on the input's values: torch.export refuses it
        def forward(self, x):
            if x.sum() > 0:
                return (x.unsqueeze(-1),)
            return (-x.unsqueeze(-1),)

    bad = make_runtime("litert", build=DataDependent, provider="XNNPACK", threads=1)
    bad.load()
    with pytest.raises(UnsupportedError, match="could not convert input 1x800: "):
        bad.prepare(synthetic_batch(1, 800, seed=0))

    slow = LiteRTRuntime(build("logmel"), 1, model="logmel", export_timeout_s=0.01)  # past its time limit
    slow.load()
    with pytest.raises(UnsupportedError, match="took longer than 0.01 s and was stopped"):
        slow.prepare(synthetic_batch(1, 1600, seed=0))
    with pytest.raises(UnsupportedError, match="this input is as large or larger"):
        slow.prepare(synthetic_batch(2, 3200, seed=0))  # not tried again
    with pytest.raises(UnsupportedError, match="the int8 variant is a PyTorch and ONNX Runtime recipe"):
        litert("logmel", tmp_path, variant="int8").load()
    with pytest.raises(UnsupportedError, match="graph optimisation level 'basic' does not apply"):
        litert("logmel", tmp_path, opt_level="basic")


@needs_converter
def test_a_model_that_disagrees_with_pytorch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("runners.runtimes.litert.MIN_COSINE", 1.5)  # no output can pass
    runtime = litert("logmel", tmp_path)
    runtime.load()
    with pytest.raises(UnsupportedError, match="disagrees with PyTorch: max abs err .* cosine"):
        runtime.prepare(synthetic_batch(1, 1600, seed=0))
    assert not list((tmp_path / "litert").glob("*.tflite"))  # nothing refused is cached


@needs_converter
def test_a_tiny_suite_measures_litert_beside_pytorch(tmp_path):
    """Tiny TERA through make bench's path.  (A GRU's refusal is the test above: in a suite the
    fidelity probe's 1 s input is within the RNN limit, and converting tiny APC there takes minutes.)"""
    from bench.suite import run_suite
    from runstore.folder import read_cells

    settings = build_settings(load_profile("cpu"), models="tera", runtimes="pytorch,litert",
                              batch_sizes="1", durations="0.5", reps=3, threads="1", providers=None,
                              energy="none", tiny=True, results_dir=str(tmp_path / "results"),
                              min_time_s=0.05, max_time_s=0.5)
    outcome = run_suite(replace(settings, measure_peak=False), progress=False, log=lambda m: None,
                        environment={"test": True})
    cells = {(c["model"], c["runtime"]): c for c in read_cells(outcome.run_dir)}
    measured = cells[("tera", "litert")]
    assert measured["status"] == "ok", measured["error"]
    assert measured["provider"] == "XNNPACK" and measured["threads"] == 1 and measured["variant"] == "fp32"
    assert measured["latency_n"] >= 3 and measured["load_time_s"] > 0
    assert measured["output_cosine"] > 0.9999 and measured["output_max_abs_err"] < 1e-3  # the fidelity probe
    extra = measured["extra"]
    assert extra["runtime_delegate"] == "XNNPACK" and extra["runtime_precision"] == "fp32"
    assert extra["runtime_threads"] == 1 and extra["runtime_version"] and extra["runtime_converter"]
    assert extra["runtime_export_s"] > 0 and extra["runtime_loaded_from_cache"] is False  # apart from latency
    assert extra["runtime_artifact"] == "exported here" and extra["runtime_undelegated_ops"] == []
    assert extra["runtime_artifact_file"].startswith("tera-b1-n8000-")
    assert extra["canary_change"] is not None  # LiteRT's own canary ran around the cell
    assert cells[("tera", "pytorch")]["status"] == "ok"
    assert outcome.all_ok
    # the models are cached beside the ONNX files: one per shape (the cell's and the probe's 1 s)
    assert len(list((tmp_path / "results" / "onnx" / "litert").glob("tera-*.tflite"))) == 2


def test_a_missing_litert_is_refused_with_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # find_spec answers None
    monkeypatch.setattr("runners.runtimes.packages.wheel_gap", lambda package: None)
    with pytest.raises(SettingsError) as err:
        build_settings(load_profile("cpu"), models="tera", runtimes="pytorch,litert", batch_sizes="1",
                       durations="1", reps=None, threads="1", providers=None, energy="none")
    assert str(err.value).startswith("RUNTIMES=litert: the ai_edge_litert package is not installed; install it "
                                     "with make setup-runtimes RUNTIMES=litert (or ")
    assert "--no-deps -r requirements-litert.txt" in str(err.value)
    code = bench_main(["--device", "cpu", "--models", "tera", "--runtimes", "pytorch,litert", "--tiny",
                       "--quick", "--energy", "none", "--results", str(tmp_path / "results")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "make setup-runtimes RUNTIMES=litert" in lines[0], lines
    assert not (tmp_path / "results").exists()


def test_the_packages_install_without_their_dependencies_keep_torch_and_skip_the_converter_on_aarch64(
        monkeypatch, capsys):
    package = OPTIONAL["litert"]
    assert package.no_deps and package.requirements_path.exists()
    lines = [line.split("#")[0].strip() for line in package.requirements_path.read_text().splitlines()]
    lines = [line for line in lines if line]
    assert not any(line.split(";")[0].strip().startswith("torch") and not line.startswith(("torchao", "torchax"))
                   for line in lines), lines
    converter = [line for line in lines if line.startswith(("litert-torch", "litert-converter"))]
    assert converter and all("platform_machine" in line for line in converter)  # not on Linux aarch64
    assert any(line.startswith("ai-edge-litert") and ";" not in line for line in lines)  # the runtime: everywhere
    assert wheel_gap(package, (3, 11), "Linux", "aarch64", (2, 36)) is None
    assert "no wheel for Linux riscv64" in wheel_gap(package, (3, 11), "Linux", "riscv64", (2, 39))
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setattr("runners.runtimes.packages.wheel_gap", lambda package: None)
    monkeypatch.setattr("runners.runtimes.packages.platform.machine", lambda: "aarch64")
    ran: list = []
    assert install(["litert"], run=lambda cmd: ran.append(cmd) or 0) == 0
    assert "--no-deps" in ran[0] and ran[0][-2:] == ["-r", str(package.requirements_path)]
    assert "the converter (litert-torch" in capsys.readouterr().out
