"""Resume only what is comparable: same settings, host, software and hardware; never a finished run.

The suite runs for real (one or two tiny cells); the environment is given to it, so a "torch
upgrade" is an environment whose torch version differs.  An interrupted run is the state a
Ctrl-C leaves on disk (``status: interrupted``, fewer cells than planned; the Ctrl-C itself is
tested in test_suite.py).
"""

import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from bench.profiles import load_profile
from bench.settings import build_settings
from bench.suite import run_suite
from report.run_report import fingerprint_section
from runstore.folder import read_cells, resume_decision
from runstore.identity import differences, fingerprint_hash, identity


def environment(torch="2.12.0", flags=("sse4_2", "avx", "f16c", "fma", "avx2"), model_number=1):
    return {
        "software": {"wavebench": "0.1.0", "wavebench_git_commit": "0123456789abcdef", "python": "3.11.2",
                     "packages": {"torch": torch, "onnxruntime": "1.22.0", "onnx": "1.18.0", "numpy": "2.2.6",
                                  "transformers": "4.52.0", "s3prl": "0.4.17"},
                     "onnxruntime_providers": ["CPUExecutionProvider"]},
        "cpu": {"model": "AMD EPYC", "vendor": "AuthenticAMD", "family": 25, "model_number": model_number,
                "stepping": 1, "kernel_flags": list(flags), "logical_cores": 2,
                "caches": {"L1d": 32768, "L2": 524288}},
    }


def settings_for(tmp_path, durations="0.5,1"):
    s = build_settings(load_profile("cpu"), models="logmel", runtimes="pytorch", batch_sizes="1",
                       durations=durations, reps=3, threads="1", providers=None, energy="none", tiny=True,
                       results_dir=str(tmp_path / "results"), min_time_s=0.02, max_time_s=0.2)
    return replace(s, measure_peak=False)


def run(settings, env, **kw):
    messages: list[str] = []
    outcome = run_suite(settings, progress=False, log=messages.append, environment=env, **kw)
    return outcome, messages


