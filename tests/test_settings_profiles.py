"""Settings, the sweep plan, validation of bad input, and device profiles (incl. absent hardware)."""

from dataclasses import FrozenInstanceError, replace

import pytest

from bench.job import CellShape
from bench.plan import PlannedCell, RuntimeConfig
from bench.profiles import Accelerators, ProfileError, board_mismatch, load_profile, profile_names, resolve_profile
from bench.settings import SettingsError, build_settings
from energy.fakes import FakeRunner
from runners.harness import time_callable
from runstore.records import CellRecord, cell_key

CPU_ONLY = ["CPUExecutionProvider"]
ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider", "OpenVINOExecutionProvider"]
CPU_TORCH = "torch 2.13.0+cpu is a CPU-only build: install a CUDA build of torch"


def gpu_box(providers):
    """A machine with a CUDA device and these onnxruntime providers (injected, not probed)."""
    return dict(available_providers=list(providers), accelerators=Accelerators(True, "", tuple(providers)))


def settings(profile="cpu", **kw):
    args = dict(models=None, runtimes=None, batch_sizes=None, durations=None, reps=None, threads=None,
                providers=None, energy="none", available_providers=CPU_ONLY, all_providers=ALL)
    args.update(kw)
    return build_settings(load_profile(profile), **args)


def test_default_sweep_is_two_lines_through_the_grid():
    s = settings()
    assert s.sweep() == [(1, 1.0), (2, 1.0), (4, 1.0), (8, 1.0), (1, 2.0), (1, 4.0), (1, 8.0), (1, 16.0)]
    assert len(s.plan()) == 6 * 2 * 8
    grid = settings(grid=True)
    assert len(grid.sweep()) == 4 * 5


def test_plan_groups_cells_by_model_and_runtime():
    s = settings(models="tera,apc", batch_sizes="1,2", durations="1")
    keys = [(c.model, c.runtime, c.batch_size) for c in s.plan()]
    assert keys == [("tera", "pytorch", 1), ("tera", "pytorch", 2), ("tera", "onnxruntime", 1),
                    ("tera", "onnxruntime", 2), ("apc", "pytorch", 1), ("apc", "pytorch", 2),
                    ("apc", "onnxruntime", 1), ("apc", "onnxruntime", 2)]
    assert {c.provider for c in s.plan() if c.runtime == "onnxruntime"} == {"CPUExecutionProvider"}
    assert {c.provider for c in s.plan() if c.runtime == "pytorch"} == {"cpu"}


def test_quick_and_thread_sweep():
    q = settings(quick=True)
    assert q.sweep() == [(1, 1.0)] and q.reps == 5 and q.quick
    assert settings(quick=True, durations="2").sweep() == [(1, 2.0)]
    assert settings(threads="1,2").threads == (1, 2)
    assert len(settings(threads="1,2", models="tera").plan()) == 2 * 2 * 8


@pytest.mark.parametrize("kw,message", [
    ({"models": "tera,wav2vec3"}, "unknown model 'wav2vec3'; valid models: logmel"),
    ({"runtimes": "tensorflow"}, "unknown runtime 'tensorflow'; valid: pytorch, onnxruntime"),
    ({"batch_sizes": "1,0"}, "BATCH_SIZES=0 must be > 0"),
    ({"batch_sizes": "1,x"}, "BATCH_SIZES='x' is not a number"),
    ({"durations": "-1"}, "DURATIONS=-1 must be > 0"),
    ({"reps": 0}, "REPS=0 must be >= 1"),
    ({"providers": "FooExecutionProvider"}, "unknown execution provider 'FooExecutionProvider'; valid: Tensorrt"),
    ({"providers": "CUDAExecutionProvider"}, "CUDAExecutionProvider is not available in the installed onnxruntime; available: CPUExecutionProvider"),
])
def test_bad_input_is_one_line_naming_the_value_and_choices(kw, message):
    with pytest.raises(SettingsError) as info:
        settings(**kw)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unwritable_results_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SettingsError, match="results folder .*a-file/results is not writable"):
        settings(results_dir=str(blocker / "results"))
    assert not (blocker.parent / "results").exists()


def test_settings_hash_changes_with_what_is_measured_only():
    a, b = settings(), settings()
    assert a.settings_hash() == b.settings_hash()
    assert settings(reps=20).settings_hash() != a.settings_hash()


