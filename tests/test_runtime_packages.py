"""Optional runtimes are installed only when asked for: RUNTIMES picks them (``all`` picks every
one), and a run that asks for one whose package is missing is refused before anything is measured,
with one line saying how to install it, or that no wheel exists for this Python or machine."""

from __future__ import annotations

import sys

import pytest

from bench.cli import main
from bench.profiles import load_profile
from bench.settings import SettingsError, build_settings
from runners.runtimes import RUNTIME_NAMES, expand_runtimes
from runners.runtimes.packages import OPTIONAL, install, missing, wheel_gap
from runstore.records import DEFAULT_RUNTIMES, RUNTIMES


def settings(**kw):
    args = dict(models="tera", runtimes=None, batch_sizes="1", durations="1", reps=None, threads="1",
                providers=None, energy="none", available_providers=["CPUExecutionProvider"],
                all_providers=["CPUExecutionProvider"])
    args.update(kw)
    return build_settings(load_profile("cpu"), **args)


def absent(monkeypatch, module: str) -> None:
    """The package cannot be imported (``importlib.util.find_spec`` answers None)."""
    monkeypatch.setitem(sys.modules, module, None)


def test_the_default_comparison_stays_pytorch_and_onnxruntime():
    assert settings().runtimes == DEFAULT_RUNTIMES == ("pytorch", "onnxruntime")
    assert RUNTIME_NAMES == RUNTIMES and set(OPTIONAL) >= set(RUNTIMES) - set(DEFAULT_RUNTIMES)


def test_all_picks_every_runtime_pytorch_first(monkeypatch):
    monkeypatch.setattr("bench.settings.runtime_package_gap", lambda runtimes: None)  # as if installed
    assert settings(runtimes="all").runtimes == RUNTIMES
    assert expand_runtimes(("onnxruntime", "all", "pytorch")) == ("onnxruntime", *(r for r in RUNTIMES if r != "onnxruntime"))


def test_an_optional_runtime_gets_its_own_provider_and_only_the_default_graph_level(monkeypatch):
    monkeypatch.setattr("bench.settings.runtime_package_gap", lambda runtimes: None)
    plan = settings(runtimes="pytorch,onnxruntime,openvino", ort_opts="basic,all").plan()
    openvino = [c for c in plan if c.runtime == "openvino"]
    assert [(c.provider, c.variant) for c in openvino] == [("CPU", "fp32")]
    assert {c.variant for c in plan if c.runtime == "onnxruntime"} == {"fp32+opt=basic", "fp32"}


def test_a_missing_runtime_is_refused_with_how_to_install_it(monkeypatch):
    absent(monkeypatch, "openvino")
    monkeypatch.setattr("runners.runtimes.packages.wheel_gap", lambda package: None)
    with pytest.raises(SettingsError) as err:
        settings(runtimes="pytorch,openvino")
    assert str(err.value).startswith("RUNTIMES=openvino: the openvino package is not installed; install it with "
                                     "make setup-runtimes RUNTIMES=openvino (or ")
    assert "-r requirements-openvino.txt" in str(err.value)
    assert settings(runtimes="pytorch,onnxruntime").runtimes == DEFAULT_RUNTIMES  # not asked for: no check


def test_the_command_line_exits_2_before_anything_is_written(monkeypatch, tmp_path, capsys):
    absent(monkeypatch, "openvino")
    monkeypatch.setattr("runners.runtimes.packages.wheel_gap", lambda package: None)
    code = main(["--device", "cpu", "--models", "tera", "--runtimes", "pytorch,onnxruntime,openvino", "--tiny",
                 "--quick", "--energy", "none", "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "make setup-runtimes RUNTIMES=openvino" in err[0], err
    assert not (tmp_path / "results").exists()


def test_no_wheel_for_this_python_or_machine_is_said(monkeypatch):
    openvino = OPTIONAL["openvino"]
    assert "Python 3.10-3.13 only, this is Python 3.14" in wheel_gap(openvino, (3, 14), "Linux", "aarch64", (2, 36))
    assert "needs glibc 2.35 or newer (manylinux_2_35), this system has 2.31" in wheel_gap(
        openvino, (3, 11), "Linux", "aarch64", (2, 31))
    assert "no wheel for Linux riscv64" in wheel_gap(openvino, (3, 11), "Linux", "riscv64", (2, 39))
    assert wheel_gap(openvino, (3, 11), "Linux", "x86_64", (2, 36)) is None
    absent(monkeypatch, "openvino")
    monkeypatch.setattr("runners.runtimes.packages.wheel_gap", lambda package: "no wheel here, for the test")
    assert missing(["pytorch", "openvino"]) == ("RUNTIMES=openvino: the openvino package is not installed and "
                                                "cannot be here: no wheel here, for the test")


def test_setup_runtimes_installs_only_what_is_missing(monkeypatch, capsys):
    ran = []
    absent(monkeypatch, "openvino")
    monkeypatch.setattr("runners.runtimes.packages.wheel_gap", lambda package: None)
    assert install(["pytorch", "onnxruntime", "openvino"], run=lambda cmd: ran.append(cmd) or 0) == 0
    assert len(ran) == 1 and ran[0][-2:] == ["-r", str(OPTIONAL["openvino"].requirements_path)]
    monkeypatch.setattr("runners.runtimes.packages.wheel_gap", lambda package: "no wheel")
    assert install(["openvino"], run=lambda cmd: 0) == 2
    assert "openvino cannot be installed here: no wheel" in capsys.readouterr().err
