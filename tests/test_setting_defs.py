"""One definition per setting (setting_defs): everything else is derived from it or checked against it.

Derived (a new definition appears there by itself): ``python -m runners``' flags, the settings
hash's fields, the variables ``make fleet`` forwards, the flags of export/flops/eval/fleet.
Checked (a new definition that is missing there fails here, by name): the Makefile's ``export``
lines, the README's settings tables, ``build_settings``' keywords and the ``Settings`` fields.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

import pytest

import setting_defs.table as table
from bench import cli as bench_cli
from bench.settings import Settings, build_settings, hash_fields
from fleet import cli as fleet_cli
from fleet.config import check_settings, load_fleet, settings_from_env
from setting_defs import SETTINGS, SettingDef, SettingError, fleet_names, setting, settings_for
from setting_defs.kinds import parse_flag

ROOT = Path(__file__).resolve().parent.parent
# build_settings' keywords that are not settings: what the machine has, injected by tests
NOT_SETTINGS = {"profile", "available_providers", "all_providers", "accelerators"}


def makefile_exports() -> set[str]:
    """The names on the Makefile's ``export`` lines (continuations joined)."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("export "):
            names.update(line.split()[1:])
    return names


def readme_table_names() -> set[str]:
    """The variables named in the first column of the README's tables (`A`, `B` / `C` rows)."""
    names: set[str] = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first))
    return names


def gaps(defs: tuple[SettingDef, ...]) -> list[str]:
    """Every place a defined setting is missing from, in words."""
    exported, documented = makefile_exports(), readme_table_names()
    keywords = set(inspect.signature(build_settings).parameters) - NOT_SETTINGS
    settings_fields = {f.name for f in dataclasses.fields(Settings)}
    out = []
    for d in defs:
        if d.name not in exported:
            out.append(f"{d.name}: not on the Makefile's export line")
        if d.name not in documented:
            out.append(f"{d.name}: no row in the README's settings tables")
        if "bench" in d.tools and d.field and d.field != "device" and d.field not in keywords:
            out.append(f"{d.name}: build_settings has no keyword {d.field}")
        if "bench" in d.tools and d.field and d.field not in settings_fields:
            out.append(f"{d.name}: Settings has no field {d.field}")
        if d.measuring and not d.field:
            out.append(f"{d.name}: changes what is measured but fills no Settings field (the hash cannot see it)")
    return out


FAKE = SettingDef("FAKE_KNOB", "--fake-knob", table.parse_text, "on", "on", "a setting made up by a test",
                  field="fake_knob", measuring=True, fleet=True, tools=("bench", "eval"))


# -- checked against the definition -----------------------------------------------------------

def test_every_setting_is_exported_documented_and_reaches_the_bench_settings():
    assert gaps(SETTINGS) == []


def test_nothing_is_exported_that_is_not_a_defined_setting():
    assert makefile_exports() - {d.name for d in SETTINGS} == set()


def test_a_half_added_setting_is_named_in_every_place_it_is_missing(monkeypatch):
    monkeypatch.setattr(table, "SETTINGS", SETTINGS + (FAKE,))
    assert gaps(table.SETTINGS) == [
        "FAKE_KNOB: not on the Makefile's export line",
        "FAKE_KNOB: no row in the README's settings tables",
        "FAKE_KNOB: build_settings has no keyword fake_knob",
        "FAKE_KNOB: Settings has no field fake_knob",
    ]


def test_a_real_setting_missing_from_the_makefile_or_readme_is_found(monkeypatch, tmp_path):
    # the same checks over a copy of the Makefile and README that lost ORDER
    (tmp_path / "Makefile").write_text((ROOT / "Makefile").read_text().replace(" ORDER ", " "))
    (tmp_path / "README.md").write_text((ROOT / "README.md").read_text().replace("| `ORDER` |", "| order |"))
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert gaps(SETTINGS) == ["ORDER: not on the Makefile's export line",
                              "ORDER: no row in the README's settings tables"]


