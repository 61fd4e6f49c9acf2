"""Drift: the canary, interleaved rounds and the paired speed-up.

The end-to-end tests run the real suite (real worker processes, the real tiny log-mel model, the
real protocol) with the ``fake_timing`` hook: every call costs a fixed virtual time, and the
machine "becomes 3× slower" from round 4 on.  Timings are then exact, so the assertions are
about arithmetic, never about this machine's speed.
"""

import os
from dataclasses import replace

import pytest

from bench.job import CellShape
from bench.profiles import load_profile
from bench.quiet import cpu_seconds, settle
from bench.schedule import (
    comparisons,
    paired_speedup,
    remeasure_hint,
    remeasure_keys,
)
from bench.settings import SettingsError, build_settings
from bench.suite import run_suite
from report.cells import compare_medians, speedup
from report.discussion import noisy_paragraph
from report.tables import comparison_table
from runners.canary import DRIFT_THRESHOLD, canary_change, is_drift, onnx_canary_model, read_canary
from runners.stopping import MIN_ROUNDS
from runstore.folder import read_cells, read_records
from runstore.records import cell_key
from worker.fake_timing import FakeTiming

PT_CALL, ORT_CALL, CANARY, FACTOR, SLOW_FROM = 0.004, 0.002, 0.003, 3.0, 4


def fake_settings(tmp_path, order, **kw):
    args = dict(models="logmel", runtimes=None, batch_sizes="1", durations="0.5", reps=2 * MIN_ROUNDS,
                threads="1", providers=None, energy="none", tiny=True, results_dir=str(tmp_path / "results"),
                min_time_s=0.001, max_time_s=100.0, ci_target=10.0, order=order)
    args.update(kw)
    settings = build_settings(load_profile("cpu"), **args)
    fake = {"call_s": {"pytorch": PT_CALL, "onnxruntime": ORT_CALL}, "canary_s": CANARY,
            "slow_from_tick": SLOW_FROM, "factor": FACTOR}
    return replace(settings, measure_peak=False, extra={"fake_timing": fake})


def measured(tmp_path, order):
    outcome = run_suite(fake_settings(tmp_path, order), progress=False, log=lambda m: None, environment={})
    cells = {c.runtime: c for c in read_records(outcome.run_dir)}
    assert set(cells) == {"pytorch", "onnxruntime"}
    assert all(c.status == "ok" for c in cells.values()), cells
    return outcome, cells["pytorch"], cells["onnxruntime"]


@pytest.fixture(scope="module")
def interleaved(tmp_path_factory):
    return measured(tmp_path_factory.mktemp("interleaved"), "interleaved")


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    return measured(tmp_path_factory.mktemp("grouped"), "grouped")


def test_interleaved_rounds_alternate_and_the_slowdown_cancels_out(interleaved):
    _, pt, ort = interleaved
    assert pt.order == ort.order == "interleaved"
    # PyTorch measured on the even ticks, ONNX Runtime on the odd ones: A, B, A, B ...
    assert pt.extra["round_ticks"] == [0, 2, 4, 6, 8, 10]
    assert ort.extra["round_ticks"] == [1, 3, 5, 7, 9, 11]
    # rounds 0-1 fast, 2-5 three times slower: both runtimes saw it alike
    assert pt.round_medians_s == pytest.approx([PT_CALL] * 2 + [PT_CALL * FACTOR] * 4)
    assert ort.round_medians_s == pytest.approx([ORT_CALL] * 2 + [ORT_CALL * FACTOR] * 4)
    true_speedup = PT_CALL / ORT_CALL
    assert speedup(pt, ort) == pytest.approx(true_speedup)
    assert ort.speedup_paired == pytest.approx(true_speedup)
    assert (ort.speedup_ci95_low, ort.speedup_ci95_high) == pytest.approx((true_speedup, true_speedup))
    assert pt.speedup_paired is None  # the pair's speed-up lives on the ONNX Runtime record
    assert compare_medians(pt, ort) == "faster"


