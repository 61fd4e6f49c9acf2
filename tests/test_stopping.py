"""The stopping rule aimed at what is reported (runners/stopping.py, bench/schedule.py).

Unit tests of the rule and its budgets, then whole suites on the virtual clock of
``worker/fake_timing.py`` (real workers, the real tiny log-mel model, the real protocol; every call
costs an exact virtual time, scaled per scheduler tick): a machine that drifts steadily while the
paired ratio holds, a genuinely noisy ratio, a long call, and the grouped order.
"""

import json
import random
import re
from dataclasses import replace

import pytest

from bench.job import CellShape, WorkerJob
from bench.profiles import load_profile
from bench.schedule import fixed_costs
from bench.settings import SettingsError, build_settings
from bench.suite import run_suite
from runners.harness import TimingPolicy, warm_up
from runners.stopping import MIN_ROUNDS, SideTally, cell_budget, speedup_ci_width, stop_reason
from runstore.folder import read_cells

POLICY = TimingPolicy()  # the defaults: REPS 10, 1 s minimum, 8 s cap, 5% per side, 15% speed-up


def tally(round_medians, per_round=2, sample_s=0.01):
    """A side whose every round held ``per_round`` samples equal to its median."""
    t = SideTally(sample_s=sample_s)
    for m in round_medians:
        t.add_round([m] * per_round, measured_s=0.2, sample_s=sample_s)
    return t


# --- the budget scales with the call -------------------------------------------------------------

def test_short_calls_keep_reps_and_the_time_cap():
    b = cell_budget(POLICY, 0.005)
    assert (b.min_samples, b.samples_per_round, b.max_time_s) == (10, 2, 8.0)
    assert b.round_time_s == pytest.approx(1.0 / MIN_ROUNDS)


def test_a_long_call_is_one_call_a_round_and_six_of_them():
    b = cell_budget(POLICY, 3.0)  # REPS=10 of them would be 30 s: only the 6 paired rounds are asked
    assert (b.min_samples, b.samples_per_round, b.round_time_s) == (MIN_ROUNDS, 1, 0.0)
    assert b.max_time_s == pytest.approx(1.5 * MIN_ROUNDS * 3.0)  # at most 1.5 times the minimum
    mid = cell_budget(POLICY, 0.5)  # 8 of REPS fit in half of MAX_TIME: the cap keeps MAX_TIME
    assert (mid.min_samples, mid.samples_per_round, mid.max_time_s) == (8, 1, 8.0)
    edge = cell_budget(POLICY, 0.4)  # REPS fit in half of MAX_TIME: REPS are kept
    assert edge.min_samples == 10
    longer = cell_budget(POLICY, 0.8)  # 5 would fit: never fewer than the 6 paired rounds
    assert (longer.min_samples, longer.max_time_s) == (MIN_ROUNDS, 8.0)


def test_reps_above_the_default_are_kept_where_they_fit():
    b = cell_budget(replace(POLICY, min_reps=2000, max_reps=2000), 0.001)
    assert b.min_samples == 2000 and b.max_samples == 2000


def test_a_long_first_call_is_its_own_warm_up_on_the_cpu_and_gets_one_more_on_a_gpu():
    now = [0]

    def call():
        now[0] += 3 * 10**9

    warm = warm_up(call, POLICY, clock=lambda: now[0], first_call_s=3.0)
    assert warm.warmup_calls == 0 and warm.seconds == 0.0 and warm.call_s == pytest.approx(3.0)
    assert now[0] == 0  # no call made
    warm = warm_up(call, POLICY, clock=lambda: now[0], first_call_s=3.0, long_call_warmups=1)
    assert warm.warmup_calls == 1 and warm.seconds == pytest.approx(3.0) and warm.call_s == pytest.approx(3.0)
    now[0] = 0

    def long_but_faster():  # the first call was slow (allocation), the next ones are short
        now[0] += 10**7

    warm = warm_up(long_but_faster, POLICY, clock=lambda: now[0], first_call_s=0.5)
    assert warm.warmup_calls == 0 and warm.call_s == pytest.approx(0.5)  # judged by the first call alone
    now[0] = 0

    def short():
        now[0] += 10**7  # 10 ms: the warm-up lasts its 0.25 s

    warm = warm_up(short, POLICY, clock=lambda: now[0])
    assert warm.warmup_calls == 25 and warm.first_call_s == pytest.approx(0.01)


