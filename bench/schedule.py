"""The order in which the runtimes are measured, and the canary around each cell.

A *comparison* is every runtime configuration of one model, variant and thread count (PyTorch,
ONNX Runtime and whichever other runtimes the run measures, one worker process each).  Each cell
(input shape) is measured in *rounds*: a round is a short stretch of timed samples by one runtime.
Two orders:

- ``interleaved`` (default): every worker stays alive and the rounds rotate over them
  (PT, ORT, OV, PT, ORT, OV …) until the stopping rule says the cell is done.  Drift of the machine
  (other load, a throttling CPU) then lands on every runtime alike and cancels out of the
  speed-ups: each runtime's rounds pair with the *base* runtime's (``SPEEDUP_BASE``, PyTorch by
  default), each pair's speed-up gets a 95% confidence interval from the per-round ratios
  (``speedup_paired`` on the other runtime's record, ``speedup_base`` naming the base on every
  record), and the rule stops once every pair's CI is narrow enough (``runners/stopping.py``).
  Costs: every model in memory at once, and a settle wait between rounds.
- ``grouped``: one runtime's worker measures all of its cells, then the next one's: the old
  phase-by-phase order, with one model in memory at a time, and the per-side stopping rule.

Every record says why its rounds stopped (``stop_reason``: ``target``, ``time-cap``,
``sample-cap``; ``extra.stopping`` the details) and where the wall time outside its timed calls
went (``extra.overhead_s``: worker start, first call, warm-up, re-warm, canary, settle waits,
protocol, finish; :func:`fixed_costs` adds them up for a run).

Before each round the other live workers must be quiet: an idle ONNX Runtime or OpenMP thread
pool spins for a while after a call and would steal cores from the runtime being measured.  The
scheduler waits until their CPU time stops growing (``bench/quiet.py``: per-thread run time in
nanoseconds; a fixed wait without ``/proc``), and records how much CPU they still burned during the
round (``extra.idle_side_cpu_s``).

Each worker reads its canary (``runners/canary.py``) before the cell's first round and after its
last (the reading after one cell serves as the next cell's reading before when it is fresh:
:data:`CANARY_REUSE_S`); a cell whose canary moved by more than the threshold is flagged ``drift``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.job import CellShape, WorkerJob
from bench.plan import PlannedCell, RuntimeConfig
from bench.quiet import cpu_seconds, settle
from bench.supervisor import WorkerSupervisor
from runners.canary import canary_change, is_drift
from runners.harness import TimingPolicy
from runners.stopping import SideTally, paired_speedup, speedup_ci_width, stop_reason
from runstore.records import CellRecord, cell_key

ORDERS = ("interleaved", "grouped")
# a side's canary reading after one cell is its reading before the next when it is this fresh and
# nothing ran on that worker in between but the record's own bookkeeping: the two readings would be
# back to back, where they differ by the canary's own noise (docs/benchmarks/canary-noise.md)
CANARY_REUSE_S = 0.5

Record = dict[str, Any]  # a stored record as the run store reads it (cells.jsonl)
Message = dict[str, Any]  # one JSON line of the worker protocol
OnRecord = Callable[[Record], None]
OnStart = Callable[[CellShape], None]
PARENT_COSTS = ("worker_start", "canary", "settle", "rounds", "finish")  # the parent's clock, per side


def failed_record(job: WorkerJob, cell: CellShape, status: str, message: str) -> Record:
    rec: CellRecord = job.base_record(cell)
    rec.status, rec.error = status, message
    return rec.to_dict()


@dataclass
class CellProgress(SideTally):
    """What the parent knows of one side's cell while its rounds go on: the tally the stopping
    rule reads (``runners/stopping.py``), the canary before, and where the wall time outside
    timed calls went (``costs``, on the parent's clock: :data:`PARENT_COSTS`)."""

    canary_before_s: float | None = None
    canary_error: str | None = None
    canary_reused: bool = False
    idle_side_cpu_s: float = 0.0
    costs: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARENT_COSTS, 0.0))

    @property
    def settle_s(self) -> float:
        return self.costs["settle"]


def finite(value: float, digits: int = 4) -> float | None:
    """A float for a record: rounded, and null where it is not finite (JSON has no inf)."""
    return round(value, digits) if math.isfinite(value) else None


