"""The suite end to end on tiny models: records, resume, isolation of crashes, timeouts, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from background_shell import SIGINT_IGNORED

from bench.profiles import load_profile
from bench.settings import build_settings
from bench.suite import run_suite
from flops import count_onnx, macs_for
from runstore.folder import read_cells
from runstore.records import CellRecord

ROOT = Path(__file__).resolve().parent.parent
FAST = dict(min_time_s=0.05, max_time_s=0.5)


def make_settings(tmp_path, peak=False, **kw):
    args = dict(models="logmel,tera", runtimes=None, batch_sizes="1,2", durations="0.5,1", reps=3,
                threads="1", providers=None, energy="none", tiny=True, results_dir=str(tmp_path / "results"),
                **FAST)
    args.update(kw)
    return replace(build_settings(load_profile("cpu"), **args), measure_peak=peak)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("suite")
    settings = make_settings(tmp)
    outcome = run_suite(settings, progress=False, log=lambda m: None, environment={"test": True})
    return settings, outcome


def test_every_cell_is_recorded_with_the_contract_fields(tiny_run):
    settings, outcome = tiny_run
    assert outcome.status == "complete" and outcome.counts == {"ok": 12}
    cells = read_cells(outcome.run_dir)
    assert len(cells) == 12
    fields = set(CellRecord.__dataclass_fields__)
    for c in cells:
        assert set(c) == fields
        assert c["status"] == "ok", c["error"]
        assert c["latency_n"] == len(c["latency_samples_s"]) >= 3
        assert c["latency_min_s"] <= c["latency_median_s"] <= c["latency_max_s"]
        assert c["latency_ci95_low_s"] <= c["latency_median_s"] <= c["latency_ci95_high_s"]
        assert c["rtf"] == pytest.approx(c["latency_median_s"] / (c["batch_size"] * c["duration_s"]))
        assert c["throughput_audio_s_per_s"] == pytest.approx(1 / c["rtf"])
        assert c["threads"] == 1 and c["first_call_s"] > 0 and c["load_time_s"] > 0
        assert c["params_unique"] is not None
        assert c["peak_memory_bytes"] is not None
        assert c["energy_j"] is None and c["energy_reason"]  # ENERGY=none: null with a reason
        # the batch dimension really is the batch size
        assert c["extra"]["output_shape"][0] == c["batch_size"]
    ort = [c for c in cells if c["runtime"] == "onnxruntime"]
    assert all(c["provider"] == "CPUExecutionProvider" and c["onnx_bytes"] > 0 for c in ort)
    assert all(c["output_max_abs_err"] < 1e-3 and c["output_cosine"] > 0.9999 for c in ort)


def test_run_json_and_outputs(tiny_run):
    settings, outcome = tiny_run
    run = json.loads((outcome.run_dir / "run.json").read_text())
    assert run["status"] == "complete" and run["schema_version"] == 1
    assert run["settings_hash"] == settings.settings_hash()
    assert run["settings"]["models"] == ["logmel", "tera"]
    assert run["environment"] == {"test": True}
    assert set(run["models"]) == {"logmel", "tera"}
    assert run["counts"] == {"ok": 12}


def test_rerunning_a_complete_run_measures_again_in_a_new_run(tiny_run):
    settings, outcome = tiny_run
    before = (outcome.run_dir / "cells.jsonl").read_text()
    messages = []
    again = run_suite(settings, progress=False, log=messages.append, environment={"test": True})
    assert again.run_dir != outcome.run_dir and again.counts == {"ok": 12}
    assert (outcome.run_dir / "cells.jsonl").read_text() == before
    assert messages[0].startswith(f"new run {again.run_dir}: {outcome.run_dir} is complete")


def test_too_short_duration_is_unsupported_for_that_model_only(tmp_path):
    # 0.02 s = 320 samples: below the log-mel window (400) but the python model takes it
    settings = make_settings(tmp_path, models="logmel", runtimes="pytorch", batch_sizes="1", durations="0.02,0.5")
    outcome = run_suite(settings, progress=False, log=lambda m: None, environment={})
    cells = {c["duration_s"]: c for c in read_cells(outcome.run_dir)}
    assert cells[0.02]["status"] == "unsupported"
    assert "shorter than logmel's minimum input 0.025s (400 samples)" in cells[0.02]["error"]
    assert cells[0.5]["status"] == "ok"
    assert outcome.all_ok


FAULTY = '''
import os, signal, time
import torch


class Faulty(torch.nn.Module):
    """Crashes, runs out of memory or hangs at chosen input lengths (seconds of audio)."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(320, 8)

    def forward(self, wav):
        seconds = wav.shape[1] / 16000
        if seconds == 2:
            os.kill(os.getpid(), signal.SIGSEGV)
        if seconds == 3:
            raise MemoryError("cannot allocate 1 TB")
        if seconds == 4:
            time.sleep(60)
        if seconds == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        frames = wav.shape[1] // 320
        return self.proj(wav[:, : frames * 320].reshape(wav.shape[0], frames, 320))