# --- the decision ----------------------------------------------------------------------------------

def test_a_stable_ratio_on_a_drifting_machine_settles_at_the_minimum_rounds():
    ramp = [1.0 + 0.1 * i for i in range(MIN_ROUNDS)]
    pt, ort = tally([0.004 * f for f in ramp]), tally([0.002 * f * 1.02 for f in ramp])
    assert pt.own_ci_width() > POLICY.ci_target  # pooled over the drift: wide by construction
    assert speedup_ci_width(pt, ort) < 1e-9
    assert stop_reason(POLICY, [pt, ort], [(pt, ort)]) == "target"
    assert stop_reason(POLICY, [pt, ort]) is None  # the per-side rule would go on to the cap
    early = tally([0.004] * (MIN_ROUNDS - 1)), tally([0.002] * (MIN_ROUNDS - 1))
    assert stop_reason(POLICY, list(early), [early]) is None  # never before 6 paired rounds


def test_a_noisy_ratio_goes_on_until_a_cap():
    rng = random.Random(1)
    pt = tally([0.004 * rng.uniform(1, 2) for _ in range(MIN_ROUNDS)])
    ort = tally([0.002 * rng.uniform(1, 2) for _ in range(MIN_ROUNDS)])
    assert stop_reason(POLICY, [pt, ort], [(pt, ort)]) is None
    pt.measured_s = POLICY.max_time_s
    assert stop_reason(POLICY, [pt, ort], [(pt, ort)]) == "time-cap"
    many = SideTally(sample_s=0.005)
    for _ in range(MIN_ROUNDS):
        many.add_round([0.004, 0.005] * 100, 1.0, 0.005)
    assert stop_reason(POLICY, [many]) == "sample-cap"  # 1200 samples, and still a 25% wide CI


def test_a_wide_own_ci_within_agreeing_rounds_is_not_excused():
    # each round's samples scatter, but the round medians agree: more samples do narrow the CI
    pt, ort = SideTally(sample_s=0.01), SideTally(sample_s=0.01)
    for _ in range(MIN_ROUNDS):
        pt.add_round([0.008, 0.010, 0.012], 0.2, 0.01)
        ort.add_round([0.005, 0.005, 0.005], 0.2, 0.01)
    assert not pt.rounds_disagree(POLICY) and not pt.own_ci_met(POLICY)
    assert speedup_ci_width(pt, ort) == 0.0
    assert stop_reason(POLICY, [pt, ort], [(pt, ort)]) is None


# --- the typed policy crosses the process boundary ----------------------------------------------------

def test_the_policy_round_trips_through_the_job_json():
    policy = TimingPolicy(min_reps=12, min_time_s=0.5, max_time_s=4.0, ci_target=0.03, speedup_ci=0.2)
    job = WorkerJob(model="logmel", runtime="pytorch", provider="cpu", variant="fp32", threads=1, run_id="r",
                    device="cpu", device_name="x", host="h", cells=[CellShape(1, 1.0)], policy=policy)
    back = WorkerJob.from_dict(json.loads(json.dumps(job.to_dict())))
    assert isinstance(back.policy, TimingPolicy) and back.policy == policy
    data = job.to_dict()
    data["policy"]["speedup_cl"] = 0.1
    with pytest.raises(ValueError, match="unknown timing policy field.*speedup_cl.*valid: .*speedup_ci"):
        WorkerJob.from_dict(data)