def interrupt(run_dir: Path, keep: int = 1) -> None:
    """Leave the run as a Ctrl-C after ``keep`` cells does: run.json interrupted, later cells absent."""
    data = json.loads((run_dir / "run.json").read_text())
    data["status"] = "interrupted"
    data["sessions"][-1]["status"] = "interrupted"
    (run_dir / "run.json").write_text(json.dumps(data))
    lines = (run_dir / "cells.jsonl").read_text().splitlines()
    (run_dir / "cells.jsonl").write_text("\n".join(lines[:keep]) + "\n")


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run measured with torch 2.12.0 and interrupted after its first of two cells."""
    tmp = tmp_path_factory.mktemp("resume")
    settings = settings_for(tmp)
    first, _ = run(settings, environment("2.12.0"))
    interrupt(first.run_dir)
    return tmp, settings, first.run_dir


def copy_run(src: Path, dst_root: Path) -> Path:
    dst = dst_root / "results" / "cpu" / src.name
    dst.mkdir(parents=True)
    for name in ("run.json", "cells.jsonl"):
        (dst / name).write_text((src / name).read_text())
    return dst


def test_a_torch_upgrade_starts_a_new_run_and_says_why_in_one_line(interrupted, tmp_path):
    _, settings, old = interrupted
    old = copy_run(old, tmp_path)
    settings = replace(settings, results_dir=str(tmp_path / "results"))
    outcome, messages = run(settings, environment("2.13.0"))
    assert outcome.run_dir != old and outcome.counts == {"ok": 2}
    assert messages[0] == f"new run {outcome.run_dir}: {old} was not resumed: torch 2.12.0 → 2.13.0"
    assert len(read_cells(old)) == 1  # the old run is left as it was
    assert json.loads((old / "run.json").read_text())["status"] == "interrupted"


def test_the_same_versions_resume_and_run_json_keeps_both_sessions(interrupted, tmp_path):
    _, settings, old = interrupted
    old = copy_run(old, tmp_path)
    settings = replace(settings, results_dir=str(tmp_path / "results"))
    outcome, messages = run(settings, environment("2.12.0"))
    assert outcome.run_dir == old and outcome.counts == {"ok": 2}
    assert messages[0].startswith(f"resuming {old}: 1 of 2 cells already measured")
    data = json.loads((old / "run.json").read_text())
    assert [s["status"] for s in data["sessions"]] == ["interrupted", "complete"]
    assert [s["environment"]["software"]["packages"]["torch"] for s in data["sessions"]] == ["2.12.0", "2.12.0"]
    assert data["sessions"][0]["started"] <= data["sessions"][1]["started"]
    assert data["sessions"][0]["fingerprint"] == data["sessions"][1]["fingerprint"] == data["fingerprint"]
    assert data["environment"] == data["sessions"][0]["environment"]
    # the report shows the fingerprint and both sessions
    report = (old / "report.md").read_text().split("## Machine fingerprint")[1].split("## Environment")[0]
    report = " ".join(report.split())  # table padding aside
    assert f"| fingerprint | {data['fingerprint']} |" in report
    assert "AuthenticAMD family 25 model 1 stepping 1, 2 logical cores, flags sse4_2,avx,f16c,fma,avx2" in report
    assert "torch 2.12.0" in report and "not measured (NO_PEAK=1)" in report
    assert report.count(f"| {data['fingerprint']} |") == 3  # the fingerprint row and two sessions


def test_the_report_shows_the_gemm_rates_of_the_fingerprint():
    ident = identity("vm", environment())
    fp = fingerprint_hash(ident)
    run_json = {"fingerprint": fp, "fingerprints": {fp: ident}, "sessions": [
        {"started": "a", "status": "interrupted", "fingerprint": fp, "gemm_flops_per_s": {"onnxruntime|2": 217e9}},
        {"started": "b", "status": "complete", "fingerprint": fp,
         "gemm_flops_per_s": {"onnxruntime|2": 219e9, "pytorch|2": 202e9}}]}
    text = fingerprint_section(run_json)
    assert "onnxruntime 2 thread(s) 219.0, pytorch 2 thread(s) 202.0 GFLOP/s" in text
    assert fingerprint_section({"environment": {}}).startswith("No fingerprint recorded")


def test_every_cell_carries_the_fingerprint_it_was_measured_with(interrupted):
    _, _, run_dir = interrupted
    data = json.loads((run_dir / "run.json").read_text())
    (cell,) = read_cells(run_dir)
    fp = cell["fingerprint"]
    assert fp == fingerprint_hash(identity(socket.gethostname(), environment("2.12.0")))
    assert data["fingerprints"][fp]["software"]["torch"] == "2.12.0"
    assert data["fingerprints"][fp]["hardware"]["kernel_flags"][-1] == "avx2"
    assert data["fingerprints"][fp]["host"] == socket.gethostname()


def test_a_complete_run_is_measured_again_in_a_new_run_and_says_so_first(tmp_path):
    settings = settings_for(tmp_path, durations="0.5")
    first, _ = run(settings, environment())
    again, messages = run(settings, environment())
    assert again.run_dir != first.run_dir and again.counts == {"ok": 1}
    assert messages[0].startswith(f"new run {again.run_dir}: {first.run_dir} is complete (finished 20")
    assert f"make report RUN={first.run_dir} re-writes its report without measuring" in messages[0]
    fresh, messages = run(settings, environment(), fresh=True)
    # FRESH=1 says nothing of the runs it did not resume; it prints only its predicted time
    assert fresh.run_dir not in (first.run_dir, again.run_dir)
    assert [m for m in messages if not m.startswith("predicted: ")] == []


def write_run(folder: Path, status="interrupted", fp_identity=None, settings_hash="s1") -> None:
    folder.mkdir(parents=True)
    data = {"schema_version": 1, "settings_hash": settings_hash, "status": status,
            "finished": "2026-11-29T10:00:00+0000"}
    if fp_identity is not None:
        fp = fingerprint_hash(fp_identity)
        data.update(fingerprint=fp, fingerprints={fp: fp_identity})
    (folder / "run.json").write_text(json.dumps(data))


@pytest.mark.parametrize("old, new, reason", [
    (identity("pi-a", environment()), identity("pi-b", environment()), "host pi-a → pi-b"),
    (identity("vm", environment(flags=("avx2", "avx512f", "avx512bw"), model_number=17)),
     identity("vm", environment(flags=("avx2",), model_number=1)),
     "CPU model 17 → 1; CPU flags: avx512f, avx512bw gone"),
    (identity("vm", environment()), identity("vm", {**environment(), "software": {
        **environment()["software"], "wavebench_git_commit": "fedcba9876543210"}}),
     "wavebench commit 0123456789ab → fedcba987654"),
])
def test_a_different_host_hardware_or_commit_is_not_resumed(tmp_path, old, new, reason):
    write_run(tmp_path / "20261129-100000-s1", fp_identity=old)
    path, why = resume_decision(tmp_path, "s1", fingerprint_hash(new), new)
    assert path is None and why.endswith(f"was not resumed: {reason}")
    assert differences(old, new) == reason.split("; ")


def test_resume_decision_resumes_only_an_unfinished_run_of_the_same_identity(tmp_path):
    same = identity("vm", environment())
    write_run(tmp_path / "20261129-100000-s1", fp_identity=same)
    write_run(tmp_path / "20261129-090000-s2", fp_identity=same, settings_hash="s2")
    assert resume_decision(tmp_path, "s1", fingerprint_hash(same), same) == (tmp_path / "20261129-100000-s1", None)
    assert resume_decision(tmp_path, "s3", fingerprint_hash(same), same) == (None, None)
    write_run(tmp_path / "20261130-100000-s1", fp_identity=None)  # an older wavebench's run, newer
    path, why = resume_decision(tmp_path, "s1", fingerprint_hash(same), same)
    assert path is None and "predates run fingerprints" in why


def test_the_commit_is_read_in_a_plain_checkout_and_in_a_worktree(tmp_path):
    """The software fingerprint names wavebench's commit, also when run from a git worktree."""
    import subprocess

    from host.environment import _git_commit

    def git(*args, cwd=tmp_path / "repo"):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                              capture_output=True, text=True).stdout.strip()

    (tmp_path / "repo").mkdir()
    git("init", "-q", "-b", "main")
    (tmp_path / "repo" / "f").write_text("x")
    git("add", "f")
    git("commit", "-qm", "one")
    git("worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"))
    (tmp_path / "wt" / "f").write_text("y")
    git("commit", "-qam", "two", cwd=tmp_path / "wt")
    git("pack-refs", "--all")  # branches now only in packed-refs of the common folder
    assert _git_commit(tmp_path / "repo") == git("rev-parse", "main")
    assert _git_commit(tmp_path / "wt") == git("rev-parse", "side") != git("rev-parse", "main")


def test_two_new_runs_in_one_second_get_two_folders(tmp_path, monkeypatch):
    import bench.suite as suite
    import runstore.folder

    monkeypatch.setattr(runstore.folder, "new_run_id", lambda settings_hash: "20261201-120000-" + settings_hash)
    settings = settings_for(tmp_path)
    ident = identity("vm", environment())
    first = suite.open_run_folder(settings, True, fingerprint_hash(ident), ident)
    first.folder.release()  # held, it would refuse the second run (tests/test_run_lock.py)
    second = suite.open_run_folder(settings, True, fingerprint_hash(ident), ident)
    second.folder.release()
    assert not first.resumed and second.folder.path.name == first.folder.path.name + "-2"
