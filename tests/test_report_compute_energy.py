"""The report's roofline, memory-vs-batch and energy-vs-latency plots, and the energy discussion."""

from __future__ import annotations

from report.discussion import discussion, energy_paragraph
from report.plots import write_plots
from tests.test_plots import PNG, cell, sweep


def test_roofline_and_memory_plots_when_the_cells_carry_them(tmp_path):
    cells = sweep(flops=2e9, achieved_flops_per_s=1.5e11, peak_memory_bytes=5e7,
                  extra={"gemm_peak_flops_per_s": 2.2e11})
    names = sorted(p.name for p in write_plots(cells, tmp_path, dpi=40))
    assert {"roofline.png", "memory_vs_batch.png", "memory_vs_duration.png"} <= set(names)
    assert "energy_vs_latency.png" not in names  # no energy measured: no plot
    assert (tmp_path / "roofline.png").read_bytes()[:8] == PNG


def energy_cells():
    # energy grows with latency (10 W device) and with model size
    out = []
    for model, params, per_s in (("a", 1e6, 0.01), ("b", 5e6, 0.02), ("c", 2e7, 0.05)):
        for d in (1.0, 2.0, 4.0):
            latency = per_s * d
            out.append(cell(model, "onnxruntime", 1, d, latency, energy_j=10 * latency, params_total=params,
                            energy_source="rapl package-0"))
    return out


def test_energy_tracks_latency_and_parameters_from_the_data(tmp_path):
    lines = energy_paragraph(energy_cells())
    assert any("energy per inference and median latency = 1.00 over 9 cells" in l for l in lines)
    assert any("parameter count = 1.00 over 3 models" in l for l in lines)
    assert any("rapl package-0" in l for l in lines)
    assert "energy_vs_latency.png" in {p.name for p in write_plots(energy_cells(), tmp_path, dpi=40)}


def test_unmeasured_energy_says_why_once():
    cells = [cell("a", "pytorch", energy_reason="no energy sensor found"),
             cell("b", "pytorch", energy_reason="no energy sensor found")]
    assert energy_paragraph(cells) == ["Energy was not measured in this run: no energy sensor found"]
    assert "### Does energy track latency, and parameter count?" in discussion(cells)