class Side:
    """One runtime configuration of a comparison: its job, its cells and its (restartable) worker."""

    def __init__(self, job: WorkerJob, log_dir: Path, cell_timeout_s: float,
                 on_record: OnRecord, on_start: OnStart) -> None:
        self.job, self.cell_timeout_s = job, cell_timeout_s
        self.load_timeout_s = max(cell_timeout_s, 600)
        self.on_record, self.on_start = on_record, on_start
        self.log_path = log_dir / (re.sub(r"[^A-Za-z0-9._-]+", "_", job.name).strip("_") + ".log")
        self.sup: WorkerSupervisor | None = None
        self.unsupported: str | None = None
        self.shapes = set(job.cells)
        self.start_s = 0.0  # wall time of the last worker start, charged to the cell it was started for
        self.last_canary: tuple[WorkerSupervisor, float, Message] | None = None  # (worker, when, reading)
        self.spawned = 0.0  # when the current worker process was started
        self.is_ready = False  # the current worker said "ready" (imports done)
        self.loaded = False  # the current worker loaded its model
        self.ready_wait_s = 0.0  # time waited for "ready" not yet charged to a cell

    @property
    def runtime(self) -> str:
        return self.job.runtime

    @property
    def pid(self) -> int | None:
        return self.sup.pid if self.sup is not None else None

    def fail(self, cell: CellShape, status: str, message: str) -> None:
        self.on_record(failed_record(self.job, cell, status, message))

    def spawn(self) -> None:
        """Start this side's worker process without waiting for it: it imports its libraries and
        then waits for ``load`` (:meth:`ensure_worker`).  A comparison spawns all its sides at once,
        so the imports (a second or more each) overlap while every model still loads alone."""
        if self.unsupported is None and self.sup is None:
            self.spawned = time.perf_counter()
            self.sup = WorkerSupervisor(self.job, self.log_path, self.cell_timeout_s, self.load_timeout_s)
            self.sup.start()
            self.loaded = False

    def ready(self, cell: CellShape) -> bool:
        """Wait until the spawned worker has imported what it needs (it says ``ready``)."""
        if self.sup is None:
            self.spawn()
        if self.loaded or self.is_ready:
            return True
        started = time.perf_counter()
        self.is_ready = self._wait({"ready"}, self.load_timeout_s, cell,
                                   f"worker start exceeded {self.load_timeout_s:g}s") is not None
        self.ready_wait_s += time.perf_counter() - started  # charged to the cell by ensure_worker
        return self.is_ready

    def ensure_worker(self, cell: CellShape) -> bool:
        """A live, loaded worker for ``cell``; False (and the cell's record written) when none.
        ``start_s`` is the wall time the parent waited for it (import not overlapped, load)."""
        if self.unsupported is not None:
            self.fail(cell, "unsupported", self.unsupported)
            return False
        if self.sup is not None and self.loaded:
            self.start_s = 0.0
            return True
        started = time.perf_counter()
        ready = self.ready(cell)
        if ready:
            assert self.sup is not None
            self.sup.send({"op": "load"})
        reply = self._wait({"loaded", "unsupported"}, self.load_timeout_s, cell,
                           f"model load exceeded {self.load_timeout_s:g}s") if ready else None
        # the wait for "ready" may have happened before (all sides spawned together): charged here
        self.start_s = time.perf_counter() - started + (self.ready_wait_s if ready else 0.0)
        self.ready_wait_s = 0.0
        if reply is None:
            return False
        if reply["type"] == "unsupported":
            self.unsupported = reply["error"]
            self.stop()
            self.fail(cell, "unsupported", self.unsupported)
            return False
        self.loaded = True
        return True

    def ask(self, command: dict[str, Any], expect: set[str], cell: CellShape) -> Message | None:
        """Send a command and wait for its answer; on a crash or timeout the cell's failure record
        is written, the worker is gone (the next cell starts a new one) and None comes back."""
        assert self.sup is not None
        if not self.sup.send(command):
            return self._wait(expect, self.cell_timeout_s, cell, "")  # reads the end of stream
        return self._wait(expect, self.cell_timeout_s, cell, f"cell exceeded {self.cell_timeout_s:g}s")

    def _wait(self, expect: set[str], timeout: float, cell: CellShape, timeout_text: str) -> Message | None:
        assert self.sup is not None
        while True:
            message = self.sup.next_message(timeout)
            if message == "timeout":
                self.sup.kill()
                self.forget_worker()
                self.fail(cell, "timeout", timeout_text)
                return None
            if message is None:  # the worker died
                self.sup.await_exit(5.0)  # its own exit status says how it ended, not the kill below
                self.sup.kill()  # what it left in its session (a helper holding its pipe) goes too
                status, text = self.sup.exit_description()
                self.forget_worker()
                self.fail(cell, status, text)
                return None
            if isinstance(message, str):  # next_message says only "timeout" as a string
                continue
            kind = message.get("type")
            if kind == "start":
                self.on_start(CellShape.from_dict(message["cell"]))
                continue
            if kind in expect:
                return message

    def forget_worker(self) -> None:
        """The worker is gone (killed, crashed, stopped): the next cell starts a new one."""
        self.sup, self.is_ready, self.loaded = None, False, False

    def stop(self) -> None:
        """Close the worker's input and let it exit (killed if it does not within a minute)."""
        if self.sup is None:
            return
        sup = self.sup
        self.forget_worker()
        sup.close_input()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = sup.next_message(max(0.0, deadline - time.monotonic()))
            if message is None or message == "timeout":
                break
        sup.kill()


