"""The order in which the runtimes are measured, and the canary around each cell.

A *comparison* is every runtime configuration of one model, variant and thread count (PyTorch
and ONNX Runtime, one worker process each).  Each cell (input shape) is measured in *rounds*:
a round is a short stretch of timed samples by one runtime.  Two orders:

- ``interleaved`` (default): both workers stay alive and the rounds alternate
  (PT, ORT, PT, ORT …) until each side has its samples.  Drift of the machine (other load, a
  throttling CPU) then lands on both runtimes alike and cancels out of the speed-up, which gets a
  95% confidence interval from the per-round ratios (``speedup_paired``, on the ONNX Runtime
  record).  Costs: two models in memory at once, and a settle wait between rounds.
- ``grouped``: one runtime's worker measures all of its cells, then the next one's: the old
  phase-by-phase order, with one model in memory at a time.

Before each round the other live workers must be quiet: an idle ONNX Runtime or OpenMP thread
pool spins for a while after a call and would steal cores from the runtime being measured.  The
scheduler waits until their CPU time stops growing (``/proc``; a fixed wait elsewhere), and records
how much CPU they still burned during the round (``extra.idle_side_cpu_s``).

Each worker reads its canary (``runners/canary.py``) before the cell's first round and after its
last; a cell whose canary moved by more than the threshold is flagged ``drift``.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.job import WorkerJob
from bench.supervisor import WorkerSupervisor
from runners.canary import canary_change, is_drift
from runners.stats import median_ci, relative_ci_width
from runstore.records import CellRecord, cell_key

ORDERS = ("interleaved", "grouped")
MIN_ROUNDS = 6  # rounds per side and cell: 6 paired ratios give a distribution-free CI (min, max)
SETTLE_POLL_S = 0.02  # the idle side is quiet when its CPU time did not grow over one poll
SETTLE_MAX_S = 0.5  # never wait longer than this for a quiet side
SETTLE_FALLBACK_S = 0.05  # without /proc: a fixed wait (ORT's and libgomp's spin lasts milliseconds)

Record = dict[str, Any]
OnRecord = Callable[[Record], None]
OnStart = Callable[[dict[str, Any]], None]


def shape_key(cell: dict[str, Any]) -> tuple:
    return (cell["batch_size"], float(cell["duration_s"]))


def failed_record(job: WorkerJob, cell: dict[str, Any], status: str, message: str) -> Record:
    rec: CellRecord = job.base_record(cell)
    rec.status, rec.error = status, message
    return rec.to_dict()


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process, all its threads included (Linux /proc)."""
    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pids: list[int], poll_s: float = SETTLE_POLL_S, max_s: float = SETTLE_MAX_S) -> float:
    """Wait until none of ``pids`` uses CPU any more; the seconds waited."""
    if not pids:
        return 0.0
    start = time.perf_counter()
    last = [cpu_seconds(p) for p in pids]
    if all(v is None for v in last):
        time.sleep(SETTLE_FALLBACK_S)
        return time.perf_counter() - start
    while time.perf_counter() - start < max_s:
        time.sleep(poll_s)
        now = [cpu_seconds(p) for p in pids]
        if all(a is None or b is None or b <= a for a, b in zip(last, now)):
            break
        last = now
    return time.perf_counter() - start


