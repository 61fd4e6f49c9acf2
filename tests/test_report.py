"""Reading a run folder back (latest record wins, a killed writer's last line) and the report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cell_factory import latency, record

from report.run_report import load_cells, main, write_report


def cell(model: str, runtime: str = "pytorch", b: int = 1, d: float = 1.0, median: float = 0.01,
         status: str = "ok", **fields) -> dict:
    """A cell record as a line of ``cells.jsonl`` holds it."""
    ok = {**latency(median), "latency_samples_s": [median] * 10} if status == "ok" else {}
    return record(model, runtime, b, d, status, {**ok, **fields}).to_dict()


def write_run(run_dir: Path, cells: list[dict], status: str = "complete", tail: str = "",
              **run) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {"run_id": "r", "device": "cpu", "device_name": "test cpu", "host": "h",
            "settings": {"reps": 10, "batch_sizes": [1, 2], "durations": [1, 2]},
            "environment": {"cpu": {"model": "Test CPU", "logical_cores": 2},
                            "memory": {"total_bytes": 8_000_000_000},
                            "gpu": {"present": False, "reason": "none"},
                            "software": {"packages": {"onnxruntime": "1.0"}}},
            "status": status, "wavebench_version": "0.1.0", "started": "2026-01-01T00:00:00",
            "finished": None} | run
    (run_dir / "run.json").write_text(json.dumps(meta))
    (run_dir / "cells.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cells) + tail)
    return run_dir


def test_latest_record_wins_and_truncated_last_line_is_skipped(tmp_path) -> None:
    cells = [cell("a", median=0.010), cell("b", median=0.5), cell("a", median=0.020)]
    write_run(tmp_path, cells, tail='{"run_id": "r", "model": "c", "runt')
    loaded = load_cells(tmp_path)
    assert [(c.model, c.latency_median_s) for c in loaded] == [("a", 0.020), ("b", 0.5)]


def test_record_appended_to_a_truncated_line_is_recovered(tmp_path) -> None:
    text = json.dumps(cell("a")) + "\n" + '{"run_id": "r", "mo' + json.dumps(cell("b")) + "\n"
    (tmp_path / "cells.jsonl").write_text(text)
    assert [c.model for c in load_cells(tmp_path)] == ["a", "b"]


def test_garbage_in_the_middle_warns(tmp_path) -> None:
    (tmp_path / "cells.jsonl").write_text(
        json.dumps(cell("a")) + "\nnot json\n" + json.dumps(cell("b")) + "\n")
    with pytest.warns(UserWarning, match="unreadable record"):
        assert [c.model for c in load_cells(tmp_path)] == ["a", "b"]
    assert load_cells(tmp_path / "nowhere") == []


def test_report_of_an_interrupted_run(tmp_path) -> None:
    cells = [cell(m, rt, 1, d, median=base * d * (0.8 if rt == "onnxruntime" else 1.0))
             for m, base in (("small", 0.001), ("mid", 0.01), ("big", 0.1))
             for rt in ("pytorch", "onnxruntime") for d in (1.0, 2.0)]
    cells.append(cell("big", "pytorch", 2, 1.0, status="oom", error="out of memory | 2 GB\nmore"))
    cells.append(cell("big", "onnxruntime", 2, 1.0, status="interrupted"))
    models = {m: {"params_total": n, "onnx_bytes": n * 4} for m, n in
              (("small", 1_000), ("mid", 2_000_000), ("big", 94_370_000))}
    run_dir = write_run(tmp_path / "run", cells, status="interrupted", models=models)
    path = write_report(run_dir)
    assert path == run_dir / "report.md"
    report = path.read_text()
    assert "**Status: INTERRUPTED.**" in report
    assert "Cells: 14 (12 ok, 1 oom, 1 interrupted)." in report
    assert "| cpu.model" in report and "Test CPU" in report and "8.00 GB" in report
    assert "| gpu " in report and "not present" in report
    assert "| reps" in report
    assert "94.37 M" in report and "377 MB" in report  # from run.json's models
    assert "![latency vs duration](plots/latency_vs_duration.png)" in report
    assert "total parameters = 1.00 over 3 models" in report
    assert "out of memory \\| 2 GB" in report and "more" not in report.split("## Failed")[1]
    assert (run_dir / "plots" / "latency_vs_duration.png").exists()
    table = (run_dir / "table.txt").read_text()
    assert "1.25×" in table and "oom" in table and "interrupted" in table
    with (run_dir / "summary.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 14 and rows[-2]["error"] == "out of memory | 2 GB\nmore"


def test_report_of_a_run_with_no_ok_cells(tmp_path) -> None:
    cells = [cell("a", "pytorch", status="error", error="ValueError: boom"),
             cell("a", "onnxruntime", status="unsupported", error="input shorter than 400 ms"),
             cell("b", "pytorch", status="timeout")]
    report = write_report(write_run(tmp_path, cells)).read_text()
    assert "**Status: complete.**" in report and "Cells: 3 (" in report
    assert "No plots" in report and "nothing to discuss" in report
    assert "ValueError: boom" in report and "input shorter than 400 ms" in report
    assert not list((tmp_path / "plots").glob("*.png")) if (tmp_path / "plots").exists() else True
    assert "unsupported" in (tmp_path / "table.txt").read_text()


def test_report_of_a_run_with_one_runtime(tmp_path) -> None:
    cells = [cell(m, "onnxruntime", 1, d, median=base * d)
             for m, base in (("a", 0.001), ("b", 0.01), ("c", 0.1)) for d in (1.0, 2.0, 4.0)]
    report = write_report(write_run(tmp_path, cells, status="running")).read_text()
    assert "RUNNING" in report
    assert "cannot be compared in this run" in report
    assert "—" in (tmp_path / "table.txt").read_text()


def test_cells_without_run_json_and_bad_folders(tmp_path, capsys) -> None:
    (tmp_path / "cells.jsonl").write_text(json.dumps(cell("a")) + "\n")
    assert main([str(tmp_path)]) == 0
    assert "# wavebench run" in (tmp_path / "report.md").read_text()
    assert main([str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty)]) == 2


def test_report_without_matplotlib_still_writes_the_tables(tmp_path, monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_plots(name, *args, **kwargs):
        if name == "report.plots":
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_plots)
    cells = [cell("a", "pytorch", 1, d) for d in (1.0, 2.0)]
    report = write_report(write_run(tmp_path, cells)).read_text()
    assert "No plots: matplotlib could not be imported" in report
    assert (tmp_path / "table.txt").exists() and (tmp_path / "summary.csv").exists()


def test_figures_ok_cells_lack_are_listed_with_failures_and_their_reasons(tmp_path) -> None:
    cells = [cell("tera", "onnxruntime", extra={"fidelity_error": "fidelity probe failed: shapes (1, 5) vs (1, 6)"}),
             cell("tera", "onnxruntime", d=2.0, extra={"fidelity_error": "fidelity probe failed: shapes (1, 5) vs (1, 6)"}),
             cell("mine", extra={"macs_reason": "no MAC count for this model (no ONNX graph and no formula)",
                                 "gemm_peak_reason": "GEMM peak not measured: RuntimeError: boom"}),
             cell("apc", status="oom", error="out of memory")]
    report = write_report(write_run(tmp_path / "run", cells)).read_text()
    failed = report.split("## Failed and unsupported cells")[1]
    assert "out of memory" in failed and "Figures not computed for cells measured ok" in failed
    rows = [line for line in failed.splitlines() if line.startswith("| tera") or line.startswith("| mine")]
    assert any("fidelity" in r and "| 2 " in r and "shapes (1, 5) vs (1, 6)" in r for r in rows)  # grouped
    assert any("MACs / utilisation" in r and "no MAC count" in r for r in rows)
    assert any("GEMM peak / utilisation" in r and "RuntimeError: boom" in r for r in rows)


def test_the_report_opens_with_its_answer_and_ends_with_its_appendix(tmp_path) -> None:
    """What was compared and the verdict (with the test used) come before any table of the machine,
    the environment or the settings; those follow the discussion, under the appendix heading."""
    cells = [cell(m, rt, 1, d, median=base * d * (0.5 if rt == "onnxruntime" else 1.0),
                  latency_ci95_low_s=base * d * (0.49 if rt == "onnxruntime" else 0.98),
                  latency_ci95_high_s=base * d * (0.51 if rt == "onnxruntime" else 1.02))
             for m, base in (("small", 0.001), ("big", 0.1)) for rt in ("pytorch", "onnxruntime") for d in (1.0, 2.0)]
    wall = {"predicted_s": 70.0, "actual_s": 80.0, "export": {"actual_s": 10.0},
            "measure": {"cells": 8, "predicted_s": 60.0, "low_s": 40.0, "high_s": 60.0, "actual_s": 66.0}}
    run_dir = write_run(tmp_path / "run", cells, sessions=[{"status": "complete", "wall_time": wall}],
                        settings={"reps": 10, "batch_sizes": [1], "durations": [1, 2], "threads": [2],
                                  "min_time_s": 1.0, "max_time_s": 8.0, "ci_target": 0.05, "order": "interleaved"})
    report = write_report(run_dir).read_text()
    first_heading = report.index("\n## ")
    assert report[first_heading:].startswith("\n## The answer")
    answer = report[first_heading:report.index("\n## Runtime comparison")]
    assert "**Models:** small, big" in answer and "**Runtimes:** PyTorch (cpu) and ONNX Runtime" in answer
    assert "**Machine:** test cpu, profile cpu" in answer
    assert "**Settings:** batch 1 × duration 1, 2 s" in answer and "threads 2" in answer
    verdict = "Of 4 cells measured ok under both runtimes, ONNX Runtime was significantly faster ("
    assert verdict in answer and "geometric mean 2.00×" in answer
    assert "| small " in answer and "| big " in answer  # the per-model headline
    appendix = report.index("## Appendix: machine, environment and settings")
    for table in ("### Machine fingerprint", "### Environment", "| cpu.model", "### Settings", "| reps",
                  "### Parameters", "### Wall time", "| run_id"):
        assert report.index(verdict) < appendix < report.index(table), table
    assert report.index("## Discussion") < report.index("## Failed and unsupported cells") < appendix
    assert "[Appendix](#appendix-machine-environment-and-settings)" in report.split("## The answer")[0]
    wall_rows = report.split("### Wall time")[1].split("###")[0]
    assert "| 1:00 [0:40, 1:00]" in wall_rows and "| 1:06 " in wall_rows and "| 1.10 " in wall_rows


def test_a_run_without_a_prediction_says_so(tmp_path) -> None:
    report = write_report(write_run(tmp_path, [cell("a")])).read_text()
    assert "No prediction recorded" in report.split("### Wall time")[1]
