"""N runtimes in one comparison (issue 22): the base runtime (``SPEEDUP_BASE``), its pairing in the
scheduler, the speed-up of every other runtime against it with its CI, and the reports (table,
summary.csv, report.md, ``make compare``) with three and four runtimes.

The two-runtime comparison (PyTorch vs ONNX Runtime) is checked where it always was: the committed
reports (tests/test_speedup_estimate.py) and the tables' own tests.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from types import SimpleNamespace

import pytest
from cell_factory import latency, record

from bench.profiles import load_profile
from bench.schedule import CellProgress, Comparison, add_paired_speedup
from bench.settings import Settings, SettingsError, build_settings
from compare import build_comparison, load_results
from compare.fake import make_cell, write_run
from compare.tables import latency_table
from report.answer import headline_table, verdict_lines
from report.cells import PAIRED, compared_runtimes, pair_cells, speedup_base, speedup_estimate
from report.discussion import all_runtime_verdicts, discussion, runtime_verdicts
from report.run_report import write_report
from report.tables import comparison_table, write_summary_csv
from runners.harness import TimingPolicy
from runners.stopping import MIN_ROUNDS
from runstore.records import DEFAULT_BASE, CellRecord, run_base
from setting_defs import setting

PRINTED = re.compile(r"~?(\d+\.\d+)× \[(\d+\.\d+), (\d+\.\d+)\]")
ORT_CPU = "CPUExecutionProvider"


def cell(model: str, runtime: str, b: int = 1, d: float = 1.0, median: float | None = 0.01,
         status: str = "ok", **fields) -> CellRecord:
    """A record with its median's 95% CI at ±2% (ok cells)."""
    ok = {**latency(median), "latency_samples_s": [median] * 10} if status == "ok" and median else {}
    return record(model, runtime, b, d, status, {**ok, **fields})


def paired(point: float, low: float, high: float, base: str, **fields) -> dict:
    return {"speedup_paired": point, "speedup_ci95_low": low, "speedup_ci95_high": high,
            "speedup_base": base, **fields}


def rows_of(text: str) -> dict[tuple[str, ...], list[str]]:
    """The table's rows by (model, batch, duration), split on two or more spaces."""
    out = {}
    for line in text.splitlines()[2:]:
        parts = re.split(r"\s{2,}", line.strip())
        if len(parts) > 3:
            out[tuple(parts[:3])] = parts
    return out


def header_of(text: str) -> list[str]:
    return re.split(r"\s{2,}", text.splitlines()[0].strip())


# --------------------------------------------------------------------------- the setting


def build(**kw):
    kw = {"models": "logmel", "runtimes": "pytorch,onnxruntime,openvino", "batch_sizes": None, "durations": None,
          "reps": None, "threads": None, "providers": None, "energy": "none", **kw}
    return build_settings(load_profile("cpu"), **kw)


def test_the_base_defaults_to_pytorch_and_may_be_any_runtime_of_the_run():
    assert setting("SPEEDUP_BASE").default == DEFAULT_BASE == "pytorch"
    assert build().speedup_base == "pytorch"
    assert build(speedup_base="onnxruntime").speedup_base == "onnxruntime"
    assert build(speedup_base=" openvino ").speedup_base == "openvino"
    # a run without PyTorch: the first of RUNTIMES, unless given
    assert build(runtimes="onnxruntime,openvino").speedup_base == "onnxruntime"
    assert build(runtimes="onnxruntime,openvino", speedup_base="openvino").speedup_base == "openvino"


@pytest.mark.parametrize("runtimes,base,message", [
    ("pytorch,onnxruntime", "openvino",
     "SPEEDUP_BASE='openvino' is not among the runtimes of this run (RUNTIMES); valid: pytorch, onnxruntime"),
    ("pytorch,onnxruntime,openvino", "tflite",
     "SPEEDUP_BASE='tflite' is not among the runtimes of this run (RUNTIMES); valid: pytorch, onnxruntime, openvino"),
    ("onnxruntime", "pytorch",
     "SPEEDUP_BASE='pytorch' is not among the runtimes of this run (RUNTIMES); valid: onnxruntime"),
])
def test_a_base_outside_the_run_is_one_line_naming_it_and_the_valid_ones(runtimes, base, message):
    with pytest.raises(SettingsError) as info:
        build(runtimes=runtimes, speedup_base=base)
    assert str(info.value) == message