@dataclass
class CellProgress:
    """What the parent knows of one side's cell while its rounds go on."""

    cell: dict[str, Any]
    rounds: int = 0
    samples: list[float] = field(default_factory=list)
    measured_s: float = 0.0
    canary_before_s: float | None = None
    canary_error: str | None = None
    idle_side_cpu_s: float = 0.0
    settle_s: float = 0.0

    def capped(self, policy: dict[str, Any]) -> bool:
        """A cap (time or samples) reached after the minimum rounds: this cell costs no more."""
        return self.rounds >= MIN_ROUNDS and len(self.samples) >= policy["min_reps"] and (
            self.measured_s >= policy["max_time_s"] or len(self.samples) >= policy.get("max_reps", 1000))

    def satisfied(self, policy: dict[str, Any]) -> bool:
        """At least MIN_ROUNDS rounds, the policy's minimum reps and time, then the CI target or a cap."""
        n = len(self.samples)
        if self.rounds < MIN_ROUNDS or n < policy["min_reps"] or self.measured_s < policy["min_time_s"]:
            return False
        if self.measured_s >= policy["max_time_s"] or n >= policy.get("max_reps", 1000):
            return True
        return relative_ci_width(self.samples) <= policy["ci_target"]


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
        self.shapes = {shape_key(c.to_dict()) for c in job.cells}

    @property
    def runtime(self) -> str:
        return self.job.runtime

    @property
    def pid(self) -> int | None:
        return self.sup.pid if self.sup is not None else None

    def fail(self, cell: dict[str, Any], status: str, message: str) -> None:
        self.on_record(failed_record(self.job, cell, status, message))

    def ensure_worker(self, cell: dict[str, Any]) -> bool:
        """A live, loaded worker for ``cell``; False (and the cell's record written) when none."""
        if self.unsupported is not None:
            self.fail(cell, "unsupported", self.unsupported)
            return False
        if self.sup is not None:
            return True
        self.sup = WorkerSupervisor(self.job, self.log_path, self.cell_timeout_s, self.load_timeout_s)
        self.sup.start()
        reply = self._wait({"loaded", "unsupported"}, self.load_timeout_s, cell,
                           f"model load exceeded {self.load_timeout_s:g}s")
        if reply is None:
            return False
        if reply["type"] == "unsupported":
            self.unsupported = reply["error"]
            self.stop()
            self.fail(cell, "unsupported", self.unsupported)
            return False
        return True

    def ask(self, command: dict[str, Any], expect: set[str], cell: dict[str, Any]) -> Record | None:
        """Send a command and wait for its answer; on a crash or timeout the cell's failure record
        is written, the worker is gone (the next cell starts a new one) and None comes back."""
        assert self.sup is not None
        if not self.sup.send(command):
            return self._wait(expect, self.cell_timeout_s, cell, "")  # reads the end of stream
        return self._wait(expect, self.cell_timeout_s, cell, f"cell exceeded {self.cell_timeout_s:g}s")

    def _wait(self, expect: set[str], timeout: float, cell: dict[str, Any], timeout_text: str) -> Record | None:
        assert self.sup is not None
        while True:
            message = self.sup.next_message(timeout)
            if message == "timeout":
                self.sup.kill()
                self.sup = None
                self.fail(cell, "timeout", timeout_text)
                return None
            if message is None:  # the worker died
                status, text = self.sup.exit_description()
                self.sup = None
                self.fail(cell, status, text)
                return None
            kind = message.get("type")
            if kind == "start":
                self.on_start(message["cell"])
                continue
            if kind in expect:
                return message

    def stop(self) -> None:
        """Close the worker's input and let it exit (killed if it does not within a minute)."""
        if self.sup is None:
            return
        sup, self.sup = self.sup, None
        sup.close_input()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = sup.next_message(max(0.0, deadline - time.monotonic()))
            if message is None or message == "timeout":
                break
        sup.kill()