def factory():
    return Faulty()
'''


def test_crash_oom_and_timeout_become_cell_statuses_and_the_suite_goes_on(tmp_path):
    model_file = tmp_path / "faulty.py"
    model_file.write_text(FAULTY)
    spec = f"python:{model_file}:factory"
    settings = make_settings(tmp_path, models=spec, runtimes="pytorch", batch_sizes="1",
                             durations="1,2,3,4,5,6", cell_timeout_s=8)
    outcome = run_suite(settings, progress=False, log=lambda m: None, environment={})
    cells = {c["duration_s"]: c for c in read_cells(outcome.run_dir)}
    assert cells[1.0]["status"] == "ok"
    assert cells[2.0]["status"] == "error" and "signal 11" in cells[2.0]["error"]
    assert cells[3.0]["status"] == "oom" and "cannot allocate 1 TB" in cells[3.0]["error"]
    assert cells[4.0]["status"] == "timeout" and "exceeded 8s" in cells[4.0]["error"]
    assert cells[5.0]["status"] == "oom" and "SIGKILL" in cells[5.0]["error"]
    assert cells[6.0]["status"] == "ok"  # a new worker measured the rest
    assert not outcome.all_ok


HELD = '''
import time
from pathlib import Path
import torch

HOLD = Path({hold!r})


class Held(torch.nn.Module):
    """Stops at 1.5 s of audio while the hold file exists, after saying so: the test's Ctrl-C
    then always lands in the middle of the run, never after it ended."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(320, 8)

    def forward(self, wav):
        if wav.shape[1] == 24000 and HOLD.exists():
            HOLD.with_suffix(".held").touch()
            while HOLD.exists():
                time.sleep(0.05)
        frames = wav.shape[1] // 320
        return self.proj(wav[:, : frames * 320].reshape(wav.shape[0], frames, 320))


def factory():
    return Held()
'''


def wait_for(path: Path, proc: subprocess.Popen, limit_s: float = 300) -> None:
    """Until ``path`` exists; fails with the run's output if the run ends first."""
    deadline = time.monotonic() + limit_s
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate(timeout=30)
            pytest.fail(f"the run ended (exit {proc.returncode}) before {path.name} appeared: {err}")
        time.sleep(0.05)


