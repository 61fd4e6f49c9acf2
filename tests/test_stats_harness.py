"""Statistics and the timing loop, driven by a fake clock so every number is exact."""

import math

import numpy as np
import pytest

from runners.harness import TimingPolicy, time_callable, time_round
from runners.stats import median_ci, median_ci_ranks, relative_ci_width, summarize


def test_median_ci_ranks_exact_binomial():
    # n=10: P(B<=1)=11/1024 <= 2.5% < P(B<=2)=56/1024 -> [x(2), x(9)] (1-based)
    assert median_ci_ranks(10) == (1, 8)
    # n=20: P(B<=5)=0.0207 <= 2.5% < P(B<=6)=0.0577 -> [x(6), x(15)]
    assert median_ci_ranks(20) == (5, 14)
    # too few samples for 95%: the whole range
    assert median_ci_ranks(5) == (0, 4)
    assert median_ci_ranks(1) == (0, 0)
    # n=6: P(B<=0)=1/64 <= 2.5% -> [x(1), x(6)]
    assert median_ci_ranks(6) == (0, 5)
    # large n (no overflow): close to the normal approximation n/2 -+ 1.96 sqrt(n)/2
    lo, hi = median_ci_ranks(5000)
    assert abs(lo - (2500 - 1.96 * math.sqrt(5000) / 2)) <= 2 and hi == 5000 - 1 - lo


@pytest.mark.parametrize("confidence", [0.95, 0.99, 0.90])
def test_median_ci_ranks_match_scipy_binomial(confidence):
    """The worker's hand-written order-statistic ranks against ``scipy.stats.binom`` for every n up
    to 400 and a few large ones: the lower bound is x_(j) (1-based) for the smallest j with
    P(B <= j) > tail, B ~ Binomial(n, 1/2); the interval is symmetric; its exact coverage,
    1 - 2 P(B <= j - 1), reaches the level once n allows it."""
    binom = pytest.importorskip("scipy.stats").binom
    tail = (1 - confidence) / 2
    for n in list(range(1, 401)) + [1000, 4321, 20000]:
        cdf = binom.cdf(np.arange(n + 1), n, 0.5)
        j = int(np.argmax(cdf > tail))  # smallest j with P(B <= j) > tail
        expected = (0, n - 1) if j == 0 else (j - 1, n - j)
        assert median_ci_ranks(n, confidence) == expected, n
        if j > 0:
            assert binom.cdf(j - 1, n, 0.5) <= tail < binom.cdf(j, n, 0.5)
            assert 1 - 2 * binom.cdf(j - 1, n, 0.5) >= confidence
    # the first n with a proper 95% interval is 6 (1 - 2/64 = 96.9% coverage)
    if confidence == 0.95:
        assert median_ci_ranks(5, confidence) == (0, 4) and median_ci_ranks(6, confidence) == (0, 5)
        assert median_ci_ranks(9, confidence) == (1, 7)


def test_median_ci_coverage_is_at_least_95_percent():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        xs = rng.exponential(1.0, size=15)
        lo, hi = median_ci(xs)
        hits += lo <= math.log(2) <= hi
    assert hits / 2000 >= 0.95


def test_summarize_is_robust_to_one_spike():
    # the anchor tool's story: ten runs, one of them 983 ms, steady state 125 ms
    samples = [0.125] * 9 + [0.983]
    s = summarize(samples)
    assert s.median == pytest.approx(0.125)
    assert s.mean == pytest.approx((0.125 * 9 + 0.983) / 10)
    assert s.std > 0.25
    assert s.max == 0.983 and s.min == 0.125 and s.n == 10
    assert (s.ci95_low, s.ci95_high) == (0.125, 0.125)
    assert s.noisy is False  # IQR is 0: the spike does not make the median noisy


def test_noisy_flag_from_iqr():
    assert summarize([1.0, 1.0, 1.3, 1.3]).noisy is True
    assert summarize([1.0, 1.01, 1.02, 1.03]).noisy is False


def test_stats_field_names_match_the_contract():
    fields = summarize([1.0, 2.0, 3.0]).to_fields()
    for name in ("latency_mean_s", "latency_std_s", "latency_median_s", "latency_p90_s", "latency_p95_s",
                 "latency_min_s", "latency_max_s", "latency_ci95_low_s", "latency_ci95_high_s", "latency_n"):
        assert name in fields


class FakeDevice:
    """A fake clock whose time advances only when the fake model is called."""

    def __init__(self, durations):
        self.now = 0
        self.durations = list(durations)
        self.calls = 0

    def clock(self):
        return self.now

    def call(self):
        d = self.durations[self.calls] if self.calls < len(self.durations) else self.durations[-1]
        self.calls += 1
        self.now += int(d * 1e9)


def test_first_call_and_warmup_are_not_in_the_samples():
    dev = FakeDevice([5.0, 0.5, 0.5] + [0.1] * 100)
    t = time_callable(dev.call, TimingPolicy(min_reps=10, min_time_s=0.0, warmup_calls=2, warmup_time_s=0.0),
                      clock=dev.clock)
    assert t.first_call_s == pytest.approx(5.0)
    assert t.warmup_calls == 2
    assert t.samples_s == pytest.approx([0.1] * 10)
    assert t.calls_per_sample == 1