class Comparison:
    """The sides of one model × variant × threads, measured cell by cell in the chosen order."""

    def __init__(self, sides: list[Side], order: str, policy: TimingPolicy, ticker: list[int],
                 base: str = "pytorch") -> None:
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}; valid: {', '.join(ORDERS)}")
        self.sides, self.order, self.policy = sides, order, policy
        self.ticker = ticker  # one tick per round ordered in the whole run (shared by comparisons)
        self.base = base  # SPEEDUP_BASE: the runtime whose rounds the others' pair with

    def shapes(self, sides: list[Side]) -> list[CellShape]:
        """Every shape any of ``sides`` measures, smallest input first (allocator arenas then never
        hold more than the cell needs)."""
        cells = {shape for side in sides for shape in side.job.cells}
        return sorted(cells, key=lambda c: (c.batch_size * c.duration_s, c.duration_s))

    def run(self) -> None:
        try:
            if self.order == "grouped":
                for side in self.sides:
                    try:
                        for cell in self.shapes([side]):
                            self.measure_cell([side], cell)
                    finally:
                        side.stop()
            else:
                for cell in self.shapes(self.sides):
                    self.measure_cell([s for s in self.sides if cell in s.shapes], cell)
                for side in self.sides:
                    side.stop()  # the worker closes its energy meter and exits
        finally:
            for side in self.sides:
                if side.sup is not None:
                    side.sup.kill()
                    side.forget_worker()

    def quiet_others(self, side: Side) -> float:
        """Wait until every other live worker is quiet before ``side`` times anything (a round or
        its canary): seconds waited."""
        return settle([o.pid for o in self.sides if o is not side and o.pid is not None])

    def _tick(self) -> int:
        self.ticker[0] += 1
        return self.ticker[0] - 1

    def canary(self, side: Side, p: CellProgress, cell: CellShape, tick: int, reuse: bool) -> Message | None:
        """A canary reading of ``side`` with the others quiet; before a cell, the reading taken
        after the side's previous cell when it is fresh (:data:`CANARY_REUSE_S`, same worker)."""
        last = side.last_canary
        if reuse and last is not None and last[0] is side.sup and time.perf_counter() - last[1] < CANARY_REUSE_S:
            p.canary_reused = True
            return last[2]
        p.costs["settle"] += self.quiet_others(side)  # an idle pool still spinning would slow this canary
        started = time.perf_counter()
        reply = side.ask({"op": "canary", "tick": tick}, {"canary"}, cell)
        p.costs["canary"] += time.perf_counter() - started
        side.last_canary = (side.sup, time.perf_counter(), reply) if reply is not None and side.sup else None
        return reply

    def base_side(self, live: list[Side]) -> Side | None:
        """The live side of the base runtime (the first, where it runs under several providers)."""
        return next((s for s in live if s.runtime == self.base), None)

    def pairs(self, live: list[Side], progress: dict[int, CellProgress]) -> list[tuple[CellProgress, CellProgress]]:
        """The (base, other) sides whose rounds interleave: the paired rule's pairs (none in
        grouped order, or without a live side of the base runtime: each side then keeps the
        per-side rule)."""
        if self.order != "interleaved":
            return []
        reference = self.base_side(live)
        if reference is None:
            return []
        return [(progress[id(reference)], progress[id(s)]) for s in live if s is not reference]

    def measure_cell(self, sides: list[Side], cell: CellShape) -> None:
        """Canary, rounds in order until the stopping rule says the cell is done, canary, records."""
        if self.order == "interleaved":
            for side in sides:  # imports overlap; each model then loads alone (ensure_worker)
                side.spawn()
            sides = [s for s in sides if s.unsupported is not None or s.ready(cell)]
        live = [s for s in sides if s.ensure_worker(cell)]
        progress: dict[int, CellProgress] = {}
        for side in list(live):
            p = CellProgress()
            p.costs["worker_start"] = side.start_s
            reply = self.canary(side, p, cell, self.ticker[0], reuse=True)
            if reply is None:
                live.remove(side)
                continue
            p.canary_before_s, p.canary_error = reply["seconds"], reply.get("error")
            progress[id(side)] = p
        # a sequential rule: after every round of every side (a round pair when interleaved), stop
        # once the reported quantity is settled or a cap is reached; rounds stay paired throughout
        reason: str | None = None
        while live and reason is None:
            for side in list(live):
                if not self.measure_round(side, progress[id(side)], cell):
                    live.remove(side)
            reason = stop_reason(self.policy, [progress[id(s)] for s in live], self.pairs(live, progress))
        pairs = self.pairs(live, progress)
        base_side = self.base_side(live)
        base_record: CellRecord | None = None
        # the base's record first: the others' speed-ups are against its rounds
        for side in sorted(live, key=lambda s: s is not base_side):
            p = progress[id(side)]
            canary = self.canary(side, p, cell, max(0, self.ticker[0] - 1), reuse=False)
            if canary is None:
                continue
            started = time.perf_counter()
            reply = side.ask({"op": "finish", "cell": cell.to_dict()}, {"cell"}, cell)
            p.costs["finish"] += time.perf_counter() - started
            if reply is None:
                continue
            record = CellRecord.from_dict(reply["record"])
            self.annotate(record, p, canary, reason, pairs, len(live))
            if side is base_side and record.status == "ok":
                base_record = record
            elif self.order == "interleaved" and base_record is not None:
                add_paired_speedup(base_record, record)
            side.on_record(record.to_dict())

    def measure_round(self, side: Side, p: CellProgress, cell: CellShape) -> bool:
        """One round of ``side`` with the others quiet; False when the side's cell ended (its
        record is then written: unsupported, out of memory, crashed)."""
        others = [o.pid for o in self.sides if o is not side and o.pid is not None]
        p.costs["settle"] += self.quiet_others(side)
        idle_before = [cpu_seconds(pid) for pid in others]
        started = time.perf_counter()
        reply = side.ask({"op": "round", "cell": cell.to_dict(), "tick": self._tick()}, {"round", "cell"}, cell)
        p.costs["rounds"] += time.perf_counter() - started
        idle_after = [cpu_seconds(pid) for pid in others]
        p.idle_side_cpu_s += sum(b - a for a, b in zip(idle_before, idle_after) if a is not None and b is not None)
        if reply is None:
            return False
        if reply["type"] == "cell":  # the cell ended early (unsupported, oom, error)
            side.on_record(reply["record"])
            return False
        p.add_round(reply["samples"], reply["measured_s"], reply.get("sample_s"))
        return True

    def annotate(self, record: CellRecord, p: CellProgress, canary: Message, reason: str | None,
                 pairs: list[tuple[CellProgress, CellProgress]], sides_measured: int) -> None:
        """The parent's part of a record: order, canary and drift, why the cell stopped, and the
        wall time spent outside timed calls."""
        after = canary["seconds"]
        record.order, record.speedup_base = self.order, self.base
        record.canary_before_s, record.canary_after_s = p.canary_before_s, after
        record.drift = is_drift(p.canary_before_s, after)
        if record.status == "ok":
            record.stop_reason = reason
        extra = record.extra
        extra.update(canary_change=canary_change(p.canary_before_s, after), settle_s=round(p.settle_s, 3),
                     idle_side_cpu_s=round(p.idle_side_cpu_s, 3) if sides_measured > 1 else None)
        if p.canary_error:
            extra["canary_reason"] = p.canary_error
        if p.canary_reused:
            extra["canary_before_reused"] = True
        budget = p.budget(self.policy)
        paired = [speedup_ci_width(pt, other) for pt, other in pairs if p is pt or p is other]
        extra["stopping"] = {
            "rule": "paired-speedup" if pairs else "per-side", "rounds": p.rounds,
            "min_samples": budget.min_samples, "samples_per_round": budget.samples_per_round,
            "time_cap_s": finite(budget.max_time_s), "sample_cap": budget.max_samples,
            "own_ci_rel_width": finite(p.own_ci_width()), "own_ci_met": p.own_ci_met(self.policy),
            "rounds_disagree": p.rounds_disagree(self.policy) if p.round_medians else None,
            "speedup_ci_rel_width": finite(max(paired)) if paired else None,
        }
        extra["overhead_s"] = overhead_breakdown(p, extra.get("overhead_s") or {}, extra.get("measured_time_s"))


