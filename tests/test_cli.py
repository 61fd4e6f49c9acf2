"""The command line: bad input is one line on stderr, exit 2, and nothing is written."""

import pytest

from bench.cli import main, threads_warning
from bench.profiles import probe_accelerators

HERE = probe_accelerators()
GPU_READY = HERE.torch_cuda and {"CUDAExecutionProvider", "TensorrtExecutionProvider"} <= set(HERE.ort_providers)


@pytest.mark.parametrize("argv,message", [
    (["--device", "tpu"], "unknown device profile 'tpu'; valid: cpu, gpu, jetson, rpi, auto"),
    (["--models", "wav2vec3"], "unknown model 'wav2vec3'"),
    (["--runtimes", "tflite"], "unknown runtime 'tflite'; valid: pytorch, onnxruntime"),
    (["--batch-sizes", "0"], "BATCH_SIZES=0 must be > 0"),
    (["--durations", "-2"], "DURATIONS=-2 must be > 0"),
    (["--providers", "CUDAExecutionProvider"], "CUDAExecutionProvider is not available in the installed onnxruntime"),
    (["--variants", "fp8"], "unknown variant 'fp8'"),
    (["--energy", "wattmeter"], "unknown energy sensor 'wattmeter'"),
    (["--reps", "0"], "REPS=0 must be >= 1"),
    (["--reps", "0", "--quick"], "REPS=0 must be >= 1"),  # QUICK does not hide an explicit value
    (["--reps", "0", "--grid"], "REPS=0 must be >= 1"),
    (["--reps", "ten"], "REPS='ten' is not a whole number"),
    pytest.param(["--device", "gpu"], "DEVICE=gpu cannot run here",
                 marks=pytest.mark.skipif(GPU_READY, reason="this machine can run the gpu profile")),
    pytest.param(["--device", "jetson"], "DEVICE=jetson cannot run here",
                 marks=pytest.mark.skipif(GPU_READY, reason="this machine can run the jetson profile")),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    results = tmp_path / "results"
    code = main(["--device", "cpu", "--results", str(results), "--no-progress"] + argv
                if "--device" not in argv else ["--results", str(results), "--no-progress"] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]
    assert not results.exists()


@pytest.mark.parametrize("env,message", [
    ({"REPS": "0"}, "REPS=0 must be >= 1"),  # make bench REPS=0
    ({"REPS": "0", "QUICK": "1"}, "REPS=0 must be >= 1"),
    ({"ENERGY": "estimate"}, "ENERGY=estimate needs CPU_WATTS"),
    # every variable is parsed by its one definition (setting_defs) before anything runs
    ({"MIN_TIME": "soon"}, "MIN_TIME='soon' is not a number; expected a number > 0"),
    ({"QUICK": "yes"}, "QUICK='yes' is not a switch"),
    ({"CPU_WATTS": "lots"}, "CPU_WATTS='lots' is not a number"),
    ({"ORDER": "random"}, "ORDER='random' is not valid; valid: interleaved, grouped"),
    ({"ENERGY": "csv:/no/such/folder/log.csv"}, "ENERGY=csv:/no/such/folder/log.csv: no folder /no/such/folder"),
])
def test_bad_make_variables_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, monkeypatch, env, message):
    monkeypatch.delenv("CPU_WATTS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    results = tmp_path / "results"
    assert main(["--device", "cpu", "--results", str(results), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not results.exists()


def test_an_unwritable_onnx_dir_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("ONNX_DIR", str(tmp_path / "a-file" / "onnx"))
    assert main(["--device", "cpu", "--results", str(tmp_path / "results"), "--no-progress"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"ONNX folder {tmp_path / 'a-file' / 'onnx'} is not writable" in line and "ONNX_DIR=" in line
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(GPU_READY, reason="needs a machine without CUDA")
def test_gpu_refusal_names_what_is_missing_and_how_to_get_it(tmp_path, capsys):
    assert main(["--device", "gpu", "--results", str(tmp_path / "r"), "--no-progress"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    if not HERE.torch_cuda:
        assert "PyTorch has no CUDA device" in line
        assert ("CUDA build of torch" in line) or ("sees no CUDA device" in line)
    if "CUDAExecutionProvider" not in HERE.ort_providers:
        assert "onnxruntime has no CUDAExecutionProvider" in line and "onnxruntime-gpu" in line
    # leaving PyTorch out does not help while the CUDA provider is missing
    assert main(["--device", "gpu", "--runtimes", "onnxruntime", "--results", str(tmp_path / "r"),
                 "--no-progress"]) == 2
    assert not (tmp_path / "r").exists()


def test_more_threads_than_cores_is_one_warning_line():
    assert threads_warning((1, 2), 2) is None
    line = threads_warning((4,), 2)
    assert line.startswith("warning: 4 threads but only 2 usable core(s)") and "\n" not in line


def test_run_json_and_report_carry_no_path_of_this_machine_and_the_command_as_typed(tmp_path, monkeypatch, capsys):
    import json
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    results = tmp_path / "results"
    argv = ["--device", "cpu", "--tiny", "--models", "logmel", "--runtimes", "pytorch,onnxruntime",
            "--batch-sizes", "1", "--durations", "0.5", "--reps", "3", "--min-time", "0.05", "--max-time", "0.2",
            "--energy", "none", "--threads", "1", "--no-peak", "--no-progress", "--results", str(results)]
    monkeypatch.delenv("WAVEBENCH_COMMAND", raising=False)
    assert main(argv) == 0
    (run_dir,) = results.glob("cpu/*")
    texts = {name: (run_dir / name).read_text() for name in ("run.json", "report.md")}
    for name, text in texts.items():
        for local in (str(tmp_path), str(repo), sys.executable, str(Path.home())):
            assert local not in text, (name, local)
    run = json.loads(texts["run.json"])
    assert run["command"] == ("python -m runners " + " ".join(argv[:-1]) + " …/results")
    assert run["settings"]["results_dir"] == "…/results" and run["host"]  # the host name stays
    assert run["environment"]["software"]["python_executable"] in (".venv/bin/python", f"…/{Path(sys.executable).name}")
    # the terminal summary leads with the answer: what was compared and the verdict, the table, the
    # report; details after; the wall time was predicted before measuring and is recorded with the actual
    out, err = capsys.readouterr()
    order = [out.index(text) for text in ("compared: PyTorch", "- Of 1 cells measured ok under both runtimes",
                                          "PT median ms", f"report: {run_dir / 'report.md'}", "run complete: 2 ok",
                                          "wall time: measuring 2 cell(s) took")]
    assert order == sorted(order), out
    assert "predicted: measuring 2 cell(s) takes about" in err
    wall = run["sessions"][-1]["wall_time"]
    assert wall["measure"]["cells"] == 2 and wall["measure"]["predicted_s"] > 0 and wall["measure"]["actual_s"] > 0
    assert wall["predicted_s"] >= wall["measure"]["predicted_s"] and wall["actual_s"] >= wall["measure"]["actual_s"]
    assert (run["predicted_wall_s"], run["actual_wall_s"]) == (wall["predicted_s"], wall["actual_s"])
    # make bench passes what was typed
    monkeypatch.setenv("WAVEBENCH_COMMAND", "make bench  QUICK=1 REPS=3")
    assert main(argv + ["--fresh"]) == 0
    latest = max(results.glob("cpu/*"), key=lambda p: p.name)
    assert json.loads((latest / "run.json").read_text())["command"] == "make bench QUICK=1 REPS=3"


def test_portable_text_keeps_urls_system_paths_and_ratios_and_is_idempotent():
    from pathlib import Path

    from runstore.folder import portable_text

    repo = Path(__file__).resolve().parent.parent
    text = (f"{repo}/results/cpu/r1 and /home/someone/data/x.wav, python:/tmp/m/held.py:factory; "
            "https://huggingface.co/facebook/hubert-base-ls960 /proc/driver/nvidia/gpus IQR/median 1/5/15 /sys")
    once = portable_text(text)
    assert once == ("results/cpu/r1 and …/x.wav, python:…/held.py:factory; "
                    "https://huggingface.co/facebook/hubert-base-ls960 /proc/driver/nvidia/gpus IQR/median 1/5/15 /sys")
    assert portable_text(once) == once
