"""The comparison table, summary.csv and the parameter table on synthetic cells."""

from __future__ import annotations

import csv

from cell_factory import latency, record

from report.cells import compare_medians, pair_cells
from report.tables import (
    comparison_table,
    fmt_bytes,
    fmt_count,
    fmt_num,
    params_table,
    summary_columns,
    write_summary_csv,
)
from runstore.records import CellRecord


def cell(model: str, runtime: str, b: int = 1, d: float = 1.0, median: float | None = 0.01,
         rel_ci: float = 0.02, status: str = "ok", **fields) -> CellRecord:
    """A cell record as a runner writes it; the CI is median × (1 ± rel_ci)."""
    ok = ({**latency(median, rel_ci), "latency_iqr_s": median * 0.04, "latency_samples_s": [median] * 10,
           "latency_n": 10, "rtf": median / (b * d)} if status == "ok" and median is not None else {})
    return record(model, runtime, b, d, status, {**ok, **fields})


def _row(text: str, model: str, batch: str, dur: str) -> list[str]:
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")[1:-1]] if "|" in line else line.split()
        if parts[:3] == [model, batch, dur]:
            return parts
    raise AssertionError(f"no row {model} {batch} {dur} in\n{text}")


def test_known_case_medians_ci_and_speedup_are_exact() -> None:
    cells = [cell("w2v", "pytorch", median=0.1, rel_ci=0.05),
             cell("w2v", "onnxruntime", median=0.05, rel_ci=0.04),
             cell("w2v", "pytorch", d=2.0, median=0.21, rel_ci=0.05),
             cell("w2v", "onnxruntime", d=2.0, median=0.2, rel_ci=0.05)]
    text = comparison_table(cells, fmt="github")
    header = text.splitlines()[0]
    assert "PT median ms [95% CI]" in header and "ORT median ms [95% CI]" in header
    row = _row(text, "w2v", "1", "1")
    assert row[3:8] == ["100.0 [95.00, 105.0]", "50.00 [48.00, 52.00]", "2.00×", "0.100", "0.0500"]
    # 0.21 vs 0.20 with ±5% CIs overlap: the speed-up is marked as not significant
    assert _row(text, "w2v", "1", "2")[5] == "~1.05×"
    assert "95% confidence interval of the median" in text


def test_statuses_and_missing_runtime() -> None:
    cells = [cell("a", "pytorch", status="oom", error="out of memory"),
             cell("a", "onnxruntime", median=0.002),
             cell("a", "onnxruntime", b=2, median=0.004),
             cell("b", "pytorch", status="unsupported")]
    text = comparison_table(cells, fmt="github")
    row = _row(text, "a", "1", "1")
    assert row[3] == "oom" and row[4].startswith("2.00 [") and row[5] == ""
    assert _row(text, "a", "2", "1")[3] == "—"  # no PyTorch record for batch 2
    row_b = _row(text, "b", "1", "1")
    assert row_b[3] == "unsupported" and row_b[4] == "—" and row_b[5] == "—"


def test_iqr_named_in_header_when_no_ci() -> None:
    cells = [cell("a", rt, median=0.01, latency_ci95_low_s=None, latency_ci95_high_s=None)
             for rt in ("pytorch", "onnxruntime")]
    text = comparison_table(cells)
    assert "PT median ms (IQR)" in text and "10.00 (IQR 0.400)" in text
    assert "1.00×" in text and "~" not in text.splitlines()[2]


def test_optional_columns_only_when_some_value() -> None:
    plain = comparison_table([cell("a", "pytorch"), cell("a", "onnxruntime")])
    for header in ("MACs", "GFLOP/s", "peak mem", "J/inference"):
        assert header not in plain
    rich = comparison_table([
        cell("a", "pytorch", peak_memory_bytes=361_000_000, macs=4_720_000_000),
        cell("a", "onnxruntime", energy_j=0.25, achieved_flops_per_s=2.5e10)])
    header = rich.splitlines()[0]
    assert "MACs" in header and "peak mem PT" in header and "J/inference ORT" in header
    assert "GFLOP/s ORT" in header
    assert "peak mem ORT" not in header and "J/inference PT" not in header
    assert "GFLOP/s PT" not in header
    assert "4.72 G" in rich and "361 MB" in rich and "0.250" in rich and "25.00" in rich