def test_fixed_choices_are_the_ones_the_code_accepts():
    from bench.schedule import ORDERS
    from export.onnx_export import EXPORTERS
    from export.variants import ORT_OPT_LEVELS, VARIANTS
    from runners.runtimes import ALL
    from runstore.records import RUNTIMES

    assert setting("ORDER").choices == ORDERS
    assert setting("EXPORTER").choices == EXPORTERS
    assert setting("RUNTIMES").choices == (*RUNTIMES, ALL)
    assert setting("SPEEDUP_BASE").choices == RUNTIMES
    assert setting("VARIANTS").choices == VARIANTS
    assert setting("ORT_OPT").choices == ORT_OPT_LEVELS
    from runners.harness import SPEEDUP_CI, TimingPolicy
    assert setting("SPEEDUP_CI").default == SPEEDUP_CI == TimingPolicy.speedup_ci   # the stopping rule's own


# -- derived from the definition --------------------------------------------------------------

def test_a_new_setting_appears_in_the_cli_the_fleet_and_the_hash(monkeypatch):
    monkeypatch.setattr(table, "SETTINGS", SETTINGS + (FAKE,))
    monkeypatch.setenv("FAKE_KNOB", "off")
    args = bench_cli.build_parser().parse_args([])
    assert args.fake_knob == "off"   # its variable is the flag's default
    assert bench_cli.build_parser().parse_args(["--fake-knob", "x"]).fake_knob == "x"
    assert bench_cli.build_kwargs(args)["fake_knob"] == "off"   # handed to build_settings
    assert "FAKE_KNOB" in fleet_names()
    assert settings_from_env({"FAKE_KNOB": "x", "DEVICE": "gpu"}) == {"FAKE_KNOB": "x"}
    assert check_settings({"FAKE_KNOB": "x"}, "here") == {"FAKE_KNOB": "x"}
    assert "fake_knob" in hash_fields()
    from evaluation.cli import parser as eval_parser
    assert eval_parser().parse_args(["--data", "d"]).fake_knob == "off"


def test_every_bench_setting_is_a_flag_of_python_m_runners(monkeypatch):
    for d in SETTINGS:
        monkeypatch.delenv(d.name, raising=False)
    flags = {s for a in bench_cli.build_parser()._actions for s in a.option_strings}
    assert {d.flag for d in settings_for("bench")} <= flags


def test_the_hash_fields_are_the_measuring_settings_and_stay_what_they_were():
    # a run of an older version resumes only when its hash is computed from the same fields
    # (speedup_base joined them; at its default, PyTorch, it is left out of the hash: below)
    assert set(hash_fields()) == {"device", "models", "runtimes", "batch_sizes", "durations", "reps", "threads",
                                  "variants", "ort_opts", "providers", "pytorch_device", "energy", "weights", "grid",
                                  "quick", "tiny", "min_time_s", "max_time_s", "ci_target", "speedup_ci", "exporter",
                                  "order", "speedup_base"}
    kw = dict(device="cpu", models=("logmel", "apc"), runtimes=("pytorch", "onnxruntime"), batch_sizes=(1, 2),
              durations=(1.0,))
    # the hash of these settings in the version before setting_defs (WEIGHTS' default was random then,
    # SPEEDUP_CI's 0.10 until issue 21's measurements: a run of the old default does not resume)
    assert Settings(**kw, weights="random", speedup_ci=0.10).settings_hash() == "70efefe987"
    assert Settings(**kw, speedup_ci=0.10).settings_hash() == "70efefe987"   # default = random weights here
    assert Settings(**kw, order="grouped", speedup_ci=0.10).settings_hash() != "70efefe987"
    assert Settings(**kw).settings_hash() == "77ff7e2f74"
    # SPEEDUP_BASE at PyTorch (what every older run paired with) leaves the hash as it was
    assert Settings(**kw, speedup_base="pytorch", speedup_ci=0.10).settings_hash() == "70efefe987"
    assert Settings(**kw, speedup_base="pytorch").settings_hash() == "77ff7e2f74"
    assert Settings(**kw, speedup_base="onnxruntime").settings_hash() != "77ff7e2f74"