def test_speedup_ci_is_a_validated_setting():
    def build(**kw):
        return build_settings(load_profile("cpu"), models="logmel", runtimes=None, batch_sizes=None,
                              durations=None, reps=None, threads=None, providers=None, energy="none", **kw)

    assert build().policy().speedup_ci == 0.15
    assert build(speedup_ci=0.2).policy().speedup_ci == 0.2
    assert build(speedup_ci=0.2).settings_hash() != build().settings_hash()  # it changes what is measured
    with pytest.raises(SettingsError, match="SPEEDUP_CI=-1"):
        build(speedup_ci=-1.0)


# --- whole suites on the virtual clock ----------------------------------------------------------------

RAMP = [1.0 + 0.05 * t for t in range(200)]  # the machine slows by 5% a round, on and on
STEEP = [1.15 ** t for t in range(60)]  # 15% slower every round: pooled samples never settle
_RNG = random.Random(7)
NOISY = [_RNG.uniform(1.0, 2.0) for _ in range(500)]  # every round its own speed


def run(tmp_path, order="interleaved", call_s=(0.004, 0.002), **fake):
    settings = build_settings(load_profile("cpu"), models="logmel", runtimes=None, batch_sizes="1",
                              durations="0.5", reps=None, threads="1", providers=None, energy="none",
                              tiny=True, results_dir=str(tmp_path / "results"), order=order,
                              max_time_s=fake.pop("max_time_s", None))
    timing = {"call_s": {"pytorch": call_s[0], "onnxruntime": call_s[1]}, "canary_s": 0.003, **fake}
    settings = replace(settings, measure_peak=False, extra={"fake_timing": timing})
    outcome = run_suite(settings, progress=False, log=lambda m: None, environment={})
    cells = {c["runtime"]: c for c in read_cells(outcome.run_dir)}
    assert all(c["status"] == "ok" for c in cells.values()), cells
    return cells["pytorch"], cells["onnxruntime"]


def test_a_drifting_machine_with_a_stable_ratio_stops_early(tmp_path):
    pt, ort = run(tmp_path, tick_factors=RAMP)
    assert pt["stop_reason"] == ort["stop_reason"] == "target"
    assert len(pt["round_medians_s"]) == len(ort["round_medians_s"]) == MIN_ROUNDS
    assert pt["extra"]["stopping"]["own_ci_rel_width"] > POLICY.ci_target  # the old rule ran to its cap here
    assert pt["extra"]["stopping"]["rounds_disagree"] is True and pt["extra"]["stopping"]["own_ci_met"] is False
    assert pt["extra"]["measured_time_s"] < POLICY.max_time_s / 4  # well before the cap
    assert ort["extra"]["stopping"]["speedup_ci_rel_width"] <= POLICY.speedup_ci
    assert ort["speedup_ci95_low"] <= ort["speedup_paired"] <= ort["speedup_ci95_high"]
    assert ort["speedup_paired"] == pytest.approx(2 / 1.05, rel=0.03)  # PT one tick ahead of ORT on the ramp
    # every side says where its time outside the timed calls went, and the run adds it up
    for cell in (pt, ort):
        costs = cell["extra"]["overhead_s"]
        assert {"worker_start", "first_call", "warm_up", "canary", "settle", "protocol", "total"} <= set(costs)
        assert costs["total"] >= costs["worker_start"] > 0
    totals = fixed_costs([pt, ort])
    assert totals["total"] == pytest.approx(pt["extra"]["overhead_s"]["total"] + ort["extra"]["overhead_s"]["total"],
                                            abs=0.01)
    assert totals["timed"] > 0


def test_a_noisy_ratio_runs_to_the_cap_and_says_so(tmp_path):
    pt, ort = run(tmp_path, tick_factors=NOISY, max_time_s=2.0)
    assert pt["stop_reason"] == ort["stop_reason"] == "time-cap"
    assert ort["extra"]["stopping"]["speedup_ci_rel_width"] > POLICY.speedup_ci
    assert len(pt["round_medians_s"]) > MIN_ROUNDS
    assert max(pt["extra"]["measured_time_s"], ort["extra"]["measured_time_s"]) >= 2.0


