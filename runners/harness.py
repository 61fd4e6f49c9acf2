"""The timing loop shared by every runner: warm-up excluded, adaptive repetitions, blocks.

A runner hands over a zero-argument ``call`` that runs one inference on inputs already on the
device, and a ``sync`` that waits for the device (a no-op on the CPU).  The harness:

1. times the first call on its own (``first_call_s``: allocation, autotuning, cold caches);
2. warms up (not timed) for at least ``warmup_calls`` calls and ``warmup_time_s``;
3. picks ``calls_per_sample`` so that one timed block lasts at least ``block_time_s``
   (sub-millisecond calls such as the log-mel front-end are timed in blocks, so the clock's
   own overhead disappears; each sample is then block time / calls);
4. collects samples until there are at least ``min_reps`` of them *and* ``min_time_s`` has
   been measured, and goes on while the median's 95% CI is wider than ``ci_target`` (relative
   to the median), up to ``max_reps`` samples or ``max_time_s`` (caps that apply once
   ``min_reps`` samples exist).

Every sample is kept.  The clock is injectable so tests can drive it deterministically.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from runners.stats import LatencyStats, relative_ci_width, summarize

SAMPLE_CAP = 1000  # samples per cell unless REPS asks for more


@dataclass(frozen=True)
class TimingPolicy:
    min_reps: int = 10
    min_time_s: float = 1.0
    max_reps: int = SAMPLE_CAP
    max_time_s: float = 8.0
    ci_target: float = 0.05
    warmup_calls: int = 2
    warmup_time_s: float = 0.25
    block_time_s: float = 0.005

    def __post_init__(self) -> None:
        if self.min_reps < 1:
            raise ValueError(f"min_reps must be >= 1, got {self.min_reps}")
        if self.max_reps < self.min_reps:
            raise ValueError(f"max_reps ({self.max_reps}) must be >= min_reps ({self.min_reps})")
        if self.max_time_s < self.min_time_s:
            raise ValueError(f"max_time_s ({self.max_time_s}) must be >= min_time_s ({self.min_time_s})")


@dataclass
class Timing:
    samples_s: list[float]
    calls_per_sample: int
    first_call_s: float
    warmup_calls: int
    measured_time_s: float
    stats: LatencyStats = field(init=False)

    def __post_init__(self) -> None:
        self.stats = summarize(self.samples_s)


def _noop() -> None:
    return None


@dataclass
class WarmUp:
    """What the warm-up found: the first call's time, the calls made, the block size chosen."""

    first_call_s: float
    warmup_calls: int
    calls_per_sample: int


def warm_up(call: Callable[[], object], policy: TimingPolicy = TimingPolicy(),
            sync: Callable[[], None] = _noop, clock: Callable[[], int] = time.perf_counter_ns) -> WarmUp:
    """Time the first call on its own, warm up (untimed) and choose the calls per sample."""
    t0 = clock()
    call()
    sync()
    first = (clock() - t0) / 1e9

    # warm-up: not timed for the record, but the fastest call estimates the per-call time
    warm_start = clock()
    n_warm, fastest = 0, first
    while n_warm < policy.warmup_calls or (clock() - warm_start) / 1e9 < policy.warmup_time_s:
        s = clock()
        call()
        sync()
        fastest = min(fastest, (clock() - s) / 1e9)
        n_warm += 1
    per_call = max(fastest, 1e-9)
    calls = 1 if per_call >= policy.block_time_s else int(math.ceil(policy.block_time_s / per_call))
    return WarmUp(first, n_warm, calls)


def time_block(call: Callable[[], object], calls: int, sync: Callable[[], None] = _noop,
               clock: Callable[[], int] = time.perf_counter_ns) -> float:
    """Seconds for ``calls`` back-to-back calls (and one sync): one sample is this / calls."""
    s = clock()
    for _ in range(calls):
        call()
    sync()
    return (clock() - s) / 1e9


REWARM_BELOW_S = 0.1  # calls shorter than this get an untimed call at the start of each round


def time_round(call: Callable[[], object], calls: int, min_samples: int, min_time_s: float,
               sync: Callable[[], None] = _noop,
               clock: Callable[[], int] = time.perf_counter_ns, rewarm: bool = True) -> list[float]:
    """One round of an interleaved comparison: at least ``min_samples`` samples and
    ``min_time_s`` measured seconds, then the other runtime takes its turn.

    With ``rewarm`` the round starts with one untimed call: the other runtime ran in between and
    evicted this one's weights and activations from the caches, and this runtime's thread pool went
    to sleep.  The cell's warm-up was done once, before its first round; without this call every
    round would pay a cold start again that a steady stream of calls does not (warm-up is
    excluded).  The caller leaves it out for the first round (just warmed up) and for calls of
    :data:`REWARM_BELOW_S` or more, where refilling the caches is a few milliseconds, under 2% of a
    call, and the extra call would cost far more time than it corrects."""
    if rewarm:
        call()
        sync()
    samples: list[float] = []
    measured = 0.0
    while len(samples) < min_samples or measured < min_time_s:
        block = time_block(call, calls, sync, clock)
        measured += block
        samples.append(block / calls)
    return samples


def time_callable(call: Callable[[], object], policy: TimingPolicy = TimingPolicy(),
                  sync: Callable[[], None] = _noop,
                  clock: Callable[[], int] = time.perf_counter_ns) -> Timing:
    """Measure ``call`` under ``policy`` and return every sample with its statistics."""
    warm = warm_up(call, policy, sync, clock)
    calls = warm.calls_per_sample
    samples: list[float] = []
    measured = 0.0
    while True:
        block = time_block(call, calls, sync, clock)
        measured += block
        samples.append(block / calls)
        n = len(samples)
        if n < policy.min_reps:
            continue
        if n >= policy.max_reps or measured >= policy.max_time_s:
            break
        if measured < policy.min_time_s:
            continue
        if relative_ci_width(samples) <= policy.ci_target:
            break
    return Timing(samples, calls, warm.first_call_s, warm.warmup_calls, measured)
