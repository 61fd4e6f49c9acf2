"""OpenVINO as a runner: it compiles the exported ONNX (dynamic batch and time), at fp32 whatever
the CPU's default precision, agrees with PyTorch, caches its compiled model, records what it ran
with, turns what it cannot compile into ``unsupported`` cells, and measures beside PyTorch in a
tiny suite run whose report is written with a third runtime in it.

Skipped, with the reason, where the openvino package cannot be imported (``make setup-runtimes
RUNTIMES=openvino`` installs it; ``.ci/run`` does).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino", reason="openvino is not installed (make setup-runtimes RUNTIMES=openvino)")

from bench.profiles import load_profile  # noqa: E402
from bench.settings import build_settings  # noqa: E402
from bench.suite import run_suite  # noqa: E402
from export.onnx_export import compare_outputs, export_model  # noqa: E402
from report.run_report import main as report_main  # noqa: E402
from runners.audio import synthetic_batch  # noqa: E402
from runners.reference import build_reference  # noqa: E402
from runners.runtimes import UnsupportedError, make_runtime  # noqa: E402
from runstore.folder import read_cells  # noqa: E402


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    """Tiny TERA (a Transformer) and tiny APC (a GRU), exported and checked as make export does."""
    out = tmp_path_factory.mktemp("onnx")
    return {name: Path(export_model(name, out, tiny=True)["path"]) for name in ("tera", "apc")}


def torch_outputs(model: str, wav: np.ndarray) -> list[np.ndarray]:
    import torch

    module = build_reference(model, True, "random")
    with torch.inference_mode():
        return [o.numpy() for o in module(torch.from_numpy(wav))]


@pytest.mark.parametrize("model", ["tera", "apc"])
def test_loads_at_fp32_and_agrees_with_pytorch_at_two_shapes(onnx_files, model, tmp_path):
    runtime = make_runtime("openvino", onnx_path=onnx_files[model], provider="CPU", threads=1,
                           artifact_dir=tmp_path / "openvino")
    runtime.load()
    facts = runtime.facts
    assert facts["runtime_precision"] in ("f32", "float32")  # forced, and read back
    assert facts["runtime_threads"] == 1 and facts["runtime_streams"] == 1
    assert facts["runtime_performance_hint"] == "LATENCY" and facts["runtime_device"] == "CPU"
    assert facts["runtime_version"] and runtime.load_time_s > 0
    for batch, seconds in ((1, 1.0), (2, 0.6)):  # one compiled model, dynamic batch and time
        wav = synthetic_batch(batch, int(seconds * 16000), seed=3)
        out = runtime.outputs_numpy(runtime.make_call(runtime.prepare(wav))())
        err, cosine = compare_outputs(torch_outputs(model, wav), out)
        assert cosine > 0.9999 and err < 1e-3, (batch, seconds, err, cosine)
        assert out[-1].shape[0] == batch == runtime.batch_of(runtime.prepare(wav))


def test_the_compiled_model_is_cached_beside_the_onnx_files(onnx_files, tmp_path):
    loads = []
    for _ in range(2):
        runtime = make_runtime("openvino", onnx_path=onnx_files["apc"], provider="CPU", threads=1,
                               artifact_dir=tmp_path / "openvino")
        runtime.load()
        loads.append(runtime.facts["runtime_loaded_from_cache"])
        runtime.close()
    assert loads == [False, True]
    assert list((tmp_path / "openvino").glob("*.blob"))


def bad_onnx(path: Path) -> Path:
    """A graph with an operator no OpenVINO frontend knows."""
    from onnx import TensorProto, helper, save

    node = helper.make_node("NotAnOp", ["waveform"], ["hidden_state_0"], domain="com.wavebench.test")
    graph = helper.make_graph(
        [node], "bad", [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])],
        [helper.make_tensor_value_info("hidden_state_0", TensorProto.FLOAT, ["batch", "frames", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.wavebench.test", 1)])
    model.ir_version = 8
    save(model, str(path))
    return path


def test_what_it_cannot_compile_or_run_is_unsupported_with_the_reason(onnx_files, tmp_path):
    runtime = make_runtime("openvino", onnx_path=bad_onnx(tmp_path / "bad.onnx"), provider="CPU", threads=1)
    with pytest.raises(UnsupportedError) as err:
        runtime.load()
    assert "could not compile bad.onnx for CPU" in str(err.value)
    assert "No conversion rule found for operations: com.wavebench.test.NotAnOp" in str(err.value)
    assert "src/" not in str(err.value)  # OpenVINO's words, not its source locations
    with pytest.raises(UnsupportedError, match="the int8 variant is a PyTorch and ONNX Runtime recipe"):
        make_runtime("openvino", onnx_path=onnx_files["tera"], provider="CPU", variant="int8").load()
    with pytest.raises(UnsupportedError, match="graph optimisation level 'basic' does not apply"):
        make_runtime("openvino", onnx_path=onnx_files["tera"], provider="CPU", opt_level="basic")


def test_a_tiny_suite_measures_openvino_beside_pytorch_and_records_the_unsupported(tmp_path):
    bad = bad_onnx(tmp_path / "bad.onnx")
    settings = build_settings(load_profile("cpu"), models=f"tera,onnx:{bad}", runtimes="pytorch,openvino",
                              batch_sizes="1", durations="0.5", reps=3, threads="1", providers=None,
                              energy="none", tiny=True, results_dir=str(tmp_path / "results"),
                              min_time_s=0.05, max_time_s=0.5)
    outcome = run_suite(replace(settings, measure_peak=False), progress=False, log=lambda m: None,
                        environment={"test": True})
    cells = {(c["model"], c["runtime"]): c for c in read_cells(outcome.run_dir)}
    measured = cells[("tera", "openvino")]
    assert measured["status"] == "ok", measured["error"]
    assert measured["provider"] == "CPU" and measured["threads"] == 1 and measured["variant"] == "fp32"
    assert measured["latency_n"] >= 3 and measured["load_time_s"] > 0
    assert measured["output_cosine"] > 0.9999 and measured["output_max_abs_err"] < 1e-3  # against fp32 PyTorch
    assert measured["extra"]["runtime_precision"] in ("f32", "float32")
    assert measured["extra"]["runtime_threads"] == 1
    assert measured["extra"]["canary_change"] is not None  # OpenVINO's own canary ran around the cell
    assert cells[("tera", "pytorch")]["status"] == "ok"
    refused = cells[(f"onnx:{bad}", "openvino")]
    assert refused["status"] == "unsupported"
    assert "No conversion rule found for operations: com.wavebench.test.NotAnOp" in refused["error"]
    assert outcome.all_ok  # unsupported by design is not a failure
    assert list((tmp_path / "results" / "onnx" / "openvino").glob("*.blob"))  # the cache, beside the ONNX
    # the report reads a third runtime's records (python -m report RUN)
    assert (outcome.run_dir / "report.md").exists()
    assert report_main([str(outcome.run_dir)]) == 0
    assert "openvino" in (outcome.run_dir / "report.md").read_text()