def test_an_interleaved_round_starts_with_an_untimed_call():
    # the other runtime ran in between: this round's first call is cold (caches, sleeping pool)
    dev = FakeDevice([0.3, 0.1, 0.1, 0.1, 0.1])
    samples = time_round(dev.call, 1, min_samples=3, min_time_s=0.0, clock=dev.clock)
    assert samples == pytest.approx([0.1] * 3) and dev.calls == 4
    dev = FakeDevice([0.3] + [0.01] * 100)
    samples = time_round(dev.call, 5, min_samples=2, min_time_s=0.0, clock=dev.clock)
    assert samples == pytest.approx([0.01] * 2) and dev.calls == 11  # one untimed call, two blocks of 5
    dev = FakeDevice([0.3, 0.1, 0.1])
    samples = time_round(dev.call, 1, min_samples=2, min_time_s=0.0, clock=dev.clock, rewarm=False)
    assert samples == pytest.approx([0.3, 0.1]) and dev.calls == 2  # the first round, or long calls


def test_minimum_reps_and_minimum_time_both_hold():
    dev = FakeDevice([0.1] * 1000)
    t = time_callable(dev.call, TimingPolicy(min_reps=10, min_time_s=3.0, warmup_calls=1, warmup_time_s=0.0),
                      clock=dev.clock)
    assert len(t.samples_s) == 30  # 3 s of 0.1 s calls, more than the 10 reps
    dev = FakeDevice([0.5] * 1000)
    t = time_callable(dev.call, TimingPolicy(min_reps=10, min_time_s=1.0, warmup_calls=1, warmup_time_s=0.0),
                      clock=dev.clock)
    assert len(t.samples_s) == 10  # 10 reps dominate


def test_sub_millisecond_calls_are_timed_in_blocks():
    dev = FakeDevice([0.0001] * 100000)
    policy = TimingPolicy(min_reps=10, min_time_s=0.0, warmup_calls=2, warmup_time_s=0.0, block_time_s=0.005)
    t = time_callable(dev.call, policy, clock=dev.clock)
    assert t.calls_per_sample == 50
    assert t.samples_s[0] == pytest.approx(0.0001)
    assert dev.calls == 1 + 2 + 50 * len(t.samples_s)


def test_keeps_going_while_the_ci_is_wide_then_stops_at_the_cap():
    rng = np.random.default_rng(1)
    noisy = list(rng.uniform(0.05, 0.15, size=5000))
    dev = FakeDevice([0.1, 0.1] + noisy)
    t = time_callable(dev.call, TimingPolicy(min_reps=10, min_time_s=0.0, max_reps=40, max_time_s=100.0,
                                             ci_target=0.001, warmup_calls=1, warmup_time_s=0.0),
                      clock=dev.clock)
    assert len(t.samples_s) == 40  # never narrow enough: the cap stops it
    dev = FakeDevice([0.1, 0.1] + noisy)
    t = time_callable(dev.call, TimingPolicy(min_reps=10, min_time_s=0.0, max_reps=10_000, max_time_s=100.0,
                                             ci_target=0.2, warmup_calls=1, warmup_time_s=0.0),
                      clock=dev.clock)
    assert 10 <= len(t.samples_s) < 200
    assert relative_ci_width(t.samples_s) <= 0.2


def test_rep_cap_bounds_the_minimum_time_for_fast_calls():
    dev = FakeDevice([0.01] * 10000)
    t = time_callable(dev.call, TimingPolicy(min_reps=10, min_time_s=5.0, max_reps=50, max_time_s=10.0,
                                             warmup_calls=1, warmup_time_s=0.0, block_time_s=0.001),
                      clock=dev.clock)
    assert len(t.samples_s) == 50


def test_time_cap_after_minimum_reps():
    dev = FakeDevice([1.0, 1.0] + [1.0, 1.5] * 50)  # wide CI: only the time cap stops it
    t = time_callable(dev.call, TimingPolicy(min_reps=3, min_time_s=0.0, max_time_s=5.0, ci_target=1e-9,
                                             warmup_calls=1, warmup_time_s=0.0), clock=dev.clock)
    assert len(t.samples_s) == 4  # 1 + 1.5 + 1 + 1.5 = 5 s


def test_sync_is_called_inside_the_timed_region():
    events = []
    dev = FakeDevice([0.2] * 100)

    def call():
        events.append("call")
        dev.call()

    def sync():
        events.append("sync")
        dev.now += int(0.3e9)  # the device finishes later than the call returns

    t = time_callable(call, TimingPolicy(min_reps=3, min_time_s=0.0, warmup_calls=1, warmup_time_s=0.0),
                      sync=sync, clock=dev.clock)
    assert t.samples_s == pytest.approx([0.5, 0.5, 0.5])


def test_policy_validation():
    with pytest.raises(ValueError, match="min_reps"):
        TimingPolicy(min_reps=0)
    with pytest.raises(ValueError, match="max_time_s"):
        TimingPolicy(min_time_s=10, max_time_s=1)
