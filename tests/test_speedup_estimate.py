"""A printed speed-up is the estimate whose CI is printed beside it (issue 21).

The table once printed the ratio of the two medians beside the CI of the paired per-round ratio,
so a point could fall outside its own interval (docs/bench-report: apc batch 8 ``2.09× [1.93,
2.08]``, tera 2 s ``1.55× [1.41, 1.54]``).  Checked here on every committed run and on synthetic
records: the table, table.txt's legend, summary.csv, the discussion's sentence and ``make
compare``'s ratios.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from cell_factory import latency, record

from bench.schedule import paired_speedup
from compare import build_comparison, load_results
from compare.stats import compare_samples
from compare.tables import fmt_ci, fmt_ratio
from report.cells import MEDIANS, PAIRED, pair_cells, speedup_estimate
from report.discussion import runtime_paragraph, runtime_verdicts
from report.tables import comparison_table
from runstore.folder import read_records
from runstore.records import CellRecord

ROOT = Path(__file__).resolve().parent.parent
RUNS = ["docs/bench-report", "docs/variants-report", "docs/examples/compare/results/cpu/20261129-073942-92c06b930d",
        "docs/examples/compare/results/cpu/20261129-074036-44b6963e57"]
PRINTED = re.compile(r"~?(\d+\.\d+)× \[(\d+\.\d+), (\d+\.\d+)\]")


def _printed_points_and_cis(text: str) -> list[tuple[float, float, float]]:
    return [(float(p), float(lo), float(hi)) for p, lo, hi in PRINTED.findall(text)]


@pytest.mark.parametrize("run", RUNS)
def test_every_printed_point_lies_inside_its_printed_ci(run):
    cells = read_records(ROOT / run)
    text = comparison_table(cells)
    for point, low, high in _printed_points_and_cis(text):
        assert low <= point <= high, (run, point, low, high)
    for row in pair_cells(cells):
        found = speedup_estimate(row.pt, row.ort)
        if found is not None and found.ci is not None:
            assert found.ci[0] <= found.value <= found.ci[1]
            assert found.estimator == PAIRED


def test_the_two_known_offenders_print_the_paired_median():
    cells = read_records(ROOT / "docs/bench-report")
    text = comparison_table(cells)
    lines = {tuple(line.split()[:3]): line for line in text.splitlines()}
    # the ratio of the medians (2.09, 1.55) lay outside these intervals; the paired medians do not
    assert "2.03× [1.93, 2.08]" in lines[("apc", "8", "1")]
    assert "1.45× [1.41, 1.54]" in lines[("tera", "1", "2")]
    assert len(_printed_points_and_cis(text)) == 48
    assert "speed-up = median of the per-round ratios PyTorch / ONNX Runtime from interleaved rounds" in text


def test_the_committed_table_txt_is_what_the_report_prints():
    for run in ("docs/bench-report", "docs/variants-report"):
        committed = (ROOT / run / "table.txt").read_text()
        assert comparison_table(read_records(ROOT / run)) in committed
        for point, low, high in _printed_points_and_cis(committed):
            assert low <= point <= high


@pytest.mark.parametrize("run", ["docs/bench-report"])
def test_summary_csv_point_and_ci_belong_together(run):
    with open(ROOT / run / "summary.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["speedup_ci95_low"]]
    assert len(rows) == 48
    for r in rows:
        assert float(r["speedup_ci95_low"]) <= float(r["speedup_paired"]) <= float(r["speedup_ci95_high"])


def test_the_discussion_sentence_uses_the_printed_estimate():
    cells = read_records(ROOT / "docs/bench-report")
    verdicts = runtime_verdicts(cells)
    text = " ".join(runtime_paragraph(verdicts))
    values = [v for v, _ in verdicts.speedups]
    table = {tuple(line.split()[:3]): line for line in comparison_table(cells).splitlines()}
    assert f"from {min(values):.2f}× (logmel, batch 4, 1 s)" in text and f"to {max(values):.2f}×" in text
    assert f"{min(values):.2f}×" in table[("logmel", "4", "1")]
    assert f"{max(values):.2f}×" in table[("apc", "2", "1")]
    assert "median of the per-round ratios PyTorch / ONNX Runtime" in text
    assert set(verdicts.estimators) == {PAIRED}


# --------------------------------------------------------------------------- synthetic records


def _pair(pt_median: float, ort_median: float, **ort_fields) -> list[CellRecord]:
    return [record("m", "pytorch", 1, 1.0, "ok", latency(pt_median)),
            record("m", "onnxruntime", 1, 1.0, "ok", {**latency(ort_median), **ort_fields})]


def _estimate(cells):
    (row,) = pair_cells(cells)
    return speedup_estimate(row.pt, row.ort)


def test_paired_record_prints_its_paired_median_and_ci():
    cells = _pair(0.209, 0.1, speedup_paired=2.03, speedup_ci95_low=1.93, speedup_ci95_high=2.08)
    found = _estimate(cells)
    assert (found.value, found.ci, found.estimator) == (2.03, (1.93, 2.08), PAIRED)
    text = comparison_table(cells)
    assert "2.03× [1.93, 2.08]" in text and "2.09×" not in text


def test_grouped_record_prints_the_ratio_of_medians_without_a_ci():
    cells = _pair(0.2, 0.1)
    found = _estimate(cells)
    assert (found.value, found.ci, found.estimator) == (2.0, None, MEDIANS)
    text = comparison_table(cells)
    assert "2.00×" in text and not _printed_points_and_cis(text)
    assert "speed-up = PyTorch median / ONNX Runtime median" in text


def test_a_ci_without_its_point_or_outside_it_is_not_printed():
    # a CI with no paired point: the ratio of medians is printed, alone (the CI is not its CI)
    found = _estimate(_pair(0.2, 0.1, speedup_ci95_low=2.1, speedup_ci95_high=2.3))
    assert (found.value, found.ci, found.estimator) == (2.0, None, MEDIANS)
    # a damaged record whose point is outside its CI: the point, without the CI
    found = _estimate(_pair(0.2, 0.1, speedup_paired=2.5, speedup_ci95_low=1.9, speedup_ci95_high=2.1))
    assert (found.value, found.ci) == (2.5, None)
    assert not _printed_points_and_cis(comparison_table(
        _pair(0.2, 0.1, speedup_paired=2.5, speedup_ci95_low=1.9, speedup_ci95_high=2.1)))


def test_a_table_with_both_estimators_says_which_is_where():
    cells = _pair(0.2, 0.1, speedup_paired=2.1, speedup_ci95_low=1.9, speedup_ci95_high=2.2)
    cells += [record("m", "pytorch", 2, 1.0, "ok", latency(0.4)),
              record("m", "onnxruntime", 2, 1.0, "ok", latency(0.1))]
    text = comparison_table(cells)
    assert "2.10× [1.90, 2.20]" in text and "4.00×" in text
    assert ("speed-up = median of the per-round ratios PyTorch / ONNX Runtime from interleaved rounds where "
            "the cell has them, else PyTorch median / ONNX Runtime median") in text


@pytest.mark.parametrize("seed", range(20))
def test_the_scheduler_s_paired_point_lies_in_its_ci(seed):
    """What bench/schedule records: the median of the per-round ratios and its CI, same rounds."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    drift = np.exp(np.cumsum(rng.normal(0, 0.1, n)))
    pt = list(0.2 * drift * np.exp(rng.normal(0, 0.05, n)))
    ort = list(0.1 * drift * np.exp(rng.normal(0, 0.05, n)))
    point, low, high = paired_speedup(pt, ort)
    assert low <= point <= high
    cells = _pair(float(np.median(pt)), float(np.median(ort)), speedup_paired=point,
                  speedup_ci95_low=low, speedup_ci95_high=high)
    for p, lo, hi in _printed_points_and_cis(comparison_table(cells)):
        assert lo <= p <= hi


