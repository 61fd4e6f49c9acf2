"""ExecuTorch (XNNPACK) as a runner: it exports a ``.pte`` per input shape from the PyTorch module,
checks it against PyTorch, caches it under a key of model, weights, shape and versions, records
what it ran with and how long the export took (apart from the latency), turns what it cannot
export into ``unsupported`` cells with the reason, and measures beside PyTorch in a tiny suite run.

The tests that export skip, with the reason, where the executorch package cannot be imported
(``make setup-runtimes RUNTIMES=executorch`` installs it); the refusal of a missing package is
tested everywhere.  Exports are kept few and small (tiny log-mel: about 5 s each here; a GRU is
refused by its size limit, not exported).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace

import numpy as np
import pytest

from bench.cli import main as bench_main
from bench.profiles import load_profile
from bench.settings import SettingsError, build_settings
from runners.audio import synthetic_batch
from runners.runtimes import ExecuTorchRuntime, UnsupportedError, make_runtime
from runners.runtimes.packages import OPTIONAL

HAVE_EXECUTORCH = importlib.util.find_spec("executorch") is not None
needs_executorch = pytest.mark.skipif(not HAVE_EXECUTORCH,
                                      reason="executorch is not installed (make setup-runtimes RUNTIMES=executorch)")


def build(model: str):
    from runners.reference import build_reference

    return lambda: build_reference(model, True, "random")


def torch_outputs(model: str, wav: np.ndarray) -> list[np.ndarray]:
    import torch

    with torch.inference_mode():
        return [o.numpy() for o in build(model)()(torch.from_numpy(wav))]


def executorch(model: str, tmp_path, **kw):
    return make_runtime("executorch", build=build(model), provider="XNNPACK", threads=1,
                        artifact_dir=tmp_path / "executorch", model=model, **kw)


@needs_executorch
def test_exports_checks_and_caches_a_program_per_shape(tmp_path):
    from export.onnx_export import compare_outputs

    wav = synthetic_batch(1, 4000, seed=3)
    runtime = executorch("logmel", tmp_path)
    runtime.load()
    assert runtime.facts["runtime_delegate"] == "XNNPACK" and runtime.facts["runtime_precision"] == "fp32"
    assert runtime.facts["runtime_threads"] == 1 and runtime.facts["runtime_version"]
    prepared = runtime.prepare(wav)
    out = runtime.outputs_numpy(runtime.make_call(prepared)())
    err, cosine = compare_outputs(torch_outputs("logmel", wav), out)
    assert cosine > 0.9999 and err < 1e-3, (err, cosine)
    assert runtime.batch_of(prepared) == 1
    facts = dict(runtime.facts)
    assert facts["runtime_loaded_from_cache"] is False and facts["runtime_export_s"] > 0
    assert facts["runtime_artifact_check"]["cosine"] > 0.9999  # checked when exported
    assert facts["runtime_undelegated_ops"] is not None
    ptes = sorted((tmp_path / "executorch").glob("logmel-b1-n4000-*.pte"))
    assert len(ptes) == 1 and ptes[0].with_suffix(".json").exists()
    runtime.close()

    again = executorch("logmel", tmp_path)  # a later run: same model, weights, shape and versions
    again.load()
    out2 = again.outputs_numpy(again.make_call(again.prepare(wav))())
    assert again.facts["runtime_loaded_from_cache"] is True and again.facts["runtime_export_s"] is None
    assert again.facts["runtime_artifact"] == "from cache"
    assert np.array_equal(out[-1], out2[-1])
    # another shape or other weights: another key, another file
    assert again.artifact_path((1, 4000)) == ptes[0] and again.artifact_path((2, 4000)) != ptes[0]
    again.digest = "other weights"
    assert again.artifact_path((1, 4000)) != ptes[0] and again.cached((1, 4000)) is None


@needs_executorch
def test_the_drift_canary_is_lowered_once_per_machine_and_then_read_from_the_cache(tmp_path):
    """ExecuTorch's canary is an artifact like a model's program: the first worker lowers and caches
    it, the next reads it from the cache (no lowering), and both time the same chain."""
    from runners.canary import make_canary, read_canary

    first = make_canary("executorch", 1, "XNNPACK", tmp_path / "cache", None)
    assert first.runtime.facts["runtime_artifact"] == "exported here"
    assert first.runtime.facts["runtime_artifact_check"]["cosine"] > 0.9999
    assert [p.suffix for p in (tmp_path / "cache").rglob("*.pte")] == [".pte"]
    second = make_canary("executorch", 1, "XNNPACK", tmp_path / "cache", None)
    assert second.runtime.facts["runtime_artifact"] == "from cache"
    assert second.runtime.facts["runtime_export_s"] is None
    assert 0 < read_canary(second, reps=3) < 1.0


@needs_executorch
def test_what_it_cannot_export_is_unsupported_with_the_reason(tmp_path):
    import torch

    apc = executorch("apc", tmp_path)  # a GRU: refused by its size limit, before any export is tried
    apc.load()
    with pytest.raises(UnsupportedError, match=r"unrolls the GRU frame by frame at export: an input of 16000 "
                                               r"samples is above the 4000-sample limit"):
        apc.prepare(synthetic_batch(1, 16000, seed=0))

    class DataDependent(torch.nn.Module):  # control flow on the input's values: torch.export refuses it
        def forward(self, x):
            if x.sum() > 0:
                return (x.unsqueeze(-1),)
            return (-x.unsqueeze(-1),)

    bad = make_runtime("executorch", build=DataDependent, provider="XNNPACK", threads=1)
    bad.load()
    with pytest.raises(UnsupportedError) as err:
        bad.prepare(synthetic_batch(1, 800, seed=0))
    assert "could not export input 1x800: GuardOnDataDependentSymNode: Could not guard on data-dep" in str(err.value)

    slow = ExecuTorchRuntime(build("logmel"), 1, model="logmel", export_timeout_s=0.01)  # past its time limit
    slow.load()
    with pytest.raises(UnsupportedError, match="took longer than 0.01 s and was stopped"):
        slow.prepare(synthetic_batch(1, 1600, seed=0))
    with pytest.raises(UnsupportedError, match="this input is as large or larger"):
        slow.prepare(synthetic_batch(2, 3200, seed=0))  # not tried again
    with pytest.raises(UnsupportedError, match="the int8 variant is a PyTorch and ONNX Runtime recipe"):
        executorch("logmel", tmp_path, variant="int8").load()
    with pytest.raises(UnsupportedError, match="graph optimisation level 'basic' does not apply"):
        executorch("logmel", tmp_path, opt_level="basic")


@needs_executorch
def test_a_program_that_disagrees_with_pytorch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("runners.runtimes.executorch.MIN_COSINE", 1.5)  # no output can pass
    runtime = make_runtime("executorch", build=build("logmel"), provider="XNNPACK", threads=1,
                           artifact_dir=tmp_path / "executorch", model="logmel")
    runtime.load()
    with pytest.raises(UnsupportedError, match="disagrees with PyTorch: max abs err .* cosine"):
        runtime.prepare(synthetic_batch(1, 1600, seed=0))
    assert not list((tmp_path / "executorch").glob("*.pte"))  # nothing refused is cached


@needs_executorch
def test_a_tiny_suite_measures_executorch_beside_pytorch_and_records_the_unsupported(tmp_path):
    from bench.suite import run_suite
    from runstore.folder import read_cells

    settings = build_settings(load_profile("cpu"), models="logmel,apc", runtimes="pytorch,executorch",
                              batch_sizes="1", durations="0.5", reps=3, threads="1", providers=None,
                              energy="none", tiny=True, results_dir=str(tmp_path / "results"),
                              min_time_s=0.05, max_time_s=0.5)
    outcome = run_suite(replace(settings, measure_peak=False), progress=False, log=lambda m: None,
                        environment={"test": True})
    cells = {(c["model"], c["runtime"]): c for c in read_cells(outcome.run_dir)}
    measured = cells[("logmel", "executorch")]
    assert measured["status"] == "ok", measured["error"]
    assert measured["provider"] == "XNNPACK" and measured["threads"] == 1 and measured["variant"] == "fp32"
    assert measured["latency_n"] >= 3 and measured["load_time_s"] > 0
    assert measured["output_cosine"] > 0.9999 and measured["output_max_abs_err"] < 1e-3  # the fidelity probe
    extra = measured["extra"]
    assert extra["runtime_delegate"] == "XNNPACK" and extra["runtime_precision"] == "fp32"
    assert extra["runtime_threads"] == 1 and extra["runtime_version"]
    assert extra["runtime_export_s"] > 0 and extra["runtime_loaded_from_cache"] is False  # apart from latency
    assert extra["runtime_artifact"] == "exported here" and extra["runtime_artifact_file"].startswith("logmel-b1-n8000-")
    assert extra["canary_change"] is not None  # ExecuTorch's own canary ran around the cell
    assert cells[("logmel", "pytorch")]["status"] == "ok"
    refused = cells[("apc", "executorch")]
    assert refused["status"] == "unsupported" and "unrolls the GRU" in refused["error"], refused["error"]
    assert cells[("apc", "pytorch")]["status"] == "ok"
    assert outcome.all_ok  # unsupported by design is not a failure
    # the programs are cached beside the ONNX files: one per shape (the cell's and the probe's 1 s)
    assert len(list((tmp_path / "results" / "onnx" / "executorch").glob("logmel-*.pte"))) == 2


def test_a_missing_executorch_is_refused_with_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "executorch", None)  # find_spec answers None
    monkeypatch.setattr("runners.runtimes.packages.wheel_gap", lambda package: None)
    with pytest.raises(SettingsError) as err:
        build_settings(load_profile("cpu"), models="tera", runtimes="pytorch,executorch", batch_sizes="1",
                       durations="1", reps=None, threads="1", providers=None, energy="none")
    assert str(err.value).startswith("RUNTIMES=executorch: the executorch package is not installed; install it "
                                     "with make setup-runtimes RUNTIMES=executorch (or ")
    assert "--no-deps -r requirements-executorch.txt" in str(err.value)
    code = bench_main(["--device", "cpu", "--models", "tera", "--runtimes", "pytorch,executorch", "--tiny",
                       "--quick", "--energy", "none", "--results", str(tmp_path / "results")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "make setup-runtimes RUNTIMES=executorch" in lines[0], lines
    assert not (tmp_path / "results").exists()


def test_the_package_is_installed_without_its_dependencies_and_keeps_torch():
    package = OPTIONAL["executorch"]
    assert package.no_deps and package.requirements_path.exists()
    lines = [line.split("#")[0].strip() for line in package.requirements_path.read_text().splitlines()]
    assert not any(line.startswith("torch") and not line.startswith("torchao") for line in lines if line)
