"""The computed discussion: ranks, Spearman, log-log slopes, runtime verdicts, noise — on numbers
small enough to check by hand."""

from __future__ import annotations

import math

import pytest
from cell_factory import latency, record

from report.discussion import (
    discussion,
    growth_slopes,
    loglog_slope,
    noisy_cells,
    rank_correlations,
    ranks,
    runtime_verdicts,
    spearman,
)
from runstore.records import CellRecord


def cell(model: str, runtime: str = "pytorch", b: int = 1, d: float = 1.0, median: float = 0.01,
         rel_ci: float = 0.02, status: str = "ok", **fields) -> CellRecord:
    ok = {**latency(median, rel_ci), "latency_iqr_s": median * 0.04} if status == "ok" else {}
    return record(model, runtime, b, d, status, {**ok, **fields})


def test_ranks_average_ties() -> None:
    assert ranks([10, 20, 20, 30]).tolist() == [1, 2.5, 2.5, 4]
    assert ranks([3, 1, 2]).tolist() == [3, 1, 2]
    assert ranks([5, 5, 5]).tolist() == [2, 2, 2]


def test_spearman_hand_computed() -> None:
    # d = rank differences (-1, 1, -1, 1, 0), sum d^2 = 4: rho = 1 - 6*4 / (5*(25-1)) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


def test_spearman_with_ties() -> None:
    # ranks x = (1, 2.5, 2.5, 4), y = (1, 3, 2, 4): Pearson of ranks = 4.5 / sqrt(4.5 * 5) = 3/sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # undefined: no variation
    assert spearman([1], [2]) is None


def test_loglog_slope_linear_and_quadratic() -> None:
    xs = [1, 2, 4, 8, 16]
    assert loglog_slope(xs, [3 * x for x in xs]) == pytest.approx(1.0)
    assert loglog_slope(xs, [0.5 * x * x for x in xs]) == pytest.approx(2.0)
    assert loglog_slope([1, 1], [1, 2]) is None


def _sweep(model: str, runtime: str, per_s: float, power: float) -> list[CellRecord]:
    """A default sweep (durations at batch 1, batches at 1 s) with latency = per_s * (b*d)**power."""
    out = [cell(model, runtime, 1, d, per_s * d ** power) for d in (1.0, 2.0, 4.0, 8.0)]
    out += [cell(model, runtime, b, 1.0, per_s * b ** power) for b in (2, 4)]
    return out


def test_superlinear_detector_names_quadratic_not_linear() -> None:
    cells = _sweep("quad", "pytorch", 0.01, 2.0) + _sweep("lin", "pytorch", 0.01, 1.0)
    slopes = {s.model: s for s in growth_slopes(cells, "duration_s")}
    assert slopes["quad"].slope == pytest.approx(2.0) and slopes["quad"].kind == "superlinear"
    assert slopes["lin"].slope == pytest.approx(1.0) and slopes["lin"].kind == "linear"
    assert slopes["quad"].n_points == 4
    text = discussion(cells)
    sentence = next(line for line in text.splitlines()
                    if line.startswith("- Latency grows faster than linearly in duration"))
    named = sentence.split("):", 1)[1]
    assert named.strip() == "quad under PyTorch (2.00)."


def test_no_superlinear_says_so_with_the_largest_slope() -> None:
    cells = _sweep("lin", "pytorch", 0.01, 1.0) + _sweep("flat", "pytorch", 0.01, 0.5)
    text = discussion(cells)
    assert "No model's latency grows faster than linearly in duration" in text
    assert "largest log-log slope 1.00, lin" in text
    assert "flat under PyTorch (0.50)" in text  # named as sublinear


def test_rank_correlation_with_parameters_and_macs() -> None:
    params = {"m1": 1e6, "m2": 2e6, "m3": 3e6, "m4": 4e6, "m5": 5e6}
    latency = {"m1": 0.002, "m2": 0.001, "m3": 0.004, "m4": 0.003, "m5": 0.005}
    cells = [cell(m, median=latency[m], params_used=int(params[m]), macs=int(params[m] * 10))
             for m in params]
    cells += [cell(m, d=2.0, median=latency[m] * 9) for m in params]  # not the reference point
    found = {c.size: c for c in rank_correlations(cells)}
    assert found["parameters"].rho == pytest.approx(0.8)
    assert found["MACs"].rho == pytest.approx(0.8)
    text = discussion(cells)
    assert "parameters used in inference = 0.80 over 5 models" in text
    assert "a strong positive rank correlation" in text