# --------------------------------------------------------------------------- make compare


@pytest.mark.parametrize("by", ["device", "runtime"])
def test_compare_prints_the_ratio_of_medians_with_its_own_bootstrap_ci(by):
    runs = sorted((ROOT / "docs/examples/compare/results/cpu").iterdir())
    spec = [f"a={runs[0]}", f"b={runs[1]}"] if by == "device" else [str(ROOT / "docs/examples/compare/results")]
    comp = build_comparison(load_results(spec), by)
    checked = 0
    for row in comp.rows:
        for gi, sig in enumerate(row.ratios):
            if sig is None or sig.ci_low is None:
                continue
            base, other = row.entries[0], row.entries[gi]
            assert sig.speedup == pytest.approx(np.median(base.samples) / np.median(other.samples), rel=1e-12)
            assert sig.ci_low <= sig.speedup <= sig.ci_high
            assert _printed_compare_point_in_ci(sig)
            checked += 1
    assert checked == 12


def _printed_compare_point_in_ci(sig) -> bool:
    """'1.43× faster' / '2.00× slower' beside '1.40–1.47, p<0.001': the printed numbers."""
    point = float(re.search(r"(\d+\.\d+)×", fmt_ratio(sig)).group(1))
    low, high = (float(x) for x in fmt_ci(sig).split(",")[0].split("–"))
    return low <= point <= high


@pytest.mark.parametrize("seed", range(12))
def test_compare_bootstrap_ci_holds_its_point_on_synthetic_samples(seed):
    """Faster and slower groups alike: a "× slower" is printed with the CI of the slowdown."""
    rng = np.random.default_rng(seed)
    base = rng.lognormal(np.log(0.2), 0.15, int(rng.integers(5, 60)))
    factor = rng.uniform(0.4, 0.9) if seed % 2 else rng.uniform(1.1, 2.5)  # odd seeds: slower
    other = rng.lognormal(np.log(0.2 / factor), 0.15, int(rng.integers(5, 60)))
    sig = compare_samples(base, other)
    assert sig.ci_low <= sig.speedup <= sig.ci_high
    assert _printed_compare_point_in_ci(sig)
    assert fmt_ratio(sig).endswith("slower" if seed % 2 else "faster") or sig.mark == "~"


def test_compare_slower_ratio_prints_the_slowdown_s_ci():
    base, other = [0.1, 0.11, 0.1, 0.1, 0.1], [0.2, 0.2, 0.21, 0.2, 0.2]
    sig = compare_samples(base, other)
    assert sig.speedup == 0.5 and fmt_ratio(sig) == "2.00× slower"
    low, high = (float(x) for x in fmt_ci(sig).split(",")[0].split("–"))
    assert low <= 2.0 <= high and (low, high) == (round(1 / sig.ci_high, 2), round(1 / sig.ci_low, 2))