def test_weights_default_is_one_default_for_bench_export_and_eval():
    from evaluation.run import EvalSettings

    assert setting("WEIGHTS").default == "default" == Settings.weights == EvalSettings.weights
    ge2e = dict(device="cpu", models=("ge2e",), runtimes=("pytorch",), batch_sizes=(1,), durations=(1.0,))
    # ge2e's default is its packaged trained weights: not what random measures
    assert Settings(**ge2e).settings_hash() != Settings(**ge2e, weights="random").settings_hash()
    assert Settings(**ge2e, tiny=True).measured_weights() == "random"   # toy size: random


def test_reps_default_is_written_once():
    assert Settings.reps == setting("REPS").default == 10


# -- parsing: one line naming the value ---------------------------------------------------------

@pytest.mark.parametrize("name,text,message", [
    ("QUICK", "yes", "QUICK='yes' is not a switch; valid: 1 (on), 0 or unset (off)"),
    ("MIN_TIME", "soon", "MIN_TIME='soon' is not a number; expected a number > 0"),
    ("CI_TARGET", "0", "CI_TARGET=0 must be > 0"),
    ("CPU_WATTS", "-5", "CPU_WATTS=-5 must be > 0"),
    ("ORDER", "random", "ORDER='random' is not valid; valid: interleaved, grouped"),
    ("RUNTIMES", "pytorch,tflite", "RUNTIMES='tflite' is not valid; valid: pytorch, onnxruntime, openvino, executorch, litert, all"),
    ("REPS", "0", "REPS=0 must be >= 1"),
])
def test_a_bad_value_is_one_line_naming_it(name, text, message):
    with pytest.raises(SettingError) as info:
        setting(name).value(text)
    assert str(info.value) == message


def test_unset_means_the_default():
    assert setting("ORDER").value("") == "interleaved" and setting("ORDER").value(None) == "interleaved"
    assert setting("QUICK").value("0") is False and setting("QUICK").value("1") is True
    assert setting("THREADS").value("1, 2") == (1, 2) and setting("THREADS").value(None) is None
    assert setting("QUICK").parse is parse_flag


# -- make fleet forwards what make bench measures ----------------------------------------------

def test_fleet_forwards_order_and_remeasure_and_not_the_local_folders():
    names = fleet_names()
    assert "ORDER" in names and "REMEASURE" in names and "MIN_TIME" in names
    assert not {"DEVICE", "RESULTS_DIR", "ONNX_DIR", "FLOPS_DIR", "HOSTS", "FLEET"} & set(names)
    assert settings_from_env({"ORDER": "grouped", "REMEASURE": "drift", "RESULTS_DIR": "r"}) == {
        "ORDER": "grouped", "REMEASURE": "drift"}