def test_several_providers_get_a_setup_column() -> None:
    cells = [cell("a", "pytorch", median=0.01),
             cell("a", "onnxruntime", median=0.005, provider="CPUExecutionProvider"),
             cell("a", "onnxruntime", median=0.002, provider="CUDAExecutionProvider")]
    rows = pair_cells(cells)
    assert [r.ort_provider for r in rows] == ["CPUExecutionProvider", "CUDAExecutionProvider"]
    assert all(r.pt is cells[0] or r.pt == cells[0] for r in rows)
    text = comparison_table(cells, fmt="github")
    assert text.splitlines()[0].split("|")[1].strip() == "setup"
    assert "CUDAExecutionProvider" in text and "5.00×" in text and "2.00×" in text


def test_compare_medians_significance() -> None:
    pt = cell("a", "pytorch", median=0.1, rel_ci=0.01)
    assert compare_medians(pt, cell("a", "onnxruntime", median=0.05)) == "faster"
    assert compare_medians(pt, cell("a", "onnxruntime", median=0.2)) == "slower"
    assert compare_medians(pt, cell("a", "onnxruntime", median=0.1)) == "same"
    assert compare_medians(pt, cell("a", "onnxruntime", status="error")) is None


def test_summary_csv_columns_and_rows(tmp_path) -> None:
    cells = [cell("a", "pytorch", extra={"input_shape": "1x16000", "nested": {"x": 1}}),
             cell("a", "onnxruntime", status="timeout", error="took too long")]
    path = write_summary_csv(cells, tmp_path / "summary.csv")
    with path.open() as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        columns = reader.fieldnames
    assert columns == summary_columns(cells)
    assert columns[:3] == ["run_id", "timestamp", "host"]
    assert "latency_samples_s" not in columns and "extra" not in columns and "nested" not in columns
    assert columns[-1] == "input_shape"
    assert len(rows) == 2
    assert rows[0]["latency_median_s"] == "0.01" and rows[0]["input_shape"] == "1x16000"
    assert rows[1]["status"] == "timeout" and rows[1]["latency_median_s"] == ""
    assert rows[1]["error"] == "took too long"


def test_params_table_from_cells_and_manifest() -> None:
    cells = [cell("wav2vec2-base", "pytorch", params_total=94_371_712, params_unique=94_371_712,
                  params_used=94_371_712, model_bytes=361_000_000, onnx_bytes=377_800_000),
             cell("logmel", "pytorch", params_total=0, params_unique=0, params_used=0)]
    text = params_table(cells)
    assert "94.37 M" in text and "361 MB" in text and "378 MB" in text
    assert text.splitlines()[2].split()[0] == "wav2vec2-base"
    manifest = {"models": {"apc": {"params_total": 4_105_296, "onnx_bytes": 16_500_000}}}
    text = params_table([], manifest=manifest)
    assert "apc" in text and "4.11 M" in text and "16.5 MB" in text
    assert "no parameter counts" in params_table([])


def test_formatters() -> None:
    assert [fmt_num(v) for v in (1234.5, 12.345, 0.39, 0.000501, 0, None)] == [
        "1234.5", "12.35", "0.390", "0.000501", "0", ""]
    assert [fmt_count(v) for v in (94_371_712, 1_500, 12, 4.72e9)] == [
        "94.37 M", "1.50 k", "12", "4.72 G"]
    assert [fmt_bytes(v) for v in (361e6, 1.26e9, 512, 16.5e6)] == [
        "361 MB", "1.26 GB", "512 B", "16.5 MB"]
