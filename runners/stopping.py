"""When a cell has measured enough: a sequential stopping rule aimed at what is reported.

The scheduler (``bench/schedule.py``) asks :func:`stop_reason` after every round (every round pair
in interleaved order); the worker sizes its rounds with the same :func:`cell_budget`, so the rule
and its caps live here and in :class:`runners.harness.TimingPolicy` only.

- **Interleaved order** reports the *paired speed-up*: the median of the per-round ratios
  base runtime / other runtime (``SPEEDUP_BASE``, PyTorch by default) with its distribution-free
  95% CI (:func:`paired_speedup`), one per runtime other than the base.  The cell stops when every
  such CI is narrower than ``speedup_ci`` (relative width) and each side's own median CI meets
  ``ci_target``, or a cap is reached.  A side's own CI is excused when its *rounds* already
  disagree by more than ``ci_target`` (the CI of its round medians is wider than the target): the
  machine moved between rounds, and more samples would measure the drift, not the runtime — the
  very case in which a per-side rule ran every cell to its cap while the paired ratio was settled.
  The record says so (``extra.stopping.own_ci_met``) and the canary flags the drift.
- **Grouped order** (and a side with no partner) keeps the per-side rule: its own median CI within
  ``ci_target``, or a cap.

Never before :data:`MIN_ROUNDS` rounds: with 6 paired ratios the distribution-free 95% CI of their
median exists ([min, max] covers it with probability 1 - 2·(1/2)^6 = 0.969); with fewer it does
not.  The rule decides on the CI's *width*, never on whether it excludes 1, so looking after every
round does not hunt for significance; a CI printed after a sequential stop still covers a little
less than its nominal 95%, which the 6-round minimum keeps small.

Budgets scale with the call (:func:`cell_budget`): REPS is the minimum number of samples per side
unless REPS calls would not fit in MAX_TIME; then as many as fit, never fewer than one per round
(6).  Rounds of long calls are one call each.  The time cap is MAX_TIME or twice the minimum's
cost, whichever is longer, so a 3 s call costs 6 calls when settled and 12 at most, not a per-side
rule's 12 to 27.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Sequence

from runners.harness import REWARM_BELOW_S, TimingPolicy
from runners.stats import median_ci, relative_ci_width

MIN_ROUNDS = 6  # paired rounds before any decision: 2·(1/2)^6 < 0.05, a distribution-free 95% CI exists
STOP_REASONS = ("target", "time-cap", "sample-cap")
# a long call's time cap over its minimum's cost: 2 ran the noisiest large cells of the lab suite to
# 20 rounds for a CI the next run would not reproduce (docs/benchmarks/suite-time.md)
CAP_OVER_MINIMUM = 1.5


@dataclass(frozen=True)
class CellBudget:
    """What one side's cell must measure and may cost, for samples of ``sample_s`` seconds (one
    call, or one block of calls for calls shorter than the harness's block time)."""

    sample_s: float
    min_samples: int
    min_time_s: float
    samples_per_round: int
    round_time_s: float
    max_samples: int
    max_time_s: float


def cell_budget(policy: TimingPolicy, sample_s: float) -> CellBudget:
    """The budget of a cell whose samples take ``sample_s`` (from the warm-up's fastest call).

    - minimum samples: REPS, or as many as fit in half of MAX_TIME when REPS would not (never
      fewer than :data:`MIN_ROUNDS`, one per round): a 0.8 s call is timed 6 times, not 10 — the
      half leaves the cap room for the rounds the paired CI may still need;
    - rounds: MIN_TIME / 6 of samples each, at least ``min_samples / 6`` of them; a long call
      (longer than that round time and than ``REWARM_BELOW_S``, 0.1 s) is a round of its own: a
      second call in its round would cost more than another round's settle wait;
    - time cap: MAX_TIME, or :data:`CAP_OVER_MINIMUM` times the minimum samples' cost when that is
      longer (a cap must leave room for rounds beyond the minimum, but a long call must not run for
      minutes);
    - sample cap: the policy's ``max_reps`` (never below the minimum).
    """
    sample_s = max(float(sample_s), 1e-9)
    fits = max(1, math.floor(policy.max_time_s / 2 / sample_s))
    min_samples = max(MIN_ROUNDS, min(policy.min_reps, fits))
    round_time = policy.min_time_s / MIN_ROUNDS
    long_call = sample_s >= max(round_time, REWARM_BELOW_S)  # the harness's long call: no re-warm either
    return CellBudget(
        sample_s=sample_s, min_samples=min_samples, min_time_s=policy.min_time_s,
        samples_per_round=1 if long_call else math.ceil(min_samples / MIN_ROUNDS),
        round_time_s=0.0 if long_call else round_time,
        max_samples=max(policy.max_reps, min_samples),
        max_time_s=max(policy.max_time_s, CAP_OVER_MINIMUM * min_samples * sample_s),
    )