def test_grouped_order_takes_the_slowdown_into_the_ratio(grouped):
    _, pt, ort = grouped
    assert pt.order == ort.order == "grouped"
    assert pt.extra["round_ticks"] == [0, 1, 2, 3, 4, 5]  # all PyTorch rounds first
    assert ort.extra["round_ticks"] == [6, 7, 8, 9, 10, 11]
    # PyTorch mostly ran before the slowdown, ONNX Runtime entirely after it
    assert pt.latency_median_s == pytest.approx(PT_CALL)
    assert ort.latency_median_s == pytest.approx(ORT_CALL * FACTOR)
    assert speedup(pt, ort) == pytest.approx(PT_CALL / (ORT_CALL * FACTOR))
    assert ort.speedup_paired is None  # rounds far apart in time are not paired


def test_the_canary_flags_the_slowdown_in_both_orders(interleaved, grouped):
    for _, pt, ort in (interleaved, grouped):
        assert pt.canary_before_s == pytest.approx(CANARY)
        assert pt.canary_after_s == pytest.approx(CANARY * FACTOR)
        assert pt.drift is True
        assert pt.extra["canary_change"] == pytest.approx(FACTOR - 1)
    # interleaved: ONNX Runtime's canary brackets the same stretch; grouped: it ran after the change
    assert interleaved[2].drift is True
    assert grouped[2].drift is False and grouped[2].canary_before_s == pytest.approx(CANARY * FACTOR)


def test_drift_reaches_the_report_and_the_run_offers_to_remeasure(interleaved):
    outcome, pt, ort = interleaved
    assert any("REMEASURE=drift" in m and "2 cell(s)" in m for m in outcome.messages)
    text = "\n".join(noisy_paragraph([pt, ort]))
    assert "2 of 2 cells drifted" in text and "canary 3.00 → 9.00 ms" in text
    report = (outcome.run_dir / "report.md").read_text()
    assert "cells drifted" in report and "REMEASURE=drift" in report
    table = comparison_table([pt, ort])
    assert "2.00× [2.00, 2.00] drift" in table


def test_remeasure_drift_measures_the_drifted_pair_again(tmp_path):
    settings = fake_settings(tmp_path, "interleaved")
    first = run_suite(settings, progress=False, log=lambda m: None, environment={})
    assert len(read_cells(first.run_dir)) == 2
    lines = []
    again = run_suite(replace(settings, remeasure="drift"), progress=False, log=lines.append, environment={})
    assert again.run_dir == first.run_dir  # resumed, not a new run
    assert any("2 cell(s) of drifted comparisons will be measured again" in line for line in lines)
    raw = (first.run_dir / "cells.jsonl").read_text().splitlines()
    assert len(raw) == 4  # each cell appended again; the latest record of a key wins on reading


def test_paired_speedup_is_the_median_of_round_ratios_with_its_ci():
    pt = [4.0, 4.2, 3.8, 4.0, 12.0, 4.1, 4.0, 3.9, 4.4, 3.6]
    ort = [2.0, 2.0, 2.0, 2.0, 6.0, 2.0, 2.1, 1.9, 2.0, 2.0]
    median, low, high = paired_speedup(pt, ort)
    ratios = sorted(p / o for p, o in zip(pt, ort))
    assert median == pytest.approx((ratios[4] + ratios[5]) / 2)
    assert (low, high) == pytest.approx((ratios[1], ratios[8]))  # n = 10: order statistics 2 and 9
    assert paired_speedup([1.0, 2.0], [1.0]) == pytest.approx((1.0, 1.0, 1.0))  # unpaired rounds dropped
    assert paired_speedup([], [1.0]) is None


def test_canary_change_and_threshold():
    assert canary_change(0.010, 0.013) == pytest.approx(0.3)
    assert is_drift(0.010, 0.010 * (1 + DRIFT_THRESHOLD / 2)) is False
    assert is_drift(0.010, 0.010 * (1 + 2 * DRIFT_THRESHOLD)) is True
    assert is_drift(0.010, 0.010 / (1 + 2 * DRIFT_THRESHOLD)) is True  # faster counts too
    assert is_drift(None, 0.01) is None and canary_change(0.01, None) is None


