"""The wall-time prediction and the work-based time left (bench/estimate.py, bench/progress.py),
on synthetic cells: known FLOPs and a known GEMM rate give a known prediction."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import pytest

from bench.estimate import (
    Costs,
    WorkEstimate,
    call_seconds,
    cell_rounds,
    comparison_cell,
    fmt_duration,
    prediction_line,
    round_seconds,
    side_seconds,
)
from bench.plan import PlannedCell
from bench.progress import WorkProgress
from bench.settings import Settings
from runners.harness import TimingPolicy
from runners.stopping import MIN_ROUNDS

# every cost a MAC count does not give set to zero, calls at the full GEMM rate: only the rule's arithmetic
BARE = Costs(worker_start_s=0.0, cell_fixed_s=0.0, settle_per_round_s=0.0, efficiency=1.0, cap_share=1.0)
# the run's stopping rule (runners/stopping.py reads it); no warm-up beyond the first call
POLICY = TimingPolicy(min_reps=12, max_reps=100_000, min_time_s=0.6, max_time_s=6.0, warmup_calls=0,
                      warmup_time_s=0.0)
RATE = 1e9  # FLOP/s


def cell(model: str, runtime: str, batch: int = 1, duration: float = 1.0) -> PlannedCell:
    return PlannedCell(model, runtime, "cpu" if runtime == "pytorch" else "CPUExecutionProvider", "fp32", 1,
                       batch, float(duration))


def record(c: PlannedCell, latency_s: float = 0.0, rounds: int = 0, status: str = "ok") -> dict:
    return {**asdict(c), "status": status, "latency_median_s": latency_s, "round_medians_s": [latency_s] * rounds}


def test_a_call_is_its_flops_over_the_rate_it_reaches():
    assert call_seconds(2e9, 1e9, 1.0) == 2.0
    assert call_seconds(2e9, 1e9, 0.5) == 4.0
    assert call_seconds(None, 1e9, 1.0) is None and call_seconds(2e9, None, 1.0) is None


def test_rounds_follow_the_stopping_rule_and_its_caps_from_the_policy():
    """runners.stopping.cell_budget decides; MIN_TIME / 6 = 0.1 s rounds, samples of at least 5 ms."""
    # a 1 ms call: rounds of their minimum time (0.1 s, 20 samples of 5 ms); the cap is MAX_TIME / 0.1 s
    # = 60 rounds, or the sample cap where it comes first (1000 samples: 50 rounds)
    assert round_seconds(0.001, POLICY) == pytest.approx(0.1)
    assert cell_rounds([0.001], POLICY) == (MIN_ROUNDS, 60)
    assert cell_rounds([0.001], replace(POLICY, max_reps=1000)) == (MIN_ROUNDS, 50)
    # a 1 s call: REPS calls would not fit in half of MAX_TIME, so 6 calls of one a round; the time
    # cap is 1.5 times the minimum's cost (9 s), 9 rounds
    assert round_seconds(1.0, POLICY) == 1.0
    assert cell_rounds([1.0], POLICY) == (MIN_ROUNDS, 9)
    # interleaved: the slow side's minimum (REPS=12 calls of 0.5 s would not fit in half of MAX_TIME:
    # 6, one a round) sets the fewest rounds, and the side that reaches its cap (MAX_TIME, 12 rounds)
    # first ends the cell for both
    assert cell_rounds([0.001, 0.5], POLICY) == (MIN_ROUNDS, 12)
    assert cell_rounds([0.01, 0.1], POLICY) == (12, 60)
    # the caps never cut below the fewest rounds
    assert cell_rounds([1e-5], replace(POLICY, max_reps=100)) == (MIN_ROUNDS, MIN_ROUNDS)
    # a larger MAX_TIME raises the cap, read from the policy
    assert cell_rounds([0.01], replace(POLICY, max_time_s=12.0)) == (MIN_ROUNDS, 120)


def test_known_flops_and_rate_give_a_known_prediction():
    """Two runtimes, one 0.1 GFLOP cell: 0.1 s calls at 1 GFLOP/s, one a round; REPS = 12 of them at
    the fewest, 60 at the time cap (6 s); the first call; plus the fixed costs given."""
    costs = Costs(worker_start_s=5.0, cell_fixed_s=1.0, settle_per_round_s=0.0, efficiency=1.0, cap_share=1.0)
    todo = [cell("m", "pytorch"), cell("m", "onnxruntime")]
    est = WorkEstimate(todo, POLICY, "grouped", lambda c, s: 1e8, lambda g: RATE, lambda g: 5.0, costs)
    per_side_cap = 5.0 + 1.0 + 0.1 + 60 * 0.1
    per_side_min = 5.0 + 1.0 + 0.1 + 12 * 0.1
    point, low, high = est.first
    assert point == pytest.approx(2 * per_side_cap) and high == pytest.approx(point)
    assert low == pytest.approx(2 * per_side_min)
    assert est.total_s == pytest.approx(point) and est.cells == 2
    half = WorkEstimate(todo, POLICY, "grouped", lambda c, s: 1e8, lambda g: RATE, lambda g: 5.0,
                        replace(costs, cap_share=0.5))
    assert half.first[0] == pytest.approx((2 * per_side_cap + 2 * per_side_min) / 2)


def test_the_warm_up_follows_the_harness():
    """A short call warms up for warmup_time_s (or warmup_calls calls); a call longer than that is
    its own warm-up on the CPU (runners.harness.warm_up)."""
    policy = replace(POLICY, warmup_calls=2, warmup_time_s=0.25)
    assert side_seconds(0.01, 0, policy, BARE, False) == pytest.approx(0.01 + 0.25)
    assert side_seconds(0.2, 0, policy, BARE, False) == pytest.approx(0.2 + 0.4)
    assert side_seconds(3.0, 0, policy, BARE, False) == pytest.approx(3.0)


def test_interleaved_sides_share_their_rounds():
    slow, fast = side_seconds(0.5, 12, POLICY, BARE, True), side_seconds(0.01, 12, POLICY, BARE, True)
    found = comparison_cell([0.5, 0.01], POLICY, "interleaved", BARE)
    assert [s.point_s for s in found] == pytest.approx([slow, fast])  # the fast side stops with the slow one
    grouped = comparison_cell([0.5, 0.01], POLICY, "grouped", BARE)
    assert grouped[1].most == 60 and found[1].most == 12


def test_cost_grows_with_flops_a_thousandfold_apart():
    todo = [cell("small", "pytorch"), cell("big", "pytorch")]
    flops = {"small": 1e6, "big": 1e12}
    est = WorkEstimate(todo, POLICY, "interleaved", lambda c, s: flops[c.model], lambda g: RATE, lambda g: 0.0, BARE)
    small, big = (est.cost[k][0] for k in sorted(est.cost, key=lambda k: k[0] != "small"))
    # 1000 s calls: 6 of them at the fewest, 9 at the cap (1.5 times the minimum), plus the first call
    assert big > 1000 * small and big == pytest.approx(9 * 1000.0 + 1000.0)


def test_time_left_after_k_of_n_cells_is_the_remaining_work_at_the_measured_pace():
    """Ten cheap cells and one dear one: after the ten cheap ones the time left is the dear one's
    share of the work, not one eleventh of the elapsed time per cell."""
    todo = [cell("cheap", "pytorch", batch=b) for b in range(1, 11)] + [cell("dear", "pytorch")]
    flops = {"cheap": 1e6, "dear": 1e10}
    est = WorkEstimate(todo, POLICY, "grouped", lambda c, s: flops[c.model], lambda g: RATE, lambda g: 0.0, BARE)
    total = est.total_s
    assert est.eta_s(0.0) == pytest.approx(total)
    assert est.eta_s(10.0) == pytest.approx(total - 10.0)  # before any cell finished: the prediction, less time spent
    cheap = [c for c in todo if c.model == "cheap"]
    done = 0.0
    for c in cheap:  # measured as predicted: the ratio learned is 1, nothing is re-predicted
        done += est.finish(record(c, status="error"))
    assert est.done_s == pytest.approx(done)
    dear = est.remaining_s
    assert dear == pytest.approx(est.cost[next(k for k in est.cost if k[0] == "dear")][0])
    # the cheap cells took twice their prediction: the dear one is expected to as well
    assert est.eta_s(2 * done) == pytest.approx(2 * dear)
    # by cell count the time left would be elapsed / 10: far too short
    assert est.eta_s(2 * done) > 10 * (2 * done) / 10


def test_a_measured_call_refines_the_rest_of_its_worker_and_the_others():
    todo = [cell("m", "pytorch", duration=d) for d in (1.0, 2.0)] + [cell("n", "pytorch")]
    flops = {("m", 1.0): 1e8, ("m", 2.0): 2e8, ("n", 1.0): 1e8}
    est = WorkEstimate(todo, POLICY, "grouped", lambda c, s: flops[(c.model, s.duration_s)], lambda g: RATE,
                       lambda g: 0.0, BARE)
    key_m2 = next(k for k in est.cost if k[0] == "m" and k[-1] == 2.0)
    key_n = next(k for k in est.cost if k[0] == "n")
    assert est.call_s(key_m2) == pytest.approx(0.2)
    est.finish(record(todo[0], latency_s=0.3, rounds=MIN_ROUNDS))  # predicted 0.1 s, measured 0.3 s
    assert est.call_s(key_m2) == pytest.approx(0.6)  # its own worker's ratio
    assert est.call_s(key_n) == pytest.approx(0.3)  # another worker: the mean ratio so far


def test_the_rounds_a_worker_took_refine_where_its_cells_stop():
    todo = [cell("m", "pytorch", duration=d) for d in (1.0, 2.0)]
    est = WorkEstimate(todo, POLICY, "grouped", lambda c, s: 1e6, lambda g: RATE, lambda g: 0.0, BARE)
    later = next(k for k in est.cost if k[-1] == 2.0)
    at_cap = est.cost[later][0]
    est.finish(record(todo[0], latency_s=0.001, rounds=MIN_ROUNDS))  # settled at its fewest rounds
    assert est.cost[later][0] == pytest.approx(est.cost[later][1])
    assert est.cost[later][0] < at_cap


def test_unknown_rates_take_calls_as_short_and_say_so():
    est = WorkEstimate([cell("m", "pytorch")], POLICY, "grouped", lambda c, s: None, lambda g: None,
                       lambda g: 0.0, BARE)
    assert est.first[0] == pytest.approx(60 * POLICY.min_time_s / MIN_ROUNDS)
    assert "no GEMM rate" in prediction_line(est, rates_known=False)
    assert "no GEMM rate" not in prediction_line(est, rates_known=True)


def test_a_record_that_was_not_predicted_costs_nothing():
    est = WorkEstimate([cell("m", "pytorch")], POLICY, "grouped", lambda c, s: 1e6, lambda g: RATE, lambda g: 0.0, BARE)
    assert est.finish(record(cell("other", "pytorch"))) == 0.0 and est.done_s == 0.0


def test_the_suite_plan_and_policy_feed_the_estimate():
    """The caps come from Settings.policy() (the stopping rule's own numbers), not from constants here."""
    settings = Settings(device="cpu", models=("logmel", "tera"), runtimes=("pytorch", "onnxruntime"),
                        batch_sizes=(1, 2), durations=(1.0,), min_time_s=0.5, max_time_s=4.0)
    short = WorkEstimate(settings.plan(), settings.policy(), settings.order, lambda c, s: 1e8, lambda g: RATE,
                         lambda g: 0.0, BARE)
    longer = WorkEstimate(settings.plan(), replace(settings.policy(), max_time_s=8.0), settings.order,
                          lambda c, s: 1e8, lambda g: RATE, lambda g: 0.0, BARE)
    assert short.cells == 8 and longer.first[0] > 1.9 * short.first[0]


def test_progress_fills_by_predicted_work_and_shows_the_time_left():
    now = [0.0]
    todo = [cell("cheap", "pytorch"), cell("dear", "pytorch")]
    est = WorkEstimate(todo, POLICY, "grouped", lambda c, s: 1e6 if c.model == "cheap" else 1e10,
                       lambda g: RATE, lambda g: 0.0, BARE)
    bar = WorkProgress(est, len(todo), enabled=False, clock=lambda: now[0])
    assert bar.status() == f"0/2 cells, about {fmt_duration(est.total_s)} left"
    now[0] = est.cost[next(k for k in est.cost if k[0] == "cheap")][0]  # the cheap cell took its prediction
    bar.finish(record(todo[0], status="error"))
    assert bar.status() == f"1/2 cells, about {fmt_duration(est.remaining_s)} left"


def test_durations_read_as_a_clock():
    assert fmt_duration(45.2) == "45 s" and fmt_duration(125) == "2:05" and fmt_duration(3725) == "1:02:05"


def test_the_suite_predicts_with_the_gemm_rates_it_measured_and_lends_a_cpu_rate_where_none_is():
    """OpenVINO's CPU plugin has no GEMM peak of its own: its calls take the CPU rate at the same
    threads; a prediction line is logged before the first cell."""
    from bench.suite import predict

    settings = Settings(device="cpu", models=("logmel",), runtimes=("pytorch", "openvino"), batch_sizes=(1,),
                        durations=(1.0,), tiny=True)
    asked, said = [], []

    def peak_for(config):
        asked.append((config.runtime, config.provider))
        return ({"flops_per_s": RATE} if config.runtime == "pytorch" else None), None

    est = predict(settings, settings.plan(), {}, peak_for, said.append)
    assert est is not None and est.cells == 2 and asked == [("pytorch", "cpu"), ("openvino", "CPU")]
    assert all(call is not None for call in (est.call_s(k) for k in est.cost))
    assert said == [prediction_line(est, rates_known=True)]
    assert predict(settings, [], {}, peak_for, said.append) is None


def test_an_edge_artifact_to_make_is_predicted_once_per_shape_and_not_when_at_hand(tmp_path):
    """ExecuTorch programs and LiteRT models are made per input shape before the cell: their cost is
    a fixed part plus the model's bytes at a rate; one in the cache or the manifest costs nothing."""
    from bench.estimate import estimate_run
    from bench.suite import predict
    from runners.runtimes import artifacts

    costs = replace(BARE, edge_export_s=2.0, edge_export_bytes_per_s=1e6)
    todo = [PlannedCell("m", "executorch", "XNNPACK", "fp32", 1, 1, 1.0),
            PlannedCell("m", "executorch", "XNNPACK", "fp32", 1, 1, 4.0)]
    manifest = {"m": {"model_bytes": 3_000_000}}

    def total(ready):
        return estimate_run(todo, POLICY, "grouped", manifest, lambda g: RATE, False, costs,
                            artifact_ready=ready).first[0]

    none_made = total(lambda c, s: True)
    assert total(None) == pytest.approx(none_made)
    assert total(lambda c, s: False) == pytest.approx(none_made + 2 * (2.0 + 3.0))
    assert total(lambda c, s: s.duration_s == 1.0) == pytest.approx(none_made + 5.0)
    two_threads = todo + [replace(c, threads=2) for c in todo]  # one artifact serves every thread count
    made_once = estimate_run(two_threads, POLICY, "grouped", manifest, lambda g: RATE, False, costs,
                             artifact_ready=lambda c, s: False).first[0]
    assert made_once == pytest.approx(estimate_run(two_threads, POLICY, "grouped", manifest, lambda g: RATE, False,
                                                   costs, artifact_ready=lambda c, s: True).first[0] + 2 * 5.0)

    # what counts as at hand: a cached file of that model and shape, or a manifest entry for it
    cache, shipped = tmp_path / "executorch", tmp_path / "artifacts"
    cache.mkdir()
    assert not artifacts.at_hand("executorch", "m", (1, 16000), cache, shipped)
    (cache / "m-b1-n16000-0123456789abcdef.pte.json").write_text("{}")  # a sidecar alone is no artifact
    (cache / "m-b1-n16000-0123456789abcdef.pte.tmp").write_bytes(b"x")  # nor a half-written file
    assert not artifacts.at_hand("executorch", "m", (1, 16000), cache, shipped)
    (cache / "m-b1-n16000-0123456789abcdef.pte").write_bytes(b"x")
    assert artifacts.at_hand("executorch", "m", (1, 16000), cache, shipped)
    assert not artifacts.at_hand("executorch", "m", (1, 64000), cache, shipped)
    entry = {"runtime": "litert", "model": "m", "input_shape": [1, 64000]}
    artifacts.save_manifest(shipped, {**artifacts.empty_manifest(), "artifacts": [entry]})
    assert artifacts.at_hand("litert", "m", (1, 64000), None, shipped)
    assert not artifacts.at_hand("executorch", "m", (1, 64000), None, shipped)
    (shipped / artifacts.MANIFEST).write_text("{damaged")
    assert not artifacts.at_hand("litert", "m", (1, 64000), None, shipped)

    # the suite asks with its own folders: an empty cache predicts the exports, a filled one does not
    settings = Settings(device="cpu", models=("logmel",), runtimes=("pytorch", "executorch"), batch_sizes=(1,),
                        durations=(1.0,), tiny=True, results_dir=str(tmp_path / "r"), onnx_dir=str(tmp_path / "r" / "onnx"),
                        artifacts_dir=str(tmp_path / "r" / "onnx" / "artifacts"))
    rate = lambda config: ({"flops_per_s": RATE}, None)  # noqa: E731
    before = predict(settings, settings.plan(), {}, rate, lambda line: None)
    made = Path(settings.onnx_dir) / "executorch"
    made.mkdir(parents=True)
    (made / "logmel-b1-n16000-0123456789abcdef.pte").write_bytes(b"x")
    after = predict(settings, settings.plan(), {}, rate, lambda line: None)
    assert before is not None and after is not None
    assert before.first[0] - after.first[0] == pytest.approx(Costs().edge_export_s)  # no model bytes known: the fixed part