def overhead_breakdown(p: CellProgress, worker: dict[str, Any], measured_s: float | None) -> dict[str, float]:
    """Where one side's wall time outside timed calls went: the worker's first call, warm-up and
    re-warm calls, the parent's worker start, canary readings, settle waits, the round protocol
    and the finish (memory, MACs, the energy window), and their ``total``.  The total is taken on
    the parent's clock alone; the parts the worker timed are on its own clock."""
    costs = p.costs
    timed = float(measured_s or p.measured_s)
    round_overhead = max(0.0, costs["rounds"] - timed)
    worker_parts = {k: float(worker.get(k) or 0.0) for k in ("first_call", "warm_up", "rewarm")}
    out = {"worker_start": costs["worker_start"], **worker_parts, "canary": costs["canary"],
           "settle": costs["settle"], "protocol": max(0.0, round_overhead - sum(worker_parts.values())),
           "finish": costs["finish"]}
    out["total"] = costs["worker_start"] + costs["canary"] + costs["settle"] + round_overhead + costs["finish"]
    return {k: round(v, 4) for k, v in out.items()}


def fixed_costs(records: list[Record]) -> dict[str, float]:
    """A run's time outside timed calls, summed over its records by kind (``extra.overhead_s``),
    with ``timed`` (the timed calls themselves) beside it: what the run spent on honesty (warm-up,
    canary, settling) and on plumbing (worker starts, protocol)."""
    out: dict[str, float] = {}
    for record in records:
        extra = record.get("extra") or {}
        for key, value in (extra.get("overhead_s") or {}).items():
            out[key] = out.get(key, 0.0) + float(value or 0.0)
        out["timed"] = out.get("timed", 0.0) + float(extra.get("measured_time_s") or 0.0)
    return {k: round(v, 3) for k, v in out.items()}