def test_profiles_are_data_files_and_all_load():
    assert set(profile_names()) >= {"cpu", "rpi", "jetson", "gpu"}
    rpi = load_profile("rpi")
    assert rpi.threads == 4 and rpi.ort_providers == ("CPUExecutionProvider",)
    assert max(rpi.durations) <= 8  # a smaller sweep on a Pi
    jetson = load_profile("jetson")
    assert jetson.pytorch_device == "cuda"
    assert jetson.ort_providers == ("CUDAExecutionProvider", "TensorrtExecutionProvider")
    with pytest.raises(ProfileError, match="unknown device profile 'tpu'; valid: cpu, gpu, jetson, rpi, auto"):
        load_profile("tpu")


def test_gpu_profiles_on_a_machine_with_their_hardware():
    # Jetson: PyTorch goes to CUDA, both required providers are series, the sweep is the profile's
    s = settings("jetson", **gpu_box(ALL))
    assert s.providers == ("CUDAExecutionProvider", "TensorrtExecutionProvider")
    assert s.pytorch_device == "cuda"
    assert {c.provider for c in s.plan() if c.runtime == "pytorch"} == {"cuda"}
    # the GPU profile's TensorRT provider is optional: only when this onnxruntime has it
    assert settings("gpu", **gpu_box(["CUDAExecutionProvider", "CPUExecutionProvider"])).providers == \
        ("CUDAExecutionProvider",)
    assert settings("gpu", **gpu_box(ALL)).providers == ("CUDAExecutionProvider", "TensorrtExecutionProvider")
    assert settings("rpi").threads == (4,)


def test_a_gpu_profile_this_machine_cannot_run_is_refused_with_what_is_missing():
    cpu_only = Accelerators(False, CPU_TORCH, ("CPUExecutionProvider",))
    with pytest.raises(SettingsError) as info:
        settings("gpu", accelerators=cpu_only)
    assert str(info.value) == (
        f"DEVICE=gpu cannot run here: PyTorch has no CUDA device ({CPU_TORCH}); onnxruntime has no "
        "CUDAExecutionProvider (available: CPUExecutionProvider; install onnxruntime-gpu, or on a Jetson the "
        "JetPack build of onnxruntime); use DEVICE=cpu, or RUNTIMES= without the runtime that cannot run")
    # onnxruntime-gpu without a CUDA torch: the ONNX Runtime side alone can run
    ort_gpu = Accelerators(False, CPU_TORCH, ("CUDAExecutionProvider", "CPUExecutionProvider"))
    assert settings("gpu", runtimes="onnxruntime", accelerators=ort_gpu).runtimes == ("onnxruntime",)
    with pytest.raises(SettingsError, match=r"PyTorch has no CUDA device \(torch 2.13.0\+cpu"):
        settings("gpu", accelerators=ort_gpu)
    # a Jetson without TensorRT in its onnxruntime
    no_trt = Accelerators(True, "", ("CUDAExecutionProvider", "CPUExecutionProvider"))
    with pytest.raises(SettingsError, match="DEVICE=jetson cannot run here: onnxruntime has no "
                                            "TensorrtExecutionProvider"):
        settings("jetson", accelerators=no_trt)
    # PROVIDERS named by the user replace the profile's (a Jetson rehearsal on a CPU-only box, as
    # make fleet's tests do): only those are checked, against the installed onnxruntime
    rehearsal = settings("jetson", runtimes="onnxruntime", providers="CPUExecutionProvider", accelerators=cpu_only)
    assert rehearsal.providers == ("CPUExecutionProvider",)
    with pytest.raises(SettingsError, match="DEVICE=jetson cannot run here: PyTorch has no CUDA device"):
        settings("jetson", providers="CPUExecutionProvider", accelerators=cpu_only)


def test_reps_above_the_sample_cap_raises_the_cap():
    s = settings(reps="2000")
    policy = replace(s.policy(), block_time_s=0, warmup_time_s=0, min_time_s=0)
    assert policy.min_reps == policy.max_reps == 2000
    assert len(time_callable(lambda: None, policy).samples_s) == 2000
    assert settings(reps="5").policy().max_reps == 1000