def test_a_long_call_stops_after_the_minimum_rounds_with_few_samples(tmp_path):
    pt, ort = run(tmp_path, call_s=(3.0, 2.0))
    for cell in (pt, ort):
        assert cell["stop_reason"] == "target"
        assert cell["latency_n"] == MIN_ROUNDS and len(cell["round_medians_s"]) == MIN_ROUNDS
        assert cell["latency_calls_per_sample"] == 1
        assert cell["extra"]["warmup_calls"] == 0  # on the CPU the first call is a long call's warm-up
        assert cell["extra"]["stopping"]["min_samples"] == MIN_ROUNDS
    assert ort["speedup_paired"] == pytest.approx(1.5)


def test_grouped_order_keeps_the_per_side_rule(tmp_path):
    pt, ort = run(tmp_path, order="grouped", tick_factors=STEEP, max_time_s=2.0)
    for cell in (pt, ort):
        assert cell["extra"]["stopping"]["rule"] == "per-side"
        assert cell["extra"]["stopping"]["speedup_ci_rel_width"] is None
        assert cell["stop_reason"] == "time-cap"  # its own CI, spread by the ramp, never met 5%
        assert cell["extra"]["stopping"]["own_ci_met"] is False
    assert ort["speedup_paired"] is None
    steady_pt, steady_ort = run(tmp_path / "steady", order="grouped")
    assert steady_pt["stop_reason"] == steady_ort["stop_reason"] == "target"
    assert len(steady_pt["round_medians_s"]) == MIN_ROUNDS


def test_speedup_ci_comes_from_the_flag_or_the_environment(monkeypatch):
    from bench.cli import build_kwargs, build_parser
    from setting_defs import setting

    def given(argv):  # what build_settings is handed (the flag's text), as its definition parses it
        text = build_kwargs(build_parser().parse_args(argv))["speedup_ci"]
        return setting("SPEEDUP_CI").parse(text, "SPEEDUP_CI")

    monkeypatch.delenv("SPEEDUP_CI", raising=False)
    assert given([]) is None  # the settings' default applies
    assert given(["--speedup-ci", "0.2"]) == 0.2
    monkeypatch.setenv("SPEEDUP_CI", "0.15")
    assert given([]) == 0.15


def test_a_comparison_starts_its_workers_together_and_loads_one_model_at_a_time(tmp_path):
    """Both workers import at once (their imports overlap: the saving), but the second model loads
    only after the first one has loaded, so each load_time_s is a load alone; the parent charges
    each side the time it waited for it."""
    pt, ort = run(tmp_path)
    logs = {}
    for path in (tmp_path / "results").rglob("logs/*.log"):
        found = dict(re.findall(r"worker: (started|ready|load started|loaded) at ([0-9.]+)", path.read_text()))
        logs["pytorch" if "pytorch" in path.name else "onnxruntime"] = {k: float(v) for k, v in found.items()}
    assert set(logs) == {"pytorch", "onnxruntime"}
    first, second = sorted(logs.values(), key=lambda t: t["load started"])
    assert first["ready"] < first["load started"] <= first["loaded"] <= second["load started"] <= second["loaded"]
    assert second["ready"] < first["load started"]  # both imported before any load
    assert second["started"] < first["ready"]  # spawned together: their imports overlapped
    assert pt["extra"]["overhead_s"]["worker_start"] > 0 and ort["extra"]["overhead_s"]["worker_start"] > 0


def test_only_a_gpu_runtime_gets_a_warm_up_call_after_a_long_first_call():
    from types import SimpleNamespace

    from runners.runtimes import on_accelerator
    assert [on_accelerator(SimpleNamespace(provider=p)) for p in
            ("cpu", "CPUExecutionProvider", "XNNPACK", "cuda", "cuda:1", "CUDAExecutionProvider",
             "TensorrtExecutionProvider")] == [False, False, False, True, True, True, True]
