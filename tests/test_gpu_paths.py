"""CUDA and TensorRT paths, tested with fakes: no GPU was lent to this project's machines.

What is faked is only the device: the session/provider selection, provider options (TensorRT
fp16, engine cache), I/O binding calls, the fallback checks and CUDA peak-memory arithmetic are
wavebench's own code and run for real here.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from bench.profiles import Accelerators, load_profile
from bench.settings import build_settings
from bench.suite import run_suite
from runners.runtimes import OnnxRuntimeRuntime, PyTorchRuntime, UnsupportedError, provider_list
from runstore.folder import read_cells


class FakeBinding:
    def __init__(self, outputs):
        self.calls, self._outputs = [], outputs

    def bind_ortvalue_input(self, name, value):
        self.calls.append(("input", name, value.device))

    def bind_output(self, name, device, index):
        self.calls.append(("output", name, device, index))

    def synchronize_inputs(self):
        self.calls.append(("sync",))

    def copy_outputs_to_cpu(self):
        return self._outputs


class FakeOrtValue:
    def __init__(self, array, device):
        self.array, self.device = array, device

    @classmethod
    def ortvalue_from_numpy(cls, array, device, index):
        return cls(array, f"{device}:{index}")


class FakeSession:
    def __init__(self, path, sess_options=None, providers=None, fallback=None):
        self.path, self.options, self.providers = path, sess_options, providers
        first = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
        self._providers = [fallback or first, "CPUExecutionProvider"]
        self.runs = 0
        self.binding = FakeBinding([np.zeros((2, 3, 4), np.float32)])

    def get_providers(self):
        return self._providers

    def get_inputs(self):
        return [type("I", (), {"name": "waveform"})()]

    def get_outputs(self):
        return [type("O", (), {"name": "hidden_state_0"})()]

    def io_binding(self):
        return self.binding

    def run_with_iobinding(self, binding):
        self.runs += 1


def fake_ort(available, fallback=None):
    import onnxruntime as real

    class Module:
        __version__ = "fake-1.0"
        SessionOptions = real.SessionOptions
        ExecutionMode = real.ExecutionMode
        GraphOptimizationLevel = real.GraphOptimizationLevel
        OrtValue = FakeOrtValue
        sessions = []

        @staticmethod
        def get_available_providers():
            return list(available)

        @classmethod
        def InferenceSession(cls, path, sess_options=None, providers=None):
            s = FakeSession(path, sess_options, providers, fallback)
            cls.sessions.append(s)
            return s
    return Module


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"fake")
    return path


def test_cuda_provider_runs_with_io_binding_and_copies_excluded(onnx_file):
    ort = fake_ort(["CUDAExecutionProvider", "CPUExecutionProvider"])
    rt = OnnxRuntimeRuntime(onnx_file, "CUDAExecutionProvider", threads=2, ort_module=ort)
    rt.load()
    session = ort.sessions[-1]
    assert session.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert session.options.intra_op_num_threads == 2
    prepared = rt.prepare(np.ones((2, 16000), np.float32))
    assert rt.batch_of(prepared) == 2
    assert ("input", "waveform", "cuda:0") in session.binding.calls
    assert ("output", "hidden_state_0", "cuda", 0) in session.binding.calls
    call = rt.make_call(prepared)
    call(), call()
    assert session.runs == 2
    assert rt.outputs_numpy(call())[0].shape == (2, 3, 4)
    assert "copies excluded" in rt.io


def test_tensorrt_options_fp16_engine_cache_and_int8_refused(onnx_file, tmp_path):
    cache = tmp_path / "trt_cache"
    providers = provider_list("TensorrtExecutionProvider", "fp16", cache)
    assert providers[0] == ("TensorrtExecutionProvider", {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                                          "trt_engine_cache_path": str(cache)})
    assert providers[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"] and cache.is_dir()
    assert provider_list("TensorrtExecutionProvider", "fp32", None)[0][1] == {"trt_fp16_enable": False}
    with pytest.raises(UnsupportedError, match="TensorRT int8 needs a calibration table"):
        provider_list("TensorrtExecutionProvider", "int8", None)


def test_absent_provider_and_silent_fallback_are_unsupported(onnx_file):
    ort = fake_ort(["CPUExecutionProvider"])
    with pytest.raises(UnsupportedError, match="CUDAExecutionProvider is not in this onnxruntime build .*available: CPUExecutionProvider"):
        OnnxRuntimeRuntime(onnx_file, "CUDAExecutionProvider", 1, ort_module=ort).load()
    ort = fake_ort(["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                   fallback="CUDAExecutionProvider")
    with pytest.raises(UnsupportedError, match="TensorrtExecutionProvider failed to create a session .*fell back to CUDAExecutionProvider"):
        OnnxRuntimeRuntime(onnx_file, "TensorrtExecutionProvider", 1, ort_module=ort).load()


def test_pytorch_cuda_unavailable_is_unsupported():
    rt = PyTorchRuntime(lambda: torch.nn.Identity(), threads=1, device="cuda")
    with pytest.raises(UnsupportedError, match="torch.cuda is not available"):
        rt.load()


def test_pytorch_cuda_peak_memory_is_allocator_peak_over_baseline(monkeypatch):
    state = {"allocated": 1000, "peak": 1000}
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: state.update(peak=state["allocated"]))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda: state["allocated"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: state["peak"])
    rt = PyTorchRuntime(lambda: torch.nn.Identity(), threads=1, device="cuda")
    baseline = rt.reset_device_peak()
    state["peak"] = 1000 + 4096  # activations during the cell
    assert baseline == 1000 and rt.device_peak_over(baseline) == 4096
    assert PyTorchRuntime(lambda: None, 1, "cpu").reset_device_peak() is None


def test_a_worker_without_the_hardware_gives_unsupported_cells_with_reasons(tmp_path):
    # settings validated as if on a Jetson (the command line refuses the profile here): the
    # worker's own check is the net for hardware that is gone by the time a cell runs
    jetson_box = Accelerators(True, "", ("CUDAExecutionProvider", "TensorrtExecutionProvider", "CPUExecutionProvider"))
    s = build_settings(load_profile("jetson"), models="logmel", runtimes=None, batch_sizes="1", durations="0.5",
                       reps=3, threads="1", providers=None, energy="none", tiny=True,
                       results_dir=str(tmp_path / "results"), min_time_s=0.02, max_time_s=0.2,
                       available_providers=["CPUExecutionProvider"], accelerators=jetson_box)
    outcome = run_suite(replace(s, measure_peak=False), progress=False, log=lambda m: None, environment={})
    cells = {(c["runtime"], c["provider"]): c for c in read_cells(outcome.run_dir)}
    assert set(cells) == {("pytorch", "cuda"), ("onnxruntime", "CUDAExecutionProvider"),
                          ("onnxruntime", "TensorrtExecutionProvider")}
    assert all(c["status"] == "unsupported" for c in cells.values())
    assert "torch.cuda is not available" in cells[("pytorch", "cuda")]["error"]
    assert "not in this onnxruntime build" in cells[("onnxruntime", "TensorrtExecutionProvider")]["error"]
    assert outcome.all_ok  # unsupported by design is not a failure