@pytest.mark.parametrize("argv,env", [(["--speedup-base", "openvino"], {}), ([], {"SPEEDUP_BASE": "openvino"})])
def test_the_command_line_refuses_a_bad_base_with_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch,
                                                                             argv, env):
    from bench.cli import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    results = tmp_path / "results"
    code = main(["--device", "cpu", "--models", "logmel", "--runtimes", "pytorch,onnxruntime",
                 "--results", str(results), "--no-progress", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["error: SPEEDUP_BASE='openvino' is not among the runtimes of this run (RUNTIMES); "
                   "valid: pytorch, onnxruntime"]
    assert not results.exists()


def test_the_fleet_and_the_definition_refuse_what_is_no_runtime_at_all():
    from fleet.config import check_settings
    from setting_defs import SettingError

    assert check_settings({"SPEEDUP_BASE": "openvino"}, "here") == {"SPEEDUP_BASE": "openvino"}
    with pytest.raises(SettingError, match="SPEEDUP_BASE='tflite' is not valid; valid: pytorch, onnxruntime, "
                                           "openvino, executorch"):
        setting("SPEEDUP_BASE").value("tflite")


def test_the_base_changes_the_hash_only_where_it_changes_what_is_measured():
    kw = dict(device="cpu", models=("logmel",), runtimes=("pytorch", "onnxruntime", "openvino"),
              batch_sizes=(1,), durations=(1.0,))
    pytorch = Settings(**kw)
    assert pytorch.settings_hash() == Settings(**kw, speedup_base="pytorch").settings_hash()
    assert Settings(**kw, speedup_base="onnxruntime").settings_hash() != pytorch.settings_hash()
    assert Settings(**kw, speedup_base="onnxruntime").settings_hash() != \
        Settings(**kw, speedup_base="openvino").settings_hash()
    # one runtime: nothing to pair, the base changes nothing (an older run of it still resumes)
    alone = dict(kw, runtimes=("onnxruntime",))
    assert Settings(**alone, speedup_base="onnxruntime").settings_hash() == Settings(**alone).settings_hash()
    assert build(speedup_base="onnxruntime").to_dict()["speedup_base"] == "onnxruntime"  # run.json's settings


# --------------------------------------------------------------------------- the scheduler


def side(runtime: str) -> SimpleNamespace:
    return SimpleNamespace(runtime=runtime)


def test_pairs_are_the_base_side_with_every_other_side():
    pt, ort, ov, ort_cuda = side("pytorch"), side("onnxruntime"), side("openvino"), side("onnxruntime")
    live = [pt, ort, ov, ort_cuda]
    progress = {id(s): CellProgress() for s in live}
    by_ort = Comparison([], "interleaved", TimingPolicy(), [0], base="onnxruntime")
    assert by_ort.pairs(live, progress) == [(progress[id(ort)], progress[id(pt)]), (progress[id(ort)], progress[id(ov)]),
                                            (progress[id(ort)], progress[id(ort_cuda)])]
    by_pt = Comparison([], "interleaved", TimingPolicy(), [0])  # the default base
    assert [p[0] for p in by_pt.pairs(live, progress)] == [progress[id(pt)]] * 3
    # the base's side is gone (unsupported, crashed): every side keeps the per-side rule
    assert by_ort.pairs([pt, ov], progress) == []
    assert Comparison([], "grouped", TimingPolicy(), [0], base="onnxruntime").pairs(live, progress) == []


def test_every_other_runtime_gets_its_speed_up_over_the_base_s_rounds():
    base = cell("m", "onnxruntime", round_medians_s=[0.02, 0.022, 0.021, 0.02, 0.02, 0.021])
    pt = cell("m", "pytorch", round_medians_s=[0.04, 0.044, 0.042, 0.04, 0.04, 0.042])
    ov = cell("m", "openvino", round_medians_s=[0.01, 0.011, 0.0105, 0.01, 0.01, 0.0105])
    other_ort = replace(cell("m", "onnxruntime", round_medians_s=[0.01] * 6), provider="CUDAExecutionProvider")
    for record_ in (pt, ov, other_ort):
        add_paired_speedup(base, record_)
    assert (pt.speedup_paired, pt.speedup_ci95_low, pt.speedup_ci95_high) == (0.5, 0.5, 0.5)
    assert (ov.speedup_paired, ov.speedup_ci95_low, ov.speedup_ci95_high) == (2.0, 2.0, 2.0)
    assert pt.speedup_base == ov.speedup_base == "onnxruntime"
    assert pt.extra["speedup_base_provider"] == ORT_CPU
    assert other_ort.speedup_paired is None  # the base runtime under another provider: no speed-up


def test_three_runtimes_interleave_and_pair_with_the_base_on_the_virtual_clock(tmp_path):
    """Real workers (tiny log-mel under PyTorch, ONNX Runtime and OpenVINO) on the virtual clock of
    ``worker/fake_timing.py``: every call costs an exact time, so the paired speed-ups are exact."""
    pytest.importorskip("openvino", reason="openvino is not installed (make setup-runtimes RUNTIMES=openvino)")
    from bench.suite import run_suite
    from runstore.folder import read_cells, read_run_dict

    settings = build_settings(load_profile("cpu"), models="logmel", runtimes="pytorch,onnxruntime,openvino",
                              batch_sizes="1", durations="0.5", reps=None, threads="1", providers=None,
                              energy="none", tiny=True, results_dir=str(tmp_path / "results"),
                              speedup_base="onnxruntime")
    timing = {"call_s": {"pytorch": 0.004, "onnxruntime": 0.002, "openvino": 0.001}, "canary_s": 0.003}
    settings = replace(settings, measure_peak=False, extra={"fake_timing": timing})
    outcome = run_suite(settings, progress=False, log=lambda m: None, environment={})
    cells = {c["runtime"]: c for c in read_cells(outcome.run_dir)}
    assert set(cells) == {"pytorch", "onnxruntime", "openvino"}
    assert all(c["status"] == "ok" for c in cells.values()), cells
    pt, ort, ov = cells["pytorch"], cells["onnxruntime"], cells["openvino"]
    assert {c["speedup_base"] for c in cells.values()} == {"onnxruntime"}
    assert read_run_dict(outcome.run_dir)["settings"]["speedup_base"] == "onnxruntime"
    # the base's own record has no speed-up; the others' are ORT / them, from the paired rounds
    assert (ort["speedup_paired"], ort["speedup_ci95_low"], ort["speedup_ci95_high"]) == (None, None, None)
    assert pt["speedup_paired"] == pytest.approx(0.5) and ov["speedup_paired"] == pytest.approx(2.0)
    for other in (pt, ov):
        assert other["speedup_ci95_low"] <= other["speedup_paired"] <= other["speedup_ci95_high"]
        assert other["extra"]["speedup_base_provider"] == ORT_CPU
    for c in cells.values():  # rounds rotated over the three sides, all paired, settled at the minimum
        assert c["order"] == "interleaved" and c["stop_reason"] == "target"
        assert c["extra"]["stopping"]["rule"] == "paired-speedup"
        assert c["extra"]["stopping"]["speedup_ci_rel_width"] == 0.0
        assert len(c["round_medians_s"]) == MIN_ROUNDS
    assert pt["round_medians_s"] == pytest.approx([0.004] * MIN_ROUNDS)
    assert ov["round_medians_s"] == pytest.approx([0.001] * MIN_ROUNDS)
    # the report of the run: ORT first, a speed-up column for PyTorch and for OpenVINO
    table = (outcome.run_dir / "table.txt").read_text()
    head = header_of(table)
    assert head[3:11] == ["ORT median ms [95% CI]", "PT median ms [95% CI]", "OV median ms [95% CI]",
                          "speed-up ORT/PT", "speed-up ORT/OV", "RTF ORT", "RTF PT", "RTF OV"]
    (row,) = rows_of(table).values()
    assert row[3].startswith("2.00 [") and row[4].startswith("4.00 [") and row[5].startswith("1.00 [")
    assert row[6] == "0.50× [0.50, 0.50]" and row[7] == "2.00× [2.00, 2.00]"
    report = (outcome.run_dir / "report.md").read_text()
    assert "### Does each runtime win everywhere against ONNX Runtime (the base)?" in report
    assert "speed-ups against ONNX Runtime (SPEEDUP_BASE)" in report


# --------------------------------------------------------------------------- the reports: 3 and 4 runtimes


def three_runtimes() -> list[CellRecord]:
    """PyTorch (base), ONNX Runtime and OpenVINO on two inputs, interleaved; OpenVINO refused 2 s."""
    return [
        cell("w2v", "pytorch", median=0.1, speedup_base="pytorch"),
        cell("w2v", "onnxruntime", median=0.05, **paired(2.03, 1.93, 2.08, "pytorch")),
        cell("w2v", "openvino", median=0.04, **paired(2.5, 2.4, 2.6, "pytorch")),
        cell("w2v", "pytorch", d=2.0, median=0.2, speedup_base="pytorch"),
        cell("w2v", "onnxruntime", d=2.0, median=0.19, **paired(1.04, 0.98, 1.1, "pytorch")),
        cell("w2v", "openvino", d=2.0, status="unsupported", error="no", speedup_base="pytorch"),
    ]


def four_runtimes() -> list[CellRecord]:
    """Base ONNX Runtime; PyTorch, OpenVINO, ExecuTorch against it; ExecuTorch absent at batch 2."""
    return [
        cell("tera", "pytorch", median=0.1, **paired(0.5, 0.48, 0.52, "onnxruntime")),
        cell("tera", "onnxruntime", median=0.05, speedup_base="onnxruntime"),
        cell("tera", "openvino", median=0.04, **paired(1.25, 1.2, 1.3, "onnxruntime")),
        cell("tera", "executorch", median=0.2, **paired(0.25, 0.24, 0.26, "onnxruntime")),
        cell("tera", "pytorch", b=2, median=0.16, **paired(0.62, 0.6, 0.65, "onnxruntime")),
        cell("tera", "onnxruntime", b=2, median=0.1, speedup_base="onnxruntime"),
        cell("tera", "openvino", b=2, median=0.1, **paired(1.01, 0.95, 1.06, "onnxruntime")),
    ]


def test_three_runtimes_one_column_each_and_a_speed_up_per_other_runtime():
    text = comparison_table(three_runtimes())
    assert header_of(text) == ["model", "batch", "dur s", "PT median ms [95% CI]", "ORT median ms [95% CI]",
                               "OV median ms [95% CI]", "speed-up PT/ORT", "speed-up PT/OV", "RTF PT", "RTF ORT",
                               "RTF OV"]
    rows = rows_of(text)
    assert rows[("w2v", "1", "1")][3:] == ["100.0 [98.00, 102.0]", "50.00 [49.00, 51.00]", "40.00 [39.20, 40.80]",
                                           "2.03× [1.93, 2.08]", "2.50× [2.40, 2.60]", "0.100", "0.0500", "0.0400"]
    assert rows[("w2v", "1", "2")][3:] == ["200.0 [196.0, 204.0]", "190.0 [186.2, 193.8]", "unsupported",
                                           "~1.04× [0.98, 1.10]", "0.100", "0.0950"]  # blank speed-up, RTF
    assert ("speed-up PT/X = median of the per-round ratios PyTorch / X from interleaved rounds, for each runtime X "
            "against PyTorch, the base (SPEEDUP_BASE; above 1: X faster; PT = PyTorch, ORT = ONNX Runtime, "
            "OV = OpenVINO)") in text


def test_four_runtimes_against_onnx_runtime():
    cells = four_runtimes()
    assert speedup_base(cells) == "onnxruntime" and compared_runtimes(cells) == (
        "onnxruntime", "pytorch", "openvino", "executorch")
    text = comparison_table(cells)
    assert header_of(text)[3:] == ["ORT median ms [95% CI]", "PT median ms [95% CI]", "OV median ms [95% CI]",
                                   "ET median ms [95% CI]", "speed-up ORT/PT", "speed-up ORT/OV", "speed-up ORT/ET",
                                   "RTF ORT", "RTF PT", "RTF OV", "RTF ET"]
    rows = rows_of(text)
    assert rows[("tera", "1", "1")][7:10] == ["0.50× [0.48, 0.52]", "1.25× [1.20, 1.30]", "0.25× [0.24, 0.26]"]
    assert rows[("tera", "2", "1")][3:10] == ["100.0 [98.00, 102.0]", "160.0 [156.8, 163.2]", "100.0 [98.00, 102.0]",
                                              "—", "0.62× [0.60, 0.65]", "~1.01× [0.95, 1.06]", "—"]
    assert "ORT = ONNX Runtime, PT = PyTorch, OV = OpenVINO, ET = ExecuTorch" in text


@pytest.mark.parametrize("cells", [three_runtimes(), four_runtimes()], ids=["3", "4"])
def test_every_printed_n_way_point_lies_inside_its_printed_ci(cells):
    text = comparison_table(cells)
    found = PRINTED.findall(text)
    assert len(found) == (3 if len(compared_runtimes(cells)) == 3 else 5)
    for point, low, high in found:
        assert float(low) <= float(point) <= float(high)
    for row in pair_cells(cells):
        for other in row.others:
            estimate = speedup_estimate(row.base_cell, row.cell(other))
            if estimate is not None and estimate.ci is not None:
                assert estimate.ci[0] <= estimate.value <= estimate.ci[1] and estimate.estimator == PAIRED


def test_a_point_outside_its_ci_or_paired_with_another_base_is_printed_without_a_ci():
    cells = four_runtimes()[:4]
    cells[2] = replace(cells[2], speedup_ci95_low=1.3, speedup_ci95_high=1.4)  # damaged: 1.25 outside
    cells[3] = replace(cells[3], speedup_base="pytorch")  # paired with PyTorch: not ORT / ET
    row = rows_of(comparison_table(cells))[("tera", "1", "1")]
    assert row[7:10] == ["0.50× [0.48, 0.52]", "1.25×", "0.25×"]  # ET: the ratio of medians 0.05 / 0.2
    assert speedup_estimate(cells[1], cells[3]).estimator == "medians"


def test_summary_csv_keeps_every_runtime_with_its_base_and_speed_up(tmp_path):
    path = write_summary_csv(four_runtimes(), tmp_path / "summary.csv")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["runtime"] for r in rows] == ["pytorch", "onnxruntime", "openvino", "executorch",
                                            "pytorch", "onnxruntime", "openvino"]
    assert {r["speedup_base"] for r in rows} == {"onnxruntime"}
    assert [r["speedup_paired"] for r in rows[:4]] == ["0.5", "", "1.25", "0.25"]
    for r in rows:
        if r["speedup_paired"]:
            assert float(r["speedup_ci95_low"]) <= float(r["speedup_paired"]) <= float(r["speedup_ci95_high"])


def test_verdicts_per_runtime_against_the_base():
    cells = three_runtimes()
    ort, ov = all_runtime_verdicts(cells)
    assert (ort.base, ort.other, len(ort.faster), len(ort.same)) == ("pytorch", "onnxruntime", 1, 1)
    assert (ov.base, ov.other, ov.n, len(ov.faster)) == ("pytorch", "openvino", 1, 1)
    assert [v for v, _ in ov.speedups] == [2.5]
    assert runtime_verdicts(cells).other == "onnxruntime"  # the first other runtime, as in a two-runtime run
    lines = verdict_lines(cells)
    assert lines[0] == ("ONNX Runtime against PyTorch: Of 2 cells measured ok under both runtimes, ONNX Runtime was "
                        "significantly faster (the 95% CI of the speed-up from paired rounds excludes 1) in 1, "
                        "significantly slower in 0 and indistinguishable in 1.")
    assert ("OpenVINO against PyTorch: Of 1 cells measured ok under both runtimes, OpenVINO was significantly faster "
            "(the 95% CI of the speed-up from paired rounds excludes 1) in 1, significantly slower in 0 and "
            "indistinguishable in 0.") in lines
    assert "OpenVINO won in every compared cell." in lines
    table = headline_table(cells, fmt="simple")
    assert header_of(table) == ["model", "runtime", "cells", "faster than PT", "slower than PT", "indistinguishable",
                                "speed-up PT/runtime (geo. mean)", "range"]
    body = rows_of(table)
    assert body[("w2v", "ONNX Runtime", "2")][3:] == ["1", "0", "1", "1.45×", "1.04×–2.03×"]
    assert body[("w2v", "OpenVINO", "1")][3:] == ["1", "0", "0", "2.50×", "2.50×–2.50×"]
    text = discussion(cells)
    assert "### Does each runtime win everywhere against PyTorch (the base)?" in text
    assert "- **OpenVINO against PyTorch:**" in text and "  - OpenVINO won in every compared cell." in text


def test_a_third_runtime_under_two_providers_does_not_count_a_pair_twice():
    cells = [cell("m", "pytorch", median=0.1), cell("m", "onnxruntime", median=0.05),
             replace(cell("m", "onnxruntime", median=0.02), provider="CUDAExecutionProvider"),
             cell("m", "openvino", median=0.04)]
    assert len(pair_cells(cells)) == 2  # one row per ONNX Runtime provider
    ov = runtime_verdicts(cells, "openvino")
    assert ov.n == 1 and [v for v, _ in ov.speedups] == pytest.approx([2.5])
    assert [v for v, _ in runtime_verdicts(cells, "onnxruntime").speedups] == pytest.approx([2.0, 5.0])


def test_a_report_with_three_runtimes(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cells = three_runtimes()
    (run_dir / "cells.jsonl").write_text("".join(json.dumps(c.to_dict()) + "\n" for c in cells))
    (run_dir / "run.json").write_text(json.dumps({
        "run_id": "r", "device": "cpu", "status": "complete",
        "settings": {"runtimes": ["pytorch", "onnxruntime", "openvino"], "speedup_base": "pytorch"}}))
    report = write_report(run_dir).read_text()
    assert "**Runtimes:** PyTorch (cpu), ONNX Runtime (CPUExecutionProvider), OpenVINO (CPU)" in report
    assert "speed-ups against PyTorch (SPEEDUP_BASE)" in report
    assert "- OpenVINO against PyTorch: Of 1 cells measured ok under both runtimes" in report
    assert "speed-up PT/ORT |" in report and "speed-up PT/OV |" in report
    assert "Per model and runtime: the verdict's cells against PyTorch (the base, SPEEDUP_BASE)" in report
    table = (run_dir / "table.txt").read_text()
    assert table.startswith(comparison_table(cells)) and "speed-up PT/OV" in table
    with (run_dir / "summary.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 6
    assert (run_dir / "plots" / "latency_vs_duration.png").exists()


def test_old_records_without_the_field_read_as_pytorch_based(tmp_path):
    old = {"run_id": "r", "model": "m", "runtime": "onnxruntime", "provider": ORT_CPU, "batch_size": 1,
           "duration_s": 1.0, "status": "ok", "latency_median_s": 0.05, "speedup_paired": 2.0,
           "speedup_ci95_low": 1.9, "speedup_ci95_high": 2.1}
    record_ = CellRecord.from_dict(old)
    assert record_.speedup_base is None and "speedup_base" not in record_.extra
    pt = CellRecord.from_dict({**old, "runtime": "pytorch", "provider": "cpu", "latency_median_s": 0.1,
                               "speedup_paired": None})
    assert run_base([pt, record_]) == "pytorch" and compared_runtimes([pt, record_]) == ("pytorch", "onnxruntime")
    found = speedup_estimate(pt, record_)
    assert (found.value, found.ci, found.estimator) == (2.0, (1.9, 2.1), PAIRED)


# --------------------------------------------------------------------------- make compare


def test_make_compare_by_runtime_puts_every_runtime_against_the_recorded_base(tmp_path):
    root = tmp_path / "results"
    write_run(root, "cpu", "20260101-000000", [
        make_cell("tera", "pytorch", median_s=0.1, seed=1, speedup_base="onnxruntime"),
        make_cell("tera", "onnxruntime", median_s=0.05, seed=2, speedup_base="onnxruntime"),
        make_cell("tera", "openvino", median_s=0.025, seed=3, provider="CPU", speedup_base="onnxruntime"),
        make_cell("tera", "executorch", median_s=0.05, seed=4, provider="XNNPACK", speedup_base="onnxruntime"),
    ])
    comp = build_comparison(load_results([str(root)]), "runtime", seed=0)
    assert [g.label for g in comp.groups] == ["onnxruntime", "pytorch", "openvino", "executorch"]
    (row,) = comp.rows
    assert [sig.speedup for sig in row.ratios[1:]] == pytest.approx([0.5, 2.0, 1.0], rel=1e-9)
    for sig in row.ratios[1:]:
        assert sig.ci_low <= sig.speedup <= sig.ci_high
    headers = latency_table(comp).headers
    assert [h for h in headers if " vs " in h] == ["pytorch vs onnxruntime", "openvino vs onnxruntime",
                                                  "executorch vs onnxruntime"]
    assert [h for h in headers if "median" in h] == [f"{r} median [IQR] ms" for r in
                                                    ("onnxruntime", "pytorch", "openvino", "executorch")]
    # an explicit --base wins; runs without the field are PyTorch-based, as before
    assert build_comparison(load_results([str(root)]), "runtime", base="pytorch").base.label == "pytorch"
    old = tmp_path / "old"
    write_run(old, "cpu", "20260101-000000", [make_cell("tera", "onnxruntime", median_s=0.05, seed=2),
                                              make_cell("tera", "pytorch", median_s=0.1, seed=1)])
    assert build_comparison(load_results([str(old)]), "runtime").base.label == "pytorch"
