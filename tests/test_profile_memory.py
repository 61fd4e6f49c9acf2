"""A profile leaves out of its default model list the models that cannot fit the machine's memory
(measured needs in the profile, docs/platforms.md), and says why, instead of `oom` cells later."""

from __future__ import annotations

from bench.cli import _models_that_fit
from bench.profiles import DeviceProfile, load_profile
from models.registry import LAB_SUITE

GIB = 2**30
SMALL = DeviceProfile(name="board", description="", runtimes=("pytorch",), pytorch_device="cpu",
                      ort_providers=("CPUExecutionProvider",),
                      memory_need_gib=(("logmel", 0.5), ("hubert-base", 1.5), ("wav2vec2-base", 1.5)))


def test_models_needing_more_than_is_available_are_left_out_with_the_reason():
    kept, left_out = SMALL.models_that_fit(["logmel", "apc", "hubert-base"], available_bytes=1 * GIB)
    assert kept == ["logmel", "apc"]  # apc unmeasured: kept
    assert left_out == ["board profile: leaving out hubert-base: its sweep needs 1.5 GiB at once (measured, "
                        "docs/platforms.md) and this machine has 1.0 GiB available; MODELS=hubert-base runs it anyway"]
    assert SMALL.models_that_fit(["hubert-base"], available_bytes=2 * GIB) == (["hubert-base"], [])
    assert SMALL.models_that_fit(["hubert-base"], available_bytes=None) == (["hubert-base"], [])


def test_the_shipped_pi_profile_carries_the_measured_needs():
    """rpi.toml's needs (docs/benchmarks/rpi-memory.md): a 2 GB Pi keeps the small models only, a
    4 GB Pi everything; a profile without needs (cpu) keeps every model."""
    rpi = load_profile("rpi")
    assert set(dict(rpi.memory_need_gib)) == set(LAB_SUITE)
    kept, left_out = rpi.models_that_fit(list(LAB_SUITE), available_bytes=int(1.6 * GIB))
    assert kept == ["logmel", "apc"] and len(left_out) == len(LAB_SUITE) - 2
    assert rpi.models_that_fit(list(LAB_SUITE), available_bytes=int(3.3 * GIB)) == (list(LAB_SUITE), [])
    assert load_profile("cpu").models_that_fit(list(LAB_SUITE), available_bytes=1) == (list(LAB_SUITE), [])


def fake_meminfo(tmp_path, available_kib: int):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text(f"MemTotal: {2 * available_kib} kB\nMemAvailable: {available_kib} kB\n")


def test_the_command_line_drops_what_does_not_fit_and_keeps_everything_when_it_fits(tmp_path, monkeypatch, capsys):
    fake_meminfo(tmp_path, available_kib=GIB // 1024)  # 1 GiB: a Pi 4 with 2 GB, half of it in use
    monkeypatch.setenv("WAVEBENCH_SYSFS_ROOT", str(tmp_path))
    models = _models_that_fit(SMALL, own_sweep=False)
    assert models == ",".join(m for m in LAB_SUITE if m not in ("hubert-base", "wav2vec2-base"))
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err] == ["board profile"] * 2
    assert _models_that_fit(SMALL, own_sweep=True) is None  # TINY/QUICK/own sweep: not judged
    assert capsys.readouterr().err == ""


def test_nothing_is_left_out_with_enough_memory(tmp_path, monkeypatch, capsys):
    fake_meminfo(tmp_path, available_kib=8 * GIB // 1024)
    monkeypatch.setenv("WAVEBENCH_SYSFS_ROOT", str(tmp_path))
    assert _models_that_fit(SMALL, own_sweep=False) is None
    assert capsys.readouterr().err == ""
