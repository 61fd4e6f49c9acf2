"""How long a run will take, predicted before it measures, and its time left by remaining work.

Cells differ by 1,000× in cost (a log-mel call takes half a millisecond, wav2vec2 on 16 s of audio
seconds), so the share of cells done says little about the time left.  The prediction:

* **a call** takes the cell's FLOPs (2 × MACs of its exact input, ``flops.macs_for``) over the
  attainable GEMM rate measured for its runtime and thread count (``runners/gemm_peak.py``) times
  an efficiency: :attr:`Costs.efficiency` until a cell of the same worker was measured, then the
  ratio its measured median latency showed (other workers: the mean ratio seen so far);
* **a cell** costs its fixed part (first call, warm-up, canary readings, the record) plus
  rounds × the round's time, with the rounds the stopping rule asks for and no more than its caps
  allow, both from the stopping rule's own budget for that call (``runners.stopping.cell_budget`` on
  the run's ``TimingPolicy``: at least ``MIN_ROUNDS``, REPS samples and MIN_TIME; at most the time
  cap, scaled with the call, or the sample cap; in interleaved order the first side at its cap ends
  the cell for both); :func:`cell_rounds` is the one place here that knows the rule;
* **a worker** costs its start and model load once, at its first cell;
* **an edge artifact** (an ExecuTorch program or a LiteRT model, one per input shape) that is in
  neither this machine's cache nor the shipped manifest is made by the worker before the cell:
  :attr:`Costs.edge_export_s` plus the model's bytes at :attr:`Costs.edge_export_bytes_per_s`.

The point prediction puts every comparison :attr:`Costs.cap_share` of the way from its fewest rounds
to its caps (1: at the caps, which a noisy machine reaches) until cells were measured, then where
the measured cells stopped (their worker's, else the mean); the range spans the two.

Time left = remaining predicted work × (elapsed / predicted work done so far): the ratio a progress
bar over predicted seconds would use, so a run slower than predicted stretches its estimate from
its first finished cell on.  Everything here is arithmetic on numbers handed in: the suite measures
(GEMM rates, MACs, the clock), tests hand in synthetic cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from bench.job import CellShape
from bench.plan import PlannedCell, RuntimeConfig
from bench.schedule import comparisons
from flops import macs_for
from models.audio_format import SAMPLE_RATE
from runners.harness import REWARM_BELOW_S, TimingPolicy
from runners.stopping import MIN_ROUNDS, CellBudget, cell_budget

CONFIG_FIELDS = ("model", "runtime", "provider", "variant", "threads")  # one worker (RuntimeConfig)
SideKey = tuple  # a worker's fields + (batch, duration): one record


@dataclass(frozen=True)
class Costs:
    """The costs a MAC count does not give, in seconds, from what the worker records of each cell
    (``extra.overhead_s``) on this project's 2-vCPU VM: a worker's start 1.5-3 s before its model
    loads (a comparison's workers import together), a cell's canary readings, protocol and record
    0.045 s a side, a settle wait 0.034 s a side's round (the 12-05 08:48 default run: 96 side
    cells, 720 rounds; before it the fixed part was taken as 1 s, and the prediction ran 60% over
    the run's 391 s, its "fewest rounds" bound above it).  The efficiency and the cap share were fitted to
    the default run of ``docs/benchmarks/suite-time.md`` (2026-12-05, the stopping defaults of that
    day: calls reached 0.68 of the GEMM rate at the median; comparisons stopped a fifth of the way
    from their fewest rounds to their caps on average, 0.05 at the median)."""

    worker_start_s: float = 2.5  # process start, torch/onnxruntime imports, canary set-up, fidelity probe
    load_bytes_per_s: float = 60e6  # model load (and the parent's fp32 reference): its bytes at this rate
    cell_fixed_s: float = 0.05  # canary readings before and after, protocol, memory, the record
    settle_per_round_s: float = 0.034  # waiting for the other side's thread pool to go quiet (interleaved)
    efficiency: float = 0.67  # share of the GEMM rate a call reaches before any cell was measured
    cap_share: float = 0.2  # where between its fewest rounds (0) and its caps (1) a comparison stops
    # making one ExecuTorch program or LiteRT model (export, lowering or conversion, and its check):
    # fitted to the 22 made in docs/benchmarks/runtimes-suite.md (12-05 17:04, 2 threads): log-mel 1 s,
    # TERA 8-14 s, wav2vec 2.0 / HuBERT 23-31 s, Mockingjay 24-43 s; APC's unrolled GRU (48 s at 1 s
    # of audio) takes longer than its bytes say
    edge_export_s: float = 2.0
    edge_export_bytes_per_s: float = 15e6


def config_key(config: RuntimeConfig | Mapping[str, Any]) -> tuple:
    """A worker's fields, from its ``RuntimeConfig`` or from one of its records."""
    if isinstance(config, Mapping):
        return tuple(config.get(f) for f in CONFIG_FIELDS)
    return tuple(getattr(config, f) for f in CONFIG_FIELDS)


def side_key(config: RuntimeConfig, shape: CellShape) -> SideKey:
    """One side of one comparison cell (a worker and an input shape): one record."""
    return config_key(config) + (int(shape.batch_size), float(shape.duration_s))


def record_key(record: Mapping[str, Any]) -> SideKey:
    return config_key(record) + (int(record["batch_size"]), float(record["duration_s"]))


def call_seconds(flops: float | None, flops_per_s: float | None, efficiency: float) -> float | None:
    """Predicted seconds of one call: FLOPs over the share of the GEMM rate it reaches; None when
    either is unknown (no MAC count, no rate: a GPU, ``NO_PEAK=1``)."""
    if not flops or not flops_per_s or efficiency <= 0:
        return None
    return float(flops) / (float(flops_per_s) * efficiency)


def budget(call_s: float | None, policy: TimingPolicy) -> CellBudget:
    """The stopping rule's budget for a side whose calls take ``call_s`` (``runners/stopping.py``):
    a sample is one call, or a block of calls lasting the harness's block time; an unknown call is
    taken as a short one."""
    return cell_budget(policy, max(call_s or 0.0, policy.block_time_s))


def round_seconds(call_s: float | None, policy: TimingPolicy) -> float:
    """Measured seconds of one side's round: its samples and its minimum time."""
    b = budget(call_s, policy)
    return max(b.samples_per_round * b.sample_s, b.round_time_s)


def cell_rounds(calls: list[float | None], policy: TimingPolicy) -> tuple[int, int]:
    """(fewest, most) rounds of one comparison cell whose sides' calls take ``calls`` seconds.

    Fewest: MIN_ROUNDS, and enough for each side's minimum samples and time.  Most: the sides go on
    until one reaches a cap (its time cap or its sample cap, both scaled with its call by
    ``runners.stopping.cell_budget``); the rule may stop anywhere between on its CI targets."""
    fewest, caps = MIN_ROUNDS, []
    for call in calls:
        b = budget(call, policy)
        measured = round_seconds(call, policy)
        per_round = max(b.samples_per_round, math.floor(measured / b.sample_s + 1e-9))
        fewest = max(fewest, math.ceil(b.min_samples / per_round - 1e-9), math.ceil(b.min_time_s / measured - 1e-9))
        caps.append(min(math.ceil(b.max_time_s / measured - 1e-9), math.ceil(b.max_samples / per_round - 1e-9)))
    most = max(fewest, min(caps)) if caps else fewest
    return fewest, most


def side_seconds(call_s: float | None, rounds: float, policy: TimingPolicy, costs: Costs,
                 interleaved: bool) -> float:
    """Wall seconds one side spends on a cell: fixed part, first call and warm-up (none after a CPU
    call longer than the warm-up time, as ``runners.harness.warm_up`` does), then its rounds."""
    call = call_s or 0.0
    if 0 < policy.warmup_time_s <= call:
        warmup = call
    else:
        warmup = call + max(policy.warmup_calls * call, policy.warmup_time_s)
    rewarm = call if call < REWARM_BELOW_S else 0.0  # an untimed call before each round of a short call
    per_round = round_seconds(call_s, policy) + rewarm + (costs.settle_per_round_s if interleaved else 0.0)
    return costs.cell_fixed_s + warmup + rounds * per_round


@dataclass(frozen=True)
class SideCost:
    """One side of one comparison cell: predicted seconds (point, fewest rounds, caps) and the
    rounds they stand for."""

    point_s: float
    low_s: float
    high_s: float
    fewest: int
    most: int


def comparison_cell(calls: list[float | None], policy: TimingPolicy, order: str, costs: Costs,
                    shares: list[float | None] | None = None, mean_share: float | None = None) -> list[SideCost]:
    """Each side of one comparison cell, in the order of ``calls``.

    Interleaved: the sides' rounds alternate, so they share one count of rounds; grouped: each side
    measures the cell on its own.  ``shares``: where each side's worker stopped between its fewest
    rounds and its caps so far (None: ``mean_share``, the other workers' mean, else
    :attr:`Costs.cap_share`)."""
    interleaved = order == "interleaved" and len(calls) > 1
    index = list(range(len(calls)))
    units = [index] if interleaved else [[i] for i in index]
    out: dict[int, SideCost] = {}
    for unit in units:
        fewest, most = cell_rounds([calls[i] for i in unit], policy)
        known = [share for share in (shares[i] for i in unit) if share is not None] if shares else []
        if not known and mean_share is not None:
            known = [mean_share]
        share = sum(known) / len(known) if known else costs.cap_share
        expected = fewest + share * (most - fewest)
        for i in unit:
            out[i] = SideCost(side_seconds(calls[i], expected, policy, costs, interleaved),
                              side_seconds(calls[i], fewest, policy, costs, interleaved),
                              side_seconds(calls[i], most, policy, costs, interleaved), fewest, most)
    return [out[i] for i in index]


def shape_order(shapes: Iterable[CellShape]) -> list[tuple[int, float]]:
    """The input shapes of a comparison in the order the schedule measures them (smallest first)."""
    found = {(int(s.batch_size), float(s.duration_s)) for s in shapes}
    return sorted(found, key=lambda s: (s[0] * s[1], s[1]))


class WorkEstimate:
    """The predicted seconds of every cell still to measure, refined as records come in.

    ``flops_of(config, shape)`` gives a cell's FLOPs (or None), ``rate_of(config)`` the GEMM FLOP/s
    of a worker (or None), ``worker_s(config)`` the start and load cost of its worker."""

    def __init__(self, todo: list[PlannedCell], policy: TimingPolicy, order: str,
                 flops_of: Callable[[RuntimeConfig, CellShape], float | None],
                 rate_of: Callable[[RuntimeConfig], float | None],
                 worker_s: Callable[[RuntimeConfig], float], costs: Costs = Costs(),
                 artifact_s: Callable[[RuntimeConfig, CellShape], float] | None = None) -> None:
        self.policy, self.order, self.costs = policy, order, costs
        self.units = comparisons(list(todo))
        self.base: dict[SideKey, float | None] = {}  # call seconds at the default efficiency
        self.making: dict[SideKey, float] = {}  # seconds to make the side's artifact before it measures
        made: set[tuple] = set()  # one artifact per runtime, model, variant and shape, whatever the threads
        self.worker: dict[tuple, float] = {}
        for unit in self.units:
            for config, shapes in unit:
                self.worker[config_key(config)] = float(worker_s(config))
                rate = rate_of(config)
                for shape in shapes:
                    self.base[side_key(config, shape)] = call_seconds(flops_of(config, shape), rate, costs.efficiency)
                    artifact = (config.runtime, config.model, config.variant, int(shape.batch_size), float(shape.duration_s))
                    first = artifact not in made
                    made.add(artifact)
                    self.making[side_key(config, shape)] = float(artifact_s(config, shape)) if artifact_s and first else 0.0
        self.ratios: dict[tuple, float] = {}  # measured / predicted call time, per worker group
        self.shares: dict[tuple, float] = {}  # where its cells stopped between fewest rounds and caps
        self.seen: dict[tuple, int] = {}  # records learned from, per worker group
        self.rounds: dict[SideKey, tuple[int, int]] = {}  # (fewest, most) rounds of each side
        self.done: dict[SideKey, float] = {}  # predicted seconds of each finished side, when it finished
        self.cost: dict[SideKey, tuple[float, float, float]] = {}
        self.first = self._recompute()

    @property
    def cells(self) -> int:
        return len(self.base)

    def call_s(self, key: SideKey) -> float | None:
        """A side's call time with what was measured so far: its worker's ratio, else the mean."""
        base = self.base.get(key)
        if base is None:
            return None
        ratio = self.ratios.get(key[:len(CONFIG_FIELDS)])
        if ratio is None and self.ratios:
            ratio = math.exp(sum(math.log(r) for r in self.ratios.values()) / len(self.ratios))
        return base * (ratio or 1.0)

    def _recompute(self) -> tuple[float, float, float]:
        """Predicted (point, low, high) seconds of every cell not yet finished; the total."""
        mean_share = sum(self.shares.values()) / len(self.shares) if self.shares else None
        for unit in self.units:
            groups = [(config_key(config), {side_key(config, s) for s in shapes}) for config, shapes in unit]
            started: set[tuple] = set()
            for batch, duration in shape_order(s for _, shapes in unit for s in shapes):
                sides = [(g, g + (batch, duration)) for g, keys in groups if g + (batch, duration) in keys]
                found = comparison_cell([self.call_s(k) for _, k in sides], self.policy, self.order, self.costs,
                                        [self.shares.get(g) for g, _ in sides], mean_share)
                for (g, k), side in zip(sides, found):
                    if k not in self.done:
                        setup = (self.worker[g] if g not in started else 0.0) + self.making[k]
                        self.cost[k] = (side.point_s + setup, side.low_s + setup, side.high_s + setup)
                        self.rounds[k] = (side.fewest, side.most)
                started.update(g for g, _ in sides)
        left = [self.cost[k] for k in self.cost if k not in self.done]
        return (sum(c[0] for c in left), sum(c[1] for c in left), sum(c[2] for c in left))

    @property
    def done_s(self) -> float:
        return sum(self.done.values())

    @property
    def remaining_s(self) -> float:
        return sum(self.cost[k][0] for k in self.cost if k not in self.done)

    @property
    def total_s(self) -> float:
        """Predicted seconds of the whole measuring phase, finished cells at what they were predicted."""
        return self.done_s + self.remaining_s

    def finish(self, record: Mapping[str, Any]) -> float:
        """Book a record's cell as done and learn from it (its call time, how many rounds it took);
        its predicted seconds (0 when the record is not one of the cells predicted)."""
        key = record_key(record)
        if key not in self.cost or key in self.done:
            return 0.0
        self.done[key] = self.cost[key][0]
        if record.get("status") == "ok":
            self._learn(key, record)
            self._recompute()
        return self.done[key]

    def _learn(self, key: SideKey, record: Mapping[str, Any]) -> None:
        """Running means per worker group: measured / predicted call time (geometric), and the
        share of the way from its fewest rounds to its caps the cell went."""
        group = key[:len(CONFIG_FIELDS)]
        n = self.seen.get(group, 0)
        latency, base = record.get("latency_median_s"), self.base.get(key)
        if isinstance(latency, (int, float)) and latency > 0 and base:
            old = self.ratios.get(group, float(latency) / base)
            self.ratios[group] = math.exp((n * math.log(old) + math.log(float(latency) / base)) / (n + 1))
        rounds = len(record.get("round_medians_s") or [])
        fewest, most = self.rounds.get(key, (0, 0))
        if rounds and most > fewest:
            share = min(1.0, max(0.0, (rounds - fewest) / (most - fewest)))
            self.shares[group] = (n * self.shares.get(group, share) + share) / (n + 1)
        self.seen[group] = n + 1

    def eta_s(self, elapsed_s: float) -> float:
        """Seconds left: the remaining predicted work at the pace measured so far (elapsed over the
        predicted work done); before any cell finished, the prediction less the time elapsed."""
        if self.done_s <= 0:
            return max(0.0, self.total_s - elapsed_s)
        return self.remaining_s * elapsed_s / self.done_s


def estimate_run(todo: list[PlannedCell], policy: TimingPolicy, order: str,
                 manifest: Mapping[str, Mapping[str, Any]], rate_of: Callable[[RuntimeConfig], float | None],
                 tiny: bool, costs: Costs = Costs(),
                 artifact_ready: Callable[[RuntimeConfig, CellShape], bool] | None = None) -> WorkEstimate:
    """The suite's estimate: FLOPs from ``flops.macs_for`` (the analytic count, else the fp32 ONNX
    graph of the export manifest), model bytes from the manifest, GEMM rates from ``rate_of``;
    ``artifact_ready(config, shape)``: whether an edge runtime's artifact for that side is already
    at hand (None: no side of the run makes one)."""

    def flops_of(config: RuntimeConfig, shape: CellShape) -> float | None:
        entry = manifest.get(config.model) or {}
        path = (entry.get("variant_files") or {}).get("fp32") or entry.get("path")
        try:
            counted = macs_for(config.model, path, int(shape.batch_size),
                               int(round(float(shape.duration_s) * SAMPLE_RATE)), tiny=tiny)
        except Exception:  # no count (a user's model, an input below the minimum): a short call
            return None
        return counted.get("flops")

    def worker_s(config: RuntimeConfig) -> float:
        size = (manifest.get(config.model) or {}).get("model_bytes") or 0
        return costs.worker_start_s + float(size) / costs.load_bytes_per_s

    def artifact_s(config: RuntimeConfig, shape: CellShape) -> float:
        if artifact_ready is None or artifact_ready(config, shape):
            return 0.0
        size = (manifest.get(config.model) or {}).get("model_bytes") or 0
        return costs.edge_export_s + float(size) / costs.edge_export_bytes_per_s

    return WorkEstimate(todo, policy, order, flops_of, rate_of, worker_s, costs, artifact_s)


def fmt_duration(seconds: float) -> str:
    """'1:02:03', '12:34' or '45 s'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def prediction_line(estimate: WorkEstimate, rates_known: bool) -> str:
    """What the run prints before it measures."""
    point, low, high = estimate.first
    text = (f"predicted: measuring {estimate.cells} cell(s) takes about {fmt_duration(point)} "
            f"(between {fmt_duration(low)} if every comparison settles at its fewest rounds and "
            f"{fmt_duration(high)} at its caps)")
    if not rates_known:
        text += "; no GEMM rate for some workers: their calls are taken as short until measured"
    return text