def test_ctrl_c_keeps_finished_cells_marks_the_run_and_resumes(tmp_path):
    results, hold = tmp_path / "results", tmp_path / "hold"
    model_file = tmp_path / "held.py"
    model_file.write_text(HELD.format(hold=str(hold)))
    hold.touch()
    cmd = [sys.executable, "-m", "runners", "--device", "cpu", "--models", f"python:{model_file}:factory",
           "--runtimes", "pytorch", "--batch-sizes", "1", "--durations", "0.5,1,1.5,2", "--reps", "3",
           "--min-time", "0.05", "--max-time", "0.5", "--energy", "none", "--results", str(results),
           "--no-progress", "--threads", "1", "--no-peak"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # SIGINT ignored as a shell without job control leaves it for a background command
    # (``make test &``): the run must still take Ctrl-C
    proc = subprocess.Popen([*SIGINT_IGNORED, *cmd], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(hold.with_suffix(".held"), proc)  # the worker is inside the third cell and stays there
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"Ctrl-C was lost: the run went on ({proc.communicate()[1]})")
    finally:
        hold.unlink()  # a worker left behind by a failure finishes its cell and ends
    assert proc.returncode == 130, err
    assert "interrupted: finished cells are kept" in err
    (cells_file,) = results.glob("cpu/*/cells.jsonl")
    run = json.loads((cells_file.parent / "run.json").read_text())
    assert run["status"] == "interrupted"
    kept = read_cells(cells_file.parent)
    assert sorted(c["duration_s"] for c in kept) == [0.5, 1.0]
    assert all(c["status"] == "ok" for c in kept)
    # the same command resumes the same run and measures only the missing cells
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "2 of 4 cells already measured" in done.stderr
    final = read_cells(cells_file.parent)
    assert sorted(c["duration_s"] for c in final) == [0.5, 1.0, 1.5, 2.0]
    assert all(c["status"] == "ok" for c in final)
    assert json.loads((cells_file.parent / "run.json").read_text())["status"] == "complete"


def test_energy_fields_flow_from_the_meter_into_the_cells(tmp_path, monkeypatch):
    # no sensor on this machine: the opt-in estimate exercises the same path, labelled as such
    monkeypatch.setenv("CPU_WATTS", "15")
    settings = make_settings(tmp_path, models="logmel", batch_sizes="1", durations="0.5", energy="estimate")
    outcome = run_suite(settings, progress=False, log=lambda m: None, environment={})
    for c in read_cells(outcome.run_dir):
        assert c["status"] == "ok"
        assert c["energy_j"] > 0 and c["energy_gross_j"] >= c["energy_j"]
        assert c["energy_per_audio_s_j"] == pytest.approx(c["energy_j"] / 0.5)
        assert "estimated" in c["energy_source"] and "estimated" in c["energy_domain"]
        assert c["energy_window_s"] >= 2.0 and c["idle_power_w"] is not None


def test_no_sensor_gives_null_energy_with_the_reason(tmp_path):
    settings = make_settings(tmp_path, models="logmel", runtimes="pytorch", batch_sizes="1", durations="0.5",
                             energy="auto")
    outcome = run_suite(settings, progress=False, log=lambda m: None, environment={})
    (cell,) = read_cells(outcome.run_dir)
    assert cell["energy_j"] is None and cell["power_w_mean"] is None
    assert cell["energy_reason"]


def test_a_board_profile_on_other_hardware_says_so_at_the_start_in_run_json_and_the_report(tmp_path):
    args = dict(models="logmel", runtimes="pytorch", batch_sizes="1", durations="0.5", reps=3, threads="1",
                providers=None, energy="none", tiny=True, results_dir=str(tmp_path / "results"), **FAST)
    settings = replace(build_settings(load_profile("rpi"), **args), measure_peak=False)
    messages = []
    env = {"platform": {"kind": "cpu"}, "cpu": {"model": "AMD EPYC 7B13"}}
    outcome = run_suite(settings, progress=False, log=messages.append, environment=env)
    note = json.loads((outcome.run_dir / "run.json").read_text())["hardware_note"]
    assert note.startswith("rpi profile on AMD EPYC 7B13") and note.endswith("— not a Raspberry Pi")
    assert messages[0].startswith(f"note: {note}")
    assert f"**Hardware: {note}.**" in (outcome.run_dir / "report.md").read_text()


def test_a_partial_last_line_is_moved_aside_before_a_resumed_run_appends(tmp_path):
    settings = make_settings(tmp_path, models="logmel", runtimes="pytorch", batch_sizes="1", durations="0.5,1")
    first = run_suite(settings, progress=False, log=lambda m: None, environment={})
    cells_file = first.run_dir / "cells.jsonl"
    lines = cells_file.read_text().splitlines()
    partial = lines[1][: len(lines[1]) // 2]
    cells_file.write_text(lines[0] + "\n" + partial)  # killed while writing the second cell
    run_json = first.run_dir / "run.json"  # a killed run never got to mark itself finished
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), "status": "running"}))
    messages = []
    again = run_suite(settings, progress=False, log=messages.append, environment={})
    assert again.run_dir == first.run_dir
    said = [m for m in messages if "cells.damaged" in m]
    assert len(said) == 1 and "partial last line" in said[0]
    assert any("1 of 2 cells already measured" in m for m in messages)
    # one JSON object per line again, for pandas, jq and every other JSON Lines reader
    records = [json.loads(line) for line in cells_file.read_text().splitlines()]
    assert [r["duration_s"] for r in records] == [0.5, 1.0]
    assert (first.run_dir / "cells.damaged").read_text() == partial + "\n"


def test_a_last_record_missing_only_its_newline_is_kept(tmp_path):
    from runstore.folder import RunFolder

    folder = RunFolder(tmp_path / "run")
    record = {"model": "logmel", "runtime": "pytorch", "batch_size": 1, "duration_s": 1.0, "status": "ok"}
    (folder.path / "cells.jsonl").write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="ended a last record that had no newline"):
        folder.append_cell({**record, "duration_s": 2.0})
    lines = (folder.path / "cells.jsonl").read_text().splitlines()
    assert [json.loads(line)["duration_s"] for line in lines] == [1.0, 2.0]
    assert not (folder.path / "cells.damaged").exists()


