"""Plots are written as PNG files when there is something to draw, and skipped when not."""

from __future__ import annotations

from cell_factory import latency, record

from report.plots import write_plots
from runstore.records import CellRecord

PNG = b"\x89PNG\r\n\x1a\n"


def cell(model: str, runtime: str, b: int = 1, d: float = 1.0, median: float = 0.01,
         status: str = "ok", **fields) -> CellRecord:
    return record(model, runtime, b, d, status, {**(latency(median) if status == "ok" else {}), **fields})


def sweep(**fields) -> list[CellRecord]:
    out = []
    for model, per_s in (("small", 0.001), ("big", 0.05)):
        for runtime in ("pytorch", "onnxruntime"):
            out += [cell(model, runtime, 1, d, per_s * d, **fields) for d in (1.0, 2.0, 4.0)]
            out += [cell(model, runtime, b, 1.0, per_s * b, **fields) for b in (2, 4)]
    return out


def test_default_sweep_writes_the_three_latency_plots(tmp_path) -> None:
    written = write_plots(sweep(), tmp_path / "plots", title="test cpu", dpi=40)
    assert sorted(p.name for p in written) == [
        "latency_vs_batch.png", "latency_vs_duration.png", "rtf_vs_duration.png"]
    for path in written:
        assert path.read_bytes()[:8] == PNG


def test_memory_and_energy_plots_when_measured(tmp_path) -> None:
    written = write_plots(sweep(peak_memory_bytes=200_000_000, energy_j=0.3), tmp_path, dpi=40)
    names = {p.name for p in written}
    assert {"memory_vs_duration.png", "energy_vs_duration.png", "energy_vs_batch.png"} <= names


def test_too_few_points_skips_the_plot_and_removes_a_stale_one(tmp_path) -> None:
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "latency_vs_batch.png").write_bytes(b"stale")
    cells = [cell("a", "pytorch"), cell("a", "onnxruntime"), cell("b", "pytorch", d=2.0)]
    assert write_plots(cells, plots) == []
    assert not (plots / "latency_vs_batch.png").exists()


def test_one_axis_only_and_failed_cells(tmp_path) -> None:
    cells = [cell("a", "pytorch", 1, d) for d in (1.0, 2.0)] + [
        cell("a", "pytorch", 2, 1.0, status="oom"), cell("a", "onnxruntime", status="error")]
    written = write_plots(cells, tmp_path, dpi=40)
    assert sorted(p.name for p in written) == ["latency_vs_duration.png", "rtf_vs_duration.png"]
    assert write_plots([cell("a", "pytorch", status="error")], tmp_path / "none") == []