def test_rank_correlation_uses_manifest_and_says_too_few_models() -> None:
    cells = [cell("a", median=0.001), cell("b", median=0.002)]
    models = {"a": {"params_total": 10}, "b": {"params_total": 20}}
    text = discussion(cells, models)
    assert "too few models for a rank correlation with total parameters (n = 2; 3 needed)" in text


def test_runtime_verdicts_count_and_locate() -> None:
    cells = [cell("a", "pytorch", median=0.010), cell("a", "onnxruntime", median=0.005),
             cell("a", "pytorch", b=2, median=0.020), cell("a", "onnxruntime", b=2, median=0.0201),
             cell("b", "pytorch", median=0.010), cell("b", "onnxruntime", median=0.020),
             cell("b", "pytorch", b=2, status="oom"), cell("b", "onnxruntime", b=2, median=0.04)]
    verdicts = runtime_verdicts(cells)
    assert (len(verdicts.faster), len(verdicts.slower), len(verdicts.same)) == (1, 1, 1)
    text = discussion(cells)
    assert ("Of 3 cells measured ok under both runtimes, ONNX Runtime was significantly faster "
            "(non-overlapping 95% CIs of the median) in 1, significantly slower in 1 and "
            "indistinguishable in 1.") in text
    assert "ONNX Runtime won significantly in 1 of 3 cells, not everywhere." in text
    # interleaved runs carry the paired speed-up's CI: the verdict and the sentence use it
    paired = [cell("a", "pytorch", median=0.010),
              cell("a", "onnxruntime", median=0.0099, speedup_paired=1.2, speedup_ci95_low=1.1, speedup_ci95_high=1.3)]
    assert ("Of 1 cells measured ok under both runtimes, ONNX Runtime was significantly faster (the 95% CI "
            "of the speed-up from paired rounds excludes 1) in 1,") in discussion(paired)
    mixed = discussion(paired + [cell("b", "pytorch", median=0.010), cell("b", "onnxruntime", median=0.005)])
    assert ("(for 1 cells the 95% CI of the speed-up from paired rounds excludes 1, for the other 1 the two "
            "medians' 95% CIs do not overlap) in 2,") in mixed
    assert "Faster under ONNX Runtime: a (batch 1, 1 s)." in text
    assert "Slower under ONNX Runtime: b (batch 1, 1 s)." in text
    assert "ranged from 0.50× (b, batch 1, 1 s) to 2.00× (a, batch 1, 1 s)" in text


def test_noisy_cells_flag_and_iqr() -> None:
    cells = [cell("calm", median=0.01),
             cell("flagged", median=0.01, latency_noisy=True),
             cell("wide", median=0.01, latency_iqr_s=0.002)]
    assert [c.model for c, _ in noisy_cells(cells)] == ["flagged", "wide"]
    text = discussion(cells)
    assert "2 of 3 ok cells are noisy" in text
    assert "  - wide / PyTorch (batch 1, 1 s): IQR/median 20%" in text.splitlines()


def test_no_ok_cells() -> None:
    assert "nothing to discuss" in discussion([cell("a", status="error")])


def test_slope_through_noisy_cells_is_marked() -> None:
    cells = _sweep("quad", "pytorch", 0.01, 2.0)
    cells[1].latency_noisy = True  # batch 1, 2 s
    slope = next(s for s in growth_slopes(cells, "duration_s") if s.model == "quad")
    assert slope.noisy
    text = discussion(cells)
    assert "quad under PyTorch (2.00, noisy)" in text and "2.00 (n=4, noisy)" in text


def test_thread_sweep_names_the_setup_and_no_counts_said_once() -> None:
    cells = [cell("a", rt, threads=t, median=0.02 / t * (0.5 if rt == "onnxruntime" else 1.0))
             for t in (1, 2) for rt in ("pytorch", "onnxruntime")]
    text = discussion(cells)
    assert "- No parameter counts recorded." in text
    assert "ranged from 2.00× (a, batch 1, 1 s [1 thr]) to 2.00× (a, batch 1, 1 s [1 thr])" in text