def add_paired_speedup(base_record: CellRecord, record: CellRecord) -> None:
    """A record of a runtime other than the base (``SPEEDUP_BASE``: PyTorch by default) gets the
    speed-up of its rounds against the base's (both ok): the quantity the stopping rule settled for
    this pair, base / this runtime (above 1: this runtime is faster).  ``speedup_base`` names the
    base's runtime and ``extra.speedup_base_provider`` its provider (the base runtime may run under
    several; another configuration of the base runtime gets no speed-up)."""
    if record.runtime == base_record.runtime or record.status != "ok":
        return
    found = paired_speedup(base_record.round_medians_s, record.round_medians_s)
    if found is not None:
        record.speedup_paired, record.speedup_ci95_low, record.speedup_ci95_high = found
        record.speedup_base = base_record.runtime
        record.extra["speedup_base_provider"] = base_record.provider


def comparisons(cells: list[PlannedCell]) -> list[list[tuple[RuntimeConfig, list[CellShape]]]]:
    """The plan's cells as comparisons (every runtime of one model, variant and threads), each a
    list of (worker, the shapes it measures), in first-seen order."""
    out: dict[tuple, dict[RuntimeConfig, list[CellShape]]] = {}
    for cell in cells:
        out.setdefault(cell.comparison, {}).setdefault(cell.config, []).append(cell.shape)
    return [list(unit.items()) for unit in out.values()]


def drifted(records: list[Record]) -> list[Record]:
    return [r for r in records if r.get("drift") is True]


def remeasure_hint(records: list[Record], threshold: float) -> str | None:
    """What to tell the user when cells drifted: how many, and the command that re-measures them."""
    found = drifted(records)
    if not found:
        return None
    models = sorted({str(r.get("model")) for r in found})
    return (f"drift: the canary moved by more than {threshold:.0%} during {len(found)} cell(s) "
            f"({', '.join(models)}): the machine's speed changed while they were measured. "
            f"Re-measure them (same settings, REMEASURE=drift): make bench REMEASURE=drift "
            f"(or python -m runners ... --remeasure drift)")


def remeasure_keys(records: list[Record]) -> set[tuple]:
    """Cell keys to measure again under REMEASURE=drift: every drifted cell and the cells it is
    compared with (the other runtimes' records of the same model, variant, threads and input)."""
    bad = {(r.get("model"), r.get("variant"), r.get("threads"), r.get("batch_size"), r.get("duration_s"))
           for r in drifted(records)}
    return {cell_key(r) for r in records
            if (r.get("model"), r.get("variant"), r.get("threads"), r.get("batch_size"), r.get("duration_s")) in bad}
