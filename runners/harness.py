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

:class:`TimingPolicy` is the one definition of the rule, built once from the settings
(``bench/settings.Settings.policy``), carried typed in the worker's job, and read both by the
parent's scheduler (when a cell stops: ``runners/stopping.py``) and by the worker (how long a round
is, how long the warm-up).

Every sample is kept.  The clock is injectable so tests can drive it deterministically.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable

from runners.stats import LatencyStats, relative_ci_width, summarize

SAMPLE_CAP = 1000  # samples per cell unless REPS asks for more


SPEEDUP_CI = 0.15  # default relative width of the paired speed-up's 95% CI (runners/stopping.py)


@dataclass(frozen=True)
class TimingPolicy:
    """The stopping rule and its caps: what a cell must measure, may cost, and when it is done.

    ``min_reps`` is REPS (the lab's k = 10), ``ci_target`` the relative width of a side's own
    median CI, ``speedup_ci`` the relative width of the paired speed-up's CI (interleaved order);
    ``runners.stopping.cell_budget`` scales the minimum samples and the time cap with the call."""

    min_reps: int = 10
    min_time_s: float = 1.0
    max_reps: int = SAMPLE_CAP
    max_time_s: float = 8.0
    ci_target: float = 0.05
    speedup_ci: float = SPEEDUP_CI
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
        if self.ci_target <= 0 or self.speedup_ci <= 0:
            raise ValueError(f"ci_target ({self.ci_target}) and speedup_ci ({self.speedup_ci}) must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TimingPolicy":
        """The policy a parent sent in a job; an unknown key is refused by name (a typo in the
        parent must not silently fall back to a default rule)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown timing policy field(s): {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**data)


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
    """What the warm-up found: the first call's time, the calls made, the block size chosen, the
    fastest call (the per-call time the cell's budget is scaled with) and the wall time it took."""

    first_call_s: float
    warmup_calls: int
    calls_per_sample: int
    call_s: float = 0.0
    seconds: float = 0.0


def warm_up(call: Callable[[], object], policy: TimingPolicy = TimingPolicy(),
            sync: Callable[[], None] = _noop, clock: Callable[[], int] = time.perf_counter_ns,
            first_call_s: float | None = None, long_call_warmups: int = 0) -> WarmUp:
    """Time the first call on its own, warm up (untimed) and choose the calls per sample.

    A caller that already made and timed the first call (the worker does, to check the output's
    shape) passes ``first_call_s``, and no second "first call" is made.

    The warm-up lasts at least ``warmup_calls`` calls and ``warmup_time_s``, except that a call
    which alone outlasts ``warmup_time_s`` is its own warm-up, followed by ``long_call_warmups``
    untimed calls: the first call already allocated and filled the caches.  On the CPU none follow
    (in the lab suite's 37 cells of such calls the first timed call was at 1.00x the median, the
    median over cells; an extra call cost 47 s of a 9-minute run: docs/benchmarks/suite-time.md);
    on an accelerator the worker asks for one, where a new shape's kernels may be tuned over calls."""
    t0 = clock()
    if first_call_s is None:
        call()
        sync()
        first = (clock() - t0) / 1e9
    else:
        first = first_call_s

    # warm-up: not timed for the record, but the fastest call estimates the per-call time
    warm_start = clock()
    n_warm, fastest = 0, first
    while True:
        elapsed = (clock() - warm_start) / 1e9
        long_call = 0 < policy.warmup_time_s <= fastest
        if long_call and n_warm >= long_call_warmups:
            break
        if n_warm >= policy.warmup_calls and elapsed >= policy.warmup_time_s:
            break
        s = clock()
        call()
        sync()
        fastest = min(fastest, (clock() - s) / 1e9)
        n_warm += 1
    per_call = max(fastest, 1e-9)
    calls = 1 if per_call >= policy.block_time_s else int(math.ceil(policy.block_time_s / per_call))
    return WarmUp(first, n_warm, calls, call_s=per_call, seconds=(clock() - warm_start) / 1e9)


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