def test_a_fleet_file_may_set_order(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[settings]\nORDER = "grouped"\n\n[[board]]\nhost = "pi@rpi5"\nprofile = "rpi"\n')
    (board,) = load_fleet(path, {})
    assert board.settings == {"ORDER": "grouped"}


def test_fleet_refuses_a_missing_ssh_config_before_contacting_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SSH_CONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("RESULTS_DIR", str(tmp_path / "r"))
    assert fleet_cli.main(["--hosts", "pi@rpi5:rpi"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"fleet: error: SSH_CONFIG={tmp_path / 'absent'}: no such file"
    assert not (tmp_path / "r").exists()


# -- make export, make flops and make eval read the shared variables as make bench does ----------

SHARED_VARIABLES = ("MODELS", "RUNTIMES", "ONNX_DIR", "RESULTS_DIR", "TINY", "WEIGHTS", "THREADS", "EXPORTER",
                    "FRESH", "ENERGY", "CPU_WATTS", "FLOPS_DIR", "DURATIONS", "BATCH_SIZES")


@pytest.fixture
def clean_env(monkeypatch):
    for name in SHARED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_make_export_reads_onnx_dir_tiny_exporter_weights_and_results_dir(clean_env, tmp_path, capsys):
    import export.__main__ as export_main

    calls = []
    clean_env.setattr(export_main, "export_model",
                      lambda name, out, **kw: calls.append((name, str(out), kw)) or {"skipped": True, "file": "f"})
    # export_model is faked, so onnxscript (requirements-dynamo.txt) need not be installed here
    clean_env.setattr(export_main, "missing_for", lambda exporter: None)
    clean_env.setenv("MODELS", "logmel")
    clean_env.setenv("RESULTS_DIR", str(tmp_path / "r"))
    clean_env.setenv("TINY", "1")
    clean_env.setenv("EXPORTER", "dynamo")
    assert export_main.main([]) == 0
    assert calls == [("logmel", str(tmp_path / "r" / "onnx"),   # make bench's ONNX folder for this RESULTS_DIR
                      {"tiny": True, "exporter": "dynamo", "force": False, "weights": "default"})]
    clean_env.setenv("ONNX_DIR", str(tmp_path / "o"))
    assert export_main.main(["--force"]) == 0 and calls[-1][1] == str(tmp_path / "o") and calls[-1][2]["force"]


def test_make_export_refuses_an_unwritable_onnx_dir_and_a_bad_switch(clean_env, tmp_path, capsys):
    import export.__main__ as export_main

    (tmp_path / "a-file").write_text("")
    clean_env.setenv("ONNX_DIR", str(tmp_path / "a-file" / "onnx"))
    assert export_main.main([]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: ONNX folder {tmp_path / 'a-file' / 'onnx'} is not writable") and "ONNX_DIR=" in line
    clean_env.delenv("ONNX_DIR")
    clean_env.setenv("TINY", "yes")
    assert export_main.main([]) == 2
    assert capsys.readouterr().err.strip() == "error: TINY='yes' is not a switch; valid: 1 (on), 0 or unset (off)"


def test_make_flops_reads_the_onnx_folder_of_results_dir_and_checks_flops_dir(clean_env, tmp_path, capsys):
    import flops.report as flops_report

    seen = {}

    def build_report(models, durations, batch_sizes, onnx_dir, log=print):
        seen.update(models=models, durations=durations, batch_sizes=batch_sizes, onnx_dir=str(onnx_dir))
        raise flops_report.UsageError("stop here")

    clean_env.setattr(flops_report, "build_report", build_report)
    clean_env.setenv("RESULTS_DIR", str(tmp_path / "r"))
    clean_env.setenv("DURATIONS", "1,4")
    assert flops_report.main([]) == 2
    assert seen == {"models": list(flops_report.LAB_SUITE), "durations": [1.0, 4.0], "batch_sizes": [1],
                    "onnx_dir": str(tmp_path / "r" / "onnx")}
    assert capsys.readouterr().err.strip() == "error: stop here"
    (tmp_path / "a-file").write_text("")
    clean_env.setenv("FLOPS_DIR", str(tmp_path / "a-file" / "flops"))
    assert flops_report.main([]) == 2
    assert "FLOPs folder" in capsys.readouterr().err and not (tmp_path / "a-file" / "flops").exists()
    clean_env.delenv("FLOPS_DIR")
    clean_env.setenv("DURATIONS", "1,x")
    assert flops_report.main([]) == 2
    assert capsys.readouterr().err.strip().startswith("error: DURATIONS='x' is not a number")


def test_make_eval_honours_runtimes_onnx_dir_tiny_threads_and_weights(clean_env, tmp_path, capsys):
    import evaluation.cli as eval_cli
    import evaluation.run as eval_run

    seen = []

    def evaluate(settings):
        seen.append(settings)
        raise ValueError("stop here")

    clean_env.setattr(eval_run, "evaluate", evaluate)
    clean_env.setenv("MODELS", "logmel")
    clean_env.setenv("RUNTIMES", "pytorch")
    clean_env.setenv("ONNX_DIR", str(tmp_path / "o"))
    clean_env.setenv("RESULTS_DIR", str(tmp_path / "r"))
    clean_env.setenv("TINY", "1")
    clean_env.setenv("THREADS", "2")
    clean_env.setenv("ENERGY", "none")
    assert eval_cli.main(["--data", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err.strip() == "error: stop here"
    (s,) = seen
    assert (s.models, s.runtimes, s.onnx_dir, s.tiny, s.threads, s.weights, s.exporter, s.out_dir) == (
        ["logmel"], ["pytorch"], tmp_path / "o", True, 2, "default", "torchscript", tmp_path / "r" / "eval")
    clean_env.delenv("RUNTIMES")
    assert eval_cli.main(["--data", "d"]) == 2 and seen[-1].runtimes == ["pytorch", "onnxruntime"]
    capsys.readouterr()
    for name, text, message in [("THREADS", "1,2", "error: THREADS=1,2: make eval takes one number of threads"),
                                ("RUNTIMES", "tflite", "error: RUNTIMES='tflite' is not valid"),
                                ("RUNTIMES", "pytorch,openvino",
                                 "error: RUNTIMES=pytorch,openvino: make eval runs pytorch, onnxruntime only"),
                                ("WEIGHTS", str(tmp_path / "absent.pt"), "error: logmel: weights"),
                                ("ENERGY", "csv:/no/such/folder/log.csv", "error: ENERGY=csv:/no/such/folder/log.csv: no folder")]:
        clean_env.setenv(name, text)
        assert eval_cli.main(["--data", "d"]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(message), line
        clean_env.delenv(name)
    assert len(seen) == 2   # none of the refusals reached the evaluation


def test_a_named_artifacts_dir_that_is_not_a_folder_is_refused_before_anything_runs(clean_env, tmp_path, capsys,
                                                                                     monkeypatch):
    # make bench only reads ARTIFACTS_DIR (make export writes it): a typo would convert here without a word
    seen = []

    class Captured(Exception):
        pass

    def capture(settings, **kw):
        seen.append(settings)
        raise Captured  # the settings were accepted: nothing is measured here

    monkeypatch.setattr("bench.suite.run_suite", capture)
    argv = ["--device", "cpu", "--tiny", "--models", "logmel", "--runtimes", "pytorch", "--batch-sizes", "1",
            "--durations", "0.5", "--energy", "none", "--threads", "1", "--no-progress",
            "--results", str(tmp_path / "results")]
    missing = tmp_path / "artifacts-typo"
    assert bench_cli.main([*argv, "--artifacts-dir", str(missing)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (f"error: ARTIFACTS_DIR={missing}: no such folder (make export RUNTIMES=executorch,litert "
                    "DEVICE=cpu writes it); set ARTIFACTS_DIR=... / --artifacts-dir to another")
    (tmp_path / "a-file").write_text("")
    clean_env.setenv("ARTIFACTS_DIR", str(tmp_path / "a-file"))   # make bench ARTIFACTS_DIR=...
    assert bench_cli.main(argv) == 2
    assert "ARTIFACTS_DIR=" in capsys.readouterr().err and seen == []
    missing.mkdir()
    clean_env.setenv("ARTIFACTS_DIR", str(missing))
    with pytest.raises(Captured):
        bench_cli.main(argv)
    clean_env.delenv("ARTIFACTS_DIR")
    with pytest.raises(Captured):   # unset: the default <ONNX_DIR>/artifacts may well be absent
        bench_cli.main(argv)
    assert [s.artifacts_dir for s in seen] == [str(missing), str(tmp_path / "results" / "onnx" / "artifacts")]