def test_a_board_profile_on_other_hardware_is_labelled():
    env = {"platform": {"kind": "cpu"}, "cpu": {"model": "AMD EPYC 7B13"}}
    note = board_mismatch("rpi", env)
    assert note.startswith("rpi profile on AMD EPYC 7B13 ") and note.endswith(" — not a Raspberry Pi")
    assert board_mismatch("jetson", env).endswith("not a Jetson")
    assert board_mismatch("rpi", {"platform": {"kind": "rpi"}}) is None
    assert board_mismatch("cpu", env) is None and board_mismatch("rpi", {}) is None  # unknown: no claim


def _fake_tree(tmp_path, model_text):
    (tmp_path / "proc" / "device-tree").mkdir(parents=True)
    (tmp_path / "proc" / "device-tree" / "model").write_text(model_text)
    return str(tmp_path)


def test_auto_detects_a_raspberry_pi_and_says_why(tmp_path):
    root = _fake_tree(tmp_path, "Raspberry Pi 5 Model B Rev 1.0\x00")
    profile = resolve_profile("auto", root=root, run=FakeRunner())
    assert profile.name == "rpi"
    assert "Raspberry Pi" in profile.chosen_because


def test_auto_detects_a_jetson(tmp_path):
    root = _fake_tree(tmp_path, "NVIDIA Jetson Orin NX Engineering Reference Developer Kit\x00")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text("# R35 (release), REVISION: 4.1\n")
    ready = Accelerators(True, "", tuple(ALL))
    assert resolve_profile("auto", root=root, run=FakeRunner(), accelerators=ready).name == "jetson"
    # a Jetson whose Python has no CUDA: auto never picks a profile that cannot run, and says why
    bare = Accelerators(False, CPU_TORCH, ("CPUExecutionProvider",))
    profile = resolve_profile("auto", root=root, run=FakeRunner(), accelerators=bare)
    assert profile.name == "cpu"
    assert "nv_tegra_release" in profile.chosen_because and "PyTorch has no CUDA device" in profile.chosen_because


def test_auto_on_this_machine_is_cpu(tmp_path):
    profile = resolve_profile("auto", root=str(tmp_path), run=FakeRunner())
    assert profile.name == "cpu" and profile.chosen_because


def test_energy_spec_is_validated_before_anything_runs(monkeypatch):
    with pytest.raises(SettingsError, match="unknown energy sensor 'joulemeter'"):
        settings(energy="joulemeter")
    monkeypatch.delenv("CPU_WATTS", raising=False)
    with pytest.raises(SettingsError, match="ENERGY=estimate needs CPU_WATTS"):
        settings(energy="estimate")
    monkeypatch.setenv("CPU_WATTS", "15")
    assert settings(energy="estimate").energy == "estimate"


@pytest.mark.parametrize("name", ["cpu", "rpi", "jetson", "gpu"])
def test_profile_energy_preferences_are_known_sensor_families(name):
    from energy import parse_spec

    assert parse_spec(",".join(load_profile(name).energy))


def test_plan_cells_are_typed_frozen_and_in_order():
    plan = settings(models="logmel,apc", batch_sizes="1,2", durations="1,4", threads="2").plan()
    assert all(isinstance(c, PlannedCell) for c in plan)
    assert plan[0] == PlannedCell(model="logmel", runtime="pytorch", provider="cpu", variant="fp32", threads=2,
                                  batch_size=1, duration_s=1.0)
    # model, then runtime, then the sweep (every batch at the first duration, then the durations)
    assert [(c.model, c.runtime, c.batch_size, c.duration_s) for c in plan[:6]] == [
        ("logmel", "pytorch", 1, 1.0), ("logmel", "pytorch", 2, 1.0), ("logmel", "pytorch", 1, 4.0),
        ("logmel", "onnxruntime", 1, 1.0), ("logmel", "onnxruntime", 2, 1.0), ("logmel", "onnxruntime", 1, 4.0)]
    assert plan[3].provider == "CPUExecutionProvider" and plan[-1].model == "apc"
    assert plan[1].shape == CellShape(2, 1.0)
    assert plan[1].config == RuntimeConfig("logmel", "pytorch", "cpu", "fp32", 2)
    with pytest.raises(FrozenInstanceError):
        plan[0].threads = 4  # type: ignore[misc]
    # resume matches a planned cell and its stored record by the same key
    stored = {"run_id": "r", "model": "logmel", "runtime": "pytorch", "provider": "cpu", "variant": "fp32",
              "threads": 2, "batch_size": 1, "duration_s": 1.0, "status": "ok"}
    assert cell_key(plan[0]) == cell_key(stored) == cell_key(CellRecord.from_dict(stored))