def quiet_peak_cache(path: Path, flops_per_s: float, runtimes=("pytorch", "onnxruntime")) -> None:
    """A cached GEMM peak as if measured on a quiet machine with this CPU and these libraries."""
    from runners.gemm_peak import cache_key, cpu_name, library_version, usable_cores

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({cache_key(1, "float32", rt): {
        "flops_per_s": flops_per_s, "device_name": cpu_name(), "usable_cores": usable_cores(),
        "library": library_version(rt), "under_load": False, "measured_at": "2026-11-30T08:00:00+0000",
        "load_average": [0.05, 0.1, 0.1], "others_cpu_share": 0.01} for rt in runtimes}))


def test_macs_flops_and_utilization_end_to_end_with_the_peak_on(tmp_path):
    settings = make_settings(tmp_path, peak=True, models="tera", batch_sizes="2", durations="1")
    quiet_peak_cache(Path(settings.results_dir) / "gemm_peak.json", 5e10)
    outcome = run_suite(settings, progress=False, log=lambda m: None, environment={})
    cells = read_cells(outcome.run_dir)
    assert {c["runtime"] for c in cells} == {"pytorch", "onnxruntime"}
    onnx_file = next(Path(settings.onnx_dir).glob("tera*-tiny.onnx"))
    graph = count_onnx(onnx_file, 2, 16000, "tera")
    for c in cells:
        assert c["status"] == "ok", c["error"]
        assert c["macs"] == graph.macs and c["flops"] == 2 * graph.macs  # the graph's count, this shape
        assert c["achieved_flops_per_s"] == pytest.approx(c["flops"] / c["latency_median_s"])
        assert c["utilization"] == pytest.approx(c["achieved_flops_per_s"] / 5e10)
        peak = c["extra"]["gemm_peak"]
        assert peak["flops_per_s"] == 5e10 and peak["cached"] is True
        assert peak["measured_at"] == "2026-11-30T08:00:00+0000" and peak["under_load"] is False
    # the toy model's count, not the full-size model's
    assert graph.macs == macs_for("tera", None, 2, 16000, tiny=True)["macs"]
    assert graph.macs < macs_for("tera", None, 2, 16000, tiny=False)["macs"] / 10
    report = (outcome.run_dir / "report.md").read_text()
    assert "## GEMM peak" in report and "2026-11-30T08:00:00+0000" in report


def test_tiny_pytorch_only_cells_get_the_tiny_models_macs(tmp_path):
    settings = make_settings(tmp_path, models="tera", runtimes="pytorch", batch_sizes="1", durations="1")
    outcome = run_suite(settings, progress=False, log=lambda m: None, environment={})
    (cell,) = read_cells(outcome.run_dir)
    assert cell["macs"] == macs_for("tera", None, 1, 16000, tiny=True)["macs"]
    assert cell["macs"] != macs_for("tera", None, 1, 16000, tiny=False)["macs"]


WRONG_BATCH = '''
import torch


class WrongBatch(torch.nn.Module):
    """From 1 s of audio on, returns one row whatever the batch: a model bug the benchmark
    must catch (shorter inputs, like the validation probe, are right)."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(320, 8)

    def forward(self, wav):
        frames = wav.shape[1] // 320
        rows = 1 if wav.shape[1] >= 16000 else wav.shape[0]
        return self.proj(wav[:rows, : frames * 320].reshape(rows, frames, 320))


def factory():
    return WrongBatch()
'''


def test_output_shape_is_the_one_measured_and_a_wrong_batch_fails_the_cell(tmp_path):
    model_file = tmp_path / "wrong_batch.py"
    model_file.write_text(WRONG_BATCH)
    settings = make_settings(tmp_path, models=f"python:{model_file}:factory", runtimes="pytorch",
                             batch_sizes="2", durations="0.5,1")
    outcome = run_suite(settings, progress=False, log=lambda m: None, environment={})
    cells = {c["duration_s"]: c for c in read_cells(outcome.run_dir)}
    assert cells[0.5]["status"] == "ok" and cells[0.5]["extra"]["output_shape"] == [2, 25, 8]
    assert cells[1.0]["status"] == "error"
    assert "output shape (1, 50, 8) does not match batch x frames (2, 50)" in cells[1.0]["error"]