class Comparison:
    """The sides of one model × variant × threads, measured cell by cell in the chosen order."""

    def __init__(self, sides: list[Side], order: str, policy: dict[str, Any], ticker: list[int]) -> None:
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}; valid: {', '.join(ORDERS)}")
        self.sides, self.order, self.policy = sides, order, policy
        self.ticker = ticker  # one tick per round ordered in the whole run (shared by comparisons)

    def shapes(self, sides: list[Side]) -> list[dict[str, Any]]:
        """Every shape any of ``sides`` measures, smallest input first (allocator arenas then never
        hold more than the cell needs)."""
        cells = {shape_key(cell): cell for cell in (c.to_dict() for s in sides for c in s.job.cells)}
        return sorted(cells.values(), key=lambda c: (c["batch_size"] * c["duration_s"], c["duration_s"]))

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
                    self.measure_cell([s for s in self.sides if shape_key(cell) in s.shapes], cell)
                for side in self.sides:
                    side.stop()  # the worker closes its energy meter and exits
        finally:
            for side in self.sides:
                if side.sup is not None:
                    side.sup.kill()
                    side.sup = None

    def quiet_others(self, side: Side) -> float:
        """Wait until every other live worker is quiet before ``side`` times anything (a round or
        its canary): seconds waited."""
        return settle([o.pid for o in self.sides if o is not side and o.pid is not None])

    def _tick(self) -> int:
        self.ticker[0] += 1
        return self.ticker[0] - 1

    def measure_cell(self, sides: list[Side], cell: dict[str, Any]) -> None:
        """Canary, rounds in order until every side has its samples, canary, records."""
        live = [s for s in sides if s.ensure_worker(cell)]
        progress: dict[int, CellProgress] = {}
        for side in list(live):
            self.quiet_others(side)  # an idle pool still spinning would slow this side's canary
            reply = side.ask({"op": "canary", "tick": self.ticker[0]}, {"canary"}, cell)
            if reply is None:
                live.remove(side)
                continue
            progress[id(side)] = CellProgress(cell, canary_before_s=reply["seconds"],
                                              canary_error=reply.get("error"))
        per_round = max(1, math.ceil(self.policy["min_reps"] / MIN_ROUNDS))
        round_time = self.policy["min_time_s"] / MIN_ROUNDS
        # all sides go on until each has its samples, or one reached its cap (rounds stay paired,
        # and no cell costs more than about max_time_s per side)
        while live and not (all(progress[id(s)].satisfied(self.policy) for s in live)
                            or any(progress[id(s)].capped(self.policy) for s in live)):
            for side in list(live):
                p = progress[id(side)]
                others = [o.pid for o in self.sides if o is not side and o.pid is not None]
                p.settle_s += self.quiet_others(side)
                idle_before = [cpu_seconds(pid) for pid in others]
                reply = side.ask({"op": "round", "cell": cell, "tick": self._tick(), "min_samples": per_round,
                                  "min_time_s": round_time}, {"round", "cell"}, cell)
                idle_after = [cpu_seconds(pid) for pid in others]
                p.idle_side_cpu_s += sum(b - a for a, b in zip(idle_before, idle_after)
                                         if a is not None and b is not None)
                if reply is None:
                    live.remove(side)
                elif reply["type"] == "cell":  # the cell ended early (unsupported, oom, error)
                    side.on_record(reply["record"])
                    live.remove(side)
                else:
                    p.rounds += 1
                    p.samples += reply["samples"]
                    p.measured_s += reply["measured_s"]
        pytorch_record: Record | None = None
        for side in list(live):  # PyTorch first (the plan's order): its rounds pair with the others'
            p = progress[id(side)]
            p.settle_s += self.quiet_others(side)
            canary = side.ask({"op": "canary", "tick": max(0, self.ticker[0] - 1)}, {"canary"}, cell)
            if canary is None:
                continue
            reply = side.ask({"op": "finish", "cell": cell}, {"cell"}, cell)
            if reply is None:
                continue
            record = reply["record"]
            after = canary["seconds"]
            record.update(order=self.order, canary_before_s=p.canary_before_s, canary_after_s=after,
                          drift=is_drift(p.canary_before_s, after))
            record.setdefault("extra", {}).update(
                canary_change=canary_change(p.canary_before_s, after), settle_s=round(p.settle_s, 3),
                idle_side_cpu_s=round(p.idle_side_cpu_s, 3) if len(live) > 1 else None)
            if p.canary_error:
                record["extra"]["canary_reason"] = p.canary_error
            if side.runtime == "pytorch" and record.get("status") == "ok":
                pytorch_record = record
            elif self.order == "interleaved" and pytorch_record is not None:
                add_paired_speedup(pytorch_record, record)
            side.on_record(record)


def paired_speedup(pt_rounds: list[float], ort_rounds: list[float]) -> tuple[float, float, float] | None:
    """Median and 95% CI of the per-round ratios PyTorch / ONNX Runtime (rounds paired in order)."""
    n = min(len(pt_rounds), len(ort_rounds))
    ratios = [p / o for p, o in zip(pt_rounds[:n], ort_rounds[:n]) if o > 0]
    if not ratios:
        return None
    low, high = median_ci(ratios)
    return float(statistics.median(ratios)), low, high


def add_paired_speedup(pytorch_record: Record, record: Record) -> None:
    """The ONNX Runtime record gets the speed-up of its rounds against PyTorch's (both ok)."""
    if record.get("runtime") != "onnxruntime" or record.get("status") != "ok":
        return
    found = paired_speedup(pytorch_record.get("round_medians_s") or [], record.get("round_medians_s") or [])
    if found is not None:
        record["speedup_paired"], record["speedup_ci95_low"], record["speedup_ci95_high"] = found


GROUP_FIELDS = ("model", "runtime", "provider", "variant", "threads")  # one worker
COMPARISON_FIELDS = ("model", "variant", "threads")  # the workers measured against each other


def comparisons(cells: list[dict[str, Any]]) -> list[list[tuple[dict[str, Any], list[dict[str, Any]]]]]:
    """The plan's cells as comparisons, each a list of (worker group, its cells), first-seen order."""
    out: dict[tuple, dict[tuple, list[dict[str, Any]]]] = {}
    for cell in cells:
        unit = out.setdefault(tuple(cell[f] for f in COMPARISON_FIELDS), {})
        unit.setdefault(tuple(cell[f] for f in GROUP_FIELDS), []).append(cell)
    return [[(dict(zip(GROUP_FIELDS, key)), group) for key, group in unit.items()] for unit in out.values()]


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