def test_the_canaries_run_in_each_runtime():
    import numpy as np
    import onnx
    import onnxruntime as ort

    from runners.canary import CHAIN, MATRIX_N, make_canary

    model = onnx.load_from_string(onnx_canary_model())
    assert [n.op_type for n in model.graph.node] == ["MatMul"] * CHAIN
    session = ort.InferenceSession(onnx_canary_model(), providers=["CPUExecutionProvider"])
    x = np.ones((MATRIX_N, MATRIX_N), dtype=np.float32)
    assert session.run(None, {"x": x})[0].shape == (MATRIX_N, MATRIX_N)
    ticks = iter(range(0, 10**9, 1000))
    for runtime, provider in (("pytorch", "cpu"), ("onnxruntime", "CPUExecutionProvider")):
        calls = []
        call = make_canary(runtime, 1, provider)
        reading = read_canary(lambda: calls.append(call()), reps=3, clock=lambda: next(ticks))
        assert reading == pytest.approx(1e-6)  # 1000 ns per call on the fake clock
        assert len(calls) == 4  # one untimed call, then the three timed ones


def test_fake_timing_slows_down_from_the_tick():
    fake = FakeTiming(call_s=0.5, canary_s=1.0, slow_from_tick=2, slow_until_tick=4, factor=3.0)
    readings = []
    for tick in range(6):
        fake.tick = tick
        readings.append(fake.canary())
    assert readings == [1.0, 1.0, 3.0, 3.0, 1.0, 1.0]
    fake.tick = 2
    fake.wrap(lambda: None)()
    assert fake.clock() == int(1.5e9)


def test_comparisons_pair_the_runtimes_of_a_model():
    plan = build_settings(load_profile("cpu"), models="logmel,apc", runtimes="pytorch,onnxruntime",
                          batch_sizes="1", durations="1,2", reps=None, threads="1,2", providers=None,
                          energy="none", tiny=True).plan()
    units = comparisons(plan)
    assert len(units) == 4  # 2 models × 2 thread counts
    first = units[0]
    assert [g.runtime for g, _ in first] == ["pytorch", "onnxruntime"]
    assert {(g.model, g.threads) for g, _ in first} == {("logmel", 1)}
    assert all(shapes == [CellShape(1, 1.0), CellShape(1, 2.0)] for _, shapes in first)


def test_remeasure_keys_take_the_drifted_cell_and_its_partner():
    base = dict(model="m", variant="fp32", threads=1, provider="p", batch_size=1)
    records = [dict(base, runtime="pytorch", duration_s=1.0, drift=True),
               dict(base, runtime="onnxruntime", duration_s=1.0, drift=False),
               dict(base, runtime="pytorch", duration_s=2.0, drift=False),
               dict(base, runtime="onnxruntime", duration_s=2.0, drift=None)]
    assert remeasure_keys(records) == {cell_key(records[0]), cell_key(records[1])}
    assert remeasure_hint(records[2:], DRIFT_THRESHOLD) is None
    assert "1 cell(s) (m)" in remeasure_hint(records, DRIFT_THRESHOLD)


def test_cpu_seconds_reads_a_process_and_settle_needs_no_one():
    assert cpu_seconds(os.getpid()) > 0
    assert cpu_seconds(None) is None
    assert settle([]) == 0.0


def test_order_and_remeasure_are_validated():
    with pytest.raises(SettingsError, match="ORDER='random'.*valid: interleaved, grouped"):
        build_settings(load_profile("cpu"), models="logmel", runtimes=None, batch_sizes=None, durations=None,
                       reps=None, threads=None, providers=None, energy="none", order="random")
    with pytest.raises(SettingsError, match="REMEASURE='all'.*valid: drift"):
        build_settings(load_profile("cpu"), models="logmel", runtimes=None, batch_sizes=None, durations=None,
                       reps=None, threads=None, providers=None, energy="none", remeasure="all")