@dataclass
class SideTally:
    """What the scheduler knows of one side's cell between rounds: enough to decide."""

    rounds: int = 0
    samples: list[float] = field(default_factory=list)
    round_medians: list[float] = field(default_factory=list)
    measured_s: float = 0.0
    sample_s: float | None = None  # the worker's estimate of one sample (its warm-up), from the first round

    def add_round(self, samples: Sequence[float], measured_s: float, sample_s: float | None) -> None:
        self.rounds += 1
        self.samples += list(samples)
        self.round_medians.append(float(statistics.median(samples)))
        self.measured_s += measured_s
        if self.sample_s is None and sample_s is not None:
            self.sample_s = float(sample_s)

    def budget(self, policy: TimingPolicy) -> CellBudget:
        if self.sample_s is not None:
            return cell_budget(policy, self.sample_s)
        per_sample = self.measured_s / len(self.samples) if self.samples else policy.max_time_s
        return cell_budget(policy, per_sample)

    def minimums_met(self, policy: TimingPolicy) -> bool:
        budget = self.budget(policy)
        return (self.rounds >= MIN_ROUNDS and len(self.samples) >= budget.min_samples
                and self.measured_s >= budget.min_time_s)

    def cap(self, policy: TimingPolicy) -> str | None:
        """``time-cap`` or ``sample-cap`` once a cap is reached (after the minimums), else None."""
        if not self.minimums_met(policy):
            return None
        budget = self.budget(policy)
        if self.measured_s >= budget.max_time_s:
            return "time-cap"
        if len(self.samples) >= budget.max_samples:
            return "sample-cap"
        return None

    def own_ci_width(self) -> float:
        return relative_ci_width(self.samples)

    def rounds_disagree(self, policy: TimingPolicy) -> bool:
        """The round medians' own CI is wider than the target: the machine moved between rounds."""
        return relative_ci_width(self.round_medians) > policy.ci_target

    def own_ci_met(self, policy: TimingPolicy) -> bool:
        return self.own_ci_width() <= policy.ci_target


def paired_speedup(base_rounds: Sequence[float], other_rounds: Sequence[float]) -> tuple[float, float, float] | None:
    """Median and 95% CI of the per-round ratios base runtime / other runtime (rounds paired in
    order; the base is ``SPEEDUP_BASE``, PyTorch by default)."""
    n = min(len(base_rounds), len(other_rounds))
    ratios = [p / o for p, o in zip(base_rounds[:n], other_rounds[:n]) if o > 0]
    if not ratios:
        return None
    low, high = median_ci(ratios)
    return float(statistics.median(ratios)), low, high


def speedup_ci_width(base: SideTally, other: SideTally) -> float:
    """Relative width of the paired speed-up's 95% CI (inf before a CI exists)."""
    found = paired_speedup(base.round_medians, other.round_medians)
    if found is None or found[0] <= 0:
        return math.inf
    median, low, high = found
    return (high - low) / median


def stop_reason(policy: TimingPolicy, sides: Sequence[SideTally],
                pairs: Sequence[tuple[SideTally, SideTally]] = ()) -> str | None:
    """Why the cell stops now (one of :data:`STOP_REASONS`), or None: measure another round.

    ``sides`` are the live sides measured together; ``pairs`` the (base, other) sides whose
    rounds interleave (one per runtime configuration other than the base's).  With pairs the
    paired rule applies, every pair's CI alike; without them the per-side rule."""
    if not sides or not all(side.minimums_met(policy) for side in sides):
        return None
    if pairs:
        settled = (all(speedup_ci_width(base, other) <= policy.speedup_ci for base, other in pairs)
                   and all(side.own_ci_met(policy) or side.rounds_disagree(policy) for side in sides))
    else:
        settled = all(side.own_ci_met(policy) for side in sides)
    if settled:
        return "target"
    for side in sides:
        reason = side.cap(policy)
        if reason is not None:
            return reason
    return None
